/*
 * check_uploader_poison.c - records the endpoint refuses for good: a
 * record the server rejects (4xx naming it, or a 500 that only that record
 * provokes) goes to the dead-letter store with its status and reason and
 * the rest is delivered; a fully-down server dead-letters nothing; a record
 * that cannot be encoded, or one of the largest size, is dead-lettered
 * alone.
 */
#include <check.h>
#include <jansson.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <edgelog.h>

#include "seg_writer.h"
#include "test_json.h"
#include "test_main.h"
#include "test_uploader.h"
#include "test_util.h"

#define POISON_BODY "record rejected: field 'confidence' fails schema v7 (poison)"

/* 422 for any batch holding seq p[0]. */
static void script_poison(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs,
			  srv_reply *out)
{
	size_t i;
	(void)idx;
	for (i = 0; i < rq->nrec; i++)
		if (recs[i].seq == (uint64_t)s->p[0]) {
			out->status = 422;
			snprintf(out->body, sizeof(out->body), "%s", POISON_BODY);
		}
}

/* A record whose frame verifies but whose payload is not one msgpack
 * object (written below the engine, which refuses it at append) cannot be
 * sent in any format: it goes to failed/ with the reason, counted, and the
 * records around it are delivered; it is never retried forever. */
START_TEST(test_unencodable_record_dead_lettered)
{
	static const uint8_t bad[] = {0x92, 0x01}; /* array of 2 holding one element */
	int f;

	for (f = EDGELOG_FORMAT_NDJSON; f <= EDGELOG_FORMAT_MSGPACK; f++) {
		char *dir = tu_mkdtemp("unenc");
		char segdir[4300];
		srv *s;
		char *url;
		edgelog_config c;
		edgelog *log;
		edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
		seg_writer w;
		seg_open_report rep;
		seg_err e;
		uint64_t seq = 0;
		dead_rec dead[4];
		size_t nd;

		/* Records 1..3 through the engine, 4 below it, 5..50 through it. */
		cfg_std(&c, dir, NULL);
		log = tu_open_ok(&c);
		append_samples(log, 1, 3);
		ck_assert_int_eq(edgelog_close(log), 0);
		snprintf(segdir, sizeof(segdir), "%s/segments", dir);
		ck_assert_int_eq(seg_writer_open(&w, seg_vfs_posix(), segdir, 1 << 20, 3600000, 4,
						 &rep, &e),
				 0);
		ck_assert_int_eq(seg_writer_append(&w, bad, sizeof(bad), real_ms(), &seq, &e), 0);
		ck_assert_uint_eq(seq, 4);
		ck_assert_int_eq(seg_writer_close(&w, &e), 0);

		s = srv_start(NULL);
		url = url_for(s->port, "http", "127.0.0.1");
		srv_keep_data(s);
		cfg_std(&c, dir, url);
		c.format = (edgelog_format)f;
		log = tu_open_ok(&c);
		append_samples(log, 5, 46);
		ck_assert_int_eq(edgelog_start(log), 0);
		WAIT_FOR(log, st, 15000, st.pending == 0 && st.acked_seq == 50);
		ck_assert_uint_eq(st.failed, 1);
		ck_assert_uint_eq(st.sent, 49);
		ck_assert_int_le(close_timed(log), TU_MS(3000));
		check_acked_range(s, 1, 50, 4);
		nd = read_dead(dir, dead, 4);
		ck_assert_uint_eq(nd, 1);
		ck_assert_uint_eq(dead[0].seq, 4);
		ck_assert_int_eq(dead[0].status, 0);
		ck_assert_msg(strstr(dead[0].reason, "not one well-formed msgpack object"),
			      "reason '%s'", dead[0].reason);
		free(dead[0].data);
		srv_stop(s);
		free(url);
		free(dir);
	}
}
END_TEST

START_TEST(test_poison_record_dead_lettered)
{
	char *dir = tu_mkdtemp("poison");
	srv *s = srv_start(script_poison);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	dead_rec dead[8];
	size_t nd;
	char *want;
	int64_t t0 = real_ms();

	srv_keep_data(s);
	srv_set(s, 0, 500);
	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	append_samples(log, 1, 1000);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 15000, st.pending == 0 && st.sent + st.failed >= 1000);
	ck_assert_uint_eq(st.failed, 1);
	ck_assert_uint_eq(st.sent, 999);
	ck_assert_uint_eq(st.acked_seq, 1000);
	check_acked_range(s, 1, 1000, 500);
	ck_assert_msg(srv_nreq(s) <= 200, "%zu requests to isolate one record", srv_nreq(s));
	ck_assert_int_le(close_timed(log), TU_MS(3000));

	nd = read_dead(dir, dead, 8);
	ck_assert_uint_eq(nd, 1);
	ck_assert_uint_eq(dead[0].seq, 500);
	ck_assert_int_eq(dead[0].status, 422);
	ck_assert_msg(strstr(dead[0].reason, "422") != NULL, "reason '%s'", dead[0].reason);
	ck_assert_msg(strstr(dead[0].reason, "record rejected: field 'confidence'") != NULL,
		      "reason '%s' lacks the response body", dead[0].reason);
	ck_assert_msg(dead[0].ts >= t0 - 1000 && dead[0].ts <= real_ms(), "ts %lld",
		      (long long)dead[0].ts);
	want = tu_sample_canon(500);
	ck_assert_str_eq(dead[0].data, want);
	free(want);
	free(dead[0].data);
	st = offline_status(dir);
	ck_assert_uint_eq(st.failed, 1);
	ck_assert_uint_eq(st.sent, 999);
	ck_assert_uint_eq(st.pending, 0);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

