/*
 * check_api.c - the public API as a program outside the library sees it:
 * this runner includes <edgelog.h> and nothing of the library's insides,
 * and links the edgelog library target only. Status text (JSON and
 * Prometheus), the status struct's version, alerts; the scan, verify and
 * salvage calls the tools stand on; where a msgpack object ends.
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
	ck_assert_msg(strstr(edgelog_errmsg(NULL), "does not fit"), "%s", edgelog_errmsg(NULL));
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

/* ---- records as JSON ---------------------------------------------------------- */

START_TEST(test_record_json_envelope_and_data)
{
	static const unsigned char mp[] = {0x82, 0xa5, 'l', 'a',  'b', 'e',  'l',  0xa3,
					   'c',  'a',  't', 0xa1, 'p', 0xcb, 0x3f, 0xe0,
					   0,    0,    0,   0,    0,   0};
	edgelog_record rec;
	char out[256], small[10];
	size_t len = 0;

	memset(&rec, 0, sizeof(rec));
	rec.seq = 42;
	rec.ts_ms = 1700000000123;
	rec.data = mp;
	rec.len = sizeof(mp);
	ck_assert_int_eq(edgelog_record_json(&rec, "cam \"1\"", out, sizeof(out), &len), 0);
	ck_assert_str_eq(out, "{\"device_id\":\"cam \\\"1\\\"\",\"seq\":42,\"ts\":1700000000123,"
			      "\"data\":{\"label\":\"cat\",\"p\":0.5}}");
	ck_assert_uint_eq(len, strlen(out));
	ck_assert_int_eq(edgelog_record_json(&rec, NULL, out, sizeof(out), &len), 0);
	ck_assert_str_eq(out, "{\"label\":\"cat\",\"p\":0.5}");
	ck_assert_int_eq(edgelog_record_json(&rec, NULL, small, sizeof(small), &len),
			 EDGELOG_ERANGE);
	ck_assert_uint_eq(len, strlen("{\"label\":\"cat\",\"p\":0.5}"));
	ck_assert_str_eq(small, "{\"label\":");
	/* Not one msgpack object: a map that promises two pairs, gives one. */
	rec.len = 11;
	ck_assert_int_eq(edgelog_record_json(&rec, "cam", out, sizeof(out), &len), EDGELOG_EINVAL);
	ck_assert_msg(strstr(edgelog_errmsg(NULL), "seq 42"), "%s", edgelog_errmsg(NULL));
	ck_assert_int_eq(edgelog_record_json(NULL, "cam", out, sizeof(out), &len), EDGELOG_EINVAL);
}
END_TEST

/* ---- verify and salvage --------------------------------------------------------- */

typedef struct seen {
	int segments, records, damages, file_damages, gaps, gaps_accounted;
	uint64_t seq[64], offset[64];
	int acked[64];
	char segment[64][64];
	uint64_t damage_off, damage_len;
	char damage_seg[64], file_reason[128];
	uint64_t gap_lo, gap_hi;
	int stop_at;
	int ranges[2];
	uint64_t range_lo[2][8], range_hi[2][8];
} seen;

static void s_segment(void *p, const char *segment, uint64_t bytes)
{
	seen *w = p;

	ck_assert_uint_gt(bytes, 0);
	ck_assert_uint_gt(strlen(segment), 0);
	w->segments++;
}

static int s_record(void *p, const edgelog_record *rec, int acked)
{
	seen *w = p;
	int i = w->records++;

	ck_assert_int_lt(i, 64);
	w->seq[i] = rec->seq;
	w->offset[i] = rec->offset;
	w->acked[i] = acked;
	snprintf(w->segment[i], sizeof(w->segment[i]), "%s", rec->segment);
	ck_assert_uint_gt(rec->len, 0);
	return w->stop_at && w->records == w->stop_at ? 7 : 0;
}

static void s_damage(void *p, const char *segment, uint64_t offset, uint64_t length,
		     const char *reason)
{
	seen *w = p;

	ck_assert_ptr_nonnull(reason);
	if (!w->damages++) {
		w->damage_off = offset;
		w->damage_len = length;
		snprintf(w->damage_seg, sizeof(w->damage_seg), "%s", segment);
	}
}

static void s_file_damage(void *p, const char *path, const char *reason)
{
	seen *w = p;

	ck_assert_ptr_nonnull(strstr(path, "cursor"));
	w->file_damages++;
	snprintf(w->file_reason, sizeof(w->file_reason), "%s", reason);
}

static void s_gap(void *p, uint64_t lo, uint64_t hi, int accounted, const edgelog_record *next)
{
	seen *w = p;

	ck_assert_uint_eq(next->seq, hi + 1);
	if (accounted) {
		w->gaps_accounted++;
		return;
	}
	w->gaps++;
	w->gap_lo = lo;
	w->gap_hi = hi;
}

