/*
 * eng_repair.c - edgelog_repair: put a damaged directory back in order.
 *
 * What it does, per segment file (oldest first), with the directory lock
 * held so no engine writes meanwhile:
 *
 *  - a header that does not verify (short file, zeros, damage, a base seq
 *    that is not the file's name): the whole file moves to quarantine/;
 *  - frames that do not verify in the middle: their bytes are copied to
 *    quarantine/<segment>.<offset>.bad, then the segment is rewritten with
 *    only the frames that verify (same header, so the same salt, base seq
 *    and base time: the frames are copied byte for byte and still verify)
 *    into a temporary file that is synced and renamed over the original;
 *  - an invalid tail (a torn last write in the newest segment, damage in an
 *    older one): its bytes are copied to quarantine/ and zeroed in place,
 *    as open's recovery does.
 *
 * Nothing is deleted: every byte that leaves segments/ is in quarantine/
 * (synced) before the segment changes. Files the engine already set aside
 * (segments/NNN.seg.bad) move to quarantine/ too, so segments/ holds only
 * the log. Seq ranges that no record holds any more are listed in
 * quarantine/lost-seqs (seg_lost.h) and, above the acked seq, in the
 * cursor's gaps, so `dump --verify` and the pending count know about them.
 *
 * The cursor: a damaged newest slot is rewritten from the older one; a
 * missing or unreadable cursor is rebuilt with acked_seq just below the
 * oldest segment, so every stored record is sent again (resending beats
 * losing), and last_seq above every seq a quarantined segment may have
 * handed out, so none is ever reused.
 *
 * Each step leaves a directory that opens; running repair again after a
 * crash finishes the job.
 *
 * Offers: edgelog_repair, eng_repair_vfs (eng_internal.h). Calls
 * eng_lock.c and eng_config.c, and segments/.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <edgelog.h>

#include "eng_internal.h"
#include "seg.h"

#define RP_PATH 4400
#define RP_SUFFIX ".repair" /* temporary rewrite of a segment or cursor */

typedef struct rp {
	const seg_vfs *v;
	const char *dir;
	char segdir[RP_PATH], qdir[RP_PATH], cursor_path[RP_PATH];
	int qdir_ready;
	edgelog_repair_report *rep;
	seg_err e;

	/* Seqs of the records kept, in order, for the lost ranges. */
	uint64_t last_kept;
	seg_ranges gaps;      /* [lo, hi] between kept records */
	uint64_t oldest_base; /* lowest base of any segment file seen (0: none) */
	/* The newest unreadable segment (floor_base) may have handed out seqs
	 * up to seq_floor. That matters only if no readable segment follows. */
	uint64_t floor_base, seq_floor;
	uint64_t newest_good; /* base of the newest readable segment */
	int64_t age_ms;       /* newest age clock found in a segment header */
	int changed;          /* something in segments/ was changed */
} rp;

static void act(rp *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void act(rp *r, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!r->rep->on_action)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	r->rep->on_action(r->rep->on_action_payload, line);
}

static int join(rp *r, char *out, const char *dir, const char *name)
{
	if (seg_path(out, RP_PATH, dir, name))
		return seg_fail(&r->e, EDGELOG_EINVAL, "path too long: %s/%s", dir, name);
	return 0;
}

/* ---- quarantine -------------------------------------------------------- */

/* Note that quarantine/ is in use (the report names it). */
static void quarantine_used(rp *r)
{
	r->qdir_ready = 1;
	seg_msg(r->rep->quarantine_dir, sizeof(r->rep->quarantine_dir), "%s", r->qdir);
}

static int write_all(rp *r, int fd, const void *buf, size_t len, uint64_t off, const char *path)
{
	return seg_write_all(r->v, fd, buf, len, off, path, &r->e);
}

/* Copy len bytes into a new quarantine file named after stem, synced
 * (seg_durable.h). The name chosen goes to name. */
static int quarantine_bytes(rp *r, const char *stem, const void *data, size_t len, char *name,
			    size_t namesz)
{
	int rc = seg_quarantine_bytes(r->v, r->dir, stem, data, len, name, namesz, &r->e);
	if (!rc)
		quarantine_used(r);
	return rc;
}

/* Move a whole file into quarantine/ (rename; both directories synced). */
static int quarantine_file(rp *r, const char *from_dir, const char *from, const char *stem,
			   char *name, size_t namesz)
{
	int rc = seg_quarantine_move(r->v, r->dir, from_dir, from, stem, name, namesz, &r->e);
	if (!rc)
		quarantine_used(r);
	return rc;
}

