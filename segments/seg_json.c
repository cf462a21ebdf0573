/*
 * seg_json.c - msgpack to JSON without allocation beyond the output.
 *
 * The input was validated by seg_mp_validate() when it was appended, but a
 * segment read from disk may hold anything a checksum let through, so this
 * walker checks every length against the buffer again and bounds its
 * recursion.
 */
#include "seg_json.h"
#include "seg_mphead.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 256

int seg_buf_reserve(seg_buf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->oom)
		return -1;
	if (b->len + n + 1 <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

void seg_buf_puts(seg_buf *b, const char *s)
{
	seg_buf_put(b, s, strlen(s));
}

void seg_buf_printf(seg_buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		seg_buf_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

void seg_buf_free(seg_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

size_t seg_utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len, i;
	unsigned cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates, beyond U+10FFFF. */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* 1 for bytes that go into a JSON string as they are. */
static const unsigned char
	plain[256] =
		{
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
			R16(0), R16(0), /* controls */
			1,      1,      0,      1,      1,      1,
			1,      1,      1,      1,      1,      1,
			1,      1,      1,      1, /* 0x20..0x2f: quote */
			R16(1), R16(1), 1,      1,      1,      1,
			1,      1,      1,      1,      1,      1,
			1,      1,      0,      1,      1,      1, /* 0x50..0x5f: '\\' */
			R16(1), R16(1), R16(0), R16(0), R16(0), R16(0),
			R16(0), R16(0), R16(0), R16(0) /* UTF-8: checked */
#undef R16
};

/* Nonzero when one of the 8 bytes of x is below 0x20, a quote, a
 * backslash or 0x80 and up: bytes that plain[] sends the slow way. The
 * "below n" test (x - n*ones) & ~x & highs is exact about whether any byte
 * qualifies, which is all that is asked. */
static inline uint64_t word_special(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	uint64_t q = x ^ (ones * '"'), bs = x ^ (ones * '\\');

	return (((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((bs - ones) & ~bs) | x) & highs;
}

/*
 * The output is written in place after one reservation: no byte of input
 * becomes more than 6 bytes of output (\u00XX, \ufffd), so 6n + 2 is
 * always enough. Runs of plain bytes, the common case, are found 8 bytes
 * at a time and copied as they are.
 */
void seg_json_string(seg_buf *out, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	char *o;

	if (n > (SIZE_MAX - 8) / 6) {
		out->oom = 1;
		return;
	}
	if (seg_buf_room(out, 6 * n + 2))
		return;
	o = out->p + out->len;
	*o++ = '"';
	while (i < n) {
		unsigned char c;
		size_t l;
		while (n - i >= 8) {
			uint64_t x;
			memcpy(&x, s + i, 8);
			if (word_special(x))
				break;
			memcpy(o, &x, 8);
			o += 8;
			i += 8;
		}
		while (i < n && plain[s[i]])
			*o++ = (char)s[i++];
		if (i == n)
			break;
		c = s[i];
		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = (char)c;
			i++;
		} else if (c < 0x20) {
			static const char hex[] = "0123456789abcdef";
			*o++ = '\\';
			if (c == '\n') {
				*o++ = 'n';
			} else if (c == '\r') {
				*o++ = 'r';
			} else if (c == '\t') {
				*o++ = 't';
			} else {
				memcpy(o, "u00", 3);
				o[3] = hex[c >> 4];
				o[4] = hex[c & 15];
				o += 5;
			}
			i++;
		} else if ((l = seg_utf8_len(s + i, n - i)) != 0) {
			memcpy(o, s + i, l);
			o += l;
			i += l;
		} else {
			memcpy(o, "\\ufffd", 6);
			o += 6;
			i++;
		}
	}
	*o++ = '"';
	out->len = (size_t)(o - out->p);
	out->p[out->len] = '\0';
}

static void base64(seg_buf *out, const unsigned char *s, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;
	char q[4];

	seg_buf_put(out, "\"", 1);
	for (i = 0; i + 2 < n; i += 3) {
		q[0] = tab[s[i] >> 2];
		q[1] = tab[(s[i] & 3) << 4 | s[i + 1] >> 4];
		q[2] = tab[(s[i + 1] & 15) << 2 | s[i + 2] >> 6];
		q[3] = tab[s[i + 2] & 63];
		seg_buf_put(out, q, 4);
	}
	if (i < n) {
		q[0] = tab[s[i] >> 2];
		if (i + 1 < n) {
			q[1] = tab[(s[i] & 3) << 4 | s[i + 1] >> 4];
			q[2] = tab[(s[i + 1] & 15) << 2];
		} else {
			q[1] = tab[(s[i] & 3) << 4];
			q[2] = '=';
		}
		q[3] = '=';
		seg_buf_put(out, q, 4);
	}
	seg_buf_put(out, "\"", 1);
}

typedef struct mp_in {
	const unsigned char *p;
	size_t len, pos;
} mp_in;

static int need(mp_in *in, size_t n)
{
	return n <= in->len - in->pos ? 0 : -1;
}

/* The n-byte (1, 2, 4 or 8) big-endian number at the read position;
 * need(in, n) has been checked. */
static uint64_t be(mp_in *in, unsigned n)
{
	const unsigned char *p = in->p + in->pos;
	uint64_t v;

	in->pos += n;
	switch (n) {
	case 1:
		return p[0];
	case 2:
		return (uint64_t)p[0] << 8 | p[1];
	case 4:
		return (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
	default:
		memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		v = __builtin_bswap64(v);
#elif !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_BIG_ENDIAN__
		v = 0;
		for (unsigned i = 0; i < 8; i++)
			v = v << 8 | p[i];
#endif
		return v;
	}
}

void seg_buf_u64(seg_buf *out, uint64_t v, int neg)
{
	char tmp[24];
	int i = (int)sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (neg)
		tmp[--i] = '-';
	seg_buf_put(out, tmp + i, sizeof(tmp) - (size_t)i);
}

void seg_buf_i64(seg_buf *out, int64_t v)
{
	seg_buf_u64(out, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, v < 0);
}

/* x (>= 0) rounded to the nearest integer, ties to even: nearbyint() under
 * the default rounding mode, without libm. Below 2^52, adding and taking
 * away 2^52 leaves x rounded by the FPU's own round-to-nearest-even (where
 * doubles are evaluated as doubles: FLT_EVAL_METHOD 0); from 2^52 on every
 * double is an integer. Elsewhere the cut to uint64_t and the difference
 * are exact below 2^53. */
static double round_even(double x)
{
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
	if (!(x < 4503599627370496.0))
		return x;
	return (x + 4503599627370496.0) - 4503599627370496.0;
#else
	uint64_t t;
	double f;

	if (!(x < 9007199254740992.0))
		return x;
	t = (uint64_t)x;
	f = x - (double)t;
	if (f > 0.5 || (f == 0.5 && (t & 1)))
		t++;
	return (double)t;
#endif
}

#if defined(__SIZEOF_INT128__)
/* 17 significant digits of a (1e-7 <= a < 1e15), correctly rounded (ties
 * to even, as glibc's printf), as the integer q (10^16 <= q < 10^17) and
 * the decimal exponent x of its first digit: a ~ q * 10^(x - 16). With
 * a = M * 2^e (M < 2^53) and k = 16 - x, a * 10^k = M * 5^k * 2^(k + e):
 * M * 5^k fits 107 bits for k <= 23, so the product is exact in 128 bits
 * and the shift's remainder decides the rounding. */
static int digits17(double a, uint64_t *q, int *x)
{
	static const uint64_t pow5[] = {1ull,
					5ull,
					25ull,
					125ull,
					625ull,
					3125ull,
					15625ull,
					78125ull,
					390625ull,
					1953125ull,
					9765625ull,
					48828125ull,
					244140625ull,
					1220703125ull,
					6103515625ull,
					30517578125ull,
					152587890625ull,
					762939453125ull,
					3814697265625ull,
					19073486328125ull,
					95367431640625ull,
					476837158203125ull,
					2384185791015625ull,
					11920928955078125ull,
					59604644775390625ull};
	const uint64_t lo = 10000000000000000ull, hi = 100000000000000000ull;
	uint64_t bits, m;
	int e, xe, tries;

	memcpy(&bits, &a, 8);
	if (!(bits >> 52)) /* zero or subnormal: not in the range */
		return -1;
	m = (bits & ((1ull << 52) - 1)) | 1ull << 52;
	e = (int)(bits >> 52) - 1075;
	/* floor(log10(2^(e+52))), within one of x: corrected below */
	xe = ((e + 52) * 78913) >> 18;
	for (tries = 0; tries < 3; tries++) {
		int k = 16 - xe, s;
		unsigned __int128 p;
		uint64_t r;
		if (k < 0 || k > 24)
			return -1;
		p = (unsigned __int128)m * pow5[k];
		s = k + e;
		if (s >= 0) {
			if (s > 10)
				return -1;
			r = (uint64_t)(p << s);
		} else {
			unsigned sh = (unsigned)-s;
			unsigned __int128 rem, half;
			if (sh >= 120)
				return -1;
			r = (uint64_t)(p >> sh);
			rem = p & (((unsigned __int128)1 << sh) - 1);
			half = (unsigned __int128)1 << (sh - 1);
			if (rem > half || (rem == half && (r & 1)))
				r++;
		}
		if (r >= hi) {
			if (r == hi) { /* rounded up to the next power of ten */
				*q = lo;
				*x = xe + 1;
				return 0;
			}
			xe++;
		} else if (r < lo) {
			xe--;
		} else {
			*q = r;
			*x = xe;
			return 0;
		}
	}
	return -1;
}
#endif

/* What snprintf(out, 40, "%.17g", d) writes, without printf for the
 * values predictions are made of (1e-7 <= |d| < 1e15): the 17 digits
 * are computed exactly in 128-bit integers. Returns the length. */
size_t seg_fmt_g17(char *out, double d)
{
#if defined(__SIZEOF_INT128__)
	double a = d < 0 ? -d : d;
	uint64_t q;
	int x;

	if (a >= 1e-7 && a < 1e15 && digits17(a, &q, &x) == 0) {
		char dig[17];
		int nd = 17, i;
		char *o = out;
		for (i = 16; i >= 0; i--) {
			dig[i] = (char)('0' + q % 10);
			q /= 10;
		}
		while (nd > 1 && dig[nd - 1] == '0')
			nd--; /* %g drops trailing zeros */
		if (signbit(d))
			*o++ = '-';
		if (x < -4) {
			*o++ = dig[0];
			if (nd > 1) {
				*o++ = '.';
				memcpy(o, dig + 1, (size_t)nd - 1);
				o += nd - 1;
			}
			*o++ = 'e';
			*o++ = '-';
			*o++ = (char)('0' + (-x) / 10);
			*o++ = (char)('0' + (-x) % 10);
		} else if (x >= 0) {
			memcpy(o, dig, (size_t)x + 1);
			o += x + 1;
			if (nd > x + 1) {
				*o++ = '.';
				memcpy(o, dig + x + 1, (size_t)(nd - x - 1));
				o += nd - x - 1;
			}
		} else {
			*o++ = '0';
			*o++ = '.';
			for (i = 0; i < -x - 1; i++)
				*o++ = '0';
			memcpy(o, dig, (size_t)nd);
			o += nd;
		}
		*o = '\0';
		return (size_t)(o - out);
	}
#endif
	return (size_t)snprintf(out, 40, "%.17g", d);
}

/*
 * The shortest decimal that reads back as the same double. Fast path: with
 * k decimals, m = round(|d| * 10^k); if m < 2^53 and 10^k <= 10^22 both
 * are exact doubles, so m / 10^k is correctly rounded (Clinger's fast path)
 * and comparing it with d proves the digits exact. The smallest such k is
 * the shortest fixed notation. Anything else goes through printf/strtod.
 */
static void put_double(seg_buf *out, double d)
{
	static const double p10[] = {1e0, 1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,
				     1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17};
	char tmp[40];
	double a;
	int k;

	if (isnan(d) || isinf(d)) {
		seg_buf_put(out, "null", 4);
		return;
	}
	a = d < 0 ? -d : d;
	if (a >= 1e-7 && a < 1e15) {
		for (k = 0; k < 18; k++) {
			double m = round_even(a * p10[k]);
			if (m >= 9007199254740992.0) {
				/* Needs 16 or 17 digits: 17 are always exact, and one
				 * printf is cheaper than searching for the shortest. */
				size_t l = seg_fmt_g17(tmp, d);
				if (!memchr(tmp, '.', l) && !memchr(tmp, 'e', l))
					memcpy(tmp + l, ".0", 3), l += 2;
				seg_buf_put(out, tmp, l);
				return;
			}
			if (m / p10[k] == a) {
				/* sign, integer part, '.', k decimals (at least
				 * one): at most 1 + 15 + 1 + 17 bytes */
				uint64_t mi = (uint64_t)m, ip = mi, fp = 0;
				char *e = tmp + sizeof(tmp), *q = e;
				int i;
				if (k) {
					uint64_t pk = (uint64_t)p10[k];
					ip = mi / pk;
					fp = mi % pk;
					for (i = 0; i < k; i++) {
						*--q = (char)('0' + fp % 10);
						fp /= 10;
					}
				} else {
					*--q = '0';
				}
				*--q = '.';
				do {
					*--q = (char)('0' + ip % 10);
					ip /= 10;
				} while (ip);
				if (signbit(d))
					*--q = '-';
				seg_buf_put(out, q, (size_t)(e - q));
				return;
			}
		}
	}
	/* The shortest of 15..17 significant digits that reads back as the
	 * same double (17 always does). */
	snprintf(tmp, sizeof(tmp), "%.15g", d);
	if (strtod(tmp, NULL) != d) {
		snprintf(tmp, sizeof(tmp), "%.16g", d);
		if (strtod(tmp, NULL) != d)
			snprintf(tmp, sizeof(tmp), "%.17g", d);
	}
	if (!strpbrk(tmp, ".eEn"))
		strcat(tmp, ".0");
	seg_buf_puts(out, tmp);
}

static int walk(mp_in *in, seg_buf *out, int depth, int in_key);

/*
 * Emit one object as a map key. A string is written as it is. Anything else
 * becomes a JSON string holding its "key text": its compact JSON text, in
 * which any map key nested inside it that is not a string is written as its
 * own key text, bare (no quotes added, no escaping of its own). So the key
 * text is built once and escaped once, whatever the nesting: every input
 * byte is turned into text once and escaped at most once, which keeps the
 * output linear in the input (SEG_JSON_MAX_EXPANSION). Escaping per level
 * instead doubles the backslashes at each level: 40 nested map keys in 82
 * bytes made terabytes.
 */
static int walk_key(mp_in *in, seg_buf *out, int depth, int in_key)
{
	unsigned char b;

	if (need(in, 1))
		return -1;
	b = in->p[in->pos];
	if (seg_mp_types[b].kind == SEG_MP_STR || in_key)
		return walk(in, out, depth, in_key);
	{
		seg_buf tmp = {0};
		int r = walk(in, &tmp, depth, 1);
		if (!r)
			seg_json_string(out, tmp.p ? tmp.p : "", tmp.len);
		if (tmp.oom)
			out->oom = 1;
		seg_buf_free(&tmp);
		return r;
	}
}

static int walk(mp_in *in, seg_buf *out, int depth, int in_key)
{
	unsigned char b;
	uint64_t n = 0, i;
	seg_mp_hdr h;
	unsigned hs;
	char tmp[32];

	if (depth > JSON_MAX_DEPTH || need(in, 1))
		return -1;
	b = in->p[in->pos];
	hs = seg_mp_head(in->p + in->pos, in->len - in->pos, &h);
	if (!hs)
		return -1;
	in->pos += hs;
	n = h.n;
	switch (h.kind) {
	case SEG_MP_NIL:
		seg_buf_put(out, "null", 4);
		return 0;
	case SEG_MP_FALSE:
		seg_buf_put(out, "false", 5);
		return 0;
	case SEG_MP_TRUE:
		seg_buf_put(out, "true", 4);
		return 0;
	case SEG_MP_UINT:
		if (b <= 0x7f) { /* positive fixint */
			seg_buf_u64(out, b, 0);
			return 0;
		}
		if (need(in, (size_t)n))
			return -1;
		seg_buf_u64(out, be(in, (unsigned)n), 0);
		return 0;
	case SEG_MP_INT: {
		uint64_t u;
		int64_t v;
		if (b >= 0xe0) { /* negative fixint */
			seg_buf_i64(out, (int8_t)b);
			return 0;
		}
		if (need(in, (size_t)n))
			return -1;
		u = be(in, (unsigned)n);
		if (n < 8 && (u >> (n * 8 - 1)))
			u |= ~0ull << (n * 8); /* sign-extend */
		memcpy(&v, &u, 8);
		seg_buf_i64(out, v);
		return 0;
	}
	case SEG_MP_F32:
	case SEG_MP_F64: { /* n: 4 or 8 bytes */
		uint64_t u;
		double d;
		if (need(in, (size_t)n))
			return -1;
		u = be(in, (unsigned)n);
		if (n == 4) {
			uint32_t w = (uint32_t)u;
			float f;
			memcpy(&f, &w, 4);
			d = f;
		} else {
			memcpy(&d, &u, 8);
		}
		put_double(out, d);
		return 0;
	}
	case SEG_MP_BIN:
		if (need(in, (size_t)n))
			return -1;
		base64(out, in->p + in->pos, (size_t)n);
		in->pos += (size_t)n;
		return 0;
	case SEG_MP_EXT: {
		/* ext: {"ext": type, "data": base64}; n counts the type byte */
		int8_t type;
		if (need(in, (size_t)n))
			return -1;
		type = (int8_t)in->p[in->pos++];
		snprintf(tmp, sizeof(tmp), "{\"ext\":%d,\"data\":", type);
		seg_buf_puts(out, tmp);
		base64(out, in->p + in->pos, (size_t)n - 1);
		seg_buf_put(out, "}", 1);
		in->pos += (size_t)n - 1;
		return 0;
	}
	case SEG_MP_STR:
		goto str;
	case SEG_MP_ARRAY:
		goto array;
	case SEG_MP_MAP:
		goto map;
	default:
		return -1;
	}
str:
	if (need(in, (size_t)n))
		return -1;
	seg_json_string(out, (const char *)in->p + in->pos, (size_t)n);
	in->pos += (size_t)n;
	return 0;
array:
	if (n > in->len - in->pos)
		return -1; /* each element takes at least one byte */
	seg_buf_put(out, "[", 1);
	for (i = 0; i < n; i++) {
		if (i)
			seg_buf_put(out, ",", 1);
		if (walk(in, out, depth + 1, in_key))
			return -1;
	}
	seg_buf_put(out, "]", 1);
	return 0;
map:
	if (n > (in->len - in->pos) / 2)
		return -1;
	seg_buf_put(out, "{", 1);
	for (i = 0; i < n; i++) {
		if (i)
			seg_buf_put(out, ",", 1);
		if (walk_key(in, out, depth + 1, in_key))
			return -1;
		seg_buf_put(out, ":", 1);
		if (walk(in, out, depth + 1, in_key))
			return -1;
	}
	seg_buf_put(out, "}", 1);
	return 0;
}

int seg_mp_to_json(const void *data, size_t len, seg_buf *out)
{
	mp_in in = {data, len, 0};

	if (walk(&in, out, 0, 0) || in.pos != len)
		return -1;
	return out->oom ? -1 : 0;
}
