/*
 * check_vfs.c - tests of the test I/O seams (test_vfs.h): the fault
 * injector over the POSIX table and the in-memory file system with power
 * loss. Every crash and fault test of the engine leans on these, so they
 * get their own runner.
 */
#include "test_main.h"
#include "test_vfs.h"
#include "seg_durable.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */
static char tmpdir[256];

static void tmp_setup(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/check_vfs-XXXXXX", t && *t ? t : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int rm_entry(void *ud, const char *name)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", (const char *)ud, name);
	unlink(p);
	return 0;
}

static void tmp_teardown(void)
{
	seg_vfs_posix()->list(seg_vfs_posix(), tmpdir, rm_entry, tmpdir);
	rmdir(tmpdir);
}

static const char *tpath(const char *name)
{
	static char buf[4][512];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof buf[i], "%s/%s", tmpdir, name);
	return buf[i];
}

/* The whole live content of a mem file, as a NUL-terminated string. */
static char *mem_str(tvfs_mem *m, const char *path)
{
	uint8_t *d;
	size_t n;
	char *s;
	int r = tvfs_mem_read_file(m, path, &d, &n);
	ck_assert_int_eq(r, 0);
	s = malloc(n + 1);
	ck_assert_ptr_nonnull(s);
	if (n)
		memcpy(s, d, n);
	s[n] = 0;
	free(d);
	return s;
}

static void ck_file_is(tvfs_mem *m, const char *path, const char *want)
{
	char *s = mem_str(m, path);
	ck_assert_str_eq(s, want);
	free(s);
}

static int put(const seg_vfs *v, int fd, const char *s, uint64_t off)
{
	return (int)v->pwrite(v, fd, s, strlen(s), off);
}