/* The highest seq an unreadable segment of this size may hold (a frame
 * takes at least 17 bytes). Its records may have been uploaded: if it is
 * the newest segment, none of those seqs is handed out again. */
static void bad_bound(rp *r, uint64_t base, uint64_t size)
{
	if (base < r->floor_base)
		return;
	r->floor_base = base;
	r->seq_floor =
		base +
		(size > SEG_HEADER_SIZE ? (size - SEG_HEADER_SIZE) / (SEG_FRAME_HEADER + 1) : 0);
}

/* A segment file that cannot be read moves out whole. */
static int quarantine_segment(rp *r, const char *file, uint64_t base, uint64_t size,
			      const char *why)
{
	char name[300];
	int rc;

	if ((rc = quarantine_file(r, r->segdir, file, file, name, sizeof(name))))
		return rc;
	bad_bound(r, base, size);
	if (!r->oldest_base || base < r->oldest_base)
		r->oldest_base = base;
	r->rep->bad_segments++;
	r->changed = 1;
	act(r, "bad segment: segments/%s (%llu bytes, %s) moved to %s/%s", file,
	    (unsigned long long)size, why, SEG_QUARANTINE_DIR, name);
	return 0;
}

/* A segment file of zeros only: created at a roll, and a power cut took
 * everything written to it. It never held a record, so it is neither
 * damage nor kept: removed as open's recovery removes it, counted nowhere.
 * Like open, no seq up to its base is handed out again. */
static int remove_stillborn(rp *r, const char *file, uint64_t base, uint64_t size)
{
	char path[RP_PATH];
	int rc;

	if ((rc = join(r, path, r->segdir, file)))
		return rc;
	if ((rc = r->v->unlink(r->v, path)) < 0)
		return seg_fail_errno(&r->e, rc, "unlink %s", path);
	if ((rc = r->v->fsync_dir(r->v, r->segdir)) < 0)
		return seg_fail_errno(&r->e, rc, "fsync directory %s", r->segdir);
	if (base >= r->floor_base) {
		r->floor_base = base;
		r->seq_floor = base > r->seq_floor ? base : r->seq_floor;
	}
	r->rep->segments--;
	r->changed = 1;
	act(r,
	    "stillborn: segments/%s (%llu bytes, all zeros: created at a roll, never written) "
	    "removed",
	    file, (unsigned long long)size);
	return 0;
}

/* ---- one segment ------------------------------------------------------- */

typedef struct span {
	uint64_t off, len;
} span;

static int keep_frame(rp *r, const seg_frame *f)
{
	if (f->seq <= r->last_kept && r->last_kept)
		return 0; /* a repeat, which readers skip too */
	if (r->last_kept && f->seq > r->last_kept + 1 &&
	    seg_ranges_add(&r->gaps, r->last_kept + 1, f->seq - 1))
		return seg_fail(&r->e, EDGELOG_ENOMEM, "out of memory");
	if (!r->rep->first_seq)
		r->rep->first_seq = f->seq;
	r->last_kept = f->seq;
	r->rep->last_seq = f->seq;
	r->rep->records++;
	return 0;
}

