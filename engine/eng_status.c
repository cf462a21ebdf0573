/*
 * eng_status.c - status as JSON and as Prometheus text, alerts, the
 * snapshot a running engine leaves in its directory, and the status of a
 * directory that no engine holds.
 *
 * One table of fields drives the JSON writer, the JSON reader (of the
 * snapshot) and the metrics, so the three never disagree on a name.
 *
 * Offers (eng_internal.h): eng_alert_bits, eng_alert_name,
 * eng_alert_message, eng_alerts_update, eng_status_json, eng_status_prom,
 * eng_status_source, eng_snapshot_due, eng_snapshot_write (state in
 * eng_snap); edgelog_status_dir and edgelog_export_stats. Below the
 * engine: a running engine hands it the status it computed
 * (edgelog_get_status); it never calls back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "eng_internal.h"
#include "seg.h"

#define SNAPSHOT_FILE "status.json"
/* An unchanged snapshot is rewritten this often; a reader takes a snapshot
 * as live for three times this (or three status intervals, if longer). */
#define SNAPSHOT_REFRESH_MS 30000

/* kind: 'u' uint64_t, 'i' int64_t, 'b' int (boolean), 's' char array.
 * prom: 'c' counter, 'g' gauge, 0 not a metric. */
typedef struct field {
	const char *name;
	size_t off;
	char kind, prom;
	const char *metric, *help;
} field;

#define F(n, k, p, m, h)                                    \
	{                                                   \
#n, offsetof(edgelog_status, n), k, p, m, h \
	}
static const field fields[] = {
	F(device_id, 's', 0, NULL, NULL),
	F(pending, 'u', 'g', "pending_records", "Records stored and not yet acknowledged."),
	F(sent, 'u', 'c', "sent_records_total", "Records acknowledged by the cloud."),
	F(failed, 'u', 'g', "failed_records",
	  "Dead letters in failed/ (refused permanently by the cloud)."),
	F(dropped, 'u', 'c', "dropped_records_total",
	  "Unacknowledged records removed by the size cap (full_policy=drop_oldest)."),
	F(expired, 'u', 'c', "expired_records_total",
	  "Unacknowledged records and dead letters removed by age retention."),
	F(corrupt, 'u', 'c', "corrupt_ranges_total", "Damaged ranges found and skipped."),
	F(size_bytes, 'u', 'g', "size_bytes", "Bytes the buffer directory uses."),
	F(max_size_bytes, 'u', 'g', "max_size_bytes", "The size cap (max_size_mb)."),
	F(segments, 'u', 'g', "segments", "Segment files, the active one included."),
	F(oldest_pending_age_s, 'u', 'g', "oldest_pending_age_seconds",
	  "Age of the oldest unacknowledged record."),
	F(is_connected, 'b', 'g', "connected", "1 if the last upload reached the cloud."),
	F(last_error, 's', 0, NULL, NULL),
	F(last_success_at, 'i', 'g', "last_success_timestamp_seconds",
	  "Unix time of the last acknowledgement (0: never)."),
	F(retry_in_s, 'u', 'g', "retry_in_seconds", "Seconds until the next upload attempt."),
	F(recovered, 'u', 'c', "recovered_records_total",
	  "Records delivered after an outage ended."),
	F(appended, 'u', 'c', "appended_records_total", "Records accepted by edgelog_append."),
	F(first_seq, 'u', 0, NULL, NULL),
	F(last_seq, 'u', 'g', "last_seq", "Newest sequence number handed out."),
	F(acked_seq, 'u', 'g', "acked_seq", "Every sequence number up to this is acknowledged."),
	F(durable_seq, 'u', 'g', "durable_seq", "Every sequence number up to this is synced."),
	F(torn_tails, 'u', 'c', "torn_tails_total", "Torn tails truncated at open."),
	F(torn_bytes, 'u', 'c', "torn_bytes_total", "Bytes removed by torn-tail truncation."),
	F(cursor_resets, 'u', 'c', "cursor_resets_total", "Cursor found bad and repaired."),
	F(sync_failures, 'u', 'c', "sync_failures_total",
	  "Failed fdatasync calls (segment sealed as suspect)."),
	F(requeued, 'u', 'c', "requeued_records_total", "Dead letters moved back into the log."),
	F(failed_bytes, 'u', 'g', "failed_bytes", "Bytes the dead letters use."),
	F(alert_pending, 'u', 0, NULL, NULL),
	F(alert_size_pct, 'u', 0, NULL, NULL),
	F(alert_failed, 'u', 0, NULL, NULL),
	F(upload_enabled, 'b', 'g', "upload_enabled", "1 if an endpoint is configured."),
	F(poisoned, 'u', 'c', "poisoned_records_total",
	  "Records dead-lettered as poison: 5xx answers in a row while the endpoint accepted "
	  "other records."),
	F(last_error_at, 'i', 'g', "last_error_timestamp_seconds",
	  "Unix time of the last error (0: none)."),
	F(running, 'b', 'g', "running", "1 while an engine runs on the directory."),
};
#undef F
#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

