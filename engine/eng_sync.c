/*
 * eng_sync.c - making records and the cursor durable: group-commit sync
 * rounds (one leader fdatasyncs for every waiting appender) and cursor
 * stores.
 *
 * Offers (eng_internal.h): eng_lead_sync, eng_wait_durable,
 * eng_store_cursor. State: the sync part of struct edgelog (syncing, the
 * list of waiting threads and its counts, the gatherer, sync_ns_avg,
 * redirty_*) under mu, the bell atomic; cursor stores under cur_mu. Below
 * the engine: uses the writer, the cursor file and the age clock only.
 * Waiting threads sleep on a futex (Linux).
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "eng_internal.h"

/* ---- sync rounds (group commit) --------------------------------------- */

static int64_t mono_ns(void);

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
/* Bytes of the active segment made writable again after an interval round
 * at most, ahead of the end of data. */
#define REDIRTY_MAX ((size_t)1 << 20)

/*
 * After a round (no lock held): take the write faults of the pages the
 * appenders will store into before the next round, here in the syncing
 * thread instead of in an append. Writeback left those pages clean and
 * write-protected; the first store into each would fault into the file
 * system (page_mkwrite, which can wait for the journal). The range is the
 * tail page and as many bytes as were appended since the last round (at
 * most REDIRTY_MAX): pages the appenders fill anyway before the next
 * round, so this adds no write to the device in the steady state. Under
 * sync=interval it keeps the faults out of the appends' latency; under
 * sync=always it keeps them out of the engine's lock, where every
 * appender gathering for the next round queued behind the one that
 * faulted (FORMAT.md, "Group commit").
 * MADV_POPULATE_WRITE (Linux 5.14) faults the pages in as writable without
 * changing a byte; on older kernels, or on memory that is not a page-aligned
 * mapping, it fails and nothing happens. A mapping unmapped meanwhile by a
 * roll makes it fail the same way.
 */
static void redirty_tail(uint8_t *map, size_t pos, size_t size, size_t ahead)
{
	static size_t page;
	size_t start, end;

	if (!page) {
		long ps = sysconf(_SC_PAGESIZE);
		page = ps > 0 ? (size_t)ps : 4096;
	}
	if ((uintptr_t)map % page || pos >= size)
		return;
	if (ahead > REDIRTY_MAX)
		ahead = REDIRTY_MAX;
	start = pos & ~(page - 1);
	end = (pos + ahead + page) & ~(page - 1);
	if (end > size)
		end = size;
	(void)madvise(map + start, end - start, MADV_POPULATE_WRITE);
}

/*
 * Waiters. A thread waiting for durability sleeps without mu, on the
 * engine's bell (a futex word), until its own state says it is done: the
 * round that covers it sets its result, and one wake of the bell releases
 * every thread the round covered. They return without taking mu again, so
 * they do not queue on mu behind each other on their way out.
 *
 *   W_WAIT      listed, waiting
 *   W_LEAD      listed, woken to lead or gather (the round ended without
 *               covering it)
 *   W_RELEASED  taken off the list by a round (under mu); W_DONE follows
 *   W_DONE      rc is the result; the waiter may return (and its stack
 *               frame go) at any moment after this store
 */
enum {
	W_WAIT,
	W_LEAD,
	W_RELEASED,
	W_DONE
};

static unsigned wstate(eng_waiter *w)
{
	return __atomic_load_n(&w->state, __ATOMIC_SEQ_CST);
}

static void wset(eng_waiter *w, unsigned st)
{
	__atomic_store_n(&w->state, st, __ATOMIC_SEQ_CST);
}

/* The futex operations, from <linux/futex.h> (FUTEX_WAIT or FUTEX_WAKE
 * with FUTEX_PRIVATE_FLAG): the kernel's headers are not there in every
 * build (musl-gcc). */
