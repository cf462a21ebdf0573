/*
 * check_mtls.c - mutual TLS: against a server that requires a client
 * certificate (tests/mtls_server.py, Python's ssl with CERT_REQUIRED),
 * the uploader delivers with client_cert + client_key and is refused, with
 * a clear error and nothing acknowledged, without them. Certificates are
 * made here with the openssl CLI. Loopback only, bounded.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <edgelog.h>

#include "test_main.h"
#include "test_util.h"
#include "tool_sample.h"

#ifndef MTLS_SERVER
#define MTLS_SERVER "tests/mtls_server.py"
#endif

static char *g_dir;
static char g_pki[4096];
static pid_t g_srv;
static int g_port;

static void sh(const char *fmt, const char *dir)
{
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), fmt, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir);
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

static void setup(void)
{
	int pfd[2];
	char line[256], cert[4200], key[4200], ca[4200];
	FILE *f;

	g_dir = tu_mkdtemp("mtls");
	snprintf(g_pki, sizeof(g_pki), "%s/pki", g_dir);
	ck_assert_int_eq(mkdir(g_pki, 0700), 0);
	/* A CA, a server certificate for 127.0.0.1, a client certificate. */
	sh("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem "
	   "-days 2 -subj /CN=edgelog-test-ca >/dev/null 2>&1",
	   g_pki);
	sh("cd %s && openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr "
	   "-subj /CN=127.0.0.1 >/dev/null 2>&1 && printf 'subjectAltName=IP:127.0.0.1\\n' > ext "
	   "&& openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out "
	   "srv.pem -days 2 -extfile ext >/dev/null 2>&1",
	   g_pki);
	sh("cd %s && openssl req -newkey rsa:2048 -nodes -keyout cli.key -out cli.csr "
	   "-subj /CN=device >/dev/null 2>&1 && openssl x509 -req -in cli.csr -CA ca.pem "
	   "-CAkey ca.key -CAcreateserial -out cli.pem -days 2 >/dev/null 2>&1",
	   g_pki);
	snprintf(cert, sizeof(cert), "%s/srv.pem", g_pki);
	snprintf(key, sizeof(key), "%s/srv.key", g_pki);
	snprintf(ca, sizeof(ca), "%s/ca.pem", g_pki);
	ck_assert_int_eq(pipe(pfd), 0);
	g_srv = fork();
	if (g_srv == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		execlp("python3", "python3", MTLS_SERVER, "--cert", cert, "--key", key, "--ca", ca,
		       "--seconds", "60", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	g_port = 0;
	if (f && fgets(line, sizeof(line), f)) {
		char *colon = strrchr(line, ':');
		if (colon)
			g_port = atoi(colon + 1);
	}
	ck_assert_msg(g_port > 0, "mtls_server.py did not start");
}

static void teardown(void)
{
	kill(g_srv, SIGTERM);
	waitpid(g_srv, NULL, 0);
	tu_rm_rf(g_dir);
	free(g_dir);
}

static void quiet(void *p, int level, const char *msg)
{
	(void)p;
	(void)level;
	(void)msg;
}

static edgelog *open_to_server(const char *sub, int with_cert)
{
	static char dir[4200], url[128], ca[4200], cert[4200], key[4200];
	edgelog_config c;
	uint8_t b[1024];
	uint64_t seq;
	edgelog *log;
	int i;

	snprintf(dir, sizeof(dir), "%s/%s", g_dir, sub);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/log", g_port);
	snprintf(ca, sizeof(ca), "%s/ca.pem", g_pki);
	snprintf(cert, sizeof(cert), "%s/cli.pem", g_pki);
	snprintf(key, sizeof(key), "%s/cli.key", g_pki);
	edgelog_config_init(&c);
	c.dir = dir;
	c.endpoint = url;
	c.device_id = "cam-mtls";
	c.ca_file = ca;
	if (with_cert) {
		c.client_cert = cert;
		c.client_key = key;
	}
	c.batch_timeout_ms = 50;
	c.retry_base_ms = 20;
	c.retry_max_ms = 200;
	c.http_timeout_ms = 3000;
	c.close_grace_ms = 500;
	c.log_fn = quiet;
	log = tu_open_ok(&c);
	for (i = 1; i <= 50; i++) {
		size_t n = tool_sample_msgpack((uint64_t)i, b, sizeof(b));
		ck_assert_int_eq(edgelog_append(log, b, n, &seq), 0);
	}
	ck_assert_int_eq(edgelog_start(log), 0);
	return log;
}

START_TEST(test_client_certificate_delivers)
{
	edgelog *log = open_to_server("with", 1);
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	int i;

	for (i = 0; i < 200; i++) {
		ck_assert_int_eq(edgelog_get_status(log, &st), 0);
		if (st.sent == 50)
			break;
		usleep(50000);
	}
	ck_assert_msg(st.sent == 50, "sent %llu of 50; last_error '%s'",
		      (unsigned long long)st.sent, st.last_error);
	ck_assert_int_eq(st.pending, 0);
	ck_assert_int_eq(st.is_connected, 1);
	edgelog_close(log);
}
END_TEST

START_TEST(test_no_client_certificate_refused)
{
	edgelog *log = open_to_server("without", 0);
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	int i;

	for (i = 0; i < 100; i++) {
		ck_assert_int_eq(edgelog_get_status(log, &st), 0);
		if (st.last_error[0])
			break;
		usleep(50000);
	}
	/* Give it time to (not) deliver anything. */
	usleep(500000);
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	ck_assert_uint_eq(st.sent, 0);
	ck_assert_uint_eq(st.acked_seq, 0);
	ck_assert_uint_eq(st.pending, 50);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_int_eq(st.is_connected, 0);
	/* TLS 1.3 refuses a missing certificate after the handshake, so curl
	 * may report it as an SSL error or as the peer closing the
	 * connection; either way the message names the endpoint and the
	 * transport failure. */
	ck_assert_msg(strstr(st.last_error, "https://127.0.0.1") &&
			      (strstr(st.last_error, "SSL") || strstr(st.last_error, "TLS") ||
			       strstr(st.last_error, "certificate") ||
			       strstr(st.last_error, "peer") ||
			       strstr(st.last_error, "Send failure") ||
			       strstr(st.last_error, "Recv failure")),
		      "last_error '%s' does not say the TLS handshake failed", st.last_error);
	edgelog_close(log);
}
END_TEST

static Suite *mtls_suite(void)
{
	Suite *s = suite_create("mtls");
	TCase *tc = tcase_create("mtls");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_client_certificate_delivers);
	tcase_add_test(tc, test_no_client_certificate_refused);
	suite_add_tcase(s, tc);
	return s;
}

TU_CHECK_MAIN(mtls_suite)