static const struct {
	unsigned bit;
	const char *name;
} alert_names[] = {
	{EDGELOG_ALERT_PENDING, "pending"},
	{EDGELOG_ALERT_SIZE, "size"},
	{EDGELOG_ALERT_FAILED, "failed"},
};
#define N_ALERTS (sizeof(alert_names) / sizeof(alert_names[0]))

/* ---- alerts ------------------------------------------------------------- */

unsigned eng_alert_bits(const edgelog_status *st)
{
	unsigned a = 0;

	if (st->pending > st->alert_pending)
		a |= EDGELOG_ALERT_PENDING;
	if (st->max_size_bytes && st->size_bytes * 100 > st->max_size_bytes * st->alert_size_pct)
		a |= EDGELOG_ALERT_SIZE;
	if (st->failed > st->alert_failed)
		a |= EDGELOG_ALERT_FAILED;
	return a;
}

const char *edgelog_alert_name(unsigned bit)
{
	size_t i;

	for (i = 0; i < N_ALERTS; i++)
		if (alert_names[i].bit == bit)
			return alert_names[i].name;
	return "unknown";
}

void edgelog_alert_message(const edgelog_status *st, unsigned bit, char *buf, size_t n)
{
	if (!buf || !n)
		return;
	if (!st) {
		snprintf(buf, n, "no status");
		return;
	}
	switch (bit) {
	case EDGELOG_ALERT_PENDING:
		snprintf(buf, n, "pending %llu > %llu", (unsigned long long)st->pending,
			 (unsigned long long)st->alert_pending);
		break;
	case EDGELOG_ALERT_SIZE:
		snprintf(buf, n, "size %llu bytes > %llu%% of the cap (%llu bytes)",
			 (unsigned long long)st->size_bytes, (unsigned long long)st->alert_size_pct,
			 (unsigned long long)st->max_size_bytes);
		break;
	case EDGELOG_ALERT_FAILED:
		snprintf(buf, n, "failed %llu > %llu", (unsigned long long)st->failed,
			 (unsigned long long)st->alert_failed);
		break;
	default:
		snprintf(buf, n, "unknown alert %u", bit);
	}
}

void eng_alerts_update(eng_snap *s, const eng_conf *c, const edgelog_status *st)
{
	unsigned now = st->alerts, was, changed;
	size_t i;

	if (!c->alert_fn)
		return;
	/* alert_mu orders the calls: a start is never reported after the
	 * clear that followed it. */
	pthread_mutex_lock(&s->alert_mu);
	was = s->alerts_reported;
	changed = now ^ was;
	s->alerts_reported = now;
	for (i = 0; i < N_ALERTS && changed; i++) {
		char msg[192];
		unsigned bit = alert_names[i].bit;
		if (!(changed & bit))
			continue;
		if (now & bit)
			edgelog_alert_message(st, bit, msg, sizeof(msg));
		else
			snprintf(msg, sizeof(msg), "%s back under its threshold",
				 alert_names[i].name);
		c->alert_fn(c->alert_payload, bit, !!(now & bit), msg);
	}
	pthread_mutex_unlock(&s->alert_mu);
}

