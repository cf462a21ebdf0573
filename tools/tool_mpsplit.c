/*
 * tool_mpsplit.c - a msgpack stream split into objects as the bytes arrive
 * (see tool_run.c for how `edgelog run` uses it, tool_mpsplit.h for the
 * interface).
 */
#include "tool_mpsplit.h"

#include "seg_mphead.h"

/* An element ended, with `children` elements of its own to come. */
static int mp_element_end(tool_mp_split *m, uint64_t children)
{
	if (children) {
		if (m->depth == TOOL_MP_DEPTH)
			return TOOL_MP_BAD;
		m->owed[++m->depth] = children;
		return TOOL_MP_MORE;
	}
	while (m->depth >= 0 && m->owed[m->depth] == 0)
		m->depth--;
	return m->depth < 0 ? TOOL_MP_DONE : TOOL_MP_MORE;
}

/* The length after a type byte is complete. */
static int mp_length_done(tool_mp_split *m)
{
	seg_mp_hdr h = {seg_mp_types[m->type].kind, m->hdr_val};

	if (h.kind == SEG_MP_EXT)
		h.n++; /* the ext's type byte comes before its data */
	if (h.kind >= SEG_MP_ARRAY)
		return mp_element_end(m, seg_mp_children(&h));
	m->skip = seg_mp_payload(&h); /* str, bin, ext */
	return m->skip ? TOOL_MP_MORE : mp_element_end(m, 0);
}

/* A type byte (seg_mphead.h's table says what follows it). */
static int mp_type(tool_mp_split *m, uint8_t b)
{
	const seg_mp_type t = seg_mp_types[b];
	seg_mp_hdr h = {t.kind, t.n};

	if (t.kind == SEG_MP_BAD)
		return TOOL_MP_BAD; /* 0xc1, never used */
	if (t.lenw) {               /* a length of lenw bytes follows */
		m->type = b;
		m->hdr_need = t.lenw;
		m->hdr_val = 0;
		return TOOL_MP_MORE;
	}
	if (t.kind >= SEG_MP_ARRAY)
		return mp_element_end(m, seg_mp_children(&h));
	m->skip = seg_mp_payload(&h);
	return m->skip ? TOOL_MP_MORE : mp_element_end(m, 0);
}

/* Feed p[0..n) (n > 0). Stops at the end of the current object (TOOL_MP_DONE),
 * at a byte that makes it invalid (TOOL_MP_BAD: that byte is p[*used - 1]), or
 * when the bytes run out (TOOL_MP_MORE). *used: bytes consumed. */
int tool_mp_feed(tool_mp_split *m, const uint8_t *p, size_t n, size_t *used)
{
	size_t i = 0;
	int r = TOOL_MP_MORE;

	if (m->depth < 0) {
		m->depth = 0;
		m->owed[0] = 1;
	}
	while (i < n && r == TOOL_MP_MORE) {
		if (m->skip) {
			size_t k = m->skip < n - i ? (size_t)m->skip : n - i;
			i += k;
			m->skip -= k;
			if (!m->skip)
				r = mp_element_end(m, 0);
		} else if (m->hdr_need) {
			m->hdr_val = m->hdr_val << 8 | p[i++];
			if (!--m->hdr_need)
				r = mp_length_done(m);
		} else {
			m->owed[m->depth]--;
			r = mp_type(m, p[i++]);
		}
	}
	*used = i;
	return r;
}
