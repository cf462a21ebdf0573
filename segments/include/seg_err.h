/*
 * seg_err.h - how the internal modules report failures: a public
 * EDGELOG_E* code as the return value, and one line of detail (path,
 * syscall, errno) in a seg_err the caller owns.
 */
#ifndef SEG_ERR_H
#define SEG_ERR_H

#include <stddef.h>

#include <edgelog.h>

typedef struct seg_err {
	char msg[512];
} seg_err;

/* Format the detail into e (if e != NULL) and return code. */
int seg_fail(seg_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Map -errno from a vfs call to an EDGELOG_E* code (ENOSPC -> ENOSPC,
 * EACCES/EROFS/EPERM -> EPERM, ENOENT -> ENOTFOUND, ENOMEM -> ENOMEM,
 * anything else -> EIO). */
int seg_errno_code(int neg_errno);

/* seg_fail() with the code from neg_errno and ": strerror" appended. */
int seg_fail_errno(seg_err *e, int neg_errno, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* snprintf into dst, truncation intended (messages are one line of
 * detail; a cut one is still useful). */
void seg_msg(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
