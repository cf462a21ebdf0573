/*
 * upl_http.c - one libcurl easy handle, reused for every request so the
 * connection is kept alive. Only this file includes curl.h. It also parses
 * the Retry-After header it receives (upl_parse_retry_after, upl.h).
 *
 * The bearer token goes into one header list and nowhere else: no log
 * line, error message or status field ever contains it (curl's own error
 * buffer never holds request headers).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include <edgelog.h>

#include "upl_internal.h"

struct upl_http {
	char url[1024]; /* the endpoint as messages show it: no user:password@ */
	CURLM *m;
	CURL *h;
	struct curl_slist *hl; /* headers of the request in flight */
	int inflight;
	const upl_conf *c;
	const seg_vfs *vfs; /* its wall clock dates an HTTP-date Retry-After */
	char auth[4200];    /* "Authorization: Bearer ..." */
	upl_response *cur;
	const volatile int *abort_flag;
	char errbuf[CURL_ERROR_SIZE];
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	upl_http *h = ud;
	upl_response *r = h->cur;
	size_t len = size * n, used = strlen(r->body), room = sizeof(r->body) - 1 - used;

	/* Keep the first bytes for the dead-letter reason; drop the rest, so
	 * a huge or endless body costs no memory. */
	if (room) {
		size_t k = len < room ? len : room, i;
		for (i = 0; i < k; i++)
			r->body[used + i] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '.';
		r->body[used + k] = '\0';
	}
	return len;
}

static int days_in_month(int y, int m0)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return days[m0] + (m0 == 1 && leap);
}

/* Days from 1970-01-01 to y-m-d (m 1..12) in the proleptic Gregorian
 * calendar (the civil-from-days algorithm, in reverse). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int64_t upl_parse_retry_after(const char *v, int64_t now_s)
{
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	char wk[8], ms[8], tz[8];
	int d, y, hh, mm, ss, i, m = -1;
	int64_t t;

	while (*v == ' ' || *v == '\t')
		v++;
	if (*v >= '0' && *v <= '9') {
		char *end;
		unsigned long long s = strtoull(v, &end, 10);
		while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
			end++;
		if (*end)
			return -1;
		if (s > 100000000ull) /* "come back in 3 years": the caller caps it */
			s = 100000000ull;
		return (int64_t)s * 1000;
	}
	/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT", nothing after it but
	 * white space. */
	{
		int end = 0;
		if (sscanf(v, "%3s, %d %3s %d %d:%d:%d %3s%n", wk, &d, ms, &y, &hh, &mm, &ss, tz,
			   &end) != 8 ||
		    strcmp(tz, "GMT"))
			return -1;
		while (v[end] == ' ' || v[end] == '\t' || v[end] == '\r' || v[end] == '\n')
			end++;
		if (v[end])
			return -1;
	}
	for (i = 0; i < 12; i++)
		if (!strcmp(ms, mon[i]))
			m = i;
	/* Each field in range, negative ones too ("-5:00:00" reads as an
	 * int): a huge negative hour overflowed the sum below (found by
	 * tests/fuzz/fuzz_retry_after). */
	if (m < 0 || d < 1 || d > days_in_month(y, m) || y < 1970 || y > 9999 || hh < 0 ||
	    hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60)
		return -1;
	/* In 64-bit arithmetic, not timegm: a 32-bit time_t ends in 2038. */
	t = days_from_civil(y, m + 1, d) * 86400 + hh * 3600 + mm * 60 + ss;
	return t <= now_s ? 0 : (t - now_s) * 1000;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	upl_http *h = ud;
	size_t len = size * n;
	char v[128];

	if (len > 12 && !strncasecmp(p, "Retry-After:", 12)) {
		size_t k = len - 12;
		if (k >= sizeof(v))
			k = sizeof(v) - 1;
		memcpy(v, p + 12, k);
		v[k] = '\0';
		/* The seam's wall clock, not time(NULL): tests drive it. */
		h->cur->retry_after_ms = upl_parse_retry_after(v, h->vfs->now_ms(h->vfs) / 1000);
	}
	return len;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	upl_http *h = ud;
	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return h->abort_flag && __atomic_load_n(h->abort_flag, __ATOMIC_RELAXED) ? 1 : 0;
}

static int curl_init_rc = -1;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

/* The endpoint without credentials for messages, logs and status:
 * the user:password part of the URL is shown as three stars. */
static void redact_url(const char *u, char *out, size_t n)
{
	const char *scheme = strstr(u, "://"), *at, *slash;

	snprintf(out, n, "%s", u);
	if (!scheme)
		return;
	scheme += 3;
	slash = strchr(scheme, '/');
	at = strchr(scheme, '@');
	if (at && (!slash || at < slash))
		snprintf(out, n, "%.*s***%s", (int)(scheme - u), u, at);
}

