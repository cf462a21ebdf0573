/*
 * check_sink.c - integration tests of `edgelog sink`, the reference
 * receiver: the real binary is started on 127.0.0.1 with port 0 (it prints
 * the port it bound as its first line) and driven with libcurl.
 *
 * Groups: the sink's JSON validator against jansson (hand-picked cases and
 * mutated records), formats (NDJSON, JSON, msgpack, each plain and gzip,
 * store the same lines), dedupe (repeats, within a batch, across a restart, a torn
 * last line), hostile bodies (400 and nothing stored), fault injection
 * (--fail-status, --retry-after, --fail-first, --fail-rate, --reject-if,
 * --drop-connection-rate, --delay-ms), limits (gzip bomb, --max-body),
 * concurrency, the command line.
 *
 * Every test stops its sink (SIGTERM, a bounded wait, then SIGKILL); a sink
 * whose test dies gets SIGTERM from the kernel (PR_SET_PDEATHSIG).
 * Loopback only; every wait is bounded.
 */
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <msgpack.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "seg_json.h"
#include "test_main.h"
#include "test_util.h"
#include "tool_sample.h"
#include "tool_sink.h"

#ifndef EDGELOG_BIN
#error "EDGELOG_BIN (path of the edgelog program) must be defined"
#endif

#define T0 1700000000000LL /* ts of record 0 */

/* ------------------------------------------------------------------------
 * The sink process
 */

/* tu_mkdtemp, its result kept reachable (each test runs in its own
 * process; the directories go at exit). */
static const char *tmpdir(const char *prefix)
{
	static char *dirs[16];
	static int n;

	ck_assert_int_lt(n, 16);
	dirs[n] = tu_mkdtemp(prefix);
	return dirs[n++];
}

typedef struct sink_proc {
	pid_t pid;
	int port;
	const char *dir;
} sink_proc;

/* Start `edgelog sink --listen 127.0.0.1:0 --out dir --quiet extra...`
 * (extra NULL-terminated, may be NULL) and read its port. */
