/*
 * seg_writer.h - the active segment: where appends go.
 *
 * The active segment is a preallocated file (fallocate) mapped shared and
 * pre-faulted writable. An append is a memcpy into the mapping: once it
 * returns, the bytes are in the page cache, so they survive the process
 * being killed; they reach the disk at the next sync. FORMAT.md explains why
 * this beats a write(2) per record.
 *
 * Not thread-safe: the engine serialises calls with its mutex. The sync is
 * split in three so the slow fdatasync runs without that mutex:
 * seg_sync_begin (under the lock) collects what must be synced,
 * seg_sync_run (no lock) syncs it, seg_sync_end (under the lock) records
 * the outcome.
 */
#ifndef SEG_WRITER_H
#define SEG_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "seg_err.h"
#include "seg_format.h"
#include "seg_vfs.h"

/* Spares are made under two names: one by seg_spare_create() (the engine's
 * preparer, without the writer's lock), one by the writer itself when no
 * spare is ready, so the two can never be the same file. */
#define SEG_SPARE_NAME ".spare"
#define SEG_SPARE_INLINE_NAME ".spare-inline"
/* A sealed segment whose records are all acknowledged, set aside by
 * retention to become a spare again (FORMAT.md, "Recycled segments"). */
#define SEG_RECYCLE_NAME ".recycle"
/* The synced hint (FORMAT.md, "Opening: which segments to sync"): the base
 * and salt of the newest sealed segment a sync round made durable, with
 * every segment before it. Never synced itself: a lost or torn hint only
 * makes the next open sync more. */
#define SEG_SYNCED_NAME ".synced"
#define SEG_MAX_RETIRED 8
#define SEG_MAX_SEALED 256 /* sealed segments awaiting their fdatasync */

/* A preallocated, mapped file waiting to become the next segment. */
typedef struct seg_spare {
	int fd; /* -1: none */
	uint8_t *map;
	size_t size;
	const char *name; /* SEG_SPARE_NAME or SEG_SPARE_INLINE_NAME */
	/* 1: a recycled file (placeholder header, a previous life's bytes
	 * after it): becomes a version-2 segment; its bytes are already in
	 * the writer's count (retention kept them there). */
	int recycled;
	/* Recycled: bytes allocated again in a punched tail (a segment
	 * sealed by age), not yet in the writer's count. */
	uint64_t grown;
} seg_spare;

/* What recovery found when the writer opened the directory. */
typedef struct seg_open_report {
	uint64_t segments;    /* segment files found */
	uint64_t first_seq;   /* oldest stored seq (0: none) */
	uint64_t last_seq;    /* newest valid frame's seq (0: none) */
	uint64_t torn_tails;  /* 1 if the active segment had a torn tail */
	uint64_t torn_bytes;  /* bytes zeroed by that */
	uint64_t corrupt;     /* damaged ranges seen in the active segment */
	uint64_t quarantined; /* unreadable segment files renamed *.bad */
	/* Above every seq a quarantined newest file could have held (its base
	 * plus the most frames its size allows): new seqs start here so none
	 * the cloud may have seen is handed out again. 0: none. */
	uint64_t bad_seq_bound;
	uint64_t bytes; /* disk use of the segment files */
} seg_open_report;

typedef struct seg_writer {
	const seg_vfs *vfs;
	char dir[4096]; /* the segments directory */
	size_t seg_bytes;
	int64_t max_age_ms;

	/* The active segment. fd == -1 before the first append of an empty log. */
	int fd;
	uint8_t *map;
	size_t size; /* mapped = file size */
	size_t pos;  /* end of valid data */
	seg_header hdr;
	/* XXH3 secret of hdr.salt (seg_frame_secret), valid when secret_salt
	 * == hdr.salt and have_secret. */
	uint8_t secret[SEG_SECRET_SIZE];
	uint64_t secret_salt;
	int have_secret;
	char name[SEG_NAME_LEN + 1];
	int64_t started_mono_ms;
	int64_t last_lifetime_ms; /* how long the previous segment was active (-1: unknown) */
	uint32_t last_delta;
	int have_frame;

	uint64_t next_seq; /* seq the next append gets */
	uint64_t synced_seq;

	/* Sealed segments whose data is not yet known durable. */
	int sealed_fd[SEG_MAX_SEALED];
	uint64_t sealed_last[SEG_MAX_SEALED];
	int n_sealed;
	int dir_dirty; /* a create/rename awaits a directory fsync */
	int suspect;   /* the last fdatasync failed: roll before the next append */
	/* The segment sealed last (base, salt), and whether the synced hint
	 * may still be written (SEG_SYNCED_NAME; off after any failed sync). */
	uint64_t sealed_base, sealed_salt;
	int hint_off;

	/* The age clock (see FORMAT.md): age_base_ms at age_mono_ms. 0 base:
	 * not kept (headers get 0). */
	int64_t age_base_ms, age_mono_ms;
	/* Cap on w->bytes when starting a segment (0: none): a segment that
	 * would exceed it is not created and the append fails with
	 * EDGELOG_EFULL, nothing stored. */
	uint64_t cap_bytes;

	seg_spare spare;
	/* Mappings of sealed segments, unmapped later off the append path
	 * (munmap of a 4 MiB dirty mapping costs about half a millisecond). */
	void *retired[SEG_MAX_RETIRED];
	size_t retired_size[SEG_MAX_RETIRED];
	int n_retired;
	uint64_t bytes;       /* disk use of all segment files (maintained) */
	uint64_t segments;    /* segment files (maintained) */
	uint64_t sync_failed; /* failed fdatasync calls */
	uint64_t recycled;    /* segments started in a recycled file */
} seg_writer;

