/*
 * seg_cursor.c - the two-slot cursor file.
 *
 * Slot layout (CUR_SLOT_SIZE bytes, little endian):
 *   0  magic "ELCURSOR"        8
 *   8  version u32, flags u32  8
 *  16  generation u64
 *  24  acked_seq, last_seq, sent, failed, dropped, expired, corrupt,
 *      recovered, torn_tails, torn_bytes, cursor_resets, sync_failures,
 *      last_success_at           13 x u64
 * 128  gaps: 4 x (lo u64, hi u64)
 * 192  age_ms i64
 * 200  requeued u64, dead_expired u64
 * 216  reserved (zeros)
 * 252  checksum u32: XXH3-64 of bytes 0..251, low half
 */
#include "seg_cursor.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "seg_format.h"

#define CUR_MAGIC "ELCURSOR"
#define CUR_SUM_OFF (CUR_SLOT_SIZE - 4)

void cur_encode(const cur_state *c, uint8_t out[CUR_SLOT_SIZE])
{
	const uint64_t f[] = {c->acked_seq,
			      c->last_seq,
			      c->sent,
			      c->failed,
			      c->dropped,
			      c->expired,
			      c->corrupt,
			      c->recovered,
			      c->torn_tails,
			      c->torn_bytes,
			      c->cursor_resets,
			      c->sync_failures,
			      (uint64_t)c->last_success_at};
	size_t i;

	memset(out, 0, CUR_SLOT_SIZE);
	memcpy(out, CUR_MAGIC, 8);
	seg_put32(out + 8, CUR_FORMAT_VERSION);
	seg_put64(out + 16, c->generation);
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		seg_put64(out + 24 + 8 * i, f[i]);
	for (i = 0; i < CUR_MAX_GAPS; i++) {
		seg_put64(out + 128 + 16 * i, c->gap_lo[i]);
		seg_put64(out + 136 + 16 * i, c->gap_hi[i]);
	}
	seg_put64(out + 192, (uint64_t)c->age_ms);
	seg_put64(out + 200, c->requeued);
	seg_put64(out + 208, c->dead_expired);
	seg_put32(out + CUR_SUM_OFF, (uint32_t)XXH3_64bits(out, CUR_SUM_OFF));
}

int cur_decode(const uint8_t in[CUR_SLOT_SIZE], cur_state *c)
{
	uint64_t *f[] = {&c->acked_seq,
			 &c->last_seq,
			 &c->sent,
			 &c->failed,
			 &c->dropped,
			 &c->expired,
			 &c->corrupt,
			 &c->recovered,
			 &c->torn_tails,
			 &c->torn_bytes,
			 &c->cursor_resets,
			 &c->sync_failures,
			 (uint64_t *)&c->last_success_at};
	size_t i;

	for (i = 0; i < CUR_SLOT_SIZE && in[i] == 0; i++)
		;
	if (i == CUR_SLOT_SIZE)
		return SEG_EMPTY;
	if (memcmp(in, CUR_MAGIC, 8) != 0 ||
	    seg_get32(in + CUR_SUM_OFF) != (uint32_t)XXH3_64bits(in, CUR_SUM_OFF))
		return SEG_BAD;
	if (seg_get32(in + 8) > CUR_FORMAT_VERSION)
		return SEG_NEWER;
	memset(c, 0, sizeof(*c));
	c->generation = seg_get64(in + 16);
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		*f[i] = seg_get64(in + 24 + 8 * i);
	for (i = 0; i < CUR_MAX_GAPS; i++) {
		c->gap_lo[i] = seg_get64(in + 128 + 16 * i);
		c->gap_hi[i] = seg_get64(in + 136 + 16 * i);
		if (c->gap_hi[i] < c->gap_lo[i])
			c->gap_lo[i] = c->gap_hi[i] = 0; /* not a range: ignore */
	}
	c->age_ms = (int64_t)seg_get64(in + 192);
	c->requeued = seg_get64(in + 200);
	c->dead_expired = seg_get64(in + 208);
	/* Clocks out of the range the engine writes (FORMAT.md) are damage,
	 * as in a segment header: arithmetic on them could overflow. */
	if (c->age_ms < 0 || c->age_ms > SEG_TS_LIMIT_MS ||
	    c->last_success_at < -SEG_TS_LIMIT_MS / 1000 ||
	    c->last_success_at > SEG_TS_LIMIT_MS / 1000)
		return SEG_BAD;
	return SEG_OK;
}

