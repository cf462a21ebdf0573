/*
 * check_enospc.c - a full file system at a segment roll (FORMAT.md,
 * Retention, point 3): what an allocation that meets ENOSPC frees, in
 * which order, and what it counts.
 *
 * The engine runs on the in-memory file system (tvfs_mem) behind the fault
 * injector (tvfs_fault). Most tests give the file system a capacity: a
 * hook fails a fallocate with ENOSPC when the files in the segments
 * directory and one more segment would not fit; removing a file gives its
 * space back, as on a real disk. The checks:
 *
 *  - a single transient ENOSPC at any operation of a roll costs no record
 *    and counts nothing, under drop_oldest and under reject, also after a
 *    power cut;
 *  - on a full disk, space that holds no unacknowledged record goes first:
 *    segments/.recycle (an acknowledged segment's file set aside for the
 *    next spare) and acknowledged segments, before any unacknowledged
 *    segment is dropped;
 *  - what drop_oldest does drop is counted in `dropped` exactly (no more,
 *    no less than the records gone), also when the power is cut at any
 *    operation of the append that drops, and after the restart;
 *  - under reject a full disk fails the append with EDGELOG_ENOSPC (the
 *    file system is full; EDGELOG_EFULL is the configured cap), loses
 *    nothing, drops nothing, and an acknowledgement makes room again
 *    without waiting for the next retention pass.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <edgelog.h>

#include "eng_internal.h"
#include "seg_reader.h"
#include "test_main.h"
#include "test_util.h"
#include "test_vfs.h"

#define CHECK(cond, ...)                           \
	do {                                       \
		if (!(cond))                       \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

#define DIR_PATH "/f/db"
#define SEG_PATH DIR_PATH "/segments"
#define SEG_BYTES 65536
#define REC_MAX 2600
#define MAX_SEQ 2048

/* ---- a file system with a capacity, that can lose power ------------------ */

typedef struct disk {
	tvfs_mem *mem;
	tvfs_fault *f;
	uint64_t capacity; /* bytes for the segments directory; 0: unlimited */
	/* Power cut before the Nth operation counted from arming (0: off). */
	uint64_t cut_at, seen;
	int armed, cut;
	uint64_t seed;
	char trace[96];
} disk;

typedef struct sum {
	const seg_vfs *v;
	uint64_t bytes;
} sum;

static int add_size(void *ud, const char *name)
{
	sum *z = ud;
	char path[512];
	uint64_t size = 0;

	snprintf(path, sizeof(path), "%s/%s", SEG_PATH, name);
	if (z->v->stat(z->v, path, &size, NULL) == 0)
		z->bytes += size;
	return 0;
}

/* Bytes of every file in the segments directory (live state). */
static uint64_t seg_dir_bytes(disk *d)
{
	sum z = {tvfs_mem_vfs(d->mem), 0};
	z.v->list(z.v, SEG_PATH, add_size, &z);
	return z.bytes;
}

static int disk_hook(void *ud, unsigned op, uint64_t n, const char *path)
{
	disk *d = ud;
	(void)n;
	if (d->cut)
		return -EIO;
	if (d->armed && ++d->seen == d->cut_at) {
		snprintf(d->trace, sizeof(d->trace), "%s %s", tvfs_op_name(op),
			 path ? path : "(fd)");
		d->cut = 1;
		tvfs_fault_fail(d->f, TVFS_OP_ALL, 1, -EIO, 1);
		tvfs_mem_power_loss(d->mem, d->seed);
		return -EIO;
	}
	/* Every allocation here is a new segment (no oversized record). */
	if (op == TVFS_OP_FALLOCATE && d->capacity && seg_dir_bytes(d) + SEG_BYTES > d->capacity)
		return -ENOSPC;
	return 0;
}

static void disk_init(disk *d, uint64_t seed)
{
	memset(d, 0, sizeof(*d));
	d->mem = tvfs_mem_new(seed);
	tvfs_mem_set_loss(d->mem, 0, 0, 0); /* a cut keeps exactly what was synced */
	d->f = tvfs_fault_new(tvfs_mem_vfs(d->mem));
	d->seed = seed;
	ck_assert_int_eq(tvfs_mem_mkdirs(d->mem, "/f"), 0);
	tvfs_fault_set_hook(d->f, disk_hook, d);
}

static void disk_free(disk *d)
{
	tvfs_fault_free(d->f);
	tvfs_mem_free(d->mem);
}

