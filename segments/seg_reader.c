/*
 * seg_reader.c - records in sequence order across segment files.
 *
 * A segment is "live" while it is the newest file: its end is wherever the
 * writer has got to, and a zero or half-written frame there means "not yet"
 * (EOF for now), not damage. Once a newer segment exists the writer has
 * finished with it, so the rest is scanned deep and anything invalid is
 * reported as damage. The newer segment is looked for *before* the final
 * rescan, so a frame written just before the roll is never missed.
 */
#include "seg_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "seg_dir.h"

static void damage(seg_reader *r, uint64_t off, uint64_t len, const char *why)
{
	r->corrupt++;
	if (r->on_damage)
		r->on_damage(r->ud, r->name, off, len, why);
}

static void close_segment(seg_reader *r)
{
	if (r->map)
		r->vfs->munmap(r->vfs, (void *)r->map, r->size);
	if (r->fd >= 0)
		r->vfs->close(r->vfs, r->fd);
	r->map = NULL;
	r->fd = -1;
	r->open = 0;
}

static int ignore_entry(void *ud, const char *name)
{
	(void)ud;
	(void)name;
	return 1;
}

int seg_reader_init(seg_reader *r, const seg_vfs *v, const char *path, uint64_t from_seq,
		    seg_err *e)
{
	const char *slash;
	int rc;

	memset(r, 0, sizeof(*r));
	r->vfs = v;
	r->fd = -1;
	r->want_seq = from_seq;
	if (strlen(path) + SEG_NAME_LEN + 2 >= sizeof(r->dir))
		return seg_fail(e, EDGELOG_EINVAL, "path too long: %s", path);
	rc = v->list(v, path, ignore_entry, NULL);
	if (rc == 0) {
		strcpy(r->dir, path);
		return 0;
	}
	if (rc != -ENOTDIR)
		return seg_fail_errno(e, rc, "open %s", path);
	/* One file: read it alone. */
	r->single = 1;
	slash = strrchr(path, '/');
	if (strlen(slash ? slash + 1 : path) >= sizeof(r->file))
		return seg_fail(e, EDGELOG_EINVAL, "file name too long: %s", path);
	if (slash) {
		size_t n = (size_t)(slash - path);
		memcpy(r->dir, path, n ? n : 1);
		r->dir[n ? n : 1] = '\0';
		strcpy(r->file, slash + 1);
	} else {
		strcpy(r->dir, ".");
		strcpy(r->file, path);
	}
	return 0;
}

/* Map a segment file for reading. Returns 0, 1 if the file is not ready
 * (newest segment still being created) or gone, or an error. */
static int open_segment(seg_reader *r, const char *name, int newest, seg_err *e)
{
	char path[4200];
	uint64_t size = 0;
	int fd, rc, err = 0, s;

	snprintf(r->name, sizeof(r->name), "%s", name);
	if (seg_path(path, sizeof(path), r->dir, name))
		return seg_fail(e, EDGELOG_EINVAL, "path too long: %s/%s", r->dir, name);
	fd = r->vfs->open(r->vfs, path, O_RDONLY, 0);
	if (fd == -ENOENT)
		return 1; /* removed by retention meanwhile */
	if (fd < 0)
		return seg_fail_errno(e, fd, "open %s", path);
	rc = r->vfs->fstat(r->vfs, fd, &size, NULL);
	if (rc < 0) {
		r->vfs->close(r->vfs, fd);
		return seg_fail_errno(e, rc, "fstat %s", path);
	}
	if (size < SEG_HEADER_SIZE) {
		uint8_t h[SEG_HEADER_SIZE];
		ssize_t n = r->vfs->pread(r->vfs, fd, h, (size_t)size, 0);
		r->vfs->close(r->vfs, fd);
		/* Being created (the newest), or stillborn: created at a roll,
		 * never written (all zeros). Neither is damage. */
		if ((newest && !r->single) || (n >= 0 && seg_stillborn(h, (size_t)n)))
			return 1;
		damage(r, 0, size, "file shorter than a segment header");
		return 2;
	}
	r->map = r->vfs->mmap(r->vfs, fd, (size_t)size, 0, 0, &err);
	if (!r->map) {
		r->vfs->close(r->vfs, fd);
		return seg_fail_errno(e, err, "mmap %s", path);
	}
	r->fd = fd;
	r->size = (size_t)size;
	s = seg_scan_init(&r->scan, r->map, r->size, !newest || r->single);
	if (s == SEG_NEWER) {
		close_segment(r);
		return seg_fail(e, EDGELOG_EVERSION,
				"%s: written by a newer edgelog (segment format > %u)", path,
				SEG_FORMAT_VERSION);
	}
	if ((s == SEG_EMPTY || s == SEG_BAD) && newest && !r->single) {
		/* The newest segment's header is zero or does not verify yet:
		 * being created. Once a newer segment exists it is damage. */
		close_segment(r);
		return 1;
	}
	if (s == SEG_EMPTY && seg_stillborn(r->map, r->size)) {
		close_segment(r);
		return 1; /* stillborn: nothing was ever in it */
	}
	if (s != SEG_OK) {
		damage(r, 0, r->size,
		       s == SEG_EMPTY ? "segment header is all zeros" :
					"segment header is damaged");
		close_segment(r);
		return 2;
	}
	r->open = 1;
	return 0;
}

