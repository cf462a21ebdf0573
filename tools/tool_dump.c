/*
 * tool_dump.c - `edgelog dump` / `segdump`: print records as a table or as
 * wire-format JSON lines, verify a buffer directory or segment file, count
 * what it holds (--stats), or salvage every valid record into a fresh
 * directory (--recover). A printer over the library's walk
 * (edgelog_verify, edgelog_salvage): read-only on PATH, safe next to a
 * running engine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <edgelog.h>

#include "tool.h"

static const char DUMP_USAGE[] =
	"usage: edgelog dump [OPTIONS] PATH      (also: segdump [OPTIONS] PATH)\n"
	"\n"
	"PATH is an edgelog directory, a directory of segment files, or one segment file.\n"
	"Without a mode option: a table (seq, time, size, segment:offset, acked/pending).\n"
	"\n"
	"  --json        one record per line: {\"device_id\",\"seq\",\"ts\",\"data\"}\n"
	"  --full        the table's RECORD column whole (default: cut to the\n"
	"                terminal's width; whole when output is not a terminal)\n"
	"  --verify      check every frame and the cursor; print each damaged range and\n"
	"                each gap in the sequence numbers; exit 1 if anything is damaged or\n"
	"                missing, 0 if not. Gaps that are accounted for (acknowledged, in\n"
	"                the cursor's gaps, or recorded by `edgelog repair` in\n"
	"                quarantine/lost-seqs) are listed but are not damage\n"
	"  --stats       one row per segment (records, bytes, first and last seq and time,\n"
	"                damaged ranges), totals, the oldest and newest record, damage\n"
	"  --recover OUTDIR\n"
	"                write every valid record (same seq, same time, same bytes) into\n"
	"                OUTDIR, a new edgelog directory (it must not exist, or be empty);\n"
	"                report what was saved and what was lost, as seq ranges, and the\n"
	"                damaged byte ranges; exit 1 if anything was lost. Written in\n"
	"                .NAME.salvage beside OUTDIR (NAME: its last component), renamed\n"
	"                into place once complete and synced (a leftover one is removed)\n"
	"  --from SEQ    start at this sequence number\n"
	"  --to SEQ      stop after this sequence number\n"
	"  --device-id ID  device_id for --json (default: $EDGELOG_DEVICE_ID, the id stored in the directory, the host name)\n"
	"  -h, --help    this text\n"
	"\n"
	"Exit codes: 0 no damage found, 1 damage found (or, with --recover, records lost),\n"
	"2 usage error.\n";

/* Per segment file, for --stats. */
typedef struct dump_row {
	char name[64];
	uint64_t file_bytes, records, data_bytes, first, last;
	int64_t first_ts, last_ts;
	uint64_t damaged, damaged_bytes;
} dump_row;

typedef struct dump_ctx {
	int verify, json, stats, table;
	const char *recover, *device;
	unsigned long long bad_msgpack;
	dump_row *rows;
	size_t n_rows, cap_rows;
	int oom, out_err;
	/* --recover: the runs saved and lost, up to 20 of each printed. */
	unsigned long long n_ranges[2];
	char ranges[2][20][48];
} dump_ctx;

static dump_row *row_for(dump_ctx *c, const char *name)
{
	size_t i;

	for (i = c->n_rows; i > 0; i--)
		if (!strcmp(c->rows[i - 1].name, name))
			return &c->rows[i - 1];
	if (c->n_rows == c->cap_rows) {
		size_t cap = c->cap_rows ? c->cap_rows * 2 : 16;
		dump_row *nr = realloc(c->rows, cap * sizeof(*nr));
		if (!nr) {
			c->oom = 1;
			return NULL;
		}
		c->rows = nr;
		c->cap_rows = cap;
	}
	memset(&c->rows[c->n_rows], 0, sizeof(*c->rows));
	snprintf(c->rows[c->n_rows].name, sizeof(c->rows[0].name), "%s", name);
	return &c->rows[c->n_rows++];
}

/* ---- the callbacks ---------------------------------------------------------- */

static void on_segment(void *payload, const char *segment, uint64_t file_bytes)
{
	dump_row *row = row_for(payload, segment);

	if (row)
		row->file_bytes = file_bytes;
}

