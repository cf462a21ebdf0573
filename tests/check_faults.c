/*
 * check_faults.c - I/O faults and crashes at every step of a scripted
 * scenario, through the I/O seam (tests/test_vfs.h).
 *
 * The scenario (sync=none with explicit syncs, and sync=always) opens an
 * engine on an in-memory file system (tvfs_mem) behind a fault injector
 * (tvfs_fault), appends records across several segments, syncs,
 * acknowledges, compacts (recycling an acknowledged segment file, which
 * the next roll writes into), restarts once and appends again. It is run once clean to count its file operations, then once per
 * operation N and per fault:
 *
 *  - ENOSPC, then EIO, on the Nth operation alone;
 *  - a short write on the Nth pwrite;
 *  - ENOSPC from the Nth operation on (a disk that stays full) until the
 *    scenario's last step, which frees the space and must then append and
 *    sync successfully (the engine stayed up).
 *
 * After each run the directory is reopened on the clean file system and
 * checked: open succeeds; every record whose append returned 0 is there at
 * its seq, byte for byte, or acknowledged (the run ends as a process would,
 * so the page cache keeps what was not synced); every edgelog_ack that
 * returned 0 held; seqs increase; pending equals the stored records above
 * the ack; appended = pending + sent + dropped + expired + failed. A second
 * pass ends each run with a power cut instead: then only records confirmed
 * by a sync that returned 0 must be there.
 *
 * The crash tests cut the power (or kill the process) before every file
 * operation of a compaction that removes acknowledged and expired segments
 * (cursor store, unlinks, directory fsync), then reopen: nothing unacked
 * and unexpired lost, no ack lost, a segment the cursor had passed does not
 * come back as pending, and nothing is counted twice once retention runs
 * again.
 *
 * EDGELOG_TEST_SEED replays the power-loss choices of a failing run.
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
#define DAY_MS (86400ll * 1000)

/* The scenario's sync mode: none (explicit syncs) or always (every
 * append that returns 0 is durable). */
static edgelog_sync_mode g_sync = EDGELOG_SYNC_NONE;
/* The scenario recycles a segment file before its restart. */
static int g_recycle;

/* ------------------------------------------------------------------------
 * Self-describing records: msgpack [key, bin of 1500 + key % 1000 bytes
 * derived from key], so about 30 fill a 64 KiB segment.
 */
#define REC_MAX 2600

static size_t make_record(uint64_t key, uint8_t *out)
{
	return tu_keyed_record(key, 1500, 1000, out);
}

/* The key of a record we made, or 0. */
static uint64_t record_key(const uint8_t *p, size_t len)
{
	return tu_keyed_record_key(p, len, 1500, 1000);
}

/* ------------------------------------------------------------------------
 * What the scenario was told: key per seq, and which are confirmed durable
 */
#define MAX_SEQ 1024

typedef struct model {
	uint64_t key[MAX_SEQ];   /* append returned 0 with this seq */
	uint8_t synced[MAX_SEQ]; /* a later sync returned 0 */
	uint64_t last;           /* highest seq returned */
	uint64_t acked;          /* highest seq an edgelog_ack returned 0 for */
	uint64_t next_key;
	int open_failed; /* the first open failed (the fault hit it) */
} model;

typedef struct run {
	tvfs_mem *mem;
	tvfs_fault *f;
	const seg_vfs *v;
	model m;
	edgelog *log;
	char where[160];
	uint64_t recycled; /* segments the first engine started in recycled files */
} run;

static void config(edgelog_config *c)
{
	edgelog_config_init(c);
	c->dir = DIR_PATH;
	c->device_id = "faults";
	c->sync = g_sync; /* none: syncs are the scenario's own steps */
	c->segment_bytes = 65536;
	c->max_size_mb = 100;
	c->retention_days = 7;
	c->log_fn = tu_quiet_log;
}

static void run_init(run *r, uint64_t seed)
{
	memset(r, 0, sizeof(*r));
	r->mem = tvfs_mem_new(seed);
	tvfs_mem_set_loss(r->mem, 0, 0, 0); /* a cut keeps exactly what was synced */
	r->f = tvfs_fault_new(tvfs_mem_vfs(r->mem));
	r->v = tvfs_fault_vfs(r->f);
	r->m.next_key = 1;
	ck_assert_int_eq(tvfs_mem_mkdirs(r->mem, "/f"), 0);
}

