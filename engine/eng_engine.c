/*
 * eng_engine.c - open, append, the step function and its worker and
 * preparer threads, acks, status, cleanup, close; at open, finishing a
 * dead-letter operation a crash interrupted.
 *
 * Offers: the public calls edgelog_open/close/append/sync/step/start/ack/
 * cleanup/get_status, and (eng_internal.h) eng_open_vfs, eng_append_raw,
 * eng_requeue_append. Owns struct edgelog's core fields; calls the files
 * below it (eng_upload, eng_compact, eng_guard, eng_dead, eng_sync,
 * eng_status, eng_meta, eng_lock, eng_space, eng_config), none of which calls back.
 *
 * Locking: `mu` guards the writer, the counters and the sync state; it is
 * held for the memcpy of an append and never across a syscall that can
 * block for long (fdatasync, creating a spare segment, storing the cursor).
 * `cur_mu` serialises cursor stores and is taken before `mu`, never after.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eng_internal.h"
#include "seg.h"

static int prep_work(edgelog *log);
static int deadletter_recover(edgelog *log, seg_err *e);

/* ---- status snapshot ---------------------------------------------------- */

/* Check alerts and rewrite the snapshot (and metrics file) when due (no
 * lock held). */
static void snapshot_due(edgelog *log)
{
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	int due;

	pthread_mutex_lock(&log->snap.mu);
	due = eng_snapshot_due(&log->snap, &log->conf, log->vfs->mono_ms(log->vfs));
	if (due && edgelog_get_status(log, &st) == 0 && due == ENG_SNAP_WRITE &&
	    !eng_snapshot_write(&log->snap, log->vfs, &log->conf, &st, 0))
		due = 0; /* unchanged: nor is meta.json stored */
	if (due == ENG_SNAP_WRITE)
		eng_meta_sync(log, 0);
	pthread_mutex_unlock(&log->snap.mu);
}

/* At close: the snapshot and metrics file one last time, saying that no
 * engine runs any more (running 0, is_connected 0). */
static void snapshot_final(edgelog *log)
{
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};

	if (edgelog_get_status(log, &st))
		return;
	st.running = 0;
	st.is_connected = 0;
	st.retry_in_s = 0;
	pthread_mutex_lock(&log->snap.mu);
	eng_snapshot_write(&log->snap, log->vfs, &log->conf, &st, 1);
	pthread_mutex_unlock(&log->snap.mu);
}

/* ---- open / close ------------------------------------------------------ */

typedef struct stale_ctx {
	const seg_vfs *v;
	const char *dir;
} stale_ctx;

/* A status snapshot's temporary left by a process that died mid-write. */
static int remove_stale_tmp(void *ud, const char *name)
{
	stale_ctx *c = ud;
	char path[4400];

	if (!strncmp(name, "status.json.tmp", 15) && !seg_path(path, sizeof(path), c->dir, name))
		c->v->unlink(c->v, path);
	return 0;
}

static void free_log(edgelog *log)
{
	pthread_mutex_destroy(&log->mu);
	pthread_mutex_destroy(&log->cur_mu);
	pthread_mutex_destroy(&log->snap.alert_mu);
	pthread_mutex_destroy(&log->snap.mu);
	seg_buf_free(&log->snap.last);
	pthread_mutex_destroy(&log->dead_mu);
	pthread_cond_destroy(&log->sync_cv);
	pthread_cond_destroy(&log->work_cv);
	pthread_cond_destroy(&log->prep_cv);
	eng_conf_free(&log->conf);
	free(log);
}

