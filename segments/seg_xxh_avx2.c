/*
 * seg_xxh_avx2.c - the frame payload hash (XXH3-64 with a per-segment
 * secret) compiled for AVX2, chosen at run time by seg_format.c on x86-64
 * CPUs that have it. Same result as the SSE2 build: xxHash's vector paths
 * are bit-identical by design; the test suite checks it. On a 442-byte
 * record it halves the hash's instructions (bench/instructions.sh).
 *
 * seg_xxh3_copy_avx2 is the same hash fused with the copy of the payload
 * into the segment: every 64-byte stripe XXH3 loads is also stored at the
 * destination, so the payload is read once and the separate memcpy (76
 * instructions for the sample record) goes. It follows xxHash 0.8's long
 * input path (XXH3_hashLong_64b_internal with XXH3_accumulate_512_avx2 and
 * XXH3_scrambleAcc_avx2) step for step; check_msgpack holds it to
 * XXH3_64bits_withSeed at every length from 241 bytes past three blocks and
 * on records up to 1 MiB.
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

/* One stripe: XXH3_accumulate_512_avx2 on the two halves, plus the store
 * of the input at out. */
#define STRIPE(a0, a1, in, out, key)                                                             \
	do {                                                                                     \
		__m256i d0_ = _mm256_loadu_si256((const __m256i *)(in));                         \
		__m256i d1_ = _mm256_loadu_si256((const __m256i *)(in) + 1);                     \
		__m256i k0_ = _mm256_xor_si256(d0_, _mm256_loadu_si256((const __m256i *)(key))); \
		__m256i k1_ =                                                                    \
			_mm256_xor_si256(d1_, _mm256_loadu_si256((const __m256i *)(key) + 1));   \
		_mm256_storeu_si256((__m256i *)(out), d0_);                                      \
		_mm256_storeu_si256((__m256i *)(out) + 1, d1_);                                  \
		a0 = _mm256_add_epi64(_mm256_mul_epu32(k0_, _mm256_shuffle_epi32(k0_, 0x31)),    \
				      _mm256_add_epi64(a0, _mm256_shuffle_epi32(d0_, 0x4e)));    \
		a1 = _mm256_add_epi64(_mm256_mul_epu32(k1_, _mm256_shuffle_epi32(k1_, 0x31)),    \
				      _mm256_add_epi64(a1, _mm256_shuffle_epi32(d1_, 0x4e)));    \
	} while (0)

/* XXH3_scrambleAcc_avx2 on one half. */
static inline __m256i scramble(__m256i a, const uint8_t *key)
{
	const __m256i prime32 = _mm256_set1_epi32((int)XXH_PRIME32_1);
	__m256i dk = _mm256_xor_si256(_mm256_xor_si256(a, _mm256_srli_epi64(a, 47)),
				      _mm256_loadu_si256((const __m256i *)key));
	__m256i lo = _mm256_mul_epu32(dk, prime32);
	__m256i hi = _mm256_mul_epu32(_mm256_shuffle_epi32(dk, 0x31), prime32);

	return _mm256_add_epi64(lo, _mm256_slli_epi64(hi, 32));
}

uint64_t seg_xxh3_copy_avx2(void *dst, const void *src, size_t len, const uint8_t *secret)
{
	/* The secret's 192 bytes give 16 stripes of 64 bytes a block, each
	 * stripe's key 8 bytes further on (XXH_SECRET_CONSUME_RATE). */
	enum {
		STRIPE_LEN = 64,
		PER_BLOCK = (SEG_SECRET_SIZE - STRIPE_LEN) / 8
	};
	const size_t block = (size_t)STRIPE_LEN * PER_BLOCK;
	const uint8_t *in = src;
	uint8_t *out = dst;
	XXH_ALIGN(32) uint64_t acc[8];
	__m256i a0 = _mm256_setr_epi64x((long long)XXH_PRIME32_3, (long long)XXH_PRIME64_1,
					(long long)XXH_PRIME64_2, (long long)XXH_PRIME64_3);
	__m256i a1 = _mm256_setr_epi64x((long long)XXH_PRIME64_4, (long long)XXH_PRIME32_2,
					(long long)XXH_PRIME64_5, (long long)XXH_PRIME32_1);
	size_t nb_blocks = (len - 1) / block, n, s, stripes;

	for (n = 0; n < nb_blocks; n++) {
		for (s = 0; s < PER_BLOCK; s++)
			STRIPE(a0, a1, in + s * STRIPE_LEN, out + s * STRIPE_LEN, secret + s * 8);
		a0 = scramble(a0, secret + SEG_SECRET_SIZE - STRIPE_LEN);
		a1 = scramble(a1, secret + SEG_SECRET_SIZE - STRIPE_LEN + 32);
		in += block;
		out += block;
	}
	stripes = ((len - 1) - block * nb_blocks) / STRIPE_LEN;
	for (s = 0; s < stripes; s++)
		STRIPE(a0, a1, in + s * STRIPE_LEN, out + s * STRIPE_LEN, secret + s * 8);
	/* The last stripe ends at the last byte (it overlaps the one before;
	 * its store covers what the stripes above left). */
	in = (const uint8_t *)src + len - STRIPE_LEN;
	out = (uint8_t *)dst + len - STRIPE_LEN;
	STRIPE(a0, a1, in, out, secret + SEG_SECRET_SIZE - STRIPE_LEN - 7);
	_mm256_store_si256((__m256i *)acc, a0);
	_mm256_store_si256((__m256i *)acc + 1, a1);
	/* XXH_SECRET_MERGEACCS_START is 11. */
	return XXH3_mergeAccs(acc, secret + 11, (uint64_t)len * XXH_PRIME64_1);
}
#endif
