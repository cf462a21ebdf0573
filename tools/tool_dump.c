/*
 * tool_dump.c - `edgelog dump` / `segdump`: print records as a table or as
 * wire-format JSON lines, verify a buffer directory or segment file, count
 * what it holds (--stats), or salvage every valid record into a fresh
 * directory (--recover). Read-only on PATH: safe next to a running engine.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <edgelog.h>

#include "seg_cursor.h"
#include "seg_dir.h"
#include "seg_json.h"
#include "seg_lost.h"
#include "seg_scan.h"
#include "seg_vfs.h"
#include "seg_writer.h"
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
	"                damaged byte ranges; exit 1 if anything was lost\n"
	"  --from SEQ    start at this sequence number\n"
	"  --to SEQ      stop after this sequence number\n"
	"  --device-id ID  device_id for --json (default: $EDGELOG_DEVICE_ID, the id stored in the directory, the host name)\n"
	"  -h, --help    this text\n"
	"\n"
	"Exit codes: 0 no damage found, 1 damage found (or, with --recover, records lost),\n"
	"2 usage error.\n";

/* Per segment file, for --stats. */
typedef struct dump_row {
	char name[SEG_NAME_LEN + 8];
	uint64_t file_bytes, records, data_bytes, first, last;
	int64_t first_ts, last_ts;
	uint64_t damaged, damaged_bytes;
} dump_row;

