/*
 * seg_durable.c - durable file operations (seg_durable.h): write-all,
 * atomic replace, durable mkdir, quarantine. Each "why" of an fsync or a
 * rename is next to it.
 */
#include "seg_durable.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "seg_dir.h"
#include "seg_lost.h"

#define DUR_PATH 4608

int seg_write_all(const seg_vfs *v, int fd, const void *buf, size_t n, uint64_t off,
		  const char *path, seg_err *e)
{
	const uint8_t *p = buf;
	ssize_t w;

	while (n) {
		w = v->pwrite(v, fd, p, n, off);
		if (w < 0)
			return seg_fail_errno(e, (int)w, "write %s", path);
		if (w == 0)
			return seg_fail(e, EDGELOG_EIO, "write %s: no progress", path);
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

int seg_write_atomic(const seg_vfs *v, const char *path, const void *buf, size_t n, int mode,
		     const char *durable_dir, seg_err *e)
{
	char tmp[DUR_PATH];
	int fd, r;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return seg_fail(e, EDGELOG_EINVAL, "path too long: %s", path);
	/* A temporary left by a writer that died, or a symlink planted there:
	 * unlink removes the entry itself, never what a link points to. If
	 * someone recreates it between here and the open, O_EXCL refuses. */
	r = v->unlink(v, tmp);
	if (r < 0 && r != -ENOENT)
		return seg_fail_errno(e, r, "remove stale %s", tmp);
	fd = v->open(v, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode & 0777);
	if (fd < 0)
		return seg_fail_errno(e, fd, "create %s", tmp);
	/* The mode asked for, not the umask's cut of it. */
	if ((r = v->fchmod(v, fd, mode & 0777)) < 0)
		r = seg_fail_errno(e, r, "chmod %s", tmp);
	if (!r)
		r = seg_write_all(v, fd, buf, n, 0, tmp, e);
	/* The content must be on disk before the name points at it, or a
	 * power cut could leave path naming an empty file. */
	if (!r && durable_dir && (r = v->fsync(v, fd)) < 0)
		r = seg_fail_errno(e, r, "fsync %s", tmp);
	v->close(v, fd);
	if (!r && (r = v->rename(v, tmp, path)) < 0)
		r = seg_fail_errno(e, r, "rename %s to %s", tmp, path);
	if (r) {
		v->unlink(v, tmp);
		return r;
	}
	/* The rename itself is durable only once the directory is. */
	if (durable_dir && (r = v->fsync_dir(v, durable_dir)) < 0)
		return seg_fail_errno(e, r, "fsync directory %s", durable_dir);
	return 0;
}

/* The directory holding path ("." for a bare name, "/" at the top). */
static void parent_of(const char *path, char *out, size_t n)
{
	char *slash;

	seg_msg(out, n, "%s", path);
	slash = strrchr(out, '/');
	while (slash && slash != out && slash[1] == '\0') { /* "a/b/" */
		*slash = '\0';
		slash = strrchr(out, '/');
	}
	if (!slash)
		seg_msg(out, n, ".");
	else if (slash == out)
		out[1] = '\0';
	else
		*slash = '\0';
}

int seg_mkdir_durable(const seg_vfs *v, const char *path, int mode, seg_err *e)
{
	char parent[DUR_PATH];
	int r;

	r = v->mkdir(v, path, mode);
	if (r < 0) {
		/* An existing directory is fine whatever mkdir says (a
		 * read-only file system may answer EROFS before EEXIST). */
		if (r == -EEXIST || v->stat(v, path, NULL, NULL) == 0)
			return 0;
		return seg_fail_errno(e, r, "mkdir %s", path);
	}
	/* The new name must survive a power cut before anything relies on
	 * what goes into the directory. */
	parent_of(path, parent, sizeof(parent));
	if ((r = v->fsync_dir(v, parent)) < 0)
		return seg_fail_errno(e, r, "fsync directory %s", parent);
	return 1;
}

int seg_mkdir_p(const seg_vfs *v, const char *path, int mode, seg_err *e)
{
	char buf[DUR_PATH];
	size_t i, n = strlen(path);
	int r, created = 0;

	if (n >= sizeof(buf))
		return seg_fail(e, EDGELOG_EINVAL, "path too long: %s", path);
	memcpy(buf, path, n + 1);
	for (i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		if (buf[i - 1] == '/')
			continue; /* "a//b" */
		buf[i] = '\0';
		if ((r = seg_mkdir_durable(v, buf, mode, e)) < 0)
			return r;
		created |= r;
		buf[i] = path[i];
	}
	return created;
}

/* DIR/quarantine/, created durably if missing. */
static int qdir_ready(const seg_vfs *v, const char *dir, char *qdir, seg_err *e)
{
	int r;

	if (seg_path(qdir, DUR_PATH, dir, SEG_QUARANTINE_DIR))
		return seg_fail(e, EDGELOG_EINVAL, "path too long: %s", dir);
	r = seg_mkdir_durable(v, qdir, 0700, e);
	return r < 0 ? r : 0;
}

/* A name in qdir not yet taken: stem.bad, else stem.1.bad, ... */
static int free_name(const seg_vfs *v, const char *qdir, const char *stem, char *name,
		     size_t namesz, char *path, seg_err *e)
{
	int k, r;

	for (k = 0; k < 10000; k++) {
		if ((size_t)(k ? snprintf(name, namesz, "%s.%d.bad", stem, k) :
				 snprintf(name, namesz, "%s.bad", stem)) >= namesz ||
		    seg_path(path, DUR_PATH, qdir, name))
			return seg_fail(e, EDGELOG_EINVAL, "name too long: %s/%s", qdir, stem);
		{
			/* lstat semantics: a dangling symlink takes the name too. */
			uint64_t id[2];
			r = v->file_id(v, -1, path, id);
		}
		if (r == -ENOENT)
			return 0;
		if (r < 0)
			return seg_fail_errno(e, r, "stat %s", path);
	}
	return seg_fail(e, EDGELOG_EIO, "%s: too many files named %s.*.bad", qdir, stem);
}

int seg_quarantine_move(const seg_vfs *v, const char *dir, const char *from_dir,
			const char *from_name, const char *stem, char *name, size_t namesz,
			seg_err *e)
{
	char qdir[DUR_PATH], src[DUR_PATH], dst[DUR_PATH];
	int r;

	if (seg_path(src, sizeof(src), from_dir, from_name))
		return seg_fail(e, EDGELOG_EINVAL, "path too long: %s/%s", from_dir, from_name);
	if ((r = qdir_ready(v, dir, qdir, e)) ||
	    (r = free_name(v, qdir, stem, name, namesz, dst, e)))
		return r;
	if ((r = v->rename(v, src, dst)) < 0)
		return seg_fail_errno(e, r, "rename %s to %s", src, dst);
	/* Both entries must be durable: the new one before the old one is
	 * known gone, so a power cut between the two leaves the file in
	 * both places (harmless), never in neither. */
	if ((r = v->fsync_dir(v, qdir)) < 0)
		return seg_fail_errno(e, r, "fsync directory %s", qdir);
	if ((r = v->fsync_dir(v, from_dir)) < 0)
		return seg_fail_errno(e, r, "fsync directory %s", from_dir);
	return 0;
}

int seg_quarantine_bytes(const seg_vfs *v, const char *dir, const char *stem, const void *data,
			 size_t len, char *name, size_t namesz, seg_err *e)
{
	char qdir[DUR_PATH], path[DUR_PATH];
	int fd, r;

	if ((r = qdir_ready(v, dir, qdir, e)) ||
	    (r = free_name(v, qdir, stem, name, namesz, path, e)))
		return r;
	fd = v->open(v, path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
	if (fd < 0)
		return seg_fail_errno(e, fd, "create %s", path);
	r = seg_write_all(v, fd, data, len, 0, path, e);
	/* The copy is durable before the caller changes the original. */
	if (!r && (r = v->fsync(v, fd)) < 0)
		r = seg_fail_errno(e, r, "fdatasync %s", path);
	v->close(v, fd);
	if (!r && (r = v->fsync_dir(v, qdir)) < 0)
		r = seg_fail_errno(e, r, "fsync directory %s", qdir);
	return r;
}