static void s_range(void *p, int lost, uint64_t lo, uint64_t hi)
{
	seen *w = p;
	int i = w->ranges[lost]++;

	ck_assert_int_lt(i, 8);
	w->range_lo[lost][i] = lo;
	w->range_hi[lost][i] = hi;
}

static void scan_setup(edgelog_scan *s, seen *w)
{
	memset(w, 0, sizeof(*w));
	edgelog_scan_init(s);
	s->payload = w;
	s->on_segment = s_segment;
	s->on_record = s_record;
	s->on_damage = s_damage;
	s->on_file_damage = s_file_damage;
	s->on_gap = s_gap;
	s->on_range = s_range;
}

/* A directory of 10 records, closed. */
static char *ten_records(void)
{
	char *dir = tmp_dir();
	edgelog_config cfg;
	edgelog *log = open_dir(dir, &cfg);

	append_n(log, 10);
	ck_assert_int_eq(edgelog_ack(log, 2), 0);
	ck_assert_int_eq(edgelog_close(log), 0);
	return dir;
}

START_TEST(test_verify_reports_every_frame)
{
	char *dir = ten_records();
	edgelog_scan s;
	seen w;
	int i;

	edgelog_scan_init(&s);
	ck_assert_uint_eq(s.version, EDGELOG_SCAN_VERSION);
	ck_assert_uint_eq(s.to_seq, UINT64_MAX);
	scan_setup(&s, &w);
	s.flags = EDGELOG_SCAN_CURSOR | EDGELOG_SCAN_TAIL;
	ck_assert_int_eq(edgelog_verify(dir, &s), 0);
	ck_assert_int_eq(w.segments, 1);
	ck_assert_int_eq(w.records, 10);
	for (i = 0; i < 10; i++) {
		ck_assert_uint_eq(w.seq[i], (uint64_t)i + 1);
		ck_assert_int_eq(w.acked[i], i < 2);
		if (i)
			ck_assert_uint_gt(w.offset[i], w.offset[i - 1]);
		ck_assert_str_eq(w.segment[i], w.segment[0]);
	}
	ck_assert_uint_eq(s.records, 10);
	ck_assert_uint_eq(s.first_seq, 1);
	ck_assert_uint_eq(s.last_seq, 10);
	ck_assert_uint_eq(s.damaged + s.gaps + s.gaps_accounted, 0);
	ck_assert_int_eq(s.have_cursor, 1);
	ck_assert_uint_eq(s.cursor_acked_seq, 2);
	ck_assert_uint_gt(s.data_bytes, 10 * 10);
	ck_assert_int_eq(w.damages + w.file_damages + w.gaps, 0);

	/* A window, and a callback that stops the walk. */
	scan_setup(&s, &w);
	s.from_seq = 3;
	s.to_seq = 5;
	ck_assert_int_eq(edgelog_verify(dir, &s), 0);
	ck_assert_int_eq(w.records, 3);
	ck_assert_uint_eq(w.seq[0], 3);
	ck_assert_uint_eq(s.last_seq, 5);
	scan_setup(&s, &w);
	w.stop_at = 4;
	ck_assert_int_eq(edgelog_verify(dir, &s), 7);
	ck_assert_int_eq(w.records, 4);

	/* Bad arguments. */
	s.version = 0;
	ck_assert_int_eq(edgelog_verify(dir, &s), EDGELOG_EINVAL);
	ck_assert_msg(strstr(edgelog_errmsg(NULL), "edgelog_scan_init"), "%s",
		      edgelog_errmsg(NULL));
	edgelog_scan_init(&s);
	ck_assert_int_eq(edgelog_verify(NULL, &s), EDGELOG_EINVAL);
	{
		char missing[4200];
		snprintf(missing, sizeof(missing), "%s/nope", dir);
		ck_assert_int_eq(edgelog_verify(missing, &s), EDGELOG_ENOTFOUND);
	}
	rm_rf(dir);
}
END_TEST

/* Flip one byte inside the frame of seq 5: the walk reports the damaged
 * range in that segment at that frame's offset, the gap it leaves, and
 * the records on both sides; a destroyed cursor is a damaged file. */
