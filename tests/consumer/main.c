/* consumer: a program built against an installed edgelog (scripts/consumer-test.sh). */
#include <edgelog.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	edgelog_config c;
	edgelog *log;
	edgelog_reader *r;
	edgelog_record rec;
	uint64_t seq;

	edgelog_config_init(&c);
	c.dir = argc > 1 ? argv[1] : "consumer-data";
	if (edgelog_open(&log, &c) || edgelog_append(log, "\x2a", 1, &seq) || edgelog_close(log) ||
	    edgelog_reader_open(&r, c.dir, seq) || edgelog_reader_next(r, &rec) || rec.len != 1) {
		fprintf(stderr, "consumer: %s\n", edgelog_errmsg(NULL));
		return 1;
	}
	edgelog_reader_close(r);
	printf("consumer: edgelog %s, record %llu stored and read back\n", edgelog_version(),
	       (unsigned long long)seq);
	return 0;
}
