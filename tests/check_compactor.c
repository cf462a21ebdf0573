/*
 * check_compactor.c - retention: the pure decision (cmp_plan); carrying a
 * plan out (cmp_execute) in the crash-safe order cursor -> unlink ->
 * directory fsync, on the in-memory file system with its power loss and
 * on the fault-injecting seam (tests/test_vfs.h); and the engine running
 * it: size cap under drop_oldest and reject, age retention on a fake clock
 * with jumps, and the accounting identity
 * appended = pending + sent + dropped + expired + failed.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <edgelog.h>

#include "cmp.h"
#include "eng_internal.h"
#include "seg_reader.h"
#include "test_main.h"
#include "test_util.h"
#include "test_vfs.h"
#include "tool_sample.h"

#define DAY_MS (86400ll * 1000)

/* ---- cmp_plan ------------------------------------------------------------ */

static cmp_seg seg(uint64_t base, uint64_t last, int64_t wall, int64_t age, uint64_t bytes)
{
	cmp_seg s = {base, last, wall, age, bytes, bytes};
	return s;
}

START_TEST(test_plan_deletes_acked_prefix_only)
{
	cmp_seg s[3] = {seg(1, 100, 0, 0, 10), seg(101, 200, 0, 0, 10), seg(201, 300, 0, 0, 10)};
	cmp_policy p;
	cmp_action a[3];

	memset(&p, 0, sizeof(p));
	p.acked_seq = 150; /* the second segment is half acknowledged */
	ck_assert_uint_eq(cmp_plan(s, 3, &p, a), 1);
	ck_assert_int_eq(a[0].reason, CMP_ACKED);
	ck_assert_uint_eq(a[0].lost_lo, a[0].lost_hi);
	p.acked_seq = 200;
	ck_assert_uint_eq(cmp_plan(s, 3, &p, a), 2);
}
END_TEST

START_TEST(test_plan_expiry_needs_both_clocks)
{
	cmp_seg s[1] = {seg(1, 100, 1000, 5000, 10)};
	cmp_policy p;
	cmp_action a[1];

	memset(&p, 0, sizeof(p));
	p.retention_ms = 7 * DAY_MS;
	/* The wall clock jumped a year ahead, the age clock moved a minute. */
	p.now_wall_ms = 1000 + 365 * DAY_MS;
	p.now_age_ms = 5000 + 60000;
	ck_assert_uint_eq(cmp_plan(s, 1, &p, a), 0);
	/* The age clock says 8 days, but the wall clock went back to 1970. */
	p.now_wall_ms = 0;
	p.now_age_ms = 5000 + 8 * DAY_MS;
	ck_assert_uint_eq(cmp_plan(s, 1, &p, a), 0);
	/* Both agree: expired, with the unacked range. */
	p.now_wall_ms = 1000 + 8 * DAY_MS;
	p.acked_seq = 40;
	ck_assert_uint_eq(cmp_plan(s, 1, &p, a), 1);
	ck_assert_int_eq(a[0].reason, CMP_EXPIRED);
	ck_assert_uint_eq(a[0].lost_lo, 40);
	ck_assert_uint_eq(a[0].lost_hi, 100);
}
END_TEST

START_TEST(test_plan_size_pressure_drops_oldest_only_under_drop_oldest)
{
	cmp_seg s[3] = {seg(1, 100, 0, 0, 100), seg(101, 200, 0, 0, 100), seg(201, 300, 0, 0, 100)};
	cmp_policy p;
	cmp_action a[3];

	memset(&p, 0, sizeof(p));
	p.used_bytes = 400; /* three sealed + the active one */
	p.target_bytes = 250;
	p.drop_oldest = 1;
	ck_assert_uint_eq(cmp_plan(s, 3, &p, a), 2);
	ck_assert_int_eq(a[0].reason, CMP_DROPPED);
	ck_assert_int_eq(a[1].reason, CMP_DROPPED);
	ck_assert_uint_eq(a[1].lost_lo, 100);
	ck_assert_uint_eq(a[1].lost_hi, 200);
	p.drop_oldest = 0; /* reject: nothing unacked ever goes for size */
	ck_assert_uint_eq(cmp_plan(s, 3, &p, a), 0);
}
END_TEST

/* ---- carrying a plan out: the order, on the power-loss seam --------------- */

#define PL_DIR "/cp/db"
#define PL_SEGS PL_DIR "/segments"
#define PL_N 2000    /* records: about five 64 KiB segments */
#define PL_ACKED 700 /* inside the second segment */

/* These tests look at unlinks: recycling (FORMAT.md, "Recycled
 * segments") is on only where a test says so. */
static int g_pl_reuse;

static void pl_config(edgelog_config *c)
{
	edgelog_config_init(c);
	c->dir = PL_DIR;
	c->device_id = "compactor";
	c->segment_bytes = 65536;
	c->sync = EDGELOG_SYNC_NONE;
	c->retention_days = 1;
	c->max_size_mb = 100;
	c->log_fn = tu_quiet_log;
	c->segment_reuse = g_pl_reuse ? EDGELOG_REUSE_ON : EDGELOG_REUSE_OFF;
}

static edgelog *pl_open(const seg_vfs *v)
{
	edgelog_config c;
	edgelog *log = NULL;
	int rc;

	pl_config(&c);
	rc = eng_open_vfs(&log, &c, v);
	ck_assert_msg(rc == 0, "open: %s: %s", edgelog_strerror(rc), edgelog_errmsg(NULL));
	return log;
}

