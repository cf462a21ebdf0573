/*
 * seg_vfs.h - the I/O seam: every file operation and every clock reading of
 * edgelog goes through one table of function pointers.
 *
 * Production uses seg_vfs_posix(). Tests fill the table with fault
 * injectors (ENOSPC, EIO, short writes on the Nth call), a fake clock, or an
 * in-memory file system that forgets whatever was not synced ("power
 * loss"). Nothing in the engine is compiled differently for tests.
 *
 * Conventions: calls return >= 0 on success and -errno on failure (never
 * set errno as their result). Paths are absolute or relative to the
 * process's working directory, exactly as the engine built them.
 */
#ifndef SEG_VFS_H
#define SEG_VFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct seg_vfs seg_vfs;

#define SEG_POPULATE_NONE 0
#define SEG_POPULATE_READ 1
#define SEG_POPULATE_WRITE 2

/* Called once per directory entry by list(); return non-zero to stop. */
typedef int (*seg_list_fn)(void *ud, const char *name);

struct seg_vfs {
	void *ctx; /* the implementation's state */

	/* open(2) flags O_RDONLY / O_RDWR / O_CREAT / O_EXCL / O_TRUNC; returns fd. */
	int (*open)(const seg_vfs *v, const char *path, int flags, int mode);
	int (*close)(const seg_vfs *v, int fd);
	ssize_t (*pread)(const seg_vfs *v, int fd, void *buf, size_t n, uint64_t off);
	ssize_t (*pwrite)(const seg_vfs *v, int fd, const void *buf, size_t n, uint64_t off);
	/* fdatasync(2). */
	int (*fsync)(const seg_vfs *v, int fd);
	int (*ftruncate)(const seg_vfs *v, int fd, uint64_t len);
	/* Reserve blocks for [0, len) so that writes through a mapping can
	 * never hit ENOSPC (which would be SIGBUS). */
	int (*fallocate)(const seg_vfs *v, int fd, uint64_t len);
	/* Release the blocks of [off, off+len) while keeping the file size
	 * (reads return zeros). May return -EOPNOTSUPP; callers then live with
	 * the space. */
	int (*punch)(const seg_vfs *v, int fd, uint64_t off, uint64_t len);
	/* File size and bytes allocated on disk. */
	int (*fstat)(const seg_vfs *v, int fd, uint64_t *size, uint64_t *alloc);
	/* Shared mapping of [0, len). writable selects PROT_WRITE. populate:
	 * SEG_POPULATE_NONE, _READ (fault every page in now, read-only, so a
	 * later store costs only a write-enable fault) or _WRITE (fault every
	 * page in writable: stores take no fault at all, but the pages are
	 * dirty, so the next fdatasync writes them even if still zero).
	 * Returns NULL and sets *err (-errno) on failure. */
	void *(*mmap)(const seg_vfs *v, int fd, size_t len, int writable, int populate, int *err);
	int (*munmap)(const seg_vfs *v, void *p, size_t len);

	int (*rename)(const seg_vfs *v, const char *from, const char *to);
	int (*unlink)(const seg_vfs *v, const char *path);
	int (*mkdir)(const seg_vfs *v, const char *path, int mode);
	/* rmdir(2): an empty directory. */
	int (*rmdir)(const seg_vfs *v, const char *path);
	/* fsync(2) of a directory, so that creations, renames and unlinks in
	 * it are durable. */
	int (*fsync_dir)(const seg_vfs *v, const char *path);
	/* Every entry of a directory except "." and "..", in no order. */
	int (*list)(const seg_vfs *v, const char *path, seg_list_fn fn, void *ud);
	/* Size and allocation of a path (-ENOENT if missing). */
	int (*stat)(const seg_vfs *v, const char *path, uint64_t *size, uint64_t *alloc);
	/* Exclusive non-blocking lock on an open file or directory: 0, or
	 * -EWOULDBLOCK. */
	int (*lock)(const seg_vfs *v, int fd);
	/* Set an open file's permission bits to exactly mode (open's mode is
	 * filtered by the umask; a file meant for others to read says so). */
	int (*fchmod)(const seg_vfs *v, int fd, int mode);
	/* Identity of a file: of the open fd when fd >= 0, else of what path
	 * names (a symlink itself, not its target). Two identities are equal
	 * exactly when they name the same file. -ENOENT if path is missing. */
	int (*file_id)(const seg_vfs *v, int fd, const char *path, uint64_t id[2]);

	/* Wall clock, ms since the epoch (may jump), and a monotonic clock in
	 * ms (never jumps; arbitrary origin). */
	int64_t (*now_ms)(const seg_vfs *v);
	int64_t (*mono_ms)(const seg_vfs *v);
	/* n random bytes (salts). */
	int (*random)(const seg_vfs *v, void *buf, size_t n);
};

/* The production table: POSIX calls, CLOCK_REALTIME, CLOCK_MONOTONIC,
 * getrandom(2). Static, never NULL. */
const seg_vfs *seg_vfs_posix(void);

#endif