#define ENG_FUTEX_WAIT_PRIVATE 128
#define ENG_FUTEX_WAKE_PRIVATE 129

/* Ring the bell: every sleeping waiter looks at its state again. */
static void ring(eng_sync *s)
{
	__atomic_fetch_add(&s->bell, 1, __ATOMIC_SEQ_CST);
	(void)syscall(SYS_futex, &s->bell, ENG_FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* FUTEX_WAIT on addr while it holds val, for at most *ts (NULL: no
 * limit). A 32-bit target built with a 64-bit time_t (_TIME_BITS=64) has
 * to use futex_time64, and the old call with a 32-bit timespec on a
 * kernel older than 5.1. Early returns (a ring, EINTR, EAGAIN) are the
 * caller's to sort out. */
static void futex_wait(unsigned *addr, unsigned val, const struct timespec *ts)
{
#ifdef SYS_futex_time64
	if (sizeof(ts->tv_sec) > sizeof(long)) {
		long old[2];
		long r = syscall(SYS_futex_time64, addr, ENG_FUTEX_WAIT_PRIVATE, val, ts, NULL, 0);

		if (r == 0 || errno != ENOSYS)
			return;
		if (ts) {
			old[0] = (long)ts->tv_sec;
			old[1] = ts->tv_nsec;
			(void)syscall(SYS_futex, addr, ENG_FUTEX_WAIT_PRIVATE, val, old, NULL, 0);
			return;
		}
	}
#endif
	(void)syscall(SYS_futex, addr, ENG_FUTEX_WAIT_PRIVATE, val, ts, NULL, 0);
}

/* Sleep (mu not held) while the state is W_WAIT or W_RELEASED, or until
 * the monotonic time until (ns; 0: no limit). The bell is read before the
 * state: a ring after that read makes the futex wait return at once.
 * Returns on a ring too when until is reached meanwhile. */
static void waiter_sleep(eng_sync *s, eng_waiter *w, int64_t until)
{
	int saved = errno;

	for (;;) {
		struct timespec ts, *tp = NULL;
		unsigned b = __atomic_load_n(&s->bell, __ATOMIC_SEQ_CST);
		unsigned st = wstate(w);

		if (st != W_WAIT && st != W_RELEASED)
			break;
		if (until && st == W_WAIT) {
			int64_t left = until - mono_ns();
			if (left <= 0)
				break;
			ts.tv_sec = (time_t)(left / 1000000000);
			ts.tv_nsec = (long)(left % 1000000000);
			tp = &ts;
		}
		futex_wait(&s->bell, b, tp);
	}
	errno = saved; /* an append does not leave EAGAIN or ETIMEDOUT behind */
}

/* Take the waiters whose seq is at most upto off the list (mu held), with
 * their result, chained on next for wake_released. The first of those
 * left (they came while the round ran) is woken to lead or gather the
 * next round: nobody else would (the gatherer, if any, was released). */
static eng_waiter *release(edgelog *log, uint64_t upto, int rc)
{
	eng_sync *s = &log->sync;
	eng_waiter *w, *done = NULL, **tailp = &done;

	while ((w = s->head) && w->seq <= upto) {
		s->head = w->next;
		s->n_wait--;
		w->rc = rc;
		wset(w, W_RELEASED);
		*tailp = w;
		tailp = &w->next;
	}
	*tailp = NULL;
	if (!s->head)
		s->tail = NULL;
	s->n_next = s->n_wait;
	s->gatherer = NULL;
	if (s->head && wstate(s->head) == W_WAIT) {
		wset(s->head, W_LEAD);
		ring(s);
	}
	return done;
}

/* Wake the released waiters (mu not held). Read next before the store:
 * after it the waiter may be gone. One ring wakes them all, unless the
 * only one is the caller. */
static void wake_released(eng_sync *s, eng_waiter *w, eng_waiter *self)
{
	int others = 0;

	while (w) {
		eng_waiter *next = w->next;
		others |= w != self;
		wset(w, W_DONE);
		w = next;
	}
	if (others)
		ring(s);
}

/* Run one sync round (mu held on entry and on return; dropped around the
 * fdatasync calls so appenders carry on meanwhile). Returns its result and
 * in *woken the waiters it released, for wake_released. */
static int run_round(edgelog *log, eng_waiter **woken)
{
	seg_sync_plan p;
	seg_err e;
	int rc = 0;
	int64_t t0;
	uint8_t *map = NULL;
	size_t pos = 0, size = 0, ahead = 0;

	if (!seg_sync_begin(&log->w, &p)) {
		log->sync.last_sync_mono = log->vfs->mono_ms(log->vfs);
		*woken = release(log, log->w.synced_seq, 0);
		return 0;
	}
	/* Every listed waiter's record is at or below p.target_seq. */
	log->sync.syncing = 1;
	log->sync.n_next = 0;
	log->sync.gatherer = NULL;
	if ((log->conf.sync == EDGELOG_SYNC_INTERVAL || log->conf.sync == EDGELOG_SYNC_ALWAYS) &&
	    log->w.fd >= 0 && log->w.map) {
		map = log->w.map;
		pos = log->w.pos;
		size = log->w.size;
		ahead = map == log->sync.redirty_map && pos > log->sync.redirty_pos ?
				pos - log->sync.redirty_pos :
				0;
		log->sync.redirty_map = map;
		log->sync.redirty_pos = pos;
	}
	pthread_mutex_unlock(&log->mu);
	t0 = mono_ns();
	seg_sync_run(log->vfs, log->segdir, &p);
	t0 = mono_ns() - t0;
	if (map)
		redirty_tail(map, pos, size, ahead);
	pthread_mutex_lock(&log->mu);
	log->sync.sync_ns_avg = log->sync.sync_ns_avg ? (7 * log->sync.sync_ns_avg + t0) / 8 : t0;
	rc = seg_sync_end(&log->w, &p, &e);
	if (rc) {
		log->cur.sync_failures++;
		eng_set_error(log, rc, &e);
		eng_log(&log->conf, EDGELOG_LOG_ERROR,
			"%s; records up to seq %llu may not be durable, writing continues in a new "
			"segment",
			e.msg, (unsigned long long)p.target_seq);
	}
	log->sync.syncing = 0;
	log->sync.last_sync_mono = log->vfs->mono_ms(log->vfs);
	/* Those waiting now: the ones this round covered, who append again at
	 * once, and the ones who came meanwhile. */
	log->sync.expect = log->sync.n_wait;
	*woken = release(log, p.target_seq, rc);
	pthread_cond_broadcast(&log->sync_cv);
	return rc;
}

int eng_lead_sync(edgelog *log)
{
	eng_waiter *woken;
	int rc = run_round(log, &woken);

	if (woken) {
		pthread_mutex_unlock(&log->mu);
		wake_released(&log->sync, woken, NULL);
		pthread_mutex_lock(&log->mu);
	}
	return rc;
}

/* The real monotonic clock in ns: gathering is a matter of scheduling, so
 * it does not go through the vfs clock that tests drive. */
static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Whether a waiter that finds no round running starts one now (mu held).
 * Under sync=always, not before as many threads wait for the next round
 * as waited when the last round ended (expect): the threads that round
 * released append again within microseconds, and this way they share one
 * fdatasync instead of the first of them starting a round alone. The
 * thread that completes the count leads, already running. A thread that
 * stopped appending costs one round a wait once: the first waiter (the
 * gatherer) starts the round anyway after half the average fdatasync time
 * (5 ms at most), and then expect is the new count.
 */
static int round_due(edgelog *log, eng_waiter *me)
{
	eng_sync *s = &log->sync;
	int64_t wait_ns;

	if (log->conf.sync != EDGELOG_SYNC_ALWAYS || s->n_next >= s->expect)
		return 1;
	if (s->gatherer == me)
		return mono_ns() >= s->gather_until;
	if (s->gatherer)
		return 0;
	wait_ns = s->sync_ns_avg / 2;
	if (wait_ns <= 0)
		return 1;
	if (wait_ns > 5000000)
		wait_ns = 5000000;
	s->gatherer = me;
	s->gather_until = mono_ns() + wait_ns;
	return 0;
}

int eng_wait_durable(edgelog *log, uint64_t seq)
{
	eng_sync *s = &log->sync;
	eng_waiter me = {.seq = seq, .state = W_WAIT};
	eng_waiter *woken;
	int64_t until;

	if (log->w.synced_seq >= seq && !log->w.dir_dirty) {
		pthread_mutex_unlock(&log->mu);
		return 0;
	}
	if (s->tail)
		s->tail->next = &me;
	else
		s->head = &me;
	s->tail = &me;
	s->n_wait++;
	s->n_next++;
	for (;;) {
		if (!s->syncing && round_due(log, &me)) {
			/* The round covers every listed waiter, this one too. */
			(void)run_round(log, &woken);
			pthread_mutex_unlock(&log->mu);
			wake_released(s, woken, &me);
			break;
		}
		until = s->gatherer == &me ? s->gather_until : 0;
		pthread_mutex_unlock(&log->mu);
		waiter_sleep(s, &me, until);
		if (wstate(&me) == W_DONE)
			break;
		pthread_mutex_lock(&log->mu);
		if (wstate(&me) != W_WAIT && wstate(&me) != W_LEAD) {
			pthread_mutex_unlock(&log->mu);
			waiter_sleep(s, &me, 0);
			break;
		}
		wset(&me, W_WAIT);
	}
	return me.rc;
}

/* ---- cursor ------------------------------------------------------------ */

/* Store the cursor. Takes cur_mu, snapshots under mu, writes without mu. */
int eng_store_cursor(edgelog *log)
{
	cur_state snap;
	seg_err e;
	int rc, reopen;

	pthread_mutex_lock(&log->cur_mu);
	pthread_mutex_lock(&log->mu);
	log->cur.last_seq = log->w.next_seq - 1;
	log->cur.age_ms = eng_age_now(log);
	snap = log->cur;
	reopen = log->guard.cursor_reopen;
	pthread_mutex_unlock(&log->mu);
	if (reopen) {
		/* The file was removed or replaced (eng_guard): a fresh one,
		 * made durable in the directory. */
		int fd = cur_open(log->vfs, log->cursor_path, &e);
		if (fd >= 0 && (rc = log->vfs->fsync_dir(log->vfs, log->conf.dir)) < 0) {
			log->vfs->close(log->vfs, fd);
			fd = seg_fail_errno(&e, rc, "fsync directory %s", log->conf.dir);
		}
		if (fd < 0) {
			pthread_mutex_lock(&log->mu);
			eng_set_error(log, fd, &e);
			pthread_mutex_unlock(&log->mu);
			pthread_mutex_unlock(&log->cur_mu);
			return fd;
		}
		/* Written under both locks: read under either. */
		pthread_mutex_lock(&log->mu);
		log->vfs->close(log->vfs, log->cursor_fd);
		log->cursor_fd = fd;
		log->guard.cursor_reopen = 0;
		pthread_mutex_unlock(&log->mu);
	}
	rc = cur_store(log->vfs, log->cursor_fd, &snap, &e);
	pthread_mutex_lock(&log->mu);
	if (rc)
		eng_set_error(log, rc, &e);
	else
		log->cur.generation = snap.generation;
	if (!rc && snap.acked_seq > log->durable_acked)
		log->durable_acked = snap.acked_seq;
	pthread_mutex_unlock(&log->mu);
	pthread_mutex_unlock(&log->cur_mu);
	return rc;
}
