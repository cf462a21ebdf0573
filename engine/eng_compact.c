/*
 * eng_compact.c - the engine runs retention: gathers the sealed segments,
 * asks the compactor which go, and removes them in the one safe order:
 *
 *   1. the cursor, moved past every removed record and carrying the new
 *      counts, is stored and fdatasynced;
 *   2. the segment files are unlinked, oldest first;
 *   3. the segments directory is fsynced.
 *
 * A crash after 1 leaves segments the cursor has passed: the next pass
 * removes them as acknowledged, counting nothing twice. A crash before 1
 * changes nothing. Removing unacknowledged records is always a named
 * policy (expired, dropped), counted and logged with its seq range.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmp.h"
#include "eng_internal.h"
#include "seg_dir.h"

/* Sealed segments of dir (every one but the newest), oldest first, with
 * the bounds their successors' headers give. No lock needed: read-only. */
static int gather(const seg_vfs *v, const char *dir, cmp_seg **out, size_t *n, char (**names)[32],
		  seg_err *e)
{
	seg_list l = {0};
	cmp_seg *s = NULL;
	size_t i, k = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = seg_list_read(v, dir, &l, e)))
		return rc;
	if (l.n < 2) {
		seg_list_free(&l);
		return 0;
	}
	s = calloc(l.n, sizeof(*s));
	*names = calloc(l.n, sizeof(**names));
	if (!s || !*names) {
		free(s);
		free(*names);
		seg_list_free(&l);
		return seg_fail(e, EDGELOG_ENOMEM, "out of memory");
	}
	for (i = 0; i + 1 < l.n; i++) {
		char path[4400], next[4400];
		uint8_t hb[SEG_HEADER_SIZE];
		seg_header h;
		uint64_t alloc = 0;
		int fd;

		seg_name((*names)[k], l.base[i]);
		seg_name(next, l.base[i + 1]);
		if (seg_path(path, sizeof(path), dir, next))
			continue;
		/* The successor's header bounds this segment's newest record. */
		fd = v->open(v, path, O_RDONLY, 0);
		if (fd < 0)
			break;
		if (v->pread(v, fd, hb, sizeof(hb), 0) != (ssize_t)sizeof(hb) ||
		    seg_header_decode(hb, &h) != SEG_OK) {
			/* Unreadable successor: no safe age bound; stop here (only a
			 * prefix is ever removed). */
			v->close(v, fd);
			break;
		}
		v->close(v, fd);
		if (seg_path(path, sizeof(path), dir, (*names)[k]) ||
		    v->stat(v, path, NULL, &alloc))
			break;
		s[k].base = l.base[i];
		s[k].last = l.base[i + 1] - 1;
		s[k].newest_wall_ms = h.base_ts_ms;
		s[k].newest_age_ms = h.age_ms;
		s[k].bytes = alloc;
		k++;
	}
	seg_list_free(&l);
	*out = s;
	*n = k;
	return 0;
}

int eng_compact(edgelog *log, uint64_t need)
{
	const seg_vfs *v = log->vfs;
	cmp_seg *segs = NULL;
	cmp_action *act = NULL;
	char(*names)[32] = NULL;
	cmp_policy p;
	size_t n = 0, k, i;
	uint64_t new_acked, freed = 0, lost_expired = 0, lost_dropped = 0;
	uint64_t dead;
	int dead_rc;
	seg_err e;
	int rc = 0;

	if (log->compacting)
		return 0;
	log->compacting = 1;
	pthread_mutex_unlock(&log->mu);

	rc = gather(v, log->segdir, &segs, &n, &names, &e);
	dead = 0;
	dead_rc = log->faileddir[0] ? eng_dir_bytes(v, log->faileddir, &dead) : 0;
	if (dead_rc < 0)
		eng_log(&log->conf, EDGELOG_LOG_ERROR, "list %s: %s (keeping the last size)",
			log->faileddir, strerror(-dead_rc));

	pthread_mutex_lock(&log->mu);
	/* A listing that failed keeps the last known size: counting the
	 * dead letters as 0 bytes would let the directory outgrow its cap. */
	if (!dead_rc)
		log->dead_bytes = dead;
	/* The writer may not start a segment that would break the cap. */
	{
		uint64_t other = log->dead_bytes + CUR_FILE_SIZE;
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

	/* Step 1: the cursor passes every removed record, with the counts. */
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
		if (lost)
			eng_log(&log->conf, EDGELOG_LOG_WARN,
				"%s: %llu unacknowledged record(s), seq %llu..%llu, removed: %s",
				names[a->idx], (unsigned long long)lost, (unsigned long long)lo + 1,
				(unsigned long long)a->lost_hi,
				a->reason == CMP_EXPIRED ?
					"older than retention_days (expired)" :
					"over max_size_mb, full_policy=drop_oldest "
					"(dropped)");
		if (segs[a->idx].last > new_acked)
			new_acked = segs[a->idx].last;
		freed += segs[a->idx].bytes;
	}
	log->cur.expired += lost_expired;
	log->cur.dropped += lost_dropped;
	if (new_acked > log->cur.acked_seq) {
		log->cur.acked_seq = new_acked;
		cur_gaps_prune(&log->cur);
	}
	if (log->first_seq <= new_acked)
		log->first_seq = new_acked + 1;
	pthread_mutex_unlock(&log->mu);
	rc = eng_store_cursor(log);
	if (!rc) {
		/* Steps 2 and 3. */
		char path[4400];
		size_t done = 0;
		for (i = 0; i < k; i++) {
			int r;
			if (seg_path(path, sizeof(path), log->segdir, names[act[i].idx]))
				continue;
			r = v->unlink(v, path);
			if (r < 0 && r != -ENOENT) {
				rc = seg_fail_errno(&e, r, "unlink %s", path);
				break;
			}
			done++;
		}
		if (done) {
			int r = v->fsync_dir(v, log->segdir);
			if (r < 0 && !rc)
				rc = seg_fail_errno(&e, r, "fsync directory %s", log->segdir);
		}
		pthread_mutex_lock(&log->mu);
		seg_writer_forget(&log->w, done, freed);
	} else {
		pthread_mutex_lock(&log->mu);
		snprintf(e.msg, sizeof(e.msg), "%s", log->errmsg);
	}
out:
	if (rc)
		eng_set_error(log, rc, &e);
	free(act);
	free(segs);
	free(names);
	log->compacting = 0;
	pthread_cond_broadcast(&log->sync_cv);
	return rc;
}
