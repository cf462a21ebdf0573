/*
 * bench_append.c - append throughput, latency, disk use and memory of edgelog,
 * measured in the same run against the design it replaces (a SQLite table in
 * WAL mode, one transaction per insert).
 *
 * Every case runs in a forked child so that its peak RSS is its own and a
 * crash in the engine is reported instead of ending the run. The child
 * writes one fixed-size `struct result` back through a pipe. Records come
 * from a pool generated once in the parent, shaped like
 * ../shared/data/prediction.json, with request id, timestamps, scores, box
 * and frame number varying per record (msgpack for edgelog, compact JSON
 * for SQLite). Latency is clock_gettime(CLOCK_MONOTONIC) around each call,
 * stored in an array that is allocated and touched before timing starts, so
 * no page fault of the benchmark lands inside a measurement.
 *
 * See README.md beside this file for the cases, options and JSON keys.
 */
#include <edgelog.h>
#include <msgpack.h>
#include <sqlite3.h>

#include "bench_common.h"
#include "tool_sample.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_JSON_VERSION 1
#define OPEN_RUNS_MAX 32

/* ------------------------------------------------------------------------
 * Options
 * ---------------------------------------------------------------------- */
static struct {
	int quick, json, open, worker, verify, keep, floor;
	const char *only;
	const char *dir;
	uint64_t n, always_n, sqlite_n, sqlite_full_n;
	int threads;
	uint32_t interval_ms;
	uint64_t rate; /* records/s per thread (--rate); 0: full speed */
	unsigned pool;
	uint64_t seed;
	uint64_t open_mb;
	int open_runs;
	int timeout_s;
} opt = {
	.worker = 1,
	.verify = 1,
	.floor = 1,
	.dir = "./bench-tmp",
	.n = 1000000,
	.always_n = 20000,
	.sqlite_n = 100000,
	.sqlite_full_n = 20000,
	.threads = 4,
	.interval_ms = 100,
	.pool = 4096,
	.seed = 42,
	.open_mb = 1024,
	.open_runs = 5,
	.timeout_s = 900,
};

/* ------------------------------------------------------------------------
 * Cases
 * ---------------------------------------------------------------------- */
enum kind {
	K_EDGELOG,
	K_SQLITE,
	K_OPEN
};

enum case_id {
	C_NONE_1,
	C_NONE_M,
	C_INTERVAL_1,
	C_INTERVAL_M,
	C_ALWAYS_1,
	C_ALWAYS_M,
	C_ALWAYS_16,
	C_SQL_NORMAL_1,
	C_SQL_FULL_1,
	C_SQL_FULL_M,
	C_OPEN,
	C_COUNT
};

struct case_def {
	enum kind kind;
	const char *base;     /* name without the thread suffix */
	int mode;             /* edgelog_sync_mode, or 1 NORMAL / 2 FULL for SQLite */
	int multi;            /* 1: uses opt.threads threads; > 1: that many */
	const char *sync_str; /* printed */
};

static const struct case_def cases[C_COUNT] = {
	[C_NONE_1] = {K_EDGELOG, "none", EDGELOG_SYNC_NONE, 0, "none"},
	[C_NONE_M] = {K_EDGELOG, "none", EDGELOG_SYNC_NONE, 1, "none"},
	[C_INTERVAL_1] = {K_EDGELOG, "interval", EDGELOG_SYNC_INTERVAL, 0, "interval"},
	[C_INTERVAL_M] = {K_EDGELOG, "interval", EDGELOG_SYNC_INTERVAL, 1, "interval"},
	[C_ALWAYS_1] = {K_EDGELOG, "always", EDGELOG_SYNC_ALWAYS, 0, "always"},
	[C_ALWAYS_M] = {K_EDGELOG, "always", EDGELOG_SYNC_ALWAYS, 1, "always"},
	[C_ALWAYS_16] = {K_EDGELOG, "always", EDGELOG_SYNC_ALWAYS, 16, "always"},
	[C_SQL_NORMAL_1] = {K_SQLITE, "sqlite-normal", 1, 0, "NORMAL"},
	[C_SQL_FULL_1] = {K_SQLITE, "sqlite-full", 2, 0, "FULL"},
	[C_SQL_FULL_M] = {K_SQLITE, "sqlite-full", 2, 1, "FULL"},
	[C_OPEN] = {K_OPEN, "open1g", EDGELOG_SYNC_NONE, 0, "none"},
};

static char case_names[C_COUNT][48];

static int case_threads(int c)
{
	return cases[c].multi > 1 ? cases[c].multi : cases[c].multi ? opt.threads : 1;
}

static uint64_t case_n(int c)
{
	switch (c) {
	case C_ALWAYS_1:
	case C_ALWAYS_M:
	case C_ALWAYS_16:
		return opt.always_n;
	case C_SQL_NORMAL_1:
		return opt.sqlite_n;
	case C_SQL_FULL_1:
	case C_SQL_FULL_M:
		return opt.sqlite_full_n;
	default:
		return opt.n;
	}
}

/* What a child reports. Fixed size, no pointers: it crosses a pipe. */
struct result {
	int ran;       /* the case was selected and a child was started */
	int ok;        /* every API call succeeded */
	int verify_ok; /* read-back found every record once, byte for byte */
	char err[512];

	uint64_t n;
	int threads;
	double wall_s, rate;
	uint64_t lat_min, lat_p50, lat_p90, lat_p99, lat_p999, lat_p9999, lat_max; /* ns */
	double lat_mean;                                                           /* ns */
	uint64_t over_10us, over_100us, over_1ms;
	/* fdatasync calls the engine made during the append phase, and their
	 * summed time (counted by __wrap_fdatasync; 0 calls if the library
	 * was linked shared and could not be wrapped) */
	uint64_t fds_calls;
	double fds_ns;
	/* The wake control of a multi-threaded sync=always case (wake_control):
	 * rounds, their mean stand-in sleep (ns) and the wall time (ns). */
	uint64_t wc_rounds;
	double wc_sleep_ns, wc_wall_ns;
	/* page faults the appending threads took in the append phase (the
	 * benchmark's own arrays are touched before, so these are the
	 * engine's: stores into pages writeback left write-protected, fresh
	 * pages of a new segment) */
	uint64_t append_faults;
	/* The machine's jitter floor, same run: each appending thread times a
	 * pure-CPU spin as long as its median append, as many times as it
	 * appends. With --rate each spin follows its append in the same paced
	 * iteration (interleaved: the same moments, worker and load); at full
	 * speed the spins run after the appends, same loop, so that they do
	 * not change appends/s. What the floor shows (preemption by other
	 * processes, interrupts, timer ticks) is the scheduler's, not
	 * edgelog's. */
	int floor_ran, fl_interleaved;
	uint64_t fl_spin_ns; /* spin length aimed at (median append) */
	uint64_t fl_p50, fl_p999, fl_p9999, fl_max, fl_over_100us, fl_over_1ms;
	uint64_t fl_faults; /* page faults in the floor loop (expected 0) */

	uint64_t disk_bytes, apparent_bytes, files; /* after close */
	uint64_t live_disk_bytes, live_files;       /* before close */
	long rss_base_kb, rss_peak_kb;
	double open_ms, close_ms;

	/* edgelog status after the append phase */
	uint64_t st_appended, st_last_seq, st_durable_seq, st_segments, st_size_bytes;

	/* verification */
	int verified;
	uint64_t v_found, v_missing, v_dup, v_mismatch, v_unknown, v_order, v_corrupt;
	uint64_t v_bad_seq; /* seq returned by append out of range or twice */
	uint64_t sql_busy_retries;

	/* open1g */
	uint64_t o_records, o_disk_bytes, o_apparent_bytes, o_files, o_files_after;
	int o_runs;
	double o_warm_ms[OPEN_RUNS_MAX], o_cold_ms[OPEN_RUNS_MAX];
	double o_warm_oc_ms[OPEN_RUNS_MAX], o_cold_oc_ms[OPEN_RUNS_MAX];
	long o_hwm_kb;
};

static struct result results[C_COUNT];

/* ------------------------------------------------------------------------
 * fdatasync, counted: the bench links edgelog statically with
 * -Wl,--wrap=fdatasync, so the engine's calls (and only those: SQLite's go
 * through its own shared library) come here.
 * ---------------------------------------------------------------------- */
int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);
static atomic_uint_fast64_t fds_calls, fds_ns;

int __wrap_fdatasync(int fd)
{
	struct timespec a, b;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &a);
	r = __real_fdatasync(fd);
	clock_gettime(CLOCK_MONOTONIC, &b);
	atomic_fetch_add(&fds_calls, 1);
	atomic_fetch_add(&fds_ns, (uint_fast64_t)((b.tv_sec - a.tv_sec) * 1000000000LL +
						  (b.tv_nsec - a.tv_nsec)));
	return r;
}

/* ------------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------- */
static void seterr(struct result *r, const char *fmt, ...)
{
	va_list ap;
	if (!r->ok && r->err[0])
		return; /* keep the first error */
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	r->ok = 0;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "bench_append: out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

static long maxrss_kb(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return -1;
	return ru.ru_maxrss;
}

/* Disk use of every regular file under a directory. */
static uint64_t du_alloc, du_apparent, du_files;

static int du_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F && S_ISREG(st->st_mode)) {
		du_alloc += (uint64_t)st->st_blocks * 512u;
		du_apparent += (uint64_t)st->st_size;
		du_files++;
	}
	return 0;
}

static void du(const char *dir, uint64_t *alloc, uint64_t *apparent, uint64_t *files)
{
	du_alloc = du_apparent = du_files = 0;
	nftw(dir, du_cb, 32, FTW_PHYS);
	if (alloc)
		*alloc = du_alloc;
	if (apparent)
		*apparent = du_apparent;
	if (files)
		*files = du_files;
}

static void rm_rf(const char *dir)
{
	if (!opt.keep)
		bench_rm_rf(dir);
}

/* Drop a directory's file data from the page cache (clean pages only, so
 * flush first). Inodes and dentries stay cached: that needs root. */
static int evict_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)ftw;
	if (flag == FTW_F && S_ISREG(st->st_mode)) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			fdatasync(fd);
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			close(fd);
		}
	}
	return 0;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void latency_stats(struct result *r, uint64_t *lat, uint64_t n)
{
	struct bench_lat l;
	if (n == 0)
		return;
	l = bench_lat_of(lat, n);
	r->over_10us += l.over_10us;
	r->over_100us += l.over_100us;
	r->over_1ms += l.over_1ms;
	r->lat_mean = l.mean;
	r->lat_min = l.min;
	r->lat_p50 = l.p50;
	r->lat_p90 = l.p90;
	r->lat_p99 = l.p99;
	r->lat_p999 = l.p999;
	r->lat_p9999 = l.p9999;
	r->lat_max = l.max;
}

/* ------------------------------------------------------------------------
 * Record pool
 * ---------------------------------------------------------------------- */
