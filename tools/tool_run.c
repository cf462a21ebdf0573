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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <edgelog.h>

#include "tool.h"

static const char RUN_USAGE[] =
	"usage: edgelog run [--dir D] [--endpoint URL] [--input FILE] [OPTIONS]\n"
	"\n"
	"The agent: appends records from stdin (or FILE) to the buffer directory D and,\n"
	"when an endpoint is configured, uploads them in the background. SIGTERM or\n"
	"SIGINT stops reading and closes cleanly (sync, deliver for close_grace_ms,\n"
	"save the cursor).\n"
	"\n"
	"Input (--input-format):\n"
	"  json     (default) one JSON value a line. Empty lines are ignored. A line that\n"
	"           is not valid JSON, or longer than EDGELOG_MAX_RECORD bytes, is\n"
	"           reported with its line number, counted as bad and skipped.\n"
	"\n"
	"Options (flags win over the environment, EDGELOG_* as in design.md):\n"
	"  --dir D                buffer directory (EDGELOG_DIR; default ./edgelog-data)\n"
	"  --endpoint URL         upload here (EDGELOG_ENDPOINT); none: buffer only\n"
	"  --device-id ID         (EDGELOG_DEVICE_ID; default the host name)\n"
	"  --input FILE           read FILE instead of stdin ('-': stdin)\n"
	"  --input-format json|msgpack\n"
	"  --drain                at end of input wait until every pending record is\n"
	"                         delivered (needs an endpoint)\n"
	"  --drain-timeout SEC    give up waiting after SEC seconds (exit 1)\n"
	"  --quiet                no summary line\n"
	"\n"
	"Exit status: 0 when every record read was stored (and, with --drain,\n"
	"everything was delivered); 1 when a line was bad or not stored, or records\n"
	"remain undelivered after --drain; 2 usage or configuration error. A signal\n"
	"is the normal way to stop the agent: it does not by itself make the exit\n"
	"status 1, but an unfinished last line it interrupts does (not stored).\n";

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

static void report(run_state *s, const char *fmt, const char *detail)
{
	if (s->reports++ < RUN_MAX_REPORTS) {
		fprintf(stderr, "edgelog run: %s line %llu: ", s->input_name,
			(unsigned long long)s->lines);
		fprintf(stderr, fmt, detail);
		fputc('\n', stderr);
	} else if (s->reports == RUN_MAX_REPORTS + 1) {
		fprintf(stderr,
			"edgelog run: more bad lines; no longer reporting each (the summary "
			"counts them)\n");
	}
}

/* One complete line (without its newline). */
static void handle_line(run_state *s, const char *line, size_t len)
{
	size_t i;
	int rc;

	for (i = 0; i < len; i++)
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
			break;
	if (i == len) {
		s->empty++;
		return;
	}
	rc = edgelog_append_json(s->log, line, len, NULL);
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

/* Read JSON lines until end of input or a signal. 0, or -1 on a read
 * error (reported). */
static int read_json_lines(run_state *s)
{
	char *chunk = malloc(RUN_CHUNK), *line = NULL;
	size_t llen = 0, lcap = 0;
	int overlong = 0, rc = 0;

	if (!chunk)
		return tool_fail("run", -1, "out of memory");
	for (;;) {
		ssize_t n;
		size_t pos = 0;
		int w = wait_input(s);

		if (w == 0)
			break;
		if (w < 0 || (n = read(s->fd, chunk, RUN_CHUNK)) < 0) {
			if (w > 0 && errno == EINTR)
				continue;
			rc = tool_fail("run", -1, "reading %s: %s", s->input_name, strerror(errno));
			break;
		}
		if (n == 0) {
			/* End of input: an unterminated last line is still a line. */
			if (llen || overlong) {
				s->lines++;
				if (overlong) {
					s->bad++;
					report(s,
					       "longer than EDGELOG_MAX_RECORD (%s bytes); skipped",
					       "1048576");
				} else {
					handle_line(s, line, llen);
				}
			}
			break;
		}
		while (pos < (size_t)n) {
			char *nl = memchr(chunk + pos, '\n', (size_t)n - pos);
			size_t take = (nl ? (size_t)(nl - chunk) : (size_t)n) - pos;

			if (!overlong && llen + take > EDGELOG_MAX_RECORD) {
				overlong = 1;
			} else if (!overlong) {
				if (llen + take > lcap) {
					size_t nc = lcap ? lcap : 4096;
					char *nb;
					while (nc < llen + take)
						nc *= 2;
					if (!(nb = realloc(line, nc))) {
						rc = tool_fail("run", -1, "out of memory");
						goto out;
					}
					line = nb;
					lcap = nc;
				}
				memcpy(line + llen, chunk + pos, take);
				llen += take;
			}
			pos += take;
			if (!nl)
				break;
			pos++; /* the newline */
			s->lines++;
			if (overlong) {
				s->bad++;
				report(s, "longer than EDGELOG_MAX_RECORD (%s bytes); skipped",
				       "1048576");
			} else {
				handle_line(s, line, llen);
			}
			llen = 0;
			overlong = 0;
		}
	}
	if (run_signal && (llen || overlong)) {
		/* Stopped in the middle of a line: part of a record is not one. */
		s->lines++;
		s->bad++;
		report(s, "%s", "unfinished when the signal came; not stored");
	}
out:
	free(line);
	free(chunk);
	return rc;
}

typedef struct run_opts {
	const char *input;
	int msgpack, drain, quiet;
	unsigned long long drain_timeout;
} run_opts;

static int parse_enum(const char *opt, const char *v, const char *const *names, int *out)
{
	int i;
	for (i = 0; names[i]; i++)
		if (!strcmp(v, names[i])) {
			*out = i + 1;
			return 0;
		}
	tool_fail("run", TOOL_USAGE, "%s: '%s' is not one of the accepted values", opt, v);
	return -1;
}

static int parse_args(int argc, char **argv, edgelog_config *cfg, run_opts *o, int *done)
{
	static const char *const formats[] = {"json", "msgpack", NULL};
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int e;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(RUN_USAGE, stdout);
			*done = 1;
			return TOOL_OK;
		} else if (!strcmp(a, "--drain")) {
			o->drain = 1;
			continue;
		} else if (!strcmp(a, "--quiet")) {
			o->quiet = 1;
			continue;
		}
		if (strncmp(a, "--", 2) ||
		    !(!strcmp(a, "--dir") || !strcmp(a, "--endpoint") ||
		      !strcmp(a, "--device-id") || !strcmp(a, "--input") ||
		      !strcmp(a, "--input-format") || !strcmp(a, "--drain-timeout"))) {
			fputs(RUN_USAGE, stderr);
			return tool_fail("run", TOOL_USAGE, "unknown argument '%s'", a);
		}
		if (!v)
			return tool_fail("run", TOOL_USAGE, "%s needs a value", a);
		i++;
		if (!strcmp(a, "--dir")) {
			cfg->dir = v;
		} else if (!strcmp(a, "--endpoint")) {
			cfg->endpoint = *v ? v : NULL;
		} else if (!strcmp(a, "--device-id")) {
			cfg->device_id = v;
		} else if (!strcmp(a, "--input")) {
			o->input = v;
		} else if (!strcmp(a, "--input-format")) {
			if (parse_enum(a, v, formats, &e))
				return TOOL_USAGE;
			o->msgpack = e == 2;
		} else if (!strcmp(a, "--drain-timeout")) {
			if (tool_parse_u64("run", a, v, &o->drain_timeout))
				return TOOL_USAGE;
		}
	}
	return TOOL_OK;
}

