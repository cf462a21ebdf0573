/*
 * test_uploader.h - what the uploader's Check runners (check_uploader_*.c)
 * share: clocks, a decoder of request bodies, an in-process HTTP server
 * (libmicrohttpd on 127.0.0.1, port 0) whose answers each test scripts,
 * and helpers that open, feed, watch and close an engine against it.
 *
 * The server records, for every request, its arrival time (monotonic, when
 * the headers were in), the time its answer was queued, the headers the
 * protocol names (Content-Type, Content-Encoding, Idempotency-Key,
 * Authorization, User-Agent) and the records it decoded from the body
 * (gunzip, then NDJSON / JSON array / msgpack by Content-Type). Timing
 * assertions compare the time an answer was queued with the arrival of the
 * next request: the client cannot have seen the answer earlier, so a gap
 * shorter than a Retry-After is a request sent too early, whatever the
 * scheduling.
 *
 * Engine tests use short timeouts (cfg_std: retry_base_ms 20, retry_max_ms
 * 500, batch_timeout_ms 50, http_timeout_ms 1000, close_grace_ms 2000) and
 * stay on loopback; each is bounded well under 20 s.
 */
#ifndef TEST_UPLOADER_H
#define TEST_UPLOADER_H

#include <check.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include <edgelog.h>

#include "seg_json.h"

/* A suite for one uploader runner. Ignores SIGPIPE first: a test server
 * that closes a connection early must not end the runner. */
Suite *uploader_suite_create(const char *name);

/* The fixtures of every engine test case: a per-case temporary root and a
 * cleared log capture. */
void uploader_engine_tcase(TCase *tc);

#define DEV "cam-test-01"
/* A time limit of ms milliseconds, multiplied by the test time factor
 * (EDGELOG_TEST_TIME_FACTOR, 10 under qemu): config timeouts, waits and
 * bounds on how long a call took grow together. */
#define TU_MS(ms) ((int64_t)(ms)*tu_time_factor())
/* Scheduling slack on a loaded 2-core machine (times the factor). */
#define SLACK_MS TU_MS(100)

/* ------------------------------------------------------------------------
 * Clocks and small helpers
 */
int64_t mono_us(void);

int64_t mono_ms(void);

int64_t real_ms(void);

void sleep_ms(int ms);

/* Case-insensitive strstr. */
int has_ci(const char *hay, const char *needle);

/* Inflate a gzip stream (exactly one member, nothing after it). */
int gunzip(const void *in, size_t n, seg_buf *out, size_t cap);

void imf_date(char *out, size_t cap, int64_t unix_s);

/* ------------------------------------------------------------------------
 * Decoding request bodies (used by the unit tests and the test server)
 */

typedef struct dec_rec {
	char dev[160];
	uint64_t seq;
	int64_t ts;
	char *data; /* canonical JSON text of "data" */
} dec_rec;

typedef struct dec_vec {
	dec_rec *v;
	size_t n, cap;
} dec_vec;

void dec_free(dec_vec *d);

const msgpack_object *mp_get(const msgpack_object *m, const char *key);

/* A whole (already inflated) body of the given format into out. */
int decode_body(int format, const char *body, size_t len, dec_vec *out, char *err, size_t errlen);

#define PACK_BEGIN()               \
	msgpack_sbuffer sb;        \
	msgpack_packer pk;         \
	msgpack_sbuffer_init(&sb); \
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write)
#define PACK_RESET() msgpack_sbuffer_clear(&sb)

typedef struct srv_reply {
	unsigned status;      /* 0: 200, or 400 if the body did not decode */
	char retry_after[64]; /* "": no Retry-After */
	char body[512];       /* "": "ok" */
	uint64_t big_body;    /* > 0: a generated body of this many bytes */
	int sleep_ms;         /* before answering (interrupted by srv_stop) */
} srv_reply;

typedef struct srv_req {
	int64_t t_arrive_us; /* monotonic: the request's headers were in */
	int64_t t_arrive_real_ms;
	int64_t t_reply_us; /* monotonic: the answer was queued (0: not yet) */
	char method[16], ctype[80], cenc[40], idem[200], auth[400], ua[80];
	size_t raw_len;
	size_t plain_len; /* after gunzip (raw_len when not compressed) */
	int decoded;
	char derr[200];
	size_t first, nrec; /* into srv.recs */
	int contiguous;     /* seqs ascend by one */
	unsigned status;
} srv_req;

typedef struct srv_rec {
	uint64_t seq;
	int64_t ts;
	char dev[160];
	char *data; /* canonical JSON (NULL unless keep_data) */
	size_t req;
} srv_rec;

typedef struct srv srv;
/* Decide the answer to request idx (mu held). */
typedef void (*srv_script_fn)(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs,
			      srv_reply *out);

struct srv {
	struct MHD_Daemon *d;
	int port;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	int stopping;
	srv_script_fn script;
	long p[8]; /* the script's knobs, under mu */
	int keep_data;
	srv_req *reqs;
	size_t nreq, capreq;
	srv_rec *recs;
	size_t nrec, caprec;
	int64_t big_sent; /* bytes of generated bodies handed to MHD */
};

