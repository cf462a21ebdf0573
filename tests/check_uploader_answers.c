/*
 * check_uploader_answers.c - what each kind of answer means to the
 * uploader: every 2xx acknowledges; a redirect is not a dead letter; a
 * server that never answers, answers garbage, or refuses the connection
 * leaves the records pending and the uploader recovers (and counts the
 * backlog it recovered); a huge answer body is read with bounded memory,
 * and a huge 500 gives a short error.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <edgelog.h>

#include "test_main.h"
#include "test_uploader.h"
#include "test_util.h"

/* Accept, then say nothing for p[0] ms (then 200, to nobody). */
static void script_silent(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs,
			  srv_reply *out)
{
	(void)idx;
	(void)rq;
	(void)recs;
	out->sleep_ms = (int)s->p[0];
}

START_TEST(test_server_never_answers)
{
	const char *token = "silent-srv-token-5150";
	char *dir = tu_mkdtemp("silent");
	srv *s = srv_start(script_silent);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	srv_req r0, r1;
	int64_t took;

	snprintf(g_secret, sizeof(g_secret), "%s", token);
	srv_set(s, 0, (long)TU_MS(8000));
	cfg_std(&c, dir, url);
	c.auth_token = token;
	log = tu_open_ok(&c);
	append_samples(log, 1, 5);
	ck_assert_int_eq(edgelog_start(log), 0);
	srv_wait_reqs(s, 2, 8000); /* timed out, then retried */
	WAIT_FOR(log, st, 5000,
		 !st.is_connected &&
			 (has_ci(st.last_error, "timeout") || has_ci(st.last_error, "timed out")));
	ck_assert_uint_eq(st.sent, 0);
	ck_assert_uint_eq(st.pending, 5);
	r0 = srv_peek(s, 0);
	r1 = srv_peek(s, 1);
	ck_assert_str_eq(r0.idem, r1.idem);
	ck_assert_msg(r1.t_arrive_us - r0.t_arrive_us >= 900000,
		      "retry %lld ms after the first request: no timeout in between",
		      (long long)(r1.t_arrive_us - r0.t_arrive_us) / 1000);
	check_no_secret(log, NULL, token);
	took = close_timed(log);
	ck_assert_msg(took <= TU_MS(2000 + 1000 + 1500), "edgelog_close took %lld ms",
		      (long long)took);
	st = offline_status(dir);
	ck_assert_uint_eq(st.acked_seq, 0);
	ck_assert_uint_eq(st.sent, 0);
	ck_assert_uint_eq(st.pending, 5);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

/* The huge answers: a body much larger than what may stay resident. Under
 * ThreadSanitizer the shadow memory of the threads alone adds about 9 MiB,
 * so the body and the limit grow there (a kept body would still show). */
#if defined(__SANITIZE_THREAD__)
#define HUGE_BODY (64l << 20)
#define RSS_LIMIT (24l << 20)
#else
#define HUGE_BODY (20l << 20)
#define RSS_LIMIT (8l << 20)
#endif

/* Peak resident set while fn runs, sampled (the kernel's VmHWM cannot be
 * reset reliably in every container). */
typedef struct rss_sampler {
	pthread_t th;
	int stop; /* atomic */
	long peak_pages;
} rss_sampler;

static long rss_pages(void)
{
	long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res;
}

static void *rss_main(void *arg)
{
	rss_sampler *r = arg;
	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		long p = rss_pages();
		if (p > r->peak_pages)
			r->peak_pages = p;
		usleep(500);
	}
	return NULL;
}

/* p[0]: status; every answer carries a p[1]-byte body. */
static void script_big(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs, srv_reply *out)
{
	(void)idx;
	(void)rq;
	(void)recs;
	out->status = (unsigned)s->p[0];
	out->big_body = (uint64_t)s->p[1];
}

/* One huge-answer run: a server answering `status` with a HUGE_BODY-byte
 * body, an engine holding 10 records, started, and the resident set
 * sampled from just before the start. */
typedef struct huge_run {
	char *dir, *url;
	srv *s;
	edgelog *log;
	rss_sampler rs;
	long base;
} huge_run;

