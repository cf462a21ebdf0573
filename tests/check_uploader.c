/*
 * check_uploader.c - the uploader: its pure pieces (backoff, Retry-After,
 * retryable statuses, wire encoding and gzip, msgpack -> JSON edge cases)
 * and the engine's upload path end to end against an in-process HTTP
 * server (libmicrohttpd on 127.0.0.1, port 0) whose answers each test
 * scripts.
 *
 * The server records, for every request, its arrival time (monotonic, when
 * the headers were in), the time its answer was queued, the headers the
 * protocol names (Content-Type, Content-Encoding, Idempotency-Key,
 * Authorization, User-Agent) and the records it decoded from the body
 * (gunzip, then NDJSON / JSON array / msgpack by Content-Type). Timing
 * assertions compare the time an answer was queued with the arrival of the
 * next request: the client cannot have seen the answer earlier, so a gap
 * shorter than a Retry-After is a request sent too early, whatever the
 * scheduling.
 *
 * Engine tests use short timeouts (retry_base_ms 20, retry_max_ms 500,
 * batch_timeout_ms 50, http_timeout_ms 1000, close_grace_ms 2000) and stay
 * on loopback; each is bounded well under 20 s.
 */
#include <arpa/inet.h>
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <edgelog.h>

#include "seg_format.h"
#include "seg_json.h"
#include "seg_writer.h"
#include "test_json.h"
#include "test_util.h"
#include "tool_sample.h"
#include "upl.h"
#include "upl_internal.h"

#define DEV "cam-test-01"
#define SLACK_MS 100 /* scheduling slack on a loaded 2-core machine */

/* ------------------------------------------------------------------------
 * Clocks and small helpers
 */

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_ms(void)
{
	return mono_us() / 1000;
}

static int64_t real_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Case-insensitive strstr. */
static int has_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++)
		if (!strncasecmp(hay, needle, n))
			return 1;
	return 0;
}

/* Inflate a gzip stream (exactly one member, nothing after it). */
static int gunzip(const void *in, size_t n, seg_buf *out, size_t cap)
{
	z_stream z;
	int r;

	memset(&z, 0, sizeof(z));
	out->len = 0;
	if (inflateInit2(&z, 15 + 16) != Z_OK)
		return -1;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	do {
		if (seg_buf_reserve(out, 65536)) {
			inflateEnd(&z);
			return -1;
		}
		z.next_out = (Bytef *)out->p + out->len;
		z.avail_out = 65536;
		r = inflate(&z, Z_NO_FLUSH);
		out->len = z.total_out;
		if (out->len > cap || (r != Z_OK && r != Z_STREAM_END)) {
			inflateEnd(&z);
			return -1;
		}
	} while (r != Z_STREAM_END);
	inflateEnd(&z);
	if (out->p)
		out->p[out->len] = 0;
	return z.avail_in == 0 ? 0 : -1;
}

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

static void imf_date(char *out, size_t cap, int64_t unix_s)
{
	time_t t = (time_t)unix_s;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

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

/* ------------------------------------------------------------------------
 * Decoding request bodies (used by the unit tests and the test server)
 */

typedef struct dec_rec {
	char dev[160];
	uint64_t seq;
	int64_t ts;
	char *data; /* canonical JSON text of "data" */
} dec_rec;

typedef struct dec_vec {
	dec_rec *v;
	size_t n, cap;
} dec_vec;

static void dec_free(dec_vec *d)
{
	size_t i;
	for (i = 0; i < d->n; i++)
		free(d->v[i].data);
	free(d->v);
	memset(d, 0, sizeof(*d));
}

static dec_rec *dec_push(dec_vec *d)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		dec_rec *nv = realloc(d->v, cap * sizeof(*nv));
		if (!nv)
			return NULL;
		d->v = nv;
		d->cap = cap;
	}
	memset(&d->v[d->n], 0, sizeof(d->v[0]));
	return &d->v[d->n++];
}

#define DEC_FAIL(...)                               \
	do {                                        \
		snprintf(err, errlen, __VA_ARGS__); \
		return -1;                          \
	} while (0)

/* One JSON record object: exactly device_id, seq, ts, data. */
static int dec_json_record(json_t *o, size_t idx, dec_vec *out, char *err, size_t errlen)
{
	json_t *dv = json_object_get(o, "device_id"), *sq = json_object_get(o, "seq"),
	       *ts = json_object_get(o, "ts"), *da = json_object_get(o, "data");
	dec_rec *r;

	if (!json_is_object(o))
		DEC_FAIL("record %zu: not an object", idx);
	if (!json_is_string(dv) || !json_is_integer(sq) || json_integer_value(sq) < 1 ||
	    !json_is_integer(ts) || !da)
		DEC_FAIL("record %zu: device_id/seq/ts/data missing or mistyped", idx);
	if (json_object_size(o) != 4)
		DEC_FAIL("record %zu: %zu keys, expected 4", idx, json_object_size(o));
	if (!(r = dec_push(out)))
		DEC_FAIL("out of memory");
	snprintf(r->dev, sizeof(r->dev), "%s", json_string_value(dv));
	r->seq = (uint64_t)json_integer_value(sq);
	r->ts = (int64_t)json_integer_value(ts);
	r->data = tu_canon(da);
	return 0;
}

static const msgpack_object *mp_get(const msgpack_object *m, const char *key)
{
	uint32_t i;
	size_t n = strlen(key);
	for (i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
		    !memcmp(k->via.str.ptr, key, n))
			return &m->via.map.ptr[i].val;
	}
	return NULL;
}

/* A whole (already inflated) body of the given format into out. */
static int decode_body(int format, const char *body, size_t len, dec_vec *out, char *err,
		       size_t errlen)
{
	json_error_t je;
	size_t idx = 0;

	if (format == EDGELOG_FORMAT_NDJSON) {
		size_t pos = 0;
		if (len && body[len - 1] != '\n')
			DEC_FAIL("NDJSON body does not end with a newline");
		while (pos < len) {
			const char *nl = memchr(body + pos, '\n', len - pos);
			size_t l = (size_t)(nl - (body + pos));
			json_t *o;
			int rc;
			if (!l)
				DEC_FAIL("empty line at byte %zu", pos);
			o = json_loadb(body + pos, l, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
			if (!o)
				DEC_FAIL("line %zu: %s", idx, je.text);
			rc = dec_json_record(o, idx++, out, err, errlen);
			json_decref(o);
			if (rc)
				return rc;
			pos += l + 1;
		}
		return 0;
	}
	if (format == EDGELOG_FORMAT_JSON) {
		json_t *a = json_loadb(body, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
		size_t i;
		if (!a)
			DEC_FAIL("JSON body: %s (line %d col %d)", je.text, je.line, je.column);
		if (!json_is_array(a)) {
			json_decref(a);
			DEC_FAIL("JSON body is not an array");
		}
		for (i = 0; i < json_array_size(a); i++)
			if (dec_json_record(json_array_get(a, i), i, out, err, errlen)) {
				json_decref(a);
				return -1;
			}
		json_decref(a);
		return 0;
	}
	{
		msgpack_unpacked u;
		size_t off = 0;
		int ret = 0;
		msgpack_unpacked_init(&u);
		while (off < len) {
			const msgpack_object *dv, *sq, *ts, *da;
			dec_rec *r;
			json_t *j;
			if (msgpack_unpack_next(&u, body, len, &off) != MSGPACK_UNPACK_SUCCESS) {
				snprintf(err, errlen, "msgpack record %zu: cannot unpack", idx);
				ret = -1;
				break;
			}
			if (u.data.type != MSGPACK_OBJECT_MAP || u.data.via.map.size != 4 ||
			    !(dv = mp_get(&u.data, "device_id")) ||
			    !(sq = mp_get(&u.data, "seq")) || !(ts = mp_get(&u.data, "ts")) ||
			    !(da = mp_get(&u.data, "data")) || dv->type != MSGPACK_OBJECT_STR ||
			    sq->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
			    (ts->type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
			     ts->type != MSGPACK_OBJECT_NEGATIVE_INTEGER)) {
				snprintf(err, errlen, "msgpack record %zu: not the record map",
					 idx);
				ret = -1;
				break;
			}
			if (!(r = dec_push(out))) {
				snprintf(err, errlen, "out of memory");
				ret = -1;
				break;
			}
			snprintf(r->dev, sizeof(r->dev), "%.*s", (int)dv->via.str.size,
				 dv->via.str.ptr);
			r->seq = sq->via.u64;
			r->ts = ts->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)ts->via.u64 :
									      ts->via.i64;
			j = tu_mpo_json(da);
			r->data = tu_canon(j);
			json_decref(j);
			idx++;
		}
		msgpack_unpacked_destroy(&u);
		return ret;
	}
}

/* ------------------------------------------------------------------------
 * Encoding: every format, gzip on and off, back to the same records
 */

typedef struct in_rec {
	uint64_t seq;
	int64_t ts;
	msgpack_sbuffer mp;
} in_rec;

/* Records for the round trip: samples plus shapes the JSON writer must
 * carry exactly (nothing lossy here: see the edge-case tests for those). */
static size_t build_inputs(in_rec *in, size_t cap)
{
	size_t n = 0;
	int k;

	for (k = 0; k < 30 && n < cap; k++, n++) {
		uint8_t buf[SAMPLE_CAP];
		size_t l = tool_sample_msgpack((uint64_t)k, buf, sizeof(buf));
		msgpack_sbuffer_init(&in[n].mp);
		msgpack_sbuffer_write(&in[n].mp, (const char *)buf, l);
	}
	for (k = 0; k < 12 && n < cap; k++, n++) {
		msgpack_packer pk;
		msgpack_sbuffer_init(&in[n].mp);
		msgpack_packer_init(&pk, &in[n].mp, msgpack_sbuffer_write);
		switch (k) {
		case 0:
			msgpack_pack_nil(&pk);
			break;
		case 1:
			msgpack_pack_true(&pk);
			break;
		case 2:
			msgpack_pack_int64(&pk, INT64_MIN);
			break;
		case 3:
			msgpack_pack_str_with_body(&pk, "ctl\x01\x1f\n\t\"q\\b/", 13);
			break;
		case 4:
			msgpack_pack_map(&pk, 0);
			break;
		case 5:
			msgpack_pack_array(&pk, 0);
			break;
		case 6:
			msgpack_pack_map(&pk, 2);
			msgpack_pack_str_with_body(&pk, "a", 1);
			msgpack_pack_array(&pk, 2);
			msgpack_pack_int(&pk, 1);
			msgpack_pack_map(&pk, 1);
			msgpack_pack_str_with_body(&pk, "b", 1);
			msgpack_pack_nil(&pk);
			msgpack_pack_int(&pk, 7); /* non-string key */
			msgpack_pack_str_with_body(&pk, "seven", 5);
			break;
		case 7:
			msgpack_pack_double(&pk, 1.5);
			break;
		case 8:
			msgpack_pack_bin_with_body(&pk, "\x00\x01\xff", 3);
			break;
		case 9:
			msgpack_pack_str_with_body(&pk, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
			break;
		case 10:
			msgpack_pack_uint64(&pk, (uint64_t)INT64_MAX);
			break;
		default:
			msgpack_pack_double(&pk, 0.1);
			break;
		}
	}
	for (k = 0; k < (int)n; k++) {
		in[k].seq = 1000 + (uint64_t)k * (k % 3 == 0 ? 1 : 2);
		in[k].ts = k == 1 ? -5 : k == 2 ? 0 : k == 3 ? INT64_MAX : 1715678493000 + k;
	}
	return n;
}

static void free_inputs(in_rec *in, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		msgpack_sbuffer_destroy(&in[i].mp);
}

START_TEST(test_encode_roundtrip)
{
	static const int formats[] = {EDGELOG_FORMAT_NDJSON, EDGELOG_FORMAT_JSON,
				      EDGELOG_FORMAT_MSGPACK};
	static const char *const ctypes[] = {"application/x-ndjson", "application/json",
					     "application/msgpack"};
	const int format = formats[_i / 2], gz = _i % 2;
	const char *dev = "cam \"7\" \\ \xc3\xbc/x";
	in_rec in[64];
	size_t n = build_inputs(in, 64), i;
	seg_buf body = {0}, z = {0}, plain = {0};
	dec_vec dec = {0};
	char err[256];
	const char *p;
	size_t plen;

	ck_assert_str_eq(upl_content_type(format), ctypes[_i / 2]);
	upl_body_begin(&body, format);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(upl_body_record(&body, format, i == 0, dev, in[i].seq, in[i].ts,
						 in[i].mp.data, in[i].mp.size, NULL),
				 0);
	upl_body_end(&body, format);
	ck_assert(!body.oom);
	p = body.p;
	plen = body.len;
	if (gz) {
		ck_assert_int_eq(upl_gzip(body.p, body.len, &z), 0);
		ck_assert_uint_ge(z.len, 18);
		ck_assert_int_eq((unsigned char)z.p[0], 0x1f);
		ck_assert_int_eq((unsigned char)z.p[1], 0x8b);
		ck_assert_int_eq((unsigned char)z.p[2], 8);
		ck_assert_msg(gunzip(z.p, z.len, &plain, 64u << 20) == 0, "gzip does not inflate");
		ck_assert_uint_eq(plain.len, body.len);
		ck_assert(!memcmp(plain.p, body.p, body.len));
		p = plain.p;
		plen = plain.len;
	}
	ck_assert_msg(decode_body(format, p, plen, &dec, err, sizeof(err)) == 0,
		      "format %d gzip %d: %s", format, gz, err);
	ck_assert_uint_eq(dec.n, n);
	for (i = 0; i < n; i++) {
		msgpack_unpacked u;
		size_t off = 0;
		json_t *j;
		char *want;

		ck_assert_str_eq(dec.v[i].dev, dev);
		ck_assert_uint_eq(dec.v[i].seq, in[i].seq);
		ck_assert_int_eq(dec.v[i].ts, in[i].ts);
		msgpack_unpacked_init(&u);
		ck_assert_int_eq(msgpack_unpack_next(&u, in[i].mp.data, in[i].mp.size, &off),
				 MSGPACK_UNPACK_SUCCESS);
		j = tu_mpo_json(&u.data);
		want = tu_canon(j);
		ck_assert_msg(!strcmp(dec.v[i].data, want),
			      "format %d record %zu: data\n  got  %s\n  want %s", format, i,
			      dec.v[i].data, want);
		free(want);
		json_decref(j);
		msgpack_unpacked_destroy(&u);
		if (format == EDGELOG_FORMAT_MSGPACK)
			/* The prediction travels byte for byte. */
			ck_assert_ptr_nonnull(memmem(p, plen, in[i].mp.data, in[i].mp.size));
	}
	if (format == EDGELOG_FORMAT_NDJSON) {
		size_t lines = 0;
		for (i = 0; i < plen; i++)
			lines += p[i] == '\n';
		ck_assert_uint_eq(lines, n);
	}
	dec_free(&dec);
	/* An empty body is well formed too. */
	upl_body_begin(&body, format);
	upl_body_end(&body, format);
	ck_assert_msg(decode_body(format, body.p ? body.p : "", body.len, &dec, err, sizeof(err)) ==
			      0,
		      "empty body: %s", err);
	ck_assert_uint_eq(dec.n, 0);
	dec_free(&dec);
	free_inputs(in, n);
	seg_buf_free(&body);
	seg_buf_free(&z);
	seg_buf_free(&plain);
}
END_TEST

START_TEST(test_gzip_sizes)
{
	static const size_t sizes[] = {0, 1, 2, 100, 65535, 65536, 65537, 3u << 20};
	uint64_t st = 99;
	size_t s, i;

	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		int kind;
		for (kind = 0; kind < 2; kind++) {
			size_t n = sizes[s];
			unsigned char *in = malloc(n + 1);
			seg_buf z = {0}, back = {0};
			ck_assert_ptr_nonnull(in);
			for (i = 0; i < n; i++)
				in[i] = kind ? (unsigned char)tu_rand(&st) :
					       (unsigned char)"ab{}:,"[i % 6];
			ck_assert_int_eq(upl_gzip(in, n, &z), 0);
			ck_assert_msg(gunzip(z.p, z.len, &back, 64u << 20) == 0,
				      "size %zu kind %d does not inflate", n, kind);
			ck_assert_uint_eq(back.len, n);
			ck_assert(n == 0 || !memcmp(back.p, in, n));
			if (!kind && n > 1000)
				ck_assert_msg(z.len < n / 4, "size %zu compressed to %zu", n,
					      z.len);
			/* Reusing the output buffer replaces its content. */
			ck_assert_int_eq(upl_gzip(in, n, &z), 0);
			ck_assert_int_eq(gunzip(z.p, z.len, &back, 64u << 20), 0);
			ck_assert_uint_eq(back.len, n);
			free(in);
			seg_buf_free(&z);
			seg_buf_free(&back);
		}
	}
}
END_TEST

/* ------------------------------------------------------------------------
 * msgpack -> JSON edge cases: valid JSON (jansson, strict) for anything the
 * engine accepts, through the wire encoder and through seg_mp_to_json.
 */

/* The data member of the NDJSON line upl_body_record makes of mp. Also
 * checks seg_mp_to_json alone gives the same, parseable text. */
static json_t *wire_data(const void *mp, size_t len, size_t jflags, char **text)
{
	seg_buf b = {0}, d = {0};
	json_error_t je;
	json_t *root, *data, *alone;

	ck_assert_msg(seg_mp_validate(mp, len) == 0, "test input is not one msgpack object");
	upl_body_begin(&b, EDGELOG_FORMAT_NDJSON);
	ck_assert_int_eq(upl_body_record(&b, EDGELOG_FORMAT_NDJSON, 1, DEV, 1, 2, mp, len, NULL),
			 0);
	upl_body_end(&b, EDGELOG_FORMAT_NDJSON);
	ck_assert(!b.oom);
	ck_assert_uint_gt(b.len, 0);
	ck_assert_int_eq(b.p[b.len - 1], '\n');
	ck_assert_ptr_eq(memchr(b.p, '\n', b.len), b.p + b.len - 1);
	root = json_loadb(b.p, b.len - 1, JSON_ALLOW_NUL | jflags, &je);
	ck_assert_msg(root != NULL, "invalid JSON (%s at col %d): %.300s", je.text, je.column, b.p);
	data = json_object_get(root, "data");
	ck_assert_ptr_nonnull(data);
	json_incref(data);
	json_decref(root);

	ck_assert_int_eq(seg_mp_to_json(mp, len, &d), 0);
	alone = json_loadb(d.p, d.len, JSON_ALLOW_NUL | JSON_DECODE_ANY | jflags, &je);
	ck_assert_msg(alone != NULL, "seg_mp_to_json: invalid JSON (%s): %.300s", je.text, d.p);
	ck_assert(json_equal(alone, data));
	json_decref(alone);
	if (text)
		*text = strdup(d.p);
	seg_buf_free(&b);
	seg_buf_free(&d);
	return data;
}

/* data_encoding=string: "data" is a JSON string whose content parses back
 * to the same value as the object form, in every format; the envelope
 * does not change. */
START_TEST(test_data_as_json_string)
{
	static const int formats[] = {EDGELOG_FORMAT_NDJSON, EDGELOG_FORMAT_JSON,
				      EDGELOG_FORMAT_MSGPACK};
	seg_buf b = {0}, scratch = {0}, want = {0};
	uint8_t mp[SAMPLE_CAP];
	size_t len = tool_sample_msgpack(7, mp, sizeof(mp)), f;
	json_error_t je;

	ck_assert_int_eq(seg_mp_to_json(mp, len, &want), 0);
	for (f = 0; f < 3; f++) {
		const char *text;
		size_t tlen;
		json_t *root = NULL, *rec, *data, *parsed, *orig;
		msgpack_unpacked u;
		size_t off = 0;

		upl_body_begin(&b, formats[f]);
		ck_assert_int_eq(upl_body_record(&b, formats[f], 1, DEV, 9, 5, mp, len, &scratch),
				 0);
		upl_body_end(&b, formats[f]);
		ck_assert(!b.oom);
		msgpack_unpacked_init(&u);
		if (formats[f] == EDGELOG_FORMAT_MSGPACK) {
			const msgpack_object *o;
			ck_assert_int_eq(msgpack_unpack_next(&u, b.p, b.len, &off),
					 MSGPACK_UNPACK_SUCCESS);
			ck_assert_uint_eq(off, b.len);
			ck_assert_ptr_nonnull(o = mp_get(&u.data, "seq"));
			ck_assert_uint_eq(o->via.u64, 9);
			ck_assert_ptr_nonnull(o = mp_get(&u.data, "data"));
			ck_assert_int_eq(o->type, MSGPACK_OBJECT_STR);
			text = o->via.str.ptr;
			tlen = o->via.str.size;
		} else {
			root = json_loadb(b.p, b.len, 0, &je);
			ck_assert_msg(root != NULL, "%s: %.200s", je.text, b.p);
			rec = formats[f] == EDGELOG_FORMAT_JSON ? json_array_get(root, 0) : root;
			ck_assert_int_eq(json_integer_value(json_object_get(rec, "seq")), 9);
			ck_assert_str_eq(json_string_value(json_object_get(rec, "device_id")), DEV);
			data = json_object_get(rec, "data");
			ck_assert_msg(json_is_string(data), "data is not a string: %.200s", b.p);
			text = json_string_value(data);
			tlen = json_string_length(data);
		}
		/* The string is exactly the compact JSON of the record. */
		ck_assert_uint_eq(tlen, want.len);
		ck_assert(!memcmp(text, want.p, tlen));
		parsed = json_loadb(text, tlen, 0, &je);
		ck_assert_ptr_nonnull(parsed);
		orig = json_loadb(want.p, want.len, 0, &je);
		ck_assert(json_equal(parsed, orig));
		json_decref(parsed);
		json_decref(orig);
		json_decref(root);
		msgpack_unpacked_destroy(&u);
	}
	seg_buf_free(&b);
	seg_buf_free(&scratch);
	seg_buf_free(&want);
}
END_TEST

#define PACK_BEGIN()               \
	msgpack_sbuffer sb;        \
	msgpack_packer pk;         \
	msgpack_sbuffer_init(&sb); \
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write)
#define PACK_RESET() msgpack_sbuffer_clear(&sb)

