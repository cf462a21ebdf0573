/*
 * check_compactor.c - retention: the pure decision (cmp_plan) and the
 * engine running it: size cap under drop_oldest and reject, age retention
 * on a fake clock with jumps, and the accounting identity
 * appended = pending + sent + dropped + expired + failed.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <edgelog.h>

#include "cmp.h"
#include "eng_internal.h"
#include "test_main.h"
#include "test_util.h"
#include "test_vfs.h"
#include "tool_sample.h"

#define DAY_MS (86400ll * 1000)

/* ---- cmp_plan ------------------------------------------------------------ */

static cmp_seg seg(uint64_t base, uint64_t last, int64_t wall, int64_t age, uint64_t bytes)
{
	cmp_seg s = {base, last, wall, age, bytes};
	return s;
}

START_TEST(test_plan_deletes_acked_prefix_only)
{
	cmp_seg s[3] = {seg(1, 100, 0, 0, 10), seg(101, 200, 0, 0, 10), seg(201, 300, 0, 0, 10)};
	cmp_policy p;
	cmp_action a[3];

	memset(&p, 0, sizeof(p));
	p.acked_seq = 150; /* the second segment is half acknowledged */
	ck_assert_uint_eq(cmp_plan(s, 3, &p, a), 1);
	ck_assert_int_eq(a[0].reason, CMP_ACKED);
	ck_assert_uint_eq(a[0].lost_lo, a[0].lost_hi);
	p.acked_seq = 200;
	ck_assert_uint_eq(cmp_plan(s, 3, &p, a), 2);
}
END_TEST

START_TEST(test_plan_expiry_needs_both_clocks)
{
	cmp_seg s[1] = {seg(1, 100, 1000, 5000, 10)};
	cmp_policy p;
	cmp_action a[1];

	memset(&p, 0, sizeof(p));
	p.retention_ms = 7 * DAY_MS;
	/* The wall clock jumped a year ahead, the age clock moved a minute. */
	p.now_wall_ms = 1000 + 365 * DAY_MS;
	p.now_age_ms = 5000 + 60000;
	ck_assert_uint_eq(cmp_plan(s, 1, &p, a), 0);
	/* The age clock says 8 days, but the wall clock went back to 1970. */
	p.now_wall_ms = 0;
	p.now_age_ms = 5000 + 8 * DAY_MS;
	ck_assert_uint_eq(cmp_plan(s, 1, &p, a), 0);
	/* Both agree: expired, with the unacked range. */
	p.now_wall_ms = 1000 + 8 * DAY_MS;
	p.acked_seq = 40;
	ck_assert_uint_eq(cmp_plan(s, 1, &p, a), 1);
	ck_assert_int_eq(a[0].reason, CMP_EXPIRED);
	ck_assert_uint_eq(a[0].lost_lo, 40);
	ck_assert_uint_eq(a[0].lost_hi, 100);
}
END_TEST

START_TEST(test_plan_size_pressure_drops_oldest_only_under_drop_oldest)
{
	cmp_seg s[3] = {seg(1, 100, 0, 0, 100), seg(101, 200, 0, 0, 100), seg(201, 300, 0, 0, 100)};
	cmp_policy p;
	cmp_action a[3];

	memset(&p, 0, sizeof(p));
	p.used_bytes = 400; /* three sealed + the active one */
	p.target_bytes = 250;
	p.drop_oldest = 1;
	ck_assert_uint_eq(cmp_plan(s, 3, &p, a), 2);
	ck_assert_int_eq(a[0].reason, CMP_DROPPED);
	ck_assert_int_eq(a[1].reason, CMP_DROPPED);
	ck_assert_uint_eq(a[1].lost_lo, 100);
	ck_assert_uint_eq(a[1].lost_hi, 200);
	p.drop_oldest = 0; /* reject: nothing unacked ever goes for size */
	ck_assert_uint_eq(cmp_plan(s, 3, &p, a), 0);
}
END_TEST

/* ---- through the engine --------------------------------------------------- */

static char *g_dir;

static void setup(void)
{
	g_dir = tu_mkdtemp("cmptest");
}

static void teardown(void)
{
	tu_rm_rf(g_dir);
	free(g_dir);
}

