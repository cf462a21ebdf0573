/*
 * bench_tail.c - where an append's tail latency comes from, and what a
 * staging area would take away: the design experiment of issue 13 part 2.
 *
 * One appending thread stores frame-sized records (--size bytes) at
 * --rate records/s (0: full speed) into a preallocated file on the
 * file system under test, while a sync thread runs every --interval-ms, as
 * edgelog's worker does under sync=interval. Four ways to store, each in
 * the same run on the same file system:
 *
 *   mmap     memcpy into a shared writable mapping of the fallocate'd file
 *            (pre-faulted read-only), fdatasync every interval: edgelog's
 *            segment writer without its redirty step.
 *   redirty  the same, plus MADV_POPULATE_WRITE after each fdatasync over
 *            the tail page and as many bytes as the last interval took:
 *            edgelog's segment writer as it is.
 *   stage    memcpy into a shared mapping of a file on tmpfs (--stage-dir,
 *            default /dev/shm), pre-faulted writable; every --copy-ms the
 *            sync thread pwrite()s the new bytes into the file, and
 *            fdatasyncs it every interval. tmpfs pages are never written
 *            back, so the appender's pages are never write-protected.
 *   pwrite   pwrite() of each record into the fallocate'd file at its
 *            offset (no stores into any mapping), fdatasync every
 *            interval: the page cache is the same one a mapping shares,
 *            so a record is as safe from kill -9 on return as a store.
 *            The file's pages are read into the cache first and stay
 *            mapped read-only (as the segment writer keeps its segment).
 *   pwcold   the same without reading the pages in first: each new page
 *            enters the cache on the pwrite that reaches it.
 *   memory   the control: memcpy into private anonymous memory, pre-faulted;
 *            the other thread wakes every --copy-ms and does nothing. What
 *            stage shows beyond memory is the stage's; what memory shows
 *            is the machine's (stores right after a wake-up, other
 *            threads woken at the same tick).
 *
 * Per way: the appender's page faults (getrusage RUSAGE_THREAD), latency
 * p50/p99/p99.9/p99.99/max and the counts above 10 µs, 100 µs and 1 ms; and
 * the jitter floor: a spin as long as the median store, timed after each
 * store in the same paced iteration (at full speed: after all the stores).
 * Nothing here asserts a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"

/* MADV_POPULATE_READ and _WRITE come from <sys/mman.h> (glibc 2.35 and
 * later; Debian 12 has 2.36). The library's own fallback for older device
 * toolchains is in segments/seg_vfs_posix.c: this program is a Linux
 * experiment built with the benchmarks only. */

enum way {
	W_MMAP,
	W_REDIRTY,
	W_STAGE,
	W_PWRITE,
	W_PWCOLD,
	W_MEMORY,
	W_COUNT
};
static const char *way_names[W_COUNT] = {"mmap", "redirty", "stage", "pwrite", "pwcold", "memory"};

static struct {
	uint64_t n, rate;
	uint32_t size, interval_ms, copy_ms, written;
	const char *dir, *stage_dir, *only;
} opt = {
	.n = 20000,
	.rate = 1000,
	.size = 441, /* the 425-byte sample prediction and its 16-byte frame header */
	.interval_ms = 100,
	.copy_ms = 10,
	.dir = "./bench-tail-tmp",
	.stage_dir = "/dev/shm",
};

