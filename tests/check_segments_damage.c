/*
 * check_segments_damage.c - reading damaged logs: a torn tail at every
 * byte offset (zeros and garbage), random bit flips that skip only the
 * records they hit, zero-filled space as a clean end or as a hole (sealed,
 * live and active segments), and the scanner's results.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "seg_err.h"
#include "seg_format.h"
#include "seg_reader.h"
#include "seg_scan.h"
#include "seg_writer.h"
#include "test_main.h"
#include "test_segments.h"
#include "test_util.h"

/* ------------------------------------------------------------------------
 * Torn tail at every byte offset
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
 * Random bit flips
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
 * Zero-filled space, scanner corner cases
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

static Suite *damage_suite(void)
{
	Suite *s = segments_suite_create("segments_damage");
	TCase *tc;

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

	return s;
}

TU_CHECK_MAIN(damage_suite)
