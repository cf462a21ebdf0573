/*
 * eng_json.c - one JSON value to one msgpack object, for
 * edgelog_append_json(). Parsing is jansson's (strict RFC 8259, UTF-8
 * checked); the msgpack encoding is msgpack-c's packer.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "eng_internal.h"

#define JSON_MAX_DEPTH 256

static int pack(msgpack_packer *pk, json_t *v, int depth)
{
	size_t i, n;
	const char *key;
	json_t *item;

	if (depth > JSON_MAX_DEPTH)
		return -1;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		n = json_object_size(v);
		msgpack_pack_map(pk, n);
		json_object_foreach(v, key, item)
		{
			size_t kl = strlen(key);
			msgpack_pack_str(pk, kl);
			msgpack_pack_str_body(pk, key, kl);
			if (pack(pk, item, depth + 1))
				return -1;
		}
		return 0;
	case JSON_ARRAY:
		n = json_array_size(v);
		msgpack_pack_array(pk, n);
		for (i = 0; i < n; i++)
			if (pack(pk, json_array_get(v, i), depth + 1))
				return -1;
		return 0;
	case JSON_STRING:
		n = json_string_length(v);
		msgpack_pack_str(pk, n);
		msgpack_pack_str_body(pk, json_string_value(v), n);
		return 0;
	case JSON_INTEGER:
		msgpack_pack_int64(pk, json_integer_value(v));
		return 0;
	case JSON_REAL:
		msgpack_pack_double(pk, json_real_value(v));
		return 0;
	case JSON_TRUE:
		msgpack_pack_true(pk);
		return 0;
	case JSON_FALSE:
		msgpack_pack_false(pk);
		return 0;
	case JSON_NULL:
	default:
		msgpack_pack_nil(pk);
		return 0;
	}
}

int eng_json_to_msgpack(const char *json, size_t len, void **out, size_t *out_len, seg_err *e)
{
	json_error_t err;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	json_t *v;

	*out = NULL;
	*out_len = 0;
	if (len == 0)
		return seg_fail(e, EDGELOG_EINVAL, "invalid JSON: empty input");
	v = json_loadb(json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
	if (!v)
		return seg_fail(e, EDGELOG_EINVAL,
				"invalid JSON at byte %d (line %d, column %d): %s", err.position,
				err.line, err.column, err.text);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (pack(&pk, v, 0)) {
		json_decref(v);
		msgpack_sbuffer_destroy(&sb);
		return seg_fail(e, EDGELOG_EINVAL, "invalid JSON: nested deeper than %d",
				JSON_MAX_DEPTH);
	}
	json_decref(v);
	if (!sb.data) {
		return seg_fail(e, EDGELOG_ENOMEM, "out of memory");
	}
	*out = sb.data;
	*out_len = sb.size;
	return 0;
}