static void run_free(run *r)
{
	tvfs_fault_free(r->f);
	tvfs_mem_free(r->mem);
}

/* ---- scenario steps (each tolerates the injected fault) ---------------- */

static int s_open(run *r)
{
	edgelog_config c;
	config(&c);
	return eng_open_vfs(&r->log, &c, r->v);
}

static int s_append(run *r)
{
	uint8_t rec[REC_MAX];
	uint64_t key = r->m.next_key++, seq = 0;
	size_t len = make_record(key, rec);
	int rc = edgelog_append(r->log, rec, len, &seq);
	if (rc == 0) {
		CHECK(seq > r->m.last && seq < MAX_SEQ,
		      "%s: append returned seq %" PRIu64 " after %" PRIu64, r->where, seq,
		      r->m.last);
		r->m.key[seq] = key;
		r->m.synced[seq] = g_sync == EDGELOG_SYNC_ALWAYS;
		r->m.last = seq;
	}
	return rc;
}

static int s_sync(run *r)
{
	int rc = edgelog_sync(r->log);
	if (rc == 0)
		for (uint64_t s = 1; s <= r->m.last; s++)
			r->m.synced[s] = 1;
	return rc;
}

static int s_ack(run *r, uint64_t seq)
{
	int rc;
	if (seq > r->m.last)
		seq = r->m.last;
	if (!seq)
		return 0;
	rc = edgelog_ack(r->log, seq);
	/* edgelog_ack promises a durable cursor when it returns 0, also
	 * after an earlier ack whose cursor store failed (see
	 * test_ack_after_failed_cursor_store_is_durable). */
	if (rc == 0 && seq > r->m.acked)
		r->m.acked = seq;
	return rc;
}

/* The scenario. Errors from the injected fault are expected and ignored;
 * the checks afterwards say whether anything was lost. Returns 0 when it
 * ran to the end with an open engine in r->log. */
static int scenario(run *r)
{
	int i;

	if (s_open(r)) {
		r->m.open_failed = 1;
		return -1;
	}
	for (i = 0; i < 40; i++) /* a segment and a bit */
		s_append(r);
	s_sync(r);
	for (i = 0; i < 40; i++)
		s_append(r);
	s_ack(r, 35); /* inside the first segment */
	s_sync(r);
	s_ack(r, r->m.last - 10);
	edgelog_cleanup(r->log, 0); /* removes the acknowledged segments */
	for (i = 0; i < 10; i++)
		s_append(r);
	if (g_recycle) {
		/* Everything acknowledged: retention recycles the oldest
		 * segment file, the step makes it the spare and the next roll
		 * writes into it (FORMAT.md, "Recycled segments"); the restart
		 * below recovers it. (A single ENOSPC at a roll once dropped
		 * the oldest unacknowledged segment under drop_oldest; it no
		 * longer does: check_enospc.c fails each operation of a roll
		 * with sealed unacknowledged segments behind it.) */
		s_sync(r);
		s_ack(r, r->m.last);
		edgelog_cleanup(r->log, 0);
		edgelog_step(r->log, 0);
		for (i = 0; i < 40; i++)
			s_append(r);
		r->recycled = r->log->w.recycled;
		s_sync(r);
		s_ack(r, r->m.last);
	}
	/* A restart in the middle (close may report the fault; the handle is
	 * freed either way). */
	edgelog_close(r->log);
	r->log = NULL;
	if (s_open(r))
		return -1;
	for (i = 0; i < 30; i++)
		s_append(r);
	s_sync(r);
	s_ack(r, r->m.last - 5);
	edgelog_cleanup(r->log, 0);
	return 0;
}

/* ---- the checks ----------------------------------------------------------- */

/* Reopen on the clean file system and check everything the scenario was
 * told. strict: every append that returned 0 must be there (the run ended
 * as a process does: the page cache kept it); else only synced ones. */
