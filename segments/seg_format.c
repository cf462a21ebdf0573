/*
 * seg_format.c - encode and check segment headers and frames.
 * FORMAT.md is the specification; every constant here is described there.
 */
#include "seg_format.h"

#include <stdio.h>
#include <string.h>

#include "seg_framew.h"

/* Header: magic[8] | version u32 | flags u32 | base_seq u64 | base_ts i64 |
 * salt u64 | age_ms i64 | reserved[12] | checksum u32 (XXH3-64 of bytes 0..59,
 * low half). */
#define HDR_CHECKSUM_OFF 60

void seg_header_encode(const seg_header *h, uint8_t out[SEG_HEADER_SIZE])
{
	memset(out, 0, SEG_HEADER_SIZE);
	memcpy(out, SEG_MAGIC, SEG_MAGIC_LEN);
	seg_put32(out + 8, h->version);
	seg_put32(out + 12, h->flags);
	seg_put64(out + 16, h->base_seq);
	seg_put64(out + 24, (uint64_t)h->base_ts_ms);
	seg_put64(out + 32, h->salt);
	seg_put64(out + 40, (uint64_t)h->age_ms);
	seg_put32(out + HDR_CHECKSUM_OFF, (uint32_t)XXH3_64bits(out, HDR_CHECKSUM_OFF));
}

int seg_header_decode(const uint8_t in[SEG_HEADER_SIZE], seg_header *h)
{
	size_t i;

	for (i = 0; i < SEG_HEADER_SIZE && in[i] == 0; i++)
		;
	if (i == SEG_HEADER_SIZE)
		return SEG_EMPTY;
	if (memcmp(in, SEG_MAGIC, SEG_MAGIC_LEN) != 0)
		return SEG_BAD;
	if (seg_get32(in + HDR_CHECKSUM_OFF) != (uint32_t)XXH3_64bits(in, HDR_CHECKSUM_OFF))
		return SEG_BAD;
	{
		uint8_t ph[SEG_HEADER_SIZE];
		seg_header_placeholder(ph);
		if (!memcmp(in, ph, SEG_HEADER_SIZE))
			return SEG_EMPTY; /* a recycled file not started yet */
	}
	h->version = seg_get32(in + 8);
	h->flags = seg_get32(in + 12);
	h->base_seq = seg_get64(in + 16);
	h->base_ts_ms = (int64_t)seg_get64(in + 24);
	h->salt = seg_get64(in + 32);
	h->age_ms = (int64_t)seg_get64(in + 40);
	/* Checked after the checksum, so a flipped bit is damage, not "newer". */
	if (h->version > SEG_FORMAT_VERSION)
		return SEG_NEWER;
	if (h->version == 0 || h->base_seq == 0)
		return SEG_BAD;
	/* Ranges no edgelog writes (seg_format.h): damage, not data. */
	if (h->base_seq >= SEG_SEQ_LIMIT || h->base_ts_ms > SEG_TS_LIMIT_MS ||
	    h->base_ts_ms < -SEG_TS_LIMIT_MS || h->age_ms < 0 || h->age_ms > SEG_TS_LIMIT_MS)
		return SEG_BAD;
	return SEG_OK;
}

void seg_header_placeholder(uint8_t out[SEG_HEADER_SIZE])
{
	memset(out, 0, SEG_HEADER_SIZE);
	memcpy(out, SEG_MAGIC, SEG_MAGIC_LEN);
	seg_put32(out + 8, SEG_VERSION_RECYCLED);
	seg_put32(out + HDR_CHECKSUM_OFF, (uint32_t)XXH3_64bits(out, HDR_CHECKSUM_OFF));
}

/* "END!" mixed into the salt's low half: with the high half in bytes
 * 12..15 a marker matches one segment only. */
#define END_MIX 0x21444e45u

void seg_end_marker(uint8_t out[SEG_FRAME_HEADER], uint64_t salt, uint32_t next_delta)
{
	seg_put32(out, (uint32_t)salt ^ END_MIX);
	seg_put32(out + 4, 0);
	seg_put32(out + 8, next_delta);
	seg_put32(out + 12, (uint32_t)(salt >> 32));
}

int seg_end_marker_at(const uint8_t *buf, size_t avail, uint64_t salt, uint32_t *delta)
{
	if (avail < SEG_FRAME_HEADER || seg_get32(buf + 4) != 0 ||
	    seg_get32(buf) != ((uint32_t)salt ^ END_MIX) ||
	    seg_get32(buf + 12) != (uint32_t)(salt >> 32))
		return 0;
	*delta = seg_get32(buf + 8);
	return 1;
}

uint32_t seg_frame_checksum(uint64_t salt, const uint8_t hdr12[12], const void *payload,
			    uint32_t len)
{
	XXH64_hash_t ph = XXH3_64bits_withSeed(payload, len, salt);
	return (uint32_t)XXH3_64bits_withSeed(hdr12, 12, ph);
}

void seg_frame_encode(uint8_t out[SEG_FRAME_HEADER], uint64_t salt, uint32_t seq_delta,
		      int32_t ts_delta, const void *payload, uint32_t len)
{
	uint32_t c;

	seg_put32(out + 4, len);
	seg_put32(out + 8, seq_delta);
	seg_put32(out + 12, (uint32_t)ts_delta);
	c = seg_frame_checksum(salt, out + 4, payload, len);
	/* Zero is reserved for "no frame here" (zero-filled space). */
	if (c == 0)
		c = 1;
	seg_put32(out, c);
}

