/*
 * tool_sink.c - `edgelog sink`: the reference receiver for the wire
 * protocol (design.md), for demos and tests. libmicrohttpd serves HTTP with
 * one thread per connection (so --delay-ms holds up only its own client);
 * the tally below is shared under one mutex, the store has its own.
 *
 * A request goes: headers (413 at once if Content-Length is over the cap)
 * -> body, buffered up to --max-body -> delay -> maybe drop the connection
 * -> maybe an injected failure -> gunzip -> parse and validate the whole
 * batch (400) -> --reject-if (422) -> dedupe, append, fdatasync -> 200.
 * Nothing of a batch is stored unless the answer is 200.
 *
 * The main thread owns signals: SIGTERM, SIGINT (and SIGUSR1, sent to
 * itself by --once) are blocked everywhere and taken with sigtimedwait,
 * which also paces the once-a-second tally.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"
#include "tool_sink.h"

#define SINK_MAX_RULES 16
#define SINK_MAX_BODY_LIMIT (1ull << 30)
#define SINK_CONNECTIONS 32 /* --max-connections default */
#define SINK_CONN_MEMORY (128 * 1024)
#define SINK_TIMEOUT_S 10              /* --idle-timeout default */
#define SINK_MAX_BODY (16ull << 20)    /* --max-body default */
#define SINK_MAX_MEMORY (128ull << 20) /* --max-memory default */
/* A body past --max-body is read on (not kept) up to this, to answer 413. */
#define SINK_DISCARD_LIMIT (4ull << 30)
#define SINK_HEADER_MAX 512

static const char SINK_USAGE[] =
	"usage: edgelog sink --out DIR [--listen [ADDR:]PORT] [OPTIONS]\n"
	"\n"
	"Reference receiver for the edgelog wire protocol. Accepts POST on any path:\n"
	"application/x-ndjson, application/json (one array) or application/msgpack\n"
	"(records concatenated), plain or Content-Encoding: gzip. Each record is\n"
	"{\"device_id\": string, \"seq\": unsigned, \"ts\": integer, \"data\": any}. Drops\n"
	"duplicate (device_id, seq), appends new records to DIR/records.ndjson and\n"
	"fdatasyncs it before answering 200 {\"accepted\":N,\"duplicates\":M}. A bad\n"
	"record rejects its whole batch with 400 naming the record and the field.\n"
	"On start, DIR/records.ndjson is read back so duplicates stay duplicates.\n"
	"\n"
	"  --listen ADDR:PORT  address to bind (default 127.0.0.1:8080; ADDR defaults\n"
	"                      to 127.0.0.1; PORT 0 picks a free port). The first line\n"
	"                      on stdout is always \"listening on ADDR:PORT\".\n"
	"  --any-address       allow a non-loopback ADDR (the sink has no TLS, no auth)\n"
	"  --out DIR           where records.ndjson and tally.json go (created)\n"
	"  --max-body BYTES    cap on a body, before and after gunzip (default 16 MiB);\n"
	"                      larger gets 413, chunked bodies included, as soon as\n"
	"                      the cap is passed\n"
	"  --max-memory BYTES  all requests together hold at most this much (bodies,\n"
	"                      inflated bodies, stored lines; default 128 MiB); a\n"
	"                      request that would go over gets 503 with Retry-After: 1\n"
	"  --max-connections N at most N clients at once (default 32); more wait\n"
	"  --idle-timeout S    close a connection idle (or sending nothing) for S\n"
	"                      seconds (default 10)\n"
	"  --once N            exit after N records were accepted\n"
	"  --quiet             no tally lines on stderr\n"
	"\n"
	"Fault injection:\n"
	"  --fail-status CODE  answer CODE (200-599) without storing ...\n"
	"  --fail-rate P       ... with probability P (default 1 with --fail-status)\n"
	"  --fail-first N      ... for the first N requests, then normally (status 503\n"
	"                      unless --fail-status is given)\n"
	"  --retry-after S     add Retry-After: S to injected failures\n"
	"  --retry-after-date [S]  the same as an HTTP date S seconds ahead\n"
	"  --delay-ms N        wait N ms before answering every request\n"
	"  --drop-connection-rate P  with probability P close the connection without\n"
	"                      an answer (after reading the request; nothing stored)\n"
	"  --reject-if FIELD=VALUE  answer 422 {\"error\":\"rejected\",\"seq\":N} to a batch\n"
	"                      holding a record whose data.FIELD (dotted: meta.site)\n"
	"                      equals VALUE (as text or number); store none of it.\n"
	"                      Repeatable (up to 16).\n"
	"  --seed N            seed for the rates (default: time and pid)\n"
	"\n"
	"Each second in which something happened, and at exit, a tally line goes to\n"
	"stderr and DIR/tally.json is replaced (counts, and the last request's\n"
	"Idempotency-Key, User-Agent, Content-Encoding and Content-Type).\n"
	"SIGTERM or SIGINT: stop, write the tally, exit 0.\n";