static void check_after(run *r, int strict, int may_expire)
{
	edgelog_config c;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog *log = NULL;
	seg_reader rd;
	seg_frame fr;
	seg_err e;
	uint8_t seen[MAX_SEQ];
	uint64_t prev = 0, above = 0, s;
	int rc;

	config(&c);
	rc = eng_open_vfs(&log, &c, tvfs_mem_vfs(r->mem));
	CHECK(rc == 0, "%s: reopen on a clean file system: %s: %s", r->where, edgelog_strerror(rc),
	      edgelog_errmsg(NULL));
	CHECK(edgelog_get_status(log, &st) == 0, "status");
	CHECK(st.acked_seq >= r->m.acked,
	      "%s: edgelog_ack(%" PRIu64 ") returned 0 but the cursor says %" PRIu64, r->where,
	      r->m.acked, st.acked_seq);

	memset(seen, 0, sizeof(seen));
	rc = seg_reader_init(&rd, tvfs_mem_vfs(r->mem), SEG_PATH, 0, &e);
	CHECK(rc == 0, "%s: reader: %s", r->where, e.msg);
	while ((rc = seg_reader_next(&rd, &fr, &e)) == 0) {
		uint64_t key = record_key(fr.data, fr.len);
		CHECK(fr.seq > prev, "%s: seq %" PRIu64 " after %" PRIu64, r->where, fr.seq, prev);
		prev = fr.seq;
		CHECK(key && key < r->m.next_key,
		      "%s: seq %" PRIu64 " holds %u bytes that were never appended", r->where,
		      fr.seq, fr.len);
		CHECK(fr.seq < MAX_SEQ, "%s: seq %" PRIu64 " out of range", r->where, fr.seq);
		if (r->m.key[fr.seq])
			CHECK(r->m.key[fr.seq] == key,
			      "%s: seq %" PRIu64 " holds record %" PRIu64
			      " but append returned it for record %" PRIu64,
			      r->where, fr.seq, key, r->m.key[fr.seq]);
		seen[fr.seq] = 1;
		if (fr.seq > st.acked_seq)
			above++;
	}
	CHECK(rc == EDGELOG_EOF, "%s: reader: %s", r->where, e.msg);
	CHECK(rd.corrupt == 0, "%s: %" PRIu64 " damaged range(s) after a fault", r->where,
	      rd.corrupt);
	seg_reader_close(&rd);

	for (s = 1; s <= r->m.last; s++) {
		if (!r->m.key[s] || seen[s] || s <= st.acked_seq)
			continue;
		CHECK(!strict && !r->m.synced[s],
		      "%s: record %" PRIu64 " (seq %" PRIu64
		      ") was accepted%s, is not acknowledged, and is gone",
		      r->where, r->m.key[s], s, r->m.synced[s] ? " and synced" : "");
	}
	CHECK(st.pending == above,
	      "%s: pending %" PRIu64 " but %" PRIu64 " records stored above the ack %" PRIu64,
	      r->where, st.pending, above, st.acked_seq);
	CHECK(st.appended == st.pending + st.sent + st.dropped + st.expired + st.failed,
	      "%s: appended %" PRIu64 " != pending %" PRIu64 " + sent %" PRIu64
	      " + dropped %" PRIu64 " + expired %" PRIu64 " + failed %" PRIu64,
	      r->where, st.appended, st.pending, st.sent, st.dropped, st.expired, st.failed);
	CHECK(st.dropped == 0 && (may_expire || st.expired == 0) && st.failed == 0,
	      "%s: dropped %" PRIu64 " expired %" PRIu64 " failed %" PRIu64
	      " with no cap, no expiry, no endpoint",
	      r->where, st.dropped, st.expired, st.failed);
	CHECK(st.last_seq >= prev, "%s: last_seq %" PRIu64 " below a stored seq %" PRIu64, r->where,
	      st.last_seq, prev);

	/* Still a working log: a new record gets a new seq, and survives. */
	{
		uint8_t rec[REC_MAX];
		uint64_t seq = 0;
		size_t len = make_record(r->m.next_key, rec);
		rc = edgelog_append(log, rec, len, &seq);
		CHECK(rc == 0, "%s: append after reopen: %s", r->where, edgelog_errmsg(log));
		/* After a power cut a seq whose record was never synced (so
		 * never sent) may be given out again; never one that was. */
		uint64_t floor = 0;
		for (s = 1; s <= r->m.last; s++)
			if (r->m.key[s] && (strict || r->m.synced[s]))
				floor = s;
		CHECK(seq > st.last_seq && seq > floor && seq > r->m.acked,
		      "%s: seq %" PRIu64 " given out again (last %" PRIu64 ", %s up to %" PRIu64
		      ")",
		      r->where, seq, st.last_seq, strict ? "appended" : "synced", floor);
		CHECK(edgelog_sync(log) == 0, "%s: sync after reopen: %s", r->where,
		      edgelog_errmsg(log));
	}
	rc = edgelog_close(log);
	CHECK(rc == 0, "%s: close after reopen: %s", r->where, edgelog_errmsg(NULL));
}