static void damage_seq5(const char *dir, seen *w0)
{
	char path[4300];
	FILE *f;
	int c;

	snprintf(path, sizeof(path), "%s/segments/%s", dir, w0->segment[4]);
	f = fopen(path, "r+b");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, (long)w0->offset[4] + 18, SEEK_SET), 0);
	c = fgetc(f);
	ck_assert_int_eq(fseek(f, (long)w0->offset[4] + 18, SEEK_SET), 0);
	fputc(c ^ 0x55, f);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_verify_reports_damage_and_gaps)
{
	char *dir = ten_records();
	char path[4300];
	edgelog_scan s;
	seen w0, w;

	scan_setup(&s, &w0);
	ck_assert_int_eq(edgelog_verify(dir, &s), 0);
	damage_seq5(dir, &w0);
	scan_setup(&s, &w);
	s.flags = EDGELOG_SCAN_CURSOR;
	ck_assert_int_eq(edgelog_verify(dir, &s), 0);
	ck_assert_int_eq(w.records, 9);
	ck_assert_int_eq(w.damages, 1);
	ck_assert_str_eq(w.damage_seg, w0.segment[4]);
	ck_assert_uint_eq(w.damage_off, w0.offset[4]);
	ck_assert_uint_eq(w.damage_len, w0.offset[5] - w0.offset[4]);
	ck_assert_int_eq(w.gaps, 1);
	ck_assert_uint_eq(w.gap_lo, 5);
	ck_assert_uint_eq(w.gap_hi, 5);
	ck_assert_uint_eq(s.damaged, 1);
	ck_assert_uint_eq(s.damaged_bytes, w.damage_len);
	ck_assert_uint_eq(s.gaps, 1);
	ck_assert_int_eq(w.file_damages, 0);

	snprintf(path, sizeof(path), "%s/cursor", dir);
	write_file(path, "not a cursor at all, but long enough to be read as one: "
			 "0123456789012345678901234567890123456789012345678901234567890123");
	scan_setup(&s, &w);
	s.flags = EDGELOG_SCAN_CURSOR;
	ck_assert_int_eq(edgelog_verify(dir, &s), 0);
	ck_assert_int_eq(w.file_damages, 1);
	ck_assert_str_eq(w.file_reason, "no valid slot");
	ck_assert_int_eq(s.have_cursor, 0);
	ck_assert_int_eq(w.acked[0], -1);
	ck_assert_uint_eq(s.damaged, 2);
	/* Without the flag the cursor is not judged. */
	scan_setup(&s, &w);
	ck_assert_int_eq(edgelog_verify(dir, &s), 0);
	ck_assert_int_eq(w.file_damages, 0);
	ck_assert_uint_eq(s.damaged, 1);
	rm_rf(dir);
}
END_TEST

START_TEST(test_salvage_copies_every_valid_record)
{
	char *dir = ten_records(), *out = tmp_dir();
	char inside[4200], copy[4200], junk[4300];
	edgelog_scan s;
	seen w0, w;
	edgelog_reader *r;
	edgelog_record rec;
	int n = 0;

	scan_setup(&s, &w0);
	ck_assert_int_eq(edgelog_verify(dir, &s), 0);
	damage_seq5(dir, &w0);
	snprintf(copy, sizeof(copy), "%s/copy", out);
	scan_setup(&s, &w);
	ck_assert_int_eq(edgelog_salvage(dir, copy, &s), 0);
	ck_assert_uint_eq(s.records, 9);
	ck_assert_uint_eq(s.lost_ranges, 1);
	ck_assert_uint_eq(s.damaged, 1);
	ck_assert_int_eq(w.ranges[0], 2);
	ck_assert_uint_eq(w.range_lo[0][0], 1);
	ck_assert_uint_eq(w.range_hi[0][0], 4);
	ck_assert_uint_eq(w.range_lo[0][1], 6);
	ck_assert_uint_eq(w.range_hi[0][1], 10);
	ck_assert_int_eq(w.ranges[1], 1);
	ck_assert_uint_eq(w.range_lo[1][0], 5);
	ck_assert_uint_eq(w.range_hi[1][0], 5);

	/* The copy: the same seqs, verified clean, the gap accounted for,
	 * nothing acknowledged. */
	ck_assert_int_eq(edgelog_reader_open(&r, copy, 0), 0);
	while (edgelog_reader_next(r, &rec) == 0) {
		ck_assert_uint_eq(rec.seq, w.seq[n]);
		n++;
	}
	edgelog_reader_close(r);
	ck_assert_int_eq(n, 9);
	scan_setup(&s, &w);
	s.flags = EDGELOG_SCAN_CURSOR | EDGELOG_SCAN_TAIL;
	ck_assert_int_eq(edgelog_verify(copy, &s), 0);
	ck_assert_uint_eq(s.damaged + s.gaps, 0);
	ck_assert_uint_eq(s.gaps_accounted, 1);
	ck_assert_uint_eq(s.cursor_acked_seq, 0);
	ck_assert_int_eq(w.acked[0], 0);

	/* Unusable destinations: EINVAL naming them, nothing written. */
	scan_setup(&s, &w);
	ck_assert_int_eq(edgelog_salvage(dir, copy, &s), EDGELOG_EINVAL);
	ck_assert_msg(strstr(edgelog_errmsg(NULL), "not empty"), "%s", edgelog_errmsg(NULL));
	snprintf(inside, sizeof(inside), "%s/inside", dir);
	ck_assert_int_eq(edgelog_salvage(dir, inside, &s), EDGELOG_EINVAL);
	ck_assert_msg(strstr(edgelog_errmsg(NULL), "the directory being read"), "%s",
		      edgelog_errmsg(NULL));
	snprintf(junk, sizeof(junk), "%s/file", out);
	write_file(junk, "x");
	ck_assert_int_eq(edgelog_salvage(dir, junk, &s), EDGELOG_EINVAL);
	ck_assert_msg(strstr(edgelog_errmsg(NULL), "not a directory"), "%s", edgelog_errmsg(NULL));
	ck_assert_int_eq(edgelog_salvage(dir, NULL, &s), EDGELOG_EINVAL);
	ck_assert_int_eq(w.records, 0);
	rm_rf(dir);
	rm_rf(out);
}
END_TEST

