/*
 * check_msgpack.c - the fast msgpack validator (seg_mp_validate) against the
 * walk it replaced, kept here verbatim as the reference: the same answer,
 * byte offset included, for every input the tests make. Every lead byte at
 * its length boundaries, whole and cut at every byte, inside containers of
 * every kind; nesting at the depth limit; records across the sizes where
 * the validator changes walks (4 KiB, 64 KiB); random trees and mutations.
 * Also the frame checksum through the per-segment secret (and the AVX2
 * build of the hash) against XXH3_64bits_withSeed; the library's msgpack
 * writer (seg_mpack.c) against msgpack-c's packer, byte for byte, and its
 * object length (seg_mp_next) against the reference walk.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "seg_format.h"
#include "seg_mpack.h"
#include "test_main.h"
#include "test_util.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

/* ---- the reference: seg_mp_validate as it was before the fast walk ---- */

#define REF_MAX_DEPTH 256

static int ref_read_be(const uint8_t *p, size_t avail, unsigned n, uint64_t *v)
{
	unsigned i;

	if (avail < n)
		return -1;
	*v = 0;
	for (i = 0; i < n; i++)
		*v = *v << 8 | p[i];
	return 0;
}

static size_t ref_validate(const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t pos = 0;
	static uint64_t owed[REF_MAX_DEPTH + 1];
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
		} else if (b >= 0x80 && b <= 0x8f) {
			children = (uint64_t)(b & 0x0f) * 2;
		} else if (b >= 0x90 && b <= 0x9f) {
			children = b & 0x0f;
		} else if (b >= 0xa0 && b <= 0xbf) {
			skip = b & 0x1f;
		} else {
			unsigned w = 0;
			int kind = -1; /* 0 skip n, 1 skip n + 1, 2 children n, 3 children 2n */
			switch (b) {
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
				break;
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
			default:
				return pos;
			}
			if (kind >= 0) {
				if (ref_read_be(p + pos, len - pos, w, &n))
					return pos + 1;
				pos += w;
				if (kind == 0)
					skip = n;
				else if (kind == 1)
					skip = n + 1;
				else if (kind == 2)
					children = n;
				else
					children = n * 2;
			}
		}
		if (skip > len - pos)
			return pos + 1;
		pos += (size_t)skip;
		if (children) {
			if (children > len - pos)
				return pos + 1;
			if (depth == REF_MAX_DEPTH)
				return pos;
			owed[++depth] = children;
		}
	}
	return pos == len ? 0 : pos + 1;
}

/* ---- helpers ----------------------------------------------------------- */

static long compared;

/* The two validators agree on buf[0..len), and on every prefix of it. The
 * buffer is copied to the heap at exactly len bytes, so that ASan sees any
 * read past the end. */
static void same(const uint8_t *buf, size_t len, int prefixes)
{
	size_t cut = prefixes ? 0 : len;

	for (; cut <= len; cut++) {
		uint8_t *c = malloc(cut ? cut : 1);
		size_t want, got;

		ck_assert_ptr_nonnull(c);
		memcpy(c, buf, cut);
		want = ref_validate(c, cut);
		got = seg_mp_validate(c, cut);
		if (want != got) {
			char hex[3 * 48 + 1] = "";
			size_t i;
			for (i = 0; i < cut && i < 48; i++)
				snprintf(hex + 3 * i, 4, "%02x ", c[i]);
			ck_abort_msg("validators differ on %zu bytes [%s%s]: reference %zu, "
				     "seg_mp_validate %zu",
				     cut, hex, cut > 48 ? "..." : "", want, got);
		}
		compared++;
		free(c);
	}
}

static size_t put_be(uint8_t *p, uint64_t v, unsigned w)
{
	unsigned i;

	for (i = 0; i < w; i++)
		p[i] = (uint8_t)(v >> (8 * (w - 1 - i)));
	return w;
}

/* One object with lead byte b: its length or count n (where the type has
 * one), children/data filled with fixint 0x01. Returns its size, 0 if b
 * cannot carry n. */
