/*
 * tool_bytes.c - the tools' growable byte buffer, and JSON text appended
 * to it through the public API (edgelog_record_json), so that every tool
 * writes a record, its data or a string the way the library's uploader
 * does.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

int tool_bytes_reserve(tool_bytes *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 256;
	char *g;

	if (b->oom || n > SIZE_MAX / 2 - b->len - 1) {
		b->oom = 1;
		return -1;
	}
	if (b->len + n + 1 <= b->cap) /* room for the NUL kept after the bytes */
		return 0;
	while (cap < b->len + n + 1)
		cap *= 2;
	if (!(g = realloc(b->p, cap))) {
		b->oom = 1;
		return -1;
	}
	b->p = g;
	b->cap = cap;
	return 0;
}

void tool_bytes_put(tool_bytes *b, const void *s, size_t n)
{
	if (tool_bytes_reserve(b, n))
		return;
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void tool_bytes_puts(tool_bytes *b, const char *s)
{
	tool_bytes_put(b, s, strlen(s));
}

void tool_bytes_printf(tool_bytes *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || tool_bytes_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void tool_bytes_free(tool_bytes *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

int tool_bytes_json(tool_bytes *b, const edgelog_record *rec, const char *device)
{
	/* edgelog.h's bound: 16 bytes of JSON per byte of msgpack, and the
	 * envelope (a device id escaped as \uXXXX takes 6 a byte). One call
	 * then; the loop only if a future library writes more. */
	size_t n = 0, room = 16 * rec->len + (device ? 6 * strlen(device) + 96 : 0) + 1;

	for (;;) {
		int rc;
		if (tool_bytes_reserve(b, room))
			return -2;
		rc = edgelog_record_json(rec, device, b->p + b->len, b->cap - b->len, &n);
		if (rc == 0) {
			b->len += n;
			return 0;
		}
		if (rc == EDGELOG_ENOMEM) {
			b->oom = 1;
			return -2;
		}
		if (rc != EDGELOG_ERANGE)
			return -1;
		room = n + 1; /* n: the whole text's length */
	}
}

int tool_bytes_json_string(tool_bytes *b, const char *s, size_t n)
{
	/* A msgpack str 32 (any length fits its header) holding s. */
	edgelog_record rec = {0};
	char *mp = malloc(n + 5);
	int rc;

	if (!mp || n > UINT32_MAX) {
		free(mp);
		b->oom = 1;
		return -2;
	}
	mp[0] = (char)0xdb;
	mp[1] = (char)(n >> 24);
	mp[2] = (char)(n >> 16);
	mp[3] = (char)(n >> 8);
	mp[4] = (char)n;
	memcpy(mp + 5, s, n);
	rec.data = mp;
	rec.len = n + 5;
	rc = tool_bytes_json(b, &rec, NULL);
	free(mp);
	return rc;
}