static void sleep_until(uint64_t due)
{
	struct timespec ts = {(time_t)(due / 1000000000ull), (long)(due % 1000000000ull)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

struct run {
	enum way way;
	int fd;
	uint8_t *seg;   /* the file's mapping (mmap, redirty) */
	uint8_t *stage; /* the tmpfs mapping (stage) */
	size_t len;
	_Atomic size_t pos; /* bytes stored (published with release) */
	atomic_int stop;
	uint64_t syncs, copies, copy_ns_max, sync_ns_max;
	int err;
};

static void *sync_main(void *arg)
{
	struct run *r = arg;
	uint64_t next_sync = bench_now_ns() + opt.interval_ms * 1000000ull, last_ahead_pos = 0;
	size_t copied = 0;

	while (!atomic_load(&r->stop)) {
		uint64_t t = bench_now_ns(),
			 step = (r->way == W_STAGE || r->way == W_MEMORY ? opt.copy_ms :
									   opt.interval_ms);
		sleep_until(t + step * 1000000ull);
		if (r->way == W_MEMORY)
			continue;
		size_t pos = atomic_load_explicit(&r->pos, memory_order_acquire);
		if (r->way == W_STAGE && pos > copied) {
			/* Whole new bytes, from the tail page that is still being
			 * filled on: the file gets the same bytes at the same
			 * offsets. */
			uint64_t t0 = bench_now_ns();
			ssize_t w = pwrite(r->fd, r->stage + copied, pos - copied, (off_t)copied);
			uint64_t d = bench_now_ns() - t0;
			if (w != (ssize_t)(pos - copied)) {
				r->err = errno ? errno : EIO;
				return NULL;
			}
			copied = pos;
			r->copies++;
			if (d > r->copy_ns_max)
				r->copy_ns_max = d;
		}
		if (bench_now_ns() < next_sync && !atomic_load(&r->stop))
			continue;
		next_sync += opt.interval_ms * 1000000ull;
		{
			uint64_t t0 = bench_now_ns();
			if (fdatasync(r->fd) < 0) {
				r->err = errno;
				return NULL;
			}
			uint64_t d = bench_now_ns() - t0;
			if (d > r->sync_ns_max)
				r->sync_ns_max = d;
			r->syncs++;
		}
		if (r->way == W_REDIRTY) {
			/* As eng_sync.c's redirty_tail: the tail page and what the
			 * last interval took, made writable again here. */
			size_t ahead = pos - last_ahead_pos, start = pos & ~(size_t)4095;
			size_t end = (pos + ahead + 4096) & ~(size_t)4095;
			if (end > r->len)
				end = r->len;
			if (end > start)
				(void)madvise(r->seg + start, end - start, MADV_POPULATE_WRITE);
			last_ahead_pos = pos;
		}
	}
	return NULL;
}

static int run_way(enum way way, uint64_t *lat, uint64_t *fl, const uint8_t *rec)
{
	char path[4096], spath[4096];
	struct run r = {.way = way, .fd = -1};
	pthread_t th;
	uint64_t f0, f1, ff0 = 0, ff1 = 0, start, best, rounds, m = 200;
	size_t len = ((size_t)opt.n * opt.size + 4095) & ~(size_t)4095;
	struct bench_lat s, fs;
	uint8_t *dst;
	int sfd = -1;

	snprintf(path, sizeof(path), "%s/tail-%s.seg", opt.dir, way_names[way]);
	r.fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (r.fd < 0 || posix_fallocate(r.fd, 0, (off_t)len) != 0) {
		fprintf(stderr, "bench_tail: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (opt.written) {
		/* Written blocks, as in a recycled segment (FORMAT.md, "Recycled
		 * segments"): zeros written and synced, so no sync of the run
		 * has an unwritten extent to convert. */
		static const uint8_t zero[65536];
		for (size_t off = 0; off < len; off += sizeof(zero)) {
			size_t k = len - off < sizeof(zero) ? len - off : sizeof(zero);
			if (pwrite(r.fd, zero, k, (off_t)off) != (ssize_t)k) {
				fprintf(stderr, "bench_tail: %s: %s\n", path, strerror(errno));
				return -1;
			}
		}
	}
	fsync(r.fd);
	r.len = len;
	if (way == W_STAGE) {
		snprintf(spath, sizeof(spath), "%s/bench-tail-%d.stage", opt.stage_dir,
			 (int)getpid());
		sfd = open(spath, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (sfd < 0 || ftruncate(sfd, (off_t)len) < 0) {
			fprintf(stderr, "bench_tail: %s: %s\n", spath, strerror(errno));
			return -1;
		}
		r.stage = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
		if (r.stage == MAP_FAILED) {
			fprintf(stderr, "bench_tail: mmap %s: %s\n", spath, strerror(errno));
			return -1;
		}
		(void)madvise(r.stage, len, MADV_POPULATE_WRITE);
		dst = r.stage;
	} else if (way == W_MEMORY) {
		r.stage =
			mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (r.stage == MAP_FAILED) {
			fprintf(stderr, "bench_tail: mmap %zu anonymous bytes: %s\n", len,
				strerror(errno));
			return -1;
		}
		memset(r.stage, 0, len);
		dst = r.stage;
	} else if (way == W_PWCOLD) {
		dst = NULL;
	} else {
		r.seg = mmap(NULL, len, PROT_READ | (way == W_PWRITE ? 0 : PROT_WRITE), MAP_SHARED,
			     r.fd, 0);
		if (r.seg == MAP_FAILED) {
			fprintf(stderr, "bench_tail: mmap %s: %s\n", path, strerror(errno));
			return -1;
		}
		(void)madvise(r.seg, len, MADV_POPULATE_READ);
		dst = r.seg;
	}
	best = bench_spin_calibrate(); /* for the floor */
	pthread_create(&th, NULL, sync_main, &r);

	f0 = bench_thread_faults();
	start = bench_now_ns();
	for (uint64_t i = 0; i < opt.n; i++) {
		uint64_t t0, t1;
		size_t pos = (size_t)i * opt.size;
		if (opt.rate)
			sleep_until(start + i * 1000000000ull / opt.rate);
		t0 = bench_now_ns();
		if (way == W_PWRITE || way == W_PWCOLD) {
			if (pwrite(r.fd, rec, opt.size, (off_t)pos) != (ssize_t)opt.size) {
				fprintf(stderr, "bench_tail: %s: pwrite at %zu: %s\n",
					way_names[way], pos, strerror(errno));
				atomic_store(&r.stop, 1);
				pthread_join(th, NULL);
				return -1;
			}
		} else {
			memcpy(dst + pos, rec, opt.size);
		}
		atomic_store_explicit(&r.pos, pos + opt.size, memory_order_release);
		t1 = bench_now_ns();
		lat[i] = t1 - t0;
		if (opt.rate) {
			/* The floor, interleaved: a spin as long as the running
			 * median store (a step of 1/32 towards each sample), in
			 * the same paced iteration. */
			uint64_t step = m / 32 + 1;
			t0 = bench_now_ns();
			bench_spin(m * 100000 / best);
			fl[i] = bench_now_ns() - t0;
			m = lat[i] > m ? m + step : m > step ? m - step : 1;
		}
	}
	f1 = bench_thread_faults();
	atomic_store(&r.stop, 1);
	pthread_join(th, NULL);
	if (r.err) {
		fprintf(stderr, "bench_tail: %s: sync thread: %s\n", way_names[way],
			strerror(r.err));
		return -1;
	}
	if (way == W_STAGE) {
		/* The last copy: the file must hold every byte the stage did. */
		size_t pos = atomic_load(&r.pos);
		if (pwrite(r.fd, r.stage, pos, 0) != (ssize_t)pos || fdatasync(r.fd) < 0) {
			fprintf(stderr, "bench_tail: final copy: %s\n", strerror(errno));
			return -1;
		}
	}

	if (opt.rate) {
		fs = bench_lat_of(fl, opt.n);
		s = bench_lat_of(lat, opt.n);
	} else {
		/* Full speed: the floor after the stores, the same loop, a spin
		 * as long as the median store. */
		s = bench_lat_of(lat, opt.n);
		rounds = s.p50 * 100000 / best;
		ff0 = bench_thread_faults();
		for (uint64_t i = 0; i < opt.n; i++) {
			uint64_t t0 = bench_now_ns();
			bench_spin(rounds);
			fl[i] = bench_now_ns() - t0;
		}
		ff1 = bench_thread_faults();
		fs = bench_lat_of(fl, opt.n);
	}

	{
		char ffa[24] = "-";
		if (!opt.rate)
			snprintf(ffa, sizeof(ffa), "%" PRIu64, ff1 - ff0);
		printf("%-8s %7" PRIu64 " %8.3f %8.3f %9.3f %10.3f %10.3f %7" PRIu64 " %7" PRIu64
		       " %5" PRIu64 " | %9.3f %10.3f %6" PRIu64 " %6s | %6" PRIu64 " %8.1f %8.1f\n",
		       way_names[way], f1 - f0, s.p50 / 1e3, s.p99 / 1e3, s.p999 / 1e3,
		       s.p9999 / 1e3, s.max / 1e3, s.over_10us, s.over_100us, s.over_1ms,
		       fs.p9999 / 1e3, fs.max / 1e3, fs.over_100us, ffa, r.syncs,
		       r.sync_ns_max / 1e6, r.copy_ns_max / 1e6);
	}
	fflush(stdout);

	if (r.seg)
		munmap(r.seg, len);
	if (r.stage)
		munmap(r.stage, len);
	if (sfd >= 0) {
		close(sfd);
		unlink(spath);
	}
	close(r.fd);
	unlink(path);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_tail [options]\n"
		"  --n N            records per way (default 20000)\n"
		"  --rate R         records/s, paced by absolute sleeps; 0: full speed\n"
		"                   (default 1000)\n"
		"  --size B         bytes per record (default 441: the sample prediction\n"
		"                   and its frame header)\n"
		"  --interval-ms M  fdatasync every M ms (default 100)\n"
		"  --copy-ms M      stage: copy into the file every M ms (default 10)\n"
		"  --dir D          directory on the file system under test\n"
		"                   (default ./bench-tail-tmp)\n"
		"  --stage-dir D    tmpfs directory of the stage (default /dev/shm)\n"
		"  --written 1      write the file's blocks (zeros, synced) before the run, as\n"
		"                   a recycled segment's are (default 0: fallocate'd, unwritten)\n"
		"  --only LIST      ways to run, comma-separated:\n"
		"                   mmap,redirty,stage,pwrite,pwcold,memory\n");
}

static const struct option lo[] = {
	{"n", required_argument, NULL, 'n'},
	{"rate", required_argument, NULL, 'r'},
	{"size", required_argument, NULL, 's'},
	{"interval-ms", required_argument, NULL, 'i'},
	{"copy-ms", required_argument, NULL, 'c'},
	{"dir", required_argument, NULL, 'd'},
	{"stage-dir", required_argument, NULL, 'S'},
	{"only", required_argument, NULL, 'o'},
	{"written", required_argument, NULL, 'w'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

/* The numeric options (bench_num_opt). */
static const struct bench_num nums[] = {
	BENCH_NUM('n', "--n", opt.n, 1),
	BENCH_NUM('r', "--rate", opt.rate, 0),
	BENCH_NUM('s', "--size", opt.size, 1),
	BENCH_NUM('i', "--interval-ms", opt.interval_ms, 1),
	BENCH_NUM('c', "--copy-ms", opt.copy_ms, 1),
	BENCH_NUM('w', "--written", opt.written, 0),
};

/* One option of the command line (bench_options). */
static int on_opt(int ch, const char *arg)
{
	if (bench_num_opt("bench_tail", nums, sizeof(nums) / sizeof(nums[0]), ch, arg))
		return 0;
	switch (ch) {
	case 'd':
		opt.dir = arg;
		break;
	case 'S':
		opt.stage_dir = arg;
		break;
	case 'o':
		opt.only = arg;
		break;
	default:
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t *lat, *fl;
	uint8_t *rec;
	int rc = bench_options("bench_tail", argc, argv, lo, usage, on_opt);

	if (rc >= 0)
		return rc;
	rc = 0; /* 1 if a way fails */
	if (bench_mkdir_p(opt.dir) < 0) {
		fprintf(stderr, "bench_tail: --dir %s: %s\n", opt.dir, strerror(errno));
		return 2;
	}
	lat = malloc(opt.n * sizeof(*lat));
	fl = malloc(opt.n * sizeof(*fl));
	rec = malloc(opt.size);
	if (!lat || !fl || !rec) {
		fprintf(stderr, "bench_tail: out of memory for %" PRIu64 " records\n", opt.n);
		return 2;
	}
	memset(lat, 0xff, opt.n * sizeof(*lat));
	memset(fl, 0xff, opt.n * sizeof(*fl));
	for (uint32_t i = 0; i < opt.size; i++)
		rec[i] = (uint8_t)(i * 131 + 7);

	{
		char pace[64] = "full speed";
		if (opt.rate)
			snprintf(pace, sizeof(pace), "%" PRIu64 "/s", opt.rate);
		printf("bench_tail: %" PRIu64 " records of %u B at %s, fdatasync every %u ms, "
		       "dir %s (%s blocks), stage %s\n",
		       opt.n, opt.size, pace, opt.interval_ms, opt.dir,
		       opt.written ? "written" : "unwritten", opt.stage_dir);
	}
	printf("%-8s %7s %8s %8s %9s %10s %10s %7s %7s %5s | %9s %10s %6s %6s | %6s %8s %8s\n",
	       "way", "faults", "p50 us", "p99 us", "p99.9 us", "p99.99 us", "max us", ">10us",
	       ">100us", ">1ms", "floor .01", "floor max", ">100us", "faults", "syncs", "sync ms",
	       "copy ms");
	for (int w = 0; w < W_COUNT; w++) {
		if (opt.only && !strstr(opt.only, way_names[w]))
			continue;
		if (run_way((enum way)w, lat, fl, rec) < 0)
			rc = 1;
	}
	printf("faults: the appending thread's page faults while storing; floor: a spin as long "
	       "as the median\nstore, after each store in the same paced iteration (at full "
	       "speed: after all stores,\nthen its own faults are counted) (floor .01: its "
	       "p99.99); sync/copy ms: the slowest\nfdatasync / pwrite.\n");
	rmdir(opt.dir);
	free(lat);
	free(fl);
	free(rec);
	return rc;
}
