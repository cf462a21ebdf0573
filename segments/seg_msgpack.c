/*
 * seg_msgpack.c - check that a buffer holds exactly one msgpack object.
 *
 * Two walks, one answer. The fast walk decides acceptance for every append
 * and is built for instruction count (bench/instructions.sh): one pass, a
 * 256-entry table that gives for each lead byte the size of the whole object
 * and the number of children it opens, and one counter of objects still
 * owed instead of a stack per depth. The nesting depth can only pass its
 * limit once more than MP_MAX_DEPTH non-empty containers have been seen, so
 * the fast walk counts them and leaves those rare inputs to the exact walk.
 * The exact walk keeps a count per depth; it runs only when the fast one
 * rejects (to name the byte offset) or cannot decide. Neither recurses or
 * allocates; both are bounded on hostile input. (msgpack-c's unpacker would
 * build a tree in a zone allocator for every append.)
 */
#include "seg_format.h"
#include "seg_mphead.h"

#include <string.h>

#define MP_MAX_DEPTH 256

/* The reference walk: exact acceptance and the offset of a rejection. */
static size_t mp_validate_exact(const void *data, size_t len)
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
		seg_mp_hdr h;
		unsigned hs;
		uint64_t skip, children;

		if (owed[depth] == 0) {
			depth--;
			continue;
		}
		if (pos >= len)
			return pos + 1;
		owed[depth]--;
		hs = seg_mp_head(p + pos, len - pos, &h);
		if (!hs) /* 0xc1 (never used) or a length cut short */
			return h.kind == SEG_MP_BAD ? pos + 1 : pos + 2;
		pos += hs;
		skip = seg_mp_payload(&h);
		children = seg_mp_children(&h);
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

/*
 * The fast walk's tables come from SEG_MP_TABLE (seg_mphead.h), the one
 * type table: MP_SIZE and MP_KIDS give, for the types whose lead byte fixes
 * the size of the object (ints, nil, bool, floats, fixstr, fixext, fixmap,
 * fixarray), the size in bytes including the lead byte and the number of
 * children it opens. Size 0: the length follows in 1, 2 or 4 bytes (str,
 * bin, ext, array16/32, map16/32), or 0xc1 (never used). The largest
 * object the table sizes is a fixstr of 31 bytes (PK_MAX_FIXED): ISO
 * timestamps and the like cost a table load, not that branch.
 *
 * The walk for records up to 4 KiB (realistic predictions) keeps its whole
 * state in one 64-bit word, so that a fixed-size object costs a table load
 * and an add (three instructions on x86-64), and one test per four objects
 * says whether the walk may go on unrolled:
 *
 *   bits 0-15   offset of the next lead byte (< 4096 + 4 * PK_MAX_FIXED)
 *   bits 16-33  PK_OWED_BIAS minus the objects still owed (at most 30 per
 *               byte: fewer than 2^17 owed, so the field stays in 0..2^18);
 *               its top bit (PK_FEW) is set exactly when 3 or fewer are
 *               owed
 *   bits 34-45  non-empty containers seen (at most one per byte: < 2^12)
 *   bits 61-63  lead bytes met whose length follows (PK_VAR each, at most
 *               4 before the walk reads the length)
 *
 * mp_pk[b] adds the object's size to the offset, one to the container count
 * for a non-empty container, and takes its children minus one off the owed
 * field (so the owed count goes up by its children and down by itself; the
 * field never goes below 0 or past 2^18, so the add never carries into the
 * next field). A lead byte whose length follows adds PK_VAR and nothing
 * else: the offset stays on it until the branch that reads the length has
 * run. PK_STOP (PK_FEW or a PK_VAR) ends the unrolled steps.
 */
