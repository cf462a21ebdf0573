/*
 * fuzz_append.c - edgelog_append and edgelog_append_json, read back.
 *
 * The first input byte chooses: even, the rest is a msgpack record for
 * edgelog_append; odd, JSON text for edgelog_append_json.
 *
 * Invariants:
 *  - edgelog_append accepts exactly what seg_mp_validate accepts (up to
 *    EDGELOG_MAX_RECORD), and an accepted record reads back byte for byte
 *    under the seq it was given, seqs increasing by one;
 *  - a JSON text edgelog_append_json accepts is stored as one msgpack
 *    object; its JSON (seg_mp_to_json) is accepted again and stores the
 *    very same bytes (the round trip is stable).
 *
 * One engine per process (sync none), in a fresh directory every 2000
 * inputs so the disk stays small.
 */
#include <string.h>

#include <edgelog.h>

#include "fuzz.h"
#include "seg_format.h"
#include "seg_json.h"

static edgelog *g_log;
static char g_dir[4200];
static unsigned g_count;
static uint64_t g_last;

static void reopen(void)
{
	edgelog_config c;
	int rc;

	if (g_log)
		edgelog_close(g_log);
	snprintf(g_dir, sizeof(g_dir), "%s", fuzz_fresh_dir("append"));
	edgelog_config_init(&c);
	c.dir = g_dir;
	c.device_id = "fuzz";
	c.segment_bytes = 1u << 20;
	c.sync = EDGELOG_SYNC_NONE;
	c.max_size_mb = 64;
	c.log_fn = fuzz_quiet_log;
	rc = edgelog_open(&g_log, &c);
	FUZZ_CHECK(rc == 0, "open %s: %s", g_dir, edgelog_errmsg(NULL));
	g_last = 0;
}

static void close_at_exit(void)
{
	edgelog_close(g_log);
	g_log = NULL;
}

/* The bytes stored under seq (malloc'd, *n set), or NULL. */
static uint8_t *read_back(uint64_t seq, size_t *n)
{
	edgelog_reader *r;
	edgelog_record rec;
	uint8_t *out = NULL;

	FUZZ_CHECK(edgelog_reader_open(&r, g_dir, seq) == 0, "reader on %s", g_dir);
	if (edgelog_reader_next(r, &rec) == 0 && rec.seq == seq) {
		out = malloc(rec.len ? rec.len : 1);
		FUZZ_CHECK(out != NULL, "out of memory");
		memcpy(out, rec.data, rec.len);
		*n = rec.len;
	}
	edgelog_reader_close(r);
	return out;
}

static void check_seq(uint64_t seq)
{
	FUZZ_CHECK(!g_last || seq == g_last + 1, "seq %llu after %llu", (unsigned long long)seq,
		   (unsigned long long)g_last);
	g_last = seq;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t seq = 0;
	size_t n;
	uint8_t *back;
	int rc;

	if (!g_log || ++g_count % 2000 == 0) {
		if (!g_log)
			atexit(close_at_exit);
		reopen();
	}
	if (size < 1)
		return 0;
	if (!(data[0] & 1)) {
		const uint8_t *rec = data + 1;
		size_t len = size - 1;
		int valid = len > 0 && len <= EDGELOG_MAX_RECORD && seg_mp_validate(rec, len) == 0;
		rc = edgelog_append(g_log, rec, len, &seq);
		FUZZ_CHECK((rc == 0) == valid, "append of %zu bytes: %d, validator says %d", len,
			   rc, valid);
		if (rc)
			return 0;
		check_seq(seq);
		back = read_back(seq, &n);
		FUZZ_CHECK(back && n == len && !memcmp(back, rec, len),
			   "seq %llu does not read back as appended", (unsigned long long)seq);
		free(back);
		return 0;
	}
	rc = edgelog_append_json(g_log, (const char *)data + 1, size - 1, &seq);
	if (rc)
		return 0;
	check_seq(seq);
	back = read_back(seq, &n);
	FUZZ_CHECK(back != NULL, "seq %llu not readable", (unsigned long long)seq);
	FUZZ_CHECK(seg_mp_validate(back, n) == 0, "append_json stored invalid msgpack");
	{
		seg_buf j = {0};
		uint64_t seq2;
		size_t n2;
		uint8_t *back2;
		FUZZ_CHECK(seg_mp_to_json(back, n, &j) == 0, "stored record has no JSON");
		rc = edgelog_append_json(g_log, j.p, j.len, &seq2);
		FUZZ_CHECK(rc == 0, "its own JSON is refused (%s): %.300s", edgelog_errmsg(g_log),
			   j.p);
		check_seq(seq2);
		back2 = read_back(seq2, &n2);
		FUZZ_CHECK(back2 && n2 == n && !memcmp(back2, back, n),
			   "JSON round trip changed the record: %.300s", j.p);
		free(back2);
		seg_buf_free(&j);
	}
	free(back);
	return 0;
}