typedef struct dump_ctx {
	int verify, json, stats;
	const char *recover;
	unsigned long long damaged, damaged_bytes;
	dump_row *rows;
	size_t n_rows, cap_rows;
	int oom;
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

static void on_corrupt(void *payload, const char *segment, uint64_t offset, uint64_t length,
		       const char *reason)
{
	dump_ctx *c = payload;
	dump_row *row;

	c->damaged++;
	c->damaged_bytes += length;
	if (c->stats && (row = row_for(c, segment))) {
		row->damaged++;
		row->damaged_bytes += length;
	}
	fprintf(c->json ? stderr : stdout, "damaged: %s bytes %llu..%llu (%llu bytes): %s\n",
		segment, (unsigned long long)offset, (unsigned long long)(offset + length),
		(unsigned long long)length, reason);
}

/* PATH/quarantine/lost-seqs into r (missing: nothing). */
static void load_lost(const char *path, seg_ranges *r)
{
	char p[4200];
	FILE *f;
	char *buf;
	size_t n;

	if (seg_path(p, sizeof(p), path, SEG_QUARANTINE_DIR "/" SEG_LOST_FILE) ||
	    !(f = fopen(p, "rb")))
		return;
	buf = malloc(SEG_LOST_MAX_BYTES);
	if (buf) {
		n = fread(buf, 1, SEG_LOST_MAX_BYTES, f);
		seg_lost_parse(buf, n, r);
		free(buf);
	}
	fclose(f);
}

/* Print up to 20 ranges "a..b, c..d, ..." of r. */
static void print_ranges(const seg_ranges *r)
{
	size_t i;

	for (i = 0; i < r->n && i < 20; i++) {
		if (r->lo[i] == r->hi[i])
			printf("%s%llu", i ? ", " : "", (unsigned long long)r->lo[i]);
		else
			printf("%s%llu..%llu", i ? ", " : "", (unsigned long long)r->lo[i],
			       (unsigned long long)r->hi[i]);
	}
	if (r->n > 20)
		printf(", ... (%zu more)", r->n - 20);
}

/* ---- --recover ---------------------------------------------------------- */

typedef struct recover_ctx {
	char out[4096];
	char segdir[4200];
	seg_writer w;
	int open;
	seg_ranges saved; /* runs of consecutive seqs written */
	seg_ranges lost;  /* seqs missing between saved ones */
	uint64_t n, bytes;
} recover_ctx;

/* OUTDIR must be new or an empty directory; created here. */
/* 1 if path out (existing or not) lies inside or at directory src once
 * symlinks and ".." are resolved: the deepest existing ancestor of out is
 * resolved and the rest appended. */
static int path_inside(const char *src, const char *out)
{
	char s[4096], o[4096], head[4096], rest[4096] = "", t[8200];
	struct stat st;
	size_t n;

	if (stat(src, &st) != 0 || !S_ISDIR(st.st_mode) || !realpath(src, s))
		return 0;
	if (strlen(out) >= sizeof(head))
		return 0;
	snprintf(head, sizeof(head), "%s", out);
	while (!realpath(*head ? head : ".", o)) {
		char *sl = strrchr(head, '/');
		snprintf(t, sizeof(t), "/%s%s", sl ? sl + 1 : head, rest);
		if (strlen(t) >= sizeof(rest))
			return 0;
		memcpy(rest, t, strlen(t) + 1);
		if (!sl) {
			head[0] = '\0';
		} else if (sl == head) {
			head[1] = '\0';
			if (!realpath(head, o))
				return 0;
			break;
		} else {
			*sl = '\0';
		}
	}
	if (strlen(o) + strlen(rest) >= sizeof(o))
		return 0;
	strcat(o, strcmp(o, "/") ? rest : rest + (*rest == '/'));
	n = strlen(s);
	return !strncmp(o, s, n) && (o[n] == '/' || o[n] == '\0' || !strcmp(s, "/"));
}

static int recover_prepare(recover_ctx *rc, const char *out, const char *src)
{
	struct stat st;
	DIR *d;
	struct dirent *de;

	if (strlen(out) >= sizeof(rc->out) - 64)
		return tool_fail("dump", TOOL_USAGE, "--recover: path too long: %s", out);
	snprintf(rc->out, sizeof(rc->out), "%s", out);
	/* Writing into the directory being read would read the copies back
	 * and put a second log (and its seqs) inside the first. */
	if (path_inside(src, out))
		return tool_fail("dump", TOOL_USAGE,
				 "--recover: %s is inside %s, the directory being read; give one "
				 "outside it",
				 out, src);
	if (stat(out, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return tool_fail("dump", TOOL_USAGE,
					 "--recover: %s exists and is not a directory", out);
		if (!(d = opendir(out)))
			return tool_fail("dump", TOOL_USAGE, "--recover: %s: %s", out,
					 strerror(errno));
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
				closedir(d);
				return tool_fail("dump", TOOL_USAGE,
						 "--recover: %s is not empty (give a new or empty "
						 "directory)",
						 out);
			}
		closedir(d);
	} else if (errno != ENOENT) {
		return tool_fail("dump", TOOL_USAGE, "--recover: %s: %s", out, strerror(errno));
	} else if (mkdir(out, 0700) != 0) {
		return tool_fail("dump", TOOL_USAGE, "--recover: cannot create %s: %s", out,
				 strerror(errno));
	}
	snprintf(rc->segdir, sizeof(rc->segdir), "%s/segments", out);
	return 0;
}

static int recover_put(recover_ctx *rc, const edgelog_record *rec)
{
	seg_open_report orep;
	seg_err e;
	uint64_t seq;

	if (!rc->open) {
		/* A segment is never rolled for age here: the records keep
		 * their own times. */
		if (seg_writer_open(&rc->w, seg_vfs_posix(), rc->segdir, 4u << 20, INT64_MAX / 4, 1,
				    &orep, &e))
			return tool_fail("dump", TOOL_PROBLEM, "--recover: %s", e.msg);
		rc->open = 1;
	}
	/* Keep the record's seq: the writer numbers from next_seq, and seqs
	 * may skip (FORMAT.md), so the gaps of the source are kept too. */
	if (rec->seq < rc->w.next_seq)
		return 0; /* cannot happen: the reader returns ascending seqs */
	rc->w.next_seq = rec->seq;
	if (seg_writer_append(&rc->w, rec->data, (uint32_t)rec->len, rec->ts_ms, &seq, &e))
		return tool_fail("dump", TOOL_PROBLEM, "--recover: seq %llu: %s",
				 (unsigned long long)rec->seq, e.msg);
	if (rc->saved.n && rc->saved.hi[rc->saved.n - 1] + 1 == seq) {
		rc->saved.hi[rc->saved.n - 1] = seq;
	} else {
		if (rc->saved.n &&
		    seg_ranges_add(&rc->lost, rc->saved.hi[rc->saved.n - 1] + 1, seq - 1))
			return tool_fail("dump", TOOL_PROBLEM, "--recover: out of memory");
		if (seg_ranges_add(&rc->saved, seq, seq))
			return tool_fail("dump", TOOL_PROBLEM, "--recover: out of memory");
	}
	rc->n++;
	rc->bytes += rec->len;
	return 0;
}

/* Sync the segments, then write the cursor and the lost ranges. The new
 * cursor acknowledges nothing that was saved: every salvaged record is
 * sent again (receivers drop repeats by seq). */
static int recover_finish(recover_ctx *rc, const cur_state *src, int have_src)
{
	char path[4300];
	seg_err e;
	cur_state c;
	size_t i;
	int fd, r;
	FILE *f;

	if (!rc->open) {
		/* Nothing valid: still leave a valid, empty directory. */
		if (mkdir(rc->segdir, 0700) != 0 && errno != EEXIST)
			return tool_fail("dump", TOOL_PROBLEM, "--recover: mkdir %s: %s",
					 rc->segdir, strerror(errno));
		return 0;
	}
	r = seg_writer_close(&rc->w, &e);
	rc->open = 0;
	if (r)
		return tool_fail("dump", TOOL_PROBLEM, "--recover: %s", e.msg);
	memset(&c, 0, sizeof(c));
	c.acked_seq = rc->saved.lo[0] - 1;
	c.last_seq = rc->saved.hi[rc->saved.n - 1];
	/* Never hand out a seq the source may have used. */
	if (have_src && src->last_seq > c.last_seq)
		c.last_seq = src->last_seq;
	if (have_src && src->acked_seq > c.last_seq)
		c.last_seq = src->acked_seq;
	for (i = 0; i < rc->lost.n; i++)
		cur_gap_add(&c, rc->lost.lo[i] - 1, rc->lost.hi[i]);
	if (rc->lost.n) {
		snprintf(path, sizeof(path), "%s/%s", rc->out, SEG_QUARANTINE_DIR);
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return tool_fail("dump", TOOL_PROBLEM, "--recover: mkdir %s: %s", path,
					 strerror(errno));
		snprintf(path, sizeof(path), "%s/%s/%s", rc->out, SEG_QUARANTINE_DIR,
			 SEG_LOST_FILE);
		if (!(f = fopen(path, "w")))
			return tool_fail("dump", TOOL_PROBLEM, "--recover: %s: %s", path,
					 strerror(errno));
		fprintf(f, "# seq ranges no stored record holds (LO HI inclusive), written by "
			   "edgelog dump --recover\n");
		for (i = 0; i < rc->lost.n; i++)
			fprintf(f, "%llu %llu not recovered\n", (unsigned long long)rc->lost.lo[i],
				(unsigned long long)rc->lost.hi[i]);
		r = fflush(f) || fsync(fileno(f));
		if (fclose(f) || r)
			return tool_fail("dump", TOOL_PROBLEM, "--recover: write %s: %s", path,
					 strerror(errno));
	}
	snprintf(path, sizeof(path), "%s/%s", rc->out, CUR_FILE);
	fd = cur_open(seg_vfs_posix(), path, &e);
	if (fd < 0)
		return tool_fail("dump", TOOL_PROBLEM, "--recover: %s", e.msg);
	r = cur_store(seg_vfs_posix(), fd, &c, &e);
	close(fd);
	if (r)
		return tool_fail("dump", TOOL_PROBLEM, "--recover: %s", e.msg);
	/* The names of segments/, cursor and quarantine/ must be durable. */
	if ((fd = open(rc->out, O_RDONLY | O_DIRECTORY)) >= 0) {
		fsync(fd);
		close(fd);
	}
	return 0;
}

/* ---- the newest segment's end -------------------------------------------- */

/* Scan the newest segment of a directory deep: the end of the data, or the
 * start of an invalid tail (*tail_len bytes). 0, 1 if its header does not
 * verify, -1 if there is nothing to look at. */
static int scan_newest(const char *segdir, const char *name, uint64_t *tail_off, uint64_t *tail_len,
		       uint64_t *size_out)
{
	char p[4300];
	struct stat st;
	uint64_t doff, dlen;
	seg_scan sc;
	seg_frame f;
	void *map;
	int fd, k, r = 0;

	*tail_off = *tail_len = 0;
	if (seg_path(p, sizeof(p), segdir, name) || (fd = open(p, O_RDONLY)) < 0)
		return -1;
	if (fstat(fd, &st) != 0 || st.st_size < (off_t)SEG_HEADER_SIZE) {
		close(fd);
		return -1;
	}
	*size_out = (uint64_t)st.st_size;
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return -1;
	k = seg_scan_init(&sc, map, (size_t)st.st_size, 1);
	if (k == SEG_BAD) {
		r = 1;
	} else if (k == SEG_OK) {
		while ((k = seg_scan_next(&sc, &f, &doff, &dlen)) == SEG_SCAN_FRAME ||
		       k == SEG_SCAN_DAMAGE)
			;
		if (k == SEG_SCAN_TAIL) {
			*tail_off = doff;
			*tail_len = dlen;
		}
	}
	munmap(map, (size_t)st.st_size);
	return r;
}

/*
 * A reader treats the end of the newest segment as live: an invalid tail
 * there may be a frame being written right now, a bad header a segment
 * being created. Once the same state is seen again a moment later it is a
 * torn tail (an incomplete last write: open or `edgelog repair` truncates
 * it) or a damaged header, and --verify reports it.
 */
static void check_newest(const char *path, dump_ctx *c)
{
	char sub[4200], name[SEG_NAME_LEN + 1];
	const char *dir = path;
	struct stat st;
	seg_list l = {0};
	seg_err e;
	uint64_t off1, len1, off2, len2, size = 0;
	int r1, r2;

	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return; /* one file: the reader already read it deep */
	if (!seg_path(sub, sizeof(sub), path, "segments") && stat(sub, &st) == 0)
		dir = sub;
	if (seg_list_read(seg_vfs_posix(), dir, &l, &e) || !l.n) {
		seg_list_free(&l);
		return;
	}
	seg_name(name, l.base[l.n - 1]);
	seg_list_free(&l);
	r1 = scan_newest(dir, name, &off1, &len1, &size);
	if (r1 < 0 || (r1 == 0 && !len1))
		return;
	usleep(100 * 1000);
	r2 = scan_newest(dir, name, &off2, &len2, &size);
	if (r2 != r1 || off2 != off1 || len2 != len1)
		return; /* it moved: a writer is at work */
	if (r1 == 1)
		on_corrupt(c, name, 0, size, "segment header is damaged (newest segment)");
	else
		on_corrupt(c, name, off1, len1,
			   "torn tail: an incomplete last write (`edgelog repair` or the next "
			   "open truncates it)");
}

/* ---- the dump ----------------------------------------------------------- */

/* For --stats: one row per segment file of PATH, in order, with its size. */
static void stats_rows(dump_ctx *c, const char *path)
{
	char sub[4200], p[4300];
	const char *dir = path;
	struct stat st;
	seg_list l = {0};
	seg_err e;
	size_t i;
	dump_row *row;

	if (stat(path, &st) != 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		const char *slash = strrchr(path, '/');
		if ((row = row_for(c, slash ? slash + 1 : path)))
			row->file_bytes = (uint64_t)st.st_size;
		return;
	}
	if (!seg_path(sub, sizeof(sub), path, "segments") && stat(sub, &st) == 0)
		dir = sub;
	if (seg_list_read(seg_vfs_posix(), dir, &l, &e))
		return;
	for (i = 0; i < l.n; i++) {
		char name[SEG_NAME_LEN + 1];
		seg_name(name, l.base[i]);
		if ((row = row_for(c, name)) && !seg_path(p, sizeof(p), dir, name) &&
		    stat(p, &st) == 0)
			row->file_bytes = (uint64_t)st.st_size;
	}
	seg_list_free(&l);
}

static void stats_print(const dump_ctx *c, int have_cursor, const cur_state *cur, uint64_t gaps,
			uint64_t accounted)
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
	       (unsigned long long)(t.data_bytes - t.records * SEG_FRAME_HEADER));
	if (t.records) {
		tool_fmt_time(t.first_ts, a, sizeof(a));
		tool_fmt_time(t.last_ts, b, sizeof(b));
		printf("oldest: seq %llu at %s\nnewest: seq %llu at %s\n",
		       (unsigned long long)t.first, a, (unsigned long long)t.last, b);
	}
	if (have_cursor)
		printf("cursor: acked_seq %llu, last_seq %llu\n",
		       (unsigned long long)cur->acked_seq, (unsigned long long)cur->last_seq);
	printf("damage: %llu damaged range(s) (%llu bytes), %llu unexplained gap(s), %llu gap(s) "
	       "accounted for\n",
	       c->damaged, c->damaged_bytes, (unsigned long long)gaps,
	       (unsigned long long)accounted);
}

