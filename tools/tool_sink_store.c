/*
 * tool_sink_store.c - what `edgelog sink` keeps: DIR/records.ndjson, one
 * accepted record a line, and the set of (device_id, seq) already in it.
 *
 * Durability: a batch's new lines are written with one write() and made
 * durable with fdatasync() before the caller answers 2xx, so an acked
 * record survives a crash of the sink. A crash before that leaves at worst
 * a torn last line, which was never acked: the next open cuts it off. A
 * failed write or fdatasync truncates the file back to where the batch
 * began and forgets the batch's keys, so the client's retry stores it
 * again rather than being told "duplicate" for records that are not there.
 *
 * The dedupe set is exact (no hash of device_id standing in for it): one
 * table per device_id, open addressing with linear probing over seq + 1 (0
 * marks an empty slot; seq UINT64_MAX has a flag of its own), at most 70 %
 * full: 8 bytes a slot, 16 MiB for a million records of one device.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tool_sink.h"

#define STORE_FILE "records.ndjson"

typedef struct store_dev {
	char *key; /* device_id as a JSON string literal */
	size_t key_len;
	uint64_t hash;
	uint64_t *slots; /* seq + 1, 0 = empty; cap a power of two */
	size_t cap, count;
	int has_max; /* seq UINT64_MAX is in the set */
} store_dev;

struct tool_sink_store {
	pthread_mutex_t mu;
	int fd;
	char path[4200];
	off_t size;       /* bytes of complete lines in the file */
	uint64_t count;   /* records in the file */
	store_dev **devs; /* open addressing by hash; cap a power of two */
	size_t dev_cap, dev_count;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then mixed */
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
	return mix64(h);
}

/* The device's table, created if missing (NULL: out of memory). */
static store_dev *dev_get(tool_sink_store *s, const char *key, size_t len)
{
	uint64_t h = hash_bytes(key, len);
	size_t mask, i;
	store_dev *d;

	if (s->dev_cap) {
		mask = s->dev_cap - 1;
		for (i = h & mask; s->devs[i]; i = (i + 1) & mask)
			if (s->devs[i]->hash == h && s->devs[i]->key_len == len &&
			    !memcmp(s->devs[i]->key, key, len))
				return s->devs[i];
	}
	if ((s->dev_count + 1) * 10 > s->dev_cap * 7) {
		size_t cap = s->dev_cap ? s->dev_cap * 2 : 16, j;
		store_dev **t = calloc(cap, sizeof(*t));
		if (!t)
			return NULL;
		for (j = 0; j < s->dev_cap; j++) {
			if (!s->devs[j])
				continue;
			for (i = s->devs[j]->hash & (cap - 1); t[i]; i = (i + 1) & (cap - 1))
				;
			t[i] = s->devs[j];
		}
		free(s->devs);
		s->devs = t;
		s->dev_cap = cap;
	}
	d = calloc(1, sizeof(*d));
	if (!d || !(d->key = malloc(len + 1))) {
		free(d);
		return NULL;
	}
	memcpy(d->key, key, len);
	d->key[len] = '\0';
	d->key_len = len;
	d->hash = h;
	mask = s->dev_cap - 1;
	for (i = h & mask; s->devs[i]; i = (i + 1) & mask)
		;
	s->devs[i] = d;
	s->dev_count++;
	return d;
}

static int seq_grow(store_dev *d)
{
	size_t cap = d->cap ? d->cap * 2 : 64, i, j;
	uint64_t *t = calloc(cap, sizeof(*t));

	if (!t)
		return -1;
	for (j = 0; j < d->cap; j++) {
		uint64_t v = d->slots[j];
		if (!v)
			continue;
		for (i = mix64(v) & (cap - 1); t[i]; i = (i + 1) & (cap - 1))
			;
		t[i] = v;
	}
	free(d->slots);
	d->slots = t;
	d->cap = cap;
	return 0;
}

/* 1 inserted, 0 already there, -1 out of memory. */
static int seq_insert(store_dev *d, uint64_t seq)
{
	uint64_t v = seq + 1;
	size_t mask, i;

	if (seq == UINT64_MAX) {
		if (d->has_max)
			return 0;
		d->has_max = 1;
		return 1;
	}
	if (d->cap) {
		mask = d->cap - 1;
		for (i = mix64(v) & mask; d->slots[i]; i = (i + 1) & mask)
			if (d->slots[i] == v)
				return 0;
	}
	if ((d->count + 1) * 10 > d->cap * 7 && seq_grow(d))
		return -1;
	mask = d->cap - 1;
	for (i = mix64(v) & mask; d->slots[i]; i = (i + 1) & mask)
		;
	d->slots[i] = v;
	d->count++;
	return 1;
}

/* Remove seq (known present): backward-shift deletion keeps every other
 * key reachable from its home slot without tombstones. */
