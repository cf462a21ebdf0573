/*
 * bench_wear.c - the steady state of a device logging at a fixed rate, for
 * bench/wear.sh to count what reaches the block device.
 *
 * A device that has run for a while has an uploader acknowledging records
 * and retention removing (or, with segment_reuse, recycling) the segments
 * it has passed. A 30 s run of a fresh directory shows none of that: it
 * writes into the first segment only. So this program first warms the
 * directory up at full speed (append, sync, acknowledge, clean up) until
 * the writer has just started a segment the way it will in the steady
 * state (with reuse on: in a recycled file; off: in a fresh one), then
 * tells the script it is ready (--ready FILE), waits for it to have read
 * the device's counters (--go FILE), and appends --rate records a second
 * for --seconds, acknowledging every durable record every --ack-ms (an
 * uploader that keeps up), with the worker running as in production.
 *
 *   bench_wear --dir D --rate R --seconds S [--interval-ms MS] [--reuse on|off]
 *              [--ack-ms MS] [--ready FILE --go FILE]
 *
 * Prints one line: records, the msgpack record size, segments started in
 * recycled files (files of format version 2 at the end). Exit 0 ok, 1 a
 * call failed, 2 usage.
 */
#include <edgelog.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tool_sample.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rc, edgelog *log)
{
	fprintf(stderr, "bench_wear: %s: %s: %s\n", what, edgelog_strerror(rc),
		edgelog_errmsg(log));
	exit(1);
}

/* The newest segment's base seq and format version (FORMAT.md: bytes 8..11
 * of the header), or 0 when there is none. */
static uint64_t newest_segment(const char *segdir, uint32_t *version, unsigned *v2_files)
{
	DIR *d = opendir(segdir);
	struct dirent *de;
	uint64_t best = 0;
	char path[4300];
	uint8_t h[12];
	int fd;

	*version = 0;
	*v2_files = 0;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		uint64_t b;
		if (n != 24 || strcmp(de->d_name + 20, ".seg"))
			continue;
		b = strtoull(de->d_name, NULL, 10);
		snprintf(path, sizeof(path), "%s/%s", segdir, de->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		if (pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h)) {
			uint32_t v = (uint32_t)h[8] | (uint32_t)h[9] << 8 | (uint32_t)h[10] << 16 |
				     (uint32_t)h[11] << 24;
			*v2_files += v == 2;
			if (b > best) {
				best = b;
				*version = v;
			}
		}
		close(fd);
	}
	closedir(d);
	return best;
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *ready = NULL, *go = NULL, *reuse = "on";
	uint64_t rate = 100, secs = 30, ack_ms = 1000, interval_ms = 100;
	edgelog_config cfg;
	edgelog *log = NULL;
	uint8_t rec[1024];
	uint64_t i = 0, seq = 0, bytes = 0, n, next_ack, t0;
	uint64_t base0 = 0;
	uint32_t ver = 0;
	unsigned v2 = 0;
	char segdir[4200];
	int rc, a;

	for (a = 1; a + 1 < argc; a += 2) {
		if (!strcmp(argv[a], "--dir"))
			dir = argv[a + 1];
		else if (!strcmp(argv[a], "--rate"))
			rate = strtoull(argv[a + 1], NULL, 10);
		else if (!strcmp(argv[a], "--seconds"))
			secs = strtoull(argv[a + 1], NULL, 10);
		else if (!strcmp(argv[a], "--interval-ms"))
			interval_ms = strtoull(argv[a + 1], NULL, 10);
		else if (!strcmp(argv[a], "--ack-ms"))
			ack_ms = strtoull(argv[a + 1], NULL, 10);
		else if (!strcmp(argv[a], "--reuse"))
			reuse = argv[a + 1];
		else if (!strcmp(argv[a], "--ready"))
			ready = argv[a + 1];
		else if (!strcmp(argv[a], "--go"))
			go = argv[a + 1];
		else
			break;
	}
	if (a != argc || !dir || !rate || !secs || !ack_ms ||
	    (strcmp(reuse, "on") && strcmp(reuse, "off")) || !ready != !go) {
		fprintf(stderr, "usage: bench_wear --dir D --rate R --seconds S [--interval-ms MS] "
				"[--reuse on|off] [--ack-ms MS] [--ready FILE --go FILE]\n");
		return 2;
	}
	snprintf(segdir, sizeof(segdir), "%s/segments", dir);
	edgelog_config_init(&cfg);
	cfg.dir = dir;
	cfg.device_id = "bench-wear";
	cfg.sync_interval_ms = (uint32_t)interval_ms;
	cfg.segment_reuse = strcmp(reuse, "on") ? EDGELOG_REUSE_OFF : EDGELOG_REUSE_ON;
	if ((rc = edgelog_open(&log, &cfg)))
		die("edgelog_open", rc, NULL);
	if ((rc = edgelog_start(log)))
		die("edgelog_start", rc, log);

	/* Warm-up: until a roll has just started the kind of segment the
	 * steady state writes (bounded: 40 segments). */
	for (int chunk = 0;; chunk++) {
		uint64_t b;
		for (int k = 0; k < 200; k++, i++) {
			size_t len = tool_sample_msgpack(i, rec, sizeof(rec));
			if ((rc = edgelog_append(log, rec, len, &seq)))
				die("edgelog_append (warm-up)", rc, log);
		}
		if ((rc = edgelog_sync(log)) || (rc = edgelog_ack(log, seq)) ||
		    (rc = edgelog_cleanup(log, 0)))
			die("warm-up sync, ack or cleanup", rc, log);
		b = newest_segment(segdir, &ver, &v2);
		if (base0 && b != base0 && chunk > 3 && (ver == 2 || !strcmp(reuse, "off")))
			break;
		base0 = b;
		if (chunk > 40 * 50) {
			fprintf(stderr, "bench_wear: no %s segment started in the warm-up\n",
				strcmp(reuse, "on") ? "fresh" : "recycled");
			return 1;
		}
	}
	if (ready) {
		FILE *f = fopen(ready, "w");
		if (!f || fclose(f)) {
			perror(ready);
			return 1;
		}
		while (access(go, F_OK))
			usleep(10000);
	}

	n = rate * secs;
	t0 = now_ns();
	next_ack = t0 + ack_ms * 1000000ull;
	for (uint64_t k = 0; k < n; k++, i++) {
		uint64_t due = t0 + k * 1000000000ull / rate, t;
		struct timespec ts = {(time_t)(due / 1000000000ull), (long)(due % 1000000000ull)};
		size_t len = tool_sample_msgpack(i, rec, sizeof(rec));
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		if ((rc = edgelog_append(log, rec, len, &seq)))
			die("edgelog_append", rc, log);
		bytes += len;
		t = now_ns();
		if (t >= next_ack) {
			/* An uploader that keeps up: everything durable is
			 * acknowledged; the worker's retention does the rest. */
			edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
			if ((rc = edgelog_get_status(log, &st)))
				die("edgelog_get_status", rc, log);
			if (st.durable_seq && (rc = edgelog_ack(log, st.durable_seq)))
				die("edgelog_ack", rc, log);
			next_ack = t + ack_ms * 1000000ull;
		}
	}
	if ((rc = edgelog_close(log)))
		die("edgelog_close", rc, NULL);
	newest_segment(segdir, &ver, &v2);
	printf("records %llu, msgpack %.1f B/record, %u recycled segment file(s) at the end\n",
	       (unsigned long long)n, (double)bytes / (double)n, v2);
	return 0;
}
