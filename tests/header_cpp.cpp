/*
 * header_cpp.cpp - proves that <edgelog.h> compiles as C++ (extern "C",
 * no C-only constructs): the only include, compiled (never linked) at test
 * time with -std=c++11 -pedantic -Werror -Wall -Wextra.
 */
#include <edgelog.h>

int header_cpp_uses(const void *msgpack, size_t len);

int header_cpp_uses(const void *msgpack, size_t len)
{
	edgelog_config cfg;
	edgelog *log = nullptr;
	edgelog_status st = edgelog_status();
	edgelog_status_init(&st);
	edgelog_reader *r = nullptr;
	edgelog_record rec;
	uint64_t seq = 0;

	edgelog_config_init(&cfg);
	cfg.dir = "/data/edgelog";
	cfg.sync = EDGELOG_SYNC_INTERVAL;
	cfg.full_policy = EDGELOG_FULL_DROP_OLDEST;
	int rc = edgelog_open(&log, &cfg);
	if (rc == EDGELOG_OK)
		rc = edgelog_append(log, msgpack, len, &seq);
	if (rc == EDGELOG_OK)
		rc = edgelog_get_status(log, &st);
	edgelog_close(log);

	rc = edgelog_reader_open(&r, "/data/edgelog", seq);
	if (rc == EDGELOG_OK) {
		while (edgelog_reader_next(r, &rec) == EDGELOG_OK)
			seq = rec.seq;
	}
	edgelog_reader_close(r);
	edgelog_repair_report rep = edgelog_repair_report();
	int live = 0;
	if (edgelog_status_dir("/data/edgelog", &st, &live) == EDGELOG_OK && !live &&
	    edgelog_requeue_failed("/data/edgelog") == EDGELOG_OK)
		rc = edgelog_repair("/data/edgelog", &rep);
	cfg.alert_fn = [](void *, unsigned, int, const char *) {};
	return rc == EDGELOG_OK && st.pending >= seq ? 0 : 1;
}
