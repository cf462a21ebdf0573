/*
 * seg_format.h - byte layout of segment files and frames (segments/FORMAT.md
 * is the specification; this is its code). Pure functions on memory: no I/O,
 * no allocation, safe on any input, so they are fuzzed directly.
 *
 * A segment file:
 *
 *   +------------------------------+ 0
 *   | segment header (64 bytes)    |  magic, format version, base seq,
 *   |                              |  base time, salt, header checksum
 *   +------------------------------+ 64
 *   | frame | frame | ...          |  16-byte header + msgpack payload each
 *   +------------------------------+ end of data
 *   | zeros (preallocated space)   |  a zero length field ends the data
 *   +------------------------------+ file size
 */
#ifndef SEG_FORMAT_H
#define SEG_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define SEG_MAGIC "EDGELOG\x1a" /* 8 bytes; 0x1a stops `type` on DOS-era tools */
#define SEG_MAGIC_LEN 8
/* The newest segment format this code reads. Version 1: a fresh
 * (zero-filled) file, whose data ends at the first zero frame header.
 * Version 2: a recycled file (FORMAT.md, "Recycled segments"), whose data
 * ends at an end marker; the bytes after it are a previous life's. The
 * writer writes version 1 into fresh files, so directories that never
 * recycle stay readable by older readers. */
#define SEG_FORMAT_VERSION 2u
#define SEG_VERSION_FRESH 1u
#define SEG_VERSION_RECYCLED 2u
#define SEG_HEADER_SIZE 64u
#define SEG_FRAME_HEADER 16u
/* Largest frame payload: a record (EDGELOG_MAX_RECORD, 1 MiB) plus room for
 * the envelope a dead letter wraps it in (seq, status, reason). */
#define SEG_MAX_PAYLOAD ((1u << 20) + 4096)
/* Largest seq_delta a frame can carry; a segment rolls before this. */
#define SEG_MAX_DELTA 0xffffffffu

/*
 * The ranges a header's fields must lie in (FORMAT.md, "Header"). A header
 * outside them cannot have been written by edgelog: it is damage, like a
 * failed checksum. With base_seq below 2^63, base_seq + seq_delta + 1
 * never wraps; with base_ts_ms within +-2^53 ms (285 000 years either
 * side of 1970) and age_ms within 0..2^53, adding a frame's ts_delta or
 * taking the difference with any clock in that range never overflows.
 * The writer never hands out a seq at or past SEG_SEQ_LIMIT, and clamps a
 * clock beyond SEG_TS_LIMIT_MS.
 */
#define SEG_SEQ_LIMIT ((uint64_t)1 << 63)
#define SEG_TS_LIMIT_MS ((int64_t)1 << 53)

/* a - b for times in ms, saturated instead of overflowing (either may come
 * from a file or a clock nobody checked). */
static inline int64_t seg_ms_sub(int64_t a, int64_t b)
{
	int64_t d;

	if (__builtin_sub_overflow(a, b, &d))
		return a < b ? INT64_MIN : INT64_MAX;
	return d;
}

/* A wall-clock time brought into the range a header can hold. */
static inline int64_t seg_ts_clamp(int64_t t)
{
	return t > SEG_TS_LIMIT_MS ? SEG_TS_LIMIT_MS : t < -SEG_TS_LIMIT_MS ? -SEG_TS_LIMIT_MS : t;
}

/* The age clock (FORMAT.md, "Retention") at monotonic time mono_now: it
 * read base_ms at mono_base and runs with the monotonic clock, kept in the
 * range a header and a cursor can hold (0..SEG_TS_LIMIT_MS), so whatever
 * it writes reads back as valid however long the device runs. */
static inline int64_t seg_age_at(int64_t base_ms, int64_t mono_base, int64_t mono_now)
{
	int64_t t = seg_ms_sub(mono_now, mono_base), a;

	if (__builtin_add_overflow(base_ms, t, &a))
		a = t < 0 ? 0 : SEG_TS_LIMIT_MS;
	return a < 0 ? 0 : a > SEG_TS_LIMIT_MS ? SEG_TS_LIMIT_MS : a;
}

