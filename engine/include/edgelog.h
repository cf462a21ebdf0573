/*
 * edgelog.h - the one public header of edgelog.
 *
 * edgelog keeps an edge device's prediction records safe on local disk and
 * streams them to a cloud endpoint whenever the network allows. Records go
 * into an append-only log of checksummed segment files inside one directory;
 * a cursor file in the same directory records what the cloud acknowledged.
 *
 * Conventions (they hold for every call below unless its comment says
 * otherwise):
 *
 *  - Functions return int: 0 on success or a negative EDGELOG_E* code. The
 *    numeric value of a code never changes between releases.
 *    edgelog_strerror() names any code; edgelog_errmsg() gives the detail of
 *    the last failure (path, syscall, errno, variable name).
 *  - A function that creates a handle returns it through its first
 *    parameter, `out`. On failure *out is set to NULL.
 *  - Closing functions accept NULL and do nothing.
 *  - Strings passed in are copied; the caller may free them after the call
 *    returns.
 *  - The header includes only C standard headers, compiles as C11 and C++.
 *
 * Durability (the contract edgelog_append makes):
 *
 *  - When edgelog_append() returns 0 the record is in the operating
 *    system's page cache: it survives the process being killed (kill -9,
 *    abort, a crash) but not yet a power cut.
 *  - It survives a power cut once synced: under EDGELOG_SYNC_ALWAYS before
 *    edgelog_append() returns (concurrent appenders share one fdatasync:
 *    group commit); under EDGELOG_SYNC_INTERVAL within sync_interval_ms
 *    while the engine is driven (edgelog_start() or edgelog_step(), or the
 *    next append after the interval); under EDGELOG_SYNC_NONE when
 *    edgelog_sync() or edgelog_close() is called.
 */
#ifndef EDGELOG_H
#define EDGELOG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define EDGELOG_API
#elif defined(__GNUC__)
#define EDGELOG_API __attribute__((visibility("default")))
#else
#define EDGELOG_API
#endif

#define EDGELOG_VERSION_MAJOR 0
#define EDGELOG_VERSION_MINOR 1
#define EDGELOG_VERSION_PATCH 0
#define EDGELOG_VERSION_STRING "0.1.0"

/* Library version as "MAJOR.MINOR.PATCH". The on-disk format has its own
 * version (see segments/FORMAT.md); a reader refuses a newer format with
 * EDGELOG_EVERSION. */
EDGELOG_API const char *edgelog_version(void);

/* ------------------------------------------------------------------------
 * Error codes. Stable numbers: append new codes, never renumber.
 * ---------------------------------------------------------------------- */
#define EDGELOG_OK 0
#define EDGELOG_EOF (-1)        /* not an error: reader at the end; msgpack: more bytes needed */
#define EDGELOG_EINVAL (-2)     /* bad argument, or a record that is not one msgpack object */
#define EDGELOG_ECONFIG (-3)    /* invalid configuration value or variable */
#define EDGELOG_EIO (-4)        /* an I/O call failed (detail: edgelog_errmsg) */
#define EDGELOG_ENOSPC (-5)     /* the file system is full */
#define EDGELOG_EFULL (-6)      /* size cap reached under full_policy=reject */
#define EDGELOG_ELOCKED (-7)    /* another process holds the directory */
#define EDGELOG_ECORRUPT (-8)   /* damaged data that could not be skipped */
#define EDGELOG_EVERSION (-9)   /* file written by a newer on-disk format */
#define EDGELOG_ENOMEM (-10)    /* out of memory */
#define EDGELOG_ETOOBIG (-11)   /* record larger than EDGELOG_MAX_RECORD */
#define EDGELOG_ENOTFOUND (-12) /* directory or file does not exist */
#define EDGELOG_EPERM (-13)     /* permission denied or read-only file system */
#define EDGELOG_ESTATE (-14)    /* call not valid now (closed, already started) */
#define EDGELOG_ENET (-15)      /* upload failed (transport or HTTP status) */
#define EDGELOG_ETIMEDOUT (-16) /* a wait ran out of time */
#define EDGELOG_ERANGE (-17)    /* text larger than the buffer given for it */
#define EDGELOG_ENOTSUP (-18)   /* not built into this library (a build option is off) */

/* Largest payload one record may carry, in bytes. */
#define EDGELOG_MAX_RECORD (1u << 20)

/* Name of an error code ("EDGELOG_EIO: input/output error"). Never NULL;
 * unknown codes give a generic string. The string is static. */
EDGELOG_API const char *edgelog_strerror(int code);

/* ------------------------------------------------------------------------
 * Configuration
 * ---------------------------------------------------------------------- */
/* 2: the 8 KiB of private string storage version 1 carried at the end is
 * gone (edgelog_config_from_env keeps its strings in the library). */
#define EDGELOG_CONFIG_VERSION 3

/* For every enum field, 0 means "the default". */
typedef enum edgelog_sync_mode {
	EDGELOG_SYNC_DEFAULT = 0,  /* interval */
	EDGELOG_SYNC_ALWAYS = 1,   /* fdatasync (group commit) before append returns */
	EDGELOG_SYNC_INTERVAL = 2, /* fdatasync every sync_interval_ms */
	EDGELOG_SYNC_NONE = 3      /* only on edgelog_sync() and edgelog_close() */
} edgelog_sync_mode;

