/*
 * check_uploader_auth.c - credentials and TLS: the bearer token (from
 * the config, a file or the environment) is sent and never printed, logged
 * or stored, whatever fails; over TLS the right CA delivers and a wrong
 * one fails with a clear message (certificates made by the openssl CLI).
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <edgelog.h>

#include "test_main.h"
#include "test_uploader.h"
#include "test_util.h"

START_TEST(test_token_never_printed_on_failures)
{
	const char *token = "Zq9-very-secret-bearer-token-77Xy";
	char *dir = tu_mkdtemp("token"), *dir2 = tu_mkdtemp("token-refused");
	srv *s = srv_start(script_mode);
	char *url = url_for(s->port, "http", "127.0.0.1");
	char *bad = url_for(closed_port(), "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	dead_rec dead[64];
	size_t nd, i;

	snprintf(g_secret, sizeof(g_secret), "%s", token);
	srv_set(s, 0, 1); /* 503 */
	cfg_std(&c, dir, url);
	c.auth_token = token;
	log = tu_open_ok(&c);
	append_samples(log, 1, 20);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 10000,
		 srv_nreq(s) >= 3 && !st.is_connected && strstr(st.last_error, "503"));
	check_no_secret(log, NULL, token);

	/* 401: the credentials, not the records: nothing is dead-lettered,
   * the records stay buffered and retried (an expired token must not
   * empty the backlog into failed/). */
	srv_set(s, 0, 2);
	WAIT_FOR(log, st, 10000,
		 srv_nreq(s) >= 6 && !st.is_connected && strstr(st.last_error, "401"));
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_uint_eq(st.sent, 0);
	ck_assert_uint_eq(st.pending, 20);
	check_no_secret(log, NULL, token);
	check_request_headers(s, EDGELOG_FORMAT_NDJSON, 1, token);
	/* A new token is deployed: delivery resumes by itself. */
	srv_set(s, 0, 0);
	WAIT_FOR(log, st, 10000, st.sent == 20 && st.pending == 0);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_int_le(close_timed(log), TU_MS(3000));
	nd = read_dead(dir, dead, 64);
	ck_assert_uint_eq(nd, 0);
	(void)i;
	ck_assert_msg(!tree_contains(dir, token), "token stored under %s", dir);

	/* Transport failure: connection refused. */
	cfg_std(&c, dir2, bad);
	c.auth_token = token;
	log = tu_open_ok(&c);
	append_samples(log, 1, 5);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 5000, st.last_error[0] && !st.is_connected);
	check_no_secret(log, NULL, token);
	ck_assert_int_le(close_timed(log), TU_MS(2000 + 1000 + 1500));
	ck_assert_msg(!strstr(edgelog_errmsg(NULL), token), "token in errmsg(NULL)");
	pthread_mutex_lock(&g_log_mu);
	ck_assert_int_eq(g_secret_leaks, 0);
	pthread_mutex_unlock(&g_log_mu);
	ck_assert(!tree_contains(dir2, token));
	srv_stop(s);
	free(url);
	free(bad);
	free(dir);
	free(dir2);
}
END_TEST

START_TEST(test_token_from_file_and_env)
{
	char *dir = tu_mkdtemp("tokfile"), *dir2 = tu_mkdtemp("tokenv");
	const char *tf = tu_path(dir, "token.txt");
	char tfile[4300];
	srv *s = srv_start(NULL);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};

	snprintf(tfile, sizeof(tfile), "%s", tf);
	tu_write_file(tfile, "  file-tok-9f8e7d  \nsecond line ignored\n", 40);
	snprintf(g_secret, sizeof(g_secret), "file-tok-9f8e7d");
	cfg_std(&c, dir, url);
	c.auth_token_file = tfile;
	log = tu_open_ok(&c);
	append_samples(log, 1, 10);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 10000, st.sent == 10);
	check_request_headers(s, EDGELOG_FORMAT_NDJSON, 1, "file-tok-9f8e7d");
	check_no_secret(log, NULL, "file-tok-9f8e7d");
	ck_assert_int_le(close_timed(log), TU_MS(3000));
	srv_stop(s);

	/* EDGELOG_AUTH_TOKEN from the environment. */
	s = srv_start(NULL);
	free(url);
	url = url_for(s->port, "http", "127.0.0.1");
	setenv("EDGELOG_AUTH_TOKEN", "env-tok-31337", 1);
	snprintf(g_secret, sizeof(g_secret), "env-tok-31337");
	cfg_std(&c, dir2, url);
	ck_assert_int_eq(edgelog_config_from_env(&c), 0);
	c.endpoint = url;
	log = tu_open_ok(&c);
	append_samples(log, 1, 10);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 10000, st.sent == 10);
	check_request_headers(s, EDGELOG_FORMAT_NDJSON, 1, "env-tok-31337");
	check_no_secret(log, dir2, "env-tok-31337");
	ck_assert_int_le(close_timed(log), TU_MS(3000));
	unsetenv("EDGELOG_AUTH_TOKEN");
	srv_stop(s);
	free(url);
	free(dir);
	free(dir2);
}
END_TEST

/* ------------------------------------------------------------------------
 * TLS: a CA and a server certificate made by the test (openssl CLI).
 */