/* Wait until nothing is pending, a signal, or the timeout. 0 when
 * drained. */
static int drain(run_state *s, const run_opts *o, uint64_t *delivered)
{
	int tty = isatty(2);
	double t0 = mono_s(), last_draw = 0;
	edgelog_status st;
	uint64_t sent0, pending0;
	sigset_t sigs;

	if (edgelog_get_status(s->log, &st))
		return -1;
	sent0 = st.sent;
	pending0 = st.pending;
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
			double rate = now > t0 ? (double)(st.sent - sent0) / (now - t0) : 0;
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
	uint64_t delivered = 0;

	memset(&o, 0, sizeof(o));
	memset(&s, 0, sizeof(s));
	edgelog_config_init(&cfg);
	if (edgelog_config_from_env(&cfg))
		return tool_fail("run", TOOL_USAGE, "%s", edgelog_errmsg(NULL));
	if ((rc = parse_args(argc, argv, &cfg, &o, &done)) != 0 || done)
		return rc;
	if (o.msgpack)
		return tool_fail("run", TOOL_USAGE, "--input-format msgpack: not built yet");
	if (o.drain && !cfg.endpoint)
		return tool_fail("run", TOOL_USAGE,
				 "--drain needs an endpoint (--endpoint or EDGELOG_ENDPOINT)");

	if (!o.input || !strcmp(o.input, "-")) {
		s.fd = 0;
		s.input_name = "stdin";
	} else {
		s.input_name = o.input;
		if ((s.fd = open(o.input, O_RDONLY | O_CLOEXEC)) < 0)
			return tool_fail("run", TOOL_USAGE, "--input %s: %s", o.input,
					 strerror(errno));
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
	if (cfg.endpoint && (rc = edgelog_start(s.log))) {
		fprintf(stderr, "edgelog run: cannot start uploading: %s\n", edgelog_errmsg(s.log));
		edgelog_close(s.log);
		if (s.fd > 0)
			close(s.fd);
		return TOOL_PROBLEM;
	}

	read_err = read_json_lines(&s);
	if (o.drain && !run_signal && !read_err) {
		rc = drain(&s, &o, &delivered);
		undelivered = rc != 0;
	}
	if (run_signal && !o.quiet)
		fprintf(stderr, "edgelog run: %s: closing\n",
			run_signal == SIGTERM ? "SIGTERM" : "SIGINT");
	if ((rc = edgelog_close(s.log)))
		fprintf(stderr, "edgelog run: close: %s\n", edgelog_errmsg(NULL));
	if (s.fd > 0)
		close(s.fd);
	if (!o.quiet) {
		fprintf(stderr, "edgelog run: %llu line(s) read: %llu stored, %llu bad, %llu empty",
			(unsigned long long)s.lines, (unsigned long long)s.stored,
			(unsigned long long)s.bad, (unsigned long long)s.empty);
		if (s.failed)
			fprintf(stderr, ", %llu not stored (engine error)",
				(unsigned long long)s.failed);
		if (o.drain)
			fprintf(stderr, "; %llu delivered", (unsigned long long)delivered);
		fputc('\n', stderr);
	}
	return (s.bad || s.failed || read_err || undelivered || rc) ? TOOL_PROBLEM : TOOL_OK;
}
