/*
 * seg_lost.h - the quarantine directory and its record of lost sequence
 * numbers, shared by `edgelog repair` (which writes them) and `edgelog dump
 * --verify` (which reads them). Header only: a handful of small functions.
 *
 *   DIR/quarantine/
 *     <segment>.bad             a whole segment file whose header did not
 *                               verify (moved here, never deleted)
 *     <segment>.<offset>.bad    bytes cut out of a segment: a damaged range
 *                               or a torn tail, starting at that offset
 *     cursor.bad                an unreadable cursor file, as it was found
 *     lost-seqs                 text, one line per range of seqs that no
 *                               stored record holds any more: "LO HI reason"
 *                               (inclusive, decimal); '#' starts a comment
 *
 * A gap between two stored records is "explained" when every seq in it is
 * at or below the cursor's acked_seq, inside one of the cursor's gaps, or
 * inside a range of lost-seqs. `dump --verify` reports only the others as
 * damage; `repair` records the others in lost-seqs.
 */
#ifndef SEG_LOST_H
#define SEG_LOST_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define SEG_QUARANTINE_DIR "quarantine"
#define SEG_LOST_FILE "lost-seqs"
/* Read at most this much of lost-seqs (about a million ranges). */
#define SEG_LOST_MAX_BYTES (64u << 20)

/* Inclusive seq ranges, in no particular order. */
typedef struct seg_ranges {
	uint64_t *lo, *hi;
	size_t n, cap;
} seg_ranges;

/* Add [lo, hi] (ignored if lo > hi). 0, or -1 out of memory. */
static inline int seg_ranges_add(seg_ranges *r, uint64_t lo, uint64_t hi)
{
	if (lo > hi)
		return 0;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		uint64_t *a = realloc(r->lo, cap * sizeof(*a));
		if (!a)
			return -1;
		r->lo = a;
		a = realloc(r->hi, cap * sizeof(*a));
		if (!a)
			return -1;
		r->hi = a;
		r->cap = cap;
	}
	r->lo[r->n] = lo;
	r->hi[r->n] = hi;
	r->n++;
	return 0;
}

static inline void seg_ranges_free(seg_ranges *r)
{
	free(r->lo);
	free(r->hi);
	r->lo = r->hi = NULL;
	r->n = r->cap = 0;
}

/*
 * The first part of [a, b] that no range covers: 1 with [*ua, *ub] set, or
 * 0 if the ranges cover all of [a, b]. Call again from *ub + 1 for the next.
 */
static inline int seg_ranges_uncovered(const seg_ranges *r, uint64_t a, uint64_t b, uint64_t *ua,
				       uint64_t *ub)
{
	uint64_t x = a, next;
	size_t i;
	int moved;

	while (x <= b) {
		moved = 0;
		for (i = 0; i < r->n; i++)
			if (r->lo[i] <= x && x <= r->hi[i]) {
				if (r->hi[i] >= b)
					return 0;
				x = r->hi[i] + 1;
				moved = 1;
			}
		if (moved)
			continue;
		/* x is uncovered: up to the next range's start, or b. */
		next = b;
		for (i = 0; i < r->n; i++)
			if (r->lo[i] > x && r->lo[i] - 1 < next)
				next = r->lo[i] - 1;
		*ua = x;
		*ub = next;
		return 1;
	}
	return 0;
}

/* A decimal number at text[*i]: 1 and *v, or 0 (no digits, or overflow). */
static inline int seg_lost_num(const char *text, size_t len, size_t *i, uint64_t *v)
{
	size_t start = *i;

	*v = 0;
	while (*i < len && text[*i] >= '0' && text[*i] <= '9') {
		if (*v > (UINT64_MAX - 9) / 10)
			return 0;
		*v = *v * 10 + (uint64_t)(text[*i] - '0');
		(*i)++;
	}
	return *i > start;
}

/* Parse the text of a lost-seqs file into r. Malformed lines are skipped:
 * the file explains gaps in reports and is never trusted for data. 0, or
 * -1 out of memory. */
static inline int seg_lost_parse(const char *text, size_t len, seg_ranges *r)
{
	size_t i = 0;
	uint64_t lo, hi;

	while (i < len) {
		if (seg_lost_num(text, len, &i, &lo) && i < len && text[i] == ' ' && ++i &&
		    seg_lost_num(text, len, &i, &hi) &&
		    (i == len || text[i] == ' ' || text[i] == '\n') && seg_ranges_add(r, lo, hi))
			return -1;
		while (i < len && text[i] != '\n')
			i++;
		i++;
	}
	return 0;
}

#endif