int eng_open_vfs(edgelog **out, const edgelog_config *cfg, const seg_vfs *vfs)
{
	edgelog *log;
	seg_open_report rep;
	seg_err e;
	int rc, how = 0;
	uint64_t hw, data_last;

	if (!out)
		return eng_tls_error(EDGELOG_EINVAL, "edgelog_open: out is NULL");
	*out = NULL;
	log = calloc(1, sizeof(*log));
	if (!log)
		return eng_tls_error(EDGELOG_ENOMEM, "edgelog_open: out of memory");
	log->vfs = vfs;
	log->lock_fd[0] = log->lock_fd[1] = -1;
	log->cursor_fd = -1;
	pthread_mutex_init(&log->mu, NULL);
	pthread_mutex_init(&log->cur_mu, NULL);
	pthread_mutex_init(&log->snap.alert_mu, NULL);
	pthread_mutex_init(&log->snap.mu, NULL);
	pthread_mutex_init(&log->dead_mu, NULL);
	pthread_cond_init(&log->sync_cv, NULL);
	pthread_cond_init(&log->prep_cv, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&log->work_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if ((rc = eng_conf_resolve(&log->conf, cfg, vfs, &e)))
		goto fail;
	/* mkdir -p, each directory created made durable in its parent, else
	 * a power cut could take the whole buffer directory with it. */
	if ((rc = seg_mkdir_p(vfs, log->conf.dir, 0700, &e)) < 0)
		goto fail;
	if (seg_path(log->segdir, sizeof(log->segdir), log->conf.dir, ENG_SEGMENTS_DIR) ||
	    seg_path(log->cursor_path, sizeof(log->cursor_path), log->conf.dir, CUR_FILE)) {
		rc = seg_fail(&e, EDGELOG_EINVAL, "path too long: %s", log->conf.dir);
		goto fail;
	}
	if ((rc = eng_take_lock(vfs, log->conf.dir, log->lock_fd, &e)))
		goto fail;

	if (seg_path(log->faileddir, sizeof(log->faileddir), log->conf.dir, "failed")) {
		rc = seg_fail(&e, EDGELOG_EINVAL, "path too long: %s", log->conf.dir);
		goto fail;
	}
	if ((rc = cur_load(vfs, log->cursor_path, &log->cur, &how, &e)))
		goto fail;
	/* The age clock resumes where the last run left it (retention). */
	log->ret.age_base_ms = log->cur.age_ms > 0 ? log->cur.age_ms : 1;
	log->ret.age_mono_ms = vfs->mono_ms(vfs);
	hw = log->cur.acked_seq > log->cur.last_seq ? log->cur.acked_seq : log->cur.last_seq;
	/* Saturated: a cursor past the seq limit makes the writer refuse to
	 * open instead of wrapping to 0 and handing out old seqs again. */
	rc = seg_writer_open(&log->w, vfs, log->segdir, log->conf.segment_bytes,
			     (int64_t)log->conf.segment_max_age_s * 1000,
			     hw < SEG_SEQ_LIMIT ? hw + 1 : SEG_SEQ_LIMIT, &rep, &e);
	if (rc)
		goto fail;
	data_last = rep.last_seq;
	log->first_seq = rep.first_seq;
	seg_writer_set_age_clock(&log->w, log->ret.age_base_ms, log->ret.age_mono_ms);
	seg_writer_set_cap(&log->w, log->conf.max_size_bytes > CUR_FILE_SIZE ?
					    log->conf.max_size_bytes - CUR_FILE_SIZE :
					    1);

	if (rep.torn_tails) {
		log->cur.torn_tails += rep.torn_tails;
		log->cur.torn_bytes += rep.torn_bytes;
		eng_log(&log->conf, EDGELOG_LOG_WARN,
			"%s: torn tail of %llu bytes after seq %llu truncated (a write was cut "
			"short by a crash)",
			log->segdir, (unsigned long long)rep.torn_bytes,
			(unsigned long long)data_last);
	}
	if (rep.corrupt) {
		log->cur.corrupt += rep.corrupt;
		eng_log(&log->conf, EDGELOG_LOG_WARN,
			"%s: %llu damaged range(s) in the newest segment skipped", log->segdir,
			(unsigned long long)rep.corrupt);
	}
	if (rep.quarantined)
		eng_log(&log->conf, EDGELOG_LOG_WARN,
			"%s: %llu unreadable segment file(s) renamed *.bad", log->segdir,
			(unsigned long long)rep.quarantined);
	if (how == CUR_FALLBACK || ((how == CUR_MISSING || how == CUR_GARBAGE) && rep.segments)) {
		log->cur.cursor_resets++;
		eng_log(&log->conf, EDGELOG_LOG_WARN, "%s: cursor %s; %s", log->cursor_path,
			how == CUR_FALLBACK ? "newest slot damaged, previous one used" :
			how == CUR_MISSING  ? "missing" :
					      "unreadable",
			how == CUR_FALLBACK ? "some records may be sent again" :
					      "every stored record will be sent again");
	}
	if (log->cur.acked_seq > data_last && rep.segments) {
		/* The cursor claims acks beyond the data: never trust it past
		 * what is stored. New records continue above the old claim so
		 * no seq the cloud may have seen is ever reused. */
		log->cur.cursor_resets++;
		eng_log(&log->conf, EDGELOG_LOG_WARN,
			"%s: cursor says acknowledged up to seq %llu but the log ends at %llu; "
			"clamped to %llu",
			log->cursor_path, (unsigned long long)log->cur.acked_seq,
			(unsigned long long)data_last, (unsigned long long)data_last);
		log->cur.acked_seq = data_last;
	}
	/* Seqs handed out before a power cut whose records did not survive:
	 * a gap (recorded once, however many opens find it). */
	cur_gap_add(&log->cur, data_last, log->w.next_seq - 1);
	cur_gaps_prune(&log->cur);
	if (!log->first_seq || log->first_seq <= log->cur.acked_seq)
		log->first_seq = log->cur.acked_seq + 1;

	log->cursor_fd = cur_open(vfs, log->cursor_path, &e);
	if (log->cursor_fd < 0) {
		rc = log->cursor_fd;
		goto fail;
	}
	/* The names of segments/, the cursor and LOCK must survive a power
	 * cut as much as their contents. */
	if ((rc = vfs->fsync_dir(vfs, log->conf.dir)) < 0) {
		rc = seg_fail_errno(&e, rc, "fsync directory %s", log->conf.dir);
		goto fail;
	}
	log->sync.last_sync_mono = vfs->mono_ms(vfs);
	log->durable_acked = log->cur.acked_seq;
	if ((rc = eng_upload_init(log, &e)))
		goto fail;
	/* Retention runs at the first step (next_compact_mono is 0), not
	 * here: it reads every segment's header, and open must stay fast on a
	 * large backlog. An append that meets the cap runs it at once. */
	/* Have the first segment ready, so the first append is a memcpy too.
	 * Failure is not fatal: the append creates one itself. */
	pthread_mutex_lock(&log->mu);
	prep_work(log);
	log->errmsg[0] = '\0';
	pthread_mutex_unlock(&log->mu);
	*out = log;
	/* Record the reconciled state (and the seq high-water) durably now. */
	if ((rc = eng_store_cursor(log))) {
		snprintf(e.msg, sizeof(e.msg), "%s", log->errmsg);
		*out = NULL;
		goto fail;
	}
	/* A requeue or dead-letter expiry cut short by a crash is finished
	 * before anything else can move the counters. Failure here leaves
	 * failed/ as it is (the journal stays) and is reported, not fatal. */
	{
		stale_ctx sc = {vfs, log->conf.dir};
		int lr = vfs->list(vfs, log->conf.dir, remove_stale_tmp, &sc);
		if (lr < 0)
			eng_log(&log->conf, EDGELOG_LOG_ERROR, "list %s: %s", log->conf.dir,
				strerror(-lr));
	}
	if (deadletter_recover(log, &e))
		eng_log(&log->conf, EDGELOG_LOG_ERROR, "%s", e.msg);
	/* DIR/meta.json: carry the poison count on; record the device id at
	 * once when it is new, so offline tools name the device right even if
	 * this run dies without closing. */
	{
		int had = eng_meta_load(vfs, log->conf.dir, &log->meta.loaded) == 0;
		log->upload.poisoned = log->meta.loaded.poisoned;
		log->meta.written = log->meta.loaded;
		if (!had || strcmp(log->meta.loaded.device_id, log->conf.device_id))
			eng_meta_sync(log, 1);
	}
	return 0;

fail:
	eng_tls_set(e.msg);
	eng_upload_free(log);
	if (log->w.vfs)
		seg_writer_close(&log->w, NULL);
	if (log->cursor_fd >= 0)
		vfs->close(vfs, log->cursor_fd);
	eng_drop_lock(vfs, log->lock_fd);
	free_log(log);
	return rc;
}

int edgelog_open(edgelog **out, const edgelog_config *cfg)
{
	return eng_open_vfs(out, cfg, seg_vfs_posix());
}

int edgelog_close(edgelog *log)
{
	seg_err e;
	int rc, rc2;

	if (!log)
		return 0;
	pthread_mutex_lock(&log->mu);
	log->stopping = 1;
	/* Cut a transfer in flight short; the drain below starts afresh. */
	__atomic_store_n(&log->upload.abort_upload, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&log->work_cv);
	pthread_cond_broadcast(&log->prep_cv);
	pthread_mutex_unlock(&log->mu);
	if (log->worker_running)
		pthread_join(log->worker, NULL);
	if (log->prep_running)
		pthread_join(log->prep, NULL);
	log->worker_running = 0;
	log->prep_running = 0;
	__atomic_store_n(&log->upload.abort_upload, 0, __ATOMIC_RELAXED);
	eng_upload_drain(log);
	eng_upload_free(log);

	pthread_mutex_lock(&log->mu);
	while (log->sync.syncing)
		pthread_cond_wait(&log->sync_cv, &log->mu);
	rc = seg_writer_close(&log->w, &e);
	if (rc) {
		log->cur.sync_failures++;
		eng_log(&log->conf, EDGELOG_LOG_ERROR, "close: %s", e.msg);
	}
	pthread_mutex_unlock(&log->mu);
	rc2 = eng_store_cursor(log);
	if (!rc)
		rc = rc2;
	/* Leave the directory saying what is true once we are gone: the
	 * figures as they stand, no engine, not connected (a metrics file
	 * scraped after exit must not show the last interval's state), and
	 * the last error for offline status. */
	snapshot_final(log);
	eng_meta_sync(log, 0);
	if (log->cursor_fd >= 0)
		log->vfs->close(log->vfs, log->cursor_fd);
	/* Closing the descriptor releases the flock. */
	eng_drop_lock(log->vfs, log->lock_fd);
	if (rc)
		eng_tls_set(log->errmsg);
	free_log(log);
	return rc;
}

/* ---- append ------------------------------------------------------------ */

/* The record did not fit (EDGELOG_EFULL or EDGELOG_ENOSPC in rc): make room
 * and try again, in the order FORMAT.md gives (Retention, point 3):
 *
 *  1. Under either policy: space that holds no unacknowledged record. A
 *     spare the preparer is making is waited for (the retry may simply
 *     take it), segments/.recycle is removed, acknowledged segments are
 *     removed (not recycled), and the append is retried: a transient
 *     ENOSPC, or a full disk or cap that freeing this space cures, costs
 *     no record (and under reject refuses none).
 *  2. drop_oldest only: the oldest segments, counted as dropped, one
 *     segment's worth a round (the bytes the new segment needs), retried
 *     after each, for as long as a round frees something: on a file
 *     system that filled before the cap, one may not be enough (block
 *     overhead, other files).
 *
 * Out of line, so that the common append keeps its arguments in
 * registers. Called with log->mu held. */
static __attribute__((noinline)) int append_make_room(edgelog *log, const void *data, size_t len,
						      int64_t ts, uint64_t *seq, seg_err *e, int rc)
{
	uint64_t need = (uint64_t)log->conf.segment_bytes;

	if (need < SEG_HEADER_SIZE + SEG_FRAME_HEADER + len)
		need = SEG_HEADER_SIZE + SEG_FRAME_HEADER + len; /* one oversized record */
	/* (At the cap under drop_oldest step 2 alone does the same: its pass
	 * frees .recycle and removes the acknowledged prefix before it drops,
	 * and drops only what the cap still wants; one pass instead of two.) */
	if (rc == EDGELOG_ENOSPC ||
	    (rc == EDGELOG_EFULL && log->conf.full_policy != EDGELOG_FULL_DROP_OLDEST)) {
		uint64_t tries = log->spare_tries;
		while (log->ret.compacting || (log->spare_busy && log->spare_tries == tries))
			pthread_cond_wait(&log->sync_cv, &log->mu);
		eng_compact(log, ENG_COMPACT_FREE, 0);
		rc = seg_writer_append(&log->w, data, (uint32_t)len, ts, seq, e);
	}
	while ((rc == EDGELOG_EFULL || rc == EDGELOG_ENOSPC) &&
	       log->conf.full_policy == EDGELOG_FULL_DROP_OLDEST) {
		uint64_t used = eng_used_bytes(log);
		while (log->ret.compacting)
			pthread_cond_wait(&log->sync_cv, &log->mu);
		eng_compact(log, ENG_COMPACT_DROP, rc == EDGELOG_ENOSPC ? need : 0);
		rc = seg_writer_append(&log->w, data, (uint32_t)len, ts, seq, e);
		if (rc && eng_used_bytes(log) >= used)
			break; /* nothing left that the policy may remove */
	}
	return rc;
}

/* eng_append_raw's body, inlined into edgelog_append too (one call less on
 * the path bench/instructions.sh counts). */
static inline __attribute__((always_inline)) int append_raw(edgelog *log, const void *data,
							    size_t len, uint64_t *seq_out)
{
	seg_err e;
	uint64_t seq = 0;
	int64_t ts = log->vfs->now_ms(log->vfs);
	int rc;

	pthread_mutex_lock(&log->mu);
	if (log->stopping) {
		pthread_mutex_unlock(&log->mu);
		return EDGELOG_ESTATE;
	}
	rc = seg_writer_append(&log->w, data, (uint32_t)len, ts, &seq, &e);
	if (rc)
		rc = append_make_room(log, data, len, ts, &seq, &e, rc);
	if (rc) {
		eng_set_error(log, rc, &e);
		pthread_mutex_unlock(&log->mu);
		return rc;
	}
	/* The spare became the active segment: have the preparer make the
	 * next one now, well before this one fills. */
	if (log->prep_running && (log->w.n_retired || seg_writer_wants_spare(&log->w)))
		pthread_cond_signal(&log->prep_cv);
	/* A full batch is waiting: no need for the worker to sleep on. */
	if (log->upload.up && log->worker_running &&
	    seq - log->cur.acked_seq == log->conf.batch_size)
		pthread_cond_signal(&log->work_cv);
	if (log->conf.sync == EDGELOG_SYNC_ALWAYS) {
		rc = eng_wait_durable(log, seq); /* releases mu */
	} else {
		if (log->conf.sync == EDGELOG_SYNC_INTERVAL && !log->worker_running &&
		    !log->sync.syncing &&
		    log->vfs->mono_ms(log->vfs) - log->sync.last_sync_mono >=
			    (int64_t)log->conf.sync_interval_ms) {
			/* No worker: this append pays for the interval sync.
			 * The record is stored whatever the outcome. */
			eng_lead_sync(log);
		}
		pthread_mutex_unlock(&log->mu);
	}
	if (seq_out)
		*seq_out = seq;
	return rc;
}

int eng_append_raw(edgelog *log, const void *data, size_t len, uint64_t *seq_out)
{
	return append_raw(log, data, len, seq_out);
}

int edgelog_append(edgelog *log, const void *data, size_t len, uint64_t *seq)
{
	size_t bad;

	if (!log || (!data && len))
		return EDGELOG_EINVAL;
	if (len > EDGELOG_MAX_RECORD)
		return eng_set_msg(log, EDGELOG_ETOOBIG,
				   "record of %zu bytes is larger than EDGELOG_MAX_RECORD (%u)",
				   len, EDGELOG_MAX_RECORD);
	bad = seg_mp_validate(data, len);
	if (bad && len == 0)
		return eng_set_msg(log, EDGELOG_EINVAL,
				   "empty record: a record must be one msgpack object");
	if (bad)
		return eng_set_msg(
			log, EDGELOG_EINVAL,
			"record is not exactly one msgpack object (invalid at byte %zu of %zu)",
			bad - 1, len);
	return append_raw(log, data, len, seq);
}

int edgelog_sync(edgelog *log)
{
	int rc;

	if (!log)
		return EDGELOG_EINVAL;
	pthread_mutex_lock(&log->mu);
	rc = eng_wait_durable(log, log->w.next_seq - 1); /* releases mu */
	return rc;
}

/* ---- dead letters at open ---------------------------------------------- */

/* Step 2 for records [from, d->n) whose seq is not in the log yet. */
int eng_requeue_append(edgelog *log, const eng_journal *j, const eng_dead_recs *d, seg_err *e)
{
	uint8_t *have = calloc(d->n ? d->n : 1, 1);
	size_t i;
	int rc = 0;

	if (!have)
		return seg_fail(e, EDGELOG_ENOMEM, "out of memory");
	/* Which of the journal's seqs made it into the log before a crash. */
	{
		seg_reader r;
		seg_frame f;
		if (seg_reader_init(&r, log->vfs, log->segdir, j->first_seq, e) == 0) {
			while (seg_reader_next(&r, &f, e) == 0 && f.seq < j->first_seq + d->n)
				if (f.seq >= j->first_seq &&
				    f.len == d->len[f.seq - j->first_seq] &&
				    !memcmp(f.data, d->data[f.seq - j->first_seq], f.len))
					have[f.seq - j->first_seq] = 1;
			seg_reader_close(&r);
		}
	}
	for (i = 0; i < d->n && !rc; i++) {
		uint64_t seq;
		if (have[i])
			continue;
		rc = eng_append_raw(log, d->data[i], d->len[i], &seq);
		if (rc) {
			pthread_mutex_lock(&log->mu);
			seg_msg(e->msg, sizeof(e->msg), "requeue of %s: %s", j->file, log->errmsg);
			pthread_mutex_unlock(&log->mu);
		}
	}
	free(have);
	if (!rc && (rc = edgelog_sync(log)))
		seg_msg(e->msg, sizeof(e->msg), "requeue of %s: %s", j->file, edgelog_errmsg(log));
	return rc;
}

/* Finish a requeue or dead-letter expiry a crash interrupted (at open,
 * before the uploader runs). */
static int deadletter_recover(edgelog *log, seg_err *e)
{
	eng_journal j;
	eng_dead_recs d;
	uint64_t corrupt = 0;
	int rc;

	if (!log->faileddir[0])
		return 0;
	rc = eng_journal_read(log, &j, e);
	if (rc)
		return rc == 1 ? 0 : rc;
	eng_log(&log->conf, EDGELOG_LOG_WARN, "%s/%s: finishing an interrupted %s of %s",
		log->faileddir, ENG_JOURNAL_FILE, j.op, j.file);
	if (!strcmp(j.op, "requeue") && log->cur.requeued < j.after) {
		rc = eng_dead_read(log, j.file, &d, &corrupt, e);
		if (rc == EDGELOG_ENOTFOUND || rc == -ENOENT) {
			/* Cannot happen in eng_dead.c's order; never guess. */
			return seg_fail(e, EDGELOG_ECORRUPT,
					"%s/%s names %s, which is gone, and the cursor does not "
					"count it; check failed/ by hand",
					log->faileddir, ENG_JOURNAL_FILE, j.file);
		}
		if (rc)
			return rc;
		rc = eng_requeue_append(log, &j, &d, e);
		eng_dead_free(&d);
		if (rc)
			return rc;
	}
	return eng_journal_count(log, &j, e);
}

/* ---- background work ---------------------------------------------------- */

/* Prepare a spare segment if the writer wants one, and unmap retired
 * mappings. Called and returns with mu held; drops it around the slow
 * calls. Returns 1 if it did anything. */
static int prep_work(edgelog *log)
{
	void *p;
	size_t n;
	int did = 0;

	while (seg_writer_take_retired(&log->w, &p, &n)) {
		pthread_mutex_unlock(&log->mu);
		log->vfs->munmap(log->vfs, p, n);
		pthread_mutex_lock(&log->mu);
		did = 1;
	}
	if (seg_writer_wants_spare(&log->w) && !log->spare_busy && !log->stopping) {
		seg_spare s;
		seg_err e;
		size_t size = log->w.seg_bytes;
		int pop = seg_writer_populate(&log->w, log->conf.sync == EDGELOG_SYNC_ALWAYS ?
							       0 :
							       log->conf.sync_interval_ms),
		    rc;
		int recycle = log->ret.recycle_ready;
		uint64_t rbytes = log->ret.recycle_bytes;
		log->spare_busy = 1;
		log->ret.recycle_ready = 0;
		log->ret.recycle_busy = recycle;
		pthread_mutex_unlock(&log->mu);
		rc = 1;
		if (recycle) {
			/* A file retention set aside (eng_compact.c): written
			 * blocks, so its syncs commit no extent conversions. */
			rc = seg_spare_recycle(log->vfs, log->segdir, size, pop, &s, &e);
			if (rc < 0)
				eng_log(&log->conf, EDGELOG_LOG_WARN,
					"%s (making a fresh segment file instead)", e.msg);
		}
		if (rc)
			rc = seg_spare_create(log->vfs, log->segdir, size, pop, &s, &e);
		pthread_mutex_lock(&log->mu);
		log->spare_busy = 0;
		log->ret.recycle_busy = 0;
		log->spare_tries++;
		/* An append that met ENOSPC may wait for this spare. */
		pthread_cond_broadcast(&log->sync_cv);
		if (recycle && !s.recycled)
			seg_writer_forget(&log->w, 0, rbytes); /* removed, not reused */
		if (rc) {
			/* Not at once again (a full disk would keep the
			 * preparer spinning, taking the space an append's
			 * own allocation needs): the next append that
			 * finds no spare, or retention, wakes it. */
			eng_set_error(log, rc, &e);
		} else {
			seg_writer_give_spare(&log->w, &s);
			did = 1;
		}
	}
	return did;
}

static void *prep_main(void *arg)
{
	edgelog *log = arg;

	pthread_mutex_lock(&log->mu);
	while (!log->stopping) {
		if (!prep_work(log))
			pthread_cond_wait(&log->prep_cv, &log->mu);
	}
	pthread_mutex_unlock(&log->mu);
	return NULL;
}

static int step_locked(edgelog *log, int timeout_ms);

int edgelog_step(edgelog *log, int timeout_ms)
{
	int rc, reopen;

	if (!log)
		return EDGELOG_EINVAL;
	pthread_mutex_lock(&log->mu);
	if (log->worker_running) {
		/* The worker does this already; two at once would race. */
		snprintf(log->errmsg, sizeof(log->errmsg),
			 "edgelog_step: the worker started by edgelog_start() is running");
		pthread_mutex_unlock(&log->mu);
		return EDGELOG_ESTATE;
	}
	rc = step_locked(log, timeout_ms);
	reopen = log->guard.cursor_reopen;
	pthread_mutex_unlock(&log->mu);
	if (reopen)
		eng_store_cursor(log);
	snapshot_due(log);
	return rc;
}

/* One round of background work; mu held on entry and on return. */
static int step_locked(edgelog *log, int timeout_ms)
{
	int64_t now, due;
	int rc = 0, did = 0;

	if (log->stopping)
		return 0;
	/* Prepare the next segment ahead of time, so a roll on the append
	 * path is a rename instead of fallocate + page faults. */
	if (!log->prep_running)
		did = prep_work(log);
	eng_guard(log);
	now = log->vfs->mono_ms(log->vfs);
	due = log->sync.last_sync_mono + log->conf.sync_interval_ms;
	if (log->conf.sync == EDGELOG_SYNC_INTERVAL && now >= due && !log->sync.syncing) {
		int r = eng_lead_sync(log);
		if (r && !rc)
			rc = r;
		did = 1;
		due = log->sync.last_sync_mono + log->conf.sync_interval_ms;
	}
	if (log->upload.up && eng_upload_work(log, 0))
		did = 1;
	now = log->vfs->mono_ms(log->vfs);
	if (now >= log->ret.next_compact_mono && !log->ret.compacting) {
		uint64_t used;
		eng_compact(log, ENG_COMPACT_ROUTINE, 0);
		/* Often when near the cap, so drop_oldest frees room before an
		 * append has to; rarely otherwise. */
		used = eng_used_bytes(log);
		log->ret.next_compact_mono =
			now + (used * 10 > log->conf.max_size_bytes * 9 ? 1000 : 10000);
	}
	if (!did && timeout_ms > 0 && !log->stopping) {
		struct timespec ts;
		int64_t wait = timeout_ms;
		now = log->vfs->mono_ms(log->vfs);
		if (log->conf.sync == EDGELOG_SYNC_INTERVAL && due - now < wait)
			wait = due - now > 0 ? due - now : 0;
		if (log->upload.up && log->cur.acked_seq < log->w.next_seq - 1) {
			int64_t u = log->upload.upl_next_mono ? log->upload.upl_next_mono - now :
								(int64_t)log->conf.sync_interval_ms;
			if (u < wait)
				wait = u > 0 ? u : 0;
		}
		/* Not a clock read for logic (that is mono_ms above, through
		 * the seam): pthread_cond_timedwait wants an absolute deadline
		 * on work_cv's own clock, CLOCK_MONOTONIC. A fake seam clock
		 * cannot serve here; only how long the worker sleeps depends on
		 * it, and every decision after waking reads the seam again. */
		if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
			/* No clock to put a deadline on: sleep the wait out
			 * (a wake-up is then late, never lost: the next step
			 * sees the work). */
			struct timespec d = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
			pthread_mutex_unlock(&log->mu);
			nanosleep(&d, NULL);
			pthread_mutex_lock(&log->mu);
			return rc;
		}
		ts.tv_sec += wait / 1000;
		ts.tv_nsec += (wait % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&log->work_cv, &log->mu, &ts);
	}
	return rc;
}

