/*
 * check_delivery.c - end to end: the engine's uploader against the real
 * reference receiver, `edgelog sink` (EDGELOG_BIN), on loopback.
 *
 *  - 100k records while the sink is stopped and restarted three times
 *    (SIGTERM and SIGKILL, same port, same out dir): every record arrives,
 *    and after the sink's dedupe exactly once.
 *  - kill -9 of the process running the engine in the middle of an upload,
 *    three times, then a process that drains: nothing lost, every seq once.
 *  - every format, gzip on and off: the sink stores the same records.
 *  - --reject-if: one poison record among 10k ends in DIR/failed/, alone.
 *  - a flaky sink (injected 503s, dropped connections, delays): exactly once.
 *
 * The sink's store (OUT/records.ndjson) is the judge: each line is checked
 * for device_id and seq, every seq must appear once, and the data of a
 * sample of lines is compared with the record that was appended.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <edgelog.h>

#include "test_json.h"
#include "test_main.h"
#include "test_util.h"
#include "tool_sample.h"

#ifndef EDGELOG_BIN
#error "EDGELOG_BIN (the edgelog program) must be defined by the build"
#endif

#define DEV "cam-delivery-7"

/* ------------------------------------------------------------------------
 * Helpers
 */

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ------------------------------------------------------------------------
 * The sink process
 */

typedef struct sink {
	pid_t pid;
	int port;
	int out_fd; /* its stdout, kept open */
	char out[4200];
	char log[4300];
	char extra[16][96];
	int nextra;
	int starts;
} sink;

/* Start `edgelog sink` on 127.0.0.1:port (0: any) with s->out and the
 * extra arguments; wait for its "listening on" line. Returns 0, or -1 if
 * it exited or said nothing within 10 s. */
static int sink_try_start(sink *s, int port)
{
	int pfd[2];
	pid_t pid;
	char listen[64], line[256];
	size_t got = 0;
	int64_t until = mono_ms() + 10000 * tu_time_factor();

	ck_assert_int_eq(pipe(pfd), 0);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	snprintf(s->log, sizeof(s->log), "%s.log", s->out);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		const char *argv[32];
		int a = 0, i, lfd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(pfd[1], 1);
		if (lfd >= 0)
			dup2(lfd, 2);
		close(pfd[0]);
		argv[a++] = EDGELOG_BIN;
		argv[a++] = "sink";
		argv[a++] = "--listen";
		argv[a++] = listen;
		argv[a++] = "--out";
		argv[a++] = s->out;
		for (i = 0; i < s->nextra; i++)
			argv[a++] = s->extra[i];
		argv[a] = NULL;
		execv(EDGELOG_BIN, (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	while (got < sizeof(line) - 1) {
		struct pollfd p = {pfd[0], POLLIN, 0};
		int64_t left = until - mono_ms();
		ssize_t r;
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		r = read(pfd[0], line + got, 1);
		if (r <= 0)
			break;
		if (line[got] == '\n')
			break;
		got++;
	}
	line[got] = 0;
	if (strncmp(line, "listening on 127.0.0.1:", 23)) {
		int st;
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		close(pfd[0]);
		return -1;
	}
	s->pid = pid;
	s->port = atoi(line + 23);
	s->out_fd = pfd[0];
	s->starts++;
	return 0;
}

/* Start, retrying for a while (a port just released can be busy). */
static void sink_start(sink *s, int port)
{
	int64_t until = mono_ms() + 15000 * tu_time_factor();
	while (sink_try_start(s, port)) {
		ck_assert_msg(mono_ms() < until, "edgelog sink did not start on port %d (see %s)",
			      port, s->log);
		sleep_ms(100);
	}
	ck_assert_int_gt(s->port, 0);
}

static void sink_init(sink *s, const char *out)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->out, sizeof(s->out), "%s", out);
	s->pid = -1;
	s->out_fd = -1;
	snprintf(s->extra[s->nextra++], sizeof(s->extra[0]), "--quiet");
}

static void sink_arg(sink *s, const char *arg)
{
	ck_assert_int_lt(s->nextra, 16);
	snprintf(s->extra[s->nextra++], sizeof(s->extra[0]), "%s", arg);
}

/* Stop it with sig; returns its wait status. */
static int sink_stop(sink *s, int sig)
{
	int st = 0;
	if (s->pid <= 0)
		return 0;
	kill(s->pid, sig);
	ck_assert_int_eq(waitpid(s->pid, &st, 0), s->pid);
	close(s->out_fd);
	s->pid = -1;
	s->out_fd = -1;
	return st;
}

