/*
 * seg_mpsplit.c - where a msgpack object ends, as its bytes arrive (see
 * seg_mpsplit.h). A walk like seg_mp_validate's exact one (objects still
 * owed per nesting level), with the partial header and the payload still
 * to pass kept between calls, so that no byte is ever held.
 */
#include "seg_mpsplit.h"

#include "seg_mphead.h"

void seg_mp_split_init(seg_mp_split *m)
{
	m->depth = -1;
	m->bad = 0;
	m->skip = 0;
	m->hdr_need = 0;
	m->bytes = 0;
}

/* An element ended, with `children` elements of its own to come. */
static int mp_element_end(seg_mp_split *m, uint64_t children)
{
	if (children) {
		if (m->depth == SEG_MP_SPLIT_DEPTH)
			return SEG_MPS_BAD;
		m->owed[++m->depth] = children;
		return SEG_MPS_MORE;
	}
	while (m->depth >= 0 && m->owed[m->depth] == 0)
		m->depth--;
	return m->depth < 0 ? SEG_MPS_DONE : SEG_MPS_MORE;
}

/* The length after a type byte is complete. */
static int mp_length_done(seg_mp_split *m)
{
	seg_mp_hdr h = {seg_mp_types[m->type].kind, m->hdr_val};

	if (h.kind == SEG_MP_EXT)
		h.n++; /* the ext's type byte comes before its data */
	if (h.kind >= SEG_MP_ARRAY)
		return mp_element_end(m, seg_mp_children(&h));
	m->skip = seg_mp_payload(&h); /* str, bin, ext */
	return m->skip ? SEG_MPS_MORE : mp_element_end(m, 0);
}

/* A type byte (seg_mphead.h's table says what follows it). */
static int mp_type(seg_mp_split *m, uint8_t b)
{
	const seg_mp_type t = seg_mp_types[b];
	seg_mp_hdr h = {t.kind, t.n};

	if (t.kind == SEG_MP_BAD)
		return SEG_MPS_BAD; /* 0xc1, never used */
	if (t.lenw) {               /* a length of lenw bytes follows */
		m->type = b;
		m->hdr_need = t.lenw;
		m->hdr_val = 0;
		return SEG_MPS_MORE;
	}
	if (t.kind >= SEG_MP_ARRAY)
		return mp_element_end(m, seg_mp_children(&h));
	m->skip = seg_mp_payload(&h);
	return m->skip ? SEG_MPS_MORE : mp_element_end(m, 0);
}

int seg_mp_split_feed(seg_mp_split *m, const uint8_t *p, size_t n, size_t *used)
{
	size_t i = 0;
	int r = SEG_MPS_MORE;

	if (m->bad) {
		*used = 0;
		return SEG_MPS_BAD;
	}
	if (m->depth < 0 && n) {
		m->depth = 0;
		m->owed[0] = 1;
		m->bytes = 0;
	}
	while (i < n && r == SEG_MPS_MORE) {
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
	m->bytes += i;
	if (r == SEG_MPS_BAD)
		m->bad = 1;
	else if (r == SEG_MPS_DONE)
		m->depth = -1;
	*used = i;
	return r;
}
