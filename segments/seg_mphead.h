/*
 * seg_mphead.h - the one decoder of msgpack headers. Every walker of
 * msgpack bytes reads its type bytes here: the validator (seg_msgpack.c),
 * the object length (seg_mpack.c), the msgpack -> JSON writer
 * (seg_json.c) and the streaming splitter (seg_mpsplit.c: the public
 * edgelog_msgpack_measure and edgelog_msgpack_split_*).
 *
 * SEG_MP_TABLE is the msgpack specification's format table, one
 * F(kind, lenw, n) per lead byte 0x00..0xff:
 *   kind  what the object is (SEG_MP_BAD: 0xc1, never used);
 *   lenw  bytes of big-endian length after the lead byte (0, 1, 2, 4);
 *   n     when lenw is 0, the object's count: payload bytes after the lead
 *         byte (integers, floats; ext: its type byte included; fixstr:
 *         the string's bytes), elements (fixarray) or entries (fixmap).
 * seg_mp_types is that table; the validator's fast walk derives its own
 * packed tables from the same macro.
 */
#ifndef SEG_MPHEAD_H
#define SEG_MPHEAD_H

#include <stddef.h>
#include <stdint.h>

enum seg_mp_kind {
	SEG_MP_BAD = 0,
	SEG_MP_NIL,
	SEG_MP_FALSE,
	SEG_MP_TRUE,
	SEG_MP_UINT, /* positive fixint (value in the lead byte), uint 8-64 */
	SEG_MP_INT,  /* negative fixint (value in the lead byte), int 8-64 */
	SEG_MP_F32,
	SEG_MP_F64,
	SEG_MP_STR,
	SEG_MP_BIN,
	SEG_MP_EXT,
	SEG_MP_ARRAY,
	SEG_MP_MAP
};

/* clang-format off */
#define SEG_MP_TABLE(F) \
	/* 0x00 */ F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) \
	/* 0x08 */ F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) \
	/* 0x10 */ F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) \
	/* 0x18 */ F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) \
	/* 0x20 */ F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) \
	/* 0x28 */ F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) \
	/* 0x30 */ F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) \
	/* 0x38 */ F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) \
	/* 0x40 */ F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) \
	/* 0x48 */ F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) \
	/* 0x50 */ F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) \
	/* 0x58 */ F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) \
	/* 0x60 */ F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) \
	/* 0x68 */ F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) \
	/* 0x70 */ F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) \
	/* 0x78 */ F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) F(UINT, 0, 0) \
	/* 0x80 */ F(MAP, 0, 0) F(MAP, 0, 1) F(MAP, 0, 2) F(MAP, 0, 3) F(MAP, 0, 4) F(MAP, 0, 5) F(MAP, 0, 6) F(MAP, 0, 7) \
	/* 0x88 */ F(MAP, 0, 8) F(MAP, 0, 9) F(MAP, 0, 10) F(MAP, 0, 11) F(MAP, 0, 12) F(MAP, 0, 13) F(MAP, 0, 14) F(MAP, 0, 15) \
	/* 0x90 */ F(ARRAY, 0, 0) F(ARRAY, 0, 1) F(ARRAY, 0, 2) F(ARRAY, 0, 3) F(ARRAY, 0, 4) F(ARRAY, 0, 5) F(ARRAY, 0, 6) F(ARRAY, 0, 7) \
	/* 0x98 */ F(ARRAY, 0, 8) F(ARRAY, 0, 9) F(ARRAY, 0, 10) F(ARRAY, 0, 11) F(ARRAY, 0, 12) F(ARRAY, 0, 13) F(ARRAY, 0, 14) F(ARRAY, 0, 15) \
	/* 0xa0 */ F(STR, 0, 0) F(STR, 0, 1) F(STR, 0, 2) F(STR, 0, 3) F(STR, 0, 4) F(STR, 0, 5) F(STR, 0, 6) F(STR, 0, 7) \
	/* 0xa8 */ F(STR, 0, 8) F(STR, 0, 9) F(STR, 0, 10) F(STR, 0, 11) F(STR, 0, 12) F(STR, 0, 13) F(STR, 0, 14) F(STR, 0, 15) \
	/* 0xb0 */ F(STR, 0, 16) F(STR, 0, 17) F(STR, 0, 18) F(STR, 0, 19) F(STR, 0, 20) F(STR, 0, 21) F(STR, 0, 22) F(STR, 0, 23) \
	/* 0xb8 */ F(STR, 0, 24) F(STR, 0, 25) F(STR, 0, 26) F(STR, 0, 27) F(STR, 0, 28) F(STR, 0, 29) F(STR, 0, 30) F(STR, 0, 31) \
	/* 0xc0 */ F(NIL, 0, 0) F(BAD, 0, 0) F(FALSE, 0, 0) F(TRUE, 0, 0) F(BIN, 1, 0) F(BIN, 2, 0) F(BIN, 4, 0) F(EXT, 1, 0) \
	/* 0xc8 */ F(EXT, 2, 0) F(EXT, 4, 0) F(F32, 0, 4) F(F64, 0, 8) F(UINT, 0, 1) F(UINT, 0, 2) F(UINT, 0, 4) F(UINT, 0, 8) \
	/* 0xd0 */ F(INT, 0, 1) F(INT, 0, 2) F(INT, 0, 4) F(INT, 0, 8) F(EXT, 0, 2) F(EXT, 0, 3) F(EXT, 0, 5) F(EXT, 0, 9) \
	/* 0xd8 */ F(EXT, 0, 17) F(STR, 1, 0) F(STR, 2, 0) F(STR, 4, 0) F(ARRAY, 2, 0) F(ARRAY, 4, 0) F(MAP, 2, 0) F(MAP, 4, 0) \
	/* 0xe0 */ F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) \
	/* 0xe8 */ F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) \
	/* 0xf0 */ F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) \
	/* 0xf8 */ F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0) F(INT, 0, 0)