/* Create path holding s; fsync the file and (dirsync) its directory. */
static void mem_make(const seg_vfs *v, const char *path, const char *dir, const char *s,
		     int dirsync)
{
	int fd = v->open(v, path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(put(v, fd, s, 0), (int)strlen(s));
	ck_assert_int_eq(v->fsync(v, fd), 0);
	ck_assert_int_eq(v->close(v, fd), 0);
	if (dirsync)
		ck_assert_int_eq(v->fsync_dir(v, dir), 0);
}

/* ------------------------------------------------------------------------
 * Fault injection over POSIX
 * ---------------------------------------------------------------------- */

/*
 * A small scenario touching every counted operation once or more:
 * open, pwrite x3, fsync, ftruncate, fallocate, mmap, rename, fsync_dir,
 * mkdir, unlink = 12 counted operations. Stops at the first failure and
 * returns its 1-based position among the counted calls (0: all passed);
 * *err gets the failure's value.
 */
static int scenario(const seg_vfs *v, int *err)
{
	int step = 0, fd = -1, r = 0;
	void *map = NULL;

#define STEP(call)                         \
	do {                               \
		step++;                    \
		if ((r = (int)(call)) < 0) \
			goto fail;         \
	} while (0)

	STEP(fd = v->open(v, tpath("a"), O_RDWR | O_CREAT | O_TRUNC, 0600));
	STEP(v->pwrite(v, fd, "0123456789", 10, 0));
	STEP(v->pwrite(v, fd, "abcdefghij", 10, 10));
	STEP(v->pwrite(v, fd, "ABCDEFGHIJ", 10, 20));
	STEP(v->fsync(v, fd));
	STEP(v->ftruncate(v, fd, 25));
	STEP(v->fallocate(v, fd, 4096));
	step++;
	map = v->mmap(v, fd, 4096, 1, 0, &r);
	if (!map)
		goto fail;
	ck_assert_int_eq(v->munmap(v, map, 4096), 0);
	STEP(v->rename(v, tpath("a"), tpath("b")));
	STEP(v->fsync_dir(v, tmpdir));
	STEP(v->mkdir(v, tpath("d"), 0700));
	STEP(v->unlink(v, tpath("b")));
	v->close(v, fd);
	rmdir(tpath("d"));
	*err = 0;
	return 0;
fail:
	if (fd >= 0)
		v->close(v, fd);
	unlink(tpath("a"));
	unlink(tpath("b"));
	rmdir(tpath("d"));
	*err = r;
	return step;
#undef STEP
}

START_TEST(test_fault_fails_each_counted_op_in_turn)
{
	tvfs_fault *f = tvfs_fault_new(NULL);
	const seg_vfs *v = tvfs_fault_vfs(f);
	uint64_t total;
	int err;

	ck_assert_int_eq(scenario(v, &err), 0);
	total = tvfs_fault_count(f, TVFS_OP_COUNTED);
	ck_assert_uint_eq(total, 12);
	ck_assert_uint_eq(tvfs_fault_count(f, TVFS_OP_PWRITE), 3);
	ck_assert_uint_eq(tvfs_fault_count(f, TVFS_OP_MMAP | TVFS_OP_RENAME), 2);
	ck_assert_uint_eq(tvfs_fault_injected(f), 0);

	for (uint64_t n = 1; n <= total; n++) {
		int code = n % 2 ? -EIO : -ENOSPC;
		tvfs_fault_reset(f);
		tvfs_fault_fail_nth(f, n, code);
		ck_assert_int_eq(scenario(v, &err), (int)n);
		ck_assert_int_eq(err, code);
		ck_assert_uint_eq(tvfs_fault_injected(f), 1);
	}
	/* Disarmed again: the scenario passes. */
	tvfs_fault_reset(f);
	ck_assert_int_eq(scenario(v, &err), 0);
	tvfs_fault_free(f);
}
END_TEST

START_TEST(test_fault_sticky_enospc_keeps_failing)
{
	tvfs_fault *f = tvfs_fault_new(NULL);
	const seg_vfs *v = tvfs_fault_vfs(f);
	int fd = v->open(v, tpath("full"), O_RDWR | O_CREAT, 0600);

	ck_assert_int_ge(fd, 0);
	tvfs_fault_fail(f, TVFS_OP_PWRITE | TVFS_OP_FALLOCATE, 2, -ENOSPC, 1);
	ck_assert_int_eq(put(v, fd, "one", 0), 3);
	ck_assert_int_eq(put(v, fd, "two", 3), -ENOSPC);
	ck_assert_int_eq(v->fallocate(v, fd, 1 << 20), -ENOSPC);
	ck_assert_int_eq(put(v, fd, "three", 3), -ENOSPC);
	/* Other kinds are untouched. */
	ck_assert_int_eq(v->fsync(v, fd), 0);
	ck_assert_uint_eq(tvfs_fault_injected(f), 3);
	/* n == 0 disarms. */
	tvfs_fault_fail(f, TVFS_OP_PWRITE, 0, -ENOSPC, 1);
	ck_assert_int_eq(put(v, fd, "four", 3), 4);
	v->close(v, fd);
	tvfs_fault_free(f);
}
END_TEST

START_TEST(test_fault_short_write_writes_half)
{
	tvfs_fault *f = tvfs_fault_new(NULL);
	const seg_vfs *v = tvfs_fault_vfs(f);
	int fd = v->open(v, tpath("short"), O_RDWR | O_CREAT, 0600);
	char buf[32] = {0};
	uint64_t size;

	ck_assert_int_ge(fd, 0);
	tvfs_fault_short_write(f, 2);
	ck_assert_int_eq(put(v, fd, "0123456789", 0), 10);
	ck_assert_int_eq(put(v, fd, "abcdefghij", 10), 5);
	ck_assert_int_eq(put(v, fd, "ABCDEFGHIJ", 15), 10);
	ck_assert_int_eq(v->fstat(v, fd, &size, NULL), 0);
	ck_assert_uint_eq(size, 25);
	ck_assert_int_eq((int)v->pread(v, fd, buf, sizeof buf, 0), 25);
	ck_assert_str_eq(buf, "0123456789abcdeABCDEFGHIJ");
	ck_assert_uint_eq(tvfs_fault_injected(f), 1);
	v->close(v, fd);
	tvfs_fault_free(f);
}
END_TEST

START_TEST(test_fault_mmap_failure_sets_err)
{
	tvfs_fault *f = tvfs_fault_new(NULL);
	const seg_vfs *v = tvfs_fault_vfs(f);
	int fd = v->open(v, tpath("map"), O_RDWR | O_CREAT, 0600);
	int err = 0;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(v->fallocate(v, fd, 8192), 0);
	tvfs_fault_fail(f, TVFS_OP_MMAP, 1, -ENOMEM, 0);
	ck_assert_ptr_null(v->mmap(v, fd, 8192, 1, 1, &err));
	ck_assert_int_eq(err, -ENOMEM);
	err = 0;
	void *p = v->mmap(v, fd, 8192, 1, 1, &err);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(v->munmap(v, p, 8192), 0);
	v->close(v, fd);
	tvfs_fault_free(f);
}
END_TEST

static int fail_renames_to_b(void *ud, unsigned op, uint64_t n, const char *path)
{
	(void)n;
	++*(int *)ud;
	if (op == TVFS_OP_RENAME && strstr(path, "/from"))
		return -EXDEV;
	return 0;
}

START_TEST(test_fault_hook_sees_every_op)
{
	tvfs_fault *f = tvfs_fault_new(NULL);
	const seg_vfs *v = tvfs_fault_vfs(f);
	int calls = 0;

	tvfs_fault_set_hook(f, fail_renames_to_b, &calls);
	mem_make(v, tpath("from"), tmpdir, "x", 1); /* open pwrite fsync fsync_dir */
	ck_assert_int_eq(v->rename(v, tpath("from"), tpath("to")), -EXDEV);
	ck_assert_int_eq(calls, 5);
	ck_assert_uint_eq(tvfs_fault_injected(f), 1);
	tvfs_fault_set_hook(f, NULL, NULL);
	ck_assert_int_eq(v->rename(v, tpath("from"), tpath("to")), 0);
	ck_assert_int_eq(v->unlink(v, tpath("to")), 0);
	tvfs_fault_free(f);
}
END_TEST

START_TEST(test_fault_fake_clock)
{
	tvfs_fault *f = tvfs_fault_new(NULL);
	const seg_vfs *v = tvfs_fault_vfs(f);

	ck_assert_int_gt(v->now_ms(v), 1600000000000LL); /* real by default */
	tvfs_fault_clock_set(f, 1000, 50);
	ck_assert_int_eq(v->now_ms(v), 1000);
	ck_assert_int_eq(v->mono_ms(v), 50);
	tvfs_fault_clock_advance(f, 10);
	ck_assert_int_eq(v->now_ms(v), 1010);
	ck_assert_int_eq(v->mono_ms(v), 60);
	tvfs_fault_clock_jump(f, -500); /* the wall clock steps back, mono does not */
	ck_assert_int_eq(v->now_ms(v), 510);
	ck_assert_int_eq(v->mono_ms(v), 60);
	tvfs_fault_clock_fake(f, 0);
	ck_assert_int_gt(v->now_ms(v), 1600000000000LL);
	tvfs_fault_free(f);
}
END_TEST

START_TEST(test_fault_wraps_mem)
{
	tvfs_mem *m = tvfs_mem_new(1);
	tvfs_fault *f = tvfs_fault_new(tvfs_mem_vfs(m));
	const seg_vfs *v = tvfs_fault_vfs(f);
	int fd;

	ck_assert_int_eq(tvfs_mem_mkdirs(m, "/mem"), 0);
	tvfs_fault_fail(f, TVFS_OP_FSYNC, 1, -EIO, 0);
	fd = v->open(v, "/mem/f", O_RDWR | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(put(v, fd, "data", 0), 4);
	ck_assert_int_eq(v->fsync(v, fd), -EIO);
	ck_assert_int_eq(v->fsync_dir(v, "/mem"), 0);
	/* The failed fsync made nothing durable. */
	tvfs_mem_set_loss(m, 0, 0, 0);
	tvfs_mem_power_loss(m, 7);
	ck_file_is(m, "/mem/f", "");
	tvfs_fault_free(f);
	tvfs_mem_free(m);
}
END_TEST

/* ------------------------------------------------------------------------
 * In-memory file system
 * ---------------------------------------------------------------------- */
static int collect(void *ud, const char *name)
{
	char *out = ud;
	strcat(out, name);
	strcat(out, ",");
	return 0;
}

START_TEST(test_mem_basic_io)
{
	tvfs_mem *m = tvfs_mem_new(1);
	const seg_vfs *v = tvfs_mem_vfs(m);
	char buf[64] = {0}, names[256] = {0};
	uint64_t size, alloc;
	int fd, fd2;

	ck_assert_int_eq(v->open(v, "/mem/f", O_RDWR | O_CREAT, 0600), -ENOENT);
	ck_assert_int_eq(v->mkdir(v, "/mem/sub", 0700), -ENOENT);
	ck_assert_int_eq(tvfs_mem_mkdirs(m, "/mem"), 0);
	ck_assert_int_eq(v->mkdir(v, "/mem/sub", 0700), 0);
	ck_assert_int_eq(v->mkdir(v, "/mem/sub", 0700), -EEXIST);

	fd = v->open(v, "/mem/f", O_RDWR | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(v->open(v, "/mem/f", O_RDWR | O_CREAT | O_EXCL, 0600), -EEXIST);
	ck_assert_int_eq(put(v, fd, "hello", 0), 5);
	ck_assert_int_eq(put(v, fd, "world", 10), 5); /* a hole reads as zeros */
	ck_assert_int_eq(v->fstat(v, fd, &size, &alloc), 0);
	ck_assert_uint_eq(size, 15);
	ck_assert_uint_eq(alloc, 15);
	ck_assert_int_eq((int)v->pread(v, fd, buf, sizeof buf, 0), 15);
	ck_assert_int_eq(memcmp(buf, "hello\0\0\0\0\0world", 15), 0);
	ck_assert_int_eq((int)v->pread(v, fd, buf, 4, 100), 0);

	fd2 = v->open(v, "f", O_RDONLY, 0); /* relative root is separate */
	ck_assert_int_eq(fd2, -ENOENT);
	fd2 = v->open(v, "//mem/./f", O_RDONLY, 0); /* same file, other spelling */
	ck_assert_int_ge(fd2, 0);
	ck_assert_int_ne(fd2, fd);
	ck_assert_int_eq(put(v, fd2, "x", 0), -EBADF); /* read-only */
	ck_assert_int_eq(v->ftruncate(v, fd2, 0), -EINVAL);
	ck_assert_int_eq(v->close(v, fd2), 0);
	ck_assert_int_eq(v->close(v, fd2), -EBADF);

	fd2 = v->open(v, "/mem/f", O_RDWR | O_TRUNC, 0);
	ck_assert_int_ge(fd2, 0);
	ck_assert_int_eq(v->stat(v, "/mem/f", &size, NULL), 0);
	ck_assert_uint_eq(size, 0);
	ck_assert_int_eq(v->stat(v, "/mem/none", &size, NULL), -ENOENT);
	ck_assert_int_eq(v->open(v, "/mem/sub", O_RDWR, 0), -EISDIR);
	ck_assert_int_eq(v->open(v, "/mem/f/x", O_RDWR | O_CREAT, 0600), -ENOTDIR);
	ck_assert_int_eq(v->open(v, "/mem/../f", O_RDONLY, 0), -EINVAL);
	ck_assert_int_eq(v->unlink(v, "/mem/sub"), -EISDIR);

	ck_assert_int_eq(v->list(v, "/mem", collect, names), 0);
	ck_assert(strcmp(names, "sub,f,") == 0 || strcmp(names, "f,sub,") == 0);
	ck_assert_int_eq(v->list(v, "/mem/f", collect, names), -ENOTDIR);
	ck_assert_int_eq(v->list(v, "/nope", collect, names), -ENOENT);

	ck_assert_int_eq(v->rename(v, "/mem/f", "/mem/sub/g"), 0);
	ck_assert(!tvfs_mem_exists(m, "/mem/f"));
	ck_assert(tvfs_mem_exists(m, "/mem/sub/g"));
	ck_assert_int_eq(v->rename(v, "/mem/sub", "/mem/sub/deeper"), -EINVAL);
	ck_assert_int_eq(v->rename(v, "/mem/none", "/mem/x"), -ENOENT);
	ck_assert_int_eq(v->unlink(v, "/mem/sub/g"), 0);
	ck_assert_int_eq(v->unlink(v, "/mem/sub/g"), -ENOENT);
	/* The open descriptor still reaches the unlinked file. */
	ck_assert_int_eq(put(v, fd, "still", 0), 5);
	ck_assert_int_eq(v->close(v, fd), 0);
	ck_assert_int_eq(v->close(v, fd2), 0);
	ck_assert_uint_eq(tvfs_mem_open_fds(m), 0);
	tvfs_mem_free(m);
}
END_TEST

START_TEST(test_mem_power_loss_drops_unsynced_data)
{
	tvfs_mem *m = tvfs_mem_new(1);
	const seg_vfs *v = tvfs_mem_vfs(m);
	int fd;

	ck_assert_int_eq(tvfs_mem_mkdirs(m, "/mem"), 0);
	fd = v->open(v, "/mem/f", O_RDWR | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(put(v, fd, "hello", 0), 5);
	ck_assert_int_eq(v->fsync(v, fd), 0);
	ck_assert_int_eq(v->fsync_dir(v, "/mem"), 0);
	ck_assert_int_eq(put(v, fd, " world", 5), 6);
	ck_assert_int_eq(put(v, fd, "J", 0), 1);
	ck_file_is(m, "/mem/f", "Jello world");

	tvfs_mem_set_loss(m, 0, 0, 0);
	tvfs_mem_power_loss(m, 1);
	ck_file_is(m, "/mem/f", "hello");
	/* Descriptors from before are dead; numbers are not reused. */
	ck_assert_int_eq(put(v, fd, "x", 0), -EBADF);
	ck_assert_int_eq(v->fsync(v, fd), -EBADF);
	ck_assert_uint_eq(tvfs_mem_open_fds(m), 0);
	int fd2 = v->open(v, "/mem/f", O_RDWR, 0);
	ck_assert_int_gt(fd2, fd);

	/* A truncation not synced comes back too. */
	ck_assert_int_eq(v->ftruncate(v, fd2, 2), 0);
	ck_file_is(m, "/mem/f", "he");
	tvfs_mem_power_loss(m, 2);
	ck_file_is(m, "/mem/f", "hello");
	tvfs_mem_free(m);
}
END_TEST

/* Under the default (random) loss model: the synced bytes always survive
 * intact; what follows them is a prefix of the lost writes, possibly
 * with garbage over bytes those writes changed, never beyond them. */
START_TEST(test_mem_power_loss_keeps_synced_data_intact)
{
	char synced[101], lost[51];
	int kept_some = 0, kept_none = 0, torn = 0;

	memset(synced, 'A', 100);
	synced[100] = 0;
	memset(lost, 'B', 50);
	lost[50] = 0;
	for (uint64_t seed = 1; seed <= 500; seed++) {
		tvfs_mem *m = tvfs_mem_new(seed);
		const seg_vfs *v = tvfs_mem_vfs(m);
		uint8_t *d;
		size_t n, j;
		int fd, garbage;

		ck_assert_int_eq(tvfs_mem_mkdirs(m, "/mem"), 0);
		mem_make(v, "/mem/f", "/mem", synced, 1);
		fd = v->open(v, "/mem/f", O_RDWR, 0);
		ck_assert_int_eq(put(v, fd, lost, 100), 50);
		tvfs_mem_power_loss(m, seed);

		ck_assert_int_eq(tvfs_mem_read_file(m, "/mem/f", &d, &n), 0);
		ck_assert_uint_ge(n, 100);
		ck_assert_uint_le(n, 150);
		ck_assert_int_eq(memcmp(d, synced, 100), 0);
		/* A prefix of the lost 'B's, then at most 32 bytes of garbage. */
		j = 100;
		while (j < n && d[j] == 'B')
			j++;
		ck_assert_msg(n - j <= 32, "seed %llu: %zu garbage bytes", (unsigned long long)seed,
			      n - j);
		garbage = j < n;
		kept_some += n > 100 && !garbage;
		kept_none += n == 100;
		torn += garbage;
		free(d);
		tvfs_mem_free(m);
	}
	/* Each outcome occurs (50 % keep, 25 % torn by default). */
	ck_assert_int_gt(kept_some, 50);
	ck_assert_int_gt(kept_none, 50);
	ck_assert_int_gt(torn, 10);
}
END_TEST

/* Page mode: each 4 KiB page of the lost writes is old or new, on its own. */
START_TEST(test_mem_power_loss_page_mode)
{
	static uint8_t data[4 * 4096];
	int holes = 0;

	for (uint64_t seed = 1; seed <= 100; seed++) {
		tvfs_mem *m = tvfs_mem_new(seed);
		const seg_vfs *v = tvfs_mem_vfs(m);
		uint8_t *d;
		size_t n;
		int fd;

		tvfs_mem_set_loss(m, 0, 0, 100);
		ck_assert_int_eq(tvfs_mem_mkdirs(m, "/mem"), 0);
		fd = v->open(v, "/mem/seg", O_RDWR | O_CREAT, 0600);
		ck_assert_int_eq(v->fallocate(v, fd, sizeof data), 0);
		ck_assert_int_eq(v->fsync(v, fd), 0);
		ck_assert_int_eq(v->fsync_dir(v, "/mem"), 0);
		memset(data, 'P', sizeof data);
		ck_assert_int_eq((int)v->pwrite(v, fd, data, sizeof data, 0), (int)sizeof data);
		tvfs_mem_power_loss(m, seed);

		ck_assert_int_eq(tvfs_mem_read_file(m, "/mem/seg", &d, &n), 0);
		ck_assert_uint_eq(n, sizeof data);
		for (int pg = 0; pg < 4; pg++) {
			uint8_t first = d[pg * 4096];
			ck_assert(first == 'P' || first == 0);
			for (int i = 0; i < 4096; i++)
				ck_assert_uint_eq(d[pg * 4096 + i], first);
			if (pg > 0 && first == 'P' && d[(pg - 1) * 4096] == 0)
				holes++;
		}
		free(d);
		tvfs_mem_free(m);
	}
	ck_assert_int_gt(holes, 0); /* a later page kept, an earlier one lost */
}
END_TEST

START_TEST(test_mem_create_without_dir_fsync_vanishes)
{
	tvfs_mem *m = tvfs_mem_new(1);
	const seg_vfs *v = tvfs_mem_vfs(m);

	ck_assert_int_eq(tvfs_mem_mkdirs(m, "/mem"), 0);
	mem_make(v, "/mem/synced-name", "/mem", "kept", 1);
	mem_make(v, "/mem/no-dir-fsync", "/mem", "gone", 0); /* file fsynced, dir not */
	ck_assert(tvfs_mem_exists(m, "/mem/no-dir-fsync"));
	tvfs_mem_power_loss(m, 1);
	ck_assert(!tvfs_mem_exists(m, "/mem/no-dir-fsync"));
	ck_file_is(m, "/mem/synced-name", "kept");
	tvfs_mem_free(m);
}
END_TEST

START_TEST(test_mem_rename_without_dir_fsync_reverts)
{
	tvfs_mem *m = tvfs_mem_new(1);
	const seg_vfs *v = tvfs_mem_vfs(m);

	ck_assert_int_eq(tvfs_mem_mkdirs(m, "/mem"), 0);
	mem_make(v, "/mem/old", "/mem", "old", 1);
	mem_make(v, "/mem/tmp", "/mem", "new", 1);
	/* temp + rename over, without the directory fsync: reverts. */
	ck_assert_int_eq(v->rename(v, "/mem/tmp", "/mem/old"), 0);
	ck_file_is(m, "/mem/old", "new");
	ck_assert(!tvfs_mem_exists(m, "/mem/tmp"));
	tvfs_mem_power_loss(m, 1);
	ck_file_is(m, "/mem/old", "old");
	ck_file_is(m, "/mem/tmp", "new");

	/* With it: durable. */
	ck_assert_int_eq(v->rename(v, "/mem/tmp", "/mem/old"), 0);
	ck_assert_int_eq(v->fsync_dir(v, "/mem"), 0);
	tvfs_mem_power_loss(m, 2);
	ck_file_is(m, "/mem/old", "new");
	ck_assert(!tvfs_mem_exists(m, "/mem/tmp"));
	tvfs_mem_free(m);
}
END_TEST

START_TEST(test_mem_unlink_without_dir_fsync_reverts)
{
	tvfs_mem *m = tvfs_mem_new(1);
	const seg_vfs *v = tvfs_mem_vfs(m);

	ck_assert_int_eq(tvfs_mem_mkdirs(m, "/mem"), 0);
	mem_make(v, "/mem/a", "/mem", "aaa", 1);
	mem_make(v, "/mem/b", "/mem", "bbb", 1);
	ck_assert_int_eq(v->unlink(v, "/mem/a"), 0);
	ck_assert_int_eq(v->unlink(v, "/mem/b"), 0);
	ck_assert_int_eq(v->fsync_dir(v, "/mem"), 0);
	mem_make(v, "/mem/c", "/mem", "ccc", 1);
	ck_assert_int_eq(v->unlink(v, "/mem/c"), 0); /* no fsync_dir after this */
	tvfs_mem_power_loss(m, 1);
	ck_assert(!tvfs_mem_exists(m, "/mem/a"));
	ck_assert(!tvfs_mem_exists(m, "/mem/b"));
	ck_file_is(m, "/mem/c", "ccc");
	tvfs_mem_free(m);
}
END_TEST

START_TEST(test_mem_mkdir_without_parent_fsync_vanishes)
{
	tvfs_mem *m = tvfs_mem_new(1);
	const seg_vfs *v = tvfs_mem_vfs(m);

	ck_assert_int_eq(tvfs_mem_mkdirs(m, "/mem"), 0);
	ck_assert_int_eq(v->mkdir(v, "/mem/early", 0700), 0);
	mem_make(v, "/mem/early/f", "/mem/early", "x", 1);
	ck_assert_int_eq(v->fsync_dir(v, "/mem"), 0);
	/* "late" and its file are synced, but "late" itself is not in a
	 * synced /mem: power loss takes the whole subtree. */
	ck_assert_int_eq(v->mkdir(v, "/mem/late", 0700), 0);
	mem_make(v, "/mem/late/f", "/mem/late", "y", 1);
	tvfs_mem_power_loss(m, 1);
	ck_file_is(m, "/mem/early/f", "x");
	ck_assert(!tvfs_mem_exists(m, "/mem/late"));
	ck_assert(!tvfs_mem_exists(m, "/mem/late/f"));
	ck_assert_int_eq(v->open(v, "/mem/late/f", O_RDONLY, 0), -ENOENT);
	tvfs_mem_free(m);
}
END_TEST

START_TEST(test_mem_mmap_stores_are_live_and_lost_unless_fsynced)
{
	tvfs_mem *m = tvfs_mem_new(1);
	const seg_vfs *v = tvfs_mem_vfs(m);
	char buf[8] = {0};
	uint8_t *map, *map2;
	int fd, err = 0;

	tvfs_mem_set_loss(m, 0, 0, 0);
	ck_assert_int_eq(tvfs_mem_mkdirs(m, "/mem"), 0);
	fd = v->open(v, "/mem/seg", O_RDWR | O_CREAT, 0600);
	ck_assert_int_eq(v->fallocate(v, fd, 4096), 0);
	ck_assert_int_eq(v->fsync(v, fd), 0);
	ck_assert_int_eq(v->fsync_dir(v, "/mem"), 0);
	map = v->mmap(v, fd, 4096, 1, 1, &err);
	ck_assert_ptr_nonnull(map);
	ck_assert_uint_eq(tvfs_mem_mappings(m), 1);

	/* A store through the mapping is file content at once. */
	memcpy(map, "abc", 3);
	ck_assert_int_eq((int)v->pread(v, fd, buf, 3, 0), 3);
	ck_assert_str_eq(buf, "abc");
	/* ... and a pwrite shows through the mapping. */
	ck_assert_int_eq(put(v, fd, "Z", 1), 1);
	ck_assert_int_eq(map[1], 'Z');
	/* Growing a mapped file past its buffer is refused, not moved. */
	ck_assert_int_eq(put(v, fd, "x", 4096), -EIO);
	ck_assert_int_eq(v->fallocate(v, fd, 8192), -EIO);
	ck_assert_ptr_null(v->mmap(v, fd, 8192, 1, 1, &err));
	ck_assert_int_eq(err, -EIO);

	/* Synced stores survive power loss, later ones do not. */
	ck_assert_int_eq(v->fsync(v, fd), 0);
	memcpy(map + 100, "lost", 4);
	tvfs_mem_power_loss(m, 1);
	{
		uint8_t *d;
		size_t n;
		ck_assert_int_eq(tvfs_mem_read_file(m, "/mem/seg", &d, &n), 0);
		ck_assert_uint_eq(n, 4096);
		ck_assert_int_eq(memcmp(d, "aZc", 3), 0);
		ck_assert_int_eq(d[100], 0);
		free(d);
	}
	/* The dead writer's mapping stays valid, but is no longer the file. */
	memcpy(map + 200, "zombie", 6);
	fd = v->open(v, "/mem/seg", O_RDWR, 0);
	ck_assert_int_ge(fd, 0);
	map2 = v->mmap(v, fd, 4096, 1, 1, &err);
	ck_assert_ptr_nonnull(map2);
	ck_assert_ptr_ne(map2, map);
	ck_assert_int_eq(map2[200], 0);
	ck_assert_int_eq(memcmp(map2, "aZc", 3), 0);
	ck_assert_uint_eq(tvfs_mem_mappings(m), 2);
	ck_assert_int_eq(v->munmap(v, map, 4096), 0);
	ck_assert_int_eq(v->munmap(v, map, 4096), -EINVAL);
	ck_assert_int_eq(v->munmap(v, map2, 4096), 0);
	ck_assert_uint_eq(tvfs_mem_mappings(m), 0);

	/* Unmapped, the file may grow again. */
	ck_assert_int_eq(put(v, fd, "x", 4096), 1);
	ck_assert_int_eq(v->close(v, fd), 0);
	tvfs_mem_free(m);
}
END_TEST

START_TEST(test_mem_mmap_checks_access)
{
	tvfs_mem *m = tvfs_mem_new(1);
	const seg_vfs *v = tvfs_mem_vfs(m);
	int fd, err = 0;
	void *p;

	ck_assert_int_eq(tvfs_mem_mkdirs(m, "/mem"), 0);
	mem_make(v, "/mem/f", "/mem", "0123456789", 1);
	fd = v->open(v, "/mem/f", O_RDONLY, 0);
	ck_assert_ptr_null(v->mmap(v, fd, 10, 1, 0, &err));
	ck_assert_int_eq(err, -EACCES);
	ck_assert_ptr_null(v->mmap(v, fd, 0, 0, 0, &err));
	ck_assert_int_eq(err, -EINVAL);
	p = v->mmap(v, fd, 10, 0, 0, &err);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(memcmp(p, "0123456789", 10), 0);
	/* A mapping outlives its descriptor, as with mmap(2). */
	ck_assert_int_eq(v->close(v, fd), 0);
	ck_assert_int_eq(memcmp(p, "0123456789", 10), 0);
	ck_assert_int_eq(v->munmap(v, p, 10), 0);
	tvfs_mem_free(m); /* also frees a mapping left behind */
}
END_TEST

START_TEST(test_mem_locks)
{
	tvfs_mem *m = tvfs_mem_new(1);
	const seg_vfs *v = tvfs_mem_vfs(m);
	int a, b, c;

	ck_assert_int_eq(tvfs_mem_mkdirs(m, "/mem"), 0);
	a = v->open(v, "/mem/LOCK", O_RDWR | O_CREAT, 0600);
	b = v->open(v, "/mem/LOCK", O_RDWR | O_CREAT, 0600);
	ck_assert_int_eq(v->lock(v, a), 0);
	ck_assert_int_eq(v->lock(v, a), 0); /* again on the same descriptor */
	ck_assert_int_eq(v->lock(v, b), -EWOULDBLOCK);
	ck_assert_int_eq(v->close(v, a), 0);
	ck_assert_int_eq(v->lock(v, b), 0);
	/* A directory can be opened read-only and locked too. */
	c = v->open(v, "/mem", O_RDONLY, 0);
	ck_assert_int_ge(c, 0);
	ck_assert_int_eq(v->lock(v, c), 0);
	ck_assert_int_eq(v->fsync(v, c), 0);
	/* Power loss drops every lock. */
	ck_assert_int_eq(v->fsync_dir(v, "/mem"), 0);
	tvfs_mem_power_loss(m, 1);
	a = v->open(v, "/mem/LOCK", O_RDWR, 0);
	ck_assert_int_ge(a, 0);
	ck_assert_int_eq(v->lock(v, a), 0);
	ck_assert_int_eq(v->lock(v, b), -EBADF);
	tvfs_mem_free(m);
}
END_TEST

/* rmdir: empty directories only; the removal is durable once the parent
 * is fsynced, like an unlink. Through the fault wrapper it counts (and
 * fails) as an unlink. */
START_TEST(test_mem_rmdir)
{
	tvfs_mem *m = tvfs_mem_new(1);
	const seg_vfs *v = tvfs_mem_vfs(m);
	tvfs_fault *f = tvfs_fault_new(v);
	const seg_vfs *fv = tvfs_fault_vfs(f);
	int fd;

	ck_assert_int_eq(tvfs_mem_mkdirs(m, "/mem/d"), 0);
	fd = v->open(v, "/mem/d/f", O_RDWR | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	v->close(v, fd);
	ck_assert_int_eq(v->rmdir(v, "/mem/d"), -ENOTEMPTY);
	ck_assert_int_eq(v->rmdir(v, "/mem/d/f"), -ENOTDIR);
	ck_assert_int_eq(v->rmdir(v, "/mem/nothing"), -ENOENT);
	ck_assert_int_eq(v->unlink(v, "/mem/d/f"), 0);
	tvfs_fault_fail(f, TVFS_OP_UNLINK, 1, -EIO, 0);
	ck_assert_int_eq(fv->rmdir(fv, "/mem/d"), -EIO);
	ck_assert_int_eq(tvfs_mem_exists(m, "/mem/d"), 1);
	ck_assert_int_eq(fv->rmdir(fv, "/mem/d"), 0);
	ck_assert_uint_eq(tvfs_fault_count(f, TVFS_OP_UNLINK), 2);
	ck_assert_int_eq(tvfs_mem_exists(m, "/mem/d"), 0);
	/* Not durable until the parent is fsynced. */
	tvfs_mem_power_loss(m, 1);
	ck_assert_int_eq(tvfs_mem_exists(m, "/mem/d"), 1);
	ck_assert_int_eq(v->rmdir(v, "/mem/d"), 0);
	ck_assert_int_eq(v->fsync_dir(v, "/mem"), 0);
	tvfs_mem_power_loss(m, 2);
	ck_assert_int_eq(tvfs_mem_exists(m, "/mem/d"), 0);
	tvfs_fault_free(f);
	tvfs_mem_free(m);
}
END_TEST

START_TEST(test_mem_punch_ftruncate_fallocate)
{
	tvfs_mem *m = tvfs_mem_new(1);
	const seg_vfs *v = tvfs_mem_vfs(m);
	uint64_t size;
	int fd;

	ck_assert_int_eq(tvfs_mem_mkdirs(m, "/mem"), 0);
	fd = v->open(v, "/mem/f", O_RDWR | O_CREAT, 0600);
	ck_assert_int_eq(put(v, fd, "abcdefgh", 0), 8);
	ck_assert_int_eq(v->punch(v, fd, 2, 3), 0);
	{
		char buf[9] = {0};
		ck_assert_int_eq((int)v->pread(v, fd, buf, 8, 0), 8);
		ck_assert_int_eq(memcmp(buf, "ab\0\0\0fgh", 8), 0);
	}
	ck_assert_int_eq(v->punch(v, fd, 6, 100), 0); /* clipped to the size */
	ck_assert_int_eq(v->fstat(v, fd, &size, NULL), 0);
	ck_assert_uint_eq(size, 8);
	/* Shrink then grow: the cut bytes read as zeros. */
	ck_assert_int_eq(v->ftruncate(v, fd, 1), 0);
	ck_assert_int_eq(v->ftruncate(v, fd, 4), 0);
	{
		char buf[4];
		ck_assert_int_eq((int)v->pread(v, fd, buf, 4, 0), 4);
		ck_assert_int_eq(memcmp(buf, "a\0\0\0", 4), 0);
	}
	ck_assert_int_eq(v->fallocate(v, fd, 100), 0);
	ck_assert_int_eq(v->stat(v, "/mem/f", &size, NULL), 0);
	ck_assert_uint_eq(size, 100);
	ck_assert_int_eq(v->fallocate(v, fd, 10), 0); /* never shrinks */
	ck_assert_int_eq(v->fstat(v, fd, &size, NULL), 0);
	ck_assert_uint_eq(size, 100);
	tvfs_mem_free(m);
}
END_TEST

START_TEST(test_mem_random_and_clock)
{
	tvfs_mem *m1 = tvfs_mem_new(42), *m2 = tvfs_mem_new(42), *m3 = tvfs_mem_new(43);
	const seg_vfs *v1 = tvfs_mem_vfs(m1), *v2 = tvfs_mem_vfs(m2), *v3 = tvfs_mem_vfs(m3);
	uint8_t a[13], b[13], c[13];

	ck_assert_int_eq(v1->random(v1, a, sizeof a), 0);
	ck_assert_int_eq(v2->random(v2, b, sizeof b), 0);
	ck_assert_int_eq(v3->random(v3, c, sizeof c), 0);
	ck_assert_int_eq(memcmp(a, b, sizeof a), 0);
	ck_assert_int_ne(memcmp(a, c, sizeof a), 0);

	ck_assert_int_eq(v1->now_ms(v1), 1700000000000LL);
	ck_assert_int_eq(v1->mono_ms(v1), 1000000);
	tvfs_mem_clock_advance(m1, 1500);
	ck_assert_int_eq(v1->now_ms(v1), 1700000001500LL);
	ck_assert_int_eq(v1->mono_ms(v1), 1001500);
	tvfs_mem_clock_jump(m1, -3600000);
	ck_assert_int_eq(v1->now_ms(v1), 1699996401500LL);
	ck_assert_int_eq(v1->mono_ms(v1), 1001500);
	tvfs_mem_clock_set(m1, 5, 6);
	ck_assert_int_eq(v1->now_ms(v1), 5);
	ck_assert_int_eq(v1->mono_ms(v1), 6);
	tvfs_mem_clock_real(m1, 1);
	ck_assert_int_gt(v1->now_ms(v1), 1600000000000LL);
	tvfs_mem_free(m1);
	tvfs_mem_free(m2);
	tvfs_mem_free(m3);
}
END_TEST

/* Several threads on one instance: run under ThreadSanitizer in CI. A
 * syncer thread fsyncs every worker's file while the workers store into
 * their mappings (what the engine's sync thread does). */
static _Atomic int workers_done;
static _Atomic int sync_rounds;

struct worker {
	tvfs_mem *m;
	int id;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const seg_vfs *v = tvfs_mem_vfs(w->m);
	char path[64], rec[32];
	int fd, err = 0;
	uint8_t *map;

	snprintf(path, sizeof path, "/mem/w%d", w->id);
	fd = v->open(v, path, O_RDWR | O_CREAT, 0600);
	if (fd < 0 || v->fallocate(v, fd, 1 << 16) < 0)
		return (void *)1;
	map = v->mmap(v, fd, 1 << 16, 1, 1, &err);
	if (!map)
		return (void *)1;
	/* Go on until the syncer has swept every file a few times, so stores
	 * and fsyncs really overlap. */
	for (int i = 0; i < 2000 || sync_rounds < 20; i++) {
		int n = snprintf(rec, sizeof rec, "%d:%d;", w->id, i % 100000);
		memcpy(map + (i * 16) % ((1 << 16) - 32), rec, (size_t)n);
		if (i % 100 == 0 && (v->fsync(v, fd) < 0 || v->fsync_dir(v, "/mem") < 0))
			return (void *)1;
		if (i % 250 == 0) {
			uint64_t s;
			if (v->stat(v, path, &s, NULL) < 0 || s != 1 << 16)
				return (void *)1;
		}
	}
	if (v->munmap(v, map, 1 << 16) < 0 || v->close(v, fd) < 0)
		return (void *)1;
	return NULL;
}

static void *syncer_main(void *arg)
{
	tvfs_mem *m = arg;
	const seg_vfs *v = tvfs_mem_vfs(m);

	while (!workers_done) {
		for (int i = 0; i < 4; i++) {
			char path[64];
			int fd;
			snprintf(path, sizeof path, "/mem/w%d", i);
			fd = v->open(v, path, O_RDONLY, 0);
			if (fd < 0)
				continue;
			if (v->fsync(v, fd) < 0)
				return (void *)1;
			v->close(v, fd);
		}
		sync_rounds++;
	}
	return NULL;
}

START_TEST(test_mem_threads)
{
	tvfs_mem *m = tvfs_mem_new(9);
	pthread_t t[4], syncer;
	struct worker w[4];
	void *rv;

	ck_assert_int_eq(tvfs_mem_mkdirs(m, "/mem"), 0);
	workers_done = 0;
	sync_rounds = 0;
	ck_assert_int_eq(pthread_create(&syncer, NULL, syncer_main, m), 0);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){m, i};
		ck_assert_int_eq(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(t[i], &rv), 0);
		ck_assert_ptr_null(rv);
	}
	workers_done = 1;
	ck_assert_int_eq(pthread_join(syncer, &rv), 0);
	ck_assert_ptr_null(rv);
	tvfs_mem_power_loss(m, 3);
	for (int i = 0; i < 4; i++) {
		char path[64];
		snprintf(path, sizeof path, "/mem/w%d", i);
		ck_assert(tvfs_mem_exists(m, path));
	}
	tvfs_mem_free(m);
}
END_TEST

/* ------------------------------------------------------------------------
 * seg_durable.c: the durable file operations, on both seams
 * ---------------------------------------------------------------------- */
static int mem_file_is(tvfs_mem *m, const char *path, const char *want)
{
	uint8_t *d = NULL;
	size_t n = 0;
	int ok;

	if (tvfs_mem_read_file(m, path, &d, &n) < 0)
		return 0;
	ok = n == strlen(want) && (n == 0 || !memcmp(d, want, n));
	free(d);
	return ok;
}

START_TEST(test_durable_write_atomic_survives_power_loss_at_every_step)
{
	/* Fail each counted operation of one replacement in turn, then cut
	 * the power: the file holds the old content or the new one, whole,
	 * and once the call returned 0 it holds the new one. */
	uint64_t total = 0, n;
	seg_err e;

	for (n = 0;; n++) {
		tvfs_mem *m = tvfs_mem_new(n + 1);
		tvfs_fault *f = tvfs_fault_new(tvfs_mem_vfs(m));
		int rc;

		ck_assert_int_eq(tvfs_mem_mkdirs(m, "/d"), 0);
		ck_assert_int_eq(tvfs_mem_write_file(m, "/d/f", "old content", 11, 1), 0);
		tvfs_fault_reset(f);
		if (n)
			tvfs_fault_fail_nth(f, n, -EIO);
		rc = seg_write_atomic(tvfs_fault_vfs(f), "/d/f", "the new content", 15, 0640, "/d",
				      &e);
		if (!n)
			total = tvfs_fault_count(f, TVFS_OP_COUNTED);
		if (n)
			ck_assert_int_ne(rc, 0);
		else
			ck_assert_int_eq(rc, 0);
		tvfs_mem_power_loss(m, n);
		if (rc == 0) {
			ck_assert(mem_file_is(m, "/d/f", "the new content"));
			ck_assert_int_eq(tvfs_mem_mode(m, "/d/f"), 0640);
		} else {
			ck_assert(mem_file_is(m, "/d/f", "old content") ||
				  mem_file_is(m, "/d/f", "the new content"));
		}
		tvfs_fault_free(f);
		tvfs_mem_free(m);
		if (n && n >= total)
			break;
	}
	ck_assert_uint_ge(total, 5); /* unlink, open, pwrite, fsync, rename, fsync_dir */
}
END_TEST

START_TEST(test_durable_write_atomic_does_not_follow_a_planted_tmp_symlink)
{
	char path[512], tmp[512], victim[512], buf[64] = "";
	mode_t old = umask(077);
	struct stat st;
	seg_err e;
	int fd;

	snprintf(path, sizeof path, "%s/out.prom", tmpdir);
	snprintf(tmp, sizeof tmp, "%s/out.prom.tmp", tmpdir);
	snprintf(victim, sizeof victim, "%s/victim", tmpdir);
	fd = open(victim, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "precious", 8), 8);
	close(fd);
	ck_assert_int_eq(symlink(victim, tmp), 0);

	ck_assert_int_eq(seg_write_atomic(seg_vfs_posix(), path, "metrics\n", 8, 0644, NULL, &e),
			 0);
	umask(old);
	/* The victim is untouched, the output is a regular file of its own
	 * with exactly the mode asked for (not the umask's 0600). */
	fd = open(victim, O_RDONLY);
	ck_assert_int_eq(read(fd, buf, sizeof buf), 8);
	close(fd);
	ck_assert_str_eq(buf, "precious");
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0644);
	ck_assert_int_eq(lstat(tmp, &st), -1);
}
END_TEST

START_TEST(test_durable_mkdir_p_survives_power_loss)
{
	tvfs_mem *m = tvfs_mem_new(7);
	const seg_vfs *v = tvfs_mem_vfs(m);
	seg_err e;

	ck_assert_int_eq(seg_mkdir_p(v, "/a/b/c", 0700, &e), 1);
	ck_assert_int_eq(seg_mkdir_p(v, "/a/b/c", 0700, &e), 0); /* exists: fine */
	ck_assert_int_eq(seg_mkdir_durable(v, "/a/b/c/d", 0750, &e), 1);
	tvfs_mem_power_loss(m, 1);
	ck_assert(tvfs_mem_exists(m, "/a/b/c/d"));
	ck_assert_int_eq(tvfs_mem_mode(m, "/a/b/c/d"), 0750);
	tvfs_mem_free(m);
}
END_TEST

START_TEST(test_durable_quarantine_names_and_survives_power_loss)
{
	tvfs_mem *m = tvfs_mem_new(9);
	const seg_vfs *v = tvfs_mem_vfs(m);
	char name[64];
	seg_err e;

	ck_assert_int_eq(tvfs_mem_mkdirs(m, "/d/segments"), 0);
	ck_assert_int_eq(tvfs_mem_write_file(m, "/d/segments/x.seg", "one", 3, 1), 0);
	ck_assert_int_eq(seg_quarantine_move(v, "/d", "/d/segments", "x.seg", "x.seg", name,
					     sizeof name, &e),
			 0);
	ck_assert_str_eq(name, "x.seg.bad");
	ck_assert_int_eq(tvfs_mem_write_file(m, "/d/segments/x.seg", "two", 3, 1), 0);
	ck_assert_int_eq(seg_quarantine_move(v, "/d", "/d/segments", "x.seg", "x.seg", name,
					     sizeof name, &e),
			 0);
	ck_assert_str_eq(name, "x.seg.1.bad");
	ck_assert_int_eq(seg_quarantine_bytes(v, "/d", "x.seg.64", "abc", 3, name, sizeof name, &e),
			 0);
	ck_assert_str_eq(name, "x.seg.64.bad");
	tvfs_mem_power_loss(m, 2);
	/* Moved: gone from segments/ and in quarantine/, durably. */
	ck_assert(!tvfs_mem_exists(m, "/d/segments/x.seg"));
	ck_assert(mem_file_is(m, "/d/quarantine/x.seg.bad", "one"));
	ck_assert(mem_file_is(m, "/d/quarantine/x.seg.1.bad", "two"));
	ck_assert(mem_file_is(m, "/d/quarantine/x.seg.64.bad", "abc"));
	ck_assert_int_eq(tvfs_mem_mode(m, "/d/quarantine"), 0700);
	tvfs_mem_free(m);
}
END_TEST

START_TEST(test_durable_quarantine_bytes_never_follow_a_symlink)
{
	char qdir[600], path[700], victim[600];
	char name[64];
	struct stat st;
	seg_err e;

	snprintf(qdir, sizeof qdir, "%s/quarantine", tmpdir);
	snprintf(path, sizeof path, "%s/cursor.bad", qdir);
	snprintf(victim, sizeof victim, "%s/victim", tmpdir);
	ck_assert_int_eq(mkdir(qdir, 0700), 0);
	ck_assert_int_eq(symlink(victim, path), 0);
	ck_assert_int_eq(seg_quarantine_bytes(seg_vfs_posix(), tmpdir, "cursor", "xy", 2, name,
					      sizeof name, &e),
			 0);
	/* The link's name is taken, so the bytes go to the next name; the
	 * link's target was never created. */
	ck_assert_str_eq(name, "cursor.1.bad");
	ck_assert_int_eq(stat(victim, &st), -1);
	unlink(path);
	snprintf(path, sizeof path, "%s/cursor.1.bad", qdir);
	unlink(path);
	rmdir(qdir);
}
END_TEST

/* ------------------------------------------------------------------------ */
static Suite *vfs_suite(void)
{
	Suite *s = suite_create("vfs");
	TCase *tc = tcase_create("fault");

	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, test_fault_fails_each_counted_op_in_turn);
	tcase_add_test(tc, test_fault_sticky_enospc_keeps_failing);
	tcase_add_test(tc, test_fault_short_write_writes_half);
	tcase_add_test(tc, test_fault_mmap_failure_sets_err);
	tcase_add_test(tc, test_fault_hook_sees_every_op);
	tcase_add_test(tc, test_fault_fake_clock);
	tcase_add_test(tc, test_fault_wraps_mem);
	suite_add_tcase(s, tc);

	tc = tcase_create("mem");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_mem_basic_io);
	tcase_add_test(tc, test_mem_power_loss_drops_unsynced_data);
	tcase_add_test(tc, test_mem_power_loss_keeps_synced_data_intact);
	tcase_add_test(tc, test_mem_power_loss_page_mode);
	tcase_add_test(tc, test_mem_create_without_dir_fsync_vanishes);
	tcase_add_test(tc, test_mem_rename_without_dir_fsync_reverts);
	tcase_add_test(tc, test_mem_unlink_without_dir_fsync_reverts);
	tcase_add_test(tc, test_mem_mkdir_without_parent_fsync_vanishes);
	tcase_add_test(tc, test_mem_mmap_stores_are_live_and_lost_unless_fsynced);
	tcase_add_test(tc, test_mem_mmap_checks_access);
	tcase_add_test(tc, test_mem_locks);
	tcase_add_test(tc, test_mem_punch_ftruncate_fallocate);
	tcase_add_test(tc, test_mem_rmdir);
	tcase_add_test(tc, test_mem_random_and_clock);
	tcase_add_test(tc, test_mem_threads);
	suite_add_tcase(s, tc);

	tc = tcase_create("durable");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, test_durable_write_atomic_survives_power_loss_at_every_step);
	tcase_add_test(tc, test_durable_write_atomic_does_not_follow_a_planted_tmp_symlink);
	tcase_add_test(tc, test_durable_mkdir_p_survives_power_loss);
	tcase_add_test(tc, test_durable_quarantine_names_and_survives_power_loss);
	tcase_add_test(tc, test_durable_quarantine_bytes_never_follow_a_symlink);
	suite_add_tcase(s, tc);
	return s;
}

TU_CHECK_MAIN(vfs_suite)
