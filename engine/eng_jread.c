/*
 * eng_jread.c - the JSON tokenizer (numbers, literals, escapes: the one
 * lexer of the engine, also under eng_json.c's parser for
 * edgelog_append_json), and on it the reader of the JSON the engine writes
 * itself (DIR/status.json, DIR/meta.json): find an object's member by name,
 * an array's element by index, and take a value as an integer or a string.
 * No allocation, no tree: each lookup walks the text, which is small
 * (about 1.5 KiB). In every build (eng_json.c is left out with
 * EDGELOG_WITH_JSON=OFF).
 *
 * The text may have been damaged or planted by someone else: every walk
 * is bounded by the text's length and by ENG_JSON_MAX_DEPTH, and anything
 * malformed is "not found", never a crash.
 */
#include <stdint.h>
#include <string.h>

#include "eng_internal.h"

#define ENG_JSON_MAX_DEPTH 32

/* ---- the tokenizer ------------------------------------------------------- */

size_t eng_json_literal(const unsigned char *s, size_t n, size_t i)
{
	static const char *const words[] = {"true", "false", "null"};
	const char *w = s[i] == 't' ? words[0] : s[i] == 'f' ? words[1] : words[2];
	size_t len = strlen(w);

	return n - i >= len && !memcmp(s + i, w, len) ? len : 0;
}

static int digit(const unsigned char *s, size_t n, size_t i)
{
	return i < n && s[i] >= '0' && s[i] <= '9';
}

int eng_json_number(const unsigned char *s, size_t n, size_t i, eng_jnum *num)
{
	num->neg = num->big = 0;
	num->integral = 1;
	num->mag = 0;
	if (i < n && s[i] == '-') {
		num->neg = 1;
		i++;
	}
	if (!digit(s, n, i))
		return ENG_JNUM_INVALID;
	if (s[i] == '0') {
		if (digit(s, n, ++i))
			return ENG_JNUM_LEADING_ZERO;
	} else {
		/* The magnitude as it goes: no second pass, no strtoull. */
		for (; digit(s, n, i); i++) {
			unsigned d = (unsigned)(s[i] - '0');
			if (num->mag > (UINT64_MAX - d) / 10)
				num->big = 1;
			num->mag = num->mag * 10 + d;
		}
	}
	if (i < n && s[i] == '.') {
		num->integral = 0;
		if (!digit(s, n, ++i))
			return ENG_JNUM_NO_FRACTION;
		while (digit(s, n, i))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		num->integral = 0;
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (!digit(s, n, i))
			return ENG_JNUM_NO_EXPONENT;
		while (digit(s, n, i))
			i++;
	}
	if (!num->integral)
		num->big = 0;
	num->end = i;
	return 0;
}

/* Four hex digits at s[at]: 0 and *v, or ENG_JESC_U_* with *bad. */
static int hex4(const unsigned char *s, size_t n, size_t at, unsigned *v, size_t *bad)
{
	unsigned x = 0;
	size_t k;

	if (n - at < 4 || at > n) {
		*bad = at;
		return ENG_JESC_U_SHORT;
	}
	for (k = 0; k < 4; k++) {
		unsigned char c = s[at + k];
		x <<= 4;
		if (c >= '0' && c <= '9')
			x |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			x |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			x |= (unsigned)(c - 'A' + 10);
		else {
			*bad = at + k;
			return ENG_JESC_U_HEX;
		}
	}
	*v = x;
	return 0;
}

int eng_json_escape(const unsigned char *s, size_t n, size_t *i, int strict, char u8[4])
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	size_t at = *i - 1, next = *i + 5, bad;
	const char *hit;
	unsigned cp, lo;
	int k;

	if (s[*i] != 'u') {
		hit = s[*i] ? strchr(from, s[*i]) : NULL;
		if (!hit && strict)
			return -ENG_JESC_INVALID;
		u8[0] = hit ? to[hit - from] : (char)s[*i];
		++*i;
		return 1;
	}
	if ((k = hex4(s, n, *i + 1, &cp, &bad))) {
		*i = bad;
		return -k;
	}
	if (cp >= 0xdc00 && cp <= 0xdfff) {
		if (strict) {
			*i = at;
			return -ENG_JESC_LONE_LOW;
		}
		cp = 0xfffd;
	} else if (cp >= 0xd800 && cp <= 0xdbff) {
		if (next + 2 > n || s[next] != '\\' || s[next + 1] != 'u') {
			k = ENG_JESC_LONE_HIGH;
			bad = at;
		} else if (!(k = hex4(s, n, next + 2, &lo, &bad))) {
			if (lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				next += 6;
			} else {
				k = ENG_JESC_PAIR;
				bad = at;
			}
		}
		if (k && strict) {
			*i = bad;
			return -k;
		}
		if (k)
			cp = 0xfffd; /* a lone surrogate */
	}
	*i = next;
	return (int)eng_utf8_encode(cp, u8);
}

/* ---- the reader ---------------------------------------------------------- */

static const char *ws(const char *p, const char *end)
{
	return p + eng_json_ws((const unsigned char *)p, (size_t)(end - p), 0);
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
	/* A literal or a number, which the next byte must end. */
	{
		const unsigned char *u = (const unsigned char *)p;
		size_t n = (size_t)(end - p), k;
		eng_jnum num;
		if (*p == 't' || *p == 'f' || *p == 'n')
			k = eng_json_literal(u, n, 0);
		else
			k = eng_json_number(u, n, 0, &num) ? 0 : num.end;
		if (!k || (k < n && !strchr(",}] \t\r\n", p[k])))
			return NULL;
		return p + k;
	}
}

static void set(eng_jv *v, const char *p, const char *e)
{
	/* The first byte names the type: a string, an object, an array,
	 * true, false, null, else a number. */
	static const char first[] = "\"{[tfn", type[] = "soatfz";
	const char *k = strchr(first, *p);

	v->p = p;
	v->n = (size_t)(e - p);
	v->type = k && *p ? type[k - first] : 'n';
	if (v->type == 's') {
		v->p++;
		v->n -= 2;
	}
}

/* After a member or element that ends at ve: past the ',' and the space
 * after it, or NULL (the last one, or malformed). */
static const char *after_comma(const char *ve, const char *end)
{
	const char *p = ws(ve, end);

	return p < end && *p == ',' ? ws(p + 1, end) : NULL;
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
		if (!(p = after_comma(ve, end)))
			return -1;
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
		if (!(p = after_comma(ve, end)))
			return -1;
	}
}

int eng_jv_int(const eng_jv *v, int64_t *out)
{
	eng_jnum num;

	if (v->type != 'n' || eng_json_number((const unsigned char *)v->p, v->n, 0, &num) ||
	    num.end != v->n || !num.integral || num.big ||
	    num.mag > (uint64_t)INT64_MAX + (uint64_t)num.neg)
		return -1;
	*out = num.neg ? (int64_t)(0 - num.mag) : (int64_t)num.mag;
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
	const unsigned char *u = (const unsigned char *)v->p;
	size_t i = 0, o = 0;

	if (v->type != 's' || !cap)
		return -1;
	while (i < v->n) {
		char u8[4];
		int k = 1;
		u8[0] = v->p[i++];
		if (u8[0] == '\\' && (i >= v->n || (k = eng_json_escape(u, v->n, &i, 0, u8)) < 0))
			return -1;
		if (o + (size_t)k >= cap)
			break; /* cut to fit, as snprintf would */
		memcpy(out + o, u8, (size_t)k);
		o += (size_t)k;
	}
	out[o] = '\0';
	return 0;
}