static sink_proc sink_start(const char *dir, const char *const *extra)
{
	const char *argv[64];
	sink_proc s = {0, 0, dir};
	char line[256];
	size_t have = 0;
	int fds[2], n = 0;

	argv[n++] = EDGELOG_BIN;
	argv[n++] = "sink";
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--out";
	argv[n++] = dir;
	argv[n++] = "--quiet";
	while (extra && *extra && n < 62)
		argv[n++] = *extra++;
	argv[n] = NULL;
	ck_assert_int_eq(pipe(fds), 0);
	s.pid = fork();
	ck_assert_int_ge(s.pid, 0);
	if (s.pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execv(EDGELOG_BIN, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	/* The first line, within 10 s. */
	while (have < sizeof(line) - 1 && !memchr(line, '\n', have)) {
		struct pollfd p = {fds[0], POLLIN, 0};
		ssize_t r;
		ck_assert_msg(poll(&p, 1, 10000) == 1, "sink printed no address within 10 s");
		r = read(fds[0], line + have, sizeof(line) - 1 - have);
		ck_assert_msg(r > 0, "sink exited before printing its address");
		have += (size_t)r;
		line[have] = '\0';
	}
	close(fds[0]);
	ck_assert_msg(sscanf(line, "listening on 127.0.0.1:%d", &s.port) == 1 && s.port > 0,
		      "unexpected first line: %s", line);
	return s;
}

/* Wait up to ms for pid; its wait status, or -1 if it is still running. */
static int wait_ms(pid_t pid, int ms)
{
	int st, i;

	for (i = 0; i < ms / 10 + 1; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (r < 0)
			return -2;
		usleep(10 * 1000);
	}
	return -1;
}

/* SIGTERM, up to 10 s, then SIGKILL. Returns the exit code, or -1 if it
 * had to be killed or died of a signal. */
static int sink_stop(sink_proc *s)
{
	int st;

	if (s->pid <= 0)
		return -1;
	kill(s->pid, SIGTERM);
	st = wait_ms(s->pid, 10000);
	if (st == -1) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, &st, 0);
		s->pid = 0;
		return -1;
	}
	s->pid = 0;
	return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ------------------------------------------------------------------------
 * HTTP
 */

typedef struct http_res {
	CURLcode rc;
	long status;
	char body[4096];
	size_t blen;
	char retry_after[128];
	double seconds;
} http_res;

static size_t on_body(char *p, size_t size, size_t n, void *payload)
{
	http_res *r = payload;
	size_t len = size * n, room = sizeof(r->body) - 1 - r->blen;

	memcpy(r->body + r->blen, p, len < room ? len : room);
	r->blen += len < room ? len : room;
	r->body[r->blen] = '\0';
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *payload)
{
	http_res *r = payload;
	size_t len = size * n;

	if (len > 12 && !strncasecmp(p, "Retry-After:", 12)) {
		const char *v = p + 12;
		size_t vl;
		while (*v == ' ')
			v++;
		vl = (size_t)(p + len - v);
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
			vl--;
		snprintf(r->retry_after, sizeof(r->retry_after), "%.*s", (int)vl, v);
	}
	return len;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* POST body as is (encoding, if given, is only the header). */
static http_res post_raw(int port, const char *method, const char *ctype, const char *encoding,
			 const void *body, size_t len, const char *idem)
{
	http_res r;
	struct curl_slist *h = NULL;
	char url[64], hdr[256];
	CURL *c = curl_easy_init();
	double t0;

	memset(&r, 0, sizeof(r));
	ck_assert_ptr_nonnull(c);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/log", port);
	if (ctype) {
		snprintf(hdr, sizeof(hdr), "Content-Type: %s", ctype);
		h = curl_slist_append(h, hdr);
	}
	if (encoding) {
		snprintf(hdr, sizeof(hdr), "Content-Encoding: %s", encoding);
		h = curl_slist_append(h, hdr);
	}
	if (idem) {
		snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", idem);
		h = curl_slist_append(h, hdr);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "check_sink/1");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
	if (!strcmp(method, "POST")) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}
	t0 = now_s();
	r.rc = curl_easy_perform(c);
	r.seconds = now_s() - t0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return r;
}

static void gzip(const void *in, size_t n, seg_buf *out)
{
	z_stream z;

	memset(&z, 0, sizeof(z));
	ck_assert_int_eq(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
			 Z_OK);
	out->len = 0;
	ck_assert_int_eq(seg_buf_reserve(out, deflateBound(&z, (uLong)n)), 0);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	z.next_out = (Bytef *)out->p;
	z.avail_out = (uInt)(out->cap - 1);
	ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
	out->len = z.total_out;
	deflateEnd(&z);
}

/* POST, gzipped first if asked. */
static http_res post(int port, const char *ctype, int gz, const void *body, size_t len,
		     const char *idem)
{
	seg_buf z = {0};
	http_res r;

	if (!gz)
		return post_raw(port, "POST", ctype, NULL, body, len, idem);
	gzip(body, len, &z);
	r = post_raw(port, "POST", ctype, "gzip", z.p, z.len, idem);
	seg_buf_free(&z);
	return r;
}

#define CT_NDJSON "application/x-ndjson"
#define CT_JSON "application/json"
#define CT_MSGPACK "application/msgpack"

/* ------------------------------------------------------------------------
 * Bodies: records [from, from + n) of device dev, data = sample prediction
 */

enum {
	F_NDJSON,
	F_JSON,
	F_MSGPACK
};
static const char *const CTYPE[] = {CT_NDJSON, CT_JSON, CT_MSGPACK};

static size_t sample_mp(uint64_t i, uint8_t *buf, size_t cap)
{
	size_t n = tool_sample_msgpack(i, buf, cap);
	ck_assert_uint_gt(n, 0);
	return n;
}

static void json_record(seg_buf *b, const char *dev, uint64_t i)
{
	uint8_t mp[2048];
	size_t n = sample_mp(i, mp, sizeof(mp));

	seg_buf_puts(b, "{\"device_id\":");
	seg_json_string(b, dev, strlen(dev));
	seg_buf_printf(b, ",\"seq\":%llu,\"ts\":%lld,\"data\":", (unsigned long long)i,
		       T0 + (long long)i);
	ck_assert_int_eq(seg_mp_to_json(mp, n, b), 0);
	seg_buf_puts(b, "}");
}

static int sb_write(void *data, const char *buf, size_t len)
{
	seg_buf_put(data, buf, len);
	return 0;
}

static void build(seg_buf *b, int format, const char *dev, uint64_t from, uint64_t n)
{
	uint64_t i;

	b->len = 0;
	if (format == F_MSGPACK) {
		msgpack_packer pk;
		msgpack_packer_init(&pk, b, sb_write);
		for (i = from; i < from + n; i++) {
			uint8_t mp[2048];
			size_t len = sample_mp(i, mp, sizeof(mp));
			msgpack_pack_map(&pk, 4);
			msgpack_pack_str(&pk, 9);
			msgpack_pack_str_body(&pk, "device_id", 9);
			msgpack_pack_str(&pk, strlen(dev));
			msgpack_pack_str_body(&pk, dev, strlen(dev));
			msgpack_pack_str(&pk, 3);
			msgpack_pack_str_body(&pk, "seq", 3);
			msgpack_pack_uint64(&pk, i);
			msgpack_pack_str(&pk, 2);
			msgpack_pack_str_body(&pk, "ts", 2);
			msgpack_pack_int64(&pk, T0 + (int64_t)i);
			msgpack_pack_str(&pk, 4);
			msgpack_pack_str_body(&pk, "data", 4);
			seg_buf_put(b, mp, len); /* one msgpack object already */
		}
	} else {
		if (format == F_JSON)
			seg_buf_puts(b, "[");
		for (i = from; i < from + n; i++) {
			if (format == F_JSON && i > from)
				seg_buf_puts(b, ",\n ");
			json_record(b, dev, i);
			if (format == F_NDJSON)
				seg_buf_puts(b, "\n");
		}
		if (format == F_JSON)
			seg_buf_puts(b, "]");
	}
	ck_assert(!b->oom);
}

/* POST records [from, from+n) and expect 200 with these counts. */
static void send_ok(int port, int format, int gz, const char *dev, uint64_t from, uint64_t n,
		    uint64_t accepted, uint64_t dups)
{
	seg_buf b = {0};
	char want[96], idem[128];
	http_res r;

	build(&b, format, dev, from, n);
	/* The header carries the device_id only if it is plain text. */
	snprintf(idem, sizeof(idem), "%s:%llu-%llu", strpbrk(dev, "\r\n") ? "dev" : dev,
		 (unsigned long long)from, (unsigned long long)(from + n - 1));
	r = post(port, CTYPE[format], gz, b.p, b.len, idem);
	seg_buf_free(&b);
	ck_assert_msg(r.rc == CURLE_OK, "curl: %s", curl_easy_strerror(r.rc));
	snprintf(want, sizeof(want), "{\"accepted\":%llu,\"duplicates\":%llu}",
		 (unsigned long long)accepted, (unsigned long long)dups);
	ck_assert_msg(r.status == 200 && !strcmp(r.body, want), "got %ld %s, want 200 %s", r.status,
		      r.body, want);
}

/* Lines of dir/records.ndjson (0 if it is missing). */
static size_t stored_lines(const char *dir)
{
	const char *p = tu_path(dir, "records.ndjson");
	tu_buf b;
	size_t i, n = 0;

	if (!tu_file_exists(p))
		return 0;
	b = tu_read_file(p);
	for (i = 0; i < b.len; i++)
		n += b.data[i] == '\n';
	if (b.len)
		ck_assert_msg(b.data[b.len - 1] == '\n', "records.ndjson ends mid-line");
	tu_buf_free(&b);
	return n;
}

static json_t *read_tally(const char *dir)
{
	json_error_t e;
	json_t *j = json_load_file(tu_path(dir, "tally.json"), 0, &e);
	ck_assert_msg(j != NULL, "tally.json: %s", e.text);
	return j;
}

static long long tally_int(json_t *t, const char *key)
{
	json_t *v = json_object_get(t, key);
	ck_assert_msg(json_is_integer(v), "tally.json: no integer '%s'", key);
	return json_integer_value(v);
}

static const char *tally_str(json_t *t, const char *key)
{
	json_t *v = json_object_get(t, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* ------------------------------------------------------------------------
 * The JSON validator (tool_sink_json.c), against jansson
 */

/* The validator's verdict on a whole text: one value, whitespace around. */
static int scanner_accepts(const char *s, size_t len)
{
	size_t pos = 0;

	while (pos < len && strchr(" \t\r\n", s[pos]) && s[pos])
		pos++;
	if (tool_sink_json_skip(s, len, &pos, NULL))
		return 0;
	while (pos < len && strchr(" \t\r\n", s[pos]) && s[pos])
		pos++;
	return pos == len;
}

/* jansson's verdict: 1 accepts, 0 refuses, -1 refuses only a number's
 * range (an integer beyond int64, a real beyond double): valid JSON. */
static int jansson_accepts(const char *s, size_t len)
{
	json_error_t e;
	json_t *v = json_loadb(s, len, JSON_DECODE_ANY, &e);

	if (v) {
		json_decref(v);
		return 1;
	}
	return strstr(e.text, "too big") || strstr(e.text, "overflow") ? -1 : 0;
}

START_TEST(test_json_validator_cases)
{
	static const struct {
		const char *text;
		int ok;
	} cases[] = {
		{"{}", 1},
		{"[]", 1},
		{" [ 1 , 2 ] ", 1},
		{"0", 1},
		{"-0", 1},
		{"-0.5e+10", 1},
		{"1E-5", 1},
		{"true", 1},
		{"false", 1},
		{"null", 1},
		{"\"\"", 1},
		{"\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9\"", 1},
		{"\"\\ud83d\\ude00\"", 1},
		{"\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", 1},
		{"{\"a\":{\"b\":[1,{\"c\":null}]},\"d\":\"e\"}", 1},
		{"18446744073709551616", 1}, /* beyond uint64: still JSON */
		{"", 0},
		{" ", 0},
		{"[1,]", 0},
		{"{\"a\":1,}", 0},
		{"01", 0},
		{"-", 0},
		{"1.", 0},
		{".5", 0},
		{"1e", 0},
		{"1e+", 0},
		{"+1", 0},
		{"tru", 0},
		{"nul", 0},
		{"True", 0},
		{"NaN", 0},
		{"Infinity", 0},
		{"[1 2]", 0},
		{"{\"a\" 1}", 0},
		{"{1:2}", 0},
		{"{\"a\"}", 0},
		{"[", 0},
		{"]", 0},
		{"{", 0},
		{"\"abc", 0},
		{"'a'", 0},
		{"\"\\x\"", 0},
		{"\"\\u12\"", 0},
		{"\"\\u12g4\"", 0},
		{"\"\\ud800\"", 0},
		{"\"\\udc00\"", 0},
		{"\"\\ud800\\u0041\"", 0},
		{"\"\\u0000\"", 0},
		{"\"a\tb\"", 0},
		{"\"a\nb\"", 0},
		{"\"\xc0\xaf\"", 0},
		{"\"\xed\xa0\x80\"", 0},
		{"\"\xf4\x90\x80\x80\"", 0},
		{"\"\xff\"", 0},
		{"\"\xe2\x82\"", 0},
		{"[1]x", 0},
		{"{}{}", 0},
		{"[1]]", 0},
		{"{\"a\":1}}", 0},
	};
	seg_buf deep = {0};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].text);
		ck_assert_msg(scanner_accepts(cases[i].text, len) == cases[i].ok,
			      "validator on '%s': want %s", cases[i].text,
			      cases[i].ok ? "valid" : "invalid");
		if (jansson_accepts(cases[i].text, len) >= 0)
			ck_assert_msg(jansson_accepts(cases[i].text, len) == cases[i].ok,
				      "jansson disagrees on '%s'", cases[i].text);
	}
	/* Nesting: up to TOOL_SINK_JSON_DEPTH, not one more. */
	for (i = 0; i < TOOL_SINK_JSON_DEPTH; i++)
		seg_buf_puts(&deep, "[");
	for (i = 0; i < TOOL_SINK_JSON_DEPTH; i++)
		seg_buf_puts(&deep, "]");
	ck_assert(scanner_accepts(deep.p, deep.len));
	deep.len = 0;
	for (i = 0; i <= TOOL_SINK_JSON_DEPTH; i++)
		seg_buf_puts(&deep, "[");
	for (i = 0; i <= TOOL_SINK_JSON_DEPTH; i++)
		seg_buf_puts(&deep, "]");
	ck_assert(!scanner_accepts(deep.p, deep.len));
	seg_buf_free(&deep);
}
END_TEST

/* Mutated predictions: the validator and jansson agree on every one
 * (except on numbers jansson cannot hold, which are valid JSON). */