typedef struct sink_opts {
	const char *listen, *out;
	int any_address, quiet;
	unsigned long long max_body, once, delay_ms, fail_first, retry_after, seed;
	unsigned long long max_memory, max_connections, idle_timeout;
	int fail_status, fail_rate_set, retry_after_set, retry_date, seed_set;
	double fail_rate, drop_rate;
	tool_sink_rule rules[SINK_MAX_RULES];
	char rule_buf[SINK_MAX_RULES][SINK_HEADER_MAX];
	size_t nrules;
} sink_opts;

typedef struct sink_counts {
	uint64_t requests, accepted, duplicates, rejected, injected, dropped, bad, errors;
} sink_counts;

/* The last request's headers; has == 0 means absent. */
typedef struct sink_hdr {
	int has;
	char v[SINK_HEADER_MAX];
} sink_hdr;

typedef struct sink {
	sink_opts o;
	tool_sink_store *store;
	pthread_t main;
	pthread_mutex_t mu; /* everything below */
	pthread_cond_t cv;  /* wakes --delay-ms sleepers at shutdown */
	int stopping, once_sent;
	sink_counts c;
	uint64_t posts; /* POST requests seen (--fail-first) */
	uint64_t changes;
	sink_hdr key, agent, encoding, type;
	uint64_t rng;                /* splitmix64 state */
	unsigned long long mem_used; /* bytes held by requests (--max-memory) */
} sink;

typedef struct sink_req {
	tool_bytes body;
	unsigned long long over; /* bytes past --max-body, discarded */
	unsigned long long held; /* taken from the --max-memory budget */
} sink_req;

/* Take n bytes of the memory budget for q: 0, or -1 if that would take
 * all requests together past --max-memory. */
static int mem_take(sink *k, sink_req *q, unsigned long long n)
{
	int ok;

	pthread_mutex_lock(&k->mu);
	ok = k->mem_used + n <= k->o.max_memory;
	if (ok) {
		k->mem_used += n;
		q->held += n;
	}
	pthread_mutex_unlock(&k->mu);
	return ok ? 0 : -1;
}

static void mem_give_all(sink *k, sink_req *q)
{
	pthread_mutex_lock(&k->mu);
	k->mem_used -= q->held;
	q->held = 0;
	pthread_mutex_unlock(&k->mu);
}

/* ------------------------------------------------------------------------
 * Small helpers
 */

static int parse_rate(const char *opt, const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = s ? strtod(s, &end) : 0;
	if (!s || !*s || errno || *end || !(*out >= 0.0 && *out <= 1.0)) {
		tool_fail("sink", TOOL_USAGE, "%s: '%s' is not a probability between 0 and 1", opt,
			  s ? s : "");
		return -1;
	}
	return 0;
}

/* Uniform in [0, 1). */
static double sink_random(sink *k)
{
	uint64_t z;

	pthread_mutex_lock(&k->mu);
	z = (k->rng += 0x9e3779b97f4a7c15ull);
	pthread_mutex_unlock(&k->mu);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (double)(z >> 11) / 9007199254740992.0;
}

static int chance(sink *k, double p)
{
	return p > 0 && sink_random(k) < p;
}

/* Sleep ms, or less if the sink is stopping. */
static void sink_sleep(sink *k, unsigned long long ms)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)(ms / 1000);
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&k->mu);
	while (!k->stopping && pthread_cond_timedwait(&k->cv, &k->mu, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&k->mu);
}

static void copy_hdr(sink_hdr *h, const char *v)
{
	h->has = v != NULL;
	snprintf(h->v, sizeof(h->v), "%s", v ? v : "");
}

/* The HTTP date secs seconds from now. --retry-after-date takes any
 * number: past the last date the format can name (four-digit years: Fri,
 * 31 Dec 9999 23:59:59 GMT; 2038 with a 32-bit time_t) it names that one,
 * instead of overflowing the sum or a year gmtime cannot hold. */
