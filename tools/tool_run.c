/*
 * tool_run.c - `edgelog run`: the agent.
 *
 * Appends records read from stdin (or --input FILE) to an engine and lets
 * the engine's worker upload them. Input is JSON lines (one JSON value a
 * line, each through edgelog_append_json) or, with --input-format msgpack,
 * a stream of concatenated msgpack objects.
 *
 * Bounded memory whatever the input: a line is kept up to
 * EDGELOG_MAX_RECORD bytes; the rest of a longer one is read and thrown
 * away, and the line is reported and counted as bad.
 *
 * Signals: SIGTERM and SIGINT are blocked in every thread (the engine's
 * threads inherit the mask at edgelog_start) and only let through inside
 * ppoll() / sigtimedwait() in the main loop, so a signal can never
 * interrupt an append half done; the loop sees it at its next wait, stops
 * reading and closes the engine (sync, delivery within close_grace_ms,
 * cursor saved).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <edgelog.h>

#include "tool.h"

static const char RUN_USAGE[] =
	"usage: edgelog run [--dir D] [--endpoint URL] [--input FILE] [OPTIONS]\n"
	"\n"
	"The agent: appends records from stdin (or FILE) to the buffer directory D and,\n"
	"when an endpoint is configured, uploads them in the background. At the end of\n"
	"input, or on SIGTERM or SIGINT, it closes cleanly: syncs, keeps delivering for\n"
	"close_grace_ms (5 s), saves the cursor; what is not delivered stays buffered\n"
	"for the next run. A summary goes to stderr: records read, stored, bad,\n"
	"delivered.\n"
	"\n"
	"Input (--input-format):\n"
	"  json     (default) one JSON value a line; empty lines are ignored. A line that\n"
	"           is not valid JSON (the message gives the byte offset in the line) or\n"
	"           is longer than EDGELOG_MAX_RECORD bytes is reported with its line\n"
	"           number, counted as bad and skipped.\n"
	"  msgpack  concatenated msgpack objects, one record each. An object larger than\n"
	"           EDGELOG_MAX_RECORD is skipped as it streams past (reported, counted).\n"
	"           A byte that cannot be msgpack (0xc1), nesting deeper than 256 or an\n"
	"           object cut short by the end of input is reported with its byte\n"
	"           offset and counted; after a bad byte the rest of the input cannot be\n"
	"           split into objects, so reading stops there.\n"
	"\n"
	"Options (flags win over the environment: EDGELOG_DIR, EDGELOG_ENDPOINT, ...):\n"
	"  --dir D                buffer directory (default ./edgelog-data)\n"
	"  --endpoint URL         upload to URL; none (or \"\"): buffer only\n"
	"  --device-id ID         device_id on the wire (default the host name)\n"
	"  --input FILE           read FILE instead of stdin ('-': stdin)\n"
	"  --input-format json|msgpack\n"
	"  --drain                at the end of input wait until nothing is pending\n"
	"                         (needs an endpoint): a progress line on a terminal\n"
	"                         (delivered, remaining, rate, ETA), else one summary\n"
	"                         line. batch_timeout_ms defaults to 200 with --drain,\n"
	"                         so the last partial batch leaves without delay.\n"
	"  --drain-timeout SEC    stop waiting after SEC seconds\n"
	"  --sync always|interval|none         --sync-interval-ms N\n"
	"  --format ndjson|json|msgpack        --compression gzip|none\n"
	"  --full-policy drop_oldest|reject    --max-size-mb N    --retention-days N\n"
	"  --batch-size N         --batch-timeout-ms N    --close-grace-ms N\n"
	"  --retry-base-ms N      --retry-max-ms N        --http-timeout-ms N\n"
	"  --segment-bytes N      --ca-file FILE          --auth-token-file FILE\n"
	"  --upload-max-kb N      --poison-tries N        --data-encoding object|string\n"
	"                         the configuration fields of the same names\n"
	"  --quiet                no summary\n"
	"\n"
	"Exit status: 0 when every record read was stored (and, with --drain, nothing\n"
	"is left pending); 1 when a record was bad or could not be stored, a record\n"
	"went to failed/ (refused by the endpoint) during this run, or records are\n"
	"still pending after --drain; 2 usage or configuration error (a bad flag,\n"
	"an invalid EDGELOG_* variable, an unreadable --input). SIGTERM and SIGINT are\n"
	"the normal way to stop the agent and do not by themselves make the status 1;\n"
	"a record they cut off half read does (it is reported, not stored), and so\n"
	"does interrupting --drain with records pending.\n";

#define RUN_CHUNK 65536
#define RUN_MAX_REPORTS 100

static volatile sig_atomic_t run_signal;

static void on_signal(int sig)
{
	run_signal = sig;
}

typedef struct run_state {
	edgelog *log;
	const char *input_name;
	const char *unit; /* "line" or "object" */
	int fd;
	sigset_t waitmask; /* the main thread's mask with TERM and INT let through */
	uint64_t lines, stored, bad, empty, failed, reports;
} run_state;

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Report a bad or unstored record, prefixed by where it is ("stdin line
 * 3:"); after RUN_MAX_REPORTS only the count goes on. */
__attribute__((format(printf, 2, 3))) static void report(run_state *s, const char *fmt, ...)
{
	va_list ap;

	if (s->reports++ < RUN_MAX_REPORTS) {
		fprintf(stderr, "edgelog run: %s %s %llu: ", s->input_name, s->unit,
			(unsigned long long)s->lines);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	} else if (s->reports == RUN_MAX_REPORTS + 1) {
		fprintf(stderr,
			"edgelog run: more bad input; no longer reporting each (the summary "
			"counts it)\n");
	}
}

static void store(run_state *s, const void *data, size_t len, int json);

/* One complete line (without its newline). */
static void handle_line(run_state *s, const char *line, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
			break;
	if (i == len) {
		s->empty++;
		return;
	}
	store(s, line, len, 1);
}

/* Append one record (JSON text or one msgpack object) and count it. */
static void store(run_state *s, const void *data, size_t len, int json)
{
	int rc = json ? edgelog_append_json(s->log, data, len, NULL) :
			edgelog_append(s->log, data, len, NULL);

	if (rc == 0) {
		s->stored++;
	} else if (rc == EDGELOG_EINVAL || rc == EDGELOG_ETOOBIG) {
		s->bad++;
		report(s, "%s; skipped", edgelog_errmsg(s->log));
	} else {
		s->failed++;
		report(s, "not stored: %s", edgelog_errmsg(s->log));
	}
}

/* Wait until fd is readable or a signal came. 1 readable, 0 signal, -1
 * error. */
static int wait_input(run_state *s)
{
	struct pollfd p = {s->fd, POLLIN, 0};

	for (;;) {
		if (run_signal)
			return 0;
		if (ppoll(&p, 1, NULL, &s->waitmask) > 0)
			return 1;
		if (errno != EINTR)
			return -1;
	}
}

#define CHUNK_STOP (-2) /* a signal asked to stop */

/* The next piece of input into chunk: the bytes read (> 0), 0 at the end
 * of input, CHUNK_STOP on a signal, or -1 after reporting a read error. */
static ssize_t next_chunk(run_state *s, void *chunk)
{
	for (;;) {
		ssize_t n;
		int w = wait_input(s);

		if (w == 0)
			return CHUNK_STOP;
		if (w > 0 && (n = read(s->fd, chunk, RUN_CHUNK)) >= 0)
			return n;
		if (w > 0 && errno == EINTR)
			continue;
		tool_fail("run", -1, "reading %s: %s", s->input_name, strerror(errno));
		return -1;
	}
}

/* What one input format does with the input: eat the next chunk (n > 0),
 * or the end of input (p NULL, n 0). 0 to go on, 1 to stop reading (the
 * rest cannot be read), -1 after reporting an error. */
typedef int (*run_eat_fn)(run_state *s, void *st, const uint8_t *p, size_t n);

/* Feed the input to eat, a chunk at a time, until the end of input, a
 * signal, an error or eat stops. 0, or -1 (reported). */
static int read_input(run_state *s, run_eat_fn eat, void *st)
{
	uint8_t *chunk = malloc(RUN_CHUNK);
	int rc = 0;

	if (!chunk)
		return tool_fail("run", -1, "out of memory");
	for (;;) {
		ssize_t n = next_chunk(s, chunk);

		if (n == CHUNK_STOP)
			break;
		if (n < 0) {
			rc = -1;
			break;
		}
		if ((rc = eat(s, st, n ? chunk : NULL, (size_t)n)) || n == 0)
			break;
	}
	free(chunk);
	return rc < 0 ? -1 : 0;
}

/* ------------------------------------------------------------------------
 * JSON lines: each line up to EDGELOG_MAX_RECORD bytes is kept and
 * appended; the rest of a longer one is read and thrown away, and the line
 * is reported and counted as bad.
 */
typedef struct json_lines {
	tool_bytes line;
	int overlong;
} json_lines;

/* A whole line: appended, or reported as too long. */
static void line_done(run_state *s, json_lines *j)
{
	s->lines++;
	if (j->overlong) {
		s->bad++;
		report(s, "longer than EDGELOG_MAX_RECORD (%u bytes); skipped", EDGELOG_MAX_RECORD);
	} else {
		handle_line(s, j->line.p, j->line.len);
	}
	j->line.len = 0;
	j->overlong = 0;
}

static int eat_json_lines(run_state *s, void *st, const uint8_t *p, size_t n)
{
	json_lines *j = st;
	size_t pos = 0;

	if (!p) {
		/* End of input: an unterminated last line is still a line. */
		if (j->line.len || j->overlong)
			line_done(s, j);
		return 0;
	}
	while (pos < n) {
		const uint8_t *nl = memchr(p + pos, '\n', n - pos);
		size_t take = (nl ? (size_t)(nl - p) : n) - pos;

		if (!j->overlong && j->line.len + take > EDGELOG_MAX_RECORD) {
			j->overlong = 1;
		} else if (!j->overlong) {
			tool_bytes_put(&j->line, p + pos, take);
			if (j->line.oom)
				return tool_fail("run", -1, "out of memory");
		}
		pos += take;
		if (!nl)
			break;
		pos++; /* the newline */
		line_done(s, j);
	}
	return 0;
}

/* Read JSON lines until end of input or a signal. 0, or -1 on an error
 * (reported). */
static int read_json_lines(run_state *s)
{
	json_lines j = {{0}, 0};
	int rc = read_input(s, eat_json_lines, &j);

	if (rc == 0 && run_signal && (j.line.len || j.overlong)) {
		/* Stopped in the middle of a line: part of a record is not one. */
		s->lines++;
		s->bad++;
		report(s, "unfinished when the signal came; not stored");
	}
	tool_bytes_free(&j.line);
	return rc;
}

/* ------------------------------------------------------------------------
 * A msgpack stream, split into objects as the bytes arrive.
 *
 * The library's splitter (edgelog_msgpack_split_feed) finds where each
 * object ends, resumable at any byte and holding none, so one object never
 * needs to be in memory whole to find its end: an object longer than
 * EDGELOG_MAX_RECORD is skipped as it streams past (reported, counted) and
 * the next one is read normally. Only a byte that cannot start an element
 * (0xc1) or nesting deeper than EDGELOG_MSGPACK_DEPTH makes the rest of the
 * stream unreadable: msgpack has no marker to resynchronise on, so that
 * ends the input (reported with its byte offset, counted as one bad
 * object). An object cut short by the end of input is reported and counted
 * too. edgelog_append checks each object again before storing it.
 */
typedef struct mp_input {
	edgelog_msgpack_split *m;
	tool_bytes obj;      /* the current object, unless overlong */
	uint64_t off, start; /* input bytes before this chunk; where the object began */
	int overlong;
} mp_input;

static int eat_msgpack(run_state *s, void *st, const uint8_t *p, size_t n)
{
	mp_input *in = st;
	size_t pos = 0;

	if (!p) {
		if (edgelog_msgpack_split_pending(in->m)) {
			s->bad++;
			report(s,
			       "at byte %llu: cut short by the end of input after %llu bytes; not "
			       "stored",
			       (unsigned long long)in->start,
			       (unsigned long long)edgelog_msgpack_split_pending(in->m));
		}
		return 0;
	}
	while (pos < n) {
		size_t used;
		int r;

		if (!edgelog_msgpack_split_pending(in->m)) {
			in->start = in->off + pos;
			s->lines++; /* objects, numbered from 1 */
			in->obj.len = 0;
			in->overlong = 0;
		}
		r = edgelog_msgpack_split_feed(in->m, p + pos, n - pos, &used);
		if (!in->overlong && in->obj.len + used > EDGELOG_MAX_RECORD) {
			in->overlong = 1;
			report(s,
			       "at byte %llu: larger than EDGELOG_MAX_RECORD (%u bytes); skipping it",
			       (unsigned long long)in->start, EDGELOG_MAX_RECORD);
		} else if (!in->overlong) {
			tool_bytes_put(&in->obj, p + pos, used);
			if (in->obj.oom)
				return tool_fail("run", -1, "out of memory");
		}
		pos += used;
		if (r == 0) {
			if (in->overlong)
				s->bad++;
			else
				store(s, in->obj.p, in->obj.len, 0);
		} else if (r == EDGELOG_EINVAL) {
			s->bad++;
			report(s,
			       "at byte %llu: not msgpack (byte 0x%02x at offset %llu%s); the rest of "
			       "the input cannot be split into objects and is ignored",
			       (unsigned long long)in->start, p[pos - 1],
			       (unsigned long long)(in->off + pos - 1),
			       p[pos - 1] == 0xc1 ? "" : ", nested too deep");
			return 1;
		}
	}
	in->off += n;
	return 0;
}

/* Read msgpack objects until end of input, a signal or an unreadable
 * byte. 0, or -1 on an error (reported). */
static int read_msgpack(run_state *s)
{
	mp_input in = {0};
	int rc;

	if (edgelog_msgpack_split_open(&in.m))
		return tool_fail("run", -1, "out of memory");
	rc = read_input(s, eat_msgpack, &in);
	if (rc == 0 && run_signal && edgelog_msgpack_split_pending(in.m)) {
		s->bad++;
		report(s, "at byte %llu: unfinished when the signal came; not stored",
		       (unsigned long long)in.start);
	}
	edgelog_msgpack_split_close(in.m);
	tool_bytes_free(&in.obj);
	return rc;
}

typedef struct run_opts {
	const char *input;
	int msgpack, drain, quiet;
	unsigned long long drain_timeout;
} run_opts;

/* Options that set one numeric config field, with the engine's range. */
static const struct {
	const char *flag;
	size_t off;
	uint32_t lo, hi;
} run_u32[] = {
	{"--batch-size", offsetof(edgelog_config, batch_size), 1, 100000},
	{"--batch-timeout-ms", offsetof(edgelog_config, batch_timeout_ms), 1, 86400000},
	{"--sync-interval-ms", offsetof(edgelog_config, sync_interval_ms), 1, 3600000},
	{"--max-size-mb", offsetof(edgelog_config, max_size_mb), 1, 1u << 22},
	{"--retention-days", offsetof(edgelog_config, retention_days), 1, 36500},
	{"--close-grace-ms", offsetof(edgelog_config, close_grace_ms), 1, 3600000},
	{"--retry-base-ms", offsetof(edgelog_config, retry_base_ms), 1, 3600000},
	{"--retry-max-ms", offsetof(edgelog_config, retry_max_ms), 1, 86400000},
	{"--http-timeout-ms", offsetof(edgelog_config, http_timeout_ms), 1, 3600000},
	{"--segment-bytes", offsetof(edgelog_config, segment_bytes), 65536, 1u << 30},
	{"--upload-max-kb", offsetof(edgelog_config, upload_max_kb), 1, 65536},
	{"--poison-tries", offsetof(edgelog_config, poison_tries), 1, 1000},
};

static const char *const sync_names[] = {"always", "interval", "none", NULL};
static const char *const format_names[] = {"ndjson", "json", "msgpack", NULL};
static const char *const comp_names[] = {"gzip", "none", NULL};
static const char *const full_names[] = {"drop_oldest", "reject", NULL};
static const char *const input_names[] = {"json", "msgpack", NULL};
static const char *const data_names[] = {"object", "string", NULL};

/* Options that set one config enum (written as an int: the asserts below)
 * to the value's index in names + 1. */
static const struct {
	const char *flag;
	size_t off;
	const char *const *names;
} run_enum[] = {
	{"--sync", offsetof(edgelog_config, sync), sync_names},
	{"--format", offsetof(edgelog_config, format), format_names},
	{"--compression", offsetof(edgelog_config, compression), comp_names},
	{"--data-encoding", offsetof(edgelog_config, data_encoding), data_names},
	{"--full-policy", offsetof(edgelog_config, full_policy), full_names},
};
_Static_assert(sizeof(edgelog_sync_mode) == sizeof(int) && sizeof(edgelog_format) == sizeof(int) &&
		       sizeof(edgelog_compression) == sizeof(int) &&
		       sizeof(edgelog_data_encoding) == sizeof(int) &&
		       sizeof(edgelog_full_policy) == sizeof(int),
	       "config enums are ints");

/* Options that set one config string. */
static const struct {
	const char *flag;
	size_t off;
} run_str[] = {
	{"--dir", offsetof(edgelog_config, dir)},
	{"--endpoint", offsetof(edgelog_config, endpoint)},
	{"--device-id", offsetof(edgelog_config, device_id)},
	{"--ca-file", offsetof(edgelog_config, ca_file)},
	{"--auth-token-file", offsetof(edgelog_config, auth_token_file)},
};

/* The options of run_opts that take a value. */
static const char *const run_own[] = {"--input", "--input-format", "--drain-timeout", NULL};

#define RUN_N(table) (sizeof(table) / sizeof((table)[0]))
/* k: the index of flag a in table, or RUN_N(table). */
#define RUN_FIND(table, a, k)                      \
	for ((k) = 0; (k) < RUN_N(table); (k)++)   \
		if (!strcmp((a), (table)[k].flag)) \
	break

/* v among names: *out = its index + 1 (the config enums' values). */
static int parse_enum(const char *opt, const char *v, const char *const *names, int *out)
{
	char list[128] = "";
	int i;

	for (i = 0; names[i]; i++) {
		if (!strcmp(v, names[i])) {
			*out = i + 1;
			return 0;
		}
		strcat(list, i ? ", " : "");
		strcat(list, names[i]);
	}
	tool_fail("run", TOOL_USAGE, "%s: '%s' is not one of %s", opt, v, list);
	return -1;
}

static int parse_args(int argc, char **argv, edgelog_config *cfg, run_opts *o, int *done)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		unsigned long long n;
		size_t ku, ke, ks, ko;
		int e;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(RUN_USAGE, stdout);
			*done = 1;
			return TOOL_OK;
		}
		if (!strcmp(a, "--drain")) {
			o->drain = 1;
			continue;
		}
		if (!strcmp(a, "--quiet")) {
			o->quiet = 1;
			continue;
		}
		if (strncmp(a, "--", 2) || !a[2]) {
			return tool_fail("run", TOOL_USAGE, "unexpected argument '%s' (see --help)",
					 a);
		}
		RUN_FIND(run_u32, a, ku);
		RUN_FIND(run_enum, a, ke);
		RUN_FIND(run_str, a, ks);
		for (ko = 0; run_own[ko] && strcmp(a, run_own[ko]); ko++)
			;
		if (ku == RUN_N(run_u32) && ke == RUN_N(run_enum) && ks == RUN_N(run_str) &&
		    !run_own[ko])
			return tool_fail("run", TOOL_USAGE, "unknown option '%s' (see --help)", a);
		if (!v)
			return tool_fail("run", TOOL_USAGE, "%s needs a value", a);
		i++;
		if (ku < RUN_N(run_u32)) {
			if (tool_parse_u64("run", a, v, &n))
				return TOOL_USAGE;
			if (n < run_u32[ku].lo || n > run_u32[ku].hi)
				return tool_fail("run", TOOL_USAGE, "%s: %llu is outside %u..%u", a,
						 n, run_u32[ku].lo, run_u32[ku].hi);
			*(uint32_t *)((char *)cfg + run_u32[ku].off) = (uint32_t)n;
		} else if (ke < RUN_N(run_enum)) {
			if (parse_enum(a, v, run_enum[ke].names, &e))
				return TOOL_USAGE;
			memcpy((char *)cfg + run_enum[ke].off, &e, sizeof(e));
		} else if (ks < RUN_N(run_str)) {
			if (!strcmp(a, "--dir") && !*v)
				return tool_fail("run", TOOL_USAGE, "--dir: empty");
			if (!strcmp(a, "--endpoint") && !*v)
				v = NULL; /* "": buffer only */
			*(const char **)((char *)cfg + run_str[ks].off) = v;
		} else if (!strcmp(a, "--input")) {
			o->input = v;
		} else if (!strcmp(a, "--input-format")) {
			if (parse_enum(a, v, input_names, &e))
				return TOOL_USAGE;
			o->msgpack = e == 2;
		} else if (tool_parse_u64("run", a, v, &o->drain_timeout)) {
			return TOOL_USAGE;
		}
	}
	return TOOL_OK;
}

