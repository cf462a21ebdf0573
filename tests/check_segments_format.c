/*
 * check_segments_format.c - the byte-level format (segments/FORMAT.md):
 * the frame codec (round trips from the smallest object to the largest
 * payload, truncation, every single bit flip detected, the salt, a zero
 * header as the end) and the segment header codec (round trips, all-zero
 * as empty, newer versions and bad magic refused, corruption never
 * silent), each layout checked against FORMAT.md.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "seg_format.h"
#include "test_main.h"
#include "test_segments.h"
#include "test_util.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

/* A frame (header + payload) in a fresh buffer with `extra` zero bytes
 * after it. */
static uint8_t *mk_frame(uint64_t salt, uint32_t delta, int32_t tsd, const void *p, uint32_t len,
			 size_t extra)
{
	uint8_t *buf = calloc(1, SEG_FRAME_HEADER + (size_t)len + extra);
	ck_assert_ptr_nonnull(buf);
	seg_frame_encode(buf, salt, delta, tsd, p, len);
	memcpy(buf + SEG_FRAME_HEADER, p, len);
	return buf;
}

static void check_frame_roundtrip(const seg_header *h, uint32_t delta, int32_t tsd, const void *p,
				  uint32_t len)
{
	uint8_t *buf = mk_frame(h->salt, delta, tsd, p, len, 0);
	seg_frame f;
	memset(&f, 0, sizeof f);
	int rc = seg_frame_check(buf, SEG_FRAME_HEADER + (size_t)len, h, NULL, &f);
	ck_assert_msg(rc == SEG_OK, "seg_frame_check(len %u) = %d", len, rc);
	ck_assert_uint_eq(f.seq, h->base_seq + delta);
	ck_assert_int_eq(f.ts_ms, h->base_ts_ms + tsd);
	ck_assert_uint_eq(f.len, len);
	ck_assert_uint_eq(f.seq_delta, delta);
	ck_assert_ptr_eq(f.data, buf + SEG_FRAME_HEADER);
	ck_assert(!memcmp(f.data, p, len));
	/* With the segment's secret derived once (the scanner's way) the
	 * check accepts the same frame and rejects it with a byte flipped. */
	{
		uint8_t secret[SEG_SECRET_SIZE];
		seg_frame g;
		seg_frame_secret(h->salt, secret);
		ck_assert_int_eq(seg_frame_check(buf, SEG_FRAME_HEADER + (size_t)len, h, secret,
						 &g),
				 SEG_OK);
		ck_assert_uint_eq(g.seq, f.seq);
		buf[SEG_FRAME_HEADER + len - 1] ^= 0x20;
		ck_assert_int_eq(seg_frame_check(buf, SEG_FRAME_HEADER + (size_t)len, h, secret,
						 &g),
				 SEG_BAD);
		ck_assert_int_eq(seg_frame_check(buf, SEG_FRAME_HEADER + (size_t)len, h, NULL, &g),
				 SEG_BAD);
		buf[SEG_FRAME_HEADER + len - 1] ^= 0x20;
	}
	/* More bytes available than the frame needs changes nothing. */
	uint8_t *big = mk_frame(h->salt, delta, tsd, p, len, 100);
	memset(big + SEG_FRAME_HEADER + len, 0xee, 100);
	rc = seg_frame_check(big, SEG_FRAME_HEADER + (size_t)len + 100, h, NULL, &f);
	ck_assert_int_eq(rc, SEG_OK);
	ck_assert_uint_eq(f.len, len);
	free(big);
	free(buf);
}

START_TEST(test_frame_roundtrip_smallest_objects)
{
	static const uint8_t objs[][1] = {{0xc0}, {0x80}, {0x90}, {0xa0}, {0x00}, {0xff}, {0xc3}};
	seg_header h = mk_hdr(1, 1715678493000, 0x0123456789abcdefull);
	for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++) {
		check_frame_roundtrip(&h, 0, 0, objs[i], 1);
		check_frame_roundtrip(&h, (uint32_t)i + 1, (int32_t)i * 7, objs[i], 1);
		/* A clock that went back: negative ts delta. */
		check_frame_roundtrip(&h, 3, -1000, objs[i], 1);
		check_frame_roundtrip(&h, SEG_MAX_DELTA, INT32_MIN, objs[i], 1);
		check_frame_roundtrip(&h, SEG_MAX_DELTA - 1, INT32_MAX, objs[i], 1);
	}
	/* Salt 0 and a large base seq. */
	seg_header h0 = mk_hdr(UINT64_C(1) << 40, 0, 0);
	check_frame_roundtrip(&h0, 5, 5, objs[0], 1);
}
END_TEST

