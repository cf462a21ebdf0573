/*
 * check_deadletter.c - dead letters (requeue, expiry under cleanup force,
 * both exactly once across a crash at every step), alerts (callback once on
 * start, once on clear), the live status snapshot, the metrics file, and
 * the status and export of a directory no engine holds.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <edgelog.h>
#include <jansson.h>
#include <msgpack.h>

#include "eng_internal.h"
#include "seg_writer.h"
#include "test_main.h"
#include "test_util.h"
#include "test_vfs.h"

#define DAY_MS (86400ll * 1000)

static char *g_dir;

static void setup(void)
{
	g_dir = tu_mkdtemp("deadtest");
}

static void teardown(void)
{
	tu_rm_rf(g_dir);
	free(g_dir);
}

static void cfg_for(edgelog_config *c)
{
	edgelog_config_init(c);
	c->dir = g_dir;
	c->device_id = "dl-test";
	c->segment_bytes = 64 * 1024;
}

/* The msgpack of {"d": k}: the payload of record k. */
static size_t payload(uint64_t k, uint8_t *out)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t n;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "d", 1);
	msgpack_pack_uint64(&pk, k);
	n = sb.size;
	memcpy(out, sb.data, n);
	msgpack_sbuffer_destroy(&sb);
	return n;
}

/* k of a {"d": k} record, or -1. */
static int64_t payload_k(const void *data, size_t len)
{
	msgpack_unpacked u;
	int64_t k = -1;

	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, data, len, NULL) == MSGPACK_UNPACK_SUCCESS &&
	    u.data.type == MSGPACK_OBJECT_MAP && u.data.via.map.size == 1 &&
	    u.data.via.map.ptr[0].val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		k = (int64_t)u.data.via.map.ptr[0].val.via.u64;
	msgpack_unpacked_destroy(&u);
	return k;
}

/* Write dead letters for records first..first+n-1 into failed/, as the
 * uploader does ({seq, ts, status, reason, data}), in files of per_file,
 * through vfs v (its clock stamps them). */
static void make_dead(const seg_vfs *v, uint64_t first, uint64_t n, uint64_t per_file)
{
	char fdir[4200];
	seg_writer w;
	seg_open_report rep;
	seg_err e;
	uint64_t i, seq;

	snprintf(fdir, sizeof(fdir), "%s/failed", g_dir);
	ck_assert_int_eq(seg_writer_open(&w, v, fdir, 64 * 1024, DAY_MS, 0, &rep, &e), 0);
	for (i = 0; i < n; i++) {
		msgpack_sbuffer sb;
		msgpack_packer pk;
		uint8_t p[64];
		size_t pl = payload(first + i, p);

		if (i && i % per_file == 0)
			ck_assert_int_eq(seg_writer_roll(&w, &e), 0);
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 5);
		msgpack_pack_str_with_body(&pk, "seq", 3);
		msgpack_pack_uint64(&pk, first + i);
		msgpack_pack_str_with_body(&pk, "ts", 2);
		msgpack_pack_int64(&pk, 1);
		msgpack_pack_str_with_body(&pk, "status", 6);
		msgpack_pack_int64(&pk, 422);
		msgpack_pack_str_with_body(&pk, "reason", 6);
		msgpack_pack_str_with_body(&pk, "HTTP 422", 8);
		msgpack_pack_str_with_body(&pk, "data", 4);
		msgpack_sbuffer_write(&sb, (const char *)p, pl);
		ck_assert_int_eq(seg_writer_append(&w, sb.data, (uint32_t)sb.size, v->now_ms(v),
						   &seq, &e),
				 0);
		msgpack_sbuffer_destroy(&sb);
	}
	ck_assert_int_eq(seg_writer_close(&w, &e), 0);
}

/*
 * A directory as the uploader leaves it: records 1..dead were sent and
 * refused permanently (acked, counted failed, in failed/), records
 * dead+1..dead+pending are waiting. appended = pending + failed holds.
 */