/* A fresh file system holding PL_N records (record i at seq i, made by
 * tu_keyed_record(i)), all durable, acknowledged up to PL_ACKED, with the
 * clocks two days on, so that every sealed segment is due: the first as
 * acknowledged, the others as expired. */
static tvfs_mem *pl_fill(uint64_t seed)
{
	tvfs_mem *mem = tvfs_mem_new(seed);
	uint8_t b[256];
	uint64_t i, seq;
	edgelog *log;

	ck_assert_int_eq(tvfs_mem_mkdirs(mem, PL_DIR), 0);
	log = pl_open(tvfs_mem_vfs(mem));
	for (i = 1; i <= PL_N; i++) {
		size_t len = tu_keyed_record(i, 10, 200, b);
		ck_assert_int_eq(edgelog_append(log, b, len, &seq), 0);
		ck_assert_uint_eq(seq, i);
	}
	ck_assert_int_eq(edgelog_sync(log), 0);
	ck_assert_int_eq(edgelog_ack(log, PL_ACKED), 0);
	/* Two days pass while the engine runs (the age clock counts only
	 * that), stored in the cursor at close. */
	tvfs_mem_clock_advance(mem, 2 * DAY_MS);
	ck_assert_int_eq(edgelog_close(log), 0);
	return mem;
}

/* Every record the log holds is the one appended at its seq, and every
 * seq after acked is there. */
static void pl_check_records(const seg_vfs *v, uint64_t acked, const char *when)
{
	seg_reader r;
	seg_frame f;
	seg_err e;
	uint64_t next = acked + 1;
	int rc;

	ck_assert_msg(seg_reader_init(&r, v, PL_SEGS, 0, &e) == 0, "%s: reader: %s", when, e.msg);
	while ((rc = seg_reader_next(&r, &f, &e)) == 0) {
		ck_assert_msg(tu_keyed_record_key(f.data, f.len, 10, 200) == f.seq,
			      "%s: seq %" PRIu64 " does not hold its record", when, f.seq);
		if (f.seq < next)
			continue; /* passed by the cursor, not yet removed */
		ck_assert_msg(f.seq == next, "%s: seq %" PRIu64 " lost (found %" PRIu64 " next)",
			      when, next, f.seq);
		next++;
	}
	ck_assert_msg(rc == EDGELOG_EOF, "%s: reader: %s", when, e.msg);
	ck_assert_msg(next == PL_N + 1, "%s: records after seq %" PRIu64 " lost", when, next - 1);
	ck_assert_uint_eq(r.corrupt, 0);
	seg_reader_close(&r);
}

typedef struct pl_counts {
	uint64_t acked, sent, expired, dropped, pending, segments, size;
} pl_counts;

static pl_counts pl_status(edgelog *log)
{
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	pl_counts k;

	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	k.acked = st.acked_seq;
	k.sent = st.sent;
	k.expired = st.expired;
	k.dropped = st.dropped;
	k.pending = st.pending;
	k.segments = st.segments;
	k.size = st.size_bytes;
	ck_assert_uint_eq(st.pending + st.sent + st.dropped + st.expired + st.failed, PL_N);
	ck_assert_uint_eq(st.cursor_resets, 0);
	return k;
}

/* The cut: before operation number `at` (counted from arming, every
 * kind), the power goes; that call and every later one fails. */
typedef struct pl_cut {
	tvfs_mem *mem;
	tvfs_fault *f;
	uint64_t at, seed;
	int fired;
	int cursor_synced; /* an fsync (the cursor's: the only file fsync of a
			    * pass) completed before the cut */
	unsigned op;       /* the operation cut */
	char path[256];
} pl_cut;

static int pl_hook(void *ud, unsigned op, uint64_t n, const char *path)
{
	pl_cut *c = ud;

	if (c->fired)
		return -EIO;
	if (n < c->at) {
		if (op == TVFS_OP_FSYNC)
			c->cursor_synced = 1;
		return 0;
	}
	c->fired = 1;
	c->op = op;
	snprintf(c->path, sizeof(c->path), "%s", path ? path : "(fd)");
	tvfs_fault_fail(c->f, TVFS_OP_ALL, 1, -EIO, 1);
	tvfs_mem_power_loss(c->mem, c->seed);
	return -EIO;
}

/* One pass of retention (edgelog_cleanup) on the engine with the power
 * cut before its operation number `at` (0: no cut; the pass's operations
 * are counted into *ops). Then the directory is opened again on what the
 * file system kept: it must open cleanly, hold every record the cursor
 * has not passed, and show either the counts from before the pass (only
 * while the cursor was not yet durable) or those after it; one more pass
 * must then reach exactly the state an uncut pass reaches (*ref, filled
 * when at is 0): nothing counted twice, nothing left behind. */
