/*
 * check_repair.c - edgelog_repair on each kind of damage (torn tail, a
 * flipped byte in a middle frame, a bad segment header in the middle and at
 * the end, a truncated sealed segment, a missing, unreadable or half-torn
 * cursor), the lock it takes, and a fault at every I/O step followed by a
 * clean rerun. After every repair: the reader finds no damage, the
 * surviving records are exactly the expected ones, the engine opens and
 * appends, and every byte taken out of segments/ is in quarantine/.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <edgelog.h>

#include "eng_internal.h"
#include "seg_cursor.h"
#include "seg_format.h"
#include "seg_lost.h"
#include "test_main.h"
#include "test_util.h"
#include "test_vfs.h"

/* engine/eng_repair.c (its prototype is not in eng_internal.h yet). */

#define N_RECORDS 400
#define SEG_BYTES 65536

static char *dir;

static void setup(void)
{
	dir = tu_mkdtemp("repair");
}

static void teardown(void)
{
	tu_rm_rf(dir);
	free(dir);
}

static edgelog *open_log(const char *d)
{
	edgelog_config c;

	edgelog_config_init(&c);
	c.dir = d;
	c.segment_bytes = SEG_BYTES;
	c.device_id = "cam-repair";
	return tu_open_ok(&c);
}

/* N_RECORDS predictions in 64 KiB segments (three of them). */
static void fill(const char *d)
{
	edgelog *log = open_log(d);
	uint64_t i, seq;

	for (i = 1; i <= N_RECORDS; i++) {
		tu_buf b = tu_prediction(i, 7);
		ck_assert_int_eq(edgelog_append(log, b.data, b.len, &seq), 0);
		ck_assert_uint_eq(seq, i);
		tu_buf_free(&b);
	}
	ck_assert_int_eq(edgelog_close(log), 0);
}

typedef struct counts {
	uint64_t records, corrupt, first, last;
	int in_order; /* every record is the prediction its seq was made from */
} counts;

static void count_corrupt(void *p, const char *s, uint64_t o, uint64_t l, const char *why)
{
	(void)s;
	(void)o;
	(void)l;
	(void)why;
	((counts *)p)->corrupt++;
}

static counts read_all(const char *d)
{
	edgelog_reader *r;
	edgelog_record rec;
	counts c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.in_order = 1;
	ck_assert_int_eq(edgelog_reader_open(&r, d, 0), 0);
	edgelog_reader_on_corrupt(r, count_corrupt, &c);
	while ((rc = edgelog_reader_next(r, &rec)) == 0) {
		tu_buf want = tu_prediction(rec.seq, 7);
		if (rec.seq <= N_RECORDS &&
		    (want.len != rec.len || memcmp(want.data, rec.data, rec.len)))
			c.in_order = 0;
		tu_buf_free(&want);
		if (!c.records)
			c.first = rec.seq;
		c.last = rec.seq;
		c.records++;
	}
	ck_assert_int_eq(rc, EDGELOG_EOF);
	edgelog_reader_close(r);
	return c;
}

/* Where record seq is: segment name, frame offset, frame size. */
static void locate(const char *d, uint64_t seq, char *seg, uint64_t *off, uint64_t *size)
{
	edgelog_reader *r;
	edgelog_record rec;

	ck_assert_int_eq(edgelog_reader_open(&r, d, seq), 0);
	ck_assert_int_eq(edgelog_reader_next(r, &rec), 0);
	ck_assert_uint_eq(rec.seq, seq);
	strcpy(seg, rec.segment);
	*off = rec.offset;
	*size = SEG_FRAME_HEADER + rec.len;
	edgelog_reader_close(r);
}

static const char *seg_file(const char *d, const char *seg)
{
	static char p[4][4300];
	static int k;
	k = (k + 1) % 4;
	if (snprintf(p[k], sizeof(p[k]), "%s/segments/%s", d, seg) >= (int)sizeof(p[k]))
		ck_abort_msg("path too long: %s", d);
	return p[k];
}

static const char *q_file(const char *d, const char *name)
{
	static char p[4][4300];
	static int k;
	k = (k + 1) % 4;
	if (snprintf(p[k], sizeof(p[k]), "%s/quarantine/%s", d, name) >= (int)sizeof(p[k]))
		ck_abort_msg("path too long: %s", d);
	return p[k];
}

static void poke(const char *path, uint64_t off, const void *data, size_t n)
{
	FILE *f = fopen(path, "r+b");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, (long)off, SEEK_SET), 0);
	ck_assert_uint_eq(fwrite(data, 1, n, f), n);
	fclose(f);
}

static void flip(const char *path, uint64_t off)
{
	tu_buf b = tu_read_file(path);
	uint8_t x = b.data[off] ^ 0x5a;
	poke(path, off, &x, 1);
	tu_buf_free(&b);
}

static int repair(const char *d, edgelog_repair_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	return edgelog_repair(d, rep);
}

static int file_equals(const char *path, const void *data, size_t n)
{
	tu_buf b;
	int eq;

	if (!tu_file_exists(path))
		return 0;
	b = tu_read_file(path);
	eq = b.len == n && !memcmp(b.data, data, n);
	tu_buf_free(&b);
	return eq;
}

/* Some file in d/quarantine holds exactly these bytes. */
static int quarantined(const char *d, const void *data, size_t n)
{
	char qd[4300];
	DIR *dd;
	struct dirent *de;
	int found = 0;

	if (snprintf(qd, sizeof(qd), "%s/quarantine", d) >= (int)sizeof(qd))
		ck_abort_msg("path too long: %s", d);
	if (!(dd = opendir(qd)))
		return 0;
	while (!found && (de = readdir(dd)))
		if (de->d_name[0] != '.')
			found = file_equals(q_file(d, de->d_name), data, n);
	closedir(dd);
	return found;
}

static uint64_t lost_covers(const char *d, uint64_t lo, uint64_t hi)
{
	seg_ranges r = {0};
	tu_buf b = tu_read_file(q_file(d, SEG_LOST_FILE));
	uint64_t a, z;
	int gap;

	ck_assert_int_eq(seg_lost_parse((const char *)b.data, b.len, &r), 0);
	gap = seg_ranges_uncovered(&r, lo, hi, &a, &z);
	seg_ranges_free(&r);
	tu_buf_free(&b);
	return !gap;
}

/* The engine opens the repaired directory, counts what is there, appends. */
static uint64_t reopen_and_append(const char *d, uint64_t *pending)
{
	edgelog *log = open_log(d);
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	uint64_t seq;
	tu_buf b = tu_prediction(99999, 7);

	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	if (pending)
		*pending = st.pending;
	ck_assert_int_eq(edgelog_append(log, b.data, b.len, &seq), 0);
	tu_buf_free(&b);
	ck_assert_int_eq(edgelog_close(log), 0);
	return seq;
}

static void segment_names(const char *d, char names[][SEG_NAME_LEN + 1], int *n)
{
	char sd[4300];
	seg_list l = {0};
	seg_err e;
	size_t i;

	snprintf(sd, sizeof(sd), "%s/segments", d);
	ck_assert_int_eq(seg_list_read(seg_vfs_posix(), sd, &l, &e), 0);
	for (i = 0; i < l.n && i < 8; i++)
		seg_name(names[i], l.base[i]);
	*n = (int)l.n;
	seg_list_free(&l);
}

/* ---- nothing to do -------------------------------------------------------- */

START_TEST(test_clean_directory_is_left_alone)
{
	char segs[8][SEG_NAME_LEN + 1];
	edgelog_repair_report rep;
	tu_buf before[8], cur;
	int n, i;

	fill(dir);
	segment_names(dir, segs, &n);
	ck_assert_int_eq(n, 3);
	for (i = 0; i < n; i++)
		before[i] = tu_read_file(seg_file(dir, segs[i]));
	cur = tu_read_file(tu_path(dir, "cursor"));

	ck_assert_int_eq(repair(dir, &rep), 0);
	ck_assert_uint_eq(rep.segments, 3);
	ck_assert_uint_eq(rep.records, N_RECORDS);
	ck_assert_uint_eq(rep.first_seq, 1);
	ck_assert_uint_eq(rep.last_seq, N_RECORDS);
	ck_assert_uint_eq(rep.torn_tails + rep.damaged_ranges + rep.bad_segments, 0);
	ck_assert_uint_eq(rep.lost_seq_ranges, 0);
	ck_assert_int_eq(rep.cursor_rebuilt, 0);
	ck_assert_str_eq(rep.quarantine_dir, "");
	ck_assert(!tu_file_exists(tu_path(dir, "quarantine")));
	for (i = 0; i < n; i++) {
		ck_assert(file_equals(seg_file(dir, segs[i]), before[i].data, before[i].len));
		tu_buf_free(&before[i]);
	}
	ck_assert(file_equals(tu_path(dir, "cursor"), cur.data, cur.len));
	tu_buf_free(&cur);
	ck_assert_str_eq(edgelog_errmsg(NULL) + strlen(dir),
			 ": 3 segment(s), 400 record(s) kept, "
			 "0 torn tail(s), 0 damaged range(s), "
			 "0 bad segment(s), 0 lost seq range(s)");
}
END_TEST

