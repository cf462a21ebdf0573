/*
 * seg_scan.c - walk and verify the frames of one in-memory segment.
 */
#include "seg_scan.h"

#include <string.h>

int seg_scan_init(seg_scan *s, const uint8_t *buf, size_t size, int deep)
{
	int r;

	memset(s, 0, sizeof(*s));
	s->buf = buf;
	s->size = size;
	s->deep = deep;
	s->pos = SEG_HEADER_SIZE;
	if (size < SEG_HEADER_SIZE)
		return SEG_SHORT;
	r = seg_header_decode(buf, &s->hdr);
	if (r == SEG_OK)
		seg_frame_secret(s->hdr.salt, s->secret);
	return r;
}

/* Offset just past the last non-zero byte in [from, size), or from. */
static size_t last_nonzero(const seg_scan *s, size_t from)
{
	size_t end = s->size;

	/* Word-at-a-time from the end: the tail of a fresh segment is
	 * megabytes of zeros. */
	while (end > from && (end & 7))
		if (s->buf[--end])
			return end + 1;
	while (end - from >= 8) {
		uint64_t w;
		memcpy(&w, s->buf + end - 8, 8);
		if (w)
			break;
		end -= 8;
	}
	while (end > from)
		if (s->buf[--end])
			return end + 1;
	return from;
}

/* Is there a frame at off that the scan would accept? */
static int frame_at(const seg_scan *s, size_t off, seg_frame *f)
{
	uint32_t len;

	if (s->size - off < SEG_FRAME_HEADER)
		return 0;
	/* Cheap filters before the checksum: most offsets fail here. */
	len = seg_get32(s->buf + off + 4);
	if (len == 0 || len > SEG_MAX_PAYLOAD || len > s->size - off - SEG_FRAME_HEADER)
		return 0;
	if (seg_frame_check(s->buf + off, s->size - off, &s->hdr, s->secret, f) != SEG_OK)
		return 0;
	if (s->have_last && f->seq_delta <= s->last_delta)
		return 0;
	return 1;
}

/* Is there an end marker at off that the scan would accept (recycled
 * segments only: one this segment's salt made, above the last frame)? */
static int marker_at(const seg_scan *s, size_t off)
{
	uint32_t d;

	if (!seg_end_marker_at(s->buf + off, s->size - off, s->hdr.salt, &d))
		return 0;
	return !s->have_last || d > s->last_delta;
}

/* Recycled segment: first offset > from holding an acceptable frame
 * (*is_marker 0) or end marker (*is_marker 1), or 0. What lies beyond a
 * marker is a previous life's and is never searched. */
static size_t resync_recycled(const seg_scan *s, size_t from, seg_frame *f, int *is_marker)
{
	size_t off;

	for (off = from + 1; off + SEG_FRAME_HEADER <= s->size; off++) {
		if (marker_at(s, off)) {
			*is_marker = 1;
			return off;
		}
		if (frame_at(s, off, f)) {
			*is_marker = 0;
			return off;
		}
	}
	return 0;
}

/* First offset > from holding an acceptable frame, or 0. */
static size_t resync(const seg_scan *s, size_t from, seg_frame *f)
{
	size_t off;

	for (off = from + 1; off + SEG_FRAME_HEADER <= s->size; off++)
		if (frame_at(s, off, f))
			return off;
	return 0;
}

/* Accept *f, found at pos: the scan moves past it. */
static int take(seg_scan *s, size_t pos, seg_frame *f)
{
	f->offset = pos;
	s->pos = pos + SEG_FRAME_HEADER + f->len;
	s->have_last = 1;
	s->last_delta = f->seq_delta;
	return SEG_SCAN_FRAME;
}

/* A valid frame was found at next > pos, so in a live segment the frame at
 * pos may have been completed by the writer while we searched (it writes
 * frames in order, so a valid frame after pos means the one at pos is
 * finished too). Look again before calling [pos, next) damage. The fence
 * pairs with the writer's release fence between payload and header. */
static int settle(seg_scan *s, size_t pos, size_t next, seg_frame *f, uint64_t *doff,
		  uint64_t *dlen)
{
	seg_frame g;

	SEG_FENCE_ACQUIRE();
	if (seg_frame_check(s->buf + pos, s->size - pos, &s->hdr, s->secret, &g) == SEG_OK &&
	    (!s->have_last || g.seq_delta > s->last_delta)) {
		*f = g;
		return take(s, pos, f);
	}
	*doff = pos;
	*dlen = next - pos;
	s->pos = next;
	return SEG_SCAN_DAMAGE;
}

int seg_scan_next(seg_scan *s, seg_frame *f, uint64_t *doff, uint64_t *dlen)
{
	size_t pos = s->pos, next, end;
	int r;

	if (pos >= s->size)
		return SEG_SCAN_END;
	if (s->hdr.version == SEG_VERSION_RECYCLED) {
		/* The end marker ends the data; a remainder too short for a
		 * frame holds nothing (the writer keeps no marker there). */
		if (s->size - pos < SEG_FRAME_HEADER || marker_at(s, pos))
			return SEG_SCAN_END;
	}
	r = seg_frame_check(s->buf + pos, s->size - pos, &s->hdr, s->secret, f);
	if (r == SEG_OK && (!s->have_last || f->seq_delta > s->last_delta))
		return take(s, pos, f);
	if (s->hdr.version == SEG_VERSION_RECYCLED) {
		int is_marker = 0;
		next = resync_recycled(s, pos, f, &is_marker);
		if (next && !is_marker)
			return settle(s, pos, next, f, doff, dlen);
		/* No valid frame before the next end marker (or the end of
		 * the file): a frame being written, or a torn last write. Its
		 * extent cannot be told from the previous life's bytes after
		 * it: reported up to the marker, or to the end of the file. */
		*doff = pos;
		*dlen = (next ? next : s->size) - pos;
		return SEG_SCAN_TAIL;
	}
	if (r == SEG_END) {
		/* A zero header ends the data, unless something lies beyond it:
		 * a zeroed block in the middle of a file (some file systems leave
		 * one after a power cut), or a frame whose payload is being
		 * copied in right now (header still zero). The remainder is
		 * checked once per position: the writer only ever writes at pos
		 * first. */
		if (s->zero_from == pos)
			return SEG_SCAN_END;
		end = last_nonzero(s, pos);
		if (end == pos) {
			s->zero_from = pos;
			return SEG_SCAN_END;
		}
	}
	next = resync(s, pos, f);
	if (next)
		return settle(s, pos, next, f, doff, dlen);
	end = last_nonzero(s, pos);
	if (end == pos)
		return SEG_SCAN_END; /* e.g. a short all-zero remainder */
	*doff = pos;
	*dlen = end - pos;
	return SEG_SCAN_TAIL;
}