/* ---- JSON --------------------------------------------------------------- */

static const void *at(const edgelog_status *st, const field *f)
{
	return (const char *)st + f->off;
}

void eng_status_json(const edgelog_status *st, const char *source, seg_buf *out)
{
	size_t i, k;
	int first = 1;

	seg_buf_puts(out, "{");
	if (source) {
		seg_buf_puts(out, "\"source\":");
		seg_json_string(out, source, strlen(source));
		first = 0;
	}
	for (i = 0; i < N_FIELDS; i++) {
		const field *f = &fields[i];
		const void *p = at(st, f);
		if (!first)
			seg_buf_puts(out, ",");
		first = 0;
		seg_json_string(out, f->name, strlen(f->name));
		seg_buf_puts(out, ":");
		switch (f->kind) {
		case 'u':
			seg_buf_u64(out, *(const uint64_t *)p, 0);
			break;
		case 'i':
			if (*(const int64_t *)p)
				seg_buf_i64(out, *(const int64_t *)p);
			else
				seg_buf_puts(out, "null");
			break;
		case 'b':
			seg_buf_puts(out, *(const int *)p ? "true" : "false");
			break;
		case 's':
			if (*(const char *)p)
				seg_json_string(out, p, strlen(p));
			else
				seg_buf_puts(out, "null");
			break;
		}
	}
	seg_buf_puts(out, ",\"alerts\":[");
	for (i = 0, k = 0; i < N_ALERTS; i++) {
		char msg[192];
		if (!(st->alerts & alert_names[i].bit))
			continue;
		edgelog_alert_message(st, alert_names[i].bit, msg, sizeof(msg));
		seg_buf_puts(out, k++ ? ",{\"alert\":" : "{\"alert\":");
		seg_json_string(out, alert_names[i].name, strlen(alert_names[i].name));
		seg_buf_puts(out, ",\"message\":");
		seg_json_string(out, msg, strlen(msg));
		seg_buf_puts(out, "}");
	}
	seg_buf_puts(out, "]}");
}

/* Fill *st from the text of a JSON object written by eng_status_json.
 * Unknown members are ignored, missing or mistyped ones stay zero. */
static void status_from_json(const char *text, size_t n, edgelog_status *st)
{
	size_t i, j;
	eng_jv v, a, el;
	int64_t x;

	for (i = 0; i < N_FIELDS; i++) {
		const field *f = &fields[i];
		void *p = (char *)st + f->off;
		if (eng_json_member(text, n, f->name, &v))
			continue;
		switch (f->kind) {
		case 'u':
			/* Counters above INT64_MAX are not ours to read back. */
			if (!eng_jv_int(&v, &x) && x >= 0)
				*(uint64_t *)p = (uint64_t)x;
			break;
		case 'i':
			if (!eng_jv_int(&v, &x))
				*(int64_t *)p = x;
			break;
		case 'b':
			*(int *)p = v.type == 't';
			break;
		case 's':
			eng_jv_str(&v, p,
				   f->off == offsetof(edgelog_status, device_id) ?
					   sizeof(st->device_id) :
					   sizeof(st->last_error));
			break;
		}
	}
	if (eng_json_member(text, n, "alerts", &a))
		return;
	for (i = 0; eng_json_element(&a, i, &el) == 0; i++) {
		char name[16];
		if (el.type != 'o' || eng_json_member(el.p, el.n, "alert", &v) ||
		    eng_jv_str(&v, name, sizeof(name)))
			continue;
		for (j = 0; j < N_ALERTS; j++)
			if (!strcmp(name, alert_names[j].name))
				st->alerts |= alert_names[j].bit;
	}
}

const char *eng_status_source(int live)
{
	return live > 0 ? "live" : live < 0 ? "stale" : "offline";
}

/* ---- Prometheus text ------------------------------------------------------ */

static void prom_label(seg_buf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			seg_buf_printf(out, "\\%c", *s);
		else if (*s == '\n')
			seg_buf_puts(out, "\\n");
		else
			seg_buf_put(out, s, 1);
	}
}

