/*
 * check_segments_writer.c - the writer and the reader through the POSIX
 * vfs: round trips, rolling by size, age, timestamp and seq range, reading
 * from a seq or a single file, reopening (continuing seqs, min_next_seq),
 * the sync plan and a failed fsync, the spare segment, what reopening does
 * with newer-format, unreadable, stillborn and leftover files, oversized
 * records, and a reader following a writer in another thread.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "seg_dir.h"
#include "seg_err.h"
#include "seg_format.h"
#include "seg_reader.h"
#include "seg_vfs.h"
#include "seg_writer.h"
#include "test_main.h"
#include "test_segments.h"
#include "test_util.h"

/* ------------------------------------------------------------------------
 * Writer and reader through the POSIX vfs
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

/* ---- recycled segments (FORMAT.md, "Recycled segments") ---------------- */

/* Make the file of segment `base` the writer's next spare, as retention and
 * the preparer do, and roll so the next append starts a recycled segment. */
static void recycle_into_writer(seg_writer *w, const char *dir, uint64_t base)
{
	seg_spare s;
	seg_err e;
	memset(&e, 0, sizeof e);
	ck_assert_int_eq(rename(seg_file(dir, base), tu_path(dir, SEG_RECYCLE_NAME)), 0);
	ck_assert(seg_writer_wants_spare(w));
	ck_assert_int_eq(seg_spare_recycle(V, dir, 64 * KIB, SEG_POPULATE_READ, &s, &e), 0);
	ck_assert(s.recycled);
	seg_writer_give_spare(w, &s);
	ck_assert_int_eq(seg_writer_roll(w, &e), 0);
}

static uint32_t file_version(const char *path)
{
	tu_buf b = tu_read_file(path);
	ck_assert_uint_ge(b.len, SEG_HEADER_SIZE);
	uint32_t v = seg_get32(b.data + 8);
	tu_buf_free(&b);
	return v;
}

/* A recycled file holds a previous life's frames after the new data: they
 * never read as records, nothing reads as damage, the end is the marker;
 * recovery neither counts a torn tail nor zeroes anything, and never
 * writes into the recycled segment again (frames of this life may lie
 * beyond its marker after a power cut: see the next test). */
START_TEST(test_recycled_segment_reads_only_its_own_frames)
{
	char *dir = tu_mkdtemp("segtest");
	rec *a = write_log(dir, 64 * KIB, 400, 31); /* about 3 segments */
	seg_list l = list_ok(dir);
	ck_assert_uint_ge(l.n, 3);
	uint64_t first = l.base[0], second = l.base[1];
	seg_list_free(&l);

	seg_writer w;
	seg_open_report rep;
	writer_open_ok(&w, V, dir, 64 * KIB, MAX_AGE_MS, 0, &rep);
	recycle_into_writer(&w, dir, first);
	int64_t t0 = V->now_ms(V);
	rec b[20];
	for (int i = 0; i < 20; i++) {
		b[i].b = tu_prediction((uint64_t)i + 1000, 32);
		b[i].ts = t0 + i;
		b[i].seq = append_ok(&w, &b[i].b, b[i].ts);
		ck_assert_uint_eq(b[i].seq, 401 + (uint64_t)i);
	}
	ck_assert_uint_eq(w.recycled, 1);
	writer_close_ok(&w);
	ck_assert_uint_eq(file_version(seg_file(dir, 401)), SEG_VERSION_RECYCLED);
	ck_assert_uint_eq(file_version(seg_file(dir, second)), SEG_VERSION_FRESH);
	tu_buf before = tu_read_file(seg_file(dir, 401));

	/* Everything from the second segment on, then the 20 new ones. */
	dmg_log *d = dmg_new();
	rec *got = NULL;
	uint64_t corrupt = 0;
	int n = read_all(dir, 0, d, &got, &corrupt);
	ck_assert_int_eq(corrupt, 0);
	ck_assert_int_eq(d->n, 0);
	rec **exp = calloc(400 + 20, sizeof *exp);
	int ne = 0;
	for (int i = 0; i < 400; i++)
		if (a[i].seq >= second)
			exp[ne++] = &a[i];
	for (int i = 0; i < 20; i++)
		exp[ne++] = &b[i];
	assert_same(got, n, exp, ne);
	recs_free(got, n);

	/* Reopen: no torn tail, nothing zeroed; the next record starts a new
	 * segment and the recycled one keeps every byte. */
	writer_open_ok(&w, V, dir, 64 * KIB, MAX_AGE_MS, 0, &rep);
	ck_assert_uint_eq(rep.torn_tails, 0);
	ck_assert_uint_eq(rep.corrupt, 0);
	ck_assert_uint_eq(rep.last_seq, 420);
	rec c;
	c.b = tu_prediction(5000, 33);
	c.ts = t0 + 100;
	c.seq = append_ok(&w, &c.b, c.ts);
	ck_assert_uint_eq(c.seq, 421);
	writer_close_ok(&w);
	ck_assert(tu_file_exists(seg_file(dir, 421)));
	tu_buf after = tu_read_file(seg_file(dir, 401));
	ck_assert_uint_eq(after.len, before.len);
	ck_assert(!memcmp(after.data, before.data, before.len));
	tu_buf_free(&after);

	n = read_all(dir, 0, d, &got, &corrupt);
	ck_assert_int_eq(corrupt, 0);
	exp[ne++] = &c;
	assert_same(got, n, exp, ne);
	recs_free(got, n);

	/* One flipped byte in a frame of the recycled segment costs that
	 * frame only: the reader resynchronises on the next one, and never
	 * on a previous life's frame. */
	tu_buf img = before;
	uint64_t off = SEG_HEADER_SIZE + SEG_FRAME_HEADER + 7; /* first frame's payload */
	img.data[off] ^= 0x40;
	tu_write_file(seg_file(dir, 401), img.data, img.len);
	n = read_all(dir, 0, d, &got, &corrupt);
	ck_assert_int_eq(corrupt, 1);
	ck_assert_int_eq(d->n, 1);
	ck_assert_uint_eq(d->r[0].off, SEG_HEADER_SIZE);
	ck_assert_uint_eq(d->r[0].len, SEG_FRAME_HEADER + b[0].b.len);
	int k = 0;
	for (int i = 0; i < ne; i++)
		if (exp[i] != &b[0])
			exp[k++] = exp[i];
	assert_same(got, n, exp, k);
	recs_free(got, n);

	tu_buf_free(&img);
	free(exp);
	free(d);
	for (int i = 0; i < 20; i++)
		tu_buf_free(&b[i].b);
	tu_buf_free(&c.b);
	recs_free(a, 400);
	free(dir);
}
END_TEST