/* ---- the log and what it was told ------------------------------------------- */

typedef struct model {
	uint64_t key[MAX_SEQ]; /* append returned 0 with this seq */
	uint64_t last;
	uint64_t next_key;
	uint64_t acked; /* edgelog_ack returned 0 up to here */
} model;

static void config(edgelog_config *c, edgelog_full_policy policy)
{
	edgelog_config_init(c);
	c->dir = DIR_PATH;
	c->device_id = "enospc";
	c->sync = EDGELOG_SYNC_ALWAYS; /* every append that returns 0 is durable */
	c->segment_bytes = SEG_BYTES;
	c->max_size_mb = 100; /* far above the disk: the disk fills first */
	c->full_policy = policy;
	c->log_fn = getenv("ENOSPC_LOG") ? NULL : tu_quiet_log;
}

static edgelog *open_on(const seg_vfs *v, edgelog_full_policy policy)
{
	edgelog_config c;
	edgelog *log = NULL;
	int rc;

	config(&c, policy);
	rc = eng_open_vfs(&log, &c, v);
	CHECK(rc == 0, "open: %s: %s", edgelog_strerror(rc), edgelog_errmsg(NULL));
	return log;
}

static int append(edgelog *log, model *m)
{
	uint8_t rec[REC_MAX];
	uint64_t key = m->next_key++, seq = 0;
	size_t len = tu_keyed_record(key, 1500, 1000, rec);
	int rc = edgelog_append(log, rec, len, &seq);

	if (rc == 0) {
		CHECK(seq > m->last && seq < MAX_SEQ,
		      "append returned seq %" PRIu64 " after %" PRIu64, seq, m->last);
		m->key[seq] = key;
		m->last = seq;
	}
	return rc;
}

static void ack(edgelog *log, model *m, uint64_t seq)
{
	ck_assert_int_eq(edgelog_ack(log, seq), 0);
	m->acked = seq;
}

static edgelog_status status(edgelog *log)
{
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	return st;
}

/* The writer's segment count (sealed and active). */
static uint64_t segments(edgelog *log)
{
	return (uint64_t)status(log).segments;
}

/*
 * Reopen on the file system as it is (no capacity, no fault) and check:
 * every record an append returned 0 for is stored at its seq, byte for
 * byte, unless the cursor has passed it; of those passed, the ones not
 * acknowledged by the test are exactly `dropped` (the test acknowledges
 * nothing it did not acknowledge through edgelog_ack, and nothing
 * expires); pending is what is stored above the cursor.
 * Returns the records dropped.
 */
static uint64_t check_exact(disk *d, model *m, edgelog_full_policy policy, const char *where)
{
	edgelog *log = open_on(tvfs_mem_vfs(d->mem), policy);
	edgelog_status st = status(log);
	seg_reader rd;
	seg_frame fr;
	seg_err e;
	uint8_t seen[MAX_SEQ];
	uint64_t s, gone = 0, above = 0, prev = 0;
	int rc;

	CHECK(st.acked_seq >= m->acked, "%s: ack %" PRIu64 " returned 0, cursor says %" PRIu64,
	      where, m->acked, st.acked_seq);
	memset(seen, 0, sizeof(seen));
	ck_assert_int_eq(seg_reader_init(&rd, tvfs_mem_vfs(d->mem), SEG_PATH, 0, &e), 0);
	while ((rc = seg_reader_next(&rd, &fr, &e)) == 0) {
		uint64_t key = tu_keyed_record_key(fr.data, fr.len, 1500, 1000);
		CHECK(fr.seq > prev && fr.seq < MAX_SEQ, "%s: seq %" PRIu64 " after %" PRIu64,
		      where, fr.seq, prev);
		prev = fr.seq;
		CHECK(key && (!m->key[fr.seq] || m->key[fr.seq] == key),
		      "%s: seq %" PRIu64 " holds the wrong record", where, fr.seq);
		seen[fr.seq] = 1;
		if (fr.seq > st.acked_seq)
			above++;
	}
	CHECK(rc == EDGELOG_EOF, "%s: reader: %s", where, e.msg);
	CHECK(rd.corrupt == 0, "%s: damage", where);
	seg_reader_close(&rd);
	for (s = 1; s <= m->last; s++) {
		if (!m->key[s])
			continue;
		CHECK(seen[s] || s <= st.acked_seq,
		      "%s: record %" PRIu64 " (seq %" PRIu64 ") was accepted and synced, is not "
		      "acknowledged, and is gone",
		      where, m->key[s], s);
		if (s <= st.acked_seq && s > m->acked)
			gone++;
	}
	/* Records the test acknowledged are sent, never dropped; the rest
	 * the cursor passed are what drop_oldest took (a file the cursor has
	 * passed may still be there after a cut: the next pass removes it as
	 * acknowledged). A record whose append was cut short by the power
	 * cut (no seq returned) is never among them: only sealed segments
	 * are dropped, and it is in the newest. */
	CHECK(st.dropped == gone,
	      "%s: %" PRIu64 " accepted record(s) removed but dropped says %" PRIu64, where, gone,
	      st.dropped);
	CHECK(st.sent == m->acked, "%s: sent %" PRIu64 ", acknowledged %" PRIu64, where, st.sent,
	      m->acked);
	CHECK(st.pending == above, "%s: pending %" PRIu64 ", stored above the cursor %" PRIu64,
	      where, st.pending, above);
	CHECK(st.appended == st.pending + st.sent + st.dropped + st.expired + st.failed,
	      "%s: appended %" PRIu64 " != pending %" PRIu64 " + sent %" PRIu64
	      " + dropped %" PRIu64,
	      where, st.appended, st.pending, st.sent, st.dropped);
	CHECK(policy != EDGELOG_FULL_REJECT || st.dropped == 0, "%s: dropped under reject", where);
	ck_assert_int_eq(edgelog_close(log), 0);
	return gone;
}