void eng_status_prom(const edgelog_status *st, seg_buf *out)
{
	size_t i;

	for (i = 0; i < N_FIELDS; i++) {
		const field *f = &fields[i];
		const void *p = at(st, f);
		if (!f->prom)
			continue;
		seg_buf_printf(
			out, "# HELP edgelog_%s %s\n# TYPE edgelog_%s %s\nedgelog_%s{device_id=\"",
			f->metric, f->help, f->metric, f->prom == 'c' ? "counter" : "gauge",
			f->metric);
		prom_label(out, st->device_id);
		seg_buf_puts(out, "\"} ");
		if (f->kind == 'u')
			seg_buf_u64(out, *(const uint64_t *)p, 0);
		else if (f->kind == 'i')
			seg_buf_i64(out, *(const int64_t *)p);
		else
			seg_buf_puts(out, *(const int *)p ? "1" : "0");
		seg_buf_puts(out, "\n");
	}
	seg_buf_puts(out, "# HELP edgelog_alert 1 while the alert is active.\n"
			  "# TYPE edgelog_alert gauge\n");
	for (i = 0; i < N_ALERTS; i++) {
		seg_buf_puts(out, "edgelog_alert{device_id=\"");
		prom_label(out, st->device_id);
		seg_buf_printf(out, "\",alert=\"%s\"} %d\n", alert_names[i].name,
			       !!(st->alerts & alert_names[i].bit));
	}
}

/* ---- the public calls ------------------------------------------------------ */

void edgelog_status_init(edgelog_status *st)
{
	if (!st)
		return;
	memset(st, 0, sizeof(*st));
	st->version = EDGELOG_STATUS_VERSION;
}

int eng_status_check(const edgelog_status *st)
{
	return st && st->version == EDGELOG_STATUS_VERSION ? 0 : -1;
}

/* b's text into out as edgelog_status_json documents; frees b. */
int eng_give_text(seg_buf *b, char *out, size_t cap, size_t *len)
{
	int rc = 0;

	if (b->oom) {
		seg_buf_free(b);
		return eng_tls_error(EDGELOG_ENOMEM, "out of memory");
	}
	if (len)
		*len = b->len;
	if (cap) {
		size_t k = b->len < cap ? b->len : cap - 1;
		if (!out) {
			seg_buf_free(b);
			return eng_tls_error(EDGELOG_EINVAL, "out is NULL, cap %zu", cap);
		}
		memcpy(out, b->p, k);
		out[k] = '\0';
	}
	if (b->len >= cap)
		rc = eng_tls_error(EDGELOG_ERANGE, "text of %zu bytes does not fit in %zu",
				   b->len + 1, cap);
	seg_buf_free(b);
	return rc;
}

static int bad_status(const edgelog_status *st, const char *fn)
{
	if (!st)
		return eng_tls_error(EDGELOG_EINVAL, "%s: st is NULL", fn);
	return eng_tls_error(EDGELOG_EINVAL,
			     "%s: st->version is %u (call edgelog_status_init; this library knows "
			     "version %u)",
			     fn, st->version, EDGELOG_STATUS_VERSION);
}

int edgelog_status_json(const edgelog_status *st, const char *source, char *out, size_t cap,
			size_t *len)
{
	seg_buf b = {0};

	if (eng_status_check(st))
		return bad_status(st, "edgelog_status_json");
	eng_status_json(st, source, &b);
	return eng_give_text(&b, out, cap, len);
}

int edgelog_status_prometheus(const edgelog_status *st, char *out, size_t cap, size_t *len)
{
	seg_buf b = {0};

	if (eng_status_check(st))
		return bad_status(st, "edgelog_status_prometheus");
	eng_status_prom(st, &b);
	return eng_give_text(&b, out, cap, len);
}

/* ---- files ---------------------------------------------------------------- */

int eng_snapshot_due(eng_snap *s, const eng_conf *c, int64_t now)
{
	int write = now >= s->next_snapshot_mono;

	if (!write && (!c->alert_fn || now < s->next_alert_mono))
		return 0;
	/* Alerts are looked at every second at least (edgelog_get_status
	 * reports them); the files are rewritten every status_interval_ms. */
	s->next_alert_mono =
		now + (c->status_interval_ms < 1000 ? (int64_t)c->status_interval_ms : 1000);
	if (!write)
		return ENG_SNAP_ALERTS;
	s->next_snapshot_mono = now + c->status_interval_ms;
	return ENG_SNAP_WRITE;
}