static void http_date_ahead(unsigned long long secs, char *out, size_t n)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	const int64_t last = sizeof(time_t) < 8 ? INT32_MAX : 253402300799;
	int64_t now = (int64_t)time(NULL);
	time_t t = (time_t)(now >= last || secs >= (uint64_t)(last - now) ? last :
									    now + (int64_t)secs);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, n, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
		 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Queue a JSON answer. */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body,
			     const char *retry_after, int close)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (retry_after)
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
	if (close)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "POST");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* The answer to a body tool_sink_gunzip or tool_sink_parse refused. */
static unsigned refused_status(int rc)
{
	return rc == TOOL_SINK_ETOOBIG ? MHD_HTTP_CONTENT_TOO_LARGE :
	       rc == TOOL_SINK_ENOMEM  ? MHD_HTTP_SERVICE_UNAVAILABLE :
					 MHD_HTTP_BAD_REQUEST;
}

/* {"error": msg}, counted as a bad request (4xx) or an error (5xx). */
static enum MHD_Result reply_error(sink *k, struct MHD_Connection *c, unsigned status,
				   const char *msg)
{
	tool_bytes b = {0};
	enum MHD_Result ret;

	tool_bytes_puts(&b, "{\"error\":");
	tool_bytes_json_string(&b, msg, strlen(msg));
	tool_bytes_puts(&b, "}");
	pthread_mutex_lock(&k->mu);
	if (status >= 500)
		k->c.errors++;
	else
		k->c.bad++;
	k->changes++;
	pthread_mutex_unlock(&k->mu);
	ret = b.oom ? MHD_NO : reply(c, status, b.p, NULL, 0);
	tool_bytes_free(&b);
	return ret;
}

/* Over the memory budget: 503, come back in a second, and close (the rest
 * of the body, if any, is not read). */
static enum MHD_Result busy(sink *k, struct MHD_Connection *c)
{
	pthread_mutex_lock(&k->mu);
	k->c.errors++;
	k->changes++;
	pthread_mutex_unlock(&k->mu);
	return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		     "{\"error\":\"busy: the sink's memory budget (--max-memory) is in use\"}", "1",
		     1);
}

/* Media type without parameters, case-insensitive. */
static int media_is(const char *v, const char *type)
{
	size_t n = strlen(type);

	while (*v == ' ' || *v == '\t')
		v++;
	if (strncasecmp(v, type, n))
		return 0;
	v += n;
	while (*v == ' ' || *v == '\t')
		v++;
	return *v == '\0' || *v == ';';
}

static int body_format(const char *type)
{
	if (!type)
		return 0;
	if (media_is(type, "application/x-ndjson") || media_is(type, "application/jsonl") ||
	    media_is(type, "application/x-jsonlines"))
		return TOOL_SINK_NDJSON;
	if (media_is(type, "application/json"))
		return TOOL_SINK_JSON;
	if (media_is(type, "application/msgpack") || media_is(type, "application/x-msgpack") ||
	    media_is(type, "application/vnd.msgpack"))
		return TOOL_SINK_MSGPACK;
	return 0;
}

/* ------------------------------------------------------------------------
 * Requests
 */

/* The whole request is in: fault injection, then decode, check, store. */
static enum MHD_Result finish(sink *k, struct MHD_Connection *c, sink_req *q)
{
	const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
	char err[512], msg[96];
	tool_bytes inflated = {0};
	tool_sink_batch b = {0};
	const char *body = q->body.p ? q->body.p : "";
	size_t len = q->body.len;
	uint64_t post, accepted = 0, dups = 0;
	enum MHD_Result ret;
	int format, rc, inject, close = 0;

