/*
 * check_powerloss.c - power cuts through the I/O seam.
 *
 * The engine runs on tvfs_mem (tests/test_vfs.h), an in-memory file system
 * that, at tvfs_mem_power_loss(), forgets whatever was not synced (keeping
 * a random part of it, possibly torn). A tvfs_fault wrapper between the
 * engine and the file system calls a hook before every operation; at a
 * random operation the hook cuts the power and from then on fails every
 * call of the old engine, which is then closed only to free its memory
 * (its close can no longer touch the file system, as a dead machine's
 * could not).
 *
 * After each cut the directory is reopened: open must work, and
 *  - sync=always: every record whose append returned 0 is there, byte for
 *    byte, at the seq append returned;
 *  - sync=interval: every record at or below the durable watermark (what
 *    the last completed sync covered) is there;
 *  - an edgelog_ack() that returned 0 is never lost;
 *  - any other record found is one that was really appended at that seq;
 *    seqs strictly increase; a new append never reuses a seq that was
 *    acknowledged durable.
 *
 * Each iteration runs several power cycles on the same file system, so
 * cuts also land in the middle of the recovery of an earlier cut.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
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

#define DIR_PATH "/pl/db"
#define SEG_PATH DIR_PATH "/segments"
#define CUR_PATH DIR_PATH "/cursor"

/* ------------------------------------------------------------------------
 * Records: self-describing, so any record found can be checked.
 * msgpack [key (uint64), bin8 of 10 + key % 200 bytes derived from key]
 */
#define REC_MAX 256

static size_t make_record(uint64_t key, uint8_t *out)
{
	return tu_keyed_record(key, 10, 200, out);
}

/* The key of a record, or 0 if the bytes are not a record we made. */
static uint64_t record_key(const uint8_t *p, size_t len)
{
	return tu_keyed_record_key(p, len, 10, 200);
}

/* ------------------------------------------------------------------------
 * What the test knows about each seq
 */
typedef struct slot {
	uint64_t key; /* record appended at this seq (0: none returned) */
	int durable;  /* guaranteed to survive a power cut */
} slot;

typedef struct model {
	pthread_mutex_t mu;
	slot *v;
	uint64_t cap;
	uint64_t max_durable; /* highest durable seq */
	uint64_t synced_upto; /* model_synced() has marked seqs up to here */
	uint64_t max_key;     /* keys 1..max_key were attempted */
	uint64_t acked;       /* highest seq an edgelog_ack() returned 0 for */
	/* Counters for the summary. */
	uint64_t appends, cuts, cuts_in_open, cuts_mid, records_checked, lost_unsynced,
		kept_unsynced, ops;
	uint64_t corrupt;
	/* One appending thread: keys are handed out in seq order, so they
	 * must increase along the log too. A record from an earlier life of
	 * a recycled file would break that. */
	int strict_keys;
	uint64_t recycled; /* segments started in a recycled file */
} model;

static void model_init(model *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->mu, NULL);
}

static void model_reset_fs(model *m)
{
	/* A new file system: forget the seqs, keep the counters. */
	free(m->v);
	m->v = NULL;
	m->cap = 0;
	m->max_durable = 0;
	m->synced_upto = 0;
	m->acked = 0;
}

static void model_free(model *m)
{
	free(m->v);
	pthread_mutex_destroy(&m->mu);
}

static slot *model_slot(model *m, uint64_t seq)
{
	if (seq >= m->cap) {
		uint64_t cap = m->cap ? m->cap : 1024;
		while (cap <= seq)
			cap *= 2;
		m->v = realloc(m->v, cap * sizeof(slot));
		ck_assert_ptr_nonnull(m->v);
		memset(m->v + m->cap, 0, (cap - m->cap) * sizeof(slot));
		m->cap = cap;
	}
	return &m->v[seq];
}

/* An append returned seq for key. Caller holds mu. */
static void model_appended(model *m, uint64_t seq, uint64_t key, int durable)
{
	slot *s = model_slot(m, seq);
	CHECK(!(s->key && s->durable),
	      "append of record %" PRIu64 " returned seq %" PRIu64 ", which durable record %" PRIu64
	      " already has",
	      key, seq, s->key);
	s->key = key;
	s->durable = durable;
	if (durable && seq > m->max_durable)
		m->max_durable = seq;
	m->appends++;
}

