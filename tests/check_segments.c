/*
 * check_segments.c - unit tests of the segments module, written against the
 * contracts in the segments headers (they are the specification).
 *
 * Groups: frame and header codec, msgpack validation, writer and reader
 * through the POSIX vfs, torn tails at every byte offset, random bit flips,
 * zero-filled space, the cursor file, segment names and small helpers.
 *
 * Every test works in its own directory under /tmp (removed at exit, even
 * when an assertion fails) and runs in its own process (CK_FORK).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pthread.h>
#include <unistd.h>

#include "seg_cursor.h"
#include "seg_dir.h"
#include "seg_err.h"
#include "seg_format.h"
#include "seg_json.h"
#include "seg_reader.h"
#include "seg_scan.h"
#include "seg_vfs.h"
#include "seg_writer.h"
#include "test_util.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#define MAX_AGE_MS (3600 * 1000) /* long enough that no test rolls by age */
#define KIB 1024u
#define MIB (1024u * 1024u)

static const seg_vfs *V;

/* ------------------------------------------------------------------------
 * Shared helpers
 */

/* One record as written and as read back. */
typedef struct rec {
	tu_buf b;
	uint64_t seq;
	int64_t ts;
	uint64_t off;  /* offset of its frame in its segment (from the reader) */
	uint64_t base; /* base seq of the segment it was read from */
} rec;

static uint64_t frame_end(const rec *r)
{
	return r->off + SEG_FRAME_HEADER + r->b.len;
}

static void recs_free(rec *a, int n)
{
	for (int i = 0; i < n; i++)
		tu_buf_free(&a[i].b);
	free(a);
}

/* Damage callback recorder. */
#define MAX_DMG 512
typedef struct dmg_log {
	int n;
	struct {
		uint64_t off, len;
		char seg[64];
		char reason[128];
	} r[MAX_DMG];
} dmg_log;

static void dmg_cb(void *ud, const char *segment, uint64_t offset, uint64_t len, const char *reason)
{
	dmg_log *d = ud;
	ck_assert_ptr_nonnull(d);
	ck_assert_ptr_nonnull(segment);
	ck_assert_ptr_nonnull(reason);
	ck_assert_int_lt(d->n, MAX_DMG);
	d->r[d->n].off = offset;
	d->r[d->n].len = len;
	snprintf(d->r[d->n].seg, sizeof d->r[0].seg, "%s", segment);
	snprintf(d->r[d->n].reason, sizeof d->r[0].reason, "%s", reason);
	d->n++;
}

static dmg_log *dmg_new(void)
{
	dmg_log *d = calloc(1, sizeof *d);
	ck_assert_ptr_nonnull(d);
	return d;
}

static void writer_open_ok(seg_writer *w, const seg_vfs *v, const char *dir, size_t seg_bytes,
			   int64_t max_age, uint64_t min_next, seg_open_report *rep)
{
	seg_err e;
	memset(&e, 0, sizeof e);
	memset(rep, 0xa5, sizeof *rep); /* must be filled by the call */
	int rc = seg_writer_open(w, v, dir, seg_bytes, max_age, min_next, rep, &e);
	ck_assert_msg(rc == 0, "seg_writer_open(%s) = %d (%s)", dir, rc, e.msg);
}

static uint64_t append_ok(seg_writer *w, const tu_buf *b, int64_t ts)
{
	seg_err e;
	memset(&e, 0, sizeof e);
	uint64_t seq = 0;
	int rc = seg_writer_append(w, b->data, (uint32_t)b->len, ts, &seq, &e);
	ck_assert_msg(rc == 0, "seg_writer_append = %d (%s)", rc, e.msg);
	return seq;
}

static void writer_close_ok(seg_writer *w)
{
	seg_err e;
	memset(&e, 0, sizeof e);
	int rc = seg_writer_close(w, &e);
	ck_assert_msg(rc == 0, "seg_writer_close = %d (%s)", rc, e.msg);
}

/* Write n fresh predictions into an empty dir; seqs must be 1..n. */
static rec *write_log(const char *dir, size_t seg_bytes, int n, uint64_t seed)
{
	rec *a = calloc((size_t)n + 1, sizeof *a);
	ck_assert_ptr_nonnull(a);
	seg_writer w;
	seg_open_report rep;
	writer_open_ok(&w, V, dir, seg_bytes, MAX_AGE_MS, 0, &rep);
	int64_t t0 = V->now_ms(V);
	for (int i = 0; i < n; i++) {
		a[i].b = tu_prediction((uint64_t)i, seed);
		a[i].ts = t0 + i;
		a[i].seq = append_ok(&w, &a[i].b, a[i].ts);
		ck_assert_uint_eq(a[i].seq, (uint64_t)i + 1);
	}
	writer_close_ok(&w);
	return a;
}

/* Read every record from path (dir or file) starting at from_seq. The
 * reader must end with EDGELOG_EOF, twice in a row. */
static int read_all(const char *path, uint64_t from_seq, dmg_log *d, rec **out, uint64_t *corrupt)
{
	seg_reader r;
	seg_err e;
	memset(&r, 0, sizeof r);
	memset(&e, 0, sizeof e);
	int rc = seg_reader_init(&r, V, path, from_seq, &e);
	ck_assert_msg(rc == 0, "seg_reader_init(%s) = %d (%s)", path, rc, e.msg);
	if (d) {
		d->n = 0;
		r.on_damage = dmg_cb;
		r.ud = d;
	}
	int n = 0, cap = 64;
	rec *a = calloc((size_t)cap, sizeof *a);
	ck_assert_ptr_nonnull(a);
	seg_frame f;
	while ((rc = seg_reader_next(&r, &f, &e)) == 0) {
		if (n == cap) {
			cap *= 2;
			a = realloc(a, (size_t)cap * sizeof *a);
			ck_assert_ptr_nonnull(a);
		}
		ck_assert_ptr_nonnull(f.data);
		a[n].b.len = f.len;
		a[n].b.data = malloc(f.len ? f.len : 1);
		ck_assert_ptr_nonnull(a[n].b.data);
		memcpy(a[n].b.data, f.data, f.len);
		a[n].seq = f.seq;
		a[n].ts = f.ts_ms;
		a[n].off = f.offset;
		a[n].base = r.cur_base;
		if (n > 0)
			ck_assert_msg(a[n].seq > a[n - 1].seq,
				      "reader seq %" PRIu64 " after %" PRIu64, a[n].seq,
				      a[n - 1].seq);
		ck_assert_uint_ge(a[n].seq, from_seq);
		n++;
		ck_assert_int_lt(n, 10000000);
	}
	ck_assert_msg(rc == EDGELOG_EOF, "seg_reader_next(%s) = %d (%s), expected EOF", path, rc,
		      e.msg);
	rc = seg_reader_next(&r, &f, &e);
	ck_assert_msg(rc == EDGELOG_EOF, "second seg_reader_next at the end = %d", rc);
	if (d)
		ck_assert_uint_eq(r.corrupt, (uint64_t)d->n);
	if (corrupt)
		*corrupt = r.corrupt;
	seg_reader_close(&r);
	*out = a;
	return n;
}

/* got[0..ngot) must equal exp[0..nexp) byte for byte, seq and ts. */
static void assert_same(const rec *got, int ngot, rec *const *exp, int nexp)
{
	ck_assert_int_eq(ngot, nexp);
	for (int i = 0; i < ngot; i++) {
		ck_assert_msg(got[i].seq == exp[i]->seq,
			      "record %d: seq %" PRIu64 ", expected %" PRIu64, i, got[i].seq,
			      exp[i]->seq);
		ck_assert_msg(got[i].ts == exp[i]->ts,
			      "record %d (seq %" PRIu64 "): ts %" PRId64 ", expected %" PRId64, i,
			      got[i].seq, got[i].ts, exp[i]->ts);
		ck_assert_msg(got[i].b.len == exp[i]->b.len, "record %d: len %zu, expected %zu", i,
			      got[i].b.len, exp[i]->b.len);
		ck_assert_msg(!memcmp(got[i].b.data, exp[i]->b.data, got[i].b.len),
			      "record %d (seq %" PRIu64 "): bytes differ", i, got[i].seq);
	}
}

/* exp as an array of pointers into a[lo..hi). */
static rec **ptrs(rec *a, int lo, int hi)
{
	rec **p = calloc((size_t)(hi - lo) + 1, sizeof *p);
	ck_assert_ptr_nonnull(p);
	for (int i = lo; i < hi; i++)
		p[i - lo] = &a[i];
	return p;
}

static const char *seg_file(const char *dir, uint64_t base)
{
	char name[SEG_NAME_LEN + 1];
	seg_name(name, base);
	return tu_path(dir, name);
}

/* Copy data offsets (off) and bases from a read-back into the written
 * records (same order, same seqs). */
static void learn_offsets(rec *a, int n, const char *dir)
{
	rec *g;
	int ng = read_all(dir, 0, NULL, &g, NULL);
	ck_assert_int_eq(ng, n);
	for (int i = 0; i < n; i++) {
		ck_assert_uint_eq(g[i].seq, a[i].seq);
		a[i].off = g[i].off;
		a[i].base = g[i].base;
	}
	recs_free(g, ng);
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* ------------------------------------------------------------------------
 * 1. Frame and header codec
 */

static seg_header mk_hdr(uint64_t base, int64_t ts, uint64_t salt)
{
	seg_header h;
	memset(&h, 0, sizeof h);
	h.version = SEG_FORMAT_VERSION;
	h.flags = 0;
	h.base_seq = base;
	h.base_ts_ms = ts;
	h.salt = salt;
	return h;
}

/* A frame (header + payload) in a fresh buffer with `extra` zero bytes
 * after it. */
static uint8_t *mk_frame(uint64_t salt, uint32_t delta, int32_t tsd, const void *p, uint32_t len,
			 size_t extra)
{
	uint8_t *buf = calloc(1, SEG_FRAME_HEADER + (size_t)len + extra);
	ck_assert_ptr_nonnull(buf);
	seg_frame_encode(buf, salt, delta, tsd, p, len);
	memcpy(buf + SEG_FRAME_HEADER, p, len);
	return buf;
}

static void check_frame_roundtrip(const seg_header *h, uint32_t delta, int32_t tsd, const void *p,
				  uint32_t len)
{
	uint8_t *buf = mk_frame(h->salt, delta, tsd, p, len, 0);
	seg_frame f;
	memset(&f, 0, sizeof f);
	int rc = seg_frame_check(buf, SEG_FRAME_HEADER + (size_t)len, h, &f);
	ck_assert_msg(rc == SEG_OK, "seg_frame_check(len %u) = %d", len, rc);
	ck_assert_uint_eq(f.seq, h->base_seq + delta);
	ck_assert_int_eq(f.ts_ms, h->base_ts_ms + tsd);
	ck_assert_uint_eq(f.len, len);
	ck_assert_uint_eq(f.seq_delta, delta);
	ck_assert_ptr_eq(f.data, buf + SEG_FRAME_HEADER);
	ck_assert(!memcmp(f.data, p, len));
	/* More bytes available than the frame needs changes nothing. */
	uint8_t *big = mk_frame(h->salt, delta, tsd, p, len, 100);
	memset(big + SEG_FRAME_HEADER + len, 0xee, 100);
	rc = seg_frame_check(big, SEG_FRAME_HEADER + (size_t)len + 100, h, &f);
	ck_assert_int_eq(rc, SEG_OK);
	ck_assert_uint_eq(f.len, len);
	free(big);
	free(buf);
}

START_TEST(test_frame_roundtrip_smallest_objects)
{
	static const uint8_t objs[][1] = {{0xc0}, {0x80}, {0x90}, {0xa0}, {0x00}, {0xff}, {0xc3}};
	seg_header h = mk_hdr(1, 1715678493000, 0x0123456789abcdefull);
	for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++) {
		check_frame_roundtrip(&h, 0, 0, objs[i], 1);
		check_frame_roundtrip(&h, (uint32_t)i + 1, (int32_t)i * 7, objs[i], 1);
		/* A clock that went back: negative ts delta. */
		check_frame_roundtrip(&h, 3, -1000, objs[i], 1);
		check_frame_roundtrip(&h, SEG_MAX_DELTA, INT32_MIN, objs[i], 1);
		check_frame_roundtrip(&h, SEG_MAX_DELTA - 1, INT32_MAX, objs[i], 1);
	}
	/* Salt 0 and a large base seq. */
	seg_header h0 = mk_hdr(UINT64_C(1) << 40, 0, 0);
	check_frame_roundtrip(&h0, 5, 5, objs[0], 1);
}
END_TEST

START_TEST(test_frame_roundtrip_prediction)
{
	seg_header h = mk_hdr(4096, 1715678493000, 0xfeedfacecafebeefull);
	for (uint64_t i = 0; i < 50; i++) {
		tu_buf p = tu_prediction(i, 7);
		ck_assert_int_gt(p.len, 300);
		ck_assert_uint_eq(seg_mp_validate(p.data, p.len), 0);
		check_frame_roundtrip(&h, (uint32_t)i, (int32_t)(i * 33), p.data, (uint32_t)p.len);
		tu_buf_free(&p);
	}
}
END_TEST

/* A bin32 object of exactly len bytes (len >= 5). */
static uint8_t *mk_bin32(uint32_t len, uint64_t seed)
{
	uint8_t *p = malloc(len);
	ck_assert_ptr_nonnull(p);
	uint32_t body = len - 5;
	p[0] = 0xc6;
	p[1] = (uint8_t)(body >> 24);
	p[2] = (uint8_t)(body >> 16);
	p[3] = (uint8_t)(body >> 8);
	p[4] = (uint8_t)body;
	uint64_t st = seed;
	for (uint32_t i = 5; i < len; i++)
		p[i] = (uint8_t)tu_rand(&st);
	return p;
}

START_TEST(test_frame_roundtrip_max_payload)
{
	seg_header h = mk_hdr(77, 1715678493000, 0x5555aaaa5555aaaaull);
	uint8_t *p = mk_bin32(SEG_MAX_PAYLOAD, 1);
	ck_assert_uint_eq(seg_mp_validate(p, SEG_MAX_PAYLOAD), 0);
	check_frame_roundtrip(&h, 9, 9, p, SEG_MAX_PAYLOAD);

	/* One byte short of the claimed length: torn. */
	uint8_t *buf = mk_frame(h.salt, 9, 9, p, SEG_MAX_PAYLOAD, 0);
	seg_frame f;
	int rc = seg_frame_check(buf, SEG_FRAME_HEADER + SEG_MAX_PAYLOAD - 1, &h, &f);
	ck_assert_int_eq(rc, SEG_SHORT);
	free(buf);
	free(p);

	/* One byte over the maximum is an invalid length, even when that
	 * many bytes are there and the checksum matches. */
	uint8_t *q = mk_bin32(SEG_MAX_PAYLOAD + 1, 2);
	buf = mk_frame(h.salt, 9, 9, q, SEG_MAX_PAYLOAD + 1, 0);
	rc = seg_frame_check(buf, SEG_FRAME_HEADER + SEG_MAX_PAYLOAD + 1, &h, &f);
	ck_assert_int_eq(rc, SEG_BAD);
	free(buf);
	free(q);
}
END_TEST

START_TEST(test_frame_truncated_is_short)
{
	seg_header h = mk_hdr(1, 1000, 42);
	tu_buf p = tu_prediction(3, 3);
	uint8_t *buf = mk_frame(h.salt, 1, 1, p.data, (uint32_t)p.len, 0);
	seg_frame f;
	/* Header complete, payload cut anywhere. */
	for (size_t avail = SEG_FRAME_HEADER; avail < SEG_FRAME_HEADER + p.len; avail++) {
		int rc = seg_frame_check(buf, avail, &h, &f);
		ck_assert_msg(rc == SEG_SHORT, "avail %zu: %d, expected SEG_SHORT", avail, rc);
	}
	/* Header itself cut: not a frame, not the clean end. */
	for (size_t avail = 1; avail < SEG_FRAME_HEADER; avail++) {
		if (all_zero(buf, avail))
			continue;
		int rc = seg_frame_check(buf, avail, &h, &f);
		ck_assert_msg(rc == SEG_SHORT || rc == SEG_BAD, "avail %zu: %d", avail, rc);
	}
	free(buf);
	tu_buf_free(&p);
}
END_TEST

START_TEST(test_frame_every_bit_flip_detected)
{
	seg_header h = mk_hdr(1000, 1715678493000, 0x1122334455667788ull);
	tu_buf p = tu_prediction(11, 5);
	size_t total = SEG_FRAME_HEADER + p.len;
	uint8_t *orig = mk_frame(h.salt, 17, 1234, p.data, (uint32_t)p.len, 0);
	uint8_t *buf = malloc(total);
	ck_assert_ptr_nonnull(buf);
	for (size_t bit = 0; bit < total * 8; bit++) {
		memcpy(buf, orig, total);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		seg_frame f;
		int rc = seg_frame_check(buf, total, &h, &f);
		ck_assert_msg(rc == SEG_BAD || rc == SEG_SHORT,
			      "bit %zu (byte %zu) flipped: seg_frame_check = %d", bit, bit / 8, rc);
	}
	free(buf);
	free(orig);
	tu_buf_free(&p);
}
END_TEST

START_TEST(test_frame_wrong_salt_rejected)
{
	/* A frame left over from another segment (another salt) must not
	 * pass, even though its bytes are intact. */
	seg_header h = mk_hdr(1, 1000, 0xaaaaaaaaaaaaaaaaull);
	tu_buf p = tu_prediction(0, 1);
	uint8_t *buf = mk_frame(h.salt ^ 1, 0, 0, p.data, (uint32_t)p.len, 0);
	seg_frame f;
	ck_assert_int_eq(seg_frame_check(buf, SEG_FRAME_HEADER + p.len, &h, &f), SEG_BAD);
	free(buf);
	tu_buf_free(&p);
}
END_TEST

START_TEST(test_frame_zero_header_is_end)
{
	seg_header h = mk_hdr(1, 1000, 99);
	uint8_t zeros[SEG_FRAME_HEADER + 64];
	memset(zeros, 0, sizeof zeros);
	seg_frame f;
	ck_assert_int_eq(seg_frame_check(zeros, sizeof zeros, &h, &f), SEG_END);
	ck_assert_int_eq(seg_frame_check(zeros, SEG_FRAME_HEADER, &h, &f), SEG_END);
}
END_TEST

START_TEST(test_frame_checksum_function_matches_encoder)
{
	/* seg_frame_checksum() is what the encoder stores: some 4-byte
	 * little-endian field of the header equals the checksum of the
	 * payload and the other 12 header bytes. */
	tu_buf p = tu_prediction(1, 1);
	uint64_t salt = 0x0f0e0d0c0b0a0908ull;
	uint8_t hdr[SEG_FRAME_HEADER];
	seg_frame_encode(hdr, salt, 5, 6, p.data, (uint32_t)p.len);
	int found = 0;
	for (int at = 0; at + 4 <= (int)SEG_FRAME_HEADER; at += 4) {
		uint8_t rest[12];
		memcpy(rest, hdr, (size_t)at);
		memcpy(rest + at, hdr + at + 4, SEG_FRAME_HEADER - (size_t)at - 4);
		if (seg_get32(hdr + at) == seg_frame_checksum(salt, rest, p.data, (uint32_t)p.len))
			found++;
	}
	ck_assert_int_eq(found, 1);
	tu_buf_free(&p);
}
END_TEST

static void assert_hdr_eq(const seg_header *a, const seg_header *b)
{
	ck_assert_uint_eq(a->version, b->version);
	ck_assert_uint_eq(a->flags, b->flags);
	ck_assert_uint_eq(a->base_seq, b->base_seq);
	ck_assert_int_eq(a->base_ts_ms, b->base_ts_ms);
	ck_assert_uint_eq(a->salt, b->salt);
}

START_TEST(test_header_roundtrip)
{
	uint64_t st = 12345;
	for (int i = 0; i < 200; i++) {
		/* Any value in the ranges a header may hold (seg_format.h; the
		 * ranges themselves: check_repair's test_header_ranges_checked). */
		seg_header h =
			mk_hdr(1 + tu_rand(&st) % (SEG_SEQ_LIMIT - 1),
			       (int64_t)(tu_rand(&st) % (2 * (uint64_t)SEG_TS_LIMIT_MS + 1)) -
				       SEG_TS_LIMIT_MS,
			       tu_rand(&st));
		if (i == 0)
			h = mk_hdr(1, 0, 0);
		if (i == 1)
			h = mk_hdr(SEG_SEQ_LIMIT - 1, -SEG_TS_LIMIT_MS, UINT64_MAX);
		if (i == 2)
			h = mk_hdr(SEG_SEQ_LIMIT - 1, SEG_TS_LIMIT_MS, 0);
		uint8_t out[SEG_HEADER_SIZE];
		memset(out, 0xcc, sizeof out);
		seg_header_encode(&h, out);
		ck_assert(!memcmp(out, SEG_MAGIC, SEG_MAGIC_LEN));
		seg_header d;
		memset(&d, 0xee, sizeof d);
		ck_assert_int_eq(seg_header_decode(out, &d), SEG_OK);
		assert_hdr_eq(&d, &h);
	}
}
END_TEST

