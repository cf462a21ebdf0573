/*
 * tool_admin.c - `edgelog requeue-failed` and `edgelog cleanup`: the
 * maintenance calls, on a directory no engine holds (they take its lock and
 * refuse, naming the holder's pid, when an engine runs).
 */
#include <stdio.h>
#include <string.h>

#include <edgelog.h>

#include "tool.h"

static const char REQUEUE_USAGE[] =
	"usage: edgelog requeue-failed [--dir DIR | DIR]\n"
	"\n"
	"Moves every dead letter in DIR/failed/ (records the cloud refused\n"
	"permanently) back into the log as new records, so the next engine sends\n"
	"them again. Exactly once, even if interrupted: the next run or the next\n"
	"engine finishes the job. Refuses while an engine holds DIR.\n"
	"\n"
	"  --dir DIR     the buffer directory (default: $EDGELOG_DIR, ./edgelog-data)\n"
	"  -h, --help    this text\n"
	"\n"
	"Exit: 0 done, 1 it could not be done (locked, I/O error), 2 usage error.\n";

static const char CLEANUP_USAGE[] =
	"usage: edgelog cleanup [--force] [--dir DIR | DIR]\n"
	"\n"
	"Runs retention now: removes acknowledged segments, segments older than\n"
	"retention_days (counted as expired) and, over max_size_mb under\n"
	"full_policy=drop_oldest, the oldest segments (counted as dropped). The\n"
	"settings come from the environment (EDGELOG_RETENTION_DAYS, ...).\n"
	"Refuses while an engine holds DIR.\n"
	"\n"
	"  --force       also delete dead letters older than retention_days\n"
	"  --dir DIR     the buffer directory (default: $EDGELOG_DIR, ./edgelog-data)\n"
	"  -h, --help    this text\n"
	"\n"
	"Exit: 0 done, 1 it could not be done (locked, I/O error), 2 usage error.\n";

static int code_for(int rc)
{
	return rc == EDGELOG_ECONFIG ? TOOL_USAGE : TOOL_PROBLEM;
}

int tool_requeue_failed(int argc, char **argv)
{
	edgelog_config cfg;
	edgelog_status before = {.version = EDGELOG_STATUS_VERSION}, after = before;
	const char *arg, *dir;
	int rc;

	if ((rc = tool_dir_args("requeue-failed", REQUEUE_USAGE, argc, argv, NULL, NULL, &arg,
				NULL)))
		return rc < 0 ? TOOL_OK : rc;
	if (!(dir = tool_existing_dir("requeue-failed", arg, &cfg)))
		return TOOL_USAGE;
	if ((rc = edgelog_status_dir(dir, &before, NULL)))
		return tool_fail("requeue-failed", code_for(rc), "%s", edgelog_errmsg(NULL));
	if ((rc = edgelog_requeue_failed(dir)))
		return tool_fail("requeue-failed", code_for(rc), "%s", edgelog_errmsg(NULL));
	printf("%s\n", edgelog_errmsg(NULL));
	if (edgelog_status_dir(dir, &after, NULL) == 0)
		printf("failed: %llu -> %llu, pending: %llu -> %llu\n",
		       (unsigned long long)before.failed, (unsigned long long)after.failed,
		       (unsigned long long)before.pending, (unsigned long long)after.pending);
	return TOOL_OK;
}

int tool_cleanup(int argc, char **argv)
{
	edgelog_config cfg;
	edgelog_status before = {.version = EDGELOG_STATUS_VERSION}, after = before;
	const char *arg, *dir;
	edgelog *log;
	int force = 0, rc, rc2;

	if ((rc = tool_dir_args("cleanup", CLEANUP_USAGE, argc, argv, "--force", &force, &arg,
				NULL)))
		return rc < 0 ? TOOL_OK : rc;
	if (!(dir = tool_existing_dir("cleanup", arg, &cfg)))
		return TOOL_USAGE;
	cfg.dir = dir;
	cfg.endpoint = NULL; /* retention only: nothing is sent from here */
	cfg.auth_token = cfg.auth_token_file = NULL;
	if ((rc = edgelog_open(&log, &cfg)))
		return tool_fail("cleanup", code_for(rc), "%s", edgelog_errmsg(NULL));
	edgelog_get_status(log, &before);
	rc = edgelog_cleanup(log, force);
	edgelog_get_status(log, &after);
	if (rc)
		tool_fail("cleanup", TOOL_PROBLEM, "%s", edgelog_errmsg(log));
	rc2 = edgelog_close(log);
	if (rc2 && !rc)
		tool_fail("cleanup", TOOL_PROBLEM, "%s", edgelog_errmsg(NULL));
	printf("segments: %llu -> %llu, size: %llu -> %llu bytes\n",
	       (unsigned long long)before.segments, (unsigned long long)after.segments,
	       (unsigned long long)before.size_bytes, (unsigned long long)after.size_bytes);
	printf("expired: +%llu, dropped: +%llu, dead letters removed: %llu\n",
	       (unsigned long long)(after.expired - before.expired),
	       (unsigned long long)(after.dropped - before.dropped),
	       (unsigned long long)(before.failed - after.failed));
	return rc || rc2 ? TOOL_PROBLEM : TOOL_OK;
}
