/*
 * tool_status.c - `edgelog status`, `edgelog export-stats`, `edgelog
 * metrics`: what is buffered, whether the cloud is reachable, what went
 * wrong. Read-only: they work alongside a running engine (whose snapshot
 * gives the live connection state) and on a directory nobody holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <edgelog.h>

#include "tool.h"

static const char STATUS_USAGE[] =
	"usage: edgelog status [--json] [--dir DIR | DIR]\n"
	"\n"
	"Pending, sent, failed, dropped and expired records, disk use against the\n"
	"cap, the cloud connection and active alerts. With an engine running on\n"
	"DIR the figures are its live snapshot (DIR/status.json); otherwise they\n"
	"are computed from the segments and the cursor, and the first line says so.\n"
	"\"Pending: N / T (P%)\" sets N against the pending alert threshold T.\n"
	"Sizes are in MB of 2^20 bytes, the unit of max_size_mb.\n"
	"\n"
	"  --json        one JSON object with the fields of design.md (device_id,\n"
	"                pending, sent, failed, dropped, expired, corrupt, size_bytes,\n"
	"                max_size_bytes, segments, oldest_pending_age_s, is_connected,\n"
	"                last_error, last_success_at, retry_in_s, recovered, alerts[])\n"
	"                and \"source\": \"live\", \"offline\" (no engine) or\n"
	"                \"stale\" (an engine holds DIR but its snapshot is old)\n"
	"  --dir DIR     the buffer directory (default: $EDGELOG_DIR, $BUFFER_DB_PATH,\n"
	"                ./edgelog-data)\n"
	"  -h, --help    this text\n"
	"\n"
	"Exit: 0 status printed, 2 usage error or no such directory.\n";

static const char EXPORT_USAGE[] =
	"usage: edgelog export-stats [--dir DIR] OUT.json\n"
	"\n"
	"Writes the status (as `edgelog status --json`) plus one entry per segment\n"
	"file (records, bytes, first and last seq and time, damaged ranges, acked)\n"
	"to OUT.json, atomically. OUT.json \"-\" writes to standard output.\n"
	"\n"
	"  --dir DIR     the buffer directory (default: $EDGELOG_DIR, ./edgelog-data)\n"
	"  -h, --help    this text\n";

static const char METRICS_USAGE[] =
	"usage: edgelog metrics [--dir DIR | DIR]\n"
	"\n"
	"Prints the status in the Prometheus text exposition format: edgelog_*\n"
	"counters for totals that only grow, gauges for levels, each with HELP and\n"
	"TYPE lines and a device_id label. A running engine can write the same text\n"
	"to a file for node_exporter's textfile collector: set EDGELOG_METRICS_FILE.\n"
	"\n"
	"  --dir DIR     the buffer directory (default: $EDGELOG_DIR, ./edgelog-data)\n"
	"  -h, --help    this text\n";

int tool_dir_args(const char *cmd, const char *usage, int argc, char **argv, const char *flag,
		  int *flag_set, const char **dir, const char **pos)
{
	int i;

	*dir = NULL;
	if (pos)
		*pos = NULL;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(usage, stdout);
			return -1;
		} else if (flag && !strcmp(a, flag)) {
			*flag_set = 1;
		} else if (!strcmp(a, "--dir")) {
			if (++i >= argc)
				return tool_fail(cmd, TOOL_USAGE, "--dir needs a directory");
			*dir = argv[i];
		} else if (!strncmp(a, "--dir=", 6)) {
			*dir = a + 6;
		} else if (a[0] == '-' && a[1]) {
			return tool_fail(cmd, TOOL_USAGE, "unknown option '%s' (see --help)", a);
		} else if (pos && !*pos) {
			*pos = a;
		} else if (!pos && !*dir) {
			*dir = a;
		} else {
			return tool_fail(cmd, TOOL_USAGE, "unexpected argument '%s' (see --help)",
					 a);
		}
	}
	return 0;
}

int tool_other_arg(const char *cmd, const char *usage, const char *what, const char *a,
		   const char **pos)
{
	if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
		fputs(usage, stdout);
		return TOOL_OK;
	}
	if (a[0] == '-' && a[1]) {
		fputs(usage, stderr);
		return tool_fail(cmd, TOOL_USAGE, "unknown option '%s'", a);
	}
	if (*pos)
		return tool_fail(cmd, TOOL_USAGE, "more than one %s ('%s', '%s')", what, *pos, a);
	*pos = a;
	return -1;
}

/* The directory: the argument, else the environment's, else the default.
 * NULL after printing the error (an invalid environment variable). */