/* Rewrite path with the header and the valid frames of map only. */
static int rewrite_segment(rp *r, const char *name, const uint8_t *map, size_t size)
{
	char path[RP_PATH], tmp[RP_PATH], tmpname[SEG_NAME_LEN + 16];
	uint64_t doff, dlen, run_off = 0, run_len = 0, wpos = SEG_HEADER_SIZE;
	seg_scan sc;
	seg_frame f;
	int fd, rc, k;

	seg_msg(tmpname, sizeof(tmpname), "%s%s", name, RP_SUFFIX);
	if ((rc = join(r, path, r->segdir, name)) || (rc = join(r, tmp, r->segdir, tmpname)))
		return rc;
	/* A leftover of an interrupted repair (or anything planted there) is
	 * removed, never written through. */
	r->v->unlink(r->v, tmp);
	fd = r->v->open(r->v, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
	if (fd < 0)
		return seg_fail_errno(&r->e, fd, "create %s", tmp);
	seg_scan_init(&sc, map, size, 1);
	{
		/* A recycled segment's frames are rewritten with zeros after
		 * them: that is format version 1 (FORMAT.md). */
		uint8_t h[SEG_HEADER_SIZE];
		seg_header hd = sc.hdr;
		hd.version = SEG_VERSION_FRESH;
		seg_header_encode(&hd, h);
		rc = write_all(r, fd, h, SEG_HEADER_SIZE, 0, tmp);
	}
	while (!rc) {
		k = seg_scan_next(&sc, &f, &doff, &dlen);
		if (k == SEG_SCAN_DAMAGE)
			continue;
		if (k == SEG_SCAN_FRAME && run_len && f.offset == run_off + run_len) {
			run_len += SEG_FRAME_HEADER + f.len;
			continue;
		}
		/* Copy the run of contiguous valid frames so far. */
		if (run_len) {
			rc = write_all(r, fd, map + run_off, (size_t)run_len, wpos, tmp);
			wpos += run_len;
			run_len = 0;
		}
		if (k != SEG_SCAN_FRAME)
			break;
		run_off = f.offset;
		run_len = SEG_FRAME_HEADER + f.len;
	}
	/* Same size as before: the newest segment keeps its room to grow
	 * (zeros after the data, which is how the end is recognised). */
	if (!rc && (rc = r->v->ftruncate(r->v, fd, size)) < 0)
		rc = seg_fail_errno(&r->e, rc, "truncate %s", tmp);
	if (!rc && (rc = r->v->fsync(r->v, fd)) < 0)
		rc = seg_fail_errno(&r->e, rc, "fdatasync %s", tmp);
	r->v->close(r->v, fd);
	if (!rc && (rc = r->v->rename(r->v, tmp, path)) < 0)
		rc = seg_fail_errno(&r->e, rc, "rename %s to %s", tmp, path);
	if (!rc && (rc = r->v->fsync_dir(r->v, r->segdir)) < 0)
		rc = seg_fail_errno(&r->e, rc, "fsync directory %s", r->segdir);
	if (rc)
		r->v->unlink(r->v, tmp);
	return rc;
}

/* Zero [off, off + len) of fd and sync it. */
static int zero_range(rp *r, int fd, uint64_t off, uint64_t len, const char *path)
{
	static const uint8_t zeros[65536];
	size_t n;
	int rc;

	while (len) {
		n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		if ((rc = write_all(r, fd, zeros, n, off, path)))
			return rc;
		off += n;
		len -= n;
	}
	if ((rc = r->v->fsync(r->v, fd)) < 0)
		return seg_fail_errno(&r->e, rc, "fdatasync %s after zeroing its tail", path);
	return 0;
}

static int repair_segment(rp *r, uint64_t base, int newest)
{
	char name[SEG_NAME_LEN + 1], path[RP_PATH], stem[64], qname[300];
	uint64_t size = 0, doff, dlen;
	span tail = {0, 0}, *dmg = NULL;
	size_t n_dmg = 0, cap_dmg = 0, i;
	const uint8_t *map = NULL;
	int fd, rc, err = 0, s, k;
	seg_scan sc;
	seg_frame f;

	seg_name(name, base);
	if ((rc = join(r, path, r->segdir, name)))
		return rc;
	r->rep->segments++;
	fd = r->v->open(r->v, path, O_RDWR, 0);
	if (fd < 0)
		return seg_fail_errno(&r->e, fd, "open %s", path);
	if ((rc = r->v->fstat(r->v, fd, &size, NULL)) < 0) {
		r->v->close(r->v, fd);
		return seg_fail_errno(&r->e, rc, "fstat %s", path);
	}
	if (size < SEG_HEADER_SIZE) {
		uint8_t h[SEG_HEADER_SIZE];
		ssize_t n = r->v->pread(r->v, fd, h, (size_t)size, 0);
		r->v->close(r->v, fd);
		if (n >= 0 && seg_stillborn(h, (size_t)n))
			return remove_stillborn(r, name, base, size);
		return quarantine_segment(r, name, base, size, "shorter than a segment header");
	}
	map = r->v->mmap(r->v, fd, (size_t)size, 0, SEG_POPULATE_NONE, &err);
	if (!map) {
		r->v->close(r->v, fd);
		return seg_fail_errno(&r->e, err, "mmap %s", path);
	}
	s = seg_scan_init(&sc, map, (size_t)size, 1);
	if (s == SEG_NEWER) {
		rc = seg_fail(&r->e, EDGELOG_EVERSION,
			      "%s: written by a newer edgelog (segment format > %u); not touched",
			      path, SEG_FORMAT_VERSION);
		goto out;
	}
	if (s == SEG_EMPTY && seg_stillborn(map, (size_t)size)) {
		r->v->munmap(r->v, (void *)map, (size_t)size);
		r->v->close(r->v, fd);
		return remove_stillborn(r, name, base, size);
	}
	if (s != SEG_OK || sc.hdr.base_seq != base) {
		char why[96];
		if (s == SEG_EMPTY)
			seg_msg(why, sizeof(why), "header all zeros: never written");
		else if (s != SEG_OK)
			seg_msg(why, sizeof(why), "header damaged");
		else
			seg_msg(why, sizeof(why), "header says base seq %llu",
				(unsigned long long)sc.hdr.base_seq);
		r->v->munmap(r->v, (void *)map, (size_t)size);
		r->v->close(r->v, fd);
		return quarantine_segment(r, name, base, size, why);
	}
	if (!r->oldest_base || base < r->oldest_base)
		r->oldest_base = base;
	if (base > r->newest_good)
		r->newest_good = base;
	if (sc.hdr.age_ms > r->age_ms)
		r->age_ms = sc.hdr.age_ms;

	/* First pass: what verifies, what does not. */
	for (;;) {
		k = seg_scan_next(&sc, &f, &doff, &dlen);
		if (k == SEG_SCAN_FRAME) {
			if ((rc = keep_frame(r, &f)))
				goto out;
		} else if (k == SEG_SCAN_DAMAGE) {
			if (n_dmg == cap_dmg) {
				span *nd;
				cap_dmg = cap_dmg ? cap_dmg * 2 : 8;
				nd = realloc(dmg, cap_dmg * sizeof(*nd));
				if (!nd) {
					rc = seg_fail(&r->e, EDGELOG_ENOMEM, "%s: out of memory",
						      path);
					goto out;
				}
				dmg = nd;
			}
			dmg[n_dmg].off = doff;
			dmg[n_dmg++].len = dlen;
		} else {
			if (k == SEG_SCAN_TAIL) {
				tail.off = doff;
				tail.len = dlen;
			}
			break;
		}
	}
	if (!n_dmg && !tail.len) {
		rc = 0;
		goto out;
	}

	/* Every byte that is about to leave the segment goes to quarantine/
	 * first, synced, and the directory entries with it. */
	for (i = 0; i < n_dmg; i++) {
		seg_msg(stem, sizeof(stem), "%s.%llu", name, (unsigned long long)dmg[i].off);
		if ((rc = quarantine_bytes(r, stem, map + dmg[i].off, (size_t)dmg[i].len, qname,
					   sizeof(qname))))
			goto out;
		r->rep->damaged_ranges++;
		r->rep->damaged_bytes += dmg[i].len;
		act(r, "damaged: segments/%s offset %llu, %llu bytes moved to %s/%s", name,
		    (unsigned long long)dmg[i].off, (unsigned long long)dmg[i].len,
		    SEG_QUARANTINE_DIR, qname);
	}
	if (tail.len) {
		seg_msg(stem, sizeof(stem), "%s.%llu", name, (unsigned long long)tail.off);
		if ((rc = quarantine_bytes(r, stem, map + tail.off, (size_t)tail.len, qname,
					   sizeof(qname))))
			goto out;
		if (newest) {
			/* An incomplete last write: what open's recovery does. */
			r->rep->torn_tails++;
			r->rep->torn_bytes += tail.len;
			act(r,
			    "torn tail: segments/%s offset %llu, %llu bytes saved to %s/%s and "
			    "zeroed",
			    name, (unsigned long long)tail.off, (unsigned long long)tail.len,
			    SEG_QUARANTINE_DIR, qname);
		} else {
			/* A sealed segment was complete: this is damage. */
			r->rep->damaged_ranges++;
			r->rep->damaged_bytes += tail.len;
			act(r, "damaged tail: segments/%s offset %llu, %llu bytes moved to %s/%s",
			    name, (unsigned long long)tail.off, (unsigned long long)tail.len,
			    SEG_QUARANTINE_DIR, qname);
		}
	}
	r->changed = 1;
	if (n_dmg) {
		rc = rewrite_segment(r, name, map, (size_t)size);
		if (!rc)
			act(r, "rewrote segments/%s with only the frames that verify", name);
	} else if (sc.hdr.version == SEG_VERSION_RECYCLED) {
		/* Zeros do not end a recycled segment's data: an end marker
		 * where the torn write starts does (what open's recovery does). */
		uint8_t m[SEG_FRAME_HEADER];
		seg_end_marker(m, sc.hdr.salt, sc.have_last ? sc.last_delta + 1 : 0);
		rc = write_all(r, fd, m, sizeof(m), tail.off, path);
		if (!rc && (rc = r->v->fsync(r->v, fd)) < 0)
			rc = seg_fail_errno(&r->e, rc, "fdatasync %s after marking its end", path);
	} else {
		rc = zero_range(r, fd, tail.off, tail.len, path);
	}
out:
	free(dmg);
	r->v->munmap(r->v, (void *)map, (size_t)size);
	r->v->close(r->v, fd);
	return rc;
}

/* ---- files the engine set aside --------------------------------------- */

typedef struct bad_list {
	char (*names)[64];
	size_t n, cap;
	int oom;
} bad_list;

static int collect_bad(void *ud, const char *name)
{
	bad_list *b = ud;
	size_t len = strlen(name);
	uint64_t base;
	char seg[SEG_NAME_LEN + 1];

	/* NNN.seg.bad, as open's recovery names them. */
	if (len != SEG_NAME_LEN + 4 || strcmp(name + SEG_NAME_LEN, ".bad"))
		return 0;
	memcpy(seg, name, SEG_NAME_LEN);
	seg[SEG_NAME_LEN] = '\0';
	if (!seg_name_parse(seg, &base))
		return 0;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 8;
		char(*nn)[64] = realloc(b->names, cap * sizeof(*nn));
		if (!nn) {
			b->oom = 1;
			return 1;
		}
		b->names = nn;
		b->cap = cap;
	}
	memcpy(b->names[b->n++], name, len + 1);
	return 0;
}

