/*
 * bench_upload.c - records/s delivered to the loopback reference sink, CPU
 * per record, and, in the same run, the ceiling: a plain libcurl loop that
 * posts prebuilt batches of the same records and size to the same sink.
 * Also the time to drain a 1M-record backlog and peak RSS while draining
 * 1M vs 10k records (memory must not grow with the backlog).
 *
 * Each case runs in a forked child so its CPU time and peak RSS are its
 * own. The sink is `edgelog sink` (started once per case, loopback only).
 *
 *   bench_upload [--n N] [--quick] [--json] [--only LIST] [--dir D]
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <edgelog.h>

#include "seg_json.h"
#include "tool_sample.h"
#include "upl_internal.h"

#ifndef EDGELOG_BIN
#define EDGELOG_BIN "edgelog"
#endif

typedef struct result {
	char name[32];
	unsigned long long n;
	double secs;
	double rate;
	double cpu_us_per_rec;
	double rss_mib;
	int ok;
} result;

static const char *g_dir = "./bench-tmp";
static int g_quick, g_json;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Start `edgelog sink` on 127.0.0.1:0 writing to outdir; returns its pid and
 * sets *port. */
static pid_t start_sink(const char *outdir, int *port)
{
	int pfd[2];
	pid_t pid;
	char line[256];
	FILE *f;

	if (pipe(pfd))
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execl(EDGELOG_BIN, "edgelog", "sink", "--listen", "127.0.0.1:0", "--out", outdir,
		      "--quiet", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	*port = 0;
	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strrchr(line, ':');
		if (!strncmp(line, "listening on ", 13) && colon) {
			*port = atoi(colon + 1);
			break;
		}
	}
	/* Keep the pipe open in a detached way: closing it could SIGPIPE the
	 * sink's later prints; --quiet prints nothing more. */
	if (!*port) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

static void stop_sink(pid_t pid)
{
	int i, st;

	kill(pid, SIGTERM);
	for (i = 0; i < 500; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

static void rm_rf(const char *path)
{
	char cmd[4400];
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_upload: cannot remove %s\n", path);
}

/* Fill dir with n sample records, offline (no endpoint). */
static int fill_backlog(const char *dir, unsigned long long n)
{
	edgelog_config cfg;
	edgelog *log;
	uint8_t buf[1024];
	unsigned long long i;
	uint64_t seq;

	edgelog_config_init(&cfg);
	cfg.dir = dir;
	cfg.sync = EDGELOG_SYNC_NONE;
	cfg.max_size_mb = 100000;
	if (edgelog_open(&log, &cfg))
		return -1;
	edgelog_start(log);
	for (i = 1; i <= n; i++) {
		size_t len = tool_sample_msgpack(i, buf, sizeof(buf));
		if (edgelog_append(log, buf, len, &seq))
			return -1;
	}
	return edgelog_close(log);
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static double rss_mib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss / 1024.0;
}

/* Child: drain dir's backlog to the sink; report through the pipe. */
static void drain_child(const char *dir, int port, int format, int gzip, unsigned long long n,
			int wfd)
{
	edgelog_config cfg;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog *log;
	char url[128];
	result r;
	double t0, c0;

	memset(&r, 0, sizeof(r));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/log", port);
	edgelog_config_init(&cfg);
	cfg.dir = dir;
	cfg.endpoint = url;
	cfg.device_id = "bench-cam";
	cfg.format = format;
	cfg.compression = gzip ? EDGELOG_COMPRESSION_GZIP : EDGELOG_COMPRESSION_NONE;
	cfg.max_size_mb = 100000;
	cfg.close_grace_ms = 1;
	if (edgelog_open(&log, &cfg)) {
		fprintf(stderr, "bench_upload: %s\n", edgelog_errmsg(NULL));
		_exit(1);
	}
	t0 = now_s();
	c0 = cpu_s();
	edgelog_start(log);
	for (;;) {
		edgelog_get_status(log, &st);
		if (st.pending == 0 || now_s() - t0 > 600)
			break;
		usleep(2000);
	}
	r.secs = now_s() - t0;
	r.n = st.sent;
	r.ok = st.pending == 0 && st.sent == n;
	r.cpu_us_per_rec = (cpu_s() - c0) * 1e6 / (double)(n ? n : 1);
	r.rss_mib = rss_mib();
	edgelog_close(log);
	r.rate = r.n / r.secs;
	if (write(wfd, &r, sizeof(r)) != sizeof(r))
		_exit(1);
	_exit(0);
}

/* Child: post prebuilt batches of the same records with plain libcurl. */
static void ceiling_child(int port, int format, int gzip, unsigned long long n, unsigned batch,
			  int wfd)
{
	seg_buf *bodies;
	size_t nb = (size_t)((n + batch - 1) / batch), b;
	uint8_t rec[1024];
	char url[128];
	CURL *h;
	struct curl_slist *hl = NULL;
	result r;
	double t0, c0;

	memset(&r, 0, sizeof(r));
	bodies = calloc(nb, sizeof(*bodies));
	for (b = 0; b < nb; b++) {
		seg_buf raw = {0};
		unsigned long long i, lo = (unsigned long long)b * batch + 1, hi = lo + batch;
		if (hi > n + 1)
			hi = n + 1;
		upl_body_begin(&raw, format);
		for (i = lo; i < hi; i++) {
			size_t len = tool_sample_msgpack(i, rec, sizeof(rec));
			upl_body_record(&raw, format, i == lo, "bench-ceiling", i, 1700000000000ll,
					rec, len, NULL);
		}
		upl_body_end(&raw, format);
		if (gzip) {
			upl_gzip(raw.p, raw.len, &bodies[b]);
			seg_buf_free(&raw);
		} else {
			bodies[b] = raw;
		}
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/log", port);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	h = curl_easy_init();
	{
		char ct[96];
		snprintf(ct, sizeof(ct), "Content-Type: %s", upl_content_type(format));
		hl = curl_slist_append(hl, ct);
		hl = curl_slist_append(hl, "Expect:");
		if (gzip)
			hl = curl_slist_append(hl, "Content-Encoding: gzip");
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fwrite);
	{
		FILE *devnull = fopen("/dev/null", "w");
		curl_easy_setopt(h, CURLOPT_WRITEDATA, devnull);
	}
	t0 = now_s();
	c0 = cpu_s();
	r.ok = 1;
	for (b = 0; b < nb; b++) {
		long status = 0;
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, bodies[b].p);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)bodies[b].len);
		if (curl_easy_perform(h) != CURLE_OK)
			r.ok = 0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		if (status != 200)
			r.ok = 0;
	}
	r.secs = now_s() - t0;
	r.n = n;
	r.rate = n / r.secs;
	r.cpu_us_per_rec = (cpu_s() - c0) * 1e6 / (double)n;
	r.rss_mib = rss_mib();
	if (write(wfd, &r, sizeof(r)) != sizeof(r))
		_exit(1);
	_exit(0);
}

typedef struct ucase {
	const char *name;
	int kind; /* 0 edgelog drain, 1 plain libcurl ceiling */
	int format, gzip;
	unsigned long long n;
} ucase;

static int run_case(const ucase *c, result *out)
{
	char dir[4200], sinkdir[4200];
	int port, pfd[2], st;
	pid_t sink, child;

	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", c->name);
	snprintf(dir, sizeof(dir), "%s/%s.%d", g_dir, c->name, (int)getpid());
	snprintf(sinkdir, sizeof(sinkdir), "%s/%s.sink.%d", g_dir, c->name, (int)getpid());
	mkdir(g_dir, 0700);
	if (c->kind == 0) {
		/* In a child of its own, so this process stays small for the
		 * children forked below. */
		child = fork();
		if (child == 0)
			_exit(fill_backlog(dir, c->n) ? 1 : 0);
		waitpid(child, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "bench_upload: filling %s failed\n", dir);
			return -1;
		}
	}
	sink = start_sink(sinkdir, &port);
	if (sink < 0) {
		fprintf(stderr, "bench_upload: cannot start %s sink\n", EDGELOG_BIN);
		return -1;
	}
	if (pipe(pfd))
		return -1;
	child = fork();
	if (child == 0) {
		close(pfd[0]);
		if (c->kind == 0)
			drain_child(dir, port, c->format, c->gzip, c->n, pfd[1]);
		else
			ceiling_child(port, c->format, c->gzip, c->n, 2000, pfd[1]);
	}
	close(pfd[1]);
	if (read(pfd[0], out, sizeof(*out)) != sizeof(*out))
		out->ok = 0;
	close(pfd[0]);
	waitpid(child, &st, 0);
	snprintf(out->name, sizeof(out->name), "%s", c->name);
	stop_sink(sink);
	rm_rf(dir);
	rm_rf(sinkdir);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long long n = 1000000, small = 10000;
	const char *only = NULL;
	ucase cases[16];
	result res[16];
	int nc = 0, i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			g_quick = 1;
		else if (!strcmp(argv[i], "--json"))
			g_json = 1;
		else if (!strcmp(argv[i], "--n") && i + 1 < argc)
			n = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			g_dir = argv[++i];
		else {
			fprintf(stderr,
				"usage: bench_upload [--n N] [--quick] [--json] [--only LIST] [--dir D]\n");
			return 2;
		}
	}
	if (g_quick) {
		n /= 100;
		small /= 10;
	}
	signal(SIGPIPE, SIG_IGN);
