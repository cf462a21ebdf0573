/*
 * seg_writer.c - the active segment: recovery at open, appends, rolls, and
 * the three-step sync.
 *
 * Invariants:
 *  - Frames in a segment are contiguous from SEG_HEADER_SIZE to w->pos. In
 *    a fresh (version 1) segment every byte after w->pos is zero (fresh
 *    fallocate, or zeroed by recovery), so a reader finds the end at the
 *    first zero header. In a recycled (version 2) one an end marker sits
 *    at w->pos (when 16 bytes fit there), written before the frame that
 *    replaces it; after it lie a previous life's bytes, never read.
 *  - A recycled segment found as the newest at open is never written
 *    again: a power cut may have left frames of this life beyond its end
 *    marker (pages written back out of order), which new frames written
 *    after the marker could later expose. The next append starts a new
 *    segment.
 *  - A segment file is fully allocated (fallocate) before it is mapped for
 *    writing: a store into a mapped page can then never meet ENOSPC, which
 *    the kernel would deliver as SIGBUS.
 *  - Seqs handed out only increase, across restarts (min_next_seq).
 */
#include "seg_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "seg_dir.h"
#include "seg_framew.h"
#include "seg_scan.h"

#define PUNCH_MIN (64u * 1024u) /* leave smaller unused tails allocated */

static int path_in(const seg_writer *w, char *out, size_t sz, const char *name, seg_err *e)
{
	if (seg_path(out, sz, w->dir, name))
		return seg_fail(e, EDGELOG_EINVAL, "path too long: %s/%s", w->dir, name);
	return 0;
}

static void unmap_active(seg_writer *w)
{
	if (w->map)
		w->vfs->munmap(w->vfs, w->map, w->size);
	w->map = NULL;
}

static void spare_release(const seg_vfs *v, seg_spare *s)
{
	if (s->map)
		v->munmap(v, s->map, s->size);
	if (s->fd >= 0)
		v->close(v, s->fd);
	s->map = NULL;
	s->fd = -1;
}

void seg_spare_discard(const seg_vfs *v, const char *dir, seg_spare *s)
{
	char path[4200];

	s->recycled = 0;
	if (s->fd < 0)
		return;
	spare_release(v, s);
	if (!seg_path(path, sizeof(path), dir, s->name ? s->name : SEG_SPARE_NAME))
		v->unlink(v, path);
}

/* A spare that could not be made ready: its file is closed and removed;
 * returns rc. */
static int drop_file(const seg_vfs *v, int fd, const char *path, int rc)
{
	v->close(v, fd);
	v->unlink(v, path);
	return rc;
}

/* The synced hint: SEG_SYNCED_NAME holds HINT_MAGIC, the base and salt of
 * a sealed segment, and an XXH3 checksum of those 20 bytes (little-endian).
 * Written after the sync round that made that segment and every earlier
 * one durable, never synced: power loss can only take it back to an older
 * hint, which is as true, or tear it, which its checksum shows. Its one
 * block is not counted in w->bytes (like the log's LOCK and meta.json):
 * what a power cut may take back would make the count differ. */
enum {
	HINT_MAGIC = 0x48534c45u,
	HINT_SIZE = 24
};

static void synced_hint_store(seg_writer *w, uint64_t base, uint64_t salt)
{
	const seg_vfs *v = w->vfs;
	char path[4200];
	uint8_t b[HINT_SIZE];
	int fd;

	if (seg_path(path, sizeof(path), w->dir, SEG_SYNCED_NAME))
		return;
	seg_put32(b, HINT_MAGIC);
	seg_put64(b + 4, base);
	seg_put64(b + 12, salt);
	seg_put32(b + 20, seg_checksum32(b, 20));
	fd = v->open(v, path, O_WRONLY | O_CREAT | O_NOFOLLOW, 0600);
	if (fd < 0)
		return; /* a hint only: the next open syncs every segment */
	v->pwrite(v, fd, b, sizeof(b), 0);
	v->close(v, fd);
}

/* How many of the segments l->base[0 .. n) the hint in dir vouches for as
 * synced: all up to the one it names, if that one is there with its salt;
 * else none. */
