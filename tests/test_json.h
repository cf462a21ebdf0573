/*
 * test_json.h - reference msgpack-to-JSON conversion for the tests.
 */
#ifndef TEST_JSON_H
#define TEST_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <msgpack.h>

#define SAMPLE_CAP 2048

/* Base64 (RFC 4648, padded), malloc'd. */
char *tu_b64(const unsigned char *s, size_t n);
/* msgpack object -> jansson value: binary as base64, ext as {"ext","data"},
 * NaN/infinities as null, non-string map keys as their compact JSON text. */
json_t *tu_mpo_json(const msgpack_object *o);
/* Canonical text of a JSON value (compact, sorted keys), malloc'd. */
char *tu_canon(const json_t *v);
/* Canonical JSON text of tool_sample_msgpack(i). */
char *tu_sample_canon(uint64_t i);

#endif