START_TEST(test_header_all_zero_is_empty)
{
	uint8_t z[SEG_HEADER_SIZE];
	memset(z, 0, sizeof z);
	seg_header d;
	ck_assert_int_eq(seg_header_decode(z, &d), SEG_EMPTY);
}
END_TEST

START_TEST(test_header_newer_version)
{
	seg_header h = mk_hdr(1, 1715678493000, 77);
	h.version = SEG_FORMAT_VERSION + 1;
	uint8_t out[SEG_HEADER_SIZE];
	seg_header_encode(&h, out);
	seg_header d;
	ck_assert_int_eq(seg_header_decode(out, &d), SEG_NEWER);
	h.version = 0xffffffffu;
	seg_header_encode(&h, out);
	ck_assert_int_eq(seg_header_decode(out, &d), SEG_NEWER);
}
END_TEST

START_TEST(test_header_bad_magic)
{
	seg_header h = mk_hdr(1, 1715678493000, 77);
	uint8_t out[SEG_HEADER_SIZE];
	for (int i = 0; i < SEG_MAGIC_LEN; i++) {
		seg_header_encode(&h, out);
		out[i] ^= 0x20;
		seg_header d;
		ck_assert_msg(seg_header_decode(out, &d) == SEG_BAD, "magic byte %d changed", i);
	}
}
END_TEST

START_TEST(test_header_corruption_never_silent)
{
	/* Any single changed byte either fails the decode or (a byte the
	 * checksum need not cover) leaves every decoded field as written. */
	seg_header h = mk_hdr(0x0102030405060708ull, 1715678493000, 0x1111222233334444ull);
	uint8_t orig[SEG_HEADER_SIZE], out[SEG_HEADER_SIZE];
	seg_header_encode(&h, orig);
	for (int i = 0; i < (int)SEG_HEADER_SIZE; i++) {
		for (int x = 1; x < 256; x <<= 1) {
			memcpy(out, orig, sizeof out);
			out[i] ^= (uint8_t)x;
			seg_header d;
			memset(&d, 0, sizeof d);
			int rc = seg_header_decode(out, &d);
			if (rc == SEG_OK) {
				assert_hdr_eq(&d, &h);
			} else {
				ck_assert_msg(rc == SEG_BAD || rc == SEG_NEWER,
					      "byte %d ^ %#x: decode = %d", i, x, rc);
			}
		}
	}
}
END_TEST

/* The byte layouts FORMAT.md publishes (third-party readers rely on them). */
START_TEST(test_header_layout_matches_format_md)
{
	seg_header h = mk_hdr(0x0102030405060708ull, -5, 0x1122334455667788ull);
	uint8_t out[SEG_HEADER_SIZE];
	memset(out, 0xcc, sizeof out);
	seg_header_encode(&h, out);
	static const uint8_t magic[8] = {0x45, 0x44, 0x47, 0x45, 0x4c, 0x4f, 0x47, 0x1a};
	ck_assert(!memcmp(out, magic, 8));
	ck_assert_uint_eq(seg_get32(out + 8), SEG_FORMAT_VERSION);
	ck_assert_uint_eq(seg_get32(out + 12), 0);
	ck_assert_uint_eq(seg_get64(out + 16), h.base_seq);
	ck_assert_int_eq((int64_t)seg_get64(out + 24), -5);
	ck_assert_uint_eq(seg_get64(out + 32), h.salt);
	ck_assert(all_zero(out + 40, 20));
	ck_assert_uint_eq(seg_get32(out + 60), (uint32_t)XXH3_64bits(out, 60));
}
END_TEST

START_TEST(test_frame_layout_matches_format_md)
{
	uint64_t salt = 0x0f0e0d0c0b0a0908ull;
	for (uint64_t i = 0; i < 20; i++) {
		tu_buf p = tu_prediction(i, 30);
		uint8_t hdr[SEG_FRAME_HEADER];
		seg_frame_encode(hdr, salt, (uint32_t)i * 3, -(int32_t)i, p.data, (uint32_t)p.len);
		ck_assert_uint_eq(seg_get32(hdr + 4), p.len);
		ck_assert_uint_eq(seg_get32(hdr + 8), (uint32_t)i * 3);
		ck_assert_int_eq((int32_t)seg_get32(hdr + 12), -(int32_t)i);
		uint64_t ph = XXH3_64bits_withSeed(p.data, p.len, salt);
		uint32_t c = (uint32_t)XXH3_64bits_withSeed(hdr + 4, 12, ph);
		ck_assert_uint_eq(seg_get32(hdr), c ? c : 1);
		ck_assert_uint_eq(seg_frame_checksum(salt, hdr + 4, p.data, (uint32_t)p.len), c);
		tu_buf_free(&p);
	}
}
END_TEST

/* ------------------------------------------------------------------------
 * 2. msgpack validation
 */

typedef struct mp_obj {
	const char *what;
	uint8_t *data;
	size_t len;
} mp_obj;

static mp_obj mpo(const char *what, const void *p, size_t len)
{
	mp_obj o = {what, malloc(len ? len : 1), len};
	ck_assert_ptr_nonnull(o.data);
	memcpy(o.data, p, len);
	return o;
}

#define MPO(what, ...)                                     \
	do {                                               \
		static const uint8_t b_[] = {__VA_ARGS__}; \
		objs[n++] = mpo(what, b_, sizeof b_);      \
	} while (0)

/* A packed object from msgpack-c. */
static mp_obj mpo_sbuf(const char *what, msgpack_sbuffer *sb)
{
	mp_obj o = mpo(what, sb->data, sb->size);
	msgpack_sbuffer_clear(sb);
	return o;
}

/* Hand-built and msgpack-c-built objects, one or more of every type. */
static int valid_objects(mp_obj *objs)
{
	int n = 0;
	MPO("positive fixint 0", 0x00);
	MPO("positive fixint 127", 0x7f);
	MPO("negative fixint -32", 0xe0);
	MPO("negative fixint -1", 0xff);
	MPO("nil", 0xc0);
	MPO("false", 0xc2);
	MPO("true", 0xc3);
	MPO("uint8", 0xcc, 0xff);
	MPO("uint16", 0xcd, 0x12, 0x34);
	MPO("uint32", 0xce, 1, 2, 3, 4);
	MPO("uint64", 0xcf, 1, 2, 3, 4, 5, 6, 7, 8);
	MPO("int8", 0xd0, 0x80);
	MPO("int16", 0xd1, 0x80, 0x00);
	MPO("int32", 0xd2, 0x80, 0, 0, 0);
	MPO("int64", 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0);
	MPO("float32", 0xca, 0x3f, 0x80, 0, 0);
	MPO("float64", 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0);
	MPO("fixstr empty", 0xa0);
	MPO("fixstr", 0xa3, 'a', 'b', 'c');
	MPO("str8 empty", 0xd9, 0x00);
	MPO("str8", 0xd9, 3, 'a', 'b', 'c');
	MPO("str16", 0xda, 0, 3, 'a', 'b', 'c');
	MPO("str32", 0xdb, 0, 0, 0, 3, 'a', 'b', 'c');
	MPO("bin8 empty", 0xc4, 0);
	MPO("bin8", 0xc4, 2, 0xc1, 0xff);
	MPO("bin16", 0xc5, 0, 2, 0xc1, 0xff);
	MPO("bin32", 0xc6, 0, 0, 0, 2, 0xc1, 0xff);
	MPO("fixarray empty", 0x90);
	MPO("fixarray", 0x92, 0x01, 0xc0);
	MPO("array16", 0xdc, 0, 2, 0x01, 0xc0);
	MPO("array32", 0xdd, 0, 0, 0, 2, 0x01, 0xc0);
	MPO("array16 empty", 0xdc, 0, 0);
	MPO("fixmap empty", 0x80);
	MPO("fixmap", 0x81, 0xa1, 'k', 0x01);
	MPO("map16", 0xde, 0, 1, 0x01, 0x02);
	MPO("map32", 0xdf, 0, 0, 0, 1, 0x01, 0x02);
	MPO("map32 empty", 0xdf, 0, 0, 0, 0);
	MPO("fixext1", 0xd4, 0x01, 0xaa);
	MPO("fixext2", 0xd5, 0x01, 0xaa, 0xbb);
	MPO("fixext4 timestamp32", 0xd6, 0xff, 0x66, 0x43, 0x2d, 0x1d);
	MPO("fixext8", 0xd7, 0x01, 1, 2, 3, 4, 5, 6, 7, 8);
	MPO("fixext16", 0xd8, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
	MPO("ext8 empty", 0xc7, 0, 0x01);
	MPO("ext8", 0xc7, 2, 0x01, 0xc1, 0xc1);
	MPO("ext16", 0xc8, 0, 2, 0x01, 0xc1, 0xc1);
	MPO("ext32", 0xc9, 0, 0, 0, 2, 0x01, 0xc1, 0xc1);
	MPO("nested {a: [{nil: []}, true]}", 0x81, 0xa1, 'a', 0x92, 0x81, 0xc0, 0x90, 0xc3);
	MPO("map with container keys", 0x82, 0x90, 0x80, 0x81, 0x01, 0x02, 0xc3);

	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	static uint8_t blob[70000];
	for (size_t i = 0; i < sizeof blob; i++)
		blob[i] = (uint8_t)(i * 131 + 7);
	msgpack_pack_float(&pk, 3.25f);
	objs[n++] = mpo_sbuf("packed float", &sb);
	msgpack_pack_double(&pk, -1e300);
	objs[n++] = mpo_sbuf("packed double", &sb);
	msgpack_pack_int64(&pk, INT64_MIN);
	objs[n++] = mpo_sbuf("packed INT64_MIN", &sb);
	msgpack_pack_uint64(&pk, UINT64_MAX);
	objs[n++] = mpo_sbuf("packed UINT64_MAX", &sb);
	msgpack_pack_str_with_body(&pk, "0123456789012345678901234567890123456789", 40);
	objs[n++] = mpo_sbuf("packed str 40", &sb);
	memset(blob, 'x', 300);
	msgpack_pack_str_with_body(&pk, blob, 300);
	objs[n++] = mpo_sbuf("packed str 300", &sb);
	msgpack_pack_str_with_body(&pk, blob, 70000);
	objs[n++] = mpo_sbuf("packed str 70000", &sb);
	msgpack_pack_bin_with_body(&pk, blob, 300);
	objs[n++] = mpo_sbuf("packed bin 300", &sb);
	msgpack_pack_bin_with_body(&pk, blob, 70000);
	objs[n++] = mpo_sbuf("packed bin 70000", &sb);
	msgpack_pack_ext_with_body(&pk, blob, 100, 5);
	objs[n++] = mpo_sbuf("packed ext 100", &sb);
	msgpack_pack_ext_with_body(&pk, blob, 70000, -7);
	objs[n++] = mpo_sbuf("packed ext 70000", &sb);
	msgpack_pack_array(&pk, 20);
	for (int i = 0; i < 20; i++)
		msgpack_pack_int(&pk, i * 1000);
	objs[n++] = mpo_sbuf("packed array16 of ints", &sb);
	msgpack_pack_array(&pk, 70000);
	for (int i = 0; i < 70000; i++)
		msgpack_pack_nil(&pk);
	objs[n++] = mpo_sbuf("packed array32 of nil", &sb);
	msgpack_pack_map(&pk, 20);
	for (int i = 0; i < 20; i++) {
		msgpack_pack_int(&pk, i);
		msgpack_pack_double(&pk, i * 0.5);
	}
	objs[n++] = mpo_sbuf("packed map16", &sb);
	msgpack_pack_map(&pk, 70000);
	for (int i = 0; i < 70000; i++) {
		msgpack_pack_int(&pk, i);
		msgpack_pack_true(&pk);
	}
	objs[n++] = mpo_sbuf("packed map32", &sb);
	msgpack_sbuffer_destroy(&sb);

	for (uint64_t i = 0; i < 4; i++) {
		tu_buf p = tu_prediction(i, 99);
		objs[n++] = mpo("prediction", p.data, p.len);
		tu_buf_free(&p);
	}
	return n;
}

static void free_objects(mp_obj *objs, int n)
{
	for (int i = 0; i < n; i++)
		free(objs[i].data);
}

START_TEST(test_mp_accepts_every_type)
{
	mp_obj objs[128];
	int n = valid_objects(objs);
	for (int i = 0; i < n; i++) {
		size_t rc = seg_mp_validate(objs[i].data, objs[i].len);
		ck_assert_msg(rc == 0, "%s (%zu bytes) rejected at %zu", objs[i].what, objs[i].len,
			      rc);
	}
	free_objects(objs, n);
}
END_TEST

START_TEST(test_mp_rejects_empty)
{
	uint8_t b = 0xc0;
	ck_assert_uint_eq(seg_mp_validate(&b, 0), 1);
}
END_TEST

START_TEST(test_mp_rejects_every_truncation)
{
	mp_obj objs[128];
	int n = valid_objects(objs);
	uint64_t st = 4;
	for (int i = 0; i < n; i++) {
		size_t len = objs[i].len;
		/* Short objects: every proper prefix. Long ones: the first and
		 * last 64 prefixes and 64 random ones. */
		for (size_t k = 0; k < len; k++) {
			size_t cut = k;
			if (len > 2048) {
				if (k >= 192)
					break;
				cut = k < 64  ? k :
				      k < 128 ? len - 1 - (k - 64) :
						tu_rand_below(&st, len);
			}
			/* Copy so that reading past the cut would be caught by
			 * sanitizers. */
			uint8_t *c = malloc(cut ? cut : 1);
			ck_assert_ptr_nonnull(c);
			memcpy(c, objs[i].data, cut);
			size_t rc = seg_mp_validate(c, cut);
			free(c);
			ck_assert_msg(rc != 0, "%s cut to %zu of %zu bytes accepted", objs[i].what,
				      cut, len);
			ck_assert_msg(rc <= cut + 1, "%s cut to %zu: offset+1 %zu past the end",
				      objs[i].what, cut, rc);
		}
	}
	free_objects(objs, n);
}
END_TEST

START_TEST(test_mp_rejects_concatenated_and_trailing)
{
	mp_obj objs[128];
	int n = valid_objects(objs);
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < 3; j++) {
			/* object + another object, or + one stray byte */
			const mp_obj *tail = &objs[j];
			size_t len = objs[i].len + tail->len;
			uint8_t *c = malloc(len);
			ck_assert_ptr_nonnull(c);
			memcpy(c, objs[i].data, objs[i].len);
			memcpy(c + objs[i].len, tail->data, tail->len);
			size_t rc = seg_mp_validate(c, len);
			ck_assert_msg(rc >= objs[i].len + 1 && rc <= len + 1,
				      "%s + %s: validate = %zu (first trailing byte at %zu)",
				      objs[i].what, tail->what, rc, objs[i].len);
			free(c);
		}
	}
	uint8_t two_nils[] = {0xc0, 0xc0};
	ck_assert_uint_eq(seg_mp_validate(two_nils, 2), 2);
	free_objects(objs, n);
}
END_TEST

START_TEST(test_mp_rejects_reserved_c1)
{
	uint8_t a[] = {0xc1};
	ck_assert_uint_eq(seg_mp_validate(a, sizeof a), 1);
	uint8_t b[] = {0x92, 0x01, 0xc1};
	ck_assert_uint_eq(seg_mp_validate(b, sizeof b), 3);
	uint8_t c[] = {0x81, 0xc1, 0x01};
	ck_assert_uint_eq(seg_mp_validate(c, sizeof c), 2);
	uint8_t d[] = {0x81, 0x01, 0xc1};
	ck_assert_uint_eq(seg_mp_validate(d, sizeof d), 3);
}
END_TEST

static size_t nested(uint8_t *buf, size_t depth, uint8_t open)
{
	for (size_t i = 0; i < depth; i++)
		buf[i] = open;
	buf[depth] = 0xc0;
	return depth + 1;
}

START_TEST(test_mp_depth_limit)
{
	static uint8_t buf[200002];
	size_t len = nested(buf, 255, 0x91);
	ck_assert_uint_eq(seg_mp_validate(buf, len), 0);
	len = nested(buf, 257, 0x91);
	size_t rc = seg_mp_validate(buf, len);
	ck_assert_uint_ne(rc, 0);
	ck_assert_uint_le(rc, len + 1);
	/* Far deeper: no stack overflow, just a rejection. */
	len = nested(buf, 200000, 0x91);
	rc = seg_mp_validate(buf, len);
	ck_assert_uint_ne(rc, 0);
	ck_assert_uint_le(rc, len + 1);
	/* Maps nest through their values: {nil: {nil: ... nil}}. */
	size_t k = 0;
	for (int i = 0; i < 300; i++) {
		buf[k++] = 0x81;
		buf[k++] = 0xc0;
	}
	buf[k++] = 0xc0;
	ck_assert_uint_ne(seg_mp_validate(buf, k), 0);
	/* And through their keys. */
	len = nested(buf, 300, 0x81);
	ck_assert_uint_ne(seg_mp_validate(buf, len), 0);
}
END_TEST

START_TEST(test_mp_rejects_huge_lengths)
{
	static const struct {
		uint8_t b[8];
		size_t len;
	} cases[] = {
		{{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, 6},        /* str32 4 GiB */
		{{0xda, 0xff, 0xff, 'a'}, 4},                    /* str16 */
		{{0xd9, 0xff, 'a'}, 3},                          /* str8 */
		{{0xc6, 0xff, 0xff, 0xff, 0xff}, 5},             /* bin32 */
		{{0xc6, 0x7f, 0xff, 0xff, 0xff, 0}, 6},          /* bin32 2 GiB */
		{{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}, 6},       /* ext32 */
		{{0xc8, 0xff, 0xff, 0x01, 0x00}, 5},             /* ext16 */
		{{0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0}, 6},       /* array32 */
		{{0xdc, 0xff, 0xff, 0xc0, 0xc0}, 5},             /* array16 */
		{{0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0}, 7}, /* map32 */
		{{0xde, 0xff, 0xff, 0xc0}, 4},                   /* map16 */
		{{0x9f, 0xc0}, 2},                               /* fixarray 15 */
		{{0x8f, 0xc0, 0xc0}, 3},                         /* fixmap 15 */
		{{0xbf, 'a'}, 2},                                /* fixstr 31 */
		{{0xcf, 1, 2, 3}, 4},                            /* uint64 short */
		{{0xd8, 0x01, 1, 2}, 4},                         /* fixext16 short */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t rc = seg_mp_validate(cases[i].b, cases[i].len);
		ck_assert_msg(rc != 0 && rc <= cases[i].len + 1, "case %zu: validate = %zu", i, rc);
	}
	/* array32 claiming 4 G elements, with a megabyte of them present:
	 * rejected, and in reasonable time. */
	size_t len = MIB;
	uint8_t *big = malloc(len);
	ck_assert_ptr_nonnull(big);
	memset(big, 0xc0, len);
	big[0] = 0xdd;
	big[1] = big[2] = big[3] = big[4] = 0xff;
	ck_assert_uint_ne(seg_mp_validate(big, len), 0);
	free(big);
}
END_TEST

/* Compare with msgpack-c's parser on one buffer, where both must agree. */
static void mp_compare(const uint8_t *p, size_t len, const char *what, uint64_t iter)
{
	/* msgpack-c allocates a declared array16/32 or map16/32 up front (up
	 * to 4 G elements): under sanitizers that is slow or fatal. Those
	 * types have their own tests above; the oracle skips them. */
	for (size_t i = 0; i < len; i++)
		if (p[i] >= 0xdc && p[i] <= 0xdf)
			return;
	size_t rc = seg_mp_validate(p, len);
	ck_assert_msg(rc <= len + 1, "%s #%" PRIu64 ": validate = %zu > len + 1", what, iter, rc);
	msgpack_unpacked res;
	msgpack_unpacked_init(&res);
	size_t off = 0;
	msgpack_unpack_return ur = msgpack_unpack_next(&res, (const char *)p, len, &off);
	msgpack_unpacked_destroy(&res);
	switch (ur) {
	case MSGPACK_UNPACK_SUCCESS:
		if (off < len)
			ck_assert_msg(rc >= off + 1,
				      "%s #%" PRIu64 ": trailing bytes from %zu, validate %zu",
				      what, iter, off, rc);
		else
			ck_assert_msg(rc == 0,
				      "%s #%" PRIu64
				      ": msgpack-c parses all %zu bytes, validate %zu",
				      what, iter, len, rc);
		break;
	case MSGPACK_UNPACK_CONTINUE:
	case MSGPACK_UNPACK_PARSE_ERROR:
		ck_assert_msg(rc != 0, "%s #%" PRIu64 ": msgpack-c fails (%d), validate accepts",
			      what, iter, (int)ur);
		break;
	default:
		/* NOMEM (huge counts, depth > msgpack-c's stack): no opinion. */
		break;
	}
}

START_TEST(test_mp_agrees_with_msgpack_c)
{
	uint64_t st = 2024;
	uint8_t buf[600];
	/* Random short buffers. */
	for (uint64_t it = 0; it < 200000; it++) {
		size_t len = (size_t)tu_rand_below(&st, 24);
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)tu_rand(&st);
		mp_compare(buf, len, "random", it);
	}
	/* Predictions with a few random bytes changed. */
	for (uint64_t it = 0; it < 20000; it++) {
		tu_buf p = tu_prediction(it % 16, 1);
		ck_assert_uint_le(p.len, sizeof buf);
		memcpy(buf, p.data, p.len);
		int k = 1 + (int)tu_rand_below(&st, 3);
		for (int j = 0; j < k; j++)
			buf[tu_rand_below(&st, p.len)] = (uint8_t)tu_rand(&st);
		mp_compare(buf, p.len, "mutated prediction", it);
		tu_buf_free(&p);
	}
}
END_TEST

