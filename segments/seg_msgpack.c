/*
 * seg_msgpack.c - check that a buffer holds exactly one msgpack object.
 *
 * A walk over the encoding with an explicit counter of objects still owed,
 * so it needs no recursion and no allocation, and costs one pass. msgpack-c's
 * unpacker would build a tree in a zone allocator for every append; this is
 * an order of magnitude cheaper and bounded on hostile input.
 */
#include "seg_format.h"

#define MP_MAX_DEPTH 256

/* Bytes of payload following a type byte whose length sits in the next n
 * bytes (big endian). */
static int read_be(const uint8_t *p, size_t avail, unsigned n, uint64_t *v)
{
	unsigned i;

	if (avail < n)
		return -1;
	*v = 0;
	for (i = 0; i < n; i++)
		*v = *v << 8 | p[i];
	return 0;
}

size_t seg_mp_validate(const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t pos = 0;
	/* owed[d]: objects still to read at nesting depth d. */
	uint64_t owed[MP_MAX_DEPTH + 1];
	int depth = 0;

	if (len == 0)
		return 1;
	owed[0] = 1;
	while (depth >= 0) {
		uint8_t b;
		uint64_t skip = 0, children = 0, n;

		if (owed[depth] == 0) {
			depth--;
			continue;
		}
		if (pos >= len)
			return pos + 1;
		owed[depth]--;
		b = p[pos++];
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
			/* fixint, nil, bool */
		} else if (b >= 0x80 && b <= 0x8f) {
			children = (uint64_t)(b & 0x0f) * 2;
		} else if (b >= 0x90 && b <= 0x9f) {
			children = b & 0x0f;
		} else if (b >= 0xa0 && b <= 0xbf) {
			skip = b & 0x1f;
		} else {
			switch (b) {
			case 0xc4:
			case 0xd9: /* bin8, str8 */
				if (read_be(p + pos, len - pos, 1, &n))
					return pos + 1;
				pos += 1;
				skip = n;
				break;
			case 0xc5:
			case 0xda:
				if (read_be(p + pos, len - pos, 2, &n))
					return pos + 1;
				pos += 2;
				skip = n;
				break;
			case 0xc6:
			case 0xdb:
				if (read_be(p + pos, len - pos, 4, &n))
					return pos + 1;
				pos += 4;
				skip = n;
				break;
			case 0xc7: /* ext8: len, type, data */
				if (read_be(p + pos, len - pos, 1, &n))
					return pos + 1;
				pos += 1;
				skip = n + 1;
				break;
			case 0xc8:
				if (read_be(p + pos, len - pos, 2, &n))
					return pos + 1;
				pos += 2;
				skip = n + 1;
				break;
			case 0xc9:
				if (read_be(p + pos, len - pos, 4, &n))
					return pos + 1;
				pos += 4;
				skip = n + 1;
				break;
			case 0xca:
				skip = 4;
				break;
			case 0xcb:
				skip = 8;
				break;
			case 0xcc:
			case 0xd0:
				skip = 1;
				break;
			case 0xcd:
			case 0xd1:
				skip = 2;
				break;
			case 0xce:
			case 0xd2:
				skip = 4;
				break;
			case 0xcf:
			case 0xd3:
				skip = 8;
				break;
			case 0xd4:
				skip = 2;
				break; /* fixext1: type + 1 */
			case 0xd5:
				skip = 3;
				break;
			case 0xd6:
				skip = 5;
				break;
			case 0xd7:
				skip = 9;
				break;
			case 0xd8:
				skip = 17;
				break;
			case 0xdc:
				if (read_be(p + pos, len - pos, 2, &n))
					return pos + 1;
				pos += 2;
				children = n;
				break;
			case 0xdd:
				if (read_be(p + pos, len - pos, 4, &n))
					return pos + 1;
				pos += 4;
				children = n;
				break;
			case 0xde:
				if (read_be(p + pos, len - pos, 2, &n))
					return pos + 1;
				pos += 2;
				children = n * 2;
				break;
			case 0xdf:
				if (read_be(p + pos, len - pos, 4, &n))
					return pos + 1;
				pos += 4;
				children = n * 2;
				break;
			default: /* 0xc1: never used */
				return pos;
			}
		}
		if (skip > len - pos)
			return pos + 1;
		pos += (size_t)skip;
		if (children) {
			/* Every child takes at least one byte: reject impossible
			 * counts now rather than looping on them. */
			if (children > len - pos)
				return pos + 1;
			if (depth == MP_MAX_DEPTH)
				return pos;
			owed[++depth] = children;
		}
	}
	return pos == len ? 0 : pos + 1;
}
