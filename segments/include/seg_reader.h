/*
 * seg_reader.h - read records in sequence order across the segment files
 * of a directory, or from one segment file.
 *
 * Read-only and lock-free: it works on a directory an engine is writing.
 * Each segment is mapped read-only in turn (one mapping at a time, so memory
 * does not grow with the backlog). Damage is skipped and reported through
 * a callback; the end of the newest segment is EOF, and a later call picks
 * up records appended since.
 */
#ifndef SEG_READER_H
#define SEG_READER_H

#include <stddef.h>
#include <stdint.h>

#include "seg_err.h"
#include "seg_format.h"
#include "seg_scan.h"
#include "seg_vfs.h"

typedef void (*seg_damage_fn)(void *ud, const char *segment, uint64_t offset, uint64_t len,
			      const char *reason);

typedef struct seg_reader {
	const seg_vfs *vfs;
	char dir[4096];
	char file[SEG_NAME_LEN + 8]; /* single-file mode: its name */
	int single;                  /* reading one file, not a directory */

	uint64_t want_seq; /* next record returned has seq >= this */
	uint64_t last_seq; /* last returned (0: none) */

	int fd;
	const uint8_t *map;
	size_t size;
	uint64_t cur_base; /* base of the open segment */
	char name[SEG_NAME_LEN + 8];
	seg_scan scan;
	int open;

	uint64_t corrupt;
	seg_damage_fn on_damage;
	void *ud;
} seg_reader;

/* path: a directory holding segment files, or one segment file. */
int seg_reader_init(seg_reader *r, const seg_vfs *v, const char *path, uint64_t from_seq,
		    seg_err *e);
/* 0 and *f (valid until the next call), EDGELOG_EOF, or an error. */
int seg_reader_next(seg_reader *r, seg_frame *f, seg_err *e);
void seg_reader_close(seg_reader *r);

#endif
