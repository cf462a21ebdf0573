/*
 * fuzz_retry_after.c - the uploader's Retry-After parser
 * (upl_parse_retry_after: delay-seconds or an IMF-fixdate).
 *
 * Invariants: the result is -1 or a delay in [0, the most either form can
 * say]; the same input gives the same result; a date it accepts, written
 * back as an IMF-fixdate, gives the same delay again.
 */
#include <string.h>
#include <time.h>

#include "fuzz.h"
#include "upl.h"

#define NOW 1700000000ll /* 2023-11-14T22:13:20Z */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[256];
	size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
	int64_t r, r2;
	/* 9999-12-31T23:59:60Z, the latest date accepted. */
	const int64_t most_date = (253402300800ll - NOW) * 1000, most_secs = 100000000ll * 1000;

	memcpy(s, data, n);
	s[n] = '\0';
	r = upl_parse_retry_after(s, NOW);
	FUZZ_CHECK(r >= -1, "%lld for '%s'", (long long)r, s);
	FUZZ_CHECK(r <= (most_date > most_secs ? most_date : most_secs), "%lld for '%s'",
		   (long long)r, s);
	r2 = upl_parse_retry_after(s, NOW);
	FUZZ_CHECK(r == r2, "%lld then %lld for '%s'", (long long)r, (long long)r2, s);
	{
		const char *p = s;
		while (*p == ' ' || *p == '\t')
			p++;
		if (r > 0 && !(*p >= '0' && *p <= '9')) {
			/* An accepted date in the future: write it back. */
			char back[64];
			time_t t = (time_t)(NOW + r / 1000);
			struct tm tm;
			FUZZ_CHECK(r % 1000 == 0, "%lld", (long long)r);
			gmtime_r(&t, &tm);
			/* A leap second on 31 Dec 9999 reads as a date in 10000,
			 * which no IMF-fixdate can say: nothing to write back. */
			if (tm.tm_year + 1900 > 9999)
				return 0;
			strftime(back, sizeof(back), "%a, %d %b %Y %H:%M:%S GMT", &tm);
			r2 = upl_parse_retry_after(back, NOW);
			/* A leap second (:60) reads as the next second's date. */
			FUZZ_CHECK(r2 == r, "'%s' -> %lld but '%s' -> %lld", s, (long long)r, back,
				   (long long)r2);
		}
	}
	return 0;
}