static void pl_run(uint64_t at, uint64_t seed, uint64_t *ops, pl_counts *ref, pl_counts *before)
{
	tvfs_mem *mem = pl_fill(seed);
	tvfs_fault *f = tvfs_fault_new(tvfs_mem_vfs(mem));
	pl_cut cut = {mem, f, at, seed, 0, 0, 0, ""};
	char when[400];
	edgelog *log = pl_open(tvfs_fault_vfs(f));
	pl_counts k;
	int rc;

	if (!at)
		*before = pl_status(log);
	tvfs_fault_reset(f);
	if (at)
		tvfs_fault_set_hook(f, pl_hook, &cut);
	rc = edgelog_cleanup(log, 0);
	if (!at) {
		ck_assert_msg(rc == 0, "cleanup: %s", edgelog_errmsg(log));
		*ops = tvfs_fault_count(f, TVFS_OP_ALL);
		*ref = pl_status(log);
		/* The pass did something worth cutting: the acknowledged
		 * segment and the expired ones went, the active one stayed. */
		ck_assert_uint_gt(ref->acked, PL_ACKED);
		ck_assert_uint_lt(ref->acked, PL_N);
		ck_assert_uint_eq(ref->expired, ref->acked - PL_ACKED);
		ck_assert_uint_eq(ref->segments, 1);
		ck_assert_uint_lt(ref->size, before->size);
		/* The cut comes after the pass. */
		cut.fired = cut.cursor_synced = 1;
		tvfs_fault_fail(f, TVFS_OP_ALL, 1, -EIO, 1);
		tvfs_mem_power_loss(mem, seed);
	} else {
		/* (The pass may also return 0: a cut while it reads the
		 * segments' headers only shortens what it removes.) */
		ck_assert_msg(cut.fired, "operation %" PRIu64 " never came", at);
	}
	edgelog_close(log); /* frees memory; cannot touch the disk */
	tvfs_fault_free(f);

	if (at)
		snprintf(when, sizeof(when), "power cut before operation %" PRIu64 " (%s %s)", at,
			 tvfs_op_name(cut.op), cut.path);
	else
		snprintf(when, sizeof(when), "power cut after the pass");
	log = pl_open(tvfs_mem_vfs(mem));
	k = pl_status(log);
	pl_check_records(tvfs_mem_vfs(mem), k.acked, when);
	if (k.acked == before->acked) {
		ck_assert_msg(!cut.cursor_synced, "%s: the durable cursor was lost", when);
		ck_assert_uint_eq(k.expired, before->expired);
		ck_assert_uint_eq(k.sent, before->sent);
	} else {
		ck_assert_msg(k.acked == ref->acked,
			      "%s: acked %" PRIu64 ", neither %" PRIu64 " nor %" PRIu64, when,
			      k.acked, before->acked, ref->acked);
		ck_assert_uint_eq(k.expired, ref->expired);
		ck_assert_uint_eq(k.sent, ref->sent);
	}
	/* The next pass finishes the job, counting nothing twice. */
	ck_assert_msg(edgelog_cleanup(log, 0) == 0, "%s: cleanup: %s", when, edgelog_errmsg(log));
	k = pl_status(log);
	ck_assert_msg(k.acked == ref->acked && k.expired == ref->expired && k.sent == ref->sent &&
			      k.dropped == ref->dropped && k.segments == ref->segments &&
			      k.size == ref->size,
		      "%s, then a pass: acked %" PRIu64 " expired %" PRIu64 " segments %" PRIu64
		      " size %" PRIu64 "; uncut: %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64,
		      when, k.acked, k.expired, k.segments, k.size, ref->acked, ref->expired,
		      ref->segments, ref->size);
	pl_check_records(tvfs_mem_vfs(mem), k.acked, when);
	ck_assert_int_eq(edgelog_close(log), 0);
	tvfs_mem_free(mem);
}

/* The cut lands before each operation of the pass in turn, among them:
 * the cursor's write and its fdatasync (nothing durable yet), each unlink
 * (cursor durable, files not yet or partly removed), the directory fsync
 * (removed, not durably), and after the pass. */
START_TEST(test_power_cut_at_each_step_of_a_pass)
{
	pl_counts ref, before;
	uint64_t ops = 0, at, seed = tu_seed();

	pl_run(0, seed, &ops, &ref, &before);
	ck_assert_uint_gt(ops, 8);
	for (at = 1; at <= ops; at++)
		pl_run(at, seed + at, &ops, &ref, &before);
	printf("power cut before each of the %" PRIu64 " operations of a pass (%" PRIu64
	       " records expired, %" PRIu64 " segments removed) and after it: all clean\n",
	       ops, ref.expired, before.segments - ref.segments);
}
END_TEST

/* cmp_execute on its own, on the in-memory file system (behind the fault
 * injector): the sealed segments of a filled directory and a plan that
 * removes them all. */
typedef struct ex_ctx {
	tvfs_mem *mem;
	tvfs_fault *f;
	const seg_vfs *v;
	cmp_seg *segs;
	size_t n, k;
	cmp_action *act;
	cmp_done done;
	seg_err e;
	int calls;
	int fail; /* commit fails with this code */
} ex_ctx;

static int seg_exists(tvfs_mem *mem, uint64_t base)
{
	char name[SEG_NAME_LEN + 1], path[256];

	seg_name(name, base);
	snprintf(path, sizeof(path), "%s/%s", PL_SEGS, name);
	return tvfs_mem_exists(mem, path);
}

static int ex_commit(void *ud, seg_err *e)
{
	ex_ctx *c = ud;
	size_t i;

	c->calls++;
	/* Step 1 comes first: nothing removed yet. */
	for (i = 0; i < c->n; i++)
		ck_assert_msg(seg_exists(c->mem, c->segs[i].base),
			      "segment %zu removed before the cursor was committed", i);
	if (c->fail)
		return seg_fail(e, c->fail, "cursor store failed (test)");
	return 0;
}

