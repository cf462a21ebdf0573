/*
 * check_segments_msgpack.c - the msgpack validator every record passes
 * (seg_mp_validate): every type accepted, every truncation, concatenated
 * and trailing bytes, the reserved 0xc1, the depth limit and huge lengths
 * refused, the same answer as msgpack-c; and doubles written as JSON by
 * seg_mp_to_json reading back as the same double.
 */
#include <check.h>
#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "seg_format.h"
#include "seg_json.h"
#include "test_main.h"
#include "test_segments.h"
#include "test_util.h"

/* ------------------------------------------------------------------------
 * msgpack validation
 */

typedef struct mp_obj {
	const char *what;
	uint8_t *data;
	size_t len;
} mp_obj;

static mp_obj mpo(const char *what, const void *p, size_t len)
{
	mp_obj o = {what, malloc(len ? len : 1), len};
	ck_assert_ptr_nonnull(o.data);
	memcpy(o.data, p, len);
	return o;
}

#define MPO(what, ...)                                     \
	do {                                               \
		static const uint8_t b_[] = {__VA_ARGS__}; \
		objs[n++] = mpo(what, b_, sizeof b_);      \
	} while (0)

/* A packed object from msgpack-c. */
static mp_obj mpo_sbuf(const char *what, msgpack_sbuffer *sb)
{
	mp_obj o = mpo(what, sb->data, sb->size);
	msgpack_sbuffer_clear(sb);
	return o;
}

