/*
 * eng_config.c - defaults, environment, validation, error strings.
 *
 * Every invalid value is an error naming the variable or field; nothing is
 * silently replaced by a default.
 *
 * Offers: edgelog_config_init, edgelog_config_from_env, edgelog_strerror,
 * edgelog_errmsg, edgelog_version; (eng_internal.h) eng_conf_resolve,
 * eng_conf_free, eng_tls_error, eng_tls_set, eng_set_error, eng_set_msg,
 * eng_log. Calls no other engine file.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eng_internal.h"

static _Thread_local char tls_msg[512];

const char *edgelog_version(void)
{
	return EDGELOG_VERSION_STRING;
}

const char *edgelog_strerror(int code)
{
	switch (code) {
	case EDGELOG_OK:
		return "EDGELOG_OK: success";
	case EDGELOG_EOF:
		return "EDGELOG_EOF: no more records";
	case EDGELOG_EINVAL:
		return "EDGELOG_EINVAL: invalid argument or record";
	case EDGELOG_ECONFIG:
		return "EDGELOG_ECONFIG: invalid configuration";
	case EDGELOG_EIO:
		return "EDGELOG_EIO: input/output error";
	case EDGELOG_ENOSPC:
		return "EDGELOG_ENOSPC: no space left on device";
	case EDGELOG_EFULL:
		return "EDGELOG_EFULL: size cap reached (full_policy=reject)";
	case EDGELOG_ELOCKED:
		return "EDGELOG_ELOCKED: directory locked by another process";
	case EDGELOG_ECORRUPT:
		return "EDGELOG_ECORRUPT: damaged data";
	case EDGELOG_EVERSION:
		return "EDGELOG_EVERSION: written by a newer on-disk format";
	case EDGELOG_ENOMEM:
		return "EDGELOG_ENOMEM: out of memory";
	case EDGELOG_ETOOBIG:
		return "EDGELOG_ETOOBIG: record too large";
	case EDGELOG_ENOTFOUND:
		return "EDGELOG_ENOTFOUND: no such file or directory";
	case EDGELOG_EPERM:
		return "EDGELOG_EPERM: permission denied or read-only";
	case EDGELOG_ESTATE:
		return "EDGELOG_ESTATE: call not valid in this state";
	case EDGELOG_ENET:
		return "EDGELOG_ENET: upload failed";
	case EDGELOG_ETIMEDOUT:
		return "EDGELOG_ETIMEDOUT: timed out";
	case EDGELOG_ERANGE:
		return "EDGELOG_ERANGE: text larger than the buffer given";
	case EDGELOG_ENOTSUP:
		return "EDGELOG_ENOTSUP: not built into this library";
	default:
		return "EDGELOG_E?: unknown error code";
	}
}

void eng_tls_set(const char *msg)
{
	snprintf(tls_msg, sizeof(tls_msg), "%s", msg);
}

int eng_tls_error(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tls_msg, sizeof(tls_msg), fmt, ap);
	va_end(ap);
	return code;
}

const char *edgelog_errmsg(const edgelog *log)
{
	/* The engine's threads (worker, preparer) record errors on the handle
	 * too: the caller gets a copy taken under the lock, in storage of its
	 * own thread, valid until its next call here. */
	static _Thread_local char copy[sizeof(((edgelog *)0)->errmsg)];
	pthread_mutex_t *mu;

	if (!log)
		return tls_msg;
	mu = (pthread_mutex_t *)&log->mu;
	pthread_mutex_lock(mu);
	memcpy(copy, log->errmsg, sizeof(copy));
	pthread_mutex_unlock(mu);
	copy[sizeof(copy) - 1] = '\0';
	return copy;
}

int eng_set_error(edgelog *log, int code, const seg_err *e)
{
	snprintf(log->errmsg, sizeof(log->errmsg), "%s", e->msg);
	log->errmsg_at = log->vfs->now_ms(log->vfs) / 1000;
	return code;
}