START_TEST(test_missing_or_not_an_edgelog_directory)
{
	edgelog_repair_report rep;
	char p[4300];

	snprintf(p, sizeof(p), "%s/nope", dir);
	ck_assert_int_eq(repair(p, &rep), EDGELOG_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(edgelog_errmsg(NULL), p));
	/* An empty directory is not a buffer: nothing is created in it. */
	ck_assert_int_eq(repair(dir, &rep), EDGELOG_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(edgelog_errmsg(NULL), "not an edgelog directory"));
	ck_assert(!tu_file_exists(tu_path(dir, "LOCK")));
	ck_assert_int_eq(edgelog_repair(NULL, NULL), EDGELOG_EINVAL);
}
END_TEST

/* ---- torn tails ------------------------------------------------------------ */

START_TEST(test_torn_tail_after_last_frame)
{
	char seg[64], qname[128];
	uint64_t off, size, pending, i;
	edgelog_repair_report rep;
	uint8_t junk[100];
	tu_buf after;
	counts c;

	fill(dir);
	locate(dir, N_RECORDS, seg, &off, &size);
	memset(junk, 0x11, sizeof(junk));
	poke(seg_file(dir, seg), off + size, junk, sizeof(junk));

	ck_assert_int_eq(repair(dir, &rep), 0);
	ck_assert_uint_eq(rep.torn_tails, 1);
	ck_assert_uint_eq(rep.torn_bytes, sizeof(junk));
	ck_assert_uint_eq(rep.damaged_ranges, 0);
	ck_assert_uint_eq(rep.records, N_RECORDS);
	ck_assert_uint_eq(rep.lost_seq_ranges, 0);
	/* Saved, then zeroed in place (the file keeps its size). */
	snprintf(qname, sizeof(qname), "%s.%llu.bad", seg, (unsigned long long)(off + size));
	ck_assert(file_equals(q_file(dir, qname), junk, sizeof(junk)));
	after = tu_read_file(seg_file(dir, seg));
	ck_assert_uint_eq(after.len, SEG_BYTES);
	for (i = off + size; i < after.len; i++)
		ck_assert_uint_eq(after.data[i], 0);
	tu_buf_free(&after);

	c = read_all(dir);
	ck_assert_uint_eq(c.records, N_RECORDS);
	ck_assert_uint_eq(c.corrupt, 0);
	ck_assert(c.in_order);
	ck_assert_uint_eq(reopen_and_append(dir, &pending), N_RECORDS + 1);
	ck_assert_uint_eq(pending, N_RECORDS);
}
END_TEST

START_TEST(test_truncated_newest_segment_mid_frame)
{
	char seg[64];
	uint64_t off, size, pending;
	edgelog_repair_report rep;
	counts c;

	fill(dir);
	locate(dir, N_RECORDS, seg, &off, &size);
	/* The file ends 30 bytes into its last frame. */
	ck_assert_int_eq(truncate(seg_file(dir, seg), (off_t)(off + 30)), 0);

	ck_assert_int_eq(repair(dir, &rep), 0);
	ck_assert_uint_eq(rep.torn_tails, 1);
	ck_assert_uint_eq(rep.torn_bytes, 30);
	ck_assert_uint_eq(rep.records, N_RECORDS - 1);
	ck_assert_uint_eq(rep.last_seq, N_RECORDS - 1);
	c = read_all(dir);
	ck_assert_uint_eq(c.records, N_RECORDS - 1);
	ck_assert_uint_eq(c.corrupt, 0);
	/* The cursor remembers seq 400 was handed out: it is not reused. */
	ck_assert_uint_eq(reopen_and_append(dir, &pending), N_RECORDS + 1);
	ck_assert_uint_eq(pending, N_RECORDS - 1);
}
END_TEST

START_TEST(test_truncated_sealed_segment)
{
	char seg[64], first_seg[64];
	uint64_t off, size, o1, s1;
	edgelog_repair_report rep;
	tu_buf orig;
	counts c;

	fill(dir);
	locate(dir, 1, first_seg, &o1, &s1);
	locate(dir, 100, seg, &off, &size);
	ck_assert_str_eq(seg, first_seg);
	orig = tu_read_file(seg_file(dir, seg));
	ck_assert_int_eq(truncate(seg_file(dir, seg), (off_t)(off + 30)), 0);

	ck_assert_int_eq(repair(dir, &rep), 0);
	/* A sealed segment was complete: its invalid tail is damage. */
	ck_assert_uint_eq(rep.torn_tails, 0);
	ck_assert_uint_eq(rep.damaged_ranges, 1);
	ck_assert_uint_eq(rep.damaged_bytes, 30);
	ck_assert_uint_eq(rep.lost_seq_ranges, 1);
	ck_assert(quarantined(dir, orig.data + off, 30));
	tu_buf_free(&orig);
	c = read_all(dir);
	ck_assert_uint_eq(c.corrupt, 0);
	ck_assert_uint_eq(c.records, rep.records);
	ck_assert_uint_eq(c.last, N_RECORDS);
	/* Seqs 100 .. (the next segment's base - 1) are recorded as lost. */
	ck_assert(lost_covers(dir, 100, 100));
	ck_assert_uint_eq(reopen_and_append(dir, NULL), N_RECORDS + 1);
}
END_TEST

/* ---- damage inside a segment ---------------------------------------------- */

START_TEST(test_flipped_byte_in_middle_frame)
{
	char seg[64], qname[128];
	uint64_t off, size, pending, k;
	edgelog_repair_report rep;
	tu_buf orig;
	counts c;

	fill(dir);
	locate(dir, 50, seg, &off, &size);
	flip(seg_file(dir, seg), off + SEG_FRAME_HEADER + 7);
	orig = tu_read_file(seg_file(dir, seg));
	c = read_all(dir);
	ck_assert_uint_eq(c.corrupt, 1);

	ck_assert_int_eq(repair(dir, &rep), 0);
	ck_assert_uint_eq(rep.damaged_ranges, 1);
	ck_assert_uint_eq(rep.damaged_bytes, size);
	ck_assert_uint_eq(rep.records, N_RECORDS - 1);
	ck_assert_uint_eq(rep.lost_seq_ranges, 1);
	ck_assert_uint_eq(rep.bad_segments + rep.torn_tails, 0);
	ck_assert_str_eq(rep.quarantine_dir, tu_path(dir, "quarantine"));
	/* The damaged frame's bytes, exactly, under its segment and offset. */
	snprintf(qname, sizeof(qname), "%s.%llu.bad", seg, (unsigned long long)off);
	ck_assert(file_equals(q_file(dir, qname), orig.data + off, size));
	ck_assert(lost_covers(dir, 50, 50));
	ck_assert(!lost_covers(dir, 49, 50));
	/* The frames after it moved up; the file keeps its size. */
	ck_assert_uint_eq(tu_file_size(seg_file(dir, seg)), SEG_BYTES);
	tu_buf_free(&orig);

	c = read_all(dir);
	ck_assert_uint_eq(c.records, N_RECORDS - 1);
	ck_assert_uint_eq(c.corrupt, 0);
	ck_assert(c.in_order);
	ck_assert_uint_eq(c.first, 1);
	ck_assert_uint_eq(c.last, N_RECORDS);
	locate(dir, 51, seg, &k, &size);
	ck_assert_uint_eq(k, off);

	/* The cursor's gaps keep the pending count exact. */
	ck_assert_uint_eq(reopen_and_append(dir, &pending), N_RECORDS + 1);
	ck_assert_uint_eq(pending, N_RECORDS - 1);

	/* A second run finds nothing to do. */
	ck_assert_int_eq(repair(dir, &rep), 0);
	ck_assert_uint_eq(rep.damaged_ranges + rep.lost_seq_ranges + rep.torn_tails, 0);
	ck_assert_uint_eq(rep.records, N_RECORDS);
}
END_TEST