/* ---- a single transient ENOSPC ---------------------------------------------- */

/* The operations of a roll that can meet a full disk: the new segment's
 * open, fallocate, mmap, rename (an fdatasync that fails is another
 * matter: the append reports it, check_faults covers it). */
#define ROLL_OPS (TVFS_OP_OPEN | TVFS_OP_FALLOCATE | TVFS_OP_MMAP | TVFS_OP_RENAME)

/* Three segments of unacknowledged records, then the append that rolls,
 * with ENOSPC on its nth operation of ROLL_OPS alone (0: none). Returns
 * the operations that append made. */
static uint64_t transient_at_roll(edgelog_full_policy policy, uint64_t n, int with_spare)
{
	disk d;
	model m;
	edgelog *log;
	char where[160];
	uint64_t ops, before;
	int i, rc;

	memset(&m, 0, sizeof(m));
	m.next_key = 1;
	disk_init(&d, tu_seed() * 31 + n);
	snprintf(where, sizeof(where), "%s, %s, ENOSPC at operation %" PRIu64 " of the roll",
		 policy == EDGELOG_FULL_REJECT ? "reject" : "drop_oldest",
		 with_spare ? "spare ready" : "no spare", n);
	log = open_on(tvfs_fault_vfs(d.f), policy);
	while (segments(log) < 3)
		ck_assert_int_eq(append(log, &m), 0);
	before = segments(log);
	/* Fill the active segment to the record before the roll. */
	for (;;) {
		uint8_t rec[REC_MAX];
		if (log->w.pos + SEG_FRAME_HEADER + tu_keyed_record(m.next_key, 1500, 1000, rec) >
		    log->w.size)
			break;
		ck_assert_int_eq(append(log, &m), 0);
		ck_assert_uint_eq(segments(log), before);
	}
	if (with_spare)
		edgelog_step(log, 0); /* the preparer's spare: the roll is a rename */
	tvfs_fault_reset(d.f);
	tvfs_fault_set_hook(d.f, disk_hook, &d);
	if (n)
		tvfs_fault_fail(d.f, ROLL_OPS, n, -ENOSPC, 0);
	/* The roll, and more records after it. */
	rc = append(log, &m);
	ops = tvfs_fault_count(d.f, ROLL_OPS);
	CHECK(rc == 0, "%s: append: %s (%s)", where, edgelog_strerror(rc), edgelog_errmsg(log));
	CHECK(segments(log) == before + 1, "%s: %" PRIu64 " segments after the roll, want %" PRIu64,
	      where, segments(log), before + 1);
	CHECK(!n || tvfs_fault_injected(d.f) == 1, "%s: the fault did not fire", where);
	tvfs_fault_fail(d.f, ROLL_OPS, 0, 0, 0);
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(append(log, &m), 0);
	CHECK(status(log).dropped == 0, "%s: %" PRIu64 " record(s) dropped for a transient ENOSPC",
	      where, status(log).dropped);
	/* Then the power is cut. */
	tvfs_fault_fail(d.f, TVFS_OP_ALL, 1, -EIO, 1);
	tvfs_mem_power_loss(d.mem, d.seed);
	edgelog_close(log);
	CHECK(check_exact(&d, &m, policy, where) == 0, "%s: records dropped", where);
	disk_free(&d);
	return ops;
}

