/*
 * seg_xxh_avx2.c - the frame payload hash (XXH3-64 with a per-segment
 * secret) compiled for AVX2, chosen at run time by seg_format.c on x86-64
 * CPUs that have it. Same result as the SSE2 build: xxHash's vector paths
 * are bit-identical by design; the test suite checks it. On a 442-byte
 * record it halves the hash's instructions (bench/instructions.sh).
 */
#include "seg_format.h"

#if SEG_HAVE_AVX2_HASH
/* Everything below, xxHash's inline code included, may use AVX2: only
 * called once the CPU is known to have it. */
#pragma GCC target("avx2")
#include <immintrin.h>
#define XXH_INLINE_ALL
#define XXH_VECTOR XXH_AVX2
#include <xxhash.h>

uint64_t seg_xxh3_secret_avx2(const void *p, size_t len, const uint8_t *secret, uint64_t seed)
{
	return XXH3_64bits_withSecretandSeed(p, len, secret, SEG_SECRET_SIZE, seed);
}
#endif