static size_t synced_hint_covers(const seg_vfs *v, const char *dir, const uint64_t *base, size_t n)
{
	char path[4200];
	uint8_t b[HINT_SIZE], hb[SEG_HEADER_SIZE];
	seg_header h;
	uint64_t hbase;
	size_t i;
	ssize_t r;
	int fd;

	if (seg_path(path, sizeof(path), dir, SEG_SYNCED_NAME))
		return 0;
	fd = v->open(v, path, O_RDONLY | O_NOFOLLOW, 0);
	if (fd < 0)
		return 0;
	r = v->pread(v, fd, b, sizeof(b), 0);
	v->close(v, fd);
	if (r != (ssize_t)sizeof(b) || seg_get32(b) != HINT_MAGIC ||
	    seg_get32(b + 20) != seg_checksum32(b, 20))
		return 0;
	hbase = seg_get64(b + 4);
	for (i = 0; i < n && base[i] != hbase; i++)
		;
	if (i == n)
		return 0;
	/* The same file, not another with that base since (a log started
	 * anew): its salt. */
	{
		char name[SEG_NAME_LEN + 1];
		seg_name(name, hbase);
		if (seg_path(path, sizeof(path), dir, name))
			return 0;
	}
	fd = v->open(v, path, O_RDONLY, 0);
	if (fd < 0)
		return 0;
	r = v->pread(v, fd, hb, sizeof(hb), 0);
	v->close(v, fd);
	if (r != (ssize_t)sizeof(hb) || seg_header_decode(hb, &h) || h.salt != seg_get64(b + 12))
		return 0;
	return i + 1;
}

/* An empty spare of size bytes, named name: nothing open, nothing mapped. */
static void spare_init(seg_spare *out, size_t size, const char *name)
{
	out->fd = -1;
	out->map = NULL;
	out->size = size;
	out->name = name;
	out->recycled = 0;
	out->grown = 0;
}

