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

#include "tool.h"

void tool_fmt_time(int64_t ms, char *out, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char buf[80]; /* room for any int fields: gcc -O3 -Werror=format-truncation */

	gmtime_r(&t, &tm);
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)(ms % 1000 + 1000) % 1000);
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

/* rec as JSON (the envelope with device, else the data alone) after the
 * first `at` bytes of *buf (grown as needed); the new length in *len.
 * 0, -1 not msgpack, -2 out of memory. */
static int put_json(char **buf, size_t *cap, size_t at, const edgelog_record *rec,
		    const char *device, size_t *len)
{
	for (;;) {
		size_t n = 0;
		int rc = edgelog_record_json(rec, device, *buf + at, *cap - at, &n);
		if (rc == 0) {
			*len = at + n;
			return 0;
		}
		if (rc != EDGELOG_ERANGE)
			return rc == EDGELOG_ENOMEM ? -2 : -1;
		{
			char *g = realloc(*buf, at + n + 8);
			if (!g)
				return -2;
			*buf = g;
			*cap = at + n + 8;
		}
	}
}

int tool_record_line(char **line, size_t *len, const edgelog_record *rec, int json,
		     const char *device, const char *state)
{
	size_t cap = 512, n = 0, at;
	char *buf = malloc(cap);
	int rc;

	*line = NULL;
	*len = 0;
	if (!buf)
		return -2;
	if (json) {
		if ((rc = put_json(&buf, &cap, 0, rec, device, &n))) {
			free(buf);
			return rc;
		}
	} else {
		char when[80], where[96];
		int k;
		tool_fmt_time(rec->ts_ms, when, sizeof(when));
		snprintf(where, sizeof(where), "%s:%llu", rec->segment,
			 (unsigned long long)rec->offset);
		k = snprintf(buf, cap, "%-10llu %-24s %7zu  %-36s %-7s  ",
			     (unsigned long long)rec->seq, when, rec->len, where, state);
		if (k < 0 || (size_t)k >= cap) {
			free(buf);
			return -2;
		}
		at = (size_t)k;
		/* The record as compact JSON, cut to the terminal's width
		 * (whole when tool_table_width is 0). */
		if ((rc = put_json(&buf, &cap, at, rec, NULL, &n)) == -2) {
			free(buf);
			return rc;
		}
		if (rc) {
			static const char bad[] = "(not one msgpack object)";
			memcpy(buf + at, bad, sizeof(bad)); /* cap >= 512 > at + sizeof(bad) */
			n = at + sizeof(bad) - 1;
		}
		if (tool_table_width && n > tool_table_width) {
			size_t cut = tool_table_width > 3 ? tool_table_width - 3 : 0;
			if (cut < at)
				cut = at;
			/* Not inside a UTF-8 sequence. */
			while (cut > at && ((unsigned char)buf[cut] & 0xc0) == 0x80)
				cut--;
			memcpy(buf + cut, "...", 4);
			n = cut + 3;
		}
	}
	/* Room for the newline: put_json left at least 8 spare bytes, the
	 * cut and the "not msgpack" text fewer than they had. */
	buf[n++] = '\n';
	*line = buf;
	*len = n;
	return 0;
}

void tool_bytes_put(tool_bytes *b, const void *s, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *g;
		while (cap < b->len + n)
			cap *= 2;
		if (!(g = realloc(b->p, cap))) {
			b->oom = 1;
			return;
		}
		b->p = g;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

void tool_bytes_free(tool_bytes *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}