int eng_set_msg(edgelog *log, int code, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&log->mu);
	va_start(ap, fmt);
	vsnprintf(log->errmsg, sizeof(log->errmsg), fmt, ap);
	log->errmsg_at = log->vfs->now_ms(log->vfs) / 1000;
	va_end(ap);
	pthread_mutex_unlock(&log->mu);
	return code;
}

void eng_log(const eng_conf *c, int level, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c && c->log_fn)
		c->log_fn(c->log_payload, level, msg);
	else if (level <= EDGELOG_LOG_WARN)
		fprintf(stderr, "edgelog: %s\n", msg);
}

void edgelog_config_init(edgelog_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->version = EDGELOG_CONFIG_VERSION;
}

/* --- environment ------------------------------------------------------- */

/* Offset of the first byte that may not appear in an HTTP header value or
 * a URL (a control character, DEL; in a URL also a space), or -1. A CR or
 * LF in a value that reaches a header would add headers of its own. */
static long bad_header_byte(const char *s, int url)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f || (url && *p == ' '))
			return (long)(p - (const unsigned char *)s);
	return -1;
}

/* Copy s into the config's own storage. */
/*
 * The strings edgelog_config_from_env sets. The config struct borrows its
 * strings (its owner allocates it, often on the stack, and never frees
 * it), so the copies live here, for the life of the process: one copy per
 * distinct value (interned), so the memory is bounded by the values the
 * environment held, however often a config is read from it. Copies, not
 * getenv's pointers: a later setenv must not change or free a config's
 * strings.
 */
#define KEEP_MAX 8191 /* longest value taken */

typedef struct kept {
	struct kept *next;
	char s[];
} kept;

static kept *kept_list;
static pthread_mutex_t kept_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *keep(edgelog_config *cfg, const char *var, const char *s, int *rc)
{
	size_t n = strlen(s) + 1;
	kept *k;

	(void)cfg;
	if (n - 1 > KEEP_MAX) {
		*rc = eng_tls_error(EDGELOG_ECONFIG, "%s: value too long (%zu bytes)", var, n - 1);
		return NULL;
	}
	pthread_mutex_lock(&kept_mu);
	for (k = kept_list; k; k = k->next)
		if (!strcmp(k->s, s))
			break;
	if (!k && (k = malloc(sizeof(*k) + n))) {
		memcpy(k->s, s, n);
		k->next = kept_list;
		kept_list = k;
	}
	pthread_mutex_unlock(&kept_mu);
	if (!k) {
		*rc = eng_tls_error(EDGELOG_ENOMEM, "%s: out of memory", var);
		return NULL;
	}
	return k->s;
}

/* First set variable of a pair (edgelog's own name wins). */
static const char *env2(const char *a, const char *b, const char **name)
{
	const char *v = getenv(a);
	*name = a;
	if (!v && b) {
		v = getenv(b);
		*name = b;
	}
	return v;
}

static int parse_u64(const char *var, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!*s || !isdigit((unsigned char)*s))
		goto bad;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		goto bad;
	*out = v;
	return 0;
bad:
	return eng_tls_error(EDGELOG_ECONFIG, "%s: '%s' is not a whole number from %llu to %llu",
			     var, s, (unsigned long long)lo, (unsigned long long)hi);
}

static int parse_u32(const char *var, const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	uint64_t v = 0; /* set on success; gcc -O3 cannot tell */
	int rc = parse_u64(var, s, lo, hi, &v);
	if (!rc)
		*out = (uint32_t)v;
	return rc;
}

static int parse_enum(const char *var, const char *s, const char *const *names, int *out)
{
	char list[128] = "";
	int i;

	for (i = 0; names[i]; i++)
		if (!strcmp(s, names[i])) {
			*out = i + 1;
			return 0;
		}
	for (i = 0; names[i]; i++) {
		strcat(list, i ? ", " : "");
		strcat(list, names[i]);
	}
	return eng_tls_error(EDGELOG_ECONFIG, "%s: '%s' is not one of %s", var, s, list);
}