/* ---- recycled segments (format version 2) ------------------------------ */

/* N_RECORDS, all acknowledged and cleaned up (the oldest segment file is
 * recycled), then records up to RC_LAST, the last ones in the recycled
 * file, with a previous life's frames after them. Returns the recycled
 * segment's name in seg. */
#define RC_LAST 500
static void fill_recycled(const char *d, char *seg)
{
	edgelog *log = open_log(d);
	uint64_t i, seq;
	uint64_t off, size;

	for (i = 1; i <= RC_LAST; i++) {
		tu_buf b = tu_prediction(i, 7);
		ck_assert_int_eq(edgelog_append(log, b.data, b.len, &seq), 0);
		ck_assert_uint_eq(seq, i);
		tu_buf_free(&b);
		if (i == N_RECORDS) {
			ck_assert_int_eq(edgelog_sync(log), 0);
			ck_assert_int_eq(edgelog_ack(log, N_RECORDS), 0);
			ck_assert_int_eq(edgelog_cleanup(log, 0), 0);
			ck_assert_int_eq(edgelog_step(log, 0), 0);
		}
	}
	ck_assert_int_eq(edgelog_close(log), 0);
	locate(d, RC_LAST, seg, &off, &size);
	tu_buf h = tu_read_file(seg_file(d, seg));
	ck_assert_uint_eq(seg_get32(h.data + 8), SEG_VERSION_RECYCLED);
	tu_buf_free(&h);
}

/* Every record read is the prediction its seq was made from. */
static uint64_t read_checked(const char *d, uint64_t *corrupt)
{
	edgelog_reader *r;
	edgelog_record rec;
	counts c;
	int rc;

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(edgelog_reader_open(&r, d, 0), 0);
	edgelog_reader_on_corrupt(r, count_corrupt, &c);
	while ((rc = edgelog_reader_next(r, &rec)) == 0) {
		tu_buf want = tu_prediction(rec.seq, 7);
		ck_assert_msg(want.len == rec.len && !memcmp(want.data, rec.data, rec.len),
			      "seq %llu is not the record appended there",
			      (unsigned long long)rec.seq);
		tu_buf_free(&want);
		c.records++;
	}
	ck_assert_int_eq(rc, EDGELOG_EOF);
	edgelog_reader_close(r);
	*corrupt = c.corrupt;
	return c.records;
}

START_TEST(test_recycled_segment_torn_tail_is_marked_not_zeroed)
{
	char seg[64];
	uint64_t off, size, corrupt, n0, n1;
	edgelog_repair_report rep;
	uint8_t junk[100];

	fill_recycled(dir, seg);
	n0 = read_checked(dir, &corrupt);
	ck_assert_uint_eq(corrupt, 0);
	locate(dir, RC_LAST, seg, &off, &size);
	memset(junk, 0x11, sizeof(junk));
	poke(seg_file(dir, seg), off + size, junk, sizeof(junk));
	tu_buf before = tu_read_file(seg_file(dir, seg));

	ck_assert_int_eq(repair(dir, &rep), 0);
	ck_assert_uint_eq(rep.torn_tails, 1);
	/* No marker after the junk: the tail runs to the end of the file
	 * (the previous life's bytes cannot be told from it). */
	ck_assert_uint_eq(rep.torn_bytes, SEG_BYTES - (off + size));
	ck_assert_uint_eq(rep.damaged_ranges, 0);
	ck_assert(quarantined(dir, before.data + off + size, SEG_BYTES - (off + size)));
	/* Marked, not zeroed: only 16 bytes changed. */
	tu_buf after = tu_read_file(seg_file(dir, seg));
	ck_assert_uint_eq(after.len, before.len);
	ck_assert(!memcmp(after.data, before.data, off + size));
	ck_assert(!memcmp(after.data + off + size + SEG_FRAME_HEADER,
			  before.data + off + size + SEG_FRAME_HEADER,
			  after.len - off - size - SEG_FRAME_HEADER));
	tu_buf_free(&after);
	tu_buf_free(&before);

	n1 = read_checked(dir, &corrupt);
	ck_assert_uint_eq(corrupt, 0);
	ck_assert_uint_eq(n1, n0);
	ck_assert_uint_eq(reopen_and_append(dir, NULL), RC_LAST + 1);
	ck_assert_int_eq(repair(dir, &rep), 0);
	ck_assert_uint_eq(rep.torn_tails + rep.damaged_ranges, 0);
}
END_TEST

START_TEST(test_recycled_segment_damage_is_rewritten_as_version_1)
{
	char seg[64];
	uint64_t off, size, corrupt, n0, n1;
	edgelog_repair_report rep;

	fill_recycled(dir, seg);
	n0 = read_checked(dir, &corrupt);
	locate(dir, RC_LAST - 20, seg, &off, &size);
	flip(seg_file(dir, seg), off + SEG_FRAME_HEADER + 7);
	read_checked(dir, &corrupt);
	ck_assert_uint_eq(corrupt, 1);

	ck_assert_int_eq(repair(dir, &rep), 0);
	ck_assert_uint_eq(rep.damaged_ranges, 1);
	ck_assert_uint_eq(rep.damaged_bytes, size);
	ck_assert_uint_eq(rep.torn_tails, 0);
	ck_assert(lost_covers(dir, RC_LAST - 20, RC_LAST - 20));
	/* Its verified frames, zeros after them: version 1. */
	tu_buf h = tu_read_file(seg_file(dir, seg));
	ck_assert_uint_eq(seg_get32(h.data + 8), SEG_VERSION_FRESH);
	tu_buf_free(&h);
	n1 = read_checked(dir, &corrupt);
	ck_assert_uint_eq(corrupt, 0);
	ck_assert_uint_eq(n1, n0 - 1);
	ck_assert_uint_eq(reopen_and_append(dir, NULL), RC_LAST + 1);
}
END_TEST

START_TEST(test_several_damaged_frames_across_segments)
{
	static const uint64_t hit[] = {3, 4, 150, 200, 330};
	char seg[64];
	uint64_t off, size;
	edgelog_repair_report rep;
	size_t i;
	counts c;

	fill(dir);
	for (i = 0; i < sizeof(hit) / sizeof(hit[0]); i++) {
		locate(dir, hit[i], seg, &off, &size);
		flip(seg_file(dir, seg), off + 5); /* the length field */
	}
	ck_assert_int_eq(repair(dir, &rep), 0);
	ck_assert_uint_eq(rep.records, N_RECORDS - 5);
	/* 3 and 4 are adjacent: one range, one lost seq range. */
	ck_assert_uint_eq(rep.damaged_ranges, 4);
	ck_assert_uint_eq(rep.lost_seq_ranges, 4);
	c = read_all(dir);
	ck_assert_uint_eq(c.records, N_RECORDS - 5);
	ck_assert_uint_eq(c.corrupt, 0);
	ck_assert(c.in_order);
	ck_assert(lost_covers(dir, 3, 4));
	ck_assert(lost_covers(dir, 330, 330));
	ck_assert_uint_eq(reopen_and_append(dir, NULL), N_RECORDS + 1);
}
END_TEST

/* ---- unreadable segment headers ------------------------------------------- */

START_TEST(test_bad_header_in_middle_segment)
{
	char segs[8][SEG_NAME_LEN + 1], qname[64];
	edgelog_repair_report rep;
	uint64_t base2, base3;
	tu_buf orig;
	counts c;
	int n;

	fill(dir);
	segment_names(dir, segs, &n);
	ck_assert_int_eq(n, 3);
	seg_name_parse(segs[1], &base2);
	seg_name_parse(segs[2], &base3);
	flip(seg_file(dir, segs[1]), 20);
	orig = tu_read_file(seg_file(dir, segs[1]));

	ck_assert_int_eq(repair(dir, &rep), 0);
	ck_assert_uint_eq(rep.bad_segments, 1);
	ck_assert_uint_eq(rep.records, N_RECORDS - (base3 - base2));
	ck_assert_uint_eq(rep.lost_seq_ranges, 1);
	snprintf(qname, sizeof(qname), "%s.bad", segs[1]);
	ck_assert(file_equals(q_file(dir, qname), orig.data, orig.len));
	ck_assert(!tu_file_exists(seg_file(dir, segs[1])));
	tu_buf_free(&orig);
	ck_assert(lost_covers(dir, base2, base3 - 1));

	c = read_all(dir);
	ck_assert_uint_eq(c.corrupt, 0);
	ck_assert_uint_eq(c.records, N_RECORDS - (base3 - base2));
	ck_assert_uint_eq(reopen_and_append(dir, NULL), N_RECORDS + 1);
}
END_TEST

