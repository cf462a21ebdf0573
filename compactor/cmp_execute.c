/*
 * cmp_execute.c - retention on disk (see cmp.h): find the sealed segments
 * and remove a plan's segments in the one crash-safe order. Every file
 * operation goes through the I/O seam (seg_vfs.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>

#include "cmp.h"
#include "seg.h"

/* Longest "dir/name" built here (the engine's directories are < 4200). */
#define CMP_PATH_MAX 4400

int cmp_gather(const seg_vfs *v, const char *segdir, cmp_seg **out, size_t *n, seg_err *e)
{
	seg_list l = {0};
	cmp_seg *s;
	size_t i, k = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = seg_list_read(v, segdir, &l, e)))
		return rc;
	if (l.n < 2) {
		seg_list_free(&l);
		return 0;
	}
	s = calloc(l.n, sizeof(*s));
	if (!s) {
		seg_list_free(&l);
		return seg_fail(e, EDGELOG_ENOMEM, "out of memory");
	}
	for (i = 0; i + 1 < l.n; i++) {
		char path[CMP_PATH_MAX], name[SEG_NAME_LEN + 1];
		uint8_t hb[SEG_HEADER_SIZE];
		seg_header h;
		uint64_t alloc = 0, size = 0;
		int fd;

		seg_name(name, l.base[i + 1]);
		if (seg_path(path, sizeof(path), segdir, name))
			break;
		/* The successor's header bounds this segment's newest record. */
		fd = v->open(v, path, O_RDONLY, 0);
		if (fd < 0)
			break;
		if (v->pread(v, fd, hb, sizeof(hb), 0) != (ssize_t)sizeof(hb) ||
		    seg_header_decode(hb, &h) != SEG_OK) {
			/* Unreadable successor: no safe age bound; stop here (only a
			 * prefix is ever removed). */
			v->close(v, fd);
			break;
		}
		v->close(v, fd);
		seg_name(name, l.base[i]);
		if (seg_path(path, sizeof(path), segdir, name) || v->stat(v, path, &size, &alloc))
			break;
		s[k].base = l.base[i];
		s[k].last = l.base[i + 1] - 1;
		s[k].newest_wall_ms = h.base_ts_ms;
		s[k].newest_age_ms = h.age_ms;
		s[k].bytes = alloc;
		s[k].size = size;
		k++;
	}
	seg_list_free(&l);
	*out = s;
	*n = k;
	return 0;
}

int cmp_execute(const seg_vfs *v, const char *segdir, const cmp_seg *segs, const cmp_action *act,
		size_t k, const char *recycle_as, cmp_commit_fn commit, void *ud, cmp_done *done,
		seg_err *e)
{
	size_t i;
	int rc, r;

	done->removed = 0;
	done->freed = 0;
	done->synced = 0;
	done->recycled = 0;
	done->recycled_bytes = 0;
	if (!k)
		return 0;

	/* Step 1: the cursor passes every record of the plan, durably. If it
	 * cannot, nothing is removed: the segments stay, the records in them
	 * stay readable, and the next pass tries again. */
	if ((rc = commit(ud, e)))
		return rc;

	/* Step 2: unlink, oldest first. A failure stops here, so what is left
	 * is still a contiguous run; the segments not removed are ones the
	 * cursor has passed, which the next pass removes as acknowledged
	 * (counting nothing twice). Already gone (ENOENT) counts as removed. */
	for (i = 0; i < k; i++) {
		const cmp_seg *s = &segs[act[i].idx];
		char path[CMP_PATH_MAX], name[SEG_NAME_LEN + 1];

		seg_name(name, s->base);
		if ((rc = seg_path(path, sizeof(path), segdir, name))) {
			rc = seg_fail(e, rc, "%s/%s: path too long", segdir, name);
			break;
		}
		if (i == 0 && recycle_as) {
			/* Recycled: the name goes exactly as with an unlink (the
			 * cursor is past it), the blocks stay for the writer. */
			char to[CMP_PATH_MAX];
			if (!seg_path(to, sizeof(to), segdir, recycle_as) &&
			    v->rename(v, path, to) == 0) {
				done->removed++;
				done->recycled = 1;
				done->recycled_bytes = s->bytes;
				continue;
			}
		}
		r = v->unlink(v, path);
		if (r < 0 && r != -ENOENT) {
			rc = seg_fail_errno(e, r, "unlink %s", path);
			break;
		}
		done->removed++;
		done->freed += s->bytes;
	}

	/* Step 3: the removals made durable. If this fails (or power is lost
	 * before it), removed segments may come back after a restart: the
	 * cursor has passed them, so they are removed again as acknowledged.
	 * The first error is the one reported. */
	if (done->removed) {
		r = v->fsync_dir(v, segdir);
		if (r < 0) {
			if (!rc)
				rc = seg_fail_errno(e, r, "fsync directory %s", segdir);
		} else {
			done->synced = 1;
		}
	}
	return rc;
}
