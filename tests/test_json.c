/*
 * test_json.c - reference conversions for the tests, written independently
 * of segments/seg_json.c so they can check it: msgpack objects to jansson
 * values, canonical JSON text, base64.
 */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test_json.h"
#include "tool_sample.h"

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *tu_b64(const unsigned char *s, size_t n)
{
	char *o = malloc(4 * (n / 3 + 1) + 1), *q = o;
	size_t i;
	ck_assert_ptr_nonnull(o);
	for (i = 0; i + 2 < n; i += 3) {
		*q++ = B64[s[i] >> 2];
		*q++ = B64[(s[i] & 3) << 4 | s[i + 1] >> 4];
		*q++ = B64[(s[i + 1] & 15) << 2 | s[i + 2] >> 6];
		*q++ = B64[s[i + 2] & 63];
	}
	if (i < n) {
		*q++ = B64[s[i] >> 2];
		if (i + 1 < n) {
			*q++ = B64[(s[i] & 3) << 4 | s[i + 1] >> 4];
			*q++ = B64[(s[i + 1] & 15) << 2];
		} else {
			*q++ = B64[(s[i] & 3) << 4];
			*q++ = '=';
		}
		*q++ = '=';
	}
	*q = 0;
	return o;
}

/* A growing string for keytext. */
typedef struct tu_text {
	char *p;
	size_t len, cap;
} tu_text;

static void text_put(tu_text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 64;
		while (cap < t->len + n + 1)
			cap *= 2;
		t->p = realloc(t->p, cap);
		ck_assert_ptr_nonnull(t->p);
		t->cap = cap;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

/* The "key text" of a map key that is not a string (seg_json.h): its
 * compact JSON, with map keys nested in it that are not strings written as
 * their own key text, bare. Built independently of seg_json.c, from
 * msgpack-c's tree and jansson's text of each scalar. */
static void keytext(const msgpack_object *o, tu_text *t)
{
	uint32_t i;

	if (o->type == MSGPACK_OBJECT_ARRAY) {
		text_put(t, "[", 1);
		for (i = 0; i < o->via.array.size; i++) {
			if (i)
				text_put(t, ",", 1);
			keytext(&o->via.array.ptr[i], t);
		}
		text_put(t, "]", 1);
	} else if (o->type == MSGPACK_OBJECT_MAP) {
		text_put(t, "{", 1);
		for (i = 0; i < o->via.map.size; i++) {
			if (i)
				text_put(t, ",", 1);
			keytext(&o->via.map.ptr[i].key, t);
			text_put(t, ":", 1);
			keytext(&o->via.map.ptr[i].val, t);
		}
		text_put(t, "}", 1);
	} else {
		json_t *j = tu_mpo_json(o);
		char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		ck_assert_ptr_nonnull(s);
		text_put(t, s, strlen(s));
		free(s);
		json_decref(j);
	}
}

/* msgpack object -> jansson value, independently of seg_json.c: the
 * reference the wire's JSON is compared with. Non-string keys become the
 * compact JSON text of the key. */
json_t *tu_mpo_json(const msgpack_object *o)
{
	json_t *v;
	uint32_t i;

	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return json_null();
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 <= INT64_MAX)
			return json_integer((json_int_t)o->via.u64);
		return json_real((double)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer((json_int_t)o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return isfinite(o->via.f64) ? json_real(o->via.f64) : json_null();
	case MSGPACK_OBJECT_STR:
		return json_stringn_nocheck(o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_BIN: {
		char *s = tu_b64((const unsigned char *)o->via.bin.ptr, o->via.bin.size);
		v = json_string(s);
		free(s);
		return v;
	}
	case MSGPACK_OBJECT_EXT: {
		char *s = tu_b64((const unsigned char *)o->via.ext.ptr, o->via.ext.size);
		v = json_pack("{s:i,s:s}", "ext", (int)o->via.ext.type, "data", s);
		free(s);
		return v;
	}
	case MSGPACK_OBJECT_ARRAY:
		v = json_array();
		for (i = 0; i < o->via.array.size; i++)
			json_array_append_new(v, tu_mpo_json(&o->via.array.ptr[i]));
		return v;
	case MSGPACK_OBJECT_MAP:
		v = json_object();
		for (i = 0; i < o->via.map.size; i++) {
			const msgpack_object *k = &o->via.map.ptr[i].key;
			json_t *val = tu_mpo_json(&o->via.map.ptr[i].val);
			if (k->type == MSGPACK_OBJECT_STR) {
				char *ks = strndup(k->via.str.ptr, k->via.str.size);
				json_object_set_new_nocheck(v, ks, val);
				free(ks);
			} else {
				tu_text t = {0};
				keytext(k, &t);
				json_object_set_new_nocheck(v, t.p ? t.p : "", val);
				free(t.p);
			}
		}
		return v;
	default:
		return json_null();
	}
}

/* Canonical text of a JSON value (for storing and comparing). */
char *tu_canon(const json_t *v)
{
	return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

/* The canonical JSON text of sample record i's data. */
char *tu_sample_canon(uint64_t i)
{
	uint8_t buf[SAMPLE_CAP];
	size_t n = tool_sample_msgpack(i, buf, sizeof(buf));
	msgpack_unpacked u;
	size_t off = 0;
	json_t *j;
	char *s;

	ck_assert(n > 0);
	msgpack_unpacked_init(&u);
	ck_assert_int_eq(msgpack_unpack_next(&u, (const char *)buf, n, &off),
			 MSGPACK_UNPACK_SUCCESS);
	j = tu_mpo_json(&u.data);
	s = tu_canon(j);
	json_decref(j);
	msgpack_unpacked_destroy(&u);
	return s;
}
