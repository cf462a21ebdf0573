/*
 * bench_pagefloor.c - what the machine charges for the first store into a
 * page of a shared file mapping, the floor under every append that crosses
 * into a new page (one append in about nine for the 444-byte sample).
 *
 * For each way of preparing the mapping, one 424-byte store (a frame) is
 * timed at the start of every page of a fresh, fully allocated file, in
 * page order, as the writer fills a segment:
 *
 *   fresh           nothing done: the store takes the page fault;
 *   populated       MADV_POPULATE_WRITE first (what the worker does for a
 *                   spare): no fault in the kernel's page tables;
 *   populated+read  that, then another thread, on another CPU where there
 *                   is one, reads a byte of every page;
 *   stored          every page stored into once before: the warm cost.
 *
 * On bare metal "populated" costs about what "stored" does (a TLB fill).
 * Under a hypervisor that shadows the guest's page tables, the first
 * user-space access still exits to the hypervisor; "populated+read" shows
 * whether an access by another thread pays it for the appender. Prints
 * nearest-rank figures in ns; asserts nothing.
 *
 *   bench_pagefloor [--pages N] [--dir D]
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench_common.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define FRAME 424

enum {
	FRESH,
	POPULATED,
	POPULATED_READ,
	STORED,
	WAYS
};

static const char *const way_name[WAYS] = {"fresh", "populated", "populated+read", "stored"};

static uint64_t n_pages = 16384;
static const char *dir = ".";

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_pagefloor [--pages N] [--dir D]\n"
		   "  --pages N  pages stored into per way (16384: 64 MiB of 4 KiB pages)\n"
		   "  --dir D    where the scratch file goes (.): the file system to measure\n");
}

static int on_opt(int ch, const char *arg)
{
	if (ch == 'p') {
		n_pages = bench_u64_arg("bench_pagefloor", "--pages", arg, 1);
		return 0;
	}
	if (ch == 'd') {
		dir = arg;
		return 0;
	}
	return 1;
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu >= sysconf(_SC_NPROCESSORS_ONLN))
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void)sched_setaffinity(0, sizeof(set), &set);
}

struct span {
	const unsigned char *p;
	size_t len, page;
};

static void *read_pages(void *arg)
{
	const struct span *s = arg;
	size_t off;

	pin(1);
	for (off = 0; off < s->len; off += s->page)
		(void)*(const volatile unsigned char *)(s->p + off);
	return NULL;
}

/* One way: prepare a fresh mapping, then time a frame's store into each
 * page. Returns 0; 1 after printing why; or -errno of the populate. */
static int run_way(int way, const char *path, size_t page, uint64_t *lat)
{
	size_t len = (size_t)n_pages * page;
	unsigned char frame[FRAME], *m;
	uint64_t i;
	int fd, rc = 0;

	memset(frame, 0x5a, sizeof(frame));
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || posix_fallocate(fd, 0, (off_t)len) != 0) {
		fprintf(stderr, "bench_pagefloor: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		fprintf(stderr, "bench_pagefloor: mmap %s: %s\n", path, strerror(errno));
		close(fd);
		return 1;
	}
	if (way != FRESH && madvise(m, len, MADV_POPULATE_WRITE) < 0)
		rc = -errno; /* EINVAL: a kernel before 5.14 */
	if (!rc && way == POPULATED_READ) {
		struct span s = {m, len, page};
		pthread_t t;

		if (pthread_create(&t, NULL, read_pages, &s) == 0)
			pthread_join(t, NULL);
	}
	if (!rc && way == STORED)
		for (i = 0; i < n_pages; i++)
			m[i * page] = 1;
	for (i = 0; !rc && i < n_pages; i++) {
		uint64_t t0 = bench_now_ns();
		memcpy(m + i * page + 64, frame, sizeof(frame));
		lat[i] = bench_now_ns() - t0;
	}
	munmap(m, len);
	close(fd);
	unlink(path);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"pages", required_argument, NULL, 'p'},
					   {"dir", required_argument, NULL, 'd'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	long ps = sysconf(_SC_PAGESIZE);
	size_t page = ps > 0 ? (size_t)ps : 4096;
	char path[4200];
	uint64_t *lat;
	int r, way;

	if ((r = bench_options("bench_pagefloor", argc, argv, lo, usage, on_opt)) >= 0)
		return r;
	snprintf(path, sizeof(path), "%s/pagefloor.%ld", dir, (long)getpid());
	lat = malloc(n_pages * sizeof(*lat));
	if (!lat) {
		fprintf(stderr, "bench_pagefloor: out of memory\n");
		return 1;
	}
	memset(lat, 0, n_pages * sizeof(*lat));
	pin(0);
	printf("first %d-byte store into each of %llu pages of %zu bytes (ns)\n", FRAME,
	       (unsigned long long)n_pages, page);
	printf("%-16s %8s %8s %8s %8s %8s\n", "way", "p10", "p50", "p90", "p99", "max");
	for (way = 0; way < WAYS; way++) {
		struct bench_lat f;

		if ((r = run_way(way, path, page, lat)) < 0) {
			printf("%-16s MADV_POPULATE_WRITE: %s\n", way_name[way], strerror(-r));
			continue;
		}
		if (r) {
			free(lat);
			return 1;
		}
		f = bench_lat_of(lat, n_pages);
		printf("%-16s %8llu %8llu %8llu %8llu %8llu\n", way_name[way],
		       (unsigned long long)bench_pct(lat, n_pages, 10), (unsigned long long)f.p50,
		       (unsigned long long)f.p90, (unsigned long long)f.p99,
		       (unsigned long long)f.max);
	}
	free(lat);
	return 0;
}
