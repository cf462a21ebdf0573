/*
 * test_uploader.c - the uploader runners' shared test server and engine
 * helpers (see test_uploader.h).
 */

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <edgelog.h>

#include "test_json.h"
#include "test_uploader.h"
#include "test_util.h"
#include "tool_sample.h"

Suite *uploader_suite_create(const char *name)
{
	signal(SIGPIPE, SIG_IGN);
	return suite_create(name);
}

void uploader_engine_tcase(TCase *tc)
{
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	tcase_add_checked_fixture(tc, setup_engine, teardown_engine);
}

int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t mono_ms(void)
{
	return mono_us() / 1000;
}

int64_t real_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int has_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++)
		if (!strncasecmp(hay, needle, n))
			return 1;
	return 0;
}

int gunzip(const void *in, size_t n, seg_buf *out, size_t cap)
{
	z_stream z;
	int r;

	memset(&z, 0, sizeof(z));
	out->len = 0;
	if (inflateInit2(&z, 15 + 16) != Z_OK)
		return -1;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	do {
		if (seg_buf_reserve(out, 65536)) {
			inflateEnd(&z);
			return -1;
		}
		z.next_out = (Bytef *)out->p + out->len;
		z.avail_out = 65536;
		r = inflate(&z, Z_NO_FLUSH);
		out->len = z.total_out;
		if (out->len > cap || (r != Z_OK && r != Z_STREAM_END)) {
			inflateEnd(&z);
			return -1;
		}
	} while (r != Z_STREAM_END);
	inflateEnd(&z);
	if (out->p)
		out->p[out->len] = 0;
	return z.avail_in == 0 ? 0 : -1;
}

void imf_date(char *out, size_t cap, int64_t unix_s)
{
	time_t t = (time_t)unix_s;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

void dec_free(dec_vec *d)
{
	size_t i;
	for (i = 0; i < d->n; i++)
		free(d->v[i].data);
	free(d->v);
	memset(d, 0, sizeof(*d));
}

static dec_rec *dec_push(dec_vec *d)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		dec_rec *nv = realloc(d->v, cap * sizeof(*nv));
		if (!nv)
			return NULL;
		d->v = nv;
		d->cap = cap;
	}
	memset(&d->v[d->n], 0, sizeof(d->v[0]));
	return &d->v[d->n++];
}

#define DEC_FAIL(...)                               \
	do {                                        \
		snprintf(err, errlen, __VA_ARGS__); \
		return -1;                          \
	} while (0)

/* One JSON record object: exactly device_id, seq, ts, data. */
static int dec_json_record(json_t *o, size_t idx, dec_vec *out, char *err, size_t errlen)
{
	json_t *dv = json_object_get(o, "device_id"), *sq = json_object_get(o, "seq"),
	       *ts = json_object_get(o, "ts"), *da = json_object_get(o, "data");
	dec_rec *r;

	if (!json_is_object(o))
		DEC_FAIL("record %zu: not an object", idx);
	if (!json_is_string(dv) || !json_is_integer(sq) || json_integer_value(sq) < 1 ||
	    !json_is_integer(ts) || !da)
		DEC_FAIL("record %zu: device_id/seq/ts/data missing or mistyped", idx);
	if (json_object_size(o) != 4)
		DEC_FAIL("record %zu: %zu keys, expected 4", idx, json_object_size(o));
	if (!(r = dec_push(out)))
		DEC_FAIL("out of memory");
	snprintf(r->dev, sizeof(r->dev), "%s", json_string_value(dv));
	r->seq = (uint64_t)json_integer_value(sq);
	r->ts = (int64_t)json_integer_value(ts);
	r->data = tu_canon(da);
	return 0;
}

const msgpack_object *mp_get(const msgpack_object *m, const char *key)
{
	uint32_t i;
	size_t n = strlen(key);
	for (i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
		    !memcmp(k->via.str.ptr, key, n))
			return &m->via.map.ptr[i].val;
	}
	return NULL;
}

