/*
 * check_uploader_shutdown.c - the uploader's lifecycle: driven by
 * edgelog_upload_step without a worker thread, and edgelog_close draining
 * within close_grace_ms, also while backing off.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <edgelog.h>

#include "test_main.h"
#include "test_uploader.h"
#include "test_util.h"

START_TEST(test_step_driven_without_worker)
{
	char *dir = tu_mkdtemp("step");
	srv *s = srv_start(NULL);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	int64_t until;

	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	append_samples(log, 1, 500);
	until = mono_ms() + TU_MS(10000);
	do {
		ck_assert_int_eq(edgelog_step(log, 20), 0);
		st = status_of(log);
		ck_assert_msg(mono_ms() < until, "edgelog_step did not deliver: " STATUS_FMT,
			      STATUS_ARGS(st));
	} while (st.pending);
	ck_assert_uint_eq(st.sent, 500);
	check_acked_range(s, 1, 500, 0);
	ck_assert_int_le(close_timed(log), TU_MS(3000));
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

START_TEST(test_close_drains_within_grace)
{
	char *dir = tu_mkdtemp("drain");
	srv *s = srv_start(NULL);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};

	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	append_samples(log, 1, 3000);
	/* Never started: close alone delivers the backlog. */
	ck_assert_int_le(close_timed(log), TU_MS(2000 + 500));
	check_acked_range(s, 1, 3000, 0);
	st = offline_status(dir);
	ck_assert_uint_eq(st.pending, 0);
	ck_assert_uint_eq(st.sent, 3000);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

/* Backing off for a long Retry-After: status says when, and close does
 * not wait for it beyond the grace period. */
START_TEST(test_close_while_backing_off)
{
	char *dir = tu_mkdtemp("ra-close");
	srv *s = srv_start(script_retry_after);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	int64_t took;

	srv_set(s, 0, 1000); /* every request */
	srv_set(s, 1, 503);
	srv_set(s, 2, 3); /* Retry-After: 3600, capped at 10 x retry_max_ms */
	cfg_std(&c, dir, url);
	/* The back-off outlasts the close grace at any time factor. */
	c.retry_max_ms = (uint32_t)TU_MS(500);
	log = tu_open_ok(&c);
	append_samples(log, 1, 10);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 5000, strstr(st.last_error, "503") != NULL);
	ck_assert_msg(st.retry_in_s >= (uint64_t)TU_MS(5) - 1 &&
			      st.retry_in_s <= (uint64_t)TU_MS(5),
		      "retry_in_s %llu", (unsigned long long)st.retry_in_s);
	took = close_timed(log);
	ck_assert_msg(took <= TU_MS(2000) + SLACK_MS * 3, "close took %lld ms while backing off",
		      (long long)took);
	ck_assert_uint_eq(srv_nreq(s), 1);
	st = offline_status(dir);
	ck_assert_uint_eq(st.pending, 10);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

static Suite *shutdown_suite(void)
{
	Suite *s = uploader_suite_create("uploader_shutdown");
	TCase *tc;

	tc = tcase_create("engine_http");
	uploader_engine_tcase(tc);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_step_driven_without_worker);
	tcase_add_test(tc, test_close_drains_within_grace);
	tcase_add_test(tc, test_close_while_backing_off);
	suite_add_tcase(s, tc);

	return s;
}

TU_CHECK_MAIN(shutdown_suite)