/* Gather and plan: every sealed segment goes, as acknowledged. */
static void ex_plan(ex_ctx *c)
{
	cmp_policy p;

	free(c->act);
	free(c->segs);
	ck_assert_msg(cmp_gather(c->v, PL_SEGS, &c->segs, &c->n, &c->e) == 0, "gather: %s",
		      c->e.msg);
	ck_assert_uint_ge(c->n, 3);
	c->act = calloc(c->n, sizeof(*c->act));
	ck_assert_ptr_nonnull(c->act);
	memset(&p, 0, sizeof(p));
	p.acked_seq = PL_N;
	c->k = cmp_plan(c->segs, c->n, &p, c->act);
	ck_assert_uint_eq(c->k, c->n);
	tvfs_fault_reset(c->f);
}

static void ex_begin(ex_ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->mem = pl_fill(tu_seed());
	c->f = tvfs_fault_new(tvfs_mem_vfs(c->mem));
	c->v = tvfs_fault_vfs(c->f);
	ex_plan(c);
}

static int ex_execute(ex_ctx *c)
{
	return cmp_execute(c->v, PL_SEGS, c->segs, c->act, c->k, NULL, ex_commit, c, &c->done,
			   &c->e);
}

static void ex_end(ex_ctx *c)
{
	free(c->act);
	free(c->segs);
	tvfs_fault_free(c->f);
	tvfs_mem_free(c->mem);
}

START_TEST(test_execute_failed_commit_removes_nothing)
{
	ex_ctx c;
	size_t i;

	ex_begin(&c);
	c.fail = EDGELOG_EIO;
	ck_assert_int_eq(ex_execute(&c), EDGELOG_EIO);
	ck_assert_str_eq(c.e.msg, "cursor store failed (test)");
	ck_assert_int_eq(c.calls, 1);
	ck_assert_uint_eq(c.done.removed, 0);
	ck_assert_uint_eq(c.done.freed, 0);
	ck_assert_uint_eq(tvfs_fault_count(c.f, TVFS_OP_ALL), 0); /* not one file operation */
	for (i = 0; i < c.n; i++)
		ck_assert(seg_exists(c.mem, c.segs[i].base));

	/* The same plan with a commit that works: all of it, then fsynced. */
	c.fail = 0;
	ck_assert_int_eq(ex_execute(&c), 0);
	ck_assert_int_eq(c.calls, 2);
	ck_assert_uint_eq(c.done.removed, c.k);
	ck_assert_int_eq(c.done.synced, 1);
	for (i = 0; i < c.n; i++)
		ck_assert(!seg_exists(c.mem, c.segs[i].base));
	/* ... durably: a power loss now does not bring them back. */
	tvfs_mem_power_loss(c.mem, 1);
	for (i = 0; i < c.n; i++)
		ck_assert(!seg_exists(c.mem, c.segs[i].base));
	ex_end(&c);
}
END_TEST

START_TEST(test_execute_failed_unlink_keeps_a_contiguous_run)
{
	ex_ctx c;
	size_t i;

	ex_begin(&c);
	tvfs_fault_fail(c.f, TVFS_OP_UNLINK, 2, -EACCES, 0);
	ck_assert_int_eq(ex_execute(&c), EDGELOG_EPERM);
	ck_assert_msg(strstr(c.e.msg, "unlink " PL_SEGS "/") != NULL, "%s", c.e.msg);
	ck_assert_uint_eq(c.done.removed, 1);
	ck_assert_uint_eq(c.done.freed, c.segs[0].bytes);
	ck_assert_int_eq(c.done.synced, 1); /* the one removed is made durable */
	ck_assert_uint_eq(tvfs_fault_count(c.f, TVFS_OP_UNLINK), 2);
	ck_assert(!seg_exists(c.mem, c.segs[0].base));
	for (i = 1; i < c.n; i++)
		ck_assert(seg_exists(c.mem, c.segs[i].base));
	tvfs_mem_power_loss(c.mem, 2);
	ck_assert(!seg_exists(c.mem, c.segs[0].base));

	/* A failed directory fsync is reported too; the files are gone. */
	ex_plan(&c);
	tvfs_fault_fail(c.f, TVFS_OP_FSYNC_DIR, 1, -EIO, 0);
	ck_assert_int_eq(ex_execute(&c), EDGELOG_EIO);
	ck_assert_msg(strstr(c.e.msg, "fsync directory " PL_SEGS) != NULL, "%s", c.e.msg);
	ck_assert_uint_eq(c.done.removed, c.k);
	ck_assert_int_eq(c.done.synced, 0);
	for (i = 0; i < c.n; i++)
		ck_assert(!seg_exists(c.mem, c.segs[i].base));
	ex_end(&c);
}
END_TEST

/* Recycling: the acknowledged segment retention removes first becomes
 * segments/.recycle; it is no segment any more but its bytes stay counted
 * (they are on the disk) until it is reused or, at the next open,
 * removed. The expired ones are unlinked as before. */
