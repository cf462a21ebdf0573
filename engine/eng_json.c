/*
 * eng_json.c - edgelog_append_json: one JSON value to one msgpack object,
 * then appended through eng_append_raw (this file sits above the engine;
 * the engine knows nothing of JSON). Offers edgelog_append_json and
 * eng_json_to_msgpack (eng_internal.h).
 *
 * A strict RFC 8259 parser (UTF-8 checked, control characters refused, \u
 * escapes with surrogate pairs, \u0000 allowed) that writes msgpack as it
 * goes, in one pass over the text.
 *
 * Integers keep their full range: -2^63 .. 2^64-1 (msgpack has int64 and
 * uint64; 64-bit ids and hashes are common). One beyond it is an error that
 * names the field ("meta.ids[2]") and the line, never a silent double.
 * Object members keep their order; a repeated key is kept as given (RFC
 * 8259 leaves its meaning to the receiver).
 *
 * The lexical pieces (whitespace, literals, numbers, escapes) are
 * eng_jread.c's tokenizer, which the engine's own JSON reader uses too;
 * this file adds the structure, UTF-8 checks, messages and the msgpack.
 */
#include <errno.h>
#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_internal.h"
#include "seg.h"

#define JSON_MAX_DEPTH 256

typedef struct jp {
	const unsigned char *s;
	size_t n, i;
	seg_buf out; /* the msgpack written so far */
	seg_buf str; /* a decoded string */
	int depth;
	/* The path to the value being parsed, for messages: per level the key
	 * (an offset into s, the raw text between the quotes) or the index. */
	struct {
		size_t key_off, key_len; /* key_len == SIZE_MAX: array */
		size_t index;
	} path[JSON_MAX_DEPTH + 1];
	char err[200];
	size_t err_at;
} jp;

__attribute__((format(printf, 3, 4))) static int fail(jp *p, size_t at, const char *fmt, ...)
{
	va_list ap;

	if (!p->err[0]) {
		va_start(ap, fmt);
		vsnprintf(p->err, sizeof(p->err), fmt, ap);
		va_end(ap);
		p->err_at = at;
	}
	return -1;
}

static inline void ws(jp *p)
{
	/* No white space here (the usual case): one test, no call. */
	if (p->i < p->n && p->s[p->i] > ' ')
		return;
	p->i = eng_json_ws(p->s, p->n, p->i);
}

/* "meta.ids[2]" for the value at the current depth. */
static void path_text(const jp *p, char *out, size_t cap)
{
	size_t o = 0;
	int d;

	out[0] = '\0';
	for (d = 1; d <= p->depth && o + 1 < cap; d++) {
		int w;
		if (p->path[d].key_len == SIZE_MAX)
			w = snprintf(out + o, cap - o, "[%zu]", p->path[d].index);
		else
			w = snprintf(out + o, cap - o, "%s%.*s", o ? "." : "",
				     (int)(p->path[d].key_len > 64 ? 64 : p->path[d].key_len),
				     (const char *)p->s + p->path[d].key_off);
		if (w < 0)
			break;
		o += (size_t)w;
		if (o >= cap)
			o = cap - 1;
	}
}

/* The end of the run of plain bytes (printable ASCII other than '"' and
 * '\\') that starts at i: eight bytes a step while eight are left (a byte
 * is plain when it is below 0x80, at least 0x20, and neither quote nor
 * backslash; the bit tricks flag any byte that is not), then one by one. */
static size_t plain_run(const unsigned char *s, size_t i, size_t n)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;

	while (n - i >= 8) {
		uint64_t w, q, b;
		memcpy(&w, s + i, 8);
		q = w ^ (ones * '"');
		b = w ^ (ones * '\\');
		/* High bit of a byte set: that byte is 0x80 or above, below
		 * 0x20, '"' or '\\' (exact for the lowest such byte: a borrow
		 * only carries above a flagged byte). */
		w = (w | (w - ones * 0x20) | (q - ones) | (b - ones)) & highs;
		if (w) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			return i + ((size_t)__builtin_ctzll(w) >> 3);
#else
			break;
#endif
		}
		i += 8;
	}
	while (i < n && s[i] != '"' && s[i] != '\\' && s[i] >= 0x20 && s[i] < 0x80)
		i++;
	return i;
}

/* A string at p->i (the opening quote). *raw_off / *raw_len: the text
 * between the quotes. *val / *val_len: the decoded bytes, which are the
 * raw text itself when it holds no escape and no byte above 0x7f (then
 * p->str is not used), else p->str. */