typedef enum edgelog_full_policy {
	EDGELOG_FULL_DEFAULT = 0,     /* drop_oldest */
	EDGELOG_FULL_DROP_OLDEST = 1, /* delete the oldest segments, counted as dropped */
	EDGELOG_FULL_REJECT = 2       /* append fails with EDGELOG_EFULL */
} edgelog_full_policy;

typedef enum edgelog_format {
	EDGELOG_FORMAT_DEFAULT = 0, /* ndjson */
	EDGELOG_FORMAT_NDJSON = 1,
	EDGELOG_FORMAT_JSON = 2,
	EDGELOG_FORMAT_MSGPACK = 3
} edgelog_format;

/* How a record's `data` travels in json and ndjson bodies (and msgpack).
 * STRING sends the prediction as one JSON-encoded string
 * ("data":"{\"label\":\"cat\"}"), the shape a store's String column takes
 * (ClickHouse JSONEachRow into `data String`). */
typedef enum edgelog_data_encoding {
	EDGELOG_DATA_DEFAULT = 0, /* object */
	EDGELOG_DATA_OBJECT = 1,  /* "data": <the prediction as appended> */
	EDGELOG_DATA_STRING = 2   /* "data": "<its compact JSON text>" */
} edgelog_data_encoding;

/* Whether retention hands acknowledged segment files back to the writer
 * to be written again (segment_reuse). */
typedef enum edgelog_segment_reuse {
	EDGELOG_REUSE_DEFAULT = 0, /* on */
	EDGELOG_REUSE_ON = 1,
	EDGELOG_REUSE_OFF = 2
} edgelog_segment_reuse;

typedef enum edgelog_compression {
	EDGELOG_COMPRESSION_DEFAULT = 0, /* gzip */
	EDGELOG_COMPRESSION_GZIP = 1,
	EDGELOG_COMPRESSION_NONE = 2
} edgelog_compression;

#define EDGELOG_LOG_ERROR 0
#define EDGELOG_LOG_WARN 1
#define EDGELOG_LOG_INFO 2

/*
 * The engine's configuration. Initialise with edgelog_config_init(), then
 * set fields or call edgelog_config_from_env(). A zero numeric field means
 * the default given in its comment. String fields are borrowed: they must
 * stay valid until edgelog_open() returns (it copies them).
 */
typedef struct edgelog_config {
	unsigned version; /* EDGELOG_CONFIG_VERSION (set by edgelog_config_init) */

	const char *dir;       /* buffer directory; default "./edgelog-data" */
	const char *endpoint;  /* upload URL; NULL: buffer only */
	const char *device_id; /* default: the host name */

	uint32_t max_size_mb;    /* disk cap for the directory; default 500 */
	uint32_t retention_days; /* age retention; default 7 */

	uint32_t batch_size;       /* records per upload batch; default 32 */
	uint32_t batch_timeout_ms; /* send a partial batch after; default 10000 */

	edgelog_sync_mode sync;
	uint32_t sync_interval_ms; /* default 100 */

	edgelog_full_policy full_policy;
	edgelog_format format;
	edgelog_compression compression;

	const char *auth_token;      /* bearer token; never printed */
	const char *auth_token_file; /* file holding the token */
	const char *ca_file;
	const char *client_cert;
	const char *client_key;

	uint32_t retry_base_ms;   /* default 500 */
	uint32_t retry_max_ms;    /* default 60000 */
	uint32_t http_timeout_ms; /* default 30000 */

	/* Segment geometry. A segment is sealed when its next frame would not
	 * fit in segment_bytes, or segment_max_age_s after it was started. */
	uint32_t segment_bytes;     /* default 4 MiB; 64 KiB .. 1 GiB */
	uint32_t segment_max_age_s; /* default 3600 */

	/* Alert thresholds (the Python client's); 0: default. */
	uint64_t alert_pending;  /* default 1000 */
	uint32_t alert_size_pct; /* default 90 */
	uint64_t alert_failed;   /* default 100 */

	/* Upload tuning. */
	uint32_t close_grace_ms;     /* edgelog_close tries to deliver this long; default 5000 */
	uint32_t upload_max_records; /* records per request while draining; default 2000 */
	uint32_t upload_max_kb;      /* request body KiB, envelope included, before and
				      * after compression (one record too large
				      * for it goes alone); default 1024 */

	/* Where the engine reports what it did on its own (a torn tail
	 * truncated, a cursor clamped, records dropped): level is one of
	 * EDGELOG_LOG_*. NULL: warnings and errors go to stderr. */
	void (*log_fn)(void *payload, int level, const char *msg);
	void *log_payload;

	/* Called once when an alert starts (active = 1) and once when it
	 * clears (active = 0); alert is one EDGELOG_ALERT_* bit, msg says why
	 * ("pending 1001 > 1000"). Called from the thread that noticed the
	 * change (an appender, the worker, edgelog_get_status), without the
	 * engine's locks held: it may call edgelog_get_status but should
	 * return quickly. NULL: alerts only in edgelog_status.alerts. */
	void (*alert_fn)(void *payload, unsigned alert, int active, const char *msg);
	void *alert_payload;

	/* The running engine rewrites DIR/status.json (what `edgelog status`
	 * shows as live) when its figures change, at most every
	 * status_interval_ms (default 2000) and at least every 30 s. When
	 * metrics_file is set (EDGELOG_METRICS_FILE) it also writes the
	 * Prometheus text of `edgelog metrics` there, atomically (for
	 * node_exporter's textfile collector). */
	uint32_t status_interval_ms;
	const char *metrics_file;

	/* `data` as an object (default) or as a JSON-encoded string
	 * (EDGELOG_DATA_ENCODING=object|string). */
	edgelog_data_encoding data_encoding;
	/* Poison detection: after this many 5xx answers in a row to the same
	 * request, the batch is split as for a 4xx; a single record that keeps
	 * failing is dead-lettered only once the endpoint accepted other
	 * records meanwhile (EDGELOG_POISON_TRIES; default 5, 1 .. 1000). */
	uint32_t poison_tries;

	/* Flash wear (config version 3; EDGELOG_SEGMENT_REUSE=on|off): with
	 * reuse on, the file of a segment whose records are all acknowledged
	 * becomes the next segment instead of being deleted, so the writer
	 * overwrites blocks the file system already holds as written, and an
	 * interval sync commits nothing to the file system's journal (at 100
	 * records/s about half the bytes the device writes; README, "Flash
	 * wear"). Such segments are format version 2, which edgelog before
	 * this version refuses (EDGELOG_EVERSION): off keeps every segment in
	 * version 1. Nothing about durability changes either way. */
	edgelog_segment_reuse segment_reuse;
} edgelog_config;