static void *worker_main(void *arg)
{
	edgelog *log = arg;
	int stop = 0;

	pthread_mutex_lock(&log->mu);
	while (!stop) {
		step_locked(log, 1000);
		stop = log->stopping;
		if (!stop) {
			int reopen = log->guard.cursor_reopen;
			pthread_mutex_unlock(&log->mu);
			if (reopen)
				eng_store_cursor(log);
			snapshot_due(log);
			pthread_mutex_lock(&log->mu);
		}
	}
	pthread_mutex_unlock(&log->mu);
	return NULL;
}

int edgelog_start(edgelog *log)
{
	int rc;

	if (!log)
		return EDGELOG_EINVAL;
	pthread_mutex_lock(&log->mu);
	if (log->worker_running || log->stopping) {
		snprintf(log->errmsg, sizeof(log->errmsg), "edgelog_start: worker already running");
		pthread_mutex_unlock(&log->mu);
		return EDGELOG_ESTATE;
	}
	rc = pthread_create(&log->worker, NULL, worker_main, log);
	if (rc == 0) {
		log->worker_running = 1;
		rc = pthread_create(&log->prep, NULL, prep_main, log);
		if (rc == 0)
			log->prep_running = 1;
		rc = 0; /* without the preparer the worker's step does its job */
	}
	pthread_mutex_unlock(&log->mu);
	if (rc)
		return eng_set_msg(log, EDGELOG_ENOMEM, "edgelog_start: pthread_create: %s",
				   strerror(rc));
	return 0;
}

