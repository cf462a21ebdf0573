/*
 * check_crash.c - kill -9 at random moments.
 *
 * A forked child opens the engine on a directory, appends sample record s
 * (tool_sample_msgpack(s)) for s = last_seq + 1, last_seq + 2, ... and,
 * after each append returns, writes the returned seq to a pipe. The parent
 * kills it with SIGKILL at a random moment (a random delay, or after a
 * random number of reports), reopens the directory (which must work) and
 * checks that every seq any child ever reported is there, byte for byte,
 * once, with seqs strictly increasing. Every trial continues in the same
 * directory, so later trials also exercise recovery from earlier crashes
 * (kills land during open, recovery, segment rolls and appends alike).
 *
 * The guarantee checked is the one of edgelog.h: a record whose append
 * returned survives the death of the process (the page cache keeps it).
 * 300 trials (200 + 50 + 50); EDGELOG_TEST_ITERATIONS (a percentage, see
 * tu_iterations) runs a share of them under qemu, where each costs ten
 * times more. EDGELOG_TEST_SEED picks the random sequence (default 1); timing makes
 * runs differ anyway, so failures print the trial and the seed.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <edgelog.h>

#include "test_main.h"
#include "test_util.h"
#include "tool_sample.h"

#define CHECK(cond, ...)                           \
	do {                                       \
		if (!(cond))                       \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

#define SAMPLE_CAP 2048
#define SEGMENT_BYTES 262144u /* about 600 sample records: frequent rolls */
#define SEG_RECORDS 600u

/* Child reports with the top bit set are errors: stage << 32 | detail. */
#define REPORT_ERR (1ull << 63)
enum {
	STAGE_OPEN = 1,
	STAGE_START,
	STAGE_STATUS,
	STAGE_APPEND,
	STAGE_SEQ,
	STAGE_ACK
};

static char *g_dir;
/* Recycling trials: the child acknowledges what is durable and runs
 * retention every RECYCLE_EVERY appends, so acknowledged segment files
 * become the next segments (FORMAT.md, "Recycled segments"); kills land
 * in every step of that too. Every record read must still be the sample
 * for its seq: one from a file's earlier life would not be. */
static int g_recycle;
#define RECYCLE_EVERY 150

static void setup_dir(void)
{
	g_dir = tu_mkdtemp("check-crash");
}

