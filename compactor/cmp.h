/*
 * cmp.h - retention: which segments go, and why.
 *
 * Pure: given the sealed segments (oldest first), the durable ack and the
 * policy, cmp_plan() says which prefix of them to delete and what each
 * deletion costs in unacknowledged records. It touches no file; the engine
 * makes the cursor durable first, then unlinks, then fsyncs the directory
 * (so a crash between any two steps opens cleanly: a segment the cursor
 * has passed is simply deleted again). The active segment is never given
 * to it, so it can never be deleted under the writer.
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

typedef struct cmp_seg {
	uint64_t base;          /* first seq it can hold */
	uint64_t last;          /* last seq it can hold (next segment's base - 1) */
	int64_t newest_wall_ms; /* >= every record's wall-clock time */
	int64_t newest_age_ms;  /* >= the age clock at its last append; 0: unknown */
	uint64_t bytes;         /* disk use */
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

#endif
