/*
 * test_vfs.h - seg_vfs tables for tests (segments/include/seg_vfs.h is the seam).
 *
 * tvfs_fault wraps another table (normally seg_vfs_posix()) and passes every
 * call through, except that it can fail the Nth operation of chosen kinds
 * with a given -errno, turn the Nth pwrite into a short write, and serve a
 * fake clock. It counts operations, so a test runs a scenario once to learn
 * how many there are, then reruns it failing each one in turn:
 *
 *	tvfs_fault *f = tvfs_fault_new(NULL);
 *	scenario(tvfs_fault_vfs(f));
 *	uint64_t total = tvfs_fault_count(f, TVFS_OP_COUNTED);
 *	for (uint64_t n = 1; n <= total; n++) {
 *		tvfs_fault_reset(f);
 *		tvfs_fault_fail_nth(f, n, -EIO);
 *		scenario(tvfs_fault_vfs(f));   (must fail cleanly, lose nothing)
 *	}
 *
 * tvfs_mem is an in-memory file system that can lose power. Every file has
 * its live content and its durable content (as of its last fsync); every
 * directory has its live entries and its durable entries (as of its last
 * fsync_dir). tvfs_mem_power_loss() makes the durable state the live one,
 * keeping a random part of what was not synced (see its comment), closes
 * every descriptor and drops every lock. mmap returns the file's live
 * buffer, so stores through a mapping are file content at once, and are
 * lost at power loss unless an fsync came after them.
 *
 * Both are thread-safe: one mutex guards each instance. Stores through a
 * mapping bypass it, as they bypass the kernel.
 *
 * Failing set-up calls (out of memory) abort the process: these are tests.
 */
#ifndef TEST_VFS_H
#define TEST_VFS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "seg_vfs.h"

/* Operation kinds, as bits for masks. */
enum {
	TVFS_OP_OPEN = 1u << 0,
	TVFS_OP_PWRITE = 1u << 1,
	TVFS_OP_FSYNC = 1u << 2,
	TVFS_OP_FTRUNCATE = 1u << 3,
	TVFS_OP_FALLOCATE = 1u << 4,
	TVFS_OP_RENAME = 1u << 5,
	TVFS_OP_UNLINK = 1u << 6,
	TVFS_OP_MKDIR = 1u << 7,
	TVFS_OP_FSYNC_DIR = 1u << 8,
	TVFS_OP_MMAP = 1u << 9,
	/* Not counted by TVFS_OP_COUNTED, but can be counted and failed. */
	TVFS_OP_PREAD = 1u << 10,
	TVFS_OP_PUNCH = 1u << 11,
	TVFS_OP_FSTAT = 1u << 12,
	TVFS_OP_STAT = 1u << 13,
	TVFS_OP_LIST = 1u << 14,
	TVFS_OP_LOCK = 1u << 15,
	TVFS_OP_RANDOM = 1u << 16,
	TVFS_OP_FCHMOD = 1u << 17,
	TVFS_OP_FILE_ID = 1u << 18,
	/* close, munmap and the clocks are never failed nor counted. */

	/* The operations that change state or allocate: what "the Nth
	 * operation" means by default. */
	TVFS_OP_COUNTED = (1u << 10) - 1,
	TVFS_OP_ALL = (1u << 19) - 1,
};

/* "open", "pwrite", ... for one bit; "?" otherwise. */
const char *tvfs_op_name(unsigned op);

/* ------------------------------------------------------------------------
 * Fault injection
 * ---------------------------------------------------------------------- */
typedef struct tvfs_fault tvfs_fault;

/* Wrap base (NULL: seg_vfs_posix()). base must outlive the wrapper. */
tvfs_fault *tvfs_fault_new(const seg_vfs *base);
void tvfs_fault_free(tvfs_fault *f);
/* The table to hand to the code under test. Valid until tvfs_fault_free. */
const seg_vfs *tvfs_fault_vfs(tvfs_fault *f);

/* Zero the counters, disarm every fault, remove the hook. The clock
 * settings are kept. */