static void seq_remove(store_dev *d, uint64_t seq)
{
	uint64_t v = seq + 1;
	size_t mask = d->cap - 1, i, j;

	if (seq == UINT64_MAX) {
		d->has_max = 0;
		return;
	}
	for (i = mix64(v) & mask; d->slots[i] != v; i = (i + 1) & mask)
		if (!d->slots[i])
			return;
	for (j = (i + 1) & mask; d->slots[j]; j = (j + 1) & mask) {
		size_t home = mix64(d->slots[j]) & mask;
		/* Move j into the hole at i unless its home lies in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			d->slots[i] = d->slots[j];
			i = j;
		}
	}
	d->slots[i] = 0;
	d->count--;
}

/* ------------------------------------------------------------------------
 * Reload
 */

/* The key and seq of one stored line. Lines this sink wrote start
 * {"device_id":"<plain ASCII>","seq":N: read those directly (a restart
 * over a million records stays quick); anything else goes through jansson
 * and is re-escaped the way tool_sink_parse escapes it. */
static int line_key(const char *line, size_t len, tool_bytes *key, uint64_t *seq)
{
	static const char pre[] = "{\"device_id\":\"";
	size_t i = sizeof(pre) - 1;
	json_error_t je;
	json_t *rec, *dev, *sq;

	if (len > i && !memcmp(line, pre, i)) {
		while (i < len && line[i] != '"' && line[i] != '\\' && line[i] >= 0x20 &&
		       line[i] < 0x7f)
			i++;
		if (i + 8 < len && !memcmp(line + i, "\",\"seq\":", 8) && line[i + 8] >= '0' &&
		    line[i + 8] <= '9') {
			char *end;
			errno = 0;
			*seq = strtoull(line + i + 8, &end, 10);
			if (!errno && (*end == ',' || *end == '}')) {
				key->len = 0;
				tool_bytes_put(key, line + sizeof(pre) - 2,
					       i + 1 - (sizeof(pre) - 2));
				return key->oom ? -1 : 0;
			}
		}
	}
	rec = json_loadb(line, len, 0, &je);
	if (!rec)
		return -1;
	dev = json_object_get(rec, "device_id");
	sq = json_object_get(rec, "seq");
	if (!json_is_string(dev) || !json_is_integer(sq) || json_integer_value(sq) < 0) {
		json_decref(rec);
		return -1;
	}
	key->len = 0;
	tool_bytes_json_string(key, json_string_value(dev), json_string_length(dev));
	*seq = (uint64_t)json_integer_value(sq);
	json_decref(rec);
	return key->oom ? -1 : 0;
}

static int reload(tool_sink_store *s, int quiet, char *err, size_t errlen)
{
	tool_bytes key = {0};
	char *buf = NULL;
	size_t cap = 1 << 20, have = 0, lineno = 0;
	uint64_t unreadable = 0, first_bad = 0;
	off_t good = 0;
	int rc = 0;

	if (!(buf = malloc(cap))) {
		snprintf(err, errlen, "%s: out of memory", s->path);
		return -1;
	}
	for (;;) {
		ssize_t n;
		size_t start = 0;
		char *nl;
		if (have == cap) {
			/* A line longer than the buffer: grow (bounded by the file). */
			char *p = realloc(buf, cap * 2);
			if (!p) {
				snprintf(err, errlen, "%s: out of memory", s->path);
				rc = -1;
				break;
			}
			buf = p;
			cap *= 2;
		}
		n = pread(s->fd, buf + have, cap - have, good + (off_t)have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "read %s: %s", s->path, strerror(errno));
			rc = -1;
			break;
		}
		if (n == 0)
			break;
		have += (size_t)n;
		while ((nl = memchr(buf + start, '\n', have - start)) != NULL) {
			size_t len = (size_t)(nl - (buf + start));
			uint64_t seq;
			lineno++;
			if (len && line_key(buf + start, len, &key, &seq) == 0) {
				store_dev *d = dev_get(s, key.p, key.len);
				if (!d || seq_insert(d, seq) < 0) {
					snprintf(err, errlen, "%s: out of memory", s->path);
					free(buf);
					tool_bytes_free(&key);
					return -1;
				}
				s->count++;
			} else if (len && !unreadable++) {
				first_bad = lineno;
			}
			start += len + 1;
		}
		good += (off_t)start;
		memmove(buf, buf + start, have - start);
		have -= start;
	}
	free(buf);
	tool_bytes_free(&key);
	if (rc)
		return rc;
	if (unreadable && !quiet)
		fprintf(stderr,
			"edgelog sink: %s: %llu line(s) unreadable (first: line %llu), left in "
			"place and not deduplicated\n",
			s->path, (unsigned long long)unreadable, (unsigned long long)first_bad);
	if (have) {
		/* A torn last line: a write the sink never acknowledged. */
		if (ftruncate(s->fd, good) != 0 || fdatasync(s->fd) != 0) {
			snprintf(err, errlen, "cut the torn last line of %s: %s", s->path,
				 strerror(errno));
			return -1;
		}
		if (!quiet)
			fprintf(stderr, "edgelog sink: %s: cut a torn last line (%zu bytes)\n",
				s->path, have);
	}
	s->size = good;
	return 0;
}

int tool_sink_store_open(tool_sink_store **out, const char *dir, int quiet, char *err,
			 size_t errlen)
{
	tool_sink_store *s;
	struct stat st;
	int created, dfd;

	*out = NULL;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: not a directory", dir);
		return -1;
	}
	if (!(s = calloc(1, sizeof(*s)))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->fd = -1;
	pthread_mutex_init(&s->mu, NULL);
	snprintf(s->path, sizeof(s->path), "%s/%s", dir, STORE_FILE);
	created = access(s->path, F_OK) != 0;
	s->fd = open(s->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (s->fd < 0) {
		snprintf(err, errlen, "open %s: %s", s->path, strerror(errno));
		goto fail;
	}
	/* Two sinks appending to one file would interleave their batches. */
	if (flock(s->fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, errlen, "%s: %s", s->path,
			 errno == EWOULDBLOCK ? "another sink is using this directory" :
						strerror(errno));
		goto fail;
	}
	if (created) {
		/* The file's directory entry must be durable too, or the first
		 * acked batch could vanish with it after a power cut. */
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || fsync(dfd) != 0) {
			snprintf(err, errlen, "fsync %s: %s", dir, strerror(errno));
			if (dfd >= 0)
				close(dfd);
			goto fail;
		}
		close(dfd);
	}
	if (reload(s, quiet, err, errlen))
		goto fail;
	*out = s;
	return 0;
fail:
	tool_sink_store_close(s);
	return -1;
}

int tool_sink_store_put(tool_sink_store *s, tool_sink_batch *b, uint64_t *accepted, uint64_t *dups,
			char *err, size_t errlen)
{
	size_t i, w = 0, done = 0;
	uint64_t fresh = 0;
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	/* Mark first (a batch may repeat a key within itself), write after;
	 * undone below if the write does not become durable. */
	for (i = 0; i < b->n; i++) {
		tool_sink_rec *r = &b->recs[i];
		store_dev *d = dev_get(s, b->lines.p + r->key_off, r->key_len);
		int ins = d ? seq_insert(d, r->seq) : -1;
		if (ins < 0) {
			snprintf(err, errlen, "out of memory");
			rc = TOOL_SINK_ENOMEM;
			break;
		}
		r->dev = d;
		r->fresh = ins;
		fresh += (uint64_t)ins;
	}
	if (!rc) {
		/* Keep only the fresh lines, in order. */
		for (i = 0; i < b->n; i++) {
			tool_sink_rec *r = &b->recs[i];
			if (!r->fresh)
				continue;
			if (w != r->line_off)
				memmove(b->lines.p + w, b->lines.p + r->line_off, r->line_len);
			w += r->line_len;
		}
		while (done < w) {
			ssize_t n = write(s->fd, b->lines.p + done, w - done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				snprintf(err, errlen, "write %s: %s", s->path,
					 n < 0 ? strerror(errno) : "wrote nothing");
				rc = -1;
				break;
			}
			done += (size_t)n;
		}
		/* The ack promises durability: sync before answering. */
		if (!rc && w && fdatasync(s->fd) != 0) {
			snprintf(err, errlen, "fdatasync %s: %s", s->path, strerror(errno));
			rc = -1;
		}
		if (rc && done && ftruncate(s->fd, s->size) != 0 && errno)
			snprintf(err + strlen(err), errlen - strlen(err),
				 "; and truncating it back failed: %s", strerror(errno));
	}
	if (rc) {
		for (i = 0; i < b->n; i++) {
			tool_sink_rec *r = &b->recs[i];
			if (r->fresh)
				seq_remove(r->dev, r->seq);
			r->fresh = 0;
		}
	} else {
		s->size += (off_t)w;
		s->count += fresh;
		*accepted = fresh;
		*dups = b->n - fresh;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

uint64_t tool_sink_store_count(tool_sink_store *s)
{
	uint64_t n;

	pthread_mutex_lock(&s->mu);
	n = s->count;
	pthread_mutex_unlock(&s->mu);
	return n;
}

void tool_sink_store_close(tool_sink_store *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->dev_cap; i++)
		if (s->devs[i]) {
			free(s->devs[i]->key);
			free(s->devs[i]->slots);
			free(s->devs[i]);
		}
	free(s->devs);
	if (s->fd >= 0)
		close(s->fd); /* releases the lock */
	pthread_mutex_destroy(&s->mu);
	free(s);
}