/* Hand-built and msgpack-c-built objects, one or more of every type. */
static int valid_objects(mp_obj *objs)
{
	int n = 0;
	MPO("positive fixint 0", 0x00);
	MPO("positive fixint 127", 0x7f);
	MPO("negative fixint -32", 0xe0);
	MPO("negative fixint -1", 0xff);
	MPO("nil", 0xc0);
	MPO("false", 0xc2);
	MPO("true", 0xc3);
	MPO("uint8", 0xcc, 0xff);
	MPO("uint16", 0xcd, 0x12, 0x34);
	MPO("uint32", 0xce, 1, 2, 3, 4);
	MPO("uint64", 0xcf, 1, 2, 3, 4, 5, 6, 7, 8);
	MPO("int8", 0xd0, 0x80);
	MPO("int16", 0xd1, 0x80, 0x00);
	MPO("int32", 0xd2, 0x80, 0, 0, 0);
	MPO("int64", 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0);
	MPO("float32", 0xca, 0x3f, 0x80, 0, 0);
	MPO("float64", 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0);
	MPO("fixstr empty", 0xa0);
	MPO("fixstr", 0xa3, 'a', 'b', 'c');
	MPO("str8 empty", 0xd9, 0x00);
	MPO("str8", 0xd9, 3, 'a', 'b', 'c');
	MPO("str16", 0xda, 0, 3, 'a', 'b', 'c');
	MPO("str32", 0xdb, 0, 0, 0, 3, 'a', 'b', 'c');
	MPO("bin8 empty", 0xc4, 0);
	MPO("bin8", 0xc4, 2, 0xc1, 0xff);
	MPO("bin16", 0xc5, 0, 2, 0xc1, 0xff);
	MPO("bin32", 0xc6, 0, 0, 0, 2, 0xc1, 0xff);
	MPO("fixarray empty", 0x90);
	MPO("fixarray", 0x92, 0x01, 0xc0);
	MPO("array16", 0xdc, 0, 2, 0x01, 0xc0);
	MPO("array32", 0xdd, 0, 0, 0, 2, 0x01, 0xc0);
	MPO("array16 empty", 0xdc, 0, 0);
	MPO("fixmap empty", 0x80);
	MPO("fixmap", 0x81, 0xa1, 'k', 0x01);
	MPO("map16", 0xde, 0, 1, 0x01, 0x02);
	MPO("map32", 0xdf, 0, 0, 0, 1, 0x01, 0x02);
	MPO("map32 empty", 0xdf, 0, 0, 0, 0);
	MPO("fixext1", 0xd4, 0x01, 0xaa);
	MPO("fixext2", 0xd5, 0x01, 0xaa, 0xbb);
	MPO("fixext4 timestamp32", 0xd6, 0xff, 0x66, 0x43, 0x2d, 0x1d);
	MPO("fixext8", 0xd7, 0x01, 1, 2, 3, 4, 5, 6, 7, 8);
	MPO("fixext16", 0xd8, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
	MPO("ext8 empty", 0xc7, 0, 0x01);
	MPO("ext8", 0xc7, 2, 0x01, 0xc1, 0xc1);
	MPO("ext16", 0xc8, 0, 2, 0x01, 0xc1, 0xc1);
	MPO("ext32", 0xc9, 0, 0, 0, 2, 0x01, 0xc1, 0xc1);
	MPO("nested {a: [{nil: []}, true]}", 0x81, 0xa1, 'a', 0x92, 0x81, 0xc0, 0x90, 0xc3);
	MPO("map with container keys", 0x82, 0x90, 0x80, 0x81, 0x01, 0x02, 0xc3);

	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	static uint8_t blob[70000];
	for (size_t i = 0; i < sizeof blob; i++)
		blob[i] = (uint8_t)(i * 131 + 7);
	msgpack_pack_float(&pk, 3.25f);
	objs[n++] = mpo_sbuf("packed float", &sb);
	msgpack_pack_double(&pk, -1e300);
	objs[n++] = mpo_sbuf("packed double", &sb);
	msgpack_pack_int64(&pk, INT64_MIN);
	objs[n++] = mpo_sbuf("packed INT64_MIN", &sb);
	msgpack_pack_uint64(&pk, UINT64_MAX);
	objs[n++] = mpo_sbuf("packed UINT64_MAX", &sb);
	msgpack_pack_str_with_body(&pk, "0123456789012345678901234567890123456789", 40);
	objs[n++] = mpo_sbuf("packed str 40", &sb);
	memset(blob, 'x', 300);
	msgpack_pack_str_with_body(&pk, blob, 300);
	objs[n++] = mpo_sbuf("packed str 300", &sb);
	msgpack_pack_str_with_body(&pk, blob, 70000);
	objs[n++] = mpo_sbuf("packed str 70000", &sb);
	msgpack_pack_bin_with_body(&pk, blob, 300);
	objs[n++] = mpo_sbuf("packed bin 300", &sb);
	msgpack_pack_bin_with_body(&pk, blob, 70000);
	objs[n++] = mpo_sbuf("packed bin 70000", &sb);
	msgpack_pack_ext_with_body(&pk, blob, 100, 5);
	objs[n++] = mpo_sbuf("packed ext 100", &sb);
	msgpack_pack_ext_with_body(&pk, blob, 70000, -7);
	objs[n++] = mpo_sbuf("packed ext 70000", &sb);
	msgpack_pack_array(&pk, 20);
	for (int i = 0; i < 20; i++)
		msgpack_pack_int(&pk, i * 1000);
	objs[n++] = mpo_sbuf("packed array16 of ints", &sb);
	msgpack_pack_array(&pk, 70000);
	for (int i = 0; i < 70000; i++)
		msgpack_pack_nil(&pk);
	objs[n++] = mpo_sbuf("packed array32 of nil", &sb);
	msgpack_pack_map(&pk, 20);
	for (int i = 0; i < 20; i++) {
		msgpack_pack_int(&pk, i);
		msgpack_pack_double(&pk, i * 0.5);
	}
	objs[n++] = mpo_sbuf("packed map16", &sb);
	msgpack_pack_map(&pk, 70000);
	for (int i = 0; i < 70000; i++) {
		msgpack_pack_int(&pk, i);
		msgpack_pack_true(&pk);
	}
	objs[n++] = mpo_sbuf("packed map32", &sb);
	msgpack_sbuffer_destroy(&sb);

	for (uint64_t i = 0; i < 4; i++) {
		tu_buf p = tu_prediction(i, 99);
		objs[n++] = mpo("prediction", p.data, p.len);
		tu_buf_free(&p);
	}
	return n;
}

static void free_objects(mp_obj *objs, int n)
{
	for (int i = 0; i < n; i++)
		free(objs[i].data);
}

START_TEST(test_mp_accepts_every_type)
{
	mp_obj objs[128];
	int n = valid_objects(objs);
	for (int i = 0; i < n; i++) {
		size_t rc = seg_mp_validate(objs[i].data, objs[i].len);
		ck_assert_msg(rc == 0, "%s (%zu bytes) rejected at %zu", objs[i].what, objs[i].len,
			      rc);
	}
	free_objects(objs, n);
}
END_TEST

START_TEST(test_mp_rejects_empty)
{
	uint8_t b = 0xc0;
	ck_assert_uint_eq(seg_mp_validate(&b, 0), 1);
}
END_TEST

START_TEST(test_mp_rejects_every_truncation)
{
	mp_obj objs[128];
	int n = valid_objects(objs);
	uint64_t st = 4;
	for (int i = 0; i < n; i++) {
		size_t len = objs[i].len;
		/* Short objects: every proper prefix. Long ones: the first and
		 * last 64 prefixes and 64 random ones. */
		for (size_t k = 0; k < len; k++) {
			size_t cut = k;
			if (len > 2048) {
				if (k >= 192)
					break;
				cut = k < 64  ? k :
				      k < 128 ? len - 1 - (k - 64) :
						tu_rand_below(&st, len);
			}
			/* Copy so that reading past the cut would be caught by
			 * sanitizers. */
			uint8_t *c = malloc(cut ? cut : 1);
			ck_assert_ptr_nonnull(c);
			memcpy(c, objs[i].data, cut);
			size_t rc = seg_mp_validate(c, cut);
			free(c);
			ck_assert_msg(rc != 0, "%s cut to %zu of %zu bytes accepted", objs[i].what,
				      cut, len);
			ck_assert_msg(rc <= cut + 1, "%s cut to %zu: offset+1 %zu past the end",
				      objs[i].what, cut, rc);
		}
	}
	free_objects(objs, n);
}
END_TEST

START_TEST(test_mp_rejects_concatenated_and_trailing)
{
	mp_obj objs[128];
	int n = valid_objects(objs);
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < 3; j++) {
			/* object + another object, or + one stray byte */
			const mp_obj *tail = &objs[j];
			size_t len = objs[i].len + tail->len;
			uint8_t *c = malloc(len);
			ck_assert_ptr_nonnull(c);
			memcpy(c, objs[i].data, objs[i].len);
			memcpy(c + objs[i].len, tail->data, tail->len);
			size_t rc = seg_mp_validate(c, len);
			ck_assert_msg(rc >= objs[i].len + 1 && rc <= len + 1,
				      "%s + %s: validate = %zu (first trailing byte at %zu)",
				      objs[i].what, tail->what, rc, objs[i].len);
			free(c);
		}
	}
	uint8_t two_nils[] = {0xc0, 0xc0};
	ck_assert_uint_eq(seg_mp_validate(two_nils, 2), 2);
	free_objects(objs, n);
}
END_TEST