	pthread_mutex_lock(&k->mu);
	copy_hdr(&k->key, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key"));
	copy_hdr(&k->agent, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent"));
	copy_hdr(&k->encoding, enc);
	copy_hdr(&k->type, type);
	post = ++k->posts;
	k->changes++;
	pthread_mutex_unlock(&k->mu);

	if (k->o.delay_ms)
		sink_sleep(k, k->o.delay_ms);
	if (chance(k, k->o.drop_rate)) {
		pthread_mutex_lock(&k->mu);
		k->c.dropped++;
		pthread_mutex_unlock(&k->mu);
		return MHD_NO; /* MHD closes the connection, no answer */
	}
	inject = k->o.fail_status && (post <= k->o.fail_first || chance(k, k->o.fail_rate));
	if (inject) {
		char ra[64], *rap = NULL;
		pthread_mutex_lock(&k->mu);
		k->c.injected++;
		pthread_mutex_unlock(&k->mu);
		if (k->o.retry_after_set && k->o.retry_date) {
			http_date_ahead(k->o.retry_after, ra, sizeof(ra));
			rap = ra;
		} else if (k->o.retry_after_set) {
			snprintf(ra, sizeof(ra), "%llu", k->o.retry_after);
			rap = ra;
		}
		snprintf(msg, sizeof(msg), "{\"error\":\"injected failure\",\"status\":%d}",
			 k->o.fail_status);
		return reply(c, (unsigned)k->o.fail_status, msg, rap, 0);
	}

	if (q->over) {
		snprintf(err, sizeof(err), "body larger than %llu bytes (--max-body)",
			 k->o.max_body);
		return reply_error(k, c, MHD_HTTP_CONTENT_TOO_LARGE, err);
	}
	if (q->body.oom)
		return reply_error(k, c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
	if (!(format = body_format(type))) {
		snprintf(err, sizeof(err),
			 "Content-Type '%.200s' not accepted: use application/x-ndjson, "
			 "application/json or application/msgpack",
			 type ? type : "(none)");
		return reply_error(k, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, err);
	}
	if (enc && (!strcasecmp(enc, "gzip") || !strcasecmp(enc, "x-gzip"))) {
		/* The inflated body may reach the cap: hold that much. */
		if (mem_take(k, q, k->o.max_body))
			return busy(k, c);
		rc = tool_sink_gunzip(body, len, (size_t)k->o.max_body, &inflated, err,
				      sizeof(err));
		if (rc) {
			tool_bytes_free(&inflated);
			return reply_error(k, c, refused_status(rc), err);
		}
		body = inflated.p ? inflated.p : "";
		len = inflated.len;
		/* The raw body is no longer needed: free it before parsing. */
		tool_bytes_free(&q->body);
	} else if (enc && *enc && strcasecmp(enc, "identity")) {
		snprintf(err, sizeof(err),
			 "Content-Encoding '%.200s' not accepted: use gzip or none", enc);
		return reply_error(k, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, err);
	}

	/* The stored lines: JSON about as long as the body, msgpack's JSON up
	 * to a few times longer; past that, 413 rather than unbounded. */
	b.max_lines = (format == TOOL_SINK_MSGPACK ? 4 : 2) * len + 65536;
	if (mem_take(k, q, b.max_lines))
		return busy(k, c);
	rc = tool_sink_parse(format, body, len, k->o.rules, k->o.nrules, &b, err, sizeof(err));
	tool_bytes_free(&inflated);
	if (rc) {
		tool_sink_batch_free(&b);
		return reply_error(k, c, refused_status(rc), err);
	}
	if (b.rejected) {
		snprintf(msg, sizeof(msg), "{\"error\":\"rejected\",\"seq\":%llu}",
			 (unsigned long long)b.reject_seq);
		tool_sink_batch_free(&b);
		pthread_mutex_lock(&k->mu);
		k->c.rejected++;
		k->changes++;
		pthread_mutex_unlock(&k->mu);
		return reply(c, MHD_HTTP_UNPROCESSABLE_CONTENT, msg, NULL, 0);
	}
	rc = tool_sink_store_put(k->store, &b, &accepted, &dups, err, sizeof(err));
	tool_sink_batch_free(&b);
	if (rc) {
		fprintf(stderr, "edgelog sink: %s\n", err);
		return reply_error(k, c, MHD_HTTP_INTERNAL_SERVER_ERROR, err);
	}
	pthread_mutex_lock(&k->mu);
	k->c.accepted += accepted;
	k->c.duplicates += dups;
	k->changes++;
	if (k->o.once && k->c.accepted >= k->o.once && !k->once_sent) {
		/* Last answer: close the connection so the exit does not wait
		 * on an idle keep-alive. */
		k->once_sent = 1;
		close = 1;
	}
	pthread_mutex_unlock(&k->mu);
	snprintf(msg, sizeof(msg), "{\"accepted\":%llu,\"duplicates\":%llu}",
		 (unsigned long long)accepted, (unsigned long long)dups);
	ret = reply(c, MHD_HTTP_OK, msg, NULL, close);
	if (close)
		pthread_kill(k->main, SIGUSR1);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	sink *k = cls;
	sink_req *q = *con_cls;

	(void)url;
	(void)version;
	if (!q) {
		/* Headers are in; the body (if any) comes in later calls. */
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		unsigned long long declared = 0;
		if (!(q = calloc(1, sizeof(*q))))
			return MHD_NO;
		*con_cls = q;
		pthread_mutex_lock(&k->mu);
		k->c.requests++;
		k->changes++;
		pthread_mutex_unlock(&k->mu);
		if (strcmp(method, MHD_HTTP_METHOD_POST)) {
			if (k->o.delay_ms)
				sink_sleep(k, k->o.delay_ms);
			return reply_error(k, c, MHD_HTTP_METHOD_NOT_ALLOWED,
					   "only POST is accepted");
		}
		if (cl)
			declared = strtoull(cl, NULL, 10);
		if (declared > k->o.max_body) {
			char err[128];
			snprintf(err, sizeof(err), "body larger than %llu bytes (--max-body)",
				 k->o.max_body);
			/* Answering now makes MHD skip the body and close. */
			return reply_error(k, c, MHD_HTTP_CONTENT_TOO_LARGE, err);
		}
		if (declared) {
			if (mem_take(k, q, declared))
				return busy(k, c);
			tool_bytes_reserve(&q->body, (size_t)declared);
		}
		return MHD_YES;
	}
	if (*upload_size) {
		if (q->over || q->body.len + *upload_size > k->o.max_body) {
			/* Past the cap (a chunked body, or one longer than it
			 * said): drop what was buffered, read on without keeping
			 * anything, and answer 413 at the end. libmicrohttpd sends
			 * no answer queued in the middle of a body, and closing
			 * without one leaves the client guessing. Only a body past
			 * SINK_DISCARD_LIMIT is cut off. */
			if (!q->over) {
				q->over = q->body.len;
				tool_bytes_free(&q->body);
			}
			q->over += *upload_size;
			*upload_size = 0;
			return q->over > SINK_DISCARD_LIMIT ? MHD_NO : MHD_YES;
		}
		if (q->body.len + *upload_size > q->held &&
		    mem_take(k, q, q->body.len + *upload_size - q->held + 65536)) {
			*upload_size = 0;
			return busy(k, c);
		}
		tool_bytes_put(&q->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	return finish(k, c, q);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	sink_req *q = *con_cls;

	(void)c;
	(void)toe;
	if (q) {
		mem_give_all(cls, q);
		tool_bytes_free(&q->body);
		free(q);
		*con_cls = NULL;
	}
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	sink *k = cls;

	if (k->o.quiet)
		return;
	fputs("edgelog sink: libmicrohttpd: ", stderr);
	vfprintf(stderr, fmt, ap);
}

/* ------------------------------------------------------------------------
 * Tally
 */

static json_t *hdr_json(const sink_hdr *h)
{
	return h->has ? json_string(h->v) : json_null();
}

/* Replace DIR/tally.json (temp + rename: a reader sees the old or the
 * new, never half). Not fsynced: it is a convenience, not data. */
static void tally_write(sink *k, const sink_counts *c, const sink_hdr h[4], uint64_t stored)
{
	char tmp[4200], path[4200];
	json_t *j;
	int rc;

	/* json_string of a header that is not UTF-8 gives NULL: json_pack's
	 * "o?" then writes null rather than failing. */
	j = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o?,s:o?,s:o?,s:o?}", "requests",
		      (json_int_t)c->requests, "accepted", (json_int_t)c->accepted, "duplicates",
		      (json_int_t)c->duplicates, "rejected", (json_int_t)c->rejected,
		      "injected_failures", (json_int_t)c->injected, "dropped_connections",
		      (json_int_t)c->dropped, "bad_requests", (json_int_t)c->bad, "errors",
		      (json_int_t)c->errors, "stored", (json_int_t)stored, "last_idempotency_key",
		      hdr_json(&h[0]), "last_user_agent", hdr_json(&h[1]), "last_content_encoding",
		      hdr_json(&h[2]), "last_content_type", hdr_json(&h[3]));
	if (!j)
		return;
	snprintf(tmp, sizeof(tmp), "%s/tally.json.tmp", k->o.out);
	snprintf(path, sizeof(path), "%s/tally.json", k->o.out);
	rc = json_dump_file(j, tmp, JSON_INDENT(2));
	json_decref(j);
	if (rc != 0 || rename(tmp, path) != 0)
		fprintf(stderr, "edgelog sink: cannot write %s: %s\n", path, strerror(errno));
}

/* Print and write the tally if anything changed since the last call (or
 * always, at exit). */
static void tally(sink *k, uint64_t *seen, int force)
{
	sink_counts c;
	sink_hdr h[4];
	uint64_t changes;

	pthread_mutex_lock(&k->mu);
	c = k->c;
	h[0] = k->key;
	h[1] = k->agent;
	h[2] = k->encoding;
	h[3] = k->type;
	changes = k->changes;
	pthread_mutex_unlock(&k->mu);
	if (!force && changes == *seen)
		return;
	*seen = changes;
	if (!k->o.quiet)
		fprintf(stderr,
			"sink: requests %llu, records accepted %llu, duplicates %llu, rejected "
			"%llu, injected failures %llu, dropped connections %llu, bad requests "
			"%llu\n",
			(unsigned long long)c.requests, (unsigned long long)c.accepted,
			(unsigned long long)c.duplicates, (unsigned long long)c.rejected,
			(unsigned long long)c.injected, (unsigned long long)c.dropped,
			(unsigned long long)c.bad);
	tally_write(k, &c, h, tool_sink_store_count(k->store));
}

/* ------------------------------------------------------------------------
 * Options and the main loop
 */

/* [ADDR:]PORT or [V6]:PORT into a socket address; 0 or -1 after printing
 * the usage error. */
static int parse_listen(const char *s, struct sockaddr_storage *ss, int any_address)
{
	char host[256], port[16], *end;
	const char *colon;
	struct addrinfo hints, *res = NULL, *ai;
	unsigned long long p;
	int loopback = 0, rc;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
			goto bad;
		memcpy(host, s + 1, (size_t)(close - s - 1));
		host[close - s - 1] = '\0';
		colon = close + 1;
	} else if ((colon = strrchr(s, ':')) != NULL) {
		if ((size_t)(colon - s) >= sizeof(host))
			goto bad;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
	} else {
		host[0] = '\0';
		colon = s - 1; /* PORT alone */
	}
	if (!host[0])
		strcpy(host, "127.0.0.1");
	if (colon[1] < '0' || colon[1] > '9' || strlen(colon + 1) > 5)
		goto bad;
	p = strtoull(colon + 1, &end, 10);
	if (*end || p > 65535)
		goto bad;
	snprintf(port, sizeof(port), "%llu", p);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0 || !res) {
		tool_fail("sink", TOOL_USAGE, "--listen '%s': cannot resolve '%s': %s", s, host,
			  gai_strerror(rc));
		return -1;
	}
	/* "localhost" may give ::1 first: take IPv4 when there is one. */
	for (ai = res; ai && ai->ai_family != AF_INET; ai = ai->ai_next)
		;
	ai = ai ? ai : res;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(res);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
			   (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127);
	}
	if (!loopback && !any_address) {
		tool_fail("sink", TOOL_USAGE,
			  "--listen '%s': not a loopback address; the sink has no TLS and no "
			  "authentication, so it listens beyond this machine only with "
			  "--any-address",
			  s);
		return -1;
	}
	return 0;
bad:
	tool_fail("sink", TOOL_USAGE,
		  "--listen '%s': expected ADDR:PORT, [IPV6]:PORT or PORT (0-65535)", s);
	return -1;
}