static void teardown_dir(void)
{
	if (g_dir) {
		tu_rm_rf(g_dir);
		free(g_dir);
		g_dir = NULL;
	}
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void silent_log(void *payload, int level, const char *msg)
{
	(void)payload;
	(void)level;
	(void)msg;
}

static void crash_config(edgelog_config *c, edgelog_sync_mode sync)
{
	edgelog_config_init(c);
	c->dir = g_dir;
	c->device_id = "crash-test";
	c->sync = sync;
	c->sync_interval_ms = 5;
	c->segment_bytes = SEGMENT_BYTES;
	c->log_fn = silent_log;
}

/* ------------------------------------------------------------------------
 * The child: append until killed
 */

static void child_report(int fd, uint64_t v)
{
	const uint8_t *p = (const uint8_t *)&v;
	size_t done = 0;
	while (done < sizeof(v)) {
		ssize_t n = write(fd, p + done, sizeof(v) - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(10);
		done += (size_t)n;
	}
}

static void child_fail(int fd, unsigned stage, uint64_t detail)
{
	child_report(fd, REPORT_ERR | (uint64_t)stage << 32 | (detail & 0xffffffffu));
	_exit(20 + (int)stage);
}

static void child_main(edgelog_sync_mode sync, int fd)
{
	edgelog_config c;
	edgelog *log = NULL;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	uint8_t buf[SAMPLE_CAP];
	int rc;

	crash_config(&c, sync);
	if ((rc = edgelog_open(&log, &c)) != 0)
		child_fail(fd, STAGE_OPEN, (uint64_t)-rc);
	if (sync == EDGELOG_SYNC_INTERVAL && (rc = edgelog_start(log)) != 0)
		child_fail(fd, STAGE_START, (uint64_t)-rc);
	if ((rc = edgelog_get_status(log, &st)) != 0)
		child_fail(fd, STAGE_STATUS, (uint64_t)-rc);
	for (uint64_t idx = st.last_seq + 1;; idx++) {
		uint64_t seq = 0;
		size_t n = tool_sample_msgpack(idx, buf, sizeof(buf));
		if ((rc = edgelog_append(log, buf, n, &seq)) != 0)
			child_fail(fd, STAGE_APPEND, (uint64_t)-rc);
		if (seq != idx)
			child_fail(fd, STAGE_SEQ, seq);
		child_report(fd, seq);
		if (g_recycle && idx % RECYCLE_EVERY == 0) {
			if ((rc = edgelog_get_status(log, &st)) != 0)
				child_fail(fd, STAGE_STATUS, (uint64_t)-rc);
			if (st.durable_seq && (rc = edgelog_ack(log, st.durable_seq)) != 0)
				child_fail(fd, STAGE_ACK, (uint64_t)-rc);
			if ((rc = edgelog_cleanup(log, 0)) != 0)
				child_fail(fd, STAGE_ACK, (uint64_t)-rc);
		}
	}
}

/* ------------------------------------------------------------------------
 * The parent: what children reported
 */

typedef struct range {
	uint64_t lo, hi; /* every seq in [lo, hi] was reported */
} range;

typedef struct history {
	range *v;
	size_t n, cap;
	uint64_t max_reported;
	uint64_t reports, torn_tails, empty_trials;
} history;

/* Reports of one trial, read from the pipe. */
typedef struct collector {
	uint8_t part[8];
	size_t npart;
	uint64_t first, last, count;
	uint64_t err; /* first error report, 0: none */
	int eof;
} collector;

static void collect_value(collector *c, uint64_t v)
{
	if (v & REPORT_ERR) {
		if (!c->err)
			c->err = v;
		return;
	}
	if (c->count == 0)
		c->first = v;
	else
		CHECK(v == c->last + 1, "child reported seq %" PRIu64 " after %" PRIu64, v,
		      c->last);
	c->last = v;
	c->count++;
}

/* Read what is available (waiting at most timeout_ms; -1: until data or
 * EOF). */
static void collect(collector *c, int fd, int timeout_ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	uint8_t buf[8192];

	int r = poll(&p, 1, timeout_ms);
	if (r < 0 && errno == EINTR)
		return;
	CHECK(r >= 0, "poll: %s", strerror(errno));
	if (r == 0)
		return;
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n < 0 && errno == EINTR)
		return;
	CHECK(n >= 0, "read: %s", strerror(errno));
	if (n == 0) {
		c->eof = 1;
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		c->part[c->npart++] = buf[i];
		if (c->npart == 8) {
			uint64_t v;
			memcpy(&v, c->part, 8);
			collect_value(c, v);
			c->npart = 0;
		}
	}
}

static const char *stage_name(unsigned s)
{
	switch (s) {
	case STAGE_OPEN:
		return "edgelog_open";
	case STAGE_START:
		return "edgelog_start";
	case STAGE_STATUS:
		return "edgelog_get_status";
	case STAGE_APPEND:
		return "edgelog_append";
	case STAGE_SEQ:
		return "append returned an unexpected seq";
	case STAGE_ACK:
		return "edgelog_ack or edgelog_cleanup";
	default:
		return "?";
	}
}

/* One trial: run a child, kill it, return what it reported. */
static void run_trial(edgelog_sync_mode sync, uint64_t *rng, collector *c, int trial)
{
	int p[2];
	memset(c, 0, sizeof(*c));
	CHECK(pipe(p) == 0, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* If the test dies before killing us, die too (and a closed
		 * pipe kills us with SIGPIPE anyway). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(p[0]);
		child_main(sync, p[1]);
		_exit(99);
	}
	close(p[1]);

	if (tu_rand(rng) & 1) {
		/* Kill after a random delay from the start: often inside open
		 * and recovery. */
		int64_t deadline = mono_us() + (int64_t)tu_rand_below(rng, 30001);
		for (;;) {
			int64_t left = deadline - mono_us();
			if (left <= 0 || c->eof)
				break;
			collect(c, p[0], (int)((left + 999) / 1000));
		}
	} else {
		/* Kill after a random number of reports: in mid-stream. */
		uint64_t k = tu_rand_below(rng, 3001);
		int secs = 20 * tu_time_factor(); /* longer under emulation */
		int64_t limit = mono_us() + (int64_t)secs * 1000000;
		while (c->count < k && !c->eof && !c->err) {
			CHECK(mono_us() < limit,
			      "trial %d: child reported %" PRIu64 " of %" PRIu64 " seqs in %d s",
			      trial, c->count, k, secs);
			collect(c, p[0], 100);
		}
	}
	kill(pid, SIGKILL);
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
	while (!c->eof)
		collect(c, p[0], -1);
	close(p[0]);
	if (c->err) {
		unsigned stage = (unsigned)(c->err >> 32) & 0x7fffffff;
		int64_t detail = (int64_t)(c->err & 0xffffffffu);
		ck_abort_msg("trial %d: child failed at %s: %s (detail %" PRId64 ")", trial,
			     stage_name(stage),
			     stage == STAGE_SEQ ? "" : edgelog_strerror((int)-detail), detail);
	}
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	      "trial %d: child ended on its own (status 0x%x)", trial, status);
	CHECK(c->npart == 0, "trial %d: partial report in the pipe", trial);
}