/* Every seq up to `upto` that was returned is durable now. */
static void model_synced(model *m, uint64_t upto)
{
	uint64_t s;
	for (s = m->synced_upto + 1; s <= upto && s < m->cap; s++)
		if (m->v[s].key) {
			m->v[s].durable = 1;
			if (s > m->max_durable)
				m->max_durable = s;
		}
	if (s - 1 > m->synced_upto)
		m->synced_upto = s - 1;
}

/* After a power cut: every durable seq is in the log at its seq; any other
 * record found is one appended at that seq or at least one we tried. The
 * model then becomes what the log holds. */
static void model_check_log(model *m, const seg_vfs *v, const char *when, uint64_t acked)
{
	seg_reader r;
	seg_frame f;
	seg_err e;
	uint64_t prev = 0, prev_key = 0;
	int rc;

	rc = seg_reader_init(&r, v, SEG_PATH, 0, &e);
	CHECK(rc == 0, "%s: reader: %s", when, e.msg);
	uint8_t *seen = calloc(m->cap ? m->cap : 1, 1);
	ck_assert_ptr_nonnull(seen);
	while ((rc = seg_reader_next(&r, &f, &e)) == 0) {
		CHECK(f.seq > prev, "%s: seq %" PRIu64 " after %" PRIu64, when, f.seq, prev);
		prev = f.seq;
		uint64_t key = record_key(f.data, f.len);
		CHECK(key != 0 && key <= m->max_key,
		      "%s: seq %" PRIu64 " holds %u bytes that were never appended", when, f.seq,
		      f.len);
		CHECK(!m->strict_keys || key > prev_key,
		      "%s: seq %" PRIu64 " holds record %" PRIu64 ", older than record %" PRIu64
		      " before it (a stale record?)",
		      when, f.seq, key, prev_key);
		prev_key = key;
		if (f.seq < m->cap && m->v[f.seq].key) {
			slot *s = &m->v[f.seq];
			/* A durable record is exactly what was appended. An unsynced
			 * one may have been lost at an earlier cut and its seq given
			 * to a record whose append then failed (never returned):
			 * any record we made is acceptable there. */
			CHECK(!s->durable || s->key == key,
			      "%s: seq %" PRIu64 " holds record %" PRIu64
			      ", append of record %" PRIu64 " returned this seq",
			      when, f.seq, key, s->key);
			if (!s->durable && s->key == key)
				m->kept_unsynced++;
			s->key = key;
			seen[f.seq] = 1;
		} else if (f.seq < m->cap) {
			m->v[f.seq].key = key;
			seen[f.seq] = 1;
		}
		m->records_checked++;
	}
	CHECK(rc == EDGELOG_EOF, "%s: reader: %s", when, e.msg);
	m->corrupt += r.corrupt;
	seg_reader_close(&r);
	for (uint64_t s = 1; s < m->cap; s++) {
		slot *x = &m->v[s];
		if (!x->key)
			continue;
		/* Retention removes segments the cursor has durably passed:
		 * an acknowledged record may be gone, by design. */
		if (!seen[s] && s <= acked) {
			x->key = 0;
			continue;
		}
		if (x->durable)
			CHECK(seen[s], "%s: durable record %" PRIu64 " (seq %" PRIu64 ") lost",
			      when, x->key, s);
		if (!seen[s]) {
			m->lost_unsynced++;
			x->key = 0; /* gone: the seq may be given out again */
			continue;
		}
		x->durable = 1; /* what survived a cut is on disk now */
		if (s > m->max_durable)
			m->max_durable = s;
	}
	if (m->max_durable > m->synced_upto)
		m->synced_upto = m->max_durable;
	free(seen);
}

/* ------------------------------------------------------------------------
 * The power cut
 */
typedef struct cutter {
	tvfs_mem *mem;
	tvfs_fault *f;
	_Atomic uint64_t seen;    /* operations of kinds in mask since armed */
	_Atomic uint64_t trigger; /* cut before this one; 0: disarmed */
	_Atomic int fired;
	unsigned mask;
	edgelog *_Atomic log; /* non-NULL: take its mutex around the cut */
	uint64_t loss_seed;
} cutter;

/* Cut the power now: the file system forgets what was not synced, and
 * every later call through the old engine's table fails. */
static void cut_power(cutter *c)
{
	edgelog *log = atomic_load(&c->log);
	if (log)
		pthread_mutex_lock(&log->mu); /* no append is writing the mapping */
	tvfs_fault_fail(c->f, TVFS_OP_ALL, 1, -EIO, 1);
	tvfs_mem_power_loss(c->mem, c->loss_seed);
	atomic_store(&c->fired, 1);
	if (log)
		pthread_mutex_unlock(&log->mu);
}