START_TEST(test_json_validator_agrees_with_jansson)
{
	static const char bytes[] =
		"{}[],:\"\\ \n\t0123456789-+.eEtrufalsn\x00\x01\x7f\xc3\xa9\xed\xf4\xff"
		"u";
	/* CHECK_SINK_FUZZ=N runs N mutations (default 30000) from seed N. */
	const char *env = getenv("CHECK_SINK_FUZZ");
	int iters = env && atoi(env) > 0 ? atoi(env) : 30000, iter, valid = 0, invalid = 0;
	uint64_t rng = 12345 + (uint64_t)iters;
	seg_buf base = {0}, t = {0};

	for (iter = 0; iter < iters; iter++) {
		uint8_t mp[2048];
		size_t n = sample_mp(tu_rand_below(&rng, 50), mp, sizeof(mp));
		int k, muts = 1 + (int)tu_rand_below(&rng, 3), sv, jv;
		base.len = 0;
		ck_assert_int_eq(seg_mp_to_json(mp, n, &base), 0);
		t.len = 0;
		seg_buf_put(&t, base.p, base.len);
		for (k = 0; k < muts; k++) {
			size_t at = tu_rand_below(&rng, t.len + 1);
			char c = bytes[tu_rand_below(&rng, sizeof(bytes) - 1)];
			switch (tu_rand_below(&rng, 4)) {
			case 0: /* replace */
				if (at < t.len)
					t.p[at] = c;
				break;
			case 1: /* delete */
				if (at < t.len) {
					memmove(t.p + at, t.p + at + 1, t.len - at - 1);
					t.len--;
				}
				break;
			case 2: /* insert */
				seg_buf_put(&t, "", 1);
				memmove(t.p + at + 1, t.p + at, t.len - 1 - at);
				t.p[at] = c;
				break;
			default: /* cut */
				t.len = at;
				break;
			}
		}
		sv = scanner_accepts(t.p, t.len);
		jv = jansson_accepts(t.p, t.len);
		/* A NUL byte is never valid JSON, but jansson skips one that
		 * follows a number; compare the validator with the RFC there. */
		if (memchr(t.p, 0, t.len)) {
			ck_assert_msg(!sv, "validator accepts a NUL byte");
			continue;
		}
		if (jv < 0)
			continue;
		if (sv != jv) {
			size_t j;
			for (j = 0; j < t.len; j++)
				if ((unsigned char)t.p[j] < 0x20 || (unsigned char)t.p[j] >= 0x7f)
					fprintf(stderr, "byte %zu: 0x%02x\n", j,
						(unsigned char)t.p[j]);
			fprintf(stderr, "%.*s\n", (int)t.len, t.p);
		}
		ck_assert_msg(sv == jv, "validator %d, jansson %d (the text is on stderr)", sv, jv);
		if (sv)
			valid++;
		else
			invalid++;
	}
	ck_assert_int_gt(valid, 100);
	ck_assert_int_gt(invalid, 100);
	seg_buf_free(&base);
	seg_buf_free(&t);
}
END_TEST

START_TEST(test_json_minify)
{
	const char *in = " { \"a b\" : [ 1 ,\n\t2 ] , \"c\\\" d\" : \"e \\\\\" } ";
	tool_bytes out = {0};

	tool_sink_json_minify(in, strlen(in), &out);
	ck_assert_str_eq(out.p, "{\"a b\":[1,2],\"c\\\" d\":\"e \\\\\"}");
	tool_bytes_free(&out);
}
END_TEST

/* ------------------------------------------------------------------------
 * Formats
 */

START_TEST(test_formats_store_the_same_records)
{
	tu_buf first = {0};
	int f, gz;

	for (f = F_NDJSON; f <= F_MSGPACK; f++)
		for (gz = 0; gz <= 1; gz++) {
			const char *dir = tmpdir("sink-fmt");
			sink_proc s = sink_start(dir, NULL);
			json_t *t;
			tu_buf got;

			send_ok(s.port, f, gz, "cam-1", 0, 40, 40, 0);
			ck_assert_int_eq(sink_stop(&s), 0);
			ck_assert_uint_eq(stored_lines(dir), 40);
			got = tu_read_file(tu_path(dir, "records.ndjson"));
			if (!first.data) {
				first = got;
			} else {
				ck_assert_msg(got.len == first.len &&
						      !memcmp(got.data, first.data, got.len),
					      "format %d gzip %d stored different lines", f, gz);
				tu_buf_free(&got);
			}
			t = read_tally(dir);
			ck_assert_int_eq(tally_int(t, "accepted"), 40);
			ck_assert_int_eq(tally_int(t, "requests"), 1);
			ck_assert_str_eq(tally_str(t, "last_content_type"), CTYPE[f]);
			ck_assert_str_eq(tally_str(t, "last_idempotency_key"), "cam-1:0-39");
			ck_assert_str_eq(tally_str(t, "last_user_agent"), "check_sink/1");
			if (gz)
				ck_assert_str_eq(tally_str(t, "last_content_encoding"), "gzip");
			else
				ck_assert_ptr_null(tally_str(t, "last_content_encoding"));
			json_decref(t);
		}
	tu_buf_free(&first);
}
END_TEST

/* Each stored line is {"device_id","seq","ts","data"} with data equal to
 * the appended prediction. */
START_TEST(test_stored_lines_are_the_records)
{
	const char *dir = tmpdir("sink-lines");
	sink_proc s = sink_start(dir, NULL);
	tu_buf b;
	char *line, *save = NULL;
	uint64_t i = 0;

	send_ok(s.port, F_MSGPACK, 1, "cam-\"quoted\"\n", 100, 20, 20, 0);
	ck_assert_int_eq(sink_stop(&s), 0);
	b = tu_read_file(tu_path(dir, "records.ndjson"));
	b.data = realloc(b.data, b.len + 1);
	b.data[b.len] = '\0';
	for (line = strtok_r((char *)b.data, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), i++) {
		json_error_t e;
		json_t *rec = json_loads(line, 0, &e), *want;
		seg_buf expect = {0};
		uint8_t mp[2048];
		size_t n = sample_mp(100 + i, mp, sizeof(mp));
		ck_assert_msg(rec != NULL, "line %llu: %s", (unsigned long long)i, e.text);
		ck_assert_str_eq(json_string_value(json_object_get(rec, "device_id")),
				 "cam-\"quoted\"\n");
		ck_assert_int_eq(json_integer_value(json_object_get(rec, "seq")), 100 + i);
		ck_assert_int_eq(json_integer_value(json_object_get(rec, "ts")),
				 T0 + 100 + (long long)i);
		ck_assert_int_eq(seg_mp_to_json(mp, n, &expect), 0);
		want = json_loadb(expect.p, expect.len, 0, &e);
		ck_assert_ptr_nonnull(want);
		ck_assert_msg(json_equal(want, json_object_get(rec, "data")), "line %llu: data",
			      (unsigned long long)i);
		json_decref(want);
		json_decref(rec);
		seg_buf_free(&expect);
	}
	ck_assert_uint_eq(i, 20);
	tu_buf_free(&b);
}
END_TEST

/* Whitespace everywhere JSON allows it, none inside strings. */
static void pretty(const char *in, size_t n, seg_buf *out)
{
	size_t i;
	int in_str = 0;

	out->len = 0;
	for (i = 0; i < n; i++) {
		char c = in[i];
		if (in_str) {
			seg_buf_put(out, &c, 1);
			if (c == '\\')
				seg_buf_put(out, &in[++i], 1);
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '}' || c == ']')
			seg_buf_puts(out, "\r\n");
		seg_buf_put(out, &c, 1);
		if (c == '"')
			in_str = 1;
		else if (c == '{' || c == '[' || c == ',')
			seg_buf_puts(out, "\n\t ");
		else if (c == ':')
			seg_buf_puts(out, " ");
	}
}

/* A pretty-printed array stores the same lines as compact NDJSON. */
START_TEST(test_pretty_json_stored_compact)
{
	const char *d1 = tmpdir("sink-compact"), *d2 = tmpdir("sink-pretty");
	sink_proc s = sink_start(d1, NULL);
	seg_buf b = {0}, p = {0};
	tu_buf x, y;
	http_res r;

	send_ok(s.port, F_NDJSON, 0, "cam-1", 0, 30, 30, 0);
	ck_assert_int_eq(sink_stop(&s), 0);
	s = sink_start(d2, NULL);
	build(&b, F_JSON, "cam-1", 0, 30);
	pretty(b.p, b.len, &p);
	r = post(s.port, CT_JSON, 1, p.p, p.len, NULL);
	ck_assert_str_eq(r.body, "{\"accepted\":30,\"duplicates\":0}");
	ck_assert_int_eq(sink_stop(&s), 0);
	x = tu_read_file(tu_path(d1, "records.ndjson"));
	y = tu_read_file(tu_path(d2, "records.ndjson"));
	ck_assert_msg(x.len == y.len && !memcmp(x.data, y.data, x.len), "stored lines differ");
	tu_buf_free(&x);
	tu_buf_free(&y);
	seg_buf_free(&b);
	seg_buf_free(&p);
}
END_TEST

/* Records the fast path leaves to jansson are still taken, and numbers
 * beyond int64 in data (valid JSON) are kept as sent. */