static void history_add(history *h, const collector *c, int trial)
{
	h->reports += c->count;
	if (c->count == 0) {
		h->empty_trials++;
		return;
	}
	CHECK(c->first > h->max_reported,
	      "trial %d: child reported seq %" PRIu64 " but %" PRIu64 " was reported before", trial,
	      c->first, h->max_reported);
	if (h->n == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 256;
		h->v = realloc(h->v, h->cap * sizeof(*h->v));
		ck_assert_ptr_nonnull(h->v);
	}
	h->v[h->n].lo = c->first;
	h->v[h->n].hi = c->last;
	h->n++;
	h->max_reported = c->last;
}

/* Reopen (must work), close; returns the status seen. */
static edgelog_status reopen(edgelog_sync_mode sync, int trial)
{
	edgelog_config c;
	edgelog *log = NULL;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};

	crash_config(&c, sync);
	int rc = edgelog_open(&log, &c);
	CHECK(rc == 0, "trial %d: reopen after kill: %s: %s", trial, edgelog_strerror(rc),
	      edgelog_errmsg(NULL));
	CHECK(edgelog_get_status(log, &st) == 0, "get_status");
	rc = edgelog_close(log);
	CHECK(rc == 0, "trial %d: close: %s: %s", trial, edgelog_strerror(rc),
	      edgelog_errmsg(NULL));
	return st;
}

/*
 * Read the log from from_seq: seqs strictly increasing, each record the
 * sample for its seq, and every reported seq >= from_seq present. Returns
 * the number of records read.
 */
static uint64_t verify(const history *h, uint64_t from_seq, int trial)
{
	edgelog_reader *r = NULL;
	edgelog_record rec;
	uint8_t buf[SAMPLE_CAP];
	uint64_t prev = 0, nread = 0;
	size_t ri = 0;
	int rc;

	/* First range that reaches from_seq. */
	while (ri < h->n && h->v[ri].hi < from_seq)
		ri++;
	uint64_t need = ri < h->n ? (h->v[ri].lo > from_seq ? h->v[ri].lo : from_seq) : 0;

	rc = edgelog_reader_open(&r, g_dir, from_seq);
	CHECK(rc == 0, "trial %d: reader_open: %s", trial, edgelog_errmsg(NULL));
	while ((rc = edgelog_reader_next(r, &rec)) == 0) {
		CHECK(rec.seq > prev, "trial %d: seq %" PRIu64 " after %" PRIu64, trial, rec.seq,
		      prev);
		CHECK(rec.seq >= from_seq, "trial %d: reader from %" PRIu64 " returned %" PRIu64,
		      trial, from_seq, rec.seq);
		size_t n = tool_sample_msgpack(rec.seq, buf, sizeof(buf));
		CHECK(rec.len == n && memcmp(rec.data, buf, n) == 0,
		      "trial %d: record %" PRIu64 " is not the one appended (%zu bytes, want %zu)",
		      trial, rec.seq, rec.len, n);
		/* Reported seqs must appear in order, none skipped. */
		if (need && rec.seq >= need) {
			CHECK(rec.seq == need,
			      "trial %d: reported seq %" PRIu64 " is missing (next is %" PRIu64 ")",
			      trial, need, rec.seq);
			if (need == h->v[ri].hi) {
				ri++;
				need = ri < h->n ? h->v[ri].lo : 0;
			} else {
				need++;
			}
		}
		prev = rec.seq;
		nread++;
	}
	CHECK(rc == EDGELOG_EOF, "trial %d: reader: %s: %s", trial, edgelog_strerror(rc),
	      edgelog_errmsg(NULL));
	CHECK(edgelog_reader_corrupt(r) == 0, "trial %d: reader skipped %" PRIu64 " damaged ranges",
	      trial, edgelog_reader_corrupt(r));
	edgelog_reader_close(r);
	CHECK(ri == h->n, "trial %d: reported seq %" PRIu64 " is missing (log ends at %" PRIu64 ")",
	      trial, need, prev);
	return nread;
}

