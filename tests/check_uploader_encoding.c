/*
 * check_uploader_encoding.c - what goes on the wire: every format
 * (NDJSON, JSON array, msgpack), gzip on and off, back to the same records;
 * the msgpack -> JSON writer's edge cases (escapes, invalid UTF-8, binary as
 * base64, floats, integers, non-string and nested map keys, depth limits,
 * undecodable records refused); and the engine delivering each format.
 */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <edgelog.h>

#include "seg_writer.h"
#include "test_json.h"
#include "test_main.h"
#include "test_uploader.h"
#include "test_util.h"
#include "tool_sample.h"
#include "upl_internal.h"

/* ------------------------------------------------------------------------
 * Encoding: every format, gzip on and off, back to the same records
 */

typedef struct in_rec {
	uint64_t seq;
	int64_t ts;
	msgpack_sbuffer mp;
} in_rec;

/* Records for the round trip: samples plus shapes the JSON writer must
 * carry exactly (nothing lossy here: see the edge-case tests for those). */
static size_t build_inputs(in_rec *in, size_t cap)
{
	size_t n = 0;
	int k;

	for (k = 0; k < 30 && n < cap; k++, n++) {
		uint8_t buf[SAMPLE_CAP];
		size_t l = tool_sample_msgpack((uint64_t)k, buf, sizeof(buf));
		msgpack_sbuffer_init(&in[n].mp);
		msgpack_sbuffer_write(&in[n].mp, (const char *)buf, l);
	}
	for (k = 0; k < 12 && n < cap; k++, n++) {
		msgpack_packer pk;
		msgpack_sbuffer_init(&in[n].mp);
		msgpack_packer_init(&pk, &in[n].mp, msgpack_sbuffer_write);
		switch (k) {
		case 0:
			msgpack_pack_nil(&pk);
			break;
		case 1:
			msgpack_pack_true(&pk);
			break;
		case 2:
			msgpack_pack_int64(&pk, INT64_MIN);
			break;
		case 3:
			msgpack_pack_str_with_body(&pk, "ctl\x01\x1f\n\t\"q\\b/", 13);
			break;
		case 4:
			msgpack_pack_map(&pk, 0);
			break;
		case 5:
			msgpack_pack_array(&pk, 0);
			break;
		case 6:
			msgpack_pack_map(&pk, 2);
			msgpack_pack_str_with_body(&pk, "a", 1);
			msgpack_pack_array(&pk, 2);
			msgpack_pack_int(&pk, 1);
			msgpack_pack_map(&pk, 1);
			msgpack_pack_str_with_body(&pk, "b", 1);
			msgpack_pack_nil(&pk);
			msgpack_pack_int(&pk, 7); /* non-string key */
			msgpack_pack_str_with_body(&pk, "seven", 5);
			break;
		case 7:
			msgpack_pack_double(&pk, 1.5);
			break;
		case 8:
			msgpack_pack_bin_with_body(&pk, "\x00\x01\xff", 3);
			break;
		case 9:
			msgpack_pack_str_with_body(&pk, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
			break;
		case 10:
			msgpack_pack_uint64(&pk, (uint64_t)INT64_MAX);
			break;
		default:
			msgpack_pack_double(&pk, 0.1);
			break;
		}
	}
	for (k = 0; k < (int)n; k++) {
		in[k].seq = 1000 + (uint64_t)k * (k % 3 == 0 ? 1 : 2);
		in[k].ts = k == 1 ? -5 : k == 2 ? 0 : k == 3 ? INT64_MAX : 1715678493000 + k;
	}
	return n;
}

static void free_inputs(in_rec *in, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		msgpack_sbuffer_destroy(&in[i].mp);
}

START_TEST(test_encode_roundtrip)
{
	static const int formats[] = {EDGELOG_FORMAT_NDJSON, EDGELOG_FORMAT_JSON,
				      EDGELOG_FORMAT_MSGPACK};
	static const char *const ctypes[] = {"application/x-ndjson", "application/json",
					     "application/msgpack"};
	const int format = formats[_i / 2], gz = _i % 2;
	const char *dev = "cam \"7\" \\ \xc3\xbc/x";
	in_rec in[64];
	size_t n = build_inputs(in, 64), i;
	seg_buf body = {0}, z = {0}, plain = {0};
	dec_vec dec = {0};
	char err[256];
	const char *p;
	size_t plen;

	ck_assert_str_eq(upl_content_type(format), ctypes[_i / 2]);
	upl_body_begin(&body, format);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(upl_body_record(&body, format, i == 0, dev, in[i].seq, in[i].ts,
						 in[i].mp.data, in[i].mp.size, NULL),
				 0);
	upl_body_end(&body, format);
	ck_assert(!body.oom);
	p = body.p;
	plen = body.len;
	if (gz) {
		ck_assert_int_eq(upl_gzip(body.p, body.len, &z), 0);
		ck_assert_uint_ge(z.len, 18);
		ck_assert_int_eq((unsigned char)z.p[0], 0x1f);
		ck_assert_int_eq((unsigned char)z.p[1], 0x8b);
		ck_assert_int_eq((unsigned char)z.p[2], 8);
		ck_assert_msg(gunzip(z.p, z.len, &plain, 64u << 20) == 0, "gzip does not inflate");
		ck_assert_uint_eq(plain.len, body.len);
		ck_assert(!memcmp(plain.p, body.p, body.len));
		p = plain.p;
		plen = plain.len;
	}
	ck_assert_msg(decode_body(format, p, plen, &dec, err, sizeof(err)) == 0,
		      "format %d gzip %d: %s", format, gz, err);
	ck_assert_uint_eq(dec.n, n);
	for (i = 0; i < n; i++) {
		msgpack_unpacked u;
		size_t off = 0;
		json_t *j;
		char *want;

		ck_assert_str_eq(dec.v[i].dev, dev);
		ck_assert_uint_eq(dec.v[i].seq, in[i].seq);
		ck_assert_int_eq(dec.v[i].ts, in[i].ts);
		msgpack_unpacked_init(&u);
		ck_assert_int_eq(msgpack_unpack_next(&u, in[i].mp.data, in[i].mp.size, &off),
				 MSGPACK_UNPACK_SUCCESS);
		j = tu_mpo_json(&u.data);
		want = tu_canon(j);
		ck_assert_msg(!strcmp(dec.v[i].data, want),
			      "format %d record %zu: data\n  got  %s\n  want %s", format, i,
			      dec.v[i].data, want);
		free(want);
		json_decref(j);
		msgpack_unpacked_destroy(&u);
		if (format == EDGELOG_FORMAT_MSGPACK)
			/* The prediction travels byte for byte. */
			ck_assert_ptr_nonnull(memmem(p, plen, in[i].mp.data, in[i].mp.size));
	}
	if (format == EDGELOG_FORMAT_NDJSON) {
		size_t lines = 0;
		for (i = 0; i < plen; i++)
			lines += p[i] == '\n';
		ck_assert_uint_eq(lines, n);
	}
	dec_free(&dec);
	/* An empty body is well formed too. */
	upl_body_begin(&body, format);
	upl_body_end(&body, format);
	ck_assert_msg(decode_body(format, body.p ? body.p : "", body.len, &dec, err, sizeof(err)) ==
			      0,
		      "empty body: %s", err);
	ck_assert_uint_eq(dec.n, 0);
	dec_free(&dec);
	free_inputs(in, n);
	seg_buf_free(&body);
	seg_buf_free(&z);
	seg_buf_free(&plain);
}
END_TEST

START_TEST(test_gzip_sizes)
{
	static const size_t sizes[] = {0, 1, 2, 100, 65535, 65536, 65537, 3u << 20};
	uint64_t st = 99;
	size_t s, i;

	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		int kind;
		for (kind = 0; kind < 2; kind++) {
			size_t n = sizes[s];
			unsigned char *in = malloc(n + 1);
			seg_buf z = {0}, back = {0};
			ck_assert_ptr_nonnull(in);
			for (i = 0; i < n; i++)
				in[i] = kind ? (unsigned char)tu_rand(&st) :
					       (unsigned char)"ab{}:,"[i % 6];
			ck_assert_int_eq(upl_gzip(in, n, &z), 0);
			ck_assert_msg(gunzip(z.p, z.len, &back, 64u << 20) == 0,
				      "size %zu kind %d does not inflate", n, kind);
			ck_assert_uint_eq(back.len, n);
			ck_assert(n == 0 || !memcmp(back.p, in, n));
			if (!kind && n > 1000)
				ck_assert_msg(z.len < n / 4, "size %zu compressed to %zu", n,
					      z.len);
			/* Reusing the output buffer replaces its content. */
			ck_assert_int_eq(upl_gzip(in, n, &z), 0);
			ck_assert_int_eq(gunzip(z.p, z.len, &back, 64u << 20), 0);
			ck_assert_uint_eq(back.len, n);
			free(in);
			seg_buf_free(&z);
			seg_buf_free(&back);
		}
	}
}
END_TEST

