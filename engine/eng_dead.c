/*
 * eng_dead.c - dead-letter files (failed/): reading them, the journal that
 * makes moving them back into the log (edgelog_requeue_failed, eng_offline.c)
 * and removing them by age (edgelog_cleanup with force) happen exactly once
 * across crashes, and the expiry itself.
 *
 * Both work one dead-letter segment file of failed/ at a time:
 *
 *   1. failed/JOURNAL is written (temporary file, fsync, rename, fsync of
 *      failed/): the operation, the file, its record count and the value
 *      the cursor's requeued (or dead_expired) counter will have once the
 *      operation is counted. Requeue also notes the first seq it appends.
 *   2. requeue only: the records are appended, seq first_seq + i for record
 *      i, and synced.
 *   3. the cursor takes the new counts (failed down; requeued, or expired
 *      and dead_expired, up) and is stored.
 *   4. the dead-letter file is unlinked, then the journal, each followed by
 *      an fsync of failed/.
 *
 * Those two counters only grow and only these operations move them, so a
 * journal found later tells exactly how far its operation got: the cursor
 * has reached the noted value (step 3 done: finish step 4), or not (for a
 * requeue, append the records whose seqs are missing, then steps 3-4; for
 * an expiry, steps 3-4). Nothing is appended or counted twice.
 *
 * Offers (eng_internal.h): eng_dead_read, eng_dead_free, eng_journal_read,
 * eng_journal_write, eng_journal_count (steps 3 and 4), eng_expire_dead.
 * Below the engine: step 2 (appending) is the engine's (eng_requeue_append,
 * eng_engine.c); this file stores the cursor through eng_sync.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_internal.h"
#include "seg.h"

void eng_dead_free(eng_dead_recs *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		free(d->data[i]);
	free(d->data);
	free(d->len);
	memset(d, 0, sizeof(*d));
}

/* Whether the msgpack object [p, p+n) is the string "data", in any of the
 * string encodings. */
static int is_data_key(const uint8_t *p, size_t n)
{
	size_t h = p[0] >= 0xa0 && p[0] <= 0xbf ? 1 :
		   p[0] == 0xd9                 ? 2 :
		   p[0] == 0xda                 ? 3 :
		   p[0] == 0xdb                 ? 5 :
						  0;

	return h && n == h + 4 && !memcmp(p + h, "data", 4);
}

/* The byte span of the value under key "data" in a dead-letter map. */
static int data_span(const uint8_t *p, size_t len, size_t *off, size_t *n)
{
	size_t pos = 0, entries, i;

	if (!len)
		return -1;
	if ((p[0] & 0xf0) == 0x80) {
		entries = p[0] & 0x0f;
		pos = 1;
	} else if (p[0] == 0xde && len >= 3) {
		entries = (size_t)p[1] << 8 | p[2];
		pos = 3;
	} else {
		return -1;
	}
	for (i = 0; i < entries; i++) {
		size_t klen = seg_mp_next(p + pos, len - pos), vlen;
		int is_data;
		if (!klen)
			return -1;
		is_data = is_data_key(p + pos, klen);
		pos += klen;
		if (!(vlen = seg_mp_next(p + pos, len - pos)))
			return -1;
		if (is_data) {
			*off = pos;
			*n = vlen;
			return 0;
		}
		pos += vlen;
	}
	return -1;
}

/* Read every dead letter of failed/NAME. Damaged frames are skipped (the
 * reader counts them into *corrupt); a record without a data value too. */
