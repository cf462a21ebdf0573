/*
 * fuzz_run_split.c - the public msgpack splitter (edgelog_msgpack_split_*,
 * segments/seg_mpsplit.c) that `edgelog run --input-format msgpack` and
 * the dev sink use to find object boundaries as the bytes arrive, in
 * chunks of any size, and edgelog_msgpack_measure, the same over a buffer.
 *
 * The first byte seeds the chunk sizes; the rest is the stream.
 *
 * Invariants: the objects found (and where the stream turns unreadable)
 * do not depend on how the bytes are chunked; edgelog_msgpack_measure
 * finds the same ends (and the same invalid byte, and "more bytes" for a
 * stream that ends inside an object); every object the splitter completes
 * is one the append check (seg_mp_validate) accepts.
 */
#include <string.h>

#include <edgelog.h>

#include "fuzz.h"
#include "seg_format.h"

#define MAX_OBJS 4096

typedef struct result {
	size_t end[MAX_OBJS]; /* offset just past each object */
	size_t n;
	size_t bad_at; /* offset + 1 of the byte that made it unreadable, 0 if none */
	int cut;       /* the stream ends inside an object */
} result;

static result whole, chunked;

static void split(const uint8_t *p, size_t n, uint32_t seed, result *r)
{
	edgelog_msgpack_split *m = NULL;
	size_t pos = 0;

	memset(r, 0, sizeof(*r));
	FUZZ_CHECK(edgelog_msgpack_split_open(&m) == 0, "open");
	while (pos < n) {
		size_t take = n - pos, used = 0;
		int st;
		if (seed) {
			seed = seed * 1103515245u + 12345u;
			take = 1 + (seed >> 16) % 17;
			if (take > n - pos)
				take = n - pos;
		}
		st = edgelog_msgpack_split_feed(m, p + pos, take, &used);
		FUZZ_CHECK(used <= take && used > 0, "used %zu of %zu", used, take);
		FUZZ_CHECK(st != EDGELOG_EOF || used == take, "EOF after %zu of %zu", used, take);
		pos += used;
		if (st == 0) {
			FUZZ_CHECK(edgelog_msgpack_split_pending(m) == 0, "pending after an end");
			if (r->n < MAX_OBJS)
				r->end[r->n] = pos;
			r->n++;
		} else if (st == EDGELOG_EINVAL) {
			r->bad_at = pos;
			FUZZ_CHECK(edgelog_msgpack_split_feed(m, p, n, &used) == EDGELOG_EINVAL &&
					   used == 0,
				   "a spent splitter read on");
			edgelog_msgpack_split_close(m);
			return;
		}
	}
	r->cut = edgelog_msgpack_split_pending(m) != 0;
	edgelog_msgpack_split_close(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i, start = 0, got;
	int rc;

	if (size < 1)
		return 0;
	split(data + 1, size - 1, 0, &whole);
	split(data + 1, size - 1, data[0] | 0x100u, &chunked);
	FUZZ_CHECK(whole.n == chunked.n && whole.bad_at == chunked.bad_at &&
			   whole.cut == chunked.cut,
		   "whole: %zu objects, bad at %zu; chunked: %zu, bad at %zu", whole.n,
		   whole.bad_at, chunked.n, chunked.bad_at);
	for (i = 0; i < whole.n && i < MAX_OBJS; i++) {
		FUZZ_CHECK(whole.end[i] == chunked.end[i], "object %zu ends at %zu or %zu", i,
			   whole.end[i], chunked.end[i]);
		FUZZ_CHECK(seg_mp_validate(data + 1 + start, whole.end[i] - start) == 0,
			   "object %zu (bytes %zu..%zu) split off but refused by the append check",
			   i, start, whole.end[i]);
		rc = edgelog_msgpack_measure(data + 1 + start, size - 1 - start, &got);
		FUZZ_CHECK(rc == 0 && got == whole.end[i] - start,
			   "object %zu: measure says %d, %zu bytes", i, rc, got);
		start = whole.end[i];
	}
	if (whole.n > MAX_OBJS)
		return 0;
	/* After the last object: nothing, an object cut short, or a bad byte. */
	rc = edgelog_msgpack_measure(data + 1 + start, size - 1 - start, &got);
	if (whole.bad_at)
		FUZZ_CHECK(rc == EDGELOG_EINVAL && start + got + 1 == whole.bad_at,
			   "measure %d at %zu, split bad at %zu", rc, start + got, whole.bad_at);
	else
		FUZZ_CHECK(rc == EDGELOG_EOF && got == size - 1 - start &&
				   whole.cut == (start < size - 1),
			   "measure %d (%zu bytes) after the last object", rc, got);
	return 0;
}