START_TEST(test_recycled_segment_stays_counted)
{
	g_pl_reuse = 1;
	tvfs_mem *mem = pl_fill(tu_seed());
	edgelog *log = pl_open(tvfs_mem_vfs(mem));
	pl_counts k0, k1, k2;
	cmp_seg *segs;
	uint64_t all = 0;
	size_t n, i;
	seg_err e;

	ck_assert_int_eq(cmp_gather(tvfs_mem_vfs(mem), PL_SEGS, &segs, &n, &e), 0);
	ck_assert_uint_ge(n, 3);
	for (i = 0; i < n; i++)
		all += segs[i].bytes;
	k0 = pl_status(log);
	ck_assert_int_eq(edgelog_cleanup(log, 0), 0);
	k1 = pl_status(log);
	ck_assert(tvfs_mem_exists(mem, PL_SEGS "/.recycle"));
	for (i = 0; i < n; i++)
		ck_assert(!seg_exists(mem, segs[i].base));
	ck_assert_uint_eq(k1.segments, k0.segments - n);
	ck_assert_uint_eq(k1.size, k0.size - all + segs[0].bytes);
	ck_assert_uint_eq(k1.acked, segs[n - 1].last);
	ck_assert_uint_eq(k1.expired, segs[n - 1].last - PL_ACKED);
	ck_assert_int_eq(edgelog_close(log), 0);
	/* Reopened: the file is gone, and with it its bytes. */
	log = pl_open(tvfs_mem_vfs(mem));
	k2 = pl_status(log);
	ck_assert(!tvfs_mem_exists(mem, PL_SEGS "/.recycle"));
	ck_assert_uint_eq(k2.size, k0.size - all);
	ck_assert_uint_eq(k2.acked, k1.acked);
	ck_assert_uint_eq(k2.expired, k1.expired);
	pl_check_records(tvfs_mem_vfs(mem), k2.acked, "after recycling");
	ck_assert_int_eq(edgelog_close(log), 0);
	free(segs);
	tvfs_mem_free(mem);
}
END_TEST

/* Through the engine: an unlink that fails is reported, and the segments
 * it left stay counted against the cap (size_bytes, segments) until the
 * next pass removes them; nothing is counted as lost twice. */
START_TEST(test_failed_unlink_keeps_the_size_accounting)
{
	tvfs_mem *mem = pl_fill(tu_seed());
	tvfs_fault *f = tvfs_fault_new(tvfs_mem_vfs(mem));
	edgelog *log = pl_open(tvfs_fault_vfs(f));
	pl_counts k0, k1, k2;
	cmp_seg *segs;
	uint64_t rest = 0;
	size_t n, i;
	seg_err e;

	ck_assert_int_eq(cmp_gather(tvfs_mem_vfs(mem), PL_SEGS, &segs, &n, &e), 0);
	ck_assert_uint_ge(n, 3);
	k0 = pl_status(log);
	tvfs_fault_reset(f);
	tvfs_fault_fail(f, TVFS_OP_UNLINK, 2, -EIO, 0);
	ck_assert_int_eq(edgelog_cleanup(log, 0), EDGELOG_EIO);
	ck_assert_msg(strstr(edgelog_errmsg(log), "unlink") != NULL, "%s", edgelog_errmsg(log));
	k1 = pl_status(log);
	/* The cursor moved past all of them (they are counted once, now). */
	ck_assert_uint_eq(k1.acked, segs[n - 1].last);
	ck_assert_uint_eq(k1.expired, segs[n - 1].last - PL_ACKED);
	/* Only the first file went: only its bytes come off. */
	ck_assert_uint_eq(k1.segments, k0.segments - 1);
	ck_assert_uint_eq(k1.size, k0.size - segs[0].bytes);
	/* The next pass removes the rest, as acknowledged. */
	ck_assert_int_eq(edgelog_cleanup(log, 0), 0);
	k2 = pl_status(log);
	ck_assert_uint_eq(k2.acked, k1.acked);
	ck_assert_uint_eq(k2.expired, k1.expired);
	ck_assert_uint_eq(k2.segments, 1);
	for (i = 1; i < n; i++)
		rest += segs[i].bytes;
	ck_assert_uint_eq(k2.size, k1.size - rest);
	ck_assert_int_eq(edgelog_close(log), 0);
	free(segs);
	tvfs_fault_free(f);
	tvfs_mem_free(mem);
}
END_TEST

/* ---- through the engine --------------------------------------------------- */

static char *g_dir;

static void setup(void)
{
	g_dir = tu_mkdtemp("cmptest");
}

static void teardown(void)
{
	tu_rm_rf(g_dir);
	free(g_dir);
}

static edgelog *open_cfg(edgelog_config *c, const seg_vfs *v)
{
	edgelog *log;
	int rc = v ? eng_open_vfs(&log, c, v) : edgelog_open(&log, c);
	ck_assert_msg(rc == 0, "open: %s", edgelog_errmsg(NULL));
	return log;
}

static void cfg_small(edgelog_config *c, int policy)
{
	edgelog_config_init(c);
	c->dir = g_dir;
	c->max_size_mb = 1;
	c->segment_bytes = 65536;
	c->sync = EDGELOG_SYNC_NONE;
	c->full_policy = policy;
}

static int append_n(edgelog *log, uint64_t from, uint64_t n, uint64_t *last)
{
	uint8_t b[1024];
	uint64_t i, seq = 0;
	int rc = 0;

	for (i = 0; i < n; i++) {
		size_t len = tool_sample_msgpack(from + i, b, sizeof(b));
		rc = edgelog_append(log, b, len, &seq);
		if (rc)
			break;
	}
	if (last)
		*last = seq;
	return rc;
}