/* Fill *cfg with defaults (all zero: every field takes its default). */
EDGELOG_API void edgelog_config_init(edgelog_config *cfg);

/*
 * Override fields from the environment (variables in README.md,
 * "Configuration": EDGELOG_*,
 * and the Python client's BUFFER_DB_PATH, CLOUD_LOGGING_ENDPOINT,
 * EDGE_DEVICE_ID, BUFFER_MAX_SIZE_MB, BUFFER_CLEANUP_DAYS; the EDGELOG_ name
 * wins when both are set). Unset variables leave fields as they are.
 * Returns EDGELOG_ECONFIG for an invalid value; edgelog_errmsg(NULL) then
 * names the variable and the value. Fields set before the failing variable
 * may already be changed. The strings it sets point to copies the library
 * keeps for the life of the process (one per distinct value, so reading
 * the environment again costs nothing more): the config needs no free.
 */
EDGELOG_API int edgelog_config_from_env(edgelog_config *cfg);

/* ------------------------------------------------------------------------
 * The engine
 * ---------------------------------------------------------------------- */
typedef struct edgelog edgelog;

/*
 * Open (creating with mode 0700 if needed) the directory cfg->dir and take
 * its exclusive lock. A second opener, in this process or another, gets
 * EDGELOG_ELOCKED and a message naming the holder's pid. A torn tail left by
 * a crash is truncated back to the last valid frame and counted; a cursor
 * that claims more than the log holds is clamped and counted.
 * Validates every config field (EDGELOG_ECONFIG naming it).
 * On failure *out is NULL and edgelog_errmsg(NULL) gives the detail.
 */
EDGELOG_API int edgelog_open(edgelog **out, const edgelog_config *cfg);

/*
 * Append one record: `data` must be exactly one well-formed msgpack object
 * of at most EDGELOG_MAX_RECORD bytes (else EDGELOG_EINVAL or
 * EDGELOG_ETOOBIG, and nothing is stored). On success the record's sequence
 * number goes to *seq (may be NULL). Sequence numbers start at 1 and
 * increase by one per accepted record while the handle is open; after a
 * restart they continue above every record that was ever synced, so two
 * records of which either was ever synced (hence uploaded or acknowledged)
 * never share a seq. The exception: under sync=interval or none, records
 * a power cut takes before they were synced may have their seqs handed
 * out again after the restart (segments/FORMAT.md, "The directory").
 * Thread-safe: any number of threads may append at once.
 */
EDGELOG_API int edgelog_append(edgelog *log, const void *data, size_t len, uint64_t *seq);

/* As edgelog_append, from one JSON value (converted to msgpack). Invalid
 * JSON gives EDGELOG_EINVAL with the byte offset in edgelog_errmsg(). A
 * library built with EDGELOG_WITH_JSON=OFF (firmware profile) has no JSON
 * parser: EDGELOG_ENOTSUP, nothing stored. */
EDGELOG_API int edgelog_append_json(edgelog *log, const char *json, size_t len, uint64_t *seq);

/* Make every record appended so far durable (fdatasync of the segment and,
 * if a segment was created since the last sync, of the directory). */
EDGELOG_API int edgelog_sync(edgelog *log);

