/*
 * tool_sample.h - realistic sample predictions (the shape of
 * shared/data/prediction.json), deterministic per index, for the demo, the
 * tests and the benchmarks. Record i is always the same bytes, so a
 * checker can regenerate what a killed writer appended.
 */
#ifndef TOOL_SAMPLE_H
#define TOOL_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

/* Encode prediction number i as msgpack into buf (cap bytes). Returns its
 * length (about 425 bytes), or 0 if cap is too small. */
size_t tool_sample_msgpack(uint64_t i, uint8_t *buf, size_t cap);

/* The same prediction as compact JSON text (about 490 bytes); returns its
 * length, or 0 if cap is too small. */
size_t tool_sample_json(uint64_t i, char *buf, size_t cap);

#endif