static int takes_value(const char *a)
{
	static const char *const with_value[] = {"--listen",      "--out",
						 "--max-body",    "--once",
						 "--fail-status", "--fail-rate",
						 "--fail-first",  "--retry-after",
						 "--delay-ms",    "--drop-connection-rate",
						 "--reject-if",   "--seed",
						 "--max-memory",  "--max-connections",
						 "--idle-timeout"};
	size_t i;

	for (i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++)
		if (!strcmp(a, with_value[i]))
			return 1;
	return 0;
}

/* Options into o; 0, or the exit code (usage error, or --help). */
static int parse_options(int argc, char **argv, sink_opts *o, int *done)
{
	int i;

	o->listen = "127.0.0.1:8080";
	o->max_body = SINK_MAX_BODY;
	o->max_memory = SINK_MAX_MEMORY;
	o->max_connections = SINK_CONNECTIONS;
	o->idle_timeout = SINK_TIMEOUT_S;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(SINK_USAGE, stdout);
			*done = 1;
			return TOOL_OK;
		} else if (!strcmp(a, "--any-address")) {
			o->any_address = 1;
		} else if (!strcmp(a, "--quiet")) {
			o->quiet = 1;
		} else if (!strcmp(a, "--retry-after-date")) {
			/* A flag (the form of --retry-after), or with its own S. */
			o->retry_date = 1;
			if (v && *v >= '0' && *v <= '9') {
				if (tool_parse_u64("sink", a, v, &o->retry_after))
					return TOOL_USAGE;
				o->retry_after_set = 1;
				i++;
			}
		} else if (takes_value(a)) {
			unsigned long long n = 0;
			if (!v)
				return tool_fail("sink", TOOL_USAGE, "%s needs a value", a);
			i++;
			if (!strcmp(a, "--listen")) {
				o->listen = v;
			} else if (!strcmp(a, "--out")) {
				o->out = v;
			} else if (!strcmp(a, "--fail-rate")) {
				if (parse_rate(a, v, &o->fail_rate))
					return TOOL_USAGE;
				o->fail_rate_set = 1;
			} else if (!strcmp(a, "--drop-connection-rate")) {
				if (parse_rate(a, v, &o->drop_rate))
					return TOOL_USAGE;
			} else if (!strcmp(a, "--reject-if")) {
				const char *eq = strchr(v, '='), *dd;
				char *copy;
				if (o->nrules == SINK_MAX_RULES)
					return tool_fail("sink", TOOL_USAGE,
							 "--reject-if: at most %d rules",
							 SINK_MAX_RULES);
				if (!eq || eq == v || strlen(v) >= SINK_HEADER_MAX ||
				    eq[-1] == '.' || v[0] == '.' ||
				    ((dd = strstr(v, "..")) && dd < eq))
					return tool_fail("sink", TOOL_USAGE,
							 "--reject-if '%s': expected FIELD=VALUE "
							 "(FIELD a key of data, dotted for nested "
							 "keys: meta.site=lab)",
							 v);
				copy = o->rule_buf[o->nrules];
				strcpy(copy, v);
				copy[eq - v] = '\0';
				o->rules[o->nrules].path = copy;
				o->rules[o->nrules].value = copy + (eq - v) + 1;
				o->nrules++;
			} else if (!strcmp(a, "--max-memory") || !strcmp(a, "--max-connections") ||
				   !strcmp(a, "--idle-timeout")) {
				if (tool_parse_u64("sink", a, v, &n))
					return TOOL_USAGE;
				if (n == 0 || n > (!strcmp(a, "--max-memory")      ? (1ull << 40) :
						   !strcmp(a, "--max-connections") ? 10000ull :
										     86400ull))
					return tool_fail("sink", TOOL_USAGE,
							 "%s: %llu is out of range", a, n);
				if (!strcmp(a, "--max-memory"))
					o->max_memory = n;
				else if (!strcmp(a, "--max-connections"))
					o->max_connections = n;
				else
					o->idle_timeout = n;
			} else if (!strcmp(a, "--max-body") || !strcmp(a, "--once") ||
				   !strcmp(a, "--fail-status") || !strcmp(a, "--fail-first") ||
				   !strcmp(a, "--retry-after") || !strcmp(a, "--delay-ms") ||
				   !strcmp(a, "--seed")) {
				if (tool_parse_u64("sink", a, v, &n))
					return TOOL_USAGE;
				if (!strcmp(a, "--max-body")) {
					if (n == 0 || n > SINK_MAX_BODY_LIMIT)
						return tool_fail("sink", TOOL_USAGE,
								 "--max-body: %llu is not between "
								 "1 and %llu",
								 n, SINK_MAX_BODY_LIMIT);
					o->max_body = n;
				} else if (!strcmp(a, "--once")) {
					o->once = n;
				} else if (!strcmp(a, "--fail-status")) {
					if (n < 200 || n > 599)
						return tool_fail("sink", TOOL_USAGE,
								 "--fail-status: %llu is not an "
								 "HTTP status between 200 and 599",
								 n);
					o->fail_status = (int)n;
				} else if (!strcmp(a, "--fail-first")) {
					o->fail_first = n;
				} else if (!strcmp(a, "--retry-after")) {
					o->retry_after = n;
					o->retry_after_set = 1;
				} else if (!strcmp(a, "--delay-ms")) {
					if (n > 3600 * 1000ull)
						return tool_fail("sink", TOOL_USAGE,
								 "--delay-ms: %llu is more than an "
								 "hour",
								 n);
					o->delay_ms = n;
				} else {
					o->seed = n;
					o->seed_set = 1;
				}
			}
		} else if (a[0] == '-') {
			fputs(SINK_USAGE, stderr);
			return tool_fail("sink", TOOL_USAGE, "unknown option '%s'", a);
		} else {
			fputs(SINK_USAGE, stderr);
			return tool_fail("sink", TOOL_USAGE, "unexpected argument '%s'", a);
		}
	}
	if (!o->out) {
		fputs(SINK_USAGE, stderr);
		return tool_fail("sink", TOOL_USAGE, "--out DIR is required");
	}
	if (o->retry_date && !o->retry_after_set)
		return tool_fail("sink", TOOL_USAGE,
				 "--retry-after-date needs seconds: --retry-after S or "
				 "--retry-after-date S");
	if (o->fail_first && !o->fail_status)
		o->fail_status = 503;
	/* --fail-status alone fails everything; with --fail-first, only the
	 * first N unless a rate is given too. */
	if (o->fail_status && !o->fail_rate_set && !o->fail_first)
		o->fail_rate = 1.0;
	return TOOL_OK;
}