static void transient_every_op(edgelog_full_policy policy, int with_spare)
{
	uint64_t total = transient_at_roll(policy, 0, with_spare), n;

	ck_assert_uint_ge(total, with_spare ? 1 : 4); /* open, fallocate, mmap, rename */
	for (n = 1; n <= total; n++)
		transient_at_roll(policy, n, with_spare);
}

/*
 * Found here: one ENOSPC at the roll (the new segment's open, fallocate,
 * mmap or rename) made the engine drop the oldest unacknowledged segment
 * under drop_oldest (42 records), although the allocation, simply
 * retried, succeeded.
 */
START_TEST(test_transient_enospc_at_a_roll_drops_nothing)
{
	transient_every_op(EDGELOG_FULL_DROP_OLDEST, 0);
	transient_every_op(EDGELOG_FULL_DROP_OLDEST, 1);
}
END_TEST

/* Under reject the same append must not be refused. */
START_TEST(test_transient_enospc_at_a_roll_under_reject_refuses_nothing)
{
	transient_every_op(EDGELOG_FULL_REJECT, 0);
	transient_every_op(EDGELOG_FULL_REJECT, 1);
}
END_TEST

/* ---- a full disk: what goes first ------------------------------------------ */

/* Append until the active segment is the nth (counting from its first). */
static void fill_to(edgelog *log, model *m, uint64_t nseg)
{
	while (segments(log) < nseg)
		ck_assert_int_eq(append(log, m), 0);
}

/* The first seq of the active segment. */
static uint64_t active_base(edgelog *log)
{
	return log->w.hdr.base_seq;
}

/*
 * segments/.recycle (retention set an acknowledged segment's file aside
 * for the next spare) holds no record. Found here: with the disk full, the
 * roll dropped the oldest unacknowledged segment and kept .recycle.
 */
START_TEST(test_full_disk_frees_recycle_file_before_dropping)
{
	disk d;
	model m;
	edgelog *log;
	uint64_t s2, base;
	int rc;

	memset(&m, 0, sizeof(m));
	m.next_key = 1;
	disk_init(&d, tu_seed());
	log = open_on(tvfs_fault_vfs(d.f), EDGELOG_FULL_DROP_OLDEST);
	fill_to(log, &m, 2);
	s2 = active_base(log);
	fill_to(log, &m, 4);
	/* The first segment acknowledged and set aside as .recycle (no step
	 * yet, so it is not a spare). */
	ack(log, &m, s2 - 1);
	ck_assert_int_eq(edgelog_cleanup(log, 0), 0);
	ck_assert_int_eq(tvfs_mem_exists(d.mem, SEG_PATH "/" SEG_RECYCLE_NAME), 1);
	/* The disk is full now: the next segment fits only in .recycle's
	 * space. */
	d.capacity = seg_dir_bytes(&d);
	ck_assert_uint_eq(segments(log), 3);
	base = active_base(log);
	while (active_base(log) == base) { /* up to the roll */
		rc = append(log, &m);
		CHECK(rc == 0, "append on a full disk: %s (%s)", edgelog_strerror(rc),
		      edgelog_errmsg(log));
	}
	CHECK(status(log).dropped == 0,
	      "%" PRIu64 " unacknowledged record(s) dropped while .recycle held the space",
	      status(log).dropped);
	ck_assert_uint_eq(segments(log), 4);
	ck_assert_int_eq(tvfs_mem_exists(d.mem, SEG_PATH "/" SEG_RECYCLE_NAME), 0);
	d.capacity = 0;
	ck_assert_int_eq(edgelog_close(log), 0);
	ck_assert_uint_eq(check_exact(&d, &m, EDGELOG_FULL_DROP_OLDEST, "recycle file"), 0);
	disk_free(&d);
}
END_TEST

/* Acknowledged segments not yet removed (no retention pass since the ack)
 * go before an unacknowledged one, under drop_oldest and under reject. */