START_TEST(test_frame_roundtrip_prediction)
{
	seg_header h = mk_hdr(4096, 1715678493000, 0xfeedfacecafebeefull);
	for (uint64_t i = 0; i < 50; i++) {
		tu_buf p = tu_prediction(i, 7);
		ck_assert_int_gt(p.len, 300);
		ck_assert_uint_eq(seg_mp_validate(p.data, p.len), 0);
		check_frame_roundtrip(&h, (uint32_t)i, (int32_t)(i * 33), p.data, (uint32_t)p.len);
		tu_buf_free(&p);
	}
}
END_TEST

START_TEST(test_frame_roundtrip_max_payload)
{
	seg_header h = mk_hdr(77, 1715678493000, 0x5555aaaa5555aaaaull);
	uint8_t *p = mk_bin32(SEG_MAX_PAYLOAD, 1);
	ck_assert_uint_eq(seg_mp_validate(p, SEG_MAX_PAYLOAD), 0);
	check_frame_roundtrip(&h, 9, 9, p, SEG_MAX_PAYLOAD);

	/* One byte short of the claimed length: torn. */
	uint8_t *buf = mk_frame(h.salt, 9, 9, p, SEG_MAX_PAYLOAD, 0);
	seg_frame f;
	int rc = seg_frame_check(buf, SEG_FRAME_HEADER + SEG_MAX_PAYLOAD - 1, &h, NULL, &f);
	ck_assert_int_eq(rc, SEG_SHORT);
	free(buf);
	free(p);

	/* One byte over the maximum is an invalid length, even when that
	 * many bytes are there and the checksum matches. */
	uint8_t *q = mk_bin32(SEG_MAX_PAYLOAD + 1, 2);
	buf = mk_frame(h.salt, 9, 9, q, SEG_MAX_PAYLOAD + 1, 0);
	rc = seg_frame_check(buf, SEG_FRAME_HEADER + SEG_MAX_PAYLOAD + 1, &h, NULL, &f);
	ck_assert_int_eq(rc, SEG_BAD);
	free(buf);
	free(q);
}
END_TEST

START_TEST(test_frame_truncated_is_short)
{
	seg_header h = mk_hdr(1, 1000, 42);
	tu_buf p = tu_prediction(3, 3);
	uint8_t *buf = mk_frame(h.salt, 1, 1, p.data, (uint32_t)p.len, 0);
	seg_frame f;
	/* Header complete, payload cut anywhere. */
	for (size_t avail = SEG_FRAME_HEADER; avail < SEG_FRAME_HEADER + p.len; avail++) {
		int rc = seg_frame_check(buf, avail, &h, NULL, &f);
		ck_assert_msg(rc == SEG_SHORT, "avail %zu: %d, expected SEG_SHORT", avail, rc);
	}
	/* Header itself cut: not a frame, not the clean end. */
	for (size_t avail = 1; avail < SEG_FRAME_HEADER; avail++) {
		if (all_zero(buf, avail))
			continue;
		int rc = seg_frame_check(buf, avail, &h, NULL, &f);
		ck_assert_msg(rc == SEG_SHORT || rc == SEG_BAD, "avail %zu: %d", avail, rc);
	}
	free(buf);
	tu_buf_free(&p);
}
END_TEST

START_TEST(test_frame_every_bit_flip_detected)
{
	seg_header h = mk_hdr(1000, 1715678493000, 0x1122334455667788ull);
	tu_buf p = tu_prediction(11, 5);
	size_t total = SEG_FRAME_HEADER + p.len;
	uint8_t *orig = mk_frame(h.salt, 17, 1234, p.data, (uint32_t)p.len, 0);
	uint8_t *buf = malloc(total);
	ck_assert_ptr_nonnull(buf);
	for (size_t bit = 0; bit < total * 8; bit++) {
		memcpy(buf, orig, total);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		seg_frame f;
		int rc = seg_frame_check(buf, total, &h, NULL, &f);
		ck_assert_msg(rc == SEG_BAD || rc == SEG_SHORT,
			      "bit %zu (byte %zu) flipped: seg_frame_check = %d", bit, bit / 8, rc);
	}
	free(buf);
	free(orig);
	tu_buf_free(&p);
}
END_TEST

START_TEST(test_frame_wrong_salt_rejected)
{
	/* A frame left over from another segment (another salt) must not
	 * pass, even though its bytes are intact. */
	seg_header h = mk_hdr(1, 1000, 0xaaaaaaaaaaaaaaaaull);
	tu_buf p = tu_prediction(0, 1);
	uint8_t *buf = mk_frame(h.salt ^ 1, 0, 0, p.data, (uint32_t)p.len, 0);
	seg_frame f;
	ck_assert_int_eq(seg_frame_check(buf, SEG_FRAME_HEADER + p.len, &h, NULL, &f), SEG_BAD);
	free(buf);
	tu_buf_free(&p);
}
END_TEST