/* A power cut can leave, beyond a recycled segment's last durable end
 * marker, a frame of this life that was written back while the page with
 * the frames before it was not. It must never be read, then or later:
 * recovery must not resume writing there (new frames, and a marker that a
 * later cut may lose, would sit in front of it with seqs below its own). A
 * torn last write (no marker after the last frame) is counted once and
 * marked, not zeroed. */
START_TEST(test_recycled_segment_frame_beyond_marker_never_read)
{
	/* Round 0: a frame beyond an intact marker: never read. Round 1: the
	 * marker torn, nothing beyond: a torn tail. Round 2: both: the frame
	 * is this life's record (appended, written back), read as such after
	 * a damaged range, and the next seq is above it. */
	for (int round = 0; round < 3; round++) {
		char *dir = tu_mkdtemp("segtest");
		rec *a = write_log(dir, 64 * KIB, 400, 41);
		seg_list l = list_ok(dir);
		uint64_t first = l.base[0];
		seg_list_free(&l);

		seg_writer w;
		seg_open_report rep;
		writer_open_ok(&w, V, dir, 64 * KIB, MAX_AGE_MS, 0, &rep);
		recycle_into_writer(&w, dir, first);
		int64_t t0 = V->now_ms(V);
		rec b[5];
		for (int i = 0; i < 5; i++) {
			b[i].b = tu_prediction((uint64_t)i + 2000, 42);
			b[i].ts = t0 + i;
			b[i].seq = append_ok(&w, &b[i].b, b[i].ts);
		}
		seg_header h = w.hdr;
		size_t end = w.pos;
		writer_close_ok(&w);

		/* The frame a later append of this life would have written, at
		 * a later page, with a higher seq: valid under this salt. */
		tu_buf img = tu_read_file(seg_file(dir, 401));
		tu_buf q = tu_prediction(9999, 43);
		size_t qoff = (end + 8192) & ~(size_t)4095;
		if (round != 1) {
			seg_frame_encode(img.data + qoff, h.salt, 60, 1, q.data, (uint32_t)q.len);
			memcpy(img.data + qoff + SEG_FRAME_HEADER, q.data, q.len);
			seg_end_marker(img.data + qoff + SEG_FRAME_HEADER + q.len, h.salt, 61);
		}
		if (round > 0)
			memset(img.data + end, 0xa5, SEG_FRAME_HEADER);
		tu_write_file(seg_file(dir, 401), img.data, img.len);

		writer_open_ok(&w, V, dir, 64 * KIB, MAX_AGE_MS, 0, &rep);
		ck_assert_uint_eq(rep.torn_tails, round == 1);
		ck_assert_uint_eq(rep.corrupt, round == 2);
		ck_assert_uint_eq(rep.last_seq, round == 2 ? 461 : 405);
		rec c;
		c.b = tu_prediction(3000, 44);
		c.ts = t0 + 10;
		c.seq = append_ok(&w, &c.b, c.ts);
		writer_close_ok(&w);
		/* Not written into the recycled segment: a new one. */
		ck_assert_uint_eq(c.seq, round == 2 ? 462 : 406);
		ck_assert(tu_file_exists(seg_file(dir, c.seq)));
		tu_buf t = tu_read_file(seg_file(dir, 401));
		ck_assert(!memcmp(t.data + qoff, img.data + qoff, SEG_FRAME_HEADER + q.len));
		tu_buf_free(&t);

		rec *got = NULL;
		uint64_t corrupt = 0;
		int n = read_all(dir, 401, NULL, &got, &corrupt);
		ck_assert_int_eq(corrupt, round == 2);
		rec qr = {.b = q, .seq = 461, .ts = h.base_ts_ms + 1};
		rec *exp[7] = {&b[0], &b[1], &b[2], &b[3], &b[4], &c, &c};
		if (round == 2)
			exp[5] = &qr;
		assert_same(got, n, exp, round == 2 ? 7 : 6);
		recs_free(got, n);
		tu_buf_free(&c.b);
		tu_buf_free(&q);
		tu_buf_free(&img);
		for (int i = 0; i < 5; i++)
			tu_buf_free(&b[i].b);
		recs_free(a, 400);
		free(dir);
	}
}
END_TEST