/* Start on 127.0.0.1:port (0: any), plain or TLS (PEM key and cert). */
srv *srv_start_on(int port, srv_script_fn script, const char *key_pem, const char *cert_pem);

srv *srv_start(srv_script_fn script);

void srv_stop(srv *s);

void srv_keep_data(srv *s);

void srv_set(srv *s, int k, long v);

size_t srv_nreq(srv *s);

/* A copy of request i (waits until its answer is queued). */
srv_req srv_get(srv *s, size_t i);

void srv_wait_reqs(srv *s, size_t n, int timeout_ms);

/* Records of requests answered 2xx, in the order they were answered;
 * caller frees. */
srv_rec *srv_acked(srv *s, size_t *n);

/* Every request decoded; returns how many did not. */
size_t srv_decode_errors(srv *s, char *first, size_t cap);

/* ---- scripts ---- */
/* p[0] requests from the start (idx < p[0]) get status p[1] with body
 * "upstream unavailable"; the rest 200. */
void script_first_n(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs, srv_reply *out);

/* What the engine reported through log_fn (cap_log, which cfg_std sets);
 * token leak checks count messages containing g_secret. Under g_log_mu. */
extern pthread_mutex_t g_log_mu;
extern char g_logs[65536];
extern size_t g_logs_len;
extern int g_log_count, g_log_long;
extern char g_secret[256];
extern int g_secret_leaks;

void cap_log(void *payload, int level, const char *msg);

void cfg_std(edgelog_config *c, const char *dir, const char *endpoint);

char *url_for(int port, const char *scheme, const char *host);

/* Append sample records first..first+n-1, expecting those seqs. */
void append_samples(edgelog *log, uint64_t first, uint64_t n);

#define STATUS_FMT                                                              \
	"pending %llu sent %llu failed %llu acked %llu last %llu connected %d " \
	"retry_in %llu "                                                        \
	"recovered %llu last_error '%s'"
#define STATUS_ARGS(st)                                                                  \
	(unsigned long long)(st).pending, (unsigned long long)(st).sent,                 \
		(unsigned long long)(st).failed, (unsigned long long)(st).acked_seq,     \
		(unsigned long long)(st).last_seq, (st).is_connected,                    \
		(unsigned long long)(st).retry_in_s, (unsigned long long)(st).recovered, \
		(st).last_error

/* Poll the status until cond holds (st is the snapshot it sees). */
#define WAIT_FOR(log, st, ms, cond)                                                             \
	do {                                                                                    \
		int64_t until_ = mono_ms() + TU_MS(ms);                                         \
		for (;;) {                                                                      \
			ck_assert_int_eq(edgelog_get_status((log), &(st)), 0);                  \
			if (cond)                                                               \
				break;                                                          \
			if (mono_ms() > until_)                                                 \
				ck_abort_msg("line %d: waited %d ms for %s; " STATUS_FMT,       \
					     __LINE__, (int)TU_MS(ms), #cond, STATUS_ARGS(st)); \
			sleep_ms(3);                                                            \
		}                                                                               \
	} while (0)

edgelog_status status_of(edgelog *log);

/* Close and say how long it took (ms). */
int64_t close_timed(edgelog *log);

/* State of a closed directory, read by opening it without an endpoint. */
edgelog_status offline_status(const char *dir);

/* The dead letters in dir/failed, as decoded maps. */
typedef struct dead_rec {
	uint64_t seq;
	int64_t ts, status;
	char reason[300];
	char *data; /* canonical JSON */
} dead_rec;

size_t read_dead(const char *dir, dead_rec *out, size_t cap);

/* A TCP port nobody listens on (bound, then closed). */
int closed_port(void);

/* Does any file under dir contain needle? (the token must not be stored) */
int tree_contains(const char *dir, const char *needle);

void setup_engine(void);

void teardown_engine(void);

/* A copy of request i as it is now (its answer may not be queued yet). */
srv_req srv_peek(srv *s, size_t i);

/* Check the protocol headers of every request: User-Agent, encoding,
 * type, and Idempotency-Key == DEV:first-last of the request's records. */
void check_request_headers(srv *s, int format, int gzip, const char *bearer);

/* The server accepted seqs lo..hi once each, in order, with sample data
 * (checked when keep_data). */
void check_acked_range(srv *s, uint64_t lo, uint64_t hi, uint64_t skip);

void check_no_secret(edgelog *log, const char *dir, const char *secret);

/* mode p[0]: 0 -> 200, 1 -> 503 "service unavailable", 2 -> 401
 * "unauthorized: bad credentials". */
void script_mode(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs, srv_reply *out);

/* p[0]: requests idx < p[0] get 429/503 (p[1]) with Retry-After: mode p[2]:
 * 0 -> "1" (seconds), 1 -> an HTTP date 2 s ahead (its unix second goes to
 * p[3]), 2 -> a past HTTP date, 3 -> "3600". */
void script_retry_after(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs, srv_reply *out);

#endif