START_TEST(test_frame_zero_header_is_end)
{
	seg_header h = mk_hdr(1, 1000, 99);
	uint8_t zeros[SEG_FRAME_HEADER + 64];
	memset(zeros, 0, sizeof zeros);
	seg_frame f;
	ck_assert_int_eq(seg_frame_check(zeros, sizeof zeros, &h, NULL, &f), SEG_END);
	ck_assert_int_eq(seg_frame_check(zeros, SEG_FRAME_HEADER, &h, NULL, &f), SEG_END);
}
END_TEST

START_TEST(test_frame_checksum_function_matches_encoder)
{
	/* seg_frame_checksum() is what the encoder stores: some 4-byte
	 * little-endian field of the header equals the checksum of the
	 * payload and the other 12 header bytes. */
	tu_buf p = tu_prediction(1, 1);
	uint64_t salt = 0x0f0e0d0c0b0a0908ull;
	uint8_t hdr[SEG_FRAME_HEADER];
	seg_frame_encode(hdr, salt, 5, 6, p.data, (uint32_t)p.len);
	int found = 0;
	for (int at = 0; at + 4 <= (int)SEG_FRAME_HEADER; at += 4) {
		uint8_t rest[12];
		memcpy(rest, hdr, (size_t)at);
		memcpy(rest + at, hdr + at + 4, SEG_FRAME_HEADER - (size_t)at - 4);
		if (seg_get32(hdr + at) == seg_frame_checksum(salt, rest, p.data, (uint32_t)p.len))
			found++;
	}
	ck_assert_int_eq(found, 1);
	tu_buf_free(&p);
}
END_TEST

static void assert_hdr_eq(const seg_header *a, const seg_header *b)
{
	ck_assert_uint_eq(a->version, b->version);
	ck_assert_uint_eq(a->flags, b->flags);
	ck_assert_uint_eq(a->base_seq, b->base_seq);
	ck_assert_int_eq(a->base_ts_ms, b->base_ts_ms);
	ck_assert_uint_eq(a->salt, b->salt);
}

START_TEST(test_header_roundtrip)
{
	uint64_t st = 12345;
	for (int i = 0; i < 200; i++) {
		/* Any value in the ranges a header may hold (seg_format.h; the
		 * ranges themselves: check_repair's test_header_ranges_checked). */
		seg_header h =
			mk_hdr(1 + tu_rand(&st) % (SEG_SEQ_LIMIT - 1),
			       (int64_t)(tu_rand(&st) % (2 * (uint64_t)SEG_TS_LIMIT_MS + 1)) -
				       SEG_TS_LIMIT_MS,
			       tu_rand(&st));
		if (i == 0)
			h = mk_hdr(1, 0, 0);
		if (i == 1)
			h = mk_hdr(SEG_SEQ_LIMIT - 1, -SEG_TS_LIMIT_MS, UINT64_MAX);
		if (i == 2)
			h = mk_hdr(SEG_SEQ_LIMIT - 1, SEG_TS_LIMIT_MS, 0);
		uint8_t out[SEG_HEADER_SIZE];
		memset(out, 0xcc, sizeof out);
		seg_header_encode(&h, out);
		ck_assert(!memcmp(out, SEG_MAGIC, SEG_MAGIC_LEN));
		seg_header d;
		memset(&d, 0xee, sizeof d);
		ck_assert_int_eq(seg_header_decode(out, &d), SEG_OK);
		assert_hdr_eq(&d, &h);
	}
}
END_TEST

START_TEST(test_header_all_zero_is_empty)
{
	uint8_t z[SEG_HEADER_SIZE];
	memset(z, 0, sizeof z);
	seg_header d;
	ck_assert_int_eq(seg_header_decode(z, &d), SEG_EMPTY);
}
END_TEST

START_TEST(test_header_newer_version)
{
	seg_header h = mk_hdr(1, 1715678493000, 77);
	h.version = SEG_FORMAT_VERSION + 1;
	uint8_t out[SEG_HEADER_SIZE];
	seg_header_encode(&h, out);
	seg_header d;
	ck_assert_int_eq(seg_header_decode(out, &d), SEG_NEWER);
	h.version = 0xffffffffu;
	seg_header_encode(&h, out);
	ck_assert_int_eq(seg_header_decode(out, &d), SEG_NEWER);
}
END_TEST

START_TEST(test_header_bad_magic)
{
	seg_header h = mk_hdr(1, 1715678493000, 77);
	uint8_t out[SEG_HEADER_SIZE];
	for (int i = 0; i < SEG_MAGIC_LEN; i++) {
		seg_header_encode(&h, out);
		out[i] ^= 0x20;
		seg_header d;
		ck_assert_msg(seg_header_decode(out, &d) == SEG_BAD, "magic byte %d changed", i);
	}
}
END_TEST

