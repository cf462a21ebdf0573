/*
 * tool_sink_body.c - request bodies for `edgelog sink`: gunzip under a cap,
 * then split and validate the records and render each as the line the
 * store appends.
 *
 * Every format ends as JSON text, so what is stored does not depend on the
 * wire format: an NDJSON line and a JSON array element as sent, a msgpack
 * record through edgelog_record_json (the converter the uploader uses for its
 * JSON bodies). A record is first read by the fast path, scan_record (the
 * strict validator of tool_sink_json.c; data is copied as sent, minus
 * insignificant whitespace); anything it does not take goes to jansson,
 * which either accepts it (stored as json_dump writes it) or names the
 * record and the field at fault. msgpack records are split with
 * edgelog_msgpack_measure, which checks every length and count against the
 * bytes present and allows the engine's nesting depth (256); msgpack-c's unpacker
 * stops at 32 levels and allocates by declared counts before it has seen
 * the elements.
 *
 * Nothing here touches shared state: it runs in the connection's thread.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tool_sink.h"

/* JSON_PARSER_MAX_DEPTH (2048) bounds jansson's recursion; the msgpack
 * side is bounded by edgelog_msgpack_measure (EDGELOG_MSGPACK_DEPTH). */
#define BODY_MAX_PATH 256

static int bad(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return TOOL_SINK_EBAD;
}

static int nomem(char *err, size_t n)
{
	snprintf(err, n, "out of memory");
	return TOOL_SINK_ENOMEM;
}

void tool_sink_batch_free(tool_sink_batch *b)
{
	tool_bytes_free(&b->lines);
	free(b->recs);
	memset(b, 0, sizeof(*b));
}

int tool_sink_gunzip(const void *in, size_t n, size_t cap, tool_bytes *out, char *err,
		     size_t errlen)
{
	const unsigned char *p = in;
	z_stream z;
	size_t hint = 64 * 1024;
	int r, rc = 0;

	memset(&z, 0, sizeof(z));
	out->len = 0;
	/* 16 + MAX_WBITS: gzip wrapper only. */
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return nomem(err, errlen);
	/* The trailer's ISIZE (size mod 2^32 of the last member) is a hint
	 * for the first allocation; never trusted beyond the cap. */
	if (n >= 18) {
		size_t isize = (size_t)p[n - 4] | (size_t)p[n - 3] << 8 | (size_t)p[n - 2] << 16 |
			       (size_t)p[n - 1] << 24;
		if (isize > hint)
			hint = isize < cap ? isize : cap;
	}
	z.next_in = (Bytef *)p;
	z.avail_in = (uInt)n; /* n <= --max-body <= 1 GiB */
	for (;;) {
		size_t room;
		if (tool_bytes_reserve(out, out->len ? out->cap : hint)) {
			rc = nomem(err, errlen);
			break;
		}
		/* One byte past the cap tells "too big" from "exactly the cap". */
		room = out->cap - out->len - 1;
		if (room > cap - out->len + 1)
			room = cap - out->len + 1;
		z.next_out = (Bytef *)out->p + out->len;
		z.avail_out = (uInt)room;
		r = inflate(&z, Z_NO_FLUSH);
		out->len += room - z.avail_out;
		if (out->len > cap) {
			rc = TOOL_SINK_ETOOBIG;
			snprintf(err, errlen, "body inflates to more than %zu bytes (--max-body)",
				 cap);
			break;
		}
		if (r == Z_STREAM_END) {
			if (z.avail_in == 0)
				break;
			/* Another gzip member follows (concatenated gzip is valid). */
			if (inflateReset(&z) != Z_OK) {
				rc = nomem(err, errlen);
				break;
			}
			continue;
		}
		if (r == Z_OK || (r == Z_BUF_ERROR && z.avail_in > 0 && z.avail_out == 0))
			continue;
		if (r == Z_BUF_ERROR) {
			rc = bad(err, errlen, "truncated gzip body (after %zu bytes)", n);
			break;
		}
		if (r == Z_MEM_ERROR) {
			rc = nomem(err, errlen);
			break;
		}
		rc = bad(err, errlen, "bad gzip body at byte %lu: %s", (unsigned long)z.total_in,
			 z.msg ? z.msg : "invalid data");
		break;
	}
	inflateEnd(&z);
	if (out->p)
		out->p[out->len] = '\0';
	return rc;
}