START_TEST(test_bad_header_in_newest_segment_never_reuses_seqs)
{
	char segs[8][SEG_NAME_LEN + 1];
	edgelog_repair_report rep;
	uint64_t base3, bound;
	counts c;
	int n;

	fill(dir);
	segment_names(dir, segs, &n);
	seg_name_parse(segs[2], &base3);
	flip(seg_file(dir, segs[2]), 40);
	/* And no cursor to say how far the seqs went. */
	ck_assert_int_eq(unlink(tu_path(dir, "cursor")), 0);

	ck_assert_int_eq(repair(dir, &rep), 0);
	ck_assert_uint_eq(rep.bad_segments, 1);
	ck_assert_int_eq(rep.cursor_rebuilt, 1);
	ck_assert_uint_eq(rep.records, base3 - 1);
	c = read_all(dir);
	ck_assert_uint_eq(c.corrupt, 0);
	ck_assert_uint_eq(c.last, base3 - 1);
	/* Its records may have been uploaded: no seq it could have held (a
	 * frame is at least 17 bytes) is handed out again. */
	bound = base3 + (SEG_BYTES - SEG_HEADER_SIZE) / (SEG_FRAME_HEADER + 1);
	ck_assert_uint_gt(reopen_and_append(dir, NULL), bound);
}
END_TEST

/* ---- headers whose ranges cannot be right (issue 9, defect 8) ------------ */

/* A segment file written by hand: a header that verifies (checksum and
 * name right) with the given fields, then n one-byte records with
 * seq_delta first_delta + i and ts_delta 1000 * (i + 1). */
static void craft_segment(const char *d, uint64_t base, int64_t base_ts, int64_t age_ms, int n,
			  uint32_t first_delta)
{
	uint8_t buf[4096];
	seg_header h;
	char name[SEG_NAME_LEN + 1], path[4400];
	size_t pos = SEG_HEADER_SIZE;
	int i;

	memset(buf, 0, sizeof(buf));
	memset(&h, 0, sizeof(h));
	h.version = SEG_VERSION_FRESH;
	h.base_seq = base;
	h.base_ts_ms = base_ts;
	h.salt = 0x5eed5eed5eed5eedull;
	h.age_ms = age_ms;
	seg_header_encode(&h, buf);
	for (i = 0; i < n; i++) {
		uint8_t payload = (uint8_t)(1 + i); /* a positive fixint */
		seg_frame_encode(buf + pos, h.salt, first_delta + (uint32_t)i, 1000 * (i + 1),
				 &payload, 1);
		buf[pos + SEG_FRAME_HEADER] = payload;
		pos += SEG_FRAME_HEADER + 1;
	}
	seg_name(name, base);
	snprintf(path, sizeof(path), "%s/segments/%s", d, name);
	tu_write_file(path, buf, sizeof(buf));
}

START_TEST(test_header_ranges_checked)
{
	static const struct {
		uint64_t base;
		int64_t ts, age;
		int ok;
	} c[] = {
		{1, 1700000000000ll, 1000, 1},
		{SEG_SEQ_LIMIT - 1, SEG_TS_LIMIT_MS, SEG_TS_LIMIT_MS, 1},
		{5, -SEG_TS_LIMIT_MS, 0, 1},
		{SEG_SEQ_LIMIT, 1700000000000ll, 1000, 0},
		{UINT64_MAX - 2, 1700000000000ll, 1000, 0},
		{5, SEG_TS_LIMIT_MS + 1, 1000, 0},
		{5, INT64_MAX - 10, 1000, 0},
		{5, INT64_MIN + 5, 1000, 0},
		{5, 1700000000000ll, -1, 0},
		{5, 1700000000000ll, INT64_MAX, 0},
	};
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		uint8_t buf[SEG_HEADER_SIZE];
		seg_header h, got;
		memset(&h, 0, sizeof(h));
		h.version = SEG_VERSION_FRESH;
		h.base_seq = c[i].base;
		h.base_ts_ms = c[i].ts;
		h.age_ms = c[i].age;
		h.salt = 42;
		seg_header_encode(&h, buf);
		ck_assert_msg(seg_header_decode(buf, &got) == (c[i].ok ? SEG_OK : SEG_BAD),
			      "case %zu: base %llu ts %lld age %lld", i,
			      (unsigned long long)c[i].base, (long long)c[i].ts,
			      (long long)c[i].age);
	}
}
END_TEST

/* A segment whose base_seq is so high that base + seq_delta wraps past
 * 2^64: the reader once returned seqs below the base (0, 1, ...), and after
 * open the writer took the wrapped seq as the newest. Now it is damage:
 * reported by the reader, quarantined at open and by repair; every real
 * record stays readable and seqs go on from the real ones. */
START_TEST(test_header_seq_wrapping_is_damage)
{
	edgelog_repair_report rep;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	counts c;
	int live = 0;

	fill(dir);
	craft_segment(dir, UINT64_MAX - 2, 1700000000000ll, 1000, 5, 0);
	/* The newest file, its header refused: "being created" for a reader
	 * (never its records, whose seqs would wrap to 0, 1). */
	c = read_all(dir);
	ck_assert_uint_eq(c.records, N_RECORDS);
	ck_assert_uint_eq(c.last, N_RECORDS);
	ck_assert(c.in_order);
	ck_assert_int_eq(edgelog_status_dir(dir, &st, &live), 0);
	ck_assert_uint_eq(reopen_and_append(dir, NULL), N_RECORDS + 1);
	ck_assert_int_eq(repair(dir, &rep), 0);
	ck_assert_uint_eq(rep.bad_segments, 1);
	c = read_all(dir);
	ck_assert_uint_eq(c.corrupt, 0);
	ck_assert_uint_eq(c.records, N_RECORDS + 1);
	ck_assert_uint_eq(c.last, N_RECORDS + 1);
	ck_assert_uint_eq(reopen_and_append(dir, NULL), N_RECORDS + 2);
}
END_TEST

/* Timestamps (and an age clock) at the ends of int64: base_ts + ts_delta
 * and now - base_ts once overflowed (undefined behaviour, UBSan). Now such
 * a header is damage everywhere: reader, open, offline status, repair. */
START_TEST(test_header_timestamps_out_of_range_are_damage)
{
	static const int64_t ts[][2] = {
		{INT64_MAX - 10, 1000},
		{INT64_MIN + 5, 1000},
		{1700000000000ll, -1},
	};
	int k = _i;
	char segs[8][SEG_NAME_LEN + 1];
	edgelog_repair_report rep;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	counts c;
	int live = 0, n;
	uint64_t seq;

	fill(dir);
	craft_segment(dir, N_RECORDS + 1, ts[k][0], ts[k][1], 3, 0);
	/* And a sound segment after it, so it is not the newest. */
	craft_segment(dir, 1000, 1700000000000ll, 1000, 2, 0);
	c = read_all(dir);
	ck_assert_uint_eq(c.records, N_RECORDS + 2);
	ck_assert_uint_eq(c.last, 1001);
	ck_assert_uint_eq(c.corrupt, 1);
	ck_assert_int_eq(edgelog_status_dir(dir, &st, &live), 0);
	ck_assert_uint_ge(st.pending, N_RECORDS + 2);
	seq = reopen_and_append(dir, NULL);
	ck_assert_uint_eq(seq, 1002);
	segment_names(dir, segs, &n);
	ck_assert_int_eq(repair(dir, &rep), 0);
	ck_assert_uint_eq(rep.bad_segments, 1);
	c = read_all(dir);
	ck_assert_uint_eq(c.corrupt, 0);
	ck_assert_uint_eq(c.records, N_RECORDS + 3);
	ck_assert_uint_eq(c.last, seq);
}
END_TEST

