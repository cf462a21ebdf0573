/*
 * seg_json.h - msgpack to JSON, for the wire (NDJSON / JSON bodies) and
 * for the tools. Valid JSON for any input the engine accepts: strings are
 * escaped (control characters, quotes; invalid UTF-8 becomes U+FFFD),
 * binary becomes a base64 string, NaN and infinities become null, nesting
 * is bounded.
 *
 * Map keys that are not strings become strings holding their "key text":
 * the compact JSON text of the key, except that a map key nested inside it
 * that is not a string is written as its own key text, bare (not quoted and
 * not escaped again). So {[1,2]: 0} gives {"[1,2]":0}, {{"a":1}: 0} gives
 * {"{\"a\":1}":0}, and {{{"a":1}: 2}: 3} gives {"{{\"a\":1}:2}":3}. Each
 * input byte is written once and escaped at most once, so the output is
 * linear in the input, whatever the nesting: at most SEG_JSON_MAX_EXPANSION
 * bytes of JSON per byte of msgpack (the worst case, a map of 1-byte ext
 * keys, takes about 10; the fuzz target tests/fuzz/fuzz_mp_json.c checks
 * the bound).
 */
#ifndef SEG_JSON_H
#define SEG_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SEG_JSON_MAX_EXPANSION 16

/* A growable byte buffer. */
typedef struct seg_buf {
	char *p;
	size_t len, cap;
	int oom; /* an append failed for lack of memory */
} seg_buf;

/* Make room for n more bytes (sets oom on failure); returns 0 or -1. */
int seg_buf_reserve(seg_buf *b, size_t n);
/* The same, with the common case (room already there) inline: the JSON
 * writer asks for every token. */
static inline int seg_buf_room(seg_buf *b, size_t n)
{
	return !b->oom && b->cap - b->len > n ? 0 : seg_buf_reserve(b, n);
}
/* Append n bytes and keep the text NUL-terminated; on lack of memory
 * append nothing and set oom. */
static inline void seg_buf_put(seg_buf *b, const void *s, size_t n)
{
	if (seg_buf_room(b, n))
		return;
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}
void seg_buf_puts(seg_buf *b, const char *s);
void seg_buf_printf(seg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void seg_buf_free(seg_buf *b);
/* Decimal integers, without printf: v, with a minus sign if neg. */
void seg_buf_u64(seg_buf *b, uint64_t v, int neg);
void seg_buf_i64(seg_buf *b, int64_t v);

/* Append the JSON text of the msgpack object in [data, data+len) to out.
 * Returns 0, or -1 if the input is not one well-formed msgpack object
 * (out then holds a partial text; discard it). */
int seg_mp_to_json(const void *data, size_t len, seg_buf *out);

/* Length of the valid UTF-8 sequence starting at s (n bytes readable):
 * 1 for ASCII, 2..4 for a well-formed multi-byte sequence (no overlong
 * forms, surrogates or code points past U+10FFFF), 0 if invalid. */
size_t seg_utf8_len(const unsigned char *s, size_t n);

/* Write what snprintf(out, 40, "%.17g", d) writes (out: 40 bytes), without
 * printf for 1e-7 <= |d| < 1e15; returns the length. */
size_t seg_fmt_g17(char *out, double d);

/* Append s (n bytes, any content) as a JSON string literal. */
void seg_json_string(seg_buf *out, const char *s, size_t n);

#endif