static size_t make_obj(uint8_t *out, size_t cap, unsigned b, uint64_t n)
{
	size_t o = 0, data = 0, kids = 0;

	out[o++] = (uint8_t)b;
	if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc1 || b == 0xc2 || b == 0xc3)
		return n == 0 ? o : 0;
	if (b >= 0x80 && b <= 0x8f)
		kids = (b & 0xf) * 2u;
	else if (b >= 0x90 && b <= 0x9f)
		kids = b & 0xf;
	else if (b >= 0xa0 && b <= 0xbf)
		data = b & 0x1f;
	else {
		switch (b) {
		case 0xca:
			data = 4;
			break;
		case 0xcb:
			data = 8;
			break;
		case 0xcc:
		case 0xd0:
			data = 1;
			break;
		case 0xcd:
		case 0xd1:
			data = 2;
			break;
		case 0xce:
		case 0xd2:
			data = 4;
			break;
		case 0xcf:
		case 0xd3:
			data = 8;
			break;
		case 0xd4:
			data = 2;
			break;
		case 0xd5:
			data = 3;
			break;
		case 0xd6:
			data = 5;
			break;
		case 0xd7:
			data = 9;
			break;
		case 0xd8:
			data = 17;
			break;
		case 0xc4:
		case 0xd9:
			if (n > 0xff)
				return 0;
			o += put_be(out + o, n, 1);
			data = n;
			break;
		case 0xc5:
		case 0xda:
			if (n > 0xffff)
				return 0;
			o += put_be(out + o, n, 2);
			data = n;
			break;
		case 0xc6:
		case 0xdb:
			o += put_be(out + o, n, 4);
			data = n;
			break;
		case 0xc7:
			if (n > 0xff)
				return 0;
			o += put_be(out + o, n, 1);
			data = n + 1;
			break;
		case 0xc8:
			if (n > 0xffff)
				return 0;
			o += put_be(out + o, n, 2);
			data = n + 1;
			break;
		case 0xc9:
			o += put_be(out + o, n, 4);
			data = n + 1;
			break;
		case 0xdc:
			if (n > 0xffff)
				return 0;
			o += put_be(out + o, n, 2);
			kids = n;
			break;
		case 0xdd:
			o += put_be(out + o, n, 4);
			kids = n;
			break;
		case 0xde:
			if (n > 0xffff)
				return 0;
			o += put_be(out + o, n, 2);
			kids = 2 * n;
			break;
		case 0xdf:
			o += put_be(out + o, n, 4);
			kids = 2 * n;
			break;
		}
	}
	if (o + data + kids > cap)
		return 0;
	memset(out + o, 0x01, data + kids);
	return o + data + kids;
}

/* ---- tests ------------------------------------------------------------- */

/* Every lead byte, with the lengths at each boundary of its encoding, on its
 * own and inside each kind of container, whole and cut at every byte, and
 * with one byte too many. */
START_TEST(test_mp_every_lead_byte_at_its_boundaries)
{
	static const uint64_t lens[] = {0,    1,    2,    14,    15,    16,    17,
					18,   30,   31,   32,    254,   255,   256,
					4094, 4095, 4096, 65534, 65535, 65536, 70000};
	static const uint8_t wrap[][5] = {
		{0},                /* none */
		{0x91},             /* fixarray 1 */
		{0xdc, 0x00, 0x01}, /* array16 1 */
		{0x81, 0xa1, 'k'},  /* fixmap 1, key "k" */
		{0xdf, 0, 0, 0, 1}, /* map32 1: key follows */
	};
	static const size_t wlen[] = {0, 1, 3, 3, 5};
	size_t cap = 3 * 70000 + 64;
	uint8_t *obj = malloc(cap), *buf = malloc(cap);
	unsigned b, li, wi;

	ck_assert_ptr_nonnull(obj);
	ck_assert_ptr_nonnull(buf);
	for (b = 0; b < 256; b++) {
		for (li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
			size_t n = make_obj(obj, cap - 16, b, lens[li]);
			if (!n)
				continue;
			for (wi = 0; wi < sizeof(wlen) / sizeof(wlen[0]); wi++) {
				size_t o = 0;
				memcpy(buf, wrap[wi], wlen[wi]);
				o = wlen[wi];
				if (wi == 4)
					buf[o++] = 0x01; /* the map32's key */
				memcpy(buf + o, obj, n);
				o += n;
				/* Prefixes only while small: the long ones add
				 * nothing new per cut and cost quadratic time. */
				same(buf, o, o <= 600);
				if (o > 600) {
					same(buf, o - 1, 0);
					same(buf, o - 2, 0);
				}
				buf[o] = 0xc0; /* one byte too many */
				same(buf, o + 1, 0);
			}
		}
	}
	ck_assert_int_gt(compared, 100000);
	free(obj);
	free(buf);
}
END_TEST

