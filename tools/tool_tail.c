/*
 * tool_tail.c - `edgelog tail` / `segtail`: the last N records of a buffer
 * directory, then (-f) every record appended after them, across segment
 * rolls, while an engine writes. Read-only and lock-free, like dump, and
 * printing the same lines as dump for the same record.
 *
 * Finding the last N does not read the backlog: the segment files are named
 * by base seq, so the records are counted segment by segment from the
 * newest backwards until there are N, and a reader opens at that segment.
 *
 * Following: the engine appends by copying into a memory-mapped file,
 * which raises no inotify event, so the loop wakes every TAIL_POLL_MS
 * whatever happens and asks the reader again (it returns EOF at the
 * current end and sees later appends on the next call). inotify on
 * segments/ only makes a roll or a write(2) show up sooner; without it the
 * timer alone does the work.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <edgelog.h>

#include "tool.h"

#define TAIL_POLL_MS 100

static const char TAIL_USAGE[] =
	"usage: edgelog tail [OPTIONS] DIR      (also: segtail [OPTIONS] DIR)\n"
	"\n"
	"Prints the last records of the edgelog directory DIR (or a directory of segment\n"
	"files) in the format of `edgelog dump`, then with -f every record appended after\n"
	"them, across segment rolls, while an engine writes. Reads only; takes no lock.\n"
	"\n"
	"  -n N          the last N records (default 10; 0: none, only new ones with -f)\n"
	"  -f, --follow  keep reading new records until SIGINT, SIGTERM or the reader of\n"
	"                the output goes away (all three: exit 0)\n"
	"  --json        one record per line: {\"device_id\",\"seq\",\"ts\",\"data\"}\n"
	"  --full        the table's RECORD column whole (default: cut to the\n"
	"                terminal's width; whole when output is not a terminal)\n"
	"  --from SEQ    start at this sequence number instead of the last N\n"
	"  --device-id ID  device_id for --json (default: $EDGELOG_DEVICE_ID, the id stored in the directory, the host name)\n"
	"  -h, --help    this text\n"
	"\n"
	"Damaged frames are skipped and reported on stderr with segment and byte offset.\n"
	"Exit: 0 success; 1 damage was skipped (without -f) or reading failed; 2 usage error.\n";

typedef struct tail_ctx {
	int json;
	const char *device;
	unsigned long long damaged;
	int have_cursor;
	uint64_t acked_seq;
	const char *dir;
	int out_err; /* errno of a failed write to stdout; EPIPE: reader gone */
} tail_ctx;

static volatile sig_atomic_t tail_stop;

static void on_signal(int sig)
{
	(void)sig;
	tail_stop = 1;
}

static void on_corrupt(void *payload, const char *segment, uint64_t offset, uint64_t length,
		       const char *reason)
{
	tail_ctx *c = payload;
	c->damaged++;
	fprintf(stderr, "edgelog tail: damaged: %s bytes %llu..%llu (%llu bytes): %s\n", segment,
		(unsigned long long)offset, (unsigned long long)(offset + length),
		(unsigned long long)length, reason);
}

/* The cursor tells acked from pending in the table (as dump shows it). */
static void load_cursor(tail_ctx *c)
{
	if (c->json)
		return;
	c->have_cursor = edgelog_dir_acked_seq(c->dir, &c->acked_seq) == 0;
}

static int print_header(tail_ctx *c)
{
	if (c->json)
		return 0;
	errno = 0;
	if (tool_table_header(stdout)) {
		c->out_err = errno ? errno : EIO;
		return -1;
	}
	return 0;
}

/* One record, as `edgelog dump` prints it. 0, or -1 when stdout failed. */
static int print_record(tail_ctx *c, const edgelog_record *rec)
{
	int k = tool_print_record("tail", rec, c->json, c->device,
				  !c->have_cursor          ? "-" :
				  rec->seq <= c->acked_seq ? "acked" :
							     "pending");

	if (k == 1)
		c->damaged++;
	else if (k)
		c->out_err = k == -1 ? ENOMEM : errno ? errno : EIO;
	return k < 0 ? -1 : 0;
}

/* Records with base <= seq < hi, read from the segment based at `base`
 * (damage is not reported here: the printing pass reports it). */
static int count_segment(const char *dir, uint64_t base, uint64_t hi, uint64_t *out)
{
	edgelog_reader *r;
	edgelog_record rec;
	uint64_t n = 0;
	int rc;

	if ((rc = edgelog_reader_open(&r, dir, base)))
		return rc;
	while ((rc = edgelog_reader_next(r, &rec)) == 0 && rec.seq < hi)
		n++;
	edgelog_reader_close(r);
	if (rc != 0 && rc != EDGELOG_EOF)
		return rc;
	*out = n;
	return 0;
}