static int move_engine_bad(rp *r)
{
	bad_list b = {0};
	char path[RP_PATH], name[300], seg[SEG_NAME_LEN + 1];
	uint64_t size = 0, base;
	size_t i;
	int rc;

	rc = r->v->list(r->v, r->segdir, collect_bad, &b);
	if (rc < 0 && rc != -ENOENT) {
		free(b.names);
		return seg_fail_errno(&r->e, rc, "list %s", r->segdir);
	}
	if (b.oom) {
		free(b.names);
		return seg_fail(&r->e, EDGELOG_ENOMEM, "list %s: out of memory", r->segdir);
	}
	for (i = 0, rc = 0; i < b.n && !rc; i++) {
		memcpy(seg, b.names[i], SEG_NAME_LEN);
		seg[SEG_NAME_LEN] = '\0';
		seg_name_parse(seg, &base);
		/* The size bounds the sequence numbers the file may hold: a
		 * file that cannot be measured stops the repair. */
		if (!join(r, path, r->segdir, b.names[i]) &&
		    (rc = r->v->stat(r->v, path, &size, NULL)) < 0) {
			rc = seg_fail_errno(&r->e, rc, "stat %s", path);
			break;
		}
		if ((rc = quarantine_file(r, r->segdir, b.names[i], seg, name, sizeof(name))))
			break;
		bad_bound(r, base, size);
		if (!r->oldest_base || base < r->oldest_base)
			r->oldest_base = base;
		r->rep->bad_segments++;
		r->changed = 1;
		act(r,
		    "bad segment: segments/%s (set aside by the engine, %llu bytes) moved to "
		    "%s/%s",
		    b.names[i], (unsigned long long)size, SEG_QUARANTINE_DIR, name);
	}
	free(b.names);
	return rc;
}