static edgelog *open_cfg(edgelog_config *c, const seg_vfs *v)
{
	edgelog *log;
	int rc = v ? eng_open_vfs(&log, c, v) : edgelog_open(&log, c);
	ck_assert_msg(rc == 0, "open: %s", edgelog_errmsg(NULL));
	return log;
}

static void cfg_small(edgelog_config *c, int policy)
{
	edgelog_config_init(c);
	c->dir = g_dir;
	c->max_size_mb = 1;
	c->segment_bytes = 65536;
	c->sync = EDGELOG_SYNC_NONE;
	c->full_policy = policy;
}

static int append_n(edgelog *log, uint64_t from, uint64_t n, uint64_t *last)
{
	uint8_t b[1024];
	uint64_t i, seq = 0;
	int rc = 0;

	for (i = 0; i < n; i++) {
		size_t len = tool_sample_msgpack(from + i, b, sizeof(b));
		rc = edgelog_append(log, b, len, &seq);
		if (rc)
			break;
	}
	if (last)
		*last = seq;
	return rc;
}

static void check_identity(edgelog *log, uint64_t appended)
{
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};

	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_msg(st.pending + st.sent + st.dropped + st.expired + st.failed == appended,
		      "appended %" PRIu64 " != pending %" PRIu64 " + sent %" PRIu64
		      " + dropped %" PRIu64 " + expired %" PRIu64 " + failed %" PRIu64,
		      appended, st.pending, st.sent, st.dropped, st.expired, st.failed);
}

/* Disk use of the directory's files. */
static uint64_t dir_bytes(void)
{
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog_config c;
	edgelog *log;

	cfg_small(&c, 0);
	log = open_cfg(&c, NULL);
	edgelog_get_status(log, &st);
	edgelog_close(log);
	return st.size_bytes;
}

START_TEST(test_drop_oldest_keeps_the_cap_and_counts)
{
	edgelog_config c;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog_reader *r;
	edgelog_record rec;
	uint64_t last, n = 0, first = 0, prev = 0;
	edgelog *log;

	cfg_small(&c, EDGELOG_FULL_DROP_OLDEST);
	log = open_cfg(&c, NULL);
	/* About 4.4 MB into a 1 MiB cap. */
	ck_assert_int_eq(append_n(log, 1, 10000, &last), 0);
	ck_assert_uint_eq(last, 10000);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_gt(st.dropped, 0);
	ck_assert_uint_le(st.size_bytes, st.max_size_bytes + 65536);
	check_identity(log, 10000);
	/* Acks count as sent, and the identity still holds. */
	ck_assert_int_eq(edgelog_ack(log, st.last_seq - 10), 0);
	check_identity(log, 10000);
	ck_assert_int_eq(edgelog_close(log), 0);

	/* What is left is a contiguous run ending at the last record. */
	ck_assert_int_eq(edgelog_reader_open(&r, g_dir, 0), 0);
	while (edgelog_reader_next(r, &rec) == 0) {
		if (!n)
			first = rec.seq;
		else
			ck_assert_uint_eq(rec.seq, prev + 1);
		prev = rec.seq;
		n++;
	}
	edgelog_reader_close(r);
	ck_assert_uint_eq(prev, 10000);
	ck_assert_uint_gt(first, 1);
	ck_assert_uint_le(dir_bytes(), (1u << 20) + 65536);
}
END_TEST

START_TEST(test_reject_refuses_then_accepts_after_acks)
{
	edgelog_config c;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	uint64_t last = 0;
	edgelog *log;
	int rc;

	cfg_small(&c, EDGELOG_FULL_REJECT);
	log = open_cfg(&c, NULL);
	rc = append_n(log, 1, 10000, &last);
	ck_assert_int_eq(rc, EDGELOG_EFULL);
	ck_assert_msg(strstr(edgelog_errmsg(log), "cap") != NULL, "%s", edgelog_errmsg(log));
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.dropped, 0);
	ck_assert_uint_eq(st.expired, 0);
	ck_assert_uint_le(st.size_bytes, st.max_size_bytes + 65536);
	ck_assert_uint_gt(st.last_seq, 0);
	check_identity(log, st.last_seq);
	/* Still full: another append fails, nothing stored. */
	ck_assert_int_eq(append_n(log, st.last_seq + 1, 1, NULL), EDGELOG_EFULL);
	/* Acknowledge everything and run retention: room again. */
	ck_assert_int_eq(edgelog_ack(log, st.last_seq), 0);
	ck_assert_int_eq(edgelog_cleanup(log, 0), 0);
	ck_assert_int_eq(append_n(log, st.last_seq + 1, 100, &last), 0);
	ck_assert_uint_eq(last, st.last_seq + 100);
	check_identity(log, st.last_seq + 100);
	ck_assert_int_eq(edgelog_close(log), 0);
}
END_TEST