static int string(jp *p, size_t *raw_off, size_t *raw_len, const char **val, size_t *val_len)
{
	size_t start = ++p->i;

	p->i = plain_run(p->s, p->i, p->n);
	if (p->i < p->n && p->s[p->i] == '"') {
		*raw_off = start;
		*raw_len = *val_len = p->i - start;
		*val = (const char *)p->s + start;
		p->i++;
		return 0;
	}
	p->str.len = 0;
	seg_buf_put(&p->str, p->s + start, p->i - start);
	for (;;) {
		size_t run = p->i;
		unsigned char c;
		/* Plain bytes in one go. */
		p->i = plain_run(p->s, p->i, p->n);
		seg_buf_put(&p->str, p->s + run, p->i - run);
		if (p->i >= p->n)
			return fail(p, p->i, "premature end of input in a string");
		c = p->s[p->i];
		if (c == '"') {
			*raw_off = start;
			*raw_len = p->i - start;
			*val = p->str.p;
			*val_len = p->str.len;
			p->i++;
			return p->str.oom ? fail(p, p->i, "out of memory") : 0;
		}
		if (c < 0x20)
			return fail(p, p->i, "control character 0x%02x in a string", c);
		if (c >= 0x80) {
			size_t l = seg_utf8_len(p->s + p->i, p->n - p->i);
			if (!l)
				return fail(p, p->i, "invalid UTF-8 in a string");
			seg_buf_put(&p->str, p->s + p->i, l);
			p->i += l;
			continue;
		}
		/* An escape. */
		if (++p->i >= p->n)
			return fail(p, p->i, "premature end of input in a string");
		{
			static const char *const why[] = {
				"",
				"invalid escape",
				"truncated \\u escape",
				"invalid \\u escape",
				"invalid Unicode escape (lone low surrogate)",
				"invalid Unicode escape (lone high surrogate)",
				"invalid Unicode surrogate pair",
			};
			char u8[4];
			int k = eng_json_escape(p->s, p->n, &p->i, 1, u8);
			if (k == -ENG_JESC_INVALID)
				return fail(p, p->i, "invalid escape '\\%c'", p->s[p->i]);
			if (k < 0)
				return fail(p, p->i, "%s", why[-k]);
			seg_buf_put(&p->str, u8, (size_t)k);
		}
	}
}