/* ------------------------------------------------------------------------
 * 3. Writer and reader through the POSIX vfs
 */

START_TEST(test_writer_reader_roundtrip_single_segment)
{
	char *dir = tu_mkdtemp("segtest");
	seg_writer w;
	seg_open_report rep;
	writer_open_ok(&w, V, dir, 4 * MIB, MAX_AGE_MS, 0, &rep);
	ck_assert_uint_eq(rep.segments, 0);
	ck_assert_uint_eq(rep.first_seq, 0);
	ck_assert_uint_eq(rep.last_seq, 0);
	ck_assert_uint_eq(rep.torn_tails, 0);
	ck_assert_uint_eq(rep.torn_bytes, 0);
	ck_assert_uint_eq(rep.corrupt, 0);
	ck_assert_uint_eq(rep.quarantined, 0);
	const int n = 500;
	rec *a = calloc(n, sizeof *a);
	ck_assert_ptr_nonnull(a);
	for (int i = 0; i < n; i++) {
		a[i].b = tu_prediction((uint64_t)i, 1);
		a[i].ts = V->now_ms(V);
		a[i].seq = append_ok(&w, &a[i].b, a[i].ts);
		ck_assert_uint_eq(a[i].seq, (uint64_t)i + 1);
	}
	writer_close_ok(&w);

	ck_assert_int_eq(tu_count_entries(dir, ".seg"), 1);
	ck_assert(tu_file_exists(seg_file(dir, 1)));
	ck_assert(!tu_file_exists(tu_path(dir, SEG_SPARE_NAME)));
	ck_assert_uint_le(tu_file_size(seg_file(dir, 1)), 4 * MIB);

	dmg_log *d = dmg_new();
	rec *g;
	int ng = read_all(dir, 0, d, &g, NULL);
	rec **e = ptrs(a, 0, n);
	assert_same(g, ng, e, n);
	ck_assert_int_eq(d->n, 0);
	/* Frames are contiguous from the end of the header. */
	ck_assert_uint_eq(g[0].off, SEG_HEADER_SIZE);
	for (int i = 1; i < ng; i++)
		ck_assert_uint_eq(g[i].off, frame_end(&g[i - 1]));
	for (int i = 0; i < ng; i++)
		ck_assert_uint_eq(g[i].base, 1);

	/* from_seq = 1 and 0 read the same. */
	recs_free(g, ng);
	ng = read_all(dir, 1, d, &g, NULL);
	assert_same(g, ng, e, n);
	recs_free(g, ng);
	free(e);
	free(d);
	recs_free(a, n);
	free(dir);
}
END_TEST

/* Segments of the log at dir, ascending. */
static seg_list list_ok(const char *dir)
{
	seg_list l;
	seg_err e;
	memset(&l, 0, sizeof l);
	memset(&e, 0, sizeof e);
	int rc = seg_list_read(V, dir, &l, &e);
	ck_assert_msg(rc == 0, "seg_list_read = %d (%s)", rc, e.msg);
	for (size_t i = 1; i < l.n; i++)
		ck_assert_uint_gt(l.base[i], l.base[i - 1]);
	return l;
}

START_TEST(test_writer_rolls_small_segments)
{
	char *dir = tu_mkdtemp("segtest");
	const int n = 2000;
	const size_t seg_bytes = 64 * KIB;
	rec *a = write_log(dir, seg_bytes, n, 2);
	learn_offsets(a, n, dir);

	seg_list l = list_ok(dir);
	ck_assert_uint_ge(l.n, 10);
	ck_assert_int_eq(tu_count_entries(dir, ".seg"), (int)l.n);
	ck_assert(!tu_file_exists(tu_path(dir, SEG_SPARE_NAME)));
	/* Each segment is named after its first record, starts right after
	 * the header, never exceeds seg_bytes, and was sealed only because
	 * the next frame did not fit. */
	size_t s = 0;
	for (int i = 0; i < n; i++) {
		if (i == 0 || a[i].base != a[i - 1].base) {
			ck_assert_uint_lt(s, l.n);
			ck_assert_uint_eq(a[i].base, l.base[s]);
			ck_assert_uint_eq(a[i].base, a[i].seq);
			ck_assert_uint_eq(a[i].off, SEG_HEADER_SIZE);
			ck_assert_uint_le(tu_file_size(seg_file(dir, l.base[s])), seg_bytes);
			if (i > 0) {
				uint64_t used = frame_end(&a[i - 1]);
				ck_assert_uint_le(used, seg_bytes);
				ck_assert_msg(used + SEG_FRAME_HEADER + a[i].b.len > seg_bytes,
					      "segment %" PRIu64 " sealed at %" PRIu64
					      " bytes though a %zu-byte frame still fit",
					      a[i - 1].base, used, SEG_FRAME_HEADER + a[i].b.len);
			}
			s++;
		} else {
			ck_assert_uint_eq(a[i].off, frame_end(&a[i - 1]));
		}
	}
	ck_assert_uint_eq(s, l.n);

	dmg_log *d = dmg_new();
	rec *g;
	int ng = read_all(dir, 0, d, &g, NULL);
	rec **e = ptrs(a, 0, n);
	assert_same(g, ng, e, n);
	ck_assert_int_eq(d->n, 0);
	recs_free(g, ng);
	free(e);
	free(d);
	seg_list_free(&l);
	recs_free(a, n);
	free(dir);
}
END_TEST

START_TEST(test_reader_from_seq_middle)
{
	char *dir = tu_mkdtemp("segtest");
	const int n = 1200;
	rec *a = write_log(dir, 64 * KIB, n, 3);
	learn_offsets(a, n, dir);
	seg_list l = list_ok(dir);
	ck_assert_uint_ge(l.n, 4);
	uint64_t b3 = l.base[3];
	uint64_t froms[] = {0,          1, 2, 599, 600, 601, b3 - 1, b3, b3 + 1, (uint64_t)n - 1,
			    (uint64_t)n};
	for (size_t k = 0; k < sizeof froms / sizeof froms[0]; k++) {
		uint64_t from = froms[k];
		int first = from == 0 ? 0 : (int)from - 1;
		rec *g;
		int ng = read_all(dir, from, NULL, &g, NULL);
		rec **e = ptrs(a, first, n);
		assert_same(g, ng, e, n - first);
		free(e);
		recs_free(g, ng);
	}
	/* Past the end: nothing (yet). */
	rec *g;
	int ng = read_all(dir, (uint64_t)n + 1, NULL, &g, NULL);
	ck_assert_int_eq(ng, 0);
	recs_free(g, ng);
	ng = read_all(dir, UINT64_C(1) << 40, NULL, &g, NULL);
	ck_assert_int_eq(ng, 0);
	recs_free(g, ng);
	seg_list_free(&l);
	recs_free(a, n);
	free(dir);
}
END_TEST

START_TEST(test_reader_single_file_mode)
{
	char *dir = tu_mkdtemp("segtest");
	const int n = 800;
	rec *a = write_log(dir, 64 * KIB, n, 4);
	learn_offsets(a, n, dir);
	seg_list l = list_ok(dir);
	ck_assert_uint_ge(l.n, 3);
	for (size_t s = 0; s < l.n; s++) {
		int lo = (int)l.base[s] - 1;
		int hi = s + 1 < l.n ? (int)l.base[s + 1] - 1 : n;
		rec *g;
		dmg_log *d = dmg_new();
		int ng = read_all(seg_file(dir, l.base[s]), 0, d, &g, NULL);
		rec **e = ptrs(a, lo, hi);
		assert_same(g, ng, e, hi - lo);
		ck_assert_int_eq(d->n, 0);
		free(e);
		recs_free(g, ng);
		/* from_seq inside that file. */
		ng = read_all(seg_file(dir, l.base[s]), l.base[s] + 2, d, &g, NULL);
		e = ptrs(a, lo + 2, hi);
		assert_same(g, ng, e, hi - lo - 2);
		free(e);
		recs_free(g, ng);
		free(d);
	}
	seg_list_free(&l);
	recs_free(a, n);
	free(dir);
}
END_TEST

START_TEST(test_reader_empty_dir_is_eof)
{
	char *dir = tu_mkdtemp("segtest");
	rec *g;
	int ng = read_all(dir, 0, NULL, &g, NULL);
	ck_assert_int_eq(ng, 0);
	recs_free(g, ng);
	/* A directory the writer opened but never appended to. */
	seg_writer w;
	seg_open_report rep;
	writer_open_ok(&w, V, dir, 64 * KIB, MAX_AGE_MS, 0, &rep);
	writer_close_ok(&w);
	ng = read_all(dir, 0, NULL, &g, NULL);
	ck_assert_int_eq(ng, 0);
	recs_free(g, ng);
	free(dir);
}
END_TEST

START_TEST(test_writer_creates_missing_dir)
{
	char *top = tu_mkdtemp("segtest");
	char dir[4200];
	snprintf(dir, sizeof dir, "%s/segments", top);
	ck_assert(!tu_file_exists(dir));
	seg_writer w;
	seg_open_report rep;
	writer_open_ok(&w, V, dir, 64 * KIB, MAX_AGE_MS, 0, &rep);
	ck_assert(tu_file_exists(dir));
	tu_buf b = tu_prediction(0, 0);
	ck_assert_uint_eq(append_ok(&w, &b, V->now_ms(V)), 1);
	writer_close_ok(&w);
	ck_assert(tu_file_exists(seg_file(dir, 1)));
	tu_buf_free(&b);
	free(top);
}
END_TEST

START_TEST(test_writer_reopen_continues_seq)
{
	char *dir = tu_mkdtemp("segtest");
	rec *a = calloc(40, sizeof *a);
	ck_assert_ptr_nonnull(a);
	int n = 0;
	for (int round = 0; round < 4; round++) {
		seg_writer w;
		seg_open_report rep;
		writer_open_ok(&w, V, dir, 64 * KIB, MAX_AGE_MS, 0, &rep);
		ck_assert_uint_eq(rep.last_seq, (uint64_t)n);
		ck_assert_uint_eq(rep.first_seq, n ? 1 : 0);
		ck_assert_uint_eq(rep.torn_tails, 0);
		ck_assert_uint_eq(rep.torn_bytes, 0);
		ck_assert_uint_eq(rep.corrupt, 0);
		ck_assert_uint_eq(rep.quarantined, 0);
		if (n) {
			ck_assert_uint_ge(rep.segments, 1);
			ck_assert_uint_gt(rep.bytes, 0);
		}
		for (int i = 0; i < 10; i++, n++) {
			a[n].b = tu_prediction((uint64_t)n, 5);
			a[n].ts = V->now_ms(V);
			a[n].seq = append_ok(&w, &a[n].b, a[n].ts);
			ck_assert_uint_eq(a[n].seq, (uint64_t)n + 1);
		}
		writer_close_ok(&w);
	}
	rec *g;
	dmg_log *d = dmg_new();
	int ng = read_all(dir, 0, d, &g, NULL);
	rec **e = ptrs(a, 0, n);
	assert_same(g, ng, e, n);
	ck_assert_int_eq(d->n, 0);
	free(e);
	free(d);
	recs_free(g, ng);
	recs_free(a, n);
	free(dir);
}
END_TEST

START_TEST(test_writer_min_next_seq)
{
	char *dir = tu_mkdtemp("segtest");
	seg_writer w;
	seg_open_report rep;
	/* Empty log, cursor says 1000 was handed out before: never reuse. */
	writer_open_ok(&w, V, dir, 64 * KIB, MAX_AGE_MS, 1000, &rep);
	rec a[6];
	memset(a, 0, sizeof a);
	for (int i = 0; i < 3; i++) {
		a[i].b = tu_prediction((uint64_t)i, 6);
		a[i].ts = V->now_ms(V);
		a[i].seq = append_ok(&w, &a[i].b, a[i].ts);
		if (i == 0)
			ck_assert_uint_ge(a[i].seq, 1000);
		else
			ck_assert_uint_eq(a[i].seq, a[i - 1].seq + 1);
	}
	writer_close_ok(&w);
	/* Reopen with a lower min: continues after the last stored seq. */
	writer_open_ok(&w, V, dir, 64 * KIB, MAX_AGE_MS, 5, &rep);
	ck_assert_uint_eq(rep.last_seq, a[2].seq);
	ck_assert_uint_eq(rep.first_seq, a[0].seq);
	a[3].b = tu_prediction(3, 6);
	a[3].ts = V->now_ms(V);
	a[3].seq = append_ok(&w, &a[3].b, a[3].ts);
	ck_assert_uint_eq(a[3].seq, a[2].seq + 1);
	writer_close_ok(&w);
	/* Reopen with a higher min: jumps. */
	writer_open_ok(&w, V, dir, 64 * KIB, MAX_AGE_MS, 5000, &rep);
	for (int i = 4; i < 6; i++) {
		a[i].b = tu_prediction((uint64_t)i, 6);
		a[i].ts = V->now_ms(V);
		a[i].seq = append_ok(&w, &a[i].b, a[i].ts);
	}
	ck_assert_uint_ge(a[4].seq, 5000);
	ck_assert_uint_eq(a[5].seq, a[4].seq + 1);
	writer_close_ok(&w);

	rec *g;
	dmg_log *d = dmg_new();
	int ng = read_all(dir, 0, d, &g, NULL);
	rec **e = ptrs(a, 0, 6);
	assert_same(g, ng, e, 6);
	ck_assert_int_eq(d->n, 0);
	/* from_seq in the gap lands on the next stored record. */
	recs_free(g, ng);
	ng = read_all(dir, 2000, d, &g, NULL);
	assert_same(g, ng, e + 4, 2);
	recs_free(g, ng);
	free(e);
	free(d);
	for (int i = 0; i < 6; i++)
		tu_buf_free(&a[i].b);
	free(dir);
}
END_TEST

START_TEST(test_reader_follows_appends_across_roll)
{
	char *dir = tu_mkdtemp("segtest");
	seg_writer w;
	seg_open_report rep;
	seg_err err;
	memset(&err, 0, sizeof err);
	writer_open_ok(&w, V, dir, 64 * KIB, MAX_AGE_MS, 0, &rep);
	const int n = 400;
	rec *a = calloc(n, sizeof *a);
	ck_assert_ptr_nonnull(a);
	int written = 0;
	seg_reader r;
	memset(&r, 0, sizeof r);
	ck_assert_int_eq(seg_reader_init(&r, V, dir, 0, &err), 0);
	dmg_log *d = dmg_new();
	r.on_damage = dmg_cb;
	r.ud = d;
	int readn = 0;
	seg_frame f;
	/* Bursts of appends, some ended by an explicit roll, some rolling by
	 * size; after each burst the reader returns exactly the new ones. */
	int bursts[] = {10, 5, 1, 3, 150, 7, 200, 24};
	for (size_t b = 0; b < sizeof bursts / sizeof bursts[0]; b++) {
		ck_assert_int_eq(seg_reader_next(&r, &f, &err), EDGELOG_EOF);
		for (int i = 0; i < bursts[b]; i++, written++) {
			a[written].b = tu_prediction((uint64_t)written, 8);
			a[written].ts = V->now_ms(V);
			a[written].seq = append_ok(&w, &a[written].b, a[written].ts);
			ck_assert_uint_eq(a[written].seq, (uint64_t)written + 1);
		}
		if (b % 3 == 1)
			ck_assert_int_eq(seg_writer_roll(&w, &err), 0);
		int rc;
		while ((rc = seg_reader_next(&r, &f, &err)) == 0) {
			ck_assert_int_lt(readn, written);
			ck_assert_uint_eq(f.seq, a[readn].seq);
			ck_assert_int_eq(f.ts_ms, a[readn].ts);
			ck_assert_uint_eq(f.len, a[readn].b.len);
			ck_assert(!memcmp(f.data, a[readn].b.data, f.len));
			readn++;
		}
		ck_assert_int_eq(rc, EDGELOG_EOF);
		ck_assert_int_eq(readn, written);
	}
	ck_assert_int_eq(written, n);
	ck_assert_int_eq(d->n, 0);
	ck_assert_uint_eq(r.corrupt, 0);
	seg_reader_close(&r);
	writer_close_ok(&w);
	ck_assert_int_ge(tu_count_entries(dir, ".seg"), 4);
	free(d);
	recs_free(a, n);
	free(dir);
}
END_TEST

START_TEST(test_writer_ts_out_of_delta_range_rolls)
{
	char *dir = tu_mkdtemp("segtest");
	seg_writer w;
	seg_open_report rep;
	writer_open_ok(&w, V, dir, 4 * MIB, MAX_AGE_MS, 0, &rep);
	int64_t t0 = V->now_ms(V);
	int64_t ts[] = {t0,
			t0 + 5,
			t0 - 5000,         /* clock stepped back a little */
			t0 + 3000000000LL, /* 35 days ahead: past int32 ms */
			t0 - 3000000000LL, /* and back */
			t0 - 1000,
			t0 + (int64_t)INT32_MAX,
			0, /* a clock at the epoch */
			t0};
	int n = (int)(sizeof ts / sizeof ts[0]);
	rec a[16];
	memset(a, 0, sizeof a);
	for (int i = 0; i < n; i++) {
		a[i].b = tu_prediction((uint64_t)i, 9);
		a[i].ts = ts[i];
		a[i].seq = append_ok(&w, &a[i].b, a[i].ts);
		ck_assert_uint_eq(a[i].seq, (uint64_t)i + 1);
	}
	writer_close_ok(&w);
	ck_assert_int_ge(tu_count_entries(dir, ".seg"), 3);
	rec *g;
	dmg_log *d = dmg_new();
	int ng = read_all(dir, 0, d, &g, NULL);
	rec **e = ptrs(a, 0, n);
	assert_same(g, ng, e, n);
	ck_assert_int_eq(d->n, 0);
	free(e);
	free(d);
	recs_free(g, ng);
	for (int i = 0; i < n; i++)
		tu_buf_free(&a[i].b);
	free(dir);
}
END_TEST

/* A vfs that is POSIX except for a settable monotonic clock and an
 * fdatasync that can be made to fail. */
typedef struct fake_ctx {
	const seg_vfs *real;
	int64_t mono;
	int fail_fsync;
	int fsync_calls;
} fake_ctx;

static fake_ctx *fctx(const seg_vfs *v)
{
	return (fake_ctx *)v->ctx;
}
static int64_t fake_mono(const seg_vfs *v)
{
	return fctx(v)->mono;
}
static int fake_fsync(const seg_vfs *v, int fd)
{
	fake_ctx *c = fctx(v);
	c->fsync_calls++;
	if (c->fail_fsync)
		return -EIO;
	return c->real->fsync(c->real, fd);
}

static seg_vfs fake_vfs(fake_ctx *c)
{
	memset(c, 0, sizeof *c);
	c->real = seg_vfs_posix();
	c->mono = 1000000;
	seg_vfs v = *c->real;
	v.ctx = c;
	v.mono_ms = fake_mono;
	v.fsync = fake_fsync;
	return v;
}