/*
 * Do the engine's periodic work once: interval sync, preparing the next
 * segment, uploading what is due (one batch, retried per the backoff), and
 * compaction. Waits at most timeout_ms for work to become due. For
 * programs that want no extra thread: call it from the main loop.
 * edgelog_start() runs the same work on its own thread.
 *
 * Thread-free only as far as libcurl is: with an endpoint that names a host
 * (not an IP address), a libcurl built with the threaded resolver (Debian's
 * and most distributions') resolves the name on a thread of its own inside
 * this call. Ways out: an endpoint with an IP address literal
 * (http://192.0.2.10:8080/log), or a libcurl built with the synchronous
 * resolver (--disable-threaded-resolver) or with c-ares (--enable-ares).
 * With the uploader off (EDGELOG_WITH_UPLOADER=OFF) nothing starts a
 * thread.
 */
EDGELOG_API int edgelog_step(edgelog *log, int timeout_ms);

/*
 * Start the background work: one worker thread that runs edgelog_step()'s
 * work until close (interval syncs, uploads, compaction), and one small
 * helper thread that prepares the next segment file and unmaps sealed ones,
 * so that neither waits behind a slow fdatasync or HTTP request.
 * EDGELOG_ESTATE if already started. While they run, edgelog_step() returns
 * EDGELOG_ESTATE.
 */
EDGELOG_API int edgelog_start(edgelog *log);

/* Stop the worker, deliver what can be delivered within close_grace_ms
 * (when an endpoint is set), sync, save the cursor, release the lock, free.
 * Records not delivered stay buffered for the next open. NULL is a no-op.
 * Returns the first error met while doing so (the handle is freed either
 * way). */
EDGELOG_API int edgelog_close(edgelog *log);

/* Detail of the last failure on `log` (one line), which may come from the
 * engine's own threads (a failed interval sync, a file removed under it).
 * With log == NULL: the last failure on this thread of a call that has no
 * handle (edgelog_open, edgelog_config_from_env, the reader, the offline
 * helpers). Never NULL. The string is this thread's copy: valid until the
 * thread's next edgelog_errmsg call, safe while other threads work. */
EDGELOG_API const char *edgelog_errmsg(const edgelog *log);

/* ------------------------------------------------------------------------
 * Status
 * ---------------------------------------------------------------------- */
#define EDGELOG_ALERT_PENDING (1u << 0) /* pending > alert_pending */
#define EDGELOG_ALERT_SIZE (1u << 1)    /* size > alert_size_pct of the cap */
#define EDGELOG_ALERT_FAILED (1u << 2)  /* failed > alert_failed */

#define EDGELOG_STATUS_VERSION 1

/*
 * What edgelog_get_status and edgelog_status_dir fill. Initialise with
 * edgelog_status_init() (or set version to EDGELOG_STATUS_VERSION) before
 * the first call: the library reads `version` to know which layout the
 * caller allocated, so a newer library never writes past an older
 * caller's struct (fields are only ever added at the end). Any other
 * version gives EDGELOG_EINVAL. The calls leave `version` as it is.
 */
typedef struct edgelog_status {
	unsigned version; /* EDGELOG_STATUS_VERSION (set by edgelog_status_init) */
	char device_id[128];
	uint64_t pending;        /* stored, not yet acknowledged, not dropped */
	uint64_t sent;           /* acknowledged by the cloud (persistent) */
	uint64_t failed;         /* moved to failed/ after a permanent rejection */
	uint64_t dropped;        /* removed unacked by the size cap (drop_oldest) */
	uint64_t expired;        /* removed unacked by age retention */
	uint64_t corrupt;        /* frames found damaged and skipped */
	uint64_t size_bytes;     /* bytes the directory's files use */
	uint64_t max_size_bytes; /* the cap */
	uint64_t segments;       /* segment files, the active one included */
	uint64_t oldest_pending_age_s;
	int is_connected;
	char last_error[256];
	int64_t last_success_at; /* unix seconds of the last ack; 0: never */
	uint64_t retry_in_s;
	uint64_t recovered; /* records delivered after an outage ended */
	unsigned alerts;    /* EDGELOG_ALERT_* bits */

	/* Beyond the list of README.md's "Status, alerts and dead letters". */
	uint64_t appended;      /* records accepted since the directory was created */
	uint64_t first_seq;     /* oldest stored record; 0: none */
	uint64_t last_seq;      /* newest accepted record; 0: none */
	uint64_t acked_seq;     /* every seq <= this is acknowledged */
	uint64_t durable_seq;   /* every seq <= this has been fdatasync'd */
	uint64_t torn_tails;    /* torn tails truncated at open */
	uint64_t torn_bytes;    /* bytes removed by those truncations */
	uint64_t cursor_resets; /* cursor found bad or ahead of the data and repaired */
	uint64_t sync_failures; /* failed fdatasync calls (segment sealed as suspect) */
	uint64_t requeued;      /* dead letters moved back by edgelog_requeue_failed */
	uint64_t failed_bytes;  /* bytes the dead letters in failed/ use */
	/* The thresholds the alerts bits were computed with. */
	uint64_t alert_pending;
	uint64_t alert_size_pct;
	uint64_t alert_failed;
	int upload_enabled; /* an endpoint is configured (0: buffer only) */
	/* Dead letters set aside by poison detection (records that kept
	 * getting 5xx answers while the endpoint accepted others; counted in
	 * failed too). */
	uint64_t poisoned;
	int64_t last_error_at; /* unix seconds when last_error happened; 0: none */
	int running;           /* 1: a running engine reports; 0: none runs (offline, or
				* the snapshot an engine left at close) */
} edgelog_status;

