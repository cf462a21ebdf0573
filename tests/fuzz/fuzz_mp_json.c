/*
 * fuzz_mp_json.c - msgpack to JSON (seg_mp_to_json), as the uploader's
 * JSON bodies, dump --json, tail --json and the sink use it.
 *
 * Invariants: whatever the validator (seg_mp_validate, the append check)
 * accepts, the converter accepts too; whatever the converter accepts is
 * valid JSON (jansson reads it back) and at most SEG_JSON_MAX_EXPANSION
 * bytes per input byte (issue 9, defect 1: nested map keys once doubled
 * the output per level).
 */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "seg_format.h"
#include "seg_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	seg_buf out = {0};
	size_t bad = seg_mp_validate(data, size);
	int rc = seg_mp_to_json(data, size, &out);

	if (bad == 0)
		FUZZ_CHECK(rc == 0, "validator accepts %zu bytes, JSON writer refuses", size);
	if (rc == 0) {
		json_error_t je;
		json_t *j;
		FUZZ_CHECK(out.len <= SEG_JSON_MAX_EXPANSION * size,
			   "%zu bytes of JSON for %zu of msgpack", out.len, size);
		/* jansson refuses \u0000 in object keys (RFC 8259 allows it):
		 * make every such escape \u0001, which changes no validity. */
		{
			char *q = out.p;
			while ((q = memmem(q, out.len - (size_t)(q - out.p), "\\u0000", 6)))
				q[5] = '1';
		}
		j = json_loadb(out.p, out.len,
			       JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &je);
		FUZZ_CHECK(j != NULL, "invalid JSON (%s at %d): %.200s", je.text, je.position,
			   out.p);
		json_decref(j);
	}
	seg_buf_free(&out);
	return 0;
}