static struct {
	unsigned n;
	unsigned char *mp; /* msgpack records, back to back */
	size_t *mp_off;
	uint32_t *mp_len;
	char *js; /* compact JSON records, back to back (NUL-terminated) */
	size_t *js_off;
	uint32_t *js_len;
	double mp_avg, js_avg;
	uint32_t mp_min, mp_max, js_min, js_max;
} pool;

/* The pool: tool_sample's records in bench shape (TOOL_SAMPLE_FIXED: the
 * same top-5 labels every time, numbers rounded as the JSON prints them, so
 * both forms hold the same values), from the run's seed. */
static void pool_build(unsigned n)
{
	size_t mp_cap = (size_t)n * 512, js_cap = (size_t)n * 600;
	size_t mp_used = 0, js_used = 0;
	uint64_t mp_sum = 0, js_sum = 0;

	pool.n = n;
	pool.mp = xmalloc(mp_cap);
	pool.mp_off = xmalloc(n * sizeof(size_t));
	pool.mp_len = xmalloc(n * sizeof(uint32_t));
	pool.js = xmalloc(js_cap);
	pool.js_off = xmalloc(n * sizeof(size_t));
	pool.js_len = xmalloc(n * sizeof(uint32_t));
	pool.mp_min = pool.js_min = UINT32_MAX;

	for (unsigned i = 0; i < n; i++) {
		size_t ml = tool_sample_msgpack_ex(opt.seed, i, TOOL_SAMPLE_FIXED,
						   pool.mp + mp_used, mp_cap - mp_used);
		size_t jl = tool_sample_json_ex(opt.seed, i, TOOL_SAMPLE_FIXED, pool.js + js_used,
						js_cap - js_used);
		msgpack_unpacked u;
		msgpack_unpack_return ur = MSGPACK_UNPACK_PARSE_ERROR;
		size_t one = 0;

		/* Self-check (msgpack-c): exactly one complete msgpack object. */
		if (ml) {
			msgpack_unpacked_init(&u);
			ur = msgpack_unpack_next(&u, (const char *)pool.mp + mp_used, ml, &one);
			msgpack_unpacked_destroy(&u);
		}
		if (ur != MSGPACK_UNPACK_SUCCESS || one != ml) {
			fprintf(stderr,
				"bench_append: generated record %u is not one msgpack object\n", i);
			exit(1);
		}
		if (!jl) {
			fprintf(stderr, "bench_append: JSON record overflow\n");
			exit(1);
		}
		pool.mp_off[i] = mp_used;
		pool.mp_len[i] = (uint32_t)ml;
		mp_used += ml;
		pool.js_off[i] = js_used;
		pool.js_len[i] = (uint32_t)jl;
		js_used += jl + 1; /* NUL-terminated */

		mp_sum += ml;
		js_sum += jl;
		if (ml < pool.mp_min)
			pool.mp_min = (uint32_t)ml;
		if (ml > pool.mp_max)
			pool.mp_max = (uint32_t)ml;
		if ((uint32_t)jl < pool.js_min)
			pool.js_min = (uint32_t)jl;
		if ((uint32_t)jl > pool.js_max)
			pool.js_max = (uint32_t)jl;
	}
	pool.mp_avg = (double)mp_sum / n;
	pool.js_avg = (double)js_sum / n;
}

/* Read every pool byte so its pages count in the baseline RSS. */
static unsigned pool_touch(void)
{
	unsigned x = 0;
	size_t mp_end = pool.mp_off[pool.n - 1] + pool.mp_len[pool.n - 1];
	size_t js_end = pool.js_off[pool.n - 1] + pool.js_len[pool.n - 1];
	for (size_t i = 0; i < mp_end; i += 64)
		x += pool.mp[i];
	for (size_t i = 0; i < js_end; i += 64)
		x += (unsigned char)pool.js[i];
	return x;
}

/* Record g of a case (global append index) uses pool entry g % pool.n.
 * Thread t of T appends global indices t, t+T, t+2T, ... */
static inline unsigned pool_idx(uint64_t g)
{
	return (unsigned)(g % pool.n);
}

/* ------------------------------------------------------------------------
 * Shared by the threaded cases
 * ---------------------------------------------------------------------- */
struct worker {
	pthread_t tid;
	int t, threads;
	uint64_t count; /* appends by this thread */
	uint64_t *lat;  /* count latencies (ns) */
	uint64_t *seqs; /* count sequence numbers (edgelog) */
	uint64_t start_ns, end_ns;
	int rc;
	char err[400];
	/* per case */
	edgelog *log;
	const char *db_path;
	int sql_sync;
	uint64_t busy_retries;
	uint64_t close_ns;
	const char *db_dir;
	uint64_t live_bytes, live_files; /* set by one thread (the serial one) */
	uint64_t faults;                 /* page faults this thread took while appending */
	uint64_t *floor;                 /* count spin timings (ns), the jitter floor */
	uint64_t floor_faults, spin_ns;
	uint64_t spin_best; /* ns of spin(100000), fastest of five */
};

/* With --rate: sleep until append i of this thread is due (start + i /
 * rate), the device regime. */
