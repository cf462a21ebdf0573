/*
 * check_uploader_retry.c - when the uploader tries again: the backoff
 * schedule (exponential, capped, with full jitter), Retry-After in seconds
 * and as an HTTP date (bad and impossible dates refused), which statuses
 * are retryable, and the engine honouring all of it against the test
 * server (a request never earlier than Retry-After allows; a burst of 503
 * backs off and the schedule resets after a success; a retried request
 * keeps its Idempotency-Key).
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <edgelog.h>

#include "eng_internal.h"
#include "test_main.h"
#include "test_uploader.h"
#include "test_util.h"
#include "test_vfs.h"
#include "upl_internal.h"

/* ------------------------------------------------------------------------
 * Backoff, Retry-After, statuses
 */

static uint64_t cap_for(uint32_t base, uint32_t max, unsigned attempt)
{
	uint64_t c = base;
	unsigned i;
	for (i = 0; i < attempt && c < max; i++)
		c *= 2;
	return c < max ? c : max;
}

START_TEST(test_backoff_bounds)
{
	static const uint32_t bases[] = {1, 20, 100, 500, 1000, 7};
	static const uint32_t maxes[] = {1, 500, 60000, 100, 3600000, 0xffffffffu};
	uint64_t st = 42;
	size_t b, m;
	unsigned a;
	int k;

	for (b = 0; b < sizeof(bases) / sizeof(bases[0]); b++)
		for (m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++)
			for (a = 0; a < 80; a++) {
				uint64_t lim = cap_for(bases[b], maxes[m], a);
				for (k = 0; k < 200; k++) {
					uint64_t d =
						upl_backoff_ms(bases[b], maxes[m], a, tu_rand(&st));
					ck_assert_msg(d <= lim,
						      "base %u max %u attempt %u: %llu > %llu",
						      bases[b], maxes[m], a, (unsigned long long)d,
						      (unsigned long long)lim);
				}
				/* The extremes of rnd land on the extremes. */
				ck_assert_uint_eq(upl_backoff_ms(bases[b], maxes[m], a, 0), 0);
				ck_assert_uint_eq(upl_backoff_ms(bases[b], maxes[m], a, lim), lim);
			}
	/* Huge attempt numbers do not overflow past the cap. */
	ck_assert_uint_le(upl_backoff_ms(500, 60000, 1000, UINT64_MAX), 60000);
	ck_assert_uint_le(upl_backoff_ms(500, 60000, UINT32_MAX, UINT64_MAX - 1), 60000);
}
END_TEST

START_TEST(test_backoff_distribution)
{
	/* Full jitter: uniform over [0, cap]. Over many draws the mean is
   * close to cap/2, the extremes are reached, and every tenth of the
   * range is hit about equally; the mean grows with the attempt until
   * the cap. */
	const uint32_t base = 20, max = 500;
	uint64_t st = 7;
	double prev_mean = -1;
	unsigned a;

	for (a = 0; a < 10; a++) {
		const int n = 200000;
		uint64_t lim = cap_for(base, max, a), lo = UINT64_MAX, hi = 0;
		unsigned bins[10] = {0};
		double sum = 0, mean;
		int k;

		for (k = 0; k < n; k++) {
			uint64_t d = upl_backoff_ms(base, max, a, tu_rand(&st));
			sum += (double)d;
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
			bins[(d * 10) / (lim + 1)]++;
		}
		mean = sum / n;
		ck_assert_msg(fabs(mean - (double)lim / 2) < (double)lim * 0.02 + 0.5,
			      "attempt %u: mean %.2f, expected about %.1f", a, mean,
			      (double)lim / 2);
		ck_assert_uint_eq(lo, 0);
		ck_assert_uint_eq(hi, lim);
		for (k = 0; k < 10; k++) {
			/* Values v in [0, lim] with v * 10 / (lim + 1) == k. */
			uint64_t v, vals = 0;
			double want;
			for (v = 0; v <= lim; v++)
				vals += (v * 10) / (lim + 1) == (uint64_t)k;
			want = (double)n * (double)vals / (double)(lim + 1);
			ck_assert_msg(bins[k] > want * 0.9 && bins[k] < want * 1.1,
				      "attempt %u: bin %d holds %u, expected about %.0f", a, k,
				      bins[k], want);
		}
		if (lim < max)
			ck_assert_msg(mean > prev_mean * 1.8, "attempt %u: mean %.1f after %.1f", a,
				      mean, prev_mean);
		else
			ck_assert_msg(mean >= prev_mean * 0.95 || lim == max,
				      "attempt %u: mean fell", a);
		prev_mean = mean;
	}
	/* Capped from attempt 5 on (20 * 32 = 640 > 500). */
	ck_assert_uint_eq(cap_for(base, max, 5), 500);
	ck_assert_uint_eq(upl_backoff_ms(base, max, 5, 500), 500);
	ck_assert_uint_eq(upl_backoff_ms(base, max, 40, 500), 500);
	ck_assert_uint_eq(upl_backoff_ms(base, max, 40, 501), 0);
}
END_TEST

