/*
 * check_api.c - the public API as a program outside the library sees it:
 * this runner includes <edgelog.h> and nothing of the library's insides,
 * and links the edgelog library target only. Status text (JSON and
 * Prometheus), the status struct's version, alerts; the scan, verify and
 * salvage calls the tools stand on.
 */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <edgelog.h>

#include "test_main.h"

/* ---- helpers: only libc ---------------------------------------------------- */

static char *tmp_dir(void)
{
	const char *root = getenv("TMPDIR");
	char *p = malloc(4096);

	ck_assert_ptr_nonnull(p);
	snprintf(p, 4096, "%s/edgelog-api-XXXXXX", root && *root ? root : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(p));
	return p;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_rf(char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(path);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

static edgelog *open_dir(const char *dir, edgelog_config *cfg)
{
	edgelog *log = NULL;
	int rc;

	edgelog_config_init(cfg);
	cfg->dir = dir;
	cfg->device_id = "cam-api";
	cfg->segment_bytes = 65536;
	cfg->max_size_mb = 10;
	rc = edgelog_open(&log, cfg);
	ck_assert_msg(rc == 0, "open: %s", edgelog_errmsg(NULL));
	return log;
}

static void append_n(edgelog *log, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		char json[64];
		int k = snprintf(json, sizeof(json), "{\"i\":%d,\"label\":\"cat\"}", i);
		ck_assert_int_eq(edgelog_append_json(log, json, (size_t)k, NULL), 0);
	}
}

/* A status with every kind of field set, for the text writers. */
static edgelog_status sample_status(void)
{
	edgelog_status st;

	edgelog_status_init(&st);
	snprintf(st.device_id, sizeof(st.device_id), "cam \"7\"\\");
	st.pending = 1001;
	st.sent = 5;
	st.failed = 101;
	st.size_bytes = 950;
	st.max_size_bytes = 1000;
	st.segments = 3;
	st.is_connected = 1;
	snprintf(st.last_error, sizeof(st.last_error), "HTTP 503\nretry");
	st.last_success_at = 1700000000;
	st.alert_pending = 1000;
	st.alert_size_pct = 90;
	st.alert_failed = 100;
	st.alerts = EDGELOG_ALERT_PENDING | EDGELOG_ALERT_FAILED;
	st.last_error_at = -5;
	return st;
}

/* ---- the status struct ------------------------------------------------------ */

START_TEST(test_status_init_sets_version_and_zeroes)
{
	edgelog_status st;

	memset(&st, 0xab, sizeof(st));
	edgelog_status_init(&st);
	ck_assert_uint_eq(st.version, EDGELOG_STATUS_VERSION);
	ck_assert_uint_eq(st.pending, 0);
	ck_assert_str_eq(st.device_id, "");
	ck_assert_int_eq(st.running, 0);
}
END_TEST

START_TEST(test_status_without_version_is_refused)
{
	char *dir = tmp_dir();
	edgelog_config cfg;
	edgelog *log = open_dir(dir, &cfg);
	edgelog_status st;
	unsigned bad[] = {0, EDGELOG_STATUS_VERSION + 1, 0xabababab};
	size_t i;
	int live = 7;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&st, 0, sizeof(st));
		st.version = bad[i];
		ck_assert_int_eq(edgelog_get_status(log, &st), EDGELOG_EINVAL);
		ck_assert_msg(strstr(edgelog_errmsg(log), "edgelog_status_init"), "%s",
			      edgelog_errmsg(log));
		ck_assert_uint_eq(st.pending, 0); /* nothing written */
		ck_assert_int_eq(edgelog_status_dir(dir, &st, &live), EDGELOG_EINVAL);
		ck_assert_msg(strstr(edgelog_errmsg(NULL), "version"), "%s", edgelog_errmsg(NULL));
		ck_assert_int_eq(edgelog_status_json(&st, NULL, NULL, 0, NULL), EDGELOG_EINVAL);
		ck_assert_int_eq(edgelog_status_prometheus(&st, NULL, 0, NULL), EDGELOG_EINVAL);
	}
	ck_assert_int_eq(edgelog_status_json(NULL, NULL, NULL, 0, NULL), EDGELOG_EINVAL);
	append_n(log, 2);
	edgelog_status_init(&st);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.version, EDGELOG_STATUS_VERSION);
	ck_assert_uint_eq(st.pending, 2);
	ck_assert_int_eq(edgelog_close(log), 0);
	rm_rf(dir);
}
END_TEST

/* ---- status as text ----------------------------------------------------------- */