#define ADD(nm, k, f, g, cnt) cases[nc++] = (ucase){nm, k, f, g, cnt}
	ADD("ndjson-gzip", 0, EDGELOG_FORMAT_NDJSON, 1, n);
	ADD("ndjson-plain", 0, EDGELOG_FORMAT_NDJSON, 0, n);
	ADD("msgpack-gzip", 0, EDGELOG_FORMAT_MSGPACK, 1, n);
	ADD("msgpack-plain", 0, EDGELOG_FORMAT_MSGPACK, 0, n);
	ADD("ceiling-ndjson-gzip", 1, EDGELOG_FORMAT_NDJSON, 1, n);
	ADD("ceiling-msgpack-gzip", 1, EDGELOG_FORMAT_MSGPACK, 1, n);
	ADD("drain-10k", 0, EDGELOG_FORMAT_NDJSON, 1, small);
#undef ADD
	for (i = 0; i < nc; i++) {
		if (only && !strstr(only, cases[i].name)) {
			res[i].n = 0;
			res[i].ok = -1;
			continue;
		}
		fprintf(stderr, "[%d/%d] %-22s N=%llu ...", i + 1, nc, cases[i].name, cases[i].n);
		if (run_case(&cases[i], &res[i]))
			res[i].ok = 0;
		fprintf(stderr, " %.0f records/s\n", res[i].rate);
	}
	if (g_json) {
		printf("{\"edgelog\":\"%s\",\"cases\":{", edgelog_version());
		for (i = 0; i < nc; i++)
			printf("%s\"%s\":{\"n\":%llu,\"seconds\":%.3f,\"records_per_s\":%.0f,"
			       "\"cpu_us_per_record\":%.3f,\"peak_rss_mib\":%.1f,\"ok\":%s}",
			       i ? "," : "", cases[i].name, res[i].n, res[i].secs, res[i].rate,
			       res[i].cpu_us_per_rec, res[i].rss_mib,
			       res[i].ok == 1 ? "true" : "false");
		printf("}}\n");
	} else {
		printf("%-22s %9s %9s %12s %12s %9s  %s\n", "case", "records", "seconds",
		       "records/s", "cpu us/rec", "RSS MiB", "delivered");
		for (i = 0; i < nc; i++)
			if (res[i].ok >= 0)
				printf("%-22s %9llu %9.3f %12.0f %12.3f %9.1f  %s\n", cases[i].name,
				       res[i].n, res[i].secs, res[i].rate, res[i].cpu_us_per_rec,
				       res[i].rss_mib, res[i].ok ? "all" : "INCOMPLETE");
		if (res[0].ok > 0 && res[4].ok > 0)
			printf("\nndjson+gzip: %.0f records/s (target >= 150000: %s); %.2fx the plain "
			       "libcurl ceiling (target >= 0.7: %s)\n",
			       res[0].rate, res[0].rate >= 150000 ? "PASS" : "MISS",
			       res[0].rate / res[4].rate,
			       res[0].rate / res[4].rate >= 0.7 ? "PASS" : "MISS");
		if (res[2].ok > 0 && res[5].ok > 0)
			printf("msgpack+gzip: %.2fx the plain libcurl ceiling\n",
			       res[2].rate / res[5].rate);
		if (res[0].ok > 0 && res[6].ok > 0)
			printf("peak RSS draining %llu: %.1f MiB, draining %llu: %.1f MiB (target: no "
			       "higher, within 1 MiB of measurement noise: %s)\n",
			       cases[0].n, res[0].rss_mib, cases[6].n, res[6].rss_mib,
			       res[0].rss_mib <= res[6].rss_mib + 1.0 ? "PASS" : "MISS");
	}
	for (i = 0; i < nc; i++)
		if (res[i].ok == 0)
			return 1;
	return 0;
}