/* ---- fault loops ------------------------------------------------------------ */

enum fault_kind {
	F_ENOSPC,
	F_EIO,
	F_SHORT,
	F_FULL
};

static const char *kind_name(int k)
{
	return k == F_ENOSPC ? "ENOSPC" :
	       k == F_EIO    ? "EIO" :
	       k == F_SHORT  ? "short write" :
			       "disk full from";
}

/* One run with the fault at n (0: none). ending: 0 close, 1 power cut.
 * Returns the operations counted (of the kinds the fault counts). */
static uint64_t g_clean_recycled; /* r.recycled of the fault-free run */

static uint64_t one_run(int kind, uint64_t n, int cut, uint64_t *fired)
{
	run r;
	unsigned mask = kind == F_SHORT ? TVFS_OP_PWRITE : TVFS_OP_COUNTED;
	uint64_t count;
	int done;

	run_init(&r, tu_seed() * 1000003 + n);
	snprintf(r.where, sizeof(r.where), "%s at operation %" PRIu64 ", %s", kind_name(kind), n,
		 cut ? "then a power cut" : "then close");
	if (n) {
		if (kind == F_SHORT)
			tvfs_fault_short_write(r.f, n);
		else
			tvfs_fault_fail(r.f, TVFS_OP_COUNTED, n, kind == F_EIO ? -EIO : -ENOSPC,
					kind == F_FULL);
	}
	done = scenario(&r);
	if (!n)
		g_clean_recycled = r.recycled;
	count = tvfs_fault_count(r.f, mask);
	*fired = tvfs_fault_injected(r.f);
	/* Disarm whatever did not fire: the last step runs on a healthy
	 * disk. */
	tvfs_fault_fail(r.f, TVFS_OP_COUNTED, 0, 0, 0);
	tvfs_fault_short_write(r.f, 0);
	if (kind == F_FULL && n) {
		/* The space comes back: the engine, still up, accepts and
		 * makes records durable again. */
		if (done == 0) {
			CHECK(s_append(&r) == 0, "%s: append once space is back: %s", r.where,
			      edgelog_errmsg(r.log));
			CHECK(s_sync(&r) == 0, "%s: sync once space is back: %s", r.where,
			      edgelog_errmsg(r.log));
		}
	} else if (done == 0) {
		/* One transient fault must not leave the engine broken. */
		CHECK(s_append(&r) == 0, "%s: append after the fault: %s", r.where,
		      edgelog_errmsg(r.log));
		CHECK(s_sync(&r) == 0, "%s: sync after the fault: %s", r.where,
		      edgelog_errmsg(r.log));
	}
	if (cut) {
		tvfs_fault_fail(r.f, TVFS_OP_ALL, 1, -EIO, 1);
		tvfs_mem_power_loss(r.mem, tu_seed() + n);
		edgelog_close(r.log); /* dead descriptors: frees memory only */
	} else {
		edgelog_close(r.log);
	}
	r.log = NULL;
	check_after(&r, !cut, 0);
	CHECK(tvfs_mem_open_fds(r.mem) == 0, "%s: %" PRIu64 " descriptors left open", r.where,
	      tvfs_mem_open_fds(r.mem));
	run_free(&r);
	return count;
}

static void fault_every_op(int kind, edgelog_sync_mode sync)
{
	g_sync = sync;
	uint64_t fired, total, n, injected = 0;
	int cut;

	total = one_run(kind, 0, 0, &fired);
	ck_assert_uint_ge(total, kind == F_SHORT ? 5 : 40);
	if (g_recycle)
		ck_assert_uint_gt(g_clean_recycled, 0); /* the scenario did recycle */
	for (n = 1; n <= total; n++)
		for (cut = 0; cut < 2; cut++) {
			one_run(kind, n, cut, &fired);
			injected += fired != 0;
		}
	/* Each run's fault fired (the count was right). */
	ck_assert_uint_eq(injected, 2 * total);
	fprintf(stderr,
		"check_faults: sync=%s, %s%s: %" PRIu64 " operations, each failed in turn (x2)\n",
		sync == EDGELOG_SYNC_ALWAYS ? "always" : "none", kind_name(kind),
		g_recycle ? ", recycling" : "", total);
}