static int cut_hook(void *ud, unsigned op, uint64_t n, const char *path)
{
	cutter *c = ud;
	(void)n;
	(void)path;
	if (atomic_load(&c->fired))
		return -EIO;
	if (!(op & c->mask))
		return 0;
	uint64_t k = atomic_fetch_add(&c->seen, 1) + 1;
	uint64_t t = atomic_load(&c->trigger);
	if (t == 0 || k != t)
		return 0;
	cut_power(c);
	return -EIO;
}

static void cutter_arm(cutter *c, tvfs_mem *mem, uint64_t trigger, unsigned mask, uint64_t seed)
{
	memset(c, 0, sizeof(*c));
	c->mem = mem;
	c->f = tvfs_fault_new(tvfs_mem_vfs(mem));
	c->mask = mask;
	c->loss_seed = seed;
	atomic_store(&c->trigger, trigger);
	tvfs_fault_set_hook(c->f, cut_hook, c);
}

/* ------------------------------------------------------------------------
 * Scenarios
 */
typedef struct params {
	edgelog_sync_mode sync;
	int threads;   /* 1 or 2 */
	int precreate; /* make the directory, segments/ and the cursor name durable first */
	int recycle;   /* run retention and the spare preparer between appends */
} params;

static void config(edgelog_config *c, const params *p)
{
	edgelog_config_init(c);
	c->dir = DIR_PATH;
	c->device_id = "powerloss";
	c->sync = p->sync;
	c->sync_interval_ms = 10;
	c->segment_bytes = 65536; /* rolls every few hundred records */
	c->log_fn = tu_quiet_log;
}

static void precreate(tvfs_mem *mem)
{
	/* Work around for the engine not fsyncing the parent directories of
	 * what it creates (segments/ and cursor): make those names durable
	 * before the first open, so the other guarantees can be tested. */
	ck_assert_int_eq(tvfs_mem_mkdirs(mem, SEG_PATH), 0);
	if (!tvfs_mem_exists(mem, CUR_PATH))
		ck_assert_int_eq(tvfs_mem_write_file(mem, CUR_PATH, "", 0, 1), 0);
}

/* Open on the raw file system after a cut: must work; check the log and
 * the cursor. Returns the open handle. */
static edgelog *reopen_and_check(model *m, tvfs_mem *mem, const params *p, const char *when)
{
	edgelog_config c;
	edgelog *log = NULL;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};

	config(&c, p);
	int rc = eng_open_vfs(&log, &c, tvfs_mem_vfs(mem));
	CHECK(rc == 0, "%s: open after power loss: %s: %s", when, edgelog_strerror(rc),
	      edgelog_errmsg(NULL));
	CHECK(edgelog_get_status(log, &st) == 0, "status");
	CHECK(st.acked_seq >= m->acked, "%s: ack of seq %" PRIu64 " lost (cursor says %" PRIu64 ")",
	      when, m->acked, st.acked_seq);
	CHECK(st.last_seq >= m->max_durable,
	      "%s: log ends at %" PRIu64 " but seq %" PRIu64 " was durable", when, st.last_seq,
	      m->max_durable);
	CHECK(st.acked_seq <= st.last_seq, "%s: acked %" PRIu64 " beyond last %" PRIu64, when,
	      st.acked_seq, st.last_seq);
	model_check_log(m, tvfs_mem_vfs(mem), when, st.acked_seq);
	return log;
}

typedef struct appender {
	edgelog *log;
	model *m;
	cutter *cut;
	const params *p;
	tvfs_mem *mem;
	uint64_t rng;
	int count;
	_Atomic uint64_t *next_key;
	int unexpected_rc;
} appender;

