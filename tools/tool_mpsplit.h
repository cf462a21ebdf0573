/*
 * tool_mpsplit.h - `edgelog run --input-format msgpack`: a msgpack stream
 * split into objects as the bytes arrive (tool_mpsplit.c). Pure: no I/O,
 * so it is fuzzed on its own (tests/fuzz/fuzz_run_split.c).
 */
#ifndef TOOL_MPSPLIT_H
#define TOOL_MPSPLIT_H

#include <stddef.h>
#include <stdint.h>

#define TOOL_MP_DEPTH 256

enum {
	TOOL_MP_MORE,
	TOOL_MP_DONE,
	TOOL_MP_BAD
};

typedef struct tool_mp_split {
	uint64_t owed[TOOL_MP_DEPTH + 1]; /* elements still to read per level */
	int depth;                        /* -1: between objects */
	uint8_t type;                     /* type byte whose length is being read */
	unsigned hdr_need;                /* length bytes still to read */
	uint64_t hdr_val;
	uint64_t skip; /* payload bytes still to pass */
} tool_mp_split;

/* Start a splitter: depth -1 (between objects). */
static inline void tool_mp_init(tool_mp_split *m)
{
	m->depth = -1;
	m->skip = 0;
	m->hdr_need = 0;
}

/* Feed p[0..n) (n > 0). Stops at the end of the current object
 * (TOOL_MP_DONE), at a byte that makes it invalid (TOOL_MP_BAD: that byte
 * is p[*used - 1]), or when the bytes run out (TOOL_MP_MORE). *used: bytes
 * consumed. */
int tool_mp_feed(tool_mp_split *m, const uint8_t *p, size_t n, size_t *used);

#endif