static void check_identity(edgelog *log, uint64_t appended)
{
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};

	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_msg(st.pending + st.sent + st.dropped + st.expired + st.failed == appended,
		      "appended %" PRIu64 " != pending %" PRIu64 " + sent %" PRIu64
		      " + dropped %" PRIu64 " + expired %" PRIu64 " + failed %" PRIu64,
		      appended, st.pending, st.sent, st.dropped, st.expired, st.failed);
}

/* Disk use of the directory's files. */
static uint64_t dir_bytes(void)
{
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog_config c;
	edgelog *log;

	cfg_small(&c, 0);
	log = open_cfg(&c, NULL);
	edgelog_get_status(log, &st);
	edgelog_close(log);
	return st.size_bytes;
}

typedef struct alloc_sum {
	const seg_vfs *v;
	const char *dir;
	uint64_t bytes;
} alloc_sum;

static int add_alloc(void *ud, const char *name)
{
	alloc_sum *z = ud;
	char path[4400];
	uint64_t alloc = 0;

	if (!strcmp(name, SEG_SYNCED_NAME))
		return 0;
	snprintf(path, sizeof(path), "%s/%s", z->dir, name);
	if (z->v->stat(z->v, path, NULL, &alloc) == 0)
		z->bytes += alloc;
	return 0;
}

/* Blocks allocated to every file in dir the engine counts (segments, spare,
 * .recycle; not the synced hint, one block never counted). */
static uint64_t dir_alloc(const seg_vfs *v, const char *dir)
{
	alloc_sum z = {v, dir, 0};
	ck_assert_int_eq(v->list(v, dir, add_alloc, &z), 0);
	return z.bytes;
}

/*
 * Found here: a log receiving under a record a second seals its segments by
 * age, and the seal punches the unused tail (FORMAT.md, "Segment size and
 * rolling"); retention then unlinked such a segment instead of recycling
 * it (the file had holes), so a slow logger never reused a file. Now it is
 * set aside like any acknowledged segment of segment_bytes, and the
 * preparer allocates the hole again before the placeholder header. On the
 * real file system (holes are real there), with a fake clock.
 */
START_TEST(test_age_sealed_segment_is_recycled)
{
	tvfs_fault *f = tvfs_fault_new(NULL);
	const seg_vfs *v = tvfs_fault_vfs(f);
	edgelog_config c;
	edgelog *log;
	edgelog_reader *r;
	edgelog_record rec;
	char segdir[4200], first[4300], recycle[4300], spare[4300];
	uint64_t seq, size = 0, alloc = 0, i, n;
	uint8_t b[1024];

	tvfs_fault_clock_set(f, 1765000000000ll, 1000000);
	edgelog_config_init(&c);
	c.dir = g_dir;
	c.segment_bytes = 256 * 1024; /* a tail of more than 64 KiB is punched */
	c.segment_max_age_s = 1;
	c.sync = EDGELOG_SYNC_NONE;
	c.log_fn = tu_quiet_log;
	snprintf(segdir, sizeof(segdir), "%s/segments", g_dir);
	snprintf(first, sizeof(first), "%s/00000000000000000001.seg", segdir);
	snprintf(recycle, sizeof(recycle), "%s/.recycle", segdir);
	snprintf(spare, sizeof(spare), "%s/.spare", segdir);
	log = open_cfg(&c, v);
	for (i = 1; i <= 6; i++) {
		if (i == 6)
			tvfs_fault_clock_advance(f, 2000); /* the first segment is too old */
		ck_assert_int_eq(edgelog_append(log, b, tool_sample_msgpack(i, b, sizeof(b)), &seq),
				 0);
		ck_assert_uint_eq(seq, i);
	}
	ck_assert_int_eq(edgelog_sync(log), 0);
	ck_assert_int_eq(v->stat(v, first, &size, &alloc), 0);
	ck_assert_uint_eq(size, c.segment_bytes);
	ck_assert_msg(alloc < size,
		      "the age-sealed segment's tail was not punched (%" PRIu64 " of %" PRIu64
		      " bytes allocated)",
		      alloc, size);
	ck_assert_uint_eq(log->w.bytes, dir_alloc(v, segdir));

	/* Acknowledged: retention sets it aside for the next spare. */
	ck_assert_int_eq(edgelog_ack(log, 5), 0);
	ck_assert_int_eq(edgelog_cleanup(log, 0), 0);
	ck_assert_msg(v->stat(v, recycle, NULL, NULL) == 0,
		      "the acknowledged age-sealed segment was not set aside for recycling");
	ck_assert_uint_eq(log->w.bytes, dir_alloc(v, segdir));
	/* The preparer makes it the spare, its hole allocated again, and the
	 * next roll writes into it. */
	edgelog_step(log, 0);
	ck_assert_int_eq(v->stat(v, spare, &size, &alloc), 0);
	ck_assert_uint_eq(alloc, size);
	ck_assert_uint_eq(log->w.bytes, dir_alloc(v, segdir));
	tvfs_fault_clock_advance(f, 2000);
	ck_assert_int_eq(edgelog_append(log, b, tool_sample_msgpack(7, b, sizeof(b)), &seq), 0);
	ck_assert_uint_eq(seq, 7);
	ck_assert_uint_eq(log->w.recycled, 1);
	ck_assert_uint_eq(log->w.bytes, dir_alloc(v, segdir));
	ck_assert_int_eq(edgelog_close(log), 0);

	/* Reopened: the records after the ack are there, in order. */
	ck_assert_int_eq(edgelog_reader_open(&r, g_dir, 6), 0);
	for (n = 6; edgelog_reader_next(r, &rec) == 0; n++) {
		size_t len = tool_sample_msgpack(n, b, sizeof(b));
		ck_assert_uint_eq(rec.seq, n);
		ck_assert(rec.len == len && memcmp(rec.data, b, len) == 0);
	}
	ck_assert_uint_eq(n, 8);
	ck_assert_uint_eq(edgelog_reader_corrupt(r), 0);
	edgelog_reader_close(r);
	tvfs_fault_free(f);
}
END_TEST