static void *appender_main(void *arg)
{
	appender *a = arg;
	uint8_t rec[REC_MAX];

	for (int i = 0; i < a->count; i++) {
		uint64_t key = atomic_fetch_add(a->next_key, 1);
		uint64_t seq = 0;
		size_t len = make_record(key, rec);
		pthread_mutex_lock(&a->m->mu);
		if (key > a->m->max_key)
			a->m->max_key = key;
		pthread_mutex_unlock(&a->m->mu);
		int rc = edgelog_append(a->log, rec, len, &seq);
		if (rc) {
			/* Only the power cut may fail an append. */
			if (!atomic_load(&a->cut->fired))
				a->unexpected_rc = rc;
			return NULL;
		}
		/* Under sync=always a 0 means durable, even if the power went
		 * right after: the sync that covered it completed first. */
		pthread_mutex_lock(&a->m->mu);
		model_appended(a->m, seq, key, a->p->sync == EDGELOG_SYNC_ALWAYS);
		pthread_mutex_unlock(&a->m->mu);

		if (a->p->threads == 1) {
			/* Single thread: the engine's watermark is exact. */
			if (a->p->sync != EDGELOG_SYNC_ALWAYS) {
				tvfs_mem_clock_advance(a->mem, (int64_t)tu_rand_below(&a->rng, 4));
				uint64_t r = tu_rand_below(&a->rng, 100);
				if (r < 3) {
					if (edgelog_sync(a->log) == 0)
						model_synced(a->m, seq);
					else if (!atomic_load(&a->cut->fired))
						a->unexpected_rc = -1000;
				} else {
					/* An interval sync may have run inside append. */
					uint64_t synced;
					pthread_mutex_lock(&a->log->mu);
					synced = a->log->w.synced_seq;
					pthread_mutex_unlock(&a->log->mu);
					if (synced)
						model_synced(a->m, synced);
				}
			}
			if (a->p->recycle && tu_rand_below(&a->rng, 100) < 5) {
				/* Retention recycles acknowledged segments, the
				 * preparer makes them spares (edgelog_step, no
				 * worker here), the next roll writes into one. */
				int r = edgelog_cleanup(a->log, 0);
				if (!r)
					r = edgelog_step(a->log, 0);
				if (r && !atomic_load(&a->cut->fired))
					a->unexpected_rc = r;
			}
			if (tu_rand_below(&a->rng, 100) < 4 && a->m->max_durable > a->m->acked) {
				uint64_t s =
					a->m->acked + 1 +
					tu_rand_below(&a->rng, a->m->max_durable - a->m->acked);
				int r = edgelog_ack(a->log, s);
				if (r == 0)
					a->m->acked = s;
				else if (!atomic_load(&a->cut->fired))
					a->unexpected_rc = r;
			}
		}
		if (atomic_load(&a->cut->fired))
			break;
	}
	return NULL;
}

/* One power cycle on mem: open (maybe cut during it), append, cut. */
static void power_cycle(model *m, tvfs_mem *mem, const params *p, uint64_t *rng, int iter,
			int epoch)
{
	char when[96];
	cutter cut;
	edgelog_config c;
	edgelog *log = NULL;
	/* Recycling needs a few rolls in one run (64 KiB segments hold
	 * about 500 records): longer runs. */
	int records = p->recycle ? 500 + (int)tu_rand_below(rng, 2500) :
				   20 + (int)tu_rand_below(rng, 400);
	/* I/O calls of an epoch (measured): open about 25; then per record
	 * about 1.2 under sync=always, 0.25 under interval (the 3% explicit
	 * syncs, interval syncs, rolls), 0.12 under none. Cut at a random
	 * one of them; a trigger beyond the epoch's work cuts after it. */
	unsigned mask = p->threads > 1 ? (TVFS_OP_FSYNC | TVFS_OP_FSYNC_DIR) : TVFS_OP_ALL;
	uint64_t span = p->threads > 1                 ? (uint64_t)records :
			p->sync == EDGELOG_SYNC_ALWAYS ? (uint64_t)records * 5 / 4 + 25 :
			p->sync == EDGELOG_SYNC_NONE   ? (uint64_t)records / 8 + 25 :
							 (uint64_t)records / 4 + 25;
	uint64_t trigger = 1 + tu_rand_below(rng, span);
	_Atomic uint64_t next_key = m->max_key + 1;

	snprintf(when, sizeof(when), "iteration %d epoch %d (seed %" PRIu64 ")", iter, epoch,
		 tu_seed());
	/* Two threads: the cut is only armed after open (the hook takes the
	 * engine's mutex, which needs the handle). */
	cutter_arm(&cut, mem, p->threads > 1 ? 0 : trigger, mask, tu_rand(rng));
	config(&c, p);
	int rc = eng_open_vfs(&log, &c, tvfs_fault_vfs(cut.f));
	if (rc) {
		CHECK(atomic_load(&cut.fired), "%s: open failed without a power cut: %s: %s", when,
		      edgelog_strerror(rc), edgelog_errmsg(NULL));
		m->cuts++;
		m->cuts_in_open++;
		tvfs_fault_free(cut.f);
		return;
	}
	{
		/* Seqs from before this open are not covered by this engine's
		 * sync watermark: whether they survived the last cut is for
		 * the next check to find out. */
		uint64_t last = log->w.next_seq - 1;
		if (last > m->synced_upto)
			m->synced_upto = last;
	}
	if (p->threads > 1) {
		atomic_store(&cut.log, log);
		atomic_store(&cut.seen, 0);
		atomic_store(&cut.trigger, trigger);
	}

	appender a[2];
	pthread_t th[2];
	for (int t = 0; t < p->threads; t++) {
		memset(&a[t], 0, sizeof(a[t]));
		a[t].log = log;
		a[t].m = m;
		a[t].cut = &cut;
		a[t].p = p;
		a[t].mem = mem;
		a[t].rng = tu_rand(rng);
		a[t].count = records / p->threads;
		a[t].next_key = &next_key;
	}
	if (p->threads == 1) {
		appender_main(&a[0]);
	} else {
		for (int t = 0; t < p->threads; t++)
			ck_assert_int_eq(pthread_create(&th[t], NULL, appender_main, &a[t]), 0);
		for (int t = 0; t < p->threads; t++)
			ck_assert_int_eq(pthread_join(th[t], NULL), 0);
	}
	for (int t = 0; t < p->threads; t++)
		CHECK(a[t].unexpected_rc == 0,
		      "%s: thread %d: call failed without a power cut: %s: %s", when, t,
		      edgelog_strerror(a[t].unexpected_rc), edgelog_errmsg(log));

	m->ops += tvfs_fault_count(cut.f, TVFS_OP_ALL);
	m->recycled += log->w.recycled;
	if (atomic_load(&cut.fired))
		m->cuts_mid++;
	if (!atomic_load(&cut.fired)) {
		/* The trigger was beyond this epoch's work. Sometimes close
		 * cleanly first (everything becomes durable). */
		atomic_store(&cut.trigger, 0);
		if (tu_rand_below(rng, 4) == 0) {
			CHECK(edgelog_close(log) == 0, "%s: clean close: %s", when,
			      edgelog_errmsg(NULL));
			log = NULL;
			model_synced(m, UINT64_MAX / 2);
		}
		atomic_store(&cut.log, NULL);
		cut_power(&cut);
	}
	m->cuts++;
	/* The dead engine: every call fails, close only frees memory. */
	if (log)
		edgelog_close(log);
	tvfs_fault_free(cut.f);
}