int decode_body(int format, const char *body, size_t len, dec_vec *out, char *err, size_t errlen)
{
	json_error_t je;
	size_t idx = 0;

	if (format == EDGELOG_FORMAT_NDJSON) {
		size_t pos = 0;
		if (len && body[len - 1] != '\n')
			DEC_FAIL("NDJSON body does not end with a newline");
		while (pos < len) {
			const char *nl = memchr(body + pos, '\n', len - pos);
			size_t l = (size_t)(nl - (body + pos));
			json_t *o;
			int rc;
			if (!l)
				DEC_FAIL("empty line at byte %zu", pos);
			o = json_loadb(body + pos, l, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
			if (!o)
				DEC_FAIL("line %zu: %s", idx, je.text);
			rc = dec_json_record(o, idx++, out, err, errlen);
			json_decref(o);
			if (rc)
				return rc;
			pos += l + 1;
		}
		return 0;
	}
	if (format == EDGELOG_FORMAT_JSON) {
		json_t *a = json_loadb(body, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
		size_t i;
		if (!a)
			DEC_FAIL("JSON body: %s (line %d col %d)", je.text, je.line, je.column);
		if (!json_is_array(a)) {
			json_decref(a);
			DEC_FAIL("JSON body is not an array");
		}
		for (i = 0; i < json_array_size(a); i++)
			if (dec_json_record(json_array_get(a, i), i, out, err, errlen)) {
				json_decref(a);
				return -1;
			}
		json_decref(a);
		return 0;
	}
	{
		msgpack_unpacked u;
		size_t off = 0;
		int ret = 0;
		msgpack_unpacked_init(&u);
		while (off < len) {
			const msgpack_object *dv, *sq, *ts, *da;
			dec_rec *r;
			json_t *j;
			if (msgpack_unpack_next(&u, body, len, &off) != MSGPACK_UNPACK_SUCCESS) {
				snprintf(err, errlen, "msgpack record %zu: cannot unpack", idx);
				ret = -1;
				break;
			}
			if (u.data.type != MSGPACK_OBJECT_MAP || u.data.via.map.size != 4 ||
			    !(dv = mp_get(&u.data, "device_id")) ||
			    !(sq = mp_get(&u.data, "seq")) || !(ts = mp_get(&u.data, "ts")) ||
			    !(da = mp_get(&u.data, "data")) || dv->type != MSGPACK_OBJECT_STR ||
			    sq->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
			    (ts->type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
			     ts->type != MSGPACK_OBJECT_NEGATIVE_INTEGER)) {
				snprintf(err, errlen, "msgpack record %zu: not the record map",
					 idx);
				ret = -1;
				break;
			}
			if (!(r = dec_push(out))) {
				snprintf(err, errlen, "out of memory");
				ret = -1;
				break;
			}
			snprintf(r->dev, sizeof(r->dev), "%.*s", (int)dv->via.str.size,
				 dv->via.str.ptr);
			r->seq = sq->via.u64;
			r->ts = ts->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)ts->via.u64 :
									      ts->via.i64;
			j = tu_mpo_json(da);
			r->data = tu_canon(j);
			json_decref(j);
			idx++;
		}
		msgpack_unpacked_destroy(&u);
		return ret;
	}
}

/* ------------------------------------------------------------------------
 * The in-process test server
 */

#define SRV_MAX_BODY (64u << 20)

typedef struct srv_conn {
	int64_t t0_us, t0_real_ms;
	char *buf;
	size_t len, cap;
	int over;
} srv_conn;

static void srv_done(void *cls, struct MHD_Connection *c, void **con_cls,
		     enum MHD_RequestTerminationCode toe)
{
	srv_conn *cx = *con_cls;
	(void)cls;
	(void)c;
	(void)toe;
	if (cx) {
		free(cx->buf);
		free(cx);
	}
	*con_cls = NULL;
}

static void hdr(struct MHD_Connection *c, const char *name, char *out, size_t cap)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
	snprintf(out, cap, "%s", v ? v : "");
}

static ssize_t big_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	srv *s = cls;
	size_t i;
	for (i = 0; i < max; i++)
		buf[i] = (char)("garbage\x01\xff{\"]\n"[(pos + i) % 13]);
	__atomic_add_fetch(&s->big_sent, (int64_t)max, __ATOMIC_RELAXED);
	return (ssize_t)max;
}

static int fmt_of(const char *ctype)
{
	if (!strncmp(ctype, "application/x-ndjson", 20))
		return EDGELOG_FORMAT_NDJSON;
	if (!strncmp(ctype, "application/json", 16))
		return EDGELOG_FORMAT_JSON;
	if (!strncmp(ctype, "application/msgpack", 19))
		return EDGELOG_FORMAT_MSGPACK;
	return 0;
}

