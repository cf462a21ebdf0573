/*
 * cmp_retention.c - the retention decision (see cmp.h).
 */
#include "cmp.h"

int64_t cmp_age_ms(const cmp_seg *s, const cmp_policy *p)
{
	int64_t wall, age = 0;

	/* Saturated: both values come from segment headers and clocks. */
	if (__builtin_sub_overflow(p->now_wall_ms, s->newest_wall_ms, &wall))
		wall = p->now_wall_ms < s->newest_wall_ms ? INT64_MIN : INT64_MAX;
	if (s->newest_age_ms > 0 && __builtin_sub_overflow(p->now_age_ms, s->newest_age_ms, &age))
		age = p->now_age_ms < s->newest_age_ms ? INT64_MIN : INT64_MAX;

	return wall < age ? wall : age;
}

size_t cmp_plan(const cmp_seg *segs, size_t n, const cmp_policy *p, cmp_action *out)
{
	uint64_t used = p->used_bytes;
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		const cmp_seg *s = &segs[i];
		cmp_action a;

		a.idx = i;
		a.lost_lo = a.lost_hi = 0;
		if (s->last <= p->acked_seq) {
			a.reason = CMP_ACKED;
		} else {
			a.lost_lo = p->acked_seq > s->base - 1 ? p->acked_seq : s->base - 1;
			a.lost_hi = s->last;
			if (p->retention_ms > 0 && cmp_age_ms(s, p) > p->retention_ms)
				a.reason = CMP_EXPIRED;
			else if (p->drop_oldest && p->target_bytes && used > p->target_bytes)
				a.reason = CMP_DROPPED;
			else
				break; /* only a prefix goes: the log stays contiguous */
		}
		used -= s->bytes < used ? s->bytes : used;
		out[k++] = a;
	}
	return k;
}