START_TEST(test_mp_rejects_reserved_c1)
{
	uint8_t a[] = {0xc1};
	ck_assert_uint_eq(seg_mp_validate(a, sizeof a), 1);
	uint8_t b[] = {0x92, 0x01, 0xc1};
	ck_assert_uint_eq(seg_mp_validate(b, sizeof b), 3);
	uint8_t c[] = {0x81, 0xc1, 0x01};
	ck_assert_uint_eq(seg_mp_validate(c, sizeof c), 2);
	uint8_t d[] = {0x81, 0x01, 0xc1};
	ck_assert_uint_eq(seg_mp_validate(d, sizeof d), 3);
}
END_TEST

static size_t nested(uint8_t *buf, size_t depth, uint8_t open)
{
	for (size_t i = 0; i < depth; i++)
		buf[i] = open;
	buf[depth] = 0xc0;
	return depth + 1;
}

START_TEST(test_mp_depth_limit)
{
	static uint8_t buf[200002];
	size_t len = nested(buf, 255, 0x91);
	ck_assert_uint_eq(seg_mp_validate(buf, len), 0);
	len = nested(buf, 257, 0x91);
	size_t rc = seg_mp_validate(buf, len);
	ck_assert_uint_ne(rc, 0);
	ck_assert_uint_le(rc, len + 1);
	/* Far deeper: no stack overflow, just a rejection. */
	len = nested(buf, 200000, 0x91);
	rc = seg_mp_validate(buf, len);
	ck_assert_uint_ne(rc, 0);
	ck_assert_uint_le(rc, len + 1);
	/* Maps nest through their values: {nil: {nil: ... nil}}. */
	size_t k = 0;
	for (int i = 0; i < 300; i++) {
		buf[k++] = 0x81;
		buf[k++] = 0xc0;
	}
	buf[k++] = 0xc0;
	ck_assert_uint_ne(seg_mp_validate(buf, k), 0);
	/* And through their keys. */
	len = nested(buf, 300, 0x81);
	ck_assert_uint_ne(seg_mp_validate(buf, len), 0);
}
END_TEST

