/*
 * seg_scan.h - walk the frames of one segment held in memory (a mapping of
 * the file), verifying each, and resynchronise past damage.
 *
 * The scanner never trusts a length field it has not checked: a frame is
 * accepted only if its checksum (seeded with the segment's salt) matches,
 * and its sequence number is above the previous frame's. After a bad frame
 * it searches forward, byte by byte, for the next frame that passes, so one
 * flipped bit costs one record, not the rest of the segment (LevelDB's log
 * reader and Kafka's recovery do the same).
 *
 * A recycled segment (format version 2) ends at its end marker, not at
 * zeros: the search stops at the first valid frame or valid marker, and
 * never looks past a marker (a previous life's bytes lie there).
 */
#ifndef SEG_SCAN_H
#define SEG_SCAN_H

#include "seg_format.h"

typedef struct seg_scan {
	const uint8_t *buf; /* the whole file, header included */
	size_t size;        /* bytes readable in buf */
	seg_header hdr;
	uint8_t secret[SEG_SECRET_SIZE]; /* the frame hash's, from hdr.salt */
	size_t pos;                      /* offset of the next frame to examine */
	int have_last;                   /* a frame was accepted already */
	uint32_t last_delta;
	int deep;         /* for the caller: the segment is complete, so an
	                    * invalid tail is damage (the scan returns the same) */
	size_t zero_from; /* everything from here on was found zero (0: unknown) */
} seg_scan;

enum {
	SEG_SCAN_FRAME = 0,  /* *f is the next valid frame; pos moved past it */
	SEG_SCAN_DAMAGE = 1, /* [*doff, *doff + *dlen) is damaged; a valid frame
	                      * starts at pos (the next call returns it) */
	SEG_SCAN_END = 2,    /* clean end: zeros from pos to the end of buf
	                      * (version 2: an end marker at pos) */
	SEG_SCAN_TAIL = 3    /* bytes from pos to *doff + *dlen are invalid and no
	                      * valid frame follows (version 2: before the next
	                      * marker, or the end of buf): a torn tail, or a
	                      * frame being written right now; pos does not move */
};

/* Prepare a scan of buf (the whole segment file). Returns SEG_OK, or the
 * header's seg_header_decode() result (SEG_EMPTY / SEG_NEWER / SEG_BAD), or
 * SEG_SHORT when size < SEG_HEADER_SIZE. pos starts after the header. */
int seg_scan_init(seg_scan *s, const uint8_t *buf, size_t size, int deep);

/* The next step of the walk; see the enum above. */
int seg_scan_next(seg_scan *s, seg_frame *f, uint64_t *doff, uint64_t *dlen);

#endif
