/*
 * check_outages.c - the accounting identity with the uploader in the game:
 * a seeded scenario of appends, cloud outages (503), permanent refusals of
 * some records (422, which become dead letters), restarts and requeues of
 * the dead letters, against an in-process HTTP server on loopback. At every
 * step
 *
 *     appended = pending + sent + dropped + expired + failed
 *
 * and at the end, with the cloud healthy and every dead letter requeued,
 * the server holds each record appended exactly once (after dropping
 * repeats by seq, as a receiver does).
 */
#include <arpa/inet.h>
#include <check.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <edgelog.h>

#include "test_main.h"
#include "test_util.h"

#define MAX_KEYS 20000

enum {
	MODE_OK,
	MODE_DOWN,
	MODE_REFUSE
};

/* The server: answers by mode; in MODE_REFUSE a batch holding a record
 * whose key is a multiple of 7 gets 422 (the uploader isolates those). */
typedef struct server {
	struct MHD_Daemon *d;
	int port;
	pthread_mutex_t mu;
	int mode;
	unsigned got[MAX_KEYS]; /* accepted copies per key */
	uint64_t requests;
} server;

typedef struct body {
	char *p;
	size_t len;
} body;

/* Keys of the NDJSON records in b: the value of "k" in each data. */
static size_t keys_of(const body *b, uint64_t *keys, size_t cap)
{
	size_t n = 0;
	const char *p = b->p, *end = b->p + b->len;

	while (p < end && n < cap) {
		const char *k = memmem(p, (size_t)(end - p), "\"k\":", 4);
		const char *nl;
		if (!k)
			break;
		keys[n++] = strtoull(k + 4, NULL, 10);
		nl = memchr(k, '\n', (size_t)(end - k));
		p = nl ? nl + 1 : end;
	}
	return n;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	server *s = cls;
	body *b = *con_cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned status = 200;
	static uint64_t keys[4096];
	size_t n, i;

	(void)url;
	(void)method;
	(void)version;
	if (!b) {
		*con_cls = calloc(1, sizeof(body));
		return *con_cls ? MHD_YES : MHD_NO;
	}
	if (*upload_size) {
		char *np = realloc(b->p, b->len + *upload_size);
		if (!np)
			return MHD_NO;
		b->p = np;
		memcpy(b->p + b->len, upload, *upload_size);
		b->len += *upload_size;
		*upload_size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&s->mu);
	s->requests++;
	n = keys_of(b, keys, sizeof(keys) / sizeof(keys[0]));
	if (s->mode == MODE_DOWN) {
		status = 503;
	} else {
		for (i = 0; i < n && s->mode == MODE_REFUSE; i++)
			if (keys[i] % 7 == 0)
				status = 422;
		for (i = 0; i < n && status == 200; i++)
			if (keys[i] < MAX_KEYS)
				s->got[keys[i]]++;
	}
	pthread_mutex_unlock(&s->mu);
	resp = MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void done(void *cls, struct MHD_Connection *c, void **con_cls,
		 enum MHD_RequestTerminationCode toe)
{
	body *b = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (b) {
		free(b->p);
		free(b);
		*con_cls = NULL;
	}
}

static server *server_start(void)
{
	server *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *info;

	ck_assert_ptr_nonnull(s);
	pthread_mutex_init(&s->mu, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
				NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, &sa,
				MHD_OPTION_NOTIFY_COMPLETED, done, s, MHD_OPTION_END);
	ck_assert_ptr_nonnull(s->d);
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	ck_assert_ptr_nonnull(info);
	s->port = info->port;
	return s;
}

static void server_stop(server *s)
{
	MHD_stop_daemon(s->d);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static void set_mode(server *s, int mode)
{
	pthread_mutex_lock(&s->mu);
	s->mode = mode;
	pthread_mutex_unlock(&s->mu);
}

/* ---- the scenario -------------------------------------------------------- */

static char *g_dir;
static char g_url[64];

static edgelog *open_engine(void)
{
	edgelog_config c;
	edgelog *log;

	edgelog_config_init(&c);
	c.dir = g_dir;
	c.endpoint = g_url;
	c.device_id = "outage-test";
	c.compression = EDGELOG_COMPRESSION_NONE;
	c.batch_size = 8;
	c.batch_timeout_ms = 20;
	c.retry_base_ms = 5;
	c.retry_max_ms = 40;
	c.close_grace_ms = 200;
	c.sync_interval_ms = 5;
	c.segment_bytes = 64 * 1024;
	c.log_fn = tu_quiet_log;
	log = tu_open_ok(&c);
	ck_assert_int_eq(edgelog_start(log), 0);
	return log;
}

static void check_identity(edgelog *log, const char *where, int step)
{
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};

	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_msg(st.appended == st.pending + st.sent + st.dropped + st.expired + st.failed,
		      "step %d (%s): appended %" PRIu64 " != pending %" PRIu64 " + sent %" PRIu64
		      " + dropped %" PRIu64 " + expired %" PRIu64 " + failed %" PRIu64,
		      step, where, st.appended, st.pending, st.sent, st.dropped, st.expired,
		      st.failed);
}

static edgelog_status status_of(edgelog *log)
{
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	return st;
}

/* Wait until nothing is pending (the cloud must be healthy). */
static void drain(edgelog *log)
{
	int waited;

	for (waited = 0; status_of(log).pending && waited < 20000; waited += 10)
		usleep(10 * 1000);
	ck_assert_msg(status_of(log).pending == 0, "%" PRIu64 " still pending after 20 s: %s",
		      status_of(log).pending, status_of(log).last_error);
}

START_TEST(test_identity_through_outages_refusals_restarts_requeues)
{
	/* Not a multiple of splitmix's own increment: seeds s and s + 1
	 * must not be the same sequence shifted by one. */
	uint64_t rng = tu_seed() * 0xd1342543de82ef95ull + 17, key = 0, k;
	server *s = server_start();
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	int step, requeues = 0, restarts = 0, outages = 0;

	g_dir = tu_mkdtemp("outages");
	snprintf(g_url, sizeof(g_url), "http://127.0.0.1:%d/log", s->port);
	printf("check_outages: seed %" PRIu64 " (EDGELOG_TEST_SEED replays)\n", tu_seed());
	log = open_engine();
	for (step = 0; step < 160; step++) {
		uint64_t r = tu_rand_below(&rng, 100);
		if (r < 50) { /* a burst of predictions */
			uint64_t n = 1 + tu_rand_below(&rng, 40), i;
			for (i = 0; i < n && key + 1 < MAX_KEYS; i++) {
				char json[64];
				int len =
					snprintf(json, sizeof(json), "{\"k\":%" PRIu64 "}", ++key);
				ck_assert_int_eq(edgelog_append_json(log, json, (size_t)len, NULL),
						 0);
			}
			check_identity(log, "appends", step);
		} else if (r < 70) { /* the cloud changes its mind */
			int mode = (int)tu_rand_below(&rng, 3);
			outages += mode == MODE_DOWN;
			set_mode(s, mode);
			check_identity(log, "mode", step);
		} else if (r < 85) { /* time passes: uploads, retries, dead letters */
			usleep((useconds_t)(1000 * (1 + tu_rand_below(&rng, 30))));
			check_identity(log, "time", step);
		} else if (r < 93) { /* restart */
			ck_assert_int_eq(edgelog_close(log), 0);
			restarts++;
			log = open_engine();
			check_identity(log, "restart", step);
		} else { /* operator requeues the dead letters */
			uint64_t before;
			ck_assert_int_eq(edgelog_close(log), 0);
			ck_assert_int_eq(edgelog_status_dir(g_dir, &st, NULL), 0);
			before = st.failed;
			ck_assert_int_eq(edgelog_requeue_failed(g_dir), 0);
			ck_assert_int_eq(edgelog_status_dir(g_dir, &st, NULL), 0);
			ck_assert_uint_eq(st.failed, 0);
			ck_assert_uint_ge(st.requeued, before);
			requeues++;
			log = open_engine();
			check_identity(log, "requeue", step);
		}
	}
	/* The cloud heals; what it refused goes back once more; all drains. */
	set_mode(s, MODE_OK);
	drain(log);
	ck_assert_int_eq(edgelog_close(log), 0);
	ck_assert_int_eq(edgelog_requeue_failed(g_dir), 0);
	log = open_engine();
	drain(log);
	st = status_of(log);
	check_identity(log, "end", step);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_uint_eq(st.dropped + st.expired, 0);
	ck_assert_uint_eq(st.sent, st.appended);
	ck_assert_uint_eq(st.appended, key);
	ck_assert_int_eq(edgelog_close(log), 0);
	/* Every key reached the server; repeats (a lost answer, a retried
	 * batch) are what its dedupe by seq absorbs, never a gap. */
	pthread_mutex_lock(&s->mu);
	for (k = 1; k <= key; k++)
		ck_assert_msg(s->got[k] >= 1, "key %" PRIu64 " never reached the server", k);
	pthread_mutex_unlock(&s->mu);
	printf("check_outages: %" PRIu64 " records, %" PRIu64 " requests, %d outages, %d "
	       "restarts, %d requeues, %" PRIu64 " requeued records\n",
	       key, s->requests, outages, restarts, requeues, st.requeued);
	ck_assert_int_gt(requeues, 0);
	ck_assert_uint_gt(st.requeued, 0);
	server_stop(s);
	tu_rm_rf(g_dir);
	free(g_dir);
}
END_TEST

static Suite *outages_suite(void)
{
	Suite *su = suite_create("outages");
	TCase *tc = tcase_create("outages");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_identity_through_outages_refusals_restarts_requeues);
	suite_add_tcase(su, tc);
	return su;
}

TU_CHECK_MAIN(outages_suite)
