/*
 * seg_mphead.c - the msgpack type table of seg_mphead.h.
 */
#include "seg_mphead.h"

#define SEG_MP_TYPE(kind, lenw, n) {SEG_MP_##kind, lenw, n, SEG_MP_##kind == SEG_MP_EXT},
const seg_mp_type seg_mp_types[256] = {SEG_MP_TABLE(SEG_MP_TYPE)};
