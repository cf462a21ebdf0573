/*
 * seg_mpack.c - the msgpack writer and object length of seg_mpack.h.
 */
#include "seg_mpack.h"
#include "seg_mphead.h"

#include <string.h>

/* seg_buf_put, with the common case (room left) inline: the writer puts
 * a few bytes at a time. */
static inline void put(seg_buf *b, const void *s, size_t n)
{
	if (__builtin_expect(!b->oom && b->len + n + 1 <= b->cap, 1)) {
		memcpy(b->p + b->len, s, n);
		b->len += n;
		b->p[b->len] = '\0';
	} else {
		seg_buf_put(b, s, n);
	}
}

/* Type byte then the low n bytes of v, big endian. */
static void put_be(seg_buf *b, uint8_t type, uint64_t v, unsigned n)
{
	uint8_t h[9];
	unsigned i;

	h[0] = type;
	for (i = 0; i < n; i++)
		h[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	put(b, h, 1 + n);
}

void seg_mp_nil(seg_buf *b)
{
	uint8_t c = 0xc0;
	put(b, &c, 1);
}

void seg_mp_bool(seg_buf *b, int v)
{
	uint8_t c = v ? 0xc3 : 0xc2;
	put(b, &c, 1);
}

void seg_mp_uint(seg_buf *b, uint64_t v)
{
	if (v < 128)
		put_be(b, (uint8_t)v, 0, 0);
	else if (v < 256)
		put_be(b, 0xcc, v, 1);
	else if (v < 65536)
		put_be(b, 0xcd, v, 2);
	else if (v < 4294967296ull)
		put_be(b, 0xce, v, 4);
	else
		put_be(b, 0xcf, v, 8);
}

void seg_mp_int(seg_buf *b, int64_t v)
{
	if (v >= 0)
		seg_mp_uint(b, (uint64_t)v);
	else if (v >= -32)
		put_be(b, (uint8_t)v, 0, 0);
	else if (v >= -128)
		put_be(b, 0xd0, (uint64_t)v, 1);
	else if (v >= -32768)
		put_be(b, 0xd1, (uint64_t)v, 2);
	else if (v >= -2147483647 - 1)
		put_be(b, 0xd2, (uint64_t)v, 4);
	else
		put_be(b, 0xd3, (uint64_t)v, 8);
}

void seg_mp_double(seg_buf *b, double v)
{
	uint64_t u;

	memcpy(&u, &v, sizeof(u));
	put_be(b, 0xcb, u, 8);
}

void seg_mp_str(seg_buf *b, const void *s, size_t n)
{
	if (n < 32)
		put_be(b, (uint8_t)(0xa0 | n), 0, 0);
	else if (n < 256)
		put_be(b, 0xd9, n, 1);
	else if (n < 65536)
		put_be(b, 0xda, n, 2);
	else
		put_be(b, 0xdb, n, 4);
	put(b, s, n);
}

void seg_mp_array(seg_buf *b, uint32_t n)
{
	if (n < 16)
		put_be(b, (uint8_t)(0x90 | n), 0, 0);
	else if (n < 65536)
		put_be(b, 0xdc, n, 2);
	else
		put_be(b, 0xdd, n, 4);
}

void seg_mp_map(seg_buf *b, uint32_t n)
{
	if (n < 16)
		put_be(b, (uint8_t)(0x80 | n), 0, 0);
	else if (n < 65536)
		put_be(b, 0xde, n, 2);
	else
		put_be(b, 0xdf, n, 4);
}

size_t seg_mp_next(const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t pos = 0;
	uint64_t owed = 1; /* objects still to read */

	while (owed) {
		seg_mp_hdr h;
		unsigned hs;
		uint64_t skip, children;

		if (pos >= len)
			return 0;
		owed--;
		hs = seg_mp_head(p + pos, len - pos, &h);
		if (!hs) /* 0xc1, or a length cut short */
			return 0;
		pos += hs;
		skip = seg_mp_payload(&h);
		children = seg_mp_children(&h);
		if (skip > len - pos)
			return 0;
		pos += (size_t)skip;
		/* Each child takes at least one byte: more than remain is short. */
		if (children > len - pos)
			return 0;
		owed += children;
	}
	return pos;
}