/* ---- gaps --------------------------------------------------------------- */

void cur_gap_add(cur_state *c, uint64_t lo, uint64_t hi)
{
	int i, slot, merged;

	if (hi <= lo)
		return;
	/* Absorb every gap that overlaps or touches (lo, hi], until none
	 * does: the result may bridge two that did not touch each other. */
	do {
		merged = 0;
		for (i = 0; i < CUR_MAX_GAPS; i++) {
			if (!c->gap_hi[i] || c->gap_lo[i] > hi || lo > c->gap_hi[i])
				continue;
			if (c->gap_lo[i] < lo)
				lo = c->gap_lo[i];
			if (c->gap_hi[i] > hi)
				hi = c->gap_hi[i];
			c->gap_lo[i] = c->gap_hi[i] = 0;
			merged = 1;
		}
	} while (merged);
	slot = -1;
	for (i = 0; i < CUR_MAX_GAPS && slot < 0; i++)
		if (!c->gap_hi[i])
			slot = i;
	if (slot < 0) {
		/* Full: forget the lowest of the five (possibly the new one). */
		slot = 0;
		for (i = 1; i < CUR_MAX_GAPS; i++)
			if (c->gap_hi[i] < c->gap_hi[slot])
				slot = i;
		if (hi < c->gap_hi[slot])
			return;
	}
	c->gap_lo[slot] = lo;
	c->gap_hi[slot] = hi;
}

void cur_gaps_prune(cur_state *c)
{
	int i;

	for (i = 0; i < CUR_MAX_GAPS; i++) {
		if (c->gap_hi[i] <= c->acked_seq)
			c->gap_lo[i] = c->gap_hi[i] = 0;
		else if (c->gap_lo[i] < c->acked_seq)
			c->gap_lo[i] = c->acked_seq;
	}
}

void cur_gaps_normalize(cur_state *c)
{
	uint64_t lo[CUR_MAX_GAPS], hi[CUR_MAX_GAPS];
	int i;

	memcpy(lo, c->gap_lo, sizeof(lo));
	memcpy(hi, c->gap_hi, sizeof(hi));
	memset(c->gap_lo, 0, sizeof(c->gap_lo));
	memset(c->gap_hi, 0, sizeof(c->gap_hi));
	for (i = 0; i < CUR_MAX_GAPS; i++)
		cur_gap_add(c, lo[i], hi[i]);
}

uint64_t cur_stored_between(const cur_state *c, uint64_t a, uint64_t b)
{
	uint64_t n, lo, hi;
	int i;

	if (b <= a)
		return 0;
	n = b - a;
	for (i = 0; i < CUR_MAX_GAPS; i++) {
		lo = c->gap_lo[i] > a ? c->gap_lo[i] : a;
		hi = c->gap_hi[i] < b ? c->gap_hi[i] : b;
		if (hi > lo)
			n -= hi - lo < n ? hi - lo : n;
	}
	return n;
}

