/*
 * eng_compact.c - the engine's side of retention: when it runs is the
 * caller's (the worker's schedule, an append that met the cap,
 * edgelog_cleanup); what it does on disk is the compactor's
 * (compactor/include/cmp.h: gather, plan, then cursor -> unlink -> directory
 * fsync, through the I/O seam). This file gives the compactor the policy's
 * figures, counts what a pass costs into the cursor (expired, dropped:
 * logged with their seq range), hands it the cursor store as its step 1,
 * and takes what was really removed off the size accounting. Removing
 * unacknowledged records is always a named policy.
 *
 * Offers (eng_internal.h): eng_compact. State: eng_retention (log->ret)
 * under mu. Calls eng_sync
 * (eng_store_cursor), eng_space and eng_config; nothing calls back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmp.h"
#include "eng_internal.h"

/* The compactor's step 1: the cursor (already moved under mu) made
 * durable. Called without mu. */
static int commit_cursor(void *ud, seg_err *e)
{
	edgelog *log = ud;
	int rc = eng_store_cursor(log);

	if (rc) {
		pthread_mutex_lock(&log->mu);
		snprintf(e->msg, sizeof(e->msg), "%s", log->errmsg);
		pthread_mutex_unlock(&log->mu);
	}
	return rc;
}

/* Space is wanted (an allocation met ENOSPC): segments/.recycle, an
 * acknowledged segment's file set aside for the next spare, holds no
 * record; it goes before anything else. Not while the preparer is making
 * it a spare (the caller waits for that first). Called with mu held;
 * drops it around the unlink. */
static void free_recycled(edgelog *log)
{
	char path[4400];
	uint64_t bytes = log->ret.recycle_bytes;
	int r;

	if (!log->ret.recycle_ready || log->ret.recycle_busy ||
	    seg_path(path, sizeof(path), log->segdir, SEG_RECYCLE_NAME))
		return;
	log->ret.recycle_ready = 0;
	pthread_mutex_unlock(&log->mu);
	r = log->vfs->unlink(log->vfs, path);
	pthread_mutex_lock(&log->mu);
	if (r < 0 && r != -ENOENT) {
		/* Still there, still counted: the next pass tries again. */
		log->ret.recycle_ready = 1;
		eng_log(&log->conf, EDGELOG_LOG_WARN, "unlink %s: %s", path, strerror(-r));
		return;
	}
	/* No directory fsync: a .recycle that comes back after a power cut
	 * is removed at open. */
	seg_writer_forget(&log->w, 0, bytes);
	eng_log(&log->conf, EDGELOG_LOG_INFO,
		"%s: removed (%llu bytes, no record) to make room on a full file system", path,
		(unsigned long long)bytes);
}