static int count_seg(void *p, const char *segment, uint64_t base, uint64_t bytes)
{
	int *n = p;

	ck_assert_uint_eq(strlen(segment) > 4, 1);
	ck_assert_uint_gt(bytes, 0);
	ck_assert_uint_eq(base, 1); /* the one segment starts at seq 1 */
	(*n)++;
	return 0;
}

START_TEST(test_list_segments_and_acked_seq)
{
	char *dir = ten_records(), *empty = tmp_dir();
	char path[4200];
	uint64_t acked = 99;
	int n = 0;

	ck_assert_int_eq(edgelog_list_segments(dir, count_seg, &n), 1);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(edgelog_list_segments(dir, NULL, NULL), 1);
	snprintf(path, sizeof(path), "%s/segments", dir);
	ck_assert_int_eq(edgelog_list_segments(path, NULL, NULL), 1);
	ck_assert_int_eq(edgelog_list_segments(empty, NULL, NULL), 0);
	snprintf(path, sizeof(path), "%s/nope", dir);
	ck_assert_int_eq(edgelog_list_segments(path, NULL, NULL), EDGELOG_ENOTFOUND);
	snprintf(path, sizeof(path), "%s/cursor", dir);
	ck_assert_int_eq(edgelog_list_segments(path, NULL, NULL), EDGELOG_EINVAL);

	ck_assert_int_eq(edgelog_dir_acked_seq(dir, &acked), 0);
	ck_assert_uint_eq(acked, 2);
	ck_assert_int_eq(edgelog_dir_acked_seq(empty, &acked), EDGELOG_ENOTFOUND);
	ck_assert_uint_eq(acked, 0);
	ck_assert_int_eq(edgelog_dir_acked_seq(NULL, &acked), EDGELOG_EINVAL);
	rm_rf(dir);
	rm_rf(empty);
}
END_TEST

/* ---- the config ------------------------------------------------------------------ */

