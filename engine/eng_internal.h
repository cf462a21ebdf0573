/*
 * eng_internal.h - the engine's private state, shared by the engine's files
 * and by the tests (which open an engine on a fault-injecting I/O seam).
 *
 * Who owns what: struct edgelog is in parts, each named with the file that
 * owns (writes) it; the declarations at the end are grouped by the file
 * that defines them, in layer order, so a file calls only those listed
 * after its own:
 *
 *   eng_json.c eng_offline.c       above the engine (append_json, requeue;
 *                                  eng_json_off.c: built without JSON)
 *   eng_repair.c eng_scan.c        beside it (a directory, no engine open)
 *   eng_msgpack.c                  beside it: where a msgpack object ends
 *   eng_reader.c                   the public reader (eng_scan.c reads with it)
 *   eng_engine.c                   open, append, worker, acks, status, close
 *   eng_upload.c eng_compact.c     what the worker runs: upload, retention,
 *   eng_guard.c eng_dead.c         the guard, dead-letter expiry
 *   eng_sync.c                     group commit, cursor stores
 *   eng_status.c eng_meta.c        status, alerts, snapshot; meta.json
 *   eng_jread.c                    reading back the JSON it wrote
 *   eng_space.c                    the age clock, bytes against the cap
 *   eng_lock.c eng_config.c        the directory lock; config, errors, log
 */
#ifndef ENG_INTERNAL_H
#define ENG_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>

#include <edgelog.h>

#include "seg.h"

#define ENG_SEGMENTS_DIR "segments"
#define ENG_LOCK_FILE "LOCK"
/* The cap holds at least this many segments (eng_config.c). */
#define ENG_MIN_SEGMENTS 4
/* The largest segment_bytes (eng_config.c): 1 GiB; 256 MiB on a 32-bit
 * target, where an open log maps two segments (the active one and the
 * spare) and each reader one more, out of 2 to 3 GiB of address space. */
#define ENG_SEGMENT_BYTES_MAX (sizeof(void *) >= 8 ? 1u << 30 : 1u << 28)
#define ENG_META_FILE "meta.json"

/* DIR/meta.json (eng_meta.c, FORMAT.md). */
typedef struct eng_meta {
	char device_id[128];
	char last_error[256];
	int64_t last_error_at; /* unix seconds; 0: none */
	uint64_t poisoned;
} eng_meta;

/* The configuration after defaults and validation; strings owned. */
typedef struct eng_conf {
	char *dir;
	char *endpoint;
	char *device_id;
	int device_id_given; /* set by the caller (or the environment), not the host name */
	uint64_t max_size_bytes;
	uint32_t retention_days;
	uint32_t batch_size, batch_timeout_ms;
	edgelog_sync_mode sync;
	uint32_t sync_interval_ms;
	edgelog_full_policy full_policy;
	edgelog_format format;
	edgelog_compression compression;
	uint32_t retry_base_ms, retry_max_ms, http_timeout_ms;
	uint32_t segment_bytes, segment_max_age_s;
	uint64_t alert_pending, alert_failed;
	uint32_t alert_size_pct;
	uint32_t close_grace_ms, upload_max_records, upload_max_kb;
	char *auth_token; /* resolved: the token itself, or read from the file */
	char *ca_file, *client_cert, *client_key;
	void (*log_fn)(void *payload, int level, const char *msg);
	void *log_payload;
	void (*alert_fn)(void *payload, unsigned alert, int active, const char *msg);
	void *alert_payload;
	uint32_t status_interval_ms;
	char *metrics_file;
	edgelog_data_encoding data_encoding;
	uint32_t poison_tries;
	int segment_reuse; /* 1: retention recycles acknowledged segment files */
} eng_conf;

/* Fill *c from cfg with defaults applied; EDGELOG_ECONFIG naming the field
 * on an invalid value. auth_token_file is read through v (the I/O seam). */
int eng_conf_resolve(eng_conf *c, const edgelog_config *cfg, const seg_vfs *v, seg_err *e);
void eng_conf_free(eng_conf *c);