/* Segment files of format version 2 (recycled) in the directory now. */
static unsigned recycled_files(void)
{
	char path[4200];
	unsigned n = 0;
	DIR *d;
	struct dirent *de;
	snprintf(path, sizeof(path), "%s/segments", g_dir);
	if (!(d = opendir(path)))
		return 0;
	while ((de = readdir(d))) {
		char p2[4500];
		uint8_t h[12];
		FILE *f;
		if (strlen(de->d_name) != 24 || strcmp(de->d_name + 20, ".seg"))
			continue;
		snprintf(p2, sizeof(p2), "%s/%s", path, de->d_name);
		if (!(f = fopen(p2, "rb")))
			continue;
		if (fread(h, 1, sizeof(h), f) == sizeof(h) && h[8] == 2 && !h[9] && !h[10] &&
		    !h[11])
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

static void crash_loop(edgelog_sync_mode sync, int trials, const char *name)
{
	history h = {0};
	collector c;
	uint64_t rng = tu_seed() * 0xd1342543de82ef95ull + (uint64_t)sync; /* not splitmix's step */
	uint64_t torn_before = 0, checked = 0, last_seq = 0, recycled = 0;
	int64_t t0 = mono_us();

	for (int t = 1; t <= trials; t++) {
		/* Everything from here on may be touched by this trial's
		 * recovery; keep a margin of two segments. */
		uint64_t from = last_seq > 2 * SEG_RECORDS ? last_seq - 2 * SEG_RECORDS : 0;
		run_trial(sync, &rng, &c, t);
		history_add(&h, &c, t);
		edgelog_status st = reopen(sync, t);
		CHECK(st.last_seq >= h.max_reported,
		      "trial %d: log ends at %" PRIu64 " but seq %" PRIu64 " was reported", t,
		      st.last_seq, h.max_reported);
		CHECK(st.corrupt == 0, "trial %d: %" PRIu64 " corrupt frames", t, st.corrupt);
		if (st.torn_tails > torn_before)
			h.torn_tails += st.torn_tails - torn_before;
		torn_before = st.torn_tails;
		last_seq = st.last_seq;
		/* A full check now and then and at the end; otherwise the part
		 * this trial could have touched. Acknowledged records may be
		 * gone (retention). */
		if (g_recycle && from <= st.acked_seq)
			from = st.acked_seq + 1;
		checked += verify(&h, (!g_recycle && (t % 50 == 0 || t == trials)) ? 0 : from, t);
		recycled += recycled_files();
	}
	if (g_recycle)
		CHECK(recycled > 0, "%s: no recycled segment was ever seen", name);
	double secs = (double)(mono_us() - t0) / 1e6;
	fprintf(stderr,
		"check_crash %s: %d trials in %.1f s: %" PRIu64
		" seqs reported, log ends at %" PRIu64 ", %" PRIu64
		" torn tails truncated, %" PRIu64 " trials killed before any report, "
		"%" PRIu64 " record checks, %" PRIu64 " recycled segments seen (seed %" PRIu64
		")\n",
		name, trials, secs, h.reports, last_seq, h.torn_tails, h.empty_trials, checked,
		recycled, tu_seed());
	free(h.v);
}

START_TEST(test_kill9_sync_interval)
{
	crash_loop(EDGELOG_SYNC_INTERVAL, tu_iterations(200), "sync=interval");
}
END_TEST

START_TEST(test_kill9_sync_interval_recycling)
{
	g_recycle = 1;
	crash_loop(EDGELOG_SYNC_INTERVAL, tu_iterations(100), "sync=interval, recycling");
}
END_TEST

START_TEST(test_kill9_sync_always)
{
	crash_loop(EDGELOG_SYNC_ALWAYS, tu_iterations(50), "sync=always");
}
END_TEST

START_TEST(test_kill9_sync_none)
{
	/* The kill -9 guarantee holds without any sync. */
	crash_loop(EDGELOG_SYNC_NONE, tu_iterations(50), "sync=none");
}
END_TEST

static Suite *crash_suite(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tcase_create("kill9");
	tcase_add_checked_fixture(tc, setup_dir, teardown_dir);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_kill9_sync_interval);
	tcase_add_test(tc, test_kill9_sync_interval_recycling);
	tcase_add_test(tc, test_kill9_sync_always);
	tcase_add_test(tc, test_kill9_sync_none);
	suite_add_tcase(s, tc);
	return s;
}

TU_CHECK_MAIN(crash_suite)
