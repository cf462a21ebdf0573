/*
 * seg_mpsplit.h - where a msgpack object ends, resumable at any byte: a
 * stream split into objects as its bytes arrive (seg_mpsplit.c), on the
 * one header decoder (seg_mphead.h). Pure: no I/O, no allocation. The
 * public calls edgelog_msgpack_measure and edgelog_msgpack_split_*
 * (engine/eng_msgpack.c) are this; `edgelog run --input-format msgpack`
 * and the dev sink split with them, and tests/fuzz/fuzz_run_split.c checks
 * that the split does not depend on how the bytes are chunked.
 *
 * It applies the rules of seg_mp_validate and nothing else: 0xc1 is
 * invalid, and so is a container nested deeper than SEG_MP_SPLIT_DEPTH
 * (reported at the last byte of its header, as the validator does). Every
 * object it completes, the validator accepts.
 */
#ifndef SEG_MPSPLIT_H
#define SEG_MPSPLIT_H

#include <stddef.h>
#include <stdint.h>

#define SEG_MP_SPLIT_DEPTH 256

enum {
	SEG_MPS_MORE, /* every byte read; the object goes on */
	SEG_MPS_DONE, /* the object ended at the last byte read */
	SEG_MPS_BAD   /* the last byte read makes it invalid */
};

typedef struct seg_mp_split {
	uint64_t owed[SEG_MP_SPLIT_DEPTH + 1]; /* elements still to read per level */
	int depth;                             /* -1: between objects */
	int bad;                               /* SEG_MPS_BAD was returned */
	uint8_t type;                          /* type byte whose length is being read */
	unsigned hdr_need;                     /* length bytes still to read */
	uint64_t hdr_val;
	uint64_t skip;  /* payload bytes still to pass */
	uint64_t bytes; /* of the current object, read so far */
} seg_mp_split;

/* Start a splitter: between objects. */
void seg_mp_split_init(seg_mp_split *m);

/* Feed p[0..n). Stops at the end of the current object (SEG_MPS_DONE: the
 * next call starts the next one), at a byte that makes it invalid
 * (SEG_MPS_BAD: that byte is p[*used - 1]; every later call returns
 * SEG_MPS_BAD with *used 0), or when the bytes run out (SEG_MPS_MORE, also
 * for n 0). *used: bytes read. */
int seg_mp_split_feed(seg_mp_split *m, const uint8_t *p, size_t n, size_t *used);

#endif