#define PK_SMALL_MAX 4095u
#define PK_OWED_SHIFT 16
#define PK_OWED_MASK (UINT64_C(0x3ffff) << PK_OWED_SHIFT)
#define PK_OWED_BIAS ((UINT64_C(1) << 17) + 3)
#define PK_OWED1 (UINT64_C(1) << PK_OWED_SHIFT)
#define PK_FEW (UINT64_C(1) << (PK_OWED_SHIFT + 17)) /* owed <= 3 */
#define PK_NEST_SHIFT 34
#define PK_NEST (UINT64_C(1) << PK_NEST_SHIFT)
#define PK_VAR (UINT64_C(1) << 61)
#define PK_VARS (UINT64_C(7) << 61)
#define PK_STOP (PK_VARS | PK_FEW)
#define PK_OFF UINT64_C(0xffff)
#define PK_MAX_FIXED 32 /* largest object the table sizes: fixstr of 31 bytes */
/* Objects owed, and the state word with that many owed. */
#define PK_OWED(x) (PK_OWED_BIAS - (((x)&PK_OWED_MASK) >> PK_OWED_SHIFT))
/* None owed: the field at PK_OWED_BIAS, which it never passes, so its top
 * bit and two low bits set; one test. */
#define PK_NONE_OWED(x) (!(~(x) & (PK_FEW | UINT64_C(3) << PK_OWED_SHIFT)))
#define PK_WITH_OWED(x, owed) \
	(((x) & ~PK_OWED_MASK) | (uint64_t)(PK_OWED_BIAS - (owed)) << PK_OWED_SHIFT)
#define PK_ENTRY(size, children)                                               \
	((size) ? (uint64_t)(size) + ((children) ? PK_NEST : 0) -              \
			  ((uint64_t)(children) << PK_OWED_SHIFT) + PK_OWED1 : \
		  PK_VAR),