/* ------------------------------------------------------------------------
 * msgpack -> JSON edge cases: valid JSON (jansson, strict) for anything the
 * engine accepts, through the wire encoder and through seg_mp_to_json.
 */

/* The data member of the NDJSON line upl_body_record makes of mp. Also
 * checks seg_mp_to_json alone gives the same, parseable text. */
static json_t *wire_data(const void *mp, size_t len, size_t jflags, char **text)
{
	seg_buf b = {0}, d = {0};
	json_error_t je;
	json_t *root, *data, *alone;

	ck_assert_msg(seg_mp_validate(mp, len) == 0, "test input is not one msgpack object");
	upl_body_begin(&b, EDGELOG_FORMAT_NDJSON);
	ck_assert_int_eq(upl_body_record(&b, EDGELOG_FORMAT_NDJSON, 1, DEV, 1, 2, mp, len, NULL),
			 0);
	upl_body_end(&b, EDGELOG_FORMAT_NDJSON);
	ck_assert(!b.oom);
	ck_assert_uint_gt(b.len, 0);
	ck_assert_int_eq(b.p[b.len - 1], '\n');
	ck_assert_ptr_eq(memchr(b.p, '\n', b.len), b.p + b.len - 1);
	root = json_loadb(b.p, b.len - 1, JSON_ALLOW_NUL | jflags, &je);
	ck_assert_msg(root != NULL, "invalid JSON (%s at col %d): %.300s", je.text, je.column, b.p);
	data = json_object_get(root, "data");
	ck_assert_ptr_nonnull(data);
	json_incref(data);
	json_decref(root);

	ck_assert_int_eq(seg_mp_to_json(mp, len, &d), 0);
	alone = json_loadb(d.p, d.len, JSON_ALLOW_NUL | JSON_DECODE_ANY | jflags, &je);
	ck_assert_msg(alone != NULL, "seg_mp_to_json: invalid JSON (%s): %.300s", je.text, d.p);
	ck_assert(json_equal(alone, data));
	json_decref(alone);
	if (text)
		*text = strdup(d.p);
	seg_buf_free(&b);
	seg_buf_free(&d);
	return data;
}