void tvfs_fault_reset(tvfs_fault *f);

/* Operations of the kinds in mask seen since new/reset (failed ones
 * included). */
uint64_t tvfs_fault_count(tvfs_fault *f, unsigned mask);

/*
 * Arm a fault: the nth operation (n >= 1, counted from this call) whose
 * kind is in mask returns neg_errno (-EIO, -ENOSPC, ...) without reaching
 * the wrapped table; with sticky, so does every later one in mask (a disk
 * that stays full). n == 0 disarms. One fault is armed at a time.
 */
void tvfs_fault_fail(tvfs_fault *f, unsigned mask, uint64_t n, int neg_errno, int sticky);
/* tvfs_fault_fail(f, TVFS_OP_COUNTED, n, neg_errno, 0). */
void tvfs_fault_fail_nth(tvfs_fault *f, uint64_t n, int neg_errno);

/* The nth pwrite (counted from this call) writes only the first half of
 * its bytes (n/2, at least 1) and returns that count. A 1-byte pwrite
 * cannot be short and is passed through whole. n == 0 disarms. */
void tvfs_fault_short_write(tvfs_fault *f, uint64_t n);

/* Faults (failures and short writes) fired since new/reset. */
uint64_t tvfs_fault_injected(tvfs_fault *f);

/*
 * Called before each operation in TVFS_OP_ALL (after counting it, before
 * the armed fault is checked), without the wrapper's lock held. n is the
 * operation's number among all operations since new/reset; path is the
 * path argument (the first one for rename), or NULL for calls on a
 * descriptor. Return 0 to go on, or a -errno to fail the call with it.
 * NULL removes the hook.
 */
typedef int (*tvfs_hook_fn)(void *ud, unsigned op, uint64_t n, const char *path);
void tvfs_fault_set_hook(tvfs_fault *f, tvfs_hook_fn fn, void *ud);

/* Print one line per operation (kind, path or fd, result) to out; NULL
 * stops. For debugging a failing scenario. */
void tvfs_fault_trace(tvfs_fault *f, FILE *out);

/* Fake clock. Off: now_ms/mono_ms come from the wrapped table. */
void tvfs_fault_clock_fake(tvfs_fault *f, int on);
/* Set both clocks and turn the fake clock on. */
void tvfs_fault_clock_set(tvfs_fault *f, int64_t now_ms, int64_t mono_ms);
/* Move both clocks forward by ms. */
void tvfs_fault_clock_advance(tvfs_fault *f, int64_t ms);
/* Move the wall clock alone by ms (may be negative: NTP stepping back). */
void tvfs_fault_clock_jump(tvfs_fault *f, int64_t ms);

/* ------------------------------------------------------------------------
 * In-memory file system with power loss
 *
 * Paths: "/..." are absolute, anything else relative to an implicit "."
 * root; both roots always exist. Empty components and "." are ignored; ".."
 * is refused with -EINVAL. Parents must exist (mkdir does not create them;
 * tvfs_mem_mkdirs does, durably, for a test's set-up).
 *
 * Semantics worth knowing:
 *  - open: O_RDONLY / O_WRONLY / O_RDWR, O_CREAT, O_EXCL, O_TRUNC; other
 *    flags ignored. A directory may be opened O_RDONLY (fsync on it is
 *    fsync_dir; lock works). Descriptor numbers are never reused, so a
 *    descriptor from before a power loss gets -EBADF, never a new file.
 *  - fsync: the file's durable content becomes its live content. It does
 *    not make the file's name durable: that takes fsync_dir of its parent.
 *  - fsync_dir: the directory's durable entries become its live entries
 *    (files and subdirectories created, renamed or unlinked in it).
 *  - rmdir: an empty directory only (-ENOTEMPTY, -ENOTDIR); through
 *    tvfs_fault it counts and fails as TVFS_OP_UNLINK.
 *  - fallocate(len): size = max(size, len), zero-filled; capacity >= len.
 *  - mmap(len): a pointer to the file's live buffer, which is never moved
 *    or freed while a mapping of it exists (it survives power loss as a
 *    detached buffer until munmap). Growing a mapped file beyond its
 *    capacity (pwrite, ftruncate, fallocate past the mapped buffer) returns
 *    -EIO: fallocate before mapping, as the writer does. Read-only mappings
 *    are not write-protected. Stores past the file size are not content.
 *  - stat/fstat: alloc = size (directories: 0, 0). punch zeroes the range.
 *  - fchmod records the mode (tvfs_mem_mode reads it); file_id is a number
 *    per file never reused, so a file replaced under a name has a new one.
 *  - lock: 0, or -EWOULDBLOCK when another open descriptor of the same
 *    file holds it; released by close and by power loss.
 *  - random: a PRNG seeded at tvfs_mem_new.
 *  - clocks: fake by default (now_ms 1700000000000, mono_ms 1000000),
 *    moved only by the functions below; or the real ones.
 * ---------------------------------------------------------------------- */