START_TEST(test_unusual_records)
{
	const char *dir = tmpdir("sink-unusual");
	sink_proc s = sink_start(dir, NULL);
	const char *body =
		/* an escaped key */
		"{\"device_id\":\"cam-1\",\"s\\u0065q\":1,\"ts\":1,\"data\":{\"k\":\"v\"}}\n"
		/* an escaped device_id: the same device as "cam-1" */
		"{\"device_id\":\"cam\\u002d1\",\"seq\":2,\"ts\":1,\"data\":[]}\n"
		/* keys in another order, extra keys */
		"{\"data\":{\"big\":18446744073709551615,\"neg\":-9223372036854775809},\"x\":[1],"
		"\"ts\":-5,\"seq\":3,\"device_id\":\"cam-1\"}\n";
	const char *again = "{\"device_id\":\"cam-1\",\"seq\":2,\"ts\":1,\"data\":[]}\n";
	const char *want2 = "{\"device_id\":\"cam-1\",\"seq\":2,\"ts\":1,\"data\":[]}\n";
	const char *want3 = "{\"device_id\":\"cam-1\",\"seq\":3,\"ts\":-5,\"data\":{\"big\":"
			    "18446744073709551615,\"neg\":-9223372036854775809}}\n";
	tu_buf got;
	http_res r;

	r = post(s.port, CT_NDJSON, 0, body, strlen(body), NULL);
	ck_assert_str_eq(r.body, "{\"accepted\":3,\"duplicates\":0}");
	r = post(s.port, CT_NDJSON, 0, again, strlen(again), NULL);
	ck_assert_str_eq(r.body, "{\"accepted\":0,\"duplicates\":1}");
	ck_assert_int_eq(sink_stop(&s), 0);
	got = tu_read_file(tu_path(dir, "records.ndjson"));
	ck_assert_msg(memmem(got.data, got.len, want3, strlen(want3)) != NULL,
		      "record 3 not stored as sent");
	ck_assert_msg(memmem(got.data, got.len, want2, strlen(want2)) != NULL,
		      "escaped device_id not stored canonically");
	tu_buf_free(&got);
}
END_TEST

START_TEST(test_empty_batch_and_whitespace)
{
	const char *dir = tmpdir("sink-empty");
	sink_proc s = sink_start(dir, NULL);
	const char *body;
	http_res r;

	r = post(s.port, CT_NDJSON, 0, "", 0, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"accepted\":0,\"duplicates\":0}");
	r = post(s.port, CT_JSON, 1, " [ ] \n", 6, NULL);
	ck_assert_int_eq(r.status, 200);
	r = post(s.port, CT_MSGPACK, 0, "", 0, NULL);
	ck_assert_int_eq(r.status, 200);
	/* Blank lines and CRLF in NDJSON; a charset parameter. */
	body = "\r\n{\"device_id\":\"d\",\"seq\":1,\"ts\":2,\"data\":null}\r\n\n";
	r = post(s.port, "application/x-ndjson; charset=utf-8", 0, body, strlen(body), NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"accepted\":1,\"duplicates\":0}");
	ck_assert_int_eq(sink_stop(&s), 0);
	ck_assert_uint_eq(stored_lines(dir), 1);
}
END_TEST

/* ------------------------------------------------------------------------
 * Dedupe
 */

START_TEST(test_duplicates_not_stored_twice)
{
	const char *dir = tmpdir("sink-dup");
	sink_proc s = sink_start(dir, NULL);
	const char *twice = "{\"device_id\":\"d\",\"seq\":7,\"ts\":1,\"data\":1}\n"
			    "{\"device_id\":\"d\",\"seq\":7,\"ts\":1,\"data\":1}\n";
	http_res r;

	send_ok(s.port, F_NDJSON, 1, "cam-1", 0, 50, 50, 0);
	send_ok(s.port, F_NDJSON, 1, "cam-1", 0, 50, 0, 50);        /* a retry */
	send_ok(s.port, F_MSGPACK, 0, "cam-1", 25, 50, 25, 25);     /* overlap, other format */
	send_ok(s.port, F_JSON, 0, "cam-2", 0, 10, 10, 0);          /* same seqs, other device */
	r = post(s.port, CT_NDJSON, 0, twice, strlen(twice), NULL); /* within one batch */
	ck_assert_str_eq(r.body, "{\"accepted\":1,\"duplicates\":1}");
	ck_assert_int_eq(sink_stop(&s), 0);
	ck_assert_uint_eq(stored_lines(dir), 75 + 10 + 1);
}
END_TEST

START_TEST(test_dedupe_survives_restart)
{
	const char *dir = tmpdir("sink-restart");
	sink_proc s = sink_start(dir, NULL);
	const char *torn = "{\"device_id\":\"cam-1\",\"seq\":500,\"ts\":1,\"da";
	int fd;

	send_ok(s.port, F_NDJSON, 1, "cam-1", 0, 50, 50, 0);
	send_ok(s.port, F_MSGPACK, 1, "weird \\ id \xc3\xa9", 0, 5, 5, 0);
	ck_assert_int_eq(sink_stop(&s), 0);

	s = sink_start(dir, NULL);
	send_ok(s.port, F_JSON, 1, "cam-1", 0, 60, 10, 50);
	send_ok(s.port, F_NDJSON, 0, "weird \\ id \xc3\xa9", 0, 6, 1, 5);
	ck_assert_int_eq(sink_stop(&s), 0);
	ck_assert_uint_eq(stored_lines(dir), 66);

	/* A crash mid-write leaves a torn last line, never acked: cut it. */
	fd = open(tu_path(dir, "records.ndjson"), O_WRONLY | O_APPEND);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, torn, strlen(torn)), (ssize_t)strlen(torn));
	close(fd);
	s = sink_start(dir, NULL);
	send_ok(s.port, F_NDJSON, 0, "cam-1", 55, 10, 5, 5);
	ck_assert_int_eq(sink_stop(&s), 0);
	ck_assert_uint_eq(stored_lines(dir), 71);
}
END_TEST

/* The set holds many records and a restart reloads them quickly. */
START_TEST(test_dedupe_many_records)
{
	const char *dir = tmpdir("sink-many");
	sink_proc s = sink_start(dir, NULL);
	seg_buf b = {0};
	double t0;
	uint64_t i;
	http_res r;

	/* 200k small records in 20 batches, on 4 devices. */
	for (i = 0; i < 20; i++) {
		uint64_t j;
		b.len = 0;
		for (j = 0; j < 10000; j++)
			seg_buf_printf(&b,
				       "{\"device_id\":\"dev-%llu\",\"seq\":%llu,\"ts\":1,"
				       "\"data\":{\"v\":%llu}}\n",
				       (unsigned long long)(j % 4),
				       (unsigned long long)(i * 2500 + j / 4),
				       (unsigned long long)j);
		r = post(s.port, CT_NDJSON, 1, b.p, b.len, NULL);
		ck_assert_str_eq(r.body, "{\"accepted\":10000,\"duplicates\":0}");
	}
	ck_assert_int_eq(sink_stop(&s), 0);
	t0 = now_s();
	s = sink_start(dir, NULL);
	ck_assert_msg(now_s() - t0 < 10, "reload of 200k records took %.1f s", now_s() - t0);
	r = post(s.port, CT_NDJSON, 1, b.p, b.len, NULL);
	ck_assert_str_eq(r.body, "{\"accepted\":0,\"duplicates\":10000}");
	ck_assert_int_eq(sink_stop(&s), 0);
	ck_assert_uint_eq(stored_lines(dir), 200000);
	seg_buf_free(&b);
}
END_TEST

/* Four clients send the same records at once: each is stored once. */
START_TEST(test_concurrent_clients_store_once)
{
	const char *dir = tmpdir("sink-conc");
	sink_proc s = sink_start(dir, NULL);
	pid_t kids[4];
	int k;

	for (k = 0; k < 4; k++) {
		kids[k] = fork();
		ck_assert_int_ge(kids[k], 0);
		if (kids[k] == 0) {
			uint64_t from;
			for (from = 0; from < 400; from += 40) {
				seg_buf b = {0};
				http_res r;
				build(&b, k % 3, "cam-c", from, 40);
				r = post(s.port, CTYPE[k % 3], k & 1, b.p, b.len, NULL);
				if (r.status != 200)
					_exit(1);
				seg_buf_free(&b);
			}
			_exit(0);
		}
	}
	for (k = 0; k < 4; k++) {
		int st = wait_ms(kids[k], 60000);
		if (st == -1) {
			kill(kids[k], SIGKILL);
			waitpid(kids[k], &st, 0);
		}
		ck_assert_msg(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "client %d", k);
	}
	ck_assert_int_eq(sink_stop(&s), 0);
	ck_assert_uint_eq(stored_lines(dir), 400);
}
END_TEST

/* ------------------------------------------------------------------------
 * Hostile bodies
 */

typedef struct bad_case {
	const char *name, *ctype, *encoding;
	const char *body;
	size_t len; /* 0: strlen(body) */
	long status;
	const char *says; /* in the error message */
} bad_case;

static void expect_bad(int port, const bad_case *c)
{
	size_t len = c->len ? c->len : strlen(c->body);
	http_res r = post_raw(port, "POST", c->ctype, c->encoding, c->body, len, NULL);

	ck_assert_msg(r.rc == CURLE_OK, "%s: curl: %s", c->name, curl_easy_strerror(r.rc));
	ck_assert_msg(r.status == c->status, "%s: got %ld %s, want %ld", c->name, r.status, r.body,
		      c->status);
	ck_assert_msg(!c->says || strstr(r.body, c->says), "%s: '%s' does not say '%s'", c->name,
		      r.body, c->says);
}