/* Zero *st and set its version to EDGELOG_STATUS_VERSION. */
EDGELOG_API void edgelog_status_init(edgelog_status *st);

/* Snapshot of the engine's counters and state. st->version must be set
 * (edgelog_status_init). */
EDGELOG_API int edgelog_get_status(edgelog *log, edgelog_status *st);

/*
 * Status as text, the bytes `edgelog status --json` and `edgelog metrics`
 * print and the running engine writes to DIR/status.json and metrics_file.
 *
 * Both write into out (cap bytes, NUL-terminated) and put the text's
 * length, without the NUL, in *len (len may be NULL). If the text does not
 * fit they write as much as fits, NUL-terminated, set *len to the length
 * the whole text needs and return EDGELOG_ERANGE: call again with
 * *len + 1 bytes. out may be NULL when cap is 0 (to learn the length).
 * EDGELOG_EINVAL if st is NULL or its version is not one this library
 * knows. About 1.5 KiB of JSON and 6 KiB of Prometheus text; both grow
 * only with device_id and last_error.
 *
 * JSON: one object, no newline, its members in this order: "source" (when
 * source is not NULL: "live", "offline", "stale", "stopped"), every field
 * of edgelog_status in the struct's order under its own name (version and
 * alerts excepted; 0 times and empty strings as null, booleans as
 * true/false), then "alerts": [{"alert": "pending", "message": "pending
 * 1001 > 1000"}, ...].
 *
 * Prometheus: the text exposition format, one HELP, TYPE and sample line
 * per metric, each named edgelog_* with a device_id label: counters
 * (_total) for totals that only grow, gauges for levels, and
 * edgelog_alert{alert="..."} 1 while an alert is active, 0 otherwise.
 */
EDGELOG_API int edgelog_status_json(const edgelog_status *st, const char *source, char *out,
				    size_t cap, size_t *len);
EDGELOG_API int edgelog_status_prometheus(const edgelog_status *st, char *out, size_t cap,
					  size_t *len);

/* Name of one EDGELOG_ALERT_* bit ("pending", "size", "failed"; "unknown"
 * for anything else). The string is static. */
EDGELOG_API const char *edgelog_alert_name(unsigned alert);

/* Why the alert `alert` (one EDGELOG_ALERT_* bit) is raised for st, as one
 * line into out (cap bytes, NUL-terminated, cut to fit): "pending 1001 >
 * 1000", "size 950000 bytes > 90% of the cap (1000000 bytes)", "failed
 * 101 > 100". The message `edgelog status` prints, alert_fn receives and
 * the JSON carries. */
EDGELOG_API void edgelog_alert_message(const edgelog_status *st, unsigned alert, char *out,
				       size_t cap);

/* Run retention now (acknowledged segments, age, size cap). force also
 * drops acknowledged data kept for any reason and deletes dead letters
 * older than retention_days (counted as expired, no longer failed). */
EDGELOG_API int edgelog_cleanup(edgelog *log, int force);

/* Mark every record up to and including `seq` as acknowledged and make the
 * cursor durable. The uploader calls this on a 2xx; a local consumer that
 * ships records itself may call it too. EDGELOG_EINVAL if seq is beyond
 * the last appended record. Acks never move backwards. */
EDGELOG_API int edgelog_ack(edgelog *log, uint64_t seq);

/* ------------------------------------------------------------------------
 * Offline helpers: each works on a directory no engine holds (it takes the
 * directory lock itself; EDGELOG_ELOCKED naming the holder's pid if an
 * engine runs), except edgelog_status_dir and edgelog_export_stats, which
 * only read and work alongside a running engine.
 * ---------------------------------------------------------------------- */

/* Status of a directory without opening an engine. *live (live may be
 * NULL) says where the figures come from: 1, the running engine's fresh
 * snapshot (DIR/status.json, connection state included); 0, no engine
 * holds the directory: computed from the segments, the cursor and failed/;
 * -1, an engine holds it but left no fresh snapshot (hung, or a version
 * that writes none): computed from the files, which may lag behind it. */
EDGELOG_API int edgelog_status_dir(const char *dir, edgelog_status *st, int *live);

/* The device id stored in a directory (DIR/meta.json, written by the
 * engine): what offline status, metrics, `dump --json` and `tail --json`
 * use when no device id is given. path may be the directory, its
 * segments/ or a segment file in it. 0, or EDGELOG_ENOTFOUND if none is
 * stored, EDGELOG_EINVAL if it does not fit in cap bytes. */
EDGELOG_API int edgelog_dir_device_id(const char *path, char *out, size_t cap);

/* Write status plus per-segment detail as JSON to out_path ("-": stdout).
 * Atomic: a temporary file renamed over out_path. */
EDGELOG_API int edgelog_export_stats(const char *dir, const char *out_path);

