/*
 * eng_reader.c - the public reader: seg_reader behind an opaque handle.
 * Accepts an edgelog directory (reads its segments/), a directory of
 * segment files, or one segment file.
 *
 * Offers: edgelog_reader_* (edgelog.h). Calls only eng_config.c's error
 * helpers and segments/.
 */
#include <stdlib.h>
#include <string.h>

#include "eng_internal.h"
#include "seg.h"

struct edgelog_reader {
	seg_reader r;
	edgelog_corrupt_fn fn;
	void *payload;
};

static void on_damage(void *ud, const char *segment, uint64_t off, uint64_t len, const char *why)
{
	edgelog_reader *er = ud;
	if (er->fn)
		er->fn(er->payload, segment, off, len, why);
}

int edgelog_reader_open(edgelog_reader **out, const char *dir, uint64_t from_seq)
{
	return eng_reader_open_vfs(seg_vfs_posix(), out, dir, from_seq);
}

int eng_reader_open_vfs(const seg_vfs *v, edgelog_reader **out, const char *dir, uint64_t from_seq)
{
	edgelog_reader *er;
	char sub[4200];
	uint64_t size;
	seg_err e;
	int rc;

	if (!out || !dir)
		return eng_tls_error(EDGELOG_EINVAL, "edgelog_reader_open: NULL argument");
	*out = NULL;
	er = calloc(1, sizeof(*er));
	if (!er)
		return eng_tls_error(EDGELOG_ENOMEM, "edgelog_reader_open: out of memory");
	/* An engine directory holds its segments in segments/. */
	if (!seg_path(sub, sizeof(sub), dir, ENG_SEGMENTS_DIR) && v->stat(v, sub, &size, NULL) == 0)
		rc = seg_reader_init(&er->r, v, sub, from_seq, &e);
	else
		rc = seg_reader_init(&er->r, v, dir, from_seq, &e);
	if (rc) {
		free(er);
		eng_tls_set(e.msg);
		return rc;
	}
	er->r.on_damage = on_damage;
	er->r.ud = er;
	*out = er;
	return 0;
}

void edgelog_reader_on_corrupt(edgelog_reader *r, edgelog_corrupt_fn fn, void *payload)
{
	if (!r)
		return;
	r->fn = fn;
	r->payload = payload;
}

int edgelog_reader_next(edgelog_reader *r, edgelog_record *rec)
{
	seg_frame f;
	seg_err e;
	int rc;

	if (!r || !rec)
		return EDGELOG_EINVAL;
	rc = seg_reader_next(&r->r, &f, &e);
	if (rc) {
		if (rc != EDGELOG_EOF)
			eng_tls_set(e.msg);
		return rc;
	}
	rec->seq = f.seq;
	rec->ts_ms = f.ts_ms;
	rec->data = f.data;
	rec->len = f.len;
	rec->segment = r->r.name;
	rec->offset = f.offset;
	return 0;
}

uint64_t edgelog_reader_corrupt(const edgelog_reader *r)
{
	return r ? r->r.corrupt : 0;
}

void edgelog_reader_close(edgelog_reader *r)
{
	if (!r)
		return;
	seg_reader_close(&r->r);
	free(r);
}