static void make_state(uint64_t dead, uint64_t pending, uint64_t per_file)
{
	edgelog_config c;
	edgelog *log;
	uint64_t i, seq;
	uint8_t p[64];

	cfg_for(&c);
	log = tu_open_ok(&c);
	for (i = 1; i <= dead + pending; i++) {
		size_t n = payload(i, p);
		ck_assert_int_eq(edgelog_append(log, p, n, &seq), 0);
		ck_assert_uint_eq(seq, i);
	}
	ck_assert_int_eq(edgelog_ack(log, dead), 0);
	pthread_mutex_lock(&log->mu);
	log->cur.sent -= dead;
	log->cur.failed += dead;
	pthread_mutex_unlock(&log->mu);
	ck_assert_int_eq(eng_store_cursor(log), 0);
	ck_assert_int_eq(edgelog_close(log), 0);
	make_dead(seg_vfs_posix(), 1, dead, per_file);
}

static void assert_identity(const edgelog_status *st)
{
	ck_assert_uint_eq(st->appended,
			  st->pending + st->sent + st->dropped + st->expired + st->failed);
}

/* Every record with seq > acked, as its k, counted: seen[k]. */
static void count_pending(uint64_t acked, unsigned *seen, size_t cap, uint64_t *total)
{
	edgelog_reader *r;
	edgelog_record rec;
	int rc;

	*total = 0;
	memset(seen, 0, cap * sizeof(*seen));
	ck_assert_int_eq(edgelog_reader_open(&r, g_dir, acked + 1), 0);
	while ((rc = edgelog_reader_next(r, &rec)) == 0) {
		int64_t k = payload_k(rec.data, rec.len);
		ck_assert(k >= 1 && (size_t)k < cap);
		seen[k]++;
		(*total)++;
	}
	ck_assert_int_eq(rc, EDGELOG_EOF);
	ck_assert_uint_eq(edgelog_reader_corrupt(r), 0);
	edgelog_reader_close(r);
}

static int file_exists_in(const char *sub, const char *name)
{
	char p[4300];
	if (snprintf(p, sizeof(p), "%s/%s/%s", g_dir, sub, name) >= (int)sizeof(p))
		ck_abort_msg("path too long: %s/%s/%s", g_dir, sub, name);
	return access(p, F_OK) == 0;
}

/* ---- requeue ---------------------------------------------------------------- */

START_TEST(test_requeue_moves_every_dead_letter_back_once)
{
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	unsigned seen[64];
	uint64_t total, k;
	int live = 1;
	char fdir[4200];

	make_state(12, 5, 4); /* 12 dead letters in 3 files, 5 pending */
	ck_assert_int_eq(edgelog_status_dir(g_dir, &st, &live), 0);
	ck_assert_int_eq(live, 0);
	ck_assert_uint_eq(st.failed, 12);
	ck_assert_uint_eq(st.pending, 5);
	assert_identity(&st);

	ck_assert_int_eq(edgelog_requeue_failed(g_dir), 0);
	ck_assert_ptr_nonnull(strstr(edgelog_errmsg(NULL), "12 dead letter"));
	ck_assert_int_eq(edgelog_status_dir(g_dir, &st, NULL), 0);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_uint_eq(st.requeued, 12);
	ck_assert_uint_eq(st.pending, 17);
	ck_assert_uint_eq(st.appended, 17);
	assert_identity(&st);
	snprintf(fdir, sizeof(fdir), "%s/failed", g_dir);
	ck_assert_int_eq(tu_count_entries(fdir, ".seg"), 0);
	ck_assert(!file_exists_in("failed", "JOURNAL"));

	/* The log holds each record once: 13..17 as appended, 1..12 again. */
	count_pending(12, seen, 64, &total);
	ck_assert_uint_eq(total, 17);
	for (k = 1; k <= 17; k++)
		ck_assert_uint_eq(seen[k], 1);

	/* Nothing left to requeue: a second call changes nothing. */
	ck_assert_int_eq(edgelog_requeue_failed(g_dir), 0);
	ck_assert_int_eq(edgelog_status_dir(g_dir, &st, NULL), 0);
	ck_assert_uint_eq(st.pending, 17);
	ck_assert_uint_eq(st.requeued, 12);
}
END_TEST

