/*
 * upl.h - the uploader: reads records from the log, batches, encodes and
 * compresses them, POSTs them to the cloud, retries with backoff, and
 * isolates the records the cloud refuses for good.
 *
 * No thread and no lock of its own: the engine's worker calls upl_step()
 * without holding the engine's mutex and applies the outcome (the ack, the
 * counters) itself. The uploader knows nothing of retention or of the
 * cursor file: it reports "records up to seq N are handled" and the engine
 * makes that durable.
 *
 * Memory is bounded by one batch (max_batch_bytes of payload, plus its
 * encoding), whatever the backlog: records are read from the segments as
 * they are sent.
 */
#ifndef UPL_H
#define UPL_H

#include <stddef.h>
#include <stdint.h>

#include "seg.h"

typedef struct upl_conf {
	const char *endpoint;
	const char *device_id;
	int format;                 /* EDGELOG_FORMAT_NDJSON / _JSON / _MSGPACK (resolved) */
	int gzip;                   /* Content-Encoding: gzip */
	int data_string;            /* "data" as a JSON-encoded string */
	uint32_t poison_tries;      /* 5xx in a row before a batch is split */
	uint32_t batch_size;        /* send once this many records wait */
	uint32_t batch_timeout_ms;  /* ... or once the oldest waited this long */
	uint32_t max_batch_records; /* while draining a backlog: full batches */
	size_t max_batch_bytes;     /* request body bytes, before and after gzip */
	const char *auth_token;     /* never logged, never in a message */
	const char *ca_file, *client_cert, *client_key;
	uint32_t retry_base_ms, retry_max_ms; /* full-jitter exponential backoff */
	uint32_t retry_after_cap_ms;          /* longest Retry-After honoured */
	uint32_t http_timeout_ms, connect_timeout_ms;
} upl_conf;

typedef struct upl upl;

/* What one step did. */
typedef struct upl_result {
	uint64_t handled_seq; /* every seq <= this is delivered or dead-lettered
				* (0: no progress) */
	uint64_t delivered;   /* records the cloud accepted in this step */
	uint64_t dead;        /* records moved to the dead-letter store */
	uint64_t poisoned;    /* of those, records that kept getting 5xx answers
			       * while the endpoint accepted others (poison) */
	uint64_t corrupt;     /* damaged ranges the reader skipped */
	int64_t next_ts_ms;   /* append time of the first record not yet handled,
			       * when the uploader holds it (0: unknown) */
	int requests;         /* HTTP requests made */
	int success;          /* the last request succeeded */
	int failure;          /* a request failed (transient or transport) */
	long http_status;     /* of the last response (0: none) */
	int64_t retry_at_ms;  /* monotonic time before which not to send (0: now) */
	int64_t wait_ms;      /* nothing to send yet: call again after this */
	char error[256];      /* the last failure, for status and errmsg */
} upl_result;

/*
 * Create an uploader reading segments from segdir and writing dead letters
 * into faileddir (created if needed). The configuration's strings must
 * outlive the uploader.
 */
int upl_create(upl **out, const upl_conf *c, const seg_vfs *v, const char *segdir,
	       const char *faileddir, seg_err *e);

/*
 * Do what is due: if records in (acked_seq, limit_seq] are waiting and a
 * batch is due (full, or its oldest record waited batch_timeout_ms, or
 * `flush`), and no backoff is in force, send one batch (splitting it on a
 * permanent rejection) and report. `abort_flag`, when it becomes non-zero,
 * cuts a transfer short (engine closing). Never blocks longer than
 * http_timeout_ms per request.
 */
int upl_step(upl *u, uint64_t acked_seq, uint64_t limit_seq, int flush,
	     const volatile int *abort_flag, upl_result *res);

void upl_destroy(upl *u);

/* ---- pieces, exposed for tests ------------------------------------------ */

/* Full-jitter backoff: a uniformly random delay in [0, min(max, base *
 * 2^attempt)] ms. rnd is a uniformly random 64-bit value. */
uint64_t upl_backoff_ms(uint32_t base_ms, uint32_t max_ms, unsigned attempt, uint64_t rnd);

/* Parse a Retry-After value (delay-seconds or an HTTP-date) relative to
 * now (unix seconds). Returns the delay in ms, or -1 if unparseable. */
int64_t upl_parse_retry_after(const char *v, int64_t now_s);

/* Is a non-2xx HTTP status worth retrying (keeping the records)? A 4xx
 * refuses the records for good (they are isolated and dead-lettered),
 * except 408, 425, 429 and the request-level 401, 403, 404, 405, 407.
 * Everything else (5xx, 3xx: redirects are not followed, odd codes) is
 * retried. */
int upl_status_retryable(long status);

#endif
