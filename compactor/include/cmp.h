/*
 * cmp.h - retention: which segments go, and why.
 *
 * The compactor owns retention from the directory listing to the last
 * fsync; the engine owns only when it runs (scheduling), the policy's
 * figures (configuration, clocks, bytes used) and its counters. A pass is
 * three calls:
 *
 *   cmp_gather()   the sealed segments of segments/ (reads only);
 *   cmp_plan()     pure: which prefix of them to delete and what each
 *                  deletion costs in unacknowledged records;
 *   cmp_execute()  carries the plan out in the one crash-safe order:
 *                    1. the cursor, moved past every removed record and
 *                       carrying the new counts, is made durable (by the
 *                       caller's commit function: the compactor knows no
 *                       engine state);
 *                    2. the segment files are unlinked, oldest first;
 *                    3. the segments directory is fsynced.
 *
 * A crash before 1 changes nothing. A crash after 1 (whether or not any
 * unlink happened or reached the disk) leaves segments the cursor has
 * passed: the log opens at the cursor, and the next pass removes them as
 * acknowledged, counting nothing twice. The active segment is never
 * gathered, so it can never be deleted under the writer.
 *
 * Ages: a segment's records are at most as new as the next segment's
 * header, which carries both the wall clock and the engine's age clock at
 * its creation. A segment expires only when BOTH say it is older than the
 * retention: the age clock runs only while an engine runs and never jumps,
 * so a device that boots at 1970, or whose clock jumps forward a year,
 * or that sat unpowered for a month, does not wipe its buffer; the wall
 * clock keeps a segment whose records the clock calls recent.
 */
#ifndef CMP_H
#define CMP_H

#include <stddef.h>
#include <stdint.h>

#include "seg.h"

typedef struct cmp_seg {
	uint64_t base;          /* first seq it can hold */
	uint64_t last;          /* last seq it can hold (next segment's base - 1) */
	int64_t newest_wall_ms; /* >= every record's wall-clock time */
	int64_t newest_age_ms;  /* >= the age clock at its last append; 0: unknown */
	uint64_t bytes;         /* disk use */
	uint64_t size;          /* file size (more than bytes when its tail was punched) */
} cmp_seg;

typedef struct cmp_policy {
	uint64_t acked_seq; /* durable in the cursor */
	int64_t now_wall_ms;
	int64_t now_age_ms;
	int64_t retention_ms;
	uint64_t used_bytes;   /* everything counted against the cap, now */
	uint64_t target_bytes; /* with drop_oldest: delete until used <= this (0: no pressure) */
	int drop_oldest;
} cmp_policy;

enum {
	CMP_ACKED = 1,   /* every record acknowledged: no loss */
	CMP_EXPIRED = 2, /* older than the retention */
	CMP_DROPPED = 3  /* over the size cap, full_policy=drop_oldest */
};

typedef struct cmp_action {
	size_t idx;       /* into the segments given */
	int reason;       /* CMP_* */
	uint64_t lost_lo; /* seqs (lost_lo, lost_hi] were not acknowledged */
	uint64_t lost_hi; /* (equal: none) */
} cmp_action;

/* Plan deletions for segs[0..n) (oldest first, sealed only). Fills out
 * (room for n) with a prefix of the segments, in order; returns how many. */
size_t cmp_plan(const cmp_seg *segs, size_t n, const cmp_policy *p, cmp_action *out);

/* Age of a segment as retention sees it: the smaller of its wall-clock
 * age and its age-clock age (an unknown age clock counts as 0 old). */
int64_t cmp_age_ms(const cmp_seg *s, const cmp_policy *p);

/* The sealed segments of segdir (every one but the newest), oldest first,
 * with the bounds their successors' headers give, into *segs (malloc'd,
 * free() it; NULL when *n is 0). Stops at the first segment whose
 * successor's header cannot be read: no safe age bound (only a prefix is
 * ever removed). Reads only: needs no lock. 0, or an EDGELOG_* code with
 * e set (the listing failed, out of memory). */
int cmp_gather(const seg_vfs *v, const char *segdir, cmp_seg **segs, size_t *n, seg_err *e);

/* Step 1 of cmp_execute: make the cursor durable past every segment of
 * the plan, with what their removal costs already counted in it. 0, or an
 * EDGELOG_* code with e set. */
typedef int (*cmp_commit_fn)(void *ud, seg_err *e);

/* What cmp_execute did. */
typedef struct cmp_done {
	size_t removed;          /* act[0..removed) are unlinked (or were already gone) */
	uint64_t freed;          /* their bytes (cmp_seg.bytes), less the recycled one's */
	int synced;              /* 1: the directory was fsynced after them */
	int recycled;            /* 1: act[0] was renamed to recycle_as, not unlinked */
	uint64_t recycled_bytes; /* its bytes (still on disk, still counted) */
} cmp_done;

/* Carry out the plan act[0..k) (from cmp_plan over segs) in segdir:
 * commit(ud, e), then unlink, then fsync the directory (see the top of
 * this file). recycle_as (NULL: none): act[0] is renamed to that name in
 * segdir instead of unlinked, for the writer to reuse its blocks (the
 * caller passes it only for an acknowledged segment; a failed rename falls
 * back to the unlink). 0, or the first error, with e set:
 *  - commit failed: nothing is removed (done->removed is 0);
 *  - an unlink failed: the segments before it are removed, it and the
 *    ones after stay (a contiguous run; the cursor has passed them, so the
 *    next pass removes them as acknowledged); the directory is still
 *    fsynced for the ones removed;
 *  - the directory fsync failed: the files are gone now but may come back
 *    after a power loss; the cursor has passed them, as above.
 * In no case is an acknowledged record, or one the cursor has not passed,
 * lost; done says what to take off the size accounting. */
int cmp_execute(const seg_vfs *v, const char *segdir, const cmp_seg *segs, const cmp_action *act,
		size_t k, const char *recycle_as, cmp_commit_fn commit, void *ud, cmp_done *done,
		seg_err *e);

#endif
