/*
 * gen_seeds.c - make the fuzz targets' seed corpora from real data: an
 * engine writes segments and a cursor, the uploader's encoder writes
 * request bodies, the sample generator writes predictions (msgpack and
 * JSON). Plus the regression inputs of issue 9 (defect 1: 40 maps, each
 * the key of the next; defect 8: headers whose ranges cannot be right).
 *
 *   gen_seeds OUTDIR     writes OUTDIR/fuzz_NAME/seed-* and regress-*
 *
 * tests/fuzz/corpus holds its output (checked in, a few KiB a target);
 * scripts/fuzz.sh runs it again into its working corpus.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <edgelog.h>

#include "fuzz.h"
#include "seg_format.h"
#include "seg_json.h"
#include "test_util.h"
#include "tool_sample.h"
#include "upl_internal.h"

static const char *out_root;

static void put(const char *target, const char *name, const void *p, size_t n)
{
	char path[8192];

	snprintf(path, sizeof(path), "%s/%s", out_root, target);
	if (mkdir(path, 0755) && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", out_root, target, name);
	fuzz_write_file(path, p, n);
}

static void put2(const char *target, const char *name, uint8_t first, const void *p, size_t n)
{
	uint8_t *b = malloc(n + 1);
	b[0] = first;
	memcpy(b + 1, p, n);
	put(target, name, b, n + 1);
	free(b);
}

/* A segment of n sample records written by the engine, cut after its last
 * frame; and its cursor file. */
static void segments(void)
{
	static const int counts[] = {1, 3, 12};
	size_t k;

	for (k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		char dir[4200], path[4400], name[64];
		edgelog_config c;
		edgelog *log;
		edgelog_reader *r;
		edgelog_record rec;
		uint64_t seq, end = SEG_HEADER_SIZE;
		uint8_t buf[2048], *img;
		FILE *f;
		size_t n;
		int i;

		snprintf(dir, sizeof(dir), "%s", fuzz_fresh_dir("gen"));
		edgelog_config_init(&c);
		c.dir = dir;
		c.device_id = "seed";
		c.segment_bytes = 65536;
		c.log_fn = fuzz_quiet_log;
		if (edgelog_open(&log, &c)) {
			fprintf(stderr, "gen_seeds: open %s: %s\n", dir, edgelog_errmsg(NULL));
			exit(1);
		}
		for (i = 1; i <= counts[k]; i++) {
			n = tool_sample_msgpack((uint64_t)i, buf, sizeof(buf));
			edgelog_append(log, buf, n, &seq);
		}
		edgelog_close(log);
		if (edgelog_reader_open(&r, dir, 0))
			exit(1);
		while (edgelog_reader_next(r, &rec) == 0) {
			end = rec.offset + SEG_FRAME_HEADER + rec.len;
			snprintf(name, sizeof(name), "%s", rec.segment);
		}
		edgelog_reader_close(r);
		snprintf(path, sizeof(path), "%s/segments/%s", dir, name);
		img = calloc(1, (size_t)end + 32);
		f = fopen(path, "rb");
		if (!f || fread(img, 1, (size_t)end, f) != end)
			exit(1);
		fclose(f);
		snprintf(name, sizeof(name), "seed-%d-records", counts[k]);
		put("fuzz_segment", name, img, (size_t)end + 32);
		if (counts[k] == 3) {
			/* Torn: the last frame cut in the middle. */
			put("fuzz_segment", "seed-torn-tail", img, (size_t)end - 100);
			/* A hole: the second frame's header zeroed (mask keeps it). */
			{
				uint8_t *h = malloc((size_t)end + 32);
				uint64_t second =
					SEG_HEADER_SIZE + SEG_FRAME_HEADER + seg_get32(img + 68);
				memcpy(h, img, (size_t)end + 32);
				memset(h + second, 0, 16);
				put("fuzz_segment", "seed-zero-hole", h, (size_t)end + 32);
				/* A flipped payload byte in frame 1, its checksum kept
				 * wrong (bit 1 of header byte 48). */
				memcpy(h, img, (size_t)end + 32);
				h[48] = 0x02;
				h[second + 40] ^= 0x40;
				put("fuzz_segment", "seed-damaged-frame", h, (size_t)end + 32);
				/* Defect 8: base_seq near 2^64 (seqs would wrap). */
				memcpy(h, img, (size_t)end + 32);
				seg_put64(h + 16, UINT64_MAX - 1);
				put("fuzz_segment", "regress-defect8-seq-wrap", h,
				    (size_t)end + 32);
				/* Defect 8: base_ts near INT64_MAX and near INT64_MIN. */
				memcpy(h, img, (size_t)end + 32);
				seg_put64(h + 24, (uint64_t)(INT64_MAX - 5));
				put("fuzz_segment", "regress-defect8-ts-max", h, (size_t)end + 32);
				seg_put64(h + 24, (uint64_t)INT64_MIN + 5);
				put("fuzz_segment", "regress-defect8-ts-min", h, (size_t)end + 32);
				free(h);
			}
			snprintf(path, sizeof(path), "%s/cursor", dir);
			f = fopen(path, "rb");
			if (f) {
				uint8_t cur[4096];
				size_t cn = fread(cur, 1, sizeof(cur), f);
				fclose(f);
				put("fuzz_cursor", "seed-cursor-3-records", cur, cn);
			}
		}
		free(img);
	}
}

