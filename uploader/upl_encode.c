/*
 * upl_encode.c - request bodies: NDJSON (one record a line), a JSON array,
 * or msgpack records back to back. Each record is
 * {"device_id": ..., "seq": N, "ts": ms, "data": <the prediction>}.
 */
#include <string.h>
#include <libdeflate.h>

#include <edgelog.h>

#include "seg.h"
#include "upl_internal.h"

const char *upl_content_type(int format)
{
	switch (format) {
	case EDGELOG_FORMAT_JSON:
		return "application/json";
	case EDGELOG_FORMAT_MSGPACK:
		return "application/msgpack";
	default:
		return "application/x-ndjson";
	}
}

void upl_body_begin(seg_buf *b, int format)
{
	b->len = 0;
	if (format == EDGELOG_FORMAT_JSON)
		seg_buf_put(b, "[", 1);
}

static void mp_str(seg_buf *b, const char *s, size_t n)
{
	uint8_t h[5];

	if (n < 32) {
		h[0] = (uint8_t)(0xa0 | n);
		seg_buf_put(b, h, 1);
	} else if (n < 256) {
		h[0] = 0xd9;
		h[1] = (uint8_t)n;
		seg_buf_put(b, h, 2);
	} else if (n < 65536) {
		h[0] = 0xda;
		h[1] = (uint8_t)(n >> 8);
		h[2] = (uint8_t)n;
		seg_buf_put(b, h, 3);
	} else {
		h[0] = 0xdb;
		h[1] = (uint8_t)(n >> 24);
		h[2] = (uint8_t)(n >> 16);
		h[3] = (uint8_t)(n >> 8);
		h[4] = (uint8_t)n;
		seg_buf_put(b, h, 5);
	}
	seg_buf_put(b, s, n);
}

/* 0xcf uint64 / 0xd3 int64, always 9 bytes: simple and valid. */
static void mp_u64(seg_buf *b, uint8_t tag, uint64_t v)
{
	uint8_t h[9];
	int i;

	h[0] = tag;
	for (i = 0; i < 8; i++)
		h[1 + i] = (uint8_t)(v >> (56 - 8 * i));
	seg_buf_put(b, h, 9);
}

int upl_body_record(seg_buf *b, int format, int first, const char *device_id, uint64_t seq,
		    int64_t ts_ms, const void *data, size_t len, seg_buf *data_str)
{
	size_t mark = b->len;

	if (data_str) {
		/* The prediction as its compact JSON text, sent as a string.
		 * Not one msgpack object: refused, as below. */
		data_str->len = 0;
		if (seg_mp_to_json(data, len, data_str))
			return -1;
	}

	if (format == EDGELOG_FORMAT_MSGPACK) {
		uint8_t m = 0x84;
		seg_buf_put(b, &m, 1);
		mp_str(b, "device_id", 9);
		mp_str(b, device_id, strlen(device_id));
		mp_str(b, "seq", 3);
		mp_u64(b, 0xcf, seq);
		mp_str(b, "ts", 2);
		mp_u64(b, 0xd3, (uint64_t)ts_ms);
		mp_str(b, "data", 4);
		if (data_str) {
			mp_str(b, data_str->p, data_str->len);
			return b->oom ? -1 : 0;
		}
		/* The payload must be exactly one msgpack object, or it would
		 * shift every record after it in the stream. The append checked
		 * it; a frame's checksum does not prove it. */
		if (seg_mp_validate(data, len)) {
			b->len = mark;
			if (b->p)
				b->p[mark] = '\0';
			return -1;
		}
		seg_buf_put(b, data, len);
		return b->oom ? -1 : 0;
	}
	if (format == EDGELOG_FORMAT_JSON && !first)
		seg_buf_put(b, ",", 1);
	seg_buf_puts(b, "{\"device_id\":");
	seg_json_string(b, device_id, strlen(device_id));
	seg_buf_put(b, ",\"seq\":", 7);
	seg_buf_u64(b, seq, 0);
	seg_buf_put(b, ",\"ts\":", 6);
	seg_buf_i64(b, ts_ms);
	seg_buf_put(b, ",\"data\":", 8);
	if (data_str) {
		seg_json_string(b, data_str->p, data_str->len);
	} else if (seg_mp_to_json(data, len, b)) {
		/* Not one well-formed msgpack object (a frame's checksum does
		 * not prove that): the record cannot go on the wire. The body is
		 * left as it was; the caller dead-letters the record. */
		b->len = mark;
		if (b->p)
			b->p[mark] = '\0';
		return -1;
	}
	seg_buf_put(b, "}", 1);
	if (format == EDGELOG_FORMAT_NDJSON)
		seg_buf_put(b, "\n", 1);
	return b->oom ? -1 : 0;
}

void upl_body_end(seg_buf *b, int format)
{
	if (format == EDGELOG_FORMAT_JSON)
		seg_buf_put(b, "]", 1);
}

int upl_gzip_with(struct libdeflate_compressor *c, const void *in, size_t n, seg_buf *out)
{
	size_t cap, got;

	cap = libdeflate_gzip_compress_bound(c, n);
	out->len = 0;
	if (seg_buf_reserve(out, cap))
		return -1;
	got = libdeflate_gzip_compress(c, in, n, out->p, out->cap);
	if (!got)
		return -1;
	out->len = got;
	return 0;
}

int upl_gzip(const void *in, size_t n, seg_buf *out)
{
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(UPL_GZIP_LEVEL);
	int rc;

	if (!c)
		return -1;
	rc = upl_gzip_with(c, in, n, out);
	libdeflate_free_compressor(c);
	return rc;
}
