/*
 * musl_smoke.c - the core library linked against musl (scripts/musl-test.sh):
 * append 100 records, close, reopen (the sequence goes on at 101), append
 * one more, close, and read all 101 back in order with their content. Built
 * in the firmware profile: edgelog_append_json is EDGELOG_ENOTSUP and
 * stores nothing.
 */
#include <edgelog.h>
#include <stdio.h>
#include <string.h>

static int fail(const char *what)
{
	fprintf(stderr, "musl_smoke: %s: %s\n", what, edgelog_errmsg(NULL));
	return 1;
}

/* One msgpack positive fixint or uint16 holding n. */
static size_t record(unsigned char *b, uint64_t n)
{
	if (n < 128) {
		b[0] = (unsigned char)n;
		return 1;
	}
	b[0] = 0xcd;
	b[1] = (unsigned char)(n >> 8);
	b[2] = (unsigned char)n;
	return 3;
}

int main(int argc, char **argv)
{
	edgelog_config c;
	edgelog *log;
	edgelog_reader *r;
	edgelog_record rec;
	unsigned char b[3];
	uint64_t i, seq, want = 1;
	int rc;

	edgelog_config_init(&c);
	c.dir = argc > 1 ? argv[1] : "musl-data";
	if (edgelog_open(&log, &c))
		return fail("open");
	for (i = 1; i <= 100; i++)
		if (edgelog_append(log, b, record(b, i), &seq) || seq != i)
			return fail("append");
	if (edgelog_close(log) || edgelog_open(&log, &c))
		return fail("reopen");
	if (edgelog_append(log, b, record(b, 101), &seq) || seq != 101)
		return fail("append after reopen");
	if ((rc = edgelog_append_json(log, "{\"a\":1}", 7, &seq)) != EDGELOG_ENOTSUP ||
	    !strstr(edgelog_errmsg(log), "EDGELOG_WITH_JSON=OFF")) {
		fprintf(stderr, "musl_smoke: append_json gave %d (%s), want EDGELOG_ENOTSUP\n", rc,
			edgelog_errmsg(log));
		return 1;
	}
	if (edgelog_close(log) || edgelog_reader_open(&r, c.dir, 1))
		return fail("reader");
	while ((rc = edgelog_reader_next(r, &rec)) == 0) {
		if (rec.seq != want || rec.len != record(b, want) || memcmp(rec.data, b, rec.len))
			return fail("record read back differs");
		want++;
	}
	edgelog_reader_close(r);
	if (rc != EDGELOG_EOF || want != 102)
		return fail("read back");
	printf("musl_smoke: edgelog %s on musl: 101 records appended across a reopen, read back; "
	       "JSON input not built in (EDGELOG_ENOTSUP)\n",
	       edgelog_version());
	return 0;
}
