/*
 * tool_dump.c - `edgelog dump` / `segdump`: print records as a table or as
 * wire-format JSON lines, and verify a buffer directory or segment file.
 * Read-only: safe next to a running engine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <edgelog.h>

#include "seg_cursor.h"
#include "seg_dir.h"
#include "seg_json.h"
#include "seg_vfs.h"
#include "tool.h"

static const char DUMP_USAGE[] =
	"usage: edgelog dump [OPTIONS] PATH      (also: segdump [OPTIONS] PATH)\n"
	"\n"
	"PATH is an edgelog directory, a directory of segment files, or one segment file.\n"
	"\n"
	"  --json        one record per line: {\"device_id\",\"seq\",\"ts\",\"data\"}\n"
	"  --verify      check every frame and the cursor; print each damaged range;\n"
	"                exit 1 if anything is damaged, 0 if not\n"
	"  --from SEQ    start at this sequence number\n"
	"  --to SEQ      stop after this sequence number\n"
	"  --device-id ID  device_id for --json (default: $EDGELOG_DEVICE_ID, the host name)\n"
	"  -h, --help    this text\n";

typedef struct dump_ctx {
	int verify;
	int json;
	unsigned long long damaged;
} dump_ctx;

static void on_corrupt(void *payload, const char *segment, uint64_t offset, uint64_t length,
		       const char *reason)
{
	dump_ctx *c = payload;
	c->damaged++;
	fprintf(c->json ? stderr : stdout, "damaged: %s bytes %llu..%llu (%llu bytes): %s\n",
		segment, (unsigned long long)offset, (unsigned long long)(offset + length),
		(unsigned long long)length, reason);
}

static void fmt_time(int64_t ms, char *out, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	seg_msg(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000 + 1000) % 1000);
}

int tool_dump(int argc, char **argv)
{
	unsigned long long from = 0, to = UINT64_MAX;
	const char *path = NULL, *device = getenv("EDGELOG_DEVICE_ID");
	char host[128], cpath[4200];
	dump_ctx c = {0, 0, 0};
	edgelog_reader *r;
	edgelog_record rec;
	cur_state cur;
	int how = CUR_MISSING, have_cursor = 0, rc, i;
	unsigned long long n = 0, first = 0, last = 0, gaps = 0;
	seg_buf line = {0};

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--json")) {
			c.json = 1;
		} else if (!strcmp(a, "--verify")) {
			c.verify = 1;
		} else if (!strcmp(a, "--from") || !strcmp(a, "--to") ||
			   !strcmp(a, "--device-id")) {
			if (i + 1 >= argc)
				return tool_fail("dump", TOOL_USAGE, "%s needs a value", a);
			if (!strcmp(a, "--device-id"))
				device = argv[++i];
			else if (tool_parse_u64("dump", a, argv[++i],
						!strcmp(a, "--from") ? &from : &to))
				return TOOL_USAGE;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(DUMP_USAGE, stdout);
			return TOOL_OK;
		} else if (a[0] == '-' && a[1]) {
			fputs(DUMP_USAGE, stderr);
			return tool_fail("dump", TOOL_USAGE, "unknown option '%s'", a);
		} else if (path) {
			return tool_fail("dump", TOOL_USAGE, "more than one PATH ('%s', '%s')",
					 path, a);
		} else {
			path = a;
		}
	}
	if (!path) {
		fputs(DUMP_USAGE, stderr);
		return TOOL_USAGE;
	}
	if (!device || !*device)
		device = getenv("EDGE_DEVICE_ID");
	if (!device || !*device) {
		if (gethostname(host, sizeof(host)) != 0)
			strcpy(host, "unknown");
		host[sizeof(host) - 1] = '\0';
		device = host;
	}

	rc = edgelog_reader_open(&r, path, from);
	if (rc)
		return tool_fail("dump", rc == EDGELOG_ENOTFOUND ? TOOL_USAGE : TOOL_PROBLEM, "%s",
				 edgelog_errmsg(NULL));
	edgelog_reader_on_corrupt(r, on_corrupt, &c);

	/* The cursor tells acked from pending (edgelog directories only). */
	if (!seg_path(cpath, sizeof(cpath), path, CUR_FILE)) {
		seg_err e;
		rc = cur_load(seg_vfs_posix(), cpath, &cur, &how, &e);
		if (rc == 0 && how != CUR_MISSING) {
			have_cursor = 1;
			if (c.verify && how != CUR_LOADED) {
				c.damaged++;
				printf("damaged: %s: %s\n", cpath,
				       how == CUR_FALLBACK ?
					       "newest slot invalid (older slot used)" :
					       "no valid slot");
			}
		} else if (rc && c.verify) {
			c.damaged++;
			printf("damaged: %s: %s\n", cpath, e.msg);
		}
	}
	if (!c.json && !c.verify)
		printf("%-10s %-24s %7s  %-36s %s\n", "SEQ", "TIME (UTC)", "BYTES",
		       "SEGMENT:OFFSET", "STATE");
	while ((rc = edgelog_reader_next(r, &rec)) == 0) {
		if (rec.seq > to)
			break;
		if (n && rec.seq != last + 1) {
			gaps++;
			if (c.verify)
				printf("gap: seq %llu..%llu missing (before %s offset %llu)\n",
				       last + 1, (unsigned long long)rec.seq - 1, rec.segment,
				       (unsigned long long)rec.offset);
		}
		if (!n)
			first = rec.seq;
		last = rec.seq;
		n++;
		if (c.verify)
			continue;
		if (c.json) {
			line.len = 0;
			seg_buf_puts(&line, "{\"device_id\":");
			seg_json_string(&line, device, strlen(device));
			seg_buf_printf(&line, ",\"seq\":%llu,\"ts\":%lld,\"data\":",
				       (unsigned long long)rec.seq, (long long)rec.ts_ms);
			if (seg_mp_to_json(rec.data, rec.len, &line)) {
				fprintf(stderr,
					"edgelog dump: %s offset %llu: record is not valid msgpack\n",
					rec.segment, (unsigned long long)rec.offset);
				continue;
			}
			seg_buf_puts(&line, "}\n");
			fwrite(line.p, 1, line.len, stdout);
		} else {
			char t[40], where[96];
			fmt_time(rec.ts_ms, t, sizeof(t));
			snprintf(where, sizeof(where), "%s:%llu", rec.segment,
				 (unsigned long long)rec.offset);
			printf("%-10llu %-24s %7zu  %-36s %s\n", (unsigned long long)rec.seq, t,
			       rec.len, where,
			       !have_cursor             ? "-" :
			       rec.seq <= cur.acked_seq ? "acked" :
							  "pending");
		}
	}
	seg_buf_free(&line);
	if (rc != 0 && rc != EDGELOG_EOF) {
		edgelog_reader_close(r);
		return tool_fail("dump", TOOL_PROBLEM, "%s", edgelog_errmsg(NULL));
	}
	edgelog_reader_close(r);
	if (c.verify) {
		printf("%llu records", n);
		if (n)
			printf(", seq %llu..%llu", first, last);
		printf(", %llu damaged range(s), %llu gap(s)%s\n", c.damaged, gaps,
		       c.damaged || gaps ? ": DAMAGED" : ": OK");
		return c.damaged || gaps ? TOOL_PROBLEM : TOOL_OK;
	}
	return c.damaged ? TOOL_PROBLEM : TOOL_OK;
}
