/*
 * eng_msgpack.c - the public msgpack calls: where an object ends, in a
 * buffer (edgelog_msgpack_measure) or in a stream fed in chunks
 * (edgelog_msgpack_split_*). Both are the segments splitter
 * (seg_mpsplit.c), which reads headers with the one decoder the append
 * check uses.
 */
#include <stdlib.h>

#include "eng_internal.h"
#include "seg.h"

_Static_assert(EDGELOG_MSGPACK_DEPTH == SEG_MP_SPLIT_DEPTH, "EDGELOG_MSGPACK_DEPTH in edgelog.h");

struct edgelog_msgpack_split {
	seg_mp_split m;
};

/* SEG_MPS_* as the public return codes. */
static int split_code(int r)
{
	return r == SEG_MPS_DONE ? 0 : r == SEG_MPS_MORE ? EDGELOG_EOF : EDGELOG_EINVAL;
}

int edgelog_msgpack_measure(const void *buf, size_t len, size_t *size)
{
	seg_mp_split m;
	size_t used = 0;
	int r;

	if (!size || (!buf && len)) {
		if (size)
			*size = 0;
		return eng_tls_error(EDGELOG_EINVAL, "edgelog_msgpack_measure: NULL argument");
	}
	seg_mp_split_init(&m);
	r = seg_mp_split_feed(&m, buf, len, &used);
	*size = r == SEG_MPS_BAD ? used - 1 : used;
	return split_code(r);
}

int edgelog_msgpack_split_open(edgelog_msgpack_split **out)
{
	edgelog_msgpack_split *s;

	if (!out)
		return eng_tls_error(EDGELOG_EINVAL, "edgelog_msgpack_split_open: out is NULL");
	*out = NULL;
	if (!(s = malloc(sizeof(*s))))
		return eng_tls_error(EDGELOG_ENOMEM, "edgelog_msgpack_split_open: out of memory");
	seg_mp_split_init(&s->m);
	*out = s;
	return 0;
}

int edgelog_msgpack_split_feed(edgelog_msgpack_split *s, const void *p, size_t n, size_t *used)
{
	size_t u = 0;
	int r;

	if (!s || !used || (!p && n)) {
		if (used)
			*used = 0;
		return eng_tls_error(EDGELOG_EINVAL, "edgelog_msgpack_split_feed: NULL argument");
	}
	r = seg_mp_split_feed(&s->m, p, n, &u);
	*used = u;
	return split_code(r);
}

uint64_t edgelog_msgpack_split_pending(const edgelog_msgpack_split *s)
{
	return s && s->m.depth >= 0 ? s->m.bytes : 0;
}

void edgelog_msgpack_split_close(edgelog_msgpack_split *s)
{
	free(s);
}