START_TEST(test_requeue_refuses_while_an_engine_runs)
{
	edgelog_config c;
	edgelog *log;
	char pid[32];

	make_state(3, 0, 3);
	cfg_for(&c);
	log = tu_open_ok(&c);
	ck_assert_int_eq(edgelog_requeue_failed(g_dir), EDGELOG_ELOCKED);
	snprintf(pid, sizeof(pid), "process %ld", (long)getpid());
	ck_assert_ptr_nonnull(strstr(edgelog_errmsg(NULL), pid));
	ck_assert_int_eq(edgelog_close(log), 0);
}
END_TEST

/*
 * A crash at every step: the Nth state-changing file operation of the
 * requeue and every one after it fail (the process is as good as dead; its
 * page cache survives, as after kill -9). Then a fresh requeue on the real
 * file system finishes the job. Each record must be in the log exactly
 * once, and the counts exact, for every N.
 */
START_TEST(test_requeue_crash_at_every_step_is_exactly_once)
{
	tvfs_fault *f = tvfs_fault_new(NULL);
	uint64_t ops, n, total, k;
	unsigned seen[64];
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	int failed_runs = 0;

	make_state(5, 2, 3);
	tvfs_fault_reset(f);
	ck_assert_int_eq(eng_requeue_failed_vfs(g_dir, tvfs_fault_vfs(f)), 0);
	ops = tvfs_fault_count(f, TVFS_OP_COUNTED);
	ck_assert_uint_gt(ops, 10);

	for (n = 1; n <= ops; n++) {
		int rc;
		tu_rm_rf(g_dir);
		free(g_dir);
		g_dir = tu_mkdtemp("deadtest");
		make_state(5, 2, 3);
		tvfs_fault_reset(f);
		tvfs_fault_fail(f, TVFS_OP_COUNTED, n, -EIO, 1);
		rc = eng_requeue_failed_vfs(g_dir, tvfs_fault_vfs(f));
		if (rc)
			failed_runs++;
		/* Restart: the open finishes what was cut short, the call
		 * moves whatever is left. */
		ck_assert_msg(edgelog_requeue_failed(g_dir) == 0, "N=%" PRIu64 ": %s", n,
			      edgelog_errmsg(NULL));
		ck_assert_int_eq(edgelog_status_dir(g_dir, &st, NULL), 0);
		ck_assert_msg(st.failed == 0 && st.requeued == 5 && st.pending == 7 &&
				      st.appended == 7,
			      "N=%" PRIu64 ": failed %" PRIu64 " requeued %" PRIu64
			      " pending %" PRIu64 " appended %" PRIu64,
			      n, st.failed, st.requeued, st.pending, st.appended);
		assert_identity(&st);
		count_pending(5, seen, 64, &total);
		ck_assert_msg(total == 7, "N=%" PRIu64 ": %" PRIu64 " records", n, total);
		for (k = 1; k <= 7; k++)
			ck_assert_msg(seen[k] == 1,
				      "N=%" PRIu64 ": record %" PRIu64 " seen %u times", n, k,
				      seen[k]);
		ck_assert(!file_exists_in("failed", "JOURNAL"));
	}
	/* Nearly every N cut the requeue short (a few late ones only hit
	 * the close). */
	ck_assert_int_ge(failed_runs, (int)(ops / 2));
	tvfs_fault_free(f);
}
END_TEST

/* Requeue keeps a dead-letter file with a damaged frame: its good records
 * go back, the file moves to quarantine/, nothing is deleted. */
START_TEST(test_requeue_quarantines_a_damaged_dead_letter_file)
{
	char fdir[4200], path[4400], name[32];
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	tu_buf b;

	make_state(4, 0, 4);
	snprintf(fdir, sizeof(fdir), "%s/failed", g_dir);
	seg_name(name, 1);
	snprintf(path, sizeof(path), "%s/%s", fdir, name);
	b = tu_read_file(path);
	ck_assert_uint_gt(b.len, 200);
	b.data[SEG_HEADER_SIZE + 20] ^= 0x55; /* inside the first frame */
	tu_write_file(path, b.data, b.len);
	tu_buf_free(&b);

	ck_assert_int_eq(edgelog_requeue_failed(g_dir), 0);
	ck_assert_int_eq(edgelog_status_dir(g_dir, &st, NULL), 0);
	ck_assert_uint_eq(st.pending, 3);
	ck_assert_uint_eq(st.requeued, 3);
	ck_assert(!file_exists_in("failed", name));
	/* The quarantine naming scheme: failed-NAME.bad (FORMAT.md). */
	snprintf(path, sizeof(path), "failed-%s.bad", name);
	ck_assert(file_exists_in("quarantine", path));
}
END_TEST

