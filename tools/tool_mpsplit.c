/*
 * tool_mpsplit.c - a msgpack stream split into objects as the bytes arrive
 * (see tool_run.c for how `edgelog run` uses it, tool_mpsplit.h for the
 * interface).
 */
#include "tool_mpsplit.h"

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
	switch (m->type) {
	case 0xc7:
	case 0xc8:
	case 0xc9: /* ext: length, then a type byte and the data */
		m->skip = m->hdr_val + 1;
		return TOOL_MP_MORE;
	case 0xdc:
	case 0xdd: /* array */
		return mp_element_end(m, m->hdr_val);
	case 0xde:
	case 0xdf: /* map: keys and values */
		return mp_element_end(m, m->hdr_val * 2);
	default: /* bin, str */
		m->skip = m->hdr_val;
		return m->skip ? TOOL_MP_MORE : mp_element_end(m, 0);
	}
}

/* A type byte. */
static int mp_type(tool_mp_split *m, uint8_t b)
{
	static const uint8_t fixed[] = {
		/* 0xc4..0xdf: bytes of length field (high nibble 1) or of fixed
		 * payload (0x80 | n) after the type byte */
		[0xc4 - 0xc4] = 0x01, [0xc5 - 0xc4] = 0x02, [0xc6 - 0xc4] = 0x04,
		[0xc7 - 0xc4] = 0x01, [0xc8 - 0xc4] = 0x02, [0xc9 - 0xc4] = 0x04,
		[0xca - 0xc4] = 0x84, [0xcb - 0xc4] = 0x88, [0xcc - 0xc4] = 0x81,
		[0xcd - 0xc4] = 0x82, [0xce - 0xc4] = 0x84, [0xcf - 0xc4] = 0x88,
		[0xd0 - 0xc4] = 0x81, [0xd1 - 0xc4] = 0x82, [0xd2 - 0xc4] = 0x84,
		[0xd3 - 0xc4] = 0x88, [0xd4 - 0xc4] = 0x82, [0xd5 - 0xc4] = 0x83,
		[0xd6 - 0xc4] = 0x85, [0xd7 - 0xc4] = 0x89, [0xd8 - 0xc4] = 0x91,
		[0xd9 - 0xc4] = 0x01, [0xda - 0xc4] = 0x02, [0xdb - 0xc4] = 0x04,
		[0xdc - 0xc4] = 0x02, [0xdd - 0xc4] = 0x04, [0xde - 0xc4] = 0x02,
		[0xdf - 0xc4] = 0x04,
	};
	uint8_t f;

	if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
		return mp_element_end(m, 0); /* fixint, nil, bool */
	if (b <= 0x8f)
		return mp_element_end(m, (uint64_t)(b & 0x0f) * 2); /* fixmap */
	if (b <= 0x9f)
		return mp_element_end(m, b & 0x0f); /* fixarray */
	if (b <= 0xbf) {                            /* fixstr */
		m->skip = b & 0x1f;
		return m->skip ? TOOL_MP_MORE : mp_element_end(m, 0);
	}
	if (b == 0xc1)
		return TOOL_MP_BAD; /* never used */
	f = fixed[b - 0xc4];
	if (f & 0x80) {
		m->skip = f & 0x7f;
		return TOOL_MP_MORE;
	}
	m->type = b;
	m->hdr_need = f;
	m->hdr_val = 0;
	return TOOL_MP_MORE;
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