/* Alerts and the status snapshot: owned by eng_status.c, which is given
 * the status the engine computed (it never calls back into the engine). */
typedef struct eng_snap {
	pthread_mutex_t alert_mu; /* orders alert callbacks */
	unsigned alerts_reported;
	pthread_mutex_t mu; /* snapshot and metrics file writes, meta.json stores */
	int64_t next_snapshot_mono, next_alert_mono;
	int snap_warned, metrics_warned;
	seg_buf last; /* the figures last written */
	int64_t written_mono;
} eng_snap;

/* Retention (eng_compact.c; the age clock is read through eng_space.c),
 * under mu. */
typedef struct eng_retention {
	int64_t age_base_ms, age_mono_ms; /* the age clock: age_base at age_mono */
	int compacting;                   /* a pass runs (others wait on sync_cv) */
	int64_t next_compact_mono;
	uint64_t dead_bytes; /* failed/ on disk, as last measured */
	/* segments/.recycle holds a segment file set aside for the writer
	 * (its bytes stay in the writer's count until it is reused or
	 * removed). */
	int recycle_ready;
	int recycle_busy; /* the preparer is making it a spare */
	uint64_t recycle_bytes;
} eng_retention;

/* A thread waiting for durability in eng_wait_durable, on its own stack
 * (eng_sync.c). Linked into eng_sync's list under mu; state is also read
 * without mu by the thread it belongs to (atomic, futex word). */
typedef struct eng_waiter {
	struct eng_waiter *next;
	uint64_t seq; /* durable when the round that covers it succeeded */
	int rc;       /* that round's result, set before state says DONE */
	unsigned state;
} eng_waiter;

/* Group commit (eng_sync.c), under mu: one round (fdatasync) at a time;
 * the threads waiting for durability are listed in seq order, and the
 * round that covers them wakes each with its result (FORMAT.md, "Group
 * commit"). */
typedef struct eng_sync {
	int syncing; /* a round runs (close waits for it on edgelog.sync_cv) */
	int64_t last_sync_mono;
	eng_waiter *head, *tail; /* waiting threads, oldest (lowest seq) first */
	unsigned bell;           /* futex word the waiters sleep on (atomic) */
	unsigned n_wait;         /* listed */
	unsigned n_next;         /* listed and not covered by the round running */
	/* Gathering (sync=always): a round starts when as many threads wait
	 * as when the last round ended (expect), the thread that completes
	 * the count leading it; the first to wait (gatherer) starts it anyway
	 * at gather_until. */
	unsigned expect;
	eng_waiter *gatherer;
	int64_t gather_until; /* mono_ns */
	int64_t sync_ns_avg;  /* moving average of a round's fdatasync time */
	/* Where the last interval round found the end of data (map, pos): the
	 * bytes appended between two rounds tell how far ahead to make the
	 * pages writable again after a round (FORMAT.md, "Tail latency"). */
	uint8_t *redirty_map;
	size_t redirty_pos;
} eng_sync;

/* The engine's side of the uploader (eng_upload.c), under mu unless
 * said otherwise. */
typedef struct eng_upload {
	struct upl *up;
	int abort_upload;      /* atomic: cut a transfer short (closing) */
	int64_t upl_next_mono; /* do not call the uploader before this */
	int connected;
	int in_outage; /* failures since the last drained backlog */
	int64_t retry_at_mono;
	char upl_error[256];
	int64_t upl_error_at; /* unix seconds */
	uint64_t poisoned;    /* poison dead letters, all runs */
} eng_upload;

/* Files removed or replaced under the engine (eng_guard.c). */
typedef struct eng_guard_state {
	int64_t next_guard_mono;
	/* The cursor file is gone: the next eng_store_cursor makes one
	 * (written under both mu and cur_mu: read under either). */
	int cursor_reopen;
} eng_guard_state;

/* DIR/meta.json (eng_meta.c): as loaded at open; as last written (snap.mu). */
typedef struct eng_meta_state {
	eng_meta loaded, written;
	int warned;
} eng_meta_state;