/* clang-format on */

/* Four bytes, so that one load reads an entry; ext is 1 for ext types
 * (their type byte is counted in n). */
typedef struct seg_mp_type {
	uint8_t kind, lenw, n, ext;
} seg_mp_type;

extern const seg_mp_type seg_mp_types[256];

/* A decoded header: kind and n as in the table, but with the length read
 * when it follows the lead byte (ext: plus its type byte), so n is always
 * the payload bytes (scalars, str, bin, ext), elements (array) or entries
 * (map). */
typedef struct seg_mp_hdr {
	unsigned kind;
	uint64_t n;
} seg_mp_hdr;

/* Decode the header at p (avail >= 1 bytes readable). Returns its size
 * (the lead byte and its length field: 1 to 5), or 0 for 0xc1 or a length
 * field cut short (h->kind tells which: SEG_MP_BAD for 0xc1). */
static inline unsigned seg_mp_head(const uint8_t *p, size_t avail, seg_mp_hdr *h)
{
	const seg_mp_type t = seg_mp_types[p[0]];
	uint64_t v;

	h->kind = t.kind;
	if (!t.lenw) {
		h->n = t.n;
		return t.kind != SEG_MP_BAD;
	}
	if (avail <= t.lenw)
		return 0;
	v = p[1];
	if (t.lenw >= 2)
		v = v << 8 | p[2];
	if (t.lenw == 4)
		v = v << 16 | (uint64_t)p[3] << 8 | p[4];
	h->n = v + t.ext;
	return 1 + t.lenw;
}

/* The objects a header opens (array: its elements, map: keys and values)
 * and the payload bytes it is followed by (everything else). */
static inline uint64_t seg_mp_children(const seg_mp_hdr *h)
{
	return h->kind == SEG_MP_ARRAY ? h->n : h->kind == SEG_MP_MAP ? 2 * h->n : 0;
}

static inline uint64_t seg_mp_payload(const seg_mp_hdr *h)
{
	return h->kind >= SEG_MP_ARRAY ? 0 : h->n;
}

#endif