static char *sink_url(const sink *s)
{
	char *u = malloc(96);
	snprintf(u, 96, "http://127.0.0.1:%d/ingest", s->port);
	return u;
}

/* What the sink stored. */
typedef struct stored {
	uint64_t lines, dups, bad, out_of_range, missing;
	uint64_t first_missing, first_dup;
	uint8_t *seen; /* per seq 1..max */
	char **data;   /* canonical JSON per seq (when asked) */
	int64_t *ts;
	uint64_t max;
	char err[256];
} stored;

static void stored_free(stored *s)
{
	uint64_t i;
	if (s->data)
		for (i = 0; i <= s->max; i++)
			free(s->data[i]);
	free(s->data);
	free(s->seen);
	free(s->ts);
	memset(s, 0, sizeof(*s));
}

/* Read OUT/records.ndjson expecting seqs 1..max of device DEV. keep: keep
 * every record's data (canonical JSON) and ts. */
static stored read_store(const char *out, uint64_t max, int keep)
{
	stored s;
	char path[4300];
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	uint64_t i;

	memset(&s, 0, sizeof(s));
	s.max = max;
	s.seen = calloc(max + 1, 1);
	ck_assert_ptr_nonnull(s.seen);
	if (keep) {
		s.data = calloc(max + 1, sizeof(char *));
		s.ts = calloc(max + 1, sizeof(int64_t));
	}
	snprintf(path, sizeof(path), "%s/records.ndjson", out);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	while ((n = getline(&line, &cap, f)) > 0) {
		json_error_t je;
		json_t *o, *dv, *sq;
		uint64_t seq;
		s.lines++;
		o = json_loadb(line, (size_t)n, 0, &je);
		dv = o ? json_object_get(o, "device_id") : NULL;
		sq = o ? json_object_get(o, "seq") : NULL;
		if (!o || !json_is_string(dv) || strcmp(json_string_value(dv), DEV) ||
		    !json_is_integer(sq) || !json_is_integer(json_object_get(o, "ts")) ||
		    !json_object_get(o, "data")) {
			if (!s.bad++)
				snprintf(s.err, sizeof(s.err), "line %llu: %.150s",
					 (unsigned long long)s.lines, line);
			json_decref(o);
			continue;
		}
		seq = (uint64_t)json_integer_value(sq);
		if (seq < 1 || seq > max) {
			s.out_of_range++;
		} else if (s.seen[seq]++) {
			if (!s.dups++)
				s.first_dup = seq;
		} else if (keep) {
			s.data[seq] = tu_canon(json_object_get(o, "data"));
			s.ts[seq] = (int64_t)json_integer_value(json_object_get(o, "ts"));
		}
		json_decref(o);
	}
	free(line);
	fclose(f);
	for (i = 1; i <= max; i++)
		if (!s.seen[i] && !s.missing++)
			s.first_missing = i;
	return s;
}

/* Every seq 1..max once (except `skip`), data right for a sample of them. */
static void check_exactly_once(const char *out, uint64_t max, uint64_t skip, int check_all_data)
{
	stored s = read_store(out, max, 1);
	uint64_t i, st = max * 7 + 1;

	ck_assert_msg(s.bad == 0, "%llu unreadable line(s) in the sink's store; %s",
		      (unsigned long long)s.bad, s.err);
	ck_assert_msg(s.out_of_range == 0, "%llu record(s) with seqs beyond %llu",
		      (unsigned long long)s.out_of_range, (unsigned long long)max);
	ck_assert_msg(s.dups == 0, "%llu duplicate(s) after dedupe (first: seq %llu)",
		      (unsigned long long)s.dups, (unsigned long long)s.first_dup);
	if (skip) {
		ck_assert_msg(!s.seen[skip], "seq %llu was stored", (unsigned long long)skip);
		s.seen[skip] = 1;
		if (s.missing && s.first_missing == skip) {
			s.missing--;
			for (i = skip + 1, s.first_missing = 0; i <= max; i++)
				if (!s.seen[i]) {
					s.first_missing = i;
					break;
				}
		}
	}
	ck_assert_msg(s.missing == 0, "%llu record(s) never delivered (first: seq %llu)",
		      (unsigned long long)s.missing, (unsigned long long)s.first_missing);
	ck_assert_uint_eq(s.lines, max - (skip ? 1 : 0));
	for (i = 0; i < (check_all_data ? max : 300); i++) {
		uint64_t seq = check_all_data ? i + 1 : 1 + tu_rand_below(&st, max);
		char *want;
		if (seq == skip)
			continue;
		want = tu_sample_canon(seq);
		ck_assert_msg(s.data[seq] && !strcmp(s.data[seq], want),
			      "seq %llu: stored data differs\n  got  %.200s\n  want %.200s",
			      (unsigned long long)seq, s.data[seq] ? s.data[seq] : "(none)", want);
		free(want);
	}
	stored_free(&s);
}