START_TEST(test_json_strings_escaped)
{
	char s[64];
	size_t n = 0;
	int c;
	json_t *v;
	PACK_BEGIN();

	for (c = 0; c < 0x20; c++)
		s[n++] = (char)c;
	memcpy(s + n, "\"\\/\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 14);
	n += 14;
	msgpack_pack_str_with_body(&pk, s, n);
	v = wire_data(sb.data, sb.size, 0, NULL);
	ck_assert(json_is_string(v));
	ck_assert_uint_eq(json_string_length(v), n);
	ck_assert(!memcmp(json_string_value(v), s, n));
	json_decref(v);

	/* A key with the same bytes. */
	PACK_RESET();
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "k\"\\\n\x01", 5);
	msgpack_pack_int(&pk, 1);
	v = wire_data(sb.data, sb.size, 0, NULL);
	ck_assert_ptr_nonnull(json_object_get(v, "k\"\\\n\x01"));
	json_decref(v);

	/* Every string width: fixstr, str8, str16, str32. */
	{
		static const size_t lens[] = {0, 31, 32, 255, 256, 65535, 65536, 70000};
		size_t i, k;
		for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			char *big = malloc(lens[i] + 1);
			for (k = 0; k < lens[i]; k++)
				big[k] = (char)('a' + k % 26);
			PACK_RESET();
			msgpack_pack_str_with_body(&pk, big, lens[i]);
			v = wire_data(sb.data, sb.size, 0, NULL);
			ck_assert_uint_eq(json_string_length(v), lens[i]);
			ck_assert(!memcmp(json_string_value(v), big, lens[i]));
			json_decref(v);
			free(big);
		}
	}
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* Remove every U+FFFD from s. */
static void strip_fffd(const char *s, size_t n, char *out)
{
	size_t i, o = 0;
	for (i = 0; i < n;) {
		if (i + 3 <= n && !memcmp(s + i, "\xef\xbf\xbd", 3)) {
			i += 3;
			continue;
		}
		out[o++] = s[i++];
	}
	out[o] = 0;
}

