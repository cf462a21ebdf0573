/*
 * header_c.c - proves that <edgelog.h> stands alone as C: it is the only
 * include, and the file is compiled (never linked) at test time with
 * -std=c11 -pedantic -Werror -Wall -Wextra. The function touches the main
 * types and calls so that a broken declaration fails to compile.
 */
#include <edgelog.h>

int header_c_uses(const void *msgpack, size_t len);

static void header_c_on_corrupt(void *payload, const char *segment, uint64_t offset,
				uint64_t length, const char *reason)
{
	(void)segment;
	(void)offset;
	(void)length;
	(void)reason;
	++*(int *)payload;
}

static void header_c_on_alert(void *payload, unsigned alert, int active, const char *msg)
{
	(void)alert;
	(void)active;
	(void)msg;
	++*(int *)payload;
}

int header_c_uses(const void *msgpack, size_t len)
{
	edgelog_config cfg;
	edgelog *log = NULL;
	edgelog_status st = {.version = EDGELOG_STATUS_VERSION};
	edgelog_reader *r = NULL;
	edgelog_record rec;
	uint64_t seq = 0;
	int damaged = 0;
	int rc;

	edgelog_config_init(&cfg);
	cfg.version = EDGELOG_CONFIG_VERSION;
	cfg.dir = "/data/edgelog";
	cfg.sync = EDGELOG_SYNC_ALWAYS;
	cfg.full_policy = EDGELOG_FULL_REJECT;
	cfg.format = EDGELOG_FORMAT_NDJSON;
	cfg.compression = EDGELOG_COMPRESSION_GZIP;
	cfg.alert_fn = header_c_on_alert;
	cfg.alert_payload = &damaged;
	cfg.metrics_file = "/run/edgelog.prom";
	rc = edgelog_config_from_env(&cfg);
	if (rc == EDGELOG_OK)
		rc = edgelog_open(&log, &cfg);
	if (rc == EDGELOG_OK && len <= EDGELOG_MAX_RECORD)
		rc = edgelog_append(log, msgpack, len, &seq);
	if (rc == EDGELOG_OK)
		rc = edgelog_append_json(log, "{\"a\":1}", 7, &seq);
	if (rc == EDGELOG_OK)
		rc = edgelog_sync(log);
	if (rc == EDGELOG_OK)
		rc = edgelog_get_status(log, &st);
	if (rc == EDGELOG_OK && (st.alerts & EDGELOG_ALERT_PENDING) != 0)
		rc = edgelog_cleanup(log, 1);
	if (rc != EDGELOG_OK && rc != EDGELOG_ELOCKED)
		(void)edgelog_strerror(rc);
	(void)edgelog_errmsg(log);
	(void)edgelog_close(log);

	rc = edgelog_reader_open(&r, "/data/edgelog", 0);
	if (rc == EDGELOG_OK) {
		edgelog_reader_on_corrupt(r, header_c_on_corrupt, &damaged);
		while ((rc = edgelog_reader_next(r, &rec)) == EDGELOG_OK)
			seq = rec.seq + rec.len + rec.offset + (uint64_t)rec.ts_ms;
		(void)edgelog_reader_corrupt(r);
	}
	edgelog_reader_close(r);
	{
		edgelog_repair_report rep;
		int live = 0;
		if (edgelog_status_dir("/data/edgelog", &st, &live) == EDGELOG_OK && live)
			(void)edgelog_export_stats("/data/edgelog", "-");
		if (edgelog_requeue_failed("/data/edgelog") == EDGELOG_OK)
			(void)edgelog_repair("/data/edgelog", &rep);
	}
	(void)edgelog_version();
	return rc == EDGELOG_EOF && seq > 0 && damaged == 0 ? 0 : 1;
}