START_TEST(test_writer_max_age_rolls)
{
	char *dir = tu_mkdtemp("segtest");
	fake_ctx c;
	seg_vfs v = fake_vfs(&c);
	seg_writer w;
	seg_open_report rep;
	writer_open_ok(&w, &v, dir, 4 * MIB, 1000, 0, &rep);
	tu_buf b = tu_prediction(0, 10);
	int64_t t = V->now_ms(V);
	append_ok(&w, &b, t);
	ck_assert_int_eq(tu_count_entries(dir, ".seg"), 1);
	c.mono += 500;
	append_ok(&w, &b, t);
	ck_assert_int_eq(tu_count_entries(dir, ".seg"), 1);
	c.mono += 1000; /* 1500 ms after the segment started */
	uint64_t seq = append_ok(&w, &b, t);
	ck_assert_uint_eq(seq, 3);
	ck_assert_int_eq(tu_count_entries(dir, ".seg"), 2);
	ck_assert(tu_file_exists(seg_file(dir, 3)));
	c.mono += 100;
	append_ok(&w, &b, t);
	ck_assert_int_eq(tu_count_entries(dir, ".seg"), 2);
	writer_close_ok(&w);
	rec *g;
	int ng = read_all(dir, 0, NULL, &g, NULL);
	ck_assert_int_eq(ng, 4);
	recs_free(g, ng);
	tu_buf_free(&b);
	free(dir);
}
END_TEST

START_TEST(test_sync_plan_makes_durable_then_idle)
{
	char *dir = tu_mkdtemp("segtest");
	fake_ctx c;
	seg_vfs v = fake_vfs(&c);
	seg_writer w;
	seg_open_report rep;
	seg_err e;
	memset(&e, 0, sizeof e);
	writer_open_ok(&w, &v, dir, 64 * KIB, MAX_AGE_MS, 0, &rep);
	tu_buf b = tu_prediction(0, 11);
	for (int i = 0; i < 5; i++)
		append_ok(&w, &b, V->now_ms(V));
	seg_sync_plan p;
	memset(&p, 0, sizeof p);
	ck_assert_int_eq(seg_sync_begin(&w, &p), 1);
	ck_assert_uint_eq(p.target_seq, 5);
	int before = c.fsync_calls;
	seg_sync_run(&v, dir, &p);
	ck_assert_int_eq(p.err, 0);
	ck_assert_int_gt(c.fsync_calls, before);
	ck_assert_int_eq(seg_sync_end(&w, &p, &e), 0);
	ck_assert_uint_eq(w.synced_seq, 5);
	/* Nothing new: nothing to do. */
	memset(&p, 0, sizeof p);
	ck_assert_int_eq(seg_sync_begin(&w, &p), 0);
	/* Appends across a roll: one plan covers the sealed and the active
	 * segment. */
	for (int i = 0; i < 300; i++)
		append_ok(&w, &b, V->now_ms(V));
	ck_assert_int_ge(tu_count_entries(dir, ".seg"), 2);
	memset(&p, 0, sizeof p);
	ck_assert_int_eq(seg_sync_begin(&w, &p), 1);
	ck_assert_uint_eq(p.target_seq, 305);
	seg_sync_run(&v, dir, &p);
	ck_assert_int_eq(p.err, 0);
	ck_assert_int_eq(seg_sync_end(&w, &p, &e), 0);
	ck_assert_uint_eq(w.synced_seq, 305);
	memset(&p, 0, sizeof p);
	ck_assert_int_eq(seg_sync_begin(&w, &p), 0);
	writer_close_ok(&w);
	tu_buf_free(&b);
	free(dir);
}
END_TEST

START_TEST(test_sync_failure_marks_suspect_and_rolls)
{
	char *dir = tu_mkdtemp("segtest");
	fake_ctx c;
	seg_vfs v = fake_vfs(&c);
	seg_writer w;
	seg_open_report rep;
	seg_err e;
	memset(&e, 0, sizeof e);
	writer_open_ok(&w, &v, dir, 4 * MIB, MAX_AGE_MS, 0, &rep);
	rec a[8];
	memset(a, 0, sizeof a);
	for (int i = 0; i < 8; i++) {
		a[i].b = tu_prediction((uint64_t)i, 12);
		a[i].ts = V->now_ms(V);
	}
	for (int i = 0; i < 5; i++)
		a[i].seq = append_ok(&w, &a[i].b, a[i].ts);
	ck_assert_int_eq(tu_count_entries(dir, ".seg"), 1);
	seg_sync_plan p;
	memset(&p, 0, sizeof p);
	ck_assert_int_eq(seg_sync_begin(&w, &p), 1);
	c.fail_fsync = 1;
	seg_sync_run(&v, dir, &p);
	ck_assert_int_eq(p.err, -EIO);
	ck_assert_int_ge(p.failed_fd, 0);
	ck_assert_int_eq(seg_sync_end(&w, &p, &e), EDGELOG_EIO);
	ck_assert_uint_lt(w.synced_seq, 5);
	c.fail_fsync = 0;
	/* The next append starts a new segment. */
	for (int i = 5; i < 8; i++) {
		a[i].seq = append_ok(&w, &a[i].b, a[i].ts);
		ck_assert_uint_eq(a[i].seq, (uint64_t)i + 1);
	}
	ck_assert_int_eq(tu_count_entries(dir, ".seg"), 2);
	ck_assert(tu_file_exists(seg_file(dir, 6)));
	writer_close_ok(&w);
	/* Nothing appended was lost by the failure. */
	rec *g;
	int ng = read_all(dir, 0, NULL, &g, NULL);
	rec **ex = ptrs(a, 0, 8);
	assert_same(g, ng, ex, 8);
	free(ex);
	recs_free(g, ng);
	for (int i = 0; i < 8; i++)
		tu_buf_free(&a[i].b);
	free(dir);
}
END_TEST

START_TEST(test_spare_becomes_next_segment)
{
	char *dir = tu_mkdtemp("segtest");
	seg_writer w;
	seg_open_report rep;
	seg_err e;
	memset(&e, 0, sizeof e);
	const size_t seg_bytes = 64 * KIB;
	writer_open_ok(&w, V, dir, seg_bytes, MAX_AGE_MS, 0, &rep);
	rec a[300];
	memset(a, 0, sizeof a);
	int n = 0;
	a[n].b = tu_prediction(0, 13);
	a[n].ts = V->now_ms(V);
	a[n].seq = append_ok(&w, &a[n].b, a[n].ts);
	n++;
	ck_assert_int_ne(seg_writer_wants_spare(&w), 0);
	seg_spare s;
	memset(&s, 0, sizeof s);
	ck_assert_int_eq(seg_spare_create(V, dir, seg_bytes, SEG_POPULATE_READ, &s, &e), 0);
	ck_assert_int_ge(s.fd, 0);
	ck_assert_ptr_nonnull(s.map);
	ck_assert_uint_eq(s.size, seg_bytes);
	ck_assert(tu_file_exists(tu_path(dir, SEG_SPARE_NAME)));
	ck_assert_uint_eq(tu_file_size(tu_path(dir, SEG_SPARE_NAME)), seg_bytes);
	seg_writer_give_spare(&w, &s);
	ck_assert_int_eq(seg_writer_wants_spare(&w), 0);
	/* A reader ignores the spare. */
	rec *g;
	int ng = read_all(dir, 0, NULL, &g, NULL);
	ck_assert_int_eq(ng, 1);
	recs_free(g, ng);
	/* Fill past one segment: the spare becomes the next one. */
	while (tu_count_entries(dir, ".seg") < 2) {
		ck_assert_int_lt(n, 300);
		a[n].b = tu_prediction((uint64_t)n, 13);
		a[n].ts = V->now_ms(V);
		a[n].seq = append_ok(&w, &a[n].b, a[n].ts);
		ck_assert_uint_eq(a[n].seq, (uint64_t)n + 1);
		n++;
	}
	ck_assert(!tu_file_exists(tu_path(dir, SEG_SPARE_NAME)));
	ck_assert(tu_file_exists(seg_file(dir, (uint64_t)n)));
	ck_assert_int_ne(seg_writer_wants_spare(&w), 0);
	/* Another spare, left with the writer at close: removed. */
	memset(&s, 0, sizeof s);
	ck_assert_int_eq(seg_spare_create(V, dir, seg_bytes, SEG_POPULATE_READ, &s, &e), 0);
	seg_writer_give_spare(&w, &s);
	writer_close_ok(&w);
	ck_assert(!tu_file_exists(tu_path(dir, SEG_SPARE_NAME)));
	dmg_log *d = dmg_new();
	ng = read_all(dir, 0, d, &g, NULL);
	rec **ex = ptrs(a, 0, n);
	assert_same(g, ng, ex, n);
	ck_assert_int_eq(d->n, 0);
	free(ex);
	free(d);
	recs_free(g, ng);
	for (int i = 0; i < n; i++)
		tu_buf_free(&a[i].b);
	free(dir);
}
END_TEST

START_TEST(test_spare_discard_removes_file)
{
	char *dir = tu_mkdtemp("segtest");
	seg_spare s;
	seg_err e;
	memset(&s, 0, sizeof s);
	memset(&e, 0, sizeof e);
	ck_assert_int_eq(seg_spare_create(V, dir, 64 * KIB, SEG_POPULATE_READ, &s, &e), 0);
	ck_assert(tu_file_exists(tu_path(dir, SEG_SPARE_NAME)));
	seg_spare_discard(V, dir, &s);
	ck_assert(!tu_file_exists(tu_path(dir, SEG_SPARE_NAME)));
	ck_assert_int_eq(s.fd, -1);
	free(dir);
}
END_TEST

START_TEST(test_writer_refuses_newer_format_segment)
{
	char *dir = tu_mkdtemp("segtest");
	rec *a = write_log(dir, 64 * KIB, 5, 14);
	/* A newer program left a segment after ours. */
	seg_header h = mk_hdr(100, V->now_ms(V), 1234);
	h.version = SEG_FORMAT_VERSION + 1;
	uint8_t *img = calloc(1, 64 * KIB);
	ck_assert_ptr_nonnull(img);
	seg_header_encode(&h, img);
	tu_write_file(seg_file(dir, 100), img, 64 * KIB);

	/* Reading it: EDGELOG_EVERSION, at init or when reaching it. */
	seg_reader r;
	seg_err e;
	memset(&r, 0, sizeof r);
	memset(&e, 0, sizeof e);
	int rc = seg_reader_init(&r, V, seg_file(dir, 100), 0, &e);
	if (rc == 0) {
		seg_frame f;
		rc = seg_reader_next(&r, &f, &e);
		seg_reader_close(&r);
	}
	ck_assert_int_eq(rc, EDGELOG_EVERSION);

	/* Writing after it: refused, and the file left as it was. */
	seg_writer w;
	seg_open_report rep;
	memset(&e, 0, sizeof e);
	rc = seg_writer_open(&w, V, dir, 64 * KIB, MAX_AGE_MS, 0, &rep, &e);
	ck_assert_int_eq(rc, EDGELOG_EVERSION);
	ck_assert(tu_file_exists(seg_file(dir, 100)));
	tu_buf now = tu_read_file(seg_file(dir, 100));
	ck_assert_uint_eq(now.len, 64 * KIB);
	ck_assert(!memcmp(now.data, img, now.len));
	tu_buf_free(&now);
	free(img);
	recs_free(a, 5);
	free(dir);
}
END_TEST

START_TEST(test_writer_quarantines_unreadable_newest_segment)
{
	char *dir = tu_mkdtemp("segtest");
	const int n = 40;
	rec *a = write_log(dir, 64 * KIB, n, 15);
	/* Garbage where the header of a newer segment should be. */
	uint8_t *img = malloc(64 * KIB);
	ck_assert_ptr_nonnull(img);
	uint64_t st = 15;
	for (size_t i = 0; i < 64 * KIB; i++)
		img[i] = (uint8_t)tu_rand(&st);
	const char *bad = seg_file(dir, 1000);
	char badpath[4300];
	snprintf(badpath, sizeof badpath, "%s.bad", bad);
	tu_write_file(bad, img, 64 * KIB);
	seg_writer w;
	seg_open_report rep;
	writer_open_ok(&w, V, dir, 64 * KIB, MAX_AGE_MS, 0, &rep);
	ck_assert_uint_eq(rep.quarantined, 1);
	ck_assert_uint_eq(rep.last_seq, (uint64_t)n);
	ck_assert(!tu_file_exists(seg_file(dir, 1000)));
	ck_assert(tu_file_exists(badpath));
	tu_buf b = tu_prediction(99, 15);
	/* FORMAT.md: any seq the quarantined file could have held may have
	 * been handed out (and sent): its base plus one per smallest frame
	 * (17 bytes) after the header. The next seq is above all of them. */
	uint64_t seq = append_ok(&w, &b, V->now_ms(V));
	ck_assert_uint_eq(seq, 1000 + (64 * KIB - 64) / 17 + 1);
	ck_assert_uint_eq(rep.bad_seq_bound, seq);
	writer_close_ok(&w);
	rec *g;
	dmg_log *d = dmg_new();
	int ng = read_all(dir, 0, d, &g, NULL);
	ck_assert_int_eq(ng, n + 1);
	rec **ex = ptrs(a, 0, n);
	assert_same(g, n, ex, n);
	ck_assert_uint_eq(g[n].seq, seq);
	recs_free(g, ng);

	/* A valid header whose base_seq does not match the file name (a
	 * copied file) is quarantined too. */
	tu_buf one = tu_read_file(seg_file(dir, 1));
	tu_write_file(seg_file(dir, 2000), one.data, one.len);
	uint64_t copied = one.len;
	tu_buf_free(&one);
	writer_open_ok(&w, V, dir, 64 * KIB, MAX_AGE_MS, 0, &rep);
	ck_assert_uint_eq(rep.quarantined, 1);
	ck_assert(!tu_file_exists(seg_file(dir, 2000)));
	snprintf(badpath, sizeof badpath, "%s.bad", seg_file(dir, 2000));
	ck_assert(tu_file_exists(badpath));
	ck_assert_uint_eq(append_ok(&w, &b, V->now_ms(V)), 2000 + (copied - 64) / 17 + 1);
	writer_close_ok(&w);
	ng = read_all(dir, 0, d, &g, NULL);
	ck_assert_int_eq(ng, n + 2);
	ck_assert_int_eq(d->n, 0);
	free(ex);
	free(d);
	recs_free(g, ng);
	tu_buf_free(&b);
	free(img);
	recs_free(a, n);
	free(dir);
}
END_TEST

START_TEST(test_writer_seq_gap_beyond_delta_rolls)
{
	/* seg_format.h: SEG_MAX_DELTA is the largest seq_delta a frame can
	 * carry; a segment rolls before it. A cursor high-water mark far
	 * above the active segment's base must not wrap the delta. */
	char *dir = tu_mkdtemp("segtest");
	rec *a = write_log(dir, 64 * KIB, 2, 31);
	seg_writer w;
	seg_open_report rep;
	uint64_t far = 1 + (uint64_t)SEG_MAX_DELTA + 10;
	writer_open_ok(&w, V, dir, 64 * KIB, MAX_AGE_MS, far, &rep);
	a = realloc(a, 4 * sizeof *a);
	ck_assert_ptr_nonnull(a);
	for (int i = 2; i < 4; i++) {
		a[i].b = tu_prediction((uint64_t)i, 31);
		a[i].ts = V->now_ms(V);
		a[i].seq = append_ok(&w, &a[i].b, a[i].ts);
	}
	ck_assert_uint_ge(a[2].seq, far);
	ck_assert_uint_eq(a[3].seq, a[2].seq + 1);
	writer_close_ok(&w);
	ck_assert(tu_file_exists(seg_file(dir, a[2].seq)));
	rec *g;
	dmg_log *d = dmg_new();
	int ng = read_all(dir, 0, d, &g, NULL);
	rec **ex = ptrs(a, 0, 4);
	assert_same(g, ng, ex, 4);
	ck_assert_int_eq(d->n, 0);
	free(ex);
	free(d);
	recs_free(g, ng);
	recs_free(a, 4);
	free(dir);
}
END_TEST

START_TEST(test_reader_skips_segment_with_damaged_header)
{
	/* A sealed segment whose header no longer verifies cannot be read
	 * (no salt): reported as one damaged range, and the reader goes on
	 * with the next segment. */
	char *dir = tu_mkdtemp("segtest");
	const int n = 600;
	rec *a = write_log(dir, 64 * KIB, n, 32);
	learn_offsets(a, n, dir);
	seg_list l = list_ok(dir);
	ck_assert_uint_ge(l.n, 3);
	const char *path = seg_file(dir, l.base[1]);
	tu_buf img = tu_read_file(path);
	img.data[33] ^= 0x01; /* a bit of the salt */
	tu_write_file(path, img.data, img.len);
	int lo = (int)l.base[1] - 1, hi = (int)l.base[2] - 1;
	rec **e = calloc(n, sizeof *e);
	int ne = 0;
	for (int i = 0; i < n; i++)
		if (i < lo || i >= hi)
			e[ne++] = &a[i];
	rec *g;
	dmg_log *d = dmg_new();
	int ng = read_all(dir, 0, d, &g, NULL);
	assert_same(g, ng, e, ne);
	ck_assert_int_eq(d->n, 1);
	char name[SEG_NAME_LEN + 1];
	seg_name(name, l.base[1]);
	ck_assert_str_eq(d->r[0].seg, name);
	ck_assert_uint_eq(d->r[0].off, 0);
	ck_assert_uint_eq(d->r[0].len, img.len);
	recs_free(g, ng);
	free(d);
	free(e);
	tu_buf_free(&img);
	seg_list_free(&l);
	recs_free(a, n);
	free(dir);
}
END_TEST

START_TEST(test_writer_removes_stillborn_newest_segment)
{
	/* FORMAT.md recovery step 2: a newest file shorter than a header, or
	 * all zeros, was created and never written: removed, and the next
	 * seq is above its base. */
	char *dir = tu_mkdtemp("segtest");
	const int n = 10;
	rec *a = write_log(dir, 64 * KIB, n, 26);
	uint8_t *z = calloc(1, 64 * KIB);
	ck_assert_ptr_nonnull(z);
	tu_write_file(seg_file(dir, 11), z, 64 * KIB);
	seg_writer w;
	seg_open_report rep;
	writer_open_ok(&w, V, dir, 64 * KIB, MAX_AGE_MS, 0, &rep);
	ck_assert(!tu_file_exists(seg_file(dir, 11)));
	ck_assert_uint_eq(rep.quarantined, 0);
	ck_assert_uint_eq(rep.torn_tails, 0);
	ck_assert_uint_eq(rep.segments, 1);
	ck_assert_uint_eq(rep.last_seq, (uint64_t)n);
	a[n].b = tu_prediction((uint64_t)n, 26);
	a[n].ts = V->now_ms(V);
	a[n].seq = append_ok(&w, &a[n].b, a[n].ts);
	ck_assert_uint_eq(a[n].seq, 12);
	writer_close_ok(&w);
	/* An empty file the same way. */
	tu_write_file(seg_file(dir, 13), "", 0);
	writer_open_ok(&w, V, dir, 64 * KIB, MAX_AGE_MS, 0, &rep);
	ck_assert(!tu_file_exists(seg_file(dir, 13)));
	ck_assert_uint_eq(rep.last_seq, 12);
	tu_buf b = tu_prediction(77, 26);
	ck_assert_uint_eq(append_ok(&w, &b, V->now_ms(V)), 14);
	writer_close_ok(&w);
	rec *g;
	dmg_log *d = dmg_new();
	int ng = read_all(dir, 0, d, &g, NULL);
	rec **ex = ptrs(a, 0, n + 1);
	ck_assert_int_eq(ng, n + 2);
	assert_same(g, n + 1, ex, n + 1);
	ck_assert_uint_eq(g[n + 1].seq, 14);
	ck_assert_int_eq(d->n, 0);
	free(ex);
	free(d);
	recs_free(g, ng);
	tu_buf_free(&b);
	free(z);
	recs_free(a, n + 1);
	free(dir);
}
END_TEST

START_TEST(test_writer_removes_leftover_spare)
{
	char *dir = tu_mkdtemp("segtest");
	rec *a = write_log(dir, 64 * KIB, 3, 27);
	uint8_t junk[4096];
	memset(junk, 0x5c, sizeof junk);
	tu_write_file(tu_path(dir, SEG_SPARE_NAME), junk, sizeof junk);
	rec *g;
	int ng = read_all(dir, 0, NULL, &g, NULL); /* readers ignore it */
	ck_assert_int_eq(ng, 3);
	recs_free(g, ng);
	seg_writer w;
	seg_open_report rep;
	writer_open_ok(&w, V, dir, 64 * KIB, MAX_AGE_MS, 0, &rep);
	ck_assert(!tu_file_exists(tu_path(dir, SEG_SPARE_NAME)));
	ck_assert_uint_eq(rep.last_seq, 3);
	writer_close_ok(&w);
	recs_free(a, 3);
	free(dir);
}
END_TEST

