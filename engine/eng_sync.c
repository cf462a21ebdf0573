/*
 * eng_sync.c - making records and the cursor durable: group-commit sync
 * rounds (one leader fdatasyncs for every waiting appender) and cursor
 * stores.
 *
 * Offers (eng_internal.h): eng_lead_sync, eng_wait_durable,
 * eng_store_cursor. State: the sync part of struct edgelog (syncing, round*,
 * gathering, *_waiters, sync_ns_avg, redirty_*) under mu; cursor stores
 * under cur_mu. Below the engine: uses the writer, the cursor file and the
 * age clock only.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "eng_internal.h"

/* ---- sync rounds (group commit) --------------------------------------- */

static int64_t mono_ns(void);

/* Run one sync round as leader. Called and returns with mu held; drops it
 * around the fdatasync calls so appenders carry on meanwhile. */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
/* Bytes of the active segment made writable again after an interval round
 * at most, ahead of the end of data. */
#define REDIRTY_MAX ((size_t)1 << 20)

/*
 * After an interval round (no lock held): take the write faults of the
 * pages the appenders will store into before the next round, here in the
 * syncing thread instead of in an append. Writeback left those pages clean
 * and write-protected; the first store into each would fault into the file
 * system (page_mkwrite, which can wait for the journal). The range is the
 * tail page and as many bytes as were appended during the last interval
 * (at most REDIRTY_MAX): pages the appenders fill anyway before the next
 * round, so this adds no write to the device in the steady state.
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

int eng_lead_sync(edgelog *log)
{
	seg_sync_plan p;
	seg_err e;
	int rc = 0;
	int64_t t0;
	uint8_t *map = NULL;
	size_t pos = 0, size = 0, ahead = 0;

	if (!seg_sync_begin(&log->w, &p)) {
		log->sync.last_sync_mono = log->vfs->mono_ms(log->vfs);
		return 0;
	}
	log->sync.syncing = 1;
	if (log->conf.sync == EDGELOG_SYNC_INTERVAL && log->w.fd >= 0 && log->w.map) {
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
	log->sync.round++;
	log->sync.round_target = p.target_seq;
	log->sync.round_err = rc;
	log->sync.round_waiters = log->sync.dur_waiters;
	log->sync.last_sync_mono = log->vfs->mono_ms(log->vfs);
	pthread_cond_broadcast(&log->sync_cv);
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
 * Before leading a round under sync=always (mu held): wait until as many
 * threads wait for durability as when the last round ended, so that the
 * threads the last round released, which append again within microseconds,
 * share this round's fdatasync instead of the next one's. Bounded by half
 * the average fdatasync time (at most 5 ms): a thread that stopped
 * appending costs one round that much once, then round_waiters follows.
 */
static void gather(edgelog *log)
{
	int64_t wait_ns = log->sync.sync_ns_avg / 2, end;
	struct timespec ts;

	if (log->conf.sync != EDGELOG_SYNC_ALWAYS || log->sync.round_waiters <= 1 ||
	    log->sync.dur_waiters >= log->sync.round_waiters || wait_ns <= 0)
		return;
	if (wait_ns > 5000000)
		wait_ns = 5000000;
	end = mono_ns() + wait_ns;
	ts.tv_sec = (time_t)(end / 1000000000);
	ts.tv_nsec = (long)(end % 1000000000);
	log->sync.gathering = 1;
	while (log->sync.dur_waiters < log->sync.round_waiters && !log->stopping)
		if (pthread_cond_timedwait(&log->sync.gather_cv, &log->mu, &ts) == ETIMEDOUT)
			break;
	log->sync.gathering = 0;
}

/* Wait (mu held) until seq is durable, leading rounds when nobody else is.
 * Returns the error of the round that covered seq. */
int eng_wait_durable(edgelog *log, uint64_t seq)
{
	int rc;

	log->sync.dur_waiters++;
	if (log->sync.gathering && log->sync.dur_waiters >= log->sync.round_waiters)
		pthread_cond_signal(&log->sync.gather_cv);
	for (;;) {
		if (log->w.synced_seq >= seq && !log->w.dir_dirty) {
			rc = 0;
			break;
		}
		if (!log->sync.syncing && !log->sync.gathering) {
			gather(log);
			if (log->sync.syncing) /* the worker started one meanwhile */
				continue;
			rc = eng_lead_sync(log);
			if (log->sync.round_target >= seq || rc)
				break;
			continue;
		}
		{
			uint64_t r0 = log->sync.round;
			while ((log->sync.syncing || log->sync.gathering) && log->sync.round == r0)
				pthread_cond_wait(&log->sync_cv, &log->mu);
			if (log->sync.round != r0 && log->sync.round_target >= seq) {
				rc = log->sync.round_err;
				break;
			}
		}
	}
	log->sync.dur_waiters--;
	return rc;
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
