/*
 * fuzz_cursor.c - the cursor file: cur_decode on each slot, cur_load on
 * the whole file, then edgelog_open on a directory holding it.
 *
 * The input is the file. Each slot that starts with the magic gets its
 * checksum recomputed, so the fuzzer reaches the fields.
 *
 * Invariants:
 *  - a slot that decodes encodes back to a slot that decodes to the same
 *    state;
 *  - cur_load returns the valid slot with the higher generation;
 *  - an engine opened on it hands a new record a seq above the cursor's
 *    acked_seq and last_seq (no seq the cloud may have seen is reused).
 */
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <edgelog.h>

#include "fuzz.h"
#include "seg_cursor.h"
#include "seg_format.h"
#include "seg_vfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t file[2 * CUR_SLOT_STRIDE];
	cur_state s[2], loaded;
	int r[2], how = -1, i, rc;
	char dir[4200], path[4400];
	seg_err e;
	edgelog_config c;
	edgelog *log;

	if (size > sizeof(file))
		size = sizeof(file);
	memset(file, 0, sizeof(file));
	memcpy(file, data, size);
	for (i = 0; i < 2; i++) {
		uint8_t *slot = file + i * CUR_SLOT_STRIDE;
		if (!memcmp(slot, "ELCURSOR", 8)) {
			seg_put32(slot + CUR_SLOT_SIZE - 4,
				  (uint32_t)XXH3_64bits(slot, CUR_SLOT_SIZE - 4));
			/* The file holds the whole slot it was fixed for. */
			if (size < i * CUR_SLOT_STRIDE + CUR_SLOT_SIZE)
				size = i * CUR_SLOT_STRIDE + CUR_SLOT_SIZE;
		}
		memset(&s[i], 0, sizeof(s[i]));
		r[i] = cur_decode(slot, &s[i]);
		if (r[i] == SEG_OK) {
			uint8_t again[CUR_SLOT_SIZE];
			cur_state t;
			memset(&t, 0, sizeof(t));
			cur_encode(&s[i], again);
			FUZZ_CHECK(cur_decode(again, &t) == SEG_OK, "slot %d re-encoded is refused",
				   i);
			FUZZ_CHECK(!memcmp(&t, &s[i], sizeof(t)), "slot %d changes on re-encoding",
				   i);
		}
	}
	snprintf(dir, sizeof(dir), "%s", fuzz_fresh_dir("cur"));
	snprintf(path, sizeof(path), "%s/cursor", dir);
	fuzz_write_file(path, file, size);
	memset(&loaded, 0, sizeof(loaded));
	rc = cur_load(seg_vfs_posix(), path, &loaded, &how, &e);
	if (rc == 0 && (how == CUR_LOADED || how == CUR_FALLBACK)) {
		const cur_state *want =
			r[0] == SEG_OK && (r[1] != SEG_OK || s[0].generation >= s[1].generation) ?
				&s[0] :
				&s[1];
		FUZZ_CHECK(r[0] == SEG_OK || r[1] == SEG_OK, "loaded a cursor with no valid slot");
		FUZZ_CHECK(loaded.generation == want->generation &&
				   loaded.acked_seq == want->acked_seq &&
				   loaded.last_seq == want->last_seq,
			   "loaded generation %llu, newest valid slot has %llu",
			   (unsigned long long)loaded.generation,
			   (unsigned long long)want->generation);
	}

	edgelog_config_init(&c);
	c.dir = dir;
	c.device_id = "fuzz";
	c.segment_bytes = 65536;
	c.sync = EDGELOG_SYNC_NONE;
	c.log_fn = fuzz_quiet_log;
	if (edgelog_open(&log, &c) == 0) {
		static const uint8_t one = 0x01;
		uint64_t seq = 0;
		if (edgelog_append(log, &one, 1, &seq) == 0 && rc == 0 &&
		    (how == CUR_LOADED || how == CUR_FALLBACK))
			FUZZ_CHECK(seq > loaded.acked_seq && seq > loaded.last_seq,
				   "seq %llu handed out under a cursor at acked %llu last %llu",
				   (unsigned long long)seq, (unsigned long long)loaded.acked_seq,
				   (unsigned long long)loaded.last_seq);
		edgelog_close(log);
	}
	return 0;
}