/* ---- expiry of dead letters ---------------------------------------------------- */

START_TEST(test_cleanup_force_expires_old_dead_letters_only)
{
	tvfs_fault *f = tvfs_fault_new(NULL);
	const int64_t t0 = 1800000000000ll;
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	char name[32];

	make_state(0, 0, 1);
	/* Three dead-letter files written at t0, t0 + 5 days, t0 + 6 days. */
	tvfs_fault_clock_set(f, t0, 1000);
	make_dead(tvfs_fault_vfs(f), 1, 2, 100);
	tvfs_fault_clock_set(f, t0 + 5 * DAY_MS, 2000);
	make_dead(tvfs_fault_vfs(f), 3, 3, 100);
	tvfs_fault_clock_set(f, t0 + 6 * DAY_MS, 3000);
	make_dead(tvfs_fault_vfs(f), 6, 1, 100);

	cfg_for(&c);
	c.retention_days = 7;
	tvfs_fault_clock_set(f, t0 + 8 * DAY_MS, 4000);
	ck_assert_int_eq(eng_open_vfs(&log, &c, tvfs_fault_vfs(f)), 0);
	pthread_mutex_lock(&log->mu);
	log->cur.failed = 6;
	log->cur.sent = 0;
	pthread_mutex_unlock(&log->mu);

	ck_assert_int_eq(edgelog_cleanup(log, 0), 0); /* without force: kept */
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.failed, 6);
	ck_assert_int_eq(edgelog_cleanup(log, 1), 0);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.failed, 4); /* the file from t0 (2 letters) went */
	ck_assert_uint_eq(st.expired, 2);
	seg_name(name, 1);
	ck_assert(!file_exists_in("failed", name));

	/* Much later every file is old, but the newest stays (the uploader
	 * may be writing it). */
	tvfs_fault_clock_advance(f, 30 * DAY_MS);
	ck_assert_int_eq(edgelog_cleanup(log, 1), 0);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.failed, 1);
	ck_assert_uint_eq(st.expired, 5);
	ck_assert(!file_exists_in("failed", "JOURNAL"));
	ck_assert_int_eq(edgelog_close(log), 0);
	tvfs_fault_free(f);
}
END_TEST

/* ---- alerts ---------------------------------------------------------------------- */

typedef struct alert_log {
	pthread_mutex_t mu;
	int calls, pending_on, pending_off;
	char last[192];
} alert_log;

static void on_alert(void *payload, unsigned alert, int active, const char *msg)
{
	alert_log *a = payload;

	pthread_mutex_lock(&a->mu);
	a->calls++;
	if (alert == EDGELOG_ALERT_PENDING)
		++*(active ? &a->pending_on : &a->pending_off);
	snprintf(a->last, sizeof(a->last), "%s", msg);
	pthread_mutex_unlock(&a->mu);
}

static int alert_calls(alert_log *a)
{
	int n;
	pthread_mutex_lock(&a->mu);
	n = a->calls;
	pthread_mutex_unlock(&a->mu);
	return n;
}