START_TEST(test_config_keeps_env_strings_outside_the_struct)
{
	edgelog_config a, b;
	char *dir = tmp_dir(), *longv;
	edgelog *log = NULL;
	const char *kept;

	/* No 8 KiB of private storage in the caller's struct any more. */
	ck_assert_uint_lt(sizeof(edgelog_config), 512);
	ck_assert_uint_eq(EDGELOG_CONFIG_VERSION, 3);
	setenv("EDGELOG_DIR", dir, 1);
	setenv("EDGELOG_DEVICE_ID", "cam-env-1", 1);
	edgelog_config_init(&a);
	ck_assert_int_eq(edgelog_config_from_env(&a), 0);
	ck_assert_str_eq(a.dir, dir);
	ck_assert_str_eq(a.device_id, "cam-env-1");
	kept = a.device_id;
	/* A later setenv changes neither the strings already set ... */
	setenv("EDGELOG_DEVICE_ID", "cam-env-2", 1);
	ck_assert_str_eq(a.device_id, "cam-env-1");
	edgelog_config_init(&b);
	ck_assert_int_eq(edgelog_config_from_env(&b), 0);
	ck_assert_str_eq(b.device_id, "cam-env-2");
	/* ... and a value seen before is the same copy (bounded memory). */
	setenv("EDGELOG_DEVICE_ID", "cam-env-1", 1);
	ck_assert_int_eq(edgelog_config_from_env(&b), 0);
	ck_assert_ptr_eq(b.device_id, kept);
	/* A config of version 1 (the layout with the storage) still opens. */
	a.version = 1;
	ck_assert_int_eq(edgelog_open(&log, &a), 0);
	ck_assert_int_eq(edgelog_close(log), 0);
	/* Version 2 (before segment_reuse) too, reuse on by default. */
	a.version = 2;
	ck_assert_int_eq(edgelog_open(&log, &a), 0);
	ck_assert_int_eq(edgelog_close(log), 0);
	a.version = EDGELOG_CONFIG_VERSION;
	a.segment_reuse = (edgelog_segment_reuse)7;
	ck_assert_int_eq(edgelog_open(&log, &a), EDGELOG_ECONFIG);
	ck_assert_msg(strstr(edgelog_errmsg(NULL), "segment_reuse"), "%s", edgelog_errmsg(NULL));
	a.segment_reuse = EDGELOG_REUSE_DEFAULT;
	setenv("EDGELOG_SEGMENT_REUSE", "off", 1);
	ck_assert_int_eq(edgelog_config_from_env(&b), 0);
	ck_assert_int_eq(b.segment_reuse, EDGELOG_REUSE_OFF);
	setenv("EDGELOG_SEGMENT_REUSE", "maybe", 1);
	ck_assert_int_eq(edgelog_config_from_env(&b), EDGELOG_ECONFIG);
	ck_assert_msg(strstr(edgelog_errmsg(NULL), "EDGELOG_SEGMENT_REUSE"), "%s",
		      edgelog_errmsg(NULL));
	unsetenv("EDGELOG_SEGMENT_REUSE");
	a.version = 4;
	ck_assert_int_eq(edgelog_open(&log, &a), EDGELOG_ECONFIG);
	ck_assert_msg(strstr(edgelog_errmsg(NULL), "version"), "%s", edgelog_errmsg(NULL));
	/* Values past 8191 bytes are refused, naming the variable. */
	longv = malloc(9000);
	memset(longv, 'x', 8999);
	longv[8999] = '\0';
	setenv("EDGELOG_CA_FILE", longv, 1);
	ck_assert_int_eq(edgelog_config_from_env(&b), EDGELOG_ECONFIG);
	ck_assert_msg(strstr(edgelog_errmsg(NULL), "EDGELOG_CA_FILE: value too long"), "%s",
		      edgelog_errmsg(NULL));
	unsetenv("EDGELOG_CA_FILE");
	unsetenv("EDGELOG_DIR");
	unsetenv("EDGELOG_DEVICE_ID");
	free(longv);
	rm_rf(dir);
}
END_TEST

/* ---- msgpack: where an object ends -------------------------------------------- */

/* One msgpack object per kind and size boundary, written here by hand (the
 * specification's formats, not the library's writer). */
typedef struct mp_obj {
	unsigned char *p;
	size_t len;
} mp_obj;

/* lead byte, then the big-endian length of lenw bytes, then body bytes of
 * filler (ext: its type byte included). */
static mp_obj mp_make(unsigned lead, unsigned lenw, uint64_t lenv, size_t body)
{
	mp_obj o;
	unsigned i;

	o.len = 1 + lenw + body;
	o.p = malloc(o.len);
	ck_assert_ptr_nonnull(o.p);
	o.p[0] = (unsigned char)lead;
	for (i = 0; i < lenw; i++)
		o.p[1 + i] = (unsigned char)(lenv >> (8 * (lenw - 1 - i)));
	memset(o.p + 1 + lenw, 'x', body);
	return o;
}

/* A container header followed by n copies of the one-byte element 0x01
 * (map: n is keys plus values). */
static mp_obj mp_container(unsigned lead, unsigned lenw, uint64_t count, size_t n)
{
	mp_obj o = mp_make(lead, lenw, count, n);

	memset(o.p + 1 + lenw, 0x01, n);
	return o;
}

