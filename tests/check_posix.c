/*
 * check_posix.c - the POSIX I/O table (segments/seg_vfs_posix.c) when the
 * system calls under it fail. readdir is wrapped at link time
 * (-Wl,--wrap=readdir, see tests/CMakeLists.txt): armed, the Nth call from
 * then on returns NULL with errno EOVERFLOW, as glibc's does on a 32-bit
 * build without 64-bit inode numbers, or on EIO. A directory listing that
 * fails must be an error, never an empty directory: an engine reopened on
 * a directory it could not list would start a new segment, and the
 * records of the first would never be uploaded or compacted.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgelog.h"
#include "test_main.h"
#include "test_util.h"

/* ------------------------------------------------------------------------
 * The readdir wrapper
 * ---------------------------------------------------------------------- */
void *__real_readdir(DIR *d);
void *__real_readdir64(DIR *d);
void *__wrap_readdir(DIR *d);
void *__wrap_readdir64(DIR *d);

static long fail_at;   /* 0: pass through; else fail the fail_at-th call */
static long calls;     /* calls since arming */
static int fault_hits; /* failures injected since arming */

static void arm(long nth)
{
	fail_at = nth;
	calls = 0;
	fault_hits = 0;
}

static void *fake_readdir(DIR *d, void *(*real)(DIR *))
{
	if (fail_at && ++calls == fail_at) {
		fault_hits++;
		errno = EOVERFLOW;
		return NULL;
	}
	return real(d);
}

void *__wrap_readdir(DIR *d)
{
	return fake_readdir(d, __real_readdir);
}

void *__wrap_readdir64(DIR *d)
{
	return fake_readdir(d, __real_readdir64);
}

/* ------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */
static void quiet_log(void *payload, int level, const char *msg)
{
	(void)payload;
	(void)level;
	(void)msg;
}

static void conf(edgelog_config *c, const char *dir)
{
	edgelog_config_init(c);
	c->dir = dir;
	c->device_id = "test-device";
	c->segment_bytes = 64 * 1024;
	c->log_fn = quiet_log;
}

/* One msgpack bin16 of 1000 bytes, filled with the record's number. */
static void record(uint8_t *buf, uint64_t n)
{
	buf[0] = 0xc5;
	buf[1] = 0x03;
	buf[2] = 0xe8;
	memset(buf + 3, (int)(n & 0xff), 1000);
}

/* A directory holding `count` records over several segments. */
static char *filled_dir(uint64_t count)
{
	char *dir = tu_mkdtemp("posix");
	edgelog_config c;
	edgelog *log;
	uint8_t rec[1003];
	uint64_t i, seq;

	conf(&c, dir);
	ck_assert_int_eq(edgelog_open(&log, &c), EDGELOG_OK);
	for (i = 1; i <= count; i++) {
		record(rec, i);
		ck_assert_int_eq(edgelog_append(log, rec, sizeof(rec), &seq), EDGELOG_OK);
		ck_assert_uint_eq(seq, i);
	}
	ck_assert_int_eq(edgelog_close(log), EDGELOG_OK);
	ck_assert_int_ge(tu_count_entries(tu_path(dir, "segments"), ".seg"), 3);
	return dir;
}

/* Every record 1..count is readable, in order, with its content. */
static void assert_all_there(const char *dir, uint64_t count)
{
	edgelog_reader *r;
	edgelog_record rec;
	uint64_t want = 1;
	int rc;

	ck_assert_int_eq(edgelog_reader_open(&r, dir, 1), EDGELOG_OK);
	while ((rc = edgelog_reader_next(r, &rec)) == EDGELOG_OK) {
		ck_assert_uint_eq(rec.seq, want);
		ck_assert_uint_eq(rec.len, 1003);
		ck_assert_uint_eq(((const uint8_t *)rec.data)[3], want & 0xff);
		want++;
	}
	ck_assert_int_eq(rc, EDGELOG_EOF);
	edgelog_reader_close(r);
	ck_assert_uint_eq(want, count + 1);
}

/* ------------------------------------------------------------------------
 * Tests
 * ---------------------------------------------------------------------- */

/* Reopening an engine while each readdir call in turn fails: the open
 * either fails naming the listing, or it succeeds having seen every
 * segment (the next record continues the sequence). Nothing is lost and
 * no second history starts. */
START_TEST(test_open_listing_fails)
{
	const uint64_t count = 200;
	char *dir = filled_dir(count);
	uint64_t next = count + 1;
	int failed_opens = 0;
	long n;

	for (n = 1;; n++) {
		edgelog_config c;
		edgelog *log = NULL;
		uint8_t rec[1003];
		uint64_t seq = 0;
		int rc;

		conf(&c, dir);
		arm(n);
		rc = edgelog_open(&log, &c);
		arm(0);
		if (rc != EDGELOG_OK) {
			ck_assert_ptr_null(log);
			ck_assert_msg(strstr(edgelog_errmsg(NULL), strerror(EOVERFLOW)) != NULL,
				      "readdir call %ld failed: message does not say why: %s", n,
				      edgelog_errmsg(NULL));
			failed_opens++;
			continue;
		}
		record(rec, next);
		ck_assert_int_eq(edgelog_append(log, rec, sizeof(rec), &seq), EDGELOG_OK);
		ck_assert_msg(seq == next,
			      "readdir call %ld failed, open succeeded and gave seq %llu, not %llu",
			      n, (unsigned long long)seq, (unsigned long long)next);
		ck_assert_int_eq(edgelog_close(log), EDGELOG_OK);
		next++;
		if (!fault_hits)
			break; /* n is past the last readdir call of an open */
	}
	ck_assert_int_ge(failed_opens, 1);
	assert_all_there(dir, next - 1);
	free(dir);
}
END_TEST

/* Offline status and the reader: a failed listing is an error. */
START_TEST(test_status_and_reader_listing_fails)
{
	const uint64_t count = 200;
	char *dir = filled_dir(count);
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog_reader *r = NULL;
	int live = 0, rc, errors = 0;
	long n;

	for (n = 1;; n++) {
		arm(n);
		rc = edgelog_status_dir(dir, &st, &live);
		arm(0);
		if (rc != EDGELOG_OK) {
			ck_assert_msg(strstr(edgelog_errmsg(NULL), strerror(EOVERFLOW)) != NULL,
				      "status, readdir call %ld: %s", n, edgelog_errmsg(NULL));
			errors++;
			continue;
		}
		ck_assert_msg(st.last_seq == count, "status, readdir call %ld: last_seq %llu", n,
			      (unsigned long long)st.last_seq);
		ck_assert_msg(st.segments >= 3, "status, readdir call %ld: %llu segments", n,
			      (unsigned long long)st.segments);
		if (!fault_hits)
			break;
	}
	ck_assert_int_ge(errors, 1);

	arm(1);
	rc = edgelog_reader_open(&r, dir, 1);
	arm(0);
	if (rc == EDGELOG_OK) {
		edgelog_record rec;
		arm(1);
		rc = edgelog_reader_next(r, &rec);
		arm(0);
		edgelog_reader_close(r);
	}
	ck_assert_msg(rc != EDGELOG_OK && rc != EDGELOG_EOF,
		      "reader over a directory it could not list: %s", edgelog_strerror(rc));
	assert_all_there(dir, count);
	free(dir);
}
END_TEST

static Suite *posix_suite(void)
{
	Suite *s = suite_create("posix");
	TCase *tc = tcase_create("listing");

	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_open_listing_fails);
	tcase_add_test(tc, test_status_and_reader_listing_fails);
	suite_add_tcase(s, tc);
	return s;
}

TU_CHECK_MAIN(posix_suite)