int eng_compact(edgelog *log, int mode, uint64_t need)
{
	seg_err e;
	const seg_vfs *v = log->vfs;
	cmp_seg *segs = NULL;
	cmp_action *act = NULL;
	cmp_policy p;
	cmp_done done;
	const char *recycle_as = NULL;
	size_t n = 0, k, i;
	uint64_t new_acked, lost_expired = 0, lost_dropped = 0;
	uint64_t dead;
	int dead_rc;
	int rc = 0;

	if (log->ret.compacting)
		return 0;
	log->ret.compacting = 1;
	if (mode != ENG_COMPACT_ROUTINE)
		free_recycled(log);
	if (mode != ENG_COMPACT_DROP)
		need = 0;
	pthread_mutex_unlock(&log->mu);

	rc = cmp_gather(v, log->segdir, &segs, &n, &e);
	dead = 0;
	dead_rc = log->faileddir[0] ? eng_dir_bytes(v, log->faileddir, &dead) : 0;
	if (dead_rc < 0)
		eng_log(&log->conf, EDGELOG_LOG_ERROR, "list %s: %s (keeping the last size)",
			log->faileddir, strerror(-dead_rc));

	pthread_mutex_lock(&log->mu);
	/* A listing that failed keeps the last known size: counting the
	 * dead letters as 0 bytes would let the directory outgrow its cap. */
	if (!dead_rc)
		log->ret.dead_bytes = dead;
	/* The writer may not start a segment that would break the cap. */
	{
		uint64_t other = log->ret.dead_bytes + CUR_FILE_SIZE;
		seg_writer_set_cap(&log->w, log->conf.max_size_bytes > other ?
						    log->conf.max_size_bytes - other :
						    1);
	}
	if (rc || !n)
		goto out;
	act = calloc(n, sizeof(*act));
	if (!act) {
		rc = seg_fail(&e, EDGELOG_ENOMEM, "out of memory");
		goto out;
	}
	memset(&p, 0, sizeof(p));
	p.acked_seq = log->durable_acked < log->cur.acked_seq ? log->durable_acked :
								log->cur.acked_seq;
	p.now_wall_ms = v->now_ms(v);
	p.now_age_ms = eng_age_now(log);
	p.retention_ms = (int64_t)log->conf.retention_days * 86400000;
	p.used_bytes = eng_used_bytes(log);
	p.drop_oldest = log->conf.full_policy == EDGELOG_FULL_DROP_OLDEST;
	/* Keep room for the next segment, plus whatever an allocation that
	 * just failed needs. */
	{
		uint64_t room = (uint64_t)log->conf.segment_bytes + need;
		p.target_bytes = log->conf.max_size_bytes > room ? log->conf.max_size_bytes - room :
								   1;
		/* need > 0: an allocation met ENOSPC, the file system filled
		 * before the cap. drop_oldest then frees need bytes below what is
		 * used now, whatever the cap says: dropping (counted) instead of
		 * refusing new records. */
		if (need && p.drop_oldest) {
			uint64_t t = p.used_bytes > need ? p.used_bytes - need : 1;
			if (t < p.target_bytes)
				p.target_bytes = t;
		}
	}
	k = cmp_plan(segs, n, &p, act);
	if (!k)
		goto out;

	/* The cursor passes every removed record, with the counts (stored by
	 * the compactor's step 1, below). */
	new_acked = log->cur.acked_seq;
	for (i = 0; i < k; i++) {
		const cmp_action *a = &act[i];
		uint64_t lo = a->lost_lo > log->cur.acked_seq ? a->lost_lo : log->cur.acked_seq;
		uint64_t lost =
			a->reason == CMP_ACKED ? 0 : cur_stored_between(&log->cur, lo, a->lost_hi);
		if (a->reason == CMP_EXPIRED)
			lost_expired += lost;
		if (a->reason == CMP_DROPPED)
			lost_dropped += lost;
		if (lost) {
			char name[SEG_NAME_LEN + 1];
			seg_name(name, segs[a->idx].base);
			eng_log(&log->conf, EDGELOG_LOG_WARN,
				"%s: %llu unacknowledged record(s), seq %llu..%llu, removed: %s",
				name, (unsigned long long)lost, (unsigned long long)lo + 1,
				(unsigned long long)a->lost_hi,
				a->reason == CMP_EXPIRED ? "older than retention_days (expired)" :
				need ? "the file system is full, full_policy=drop_oldest (dropped)" :
				       "over max_size_mb, full_policy=drop_oldest (dropped)");
		}
		if (segs[a->idx].last > new_acked)
			new_acked = segs[a->idx].last;
	}
	log->cur.expired += lost_expired;
	log->cur.dropped += lost_dropped;
	if (new_acked > log->cur.acked_seq) {
		log->cur.acked_seq = new_acked;
		cur_gaps_prune(&log->cur);
	}
	if (log->first_seq <= new_acked)
		log->first_seq = new_acked + 1;
	/* Recycling (FORMAT.md, "Recycled segments"): the oldest removed
	 * segment, if every record in it is acknowledged, becomes
	 * segments/.recycle for the writer's next spare instead of being
	 * unlinked: its blocks are written already, so writing it again
	 * commits nothing to the file system's journal. One at a time, never
	 * when space is wanted (an allocation met ENOSPC, or what is left
	 * after this pass plus it would not leave room for the next segment
	 * under the cap): its bytes stay counted until it is reused. */
	if (log->conf.segment_reuse && mode == ENG_COMPACT_ROUTINE && !log->ret.recycle_ready &&
	    !log->ret.recycle_busy && act[0].reason == CMP_ACKED &&
	    segs[act[0].idx].size == log->conf.segment_bytes) {
		/* A segment sealed by age had its unused tail punched: the
		 * preparer allocates it again, so it counts whole here. */
		uint64_t freed = 0;
		for (i = 0; i < k; i++)
			freed += segs[act[i].idx].bytes;
		if (p.used_bytes - (freed < p.used_bytes ? freed : p.used_bytes) +
			    log->conf.segment_bytes <=
		    p.target_bytes)
			recycle_as = SEG_RECYCLE_NAME; /* one pass at a time (compacting) */
	}
	pthread_mutex_unlock(&log->mu);
	/* A failed cursor store removes nothing (the counts stay in memory,
	 * and the next store writes them); a failed unlink or directory fsync
	 * keeps the segments it did not remove counted against the cap, and
	 * the next pass removes them as acknowledged (cmp.h). */
	rc = cmp_execute(v, log->segdir, segs, act, k, recycle_as, commit_cursor, log, &done, &e);
	pthread_mutex_lock(&log->mu);
	seg_writer_forget(&log->w, done.removed, done.freed);
	if (recycle_as) {
		log->ret.recycle_ready = done.recycled;
		log->ret.recycle_bytes = done.recycled_bytes;
		if (done.recycled)
			pthread_cond_signal(&log->prep_cv);
	}
out:
	if (rc)
		eng_set_error(log, rc, &e);
	free(act);
	free(segs);
	log->ret.compacting = 0;
	pthread_cond_broadcast(&log->sync_cv);
	return rc;
}