static void on_damage(void *payload, const char *segment, uint64_t offset, uint64_t length,
		      const char *reason)
{
	dump_ctx *c = payload;
	dump_row *row;

	if (c->stats && (row = row_for(c, segment))) {
		row->damaged++;
		row->damaged_bytes += length;
	}
	fprintf(c->json ? stderr : stdout, "damaged: %s bytes %llu..%llu (%llu bytes): %s\n",
		segment, (unsigned long long)offset, (unsigned long long)(offset + length),
		(unsigned long long)length, reason);
}

static void on_file_damage(void *payload, const char *path, const char *reason)
{
	(void)payload;
	printf("damaged: %s: %s\n", path, reason);
}

static void on_gap(void *payload, uint64_t lo, uint64_t hi, int accounted,
		   const edgelog_record *next)
{
	dump_ctx *c = payload;

	if (c->verify)
		printf("gap: seq %llu..%llu missing (before %s offset %llu)%s\n",
		       (unsigned long long)lo, (unsigned long long)hi, next->segment,
		       (unsigned long long)next->offset,
		       accounted ? ": accounted for (acknowledged, a cursor gap or "
				   "quarantine/lost-seqs)" :
				   "");
}

static int on_record(void *payload, const edgelog_record *rec, int acked)
{
	dump_ctx *c = payload;
	int k;

	if (c->stats) {
		dump_row *row = row_for(c, rec->segment);
		if (row) {
			if (!row->records) {
				row->first = rec->seq;
				row->first_ts = rec->ts_ms;
			}
			row->records++;
			row->last = rec->seq;
			row->last_ts = rec->ts_ms;
			row->data_bytes += EDGELOG_FRAME_HEADER + rec->len;
		}
		return 0;
	}
	if (!c->json && !c->table)
		return 0; /* --verify, --recover: the library counts */
	k = tool_print_record("dump", rec, c->json, c->device,
			      acked < 0 ? "-" :
			      acked     ? "acked" :
					  "pending");
	if (k == 1)
		c->bad_msgpack++;
	if (k == -1) {
		c->oom = 1;
		return 1;
	}
	return 0; /* a failed write (-2) does not stop the walk */
}

static void on_range(void *payload, int lost, uint64_t lo, uint64_t hi)
{
	dump_ctx *c = payload;
	unsigned long long i = c->n_ranges[lost]++;

	if (i >= 20)
		return;
	if (lo == hi)
		snprintf(c->ranges[lost][i], sizeof(c->ranges[0][0]), "%llu",
			 (unsigned long long)lo);
	else
		snprintf(c->ranges[lost][i], sizeof(c->ranges[0][0]), "%llu..%llu",
			 (unsigned long long)lo, (unsigned long long)hi);
}

/* Print up to 20 ranges "a..b, c..d, ..." of kind lost. */
static void print_ranges(const dump_ctx *c, int lost)
{
	unsigned long long i;

	for (i = 0; i < c->n_ranges[lost] && i < 20; i++)
		printf("%s%s", i ? ", " : "", c->ranges[lost][i]);
	if (c->n_ranges[lost] > 20)
		printf(", ... (%llu more)", c->n_ranges[lost] - 20);
}