static const char *const sync_names[] = {"always", "interval", "none", NULL};
static const char *const full_names[] = {"drop_oldest", "reject", NULL};
static const char *const format_names[] = {"ndjson", "json", "msgpack", NULL};
static const char *const comp_names[] = {"gzip", "none", NULL};
static const char *const data_names[] = {"object", "string", NULL};
static const char *const reuse_names[] = {"on", "off", NULL};

/* BUFFER_DB_PATH may name the Python client's SQLite file: use the
 * directory beside it plus the file's stem.
 *
 * The one file operation outside the I/O seam, on purpose: this runs in
 * the public edgelog_config_from_env(cfg), which has no vfs to use (it
 * precedes any handle, and its signature is a public contract), and the
 * seam's stat reports sizes, not whether a path is a regular file. The
 * stat only picks one of two spellings of the directory's name; it reads
 * and writes no data, and edgelog_open then works on the result through
 * the seam. */
static int db_path_dir(edgelog_config *cfg, const char *v, const char **out)
{
	static int said;
	const char *base = strrchr(v, '/');
	const char *dot;
	struct stat st;
	char buf[4096];
	int rc = 0, is_file;

	base = base ? base + 1 : v;
	dot = strrchr(base, '.');
	is_file = (stat(v, &st) == 0 && S_ISREG(st.st_mode)) ||
		  (dot && dot != base &&
		   (!strcmp(dot, ".db") || !strcmp(dot, ".sqlite") || !strcmp(dot, ".sqlite3") ||
		    !strcmp(dot, ".db3")));
	if (!is_file) {
		*out = keep(cfg, "BUFFER_DB_PATH", v, &rc);
		return rc;
	}
	if ((size_t)(dot && dot != base ? dot - v : (ptrdiff_t)strlen(v)) + 16 >= sizeof(buf))
		return eng_tls_error(EDGELOG_ECONFIG, "BUFFER_DB_PATH: path too long");
	if (dot && dot != base) {
		memcpy(buf, v, (size_t)(dot - v));
		buf[dot - v] = '\0';
	} else {
		/* A file with no extension: its stem is its own name, so the
		 * directory gets a suffix to sit beside it. */
		snprintf(buf, sizeof(buf), "%s.edgelog", v);
	}
	*out = keep(cfg, "BUFFER_DB_PATH", buf, &rc);
	if (!rc && !said) {
		said = 1;
		fprintf(stderr, "edgelog: BUFFER_DB_PATH=%s names a file; using directory %s\n", v,
			buf);
	}
	return rc;
}

/* The whole-number settings: the one place their ranges are written, read
 * by edgelog_config_from_env (the variables) and eng_conf_resolve (the
 * fields). */
typedef struct u32_field {
	const char *field, *var, *alias;
	size_t off;
	uint32_t lo, hi;
} u32_field;

#define U32(field, var, alias, lo, hi)                                      \
	{                                                                   \
#field, var, alias, offsetof(edgelog_config, field), lo, hi \
	}