/* Wait until nothing is pending, a signal, or the timeout. 0 when
 * drained. */
static int drain(run_state *s, const run_opts *o, uint64_t sent0, uint64_t *delivered)
{
	int tty = isatty(2);
	double t0 = mono_s(), last_draw = 0;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	uint64_t pending0, drain_sent0;
	sigset_t sigs;

	if (edgelog_get_status(s->log, &st))
		return -1;
	pending0 = st.pending;
	drain_sent0 = st.sent;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	for (;;) {
		struct timespec tick = {0, 50 * 1000000};
		double now = mono_s();
		int sig;

		if (edgelog_get_status(s->log, &st))
			return -1;
		*delivered = st.sent - sent0;
		if (tty && (now - last_draw >= 0.25 || st.pending == 0)) {
			double rate = now > t0 ? (double)(st.sent - drain_sent0) / (now - t0) : 0;
			char eta[32] = "?";
			if (rate > 0)
				snprintf(eta, sizeof(eta), "%.0f s", (double)st.pending / rate);
			fprintf(stderr,
				"\rdraining: %llu delivered, %llu remaining, %.0f records/s, ETA %s, "
				"%s   ",
				(unsigned long long)(st.sent - sent0),
				(unsigned long long)st.pending, rate, eta,
				st.is_connected ? "connected" : "not connected");
			last_draw = now;
		}
		if (st.pending == 0)
			break;
		if (o->drain_timeout && now - t0 >= (double)o->drain_timeout)
			break;
		sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig == SIGTERM || sig == SIGINT) {
			run_signal = sig;
			break;
		}
	}
	if (tty)
		fputc('\n', stderr);
	if (st.pending) {
		fprintf(stderr, "edgelog run: drain %s: %llu record(s) not delivered%s%s\n",
			run_signal ? "interrupted" : "timed out", (unsigned long long)st.pending,
			st.last_error[0] ? "; last error: " : "", st.last_error);
		return 1;
	}
	if (!tty && !o->quiet)
		fprintf(stderr, "edgelog run: drained %llu record(s) in %.1f s\n",
			(unsigned long long)pending0, mono_s() - t0);
	return 0;
}

