/*
 * upl_uploader.c - batching, retry with backoff, and isolation of the
 * records the cloud refuses.
 *
 * A batch is a run of consecutive records read from the log. It is sent as
 * a queue of ranges, first the whole batch. A 2xx acknowledges the range.
 * A transient failure (408, 425, 429, 5xx, timeout, transport) leaves the
 * range at the head of the queue, to be sent again, byte for byte with the
 * same Idempotency-Key, once the backoff has passed. A permanent rejection
 * (any other status) splits the range in two halves that take its place;
 * a single record that is refused goes to the dead-letter store with the
 * status and the start of the response. Ranges are handled strictly in
 * order, so "handled up to seq N" is always a prefix of the batch.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <edgelog.h>
#include <libdeflate.h>

#include "seg_reader.h"
#include "seg_writer.h"
#include "upl_internal.h"

#define MAX_RANGES 64 /* split depth for a 2^32-record batch */
#define MAX_REQUESTS_PER_STEP 64
#define DEAD_SEGMENT_BYTES (1u << 20)

typedef struct rec_ref {
	uint64_t seq;
	int64_t ts_ms;
	size_t off; /* into payload */
	uint32_t len;
} rec_ref;

struct upl {
	upl_conf c;
	const seg_vfs *vfs;
	char segdir[4200];
	char faileddir[4200];
	upl_http *http;

	seg_reader reader;
	int reader_open;
	uint64_t next_read; /* seq the reader will return next (at least) */

	/* The batch in flight. */
	rec_ref *recs;
	size_t n, cap;
	seg_buf payload;
	size_t range_lo[MAX_RANGES], range_hi[MAX_RANGES];
	int n_ranges;
	size_t done; /* recs[0 .. done) are handled */

	seg_buf body, gz;
	unsigned attempt;      /* consecutive transient failures */
	int64_t retry_at_ms;   /* monotonic */
	int64_t first_wait_ms; /* when records were first seen waiting (0: none) */
	uint64_t rng;

	seg_writer dead;
	int dead_open;
	struct libdeflate_compressor *gzc;
};

static uint64_t rnd(upl *u)
{
	/* xorshift64*: jitter only, not security. */
	u->rng ^= u->rng >> 12;
	u->rng ^= u->rng << 25;
	u->rng ^= u->rng >> 27;
	return u->rng * 0x2545f4914f6cdd1dull;
}

uint64_t upl_backoff_ms(uint32_t base_ms, uint32_t max_ms, unsigned attempt, uint64_t r)
{
	uint64_t cap = base_ms;
	unsigned i;

	for (i = 0; i < attempt && cap < max_ms; i++)
		cap *= 2;
	if (cap > max_ms)
		cap = max_ms;
	return r % (cap + 1);
}