/* ---- acks, cleanup, status ---------------------------------------------- */

int edgelog_ack(edgelog *log, uint64_t seq)
{
	uint64_t last;

	if (!log)
		return EDGELOG_EINVAL;
	pthread_mutex_lock(&log->mu);
	last = log->w.next_seq - 1;
	if (seq > last) {
		snprintf(log->errmsg, sizeof(log->errmsg),
			 "edgelog_ack: seq %llu is beyond the last appended record (%llu)",
			 (unsigned long long)seq, (unsigned long long)last);
		pthread_mutex_unlock(&log->mu);
		return EDGELOG_EINVAL;
	}
	/* Done only once it is durable: an ack whose cursor store failed is
	 * stored again by the next ack at or below it, never reported done. */
	if (seq <= log->durable_acked) {
		pthread_mutex_unlock(&log->mu);
		return 0;
	}
	if (seq > log->cur.acked_seq) {
		log->cur.sent += cur_stored_between(&log->cur, log->cur.acked_seq, seq);
		log->cur.acked_seq = seq;
		cur_gaps_prune(&log->cur);
		log->cur.last_success_at = eng_success_time(log);
		if (log->first_seq <= seq)
			log->first_seq = seq + 1;
	}
	pthread_mutex_unlock(&log->mu);
	return eng_store_cursor(log);
}

