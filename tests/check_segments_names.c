/*
 * check_segments_names.c - segment file names (round trip, bad names
 * refused), paths and the directory listing, and the error codes.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "seg_dir.h"
#include "seg_err.h"
#include "seg_format.h"
#include "test_main.h"
#include "test_segments.h"
#include "test_util.h"

/* ------------------------------------------------------------------------
 * Names, paths, listing, errors
 */

START_TEST(test_seg_name_roundtrip)
{
	uint64_t v[] = {
		1,         2, 9, 10, 4096, 1000000007ull, 12345678901234567890ull, UINT64_MAX - 1,
		UINT64_MAX};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		char name[SEG_NAME_LEN + 1];
		memset(name, 'x', sizeof name);
		seg_name(name, v[i]);
		ck_assert_uint_eq(strlen(name), SEG_NAME_LEN);
		char want[64];
		snprintf(want, sizeof want, "%020" PRIu64 ".seg", v[i]);
		ck_assert_str_eq(name, want);
		uint64_t base = 0;
		ck_assert_int_eq(seg_name_parse(name, &base), 1);
		ck_assert_uint_eq(base, v[i]);
	}
	/* Names sort like their numbers. */
	char a[SEG_NAME_LEN + 1], b[SEG_NAME_LEN + 1];
	seg_name(a, 999);
	seg_name(b, 1000);
	ck_assert_int_lt(strcmp(a, b), 0);
}
END_TEST

START_TEST(test_seg_name_parse_rejects_bad_names)
{
	const char *bad[] = {
		"x.seg",
		"0000000000000000001.seg",   /* 19 digits */
		"000000000000000000001.seg", /* 21 digits */
		".spare",
		"00000000000000000001.seg.bad",
		"00000000000000000001.se",
		"00000000000000000001.SEG",
		"00000000000000000001seg",
		"00000000000000000001.segx",
		"0000000000000000000a.seg",
		"+0000000000000000001.seg",
		"-0000000000000000001.seg",
		" 0000000000000000001.seg",
		"0000000000 000000001.seg",
		"18446744073709551616.seg", /* UINT64_MAX + 1 */
		"99999999999999999999.seg",
		"",
		".seg",
		"cursor",
		"00000000000000000001.seg/",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint64_t base = 0xdeadbeef;
		ck_assert_msg(seg_name_parse(bad[i], &base) == 0, "\"%s\" accepted", bad[i]);
	}
}
END_TEST

START_TEST(test_seg_path_and_list)
{
	char out[64];
	ck_assert_int_eq(seg_path(out, sizeof out, "/a/b", "c.seg"), 0);
	ck_assert_str_eq(out, "/a/b/c.seg");
	ck_assert_int_eq(seg_path(out, 11, "/a/b", "c.seg"), 0); /* exactly fits */
	ck_assert_str_eq(out, "/a/b/c.seg");
	ck_assert_int_eq(seg_path(out, 10, "/a/b", "c.seg"), EDGELOG_EINVAL);

	char *dir = tu_mkdtemp("segdir");
	seg_list l = list_ok(dir);
	ck_assert_uint_eq(l.n, 0);
	seg_list_free(&l);
	uint64_t bases[] = {4096, 1, 100, UINT64_MAX, 77};
	for (size_t i = 0; i < 5; i++)
		tu_write_file(seg_file(dir, bases[i]), "", 0);
	const char *junk[] = {".spare", "x.seg", "00000000000000000001.seg.bad", "cursor",
			      "0000000000000000002.seg"};
	for (size_t i = 0; i < 5; i++)
		tu_write_file(tu_path(dir, junk[i]), "", 0);
	ck_assert_int_eq(mkdir(tu_path(dir, "failed"), 0700), 0);
	l = list_ok(dir);
	ck_assert_uint_eq(l.n, 5);
	uint64_t want[] = {1, 77, 100, 4096, UINT64_MAX};
	for (size_t i = 0; i < 5; i++)
		ck_assert_uint_eq(l.base[i], want[i]);
	seg_list_free(&l);
	/* A missing directory is an empty list. */
	l = list_ok(tu_path(dir, "nope"));
	ck_assert_uint_eq(l.n, 0);
	seg_list_free(&l);
	free(dir);
}
END_TEST

START_TEST(test_seg_err_codes)
{
	ck_assert_int_eq(seg_errno_code(-ENOSPC), EDGELOG_ENOSPC);
	ck_assert_int_eq(seg_errno_code(-EACCES), EDGELOG_EPERM);
	ck_assert_int_eq(seg_errno_code(-EROFS), EDGELOG_EPERM);
	ck_assert_int_eq(seg_errno_code(-EPERM), EDGELOG_EPERM);
	ck_assert_int_eq(seg_errno_code(-ENOENT), EDGELOG_ENOTFOUND);
	ck_assert_int_eq(seg_errno_code(-ENOMEM), EDGELOG_ENOMEM);
	ck_assert_int_eq(seg_errno_code(-EIO), EDGELOG_EIO);
	ck_assert_int_eq(seg_errno_code(-EINVAL), EDGELOG_EIO);
	seg_err e;
	memset(&e, 0, sizeof e);
	ck_assert_int_eq(seg_fail(&e, EDGELOG_ECORRUPT, "bad frame at %d in %s", 42, "f.seg"),
			 EDGELOG_ECORRUPT);
	ck_assert_str_eq(e.msg, "bad frame at 42 in f.seg");
	ck_assert_int_eq(seg_fail(NULL, EDGELOG_EIO, "x"), EDGELOG_EIO);
	ck_assert_int_eq(seg_fail_errno(&e, -ENOSPC, "write %s", "a.seg"), EDGELOG_ENOSPC);
	ck_assert_ptr_nonnull(strstr(e.msg, "write a.seg"));
	ck_assert_ptr_nonnull(strstr(e.msg, strerror(ENOSPC)));
	/* A message longer than the buffer is cut, still terminated. */
	char big[2000];
	memset(big, 'y', sizeof big - 1);
	big[sizeof big - 1] = 0;
	seg_fail(&e, EDGELOG_EIO, "%s", big);
	ck_assert_uint_lt(strlen(e.msg), sizeof e.msg);
}
END_TEST

static Suite *names_suite(void)
{
	Suite *s = segments_suite_create("segments_names");
	TCase *tc;

	tc = tcase_create("names");
	tcase_add_test(tc, test_seg_name_roundtrip);
	tcase_add_test(tc, test_seg_name_parse_rejects_bad_names);
	tcase_add_test(tc, test_seg_path_and_list);
	tcase_add_test(tc, test_seg_err_codes);
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	suite_add_tcase(s, tc);

	return s;
}

TU_CHECK_MAIN(names_suite)