START_TEST(test_age_retention_survives_clock_jumps)
{
	tvfs_fault *f = tvfs_fault_new(NULL);
	const seg_vfs *v = tvfs_fault_vfs(f);
	int64_t t0 = 1764000000000ll;
	edgelog_config c;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog *log;
	uint64_t last;

	tvfs_fault_clock_set(f, t0, 1000);
	cfg_small(&c, EDGELOG_FULL_DROP_OLDEST);
	c.max_size_mb = 100;
	c.retention_days = 1;
	log = open_cfg(&c, v);
	/* Several sealed segments. */
	ck_assert_int_eq(append_n(log, 1, 2000, &last), 0);

	/* The wall clock jumps a year ahead: nothing may expire. */
	tvfs_fault_clock_jump(f, 365 * DAY_MS);
	ck_assert_int_eq(edgelog_cleanup(log, 0), 0);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.expired, 0);
	ck_assert_uint_eq(st.pending, 2000);
	/* ... and back to 1970: still nothing. */
	tvfs_fault_clock_jump(f, -(365 * DAY_MS) - t0);
	ck_assert_int_eq(edgelog_cleanup(log, 0), 0);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.expired, 0);

	/* The clock restored, two days of real (monotonic) time pass. */
	tvfs_fault_clock_jump(f, t0);
	tvfs_fault_clock_advance(f, 2 * DAY_MS);
	ck_assert_int_eq(edgelog_cleanup(log, 0), 0);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_gt(st.expired, 0);
	ck_assert_uint_lt(st.expired, 2000); /* the active segment stays */
	check_identity(log, 2000);
	ck_assert_int_eq(edgelog_close(log), 0);

	/* The age clock persists: reopening does not reset ages, and the
	 * counts persist too. */
	log = open_cfg(&c, v);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	check_identity(log, 2000);
	ck_assert_int_eq(edgelog_close(log), 0);
	tvfs_fault_free(f);
}
END_TEST

START_TEST(test_powered_off_time_does_not_age)
{
	tvfs_fault *f = tvfs_fault_new(NULL);
	const seg_vfs *v = tvfs_fault_vfs(f);
	int64_t t0 = 1764000000000ll;
	edgelog_config c;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog *log;

	tvfs_fault_clock_set(f, t0, 1000);
	cfg_small(&c, EDGELOG_FULL_DROP_OLDEST);
	c.max_size_mb = 100;
	c.retention_days = 1;
	log = open_cfg(&c, v);
	ck_assert_int_eq(append_n(log, 1, 2000, NULL), 0);
	ck_assert_int_eq(edgelog_close(log), 0);
	/* A month unpowered: the wall clock moves, the monotonic clock
	 * restarts (a new boot). */
	tvfs_fault_clock_set(f, t0 + 30 * DAY_MS, 5);
	log = open_cfg(&c, v);
	ck_assert_int_eq(edgelog_cleanup(log, 0), 0);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.expired, 0);
	ck_assert_uint_eq(st.pending, 2000);
	ck_assert_int_eq(edgelog_close(log), 0);
	tvfs_fault_free(f);
}
END_TEST

static Suite *compactor_suite(void)
{
	Suite *s = suite_create("compactor");
	TCase *tc = tcase_create("plan");

	tcase_add_test(tc, test_plan_deletes_acked_prefix_only);
	tcase_add_test(tc, test_plan_expiry_needs_both_clocks);
	tcase_add_test(tc, test_plan_size_pressure_drops_oldest_only_under_drop_oldest);
	suite_add_tcase(s, tc);

	tc = tcase_create("engine");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_drop_oldest_keeps_the_cap_and_counts);
	tcase_add_test(tc, test_reject_refuses_then_accepts_after_acks);
	tcase_add_test(tc, test_age_retention_survives_clock_jumps);
	tcase_add_test(tc, test_powered_off_time_does_not_age);
	suite_add_tcase(s, tc);
	return s;
}

TU_CHECK_MAIN(compactor_suite)
