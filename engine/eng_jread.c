/*
 * eng_jread.c - reading back the JSON the engine writes itself
 * (DIR/status.json, DIR/meta.json): find an object's member by name, an
 * array's element by index, and take a value as an integer or a string. No allocation, no
 * tree: each lookup walks the text, which is small (about 1.5 KiB).
 *
 * The text may have been damaged or planted by someone else: every walk
 * is bounded by the text's length and by ENG_JSON_MAX_DEPTH, and anything
 * malformed is "not found", never a crash.
 */
#include <stdint.h>
#include <string.h>

#include "eng_internal.h"

#define ENG_JSON_MAX_DEPTH 32

static const char *ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* End of the string whose opening quote is at p (after the closing quote),
 * or NULL. */
static const char *string_end(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\') {
			if (++p >= end)
				return NULL;
		} else if (*p == '"') {
			return p + 1;
		} else if ((unsigned char)*p < 0x20) {
			return NULL;
		}
	}
	return NULL;
}

/* End of the value starting at p (no leading space), or NULL. */
static const char *value_end(const char *p, const char *end, int depth)
{
	if (p >= end || depth > ENG_JSON_MAX_DEPTH)
		return NULL;
	if (*p == '"')
		return string_end(p, end);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		p = ws(p + 1, end);
		if (p < end && *p == close)
			return p + 1;
		for (;;) {
			if (close == '}') {
				if (p >= end || *p != '"' || !(p = string_end(p, end)))
					return NULL;
				p = ws(p, end);
				if (p >= end || *p != ':')
					return NULL;
				p = ws(p + 1, end);
			}
			if (!(p = value_end(p, end, depth + 1)))
				return NULL;
			p = ws(p, end);
			if (p < end && *p == ',')
				p = ws(p + 1, end);
			else if (p < end && *p == close)
				return p + 1;
			else
				return NULL;
		}
	}
	/* A number or a literal: up to the next delimiter. */
	{
		const char *s = p;
		while (p < end && !strchr(",}] \t\r\n", *p))
			p++;
		return p > s ? p : NULL;
	}
}

static void set(eng_jv *v, const char *p, const char *e)
{
	v->p = p;
	v->n = (size_t)(e - p);
	switch (*p) {
	case '"':
		v->type = 's';
		v->p++;
		v->n -= 2;
		break;
	case '{':
		v->type = 'o';
		break;
	case '[':
		v->type = 'a';
		break;
	case 't':
		v->type = 't';
		break;
	case 'f':
		v->type = 'f';
		break;
	case 'n':
		v->type = 'z';
		break;
	default:
		v->type = 'n';
	}
}

int eng_json_member(const char *text, size_t n, const char *key, eng_jv *out)
{
	const char *end = text + n, *p = ws(text, end), *k, *ke, *ve;
	size_t klen = strlen(key);

	if (p >= end || *p != '{')
		return -1;
	p = ws(p + 1, end);
	while (p < end && *p == '"') {
		k = p + 1;
		if (!(ke = string_end(p, end)))
			return -1;
		p = ws(ke, end);
		if (p >= end || *p != ':')
			return -1;
		p = ws(p + 1, end);
		if (!(ve = value_end(p, end, 1)))
			return -1;
		if ((size_t)(ke - 1 - k) == klen && !memcmp(k, key, klen)) {
			set(out, p, ve);
			return 0;
		}
		p = ws(ve, end);
		if (p >= end || *p != ',')
			return -1;
		p = ws(p + 1, end);
	}
	return -1;
}

int eng_json_element(const eng_jv *arr, size_t i, eng_jv *out)
{
	const char *end, *p, *ve;

	if (arr->type != 'a')
		return -1;
	end = arr->p + arr->n;
	p = ws(arr->p + 1, end);
	for (;;) {
		if (p >= end || *p == ']' || !(ve = value_end(p, end, 1)))
			return -1;
		if (!i--) {
			set(out, p, ve);
			return 0;
		}
		p = ws(ve, end);
		if (p >= end || *p != ',')
			return -1;
		p = ws(p + 1, end);
	}
}

int eng_jv_int(const eng_jv *v, int64_t *out)
{
	uint64_t u = 0;
	size_t i = 0;
	int neg = 0;

	if (v->type != 'n' || !v->n)
		return -1;
	if (v->p[0] == '-') {
		neg = 1;
		i = 1;
	}
	if (i == v->n)
		return -1;
	for (; i < v->n; i++) {
		unsigned d = (unsigned)(v->p[i] - '0');
		if (d > 9 || u > (UINT64_C(1) << 63) / 10)
			return -1;
		u = u * 10 + d;
	}
	if (u > (uint64_t)INT64_MAX + (uint64_t)neg)
		return -1;
	*out = neg ? (int64_t)(0 - u) : (int64_t)u;
	return 0;
}

static int hex4(const char *p, unsigned *v)
{
	int i;

	*v = 0;
	for (i = 0; i < 4; i++) {
		char c = p[i];
		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

/* In this file, not eng_json.c: built without JSON input too
 * (EDGELOG_WITH_JSON=OFF), for the readers here. */
size_t eng_utf8_encode(unsigned cp, char u[4])
{
	if (cp < 0x80) {
		u[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	u[0] = (char)(0xf0 | cp >> 18);
	u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	u[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

int eng_jv_str(const eng_jv *v, char *out, size_t cap)
{
	size_t i, o = 0;

	if (v->type != 's' || !cap)
		return -1;
	for (i = 0; i < v->n; i++) {
		char u8[4];
		size_t k = 1;
		unsigned cp, lo;
		u8[0] = v->p[i];
		if (v->p[i] == '\\') {
			if (++i >= v->n)
				return -1;
			switch (v->p[i]) {
			case 'b':
				u8[0] = '\b';
				break;
			case 'f':
				u8[0] = '\f';
				break;
			case 'n':
				u8[0] = '\n';
				break;
			case 'r':
				u8[0] = '\r';
				break;
			case 't':
				u8[0] = '\t';
				break;
			case 'u':
				if (i + 4 >= v->n || hex4(v->p + i + 1, &cp))
					return -1;
				i += 4;
				if (cp >= 0xd800 && cp < 0xdc00 && i + 6 < v->n &&
				    v->p[i + 1] == '\\' && v->p[i + 2] == 'u' &&
				    !hex4(v->p + i + 3, &lo) && lo >= 0xdc00 && lo < 0xe000) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					i += 6;
				} else if (cp >= 0xd800 && cp < 0xe000) {
					cp = 0xfffd; /* a lone surrogate */
				}
				k = eng_utf8_encode(cp, u8);
				break;
			default: /* \" \\ \/ */
				u8[0] = v->p[i];
			}
		}
		if (o + k >= cap)
			break; /* cut to fit, as snprintf would */
		memcpy(out + o, u8, k);
		o += k;
	}
	out[o] = '\0';
	return 0;
}