static void huge_begin(huge_run *h, const char *prefix, unsigned status)
{
	edgelog_config c;

	memset(h, 0, sizeof(*h));
	h->dir = tu_mkdtemp(prefix);
	h->s = srv_start(script_big);
	h->url = url_for(h->s->port, "http", "127.0.0.1");
	srv_set(h->s, 0, status);
	srv_set(h->s, 1, HUGE_BODY);
	cfg_std(&c, h->dir, h->url);
	c.segment_bytes = 65536;
	/* 64 MiB takes seconds under the sanitizers: a transfer timeout that
   * leaves room for it (what is tested is memory, not speed). */
	c.http_timeout_ms = 30000;
	h->log = tu_open_ok(&c);
	append_samples(h->log, 1, 10);
	h->base = rss_pages();
	h->rs.peak_pages = h->base;
	pthread_create(&h->rs.th, NULL, rss_main, &h->rs);
	ck_assert_int_eq(edgelog_start(h->log), 0);
}

/* Stop sampling; how many bytes the resident set grew by at its peak. */
static long huge_grown(huge_run *h)
{
	__atomic_store_n(&h->rs.stop, 1, __ATOMIC_RELAXED);
	pthread_join(h->rs.th, NULL);
	return (h->rs.peak_pages - h->base) * sysconf(_SC_PAGESIZE);
}

static void huge_end(huge_run *h)
{
	srv_stop(h->s);
	free(h->url);
	free(h->dir);
}

START_TEST(test_huge_body_200_bounded_memory)
{
	huge_run h;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	long grown;

	huge_begin(&h, "huge200", 200);
	WAIT_FOR(h.log, st, 10000, st.sent == 10);
	grown = huge_grown(&h);
	ck_assert_int_eq(st.is_connected, 1);
	ck_assert_uint_ge(__atomic_load_n(&h.s->big_sent, __ATOMIC_RELAXED), HUGE_BODY);
	ck_assert_msg(grown < RSS_LIMIT,
		      "resident set grew by %ld KiB while a %ld MiB answer was read", grown / 1024,
		      (long)HUGE_BODY >> 20);
	ck_assert_int_le(close_timed(h.log), TU_MS(3000));
	huge_end(&h);
}
END_TEST

START_TEST(test_huge_body_500_retried_short_error)
{
	huge_run h;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	long grown;

	huge_begin(&h, "huge500", 500);
	srv_wait_reqs(h.s, 3, 10000);
	WAIT_FOR(h.log, st, 5000, strstr(st.last_error, "500") != NULL);
	grown = huge_grown(&h);
	ck_assert_uint_eq(st.sent, 0);
	ck_assert_int_eq(st.is_connected, 0);
	/* Bounded (the status field's 256 bytes, the start of the body at
   * most) and clear: it names the status. */
	ck_assert_msg(strlen(st.last_error) < sizeof(st.last_error) &&
			      strstr(st.last_error, "HTTP 500") != NULL,
		      "last_error '%s'", st.last_error);
	ck_assert_msg(strlen(edgelog_errmsg(h.log)) < 512, "errmsg %zu bytes",
		      strlen(edgelog_errmsg(h.log)));
	ck_assert_msg(grown < RSS_LIMIT, "resident set grew by %ld KiB over three %ld MiB answers",
		      grown / 1024, (long)HUGE_BODY >> 20);
	pthread_mutex_lock(&g_log_mu);
	ck_assert_int_eq(g_log_long, 0);
	pthread_mutex_unlock(&g_log_mu);
	ck_assert_int_le(close_timed(h.log), TU_MS(2000 + 1000 + 1500));
	st = offline_status(h.dir);
	ck_assert_uint_eq(st.acked_seq, 0);
	huge_end(&h);
}
END_TEST

/* A TCP server that answers every connection with bytes that are not
 * HTTP, then closes it. */
typedef struct raw_srv {
	int fd, port;
	pthread_t th;
	int stop; /* atomic */
	int accepted;
	const char *reply;
	size_t reply_len;
} raw_srv;

static void *raw_main(void *arg)
{
	raw_srv *r = arg;
	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		struct pollfd p = {r->fd, POLLIN, 0};
		int c;
		if (poll(&p, 1, 50) <= 0)
			continue;
		c = accept(r->fd, NULL, NULL);
		if (c < 0)
			continue;
		__atomic_add_fetch(&r->accepted, 1, __ATOMIC_RELAXED);
		{
			char buf[65536];
			struct pollfd q = {c, POLLIN, 0};
			if (poll(&q, 1, 200) > 0)
				(void)!recv(c, buf, sizeof(buf), 0);
			(void)!send(c, r->reply, r->reply_len, MSG_NOSIGNAL);
		}
		close(c);
	}
	return NULL;
}

