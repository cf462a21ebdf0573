/*
 * seg_dir.h - the segment files of a directory, sorted by base sequence.
 */
#ifndef SEG_DIR_H
#define SEG_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "seg_err.h"
#include "seg_vfs.h"

typedef struct seg_list {
	uint64_t *base; /* ascending */
	size_t n, cap;
} seg_list;

/* List the segment files (names that seg_name_parse() accepts) of dir.
 * A missing dir gives an empty list; on failure the list is freed. */
int seg_list_read(const seg_vfs *v, const char *dir, seg_list *out, seg_err *e);
void seg_list_free(seg_list *l);

/* Build "dir/name" into out; EDGELOG_EINVAL if it does not fit. */
int seg_path(char *out, size_t outsz, const char *dir, const char *name);

#endif