static void srv_wait_locked(srv *s, int ms)
{
	struct timespec ts;
	int64_t until = mono_ms() + ms;
	while (!s->stopping && mono_ms() < until) {
		int64_t left = until - mono_ms();
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (left % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
	}
}

static enum MHD_Result srv_handle(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	srv *s = cls;
	srv_conn *cx = *con_cls;
	srv_req rq;
	srv_reply rp;
	dec_vec dv = {0};
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t idx, i;
	const char *body;
	size_t blen;
	seg_buf plain = {0};

	(void)url;
	(void)version;
	if (!cx) {
		cx = calloc(1, sizeof(*cx));
		if (!cx)
			return MHD_NO;
		cx->t0_us = mono_us();
		cx->t0_real_ms = real_ms();
		*con_cls = cx;
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;
		if (cx->len + n > SRV_MAX_BODY) {
			cx->over = 1;
		} else {
			if (cx->len + n > cx->cap) {
				size_t cap = cx->cap ? cx->cap : 65536;
				char *nb;
				while (cap < cx->len + n)
					cap *= 2;
				nb = realloc(cx->buf, cap);
				if (!nb)
					return MHD_NO;
				cx->buf = nb;
				cx->cap = cap;
			}
			memcpy(cx->buf + cx->len, upload, n);
			cx->len += n;
		}
		*upload_size = 0;
		return MHD_YES;
	}

	/* The whole request is in. */
	memset(&rq, 0, sizeof(rq));
	rq.t_arrive_us = cx->t0_us;
	rq.t_arrive_real_ms = cx->t0_real_ms;
	snprintf(rq.method, sizeof(rq.method), "%s", method);
	hdr(c, "Content-Type", rq.ctype, sizeof(rq.ctype));
	hdr(c, "Content-Encoding", rq.cenc, sizeof(rq.cenc));
	hdr(c, "Idempotency-Key", rq.idem, sizeof(rq.idem));
	hdr(c, "Authorization", rq.auth, sizeof(rq.auth));
	hdr(c, "User-Agent", rq.ua, sizeof(rq.ua));
	rq.raw_len = cx->len;
	body = cx->buf ? cx->buf : "";
	blen = cx->len;
	rq.decoded = 1;
	if (cx->over) {
		rq.decoded = 0;
		snprintf(rq.derr, sizeof(rq.derr), "body over %u bytes", SRV_MAX_BODY);
	} else if (!strcasecmp(rq.cenc, "gzip")) {
		if (gunzip(body, blen, &plain, 512u << 20)) {
			rq.decoded = 0;
			snprintf(rq.derr, sizeof(rq.derr), "bad gzip body (%zu bytes)", blen);
		} else {
			body = plain.p ? plain.p : "";
			blen = plain.len;
		}
	} else if (rq.cenc[0]) {
		rq.decoded = 0;
		snprintf(rq.derr, sizeof(rq.derr), "unknown Content-Encoding %s", rq.cenc);
	}
	rq.plain_len = blen;
	if (rq.decoded && !fmt_of(rq.ctype)) {
		rq.decoded = 0;
		snprintf(rq.derr, sizeof(rq.derr), "unknown Content-Type '%s'", rq.ctype);
	}
	if (rq.decoded && decode_body(fmt_of(rq.ctype), body, blen, &dv, rq.derr, sizeof(rq.derr)))
		rq.decoded = 0;
	seg_buf_free(&plain);
	rq.contiguous = 1;
	for (i = 1; i < dv.n; i++)
		if (dv.v[i].seq != dv.v[i - 1].seq + 1)
			rq.contiguous = 0;

	memset(&rp, 0, sizeof(rp));
	pthread_mutex_lock(&s->mu);
	if (s->nreq == s->capreq) {
		size_t cap = s->capreq ? s->capreq * 2 : 256;
		srv_req *nr = realloc(s->reqs, cap * sizeof(*nr));
		if (!nr) {
			pthread_mutex_unlock(&s->mu);
			dec_free(&dv);
			return MHD_NO;
		}
		s->reqs = nr;
		s->capreq = cap;
	}
	if (s->nrec + dv.n > s->caprec) {
		size_t cap = s->caprec ? s->caprec : 1024;
		srv_rec *nr;
		while (cap < s->nrec + dv.n)
			cap *= 2;
		nr = realloc(s->recs, cap * sizeof(*nr));
		if (!nr) {
			pthread_mutex_unlock(&s->mu);
			dec_free(&dv);
			return MHD_NO;
		}
		s->recs = nr;
		s->caprec = cap;
	}
	idx = s->nreq++;
	rq.first = s->nrec;
	rq.nrec = dv.n;
	for (i = 0; i < dv.n; i++) {
		srv_rec *r = &s->recs[s->nrec++];
		r->seq = dv.v[i].seq;
		r->ts = dv.v[i].ts;
		memcpy(r->dev, dv.v[i].dev, sizeof(r->dev));
		r->data = s->keep_data ? dv.v[i].data : NULL;
		if (s->keep_data)
			dv.v[i].data = NULL;
		r->req = idx;
	}
	if (!rq.decoded) {
		rp.status = 400;
		snprintf(rp.body, sizeof(rp.body), "test server: %s", rq.derr);
	}
	if (s->script)
		s->script(s, idx, &rq, &s->recs[rq.first], &rp);
	if (!rp.status)
		rp.status = 200;
	rq.status = rp.status;
	s->reqs[idx] = rq;
	if (rp.sleep_ms)
		srv_wait_locked(s, rp.sleep_ms);
	pthread_mutex_unlock(&s->mu);
	dec_free(&dv);

	if (rp.big_body)
		resp = MHD_create_response_from_callback(rp.big_body, 64 * 1024, big_cb, s, NULL);
	else
		resp = MHD_create_response_from_buffer(rp.body[0] ? strlen(rp.body) : 2,
						       rp.body[0] ? rp.body : (char *)"ok",
						       MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (rp.retry_after[0])
		MHD_add_response_header(resp, "Retry-After", rp.retry_after);
	MHD_add_response_header(resp, "Content-Type", "text/plain");
	pthread_mutex_lock(&s->mu);
	s->reqs[idx].t_reply_us = mono_us();
	pthread_mutex_unlock(&s->mu);
	ret = MHD_queue_response(c, rp.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

srv *srv_start_on(int port, srv_script_fn script, const char *key_pem, const char *cert_pem)
{
	srv *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa;
	pthread_condattr_t ca;
	const union MHD_DaemonInfo *info;
	struct MHD_OptionItem opts[8];
	int n = 0;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;

	ck_assert_ptr_nonnull(s);
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	s->script = script;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &sa};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)srv_done, s};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL};
	if (key_pem) {
		ck_assert_msg(MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES,
			      "libmicrohttpd was built without TLS");
		flags |= MHD_USE_TLS;
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key_pem};
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cert_pem};
	}
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	s->d = MHD_start_daemon(flags, 0, NULL, NULL, srv_handle, s, MHD_OPTION_ARRAY, opts,
				MHD_OPTION_END);
	ck_assert_msg(s->d != NULL, "MHD_start_daemon on 127.0.0.1:%d failed", port);
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	ck_assert_ptr_nonnull(info);
	s->port = info->port;
	ck_assert_int_gt(s->port, 0);
	return s;
}