#define GOOD "{\"device_id\":\"d\",\"seq\":1,\"ts\":2,\"data\":{\"x\":1}}\n"

START_TEST(test_malformed_bodies_rejected_whole)
{
	const char *dir = tmpdir("sink-bad");
	sink_proc s = sink_start(dir, NULL);
	static const char mp_not_map[] = "\x93\x01\x02\x03";
	static const char mp_c1[] = "\xc1";
	/* {"device_id":"d","seq":1,"ts":1,"data": (the value follows) */
	static const char mp_head[] = "\x84\xa9"
				      "device_id"
				      "\xa1"
				      "d"
				      "\xa3"
				      "seq"
				      "\x01\xa2"
				      "ts"
				      "\x01\xa4"
				      "data";
	const bad_case cases[] = {
		{"bad JSON line", CT_NDJSON, NULL, GOOD "{\"device_id\":\"d\",\"seq\":2,\n", 0, 400,
		 "record 1 (line 2)"},
		{"not JSON", CT_NDJSON, NULL, "hello\n", 0, 400, "record 0"},
		{"missing ts", CT_NDJSON, NULL,
		 GOOD GOOD "{\"device_id\":\"d\",\"seq\":3,\"data\":1}\n", 0, 400,
		 "record 2: missing field 'ts'"},
		{"missing data", CT_NDJSON, NULL, "{\"device_id\":\"d\",\"seq\":3,\"ts\":1}\n", 0,
		 400, "record 0: missing field 'data'"},
		{"missing device_id", CT_NDJSON, NULL, "{\"seq\":3,\"ts\":1,\"data\":1}\n", 0, 400,
		 "'device_id'"},
		{"seq a string", CT_NDJSON, NULL,
		 GOOD "{\"device_id\":\"d\",\"seq\":\"5\",\"ts\":1,\"data\":1}\n", 0, 400,
		 "record 1: field 'seq' must be an unsigned integer"},
		{"seq negative", CT_NDJSON, NULL,
		 "{\"device_id\":\"d\",\"seq\":-1,\"ts\":1,\"data\":1}", 0, 400, "'seq'"},
		{"seq a float", CT_NDJSON, NULL,
		 "{\"device_id\":\"d\",\"seq\":1.5,\"ts\":1,\"data\":1}", 0, 400, "'seq'"},
		{"ts a string", CT_NDJSON, NULL,
		 "{\"device_id\":\"d\",\"seq\":1,\"ts\":\"x\",\"data\":1}", 0, 400,
		 "field 'ts' must be an integer"},
		{"device_id a number", CT_NDJSON, NULL,
		 "{\"device_id\":5,\"seq\":1,\"ts\":1,\"data\":1}", 0, 400,
		 "field 'device_id' must be a string"},
		{"record an array", CT_NDJSON, NULL, "[1,2]\n", 0, 400, "not a JSON object"},
		{"json not an array", CT_JSON, NULL, GOOD, 0, 400, "not a JSON array"},
		{"json unterminated", CT_JSON, NULL, "[" GOOD ",", 0, 400, "record 1"},
		{"json missing comma", CT_JSON, NULL, "[" GOOD GOOD "]", 0, 400, "after record 0"},
		{"json trailing data", CT_JSON, NULL, "[" GOOD "] x", 0, 400,
		 "after the JSON array"},
		{"json element not object", CT_JSON, NULL, "[" GOOD ", 5]", 0, 400,
		 "record 1: not a JSON object"},
		{"bad gzip", CT_NDJSON, "gzip", "this is not gzip at all", 0, 400, "gzip"},
		{"empty gzip", CT_NDJSON, "gzip", "", 0, 400, "gzip"},
		{"msgpack 0xc1", CT_MSGPACK, NULL, mp_c1, 1, 400, "record 0"},
		{"msgpack not a map", CT_MSGPACK, NULL, mp_not_map, 4, 400, "not a msgpack map"},
		{"text/plain", "text/plain", NULL, GOOD, 0, 415, "Content-Type"},
		{"no Content-Type", NULL, NULL, GOOD, 0, 415, "Content-Type"},
		{"brotli", CT_NDJSON, "br", GOOD, 0, 415, "Content-Encoding"},
	};
	seg_buf b = {0}, z = {0}, deep = {0};
	size_t i;
	http_res r;
	json_t *t;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_bad(s.port, &cases[i]);

	/* A truncated gzip of a valid body. */
	build(&b, F_NDJSON, "cam-1", 0, 20);
	gzip(b.p, b.len, &z);
	r = post_raw(s.port, "POST", CT_NDJSON, "gzip", z.p, z.len / 2, NULL);
	ck_assert_int_eq(r.status, 400);
	/* A valid gzip member followed by garbage. */
	seg_buf_put(&z, "garbage!", 8);
	r = post_raw(s.port, "POST", CT_NDJSON, "gzip", z.p, z.len, NULL);
	ck_assert_int_eq(r.status, 400);
	/* Truncated msgpack: the last record cut short. */
	build(&b, F_MSGPACK, "cam-1", 0, 20);
	r = post_raw(s.port, "POST", CT_MSGPACK, NULL, b.p, b.len - 10, NULL);
	ck_assert_msg(r.status == 400 && strstr(r.body, "record 19"), "%ld %s", r.status, r.body);
	/* Deep JSON, as NDJSON and in an array. */
	seg_buf_puts(&deep, "{\"device_id\":\"d\",\"seq\":1,\"ts\":1,\"data\":");
	for (i = 0; i < 100000; i++)
		seg_buf_puts(&deep, "[");
	r = post_raw(s.port, "POST", CT_NDJSON, NULL, deep.p, deep.len, NULL);
	ck_assert_int_eq(r.status, 400);
	r = post(s.port, CT_JSON, 1, deep.p, deep.len, NULL);
	ck_assert_int_eq(r.status, 400);
	/* Deep msgpack: 100000 nested one-element arrays. */
	deep.len = 0;
	seg_buf_put(&deep, mp_head, sizeof(mp_head) - 1);
	for (i = 0; i < 100000; i++)
		seg_buf_put(&deep, "\x91", 1);
	seg_buf_put(&deep, "\x01", 1);
	r = post_raw(s.port, "POST", CT_MSGPACK, NULL, deep.p, deep.len, NULL);
	ck_assert_int_eq(r.status, 400);
	/* msgpack declaring a huge array it does not hold. */
	r = post_raw(s.port, "POST", CT_MSGPACK, NULL, "\xdd\xff\xff\xff\xff\x01", 6, NULL);
	ck_assert_int_eq(r.status, 400);

	/* Nothing stored, and the sink still works. */
	ck_assert_uint_eq(stored_lines(dir), 0);
	send_ok(s.port, F_NDJSON, 1, "cam-1", 0, 20, 20, 0);
	ck_assert_int_eq(sink_stop(&s), 0);
	ck_assert_uint_eq(stored_lines(dir), 20);
	t = read_tally(dir);
	ck_assert_int_eq(tally_int(t, "bad_requests"),
			 (long long)(sizeof(cases) / sizeof(cases[0])) + 7);
	json_decref(t);
	seg_buf_free(&b);
	seg_buf_free(&z);
	seg_buf_free(&deep);
}
END_TEST

