/*
 * test_segments.h - what the segments runners (check_segments_*.c) share:
 * records as written and read back, a damage-callback recorder, a writer
 * and reader driven through the POSIX vfs with every call checked, and
 * small segment-file helpers.
 *
 * Every test works in its own directory under tu_tmpdir() (removed at exit,
 * even when an assertion fails) and runs in its own process (CK_FORK).
 */
#ifndef TEST_SEGMENTS_H
#define TEST_SEGMENTS_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "seg_dir.h"
#include "seg_format.h"
#include "seg_vfs.h"
#include "seg_writer.h"
#include "test_util.h"

#define MAX_AGE_MS (3600 * 1000) /* long enough that no test rolls by age */
#define KIB 1024u
#define MIB (1024u * 1024u)

/* The POSIX vfs, set by segments_suite_create. */
extern const seg_vfs *V;

/* A suite for one segments runner; sets V first. */
Suite *segments_suite_create(const char *name);

/* One record as written and as read back. */
typedef struct rec {
	tu_buf b;
	uint64_t seq;
	int64_t ts;
	uint64_t off;  /* offset of its frame in its segment (from the reader) */
	uint64_t base; /* base seq of the segment it was read from */
} rec;

uint64_t frame_end(const rec *r);

void recs_free(rec *a, int n);

/* Damage callback recorder. */
#define MAX_DMG 512
typedef struct dmg_log {
	int n;
	struct {
		uint64_t off, len;
		char seg[64];
		char reason[128];
	} r[MAX_DMG];
} dmg_log;

void dmg_cb(void *ud, const char *segment, uint64_t offset, uint64_t len, const char *reason);

dmg_log *dmg_new(void);

void writer_open_ok(seg_writer *w, const seg_vfs *v, const char *dir, size_t seg_bytes,
		    int64_t max_age, uint64_t min_next, seg_open_report *rep);

uint64_t append_ok(seg_writer *w, const tu_buf *b, int64_t ts);

void writer_close_ok(seg_writer *w);

/* Write n fresh predictions into an empty dir; seqs must be 1..n. */
rec *write_log(const char *dir, size_t seg_bytes, int n, uint64_t seed);

/* Read every record from path (dir or file) starting at from_seq. The
 * reader must end with EDGELOG_EOF, twice in a row. */
int read_all(const char *path, uint64_t from_seq, dmg_log *d, rec **out, uint64_t *corrupt);

/* got[0..ngot) must equal exp[0..nexp) byte for byte, seq and ts. */
void assert_same(const rec *got, int ngot, rec *const *exp, int nexp);

/* exp as an array of pointers into a[lo..hi). */
rec **ptrs(rec *a, int lo, int hi);

const char *seg_file(const char *dir, uint64_t base);

/* Copy data offsets (off) and bases from a read-back into the written
 * records (same order, same seqs). */
void learn_offsets(rec *a, int n, const char *dir);

int all_zero(const uint8_t *p, size_t n);

seg_header mk_hdr(uint64_t base, int64_t ts, uint64_t salt);

/* A bin32 object of exactly len bytes (len >= 5). */
uint8_t *mk_bin32(uint32_t len, uint64_t seed);

/* Segments of the log at dir, ascending. */
seg_list list_ok(const char *dir);

#endif
