/*
 * check_segments_cursor.c - the cursor file (FORMAT.md): slot encoding
 * and layout, newer versions refused, corruption never silent, stores
 * alternating slots and loading the newest, a torn newest slot falling
 * back, garbage, missing, empty and truncated files; and the gap list's
 * arithmetic (idempotent adds, merging, forgetting the lowest when full,
 * pruning).
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "seg_cursor.h"
#include "seg_err.h"
#include "seg_format.h"
#include "test_main.h"
#include "test_segments.h"
#include "test_util.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

/* ------------------------------------------------------------------------
 * Cursor file
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
			/* Every counter at its maximum, the clocks at the
			 * ends of their ranges. */
			memset(&c, 0xff, sizeof c);
			c.age_ms = SEG_TS_LIMIT_MS;
			c.last_success_at = -SEG_TS_LIMIT_MS / 1000;
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

/* The cursor's clocks have the ranges a segment header's have (FORMAT.md):
 * a slot whose checksum holds but whose age clock or last success lies
 * outside them is damage, never a value to do arithmetic with. */
START_TEST(test_cursor_clocks_out_of_range_are_damage)
{
	static const struct {
		int64_t age_ms, last_success_at;
		int want;
	} cases[] = {
		{0, 0, SEG_OK},
		{SEG_TS_LIMIT_MS, SEG_TS_LIMIT_MS / 1000, SEG_OK},
		{1, -SEG_TS_LIMIT_MS / 1000, SEG_OK},
		{-1, 0, SEG_BAD},
		{SEG_TS_LIMIT_MS + 1, 0, SEG_BAD},
		{INT64_MAX, 0, SEG_BAD},
		{INT64_MIN, 0, SEG_BAD},
		{0, SEG_TS_LIMIT_MS / 1000 + 1, SEG_BAD},
		{0, -SEG_TS_LIMIT_MS / 1000 - 1, SEG_BAD},
		{0, INT64_MIN, SEG_BAD},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cur_state c = mk_cur(i), d;
		uint8_t slot[CUR_SLOT_SIZE];

		c.age_ms = cases[i].age_ms;
		c.last_success_at = cases[i].last_success_at;
		cur_encode(&c, slot);
		ck_assert_msg(cur_decode(slot, &d) == cases[i].want,
			      "case %zu: age %" PRId64 ", last success %" PRId64, i,
			      cases[i].age_ms, cases[i].last_success_at);
	}
}
END_TEST

/* The age clock saturates in its range whatever its inputs. */
START_TEST(test_age_clock_stays_in_range)
{
	ck_assert(seg_age_at(1000, 50, 80) == 1030);
	ck_assert(seg_age_at(SEG_TS_LIMIT_MS - 5, 0, 100) == SEG_TS_LIMIT_MS);
	ck_assert(seg_age_at(10, 100, 0) == 0); /* monotonic clock behind */
	ck_assert(seg_age_at(INT64_MAX, INT64_MIN, INT64_MAX) == SEG_TS_LIMIT_MS);
	ck_assert(seg_age_at(INT64_MIN, INT64_MAX, INT64_MIN) == 0);
	ck_assert(seg_age_at(0, 0, INT64_MAX) == SEG_TS_LIMIT_MS);
}
END_TEST

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

static Suite *cursor_suite(void)
{
	Suite *s = segments_suite_create("segments_cursor");
	TCase *tc;

	tc = tcase_create("cursor");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_cursor_encode_decode_roundtrip);
	tcase_add_test(tc, test_cursor_decode_corruption_never_silent);
	tcase_add_test(tc, test_cursor_slot_layout_matches_format_md);
	tcase_add_test(tc, test_cursor_newer_version_refused);
	tcase_add_test(tc, test_cursor_clocks_out_of_range_are_damage);
	tcase_add_test(tc, test_age_clock_stays_in_range);
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

	return s;
}

TU_CHECK_MAIN(cursor_suite)
