/*
 * eng_lock.c - the buffer directory's exclusive lock: one engine (or
 * offline command that writes) per directory.
 *
 * Offers (eng_internal.h): eng_take_lock, eng_drop_lock, eng_lock_held.
 * The lock is a flock on the directory itself and on DIR/LOCK, which also
 * names the holder's pid for the message a second process gets. Every
 * call goes through the I/O seam. Uses nothing else of the engine.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <unistd.h>

#include "eng_internal.h"

/* The pid written in dir's LOCK (0 if none can be read). */
static long lock_pid(const seg_vfs *v, const char *path)
{
	char buf[32];
	ssize_t n;
	int fd = v->open(v, path, O_RDONLY | O_NOFOLLOW, 0);

	if (fd < 0)
		return 0;
	n = v->pread(v, fd, buf, sizeof(buf) - 1, 0);
	v->close(v, fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

static int locked(const seg_vfs *v, const char *dir, const char *path, seg_err *e)
{
	long pid = lock_pid(v, path);

	if (pid > 0)
		return seg_fail(e, EDGELOG_ELOCKED, "%s is in use by process %ld (lock file %s)",
				dir, pid, path);
	return seg_fail(e, EDGELOG_ELOCKED,
			"%s is in use by another process (its lock file %s is missing or names "
			"no pid)",
			dir, path);
}

int eng_take_lock(const seg_vfs *v, const char *dir, int fds[2], seg_err *e)
{
	char path[4200], buf[32];
	int dfd, fd, r;
	ssize_t n;

	if (seg_path(path, sizeof(path), dir, ENG_LOCK_FILE))
		return seg_fail(e, EDGELOG_EINVAL, "path too long: %s", dir);
	/* The lock is on the directory itself: a file can be unlinked and
	 * recreated under a running engine (rm DIR/LOCK), letting a second
	 * one in to overwrite its records; the directory cannot be replaced
	 * while it holds our files. */
	dfd = v->open(v, dir, O_RDONLY, 0);
	if (dfd < 0)
		return seg_fail_errno(e, dfd, "open directory %s", dir);
	r = v->lock(v, dfd);
	if (r == -EWOULDBLOCK || r == -EAGAIN) {
		v->close(v, dfd);
		return locked(v, dir, path, e);
	}
	if (r < 0) {
		v->close(v, dfd);
		return seg_fail_errno(e, r, "lock %s", dir);
	}
	/* LOCK is locked too (older versions and outside tools look there)
	 * and names our pid for the message above. Never followed. */
	fd = v->open(v, path, O_RDWR | O_CREAT | O_NOFOLLOW, 0600);
	if (fd < 0) {
		v->close(v, dfd);
		if (fd == -ELOOP)
			return seg_fail(e, EDGELOG_EPERM, "%s is a symbolic link; not followed",
					path);
		return seg_fail_errno(e, fd, "open %s", path);
	}
	r = v->lock(v, fd);
	if (r == -EWOULDBLOCK || r == -EAGAIN) {
		v->close(v, fd);
		v->close(v, dfd);
		return locked(v, dir, path, e);
	}
	if (r < 0) {
		v->close(v, fd);
		v->close(v, dfd);
		return seg_fail_errno(e, r, "lock %s", path);
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	v->ftruncate(v, fd, 0);
	v->pwrite(v, fd, buf, (size_t)n, 0);
	fds[0] = dfd;
	fds[1] = fd;
	return 0;
}

int eng_lock_held(const seg_vfs *v, const char *dir, long *pid)
{
	char path[4200];
	int held = 0, i, fd;

	*pid = 0;
	if (seg_path(path, sizeof(path), dir, ENG_LOCK_FILE))
		return 0;
	/* The same two locks the engine takes, tried and released at once
	 * (closing the descriptor drops it). */
	for (i = 0; i < 2 && !held; i++) {
		fd = v->open(v, i ? path : dir, O_RDONLY | (i ? O_NOFOLLOW : 0), 0);
		if (fd < 0)
			continue;
		held = v->lock(v, fd) == -EWOULDBLOCK;
		v->close(v, fd);
	}
	if (held)
		*pid = lock_pid(v, path);
	return held;
}

void eng_drop_lock(const seg_vfs *v, int fds[2])
{
	/* Closing the descriptors releases the locks. */
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0) {
			v->close(v, fds[i]);
			fds[i] = -1;
		}
}