START_TEST(test_mp_rejects_huge_lengths)
{
	static const struct {
		uint8_t b[8];
		size_t len;
	} cases[] = {
		{{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, 6},        /* str32 4 GiB */
		{{0xda, 0xff, 0xff, 'a'}, 4},                    /* str16 */
		{{0xd9, 0xff, 'a'}, 3},                          /* str8 */
		{{0xc6, 0xff, 0xff, 0xff, 0xff}, 5},             /* bin32 */
		{{0xc6, 0x7f, 0xff, 0xff, 0xff, 0}, 6},          /* bin32 2 GiB */
		{{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}, 6},       /* ext32 */
		{{0xc8, 0xff, 0xff, 0x01, 0x00}, 5},             /* ext16 */
		{{0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0}, 6},       /* array32 */
		{{0xdc, 0xff, 0xff, 0xc0, 0xc0}, 5},             /* array16 */
		{{0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0}, 7}, /* map32 */
		{{0xde, 0xff, 0xff, 0xc0}, 4},                   /* map16 */
		{{0x9f, 0xc0}, 2},                               /* fixarray 15 */
		{{0x8f, 0xc0, 0xc0}, 3},                         /* fixmap 15 */
		{{0xbf, 'a'}, 2},                                /* fixstr 31 */
		{{0xcf, 1, 2, 3}, 4},                            /* uint64 short */
		{{0xd8, 0x01, 1, 2}, 4},                         /* fixext16 short */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t rc = seg_mp_validate(cases[i].b, cases[i].len);
		ck_assert_msg(rc != 0 && rc <= cases[i].len + 1, "case %zu: validate = %zu", i, rc);
	}
	/* array32 claiming 4 G elements, with a megabyte of them present:
	 * rejected, and in reasonable time. */
	size_t len = MIB;
	uint8_t *big = malloc(len);
	ck_assert_ptr_nonnull(big);
	memset(big, 0xc0, len);
	big[0] = 0xdd;
	big[1] = big[2] = big[3] = big[4] = 0xff;
	ck_assert_uint_ne(seg_mp_validate(big, len), 0);
	free(big);
}
END_TEST

/* Compare with msgpack-c's parser on one buffer, where both must agree. */
static void mp_compare(const uint8_t *p, size_t len, const char *what, uint64_t iter)
{
	/* msgpack-c allocates a declared array16/32 or map16/32 up front (up
	 * to 4 G elements): under sanitizers that is slow or fatal. Those
	 * types have their own tests above; the oracle skips them. */
	for (size_t i = 0; i < len; i++)
		if (p[i] >= 0xdc && p[i] <= 0xdf)
			return;
	size_t rc = seg_mp_validate(p, len);
	ck_assert_msg(rc <= len + 1, "%s #%" PRIu64 ": validate = %zu > len + 1", what, iter, rc);
	msgpack_unpacked res;
	msgpack_unpacked_init(&res);
	size_t off = 0;
	msgpack_unpack_return ur = msgpack_unpack_next(&res, (const char *)p, len, &off);
	msgpack_unpacked_destroy(&res);
	switch (ur) {
	case MSGPACK_UNPACK_SUCCESS:
		if (off < len)
			ck_assert_msg(rc >= off + 1,
				      "%s #%" PRIu64 ": trailing bytes from %zu, validate %zu",
				      what, iter, off, rc);
		else
			ck_assert_msg(rc == 0,
				      "%s #%" PRIu64
				      ": msgpack-c parses all %zu bytes, validate %zu",
				      what, iter, len, rc);
		break;
	case MSGPACK_UNPACK_CONTINUE:
	case MSGPACK_UNPACK_PARSE_ERROR:
		ck_assert_msg(rc != 0, "%s #%" PRIu64 ": msgpack-c fails (%d), validate accepts",
			      what, iter, (int)ur);
		break;
	default:
		/* NOMEM (huge counts, depth > msgpack-c's stack): no opinion. */
		break;
	}
}

START_TEST(test_mp_agrees_with_msgpack_c)
{
	uint64_t st = 2024;
	uint8_t buf[600];
	/* Random short buffers. */
	for (uint64_t it = 0; it < 200000; it++) {
		size_t len = (size_t)tu_rand_below(&st, 24);
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)tu_rand(&st);
		mp_compare(buf, len, "random", it);
	}
	/* Predictions with a few random bytes changed. */
	for (uint64_t it = 0; it < 20000; it++) {
		tu_buf p = tu_prediction(it % 16, 1);
		ck_assert_uint_le(p.len, sizeof buf);
		memcpy(buf, p.data, p.len);
		int k = 1 + (int)tu_rand_below(&st, 3);
		for (int j = 0; j < k; j++)
			buf[tu_rand_below(&st, p.len)] = (uint8_t)tu_rand(&st);
		mp_compare(buf, p.len, "mutated prediction", it);
		tu_buf_free(&p);
	}
}
END_TEST