static void stats_print(const dump_ctx *c, const edgelog_scan *s)
{
	dump_row t;
	char a[40], b[40];
	size_t i;

	memset(&t, 0, sizeof(t));
	printf("%-24s %9s %12s %12s %10s %10s  %-24s  %-24s  %7s\n", "SEGMENT", "RECORDS",
	       "FILE BYTES", "DATA BYTES", "FIRST SEQ", "LAST SEQ", "OLDEST (UTC)", "NEWEST (UTC)",
	       "DAMAGED");
	for (i = 0; i <= c->n_rows; i++) {
		const dump_row *r = i < c->n_rows ? &c->rows[i] : &t;
		if (i < c->n_rows) {
			if (r->records && (!t.records || r->first < t.first)) {
				t.first = r->first;
				t.first_ts = r->first_ts;
			}
			if (r->records && r->last >= t.last) {
				t.last = r->last;
				t.last_ts = r->last_ts;
			}
			t.records += r->records;
			t.file_bytes += r->file_bytes;
			t.data_bytes += r->data_bytes;
			t.damaged += r->damaged;
			t.damaged_bytes += r->damaged_bytes;
		}
		if (r->records) {
			tool_fmt_time(r->first_ts, a, sizeof(a));
			tool_fmt_time(r->last_ts, b, sizeof(b));
			printf("%-24s %9llu %12llu %12llu %10llu %10llu  %-24s  %-24s  %7llu\n",
			       i < c->n_rows ? r->name : "total", (unsigned long long)r->records,
			       (unsigned long long)r->file_bytes, (unsigned long long)r->data_bytes,
			       (unsigned long long)r->first, (unsigned long long)r->last, a, b,
			       (unsigned long long)r->damaged);
		} else {
			printf("%-24s %9llu %12llu %12llu %10s %10s  %-24s  %-24s  %7llu\n",
			       i < c->n_rows ? r->name : "total", 0ull,
			       (unsigned long long)r->file_bytes, (unsigned long long)r->data_bytes,
			       "-", "-", "-", "-", (unsigned long long)r->damaged);
		}
	}
	printf("\nsegments: %zu, %llu bytes on disk\n", c->n_rows,
	       (unsigned long long)t.file_bytes);
	printf("records: %llu, %llu bytes of frames (%llu of payload)\n",
	       (unsigned long long)t.records, (unsigned long long)t.data_bytes,
	       (unsigned long long)(t.data_bytes - t.records * EDGELOG_FRAME_HEADER));
	if (t.records) {
		tool_fmt_time(t.first_ts, a, sizeof(a));
		tool_fmt_time(t.last_ts, b, sizeof(b));
		printf("oldest: seq %llu at %s\nnewest: seq %llu at %s\n",
		       (unsigned long long)t.first, a, (unsigned long long)t.last, b);
	}
	if (s->have_cursor)
		printf("cursor: acked_seq %llu, last_seq %llu\n",
		       (unsigned long long)s->cursor_acked_seq,
		       (unsigned long long)s->cursor_last_seq);
	printf("damage: %llu damaged range(s) (%llu bytes), %llu unexplained gap(s), %llu gap(s) "
	       "accounted for\n",
	       (unsigned long long)s->damaged, (unsigned long long)s->damaged_bytes,
	       (unsigned long long)s->gaps, (unsigned long long)s->gaps_accounted);
}

