/*
 * test_util.h - helpers shared by the Check runners: temporary directories,
 * whole-file I/O, a deterministic PRNG, and realistic msgpack prediction
 * records shaped like /work/shared/data/prediction.json.
 *
 * Every helper aborts the test (via ck_abort_msg) on an I/O failure, so a
 * caller never has to check a return value for set-up work.
 */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A heap buffer; free with tu_buf_free(). */
typedef struct tu_buf {
	uint8_t *data;
	size_t len;
} tu_buf;

void tu_buf_free(tu_buf *b);

/* EDGELOG_TEST_TIME_FACTOR (default 1): how much longer a test should wait
 * for things, where programs run slower (under qemu). Scales waits and
 * deadlines, never what is asserted. */
int tu_time_factor(void);

/* full scaled by EDGELOG_TEST_ITERATIONS, a percentage (default 100; at
 * least 1 is left): how many trials a long randomised test runs. Under
 * qemu (scripts/cross.sh) the slowest runners do a share of their trials;
 * natively (./test.sh, CI's sanitizer runs) always the full count. */
int tu_iterations(int full);

/* Where test directories go: $TMPDIR if set (CI points it at an ext4
 * mount to run the suite on a real disk file system), else /tmp. */
const char *tu_tmpdir(void);

/* Create a fresh directory <root>/<prefix>-XXXXXX (root: see below, else
 * tu_tmpdir()); returns a malloc'd path. It is removed when the test process exits
 * normally. */
char *tu_mkdtemp(const char *prefix);

/* A per-test-case root for tu_mkdtemp, as a Check *unchecked* fixture:
 * tcase_add_unchecked_fixture(tc, tu_tmp_root_setup, tu_tmp_root_teardown).
 * The fixture runs in the parent process, so the teardown removes what a
 * failed test left behind (Check ends a failed forked test with _exit(),
 * which skips atexit handlers). */
void tu_tmp_root_setup(void);
void tu_tmp_root_teardown(void);

/* Remove path and everything below it (like rm -rf); a missing path is
 * fine. Returns 0 or -1. */
int tu_rm_rf(const char *path);

/* Remove every entry of dir but keep dir itself. */
void tu_empty_dir(const char *dir);

/* "dir/name" in a static rotating buffer (8 slots): use it at once. */
const char *tu_path(const char *dir, const char *name);

/* Whole-file helpers. tu_read_file aborts the test if path is unreadable. */
tu_buf tu_read_file(const char *path);
void tu_write_file(const char *path, const void *data, size_t len);
int tu_file_exists(const char *path);
uint64_t tu_file_size(const char *path);
/* Number of directory entries whose name ends with suffix ("" = all). */
int tu_count_entries(const char *dir, const char *suffix);

/* splitmix64: a deterministic PRNG; *state is the seed. */
uint64_t tu_rand(uint64_t *state);
/* Uniform in [0, n). */
uint64_t tu_rand_below(uint64_t *state, uint64_t n);

/*
 * One msgpack prediction record (a map of 11 keys: device_id, model, ts,
 * ts_ns, request_id, label, confidence, top5, latency_ms, bbox, meta), with
 * request_id, ts, ts_ns, label, scores, box and meta.frame derived from
 * index and seed so that no two records are alike: the sample generator's
 * tool_sample_msgpack_ex(seed, index, 0) (tools/tool_sample.h), in a
 * malloc'd buffer. About 425 bytes.
 */
tu_buf tu_prediction(uint64_t index, uint64_t seed);

/* EDGELOG_TEST_SEED (any base strtoull accepts), else 1: lets a run with
 * a printed seed be replayed. */
uint64_t tu_seed(void);

/*
 * Issue 9, defect 1: `levels` msgpack maps, each the only key of the next
 * (the innermost is {"k": 0}, every value above it nil). 40 levels make the
 * 82-byte record whose JSON once doubled at every level. out needs
 * 2 * levels + 2 bytes; returns the length. tu_nested_key_json is the JSON
 * the conversion must give (malloc'd): {"<key text>": null}, the key text
 * being the inner maps' compact JSON with their map keys bare.
 */
size_t tu_nested_key_record(int levels, uint8_t *out);
char *tu_nested_key_json(int levels);

/* A log_fn that drops every message (tests that provoke warnings). */
void tu_quiet_log(void *payload, int level, const char *msg);

/*
 * Self-describing records: msgpack [key (uint64), bin of min + key % spread
 * bytes derived from key], so any record found can be checked. Largest:
 * 13 + min + spread - 1 bytes. tu_keyed_record_key gives the key of such a
 * record made with the same min and spread, or 0 if the bytes are not one.
 */
size_t tu_keyed_record(uint64_t key, size_t min, size_t spread, uint8_t *out);
uint64_t tu_keyed_record_key(const uint8_t *p, size_t len, size_t min, size_t spread);

/* edgelog_open, failing the test with the library's message if it fails. */
struct edgelog_config;
struct edgelog *tu_open_ok(const struct edgelog_config *c);

#endif