static void pace_from(uint64_t start_ns, uint64_t i)
{
	uint64_t due;
	struct timespec ts;

	if (!opt.rate)
		return;
	due = start_ns + i * 1000000000ull / opt.rate;
	ts.tv_sec = (time_t)(due / 1000000000ull);
	ts.tv_nsec = (long)(due % 1000000000ull);
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

static pthread_barrier_t start_barrier;
static atomic_int abort_flag;

static void split_work(struct worker *w, int threads, uint64_t n, uint64_t *lat, uint64_t *seqs)
{
	uint64_t off = 0;
	for (int t = 0; t < threads; t++) {
		w[t].t = t;
		w[t].threads = threads;
		w[t].count = n / threads + ((uint64_t)t < n % threads);
		w[t].lat = lat + off;
		w[t].seqs = seqs ? seqs + off : NULL;
		off += w[t].count;
	}
}

static void wall_time(struct result *r, struct worker *w, int threads)
{
	uint64_t s = UINT64_MAX, e = 0;
	for (int t = 0; t < threads; t++) {
		if (w[t].start_ns < s)
			s = w[t].start_ns;
		if (w[t].end_ns > e)
			e = w[t].end_ns;
	}
	r->wall_s = e > s ? (double)(e - s) / 1e9 : 0;
	r->rate = r->wall_s > 0 ? (double)r->n / r->wall_s : 0;
}

/* ------------------------------------------------------------------------
 * Jitter floor: the loop of the append phase with the append replaced by a
 * spin of the same length, in the same process, threads and pacing.
 * ---------------------------------------------------------------------- */
/* Median of a thread's append latencies, from at most ~10,000 of them. */
static uint64_t median_sampled(const uint64_t *lat, uint64_t n)
{
	uint64_t step = n / 10000 + 1, m = 0, v[10001];

	for (uint64_t i = 0; i < n && m < 10001; i += step)
		v[m++] = lat[i];
	if (!m)
		return 0;
	qsort(v, m, sizeof(v[0]), bench_cmp_u64);
	return v[m / 2];
}

/* Interleaved floor (--rate): after append i, a spin as long as the
 * running median of the appends so far (a stochastic median: a step of
 * 1/32 towards each new sample). */
static void floor_step(struct worker *w, uint64_t i, uint64_t lat)
{
	uint64_t t0, t1, m = w->spin_ns, step;

	t0 = bench_now_ns();
	bench_spin(m * 100000 / w->spin_best);
	t1 = bench_now_ns();
	w->floor[i] = t1 - t0;
	step = m / 32 + 1;
	if (lat > m)
		m += step;
	else
		m = m > step ? m - step : 1;
	w->spin_ns = m;
}

/* Floor after the appends (full speed). */
static void floor_loop(struct worker *w)
{
	uint64_t rounds, start;
	struct rusage ru0, ru1;

	w->spin_ns = median_sampled(w->lat, w->count);
	rounds = w->spin_ns * 100000 / w->spin_best;
	getrusage(RUSAGE_THREAD, &ru0);
	start = bench_now_ns();
	for (uint64_t i = 0; i < w->count; i++) {
		uint64_t t0, t1;
		pace_from(start, i);
		t0 = bench_now_ns();
		bench_spin(rounds);
		t1 = bench_now_ns();
		w->floor[i] = t1 - t0;
	}
	getrusage(RUSAGE_THREAD, &ru1);
	w->floor_faults = (uint64_t)(ru1.ru_minflt - ru0.ru_minflt + ru1.ru_majflt - ru0.ru_majflt);
}

/* The floor's figures over all threads (sorts fl in place). */
static void floor_stats(struct result *r, uint64_t *fl, uint64_t n)
{
	if (n == 0)
		return;
	struct bench_lat l = bench_lat_of(fl, n);
	r->fl_over_100us += l.over_100us;
	r->fl_over_1ms += l.over_1ms;
	r->fl_p50 = l.p50;
	r->fl_p999 = l.p999;
	r->fl_p9999 = l.p9999;
	r->fl_max = l.max;
	r->floor_ran = 1;
}

/* ------------------------------------------------------------------------
 * Wake control of group commit: what the scheduler alone leaves of the
 * disk's ceiling. The case's threads run rounds as the engine's do, with
 * no engine: each thread takes a lock, counts itself and sleeps on a futex
 * word; the one that completes the count sleeps (clock_nanosleep, timer
 * slack 1 ns) for the mean fdatasync time the case just measured, in the
 * place of the fdatasync, then wakes all the others with one FUTEX_WAKE
 * and counts itself in again at once. Its appends/s over threads / (its
 * mean sleep) is the most any group commit that wakes every waiter once
 * per fdatasync gets from this machine at this moment; its time between
 * two sleeps is the floor of the engine's time between two fdatasyncs.
 * ---------------------------------------------------------------------- */
struct wake_control {
	pthread_mutex_t mu;
	unsigned bell; /* futex word */
	int n, threads;
	uint64_t rounds, sleep_ns;
	uint64_t slept_ns, sleeps; /* under mu of the round's last thread only */
	pthread_barrier_t start;
};

static void *wake_control_thread(void *arg)
{
	struct wake_control *c = arg;

	(void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	pthread_barrier_wait(&c->start);
	for (uint64_t i = 0; i < c->rounds; i++) {
		unsigned b;

		pthread_mutex_lock(&c->mu);
		b = __atomic_load_n(&c->bell, __ATOMIC_SEQ_CST);
		if (++c->n == c->threads) {
			uint64_t t0, t1;
			struct timespec ts = {.tv_sec = (time_t)(c->sleep_ns / 1000000000u),
					      .tv_nsec = (long)(c->sleep_ns % 1000000000u)};

			c->n = 0;
			pthread_mutex_unlock(&c->mu);
			t0 = bench_now_ns();
			clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
			t1 = bench_now_ns();
			/* Only this thread runs between the count and the wake. */
			c->slept_ns += t1 - t0;
			c->sleeps++;
			__atomic_fetch_add(&c->bell, 1, __ATOMIC_SEQ_CST);
			(void)syscall(SYS_futex, &c->bell, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL,
				      0);
		} else {
			pthread_mutex_unlock(&c->mu);
			while (__atomic_load_n(&c->bell, __ATOMIC_SEQ_CST) == b)
				(void)syscall(SYS_futex, &c->bell, FUTEX_WAIT_PRIVATE, b, NULL,
					      NULL, 0);
		}
	}
	return NULL;
}

/* Run the control for a case that made r->fds_calls fdatasyncs in r->n
 * appends by `threads` threads (as many rounds as that case had). */
static void wake_control(struct result *r, int threads)
{
	struct wake_control c = {.mu = PTHREAD_MUTEX_INITIALIZER, .threads = threads};
	pthread_t *tid = calloc((size_t)threads, sizeof(*tid));
	uint64_t t0;
	int t;

	if (!tid || !r->fds_calls || threads < 2)
		goto out;
	c.rounds = r->n / (uint64_t)threads;
	c.sleep_ns = (uint64_t)(r->fds_ns / (double)r->fds_calls);
	pthread_barrier_init(&c.start, NULL, (unsigned)threads + 1);
	for (t = 0; t < threads; t++)
		if (pthread_create(&tid[t], NULL, wake_control_thread, &c) != 0) {
			fprintf(stderr, "bench_append: pthread_create failed\n");
			_exit(1);
		}
	pthread_barrier_wait(&c.start);
	t0 = bench_now_ns();
	for (t = 0; t < threads; t++)
		pthread_join(tid[t], NULL);
	r->wc_wall_ns = (double)(bench_now_ns() - t0);
	pthread_barrier_destroy(&c.start);
	r->wc_rounds = c.sleeps;
	r->wc_sleep_ns = c.sleeps ? (double)c.slept_ns / (double)c.sleeps : 0;
out:
	free(tid);
}

/* ------------------------------------------------------------------------
 * edgelog cases
 * ---------------------------------------------------------------------- */
static void *edgelog_thread(void *arg)
{
	struct worker *w = arg;
	uint64_t g = (uint64_t)w->t;

	struct rusage ru0, ru1;

	if (w->floor) {
		w->spin_best = bench_spin_calibrate();
		w->spin_ns = 1000; /* the running median's start */
	}
	pthread_barrier_wait(&start_barrier);
	getrusage(RUSAGE_THREAD, &ru0);
	w->start_ns = bench_now_ns();
	for (uint64_t i = 0; i < w->count; i++, g += (uint64_t)w->threads) {
		unsigned k = pool_idx(g);
		uint64_t seq = 0, t0, t1;
		int rc;

		pace_from(w->start_ns, i);
		t0 = bench_now_ns();
		rc = edgelog_append(w->log, pool.mp + pool.mp_off[k], pool.mp_len[k], &seq);
		t1 = bench_now_ns();
		if (rc != 0) {
			w->rc = rc;
			snprintf(w->err, sizeof(w->err),
				 "edgelog_append (thread %d, append %" PRIu64 "): %s: %s", w->t, i,
				 edgelog_strerror(rc), edgelog_errmsg(w->log));
			atomic_store(&abort_flag, 1);
			w->count = i;
			break;
		}
		w->lat[i] = t1 - t0;
		w->seqs[i] = seq;
		if (w->floor && opt.rate)
			floor_step(w, i, t1 - t0);
		if ((i & 1023) == 0 && atomic_load_explicit(&abort_flag, memory_order_relaxed)) {
			w->count = i + 1;
			break;
		}
	}
	w->end_ns = bench_now_ns();
	getrusage(RUSAGE_THREAD, &ru1);
	w->faults = (uint64_t)(ru1.ru_minflt - ru0.ru_minflt + ru1.ru_majflt - ru0.ru_majflt);
	/* Interleaved, the spins took no fault (they touch no memory), so
	 * the faults above are the appends'. */
	if (w->floor && !opt.rate)
		floor_loop(w);
	return NULL;
}

/* Read the directory back: every appended record present once, in order,
 * byte for byte; nothing else. */
static void verify_edgelog_dir(struct result *r, const char *dir, struct worker *w, int threads,
			       uint64_t n)
{
	uint32_t *idx = xmalloc((n + 1) * sizeof(uint32_t)); /* seq -> pool entry */
	unsigned char *seen = calloc(n + 1, 1);
	edgelog_reader *rd = NULL;
	edgelog_record rec;
	uint64_t last = 0;
	int rc;

	if (!seen) {
		seterr(r, "verify: out of memory");
		free(idx);
		return;
	}
	for (uint64_t s = 0; s <= n; s++)
		idx[s] = UINT32_MAX;
	for (int t = 0; t < threads; t++) {
		uint64_t g = (uint64_t)t;
		for (uint64_t i = 0; i < w[t].count; i++, g += (uint64_t)threads) {
			uint64_t s = w[t].seqs[i];
			if (s < 1 || s > n || idx[s] != UINT32_MAX)
				r->v_bad_seq++;
			else
				idx[s] = pool_idx(g);
		}
	}

	rc = edgelog_reader_open(&rd, dir, 0);
	if (rc != 0) {
		seterr(r, "edgelog_reader_open(%s): %s: %s", dir, edgelog_strerror(rc),
		       edgelog_errmsg(NULL));
		goto out;
	}
	while ((rc = edgelog_reader_next(rd, &rec)) == 0) {
		if (rec.seq <= last)
			r->v_order++;
		last = rec.seq;
		if (rec.seq < 1 || rec.seq > n || idx[rec.seq] == UINT32_MAX) {
			r->v_unknown++;
			continue;
		}
		if (seen[rec.seq]) {
			r->v_dup++;
			continue;
		}
		seen[rec.seq] = 1;
		r->v_found++;
		unsigned k = idx[rec.seq];
		if (rec.len != pool.mp_len[k] ||
		    memcmp(rec.data, pool.mp + pool.mp_off[k], rec.len) != 0)
			r->v_mismatch++;
	}
	if (rc != EDGELOG_EOF)
		seterr(r, "edgelog_reader_next: %s: %s", edgelog_strerror(rc),
		       edgelog_errmsg(NULL));
	r->v_corrupt = edgelog_reader_corrupt(rd);
	edgelog_reader_close(rd);
	r->verified = 1;
	r->v_missing = n - r->v_found;
	r->verify_ok = r->v_found == n && !r->v_dup && !r->v_mismatch && !r->v_unknown &&
		       !r->v_order && !r->v_corrupt && !r->v_bad_seq;
out:
	free(idx);
	free(seen);
}

static void run_edgelog(int c, struct result *r, const char *dir)
{
	int threads = case_threads(c);
	uint64_t n = r->n;
	uint64_t *lat = xmalloc(n * sizeof(uint64_t));
	uint64_t *seqs = xmalloc(n * sizeof(uint64_t));
	/* The floor of an always case would spin for an fdatasync's time per
	 * record: it is left out there (the fdatasync dominates anyway). */
	int floor = opt.floor && cases[c].mode != EDGELOG_SYNC_ALWAYS;
	uint64_t *fl = floor ? xmalloc(n * sizeof(uint64_t)) : NULL;
	struct worker *w = calloc((size_t)threads, sizeof(*w));
	edgelog_config cfg;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog *log = NULL;
	uint64_t t0;
	int rc;

	/* Touch everything the timed loop writes, so it takes no page fault. */
	memset(lat, 0xff, n * sizeof(uint64_t));
	memset(seqs, 0xff, n * sizeof(uint64_t));
	if (fl)
		memset(fl, 0xff, n * sizeof(uint64_t));
	(void)pool_touch();
	r->rss_base_kb = maxrss_kb();

	edgelog_config_init(&cfg);
	cfg.dir = dir;
	cfg.sync = (edgelog_sync_mode)cases[c].mode;
	cfg.sync_interval_ms = opt.interval_ms;
	cfg.max_size_mb = 100000; /* no cap interferes */
	t0 = bench_now_ns();
	rc = edgelog_open(&log, &cfg);
	r->open_ms = (double)(bench_now_ns() - t0) / 1e6;
	if (rc != 0) {
		seterr(r, "edgelog_open(%s): %s: %s", dir, edgelog_strerror(rc),
		       edgelog_errmsg(NULL));
		goto out;
	}
	if (opt.worker && (rc = edgelog_start(log)) != 0) {
		seterr(r, "edgelog_start: %s: %s", edgelog_strerror(rc), edgelog_errmsg(log));
		edgelog_close(log);
		goto out;
	}

	split_work(w, threads, n, lat, seqs);
	pthread_barrier_init(&start_barrier, NULL, (unsigned)threads);
	atomic_store(&fds_calls, 0);
	atomic_store(&fds_ns, 0);
	for (int t = 0; t < threads; t++) {
		w[t].log = log;
		w[t].floor = fl ? fl + (w[t].lat - lat) : NULL;
		if (pthread_create(&w[t].tid, NULL, edgelog_thread, &w[t]) != 0) {
			fprintf(stderr, "bench_append: pthread_create failed\n");
			_exit(1);
		}
	}
	for (int t = 0; t < threads; t++)
		pthread_join(w[t].tid, NULL);
	pthread_barrier_destroy(&start_barrier);
	r->fds_calls = atomic_load(&fds_calls);
	for (int t = 0; t < threads; t++)
		r->append_faults += w[t].faults;
	r->fl_interleaved = fl && opt.rate;
	for (int t = 0; t < threads; t++) {
		r->fl_faults += w[t].floor_faults;
		if (w[t].spin_ns > r->fl_spin_ns)
			r->fl_spin_ns = w[t].spin_ns;
	}
	r->fds_ns = (double)atomic_load(&fds_ns);
	wall_time(r, w, threads);
	if (cases[c].mode == EDGELOG_SYNC_ALWAYS)
		wake_control(r, threads);
	for (int t = 0; t < threads; t++)
		if (w[t].rc != 0)
			seterr(r, "%s", w[t].err);

	rc = edgelog_get_status(log, &st);
	if (rc != 0) {
		seterr(r, "edgelog_get_status: %s: %s", edgelog_strerror(rc), edgelog_errmsg(log));
	} else {
		r->st_appended = st.appended;
		r->st_last_seq = st.last_seq;
		r->st_durable_seq = st.durable_seq;
		r->st_segments = st.segments;
		r->st_size_bytes = st.size_bytes;
	}
	du(dir, &r->live_disk_bytes, NULL, &r->live_files);

	t0 = bench_now_ns();
	rc = edgelog_close(log);
	r->close_ms = (double)(bench_now_ns() - t0) / 1e6;
	if (rc != 0)
		seterr(r, "edgelog_close: %s: %s", edgelog_strerror(rc), edgelog_errmsg(NULL));
	r->rss_peak_kb = maxrss_kb();
	du(dir, &r->disk_bytes, &r->apparent_bytes, &r->files);

	/* Statistics over the appends that happened (all of them unless one failed). */
	{
		uint64_t done = 0;
		for (int t = 0; t < threads; t++) {
			if (w[t].lat != lat + done)
				memmove(lat + done, w[t].lat, w[t].count * sizeof(uint64_t));
			done += w[t].count;
		}
		latency_stats(r, lat, done);
		if (fl) {
			done = 0;
			for (int t = 0; t < threads; t++) {
				if (w[t].floor != fl + done)
					memmove(fl + done, w[t].floor,
						w[t].count * sizeof(uint64_t));
				done += w[t].count;
			}
			floor_stats(r, fl, done);
		}
	}
	if (opt.verify && r->ok)
		verify_edgelog_dir(r, dir, w, threads, n);
out:
	free(lat);
	free(seqs);
	free(fl);
	free(w);
}

/* ------------------------------------------------------------------------
 * SQLite cases: the Python client's design, one transaction per insert
 * ---------------------------------------------------------------------- */
static int sql_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "sqlite3_exec(%s): %s", sql, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int sql_connect(const char *path, int sync, sqlite3 **out, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(
		path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	*out = NULL;
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "sqlite3_open_v2(%s): %s", path,
			 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, 10000);
	/* synchronous is per connection; journal_mode=WAL is persistent but
	 * setting it again is harmless. */
	if (sql_exec(db, "PRAGMA journal_mode=WAL", err, errlen) != 0 ||
	    sql_exec(db, sync == 2 ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", err,
		     errlen) != 0) {
		sqlite3_close(db);
		return -1;
	}
	*out = db;
	return 0;
}

/* Step a statement that returns no rows; retry while busy. */
static int sql_step(sqlite3_stmt *st, uint64_t *busy)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_BUSY || rc == SQLITE_LOCKED) {
		sqlite3_reset(st);
		(*busy)++;
	}
	sqlite3_reset(st);
	return rc;
}