START_TEST(test_drop_oldest_keeps_the_cap_and_counts)
{
	edgelog_config c;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog_reader *r;
	edgelog_record rec;
	uint64_t last, n = 0, first = 0, prev = 0;
	edgelog *log;

	cfg_small(&c, EDGELOG_FULL_DROP_OLDEST);
	log = open_cfg(&c, NULL);
	/* About 4.4 MB into a 1 MiB cap. */
	ck_assert_int_eq(append_n(log, 1, 10000, &last), 0);
	ck_assert_uint_eq(last, 10000);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_gt(st.dropped, 0);
	ck_assert_uint_le(st.size_bytes, st.max_size_bytes + 65536);
	check_identity(log, 10000);
	/* Acks count as sent, and the identity still holds. */
	ck_assert_int_eq(edgelog_ack(log, st.last_seq - 10), 0);
	check_identity(log, 10000);
	ck_assert_int_eq(edgelog_close(log), 0);

	/* What is left is a contiguous run ending at the last record. */
	ck_assert_int_eq(edgelog_reader_open(&r, g_dir, 0), 0);
	while (edgelog_reader_next(r, &rec) == 0) {
		if (!n)
			first = rec.seq;
		else
			ck_assert_uint_eq(rec.seq, prev + 1);
		prev = rec.seq;
		n++;
	}
	edgelog_reader_close(r);
	ck_assert_uint_eq(prev, 10000);
	ck_assert_uint_gt(first, 1);
	ck_assert_uint_le(dir_bytes(), (1u << 20) + 65536);
}
END_TEST

START_TEST(test_reject_refuses_then_accepts_after_acks)
{
	edgelog_config c;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	uint64_t last = 0;
	edgelog *log;
	int rc;

	cfg_small(&c, EDGELOG_FULL_REJECT);
	log = open_cfg(&c, NULL);
	rc = append_n(log, 1, 10000, &last);
	ck_assert_int_eq(rc, EDGELOG_EFULL);
	ck_assert_msg(strstr(edgelog_errmsg(log), "cap") != NULL, "%s", edgelog_errmsg(log));
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.dropped, 0);
	ck_assert_uint_eq(st.expired, 0);
	ck_assert_uint_le(st.size_bytes, st.max_size_bytes + 65536);
	ck_assert_uint_gt(st.last_seq, 0);
	check_identity(log, st.last_seq);
	/* Still full: another append fails, nothing stored. */
	ck_assert_int_eq(append_n(log, st.last_seq + 1, 1, NULL), EDGELOG_EFULL);
	/* Acknowledge everything and run retention: room again. */
	ck_assert_int_eq(edgelog_ack(log, st.last_seq), 0);
	ck_assert_int_eq(edgelog_cleanup(log, 0), 0);
	ck_assert_int_eq(append_n(log, st.last_seq + 1, 100, &last), 0);
	ck_assert_uint_eq(last, st.last_seq + 100);
	check_identity(log, st.last_seq + 100);
	ck_assert_int_eq(edgelog_close(log), 0);
}
END_TEST

START_TEST(test_age_retention_survives_clock_jumps)
{
	tvfs_fault *f = tvfs_fault_new(NULL);
	const seg_vfs *v = tvfs_fault_vfs(f);
	int64_t t0 = 1764000000000ll;
	edgelog_config c;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog *log;
	uint64_t last;

	tvfs_fault_clock_set(f, t0, 1000);
	cfg_small(&c, EDGELOG_FULL_DROP_OLDEST);
	c.max_size_mb = 100;
	c.retention_days = 1;
	log = open_cfg(&c, v);
	/* Several sealed segments. */
	ck_assert_int_eq(append_n(log, 1, 2000, &last), 0);

	/* The wall clock jumps a year ahead: nothing may expire. */
	tvfs_fault_clock_jump(f, 365 * DAY_MS);
	ck_assert_int_eq(edgelog_cleanup(log, 0), 0);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.expired, 0);
	ck_assert_uint_eq(st.pending, 2000);
	/* ... and back to 1970: still nothing. */
	tvfs_fault_clock_jump(f, -(365 * DAY_MS) - t0);
	ck_assert_int_eq(edgelog_cleanup(log, 0), 0);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.expired, 0);

	/* The clock restored, two days of real (monotonic) time pass. */
	tvfs_fault_clock_jump(f, t0);
	tvfs_fault_clock_advance(f, 2 * DAY_MS);
	ck_assert_int_eq(edgelog_cleanup(log, 0), 0);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_gt(st.expired, 0);
	ck_assert_uint_lt(st.expired, 2000); /* the active segment stays */
	check_identity(log, 2000);
	ck_assert_int_eq(edgelog_close(log), 0);

	/* The age clock persists: reopening does not reset ages, and the
	 * counts persist too. */
	log = open_cfg(&c, v);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	check_identity(log, 2000);
	ck_assert_int_eq(edgelog_close(log), 0);
	tvfs_fault_free(f);
}
END_TEST

