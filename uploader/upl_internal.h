/*
 * upl_internal.h - the uploader's pieces: wire encoding and the HTTP
 * transport. Internal to uploader/.
 */
#ifndef UPL_INTERNAL_H
#define UPL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "seg.h"
#include "upl.h"

/* ---- encoding (upl_encode.c) -------------------------------------------- */

/* Content-Type of a format. */
const char *upl_content_type(int format);

/* Start, add to and finish a request body. first: this is the first
 * record of the body. Returns 0, or -1 if data cannot be written as JSON
 * (not one well-formed msgpack object): the body is then left as it was,
 * and the uploader moves the record to the dead-letter store with the
 * reason, since no retry can send it. Also -1 when the body ran out of
 * memory (b->oom). The JSON of a record is at most SEG_JSON_MAX_EXPANSION
 * times its msgpack size (seg_json.h). data_str: NULL sends `data` as the
 * object it is; else `data` goes as a JSON-encoded string of its compact
 * JSON text, built in *data_str (scratch space the caller keeps). */
void upl_body_begin(seg_buf *b, int format);
int upl_body_record(seg_buf *b, int format, int first, const char *device_id, uint64_t seq,
		    int64_t ts_ms, const void *data, size_t len, seg_buf *data_str);
void upl_body_end(seg_buf *b, int format);

/* gzip (RFC 1952) of in into out (replacing its content). 0 or -1.
 * libdeflate at level 1: on batches of predictions it compresses about
 * 1.9x faster than zlib's fastest level and 9 % smaller (2000-record NDJSON
 * bodies: 2.6 vs 4.8 us per record; 4.5x vs 4.1x). upl_gzip_with reuses a
 * compressor (the uploader keeps one); upl_gzip makes one per call. */
#define UPL_GZIP_LEVEL 1
struct libdeflate_compressor;
int upl_gzip_with(struct libdeflate_compressor *c, const void *in, size_t n, seg_buf *out);
int upl_gzip(const void *in, size_t n, seg_buf *out);

/* ---- transport (upl_http.c) --------------------------------------------- */

typedef struct upl_http upl_http;

typedef struct upl_response {
	long status;            /* HTTP status, 0 if no response */
	int transport_error;    /* connect/timeout/TLS/reset: no usable response */
	int64_t retry_after_ms; /* from Retry-After, -1 if none */
	char body[256];         /* first bytes of the response body */
	char error[256];        /* what went wrong, for humans (no secrets) */
} upl_response;

/* v's wall clock dates an HTTP-date Retry-After (the only clock read here). */
int upl_http_new(upl_http **out, const upl_conf *c, const seg_vfs *v, seg_err *e);
/* Start a POST and return once the request is on its way; the body must
 * stay valid until upl_http_finish(), which waits for the response and
 * fills *r (given here). A start that fails fills *r at once and finish is
 * then a no-op. */
void upl_http_start(upl_http *h, const void *body, size_t len, const char *content_type, int gzip,
		    const char *idempotency_key, const volatile int *abort_flag, upl_response *r);
void upl_http_finish(upl_http *h);
/* Move a request in flight along without waiting (the socket buffer takes
 * only part of a large body at once). Cheap; call it often while busy. */
void upl_http_pump(upl_http *h);

void upl_http_free(upl_http *h);

#endif