/*
 * An open log. The engine proper (eng_engine.c) owns the fields at the
 * top; each part below belongs to the file named beside it, which is the
 * only one to write it (others may read under the lock it names).
 */
struct edgelog {
	const seg_vfs *vfs;
	eng_conf conf;
	char segdir[4200];
	char cursor_path[4200];
	char faileddir[4200];

	pthread_mutex_t mu; /* writer, counters, sync state */
	/* A sync round (eng_sync.c) or a retention pass (eng_compact.c)
	 * finished. */
	pthread_cond_t sync_cv;
	pthread_cond_t work_cv; /* wakes the worker (close, work due) */
	pthread_mutex_t cur_mu; /* serialises cursor stores (held without mu) */

	seg_writer w;   /* called through seg_writer_*, never written directly */
	int lock_fd[2]; /* the directory and LOCK (eng_lock.c) */
	int cursor_fd;
	cur_state cur; /* guarded by mu; stored under cur_mu (eng_sync.c) */
	int spare_busy;
	uint64_t spare_tries; /* spares the preparer finished trying to make */

	uint64_t first_seq;
	uint64_t durable_acked; /* acked_seq as last stored durably in the cursor */
	/* Time of the oldest pending record, for status: found by reading the
	 * log, so kept until the cursor moves. */
	uint64_t oldest_for_acked;
	int64_t oldest_ts_ms;

	pthread_t worker;
	int worker_running;
	/* The preparer: makes spare segments and unmaps retired ones, so that
	 * neither waits behind a long fdatasync in the worker. */
	pthread_t prep;
	int prep_running;
	pthread_cond_t prep_cv;
	int stopping;

	char errmsg[512];  /* eng_set_error, eng_set_msg (eng_config.c) */
	int64_t errmsg_at; /* unix seconds */

	eng_retention ret;       /* eng_compact.c, eng_space.c */
	eng_sync sync;           /* eng_sync.c */
	eng_upload upload;       /* eng_upload.c */
	eng_guard_state guard;   /* eng_guard.c */
	eng_meta_state meta;     /* eng_meta.c */
	eng_snap snap;           /* eng_status.c */
	pthread_mutex_t dead_mu; /* eng_dead.c: one dead-letter expiry at a time */
};

/* ---- what each file offers ---------------------------------------------
 *
 * In layer order: a file calls only files in the sections after its own
 * (the call graph between engine/ files has no circle). eng_json.c and
 * eng_offline.c stand above the engine; eng_repair.c, eng_scan.c and
 * eng_reader.c beside it (public calls on a directory, no engine open;
 * their _vfs forms, for tests, are declared here).
 */

/* eng_json.c (above the engine): edgelog_append_json; JSON text to one
 * msgpack object (malloc'd into *out). */
int eng_json_to_msgpack(const char *json, size_t len, void **out, size_t *out_len, seg_err *e);

/* eng_offline.c (above the engine): edgelog_requeue_failed on a given I/O
 * seam (tests). */
int eng_requeue_failed_vfs(const char *dir, const seg_vfs *vfs);

/* eng_repair.c: edgelog_repair on a given I/O seam (tests). */
int eng_repair_vfs(const seg_vfs *v, const char *dir, edgelog_repair_report *report);

/* eng_status.c: edgelog_status_dir on a given I/O seam (tests): the lock
 * probe, the snapshot, its clock and the files all read through v. */
int eng_status_dir_vfs(const seg_vfs *v, const char *dir, edgelog_status *st, int *live);

/* eng_scan.c: edgelog_verify and edgelog_salvage on a given I/O seam
 * (tests): the walk, the reads and the salvage's copy all go through v. */
int eng_verify_vfs(const seg_vfs *v, const char *path, edgelog_scan *s);
int eng_salvage_vfs(const seg_vfs *v, const char *path, const char *outdir, edgelog_scan *s);

/* eng_reader.c: edgelog_reader_open on a given I/O seam. */
int eng_reader_open_vfs(const seg_vfs *v, edgelog_reader **out, const char *dir, uint64_t from_seq);