/* ------------------------------------------------------------------------
 * msgpack to JSON: doubles
 */

/* Every double, written as JSON by seg_mp_to_json, must read back as the
 * same double; the fast fixed-notation path and the printf fallback alike.
 * Random bit patterns, short decimals (scores like 0.627) and values
 * spread over 30 orders of magnitude. */
START_TEST(test_json_double_round_trips)
{
	uint64_t s = 88172645463325252ull;
	seg_buf o = {0};
	long i, checked = 0;

	for (i = 0; i < 300000; i++) {
		uint8_t m[9];
		uint64_t u;
		double d, r;
		int k;

		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		if (i % 3 == 0)
			memcpy(&d, &s, 8);
		else if (i % 3 == 1)
			d = (double)(s % 100000) / 1000.0;
		else
			d = (double)(s >> 11) / 9007199254740992.0 * pow(10, (int)(s % 30) - 15);
		if (isnan(d) || isinf(d))
			continue;
		memcpy(&u, &d, 8);
		m[0] = 0xcb;
		for (k = 0; k < 8; k++)
			m[1 + k] = (uint8_t)(u >> (56 - 8 * k));
		o.len = 0;
		ck_assert_int_eq(seg_mp_to_json(m, sizeof m, &o), 0);
		r = strtod(o.p, NULL);
		ck_assert_msg(r == d, "%.17g written as %s", d, o.p);
		ck_assert_msg(strpbrk(o.p, ".eE") != NULL, "%s does not read as a float", o.p);
		checked++;
	}
	/* Short decimals stay short. */
	{
		const double d[] = {0.627, 7.655, 0.5, 100000.0, -0.034, 1e-5};
		const char *want[] = {"0.627", "7.655", "0.5", "100000.0", "-0.034", "0.00001"};
		for (int k = 0; k < 6; k++) {
			uint8_t m[9];
			uint64_t u;
			int j;
			memcpy(&u, &d[k], 8);
			m[0] = 0xcb;
			for (j = 0; j < 8; j++)
				m[1 + j] = (uint8_t)(u >> (56 - 8 * j));
			o.len = 0;
			ck_assert_int_eq(seg_mp_to_json(m, sizeof m, &o), 0);
			ck_assert_str_eq(o.p, want[k]);
		}
	}
	ck_assert_int_gt(checked, 290000);
	seg_buf_free(&o);
}
END_TEST

/* seg_fmt_g17 writes what printf's "%.17g" writes, without printf: random
 * bit patterns (every range), full-precision values over the range it
 * computes itself (1e-7..1e15, both signs), exact ties at the 18th digit
 * (integers plus sixteenths: glibc rounds those to even) and the
 * neighbours of every power of ten in the range. */
static void g17_agrees(double d)
{
	char got[48], want[48];
	size_t n = seg_fmt_g17(got, d);

	snprintf(want, sizeof(want), "%.17g", d);
	ck_assert_msg(strcmp(got, want) == 0 && n == strlen(want), "%a: got %s, want %s", d, got,
		      want);
}

START_TEST(test_json_g17_agrees_with_printf)
{
	uint64_t s = 0x2545f4914f6cdd1dull;
	int i, p;

	for (i = 0; i < 400000; i++) {
		double d;
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		switch (i % 4) {
		case 0:
			memcpy(&d, &s, 8);
			if (isnan(d) || isinf(d))
				continue;
			break;
		case 1:
			d = (double)(s >> 11) / 9007199254740992.0 * pow(10, (int)(s % 23) - 7);
			break;
		case 2:
			d = -(double)(s >> 11) / 9007199254740992.0 * pow(10, (int)(s % 23) - 7);
			break;
		default:
			d = (double)(s >> 24) + (double)(s % 16) / 16.0;
			break;
		}
		g17_agrees(d);
	}
	for (p = -8; p <= 16; p++) {
		double t = pow(10, p);
		g17_agrees(t);
		g17_agrees(nextafter(t, 0));
		g17_agrees(nextafter(t, INFINITY));
		g17_agrees(-t);
	}
	g17_agrees(12345678901234.5625); /* a tie at the 18th digit */
	g17_agrees(0.0);
	g17_agrees(1e-300);
}
END_TEST