/* Nesting around the limit of 256, for each container kind, with a scalar,
 * an empty container or a non-empty one innermost; and wide inputs with more
 * than 256 containers that are not deep (the fast walk hands those to the
 * exact one). */
START_TEST(test_mp_nesting_limit)
{
	static const uint8_t open[][4] = {{0x91}, {0x81, 0x01}, {0xdc, 0, 1}, {0xde, 0, 1, 0x01}};
	static const size_t olen[] = {1, 2, 3, 4};
	static const uint8_t inner[][2] = {{0x01}, {0x90}, {0x80}, {0x91, 0x01}};
	static const size_t ilen[] = {1, 1, 1, 2};
	uint8_t *buf = malloc(8192);
	unsigned k, i;
	size_t d;

	ck_assert_ptr_nonnull(buf);
	for (k = 0; k < 4; k++)
		for (i = 0; i < 4; i++)
			for (d = 250; d <= 260; d++) {
				size_t o = 0, j;
				for (j = 0; j < d; j++) {
					memcpy(buf + o, open[k], olen[k]);
					o += olen[k];
				}
				memcpy(buf + o, inner[i], ilen[i]);
				o += ilen[i];
				same(buf, o, 1);
				if (d == 256 && i < 3)
					ck_assert_uint_eq(seg_mp_validate(buf, o), 0);
				if (d == 257 || (d == 256 && i == 3))
					ck_assert_uint_ne(seg_mp_validate(buf, o), 0);
			}
	/* Wide: an array of 300 one-element arrays (300 containers, depth 2),
	 * small (fast walk) and padded past 4 KiB (large walk). */
	for (k = 0; k < 2; k++) {
		size_t o = 0, j, n = k ? 2100 : 300;
		o += put_be(buf, 0xdc, 1);
		o += put_be(buf + o, n, 2);
		for (j = 0; j < n; j++) {
			buf[o++] = 0x91;
			buf[o++] = 0x01;
		}
		same(buf, o, 0);
		ck_assert_uint_eq(seg_mp_validate(buf, o), 0);
	}
	free(buf);
}
END_TEST

/* The prediction record, and records grown to the sizes where the
 * validator changes walks, whole and cut at every byte. */
START_TEST(test_mp_records_across_walk_sizes)
{
	static const size_t sizes[] = {1,    2,    53,   54,   55,    56,    72,   73,
				       4094, 4095, 4096, 4097, 65535, 65536, 65537};
	uint8_t *buf = malloc(70000);
	tu_buf rec = tu_prediction(7, 42);
	unsigned s;

	ck_assert_ptr_nonnull(buf);
	same(rec.data, rec.len, 1);
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		/* [record, bin of the rest] : a 2-element array totalling
		 * sizes[s] bytes where it fits, else fixint runs. */
		size_t want = sizes[s], o = 0;
		if (want >= rec.len + 1 + 5) {
			size_t pad = want - rec.len - 1 - 5;
			buf[o++] = 0x92;
			memcpy(buf + o, rec.data, rec.len);
			o += rec.len;
			buf[o++] = 0xc6;
			o += put_be(buf + o, pad, 4);
			memset(buf + o, 0xab, pad);
			o += pad;
			same(buf, o, want < 5000);
			/* the same size made of many small objects */
			o = 0;
			buf[o++] = 0xdd;
			o += put_be(buf + o, want - 5, 4);
			memset(buf + o, 0x7f, want - 5);
			o += want - 5;
			same(buf, o, 0);
			same(buf, o - 1, 0);
			ck_assert_uint_eq(seg_mp_validate(buf, o), 0);
		} else {
			memset(buf, 0x01, want);
			same(buf, want, 1);
		}
	}
	tu_buf_free(&rec);
	free(buf);
}
END_TEST