static void full_disk_frees_acked(edgelog_full_policy policy)
{
	disk d;
	model m;
	edgelog *log;
	uint64_t s3, n0;
	int rc;

	memset(&m, 0, sizeof(m));
	m.next_key = 1;
	disk_init(&d, tu_seed() + 7);
	log = open_on(tvfs_fault_vfs(d.f), policy);
	fill_to(log, &m, 3);
	s3 = active_base(log);
	fill_to(log, &m, 4);
	d.capacity = seg_dir_bytes(&d);
	ack(log, &m, s3 - 1); /* two segments acknowledged; no pass yet */
	n0 = segments(log);
	do {
		rc = append(log, &m);
		CHECK(rc == 0, "%s: append on a full disk with acknowledged segments: %s (%s)",
		      policy == EDGELOG_FULL_REJECT ? "reject" : "drop_oldest",
		      edgelog_strerror(rc), edgelog_errmsg(log));
	} while (segments(log) == n0);
	CHECK(status(log).dropped == 0,
	      "%" PRIu64 " unacknowledged record(s) dropped while acknowledged segments held "
	      "the space",
	      status(log).dropped);
	d.capacity = 0;
	ck_assert_int_eq(edgelog_close(log), 0);
	ck_assert_uint_eq(check_exact(&d, &m, policy, "acknowledged segments"), 0);
	disk_free(&d);
}

START_TEST(test_full_disk_frees_acknowledged_segments_before_dropping)
{
	full_disk_frees_acked(EDGELOG_FULL_DROP_OLDEST);
}
END_TEST

/* Found here: under reject nothing was removed on ENOSPC, so an append
 * was refused until the next scheduled pass although acknowledged
 * segments held the space. */
START_TEST(test_full_disk_under_reject_frees_acknowledged_segments)
{
	full_disk_frees_acked(EDGELOG_FULL_REJECT);
}
END_TEST

/* ---- a full disk: what is dropped is counted, exactly ------------------------- */

#define CAP_SEGMENTS 6

/* Up to the append that has to drop: a disk of CAP_SEGMENTS segments,
 * full of unacknowledged records (one segment acknowledged, to be sure
 * acknowledged ones are not counted). */
static edgelog *full_prefix(disk *d, model *m)
{
	edgelog *log;
	uint64_t s2;

	memset(m, 0, sizeof(*m));
	m->next_key = 1;
	log = open_on(tvfs_fault_vfs(d->f), EDGELOG_FULL_DROP_OLDEST);
	d->capacity = CAP_SEGMENTS * (uint64_t)SEG_BYTES;
	fill_to(log, m, 2);
	s2 = active_base(log);
	ack(log, m, s2 - 1);
	ck_assert_int_eq(edgelog_cleanup(log, 0), 0);
	/* Fill the disk: the append that finds no room drops. */
	while (status(log).dropped == 0 && m->last < 400)
		ck_assert_int_eq(append(log, m), 0);
	ck_assert_uint_gt(status(log).dropped, 0);
	return log;
}

START_TEST(test_full_disk_drops_oldest_and_counts_exactly)
{
	disk d;
	model m;
	edgelog *log;
	uint64_t i, dropped;

	disk_init(&d, tu_seed() + 11);
	log = full_prefix(&d, &m);
	/* Keep appending: every append succeeds, each drop is counted. */
	for (i = 0; i < 300; i++) {
		int rc = append(log, &m);
		CHECK(rc == 0, "append %" PRIu64 " on a full disk: %s (%s)", i,
		      edgelog_strerror(rc), edgelog_errmsg(log));
	}
	dropped = status(log).dropped;
	CHECK(segments(log) <= CAP_SEGMENTS, "%" PRIu64 " segments on a disk of %d", segments(log),
	      CAP_SEGMENTS);
	d.capacity = 0;
	ck_assert_int_eq(edgelog_close(log), 0);
	CHECK(check_exact(&d, &m, EDGELOG_FULL_DROP_OLDEST, "full disk") == dropped,
	      "dropped changed across the restart");
	fprintf(stderr, "check_enospc: full disk: %" PRIu64 " of %" PRIu64 " records dropped\n",
		dropped, m.last);
	disk_free(&d);
}
END_TEST

/* A power cut before each operation of the append that drops: whatever is
 * gone then is exactly what `dropped` says, after the restart too. */