START_TEST(test_status_json_exact_bytes)
{
	edgelog_status st = sample_status();
	char out[4096];
	size_t len = 0;
	static const char want[] =
		"{\"source\":\"live\",\"device_id\":\"cam \\\"7\\\"\\\\\",\"pending\":1001,"
		"\"sent\":5,\"failed\":101,\"dropped\":0,\"expired\":0,\"corrupt\":0,"
		"\"size_bytes\":950,\"max_size_bytes\":1000,\"segments\":3,"
		"\"oldest_pending_age_s\":0,\"is_connected\":true,"
		"\"last_error\":\"HTTP 503\\nretry\",\"last_success_at\":1700000000,"
		"\"retry_in_s\":0,\"recovered\":0,\"appended\":0,\"first_seq\":0,\"last_seq\":0,"
		"\"acked_seq\":0,\"durable_seq\":0,\"torn_tails\":0,\"torn_bytes\":0,"
		"\"cursor_resets\":0,\"sync_failures\":0,\"requeued\":0,\"failed_bytes\":0,"
		"\"alert_pending\":1000,\"alert_size_pct\":90,\"alert_failed\":100,"
		"\"upload_enabled\":false,\"poisoned\":0,\"last_error_at\":-5,\"running\":false,"
		"\"alerts\":[{\"alert\":\"pending\",\"message\":\"pending 1001 > 1000\"},"
		"{\"alert\":\"failed\",\"message\":\"failed 101 > 100\"}]}";

	ck_assert_int_eq(edgelog_status_json(&st, "live", out, sizeof(out), &len), 0);
	ck_assert_str_eq(out, want);
	ck_assert_uint_eq(len, strlen(want));
	/* No source: the object starts with device_id. */
	ck_assert_int_eq(edgelog_status_json(&st, NULL, out, sizeof(out), &len), 0);
	ck_assert_int_eq(out[0], '{');
	ck_assert_str_eq(out + 1, want + strlen("{\"source\":\"live\","));
}
END_TEST

START_TEST(test_status_json_cut_to_the_buffer_says_erange)
{
	edgelog_status st = sample_status();
	char whole[4096], small[40];
	size_t len = 0, need = 0;

	ck_assert_int_eq(edgelog_status_json(&st, "offline", NULL, 0, &need), EDGELOG_ERANGE);
	ck_assert_int_eq(edgelog_status_json(&st, "offline", whole, sizeof(whole), &len), 0);
	ck_assert_uint_eq(need, len);
	memset(small, 'x', sizeof(small));
	ck_assert_int_eq(edgelog_status_json(&st, "offline", small, sizeof(small), &need),
			 EDGELOG_ERANGE);
	ck_assert_uint_eq(need, len);
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ck_assert_int_eq(memcmp(small, whole, sizeof(small) - 1), 0);
	ck_assert_msg(strstr(edgelog_errmsg(NULL), "do not fit"), "%s", edgelog_errmsg(NULL));
	/* Exactly the length: no room for the NUL, still ERANGE. */
	{
		char *exact = malloc(len);
		ck_assert_int_eq(edgelog_status_json(&st, "offline", exact, len, NULL),
				 EDGELOG_ERANGE);
		free(exact);
	}
	ck_assert_str_eq(edgelog_strerror(EDGELOG_ERANGE),
			 "EDGELOG_ERANGE: text larger than the buffer given");
}
END_TEST

START_TEST(test_status_prometheus_lines)
{
	edgelog_status st = sample_status();
	char out[16384], small[100];
	size_t len = 0, need = 0;

	ck_assert_int_eq(edgelog_status_prometheus(&st, out, sizeof(out), &len), 0);
	ck_assert_uint_eq(len, strlen(out));
	ck_assert_msg(!strncmp(out,
			       "# HELP edgelog_pending_records Records stored and not yet "
			       "acknowledged.\n# TYPE edgelog_pending_records gauge\n"
			       "edgelog_pending_records{device_id=\"cam \\\"7\\\"\\\\\"} 1001\n",
			       strlen("# HELP edgelog_pending_records")),
		      "%s", out);
	ck_assert_ptr_nonnull(
		strstr(out, "edgelog_pending_records{device_id=\"cam \\\"7\\\"\\\\\"} 1001\n"));
	ck_assert_ptr_nonnull(strstr(out, "# TYPE edgelog_sent_records_total counter\n"));
	ck_assert_ptr_nonnull(
		strstr(out, "edgelog_connected{device_id=\"cam \\\"7\\\"\\\\\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(
		out, "edgelog_last_error_timestamp_seconds{device_id=\"cam \\\"7\\\"\\\\\"} -5\n"));
	ck_assert_ptr_nonnull(strstr(out, ",alert=\"pending\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(out, ",alert=\"size\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(out, ",alert=\"failed\"} 1\n"));
	ck_assert_int_eq(out[len - 1], '\n');
	ck_assert_int_eq(edgelog_status_prometheus(&st, small, sizeof(small), &need),
			 EDGELOG_ERANGE);
	ck_assert_uint_eq(need, len);
	ck_assert_int_eq(memcmp(small, out, sizeof(small) - 1), 0);
}
END_TEST