static tu_buf bin_record(uint32_t len, uint64_t seed)
{
	tu_buf b = {mk_bin32(len, seed), len};
	return b;
}

START_TEST(test_writer_oversized_record_gets_own_segment)
{
	/* FORMAT.md: one record larger than a segment gets a segment of its
	 * own, sized to fit. */
	char *dir = tu_mkdtemp("segtest");
	seg_writer w;
	seg_open_report rep;
	const size_t seg_bytes = 64 * KIB;
	writer_open_ok(&w, V, dir, seg_bytes, MAX_AGE_MS, 0, &rep);
	rec a[10];
	memset(a, 0, sizeof a);
	for (int i = 0; i < 10; i++) {
		if (i == 3)
			a[i].b = bin_record(200 * KIB, 1);
		else if (i == 6)
			a[i].b = bin_record(SEG_MAX_PAYLOAD, 2);
		else
			a[i].b = tu_prediction((uint64_t)i, 28);
		ck_assert_uint_eq(seg_mp_validate(a[i].b.data, a[i].b.len), 0);
		a[i].ts = V->now_ms(V);
		a[i].seq = append_ok(&w, &a[i].b, a[i].ts);
		ck_assert_uint_eq(a[i].seq, (uint64_t)i + 1);
	}
	writer_close_ok(&w);
	ck_assert_uint_ge(tu_file_size(seg_file(dir, 4)),
			  SEG_HEADER_SIZE + SEG_FRAME_HEADER + 200 * KIB);
	ck_assert_uint_ge(tu_file_size(seg_file(dir, 7)),
			  SEG_HEADER_SIZE + SEG_FRAME_HEADER + SEG_MAX_PAYLOAD);
	rec *g;
	dmg_log *d = dmg_new();
	int ng = read_all(dir, 0, d, &g, NULL);
	rec **ex = ptrs(a, 0, 10);
	assert_same(g, ng, ex, 10);
	ck_assert_int_eq(d->n, 0);
	ck_assert_uint_eq(g[3].base, 4);
	ck_assert_uint_eq(g[4].base, 5);
	ck_assert_uint_eq(g[6].base, 7);
	ck_assert_uint_eq(g[7].base, 8);
	free(ex);
	free(d);
	recs_free(g, ng);
	for (int i = 0; i < 10; i++)
		tu_buf_free(&a[i].b);
	free(dir);
}
END_TEST

START_TEST(test_writer_oversized_record_after_torn_first_frame)
{
	/* The newest segment's only frame was torn by the crash, so after
	 * recovery it holds no frame and next_seq equals its base. The first
	 * append is larger than a segment: it needs a segment of its own,
	 * whose name is that same base. */
	char *dir = tu_mkdtemp("segtest");
	const size_t seg_bytes = 64 * KIB;
	seg_writer w;
	seg_open_report rep;
	seg_err err;
	memset(&err, 0, sizeof err);
	writer_open_ok(&w, V, dir, seg_bytes, MAX_AGE_MS, 0, &rep);
	rec a[8];
	memset(a, 0, sizeof a);
	for (int i = 0; i < 6; i++) {
		if (i == 5)
			ck_assert_int_eq(seg_writer_roll(&w, &err), 0);
		a[i].b = tu_prediction((uint64_t)i, 29);
		a[i].ts = V->now_ms(V);
		a[i].seq = append_ok(&w, &a[i].b, a[i].ts);
	}
	writer_close_ok(&w);
	learn_offsets(a, 6, dir);
	ck_assert_uint_eq(a[5].base, 6);
	/* Tear frame 6: its second half never reached the disk. */
	tu_buf img = tu_read_file(seg_file(dir, 6));
	uint64_t half = a[5].off + (SEG_FRAME_HEADER + a[5].b.len) / 2;
	memset(img.data + half, 0, frame_end(&a[5]) - half);
	tu_write_file(seg_file(dir, 6), img.data, img.len);
	tu_buf_free(&img);
	tu_buf_free(&a[5].b);

	writer_open_ok(&w, V, dir, seg_bytes, MAX_AGE_MS, 0, &rep);
	ck_assert_uint_eq(rep.torn_tails, 1);
	ck_assert_uint_eq(rep.last_seq, 5);
	a[5].b = bin_record(200 * KIB, 3);
	a[5].ts = V->now_ms(V);
	uint64_t seq = 0;
	int rc = seg_writer_append(&w, a[5].b.data, (uint32_t)a[5].b.len, a[5].ts, &seq, &err);
	ck_assert_msg(rc == 0, "oversized append after a torn first frame: %d (%s)", rc, err.msg);
	a[5].seq = seq;
	ck_assert_uint_eq(seq, 6);
	a[6].b = tu_prediction(6, 29);
	a[6].ts = V->now_ms(V);
	a[6].seq = append_ok(&w, &a[6].b, a[6].ts);
	ck_assert_uint_eq(a[6].seq, 7);
	writer_close_ok(&w);
	rec *g;
	dmg_log *d = dmg_new();
	int ng = read_all(dir, 0, d, &g, NULL);
	rec **ex = ptrs(a, 0, 7);
	assert_same(g, ng, ex, 7);
	ck_assert_int_eq(d->n, 0);
	free(ex);
	free(d);
	recs_free(g, ng);
	for (int i = 0; i < 7; i++)
		tu_buf_free(&a[i].b);
	free(dir);
}
END_TEST

/* ------------------------------------------------------------------------
 * 4. Torn tail at every byte offset
 */

enum {
	TORN_ZEROS = 0,
	TORN_GARBAGE = 1
};

static void torn_tail_every_offset(int variant)
{
	char *top = tu_mkdtemp("segtorn");
	char src[4200], work[4200];
	snprintf(src, sizeof src, "%s/src", top);
	snprintf(work, sizeof work, "%s/work", top);
	ck_assert_int_eq(mkdir(work, 0700), 0);
	const int n = 50;
	const size_t seg_bytes = 64 * KIB;
	rec *a = write_log(src, seg_bytes, n, 16);
	learn_offsets(a, n, src);
	ck_assert_uint_eq(a[n - 1].base, 1); /* all in one segment */
	char name[SEG_NAME_LEN + 1];
	seg_name(name, 1);
	tu_buf orig = tu_read_file(tu_path(src, name));
	uint64_t lo = a[n - 3].off, hi = frame_end(&a[n - 1]);
	ck_assert_uint_le(hi, orig.len);
	ck_assert(all_zero(orig.data + hi, orig.len - hi));
	uint8_t *img = malloc(orig.len);
	ck_assert_ptr_nonnull(img);
	uint64_t st = 1600 + (uint64_t)variant;
	tu_buf extra[2] = {tu_prediction(1000, 16), tu_prediction(1001, 16)};
	int torn_seen = 0, clean_seen = 0;

	for (uint64_t cut = lo; cut <= hi; cut++) {
		memcpy(img, orig.data, orig.len);
		memset(img + cut, 0, orig.len - cut);
		if (variant == TORN_GARBAGE)
			for (uint64_t i = cut; i < hi; i++)
				img[i] = (uint8_t)(1 + tu_rand_below(&st, 255));
		/* Frames wholly before the cut survive; the boundary b is where
		 * the first lost frame started. */
		int k = 0;
		while (k < n && frame_end(&a[k]) <= cut)
			k++;
		uint64_t b = k ? frame_end(&a[k - 1]) : SEG_HEADER_SIZE;
		int torn = !all_zero(img + b, orig.len - b);
		if (torn)
			torn_seen++;
		else
			clean_seen++;

		tu_empty_dir(work);
		tu_write_file(tu_path(work, name), img, orig.len);
		seg_writer w;
		seg_open_report rep;
		writer_open_ok(&w, V, work, seg_bytes, MAX_AGE_MS, 0, &rep);
		ck_assert_msg(rep.torn_tails == (uint64_t)torn,
			      "cut at %" PRIu64 " (frame boundary %" PRIu64 "): torn_tails %" PRIu64
			      ", expected %d",
			      cut, b, rep.torn_tails, torn);
		if (torn) {
			ck_assert_msg(rep.torn_bytes > 0 && rep.torn_bytes <= orig.len - b,
				      "cut %" PRIu64 ": torn_bytes %" PRIu64, cut, rep.torn_bytes);
		} else {
			ck_assert_uint_eq(rep.torn_bytes, 0);
		}
		ck_assert_msg(rep.last_seq == (uint64_t)k,
			      "cut %" PRIu64 ": last_seq %" PRIu64 ", expected %d", cut,
			      rep.last_seq, k);
		ck_assert_uint_eq(rep.first_seq, 1);
		ck_assert_uint_eq(rep.segments, 1);
		ck_assert_uint_eq(rep.corrupt, 0);
		ck_assert_uint_eq(rep.quarantined, 0);
		/* The torn bytes are zeroed on disk; what survived is intact. */
		tu_buf now = tu_read_file(tu_path(work, name));
		ck_assert_uint_ge(now.len, b);
		ck_assert_msg(!memcmp(now.data, orig.data, b),
			      "cut %" PRIu64 ": surviving bytes changed", cut);
		ck_assert_msg(all_zero(now.data + b, now.len - b),
			      "cut %" PRIu64 ": nonzero bytes left after the last valid frame",
			      cut);
		tu_buf_free(&now);

		rec more[2];
		memset(more, 0, sizeof more);
		for (int i = 0; i < 2; i++) {
			more[i].b = extra[i];
			more[i].ts = a[n - 1].ts + 1 + i;
			more[i].seq = append_ok(&w, &more[i].b, more[i].ts);
			ck_assert_msg(more[i].seq == (uint64_t)k + 1 + (uint64_t)i,
				      "cut %" PRIu64 ": new seq %" PRIu64 " after last survivor %d",
				      cut, more[i].seq, k);
		}
		writer_close_ok(&w);

		dmg_log d;
		d.n = 0;
		rec *g;
		int ng = read_all(work, 0, &d, &g, NULL);
		ck_assert_msg(d.n == 0, "cut %" PRIu64 ": reader saw %d damaged ranges", cut, d.n);
		rec *exp[64];
		for (int i = 0; i < k; i++)
			exp[i] = &a[i];
		exp[k] = &more[0];
		exp[k + 1] = &more[1];
		assert_same(g, ng, exp, k + 2);
		recs_free(g, ng);
	}
	/* Both outcomes were exercised. */
	ck_assert_int_gt(torn_seen, 0);
	if (variant == TORN_ZEROS)
		ck_assert_int_ge(clean_seen, 3);
	else
		ck_assert_int_ge(clean_seen, 1);
	tu_buf_free(&extra[0]);
	tu_buf_free(&extra[1]);
	free(img);
	tu_buf_free(&orig);
	recs_free(a, n);
	free(top);
}

START_TEST(test_torn_tail_every_offset_zeros)
{
	torn_tail_every_offset(TORN_ZEROS);
}
END_TEST

START_TEST(test_torn_tail_every_offset_garbage)
{
	torn_tail_every_offset(TORN_GARBAGE);
}
END_TEST

/* ------------------------------------------------------------------------
 * 5. Random bit flips
 */