static void raw_start(raw_srv *r, const char *reply, size_t len)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int one = 1;
	memset(r, 0, sizeof(*r));
	r->reply = reply;
	r->reply_len = len;
	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(r->fd, 0);
	setsockopt(r->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(r->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(r->fd, 16), 0);
	ck_assert_int_eq(getsockname(r->fd, (struct sockaddr *)&sa, &sl), 0);
	r->port = ntohs(sa.sin_port);
	pthread_create(&r->th, NULL, raw_main, r);
}

static void raw_stop(raw_srv *r)
{
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
	pthread_join(r->th, NULL);
	close(r->fd);
}

START_TEST(test_garbage_answer_not_acked)
{
	static const char g0[] = "\x00\xff\xfe\x01 total garbage {]\r\n\r\n\x7f";
	static const char g1[] = "HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok";
	static const char g2[] = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nshort";
	const char *reply = _i == 0 ? g0 : _i == 1 ? g1 : g2;
	size_t rlen = _i == 0 ? sizeof(g0) - 1 : _i == 1 ? sizeof(g1) - 1 : sizeof(g2) - 1;
	char *dir = tu_mkdtemp("garbage");
	raw_srv r;
	char *url;
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};

	raw_start(&r, reply, rlen);
	url = url_for(r.port, "http", "127.0.0.1");
	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	append_samples(log, 1, 10);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 10000,
		 __atomic_load_n(&r.accepted, __ATOMIC_RELAXED) >= 3 && st.last_error[0] &&
			 !st.is_connected);
	ck_assert_uint_eq(st.sent, 0);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_uint_eq(st.pending, 10);
	ck_assert(strlen(st.last_error) < 255);
	ck_assert_int_le(close_timed(log), TU_MS(2000 + 1000 + 1500));
	st = offline_status(dir);
	ck_assert_uint_eq(st.acked_seq, 0);
	raw_stop(&r);
	free(url);
	free(dir);
}
END_TEST

START_TEST(test_connection_refused_then_recover)
{
	char *dir = tu_mkdtemp("refused");
	srv *s1 = srv_start(NULL), *s2;
	char *url1 = url_for(s1->port, "http", "127.0.0.1");
	char *bad = url_for(closed_port(), "http", "127.0.0.1"), *url2;
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	int saw_retry = 0;
	int64_t until, took;

	/* Run 1: delivers 100. */
	cfg_std(&c, dir, url1);
	log = tu_open_ok(&c);
	ck_assert_int_eq(edgelog_start(log), 0);
	append_samples(log, 1, 100);
	WAIT_FOR(log, st, 10000, st.sent == 100 && st.pending == 0);
	ck_assert_int_le(close_timed(log), TU_MS(3000));
	srv_stop(s1);

	/* Run 2: nobody listens. */
	cfg_std(&c, dir, bad);
	log = tu_open_ok(&c);
	ck_assert_int_eq(edgelog_start(log), 0);
	append_samples(log, 101, 100);
	until = mono_ms() + TU_MS(5000);
	for (;;) {
		st = status_of(log);
		ck_assert_uint_eq(st.sent, 100);
		ck_assert_uint_eq(st.pending, 100);
		ck_assert_int_eq(st.is_connected, 0);
		saw_retry |= st.retry_in_s > 0;
		if (saw_retry && st.last_error[0])
			break;
		ck_assert_msg(mono_ms() < until, "no retry_in_s / last_error seen: " STATUS_FMT,
			      STATUS_ARGS(st));
		sleep_ms(1);
	}
	ck_assert_msg(has_ci(st.last_error, "connect") || has_ci(st.last_error, "refused"),
		      "last_error '%s'", st.last_error);
	took = close_timed(log);
	ck_assert_msg(took <= TU_MS(2000 + 1000 + 1500), "edgelog_close took %lld ms",
		      (long long)took);
	st = offline_status(dir);
	ck_assert_uint_eq(st.pending, 100);
	ck_assert_uint_eq(st.sent, 100);

	/* Run 3: a server again, on another port. */
	s2 = srv_start(NULL);
	url2 = url_for(s2->port, "http", "127.0.0.1");
	cfg_std(&c, dir, url2);
	log = tu_open_ok(&c);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 10000, st.pending == 0);
	ck_assert_uint_eq(st.sent, 200); /* counted on from run 1 */
	ck_assert_int_eq(st.is_connected, 1);
	check_acked_range(s2, 101, 200, 0);
	ck_assert_int_le(close_timed(log), TU_MS(3000));
	srv_stop(s2);
	free(url1);
	free(url2);
	free(bad);
	free(dir);
}
END_TEST