/* Move every dead letter in DIR/failed/ back into the log, as new records
 * (new seq, timestamp of the requeue) carrying the original data, so the
 * uploader tries them again. Crash-safe and exactly once: a journal in
 * failed/ lets the next open (or the next call) finish an interrupted
 * requeue without appending any record twice. failed goes down and
 * requeued up by the count; edgelog_errmsg(NULL) says how many. */
EDGELOG_API int edgelog_requeue_failed(const char *dir);

/* What edgelog_repair did. */
typedef struct edgelog_repair_report {
	uint64_t segments;        /* segment files examined */
	uint64_t records;         /* valid records kept */
	uint64_t torn_tails;      /* tails truncated (incomplete last write) */
	uint64_t torn_bytes;      /* bytes removed by those truncations */
	uint64_t damaged_ranges;  /* damaged ranges moved to quarantine */
	uint64_t damaged_bytes;   /* bytes in those ranges */
	uint64_t bad_segments;    /* whole segment files quarantined */
	uint64_t lost_seq_ranges; /* seq ranges with no valid record left */
	int cursor_rebuilt;       /* the cursor was missing or bad: rebuilt */
	char quarantine_dir[256]; /* where damaged bytes were put ("" if none) */
	uint64_t first_seq;       /* oldest record kept (0: none) */
	uint64_t last_seq;        /* newest record kept (0: none) */
	/* Input, the only fields edgelog_repair reads (it zeroes the rest):
	 * if on_action is set it is called once per change made, with one
	 * line naming the file, the byte offset and the bytes concerned. */
	void (*on_action)(void *payload, const char *line);
	void *on_action_payload;
} edgelog_repair_report;

/* Repair a damaged directory in place: truncate torn tails, move damaged
 * frames and unreadable segments into DIR/quarantine/ (never deleted),
 * rebuild a missing or bad cursor conservatively (a record whose ack is
 * uncertain is sent again rather than lost). Afterwards every frame in
 * segments/ verifies. report may be NULL. */
EDGELOG_API int edgelog_repair(const char *dir, edgelog_repair_report *report);

/* ------------------------------------------------------------------------
 * Reading back. Works on a directory an engine is writing (it sees records
 * as they are appended) and on one nobody holds. Never modifies anything.
 * ---------------------------------------------------------------------- */
typedef struct edgelog_reader edgelog_reader;

typedef struct edgelog_record {
	uint64_t seq;
	int64_t ts_ms;    /* wall clock at append, ms since the epoch */
	const void *data; /* the msgpack object as appended */
	size_t len;
	const char *segment; /* file name of the segment holding it */
	uint64_t offset;     /* byte offset of its frame in that file */
} edgelog_record;

/* Called for each damaged range the reader skips. `segment` is a file
 * name, `offset` the first damaged byte, `length` the bytes skipped. */
typedef void (*edgelog_corrupt_fn)(void *payload, const char *segment, uint64_t offset,
				   uint64_t length, const char *reason);

/* Open a reader on directory `dir` positioned at the first record whose
 * seq >= from_seq (0: the oldest stored). `dir` may also name one segment
 * file, which is then read alone. */
EDGELOG_API int edgelog_reader_open(edgelog_reader **out, const char *dir, uint64_t from_seq);

/* Install a callback for damaged ranges (before the first next()). */
EDGELOG_API void edgelog_reader_on_corrupt(edgelog_reader *r, edgelog_corrupt_fn fn, void *payload);

/*
 * Next record, in sequence order. Returns 0 and fills *rec, or EDGELOG_EOF
 * at the current end (call again later to see newer appends), or an error.
 * Records are seen as soon as they are appended, before they are synced:
 * under sync=interval or none a power cut may take a record a reader saw,
 * and its seq may later hold another record (see edgelog_append). Read
 * only up to edgelog_status.durable_seq to see durable records only.
 * A seq that repeats (a directory two writers wrote) is damage.
 * rec->data and rec->segment stay valid until the next call on `r`.
 * Damaged frames are skipped (counted in edgelog_reader_corrupt()).
 */
EDGELOG_API int edgelog_reader_next(edgelog_reader *r, edgelog_record *rec);

/* Damaged ranges skipped so far. */
EDGELOG_API uint64_t edgelog_reader_corrupt(const edgelog_reader *r);

EDGELOG_API void edgelog_reader_close(edgelog_reader *r);

/* The JSON text of a record, the shape the uploader sends. With device_id
 * set: the wire envelope {"device_id":"...","seq":N,"ts":N,"data":...}
 * (no newline), the line `edgelog dump --json` prints; with device_id
 * NULL: rec->data alone as compact JSON. Output as edgelog_status_json:
 * into out (cap bytes, NUL-terminated), the length in *len, EDGELOG_ERANGE
 * if cut. EDGELOG_EINVAL if rec->data is not one well-formed msgpack
 * object. At most 16 bytes of JSON per byte of msgpack, plus the
 * envelope. */
EDGELOG_API int edgelog_record_json(const edgelog_record *rec, const char *device_id, char *out,
				    size_t cap, size_t *len);