/* Index of the frame holding byte pos, or -1. */
static int frame_at(const rec *a, int n, uint64_t pos)
{
	int lo = 0, hi = n - 1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		if (pos < a[mid].off)
			hi = mid - 1;
		else if (pos >= frame_end(&a[mid]))
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

static int range_overlaps_kept(const rec *a, int n, const int *hit, uint64_t off, uint64_t len)
{
	for (int i = 0; i < n; i++)
		if (!hit[i] && off < frame_end(&a[i]) && a[i].off < off + len)
			return i;
	return -1;
}

START_TEST(test_bitflips_skip_only_hit_records)
{
	const uint64_t seed = (uint64_t)_i / 5 + 1;
	const int K = _i % 5 + 1;
	char *top = tu_mkdtemp("segflip");
	char src[4200], work[4200];
	snprintf(src, sizeof src, "%s/src", top);
	snprintf(work, sizeof work, "%s/work", top);
	ck_assert_int_eq(mkdir(work, 0700), 0);
	const int n = 1000;
	rec *a = write_log(src, MIB, n, 17);
	learn_offsets(a, n, src);
	ck_assert_uint_eq(a[n - 1].base, 1);
	char name[SEG_NAME_LEN + 1];
	seg_name(name, 1);
	tu_buf img = tu_read_file(tu_path(src, name));
	uint64_t data_end = frame_end(&a[n - 1]);

	int *hit = calloc((size_t)n, sizeof *hit);
	uint64_t flips[8];
	uint64_t st = seed * 7919;
	for (int j = 0; j < K; j++) {
		uint64_t pos = SEG_HEADER_SIZE + tu_rand_below(&st, data_end - SEG_HEADER_SIZE);
		flips[j] = pos;
		img.data[pos] ^= (uint8_t)(1u << tu_rand_below(&st, 8));
		int fi = frame_at(a, n, pos);
		ck_assert_int_ge(fi, 0); /* frames are contiguous */
		hit[fi] = 1;
	}
	/* A bit flipped twice cancels out. */
	tu_buf clean = tu_read_file(tu_path(src, name));
	for (int i = 0; i < n; i++)
		if (hit[i] && !memcmp(img.data + a[i].off, clean.data + a[i].off,
				      SEG_FRAME_HEADER + a[i].b.len))
			hit[i] = 0;
	tu_buf_free(&clean);
	rec **exp = calloc((size_t)n, sizeof *exp);
	int nexp = 0;
	for (int i = 0; i < n; i++)
		if (!hit[i])
			exp[nexp++] = &a[i];

	/* The reader over the directory. */
	tu_write_file(tu_path(work, name), img.data, img.len);
	dmg_log *d = dmg_new();
	rec *g;
	uint64_t corrupt = 0;
	int ng = read_all(work, 0, d, &g, &corrupt);
	assert_same(g, ng, exp, nexp);
	for (int j = 0; j < d->n; j++) {
		ck_assert_str_eq(d->r[j].seg, name);
		ck_assert_uint_gt(d->r[j].len, 0);
		int ov = range_overlaps_kept(a, n, hit, d->r[j].off, d->r[j].len);
		ck_assert_msg(ov < 0, "damage [%" PRIu64 ", +%" PRIu64 ") covers intact frame %d",
			      d->r[j].off, d->r[j].len, ov);
	}
	int hit_inner = 0;
	for (int i = 0; i < n - 1; i++)
		hit_inner += hit[i];
	for (int j = 0; j < K; j++) {
		int fi = frame_at(a, n, flips[j]);
		if (!hit[fi] || fi == n - 1)
			continue; /* cancelled, or the newest frame (a torn tail) */
		int covered = 0;
		for (int q = 0; q < d->n; q++)
			covered |= flips[j] >= d->r[q].off && flips[j] < d->r[q].off + d->r[q].len;
		ck_assert_msg(covered, "flip at %" PRIu64 " (frame %d) not in any damaged range",
			      flips[j], fi);
	}
	ck_assert_int_le(d->n, hit_inner + hit[n - 1]);
	if (hit_inner)
		ck_assert_int_ge(d->n, 1);
	recs_free(g, ng);

	/* The scanner directly: FRAME / DAMAGE / END in order. */
	seg_scan s;
	ck_assert_int_eq(seg_scan_init(&s, img.data, img.len, 1), SEG_OK);
	ck_assert_uint_eq(s.pos, SEG_HEADER_SIZE);
	int next = 0, last_was_damage = 0, ndmg = 0, steps = 0;
	uint64_t dr_off[64], dr_len[64];
	for (;;) {
		ck_assert_int_lt(steps++, 3 * n);
		seg_frame f;
		uint64_t doff = 0, dlen = 0;
		size_t pos0 = s.pos;
		int rc = seg_scan_next(&s, &f, &doff, &dlen);
		if (rc == SEG_SCAN_FRAME) {
			ck_assert_int_lt(next, nexp);
			ck_assert_uint_eq(f.offset, exp[next]->off);
			ck_assert_uint_eq(f.seq, exp[next]->seq);
			ck_assert_int_eq(f.ts_ms, exp[next]->ts);
			ck_assert_uint_eq(f.len, exp[next]->b.len);
			ck_assert(!memcmp(f.data, exp[next]->b.data, f.len));
			ck_assert_uint_eq(s.pos, frame_end(exp[next]));
			next++;
			last_was_damage = 0;
		} else if (rc == SEG_SCAN_DAMAGE) {
			ck_assert_msg(!last_was_damage, "two DAMAGE results in a row");
			ck_assert_uint_gt(dlen, 0);
			ck_assert_uint_ge(doff, pos0);
			ck_assert_int_lt(ndmg, 64);
			int ov = range_overlaps_kept(a, n, hit, doff, dlen);
			ck_assert_msg(ov < 0,
				      "scan damage [%" PRIu64 ", +%" PRIu64 ") covers intact %d",
				      doff, dlen, ov);
			/* A valid frame starts at pos: the next kept one. */
			ck_assert_int_lt(next, nexp);
			ck_assert_uint_eq(s.pos, exp[next]->off);
			ck_assert_uint_le(doff + dlen, s.pos);
			dr_off[ndmg] = doff;
			dr_len[ndmg] = dlen;
			ndmg++;
			last_was_damage = 1;
		} else if (rc == SEG_SCAN_TAIL) {
			/* Only when the newest frame is the damaged one. */
			ck_assert_msg(hit[n - 1], "TAIL at %zu but the last frame is intact", pos0);
			ck_assert_int_eq(next, nexp);
			ck_assert_uint_eq(s.pos, pos0);
			ck_assert_uint_le(doff + dlen, img.len);
			ck_assert_uint_ge(doff + dlen, data_end);
			/* Calling again changes nothing. */
			ck_assert_int_eq(seg_scan_next(&s, &f, &doff, &dlen), SEG_SCAN_TAIL);
			ck_assert_uint_eq(s.pos, pos0);
			break;
		} else {
			ck_assert_int_eq(rc, SEG_SCAN_END);
			ck_assert_msg(!hit[n - 1], "END though the last frame is damaged");
			ck_assert_int_eq(next, nexp);
			ck_assert_uint_eq(s.pos, data_end);
			break;
		}
	}
	for (int j = 0; j < K; j++) {
		int fi = frame_at(a, n, flips[j]);
		if (!hit[fi] || fi == n - 1)
			continue;
		int covered = 0;
		for (int q = 0; q < ndmg; q++)
			covered |= flips[j] >= dr_off[q] && flips[j] < dr_off[q] + dr_len[q];
		ck_assert_msg(covered, "flip at %" PRIu64 " not in a DAMAGE range", flips[j]);
	}
	ck_assert_int_eq(ndmg, d->n - (hit[n - 1] && d->n > ndmg ? 1 : 0));

	free(d);
	free(exp);
	free(hit);
	tu_buf_free(&img);
	recs_free(a, n);
	free(top);
}
END_TEST

START_TEST(test_bitflip_in_newest_frame)
{
	char *dir = tu_mkdtemp("segflip");
	const int n = 30;
	rec *a = write_log(dir, MIB, n, 18);
	learn_offsets(a, n, dir);
	char name[SEG_NAME_LEN + 1];
	seg_name(name, 1);
	tu_buf img = tu_read_file(tu_path(dir, name));
	img.data[a[n - 1].off + SEG_FRAME_HEADER + 10] ^= 0x04;
	tu_write_file(tu_path(dir, name), img.data, img.len);
	rec *g;
	int ng = read_all(dir, 0, NULL, &g, NULL);
	rec **e = ptrs(a, 0, n - 1);
	assert_same(g, ng, e, n - 1);
	free(e);
	recs_free(g, ng);
	/* The writer treats it as a torn tail and continues at its seq. */
	seg_writer w;
	seg_open_report rep;
	writer_open_ok(&w, V, dir, MIB, MAX_AGE_MS, 0, &rep);
	ck_assert_uint_eq(rep.torn_tails, 1);
	ck_assert_uint_eq(rep.last_seq, (uint64_t)n - 1);
	ck_assert_uint_eq(append_ok(&w, &a[n - 1].b, a[n - 1].ts), (uint64_t)n);
	writer_close_ok(&w);
	dmg_log *d = dmg_new();
	ng = read_all(dir, 0, d, &g, NULL);
	e = ptrs(a, 0, n);
	assert_same(g, ng, e, n);
	ck_assert_int_eq(d->n, 0);
	free(e);
	free(d);
	recs_free(g, ng);
	tu_buf_free(&img);
	recs_free(a, n);
	free(dir);
}
END_TEST

/* ------------------------------------------------------------------------
 * 6. Zero-filled space, scanner corner cases
 */

/* Scan img expecting exactly frames a[idx[0..m)] then END at end_pos. */
static void scan_expect_frames_end(const tu_buf *img, int deep, rec *const *exp, int m,
				   uint64_t end_pos)
{
	seg_scan s;
	ck_assert_int_eq(seg_scan_init(&s, img->data, img->len, deep), SEG_OK);
	for (int i = 0; i < m; i++) {
		seg_frame f;
		uint64_t doff = 0, dlen = 0;
		int rc = seg_scan_next(&s, &f, &doff, &dlen);
		ck_assert_msg(rc == SEG_SCAN_FRAME, "deep %d, frame %d: scan_next = %d", deep, i,
			      rc);
		ck_assert_uint_eq(f.seq, exp[i]->seq);
		ck_assert_uint_eq(f.offset, exp[i]->off);
		ck_assert_uint_eq(f.len, exp[i]->b.len);
	}
	seg_frame f;
	uint64_t doff = 0, dlen = 0;
	ck_assert_int_eq(seg_scan_next(&s, &f, &doff, &dlen), SEG_SCAN_END);
	ck_assert_uint_eq(s.pos, end_pos);
	/* END is stable. */
	ck_assert_int_eq(seg_scan_next(&s, &f, &doff, &dlen), SEG_SCAN_END);
	ck_assert_uint_eq(s.pos, end_pos);
}

START_TEST(test_zero_tail_is_clean_end)
{
	char *dir = tu_mkdtemp("segzero");
	const int n = 20;
	rec *a = write_log(dir, MIB, n, 19);
	learn_offsets(a, n, dir);
	char name[SEG_NAME_LEN + 1];
	seg_name(name, 1);
	tu_buf img = tu_read_file(tu_path(dir, name));
	uint64_t end = frame_end(&a[n - 1]);
	ck_assert(all_zero(img.data + end, img.len - end));
	rec **e = ptrs(a, 0, n);
	scan_expect_frames_end(&img, 0, e, n, end);
	scan_expect_frames_end(&img, 1, e, n, end);
	/* Data right up to the end of the file, no zeros after it. */
	tu_buf cut = {img.data, end};
	scan_expect_frames_end(&cut, 0, e, n, end);
	scan_expect_frames_end(&cut, 1, e, n, end);
	/* A header and nothing else. */
	tu_buf hdr_only = {img.data, SEG_HEADER_SIZE};
	scan_expect_frames_end(&hdr_only, 1, e, 0, SEG_HEADER_SIZE);
	uint8_t *z = calloc(1, 64 * KIB);
	memcpy(z, img.data, SEG_HEADER_SIZE);
	tu_buf empty_seg = {z, 64 * KIB};
	scan_expect_frames_end(&empty_seg, 1, e, 0, SEG_HEADER_SIZE);
	free(z);
	dmg_log *d = dmg_new();
	rec *g;
	int ng = read_all(dir, 0, d, &g, NULL);
	assert_same(g, ng, e, n);
	ck_assert_int_eq(d->n, 0);
	recs_free(g, ng);
	free(d);
	free(e);
	tu_buf_free(&img);
	recs_free(a, n);
	free(dir);
}
END_TEST

START_TEST(test_scan_init_results)
{
	seg_scan s;
	uint8_t buf[SEG_HEADER_SIZE + 64];
	memset(buf, 0, sizeof buf);
	ck_assert_int_eq(seg_scan_init(&s, buf, sizeof buf, 1), SEG_EMPTY);
	seg_header h = mk_hdr(1, 1, 1);
	seg_header_encode(&h, buf);
	ck_assert_int_eq(seg_scan_init(&s, buf, SEG_HEADER_SIZE - 1, 1), SEG_SHORT);
	ck_assert_int_eq(seg_scan_init(&s, buf, 0, 1), SEG_SHORT);
	ck_assert_int_eq(seg_scan_init(&s, buf, sizeof buf, 1), SEG_OK);
	ck_assert_uint_eq(s.pos, SEG_HEADER_SIZE);
	ck_assert_uint_eq(s.hdr.base_seq, 1);
	buf[0] ^= 1;
	ck_assert_int_eq(seg_scan_init(&s, buf, sizeof buf, 1), SEG_BAD);
	h.version = SEG_FORMAT_VERSION + 1;
	seg_header_encode(&h, buf);
	ck_assert_int_eq(seg_scan_init(&s, buf, sizeof buf, 1), SEG_NEWER);
}
END_TEST

/* Build a segment image in memory: header, then the given frames. */
typedef struct mframe {
	uint32_t delta;
	int32_t tsd;
	tu_buf p;
	uint64_t off;
} mframe;

static tu_buf build_segment(const seg_header *h, mframe *fr, int m, size_t size)
{
	tu_buf img = {calloc(1, size), size};
	ck_assert_ptr_nonnull(img.data);
	seg_header_encode(h, img.data);
	size_t pos = SEG_HEADER_SIZE;
	for (int i = 0; i < m; i++) {
		ck_assert_uint_le(pos + SEG_FRAME_HEADER + fr[i].p.len, size);
		seg_frame_encode(img.data + pos, h->salt, fr[i].delta, fr[i].tsd, fr[i].p.data,
				 (uint32_t)fr[i].p.len);
		memcpy(img.data + pos + SEG_FRAME_HEADER, fr[i].p.data, fr[i].p.len);
		fr[i].off = pos;
		pos += SEG_FRAME_HEADER + fr[i].p.len;
	}
	return img;
}

START_TEST(test_scan_rejects_non_increasing_seq)
{
	seg_header h = mk_hdr(100, 1715678493000, 0xabcdef);
	mframe fr[6];
	uint32_t deltas[6] = {0, 1, 2, 1, 3, 3}; /* a replayed 1; a repeated 3 */
	for (int i = 0; i < 6; i++) {
		fr[i].delta = deltas[i];
		fr[i].tsd = i;
		fr[i].p = tu_prediction((uint64_t)i, 20);
	}
	/* Add a seventh, valid frame after the repeat. */
	mframe all[7];
	memcpy(all, fr, sizeof fr);
	all[6].delta = 4;
	all[6].tsd = 6;
	all[6].p = tu_prediction(6, 20);
	tu_buf img = build_segment(&h, all, 7, 16 * KIB);
	seg_scan s;
	ck_assert_int_eq(seg_scan_init(&s, img.data, img.len, 1), SEG_OK);
	int want[] = {0, 1, 2, -3, 4, -5, 6};
	for (int i = 0; i < 7; i++) {
		seg_frame f;
		uint64_t doff = 0, dlen = 0;
		int rc = seg_scan_next(&s, &f, &doff, &dlen);
		if (want[i] >= 0) {
			ck_assert_msg(rc == SEG_SCAN_FRAME, "step %d: %d", i, rc);
			ck_assert_uint_eq(f.seq, 100 + all[want[i]].delta);
			ck_assert_uint_eq(f.offset, all[want[i]].off);
		} else {
			int j = -want[i];
			ck_assert_msg(rc == SEG_SCAN_DAMAGE, "step %d (seq not increasing): %d", i,
				      rc);
			ck_assert_uint_eq(doff, all[j].off);
			ck_assert_uint_eq(doff + dlen, all[j + 1].off);
			ck_assert_uint_eq(s.pos, all[j + 1].off);
		}
	}
	seg_frame f;
	uint64_t doff, dlen;
	ck_assert_int_eq(seg_scan_next(&s, &f, &doff, &dlen), SEG_SCAN_END);
	for (int i = 0; i < 7; i++)
		tu_buf_free(&all[i].p);
	tu_buf_free(&img);
}
END_TEST

START_TEST(test_scan_partial_last_frame_is_tail)
{
	seg_header h = mk_hdr(1, 1715678493000, 0x77);
	mframe fr[3];
	for (int i = 0; i < 3; i++) {
		fr[i].delta = (uint32_t)i;
		fr[i].tsd = i;
		fr[i].p = tu_prediction((uint64_t)i, 21);
	}
	tu_buf img = build_segment(&h, fr, 3, 16 * KIB);
	uint64_t end = fr[2].off + SEG_FRAME_HEADER + fr[2].p.len;
	/* The last frame half written: its second half still zeros. */
	uint64_t half = fr[2].off + (SEG_FRAME_HEADER + fr[2].p.len) / 2;
	memset(img.data + half, 0, end - half);
	for (int deep = 0; deep < 2; deep++) {
		seg_scan s;
		ck_assert_int_eq(seg_scan_init(&s, img.data, img.len, deep), SEG_OK);
		seg_frame f;
		uint64_t doff = 0, dlen = 0;
		ck_assert_int_eq(seg_scan_next(&s, &f, &doff, &dlen), SEG_SCAN_FRAME);
		ck_assert_int_eq(seg_scan_next(&s, &f, &doff, &dlen), SEG_SCAN_FRAME);
		ck_assert_uint_eq(s.pos, fr[2].off);
		ck_assert_int_eq(seg_scan_next(&s, &f, &doff, &dlen), SEG_SCAN_TAIL);
		ck_assert_uint_eq(s.pos, fr[2].off);
		ck_assert_uint_ge(doff + dlen, half);
		ck_assert_uint_le(doff + dlen, img.len);
		/* The writer finishes the frame: the scan picks it up. */
		memcpy(img.data + half, fr[2].p.data + (half - fr[2].off - SEG_FRAME_HEADER),
		       end - half);
		ck_assert_int_eq(seg_scan_next(&s, &f, &doff, &dlen), SEG_SCAN_FRAME);
		ck_assert_uint_eq(f.seq, 3);
		ck_assert_int_eq(seg_scan_next(&s, &f, &doff, &dlen), SEG_SCAN_END);
		memset(img.data + half, 0, end - half);
	}
	/* A frame header cut short by the end of the buffer. */
	tu_buf cut = {img.data, fr[2].off + 7};
	memcpy(img.data + half, fr[2].p.data + (half - fr[2].off - SEG_FRAME_HEADER), end - half);
	seg_scan s;
	ck_assert_int_eq(seg_scan_init(&s, cut.data, cut.len, 1), SEG_OK);
	seg_frame f;
	uint64_t doff = 0, dlen = 0;
	ck_assert_int_eq(seg_scan_next(&s, &f, &doff, &dlen), SEG_SCAN_FRAME);
	ck_assert_int_eq(seg_scan_next(&s, &f, &doff, &dlen), SEG_SCAN_FRAME);
	ck_assert_int_eq(seg_scan_next(&s, &f, &doff, &dlen), SEG_SCAN_TAIL);
	ck_assert_uint_eq(s.pos, fr[2].off);
	for (int i = 0; i < 3; i++)
		tu_buf_free(&fr[i].p);
	tu_buf_free(&img);
}
END_TEST

START_TEST(test_zero_hole_deep_scan_reports_damage)
{
	char *dir = tu_mkdtemp("segzero");
	const int n = 30, hole = 10;
	rec *a = write_log(dir, MIB, n, 22);
	learn_offsets(a, n, dir);
	char name[SEG_NAME_LEN + 1];
	seg_name(name, 1);
	tu_buf img = tu_read_file(tu_path(dir, name));
	uint64_t end = frame_end(&a[n - 1]);
	for (int variant = 0; variant < 2; variant++) {
		/* 0: the whole frame zeroed (a lost page); 1: only its header. */
		tu_buf m = {malloc(img.len), img.len};
		memcpy(m.data, img.data, img.len);
		uint64_t zlen = variant ? SEG_FRAME_HEADER : SEG_FRAME_HEADER + a[hole].b.len;
		memset(m.data + a[hole].off, 0, zlen);

		/* seg_scan.h: a zero header ends the data only when zeros follow
		 * to the end of buf (SEG_SCAN_END), deep or not: the hole is
		 * damage and the frames after it are read. */
		for (int deep = 0; deep < 2; deep++) {
			seg_scan s;
			ck_assert_int_eq(seg_scan_init(&s, m.data, m.len, deep), SEG_OK);
			for (int i = 0; i < n; i++) {
				seg_frame f;
				uint64_t doff = 0, dlen = 0;
				int rc = seg_scan_next(&s, &f, &doff, &dlen);
				if (i == hole) {
					ck_assert_msg(rc == SEG_SCAN_DAMAGE,
						      "variant %d: at hole: %d", variant, rc);
					ck_assert_uint_eq(doff, a[hole].off);
					ck_assert_uint_eq(doff + dlen, a[hole + 1].off);
					ck_assert_uint_eq(s.pos, a[hole + 1].off);
					continue;
				}
				ck_assert_msg(rc == SEG_SCAN_FRAME, "variant %d, frame %d: %d",
					      variant, i, rc);
				ck_assert_uint_eq(f.seq, a[i].seq);
				ck_assert(!memcmp(f.data, a[i].b.data, f.len));
			}
			seg_frame f;
			uint64_t doff, dlen;
			ck_assert_int_eq(seg_scan_next(&s, &f, &doff, &dlen), SEG_SCAN_END);
			ck_assert_uint_eq(s.pos, end);
		}
		tu_buf_free(&m);
	}
	tu_buf_free(&img);
	recs_free(a, n);
	free(dir);
}
END_TEST

/* A log of n predictions; frames [0, roll_after) in segment 1, the rest in
 * a second segment (roll_after >= n: one segment). */
static rec *write_log_rolled(const char *dir, int n, int roll_after, uint64_t seed)
{
	seg_writer w;
	seg_open_report rep;
	seg_err err;
	memset(&err, 0, sizeof err);
	writer_open_ok(&w, V, dir, MIB, MAX_AGE_MS, 0, &rep);
	rec *a = calloc((size_t)n + 8, sizeof *a);
	ck_assert_ptr_nonnull(a);
	for (int i = 0; i < n; i++) {
		if (i == roll_after)
			ck_assert_int_eq(seg_writer_roll(&w, &err), 0);
		a[i].b = tu_prediction((uint64_t)i, seed);
		a[i].ts = V->now_ms(V);
		a[i].seq = append_ok(&w, &a[i].b, a[i].ts);
		ck_assert_uint_eq(a[i].seq, (uint64_t)i + 1);
	}
	writer_close_ok(&w);
	learn_offsets(a, n, dir);
	return a;
}

/* Zero frame a[i] in its segment file (a block lost by a power cut). */
static void zero_frame(const char *dir, const rec *a, int i)
{
	const char *path = seg_file(dir, a[i].base);
	tu_buf img = tu_read_file(path);
	memset(img.data + a[i].off, 0, SEG_FRAME_HEADER + a[i].b.len);
	tu_write_file(path, img.data, img.len);
	tu_buf_free(&img);
}

START_TEST(test_zero_hole_in_sealed_segment_skipped)
{
	char *dir = tu_mkdtemp("segzero");
	const int n = 50, hole = 10;
	rec *a = write_log_rolled(dir, n, 30, 23);
	ck_assert_uint_eq(a[29].base, 1);
	ck_assert_uint_eq(a[30].base, 31);
	zero_frame(dir, a, hole);
	rec **e = calloc(n, sizeof *e);
	int ne = 0;
	for (int i = 0; i < n; i++)
		if (i != hole)
			e[ne++] = &a[i];
	dmg_log *d = dmg_new();
	rec *g;
	int ng = read_all(dir, 0, d, &g, NULL);
	assert_same(g, ng, e, ne);
	ck_assert_int_eq(d->n, 1);
	char n1[SEG_NAME_LEN + 1];
	seg_name(n1, 1);
	ck_assert_str_eq(d->r[0].seg, n1);
	ck_assert_uint_eq(d->r[0].off, a[hole].off);
	ck_assert_uint_eq(d->r[0].len, SEG_FRAME_HEADER + a[hole].b.len);
	recs_free(g, ng);
	/* Single-file mode reads a file deep as well. */
	ng = read_all(seg_file(dir, 1), 0, d, &g, NULL);
	assert_same(g, ng, e, 29);
	ck_assert_int_eq(d->n, 1);
	recs_free(g, ng);
	free(d);
	free(e);
	recs_free(a, n);
	free(dir);
}
END_TEST

/* A zeroed hole in the newest (live) segment is damage at once (a zero
 * header ends the data only when zeros follow to the end): the frames after
 * it are returned without waiting for a roll, and once a newer segment
 * exists, the final deep rescan does not report the hole a second time. */
START_TEST(test_zero_hole_in_live_segment_skipped_once)
{
	char *dir = tu_mkdtemp("segzero");
	const int n = 30, hole = 10;
	rec *a = write_log_rolled(dir, n, n, 24);
	zero_frame(dir, a, hole);
	seg_reader r;
	seg_err err;
	memset(&r, 0, sizeof r);
	memset(&err, 0, sizeof err);
	ck_assert_int_eq(seg_reader_init(&r, V, dir, 0, &err), 0);
	dmg_log *d = dmg_new();
	r.on_damage = dmg_cb;
	r.ud = d;
	seg_frame f;
	for (int i = 0; i < n; i++) {
		if (i == hole)
			continue;
		int rc = seg_reader_next(&r, &f, &err);
		ck_assert_msg(rc == 0, "record %d: %d", i, rc);
		ck_assert_uint_eq(f.seq, a[i].seq);
		ck_assert(!memcmp(f.data, a[i].b.data, f.len));
	}
	ck_assert_int_eq(seg_reader_next(&r, &f, &err), EDGELOG_EOF);
	ck_assert_int_eq(d->n, 1);
	ck_assert_uint_eq(d->r[0].off, a[hole].off);
	ck_assert_uint_eq(d->r[0].len, SEG_FRAME_HEADER + a[hole].b.len);

	/* Recovery keeps the frames after the hole; a roll seals the segment. */
	seg_writer w;
	seg_open_report rep;
	writer_open_ok(&w, V, dir, MIB, MAX_AGE_MS, 0, &rep);
	ck_assert_uint_eq(rep.torn_tails, 0);
	ck_assert_uint_eq(rep.corrupt, 1);
	ck_assert_uint_eq(rep.last_seq, (uint64_t)n);
	ck_assert_int_eq(seg_writer_roll(&w, &err), 0);
	a[n].b = tu_prediction((uint64_t)n, 24);
	a[n].ts = V->now_ms(V);
	a[n].seq = append_ok(&w, &a[n].b, a[n].ts);
	ck_assert_uint_eq(a[n].seq, (uint64_t)n + 1);
	writer_close_ok(&w);

	ck_assert_int_eq(seg_reader_next(&r, &f, &err), 0);
	ck_assert_uint_eq(f.seq, a[n].seq);
	ck_assert(!memcmp(f.data, a[n].b.data, f.len));
	ck_assert_int_eq(seg_reader_next(&r, &f, &err), EDGELOG_EOF);
	ck_assert_int_eq(d->n, 1);
	ck_assert_uint_eq(r.corrupt, 1);
	seg_reader_close(&r);
	free(d);
	recs_free(a, n + 1);
	free(dir);
}
END_TEST

/* design.md guarantee 4: a damaged range inside a segment is skipped and
 * the frames after it are still read. After a power cut leaves a zeroed
 * block in the active segment and the writer reopens (recovery keeps the
 * frames after the hole and appends after them), a reader must see those
 * frames and the new appends - not stop at the hole until the segment
 * happens to roll (up to segment_max_age later). */
START_TEST(test_zero_hole_in_active_segment_visible_after_recovery)
{
	char *dir = tu_mkdtemp("segzero");
	const int n = 30, hole = 10;
	rec *a = write_log_rolled(dir, n, n, 25);
	zero_frame(dir, a, hole);
	seg_writer w;
	seg_open_report rep;
	writer_open_ok(&w, V, dir, MIB, MAX_AGE_MS, 0, &rep);
	ck_assert_uint_eq(rep.torn_tails, 0);
	ck_assert_uint_eq(rep.torn_bytes, 0);
	ck_assert_uint_eq(rep.corrupt, 1);
	ck_assert_uint_eq(rep.last_seq, (uint64_t)n);
	ck_assert_uint_eq(rep.first_seq, 1);
	ck_assert_uint_eq(rep.segments, 1);
	a[n].b = tu_prediction((uint64_t)n, 25);
	a[n].ts = V->now_ms(V);
	a[n].seq = append_ok(&w, &a[n].b, a[n].ts);
	ck_assert_uint_eq(a[n].seq, (uint64_t)n + 1);

	rec **e = calloc(n + 2, sizeof *e);
	int ne = 0;
	for (int i = 0; i <= n; i++)
		if (i != hole)
			e[ne++] = &a[i];
	/* While the writer is open (the uploader's view) and after close. */
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1)
			writer_close_ok(&w);
		dmg_log *d = dmg_new();
		rec *g;
		int ng = read_all(dir, 0, d, &g, NULL);
		ck_assert_msg(ng == ne,
			      "pass %d: reader returned %d records of %d (stopped at the "
			      "zeroed frame at offset %" PRIu64 ")",
			      pass, ng, ne, a[hole].off);
		assert_same(g, ng, e, ne);
		ck_assert_int_eq(d->n, 1);
		recs_free(g, ng);
		free(d);
	}
	free(e);
	recs_free(a, n + 1);
	free(dir);
}
END_TEST