/* data_encoding=string: "data" is a JSON string whose content parses back
 * to the same value as the object form, in every format; the envelope
 * does not change. */
START_TEST(test_data_as_json_string)
{
	static const int formats[] = {EDGELOG_FORMAT_NDJSON, EDGELOG_FORMAT_JSON,
				      EDGELOG_FORMAT_MSGPACK};
	seg_buf b = {0}, scratch = {0}, want = {0};
	uint8_t mp[SAMPLE_CAP];
	size_t len = tool_sample_msgpack(7, mp, sizeof(mp)), f;
	json_error_t je;

	ck_assert_int_eq(seg_mp_to_json(mp, len, &want), 0);
	for (f = 0; f < 3; f++) {
		const char *text;
		size_t tlen;
		json_t *root = NULL, *rec, *data, *parsed, *orig;
		msgpack_unpacked u;
		size_t off = 0;

		upl_body_begin(&b, formats[f]);
		ck_assert_int_eq(upl_body_record(&b, formats[f], 1, DEV, 9, 5, mp, len, &scratch),
				 0);
		upl_body_end(&b, formats[f]);
		ck_assert(!b.oom);
		msgpack_unpacked_init(&u);
		if (formats[f] == EDGELOG_FORMAT_MSGPACK) {
			const msgpack_object *o;
			ck_assert_int_eq(msgpack_unpack_next(&u, b.p, b.len, &off),
					 MSGPACK_UNPACK_SUCCESS);
			ck_assert_uint_eq(off, b.len);
			ck_assert_ptr_nonnull(o = mp_get(&u.data, "seq"));
			ck_assert_uint_eq(o->via.u64, 9);
			ck_assert_ptr_nonnull(o = mp_get(&u.data, "data"));
			ck_assert_int_eq(o->type, MSGPACK_OBJECT_STR);
			text = o->via.str.ptr;
			tlen = o->via.str.size;
		} else {
			root = json_loadb(b.p, b.len, 0, &je);
			ck_assert_msg(root != NULL, "%s: %.200s", je.text, b.p);
			rec = formats[f] == EDGELOG_FORMAT_JSON ? json_array_get(root, 0) : root;
			ck_assert_int_eq(json_integer_value(json_object_get(rec, "seq")), 9);
			ck_assert_str_eq(json_string_value(json_object_get(rec, "device_id")), DEV);
			data = json_object_get(rec, "data");
			ck_assert_msg(json_is_string(data), "data is not a string: %.200s", b.p);
			text = json_string_value(data);
			tlen = json_string_length(data);
		}
		/* The string is exactly the compact JSON of the record. */
		ck_assert_uint_eq(tlen, want.len);
		ck_assert(!memcmp(text, want.p, tlen));
		parsed = json_loadb(text, tlen, 0, &je);
		ck_assert_ptr_nonnull(parsed);
		orig = json_loadb(want.p, want.len, 0, &je);
		ck_assert(json_equal(parsed, orig));
		json_decref(parsed);
		json_decref(orig);
		json_decref(root);
		msgpack_unpacked_destroy(&u);
	}
	seg_buf_free(&b);
	seg_buf_free(&scratch);
	seg_buf_free(&want);
}
END_TEST

START_TEST(test_json_strings_escaped)
{
	char s[64];
	size_t n = 0;
	int c;
	json_t *v;
	PACK_BEGIN();

	for (c = 0; c < 0x20; c++)
		s[n++] = (char)c;
	memcpy(s + n, "\"\\/\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 14);
	n += 14;
	msgpack_pack_str_with_body(&pk, s, n);
	v = wire_data(sb.data, sb.size, 0, NULL);
	ck_assert(json_is_string(v));
	ck_assert_uint_eq(json_string_length(v), n);
	ck_assert(!memcmp(json_string_value(v), s, n));
	json_decref(v);

	/* A key with the same bytes. */
	PACK_RESET();
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "k\"\\\n\x01", 5);
	msgpack_pack_int(&pk, 1);
	v = wire_data(sb.data, sb.size, 0, NULL);
	ck_assert_ptr_nonnull(json_object_get(v, "k\"\\\n\x01"));
	json_decref(v);

	/* Every string width: fixstr, str8, str16, str32. */
	{
		static const size_t lens[] = {0, 31, 32, 255, 256, 65535, 65536, 70000};
		size_t i, k;
		for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			char *big = malloc(lens[i] + 1);
			for (k = 0; k < lens[i]; k++)
				big[k] = (char)('a' + k % 26);
			PACK_RESET();
			msgpack_pack_str_with_body(&pk, big, lens[i]);
			v = wire_data(sb.data, sb.size, 0, NULL);
			ck_assert_uint_eq(json_string_length(v), lens[i]);
			ck_assert(!memcmp(json_string_value(v), big, lens[i]));
			json_decref(v);
			free(big);
		}
	}
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* Remove every U+FFFD from s. */
static void strip_fffd(const char *s, size_t n, char *out)
{
	size_t i, o = 0;
	for (i = 0; i < n;) {
		if (i + 3 <= n && !memcmp(s + i, "\xef\xbf\xbd", 3)) {
			i += 3;
			continue;
		}
		out[o++] = s[i++];
	}
	out[o] = 0;
}