static size_t mp_catalogue(mp_obj *o)
{
	size_t k = 0;

	o[k++] = mp_make(0x00, 0, 0, 0); /* positive fixint */
	o[k++] = mp_make(0x7f, 0, 0, 0);
	o[k++] = mp_make(0xe0, 0, 0, 0); /* negative fixint */
	o[k++] = mp_make(0xc0, 0, 0, 0); /* nil */
	o[k++] = mp_make(0xc3, 0, 0, 0); /* true */
	o[k++] = mp_make(0xcc, 0, 0, 1); /* uint 8 .. 64 */
	o[k++] = mp_make(0xcd, 0, 0, 2);
	o[k++] = mp_make(0xce, 0, 0, 4);
	o[k++] = mp_make(0xcf, 0, 0, 8);
	o[k++] = mp_make(0xd0, 0, 0, 1); /* int 8 .. 64 */
	o[k++] = mp_make(0xd3, 0, 0, 8);
	o[k++] = mp_make(0xca, 0, 0, 4); /* float 32, 64 */
	o[k++] = mp_make(0xcb, 0, 0, 8);
	o[k++] = mp_make(0xa0, 0, 0, 0); /* fixstr 0, 31 */
	o[k++] = mp_make(0xbf, 0, 0, 31);
	o[k++] = mp_make(0xd9, 1, 0, 0); /* str 8: 0, 255 */
	o[k++] = mp_make(0xd9, 1, 255, 255);
	o[k++] = mp_make(0xda, 2, 65535, 65535); /* str 16 */
	o[k++] = mp_make(0xdb, 4, 65536, 65536); /* str 32 */
	o[k++] = mp_make(0xc4, 1, 1, 1);         /* bin 8, 16, 32 */
	o[k++] = mp_make(0xc5, 2, 256, 256);
	o[k++] = mp_make(0xc6, 4, 3, 3);
	o[k++] = mp_make(0xd4, 0, 0, 2); /* fixext 1 .. 16: type + data */
	o[k++] = mp_make(0xd8, 0, 0, 17);
	o[k++] = mp_make(0xc7, 1, 0, 1); /* ext 8, 16, 32: type + data */
	o[k++] = mp_make(0xc8, 2, 300, 301);
	o[k++] = mp_make(0xc9, 4, 5, 6);
	o[k++] = mp_container(0x90, 0, 0, 0); /* fixarray 0, 15 */
	o[k++] = mp_container(0x9f, 0, 15, 15);
	o[k++] = mp_container(0xdc, 2, 16, 16); /* array 16, 32 */
	o[k++] = mp_container(0xdd, 4, 70000, 70000);
	o[k++] = mp_container(0x80, 0, 0, 0); /* fixmap 0, 15 */
	o[k++] = mp_container(0x8f, 0, 15, 30);
	o[k++] = mp_container(0xde, 2, 2, 4); /* map 16, 32 */
	o[k++] = mp_container(0xdf, 4, 40000, 80000);
	return k;
}

START_TEST(test_msgpack_measure_every_kind_and_every_cut)
{
	mp_obj o[40];
	size_t n = mp_catalogue(o), i, k, got;

	for (i = 0; i < n; i++) {
		/* Complete, with anything after it (even a byte that is never
		 * valid): its own length. */
		unsigned char *buf = malloc(o[i].len + 1);
		ck_assert_ptr_nonnull(buf);
		memcpy(buf, o[i].p, o[i].len);
		buf[o[i].len] = 0xc1;
		got = 12345;
		ck_assert_int_eq(edgelog_msgpack_measure(buf, o[i].len + 1, &got), 0);
		ck_assert_uint_eq(got, o[i].len);
		ck_assert_int_eq(edgelog_msgpack_measure(buf, o[i].len, &got), 0);
		ck_assert_uint_eq(got, o[i].len);
		/* Every cut short: more bytes needed, *size the bytes given. */
		for (k = 0; k < o[i].len; k = k < 64 ? k + 1 : k * 2 + 1) {
			ck_assert_msg(edgelog_msgpack_measure(buf, k, &got) == EDGELOG_EOF,
				      "object %zu (lead 0x%02x) cut to %zu bytes", i, o[i].p[0], k);
			ck_assert_uint_eq(got, k);
		}
		ck_assert_int_eq(edgelog_msgpack_measure(buf, o[i].len - 1, &got), EDGELOG_EOF);
		free(buf);
		free(o[i].p);
	}
}
END_TEST