START_TEST(test_engine_quarantined_segment_moves_to_quarantine)
{
	char segs[8][SEG_NAME_LEN + 1], from[4400], qname[64];
	edgelog_repair_report rep;
	tu_buf orig;
	int n;

	fill(dir);
	segment_names(dir, segs, &n);
	/* What open's recovery does with an unreadable newest segment. */
	flip(seg_file(dir, segs[2]), 40);
	orig = tu_read_file(seg_file(dir, segs[2]));
	snprintf(from, sizeof(from), "%s.bad", seg_file(dir, segs[2]));
	ck_assert_int_eq(rename(seg_file(dir, segs[2]), from), 0);

	ck_assert_int_eq(repair(dir, &rep), 0);
	ck_assert_uint_eq(rep.bad_segments, 1);
	ck_assert(!tu_file_exists(from));
	snprintf(qname, sizeof(qname), "%s.bad", segs[2]);
	ck_assert(file_equals(q_file(dir, qname), orig.data, orig.len));
	tu_buf_free(&orig);
	ck_assert_uint_eq(tu_count_entries(tu_path(dir, "segments"), ".bad"), 0);
}
END_TEST

/* ---- the cursor -------------------------------------------------------------- */

START_TEST(test_missing_cursor_is_rebuilt_conservatively)
{
	edgelog_repair_report rep;
	edgelog *log;
	cur_state cur;
	seg_err e;
	uint64_t pending, first_base;
	char segs[8][SEG_NAME_LEN + 1];
	int how, n;

	fill(dir);
	/* Acknowledge and compact the first segment away, so the oldest
	 * stored seq is not 1. */
	log = open_log(dir);
	ck_assert_int_eq(edgelog_ack(log, 250), 0);
	ck_assert_int_eq(edgelog_cleanup(log, 0), 0);
	ck_assert_int_eq(edgelog_close(log), 0);
	segment_names(dir, segs, &n);
	seg_name_parse(segs[0], &first_base);
	ck_assert_uint_gt(first_base, 1);
	ck_assert_int_eq(unlink(tu_path(dir, "cursor")), 0);

	ck_assert_int_eq(repair(dir, &rep), 0);
	ck_assert_int_eq(rep.cursor_rebuilt, 1);
	ck_assert_int_eq(cur_load(seg_vfs_posix(), tu_path(dir, "cursor"), &cur, &how, &e), 0);
	ck_assert_int_eq(how, CUR_LOADED);
	/* Nothing that is stored counts as acknowledged (the ack of 250 is
	 * forgotten: those records are sent again). */
	ck_assert_uint_eq(cur.acked_seq, first_base - 1);
	ck_assert_uint_eq(cur.last_seq, N_RECORDS);
	ck_assert_uint_eq(reopen_and_append(dir, &pending), N_RECORDS + 1);
	ck_assert_uint_eq(pending, N_RECORDS - first_base + 1);
}
END_TEST

START_TEST(test_rebuilt_cursor_keeps_the_lost_ranges_as_gaps)
{
	char seg[64];
	uint64_t off, size, pending;
	edgelog_repair_report rep;

	fill(dir);
	locate(dir, 77, seg, &off, &size);
	flip(seg_file(dir, seg), off + SEG_FRAME_HEADER + 1);
	ck_assert_int_eq(unlink(tu_path(dir, "cursor")), 0);
	ck_assert_int_eq(repair(dir, &rep), 0);
	ck_assert_int_eq(rep.cursor_rebuilt, 1);
	ck_assert_uint_eq(rep.lost_seq_ranges, 1);
	/* Pending counts the records, not the seq range. */
	ck_assert_uint_eq(reopen_and_append(dir, &pending), N_RECORDS + 1);
	ck_assert_uint_eq(pending, N_RECORDS - 1);
}
END_TEST

START_TEST(test_garbage_cursor_is_saved_and_rebuilt)
{
	edgelog_repair_report rep;
	/* Larger than any cursor: kept whole, as found (issue 9 item 11:
	 * only the first 1024 bytes used to be saved). */
	uint8_t junk[3 * CUR_FILE_SIZE + 17];
	cur_state cur;
	seg_err e;
	int how;

	fill(dir);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(0xab ^ (i * 7));
	tu_write_file(tu_path(dir, "cursor"), junk, sizeof(junk));

	ck_assert_int_eq(repair(dir, &rep), 0);
	ck_assert_int_eq(rep.cursor_rebuilt, 1);
	ck_assert(file_equals(q_file(dir, "cursor.bad"), junk, sizeof(junk)));
	ck_assert_int_eq(cur_load(seg_vfs_posix(), tu_path(dir, "cursor"), &cur, &how, &e), 0);
	ck_assert_int_eq(how, CUR_LOADED);
	ck_assert_uint_eq(cur.acked_seq, 0);
	ck_assert_uint_eq(cur.last_seq, N_RECORDS);
	ck_assert_uint_eq(cur.cursor_resets, 1);
	ck_assert_uint_eq(reopen_and_append(dir, NULL), N_RECORDS + 1);
}
END_TEST

/* A garbage cursor of any size is kept whole: moved, not copied. A sparse
 * terabyte (damage can make a file claim any size) was read into one
 * malloc, which failed (ASan: allocation-size-too-big), so repair could
 * not fix the directory; a few GB would have filled memory and the disk. */
START_TEST(test_huge_garbage_cursor_is_moved_whole)
{
	const uint64_t huge = ((uint64_t)1 << 40) + 1;
	const char junk[] = "not a cursor";
	edgelog_repair_report rep;
	struct stat st;
	uint8_t head[sizeof(junk)];
	cur_state cur;
	seg_err e;
	int how, fd;

	fill(dir);
	tu_write_file(tu_path(dir, "cursor"), junk, sizeof(junk));
	ck_assert_int_eq(truncate(tu_path(dir, "cursor"), (off_t)huge), 0);

	ck_assert_int_eq(repair(dir, &rep), 0);
	ck_assert_int_eq(rep.cursor_rebuilt, 1);
	ck_assert_int_eq(stat(q_file(dir, "cursor.bad"), &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, huge);
	fd = open(q_file(dir, "cursor.bad"), O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, head, sizeof(head)), (ssize_t)sizeof(head));
	close(fd);
	ck_assert(!memcmp(head, junk, sizeof(junk)));
	ck_assert_int_eq(cur_load(seg_vfs_posix(), tu_path(dir, "cursor"), &cur, &how, &e), 0);
	ck_assert_int_eq(how, CUR_LOADED);
	ck_assert_uint_eq(cur.acked_seq, 0);
	ck_assert_uint_eq(cur.last_seq, N_RECORDS);
	ck_assert_uint_eq(reopen_and_append(dir, NULL), N_RECORDS + 1);
}
END_TEST

START_TEST(test_damaged_newest_cursor_slot_falls_back)
{
	edgelog_repair_report rep;
	edgelog *log;
	cur_state s0, s1, cur;
	seg_err e;
	tu_buf f;
	int how, newest;
	uint64_t older_acked;

	fill(dir);
	log = open_log(dir);
	ck_assert_int_eq(edgelog_ack(log, 100), 0);
	ck_assert_int_eq(edgelog_ack(log, 300), 0);
	ck_assert_int_eq(edgelog_close(log), 0);
	f = tu_read_file(tu_path(dir, "cursor"));
	ck_assert_int_eq(cur_decode(f.data, &s0), SEG_OK);
	ck_assert_int_eq(cur_decode(f.data + CUR_SLOT_STRIDE, &s1), SEG_OK);
	newest = s1.generation > s0.generation;
	older_acked = newest ? s0.acked_seq : s1.acked_seq;
	tu_buf_free(&f);
	flip(tu_path(dir, "cursor"), (uint64_t)newest * CUR_SLOT_STRIDE + 30);
	ck_assert_int_eq(cur_load(seg_vfs_posix(), tu_path(dir, "cursor"), &cur, &how, &e), 0);
	ck_assert_int_eq(how, CUR_FALLBACK);

	ck_assert_int_eq(repair(dir, &rep), 0);
	ck_assert_int_eq(rep.cursor_rebuilt, 1);
	ck_assert_int_eq(cur_load(seg_vfs_posix(), tu_path(dir, "cursor"), &cur, &how, &e), 0);
	ck_assert_int_eq(how, CUR_LOADED);
	ck_assert_uint_eq(cur.acked_seq, older_acked);
	ck_assert_uint_le(cur.acked_seq, 300);
}
END_TEST

