/*
 * check_meta.c - DIR/meta.json as eng_meta_store writes it and
 * eng_meta_load reads it back, without a JSON library (eng_jread.c):
 * quotes, backslashes, control characters, UTF-8 and invalid UTF-8 (stored
 * as U+FFFD), the full integer ranges; text that is not an object is not
 * ours.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_internal.h"
#include "test_main.h"
#include "test_util.h"

static void put(const char *dir, const char *text)
{
	FILE *f = fopen(tu_path(dir, "meta.json"), "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_meta_round_trip)
{
	char *dir = tu_mkdtemp("meta");
	const seg_vfs *v = seg_vfs_posix();
	eng_meta m, back;
	seg_err e;

	memset(&m, 0, sizeof(m));
	snprintf(m.device_id, sizeof(m.device_id), "cam \"7\" \\ caf\xc3\xa9 \x01\t\n/");
	snprintf(m.last_error, sizeof(m.last_error), "EDGELOG_EIO: write failed \xff here");
	m.last_error_at = -1700000000123;
	m.poisoned = 9223372036854775807ull;
	ck_assert_int_eq(eng_meta_store(v, dir, &m, &e), 0);
	ck_assert_int_eq(eng_meta_load(v, dir, &back), 0);
	ck_assert_str_eq(back.device_id, m.device_id);
	ck_assert_str_eq(back.last_error, "EDGELOG_EIO: write failed \xef\xbf\xbd here");
	ck_assert_int_eq(back.last_error_at, m.last_error_at);
	ck_assert_uint_eq(back.poisoned, m.poisoned);

	/* No last error: null. */
	m.last_error[0] = '\0';
	m.last_error_at = 0;
	m.poisoned = 0;
	ck_assert_int_eq(eng_meta_store(v, dir, &m, &e), 0);
	ck_assert_int_eq(eng_meta_load(v, dir, &back), 0);
	ck_assert_str_eq(back.last_error, "");
	ck_assert_uint_eq(back.poisoned, 0);
	free(dir);
}
END_TEST

/* Written by hand: escapes of every kind, members in any order, a device id
 * longer than the field (cut), a negative poison count ignored. */
START_TEST(test_meta_read_by_hand)
{
	char *dir = tu_mkdtemp("meta");
	const seg_vfs *v = seg_vfs_posix();
	char text[600], longid[300];
	eng_meta back;

	put(dir, " {\"poisoned\": -4, \"last_error_at\" : 17,\n \"format\":1, "
		 "\"last_error\":\"a\\u00e9\\ud83d\\ude00\\n\\\"b\\\"\\/\", "
		 "\"device_id\":\"dev-1\"}\n");
	ck_assert_int_eq(eng_meta_load(v, dir, &back), 0);
	ck_assert_str_eq(back.device_id, "dev-1");
	ck_assert_str_eq(back.last_error, "a\xc3\xa9\xf0\x9f\x98\x80\n\"b\"/");
	ck_assert_int_eq(back.last_error_at, 17);
	ck_assert_uint_eq(back.poisoned, 0);

	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	snprintf(text, sizeof(text), "{\"device_id\":\"%s\"}", longid);
	put(dir, text);
	ck_assert_int_eq(eng_meta_load(v, dir, &back), 0);
	ck_assert_uint_eq(strlen(back.device_id), sizeof(back.device_id) - 1);

	/* Not ours. */
	put(dir, "[\"device_id\"]");
	ck_assert_int_eq(eng_meta_load(v, dir, &back), -1);
	ck_assert_str_eq(back.device_id, "");
	put(dir, "");
	ck_assert_int_eq(eng_meta_load(v, dir, &back), -1);
	free(dir);
}
END_TEST

static Suite *meta_suite(void)
{
	Suite *s = suite_create("meta");
	TCase *tc = tcase_create("meta");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_meta_round_trip);
	tcase_add_test(tc, test_meta_read_by_hand);
	suite_add_tcase(s, tc);
	return s;
}

TU_CHECK_MAIN(meta_suite)