static uint64_t file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) ? 0 : (uint64_t)sb.st_size;
}

/* ------------------------------------------------------------------------
 * The engine
 */

static void log_quiet(void *payload, int level, const char *msg)
{
	(void)payload;
	(void)level;
	(void)msg;
}

static void cfg_for(edgelog_config *c, const char *dir, const char *url)
{
	edgelog_config_init(c);
	c->dir = dir;
	c->endpoint = url;
	c->device_id = DEV;
	c->retry_base_ms = 20;
	c->retry_max_ms = 500;
	c->batch_timeout_ms = 50;
	c->http_timeout_ms = 3000 * (uint32_t)tu_time_factor();
	c->close_grace_ms = 5000 * (uint32_t)tu_time_factor();
	c->log_fn = log_quiet;
}

static int append_sample(edgelog *log, uint64_t i, uint64_t *seq)
{
	uint8_t buf[SAMPLE_CAP];
	size_t l = tool_sample_msgpack(i, buf, sizeof(buf));
	return edgelog_append(log, buf, l, seq);
}

static void append_samples(edgelog *log, uint64_t first, uint64_t n)
{
	uint64_t i, seq;
	for (i = first; i < first + n; i++) {
		int rc = append_sample(log, i, &seq);
		ck_assert_msg(rc == 0, "append %llu: %s", (unsigned long long)i,
			      edgelog_errmsg(log));
		ck_assert_uint_eq(seq, i);
	}
}

static edgelog_status status_of(edgelog *log)
{
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	return st;
}

#define WAIT_PENDING_ZERO(log, st, ms)                                                            \
	do {                                                                                      \
		int64_t until_ = mono_ms() + (int64_t)(ms)*tu_time_factor();                      \
		for (;;) {                                                                        \
			(st) = status_of(log);                                                    \
			if ((st).pending == 0)                                                    \
				break;                                                            \
			ck_assert_msg(                                                            \
				mono_ms() < until_,                                               \
				"not drained in %d ms (x%d): pending %llu sent %llu failed %llu " \
				"last_error '%s'",                                                \
				(int)(ms), tu_time_factor(), (unsigned long long)(st).pending,    \
				(unsigned long long)(st).sent, (unsigned long long)(st).failed,   \
				(st).last_error);                                                 \
			sleep_ms(10);                                                             \
		}                                                                                 \
	} while (0)

/* ------------------------------------------------------------------------
 * 100k records, the sink down and back three times
 */

typedef struct appender {
	edgelog *log;
	uint64_t first, n, per_ms; /* pace: records per millisecond (divided by
				    * tu_time_factor(), like the kill schedule) */
	int rc;
	pthread_t th;
} appender;

static void *appender_main(void *arg)
{
	appender *a = arg;
	int64_t t0 = mono_ms();
	uint64_t i, seq;
	for (i = 0; i < a->n; i++) {
		if ((a->rc = append_sample(a->log, a->first + i, &seq)) != 0)
			return NULL;
		if (seq != a->first + i) {
			a->rc = -1000;
			return NULL;
		}
		if (i % 500 == 499) {
			int64_t due =
				t0 + (int64_t)((i + 1) * (uint64_t)tu_time_factor() / a->per_ms);
			int64_t now = mono_ms();
			if (due > now)
				sleep_ms((int)(due - now));
		}
	}
	return NULL;
}