/* ------------------------------------------------------------------------
 * msgpack to JSON: strings
 */

/* The escaping rules written the slow, obvious way, one byte at a time:
 * what seg_json_string's word-at-a-time scan must give. */
static void ref_json_string(seg_buf *o, const unsigned char *s, size_t n)
{
	size_t i = 0;

	seg_buf_put(o, "\"", 1);
	while (i < n) {
		unsigned char c = s[i];
		size_t l;
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			seg_buf_put(o, e, 2);
			i++;
		} else if (c == '\n' || c == '\r' || c == '\t') {
			seg_buf_put(o, c == '\n' ? "\\n" : c == '\r' ? "\\r" : "\\t", 2);
			i++;
		} else if (c < 0x20) {
			seg_buf_printf(o, "\\u%04x", c);
			i++;
		} else if (c < 0x80) {
			seg_buf_put(o, &c, 1);
			i++;
		} else if ((l = seg_utf8_len(s + i, n - i)) != 0) {
			seg_buf_put(o, s + i, l);
			i += l;
		} else {
			seg_buf_put(o, "\\ufffd", 6);
			i++;
		}
	}
	seg_buf_put(o, "\"", 1);
}

/* Random strings of 0..80 bytes drawn from plain ASCII, every byte that
 * needs escaping, valid and broken UTF-8, placed at every offset of the
 * 8-byte words the fast scan reads; each appended after text already in
 * the buffer (the output is written in place after the old end). */
START_TEST(test_json_string_agrees_with_bytewise_escaping)
{
	static const char *pieces[] = {"a",
				       "label",
				       "0123456789abcdef",
				       "\"",
				       "\\",
				       "\n",
				       "\r",
				       "\t",
				       "\x01",
				       "\x1f",
				       "\x7f",
				       "é",
				       "€",
				       "😀",
				       "\xc3",
				       "\xe2\x82",
				       "\xed\xa0\x80",
				       "\xf5\x80\x80\x80",
				       "\xc0\xaf",
				       "\xff"};
	uint64_t r = 0x9e3779b97f4a7c15ull;
	seg_buf got = {0}, want = {0};
	int i;

	for (i = 0; i < 200000; i++) {
		unsigned char s[128];
		size_t n = 0, target;
		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		target = r % 81;
		while (n < target) {
			const char *p;
			size_t pl;
			r ^= r << 13;
			r ^= r >> 7;
			r ^= r << 17;
			/* mostly plain text, so the fast path runs long */
			p = (r >> 8) % 4 ? &"abcdefgh"[(r >> 16) % 8] : pieces[(r >> 24) % 20];
			pl = strlen(p);
			if (n + pl > target)
				pl = target - n;
			memcpy(s + n, p, pl);
			n += pl;
		}
		got.len = want.len = 0;
		seg_buf_put(&got, "x", (size_t)(r >> 40) % 2);
		seg_buf_put(&want, "x", (size_t)(r >> 40) % 2);
		seg_json_string(&got, (const char *)s, n);
		ref_json_string(&want, s, n);
		ck_assert(!got.oom && !want.oom);
		ck_assert_uint_eq(got.len, want.len);
		ck_assert_msg(memcmp(got.p, want.p, got.len) == 0 && got.p[got.len] == '\0',
			      "string %d: got %s, want %s", i, got.p, want.p);
	}
	seg_buf_free(&got);
	seg_buf_free(&want);
}
END_TEST

static Suite *msgpack_suite(void)
{
	Suite *s = segments_suite_create("segments_msgpack");
	TCase *tc;

	tc = tcase_create("msgpack");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_mp_accepts_every_type);
	tcase_add_test(tc, test_mp_rejects_empty);
	tcase_add_test(tc, test_mp_rejects_every_truncation);
	tcase_add_test(tc, test_mp_rejects_concatenated_and_trailing);
	tcase_add_test(tc, test_mp_rejects_reserved_c1);
	tcase_add_test(tc, test_mp_depth_limit);
	tcase_add_test(tc, test_mp_rejects_huge_lengths);
	tcase_add_test(tc, test_mp_agrees_with_msgpack_c);
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	suite_add_tcase(s, tc);

	tc = tcase_create("json");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_json_double_round_trips);
	tcase_add_test(tc, test_json_g17_agrees_with_printf);
	tcase_add_test(tc, test_json_string_agrees_with_bytewise_escaping);
	suite_add_tcase(s, tc);

	return s;
}

TU_CHECK_MAIN(msgpack_suite)
