/*
 * tool_print.c - how `edgelog dump` and `edgelog tail` print a record, so
 * the two always agree line for line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "seg_err.h"
#include "tool.h"

void tool_fmt_time(int64_t ms, char *out, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	seg_msg(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000 + 1000) % 1000);
}

const char *tool_device_id(const char *arg, const char *path, char *host, size_t n)
{
	const char *d = arg && *arg ? arg : getenv("EDGELOG_DEVICE_ID");

	if (!d || !*d)
		d = getenv("EDGE_DEVICE_ID");
	if (d && *d)
		return d;
	/* The id the engine that wrote the directory was configured with. */
	if (path && edgelog_dir_device_id(path, host, n) == 0)
		return host;
	if (gethostname(host, n) != 0)
		snprintf(host, n, "unknown");
	host[n - 1] = '\0';
	return host;
}

void tool_table_header(seg_buf *line)
{
	seg_buf_printf(line, "%-10s %-24s %7s  %-36s %s\n", "SEQ", "TIME (UTC)", "BYTES",
		       "SEGMENT:OFFSET", "STATE");
}

int tool_record_line(seg_buf *line, const edgelog_record *rec, int json, const char *device,
		     const char *state)
{
	size_t start = line->len;

	if (json) {
		seg_buf_puts(line, "{\"device_id\":");
		seg_json_string(line, device, strlen(device));
		seg_buf_printf(line,
			       ",\"seq\":%llu,\"ts\":%lld,\"data\":", (unsigned long long)rec->seq,
			       (long long)rec->ts_ms);
		if (seg_mp_to_json(rec->data, rec->len, line)) {
			line->len = start;
			return -1;
		}
		seg_buf_puts(line, "}\n");
	} else {
		char when[40], where[96];
		tool_fmt_time(rec->ts_ms, when, sizeof(when));
		seg_msg(where, sizeof(where), "%s:%llu", rec->segment,
			(unsigned long long)rec->offset);
		seg_buf_printf(line, "%-10llu %-24s %7zu  %-36s %s\n", (unsigned long long)rec->seq,
			       when, rec->len, where, state);
	}
	return 0;
}