START_TEST(test_get_is_405)
{
	const char *dir = tmpdir("sink-405");
	sink_proc s = sink_start(dir, NULL);
	http_res r = post_raw(s.port, "GET", NULL, NULL, NULL, 0, NULL);

	ck_assert_int_eq(r.rc, CURLE_OK);
	ck_assert_int_eq(r.status, 405);
	ck_assert_int_eq(sink_stop(&s), 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * Limits
 */

START_TEST(test_gzip_bomb_413)
{
	const char *dir = tmpdir("sink-bomb");
	sink_proc s = sink_start(dir, NULL);
	size_t chunk = 1 << 20, i;
	char *zeros = calloc(1, chunk);
	seg_buf z = {0};
	z_stream zs;
	http_res r;

	/* 100 MiB of zeros (over the default 16 MiB cap) in about 100 KiB. */
	memset(&zs, 0, sizeof(zs));
	ck_assert_int_eq(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY),
			 Z_OK);
	ck_assert_int_eq(seg_buf_reserve(&z, 1 << 20), 0);
	for (i = 0; i < 100; i++) {
		zs.next_in = (Bytef *)zeros;
		zs.avail_in = (uInt)chunk;
		do {
			ck_assert_int_eq(seg_buf_reserve(&z, 65536), 0);
			zs.next_out = (Bytef *)z.p + z.len;
			zs.avail_out = 65536;
			deflate(&zs, i == 99 ? Z_FINISH : Z_NO_FLUSH);
			z.len = (size_t)(zs.next_out - (Bytef *)z.p);
		} while (zs.avail_in || (i == 99 && zs.avail_out == 0));
	}
	deflateEnd(&zs);
	ck_assert_uint_lt(z.len, 1 << 20);
	r = post_raw(s.port, "POST", CT_NDJSON, "gzip", z.p, z.len, NULL);
	ck_assert_msg(r.status == 413, "got %ld %s", r.status, r.body);
	ck_assert_int_eq(sink_stop(&s), 0);
	ck_assert_uint_eq(stored_lines(dir), 0);
	seg_buf_free(&z);
	free(zeros);
}
END_TEST

/* ---- bounded resources (issue 9, defect 10) ------------------------------ */

/* The sink's peak resident memory, in KiB (VmHWM). */
static long peak_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* A raw loopback connection to the sink, with a 10 s receive timeout. */
static int connect_raw(int port)
{
	struct sockaddr_in sa;
	struct timeval tv = {10, 0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		ck_assert_msg(w > 0, "send: %s", strerror(errno));
		c += w;
		n -= (size_t)w;
	}
}

/* A chunked body far over --max-body gets its 413, not a closed
 * connection, and the sink keeps none of it (it was cut off at twice the
 * cap without an answer). */
START_TEST(test_chunked_over_cap_413)
{
	const char *const args[] = {"--max-body", "100000", NULL};
	const char *dir = tmpdir("sink-chunked");
	sink_proc s = sink_start(dir, args);
	static const char head[] = "POST /log HTTP/1.1\r\nHost: x\r\n"
				   "Content-Type: application/x-ndjson\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n";
	char *chunk = malloc(1 << 16), line[32], answer[512];
	int fd = connect_raw(s.port), i;
	ssize_t n;

	memset(chunk, 'x', 1 << 16);
	send_all(fd, head, sizeof(head) - 1);
	for (i = 0; i < 256; i++) { /* 16 MiB */
		snprintf(line, sizeof(line), "%x\r\n", 1 << 16);
		send_all(fd, line, strlen(line));
		send_all(fd, chunk, 1 << 16);
		send_all(fd, "\r\n", 2);
	}
	send_all(fd, "0\r\n\r\n", 5);
	n = recv(fd, answer, sizeof(answer) - 1, 0);
	ck_assert_msg(n > 0, "no answer: %s", n ? strerror(errno) : "closed");
	answer[n] = '\0';
	ck_assert_msg(!strncmp(answer, "HTTP/1.1 413", 12), "answer: %.100s", answer);
	ck_assert_msg(peak_kib(s.pid) < 40 * 1024, "sink peaked at %ld KiB", peak_kib(s.pid));
	close(fd);
	ck_assert_int_eq(sink_stop(&s), 0);
	ck_assert_uint_eq(stored_lines(dir), 0);
	free(chunk);
}
END_TEST

typedef struct bomb {
	int port;
	const seg_buf *z;
	http_res r;
	pthread_t th;
} bomb;

static void *bomb_main(void *arg)
{
	bomb *b = arg;
	b->r = post_raw(b->port, "POST", CT_NDJSON, "gzip", b->z->p, b->z->len, NULL);
	return NULL;
}

/* Eight bombs at once: the sink's budget (128 MiB) plus its threads stay
 * under 200 MB; the unbounded sink reached about 500 MB. ThreadSanitizer's
 * shadow memory inflates what the same allocations cost (209 MB seen), so
 * the bound grows there, still far below what unbounded inflation takes. */
#if defined(__SANITIZE_THREAD__)
#define BOMBS_PEAK_KIB (320 * 1024)
#else
#define BOMBS_PEAK_KIB (200 * 1024)
#endif

/* Eight gzip bombs at once against the default limits: each is refused
 * with an answer (413, or 503 once the memory budget is taken), and the
 * sink's memory stays bounded (it reached 585 MB). */
START_TEST(test_parallel_gzip_bombs_bounded)
{
	const char *dir = tmpdir("sink-bombs");
	sink_proc s = sink_start(dir, NULL);
	size_t chunk = 1 << 20, i;
	char *zeros = calloc(1, chunk);
	seg_buf z = {0};
	z_stream zs;
	bomb b[8];
	long peak;

	memset(&zs, 0, sizeof(zs));
	ck_assert_int_eq(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY),
			 Z_OK);
	for (i = 0; i < 100; i++) { /* 100 MiB of zeros */
		zs.next_in = (Bytef *)zeros;
		zs.avail_in = (uInt)chunk;
		do {
			ck_assert_int_eq(seg_buf_reserve(&z, 65536), 0);
			zs.next_out = (Bytef *)z.p + z.len;
			zs.avail_out = 65536;
			deflate(&zs, i == 99 ? Z_FINISH : Z_NO_FLUSH);
			z.len = (size_t)(zs.next_out - (Bytef *)z.p);
		} while (zs.avail_in || (i == 99 && zs.avail_out == 0));
	}
	deflateEnd(&zs);
	for (i = 0; i < 8; i++) {
		b[i].port = s.port;
		b[i].z = &z;
		ck_assert_int_eq(pthread_create(&b[i].th, NULL, bomb_main, &b[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(b[i].th, NULL);
		ck_assert_msg(b[i].r.status == 413 || b[i].r.status == 503,
			      "bomb %zu: status %ld (%s) %s", i, b[i].r.status,
			      curl_easy_strerror(b[i].r.rc), b[i].r.body);
	}
	peak = peak_kib(s.pid);
	ck_assert_msg(peak < BOMBS_PEAK_KIB, "sink peaked at %ld KiB", peak);
	send_ok(s.port, F_NDJSON, 1, "cam-1", 0, 20, 20, 0); /* still serving */
	ck_assert_int_eq(sink_stop(&s), 0);
	ck_assert_uint_eq(stored_lines(dir), 20);
	seg_buf_free(&z);
	free(zeros);
}
END_TEST

/* A request that would take the sink past --max-memory gets 503 with
 * Retry-After, never an unbounded allocation. */
START_TEST(test_memory_budget_503)
{
	const char *const args[] = {"--max-memory", "1000000", "--max-body", "4000000", NULL};
	const char *dir = tmpdir("sink-budget");
	sink_proc s = sink_start(dir, args);
	seg_buf b = {0};
	http_res r;

	build(&b, F_NDJSON, "cam-1", 0, 4000); /* about 2 MB */
	ck_assert_uint_gt(b.len, 1000000);
	r = post(s.port, CT_NDJSON, 0, b.p, b.len, NULL);
	ck_assert_msg(r.status == 503, "got %ld (%s)", r.status, curl_easy_strerror(r.rc));
	ck_assert_str_eq(r.retry_after, "1");
	send_ok(s.port, F_NDJSON, 0, "cam-1", 0, 20, 20, 0); /* small ones still go */
	ck_assert_int_eq(sink_stop(&s), 0);
	ck_assert_uint_eq(stored_lines(dir), 20);
	seg_buf_free(&b);
}
END_TEST

static void sleep_s(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Clients that connect and send half a request hold a connection slot
 * only until --idle-timeout: a real client gets through after that. */
START_TEST(test_idle_clients_timed_out)
{
	const char *const args[] = {"--max-connections", "4", "--idle-timeout", "1", NULL};
	const char *dir = tmpdir("sink-idle");
	sink_proc s = sink_start(dir, args);
	static const char half[] = "POST /log HTTP/1.1\r\nHost: x\r\nContent-Le";
	int fd[4], i;
	double t0 = now_s();
	http_res r;
	seg_buf b = {0};

	for (i = 0; i < 4; i++) {
		fd[i] = connect_raw(s.port);
		send_all(fd[i], half, sizeof(half) - 1);
	}
	/* Every slot is taken: a client now is turned away (libmicrohttpd
	 * closes connections past the limit), until the idle ones time out. */
	sleep_s(2.5);
	build(&b, F_NDJSON, "cam-1", 0, 5);
	r = post(s.port, CT_NDJSON, 0, b.p, b.len, NULL);
	ck_assert_msg(r.status == 200, "got %ld (%s) after %.1f s", r.status,
		      curl_easy_strerror(r.rc), now_s() - t0);
	ck_assert_msg(now_s() - t0 < 15, "took %.1f s", now_s() - t0);
	for (i = 0; i < 4; i++) {
		char c;
		/* The idle ones were closed (0: orderly; an answer first is fine). */
		ck_assert_int_ge(recv(fd[i], &c, 1, 0), 0);
		close(fd[i]);
	}
	ck_assert_int_eq(sink_stop(&s), 0);
	ck_assert_uint_eq(stored_lines(dir), 5);
	seg_buf_free(&b);
}
END_TEST

START_TEST(test_max_body)
{
	const char *const args[] = {"--max-body", "20000", NULL};
	const char *dir = tmpdir("sink-max");
	sink_proc s = sink_start(dir, args);
	seg_buf b = {0};
	http_res r;

	build(&b, F_NDJSON, "cam-1", 0, 200); /* about 100 KB */
	ck_assert_uint_gt(b.len, 20000);
	r = post(s.port, CT_NDJSON, 0, b.p, b.len, NULL); /* Content-Length over the cap */
	ck_assert_msg(r.status == 413, "got %ld (%s)", r.status, curl_easy_strerror(r.rc));
	r = post(s.port, CT_NDJSON, 1, b.p, b.len, NULL); /* small gzip, inflates over it */
	ck_assert_int_eq(r.status, 413);
	send_ok(s.port, F_NDJSON, 1, "cam-1", 0, 20, 20, 0); /* under it */
	ck_assert_int_eq(sink_stop(&s), 0);
	ck_assert_uint_eq(stored_lines(dir), 20);
	seg_buf_free(&b);
}
END_TEST

/* ------------------------------------------------------------------------
 * Fault injection
 */

START_TEST(test_fail_status_retry_after)
{
	const char *const args[] = {"--fail-status", "503", "--retry-after", "2", NULL};
	const char *dir = tmpdir("sink-503");
	sink_proc s = sink_start(dir, args);
	seg_buf b = {0};
	http_res r;
	json_t *t;
	int i;

	build(&b, F_NDJSON, "cam-1", 0, 10);
	for (i = 0; i < 3; i++) {
		r = post(s.port, CT_NDJSON, 1, b.p, b.len, "cam-1:0-9");
		ck_assert_int_eq(r.status, 503);
		ck_assert_str_eq(r.retry_after, "2");
	}
	ck_assert_int_eq(sink_stop(&s), 0);
	ck_assert_uint_eq(stored_lines(dir), 0);
	t = read_tally(dir);
	ck_assert_int_eq(tally_int(t, "injected_failures"), 3);
	ck_assert_int_eq(tally_int(t, "accepted"), 0);
	ck_assert_str_eq(tally_str(t, "last_idempotency_key"), "cam-1:0-9");
	json_decref(t);
	seg_buf_free(&b);
}
END_TEST

START_TEST(test_retry_after_date)
{
	const char *const args[] = {"--fail-status",      "429", "--retry-after", "30",
				    "--retry-after-date", NULL};
	const char *dir = tmpdir("sink-429");
	sink_proc s = sink_start(dir, args);
	http_res r = post(s.port, CT_NDJSON, 0, GOOD, strlen(GOOD), NULL);
	time_t when, now = time(NULL);

	ck_assert_int_eq(r.status, 429);
	ck_assert_msg(strstr(r.retry_after, " GMT") != NULL, "Retry-After: %s", r.retry_after);
	when = curl_getdate(r.retry_after, NULL);
	ck_assert_msg(when >= now + 25 && when <= now + 35, "Retry-After: %s is not 30 s ahead",
		      r.retry_after);
	ck_assert_int_eq(sink_stop(&s), 0);
}
END_TEST

/* Seconds past any date: the last an HTTP date can name (year 9999).
 * The sum with the clock overflowed for 2^63 - 1 (UBSan), and a year
 * gmtime cannot hold left the date's fields unset. */
START_TEST(test_retry_after_date_far)
{
	static const char *const secs[] = {"9223372036854775807", "100000000000000000",
					   "18446744073709551615"};
	size_t i;

	for (i = 0; i < sizeof(secs) / sizeof(secs[0]); i++) {
		const char *const args[] = {"--fail-status", "503", "--retry-after-date", secs[i],
					    NULL};
		sink_proc s = sink_start(tmpdir("sink-far"), args);
		http_res r = post(s.port, CT_NDJSON, 0, GOOD, strlen(GOOD), NULL);

		ck_assert_msg(r.status == 503, "%s s: HTTP %ld (curl %d)", secs[i], r.status,
			      (int)r.rc);
		ck_assert_str_eq(r.retry_after, "Fri, 31 Dec 9999 23:59:59 GMT");
		ck_assert_int_eq(sink_stop(&s), 0);
	}
}
END_TEST

START_TEST(test_fail_first_then_normal)
{
	const char *const args[] = {"--fail-first", "2", NULL};
	const char *dir = tmpdir("sink-first");
	sink_proc s = sink_start(dir, args);
	http_res r;

	r = post(s.port, CT_NDJSON, 0, GOOD, strlen(GOOD), NULL);
	ck_assert_int_eq(r.status, 503);
	r = post(s.port, CT_NDJSON, 0, GOOD, strlen(GOOD), NULL);
	ck_assert_int_eq(r.status, 503);
	r = post(s.port, CT_NDJSON, 0, GOOD, strlen(GOOD), NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(sink_stop(&s), 0);
	ck_assert_uint_eq(stored_lines(dir), 1);
}
END_TEST

/* With a rate, some requests fail and some pass; retrying until each
 * batch is acked stores everything exactly once. */
START_TEST(test_fail_rate_with_retries)
{
	const char *const args[] = {"--fail-status", "500", "--fail-rate", "0.5",
				    "--seed",        "7",   NULL};
	const char *dir = tmpdir("sink-rate");
	sink_proc s = sink_start(dir, args);
	int fails = 0, oks = 0;
	uint64_t from;

	for (from = 0; from < 200; from += 10) {
		seg_buf b = {0};
		int tries;
		build(&b, F_NDJSON, "cam-r", from, 10);
		for (tries = 0; tries < 60; tries++) {
			http_res r = post(s.port, CT_NDJSON, 1, b.p, b.len, NULL);
			if (r.status == 200) {
				oks++;
				break;
			}
			ck_assert_int_eq(r.status, 500);
			fails++;
		}
		ck_assert_int_lt(tries, 60);
		seg_buf_free(&b);
	}
	ck_assert_int_gt(fails, 0);
	ck_assert_int_eq(oks, 20);
	ck_assert_int_eq(sink_stop(&s), 0);
	ck_assert_uint_eq(stored_lines(dir), 200);
}
END_TEST

static void label_batch(seg_buf *b, uint64_t from, int n, uint64_t dog_at, const char *site)
{
	int i;

	b->len = 0;
	for (i = 0; i < n; i++) {
		uint64_t seq = from + (uint64_t)i;
		seg_buf_printf(b,
			       "{\"device_id\":\"cam-1\",\"seq\":%llu,\"ts\":1,\"data\":{\"label\":"
			       "\"%s\",\"score\":0.5,\"meta\":{\"site\":\"%s\",\"frame\":%llu}}}\n",
			       (unsigned long long)seq, seq == dog_at ? "dog" : "cat",
			       seq == dog_at ? site : "lab1", (unsigned long long)seq);
	}
}

START_TEST(test_reject_if)
{
	const char *const args[] = {"--reject-if", "label=dog", "--reject-if", "meta.frame=123",
				    NULL};
	const char *dir = tmpdir("sink-reject");
	sink_proc s = sink_start(dir, args);
	seg_buf b = {0};
	http_res r;
	json_t *t;

	label_batch(&b, 0, 10, UINT64_MAX, NULL); /* all cats */
	r = post(s.port, CT_NDJSON, 1, b.p, b.len, NULL);
	ck_assert_str_eq(r.body, "{\"accepted\":10,\"duplicates\":0}");
	label_batch(&b, 10, 10, 17, "lab1"); /* one dog */
	r = post(s.port, CT_NDJSON, 1, b.p, b.len, NULL);
	ck_assert_int_eq(r.status, 422);
	ck_assert_str_eq(r.body, "{\"error\":\"rejected\",\"seq\":17}");
	label_batch(&b, 120, 10, UINT64_MAX, NULL); /* meta.frame 123 (a number) */
	r = post(s.port, CT_NDJSON, 0, b.p, b.len, NULL);
	ck_assert_int_eq(r.status, 422);
	ck_assert_str_eq(r.body, "{\"error\":\"rejected\",\"seq\":123}");
	/* Splitting around the poison record, as the uploader does. */
	label_batch(&b, 10, 7, UINT64_MAX, NULL);
	r = post(s.port, CT_NDJSON, 0, b.p, b.len, NULL);
	ck_assert_str_eq(r.body, "{\"accepted\":7,\"duplicates\":0}");
	ck_assert_int_eq(sink_stop(&s), 0);
	ck_assert_uint_eq(stored_lines(dir), 17);
	t = read_tally(dir);
	ck_assert_int_eq(tally_int(t, "rejected"), 2);
	json_decref(t);
	seg_buf_free(&b);
}
END_TEST

START_TEST(test_reject_if_dotted_path)
{
	const char *const args[] = {"--reject-if", "meta.site=lab3", NULL};
	const char *dir = tmpdir("sink-reject2");
	sink_proc s = sink_start(dir, args);
	seg_buf b = {0};
	http_res r;

	label_batch(&b, 0, 5, 3, "lab3");
	r = post(s.port, CT_NDJSON, 0, b.p, b.len, NULL);
	ck_assert_str_eq(r.body, "{\"error\":\"rejected\",\"seq\":3}");
	label_batch(&b, 0, 5, 3, "lab2");
	r = post(s.port, CT_NDJSON, 0, b.p, b.len, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(sink_stop(&s), 0);
	ck_assert_uint_eq(stored_lines(dir), 5);
	seg_buf_free(&b);
}
END_TEST

START_TEST(test_drop_connection)
{
	const char *const args[] = {"--drop-connection-rate", "1", NULL};
	const char *dir = tmpdir("sink-drop");
	sink_proc s = sink_start(dir, args);
	http_res r = post(s.port, CT_NDJSON, 0, GOOD, strlen(GOOD), NULL);
	json_t *t;

	ck_assert_msg(r.rc == CURLE_GOT_NOTHING || r.rc == CURLE_RECV_ERROR ||
			      r.rc == CURLE_SEND_ERROR,
		      "curl: %s, status %ld", curl_easy_strerror(r.rc), r.status);
	ck_assert_int_eq(sink_stop(&s), 0);
	ck_assert_uint_eq(stored_lines(dir), 0);
	t = read_tally(dir);
	ck_assert_int_eq(tally_int(t, "dropped_connections"), 1);
	json_decref(t);
}
END_TEST

START_TEST(test_delay)
{
	const char *const args[] = {"--delay-ms", "300", NULL};
	const char *dir = tmpdir("sink-delay");
	sink_proc s = sink_start(dir, args);
	http_res r = post(s.port, CT_NDJSON, 0, GOOD, strlen(GOOD), NULL);

	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(r.seconds >= 0.3, "answered after %.3f s", r.seconds);
	ck_assert_int_eq(sink_stop(&s), 0);
}
END_TEST

/* A long delay does not hold up SIGTERM. */
START_TEST(test_stop_during_delay)
{
	const char *const args[] = {"--delay-ms", "600000", NULL};
	const char *dir = tmpdir("sink-stop");
	sink_proc s = sink_start(dir, args);
	pid_t kid = fork();
	double t0;

	ck_assert_int_ge(kid, 0);
	if (kid == 0) {
		post(s.port, CT_NDJSON, 0, GOOD, strlen(GOOD), NULL);
		_exit(0);
	}
	usleep(300 * 1000);
	t0 = now_s();
	ck_assert_int_eq(sink_stop(&s), 0);
	ck_assert_msg(now_s() - t0 < 5, "stop took %.1f s", now_s() - t0);
	if (wait_ms(kid, 10000) == -1) {
		kill(kid, SIGKILL);
		waitpid(kid, NULL, 0);
	}
}
END_TEST

START_TEST(test_once_exits)
{
	const char *const args[] = {"--once", "10", NULL};
	const char *dir = tmpdir("sink-once");
	sink_proc s = sink_start(dir, args);
	int st;

	send_ok(s.port, F_NDJSON, 0, "cam-1", 0, 6, 6, 0);
	send_ok(s.port, F_NDJSON, 0, "cam-1", 0, 12, 6, 6);
	st = wait_ms(s.pid, 10000);
	ck_assert_msg(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "sink did not exit");
	s.pid = 0;
	ck_assert_uint_eq(stored_lines(dir), 12);
}
END_TEST

/* ------------------------------------------------------------------------
 * Command line
 */

/* Run edgelog with args; exit code, stderr into err. */
static int run(const char *const *args, char *err, size_t errlen)
{
	const char *argv[32];
	char path[64];
	int n = 0, st, fd;
	pid_t pid;

	snprintf(path, sizeof(path), "/tmp/check_sink_err.%d", (int)getpid());
	argv[n++] = EDGELOG_BIN;
	while (*args && n < 31)
		argv[n++] = *args++;
	argv[n] = NULL;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 2);
		fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		execv(EDGELOG_BIN, (char *const *)argv);
		_exit(127);
	}
	st = wait_ms(pid, 10000);
	if (st == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	err[0] = '\0';
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		ssize_t r = read(fd, err, errlen - 1);
		err[r > 0 ? r : 0] = '\0';
		close(fd);
	}
	unlink(path);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_usage_errors)
{
	const char *dir = tmpdir("sink-usage");
	char err[8192];
	const char *const help[] = {"sink", "--help", NULL};
	const char *const wide[] = {"sink", "--listen", "0.0.0.0:0", "--out", dir, NULL};
	const char *const no_out[] = {"sink", "--listen", "127.0.0.1:0", NULL};
	const char *const bogus[] = {"sink", "--out", dir, "--bogus", NULL};
	const char *const rate[] = {"sink", "--out", dir, "--fail-rate", "2", NULL};
	const char *const status[] = {"sink", "--out", dir, "--fail-status", "99", NULL};
	const char *const port[] = {"sink", "--out", dir, "--listen", "127.0.0.1:70000", NULL};
	const char *const rule[] = {"sink", "--out", dir, "--reject-if", "label", NULL};
	const char *const value[] = {"sink", "--out", dir, "--delay-ms", NULL};

	ck_assert_int_eq(run(help, err, sizeof(err)), 0);
	ck_assert_int_eq(run(wide, err, sizeof(err)), 2);
	ck_assert_msg(strstr(err, "--any-address") && strstr(err, "loopback"), "%s", err);
	ck_assert_int_eq(run(no_out, err, sizeof(err)), 2);
	ck_assert_msg(strstr(err, "--out"), "%s", err);
	ck_assert_int_eq(run(bogus, err, sizeof(err)), 2);
	ck_assert_msg(strstr(err, "--bogus"), "%s", err);
	ck_assert_int_eq(run(rate, err, sizeof(err)), 2);
	ck_assert_msg(strstr(err, "--fail-rate"), "%s", err);
	ck_assert_int_eq(run(status, err, sizeof(err)), 2);
	ck_assert_msg(strstr(err, "--fail-status"), "%s", err);
	ck_assert_int_eq(run(port, err, sizeof(err)), 2);
	ck_assert_msg(strstr(err, "--listen"), "%s", err);
	ck_assert_int_eq(run(rule, err, sizeof(err)), 2);
	ck_assert_msg(strstr(err, "--reject-if"), "%s", err);
	ck_assert_int_eq(run(value, err, sizeof(err)), 2);
	ck_assert_msg(strstr(err, "--delay-ms"), "%s", err);
}
END_TEST

/* One sink per directory. */
START_TEST(test_second_sink_same_dir_refused)
{
	const char *dir = tmpdir("sink-lock");
	sink_proc s = sink_start(dir, NULL);
	const char *const again[] = {"sink", "--listen", "127.0.0.1:0", "--out", dir, NULL};
	char err[4096];

	ck_assert_int_eq(run(again, err, sizeof(err)), 1);
	ck_assert_msg(strstr(err, "another sink"), "%s", err);
	ck_assert_int_eq(sink_stop(&s), 0);
}
END_TEST

static Suite *sink_suite(void)
{
	Suite *s;
	TCase *tc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	atexit(curl_global_cleanup);
	s = suite_create("sink");

	tc = tcase_create("validator");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_json_validator_cases);
	tcase_add_test(tc, test_json_validator_agrees_with_jansson);
	tcase_add_test(tc, test_json_minify);
	suite_add_tcase(s, tc);

	tc = tcase_create("formats");
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_formats_store_the_same_records);
	tcase_add_test(tc, test_stored_lines_are_the_records);
	tcase_add_test(tc, test_empty_batch_and_whitespace);
	tcase_add_test(tc, test_pretty_json_stored_compact);
	tcase_add_test(tc, test_unusual_records);
	suite_add_tcase(s, tc);

	tc = tcase_create("dedupe");
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_duplicates_not_stored_twice);
	tcase_add_test(tc, test_dedupe_survives_restart);
	tcase_add_test(tc, test_dedupe_many_records);
	tcase_add_test(tc, test_concurrent_clients_store_once);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostile");
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_malformed_bodies_rejected_whole);
	tcase_add_test(tc, test_get_is_405);
	tcase_add_test(tc, test_gzip_bomb_413);
	tcase_add_test(tc, test_chunked_over_cap_413);
	tcase_add_test(tc, test_parallel_gzip_bombs_bounded);
	tcase_add_test(tc, test_memory_budget_503);
	tcase_add_test(tc, test_idle_clients_timed_out);
	tcase_add_test(tc, test_max_body);
	suite_add_tcase(s, tc);

	tc = tcase_create("faults");
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_fail_status_retry_after);
	tcase_add_test(tc, test_retry_after_date);
	tcase_add_test(tc, test_retry_after_date_far);
	tcase_add_test(tc, test_fail_first_then_normal);
	tcase_add_test(tc, test_fail_rate_with_retries);
	tcase_add_test(tc, test_reject_if);
	tcase_add_test(tc, test_reject_if_dotted_path);
	tcase_add_test(tc, test_drop_connection);
	tcase_add_test(tc, test_delay);
	tcase_add_test(tc, test_stop_during_delay);
	tcase_add_test(tc, test_once_exits);
	suite_add_tcase(s, tc);

	tc = tcase_create("cli");
	tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_usage_errors);
	tcase_add_test(tc, test_second_sink_same_dir_refused);
	suite_add_tcase(s, tc);
	return s;
}

TU_CHECK_MAIN(sink_suite)