srv *srv_start(srv_script_fn script)
{
	return srv_start_on(0, script, NULL, NULL);
}

void srv_stop(srv *s)
{
	size_t i;
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	MHD_stop_daemon(s->d);
	for (i = 0; i < s->nrec; i++)
		free(s->recs[i].data);
	free(s->recs);
	free(s->reqs);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

void srv_keep_data(srv *s)
{
	pthread_mutex_lock(&s->mu);
	s->keep_data = 1;
	pthread_mutex_unlock(&s->mu);
}

void srv_set(srv *s, int k, long v)
{
	pthread_mutex_lock(&s->mu);
	s->p[k] = v;
	pthread_mutex_unlock(&s->mu);
}

size_t srv_nreq(srv *s)
{
	size_t n;
	pthread_mutex_lock(&s->mu);
	n = s->nreq;
	pthread_mutex_unlock(&s->mu);
	return n;
}

srv_req srv_get(srv *s, size_t i)
{
	srv_req r;
	int64_t until = mono_ms() + TU_MS(15000);
	for (;;) {
		pthread_mutex_lock(&s->mu);
		ck_assert_uint_lt(i, s->nreq);
		r = s->reqs[i];
		pthread_mutex_unlock(&s->mu);
		if (r.t_reply_us || mono_ms() > until)
			return r;
		sleep_ms(2);
	}
}

void srv_wait_reqs(srv *s, size_t n, int timeout_ms)
{
	int64_t until = mono_ms() + TU_MS(timeout_ms);
	while (srv_nreq(s) < n) {
		ck_assert_msg(mono_ms() < until, "server saw %zu request(s) in %d ms, expected %zu",
			      srv_nreq(s), (int)TU_MS(timeout_ms), n);
		sleep_ms(2);
	}
}

srv_rec *srv_acked(srv *s, size_t *n)
{
	srv_rec *out;
	size_t i, k = 0;
	pthread_mutex_lock(&s->mu);
	out = malloc((s->nrec + 1) * sizeof(*out));
	ck_assert_ptr_nonnull(out);
	for (i = 0; i < s->nrec; i++) {
		const srv_req *rq = &s->reqs[s->recs[i].req];
		if (rq->status >= 200 && rq->status <= 299)
			out[k++] = s->recs[i];
	}
	pthread_mutex_unlock(&s->mu);
	*n = k;
	return out;
}

size_t srv_decode_errors(srv *s, char *first, size_t cap)
{
	size_t i, bad = 0;
	first[0] = 0;
	pthread_mutex_lock(&s->mu);
	for (i = 0; i < s->nreq; i++)
		if (!s->reqs[i].decoded) {
			if (!bad++)
				snprintf(first, cap, "request %zu: %s", i, s->reqs[i].derr);
		}
	pthread_mutex_unlock(&s->mu);
	return bad;
}

void script_first_n(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs, srv_reply *out)
{
	(void)rq;
	(void)recs;
	if ((long)idx < s->p[0]) {
		out->status = (unsigned)s->p[1];
		snprintf(out->body, sizeof(out->body), "upstream unavailable (test %zu)", idx);
	}
}

/* ------------------------------------------------------------------------
 * Engine helpers
 */

/* What the engine reported through log_fn; token leak checks. */
pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;
char g_logs[65536];
size_t g_logs_len;
int g_log_count, g_log_long;
char g_secret[256];
int g_secret_leaks;

void cap_log(void *payload, int level, const char *msg)
{
	size_t n = strlen(msg);
	(void)payload;
	pthread_mutex_lock(&g_log_mu);
	g_log_count++;
	if (n > 1000)
		g_log_long++;
	if (g_secret[0] && strstr(msg, g_secret))
		g_secret_leaks++;
	if (g_logs_len + n + 8 < sizeof(g_logs)) {
		g_logs_len += (size_t)snprintf(g_logs + g_logs_len, sizeof(g_logs) - g_logs_len,
					       "[%d] %s\n", level, msg);
	}
	pthread_mutex_unlock(&g_log_mu);
}

void cfg_std(edgelog_config *c, const char *dir, const char *endpoint)
{
	edgelog_config_init(c);
	c->dir = dir;
	c->endpoint = endpoint;
	c->device_id = DEV;
	c->retry_base_ms = 20;
	c->retry_max_ms = 500;
	c->batch_timeout_ms = 50;
	c->http_timeout_ms = (uint32_t)TU_MS(1000);
	c->close_grace_ms = (uint32_t)TU_MS(2000);
	c->log_fn = cap_log;
	c->log_payload = NULL;
}

char *url_for(int port, const char *scheme, const char *host)
{
	char *u = malloc(128);
	ck_assert_ptr_nonnull(u);
	snprintf(u, 128, "%s://%s:%d/ingest", scheme, host, port);
	return u;
}

void append_samples(edgelog *log, uint64_t first, uint64_t n)
{
	uint64_t i;
	for (i = first; i < first + n; i++) {
		uint8_t buf[SAMPLE_CAP];
		size_t l = tool_sample_msgpack(i, buf, sizeof(buf));
		uint64_t seq = 0;
		int rc = edgelog_append(log, buf, l, &seq);
		ck_assert_msg(rc == 0, "append %llu: %s: %s", (unsigned long long)i,
			      edgelog_strerror(rc), edgelog_errmsg(log));
		ck_assert_uint_eq(seq, i);
	}
}

edgelog_status status_of(edgelog *log)
{
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	ck_assert_int_eq(edgelog_get_status(log, &st), 0);
	return st;
}

int64_t close_timed(edgelog *log)
{
	int64_t t0 = mono_ms();
	int rc = edgelog_close(log);
	ck_assert_msg(rc == 0, "edgelog_close: %s: %s", edgelog_strerror(rc), edgelog_errmsg(NULL));
	return mono_ms() - t0;
}

edgelog_status offline_status(const char *dir)
{
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	cfg_std(&c, dir, NULL);
	log = tu_open_ok(&c);
	st = status_of(log);
	ck_assert_int_eq(edgelog_close(log), 0);
	return st;
}

size_t read_dead(const char *dir, dead_rec *out, size_t cap)
{
	char path[4300];
	edgelog_reader *r = NULL;
	edgelog_record rec;
	size_t n = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/failed", dir);
	if (!tu_file_exists(path))
		return 0;
	rc = edgelog_reader_open(&r, path, 0);
	ck_assert_msg(rc == 0, "reader on %s: %s: %s", path, edgelog_strerror(rc),
		      edgelog_errmsg(NULL));
	while ((rc = edgelog_reader_next(r, &rec)) == 0) {
		msgpack_unpacked u;
		size_t off = 0;
		const msgpack_object *o;
		ck_assert_uint_lt(n, cap);
		msgpack_unpacked_init(&u);
		ck_assert_int_eq(msgpack_unpack_next(&u, rec.data, rec.len, &off),
				 MSGPACK_UNPACK_SUCCESS);
		ck_assert_int_eq(u.data.type, MSGPACK_OBJECT_MAP);
		memset(&out[n], 0, sizeof(out[n]));
		ck_assert_ptr_nonnull(o = mp_get(&u.data, "seq"));
		out[n].seq = o->via.u64;
		ck_assert_ptr_nonnull(o = mp_get(&u.data, "ts"));
		out[n].ts = o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? o->via.i64 :
									 (int64_t)o->via.u64;
		ck_assert_ptr_nonnull(o = mp_get(&u.data, "status"));
		out[n].status = o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? o->via.i64 :
									     (int64_t)o->via.u64;
		ck_assert_ptr_nonnull(o = mp_get(&u.data, "reason"));
		ck_assert_int_eq(o->type, MSGPACK_OBJECT_STR);
		snprintf(out[n].reason, sizeof(out[n].reason), "%.*s", (int)o->via.str.size,
			 o->via.str.ptr);
		ck_assert_ptr_nonnull(o = mp_get(&u.data, "data"));
		{
			json_t *j = tu_mpo_json(o);
			out[n].data = tu_canon(j);
			json_decref(j);
		}
		msgpack_unpacked_destroy(&u);
		n++;
	}
	ck_assert_int_eq(rc, EDGELOG_EOF);
	edgelog_reader_close(r);
	return n;
}

int closed_port(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;
	ck_assert_int_ge(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

int tree_contains(const char *dir, const char *needle)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = 0;
	if (!d)
		return 0;
	while (!found && (e = readdir(d))) {
		char p[4300];
		struct stat sb;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (lstat(p, &sb))
			continue;
		if (S_ISDIR(sb.st_mode)) {
			found = tree_contains(p, needle);
		} else if (S_ISREG(sb.st_mode) && sb.st_size > 0) {
			tu_buf b = tu_read_file(p);
			found = memmem(b.data, b.len, needle, strlen(needle)) != NULL;
			tu_buf_free(&b);
		}
	}
	closedir(d);
	return found;
}

void setup_engine(void)
{
	pthread_mutex_lock(&g_log_mu);
	g_logs[0] = 0;
	g_logs_len = 0;
	g_log_count = g_log_long = g_secret_leaks = 0;
	g_secret[0] = 0;
	pthread_mutex_unlock(&g_log_mu);
}

void teardown_engine(void)
{
}

srv_req srv_peek(srv *s, size_t i)
{
	srv_req r;
	pthread_mutex_lock(&s->mu);
	ck_assert_uint_lt(i, s->nreq);
	r = s->reqs[i];
	pthread_mutex_unlock(&s->mu);
	return r;
}

void check_request_headers(srv *s, int format, int gzip, const char *bearer)
{
	static const char *const ct[] = {"", "application/x-ndjson", "application/json",
					 "application/msgpack"};
	size_t i, n = srv_nreq(s);
	for (i = 0; i < n; i++) {
		srv_req r = srv_peek(s, i);
		char key[200];
		ck_assert_str_eq(r.method, "POST");
		ck_assert_msg(!strncmp(r.ua, "edgelog/", 8), "request %zu: User-Agent '%s'", i,
			      r.ua);
		ck_assert_msg(!strcmp(r.ctype, ct[format]), "request %zu: Content-Type '%s'", i,
			      r.ctype);
		ck_assert_msg(!strcmp(r.cenc, gzip ? "gzip" : ""),
			      "request %zu: Content-Encoding '%s'", i, r.cenc);
		ck_assert_msg(r.decoded, "request %zu: %s", i, r.derr);
		ck_assert_uint_gt(r.nrec, 0);
		ck_assert_msg(r.contiguous, "request %zu: seqs not contiguous", i);
		pthread_mutex_lock(&s->mu);
		snprintf(key, sizeof(key), "%s:%llu-%llu", DEV,
			 (unsigned long long)s->recs[r.first].seq,
			 (unsigned long long)s->recs[r.first + r.nrec - 1].seq);
		pthread_mutex_unlock(&s->mu);
		ck_assert_msg(!strcmp(r.idem, key), "request %zu: Idempotency-Key '%s', want '%s'",
			      i, r.idem, key);
		if (bearer) {
			char want[300];
			snprintf(want, sizeof(want), "Bearer %s", bearer);
			ck_assert_msg(!strcmp(r.auth, want), "request %zu: Authorization '%s'", i,
				      r.auth);
		} else {
			ck_assert_msg(!r.auth[0], "request %zu: unexpected Authorization", i);
		}
	}
}

void check_acked_range(srv *s, uint64_t lo, uint64_t hi, uint64_t skip)
{
	size_t n, i;
	uint64_t want = lo;
	srv_rec *a = srv_acked(s, &n);
	ck_assert_uint_eq(n, hi - lo + 1 - (skip >= lo && skip <= hi));
	for (i = 0; i < n; i++, want++) {
		if (want == skip)
			want++;
		ck_assert_msg(a[i].seq == want, "accepted record %zu has seq %llu, want %llu", i,
			      (unsigned long long)a[i].seq, (unsigned long long)want);
		ck_assert_str_eq(a[i].dev, DEV);
		if (a[i].data) {
			char *w = tu_sample_canon(want);
			ck_assert_msg(!strcmp(a[i].data, w), "seq %llu: data differs",
				      (unsigned long long)want);
			free(w);
		}
	}
	free(a);
}

void check_no_secret(edgelog *log, const char *dir, const char *secret)
{
	edgelog_status st = status_of(log);
	ck_assert_msg(!strstr(st.last_error, secret), "token in last_error: %s", st.last_error);
	ck_assert_msg(!strstr(edgelog_errmsg(log), secret), "token in errmsg");
	ck_assert_msg(!strstr(edgelog_errmsg(NULL), secret), "token in errmsg(NULL)");
	pthread_mutex_lock(&g_log_mu);
	ck_assert_msg(g_secret_leaks == 0, "token in %d log line(s)", g_secret_leaks);
	ck_assert_msg(!strstr(g_logs, secret), "token in the log output");
	pthread_mutex_unlock(&g_log_mu);
	if (dir)
		ck_assert_msg(!tree_contains(dir, secret), "token stored under %s", dir);
}

void script_mode(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs, srv_reply *out)
{
	(void)idx;
	(void)rq;
	(void)recs;
	if (s->p[0] == 1) {
		out->status = 503;
		snprintf(out->body, sizeof(out->body), "service unavailable");
	} else if (s->p[0] == 2) {
		out->status = 401;
		snprintf(out->body, sizeof(out->body), "unauthorized: bad credentials");
	}
}

void script_retry_after(srv *s, size_t idx, const srv_req *rq, const srv_rec *recs, srv_reply *out)
{
	(void)rq;
	(void)recs;
	if ((long)idx >= s->p[0] || idx < (size_t)s->p[4])
		return;
	out->status = (unsigned)s->p[1];
	snprintf(out->body, sizeof(out->body), "slow down");
	switch (s->p[2]) {
	case 0:
		snprintf(out->retry_after, sizeof(out->retry_after), "1");
		break;
	case 1: {
		int64_t when = (int64_t)time(NULL) + 2;
		imf_date(out->retry_after, sizeof(out->retry_after), when);
		s->p[3] = (long)when;
		break;
	}
	case 2:
		snprintf(out->retry_after, sizeof(out->retry_after),
			 "Sun, 06 Nov 1994 08:49:37 GMT");
		break;
	default:
		snprintf(out->retry_after, sizeof(out->retry_after), "3600");
		break;
	}
}
