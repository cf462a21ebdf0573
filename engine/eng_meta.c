/*
 * eng_meta.c - DIR/meta.json: what the directory should say about itself
 * when no engine runs (segments/FORMAT.md, "Metadata file"): the device id
 * the engine was configured with, the last error and when it happened, and
 * the count of poison dead letters.
 *
 * Written atomically and durably (temporary, fsync, rename, directory
 * fsync): at open when the device id is new, when the last error or the
 * poison count changed (at most once per status interval, from the
 * snapshot), and at close. Losing it loses no record: offline status then
 * falls back to the host name and no last error.
 *
 * Offers: eng_meta_load, eng_meta_store, eng_meta_sync (eng_internal.h).
 * State: eng_meta_state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_internal.h"
#include "seg.h"

/* Ours is well under 1 KiB; anything much larger is not ours. */
#define META_MAX_BYTES 65536

int eng_meta_load(const seg_vfs *v, const char *dir, eng_meta *m)
{
	char path[4300], *text;
	uint64_t size = 0;
	size_t got, i = 0;
	eng_jv x;
	int64_t n;
	FILE *f;

	memset(m, 0, sizeof(*m));
	if (seg_path(path, sizeof(path), dir, ENG_META_FILE) ||
	    v->stat(v, path, &size, NULL) != 0 || size > META_MAX_BYTES)
		return -1;
	if (!(f = fopen(path, "rbe")))
		return -1;
	if (!(text = malloc(META_MAX_BYTES + 1))) {
		fclose(f);
		return -1;
	}
	got = fread(text, 1, META_MAX_BYTES + 1, f);
	fclose(f);
	while (i < got && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
		i++;
	if (got > META_MAX_BYTES || i == got || text[i] != '{') {
		free(text);
		return -1;
	}
	if (!eng_json_member(text, got, "device_id", &x))
		eng_jv_str(&x, m->device_id, sizeof(m->device_id));
	if (!eng_json_member(text, got, "last_error", &x))
		eng_jv_str(&x, m->last_error, sizeof(m->last_error));
	if (!eng_json_member(text, got, "last_error_at", &x) && !eng_jv_int(&x, &n))
		m->last_error_at = n;
	if (!eng_json_member(text, got, "poisoned", &x) && !eng_jv_int(&x, &n) && n >= 0)
		m->poisoned = (uint64_t)n;
	free(text);
	return 0;
}

int eng_meta_store(const seg_vfs *v, const char *dir, const eng_meta *m, seg_err *e)
{
	char path[4300];
	seg_buf b = {0};
	int rc;

	if (seg_path(path, sizeof(path), dir, ENG_META_FILE))
		return seg_fail(e, EDGELOG_EINVAL, "path too long: %s", dir);
	seg_buf_puts(&b, "{\"format\":1,\"device_id\":");
	seg_json_string(&b, m->device_id, strlen(m->device_id));
	seg_buf_puts(&b, ",\"last_error\":");
	if (m->last_error[0])
		seg_json_string(&b, m->last_error, strlen(m->last_error));
	else
		seg_buf_puts(&b, "null");
	seg_buf_printf(&b, ",\"last_error_at\":%lld,\"poisoned\":%llu}\n",
		       (long long)m->last_error_at, (unsigned long long)m->poisoned);
	if (b.oom) {
		seg_buf_free(&b);
		return seg_fail(e, EDGELOG_ENOMEM, "out of memory");
	}
	rc = seg_write_atomic(v, path, b.p, b.len, 0644, dir, e);
	seg_buf_free(&b);
	return rc;
}

/* The state the engine would store now (mu held). An error of this run
 * wins; else the one an earlier run left. */
static void meta_now(edgelog *log, eng_meta *m)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->device_id, sizeof(m->device_id), "%s", log->conf.device_id);
	m->poisoned = log->upload.poisoned;
	if (log->upload.upl_error[0]) {
		snprintf(m->last_error, sizeof(m->last_error), "%s", log->upload.upl_error);
		m->last_error_at = log->upload.upl_error_at;
	} else if (log->errmsg[0]) {
		snprintf(m->last_error, sizeof(m->last_error), "%.255s", log->errmsg);
		m->last_error_at = log->errmsg_at;
	} else {
		snprintf(m->last_error, sizeof(m->last_error), "%s", log->meta.loaded.last_error);
		m->last_error_at = log->meta.loaded.last_error_at;
	}
}

void eng_meta_sync(edgelog *log, int force)
{
	eng_meta m;
	seg_err e;

	pthread_mutex_lock(&log->mu);
	meta_now(log, &m);
	pthread_mutex_unlock(&log->mu);
	if (!force && !memcmp(&m, &log->meta.written, sizeof(m)))
		return;
	if (eng_meta_store(log->vfs, log->conf.dir, &m, &e)) {
		if (!log->meta.warned) {
			log->meta.warned = 1;
			eng_log(&log->conf, EDGELOG_LOG_WARN, "metadata file: %s", e.msg);
		}
		return;
	}
	log->meta.written = m;
}

int edgelog_dir_device_id(const char *path, char *out, size_t cap)
{
	const seg_vfs *v = seg_vfs_posix();
	char dir[4300];
	eng_meta m;
	int i;

	if (!path || !out || !cap)
		return eng_tls_error(EDGELOG_EINVAL, "edgelog_dir_device_id: NULL argument");
	/* path may be the directory, its segments/ or a segment file in it:
	 * look there and up to two levels above. */
	snprintf(dir, sizeof(dir), "%s", path);
	for (i = 0; i < 3; i++) {
		char *slash;
		size_t n = strlen(dir);
		while (n > 1 && dir[n - 1] == '/')
			dir[--n] = '\0';
		if (eng_meta_load(v, dir, &m) == 0 && m.device_id[0]) {
			if (strlen(m.device_id) >= cap)
				return eng_tls_error(EDGELOG_EINVAL,
						     "edgelog_dir_device_id: buffer too small");
			snprintf(out, cap, "%s", m.device_id);
			return 0;
		}
		slash = strrchr(dir, '/');
		if (!slash || slash == dir)
			break;
		*slash = '\0';
	}
	return eng_tls_error(EDGELOG_ENOTFOUND, "%s: no device id stored (%s)", path,
			     ENG_META_FILE);
}
