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
 * links), hence the copy. Only on the real file system: the checks compare
 * inode numbers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "eng_internal.h"

/* 1: path names the file open as fd; 0: path is missing; -1: another file
 * has the name; -2: cannot tell (stat failed otherwise). */
static int same_file(int fd, const char *path)
{
	struct stat a, b;

	if (fstat(fd, &a) < 0)
		return -2;
	if (stat(path, &b) < 0)
		return errno == ENOENT ? 0 : -2;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino ? 1 : -1;
}

static int fsync_dir_path(const char *dir)
{
	return seg_vfs_posix()->fsync_dir(seg_vfs_posix(), dir);
}

/* Move the file now at path into DIR/quarantine/NAME.replaced-<unix s>. */
static int set_aside(edgelog *log, const char *path, const char *name, char *to, size_t n)
{
	char qdir[4300];

	if (seg_path(qdir, sizeof(qdir), log->conf.dir, "quarantine"))
		return -ENAMETOOLONG;
	if (mkdir(qdir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if ((size_t)snprintf(to, n, "%s/%s.replaced-%lld", qdir, name, (long long)time(NULL)) >= n)
		return -ENAMETOOLONG;
	if (rename(path, to) < 0)
		return -errno;
	return fsync_dir_path(qdir);
}

/* Write the open file's content back to path, through a temporary, durably
 * (creating the directory again if it went too). */
static int write_copy(const char *dir, const char *path, const void *buf, size_t len, seg_err *e)
{
	if (mkdir(dir, 0700) == 0) {
		char parent[4400], *slash;
		snprintf(parent, sizeof(parent), "%s", dir);
		slash = strrchr(parent, '/');
		if (slash && slash != parent) {
			*slash = '\0';
			fsync_dir_path(parent);
		}
	}
	return eng_write_atomic(seg_vfs_posix(), path, buf, len, 0600, dir, e);
}

void eng_guard(edgelog *log)
{
	char path[4400], aside[4500] = "";
	int64_t now;
	int s, r;

	if (log->vfs != seg_vfs_posix())
		return;
	now = log->vfs->mono_ms(log->vfs);
	if (now < log->next_guard_mono)
		return;
	log->next_guard_mono = now + 1000;

	/* The active segment. */
	if (log->w.fd >= 0 && !log->w.suspect &&
	    !seg_path(path, sizeof(path), log->segdir, log->w.name) &&
	    (s = same_file(log->w.fd, path)) <= 0 && s != -2) {
		seg_err we;
		r = s < 0 ? set_aside(log, path, log->w.name, aside, sizeof(aside)) : 0;
		if (r)
			seg_fail_errno(&we, r, "moving it to quarantine/");
		else
			r = write_copy(log->segdir, path, log->w.map, log->w.pos, &we);
		/* Either way the open file gets no more records. */
		log->w.suspect = 1;
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
	if (log->cursor_fd >= 0 && !log->cursor_reopen &&
	    (s = same_file(log->cursor_fd, log->cursor_path)) <= 0 && s != -2) {
		r = s < 0 ? set_aside(log, log->cursor_path, CUR_FILE, aside, sizeof(aside)) : 0;
		log->cursor_reopen = 1; /* eng_store_cursor writes a fresh one */
		seg_msg(log->errmsg, sizeof(log->errmsg), "%s was %s while in use%s%s; %s",
			log->cursor_path, s < 0 ? "replaced by another file" : "removed",
			aside[0] ? ", the other file moved to " : "", aside,
			r ? "moving it aside failed" : "writing it again");
		eng_log(&log->conf, EDGELOG_LOG_ERROR, "%s", log->errmsg);
	}
}
