/*
 * tool_sink_json.c - a strict JSON validator for the sink's fast path.
 *
 * Why not only jansson: building a json_t tree and dumping it back costs
 * about 30 us for a 600-byte prediction (a node allocation per value,
 * strtod and "%.17g" per number), which held the sink near 45k records/s,
 * below what the uploader must deliver. This walks the text once, builds
 * nothing, converts no number, and reports where the value ends, so a
 * well-formed record is stored as the client sent it (minus insignificant
 * whitespace). Whatever it refuses, jansson then judges (tool_sink_body.c):
 * this file only needs to be sound (never pass invalid JSON), and the test
 * suite checks it against jansson on mutated records.
 *
 * Strict means RFC 8259 plus: UTF-8 checked (no overlongs, surrogates or
 * code points past U+10FFFF), \u escapes must pair surrogates, \u0000 is
 * refused (as jansson refuses it), nesting at most TOOL_SINK_JSON_DEPTH. No
 * recursion: an explicit stack of container kinds.
 */
#include <jansson.h>
#include <string.h>

#include "tool_sink.h"

#define IS_WS(c) ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')

typedef struct scan {
	const unsigned char *s;
	size_t len, pos;
	int ws; /* whitespace seen inside the value */
} scan;

static int peek(const scan *p)
{
	return p->pos < p->len ? p->s[p->pos] : -1;
}

static void skip_ws(scan *p)
{
	size_t start = p->pos;

	while (p->pos < p->len && IS_WS(p->s[p->pos]))
		p->pos++;
	if (p->pos != start)
		p->ws = 1;
}

static int hex4(scan *p, unsigned *out)
{
	unsigned v = 0;
	int i;

	if (p->len - p->pos < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		unsigned c = p->s[p->pos++];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* A string; p->pos at the opening quote. *escaped: it holds a backslash. */
static int scan_string(scan *p, int *escaped)
{
	p->pos++;
	for (;;) {
		unsigned c, cp, lo;
		size_t l;

		/* The common case: a run of plain ASCII. */
		while (p->pos < p->len && (c = p->s[p->pos]) >= 0x20 && c < 0x80 && c != '"' &&
		       c != '\\')
			p->pos++;
		if (p->pos >= p->len)
			return -1;
		c = p->s[p->pos];
		if (c == '"') {
			p->pos++;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c >= 0x80) {
			/* A run of non-ASCII bytes is valid UTF-8 on its own
			 * or not at all: jansson's check judges it (json_stringn
			 * refuses invalid UTF-8; one allocation per run). */
			json_t *str;
			l = p->pos;
			while (l < p->len && p->s[l] >= 0x80)
				l++;
			if (!(str = json_stringn((const char *)p->s + p->pos, l - p->pos)))
				return -1;
			json_decref(str);
			p->pos = l;
			continue;
		}
		/* A backslash. */
		if (escaped)
			*escaped = 1;
		if (++p->pos >= p->len)
			return -1;
		c = p->s[p->pos++];
		if (strchr("\"\\/bfnrt", (int)c) && c)
			continue;
		if (c != 'u' || hex4(p, &cp) || cp == 0)
			return -1;
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return -1; /* a low surrogate alone */
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
				return -1;
			p->pos += 2;
			if (hex4(p, &lo) || lo < 0xdc00 || lo > 0xdfff)
				return -1;
		}
	}
}

static int scan_digits(scan *p)
{
	size_t start = p->pos;

	while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
		p->pos++;
	return p->pos > start ? 0 : -1;
}

static int scan_number(scan *p)
{
	if (peek(p) == '-')
		p->pos++;
	if (peek(p) == '0')
		p->pos++;
	else if (scan_digits(p))
		return -1;
	if (peek(p) == '.') {
		p->pos++;
		if (scan_digits(p))
			return -1;
	}
	if (peek(p) == 'e' || peek(p) == 'E') {
		p->pos++;
		if (peek(p) == '+' || peek(p) == '-')
			p->pos++;
		if (scan_digits(p))
			return -1;
	}
	return 0;
}

static int scan_word(scan *p, const char *w, size_t n)
{
	if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n))
		return -1;
	p->pos += n;
	return 0;
}

int tool_sink_json_skip(const char *s, size_t len, size_t *pos, int *ws)
{
	unsigned char stack[TOOL_SINK_JSON_DEPTH]; /* '{' or '[' */
	scan p = {(const unsigned char *)s, len, *pos, 0};
	int depth = 0, c;

	for (;;) {
		/* A value is expected here. */
		skip_ws(&p);
		c = peek(&p);
		if (c == '{' || c == '[') {
			if (depth == TOOL_SINK_JSON_DEPTH)
				return -1;
			stack[depth++] = (unsigned char)c;
			p.pos++;
			skip_ws(&p);
			if (peek(&p) == (c == '{' ? '}' : ']')) {
				p.pos++;
				depth--;
			} else if (c == '{') {
				goto key;
			} else {
				continue;
			}
		} else if (c == '"') {
			if (scan_string(&p, NULL))
				return -1;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			if (scan_number(&p))
				return -1;
		} else if (c == 't') {
			if (scan_word(&p, "true", 4))
				return -1;
		} else if (c == 'f') {
			if (scan_word(&p, "false", 5))
				return -1;
		} else if (c == 'n') {
			if (scan_word(&p, "null", 4))
				return -1;
		} else {
			return -1;
		}
		/* After a value: close containers, or a comma and the next. */
		for (;;) {
			if (depth == 0) {
				*pos = p.pos;
				if (ws)
					*ws = p.ws;
				return 0;
			}
			skip_ws(&p);
			c = peek(&p);
			if (c == (stack[depth - 1] == '{' ? '}' : ']')) {
				p.pos++;
				depth--;
				continue;
			}
			if (c != ',')
				return -1;
			p.pos++;
			break;
		}
		if (stack[depth - 1] == '[')
			continue;
key:
		skip_ws(&p);
		if (peek(&p) != '"' || scan_string(&p, NULL))
			return -1;
		skip_ws(&p);
		if (peek(&p) != ':')
			return -1;
		p.pos++;
	}
}

int tool_sink_json_string(const char *s, size_t len, size_t *pos, int *escaped)
{
	scan p = {(const unsigned char *)s, len, *pos, 0};

	if (peek(&p) != '"' || scan_string(&p, escaped))
		return -1;
	*pos = p.pos;
	return 0;
}

void tool_sink_json_minify(const char *s, size_t n, tool_bytes *out)
{
	size_t i, run = 0;
	int in_str = 0;

	for (i = 0; i < n; i++) {
		char c = s[i];
		if (in_str) {
			if (c == '\\')
				i++, run++;
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
		} else if (IS_WS(c)) {
			tool_bytes_put(out, s + i - run, run);
			run = 0;
			continue;
		}
		run++;
	}
	tool_bytes_put(out, s + n - run, run);
}