static void records(void)
{
	uint8_t buf[2048];
	char json[4096];
	size_t n;
	uint64_t i;

	for (i = 1; i <= 3; i++) {
		char name[64];
		n = tool_sample_msgpack(i, buf, sizeof(buf));
		snprintf(name, sizeof(name), "seed-sample-%llu", (unsigned long long)i);
		put("fuzz_mp_json", name, buf, n);
		put2("fuzz_append", name, 0x00, buf, n);
		n = tool_sample_json(i, json, sizeof(json));
		snprintf(name, sizeof(name), "seed-sample-%llu-json", (unsigned long long)i);
		put2("fuzz_append", name, 0x01, json, n);
	}
	{
		static const char *const js[] = {
			"[1,-2,3.5,1e300,\"\\u00e9\\n\",null,true,{}]",
			"{\"a\":{\"b\":[18446744073709551615,-9223372036854775808]}}",
			"\"\\ud83d\\ude00\""};
		for (i = 0; i < 3; i++) {
			char name[64];
			snprintf(name, sizeof(name), "seed-json-%llu", (unsigned long long)i);
			put2("fuzz_append", name, 0x01, js[i], strlen(js[i]));
		}
	}
	/* Defect 1: 40 maps used as keys, 82 bytes (and a deeper one). */
	n = tu_nested_key_record(40, buf);
	put("fuzz_mp_json", "regress-defect1-nested-map-keys", buf, n);
	put2("fuzz_append", "regress-defect1-nested-map-keys", 0x00, buf, n);
	n = tu_nested_key_record(250, buf);
	put("fuzz_mp_json", "regress-defect1-nested-map-keys-250", buf, n);
	{
		/* A map of fixext keys: the densest JSON per msgpack byte. */
		uint8_t m[3 + 4 * 16];
		size_t k = 0;
		int e;
		m[k++] = 0xde;
		m[k++] = 0;
		m[k++] = 16;
		for (e = 0; e < 16; e++) {
			m[k++] = 0xd4;
			m[k++] = 0x80;
			m[k++] = (uint8_t)e;
			m[k++] = 0xc0;
		}
		put("fuzz_mp_json", "seed-ext-keys", m, k);
	}
}

static void bodies(void)
{
	static const char *const fmt_name[] = {"", "ndjson", "json", "msgpack"};
	uint8_t buf[2048], nk[128];
	int f, gz;

	for (f = EDGELOG_FORMAT_NDJSON; f <= EDGELOG_FORMAT_MSGPACK; f++)
		for (gz = 0; gz <= 1; gz++) {
			seg_buf b = {0}, z = {0};
			char name[64];
			uint64_t i;
			size_t n;
			upl_body_begin(&b, f);
			for (i = 1; i <= 3; i++) {
				n = tool_sample_msgpack(i, buf, sizeof(buf));
				upl_body_record(&b, f, i == 1, "seed-dev", i, 1700000000000ll, buf,
						n, NULL);
			}
			n = tu_nested_key_record(40, nk);
			upl_body_record(&b, f, 0, "seed-dev", 4, 1700000000000ll, nk, n, NULL);
			upl_body_end(&b, f);
			snprintf(name, sizeof(name), "seed-%s%s", fmt_name[f], gz ? "-gzip" : "");
			if (gz && upl_gzip(b.p, b.len, &z) == 0)
				put2("fuzz_sink_body", name, (uint8_t)(f | 0x10), z.p, z.len);
			else if (!gz)
				put2("fuzz_sink_body", name, (uint8_t)f, b.p, b.len);
			if (!gz && f != EDGELOG_FORMAT_JSON)
				put2("fuzz_run_split", name, f == EDGELOG_FORMAT_MSGPACK ? 1 : 0,
				     b.p, b.len);
			seg_buf_free(&b);
			seg_buf_free(&z);
		}
	{
		static const char *const ra[] = {"120", "  0", "Sun, 06 Nov 1994 08:49:37 GMT",
						 "Wed, 21 Oct 2026 07:28:00 GMT",
						 "Thu, 31 Dec 9999 23:59:59 GMT"};
		size_t i;
		for (i = 0; i < sizeof(ra) / sizeof(ra[0]); i++) {
			char name[32];
			snprintf(name, sizeof(name), "seed-%zu", i);
			put("fuzz_retry_after", name, ra[i], strlen(ra[i]));
		}
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_seeds OUTDIR\n");
		return 2;
	}
	out_root = argv[1];
	if (mkdir(out_root, 0755) && errno != EEXIST) {
		perror(out_root);
		return 1;
	}
	segments();
	records();
	bodies();
	return 0;
}