/* ------------------------------------------------------------------------
 * msgpack objects: where one ends. For a program that receives records as
 * concatenated msgpack objects (`edgelog run --input-format msgpack`, a
 * receiver of msgpack bodies) and cuts them into the single objects
 * edgelog_append takes. Both read each header with the library's own
 * decoder and apply the rules edgelog_append applies, no more: the byte
 * 0xc1 (never used) is invalid, and so is nesting deeper than
 * EDGELOG_MSGPACK_DEPTH. Every object they find complete, edgelog_append
 * accepts. msgpack has no marker to resynchronise on: after an invalid
 * byte the rest of the input cannot be split.
 * ---------------------------------------------------------------------- */
#define EDGELOG_MSGPACK_DEPTH 256

/*
 * Measure the msgpack object that starts at buf (len bytes readable; more
 * may follow it). Returns:
 *  - 0: it is complete, *size bytes long (buf[0 .. *size));
 *  - EDGELOG_EOF: buf ends inside it (len 0 too): more bytes are needed;
 *    *size = len;
 *  - EDGELOG_EINVAL: buf[*size] is the byte where it stops being msgpack
 *    (0xc1, or the last byte of the header of a container opened below
 *    EDGELOG_MSGPACK_DEPTH levels); also, with *size 0 or size NULL, for
 *    buf NULL with len > 0.
 * One pass over the headers (payload bytes are stepped over, not read), no
 * recursion, no allocation: bounded on any input. Thread safe.
 */
EDGELOG_API int edgelog_msgpack_measure(const void *buf, size_t len, size_t *size);

/* A stream of msgpack objects split as its bytes arrive, in chunks of any
 * size: edgelog_msgpack_measure, resumable. It keeps no byte of the input
 * (about 2 KiB of state), so a caller can pass over an object too large
 * to hold and go on with the next. One splitter per stream; not thread
 * safe. */
typedef struct edgelog_msgpack_split edgelog_msgpack_split;

/* A splitter between objects. EDGELOG_ENOMEM, EDGELOG_EINVAL (out NULL). */
EDGELOG_API int edgelog_msgpack_split_open(edgelog_msgpack_split **out);

/*
 * Feed the next n bytes of the stream, p[0 .. n). Stops at the end of an
 * object. Returns:
 *  - 0: an object ends at p[*used - 1] (it began where the previous one
 *    ended, or at the stream's first byte); the next call starts the next
 *    object;
 *  - EDGELOG_EOF: all n bytes were read (*used = n) and the object goes on
 *    (n 0 too);
 *  - EDGELOG_EINVAL: p[*used - 1] is the byte where the stream stops being
 *    msgpack (as edgelog_msgpack_measure says); the splitter is spent:
 *    every later call returns EDGELOG_EINVAL with *used 0. Also for a NULL
 *    argument (*used 0 when used is not NULL).
 */
EDGELOG_API int edgelog_msgpack_split_feed(edgelog_msgpack_split *s, const void *p, size_t n,
					   size_t *used);

/* Bytes of the current object read so far: 0 between objects (after a
 * return of 0, and before the first byte). Non-zero at the end of the
 * input means the last object was cut short. */
EDGELOG_API uint64_t edgelog_msgpack_split_pending(const edgelog_msgpack_split *s);

EDGELOG_API void edgelog_msgpack_split_close(edgelog_msgpack_split *s);

/* ------------------------------------------------------------------------
 * Verifying and salvaging: a walk over every frame of a directory (or a
 * directory of segment files, or one segment file) that reports each
 * record, each damaged range and each gap in the sequence numbers through
 * callbacks, as LevelDB's log reader reports to its Reporter. What
 * `edgelog dump` prints. Read-only on the source: safe next to a running
 * engine.
 * ---------------------------------------------------------------------- */
#define EDGELOG_SCAN_VERSION 1

/* Flags of edgelog_scan.flags. */
#define EDGELOG_SCAN_CURSOR (1u << 0) /* check DIR/cursor too: on_file_damage, counted */
/* Look at the end of the newest segment twice, 100 ms apart: an invalid
 * tail (or header) that stays is a torn tail (or a damaged header):
 * reported through on_damage and counted. Without it that end counts as a
 * write in progress. Only when to_seq is UINT64_MAX. */
#define EDGELOG_SCAN_TAIL (1u << 1)

/*
 * What to walk and whom to tell; what was found. Initialise with
 * edgelog_scan_init() (version, to_seq = UINT64_MAX), set the inputs, call
 * edgelog_verify() or edgelog_salvage(), read the outputs. Callbacks may
 * be NULL; they run on the calling thread, in file order. Strings and
 * record bytes they receive are valid during the call only.
 */