/* ---- lost ranges -------------------------------------------------------- */

/* Read quarantine/lost-seqs into out (a missing file is empty). */
static int load_lost(rp *r, seg_ranges *out)
{
	char path[RP_PATH];
	uint64_t size = 0;
	char *buf;
	ssize_t n;
	size_t got = 0;
	int fd, rc;

	if ((rc = join(r, path, r->qdir, SEG_LOST_FILE)))
		return rc;
	fd = r->v->open(r->v, path, O_RDONLY | O_NOFOLLOW, 0);
	if (fd == -ENOENT || fd == -ENOTDIR)
		return 0;
	if (fd < 0)
		return seg_fail_errno(&r->e, fd, "open %s", path);
	r->v->fstat(r->v, fd, &size, NULL);
	if (size > SEG_LOST_MAX_BYTES)
		size = SEG_LOST_MAX_BYTES;
	buf = malloc((size_t)size + 1);
	if (!buf) {
		r->v->close(r->v, fd);
		return seg_fail(&r->e, EDGELOG_ENOMEM, "%s: out of memory", path);
	}
	while (got < size && (n = r->v->pread(r->v, fd, buf + got, (size_t)size - got, got)) > 0)
		got += (size_t)n;
	r->v->close(r->v, fd);
	rc = seg_lost_parse(buf, got, out) ? seg_fail(&r->e, EDGELOG_ENOMEM, "out of memory") : 0;
	free(buf);
	return rc;
}

