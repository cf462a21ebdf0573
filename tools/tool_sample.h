/*
 * tool_sample.h - the one generator of sample predictions (the shape of
 * shared/data/prediction.json) for the demo, the tests and the benchmarks.
 * Deterministic: record (seed, i) is always the same bytes, so a checker
 * can regenerate what a killed writer appended. Fields vary per record as
 * a real detector's do (request id, timestamps, label, scores, box, frame
 * number), so sizes and compression ratios stay realistic.
 */
#ifndef TOOL_SAMPLE_H
#define TOOL_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

/* Shape flags. */
/* A 12th key, "seq_hint": the index i (tool_sample_msgpack's records). */
#define TOOL_SAMPLE_SEQ_HINT 1u
/* bench_append's records: the top-5 labels always person, suitcase, dog,
 * bottle, chair (so every record has the same size: 425 bytes of msgpack
 * without seq_hint), and every number rounded as the JSON form prints it
 * (confidence to 4 decimals, the rest to 3), so that the msgpack and the
 * JSON forms hold the same values. */
#define TOOL_SAMPLE_FIXED 2u

/* Encode prediction (seed, i) in the given shape as msgpack into buf (cap
 * bytes). Returns its length, or 0 if cap is too small. */
size_t tool_sample_msgpack_ex(uint64_t seed, uint64_t i, unsigned flags, uint8_t *buf, size_t cap);

/* The same prediction as compact JSON text (NUL-terminated); returns its
 * length, or 0 if cap is too small. Without TOOL_SAMPLE_FIXED, confidence
 * is printed to 4 decimals and the other reals to 3 (the msgpack form
 * keeps them whole). */
size_t tool_sample_json_ex(uint64_t seed, uint64_t i, unsigned flags, char *buf, size_t cap);

/* tool_sample_msgpack_ex(0, i, TOOL_SAMPLE_SEQ_HINT, ...): about 442
 * bytes. */
size_t tool_sample_msgpack(uint64_t i, uint8_t *buf, size_t cap);

/* tool_sample_json_ex(0, i, TOOL_SAMPLE_SEQ_HINT, ...): about 510 bytes. */
size_t tool_sample_json(uint64_t i, char *buf, size_t cap);

#endif