int upl_http_new(upl_http **out, const upl_conf *c, const seg_vfs *v, seg_err *e)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	upl_http *h;

	*out = NULL;
	pthread_once(&once, curl_init_once);
	if (curl_init_rc)
		return seg_fail(e, EDGELOG_ENOMEM, "curl_global_init failed");
	h = calloc(1, sizeof(*h));
	if (!h || !(h->h = curl_easy_init()) || !(h->m = curl_multi_init())) {
		if (h && h->h)
			curl_easy_cleanup(h->h);
		free(h);
		return seg_fail(e, EDGELOG_ENOMEM, "curl_easy_init failed");
	}
	redact_url(c->endpoint, h->url, sizeof(h->url));
	h->c = c;
	h->vfs = v;
	if (c->auth_token && *c->auth_token) {
		if (strlen(c->auth_token) > sizeof(h->auth) - 32) {
			curl_multi_cleanup(h->m);
			curl_easy_cleanup(h->h);
			free(h);
			return seg_fail(e, EDGELOG_ECONFIG, "bearer token longer than %zu bytes",
					sizeof(h->auth) - 32);
		}
		snprintf(h->auth, sizeof(h->auth), "Authorization: Bearer %s", c->auth_token);
	}
	curl_easy_setopt(h->h, CURLOPT_URL, c->endpoint);
	curl_easy_setopt(h->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h->h, CURLOPT_USERAGENT, "edgelog/" EDGELOG_VERSION_STRING);
	curl_easy_setopt(h->h, CURLOPT_TIMEOUT_MS, (long)c->http_timeout_ms);
	curl_easy_setopt(h->h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
	curl_easy_setopt(h->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h->h, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(h->h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h->h, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(h->h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h->h, CURLOPT_XFERINFODATA, h);
	curl_easy_setopt(h->h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h->h, CURLOPT_ERRORBUFFER, h->errbuf);
	/* Verification stays on; these only choose what to trust and who we
	 * are (mutual TLS). */
	curl_easy_setopt(h->h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h->h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_file)
		curl_easy_setopt(h->h, CURLOPT_CAINFO, c->ca_file);
	if (c->client_cert)
		curl_easy_setopt(h->h, CURLOPT_SSLCERT, c->client_cert);
	if (c->client_key)
		curl_easy_setopt(h->h, CURLOPT_SSLKEY, c->client_key);
	/* Only http and https, also on redirects (which are not followed). */
	curl_easy_setopt(h->h, CURLOPT_PROTOCOLS_STR, "http,https");
	*out = h;
	return 0;
}

void upl_http_start(upl_http *h, const void *body, size_t len, const char *content_type, int gzip,
		    const char *idempotency_key, const volatile int *abort_flag, upl_response *r)
{
	struct curl_slist *hl = NULL, *t;
	char ct[96], idem[256];
	int ok = 1, running = 0;

	memset(r, 0, sizeof(*r));
	r->retry_after_ms = -1;
	h->cur = r;
	h->abort_flag = abort_flag;
	h->errbuf[0] = '\0';
	snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
	snprintf(idem, sizeof(idem), "Idempotency-Key: %s", idempotency_key);
#define ADD(s)                                  \
	do {                                    \
		t = curl_slist_append(hl, (s)); \
		if (!t)                         \
			ok = 0;                 \
		else                            \
			hl = t;                 \
	} while (0)
	ADD(ct);
	ADD(idem);
	ADD("Expect:"); /* no 100-continue round trip */
	if (gzip)
		ADD("Content-Encoding: gzip");
	if (h->auth[0])
		ADD(h->auth);
#undef ADD
	if (!ok) {
		curl_slist_free_all(hl);
		r->transport_error = 1;
		seg_msg(r->error, sizeof(r->error), "out of memory building request headers");
		return;
	}
	h->hl = hl;
	curl_easy_setopt(h->h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h->h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	if (curl_multi_add_handle(h->m, h->h) != CURLM_OK) {
		curl_slist_free_all(hl);
		h->hl = NULL;
		r->transport_error = 1;
		seg_msg(r->error, sizeof(r->error), "POST %s: curl_multi_add_handle failed",
			h->url);
		return;
	}
	h->inflight = 1;
	/* Get the request onto the wire now; the caller works meanwhile. */
	curl_multi_perform(h->m, &running);
}

void upl_http_pump(upl_http *h)
{
	int running;

	if (h->inflight)
		curl_multi_perform(h->m, &running);
}

void upl_http_finish(upl_http *h)
{
	upl_response *r = h->cur;
	CURLcode cc = CURLE_OK;
	CURLMsg *msg;
	int running = 1, left;

	if (!h->inflight)
		return;
	while (running) {
		if (curl_multi_perform(h->m, &running) != CURLM_OK)
			break;
		if (running)
			curl_multi_poll(h->m, NULL, 0, 100, NULL);
	}
	while ((msg = curl_multi_info_read(h->m, &left)) != NULL)
		if (msg->msg == CURLMSG_DONE)
			cc = msg->data.result;
	curl_multi_remove_handle(h->m, h->h);
	curl_slist_free_all(h->hl);
	h->hl = NULL;
	h->inflight = 0;
	curl_easy_setopt(h->h, CURLOPT_HTTPHEADER, NULL);
	if (cc != CURLE_OK) {
		r->transport_error = 1;
		seg_msg(r->error, sizeof(r->error), "POST %s: %s%s%s", h->url,
			curl_easy_strerror(cc), h->errbuf[0] ? ": " : "", h->errbuf);
		return;
	}
	curl_easy_getinfo(h->h, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->status < 200 || r->status > 299)
		seg_msg(r->error, sizeof(r->error), "POST %s: HTTP %ld%s%s", h->url, r->status,
			r->body[0] ? ": " : "", r->body);
}

void upl_http_free(upl_http *h)
{
	if (!h)
		return;
	if (h->inflight) {
		curl_multi_remove_handle(h->m, h->h);
		curl_slist_free_all(h->hl);
	}
	curl_multi_cleanup(h->m);
	curl_easy_cleanup(h->h);
	/* Do not leave the token in freed memory. */
	memset(h->auth, 0, sizeof(h->auth));
	free(h);
}
