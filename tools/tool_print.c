/*
 * tool_print.c - how `edgelog dump` and `edgelog tail` print a record, so
 * the two always agree line for line.
 */
#include <errno.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

void tool_fmt_time(int64_t ms, char *out, size_t n)
{
	/* The second the time falls in, rounded down also before 1970 (-1 ms
	 * is 23:59:59.999 of the day before, not 00:00:00.999). */
	int64_t frac = ms % 1000 < 0 ? ms % 1000 + 1000 : ms % 1000;
	time_t t = (time_t)(ms / 1000 - (ms % 1000 < 0));
	struct tm tm;
	char buf[80]; /* room for any int fields: gcc -O3 -Werror=format-truncation */

	gmtime_r(&t, &tm);
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
	if (n) { /* cut to fit, as snprintf would */
		size_t l = strlen(buf) < n ? strlen(buf) : n - 1;
		memcpy(out, buf, l);
		out[l] = '\0';
	}
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

int tool_table_header(FILE *out)
{
	return fprintf(out, "%-10s %-24s %7s  %-36s %-7s  %s\n", "SEQ", "TIME (UTC)", "BYTES",
		       "SEGMENT:OFFSET", "STATE", "RECORD") < 0 ?
		       -1 :
		       0;
}

int tool_record_line(char **line, size_t *len, const edgelog_record *rec, int json,
		     const char *device, const char *state)
{
	tool_bytes b = {0};
	int rc;

	*line = NULL;
	*len = 0;
	if (json) {
		rc = tool_bytes_json(&b, rec, device);
	} else {
		char when[80], where[96];
		size_t at;
		tool_fmt_time(rec->ts_ms, when, sizeof(when));
		snprintf(where, sizeof(where), "%s:%llu", rec->segment,
			 (unsigned long long)rec->offset);
		tool_bytes_printf(&b, "%-10llu %-24s %7zu  %-36s %-7s  ",
				  (unsigned long long)rec->seq, when, rec->len, where, state);
		at = b.len;
		/* The record as compact JSON, cut to the terminal's width
		 * (whole when tool_table_width is 0). */
		if ((rc = tool_bytes_json(&b, rec, NULL)) == -1) {
			tool_bytes_puts(&b, "(not one msgpack object)");
			rc = 0;
		}
		if (!rc && tool_table_width && b.len > tool_table_width) {
			size_t cut = tool_table_width > 3 ? tool_table_width - 3 : 0;
			if (cut < at)
				cut = at;
			/* Not inside a UTF-8 sequence. */
			while (cut > at && ((unsigned char)b.p[cut] & 0xc0) == 0x80)
				cut--;
			b.len = cut;
			tool_bytes_puts(&b, "...");
		}
	}
	tool_bytes_put(&b, "\n", 1);
	if (rc || b.oom) {
		tool_bytes_free(&b);
		return rc ? rc : -2;
	}
	*line = b.p;
	*len = b.len;
	return 0;
}

int tool_print_record(const char *cmd, const edgelog_record *rec, int json, const char *device,
		      const char *state)
{
	char *line;
	size_t len;
	int k = tool_record_line(&line, &len, rec, json, device, state), e;

	if (k == -1) {
		fprintf(stderr, "edgelog %s: %s offset %llu: record is not valid msgpack\n", cmd,
			rec->segment, (unsigned long long)rec->offset);
		return 1;
	}
	if (k)
		return -1;
	errno = 0;
	k = fwrite(line, 1, len, stdout) == len ? 0 : -2;
	e = errno;
	free(line);
	errno = e;
	return k;
}