START_TEST(test_json_invalid_utf8)
{
	static const struct {
		const char *in, *kept;
	} cases[] = {
		{"a\xff"
		 "b",
		 "ab"},
		{"\xc3(", "("},
		{"\xed\xa0\x80x", "x"}, /* UTF-16 surrogate */
		{"\xc0\xafz", "z"},     /* overlong '/' */
		{"\xe0\x80\xafz", "z"}, /* overlong, 3 bytes */
		{"q\xe2\x82", "q"},     /* truncated at the end */
		{"\xf8\x88\x80\x80\x80!", "!"},
		{"\xf4\x90\x80\x80?", "?"}, /* beyond U+10FFFF */
		{"\x80", ""},               /* lone continuation */
		{"\xc3\xa9\xff\xe2\x82\xac", "\xc3\xa9\xe2\x82\xac"},
	};
	size_t i;
	PACK_BEGIN();

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char kept[64];
		json_t *v;
		PACK_RESET();
		msgpack_pack_str_with_body(&pk, cases[i].in, strlen(cases[i].in));
		v = wire_data(sb.data, sb.size, 0, NULL); /* jansson checks UTF-8 */
		ck_assert(json_is_string(v));
		ck_assert_msg(strstr(json_string_value(v), "\xef\xbf\xbd") != NULL,
			      "case %zu: no U+FFFD", i);
		strip_fffd(json_string_value(v), json_string_length(v), kept);
		ck_assert_msg(!strcmp(kept, cases[i].kept), "case %zu: kept '%s', want '%s'", i,
			      kept, cases[i].kept);
		json_decref(v);

		/* The same bytes as a map key, and as the device id. */
		PACK_RESET();
		msgpack_pack_map(&pk, 1);
		msgpack_pack_str_with_body(&pk, cases[i].in, strlen(cases[i].in));
		msgpack_pack_true(&pk);
		v = wire_data(sb.data, sb.size, 0, NULL);
		ck_assert_uint_eq(json_object_size(v), 1);
		json_decref(v);
	}
	{
		seg_buf b = {0};
		json_error_t je;
		json_t *o;
		upl_body_begin(&b, EDGELOG_FORMAT_JSON);
		upl_body_record(&b, EDGELOG_FORMAT_JSON, 1, "dev\xff\x01", 1, 1, "\xc0", 1, NULL);
		upl_body_end(&b, EDGELOG_FORMAT_JSON);
		o = json_loadb(b.p, b.len, 0, &je);
		ck_assert_msg(o != NULL, "%s: %s", je.text, b.p);
		json_decref(o);
		seg_buf_free(&b);
	}
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_json_binary_base64)
{
	static const size_t lens[] = {0, 1, 2, 3, 4, 5, 256, 70000};
	size_t i, k;
	PACK_BEGIN();

	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		unsigned char *bin = malloc(lens[i] + 1);
		char *want;
		json_t *v;
		for (k = 0; k < lens[i]; k++)
			bin[k] = (unsigned char)(k * 7 + 255);
		PACK_RESET();
		msgpack_pack_bin_with_body(&pk, bin, lens[i]);
		v = wire_data(sb.data, sb.size, 0, NULL);
		want = tu_b64(bin, lens[i]);
		ck_assert(json_is_string(v));
		ck_assert_str_eq(json_string_value(v), want);
		json_decref(v);
		free(want);
		free(bin);
	}
	{
		char *known = tu_b64((const unsigned char *)"\x00\x01\x02\xff", 4);
		ck_assert_str_eq(known, "AAEC/w==");
		free(known);
	}
	/* ext: {"ext": type, "data": base64}, every width. */
	{
		static const size_t elens[] = {1, 2, 4, 8, 16, 3, 300, 70000};
		for (i = 0; i < sizeof(elens) / sizeof(elens[0]); i++) {
			char *body = calloc(1, elens[i]);
			json_t *v;
			PACK_RESET();
			msgpack_pack_ext_with_body(&pk, body, elens[i], (int8_t)(i == 0 ? -1 : 5));
			v = wire_data(sb.data, sb.size, 0, NULL);
			ck_assert(json_is_object(v));
			ck_assert(json_is_integer(json_object_get(v, "ext")));
			ck_assert(json_is_string(json_object_get(v, "data")));
			json_decref(v);
			free(body);
		}
	}
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_json_floats)
{
	static const double dv[] = {0.1,
				    1e300,
				    -1e-300,
				    5e-324,
				    2.0,
				    -0.0,
				    0.0,
				    1.7976931348623157e308,
				    123456789.123456789,
				    1.0 / 3};
	static const float fv[] = {0.1f, 1.5f, -2.25f, 3.4028235e38f, 1e-45f, 16777216.0f, 0.0f};
	size_t i;
	json_t *v;
	PACK_BEGIN();

	/* NaN and infinities: null (float64 and float32). */
	{
		const double nf[] = {NAN, INFINITY, -INFINITY, -NAN};
		for (i = 0; i < 4; i++) {
			PACK_RESET();
			msgpack_pack_double(&pk, nf[i]);
			v = wire_data(sb.data, sb.size, 0, NULL);
			ck_assert_msg(json_is_null(v), "float64 case %zu is not null", i);
			json_decref(v);
			PACK_RESET();
			msgpack_pack_float(&pk, (float)nf[i]);
			v = wire_data(sb.data, sb.size, 0, NULL);
			ck_assert_msg(json_is_null(v), "float32 case %zu is not null", i);
			json_decref(v);
		}
		/* Inside containers and as a key too. */
		PACK_RESET();
		msgpack_pack_map(&pk, 2);
		msgpack_pack_str_with_body(&pk, "x", 1);
		msgpack_pack_array(&pk, 2);
		msgpack_pack_double(&pk, NAN);
		msgpack_pack_double(&pk, -INFINITY);
		msgpack_pack_double(&pk, INFINITY);
		msgpack_pack_int(&pk, 1);
		v = wire_data(sb.data, sb.size, 0, NULL);
		ck_assert(json_is_null(json_array_get(json_object_get(v, "x"), 0)));
		ck_assert_uint_eq(json_object_size(v), 2);
		json_decref(v);
	}
	/* Finite doubles read back as the same double, and as reals. */
	for (i = 0; i < sizeof(dv) / sizeof(dv[0]); i++) {
		PACK_RESET();
		msgpack_pack_double(&pk, dv[i]);
		v = wire_data(sb.data, sb.size, 0, NULL);
		ck_assert_msg(json_is_real(v), "double %.17g is not a JSON real", dv[i]);
		ck_assert_msg(json_real_value(v) == dv[i], "double %.17g read back as %.17g", dv[i],
			      json_real_value(v));
		json_decref(v);
	}
	/* float32: the value of the float, exactly. */
	for (i = 0; i < sizeof(fv) / sizeof(fv[0]); i++) {
		PACK_RESET();
		msgpack_pack_float(&pk, fv[i]);
		ck_assert_uint_eq(sb.size, 5);
		v = wire_data(sb.data, sb.size, 0, NULL);
		ck_assert_msg(json_is_real(v), "float %.9g is not a JSON real", (double)fv[i]);
		ck_assert_msg(json_real_value(v) == (double)fv[i], "float %.9g read back as %.17g",
			      (double)fv[i], json_real_value(v));
		json_decref(v);
	}
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_json_integers)
{
	/* Explicit encodings, every width and sign. */
	static const struct {
		unsigned char b[9];
		size_t n;
		const char *text;
	} enc[] = {
		{{0x7f}, 1, "127"},
		{{0xe0}, 1, "-32"},
		{{0xcc, 0xff}, 2, "255"},
		{{0xcd, 0xff, 0xff}, 3, "65535"},
		{{0xce, 0xff, 0xff, 0xff, 0xff}, 5, "4294967295"},
		{{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9, "18446744073709551615"},
		{{0xd0, 0x80}, 2, "-128"},
		{{0xd0, 0x7f}, 2, "127"},
		{{0xd1, 0x80, 0x00}, 3, "-32768"},
		{{0xd2, 0x80, 0, 0, 0}, 5, "-2147483648"},
		{{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}, 9, "-9223372036854775808"},
		{{0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9, "9223372036854775807"},
		{{0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9, "-1"},
	};
	size_t i;

	for (i = 0; i < sizeof(enc) / sizeof(enc[0]); i++) {
		char *text = NULL;
		json_t *v = wire_data(enc[i].b, enc[i].n, JSON_DECODE_INT_AS_REAL, &text);
		ck_assert_msg(!strcmp(text, enc[i].text), "case %zu: '%s', want '%s'", i, text,
			      enc[i].text);
		free(text);
		json_decref(v);
	}
	/* int64 min as an integer jansson reads exactly. */
	{
		json_t *v = wire_data(enc[10].b, enc[10].n, 0, NULL);
		ck_assert(json_is_integer(v));
		ck_assert(json_integer_value(v) == INT64_MIN);
		json_decref(v);
	}
	/* uint64 max: the literal, valid JSON (jansson can only read it as a
   * real, which JSON_DECODE_INT_AS_REAL does). */
	{
		json_t *v = wire_data(enc[5].b, enc[5].n, JSON_DECODE_INT_AS_REAL, NULL);
		ck_assert(json_is_real(v));
		ck_assert(json_real_value(v) == 18446744073709551615.0);
		json_decref(v);
	}
}
END_TEST

START_TEST(test_json_non_string_keys)
{
	json_t *v;
	const char *k;
	json_t *val;
	int seen = 0;
	PACK_BEGIN();

	msgpack_pack_map(&pk, 11);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_int(&pk, 101);
	msgpack_pack_int(&pk, -5);
	msgpack_pack_int(&pk, 102);
	msgpack_pack_uint64(&pk, UINT64_MAX);
	msgpack_pack_int(&pk, 103);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_int(&pk, 2);
	msgpack_pack_int(&pk, 104);
	msgpack_pack_nil(&pk);
	msgpack_pack_int(&pk, 105);
	msgpack_pack_true(&pk);
	msgpack_pack_int(&pk, 106);
	msgpack_pack_false(&pk);
	msgpack_pack_int(&pk, 107);
	msgpack_pack_double(&pk, 1.5);
	msgpack_pack_int(&pk, 108);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "k", 1);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_int(&pk, 109);
	msgpack_pack_bin_with_body(&pk, "\x01\x02", 2);
	msgpack_pack_int(&pk, 110);
	msgpack_pack_str_with_body(&pk, "s", 1);
	msgpack_pack_int(&pk, 111);
	v = wire_data(sb.data, sb.size, JSON_REJECT_DUPLICATES, NULL);
	ck_assert(json_is_object(v));
	ck_assert_uint_eq(json_object_size(v), 11);
#define KEY_IS(key, n) \
	ck_assert_msg(json_integer_value(json_object_get(v, key)) == (n), "key %s", key)
	KEY_IS("1", 101);
	KEY_IS("-5", 102);
	KEY_IS("18446744073709551615", 103);
	KEY_IS("[1,2]", 104);
	KEY_IS("null", 105);
	KEY_IS("true", 106);
	KEY_IS("false", 107);
	KEY_IS("1.5", 108);
	KEY_IS("{\"k\":1}", 109);
	KEY_IS("s", 111);
#undef KEY_IS
	json_object_foreach(v, k, val)
	{
		if (json_integer_value(val) == 110) {
			ck_assert_msg(strstr(k, "AQI=") != NULL, "binary key became '%s'", k);
			seen = 1;
		}
	}
	ck_assert(seen);
	json_decref(v);

	/* Nested: a key that is a map holding a non-string key and a NaN. */
	PACK_RESET();
	msgpack_pack_map(&pk, 1);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_nil(&pk);
	msgpack_pack_str_with_body(&pk, "q\"", 2);
	msgpack_pack_int(&pk, 3);
	msgpack_pack_double(&pk, NAN);
	msgpack_pack_int(&pk, 1);
	v = wire_data(sb.data, sb.size, 0, NULL);
	ck_assert_uint_eq(json_object_size(v), 1);
	json_decref(v);
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* depth nested containers around a 1: kind 0 arrays, 1 maps {"a": ...},
 * 2 alternating, 3 maps keyed by arrays. */
static void pack_nested(msgpack_packer *pk, int depth, int kind)
{
	int d;
	for (d = 0; d < depth; d++) {
		int map = kind == 1 || (kind == 2 && d % 2) || kind == 3;
		if (map) {
			msgpack_pack_map(pk, 1);
			if (kind == 3) {
				msgpack_pack_array(pk, 1);
				msgpack_pack_int(pk, d);
			} else {
				msgpack_pack_str_with_body(pk, "a", 1);
			}
		} else {
			msgpack_pack_array(pk, 1);
		}
	}
	msgpack_pack_int(pk, 1);
}

static int json_depth(json_t *v)
{
	int d = 0;
	while (json_is_array(v) || json_is_object(v)) {
		d++;
		if (json_is_array(v)) {
			v = json_array_get(v, 0);
		} else {
			void *it = json_object_iter(v);
			v = it ? json_object_iter_value(it) : NULL;
		}
	}
	return d;
}

START_TEST(test_json_deep_nesting)
{
	int kind;
	PACK_BEGIN();

	for (kind = 0; kind < 4; kind++) {
		json_t *v;
		PACK_RESET();
		pack_nested(&pk, 200, kind);
		v = wire_data(sb.data, sb.size, 0, NULL);
		ck_assert_int_eq(json_depth(v), 200);
		json_decref(v);
	}
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* Whatever depth the engine's append check accepts, the JSON writer must
 * carry (the issue: "valid JSON for anything the engine accepts"). */
START_TEST(test_json_depth_limit_matches_append)
{
	int depth, kind, accepted = 0;
	PACK_BEGIN();

	for (kind = 0; kind < 3; kind++)
		for (depth = 240; depth <= 270; depth++) {
			seg_buf b = {0};
			PACK_RESET();
			pack_nested(&pk, depth, kind);
			if (seg_mp_validate(sb.data, sb.size) != 0)
				continue; /* the engine refuses it at append */
			accepted++;
			ck_assert_msg(seg_mp_to_json(sb.data, sb.size, &b) == 0,
				      "kind %d depth %d: accepted at append, refused by the JSON "
				      "writer",
				      kind, depth);
			seg_buf_free(&b);
			json_decref(wire_data(sb.data, sb.size, 0, NULL));
		}
	ck_assert_int_gt(accepted, 0);
	/* Deeper than any limit: refused at append (never reaches the wire). */
	PACK_RESET();
	pack_nested(&pk, 5000, 0);
	ck_assert_uint_ne(seg_mp_validate(sb.data, sb.size), 0);
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_json_containers)
{
	json_t *v;
	int k;
	PACK_BEGIN();

	/* array16 / map16 / array32 / map32 headers. */
	msgpack_pack_array(&pk, 20);
	for (k = 0; k < 20; k++)
		msgpack_pack_int(&pk, k);
	v = wire_data(sb.data, sb.size, 0, NULL);
	ck_assert_uint_eq(json_array_size(v), 20);
	json_decref(v);
	PACK_RESET();
	msgpack_pack_map(&pk, 20);
	for (k = 0; k < 20; k++) {
		char key[8];
		snprintf(key, sizeof(key), "k%d", k);
		msgpack_pack_str_with_body(&pk, key, strlen(key));
		msgpack_pack_int(&pk, k);
	}
	v = wire_data(sb.data, sb.size, 0, NULL);
	ck_assert_uint_eq(json_object_size(v), 20);
	json_decref(v);
	{
		static const unsigned char a32[] = {0xdd, 0, 0, 0, 2, 0x01, 0xc0};
		static const unsigned char m32[] = {0xdf, 0, 0, 0, 1, 0xa1, 'x', 0xc3};
		static const unsigned char empty[] = {0x92, 0x90, 0x80};
		v = wire_data(a32, sizeof(a32), 0, NULL);
		ck_assert_uint_eq(json_array_size(v), 2);
		ck_assert(json_is_null(json_array_get(v, 1)));
		json_decref(v);
		v = wire_data(m32, sizeof(m32), 0, NULL);
		ck_assert(json_is_true(json_object_get(v, "x")));
		json_decref(v);
		v = wire_data(empty, sizeof(empty), 0, NULL);
		ck_assert_uint_eq(json_array_size(json_array_get(v, 0)), 0);
		ck_assert_uint_eq(json_object_size(json_array_get(v, 1)), 0);
		json_decref(v);
	}
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* Issue 9, defect 1: maps used as keys of maps, 40 deep in 82 bytes, once
 * doubled the JSON at every level (terabytes). Now the text is linear in
 * the input and says the same at every depth: the key text of the inner
 * maps, escaped once. */
START_TEST(test_json_nested_map_keys_linear)
{
	static const int levels[] = {1, 2, 3, 40, 200};
	size_t i;

	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		uint8_t rec[512];
		size_t n = tu_nested_key_record(levels[i], rec);
		char *want = tu_nested_key_json(levels[i]);
		json_error_t je;
		json_t *w, *got;
		seg_buf d = {0};

		if (levels[i] == 40)
			ck_assert_uint_eq(n, 82);
		ck_assert_uint_eq(seg_mp_validate(rec, n), 0);
		ck_assert_int_eq(seg_mp_to_json(rec, n, &d), 0);
		ck_assert_msg(d.len <= SEG_JSON_MAX_EXPANSION * n,
			      "%d levels: %zu bytes of JSON for %zu of msgpack", levels[i], d.len,
			      n);
		ck_assert_str_eq(d.p, want);
		w = json_loads(want, 0, &je);
		ck_assert_msg(w != NULL, "%s: %s", je.text, want);
		got = wire_data(rec, n, JSON_REJECT_DUPLICATES, NULL);
		ck_assert(json_equal(got, w));
		json_decref(got);
		json_decref(w);
		free(want);
		seg_buf_free(&d);
	}
}
END_TEST

/* A payload that is not one msgpack object (a frame's checksum does not
 * prove it is) cannot go on the wire: the encoder refuses it and leaves
 * the body as it was, valid, for the uploader to dead-letter the record. */
START_TEST(test_json_undecodable_refused)
{
	static const unsigned char bad[] = {0x92, 0x01}; /* array of 2, one element */
	static const unsigned char two[] = {0x01, 0x02}; /* two objects, not one */
	int f;

	for (f = EDGELOG_FORMAT_NDJSON; f <= EDGELOG_FORMAT_MSGPACK; f++) {
		seg_buf b = {0};
		size_t before;
		upl_body_begin(&b, f);
		ck_assert_int_eq(upl_body_record(&b, f, 1, DEV, 1, 5, "\x01", 1, NULL), 0);
		before = b.len;
		ck_assert_int_eq(upl_body_record(&b, f, 0, DEV, 2, 5, bad, sizeof(bad), NULL), -1);
		ck_assert_uint_eq(b.len, before);
		ck_assert_int_eq(upl_body_record(&b, f, 0, DEV, 2, 5, two, sizeof(two), NULL), -1);
		ck_assert_uint_eq(b.len, before);
		ck_assert_int_eq(upl_body_record(&b, f, 0, DEV, 3, 5, "\xc0", 1, NULL), 0);
		upl_body_end(&b, f);
		{
			dec_vec dv = {0};
			char err[256] = "";
			ck_assert_msg(decode_body(f, b.p, b.len, &dv, err, sizeof(err)) == 0,
				      "format %d: %s", f, err);
			ck_assert_uint_eq(dv.n, 2);
			ck_assert_uint_eq(dv.v[0].seq, 1);
			ck_assert_uint_eq(dv.v[1].seq, 3);
			dec_free(&dv);
		}
		seg_buf_free(&b);
	}
}
END_TEST

/* ------------------------------------------------------------------------
 * The in-process test server
 */

#define SRV_MAX_BODY (64u << 20)

typedef struct srv_reply {
	unsigned status;      /* 0: 200, or 400 if the body did not decode */
	char retry_after[64]; /* "": no Retry-After */
	char body[512];       /* "": "ok" */
	uint64_t big_body;    /* > 0: a generated body of this many bytes */
	int sleep_ms;         /* before answering (interrupted by srv_stop) */
} srv_reply;

typedef struct srv_req {
	int64_t t_arrive_us; /* monotonic: the request's headers were in */
	int64_t t_arrive_real_ms;
	int64_t t_reply_us; /* monotonic: the answer was queued (0: not yet) */
	char method[16], ctype[80], cenc[40], idem[200], auth[400], ua[80];
	size_t raw_len;
	size_t plain_len; /* after gunzip (raw_len when not compressed) */
	int decoded;
	char derr[200];
	size_t first, nrec; /* into srv.recs */
	int contiguous;     /* seqs ascend by one */
	unsigned status;
} srv_req;

typedef struct srv_rec {
	uint64_t seq;
	int64_t ts;
	char dev[160];
	char *data; /* canonical JSON (NULL unless keep_data) */
	size_t req;
} srv_rec;

typedef struct srv srv;
/* Decide the answer to request idx (mu held). */
typedef void (*srv_script_fn)(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs,
			      srv_reply *out);

struct srv {
	struct MHD_Daemon *d;
	int port;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	int stopping;
	srv_script_fn script;
	long p[8]; /* the script's knobs, under mu */
	int keep_data;
	srv_req *reqs;
	size_t nreq, capreq;
	srv_rec *recs;
	size_t nrec, caprec;
	int64_t big_sent; /* bytes of generated bodies handed to MHD */
};

typedef struct srv_conn {
	int64_t t0_us, t0_real_ms;
	char *buf;
	size_t len, cap;
	int over;
} srv_conn;

static void srv_done(void *cls, struct MHD_Connection *c, void **con_cls,
		     enum MHD_RequestTerminationCode toe)
{
	srv_conn *cx = *con_cls;
	(void)cls;
	(void)c;
	(void)toe;
	if (cx) {
		free(cx->buf);
		free(cx);
	}
	*con_cls = NULL;
}

static void hdr(struct MHD_Connection *c, const char *name, char *out, size_t cap)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
	snprintf(out, cap, "%s", v ? v : "");
}

static ssize_t big_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	srv *s = cls;
	size_t i;
	for (i = 0; i < max; i++)
		buf[i] = (char)("garbage\x01\xff{\"]\n"[(pos + i) % 13]);
	__atomic_add_fetch(&s->big_sent, (int64_t)max, __ATOMIC_RELAXED);
	return (ssize_t)max;
}

static int fmt_of(const char *ctype)
{
	if (!strncmp(ctype, "application/x-ndjson", 20))
		return EDGELOG_FORMAT_NDJSON;
	if (!strncmp(ctype, "application/json", 16))
		return EDGELOG_FORMAT_JSON;
	if (!strncmp(ctype, "application/msgpack", 19))
		return EDGELOG_FORMAT_MSGPACK;
	return 0;
}

static void srv_wait_locked(srv *s, int ms)
{
	struct timespec ts;
	int64_t until = mono_ms() + ms;
	while (!s->stopping && mono_ms() < until) {
		int64_t left = until - mono_ms();
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (left % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
	}
}

static enum MHD_Result srv_handle(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	srv *s = cls;
	srv_conn *cx = *con_cls;
	srv_req rq;
	srv_reply rp;
	dec_vec dv = {0};
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t idx, i;
	const char *body;
	size_t blen;
	seg_buf plain = {0};

	(void)url;
	(void)version;
	if (!cx) {
		cx = calloc(1, sizeof(*cx));
		if (!cx)
			return MHD_NO;
		cx->t0_us = mono_us();
		cx->t0_real_ms = real_ms();
		*con_cls = cx;
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;
		if (cx->len + n > SRV_MAX_BODY) {
			cx->over = 1;
		} else {
			if (cx->len + n > cx->cap) {
				size_t cap = cx->cap ? cx->cap : 65536;
				char *nb;
				while (cap < cx->len + n)
					cap *= 2;
				nb = realloc(cx->buf, cap);
				if (!nb)
					return MHD_NO;
				cx->buf = nb;
				cx->cap = cap;
			}
			memcpy(cx->buf + cx->len, upload, n);
			cx->len += n;
		}
		*upload_size = 0;
		return MHD_YES;
	}

	/* The whole request is in. */
	memset(&rq, 0, sizeof(rq));
	rq.t_arrive_us = cx->t0_us;
	rq.t_arrive_real_ms = cx->t0_real_ms;
	snprintf(rq.method, sizeof(rq.method), "%s", method);
	hdr(c, "Content-Type", rq.ctype, sizeof(rq.ctype));
	hdr(c, "Content-Encoding", rq.cenc, sizeof(rq.cenc));
	hdr(c, "Idempotency-Key", rq.idem, sizeof(rq.idem));
	hdr(c, "Authorization", rq.auth, sizeof(rq.auth));
	hdr(c, "User-Agent", rq.ua, sizeof(rq.ua));
	rq.raw_len = cx->len;
	body = cx->buf ? cx->buf : "";
	blen = cx->len;
	rq.decoded = 1;
	if (cx->over) {
		rq.decoded = 0;
		snprintf(rq.derr, sizeof(rq.derr), "body over %u bytes", SRV_MAX_BODY);
	} else if (!strcasecmp(rq.cenc, "gzip")) {
		if (gunzip(body, blen, &plain, 512u << 20)) {
			rq.decoded = 0;
			snprintf(rq.derr, sizeof(rq.derr), "bad gzip body (%zu bytes)", blen);
		} else {
			body = plain.p ? plain.p : "";
			blen = plain.len;
		}
	} else if (rq.cenc[0]) {
		rq.decoded = 0;
		snprintf(rq.derr, sizeof(rq.derr), "unknown Content-Encoding %s", rq.cenc);
	}
	rq.plain_len = blen;
	if (rq.decoded && !fmt_of(rq.ctype)) {
		rq.decoded = 0;
		snprintf(rq.derr, sizeof(rq.derr), "unknown Content-Type '%s'", rq.ctype);
	}
	if (rq.decoded && decode_body(fmt_of(rq.ctype), body, blen, &dv, rq.derr, sizeof(rq.derr)))
		rq.decoded = 0;
	seg_buf_free(&plain);
	rq.contiguous = 1;
	for (i = 1; i < dv.n; i++)
		if (dv.v[i].seq != dv.v[i - 1].seq + 1)
			rq.contiguous = 0;

	memset(&rp, 0, sizeof(rp));
	pthread_mutex_lock(&s->mu);
	if (s->nreq == s->capreq) {
		size_t cap = s->capreq ? s->capreq * 2 : 256;
		srv_req *nr = realloc(s->reqs, cap * sizeof(*nr));
		if (!nr) {
			pthread_mutex_unlock(&s->mu);
			dec_free(&dv);
			return MHD_NO;
		}
		s->reqs = nr;
		s->capreq = cap;
	}
	if (s->nrec + dv.n > s->caprec) {
		size_t cap = s->caprec ? s->caprec : 1024;
		srv_rec *nr;
		while (cap < s->nrec + dv.n)
			cap *= 2;
		nr = realloc(s->recs, cap * sizeof(*nr));
		if (!nr) {
			pthread_mutex_unlock(&s->mu);
			dec_free(&dv);
			return MHD_NO;
		}
		s->recs = nr;
		s->caprec = cap;
	}
	idx = s->nreq++;
	rq.first = s->nrec;
	rq.nrec = dv.n;
	for (i = 0; i < dv.n; i++) {
		srv_rec *r = &s->recs[s->nrec++];
		r->seq = dv.v[i].seq;
		r->ts = dv.v[i].ts;
		memcpy(r->dev, dv.v[i].dev, sizeof(r->dev));
		r->data = s->keep_data ? dv.v[i].data : NULL;
		if (s->keep_data)
			dv.v[i].data = NULL;
		r->req = idx;
	}
	if (!rq.decoded) {
		rp.status = 400;
		snprintf(rp.body, sizeof(rp.body), "test server: %s", rq.derr);
	}
	if (s->script)
		s->script(s, idx, &rq, &s->recs[rq.first], &rp);
	if (!rp.status)
		rp.status = 200;
	rq.status = rp.status;
	s->reqs[idx] = rq;
	if (rp.sleep_ms)
		srv_wait_locked(s, rp.sleep_ms);
	pthread_mutex_unlock(&s->mu);
	dec_free(&dv);

	if (rp.big_body)
		resp = MHD_create_response_from_callback(rp.big_body, 64 * 1024, big_cb, s, NULL);
	else
		resp = MHD_create_response_from_buffer(rp.body[0] ? strlen(rp.body) : 2,
						       rp.body[0] ? rp.body : (char *)"ok",
						       MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (rp.retry_after[0])
		MHD_add_response_header(resp, "Retry-After", rp.retry_after);
	MHD_add_response_header(resp, "Content-Type", "text/plain");
	pthread_mutex_lock(&s->mu);
	s->reqs[idx].t_reply_us = mono_us();
	pthread_mutex_unlock(&s->mu);
	ret = MHD_queue_response(c, rp.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Start on 127.0.0.1:port (0: any), plain or TLS (PEM key and cert). */
static srv *srv_start_on(int port, srv_script_fn script, const char *key_pem, const char *cert_pem)
{
	srv *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa;
	pthread_condattr_t ca;
	const union MHD_DaemonInfo *info;
	struct MHD_OptionItem opts[8];
	int n = 0;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;

	ck_assert_ptr_nonnull(s);
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	s->script = script;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &sa};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)srv_done, s};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL};
	if (key_pem) {
		ck_assert_msg(MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES,
			      "libmicrohttpd was built without TLS");
		flags |= MHD_USE_TLS;
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key_pem};
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cert_pem};
	}
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	s->d = MHD_start_daemon(flags, 0, NULL, NULL, srv_handle, s, MHD_OPTION_ARRAY, opts,
				MHD_OPTION_END);
	ck_assert_msg(s->d != NULL, "MHD_start_daemon on 127.0.0.1:%d failed", port);
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	ck_assert_ptr_nonnull(info);
	s->port = info->port;
	ck_assert_int_gt(s->port, 0);
	return s;
}

