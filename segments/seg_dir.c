/*
 * seg_dir.c - list a directory's segment files in sequence order.
 */
#include "seg_dir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seg_format.h"

typedef struct list_ctx {
	seg_list *l;
	int oom;
} list_ctx;

static int add_name(void *ud, const char *name)
{
	list_ctx *c = ud;
	seg_list *l = c->l;
	uint64_t base;

	if (!seg_name_parse(name, &base))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		uint64_t *nb = realloc(l->base, cap * sizeof(*nb));
		if (!nb) {
			c->oom = 1;
			return 1;
		}
		l->base = nb;
		l->cap = cap;
	}
	l->base[l->n++] = base;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int seg_list_read(const seg_vfs *v, const char *dir, seg_list *out, seg_err *e)
{
	list_ctx c = {out, 0};
	int r;

	out->n = 0;
	r = v->list(v, dir, add_name, &c);
	if (r == -ENOENT)
		return 0;
	/* On failure the list holds nothing and owns nothing, so a caller that
	 * returns at once leaks nothing (a listing can fail half-way, after
	 * names were added). */
	if (r < 0) {
		seg_list_free(out);
		return seg_fail_errno(e, r, "list %s", dir);
	}
	if (c.oom) {
		seg_list_free(out);
		return seg_fail(e, EDGELOG_ENOMEM, "list %s: out of memory", dir);
	}
	if (out->n > 1)
		qsort(out->base, out->n, sizeof(*out->base), cmp_u64);
	return 0;
}

void seg_list_free(seg_list *l)
{
	free(l->base);
	l->base = NULL;
	l->n = l->cap = 0;
}

int seg_path(char *out, size_t outsz, const char *dir, const char *name)
{
	int n = snprintf(out, outsz, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= outsz)
		return EDGELOG_EINVAL;
	return 0;
}