/* Result codes of the pure functions (distinct from EDGELOG_E*). */
enum {
	SEG_OK = 0,
	SEG_END = 1,    /* zero-filled space: the clean end of data */
	SEG_BAD = -1,   /* checksum, magic or field check failed */
	SEG_SHORT = -2, /* fewer bytes than the frame claims (torn) */
	SEG_NEWER = -3, /* a newer on-disk format version */
	SEG_EMPTY = -4, /* header all zeros (file created, never written) */
};

typedef struct seg_header {
	uint32_t version;   /* SEG_VERSION_FRESH or SEG_VERSION_RECYCLED */
	uint32_t flags;     /* reserved, 0 */
	uint64_t base_seq;  /* seq of the first frame; frames carry seq - base_seq */
	int64_t base_ts_ms; /* wall clock at creation; frames carry ts - base_ts */
	uint64_t salt;      /* random per segment; seeds every frame checksum */
	int64_t age_ms;     /* the engine's age clock at creation (FORMAT.md) */
} seg_header;

/* One decoded frame. data points into the buffer that was checked. */
typedef struct seg_frame {
	uint64_t seq;
	int64_t ts_ms;
	const uint8_t *data;
	uint32_t len;
	uint64_t offset; /* of the frame header within the segment file */
	uint32_t seq_delta;
} seg_frame;

void seg_header_encode(const seg_header *h, uint8_t out[SEG_HEADER_SIZE]);
/* SEG_OK, SEG_EMPTY (all zero, or the placeholder of a recycled file not
 * yet started), SEG_NEWER, or SEG_BAD. */
int seg_header_decode(const uint8_t in[SEG_HEADER_SIZE], seg_header *h);

/* XXH3-64 of [p, p+n), its low 32 bits: the checksum of small records
 * (the synced hint). */
uint32_t seg_checksum32(const void *p, size_t n);

/* The 32-bit frame checksum: XXH3-64 of the payload seeded with the salt,
 * then of the 12 header bytes after the checksum field seeded with that,
 * truncated to the low 32 bits. */
uint32_t seg_frame_checksum(uint64_t salt, const uint8_t hdr12[12], const void *payload,
			    uint32_t len);

/* Write the 16-byte frame header for a payload into out. */
void seg_frame_encode(uint8_t out[SEG_FRAME_HEADER], uint64_t salt, uint32_t seq_delta,
		      int32_t ts_delta, const void *payload, uint32_t len);

/* The same with the XXH3 secret derived from the salt once per segment
 * (seg_frame_secret) instead of on every frame longer than 240 bytes: the
 * same bytes out, about 100 instructions less per frame. */
#define SEG_SECRET_SIZE 192u
void seg_frame_secret(uint64_t salt, uint8_t secret[SEG_SECRET_SIZE]);
void seg_frame_encode_secret(uint8_t out[SEG_FRAME_HEADER], uint64_t salt,
			     const uint8_t secret[SEG_SECRET_SIZE], uint32_t seq_delta,
			     int32_t ts_delta, const void *payload, uint32_t len);

/* A whole frame at out: the payload copied to out + SEG_FRAME_HEADER, a
 * release fence, then its header, checksum last (a reader in another
 * process that sees the checksum also sees what it covers). The same bytes
 * as a memcpy and seg_frame_encode_secret; on CPUs with AVX2 the copy rides
 * in the hash's loads (seg_xxh3_copy_avx2), so the payload is read once. */
void seg_frame_write(uint8_t *out, uint64_t salt, const uint8_t secret[SEG_SECRET_SIZE],
		     uint32_t seq_delta, int32_t ts_delta, const void *payload, uint32_t len);

/*
 * Check the frame that starts at buf (avail bytes readable from there).
 * SEG_OK: *f filled (f->offset left to the caller). SEG_END: the length
 * field and the checksum are zero (clean end). SEG_SHORT: the frame runs past
 * avail. SEG_BAD: checksum or length invalid. secret: the segment's
 * (seg_frame_secret of h->salt), or NULL to derive it for this frame.
 */
int seg_frame_check(const uint8_t *buf, size_t avail, const seg_header *h, const uint8_t *secret,
		    seg_frame *f);