int eng_snapshot_write(eng_snap *s, const seg_vfs *v, const eng_conf *c, const edgelog_status *st,
		       int final)
{
	seg_buf b = {0};
	char path[4300];
	seg_err e;
	int64_t now = v->mono_ms(v);

	/* A final one has the same shape as a live one, but "stopped": a
	 * reader never takes it as live (no engine holds the lock), and its
	 * pid says who left it. */
	eng_status_json(st, final ? "stopped" : "live", &b);
	if (!final) {
		/* Unchanged figures are not rewritten more often than every
		 * SNAPSHOT_REFRESH_MS: an idle device should not wear its flash
		 * with a rename every two seconds. */
		if (!b.oom && s->last.len == b.len && !memcmp(s->last.p, b.p, b.len) &&
		    now < s->written_mono + SNAPSHOT_REFRESH_MS) {
			seg_buf_free(&b);
			return 0;
		}
		s->last.len = 0;
		seg_buf_put(&s->last, b.p, b.len);
		s->written_mono = now;
	}
	/* Reopen the object: add who wrote it and when. */
	if (!b.oom && b.len) {
		b.len--;
		seg_buf_printf(&b, ",\"pid\":%ld,\"written_at_ms\":%lld,\"interval_ms\":%u}\n",
			       (long)getpid(), (long long)v->now_ms(v), c->status_interval_ms);
	}
	if (!b.oom && !seg_path(path, sizeof(path), c->dir, SNAPSHOT_FILE) &&
	    seg_write_atomic(v, path, b.p, b.len, 0644, NULL, &e) && (final || !s->snap_warned)) {
		s->snap_warned |= !final;
		eng_log(c, EDGELOG_LOG_WARN, "status snapshot%s: %s", final ? " at close" : "",
			e.msg);
	}
	if (c->metrics_file) {
		b.len = 0;
		eng_status_prom(st, &b);
		if (!b.oom && seg_write_atomic(v, c->metrics_file, b.p, b.len, 0644, NULL, &e) &&
		    (final || !s->metrics_warned)) {
			s->metrics_warned |= !final;
			eng_log(c, EDGELOG_LOG_WARN, "metrics file%s: %s", final ? " at close" : "",
				e.msg);
		}
	}
	seg_buf_free(&b);
	return 1;
}

/* ---- a directory no engine holds ---------------------------------------- */

/* Status from the files: the cursor for the counters, the newest segment
 * for the last seq, the first pending record for the age. */