START_TEST(test_100k_sink_restarted_three_times)
{
	const uint64_t N = 100000;
	char *dir = tu_mkdtemp("d100k"), *out = tu_mkdtemp("s100k");
	sink sk;
	char *url;
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	appender ap;
	uint64_t sent_at_kill[3];
	int k, port;

	sink_init(&sk, out);
	sink_start(&sk, 0);
	port = sk.port;
	url = sink_url(&sk);
	cfg_for(&c, dir, url);
	log = tu_open_ok(&c);
	ck_assert_int_eq(edgelog_start(log), 0);
	memset(&ap, 0, sizeof(ap));
	ap.log = log;
	ap.first = 1;
	ap.n = N;
	ap.per_ms = 25; /* 100k over about 4 s (x tu_time_factor()): the kills below
			 * fall while records still flow, under qemu too */
	pthread_create(&ap.th, NULL, appender_main, &ap);
	for (k = 0; k < 3; k++) {
		int sig = k == 1 ? SIGKILL : SIGTERM, ws;
		/* While records flow: the appender and the upload run
		 * tu_time_factor() times slower under qemu. */
		sleep_ms((700 + 250 * k) * tu_time_factor());
		st = status_of(log);
		sent_at_kill[k] = st.sent;
		ws = sink_stop(&sk, sig);
		if (sig == SIGTERM)
			ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
				      "sink did not exit cleanly on SIGTERM (status %d)", ws);
		sleep_ms((300 + 200 * k) * tu_time_factor()); /* down: the engine backs off */
		st = status_of(log);
		ck_assert_uint_gt(st.pending, 0);
		sink_start(&sk, port);
		ck_assert_int_eq(sk.port, port);
	}
	pthread_join(ap.th, NULL);
	ck_assert_msg(ap.rc == 0, "append failed: %d", ap.rc);
	WAIT_PENDING_ZERO(log, st, 120000);
	ck_assert_uint_eq(st.sent, N);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_int_eq(edgelog_close(log), 0);
	ck_assert_int_eq(sink_stop(&sk, SIGTERM), 0);
	/* The kills happened while records were flowing. */
	ck_assert_msg(sent_at_kill[0] > 0 && sent_at_kill[2] < N,
		      "kills outside the upload: sent %llu / %llu / %llu at the kills",
		      (unsigned long long)sent_at_kill[0], (unsigned long long)sent_at_kill[1],
		      (unsigned long long)sent_at_kill[2]);
	check_exactly_once(out, N, 0, 0);
	free(url);
	free(dir);
	free(out);
}
END_TEST

/* ------------------------------------------------------------------------
 * kill -9 of the engine's process mid-upload
 */

#define REPORT_DONE (1ull << 63)

/* In a child: open dir, append `n` records continuing the log's seqs
 * (reporting each seq on fd), start uploading, then either drain (report
 * last_seq | REPORT_DONE and exit 0) or wait to be killed. */
static void engine_child(const char *dir, const char *url, uint64_t n, int drain, int fd)
{
	edgelog_config c;
	edgelog *log = NULL;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	uint64_t i, seq, first;
	int64_t until;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	cfg_for(&c, dir, url);
	c.close_grace_ms = 30000 * (uint32_t)tu_time_factor();
	if (edgelog_open(&log, &c)) {
		fprintf(stderr, "child: open: %s\n", edgelog_errmsg(NULL));
		_exit(3);
	}
	edgelog_get_status(log, &st);
	first = st.last_seq + 1;
	for (i = 0; i < n; i++) {
		if (append_sample(log, first + i, &seq) || seq != first + i) {
			fprintf(stderr, "child: append %llu: %s\n", (unsigned long long)(first + i),
				edgelog_errmsg(log));
			_exit(3);
		}
		if (write(fd, &seq, sizeof(seq)) != sizeof(seq))
			_exit(4);
	}
	/* Then upload: the kill lands with a backlog in flight. */
	if (edgelog_start(log)) {
		fprintf(stderr, "child: start: %s\n", edgelog_errmsg(log));
		_exit(3);
	}
	if (!drain)
		for (;;)
			pause();
	until = mono_ms() + 90000 * tu_time_factor();
	do {
		sleep_ms(10);
		edgelog_get_status(log, &st);
	} while (st.pending && mono_ms() < until);
	if (st.pending) {
		fprintf(stderr, "child: %llu still pending: %s\n", (unsigned long long)st.pending,
			st.last_error);
		_exit(5);
	}
	seq = st.last_seq | REPORT_DONE;
	if (edgelog_close(log))
		_exit(6);
	if (write(fd, &seq, sizeof(seq)) != sizeof(seq))
		_exit(4);
	_exit(0);
}