static void *sqlite_thread(void *arg)
{
	struct worker *w = arg;
	sqlite3 *db = NULL;
	sqlite3_stmt *begin = NULL, *ins = NULL, *commit = NULL;
	uint64_t g = (uint64_t)w->t;
	int ready = 0;

	if (sql_connect(w->db_path, w->sql_sync, &db, w->err, sizeof(w->err)) == 0) {
		if (sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v2(db,
				       "INSERT INTO predictions (created_at, payload, status, "
				       "attempts, last_error) VALUES (?, ?, 'pending', 0, NULL)",
				       -1, &ins, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL) != SQLITE_OK)
			snprintf(w->err, sizeof(w->err), "sqlite3_prepare_v2: %s",
				 sqlite3_errmsg(db));
		else
			ready = 1;
	}
	if (!ready) {
		w->rc = -1;
		w->count = 0;
		atomic_store(&abort_flag, 1);
	}

	pthread_barrier_wait(&start_barrier);
	w->start_ns = bench_now_ns();
	for (uint64_t i = 0; ready && i < w->count; i++, g += (uint64_t)w->threads) {
		unsigned k = pool_idx(g);
		struct timespec rt;
		uint64_t t0, t1;
		int rc1, rc2, rc3;

		pace_from(w->start_ns, i);
		t0 = bench_now_ns();
		clock_gettime(CLOCK_REALTIME, &rt);
		rc1 = sql_step(begin, &w->busy_retries);
		sqlite3_bind_double(ins, 1, (double)rt.tv_sec + (double)rt.tv_nsec / 1e9);
		sqlite3_bind_text(ins, 2, pool.js + pool.js_off[k], (int)pool.js_len[k],
				  SQLITE_STATIC);
		rc2 = sql_step(ins, &w->busy_retries);
		rc3 = sql_step(commit, &w->busy_retries);
		t1 = bench_now_ns();
		if (rc1 != SQLITE_DONE || rc2 != SQLITE_DONE || rc3 != SQLITE_DONE) {
			snprintf(w->err, sizeof(w->err),
				 "sqlite insert (thread %d, insert %" PRIu64 "): %s / %s / %s: %s",
				 w->t, i, sqlite3_errstr(rc1), sqlite3_errstr(rc2),
				 sqlite3_errstr(rc3), sqlite3_errmsg(db));
			w->rc = -1;
			w->count = i;
			atomic_store(&abort_flag, 1);
			break;
		}
		w->lat[i] = t1 - t0;
		if ((i & 255) == 0 && atomic_load_explicit(&abort_flag, memory_order_relaxed)) {
			w->count = i + 1;
			break;
		}
	}
	w->end_ns = bench_now_ns();
	sqlite3_finalize(begin);
	sqlite3_finalize(ins);
	sqlite3_finalize(commit);
	/* Leave the connection open until every thread is done, so the last
	 * close (and its checkpoint) is not inside anyone's timing; one thread
	 * measures the files (database, WAL, shm) while all are still open. */
	if (pthread_barrier_wait(&start_barrier) == PTHREAD_BARRIER_SERIAL_THREAD)
		du(w->db_dir, &w->live_bytes, NULL, &w->live_files);
	pthread_barrier_wait(&start_barrier);
	uint64_t t0 = bench_now_ns();
	if (db && sqlite3_close(db) != SQLITE_OK && !w->rc) {
		snprintf(w->err, sizeof(w->err), "sqlite3_close: %s", sqlite3_errmsg(db));
		w->rc = -1;
	}
	w->close_ns = bench_now_ns() - t0;
	return NULL;
}

static void run_sqlite(int c, struct result *r, const char *dir)
{
	int threads = case_threads(c);
	uint64_t n = r->n;
	uint64_t *lat = xmalloc(n * sizeof(uint64_t));
	struct worker *w = calloc((size_t)threads, sizeof(*w));
	char path[4200], err[512];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	uint64_t t0;

	memset(lat, 0xff, n * sizeof(uint64_t));
	(void)pool_touch();
	r->rss_base_kb = maxrss_kb();

	if (mkdir(dir, 0700) != 0) {
		seterr(r, "mkdir(%s): %s", dir, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/prediction_buffer.db", dir);
	t0 = bench_now_ns();
	if (sql_connect(path, cases[c].mode, &db, err, sizeof(err)) != 0 ||
	    sql_exec(db,
		     "CREATE TABLE predictions (id INTEGER PRIMARY KEY, created_at REAL, "
		     "payload TEXT, status TEXT, attempts INT, last_error TEXT);"
		     "CREATE INDEX idx_predictions_status ON predictions(status);",
		     err, sizeof(err)) != 0) {
		seterr(r, "%s", err);
		sqlite3_close(db);
		goto out;
	}
	sqlite3_close(db);
	db = NULL;
	r->open_ms = (double)(bench_now_ns() - t0) / 1e6;

	split_work(w, threads, n, lat, NULL);
	pthread_barrier_init(&start_barrier, NULL, (unsigned)threads);
	for (int t = 0; t < threads; t++) {
		w[t].db_path = path;
		w[t].db_dir = dir;
		w[t].sql_sync = cases[c].mode;
		if (pthread_create(&w[t].tid, NULL, sqlite_thread, &w[t]) != 0) {
			fprintf(stderr, "bench_append: pthread_create failed\n");
			_exit(1);
		}
	}
	for (int t = 0; t < threads; t++)
		pthread_join(w[t].tid, NULL);
	pthread_barrier_destroy(&start_barrier);
	wall_time(r, w, threads);
	for (int t = 0; t < threads; t++) {
		if (w[t].rc != 0)
			seterr(r, "%s", w[t].err);
		r->sql_busy_retries += w[t].busy_retries;
		if (w[t].live_files) {
			r->live_disk_bytes = w[t].live_bytes;
			r->live_files = w[t].live_files;
		}
		if ((double)w[t].close_ns / 1e6 > r->close_ms)
			r->close_ms = (double)w[t].close_ns / 1e6;
	}
	/* Make sure the WAL is checkpointed and removed (threads closing at
	 * once may each leave it to another), so the size after close is the
	 * database alone. */
	r->rss_peak_kb = maxrss_kb();
	if (r->ok) {
		sqlite3 *cdb = NULL;
		if (sqlite3_open_v2(path, &cdb, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
		    sql_exec(cdb, "PRAGMA wal_checkpoint(TRUNCATE)", err, sizeof(err)) != 0)
			seterr(r, "checkpoint: %s", cdb ? sqlite3_errmsg(cdb) : "open failed");
		sqlite3_close(cdb);
	}
	du(dir, &r->disk_bytes, &r->apparent_bytes, &r->files);

	{
		uint64_t done = 0;
		for (int t = 0; t < threads; t++) {
			if (w[t].lat != lat + done)
				memmove(lat + done, w[t].lat, w[t].count * sizeof(uint64_t));
			done += w[t].count;
		}
		latency_stats(r, lat, done);
	}

	if (opt.verify && r->ok) {
		r->verified = 1;
		if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
		    sqlite3_prepare_v2(db, "SELECT count(*) FROM predictions", -1, &st, NULL) ==
			    SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW) {
			r->v_found = (uint64_t)sqlite3_column_int64(st, 0);
			r->v_missing = n > r->v_found ? n - r->v_found : 0;
			r->verify_ok = r->v_found == n;
		} else {
			seterr(r, "sqlite verify: %s", db ? sqlite3_errmsg(db) : "open failed");
		}
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
out:
	free(lat);
	free(w);
}

/* ------------------------------------------------------------------------
 * open1g: edgelog_open on a directory holding opt.open_mb of segments
 * ---------------------------------------------------------------------- */
static long vm_hwm_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static void reset_hwm(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "5", 1) != 1) {
			/* not supported: VmHWM then includes the fill phase */
		}
		close(fd);
	}
}

static int open_close_once(struct result *r, const char *dir, double *open_ms, double *oc_ms)
{
	edgelog_config cfg;
	edgelog *log = NULL;
	uint64_t t0, t1, t2;
	int rc;

	edgelog_config_init(&cfg);
	cfg.dir = dir;
	cfg.sync = EDGELOG_SYNC_NONE;
	cfg.max_size_mb = 100000;
	t0 = bench_now_ns();
	rc = edgelog_open(&log, &cfg);
	t1 = bench_now_ns();
	if (rc != 0) {
		seterr(r, "edgelog_open(%s) on %" PRIu64 " MB: %s: %s", dir, opt.open_mb,
		       edgelog_strerror(rc), edgelog_errmsg(NULL));
		return -1;
	}
	rc = edgelog_close(log);
	t2 = bench_now_ns();
	if (rc != 0) {
		seterr(r, "edgelog_close after reopen: %s: %s", edgelog_strerror(rc),
		       edgelog_errmsg(NULL));
		return -1;
	}
	*open_ms = (double)(t1 - t0) / 1e6;
	*oc_ms = (double)(t2 - t0) / 1e6;
	return 0;
}

