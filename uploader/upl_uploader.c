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

#include "seg.h"
#include "upl_internal.h"

#define MAX_RANGES 64 /* split depth for a 2^32-record batch */
#define MAX_REQUESTS_PER_STEP 64
#define DEAD_SEGMENT_BYTES (1u << 20)
#define NO_MARK UINT64_MAX

typedef struct rec_ref {
	uint64_t seq;
	int64_t ts_ms;
	size_t off; /* into payload */
	uint32_t len;
	size_t end; /* body bytes up to and with this record, when last encoded */
} rec_ref;

/* A run of consecutive records and, once encoded, its request body. */
typedef struct batch {
	rec_ref *recs;
	size_t n, cap;
	seg_buf payload;
	seg_buf body, gz;
	int encoded; /* body (and gz) hold recs[0 .. n) as one request */
} batch;

struct upl {
	upl_conf c;
	const seg_vfs *vfs;
	char segdir[4200];
	char faileddir[4200];
	upl_http *http;

	seg_reader reader;
	int reader_open;
	uint64_t next_read; /* seq the reader will return next (at least) */

	/* The batch being sent, and the one read and encoded while the
	 * current request is on the wire (so encoding overlaps the server's
	 * work). */
	batch b[2];
	batch *cur, *next;
	size_t range_lo[MAX_RANGES], range_hi[MAX_RANGES];
	int n_ranges;
	size_t done; /* cur->recs[0 .. done) are handled */

	unsigned attempt; /* consecutive transient failures */

	/* Body size caps (upload_max_kb): before compression, and on the wire,
	 * which a 413 lowers to the size last accepted. */
	size_t cap_plain, cap_wire;
	/* How many payload bytes a batch reads: cap_plain scaled by what the
	 * last batch's encoding made of its payload, so that a batch seldom
	 * reads records its body then has no room for. */
	size_t read_cap;
	size_t last_len; /* wire bytes of the request last sent */
	int learn_413;   /* a 413 came: the next 2xx sets cap_wire */

	/* Poison detection (see upl_step): 5xx answers in a row to the head
	 * range; 2xx answers so far; oks when the head, a single record,
	 * first got a 5xx (NO_MARK: not yet); a probe (the range after the
	 * head) is due; records after the head a probe delivered. */
	unsigned head_5xx;
	uint64_t oks, single_mark;
	int probe;
	size_t ahead_hi;       /* cur->recs[head + 1 .. ahead_hi) delivered (0: none) */
	uint64_t ahead_n;      /* how many, not yet reported */
	int64_t retry_at_ms;   /* monotonic */
	int64_t first_wait_ms; /* when records were first seen waiting (0: none) */
	uint64_t rng;