/* Read every report the child wrote; returns the largest seq. */
static uint64_t drain_reports(int fd, uint64_t *done)
{
	uint64_t v, max = 0;
	ssize_t r;
	while ((r = read(fd, &v, sizeof(v))) == sizeof(v)) {
		if (v & REPORT_DONE)
			*done = v & ~REPORT_DONE;
		else if (v > max)
			max = v;
	}
	return max;
}

START_TEST(test_engine_killed_mid_upload)
{
	char *dir = tu_mkdtemp("dkill"), *out = tu_mkdtemp("skill");
	char store[4300];
	sink sk;
	char *url;
	uint64_t reported = 0, last = 0, seed = 20240611, stored_at_kill[3] = {0};
	int round;

	/* EDGELOG_TEST_SEED picks the kill points (default fixed; timing
	 * varies them anyway). */
	if (getenv("EDGELOG_TEST_SEED"))
		seed = strtoull(getenv("EDGELOG_TEST_SEED"), NULL, 0);

	snprintf(store, sizeof(store), "%s/records.ndjson", out);
	sink_init(&sk, out);
	sink_start(&sk, 0);
	url = sink_url(&sk);
	/* Round 0 appends 50k (about 27 MB on the wire), then uploads; rounds
	 * 1-2 only upload the backlog; each is killed once the sink's store
	 * has grown by a random 0.2-4.2 MB. Round 3 drains. */
	for (round = 0; round < 4; round++) {
		int pfd[2], ws;
		pid_t pid;
		uint64_t before = file_size(store), done = 0, m;
		uint64_t grow = 200000 + tu_rand_below(&seed, 4000000);
		int64_t until = mono_ms() + 20000 * tu_time_factor();

		ck_assert_int_eq(pipe(pfd), 0);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(pfd[0]);
			engine_child(dir, url, round == 0 ? 50000 : 0, round == 3, pfd[1]);
		}
		close(pfd[1]);
		/* Read the reports as they come (the child would block on a full
		 * pipe otherwise). */
		fcntl(pfd[0], F_SETFL, O_NONBLOCK);
		if (round < 3) {
			/* Kill -9 in the middle of the upload. */
			while ((round == 0 && reported < 50000) ||
			       (file_size(store) < before + grow && mono_ms() < until)) {
				ck_assert_msg(mono_ms() < until, "round %d: no progress", round);
				ck_assert_msg(waitpid(pid, &ws, WNOHANG) == 0,
					      "round %d: the engine's process died by itself "
					      "(status %d)",
					      round, ws);
				if ((m = drain_reports(pfd[0], &done)) > reported)
					reported = m;
				sleep_ms(1);
			}
			/* Off the batch boundary the threshold was seen at. */
			sleep_ms((int)tu_rand_below(&seed, 41));
			ck_assert_msg(waitpid(pid, &ws, WNOHANG) == 0,
				      "round %d: the engine's process died by itself", round);
			ck_assert_int_eq(kill(pid, SIGKILL), 0);
			ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
			ck_assert(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
			stored_at_kill[round] = file_size(store);
		} else {
			int64_t dl = mono_ms() + 120000 * tu_time_factor();
			while (waitpid(pid, &ws, WNOHANG) == 0) {
				ck_assert_msg(mono_ms() < dl, "draining child did not finish");
				if ((m = drain_reports(pfd[0], &done)) > reported)
					reported = m;
				sleep_ms(5);
			}
			ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
				      "draining child failed (status %d)", ws);
		}
		if ((m = drain_reports(pfd[0], &done)) > reported)
			reported = m;
		if (done)
			last = done;
		close(pfd[0]);
	}
	ck_assert_uint_eq(reported, 50000);
	/* Each kill landed with the upload unfinished. */
	ck_assert_msg(stored_at_kill[2] < file_size(store),
		      "the backlog was delivered before the last kill (%llu of %llu bytes)",
		      (unsigned long long)stored_at_kill[2], (unsigned long long)file_size(store));
	ck_assert_msg(last >= reported, "the log ends at %llu, yet %llu was appended",
		      (unsigned long long)last, (unsigned long long)reported);
	ck_assert_int_eq(sink_stop(&sk, SIGTERM), 0);
	check_exactly_once(out, last, 0, 0);
	free(url);
	free(dir);
	free(out);
}
END_TEST

/* ------------------------------------------------------------------------
 * Every format, gzip on and off: the same records
 */

