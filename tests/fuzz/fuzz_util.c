/*
 * fuzz_util.c - scratch directories and small helpers for the fuzz targets.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

static char tmp_root[PATH_MAX];

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void fuzz_rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup(void)
{
	if (tmp_root[0])
		fuzz_rm_rf(tmp_root);
}

const char *fuzz_tmpdir(void)
{
	if (!tmp_root[0]) {
		const char *t = getenv("TMPDIR");
		snprintf(tmp_root, sizeof(tmp_root), "%s/edgelog-fuzz-XXXXXX",
			 t && *t ? t : "/tmp");
		if (!mkdtemp(tmp_root)) {
			perror("mkdtemp");
			abort();
		}
		atexit(cleanup);
	}
	return tmp_root;
}

const char *fuzz_fresh_dir(const char *name)
{
	static char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", fuzz_tmpdir(), name);
	fuzz_rm_rf(path);
	if (mkdir(path, 0700) && errno != EEXIST) {
		perror(path);
		abort();
	}
	return path;
}

void fuzz_write_file(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	const char *p = data;

	if (fd < 0) {
		perror(path);
		abort();
	}
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0) {
			perror(path);
			abort();
		}
		p += w;
		n -= (size_t)w;
	}
	close(fd);
}

void fuzz_quiet_log(void *payload, int level, const char *msg)
{
	(void)payload;
	(void)level;
	(void)msg;
}