typedef struct edgelog_scan {
	unsigned version; /* EDGELOG_SCAN_VERSION */

	/* Input. */
	unsigned flags;    /* EDGELOG_SCAN_* */
	uint64_t from_seq; /* first record reported (0: the oldest) */
	uint64_t to_seq;   /* last one (inclusive); UINT64_MAX: to the end */
	void *payload;     /* passed to every callback */
	/* Each segment file of the path, in order, before any record: its
	 * file name and size in bytes. */
	void (*on_segment)(void *payload, const char *segment, uint64_t file_bytes);
	/* Each valid record, in sequence order; acked 1 or 0 as the cursor
	 * says, -1 without a readable cursor. A non-zero return stops the
	 * walk: edgelog_verify then returns that value. */
	int (*on_record)(void *payload, const edgelog_record *rec, int acked);
	/* Each damaged range skipped: segment file name, first damaged byte,
	 * bytes skipped, why. */
	edgelog_corrupt_fn on_damage;
	/* A file damaged as a whole (with EDGELOG_SCAN_CURSOR: the cursor):
	 * its path and why. */
	void (*on_file_damage)(void *payload, const char *path, const char *reason);
	/* Each gap between two records: seqs lo..hi are missing before
	 * `next`. accounted 1 when they are explained (acknowledged, a gap
	 * the cursor records, or listed in quarantine/lost-seqs by repair):
	 * not damage. */
	void (*on_gap)(void *payload, uint64_t lo, uint64_t hi, int accounted,
		       const edgelog_record *next);
	/* edgelog_salvage only, once the copy is durable: each run of seqs
	 * saved (lost 0) and each run missing between saved ones (lost 1). */
	void (*on_range)(void *payload, int lost, uint64_t lo, uint64_t hi);

	/* Output (zeroed by the call). */
	uint64_t records;    /* valid records reported (salvage: saved) */
	uint64_t data_bytes; /* their payload bytes */
	uint64_t first_seq;  /* first and last of them (0: none) */
	uint64_t last_seq;
	uint64_t damaged;        /* damaged ranges and damaged files */
	uint64_t damaged_bytes;  /* bytes in the damaged ranges */
	uint64_t gaps;           /* gaps not accounted for (damage) */
	uint64_t gaps_accounted; /* gaps explained */
	int have_cursor;         /* a cursor was read: the two below are set */
	uint64_t cursor_acked_seq;
	uint64_t cursor_last_seq;
	uint64_t lost_ranges; /* edgelog_salvage: runs of seqs not saved */
} edgelog_scan;

/* Zero *s, set version and to_seq = UINT64_MAX. */
EDGELOG_API void edgelog_scan_init(edgelog_scan *s);

/*
 * Walk every frame of path (an edgelog directory, a directory of segment
 * files, or one segment file) from s->from_seq to s->to_seq and report
 * through s's callbacks. Returns 0 when the walk finished (damage found is
 * in the outputs, not an error), the non-zero value an on_record returned,
 * EDGELOG_ENOTFOUND if path does not exist or holds no segments,
 * EDGELOG_EINVAL for a bad argument (version unset), or an I/O error.
 */
EDGELOG_API int edgelog_verify(const char *path, edgelog_scan *s);

/* Bytes of frame header in front of each record's payload on disk
 * (segments/FORMAT.md): data_bytes + records * this is the bytes of
 * frames. */
#define EDGELOG_FRAME_HEADER 16

/*
 * Salvage: copy every valid record of path (same seq, same time, same
 * bytes) into outdir, a new edgelog directory (created; it may exist if
 * empty; it must not lie inside path), as edgelog_verify walks it. The
 * copy's cursor acknowledges nothing that was saved: every salvaged
 * record is sent again (receivers drop repeats by seq); its last_seq is
 * at least the source cursor's, so no seq the source used is handed out
 * again. Runs of seqs missing between saved records go to the copy's
 * cursor gaps and to outdir/quarantine/lost-seqs. The copy is made in a
 * staging directory beside outdir (".NAME.salvage" for outdir NAME),
 * synced, then renamed to outdir and the parent synced: a power cut or a
 * kill leaves outdir as it was (absent or empty) or the whole copy, never
 * part of one; a failed salvage removes its staging directory, and the
 * next salvage into outdir removes one an interrupted salvage left.
 * EDGELOG_EINVAL (message naming outdir) when outdir is unusable: not a
 * directory, not empty, inside path, cannot be created.
 */
EDGELOG_API int edgelog_salvage(const char *path, const char *outdir, edgelog_scan *s);

/* The segment files of path (an edgelog directory, or a directory of
 * segment files), oldest first: for each, its file name, the lowest seq it
 * can hold (its base, from the name) and its size in bytes. fn may be
 * NULL; a non-zero return from it stops the listing. Returns the number
 * of segment files listed (>= 0), or EDGELOG_ENOTFOUND, EDGELOG_EIO. */
EDGELOG_API int edgelog_list_segments(const char *path,
				      int (*fn)(void *payload, const char *segment,
						uint64_t base_seq, uint64_t file_bytes),
				      void *payload);

/* What the cursor of directory dir says is acknowledged: every seq <=
 * *acked_seq. 0; EDGELOG_ENOTFOUND when dir has no cursor (or path is not
 * a directory). A cursor with no valid copy left gives 0 and *acked_seq 0
 * (nothing is taken as acknowledged; edgelog_verify with
 * EDGELOG_SCAN_CURSOR reports it). */
EDGELOG_API int edgelog_dir_acked_seq(const char *dir, uint64_t *acked_seq);

#ifdef __cplusplus
}
#endif
#endif /* EDGELOG_H */
