/*
 * tool_demo.c - `edgelog demo`: the README's first command.
 *
 * A writer process appends predictions as fast as an inference loop could
 * produce them and reports every sequence number edgelog_append() returned.
 * The demo kills it with SIGKILL mid-stream, reopens the directory and
 * checks, byte for byte, that every record the writer was told was stored
 * is there. Then it appends more, to show the log carries on.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <edgelog.h>

#include "tool.h"
#include "tool_sample.h"

static const char DEMO_USAGE[] =
	"usage: edgelog demo [--dir DIR] [--seconds S]\n"
	"\n"
	"Appends sample predictions to DIR (default ./demo-data, emptied first), kills the\n"
	"writer with SIGKILL after S seconds (default 2), reopens DIR and checks that every\n"
	"record edgelog_append() accepted is there, byte for byte. Needs no network.\n";

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

int tool_demo(int argc, char **argv)
{
	const char *dir = "./demo-data";
	unsigned long long secs = 2;
	uint64_t *acked = NULL, n_acked = 0, cap = 0, got, extra = 0, lost = 0, mismatched = 0;
	uint8_t want[1024];
	int pfd[2], i, rc, status;
	double t0, next_print;
	pid_t pid;
	edgelog_config cfg;
	edgelog_status st;
	edgelog_reader *r;
	edgelog_record rec;
	edgelog *log;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			dir = argv[++i];
		} else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			if (tool_parse_u64("demo", "--seconds", argv[++i], &secs))
				return TOOL_USAGE;
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
		/* Name the binary as it can be run from here. */
		char self[4096];
		ssize_t k = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (k <= 0)
			strcpy(self, "edgelog");
		else
			self[k] = '\0';
		printf("\nRESULT: nothing lost. Inspect it:\n  %s dump %s | tail\n  %s dump --verify "
		       "%s\n",
		       self, dir, self, dir);
	}
	return TOOL_OK;
}