int eng_dead_read(edgelog *log, const char *name, eng_dead_recs *d, uint64_t *corrupt, seg_err *e)
{
	char path[4400];
	seg_reader r;
	seg_frame f;
	int rc;

	memset(d, 0, sizeof(*d));
	if (seg_path(path, sizeof(path), log->faileddir, name))
		return seg_fail(e, EDGELOG_EINVAL, "path too long: %s", log->faileddir);
	if ((rc = seg_reader_init(&r, log->vfs, path, 0, e)))
		return rc;
	while ((rc = seg_reader_next(&r, &f, e)) == 0) {
		size_t off, n;
		if (data_span(f.data, f.len, &off, &n) || seg_mp_validate(f.data + off, n)) {
			eng_log(&log->conf, EDGELOG_LOG_WARN,
				"%s: dead letter at offset %" PRIu64 " has no valid data value; "
				"left out",
				path, f.offset);
			(*corrupt)++;
			continue;
		}
		if (d->n == d->cap) {
			size_t cap = d->cap ? 2 * d->cap : 64;
			uint8_t **nd = realloc(d->data, cap * sizeof(*nd));
			size_t *nl = nd ? realloc(d->len, cap * sizeof(*nl)) : NULL;
			if (nd)
				d->data = nd;
			if (!nl) {
				rc = seg_fail(e, EDGELOG_ENOMEM, "out of memory");
				break;
			}
			d->len = nl;
			d->cap = cap;
		}
		if (!(d->data[d->n] = malloc(n ? n : 1))) {
			rc = seg_fail(e, EDGELOG_ENOMEM, "out of memory");
			break;
		}
		memcpy(d->data[d->n], f.data + off, n);
		d->len[d->n++] = n;
		if (f.ts_ms > d->newest_ts)
			d->newest_ts = f.ts_ms;
	}
	*corrupt += r.corrupt;
	seg_reader_close(&r);
	if (rc == EDGELOG_EOF)
		return 0;
	eng_dead_free(d);
	return rc;
}

/* ---- the journal ---------------------------------------------------------- */

static int journal_path(const edgelog *log, char *out, size_t n)
{
	return seg_path(out, n, log->faileddir, ENG_JOURNAL_FILE);
}

int eng_journal_write(edgelog *log, const eng_journal *j, seg_err *e)
{
	char path[4400], text[256];
	int n;

	n = snprintf(text, sizeof(text), "%s %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
		     j->op, j->file, j->n, j->first_seq, j->after, j->keep);
	if (journal_path(log, path, sizeof(path)))
		return seg_fail(e, EDGELOG_EINVAL, "path too long: %s", log->faileddir);
	return seg_write_atomic(log->vfs, path, text, (size_t)n, 0600, log->faileddir, e);
}

/* 0 and *j, 1 if there is no journal, or an error (a journal that does
 * not parse is an error naming it: guessing could count twice). */
int eng_journal_read(edgelog *log, eng_journal *j, seg_err *e)
{
	const seg_vfs *v = log->vfs;
	char path[4400], text[256];
	uint64_t base;
	ssize_t n;
	int fd;

	memset(j, 0, sizeof(*j));
	if (journal_path(log, path, sizeof(path)))
		return seg_fail(e, EDGELOG_EINVAL, "path too long: %s", log->faileddir);
	fd = v->open(v, path, O_RDONLY, 0);
	if (fd == -ENOENT)
		return 1;
	if (fd < 0)
		return seg_fail_errno(e, fd, "open %s", path);
	n = v->pread(v, fd, text, sizeof(text) - 1, 0);
	v->close(v, fd);
	if (n < 0)
		return seg_fail_errno(e, (int)n, "read %s", path);
	text[n] = '\0';
	if (sscanf(text, "%15s %63s %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, j->op, j->file,
		   &j->n, &j->first_seq, &j->after, &j->keep) != 6 ||
	    (strcmp(j->op, "requeue") && strcmp(j->op, "expire")) ||
	    !seg_name_parse(j->file, &base) || j->keep > 1)
		return seg_fail(e, EDGELOG_ECORRUPT,
				"%s: not a journal this version wrote (%zd bytes); move it away "
				"after checking failed/ by hand",
				path, n);
	return 0;
}

/* Step 4: the dead-letter file (unlinked, or kept in DIR/quarantine/
 * when it had damaged frames), then the journal. */