/* ------------------------------------------------------------------------
 * 6b. A reader following a writer that appends at full speed
 */

typedef struct conc_writer {
	seg_writer *w;
	int n;
	int rc; /* first failure */
	char msg[512];
	volatile int done;
} conc_writer;

/* Record i: a fixarray [uint64 i, str of 8..71 bytes]. */
static size_t conc_record(uint8_t *buf, uint64_t i)
{
	size_t k = 0, sl = 8 + (size_t)(i % 64);
	buf[k++] = 0x92;
	buf[k++] = 0xcf;
	seg_put64(buf + k, i); /* little endian is fine: it is just 8 bytes */
	k += 8;
	buf[k++] = 0xd9;
	buf[k++] = (uint8_t)sl;
	for (size_t j = 0; j < sl; j++)
		buf[k++] = (uint8_t)('a' + (i + j) % 26);
	return k;
}

static void *conc_writer_main(void *arg)
{
	conc_writer *cw = arg;
	uint8_t buf[128];
	for (int i = 0; i < cw->n; i++) {
		seg_err e;
		uint64_t seq = 0;
		size_t len = conc_record(buf, (uint64_t)i);
		int rc = seg_writer_append(cw->w, buf, (uint32_t)len, 1715678493000 + i / 1000,
					   &seq, &e);
		if (rc || seq != (uint64_t)i + 1) {
			cw->rc = rc ? rc : -1000;
			snprintf(cw->msg, sizeof cw->msg, "append %d: rc %d seq %" PRIu64 " %.400s",
				 i, rc, seq, rc ? e.msg : "");
			break;
		}
	}
	__atomic_store_n(&cw->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

START_TEST(test_reader_concurrent_with_writer_sees_every_record)
{
	/* seg_reader.h: lock-free, works on a directory an engine is writing.
	 * A reader that keeps up with the writer must return every record, in
	 * order, and report no damage: nothing here is damaged. */
	char *dir = tu_mkdtemp("segconc");
	seg_writer w;
	seg_open_report rep;
	writer_open_ok(&w, V, dir, 4 * MIB, MAX_AGE_MS, 0, &rep);
	seg_reader r;
	seg_err err;
	memset(&r, 0, sizeof r);
	memset(&err, 0, sizeof err);
	ck_assert_int_eq(seg_reader_init(&r, V, dir, 0, &err), 0);
	dmg_log *d = dmg_new();
	r.on_damage = dmg_cb;
	r.ud = d;

	conc_writer cw;
	memset(&cw, 0, sizeof cw);
	cw.w = &w;
	cw.n = 400000;
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, conc_writer_main, &cw), 0);
	int got = 0, bad_seq = 0, bad_data = 0, err_rc = 0;
	uint64_t first_bad = 0;
	uint8_t want[128];
	int64_t t0 = V->mono_ms(V);
	while (got < cw.n && !err_rc && d->n < MAX_DMG - 1) {
		seg_frame f;
		int rc = seg_reader_next(&r, &f, &err);
		if (rc == EDGELOG_EOF) {
			if (__atomic_load_n(&cw.done, __ATOMIC_ACQUIRE) && cw.rc)
				break;
			if (V->mono_ms(V) - t0 > 60000)
				break;
			continue;
		}
		if (rc) {
			err_rc = rc;
			break;
		}
		if (f.seq != (uint64_t)got + 1) {
			if (!bad_seq++)
				first_bad = f.seq;
			got = (int)f.seq; /* resynchronise the count to keep going */
			continue;
		}
		size_t len = conc_record(want, (uint64_t)got);
		if (f.len != len || memcmp(f.data, want, len))
			bad_data++;
		got++;
	}
	pthread_join(th, NULL);
	ck_assert_msg(cw.rc == 0, "writer: %s", cw.msg);
	writer_close_ok(&w);
	seg_reader_close(&r);
	ck_assert_msg(err_rc == 0, "seg_reader_next = %d (%s)", err_rc, err.msg);
	ck_assert_msg(d->n == 0 && bad_seq == 0,
		      "reader racing the writer: %d damage reports (first at %s +%" PRIu64
		      ", %" PRIu64 " bytes, \"%s\"), %d seq jumps (first to %" PRIu64 ")",
		      d->n, d->n ? d->r[0].seg : "-", d->n ? d->r[0].off : 0,
		      d->n ? d->r[0].len : 0, d->n ? d->r[0].reason : "", bad_seq, first_bad);
	ck_assert_int_eq(bad_data, 0);
	ck_assert_int_eq(got, cw.n);
	free(d);
	free(dir);
}
END_TEST

/* ------------------------------------------------------------------------
 * 7. Cursor file
 */

static cur_state mk_cur(uint64_t k)
{
	cur_state c;
	memset(&c, 0, sizeof c);
	c.generation = 0;
	c.acked_seq = 1000 * k + 1;
	c.last_seq = 1000 * k + 2;
	c.sent = k + 3;
	c.failed = k + 4;
	c.dropped = k + 5;
	c.expired = k + 6;
	c.corrupt = k + 7;
	c.recovered = k + 8;
	c.torn_tails = k + 9;
	c.torn_bytes = k + 10;
	c.cursor_resets = k + 11;
	c.sync_failures = k + 12;
	c.last_success_at = 1715678493 + (int64_t)k;
	return c;
}

#define CMP_FIELD(f)                                                                          \
	ck_assert_msg(a->f == b->f, "%s: " #f " %" PRId64 " != %" PRId64, ctx, (int64_t)a->f, \
		      (int64_t)b->f)

static void assert_cur_eq(const cur_state *a, const cur_state *b, const char *ctx)
{
	CMP_FIELD(generation);
	CMP_FIELD(acked_seq);
	CMP_FIELD(last_seq);
	CMP_FIELD(sent);
	CMP_FIELD(failed);
	CMP_FIELD(dropped);
	CMP_FIELD(expired);
	CMP_FIELD(corrupt);
	CMP_FIELD(recovered);
	CMP_FIELD(torn_tails);
	CMP_FIELD(torn_bytes);
	CMP_FIELD(cursor_resets);
	CMP_FIELD(sync_failures);
	CMP_FIELD(last_success_at);
}

static void assert_cur_zero(const cur_state *a, const char *ctx)
{
	cur_state z;
	memset(&z, 0, sizeof z);
	assert_cur_eq(a, &z, ctx);
}

START_TEST(test_cursor_encode_decode_roundtrip)
{
	for (uint64_t k = 0; k < 20; k++) {
		cur_state c = mk_cur(k);
		c.generation = k * 77 + 1;
		if (k == 19) {
			memset(&c, 0xff, sizeof c);
			c.last_success_at = INT64_MIN;
		}
		uint8_t slot[CUR_SLOT_SIZE];
		cur_encode(&c, slot);
		cur_state d;
		memset(&d, 0x5a, sizeof d);
		ck_assert_int_eq(cur_decode(slot, &d), SEG_OK);
		assert_cur_eq(&d, &c, "roundtrip");
	}
	uint8_t z[CUR_SLOT_SIZE];
	memset(z, 0, sizeof z);
	cur_state d;
	ck_assert_int_eq(cur_decode(z, &d), SEG_EMPTY);
}
END_TEST

START_TEST(test_cursor_slot_layout_matches_format_md)
{
	cur_state c = mk_cur(4);
	c.generation = 0x1111222233334444ull;
	c.last_success_at = -2;
	uint8_t slot[CUR_SLOT_SIZE];
	memset(slot, 0xcc, sizeof slot);
	cur_encode(&c, slot);
	ck_assert(!memcmp(slot, "ELCURSOR", 8));
	ck_assert_uint_eq(seg_get32(slot + 8), CUR_FORMAT_VERSION);
	ck_assert_uint_eq(seg_get32(slot + 12), 0);
	ck_assert_uint_eq(seg_get64(slot + 16), c.generation);
	ck_assert_uint_eq(seg_get64(slot + 24), c.acked_seq);
	ck_assert_uint_eq(seg_get64(slot + 32), c.last_seq);
	const uint64_t v[11] = {c.sent,
				c.failed,
				c.dropped,
				c.expired,
				c.corrupt,
				c.recovered,
				c.torn_tails,
				c.torn_bytes,
				c.cursor_resets,
				c.sync_failures,
				(uint64_t)c.last_success_at};
	for (int i = 0; i < 11; i++)
		ck_assert_uint_eq(seg_get64(slot + 40 + 8 * i), v[i]);
	ck_assert(all_zero(slot + 128, 124));
	ck_assert_uint_eq(seg_get32(slot + 252), (uint32_t)XXH3_64bits(slot, 252));
}
END_TEST

static int cursor_two_gens(const char *p, cur_state *c1, cur_state *c2);

/* A slot written by a newer format (valid checksum, version 2). */
static void newer_slot(uint8_t slot[CUR_SLOT_SIZE], uint64_t gen)
{
	cur_state c = mk_cur(9);
	c.generation = gen;
	cur_encode(&c, slot);
	seg_put32(slot + 8, CUR_FORMAT_VERSION + 1);
	seg_put32(slot + 252, (uint32_t)XXH3_64bits(slot, 252));
}

START_TEST(test_cursor_newer_version_refused)
{
	uint8_t slot[CUR_SLOT_SIZE];
	newer_slot(slot, 3);
	cur_state d;
	ck_assert_int_eq(cur_decode(slot, &d), SEG_NEWER);

	char *dir = tu_mkdtemp("segcur");
	char p[4200];
	snprintf(p, sizeof p, "%s", tu_path(dir, CUR_FILE));
	cur_state c1, c2;
	int newest = cursor_two_gens(p, &c1, &c2);
	/* A newer program stored generation 3 over our generation 1. */
	tu_buf f = tu_read_file(p);
	memcpy(f.data + (1 - newest) * CUR_SLOT_STRIDE, slot, CUR_SLOT_SIZE);
	tu_write_file(p, f.data, f.len);
	tu_buf_free(&f);
	seg_err e;
	memset(&e, 0, sizeof e);
	int how = -1;
	cur_state l;
	ck_assert_int_eq(cur_load(V, p, &l, &how, &e), EDGELOG_EVERSION);
	ck_assert_uint_gt(strlen(e.msg), 0);
	free(dir);
}
END_TEST

START_TEST(test_cursor_decode_corruption_never_silent)
{
	cur_state c = mk_cur(3);
	c.generation = 9;
	uint8_t orig[CUR_SLOT_SIZE], slot[CUR_SLOT_SIZE];
	cur_encode(&c, orig);
	for (size_t i = 0; i < CUR_SLOT_SIZE; i++) {
		for (int x = 1; x < 256; x <<= 1) {
			memcpy(slot, orig, sizeof slot);
			slot[i] ^= (uint8_t)x;
			cur_state d;
			int rc = cur_decode(slot, &d);
			if (rc == SEG_OK)
				assert_cur_eq(&d, &c, "flip accepted");
			else
				ck_assert_msg(rc == SEG_BAD || rc == SEG_NEWER,
					      "byte %zu ^ %#x: %d", i, x, rc);
		}
	}
}
END_TEST

static int cur_open_ok(const char *path)
{
	seg_err e;
	memset(&e, 0, sizeof e);
	int fd = cur_open(V, path, &e);
	ck_assert_msg(fd >= 0, "cur_open(%s) = %d (%s)", path, fd, e.msg);
	return fd;
}

static void cur_store_ok(int fd, cur_state *c)
{
	seg_err e;
	memset(&e, 0, sizeof e);
	int rc = cur_store(V, fd, c, &e);
	ck_assert_msg(rc == 0, "cur_store = %d (%s)", rc, e.msg);
}

static int cur_load_ok(const char *path, cur_state *c)
{
	seg_err e;
	memset(&e, 0, sizeof e);
	memset(c, 0xa5, sizeof *c);
	int how = -1;
	int rc = cur_load(V, path, c, &how, &e);
	ck_assert_msg(rc == 0, "cur_load(%s) = %d (%s)", path, rc, e.msg);
	ck_assert_msg(how >= CUR_LOADED && how <= CUR_GARBAGE, "how = %d", how);
	return how;
}

/* Generation in the slot at index i of the file image (0: none). */
static uint64_t slot_gen(const tu_buf *f, int i, cur_state *out)
{
	uint8_t slot[CUR_SLOT_SIZE];
	memset(slot, 0, sizeof slot);
	size_t at = (size_t)i * CUR_SLOT_STRIDE;
	if (at < f->len)
		memcpy(slot, f->data + at,
		       f->len - at < CUR_SLOT_SIZE ? f->len - at : CUR_SLOT_SIZE);
	cur_state c;
	if (cur_decode(slot, &c) != SEG_OK)
		return 0;
	if (out)
		*out = c;
	return c.generation;
}

START_TEST(test_cursor_store_alternates_and_loads_newest)
{
	char *dir = tu_mkdtemp("segcur");
	const char *path = tu_path(dir, CUR_FILE);
	char p[4200];
	snprintf(p, sizeof p, "%s", path);
	int fd = cur_open_ok(p);
	tu_buf prev = tu_read_file(p);
	for (uint64_t k = 1; k <= 6; k++) {
		cur_state c = mk_cur(k);
		c.generation = k - 1;
		cur_store_ok(fd, &c);
		ck_assert_uint_eq(c.generation, k);
		tu_buf now = tu_read_file(p);
		ck_assert_uint_le(now.len, CUR_FILE_SIZE);
		uint64_t g0 = slot_gen(&now, 0, NULL), g1 = slot_gen(&now, 1, NULL);
		ck_assert_msg((g0 == k && g1 == k - 1) || (g1 == k && g0 == k - 1),
			      "after store %" PRIu64 ": slots hold %" PRIu64 " and %" PRIu64, k, g0,
			      g1);
		/* The slot with the previous generation was not touched. */
		int old = g0 == k - 1 ? 0 : 1;
		if (k > 1) {
			size_t at = (size_t)old * CUR_SLOT_STRIDE;
			ck_assert_uint_ge(prev.len, at + CUR_SLOT_SIZE);
			ck_assert(!memcmp(prev.data + at, now.data + at, CUR_SLOT_SIZE));
		}
		cur_state l;
		ck_assert_int_eq(cur_load_ok(p, &l), CUR_LOADED);
		assert_cur_eq(&l, &c, "load after store");
		tu_buf_free(&prev);
		prev = now;
	}
	tu_buf_free(&prev);
	V->close(V, fd);
	/* Reopening keeps the data and continues the generations. */
	fd = cur_open_ok(p);
	cur_state l;
	ck_assert_int_eq(cur_load_ok(p, &l), CUR_LOADED);
	ck_assert_uint_eq(l.generation, 6);
	l.acked_seq = 123456;
	cur_store_ok(fd, &l);
	ck_assert_uint_eq(l.generation, 7);
	cur_state m;
	ck_assert_int_eq(cur_load_ok(p, &m), CUR_LOADED);
	assert_cur_eq(&m, &l, "after reopen");
	V->close(V, fd);
	free(dir);
}
END_TEST

/* A cursor file after two stores; returns the slot index of gen 2. */
static int cursor_two_gens(const char *p, cur_state *c1, cur_state *c2)
{
	int fd = cur_open_ok(p);
	*c1 = mk_cur(1);
	cur_store_ok(fd, c1);
	*c2 = mk_cur(2);
	c2->generation = c1->generation;
	cur_store_ok(fd, c2);
	V->close(V, fd);
	ck_assert_uint_eq(c1->generation, 1);
	ck_assert_uint_eq(c2->generation, 2);
	tu_buf f = tu_read_file(p);
	int newest = slot_gen(&f, 0, NULL) == 2 ? 0 : 1;
	ck_assert_uint_eq(slot_gen(&f, newest, NULL), 2);
	ck_assert_uint_eq(slot_gen(&f, 1 - newest, NULL), 1);
	tu_buf_free(&f);
	return newest;
}

START_TEST(test_cursor_torn_newest_slot_falls_back)
{
	char *dir = tu_mkdtemp("segcur");
	char p[4200];
	snprintf(p, sizeof p, "%s", tu_path(dir, CUR_FILE));
	for (int how_torn = 0; how_torn < 3; how_torn++) {
		unlink(p);
		cur_state c1, c2;
		int newest = cursor_two_gens(p, &c1, &c2);
		tu_buf f = tu_read_file(p);
		size_t at = (size_t)newest * CUR_SLOT_STRIDE;
		if (how_torn == 0) /* a few bytes changed */
			for (size_t i = 20; i < 28; i++)
				f.data[at + i] ^= 0x5a;
		else if (how_torn == 1) /* second half never reached the disk */
			memset(f.data + at + CUR_SLOT_SIZE / 2, 0, CUR_SLOT_SIZE / 2);
		else /* first half old, second half new: a sector-torn mix */
			for (size_t i = 0; i < CUR_SLOT_SIZE / 2; i++)
				f.data[at + i] = f.data[(1 - newest) * CUR_SLOT_STRIDE + i];
		tu_write_file(p, f.data, f.len);
		tu_buf_free(&f);
		cur_state l;
		ck_assert_int_eq(cur_load_ok(p, &l), CUR_FALLBACK);
		assert_cur_eq(&l, &c1, "fallback");
		/* Storing again overwrites the bad slot, keeps gen 1. */
		int fd = cur_open_ok(p);
		cur_state c3 = l;
		c3.acked_seq = 999999;
		cur_store_ok(fd, &c3);
		ck_assert_uint_eq(c3.generation, 2);
		V->close(V, fd);
		ck_assert_int_eq(cur_load_ok(p, &l), CUR_LOADED);
		assert_cur_eq(&l, &c3, "store after fallback");
		/* ...into the bad slot: the good generation-1 slot survives. */
		tu_buf g = tu_read_file(p);
		cur_state s1;
		memset(&s1, 0, sizeof s1);
		ck_assert_uint_eq(slot_gen(&g, newest, NULL), 2);
		ck_assert_uint_eq(slot_gen(&g, 1 - newest, &s1), 1);
		assert_cur_eq(&s1, &c1, "older slot after store");
		tu_buf_free(&g);
	}
	free(dir);
}
END_TEST

START_TEST(test_cursor_garbage_both_slots)
{
	char *dir = tu_mkdtemp("segcur");
	char p[4200];
	snprintf(p, sizeof p, "%s", tu_path(dir, CUR_FILE));
	cur_state c1, c2;
	cursor_two_gens(p, &c1, &c2);
	tu_buf f = tu_read_file(p);
	uint64_t st = 77;
	for (int s = 0; s < 2; s++)
		for (size_t i = 0; i < CUR_SLOT_SIZE; i++)
			f.data[s * CUR_SLOT_STRIDE + i] = (uint8_t)tu_rand(&st);
	tu_write_file(p, f.data, f.len);
	tu_buf_free(&f);
	cur_state l;
	ck_assert_int_eq(cur_load_ok(p, &l), CUR_GARBAGE);
	assert_cur_zero(&l, "garbage");
	/* Any file content at all: no crash, state zeroed unless loaded. */
	for (int it = 0; it < 200; it++) {
		size_t len = (size_t)tu_rand_below(&st, CUR_FILE_SIZE + 100);
		uint8_t *junk = malloc(len + 1);
		for (size_t i = 0; i < len; i++)
			junk[i] = (uint8_t)tu_rand(&st);
		tu_write_file(p, junk, len);
		free(junk);
		int how = cur_load_ok(p, &l);
		ck_assert_int_eq(how, len ? CUR_GARBAGE : CUR_MISSING);
		assert_cur_zero(&l, "random file");
	}
	free(dir);
}
END_TEST

START_TEST(test_cursor_missing_and_empty_file)
{
	char *dir = tu_mkdtemp("segcur");
	char p[4200];
	snprintf(p, sizeof p, "%s", tu_path(dir, CUR_FILE));
	cur_state l;
	ck_assert_int_eq(cur_load_ok(p, &l), CUR_MISSING);
	assert_cur_zero(&l, "missing");
	tu_write_file(p, "", 0);
	ck_assert_int_eq(cur_load_ok(p, &l), CUR_MISSING);
	assert_cur_zero(&l, "empty");
	free(dir);
}
END_TEST