static char *g_tls_dir;

static char *read_text(const char *path)
{
	tu_buf b = tu_read_file(path);
	char *s = malloc(b.len + 1);
	ck_assert_ptr_nonnull(s);
	memcpy(s, b.data, b.len);
	s[b.len] = 0;
	tu_buf_free(&b);
	return s;
}

static void make_certs(const char *dir)
{
	char cmd[8192];
	int rc;
	snprintf(cmd, sizeof(cmd),
		 "(cd '%s' && "
		 "printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n"
		 "extendedKeyUsage=serverAuth\\n' > ext.cnf && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
		 "-nodes "
		 "-keyout ca.key -out ca.pem -days 2 -subj /CN=edgelog-test-ca && "
		 "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
		 "-nodes "
		 "-keyout srv.key -out srv.csr -subj /CN=edgelog-test-server && "
		 "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
		 "-out srv.pem -days 2 -extfile ext.cnf && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
		 "-nodes "
		 "-keyout other.key -out other.pem -days 2 -subj /CN=edgelog-other-ca"
		 ") > '%s/openssl.log' 2>&1",
		 dir, dir);
	rc = system(cmd);
	ck_assert_msg(rc == 0, "openssl failed (is it installed?): see %s/openssl.log", dir);
}

static void setup_tls(void)
{
	setup_engine();
	g_tls_dir = tu_mkdtemp("tls");
	make_certs(g_tls_dir);
}

START_TEST(test_tls_right_ca_delivers)
{
	char *dir = tu_mkdtemp("tls-ok");
	char *key = read_text(tu_path(g_tls_dir, "srv.key"));
	char *cert = read_text(tu_path(g_tls_dir, "srv.pem"));
	char ca[4300];
	srv *s = srv_start_on(0, NULL, key, cert);
	char *url = url_for(s->port, "https", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	char e[256];

	snprintf(ca, sizeof(ca), "%s", tu_path(g_tls_dir, "ca.pem"));
	srv_keep_data(s);
	cfg_std(&c, dir, url);
	c.ca_file = ca;
	log = tu_open_ok(&c);
	append_samples(log, 1, 100);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 10000, st.sent == 100 && st.pending == 0);
	ck_assert_int_eq(st.is_connected, 1);
	ck_assert_msg(srv_decode_errors(s, e, sizeof(e)) == 0, "%s", e);
	check_acked_range(s, 1, 100, 0);
	check_request_headers(s, EDGELOG_FORMAT_NDJSON, 1, NULL);
	ck_assert_int_le(close_timed(log), TU_MS(3000));
	srv_stop(s);
	free(url);
	free(key);
	free(cert);
	free(dir);
}
END_TEST

/* _i 0: a CA that did not sign the server's certificate; 1: the right CA
 * but a host name the certificate does not carry. */
START_TEST(test_tls_verification_fails_clearly)
{
	char *dir = tu_mkdtemp("tls-bad");
	char *key = read_text(tu_path(g_tls_dir, "srv.key"));
	char *cert = read_text(tu_path(g_tls_dir, "srv.pem"));
	char ca[4300];
	srv *s = srv_start_on(0, NULL, key, cert);
	char *url = url_for(s->port, "https", _i == 0 ? "127.0.0.1" : "localhost");
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};

	snprintf(ca, sizeof(ca), "%s", tu_path(g_tls_dir, _i == 0 ? "other.pem" : "ca.pem"));
	cfg_std(&c, dir, url);
	c.ca_file = ca;
	log = tu_open_ok(&c);
	append_samples(log, 1, 20);
	ck_assert_int_eq(edgelog_start(log), 0);
	WAIT_FOR(log, st, 8000, st.last_error[0] && !st.is_connected);
	sleep_ms(300); /* a few retries */
	st = status_of(log);
	ck_assert_msg(has_ci(st.last_error, "certificate") || has_ci(st.last_error, "SSL") ||
			      has_ci(st.last_error, "TLS"),
		      "last_error does not name the TLS problem: '%s'", st.last_error);
	ck_assert_uint_eq(st.sent, 0);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_uint_eq(st.pending, 20);
	ck_assert_int_le(close_timed(log), TU_MS(2000 + 1000 + 1500));
	ck_assert_uint_eq(srv_nreq(s), 0); /* no request got through */
	st = offline_status(dir);
	ck_assert_uint_eq(st.acked_seq, 0);
	ck_assert_uint_eq(st.sent, 0);
	srv_stop(s);
	free(url);
	free(key);
	free(cert);
	free(dir);
}
END_TEST

static Suite *auth_suite(void)
{
	Suite *s = uploader_suite_create("uploader_auth");
	TCase *tc;

	tc = tcase_create("engine_http");
	uploader_engine_tcase(tc);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_token_never_printed_on_failures);
	tcase_add_test(tc, test_token_from_file_and_env);
	suite_add_tcase(s, tc);

	tc = tcase_create("tls");
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	tcase_add_checked_fixture(tc, setup_tls, teardown_engine);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_tls_right_ca_delivers);
	tcase_add_loop_test(tc, test_tls_verification_fails_clearly, 0, 2);
	suite_add_tcase(s, tc);

	return s;
}

TU_CHECK_MAIN(auth_suite)