START_TEST(test_msgpack_measure_names_the_invalid_byte)
{
	static const unsigned char c1[] = {0xc1, 0x01};
	/* [1, 2, <0xc1>] and {"a": <0xc1>}: the byte is where it stops. */
	static const unsigned char in_array[] = {0x93, 0x01, 0x02, 0xc1};
	static const unsigned char in_map[] = {0x81, 0xa1, 'a', 0xc1, 0x01};
	/* 0xc1 inside a string is payload, not a type byte. */
	static const unsigned char in_str[] = {0xa2, 0xc1, 0xc1};
	unsigned char deep[300 + 4];
	size_t got = 99;

	ck_assert_int_eq(edgelog_msgpack_measure(c1, sizeof(c1), &got), EDGELOG_EINVAL);
	ck_assert_uint_eq(got, 0);
	ck_assert_int_eq(edgelog_msgpack_measure(in_array, sizeof(in_array), &got), EDGELOG_EINVAL);
	ck_assert_uint_eq(got, 3);
	ck_assert_int_eq(edgelog_msgpack_measure(in_map, sizeof(in_map), &got), EDGELOG_EINVAL);
	ck_assert_uint_eq(got, 3);
	ck_assert_int_eq(edgelog_msgpack_measure(in_str, sizeof(in_str), &got), 0);
	ck_assert_uint_eq(got, 3);

	/* EDGELOG_MSGPACK_DEPTH one-element arrays around 1: complete. */
	memset(deep, 0x91, sizeof(deep));
	deep[EDGELOG_MSGPACK_DEPTH] = 0x01;
	ck_assert_int_eq(edgelog_msgpack_measure(deep, EDGELOG_MSGPACK_DEPTH + 1, &got), 0);
	ck_assert_uint_eq(got, EDGELOG_MSGPACK_DEPTH + 1);
	/* An empty one at the next level opens nothing: complete too. */
	deep[EDGELOG_MSGPACK_DEPTH] = 0x90;
	ck_assert_int_eq(edgelog_msgpack_measure(deep, EDGELOG_MSGPACK_DEPTH + 1, &got), 0);
	/* One more level with an element: invalid at that header's byte. */
	deep[EDGELOG_MSGPACK_DEPTH] = 0x91;
	deep[EDGELOG_MSGPACK_DEPTH + 1] = 0x01;
	ck_assert_int_eq(edgelog_msgpack_measure(deep, EDGELOG_MSGPACK_DEPTH + 2, &got),
			 EDGELOG_EINVAL);
	ck_assert_uint_eq(got, EDGELOG_MSGPACK_DEPTH);
	/* An array 16 header there: its last byte. */
	deep[EDGELOG_MSGPACK_DEPTH] = 0xdc;
	deep[EDGELOG_MSGPACK_DEPTH + 1] = 0x00;
	deep[EDGELOG_MSGPACK_DEPTH + 2] = 0x01;
	deep[EDGELOG_MSGPACK_DEPTH + 3] = 0x01;
	ck_assert_int_eq(edgelog_msgpack_measure(deep, EDGELOG_MSGPACK_DEPTH + 4, &got),
			 EDGELOG_EINVAL);
	ck_assert_uint_eq(got, EDGELOG_MSGPACK_DEPTH + 2);

	/* Empty input needs bytes; NULL arguments are refused. */
	ck_assert_int_eq(edgelog_msgpack_measure(c1, 0, &got), EDGELOG_EOF);
	ck_assert_uint_eq(got, 0);
	ck_assert_int_eq(edgelog_msgpack_measure(NULL, 0, &got), EDGELOG_EOF);
	ck_assert_int_eq(edgelog_msgpack_measure(NULL, 1, &got), EDGELOG_EINVAL);
	ck_assert_int_eq(edgelog_msgpack_measure(c1, 1, NULL), EDGELOG_EINVAL);
}
END_TEST

/* What measure calls complete, edgelog_append stores; what it calls invalid,
 * edgelog_append refuses. */
START_TEST(test_msgpack_measure_agrees_with_append)
{
	char *dir = tmp_dir();
	edgelog_config cfg;
	edgelog *log = open_dir(dir, &cfg);
	unsigned char deep[EDGELOG_MSGPACK_DEPTH + 2];
	mp_obj o[40];
	size_t n = mp_catalogue(o), i, got;

	for (i = 0; i < n; i++) {
		ck_assert_int_eq(edgelog_msgpack_measure(o[i].p, o[i].len, &got), 0);
		ck_assert_msg(edgelog_append(log, o[i].p, got, NULL) == 0, "object %zu: %s", i,
			      edgelog_errmsg(log));
		free(o[i].p);
	}
	memset(deep, 0x91, sizeof(deep));
	deep[EDGELOG_MSGPACK_DEPTH] = 0x01;
	ck_assert_int_eq(edgelog_msgpack_measure(deep, EDGELOG_MSGPACK_DEPTH + 1, &got), 0);
	ck_assert_int_eq(edgelog_append(log, deep, got, NULL), 0);
	deep[EDGELOG_MSGPACK_DEPTH] = 0x91;
	deep[EDGELOG_MSGPACK_DEPTH + 1] = 0x01;
	ck_assert_int_eq(edgelog_msgpack_measure(deep, sizeof(deep), &got), EDGELOG_EINVAL);
	ck_assert_int_eq(edgelog_append(log, deep, sizeof(deep), NULL), EDGELOG_EINVAL);
	ck_assert_int_eq(edgelog_close(log), 0);
	rm_rf(dir);
}
END_TEST

/* Feed s the stream in chunks of `chunk` bytes; the ends found (offsets
 * past each object) into ends; returns how many, *bad the offset + 1 of
 * an invalid byte (0: none), *pending what was left unfinished. */