/* Gaps between kept records that neither the acks, the cursor's gaps nor
 * lost-seqs explain: append them to lost-seqs (synced) and to the
 * cursor's gaps. */
static int record_lost(rp *r, cur_state *c, int cursor_valid)
{
	seg_ranges known = {0};
	char path[RP_PATH], line[128];
	uint64_t a, b, size = 0;
	size_t i;
	int fd = -1, rc, len, i2;

	if ((rc = load_lost(r, &known)))
		goto out;
	if (cursor_valid) {
		if (c->acked_seq && seg_ranges_add(&known, 1, c->acked_seq))
			goto oom;
		for (i2 = 0; i2 < CUR_MAX_GAPS; i2++)
			if (c->gap_hi[i2] &&
			    seg_ranges_add(&known, c->gap_lo[i2] + 1, c->gap_hi[i2]))
				goto oom;
	}
	for (i = 0; i < r->gaps.n; i++) {
		uint64_t from = r->gaps.lo[i];
		while (from <= r->gaps.hi[i] &&
		       seg_ranges_uncovered(&known, from, r->gaps.hi[i], &a, &b)) {
			if (fd < 0) {
				if ((rc = seg_mkdir_durable(r->v, r->qdir, 0700, &r->e)) < 0 ||
				    (rc = join(r, path, r->qdir, SEG_LOST_FILE)))
					goto out;
				quarantine_used(r);
				/* Never through a symlink planted at the name. */
				fd = r->v->open(r->v, path, O_RDWR | O_CREAT | O_NOFOLLOW, 0600);
				if (fd < 0) {
					rc = seg_fail_errno(&r->e, fd, "open %s", path);
					goto out;
				}
				r->v->fstat(r->v, fd, &size, NULL);
				if (size == 0) {
					static const char head[] =
						"# seq ranges no stored record holds (LO HI "
						"inclusive), written by edgelog repair\n";
					if ((rc = write_all(r, fd, head, sizeof(head) - 1, 0,
							    path)))
						goto out;
					size = sizeof(head) - 1;
				}
			}
			len = snprintf(line, sizeof(line), "%llu %llu damaged or missing\n",
				       (unsigned long long)a, (unsigned long long)b);
			if ((rc = write_all(r, fd, line, (size_t)len, size, path)))
				goto out;
			size += (uint64_t)len;
			if (seg_ranges_add(&known, a, b))
				goto oom;
			if (b > c->acked_seq)
				cur_gap_add(c, (a > c->acked_seq ? a : c->acked_seq + 1) - 1, b);
			r->rep->lost_seq_ranges++;
			act(r,
			    "lost: seq %llu..%llu (%llu record%s) no longer stored; recorded in "
			    "%s/%s",
			    (unsigned long long)a, (unsigned long long)b,
			    (unsigned long long)(b - a + 1), b == a ? "" : "s", SEG_QUARANTINE_DIR,
			    SEG_LOST_FILE);
			if (b == r->gaps.hi[i])
				break;
			from = b + 1;
		}
	}
	if (fd >= 0) {
		if ((rc = r->v->fsync(r->v, fd)) < 0) {
			rc = seg_fail_errno(&r->e, rc, "fdatasync %s", path);
			goto out;
		}
		if ((rc = r->v->fsync_dir(r->v, r->qdir)) < 0) {
			rc = seg_fail_errno(&r->e, rc, "fsync directory %s", r->qdir);
			goto out;
		}
	}
	rc = 0;
	goto out;
oom:
	rc = seg_fail(&r->e, EDGELOG_ENOMEM, "out of memory");
out:
	if (fd >= 0)
		r->v->close(r->v, fd);
	seg_ranges_free(&known);
	return rc;
}

/* ---- the cursor --------------------------------------------------------- */

/* Write a fresh cursor file (both slots valid, consecutive generations)
 * beside the old one and rename it over (seg_write_atomic): the old file
 * stays whole until the new one is durable. */
static int write_new_cursor(rp *r, cur_state *c)
{
	uint8_t buf[CUR_SLOT_STRIDE + CUR_SLOT_SIZE];
	int i;

	memset(buf, 0, sizeof(buf));
	for (i = 0; i < 2; i++) {
		c->generation++;
		cur_encode(c, buf + (c->generation & 1) * CUR_SLOT_STRIDE);
	}
	return seg_write_atomic(r->v, r->cursor_path, buf, sizeof(buf), 0600, r->dir, &r->e);
}

