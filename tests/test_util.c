/*
 * test_util.c - see test_util.h.
 */
#include <edgelog.h>

#include "test_util.h"
#include "tool_sample.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void tu_buf_free(tu_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

/* Directories to remove at exit (a failing Check test exits its child
 * process from inside the assertion, skipping the test's own cleanup). */
#define TU_MAX_DIRS 64
static char *tu_dirs[TU_MAX_DIRS];
static int tu_ndirs;
static pid_t tu_owner;

static void tu_cleanup(void)
{
	/* Only the process that created the directories removes them: a
	 * forked grandchild exiting must not pull them from under a test. */
	if (getpid() != tu_owner)
		return;
	for (int i = 0; i < tu_ndirs; i++) {
		tu_rm_rf(tu_dirs[i]);
		free(tu_dirs[i]);
	}
	tu_ndirs = 0;
}

static char tu_root[256];

int tu_time_factor(void)
{
	const char *f = getenv("EDGELOG_TEST_TIME_FACTOR");
	int n = f ? atoi(f) : 1;
	return n > 0 ? n : 1;
}

int tu_iterations(int full)
{
	const char *p = getenv("EDGELOG_TEST_ITERATIONS");
	long pct = p ? strtol(p, NULL, 10) : 100;
	long n;

	if (pct <= 0 || pct > 100)
		pct = 100;
	n = (long)full * pct / 100;
	return n > 0 ? (int)n : 1;
}

const char *tu_tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	return t && *t ? t : "/tmp";
}

void tu_tmp_root_setup(void)
{
	snprintf(tu_root, sizeof tu_root, "%s/edgelog-check-XXXXXX", tu_tmpdir());
	if (!mkdtemp(tu_root)) {
		fprintf(stderr, "mkdtemp(%s): %s\n", tu_root, strerror(errno));
		tu_root[0] = 0;
	}
}

void tu_tmp_root_teardown(void)
{
	if (tu_root[0])
		tu_rm_rf(tu_root);
	tu_root[0] = 0;
}

char *tu_mkdtemp(const char *prefix)
{
	char tmpl[512];
	snprintf(tmpl, sizeof tmpl, "%s/%s-XXXXXX", tu_root[0] ? tu_root : tu_tmpdir(), prefix);
	if (!mkdtemp(tmpl))
		ck_abort_msg("mkdtemp(%s): %s", tmpl, strerror(errno));
	char *p = strdup(tmpl);
	ck_assert_ptr_nonnull(p);
	if (tu_owner != getpid()) {
		/* First directory in this (forked) process. */
		tu_owner = getpid();
		tu_ndirs = 0;
		atexit(tu_cleanup);
	}
	if (tu_ndirs < TU_MAX_DIRS)
		tu_dirs[tu_ndirs++] = strdup(p);
	return p;
}

static int tu_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		return rmdir(path) == 0 ? 0 : -1;
	return unlink(path) == 0 ? 0 : -1;
}

int tu_rm_rf(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	return nftw(path, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void tu_empty_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		ck_abort_msg("opendir(%s): %s", dir, strerror(errno));
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (tu_rm_rf(tu_path(dir, de->d_name)) != 0)
			ck_abort_msg("rm -rf %s/%s: %s", dir, de->d_name, strerror(errno));
	}
	closedir(d);
}

const char *tu_path(const char *dir, const char *name)
{
	static char slots[8][4200];
	static int next;
	char *p = slots[next++ & 7];
	snprintf(p, sizeof slots[0], "%s/%s", dir, name);
	return p;
}

tu_buf tu_read_file(const char *path)
{
	tu_buf b = {NULL, 0};
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		ck_abort_msg("open(%s): %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0)
		ck_abort_msg("fstat(%s): %s", path, strerror(errno));
	b.len = (size_t)st.st_size;
	b.data = malloc(b.len ? b.len : 1);
	ck_assert_ptr_nonnull(b.data);
	size_t got = 0;
	while (got < b.len) {
		ssize_t n = pread(fd, b.data + got, b.len - got, (off_t)got);
		if (n <= 0)
			ck_abort_msg("pread(%s): %s", path, n < 0 ? strerror(errno) : "short");
		got += (size_t)n;
	}
	close(fd);
	return b;
}

void tu_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		ck_abort_msg("open(%s): %s", path, strerror(errno));
	size_t put = 0;
	while (put < len) {
		ssize_t n = pwrite(fd, (const uint8_t *)data + put, len - put, (off_t)put);
		if (n <= 0)
			ck_abort_msg("pwrite(%s): %s", path, n < 0 ? strerror(errno) : "short");
		put += (size_t)n;
	}
	close(fd);
}