const char *tool_resolve_dir(const char *cmd, const char *arg, edgelog_config *cfg)
{
	edgelog_config_init(cfg);
	if (edgelog_config_from_env(cfg)) {
		tool_fail(cmd, TOOL_USAGE, "%s", edgelog_errmsg(NULL));
		return NULL;
	}
	if (arg)
		cfg->dir = arg;
	return cfg->dir ? cfg->dir : "./edgelog-data";
}

int tool_dir_exists(const char *cmd, const char *dir)
{
	FILE *f;
	char path[4200];

	snprintf(path, sizeof(path), "%s/.", dir);
	f = fopen(path, "r");
	if (!f) {
		tool_fail(cmd, TOOL_USAGE, "%s: no such directory", dir);
		return 0;
	}
	fclose(f);
	return 1;
}

const char *tool_existing_dir(const char *cmd, const char *arg, edgelog_config *cfg)
{
	const char *dir = tool_resolve_dir(cmd, arg, cfg);
	return dir && tool_dir_exists(cmd, dir) ? dir : NULL;
}

/* 1234567 -> "1,234,567". */
static const char *commas(uint64_t v, char *buf, size_t n)
{
	char raw[32];
	size_t len, i, o = 0;

	len = (size_t)snprintf(raw, sizeof(raw), "%llu", (unsigned long long)v);
	for (i = 0; i < len && o + 2 < n; i++) {
		if (i && (len - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = raw[i];
	}
	buf[o] = '\0';
	return buf;
}

static const char *mb(uint64_t bytes, char *buf, size_t n)
{
	double m = (double)bytes / (1024.0 * 1024.0);

	if (bytes % (1024 * 1024) == 0)
		snprintf(buf, n, "%llu MB", (unsigned long long)(bytes >> 20));
	else
		snprintf(buf, n, "%.1f MB", m);
	return buf;
}

static const char *ago(int64_t unix_s, char *buf, size_t n)
{
	time_t t = (time_t)unix_s;
	struct tm tm;
	char when[64];
	int64_t d;

	/* The time comes from a file: a year gmtime cannot hold prints as
	 * the number it is, and the difference saturates. */
	if (__builtin_sub_overflow((int64_t)time(NULL), unix_s, &d))
		d = unix_s < 0 ? INT64_MAX : 0;
	if ((int64_t)t != unix_s || !gmtime_r(&t, &tm) ||
	    !strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(when, sizeof(when), "unix time %lld", (long long)unix_s);
	if (d < 0)
		d = 0;
	if (d < 120)
		snprintf(buf, n, "%s (%lld s ago)", when, (long long)d);
	else if (d < 7200)
		snprintf(buf, n, "%s (%lld min ago)", when, (long long)(d / 60));
	else
		snprintf(buf, n, "%s (%lld h ago)", when, (long long)(d / 3600));
	return buf;
}

static void print_human(const char *dir, const edgelog_status *st, int live)
{
	char a[40], b[40], c[40];
	unsigned bit;

	if (live > 0)
		printf("edgelog status of %s (live, from the running engine)\n", dir);
	else if (live < 0)
		printf("edgelog status of %s (an engine holds it but wrote no fresh snapshot: "
		       "computed from segments and cursor)\n",
		       dir);
	else
		printf("edgelog status of %s (offline: no engine running, computed from segments "
		       "and cursor)\n",
		       dir);
	printf("Device: %s\n", st->device_id);
	printf("Pending: %s / %s (%llu%%)\n", commas(st->pending, a, sizeof(a)),
	       commas(st->alert_pending, b, sizeof(b)),
	       (unsigned long long)(st->alert_pending ? st->pending * 100 / st->alert_pending : 0));
	printf("Sent: %s\n", commas(st->sent, a, sizeof(a)));
	printf("Failed: %s\n", commas(st->failed, a, sizeof(a)));
	printf("Dropped: %s   Expired: %s   Corrupt: %s\n", commas(st->dropped, a, sizeof(a)),
	       commas(st->expired, b, sizeof(b)), commas(st->corrupt, c, sizeof(c)));
	printf("Size: %s / %s (%.1f%%)\n", mb(st->size_bytes, a, sizeof(a)),
	       mb(st->max_size_bytes, b, sizeof(b)),
	       st->max_size_bytes ? 100.0 * (double)st->size_bytes / (double)st->max_size_bytes :
				    0.0);
	printf("Segments: %llu", (unsigned long long)st->segments);
	if (st->pending)
		printf("   Oldest pending: %llu s", (unsigned long long)st->oldest_pending_age_s);
	printf("\n");
	if (live < 0)
		printf("Cloud Connection: - unknown (the engine's snapshot is missing or stale)\n");
	else if (!live)
		printf("Cloud Connection: - unknown (no engine running)\n");
	else if (!st->upload_enabled)
		printf("Cloud Connection: - none (no endpoint configured: buffer only)\n");
	else if (st->is_connected)
		printf("Cloud Connection: \u2713 Connected\n");
	else if (st->retry_in_s)
		printf("Cloud Connection: \u2717 Disconnected (retry in %llu s)\n",
		       (unsigned long long)st->retry_in_s);
	else
		printf("Cloud Connection: \u2717 Disconnected\n");
	if (st->last_success_at) {
		char t[96];
		printf("Last success: %s\n", ago(st->last_success_at, t, sizeof(t)));
	}
	if (st->last_error[0])
		printf("Last error: %s\n", st->last_error);
	/* Recovery: where the backlog stands. */
	if (!st->pending)
		printf("Recovery status: up to date");
	else if (live <= 0)
		printf("Recovery status: %s record(s) wait for the next engine to send them",
		       commas(st->pending, a, sizeof(a)));
	else if (!st->upload_enabled)
		printf("Recovery status: buffer only, %s record(s) kept",
		       commas(st->pending, a, sizeof(a)));
	else if (st->is_connected)
		printf("Recovery status: recovering, %s record(s) left to send",
		       commas(st->pending, a, sizeof(a)));
	else
		printf("Recovery status: buffering, %s record(s) kept until the cloud is back",
		       commas(st->pending, a, sizeof(a)));
	if (st->recovered)
		printf(" (%s delivered after outages so far)", commas(st->recovered, b, sizeof(b)));
	printf("\n");
	if (!st->alerts) {
		printf("Alerts: none\n");
		return;
	}
	printf("Alerts:\n");
	for (bit = 1; bit <= EDGELOG_ALERT_FAILED; bit <<= 1) {
		char msg[192];
		if (!(st->alerts & bit))
			continue;
		edgelog_alert_message(st, bit, msg, sizeof(msg));
		printf("  ! %s: %s\n", edgelog_alert_name(bit), msg);
	}
}

/* A data directory others may write to: they could plant files or
 * symlinks where the engine writes (issue 9, defect 4). */
static void perm_warning(const char *dir, FILE *out)
{
	struct stat sb;

	if (stat(dir, &sb) == 0 && (sb.st_mode & (S_IWGRP | S_IWOTH)))
		fprintf(out,
			"Warning: %s is %s-writable (mode %04o): another user could plant files "
			"or symlinks in it; chmod go-w %s\n",
			dir, (sb.st_mode & S_IWOTH) ? "world" : "group",
			(unsigned)(sb.st_mode & 07777), dir);
}

/* st as JSON (source set) or Prometheus text (source NULL), malloc'd;
 * NULL after printing the error. */
static char *status_text(const char *cmd, const edgelog_status *st, const char *source, size_t *len)
{
	char *text = NULL;
	size_t cap = 8192;
	int rc;

	for (;;) {
		char *t = realloc(text, cap);
		if (!t) {
			free(text);
			tool_fail(cmd, TOOL_PROBLEM, "out of memory");
			return NULL;
		}
		text = t;
		rc = source ? edgelog_status_json(st, source, text, cap, len) :
			      edgelog_status_prometheus(st, text, cap, len);
		if (rc != EDGELOG_ERANGE)
			break;
		cap = *len + 1;
	}
	if (rc) {
		free(text);
		tool_fail(cmd, TOOL_PROBLEM, "%s", edgelog_errmsg(NULL));
		return NULL;
	}
	return text;
}

/* Status of dir; prints the error and returns the exit code on failure. */
static int get(const char *cmd, const char *dir, edgelog_status *st, int *live)
{
	int rc;

	if (!tool_dir_exists(cmd, dir))
		return TOOL_USAGE;
	rc = edgelog_status_dir(dir, st, live);
	if (rc)
		return tool_fail(cmd, rc == EDGELOG_ECONFIG ? TOOL_USAGE : TOOL_PROBLEM, "%s",
				 edgelog_errmsg(NULL));
	return 0;
}

int tool_status(int argc, char **argv)
{
	edgelog_config cfg;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	const char *arg, *dir;
	int json = 0, live = 0, rc;

	if ((rc = tool_dir_args("status", STATUS_USAGE, argc, argv, "--json", &json, &arg, NULL)))
		return rc < 0 ? TOOL_OK : rc;
	if (!(dir = tool_resolve_dir("status", arg, &cfg)))
		return TOOL_USAGE;
	if ((rc = get("status", dir, &st, &live)))
		return rc;
	if (json) {
		size_t len;
		char *text = status_text("status", &st,
					 live > 0 ? "live" :
					 live < 0 ? "stale" :
						    "offline",
					 &len);
		if (!text)
			return TOOL_PROBLEM;
		fwrite(text, 1, len, stdout);
		putchar('\n');
		free(text);
		perm_warning(dir, stderr);
	} else {
		print_human(dir, &st, live);
		perm_warning(dir, stdout);
	}
	return fflush(stdout) == 0 ? TOOL_OK : TOOL_PROBLEM;
}

int tool_export_stats(int argc, char **argv)
{
	edgelog_config cfg;
	const char *arg, *dir, *out;
	int rc;

	if ((rc = tool_dir_args("export-stats", EXPORT_USAGE, argc, argv, NULL, NULL, &arg, &out)))
		return rc < 0 ? TOOL_OK : rc;
	if (!out)
		return tool_fail("export-stats", TOOL_USAGE, "missing OUT.json (see --help)");
	if (!(dir = tool_existing_dir("export-stats", arg, &cfg)))
		return TOOL_USAGE;
	if ((rc = edgelog_export_stats(dir, out)))
		return tool_fail("export-stats", rc == EDGELOG_ECONFIG ? TOOL_USAGE : TOOL_PROBLEM,
				 "%s", edgelog_errmsg(NULL));
	if (strcmp(out, "-"))
		fprintf(stderr, "edgelog export-stats: wrote %s\n", out);
	return TOOL_OK;
}

int tool_metrics(int argc, char **argv)
{
	edgelog_config cfg;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	const char *arg, *dir;
	char *text;
	size_t len;
	int live = 0, rc;

	if ((rc = tool_dir_args("metrics", METRICS_USAGE, argc, argv, NULL, NULL, &arg, NULL)))
		return rc < 0 ? TOOL_OK : rc;
	if (!(dir = tool_resolve_dir("metrics", arg, &cfg)))
		return TOOL_USAGE;
	if ((rc = get("metrics", dir, &st, &live)))
		return rc;
	if (!(text = status_text("metrics", &st, NULL, &len)))
		return TOOL_PROBLEM;
	fwrite(text, 1, len, stdout);
	free(text);
	printf("# HELP edgelog_engine_running 1 if an engine holds the directory and its "
	       "snapshot is fresh.\n# TYPE edgelog_engine_running gauge\n"
	       "edgelog_engine_running %d\n",
	       live != 0);
	return fflush(stdout) == 0 ? TOOL_OK : TOOL_PROBLEM;
}
