/*
 * tool_demo.c - `edgelog demo`: the README's first command.
 *
 * Needs nothing but this binary. It starts the reference sink on loopback
 * (this same program, `sink --listen 127.0.0.1:0`), an inference loop that
 * appends sample predictions at a steady rate to an engine uploading to
 * it, and prints the engine's status every second. Then it kills the sink
 * (the cloud goes away: the status shows Disconnected and pending
 * growing while predictions keep being accepted), restarts it on the same
 * port (edgelog notices by itself and sends the backlog), stops the loop,
 * waits for the backlog to drain and counts what the sink stored, by
 * sequence number: every prediction exactly once, or exit 1.
 *
 * --crash runs the older demo instead: a writer process appends as fast as
 * it can and is killed with SIGKILL mid-stream; reopening shows every
 * record edgelog_append() accepted is there, byte for byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <edgelog.h>
#include <jansson.h>

#include "tool.h"
#include "tool_sample.h"

static const char DEMO_USAGE[] =
	"usage: edgelog demo [--dir DIR] [--seconds S] [--rate N] [--crash]\n"
	"\n"
	"Shows what edgelog does, with nothing but this binary and no network beyond\n"
	"loopback. It starts a reference sink (`edgelog sink`) on 127.0.0.1 and an\n"
	"inference loop logging N sample predictions a second (default 200) to DIR\n"
	"(default ./demo-data, emptied first), uploading to the sink, and prints the\n"
	"status every second. A quarter of the way through it kills the sink: edgelog\n"
	"keeps accepting predictions and buffers them on disk. It brings the sink back\n"
	"later: the backlog drains by itself. At the end it counts what the sink stored,\n"
	"by sequence number. S seconds in all (default 30) plus the final drain.\n"
	"Exit 0 only if every prediction arrived exactly once.\n"
	"\n"
	"  --crash     the durability demo instead: a writer appends for S seconds\n"
	"              (default 2) and is killed with SIGKILL; DIR is reopened and every\n"
	"              record edgelog_append() accepted is checked, byte for byte.\n";

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Remove DIR if it is (or looks like) an edgelog directory. */
static int wipe(const char *dir)
{
	char cmd[4400];
	struct stat st;

	if (stat(dir, &st) != 0)
		return 0;
	snprintf(cmd, sizeof(cmd), "%s/segments", dir);
	if (!S_ISDIR(st.st_mode) || stat(cmd, &st) != 0)
		return tool_fail("demo", TOOL_USAGE,
				 "%s exists and is not an edgelog directory; pick another --dir",
				 dir);
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
	return system(cmd) == 0 ? 0 : tool_fail("demo", TOOL_PROBLEM, "cannot remove %s", dir);
}

static void writer(const char *dir, int fd)
{
	edgelog_config cfg;
	edgelog *log;
	uint8_t buf[1024];
	uint64_t i, seq;
	int rc;

	edgelog_config_init(&cfg);
	cfg.dir = dir;
	cfg.device_id = "cam-0042";
	if ((rc = edgelog_open(&log, &cfg))) {
		fprintf(stderr, "writer: %s\n", edgelog_errmsg(NULL));
		_exit(2);
	}
	edgelog_start(log);
	for (i = 1;; i++) {
		size_t n = tool_sample_msgpack(i, buf, sizeof(buf));
		if ((rc = edgelog_append(log, buf, n, &seq))) {
			fprintf(stderr, "writer: append: %s\n", edgelog_errmsg(log));
			_exit(1);
		}
		/* Only now is the record accepted: report it. */
		if (write(fd, &seq, sizeof(seq)) != sizeof(seq))
			_exit(1);
	}
}

/* ------------------------------------------------------------------------
 * The outage demo
 */
#define DEMO_DEVICE "cam-0042"

/* The sink, a child running this same binary. */
typedef struct demo_sink {
	pid_t pid;
	int fd; /* its stdout */
	int port;
	char out[4200], log[4300];
} demo_sink;

/* Start `edgelog sink --listen 127.0.0.1:PORT --out OUT` and read the port
 * it bound from its first line. 0, or -1 (it did not come up in 5 s). */
