/*
 * bench_instr.c - instructions per append, counted by callgrind (run it
 * through bench/instructions.sh). Deterministic, unlike time: the same count
 * on a busy or an idle machine, so the CPU cost of an append can be checked
 * on any machine.
 *
 * One process: open the engine (sync=none, so that no time-driven interval
 * sync lands in the window), append N records, then N more, and the same for
 * edgelog_append_json. Callgrind's client requests dump the counters at each
 * boundary; the instructions between the dump after N appends and the dump
 * after 2N appends, divided by N, are the marginal cost of one append (open,
 * first faults and warm-up are outside the window). Every record is
 * generated before the window opens; segment rolls inside the window are
 * part of the cost, as in real use. Outside valgrind the requests do
 * nothing and the program just appends.
 */
#include <edgelog.h>
#include <valgrind/callgrind.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool_sample.h"

#ifndef BENCH_BUILD_TYPE
#define BENCH_BUILD_TYPE "unknown"
#endif

#define REC_CAP 1024

static void die(const char *what, edgelog *log, int rc)
{
	fprintf(stderr, "bench_instr: %s: %s (%d)\n", what, log ? edgelog_errmsg(log) : "", rc);
	exit(1);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "./bench-instr-tmp";
	unsigned long n = argc > 2 ? strtoul(argv[2], NULL, 10) : 20000;
	edgelog_config cfg;
	edgelog *log = NULL;
	uint8_t *mp;
	char *js;
	size_t *mlen, *jlen;
	unsigned long i;
	int rc;

	if (n == 0) {
		fprintf(stderr, "usage: bench_instr DIR [N]\n");
		return 2;
	}
	mp = malloc(3 * n * REC_CAP);
	js = malloc(3 * n * REC_CAP);
	mlen = malloc(3 * n * sizeof(*mlen));
	jlen = malloc(3 * n * sizeof(*jlen));
	if (!mp || !js || !mlen || !jlen)
		return 1;
	for (i = 0; i < 3 * n; i++) {
		mlen[i] = tool_sample_msgpack(i, mp + i * REC_CAP, REC_CAP);
		jlen[i] = tool_sample_json(i, js + i * REC_CAP, REC_CAP);
		if (!mlen[i] || !jlen[i])
			return 1;
	}
	printf("build_type %s\n", BENCH_BUILD_TYPE);
	printf("record_bytes_msgpack %zu\nrecord_bytes_json %zu\nn %lu\n", mlen[0], jlen[0], n);
	fflush(stdout);

	edgelog_config_init(&cfg);
	cfg.dir = dir;
	cfg.sync = EDGELOG_SYNC_NONE;
	cfg.max_size_mb = 4096;
	if ((rc = edgelog_open(&log, &cfg)) != 0)
		die("open", log, rc);
	/* Window 1: warm-up (first segment faults, spare segment preparation). */
	for (i = 0; i < n; i++)
		if ((rc = edgelog_append(log, mp + i * REC_CAP, mlen[i], NULL)) != 0)
			die("append", log, rc);
	CALLGRIND_DUMP_STATS_AT("append-N");
	for (i = n; i < 2 * n; i++)
		if ((rc = edgelog_append(log, mp + i * REC_CAP, mlen[i], NULL)) != 0)
			die("append", log, rc);
	CALLGRIND_DUMP_STATS_AT("append-2N");
	for (i = 2 * n; i < 3 * n; i++)
		if ((rc = edgelog_append_json(log, js + i * REC_CAP, jlen[i], NULL)) != 0)
			die("append_json", log, rc);
	CALLGRIND_DUMP_STATS_AT("json-N");
	for (i = 0; i < n; i++)
		if ((rc = edgelog_append_json(log, js + i * REC_CAP, jlen[i], NULL)) != 0)
			die("append_json", log, rc);
	CALLGRIND_DUMP_STATS_AT("json-2N");
	if ((rc = edgelog_close(log)) != 0)
		die("close", NULL, rc);
	free(mp);
	free(js);
	free(mlen);
	free(jlen);
	return 0;
}
