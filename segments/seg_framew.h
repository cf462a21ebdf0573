/*
 * seg_framew.h - the body of seg_frame_write (seg_format.h), private to
 * segments/: seg_format.c defines seg_frame_write with it, and the writer
 * (seg_writer.c) inlines it into seg_writer_append, which saves the call,
 * its argument shuffle and a second save of the callee-saved registers on
 * every append (bench/instructions.sh).
 */
#ifndef SEG_FRAMEW_H
#define SEG_FRAMEW_H

#include <stdint.h>
#include <string.h>

#include "seg_format.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

/* seg_frame_write without AVX2: out of line, so that the vector code of
 * the portable hash does not make the AVX2 path save registers. */
uint64_t seg_frame_copy_hash(uint8_t *dst, const void *payload, uint32_t len, const uint8_t *secret,
			     uint64_t salt);

#if SEG_HAVE_AVX2_HASH
/* 1 if the CPU has AVX2, 0 if not, -1 before the first seg_avx2_probe. */
extern int seg_avx2_state;
int seg_avx2_probe(void);

static inline int seg_has_avx2(void)
{
	int r = __atomic_load_n(&seg_avx2_state, __ATOMIC_RELAXED);

	return r < 0 ? seg_avx2_probe() : r;
}
#endif

static inline __attribute__((always_inline)) void
seg_frame_write_inline(uint8_t *out, uint64_t salt, const uint8_t secret[SEG_SECRET_SIZE],
		       uint32_t seq_delta, int32_t ts_delta, const void *payload, uint32_t len)
{
	uint8_t *dst = out + SEG_FRAME_HEADER, h[12];
	XXH64_hash_t ph;
	uint32_t c;

#if SEG_HAVE_AVX2_HASH
	if (len > 240 && seg_has_avx2()) {
		ph = seg_xxh3_copy_avx2(dst, payload, len, secret);
	} else
#endif
		ph = seg_frame_copy_hash(dst, payload, len, secret, salt);
	SEG_FENCE_RELEASE();
	/* The 12 bytes after the checksum, hashed from a local copy (the
	 * compiler folds them) and stored before the checksum. */
	seg_put32(h, len);
	seg_put32(h + 4, seq_delta);
	seg_put32(h + 8, (uint32_t)ts_delta);
	c = (uint32_t)XXH3_64bits_withSeed(h, 12, ph);
	memcpy(out + 4, h, 12);
	seg_put32(out, c ? c : 1); /* zero is reserved for zero-filled space */
}

#endif