int64_t upl_parse_retry_after(const char *v, int64_t now_s)
{
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	char wk[8], ms[8], tz[8];
	int d, y, hh, mm, ss, i, m = -1;
	struct tm tm;
	int64_t t;

	while (*v == ' ' || *v == '\t')
		v++;
	if (*v >= '0' && *v <= '9') {
		char *end;
		unsigned long long s = strtoull(v, &end, 10);
		while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
			end++;
		if (*end || s > 100000000ull)
			return -1;
		return (int64_t)s * 1000;
	}
	/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT", nothing after it but
	 * white space. */
	{
		int end = 0;
		if (sscanf(v, "%3s, %d %3s %d %d:%d:%d %3s%n", wk, &d, ms, &y, &hh, &mm, &ss, tz,
			   &end) != 8 ||
		    strcmp(tz, "GMT"))
			return -1;
		while (v[end] == ' ' || v[end] == '\t' || v[end] == '\r' || v[end] == '\n')
			end++;
		if (v[end])
			return -1;
	}
	for (i = 0; i < 12; i++)
		if (!strcmp(ms, mon[i]))
			m = i;
	if (m < 0 || d < 1 || d > 31 || y < 1970 || y > 9999 || hh > 23 || mm > 59 || ss > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = m;
	tm.tm_mday = d;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	t = (int64_t)timegm(&tm);
	{
		/* timegm normalises 30 Feb into March: refuse such dates. */
		struct tm back;
		time_t tt = (time_t)t;
		if (!gmtime_r(&tt, &back) || back.tm_mday != d || back.tm_mon != m)
			return -1;
	}
	return t <= now_s ? 0 : (t - now_s) * 1000;
}

int upl_status_retryable(long s)
{
	if (s >= 200 && s <= 299)
		return 0;
	/* Only a 4xx is the server refusing these records for good; 408, 425
	 * and 429 are "not now". Anything else that is not 2xx (a redirect,
	 * which is not followed; 5xx; a nonsense code) is a problem of the
	 * endpoint, not of the records: keep them and retry. */
	return !(s >= 400 && s <= 499) || s == 408 || s == 425 || s == 429;
}

int upl_create(upl **out, const upl_conf *c, const seg_vfs *v, const char *segdir,
	       const char *faileddir, seg_err *e)
{
	upl *u;
	int rc;

	*out = NULL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return seg_fail(e, EDGELOG_ENOMEM, "out of memory");
	u->c = *c;
	u->vfs = v;
	snprintf(u->segdir, sizeof(u->segdir), "%s", segdir);
	snprintf(u->faileddir, sizeof(u->faileddir), "%s", faileddir);
	u->rng = (uint64_t)v->mono_ms(v) * 0x9e3779b97f4a7c15ull + 1;
	v->random(v, &u->rng, sizeof(u->rng));
	u->rng |= 1;
	if (c->gzip && !(u->gzc = libdeflate_alloc_compressor(UPL_GZIP_LEVEL))) {
		free(u);
		return seg_fail(e, EDGELOG_ENOMEM, "out of memory (gzip compressor)");
	}
	if ((rc = upl_http_new(&u->http, &u->c, e))) {
		libdeflate_free_compressor(u->gzc);
		free(u);
		return rc;
	}
	*out = u;
	return 0;
}

void upl_destroy(upl *u)
{
	if (!u)
		return;
	if (u->reader_open)
		seg_reader_close(&u->reader);
	if (u->dead_open)
		seg_writer_close(&u->dead, NULL);
	upl_http_free(u->http);
	libdeflate_free_compressor(u->gzc);
	free(u->recs);
	seg_buf_free(&u->payload);
	seg_buf_free(&u->body);
	seg_buf_free(&u->gz);
	free(u);
}

static void drop_batch(upl *u)
{
	u->n = 0;
	u->done = 0;
	u->n_ranges = 0;
	u->payload.len = 0;
}

/* Read records (acked, limit] into a new batch. Returns the count, or an
 * EDGELOG_E* error. */
static int fill_batch(upl *u, uint64_t acked, uint64_t limit, seg_err *e)
{
	seg_frame f;
	int rc;

	drop_batch(u);
	if (!u->reader_open || u->next_read != acked + 1) {
		/* First batch, or someone else moved the cursor: start over. */
		if (u->reader_open)
			seg_reader_close(&u->reader);
		u->reader_open = 0;
		if ((rc = seg_reader_init(&u->reader, u->vfs, u->segdir, acked + 1, e)))
			return rc;
		u->reader_open = 1;
		u->next_read = acked + 1;
	}
	while (u->n < u->c.max_batch_records && u->payload.len < u->c.max_batch_bytes) {
		rc = seg_reader_next(&u->reader, &f, e);
		if (rc == EDGELOG_EOF)
			break;
		if (rc)
			return rc;
		if (f.seq > limit) {
			/* Not durable yet: read it again next time. */
			seg_reader_close(&u->reader);
			u->reader_open = 0;
			break;
		}
		if (u->n == u->cap) {
			size_t cap = u->cap ? u->cap * 2 : 256;
			rec_ref *nr = realloc(u->recs, cap * sizeof(*nr));
			if (!nr)
				return seg_fail(e, EDGELOG_ENOMEM, "out of memory");
			u->recs = nr;
			u->cap = cap;
		}
		u->recs[u->n].seq = f.seq;
		u->recs[u->n].ts_ms = f.ts_ms;
		u->recs[u->n].off = u->payload.len;
		u->recs[u->n].len = f.len;
		seg_buf_put(&u->payload, f.data, f.len);
		if (u->payload.oom)
			return seg_fail(e, EDGELOG_ENOMEM, "out of memory");
		u->n++;
		u->next_read = f.seq + 1;
	}
	if (u->n) {
		u->range_lo[0] = 0;
		u->range_hi[0] = u->n;
		u->n_ranges = 1;
	}
	return (int)u->n;
}

/* Append one refused record to failed/ and make it durable. */
static int dead_letter(upl *u, const rec_ref *r, long status, const char *why, seg_err *e)
{
	seg_buf m = {0};
	uint64_t seq;
	uint8_t h[9];
	int rc, i;

	if (!u->dead_open) {
		seg_open_report rep;
		rc = seg_writer_open(&u->dead, u->vfs, u->faileddir, DEAD_SEGMENT_BYTES,
				     24ll * 3600 * 1000, 0, &rep, e);
		if (rc)
			return rc;
		u->dead_open = 1;
	}
	/* {"seq": N, "ts": ms, "status": S, "reason": "...", "data": <record>} */
	h[0] = 0x85;
	seg_buf_put(&m, h, 1);
#define KEY(k)                                            \
	do {                                              \
		h[0] = (uint8_t)(0xa0 | (sizeof(k) - 1)); \
		seg_buf_put(&m, h, 1);                    \
		seg_buf_put(&m, k, sizeof(k) - 1);        \
	} while (0)
#define U64(tag, v)                                                          \
	do {                                                                 \
		h[0] = (tag);                                                \
		for (i = 0; i < 8; i++)                                      \
			h[1 + i] = (uint8_t)((uint64_t)(v) >> (56 - 8 * i)); \
		seg_buf_put(&m, h, 9);                                       \
	} while (0)
	KEY("seq");
	U64(0xcf, r->seq);
	KEY("ts");
	U64(0xd3, r->ts_ms);
	KEY("status");
	U64(0xd3, status);
	KEY("reason");
	{
		size_t n = strlen(why);
		if (n > 255)
			n = 255;
		h[0] = 0xd9;
		h[1] = (uint8_t)n;
		seg_buf_put(&m, h, 2);
		seg_buf_put(&m, why, n);
	}
	KEY("data");
	seg_buf_put(&m, u->payload.p + r->off, r->len);
#undef KEY
#undef U64
	if (m.oom) {
		seg_buf_free(&m);
		return seg_fail(e, EDGELOG_ENOMEM, "out of memory");
	}
	rc = seg_writer_append(&u->dead, m.p, (uint32_t)m.len, u->vfs->now_ms(u->vfs), &seq, e);
	seg_buf_free(&m);
	if (!rc) {
		seg_sync_plan p;
		if (seg_sync_begin(&u->dead, &p)) {
			seg_sync_run(u->vfs, u->dead.dir, &p);
			rc = seg_sync_end(&u->dead, &p, e);
		}
	}
	return rc;
}

/* Send recs[lo, hi) once. */
static void send_range(upl *u, size_t lo, size_t hi, const volatile int *abort_flag,
		       upl_response *resp)
{
	char key[200];
	size_t i;
	const void *body;
	size_t len;

	upl_body_begin(&u->body, u->c.format);
	for (i = lo; i < hi; i++)
		upl_body_record(&u->body, u->c.format, i == lo, u->c.device_id, u->recs[i].seq,
				u->recs[i].ts_ms, u->payload.p + u->recs[i].off, u->recs[i].len);
	upl_body_end(&u->body, u->c.format);
	body = u->body.p;
	len = u->body.len;
	if (u->body.oom) {
		memset(resp, 0, sizeof(*resp));
		resp->transport_error = 1;
		resp->retry_after_ms = -1;
		snprintf(resp->error, sizeof(resp->error), "out of memory encoding a batch");
		return;
	}
	if (u->c.gzip) {
		if (upl_gzip_with(u->gzc, body, len, &u->gz)) {
			memset(resp, 0, sizeof(*resp));
			resp->transport_error = 1;
			resp->retry_after_ms = -1;
			snprintf(resp->error, sizeof(resp->error), "gzip of a batch failed");
			return;
		}
		body = u->gz.p;
		len = u->gz.len;
	}
	/* The same records always get the same key, however often they are
	 * sent: the cloud can drop repeats. */
	snprintf(key, sizeof(key), "%s:%llu-%llu", u->c.device_id,
		 (unsigned long long)u->recs[lo].seq, (unsigned long long)u->recs[hi - 1].seq);
	upl_http_post(u->http, body, len, upl_content_type(u->c.format), u->c.gzip, key, abort_flag,
		      resp);
}

int upl_step(upl *u, uint64_t acked, uint64_t limit, int flush, const volatile int *abort_flag,
	     upl_result *res)
{
	int64_t now = u->vfs->mono_ms(u->vfs);
	seg_err e;
	int rc;

	memset(res, 0, sizeof(*res));
	if (u->retry_at_ms && now < u->retry_at_ms) {
		res->retry_at_ms = u->retry_at_ms;
		res->wait_ms = u->retry_at_ms - now;
		return 0;
	}
	if (u->n && u->done == u->n)
		drop_batch(u);
	if (u->n && u->recs[u->done].seq <= acked) {
		/* Acked behind our back (edgelog_ack): start from the cursor. */
		drop_batch(u);
	}
	if (!u->n) {
		uint64_t waiting = limit > acked ? limit - acked : 0;
		if (!waiting) {
			u->first_wait_ms = 0;
			return 0;
		}
		if (!u->first_wait_ms)
			u->first_wait_ms = now;
		if (!flush && waiting < u->c.batch_size &&
		    now - u->first_wait_ms < (int64_t)u->c.batch_timeout_ms) {
			res->wait_ms = u->first_wait_ms + u->c.batch_timeout_ms - now;
			return 0;
		}
		{
			uint64_t c0 = u->reader_open ? u->reader.corrupt : 0;
			rc = fill_batch(u, acked, limit, &e);
			res->corrupt = u->reader_open ? u->reader.corrupt -
								(c0 <= u->reader.corrupt ? c0 : 0) :
							0;
		}
		if (rc < 0) {
			seg_msg(res->error, sizeof(res->error), "%s", e.msg);
			return rc;
		}
		if (rc == 0) {
			/* Every seq up to limit is durable, yet none could be read:
			 * damaged frames (counted by the reader) or seqs no record
			 * holds. Nothing to send; move past them. */
			res->handled_seq = limit;
			u->first_wait_ms = 0;
			return 0;
		}
	}

	while (u->n_ranges > 0 && res->requests < MAX_REQUESTS_PER_STEP) {
		size_t lo = u->range_lo[0], hi = u->range_hi[0];
		upl_response r;

		send_range(u, lo, hi, abort_flag, &r);
		res->requests++;
		res->http_status = r.status;
		if (!r.transport_error && r.status >= 200 && r.status <= 299) {
			res->success = 1;
			res->failure = 0;
			res->delivered += hi - lo;
			u->done = hi;
			res->handled_seq = u->recs[hi - 1].seq;
			u->attempt = 0;
			u->retry_at_ms = 0;
			memmove(u->range_lo, u->range_lo + 1,
				(size_t)(u->n_ranges - 1) * sizeof(size_t));
			memmove(u->range_hi, u->range_hi + 1,
				(size_t)(u->n_ranges - 1) * sizeof(size_t));
			u->n_ranges--;
			continue;
		}
		seg_msg(res->error, sizeof(res->error), "%s", r.error);
		if (r.transport_error || upl_status_retryable(r.status)) {
			int64_t delay = (int64_t)upl_backoff_ms(
				u->c.retry_base_ms, u->c.retry_max_ms, u->attempt, rnd(u));
			if (r.retry_after_ms >= 0) {
				int64_t ra = r.retry_after_ms;
				if (ra > (int64_t)u->c.retry_after_cap_ms)
					ra = u->c.retry_after_cap_ms;
				if (ra > delay)
					delay = ra;
			}
			if (u->attempt < 63)
				u->attempt++;
			u->retry_at_ms = u->vfs->mono_ms(u->vfs) + delay;
			res->retry_at_ms = u->retry_at_ms;
			res->wait_ms = delay;
			res->failure = 1;
			res->success = 0;
			break;
		}
		/* Permanent: isolate. */
		if (hi - lo == 1) {
			char why[256];
			seg_msg(why, sizeof(why), "HTTP %ld: %s", r.status, r.body);
			rc = dead_letter(u, &u->recs[lo], r.status, why, &e);
			if (rc) {
				/* Could not store it: keep the record in the log and
				 * try again later rather than lose it. */
				seg_msg(res->error, sizeof(res->error),
					"dead letter for seq %llu: %s",
					(unsigned long long)u->recs[lo].seq, e.msg);
				u->retry_at_ms = u->vfs->mono_ms(u->vfs) + u->c.retry_max_ms;
				res->retry_at_ms = u->retry_at_ms;
				res->failure = 1;
				return rc;
			}
			res->dead++;
			u->done = hi;
			res->handled_seq = u->recs[lo].seq;
			memmove(u->range_lo, u->range_lo + 1,
				(size_t)(u->n_ranges - 1) * sizeof(size_t));
			memmove(u->range_hi, u->range_hi + 1,
				(size_t)(u->n_ranges - 1) * sizeof(size_t));
			u->n_ranges--;
		} else {
			size_t mid = lo + (hi - lo) / 2;
			if (u->n_ranges + 1 > MAX_RANGES)
				break; /* cannot happen: depth <= log2(n) */
			memmove(u->range_lo + 2, u->range_lo + 1,
				(size_t)(u->n_ranges - 1) * sizeof(size_t));
			memmove(u->range_hi + 2, u->range_hi + 1,
				(size_t)(u->n_ranges - 1) * sizeof(size_t));
			u->range_lo[0] = lo;
			u->range_hi[0] = mid;
			u->range_lo[1] = mid;
			u->range_hi[1] = hi;
			u->n_ranges++;
		}
	}
	if (u->n_ranges == 0)
		u->first_wait_ms = 0;
	return 0;
}