static void print_bound(struct MHD_Daemon *d, const struct sockaddr_storage *ss)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	unsigned port = info ? info->port : 0;
	char host[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, host,
			  sizeof(host));
		printf("listening on [%s]:%u\n", host, port);
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, host, sizeof(host));
		printf("listening on %s:%u\n", host, port);
	}
	fflush(stdout);
}

int tool_sink(int argc, char **argv)
{
	static sink k; /* static: MHD's threads refer to it until the end */
	struct sockaddr_storage ss;
	struct MHD_Daemon *d;
	pthread_condattr_t ca;
	sigset_t sigs;
	char err[4400];
	uint64_t seen = 0;
	unsigned flags;
	int rc, done = 0, sig;

	memset(&k, 0, sizeof(k));
	if ((rc = parse_options(argc, argv, &k.o, &done)) != 0 || done)
		return rc;
	memset(&ss, 0, sizeof(ss));
	if (parse_listen(k.o.listen, &ss, k.o.any_address))
		return TOOL_USAGE;
	k.rng = k.o.seed_set ? k.o.seed :
			       (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	/* jansson seeds its hash function on first use; do it before threads. */
	json_object_seed(0);

	if (tool_sink_store_open(&k.store, k.o.out, k.o.quiet, err, sizeof(err)))
		return tool_fail("sink", TOOL_PROBLEM, "%s", err);
	if (!k.o.quiet && tool_sink_store_count(k.store))
		fprintf(stderr,
			"edgelog sink: %s/records.ndjson holds %llu records (deduplicated "
			"against)\n",
			k.o.out, (unsigned long long)tool_sink_store_count(k.store));

	pthread_mutex_init(&k.mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k.cv, &ca);
	pthread_condattr_destroy(&ca);
	k.main = pthread_self();

	/* Block the signals before MHD starts its threads, which inherit the
	 * mask: only sigtimedwait below ever takes them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
		MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The logger goes first so that MHD reports option errors through it. */
	d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, &k, MHD_OPTION_EXTERNAL_LOGGER,
			     on_mhd_log, &k, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
			     MHD_OPTION_CONNECTION_LIMIT, (unsigned)k.o.max_connections,
			     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SINK_CONN_MEMORY,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)k.o.idle_timeout,
			     MHD_OPTION_NOTIFY_COMPLETED, on_completed, &k, MHD_OPTION_END);
	if (!d) {
		tool_sink_store_close(k.store);
		return tool_fail("sink", TOOL_PROBLEM,
				 "cannot listen on %s (address in use, or not this machine's?)",
				 k.o.listen);
	}
	print_bound(d, &ss);

	for (;;) {
		struct timespec tick = {1, 0};
		sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig == SIGTERM || sig == SIGINT || sig == SIGUSR1)
			break;
		tally(&k, &seen, 0);
	}

	pthread_mutex_lock(&k.mu);
	k.stopping = 1;
	pthread_cond_broadcast(&k.cv);
	pthread_mutex_unlock(&k.mu);
	if (sig == SIGUSR1) {
		/* --once: let the last answer go out (bounded wait). */
		int i;
		for (i = 0; i < 200; i++) {
			const union MHD_DaemonInfo *info =
				MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
			if (!info || info->num_connections == 0)
				break;
			usleep(10 * 1000);
		}
	}
	MHD_stop_daemon(d);
	tally(&k, &seen, 1);
	tool_sink_store_close(k.store);
	pthread_cond_destroy(&k.cv);
	pthread_mutex_destroy(&k.mu);
	return TOOL_OK;
}