static int status_offline(const seg_vfs *v, const char *dir, const eng_conf *c, edgelog_status *st,
			  seg_err *e)
{
	char segdir[4300], curpath[4300], faileddir[4300];
	cur_state cur;
	seg_list l = {0};
	seg_reader r;
	seg_frame f;
	int how, rc;
	uint64_t data_last = 0, acked;

	if (seg_path(segdir, sizeof(segdir), dir, ENG_SEGMENTS_DIR) ||
	    seg_path(curpath, sizeof(curpath), dir, CUR_FILE) ||
	    seg_path(faileddir, sizeof(faileddir), dir, "failed"))
		return seg_fail(e, EDGELOG_EINVAL, "path too long: %s", dir);
	if ((rc = v->stat(v, dir, NULL, NULL)) < 0)
		return seg_fail_errno(e, rc, "%s", dir);
	if ((rc = cur_load(v, curpath, &cur, &how, e)))
		return rc;
	if ((rc = seg_list_read(v, segdir, &l, e)))
		return rc;
	/* The newest record: the last frame of the newest readable segment. */
	if (l.n) {
		size_t i = l.n;
		while (i-- > 0 && !data_last) {
			char path[4400], name[32];
			seg_name(name, l.base[i]);
			if (seg_path(path, sizeof(path), segdir, name) ||
			    seg_reader_init(&r, v, path, 0, e))
				continue;
			while (seg_reader_next(&r, &f, e) == 0)
				data_last = f.seq;
			st->corrupt += r.corrupt;
			seg_reader_close(&r);
		}
	}
	st->segments = l.n;
	seg_list_free(&l);

	snprintf(st->device_id, sizeof(st->device_id), "%s", c->device_id);
	{
		/* What the last engine left: its device id (unless one is
		 * given), its last error, the poison count. */
		eng_meta m;
		if (eng_meta_load(v, dir, &m) == 0) {
			if (!c->device_id_given && m.device_id[0])
				snprintf(st->device_id, sizeof(st->device_id), "%s", m.device_id);
			snprintf(st->last_error, sizeof(st->last_error), "%s", m.last_error);
			st->last_error_at = m.last_error_at;
			st->poisoned = m.poisoned;
		}
	}
	acked = cur.acked_seq < data_last ? cur.acked_seq : data_last;
	st->pending = cur_stored_between(&cur, acked, data_last);
	st->sent = cur.sent;
	st->failed = cur.failed;
	st->dropped = cur.dropped;
	st->expired = cur.expired;
	st->corrupt += cur.corrupt;
	st->recovered = cur.recovered;
	st->last_success_at = cur.last_success_at;
	st->last_seq = data_last > cur.last_seq ? data_last : cur.last_seq;
	st->appended = cur_stored_between(&cur, 0, st->last_seq);
	st->appended -= cur.requeued < st->appended ? cur.requeued : st->appended;
	st->acked_seq = acked;
	st->durable_seq = data_last; /* nothing unsynced survives a closed engine */
	st->torn_tails = cur.torn_tails;
	st->torn_bytes = cur.torn_bytes;
	st->cursor_resets = cur.cursor_resets;
	st->sync_failures = cur.sync_failures;
	st->requeued = cur.requeued;
	if ((rc = eng_dir_bytes(v, faileddir, &st->failed_bytes)) < 0)
		return seg_fail_errno(e, rc, "list %s", faileddir);
	if ((rc = eng_dir_bytes(v, segdir, &st->size_bytes)) < 0)
		return seg_fail_errno(e, rc, "list %s", segdir);
	st->size_bytes += st->failed_bytes + CUR_FILE_SIZE;
	st->max_size_bytes = c->max_size_bytes;
	if (st->pending && seg_reader_init(&r, v, segdir, acked + 1, e) == 0) {
		if (seg_reader_next(&r, &f, e) == 0) {
			int64_t age = seg_ms_sub(v->now_ms(v), f.ts_ms);
			st->first_seq = f.seq;
			st->oldest_pending_age_s = age > 0 ? (uint64_t)age / 1000 : 0;
		}
		seg_reader_close(&r);
	}
	st->alert_pending = c->alert_pending;
	st->alert_size_pct = c->alert_size_pct;
	st->alert_failed = c->alert_failed;
	st->upload_enabled = c->endpoint != NULL;
	st->alerts = eng_alert_bits(st);
	return 0;
}

/* The configuration status uses: the environment's, for the cap and the
 * thresholds; never the token (status must not need the secret). */
static int status_conf(const char *dir, eng_conf *c, seg_err *e)
{
	edgelog_config cfg;
	int rc;

	edgelog_config_init(&cfg);
	if ((rc = edgelog_config_from_env(&cfg)))
		return seg_fail(e, rc, "%s", edgelog_errmsg(NULL));
	if (dir)
		cfg.dir = dir;
	cfg.auth_token = NULL;
	cfg.auth_token_file = NULL;
	return eng_conf_resolve(c, &cfg, seg_vfs_posix(), e); /* no token: nothing read */
}

/* The whole of a file of at most max bytes, through the I/O seam, into a
 * malloc'd *text (not NUL-terminated). 0, or -1 if it cannot be read or is
 * larger. */