static int load_raw(const seg_vfs *v, const char *path, cur_state *c, int *how, seg_err *e)
{
	uint8_t buf[CUR_FILE_SIZE];
	cur_state s[2];
	int r[2], fd, i;
	ssize_t n;
	size_t got = 0;

	memset(c, 0, sizeof(*c));
	fd = v->open(v, path, O_RDONLY | O_NOFOLLOW, 0);
	if (fd == -ELOOP)
		return seg_fail(e, EDGELOG_EPERM, "%s is a symbolic link; not followed", path);
	if (fd == -ENOENT || fd == -ENOTDIR) {
		/* ENOTDIR: the "directory" is one segment file (dump PATH). */
		*how = CUR_MISSING;
		return 0;
	}
	if (fd < 0)
		return seg_fail_errno(e, fd, "open %s", path);
	memset(buf, 0, sizeof(buf));
	while (got < sizeof(buf)) {
		n = v->pread(v, fd, buf + got, sizeof(buf) - got, got);
		if (n < 0) {
			v->close(v, fd);
			return seg_fail_errno(e, (int)n, "read %s", path);
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	v->close(v, fd);
	if (got == 0) {
		*how = CUR_MISSING;
		return 0;
	}
	for (i = 0; i < 2; i++)
		r[i] = cur_decode(buf + i * CUR_SLOT_STRIDE, &s[i]);
	if (r[0] == SEG_NEWER || r[1] == SEG_NEWER)
		return seg_fail(e, EDGELOG_EVERSION,
				"%s: cursor written by a newer edgelog (format > %u)", path,
				CUR_FORMAT_VERSION);
	if (r[0] == SEG_OK && r[1] == SEG_OK) {
		i = s[1].generation > s[0].generation;
		*c = s[i];
		/* Consecutive generations are the normal state; a gap means
		 * the newer write of the other slot was lost. Either way the
		 * higher generation is the newest durable state. */
		*how = CUR_LOADED;
		return 0;
	}
	if (r[0] == SEG_OK || r[1] == SEG_OK) {
		i = r[1] == SEG_OK;
		*c = s[i];
		/* One slot empty: a file written once (normal). One slot bad:
		 * its write was torn, so the survivor is one generation old. */
		*how = (r[!i] == SEG_EMPTY) ? CUR_LOADED : CUR_FALLBACK;
		return 0;
	}
	*how = (r[0] == SEG_EMPTY && r[1] == SEG_EMPTY) ? CUR_MISSING : CUR_GARBAGE;
	return 0;
}

int cur_load(const seg_vfs *v, const char *path, cur_state *c, int *how, seg_err *e)
{
	int rc = load_raw(v, path, c, how, e);
	/* Older versions could record one gap several times. */
	if (!rc)
		cur_gaps_normalize(c);
	return rc;
}

int cur_open(const seg_vfs *v, const char *path, seg_err *e)
{
	/* Never through a symlink: a cursor slot written into someone
	 * else's file would overwrite it. */
	int fd = v->open(v, path, O_RDWR | O_CREAT | O_NOFOLLOW, 0600);
	if (fd == -ELOOP)
		return seg_fail(e, EDGELOG_EPERM, "%s is a symbolic link; not followed", path);
	if (fd < 0)
		return seg_fail_errno(e, fd, "open %s", path);
	return fd;
}

int cur_store(const seg_vfs *v, int fd, cur_state *c, seg_err *e)
{
	uint8_t slot[CUR_SLOT_SIZE];
	uint64_t off;
	ssize_t n;
	int r;

	c->generation++;
	cur_encode(c, slot);
	/* The slot of the older generation is overwritten; the newest
	 * valid one stays untouched until this write is durable. */
	off = (c->generation & 1) * CUR_SLOT_STRIDE;
	n = v->pwrite(v, fd, slot, sizeof(slot), off);
	if (n < 0) {
		c->generation--;
		return seg_fail_errno(e, (int)n, "write cursor");
	}
	if ((size_t)n != sizeof(slot)) {
		c->generation--;
		return seg_fail(e, EDGELOG_EIO, "write cursor: short write (%zd of %zu bytes)", n,
				sizeof(slot));
	}
	r = v->fsync(v, fd);
	if (r < 0) {
		c->generation--;
		return seg_fail_errno(e, r, "fdatasync cursor");
	}
	return 0;
}