static int sink_try_start(demo_sink *k, int port)
{
	char listen[32], line[128];
	size_t got = 0;
	double until = now_s() + 5;
	int pfd[2];
	pid_t pid;

	if (pipe(pfd) < 0)
		return -1;
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		int lfd = open(k->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		/* Never outlive the demo. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(pfd[1], 1);
		if (lfd >= 0)
			dup2(lfd, 2);
		close(pfd[0]);
		close(pfd[1]);
		execl("/proc/self/exe", "edgelog", "sink", "--listen", listen, "--out", k->out,
		      "--quiet", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	while (got < sizeof(line) - 1) {
		struct pollfd p = {pfd[0], POLLIN, 0};
		double left = until - now_s();
		if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			break;
		if (read(pfd[0], line + got, 1) != 1 || line[got] == '\n')
			break;
		got++;
	}
	line[got] = 0;
	if (strncmp(line, "listening on 127.0.0.1:", 23) || atoi(line + 23) <= 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(pfd[0]);
		return -1;
	}
	k->pid = pid;
	k->fd = pfd[0];
	k->port = atoi(line + 23);
	return 0;
}

/* Start, retrying for a while on the same port: the one just released by
 * the killed sink may take a moment to be free again. */
static int sink_start(demo_sink *k, int port)
{
	double until = now_s() + 10;

	while (sink_try_start(k, port)) {
		if (now_s() >= until)
			return tool_fail("demo", TOOL_PROBLEM,
					 "the sink did not start on 127.0.0.1:%d (see %s)", port,
					 k->log);
		usleep(100 * 1000);
	}
	return 0;
}

static void sink_stop(demo_sink *k, int sig)
{
	if (k->pid <= 0)
		return;
	kill(k->pid, sig);
	waitpid(k->pid, NULL, 0);
	close(k->fd);
	k->pid = -1;
}

/* The sink's running count of duplicates it dropped (OUT/tally.json). */
static uint64_t sink_duplicates(const demo_sink *k)
{
	char path[4300];
	json_t *j;
	uint64_t n = 0;

	snprintf(path, sizeof(path), "%s/tally.json", k->out);
	if ((j = json_load_file(path, 0, NULL))) {
		json_t *v = json_object_get(j, "duplicates");
		if (json_is_integer(v) && json_integer_value(v) > 0)
			n = (uint64_t)json_integer_value(v);
		json_decref(j);
	}
	return n;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* What the sink stored, judged against predictions 1..made. */
typedef struct demo_tally {
	uint64_t lines, once, dups, missing, unexpected;
	char first_problem[200];
} demo_tally;

static void note(demo_tally *t, const char *what, unsigned long long seq)
{
	if (!t->first_problem[0])
		snprintf(t->first_problem, sizeof(t->first_problem), "%s (seq %llu)", what, seq);
}

/* Read OUT/records.ndjson: each line {"device_id","seq","ts","data"}. A
 * record counts once when its device is ours, its seq is one we made, and
 * its data is the prediction made with that seq (data.seq_hint). */
static int tally_sink(const demo_sink *k, uint64_t made, demo_tally *t)
{
	char path[4300], *line = NULL;
	uint8_t *seen;
	size_t cap = 0;
	ssize_t n;
	uint64_t i;
	FILE *f;

	memset(t, 0, sizeof(*t));
	snprintf(path, sizeof(path), "%s/records.ndjson", k->out);
	if (!(f = fopen(path, "r")))
		return tool_fail("demo", TOOL_PROBLEM, "%s: %s", path, strerror(errno));
	if (!(seen = calloc(made + 1, 1))) {
		fclose(f);
		return tool_fail("demo", TOOL_PROBLEM, "out of memory");
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		json_t *o = json_loadb(line, (size_t)n, 0, NULL);
		json_t *dev = json_object_get(o, "device_id"), *sq = json_object_get(o, "seq");
		json_t *hint = json_object_get(json_object_get(o, "data"), "seq_hint");
		uint64_t seq = json_is_integer(sq) ? (uint64_t)json_integer_value(sq) : 0;

		t->lines++;
		if (!json_is_string(dev) || strcmp(json_string_value(dev), DEMO_DEVICE) ||
		    seq < 1 || seq > made || !json_is_integer(hint) ||
		    (uint64_t)json_integer_value(hint) != seq) {
			t->unexpected++;
			note(t, "a record that is not one of the predictions", seq);
		} else if (seen[seq]++) {
			t->dups++;
			note(t, "stored twice", seq);
		}
		json_decref(o);
	}
	free(line);
	fclose(f);
	for (i = 1; i <= made; i++) {
		if (seen[i])
			t->once++;
		else if (!t->missing++)
			note(t, "never arrived", i);
	}
	free(seen);
	return 0;
}

static void print_status(edgelog *log, double t, uint64_t made)
{
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	char why[80] = "";

	if (edgelog_get_status(log, &st))
		return;
	if (!st.is_connected && st.retry_in_s)
		snprintf(why, sizeof(why), "  buffering; next try in %llu s",
			 (unsigned long long)st.retry_in_s);
	else if (!st.is_connected)
		snprintf(why, sizeof(why), "  buffering; retrying");
	printf("  %5.1fs  predictions %6llu  pending %6llu  sent %6llu  cloud %s%s\n", t,
	       (unsigned long long)made, (unsigned long long)st.pending,
	       (unsigned long long)st.sent,
	       st.is_connected ? "\xe2\x9c\x93 Connected" : "\xe2\x9c\x97 Disconnected", why);
	fflush(stdout);
}

/* The binary's path as it can be run from here ("edgelog" if unknown). */
static void self_path(char *buf, size_t size)
{
	ssize_t k = readlink("/proc/self/exe", buf, size - 1);
	if (k <= 0)
		snprintf(buf, size, "edgelog");
	else
		buf[k] = '\0';
}

/* The engine's own words (an outage seen, the endpoint back). */
static void on_log(void *payload, int level, const char *msg)
{
	(void)payload;
	(void)level;
	printf("          edgelog: %s\n", msg);
	fflush(stdout);
}

static int demo_outage(const char *dir, double secs, unsigned long long rate)
{
	char tmpl[] = "/tmp/edgelog-demo-XXXXXX", url[64], self[4096];
	double t0, t, next_status, t_down = secs * 0.25, t_up = secs * 0.6, t_stop = secs * 0.85;
	double drain_until;
	uint8_t buf[1024];
	uint64_t made = 0, dups = 0;
	int rc, down = 0, up = 0, ok;
	demo_sink k;
	demo_tally tl;
	edgelog_config cfg;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog *log = NULL;

	memset(&k, 0, sizeof(k));
	k.pid = -1;
	if (!mkdtemp(tmpl))
		return tool_fail("demo", TOOL_PROBLEM, "mkdtemp: %s", strerror(errno));
	snprintf(k.out, sizeof(k.out), "%s/sink", tmpl);
	snprintf(k.log, sizeof(k.log), "%s/sink.log", tmpl);
	signal(SIGPIPE, SIG_IGN);

	printf("edgelog %s demo: an inference loop on a camera logs %llu predictions/s to %s\n"
	       "and edgelog uploads them to a cloud endpoint (here the reference sink).\n\n",
	       edgelog_version(), rate, dir);
	if ((rc = sink_start(&k, 0)))
		goto out;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ingest", k.port);
	printf("cloud: `edgelog sink` (pid %d) listening on %s,\n       storing what it accepts in "
	       "%s/records.ndjson\n",
	       (int)k.pid, url, k.out);

	edgelog_config_init(&cfg);
	cfg.dir = dir;
	cfg.endpoint = url;
	cfg.device_id = DEMO_DEVICE;
	cfg.batch_size = 32;
	cfg.batch_timeout_ms = 250;
	/* Retry often so recovery shows within a second or two. */
	cfg.retry_base_ms = 200;
	cfg.retry_max_ms = 1500;
	cfg.http_timeout_ms = 5000;
	cfg.log_fn = on_log;
	if ((rc = edgelog_open(&log, &cfg)) || (rc = edgelog_start(log))) {
		rc = tool_fail("demo", TOOL_PROBLEM, "%s", edgelog_errmsg(log));
		goto out;
	}
	printf("device %s logs to %s (sync=interval: on disk within 100 ms of append)\n\n",
	       DEMO_DEVICE, dir);
	fflush(stdout);

	t0 = now_s();
	next_status = 1;
	for (;;) {
		t = now_s() - t0;
		if (t >= t_stop)
			break;
		/* A steady rate: catch up with the clock every 10 ms. */
		while ((double)made < t * (double)rate) {
			size_t n = tool_sample_msgpack(made + 1, buf, sizeof(buf));
			uint64_t seq;
			if ((rc = edgelog_append(log, buf, n, &seq))) {
				rc = tool_fail("demo", TOOL_PROBLEM, "append: %s",
					       edgelog_errmsg(log));
				goto out;
			}
			made++;
		}
		if (!down && t >= t_down) {
			down = 1;
			print_status(log, t, made);
			printf("\n>>> the cloud goes away: sink (pid %d) killed with SIGKILL. Inference "
			       "goes on;\n    edgelog keeps every prediction on disk and retries with "
			       "backoff.\n\n",
			       (int)k.pid);
			fflush(stdout);
			sink_stop(&k, SIGKILL);
			dups += sink_duplicates(&k);
			next_status = t + 1;
		}
		if (!up && t >= t_up) {
			up = 1;
			print_status(log, t, made);
			if ((rc = sink_start(&k, k.port)))
				goto out;
			printf("\n>>> the cloud is back: sink (pid %d) on the same port. edgelog notices "
			       "by itself\n    and sends the backlog, oldest first.\n\n",
			       (int)k.pid);
			fflush(stdout);
			next_status = t + 1;
		}
		if (t >= next_status) {
			print_status(log, t, made);
			next_status += 1;
		}
		usleep(10 * 1000);
	}

	printf("\ninference stops after %llu predictions; waiting for the backlog to drain\n",
	       (unsigned long long)made);
	fflush(stdout);
	drain_until = now_s() + (secs > 30 ? secs : 30);
	next_status = now_s() + 1;
	for (;;) {
		if (edgelog_get_status(log, &st) == 0 && st.pending == 0)
			break;
		if (now_s() >= drain_until) {
			printf("  gave up waiting: %llu still pending\n",
			       (unsigned long long)st.pending);
			break;
		}
		if (now_s() >= next_status) {
			print_status(log, now_s() - t0, made);
			next_status += 1;
		}
		usleep(50 * 1000);
	}
	print_status(log, now_s() - t0, made);
	if (edgelog_get_status(log, &st) == 0 && st.recovered)
		printf("  %llu predictions were delivered after the outage ended (status "
		       "'recovered')\n",
		       (unsigned long long)st.recovered);
	rc = edgelog_close(log);
	log = NULL;
	if (rc) {
		rc = tool_fail("demo", TOOL_PROBLEM, "close: %s", edgelog_errmsg(NULL));
		goto out;
	}
	sink_stop(&k, SIGTERM); /* writes its final tally */
	dups += sink_duplicates(&k);

	if ((rc = tally_sink(&k, made, &tl)))
		goto out;
	printf("\nthe sink stored %llu records; by sequence number, of the %llu predictions:\n"
	       "  arrived exactly once %llu, lost %llu, stored twice %llu, not ours %llu\n"
	       "  (copies sent again after a lost answer and dropped by the sink's dedupe on\n"
	       "  (device_id, seq): %llu. At-least-once delivery + dedupe = exactly once.)\n",
	       (unsigned long long)tl.lines, (unsigned long long)made, (unsigned long long)tl.once,
	       (unsigned long long)tl.missing, (unsigned long long)tl.dups,
	       (unsigned long long)tl.unexpected, (unsigned long long)dups);
	ok = made > 0 && tl.once == made && !tl.missing && !tl.dups && !tl.unexpected;
	printf("\nTALLY: %llu predictions made, %llu arrived exactly once, %llu lost, %llu "
	       "duplicates",
	       (unsigned long long)made, (unsigned long long)tl.once,
	       (unsigned long long)tl.missing, (unsigned long long)tl.dups);
	if (tl.unexpected)
		printf(", %llu unexpected", (unsigned long long)tl.unexpected);
	printf(": %s\n", ok ? "nothing lost" : "FAILED");
	if (!ok) {
		printf("  first problem: %s; the sink's store is kept in %s\n", tl.first_problem,
		       k.out);
		rc = TOOL_PROBLEM;
		goto keep;
	}
	self_path(self, sizeof(self));
	printf("\nInspect it:\n  %s status --dir %s\n  %s dump %s | tail\n  %s demo --crash   "
	       "(kill -9 mid-append: nothing accepted is lost)\n",
	       self, dir, self, dir, self);
	rc = TOOL_OK;
out:
	edgelog_close(log);
	sink_stop(&k, SIGTERM);
	nftw(tmpl, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
keep:
	sink_stop(&k, SIGTERM);
	return rc;
}

/* The kill -9 demo (--crash). */
static int demo_crash(const char *dir, unsigned long long secs)
{
	uint64_t *acked = NULL, n_acked = 0, cap = 0, got, extra = 0, lost = 0, mismatched = 0;
	uint8_t want[1024];
	int pfd[2], rc, status;
	double t0, next_print;
	pid_t pid;
	edgelog_config cfg;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog_reader *r;
	edgelog_record rec;
	edgelog *log;

	if (pipe(pfd) < 0)
		return tool_fail("demo", TOOL_PROBLEM, "pipe: %s", strerror(errno));

	printf("edgelog %s demo: an inference loop logs predictions to %s\n", edgelog_version(),
	       dir);
	printf("  (sync=interval: each record is in the page cache when append returns, on disk "
	       "within 100 ms)\n\n");
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return tool_fail("demo", TOOL_PROBLEM, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(pfd[0]);
		writer(dir, pfd[1]);
	}
	close(pfd[1]);
	t0 = now_s();
	next_print = t0 + 0.5;
	for (;;) {
		uint64_t batch[4096];
		ssize_t k = read(pfd[0], batch, sizeof(batch));
		if (k <= 0)
			break;
		if (n_acked + (uint64_t)k / 8 > cap) {
			cap = (cap ? cap * 2 : 1 << 20) + (uint64_t)k / 8;
			acked = realloc(acked, cap * sizeof(*acked));
			if (!acked)
				return tool_fail("demo", TOOL_PROBLEM, "out of memory");
		}
		memcpy(acked + n_acked, batch, (size_t)k / 8 * 8);
		n_acked += (uint64_t)k / 8;
		if (now_s() >= next_print) {
			printf("  writer (pid %d): %llu predictions accepted, %.0f/s\n", (int)pid,
			       (unsigned long long)n_acked, n_acked / (now_s() - t0));
			fflush(stdout);
			next_print += 0.5;
		}
		if (now_s() - t0 >= (double)secs && pid > 0) {
			printf("\n  kill -9 %d: the process dies mid-append, with no chance to "
			       "clean up\n",
			       (int)pid);
			fflush(stdout);
			kill(pid, SIGKILL);
			pid = -pid;
		}
	}
	close(pfd[0]);
	waitpid(pid < 0 ? -pid : pid, &status, 0);
	printf("  the writer had been told %llu predictions were stored (last seq %llu)\n\n",
	       (unsigned long long)n_acked, (unsigned long long)(n_acked ? acked[n_acked - 1] : 0));

	/* Reopen: recovery truncates a torn tail, if the kill left one. */
	edgelog_config_init(&cfg);
	cfg.dir = dir;
	cfg.device_id = "cam-0042";
	t0 = now_s();
	if ((rc = edgelog_open(&log, &cfg)))
		return tool_fail("demo", TOOL_PROBLEM, "reopen: %s", edgelog_errmsg(NULL));
	edgelog_get_status(log, &st);
	printf("reopened %s in %.1f ms: %llu records in %llu segments, torn tail truncated: %llu "
	       "bytes\n",
	       dir, (now_s() - t0) * 1000, (unsigned long long)st.last_seq,
	       (unsigned long long)st.segments, (unsigned long long)st.torn_bytes);

	/* Check every accepted record, byte for byte. */
	if ((rc = edgelog_reader_open(&r, dir, 0)))
		return tool_fail("demo", TOOL_PROBLEM, "%s", edgelog_errmsg(NULL));
	got = 0;
	{
		uint64_t k = 0;
		while ((rc = edgelog_reader_next(r, &rec)) == 0) {
			size_t n = tool_sample_msgpack(rec.seq, want, sizeof(want));
			if (n != rec.len || memcmp(want, rec.data, n))
				mismatched++;
			while (k < n_acked && acked[k] < rec.seq)
				k++, lost++;
			if (k < n_acked && acked[k] == rec.seq)
				k++;
			else
				extra++;
			got++;
		}
		lost += n_acked - k;
	}
	printf("read back %llu records: %llu of the %llu accepted ones present and identical, "
	       "%llu lost, %llu altered, %llu damaged\n",
	       (unsigned long long)got, (unsigned long long)(n_acked - lost),
	       (unsigned long long)n_acked, (unsigned long long)lost,
	       (unsigned long long)mismatched, (unsigned long long)edgelog_reader_corrupt(r));
	if (extra)
		printf("  (%llu more were stored in the instant between append returning and the "
		       "writer reporting it)\n",
		       (unsigned long long)extra);
	edgelog_reader_close(r);

	/* The log carries on where it stopped. */
	{
		uint64_t seq = 0, j;
		for (j = 0; j < 1000; j++) {
			size_t n = tool_sample_msgpack(st.last_seq + 1 + j, want, sizeof(want));
			if ((rc = edgelog_append(log, want, n, &seq)))
				return tool_fail("demo", TOOL_PROBLEM, "append: %s",
						 edgelog_errmsg(log));
		}
		printf("appended 1000 more after recovery: seq %llu..%llu\n",
		       (unsigned long long)(st.last_seq + 1), (unsigned long long)seq);
	}
	rc = edgelog_close(log);
	free(acked);
	if (rc)
		return tool_fail("demo", TOOL_PROBLEM, "close: %s", edgelog_errmsg(NULL));
	if (lost || mismatched) {
		printf("\nRESULT: %llu accepted records lost or altered\n",
		       (unsigned long long)(lost + mismatched));
		return TOOL_PROBLEM;
	}
	{
		char self[4096];
		self_path(self, sizeof(self));
		printf("\nRESULT: nothing lost. Inspect it:\n  %s dump %s | tail\n  %s dump --verify "
		       "%s\n",
		       self, dir, self, dir);
	}
	return TOOL_OK;
}

int tool_demo(int argc, char **argv)
{
	const char *dir = "./demo-data";
	unsigned long long secs = 0, rate = 200;
	int i, rc, crash = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			dir = argv[++i];
		} else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			if (tool_parse_u64("demo", "--seconds", argv[++i], &secs))
				return TOOL_USAGE;
			if (secs < 1 || secs > 3600)
				return tool_fail("demo", TOOL_USAGE,
						 "--seconds: %llu is outside 1..3600", secs);
		} else if (!strcmp(argv[i], "--rate") && i + 1 < argc) {
			if (tool_parse_u64("demo", "--rate", argv[++i], &rate))
				return TOOL_USAGE;
			if (rate < 1 || rate > 100000)
				return tool_fail("demo", TOOL_USAGE,
						 "--rate: %llu is outside 1..100000", rate);
		} else if (!strcmp(argv[i], "--crash")) {
			crash = 1;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(DEMO_USAGE, stdout);
			return TOOL_OK;
		} else {
			fputs(DEMO_USAGE, stderr);
			return tool_fail("demo", TOOL_USAGE, "unexpected argument '%s'", argv[i]);
		}
	}
	if ((rc = wipe(dir)))
		return rc;
	if (crash)
		return demo_crash(dir, secs ? secs : 2);
	return demo_outage(dir, secs ? (double)secs : 30, rate);
}