/*
 * Open the segments directory `dir` (created if missing), find the active
 * segment (the newest), scan it, zero a torn tail and fdatasync that,
 * position for appending. min_next_seq: the next seq will be at least this
 * (the cursor's high-water mark, so a seq is never given out twice).
 */
int seg_writer_open(seg_writer *w, const seg_vfs *v, const char *dir, size_t seg_bytes,
		    int64_t max_age_ms, uint64_t min_next_seq, seg_open_report *rep, seg_err *e);

/* Append one frame (payload already validated). Rolls to a new segment if
 * the frame does not fit, the segment is too old, ts_ms is out of its
 * delta range, or the last sync failed. *seq gets the frame's seq. */
int seg_writer_append(seg_writer *w, const void *data, uint32_t len, int64_t ts_ms, uint64_t *seq,
		      seg_err *e);

/* Seal the active segment now (the next append starts a new one). */
int seg_writer_roll(seg_writer *w, seg_err *e);

/* Create a spare file outside any lock (pure: touches no writer state).
 * populate: SEG_POPULATE_* (seg_writer_populate() says which suits). */
int seg_spare_create(const seg_vfs *v, const char *dir, size_t size, int populate, seg_spare *out,
		     seg_err *e);
/* Make SEG_RECYCLE_NAME the spare (outside any lock, like
 * seg_spare_create): it must be exactly `size` bytes. A tail punched when
 * it was sealed by age is allocated again first (out->grown: the bytes
 * that adds). It gets the placeholder header, fdatasynced, before anything
 * else can happen to it, and is renamed SEG_SPARE_NAME. 0: *out is a
 * recycled spare. 1: the file is missing or not reusable (wrong size) and
 * was removed. <0: an I/O error (the allocation too), e set, the file
 * removed. In every case but 0 the caller takes its bytes off the
 * writer's count. */
int seg_spare_recycle(const seg_vfs *v, const char *dir, size_t size, int populate, seg_spare *out,
		      seg_err *e);
/*
 * How to pre-fault the next segment, from how fast the last one filled.
 * Pages pre-faulted writable cost no fault on the append path, but they are
 * dirty: a sync that runs while the segment is active writes its untouched
 * zero pages too, and writes them again later with data. That is worth it
 * only when segments fill faster than syncs come (sync_interval_ms), which
 * is exactly when append latency matters; a slow logger would double its
 * writes to flash for nothing.
 */
int seg_writer_populate(const seg_writer *w, int64_t sync_interval_ms);
void seg_spare_discard(const seg_vfs *v, const char *dir, seg_spare *s);
/* Does the writer want a spare? Install one (takes ownership; if the
 * writer already has one the offered spare is discarded). */
int seg_writer_wants_spare(const seg_writer *w);
void seg_writer_give_spare(seg_writer *w, seg_spare *s);

/* The age clock new headers carry: base_ms at mono_ms (0 base: none). */
void seg_writer_set_age_clock(seg_writer *w, int64_t base_ms, int64_t mono_ms);
/* Cap on the segment files' disk use when starting a segment (0: none);
 * a segment that would exceed it is not created (EDGELOG_EFULL). */
void seg_writer_set_cap(seg_writer *w, uint64_t cap_bytes);
/* Sealed segment files were removed (retention): take their count and
 * disk use out of the writer's figures. */
void seg_writer_forget(seg_writer *w, uint64_t segments, uint64_t bytes);
/* The active segment can no longer be trusted (its file was removed or
 * replaced under the writer): it gets no more frames; the next append
 * starts a new segment. */
void seg_writer_set_suspect(seg_writer *w);

/* Take one retired mapping to munmap outside the lock: 1 and *p, *n set,
 * or 0 if there is none. */
int seg_writer_take_retired(seg_writer *w, void **p, size_t *n);

/* A sync, in three steps (see the top of this file). */
typedef struct seg_sync_plan {
	int fds[SEG_MAX_SEALED + 1];
	int n;
	int close_upto; /* fds[0 .. close_upto) are sealed: close them after */
	int sync_dir;
	uint64_t target_seq; /* durable once this plan succeeds */
	int failed_fd;       /* fd whose fdatasync failed, -1 */
	int err;             /* -errno of the first failure */
	int hint;            /* once it succeeds, record hint_base/salt as synced */
	uint64_t hint_base, hint_salt;
} seg_sync_plan;

/* 0: nothing to do (everything durable). 1: *p filled, run it. */
int seg_sync_begin(seg_writer *w, seg_sync_plan *p);
void seg_sync_run(const seg_vfs *v, const char *dir, seg_sync_plan *p);
/* Returns 0 or an EDGELOG_E* code; on failure the affected segment is
 * marked suspect so the next append starts a new one. */
int seg_sync_end(seg_writer *w, seg_sync_plan *p, seg_err *e);

/* Sync everything and release all resources (the spare file is removed). */
int seg_writer_close(seg_writer *w, seg_err *e);

#endif