START_TEST(test_alert_names_and_messages)
{
	edgelog_status st = sample_status();
	char msg[128], tiny[8];

	ck_assert_str_eq(edgelog_alert_name(EDGELOG_ALERT_PENDING), "pending");
	ck_assert_str_eq(edgelog_alert_name(EDGELOG_ALERT_SIZE), "size");
	ck_assert_str_eq(edgelog_alert_name(EDGELOG_ALERT_FAILED), "failed");
	ck_assert_str_eq(edgelog_alert_name(1u << 9), "unknown");
	edgelog_alert_message(&st, EDGELOG_ALERT_PENDING, msg, sizeof(msg));
	ck_assert_str_eq(msg, "pending 1001 > 1000");
	edgelog_alert_message(&st, EDGELOG_ALERT_SIZE, msg, sizeof(msg));
	ck_assert_str_eq(msg, "size 950 bytes > 90% of the cap (1000 bytes)");
	edgelog_alert_message(&st, EDGELOG_ALERT_FAILED, msg, sizeof(msg));
	ck_assert_str_eq(msg, "failed 101 > 100");
	edgelog_alert_message(&st, EDGELOG_ALERT_FAILED, tiny, sizeof(tiny));
	ck_assert_str_eq(tiny, "failed ");
	edgelog_alert_message(&st, EDGELOG_ALERT_FAILED, NULL, 0); /* no crash */
}
END_TEST

/* The live status of a directory comes from the engine's snapshot, read
 * back without jansson: a planted snapshot (the engine holds the lock and
 * it names our pid) with escapes, surrogate pairs, unknown members and
 * mistyped values is read field by field; garbage is not taken as live. */
START_TEST(test_status_dir_reads_the_snapshot_back)
{
	char *dir = tmp_dir();
	char path[4200], text[2048];
	edgelog_config cfg;
	edgelog *log = open_dir(dir, &cfg);
	edgelog_status st;
	struct timeval tv;
	long long now;
	int live = 0;

	gettimeofday(&tv, NULL);
	now = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
	snprintf(path, sizeof(path), "%s/status.json", dir);
	snprintf(text, sizeof(text),
		 "{ \"source\" : \"live\", \"unknown\": {\"a\": [1, {\"b\": \"}\"}]},"
		 "\"device_id\":\"cam \\\"\\u00e9\\ud83d\\ude00\\/\\\\\",\"pending\":42,"
		 "\"sent\":-3,\"failed\":1.5,\"is_connected\":true,\"upload_enabled\":1,"
		 "\"last_error\":\"tab\\there\",\"last_success_at\":-7,"
		 "\"alerts\":[{\"message\":\"x\",\"alert\":\"size\"},7,{\"alert\":\"nope\"}],"
		 "\"pid\":%ld,\"written_at_ms\":%lld,\"interval_ms\":100}\n",
		 (long)getpid(), now);
	write_file(path, text);
	edgelog_status_init(&st);
	ck_assert_int_eq(edgelog_status_dir(dir, &st, &live), 0);
	ck_assert_int_eq(live, 1);
	ck_assert_str_eq(st.device_id, "cam \"\xc3\xa9\xf0\x9f\x98\x80/\\");
	ck_assert_uint_eq(st.pending, 42);
	ck_assert_uint_eq(st.sent, 0);   /* negative: not a counter */
	ck_assert_uint_eq(st.failed, 0); /* not an integer */
	ck_assert_int_eq(st.is_connected, 1);
	ck_assert_int_eq(st.upload_enabled, 0); /* 1 is not true */
	ck_assert_str_eq(st.last_error, "tab\there");
	ck_assert_int_eq(st.last_success_at, -7);
	ck_assert_uint_eq(st.alerts, EDGELOG_ALERT_SIZE);
	ck_assert_uint_eq(st.version, EDGELOG_STATUS_VERSION);

	/* Truncated or malformed: not live (the figures come from the files). */
	text[strlen(text) / 2] = '\0';
	write_file(path, text);
	ck_assert_int_eq(edgelog_status_dir(dir, &st, &live), 0);
	ck_assert_int_eq(live, -1);
	ck_assert_str_eq(st.device_id, "cam-api");
	write_file(path,
		   "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[");
	ck_assert_int_eq(edgelog_status_dir(dir, &st, &live), 0);
	ck_assert_int_eq(live, -1);
	ck_assert_int_eq(edgelog_close(log), 0);
	rm_rf(dir);
}
END_TEST

Suite *api_suite(void);
Suite *api_suite(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("status");

	tcase_add_test(tc, test_status_init_sets_version_and_zeroes);
	tcase_add_test(tc, test_status_without_version_is_refused);
	tcase_add_test(tc, test_status_json_exact_bytes);
	tcase_add_test(tc, test_status_json_cut_to_the_buffer_says_erange);
	tcase_add_test(tc, test_status_prometheus_lines);
	tcase_add_test(tc, test_alert_names_and_messages);
	tcase_add_test(tc, test_status_dir_reads_the_snapshot_back);
	suite_add_tcase(s, tc);
	return s;
}

TU_CHECK_MAIN(api_suite)