/* A random msgpack tree, depth at most maxd, into out (cap bytes). */
static size_t gen(uint64_t *rs, uint8_t *out, size_t cap, int maxd)
{
	uint64_t r = tu_rand(rs);
	size_t o = 0, i, n;

	if (cap < 48)
		return make_obj(out, cap, 0xc0, 0);
	switch (maxd > 0 ? r % 12 : r % 8) {
	case 0:
		out[0] = (uint8_t)(r >> 8) & 0x7f;
		return 1;
	case 1:
		out[0] = (uint8_t)(0xe0 | (r >> 8 & 0x1f));
		return 1;
	case 2: {
		static const uint8_t fixed[] = {0xc0, 0xc2, 0xc3, 0xca, 0xcb, 0xcc,
						0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2,
						0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8};
		return make_obj(out, cap, fixed[(r >> 8) % sizeof(fixed)], 0);
	}
	case 3:
		return make_obj(out, cap, 0xa0 | (unsigned)(r >> 8 & 0x1f), 0);
	case 4: {
		static const uint8_t var[] = {0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xd9, 0xda, 0xdb};
		return make_obj(out, cap, var[(r >> 8) % sizeof(var)], (r >> 16) % 40);
	}
	case 5:
	case 6:
	case 7:
		out[0] = 0xcb;
		memset(out + 1, (int)(r >> 8), 8);
		return 9;
	default: { /* a container */
		unsigned kind = (unsigned)(r >> 8) % 6;
		n = (r >> 16) % (kind < 2 ? 16 : 40);
		if (n > (cap - 8) / 96) /* every child gets at least 48 bytes */
			n = (cap - 8) / 96;
		if (kind == 0)
			out[o++] = (uint8_t)(0x90 | n);
		else if (kind == 1)
			out[o++] = (uint8_t)(0x80 | n);
		else if (kind == 2)
			out[o++] = 0xdc, o += put_be(out + o, n, 2);
		else if (kind == 3)
			out[o++] = 0xdd, o += put_be(out + o, n, 4);
		else if (kind == 4)
			out[o++] = 0xde, o += put_be(out + o, n, 2);
		else
			out[o++] = 0xdf, o += put_be(out + o, n, 4);
		if (kind == 1 || kind >= 4)
			n *= 2;
		for (i = 0; i < n; i++)
			o += gen(rs, out + o, (cap - o) / (n - i), maxd - 1);
		return o;
	}
	}
}

/* Random trees (valid), then mutated: bytes changed, cut, inserted,
 * removed. Both validators must agree on each. */
START_TEST(test_mp_random_trees_and_mutations)
{
	uint64_t rs = 0x13c0ffee;
	size_t cap = 20000;
	uint8_t *buf = malloc(cap + 64), *m = malloc(cap + 64);
	int t, k;

	ck_assert_ptr_nonnull(buf);
	ck_assert_ptr_nonnull(m);
	for (t = 0; t < 6000; t++) {
		size_t n = gen(&rs, buf, t % 10 == 0 ? cap : 700, 1 + t % 9), mn;
		same(buf, n, 0);
		ck_assert_uint_eq(seg_mp_validate(buf, n), 0);
		for (k = 0; k < 12; k++) {
			size_t at = tu_rand_below(&rs, n);
			memcpy(m, buf, n);
			mn = n;
			switch (tu_rand_below(&rs, 4)) {
			case 0:
				m[at] = (uint8_t)tu_rand(&rs);
				break;
			case 1:
				mn = at;
				break;
			case 2:
				memmove(m + at + 1, m + at, n - at);
				m[at] = (uint8_t)tu_rand(&rs);
				mn++;
				break;
			default:
				memmove(m + at, m + at + 1, n - at - 1);
				mn--;
				break;
			}
			same(m, mn, 0);
		}
	}
	free(buf);
	free(m);
}
END_TEST

/* The frame checksum through the per-segment secret (and, where built, the
 * AVX2 hash) equals the specification's XXH3_64bits_withSeed, at every
 * length up to 3,200 bytes (XXH3's 240-byte switch, the 1,024-byte blocks
 * of its long path) and at larger sizes up to the largest payload; the
 * frame seg_frame_write makes (copy fused with the hash where AVX2 is
 * there) is byte for byte the payload and seg_frame_encode's header, and
 * it writes nothing outside the frame. */