static void run_open(struct result *r, const char *dir)
{
	uint64_t target = opt.open_mb * 1024u * 1024u;
	edgelog_config cfg;
	edgelog *log = NULL;
	uint64_t g = 0, apparent = 0;
	int rc;

	r->rss_base_kb = maxrss_kb();
	edgelog_config_init(&cfg);
	cfg.dir = dir;
	cfg.sync = EDGELOG_SYNC_NONE;
	cfg.max_size_mb = 100000;
	rc = edgelog_open(&log, &cfg);
	if (rc != 0) {
		seterr(r, "edgelog_open(%s): %s: %s", dir, edgelog_strerror(rc),
		       edgelog_errmsg(NULL));
		return;
	}
	if (opt.worker && (rc = edgelog_start(log)) != 0) {
		seterr(r, "edgelog_start: %s: %s", edgelog_strerror(rc), edgelog_errmsg(log));
		edgelog_close(log);
		return;
	}
	/* Fill: the apparent size counts only what was written, not space a
	 * preallocating writer reserved; check it every 64k records. */
	while (apparent < target) {
		for (int i = 0; i < 65536; i++, g++) {
			unsigned k = pool_idx(g);
			rc = edgelog_append(log, pool.mp + pool.mp_off[k], pool.mp_len[k], NULL);
			if (rc != 0) {
				seterr(r, "edgelog_append (fill, record %" PRIu64 "): %s: %s", g,
				       edgelog_strerror(rc), edgelog_errmsg(log));
				edgelog_close(log);
				return;
			}
		}
		du(dir, NULL, &apparent, NULL);
	}
	r->o_records = g;
	rc = edgelog_close(log);
	if (rc != 0) {
		seterr(r, "edgelog_close after fill: %s: %s", edgelog_strerror(rc),
		       edgelog_errmsg(NULL));
		return;
	}
	du(dir, &r->o_disk_bytes, &r->o_apparent_bytes, &r->o_files);
	r->n = g;

	reset_hwm();
	r->o_runs = opt.open_runs;
	for (int i = 0; i < opt.open_runs; i++)
		if (open_close_once(r, dir, &r->o_warm_ms[i], &r->o_warm_oc_ms[i]) != 0)
			return;
	for (int i = 0; i < opt.open_runs; i++) {
		nftw(dir, evict_cb, 32, FTW_PHYS);
		if (open_close_once(r, dir, &r->o_cold_ms[i], &r->o_cold_oc_ms[i]) != 0)
			return;
	}
	r->o_hwm_kb = vm_hwm_kb();
	r->rss_peak_kb = maxrss_kb();
	du(dir, NULL, NULL, &r->o_files_after);
}

/* ------------------------------------------------------------------------
 * Running a case in a child
 * ---------------------------------------------------------------------- */