/* 0 if [data, data+len) is exactly one well-formed msgpack object (depth at
 * most 256), else the byte offset + 1 at which it stops being one. */
size_t seg_mp_validate(const void *data, size_t len);

/*
 * Recycled segments (version 2). A file about to be reused gets a
 * placeholder header first (version 2, every other field zero, checksummed)
 * and is fdatasynced: a power cut that takes the real header leaves the
 * placeholder, which reads as "never started" (stillborn), never as the
 * previous life's segment. After every frame the writer keeps an end
 * marker: 16 bytes that only this segment's salt produces, with length 0
 * (no frame has it) and the seq_delta the next frame will carry.
 */
void seg_header_placeholder(uint8_t out[SEG_HEADER_SIZE]);
void seg_end_marker(uint8_t out[SEG_FRAME_HEADER], uint64_t salt, uint32_t next_delta);
/* 1 if an end marker of the segment with salt `salt` starts at buf
 * (avail bytes readable), *delta set to its seq_delta. */
int seg_end_marker_at(const uint8_t *buf, size_t avail, uint64_t salt, uint32_t *delta);

/* x86-64 builds with GCC also carry an AVX2 build of the payload hash,
 * used when the CPU has AVX2 (seg_xxh_avx2.c). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SEG_HAVE_AVX2_HASH 1
uint64_t seg_xxh3_secret_avx2(const void *p, size_t len, const uint8_t *secret, uint64_t seed);
/* The same hash of src (len > 240; the seed is the secret's) that also
 * copies it to dst. */
uint64_t seg_xxh3_copy_avx2(void *dst, const void *src, size_t len, const uint8_t *secret);
#else
#define SEG_HAVE_AVX2_HASH 0
#endif

/* Ordering between the writer's payload and header stores and a reader in
 * another thread. ThreadSanitizer does not model bare fences (and these
 * accesses to shared mappings are deliberately unsynchronised), so they are
 * left out of TSan builds. */
#if defined(__SANITIZE_THREAD__)
#define SEG_FENCE_RELEASE() ((void)0)
#define SEG_FENCE_ACQUIRE() ((void)0)
#else
#define SEG_FENCE_RELEASE() __atomic_thread_fence(__ATOMIC_RELEASE)
#define SEG_FENCE_ACQUIRE() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#endif

/* Little-endian helpers. On a little-endian CPU one unaligned load or
 * store (GCC did not merge the byte stores: 40 instructions a frame header
 * went to shifts); elsewhere byte by byte. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static inline uint32_t seg_get32(const uint8_t *p)
{
	uint32_t v;
	__builtin_memcpy(&v, p, 4);
	return v;
}
static inline uint64_t seg_get64(const uint8_t *p)
{
	uint64_t v;
	__builtin_memcpy(&v, p, 8);
	return v;
}
static inline void seg_put32(uint8_t *p, uint32_t v)
{
	__builtin_memcpy(p, &v, 4);
}
static inline void seg_put64(uint8_t *p, uint64_t v)
{
	__builtin_memcpy(p, &v, 8);
}
#else
static inline uint32_t seg_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t seg_get64(const uint8_t *p)
{
	return (uint64_t)seg_get32(p) | (uint64_t)seg_get32(p + 4) << 32;
}
static inline void seg_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}
static inline void seg_put64(uint8_t *p, uint64_t v)
{
	seg_put32(p, (uint32_t)v);
	seg_put32(p + 4, (uint32_t)(v >> 32));
}
#endif

/* Segment file names: 20-digit zero-padded base seq + ".seg". */
#define SEG_NAME_LEN 24
void seg_name(char out[SEG_NAME_LEN + 1], uint64_t base_seq);

/* 1 if a segment file's bytes are all zeros (or there are none), or it
 * starts with a recycled file's placeholder header: it was created (or
 * recycled) at a roll and a power cut took its header, hence every sync
 * of it. Such a file is stillborn, never damage: no record in it was ever
 * synced (FORMAT.md, "Recovery at open", step 2). */
int seg_stillborn(const uint8_t *p, size_t n);
/* 1 and *base set if name is a segment file name, else 0. */
int seg_name_parse(const char *name, uint64_t *base);

#endif
