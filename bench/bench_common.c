/*
 * bench_common.c - the pieces every benchmark program shares (see
 * bench_common.h).
 */
#include "bench_common.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

int bench_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

uint64_t bench_pct(const uint64_t *sorted, uint64_t n, double p)
{
	uint64_t rank;

	if (n == 0)
		return 0;
	rank = (uint64_t)ceil(p / 100.0 * (double)n - 1e-6);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

struct bench_lat bench_lat_of(uint64_t *v, uint64_t n)
{
	struct bench_lat s = {0};
	double sum = 0;

	if (n == 0)
		return s;
	for (uint64_t i = 0; i < n; i++) {
		sum += (double)v[i];
		s.over_10us += v[i] > 10000;
		s.over_100us += v[i] > 100000;
		s.over_1ms += v[i] > 1000000;
	}
	qsort(v, n, sizeof(*v), bench_cmp_u64);
	s.mean = sum / (double)n;
	s.min = v[0];
	s.p50 = bench_pct(v, n, 50);
	s.p90 = bench_pct(v, n, 90);
	s.p99 = bench_pct(v, n, 99);
	s.p999 = bench_pct(v, n, 99.9);
	s.p9999 = bench_pct(v, n, 99.99);
	s.max = v[n - 1];
	return s;
}

static uint64_t spin_sink;

void bench_spin(uint64_t k)
{
	uint64_t x = spin_sink;
	for (uint64_t i = 0; i < k; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		__asm__ volatile("" : "+r"(x));
	}
	spin_sink = x;
}

uint64_t bench_spin_calibrate(void)
{
	uint64_t best = UINT64_MAX;

	for (int k = 0; k < 5; k++) {
		uint64_t t0 = bench_now_ns();
		bench_spin(100000);
		uint64_t d = bench_now_ns() - t0;
		if (d < best)
			best = d;
	}
	return best ? best : 1;
}

uint64_t bench_thread_faults(void)
{
	struct rusage ru;
	getrusage(RUSAGE_THREAD, &ru);
	return (uint64_t)(ru.ru_minflt + ru.ru_majflt);
}

uint64_t bench_u64_arg(const char *prog, const char *name, const char *s, uint64_t min)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-') {
		fprintf(stderr, "%s: %s: not a number: %s\n", prog, name, s);
		exit(2);
	}
	if (v < min) {
		fprintf(stderr, "%s: %s: at least %" PRIu64 ": %s\n", prog, name, min, s);
		exit(2);
	}
	return v;
}

int bench_num_opt(const char *prog, const struct bench_num *nums, size_t n, int ch, const char *arg)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v;
		uint32_t v32;
		if (nums[i].id != ch)
			continue;
		v = bench_u64_arg(prog, nums[i].name, arg, nums[i].min);
		v32 = (uint32_t)v;
		if (nums[i].size == sizeof(v))
			memcpy(nums[i].to, &v, sizeof(v));
		else if (nums[i].size == sizeof(v32))
			memcpy(nums[i].to, &v32, sizeof(v32));
		else
			abort(); /* a field of another size: a mistake in the table */
		return 1;
	}
	return 0;
}

int bench_options(const char *prog, int argc, char **argv, const struct option *lo,
		  void (*usage)(FILE *), int (*on_opt)(int ch, const char *arg))
{
	int ch;

	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (ch == 'h') {
			usage(stdout);
			return 0;
		}
		if (on_opt(ch, optarg) != 0) {
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument: %s\n", prog, argv[optind]);
		usage(stderr);
		return 2;
	}
	return -1;
}

int bench_mkdir_p(const char *path)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			if (mkdir(buf, 0755) != 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	}
	if (mkdir(buf, 0755) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void bench_rm_rf(const char *path)
{
	nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}
