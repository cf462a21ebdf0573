/*
 * fuzz.h - shared by the libFuzzer targets in tests/fuzz/.
 *
 * Each fuzz_*.c defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize). Built two ways (tests/fuzz/CMakeLists.txt):
 *
 *  - with clang -fsanitize=fuzzer (EDGELOG_FUZZ=ON, the `fuzz` preset,
 *    scripts/fuzz.sh and .ci/run): libFuzzer drives it;
 *  - with any compiler and replay.c as main(): every file of the target's
 *    corpus (tests/fuzz/corpus/NAME, seeds and regression inputs) is run
 *    once, as the CTest entry fuzz_NAME (label fuzz).
 *
 * An invariant that does not hold aborts (libFuzzer saves the input; the
 * replay run fails). Nothing depends on the working directory: scratch
 * files go in a directory made under $TMPDIR (or /tmp), removed at exit.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, ...)                                                                \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, \
				#cond);                                                      \
			fprintf(stderr, __VA_ARGS__);                                        \
			fputc('\n', stderr);                                                 \
			abort();                                                             \
		}                                                                            \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* This process's scratch directory (made on first use, removed at exit). */
const char *fuzz_tmpdir(void);
/* A fresh, empty directory below it (the same path on every call). */
const char *fuzz_fresh_dir(const char *name);
void fuzz_rm_rf(const char *path);
void fuzz_write_file(const char *path, const void *data, size_t n);
/* A log_fn that drops everything. */
void fuzz_quiet_log(void *payload, int level, const char *msg);

#endif
