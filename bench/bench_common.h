/*
 * bench_common.h - what the benchmark programs in bench/ share: the clock,
 * nearest-rank latency figures, the jitter floor's spin, numeric options,
 * scratch directories. Plain POSIX: bench_tail links nothing else.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* CLOCK_MONOTONIC in ns. Inline: it brackets every timed call. */
static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* qsort comparator of uint64_t. */
int bench_cmp_u64(const void *a, const void *b);

/* Nearest-rank percentile p (0..100] of sorted[0..n): the value at rank
 * ceil(p/100 * n), 1 <= rank <= n (with 1e-6 of slack, so that 99.9 % of
 * 2000 is rank 1998 and not 1999 for a rounding error). 0 if n is 0. */
uint64_t bench_pct(const uint64_t *sorted, uint64_t n, double p);

/* Latency figures of n samples in ns. */
struct bench_lat {
	uint64_t min, p50, p90, p99, p999, p9999, max;
	double mean;
	uint64_t over_10us, over_100us, over_1ms;
};

/* Sorts v[0..n] in place and returns its figures (all 0 if n is 0). */
struct bench_lat bench_lat_of(uint64_t *v, uint64_t n);

/* k rounds of a multiply-add the compiler cannot fold away: the jitter
 * floor's stand-in for a call of the same length. */
void bench_spin(uint64_t k);

/* ns of bench_spin(100000): the fastest of five (the others may have been
 * preempted); at least 1. */
uint64_t bench_spin_calibrate(void);

/* The page faults (minor + major) of the calling thread so far. */
uint64_t bench_thread_faults(void);

/* Option NAME's value S as a decimal uint64_t of at least MIN; on anything
 * else prints "PROG: NAME: ..." to stderr and exits 2. */
uint64_t bench_u64_arg(const char *prog, const char *name, const char *s, uint64_t min);

/* A numeric option: getopt_long's value id, its name for messages, the
 * field its number goes into (4 or 8 bytes: uint32_t, int, uint64_t) and
 * the least number it takes. */
struct bench_num {
	int id;
	const char *name;
	void *to;
	size_t size;
	uint64_t min;
};
#define BENCH_NUM(id, name, field, min)                \
	{                                              \
		id, name, &(field), sizeof(field), min \
	}

/* If ch is the id of one of nums[0..n]: its number (bench_u64_arg) into its
 * field, and 1; else 0. */
int bench_num_opt(const char *prog, const struct bench_num *nums, size_t n, int ch,
		  const char *arg);

/* The command line: getopt_long over lo (short option "h"; lo maps "help"
 * to 'h'), on_opt(ch, optarg) for every other option, 0 when it took it.
 * Returns -1 when every argument was taken; 0 after --help (usage(stdout));
 * 2 after a usage error: an option on_opt refused or getopt did not know,
 * an operand ("PROG: unexpected argument: X"), then usage(stderr). */
int bench_options(const char *prog, int argc, char **argv, const struct option *lo,
		  void (*usage)(FILE *), int (*on_opt)(int ch, const char *arg));

/* mkdir -p with mode 0755: 0, or -1 with errno set. */
int bench_mkdir_p(const char *path);

/* rm -rf of path (nothing to do if it is missing). */
void bench_rm_rf(const char *path);

#endif