/* eng_engine.c: the public calls on an open log, and: */
/* Open on a given I/O seam (tests pass fault injectors). */
int eng_open_vfs(edgelog **out, const edgelog_config *cfg, const seg_vfs *vfs);
/* Append without validation (the record was validated once already). */
int eng_append_raw(edgelog *log, const void *data, size_t len, uint64_t *seq);

/* eng_upload.c (eng_upload_off.c without the uploader): the engine side
 * of the uploader. State: eng_upload. */
int eng_upload_init(edgelog *log, seg_err *e);
int eng_upload_work(edgelog *log, int flush); /* mu held; 1 if it did something */
void eng_upload_drain(edgelog *log);          /* at close, without the worker */
void eng_upload_free(edgelog *log);

/* eng_compact.c: run a retention pass (mu held; dropped around I/O).
 * mode: ENG_COMPACT_ROUTINE (the schedule, edgelog_cleanup, the cap: may
 * recycle the oldest acknowledged segment), ENG_COMPACT_FREE (an
 * allocation met ENOSPC: what holds no unacknowledged record goes first,
 * segments/.recycle included, nothing is recycled, nothing dropped beyond
 * the cap's own policy), ENG_COMPACT_DROP (the same, then under
 * drop_oldest the oldest segments, counted as dropped, until need more
 * bytes are free). Returns 0 or an error (recorded as the handle's).
 * State: the retention fields. */
enum {
	ENG_COMPACT_ROUTINE,
	ENG_COMPACT_FREE,
	ENG_COMPACT_DROP
};
int eng_compact(edgelog *log, int mode, uint64_t need);

/* eng_guard.c: once a second (mu held): if the active segment or the
 * cursor was removed or replaced under the engine, report it and write it
 * back. State: eng_guard_state. */
void eng_guard(edgelog *log);

/* eng_dead.c: dead-letter files (failed/) and the journal that makes a
 * requeue or an expiry happen exactly once (the steps: top of eng_dead.c). */
#define ENG_JOURNAL_FILE "JOURNAL"
typedef struct eng_journal {
	char op[16];        /* "requeue" or "expire" */
	char file[64];      /* dead-letter segment file name */
	uint64_t n;         /* its records */
	uint64_t first_seq; /* requeue: seq of its first record in the log */
	uint64_t after;     /* cursor requeued / dead_expired once counted */
	uint64_t keep;      /* 1: the file had damage: quarantine it, not unlink */
} eng_journal;

/* The records of one dead-letter file: copies of their `data` values. */
typedef struct eng_dead_recs {
	uint8_t **data;
	size_t *len;
	size_t n, cap;
	int64_t newest_ts; /* when the newest was dead-lettered */
} eng_dead_recs;

/* Read every dead letter of failed/NAME (damaged ones skipped, counted
 * into *corrupt). */
int eng_dead_read(edgelog *log, const char *name, eng_dead_recs *d, uint64_t *corrupt, seg_err *e);
void eng_dead_free(eng_dead_recs *d);
/* Step 1. */
int eng_journal_write(edgelog *log, const eng_journal *j, seg_err *e);
/* 0 and *j, 1 if there is no journal, or an error. */
int eng_journal_read(edgelog *log, eng_journal *j, seg_err *e);
/* Steps 3 (unless the cursor shows it done) and 4. */
int eng_journal_count(edgelog *log, const eng_journal *j, seg_err *e);
/* Dead letters older than retention_days (cleanup with force). */
int eng_expire_dead(edgelog *log);
/* Step 2 (eng_engine.c, the one caller above this file that appends):
 * the records of d whose seq is not in the log yet, appended and synced. */
int eng_requeue_append(edgelog *log, const eng_journal *j, const eng_dead_recs *d, seg_err *e);

/* eng_sync.c: group commit and cursor stores. State: eng_sync. */
/* Lead one sync round (mu held; dropped around the fdatasync calls and
 * to wake the waiters it released). */
int eng_lead_sync(edgelog *log);
/* Wait until seq is durable, leading a round when it is this thread's
 * turn; the error of the round that covered seq. Called with mu held,
 * returns with mu released. */