START_TEST(test_recovered_counts_backlog_after_outage)
{
	char *dir = tu_mkdtemp("recovered");
	srv *s = srv_start(script_mode);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	size_t m;

	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	ck_assert_int_eq(edgelog_start(log), 0);
	append_samples(log, 1, 500);
	WAIT_FOR(log, st, 10000, st.sent == 500 && st.pending == 0);
	ck_assert_uint_eq(st.recovered, 0);

	srv_set(s, 0, 1); /* outage */
	m = srv_nreq(s);
	append_samples(log, 501, 1000);
	srv_wait_reqs(s, m + 4, 10000);
	st = status_of(log);
	ck_assert_int_eq(st.is_connected, 0);
	ck_assert_uint_eq(st.sent, 500);
	ck_assert_uint_eq(st.recovered, 0);

	srv_set(s, 0, 0); /* back */
	WAIT_FOR(log, st, 10000, st.pending == 0 && st.sent == 1500);
	ck_assert_int_eq(st.is_connected, 1);
	ck_assert_uint_eq(st.recovered, 1000);

	/* The outage is over: new records are not "recovered". */
	append_samples(log, 1501, 100);
	WAIT_FOR(log, st, 10000, st.pending == 0 && st.sent == 1600);
	ck_assert_uint_eq(st.recovered, 1000);
	check_acked_range(s, 1, 1600, 0);
	ck_assert_int_le(close_timed(log), TU_MS(3000));
	st = offline_status(dir);
	ck_assert_uint_eq(st.recovered, 1000); /* persisted */
	ck_assert_uint_eq(st.sent, 1600);
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

/* p[0]: the status of every answer. */
static void script_status(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs,
			  srv_reply *out)
{
	(void)idx;
	(void)rq;
	(void)recs;
	out->status = (unsigned)s->p[0];
	if (out->status >= 300 && out->status < 400)
		snprintf(out->body, sizeof(out->body), "moved");
}

/* Any 2xx acknowledges. */
START_TEST(test_every_2xx_acks)
{
	static const long codes[] = {200, 201, 202, 204, 299};
	char *dir = tu_mkdtemp("2xx");
	srv *s = srv_start(script_status);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};

	srv_set(s, 0, codes[_i]);
	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	append_samples(log, 1, 20);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 10000, st.pending == 0);
	ck_assert_uint_eq(st.sent, 20);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_int_le(close_timed(log), TU_MS(3000));
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

/* A redirect (the uploader follows none) is not the cloud refusing the
 * records: design.md makes only "any other 4xx" permanent. The records
 * must stay buffered (and the status name the redirect), not be moved to
 * failed/ wholesale. */
START_TEST(test_redirect_not_dead_lettered)
{
	static const long codes[] = {301, 307, 308};
	char *dir = tu_mkdtemp("3xx");
	srv *s = srv_start(script_status);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	char code[8];

	snprintf(code, sizeof(code), "%ld", codes[_i]);
	srv_set(s, 0, codes[_i]);
	cfg_std(&c, dir, url);
	log = tu_open_ok(&c);
	append_samples(log, 1, 20);
	ck_assert_int_eq(edgelog_start(log), 0);
	srv_wait_reqs(s, 3, 10000);
	WAIT_FOR(log, st, 10000, st.last_error[0] != 0); /* a step's outcome is in */
	sleep_ms(300);
	st = status_of(log);
	ck_assert_msg(st.failed == 0 && st.pending == 20,
		      "HTTP %ld moved records to failed/: " STATUS_FMT, codes[_i], STATUS_ARGS(st));
	ck_assert_msg(strstr(st.last_error, code) != NULL, "last_error '%s'", st.last_error);
	ck_assert_int_le(close_timed(log), TU_MS(2000 + 1000 + 1500));
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

static Suite *answers_suite(void)
{
	Suite *s = uploader_suite_create("uploader_answers");
	TCase *tc;

	tc = tcase_create("engine_http");
	uploader_engine_tcase(tc);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_server_never_answers);
	tcase_add_test(tc, test_huge_body_200_bounded_memory);
	tcase_add_test(tc, test_huge_body_500_retried_short_error);
	tcase_add_loop_test(tc, test_garbage_answer_not_acked, 0, 3);
	tcase_add_test(tc, test_connection_refused_then_recover);
	tcase_add_test(tc, test_recovered_counts_backlog_after_outage);
	tcase_add_loop_test(tc, test_every_2xx_acks, 0, 5);
	tcase_add_loop_test(tc, test_redirect_not_dead_lettered, 0, 3);
	suite_add_tcase(s, tc);

	return s;
}

TU_CHECK_MAIN(answers_suite)