static const u32_field u32_fields[] = {
	U32(max_size_mb, "EDGELOG_MAX_SIZE_MB", "BUFFER_MAX_SIZE_MB", 1, 1u << 22),
	U32(retention_days, "EDGELOG_RETENTION_DAYS", "BUFFER_CLEANUP_DAYS", 1, 36500),
	U32(batch_size, "EDGELOG_BATCH_SIZE", NULL, 1, 100000),
	U32(batch_timeout_ms, "EDGELOG_BATCH_TIMEOUT_MS", NULL, 1, 86400000),
	U32(sync_interval_ms, "EDGELOG_SYNC_INTERVAL_MS", NULL, 1, 3600000),
	U32(retry_base_ms, "EDGELOG_RETRY_BASE_MS", NULL, 1, 3600000),
	U32(retry_max_ms, "EDGELOG_RETRY_MAX_MS", NULL, 1, 86400000),
	U32(http_timeout_ms, "EDGELOG_HTTP_TIMEOUT_MS", NULL, 1, 3600000),
	U32(close_grace_ms, "EDGELOG_CLOSE_GRACE_MS", NULL, 1, 3600000),
	U32(upload_max_records, "EDGELOG_UPLOAD_MAX_RECORDS", NULL, 1, 1000000),
	U32(upload_max_kb, "EDGELOG_UPLOAD_MAX_KB", NULL, 1, 65536),
	U32(segment_bytes, "EDGELOG_SEGMENT_BYTES", NULL, 65536, ENG_SEGMENT_BYTES_MAX),
	U32(segment_max_age_s, "EDGELOG_SEGMENT_MAX_AGE_S", NULL, 1, 86400 * 24),
	U32(alert_size_pct, "EDGELOG_ALERT_SIZE_PCT", NULL, 1, 100),
	U32(status_interval_ms, "EDGELOG_STATUS_INTERVAL_MS", NULL, 100, 3600000),
	U32(poison_tries, "EDGELOG_POISON_TRIES", NULL, 1, 1000),
};
#undef U32

int edgelog_config_from_env(edgelog_config *cfg)
{
	const char *v, *name;
	size_t i;
	int rc = 0, k;

	if (!cfg)
		return eng_tls_error(EDGELOG_EINVAL, "edgelog_config_from_env: cfg is NULL");
	if ((v = env2("EDGELOG_DIR", NULL, &name))) {
		if (!*v)
			return eng_tls_error(EDGELOG_ECONFIG, "EDGELOG_DIR: empty");
		cfg->dir = keep(cfg, name, v, &rc);
	} else if ((v = getenv("BUFFER_DB_PATH"))) {
		if (!*v)
			return eng_tls_error(EDGELOG_ECONFIG, "BUFFER_DB_PATH: empty");
		rc = db_path_dir(cfg, v, &cfg->dir);
	}
	if (rc)
		return rc;
	if ((v = env2("EDGELOG_ENDPOINT", "CLOUD_LOGGING_ENDPOINT", &name))) {
		if (bad_header_byte(v, 1) >= 0)
			return eng_tls_error(EDGELOG_ECONFIG,
					     "%s: control character or space at byte %ld", name,
					     bad_header_byte(v, 1));
		if (*v && strncmp(v, "http://", 7) && strncmp(v, "https://", 8))
			return eng_tls_error(EDGELOG_ECONFIG,
					     "%s: '%s' is not an http:// or https:// URL", name, v);
		cfg->endpoint = *v ? keep(cfg, name, v, &rc) : NULL;
	}
	if (!rc && (v = env2("EDGELOG_DEVICE_ID", "EDGE_DEVICE_ID", &name))) {
		if (!*v)
			return eng_tls_error(EDGELOG_ECONFIG, "%s: empty", name);
		cfg->device_id = keep(cfg, name, v, &rc);
	}
	if (rc)
		return rc;
	for (i = 0; i < sizeof(u32_fields) / sizeof(u32_fields[0]); i++) {
		const u32_field *f = &u32_fields[i];
		if ((v = env2(f->var, f->alias, &name)) &&
		    (rc = parse_u32(name, v, f->lo, f->hi, (uint32_t *)((char *)cfg + f->off))))
			return rc;
	}
	if ((v = getenv("EDGELOG_ALERT_PENDING")) &&
	    (rc = parse_u64("EDGELOG_ALERT_PENDING", v, 1, UINT64_MAX, &cfg->alert_pending)))
		return rc;
	if ((v = getenv("EDGELOG_ALERT_FAILED")) &&
	    (rc = parse_u64("EDGELOG_ALERT_FAILED", v, 1, UINT64_MAX, &cfg->alert_failed)))
		return rc;
#define ENUM(var, names, field, type)                     \
	if ((v = getenv(var))) {                          \
		if ((rc = parse_enum(var, v, names, &k))) \
			return rc;                        \
		cfg->field = (type)k;                     \
	}
	ENUM("EDGELOG_SYNC", sync_names, sync, edgelog_sync_mode);
	ENUM("EDGELOG_FULL_POLICY", full_names, full_policy, edgelog_full_policy);
	ENUM("EDGELOG_FORMAT", format_names, format, edgelog_format);
	ENUM("EDGELOG_COMPRESSION", comp_names, compression, edgelog_compression);
	ENUM("EDGELOG_DATA_ENCODING", data_names, data_encoding, edgelog_data_encoding);
	ENUM("EDGELOG_SEGMENT_REUSE", reuse_names, segment_reuse, edgelog_segment_reuse);
#undef ENUM
#define STR(var, field)                                                          \
	if ((v = getenv(var))) {                                                 \
		if (!*v)                                                         \
			return eng_tls_error(EDGELOG_ECONFIG, "%s: empty", var); \
		if (!(cfg->field = keep(cfg, var, v, &rc)))                      \
			return rc;                                               \
	}
	/* The token goes into a header: never a CR, LF or other control
	 * character (the message names the variable, never the value). */
	if ((v = getenv("EDGELOG_AUTH_TOKEN")) && bad_header_byte(v, 0) >= 0)
		return eng_tls_error(
			EDGELOG_ECONFIG,
			"EDGELOG_AUTH_TOKEN: control character at byte %ld (not allowed "
			"in an HTTP header)",
			bad_header_byte(v, 0));
	STR("EDGELOG_AUTH_TOKEN", auth_token);
	STR("EDGELOG_AUTH_TOKEN_FILE", auth_token_file);
	STR("EDGELOG_CA_FILE", ca_file);
	STR("EDGELOG_CLIENT_CERT", client_cert);
	STR("EDGELOG_CLIENT_KEY", client_key);
	STR("EDGELOG_METRICS_FILE", metrics_file);
#undef STR
	return 0;
}