int eng_wait_durable(edgelog *log, uint64_t seq);
/* Store the cursor: takes cur_mu, snapshots under mu, writes without mu. */
int eng_store_cursor(edgelog *log);

/* eng_status.c: status as JSON and Prometheus text, alerts, the snapshot,
 * a directory's status without an engine. State: eng_snap. */
unsigned eng_alert_bits(const edgelog_status *st);
/* 0 if st's version is one this library fills, else -1. */
int eng_status_check(const edgelog_status *st);
/* b's text into out, as edgelog_status_json documents (ERANGE when cut);
 * frees b. */
int eng_give_text(seg_buf *b, char *out, size_t cap, size_t *len);
/* Report alerts that started or cleared since the last call (no lock held). */
void eng_alerts_update(eng_snap *s, const eng_conf *c, const edgelog_status *st);
/* Status as one JSON object ({"source": source, ...} when source is set). */
void eng_status_json(const edgelog_status *st, const char *source, seg_buf *out);
/* "live", "offline" or "stale" for edgelog_status_dir's *live. */
const char *eng_status_source(int live);
/* Status as Prometheus text exposition. */
void eng_status_prom(const edgelog_status *st, seg_buf *out);
/* What is due at now (monotonic ms; s->mu held): 0, ENG_SNAP_ALERTS (look
 * at alerts: compute the status) or ENG_SNAP_WRITE (also write the
 * files). Moves the deadlines on. */
#define ENG_SNAP_ALERTS 1
#define ENG_SNAP_WRITE 2
int eng_snapshot_due(eng_snap *s, const eng_conf *c, int64_t now);
/* Write the status snapshot (DIR/status.json) and the metrics file from st
 * (s->mu held). final: at close, "stopped" and always written; otherwise
 * unchanged figures are not rewritten within 30 s (returns 0 then, else 1). */
int eng_snapshot_write(eng_snap *s, const seg_vfs *v, const eng_conf *c, const edgelog_status *st,
		       int final);

/* eng_meta.c: load DIR/meta.json (0, or -1 if missing or unreadable);
 * store one (durably). State: eng_meta_state. */
int eng_meta_load(const seg_vfs *v, const char *dir, eng_meta *m);
int eng_meta_store(const seg_vfs *v, const char *dir, const eng_meta *m, seg_err *e);
/* Store the engine's metadata if it changed since last stored, or with
 * force (no lock held but snap.mu, or at close). */
void eng_meta_sync(edgelog *log, int force);

/* eng_jread.c: reading back JSON the engine wrote (status.json, meta.json),
 * on the JSON tokenizer below. A value
 * found in a text: its type ('s' string, 'n' number, 't' true, 'f'
 * false, 'z' null, 'a' array, 'o' object) and its bytes (a string's
 * without the quotes, still escaped). Malformed text: not found. */
typedef struct eng_jv {
	char type;
	const char *p;
	size_t n;
} eng_jv;
/* The member `key` (written without escapes) of the object that is the
 * text[0..n): 0 and *out, or -1. */
int eng_json_member(const char *text, size_t n, const char *key, eng_jv *out);
/* Element i of the array *arr: 0 and *out, or -1. */
int eng_json_element(const eng_jv *arr, size_t i, eng_jv *out);
/* A number that is an integer in int64_t: 0, else -1. */
int eng_jv_int(const eng_jv *v, int64_t *out);
/* A string, unescaped, into out (cap > 0 bytes, NUL-terminated, cut to
 * fit): 0, else -1. */
int eng_jv_str(const eng_jv *v, char *out, size_t cap);
/* Code point cp (<= 0x10FFFF) as UTF-8 into u: its length, 1 to 4
 * (eng_jread.c: built with and without JSON input). */
size_t eng_utf8_encode(unsigned cp, char u[4]);

/*
 * The JSON tokenizer both readers stand on: the reader above (the engine's
 * own files) and eng_json.c's parser (edgelog_append_json). Positions are
 * indexes into s[0..n).
 */
/* Past the JSON whitespace at s[i]. Inline: the parser calls it between
 * every two tokens. */