START_TEST(test_formats_store_same_records)
{
	static const edgelog_format fm[] = {EDGELOG_FORMAT_NDJSON, EDGELOG_FORMAT_JSON,
					    EDGELOG_FORMAT_MSGPACK};
	static const char *const ctype[] = {"application/x-ndjson", "application/json",
					    "application/msgpack"};
	const uint64_t N = 2000;
	stored ref;
	int run;

	memset(&ref, 0, sizeof(ref));
	for (run = 0; run < 6; run++) {
		char *dir = tu_mkdtemp("dfmt"), *out = tu_mkdtemp("sfmt");
		sink sk;
		char *url, path[4300];
		edgelog_config c;
		edgelog *log;
		edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
		stored s;
		uint64_t i;
		int64_t t0 = real_ms();
		json_t *tally;
		json_error_t je;

		sink_init(&sk, out);
		sink_start(&sk, 0);
		url = sink_url(&sk);
		cfg_for(&c, dir, url);
		c.format = fm[run / 2];
		c.compression = run % 2 ? EDGELOG_COMPRESSION_NONE : EDGELOG_COMPRESSION_GZIP;
		log = tu_open_ok(&c);
		append_samples(log, 1, N);
		ck_assert_int_eq(edgelog_start(log), 0);
		WAIT_PENDING_ZERO(log, st, 30000);
		ck_assert_uint_eq(st.sent, N);
		ck_assert_int_eq(edgelog_close(log), 0);
		ck_assert_int_eq(sink_stop(&sk, SIGTERM), 0);

		check_exactly_once(out, N, 0, 1);
		s = read_store(out, N, 1);
		for (i = 1; i <= N; i++) {
			ck_assert_msg(s.ts[i] >= t0 - 1000 && s.ts[i] <= real_ms(),
				      "run %d seq %llu: ts %lld", run, (unsigned long long)i,
				      (long long)s.ts[i]);
			if (run)
				ck_assert_msg(!strcmp(s.data[i], ref.data[i]),
					      "run %d (format %d, gzip %d) seq %llu differs from "
					      "ndjson+gzip",
					      run, (int)fm[run / 2], !(run % 2),
					      (unsigned long long)i);
		}
		/* The sink saw the format and encoding asked for. */
		snprintf(path, sizeof(path), "%s/tally.json", out);
		tally = json_load_file(path, 0, &je);
		ck_assert_msg(tally != NULL, "%s: %s", path, je.text);
		{
			const char *body = json_dumps(tally, JSON_COMPACT);
			ck_assert_msg(strstr(body, ctype[run / 2]) != NULL,
				      "run %d: tally lacks %s: %s", run, ctype[run / 2], body);
			ck_assert_msg((strstr(body, "gzip") != NULL) == !(run % 2),
				      "run %d: tally's encoding: %s", run, body);
			free((void *)body);
		}
		json_decref(tally);
		if (!run)
			ref = s;
		else
			stored_free(&s);
		free(url);
		free(dir);
		free(out);
	}
	stored_free(&ref);
}
END_TEST

/* ------------------------------------------------------------------------
 * --reject-if: one poison record among 10k
 */

