/*
 * tool_sink.h - the pieces of `edgelog sink`, the reference receiver:
 *
 *   tool_sink.c        options, the HTTP server (libmicrohttpd), fault
 *                      injection, the tally
 *   tool_sink_body.c   request bodies: gunzip with a size cap, then NDJSON,
 *                      a JSON array or concatenated msgpack, into a batch of
 *                      validated records rendered as the lines to store
 *   tool_sink_json.c   a strict JSON validator: the fast path for records,
 *                      with jansson judging whatever it refuses
 *   tool_sink_store.c  the dedupe set and DIR/records.ndjson (append,
 *                      fdatasync before the ack, reload at start)
 *
 * A batch is all or nothing: either every record in it is valid (then the
 * new ones are stored and made durable together) or none is stored.
 */
#ifndef TOOL_SINK_H
#define TOOL_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "tool.h"

/* Body formats, by Content-Type. */
enum {
	TOOL_SINK_NDJSON = 1,
	TOOL_SINK_JSON,
	TOOL_SINK_MSGPACK
};

/* Results of tool_sink_gunzip / tool_sink_parse besides 0. */
#define TOOL_SINK_EBAD (-1)    /* malformed: answer 400 */
#define TOOL_SINK_ETOOBIG (-2) /* over the cap: answer 413 */
#define TOOL_SINK_ENOMEM (-3)  /* out of memory: answer 503 */

/* One record of a batch. The stored line (newline included) and the
 * device_id as a JSON string literal (the dedupe key: the same escaping
 * for every input format and for the reload) are spans of batch.lines. */
typedef struct tool_sink_rec {
	uint64_t seq;
	size_t key_off, key_len;
	size_t line_off, line_len;
	void *dev; /* set by the store while it dedupes */
	int fresh; /* set by the store: not seen before, stored */
} tool_sink_rec;

/* --reject-if FIELD=VALUE: a dotted path into data and the text to match. */
typedef struct tool_sink_rule {
	const char *path;
	const char *value;
} tool_sink_rule;

typedef struct tool_sink_batch {
	tool_bytes lines;
	tool_sink_rec *recs;
	size_t n, cap;
	size_t max_lines;    /* set by the caller: 413 once lines grow past it (0: no cap) */
	int rejected;        /* a record matched a rule */
	uint64_t reject_seq; /* the first such record's seq */
} tool_sink_batch;

void tool_sink_batch_free(tool_sink_batch *b);

/* Nesting bound of tool_sink_json_skip (jansson's own is 2048). */
#define TOOL_SINK_JSON_DEPTH 512

/* Validate the JSON value at s[*pos] (no leading whitespace), strictly
 * (see tool_sink_json.c), and move *pos past it. *ws (if not NULL): the
 * value holds insignificant whitespace. 0, or -1 if it is not valid. */
int tool_sink_json_skip(const char *s, size_t len, size_t *pos, int *ws);

/* The same for a string literal at s[*pos]; *escaped (if not NULL) is set
 * if it holds a backslash escape. */
int tool_sink_json_string(const char *s, size_t len, size_t *pos, int *escaped);

/* Append the valid JSON text s (n bytes) to out without its insignificant
 * whitespace. */
void tool_sink_json_minify(const char *s, size_t n, tool_bytes *out);

/* Inflate a gzip body (one or more members) into out, at most cap bytes.
 * 0, TOOL_SINK_EBAD (not gzip, corrupt, truncated, trailing garbage),
 * TOOL_SINK_ETOOBIG or TOOL_SINK_ENOMEM; err says what. */
int tool_sink_gunzip(const void *in, size_t n, size_t cap, tool_bytes *out, char *err,
		     size_t errlen);

/* Parse a whole body of the given format into b (records appended, lines
 * rendered). Every record must be {"device_id": string, "seq": unsigned
 * integer, "ts": integer, "data": any}; other keys are ignored. Records
 * matching one of the rules set b->rejected. 0, TOOL_SINK_EBAD with err
 * naming the record (0-based index) and the field, or TOOL_SINK_ENOMEM. */
int tool_sink_parse(int format, const char *body, size_t len, const tool_sink_rule *rules,
		    size_t nrules, tool_sink_batch *b, char *err, size_t errlen);

/* The store: DIR/records.ndjson plus the set of (device_id, seq) in it.
 * Thread safe. */
typedef struct tool_sink_store tool_sink_store;

/* Open (create) DIR and DIR/records.ndjson, take an exclusive lock on it
 * (one sink per directory), and read it back to rebuild the dedupe set; a
 * torn last line (a crash mid-write, never acked) is cut off. Returns 0 or
 * -1 with err naming the path and the failure. */
int tool_sink_store_open(tool_sink_store **out, const char *dir, int quiet, char *err,
			 size_t errlen);

/* Drop the records of b already stored (or repeated within b), append the
 * rest to the file and fdatasync it. On success *accepted and *dups say
 * how many; on failure (-1, err says why, or TOOL_SINK_ENOMEM) nothing of b
 * is in the file or in the set. */
int tool_sink_store_put(tool_sink_store *s, tool_sink_batch *b, uint64_t *accepted, uint64_t *dups,
			char *err, size_t errlen);

/* Records in the file (reloaded plus stored since). */
uint64_t tool_sink_store_count(tool_sink_store *s);

void tool_sink_store_close(tool_sink_store *s);

#endif