static inline size_t eng_json_ws(const unsigned char *s, size_t n, size_t i)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}
/* The length of the literal true, false or null at s[i], or 0. */
size_t eng_json_literal(const unsigned char *s, size_t n, size_t i);

/* A number's grammar (RFC 8259) and, for an integer, its magnitude. */
typedef struct eng_jnum {
	size_t end;   /* index after the number */
	int integral; /* no fraction, no exponent */
	int neg;      /* a leading '-' */
	int big;      /* integral, and the magnitude does not fit 64 bits */
	uint64_t mag; /* integral: the magnitude */
} eng_jnum;
enum {
	ENG_JNUM_INVALID = 1,
	ENG_JNUM_LEADING_ZERO,
	ENG_JNUM_NO_FRACTION,
	ENG_JNUM_NO_EXPONENT
};
/* The number at s[i]: 0 and *num, or an ENG_JNUM_* (the number is
 * malformed: its start is where). */
int eng_json_number(const unsigned char *s, size_t n, size_t i, eng_jnum *num);

enum {
	ENG_JESC_INVALID = 1, /* not one of \" \\ \/ \b \f \n \r \t \u */
	ENG_JESC_U_SHORT,     /* \u with fewer than 4 characters left */
	ENG_JESC_U_HEX,       /* \u with a character that is not hex */
	ENG_JESC_LONE_LOW,    /* \uDC00..\uDFFF first */
	ENG_JESC_LONE_HIGH,   /* \uD800..\uDBFF not followed by \u */
	ENG_JESC_PAIR,        /* \uD800..\uDBFF followed by \u not a low surrogate */
};
/*
 * One escape of a JSON string; s[*i] is the character after the backslash
 * (*i < n). Returns the length (1 to 4) of its UTF-8 bytes, put in u8, and
 * moves *i past it; or -ENG_JESC_* with *i at the byte at fault (the
 * backslash for a surrogate error). strict 0 reads a lone or mismatched
 * surrogate as U+FFFD and an unknown escape as the character itself.
 */
int eng_json_escape(const unsigned char *s, size_t n, size_t *i, int strict, char u8[4]);

/* eng_space.c: clock and space accounting (below every other engine file
 * but eng_config.c). */
/* The age clock now (mu held or not: reads constants and the clock). */
int64_t eng_age_now(const edgelog *log);
/* Now in unix seconds for the cursor's last_success_at, within the range
 * cur_decode accepts (FORMAT.md, "Cursor"). */
int64_t eng_success_time(const edgelog *log);
/* Bytes counted against the cap (mu held). */
uint64_t eng_used_bytes(const edgelog *log);
/* Bytes allocated to the entries of dir into *bytes (a missing dir: 0).
 * 0, or -errno when the listing failed (then *bytes is 0: not a size). */
int eng_dir_bytes(const seg_vfs *v, const char *dir, uint64_t *bytes);

/* eng_lock.c: take dir's exclusive lock: a flock on the directory itself
 * (which cannot be unlinked and recreated under us) and on DIR/LOCK (which
 * also holds our pid); EDGELOG_ELOCKED naming the holder's pid if another
 * process (or handle) has either. fds[0..1] keep the locks until
 * eng_drop_lock. */
int eng_take_lock(const seg_vfs *v, const char *dir, int fds[2], seg_err *e);
void eng_drop_lock(const seg_vfs *v, int fds[2]);
/* 1 (and the pid LOCK names, or 0) if a process holds dir's lock, else 0. */
int eng_lock_held(const seg_vfs *v, const char *dir, long *pid);

/* eng_config.c: eng_conf_resolve and eng_conf_free (above), and the
 * error messages and the log. */
/* Record e's message as the handle's last error (mu held); returns code. */
int eng_set_error(edgelog *log, int code, const seg_err *e);
/* The same from a thread that does not hold mu (takes it). */
int eng_set_msg(edgelog *log, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The thread-local message behind edgelog_errmsg(NULL). */
int eng_tls_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void eng_tls_set(const char *msg);
/* Report through the configured log function. */
void eng_log(const eng_conf *c, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