START_TEST(test_reject_if_one_poison_record)
{
	const uint64_t N = 10000, POISON = 5000;
	char *dir = tu_mkdtemp("dpoison"), *out = tu_mkdtemp("spoison");
	char failed[4300];
	sink sk;
	char *url;
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog_reader *r;
	edgelog_record rec;
	int rc, n = 0;

	sink_init(&sk, out);
	sink_arg(&sk, "--reject-if");
	sink_arg(&sk, "seq_hint=5000"); /* sample i carries seq_hint i */
	sink_start(&sk, 0);
	url = sink_url(&sk);
	cfg_for(&c, dir, url);
	log = tu_open_ok(&c);
	ck_assert_int_eq(edgelog_start(log), 0);
	append_samples(log, 1, N);
	WAIT_PENDING_ZERO(log, st, 60000);
	ck_assert_uint_eq(st.failed, 1);
	ck_assert_uint_eq(st.sent, N - 1);
	ck_assert_int_eq(edgelog_close(log), 0);
	ck_assert_int_eq(sink_stop(&sk, SIGTERM), 0);
	check_exactly_once(out, N, POISON, 0);

	snprintf(failed, sizeof(failed), "%s/failed", dir);
	rc = edgelog_reader_open(&r, failed, 0);
	ck_assert_msg(rc == 0, "%s: %s", failed, edgelog_errmsg(NULL));
	while ((rc = edgelog_reader_next(r, &rec)) == 0) {
		msgpack_unpacked u;
		size_t off = 0;
		uint32_t i;
		uint64_t seq = 0;
		int64_t status = 0;
		char reason[300] = "";
		n++;
		msgpack_unpacked_init(&u);
		ck_assert_int_eq(msgpack_unpack_next(&u, rec.data, rec.len, &off),
				 MSGPACK_UNPACK_SUCCESS);
		ck_assert_int_eq(u.data.type, MSGPACK_OBJECT_MAP);
		for (i = 0; i < u.data.via.map.size; i++) {
			const msgpack_object *k = &u.data.via.map.ptr[i].key,
					     *v = &u.data.via.map.ptr[i].val;
			if (k->type != MSGPACK_OBJECT_STR)
				continue;
			if (k->via.str.size == 3 && !memcmp(k->via.str.ptr, "seq", 3))
				seq = v->via.u64;
			else if (k->via.str.size == 6 && !memcmp(k->via.str.ptr, "status", 6))
				status = v->via.i64;
			else if (k->via.str.size == 6 && !memcmp(k->via.str.ptr, "reason", 6))
				snprintf(reason, sizeof(reason), "%.*s", (int)v->via.str.size,
					 v->via.str.ptr);
			else if (k->via.str.size == 4 && !memcmp(k->via.str.ptr, "data", 4)) {
				json_t *j = tu_mpo_json(v);
				char *got = tu_canon(j), *want = tu_sample_canon(POISON);
				ck_assert_str_eq(got, want);
				free(got);
				free(want);
				json_decref(j);
			}
		}
		ck_assert_uint_eq(seq, POISON);
		ck_assert_int_eq(status, 422);
		ck_assert_msg(strstr(reason, "422") && strstr(reason, "rejected"), "reason '%s'",
			      reason);
		msgpack_unpacked_destroy(&u);
	}
	ck_assert_int_eq(rc, EDGELOG_EOF);
	edgelog_reader_close(r);
	ck_assert_int_eq(n, 1);
	free(url);
	free(dir);
	free(out);
}
END_TEST

/* ------------------------------------------------------------------------
 * A flaky sink: injected 503s with Retry-After, dropped connections, delay
 */

START_TEST(test_flaky_sink_exactly_once)
{
	const uint64_t N = 20000;
	char *dir = tu_mkdtemp("dflaky"), *out = tu_mkdtemp("sflaky");
	sink sk;
	char *url;
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};

	sink_init(&sk, out);
	sink_arg(&sk, "--fail-status");
	sink_arg(&sk, "503");
	sink_arg(&sk, "--fail-rate");
	sink_arg(&sk, "0.3");
	sink_arg(&sk, "--drop-connection-rate");
	sink_arg(&sk, "0.1");
	sink_arg(&sk, "--delay-ms");
	sink_arg(&sk, "2");
	sink_start(&sk, 0);
	url = sink_url(&sk);
	cfg_for(&c, dir, url);
	c.upload_max_records = 500;
	log = tu_open_ok(&c);
	ck_assert_int_eq(edgelog_start(log), 0);
	append_samples(log, 1, N);
	WAIT_PENDING_ZERO(log, st, 90000);
	ck_assert_uint_eq(st.sent, N);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_int_eq(edgelog_close(log), 0);
	ck_assert_int_eq(sink_stop(&sk, SIGTERM), 0);
	check_exactly_once(out, N, 0, 0);
	free(url);
	free(dir);
	free(out);
}
END_TEST

static Suite *delivery_suite(void)
{
	Suite *s;
	TCase *tc;

	signal(SIGPIPE, SIG_IGN); /* a sink killed mid-answer must not end the runner */
	s = suite_create("delivery");
	tc = tcase_create("sink");

	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_100k_sink_restarted_three_times);
	tcase_add_test(tc, test_engine_killed_mid_upload);
	tcase_add_test(tc, test_formats_store_same_records);
	tcase_add_test(tc, test_reject_if_one_poison_record);
	tcase_add_test(tc, test_flaky_sink_exactly_once);
	suite_add_tcase(s, tc);
	return s;
}

TU_CHECK_MAIN(delivery_suite)