static void run_iterations(const params *p, int iterations, int epochs, const char *name)
{
	model m;
	uint64_t rng =
		tu_seed() * 0x2545f4914f6cdd1dull + (uint64_t)p->sync * 7 + (uint64_t)p->threads;
	model_init(&m);
	m.strict_keys = p->threads == 1;
	for (int it = 1; it <= iterations; it++) {
		char when[96];
		tvfs_mem *mem = tvfs_mem_new(tu_rand(&rng));
		static const unsigned keep[] = {0, 50, 100}, torn[] = {0, 25, 100},
				      page[] = {0, 0, 50};
		tvfs_mem_set_loss(mem, keep[tu_rand_below(&rng, 3)], torn[tu_rand_below(&rng, 3)],
				  page[tu_rand_below(&rng, 3)]);
		model_reset_fs(&m);
		if (p->precreate)
			precreate(mem);
		for (int ep = 1; ep <= epochs; ep++) {
			power_cycle(&m, mem, p, &rng, it, ep);
			/* Check with a separate open half of the time; otherwise
			 * the next cycle's open (which a cut may interrupt) does
			 * the recovery, and the final check comes later. */
			if (ep == epochs || tu_rand_below(&rng, 2)) {
				snprintf(when, sizeof(when),
					 "%s iteration %d after cut %d (seed %" PRIu64 ")", name,
					 it, ep, tu_seed());
				edgelog *log = reopen_and_check(&m, mem, p, when);
				CHECK(edgelog_close(log) == 0, "%s: close: %s", when,
				      edgelog_errmsg(NULL));
			}
		}
		CHECK(tvfs_mem_open_fds(mem) == 0,
		      "iteration %d: %" PRIu64 " descriptors left open", it,
		      tvfs_mem_open_fds(mem));
		tvfs_mem_free(mem);
	}
	fprintf(stderr,
		"check_powerloss %s: %d iterations, %" PRIu64 " power cuts (%" PRIu64
		" during open, %" PRIu64 " during appends), %" PRIu64 " I/O calls, %" PRIu64
		" appends, %" PRIu64 " records checked, unsynced: %" PRIu64 " lost / %" PRIu64
		" kept, %" PRIu64 " damaged ranges skipped by readers, %" PRIu64
		" segments started in recycled files\n",
		name, iterations, m.cuts, m.cuts_in_open, m.cuts_mid, m.ops, m.appends,
		m.records_checked, m.lost_unsynced, m.kept_unsynced, m.corrupt, m.recycled);
	if (p->recycle)
		CHECK(m.recycled > 0, "%s: no segment was ever recycled", name);
	model_free(&m);
}