	seg_buf data_str; /* scratch: one record's data as JSON text */

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

int upl_status_retryable(long s)
{
	if (s >= 200 && s <= 299)
		return 0;
	/* A 4xx is the server refusing these records for good, except:
	 * 408, 425, 429 ("not now"), and 401, 403, 404, 405, 407, which are
	 * about the request (credentials, the URL), not the records: an
	 * expired token must not empty the backlog into failed/. Anything
	 * else that is not 2xx (5xx; a redirect, which is not followed; an
	 * odd code) is a problem of the endpoint: keep the records, retry. */
	switch (s) {
	case 401:
	case 403:
	case 404:
	case 405:
	case 407:
	case 408:
	case 425:
	case 429:
		return 1;
	default:
		return !(s >= 400 && s <= 499);
	}
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
	u->cur = &u->b[0];
	u->next = &u->b[1];
	snprintf(u->segdir, sizeof(u->segdir), "%s", segdir);
	snprintf(u->faileddir, sizeof(u->faileddir), "%s", faileddir);
	u->single_mark = NO_MARK;
	u->cap_plain = u->cap_wire = u->read_cap = c->max_batch_bytes;
	u->rng = (uint64_t)v->mono_ms(v) * 0x9e3779b97f4a7c15ull + 1;
	v->random(v, &u->rng, sizeof(u->rng));
	u->rng |= 1;
	if (c->gzip && !(u->gzc = libdeflate_alloc_compressor(UPL_GZIP_LEVEL))) {
		free(u);
		return seg_fail(e, EDGELOG_ENOMEM, "out of memory (gzip compressor)");
	}
	if ((rc = upl_http_new(&u->http, &u->c, u->vfs, e))) {
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
	seg_buf_free(&u->data_str);
	for (int i = 0; i < 2; i++) {
		free(u->b[i].recs);
		seg_buf_free(&u->b[i].payload);
		seg_buf_free(&u->b[i].body);
		seg_buf_free(&u->b[i].gz);
	}
	free(u);
}

static void batch_clear(batch *b)
{
	b->n = 0;
	b->payload.len = 0;
	b->encoded = 0;
}

static void poison_reset(upl *u)
{
	u->head_5xx = 0;
	u->single_mark = NO_MARK;
	u->probe = 0;
}

static void drop_batch(upl *u)
{
	batch_clear(u->cur);
	u->done = 0;
	u->n_ranges = 0;
	u->ahead_hi = 0;
	u->ahead_n = 0;
	poison_reset(u);
}

/* The prefetched batch is not going to be sent as read (a failure, a split,
 * an ack from elsewhere): forget it and make the reader start again from
 * the cursor next time. */
static void drop_next(upl *u)
{
	if (!u->next->n)
		return;
	batch_clear(u->next);
	if (u->reader_open)
		seg_reader_close(&u->reader);
	u->reader_open = 0;
}

/* Read records from `from` up to limit into b. Returns the count, or an
 * EDGELOG_E* error. */
static int fill(upl *u, batch *b, uint64_t from, uint64_t limit, seg_err *e)
{
	seg_frame f;
	int rc;

	batch_clear(b);
	if (!u->reader_open || u->next_read != from) {
		/* First batch, or the cursor moved elsewhere: start over. */
		if (u->reader_open)
			seg_reader_close(&u->reader);
		u->reader_open = 0;
		if ((rc = seg_reader_init(&u->reader, u->vfs, u->segdir, from, e)))
			return rc;
		u->reader_open = 1;
		u->next_read = from;
	}
	while (b->n < u->c.max_batch_records && b->payload.len < u->read_cap) {
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
		if (b->n == b->cap) {
			size_t cap = b->cap ? b->cap * 2 : 256;
			rec_ref *nr = realloc(b->recs, cap * sizeof(*nr));
			if (!nr)
				return seg_fail(e, EDGELOG_ENOMEM, "out of memory");
			b->recs = nr;
			b->cap = cap;
		}
		b->recs[b->n].seq = f.seq;
		b->recs[b->n].ts_ms = f.ts_ms;
		b->recs[b->n].off = b->payload.len;
		b->recs[b->n].len = f.len;
		seg_buf_put(&b->payload, f.data, f.len);
		if (b->payload.oom)
			return seg_fail(e, EDGELOG_ENOMEM, "out of memory");
		b->n++;
		u->next_read = f.seq + 1;
		if ((b->n & 63) == 0)
			upl_http_pump(u->http);
	}
	return (int)b->n;
}

static const seg_buf *encode(upl *u, batch *b, size_t lo, size_t hi, const volatile int *abort_flag,
			     upl_response *resp, int *why, size_t *bad, size_t *cut);

/* Keep b->recs[0, k) and forget the rest, which the next batch reads
 * again (the reader went past them: it starts again). */
static void keep_first(upl *u, batch *b, size_t k)
{
	b->n = k;
	b->payload.len = b->recs[k].off;
	if (u->reader_open)
		seg_reader_close(&u->reader);
	u->reader_open = 0;
}

/* Make b's body fit the caps, before compression (cap_plain) and on the
 * wire (cap_wire): the envelope counts, and so does the record that
 * crosses the line. Encodes b once, stopping before the first record that
 * would take the body over cap_plain (kept for sending); the records left
 * out are read again for the next batch. Only a compressed body over
 * cap_wire (after a 413) is cut again and encoded anew. One record always
 * stays: a record that cannot fit goes alone. A record that cannot be
 * encoded is left for the send path. */
static void fit(upl *u, batch *b)
{
	for (;;) {
		upl_response er;
		int ew;
		size_t eb, k = b->n;
		const seg_buf *wire = encode(u, b, 0, b->n, NULL, &er, &ew, &eb, &k);

		if (!wire)
			return;
		if (k < b->n) {
			keep_first(u, b, k);
			b->encoded = 1; /* body and gz hold recs[0, k) */
		}
		if (b->payload.len && b->body.len) {
			/* The next batch reads about as much payload as this
			 * body's share of the cap, a little less. */
			double r = (double)b->payload.len / (double)b->body.len * 0.98;
			size_t want = (size_t)((double)u->cap_plain * (r < 1 ? r : 1));
			u->read_cap = want > u->cap_plain / 16 ? want : u->cap_plain / 16 + 1;
		}
		if (b->n <= 1 || wire->len <= u->cap_wire)
			return;
		/* Compressed size is not additive: cut in proportion, with a
		 * margin, and measure again. */
		k = (size_t)((double)b->n * (double)u->cap_wire / (double)wire->len * 0.9);
		if (k < 1)
			k = 1;
		if (k >= b->n)
			k = b->n - 1;
		keep_first(u, b, k);
		b->encoded = 0;
	}
}

static int fill_batch(upl *u, uint64_t acked, uint64_t limit, seg_err *e)
{
	int rc;

	drop_batch(u);
	drop_next(u);
	rc = fill(u, u->cur, acked + 1, limit, e);
	if (rc > 0) {
		fit(u, u->cur);
		rc = (int)u->cur->n;
		u->range_lo[0] = 0;
		u->range_hi[0] = u->cur->n;
		u->n_ranges = 1;
	}
	return rc;
}

/* Append one refused record to failed/ and make it durable. as_bin: the
 * payload is not one msgpack object; "data" then holds its bytes as a
 * msgpack bin, so the dead letter stays readable (and a requeue delivers
 * the bytes, base64 in JSON) and nothing is lost. */
static int dead_letter(upl *u, const rec_ref *r, long status, const char *why, int as_bin,
		       seg_err *e)
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
	if (as_bin) {
		h[0] = 0xc6;
		for (i = 0; i < 4; i++)
			h[1 + i] = (uint8_t)(r->len >> (24 - 8 * i));
		seg_buf_put(&m, h, 5);
	}
	seg_buf_put(&m, u->cur->payload.p + r->off, r->len);
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

/* The dead letter of rr could not be written (e): the record stays in the
 * log, unacknowledged, rather than be lost; the step reports the failure
 * and the next try waits retry_max_ms. */
static void dead_letter_failed(upl *u, const rec_ref *rr, const seg_err *e, upl_result *res)
{
	seg_msg(res->error, sizeof(res->error), "dead letter for seq %llu: %s",
		(unsigned long long)rr->seq, e->msg);
	u->retry_at_ms = u->vfs->mono_ms(u->vfs) + u->c.retry_max_ms;
	res->retry_at_ms = u->retry_at_ms;
	res->failure = 1;
}

/* Why encode() gave no body. */
enum {
	ENC_FAILED = 1, /* resp filled: retry later like a transport error */
	ENC_BAD,        /* record *bad is not one msgpack object: dead-letter it */
	ENC_BAD_OOM,    /* record *bad alone does not fit in memory: likewise */
	ENC_SPLIT,      /* out of memory with several records: halve the range */
	ENC_ABORTED
}; /* abort_flag was raised */

/* Encode b->recs[lo, hi) into b->body (and b->gz). With cut, stop before
 * the first record after lo that would take the body over cap_plain; *cut
 * gets the end of what was encoded. Returns the body to send, or NULL with
 * *why (and resp, or *bad) filled. Encoding is linear in
 * the payload (SEG_JSON_MAX_EXPANSION), and the abort flag is looked at
 * every 64 records, so closing never waits for a long batch. */
static const seg_buf *encode(upl *u, batch *b, size_t lo, size_t hi, const volatile int *abort_flag,
			     upl_response *resp, int *why, size_t *bad, size_t *cut)
{
	size_t tail = u->c.format == EDGELOG_FORMAT_JSON ? 1 : 0; /* "]" */
	size_t i;

	*why = 0;
	if (b->encoded && lo == 0 && hi == b->n)
		return u->c.gzip ? &b->gz : &b->body;
	b->encoded = 0;
	b->body.oom = 0;
	upl_body_begin(&b->body, u->c.format);
	for (i = lo; i < hi; i++) {
		if (upl_body_record(&b->body, u->c.format, i == lo, u->c.device_id, b->recs[i].seq,
				    b->recs[i].ts_ms, b->payload.p + b->recs[i].off, b->recs[i].len,
				    u->c.data_string ? &u->data_str : NULL)) {
			if (!b->body.oom) {
				*bad = i;
				*why = ENC_BAD;
				return NULL;
			}
			break;
		}
		if (cut && i > lo && b->body.len + tail > u->cap_plain) {
			/* Record i would take the body over the cap: the body
			 * ends with record i - 1. */
			b->body.len = b->recs[i - 1].end;
			hi = i;
			break;
		}
		b->recs[i].end = b->body.len;
		if ((i & 63) == 63) {
			if (abort_flag && __atomic_load_n(abort_flag, __ATOMIC_RELAXED)) {
				*why = ENC_ABORTED;
				return NULL;
			}
			upl_http_pump(u->http);
		}
	}
	upl_body_end(&b->body, u->c.format);
	if (b->body.oom) {
		/* Memory is short: send fewer records at a time; one record that
		 * cannot be encoded at all is set aside (dead-lettered, can be
		 * requeued) rather than stop every record behind it. */
		b->body.oom = 0;
		b->body.len = 0;
		if (hi - lo > 1) {
			*why = ENC_SPLIT;
		} else {
			*bad = lo;
			*why = ENC_BAD_OOM;
		}
		return NULL;
	}
	if (u->c.gzip && upl_gzip_with(u->gzc, b->body.p, b->body.len, &b->gz)) {
		memset(resp, 0, sizeof(*resp));
		resp->transport_error = 1;
		resp->retry_after_ms = -1;
		seg_msg(resp->error, sizeof(resp->error), "gzip of a batch failed");
		*why = ENC_FAILED;
		return NULL;
	}
	b->encoded = lo == 0 && hi == b->n;
	if (cut)
		*cut = hi;
	return u->c.gzip ? &b->gz : &b->body;
}

/* Start sending cur->recs[lo, hi). Returns 0, or an ENC_* reason (resp
 * filled for ENC_FAILED, *bad for ENC_BAD). */
static int start_range(upl *u, size_t lo, size_t hi, const volatile int *abort_flag,
		       upl_response *resp, size_t *bad)
{
	int why;
	const seg_buf *body = encode(u, u->cur, lo, hi, abort_flag, resp, &why, bad, NULL);
	char key[200];

	if (!body)
		return why;
	/* A range cut from a batch read before a 413 lowered the cap: in
	 * halves until it fits (one record goes as it is). */
	if (hi - lo > 1 && (body->len > u->cap_wire || u->cur->body.len > u->cap_plain))
		return ENC_SPLIT;
	/* The same records always get the same key, however often they are
	 * sent: the cloud can drop repeats. */
	snprintf(key, sizeof(key), "%s:%llu-%llu", u->c.device_id,
		 (unsigned long long)u->cur->recs[lo].seq,
		 (unsigned long long)u->cur->recs[hi - 1].seq);
	u->last_len = body->len;
	upl_http_start(u->http, body->p, body->len, upl_content_type(u->c.format), u->c.gzip, key,
		       abort_flag, resp);
	return 0;
}

static void pop_range(upl *u)
{
	memmove(u->range_lo, u->range_lo + 1, (size_t)(u->n_ranges - 1) * sizeof(size_t));
	memmove(u->range_hi, u->range_hi + 1, (size_t)(u->n_ranges - 1) * sizeof(size_t));
	u->n_ranges--;
}

/* Replace the head range [lo, hi) by [lo, mid) and [mid, hi). 0, or -1 if
 * the queue is full (cannot happen: depth <= log2(n) + 1). */
static int split_range(upl *u, size_t mid)
{
	if (u->n_ranges + 1 > MAX_RANGES)
		return -1;
	memmove(u->range_lo + 2, u->range_lo + 1, (size_t)(u->n_ranges - 1) * sizeof(size_t));
	memmove(u->range_hi + 2, u->range_hi + 1, (size_t)(u->n_ranges - 1) * sizeof(size_t));
	u->range_hi[1] = u->range_hi[0];
	u->range_hi[0] = mid;
	u->range_lo[1] = mid;
	u->n_ranges++;
	return 0;
}

enum {
	POISON_BACKOFF,
	POISON_NEXT,
	POISON_STOP
};

static void head_done(upl *u, upl_result *res);

/* A 5xx answer to the head range cur->recs[lo, hi) (not a probe). Returns
 * POISON_BACKOFF (back off as for any transient failure, perhaps after a
 * split), POISON_NEXT (go on at once: the record was dead-lettered, or a
 * probe is due) or POISON_STOP (*rc: a dead letter could not be stored). */
static int poison_5xx(upl *u, size_t lo, size_t hi, uint64_t limit, const upl_response *r,
		      upl_result *res, int *rc)
{
	const rec_ref *rr = &u->cur->recs[lo];
	char why[256];
	seg_err e;

	u->head_5xx++;
	if (hi - lo > 1) {
		if (u->head_5xx >= u->c.poison_tries) {
			/* Perhaps one record the receiver cannot take: halves,
			 * each given poison_tries chances of its own. */
			poison_reset(u);
			split_range(u, lo + (hi - lo) / 2);
		}
		return POISON_BACKOFF;
	}
	if (u->single_mark == NO_MARK)
		u->single_mark = u->oks;
	if (u->head_5xx < u->c.poison_tries)
		return POISON_BACKOFF;
	if (u->oks > u->single_mark) {
		/* It kept failing while the endpoint accepted other records:
		 * poison. Set aside with the answer, counted; go on. */
		seg_msg(why, sizeof(why),
			"HTTP %ld: %s (poison: %u answers 5xx in a row while the endpoint "
			"accepted other records)",
			r->status, r->body, u->head_5xx);
		if ((*rc = dead_letter(u, rr, r->status, why, 0, &e))) {
			dead_letter_failed(u, rr, &e, res);
			return POISON_STOP;
		}
		seg_msg(res->error, sizeof(res->error), "seq %llu dead-lettered: %s",
			(unsigned long long)rr->seq, why);
		res->dead++;
		res->poisoned++;
		u->done = hi;
		res->handled_seq = rr->seq;
		u->attempt = 0;
		pop_range(u);
		head_done(u, res);
		return POISON_NEXT;
	}
	if (u->n_ranges > 1) {
		/* Is the endpoint up? Send the records after this one. */
		u->probe = 1;
		return POISON_NEXT;
	}
	if (limit > rr->seq && u->done == lo && lo + 1 == u->cur->n) {
		/* Nothing after it in this batch, but records wait: read the
		 * batch again from this record on, with them. */
		drop_next(u);
		drop_batch(u);
	}
	return POISON_BACKOFF;
}

/* A 2xx: the try succeeded; after a 413, the body just accepted is the
 * size to stay within from now on. */
static void accepted(upl *u, upl_result *res)
{
	res->success = 1;
	res->failure = 0;
	u->oks++;
	if (u->learn_413) {
		u->cap_wire = u->last_len;
		u->learn_413 = 0;
	}
}

/* A failed try: wait the next exponential backoff with full jitter, or the
 * server's Retry-After (>= 0, capped) when that is longer. */
static void back_off(upl *u, upl_result *res, int64_t retry_after_ms)
{
	int64_t delay =
		(int64_t)upl_backoff_ms(u->c.retry_base_ms, u->c.retry_max_ms, u->attempt, rnd(u));
	if (retry_after_ms >= 0) {
		int64_t ra = retry_after_ms;
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
}

/* The head range was just handled (delivered or dead-lettered) and popped:
 * records a probe delivered ahead of it now count as handled too. */
static void head_done(upl *u, upl_result *res)
{
	poison_reset(u);
	if (u->ahead_hi > u->done) {
		u->done = u->ahead_hi;
		res->handled_seq = u->cur->recs[u->ahead_hi - 1].seq;
		res->delivered += u->ahead_n;
	}
	u->ahead_hi = 0;
	u->ahead_n = 0;
}

/*
 * Poison detection. A receiver may answer 5xx to a body it cannot take
 * (ClickHouse: 500 for a row it cannot parse) as it would while down; only
 * the second case must keep the records. So: after poison_tries 5xx
 * answers in a row to the same range, the range is split as for a 4xx
 * (still with the backoff: the endpoint may just be down). A single record
 * that got poison_tries 5xx answers in a row is dead-lettered only once
 * the same endpoint accepted other records after its first failure: the
 * range after it is sent as a probe, and the record is tried once more
 * after the probe's 2xx. An endpoint that is down answers no 2xx, so a
 * plain outage never dead-letters anything, however long. When nothing
 * follows the record in the batch, the batch is read again to take in
 * the records that arrived meanwhile.
 *
 * A probe's records reach the receiver before the poison record (which
 * never reaches it); if the record goes through on its last try after all,
 * it arrives after them. Receivers dedupe and order by (device_id, seq).
 */

int upl_step(upl *u, uint64_t acked, uint64_t limit, int flush, const volatile int *abort_flag,
	     upl_result *res)
{
	int64_t now = u->vfs->mono_ms(u->vfs);
	batch *b;
	seg_err e;
	int rc;

	memset(res, 0, sizeof(*res));
	if (u->retry_at_ms && now < u->retry_at_ms) {
		res->retry_at_ms = u->retry_at_ms;
		res->wait_ms = u->retry_at_ms - now;
		return 0;
	}
	b = u->cur;
	if (b->n && u->done == b->n)
		drop_batch(u);
	if (b->n && b->recs[u->done].seq <= acked) {
		/* Acked behind our back (edgelog_ack): start from the cursor. */
		drop_batch(u);
		drop_next(u);
	}
	if (!b->n) {
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
		int probe = u->probe && u->n_ranges > 1;
		size_t lo = u->range_lo[probe], hi = u->range_hi[probe];
		int whole = lo == 0 && hi == u->cur->n && u->n_ranges == 1;
		upl_response r;
		size_t bad = lo;
		int enc;

		if (abort_flag && __atomic_load_n(abort_flag, __ATOMIC_RELAXED))
			break;
		u->probe = 0;
		enc = start_range(u, lo, hi, abort_flag, &r, &bad);
		if (enc == ENC_ABORTED)
			break;
		if (probe && enc) {
			/* The probe cannot be encoded as it is: no proof this
			 * time; the head waits for the backoff and tries again. */
			u->retry_at_ms = u->vfs->mono_ms(u->vfs) + u->c.retry_base_ms;
			res->retry_at_ms = u->retry_at_ms;
			res->wait_ms = u->c.retry_base_ms;
			break;
		}
		if (enc == ENC_SPLIT) {
			drop_next(u);
			if (split_range(u, lo + (hi - lo) / 2))
				break;
			continue;
		}
		if (enc == ENC_BAD || enc == ENC_BAD_OOM) {
			/* No retry can put this record on the wire: send the ones
			 * before it, then set it aside in failed/ with the reason,
			 * counted, and go on with the ones after it. */
			drop_next(u);
			if (bad > lo) {
				if (split_range(u, bad))
					break;
				continue;
			}
			{
				char why[256];
				const rec_ref *rr = &u->cur->recs[lo];
				if (enc == ENC_BAD)
					seg_msg(why, sizeof(why),
						"not sent: the record (%u bytes) is not one "
						"well-formed msgpack object, so it cannot be "
						"encoded for the wire; data holds its bytes",
						rr->len);
				else
					seg_msg(why, sizeof(why),
						"not sent: out of memory encoding the record "
						"(%u bytes) on its own",
						rr->len);
				rc = dead_letter(u, rr, 0, why, enc == ENC_BAD, &e);
				if (rc) {
					dead_letter_failed(u, rr, &e, res);
					return rc;
				}
				seg_msg(res->error, sizeof(res->error), "seq %llu %s",
					(unsigned long long)rr->seq, why);
				res->dead++;
				res->handled_seq = rr->seq;
				u->done = lo + 1;
				if (hi - lo == 1) {
					pop_range(u);
					head_done(u, res);
				} else {
					u->range_lo[0] = lo + 1;
					poison_reset(u);
				}
			}
			continue;
		}
		if (enc == 0) {
			/* While the server works on this batch, read and encode
			 * the next one (a backlog drains at the pace of the slower
			 * of the two, not of their sum). */
			if (whole && !u->next->n && limit > u->cur->recs[u->cur->n - 1].seq &&
			    fill(u, u->next, u->cur->recs[u->cur->n - 1].seq + 1, limit, &e) > 0) {
				upl_response er;
				int ew;
				size_t eb;
				fit(u, u->next);
				if (!encode(u, u->next, 0, u->next->n, abort_flag, &er, &ew, &eb,
					    NULL))
					drop_next(u);
			}
			upl_http_finish(u->http);
		}
		res->requests++;
		res->http_status = r.status;
		if (probe && !r.transport_error && r.status >= 200 && r.status <= 299) {
			/* The endpoint takes other records: they are delivered
			 * (reported once the head is handled); the head is tried
			 * once more, now. */
			accepted(u, res);
			u->ahead_hi = hi;
			u->ahead_n += hi - lo;
			memmove(u->range_lo + 1, u->range_lo + 2,
				(size_t)(u->n_ranges - 2) * sizeof(size_t));
			memmove(u->range_hi + 1, u->range_hi + 2,
				(size_t)(u->n_ranges - 2) * sizeof(size_t));
			u->n_ranges--;
			continue;
		}
		if (probe) {
			/* The probe failed too: the endpoint is not well; nothing
			 * is dead-lettered. Back off as for any failure. */
			back_off(u, res, -1);
			drop_next(u);
			seg_msg(res->error, sizeof(res->error), "%s", r.error);
			break;
		}
		if (!r.transport_error && r.status >= 200 && r.status <= 299) {
			accepted(u, res);
			res->delivered += hi - lo;
			u->done = hi;
			res->handled_seq = u->cur->recs[hi - 1].seq;
			u->attempt = 0;
			u->retry_at_ms = 0;
			pop_range(u);
			head_done(u, res);
			if (!u->n_ranges && u->next->n) {
				/* The next batch is read and encoded: send it now
				 * (cut to the cap first, if a 413 lowered it since). */
				batch *t = u->cur;
				fit(u, u->next);
				u->cur = u->next;
				u->next = t;
				batch_clear(u->next);
				u->done = 0;
				u->range_lo[0] = 0;
				u->range_hi[0] = u->cur->n;
				u->n_ranges = 1;
			}
			continue;
		}
		/* Anything but a success: the prefetched batch waits its turn. */
		drop_next(u);
		seg_msg(res->error, sizeof(res->error), "%s", r.error);
		if (!r.transport_error && r.status >= 500 && r.status <= 599 && u->c.poison_tries) {
			int act = poison_5xx(u, lo, hi, limit, &r, res, &rc);
			if (act == POISON_STOP)
				return rc;
			if (act == POISON_NEXT)
				continue;
		}
		if (r.transport_error || upl_status_retryable(r.status)) {
			back_off(u, res, r.retry_after_ms);
			break;
		}
		/* Permanent: isolate. A 413 says how large a body this endpoint
		 * takes: the next one accepted sets the cap for the requests
		 * after it, instead of starting at full size again. */
		if (r.status == 413)
			u->learn_413 = 1;
		/* Permanent: isolate. */
		if (hi - lo == 1) {
			char why[256];
			seg_msg(why, sizeof(why), "HTTP %ld: %s", r.status, r.body);
			rc = dead_letter(u, &u->cur->recs[lo], r.status, why, 0, &e);
			if (rc) {
				dead_letter_failed(u, &u->cur->recs[lo], &e, res);
				return rc;
			}
			res->dead++;
			u->done = hi;
			res->handled_seq = u->cur->recs[lo].seq;
			pop_range(u);
			head_done(u, res);
		} else {
			poison_reset(u);
			if (split_range(u, lo + (hi - lo) / 2))
				break; /* cannot happen: depth <= log2(n) */
		}
	}
	if (u->n_ranges == 0)
		u->first_wait_ms = 0;
	/* The oldest record still waiting, for the engine's status. */
	if (u->cur->n && u->done < u->cur->n)
		res->next_ts_ms = u->cur->recs[u->done].ts_ms;
	return 0;
}
