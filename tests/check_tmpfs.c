/*
 * check_tmpfs.c - a real file system fills up under the engine.
 *
 * As root, each test mounts a 4 MiB tmpfs on a fresh temporary directory,
 * in a private mount namespace when unshare(CLONE_NEWNS) works (the mount
 * then vanishes with the test's process even if it dies), and opens the
 * engine there with a cap far larger than the file system (100 MB), so the
 * disk fills first. It appends until edgelog_append returns
 * EDGELOG_ENOSPC, then checks: no crash (the writer fallocates before it
 * maps, so a full disk is an error code, never SIGBUS); the engine stays up
 * (status, sync, further appends fail cleanly); every record whose append
 * returned 0 (and, under sync=interval, every one a successful sync
 * covered) is there byte for byte after close and reopen; and once space
 * comes back (acknowledged segments compacted away, or a filler file
 * removed) appends succeed again. Under sync=always and sync=interval, with
 * and without the worker thread.
 *
 * Not root, or the mount refused: each test prints why and passes
 * without running (CI runs as root, so there it runs).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <edgelog.h>

#include "test_main.h"
#include "test_util.h"
#include "tool_sample.h"

#define FS_BYTES (4u << 20)
#define MAX_APPENDS 200000 /* far more than 4 MiB holds: the loop is bounded */

static char g_mnt[64];
static int g_mounted;