static srv *srv_start(srv_script_fn script)
{
	return srv_start_on(0, script, NULL, NULL);
}

static void srv_stop(srv *s)
{
	size_t i;
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	MHD_stop_daemon(s->d);
	for (i = 0; i < s->nrec; i++)
		free(s->recs[i].data);
	free(s->recs);
	free(s->reqs);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

static void srv_keep_data(srv *s)
{
	pthread_mutex_lock(&s->mu);
	s->keep_data = 1;
	pthread_mutex_unlock(&s->mu);
}

static void srv_set(srv *s, int k, long v)
{
	pthread_mutex_lock(&s->mu);
	s->p[k] = v;
	pthread_mutex_unlock(&s->mu);
}

static size_t srv_nreq(srv *s)
{
	size_t n;
	pthread_mutex_lock(&s->mu);
	n = s->nreq;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* A copy of request i (waits until its answer is queued). */
static srv_req srv_get(srv *s, size_t i)
{
	srv_req r;
	int64_t until = mono_ms() + 15000;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		ck_assert_uint_lt(i, s->nreq);
		r = s->reqs[i];
		pthread_mutex_unlock(&s->mu);
		if (r.t_reply_us || mono_ms() > until)
			return r;
		sleep_ms(2);
	}
}

static void srv_wait_reqs(srv *s, size_t n, int timeout_ms)
{
	int64_t until = mono_ms() + timeout_ms;
	while (srv_nreq(s) < n) {
		ck_assert_msg(mono_ms() < until, "server saw %zu request(s) in %d ms, expected %zu",
			      srv_nreq(s), timeout_ms, n);
		sleep_ms(2);
	}
}

/* Records of requests answered 2xx, in the order they were answered;
 * caller frees. */
static srv_rec *srv_acked(srv *s, size_t *n)
{
	srv_rec *out;
	size_t i, k = 0;
	pthread_mutex_lock(&s->mu);
	out = malloc((s->nrec + 1) * sizeof(*out));
	ck_assert_ptr_nonnull(out);
	for (i = 0; i < s->nrec; i++) {
		const srv_req *rq = &s->reqs[s->recs[i].req];
		if (rq->status >= 200 && rq->status <= 299)
			out[k++] = s->recs[i];
	}
	pthread_mutex_unlock(&s->mu);
	*n = k;
	return out;
}

/* Every request decoded; returns how many did not. */
static size_t srv_decode_errors(srv *s, char *first, size_t cap)
{
	size_t i, bad = 0;
	first[0] = 0;
	pthread_mutex_lock(&s->mu);
	for (i = 0; i < s->nreq; i++)
		if (!s->reqs[i].decoded) {
			if (!bad++)
				snprintf(first, cap, "request %zu: %s", i, s->reqs[i].derr);
		}
	pthread_mutex_unlock(&s->mu);
	return bad;
}

/* ---- scripts ---- */

/* p[0] requests from the start (idx < p[0]) get status p[1] with body
 * "upstream unavailable"; the rest 200. */
static void script_first_n(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs,
			   srv_reply *out)
{
	(void)rq;
	(void)recs;
	if ((long)idx < s->p[0]) {
		out->status = (unsigned)s->p[1];
		snprintf(out->body, sizeof(out->body), "upstream unavailable (test %zu)", idx);
	}
}

/* ------------------------------------------------------------------------
 * Engine helpers
 */

/* What the engine reported through log_fn; token leak checks. */
static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_logs[65536];
static size_t g_logs_len;
static int g_log_count, g_log_long;
static char g_secret[256];
static int g_secret_leaks;

static void cap_log(void *payload, int level, const char *msg)
{
	size_t n = strlen(msg);
	(void)payload;
	pthread_mutex_lock(&g_log_mu);
	g_log_count++;
	if (n > 1000)
		g_log_long++;
	if (g_secret[0] && strstr(msg, g_secret))
		g_secret_leaks++;
	if (g_logs_len + n + 8 < sizeof(g_logs)) {
		g_logs_len += (size_t)snprintf(g_logs + g_logs_len, sizeof(g_logs) - g_logs_len,
					       "[%d] %s\n", level, msg);
	}
	pthread_mutex_unlock(&g_log_mu);
}

static void cfg_std(edgelog_config *c, const char *dir, const char *endpoint)
{
	edgelog_config_init(c);
	c->dir = dir;
	c->endpoint = endpoint;
	c->device_id = DEV;
	c->retry_base_ms = 20;
	c->retry_max_ms = 500;
	c->batch_timeout_ms = 50;
	c->http_timeout_ms = 1000;
	c->close_grace_ms = 2000;
	c->log_fn = cap_log;
	c->log_payload = NULL;
}

static char *url_for(int port, const char *scheme, const char *host)
{
	char *u = malloc(128);
	ck_assert_ptr_nonnull(u);
	snprintf(u, 128, "%s://%s:%d/ingest", scheme, host, port);
	return u;
}

/* Append sample records first..first+n-1, expecting those seqs. */
static void append_samples(edgelog *log, uint64_t first, uint64_t n)
{
	uint64_t i;
	for (i = first; i < first + n; i++) {
		uint8_t buf[SAMPLE_CAP];
		size_t l = tool_sample_msgpack(i, buf, sizeof(buf));
		uint64_t seq = 0;
		int rc = edgelog_append(log, buf, l, &seq);
		ck_assert_msg(rc == 0, "append %llu: %s: %s", (unsigned long long)i,
			      edgelog_strerror(rc), edgelog_errmsg(log));
		ck_assert_uint_eq(seq, i);
	}
}

#define STATUS_FMT                                                              \
	"pending %llu sent %llu failed %llu acked %llu last %llu connected %d " \
	"retry_in %llu "                                                        \
	"recovered %llu last_error '%s'"
#define STATUS_ARGS(st)                                                                  \
	(unsigned long long)(st).pending, (unsigned long long)(st).sent,                 \
		(unsigned long long)(st).failed, (unsigned long long)(st).acked_seq,     \
		(unsigned long long)(st).last_seq, (st).is_connected,                    \
		(unsigned long long)(st).retry_in_s, (unsigned long long)(st).recovered, \
		(st).last_error

/* Poll the status until cond holds (st is the snapshot it sees). */
#define WAIT_FOR(log, st, ms, cond)                                                        \
	do {                                                                               \
		int64_t until_ = mono_ms() + (ms);                                         \
		for (;;) {                                                                 \
			ck_assert_int_eq(edgelog_get_status((log), &(st)), 0);             \
			if (cond)                                                          \
				break;                                                     \
			if (mono_ms() > until_)                                            \
				ck_abort_msg("line %d: waited %d ms for %s; " STATUS_FMT,  \
					     __LINE__, (int)(ms), #cond, STATUS_ARGS(st)); \
			sleep_ms(3);                                                       \
		}                                                                          \
	} while (0)

static edgelog_status status_of(edgelog *log)
{
	edgelog_status st;
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	return st;
}

/* Close and say how long it took (ms). */
static int64_t close_timed(edgelog *log)
{
	int64_t t0 = mono_ms();
	int rc = edgelog_close(log);
	ck_assert_msg(rc == 0, "edgelog_close: %s: %s", edgelog_strerror(rc), edgelog_errmsg(NULL));
	return mono_ms() - t0;
}

/* State of a closed directory, read by opening it without an endpoint. */
static edgelog_status offline_status(const char *dir)
{
	edgelog_config c;
	edgelog *log;
	edgelog_status st;
	cfg_std(&c, dir, NULL);
	log = tu_open_ok(&c);
	st = status_of(log);
	ck_assert_int_eq(edgelog_close(log), 0);
	return st;
}

/* The dead letters in dir/failed, as decoded maps. */
typedef struct dead_rec {
	uint64_t seq;
	int64_t ts, status;
	char reason[300];
	char *data; /* canonical JSON */
} dead_rec;

static size_t read_dead(const char *dir, dead_rec *out, size_t cap)
{
	char path[4300];
	edgelog_reader *r = NULL;
	edgelog_record rec;
	size_t n = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/failed", dir);
	if (!tu_file_exists(path))
		return 0;
	rc = edgelog_reader_open(&r, path, 0);
	ck_assert_msg(rc == 0, "reader on %s: %s: %s", path, edgelog_strerror(rc),
		      edgelog_errmsg(NULL));
	while ((rc = edgelog_reader_next(r, &rec)) == 0) {
		msgpack_unpacked u;
		size_t off = 0;
		const msgpack_object *o;
		ck_assert_uint_lt(n, cap);
		msgpack_unpacked_init(&u);
		ck_assert_int_eq(msgpack_unpack_next(&u, rec.data, rec.len, &off),
				 MSGPACK_UNPACK_SUCCESS);
		ck_assert_int_eq(u.data.type, MSGPACK_OBJECT_MAP);
		memset(&out[n], 0, sizeof(out[n]));
		ck_assert_ptr_nonnull(o = mp_get(&u.data, "seq"));
		out[n].seq = o->via.u64;
		ck_assert_ptr_nonnull(o = mp_get(&u.data, "ts"));
		out[n].ts = o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? o->via.i64 :
									 (int64_t)o->via.u64;
		ck_assert_ptr_nonnull(o = mp_get(&u.data, "status"));
		out[n].status = o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? o->via.i64 :
									     (int64_t)o->via.u64;
		ck_assert_ptr_nonnull(o = mp_get(&u.data, "reason"));
		ck_assert_int_eq(o->type, MSGPACK_OBJECT_STR);
		snprintf(out[n].reason, sizeof(out[n].reason), "%.*s", (int)o->via.str.size,
			 o->via.str.ptr);
		ck_assert_ptr_nonnull(o = mp_get(&u.data, "data"));
		{
			json_t *j = tu_mpo_json(o);
			out[n].data = tu_canon(j);
			json_decref(j);
		}
		msgpack_unpacked_destroy(&u);
		n++;
	}
	ck_assert_int_eq(rc, EDGELOG_EOF);
	edgelog_reader_close(r);
	return n;
}

/* A TCP port nobody listens on (bound, then closed). */
static int closed_port(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;
	ck_assert_int_ge(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* Does any file under dir contain needle? (the token must not be stored) */
static int tree_contains(const char *dir, const char *needle)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = 0;
	if (!d)
		return 0;
	while (!found && (e = readdir(d))) {
		char p[4300];
		struct stat sb;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (lstat(p, &sb))
			continue;
		if (S_ISDIR(sb.st_mode)) {
			found = tree_contains(p, needle);
		} else if (S_ISREG(sb.st_mode) && sb.st_size > 0) {
			tu_buf b = tu_read_file(p);
			found = memmem(b.data, b.len, needle, strlen(needle)) != NULL;
			tu_buf_free(&b);
		}
	}
	closedir(d);
	return found;
}

static void setup_engine(void)
{
	pthread_mutex_lock(&g_log_mu);
	g_logs[0] = 0;
	g_logs_len = 0;
	g_log_count = g_log_long = g_secret_leaks = 0;
	g_secret[0] = 0;
	pthread_mutex_unlock(&g_log_mu);
}

static void teardown_engine(void)
{
}

/* A copy of request i as it is now (its answer may not be queued yet). */
static srv_req srv_peek(srv *s, size_t i)
{
	srv_req r;
	pthread_mutex_lock(&s->mu);
	ck_assert_uint_lt(i, s->nreq);
	r = s->reqs[i];
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* Check the protocol headers of every request: User-Agent, encoding,
 * type, and Idempotency-Key == DEV:first-last of the request's records. */
static void check_request_headers(srv *s, int format, int gzip, const char *bearer)
{
	static const char *const ct[] = {"", "application/x-ndjson", "application/json",
					 "application/msgpack"};
	size_t i, n = srv_nreq(s);
	for (i = 0; i < n; i++) {
		srv_req r = srv_peek(s, i);
		char key[200];
		ck_assert_str_eq(r.method, "POST");
		ck_assert_msg(!strncmp(r.ua, "edgelog/", 8), "request %zu: User-Agent '%s'", i,
			      r.ua);
		ck_assert_msg(!strcmp(r.ctype, ct[format]), "request %zu: Content-Type '%s'", i,
			      r.ctype);
		ck_assert_msg(!strcmp(r.cenc, gzip ? "gzip" : ""),
			      "request %zu: Content-Encoding '%s'", i, r.cenc);
		ck_assert_msg(r.decoded, "request %zu: %s", i, r.derr);
		ck_assert_uint_gt(r.nrec, 0);
		ck_assert_msg(r.contiguous, "request %zu: seqs not contiguous", i);
		pthread_mutex_lock(&s->mu);
		snprintf(key, sizeof(key), "%s:%llu-%llu", DEV,
			 (unsigned long long)s->recs[r.first].seq,
			 (unsigned long long)s->recs[r.first + r.nrec - 1].seq);
		pthread_mutex_unlock(&s->mu);
		ck_assert_msg(!strcmp(r.idem, key), "request %zu: Idempotency-Key '%s', want '%s'",
			      i, r.idem, key);
		if (bearer) {
			char want[300];
			snprintf(want, sizeof(want), "Bearer %s", bearer);
			ck_assert_msg(!strcmp(r.auth, want), "request %zu: Authorization '%s'", i,
				      r.auth);
		} else {
			ck_assert_msg(!r.auth[0], "request %zu: unexpected Authorization", i);
		}
	}
}

/* The server accepted seqs lo..hi once each, in order, with sample data
 * (checked when keep_data). */
static void check_acked_range(srv *s, uint64_t lo, uint64_t hi, uint64_t skip)
{
	size_t n, i;
	uint64_t want = lo;
	srv_rec *a = srv_acked(s, &n);
	ck_assert_uint_eq(n, hi - lo + 1 - (skip >= lo && skip <= hi));
	for (i = 0; i < n; i++, want++) {
		if (want == skip)
			want++;
		ck_assert_msg(a[i].seq == want, "accepted record %zu has seq %llu, want %llu", i,
			      (unsigned long long)a[i].seq, (unsigned long long)want);
		ck_assert_str_eq(a[i].dev, DEV);
		if (a[i].data) {
			char *w = tu_sample_canon(want);
			ck_assert_msg(!strcmp(a[i].data, w), "seq %llu: data differs",
				      (unsigned long long)want);
			free(w);
		}
	}
	free(a);
}

static void check_no_secret(edgelog *log, const char *dir, const char *secret)
{
	edgelog_status st = status_of(log);
	ck_assert_msg(!strstr(st.last_error, secret), "token in last_error: %s", st.last_error);
	ck_assert_msg(!strstr(edgelog_errmsg(log), secret), "token in errmsg");
	ck_assert_msg(!strstr(edgelog_errmsg(NULL), secret), "token in errmsg(NULL)");
	pthread_mutex_lock(&g_log_mu);
	ck_assert_msg(g_secret_leaks == 0, "token in %d log line(s)", g_secret_leaks);
	ck_assert_msg(!strstr(g_logs, secret), "token in the log output");
	pthread_mutex_unlock(&g_log_mu);
	if (dir)
		ck_assert_msg(!tree_contains(dir, secret), "token stored under %s", dir);
}

START_TEST(test_happy_path_10k)
{
	const char *token = "tok-H4ppy-s3cr3t-0123456789abcdef";
	char *dir = tu_mkdtemp("happy");
	srv *s = srv_start(NULL);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;
	int64_t t0 = real_ms(), t1;
	size_t n, i;
	srv_rec *a;

	srv_keep_data(s);
	snprintf(g_secret, sizeof(g_secret), "%s", token);
	cfg_std(&c, dir, url);
	c.auth_token = token;
	log = tu_open_ok(&c);
	ck_assert_int_eq(edgelog_start(log), 0);
	append_samples(log, 1, 10000);
	WAIT_FOR(log, st, 20000, st.pending == 0 && st.sent == 10000);
	t1 = real_ms();
	ck_assert_int_eq(st.is_connected, 1);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_uint_eq(st.acked_seq, 10000);
	ck_assert_msg(st.last_success_at >= t0 / 1000 - 1 && st.last_success_at <= t1 / 1000 + 1,
		      "last_success_at %lld", (long long)st.last_success_at);
	ck_assert_uint_eq(st.retry_in_s, 0);

	/* Server side: in order, exactly once, the same records. */
	{
		char e[256];
		ck_assert_msg(srv_decode_errors(s, e, sizeof(e)) == 0, "%s", e);
	}
	check_acked_range(s, 1, 10000, 0);
	a = srv_acked(s, &n);
	for (i = 0; i < n; i++)
		ck_assert_msg(a[i].ts >= t0 - 1000 && a[i].ts <= t1 + 1000, "seq %llu: ts %lld",
			      (unsigned long long)a[i].seq, (long long)a[i].ts);
	free(a);
	pthread_mutex_lock(&s->mu);
	ck_assert_uint_eq(s->nrec, 10000); /* nothing sent twice */
	for (i = 0; i < s->nreq; i++) {
		ck_assert_uint_eq(s->reqs[i].status, 200);
		ck_assert_uint_le(s->reqs[i].nrec, 2000); /* upload_max_records */
	}
	ck_assert_msg(s->nreq <= 10000 / 16, "%zu requests for 10000 records: not batched",
		      s->nreq);
	pthread_mutex_unlock(&s->mu);
	check_request_headers(s, EDGELOG_FORMAT_NDJSON, 1, token);
	check_no_secret(log, dir, token);

	ck_assert_int_le(close_timed(log), 3000);
	st = offline_status(dir);
	ck_assert_uint_eq(st.sent, 10000); /* persisted */
	ck_assert_uint_eq(st.pending, 0);
	ck_assert_msg(!tree_contains(dir, token), "token stored under %s", dir);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

/* mode p[0]: 0 -> 200, 1 -> 503 "service unavailable", 2 -> 401
 * "unauthorized: bad credentials". */
static void script_mode(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs, srv_reply *out)
{
	(void)idx;
	(void)rq;
	(void)recs;
	if (s->p[0] == 1) {
		out->status = 503;
		snprintf(out->body, sizeof(out->body), "service unavailable");
	} else if (s->p[0] == 2) {
		out->status = 401;
		snprintf(out->body, sizeof(out->body), "unauthorized: bad credentials");
	}
}

START_TEST(test_token_never_printed_on_failures)
{
	const char *token = "Zq9-very-secret-bearer-token-77Xy";
	char *dir = tu_mkdtemp("token"), *dir2 = tu_mkdtemp("token-refused");
	srv *s = srv_start(script_mode);
	char *url = url_for(s->port, "http", "127.0.0.1");
	char *bad = url_for(closed_port(), "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;
	dead_rec dead[64];
	size_t nd, i;

	snprintf(g_secret, sizeof(g_secret), "%s", token);
	srv_set(s, 0, 1); /* 503 */
	cfg_std(&c, dir, url);
	c.auth_token = token;
	log = tu_open_ok(&c);
	append_samples(log, 1, 20);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 10000,
		 srv_nreq(s) >= 3 && !st.is_connected && strstr(st.last_error, "503"));
	check_no_secret(log, NULL, token);

	/* 401: the credentials, not the records: nothing is dead-lettered,
   * the records stay buffered and retried (an expired token must not
   * empty the backlog into failed/). */
	srv_set(s, 0, 2);
	WAIT_FOR(log, st, 10000,
		 srv_nreq(s) >= 6 && !st.is_connected && strstr(st.last_error, "401"));
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_uint_eq(st.sent, 0);
	ck_assert_uint_eq(st.pending, 20);
	check_no_secret(log, NULL, token);
	check_request_headers(s, EDGELOG_FORMAT_NDJSON, 1, token);
	/* A new token is deployed: delivery resumes by itself. */
	srv_set(s, 0, 0);
	WAIT_FOR(log, st, 10000, st.sent == 20 && st.pending == 0);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_int_le(close_timed(log), 3000);
	nd = read_dead(dir, dead, 64);
	ck_assert_uint_eq(nd, 0);
	(void)i;
	ck_assert_msg(!tree_contains(dir, token), "token stored under %s", dir);

	/* Transport failure: connection refused. */
	cfg_std(&c, dir2, bad);
	c.auth_token = token;
	log = tu_open_ok(&c);
	append_samples(log, 1, 5);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 5000, st.last_error[0] && !st.is_connected);
	check_no_secret(log, NULL, token);
	ck_assert_int_le(close_timed(log), 2000 + 1000 + 1500);
	ck_assert_msg(!strstr(edgelog_errmsg(NULL), token), "token in errmsg(NULL)");
	pthread_mutex_lock(&g_log_mu);
	ck_assert_int_eq(g_secret_leaks, 0);
	pthread_mutex_unlock(&g_log_mu);
	ck_assert(!tree_contains(dir2, token));
	srv_stop(s);
	free(url);
	free(bad);
	free(dir);
	free(dir2);
}
END_TEST

START_TEST(test_token_from_file_and_env)
{
	char *dir = tu_mkdtemp("tokfile"), *dir2 = tu_mkdtemp("tokenv");
	const char *tf = tu_path(dir, "token.txt");
	char tfile[4300];
	srv *s = srv_start(NULL);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;

	snprintf(tfile, sizeof(tfile), "%s", tf);
	tu_write_file(tfile, "  file-tok-9f8e7d  \nsecond line ignored\n", 40);
	snprintf(g_secret, sizeof(g_secret), "file-tok-9f8e7d");
	cfg_std(&c, dir, url);
	c.auth_token_file = tfile;
	log = tu_open_ok(&c);
	append_samples(log, 1, 10);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 10000, st.sent == 10);
	check_request_headers(s, EDGELOG_FORMAT_NDJSON, 1, "file-tok-9f8e7d");
	check_no_secret(log, NULL, "file-tok-9f8e7d");
	ck_assert_int_le(close_timed(log), 3000);
	srv_stop(s);

	/* EDGELOG_AUTH_TOKEN from the environment. */
	s = srv_start(NULL);
	free(url);
	url = url_for(s->port, "http", "127.0.0.1");
	setenv("EDGELOG_AUTH_TOKEN", "env-tok-31337", 1);
	snprintf(g_secret, sizeof(g_secret), "env-tok-31337");
	cfg_std(&c, dir2, url);
	ck_assert_int_eq(edgelog_config_from_env(&c), 0);
	c.endpoint = url;
	log = tu_open_ok(&c);
	append_samples(log, 1, 10);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 10000, st.sent == 10);
	check_request_headers(s, EDGELOG_FORMAT_NDJSON, 1, "env-tok-31337");
	check_no_secret(log, dir2, "env-tok-31337");
	ck_assert_int_le(close_timed(log), 3000);
	unsetenv("EDGELOG_AUTH_TOKEN");
	srv_stop(s);
	free(url);
	free(dir);
	free(dir2);
}
END_TEST

START_TEST(test_formats_engine)
{
	static const int formats[] = {EDGELOG_FORMAT_NDJSON, EDGELOG_FORMAT_JSON,
				      EDGELOG_FORMAT_MSGPACK};
	const int format = formats[_i / 2], gz = !(_i % 2);
	char *dir = tu_mkdtemp("formats");
	srv *s = srv_start(NULL);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;
	char e[256];

	srv_keep_data(s);
	cfg_std(&c, dir, url);
	c.format = (edgelog_format)format;
	c.compression = gz ? EDGELOG_COMPRESSION_GZIP : EDGELOG_COMPRESSION_NONE;
	log = tu_open_ok(&c);
	ck_assert_int_eq(edgelog_start(log), 0);
	append_samples(log, 1, 300);
	WAIT_FOR(log, st, 10000, st.sent == 300 && st.pending == 0);
	ck_assert_msg(srv_decode_errors(s, e, sizeof(e)) == 0, "%s", e);
	check_acked_range(s, 1, 300, 0);
	check_request_headers(s, format, gz, NULL);
	ck_assert_int_le(close_timed(log), 3000);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

/* p[0]: requests idx < p[0] get 429/503 (p[1]) with Retry-After: mode p[2]:
 * 0 -> "1" (seconds), 1 -> an HTTP date 2 s ahead (its unix second goes to
 * p[3]), 2 -> a past HTTP date, 3 -> "3600". */
static void script_retry_after(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs,
			       srv_reply *out)
{
	(void)rq;
	(void)recs;
	if ((long)idx >= s->p[0] || idx < (size_t)s->p[4])
		return;
	out->status = (unsigned)s->p[1];
	snprintf(out->body, sizeof(out->body), "slow down");
	switch (s->p[2]) {
	case 0:
		snprintf(out->retry_after, sizeof(out->retry_after), "1");
		break;
	case 1: {
		int64_t when = (int64_t)time(NULL) + 2;
		imf_date(out->retry_after, sizeof(out->retry_after), when);
		s->p[3] = (long)when;
		break;
	}
	case 2:
		snprintf(out->retry_after, sizeof(out->retry_after),
			 "Sun, 06 Nov 1994 08:49:37 GMT");
		break;
	default:
		snprintf(out->retry_after, sizeof(out->retry_after), "3600");
		break;
	}
}

START_TEST(test_retry_after_seconds_engine)
{
	char *dir = tu_mkdtemp("ra-secs");
	srv *s = srv_start(script_retry_after);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;
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
	ck_assert_int_le(close_timed(log), 3000);
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
	edgelog_status st;
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
	ck_assert_msg(r1.t_arrive_real_ms <= (int64_t)when * 1000 + 10000, "came %lld ms late",
		      (long long)(r1.t_arrive_real_ms - (int64_t)when * 1000));

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
	ck_assert_int_le(close_timed(log), 3000);
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
	edgelog_status st;
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
	ck_assert_msg(gap_ms >= 500 && gap_ms <= 10 * 500 + 1000,
		      "Retry-After: 3600 gave a %lld ms wait", (long long)gap_ms);
	ck_assert_int_le(close_timed(log), 3000);
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
	edgelog_status st;
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
	ck_assert_int_le(close_timed(log), 3000);
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
	edgelog_status st;
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
	ck_assert_int_le(close_timed(log), 3000);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

#define POISON_BODY "record rejected: field 'confidence' fails schema v7 (poison)"

/* 422 for any batch holding seq p[0]. */
static void script_poison(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs,
			  srv_reply *out)
{
	size_t i;
	(void)idx;
	for (i = 0; i < rq->nrec; i++)
		if (recs[i].seq == (uint64_t)s->p[0]) {
			out->status = 422;
			snprintf(out->body, sizeof(out->body), "%s", POISON_BODY);
		}
}

/* Issue 9, defect 1: the 82-byte record of 40 maps used as keys once took
 * the uploader minutes and gigabytes and stopped every batch behind it.
 * Appended through the public API, it is delivered at once, as the JSON
 * the converter documents, in every format, and the records after it
 * too; close is prompt. */
START_TEST(test_nested_map_keys_record_delivered)
{
	int f;

	for (f = EDGELOG_FORMAT_NDJSON; f <= EDGELOG_FORMAT_MSGPACK; f++) {
		char *dir = tu_mkdtemp("nestkey");
		srv *s = srv_start(NULL);
		char *url = url_for(s->port, "http", "127.0.0.1");
		edgelog_config c;
		edgelog *log;
		edgelog_status st;
		/* msgpack bodies are decoded by msgpack-c here, whose unpacker
     * stops at 32 levels: 30 for that format. */
		int levels = f == EDGELOG_FORMAT_MSGPACK ? 30 : 40;
		uint8_t rec[128];
		size_t n = tu_nested_key_record(levels, rec), na, i;
		uint64_t seq = 0;
		srv_rec *a;
		char *want;

		ck_assert_uint_eq(n, 2 * (size_t)levels + 2);
		srv_keep_data(s);
		cfg_std(&c, dir, url);
		c.format = (edgelog_format)f;
		log = tu_open_ok(&c);
		append_samples(log, 1, 1);
		ck_assert_int_eq(edgelog_append(log, rec, n, &seq), 0);
		ck_assert_uint_eq(seq, 2);
		ck_assert_int_eq(edgelog_start(log), 0);
		for (i = 3; i <= 100; i++) {
			uint8_t buf[SAMPLE_CAP];
			size_t l = tool_sample_msgpack(i, buf, sizeof(buf));
			ck_assert_int_eq(edgelog_append(log, buf, l, &seq), 0);
			ck_assert_uint_eq(seq, i);
		}
		WAIT_FOR(log, st, 15000, st.pending == 0 && st.acked_seq == 100);
		ck_assert_msg(st.sent == 100 && st.failed == 0, "format %d: " STATUS_FMT, f,
			      STATUS_ARGS(st));
		ck_assert_int_le(close_timed(log), 3000);
		a = srv_acked(s, &na);
		ck_assert_uint_eq(na, 100);
		{
			json_error_t je;
			char *t = tu_nested_key_json(levels);
			json_t *w = json_loads(t, 0, &je);
			ck_assert_ptr_nonnull(w);
			free(t);
			want = tu_canon(w);
			json_decref(w);
		}
		for (i = 0; i < na; i++) {
			ck_assert_uint_eq(a[i].seq, i + 1);
			if (a[i].seq == 2) {
				ck_assert_msg(a[i].data && !strcmp(a[i].data, want),
					      "format %d: seq 2 arrived as %.300s", f,
					      a[i].data ? a[i].data : "(nothing)");
			} else {
				char *w = tu_sample_canon(a[i].seq);
				ck_assert_str_eq(a[i].data, w);
				free(w);
			}
		}
		free(want);
		free(a);
		srv_stop(s);
		free(url);
		free(dir);
	}
}
END_TEST

/* A record whose frame verifies but whose payload is not one msgpack
 * object (written below the engine, which refuses it at append) cannot be
 * sent in any format: it goes to failed/ with the reason, counted, and the
 * records around it are delivered; it is never retried forever. */
START_TEST(test_unencodable_record_dead_lettered)
{
	static const uint8_t bad[] = {0x92, 0x01}; /* array of 2 holding one element */
	int f;

	for (f = EDGELOG_FORMAT_NDJSON; f <= EDGELOG_FORMAT_MSGPACK; f++) {
		char *dir = tu_mkdtemp("unenc");
		char segdir[4300];
		srv *s;
		char *url;
		edgelog_config c;
		edgelog *log;
		edgelog_status st;
		seg_writer w;
		seg_open_report rep;
		seg_err e;
		uint64_t seq = 0;
		dead_rec dead[4];
		size_t nd;

		/* Records 1..3 through the engine, 4 below it, 5..50 through it. */
		cfg_std(&c, dir, NULL);
		log = tu_open_ok(&c);
		append_samples(log, 1, 3);
		ck_assert_int_eq(edgelog_close(log), 0);
		snprintf(segdir, sizeof(segdir), "%s/segments", dir);
		ck_assert_int_eq(seg_writer_open(&w, seg_vfs_posix(), segdir, 1 << 20, 3600000, 4,
						 &rep, &e),
				 0);
		ck_assert_int_eq(seg_writer_append(&w, bad, sizeof(bad), real_ms(), &seq, &e), 0);
		ck_assert_uint_eq(seq, 4);
		ck_assert_int_eq(seg_writer_close(&w, &e), 0);

		s = srv_start(NULL);
		url = url_for(s->port, "http", "127.0.0.1");
		srv_keep_data(s);
		cfg_std(&c, dir, url);
		c.format = (edgelog_format)f;
		log = tu_open_ok(&c);
		append_samples(log, 5, 46);
		ck_assert_int_eq(edgelog_start(log), 0);
		WAIT_FOR(log, st, 15000, st.pending == 0 && st.acked_seq == 50);
		ck_assert_uint_eq(st.failed, 1);
		ck_assert_uint_eq(st.sent, 49);
		ck_assert_int_le(close_timed(log), 3000);
		check_acked_range(s, 1, 50, 4);
		nd = read_dead(dir, dead, 4);
		ck_assert_uint_eq(nd, 1);
		ck_assert_uint_eq(dead[0].seq, 4);
		ck_assert_int_eq(dead[0].status, 0);
		ck_assert_msg(strstr(dead[0].reason, "not one well-formed msgpack object"),
			      "reason '%s'", dead[0].reason);
		free(dead[0].data);
		srv_stop(s);
		free(url);
		free(dir);
	}
}
END_TEST

START_TEST(test_poison_record_dead_lettered)
{
	char *dir = tu_mkdtemp("poison");
	srv *s = srv_start(script_poison);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;
	dead_rec dead[8];
	size_t nd;
	char *want;
	int64_t t0 = real_ms();

	srv_keep_data(s);
	srv_set(s, 0, 500);
	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	append_samples(log, 1, 1000);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 15000, st.pending == 0 && st.sent + st.failed >= 1000);
	ck_assert_uint_eq(st.failed, 1);
	ck_assert_uint_eq(st.sent, 999);
	ck_assert_uint_eq(st.acked_seq, 1000);
	check_acked_range(s, 1, 1000, 500);
	ck_assert_msg(srv_nreq(s) <= 200, "%zu requests to isolate one record", srv_nreq(s));
	ck_assert_int_le(close_timed(log), 3000);

	nd = read_dead(dir, dead, 8);
	ck_assert_uint_eq(nd, 1);
	ck_assert_uint_eq(dead[0].seq, 500);
	ck_assert_int_eq(dead[0].status, 422);
	ck_assert_msg(strstr(dead[0].reason, "422") != NULL, "reason '%s'", dead[0].reason);
	ck_assert_msg(strstr(dead[0].reason, "record rejected: field 'confidence'") != NULL,
		      "reason '%s' lacks the response body", dead[0].reason);
	ck_assert_msg(dead[0].ts >= t0 - 1000 && dead[0].ts <= real_ms(), "ts %lld",
		      (long long)dead[0].ts);
	want = tu_sample_canon(500);
	ck_assert_str_eq(dead[0].data, want);
	free(want);
	free(dead[0].data);
	st = offline_status(dir);
	ck_assert_uint_eq(st.failed, 1);
	ck_assert_uint_eq(st.sent, 999);
	ck_assert_uint_eq(st.pending, 0);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

#define POISON_500_BODY "Code: 26, e.displayText() = DB::Exception: Cannot parse JSON string"

/* 500 for any batch holding seq p[0] (a receiver that cannot parse that
 * row answers as ClickHouse does); 200 otherwise. */
static void script_poison_500(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs,
			      srv_reply *out)
{
	size_t i;
	(void)idx;
	for (i = 0; i < rq->nrec; i++)
		if (recs[i].seq == (uint64_t)s->p[0]) {
			out->status = 500;
			snprintf(out->body, sizeof(out->body), "%s", POISON_500_BODY);
		}
}

static void cfg_poison(edgelog_config *c, const char *dir, const char *url)
{
	cfg_std(c, dir, url);
	c->poison_tries = 3;
	c->retry_base_ms = 5;
	c->retry_max_ms = 50;
}

/* Issue 11: a receiver that answers 500 to one record (not 4xx) used to
 * stop the whole backlog behind it for ever. Now that record alone goes to
 * failed/, with the status and the answer, counted as poisoned; the rest
 * are delivered. Wherever it sits: first, in the middle, last. */
START_TEST(test_poison_500_only_that_record_dead_lettered)
{
	static const uint64_t where[] = {1, 500, 1000};
	size_t w;

	for (w = 0; w < sizeof(where) / sizeof(where[0]); w++) {
		char *dir = tu_mkdtemp("poison500");
		srv *s = srv_start(script_poison_500);
		char *url = url_for(s->port, "http", "127.0.0.1");
		edgelog_config c;
		edgelog *log;
		edgelog_status st;
		dead_rec dead[4];
		size_t nd;

		srv_set(s, 0, (long)where[w]);
		cfg_poison(&c, dir, url);
		log = tu_open_ok(&c);
		append_samples(log, 1, 1000);
		ck_assert_int_eq(edgelog_start(log), 0);
		if (where[w] == 1000) {
			/* The last record, nothing after it: no other record can
       * show the endpoint is up, so it is kept, however often
       * it fails... */
			WAIT_FOR(log, st, 20000, st.sent == 999);
			while (srv_nreq(s) < 60)
				sleep_ms(5);
			st = status_of(log);
			ck_assert_msg(st.failed == 0 && st.pending == 1, STATUS_FMT,
				      STATUS_ARGS(st));
			/* ...until another record goes through. */
			append_samples(log, 1001, 1);
		}
		WAIT_FOR(log, st, 20000,
			 st.pending == 0 &&
				 st.sent + st.failed >= (where[w] == 1000 ? 1001 : 1000));
		ck_assert_msg(st.failed == 1 && st.poisoned == 1, "seq %llu: " STATUS_FMT,
			      (unsigned long long)where[w], STATUS_ARGS(st));
		ck_assert_uint_eq(st.sent, where[w] == 1000 ? 1000 : 999);
		check_acked_range(s, 1, where[w] == 1000 ? 1001 : 1000, where[w]);
		ck_assert_int_le(close_timed(log), 3000);

		nd = read_dead(dir, dead, 4);
		ck_assert_uint_eq(nd, 1);
		ck_assert_uint_eq(dead[0].seq, where[w]);
		ck_assert_int_eq(dead[0].status, 500);
		ck_assert_msg(strstr(dead[0].reason, "HTTP 500") &&
				      strstr(dead[0].reason, "Cannot parse JSON") &&
				      strstr(dead[0].reason, "poison"),
			      "reason '%s'", dead[0].reason);
		free(dead[0].data);
		pthread_mutex_lock(&g_log_mu);
		ck_assert_msg(strstr(g_logs, "dead-lettered as poison") != NULL, "logs: %s",
			      g_logs);
		pthread_mutex_unlock(&g_log_mu);
		/* Offline too: counted, and the metric is there. */
		ck_assert_int_eq(edgelog_status_dir(dir, &st, NULL), 0);
		ck_assert_uint_eq(st.poisoned, 1);
		ck_assert_uint_eq(st.failed, 1);
		srv_stop(s);
		free(url);
		free(dir);
	}
}
END_TEST

/* Issue 11: the other half of poison detection. An endpoint that answers
 * 500 to everything (down behind a proxy) gets hundreds of tries with a
 * tiny backoff and poison_tries 2, batches split to single records and
 * probes sent, and still nothing is dead-lettered; when it comes back
 * everything is delivered once. */
START_TEST(test_poison_fully_down_500_nothing_dead_lettered)
{
	char *dir = tu_mkdtemp("down500");
	srv *s = srv_start(script_first_n);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;

	srv_set(s, 0, 1L << 40); /* every request */
	srv_set(s, 1, 500);
	cfg_std(&c, dir, url);
	c.poison_tries = 2;
	c.retry_base_ms = 1;
	c.retry_max_ms = 4;
	log = tu_open_ok(&c);
	append_samples(log, 1, 300);
	ck_assert_int_eq(edgelog_start(log), 0);
	{
		int64_t until = mono_ms() + 20000;
		while (srv_nreq(s) < 400 && mono_ms() < until)
			sleep_ms(10);
	}
	/* Far more than it takes to split 300 records down to one and
   * probe (2 tries a level, 9 levels). */
	ck_assert_uint_ge(srv_nreq(s), 100);
	st = status_of(log);
	ck_assert_msg(st.failed == 0 && st.poisoned == 0 && st.pending == 300 && st.sent == 0,
		      STATUS_FMT, STATUS_ARGS(st));
	ck_assert_uint_eq(read_dead(dir, NULL, 0), 0);
	srv_set(s, 0, 0); /* back */
	WAIT_FOR(log, st, 20000, st.pending == 0);
	ck_assert_msg(st.failed == 0 && st.sent == 300, STATUS_FMT, STATUS_ARGS(st));
	{
		/* Each once. A probe sent as the endpoint came back can land
		 * before the record it was probing for (README, retry list):
		 * order aside, the set is exact. */
		size_t n, i;
		srv_rec *a = srv_acked(s, &n);
		static unsigned char seen[301];
		memset(seen, 0, sizeof(seen));
		ck_assert_uint_eq(n, 300);
		for (i = 0; i < n; i++) {
			ck_assert_msg(a[i].seq >= 1 && a[i].seq <= 300 && !seen[a[i].seq],
				      "seq %llu twice or out of range",
				      (unsigned long long)a[i].seq);
			seen[a[i].seq] = 1;
		}
		free(a);
	}
	ck_assert_int_le(close_timed(log), 3000);
	ck_assert_uint_eq(read_dead(dir, NULL, 0), 0);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

/* 413 for bodies over p[0] bytes on the wire, counting them in p[1]. */
static void script_413_bytes(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs,
			     srv_reply *out)
{
	(void)idx;
	(void)recs;
	if ((long)rq->raw_len > s->p[0]) {
		out->status = 413;
		snprintf(out->body, sizeof(out->body), "413 Request Entity Too Large");
		s->p[1]++;
	}
}

/* Issue 11, defect 3: upload_max_kb counted payloads only, so with the
 * envelope (and the last record) a body overshot it and a stock nginx
 * (client_max_body_size 1m) answered 413. Now no body exceeds it, before
 * or after compression, in every format; bodies still come close to it;
 * a record that cannot fit goes alone. */
START_TEST(test_body_never_exceeds_upload_max_kb)
{
	static const struct {
		int format, compression;
	} cases[] = {{EDGELOG_FORMAT_NDJSON, EDGELOG_COMPRESSION_NONE},
		     {EDGELOG_FORMAT_JSON, EDGELOG_COMPRESSION_NONE},
		     {EDGELOG_FORMAT_MSGPACK, EDGELOG_COMPRESSION_NONE},
		     {EDGELOG_FORMAT_NDJSON, EDGELOG_COMPRESSION_GZIP}};
	size_t ci;

	for (ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
		const size_t cap = 16 * 1024;
		char *dir = tu_mkdtemp("bodycap");
		srv *s = srv_start(NULL);
		char *url = url_for(s->port, "http", "127.0.0.1");
		edgelog_config c;
		edgelog *log;
		edgelog_status st;
		size_t i, n, big_alone = 0, near = 0;
		uint8_t *big = malloc(40000);
		uint64_t seq;

		cfg_std(&c, dir, url);
		c.format = cases[ci].format;
		c.compression = cases[ci].compression;
		c.upload_max_kb = 16;
		c.batch_size = 2000;
		log = tu_open_ok(&c);
		append_samples(log, 1, 1500);
		/* One record larger than the cap on its own (a 20 KB bin). */
		ck_assert_ptr_nonnull(big);
		big[0] = 0xc5;
		big[1] = (uint8_t)(20000 >> 8);
		big[2] = (uint8_t)(20000 & 0xff);
		memset(big + 3, 0x5a, 20000);
		ck_assert_int_eq(edgelog_append(log, big, 20003, &seq), 0);
		append_samples(log, 1502, 500);
		ck_assert_int_eq(edgelog_start(log), 0);
		WAIT_FOR(log, st, 20000, st.pending == 0);
		ck_assert_uint_eq(st.sent, 2001);
		ck_assert_int_le(close_timed(log), 3000);
		pthread_mutex_lock(&s->mu);
		n = s->nreq;
		for (i = 0; i < n; i++) {
			const srv_req *q = &s->reqs[i];
			ck_assert_uint_eq(q->status, 200);
			if (q->nrec == 1 && s->recs[q->first].seq == 1501) {
				big_alone++;
				continue;
			}
			ck_assert_msg(
				q->raw_len <= cap && q->plain_len <= cap,
				"case %zu: request %zu of %zu records: %zu bytes on the wire, "
				"%zu before compression, cap %zu",
				ci, i, q->nrec, q->raw_len, q->plain_len, cap);
			if (q->plain_len > cap * 3 / 4 || q->raw_len > cap * 3 / 4)
				near++;
		}
		pthread_mutex_unlock(&s->mu);
		ck_assert_uint_eq(big_alone, 1);
		/* Full, not timid: most requests come close to the cap. */
		ck_assert_msg(near * 2 >= n, "case %zu: only %zu of %zu requests near the cap", ci,
			      near, n);
		free(big);
		srv_stop(s);
		free(url);
		free(dir);
	}
}
END_TEST

/* Issue 11, defect 3: after a 413 every new batch started at full size
 * again and got its own 413. Now the size last accepted is kept for that
 * endpoint: one 413 (two at most, for the batch read meanwhile), then none. */
START_TEST(test_after_413_next_requests_start_at_accepted_size)
{
	char *dir = tu_mkdtemp("learn413");
	srv *s = srv_start(script_413_bytes);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;
	long n413;

	srv_set(s, 0, 20000); /* the proxy's limit, bytes */
	cfg_std(&c, dir, url);
	c.compression = EDGELOG_COMPRESSION_NONE;
	c.upload_max_kb = 64;
	c.batch_size = 2000;
	log = tu_open_ok(&c);
	append_samples(log, 1, 3000);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 20000, st.pending == 0);
	ck_assert_msg(st.sent == 3000 && st.failed == 0, STATUS_FMT, STATUS_ARGS(st));
	ck_assert_int_le(close_timed(log), 3000);
	pthread_mutex_lock(&s->mu);
	n413 = s->p[1];
	{
		/* The first batch is split until a body gets through; from
     * then on no request is refused for its size. */
		size_t i, first_ok = s->nreq;
		for (i = 0; i < s->nreq; i++) {
			if (s->reqs[i].status == 200 && first_ok == s->nreq)
				first_ok = i;
			ck_assert_msg(i < first_ok || s->reqs[i].status != 413,
				      "request %zu got 413 after a body of the accepted size went "
				      "through (request %zu)",
				      i, first_ok);
		}
	}
	pthread_mutex_unlock(&s->mu);
	ck_assert_msg(n413 >= 1, "the limit was never hit (%zu requests)", srv_nreq(s));
	check_acked_range(s, 1, 3000, 0);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

/* 413 for batches of more than p[0] records. */
static void script_413(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs, srv_reply *out)
{
	(void)idx;
	(void)recs;
	if ((long)rq->nrec > s->p[0]) {
		out->status = 413;
		snprintf(out->body, sizeof(out->body), "payload too large");
	}
}

START_TEST(test_413_splits_until_accepted)
{
	char *dir = tu_mkdtemp("split");
	srv *s = srv_start(script_413);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;
	size_t i;

	srv_set(s, 0, 7);
	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	append_samples(log, 1, 1000);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 15000, st.pending == 0);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_uint_eq(st.sent, 1000);
	check_acked_range(s, 1, 1000, 0);
	pthread_mutex_lock(&s->mu);
	for (i = 0; i < s->nreq; i++)
		if (s->reqs[i].status == 200)
			ck_assert_uint_le(s->reqs[i].nrec, 7);
	pthread_mutex_unlock(&s->mu);
	ck_assert_int_le(close_timed(log), 3000);
	ck_assert_uint_eq(read_dead(dir, NULL, 0), 0);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

/* Accept, then say nothing for p[0] ms (then 200, to nobody). */
static void script_silent(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs,
			  srv_reply *out)
{
	(void)idx;
	(void)rq;
	(void)recs;
	out->sleep_ms = (int)s->p[0];
}

START_TEST(test_server_never_answers)
{
	const char *token = "silent-srv-token-5150";
	char *dir = tu_mkdtemp("silent");
	srv *s = srv_start(script_silent);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;
	srv_req r0, r1;
	int64_t took;

	snprintf(g_secret, sizeof(g_secret), "%s", token);
	srv_set(s, 0, 8000);
	cfg_std(&c, dir, url);
	c.auth_token = token;
	log = tu_open_ok(&c);
	append_samples(log, 1, 5);
	ck_assert_int_eq(edgelog_start(log), 0);
	srv_wait_reqs(s, 2, 8000); /* timed out, then retried */
	WAIT_FOR(log, st, 5000,
		 !st.is_connected &&
			 (has_ci(st.last_error, "timeout") || has_ci(st.last_error, "timed out")));
	ck_assert_uint_eq(st.sent, 0);
	ck_assert_uint_eq(st.pending, 5);
	r0 = srv_peek(s, 0);
	r1 = srv_peek(s, 1);
	ck_assert_str_eq(r0.idem, r1.idem);
	ck_assert_msg(r1.t_arrive_us - r0.t_arrive_us >= 900000,
		      "retry %lld ms after the first request: no timeout in between",
		      (long long)(r1.t_arrive_us - r0.t_arrive_us) / 1000);
	check_no_secret(log, NULL, token);
	took = close_timed(log);
	ck_assert_msg(took <= 2000 + 1000 + 1500, "edgelog_close took %lld ms", (long long)took);
	st = offline_status(dir);
	ck_assert_uint_eq(st.acked_seq, 0);
	ck_assert_uint_eq(st.sent, 0);
	ck_assert_uint_eq(st.pending, 5);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

/* The huge answers: a body much larger than what may stay resident. Under
 * ThreadSanitizer the shadow memory of the threads alone adds about 9 MiB,
 * so the body and the limit grow there (a kept body would still show). */
#if defined(__SANITIZE_THREAD__)
#define HUGE_BODY (64l << 20)
#define RSS_LIMIT (24l << 20)
#else
#define HUGE_BODY (20l << 20)
#define RSS_LIMIT (8l << 20)
#endif

/* Peak resident set while fn runs, sampled (the kernel's VmHWM cannot be
 * reset reliably in every container). */
typedef struct rss_sampler {
	pthread_t th;
	int stop; /* atomic */
	long peak_pages;
} rss_sampler;

static long rss_pages(void)
{
	long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res;
}

static void *rss_main(void *arg)
{
	rss_sampler *r = arg;
	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		long p = rss_pages();
		if (p > r->peak_pages)
			r->peak_pages = p;
		usleep(500);
	}
	return NULL;
}

/* p[0]: status; every answer carries a p[1]-byte body. */
static void script_big(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs, srv_reply *out)
{
	(void)idx;
	(void)rq;
	(void)recs;
	out->status = (unsigned)s->p[0];
	out->big_body = (uint64_t)s->p[1];
}

/* One huge-answer run: a server answering `status` with a HUGE_BODY-byte
 * body, an engine holding 10 records, started, and the resident set
 * sampled from just before the start. */
typedef struct huge_run {
	char *dir, *url;
	srv *s;
	edgelog *log;
	rss_sampler rs;
	long base;
} huge_run;

static void huge_begin(huge_run *h, const char *prefix, unsigned status)
{
	edgelog_config c;

	memset(h, 0, sizeof(*h));
	h->dir = tu_mkdtemp(prefix);
	h->s = srv_start(script_big);
	h->url = url_for(h->s->port, "http", "127.0.0.1");
	srv_set(h->s, 0, status);
	srv_set(h->s, 1, HUGE_BODY);
	cfg_std(&c, h->dir, h->url);
	c.segment_bytes = 65536;
	/* 64 MiB takes seconds under the sanitizers: a transfer timeout that
   * leaves room for it (what is tested is memory, not speed). */
	c.http_timeout_ms = 30000;
	h->log = tu_open_ok(&c);
	append_samples(h->log, 1, 10);
	h->base = rss_pages();
	h->rs.peak_pages = h->base;
	pthread_create(&h->rs.th, NULL, rss_main, &h->rs);
	ck_assert_int_eq(edgelog_start(h->log), 0);
}

/* Stop sampling; how many bytes the resident set grew by at its peak. */
static long huge_grown(huge_run *h)
{
	__atomic_store_n(&h->rs.stop, 1, __ATOMIC_RELAXED);
	pthread_join(h->rs.th, NULL);
	return (h->rs.peak_pages - h->base) * sysconf(_SC_PAGESIZE);
}

static void huge_end(huge_run *h)
{
	srv_stop(h->s);
	free(h->url);
	free(h->dir);
}

START_TEST(test_huge_body_200_bounded_memory)
{
	huge_run h;
	edgelog_status st;
	long grown;

	huge_begin(&h, "huge200", 200);
	WAIT_FOR(h.log, st, 10000, st.sent == 10);
	grown = huge_grown(&h);
	ck_assert_int_eq(st.is_connected, 1);
	ck_assert_uint_ge(__atomic_load_n(&h.s->big_sent, __ATOMIC_RELAXED), HUGE_BODY);
	ck_assert_msg(grown < RSS_LIMIT,
		      "resident set grew by %ld KiB while a %ld MiB answer was read", grown / 1024,
		      (long)HUGE_BODY >> 20);
	ck_assert_int_le(close_timed(h.log), 3000);
	huge_end(&h);
}
END_TEST

START_TEST(test_huge_body_500_retried_short_error)
{
	huge_run h;
	edgelog_status st;
	long grown;

	huge_begin(&h, "huge500", 500);
	srv_wait_reqs(h.s, 3, 10000);
	WAIT_FOR(h.log, st, 5000, strstr(st.last_error, "500") != NULL);
	grown = huge_grown(&h);
	ck_assert_uint_eq(st.sent, 0);
	ck_assert_int_eq(st.is_connected, 0);
	/* Bounded (the status field's 256 bytes, the start of the body at
   * most) and clear: it names the status. */
	ck_assert_msg(strlen(st.last_error) < sizeof(st.last_error) &&
			      strstr(st.last_error, "HTTP 500") != NULL,
		      "last_error '%s'", st.last_error);
	ck_assert_msg(strlen(edgelog_errmsg(h.log)) < 512, "errmsg %zu bytes",
		      strlen(edgelog_errmsg(h.log)));
	ck_assert_msg(grown < RSS_LIMIT, "resident set grew by %ld KiB over three %ld MiB answers",
		      grown / 1024, (long)HUGE_BODY >> 20);
	pthread_mutex_lock(&g_log_mu);
	ck_assert_int_eq(g_log_long, 0);
	pthread_mutex_unlock(&g_log_mu);
	ck_assert_int_le(close_timed(h.log), 2000 + 1000 + 1500);
	st = offline_status(h.dir);
	ck_assert_uint_eq(st.acked_seq, 0);
	huge_end(&h);
}
END_TEST

/* A TCP server that answers every connection with bytes that are not
 * HTTP, then closes it. */
typedef struct raw_srv {
	int fd, port;
	pthread_t th;
	int stop; /* atomic */
	int accepted;
	const char *reply;
	size_t reply_len;
} raw_srv;

static void *raw_main(void *arg)
{
	raw_srv *r = arg;
	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		struct pollfd p = {r->fd, POLLIN, 0};
		int c;
		if (poll(&p, 1, 50) <= 0)
			continue;
		c = accept(r->fd, NULL, NULL);
		if (c < 0)
			continue;
		__atomic_add_fetch(&r->accepted, 1, __ATOMIC_RELAXED);
		{
			char buf[65536];
			struct pollfd q = {c, POLLIN, 0};
			if (poll(&q, 1, 200) > 0)
				(void)!recv(c, buf, sizeof(buf), 0);
			(void)!send(c, r->reply, r->reply_len, MSG_NOSIGNAL);
		}
		close(c);
	}
	return NULL;
}

static void raw_start(raw_srv *r, const char *reply, size_t len)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int one = 1;
	memset(r, 0, sizeof(*r));
	r->reply = reply;
	r->reply_len = len;
	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(r->fd, 0);
	setsockopt(r->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(r->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(r->fd, 16), 0);
	ck_assert_int_eq(getsockname(r->fd, (struct sockaddr *)&sa, &sl), 0);
	r->port = ntohs(sa.sin_port);
	pthread_create(&r->th, NULL, raw_main, r);
}

static void raw_stop(raw_srv *r)
{
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
	pthread_join(r->th, NULL);
	close(r->fd);
}

START_TEST(test_garbage_answer_not_acked)
{
	static const char g0[] = "\x00\xff\xfe\x01 total garbage {]\r\n\r\n\x7f";
	static const char g1[] = "HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok";
	static const char g2[] = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nshort";
	const char *reply = _i == 0 ? g0 : _i == 1 ? g1 : g2;
	size_t rlen = _i == 0 ? sizeof(g0) - 1 : _i == 1 ? sizeof(g1) - 1 : sizeof(g2) - 1;
	char *dir = tu_mkdtemp("garbage");
	raw_srv r;
	char *url;
	edgelog_config c;
	edgelog *log;
	edgelog_status st;

	raw_start(&r, reply, rlen);
	url = url_for(r.port, "http", "127.0.0.1");
	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	append_samples(log, 1, 10);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 10000,
		 __atomic_load_n(&r.accepted, __ATOMIC_RELAXED) >= 3 && st.last_error[0] &&
			 !st.is_connected);
	ck_assert_uint_eq(st.sent, 0);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_uint_eq(st.pending, 10);
	ck_assert(strlen(st.last_error) < 255);
	ck_assert_int_le(close_timed(log), 2000 + 1000 + 1500);
	st = offline_status(dir);
	ck_assert_uint_eq(st.acked_seq, 0);
	raw_stop(&r);
	free(url);
	free(dir);
}
END_TEST

START_TEST(test_connection_refused_then_recover)
{
	char *dir = tu_mkdtemp("refused");
	srv *s1 = srv_start(NULL), *s2;
	char *url1 = url_for(s1->port, "http", "127.0.0.1");
	char *bad = url_for(closed_port(), "http", "127.0.0.1"), *url2;
	edgelog_config c;
	edgelog *log;
	edgelog_status st;
	int saw_retry = 0;
	int64_t until, took;

	/* Run 1: delivers 100. */
	cfg_std(&c, dir, url1);
	log = tu_open_ok(&c);
	ck_assert_int_eq(edgelog_start(log), 0);
	append_samples(log, 1, 100);
	WAIT_FOR(log, st, 10000, st.sent == 100 && st.pending == 0);
	ck_assert_int_le(close_timed(log), 3000);
	srv_stop(s1);

	/* Run 2: nobody listens. */
	cfg_std(&c, dir, bad);
	log = tu_open_ok(&c);
	ck_assert_int_eq(edgelog_start(log), 0);
	append_samples(log, 101, 100);
	until = mono_ms() + 5000;
	for (;;) {
		st = status_of(log);
		ck_assert_uint_eq(st.sent, 100);
		ck_assert_uint_eq(st.pending, 100);
		ck_assert_int_eq(st.is_connected, 0);
		saw_retry |= st.retry_in_s > 0;
		if (saw_retry && st.last_error[0])
			break;
		ck_assert_msg(mono_ms() < until, "no retry_in_s / last_error seen: " STATUS_FMT,
			      STATUS_ARGS(st));
		sleep_ms(1);
	}
	ck_assert_msg(has_ci(st.last_error, "connect") || has_ci(st.last_error, "refused"),
		      "last_error '%s'", st.last_error);
	took = close_timed(log);
	ck_assert_msg(took <= 2000 + 1000 + 1500, "edgelog_close took %lld ms", (long long)took);
	st = offline_status(dir);
	ck_assert_uint_eq(st.pending, 100);
	ck_assert_uint_eq(st.sent, 100);

	/* Run 3: a server again, on another port. */
	s2 = srv_start(NULL);
	url2 = url_for(s2->port, "http", "127.0.0.1");
	cfg_std(&c, dir, url2);
	log = tu_open_ok(&c);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 10000, st.pending == 0);
	ck_assert_uint_eq(st.sent, 200); /* counted on from run 1 */
	ck_assert_int_eq(st.is_connected, 1);
	check_acked_range(s2, 101, 200, 0);
	ck_assert_int_le(close_timed(log), 3000);
	srv_stop(s2);
	free(url1);
	free(url2);
	free(bad);
	free(dir);
}
END_TEST

START_TEST(test_recovered_counts_backlog_after_outage)
{
	char *dir = tu_mkdtemp("recovered");
	srv *s = srv_start(script_mode);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;
	size_t m;

	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	ck_assert_int_eq(edgelog_start(log), 0);
	append_samples(log, 1, 500);
	WAIT_FOR(log, st, 10000, st.sent == 500 && st.pending == 0);
	ck_assert_uint_eq(st.recovered, 0);

	srv_set(s, 0, 1); /* outage */
	m = srv_nreq(s);
	append_samples(log, 501, 1000);
	srv_wait_reqs(s, m + 4, 10000);
	st = status_of(log);
	ck_assert_int_eq(st.is_connected, 0);
	ck_assert_uint_eq(st.sent, 500);
	ck_assert_uint_eq(st.recovered, 0);

	srv_set(s, 0, 0); /* back */
	WAIT_FOR(log, st, 10000, st.pending == 0 && st.sent == 1500);
	ck_assert_int_eq(st.is_connected, 1);
	ck_assert_uint_eq(st.recovered, 1000);

	/* The outage is over: new records are not "recovered". */
	append_samples(log, 1501, 100);
	WAIT_FOR(log, st, 10000, st.pending == 0 && st.sent == 1600);
	ck_assert_uint_eq(st.recovered, 1000);
	check_acked_range(s, 1, 1600, 0);
	ck_assert_int_le(close_timed(log), 3000);
	st = offline_status(dir);
	ck_assert_uint_eq(st.recovered, 1000); /* persisted */
	ck_assert_uint_eq(st.sent, 1600);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

START_TEST(test_step_driven_without_worker)
{
	char *dir = tu_mkdtemp("step");
	srv *s = srv_start(NULL);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;
	int64_t until;

	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	append_samples(log, 1, 500);
	until = mono_ms() + 10000;
	do {
		ck_assert_int_eq(edgelog_step(log, 20), 0);
		st = status_of(log);
		ck_assert_msg(mono_ms() < until, "edgelog_step did not deliver: " STATUS_FMT,
			      STATUS_ARGS(st));
	} while (st.pending);
	ck_assert_uint_eq(st.sent, 500);
	check_acked_range(s, 1, 500, 0);
	ck_assert_int_le(close_timed(log), 3000);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

START_TEST(test_close_drains_within_grace)
{
	char *dir = tu_mkdtemp("drain");
	srv *s = srv_start(NULL);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;

	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	append_samples(log, 1, 3000);
	/* Never started: close alone delivers the backlog. */
	ck_assert_int_le(close_timed(log), 2000 + 500);
	check_acked_range(s, 1, 3000, 0);
	st = offline_status(dir);
	ck_assert_uint_eq(st.pending, 0);
	ck_assert_uint_eq(st.sent, 3000);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

/* A refused record of nearly the largest size goes to failed/ whole (the
 * dead-letter store takes what the log takes). */
START_TEST(test_poison_max_size_record)
{
	char *dir = tu_mkdtemp("poison-big");
	srv *s = srv_start(script_poison);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;
	dead_rec dead[4];
	size_t nd, binlen = EDGELOG_MAX_RECORD - 16, k;
	char *bin = malloc(binlen), *want;
	uint64_t seq;
	json_t *j;
	msgpack_unpacked u;
	size_t off = 0;
	PACK_BEGIN();

	ck_assert_ptr_nonnull(bin);
	for (k = 0; k < binlen; k++)
		bin[k] = (char)(k * 31);
	msgpack_pack_bin_with_body(&pk, bin, binlen);
	ck_assert_uint_le(sb.size, EDGELOG_MAX_RECORD);
	srv_set(s, 0, 4);
	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	append_samples(log, 1, 3);
	ck_assert_int_eq(edgelog_append(log, sb.data, sb.size, &seq), 0);
	ck_assert_uint_eq(seq, 4);
	append_samples(log, 5, 3);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 15000, st.pending == 0);
	ck_assert_uint_eq(st.failed, 1);
	ck_assert_uint_eq(st.sent, 6);
	ck_assert_int_le(close_timed(log), 3000);
	nd = read_dead(dir, dead, 4);
	ck_assert_uint_eq(nd, 1);
	ck_assert_uint_eq(dead[0].seq, 4);
	ck_assert_int_eq(dead[0].status, 422);
	msgpack_unpacked_init(&u);
	ck_assert_int_eq(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
	j = tu_mpo_json(&u.data);
	want = tu_canon(j);
	ck_assert_msg(!strcmp(dead[0].data, want), "the dead letter's data differs");
	free(want);
	json_decref(j);
	msgpack_unpacked_destroy(&u);
	free(dead[0].data);
	free(bin);
	msgpack_sbuffer_destroy(&sb);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

/* Send once batch_size records wait, or batch_timeout_ms after the oldest
 * waiting record; not before. */
START_TEST(test_batch_size_and_timeout)
{
	char *dir = tu_mkdtemp("batching");
	srv *s = srv_start(NULL);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;
	int64_t t0, wait_ms;
	srv_req r;

	cfg_std(&c, dir, url);
	c.batch_size = 32;
	c.batch_timeout_ms = 600;
	log = tu_open_ok(&c);
	ck_assert_int_eq(edgelog_start(log), 0);
	sleep_ms(100);
	/* A partial batch waits for the timeout. */
	t0 = mono_us();
	append_samples(log, 1, 5);
	WAIT_FOR(log, st, 5000, st.sent == 5);
	r = srv_get(s, 0);
	wait_ms = (r.t_arrive_us - t0) / 1000;
	ck_assert_msg(wait_ms >= 600 - 2,
		      "5 of 32 records sent after %lld ms, before the %d ms timeout",
		      (long long)wait_ms, 600);
	ck_assert_msg(wait_ms <= 600 + 100 + 400, "5 records sent after %lld ms (timeout 600)",
		      (long long)wait_ms);
	ck_assert_uint_eq(r.nrec, 5);
	/* A full batch goes at once. */
	t0 = mono_us();
	append_samples(log, 6, 32);
	WAIT_FOR(log, st, 5000, st.sent == 37);
	r = srv_get(s, 1);
	wait_ms = (r.t_arrive_us - t0) / 1000;
	ck_assert_msg(wait_ms < 400, "a full batch of 32 waited %lld ms", (long long)wait_ms);
	ck_assert_int_le(close_timed(log), 3000);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

/* While draining a backlog, requests carry at most upload_max_records
 * records and about upload_max_kb of payload. */
START_TEST(test_batch_caps_while_draining)
{
	char *dir = tu_mkdtemp("caps");
	srv *s = srv_start(NULL);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;
	size_t i, maxn = 0;

	cfg_std(&c, dir, url);
	c.upload_max_records = 100;
	log = tu_open_ok(&c);
	append_samples(log, 1, 2000);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 10000, st.pending == 0);
	check_acked_range(s, 1, 2000, 0);
	pthread_mutex_lock(&s->mu);
	for (i = 0; i < s->nreq; i++)
		maxn = s->reqs[i].nrec > maxn ? s->reqs[i].nrec : maxn;
	pthread_mutex_unlock(&s->mu);
	ck_assert_uint_eq(maxn, 100); /* full batches while draining */
	ck_assert_int_le(close_timed(log), 3000);
	srv_stop(s);

	/* 4 KiB of payload per request: about ten 430-byte samples. */
	s = srv_start(NULL);
	free(url);
	url = url_for(s->port, "http", "127.0.0.1");
	free(dir);
	dir = tu_mkdtemp("caps-kb");
	cfg_std(&c, dir, url);
	c.upload_max_kb = 4;
	log = tu_open_ok(&c);
	append_samples(log, 1, 500);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 10000, st.pending == 0);
	check_acked_range(s, 1, 500, 0);
	pthread_mutex_lock(&s->mu);
	for (i = 0; i < s->nreq; i++) {
		uint64_t bytes = 0, k;
		for (k = 0; k < s->reqs[i].nrec; k++) {
			uint8_t b[SAMPLE_CAP];
			bytes += tool_sample_msgpack(s->recs[s->reqs[i].first + k].seq, b,
						     sizeof(b));
		}
		ck_assert_msg(bytes <= 4096 + SAMPLE_CAP, "request %zu carries %llu payload bytes",
			      i, (unsigned long long)bytes);
	}
	pthread_mutex_unlock(&s->mu);
	ck_assert_int_le(close_timed(log), 3000);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

/* p[0]: the status of every answer. */
static void script_status(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs,
			  srv_reply *out)
{
	(void)idx;
	(void)rq;
	(void)recs;
	out->status = (unsigned)s->p[0];
	if (out->status >= 300 && out->status < 400)
		snprintf(out->body, sizeof(out->body), "moved");
}

/* Any 2xx acknowledges. */
START_TEST(test_every_2xx_acks)
{
	static const long codes[] = {200, 201, 202, 204, 299};
	char *dir = tu_mkdtemp("2xx");
	srv *s = srv_start(script_status);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;

	srv_set(s, 0, codes[_i]);
	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	append_samples(log, 1, 20);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 10000, st.pending == 0);
	ck_assert_uint_eq(st.sent, 20);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_int_le(close_timed(log), 3000);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

/* A redirect (the uploader follows none) is not the cloud refusing the
 * records: design.md makes only "any other 4xx" permanent. The records
 * must stay buffered (and the status name the redirect), not be moved to
 * failed/ wholesale. */
START_TEST(test_redirect_not_dead_lettered)
{
	static const long codes[] = {301, 307, 308};
	char *dir = tu_mkdtemp("3xx");
	srv *s = srv_start(script_status);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;
	char code[8];

	snprintf(code, sizeof(code), "%ld", codes[_i]);
	srv_set(s, 0, codes[_i]);
	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	append_samples(log, 1, 20);
	ck_assert_int_eq(edgelog_start(log), 0);
	srv_wait_reqs(s, 3, 10000);
	WAIT_FOR(log, st, 10000, st.last_error[0] != 0); /* a step's outcome is in */
	sleep_ms(300);
	st = status_of(log);
	ck_assert_msg(st.failed == 0 && st.pending == 20,
		      "HTTP %ld moved records to failed/: " STATUS_FMT, codes[_i], STATUS_ARGS(st));
	ck_assert_msg(strstr(st.last_error, code) != NULL, "last_error '%s'", st.last_error);
	ck_assert_int_le(close_timed(log), 2000 + 1000 + 1500);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

/* Backing off for a long Retry-After: status says when, and close does
 * not wait for it beyond the grace period. */
START_TEST(test_close_while_backing_off)
{
	char *dir = tu_mkdtemp("ra-close");
	srv *s = srv_start(script_retry_after);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;
	int64_t took;

	srv_set(s, 0, 1000); /* every request */
	srv_set(s, 1, 503);
	srv_set(s, 2, 3); /* Retry-After: 3600, capped at 10 x 500 ms */
	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	append_samples(log, 1, 10);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 5000, strstr(st.last_error, "503") != NULL);
	ck_assert_msg(st.retry_in_s >= 4 && st.retry_in_s <= 5, "retry_in_s %llu",
		      (unsigned long long)st.retry_in_s);
	took = close_timed(log);
	ck_assert_msg(took <= 2000 + SLACK_MS * 3, "close took %lld ms while backing off",
		      (long long)took);
	ck_assert_uint_eq(srv_nreq(s), 1);
	st = offline_status(dir);
	ck_assert_uint_eq(st.pending, 10);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

/* ------------------------------------------------------------------------
 * TLS: a CA and a server certificate made by the test (openssl CLI).
 */

static char *g_tls_dir;

static char *read_text(const char *path)
{
	tu_buf b = tu_read_file(path);
	char *s = malloc(b.len + 1);
	ck_assert_ptr_nonnull(s);
	memcpy(s, b.data, b.len);
	s[b.len] = 0;
	tu_buf_free(&b);
	return s;
}

static void make_certs(const char *dir)
{
	char cmd[8192];
	int rc;
	snprintf(cmd, sizeof(cmd),
		 "(cd '%s' && "
		 "printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n"
		 "extendedKeyUsage=serverAuth\\n' > ext.cnf && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
		 "-nodes "
		 "-keyout ca.key -out ca.pem -days 2 -subj /CN=edgelog-test-ca && "
		 "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
		 "-nodes "
		 "-keyout srv.key -out srv.csr -subj /CN=edgelog-test-server && "
		 "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
		 "-out srv.pem -days 2 -extfile ext.cnf && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
		 "-nodes "
		 "-keyout other.key -out other.pem -days 2 -subj /CN=edgelog-other-ca"
		 ") > '%s/openssl.log' 2>&1",
		 dir, dir);
	rc = system(cmd);
	ck_assert_msg(rc == 0, "openssl failed (is it installed?): see %s/openssl.log", dir);
}

static void setup_tls(void)
{
	setup_engine();
	g_tls_dir = tu_mkdtemp("tls");
	make_certs(g_tls_dir);
}

START_TEST(test_tls_right_ca_delivers)
{
	char *dir = tu_mkdtemp("tls-ok");
	char *key = read_text(tu_path(g_tls_dir, "srv.key"));
	char *cert = read_text(tu_path(g_tls_dir, "srv.pem"));
	char ca[4300];
	srv *s = srv_start_on(0, NULL, key, cert);
	char *url = url_for(s->port, "https", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;
	char e[256];

	snprintf(ca, sizeof(ca), "%s", tu_path(g_tls_dir, "ca.pem"));
	srv_keep_data(s);
	cfg_std(&c, dir, url);
	c.ca_file = ca;
	log = tu_open_ok(&c);
	append_samples(log, 1, 100);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 10000, st.sent == 100 && st.pending == 0);
	ck_assert_int_eq(st.is_connected, 1);
	ck_assert_msg(srv_decode_errors(s, e, sizeof(e)) == 0, "%s", e);
	check_acked_range(s, 1, 100, 0);
	check_request_headers(s, EDGELOG_FORMAT_NDJSON, 1, NULL);
	ck_assert_int_le(close_timed(log), 3000);
	srv_stop(s);
	free(url);
	free(key);
	free(cert);
	free(dir);
}
END_TEST

/* _i 0: a CA that did not sign the server's certificate; 1: the right CA
 * but a host name the certificate does not carry. */
START_TEST(test_tls_verification_fails_clearly)
{
	char *dir = tu_mkdtemp("tls-bad");
	char *key = read_text(tu_path(g_tls_dir, "srv.key"));
	char *cert = read_text(tu_path(g_tls_dir, "srv.pem"));
	char ca[4300];
	srv *s = srv_start_on(0, NULL, key, cert);
	char *url = url_for(s->port, "https", _i == 0 ? "127.0.0.1" : "localhost");
	edgelog_config c;
	edgelog *log;
	edgelog_status st;

	snprintf(ca, sizeof(ca), "%s", tu_path(g_tls_dir, _i == 0 ? "other.pem" : "ca.pem"));
	cfg_std(&c, dir, url);
	c.ca_file = ca;
	log = tu_open_ok(&c);
	append_samples(log, 1, 20);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 8000, st.last_error[0] && !st.is_connected);
	sleep_ms(300); /* a few retries */
	st = status_of(log);
	ck_assert_msg(has_ci(st.last_error, "certificate") || has_ci(st.last_error, "SSL") ||
			      has_ci(st.last_error, "TLS"),
		      "last_error does not name the TLS problem: '%s'", st.last_error);
	ck_assert_uint_eq(st.sent, 0);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_uint_eq(st.pending, 20);
	ck_assert_int_le(close_timed(log), 2000 + 1000 + 1500);
	ck_assert_uint_eq(srv_nreq(s), 0); /* no request got through */
	st = offline_status(dir);
	ck_assert_uint_eq(st.acked_seq, 0);
	ck_assert_uint_eq(st.sent, 0);
	srv_stop(s);
	free(url);
	free(key);
	free(cert);
	free(dir);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *uploader_suite(void)
{
	Suite *s = suite_create("uploader");
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

	tc = tcase_create("encoding");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_encode_roundtrip, 0, 6);
	tcase_add_test(tc, test_gzip_sizes);
	tcase_add_test(tc, test_json_strings_escaped);
	tcase_add_test(tc, test_json_invalid_utf8);
	tcase_add_test(tc, test_json_binary_base64);
	tcase_add_test(tc, test_json_floats);
	tcase_add_test(tc, test_json_integers);
	tcase_add_test(tc, test_json_non_string_keys);
	tcase_add_test(tc, test_json_deep_nesting);
	tcase_add_test(tc, test_json_depth_limit_matches_append);
	tcase_add_test(tc, test_json_containers);
	tcase_add_test(tc, test_json_nested_map_keys_linear);
	tcase_add_test(tc, test_json_undecodable_refused);
	tcase_add_test(tc, test_data_as_json_string);
	suite_add_tcase(s, tc);

	tc = tcase_create("engine_http");
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	tcase_add_checked_fixture(tc, setup_engine, teardown_engine);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_happy_path_10k);
	tcase_add_test(tc, test_token_never_printed_on_failures);
	tcase_add_test(tc, test_token_from_file_and_env);
	tcase_add_loop_test(tc, test_formats_engine, 0, 6);
	tcase_add_test(tc, test_retry_after_seconds_engine);
	tcase_add_test(tc, test_retry_after_date_engine);
	tcase_add_test(tc, test_retry_after_capped);
	tcase_add_test(tc, test_backoff_503_burst_then_reset);
	tcase_add_test(tc, test_idempotency_key_stable_on_retry);
	tcase_add_test(tc, test_poison_record_dead_lettered);
	tcase_add_test(tc, test_body_never_exceeds_upload_max_kb);
	tcase_add_test(tc, test_after_413_next_requests_start_at_accepted_size);
	tcase_add_test(tc, test_poison_500_only_that_record_dead_lettered);
	tcase_add_test(tc, test_poison_fully_down_500_nothing_dead_lettered);
	tcase_add_test(tc, test_nested_map_keys_record_delivered);
	tcase_add_test(tc, test_unencodable_record_dead_lettered);
	tcase_add_test(tc, test_413_splits_until_accepted);
	tcase_add_test(tc, test_server_never_answers);
	tcase_add_test(tc, test_huge_body_200_bounded_memory);
	tcase_add_test(tc, test_huge_body_500_retried_short_error);
	tcase_add_loop_test(tc, test_garbage_answer_not_acked, 0, 3);
	tcase_add_test(tc, test_connection_refused_then_recover);
	tcase_add_test(tc, test_recovered_counts_backlog_after_outage);
	tcase_add_test(tc, test_step_driven_without_worker);
	tcase_add_test(tc, test_close_drains_within_grace);
	tcase_add_test(tc, test_poison_max_size_record);
	tcase_add_test(tc, test_batch_size_and_timeout);
	tcase_add_test(tc, test_batch_caps_while_draining);
	tcase_add_loop_test(tc, test_every_2xx_acks, 0, 5);
	tcase_add_loop_test(tc, test_redirect_not_dead_lettered, 0, 3);
	tcase_add_test(tc, test_close_while_backing_off);
	suite_add_tcase(s, tc);

	tc = tcase_create("tls");
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	tcase_add_checked_fixture(tc, setup_tls, teardown_engine);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_tls_right_ca_delivers);
	tcase_add_loop_test(tc, test_tls_verification_fails_clearly, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	sr = srunner_create(uploader_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
