/*
 * check_accounting.c - the accounting identity over a long randomized run:
 *
 *	appended = pending + sent + dropped + expired + failed
 *
 * at every step of a seeded random walk through bursts of appends, acks
 * (edgelog_ack, as a local consumer or the uploader would), restarts
 * (close and reopen), size-cap hits (a 1 MiB cap of 64 KiB segments),
 * expiry (a fake clock, through the I/O seam, moving hours or days at a
 * time, and jumping backwards and forwards), retention passes
 * (edgelog_cleanup, edgelog_step) and sync mode changes, under both
 * full policies. Besides the identity, at every step: appended equals the
 * appends that returned 0; sent, dropped and expired never go down; sent
 * grows only by acks; nothing is dropped under reject; pending equals the
 * records stored above the ack, each one byte for byte what was appended
 * at its seq (checked by reading the log every few steps and at every
 * restart); the cap holds (within one segment).
 *
 * No endpoint: failed stays 0 (dead letters need an HTTP server; the
 * uploader's and delivery runners cover them).
 *
 * The seeds are printed; EDGELOG_TEST_SEED=S replays one.
 */
#include <check.h>
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
#include "tool_sample.h"

#define CHECK(cond, ...)                           \
	do {                                       \
		if (!(cond))                       \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

#define HOUR_MS (3600ll * 1000)
#define DAY_MS (24 * HOUR_MS)
#define STEPS 600

typedef struct walk {
	uint64_t seed, rng;
	char *dir;
	tvfs_fault *f;
	edgelog *log;
	edgelog_full_policy policy;
	edgelog_sync_mode sync;
	int step;
	char what[160]; /* the step being taken, for messages */

	uint64_t *key; /* record index appended at each seq (0: none) */
	uint64_t cap;
	uint64_t next_index;
	uint64_t appended; /* appends that returned 0 */
	uint64_t last;     /* highest seq returned */
	uint64_t rejected; /* EFULL under reject */
	edgelog_status prev;
	uint64_t acks, restarts, cap_hits, expiries, reads;
} walk;

static void set_key(walk *w, uint64_t seq, uint64_t idx)
{
	if (seq >= w->cap) {
		uint64_t cap = w->cap ? w->cap * 2 : 4096;
		while (cap <= seq)
			cap *= 2;
		w->key = realloc(w->key, cap * sizeof(*w->key));
		ck_assert_ptr_nonnull(w->key);
		memset(w->key + w->cap, 0, (cap - w->cap) * sizeof(*w->key));
		w->cap = cap;
	}
	w->key[seq] = idx;
}

static void w_open(walk *w)
{
	edgelog_config c;
	int rc;

	edgelog_config_init(&c);
	c.dir = w->dir;
	c.device_id = "accounting";
	c.max_size_mb = 1;
	c.segment_bytes = 65536;
	c.retention_days = 2;
	c.full_policy = w->policy;
	c.sync = w->sync;
	c.sync_interval_ms = 50;
	c.log_fn = tu_quiet_log;
	rc = eng_open_vfs(&w->log, &c, tvfs_fault_vfs(w->f));
	CHECK(rc == 0, "seed %" PRIu64 " step %d: open: %s: %s", w->seed, w->step,
	      edgelog_strerror(rc), edgelog_errmsg(NULL));
}

/* Read the whole log: every stored record above the ack is the one
 * appended at its seq; their count is pending. */
static void read_back(walk *w, const edgelog_status *st)
{
	seg_reader r;
	seg_frame f;
	seg_err e;
	uint8_t want[1024];
	uint64_t above = 0, prev = 0;
	int rc;

	rc = seg_reader_init(&r, tvfs_fault_vfs(w->f), tu_path(w->dir, "segments"), 0, &e);
	CHECK(rc == 0, "seed %" PRIu64 " step %d: reader: %s", w->seed, w->step, e.msg);
	while ((rc = seg_reader_next(&r, &f, &e)) == 0) {
		size_t len;
		CHECK(f.seq > prev && f.seq <= w->last,
		      "seed %" PRIu64 " step %d (%s): seq %" PRIu64 " after %" PRIu64
		      ", last appended %" PRIu64,
		      w->seed, w->step, w->what, f.seq, prev, w->last);
		prev = f.seq;
		CHECK(f.seq < w->cap && w->key[f.seq],
		      "seed %" PRIu64 " step %d: seq %" PRIu64 " was never returned by an append",
		      w->seed, w->step, f.seq);
		len = tool_sample_msgpack(w->key[f.seq], want, sizeof(want));
		CHECK(f.len == len && memcmp(f.data, want, len) == 0,
		      "seed %" PRIu64 " step %d: seq %" PRIu64 " does not hold what was appended",
		      w->seed, w->step, f.seq);
		if (f.seq > st->acked_seq)
			above++;
	}
	CHECK(rc == EDGELOG_EOF, "seed %" PRIu64 " step %d: reader: %s", w->seed, w->step, e.msg);
	CHECK(r.corrupt == 0, "seed %" PRIu64 " step %d: damaged ranges", w->seed, w->step);
	seg_reader_close(&r);
	CHECK(above == st->pending,
	      "seed %" PRIu64 " step %d (%s): pending %" PRIu64 " but %" PRIu64
	      " records stored above the ack %" PRIu64,
	      w->seed, w->step, w->what, st->pending, above, st->acked_seq);
	w->reads++;
}

/* The checks after every step. acked_by: records this step acknowledged
 * (sent may grow by at most that). */
static void check_step(walk *w, uint64_t acked_by, int read)
{
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	const edgelog_status *p = &w->prev;

	CHECK(edgelog_get_status(w->log, &st) == 0, "status");
	CHECK(st.appended == st.pending + st.sent + st.dropped + st.expired + st.failed,
	      "seed %" PRIu64 " step %d (%s): appended %" PRIu64 " != pending %" PRIu64
	      " + sent %" PRIu64 " + dropped %" PRIu64 " + expired %" PRIu64 " + failed %" PRIu64,
	      w->seed, w->step, w->what, st.appended, st.pending, st.sent, st.dropped, st.expired,
	      st.failed);
	CHECK(st.appended == w->appended,
	      "seed %" PRIu64 " step %d (%s): status says appended %" PRIu64 ", %" PRIu64
	      " appends returned 0",
	      w->seed, w->step, w->what, st.appended, w->appended);
	CHECK(st.last_seq == w->last,
	      "seed %" PRIu64 " step %d (%s): last_seq %" PRIu64 ", last append returned %" PRIu64,
	      w->seed, w->step, w->what, st.last_seq, w->last);
	CHECK(st.sent >= p->sent && st.dropped >= p->dropped && st.expired >= p->expired,
	      "seed %" PRIu64 " step %d (%s): a counter went down: sent %" PRIu64 " -> %" PRIu64
	      ", dropped %" PRIu64 " -> %" PRIu64 ", expired %" PRIu64 " -> %" PRIu64,
	      w->seed, w->step, w->what, p->sent, st.sent, p->dropped, st.dropped, p->expired,
	      st.expired);
	CHECK(st.sent - p->sent <= acked_by,
	      "seed %" PRIu64 " step %d (%s): sent grew by %" PRIu64 " with %" PRIu64
	      " records acknowledged",
	      w->seed, w->step, w->what, st.sent - p->sent, acked_by);
	CHECK(st.failed == 0, "seed %" PRIu64 ": failed %" PRIu64 " without an endpoint", w->seed,
	      st.failed);
	CHECK(w->policy != EDGELOG_FULL_REJECT || st.dropped == 0,
	      "seed %" PRIu64 " step %d (%s): %" PRIu64 " dropped under full_policy=reject",
	      w->seed, w->step, w->what, st.dropped);
	CHECK(st.size_bytes <= st.max_size_bytes + 65536,
	      "seed %" PRIu64 " step %d (%s): %" PRIu64 " bytes used, cap %" PRIu64, w->seed,
	      w->step, w->what, st.size_bytes, st.max_size_bytes);
	if (read)
		read_back(w, &st);
	w->prev = st;
}

static void w_append(walk *w, uint64_t n)
{
	uint8_t b[1024];
	uint64_t i, seq;

	for (i = 0; i < n; i++) {
		uint64_t idx = w->next_index++;
		size_t len = tool_sample_msgpack(idx, b, sizeof(b));
		int rc = edgelog_append(w->log, b, len, &seq);
		if (rc == EDGELOG_EFULL && w->policy == EDGELOG_FULL_REJECT) {
			w->rejected++;
			w->cap_hits++;
			return; /* the producer backs off */
		}
		CHECK(rc == 0, "seed %" PRIu64 " step %d: append: %s: %s", w->seed, w->step,
		      edgelog_strerror(rc), edgelog_errmsg(w->log));
		CHECK(seq == w->last + 1,
		      "seed %" PRIu64 " step %d: append returned seq %" PRIu64 " after %" PRIu64,
		      w->seed, w->step, seq, w->last);
		set_key(w, seq, idx);
		w->last = seq;
		w->appended++;
	}
}

static void walk_one(uint64_t seed, edgelog_full_policy policy)
{
	walk w;
	int64_t t0 = 1764000000000ll;

	memset(&w, 0, sizeof(w));
	w.seed = seed;
	w.rng = seed * 0xd1342543de82ef95ull + (uint64_t)policy; /* not splitmix's step */
	w.policy = policy;
	w.sync = EDGELOG_SYNC_NONE;
	w.next_index = 1;
	w.dir = tu_mkdtemp("acct");
	w.f = tvfs_fault_new(NULL);
	tvfs_fault_clock_set(w.f, t0, 1000);
	snprintf(w.what, sizeof(w.what), "open");
	w_open(&w);
	check_step(&w, 0, 1);

	for (w.step = 1; w.step <= STEPS; w.step++) {
		uint64_t r = tu_rand_below(&w.rng, 100), acked_by = 0;
		int read = w.step % 16 == 0;

		if (r < 45) {
			/* A burst; big ones run into the cap (about 2400
			 * records fit in 1 MiB). */
			uint64_t n = tu_rand_below(&w.rng, 10) == 0 ?
					     500 + tu_rand_below(&w.rng, 2500) :
					     1 + tu_rand_below(&w.rng, 150);
			snprintf(w.what, sizeof(w.what), "append %" PRIu64, n);
			w_append(&w, n);
			tvfs_fault_clock_advance(w.f, (int64_t)tu_rand_below(&w.rng, 2000));
		} else if (r < 65) {
			/* Acknowledge part of what is pending (a seq inside
			 * dropped or expired ranges included). */
			edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
			uint64_t s;
			ck_assert_int_eq(edgelog_get_status(w.log, &st), 0);
			if (w.last > st.acked_seq) {
				s = st.acked_seq + 1 + tu_rand_below(&w.rng, w.last - st.acked_seq);
				snprintf(w.what, sizeof(w.what),
					 "ack %" PRIu64 " (acked %" PRIu64 ")", s, st.acked_seq);
				CHECK(edgelog_ack(w.log, s) == 0,
				      "seed %" PRIu64 " step %d: ack: %s", seed, w.step,
				      edgelog_errmsg(w.log));
				acked_by = s - st.acked_seq;
				w.acks++;
			} else {
				snprintf(w.what, sizeof(w.what), "ack (nothing pending)");
			}
		} else if (r < 72) {
			/* A restart, maybe in another sync mode. */
			static const edgelog_sync_mode modes[] = {
				EDGELOG_SYNC_NONE, EDGELOG_SYNC_INTERVAL, EDGELOG_SYNC_NONE};
			snprintf(w.what, sizeof(w.what), "restart");
			CHECK(edgelog_close(w.log) == 0, "seed %" PRIu64 " step %d: close: %s",
			      seed, w.step, edgelog_errmsg(NULL));
			w.sync = modes[tu_rand_below(&w.rng, 3)];
			/* Sometimes a reboot: the monotonic clock restarts. */
			if (tu_rand_below(&w.rng, 3) == 0)
				tvfs_fault_clock_set(w.f, t0 + (int64_t)w.step * HOUR_MS,
						     (int64_t)tu_rand_below(&w.rng, 100000));
			w_open(&w);
			w.restarts++;
			read = 1;
		} else if (r < 80) {
			/* Time passes: hours, or days (expiry). */
			int64_t ms = tu_rand_below(&w.rng, 3) == 0 ?
					     (int64_t)(1 + tu_rand_below(&w.rng, 3)) * DAY_MS :
					     (int64_t)tu_rand_below(&w.rng, 12) * HOUR_MS;
			snprintf(w.what, sizeof(w.what), "%" PRId64 " h pass, then cleanup",
				 (int64_t)(ms / HOUR_MS));
			tvfs_fault_clock_advance(w.f, ms);
			if (ms >= DAY_MS)
				w.expiries++;
			CHECK(edgelog_cleanup(w.log, tu_rand_below(&w.rng, 2)) == 0,
			      "seed %" PRIu64 " step %d: cleanup: %s", seed, w.step,
			      edgelog_errmsg(w.log));
		} else if (r < 84) {
			/* The wall clock jumps (NTP, a bad RTC): retention must
			 * not be fooled either way. */
			int64_t ms = (int64_t)(tu_rand_below(&w.rng, 2) ? 1 : -1) *
				     (int64_t)(1 + tu_rand_below(&w.rng, 400)) * DAY_MS;
			snprintf(w.what, sizeof(w.what),
				 "wall clock jumps %" PRId64 " days, cleanup",
				 (int64_t)(ms / DAY_MS));
			tvfs_fault_clock_jump(w.f, ms);
			CHECK(edgelog_cleanup(w.log, 0) == 0,
			      "seed %" PRIu64 " step %d: cleanup: %s", seed, w.step,
			      edgelog_errmsg(w.log));
		} else if (r < 94) {
			snprintf(w.what, sizeof(w.what), "step");
			tvfs_fault_clock_advance(w.f, (int64_t)tu_rand_below(&w.rng, 20000));
			ck_assert_int_ge(edgelog_step(w.log, 0), 0);
		} else {
			snprintf(w.what, sizeof(w.what), "sync");
			CHECK(edgelog_sync(w.log) == 0, "seed %" PRIu64 " step %d: sync: %s", seed,
			      w.step, edgelog_errmsg(w.log));
		}
		check_step(&w, acked_by, read);
	}
	/* The counts persist across a last restart. */
	snprintf(w.what, sizeof(w.what), "final restart");
	ck_assert_int_eq(edgelog_close(w.log), 0);
	w_open(&w);
	check_step(&w, 0, 1);
	fprintf(stderr,
		"check_accounting: seed %" PRIu64 " %s: %d steps, %" PRIu64 " appended, %" PRIu64
		" sent, %" PRIu64 " dropped, %" PRIu64 " expired, %" PRIu64 " pending; %" PRIu64
		" acks, %" PRIu64 " restarts, %" PRIu64 " rejected appends, %" PRIu64
		" day-long waits, %" PRIu64 " full read-backs\n",
		seed, policy == EDGELOG_FULL_REJECT ? "reject" : "drop_oldest", STEPS, w.appended,
		w.prev.sent, w.prev.dropped, w.prev.expired, w.prev.pending, w.acks, w.restarts,
		w.rejected, w.expiries, w.reads);
	/* The walk did what it is for. */
	ck_assert_uint_gt(w.prev.sent, 0);
	ck_assert_uint_gt(w.prev.expired, 0);
	if (policy == EDGELOG_FULL_DROP_OLDEST)
		ck_assert_uint_gt(w.prev.dropped, 0);
	else
		ck_assert_uint_gt(w.rejected, 0);
	ck_assert_int_eq(edgelog_close(w.log), 0);
	tvfs_fault_free(w.f);
	tu_rm_rf(w.dir);
	free(w.dir);
	free(w.key);
}

/* Seeds: EDGELOG_TEST_SEED alone, or a fixed set (CI stays deterministic). */
static void walk_seeds(edgelog_full_policy policy)
{
	const char *s = getenv("EDGELOG_TEST_SEED");
	uint64_t seed;

	if (s && *s) {
		walk_one(strtoull(s, NULL, 0), policy);
		return;
	}
	for (seed = 1; seed <= 2; seed++)
		walk_one(seed, policy);
}

START_TEST(test_identity_drop_oldest)
{
	walk_seeds(EDGELOG_FULL_DROP_OLDEST);
}
END_TEST

START_TEST(test_identity_reject)
{
	walk_seeds(EDGELOG_FULL_REJECT);
}
END_TEST

static Suite *accounting_suite(void)
{
	Suite *s = suite_create("accounting");
	TCase *tc = tcase_create("walk");

	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_identity_drop_oldest);
	tcase_add_test(tc, test_identity_reject);
	suite_add_tcase(s, tc);
	return s;
}

TU_CHECK_MAIN(accounting_suite)