/* Powers of ten a double holds exactly. */
static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
				     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
				     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * The real number t[0..len) (well formed: eng_json_number said so) without
 * strtod, when that gives strtod's value: its digits, leading zeros aside,
 * make an integer of at most 2^53, and the power of ten that scales them is
 * within 10^-22 .. 10^22. Both are then exact doubles and one
 * multiplication or division, which IEEE 754 rounds correctly, is the
 * correctly rounded value (Clinger's fast path; it needs arithmetic in
 * double precision, not x87's extended one). 1 and *d, else 0.
 */
static int real_fast(const unsigned char *t, size_t len, double *d)
{
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
	size_t i = 0;
	uint64_t m = 0;
	int nd = 0, e10 = 0, frac = 0, neg = 0;

	if (t[0] == '-') {
		neg = 1;
		i++;
	}
	for (; i < len; i++) {
		unsigned c = t[i];
		if (c == '.') {
			frac = 1;
			continue;
		}
		if (c == 'e' || c == 'E')
			break;
		if (m || c != '0') {
			if (++nd > 16) /* 16 digits: below 2^53 ... checked below */
				return 0;
			m = m * 10 + (c - '0');
		}
		e10 -= frac;
	}
	if (i < len) { /* the exponent */
		int eneg = 0, ev = 0;
		i++;
		if (t[i] == '+' || t[i] == '-')
			eneg = t[i++] == '-';
		for (; i < len; i++) {
			ev = ev * 10 + (t[i] - '0');
			if (ev > 1000)
				return 0;
		}
		e10 += eneg ? -ev : ev;
	}
	if (m > (uint64_t)1 << 53 || e10 < -22 || e10 > 22)
		return 0;
	*d = e10 < 0 ? (double)m / pow10_exact[-e10] : (double)m * pow10_exact[e10];
	if (neg)
		*d = -*d;
	return 1;
#else
	(void)t;
	(void)len;
	(void)d;
	return 0;
#endif
}

static int number(jp *p)
{
	static const char *const why[] = {
		"",
		"invalid number",
		"invalid number (leading zero)",
		"invalid number (no digit after '.')",
		"invalid number (no digit in the exponent)",
	};
	size_t start = p->i;
	const unsigned char *s = p->s;
	eng_jnum num;
	int k = eng_json_number(s, p->n, start, &num);

	if (k)
		return fail(p, start, "%s", why[k]);
	p->i = num.end;
	if (num.integral) {
		/* -2^63 .. 2^64-1, the magnitude taken as the digits went. */
		if (num.big || (num.neg && num.mag > (uint64_t)INT64_MAX + 1))
			goto range;
		if (num.neg)
			seg_mp_int(&p->out, (int64_t)(0 - num.mag));
		else
			seg_mp_uint(&p->out, num.mag);
		return 0;
	}
	{
		double d;
		if (real_fast(s + start, p->i - start, &d)) {
			seg_mp_double(&p->out, d);
			return 0;
		}
	}
	{
		char buf[512];
		size_t len = p->i - start;
		double d;
		if (len >= sizeof(buf))
			return fail(p, start, "number too long (%zu characters)", len);
		memcpy(buf, s + start, len);
		buf[len] = '\0';
		errno = 0;
		d = strtod(buf, NULL);
		if (errno == ERANGE && (d > 1 || d < -1))
			return fail(p, start, "real number overflow (%s)", buf);
		seg_mp_double(&p->out, d);
		return 0;
	}
range : {
	char where[256];
	path_text(p, where, sizeof(where));
	return fail(p, start,
		    "integer %.*s%s %s%s%s is beyond the 64-bit range (-9223372036854775808 .. "
		    "18446744073709551615)",
		    (int)(p->i - start > 40 ? 40 : p->i - start), (const char *)s + start,
		    p->i - start > 40 ? "..." : "", where[0] ? "in field '" : "at the top level",
		    where, where[0] ? "'" : "");
}
}

/* Replace the msgpack container header reserved at `at` (5 bytes, the
 * largest) by the smallest one for n, moving what follows. */
static void fix_header(jp *p, size_t at, size_t n, int map)
{
	uint8_t h[5];
	size_t hl;
	char *b = p->out.p;

	if (p->out.oom) /* the header may not be there: reported at the end */
		return;
	if (n < 16) {
		h[0] = (uint8_t)((map ? 0x80 : 0x90) | n);
		hl = 1;
	} else if (n < 65536) {
		h[0] = map ? 0xde : 0xdc;
		h[1] = (uint8_t)(n >> 8);
		h[2] = (uint8_t)n;
		hl = 3;
	} else {
		h[0] = map ? 0xdf : 0xdd;
		h[1] = (uint8_t)(n >> 24);
		h[2] = (uint8_t)(n >> 16);
		h[3] = (uint8_t)(n >> 8);
		h[4] = (uint8_t)n;
		hl = 5;
	}
	if (hl < 5)
		memmove(b + at + hl, b + at + 5, p->out.len - at - 5);
	memcpy(b + at, h, hl);
	p->out.len -= 5 - hl;
}

static int value(jp *p);

static int container(jp *p, int map)
{
	size_t at = p->out.len, count = 0;
	const char hdr[5] = {0};

	if (p->depth >= JSON_MAX_DEPTH)
		return fail(p, p->i, "nested deeper than %d", JSON_MAX_DEPTH);
	p->i++;
	seg_buf_put(&p->out, hdr, 5);
	p->depth++;
	p->path[p->depth].key_len = map ? 0 : SIZE_MAX;
	p->path[p->depth].key_off = 0;
	p->path[p->depth].index = 0;
	ws(p);
	if (p->i < p->n && p->s[p->i] == (map ? '}' : ']')) {
		p->i++;
	} else {
		for (;;) {
			if (map) {
				size_t ko, kl, vl;
				const char *v;
				ws(p);
				if (p->i >= p->n || p->s[p->i] != '"')
					return fail(p, p->i, "string or '}' expected");
				if (string(p, &ko, &kl, &v, &vl))
					return -1;
				p->path[p->depth].key_off = ko;
				p->path[p->depth].key_len = kl;
				seg_mp_str(&p->out, v, vl);
				ws(p);
				if (p->i >= p->n || p->s[p->i] != ':')
					return fail(p, p->i, "':' expected");
				p->i++;
			} else {
				p->path[p->depth].index = count;
			}
			if (value(p))
				return -1;
			count++;
			ws(p);
			if (p->i < p->n && p->s[p->i] == ',') {
				p->i++;
				continue;
			}
			if (p->i < p->n && p->s[p->i] == (map ? '}' : ']')) {
				p->i++;
				break;
			}
			return fail(p, p->i, map ? "',' or '}' expected" : "',' or ']' expected");
		}
	}
	p->depth--;
	fix_header(p, at, count, map);
	return 0;
}

static int literal(jp *p)
{
	size_t len = eng_json_literal(p->s, p->n, p->i);

	if (!len)
		return fail(p, p->i, "invalid token");
	p->i += len;
	return 0;
}

static int value(jp *p)
{
	size_t ko, kl, vl;
	const char *v;

	ws(p);
	if (p->i >= p->n)
		return fail(p, p->i, "premature end of input");
	switch (p->s[p->i]) {
	case '{':
		return container(p, 1);
	case '[':
		return container(p, 0);
	case '"':
		if (string(p, &ko, &kl, &v, &vl))
			return -1;
		seg_mp_str(&p->out, v, vl);
		return 0;
	case 't':
	case 'f':
	case 'n': {
		unsigned char c = p->s[p->i];
		if (literal(p))
			return -1;
		if (c == 'n')
			seg_mp_nil(&p->out);
		else
			seg_mp_bool(&p->out, c == 't');
		return 0;
	}
	default:
		if (p->s[p->i] == '-' || (p->s[p->i] >= '0' && p->s[p->i] <= '9'))
			return number(p);
		return fail(p, p->i, "invalid token");
	}
}

int eng_json_to_msgpack(const char *json, size_t len, void **out, size_t *out_len, seg_err *e)
{
	jp *p;
	int rc;

	*out = NULL;
	*out_len = 0;
	if (len == 0)
		return seg_fail(e, EDGELOG_EINVAL, "invalid JSON: empty input");
	/* Not calloc: the path (6 KiB) is written level by level as the
	 * parse goes down, and zeroing it cost 6,500 instructions a call. */
	if (!(p = malloc(sizeof(*p))))
		return seg_fail(e, EDGELOG_ENOMEM, "out of memory");
	p->s = (const unsigned char *)json;
	p->n = len;
	p->i = 0;
	p->depth = 0;
	p->err[0] = '\0';
	p->err_at = 0;
	memset(&p->str, 0, sizeof(p->str));
	memset(&p->out, 0, sizeof(p->out));
	/* Room for the usual record at once: msgpack is about as long as
	 * its JSON text or shorter (it grows if not). */
	seg_buf_reserve(&p->out, len + 16);
	rc = value(p);
	if (!rc) {
		ws(p);
		if (p->i < p->n)
			rc = fail(p, p->i, "end of input expected");
	}
	if (!rc && (p->str.oom || p->out.oom))
		rc = fail(p, p->i, "out of memory");
	if (rc) {
		/* Line and column of the byte at fault, 1-based. */
		size_t k, line = 1, col = 1;
		for (k = 0; k < p->err_at && k < len; k++) {
			if (json[k] == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
		}
		rc = seg_fail(e, strstr(p->err, "out of memory") ? EDGELOG_ENOMEM : EDGELOG_EINVAL,
			      "invalid JSON at byte %zu (line %zu, column %zu): %s", p->err_at,
			      line, col, p->err);
		seg_buf_free(&p->out);
	} else {
		*out = p->out.p;
		*out_len = p->out.len;
	}
	seg_buf_free(&p->str);
	free(p);
	return rc;
}

int edgelog_append_json(edgelog *log, const char *json, size_t len, uint64_t *seq)
{
	void *mp = NULL;
	size_t mlen = 0;
	seg_err e;
	int rc;

	if (!log || (!json && len))
		return EDGELOG_EINVAL;
	rc = eng_json_to_msgpack(json, len, &mp, &mlen, &e);
	if (rc)
		return eng_set_msg(log, rc, "%s", e.msg);
	if (mlen > EDGELOG_MAX_RECORD) {
		free(mp);
		return eng_set_msg(
			log, EDGELOG_ETOOBIG,
			"record of %zu bytes (as msgpack) is larger than EDGELOG_MAX_RECORD", mlen);
	}
	rc = eng_append_raw(log, mp, mlen, seq);
	free(mp);
	return rc;
}