START_TEST(test_always_single_thread)
{
	params p = {EDGELOG_SYNC_ALWAYS, 1, 1, 0};
	run_iterations(&p, 300, 3, "sync=always, 1 thread");
}
END_TEST

START_TEST(test_always_two_threads)
{
	params p = {EDGELOG_SYNC_ALWAYS, 2, 1, 0};
	run_iterations(&p, 150, 3, "sync=always, 2 threads");
}
END_TEST

START_TEST(test_interval_synced_survive)
{
	params p = {EDGELOG_SYNC_INTERVAL, 1, 1, 0};
	run_iterations(&p, 300, 3, "sync=interval");
}
END_TEST

/* Recycled segment files (FORMAT.md, "Recycled segments"): power cuts at
 * every step of setting one aside, making it a spare, writing into it and
 * recovering it. No record of a file's earlier life may ever read as
 * live (the keys would go backwards), and everything synced survives. */
START_TEST(test_interval_recycled_segments)
{
	params p = {EDGELOG_SYNC_INTERVAL, 1, 1, 1};
	run_iterations(&p, 300, 4, "sync=interval, recycling");
}
END_TEST

START_TEST(test_always_recycled_segments)
{
	params p = {EDGELOG_SYNC_ALWAYS, 1, 1, 1};
	run_iterations(&p, 150, 4, "sync=always, recycling");
}
END_TEST

START_TEST(test_none_synced_survive)
{
	params p = {EDGELOG_SYNC_NONE, 1, 1, 0};
	run_iterations(&p, 100, 3, "sync=none");
}
END_TEST

/* The directory does not exist before the first open: the engine creates
 * it, segments/ and the cursor. Records acknowledged under sync=always
 * must survive a power cut right after. */
START_TEST(test_fresh_directory_always)
{
	params p = {EDGELOG_SYNC_ALWAYS, 1, 0, 0};
	model m;
	model_init(&m);
	tvfs_mem *mem = tvfs_mem_new(tu_seed());
	tvfs_mem_set_loss(mem, 0, 0, 0); /* nothing unsynced survives */
	edgelog_config c;
	edgelog *log = NULL;
	config(&c, &p);
	ck_assert_int_eq(eng_open_vfs(&log, &c, tvfs_mem_vfs(mem)), 0);
	uint8_t rec[REC_MAX];
	for (uint64_t k = 1; k <= 10; k++) {
		uint64_t seq;
		size_t len = make_record(k, rec);
		m.max_key = k;
		ck_assert_int_eq(edgelog_append(log, rec, len, &seq), 0);
		model_appended(&m, seq, k, 1);
	}
	ck_assert_int_eq(edgelog_ack(log, 4), 0);
	m.acked = 4;
	tvfs_mem_power_loss(mem, 1);
	edgelog_close(log); /* descriptors are dead: frees memory only */
	ck_assert_msg(tvfs_mem_exists(mem, SEG_PATH),
		      DIR_PATH "/segments vanished at the power cut: its directory entry was "
			       "never made durable (no fsync of " DIR_PATH ")");
	ck_assert_msg(tvfs_mem_exists(mem, CUR_PATH),
		      "the cursor vanished at the power cut although edgelog_ack returned 0: "
		      "its name was never made durable (no fsync of " DIR_PATH ")");
	log = reopen_and_check(&m, mem, &p, "fresh directory");
	ck_assert_int_eq(edgelog_close(log), 0);
	tvfs_mem_free(mem);
	model_free(&m);
}
END_TEST

START_TEST(test_fresh_directory_random_cuts)
{
	params p = {EDGELOG_SYNC_ALWAYS, 1, 0, 0};
	run_iterations(&p, 100, 2, "sync=always, fresh directory");
}
END_TEST