START_TEST(test_eio_at_every_operation_recycling)
{
	g_recycle = 1;
	fault_every_op(F_EIO, EDGELOG_SYNC_NONE);
}
END_TEST

START_TEST(test_enospc_at_every_operation_recycling)
{
	g_recycle = 1;
	fault_every_op(F_ENOSPC, EDGELOG_SYNC_NONE);
}
END_TEST

START_TEST(test_short_write_at_every_pwrite_recycling)
{
	g_recycle = 1;
	fault_every_op(F_SHORT, EDGELOG_SYNC_NONE);
}
END_TEST

START_TEST(test_enospc_at_every_operation)
{
	fault_every_op(F_ENOSPC, EDGELOG_SYNC_NONE);
}
END_TEST

START_TEST(test_eio_at_every_operation)
{
	fault_every_op(F_EIO, EDGELOG_SYNC_NONE);
}
END_TEST

START_TEST(test_short_write_at_every_pwrite)
{
	fault_every_op(F_SHORT, EDGELOG_SYNC_NONE);
}
END_TEST

/* sync=always: every append that returned 0 must survive the power cut. */
START_TEST(test_always_enospc_at_every_operation)
{
	fault_every_op(F_ENOSPC, EDGELOG_SYNC_ALWAYS);
}
END_TEST

START_TEST(test_always_eio_at_every_operation)
{
	fault_every_op(F_EIO, EDGELOG_SYNC_ALWAYS);
}
END_TEST

START_TEST(test_disk_full_from_every_operation_then_space_returns)
{
	fault_every_op(F_FULL, EDGELOG_SYNC_NONE);
}
END_TEST

/*
 * Found by the disk-full loop above: edgelog_ack(seq) moved the in-memory
 * ack before storing the cursor and kept it when the store failed; a later
 * edgelog_ack of any seq at or below it returned 0 at once ("already
 * acknowledged") although no cursor holding it was ever stored, and a
 * crash then lost an ack that had returned 0.
 */
START_TEST(test_ack_after_failed_cursor_store_is_durable)
{
	run r;
	int i, rc;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog_config c;
	edgelog *log = NULL;

	run_init(&r, tu_seed());
	snprintf(r.where, sizeof(r.where), "ack after a failed cursor store");
	ck_assert_int_eq(s_open(&r), 0);
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(s_append(&r), 0);
	ck_assert_int_eq(s_sync(&r), 0);
	/* The disk is full: the cursor cannot be written. */
	tvfs_fault_fail(r.f, TVFS_OP_COUNTED, 1, -ENOSPC, 1);
	ck_assert_int_ne(edgelog_ack(r.log, 10), 0);
	rc = edgelog_ack(r.log, 5);
	/* Either it says it failed, or the ack must survive a crash now. */
	tvfs_fault_fail(r.f, TVFS_OP_ALL, 1, -EIO, 1); /* the process dies */
	edgelog_close(r.log);
	config(&c);
	ck_assert_int_eq(eng_open_vfs(&log, &c, tvfs_mem_vfs(r.mem)), 0);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_msg(rc != 0 || st.acked_seq >= 5,
		      "edgelog_ack(5) returned 0 on a full disk, but after a crash the cursor "
		      "says %" PRIu64,
		      st.acked_seq);
	ck_assert_int_eq(edgelog_close(log), 0);
	run_free(&r);
}
END_TEST

/* ------------------------------------------------------------------------
 * Crash at every step of a compaction
 */
typedef struct crasher {
	tvfs_mem *mem;
	tvfs_fault *f;
	uint64_t trigger; /* cut before the Nth operation since armed; 0: off */
	uint64_t seen;
	int fired;
	int power; /* 1: power loss; 0: the process dies (page cache kept) */
	uint64_t seed;
	char trace[96]; /* the operation the cut landed on */
} crasher;

static int crash_hook(void *ud, unsigned op, uint64_t n, const char *path)
{
	crasher *c = ud;
	(void)n;
	if (c->fired)
		return -EIO;
	if (++c->seen != c->trigger)
		return 0;
	snprintf(c->trace, sizeof(c->trace), "%s %s", tvfs_op_name(op), path ? path : "(fd)");
	c->fired = 1;
	tvfs_fault_fail(c->f, TVFS_OP_ALL, 1, -EIO, 1);
	if (c->power)
		tvfs_mem_power_loss(c->mem, c->seed);
	return -EIO;
}

