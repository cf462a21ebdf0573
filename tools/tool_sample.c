/*
 * tool_sample.c - sample predictions (tool_sample.h): one value model
 * (make), one msgpack and one JSON encoder, in the shapes the callers
 * need.
 */
#include "tool_sample.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>

/* splitmix64: a fixed, seedable sequence per record. */
static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double unit(uint64_t *s)
{
	return (double)(mix(s) >> 11) / 9007199254740992.0;
}

typedef struct sample {
	char request_id[40];
	char ts[64];
	uint64_t ts_ns;
	const char *label;
	double conf, top[5], lat, box[4];
	const char *labels[5];
	uint64_t frame;
} sample;

static const char *const LABELS[] = {"person", "suitcase", "dog",      "bottle", "chair",
				     "car",    "bicycle",  "backpack", "cup",    "laptop"};

/* x >= 0 rounded to `scale` (1000: 3 decimals). */
static double round_to(double x, double scale)
{
	return (double)(uint64_t)(x * scale + 0.5) / scale;
}

static void make(uint64_t seed, uint64_t i, unsigned flags, sample *s)
{
	/* Seed 0 is the sequence tool_sample_msgpack always had. */
	uint64_t st = i * 7919 + 17 + seed * 0xd1b54a32d192ed03ull, a = mix(&st), b = mix(&st);
	uint64_t sec = 1715678493ull + i / 30;
	unsigned ms = (unsigned)(i % 30) * 33;
	double rest;
	int k;

	snprintf(s->request_id, sizeof(s->request_id), "%08x-%04x-4%03x-%04x-%012llx",
		 (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff,
		 (unsigned)(0x8000 | ((b >> 48) & 0x3fff)),
		 (unsigned long long)(b & 0xffffffffffffull));
	{
		time_t t = (time_t)sec;
		struct tm tm;
		gmtime_r(&t, &tm);
		snprintf(s->ts, sizeof(s->ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ms);
	}
	s->ts_ns = sec * 1000000000ull + ms * 1000000ull + (mix(&st) % 1000000);
	k = (int)(mix(&st) % 10);
	s->label = LABELS[k];
	s->conf = 0.3 + 0.7 * unit(&st);
	rest = 1.0 - s->conf;
	s->labels[0] = s->label;
	s->top[0] = (double)(int)(s->conf * 1000) / 1000;
	for (k = 1; k < 5; k++) {
		double part = rest * unit(&st) * 0.8;
		s->labels[k] = LABELS[(mix(&st) % 9 + 1 + (uint64_t)k) % 10];
		s->top[k] = (double)(int)(part * 1000) / 1000;
		rest -= part;
	}
	s->lat = 3.0 + 10.0 * unit(&st);
	s->box[0] = unit(&st) * 0.8;
	s->box[1] = unit(&st) * 0.8;
	s->box[2] = s->box[0] + unit(&st) * 0.2;
	s->box[3] = s->box[1] + unit(&st) * 0.2;
	s->frame = 100000 + i;
	if (flags & TOOL_SAMPLE_FIXED) {
		s->label = LABELS[0];
		s->conf = round_to(s->conf, 10000);
		for (k = 0; k < 5; k++) {
			s->labels[k] = LABELS[k];
			s->top[k] = round_to(s->top[k], 1000);
		}
		s->lat = round_to(s->lat, 1000);
		for (k = 0; k < 4; k++)
			s->box[k] = round_to(s->box[k], 1000);
	}
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

typedef struct fixed_buf {
	uint8_t *p;
	size_t cap, len;
	int over;
} fixed_buf;

static int fixed_write(void *data, const char *buf, size_t len)
{
	fixed_buf *f = data;
	if (f->len + len > f->cap) {
		f->over = 1;
		return -1;
	}
	memcpy(f->p + f->len, buf, len);
	f->len += len;
	return 0;
}

size_t tool_sample_msgpack_ex(uint64_t seed, uint64_t i, unsigned flags, uint8_t *buf, size_t cap)
{
	fixed_buf fb = {buf, cap, 0, 0};
	msgpack_packer pk;
	sample s;
	int k;

	make(seed, i, flags, &s);
	msgpack_packer_init(&pk, &fb, fixed_write);
	msgpack_pack_map(&pk, flags & TOOL_SAMPLE_SEQ_HINT ? 12 : 11);
	pack_str(&pk, "device_id");
	pack_str(&pk, "cam-0042");
	pack_str(&pk, "model");
	msgpack_pack_map(&pk, 2);
	pack_str(&pk, "name");
	pack_str(&pk, "yolov8n");
	pack_str(&pk, "version");
	pack_str(&pk, "2.3.1");
	pack_str(&pk, "ts");
	pack_str(&pk, s.ts);
	pack_str(&pk, "ts_ns");
	msgpack_pack_uint64(&pk, s.ts_ns);
	pack_str(&pk, "request_id");
	pack_str(&pk, s.request_id);
	pack_str(&pk, "label");
	pack_str(&pk, s.label);
	pack_str(&pk, "confidence");
	msgpack_pack_double(&pk, s.conf);
	pack_str(&pk, "top5");
	msgpack_pack_array(&pk, 5);
	for (k = 0; k < 5; k++) {
		msgpack_pack_map(&pk, 2);
		pack_str(&pk, "label");
		pack_str(&pk, s.labels[k]);
		pack_str(&pk, "score");
		msgpack_pack_double(&pk, s.top[k]);
	}
	pack_str(&pk, "latency_ms");
	msgpack_pack_double(&pk, s.lat);
	pack_str(&pk, "bbox");
	msgpack_pack_array(&pk, 4);
	for (k = 0; k < 4; k++)
		msgpack_pack_double(&pk, s.box[k]);
	pack_str(&pk, "meta");
	msgpack_pack_map(&pk, 3);
	pack_str(&pk, "fw");
	pack_str(&pk, "1.8.2");
	pack_str(&pk, "site");
	pack_str(&pk, "s17");
	pack_str(&pk, "frame");
	msgpack_pack_uint64(&pk, s.frame);
	if (flags & TOOL_SAMPLE_SEQ_HINT) {
		pack_str(&pk, "seq_hint");
		msgpack_pack_uint64(&pk, i);
	}
	return fb.over ? 0 : fb.len;
}

size_t tool_sample_msgpack(uint64_t i, uint8_t *buf, size_t cap)
{
	return tool_sample_msgpack_ex(0, i, TOOL_SAMPLE_SEQ_HINT, buf, cap);
}

size_t tool_sample_json_ex(uint64_t seed, uint64_t i, unsigned flags, char *buf, size_t cap)
{
	char hint[40] = "";
	sample s;
	int n;

	make(seed, i, flags, &s);
	if (flags & TOOL_SAMPLE_SEQ_HINT)
		snprintf(hint, sizeof(hint), ",\"seq_hint\":%llu", (unsigned long long)i);
	n = snprintf(
		buf, cap,
		"{\"device_id\":\"cam-0042\",\"model\":{\"name\":\"yolov8n\",\"version\":"
		"\"2.3.1\"},\"ts\":\"%s\",\"ts_ns\":%llu,\"request_id\":\"%s\",\"label\":"
		"\"%s\",\"confidence\":%.4f,\"top5\":[{\"label\":\"%s\",\"score\":%.3f},{"
		"\"label\":\"%s\",\"score\":%.3f},{\"label\":\"%s\",\"score\":%.3f},{"
		"\"label\":\"%s\",\"score\":%.3f},{\"label\":\"%s\",\"score\":%.3f}],"
		"\"latency_ms\":%.3f,\"bbox\":[%.3f,%.3f,%.3f,%.3f],\"meta\":{\"fw\":\"1.8.2\","
		"\"site\":\"s17\",\"frame\":%llu}%s}",
		s.ts, (unsigned long long)s.ts_ns, s.request_id, s.label, s.conf, s.labels[0],
		s.top[0], s.labels[1], s.top[1], s.labels[2], s.top[2], s.labels[3], s.top[3],
		s.labels[4], s.top[4], s.lat, s.box[0], s.box[1], s.box[2], s.box[3],
		(unsigned long long)s.frame, hint);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t tool_sample_json(uint64_t i, char *buf, size_t cap)
{
	return tool_sample_json_ex(0, i, TOOL_SAMPLE_SEQ_HINT, buf, cap);
}