#if SEG_HAVE_AVX2_HASH
int seg_avx2_state = -1; /* unknown */

/* Racing first calls store the same value. */
int seg_avx2_probe(void)
{
	int r;

	__builtin_cpu_init();
	r = __builtin_cpu_supports("avx2") ? 1 : 0;
	__atomic_store_n(&seg_avx2_state, r, __ATOMIC_RELAXED);
	return r;
}
#endif

void seg_frame_secret(uint64_t salt, uint8_t secret[SEG_SECRET_SIZE])
{
	XXH3_generateSecret_fromSeed(secret, salt);
}

/* XXH3_64bits_withSeed(payload, len, salt), given the secret derived from
 * the salt (XXH3_generateSecret_fromSeed: xxhash.h documents the two as
 * equal), by the AVX2 build where the CPU has it. */
static XXH64_hash_t payload_hash(uint64_t salt, const uint8_t secret[SEG_SECRET_SIZE],
				 const void *payload, uint32_t len)
{
#if SEG_HAVE_AVX2_HASH
	if (len > 240 && seg_has_avx2())
		return seg_xxh3_secret_avx2(payload, len, secret, salt);
#endif
	return XXH3_64bits_withSecretandSeed(payload, len, secret, SEG_SECRET_SIZE, salt);
}

void seg_frame_encode_secret(uint8_t out[SEG_FRAME_HEADER], uint64_t salt,
			     const uint8_t secret[SEG_SECRET_SIZE], uint32_t seq_delta,
			     int32_t ts_delta, const void *payload, uint32_t len)
{
	uint32_t c;

	seg_put32(out + 4, len);
	seg_put32(out + 8, seq_delta);
	seg_put32(out + 12, (uint32_t)ts_delta);
	c = (uint32_t)XXH3_64bits_withSeed(out + 4, 12, payload_hash(salt, secret, payload, len));
	if (c == 0)
		c = 1;
	seg_put32(out, c);
}

__attribute__((noinline)) uint64_t seg_frame_copy_hash(uint8_t *dst, const void *payload,
						       uint32_t len, const uint8_t *secret,
						       uint64_t salt)
{
	memcpy(dst, payload, len);
	return XXH3_64bits_withSecretandSeed(payload, len, secret, SEG_SECRET_SIZE, salt);
}

void seg_frame_write(uint8_t *out, uint64_t salt, const uint8_t secret[SEG_SECRET_SIZE],
		     uint32_t seq_delta, int32_t ts_delta, const void *payload, uint32_t len)
{
	seg_frame_write_inline(out, salt, secret, seq_delta, ts_delta, payload, len);
}

int seg_frame_check(const uint8_t *buf, size_t avail, const seg_header *h, const uint8_t *secret,
		    seg_frame *f)
{
	uint32_t c, len, want;

	if (avail < SEG_FRAME_HEADER) {
		size_t i;
		for (i = 0; i < avail && buf[i] == 0; i++)
			;
		return i == avail ? SEG_END : SEG_SHORT;
	}
	c = seg_get32(buf);
	len = seg_get32(buf + 4);
	if (c == 0 && len == 0)
		return SEG_END;
	if (len == 0 || len > SEG_MAX_PAYLOAD)
		return SEG_BAD;
	if (len > avail - SEG_FRAME_HEADER)
		return SEG_SHORT;
	if (secret)
		want = (uint32_t)XXH3_64bits_withSeed(
			buf + 4, 12, payload_hash(h->salt, secret, buf + SEG_FRAME_HEADER, len));
	else
		want = seg_frame_checksum(h->salt, buf + 4, buf + SEG_FRAME_HEADER, len);
	if (want == 0)
		want = 1;
	if (c != want)
		return SEG_BAD;
	f->seq_delta = seg_get32(buf + 8);
	f->seq = h->base_seq + f->seq_delta;
	f->ts_ms = h->base_ts_ms + (int32_t)seg_get32(buf + 12);
	f->data = buf + SEG_FRAME_HEADER;
	f->len = len;
	return SEG_OK;
}

void seg_name(char out[SEG_NAME_LEN + 1], uint64_t base_seq)
{
	snprintf(out, SEG_NAME_LEN + 1, "%020llu.seg", (unsigned long long)base_seq);
}

int seg_name_parse(const char *name, uint64_t *base)
{
	uint64_t v = 0;
	int i;

	if (strlen(name) != SEG_NAME_LEN || strcmp(name + 20, ".seg") != 0)
		return 0;
	for (i = 0; i < 20; i++) {
		unsigned d;
		if (name[i] < '0' || name[i] > '9')
			return 0;
		d = (unsigned)(name[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	if (v == 0)
		return 0;
	*base = v;
	return 1;
}

int seg_stillborn(const uint8_t *p, size_t n)
{
	size_t i;
	uint8_t ph[SEG_HEADER_SIZE];

	seg_header_placeholder(ph);
	if (n >= SEG_HEADER_SIZE && !memcmp(p, ph, SEG_HEADER_SIZE))
		return 1;
	for (i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

uint32_t seg_checksum32(const void *p, size_t n)
{
	return (uint32_t)XXH3_64bits(p, n);
}