#define MP_SIZE(kind, lenw, n)                                                     \
	((lenw) || SEG_MP_##kind == SEG_MP_BAD ||                                  \
			 (SEG_MP_##kind == SEG_MP_STR && (n) > PK_MAX_FIXED - 1) ? \
		 0 :                                                               \
		 1 + (SEG_MP_##kind >= SEG_MP_ARRAY ? 0 : (n)))
#define MP_KIDS(kind, lenw, n)                     \
	((lenw)                        ? 0 :       \
	 SEG_MP_##kind == SEG_MP_ARRAY ? (n) :     \
	 SEG_MP_##kind == SEG_MP_MAP   ? 2 * (n) : \
					 0)
#define PK_TYPE(kind, lenw, n) PK_ENTRY(MP_SIZE(kind, lenw, n), MP_KIDS(kind, lenw, n))
static const uint64_t mp_pk[256] = {SEG_MP_TABLE(PK_TYPE)};

/* The same table for the walk of larger records: size in bits 0-7,
 * children in bits 8-15, bit 40 for a non-empty container. */
#define FIX_ENTRY(size, children) \
	((uint64_t)(size) | (uint64_t)(children) << 8 | ((children) ? UINT64_C(1) << 40 : 0)),
#define FIX_TYPE(kind, lenw, n) FIX_ENTRY(MP_SIZE(kind, lenw, n), MP_KIDS(kind, lenw, n))
static const uint64_t mp_fix[256] = {SEG_MP_TABLE(FIX_TYPE)};

/*
 * The header of a type whose length follows its lead byte (at p, avail
 * bytes from p on). Returns 0 for 0xc1 or a truncated header, else the
 * header size (lead byte and length), with *n the bytes of data that follow
 * (str, bin; ext's type byte included) or, *children set, the number of
 * children (array, map; two per map entry).
 *
 * The fast walk's own reading of seg_mphead.h's variable-length headers,
 * a switch rather than the table: through seg_mp_head the walk cost 13
 * more instructions per append (1222 against 1209 per sample record,
 * bench/instructions.sh), for the two such headers a prediction holds.
 * check_msgpack holds the validator to the reference walk on every lead
 * byte, which keeps the two readings equal.
 */
static inline unsigned mp_var_header(const uint8_t *p, size_t avail, uint64_t *n, int *children)
{
	unsigned w, kind; /* kind: 0 str/bin, 1 ext, 2 array, 3 map */
	uint64_t v;

	if (*p == 0xd9) { /* str8, the usual one (ids, longer text) */
		if (avail < 2)
			return 0;
		*children = 0;
		*n = p[1];
		return 2;
	}
	switch (*p) {
	case 0xc4:
	case 0xd9:
		w = 1, kind = 0;
		break;
	case 0xc5:
	case 0xda:
		w = 2, kind = 0;
		break;
	case 0xc6:
	case 0xdb:
		w = 4, kind = 0;
		break;
	case 0xc7:
		w = 1, kind = 1;
		break;
	case 0xc8:
		w = 2, kind = 1;
		break;
	case 0xc9:
		w = 4, kind = 1;
		break;
	case 0xdc:
		w = 2, kind = 2;
		break;
	case 0xdd:
		w = 4, kind = 2;
		break;
	case 0xde:
		w = 2, kind = 3;
		break;
	case 0xdf:
		w = 4, kind = 3;
		break;
	default: /* 0xc1 */
		return 0;
	}
	if (avail <= w)
		return 0;
	v = p[1];
	if (w >= 2)
		v = v << 8 | p[2];
	if (w == 4)
		v = v << 16 | (uint64_t)p[3] << 8 | p[4];
	*children = kind >= 2;
	*n = kind >= 2 ? v << (kind - 2) : v + kind;
	return 1 + w;
}

/*
 * Run the packed walk over p (len bytes of the record), state in *xp.
 * Unpadded (padded == 0): stops with PK_TAIL when the offset reaches lim4,
 * beyond which four lead bytes might not all be in the buffer. Padded: p is
 * followed by at least PK_MAX_FIXED readable bytes of 0xc1, so no bound
 * check is needed (a read there meets the 0xc1 branch, which rejects).
 * Returns 1 when no object is owed any more, 0 if the bytes are not one
 * object, PK_TAIL.
 */
#define PK_TAIL 2
static inline __attribute__((always_inline)) int mp_pk_run(const uint8_t *p, size_t len,
							   uint32_t lim4, int padded, uint64_t *xp)
{
	uint64_t x = *xp, off, n;
	unsigned h;
	int ch, r = 1;

	for (;;) {
		/* Four objects a step while at least four are owed (so none
		 * but the fourth can end the walk). After a lead byte whose
		 * length follows, the offset stays on it and the remaining
		 * reads of the step only add PK_VAR. */
		uint32_t o = (uint16_t)x;
		while (__builtin_expect(!(x & PK_STOP) && (padded || o < lim4), 1)) {
			x += mp_pk[p[o]];
			x += mp_pk[p[(uint16_t)x]];
			x += mp_pk[p[(uint16_t)x]];
			x += mp_pk[p[(uint16_t)x]];
			o = (uint16_t)x;
		}
		if (!(x & PK_VARS)) {
			/* Three or fewer owed, or the offset at lim4: one
			 * object, then back to the test above. */
			if (PK_NONE_OWED(x))
				break;
			if (!padded && (uint16_t)x >= lim4) {
				r = PK_TAIL;
				break;
			}
			x += mp_pk[p[(uint16_t)x]];
			if (!(x & PK_VARS))
				continue;
		}
		/* A lead byte whose length follows, at the offset (or padding:
		 * 0xc1, rejected). */
		x &= ~PK_VARS;
		off = x & PK_OFF;
		h = mp_var_header(p + off, len - off, &n, &ch);
		if (!h)
			return 0;
		off += h;
		if (n > len - off)
			return 0;
		if (ch) {
			/* Every owed object takes a byte: more owed than bytes
			 * left is invalid, and the owed count stays within its
			 * bits. */
			uint64_t owed = PK_OWED(x) - 1 + n;
			if (owed > len - off)
				return 0;
			x = PK_WITH_OWED(x, owed) + (n ? PK_NEST : 0);
		} else {
			off += n;
			x += PK_OWED1;
		}
		x = (x & ~PK_OFF) | off;
		if (PK_NONE_OWED(x))
			break;
	}
	*xp = x;
	return r;
}

/* 1 if [p, p+len) is one valid object leaving the depth limit aside (*nest
 * gets the number of non-empty containers), 0 if it is not one.
 * 1 <= len <= PK_SMALL_MAX. The last bytes are walked in a copy followed
 * by padding, so that the walk needs no bound check per object there. */
static int mp_walk_small(const uint8_t *p, size_t len, uint64_t *nest)
{
	/* Below lim4, the lead bytes of the next four objects are all in the
	 * buffer (the fourth starts at most 3 * PK_MAX_FIXED on). */
	enum {
		TAIL = 3 * PK_MAX_FIXED
	};
	const uint32_t lim4 = len > TAIL ? (uint32_t)(len - TAIL) : 0;
	uint8_t tail[TAIL + PK_MAX_FIXED];
	uint64_t x = PK_WITH_OWED(0, 1); /* one object owed, at offset 0 */
	uint32_t base;
	int r;

	r = mp_pk_run(p, len, lim4, 0, &x);
	if (r == PK_TAIL) {
		/* At most TAIL bytes are left from the offset (it is at least
		 * lim4); the copy is followed by PK_MAX_FIXED bytes or more of
		 * padding. */
		if ((x & PK_OFF) > len)
			return 0; /* an object owed, and the last ran past the end */
		if (len >= TAIL) {
			/* The last TAIL bytes, whatever the offset: sizes the
			 * compiler knows, so no call to memcpy or memset. */
			base = (uint32_t)len - TAIL;
			memcpy(tail, p + base, TAIL);
			memset(tail + TAIL, 0xc1, PK_MAX_FIXED);
		} else {
			base = 0;
			memcpy(tail, p, len);
			memset(tail + len, 0xc1, sizeof(tail) - len);
		}
		x -= base;
		r = mp_pk_run(tail, len - base, 0, 1, &x);
		x += base;
	}
	*nest = x >> PK_NEST_SHIFT & 0xfff;
	return r == 1 && (x & PK_OFF) == len;
}

/* The same walk for larger records, with the offset and the counts in
 * separate variables. len >= 1. */
static int mp_walk_large(const uint8_t *p, size_t len, uint64_t *nest)
{
	const uint8_t *end = p + len, *q = p;
	uint64_t owed = 1, e, n;
	unsigned h;
	int ch;

	*nest = 0;
	do {
		if (q >= end)
			return 0;
		e = mp_fix[*q];
		if (e) {
			q += e & 0xff;
			owed += (e >> 8 & 0xff) - 1;
			*nest += e >> 40;
			continue;
		}
		h = mp_var_header(q, (size_t)(end - q), &n, &ch);
		if (!h)
			return 0;
		q += h;
		if (n > (size_t)(end - q))
			return 0;
		if (ch) {
			owed += n - 1;
			*nest += n != 0;
			if (owed > (size_t)(end - q))
				return 0;
		} else {
			q += n;
			owed--;
		}
	} while (owed);
	return q == end;
}

size_t seg_mp_validate(const void *data, size_t len)
{
	uint64_t nest;
	int ok;

	if (len == 0)
		return 1;
	ok = len <= PK_SMALL_MAX ? mp_walk_small(data, len, &nest) :
				   mp_walk_large(data, len, &nest);
	/* Passing the depth limit takes more non-empty containers than
	 * MP_MAX_DEPTH: the exact walk decides those inputs, and names the
	 * offset of every rejected one. */
	if (ok && nest <= MP_MAX_DEPTH)
		return 0;
	return mp_validate_exact(data, len);
}