START_TEST(test_alert_callback_once_on_start_once_on_clear)
{
	alert_log a = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, ""};
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	uint8_t p[64];
	uint64_t i, seq = 0;
	int waited;

	cfg_for(&c);
	c.alert_pending = 10;
	c.alert_fn = on_alert;
	c.alert_payload = &a;
	log = tu_open_ok(&c);
	for (i = 1; i <= 10; i++)
		ck_assert_int_eq(edgelog_append(log, p, payload(i, p), &seq), 0);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.alerts, 0);
	ck_assert_int_eq(alert_calls(&a), 0); /* 10 is not > 10 */
	ck_assert_int_eq(edgelog_append(log, p, payload(11, p), &seq), 0);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.alerts, EDGELOG_ALERT_PENDING);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_int_eq(a.calls, 1);
	ck_assert_int_eq(a.pending_on, 1);
	ck_assert_str_eq(a.last, "pending 11 > 10");
	ck_assert_int_eq(edgelog_ack(log, seq), 0);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_int_eq(a.calls, 2);
	ck_assert_int_eq(a.pending_off, 1);

	/* With the worker running nobody needs to ask for status. */
	ck_assert_int_eq(edgelog_start(log), 0);
	for (i = 12; i <= 30; i++)
		ck_assert_int_eq(edgelog_append(log, p, payload(i, p), &seq), 0);
	for (waited = 0; alert_calls(&a) < 3 && waited < 5000; waited += 20)
		usleep(20 * 1000);
	ck_assert_int_eq(alert_calls(&a), 3);
	ck_assert_int_eq(edgelog_close(log), 0);
	ck_assert_int_eq(a.pending_on, 2);
}
END_TEST

/* ---- snapshot, metrics file, offline status, export ------------------------------ */

static int wait_for_file(const char *path, const char *needle, int ms)
{
	int waited;

	for (waited = 0; waited < ms; waited += 20) {
		if (access(path, F_OK) == 0) {
			tu_buf b = tu_read_file(path);
			int ok = !needle ||
				 (b.len && memmem(b.data, b.len, needle, strlen(needle)));
			tu_buf_free(&b);
			if (ok)
				return 1;
		}
		usleep(20 * 1000);
	}
	return 0;
}

START_TEST(test_live_snapshot_metrics_file_and_offline_status)
{
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	char snap[4300], metrics[4300];
	uint8_t p[64];
	uint64_t i, seq;
	int live = 0;

	snprintf(snap, sizeof(snap), "%s/status.json", g_dir);
	snprintf(metrics, sizeof(metrics), "%s/edgelog.prom", g_dir);
	cfg_for(&c);
	c.status_interval_ms = 100;
	c.metrics_file = metrics;
	log = tu_open_ok(&c);
	ck_assert_int_eq(edgelog_start(log), 0);
	for (i = 1; i <= 50; i++)
		ck_assert_int_eq(edgelog_append(log, p, payload(i, p), &seq), 0);
	ck_assert_int_eq(edgelog_ack(log, 20), 0);
	ck_assert(wait_for_file(snap, "\"pending\":30", 5000));
	ck_assert_int_eq(edgelog_status_dir(g_dir, &st, &live), 0);
	ck_assert_int_eq(live, 1);
	ck_assert_str_eq(st.device_id, "dl-test");
	ck_assert_uint_eq(st.pending, 30);
	ck_assert_uint_eq(st.sent, 20);
	ck_assert(wait_for_file(metrics, "edgelog_pending_records{device_id=\"dl-test\"} 30\n",
				5000));
	{
		tu_buf b = tu_read_file(metrics);
		ck_assert_ptr_nonnull(
			memmem(b.data, b.len, "# TYPE edgelog_sent_records_total counter\n", 42));
		ck_assert_ptr_nonnull(memmem(b.data, b.len, "# HELP edgelog_pending_records ", 31));
		tu_buf_free(&b);
	}
	ck_assert_int_eq(edgelog_close(log), 0);

	/* No engine: computed from the files, the same numbers. */
	ck_assert_int_eq(edgelog_status_dir(g_dir, &st, &live), 0);
	ck_assert_int_eq(live, 0);
	ck_assert_uint_eq(st.pending, 30);
	ck_assert_uint_eq(st.sent, 20);
	ck_assert_uint_eq(st.appended, 50);
	ck_assert_uint_eq(st.last_seq, 50);
	ck_assert_uint_eq(st.acked_seq, 20);
	ck_assert_uint_eq(st.first_seq, 21);
	ck_assert_uint_ge(st.segments, 1);
	ck_assert_uint_gt(st.size_bytes, 0);
	assert_identity(&st);
}
END_TEST

/* Identity of the file at path: inode and modification time (an inode
 * number alone can be recycled by a later rewrite). */