/* The placeholder a recycled file gets first reads as never started: a
 * power cut that took the real header leaves a stillborn segment, not the
 * previous life's and not damage. */
START_TEST(test_recycled_placeholder_is_stillborn)
{
	char *dir = tu_mkdtemp("segtest");
	rec *a = write_log(dir, 64 * KIB, 400, 51);
	seg_list l = list_ok(dir);
	uint64_t first = l.base[0], last = l.base[l.n - 1];
	seg_list_free(&l);
	tu_buf img = tu_read_file(seg_file(dir, first));
	seg_header_placeholder(img.data);
	ck_assert(seg_stillborn(img.data, img.len));
	seg_header hd;
	ck_assert_int_eq(seg_header_decode(img.data, &hd), SEG_EMPTY);
	/* As the newest file, under the name the roll gave it. */
	tu_write_file(seg_file(dir, 401), img.data, img.len);
	seg_writer w;
	seg_open_report rep;
	writer_open_ok(&w, V, dir, 64 * KIB, MAX_AGE_MS, 0, &rep);
	ck_assert_uint_eq(rep.quarantined, 0);
	ck_assert_uint_eq(rep.last_seq, 400);
	ck_assert(!tu_file_exists(seg_file(dir, 401)));
	writer_close_ok(&w);
	(void)last;
	tu_buf_free(&img);
	recs_free(a, 400);
	free(dir);
}
END_TEST

/* A reader behind the acknowledged point has a segment open when
 * retention recycles its file and the writer starts writing a new life
 * into it: the reader meets bytes of another salt. That is not damage of
 * the segment it was reading (whose name is gone): it moves on to the
 * next one, reporting nothing. */
START_TEST(test_reader_moves_on_when_its_segment_is_recycled)
{
	char *dir = tu_mkdtemp("segtest");
	rec *a = write_log(dir, 64 * KIB, 400, 61);
	seg_list l = list_ok(dir);
	uint64_t first = l.base[0], second = l.base[1];
	seg_list_free(&l);

	seg_reader r;
	seg_err e;
	seg_frame f;
	dmg_log *d = dmg_new();
	memset(&r, 0, sizeof r);
	memset(&e, 0, sizeof e);
	ck_assert_int_eq(seg_reader_init(&r, V, dir, 0, &e), 0);
	r.on_damage = dmg_cb;
	r.ud = d;
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(seg_reader_next(&r, &f, &e), 0);
		ck_assert_uint_eq(f.seq, a[i].seq);
	}

	seg_writer w;
	seg_open_report rep;
	writer_open_ok(&w, V, dir, 64 * KIB, MAX_AGE_MS, 0, &rep);
	recycle_into_writer(&w, dir, first);
	int64_t t0 = V->now_ms(V);
	for (int i = 0; i < 50; i++) {
		tu_buf b = tu_prediction((uint64_t)i + 7000, 62);
		append_ok(&w, &b, t0 + i);
		tu_buf_free(&b);
	}
	writer_close_ok(&w);

	/* Whatever of the first segment still verifies under its own salt
	 * is its own record; then the second segment, in order. */
	uint64_t prev = a[9].seq;
	int in_second = 0;
	while (seg_reader_next(&r, &f, &e) == 0) {
		ck_assert_uint_gt(f.seq, prev);
		prev = f.seq;
		if (f.seq >= second && f.seq <= 400) {
			in_second = 1;
			ck_assert(f.len == a[f.seq - 1].b.len &&
				  !memcmp(f.data, a[f.seq - 1].b.data, f.len));
		}
		if (f.seq < second)
			ck_assert(f.len == a[f.seq - 1].b.len &&
				  !memcmp(f.data, a[f.seq - 1].b.data, f.len));
	}
	ck_assert(in_second);
	ck_assert_uint_eq(r.corrupt, 0);
	ck_assert_int_eq(d->n, 0);
	seg_reader_close(&r);
	free(d);
	recs_free(a, 400);
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