/* The unreadable cursor file, whole and as found, into quarantine/:
 * moved, not copied. Damage can give it any size (a sparse terabyte), and
 * a copy read it into memory whole. Until write_new_cursor's rename the
 * directory has no cursor, which an open or a repair reads as missing:
 * the same state as an unreadable one (nothing acknowledged). */
static int save_cursor_file(rp *r)
{
	char name[300];

	return quarantine_file(r, r->dir, CUR_FILE, CUR_FILE, name, sizeof(name));
}

static int fix_cursor(rp *r, cur_state *c, int how)
{
	int rc, fd;
	uint64_t hw, bad_hi = r->floor_base > r->newest_good ? r->seq_floor : 0;

	if (how == CUR_MISSING || how == CUR_GARBAGE) {
		if (!r->rep->segments && !r->rep->bad_segments && !r->rep->lost_seq_ranges)
			return 0; /* an empty log needs no cursor yet */
		if (how == CUR_GARBAGE && (rc = save_cursor_file(r)))
			return rc;
		/* Nothing is known to be acknowledged: everything from the
		 * oldest segment on is sent again. *c is all zeros (cur_load)
		 * but for the gaps record_lost() just added. */
		c->acked_seq = r->oldest_base ? r->oldest_base - 1 : 0;
		c->age_ms = r->age_ms;
		c->cursor_resets = 1;
	} else if (how == CUR_FALLBACK) {
		c->cursor_resets++;
	} else if (!r->changed && !r->rep->lost_seq_ranges && c->last_seq >= bad_hi) {
		return 0; /* nothing to record */
	}
	r->rep->cursor_rebuilt = how != CUR_LOADED;
	c->corrupt += r->rep->damaged_ranges + r->rep->bad_segments;
	c->torn_tails += r->rep->torn_tails;
	c->torn_bytes += r->rep->torn_bytes;
	/* Never hand out a seq that may exist already. */
	hw = r->last_kept > bad_hi ? r->last_kept : bad_hi;
	if (c->last_seq < hw)
		c->last_seq = hw;
	if (how == CUR_MISSING || how == CUR_GARBAGE) {
		rc = write_new_cursor(r, c);
		if (!rc)
			act(r,
			    "cursor: %s; rebuilt with acked_seq %llu (every stored record will be "
			    "sent again), last_seq %llu%s",
			    how == CUR_MISSING ? "missing" : "unreadable",
			    (unsigned long long)c->acked_seq, (unsigned long long)c->last_seq,
			    how == CUR_GARBAGE ? "; the old file saved to quarantine/" : "");
		return rc;
	}
	/* Loaded (or one slot good): store the next generation. That
	 * overwrites the older or damaged slot and leaves the good one until
	 * the new one is durable. */
	fd = cur_open(r->v, r->cursor_path, &r->e);
	if (fd < 0)
		return fd;
	rc = cur_store(r->v, fd, c, &r->e);
	r->v->close(r->v, fd);
	if (!rc && how == CUR_FALLBACK)
		act(r,
		    "cursor: newest slot damaged; rewritten from the older slot (acked_seq %llu)",
		    (unsigned long long)c->acked_seq);
	else if (!rc)
		act(r, "cursor: counters and gaps updated (acked_seq %llu kept)",
		    (unsigned long long)c->acked_seq);
	return rc;
}

/* ---- the whole directory ----------------------------------------------- */

