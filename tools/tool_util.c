/*
 * tool_util.c - what every command of the tools shares: the error line
 * and the whole-number option. Below the commands and the dispatcher
 * (tool_main.c), which both call it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "tool.h"

int tool_fail(const char *cmd, int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "edgelog %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

int tool_parse_u64(const char *cmd, const char *opt, const char *s, unsigned long long *out)
{
	char *end;

	errno = 0;
	if (!s || !*s || *s == '-' || (*out = strtoull(s, &end, 10), errno) || *end) {
		tool_fail(cmd, TOOL_USAGE, "%s: '%s' is not a whole number", opt, s ? s : "");
		return -1;
	}
	return 0;
}