int tool_run(int argc, char **argv)
{
	edgelog_config cfg;
	run_opts o;
	run_state s;
	struct sigaction sa;
	sigset_t block, old;
	int rc, done = 0, undelivered = 0, read_err;
	uint64_t delivered = 0, sent0 = 0, pending = 0, failed0 = 0, dead = 0;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};

	memset(&o, 0, sizeof(o));
	memset(&s, 0, sizeof(s));
	edgelog_config_init(&cfg);
	if (edgelog_config_from_env(&cfg))
		return tool_fail("run", TOOL_USAGE, "%s", edgelog_errmsg(NULL));
	if ((rc = parse_args(argc, argv, &cfg, &o, &done)) != 0 || done)
		return rc;
	if (o.drain && !cfg.endpoint)
		return tool_fail("run", TOOL_USAGE,
				 "--drain needs an endpoint (--endpoint or EDGELOG_ENDPOINT)");
	/* The uploader holds a partial batch for batch_timeout_ms (10 s by
	 * default); a drain would wait that long for its last records. */
	if (o.drain && !cfg.batch_timeout_ms)
		cfg.batch_timeout_ms = 200;

	if (!o.input || !strcmp(o.input, "-")) {
		s.fd = 0;
		s.input_name = "stdin";
	} else {
		s.input_name = o.input;
		struct stat sb;
		if ((s.fd = open(o.input, O_RDONLY | O_CLOEXEC)) < 0)
			return tool_fail("run", TOOL_USAGE, "--input %s: %s", o.input,
					 strerror(errno));
		if (fstat(s.fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			close(s.fd);
			return tool_fail("run", TOOL_USAGE, "--input %s: is a directory", o.input);
		}
	}

	/* Signals: see the comment at the top. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	s.waitmask = old;
	sigdelset(&s.waitmask, SIGTERM);
	sigdelset(&s.waitmask, SIGINT);

	if ((rc = edgelog_open(&s.log, &cfg))) {
		if (s.fd > 0)
			close(s.fd);
		return tool_fail("run", rc == EDGELOG_ECONFIG ? TOOL_USAGE : TOOL_PROBLEM, "%s",
				 edgelog_errmsg(NULL));
	}
	/* The worker runs even without an endpoint: it makes records durable
	 * every sync_interval_ms while input is idle, runs retention and
	 * keeps the status snapshot that `edgelog status` shows as live. */
	if ((rc = edgelog_start(s.log))) {
		fprintf(stderr, "edgelog run: cannot start the engine's worker: %s\n",
			edgelog_errmsg(s.log));
		edgelog_close(s.log);
		if (s.fd > 0)
			close(s.fd);
		return TOOL_PROBLEM;
	}

	if (edgelog_get_status(s.log, &st) == 0) {
		sent0 = st.sent;
		failed0 = st.failed;
	}
	s.unit = o.msgpack ? "object" : "line";
	read_err = o.msgpack ? read_msgpack(&s) : read_json_lines(&s);
	if (o.drain && !run_signal && !read_err) {
		rc = drain(&s, &o, sent0, &delivered);
		undelivered = rc != 0;
	}
	if (run_signal && !o.quiet)
		fprintf(stderr, "edgelog run: %s: closing\n",
			run_signal == SIGTERM ? "SIGTERM" : "SIGINT");
	if ((rc = edgelog_close(s.log)))
		fprintf(stderr, "edgelog run: close: %s\n", edgelog_errmsg(NULL));
	/* What close delivered in its grace period, from the directory. */
	if (cfg.endpoint &&
	    edgelog_status_dir(cfg.dir ? cfg.dir : "./edgelog-data", &st, NULL) == 0) {
		delivered = st.sent - sent0;
		pending = st.pending;
		/* Dead letters of this run: failed only grows while the engine
		 * runs (requeue and cleanup need the directory's lock). */
		dead = st.failed > failed0 ? st.failed - failed0 : 0;
	}
	if (s.fd > 0)
		close(s.fd);
	if (!o.quiet) {
		fprintf(stderr, "edgelog run: %llu %s(s) read: %llu stored, %llu bad",
			(unsigned long long)s.lines, s.unit, (unsigned long long)s.stored,
			(unsigned long long)s.bad);
		if (!o.msgpack)
			fprintf(stderr, ", %llu empty", (unsigned long long)s.empty);
		if (s.failed)
			fprintf(stderr, ", %llu not stored (engine error)",
				(unsigned long long)s.failed);
		if (cfg.endpoint)
			fprintf(stderr, "; %llu delivered, %llu dead-lettered, %llu pending",
				(unsigned long long)delivered, (unsigned long long)dead,
				(unsigned long long)pending);
		fputc('\n', stderr);
	}
	if (dead && !o.quiet)
		fprintf(stderr,
			"edgelog run: %llu record(s) of this run refused by the endpoint, moved to "
			"%s/failed (edgelog requeue-failed sends them again)\n",
			(unsigned long long)dead, cfg.dir ? cfg.dir : "./edgelog-data");
	return (s.bad || s.failed || read_err || undelivered || dead || rc) ? TOOL_PROBLEM :
									      TOOL_OK;
}
