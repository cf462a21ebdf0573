/*
 * seg_mpack.h - a small msgpack writer into a seg_buf, and the length of
 * the first object of a buffer. The writer picks the same encodings as
 * msgpack-c's packer (the smallest integer form, str8 for strings of 32 to
 * 255 bytes, float64 for doubles), so records written through it are the
 * bytes msgpack-c would have written. Out of memory sets the buffer's oom
 * flag, as every seg_buf append does.
 */
#ifndef SEG_MPACK_H
#define SEG_MPACK_H

#include <stddef.h>
#include <stdint.h>

#include "seg_json.h"

void seg_mp_nil(seg_buf *b);
void seg_mp_bool(seg_buf *b, int v);
void seg_mp_int(seg_buf *b, int64_t v);
void seg_mp_uint(seg_buf *b, uint64_t v);
void seg_mp_double(seg_buf *b, double v);
void seg_mp_str(seg_buf *b, const void *s, size_t n);
void seg_mp_array(seg_buf *b, uint32_t n);
void seg_mp_map(seg_buf *b, uint32_t n);

/* The byte length of the msgpack object that starts at p (len bytes
 * readable), or 0 if it is cut short or holds the never-used byte 0xc1.
 * Bounded on any input: no recursion, one pass. */
size_t seg_mp_next(const void *p, size_t len);

#endif
