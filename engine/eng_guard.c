/*
 * eng_guard.c - notice when a file the engine has open (the active segment,
 * the cursor) was removed or replaced under it, by another program or a
 * careless clean-up script, and put it back.
 *
 * Writing on regardless would be silent loss: records appended to a
 * removed file live only in an inode nobody can find, and vanish when the
 * engine exits. So once a second the worker compares each open file with
 * what its path names now. On a mismatch it reports the path (log, errmsg,
 * last_error), moves a file that took the name aside into DIR/quarantine/
 * (never deleted), and:
 *
 *  - segment: writes what the open file holds (header and every frame up
 *    to the end of the data) to the path again, fsyncs it and the
 *    directory, and seals the open one, so the next append starts a new
 *    segment that the directory knows;
 *  - cursor: the next store goes to a fresh file at the path.
 *
 * A deleted file cannot be linked back (linkat refuses an inode with no
 * links), hence the copy. The identity checks and every file operation go
 * through the I/O seam, so the guard runs under the test seams too.
 *
 * Offers: eng_guard (eng_internal.h). State: eng_guard_state.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "eng_internal.h"
#include "seg.h"

/* 1: path names the file open as fd; 0: path is missing; -1: another file
 * has the name; -2: cannot tell (the identity check failed otherwise). */
static int same_file(const seg_vfs *v, int fd, const char *path)
{
	uint64_t a[2], b[2];
	int r;

	if (v->file_id(v, fd, NULL, a) < 0)
		return -2;
	if ((r = v->file_id(v, -1, path, b)) < 0)
		return r == -ENOENT ? 0 : -2;
	return a[0] == b[0] && a[1] == b[1] ? 1 : -1;
}

/* Move the file now at path (in dir) into DIR/quarantine/NAME.replaced.bad
 * (seg_durable.h's naming scheme). to gets where it went. */
static int set_aside(edgelog *log, const char *dir, const char *name, char *to, size_t n,
		     seg_err *e)
{
	char stem[300], qname[320];
	int r;

	seg_msg(stem, sizeof(stem), "%s.replaced", name);
	if ((r = seg_quarantine_move(log->vfs, log->conf.dir, dir, name, stem, qname, sizeof(qname),
				     e)))
		return r;
	seg_msg(to, n, "%s/%s/%s", log->conf.dir, SEG_QUARANTINE_DIR, qname);
	return 0;
}

void eng_guard(edgelog *log)
{
	char path[4400], aside[4500] = "";
	int64_t now;
	int s, r;

	now = log->vfs->mono_ms(log->vfs);
	if (now < log->guard.next_guard_mono)
		return;
	log->guard.next_guard_mono = now + 1000;

	/* The active segment. */
	if (log->w.fd >= 0 && !log->w.suspect &&
	    !seg_path(path, sizeof(path), log->segdir, log->w.name) &&
	    (s = same_file(log->vfs, log->w.fd, path)) <= 0 && s != -2) {
		seg_err we;
		r = s < 0 ? set_aside(log, log->segdir, log->w.name, aside, sizeof(aside), &we) : 0;
		/* Write the open file's content back to path, durably, creating
		 * segments/ again if it went too. */
		if (!r && (r = seg_mkdir_durable(log->vfs, log->segdir, 0700, &we)) > 0)
			r = 0;
		if (!r)
			r = seg_write_atomic(log->vfs, path, log->w.map, log->w.pos, 0600,
					     log->segdir, &we);
		/* Either way the open file gets no more records. */
		seg_writer_set_suspect(&log->w);
		seg_msg(log->errmsg, sizeof(log->errmsg), "%s was %s while in use%s%s; %s", path,
			s < 0 ? "replaced by another file" : "removed",
			aside[0] ? ", the other file moved to " : "", aside,
			r ? "restoring it failed, records written to it since may be lost" :
			    "restored from the open file, writing continues in a new segment");
		if (r)
			seg_msg(log->errmsg + strlen(log->errmsg),
				sizeof(log->errmsg) - strlen(log->errmsg), " (%s)", we.msg);
		eng_log(&log->conf, EDGELOG_LOG_ERROR, "%s", log->errmsg);
	}

	/* The cursor. */
	aside[0] = '\0';
	if (log->cursor_fd >= 0 && !log->guard.cursor_reopen &&
	    (s = same_file(log->vfs, log->cursor_fd, log->cursor_path)) <= 0 && s != -2) {
		seg_err ce;
		r = s < 0 ? set_aside(log, log->conf.dir, CUR_FILE, aside, sizeof(aside), &ce) : 0;
		log->guard.cursor_reopen = 1; /* eng_store_cursor writes a fresh one */
		seg_msg(log->errmsg, sizeof(log->errmsg), "%s was %s while in use%s%s; %s",
			log->cursor_path, s < 0 ? "replaced by another file" : "removed",
			aside[0] ? ", the other file moved to " : "", aside,
			r ? "moving it aside failed" : "writing it again");
		eng_log(&log->conf, EDGELOG_LOG_ERROR, "%s", log->errmsg);
	}
}