/* The compaction scenario: about five segments; the oldest acknowledged,
 * the next ones older than the retention by both clocks (expired), the
 * newest pending. */
static void compaction_prefix(run *r)
{
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	int i;

	tvfs_mem_clock_set(r->mem, 1764000000000ll, 1000000);
	ck_assert_int_eq(s_open(r), 0);
	for (i = 0; i < 90; i++) /* about three segments */
		ck_assert_int_eq(s_append(r), 0);
	/* Ten days pass, then more records (two more segments). */
	tvfs_mem_clock_advance(r->mem, 10 * DAY_MS);
	for (i = 0; i < 60; i++)
		ck_assert_int_eq(s_append(r), 0);
	ck_assert_int_eq(s_sync(r), 0);
	/* Ack into the second segment (the cursor also saves the age clock). */
	ck_assert_int_eq(s_ack(r, 45), 0);
	ck_assert_int_eq(edgelog_get_status(r->log, &st), 0);
	ck_assert_uint_ge(st.segments, 5);
}

/* What a directory holds after the compaction, a reopen and another pass. */
typedef struct outcome {
	uint64_t appended, pending, sent, expired, dropped, acked_seq, first_readable, segments;
} outcome;

static void finish(run *r, outcome *o)
{
	edgelog_config cfg;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog *log = NULL;
	seg_reader rd;
	seg_frame fr;
	seg_err e;

	config(&cfg);
	cfg.retention_days = 7;
	CHECK(eng_open_vfs(&log, &cfg, tvfs_mem_vfs(r->mem)) == 0, "%s: reopen: %s", r->where,
	      edgelog_errmsg(NULL));
	/* Retention again, a day later (so an expiry the cut interrupted is
	 * due whatever the age clock saved). */
	tvfs_mem_clock_advance(r->mem, DAY_MS);
	CHECK(edgelog_cleanup(log, 0) == 0, "%s: cleanup after reopen: %s", r->where,
	      edgelog_errmsg(log));
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	CHECK(st.appended == st.pending + st.sent + st.dropped + st.expired + st.failed,
	      "%s: appended %" PRIu64 " != pending %" PRIu64 " + sent %" PRIu64
	      " + dropped %" PRIu64 " + expired %" PRIu64 " + failed %" PRIu64,
	      r->where, st.appended, st.pending, st.sent, st.dropped, st.expired, st.failed);
	o->appended = st.appended;
	o->pending = st.pending;
	o->sent = st.sent;
	o->expired = st.expired;
	o->dropped = st.dropped;
	o->acked_seq = st.acked_seq;
	o->segments = st.segments;
	ck_assert_int_eq(seg_reader_init(&rd, tvfs_mem_vfs(r->mem), SEG_PATH, 0, &e), 0);
	o->first_readable = seg_reader_next(&rd, &fr, &e) == 0 ? fr.seq : 0;
	seg_reader_close(&rd);
	CHECK(edgelog_close(log) == 0, "%s: close: %s", r->where, edgelog_errmsg(NULL));
}