/* ---- the lock ------------------------------------------------------------------ */

START_TEST(test_refuses_while_this_process_holds_the_lock)
{
	edgelog_repair_report rep;
	char want[64];
	edgelog *log;

	fill(dir);
	log = open_log(dir);
	ck_assert_int_eq(repair(dir, &rep), EDGELOG_ELOCKED);
	snprintf(want, sizeof(want), "process %ld", (long)getpid());
	ck_assert_msg(strstr(edgelog_errmsg(NULL), want), "%s", edgelog_errmsg(NULL));
	ck_assert_int_eq(edgelog_close(log), 0);
	ck_assert_int_eq(repair(dir, &rep), 0);
}
END_TEST

START_TEST(test_refuses_while_another_process_holds_the_lock)
{
	edgelog_repair_report rep;
	char want[64], ready;
	int p[2], status;
	pid_t pid;

	fill(dir);
	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		edgelog_config c;
		edgelog *log;
		edgelog_config_init(&c);
		c.dir = dir;
		c.segment_bytes = SEG_BYTES;
		if (edgelog_open(&log, &c))
			_exit(3);
		if (write(p[1], "x", 1) != 1)
			_exit(4);
		for (;;)
			pause();
	}
	close(p[1]);
	ck_assert_int_eq(read(p[0], &ready, 1), 1);
	close(p[0]);
	ck_assert_int_eq(repair(dir, &rep), EDGELOG_ELOCKED);
	snprintf(want, sizeof(want), "process %ld", (long)pid);
	ck_assert_msg(strstr(edgelog_errmsg(NULL), want), "%s", edgelog_errmsg(NULL));
	ck_assert(!tu_file_exists(tu_path(dir, "quarantine")));
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(repair(dir, &rep), 0);
	ck_assert_uint_eq(rep.records, N_RECORDS);
}
END_TEST

/* ---- a fault at every step, then a clean run ----------------------------------- */

static void copy_file(const char *from, const char *to)
{
	tu_buf b = tu_read_file(from);
	tu_write_file(to, b.data, b.len);
	tu_buf_free(&b);
}

static void copy_tree(const char *from, const char *to)
{
	DIR *d;
	struct dirent *de;
	struct stat st;
	char a[4400], b[4400];

	ck_assert_int_eq(mkdir(to, 0700), 0);
	ck_assert_ptr_nonnull(d = opendir(from));
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(a, sizeof(a), "%s/%s", from, de->d_name);
		snprintf(b, sizeof(b), "%s/%s", to, de->d_name);
		ck_assert_int_eq(stat(a, &st), 0);
		if (S_ISDIR(st.st_mode))
			copy_tree(a, b);
		else
			copy_file(a, b);
	}
	closedir(d);
}

START_TEST(test_fault_at_every_step_then_rerun)
{
	char seg[64], tseg[64], src[4400], work[4400];
	uint64_t off, size, toff, tsize, total, k;
	edgelog_repair_report rep;
	tvfs_fault *f = tvfs_fault_new(NULL);
	uint8_t junk[64], frame[1024];
	cur_state cur;
	seg_err e;
	tu_buf b;
	counts c;
	int how, rc, failed = 0;

	snprintf(src, sizeof(src), "%s/src", dir);
	fill(src);
	/* Three kinds of damage at once: a middle frame, a torn tail and an
	 * unreadable cursor. */
	locate(src, 120, seg, &off, &size);
	flip(seg_file(src, seg), off + SEG_FRAME_HEADER + 3);
	b = tu_read_file(seg_file(src, seg));
	ck_assert_uint_le(size, sizeof(frame));
	memcpy(frame, b.data + off, size);
	tu_buf_free(&b);
	locate(src, N_RECORDS, tseg, &toff, &tsize);
	memset(junk, 0x77, sizeof(junk));
	poke(seg_file(src, tseg), toff + tsize, junk, sizeof(junk));
	memset(junk, 0xcd, sizeof(junk));
	poke(tu_path(src, "cursor"), 0, junk, sizeof(junk));
	poke(tu_path(src, "cursor"), CUR_SLOT_STRIDE, junk, sizeof(junk));

	/* Learn how many operations a repair takes. */
	snprintf(work, sizeof(work), "%s/w0", dir);
	copy_tree(src, work);
	memset(&rep, 0, sizeof(rep));
	ck_assert_int_eq(eng_repair_vfs(tvfs_fault_vfs(f), work, &rep), 0);
	total = tvfs_fault_count(f, TVFS_OP_COUNTED);
	ck_assert_uint_gt(total, 10);
	tu_rm_rf(work);

	for (k = 1; k <= total; k++) {
		snprintf(work, sizeof(work), "%s/w%llu", dir, (unsigned long long)k);
		copy_tree(src, work);
		tvfs_fault_reset(f);
		tvfs_fault_fail_nth(f, k, -EIO);
		memset(&rep, 0, sizeof(rep));
		rc = eng_repair_vfs(tvfs_fault_vfs(f), work, &rep);
		if (rc)
			failed++;
		/* Whatever happened, a clean run finishes the job. */
		ck_assert_msg(repair(work, &rep) == 0, "rerun after fault %llu: %s",
			      (unsigned long long)k, edgelog_errmsg(NULL));
		c = read_all(work);
		ck_assert_msg(c.corrupt == 0 && c.records == N_RECORDS - 1 && c.in_order,
			      "fault %llu: %llu records, %llu damaged", (unsigned long long)k,
			      (unsigned long long)c.records, (unsigned long long)c.corrupt);
		ck_assert_msg(quarantined(work, frame, size),
			      "fault %llu: the damaged frame is not in quarantine/",
			      (unsigned long long)k);
		ck_assert_int_eq(cur_load(seg_vfs_posix(), tu_path(work, "cursor"), &cur, &how, &e),
				 0);
		ck_assert_int_eq(how, CUR_LOADED);
		ck_assert_uint_eq(cur.acked_seq, 0);
		ck_assert(lost_covers(work, 120, 120));
		tu_rm_rf(work);
	}
	ck_assert_int_gt(failed, 0);
	tvfs_fault_free(f);
}
END_TEST

/* ---- edgelog_salvage through the I/O seam --------------------------------
 *
 * The source: N_RECORDS predictions on the in-memory file system, record 120
 * damaged (so the copy has a lost range and a lost-seqs file). */
#define SV_SRC "/m/src"
#define SV_OUT "/m/out"

static tvfs_mem *salvage_source(void)
{
	tvfs_mem *m = tvfs_mem_new(5);
	const seg_vfs *v = tvfs_mem_vfs(m);
	edgelog_reader *r;
	edgelog_record rec;
	edgelog_config c;
	edgelog *log;
	char path[256];
	uint8_t *data;
	size_t size;
	uint64_t i, seq, off = 0;

	tvfs_mem_set_loss(m, 0, 0, 0); /* a cut keeps exactly what was synced */
	ck_assert_int_eq(tvfs_mem_mkdirs(m, "/m"), 0);
	edgelog_config_init(&c);
	c.dir = SV_SRC;
	c.segment_bytes = SEG_BYTES;
	c.device_id = "cam-salvage";
	c.log_fn = tu_quiet_log;
	ck_assert_int_eq(eng_open_vfs(&log, &c, v), 0);
	for (i = 1; i <= N_RECORDS; i++) {
		tu_buf b = tu_prediction(i, 7);
		ck_assert_int_eq(edgelog_append(log, b.data, b.len, &seq), 0);
		tu_buf_free(&b);
	}
	ck_assert_int_eq(edgelog_close(log), 0);
	ck_assert_int_eq(eng_reader_open_vfs(v, &r, SV_SRC, 120), 0);
	ck_assert_int_eq(edgelog_reader_next(r, &rec), 0);
	ck_assert_uint_eq(rec.seq, 120);
	snprintf(path, sizeof(path), SV_SRC "/segments/%s", rec.segment);
	off = rec.offset;
	edgelog_reader_close(r);
	ck_assert_int_eq(tvfs_mem_read_file(m, path, &data, &size), 0);
	ck_assert_uint_lt(off + SEG_FRAME_HEADER + 3, size);
	data[off + SEG_FRAME_HEADER + 3] ^= 0x40;
	ck_assert_int_eq(tvfs_mem_write_file(m, path, data, size, 1), 0);
	free(data);
	/* What a power cut keeps of it (the status snapshot is not synced):
	 * the state a salvage's power cut is compared with. */
	tvfs_mem_power_loss(m, 1);
	return m;
}

