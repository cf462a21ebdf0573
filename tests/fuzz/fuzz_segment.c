/*
 * fuzz_segment.c - the segment reader and recovery on arbitrary segment
 * bytes: edgelog_reader, edgelog_status_dir, edgelog_open (recovery at
 * open), an append, edgelog_repair, and the reader again.
 *
 * The input is the image of one segment file. So that the fuzzer gets past
 * the checksums, they are recomputed before the file is written: the
 * header's when its magic is right, and each frame's, walking the frames by
 * their length fields, except the frames whose bit is set in header byte 48
 * (a reserved byte: the mask is cleared before the header checksum). The
 * file is named after its header's base_seq (1 if that cannot be a name).
 *
 * Invariants:
 *  - every record the reader returns before open is returned after open,
 *    and after a successful repair, with the same bytes;
 *  - the seq open hands to a new record is above every seq read before;
 *  - after a successful repair the reader reports no damage.
 */
#include <string.h>

#include <edgelog.h>

#include "fuzz.h"
#include "seg_format.h"

#define MAX_RECS 4096

typedef struct rec {
	uint64_t seq;
	uint64_t hash;
	size_t len;
} rec;

typedef struct pass {
	rec r[MAX_RECS];
	size_t n;
	uint64_t corrupt, max_seq;
} pass;

static pass before, after;

static uint64_t fnv(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ull;
	while (n--)
		h = (h ^ *b++) * 0x100000001b3ull;
	return h;
}

static void on_corrupt(void *payload, const char *segment, uint64_t off, uint64_t len,
		       const char *why)
{
	(void)segment;
	(void)off;
	(void)len;
	(void)why;
	((pass *)payload)->corrupt++;
}

/* Read everything (bounded). Returns 0, or the error code of open. */
static int read_all(const char *dir, pass *p)
{
	edgelog_reader *r;
	edgelog_record rec;
	int rc, k = 0;

	memset(p, 0, sizeof(*p));
	if ((rc = edgelog_reader_open(&r, dir, 0)))
		return rc;
	edgelog_reader_on_corrupt(r, on_corrupt, p);
	while (k++ < 100000 && (rc = edgelog_reader_next(r, &rec)) == 0) {
		if (p->n < MAX_RECS) {
			p->r[p->n].seq = rec.seq;
			p->r[p->n].len = rec.len;
			p->r[p->n].hash = fnv(rec.data, rec.len);
			p->n++;
		}
		if (rec.seq > p->max_seq)
			p->max_seq = rec.seq;
	}
	FUZZ_CHECK(rc == EDGELOG_EOF || rc == 0 || rc < 0, "reader: %d", rc);
	edgelog_reader_close(r);
	return 0;
}

static void all_still_there(const pass *a, const pass *b, const char *when)
{
	size_t i, j;

	for (i = 0; i < a->n; i++) {
		int found = 0;
		for (j = 0; j < b->n && !found; j++)
			found = b->r[j].seq == a->r[i].seq && b->r[j].len == a->r[i].len &&
				b->r[j].hash == a->r[i].hash;
		FUZZ_CHECK(found, "seq %llu (%zu bytes) readable before, not %s",
			   (unsigned long long)a->r[i].seq, a->r[i].len, when);
	}
}

static void fix_checksums(uint8_t *b, size_t n)
{
	seg_header h;
	uint8_t mask;
	size_t pos = SEG_HEADER_SIZE;
	int i = 0;

	if (n < SEG_HEADER_SIZE || memcmp(b, SEG_MAGIC, SEG_MAGIC_LEN))
		return;
	mask = b[48];
	b[48] = 0;
	h.version = seg_get32(b + 8);
	h.flags = seg_get32(b + 12);
	h.base_seq = seg_get64(b + 16);
	h.base_ts_ms = (int64_t)seg_get64(b + 24);
	h.salt = seg_get64(b + 32);
	h.age_ms = (int64_t)seg_get64(b + 40);
	{
		uint8_t enc[SEG_HEADER_SIZE];
		seg_header_encode(&h, enc);
		memcpy(b, enc, SEG_HEADER_SIZE); /* same fields, checksum fixed */
	}
	while (pos + SEG_FRAME_HEADER <= n) {
		uint32_t len = seg_get32(b + pos + 4);
		if (len == 0 || len > SEG_MAX_PAYLOAD || len > n - pos - SEG_FRAME_HEADER)
			break;
		if (!(i < 8 && (mask >> i) & 1)) {
			uint32_t c = seg_frame_checksum(h.salt, b + pos + 4,
							b + pos + SEG_FRAME_HEADER, len);
			seg_put32(b + pos, c ? c : 1);
		}
		pos += SEG_FRAME_HEADER + len;
		i++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char dir[4200];
	char segdir[4300], path[4400], name[SEG_NAME_LEN + 1];
	uint8_t *img;
	uint64_t base = 1;
	edgelog_config c;
	edgelog *log;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog_repair_report rep;
	int live, rc;

	if (size > (1u << 20))
		return 0;
	img = malloc(size ? size : 1);
	if (!img)
		return 0;
	memcpy(img, data, size);
	fix_checksums(img, size);
	if (size >= SEG_HEADER_SIZE) {
		uint64_t b = seg_get64(img + 16);
		if (b && b < SEG_SEQ_LIMIT)
			base = b;
	}
	snprintf(dir, sizeof(dir), "%s", fuzz_fresh_dir("seg"));
	snprintf(segdir, sizeof(segdir), "%s/segments", dir);
	fuzz_fresh_dir("seg/segments");
	seg_name(name, base);
	snprintf(path, sizeof(path), "%s/%s", segdir, name);
	fuzz_write_file(path, img, size);
	free(img);

	read_all(dir, &before);
	edgelog_status_dir(dir, &st, &live);

	edgelog_config_init(&c);
	c.dir = dir;
	c.device_id = "fuzz";
	c.segment_bytes = 65536;
	c.sync = EDGELOG_SYNC_NONE;
	c.log_fn = fuzz_quiet_log;
	rc = edgelog_open(&log, &c);
	if (rc == 0) {
		uint64_t seq = 0;
		static const uint8_t one = 0x01;
		rc = edgelog_append(log, &one, 1, &seq);
		if (rc == 0)
			FUZZ_CHECK(seq > before.max_seq,
				   "new record got seq %llu, one read before was %llu",
				   (unsigned long long)seq, (unsigned long long)before.max_seq);
		edgelog_close(log);
		read_all(dir, &after);
		all_still_there(&before, &after, "after open");
	}
	memset(&rep, 0, sizeof(rep));
	if (edgelog_repair(dir, &rep) == 0) {
		read_all(dir, &after);
		FUZZ_CHECK(after.corrupt == 0, "%llu damaged range(s) after a successful repair",
			   (unsigned long long)after.corrupt);
		all_still_there(&before, &after, "after repair");
	}
	return 0;
}
