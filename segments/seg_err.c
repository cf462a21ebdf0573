/*
 * seg_err.c - failure detail for the internal modules.
 */
#include "seg_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int seg_fail(seg_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e) {
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

int seg_errno_code(int neg_errno)
{
	switch (-neg_errno) {
	case ENOSPC:
	case EDQUOT:
		return EDGELOG_ENOSPC;
	case EACCES:
	case EPERM:
	case EROFS:
		return EDGELOG_EPERM;
	case ENOENT:
	case ENOTDIR:
		return EDGELOG_ENOTFOUND;
	case ENOMEM:
		return EDGELOG_ENOMEM;
	default:
		return EDGELOG_EIO;
	}
}

int seg_fail_errno(seg_err *e, int neg_errno, const char *fmt, ...)
{
	va_list ap;
	int code = seg_errno_code(neg_errno);

	if (e) {
		size_t n;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
		n = strlen(e->msg);
		snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", strerror(-neg_errno));
	}
	return code;
}

void seg_msg(char *dst, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, n, fmt, ap);
	va_end(ap);
}