static int journal_finish(edgelog *log, const eng_journal *j, seg_err *e)
{
	const seg_vfs *v = log->vfs;
	char path[4400];
	int r;

	/* Gone already: an earlier run got this far before a crash. */
	if (seg_path(path, sizeof(path), log->faileddir, j->file) == 0 &&
	    v->stat(v, path, NULL, NULL) != -ENOENT) {
		if (j->keep) {
			char stem[128], name[160];
			seg_msg(stem, sizeof(stem), "failed-%s", j->file);
			if ((r = seg_quarantine_move(v, log->conf.dir, log->faileddir, j->file,
						     stem, name, sizeof(name), e)))
				return r;
		} else {
			r = v->unlink(v, path);
			if (r < 0 && r != -ENOENT)
				return seg_fail_errno(e, r, "remove %s", path);
		}
	}
	if ((r = v->fsync_dir(v, log->faileddir)) < 0)
		return seg_fail_errno(e, r, "fsync directory %s", log->faileddir);
	if (journal_path(log, path, sizeof(path)) == 0) {
		r = v->unlink(v, path);
		if (r < 0 && r != -ENOENT)
			return seg_fail_errno(e, r, "unlink %s", path);
	}
	if ((r = v->fsync_dir(v, log->faileddir)) < 0)
		return seg_fail_errno(e, r, "fsync directory %s", log->faileddir);
	return 0;
}

/* Step 3 (unless the cursor shows it done), then step 4. */
int eng_journal_count(edgelog *log, const eng_journal *j, seg_err *e)
{
	int requeue = !strcmp(j->op, "requeue"), rc;

	pthread_mutex_lock(&log->mu);
	if ((requeue ? log->cur.requeued : log->cur.dead_expired) < j->after) {
		log->cur.failed -= j->n < log->cur.failed ? j->n : log->cur.failed;
		if (requeue) {
			log->cur.requeued = j->after;
		} else {
			log->cur.dead_expired = j->after;
			log->cur.expired += j->n;
		}
		pthread_mutex_unlock(&log->mu);
		if ((rc = eng_store_cursor(log))) {
			pthread_mutex_lock(&log->mu);
			seg_msg(e->msg, sizeof(e->msg), "%s", log->errmsg);
			pthread_mutex_unlock(&log->mu);
			return rc;
		}
	} else {
		pthread_mutex_unlock(&log->mu);
	}
	return journal_finish(log, j, e);
}

int eng_expire_dead(edgelog *log)
{
	const seg_vfs *v = log->vfs;
	seg_list l = {0};
	seg_err e = {0};
	int64_t limit;
	size_t i;
	int rc;

	if (!log->faileddir[0])
		return 0;
	limit = v->now_ms(v) - (int64_t)log->conf.retention_days * 86400000;
	pthread_mutex_lock(&log->dead_mu);
	if ((rc = seg_list_read(log->vfs, log->faileddir, &l, &e)))
		goto out;
	/* The newest file may be the uploader's open one: never removed. */
	for (i = 0; i + 1 < l.n; i++) {
		eng_journal j;
		eng_dead_recs d;
		uint64_t corrupt = 0;
		int64_t newest;
		memset(&j, 0, sizeof(j));
		strcpy(j.op, "expire");
		seg_name(j.file, l.base[i]);
		if ((rc = eng_dead_read(log, j.file, &d, &corrupt, &e)))
			break;
		j.n = d.n;
		j.keep = corrupt > 0;
		newest = d.newest_ts;
		eng_dead_free(&d);
		if (newest >= limit)
			break; /* oldest first: the rest are younger */
		pthread_mutex_lock(&log->mu);
		j.after = log->cur.dead_expired + j.n;
		pthread_mutex_unlock(&log->mu);
		if ((rc = eng_journal_write(log, &j, &e)) || (rc = eng_journal_count(log, &j, &e)))
			break;
		eng_log(&log->conf, EDGELOG_LOG_WARN,
			"%s/%s: %" PRIu64 " dead letter(s) older than retention_days removed "
			"(expired)",
			log->faileddir, j.file, j.n);
	}
out:
	pthread_mutex_unlock(&log->dead_mu);
	seg_list_free(&l);
	if (rc) {
		pthread_mutex_lock(&log->mu);
		eng_set_error(log, rc, &e);
		pthread_mutex_unlock(&log->mu);
	}
	return rc;
}