int edgelog_cleanup(edgelog *log, int force)
{
	int rc;

	if (!log)
		return EDGELOG_EINVAL;
	/* Acknowledged segments are never kept, so for the log force asks for
	 * nothing more than a pass now; for failed/ it removes dead letters
	 * older than the retention. */
	if (force && (rc = eng_expire_dead(log)))
		return rc;
	pthread_mutex_lock(&log->mu);
	while (log->ret.compacting)
		pthread_cond_wait(&log->sync_cv, &log->mu);
	rc = eng_compact(log, ENG_COMPACT_ROUTINE, 0);
	pthread_mutex_unlock(&log->mu);
	return rc;
}

int edgelog_get_status(edgelog *log, edgelog_status *st)
{
	uint64_t acked, last;

	if (!log || !st)
		return EDGELOG_EINVAL;
	if (eng_status_check(st))
		return eng_set_msg(
			log, EDGELOG_EINVAL,
			"edgelog_get_status: st->version is %u (call edgelog_status_init; "
			"this library knows version %u)",
			st->version, EDGELOG_STATUS_VERSION);
	edgelog_status_init(st);
	pthread_mutex_lock(&log->mu);
	snprintf(st->device_id, sizeof(st->device_id), "%s", log->conf.device_id);
	acked = log->cur.acked_seq;
	last = log->w.next_seq - 1;
	st->pending = cur_stored_between(&log->cur, acked, last);
	st->sent = log->cur.sent;
	st->failed = log->cur.failed;
	st->dropped = log->cur.dropped;
	st->expired = log->cur.expired;
	st->corrupt = log->cur.corrupt;
	st->size_bytes = eng_used_bytes(log);
	st->max_size_bytes = log->conf.max_size_bytes;
	st->segments = log->w.segments;
	st->last_success_at = log->cur.last_success_at;
	st->recovered = log->cur.recovered;
	st->appended = cur_stored_between(&log->cur, 0, last);
	st->first_seq = st->pending ? log->first_seq : 0;
	st->last_seq = last;
	st->acked_seq = acked;
	st->durable_seq = log->w.synced_seq;
	st->torn_tails = log->cur.torn_tails;
	st->torn_bytes = log->cur.torn_bytes;
	st->cursor_resets = log->cur.cursor_resets;
	st->sync_failures = log->cur.sync_failures;
	st->requeued = log->cur.requeued;
	st->appended -= st->requeued < st->appended ? st->requeued : st->appended;
	st->failed_bytes = log->ret.dead_bytes;
	st->alert_pending = log->conf.alert_pending;
	st->alert_size_pct = log->conf.alert_size_pct;
	st->alert_failed = log->conf.alert_failed;
	st->upload_enabled = log->conf.endpoint != NULL;
	memcpy(st->last_error, log->upload.upl_error[0] ? log->upload.upl_error : log->errmsg,
	       sizeof(st->last_error) - 1);
	st->last_error_at = log->upload.upl_error[0] ? log->upload.upl_error_at :
			    log->errmsg[0]           ? log->errmsg_at :
						       0;
	st->poisoned = log->upload.poisoned;
	st->running = 1;
	st->is_connected = log->upload.connected;
	if (log->upload.retry_at_mono) {
		int64_t left = log->upload.retry_at_mono - log->vfs->mono_ms(log->vfs);
		st->retry_in_s = left > 0 ? (uint64_t)(left + 999) / 1000 : 0;
	}
	st->alerts = eng_alert_bits(st);
	pthread_mutex_unlock(&log->mu);
	eng_alerts_update(&log->snap, &log->conf, st);

	/* Age of the oldest pending record: read its frame (outside the lock),
	 * once per cursor position. */
	if (st->pending) {
		int64_t ts = 0;
		pthread_mutex_lock(&log->mu);
		if (log->oldest_for_acked == acked + 1)
			ts = log->oldest_ts_ms;
		pthread_mutex_unlock(&log->mu);
		if (!ts) {
			seg_reader r;
			seg_frame f;
			seg_err e;
			if (seg_reader_init(&r, log->vfs, log->segdir, acked + 1, &e) == 0) {
				if (seg_reader_next(&r, &f, &e) == 0)
					ts = f.ts_ms;
				seg_reader_close(&r);
			}
			pthread_mutex_lock(&log->mu);
			log->oldest_for_acked = acked + 1;
			log->oldest_ts_ms = ts;
			pthread_mutex_unlock(&log->mu);
		}
		if (ts) {
			int64_t age = log->vfs->now_ms(log->vfs) - ts;
			st->oldest_pending_age_s = age > 0 ? (uint64_t)age / 1000 : 0;
		}
	}
	return 0;
}