int tu_file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

uint64_t tu_file_size(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		ck_abort_msg("stat(%s): %s", path, strerror(errno));
	return (uint64_t)st.st_size;
}

int tu_count_entries(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	if (!d)
		ck_abort_msg("opendir(%s): %s", dir, strerror(errno));
	int n = 0;
	size_t sl = strlen(suffix);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		size_t l = strlen(de->d_name);
		if (l >= sl && !strcmp(de->d_name + l - sl, suffix))
			n++;
	}
	closedir(d);
	return n;
}

uint64_t tu_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t tu_rand_below(uint64_t *state, uint64_t n)
{
	return n ? tu_rand(state) % n : 0;
}

tu_buf tu_prediction(uint64_t index, uint64_t seed)
{
	tu_buf out;

	out.data = malloc(1024);
	ck_assert_ptr_nonnull(out.data);
	out.len = tool_sample_msgpack_ex(seed, index, 0, out.data, 1024);
	ck_assert_uint_gt(out.len, 0);
	return out;
}

struct edgelog *tu_open_ok(const struct edgelog_config *c)
{
	edgelog *log = NULL;
	int rc = edgelog_open(&log, c);
	ck_assert_msg(rc == 0, "edgelog_open(%s): %s: %s", c->dir, edgelog_strerror(rc),
		      edgelog_errmsg(NULL));
	return log;
}

uint64_t tu_seed(void)
{
	const char *s = getenv("EDGELOG_TEST_SEED");
	return s && *s ? strtoull(s, NULL, 0) : 1;
}

void tu_quiet_log(void *payload, int level, const char *msg)
{
	(void)payload;
	(void)level;
	(void)msg;
}

size_t tu_keyed_record(uint64_t key, size_t min, size_t spread, uint8_t *out)
{
	size_t len = min + key % spread, i, h;

	out[0] = 0x92; /* [key, bin] */
	out[1] = 0xcf;
	for (i = 0; i < 8; i++)
		out[2 + i] = (uint8_t)(key >> (56 - 8 * i));
	if (len < 256) {
		out[10] = 0xc4;
		out[11] = (uint8_t)len;
		h = 12;
	} else {
		out[10] = 0xc5;
		out[11] = (uint8_t)(len >> 8);
		out[12] = (uint8_t)len;
		h = 13;
	}
	for (i = 0; i < len; i++)
		out[h + i] = (uint8_t)(key * 131 + i * 7 + 3);
	return h + len;
}

uint64_t tu_keyed_record_key(const uint8_t *p, size_t len, size_t min, size_t spread)
{
	uint8_t *want;
	uint64_t key = 0;
	int i, same;

	if (len < 12 || len > 13 + min + spread || p[0] != 0x92 || p[1] != 0xcf)
		return 0;
	for (i = 0; i < 8; i++)
		key = key << 8 | p[2 + i];
	if (key == 0 || !(want = malloc(13 + min + spread)))
		return 0;
	same = tu_keyed_record(key, min, spread, want) == len && memcmp(p, want, len) == 0;
	free(want);
	return same ? key : 0;
}

size_t tu_nested_key_record(int levels, uint8_t *out)
{
	size_t n = 0;
	int i;

	for (i = 0; i < levels - 1; i++)
		out[n++] = 0x81;
	out[n++] = 0x81;
	out[n++] = 0xa1;
	out[n++] = 'k';
	out[n++] = 0x00;
	for (i = 0; i < levels - 1; i++)
		out[n++] = 0xc0;
	return n;
}

char *tu_nested_key_json(int levels)
{
	/* key text of j levels: {"k":0} for 1, "{" + text(j-1) + ":null}". */
	size_t cap = (size_t)levels * 8 + 32, n = 0;
	char *t = malloc(cap * 2), *out;
	int i;

	if (!t)
		ck_abort_msg("out of memory");
	if (levels == 1) {
		strcpy(t, "{\"k\":0}");
		return t;
	}
	for (i = 0; i < levels - 2; i++)
		t[n++] = '{';
	n += (size_t)sprintf(t + n, "{\\\"k\\\":0}");
	for (i = 0; i < levels - 2; i++)
		n += (size_t)sprintf(t + n, ":null}");
	out = malloc(n + 16);
	if (!out)
		ck_abort_msg("out of memory");
	sprintf(out, "{\"%s\":null}", t);
	free(t);
	return out;
}