static int spare_create_named(const seg_vfs *v, const char *dir, const char *name, size_t size,
			      int populate, seg_spare *out, seg_err *e)
{
	char path[4200];
	int fd, r, err = 0;

	spare_init(out, size, name);
	if (seg_path(path, sizeof(path), dir, name))
		return seg_fail(e, EDGELOG_EINVAL, "path too long: %s", dir);
	fd = v->open(v, path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return seg_fail_errno(e, fd, "create %s", path);
	/* Reserve every block now: stores into the mapping must never find
	 * the disk full. */
	r = v->fallocate(v, fd, size);
	if (r < 0)
		return drop_file(v, fd, path,
				 seg_fail_errno(e, r, "fallocate %s (%zu bytes)", path, size));
	out->map = v->mmap(v, fd, size, 1, populate, &err);
	if (!out->map)
		return drop_file(v, fd, path, seg_fail_errno(e, err, "mmap %s", path));
	out->fd = fd;
	return 0;
}

int seg_spare_create(const seg_vfs *v, const char *dir, size_t size, int populate, seg_spare *out,
		     seg_err *e)
{
	return spare_create_named(v, dir, SEG_SPARE_NAME, size, populate, out, e);
}

int seg_spare_recycle(const seg_vfs *v, const char *dir, size_t size, int populate, seg_spare *out,
		      seg_err *e)
{
	char from[4200], to[4200];
	uint8_t ph[SEG_HEADER_SIZE];
	uint64_t fsize = 0, alloc = 0;
	ssize_t n;
	int fd, r, err = 0;

	spare_init(out, size, SEG_SPARE_NAME);
	if (seg_path(from, sizeof(from), dir, SEG_RECYCLE_NAME) ||
	    seg_path(to, sizeof(to), dir, SEG_SPARE_NAME))
		return seg_fail(e, EDGELOG_EINVAL, "path too long: %s", dir);
	fd = v->open(v, from, O_RDWR | O_NOFOLLOW, 0);
	if (fd == -ENOENT)
		return 1;
	if (fd < 0) {
		v->unlink(v, from);
		return seg_fail_errno(e, fd, "open %s", from);
	}
	if ((r = v->fstat(v, fd, &fsize, &alloc)) < 0 || fsize != size)
		return drop_file(v, fd, from, r < 0 ? seg_fail_errno(e, r, "fstat %s", from) : 1);
	/* A segment sealed by age had its unused tail punched: allocated
	 * again here (stores into the mapping must never meet ENOSPC). Its
	 * written head is what saves the journal commits, and a log at a
	 * steady rate fills about as much of it the next time. */
	if (alloc < size) {
		if ((r = v->fallocate(v, fd, size)) < 0)
			return drop_file(v, fd, from,
					 seg_fail_errno(e, r, "fallocate %s (%zu bytes)", from,
							size));
		out->grown = size - alloc;
	}
	/* The placeholder first, durably: from here on a power cut at any
	 * step leaves a file that reads as never started, whatever name it
	 * ends up with (.recycle, .spare: removed at open; a segment name:
	 * stillborn), never the previous life's header. */
	seg_header_placeholder(ph);
	n = v->pwrite(v, fd, ph, sizeof(ph), 0);
	r = n < 0 ? (int)n : n != (ssize_t)sizeof(ph) ? -EIO : v->fsync(v, fd);
	if (r < 0)
		return drop_file(v, fd, from,
				 seg_fail_errno(e, r, "write the placeholder header of %s", from));
	if ((r = v->rename(v, from, to)) < 0)
		return drop_file(v, fd, from, seg_fail_errno(e, r, "rename %s to %s", from, to));
	out->map = v->mmap(v, fd, size, 1, populate, &err);
	if (!out->map)
		return drop_file(v, fd, to, seg_fail_errno(e, err, "mmap %s", to));
	out->fd = fd;
	out->recycled = 1;
	return 0;
}

int seg_writer_populate(const seg_writer *w, int64_t sync_interval_ms)
{
	if (w->last_lifetime_ms >= 0 && w->last_lifetime_ms < 2 * sync_interval_ms)
		return SEG_POPULATE_WRITE;
	return SEG_POPULATE_READ;
}

int seg_writer_wants_spare(const seg_writer *w)
{
	return w->spare.fd < 0;
}

void seg_writer_give_spare(seg_writer *w, seg_spare *s)
{
	if (w->spare.fd < 0 && s->size == w->seg_bytes) {
		w->spare = *s;
		if (s->recycled) /* counted whole from here on */
			w->bytes += s->grown;
		w->spare.grown = 0;
	} else if (s->fd >= 0) {
		if (s->recycled) {
			/* What was counted of it: its size less what was
			 * allocated again. */
			uint64_t counted = s->size - s->grown;
			w->bytes -= counted < w->bytes ? counted : w->bytes;
		}
		/* Unmap and close only: the file is the one the writer holds
		 * or will be replaced by the next create. */
		spare_release(w->vfs, s);
	}
	s->fd = -1;
	s->map = NULL;
}

/* Move the active segment to the sealed list (its data still to be
 * synced). An unused tail larger than PUNCH_MIN (a segment sealed by age)
 * is given back to the file system; the file keeps its size so a reader
 * that has it mapped reads zeros, not SIGBUS. */
static int seal_active(seg_writer *w, seg_err *e)
{
	size_t keep;

	if (w->fd < 0)
		return 0;
	w->last_lifetime_ms = w->vfs->mono_ms(w->vfs) - w->started_mono_ms;
	w->sealed_base = w->hdr.base_seq;
	w->sealed_salt = w->hdr.salt;
	if (w->n_sealed == SEG_MAX_SEALED) {
		/* Nobody has synced for a long time (sync=none): sync the oldest
		 * here rather than hold more descriptors open. */
		int r = w->vfs->fsync(w->vfs, w->sealed_fd[0]);
		w->vfs->close(w->vfs, w->sealed_fd[0]);
		memmove(w->sealed_fd, w->sealed_fd + 1, (SEG_MAX_SEALED - 1) * sizeof(int));
		memmove(w->sealed_last, w->sealed_last + 1,
			(SEG_MAX_SEALED - 1) * sizeof(uint64_t));
		w->n_sealed--;
		if (r < 0) {
			/* The segment's pages may be gone: report it. */
			seg_fail_errno(e, r, "fdatasync of a sealed segment in %s", w->dir);
			w->sync_failed++;
			w->hint_off = 1;
		}
	}
	/* A recycled segment's end marker must survive the punch. */
	keep = (w->pos + (w->hdr.version == SEG_VERSION_RECYCLED ? SEG_FRAME_HEADER : 0) + 4095) &
	       ~(size_t)4095;
	if (w->size > keep && w->size - keep >= PUNCH_MIN &&
	    w->vfs->punch(w->vfs, w->fd, keep, w->size - keep) == 0)
		w->bytes -= w->size - keep < w->bytes ? w->size - keep : w->bytes;
	if (w->n_retired < SEG_MAX_RETIRED) {
		w->retired[w->n_retired] = w->map;
		w->retired_size[w->n_retired++] = w->size;
		w->map = NULL;
	} else {
		unmap_active(w);
	}
	w->sealed_fd[w->n_sealed] = w->fd;
	w->sealed_last[w->n_sealed] = w->next_seq - 1;
	w->n_sealed++;
	w->fd = -1;
	return 0;
}

/* Start a new active segment whose first frame will be w->next_seq with
 * timestamps relative to ts_ms. The old one is sealed only once the new
 * one exists, so a failure (disk full) changes nothing. */
static int start_segment(seg_writer *w, int64_t ts_ms, size_t need, seg_err *e)
{
	char name[SEG_NAME_LEN + 1], path[4200], spare[4200];
	seg_spare s;
	seg_header h;
	size_t size = w->seg_bytes, add;
	int r;

	if (size < SEG_HEADER_SIZE + need)
		size = SEG_HEADER_SIZE + need; /* one oversized record */
	/* A recycled spare's bytes are counted already. */
	add = w->spare.fd >= 0 && w->spare.recycled && w->spare.size == size ? 0 : size;
	if (w->cap_bytes && w->bytes + add > w->cap_bytes)
		return seg_fail(e, EDGELOG_EFULL,
				"%s: a new %zu-byte segment would take the log to %llu bytes, over "
				"its cap of %llu",
				w->dir, size, (unsigned long long)(w->bytes + add),
				(unsigned long long)w->cap_bytes);
	seg_name(name, w->next_seq);
	if ((r = path_in(w, path, sizeof(path), name, e)))
		return r;
	if (w->spare.fd < 0 || w->spare.size != size) {
		/* No spare ready (or one of another size): make one here. */
		if (w->spare.fd >= 0 && w->spare.recycled)
			w->bytes -= w->spare.size < w->bytes ? w->spare.size : w->bytes;
		seg_spare_discard(w->vfs, w->dir, &w->spare);
		if ((r = spare_create_named(w->vfs, w->dir, SEG_SPARE_INLINE_NAME, size,
					    SEG_POPULATE_READ, &w->spare, e)))
			return r;
	}
	s = w->spare;
	if ((r = path_in(w, spare, sizeof(spare), s.name, e)))
		return r;

	memset(&h, 0, sizeof(h));
	h.version = s.recycled ? SEG_VERSION_RECYCLED : SEG_VERSION_FRESH;
	h.base_seq = w->next_seq;
	h.base_ts_ms = ts_ms;
	if (w->age_base_ms)
		h.age_ms = seg_age_at(w->age_base_ms, w->age_mono_ms, w->vfs->mono_ms(w->vfs));
	if ((r = w->vfs->random(w->vfs, &h.salt, sizeof(h.salt))) < 0)
		h.salt = (uint64_t)w->vfs->mono_ms(w->vfs) * 0x9e3779b97f4a7c15ull ^ w->next_seq;
	/* The header goes in before the rename, so a reader never sees the
	 * segment's name without its header. A crash leaves either a stale
	 * .spare (removed at open) or a segment whose header may not have
	 * reached the disk (zero: recognised as never written). */
	seg_header_encode(&h, s.map);
	if (s.recycled) {
		/* The previous life's bytes follow: the end is marked (in the
		 * header's sector), before the segment has its name. */
		seg_end_marker(s.map + SEG_HEADER_SIZE, h.salt, 0);
	}
	SEG_FENCE_RELEASE();
	r = w->vfs->rename(w->vfs, spare, path);
	if (r < 0) {
		if (w->spare.recycled) /* its bytes leave the count with it */
			w->bytes -= w->spare.size < w->bytes ? w->spare.size : w->bytes;
		seg_spare_discard(w->vfs, w->dir, &w->spare);
		return seg_fail_errno(e, r, "rename %s to %s", spare, path);
	}
	w->spare.fd = -1;
	w->spare.map = NULL;
	w->spare.recycled = 0;
	seal_active(w, e);

	w->fd = s.fd;
	w->map = s.map;
	w->size = s.size;
	w->pos = SEG_HEADER_SIZE;
	w->hdr = h;
	memcpy(w->name, name, sizeof(name));
	w->started_mono_ms = w->vfs->mono_ms(w->vfs);
	w->have_frame = 0;
	w->last_delta = 0;
	w->suspect = 0;
	w->dir_dirty = 1; /* the new name must reach the disk before any sync counts */
	w->bytes += s.recycled ? 0 : s.size;
	w->recycled += s.recycled ? 1 : 0;
	w->segments++;
	return 0;
}

/* Recovery of the newest segment file. Returns 1 if the caller should look
 * at the next older file (this one was empty or unreadable and removed or
 * quarantined), 0 when positioned, or an error. */
static int recover_last(seg_writer *w, uint64_t base, seg_open_report *rep, seg_err *e)
{
	char name[SEG_NAME_LEN + 1], path[4200], bad[4300];
	uint64_t size = 0, alloc = 0, doff, dlen;
	seg_scan sc;
	seg_frame f;
	int fd, r, err = 0, s;
	uint8_t *map;
	int64_t now, age;

	seg_name(name, base);
	if ((r = path_in(w, path, sizeof(path), name, e)))
		return r;
	fd = w->vfs->open(w->vfs, path, O_RDWR, 0);
	if (fd < 0)
		return seg_fail_errno(e, fd, "open %s", path);
	if ((r = w->vfs->fstat(w->vfs, fd, &size, &alloc)) < 0) {
		w->vfs->close(w->vfs, fd);
		return seg_fail_errno(e, r, "fstat %s", path);
	}
	if (size < SEG_HEADER_SIZE + SEG_FRAME_HEADER) {
		uint8_t tmp[SEG_HEADER_SIZE + SEG_FRAME_HEADER];
		ssize_t n = w->vfs->pread(w->vfs, fd, tmp, (size_t)size, 0);
		w->vfs->close(w->vfs, fd);
		if (n >= 0 && seg_stillborn(tmp, (size_t)n))
			goto stillborn;
		goto quarantine;
	}
	/* Re-reserve the blocks: a segment sealed by age had its tail
	 * punched, and a crash may have left it as the newest. */
	if ((r = w->vfs->fallocate(w->vfs, fd, size)) < 0) {
		w->vfs->close(w->vfs, fd);
		return seg_fail_errno(e, r, "fallocate %s", path);
	}
	map = w->vfs->mmap(w->vfs, fd, (size_t)size, 1, SEG_POPULATE_READ, &err);
	if (!map) {
		w->vfs->close(w->vfs, fd);
		return seg_fail_errno(e, err, "mmap %s", path);
	}
	s = seg_scan_init(&sc, map, (size_t)size, 1);
	if (s == SEG_NEWER) {
		w->vfs->munmap(w->vfs, map, (size_t)size);
		w->vfs->close(w->vfs, fd);
		return seg_fail(e, EDGELOG_EVERSION,
				"%s: written by a newer edgelog (segment format > %u)", path,
				SEG_FORMAT_VERSION);
	}
	if (s != SEG_OK || sc.hdr.base_seq != base) {
		/* The header never reached the disk (power cut right after the
		 * segment was created) or is damaged. No frame can be verified
		 * without its salt. */
		int empty = s == SEG_EMPTY && seg_stillborn(map, (size_t)size);
		w->vfs->munmap(w->vfs, map, (size_t)size);
		w->vfs->close(w->vfs, fd);
		if (empty)
			goto stillborn;
		goto quarantine;
	}
	w->hdr = sc.hdr;
	for (;;) {
		int k = seg_scan_next(&sc, &f, &doff, &dlen);
		if (k == SEG_SCAN_FRAME) {
			w->have_frame = 1;
			w->last_delta = f.seq_delta;
			rep->last_seq = f.seq;
		} else if (k == SEG_SCAN_DAMAGE) {
			rep->corrupt++;
		} else if (k == SEG_SCAN_TAIL && sc.hdr.version == SEG_VERSION_RECYCLED) {
			/* A torn last write in a recycled segment. Its extent
			 * ends at the next end marker, or is lost among the
			 * previous life's bytes: an end marker where it starts
			 * makes every later reader stop there at once. The
			 * segment gets no more frames (below). */
			seg_end_marker(map + doff, sc.hdr.salt,
				       w->have_frame ? w->last_delta + 1 : 0);
			rep->torn_tails++;
			rep->torn_bytes += dlen;
			r = w->vfs->fsync(w->vfs, fd);
			if (r < 0) {
				w->vfs->munmap(w->vfs, map, (size_t)size);
				w->vfs->close(w->vfs, fd);
				return seg_fail_errno(
					e, r, "fdatasync %s after marking the end of its torn tail",
					path);
			}
			break;
		} else if (k == SEG_SCAN_TAIL) {
			/* A torn tail: the last write did not complete before the
			 * crash. Zero it so the next frame lands on clean space,
			 * and make that durable before anything is appended after
			 * it. */
			memset(map + doff, 0, (size_t)dlen);
			rep->torn_tails++;
			rep->torn_bytes += dlen;
			r = w->vfs->fsync(w->vfs, fd);
			if (r < 0) {
				w->vfs->munmap(w->vfs, map, (size_t)size);
				w->vfs->close(w->vfs, fd);
				return seg_fail_errno(
					e, r, "fdatasync %s after zeroing its torn tail", path);
			}
			break;
		} else {
			break;
		}
	}
	if (!w->have_frame)
		rep->last_seq = base - 1;
	w->fd = fd;
	w->map = map;
	w->size = (size_t)size;
	w->pos = sc.pos;
	memcpy(w->name, name, sizeof(name));
	/* Age of the segment from its header's wall-clock time, clamped: a
	 * clock that jumped must not make it look older than max age, nor
	 * younger than new. */
	now = w->vfs->now_ms(w->vfs);
	age = seg_ms_sub(now, w->hdr.base_ts_ms);
	if (age < 0)
		age = 0;
	if (age > w->max_age_ms)
		age = w->max_age_ms;
	w->started_mono_ms = w->vfs->mono_ms(w->vfs) - age;
	/* A recycled segment is never resumed (see the top of this file):
	 * the next append seals it and starts a new one. */
	if (w->hdr.version == SEG_VERSION_RECYCLED)
		w->suspect = 1;
	return 0;

stillborn:
	/* Created but never written: nothing to keep. */
	r = w->vfs->unlink(w->vfs, path);
	if (r < 0)
		return seg_fail_errno(e, r, "unlink empty segment %s", path);
	w->dir_dirty = 1;
	return 1;
quarantine:
	/* Unreadable: keep the bytes for the repair tool, out of the way. */
	snprintf(bad, sizeof(bad), "%s.bad", path);
	r = w->vfs->rename(w->vfs, path, bad);
	if (r < 0)
		return seg_fail_errno(e, r, "rename %s to %s", path, bad);
	w->dir_dirty = 1;
	rep->quarantined++;
	{
		/* Smallest frame: its header and a one-byte msgpack object. */
		uint64_t most = size > SEG_HEADER_SIZE ?
					(size - SEG_HEADER_SIZE) / (SEG_FRAME_HEADER + 1) :
					0;
		/* A base at or past SEG_SEQ_LIMIT cannot have held a record
		 * (no header there verifies): it raises no bound, and the sum
		 * below stays far from wrapping. */
		if (base < SEG_SEQ_LIMIT && base + most + 1 > rep->bad_seq_bound)
			rep->bad_seq_bound = base + most + 1;
	}
	return 1;
}

int seg_writer_open(seg_writer *w, const seg_vfs *v, const char *dir, size_t seg_bytes,
		    int64_t max_age_ms, uint64_t min_next_seq, seg_open_report *rep, seg_err *e)
{
	seg_list l = {0};
	char path[4200];
	uint64_t floor_seq = 1; /* seqs below this may have been used */
	size_t i;
	int r;

	memset(w, 0, sizeof(*w));
	memset(rep, 0, sizeof(*rep));
	w->vfs = v;
	w->fd = -1;
	w->spare.fd = -1;
	w->last_lifetime_ms = -1;
	w->seg_bytes = seg_bytes;
	w->max_age_ms = max_age_ms;
	if (strlen(dir) >= sizeof(w->dir) - SEG_NAME_LEN - 16)
		return seg_fail(e, EDGELOG_EINVAL, "directory path too long: %s", dir);
	strcpy(w->dir, dir);
	r = v->mkdir(v, dir, 0700);
	if (r < 0 && r != -EEXIST)
		return seg_fail_errno(e, r, "mkdir %s", dir);
	/* A spare left by a previous run is never part of the log. */
	if (!seg_path(path, sizeof(path), dir, SEG_SPARE_NAME))
		v->unlink(v, path);
	if (!seg_path(path, sizeof(path), dir, SEG_SPARE_INLINE_NAME))
		v->unlink(v, path);
	/* Nor is a file retention set aside for recycling (its records are
	 * acknowledged; it is not counted, so it goes). */
	if (!seg_path(path, sizeof(path), dir, SEG_RECYCLE_NAME))
		v->unlink(v, path);

	for (;;) {
		if ((r = seg_list_read(v, dir, &l, e)))
			goto out;
		if (l.n == 0) {
			w->next_seq = 1;
			break;
		}
		r = recover_last(w, l.base[l.n - 1], rep, e);
		if (r < 0)
			goto out;
		if (r == 0) {
			w->next_seq = rep->last_seq + 1;
			break;
		}
		/* Removed or quarantined: its seqs may exist elsewhere (sent,
		 * or in the .bad file); never hand them out again. */
		if (floor_seq <= l.base[l.n - 1] && l.base[l.n - 1] < SEG_SEQ_LIMIT)
			floor_seq = l.base[l.n - 1] + 1;
	}
	if (floor_seq > w->next_seq)
		w->next_seq = floor_seq;
	if (rep->bad_seq_bound > w->next_seq)
		w->next_seq = rep->bad_seq_bound;
	if (min_next_seq > w->next_seq)
		w->next_seq = min_next_seq;
	if (w->next_seq >= SEG_SEQ_LIMIT) {
		/* Only a damaged cursor can claim this (no header past the limit
		 * verifies): refuse rather than wrap and reuse seqs. */
		r = seg_fail(e, EDGELOG_ECORRUPT,
			     "%s: the next seq would be %llu, beyond the 2^63 a log can hold "
			     "(a damaged cursor?)",
			     dir, (unsigned long long)w->next_seq);
		goto out;
	}
	rep->segments = l.n;
	rep->first_seq = l.n ? l.base[0] : 0;
	for (i = 0; i < l.n; i++) {
		uint64_t alloc = 0;
		char name[SEG_NAME_LEN + 1];
		seg_name(name, l.base[i]);
		if (!seg_path(path, sizeof(path), dir, name) && v->stat(v, path, NULL, &alloc) == 0)
			w->bytes += alloc;
	}
	w->segments = l.n;
	rep->bytes = w->bytes;
	/* The previous process may have died (kill -9) with data in the page
	 * cache that it never synced, possibly in several segments and under
	 * names never made durable. Sync them now, so that "durable" means
	 * what it says from here on: all but those the synced hint vouches
	 * for, because an fdatasync of a clean file is a device cache flush
	 * all the same (ext4), which a busy disk or an SD card makes slow. */
	for (i = synced_hint_covers(v, dir, l.base, l.n); i < l.n; i++) {
		char name[SEG_NAME_LEN + 1];
		int fd;
		seg_name(name, l.base[i]);
		if (seg_path(path, sizeof(path), dir, name))
			continue;
		if (w->fd >= 0 && !strcmp(name, w->name)) {
			fd = w->fd;
		} else {
			fd = v->open(v, path, O_RDONLY, 0);
			if (fd < 0) {
				r = seg_fail_errno(e, fd, "open %s", path);
				goto out;
			}
		}
		r = v->fsync(v, fd);
		if (fd != w->fd)
			v->close(v, fd);
		if (r < 0) {
			r = seg_fail_errno(e, r, "fdatasync %s", path);
			goto out;
		}
	}
	if ((r = v->fsync_dir(v, dir)) < 0) {
		r = seg_fail_errno(e, r, "fsync directory %s", dir);
		goto out;
	}
	w->synced_seq = w->next_seq - 1;
	w->dir_dirty = 0;
	r = 0;
out:
	seg_list_free(&l);
	if (r < 0) {
		unmap_active(w);
		if (w->fd >= 0)
			v->close(v, w->fd);
		w->fd = -1;
	}
	return r;
}

/* The active segment holds no frame but cannot take the next one (too
 * small for an oversized record, or suspect): remove it, so the new one can
 * take its name (the same base seq). Nothing is lost: it has no records. */
static int drop_empty_active(seg_writer *w, seg_err *e)
{
	char path[4200];
	int r;

	if ((r = path_in(w, path, sizeof(path), w->name, e)))
		return r;
	unmap_active(w);
	w->vfs->close(w->vfs, w->fd);
	w->fd = -1;
	r = w->vfs->unlink(w->vfs, path);
	if (r < 0 && r != -ENOENT)
		return seg_fail_errno(e, r, "unlink empty segment %s", path);
	w->bytes -= w->size < w->bytes ? w->size : w->bytes;
	w->segments--;
	w->dir_dirty = 1;
	return 0;
}

int seg_writer_roll(seg_writer *w, seg_err *e)
{
	if (w->fd < 0 || !w->have_frame)
		return 0;
	return seal_active(w, e);
}

int seg_writer_append(seg_writer *w, const void *data, uint32_t len, int64_t ts_ms, uint64_t *seq,
		      seg_err *e)
{
	size_t need = SEG_FRAME_HEADER + (size_t)len;
	int64_t tsd;
	uint8_t *p;
	int r;

	if (w->next_seq >= SEG_SEQ_LIMIT - 1)
		return seg_fail(e, EDGELOG_EFULL, "%s: no seq left (2^63 handed out)", w->dir);
	/* A clock beyond what a header holds (seg_format.h) is clamped. */
	ts_ms = seg_ts_clamp(ts_ms);
	if (w->fd >= 0) {
		int roll = w->suspect || w->pos + need > w->size ||
			   w->next_seq - w->hdr.base_seq > SEG_MAX_DELTA;
		tsd = ts_ms - w->hdr.base_ts_ms;
		if (tsd < INT32_MIN || tsd > INT32_MAX)
			roll = 1;
		if (w->have_frame && w->vfs->mono_ms(w->vfs) - w->started_mono_ms >= w->max_age_ms)
			roll = 1;
		if (roll && !w->have_frame && w->pos + need <= w->size && !w->suspect) {
			/* Nothing written here yet: restamp the header instead of
			 * creating a segment with the same base. */
			w->hdr.base_ts_ms = ts_ms;
			seg_header_encode(&w->hdr, w->map);
			roll = 0;
		}
		if (roll && !w->have_frame && (r = drop_empty_active(w, e)))
			return r;
		if (roll && (r = start_segment(w, ts_ms, need, e)))
			return r;
	} else if ((r = start_segment(w, ts_ms, need, e))) {
		return r;
	}
	tsd = ts_ms - w->hdr.base_ts_ms;
	p = w->map + w->pos;
	/* In a recycled segment the next end marker goes in first: until the
	 * header below replaces the marker at pos, a reader (or a recovery
	 * after kill -9) stops at pos. */
	if (w->hdr.version == SEG_VERSION_RECYCLED && w->pos + need + SEG_FRAME_HEADER <= w->size)
		seg_end_marker(p + need, w->hdr.salt,
			       (uint32_t)(w->next_seq + 1 - w->hdr.base_seq));
	if (!w->have_secret || w->secret_salt != w->hdr.salt) {
		seg_frame_secret(w->hdr.salt, w->secret);
		w->secret_salt = w->hdr.salt;
		w->have_secret = 1;
	}
	/* Payload first, header (with its checksum) last: a reader in another
	 * process that sees a checksum also sees what it covers. */
	seg_frame_write_inline(p, w->hdr.salt, w->secret, (uint32_t)(w->next_seq - w->hdr.base_seq),
			       (int32_t)tsd, data, len);
	w->pos += need;
	w->have_frame = 1;
	w->last_delta = (uint32_t)(w->next_seq - w->hdr.base_seq);
	*seq = w->next_seq++;
	return 0;
}

void seg_writer_set_age_clock(seg_writer *w, int64_t base_ms, int64_t mono_ms)
{
	w->age_base_ms = base_ms;
	w->age_mono_ms = mono_ms;
}

void seg_writer_set_cap(seg_writer *w, uint64_t cap_bytes)
{
	w->cap_bytes = cap_bytes;
}

void seg_writer_forget(seg_writer *w, uint64_t segments, uint64_t bytes)
{
	w->bytes -= bytes < w->bytes ? bytes : w->bytes;
	w->segments -= segments < w->segments ? segments : w->segments;
}

void seg_writer_set_suspect(seg_writer *w)
{
	w->suspect = 1;
}

int seg_writer_take_retired(seg_writer *w, void **p, size_t *n)
{
	if (!w->n_retired)
		return 0;
	w->n_retired--;
	*p = w->retired[w->n_retired];
	*n = w->retired_size[w->n_retired];
	return 1;
}

int seg_sync_begin(seg_writer *w, seg_sync_plan *p)
{
	int i;

	if (w->synced_seq + 1 >= w->next_seq && w->n_sealed == 0 && !w->dir_dirty)
		return 0;
	p->n = 0;
	for (i = 0; i < w->n_sealed; i++)
		p->fds[p->n++] = w->sealed_fd[i];
	p->close_upto = p->n;
	w->n_sealed = 0;
	if (w->fd >= 0)
		p->fds[p->n++] = w->fd;
	p->sync_dir = w->dir_dirty;
	w->dir_dirty = 0;
	p->target_seq = w->next_seq - 1;
	p->failed_fd = -1;
	p->err = 0;
	/* Every segment sealed since the last round is in this one; those
	 * before were synced by earlier rounds (or at open). */
	p->hint = p->close_upto > 0 && !w->hint_off;
	p->hint_base = w->sealed_base;
	p->hint_salt = w->sealed_salt;
	return 1;
}

void seg_sync_run(const seg_vfs *v, const char *dir, seg_sync_plan *p)
{
	int i, r;

	for (i = 0; i < p->n; i++) {
		r = v->fsync(v, p->fds[i]);
		if (r < 0 && !p->err) {
			p->err = r;
			p->failed_fd = p->fds[i];
		}
	}
	/* After the data: the directory entry of a new segment. */
	if (p->sync_dir && (r = v->fsync_dir(v, dir)) < 0 && !p->err)
		p->err = r;
}

int seg_sync_end(seg_writer *w, seg_sync_plan *p, seg_err *e)
{
	int i;

	for (i = 0; i < p->close_upto; i++)
		w->vfs->close(w->vfs, p->fds[i]);
	if (!p->err) {
		if (p->target_seq > w->synced_seq)
			w->synced_seq = p->target_seq;
		if (p->hint)
			synced_hint_store(w, p->hint_base, p->hint_salt);
		return 0;
	}
	w->sync_failed++;
	/* A segment this round did not make durable may be older than the
	 * next round's newest: no hint from this process any more. */
	w->hint_off = 1;
	if (p->failed_fd < 0) {
		w->dir_dirty = 1; /* the directory fsync failed: try it again */
	} else if (p->failed_fd == w->fd) {
		/* The kernel may have dropped this segment's dirty pages and
		 * marked them clean; a second fdatasync would "succeed" without
		 * them. Seal it as suspect: the next append starts a new
		 * segment. */
		w->suspect = 1;
	}
	return seg_fail_errno(e, p->err, "fdatasync in %s", w->dir);
}

int seg_writer_close(seg_writer *w, seg_err *e)
{
	seg_sync_plan p;
	int r = 0;

	if (seg_sync_begin(w, &p)) {
		seg_sync_run(w->vfs, w->dir, &p);
		r = seg_sync_end(w, &p, e);
	}
	seg_spare_discard(w->vfs, w->dir, &w->spare);
	unmap_active(w);
	while (w->n_retired > 0) {
		w->n_retired--;
		w->vfs->munmap(w->vfs, w->retired[w->n_retired], w->retired_size[w->n_retired]);
	}
	if (w->fd >= 0)
		w->vfs->close(w->vfs, w->fd);
	w->fd = -1;
	while (w->n_sealed > 0)
		w->vfs->close(w->vfs, w->sealed_fd[--w->n_sealed]);
	return r;
}