/* Choose the next segment to open. Returns 0 with *base set, or 1 if there
 * is none yet; *newest tells whether it is the newest file. */
static int pick_segment(seg_reader *r, uint64_t *base, int *newest, seg_err *e)
{
	seg_list l = {0};
	size_t i;
	int rc;

	if ((rc = seg_list_read(r->vfs, r->dir, &l, e)))
		return rc;
	rc = 1;
	if (!r->cur_base) {
		/* First segment: the newest whose base <= want_seq, so the
		 * record asked for is in it or after it. */
		for (i = 0; i < l.n; i++)
			if (i == 0 || l.base[i] <= r->want_seq) {
				*base = l.base[i];
				*newest = i + 1 == l.n;
				rc = 0;
			}
	} else {
		for (i = 0; i < l.n; i++)
			if (l.base[i] > r->cur_base) {
				*base = l.base[i];
				*newest = i + 1 == l.n;
				rc = 0;
				break;
			}
	}
	seg_list_free(&l);
	return rc;
}

/* Was the open segment removed by retention while it was read? Its name
 * is gone then. A recycled file (FORMAT.md, "Recycled segments") is being
 * written again under another name and salt: what the scan meets there
 * is a new life's bytes, not damage of this segment's. */
static int removed_meanwhile(seg_reader *r)
{
	char path[4200];

	if (r->single || seg_path(path, sizeof(path), r->dir, r->name))
		return 0;
	return r->vfs->stat(r->vfs, path, NULL, NULL) == -ENOENT;
}

/* Is there a segment newer than the open one? */
static int has_newer(seg_reader *r, seg_err *e)
{
	uint64_t base;
	int newest, rc;
	uint64_t save = r->cur_base;

	rc = pick_segment(r, &base, &newest, e);
	r->cur_base = save;
	return rc < 0 ? rc : rc == 0;
}

int seg_reader_next(seg_reader *r, seg_frame *f, seg_err *e)
{
	uint64_t doff, dlen;
	int rc, k;

	for (;;) {
		if (!r->open) {
			uint64_t base = 0;
			int newest = 1;
			if (r->single) {
				if (r->cur_base)
					return EDGELOG_EOF; /* read it already */
				rc = open_segment(r, r->file, 1, e);
				r->cur_base = 1;
				if (rc < 0)
					return rc;
				if (rc)
					return EDGELOG_EOF;
				continue;
			}
			rc = pick_segment(r, &base, &newest, e);
			if (rc < 0)
				return rc;
			if (rc)
				return EDGELOG_EOF;
			{
				char name[SEG_NAME_LEN + 1];
				seg_name(name, base);
				rc = open_segment(r, name, newest, e);
			}
			if (rc < 0)
				return rc;
			if (rc == 1 && newest)
				return EDGELOG_EOF; /* being created: try later */
			r->cur_base = base;
			if (rc)
				continue; /* unreadable or gone: next one */
		}
		k = seg_scan_next(&r->scan, f, &doff, &dlen);
		if (k == SEG_SCAN_FRAME) {
			if (r->last_seq && f->seq <= r->last_seq) {
				/* Seqs never repeat (FORMAT.md): two engines wrote
				 * this directory, or a segment was copied in. Never
				 * read as clean. */
				char why[128];
				seg_msg(why, sizeof(why),
					"seq %llu repeats (seq %llu was read already): two "
					"writers?",
					(unsigned long long)f->seq,
					(unsigned long long)r->last_seq);
				damage(r, f->offset, SEG_FRAME_HEADER + (uint64_t)f->len, why);
				continue;
			}
			if (f->seq < r->want_seq)
				continue;
			r->last_seq = f->seq;
			r->want_seq = f->seq + 1;
			return 0;
		}
		if ((k == SEG_SCAN_DAMAGE || (k == SEG_SCAN_TAIL && r->scan.deep)) &&
		    removed_meanwhile(r)) {
			close_segment(r);
			continue;
		}
		if (k == SEG_SCAN_DAMAGE) {
			damage(r, doff, dlen, "frame checksum or length invalid");
			continue;
		}
		/* END or TAIL. */
		if (!r->scan.deep) {
			/* Live segment: finished only once a newer one exists. */
			rc = has_newer(r, e);
			if (rc < 0)
				return rc;
			if (!rc)
				return EDGELOG_EOF;
			r->scan.deep = 1; /* rescan what is left, then move on */
			continue;
		}
		if (k == SEG_SCAN_TAIL) {
			damage(r, doff, dlen, "torn or damaged tail");
			r->scan.pos = r->scan.size;
		}
		if (r->single)
			return EDGELOG_EOF;
		close_segment(r);
	}
}

void seg_reader_close(seg_reader *r)
{
	close_segment(r);
}