typedef struct tvfs_mem tvfs_mem;

tvfs_mem *tvfs_mem_new(uint64_t seed);
/* Frees everything, detached buffers of outstanding mappings included. */
void tvfs_mem_free(tvfs_mem *m);
const seg_vfs *tvfs_mem_vfs(tvfs_mem *m);

/* mkdir -p, made durable at once (test set-up). 0 or -errno. */
int tvfs_mem_mkdirs(tvfs_mem *m, const char *path);

/*
 * Power loss. Directories: live entries := durable entries, so a file
 * created or renamed without fsync_dir of its directory disappears or
 * reverts, and an unlink without it comes back. Files: live content :=
 * durable content, except that with probability keep_pct (default 50) a
 * random prefix of the unsynced change survives (bytes from the first to
 * the last one that differ, cut at a random point), and with probability
 * torn_pct (default 25) up to 32 bytes after the cut hold garbage (only
 * bytes the lost writes changed: synced data is never damaged). With
 * probability page_pct (default 0), a file instead keeps each 4 KiB page of
 * its unsynced change independently (writeback out of order: holes
 * possible). Every descriptor is closed and every lock dropped; files no
 * longer reachable are freed. seed drives these choices (deterministic).
 */
void tvfs_mem_power_loss(tvfs_mem *m, uint64_t seed);
void tvfs_mem_set_loss(tvfs_mem *m, unsigned keep_pct, unsigned torn_pct, unsigned page_pct);

/* Clocks. set: both, and fake mode on. */
void tvfs_mem_clock_set(tvfs_mem *m, int64_t now_ms, int64_t mono_ms);
void tvfs_mem_clock_advance(tvfs_mem *m, int64_t ms); /* both */
void tvfs_mem_clock_jump(tvfs_mem *m, int64_t ms);    /* wall clock only */
void tvfs_mem_clock_real(tvfs_mem *m, int on);        /* real clocks instead */

/* Test helpers on live state (no fault, no counting). */
/* Copy of a file's live content (malloc'd; *data NULL for an empty file).
 * 0 or -errno. */
int tvfs_mem_read_file(tvfs_mem *m, const char *path, uint8_t **data, size_t *size);
/* Create or replace a file with this content; durable (content and name)
 * if durable != 0. 0 or -errno (-EIO if the file is mapped and the
 * content does not fit its buffer). */
int tvfs_mem_write_file(tvfs_mem *m, const char *path, const void *data, size_t size, int durable);
/* 1 if path exists (file or directory) in the live tree, else 0. */
int tvfs_mem_exists(tvfs_mem *m, const char *path);
/* Open descriptors and live mappings (detached ones included). */
uint64_t tvfs_mem_open_fds(tvfs_mem *m);
/* Permission bits of path as created (open/mkdir mode) or last fchmod'ed;
 * -ENOENT if missing. */
int tvfs_mem_mode(tvfs_mem *m, const char *path);
uint64_t tvfs_mem_mappings(tvfs_mem *m);

#endif