static void check_frame_len(const uint8_t *data, uint32_t len, uint64_t salt, const uint8_t *secret,
			    uint8_t *frame)
{
	uint8_t a[SEG_FRAME_HEADER], b[SEG_FRAME_HEADER];

	seg_frame_encode(a, salt, len * 7, -(int32_t)len, data, len);
	seg_frame_encode_secret(b, salt, secret, len * 7, -(int32_t)len, data, len);
	ck_assert_mem_eq(a, b, SEG_FRAME_HEADER);
	/* 64 guard bytes either side of the frame. */
	memset(frame, 0x5a, 64 + SEG_FRAME_HEADER + len + 64);
	seg_frame_write(frame + 64, salt, secret, len * 7, -(int32_t)len, data, len);
	ck_assert_mem_eq(frame + 64, a, SEG_FRAME_HEADER);
	ck_assert_int_eq(memcmp(frame + 64 + SEG_FRAME_HEADER, data, len), 0);
	for (int i = 0; i < 64; i++) {
		ck_assert_uint_eq(frame[i], 0x5a);
		ck_assert_uint_eq(frame[64 + SEG_FRAME_HEADER + len + i], 0x5a);
	}
#if SEG_HAVE_AVX2_HASH
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2")) {
		ck_assert_uint_eq(seg_xxh3_secret_avx2(data, len, secret, salt),
				  XXH3_64bits_withSeed(data, len, salt));
		if (len > 240) {
			memset(frame, 0x5a, len + 128);
			ck_assert_uint_eq(seg_xxh3_copy_avx2(frame + 64, data, len, secret),
					  XXH3_64bits_withSeed(data, len, salt));
			ck_assert_int_eq(memcmp(frame + 64, data, len), 0);
			ck_assert_uint_eq(frame[63], 0x5a);
			ck_assert_uint_eq(frame[64 + len], 0x5a);
		}
	}
#endif
}

START_TEST(test_frame_secret_checksum_matches_seed)
{
	static const uint32_t big[] = {4095, 4096, 4097, 65535, 65536, 100003, SEG_MAX_PAYLOAD};
	uint64_t rs = 99;
	uint8_t *data = malloc(SEG_MAX_PAYLOAD), *frame = malloc(SEG_MAX_PAYLOAD + 256);
	uint8_t secret[SEG_SECRET_SIZE];
	int s;
	uint32_t len;
	size_t i;

	ck_assert_ptr_nonnull(data);
	ck_assert_ptr_nonnull(frame);
	for (len = 0; len < SEG_MAX_PAYLOAD; len++)
		data[len] = (uint8_t)tu_rand(&rs);
	for (s = 0; s < 8; s++) {
		uint64_t salt = s ? tu_rand(&rs) : 0;
		seg_frame_secret(salt, secret);
		for (len = 1; len <= 3200; len++)
			check_frame_len(data + s, len, salt, secret, frame + s);
		for (i = 0; i < sizeof(big) / sizeof(big[0]); i++)
			check_frame_len(data + (big[i] < SEG_MAX_PAYLOAD ? s : 0), big[i], salt,
					secret, frame + s);
	}
	free(data);
	free(frame);
}
END_TEST

/* The library's writer gives msgpack-c's bytes for every value at the
 * boundaries of its encodings (the records edgelog_append_json wrote with
 * msgpack-c stay the same). */