#define POISON_500_BODY "Code: 26, e.displayText() = DB::Exception: Cannot parse JSON string"

/* 500 for any batch holding seq p[0] (a receiver that cannot parse that
 * row answers as ClickHouse does); 200 otherwise. */
static void script_poison_500(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs,
			      srv_reply *out)
{
	size_t i;
	(void)idx;
	for (i = 0; i < rq->nrec; i++)
		if (recs[i].seq == (uint64_t)s->p[0]) {
			out->status = 500;
			snprintf(out->body, sizeof(out->body), "%s", POISON_500_BODY);
		}
}

static void cfg_poison(edgelog_config *c, const char *dir, const char *url)
{
	cfg_std(c, dir, url);
	c->poison_tries = 3;
	c->retry_base_ms = 5;
	c->retry_max_ms = 50;
}

/* Issue 11: a receiver that answers 500 to one record (not 4xx) used to
 * stop the whole backlog behind it for ever. Now that record alone goes to
 * failed/, with the status and the answer, counted as poisoned; the rest
 * are delivered. Wherever it sits: first, in the middle, last. */
START_TEST(test_poison_500_only_that_record_dead_lettered)
{
	static const uint64_t where[] = {1, 500, 1000};
	size_t w;

	for (w = 0; w < sizeof(where) / sizeof(where[0]); w++) {
		char *dir = tu_mkdtemp("poison500");
		srv *s = srv_start(script_poison_500);
		char *url = url_for(s->port, "http", "127.0.0.1");
		edgelog_config c;
		edgelog *log;
		edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
		dead_rec dead[4];
		size_t nd;

		srv_set(s, 0, (long)where[w]);
		cfg_poison(&c, dir, url);
		log = tu_open_ok(&c);
		append_samples(log, 1, 1000);
		ck_assert_int_eq(edgelog_start(log), 0);
		if (where[w] == 1000) {
			/* The last record, nothing after it: no other record can
       * show the endpoint is up, so it is kept, however often
       * it fails... */
			WAIT_FOR(log, st, 20000, st.sent == 999);
			while (srv_nreq(s) < 60)
				sleep_ms(5);
			st = status_of(log);
			ck_assert_msg(st.failed == 0 && st.pending == 1, STATUS_FMT,
				      STATUS_ARGS(st));
			/* ...until another record goes through. */
			append_samples(log, 1001, 1);
		}
		WAIT_FOR(log, st, 20000,
			 st.pending == 0 &&
				 st.sent + st.failed >= (where[w] == 1000 ? 1001 : 1000));
		ck_assert_msg(st.failed == 1 && st.poisoned == 1, "seq %llu: " STATUS_FMT,
			      (unsigned long long)where[w], STATUS_ARGS(st));
		ck_assert_uint_eq(st.sent, where[w] == 1000 ? 1000 : 999);
		check_acked_range(s, 1, where[w] == 1000 ? 1001 : 1000, where[w]);
		ck_assert_int_le(close_timed(log), TU_MS(3000));

		nd = read_dead(dir, dead, 4);
		ck_assert_uint_eq(nd, 1);
		ck_assert_uint_eq(dead[0].seq, where[w]);
		ck_assert_int_eq(dead[0].status, 500);
		ck_assert_msg(strstr(dead[0].reason, "HTTP 500") &&
				      strstr(dead[0].reason, "Cannot parse JSON") &&
				      strstr(dead[0].reason, "poison"),
			      "reason '%s'", dead[0].reason);
		free(dead[0].data);
		pthread_mutex_lock(&g_log_mu);
		ck_assert_msg(strstr(g_logs, "dead-lettered as poison") != NULL, "logs: %s",
			      g_logs);
		pthread_mutex_unlock(&g_log_mu);
		/* Offline too: counted, and the metric is there. */
		ck_assert_int_eq(edgelog_status_dir(dir, &st, NULL), 0);
		ck_assert_uint_eq(st.poisoned, 1);
		ck_assert_uint_eq(st.failed, 1);
		srv_stop(s);
		free(url);
		free(dir);
	}
}
END_TEST

/* Issue 11: the other half of poison detection. An endpoint that answers
 * 500 to everything (down behind a proxy) gets hundreds of tries with a
 * tiny backoff and poison_tries 2, batches split to single records and
 * probes sent, and still nothing is dead-lettered; when it comes back
 * everything is delivered once. */
