/*
 * tool_repair.c - `edgelog repair [--dir D] | repair D`: edgelog_repair()
 * with one line printed per change it makes, then a summary.
 */
#include <stdio.h>
#include <string.h>

#include <edgelog.h>

#include "tool.h"

static const char REPAIR_USAGE[] =
	"usage: edgelog repair [--dir DIR]      (or: edgelog repair DIR)\n"
	"\n"
	"Puts a damaged edgelog directory back in order, in place:\n"
	"  - truncates a torn tail (an incomplete last write) after the last valid record;\n"
	"  - cuts damaged frames out of their segment; whole segments whose header is\n"
	"    unreadable are set aside. Nothing is deleted: the bytes go to DIR/quarantine/;\n"
	"  - records the sequence numbers no valid record holds any more in\n"
	"    DIR/quarantine/lost-seqs, so `edgelog dump --verify` accepts the gaps;\n"
	"  - rebuilds a missing or unreadable cursor conservatively: every stored record\n"
	"    is sent again rather than risk losing one.\n"
	"Prints one line per change (file, byte offset, bytes) and a summary. Refuses,\n"
	"naming its pid, while an engine holds the directory.\n"
	"\n"
	"  --dir DIR     the directory (default: $EDGELOG_DIR, $BUFFER_DB_PATH, ./edgelog-data)\n"
	"  -h, --help    this text\n"
	"\n"
	"Exit codes: 0 repaired (or nothing to repair), 1 something could not be repaired,\n"
	"2 usage or configuration error.\n";

/* "repairing DIR" goes out with the first action (or the summary), so
 * nothing claims a repair that the lock refused. */
typedef struct rp_out {
	const char *dir;
	int started;
} rp_out;

static void print_start(rp_out *o)
{
	if (!o->started)
		printf("repairing %s\n", o->dir);
	o->started = 1;
}

static void print_action(void *payload, const char *line)
{
	print_start(payload);
	printf("  %s\n", line);
	fflush(stdout);
}

int tool_repair(int argc, char **argv)
{
	const char *dir = NULL;
	edgelog_repair_report rep;
	edgelog_config cfg;
	rp_out out;
	int i, rc;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(REPAIR_USAGE, stdout);
			return TOOL_OK;
		} else if (!strcmp(a, "--dir")) {
			if (i + 1 >= argc)
				return tool_fail("repair", TOOL_USAGE, "--dir needs a value");
			if (dir)
				return tool_fail("repair", TOOL_USAGE,
						 "more than one directory ('%s', '%s')", dir,
						 argv[i + 1]);
			dir = argv[++i];
		} else if (a[0] == '-' && a[1]) {
			fputs(REPAIR_USAGE, stderr);
			return tool_fail("repair", TOOL_USAGE, "unknown option '%s'", a);
		} else if (dir) {
			return tool_fail("repair", TOOL_USAGE,
					 "more than one directory ('%s', '%s')", dir, a);
		} else {
			dir = a;
		}
	}
	if (dir && !*dir)
		return tool_fail("repair", TOOL_USAGE, "empty directory name");
	if (!dir) {
		/* The same default as the engine: EDGELOG_DIR, BUFFER_DB_PATH,
		 * ./edgelog-data. */
		edgelog_config_init(&cfg);
		if ((rc = edgelog_config_from_env(&cfg)))
			return tool_fail("repair", TOOL_USAGE, "%s", edgelog_errmsg(NULL));
		dir = cfg.dir ? cfg.dir : "./edgelog-data";
	}

	memset(&rep, 0, sizeof(rep));
	out.dir = dir;
	out.started = 0;
	rep.on_action = print_action;
	rep.on_action_payload = &out;
	rc = edgelog_repair(dir, &rep);
	if (!rc)
		print_start(&out);
	if (rc) {
		int code = rc == EDGELOG_ENOTFOUND || rc == EDGELOG_EINVAL ? TOOL_USAGE :
									     TOOL_PROBLEM;
		return tool_fail("repair", code, "%s%s", edgelog_errmsg(NULL),
				 code == TOOL_PROBLEM && rc != EDGELOG_ELOCKED ?
					 " (what was done before this is listed above; run repair "
					 "again once the cause is fixed)" :
					 "");
	}
	if (!rep.torn_tails && !rep.damaged_ranges && !rep.bad_segments && !rep.lost_seq_ranges &&
	    !rep.cursor_rebuilt) {
		printf("nothing to repair: %llu segment(s), %llu record(s)",
		       (unsigned long long)rep.segments, (unsigned long long)rep.records);
	} else {
		printf("repaired: %llu segment(s) examined, %llu record(s) kept",
		       (unsigned long long)rep.segments, (unsigned long long)rep.records);
		printf(", %llu torn tail(s) (%llu bytes), %llu damaged range(s) (%llu bytes), "
		       "%llu bad segment(s), %llu lost seq range(s)%s",
		       (unsigned long long)rep.torn_tails, (unsigned long long)rep.torn_bytes,
		       (unsigned long long)rep.damaged_ranges,
		       (unsigned long long)rep.damaged_bytes, (unsigned long long)rep.bad_segments,
		       (unsigned long long)rep.lost_seq_ranges,
		       rep.cursor_rebuilt ? ", cursor rebuilt" : "");
	}
	if (rep.records)
		printf("; seq %llu..%llu", (unsigned long long)rep.first_seq,
		       (unsigned long long)rep.last_seq);
	printf("\n");
	if (rep.quarantine_dir[0])
		printf("quarantined bytes are in %s (nothing was deleted)\n", rep.quarantine_dir);
	return TOOL_OK;
}