/* ------------------------------------------------------------------------
 * --reject-if matching
 */

static int value_matches(const json_t *v, const char *want)
{
	char num[64], *end;
	double d;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return json_string_length(v) == strlen(want) && !strcmp(json_string_value(v), want);
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return !strcmp(num, want);
	case JSON_REAL:
		d = strtod(want, &end);
		return *want && !*end && d == json_real_value(v);
	case JSON_TRUE:
		return !strcmp(want, "true");
	case JSON_FALSE:
		return !strcmp(want, "false");
	case JSON_NULL:
		return !strcmp(want, "null");
	default:
		return 0;
	}
}

/* data.PATH == VALUE, PATH dotted ("meta.site"). */
static int rule_matches(const json_t *data, const tool_sink_rule *rule)
{
	const char *p = rule->path;
	char key[BODY_MAX_PATH];

	while (data) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		if (!json_is_object(data) || len >= sizeof(key))
			return 0;
		memcpy(key, p, len);
		key[len] = '\0';
		data = json_object_get(data, key);
		if (!dot)
			return data && value_matches(data, rule->value);
		p = dot + 1;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * The fast path
 */

static size_t skip_ws(const char *s, size_t pos, size_t len)
{
	while (pos < len && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\r' || s[pos] == '\n'))
		pos++;
	return pos;
}

/* Digits only, at most UINT64_MAX. */
static int token_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 20)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* An integer token within int64. */
static int token_i64(const char *s, size_t n)
{
	uint64_t v;
	int neg = n && s[0] == '-';

	if (token_u64(s + neg, n - (size_t)neg, &v))
		return -1;
	return v > (uint64_t)INT64_MAX + (uint64_t)neg ? -1 : 0;
}

/* Undo the last record appended to b. */
static void drop_last(tool_sink_batch *b)
{
	b->n--;
	b->lines.len = b->recs[b->n].line_off;
}

static int grow(tool_sink_batch *b, char *err, size_t errlen)
{
	if (b->max_lines && b->lines.len > b->max_lines) {
		snprintf(err, errlen, "the records take more than %zu bytes once stored",
			 b->max_lines);
		return TOOL_SINK_ETOOBIG;
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		tool_sink_rec *p = realloc(b->recs, cap * sizeof(*p));
		if (!p)
			return nomem(err, errlen);
		b->recs = p;
		b->cap = cap;
	}
	return 0;
}

static void check_rules(json_t *data, const tool_sink_rule *rules, size_t nrules,
			tool_sink_batch *b, uint64_t seq)
{
	size_t i;

	for (i = 0; i < nrules && !b->rejected; i++)
		if (rule_matches(data, &rules[i])) {
			b->rejected = 1;
			b->reject_seq = seq;
		}
}

/*
 * The record at s[pos] as an object holding device_id (a string), seq (an
 * unsigned integer), ts (an integer) and data, each once, in any order,
 * other keys skipped. 0: appended to b, *end past its '}'. 1: not taken
 * (malformed, or unusual: a key with escapes, a repeated field), for
 * jansson to judge. Or TOOL_SINK_ENOMEM.
 */
static int scan_record(const char *s, size_t len, size_t pos, size_t *end,
		       const tool_sink_rule *rules, size_t nrules, tool_sink_batch *b, char *err,
		       size_t errlen)
{
	enum {
		DEV,
		SEQ,
		TS,
		DATA
	};
	static const char *const names[] = {"device_id", "seq", "ts", "data"};
	static const size_t lens[] = {9, 3, 2, 4};
	size_t a[4] = {0}, z[4] = {0}, i;
	int seen = 0, data_ws = 0, dev_esc = 0, rc;
	tool_sink_rec *r;
	uint64_t seq;

	if (pos >= len || s[pos] != '{')
		return 1;
	pos = skip_ws(s, pos + 1, len);
	for (;;) {
		size_t ka = pos, va;
		int which = -1, esc = 0, vws = 0;
		if (tool_sink_json_string(s, len, &pos, &esc))
			return 1;
		for (i = 0; i < 4 && !esc; i++)
			if (pos - ka - 2 == lens[i] && !memcmp(s + ka + 1, names[i], lens[i]))
				which = (int)i;
		pos = skip_ws(s, pos, len);
		if (pos >= len || s[pos] != ':')
			return 1;
		va = pos = skip_ws(s, pos + 1, len);
		if (which == DEV ? tool_sink_json_string(s, len, &pos, &dev_esc) :
				   tool_sink_json_skip(s, len, &pos, &vws))
			return 1;
		if (which >= 0) {
			if (seen & (1 << which))
				return 1;
			seen |= 1 << which;
			a[which] = va;
			z[which] = pos;
			if (which == DATA)
				data_ws = vws;
		}
		pos = skip_ws(s, pos, len);
		if (pos < len && s[pos] == ',') {
			pos = skip_ws(s, pos + 1, len);
			continue;
		}
		if (pos < len && s[pos] == '}')
			break;
		return 1;
	}
	if (seen != 15 || token_u64(s + a[SEQ], z[SEQ] - a[SEQ], &seq) ||
	    token_i64(s + a[TS], z[TS] - a[TS]))
		return 1;

	if ((rc = grow(b, err, errlen)))
		return rc;
	r = &b->recs[b->n];
	memset(r, 0, sizeof(*r));
	r->seq = seq;
	r->line_off = b->lines.len;
	tool_bytes_puts(&b->lines, "{\"device_id\":");
	r->key_off = b->lines.len;
	if (dev_esc) {
		/* The dedupe key is the literal as tool_bytes_json_string writes it,
		 * whatever escapes the client chose. */
		json_t *str = json_loadb(s + a[DEV], z[DEV] - a[DEV], JSON_DECODE_ANY, NULL);
		if (!json_is_string(str)) {
			json_decref(str);
			b->lines.len = r->line_off;
			return 1;
		}
		tool_bytes_json_string(&b->lines, json_string_value(str), json_string_length(str));
		json_decref(str);
	} else {
		tool_bytes_put(&b->lines, s + a[DEV], z[DEV] - a[DEV]);
	}
	r->key_len = b->lines.len - r->key_off;
	tool_bytes_puts(&b->lines, ",\"seq\":");
	tool_bytes_put(&b->lines, s + a[SEQ], z[SEQ] - a[SEQ]);
	tool_bytes_puts(&b->lines, ",\"ts\":");
	if (z[TS] - a[TS] == 2 && s[a[TS]] == '-' && s[a[TS] + 1] == '0')
		tool_bytes_puts(&b->lines, "0");
	else
		tool_bytes_put(&b->lines, s + a[TS], z[TS] - a[TS]);
	tool_bytes_puts(&b->lines, ",\"data\":");
	i = b->lines.len;
	if (data_ws)
		tool_sink_json_minify(s + a[DATA], z[DATA] - a[DATA], &b->lines);
	else
		tool_bytes_put(&b->lines, s + a[DATA], z[DATA] - a[DATA]);
	tool_bytes_put(&b->lines, "}\n", 2);
	if (b->lines.oom)
		return nomem(err, errlen);
	r->line_len = b->lines.len - r->line_off;
	b->n++;
	if (nrules) {
		/* Only with --reject-if: a tree of data, to look into. */
		json_t *data = json_loadb(b->lines.p + i, r->line_len - 2 - (i - r->line_off),
					  JSON_DECODE_ANY, NULL);
		check_rules(data, rules, nrules, b, seq);
		json_decref(data);
	}
	*end = pos + 1;
	return 0;
}

/* ------------------------------------------------------------------------
 * The jansson path: records the fast path leaves, and every error message
 */

static int put_cb(const char *s, size_t n, void *payload)
{
	tool_bytes *b = payload;
	tool_bytes_put(b, s, n);
	return b->oom ? -1 : 0;
}

/* Validate one record and render its line into b. what: "JSON object" or
 * "msgpack map", for messages. */
static int add_record(json_t *rec, size_t idx, const char *what, const tool_sink_rule *rules,
		      size_t nrules, tool_sink_batch *b, char *err, size_t errlen)
{
	json_t *dev, *seq, *ts, *data;
	tool_sink_rec *r;
	int rc;

	if (!json_is_object(rec))
		return bad(err, errlen, "record %zu: not a %s", idx, what);
	if (!(dev = json_object_get(rec, "device_id")))
		return bad(err, errlen, "record %zu: missing field 'device_id'", idx);
	if (!json_is_string(dev))
		return bad(err, errlen, "record %zu: field 'device_id' must be a string", idx);
	if (!(seq = json_object_get(rec, "seq")))
		return bad(err, errlen, "record %zu: missing field 'seq'", idx);
	if (!json_is_integer(seq) || json_integer_value(seq) < 0)
		return bad(err, errlen, "record %zu: field 'seq' must be an unsigned integer", idx);
	if (!(ts = json_object_get(rec, "ts")))
		return bad(err, errlen, "record %zu: missing field 'ts'", idx);
	if (!json_is_integer(ts))
		return bad(err, errlen, "record %zu: field 'ts' must be an integer", idx);
	if (!(data = json_object_get(rec, "data")))
		return bad(err, errlen, "record %zu: missing field 'data'", idx);

	if ((rc = grow(b, err, errlen)))
		return rc;
	r = &b->recs[b->n];
	memset(r, 0, sizeof(*r));
	r->seq = (uint64_t)json_integer_value(seq);
	r->line_off = b->lines.len;
	tool_bytes_puts(&b->lines, "{\"device_id\":");
	r->key_off = b->lines.len;
	tool_bytes_json_string(&b->lines, json_string_value(dev), json_string_length(dev));
	r->key_len = b->lines.len - r->key_off;
	tool_bytes_printf(&b->lines, ",\"seq\":%llu,\"ts\":%" JSON_INTEGER_FORMAT ",\"data\":",
			  (unsigned long long)r->seq, json_integer_value(ts));
	if (json_dump_callback(data, put_cb, &b->lines, JSON_COMPACT | JSON_ENCODE_ANY) != 0 &&
	    !b->lines.oom)
		return bad(err, errlen, "record %zu: field 'data' cannot be written as JSON", idx);
	tool_bytes_put(&b->lines, "}\n", 2);
	if (b->lines.oom)
		return nomem(err, errlen);
	r->line_len = b->lines.len - r->line_off;
	b->n++;
	check_rules(data, rules, nrules, b, r->seq);
	return 0;
}

/* ------------------------------------------------------------------------
 * Bodies
 */

static int parse_ndjson(const char *body, size_t len, const tool_sink_rule *rules, size_t nrules,
			tool_sink_batch *b, char *err, size_t errlen)
{
	size_t pos = 0, idx = 0, line = 0;

	while (pos < len) {
		const char *nl = memchr(body + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - body) : len;
		line++;
		if (skip_ws(body, pos, end) < end) {
			json_error_t je;
			json_t *rec;
			size_t stop;
			int rc = scan_record(body, end, skip_ws(body, pos, end), &stop, rules,
					     nrules, b, err, errlen);
			if (rc == 0 && skip_ws(body, stop, end) == end) {
				idx++;
				pos = end + 1;
				continue;
			}
			if (rc == 0)
				drop_last(b);
			else if (rc < 0)
				return rc;
			rec = json_loadb(body + pos, end - pos, 0, &je);
			if (!rec)
				return bad(err, errlen,
					   "record %zu (line %zu): invalid JSON: %s (column %d)",
					   idx, line, je.text, je.column);
			rc = add_record(rec, idx, "JSON object", rules, nrules, b, err, errlen);
			json_decref(rec);
			if (rc)
				return rc;
			idx++;
		}
		pos = end + 1;
	}
	return 0;
}

/* One array, read an element at a time (for jansson, JSON_DISABLE_EOF_CHECK
 * stops after the element) so memory holds at most one record's tree. */
static int parse_array(const char *body, size_t len, const tool_sink_rule *rules, size_t nrules,
		       tool_sink_batch *b, char *err, size_t errlen)
{
	size_t pos = skip_ws(body, 0, len), idx;

	if (pos == len || body[pos] != '[')
		return bad(err, errlen, "body: not a JSON array of records");
	pos = skip_ws(body, pos + 1, len);
	if (pos < len && body[pos] == ']') {
		pos++;
	} else {
		for (idx = 0;; idx++) {
			json_error_t je;
			json_t *rec;
			size_t stop;
			int rc;
			if (pos >= len)
				return bad(err, errlen, "record %zu: body ends inside the array",
					   idx);
			if (body[pos] != '{')
				return bad(err, errlen, "record %zu: not a JSON object", idx);
			rc = scan_record(body, len, pos, &stop, rules, nrules, b, err, errlen);
			if (rc < 0)
				return rc;
			if (rc == 0) {
				pos = stop;
				goto next;
			}
			rec = json_loadb(body + pos, len - pos, JSON_DISABLE_EOF_CHECK, &je);
			if (!rec)
				return bad(err, errlen, "record %zu: invalid JSON: %s (byte %zu)",
					   idx, je.text,
					   pos + (size_t)(je.position > 0 ? je.position : 0));
			pos += (size_t)je.position;
			rc = add_record(rec, idx, "JSON object", rules, nrules, b, err, errlen);
			json_decref(rec);
			if (rc)
				return rc;
next:
			pos = skip_ws(body, pos, len);
			if (pos < len && body[pos] == ',') {
				pos = skip_ws(body, pos + 1, len);
				continue;
			}
			if (pos < len && body[pos] == ']') {
				pos++;
				break;
			}
			return bad(err, errlen, "after record %zu: ',' or ']' expected (byte %zu)",
				   idx, pos);
		}
	}
	if (skip_ws(body, pos, len) != len)
		return bad(err, errlen, "data after the JSON array (byte %zu)", pos);
	return 0;
}

static int parse_msgpack(const char *body, size_t len, const tool_sink_rule *rules, size_t nrules,
			 tool_sink_batch *b, char *err, size_t errlen)
{
	tool_bytes text = {0};
	size_t pos = 0, idx;
	int rc = 0;

	for (idx = 0; pos < len && !rc; idx++) {
		edgelog_record rec = {0};
		size_t n, stop;
		json_error_t je;
		json_t *obj;

		/* The first record's length, or where the bytes stop being one
		 * (an invalid byte, or the end of the body inside it). */
		if (edgelog_msgpack_measure(body + pos, len - pos, &n) != 0) {
			rc = bad(err, errlen,
				 "record %zu: invalid or truncated msgpack at byte %zu", idx,
				 pos + n);
			break;
		}
		text.len = 0;
		rec.data = body + pos;
		rec.len = n;
		if ((rc = tool_bytes_json(&text, &rec, NULL))) {
			rc = rc == -2 ? nomem(err, errlen) :
					bad(err, errlen, "record %zu: invalid msgpack at byte %zu",
					    idx, pos);
			break;
		}
		rc = scan_record(text.p, text.len, 0, &stop, rules, nrules, b, err, errlen);
		if (rc == 0 && stop == text.len) {
			pos += n;
			continue;
		}
		if (rc == 0)
			drop_last(b);
		else if (rc < 0)
			break;
		rc = 0;
		obj = json_loadb(text.p, text.len, JSON_DECODE_ANY, &je);
		if (!obj) {
			rc = bad(err, errlen, "record %zu: msgpack not representable: %s", idx,
				 je.text);
			break;
		}
		rc = add_record(obj, idx, "msgpack map", rules, nrules, b, err, errlen);
		json_decref(obj);
		pos += n;
	}
	tool_bytes_free(&text);
	return rc;
}

int tool_sink_parse(int format, const char *body, size_t len, const tool_sink_rule *rules,
		    size_t nrules, tool_sink_batch *b, char *err, size_t errlen)
{
	switch (format) {
	case TOOL_SINK_NDJSON:
		return parse_ndjson(body, len, rules, nrules, b, err, errlen);
	case TOOL_SINK_JSON:
		return parse_array(body, len, rules, nrules, b, err, errlen);
	case TOOL_SINK_MSGPACK:
		return parse_msgpack(body, len, rules, nrules, b, err, errlen);
	default:
		return bad(err, errlen, "unknown body format");
	}
}
