/*
 * seg_vfs_posix.c - the production I/O seam: thin wrappers over POSIX and
 * Linux calls that turn errno into a negative return value.
 */
#include "seg_vfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static int px_open(const seg_vfs *v, const char *path, int flags, int mode)
{
	int fd;
	(void)v;
	do
		fd = open(path, flags | O_CLOEXEC, mode);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

static int px_close(const seg_vfs *v, int fd)
{
	(void)v;
	/* No retry on EINTR: on Linux the descriptor is gone either way. */
	return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

static ssize_t px_pread(const seg_vfs *v, int fd, void *buf, size_t n, uint64_t off)
{
	ssize_t r;
	(void)v;
	do
		r = pread(fd, buf, n, (off_t)off);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

static ssize_t px_pwrite(const seg_vfs *v, int fd, const void *buf, size_t n, uint64_t off)
{
	ssize_t r;
	(void)v;
	do
		r = pwrite(fd, buf, n, (off_t)off);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

static int px_fsync(const seg_vfs *v, int fd)
{
	(void)v;
	/* Never retried by the callers: after a failed fdatasync the kernel may
	 * have marked the dirty pages clean (Rebello et al., ATC 2020), so a
	 * second call can succeed without the data being on disk. */
	return fdatasync(fd) < 0 ? -errno : 0;
}

static int px_ftruncate(const seg_vfs *v, int fd, uint64_t len)
{
	(void)v;
	return ftruncate(fd, (off_t)len) < 0 ? -errno : 0;
}

static int px_fallocate(const seg_vfs *v, int fd, uint64_t len)
{
	int r;
	(void)v;
	r = posix_fallocate(fd, 0, (off_t)len);
	return r ? -r : 0;
}

static int px_punch(const seg_vfs *v, int fd, uint64_t off, uint64_t len)
{
	(void)v;
	return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) <
			       0 ?
		       -errno :
		       0;
}

static int px_fstat(const seg_vfs *v, int fd, uint64_t *size, uint64_t *alloc)
{
	struct stat st;
	(void)v;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (size)
		*size = (uint64_t)st.st_size;
	if (alloc)
		*alloc = (uint64_t)st.st_blocks * 512u;
	return 0;
}

static void *px_mmap(const seg_vfs *v, int fd, size_t len, int writable, int populate, int *err)
{
	void *p;
	(void)v;
	p = mmap(NULL, len, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		*err = -errno;
		return NULL;
	}
	/* Fault the pages in now, off the append path (see seg_vfs.h for the
	 * two kinds). Kernels before 5.14 lack the advice; then the first
	 * store to each page takes the whole fault. */
	if (populate != SEG_POPULATE_NONE &&
	    madvise(p, len,
		    populate == SEG_POPULATE_WRITE && writable ? MADV_POPULATE_WRITE :
								 MADV_POPULATE_READ) < 0 &&
	    errno != EINVAL) {
		*err = -errno;
		munmap(p, len);
		return NULL;
	}
	return p;
}

static int px_munmap(const seg_vfs *v, void *p, size_t len)
{
	(void)v;
	return munmap(p, len) < 0 ? -errno : 0;
}

static int px_rename(const seg_vfs *v, const char *from, const char *to)
{
	(void)v;
	return rename(from, to) < 0 ? -errno : 0;
}

static int px_unlink(const seg_vfs *v, const char *path)
{
	(void)v;
	return unlink(path) < 0 ? -errno : 0;
}

static int px_mkdir(const seg_vfs *v, const char *path, int mode)
{
	(void)v;
	return mkdir(path, (mode_t)mode) < 0 ? -errno : 0;
}

static int px_rmdir(const seg_vfs *v, const char *path)
{
	(void)v;
	return rmdir(path) < 0 ? -errno : 0;
}

static int px_fsync_dir(const seg_vfs *v, const char *path)
{
	int fd, r = 0;
	(void)v;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

static int px_list(const seg_vfs *v, const char *path, seg_list_fn fn, void *ud)
{
	DIR *d;
	struct dirent *de;
	int rc = 0;
	(void)v;
	d = opendir(path);
	if (!d)
		return -errno;
	/* readdir returns NULL both at the end and on error (EOVERFLOW for an
	 * inode number that does not fit, EIO, ...): only errno tells them
	 * apart. A failed listing is an error, never "no entries". */
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			rc = errno ? -errno : 0;
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fn(ud, de->d_name))
			break;
	}
	closedir(d);
	return rc;
}

static int px_stat(const seg_vfs *v, const char *path, uint64_t *size, uint64_t *alloc)
{
	struct stat st;
	(void)v;
	if (stat(path, &st) < 0)
		return -errno;
	if (size)
		*size = (uint64_t)st.st_size;
	if (alloc)
		*alloc = (uint64_t)st.st_blocks * 512u;
	return 0;
}

static int px_lock(const seg_vfs *v, int fd)
{
	(void)v;
	/* flock locks belong to the open file description, so a second open
	 * in the same process conflicts too (fcntl locks would not). */
	return flock(fd, LOCK_EX | LOCK_NB) < 0 ? -errno : 0;
}

static int px_fchmod(const seg_vfs *v, int fd, int mode)
{
	(void)v;
	return fchmod(fd, (mode_t)mode) < 0 ? -errno : 0;
}

static int px_file_id(const seg_vfs *v, int fd, const char *path, uint64_t id[2])
{
	struct stat st;
	(void)v;
	if (fd >= 0 ? fstat(fd, &st) < 0 : lstat(path, &st) < 0)
		return -errno;
	id[0] = (uint64_t)st.st_dev;
	id[1] = (uint64_t)st.st_ino;
	return 0;
}

/* The last reading of each clock: if clock_gettime ever fails (a seccomp
 * filter, a kernel without the 64-bit time call), time stands still rather
 * than jumping to garbage or to 1970, which would expire everything. */
static _Atomic int64_t last_real_ms, last_mono_ms;

static int64_t clock_ms(clockid_t id, _Atomic int64_t *last)
{
	struct timespec ts;
	int64_t ms;

	if (clock_gettime(id, &ts) != 0)
		return atomic_load(last);
	ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	atomic_store(last, ms);
	return ms;
}

static int64_t px_now_ms(const seg_vfs *v)
{
	(void)v;
	return clock_ms(CLOCK_REALTIME, &last_real_ms);
}

static int64_t px_mono_ms(const seg_vfs *v)
{
	(void)v;
	return clock_ms(CLOCK_MONOTONIC, &last_mono_ms);
}

static int px_random(const seg_vfs *v, void *buf, size_t n)
{
	uint8_t *p = buf;
	(void)v;
	while (n) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static const seg_vfs posix_vfs = {
	.ctx = NULL,
	.open = px_open,
	.close = px_close,
	.pread = px_pread,
	.pwrite = px_pwrite,
	.fsync = px_fsync,
	.ftruncate = px_ftruncate,
	.fallocate = px_fallocate,
	.punch = px_punch,
	.fstat = px_fstat,
	.mmap = px_mmap,
	.munmap = px_munmap,
	.rename = px_rename,
	.unlink = px_unlink,
	.mkdir = px_mkdir,
	.rmdir = px_rmdir,
	.fsync_dir = px_fsync_dir,
	.list = px_list,
	.stat = px_stat,
	.lock = px_lock,
	.fchmod = px_fchmod,
	.file_id = px_file_id,
	.now_ms = px_now_ms,
	.mono_ms = px_mono_ms,
	.random = px_random,
};

const seg_vfs *seg_vfs_posix(void)
{
	return &posix_vfs;
}