static uint64_t inode_of(const char *path)
{
	struct stat sb;
	if (stat(path, &sb) != 0)
		return 0;
	return (uint64_t)sb.st_ino * 1000000007ull + (uint64_t)sb.st_mtim.tv_sec * 1000000000ull +
	       (uint64_t)sb.st_mtim.tv_nsec;
}

/* An idle engine does not rewrite an unchanged snapshot every interval
 * (flash wear); a change is written at the next interval. */
START_TEST(test_unchanged_snapshot_is_not_rewritten)
{
	edgelog_config c;
	edgelog *log;
	char snap[4300];
	uint8_t p[64];
	uint64_t seq;
	uint64_t first;
	int waited;

	snprintf(snap, sizeof(snap), "%s/status.json", g_dir);
	cfg_for(&c);
	c.status_interval_ms = 100;
	log = tu_open_ok(&c);
	ck_assert_int_eq(edgelog_start(log), 0);
	ck_assert(wait_for_file(snap, NULL, 5000));
	first = inode_of(snap);
	usleep(600 * 1000); /* six intervals, nothing changed */
	ck_assert_uint_eq(inode_of(snap), first);
	ck_assert_int_eq(edgelog_append(log, p, payload(1, p), &seq), 0);
	for (waited = 0; inode_of(snap) == first && waited < 5000; waited += 20)
		usleep(20 * 1000);
	ck_assert_uint_ne(inode_of(snap), first);
	ck_assert(wait_for_file(snap, "\"pending\":1,", 5000));
	ck_assert_int_eq(edgelog_close(log), 0);
}
END_TEST

START_TEST(test_export_stats_lists_every_segment)
{
	edgelog_config c;
	edgelog *log;
	char out[4300];
	uint8_t p[64];
	uint64_t i, seq, sum = 0;
	json_t *o, *segs;
	json_error_t je;
	size_t k;

	cfg_for(&c);
	log = tu_open_ok(&c);
	for (i = 1; i <= 3000; i++) /* several 64 KiB segments */
		ck_assert_int_eq(edgelog_append(log, p, payload(i, p), &seq), 0);
	ck_assert_int_eq(edgelog_ack(log, 100), 0);
	ck_assert_int_eq(edgelog_close(log), 0);
	snprintf(out, sizeof(out), "%s/export.json", g_dir);
	ck_assert_int_eq(edgelog_export_stats(g_dir, out), 0);
	o = json_load_file(out, 0, &je);
	ck_assert_msg(o != NULL, "%s", je.text);
	ck_assert_str_eq(json_string_value(json_object_get(o, "source")), "offline");
	ck_assert_int_eq(json_integer_value(json_object_get(o, "pending")), 2900);
	segs = json_object_get(o, "segment_files");
	ck_assert_uint_gt(json_array_size(segs), 1);
	for (k = 0; k < json_array_size(segs); k++)
		sum += (uint64_t)json_integer_value(
			json_object_get(json_array_get(segs, k), "records"));
	ck_assert_uint_eq(sum, 3000);
	json_decref(o);
	/* A directory that does not exist is named. */
	ck_assert_int_ne(edgelog_export_stats("/nonexistent/edgelog", out), 0);
	ck_assert_ptr_nonnull(strstr(edgelog_errmsg(NULL), "/nonexistent/edgelog"));
}
END_TEST

static Suite *deadletter_suite(void)
{
	Suite *s = suite_create("deadletter");
	TCase *tc = tcase_create("deadletter");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_requeue_moves_every_dead_letter_back_once);
	tcase_add_test(tc, test_requeue_refuses_while_an_engine_runs);
	tcase_add_test(tc, test_requeue_crash_at_every_step_is_exactly_once);
	tcase_add_test(tc, test_requeue_quarantines_a_damaged_dead_letter_file);
	tcase_add_test(tc, test_cleanup_force_expires_old_dead_letters_only);
	tcase_add_test(tc, test_alert_callback_once_on_start_once_on_clear);
	tcase_add_test(tc, test_live_snapshot_metrics_file_and_offline_status);
	tcase_add_test(tc, test_export_stats_lists_every_segment);
	tcase_add_test(tc, test_unchanged_snapshot_is_not_rewritten);
	suite_add_tcase(s, tc);
	return s;
}

TU_CHECK_MAIN(deadletter_suite)