typedef struct sv_file {
	char path[256];
	uint8_t *data;
	size_t size;
} sv_file;

typedef struct sv_tree {
	sv_file f[64];
	int n;
	tvfs_mem *m;
	const char *dir;
} sv_tree;

static int sv_add(void *ud, const char *name)
{
	sv_tree *t = ud;
	char path[256];
	int k;

	snprintf(path, sizeof(path), "%s/%s", t->dir, name);
	ck_assert_int_lt(t->n, 64);
	k = t->n++;
	snprintf(t->f[k].path, sizeof(t->f[k].path), "%s", path);
	if (tvfs_mem_read_file(t->m, path, &t->f[k].data, &t->f[k].size) != 0) {
		t->n--; /* a directory: its entries */
		const char *up = t->dir;
		t->dir = path;
		ck_assert_int_eq(tvfs_mem_vfs(t->m)->list(tvfs_mem_vfs(t->m), path, sv_add, t), 0);
		t->dir = up;
	}
	return 0;
}

/* Every file under SV_SRC with its content. */
static void sv_snapshot(tvfs_mem *m, sv_tree *t)
{
	memset(t, 0, sizeof(*t));
	t->m = m;
	t->dir = SV_SRC;
	ck_assert_int_eq(tvfs_mem_vfs(m)->list(tvfs_mem_vfs(m), SV_SRC, sv_add, t), 0);
}

static int sv_same(const sv_tree *a, const sv_tree *b)
{
	int i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->f[i].path, b->f[i].path) || a->f[i].size != b->f[i].size ||
		    (a->f[i].size && memcmp(a->f[i].data, b->f[i].data, a->f[i].size)))
			return 0;
	return 1;
}

static void sv_free(sv_tree *t)
{
	int i;

	for (i = 0; i < t->n; i++)
		free(t->f[i].data);
}

/* Records of the copy: each must be the prediction of its seq. Returns
 * their number; *lost_ok: the lost-seqs file names 120. */
static uint64_t sv_read_copy(const seg_vfs *v, int *all_match)
{
	edgelog_reader *r;
	edgelog_record rec;
	uint64_t n = 0;

	*all_match = 1;
	if (eng_reader_open_vfs(v, &r, SV_OUT, 0) != 0)
		return 0;
	while (edgelog_reader_next(r, &rec) == 0) {
		tu_buf want = tu_prediction(rec.seq, 7);
		if (rec.seq == 120 || want.len != rec.len || memcmp(want.data, rec.data, rec.len))
			*all_match = 0;
		tu_buf_free(&want);
		n++;
	}
	edgelog_reader_close(r);
	return n;
}

#define SV_STAGING "/m/.out.salvage"

/* Salvage SV_SRC into SV_OUT on m (no fault) and check the copy is
 * complete and durable (a power cut after it keeps it all), and that no
 * staging directory is left. */
static void sv_complete(tvfs_mem *m, const char *what, uint64_t k)
{
	edgelog_scan sc;
	cur_state cur;
	seg_err e;
	uint8_t *lost;
	size_t lost_len;
	int rc, all, how;
	uint64_t n;

	edgelog_scan_init(&sc);
	rc = eng_salvage_vfs(tvfs_mem_vfs(m), SV_SRC, SV_OUT, &sc);
	ck_assert_msg(rc == 0, "%s (%llu): salvage again: %s", what, (unsigned long long)k,
		      edgelog_errmsg(NULL));
	tvfs_mem_power_loss(m, k + 1);
	ck_assert_msg(!tvfs_mem_exists(m, SV_STAGING), "%s (%llu): %s left behind", what,
		      (unsigned long long)k, SV_STAGING);
	n = sv_read_copy(tvfs_mem_vfs(m), &all);
	ck_assert_msg(n == N_RECORDS - 1 && all, "%s (%llu): %llu of %d records", what,
		      (unsigned long long)k, (unsigned long long)n, N_RECORDS - 1);
	ck_assert_msg(cur_load(tvfs_mem_vfs(m), SV_OUT "/" CUR_FILE, &cur, &how, &e) == 0 &&
			      how == CUR_LOADED && cur.last_seq == N_RECORDS,
		      "%s (%llu): no cursor", what, (unsigned long long)k);
	ck_assert_msg(tvfs_mem_read_file(m, SV_OUT "/" SEG_QUARANTINE_DIR "/" SEG_LOST_FILE, &lost,
					 &lost_len) == 0 &&
			      lost_len > 0,
		      "%s (%llu): no lost-seqs", what, (unsigned long long)k);
	free(lost);
}

/*
 * A fault at every file operation of a salvage (alone, or from there on: a
 * disk that went away), then a power cut: a salvage that returned 0 left a
 * complete, durable copy (every valid record, the cursor, the lost range);
 * one that failed said so, and left the source untouched and at most a
 * partial copy that still opens as an ordinary directory.
 */
START_TEST(test_salvage_fault_at_every_step_is_reported)
{
	tvfs_mem *m = salvage_source();
	tvfs_fault *f = tvfs_fault_new(tvfs_mem_vfs(m));
	edgelog_scan sc;
	sv_tree before, after;
	uint64_t total, k, n;
	int sticky, all, how, failed = 0;
	cur_state cur;
	seg_err e;
	uint8_t *lost;
	size_t lost_len;

	edgelog_scan_init(&sc);
	ck_assert_int_eq(eng_salvage_vfs(tvfs_fault_vfs(f), SV_SRC, SV_OUT, &sc), 0);
	ck_assert_uint_eq(sc.records, N_RECORDS - 1);
	ck_assert_uint_eq(sc.lost_ranges, 1);
	total = tvfs_fault_count(f, TVFS_OP_COUNTED);
	ck_assert_uint_gt(total, 10);
	tvfs_fault_free(f);
	tvfs_mem_free(m);

	for (sticky = 0; sticky < 2; sticky++) {
		for (k = 1; k <= total; k++) {
			m = salvage_source();
			f = tvfs_fault_new(tvfs_mem_vfs(m));
			sv_snapshot(m, &before);
			tvfs_fault_fail(f, TVFS_OP_COUNTED, k, -EIO, sticky);
			edgelog_scan_init(&sc);
			int rc = eng_salvage_vfs(tvfs_fault_vfs(f), SV_SRC, SV_OUT, &sc);
			tvfs_fault_free(f);
			tvfs_mem_power_loss(m, k);
			sv_snapshot(m, &after);
			ck_assert_msg(sv_same(&before, &after), "fault %llu%s: the source changed",
				      (unsigned long long)k, sticky ? " on" : "");
			n = sv_read_copy(tvfs_mem_vfs(m), &all);
			ck_assert_msg(all, "fault %llu%s: the copy holds a wrong record",
				      (unsigned long long)k, sticky ? " on" : "");
			if (rc == 0) {
				/* Success means complete and durable. */
				ck_assert_msg(n == N_RECORDS - 1,
					      "fault %llu%s ignored: %llu of %d records after a "
					      "power cut",
					      (unsigned long long)k, sticky ? " on" : "",
					      (unsigned long long)n, N_RECORDS - 1);
				ck_assert_msg(cur_load(tvfs_mem_vfs(m), SV_OUT "/" CUR_FILE, &cur,
						       &how, &e) == 0 &&
						      how == CUR_LOADED,
					      "fault %llu%s ignored: no cursor after a power cut",
					      (unsigned long long)k, sticky ? " on" : "");
				ck_assert_uint_eq(cur.acked_seq, 0);
				ck_assert_uint_eq(cur.last_seq, N_RECORDS);
				ck_assert_msg(
					tvfs_mem_read_file(
						m, SV_OUT "/" SEG_QUARANTINE_DIR "/" SEG_LOST_FILE,
						&lost, &lost_len) == 0 &&
						lost_len > 0,
					"fault %llu%s ignored: no lost-seqs after a power cut",
					(unsigned long long)k, sticky ? " on" : "");
				ck_assert_ptr_nonnull(strstr((char *)lost, "\n120 120 "));
				free(lost);
			} else {
				failed++;
				ck_assert_str_ne(edgelog_errmsg(NULL), "");
				/* No partial copy under OUTDIR's name: it is as it
				 * was (absent). */
				ck_assert_msg(!tvfs_mem_exists(m, SV_OUT),
					      "fault %llu%s: a failed salvage left %s (%llu "
					      "records)",
					      (unsigned long long)k, sticky ? " on" : "", SV_OUT,
					      (unsigned long long)n);
				/* A second salvage, on a healthy disk, removes what
				 * is left of the staging directory and succeeds. */
				sv_complete(m, "after a failed salvage", k);
			}
			sv_free(&before);
			sv_free(&after);
			tvfs_mem_free(m);
		}
	}
	ck_assert_int_gt(failed, 0);
}
END_TEST