int tool_dump(int argc, char **argv)
{
	unsigned long long from = 0, to = UINT64_MAX;
	const char *path = NULL, *device = getenv("EDGELOG_DEVICE_ID");
	char host[128], cpath[4200];
	dump_ctx c;
	edgelog_reader *r;
	edgelog_record rec;
	cur_state cur;
	int how = CUR_MISSING, have_cursor = 0, rc, i, modes = 0, status, full = 0;
	unsigned long long n = 0, first = 0, last = 0, gaps = 0, accounted = 0;
	seg_buf line = {0};
	seg_ranges known = {0};
	static recover_ctx rcx;

	memset(&c, 0, sizeof(c));
	memset(&cur, 0, sizeof(cur));
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
	if (modes > 1)
		return tool_fail("dump", TOOL_USAGE,
				 "--json, --verify, --stats and --recover: choose one");
	device = tool_device_id(device, path, host, sizeof(host));
	tool_table_width = tool_terminal_width(1, full);

	rc = edgelog_reader_open(&r, path, from);
	if (rc)
		return tool_fail("dump", rc == EDGELOG_ENOTFOUND ? TOOL_USAGE : TOOL_PROBLEM, "%s",
				 edgelog_errmsg(NULL));
	if (c.recover) {
		memset(&rcx, 0, sizeof(rcx));
		if ((rc = recover_prepare(&rcx, c.recover, path))) {
			edgelog_reader_close(r);
			return rc;
		}
	}
	edgelog_reader_on_corrupt(r, on_corrupt, &c);

	/* The cursor tells acked from pending (edgelog directories only). */
	if (!seg_path(cpath, sizeof(cpath), path, CUR_FILE)) {
		seg_err e;
		rc = cur_load(seg_vfs_posix(), cpath, &cur, &how, &e);
		if (rc == 0 && how != CUR_MISSING) {
			have_cursor = how != CUR_GARBAGE;
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
	/* Gaps that are accounted for: acknowledged, in the cursor's gaps,
	 * or recorded by repair. */
	if (have_cursor) {
		if (cur.acked_seq)
			seg_ranges_add(&known, 1, cur.acked_seq);
		for (i = 0; i < CUR_MAX_GAPS; i++)
			if (cur.gap_hi[i])
				seg_ranges_add(&known, cur.gap_lo[i] + 1, cur.gap_hi[i]);
	}
	load_lost(path, &known);
	if (c.stats)
		stats_rows(&c, path);

	if (!c.json && !c.verify && !c.stats && !c.recover) {
		tool_table_header(&line);
		fwrite(line.p, 1, line.len, stdout);
	}
	while ((rc = edgelog_reader_next(r, &rec)) == 0) {
		if (rec.seq > to)
			break;
		if (n && rec.seq != last + 1) {
			uint64_t ua, ub;
			int open_gap =
				seg_ranges_uncovered(&known, last + 1, rec.seq - 1, &ua, &ub);
			if (open_gap)
				gaps++;
			else
				accounted++;
			if (c.verify)
				printf("gap: seq %llu..%llu missing (before %s offset %llu)%s\n",
				       last + 1, (unsigned long long)rec.seq - 1, rec.segment,
				       (unsigned long long)rec.offset,
				       open_gap ? "" :
						  ": accounted for (acknowledged, a cursor gap or "
						  "quarantine/lost-seqs)");
		}
		if (!n)
			first = rec.seq;
		last = rec.seq;
		n++;
		if (c.stats) {
			dump_row *row = row_for(&c, rec.segment);
			if (row) {
				if (!row->records) {
					row->first = rec.seq;
					row->first_ts = rec.ts_ms;
				}
				row->records++;
				row->last = rec.seq;
				row->last_ts = rec.ts_ms;
				row->data_bytes += SEG_FRAME_HEADER + rec.len;
			}
			continue;
		}
		if (c.recover) {
			if ((rc = recover_put(&rcx, &rec)))
				break;
			continue;
		}
		if (c.verify)
			continue;
		line.len = 0;
		if (tool_record_line(&line, &rec, c.json, device,
				     !have_cursor             ? "-" :
				     rec.seq <= cur.acked_seq ? "acked" :
								"pending")) {
			c.damaged++;
			fprintf(stderr,
				"edgelog dump: %s offset %llu: record is not valid msgpack\n",
				rec.segment, (unsigned long long)rec.offset);
			continue;
		}
		fwrite(line.p, 1, line.len, stdout);
	}
	seg_buf_free(&line);
	seg_ranges_free(&known);
	if (rc > 0) { /* recover_put failed: message printed */
		edgelog_reader_close(r);
		if (rcx.open)
			seg_writer_close(&rcx.w, NULL);
		status = rc;
		goto out;
	}
	if (rc != 0 && rc != EDGELOG_EOF) {
		status = tool_fail("dump", TOOL_PROBLEM, "%s", edgelog_errmsg(NULL));
		edgelog_reader_close(r);
		if (rcx.open)
			seg_writer_close(&rcx.w, NULL);
		goto out;
	}
	edgelog_reader_close(r);
	if ((c.verify || c.stats || c.recover) && to == UINT64_MAX)
		check_newest(path, &c);
	if (c.oom) {
		status = tool_fail("dump", TOOL_PROBLEM, "out of memory");
		goto out;
	}
	if (c.verify) {
		printf("%llu records", n);
		if (n)
			printf(", seq %llu..%llu", first, last);
		printf(", %llu damaged range(s), %llu gap(s)", c.damaged, gaps);
		if (accounted)
			printf(" (and %llu accounted for)", accounted);
		printf("%s\n", c.damaged || gaps ? ": DAMAGED" : ": OK");
		status = c.damaged || gaps ? TOOL_PROBLEM : TOOL_OK;
		goto out;
	}
	if (c.stats) {
		stats_print(&c, have_cursor, &cur, gaps, accounted);
		status = c.damaged || gaps ? TOOL_PROBLEM : TOOL_OK;
		goto out;
	}
	if (c.recover) {
		if ((status = recover_finish(&rcx, &cur, have_cursor)))
			goto out;
		printf("recovered into %s: %llu record(s), %llu bytes of data\n", rcx.out,
		       (unsigned long long)rcx.n, (unsigned long long)rcx.bytes);
		if (rcx.n) {
			printf("saved: seq ");
			print_ranges(&rcx.saved);
			printf("\n");
		}
		if (rcx.lost.n) {
			printf("lost: seq ");
			print_ranges(&rcx.lost);
			printf(" (missing between saved records; listed in %s/%s/%s)\n", rcx.out,
			       SEG_QUARANTINE_DIR, SEG_LOST_FILE);
		}
		if (have_cursor && n && cur.last_seq > last && to == UINT64_MAX)
			printf("unknown: seq %llu..%llu were handed out by the source (its cursor "
			       "says) but no record of them was found\n",
			       last + 1, (unsigned long long)cur.last_seq);
		if (c.damaged)
			printf("damaged: %llu range(s), %llu bytes, not recoverable (listed above)\n",
			       c.damaged, c.damaged_bytes);
		printf("every saved record is pending in %s: it will be sent again (receivers "
		       "drop repeats by seq)\n",
		       rcx.out);
		status = c.damaged || rcx.lost.n ? TOOL_PROBLEM : TOOL_OK;
		goto out;
	}
	status = c.damaged ? TOOL_PROBLEM : TOOL_OK;
out:
	free(c.rows);
	seg_ranges_free(&rcx.saved);
	seg_ranges_free(&rcx.lost);
	return status;
}
