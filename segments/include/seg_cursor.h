/*
 * seg_cursor.h - the cursor file: what the cloud acknowledged, and the
 * counters that must survive restarts.
 *
 * Two fixed slots, each checksummed and carrying a generation number. A
 * store writes the slot the older generation occupies and fdatasyncs it, so
 * a torn or lost write leaves the other slot, one generation older, intact
 * (LMDB's two meta pages). A load takes the valid slot with the highest
 * generation.
 */
#ifndef SEG_CURSOR_H
#define SEG_CURSOR_H

#include <stdint.h>

#include "seg_err.h"
#include "seg_vfs.h"

#define CUR_FILE "cursor"
#define CUR_SLOT_SIZE 256u
#define CUR_SLOT_STRIDE 512u /* slots sit in different 512-byte sectors */
/* Bytes counted for the cursor against the size cap (the file itself is
 * CUR_SLOT_STRIDE + CUR_SLOT_SIZE = 768 bytes). */
#define CUR_FILE_SIZE 1024u
#define CUR_FORMAT_VERSION 1u
#define CUR_MAX_GAPS 4

typedef struct cur_state {
	uint64_t generation;
	uint64_t acked_seq; /* every seq <= acked_seq is acknowledged */
	uint64_t last_seq;  /* highest seq assigned when this was written */
	uint64_t sent, failed, dropped, expired, corrupt, recovered;
	uint64_t torn_tails, torn_bytes, cursor_resets, sync_failures;
	int64_t last_success_at; /* unix seconds */
	/* Seqs in (gap_lo[i], gap_hi[i]] were handed out by no stored record
	 * (the log resumed above a cursor or a lost tail, so that no seq the
	 * cloud may have seen is reused). Kept so counts stay exact; a gap is
	 * dropped once acked_seq passes it. Unused entries are zero. */
	uint64_t gap_lo[CUR_MAX_GAPS], gap_hi[CUR_MAX_GAPS];
	/* The age clock: milliseconds the engine has been running, summed
	 * over its runs (FORMAT.md, "Retention"). */
	int64_t age_ms;
	/* Dead letters moved back into the log (edgelog_requeue_failed) and
	 * dead letters removed by age (edgelog_cleanup with force). Both only
	 * grow; a journal in failed/ compares against them to finish an
	 * interrupted operation exactly once. */
	uint64_t requeued, dead_expired;
} cur_state;

/*
 * Gap arithmetic. A gap (lo, hi] says that seqs lo+1..hi belong to no
 * stored record. The gaps a cursor holds are kept disjoint and not
 * adjacent, so each seq is in at most one and counts subtract exactly.
 */
/* Record the gap (lo, hi]; nothing if hi <= lo. Idempotent: a gap already
 * covered changes nothing; overlapping or adjacent gaps merge into one.
 * With every slot taken the gap with the lowest seqs is forgotten, so
 * counts may then overstate what is stored, never understate it. */
void cur_gap_add(cur_state *c, uint64_t lo, uint64_t hi);
/* Forget the seqs at or below acked_seq (the acks passed them). */
void cur_gaps_prune(cur_state *c);
/* Re-add every gap (a cursor written by an older version may hold
 * duplicates or overlaps). */
void cur_gaps_normalize(cur_state *c);
/* Records stored with seq in (a, b]: the range less the gaps. */
uint64_t cur_stored_between(const cur_state *c, uint64_t a, uint64_t b);

void cur_encode(const cur_state *c, uint8_t out[CUR_SLOT_SIZE]);
/* SEG_OK, SEG_EMPTY (all zeros), SEG_NEWER, SEG_BAD. */
int cur_decode(const uint8_t in[CUR_SLOT_SIZE], cur_state *c);

enum {
	CUR_LOADED = 0,   /* the newest slot was valid */
	CUR_FALLBACK = 1, /* the newest slot was bad; the older one was used */
	CUR_MISSING = 2,  /* no file, or an empty one: *c zeroed */
	CUR_GARBAGE = 3,  /* no valid slot: *c zeroed */
};

/* Read path's cursor (its gaps normalized, cur_gaps_normalize). Returns 0
 * and sets *how, or an EDGELOG_E* code for
 * an I/O failure or EDGELOG_EVERSION for a newer format. */
int cur_load(const seg_vfs *v, const char *path, cur_state *c, int *how, seg_err *e);

/* Open (creating if needed) the cursor file for storing; returns an fd. */
int cur_open(const seg_vfs *v, const char *path, seg_err *e);

/* Increment c->generation, write its slot, fdatasync. On failure the file
 * still holds the previous generation in the other slot. */
int cur_store(const seg_vfs *v, int fd, cur_state *c, seg_err *e);

#endif
