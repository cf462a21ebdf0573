/*
 * eng_offline.c - edgelog_requeue_failed: the offline command that opens
 * an engine on the directory and moves every dead letter of failed/ back
 * into the log, one file at a time, through the journal of eng_dead.c
 * (which explains the steps and why each happens exactly once).
 *
 * Offers: edgelog_requeue_failed, eng_requeue_failed_vfs (eng_internal.h).
 * Above the engine: opens, appends (eng_requeue_append) and closes one.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "eng_internal.h"
#include "seg.h"

int edgelog_requeue_failed(const char *dir)
{
	return eng_requeue_failed_vfs(dir, seg_vfs_posix());
}

int eng_requeue_failed_vfs(const char *dir, const seg_vfs *vfs)
{
	edgelog_config cfg;
	edgelog *log;
	seg_list l = {0};
	seg_err e = {0};
	uint64_t total = 0, corrupt = 0;
	size_t i;
	int rc;

	/* The environment's settings (the cap, the sync mode), this dir, no
	 * upload: the requeued records go out with the next engine. */
	edgelog_config_init(&cfg);
	if ((rc = edgelog_config_from_env(&cfg)))
		return rc;
	if (dir)
		cfg.dir = dir;
	cfg.endpoint = NULL;
	cfg.auth_token = cfg.auth_token_file = NULL;
	if ((rc = eng_open_vfs(&log, &cfg, vfs))) /* finishes an interrupted one */
		return rc;
	if ((rc = seg_list_read(log->vfs, log->faileddir, &l, &e)))
		goto out;
	for (i = 0; i < l.n; i++) {
		eng_journal j;
		eng_dead_recs d;
		memset(&j, 0, sizeof(j));
		strcpy(j.op, "requeue");
		seg_name(j.file, l.base[i]);
		{
			uint64_t before = corrupt;
			if ((rc = eng_dead_read(log, j.file, &d, &corrupt, &e)))
				goto out;
			j.keep = corrupt > before;
		}
		j.n = d.n;
		pthread_mutex_lock(&log->mu);
		j.first_seq = log->w.next_seq;
		j.after = log->cur.requeued + d.n;
		pthread_mutex_unlock(&log->mu);
		rc = eng_journal_write(log, &j, &e);
		if (!rc)
			rc = eng_requeue_append(log, &j, &d, &e);
		if (!rc)
			rc = eng_journal_count(log, &j, &e);
		eng_dead_free(&d);
		if (rc)
			goto out;
		total += j.n;
	}
out:
	seg_list_free(&l);
	{
		int rc2 = edgelog_close(log);
		if (!rc && rc2)
			return rc2; /* errmsg already set by close */
	}
	if (rc)
		return eng_tls_error(rc, "%s", e.msg);
	eng_tls_error(0, "%" PRIu64 " dead letter(s) requeued%s", total,
		      corrupt ? " (some damaged ones left out; see the log)" : "");
	return 0;
}