int tool_dump(int argc, char **argv)
{
	unsigned long long from = 0, to = UINT64_MAX;
	const char *path = NULL, *device = getenv("EDGELOG_DEVICE_ID");
	char host[128];
	static dump_ctx c;
	edgelog_scan s;
	int rc, i, modes = 0, status, full = 0;

	memset(&c, 0, sizeof(c));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--json")) {
			c.json = 1;
			modes++;
		} else if (!strcmp(a, "--full")) {
			full = 1;
		} else if (!strcmp(a, "--verify")) {
			c.verify = 1;
			modes++;
		} else if (!strcmp(a, "--stats")) {
			c.stats = 1;
			modes++;
		} else if (!strcmp(a, "--from") || !strcmp(a, "--to") ||
			   !strcmp(a, "--device-id") || !strcmp(a, "--recover")) {
			if (i + 1 >= argc)
				return tool_fail("dump", TOOL_USAGE, "%s needs a value", a);
			if (!strcmp(a, "--device-id")) {
				device = argv[++i];
			} else if (!strcmp(a, "--recover")) {
				c.recover = argv[++i];
				modes++;
				if (!*c.recover)
					return tool_fail("dump", TOOL_USAGE,
							 "--recover: empty directory name");
			} else if (tool_parse_u64("dump", a, argv[++i],
						  !strcmp(a, "--from") ? &from : &to)) {
				return TOOL_USAGE;
			}
		} else if ((rc = tool_other_arg("dump", DUMP_USAGE, "PATH", a, &path)) >= 0) {
			return rc;
		}
	}
	if (!path) {
		fputs(DUMP_USAGE, stderr);
		return TOOL_USAGE;
	}
	if (modes > 1)
		return tool_fail("dump", TOOL_USAGE,
				 "--json, --verify, --stats and --recover: choose one");
	c.device = tool_device_id(device, path, host, sizeof(host));
	c.table = !c.json && !c.verify && !c.stats && !c.recover;
	tool_table_width = tool_terminal_width(1, full);

	edgelog_scan_init(&s);
	s.from_seq = from;
	s.to_seq = to;
	s.payload = &c;
	s.flags = (c.verify ? EDGELOG_SCAN_CURSOR : 0) |
		  (c.verify || c.stats || c.recover ? EDGELOG_SCAN_TAIL : 0);
	s.on_segment = c.stats ? on_segment : NULL;
	s.on_record = on_record;
	s.on_damage = on_damage;
	s.on_file_damage = on_file_damage;
	s.on_gap = on_gap;
	s.on_range = on_range;
	/* The table's header once PATH is known to be readable. */
	if (c.table) {
		edgelog_reader *r;
		if ((rc = edgelog_reader_open(&r, path, from)))
			return tool_fail("dump",
					 rc == EDGELOG_ENOTFOUND ? TOOL_USAGE : TOOL_PROBLEM, "%s",
					 edgelog_errmsg(NULL));
		edgelog_reader_close(r);
		tool_table_header(stdout);
	}
	rc = c.recover ? edgelog_salvage(path, c.recover, &s) : edgelog_verify(path, &s);
	if (rc == EDGELOG_ENOTFOUND)
		status = tool_fail("dump", TOOL_USAGE, "%s", edgelog_errmsg(NULL));
	else if (c.oom)
		status = tool_fail("dump", TOOL_PROBLEM, "out of memory");
	else if (rc && c.recover)
		status = tool_fail("dump", rc == EDGELOG_EINVAL ? TOOL_USAGE : TOOL_PROBLEM,
				   "--recover: %s", edgelog_errmsg(NULL));
	else if (rc)
		status = tool_fail("dump", TOOL_PROBLEM, "%s", edgelog_errmsg(NULL));
	else if (c.verify) {
		printf("%llu records", (unsigned long long)s.records);
		if (s.records)
			printf(", seq %llu..%llu", (unsigned long long)s.first_seq,
			       (unsigned long long)s.last_seq);
		printf(", %llu damaged range(s), %llu gap(s)", (unsigned long long)s.damaged,
		       (unsigned long long)s.gaps);
		if (s.gaps_accounted)
			printf(" (and %llu accounted for)", (unsigned long long)s.gaps_accounted);
		printf("%s\n", s.damaged || s.gaps ? ": DAMAGED" : ": OK");
		status = s.damaged || s.gaps ? TOOL_PROBLEM : TOOL_OK;
	} else if (c.stats) {
		stats_print(&c, &s);
		status = s.damaged || s.gaps ? TOOL_PROBLEM : TOOL_OK;
	} else if (c.recover) {
		printf("recovered into %s: %llu record(s), %llu bytes of data\n", c.recover,
		       (unsigned long long)s.records, (unsigned long long)s.data_bytes);
		if (s.records) {
			printf("saved: seq ");
			print_ranges(&c, 0);
			printf("\n");
		}
		if (s.lost_ranges) {
			printf("lost: seq ");
			print_ranges(&c, 1);
			printf(" (missing between saved records; listed in %s/quarantine/lost-seqs)\n",
			       c.recover);
		}
		if (s.have_cursor && s.records && s.cursor_last_seq > s.last_seq &&
		    to == UINT64_MAX)
			printf("unknown: seq %llu..%llu were handed out by the source (its cursor "
			       "says) but no record of them was found\n",
			       (unsigned long long)s.last_seq + 1,
			       (unsigned long long)s.cursor_last_seq);
		if (s.damaged)
			printf("damaged: %llu range(s), %llu bytes, not recoverable (listed above)\n",
			       (unsigned long long)s.damaged, (unsigned long long)s.damaged_bytes);
		printf("every saved record is pending in %s: it will be sent again (receivers "
		       "drop repeats by seq)\n",
		       c.recover);
		status = s.damaged || s.lost_ranges ? TOOL_PROBLEM : TOOL_OK;
	} else {
		status = s.damaged || c.bad_msgpack ? TOOL_PROBLEM : TOOL_OK;
	}
	free(c.rows);
	return status;
}
