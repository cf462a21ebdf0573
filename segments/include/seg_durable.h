/*
 * seg_durable.h - the durable file operations every other module uses:
 * writing a whole buffer, replacing a file atomically, creating a directory
 * whose name survives a power cut, and moving or copying damaged bytes into
 * DIR/quarantine/. The order of writes, fsyncs and renames that makes each
 * of them survive a power cut lives here and nowhere else.
 *
 * Every call goes through the I/O seam (seg_vfs.h), so tests run these
 * paths under the fault injector and the power-loss file system. Files are
 * created O_EXCL | O_NOFOLLOW: a symlink planted at a temporary's or a
 * quarantine file's name is never followed, and a file someone else made
 * there is never written into.
 */
#ifndef SEG_DURABLE_H
#define SEG_DURABLE_H

#include <stddef.h>
#include <stdint.h>

#include "seg_err.h"
#include "seg_vfs.h"

/* Write n bytes at off, looping over short writes. path names fd in the
 * message. 0 or an EDGELOG_E* code. */
int seg_write_all(const seg_vfs *v, int fd, const void *buf, size_t n, uint64_t off,
		  const char *path, seg_err *e);

/*
 * Replace path with buf: PATH.tmp (a stale one removed first, never
 * followed) is created O_EXCL | O_NOFOLLOW with exactly mode (fchmod, so
 * the umask does not decide who may read it), written, and renamed over
 * path; a reader sees the old file or the new one, never a mix.
 *
 * With durable_dir (the directory holding path) the temporary is fsynced
 * before the rename and durable_dir after it, so after a power cut path
 * holds the old content or the new, whole. Without it neither is synced
 * (a status snapshot is worthless after a power cut; an fsync every few
 * seconds is not).
 */
int seg_write_atomic(const seg_vfs *v, const char *path, const void *buf, size_t n, int mode,
		     const char *durable_dir, seg_err *e);

/* mkdir path with mode; when this call created it, its parent directory is
 * fsynced so the new name survives a power cut. An existing directory is
 * fine. Returns 1 if created, 0 if it existed, or an EDGELOG_E* code. */
int seg_mkdir_durable(const seg_vfs *v, const char *path, int mode, seg_err *e);

/* seg_mkdir_durable for path and each missing ancestor (mkdir -p). */
int seg_mkdir_p(const seg_vfs *v, const char *path, int mode, seg_err *e);

/*
 * Quarantine: DIR/quarantine/ holds what was taken out of the log, never
 * deleted. One naming scheme (FORMAT.md, "Quarantine and lost seqs"): a
 * file is named STEM.bad, or STEM.1.bad, STEM.2.bad, ... when that is
 * taken, where STEM says what it was (a segment's name, NAME.OFFSET for a
 * byte range, "cursor", "failed-NAME" for a dead-letter file,
 * NAME.replaced for a file that took a name the engine had open).
 *
 * Both calls create DIR/quarantine/ durably when needed, put the chosen
 * name (not the path) in name, and return only once the quarantined bytes
 * and their name are durable.
 */
/* Rename from_dir/from_name to quarantine/; quarantine/ is fsynced, then
 * from_dir (the new name is durable before the old one is known gone). */
int seg_quarantine_move(const seg_vfs *v, const char *dir, const char *from_dir,
			const char *from_name, const char *stem, char *name, size_t namesz,
			seg_err *e);
/* Copy len bytes into a new quarantine file (created O_EXCL | O_NOFOLLOW,
 * 0600, fdatasynced), then fsync quarantine/. */
int seg_quarantine_bytes(const seg_vfs *v, const char *dir, const char *stem, const void *data,
			 size_t len, char *name, size_t namesz, seg_err *e);

#endif
