/*
 * tool_print.c - how `edgelog dump` and `edgelog tail` print a record, so
 * the two always agree line for line.
 */
#include <sys/ioctl.h>
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

size_t tool_table_width = 0;

size_t tool_terminal_width(int fd, int full)
{
	struct winsize ws;
	const char *c;

	if (full || !isatty(fd))
		return 0;
	if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	if ((c = getenv("COLUMNS")) && atoi(c) > 0)
		return (size_t)atoi(c);
	return 80;
}

void tool_table_header(seg_buf *line)
{
	seg_buf_printf(line, "%-10s %-24s %7s  %-36s %-7s  %s\n", "SEQ", "TIME (UTC)", "BYTES",
		       "SEGMENT:OFFSET", "STATE", "RECORD");
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
		seg_buf_printf(line, "%-10llu %-24s %7zu  %-36s %-7s  ",
			       (unsigned long long)rec->seq, when, rec->len, where, state);
		{
			/* The record as compact JSON, cut to the terminal's
			 * width (whole when tool_table_width is 0). */
			size_t at = line->len;
			if (seg_mp_to_json(rec->data, rec->len, line)) {
				line->len = at;
				seg_buf_puts(line, "(not one msgpack object)");
			}
			if (tool_table_width && line->len - start > tool_table_width) {
				size_t cut =
					start + (tool_table_width > 3 ? tool_table_width - 3 : 0);
				if (cut < at)
					cut = at;
				/* Not inside a UTF-8 sequence. */
				while (cut > at && ((unsigned char)line->p[cut] & 0xc0) == 0x80)
					cut--;
				line->len = cut;
				seg_buf_puts(line, "...");
			}
			seg_buf_puts(line, "\n");
		}
	}
	return 0;
}