START_TEST(test_retry_after_seconds)
{
	const int64_t now = 1700000000;

	ck_assert_int_eq(upl_parse_retry_after("120", now), 120000);
	ck_assert_int_eq(upl_parse_retry_after("0", now), 0);
	ck_assert_int_eq(upl_parse_retry_after("1", now), 1000);
	ck_assert_int_eq(upl_parse_retry_after(" 5 ", now), 5000);
	ck_assert_int_eq(upl_parse_retry_after("\t7\t", now), 7000);
	ck_assert_int_eq(upl_parse_retry_after(" 30\r\n", now), 30000); /* raw header value */
	ck_assert_int_eq(upl_parse_retry_after("86400", now), 86400000);
	ck_assert_int_eq(upl_parse_retry_after("-1", now), -1);
	ck_assert_int_eq(upl_parse_retry_after("abc", now), -1);
	ck_assert_int_eq(upl_parse_retry_after("", now), -1);
	ck_assert_int_eq(upl_parse_retry_after("   ", now), -1);
	ck_assert_int_eq(upl_parse_retry_after("1.5", now), -1);
	ck_assert_int_eq(upl_parse_retry_after("12abc", now), -1);
	ck_assert_int_eq(upl_parse_retry_after("+5", now), -1);
	ck_assert_int_eq(upl_parse_retry_after("5 5", now), -1);
	ck_assert_int_eq(upl_parse_retry_after("0x10", now), -1);
}
END_TEST

START_TEST(test_retry_after_dates)
{
	int64_t now = (int64_t)time(NULL);
	char d[64];

	/* The RFC's own example, long past: retry now. */
	ck_assert_int_eq(upl_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), 0);
	/* Future. */
	imf_date(d, sizeof(d), now + 3600);
	ck_assert_int_eq(upl_parse_retry_after(d, now), 3600000);
	imf_date(d, sizeof(d), now + 1);
	ck_assert_int_eq(upl_parse_retry_after(d, now), 1000);
	imf_date(d, sizeof(d), now);
	ck_assert_int_eq(upl_parse_retry_after(d, now), 0);
	imf_date(d, sizeof(d), now - 5);
	ck_assert_int_eq(upl_parse_retry_after(d, now), 0);
	/* A fixed pair, independent of the clock. */
	ck_assert_int_eq(upl_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 - 90),
			 90000);
	ck_assert_int_eq(
		upl_parse_retry_after(" Wed, 21 Oct 2015 07:28:00 GMT\r\n", 1445412480 - 2), 2000);
	/* Leap year day. */
	ck_assert_int_eq(upl_parse_retry_after("Thu, 29 Feb 2024 00:00:00 GMT", 1709164800 - 10),
			 10000);
	/* Past 2038 (2^31 s), also where time_t is 32 bits; 2100 is no leap year. */
	ck_assert_int_eq(upl_parse_retry_after("Tue, 19 Jan 2038 03:14:08 GMT", 2147483648LL - 60),
			 60000);
	ck_assert_int_eq(upl_parse_retry_after("Mon, 01 Mar 2100 00:00:00 GMT", 4107542400LL - 5),
			 5000);
	ck_assert_int_eq(upl_parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", 253402300799LL - 1),
			 1000);
	ck_assert_int_eq(upl_parse_retry_after("Mon, 29 Feb 2100 00:00:00 GMT", 0), -1);
}
END_TEST

