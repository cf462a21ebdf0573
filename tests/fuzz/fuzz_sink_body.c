/*
 * fuzz_sink_body.c - the reference sink's body parser: gunzip under a cap
 * (tool_sink_gunzip), then tool_sink_parse for NDJSON, a JSON array or
 * concatenated msgpack.
 *
 * The first byte: the format in its low two bits (1 NDJSON, 2 JSON, 3
 * msgpack; 0 is taken as NDJSON), 0x10 the body is gzip. The rest is the
 * body.
 *
 * Invariants: the inflated body never exceeds the cap; a parse that
 * succeeds yields records whose stored lines are valid JSON objects (one
 * line each, ending in a newline) carrying device_id, seq, ts and data,
 * with the seq the batch reports; the lines are at most linear in the body.
 */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "seg_json.h" /* SEG_JSON_MAX_EXPANSION */
#include "tool_sink.h"

#define CAP (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fmt, rc;
	const char *body;
	size_t len, i;
	tool_bytes plain = {0};
	tool_sink_batch b;
	char err[256];

	if (size < 1)
		return 0;
	fmt = data[0] & 3 ? data[0] & 3 : TOOL_SINK_NDJSON;
	body = (const char *)data + 1;
	len = size - 1;
	if (data[0] & 0x10) {
		rc = tool_sink_gunzip(body, len, CAP, &plain, err, sizeof(err));
		if (rc) {
			tool_bytes_free(&plain);
			return 0;
		}
		FUZZ_CHECK(plain.len <= CAP, "inflated %zu bytes past the cap", plain.len);
		body = plain.p ? plain.p : "";
		len = plain.len;
	}
	memset(&b, 0, sizeof(b));
	rc = tool_sink_parse(fmt, body, len, NULL, 0, &b, err, sizeof(err));
	if (rc == 0) {
		FUZZ_CHECK(b.lines.len <= SEG_JSON_MAX_EXPANSION * len + 64 * b.n,
			   "%zu bytes stored for a %zu-byte body", b.lines.len, len);
		for (i = 0; i < b.n; i++) {
			const tool_sink_rec *r = &b.recs[i];
			const char *line = b.lines.p + r->line_off;
			json_error_t je;
			json_t *o;
			FUZZ_CHECK(r->line_len > 0 && line[r->line_len - 1] == '\n',
				   "record %zu: no newline", i);
			FUZZ_CHECK(!memchr(line, '\n', r->line_len - 1), "record %zu: two lines",
				   i);
			o = json_loadb(line, r->line_len - 1, JSON_DECODE_INT_AS_REAL, &je);
			if (!o && strstr(je.text, "NUL"))
				continue; /* jansson's own limit (\u0000 in a key) */
			FUZZ_CHECK(o != NULL, "record %zu: stored line is not JSON (%s): %.200s", i,
				   je.text, line);
			FUZZ_CHECK(json_is_object(o) && json_object_get(o, "device_id") &&
					   json_object_get(o, "seq") && json_object_get(o, "ts") &&
					   json_object_get(o, "data"),
				   "record %zu: stored line lacks a field: %.200s", i, line);
			FUZZ_CHECK((uint64_t)json_number_value(json_object_get(o, "seq")) ==
					   (uint64_t)(double)r->seq,
				   "record %zu: seq %llu, line says otherwise", i,
				   (unsigned long long)r->seq);
			json_decref(o);
		}
	}
	tool_sink_batch_free(&b);
	tool_bytes_free(&plain);
	return 0;
}