/*
 * Where the last `want` records start: the base of the segment to open a
 * reader at, and how many records to pass over from there. Counts whole
 * segments from the newest backwards, so it reads about `want` records'
 * worth of segments (at least the newest one), never the whole backlog.
 */
typedef struct start_ctx {
	const char *dir;
	uint64_t want, total, base, hi;
	uint64_t *bases;
	size_t n, cap;
	int rc;
} start_ctx;

static int add_base(void *payload, const char *segment, uint64_t base_seq, uint64_t file_bytes)
{
	start_ctx *s = payload;

	(void)segment;
	(void)file_bytes;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint64_t *g = realloc(s->bases, cap * sizeof(*g));
		if (!g) {
			s->rc = EDGELOG_ENOMEM;
			return 1;
		}
		s->bases = g;
		s->cap = cap;
	}
	s->bases[s->n++] = base_seq;
	return 0;
}

static int find_start(const char *dir, uint64_t want, uint64_t *base, uint64_t *skip)
{
	start_ctx s;
	uint64_t total = 0, n;
	size_t i;
	int rc;

	memset(&s, 0, sizeof(s));
	*base = 0;
	*skip = 0;
	if ((rc = edgelog_list_segments(dir, add_base, &s)) < 0 || (rc = s.rc)) {
		fprintf(stderr, "edgelog tail: %s\n",
			rc == EDGELOG_ENOMEM ? "out of memory" : edgelog_errmsg(NULL));
		free(s.bases);
		return rc;
	}
	rc = 0;
	for (i = s.n; i-- > 0;) {
		rc = count_segment(dir, s.bases[i], i + 1 < s.n ? s.bases[i + 1] : UINT64_MAX, &n);
		if (rc) {
			fprintf(stderr, "edgelog tail: %s\n", edgelog_errmsg(NULL));
			break;
		}
		total += n;
		*base = s.bases[i];
		if (total >= want)
			break;
	}
	free(s.bases);
	*skip = total > want ? total - want : 0;
	return rc;
}

/* The directory holding the segment files: DIR/segments in an edgelog
 * directory (as the reader decides), else DIR itself if it holds any. */