static int read_small(const seg_vfs *v, const char *path, size_t max, char **text, size_t *n)
{
	uint64_t size = 0;
	ssize_t got;
	int fd = v->open(v, path, O_RDONLY, 0);

	*text = NULL;
	if (fd < 0)
		return -1;
	if (v->fstat(v, fd, &size, NULL) < 0 || size > max || !(*text = malloc(size ? size : 1))) {
		v->close(v, fd);
		return -1;
	}
	got = v->pread(v, fd, *text, (size_t)size, 0);
	v->close(v, fd);
	if (got < 0 || (uint64_t)got != size) {
		free(*text);
		*text = NULL;
		return -1;
	}
	*n = (size_t)size;
	return 0;
}

/* Status of c->dir: the running engine's snapshot when there is a fresh
 * one, else computed from the files. */
static int status_of(const seg_vfs *vfs, const eng_conf *c, edgelog_status *st, int *live,
		     seg_err *e)
{
	long pid;

	edgelog_status_init(st);
	*live = 0;
	if (eng_lock_held(vfs, c->dir, &pid)) {
		/* An engine runs: its snapshot is the truth if it is fresh and
		 * was written by that process. */
		char path[4300];
		char *text = NULL;
		size_t n = 0;
		eng_jv v;
		int64_t wpid = 0, at = 0, ivl = 2000;
		/* Ours is about 1.5 KiB; anything large is not ours: ignored. */
		if (!seg_path(path, sizeof(path), c->dir, SNAPSHOT_FILE) &&
		    read_small(vfs, path, 65536, &text, &n) == 0) {
			int64_t age, fresh;
			if (!eng_json_member(text, n, "pid", &v))
				eng_jv_int(&v, &wpid);
			if (!eng_json_member(text, n, "written_at_ms", &v))
				eng_jv_int(&v, &at);
			if (!eng_json_member(text, n, "interval_ms", &v))
				eng_jv_int(&v, &ivl);
			age = seg_ms_sub(vfs->now_ms(vfs), at);
			/* The file is only read: a crafted interval must not
			 * overflow (or make a stale snapshot look fresh). */
			fresh = 3 * (ivl < 0 || ivl > 3600000 ? 2000 : ivl);
			if (wpid == pid &&
			    age <= (fresh > 3 * SNAPSHOT_REFRESH_MS ? fresh :
								      3 * SNAPSHOT_REFRESH_MS)) {
				status_from_json(text, n, st);
				*live = 1;
			}
			free(text);
		}
		if (!*live)
			*live = -1; /* held, but no fresh snapshot */
	}
	return *live == 1 ? 0 : status_offline(vfs, c->dir, c, st, e);
}

int edgelog_status_dir(const char *dir, edgelog_status *st, int *live)
{
	return eng_status_dir_vfs(seg_vfs_posix(), dir, st, live);
}

int eng_status_dir_vfs(const seg_vfs *v, const char *dir, edgelog_status *st, int *live)
{
	eng_conf c;
	seg_err e;
	int rc, is_live = 0;

	if (live)
		*live = 0;
	if (!st)
		return eng_tls_error(EDGELOG_EINVAL, "edgelog_status_dir: st is NULL");
	if (eng_status_check(st))
		return eng_tls_error(
			EDGELOG_EINVAL,
			"edgelog_status_dir: st->version is %u (call edgelog_status_init; "
			"this library knows version %u)",
			st->version, EDGELOG_STATUS_VERSION);
	memset(&c, 0, sizeof(c));
	if ((rc = status_conf(dir, &c, &e)))
		return eng_tls_error(rc, "%s", e.msg);
	rc = status_of(v, &c, st, &is_live, &e);
	eng_conf_free(&c);
	if (rc)
		return eng_tls_error(rc, "%s", e.msg);
	if (live)
		*live = is_live;
	return 0;
}

/* ---- export ----------------------------------------------------------------- */

typedef struct seg_detail {
	char name[SEG_NAME_LEN + 8];
	uint64_t records, bytes, first_seq, last_seq, damaged;
	int64_t first_ts, last_ts;
} seg_detail;

static void on_damage(void *ud, const char *segment, uint64_t offset, uint64_t len,
		      const char *reason)
{
	seg_detail *d = ud;

	(void)segment;
	(void)offset;
	(void)len;
	(void)reason;
	d->damaged++;
}