START_TEST(test_cursor_truncated_file)
{
	char *dir = tu_mkdtemp("segcur");
	char p[4200];
	snprintf(p, sizeof p, "%s", tu_path(dir, CUR_FILE));
	cur_state c1, c2;
	int newest = cursor_two_gens(p, &c1, &c2);
	tu_buf f = tu_read_file(p);
	ck_assert_uint_ge(f.len, CUR_SLOT_STRIDE + CUR_SLOT_SIZE);
	cur_state l;
	/* 100 bytes: no complete slot. */
	tu_write_file(p, f.data, 100);
	ck_assert_int_eq(cur_load_ok(p, &l), CUR_GARBAGE);
	assert_cur_zero(&l, "100 bytes");
	/* Slot 0 complete, slot 1 cut. When slot 0 holds the newest state a
	 * loader cannot tell whether the cut slot held an older or a newer
	 * (torn) generation, so LOADED and FALLBACK are both honest; the
	 * state must be slot 0's either way. */
	tu_write_file(p, f.data, CUR_SLOT_STRIDE + 100);
	int how = cur_load_ok(p, &l);
	if (newest == 0) {
		ck_assert_msg(how == CUR_LOADED || how == CUR_FALLBACK, "how = %d", how);
		assert_cur_eq(&l, &c2, "slot 1 cut, newest in 0");
	} else {
		ck_assert_int_eq(how, CUR_FALLBACK);
		assert_cur_eq(&l, &c1, "slot 1 cut, newest in 1");
	}
	/* Slot 0 only (slot 1 cut off entirely): same reasoning. */
	tu_write_file(p, f.data, CUR_SLOT_SIZE);
	how = cur_load_ok(p, &l);
	ck_assert_msg(how == CUR_LOADED || how == CUR_FALLBACK, "how = %d", how);
	assert_cur_eq(&l, newest == 0 ? &c2 : &c1, "slot 0 only");
	tu_buf_free(&f);
	free(dir);
}
END_TEST

/* ------------------------------------------------------------------------
 * 8. Names, paths, listing, errors
 */

START_TEST(test_seg_name_roundtrip)
{
	uint64_t v[] = {
		1,         2, 9, 10, 4096, 1000000007ull, 12345678901234567890ull, UINT64_MAX - 1,
		UINT64_MAX};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		char name[SEG_NAME_LEN + 1];
		memset(name, 'x', sizeof name);
		seg_name(name, v[i]);
		ck_assert_uint_eq(strlen(name), SEG_NAME_LEN);
		char want[64];
		snprintf(want, sizeof want, "%020" PRIu64 ".seg", v[i]);
		ck_assert_str_eq(name, want);
		uint64_t base = 0;
		ck_assert_int_eq(seg_name_parse(name, &base), 1);
		ck_assert_uint_eq(base, v[i]);
	}
	/* Names sort like their numbers. */
	char a[SEG_NAME_LEN + 1], b[SEG_NAME_LEN + 1];
	seg_name(a, 999);
	seg_name(b, 1000);
	ck_assert_int_lt(strcmp(a, b), 0);
}
END_TEST

START_TEST(test_seg_name_parse_rejects_bad_names)
{
	const char *bad[] = {
		"x.seg",
		"0000000000000000001.seg",   /* 19 digits */
		"000000000000000000001.seg", /* 21 digits */
		".spare",
		"00000000000000000001.seg.bad",
		"00000000000000000001.se",
		"00000000000000000001.SEG",
		"00000000000000000001seg",
		"00000000000000000001.segx",
		"0000000000000000000a.seg",
		"+0000000000000000001.seg",
		"-0000000000000000001.seg",
		" 0000000000000000001.seg",
		"0000000000 000000001.seg",
		"18446744073709551616.seg", /* UINT64_MAX + 1 */
		"99999999999999999999.seg",
		"",
		".seg",
		"cursor",
		"00000000000000000001.seg/",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint64_t base = 0xdeadbeef;
		ck_assert_msg(seg_name_parse(bad[i], &base) == 0, "\"%s\" accepted", bad[i]);
	}
}
END_TEST

START_TEST(test_seg_path_and_list)
{
	char out[64];
	ck_assert_int_eq(seg_path(out, sizeof out, "/a/b", "c.seg"), 0);
	ck_assert_str_eq(out, "/a/b/c.seg");
	ck_assert_int_eq(seg_path(out, 11, "/a/b", "c.seg"), 0); /* exactly fits */
	ck_assert_str_eq(out, "/a/b/c.seg");
	ck_assert_int_eq(seg_path(out, 10, "/a/b", "c.seg"), EDGELOG_EINVAL);

	char *dir = tu_mkdtemp("segdir");
	seg_list l = list_ok(dir);
	ck_assert_uint_eq(l.n, 0);
	seg_list_free(&l);
	uint64_t bases[] = {4096, 1, 100, UINT64_MAX, 77};
	for (size_t i = 0; i < 5; i++)
		tu_write_file(seg_file(dir, bases[i]), "", 0);
	const char *junk[] = {".spare", "x.seg", "00000000000000000001.seg.bad", "cursor",
			      "0000000000000000002.seg"};
	for (size_t i = 0; i < 5; i++)
		tu_write_file(tu_path(dir, junk[i]), "", 0);
	ck_assert_int_eq(mkdir(tu_path(dir, "failed"), 0700), 0);
	l = list_ok(dir);
	ck_assert_uint_eq(l.n, 5);
	uint64_t want[] = {1, 77, 100, 4096, UINT64_MAX};
	for (size_t i = 0; i < 5; i++)
		ck_assert_uint_eq(l.base[i], want[i]);
	seg_list_free(&l);
	/* A missing directory is an empty list. */
	l = list_ok(tu_path(dir, "nope"));
	ck_assert_uint_eq(l.n, 0);
	seg_list_free(&l);
	free(dir);
}
END_TEST

START_TEST(test_seg_err_codes)
{
	ck_assert_int_eq(seg_errno_code(-ENOSPC), EDGELOG_ENOSPC);
	ck_assert_int_eq(seg_errno_code(-EACCES), EDGELOG_EPERM);
	ck_assert_int_eq(seg_errno_code(-EROFS), EDGELOG_EPERM);
	ck_assert_int_eq(seg_errno_code(-EPERM), EDGELOG_EPERM);
	ck_assert_int_eq(seg_errno_code(-ENOENT), EDGELOG_ENOTFOUND);
	ck_assert_int_eq(seg_errno_code(-ENOMEM), EDGELOG_ENOMEM);
	ck_assert_int_eq(seg_errno_code(-EIO), EDGELOG_EIO);
	ck_assert_int_eq(seg_errno_code(-EINVAL), EDGELOG_EIO);
	seg_err e;
	memset(&e, 0, sizeof e);
	ck_assert_int_eq(seg_fail(&e, EDGELOG_ECORRUPT, "bad frame at %d in %s", 42, "f.seg"),
			 EDGELOG_ECORRUPT);
	ck_assert_str_eq(e.msg, "bad frame at 42 in f.seg");
	ck_assert_int_eq(seg_fail(NULL, EDGELOG_EIO, "x"), EDGELOG_EIO);
	ck_assert_int_eq(seg_fail_errno(&e, -ENOSPC, "write %s", "a.seg"), EDGELOG_ENOSPC);
	ck_assert_ptr_nonnull(strstr(e.msg, "write a.seg"));
	ck_assert_ptr_nonnull(strstr(e.msg, strerror(ENOSPC)));
	/* A message longer than the buffer is cut, still terminated. */
	char big[2000];
	memset(big, 'y', sizeof big - 1);
	big[sizeof big - 1] = 0;
	seg_fail(&e, EDGELOG_EIO, "%s", big);
	ck_assert_uint_lt(strlen(e.msg), sizeof e.msg);
}
END_TEST

/* ------------------------------------------------------------------------
 * Suite
 */

/* ------------------------------------------------------------------------
 * 9. msgpack to JSON: doubles
 */

/* Every double, written as JSON by seg_mp_to_json, must read back as the
 * same double; the fast fixed-notation path and the printf fallback alike.
 * Random bit patterns, short decimals (scores like 0.627) and values
 * spread over 30 orders of magnitude. */
START_TEST(test_json_double_round_trips)
{
	uint64_t s = 88172645463325252ull;
	seg_buf o = {0};
	long i, checked = 0;

	for (i = 0; i < 300000; i++) {
		uint8_t m[9];
		uint64_t u;
		double d, r;
		int k;

		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		if (i % 3 == 0)
			memcpy(&d, &s, 8);
		else if (i % 3 == 1)
			d = (double)(s % 100000) / 1000.0;
		else
			d = (double)(s >> 11) / 9007199254740992.0 * pow(10, (int)(s % 30) - 15);
		if (isnan(d) || isinf(d))
			continue;
		memcpy(&u, &d, 8);
		m[0] = 0xcb;
		for (k = 0; k < 8; k++)
			m[1 + k] = (uint8_t)(u >> (56 - 8 * k));
		o.len = 0;
		ck_assert_int_eq(seg_mp_to_json(m, sizeof m, &o), 0);
		r = strtod(o.p, NULL);
		ck_assert_msg(r == d, "%.17g written as %s", d, o.p);
		ck_assert_msg(strpbrk(o.p, ".eE") != NULL, "%s does not read as a float", o.p);
		checked++;
	}
	/* Short decimals stay short. */
	{
		const double d[] = {0.627, 7.655, 0.5, 100000.0, -0.034, 1e-5};
		const char *want[] = {"0.627", "7.655", "0.5", "100000.0", "-0.034", "0.00001"};
		for (int k = 0; k < 6; k++) {
			uint8_t m[9];
			uint64_t u;
			int j;
			memcpy(&u, &d[k], 8);
			m[0] = 0xcb;
			for (j = 0; j < 8; j++)
				m[1 + j] = (uint8_t)(u >> (56 - 8 * j));
			o.len = 0;
			ck_assert_int_eq(seg_mp_to_json(m, sizeof m, &o), 0);
			ck_assert_str_eq(o.p, want[k]);
		}
	}
	ck_assert_int_gt(checked, 290000);
	seg_buf_free(&o);
}
END_TEST

/* ---- gap arithmetic (cur_gap_add, cur_gaps_prune, cur_stored_between) ---- */

static int n_gaps(const cur_state *c)
{
	int i, n = 0;
	for (i = 0; i < CUR_MAX_GAPS; i++)
		n += c->gap_hi[i] != 0;
	return n;
}

START_TEST(test_cursor_gap_add_is_idempotent)
{
	/* Issue 9 defect 6: every open that found the cursor ahead of the
	 * data recorded the same gap again, and counts subtracted it twice. */
	cur_state c;
	int k;

	memset(&c, 0, sizeof(c));
	for (k = 0; k < 6; k++)
		cur_gap_add(&c, 9, 10);
	ck_assert_int_eq(n_gaps(&c), 1);
	ck_assert_uint_eq(cur_stored_between(&c, 0, 10), 9);
	/* Covered already: no change. */
	cur_gap_add(&c, 9, 10);
	cur_gap_add(&c, 9, 9);
	ck_assert_int_eq(n_gaps(&c), 1);
	ck_assert_uint_eq(cur_stored_between(&c, 0, 20), 19);
}
END_TEST

START_TEST(test_cursor_gap_add_merges_overlapping_and_adjacent)
{
	cur_state c;

	memset(&c, 0, sizeof(c));
	cur_gap_add(&c, 10, 20);
	cur_gap_add(&c, 15, 25); /* overlaps */
	ck_assert_int_eq(n_gaps(&c), 1);
	cur_gap_add(&c, 25, 30); /* adjacent above */
	cur_gap_add(&c, 5, 10);  /* adjacent below */
	ck_assert_int_eq(n_gaps(&c), 1);
	ck_assert_uint_eq(cur_stored_between(&c, 0, 40), 40 - 25);
	/* Two apart, then one that bridges them: one gap. */
	cur_gap_add(&c, 50, 60);
	cur_gap_add(&c, 70, 80);
	ck_assert_int_eq(n_gaps(&c), 3);
	cur_gap_add(&c, 55, 75);
	ck_assert_int_eq(n_gaps(&c), 2);
	ck_assert_uint_eq(cur_stored_between(&c, 0, 100), 100 - 25 - 30);
	/* Inside one: nothing changes. */
	cur_gap_add(&c, 52, 58);
	ck_assert_uint_eq(cur_stored_between(&c, 0, 100), 100 - 25 - 30);
}
END_TEST

START_TEST(test_cursor_gap_full_forgets_the_lowest)
{
	cur_state c;
	int i;

	memset(&c, 0, sizeof(c));
	for (i = 1; i <= CUR_MAX_GAPS; i++)
		cur_gap_add(&c, (uint64_t)i * 100, (uint64_t)i * 100 + 10);
	ck_assert_int_eq(n_gaps(&c), CUR_MAX_GAPS);
	/* Lower than all: dropped itself (overstating, never understating). */
	cur_gap_add(&c, 10, 20);
	ck_assert_uint_eq(cur_stored_between(&c, 0, 1000), 1000 - 10 * CUR_MAX_GAPS);
	/* Higher: the lowest (100, 110] goes. */
	cur_gap_add(&c, 900, 905);
	ck_assert_uint_eq(cur_stored_between(&c, 0, 1000), 1000 - 10 * CUR_MAX_GAPS + 10 - 5);
	ck_assert_uint_eq(cur_stored_between(&c, 100, 110), 10);
}
END_TEST

START_TEST(test_cursor_gaps_prune_and_normalize)
{
	cur_state c;

	memset(&c, 0, sizeof(c));
	cur_gap_add(&c, 10, 20);
	cur_gap_add(&c, 30, 40);
	c.acked_seq = 15;
	cur_gaps_prune(&c);
	ck_assert_uint_eq(cur_stored_between(&c, 15, 40), 25 - 5 - 10);
	c.acked_seq = 40;
	cur_gaps_prune(&c);
	ck_assert_int_eq(n_gaps(&c), 0);
	/* A cursor from an older version with the same gap in every slot
	 * loads as one gap. */
	memset(&c, 0, sizeof(c));
	for (int i = 0; i < CUR_MAX_GAPS; i++) {
		c.gap_lo[i] = 9;
		c.gap_hi[i] = 10;
	}
	ck_assert_uint_eq(cur_stored_between(&c, 0, 10), 10 - CUR_MAX_GAPS);
	cur_gaps_normalize(&c);
	ck_assert_int_eq(n_gaps(&c), 1);
	ck_assert_uint_eq(cur_stored_between(&c, 0, 10), 9);
	/* Empty range and reversed bounds. */
	ck_assert_uint_eq(cur_stored_between(&c, 10, 10), 0);
	ck_assert_uint_eq(cur_stored_between(&c, 10, 5), 0);
}
END_TEST

static Suite *segments_suite(void)
{
	Suite *s = suite_create("segments");
	TCase *tc;

	tc = tcase_create("format");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_frame_roundtrip_smallest_objects);
	tcase_add_test(tc, test_frame_roundtrip_prediction);
	tcase_add_test(tc, test_frame_roundtrip_max_payload);
	tcase_add_test(tc, test_frame_truncated_is_short);
	tcase_add_test(tc, test_frame_every_bit_flip_detected);
	tcase_add_test(tc, test_frame_wrong_salt_rejected);
	tcase_add_test(tc, test_frame_zero_header_is_end);
	tcase_add_test(tc, test_frame_checksum_function_matches_encoder);
	tcase_add_test(tc, test_header_roundtrip);
	tcase_add_test(tc, test_header_all_zero_is_empty);
	tcase_add_test(tc, test_header_newer_version);
	tcase_add_test(tc, test_header_bad_magic);
	tcase_add_test(tc, test_header_corruption_never_silent);
	tcase_add_test(tc, test_header_layout_matches_format_md);
	tcase_add_test(tc, test_frame_layout_matches_format_md);
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	suite_add_tcase(s, tc);

	tc = tcase_create("msgpack");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_mp_accepts_every_type);
	tcase_add_test(tc, test_mp_rejects_empty);
	tcase_add_test(tc, test_mp_rejects_every_truncation);
	tcase_add_test(tc, test_mp_rejects_concatenated_and_trailing);
	tcase_add_test(tc, test_mp_rejects_reserved_c1);
	tcase_add_test(tc, test_mp_depth_limit);
	tcase_add_test(tc, test_mp_rejects_huge_lengths);
	tcase_add_test(tc, test_mp_agrees_with_msgpack_c);
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	suite_add_tcase(s, tc);

	tc = tcase_create("writer_reader");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_writer_reader_roundtrip_single_segment);
	tcase_add_test(tc, test_writer_rolls_small_segments);
	tcase_add_test(tc, test_reader_from_seq_middle);
	tcase_add_test(tc, test_reader_single_file_mode);
	tcase_add_test(tc, test_reader_empty_dir_is_eof);
	tcase_add_test(tc, test_writer_creates_missing_dir);
	tcase_add_test(tc, test_writer_reopen_continues_seq);
	tcase_add_test(tc, test_writer_min_next_seq);
	tcase_add_test(tc, test_reader_follows_appends_across_roll);
	tcase_add_test(tc, test_writer_ts_out_of_delta_range_rolls);
	tcase_add_test(tc, test_writer_max_age_rolls);
	tcase_add_test(tc, test_sync_plan_makes_durable_then_idle);
	tcase_add_test(tc, test_sync_failure_marks_suspect_and_rolls);
	tcase_add_test(tc, test_spare_becomes_next_segment);
	tcase_add_test(tc, test_spare_discard_removes_file);
	tcase_add_test(tc, test_writer_refuses_newer_format_segment);
	tcase_add_test(tc, test_writer_quarantines_unreadable_newest_segment);
	tcase_add_test(tc, test_writer_removes_stillborn_newest_segment);
	tcase_add_test(tc, test_writer_seq_gap_beyond_delta_rolls);
	tcase_add_test(tc, test_reader_skips_segment_with_damaged_header);
	tcase_add_test(tc, test_writer_removes_leftover_spare);
	tcase_add_test(tc, test_writer_oversized_record_gets_own_segment);
	tcase_add_test(tc, test_writer_oversized_record_after_torn_first_frame);
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	suite_add_tcase(s, tc);

	tc = tcase_create("torn_tail");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_torn_tail_every_offset_zeros);
	tcase_add_test(tc, test_torn_tail_every_offset_garbage);
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	suite_add_tcase(s, tc);

	tc = tcase_create("bitflips");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_bitflips_skip_only_hit_records, 0, 30);
	tcase_add_test(tc, test_bitflip_in_newest_frame);
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	suite_add_tcase(s, tc);

	tc = tcase_create("zeros");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_zero_tail_is_clean_end);
	tcase_add_test(tc, test_scan_init_results);
	tcase_add_test(tc, test_scan_rejects_non_increasing_seq);
	tcase_add_test(tc, test_scan_partial_last_frame_is_tail);
	tcase_add_test(tc, test_zero_hole_deep_scan_reports_damage);
	tcase_add_test(tc, test_zero_hole_in_sealed_segment_skipped);
	tcase_add_test(tc, test_zero_hole_in_live_segment_skipped_once);
	tcase_add_test(tc, test_zero_hole_in_active_segment_visible_after_recovery);
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	suite_add_tcase(s, tc);

	tc = tcase_create("concurrency");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_reader_concurrent_with_writer_sees_every_record);
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	suite_add_tcase(s, tc);

	tc = tcase_create("cursor");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_cursor_encode_decode_roundtrip);
	tcase_add_test(tc, test_cursor_decode_corruption_never_silent);
	tcase_add_test(tc, test_cursor_slot_layout_matches_format_md);
	tcase_add_test(tc, test_cursor_newer_version_refused);
	tcase_add_test(tc, test_cursor_store_alternates_and_loads_newest);
	tcase_add_test(tc, test_cursor_torn_newest_slot_falls_back);
	tcase_add_test(tc, test_cursor_garbage_both_slots);
	tcase_add_test(tc, test_cursor_missing_and_empty_file);
	tcase_add_test(tc, test_cursor_truncated_file);
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	suite_add_tcase(s, tc);

	tc = tcase_create("gaps");
	tcase_add_test(tc, test_cursor_gap_add_is_idempotent);
	tcase_add_test(tc, test_cursor_gap_add_merges_overlapping_and_adjacent);
	tcase_add_test(tc, test_cursor_gap_full_forgets_the_lowest);
	tcase_add_test(tc, test_cursor_gaps_prune_and_normalize);
	suite_add_tcase(s, tc);

	tc = tcase_create("json");
	tcase_add_test(tc, test_json_double_round_trips);
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_test(tc, test_seg_name_roundtrip);
	tcase_add_test(tc, test_seg_name_parse_rejects_bad_names);
	tcase_add_test(tc, test_seg_path_and_list);
	tcase_add_test(tc, test_seg_err_codes);
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	V = seg_vfs_posix();
	SRunner *sr = srunner_create(segments_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
