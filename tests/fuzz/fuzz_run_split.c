/*
 * fuzz_run_split.c - `edgelog run --input-format msgpack`'s stream
 * splitter (tool_mpsplit.c), which finds object boundaries as the bytes
 * arrive, in chunks of any size.
 *
 * The first byte seeds the chunk sizes; the rest is the stream.
 *
 * Invariants: the objects found (and where the stream turns unreadable)
 * do not depend on how the bytes are chunked; every object the splitter
 * completes is one the append check (seg_mp_validate) accepts.
 */
#include <string.h>

#include "fuzz.h"
#include "seg_format.h"
#include "tool_mpsplit.h"

#define MAX_OBJS 4096

typedef struct result {
	size_t end[MAX_OBJS]; /* offset just past each object */
	size_t n;
	size_t bad_at; /* offset + 1 of the byte that made it unreadable, 0 if none */
} result;

static result whole, chunked;

static void split(const uint8_t *p, size_t n, uint32_t seed, result *r)
{
	tool_mp_split m;
	size_t pos = 0;

	memset(r, 0, sizeof(*r));
	tool_mp_init(&m);
	while (pos < n) {
		size_t take = n - pos, used = 0;
		int st;
		if (seed) {
			seed = seed * 1103515245u + 12345u;
			take = 1 + (seed >> 16) % 17;
			if (take > n - pos)
				take = n - pos;
		}
		st = tool_mp_feed(&m, p + pos, take, &used);
		FUZZ_CHECK(used <= take && (used > 0 || take == 0), "used %zu of %zu", used, take);
		pos += used;
		if (st == TOOL_MP_DONE) {
			if (r->n < MAX_OBJS)
				r->end[r->n] = pos;
			r->n++;
			tool_mp_init(&m);
		} else if (st == TOOL_MP_BAD) {
			r->bad_at = pos;
			return;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i, start = 0;

	if (size < 1)
		return 0;
	split(data + 1, size - 1, 0, &whole);
	split(data + 1, size - 1, data[0] | 0x100u, &chunked);
	FUZZ_CHECK(whole.n == chunked.n && whole.bad_at == chunked.bad_at,
		   "whole: %zu objects, bad at %zu; chunked: %zu, bad at %zu", whole.n,
		   whole.bad_at, chunked.n, chunked.bad_at);
	for (i = 0; i < whole.n && i < MAX_OBJS; i++) {
		FUZZ_CHECK(whole.end[i] == chunked.end[i], "object %zu ends at %zu or %zu", i,
			   whole.end[i], chunked.end[i]);
		FUZZ_CHECK(seg_mp_validate(data + 1 + start, whole.end[i] - start) == 0,
			   "object %zu (bytes %zu..%zu) split off but refused by the append check",
			   i, start, whole.end[i]);
		start = whole.end[i];
	}
	return 0;
}