START_TEST(test_json_invalid_utf8)
{
	static const struct {
		const char *in, *kept;
	} cases[] = {
		{"a\xff"
		 "b",
		 "ab"},
		{"\xc3(", "("},
		{"\xed\xa0\x80x", "x"}, /* UTF-16 surrogate */
		{"\xc0\xafz", "z"},     /* overlong '/' */
		{"\xe0\x80\xafz", "z"}, /* overlong, 3 bytes */
		{"q\xe2\x82", "q"},     /* truncated at the end */
		{"\xf8\x88\x80\x80\x80!", "!"},
		{"\xf4\x90\x80\x80?", "?"}, /* beyond U+10FFFF */
		{"\x80", ""},               /* lone continuation */
		{"\xc3\xa9\xff\xe2\x82\xac", "\xc3\xa9\xe2\x82\xac"},
	};
	size_t i;
	PACK_BEGIN();

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char kept[64];
		json_t *v;
		PACK_RESET();
		msgpack_pack_str_with_body(&pk, cases[i].in, strlen(cases[i].in));
		v = wire_data(sb.data, sb.size, 0, NULL); /* jansson checks UTF-8 */
		ck_assert(json_is_string(v));
		ck_assert_msg(strstr(json_string_value(v), "\xef\xbf\xbd") != NULL,
			      "case %zu: no U+FFFD", i);
		strip_fffd(json_string_value(v), json_string_length(v), kept);
		ck_assert_msg(!strcmp(kept, cases[i].kept), "case %zu: kept '%s', want '%s'", i,
			      kept, cases[i].kept);
		json_decref(v);

		/* The same bytes as a map key, and as the device id. */
		PACK_RESET();
		msgpack_pack_map(&pk, 1);
		msgpack_pack_str_with_body(&pk, cases[i].in, strlen(cases[i].in));
		msgpack_pack_true(&pk);
		v = wire_data(sb.data, sb.size, 0, NULL);
		ck_assert_uint_eq(json_object_size(v), 1);
		json_decref(v);
	}
	{
		seg_buf b = {0};
		json_error_t je;
		json_t *o;
		upl_body_begin(&b, EDGELOG_FORMAT_JSON);
		upl_body_record(&b, EDGELOG_FORMAT_JSON, 1, "dev\xff\x01", 1, 1, "\xc0", 1, NULL);
		upl_body_end(&b, EDGELOG_FORMAT_JSON);
		o = json_loadb(b.p, b.len, 0, &je);
		ck_assert_msg(o != NULL, "%s: %s", je.text, b.p);
		json_decref(o);
		seg_buf_free(&b);
	}
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_json_binary_base64)
{
	static const size_t lens[] = {0, 1, 2, 3, 4, 5, 256, 70000};
	size_t i, k;
	PACK_BEGIN();

	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		unsigned char *bin = malloc(lens[i] + 1);
		char *want;
		json_t *v;
		for (k = 0; k < lens[i]; k++)
			bin[k] = (unsigned char)(k * 7 + 255);
		PACK_RESET();
		msgpack_pack_bin_with_body(&pk, bin, lens[i]);
		v = wire_data(sb.data, sb.size, 0, NULL);
		want = tu_b64(bin, lens[i]);
		ck_assert(json_is_string(v));
		ck_assert_str_eq(json_string_value(v), want);
		json_decref(v);
		free(want);
		free(bin);
	}
	{
		char *known = tu_b64((const unsigned char *)"\x00\x01\x02\xff", 4);
		ck_assert_str_eq(known, "AAEC/w==");
		free(known);
	}
	/* ext: {"ext": type, "data": base64}, every width. */
	{
		static const size_t elens[] = {1, 2, 4, 8, 16, 3, 300, 70000};
		for (i = 0; i < sizeof(elens) / sizeof(elens[0]); i++) {
			char *body = calloc(1, elens[i]);
			json_t *v;
			PACK_RESET();
			msgpack_pack_ext_with_body(&pk, body, elens[i], (int8_t)(i == 0 ? -1 : 5));
			v = wire_data(sb.data, sb.size, 0, NULL);
			ck_assert(json_is_object(v));
			ck_assert(json_is_integer(json_object_get(v, "ext")));
			ck_assert(json_is_string(json_object_get(v, "data")));
			json_decref(v);
			free(body);
		}
	}
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_json_floats)
{
	static const double dv[] = {0.1,
				    1e300,
				    -1e-300,
				    5e-324,
				    2.0,
				    -0.0,
				    0.0,
				    1.7976931348623157e308,
				    123456789.123456789,
				    1.0 / 3};
	static const float fv[] = {0.1f, 1.5f, -2.25f, 3.4028235e38f, 1e-45f, 16777216.0f, 0.0f};
	size_t i;
	json_t *v;
	PACK_BEGIN();

	/* NaN and infinities: null (float64 and float32). */
	{
		const double nf[] = {NAN, INFINITY, -INFINITY, -NAN};
		for (i = 0; i < 4; i++) {
			PACK_RESET();
			msgpack_pack_double(&pk, nf[i]);
			v = wire_data(sb.data, sb.size, 0, NULL);
			ck_assert_msg(json_is_null(v), "float64 case %zu is not null", i);
			json_decref(v);
			PACK_RESET();
			msgpack_pack_float(&pk, (float)nf[i]);
			v = wire_data(sb.data, sb.size, 0, NULL);
			ck_assert_msg(json_is_null(v), "float32 case %zu is not null", i);
			json_decref(v);
		}
		/* Inside containers and as a key too. */
		PACK_RESET();
		msgpack_pack_map(&pk, 2);
		msgpack_pack_str_with_body(&pk, "x", 1);
		msgpack_pack_array(&pk, 2);
		msgpack_pack_double(&pk, NAN);
		msgpack_pack_double(&pk, -INFINITY);
		msgpack_pack_double(&pk, INFINITY);
		msgpack_pack_int(&pk, 1);
		v = wire_data(sb.data, sb.size, 0, NULL);
		ck_assert(json_is_null(json_array_get(json_object_get(v, "x"), 0)));
		ck_assert_uint_eq(json_object_size(v), 2);
		json_decref(v);
	}
	/* Finite doubles read back as the same double, and as reals. */
	for (i = 0; i < sizeof(dv) / sizeof(dv[0]); i++) {
		PACK_RESET();
		msgpack_pack_double(&pk, dv[i]);
		v = wire_data(sb.data, sb.size, 0, NULL);
		ck_assert_msg(json_is_real(v), "double %.17g is not a JSON real", dv[i]);
		ck_assert_msg(json_real_value(v) == dv[i], "double %.17g read back as %.17g", dv[i],
			      json_real_value(v));
		json_decref(v);
	}
	/* float32: the value of the float, exactly. */
	for (i = 0; i < sizeof(fv) / sizeof(fv[0]); i++) {
		PACK_RESET();
		msgpack_pack_float(&pk, fv[i]);
		ck_assert_uint_eq(sb.size, 5);
		v = wire_data(sb.data, sb.size, 0, NULL);
		ck_assert_msg(json_is_real(v), "float %.9g is not a JSON real", (double)fv[i]);
		ck_assert_msg(json_real_value(v) == (double)fv[i], "float %.9g read back as %.17g",
			      (double)fv[i], json_real_value(v));
		json_decref(v);
	}
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_json_integers)
{
	/* Explicit encodings, every width and sign. */
	static const struct {
		unsigned char b[9];
		size_t n;
		const char *text;
	} enc[] = {
		{{0x7f}, 1, "127"},
		{{0xe0}, 1, "-32"},
		{{0xcc, 0xff}, 2, "255"},
		{{0xcd, 0xff, 0xff}, 3, "65535"},
		{{0xce, 0xff, 0xff, 0xff, 0xff}, 5, "4294967295"},
		{{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9, "18446744073709551615"},
		{{0xd0, 0x80}, 2, "-128"},
		{{0xd0, 0x7f}, 2, "127"},
		{{0xd1, 0x80, 0x00}, 3, "-32768"},
		{{0xd2, 0x80, 0, 0, 0}, 5, "-2147483648"},
		{{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}, 9, "-9223372036854775808"},
		{{0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9, "9223372036854775807"},
		{{0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9, "-1"},
	};
	size_t i;

	for (i = 0; i < sizeof(enc) / sizeof(enc[0]); i++) {
		char *text = NULL;
		json_t *v = wire_data(enc[i].b, enc[i].n, JSON_DECODE_INT_AS_REAL, &text);
		ck_assert_msg(!strcmp(text, enc[i].text), "case %zu: '%s', want '%s'", i, text,
			      enc[i].text);
		free(text);
		json_decref(v);
	}
	/* int64 min as an integer jansson reads exactly. */
	{
		json_t *v = wire_data(enc[10].b, enc[10].n, 0, NULL);
		ck_assert(json_is_integer(v));
		ck_assert(json_integer_value(v) == INT64_MIN);
		json_decref(v);
	}
	/* uint64 max: the literal, valid JSON (jansson can only read it as a
   * real, which JSON_DECODE_INT_AS_REAL does). */
	{
		json_t *v = wire_data(enc[5].b, enc[5].n, JSON_DECODE_INT_AS_REAL, NULL);
		ck_assert(json_is_real(v));
		ck_assert(json_real_value(v) == 18446744073709551615.0);
		json_decref(v);
	}
}
END_TEST

START_TEST(test_json_non_string_keys)
{
	json_t *v;
	const char *k;
	json_t *val;
	int seen = 0;
	PACK_BEGIN();

	msgpack_pack_map(&pk, 11);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_int(&pk, 101);
	msgpack_pack_int(&pk, -5);
	msgpack_pack_int(&pk, 102);
	msgpack_pack_uint64(&pk, UINT64_MAX);
	msgpack_pack_int(&pk, 103);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_int(&pk, 2);
	msgpack_pack_int(&pk, 104);
	msgpack_pack_nil(&pk);
	msgpack_pack_int(&pk, 105);
	msgpack_pack_true(&pk);
	msgpack_pack_int(&pk, 106);
	msgpack_pack_false(&pk);
	msgpack_pack_int(&pk, 107);
	msgpack_pack_double(&pk, 1.5);
	msgpack_pack_int(&pk, 108);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "k", 1);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_int(&pk, 109);
	msgpack_pack_bin_with_body(&pk, "\x01\x02", 2);
	msgpack_pack_int(&pk, 110);
	msgpack_pack_str_with_body(&pk, "s", 1);
	msgpack_pack_int(&pk, 111);
	v = wire_data(sb.data, sb.size, JSON_REJECT_DUPLICATES, NULL);
	ck_assert(json_is_object(v));
	ck_assert_uint_eq(json_object_size(v), 11);
#define KEY_IS(key, n) \
	ck_assert_msg(json_integer_value(json_object_get(v, key)) == (n), "key %s", key)
	KEY_IS("1", 101);
	KEY_IS("-5", 102);
	KEY_IS("18446744073709551615", 103);
	KEY_IS("[1,2]", 104);
	KEY_IS("null", 105);
	KEY_IS("true", 106);
	KEY_IS("false", 107);
	KEY_IS("1.5", 108);
	KEY_IS("{\"k\":1}", 109);
	KEY_IS("s", 111);
#undef KEY_IS
	json_object_foreach(v, k, val)
	{
		if (json_integer_value(val) == 110) {
			ck_assert_msg(strstr(k, "AQI=") != NULL, "binary key became '%s'", k);
			seen = 1;
		}
	}
	ck_assert(seen);
	json_decref(v);

	/* Nested: a key that is a map holding a non-string key and a NaN. */
	PACK_RESET();
	msgpack_pack_map(&pk, 1);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_nil(&pk);
	msgpack_pack_str_with_body(&pk, "q\"", 2);
	msgpack_pack_int(&pk, 3);
	msgpack_pack_double(&pk, NAN);
	msgpack_pack_int(&pk, 1);
	v = wire_data(sb.data, sb.size, 0, NULL);
	ck_assert_uint_eq(json_object_size(v), 1);
	json_decref(v);
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* depth nested containers around a 1: kind 0 arrays, 1 maps {"a": ...},
 * 2 alternating, 3 maps keyed by arrays. */
static void pack_nested(msgpack_packer *pk, int depth, int kind)
{
	int d;
	for (d = 0; d < depth; d++) {
		int map = kind == 1 || (kind == 2 && d % 2) || kind == 3;
		if (map) {
			msgpack_pack_map(pk, 1);
			if (kind == 3) {
				msgpack_pack_array(pk, 1);
				msgpack_pack_int(pk, d);
			} else {
				msgpack_pack_str_with_body(pk, "a", 1);
			}
		} else {
			msgpack_pack_array(pk, 1);
		}
	}
	msgpack_pack_int(pk, 1);
}

static int json_depth(json_t *v)
{
	int d = 0;
	while (json_is_array(v) || json_is_object(v)) {
		d++;
		if (json_is_array(v)) {
			v = json_array_get(v, 0);
		} else {
			void *it = json_object_iter(v);
			v = it ? json_object_iter_value(it) : NULL;
		}
	}
	return d;
}

START_TEST(test_json_deep_nesting)
{
	int kind;
	PACK_BEGIN();

	for (kind = 0; kind < 4; kind++) {
		json_t *v;
		PACK_RESET();
		pack_nested(&pk, 200, kind);
		v = wire_data(sb.data, sb.size, 0, NULL);
		ck_assert_int_eq(json_depth(v), 200);
		json_decref(v);
	}
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* Whatever depth the engine's append check accepts, the JSON writer must
 * carry (the issue: "valid JSON for anything the engine accepts"). */
START_TEST(test_json_depth_limit_matches_append)
{
	int depth, kind, accepted = 0;
	PACK_BEGIN();

	for (kind = 0; kind < 3; kind++)
		for (depth = 240; depth <= 270; depth++) {
			seg_buf b = {0};
			PACK_RESET();
			pack_nested(&pk, depth, kind);
			if (seg_mp_validate(sb.data, sb.size) != 0)
				continue; /* the engine refuses it at append */
			accepted++;
			ck_assert_msg(seg_mp_to_json(sb.data, sb.size, &b) == 0,
				      "kind %d depth %d: accepted at append, refused by the JSON "
				      "writer",
				      kind, depth);
			seg_buf_free(&b);
			json_decref(wire_data(sb.data, sb.size, 0, NULL));
		}
	ck_assert_int_gt(accepted, 0);
	/* Deeper than any limit: refused at append (never reaches the wire). */
	PACK_RESET();
	pack_nested(&pk, 5000, 0);
	ck_assert_uint_ne(seg_mp_validate(sb.data, sb.size), 0);
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_json_containers)
{
	json_t *v;
	int k;
	PACK_BEGIN();

	/* array16 / map16 / array32 / map32 headers. */
	msgpack_pack_array(&pk, 20);
	for (k = 0; k < 20; k++)
		msgpack_pack_int(&pk, k);
	v = wire_data(sb.data, sb.size, 0, NULL);
	ck_assert_uint_eq(json_array_size(v), 20);
	json_decref(v);
	PACK_RESET();
	msgpack_pack_map(&pk, 20);
	for (k = 0; k < 20; k++) {
		char key[8];
		snprintf(key, sizeof(key), "k%d", k);
		msgpack_pack_str_with_body(&pk, key, strlen(key));
		msgpack_pack_int(&pk, k);
	}
	v = wire_data(sb.data, sb.size, 0, NULL);
	ck_assert_uint_eq(json_object_size(v), 20);
	json_decref(v);
	{
		static const unsigned char a32[] = {0xdd, 0, 0, 0, 2, 0x01, 0xc0};
		static const unsigned char m32[] = {0xdf, 0, 0, 0, 1, 0xa1, 'x', 0xc3};
		static const unsigned char empty[] = {0x92, 0x90, 0x80};
		v = wire_data(a32, sizeof(a32), 0, NULL);
		ck_assert_uint_eq(json_array_size(v), 2);
		ck_assert(json_is_null(json_array_get(v, 1)));
		json_decref(v);
		v = wire_data(m32, sizeof(m32), 0, NULL);
		ck_assert(json_is_true(json_object_get(v, "x")));
		json_decref(v);
		v = wire_data(empty, sizeof(empty), 0, NULL);
		ck_assert_uint_eq(json_array_size(json_array_get(v, 0)), 0);
		ck_assert_uint_eq(json_object_size(json_array_get(v, 1)), 0);
		json_decref(v);
	}
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* Issue 9, defect 1: maps used as keys of maps, 40 deep in 82 bytes, once
 * doubled the JSON at every level (terabytes). Now the text is linear in
 * the input and says the same at every depth: the key text of the inner
 * maps, escaped once. */
START_TEST(test_json_nested_map_keys_linear)
{
	static const int levels[] = {1, 2, 3, 40, 200};
	size_t i;

	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		uint8_t rec[512];
		size_t n = tu_nested_key_record(levels[i], rec);
		char *want = tu_nested_key_json(levels[i]);
		json_error_t je;
		json_t *w, *got;
		seg_buf d = {0};

		if (levels[i] == 40)
			ck_assert_uint_eq(n, 82);
		ck_assert_uint_eq(seg_mp_validate(rec, n), 0);
		ck_assert_int_eq(seg_mp_to_json(rec, n, &d), 0);
		ck_assert_msg(d.len <= SEG_JSON_MAX_EXPANSION * n,
			      "%d levels: %zu bytes of JSON for %zu of msgpack", levels[i], d.len,
			      n);
		ck_assert_str_eq(d.p, want);
		w = json_loads(want, 0, &je);
		ck_assert_msg(w != NULL, "%s: %s", je.text, want);
		got = wire_data(rec, n, JSON_REJECT_DUPLICATES, NULL);
		ck_assert(json_equal(got, w));
		json_decref(got);
		json_decref(w);
		free(want);
		seg_buf_free(&d);
	}
}
END_TEST

/* A payload that is not one msgpack object (a frame's checksum does not
 * prove it is) cannot go on the wire: the encoder refuses it and leaves
 * the body as it was, valid, for the uploader to dead-letter the record. */
START_TEST(test_json_undecodable_refused)
{
	static const unsigned char bad[] = {0x92, 0x01}; /* array of 2, one element */
	static const unsigned char two[] = {0x01, 0x02}; /* two objects, not one */
	int f;

	for (f = EDGELOG_FORMAT_NDJSON; f <= EDGELOG_FORMAT_MSGPACK; f++) {
		seg_buf b = {0};
		size_t before;
		upl_body_begin(&b, f);
		ck_assert_int_eq(upl_body_record(&b, f, 1, DEV, 1, 5, "\x01", 1, NULL), 0);
		before = b.len;
		ck_assert_int_eq(upl_body_record(&b, f, 0, DEV, 2, 5, bad, sizeof(bad), NULL), -1);
		ck_assert_uint_eq(b.len, before);
		ck_assert_int_eq(upl_body_record(&b, f, 0, DEV, 2, 5, two, sizeof(two), NULL), -1);
		ck_assert_uint_eq(b.len, before);
		ck_assert_int_eq(upl_body_record(&b, f, 0, DEV, 3, 5, "\xc0", 1, NULL), 0);
		upl_body_end(&b, f);
		{
			dec_vec dv = {0};
			char err[256] = "";
			ck_assert_msg(decode_body(f, b.p, b.len, &dv, err, sizeof(err)) == 0,
				      "format %d: %s", f, err);
			ck_assert_uint_eq(dv.n, 2);
			ck_assert_uint_eq(dv.v[0].seq, 1);
			ck_assert_uint_eq(dv.v[1].seq, 3);
			dec_free(&dv);
		}
		seg_buf_free(&b);
	}
}
END_TEST

START_TEST(test_formats_engine)
{
	static const int formats[] = {EDGELOG_FORMAT_NDJSON, EDGELOG_FORMAT_JSON,
				      EDGELOG_FORMAT_MSGPACK};
	const int format = formats[_i / 2], gz = !(_i % 2);
	char *dir = tu_mkdtemp("formats");
	srv *s = srv_start(NULL);
	char *url = url_for(s->port, "http", "127.0.0.1");
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	char e[256];

	srv_keep_data(s);
	cfg_std(&c, dir, url);
	c.format = (edgelog_format)format;
	c.compression = gz ? EDGELOG_COMPRESSION_GZIP : EDGELOG_COMPRESSION_NONE;
	log = tu_open_ok(&c);
	ck_assert_int_eq(edgelog_start(log), 0);
	append_samples(log, 1, 300);
	WAIT_FOR(log, st, 10000, st.sent == 300 && st.pending == 0);
	ck_assert_msg(srv_decode_errors(s, e, sizeof(e)) == 0, "%s", e);
	check_acked_range(s, 1, 300, 0);
	check_request_headers(s, format, gz, NULL);
	ck_assert_int_le(close_timed(log), TU_MS(3000));
	srv_stop(s);
	free(url);
	free(dir);
}
END_TEST

/* Issue 9, defect 1: the 82-byte record of 40 maps used as keys once took
 * the uploader minutes and gigabytes and stopped every batch behind it.
 * Appended through the public API, it is delivered at once, as the JSON
 * the converter documents, in every format, and the records after it
 * too; close is prompt. */
START_TEST(test_nested_map_keys_record_delivered)
{
	int f;

	for (f = EDGELOG_FORMAT_NDJSON; f <= EDGELOG_FORMAT_MSGPACK; f++) {
		char *dir = tu_mkdtemp("nestkey");
		srv *s = srv_start(NULL);
		char *url = url_for(s->port, "http", "127.0.0.1");
		edgelog_config c;
		edgelog *log;
		edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
		/* msgpack bodies are decoded by msgpack-c here, whose unpacker
     * stops at 32 levels: 30 for that format. */
		int levels = f == EDGELOG_FORMAT_MSGPACK ? 30 : 40;
		uint8_t rec[128];
		size_t n = tu_nested_key_record(levels, rec), na, i;
		uint64_t seq = 0;
		srv_rec *a;
		char *want;

		ck_assert_uint_eq(n, 2 * (size_t)levels + 2);
		srv_keep_data(s);
		cfg_std(&c, dir, url);
		c.format = (edgelog_format)f;
		log = tu_open_ok(&c);
		append_samples(log, 1, 1);
		ck_assert_int_eq(edgelog_append(log, rec, n, &seq), 0);
		ck_assert_uint_eq(seq, 2);
		ck_assert_int_eq(edgelog_start(log), 0);
		for (i = 3; i <= 100; i++) {
			uint8_t buf[SAMPLE_CAP];
			size_t l = tool_sample_msgpack(i, buf, sizeof(buf));
			ck_assert_int_eq(edgelog_append(log, buf, l, &seq), 0);
			ck_assert_uint_eq(seq, i);
		}
		WAIT_FOR(log, st, 15000, st.pending == 0 && st.acked_seq == 100);
		ck_assert_msg(st.sent == 100 && st.failed == 0, "format %d: " STATUS_FMT, f,
			      STATUS_ARGS(st));
		ck_assert_int_le(close_timed(log), TU_MS(3000));
		a = srv_acked(s, &na);
		ck_assert_uint_eq(na, 100);
		{
			json_error_t je;
			char *t = tu_nested_key_json(levels);
			json_t *w = json_loads(t, 0, &je);
			ck_assert_ptr_nonnull(w);
			free(t);
			want = tu_canon(w);
			json_decref(w);
		}
		for (i = 0; i < na; i++) {
			ck_assert_uint_eq(a[i].seq, i + 1);
			if (a[i].seq == 2) {
				ck_assert_msg(a[i].data && !strcmp(a[i].data, want),
					      "format %d: seq 2 arrived as %.300s", f,
					      a[i].data ? a[i].data : "(nothing)");
			} else {
				char *w = tu_sample_canon(a[i].seq);
				ck_assert_str_eq(a[i].data, w);
				free(w);
			}
		}
		free(want);
		free(a);
		srv_stop(s);
		free(url);
		free(dir);
	}
}
END_TEST

static Suite *encoding_suite(void)
{
	Suite *s = uploader_suite_create("uploader_encoding");
	TCase *tc;

	tc = tcase_create("encoding");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_encode_roundtrip, 0, 6);
	tcase_add_test(tc, test_gzip_sizes);
	tcase_add_test(tc, test_json_strings_escaped);
	tcase_add_test(tc, test_json_invalid_utf8);
	tcase_add_test(tc, test_json_binary_base64);
	tcase_add_test(tc, test_json_floats);
	tcase_add_test(tc, test_json_integers);
	tcase_add_test(tc, test_json_non_string_keys);
	tcase_add_test(tc, test_json_deep_nesting);
	tcase_add_test(tc, test_json_depth_limit_matches_append);
	tcase_add_test(tc, test_json_containers);
	tcase_add_test(tc, test_json_nested_map_keys_linear);
	tcase_add_test(tc, test_json_undecodable_refused);
	tcase_add_test(tc, test_data_as_json_string);
	suite_add_tcase(s, tc);

	tc = tcase_create("engine_http");
	uploader_engine_tcase(tc);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_formats_engine, 0, 6);
	tcase_add_test(tc, test_nested_map_keys_record_delivered);
	suite_add_tcase(s, tc);

	return s;
}

TU_CHECK_MAIN(encoding_suite)