/* Power cut before the trigger-th operation (counted from arming). */
typedef struct sv_cut {
	tvfs_mem *m;
	tvfs_fault *f;
	uint64_t trigger, seen;
	int fired;
	char trace[96];
} sv_cut;

static int sv_cut_hook(void *ud, unsigned op, uint64_t n, const char *path)
{
	sv_cut *c = ud;
	(void)n;
	if (c->fired)
		return -EIO;
	if (++c->seen != c->trigger)
		return 0;
	snprintf(c->trace, sizeof(c->trace), "%s %s", tvfs_op_name(op), path ? path : "(fd)");
	c->fired = 1;
	tvfs_fault_fail(c->f, TVFS_OP_ALL, 1, -EIO, 1);
	tvfs_mem_power_loss(c->m, c->trigger);
	return -EIO;
}

static int sv_count(void *ud, const char *name)
{
	(void)name;
	++*(int *)ud;
	return 0;
}

/* Entries of a directory on m (-1: it does not exist). */
static int sv_entries(tvfs_mem *m, const char *dir)
{
	int any = 0;
	const seg_vfs *v = tvfs_mem_vfs(m);
	if (!tvfs_mem_exists(m, dir))
		return -1;
	ck_assert_int_eq(v->list(v, dir, sv_count, &any), 0);
	return any;
}

/*
 * Found here: a salvage cut by power (or killed) mid-way left a partial
 * copy under OUTDIR's name: a directory of segments with no cursor, or a
 * cursor and fewer records than the source, that looked like a complete
 * salvage. The copy is now made in a staging directory beside OUTDIR and
 * renamed into place once complete and durable: a power cut before any
 * operation of a salvage leaves OUTDIR as it was (absent, or the empty
 * directory given) or the whole copy, and the next salvage removes the
 * abandoned staging directory and succeeds.
 */
static void salvage_cut_at_every_step(int outdir_exists)
{
	tvfs_mem *m = salvage_source();
	tvfs_fault *f = tvfs_fault_new(tvfs_mem_vfs(m));
	sv_cut c;
	edgelog_scan sc;
	uint64_t total, k, whole = 0, none = 0;
	int all;

	if (outdir_exists)
		ck_assert_int_eq(tvfs_mem_mkdirs(m, SV_OUT), 0);
	memset(&c, 0, sizeof(c));
	tvfs_fault_set_hook(f, sv_cut_hook, &c);
	edgelog_scan_init(&sc);
	ck_assert_int_eq(eng_salvage_vfs(tvfs_fault_vfs(f), SV_SRC, SV_OUT, &sc), 0);
	total = c.seen;
	ck_assert_uint_gt(total, 10);
	tvfs_fault_free(f);
	tvfs_mem_free(m);

	for (k = 1; k <= total; k++) {
		uint64_t n;
		int entries, rc;

		m = salvage_source();
		if (outdir_exists)
			ck_assert_int_eq(tvfs_mem_mkdirs(m, SV_OUT), 0);
		f = tvfs_fault_new(tvfs_mem_vfs(m));
		memset(&c, 0, sizeof(c));
		c.m = m;
		c.f = f;
		c.trigger = k;
		tvfs_fault_set_hook(f, sv_cut_hook, &c);
		edgelog_scan_init(&sc);
		rc = eng_salvage_vfs(tvfs_fault_vfs(f), SV_SRC, SV_OUT, &sc);
		ck_assert_msg(c.fired, "operation %llu of %llu never came", (unsigned long long)k,
			      (unsigned long long)total);
		ck_assert_int_ne(rc, 0);
		tvfs_fault_free(f);
		/* What the cut left under OUTDIR's name: what was there, or
		 * the whole copy. */
		entries = sv_entries(m, SV_OUT);
		if (entries == (outdir_exists ? 0 : -1)) {
			none++;
		} else {
			n = sv_read_copy(tvfs_mem_vfs(m), &all);
			ck_assert_msg(n == N_RECORDS - 1 && all &&
					      tvfs_mem_exists(m, SV_OUT "/" CUR_FILE) &&
					      tvfs_mem_exists(m, SV_OUT "/" SEG_QUARANTINE_DIR
									"/" SEG_LOST_FILE),
				      "power cut before operation %llu (%s): %s holds a partial "
				      "copy (%llu of %d records, cursor %s)",
				      (unsigned long long)k, c.trace, SV_OUT, (unsigned long long)n,
				      N_RECORDS - 1,
				      tvfs_mem_exists(m, SV_OUT "/" CUR_FILE) ? "there" :
										"missing");
			whole++;
			tvfs_mem_free(m);
			continue;
		}
		/* Nothing under OUTDIR's name: salvaging again works, and
		 * removes the abandoned staging directory. */
		sv_complete(m, "salvage after a power cut", k);
		tvfs_mem_free(m);
	}
	ck_assert_uint_gt(none, 0);
	fprintf(stderr,
		"check_repair: salvage into %s OUTDIR cut before each of %llu operations: %llu "
		"left it as it was, %llu the whole copy\n",
		outdir_exists ? "an empty" : "a new", (unsigned long long)total,
		(unsigned long long)none, (unsigned long long)whole);
}

START_TEST(test_salvage_power_cut_at_every_step_leaves_nothing_or_everything)
{
	salvage_cut_at_every_step(0);
}
END_TEST

START_TEST(test_salvage_into_empty_dir_power_cut_leaves_it_empty_or_complete)
{
	salvage_cut_at_every_step(1);
}
END_TEST

static Suite *repair_suite(void)
{
	Suite *s = suite_create("repair");
	TCase *tc = tcase_create("repair");

	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_clean_directory_is_left_alone);
	tcase_add_test(tc, test_missing_or_not_an_edgelog_directory);
	tcase_add_test(tc, test_torn_tail_after_last_frame);
	tcase_add_test(tc, test_truncated_newest_segment_mid_frame);
	tcase_add_test(tc, test_truncated_sealed_segment);
	tcase_add_test(tc, test_flipped_byte_in_middle_frame);
	tcase_add_test(tc, test_recycled_segment_torn_tail_is_marked_not_zeroed);
	tcase_add_test(tc, test_recycled_segment_damage_is_rewritten_as_version_1);
	tcase_add_test(tc, test_several_damaged_frames_across_segments);
	tcase_add_test(tc, test_bad_header_in_middle_segment);
	tcase_add_test(tc, test_bad_header_in_newest_segment_never_reuses_seqs);
	tcase_add_test(tc, test_header_ranges_checked);
	tcase_add_test(tc, test_header_seq_wrapping_is_damage);
	tcase_add_loop_test(tc, test_header_timestamps_out_of_range_are_damage, 0, 3);
	tcase_add_test(tc, test_engine_quarantined_segment_moves_to_quarantine);
	tcase_add_test(tc, test_missing_cursor_is_rebuilt_conservatively);
	tcase_add_test(tc, test_rebuilt_cursor_keeps_the_lost_ranges_as_gaps);
	tcase_add_test(tc, test_garbage_cursor_is_saved_and_rebuilt);
	tcase_add_test(tc, test_huge_garbage_cursor_is_moved_whole);
	tcase_add_test(tc, test_damaged_newest_cursor_slot_falls_back);
	tcase_add_test(tc, test_refuses_while_this_process_holds_the_lock);
	tcase_add_test(tc, test_refuses_while_another_process_holds_the_lock);
	tcase_add_test(tc, test_fault_at_every_step_then_rerun);
	tcase_add_test(tc, test_salvage_fault_at_every_step_is_reported);
	tcase_add_test(tc, test_salvage_power_cut_at_every_step_leaves_nothing_or_everything);
	tcase_add_test(tc, test_salvage_into_empty_dir_power_cut_leaves_it_empty_or_complete);
	suite_add_tcase(s, tc);
	return s;
}

TU_CHECK_MAIN(repair_suite)