START_TEST(test_poison_fully_down_500_nothing_dead_lettered)
{
	char *dir = tu_mkdtemp("down500");
	srv *s = srv_start(script_first_n);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};

	srv_set(s, 0, 1L << 40); /* every request */
	srv_set(s, 1, 500);
	cfg_std(&c, dir, url);
	c.poison_tries = 2;
	c.retry_base_ms = 1;
	c.retry_max_ms = 4;
	log = tu_open_ok(&c);
	append_samples(log, 1, 300);
	ck_assert_int_eq(edgelog_start(log), 0);
	{
		int64_t until = mono_ms() + TU_MS(20000);
		while (srv_nreq(s) < 400 && mono_ms() < until)
			sleep_ms(10);
	}
	/* Far more than it takes to split 300 records down to one and
   * probe (2 tries a level, 9 levels). */
	ck_assert_uint_ge(srv_nreq(s), 100);
	st = status_of(log);
	ck_assert_msg(st.failed == 0 && st.poisoned == 0 && st.pending == 300 && st.sent == 0,
		      STATUS_FMT, STATUS_ARGS(st));
	ck_assert_uint_eq(read_dead(dir, NULL, 0), 0);
	srv_set(s, 0, 0); /* back */
	WAIT_FOR(log, st, 20000, st.pending == 0);
	ck_assert_msg(st.failed == 0 && st.sent == 300, STATUS_FMT, STATUS_ARGS(st));
	{
		/* Each once. A probe sent as the endpoint came back can land
		 * before the record it was probing for (README, retry list):
		 * order aside, the set is exact. */
		size_t n, i;
		srv_rec *a = srv_acked(s, &n);
		static unsigned char seen[301];
		memset(seen, 0, sizeof(seen));
		ck_assert_uint_eq(n, 300);
		for (i = 0; i < n; i++) {
			ck_assert_msg(a[i].seq >= 1 && a[i].seq <= 300 && !seen[a[i].seq],
				      "seq %llu twice or out of range",
				      (unsigned long long)a[i].seq);
			seen[a[i].seq] = 1;
		}
		free(a);
	}
	ck_assert_int_le(close_timed(log), TU_MS(3000));
	ck_assert_uint_eq(read_dead(dir, NULL, 0), 0);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

/* A refused record of nearly the largest size goes to failed/ whole (the
 * dead-letter store takes what the log takes). */
START_TEST(test_poison_max_size_record)
{
	char *dir = tu_mkdtemp("poison-big");
	srv *s = srv_start(script_poison);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	dead_rec dead[4];
	size_t nd, binlen = EDGELOG_MAX_RECORD - 16, k;
	char *bin = malloc(binlen), *want;
	uint64_t seq;
	json_t *j;
	msgpack_unpacked u;
	size_t off = 0;
	PACK_BEGIN();

	ck_assert_ptr_nonnull(bin);
	for (k = 0; k < binlen; k++)
		bin[k] = (char)(k * 31);
	msgpack_pack_bin_with_body(&pk, bin, binlen);
	ck_assert_uint_le(sb.size, EDGELOG_MAX_RECORD);
	srv_set(s, 0, 4);
	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	append_samples(log, 1, 3);
	ck_assert_int_eq(edgelog_append(log, sb.data, sb.size, &seq), 0);
	ck_assert_uint_eq(seq, 4);
	append_samples(log, 5, 3);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 15000, st.pending == 0);
	ck_assert_uint_eq(st.failed, 1);
	ck_assert_uint_eq(st.sent, 6);
	ck_assert_int_le(close_timed(log), TU_MS(3000));
	nd = read_dead(dir, dead, 4);
	ck_assert_uint_eq(nd, 1);
	ck_assert_uint_eq(dead[0].seq, 4);
	ck_assert_int_eq(dead[0].status, 422);
	msgpack_unpacked_init(&u);
	ck_assert_int_eq(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
	j = tu_mpo_json(&u.data);
	want = tu_canon(j);
	ck_assert_msg(!strcmp(dead[0].data, want), "the dead letter's data differs");
	free(want);
	json_decref(j);
	msgpack_unpacked_destroy(&u);
	free(dead[0].data);
	free(bin);
	msgpack_sbuffer_destroy(&sb);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

static Suite *poison_suite(void)
{
	Suite *s = uploader_suite_create("uploader_poison");
	TCase *tc;

	tc = tcase_create("engine_http");
	uploader_engine_tcase(tc);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_poison_record_dead_lettered);
	tcase_add_test(tc, test_poison_500_only_that_record_dead_lettered);
	tcase_add_test(tc, test_poison_fully_down_500_nothing_dead_lettered);
	tcase_add_test(tc, test_unencodable_record_dead_lettered);
	tcase_add_test(tc, test_poison_max_size_record);
	suite_add_tcase(s, tc);

	return s;
}

TU_CHECK_MAIN(poison_suite)