START_TEST(test_clean_close_then_cut_keeps_everything)
{
	/* sync=none: nothing is durable until close; after a clean close a
	 * power cut loses nothing. */
	params p = {EDGELOG_SYNC_NONE, 1, 1, 0};
	model m;
	model_init(&m);
	tvfs_mem *mem = tvfs_mem_new(tu_seed() + 5);
	precreate(mem);
	edgelog_config c;
	edgelog *log = NULL;
	config(&c, &p);
	ck_assert_int_eq(eng_open_vfs(&log, &c, tvfs_mem_vfs(mem)), 0);
	uint8_t rec[REC_MAX];
	for (uint64_t k = 1; k <= 500; k++) {
		uint64_t seq;
		size_t len = make_record(k, rec);
		m.max_key = k;
		ck_assert_int_eq(edgelog_append(log, rec, len, &seq), 0);
		model_appended(&m, seq, k, 0);
	}
	ck_assert_int_eq(edgelog_close(log), 0);
	model_synced(&m, 500);
	tvfs_mem_power_loss(mem, 3);
	log = reopen_and_check(&m, mem, &p, "clean close");
	ck_assert_int_eq(edgelog_close(log), 0);
	tvfs_mem_free(mem);
	model_free(&m);
}
END_TEST

/*
 * A process dies (kill -9) with records in the page cache only; the next
 * process opens the directory and calls edgelog_sync(), which promises to
 * make "every record appended so far" durable, and status.durable_seq then
 * covers them. A power cut after that must not lose them.
 */
/* A process on mem appends records 1..n (and syncs once after record
 * sync_at, if not 0), then dies (kill -9): it does nothing more, its
 * mappings and descriptors go away, the page cache (live content) stays.
 * Returns the key of the next record. */
static uint64_t first_process_killed(tvfs_mem *mem, const edgelog_config *c, model *m, uint64_t n,
				     uint64_t sync_at)
{
	tvfs_fault *f = tvfs_fault_new(tvfs_mem_vfs(mem));
	edgelog *log = NULL;
	uint8_t rec[REC_MAX];
	uint64_t k, seq = 0;

	ck_assert_int_eq(eng_open_vfs(&log, c, tvfs_fault_vfs(f)), 0);
	for (k = 1; k <= n; k++) {
		size_t len = make_record(k, rec);
		m->max_key = k;
		ck_assert_int_eq(edgelog_append(log, rec, len, &seq), 0);
		model_appended(m, seq, k, 0);
		if (k == sync_at)
			ck_assert_int_eq(edgelog_sync(log), 0);
	}
	tvfs_fault_fail(f, TVFS_OP_ALL, 1, -EIO, 1);
	edgelog_close(log);
	tvfs_fault_free(f);
	return k;
}

static void crash_then_sync(edgelog_sync_mode second_sync, int append_more)
{
	params p = {EDGELOG_SYNC_NONE, 1, 1, 0};
	model m;
	model_init(&m);
	tvfs_mem *mem = tvfs_mem_new(tu_seed() + 11);
	tvfs_mem_set_loss(mem, 0, 0, 0); /* nothing unsynced survives */
	precreate(mem);

	/* The first process: appends (several segments), never syncs, dies. */
	edgelog_config c;
	edgelog *log = NULL;
	uint8_t rec[REC_MAX];
	uint64_t k, seq = 0;
	config(&c, &p);
	k = first_process_killed(mem, &c, &m, 800, 0);

	/* The second process. */
	p.sync = second_sync;
	config(&c, &p);
	ck_assert_int_eq(eng_open_vfs(&log, &c, tvfs_mem_vfs(mem)), 0);
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	if (append_more) {
		size_t len = make_record(k, rec);
		m.max_key = k;
		ck_assert_int_eq(edgelog_append(log, rec, len, &seq), 0);
		model_appended(&m, seq, k, 0);
	}
	ck_assert_int_eq(edgelog_sync(log), 0);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.durable_seq, st.last_seq);
	model_synced(&m, st.durable_seq);
	tvfs_mem_power_loss(mem, 2);
	edgelog_close(log); /* dead descriptors: frees memory only */
	log = reopen_and_check(&m, mem, &p, "crash, reopen, edgelog_sync, power cut");
	ck_assert_int_eq(edgelog_close(log), 0);
	tvfs_mem_free(mem);
	model_free(&m);
}

START_TEST(test_sync_after_crash_covers_earlier_records)
{
	crash_then_sync(EDGELOG_SYNC_NONE, 0);
}
END_TEST

START_TEST(test_sync_always_after_crash_covers_earlier_records)
{
	crash_then_sync(EDGELOG_SYNC_ALWAYS, 1);
}
END_TEST