int edgelog_export_stats(const char *dir, const char *out_path)
{
	const seg_vfs *v = seg_vfs_posix();
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	char segdir[4300];
	seg_list l = {0};
	seg_buf b = {0};
	eng_conf c;
	seg_err e;
	size_t i;
	int live = 0, rc;

	if (!out_path)
		return eng_tls_error(EDGELOG_EINVAL, "edgelog_export_stats: out_path is NULL");
	memset(&c, 0, sizeof(c));
	if ((rc = status_conf(dir, &c, &e)))
		return eng_tls_error(rc, "%s", e.msg);
	if (!(rc = status_of(v, &c, &st, &live, &e)) &&
	    seg_path(segdir, sizeof(segdir), c.dir, ENG_SEGMENTS_DIR))
		rc = seg_fail(&e, EDGELOG_EINVAL, "path too long: %s", c.dir);
	if (!rc)
		rc = seg_list_read(v, segdir, &l, &e);
	eng_conf_free(&c);
	if (rc)
		return eng_tls_error(rc, "%s", e.msg);
	eng_status_json(&st, eng_status_source(live), &b);
	if (b.len)
		b.len--; /* reopen the object */
	seg_buf_puts(&b, ",\"segment_files\":[");
	for (i = 0; i < l.n; i++) {
		char path[4400];
		seg_detail d;
		seg_reader r;
		seg_frame f;
		uint64_t alloc = 0;

		memset(&d, 0, sizeof(d));
		seg_name(d.name, l.base[i]);
		if (seg_path(path, sizeof(path), segdir, d.name))
			continue;
		/* A file removed by compaction since the listing: 0 bytes, and
		 * the reader below finds no records in it either. */
		if (v->stat(v, path, NULL, &alloc) < 0)
			alloc = 0;
		d.bytes = alloc;
		if (seg_reader_init(&r, v, path, 0, &e) == 0) {
			r.on_damage = on_damage;
			r.ud = &d;
			while (seg_reader_next(&r, &f, &e) == 0) {
				if (!d.records++) {
					d.first_seq = f.seq;
					d.first_ts = f.ts_ms;
				}
				d.last_seq = f.seq;
				d.last_ts = f.ts_ms;
			}
			seg_reader_close(&r);
		} else {
			d.damaged++;
		}
		seg_buf_printf(
			&b,
			"%s{\"file\":\"%s\",\"base_seq\":%llu,\"bytes\":%llu,\"records\":%llu,"
			"\"first_seq\":%llu,\"last_seq\":%llu,\"first_ts\":%lld,"
			"\"last_ts\":%lld,\"damaged_ranges\":%llu,\"acked\":%s}",
			i ? "," : "", d.name, (unsigned long long)l.base[i],
			(unsigned long long)d.bytes, (unsigned long long)d.records,
			(unsigned long long)d.first_seq, (unsigned long long)d.last_seq,
			(long long)d.first_ts, (long long)d.last_ts, (unsigned long long)d.damaged,
			d.records && d.last_seq <= st.acked_seq ? "true" : "false");
	}
	seg_buf_puts(&b, "]}\n");
	seg_list_free(&l);
	if (b.oom) {
		seg_buf_free(&b);
		return eng_tls_error(EDGELOG_ENOMEM, "edgelog_export_stats: out of memory");
	}
	if (!strcmp(out_path, "-")) {
		rc = fwrite(b.p, 1, b.len, stdout) == b.len && fflush(stdout) == 0 ?
			     0 :
			     eng_tls_error(EDGELOG_EIO, "write to standard output: %s",
					   strerror(errno));
	} else {
		char out_dir[4300], *slash;
		snprintf(out_dir, sizeof(out_dir), "%s", out_path);
		slash = strrchr(out_dir, '/');
		if (!slash)
			strcpy(out_dir, ".");
		else
			slash[slash == out_dir] = '\0'; /* "/x.json" keeps "/" */
		if ((rc = seg_write_atomic(v, out_path, b.p, b.len, 0644, out_dir, &e)))
			rc = eng_tls_error(rc, "%s", e.msg);
	}
	seg_buf_free(&b);
	return rc;
}