START_TEST(test_power_cut_at_every_step_of_a_drop_counts_exactly)
{
	uint64_t total = 0, n, cuts = 0;

	for (n = 0; n == 0 || n <= total; n++) {
		disk d;
		model m;
		edgelog *log;
		char where[200];
		int rc;

		disk_init(&d, tu_seed() * 977 + n);
		log = full_prefix(&d, &m);
		/* The segment is full again: the next roll drops. Append up to
		 * the roll with the cut armed. */
		d.cut_at = n;
		d.seen = 0;
		d.armed = 1;
		{
			uint64_t dropped0 = status(log).dropped;
			for (;;) {
				if (d.cut)
					break;
				rc = append(log, &m);
				if (d.cut || rc)
					break;
				if (status(log).dropped > dropped0)
					break;
			}
		}
		if (n == 0) {
			ck_assert_int_eq(d.cut, 0);
			total = d.seen;
			ck_assert_int_eq(edgelog_close(log), 0);
			d.capacity = 0;
			check_exact(&d, &m, EDGELOG_FULL_DROP_OLDEST, "no cut");
			disk_free(&d);
			continue;
		}
		CHECK(d.cut, "operation %" PRIu64 " of %" PRIu64 " never came", n, total);
		cuts++;
		snprintf(where, sizeof(where), "power cut before operation %" PRIu64 " (%s)", n,
			 d.trace);
		edgelog_close(log); /* dead descriptors: frees memory only */
		tvfs_fault_set_hook(d.f, NULL, NULL);
		d.capacity = 0;
		check_exact(&d, &m, EDGELOG_FULL_DROP_OLDEST, where);
		/* And once more: nothing counted twice by the second open. */
		check_exact(&d, &m, EDGELOG_FULL_DROP_OLDEST, where);
		disk_free(&d);
	}
	ck_assert_uint_gt(total, 5);
	ck_assert_uint_eq(cuts, total);
}
END_TEST

/* ---- reject on a full disk ------------------------------------------------------ */

START_TEST(test_full_disk_under_reject_refuses_with_enospc_and_loses_nothing)
{
	disk d;
	model m;
	edgelog *log;
	int rc = 0, i;

	memset(&m, 0, sizeof(m));
	m.next_key = 1;
	disk_init(&d, tu_seed() + 3);
	log = open_on(tvfs_fault_vfs(d.f), EDGELOG_FULL_REJECT);
	d.capacity = 4 * (uint64_t)SEG_BYTES;
	for (i = 0; i < 400 && (rc = append(log, &m)) == 0; i++)
		;
	CHECK(rc == EDGELOG_ENOSPC, "append on a full disk under reject: %s, want EDGELOG_ENOSPC",
	      edgelog_strerror(rc));
	/* Refused again, nothing dropped. */
	ck_assert_int_eq(append(log, &m), EDGELOG_ENOSPC);
	ck_assert_uint_eq(status(log).dropped, 0);
	/* An acknowledgement makes room at once. */
	ack(log, &m, m.last / 2);
	rc = append(log, &m);
	CHECK(rc == 0, "append after an ack freed a segment: %s (%s)", edgelog_strerror(rc),
	      edgelog_errmsg(log));
	tvfs_fault_fail(d.f, TVFS_OP_ALL, 1, -EIO, 1);
	tvfs_mem_power_loss(d.mem, d.seed);
	edgelog_close(log);
	tvfs_fault_set_hook(d.f, NULL, NULL);
	ck_assert_uint_eq(check_exact(&d, &m, EDGELOG_FULL_REJECT, "reject"), 0);
	disk_free(&d);
}
END_TEST

static Suite *enospc_suite(void)
{
	Suite *s = suite_create("enospc");
	TCase *tc = tcase_create("enospc");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_transient_enospc_at_a_roll_drops_nothing);
	tcase_add_test(tc, test_transient_enospc_at_a_roll_under_reject_refuses_nothing);
	tcase_add_test(tc, test_full_disk_frees_recycle_file_before_dropping);
	tcase_add_test(tc, test_full_disk_frees_acknowledged_segments_before_dropping);
	tcase_add_test(tc, test_full_disk_under_reject_frees_acknowledged_segments);
	tcase_add_test(tc, test_full_disk_drops_oldest_and_counts_exactly);
	tcase_add_test(tc, test_power_cut_at_every_step_of_a_drop_counts_exactly);
	tcase_add_test(tc, test_full_disk_under_reject_refuses_with_enospc_and_loses_nothing);
	suite_add_tcase(s, tc);
	return s;
}

TU_CHECK_MAIN(enospc_suite)