/*
 * The synced hint (FORMAT.md, "Opening: which segments to sync"): a process
 * syncs (the round writes the hint for the segments it sealed), appends
 * more into new segments, and dies (kill -9). The next open syncs only the
 * segments the hint does not vouch for; a power cut after its
 * edgelog_sync must lose nothing, which it would if the hint vouched for a
 * segment that was not synced. A hint whose salt does not match the
 * segment it names (a log started anew under the same names) is not
 * believed: every segment is synced.
 */
static void hint_then_crash(int forge)
{
	params p = {EDGELOG_SYNC_NONE, 1, 1, 0};
	model m;
	model_init(&m);
	tvfs_mem *mem = tvfs_mem_new(tu_seed() + 13);
	tvfs_mem_set_loss(mem, 0, 0, 0); /* nothing unsynced survives */
	precreate(mem);

	tvfs_fault *f;
	edgelog_config c;
	edgelog *log = NULL;
	uint64_t nseg;
	config(&c, &p);
	/* The sync after record 3000 has sealed segments behind it: its
	 * round writes the hint. */
	first_process_killed(mem, &c, &m, 6000, 3000);
	ck_assert(tvfs_mem_exists(mem, SEG_PATH "/" SEG_SYNCED_NAME));
	if (forge) {
		/* The hint names a segment that is there, with another salt. */
		uint8_t *h;
		size_t hn;
		ck_assert_int_eq(tvfs_mem_read_file(mem, SEG_PATH "/" SEG_SYNCED_NAME, &h, &hn), 0);
		ck_assert_uint_eq(hn, 24);
		h[12] ^= 1;
		h[20] = h[21] = h[22] = h[23] = 0;
		{
			uint32_t sum = seg_checksum32(h, 20);
			seg_put32(h + 20, sum);
		}
		ck_assert_int_eq(tvfs_mem_write_file(mem, SEG_PATH "/" SEG_SYNCED_NAME, h, hn, 0),
				 0);
		free(h);
	}

	/* The second process: its open's fdatasyncs counted. */
	f = tvfs_fault_new(tvfs_mem_vfs(mem));
	log = NULL;
	ck_assert_int_eq(eng_open_vfs(&log, &c, tvfs_fault_vfs(f)), 0);
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	nseg = st.segments;
	ck_assert_uint_gt(nseg, 8);
	if (forge)
		ck_assert_uint_ge(tvfs_fault_count(f, TVFS_OP_FSYNC), nseg);
	else
		ck_assert_msg(tvfs_fault_count(f, TVFS_OP_FSYNC) < nseg - 2,
			      "open synced %" PRIu64 " of %" PRIu64 " segments with a hint",
			      tvfs_fault_count(f, TVFS_OP_FSYNC), nseg);
	ck_assert_int_eq(edgelog_sync(log), 0);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.durable_seq, st.last_seq);
	model_synced(&m, st.durable_seq);
	tvfs_mem_power_loss(mem, 4);
	edgelog_close(log);
	tvfs_fault_free(f);
	log = reopen_and_check(&m, mem, &p,
			       "sync, more, kill, open with the hint, sync, power cut");
	ck_assert_int_eq(edgelog_close(log), 0);
	tvfs_mem_free(mem);
	model_free(&m);
}

START_TEST(test_open_syncs_what_the_synced_hint_does_not_cover)
{
	hint_then_crash(0);
}
END_TEST

START_TEST(test_open_ignores_a_synced_hint_of_another_segment)
{
	hint_then_crash(1);
}
END_TEST

static Suite *powerloss_suite(void)
{
	Suite *s = suite_create("powerloss");
	TCase *tc = tcase_create("powerloss");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_always_single_thread);
	tcase_add_test(tc, test_always_two_threads);
	tcase_add_test(tc, test_interval_synced_survive);
	tcase_add_test(tc, test_none_synced_survive);
	tcase_add_test(tc, test_open_syncs_what_the_synced_hint_does_not_cover);
	tcase_add_test(tc, test_open_ignores_a_synced_hint_of_another_segment);
	tcase_add_test(tc, test_interval_recycled_segments);
	tcase_add_test(tc, test_always_recycled_segments);
	tcase_add_test(tc, test_clean_close_then_cut_keeps_everything);
	tcase_add_test(tc, test_fresh_directory_always);
	tcase_add_test(tc, test_fresh_directory_random_cuts);
	tcase_add_test(tc, test_sync_after_crash_covers_earlier_records);
	tcase_add_test(tc, test_sync_always_after_crash_covers_earlier_records);
	suite_add_tcase(s, tc);
	return s;
}

TU_CHECK_MAIN(powerloss_suite)