/* Mount the tmpfs; 0, or -1 after printing why the test is skipped. */
static int mount_small_fs(const char *test)
{
	int private_ns = 0;

	if (geteuid() != 0) {
		fprintf(stderr, "check_tmpfs: %s SKIPPED: not root (mounting a tmpfs needs it)\n",
			test);
		return -1;
	}
	if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
		private_ns = 1;
	snprintf(g_mnt, sizeof(g_mnt), "/tmp/edgelog-tmpfs-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_mnt));
	if (mount("tmpfs", g_mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0700") != 0) {
		fprintf(stderr, "check_tmpfs: %s SKIPPED: mount -t tmpfs -o size=4m %s: %s\n", test,
			g_mnt, strerror(errno));
		rmdir(g_mnt);
		return -1;
	}
	g_mounted = 1;
	if (!private_ns)
		fprintf(stderr,
			"check_tmpfs: %s: no private mount namespace; %s is unmounted at "
			"the end\n",
			test, g_mnt);
	return 0;
}

static void unmount_small_fs(void)
{
	if (!g_mounted)
		return;
	ck_assert_msg(umount2(g_mnt, MNT_DETACH) == 0, "umount %s: %s", g_mnt, strerror(errno));
	rmdir(g_mnt);
	g_mounted = 0;
}

typedef struct state {
	char dir[128];
	uint64_t *idx; /* record index at each seq (0: none) */
	uint64_t last, synced, next_index, accepted;
} state;

static void config(edgelog_config *c, state *s, edgelog_sync_mode sync)
{
	edgelog_config_init(c);
	c->dir = s->dir;
	c->device_id = "tmpfs";
	c->max_size_mb = 100; /* the file system fills first */
	c->segment_bytes = 65536;
	/* These tests are about the clean ENOSPC error: under reject. Under
	 * drop_oldest the oldest segments go instead (test below). */
	c->full_policy = EDGELOG_FULL_REJECT;
	c->sync = sync;
	c->sync_interval_ms = 20;
	c->log_fn = tu_quiet_log;
}

/* Append until ENOSPC (or n records). Returns the code that stopped it. */
static int fill(edgelog *log, state *s, uint64_t n, edgelog_sync_mode sync)
{
	uint8_t b[1024];
	uint64_t i, seq = 0;
	int rc = 0;

	for (i = 0; i < n; i++) {
		uint64_t k = s->next_index++;
		size_t len = tool_sample_msgpack(k, b, sizeof(b));
		rc = edgelog_append(log, b, len, &seq);
		if (rc)
			break;
		ck_assert_uint_gt(seq, s->last);
		ck_assert_uint_lt(seq, MAX_APPENDS);
		s->idx[seq] = k;
		s->last = seq;
		s->accepted++;
		if (sync == EDGELOG_SYNC_ALWAYS)
			s->synced = seq;
		else if (i % 50 == 49 && edgelog_sync(log) == 0)
			s->synced = seq;
	}
	return rc;
}

/* Every accepted record above `from` is there, byte for byte, in order. */
static void check_records(state *s, uint64_t from)
{
	edgelog_reader *r;
	edgelog_record rec;
	uint8_t want[1024];
	uint64_t seq, found = 0, next = from + 1;
	int rc;

	ck_assert_int_eq(edgelog_reader_open(&r, s->dir, from + 1), 0);
	while ((rc = edgelog_reader_next(r, &rec)) == 0) {
		size_t len;
		ck_assert_uint_lt(rec.seq, MAX_APPENDS);
		for (seq = next; seq < rec.seq; seq++)
			ck_assert_msg(!s->idx[seq], "seq %" PRIu64 " (accepted) is missing", seq);
		ck_assert_msg(s->idx[rec.seq], "seq %" PRIu64 " was never accepted", rec.seq);
		len = tool_sample_msgpack(s->idx[rec.seq], want, sizeof(want));
		ck_assert_msg(rec.len == len && memcmp(rec.data, want, len) == 0,
			      "seq %" PRIu64 " does not hold what was appended", rec.seq);
		next = rec.seq + 1;
		found++;
	}
	ck_assert_int_eq(rc, EDGELOG_EOF);
	ck_assert_uint_eq(edgelog_reader_corrupt(r), 0);
	edgelog_reader_close(r);
	for (seq = next; seq <= s->last; seq++)
		ck_assert_msg(!s->idx[seq],
			      "seq %" PRIu64 " (accepted, last %" PRIu64 ") is missing", seq,
			      s->last);
	ck_assert_uint_gt(found, 0);
}

/* free_by: 0 acknowledge and compact, 1 remove a filler file. */
static void run_full_disk(const char *test, edgelog_sync_mode sync, int worker, int free_by)
{
	state s;
	edgelog_config c;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog *log;
	char filler[160];
	uint64_t before, acked;
	int rc, fd;

	if (mount_small_fs(test))
		return;
	memset(&s, 0, sizeof(s));
	s.idx = calloc(MAX_APPENDS, sizeof(*s.idx));
	ck_assert_ptr_nonnull(s.idx);
	s.next_index = 1;
	snprintf(s.dir, sizeof(s.dir), "%s/db", g_mnt);
	snprintf(filler, sizeof(filler), "%s/filler", g_mnt);
	if (free_by == 1) {
		/* A quarter of the disk taken by someone else. */
		fd = open(filler, O_WRONLY | O_CREAT, 0600);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(posix_fallocate(fd, 0, FS_BYTES / 4), 0);
		close(fd);
	}

	config(&c, &s, sync);
	log = tu_open_ok(&c);
	if (worker)
		ck_assert_int_eq(edgelog_start(log), 0);
	rc = fill(log, &s, MAX_APPENDS, sync);
	ck_assert_msg(rc == EDGELOG_ENOSPC, "append stopped with %s (%s), want EDGELOG_ENOSPC",
		      edgelog_strerror(rc), edgelog_errmsg(log));
	ck_assert_msg(strstr(edgelog_errmsg(log), "/db/") != NULL,
		      "the message should name the path: %s", edgelog_errmsg(log));
	ck_assert_uint_gt(s.accepted, 1000);

	/* Still up: status answers, what was accepted can be synced, a
	 * further append fails the same way and stores nothing. */
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.last_seq, s.last);
	ck_assert_uint_eq(st.appended, s.accepted);
	ck_assert_uint_eq(st.dropped + st.expired, 0);
	rc = edgelog_sync(log);
	ck_assert_msg(rc == 0, "sync on a full disk: %s", edgelog_errmsg(log));
	s.synced = s.last;
	ck_assert_int_eq(fill(log, &s, 1, sync), EDGELOG_ENOSPC);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.last_seq, s.last);
	ck_assert_int_eq(edgelog_close(log), 0);

	/* Close and reopen on the full disk: everything accepted is there. */
	check_records(&s, 0);
	log = tu_open_ok(&c);
	if (worker)
		ck_assert_int_eq(edgelog_start(log), 0);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.last_seq, s.last);
	ck_assert_uint_eq(st.pending, s.accepted);

	/* Space comes back. */
	acked = 0;
	if (free_by == 0) {
		acked = s.last / 2;
		ck_assert_int_eq(edgelog_ack(log, acked), 0);
		ck_assert_int_eq(edgelog_cleanup(log, 0), 0);
		ck_assert_int_eq(edgelog_get_status(log, &st), 0);
		ck_assert_uint_eq(st.sent, acked);
	} else {
		ck_assert_int_eq(unlink(filler), 0);
	}
	before = s.accepted;
	rc = fill(log, &s, 500, sync);
	ck_assert_msg(rc == 0, "append once space is back: %s: %s", edgelog_strerror(rc),
		      edgelog_errmsg(log));
	ck_assert_uint_eq(s.accepted, before + 500);
	ck_assert_int_eq(edgelog_sync(log), 0);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.appended, st.pending + st.sent + st.dropped + st.expired + st.failed);
	ck_assert_uint_eq(st.dropped + st.expired, 0);
	ck_assert_int_eq(edgelog_close(log), 0);
	check_records(&s, acked);

	/* Fill it again: the same clean error, nothing lost. */
	log = tu_open_ok(&c);
	rc = fill(log, &s, MAX_APPENDS, sync);
	ck_assert_int_eq(rc, EDGELOG_ENOSPC);
	ck_assert_int_eq(edgelog_close(log), 0);
	check_records(&s, acked);
	fprintf(stderr, "check_tmpfs: %s: %" PRIu64 " records accepted on a 4 MiB tmpfs\n", test,
		s.accepted);
	free(s.idx);
	unmount_small_fs();
}