static int resolve_segdir(const char *dir, char *segdir, size_t n)
{
	struct stat st;

	if (stat(dir, &st) != 0)
		return tool_fail("tail", TOOL_USAGE, "%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return tool_fail("tail", TOOL_USAGE,
				 "%s: not a directory (for one segment file use `edgelog dump`)",
				 dir);
	if ((size_t)snprintf(segdir, n, "%s/segments", dir) >= n)
		return tool_fail("tail", TOOL_USAGE, "%s: path too long", dir);
	if (stat(segdir, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	if (edgelog_list_segments(dir, NULL, NULL) <= 0)
		return tool_fail("tail", TOOL_USAGE,
				 "%s: not an edgelog directory (no segments/ and no segment files)",
				 dir);
	snprintf(segdir, n, "%s", dir);
	return 0;
}

/* End of output: 0 if the reader went away or we were told to stop,
 * else report the write error. */
static int output_end(tail_ctx *c)
{
	if (c->out_err == EPIPE || (c->out_err == EINTR && tail_stop))
		return TOOL_OK;
	return tool_fail("tail", TOOL_PROBLEM, "write to standard output: %s",
			 strerror(c->out_err));
}

static int flush_out(tail_ctx *c)
{
	errno = 0;
	if (fflush(stdout) != 0) {
		c->out_err = errno ? errno : EIO;
		return -1;
	}
	return 0;
}

/* Wait for news: an inotify event, the poll interval, a signal, or the
 * reader of a pipe on stdout closing it. Returns 1 when it is time to
 * stop (the output is gone), else 0. */
static int wait_news(int ino, int watch_out)
{
	struct pollfd p[2];
	nfds_t n = 0;
	int inop = -1, outp = -1;
	char buf[4096];

	if (ino >= 0) {
		p[n].fd = ino;
		p[n].events = POLLIN;
		p[n].revents = 0;
		inop = (int)n++;
	}
	if (watch_out) {
		/* A pipe's write end reports POLLERR once no one can read it:
		 * that ends `segtail -f | head` even when nothing is appended. */
		p[n].fd = STDOUT_FILENO;
		p[n].events = 0;
		p[n].revents = 0;
		outp = (int)n++;
	}
	if (poll(p, n, TAIL_POLL_MS) <= 0)
		return 0; /* timeout, or EINTR: the caller checks tail_stop */
	if (outp >= 0 && (p[outp].revents & (POLLERR | POLLHUP | POLLNVAL)))
		return 1;
	if (inop >= 0 && (p[inop].revents & POLLIN))
		while (read(ino, buf, sizeof(buf)) > 0)
			; /* only the wake-up matters */
	return 0;
}

int tool_tail(int argc, char **argv)
{
	unsigned long long want = 10, from = 0;
	int follow = 0, full = 0, have_from = 0, have_n = 0, i, rc, ino = -1, watch_out = 0, ret;
	const char *dir = NULL;
	char host[128], segdir[4200];
	tail_ctx c;
	edgelog_reader *r;
	edgelog_record rec;
	uint64_t base = 0, skip = 0, printed = 0;
	struct stat st;

	memset(&c, 0, sizeof(c));
	c.device = getenv("EDGELOG_DEVICE_ID");
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--json")) {
			c.json = 1;
		} else if (!strcmp(a, "--full")) {
			full = 1;
		} else if (!strcmp(a, "-f") || !strcmp(a, "--follow")) {
			follow = 1;
		} else if (!strncmp(a, "-n", 2) || !strcmp(a, "--from") ||
			   !strcmp(a, "--device-id")) {
			const char *v;
			int is_n = !strncmp(a, "-n", 2);
			if (is_n && a[2]) {
				v = a + 2; /* -n5 */
			} else {
				if (i + 1 >= argc)
					return tool_fail("tail", TOOL_USAGE, "%s needs a value", a);
				v = argv[++i];
			}
			if (!strcmp(a, "--device-id")) {
				c.device = v;
			} else if (is_n) {
				if (tool_parse_u64("tail", "-n", v, &want))
					return TOOL_USAGE;
				have_n = 1;
			} else {
				if (tool_parse_u64("tail", "--from", v, &from))
					return TOOL_USAGE;
				have_from = 1;
			}
		} else if ((rc = tool_other_arg("tail", TAIL_USAGE, "DIR", a, &dir)) >= 0) {
			return rc;
		}
	}
	if (!dir) {
		fputs(TAIL_USAGE, stderr);
		return tool_fail("tail", TOOL_USAGE, "DIR missing");
	}
	if (have_n && have_from)
		return tool_fail("tail", TOOL_USAGE, "-n and --from exclude each other");
	c.device = tool_device_id(c.device, dir, host, sizeof(host));
	tool_table_width = tool_terminal_width(1, full);
	if ((rc = resolve_segdir(dir, segdir, sizeof(segdir))))
		return rc;
	c.dir = dir;

	/* A closed pipe is the normal end of `segtail -f | head`: no
	 * SIGPIPE death, EPIPE ends the output cleanly instead. */
	signal(SIGPIPE, SIG_IGN);
	if (follow) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal; /* no SA_RESTART: poll returns EINTR */
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}

	load_cursor(&c);
	if (print_header(&c))
		goto out_failed;
	if (!follow && !have_from && want == 0)
		goto done_flush;
	if (have_from) {
		base = from;
	} else if ((rc = find_start(dir, want, &base, &skip))) {
		return TOOL_PROBLEM;
	}
	if ((rc = edgelog_reader_open(&r, dir, base))) {
		return tool_fail("tail", rc == EDGELOG_ENOTFOUND ? TOOL_USAGE : TOOL_PROBLEM, "%s",
				 edgelog_errmsg(NULL));
	}
	edgelog_reader_on_corrupt(r, on_corrupt, &c);

	if (follow) {
		ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (ino >= 0 && inotify_add_watch(ino, segdir,
						  IN_MODIFY | IN_CREATE | IN_MOVED_TO |
							  IN_CLOSE_WRITE | IN_DELETE) < 0) {
			close(ino); /* the timer alone will do */
			ino = -1;
		}
		watch_out = fstat(STDOUT_FILENO, &st) == 0 &&
			    (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
	}

	for (;;) {
		int batch = 0;
		while (!tail_stop && (rc = edgelog_reader_next(r, &rec)) == 0) {
			if (skip) {
				skip--;
				continue;
			}
			if (!follow && !have_from && printed >= want)
				break;
			if (follow && !batch && printed)
				load_cursor(&c); /* acks move while we follow */
			batch = 1;
			if (print_record(&c, &rec))
				goto out_failed_r;
			printed++;
		}
		if (tail_stop)
			break;
		if (rc != 0 && rc != EDGELOG_EOF) {
			fflush(stdout);
			edgelog_reader_close(r);
			if (ino >= 0)
				close(ino);
			return tool_fail("tail", TOOL_PROBLEM, "%s", edgelog_errmsg(NULL));
		}
		if (!follow)
			break;
		if (flush_out(&c))
			goto out_failed_r;
		if (wait_news(ino, watch_out) || tail_stop)
			break;
	}
	edgelog_reader_close(r);
	if (ino >= 0)
		close(ino);
done_flush:
	if (flush_out(&c))
		goto out_failed;
	return c.damaged && !follow ? TOOL_PROBLEM : TOOL_OK;

out_failed_r:
	edgelog_reader_close(r);
	if (ino >= 0)
		close(ino);
out_failed:
	ret = output_end(&c);
	return ret;
}