START_TEST(test_powered_off_time_does_not_age)
{
	tvfs_fault *f = tvfs_fault_new(NULL);
	const seg_vfs *v = tvfs_fault_vfs(f);
	int64_t t0 = 1764000000000ll;
	edgelog_config c;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog *log;

	tvfs_fault_clock_set(f, t0, 1000);
	cfg_small(&c, EDGELOG_FULL_DROP_OLDEST);
	c.max_size_mb = 100;
	c.retention_days = 1;
	log = open_cfg(&c, v);
	ck_assert_int_eq(append_n(log, 1, 2000, NULL), 0);
	ck_assert_int_eq(edgelog_close(log), 0);
	/* A month unpowered: the wall clock moves, the monotonic clock
	 * restarts (a new boot). */
	tvfs_fault_clock_set(f, t0 + 30 * DAY_MS, 5);
	log = open_cfg(&c, v);
	ck_assert_int_eq(edgelog_cleanup(log, 0), 0);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.expired, 0);
	ck_assert_uint_eq(st.pending, 2000);
	ck_assert_int_eq(edgelog_close(log), 0);
	tvfs_fault_free(f);
}
END_TEST

/* A cursor whose age clock stands at the top of its range (2^53 ms, FORMAT.md)
 * keeps the clock there: a day later the segments it starts still carry an
 * age a reader accepts, so the next open finds every record (an age past
 * the range would make each new segment read as damage). */
START_TEST(test_age_clock_at_its_limit_writes_readable_segments)
{
	tvfs_fault *f = tvfs_fault_new(NULL);
	const seg_vfs *v = tvfs_fault_vfs(f);
	edgelog_config c;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog *log;
	char path[4400];
	cur_state cur;
	seg_err e;
	int fd, how;

	tvfs_fault_clock_set(f, 1764000000000ll, 1000);
	cfg_small(&c, EDGELOG_FULL_DROP_OLDEST);
	c.max_size_mb = 100;
	log = open_cfg(&c, v);
	ck_assert_int_eq(append_n(log, 1, 10, NULL), 0);
	ck_assert_int_eq(edgelog_close(log), 0);
	snprintf(path, sizeof(path), "%s/%s", g_dir, CUR_FILE);
	ck_assert_int_eq(cur_load(v, path, &cur, &how, &e), 0);
	cur.age_ms = SEG_TS_LIMIT_MS - 5;
	fd = cur_open(v, path, &e);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(cur_store(v, fd, &cur, &e), 0);
	v->close(v, fd);

	log = open_cfg(&c, v);
	tvfs_fault_clock_advance(f, DAY_MS);
	ck_assert_int_eq(append_n(log, 11, 2000, NULL), 0);
	tvfs_fault_clock_advance(f, DAY_MS);
	ck_assert_int_eq(edgelog_close(log), 0);
	ck_assert_int_eq(cur_load(v, path, &cur, &how, &e), 0);
	ck_assert(cur.age_ms == SEG_TS_LIMIT_MS);

	log = open_cfg(&c, v);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.corrupt, 0);
	ck_assert_uint_eq(st.pending, 2010);
	check_identity(log, 2010);
	ck_assert_int_eq(edgelog_close(log), 0);
	tvfs_fault_free(f);
}
END_TEST

static Suite *compactor_suite(void)
{
	Suite *s = suite_create("compactor");
	TCase *tc = tcase_create("plan");

	tcase_add_test(tc, test_plan_deletes_acked_prefix_only);
	tcase_add_test(tc, test_plan_expiry_needs_both_clocks);
	tcase_add_test(tc, test_plan_size_pressure_drops_oldest_only_under_drop_oldest);
	suite_add_tcase(s, tc);

	tc = tcase_create("order");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_execute_failed_commit_removes_nothing);
	tcase_add_test(tc, test_execute_failed_unlink_keeps_a_contiguous_run);
	tcase_add_test(tc, test_failed_unlink_keeps_the_size_accounting);
	tcase_add_test(tc, test_power_cut_at_each_step_of_a_pass);
	suite_add_tcase(s, tc);

	tc = tcase_create("engine");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_drop_oldest_keeps_the_cap_and_counts);
	tcase_add_test(tc, test_age_sealed_segment_is_recycled);
	tcase_add_test(tc, test_reject_refuses_then_accepts_after_acks);
	tcase_add_test(tc, test_age_retention_survives_clock_jumps);
	tcase_add_test(tc, test_powered_off_time_does_not_age);
	tcase_add_test(tc, test_age_clock_at_its_limit_writes_readable_segments);
	tcase_add_test(tc, test_recycled_segment_stays_counted);
	suite_add_tcase(s, tc);
	return s;
}

TU_CHECK_MAIN(compactor_suite)