START_TEST(test_retry_after_bad_dates)
{
	static const char *const bad[] = {
		"Sun, 06 Foo 1994 08:49:37 GMT", /* month */
		"Sun, 32 Nov 2030 08:49:37 GMT", /* day */
		"Sun, 00 Nov 2030 08:49:37 GMT",
		"Sun, 06 Nov 2030 24:49:37 GMT", /* hour */
		"Sun, 06 Nov 2030 08:60:37 GMT", /* minute */
		"Sun, 06 Nov 2030 08:49:61 GMT", /* second */
		"Sun, 06 Nov 2030 08:49:37 PST", /* zone */
		"Sun, 06 Nov 2030 08:49:37",     /* no zone */
		"Sun, 06 Nov 30 08:49:37 GMT",   /* two-digit year */
		"Sun, 06 Nov 2030",
		"Sun 06 Nov 2030 08:49:37 GMT",
		"06 Nov 2030 08:49:37 GMT",
		"Sun, 06 Nov 2030 08-49-37 GMT",
		"Sun, -6 Nov 2030 08:49:37 GMT",
		"Sun, 06 Nov 2030 -5:49:37 GMT", /* negative fields (fuzz_retry_after) */
		"Sun, 06 Nov 2030 08:-1:37 GMT",
		"Sun, 06 Nov 2030 08:49:-1 GMT",
		"Sun, 06 Nov 1994 -2147483647:49:37 GMT",
		"tomorrow",
		"GMT",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(upl_parse_retry_after(bad[i], 1700000000) == -1,
			      "'%s' gave %lld, expected -1", bad[i],
			      (long long)upl_parse_retry_after(bad[i], 1700000000));
}
END_TEST

/* Dates that sscanf can read but that name no instant, and text after the
 * zone: a strict parser refuses them (the header's grammar is fixed). */
START_TEST(test_retry_after_impossible_dates)
{
	static const char *const bad[] = {
		"Mon, 30 Feb 2037 08:49:37 GMT",    /* no 30 February */
		"Thu, 31 Apr 2037 08:49:37 GMT",    /* no 31 April */
		"Sun, 29 Feb 2037 08:49:37 GMT",    /* 2037 is not a leap year */
		"Sun, 06 Nov 2037 08:49:37 GMTxyz", /* trailing garbage */
		"Sun, 06 Nov 2037 08:49:37 GMT 5",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(upl_parse_retry_after(bad[i], 1700000000) == -1,
			      "'%s' gave %lld, expected -1", bad[i],
			      (long long)upl_parse_retry_after(bad[i], 1700000000));
}
END_TEST

START_TEST(test_status_retryable)
{
	/* design.md: 408, 425, 429, 5xx retry; any other 4xx is permanent.
   * A redirect (not followed) or an odd code is the endpoint's problem,
   * not the records': retried too. 2xx is success, never a retry. */
	static const long yes[] = {408, 425, 429, 401, 403, 404, 405, 407, 500, 501, 502, 503,
				   504, 507, 599, 300, 301, 302, 304, 307, 308, 100, 600, 0};
	static const long no[] = {200, 201, 204, 299, 400, 409, 410, 411, 413,
				  414, 415, 418, 422, 426, 431, 451, 499};
	size_t i;
	long s;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		ck_assert_msg(upl_status_retryable(yes[i]), "%ld should be retryable", yes[i]);
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		ck_assert_msg(!upl_status_retryable(no[i]), "%ld should not be retryable", no[i]);
	for (s = 500; s <= 599; s++)
		ck_assert(upl_status_retryable(s));
	for (s = 400; s <= 499; s++)
		ck_assert(upl_status_retryable(s) ==
			  (s == 408 || s == 425 || s == 429 || s == 401 || s == 403 || s == 404 ||
			   s == 405 || s == 407));
}
END_TEST

START_TEST(test_retry_after_seconds_engine)
{
	char *dir = tu_mkdtemp("ra-secs");
	srv *s = srv_start(script_retry_after);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	srv_req r0, r1;
	int64_t gap;
	int saw_retry_in = 0;

	srv_set(s, 0, 1);
	srv_set(s, 1, 429);
	srv_set(s, 2, 0);
	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	append_samples(log, 1, 10);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 5000, strstr(st.last_error, "429") != NULL);
	ck_assert_int_eq(st.is_connected, 0);
	saw_retry_in = st.retry_in_s >= 1;
	WAIT_FOR(log, st, 10000, st.sent == 10);
	r0 = srv_get(s, 0);
	r1 = srv_get(s, 1);
	ck_assert_uint_eq(r0.status, 429);
	gap = r1.t_arrive_us - r0.t_reply_us;
	/* 1 ms of allowance: the client's clock reads whole milliseconds. */
	ck_assert_msg(gap >= 999000, "request after a 429 with Retry-After: 1 came %lld us later",
		      (long long)gap);
	ck_assert_msg(gap <= 10000000, "request after Retry-After: 1 came %lld ms later",
		      (long long)gap / 1000);
	ck_assert_str_eq(r0.idem, r1.idem);
	ck_assert_msg(saw_retry_in, "retry_in_s was 0 right after the 429");
	ck_assert_int_le(close_timed(log), TU_MS(3000));
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

START_TEST(test_retry_after_date_engine)
{
	char *dir = tu_mkdtemp("ra-date");
	srv *s = srv_start(script_retry_after);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	srv_req r0, r1, r2, r3;
	long when;
	size_t m;

	srv_set(s, 0, 1);
	srv_set(s, 1, 503);
	srv_set(s, 2, 1);
	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	append_samples(log, 1, 10);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 10000, st.sent == 10);
	r0 = srv_get(s, 0);
	r1 = srv_get(s, 1);
	pthread_mutex_lock(&s->mu);
	when = s->p[3];
	pthread_mutex_unlock(&s->mu);
	ck_assert_uint_eq(r0.status, 503);
	ck_assert_msg(r1.t_arrive_real_ms >= (int64_t)when * 1000 - 2,
		      "request came %lld ms before the Retry-After date",
		      (long long)((int64_t)when * 1000 - r1.t_arrive_real_ms));
	ck_assert_msg(r1.t_arrive_us - r0.t_reply_us >= 999000, "gap %lld us",
		      (long long)(r1.t_arrive_us - r0.t_reply_us));
	ck_assert_msg(r1.t_arrive_real_ms <= (int64_t)when * 1000 + TU_MS(10000),
		      "came %lld ms late", (long long)(r1.t_arrive_real_ms - (int64_t)when * 1000));

	/* A date in the past: retry at once (after the backoff only). */
	m = srv_nreq(s);
	pthread_mutex_lock(&s->mu);
	s->p[0] = (long)m + 1;
	s->p[4] = (long)m;
	s->p[2] = 2;
	pthread_mutex_unlock(&s->mu);
	append_samples(log, 11, 10);
	WAIT_FOR(log, st, 10000, st.sent == 20);
	r2 = srv_get(s, m);
	r3 = srv_get(s, m + 1);
	ck_assert_uint_eq(r2.status, 503);
	ck_assert_msg(r3.t_arrive_us - r2.t_reply_us <= (20 * 2 + SLACK_MS) * 1000,
		      "past Retry-After date: next request %lld ms later",
		      (long long)(r3.t_arrive_us - r2.t_reply_us) / 1000);
	ck_assert_int_le(close_timed(log), TU_MS(3000));
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

/* An HTTP-date Retry-After is measured against the I/O seam's wall clock,
 * not the process's: with the fake clock 3 s before the server's date
 * (1994-11-06 08:49:37 GMT, long past by the real clock), the uploader
 * waits exactly 3 s of (fake, frozen) monotonic time. Read with time(NULL)
 * the date is past and the wait is the 20 ms backoff. */
START_TEST(test_retry_after_date_seam_clock)
{
	const int64_t date_ms = 784111777000LL; /* Sun, 06 Nov 1994 08:49:37 GMT */
	char *dir = tu_mkdtemp("ra-seam");
	srv *s = srv_start(script_retry_after);
	char *url = url_for(s->port, "http", "127.0.0.1");
	tvfs_fault *f = tvfs_fault_new(NULL);
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	int64_t until = mono_ms() + 10000 * tu_time_factor();

	srv_set(s, 0, 1);
	srv_set(s, 1, 503);
	srv_set(s, 2, 2); /* the 1994 date */
	/* Fake monotonic time starts at the real one, so turning the fake
	 * clock off before closing never moves it backwards. */
	tvfs_fault_clock_set(f, date_ms - 3000, mono_ms());
	cfg_std(&c, dir, url);
	ck_assert_int_eq(eng_open_vfs(&log, &c, tvfs_fault_vfs(f)), 0);
	append_samples(log, 1, 10);
	ck_assert_int_eq(edgelog_start(log), 0);
	/* Time moves only when the test moves it: 5 ms a step until the 503
	 * is in, then it stands still, so retry_in_s is the whole wait. */
	for (;;) {
		ck_assert_int_eq(edgelog_get_status(log, &st), 0);
		if (strstr(st.last_error, "503"))
			break;
		ck_assert_msg(mono_ms() < until, "no 503 seen; " STATUS_FMT, STATUS_ARGS(st));
		tvfs_fault_clock_advance(f, 5);
		sleep_ms(5);
	}
	ck_assert_msg(st.retry_in_s == 3,
		      "Retry-After 3 s ahead of the seam's clock: retry in %llu s",
		      (unsigned long long)st.retry_in_s);
	ck_assert_uint_eq(st.sent, 0);
	/* 3 s of fake time later the retry goes out and succeeds. */
	tvfs_fault_clock_advance(f, 3000);
	WAIT_FOR(log, st, 10000, st.sent == 10);
	ck_assert_int_le(close_timed(log), 3000);
	tvfs_fault_free(f);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

START_TEST(test_retry_after_capped)
{
	char *dir = tu_mkdtemp("ra-cap");
	srv *s = srv_start(script_retry_after);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	srv_req r0, r1;
	int64_t gap_ms;

	srv_set(s, 0, 1);
	srv_set(s, 1, 503);
	srv_set(s, 2, 3); /* Retry-After: 3600 */
	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	append_samples(log, 1, 10);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 15000, st.sent == 10);
	r0 = srv_get(s, 0);
	r1 = srv_get(s, 1);
	gap_ms = (r1.t_arrive_us - r0.t_reply_us) / 1000;
	/* Honoured beyond the longest backoff (500 ms), but capped (the engine
   * caps at ten times retry_max_ms). */
	ck_assert_msg(gap_ms >= 500 && gap_ms <= 10 * 500 + TU_MS(1000),
		      "Retry-After: 3600 gave a %lld ms wait", (long long)gap_ms);
	ck_assert_int_le(close_timed(log), TU_MS(3000));
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

START_TEST(test_backoff_503_burst_then_reset)
{
	const int N = 10;
	char *dir = tu_mkdtemp("burst");
	srv *s = srv_start(script_first_n);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	int64_t late_max = 0;
	size_t m;
	int k;
	srv_req a, b;

	srv_set(s, 0, N);
	srv_set(s, 1, 503);
	cfg_std(&c, dir, url);
	/* About the backoff of one request: more 503s than poison detection
   * takes before it splits the batch. */
	c.poison_tries = N + 1;
	log = tu_open_ok(&c);
	append_samples(log, 1, 50);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 15000, st.sent == 50);
	ck_assert_uint_ge(srv_nreq(s), (size_t)N + 1);
	for (k = 0; k < N; k++) {
		int64_t gap;
		uint64_t bound = cap_for(20, 500, (unsigned)k) + SLACK_MS;
		a = srv_get(s, (size_t)k);
		b = srv_get(s, (size_t)k + 1);
		ck_assert_uint_eq(a.status, 503);
		gap = (b.t_arrive_us - a.t_reply_us) / 1000;
		ck_assert_msg(gap >= 0 && (uint64_t)gap <= bound,
			      "503 number %d: next request %lld ms later, bound %llu", k + 1,
			      (long long)gap, (unsigned long long)bound);
		ck_assert_str_eq(a.idem, b.idem); /* the same records, retried */
		if (k >= 3 && gap > late_max)
			late_max = gap;
	}
	ck_assert_uint_eq(srv_get(s, (size_t)N).status, 200);
	/* The cap grew: with caps 160..500 ms for attempts 3..9, all seven
   * gaps under 60 ms has odds about 2e-6 under full jitter. */
	ck_assert_msg(late_max > 60, "backoff never exceeded 60 ms after 4+ failures (max %lld)",
		      (long long)late_max);
	ck_assert_int_eq(st.is_connected, 1);

	/* After a success the backoff starts over: one 503, retried fast. */
	m = srv_nreq(s);
	srv_set(s, 0, (long)m + 1); /* request m fails, m + 1 succeeds */
	append_samples(log, 51, 10);
	WAIT_FOR(log, st, 10000, st.sent == 60);
	a = srv_get(s, m);
	b = srv_get(s, m + 1);
	ck_assert_uint_eq(a.status, 503);
	ck_assert_msg(b.t_arrive_us - a.t_reply_us <= (2 * 20 + SLACK_MS) * 1000,
		      "after a reset the retry came %lld ms later",
		      (long long)(b.t_arrive_us - a.t_reply_us) / 1000);
	ck_assert_int_le(close_timed(log), TU_MS(3000));
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

START_TEST(test_idempotency_key_stable_on_retry)
{
	char *dir = tu_mkdtemp("idem");
	srv *s = srv_start(script_first_n);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	int k;
	srv_req r0;

	srv_set(s, 0, 3);
	srv_set(s, 1, 503);
	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	append_samples(log, 1, 100);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 10000, st.sent == 100);
	r0 = srv_get(s, 0);
	ck_assert_uint_eq(r0.status, 503);
	for (k = 1; k <= 3; k++) {
		srv_req r = srv_get(s, (size_t)k);
		ck_assert_str_eq(r.idem, r0.idem);
		ck_assert_uint_eq(r.nrec, r0.nrec);
		pthread_mutex_lock(&s->mu);
		ck_assert_uint_eq(s->recs[r.first].seq, s->recs[r0.first].seq);
		pthread_mutex_unlock(&s->mu);
	}
	ck_assert_uint_eq(srv_get(s, 3).status, 200);
	check_request_headers(s, EDGELOG_FORMAT_NDJSON, 1, NULL);
	check_acked_range(s, 1, 100, 0);
	ck_assert_int_le(close_timed(log), TU_MS(3000));
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

static Suite *retry_suite(void)
{
	Suite *s = uploader_suite_create("uploader_retry");
	TCase *tc;

	tc = tcase_create("backoff");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_backoff_bounds);
	tcase_add_test(tc, test_backoff_distribution);
	tcase_add_test(tc, test_retry_after_seconds);
	tcase_add_test(tc, test_retry_after_dates);
	tcase_add_test(tc, test_retry_after_bad_dates);
	tcase_add_test(tc, test_retry_after_impossible_dates);
	tcase_add_test(tc, test_status_retryable);
	suite_add_tcase(s, tc);

	tc = tcase_create("engine_http");
	uploader_engine_tcase(tc);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_retry_after_seconds_engine);
	tcase_add_test(tc, test_retry_after_date_engine);
	tcase_add_test(tc, test_retry_after_date_seam_clock);
	tcase_add_test(tc, test_retry_after_capped);
	tcase_add_test(tc, test_backoff_503_burst_then_reset);
	tcase_add_test(tc, test_idempotency_key_stable_on_retry);
	suite_add_tcase(s, tc);

	return s;
}

TU_CHECK_MAIN(retry_suite)