START_TEST(test_mp_writer_matches_msgpack_c)
{
	static const uint64_t us[] = {0,
				      1,
				      127,
				      128,
				      255,
				      256,
				      65535,
				      65536,
				      4294967295ull,
				      4294967296ull,
				      9223372036854775807ull,
				      9223372036854775808ull,
				      UINT64_MAX};
	static const int64_t is[] = {0,
				     1,
				     -1,
				     -31,
				     -32,
				     -33,
				     -127,
				     -128,
				     -129,
				     -32767,
				     -32768,
				     -32769,
				     -2147483647,
				     -2147483647 - 1,
				     (int64_t)-2147483647 - 2,
				     INT64_MIN,
				     127,
				     128,
				     65536,
				     INT64_MAX};
	static const size_t lens[] = {0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536, 70000};
	static const double ds[] = {0.0, -0.0, 1.5, -2.25e-300, 1e308, 3.141592653589793};
	msgpack_sbuffer sb;
	msgpack_packer pk;
	seg_buf b = {0};
	char *s = malloc(70000);
	size_t i;

	ck_assert_ptr_nonnull(s);
	memset(s, 'x', 70000);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	for (i = 0; i < sizeof(us) / sizeof(us[0]); i++) {
		msgpack_pack_uint64(&pk, us[i]);
		seg_mp_uint(&b, us[i]);
	}
	for (i = 0; i < sizeof(is) / sizeof(is[0]); i++) {
		msgpack_pack_int64(&pk, is[i]);
		seg_mp_int(&b, is[i]);
	}
	for (i = 0; i < sizeof(ds) / sizeof(ds[0]); i++) {
		msgpack_pack_double(&pk, ds[i]);
		seg_mp_double(&b, ds[i]);
	}
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		msgpack_pack_str(&pk, lens[i]);
		msgpack_pack_str_body(&pk, s, lens[i]);
		seg_mp_str(&b, s, lens[i]);
		msgpack_pack_array(&pk, lens[i]);
		seg_mp_array(&b, (uint32_t)lens[i]);
		msgpack_pack_map(&pk, lens[i]);
		seg_mp_map(&b, (uint32_t)lens[i]);
	}
	msgpack_pack_nil(&pk);
	seg_mp_nil(&b);
	msgpack_pack_true(&pk);
	seg_mp_bool(&b, 1);
	msgpack_pack_false(&pk);
	seg_mp_bool(&b, 0);
	ck_assert(!b.oom);
	ck_assert_uint_eq(b.len, sb.size);
	ck_assert_mem_eq(b.p, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	seg_buf_free(&b);
	free(s);
}
END_TEST

/* seg_mp_next: the length of the first object, followed by anything; 0 when
 * it is cut short. Every lead byte at its boundaries, random trees, and
 * mutations: a length it gives is always exactly one object by the
 * reference walk, and 0 only when no prefix is one. */
START_TEST(test_mp_next_object_length)
{
	static const uint64_t lens[] = {0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536};
	size_t cap = 3 * 70000 + 64;
	uint8_t *obj = malloc(cap), *m = malloc(cap);
	uint64_t rs = 0x5eed;
	unsigned b, li;
	int t, k;

	ck_assert_ptr_nonnull(obj);
	ck_assert_ptr_nonnull(m);
	for (b = 0; b < 256; b++) {
		for (li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
			size_t n = make_obj(obj, cap - 16, b, lens[li]);
			if (!n)
				continue;
			if (b == 0xc1) {
				ck_assert_uint_eq(seg_mp_next(obj, n), 0);
				continue;
			}
			ck_assert_uint_eq(ref_validate(obj, n), 0);
			obj[n] = 0xc1; /* whatever follows is not looked at */
			ck_assert_uint_eq(seg_mp_next(obj, n + 1), n);
			ck_assert_uint_eq(seg_mp_next(obj, n), n);
			ck_assert_uint_eq(seg_mp_next(obj, n - 1), 0);
		}
	}
	for (t = 0; t < 3000; t++) {
		size_t n = gen(&rs, obj, 700, 1 + t % 9), r;
		ck_assert_uint_eq(seg_mp_next(obj, n), n);
		for (k = 0; k < 8; k++) {
			size_t at = tu_rand_below(&rs, n), mn = n, j;
			memcpy(m, obj, n);
			if (k & 1)
				m[at] = (uint8_t)tu_rand(&rs);
			else
				mn = at;
			r = seg_mp_next(m, mn);
			if (r) {
				ck_assert_uint_le(r, mn);
				ck_assert_uint_eq(ref_validate(m, r), 0);
			} else {
				for (j = 1; j <= mn; j++)
					ck_assert_uint_ne(ref_validate(m, j), 0);
			}
		}
	}
	free(obj);
	free(m);
}
END_TEST

static Suite *msgpack_suite(void)
{
	Suite *s = suite_create("msgpack");
	TCase *tc = tcase_create("validator");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_mp_every_lead_byte_at_its_boundaries);
	tcase_add_test(tc, test_mp_nesting_limit);
	tcase_add_test(tc, test_mp_records_across_walk_sizes);
	tcase_add_test(tc, test_mp_random_trees_and_mutations);
	tcase_add_test(tc, test_frame_secret_checksum_matches_seed);
	tcase_add_test(tc, test_mp_writer_matches_msgpack_c);
	tcase_add_test(tc, test_mp_next_object_length);
	suite_add_tcase(s, tc);
	return s;
}

TU_CHECK_MAIN(msgpack_suite)