/* --- validation ---------------------------------------------------------- */

/* The bearer token from a file: its first line, surrounding white space
 * removed. The message names the file, never its content. Read through the
 * I/O seam like every other file (the engine's vfs exists before its
 * configuration is resolved). */
static int read_token(const seg_vfs *v, const char *path, char **out, seg_err *e)
{
	char buf[4096];
	size_t n = 0, i = 0;
	ssize_t r = 0;
	int fd = v->open(v, path, O_RDONLY, 0);

	if (fd < 0)
		return seg_fail(e, EDGELOG_ECONFIG, "auth_token_file %s: %s", path, strerror(-fd));
	while (n < sizeof(buf) - 1 && (r = v->pread(v, fd, buf + n, sizeof(buf) - 1 - n, n)) > 0)
		n += (size_t)r;
	v->close(v, fd);
	if (r < 0) {
		memset(buf, 0, sizeof(buf));
		return seg_fail(e, EDGELOG_ECONFIG, "auth_token_file %s: %s", path,
				strerror((int)-r));
	}
	buf[n] = '\0';
	while (i < n && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
		i++;
	n = i;
	while (buf[n] && buf[n] != '\n' && buf[n] != '\r')
		n++;
	while (n > i && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	buf[n] = '\0';
	if (n == i) {
		memset(buf, 0, sizeof(buf));
		return seg_fail(e, EDGELOG_ECONFIG, "auth_token_file %s: empty", path);
	}
	if (bad_header_byte(buf + i, 0) >= 0) {
		long bad = bad_header_byte(buf + i, 0);
		memset(buf, 0, sizeof(buf));
		return seg_fail(e, EDGELOG_ECONFIG,
				"auth_token_file %s: control character at byte %ld of the token "
				"(not allowed in an HTTP header)",
				path, bad);
	}
	*out = strdup(buf + i);
	memset(buf, 0, sizeof(buf));
	return *out ? 0 : seg_fail(e, EDGELOG_ENOMEM, "out of memory");
}

static char *dup_or(const char *s, const char *dflt)
{
	return strdup(s ? s : dflt);
}

int eng_conf_resolve(eng_conf *c, const edgelog_config *cfg, const seg_vfs *v, seg_err *e)
{
	char host[128];
	const char *p;
	size_t i;

	memset(c, 0, sizeof(*c));
	if (!cfg)
		return seg_fail(e, EDGELOG_EINVAL, "config is NULL");
	/* Version 1 had 8 KiB of private string storage after poison_tries;
	 * every field before it is the same: read as version 2. Version 3
	 * added segment_reuse after poison_tries (versions 1 and 2: default). */
	if (cfg->version != EDGELOG_CONFIG_VERSION && cfg->version != 1 && cfg->version != 2)
		return seg_fail(e, EDGELOG_ECONFIG,
				"config field version: %u (call edgelog_config_init; this library "
				"knows versions 1 to %u)",
				cfg->version, EDGELOG_CONFIG_VERSION);
	if (cfg->version >= 3 && (unsigned)cfg->segment_reuse > EDGELOG_REUSE_OFF)
		return seg_fail(e, EDGELOG_ECONFIG,
				"config field segment_reuse: %d is not on (1) or off (2)",
				(int)cfg->segment_reuse);
	if ((unsigned)cfg->sync > EDGELOG_SYNC_NONE)
		return seg_fail(e, EDGELOG_ECONFIG, "config field sync: %d is not a sync mode",
				(int)cfg->sync);
	if ((unsigned)cfg->full_policy > EDGELOG_FULL_REJECT)
		return seg_fail(e, EDGELOG_ECONFIG, "config field full_policy: %d is not a policy",
				(int)cfg->full_policy);
	if ((unsigned)cfg->format > EDGELOG_FORMAT_MSGPACK)
		return seg_fail(e, EDGELOG_ECONFIG, "config field format: %d is not a format",
				(int)cfg->format);
	if ((unsigned)cfg->compression > EDGELOG_COMPRESSION_NONE)
		return seg_fail(e, EDGELOG_ECONFIG,
				"config field compression: %d is not a compression",
				(int)cfg->compression);
	if (cfg->segment_bytes > ENG_SEGMENT_BYTES_MAX && sizeof(void *) < 8)
		return seg_fail(e, EDGELOG_ECONFIG,
				"config field segment_bytes: %u is more than %u on a 32-bit target "
				"(an open log maps two segments and each reader one more)",
				cfg->segment_bytes, (unsigned)ENG_SEGMENT_BYTES_MAX);
	for (i = 0; i < sizeof(u32_fields) / sizeof(u32_fields[0]); i++) {
		const u32_field *f = &u32_fields[i];
		uint32_t x = *(const uint32_t *)((const char *)cfg + f->off);
		if (x && (x < f->lo || x > f->hi))
			return seg_fail(e, EDGELOG_ECONFIG,
					"config field %s: %u is not from %u to %u", f->field, x,
					f->lo, f->hi);
	}
	if ((unsigned)cfg->data_encoding > EDGELOG_DATA_STRING)
		return seg_fail(e, EDGELOG_ECONFIG,
				"config field data_encoding: %d is not a data encoding",
				(int)cfg->data_encoding);
	if (cfg->dir && !*cfg->dir)
		return seg_fail(e, EDGELOG_ECONFIG, "config field dir: empty");
	if (cfg->endpoint && bad_header_byte(cfg->endpoint, 1) >= 0)
		return seg_fail(e, EDGELOG_ECONFIG,
				"config field endpoint: control character or space at byte %ld",
				bad_header_byte(cfg->endpoint, 1));
	if (cfg->auth_token && bad_header_byte(cfg->auth_token, 0) >= 0)
		return seg_fail(e, EDGELOG_ECONFIG,
				"config field auth_token: control character at byte %ld (not "
				"allowed in an HTTP header)",
				bad_header_byte(cfg->auth_token, 0));
	if (cfg->endpoint && *cfg->endpoint && strncmp(cfg->endpoint, "http://", 7) &&
	    strncmp(cfg->endpoint, "https://", 8))
		return seg_fail(e, EDGELOG_ECONFIG,
				"config field endpoint: '%s' is not an http:// or https:// URL",
				cfg->endpoint);
	if (cfg->device_id) {
		if (!*cfg->device_id ||
		    strlen(cfg->device_id) >= sizeof(((edgelog_status *)0)->device_id))
			return seg_fail(e, EDGELOG_ECONFIG,
					"config field device_id: must be 1 to 127 bytes");
		for (p = cfg->device_id; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\' || *p == 0x7f)
				return seg_fail(e, EDGELOG_ECONFIG,
						"config field device_id: control character, quote "
						"or backslash at byte %td",
						p - cfg->device_id);
	}
	if (cfg->retry_base_ms && cfg->retry_max_ms && cfg->retry_base_ms > cfg->retry_max_ms)
		return seg_fail(e, EDGELOG_ECONFIG,
				"config fields retry_base_ms (%u) > retry_max_ms (%u)",
				cfg->retry_base_ms, cfg->retry_max_ms);

	if (gethostname(host, sizeof(host)) != 0 || !*host)
		strcpy(host, "unknown");
	host[sizeof(host) - 1] = '\0';
	c->dir = dup_or(cfg->dir, "./edgelog-data");
	c->endpoint = cfg->endpoint && *cfg->endpoint ? strdup(cfg->endpoint) : NULL;
	c->device_id = dup_or(cfg->device_id, host);
	c->device_id_given = cfg->device_id != NULL;
	if (!c->dir || !c->device_id || (cfg->endpoint && *cfg->endpoint && !c->endpoint)) {
		eng_conf_free(c);
		return seg_fail(e, EDGELOG_ENOMEM, "out of memory");
	}
	c->max_size_bytes = (uint64_t)(cfg->max_size_mb ? cfg->max_size_mb : 500) << 20;
	c->retention_days = cfg->retention_days ? cfg->retention_days : 7;
	c->batch_size = cfg->batch_size ? cfg->batch_size : 32;
	c->batch_timeout_ms = cfg->batch_timeout_ms ? cfg->batch_timeout_ms : 10000;
	c->sync = cfg->sync ? cfg->sync : EDGELOG_SYNC_INTERVAL;
	c->sync_interval_ms = cfg->sync_interval_ms ? cfg->sync_interval_ms : 100;
	c->full_policy = cfg->full_policy ? cfg->full_policy : EDGELOG_FULL_DROP_OLDEST;
	c->format = cfg->format ? cfg->format : EDGELOG_FORMAT_NDJSON;
	c->compression = cfg->compression ? cfg->compression : EDGELOG_COMPRESSION_GZIP;
	c->retry_base_ms = cfg->retry_base_ms ? cfg->retry_base_ms : 500;
	c->retry_max_ms = cfg->retry_max_ms ? cfg->retry_max_ms : 60000;
	c->http_timeout_ms = cfg->http_timeout_ms ? cfg->http_timeout_ms : 30000;
	c->segment_bytes = cfg->segment_bytes ? cfg->segment_bytes : 4u << 20;
	/* The cap and the segment size are checked together: retention keeps
	 * a segment of headroom and never removes the active one, so a cap
	 * of fewer than ENG_MIN_SEGMENTS segments cannot make room by
	 * dropping and would refuse records under drop_oldest. The default
	 * segment size shrinks to fit (64 KiB steps); a size set on purpose
	 * that does not fit is an error naming both. */
	if (c->max_size_bytes / c->segment_bytes < ENG_MIN_SEGMENTS) {
		uint64_t fit = c->max_size_bytes / ENG_MIN_SEGMENTS / 65536 * 65536;
		if (cfg->segment_bytes || fit < 65536) {
			uint64_t mb = c->max_size_bytes >> 20;
			eng_conf_free(c);
			return seg_fail(
				e, EDGELOG_ECONFIG,
				"config fields max_size_mb (EDGELOG_MAX_SIZE_MB, %llu) and "
				"segment_bytes (EDGELOG_SEGMENT_BYTES, %u): the cap must hold "
				"at least %d segments; lower segment_bytes to at most %llu or "
				"raise max_size_mb to at least %llu",
				(unsigned long long)mb,
				cfg->segment_bytes ? cfg->segment_bytes : c->segment_bytes,
				ENG_MIN_SEGMENTS, (unsigned long long)fit,
				(unsigned long long)(((uint64_t)c->segment_bytes * ENG_MIN_SEGMENTS +
						      (1u << 20) - 1) >>
						     20));
		}
		c->segment_bytes = (uint32_t)fit;
	}
	c->segment_max_age_s = cfg->segment_max_age_s ? cfg->segment_max_age_s : 3600;
	c->alert_pending = cfg->alert_pending ? cfg->alert_pending : 1000;
	c->alert_failed = cfg->alert_failed ? cfg->alert_failed : 100;
	c->alert_size_pct = cfg->alert_size_pct ? cfg->alert_size_pct : 90;
	c->close_grace_ms = cfg->close_grace_ms ? cfg->close_grace_ms : 5000;
	c->upload_max_records = cfg->upload_max_records ? cfg->upload_max_records : 2000;
	c->upload_max_kb = cfg->upload_max_kb ? cfg->upload_max_kb : 1024;
	c->data_encoding = cfg->data_encoding ? cfg->data_encoding : EDGELOG_DATA_OBJECT;
	c->poison_tries = cfg->poison_tries ? cfg->poison_tries : 5;
	c->segment_reuse = cfg->version < 3 || cfg->segment_reuse != EDGELOG_REUSE_OFF;
	if (c->retry_base_ms > c->retry_max_ms) {
		eng_conf_free(c);
		return seg_fail(e, EDGELOG_ECONFIG,
				"config fields retry_base_ms (%u) > retry_max_ms (%u)",
				c->retry_base_ms, c->retry_max_ms);
	}
	if (cfg->auth_token && cfg->auth_token_file) {
		eng_conf_free(c);
		return seg_fail(e, EDGELOG_ECONFIG,
				"config fields auth_token and auth_token_file: set one, not both");
	}
	if (cfg->auth_token) {
		c->auth_token = strdup(cfg->auth_token);
	} else if (cfg->auth_token_file) {
		int rc = read_token(v, cfg->auth_token_file, &c->auth_token, e);
		if (rc) {
			eng_conf_free(c);
			return rc;
		}
	}
	c->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
	c->client_cert = cfg->client_cert ? strdup(cfg->client_cert) : NULL;
	c->client_key = cfg->client_key ? strdup(cfg->client_key) : NULL;
	c->log_fn = cfg->log_fn;
	c->log_payload = cfg->log_payload;
	c->alert_fn = cfg->alert_fn;
	c->alert_payload = cfg->alert_payload;
	c->status_interval_ms = cfg->status_interval_ms ? cfg->status_interval_ms : 2000;
	if (cfg->metrics_file && *cfg->metrics_file &&
	    !(c->metrics_file = strdup(cfg->metrics_file))) {
		eng_conf_free(c);
		return seg_fail(e, EDGELOG_ENOMEM, "out of memory");
	}
	return 0;
}

void eng_conf_free(eng_conf *c)
{
	if (c->auth_token) /* do not leave the secret in freed memory */
		memset(c->auth_token, 0, strlen(c->auth_token));
	free(c->auth_token);
	free(c->ca_file);
	free(c->client_cert);
	free(c->client_key);
	free(c->dir);
	free(c->endpoint);
	free(c->device_id);
	free(c->metrics_file);
	memset(c, 0, sizeof(*c));
}
