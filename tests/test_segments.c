/*
 * test_segments.c - the segments runners' shared helpers (see
 * test_segments.h).
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seg_dir.h"
#include "seg_err.h"
#include "seg_format.h"
#include "seg_reader.h"
#include "seg_vfs.h"
#include "seg_writer.h"
#include "test_segments.h"
#include "test_util.h"

const seg_vfs *V;

Suite *segments_suite_create(const char *name)
{
	V = seg_vfs_posix();
	return suite_create(name);
}

uint64_t frame_end(const rec *r)
{
	return r->off + SEG_FRAME_HEADER + r->b.len;
}

void recs_free(rec *a, int n)
{
	for (int i = 0; i < n; i++)
		tu_buf_free(&a[i].b);
	free(a);
}

void dmg_cb(void *ud, const char *segment, uint64_t offset, uint64_t len, const char *reason)
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

dmg_log *dmg_new(void)
{
	dmg_log *d = calloc(1, sizeof *d);
	ck_assert_ptr_nonnull(d);
	return d;
}

void writer_open_ok(seg_writer *w, const seg_vfs *v, const char *dir, size_t seg_bytes,
		    int64_t max_age, uint64_t min_next, seg_open_report *rep)
{
	seg_err e;
	memset(&e, 0, sizeof e);
	memset(rep, 0xa5, sizeof *rep); /* must be filled by the call */
	int rc = seg_writer_open(w, v, dir, seg_bytes, max_age, min_next, rep, &e);
	ck_assert_msg(rc == 0, "seg_writer_open(%s) = %d (%s)", dir, rc, e.msg);
}

uint64_t append_ok(seg_writer *w, const tu_buf *b, int64_t ts)
{
	seg_err e;
	memset(&e, 0, sizeof e);
	uint64_t seq = 0;
	int rc = seg_writer_append(w, b->data, (uint32_t)b->len, ts, &seq, &e);
	ck_assert_msg(rc == 0, "seg_writer_append = %d (%s)", rc, e.msg);
	return seq;
}

void writer_close_ok(seg_writer *w)
{
	seg_err e;
	memset(&e, 0, sizeof e);
	int rc = seg_writer_close(w, &e);
	ck_assert_msg(rc == 0, "seg_writer_close = %d (%s)", rc, e.msg);
}

rec *write_log(const char *dir, size_t seg_bytes, int n, uint64_t seed)
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

int read_all(const char *path, uint64_t from_seq, dmg_log *d, rec **out, uint64_t *corrupt)
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

void assert_same(const rec *got, int ngot, rec *const *exp, int nexp)
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

rec **ptrs(rec *a, int lo, int hi)
{
	rec **p = calloc((size_t)(hi - lo) + 1, sizeof *p);
	ck_assert_ptr_nonnull(p);
	for (int i = lo; i < hi; i++)
		p[i - lo] = &a[i];
	return p;
}

const char *seg_file(const char *dir, uint64_t base)
{
	char name[SEG_NAME_LEN + 1];
	seg_name(name, base);
	return tu_path(dir, name);
}

void learn_offsets(rec *a, int n, const char *dir)
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

int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

seg_header mk_hdr(uint64_t base, int64_t ts, uint64_t salt)
{
	seg_header h;
	memset(&h, 0, sizeof h);
	h.version = SEG_VERSION_FRESH;
	h.flags = 0;
	h.base_seq = base;
	h.base_ts_ms = ts;
	h.salt = salt;
	return h;
}

uint8_t *mk_bin32(uint32_t len, uint64_t seed)
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

seg_list list_ok(const char *dir)
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
