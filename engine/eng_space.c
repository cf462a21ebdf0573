/*
 * eng_space.c - the engine's clock and space accounting: the age clock
 * (which retention and the cursor read), the wall-clock second the cursor
 * records for a success, and the bytes counted against the
 * size cap (which retention, appends and status read). It sits below
 * every engine file that uses it and calls none of them.
 *
 * Offers (eng_internal.h): eng_age_now, eng_success_time, eng_used_bytes,
 * eng_dir_bytes.
 * Reads eng_retention's age clock and dead_bytes; writes nothing.
 */
#include <errno.h>

#include "eng_internal.h"

int64_t eng_age_now(const edgelog *log)
{
	return seg_age_at(log->ret.age_base_ms, log->ret.age_mono_ms, log->vfs->mono_ms(log->vfs));
}

int64_t eng_success_time(const edgelog *log)
{
	return seg_ts_clamp(log->vfs->now_ms(log->vfs)) / 1000;
}

uint64_t eng_used_bytes(const edgelog *log)
{
	return log->w.bytes + log->ret.dead_bytes + CUR_FILE_SIZE;
}

typedef struct sized {
	const seg_vfs *v;
	const char *dir;
	uint64_t bytes;
} sized;

static int add_size(void *ud, const char *name)
{
	sized *z = ud;
	char path[4400];
	uint64_t alloc = 0;

	if (!seg_path(path, sizeof(path), z->dir, name) &&
	    z->v->stat(z->v, path, NULL, &alloc) == 0)
		z->bytes += alloc;
	return 0;
}

int eng_dir_bytes(const seg_vfs *v, const char *dir, uint64_t *bytes)
{
	sized z = {v, dir, 0};
	int r = v->list(v, dir, add_size, &z);

	*bytes = 0;
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	*bytes = z.bytes;
	return 0;
}
