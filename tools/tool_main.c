/*
 * tool_main.c - the multi-call programs. `edgelog CMD ...`, or called as
 * `segdump` / `segtail` through a link (busybox style, one binary for a
 * firmware image).
 *
 * Built twice: `edgelog`, the device program (no sink, no demo, so no
 * libmicrohttpd, jansson or zlib), and with TOOL_DEV `edgelog-dev`, the
 * developer program, which has every command. The device program hands
 * `sink` and `demo` to an edgelog-dev installed next to it, so
 * `edgelog sink` and `edgelog demo` keep working on a developer machine.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <edgelog.h>

#include "tool.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} commands[] = {
	{"run", tool_run, "agent: append JSON lines from stdin or a file, upload them"},
	{"status", tool_status, "pending, sent, failed, size, connection, alerts"},
	{"export-stats", tool_export_stats, "status plus per-segment detail as JSON"},
	{"metrics", tool_metrics, "Prometheus text exposition"},
	{"dump", tool_dump, "print, verify or salvage records (also: segdump)"},
	{"tail", tool_tail, "last records, then follow new ones (also: segtail)"},
	{"repair", tool_repair, "truncate torn tails, quarantine damage, rebuild the cursor"},
	{"requeue-failed", tool_requeue_failed, "move dead letters back for another try"},
	{"cleanup", tool_cleanup, "run retention now (--force: also old dead letters)"},
#ifdef TOOL_DEV
	{"sink", tool_sink, "reference receiver: store uploads, drop duplicates, inject faults"},
	{"demo", tool_demo, "an inference loop, an outage, recovery: nothing lost"},
#else
	{"sink", NULL, "reference receiver (in edgelog-dev, the developer program)"},
	{"demo", NULL, "an inference loop, an outage, recovery (in edgelog-dev)"},
#endif
};

#ifndef TOOL_DEV
/* `edgelog sink|demo ...`: exec edgelog-dev from this program's directory. */
static int run_dev(char **argv)
{
	char self[PATH_MAX], dev[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			slash[1] = '\0';
			snprintf(dev, sizeof(dev), "%sedgelog-dev", self);
			if (access(dev, X_OK) == 0) {
				argv[0] = dev;
				execv(dev, argv);
				return tool_fail(argv[1], TOOL_PROBLEM, "cannot run %s: %s", dev,
						 strerror(errno));
			}
		}
	}
	return tool_fail(argv[1], TOOL_USAGE,
			 "not in the device program: `%s` is part of edgelog-dev, the developer "
			 "program (build option EDGELOG_BUILD_DEV_TOOLS), which is not installed "
			 "next to this one",
			 argv[1]);
}
#endif

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: edgelog COMMAND [OPTIONS]\n\ncommands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\n`edgelog COMMAND --help` describes each. Exit codes: 0 success, 1 a problem "
		   "was found, 2 usage or configuration error.\n");
}

int main(int argc, char **argv)
{
	const char *self = strrchr(argv[0], '/');
	size_t i;

	self = self ? self + 1 : argv[0];
	if (!strcmp(self, "segdump"))
		return tool_dump(argc, argv);
	if (!strcmp(self, "segtail"))
		return tool_tail(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return TOOL_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return TOOL_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("edgelog %s\n", edgelog_version());
		return TOOL_OK;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name)) {
#ifndef TOOL_DEV
			if (!commands[i].fn)
				return run_dev(argv);
#endif
			return commands[i].fn(argc - 1, argv + 1);
		}
	fprintf(stderr, "edgelog: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return TOOL_USAGE;
}