/* What the engine sets on the writer, through the writer's functions
 * only: the cap (a segment that would take the files past it is not
 * created: EDGELOG_EFULL, nothing stored), removed files given back
 * (seg_writer_forget, saturating), a suspect segment (the next append
 * starts a new one) and the age clock new headers carry. */
START_TEST(test_writer_cap_forget_suspect_and_age_clock)
{
	char *dir = tu_mkdtemp("segtest");
	const uint8_t rec[1] = {0x01};
	seg_writer w;
	seg_open_report rep;
	seg_err e;
	uint64_t seq = 0, first;

	memset(&e, 0, sizeof e);
	ck_assert_int_eq(seg_writer_open(&w, V, dir, 64 * KIB, MAX_AGE_MS, 0, &rep, &e), 0);
	seg_writer_set_cap(&w, 64 * KIB - 1);
	ck_assert_int_eq(seg_writer_append(&w, rec, 1, 1000, &seq, &e), EDGELOG_EFULL);
	ck_assert_uint_eq(w.segments, 0);
	ck_assert_uint_eq(w.bytes, 0);

	seg_writer_set_cap(&w, 64 * KIB);
	seg_writer_set_age_clock(&w, 5000, V->mono_ms(V));
	ck_assert_int_eq(seg_writer_append(&w, rec, 1, 1000, &seq, &e), 0);
	first = seq;
	ck_assert_uint_eq(w.segments, 1);
	ck_assert_uint_eq(w.bytes, 64 * KIB);
	ck_assert_int_ge(w.hdr.age_ms, 5000);
	ck_assert_int_lt(w.hdr.age_ms, 5000 + 60000);
	ck_assert_int_eq(seg_writer_append(&w, rec, 1, 1000, &seq, &e), 0);
	ck_assert_uint_eq(w.hdr.base_seq, first); /* same segment */

	/* Suspect: the next append wants a new segment, which the cap
	 * refuses until the old one is counted as removed. */
	seg_writer_set_suspect(&w);
	ck_assert_int_eq(seg_writer_append(&w, rec, 1, 1000, &seq, &e), EDGELOG_EFULL);
	ck_assert_uint_eq(w.next_seq, first + 2);
	seg_writer_forget(&w, 1, 64 * KIB);
	ck_assert_uint_eq(w.segments, 0);
	ck_assert_uint_eq(w.bytes, 0);
	ck_assert_int_eq(seg_writer_append(&w, rec, 1, 1000, &seq, &e), 0);
	ck_assert_uint_eq(seq, first + 2);
	ck_assert_uint_eq(w.hdr.base_seq, seq); /* a new segment */
	ck_assert_uint_eq(w.segments, 1);

	/* Forgetting more than is counted leaves zero, never a wrap. */
	seg_writer_forget(&w, 5, 1ull << 40);
	ck_assert_uint_eq(w.segments, 0);
	ck_assert_uint_eq(w.bytes, 0);

	ck_assert_int_eq(seg_writer_close(&w, &e), 0);
	free(dir);
}
END_TEST

static Suite *writer_suite(void)
{
	Suite *s = segments_suite_create("segments_writer");
	TCase *tc;

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
	tcase_add_test(tc, test_writer_cap_forget_suspect_and_age_clock);
	tcase_add_test(tc, test_recycled_segment_reads_only_its_own_frames);
	tcase_add_test(tc, test_recycled_segment_frame_beyond_marker_never_read);
	tcase_add_test(tc, test_recycled_placeholder_is_stillborn);
	tcase_add_test(tc, test_reader_moves_on_when_its_segment_is_recycled);
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	suite_add_tcase(s, tc);

	tc = tcase_create("concurrency");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_reader_concurrent_with_writer_sees_every_record);
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	suite_add_tcase(s, tc);

	return s;
}

TU_CHECK_MAIN(writer_suite)