static int repair_dir(rp *r)
{
	seg_list l = {0};
	cur_state cur;
	int how = CUR_MISSING, rc;
	size_t i;

	/* Refuse before changing anything if the cursor is from a newer
	 * format (cur_load says so). */
	if ((rc = cur_load(r->v, r->cursor_path, &cur, &how, &r->e)))
		return rc;
	if ((rc = seg_list_read(r->v, r->segdir, &l, &r->e)))
		return rc;
	/* Same for segments: look at every header first. */
	for (i = 0; i < l.n; i++) {
		char name[SEG_NAME_LEN + 1], path[RP_PATH];
		uint8_t h[SEG_HEADER_SIZE];
		seg_header hd;
		int fd;
		ssize_t n;
		seg_name(name, l.base[i]);
		if ((rc = join(r, path, r->segdir, name)))
			goto out;
		fd = r->v->open(r->v, path, O_RDONLY, 0);
		if (fd < 0) {
			rc = seg_fail_errno(&r->e, fd, "open %s", path);
			goto out;
		}
		n = r->v->pread(r->v, fd, h, sizeof(h), 0);
		r->v->close(r->v, fd);
		if (n == (ssize_t)sizeof(h) && seg_header_decode(h, &hd) == SEG_NEWER) {
			rc = seg_fail(&r->e, EDGELOG_EVERSION,
				      "%s: written by a newer edgelog (segment format > %u); "
				      "nothing changed",
				      path, SEG_FORMAT_VERSION);
			goto out;
		}
	}
	/* Leftovers of an interrupted repair: copies of valid frames only
	 * (the originals were never changed before the rename). */
	for (i = 0; i < l.n; i++) {
		char name[SEG_NAME_LEN + 16], path[RP_PATH];
		seg_name(name, l.base[i]);
		strcat(name, RP_SUFFIX);
		if (!join(r, path, r->segdir, name))
			r->v->unlink(r->v, path);
	}
	for (i = 0; i < l.n; i++)
		if ((rc = repair_segment(r, l.base[i], i + 1 == l.n)))
			goto out;
	if ((rc = move_engine_bad(r)))
		goto out;
	if ((rc = record_lost(r, &cur, how == CUR_LOADED || how == CUR_FALLBACK)))
		goto out;
	rc = fix_cursor(r, &cur, how);
	/* A cursor rewrite interrupted before its rename. */
	if (!rc) {
		char tmp[RP_PATH];
		if (!join(r, tmp, r->dir, CUR_FILE ".tmp"))
			r->v->unlink(r->v, tmp);
	}
out:
	seg_list_free(&l);
	return rc;
}

/* edgelog_repair on a given I/O seam (the tests pass fault injectors).
 * Its prototype belongs in eng_internal.h beside eng_open_vfs; until it is
 * there, check_repair.c declares it too. */

int edgelog_repair(const char *dir, edgelog_repair_report *report)
{
	return eng_repair_vfs(seg_vfs_posix(), dir, report);
}

int eng_repair_vfs(const seg_vfs *v, const char *dir, edgelog_repair_report *report)
{
	edgelog_repair_report local;
	rp r;
	uint64_t size;
	int lock_fd[2] = {-1, -1}, rc, has_seg, has_cur;

	if (!report) {
		memset(&local, 0, sizeof(local));
		report = &local;
	} else {
		/* The only inputs in *report: keep them across the reset. */
		void (*fn)(void *, const char *) = report->on_action;
		void *payload = report->on_action_payload;
		memset(report, 0, sizeof(*report));
		report->on_action = fn;
		report->on_action_payload = payload;
	}
	if (!dir || !*dir)
		return eng_tls_error(EDGELOG_EINVAL, "edgelog_repair: no directory given");
	memset(&r, 0, sizeof(r));
	r.v = v;
	r.dir = dir;
	r.rep = report;
	if ((rc = join(&r, r.segdir, dir, ENG_SEGMENTS_DIR)) ||
	    (rc = join(&r, r.qdir, dir, SEG_QUARANTINE_DIR)) ||
	    (rc = join(&r, r.cursor_path, dir, CUR_FILE))) {
		eng_tls_set(r.e.msg);
		return rc;
	}
	if (r.v->stat(r.v, dir, &size, NULL) < 0)
		return eng_tls_error(EDGELOG_ENOTFOUND, "%s: no such directory", dir);
	has_seg = r.v->stat(r.v, r.segdir, &size, NULL) == 0;
	has_cur = r.v->stat(r.v, r.cursor_path, &size, NULL) == 0;
	if (!has_seg && !has_cur)
		return eng_tls_error(EDGELOG_ENOTFOUND,
				     "%s is not an edgelog directory (no segments/, no cursor)",
				     dir);
	if ((rc = eng_take_lock(r.v, r.dir, lock_fd, &r.e))) {
		eng_tls_set(r.e.msg);
		return rc;
	}
	rc = repair_dir(&r);
	seg_ranges_free(&r.gaps);
	eng_drop_lock(r.v, lock_fd);
	if (rc) {
		eng_tls_set(r.e.msg);
		return rc;
	}
	eng_tls_error(0,
		      "%s: %llu segment(s), %llu record(s) kept, %llu torn tail(s), %llu damaged "
		      "range(s), %llu bad segment(s), %llu lost seq range(s)%s",
		      dir, (unsigned long long)report->segments,
		      (unsigned long long)report->records, (unsigned long long)report->torn_tails,
		      (unsigned long long)report->damaged_ranges,
		      (unsigned long long)report->bad_segments,
		      (unsigned long long)report->lost_seq_ranges,
		      report->cursor_rebuilt ? ", cursor rebuilt" : "");
	return 0;
}