static size_t split_all(const unsigned char *p, size_t n, size_t chunk, size_t *ends, size_t *bad,
			uint64_t *pending)
{
	edgelog_msgpack_split *s = NULL;
	size_t pos = 0, k = 0;

	ck_assert_int_eq(edgelog_msgpack_split_open(&s), 0);
	ck_assert_uint_eq(edgelog_msgpack_split_pending(s), 0);
	*bad = 0;
	/* Checked with ck_assert_msg only when wrong: the 1-byte chunks
	 * make hundreds of thousands of calls. */
	while (pos < n) {
		size_t take = n - pos < chunk ? n - pos : chunk, used = 0;
		int rc = edgelog_msgpack_split_feed(s, p + pos, take, &used);
		uint64_t left = edgelog_msgpack_split_pending(s);
		if (used > take || used == 0 || (rc == 0 && left) ||
		    (rc == EDGELOG_EOF && (used != take || !left)))
			ck_assert_msg(0, "at %zu: %d, used %zu of %zu, pending %llu", pos, rc, used,
				      take, (unsigned long long)left);
		pos += used;
		if (rc == 0) {
			ends[k++] = pos;
		} else if (rc != EDGELOG_EOF) {
			ck_assert_int_eq(rc, EDGELOG_EINVAL);
			*bad = pos;
			/* Spent: nothing more is read. */
			ck_assert_int_eq(edgelog_msgpack_split_feed(s, p, n, &used),
					 EDGELOG_EINVAL);
			ck_assert_uint_eq(used, 0);
			break;
		}
	}
	*pending = edgelog_msgpack_split_pending(s);
	edgelog_msgpack_split_close(s);
	return k;
}

START_TEST(test_msgpack_split_any_chunking_finds_the_same_ends)
{
	mp_obj o[40];
	size_t n = mp_catalogue(o), i, len = 0, k, bad;
	size_t ends[64], want[64];
	static const size_t chunks[] = {1, 2, 3, 7, 64, 4096, 1u << 30};
	unsigned char *stream;
	uint64_t pending;

	for (i = 0; i < n; i++)
		len += o[i].len;
	stream = malloc(len + 3);
	ck_assert_ptr_nonnull(stream);
	len = 0;
	for (i = 0; i < n; i++) {
		memcpy(stream + len, o[i].p, o[i].len);
		len += o[i].len;
		want[i] = len;
		free(o[i].p);
	}
	for (k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
		ck_assert_uint_eq(split_all(stream, len, chunks[k], ends, &bad, &pending), n);
		ck_assert_mem_eq(ends, want, n * sizeof(size_t));
		ck_assert_uint_eq(bad, 0);
		ck_assert_uint_eq(pending, 0);
	}
	/* Cut inside the last object (a map 32 of 80,001 bytes): what it read. */
	for (k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
		ck_assert_uint_eq(split_all(stream, len - 5, chunks[k], ends, &bad, &pending),
				  n - 1);
		ck_assert_uint_eq(pending, len - 5 - want[n - 2]);
	}
	/* Then an array [1, <0xc1>]: the objects before it, and the byte. */
	memcpy(stream + len, "\x92\x01\xc1", 3);
	for (k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
		ck_assert_uint_eq(split_all(stream, len + 3, chunks[k], ends, &bad, &pending), n);
		ck_assert_uint_eq(bad, len + 3);
		ck_assert_uint_eq(stream[bad - 1], 0xc1);
	}
	free(stream);

	/* NULL arguments. */
	ck_assert_int_eq(edgelog_msgpack_split_open(NULL), EDGELOG_EINVAL);
	ck_assert_int_eq(edgelog_msgpack_split_feed(NULL, "", 1, &k), EDGELOG_EINVAL);
	ck_assert_uint_eq(k, 0);
	ck_assert_uint_eq(edgelog_msgpack_split_pending(NULL), 0);
	edgelog_msgpack_split_close(NULL);
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
	tcase_add_test(tc, test_config_keeps_env_strings_outside_the_struct);
	suite_add_tcase(s, tc);
	tc = tcase_create("scan");
	tcase_add_test(tc, test_record_json_envelope_and_data);
	tcase_add_test(tc, test_verify_reports_every_frame);
	tcase_add_test(tc, test_verify_reports_damage_and_gaps);
	tcase_add_test(tc, test_salvage_copies_every_valid_record);
	tcase_add_test(tc, test_list_segments_and_acked_seq);
	suite_add_tcase(s, tc);
	tc = tcase_create("msgpack");
	tcase_add_test(tc, test_msgpack_measure_every_kind_and_every_cut);
	tcase_add_test(tc, test_msgpack_measure_names_the_invalid_byte);
	tcase_add_test(tc, test_msgpack_measure_agrees_with_append);
	tcase_add_test(tc, test_msgpack_split_any_chunking_finds_the_same_ends);
	suite_add_tcase(s, tc);
	return s;
}

TU_CHECK_MAIN(api_suite)