static void crash_compaction(int power)
{
	uint64_t total = 0, n, cuts = 0;
	outcome ref, got;

	for (n = 0; n == 0 || n <= total; n++) {
		run r;
		crasher c;
		int rc;

		run_init(&r, tu_seed() * 7919 + n);
		compaction_prefix(&r);
		memset(&c, 0, sizeof(c));
		c.mem = r.mem;
		c.f = r.f;
		c.power = power;
		c.seed = tu_seed() + n;
		c.trigger = n;
		tvfs_fault_set_hook(r.f, crash_hook, &c);
		rc = edgelog_cleanup(r.log, 0);
		if (n == 0) {
			/* The whole compaction runs: the reference outcome. */
			edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
			ck_assert_int_eq(rc, 0);
			total = c.seen;
			ck_assert_int_eq(edgelog_get_status(r.log, &st), 0);
			ck_assert_msg(st.expired > 0 && st.sent > 0 && st.segments <= 3,
				      "scenario: expected acked and expired segments removed "
				      "(sent %" PRIu64 ", expired %" PRIu64 ", segments %" PRIu64
				      ")",
				      st.sent, st.expired, st.segments);
			tvfs_fault_set_hook(r.f, NULL, NULL);
			ck_assert_int_eq(edgelog_close(r.log), 0);
			r.log = NULL;
			snprintf(r.where, sizeof(r.where), "compaction without a cut");
			finish(&r, &ref);
			run_free(&r);
			continue;
		}
		CHECK(c.fired, "operation %" PRIu64 " of %" PRIu64 " never came", n, total);
		cuts++;
		if (snprintf(r.where, sizeof(r.where),
			     "%s before operation %" PRIu64 " (%s) of a compaction",
			     power ? "power cut" : "crash", n, c.trace) >= (int)sizeof(r.where))
			r.where[sizeof(r.where) - 2] = '~'; /* marks the cut-off description */
		edgelog_close(r.log);                       /* dead engine: frees memory only */
		r.log = NULL;
		tvfs_fault_set_hook(r.f, NULL, NULL);

		/* The ack held, nothing unacked and unexpired is gone, the
		 * counts add up; the log still works (check_after appends one
		 * record, so one more pending than the reference). */
		check_after(&r, 1, 1);
		finish(&r, &got);
		/* Once retention has run again the directory is exactly what an
		 * uninterrupted compaction leaves: nothing counted twice (sent,
		 * expired), no passed segment back (first readable seq, pending). */
		CHECK(got.appended == ref.appended + 1 && got.pending == ref.pending + 1 &&
			      got.sent == ref.sent && got.expired == ref.expired &&
			      got.dropped == ref.dropped && got.acked_seq == ref.acked_seq &&
			      got.first_readable == ref.first_readable,
		      "%s: after reopen and retention: appended %" PRIu64 " pending %" PRIu64
		      " sent %" PRIu64 " expired %" PRIu64 " acked %" PRIu64 " first %" PRIu64
		      "; without the cut: appended %" PRIu64 " pending %" PRIu64 " sent %" PRIu64
		      " expired %" PRIu64 " acked %" PRIu64 " first %" PRIu64 " (+1 appended and "
		      "pending expected)",
		      r.where, got.appended, got.pending, got.sent, got.expired, got.acked_seq,
		      got.first_readable, ref.appended, ref.pending, ref.sent, ref.expired,
		      ref.acked_seq, ref.first_readable);
		CHECK(got.segments <= ref.segments + 1,
		      "%s: %" PRIu64 " segments, reference %" PRIu64, r.where, got.segments,
		      ref.segments);
		run_free(&r);
	}
	ck_assert_uint_gt(total, 3);
	ck_assert_uint_eq(cuts, total);
	fprintf(stderr,
		"check_faults: %s at each of the %" PRIu64
		" operations of a compaction (sent %" PRIu64 ", expired %" PRIu64
		", pending %" PRIu64 " after it)\n",
		power ? "power cut" : "crash", total, ref.sent, ref.expired, ref.pending);
}

START_TEST(test_crash_at_every_step_of_compaction)
{
	crash_compaction(0);
}
END_TEST

START_TEST(test_power_cut_at_every_step_of_compaction)
{
	crash_compaction(1);
}
END_TEST

static Suite *faults_suite(void)
{
	Suite *s = suite_create("faults");
	TCase *tc = tcase_create("faults");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_enospc_at_every_operation);
	tcase_add_test(tc, test_eio_at_every_operation_recycling);
	tcase_add_test(tc, test_enospc_at_every_operation_recycling);
	tcase_add_test(tc, test_short_write_at_every_pwrite_recycling);
	tcase_add_test(tc, test_eio_at_every_operation);
	tcase_add_test(tc, test_short_write_at_every_pwrite);
	tcase_add_test(tc, test_disk_full_from_every_operation_then_space_returns);
	tcase_add_test(tc, test_always_enospc_at_every_operation);
	tcase_add_test(tc, test_always_eio_at_every_operation);
	tcase_add_test(tc, test_ack_after_failed_cursor_store_is_durable);
	tcase_add_test(tc, test_crash_at_every_step_of_compaction);
	tcase_add_test(tc, test_power_cut_at_every_step_of_compaction);
	suite_add_tcase(s, tc);
	return s;
}

TU_CHECK_MAIN(faults_suite)