START_TEST(test_header_corruption_never_silent)
{
	/* Any single changed byte either fails the decode or (a byte the
	 * checksum need not cover) leaves every decoded field as written. */
	seg_header h = mk_hdr(0x0102030405060708ull, 1715678493000, 0x1111222233334444ull);
	uint8_t orig[SEG_HEADER_SIZE], out[SEG_HEADER_SIZE];
	seg_header_encode(&h, orig);
	for (int i = 0; i < (int)SEG_HEADER_SIZE; i++) {
		for (int x = 1; x < 256; x <<= 1) {
			memcpy(out, orig, sizeof out);
			out[i] ^= (uint8_t)x;
			seg_header d;
			memset(&d, 0, sizeof d);
			int rc = seg_header_decode(out, &d);
			if (rc == SEG_OK) {
				assert_hdr_eq(&d, &h);
			} else {
				ck_assert_msg(rc == SEG_BAD || rc == SEG_NEWER,
					      "byte %d ^ %#x: decode = %d", i, x, rc);
			}
		}
	}
}
END_TEST

/* The byte layouts FORMAT.md publishes (third-party readers rely on them). */
START_TEST(test_header_layout_matches_format_md)
{
	seg_header h = mk_hdr(0x0102030405060708ull, -5, 0x1122334455667788ull);
	uint8_t out[SEG_HEADER_SIZE];
	memset(out, 0xcc, sizeof out);
	seg_header_encode(&h, out);
	static const uint8_t magic[8] = {0x45, 0x44, 0x47, 0x45, 0x4c, 0x4f, 0x47, 0x1a};
	ck_assert(!memcmp(out, magic, 8));
	ck_assert_uint_eq(seg_get32(out + 8), SEG_VERSION_FRESH);
	ck_assert_uint_eq(seg_get32(out + 12), 0);
	ck_assert_uint_eq(seg_get64(out + 16), h.base_seq);
	ck_assert_int_eq((int64_t)seg_get64(out + 24), -5);
	ck_assert_uint_eq(seg_get64(out + 32), h.salt);
	ck_assert(all_zero(out + 40, 20));
	ck_assert_uint_eq(seg_get32(out + 60), (uint32_t)XXH3_64bits(out, 60));
}
END_TEST

START_TEST(test_frame_layout_matches_format_md)
{
	uint64_t salt = 0x0f0e0d0c0b0a0908ull;
	for (uint64_t i = 0; i < 20; i++) {
		tu_buf p = tu_prediction(i, 30);
		uint8_t hdr[SEG_FRAME_HEADER];
		seg_frame_encode(hdr, salt, (uint32_t)i * 3, -(int32_t)i, p.data, (uint32_t)p.len);
		ck_assert_uint_eq(seg_get32(hdr + 4), p.len);
		ck_assert_uint_eq(seg_get32(hdr + 8), (uint32_t)i * 3);
		ck_assert_int_eq((int32_t)seg_get32(hdr + 12), -(int32_t)i);
		uint64_t ph = XXH3_64bits_withSeed(p.data, p.len, salt);
		uint32_t c = (uint32_t)XXH3_64bits_withSeed(hdr + 4, 12, ph);
		ck_assert_uint_eq(seg_get32(hdr), c ? c : 1);
		ck_assert_uint_eq(seg_frame_checksum(salt, hdr + 4, p.data, (uint32_t)p.len), c);
		tu_buf_free(&p);
	}
}
END_TEST

static Suite *format_suite(void)
{
	Suite *s = segments_suite_create("segments_format");
	TCase *tc;

	tc = tcase_create("format");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_frame_roundtrip_smallest_objects);
	tcase_add_test(tc, test_frame_roundtrip_prediction);
	tcase_add_test(tc, test_frame_roundtrip_max_payload);
	tcase_add_test(tc, test_frame_truncated_is_short);
	tcase_add_test(tc, test_frame_every_bit_flip_detected);
	tcase_add_test(tc, test_frame_wrong_salt_rejected);
	tcase_add_test(tc, test_frame_zero_header_is_end);
	tcase_add_test(tc, test_frame_checksum_function_matches_encoder);
	tcase_add_test(tc, test_header_roundtrip);
	tcase_add_test(tc, test_header_all_zero_is_empty);
	tcase_add_test(tc, test_header_newer_version);
	tcase_add_test(tc, test_header_bad_magic);
	tcase_add_test(tc, test_header_corruption_never_silent);
	tcase_add_test(tc, test_header_layout_matches_format_md);
	tcase_add_test(tc, test_frame_layout_matches_format_md);
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	suite_add_tcase(s, tc);

	return s;
}

TU_CHECK_MAIN(format_suite)