static void child_run(int c, struct result *r, const char *dir)
{
	r->ok = 1;
	r->threads = case_threads(c);
	r->n = case_n(c);
	atomic_store(&abort_flag, 0);
	switch (cases[c].kind) {
	case K_EDGELOG:
		run_edgelog(c, r, dir);
		break;
	case K_SQLITE:
		run_sqlite(c, r, dir);
		break;
	case K_OPEN:
		run_open(r, dir);
		break;
	}
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static void run_forked(int c, struct result *r)
{
	char dir[4096];
	int fds[2];
	pid_t pid;
	size_t got = 0;
	int status = 0, timed_out = 0;
	uint64_t deadline = bench_now_ns() + (uint64_t)opt.timeout_s * 1000000000u;

	memset(r, 0, sizeof(*r));
	r->ran = 1;
	r->threads = case_threads(c);
	r->n = case_n(c);
	snprintf(dir, sizeof(dir), "%s/%s.%ld", opt.dir, case_names[c], (long)getpid());
	rm_rf(dir);

	if (pipe(fds) != 0) {
		seterr(r, "pipe: %s", strerror(errno));
		return;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		seterr(r, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return;
	}
	if (pid == 0) {
		static struct result cr;
		close(fds[0]);
		memset(&cr, 0, sizeof(cr));
		cr.ran = 1;
		child_run(c, &cr, dir);
		int bad = write_all(fds[1], &cr, sizeof(cr)) != 0;
		close(fds[1]);
		_exit(bad);
	}
	close(fds[1]);
	while (got < sizeof(*r)) {
		uint64_t now = bench_now_ns();
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		int ms = now >= deadline ? 0 : (int)((deadline - now) / 1000000u) + 1;
		int pr = poll(&pfd, 1, ms);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0) {
			timed_out = 1;
			kill(pid, SIGKILL);
			break;
		}
		ssize_t rd = read(fds[0], (char *)r + got, sizeof(*r) - got);
		if (rd < 0 && errno == EINTR)
			continue;
		if (rd <= 0)
			break;
		got += (size_t)rd;
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
	}
	if (got != sizeof(*r)) {
		uint64_t n = case_n(c);
		memset(r, 0, sizeof(*r));
		r->ran = 1;
		r->threads = case_threads(c);
		r->n = n;
		if (timed_out)
			seterr(r, "timed out after %d s (child killed; engine hung?)",
			       opt.timeout_s);
		else if (WIFSIGNALED(status))
			seterr(r, "child crashed: signal %d (%s)%s", WTERMSIG(status),
			       strsignal(WTERMSIG(status)),
			       WCOREDUMP(status) ? ", core dumped" : "");
		else
			seterr(r, "child exited with status %d without a result",
			       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
	rm_rf(dir);
	/* Nothing of this case may still be in flight when the next starts. */
	{
		int fd = open(opt.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			syncfs(fd);
			close(fd);
		}
	}
}

/* ------------------------------------------------------------------------
 * Reporting
 * ---------------------------------------------------------------------- */
static const struct result *res_if(int c)
{
	return results[c].ran && results[c].ok && results[c].n > 0 ? &results[c] : NULL;
}

static double ratio(int a, int b)
{
	const struct result *x = res_if(a), *y = res_if(b);
	if (!x || !y || y->rate <= 0)
		return NAN;
	return x->rate / y->rate;
}

static double bytes_per_rec(const struct result *r)
{
	return r && r->n ? (double)r->disk_bytes / (double)r->n : NAN;
}

static double median(const double *v, int n)
{
	double tmp[OPEN_RUNS_MAX];
	if (n <= 0)
		return NAN;
	memcpy(tmp, v, (size_t)n * sizeof(double));
	qsort(tmp, (size_t)n, sizeof(double), cmp_dbl);
	return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static double vmin(const double *v, int n)
{
	double m = INFINITY;
	for (int i = 0; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return n > 0 ? m : NAN;
}

static double vmax(const double *v, int n)
{
	double m = -INFINITY;
	for (int i = 0; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return n > 0 ? m : NAN;
}

struct target {
	const char *key, *what, *unit;
	double value, limit;
	int at_least; /* value >= limit passes, else value <= limit */
};

static int ntargets;
static struct target targets[16];

/* Records per fdatasync over the threads, for a sync=always case. */
static double sync_share(int c)
{
	const struct result *r = res_if(c);
	if (!r || !r->fds_calls)
		return NAN;
	return (double)r->n / (double)r->fds_calls / r->threads;
}

/* Appends/s over threads / mean fdatasync latency (same run). */
static double sync_ceiling(int c)
{
	const struct result *r = res_if(c);
	if (!r || !r->fds_calls || r->fds_ns <= 0)
		return NAN;
	return r->rate / ((double)r->threads / (r->fds_ns / (double)r->fds_calls / 1e9));
}

static void compute_targets(void)
{
	const struct result *iv = res_if(C_INTERVAL_1), *op = res_if(C_OPEN);
	ntargets = 0;
	targets[ntargets++] = (struct target){"interval_1t_vs_sqlite_normal_1t",
					      "interval 1t appends/s vs SQLite NORMAL 1t",
					      "x",
					      ratio(C_INTERVAL_1, C_SQL_NORMAL_1),
					      50,
					      1};
	/* Group commit (issue 13, replacing issue 2's 20x SQLite FULL):
	 * records per fdatasync over the waiting threads, appends/s over the
	 * disk's ceiling for that many waiters, at 4 and 16 threads. */
	targets[ntargets++] = (struct target){"always_4t_records_per_sync_per_thread",
					      "always 4t records per fdatasync / threads",
					      "",
					      sync_share(C_ALWAYS_M),
					      0.85,
					      1};
	targets[ntargets++] = (struct target){"always_4t_vs_ceiling",
					      "always 4t appends/s / (threads / fdatasync latency)",
					      "",
					      sync_ceiling(C_ALWAYS_M),
					      0.8,
					      1};
	targets[ntargets++] = (struct target){"always_16t_records_per_sync_per_thread",
					      "always 16t records per fdatasync / threads",
					      "",
					      sync_share(C_ALWAYS_16),
					      0.85,
					      1};
	targets[ntargets++] =
		(struct target){"always_16t_vs_ceiling",
				"always 16t appends/s / (threads / fdatasync latency)",
				"",
				sync_ceiling(C_ALWAYS_16),
				0.8,
				1};
	targets[ntargets++] = (struct target){"bytes_per_record",
					      "bytes on disk/record (interval 1t)",
					      "B",
					      bytes_per_rec(iv),
					      450,
					      0};
	targets[ntargets++] = (struct target){"interval_1t_p99_us",
					      "p99 append (interval 1t)",
					      "us",
					      iv ? (double)iv->lat_p99 / 1e3 : NAN,
					      5,
					      0};
	targets[ntargets++] = (struct target){"interval_1t_max_us",
					      "max append (interval 1t)",
					      "us",
					      iv ? (double)iv->lat_max / 1e3 : NAN,
					      1000,
					      0};
	/* Tail latency (issue 13): p99.9, and the max in the device regime
	 * (--rate; not measured at full speed). */
	targets[ntargets++] = (struct target){"interval_1t_p999_us",
					      "p99.9 append (interval 1t)",
					      "us",
					      iv ? (double)iv->lat_p999 / 1e3 : NAN,
					      10,
					      0};
	targets[ntargets++] = (struct target){"interval_1t_paced_max_us",
					      "max append (interval 1t, --rate)",
					      "us",
					      iv && opt.rate ? (double)iv->lat_max / 1e3 : NAN,
					      100,
					      0};
	targets[ntargets++] = (struct target){"open_1g_cold_median_ms",
					      "edgelog_open on 1 GB, median (page cache dropped)",
					      "ms",
					      op ? median(op->o_cold_ms, op->o_runs) : NAN,
					      50,
					      0};
	targets[ntargets++] = (struct target){"open_1g_warm_median_ms",
					      "edgelog_open on 1 GB, median (page cache warm)",
					      "ms",
					      op ? median(op->o_warm_ms, op->o_runs) : NAN,
					      50,
					      0};
}

/* 1 pass, 0 miss, -1 not measured */
static int target_verdict(const struct target *t)
{
	if (!isfinite(t->value))
		return -1;
	return t->at_least ? t->value >= t->limit : t->value <= t->limit;
}

static const char *engine_name(int c)
{
	return cases[c].kind == K_SQLITE ? "sqlite" : "edgelog";
}

static void print_human(double total_s)
{
	printf("bench_append: edgelog %s vs SQLite %s, %ld CPUs, dir %s\n", edgelog_version(),
	       sqlite3_libversion(), sysconf(_SC_NPROCESSORS_ONLN), opt.dir);
	printf("records: %u distinct; msgpack %.1f B (%u..%u), JSON %.1f B (%u..%u)%s%s\n", pool.n,
	       pool.mp_avg, pool.mp_min, pool.mp_max, pool.js_avg, pool.js_min, pool.js_max,
	       opt.quick ? "; QUICK run (N / 100)" : "",
	       opt.worker ? "; edgelog_start() worker on" : "; no worker");
	int any = 0;
	for (int c = 0; c < C_COUNT; c++)
		any |= results[c].ran && c != C_OPEN;
	if (!any)
		goto open_part;
	printf("\n%-17s %3s %9s %11s %9s %9s %9s %10s %6s %7s %7s %8s\n", "case", "thr", "N",
	       "appends/s", "p50 us", "p99 us", "p99.9 us", "max us", ">1ms", "B/rec", "size/r",
	       "RSS MiB");
	for (int c = 0; c < C_COUNT; c++) {
		const struct result *r = &results[c];
		if (!r->ran || c == C_OPEN)
			continue;
		if (!r->ok && r->lat_max == 0) {
			printf("%-17s %3d %9" PRIu64 "  FAILED: %s\n", case_names[c], r->threads,
			       r->n, r->err);
			continue;
		}
		printf("%-17s %3d %9" PRIu64 " %11.0f %9.3f %9.3f %9.3f %10.3f %6" PRIu64
		       " %7.1f %7.1f %8.1f\n",
		       case_names[c], r->threads, r->n, r->rate, r->lat_p50 / 1e3, r->lat_p99 / 1e3,
		       r->lat_p999 / 1e3, r->lat_max / 1e3, r->over_1ms,
		       (double)r->disk_bytes / (double)r->n,
		       (double)r->apparent_bytes / (double)r->n, r->rss_peak_kb / 1024.0);
		if (!r->ok)
			printf("%-17s     FAILED: %s\n", "", r->err);
	}
	printf("  B/rec: allocated bytes (st_blocks*512) after close / N; size/r: st_size sum / N;\n"
	       "  RSS: peak of the case's own process (includes the bench's arrays, see base).\n");

	printf("\n%-17s %9s %9s %10s %9s %9s %6s %6s %10s %10s %8s  %s\n", "details", "mean us",
	       "p90 us", "p99.99 us", "open ms", "close ms", "files", "base", ">10us", ">100us",
	       "faults", "verify");
	for (int c = 0; c < C_COUNT; c++) {
		const struct result *r = &results[c];
		char v[200];
		if (!r->ran || c == C_OPEN || (!r->ok && r->lat_max == 0))
			continue;
		if (!r->verified)
			snprintf(v, sizeof(v), "not run");
		else if (r->verify_ok)
			snprintf(v, sizeof(v), "ok (%" PRIu64 " read back)", r->v_found);
		else
			snprintf(v, sizeof(v),
				 "BAD: found %" PRIu64 " missing %" PRIu64 " dup %" PRIu64
				 " mismatch %" PRIu64 " unknown %" PRIu64 " order %" PRIu64
				 " corrupt %" PRIu64 " badseq %" PRIu64,
				 r->v_found, r->v_missing, r->v_dup, r->v_mismatch, r->v_unknown,
				 r->v_order, r->v_corrupt, r->v_bad_seq);
		printf("%-17s %9.3f %9.3f %10.3f %9.2f %9.2f %6" PRIu64 " %5.0fM %10" PRIu64
		       " %10" PRIu64 " %8" PRIu64 "  %s\n",
		       case_names[c], r->lat_mean / 1e3, r->lat_p90 / 1e3, r->lat_p9999 / 1e3,
		       r->open_ms, r->close_ms, r->files, r->rss_base_kb / 1024.0, r->over_10us,
		       r->over_100us, r->append_faults, v);
		if (cases[c].kind == K_EDGELOG && r->ok &&
		    (r->st_appended != r->n || r->st_last_seq != r->n))
			printf("%-17s   SUSPICIOUS: status after appends: appended %" PRIu64
			       " last_seq %" PRIu64 " (expected %" PRIu64 ")\n",
			       "", r->st_appended, r->st_last_seq, r->n);
		if (cases[c].kind == K_SQLITE && r->sql_busy_retries)
			printf("%-17s   SQLITE_BUSY retries after busy_timeout: %" PRIu64 "\n", "",
			       r->sql_busy_retries);
	}

	/* The jitter floor: what the same loop shows without edgelog in it. */
	any = 0;
	for (int c = 0; c < C_COUNT; c++)
		any |= results[c].ran && results[c].floor_ran;
	if (any) {
		printf("\n%-17s %8s %9s %9s %10s %10s %8s %6s %7s\n", "jitter floor", "spin us",
		       "p50 us", "p99.9 us", "p99.99 us", "max us", ">100us", ">1ms", "faults");
		for (int c = 0; c < C_COUNT; c++) {
			const struct result *r = &results[c];
			if (!r->ran || !r->floor_ran)
				continue;
			char fa[24] = "-";
			if (!r->fl_interleaved)
				snprintf(fa, sizeof(fa), "%" PRIu64, r->fl_faults);
			printf("%-17s %8.3f %9.3f %9.3f %10.3f %10.3f %8" PRIu64 " %6" PRIu64
			       " %7s\n",
			       case_names[c], r->fl_spin_ns / 1e3, r->fl_p50 / 1e3,
			       r->fl_p999 / 1e3, r->fl_p9999 / 1e3, r->fl_max / 1e3,
			       r->fl_over_100us, r->fl_over_1ms, fa);
		}
		printf("  the same threads, count and pacing timing a spin as long as the median "
		       "append\n  instead of edgelog_append: the machine's own jitter (preemption, "
		       "interrupts).\n  With --rate each spin follows its append in the same "
		       "iteration (faults: -);\n  at full speed the spins run after the appends. "
		       "An append max near the floor's\n  is the scheduler's.\n");
	}

	/* Group commit (sync=always): records per fdatasync against the
	 * threads waiting, and appends/s against the disk's ceiling for that
	 * many waiters (threads / fdatasync latency, both from this run). */
	any = 0;
	for (int c = 0; c < C_COUNT; c++)
		any |= results[c].ran && results[c].ok && cases[c].kind == K_EDGELOG &&
		       cases[c].mode == EDGELOG_SYNC_ALWAYS;
	if (any) {
		printf("\n%-17s %9s %9s %10s %11s %9s %11s %9s %9s %9s\n", "group commit", "syncs",
		       "rec/sync", "/threads", "sync us", "gap us", "ceiling/s", "/ceiling",
		       "ctl gap", "ctl /ceil");
		for (int c = 0; c < C_COUNT; c++) {
			const struct result *r = &results[c];
			double rps, lat_us, ceil;
			if (!r->ran || !r->ok || cases[c].kind != K_EDGELOG ||
			    cases[c].mode != EDGELOG_SYNC_ALWAYS)
				continue;
			if (!r->fds_calls) {
				printf("%-17s   (fdatasync not counted: library linked shared)\n",
				       case_names[c]);
				continue;
			}
			rps = (double)r->n / (double)r->fds_calls;
			lat_us = r->fds_ns / (double)r->fds_calls / 1e3;
			ceil = (double)r->threads / (lat_us / 1e6);
			printf("%-17s %9" PRIu64 " %9.2f %10.2f %11.1f %9.1f %11.0f %9.2f",
			       case_names[c], r->fds_calls, rps, rps / r->threads, lat_us,
			       r->wall_s * 1e6 / (double)r->fds_calls - lat_us, ceil,
			       r->rate / ceil);
			if (r->wc_rounds && r->wc_sleep_ns > 0)
				printf(" %9.1f %9.2f\n",
				       (r->wc_wall_ns / (double)r->wc_rounds - r->wc_sleep_ns) /
					       1e3,
				       (double)r->wc_rounds * r->wc_sleep_ns / r->wc_wall_ns);
			else
				printf(" %9s %9s\n", "-", "-");
		}
		printf("  rec/sync: records / fdatasync calls in the append phase; /threads: that "
		       "over the\n  appending threads (issue 13: >= 0.85); sync us: mean "
		       "fdatasync time measured\n  in the same phase; gap us: append-phase time per "
		       "fdatasync minus that (the disk idle\n  between two); ceiling: threads / "
		       "sync us; /ceiling: appends/s over it (>= 0.8). ctl: the\n  wake control "
		       "run right after (the same threads and rounds, no engine, a sleep of sync "
		       "us\n  for the fdatasync): its gap is the scheduler's floor, its /ceiling "
		       "the most\n  a group commit waking every waiter per fdatasync gets here now.\n");
	}

open_part:
	if (results[C_OPEN].ran) {
		const struct result *r = &results[C_OPEN];
		printf("\nopen1g: ");
		if (!r->ok) {
			printf("FAILED: %s\n", r->err);
		} else {
			printf("%" PRIu64 " records, %.1f MiB on disk in %" PRIu64
			       " files (%" PRIu64 " after the runs)\n",
			       r->o_records, r->o_disk_bytes / 1048576.0, r->o_files,
			       r->o_files_after);
			printf("  edgelog_open, warm cache: median %.3f ms (min %.3f, max %.3f); "
			       "open+close median %.3f ms\n",
			       median(r->o_warm_ms, r->o_runs), vmin(r->o_warm_ms, r->o_runs),
			       vmax(r->o_warm_ms, r->o_runs), median(r->o_warm_oc_ms, r->o_runs));
			printf("  edgelog_open, file pages evicted: median %.3f ms (min %.3f, max "
			       "%.3f); open+close median %.3f ms\n",
			       median(r->o_cold_ms, r->o_runs), vmin(r->o_cold_ms, r->o_runs),
			       vmax(r->o_cold_ms, r->o_runs), median(r->o_cold_oc_ms, r->o_runs));
			printf("  peak RSS over the open/close runs (VmHWM): %.1f MiB\n",
			       r->o_hwm_kb / 1024.0);
		}
	}

	printf("\nratios (appends/s)\n");
	struct {
		int a, b;
	} rs[] = {{C_INTERVAL_1, C_SQL_NORMAL_1}, {C_NONE_1, C_SQL_NORMAL_1},
		  {C_INTERVAL_M, C_SQL_NORMAL_1}, {C_ALWAYS_M, C_SQL_FULL_M},
		  {C_ALWAYS_M, C_SQL_FULL_1},     {C_ALWAYS_1, C_SQL_FULL_1}};
	for (size_t i = 0; i < sizeof(rs) / sizeof(rs[0]); i++) {
		double x = ratio(rs[i].a, rs[i].b);
		if (isfinite(x))
			printf("  %-14s / %-17s %9.1fx\n", case_names[rs[i].a], case_names[rs[i].b],
			       x);
	}
	if (res_if(C_INTERVAL_1) && res_if(C_SQL_NORMAL_1))
		printf("  bytes/record: edgelog %.1f vs SQLite %.1f (%.2fx smaller)\n",
		       bytes_per_rec(res_if(C_INTERVAL_1)), bytes_per_rec(res_if(C_SQL_NORMAL_1)),
		       bytes_per_rec(res_if(C_SQL_NORMAL_1)) / bytes_per_rec(res_if(C_INTERVAL_1)));

	printf("\ntargets (informational)\n");
	for (int i = 0; i < ntargets; i++) {
		const struct target *t = &targets[i];
		int v = target_verdict(t);
		char val[32];
		if (isfinite(t->value))
			snprintf(val, sizeof(val), "%.3f", t->value);
		else
			snprintf(val, sizeof(val), "n/a");
		printf("  %-52s %s %7g %-2s : %12s  %s\n", t->what,
		       t->at_least ? ">=" : "<=", t->limit, t->unit, val,
		       v < 0 ? "not measured" :
		       v     ? "PASS" :
			       "MISS");
	}
	printf("\ntotal %.1f s\n", total_s);
}

static void json_num(FILE *f, double x)
{
	if (isfinite(x))
		fprintf(f, "%.6g", x);
	else
		fputs("null", f);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_arr(FILE *f, const double *v, int n)
{
	fputc('[', f);
	for (int i = 0; i < n; i++) {
		if (i)
			fputc(',', f);
		json_num(f, v[i]);
	}
	fputc(']', f);
}

static void print_json(double total_s, int all_ok)
{
	FILE *f = stdout;
	int first = 1;
	fprintf(f, "{\"bench\":\"bench_append\",\"schema\":%d,\"edgelog_version\":",
		BENCH_JSON_VERSION);
	json_str(f, edgelog_version());
	fprintf(f, ",\"sqlite_version\":");
	json_str(f, sqlite3_libversion());
	fprintf(f, ",\"cpus\":%ld,\"dir\":", sysconf(_SC_NPROCESSORS_ONLN));
	json_str(f, opt.dir);
	fprintf(f, ",\"ok\":%s,\"total_s\":", all_ok ? "true" : "false");
	json_num(f, total_s);
	fprintf(f,
		",\"params\":{\"quick\":%s,\"n\":%" PRIu64 ",\"always_n\":%" PRIu64
		",\"sqlite_n\":%" PRIu64 ",\"sqlite_full_n\":%" PRIu64
		",\"threads\":%d,\"sync_interval_ms\":%u,\"pool\":%u,\"seed\":%" PRIu64
		",\"worker\":%s,\"verify\":%s,\"open_mb\":%" PRIu64 ",\"open_runs\":%d}",
		opt.quick ? "true" : "false", opt.n, opt.always_n, opt.sqlite_n, opt.sqlite_full_n,
		opt.threads, opt.interval_ms, opt.pool, opt.seed, opt.worker ? "true" : "false",
		opt.verify ? "true" : "false", opt.open_mb, opt.open_runs);
	fprintf(f,
		",\"record\":{\"msgpack_avg_bytes\":%.2f,\"msgpack_min_bytes\":%u,"
		"\"msgpack_max_bytes\":%u,\"json_avg_bytes\":%.2f,\"json_min_bytes\":%u,"
		"\"json_max_bytes\":%u}",
		pool.mp_avg, pool.mp_min, pool.mp_max, pool.js_avg, pool.js_min, pool.js_max);

	fprintf(f, ",\"cases\":{");
	for (int c = 0; c < C_COUNT; c++) {
		const struct result *r = &results[c];
		if (!r->ran || c == C_OPEN)
			continue;
		if (!first)
			fputc(',', f);
		first = 0;
		json_str(f, case_names[c]);
		fprintf(f,
			":{\"engine\":\"%s\",\"sync\":\"%s\",\"threads\":%d,\"n\":%" PRIu64
			",\"ok\":%s,\"error\":",
			engine_name(c), cases[c].sync_str, r->threads, r->n,
			r->ok ? "true" : "false");
		if (r->ok)
			fputs("null", f);
		else
			json_str(f, r->err);
		fprintf(f, ",\"wall_s\":");
		json_num(f, r->wall_s);
		fprintf(f, ",\"appends_per_s\":");
		json_num(f, r->rate);
		fprintf(f,
			",\"latency_ns\":{\"min\":%" PRIu64 ",\"mean\":%.1f,\"p50\":%" PRIu64
			",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64
			",\"p9999\":%" PRIu64 ",\"max\":%" PRIu64 "},\"over_10us\":%" PRIu64
			",\"over_100us\":%" PRIu64 ",\"over_1ms\":%" PRIu64
			",\"fdatasync_calls\":%" PRIu64 ",\"fdatasync_ns_total\":%.0f"
			",\"append_faults\":%" PRIu64,
			r->lat_min, r->lat_mean, r->lat_p50, r->lat_p90, r->lat_p99, r->lat_p999,
			r->lat_p9999, r->lat_max, r->over_10us, r->over_100us, r->over_1ms,
			r->fds_calls, r->fds_ns, r->append_faults);
		if (r->wc_rounds)
			fprintf(f,
				",\"wake_control\":{\"rounds\":%" PRIu64
				",\"sleep_ns_mean\":%.0f,\"wall_ns\":%.0f}",
				r->wc_rounds, r->wc_sleep_ns, r->wc_wall_ns);
		if (r->floor_ran)
			fprintf(f,
				",\"floor_ns\":{\"spin\":%" PRIu64 ",\"p50\":%" PRIu64
				",\"p999\":%" PRIu64 ",\"p9999\":%" PRIu64 ",\"max\":%" PRIu64
				",\"over_100us\":%" PRIu64 ",\"over_1ms\":%" PRIu64
				",\"interleaved\":%s,\"faults\":",
				r->fl_spin_ns, r->fl_p50, r->fl_p999, r->fl_p9999, r->fl_max,
				r->fl_over_100us, r->fl_over_1ms,
				r->fl_interleaved ? "true" : "false");
		if (r->floor_ran && r->fl_interleaved)
			fputs("null}", f);
		else if (r->floor_ran)
			fprintf(f, "%" PRIu64 "}", r->fl_faults);
		fprintf(f, ",\"bytes_per_record\":");
		json_num(f, r->n ? (double)r->disk_bytes / (double)r->n : NAN);
		fprintf(f, ",\"apparent_bytes_per_record\":");
		json_num(f, r->n ? (double)r->apparent_bytes / (double)r->n : NAN);
		fprintf(f, ",\"live_bytes_per_record\":");
		json_num(f, r->n ? (double)r->live_disk_bytes / (double)r->n : NAN);
		fprintf(f,
			",\"disk_bytes\":%" PRIu64 ",\"apparent_bytes\":%" PRIu64
			",\"files\":%" PRIu64 ",\"live_disk_bytes\":%" PRIu64
			",\"live_files\":%" PRIu64
			",\"peak_rss_kb\":%ld,\"base_rss_kb\":%ld,\"open_ms\":",
			r->disk_bytes, r->apparent_bytes, r->files, r->live_disk_bytes,
			r->live_files, r->rss_peak_kb, r->rss_base_kb);
		json_num(f, r->open_ms);
		fprintf(f, ",\"close_ms\":");
		json_num(f, r->close_ms);
		if (cases[c].kind == K_EDGELOG)
			fprintf(f,
				",\"status\":{\"appended\":%" PRIu64 ",\"last_seq\":%" PRIu64
				",\"durable_seq\":%" PRIu64 ",\"segments\":%" PRIu64
				",\"size_bytes\":%" PRIu64 "}",
				r->st_appended, r->st_last_seq, r->st_durable_seq, r->st_segments,
				r->st_size_bytes);
		else
			fprintf(f, ",\"busy_retries\":%" PRIu64, r->sql_busy_retries);
		if (r->verified)
			fprintf(f,
				",\"verify\":{\"ok\":%s,\"found\":%" PRIu64 ",\"missing\":%" PRIu64
				",\"duplicate\":%" PRIu64 ",\"mismatch\":%" PRIu64
				",\"unknown\":%" PRIu64 ",\"out_of_order\":%" PRIu64
				",\"corrupt\":%" PRIu64 ",\"bad_seq\":%" PRIu64 "}}",
				r->verify_ok ? "true" : "false", r->v_found, r->v_missing, r->v_dup,
				r->v_mismatch, r->v_unknown, r->v_order, r->v_corrupt,
				r->v_bad_seq);
		else
			fprintf(f, ",\"verify\":null}");
	}
	fputc('}', f);

	fprintf(f, ",\"open1g\":");
	if (!results[C_OPEN].ran) {
		fputs("null", f);
	} else {
		const struct result *r = &results[C_OPEN];
		fprintf(f, "{\"ok\":%s,\"error\":", r->ok ? "true" : "false");
		if (r->ok)
			fputs("null", f);
		else
			json_str(f, r->err);
		fprintf(f,
			",\"records\":%" PRIu64 ",\"disk_bytes\":%" PRIu64
			",\"apparent_bytes\":%" PRIu64 ",\"files\":%" PRIu64
			",\"files_after\":%" PRIu64 ",\"runs\":%d",
			r->o_records, r->o_disk_bytes, r->o_apparent_bytes, r->o_files,
			r->o_files_after, r->o_runs);
		fprintf(f, ",\"warm_open_ms\":");
		json_arr(f, r->o_warm_ms, r->o_runs);
		fprintf(f, ",\"warm_open_median_ms\":");
		json_num(f, median(r->o_warm_ms, r->o_runs));
		fprintf(f, ",\"warm_open_close_median_ms\":");
		json_num(f, median(r->o_warm_oc_ms, r->o_runs));
		fprintf(f, ",\"cold_open_ms\":");
		json_arr(f, r->o_cold_ms, r->o_runs);
		fprintf(f, ",\"cold_open_median_ms\":");
		json_num(f, median(r->o_cold_ms, r->o_runs));
		fprintf(f, ",\"cold_open_close_median_ms\":");
		json_num(f, median(r->o_cold_oc_ms, r->o_runs));
		fprintf(f, ",\"open_peak_rss_kb\":%ld,\"peak_rss_kb\":%ld}", r->o_hwm_kb,
			r->rss_peak_kb);
	}

	fprintf(f, ",\"ratios\":{\"interval_1t_vs_sqlite_normal_1t\":");
	json_num(f, ratio(C_INTERVAL_1, C_SQL_NORMAL_1));
	fprintf(f, ",\"none_1t_vs_sqlite_normal_1t\":");
	json_num(f, ratio(C_NONE_1, C_SQL_NORMAL_1));
	fprintf(f, ",\"interval_mt_vs_sqlite_normal_1t\":");
	json_num(f, ratio(C_INTERVAL_M, C_SQL_NORMAL_1));
	fprintf(f, ",\"always_mt_vs_sqlite_full_mt\":");
	json_num(f, ratio(C_ALWAYS_M, C_SQL_FULL_M));
	fprintf(f, ",\"always_mt_vs_sqlite_full_1t\":");
	json_num(f, ratio(C_ALWAYS_M, C_SQL_FULL_1));
	fprintf(f, ",\"always_1t_vs_sqlite_full_1t\":");
	json_num(f, ratio(C_ALWAYS_1, C_SQL_FULL_1));
	fprintf(f, "},\"targets\":{");
	for (int i = 0; i < ntargets; i++) {
		int v = target_verdict(&targets[i]);
		fprintf(f, "%s\"%s\":{\"value\":", i ? "," : "", targets[i].key);
		json_num(f, targets[i].value);
		fprintf(f, ",\"limit\":%g,\"op\":\"%s\",\"unit\":\"%s\",\"pass\":%s}",
			targets[i].limit, targets[i].at_least ? ">=" : "<=", targets[i].unit,
			v < 0 ? "null" :
			v     ? "true" :
				"false");
	}
	fprintf(f, "}}\n");
}

/* ------------------------------------------------------------------------
 * main
 * ---------------------------------------------------------------------- */
static void usage(FILE *f)
{
	fprintf(f, "usage: bench_append [options]\n"
		   "  --quick            divide every record count by 100 (smoke run)\n"
		   "  --json             print the figures as one JSON object on stdout\n"
		   "  --only LIST        run only these cases (comma-separated names)\n"
		   "  --open             also run open1g (writes ~1 GB, then deletes it)\n"
		   "  --dir D            scratch directory (default ./bench-tmp)\n"
		   "  --n N              records for none/interval cases (default 1000000)\n"
		   "  --always-n N       records for always cases (default 20000)\n"
		   "  --sqlite-n N       records for sqlite-normal-1t (default 100000)\n"
		   "  --sqlite-full-n N  records for sqlite-full cases (default 20000)\n"
		   "  --threads T        threads of the multi-threaded cases (default 4)\n"
		   "  --interval-ms MS   sync_interval_ms for interval cases (default 100)\n"
		   "  --rate R           each thread appends (or inserts) R records/s, paced by\n"
		   "                     absolute sleeps (the device regime), not full speed\n"
		   "  --pool N           distinct records to cycle through (default 4096)\n"
		   "  --seed S           record generator seed (default 42)\n"
		   "  --open-mb MB       size of the open1g directory (default 1024)\n"
		   "  --open-runs R      open/close repetitions in open1g (default 5)\n"
		   "  --no-worker        do not call edgelog_start()\n"
		   "  --no-verify        skip reading the records back\n"
		   "  --no-floor         skip the jitter floor (the append loop timing a spin\n"
		   "                     as long as the median append, after the appends)\n"
		   "  --keep             keep the scratch directories\n"
		   "  --timeout S        per-case limit before the child is killed (default 900)\n"
		   "cases: none-1t none-4t interval-1t interval-4t always-1t always-4t\n"
		   "       sqlite-normal-1t sqlite-full-1t sqlite-full-4t open1g\n");
}

static int selected(int c, int open_default)
{
	if (!opt.only)
		return c != C_OPEN || open_default;
	const char *p = opt.only;
	size_t len = strlen(case_names[c]);
	while (*p) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == len && strncmp(p, case_names[c], len) == 0)
			return 1;
		if (!e)
			break;
		p = e + 1;
	}
	return 0;
}

enum {
	O_QUICK = 256,
	O_JSON,
	O_ONLY,
	O_OPEN,
	O_DIR,
	O_N,
	O_ALWAYS_N,
	O_SQLITE_N,
	O_SQLITE_FULL_N,
	O_THREADS,
	O_INTERVAL,
	O_RATE,
	O_POOL,
	O_SEED,
	O_OPEN_MB,
	O_OPEN_RUNS,
	O_NO_WORKER,
	O_NO_VERIFY,
	O_NO_FLOOR,
	O_KEEP,
	O_TIMEOUT,
};

static const struct option lopts[] = {
	{"quick", no_argument, NULL, O_QUICK},
	{"json", no_argument, NULL, O_JSON},
	{"only", required_argument, NULL, O_ONLY},
	{"open", no_argument, NULL, O_OPEN},
	{"dir", required_argument, NULL, O_DIR},
	{"n", required_argument, NULL, O_N},
	{"always-n", required_argument, NULL, O_ALWAYS_N},
	{"sqlite-n", required_argument, NULL, O_SQLITE_N},
	{"sqlite-full-n", required_argument, NULL, O_SQLITE_FULL_N},
	{"threads", required_argument, NULL, O_THREADS},
	{"interval-ms", required_argument, NULL, O_INTERVAL},
	{"rate", required_argument, NULL, O_RATE},
	{"pool", required_argument, NULL, O_POOL},
	{"seed", required_argument, NULL, O_SEED},
	{"open-mb", required_argument, NULL, O_OPEN_MB},
	{"open-runs", required_argument, NULL, O_OPEN_RUNS},
	{"no-worker", no_argument, NULL, O_NO_WORKER},
	{"no-verify", no_argument, NULL, O_NO_VERIFY},
	{"no-floor", no_argument, NULL, O_NO_FLOOR},
	{"keep", no_argument, NULL, O_KEEP},
	{"timeout", required_argument, NULL, O_TIMEOUT},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

/* The numeric options (bench_num_opt). */
static const struct bench_num nums[] = {
	BENCH_NUM(O_N, "--n", opt.n, 0),
	BENCH_NUM(O_ALWAYS_N, "--always-n", opt.always_n, 0),
	BENCH_NUM(O_SQLITE_N, "--sqlite-n", opt.sqlite_n, 0),
	BENCH_NUM(O_SQLITE_FULL_N, "--sqlite-full-n", opt.sqlite_full_n, 0),
	BENCH_NUM(O_THREADS, "--threads", opt.threads, 0),
	BENCH_NUM(O_INTERVAL, "--interval-ms", opt.interval_ms, 0),
	BENCH_NUM(O_RATE, "--rate", opt.rate, 0),
	BENCH_NUM(O_POOL, "--pool", opt.pool, 0),
	BENCH_NUM(O_SEED, "--seed", opt.seed, 0),
	BENCH_NUM(O_OPEN_MB, "--open-mb", opt.open_mb, 0),
	BENCH_NUM(O_OPEN_RUNS, "--open-runs", opt.open_runs, 0),
	BENCH_NUM(O_TIMEOUT, "--timeout", opt.timeout_s, 0),
};

/* One option of the command line (bench_options). */
static int on_opt(int ch, const char *arg)
{
	if (bench_num_opt("bench_append", nums, sizeof(nums) / sizeof(nums[0]), ch, arg))
		return 0;
	switch (ch) {
	case O_QUICK:
		opt.quick = 1;
		break;
	case O_JSON:
		opt.json = 1;
		break;
	case O_ONLY:
		opt.only = arg;
		break;
	case O_OPEN:
		opt.open = 1;
		break;
	case O_DIR:
		opt.dir = arg;
		break;
	case O_NO_WORKER:
		opt.worker = 0;
		break;
	case O_NO_VERIFY:
		opt.verify = 0;
		break;
	case O_NO_FLOOR:
		opt.floor = 0;
		break;
	case O_KEEP:
		opt.keep = 1;
		break;
	default:
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int rc, all_ok = 1, nsel = 0, done = 0;
	uint64_t t_start;

	if ((rc = bench_options("bench_append", argc, argv, lopts, usage, on_opt)) >= 0)
		return rc;
	if (opt.threads < 1 || opt.threads > 256 || opt.pool < 1 || opt.pool > 1000000 ||
	    opt.open_runs < 1 || opt.open_runs > OPEN_RUNS_MAX || opt.timeout_s < 1) {
		fprintf(stderr,
			"bench_append: --threads 1..256, --pool 1..1000000, --open-runs "
			"1..%d, --timeout >= 1\n",
			OPEN_RUNS_MAX);
		return 2;
	}
	if (opt.quick) {
		opt.n /= 100;
		opt.always_n /= 100;
		opt.sqlite_n /= 100;
		opt.sqlite_full_n /= 100;
		opt.open_mb = opt.open_mb / 100 ? opt.open_mb / 100 : 1;
	}
	for (int c = 0; c < C_COUNT; c++) {
		if (cases[c].kind == K_OPEN)
			snprintf(case_names[c], sizeof(case_names[c]), "%s", cases[c].base);
		else
			snprintf(case_names[c], sizeof(case_names[c]), "%s-%dt", cases[c].base,
				 case_threads(c));
	}
	if (opt.only) {
		/* every name in the list must exist */
		char *list = strdup(opt.only);
		for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
			int found = 0;
			for (int c = 0; c < C_COUNT; c++)
				found |= strcmp(tok, case_names[c]) == 0;
			if (!found) {
				fprintf(stderr, "bench_append: --only: no case named %s\n", tok);
				usage(stderr);
				return 2;
			}
		}
		free(list);
	}
	for (int c = 0; c < C_COUNT; c++) {
		if (!selected(c, opt.open))
			continue;
		if (case_n(c) < (uint64_t)case_threads(c)) {
			fprintf(stderr,
				"bench_append: %s: N=%" PRIu64 " is less than its threads\n",
				case_names[c], case_n(c));
			return 2;
		}
		nsel++;
	}
	if (bench_mkdir_p(opt.dir) != 0) {
		fprintf(stderr, "bench_append: cannot create --dir %s: %s\n", opt.dir,
			strerror(errno));
		return 2;
	}

	pool_build(opt.pool);
	t_start = bench_now_ns();
	for (int c = 0; c < C_COUNT; c++) {
		if (!selected(c, opt.open))
			continue;
		if (c == C_OPEN)
			fprintf(stderr, "[%d/%d] %-17s %" PRIu64 " MiB of segments ...", ++done,
				nsel, case_names[c], opt.open_mb);
		else
			fprintf(stderr, "[%d/%d] %-17s N=%" PRIu64 " threads=%d ...", ++done, nsel,
				case_names[c], case_n(c), case_threads(c));
		run_forked(c, &results[c]);
		const struct result *r = &results[c];
		if (!r->ok)
			fprintf(stderr, " FAILED: %s\n", r->err);
		else if (c == C_OPEN)
			fprintf(stderr, " cold open median %.3f ms\n",
				median(r->o_cold_ms, r->o_runs));
		else
			fprintf(stderr, " %.0f/s p99 %.3f us max %.3f us (floor max %.3f us)%s\n",
				r->rate, r->lat_p99 / 1e3, r->lat_max / 1e3, r->fl_max / 1e3,
				r->verified && !r->verify_ok ? "  VERIFY FAILED" : "");
		if (!r->ok || (r->verified && !r->verify_ok))
			all_ok = 0;
	}
	rmdir(opt.dir); /* only if empty */

	compute_targets();
	double total_s = (double)(bench_now_ns() - t_start) / 1e9;
	if (opt.json)
		print_json(total_s, all_ok);
	else
		print_human(total_s);
	return all_ok ? 0 : 1;
}