START_TEST(test_always_full_then_acked_segments_compacted)
{
	run_full_disk("sync=always, acked and compacted", EDGELOG_SYNC_ALWAYS, 0, 0);
}
END_TEST

START_TEST(test_interval_worker_full_then_filler_removed)
{
	run_full_disk("sync=interval + worker, filler removed", EDGELOG_SYNC_INTERVAL, 1, 1);
}
END_TEST

START_TEST(test_interval_full_then_acked_segments_compacted)
{
	run_full_disk("sync=interval, acked and compacted", EDGELOG_SYNC_INTERVAL, 0, 0);
}
END_TEST

START_TEST(test_always_worker_full_then_filler_removed)
{
	run_full_disk("sync=always + worker, filler removed", EDGELOG_SYNC_ALWAYS, 1, 1);
}
END_TEST

START_TEST(test_drop_oldest_drops_when_the_disk_fills_before_the_cap)
{
	/* Issue 9 defect 3: a full file system refused new records under
	 * drop_oldest while keeping old ones. The oldest segments go instead,
	 * counted as dropped, and every append succeeds. */
	state s;
	edgelog_config c;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog *log;
	uint64_t n = 3 * FS_BYTES / 400; /* three disks' worth */
	int rc;

	if (mount_small_fs("drop_oldest on a full disk"))
		return;
	memset(&s, 0, sizeof(s));
	s.idx = calloc(MAX_APPENDS, sizeof(*s.idx));
	ck_assert_ptr_nonnull(s.idx);
	s.next_index = 1;
	snprintf(s.dir, sizeof(s.dir), "%s/db", g_mnt);
	config(&c, &s, EDGELOG_SYNC_INTERVAL);
	c.full_policy = EDGELOG_FULL_DROP_OLDEST;
	log = tu_open_ok(&c);
	rc = fill(log, &s, n, EDGELOG_SYNC_INTERVAL);
	edgelog_get_status(log, &st);
	ck_assert_msg(rc == 0,
		      "append %" PRIu64 " of %" PRIu64 " (dropped %" PRIu64 ", segments %" PRIu64
		      "): %s: %s",
		      s.accepted + 1, n, st.dropped, (uint64_t)st.segments, edgelog_strerror(rc),
		      edgelog_errmsg(log));
	ck_assert_int_eq(edgelog_sync(log), 0);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_gt(st.dropped, 0);
	ck_assert_uint_eq(st.appended, s.accepted);
	ck_assert_uint_eq(st.appended, st.pending + st.sent + st.dropped + st.expired + st.failed);
	ck_assert_int_eq(edgelog_close(log), 0);
	/* The newest records are all there after a reopen. */
	check_records(&s, st.last_seq - st.pending);
	free(s.idx);
	unmount_small_fs();
}
END_TEST

static Suite *tmpfs_suite(void)
{
	Suite *s = suite_create("tmpfs");
	TCase *tc = tcase_create("full");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_always_full_then_acked_segments_compacted);
	tcase_add_test(tc, test_interval_worker_full_then_filler_removed);
	tcase_add_test(tc, test_interval_full_then_acked_segments_compacted);
	tcase_add_test(tc, test_always_worker_full_then_filler_removed);
	tcase_add_test(tc, test_drop_oldest_drops_when_the_disk_fills_before_the_cap);
	suite_add_tcase(s, tc);
	return s;
}

TU_CHECK_MAIN(tmpfs_suite)
