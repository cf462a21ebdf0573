/*
 * eng_scan.c - edgelog_verify and edgelog_salvage: one walk over every
 * frame of a directory or segment file that reports records, damaged
 * ranges, damaged files and sequence gaps through the caller's callbacks
 * (`edgelog dump` is a printer over them), and the salvage that copies
 * every valid record into a fresh directory as it walks.
 *
 * Read-only on the source. The salvage's copy is made in a staging
 * directory beside OUTDIR and made durable there: segments synced by the
 * writer's close, then lost-seqs, then the cursor, then the directory
 * entries; only then is it renamed to OUTDIR and the parent fsynced. A
 * power cut or a kill at any point leaves OUTDIR as it was (absent or
 * empty) or the whole copy, never a partial copy under OUTDIR's name; the
 * next salvage removes an abandoned staging directory. A failed write,
 * fsync, rename or directory fsync fails the salvage, which then removes
 * its staging directory.
 *
 * Every file operation goes through the I/O seam (seg_vfs.h), so the
 * fault-injecting and power-loss file systems of the tests reach the walk
 * and the salvage. One call stays outside: path_inside's realpath(3), which
 * resolves symlinks the seam does not model (under another table it finds
 * nothing to resolve and lets the walk go on).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eng_internal.h"
#include "seg.h"

_Static_assert(EDGELOG_FRAME_HEADER == SEG_FRAME_HEADER, "EDGELOG_FRAME_HEADER in edgelog.h");

void edgelog_scan_init(edgelog_scan *s)
{
	if (!s)
		return;
	memset(s, 0, sizeof(*s));
	s->version = EDGELOG_SCAN_VERSION;
	s->to_seq = UINT64_MAX;
}

static void clear_output(edgelog_scan *s)
{
	s->records = s->data_bytes = s->first_seq = s->last_seq = 0;
	s->damaged = s->damaged_bytes = s->gaps = s->gaps_accounted = 0;
	s->have_cursor = 0;
	s->cursor_acked_seq = s->cursor_last_seq = s->lost_ranges = 0;
}

/* A damaged range: counted, then passed on. */
static void damage(void *payload, const char *segment, uint64_t offset, uint64_t length,
		   const char *reason)
{
	edgelog_scan *s = payload;

	s->damaged++;
	s->damaged_bytes += length;
	if (s->on_damage)
		s->on_damage(s->payload, segment, offset, length, reason);
}

/* PATH/quarantine/lost-seqs into r (missing: nothing). */
static void load_lost(const seg_vfs *v, const char *path, seg_ranges *r)
{
	char p[4200];
	char *buf;
	size_t n = 0;
	ssize_t got;
	int fd;

	if (seg_path(p, sizeof(p), path, SEG_QUARANTINE_DIR "/" SEG_LOST_FILE) ||
	    (fd = v->open(v, p, O_RDONLY, 0)) < 0)
		return;
	buf = malloc(SEG_LOST_MAX_BYTES);
	if (buf) {
		while (n < SEG_LOST_MAX_BYTES &&
		       (got = v->pread(v, fd, buf + n, SEG_LOST_MAX_BYTES - n, n)) > 0)
			n += (size_t)got;
		seg_lost_parse(buf, n, r);
		free(buf);
	}
	v->close(v, fd);
}

static int stop_at_first(void *ud, const char *name)
{
	(void)name;
	*(int *)ud = 1;
	return 1;
}

/* 1 if path is a directory, 0 if it is something else, or -errno (it does
 * not exist, ...); *empty: it has no entries. */
static int is_dir(const seg_vfs *v, const char *path, int *empty)
{
	int any = 0, r = v->list(v, path, stop_at_first, &any);

	if (empty)
		*empty = !any;
	if (r == -ENOTDIR)
		return 0;
	return r < 0 ? r : 1;
}

/* The directory holding path's segment files (path itself for a directory
 * of segment files); 1 if path is one file, -errno if it does not exist. */
static int seg_dir_of(const seg_vfs *v, const char *path, char *out, size_t n)
{
	uint64_t size;
	int k = is_dir(v, path, NULL);

	if (k < 0)
		return k;
	if (k == 0)
		return 1;
	if (!seg_path(out, n, path, ENG_SEGMENTS_DIR) && v->stat(v, out, &size, NULL) == 0)
		return 0;
	seg_msg(out, n, "%s", path);
	return 0;
}

/* Each segment file of path with its size, for on_segment. */
static void list_segments(const seg_vfs *v, const char *path, const edgelog_scan *s)
{
	char dir[4200], p[4300];
	uint64_t size;
	seg_list l = {0};
	seg_err e;
	size_t i;
	int k = seg_dir_of(v, path, dir, sizeof(dir));

	if (k < 0)
		return;
	if (k == 1) {
		const char *slash = strrchr(path, '/');
		if (v->stat(v, path, &size, NULL) == 0)
			s->on_segment(s->payload, slash ? slash + 1 : path, size);
		return;
	}
	if (seg_list_read(v, dir, &l, &e))
		return;
	for (i = 0; i < l.n; i++) {
		char name[SEG_NAME_LEN + 1];
		seg_name(name, l.base[i]);
		if (!seg_path(p, sizeof(p), dir, name) && v->stat(v, p, &size, NULL) == 0)
			s->on_segment(s->payload, name, size);
	}
	seg_list_free(&l);
}

/* ---- the newest segment's end -------------------------------------------- */

/* Scan the newest segment of a directory deep: the end of the data, or the
 * start of an invalid tail (*tail_len bytes). 0, 1 if its header does not
 * verify, -1 if there is nothing to look at. */
static int scan_newest(const seg_vfs *v, const char *segdir, const char *name, uint64_t *tail_off,
		       uint64_t *tail_len, uint64_t *size_out)
{
	char p[4300];
	uint64_t doff, dlen, size;
	seg_scan sc;
	seg_frame f;
	void *map;
	int fd, k, err, r = 0;

	*tail_off = *tail_len = 0;
	if (seg_path(p, sizeof(p), segdir, name) || (fd = v->open(v, p, O_RDONLY, 0)) < 0)
		return -1;
	if (v->fstat(v, fd, &size, NULL) != 0 || size < SEG_HEADER_SIZE ||
	    (uint64_t)(size_t)size != size) {
		v->close(v, fd);
		return -1;
	}
	*size_out = size;
	map = v->mmap(v, fd, (size_t)size, 0, SEG_POPULATE_NONE, &err);
	v->close(v, fd);
	if (!map)
		return -1;
	k = seg_scan_init(&sc, map, (size_t)size, 1);
	if (k == SEG_BAD) {
		r = 1;
	} else if (k == SEG_OK) {
		while ((k = seg_scan_next(&sc, &f, &doff, &dlen)) == SEG_SCAN_FRAME ||
		       k == SEG_SCAN_DAMAGE)
			;
		if (k == SEG_SCAN_TAIL) {
			*tail_off = doff;
			*tail_len = dlen;
		}
	}
	v->munmap(v, map, (size_t)size);
	return r;
}

/*
 * A reader treats the end of the newest segment as live: an invalid tail
 * there may be a frame being written right now, a bad header a segment
 * being created. Once the same state is seen again a moment later it is a
 * torn tail (an incomplete last write: open or `edgelog repair` truncates
 * it) or a damaged header.
 */
static void check_newest(const seg_vfs *v, const char *path, edgelog_scan *s)
{
	char dir[4200], name[SEG_NAME_LEN + 1];
	seg_list l = {0};
	seg_err e;
	uint64_t off1, len1, off2, len2, size = 0;
	int r1, r2;

	if (seg_dir_of(v, path, dir, sizeof(dir)) != 0)
		return; /* one file: the reader already read it deep */
	if (seg_list_read(v, dir, &l, &e) || !l.n) {
		seg_list_free(&l);
		return;
	}
	seg_name(name, l.base[l.n - 1]);
	seg_list_free(&l);
	r1 = scan_newest(v, dir, name, &off1, &len1, &size);
	if (r1 < 0 || (r1 == 0 && !len1))
		return;
	usleep(100 * 1000);
	r2 = scan_newest(v, dir, name, &off2, &len2, &size);
	if (r2 != r1 || off2 != off1 || len2 != len1)
		return; /* it moved: a writer is at work */
	if (r1 == 1)
		damage(s, name, 0, size, "segment header is damaged (newest segment)");
	else
		damage(s, name, off1, len1,
		       "torn tail: an incomplete last write (`edgelog repair` or the next "
		       "open truncates it)");
}

/* ---- salvage -------------------------------------------------------------- */

typedef struct salvage {
	const seg_vfs *v;
	char target[4096]; /* OUTDIR as given, trailing slashes removed */
	char parent[4096]; /* the directory holding it */
	char out[4200];    /* the staging directory beside it, where the copy is made */
	char segdir[4300];
	int staged; /* out was created by this salvage */
	seg_writer w;
	int open;
	seg_ranges saved; /* runs of consecutive seqs written */
	seg_ranges lost;  /* seqs missing between saved ones */
} salvage;

/* 1 if path out (existing or not) lies inside or at directory src once
 * symlinks and ".." are resolved: the deepest existing ancestor of out is
 * resolved and the rest appended. */
static int path_inside(const char *src, const char *out)
{
	char s[PATH_MAX], o[PATH_MAX], head[4096], rest[4096] = "", t[8200];
	size_t n;

	if (!realpath(src, s))
		return 0;
	if (strlen(out) >= sizeof(head))
		return 0;
	snprintf(head, sizeof(head), "%s", out);
	while (!realpath(*head ? head : ".", o)) {
		char *sl = strrchr(head, '/');
		snprintf(t, sizeof(t), "/%s%s", sl ? sl + 1 : head, rest);
		if (strlen(t) >= sizeof(rest))
			return 0;
		memcpy(rest, t, strlen(t) + 1);
		if (!sl) {
			head[0] = '\0';
		} else if (sl == head) {
			head[1] = '\0';
			if (!realpath(head, o))
				return 0;
			break;
		} else {
			*sl = '\0';
		}
	}
	if (strlen(o) + strlen(rest) >= sizeof(o))
		return 0;
	strcat(o, strcmp(o, "/") ? rest : rest + (*rest == '/'));
	n = strlen(s);
	return !strncmp(o, s, n) && (o[n] == '/' || o[n] == '\0' || !strcmp(s, "/"));
}

/* Names collected by remove_tree's listing. */
typedef struct names {
	char **v;
	size_t n, cap;
	int oom;
} names;

static int add_name(void *ud, const char *name)
{
	names *l = ud;
	char **g;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		if (!(g = realloc(l->v, cap * sizeof(*g)))) {
			l->oom = 1;
			return 1;
		}
		l->v = g;
		l->cap = cap;
	}
	if (!(l->v[l->n] = strdup(name))) {
		l->oom = 1;
		return 1;
	}
	l->n++;
	return 0;
}

/* Remove path and everything under it (a staging directory a salvage left:
 * files and, at most depth levels down, directories). 0, or -errno of the
 * first failure (what could be removed is). */
static int remove_tree(const seg_vfs *v, const char *path, int depth)
{
	names l = {0};
	char sub[4400];
	size_t i;
	int r, first = 0;

	r = v->list(v, path, add_name, &l);
	if (r == -ENOENT)
		return 0;
	if (!r && l.oom)
		r = -ENOMEM;
	for (i = 0; i < l.n; i++) {
		int k = seg_path(sub, sizeof(sub), path, l.v[i]) ? -ENAMETOOLONG :
								   v->unlink(v, sub);
		if (k == -EISDIR || k == -EPERM)
			k = depth > 0 ? remove_tree(v, sub, depth - 1) : k;
		if (k < 0 && k != -ENOENT && !first)
			first = k;
		free(l.v[i]);
	}
	free(l.v);
	if (r < 0)
		return r;
	if (first)
		return first;
	r = v->rmdir(v, path);
	return r == -ENOENT ? 0 : r;
}

/* OUTDIR must be new or an empty directory. The copy is made in a staging
 * directory beside it, ".NAME.salvage" (an abandoned one, left by a
 * salvage a power cut or a kill stopped, is removed first), and renamed
 * to OUTDIR once complete and durable (salvage_commit). */
static int salvage_prepare(salvage *sv, const char *out, const char *src, seg_err *e)
{
	const seg_vfs *v = sv->v;
	char *slash;
	const char *base;
	size_t n = strlen(out);
	int k, empty, src_dir = is_dir(v, src, NULL) == 1;

	if (n >= sizeof(sv->target) - 64)
		return seg_fail(e, EDGELOG_EINVAL, "path too long: %s", out);
	while (n > 1 && out[n - 1] == '/')
		n--;
	memcpy(sv->target, out, n);
	sv->target[n] = '\0';
	slash = strrchr(sv->target, '/');
	base = slash ? slash + 1 : sv->target;
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return seg_fail(e, EDGELOG_EINVAL,
				"%s: give the salvage a directory name of its own (not /, . or ..)",
				out);
	if (!slash)
		snprintf(sv->parent, sizeof(sv->parent), ".");
	else if (slash == sv->target)
		snprintf(sv->parent, sizeof(sv->parent), "/");
	else
		snprintf(sv->parent, sizeof(sv->parent), "%.*s", (int)(slash - sv->target),
			 sv->target);
	snprintf(sv->out, sizeof(sv->out), "%.*s.%s.salvage", (int)(base - sv->target), sv->target,
		 base);
	/* Writing into the directory being read would read the copies back
	 * and put a second log (and its seqs) inside the first. */
	if (src_dir && (path_inside(src, sv->target) || path_inside(src, sv->out)))
		return seg_fail(e, EDGELOG_EINVAL,
				"%s is inside %s, the directory being read; give one outside it",
				out, src);
	k = is_dir(v, out, &empty);
	if (k == 0)
		return seg_fail(e, EDGELOG_EINVAL, "%s exists and is not a directory", out);
	if (k == 1 && !empty)
		return seg_fail(e, EDGELOG_EINVAL,
				"%s is not empty (give a new or empty directory)", out);
	if (k < 0 && k != -ENOENT)
		return seg_fail(e, EDGELOG_EINVAL, "%s: %s", out, strerror(-k));
	if (k < 0 && v->stat(v, sv->parent, NULL, NULL) != 0)
		return seg_fail(e, EDGELOG_EINVAL, "%s: the directory %s does not exist", out,
				sv->parent);
	/* A staging directory left by an earlier salvage that did not
	 * finish: never a result, removed (durably: it must not come back
	 * beside the new one). */
	if ((k = remove_tree(v, sv->out, 3)) < 0)
		return seg_fail_errno(e, k, "remove %s, left by an unfinished salvage", sv->out);
	if ((k = v->fsync_dir(v, sv->parent)) < 0)
		return seg_fail_errno(e, k, "fsync directory %s", sv->parent);
	/* The staging directory and its segments/, with durable names: the
	 * writer's own mkdir does not sync the parent. */
	snprintf(sv->segdir, sizeof(sv->segdir), "%s/%s", sv->out, ENG_SEGMENTS_DIR);
	if ((k = seg_mkdir_durable(v, sv->out, 0700, e)) < 0)
		return k;
	sv->staged = 1;
	if ((k = seg_mkdir_durable(v, sv->segdir, 0700, e)) < 0)
		return k;
	return 0;
}

/* The copy is complete and durable in the staging directory: it takes
 * OUTDIR's name (replacing the empty directory, if one was there), and
 * the parent directory is fsynced. A power cut before the rename leaves
 * OUTDIR as it was; after it, the whole copy. */
static int salvage_commit(salvage *sv, seg_err *e)
{
	const seg_vfs *v = sv->v;
	int r;

	if ((r = v->rename(v, sv->out, sv->target)) < 0)
		return seg_fail_errno(e, r, "rename %s to %s", sv->out, sv->target);
	sv->staged = 0;
	if ((r = v->fsync_dir(v, sv->parent)) < 0)
		return seg_fail_errno(e, r, "fsync directory %s", sv->parent);
	return 0;
}

static int salvage_put(salvage *sv, const edgelog_record *rec, seg_err *e)
{
	seg_open_report orep;
	uint64_t seq;

	if (!sv->open) {
		/* A segment is never rolled for age here: the records keep
		 * their own times. */
		if (seg_writer_open(&sv->w, sv->v, sv->segdir, 4u << 20, INT64_MAX / 4, 1, &orep,
				    e))
			return EDGELOG_EIO;
		sv->open = 1;
	}
	/* Keep the record's seq: the writer numbers from next_seq, and seqs
	 * may skip (FORMAT.md), so the gaps of the source are kept too. */
	if (rec->seq < sv->w.next_seq)
		return 0; /* cannot happen: the reader returns ascending seqs */
	sv->w.next_seq = rec->seq;
	if (seg_writer_append(&sv->w, rec->data, (uint32_t)rec->len, rec->ts_ms, &seq, e)) {
		char m[sizeof(e->msg)];
		snprintf(m, sizeof(m), "%s", e->msg);
		return seg_fail(e, EDGELOG_EIO, "seq %llu: %s", (unsigned long long)rec->seq, m);
	}
	if (sv->saved.n && sv->saved.hi[sv->saved.n - 1] + 1 == seq) {
		sv->saved.hi[sv->saved.n - 1] = seq;
	} else {
		if (sv->saved.n &&
		    seg_ranges_add(&sv->lost, sv->saved.hi[sv->saved.n - 1] + 1, seq - 1))
			return seg_fail(e, EDGELOG_ENOMEM, "out of memory");
		if (seg_ranges_add(&sv->saved, seq, seq))
			return seg_fail(e, EDGELOG_ENOMEM, "out of memory");
	}
	return 0;
}

/* Sync the segments, then write the lost ranges and the cursor, then the
 * directory's entries. The new cursor acknowledges nothing that was saved. */
static int salvage_finish(salvage *sv, const cur_state *src, int have_src, seg_err *e)
{
	const seg_vfs *v = sv->v;
	char path[4400], qdir[4300];
	cur_state c;
	seg_buf b = {0};
	size_t i;
	int fd, r;

	if (!sv->open)
		return 0; /* nothing valid: a valid, empty directory (prepare made it) */
	r = seg_writer_close(&sv->w, e);
	sv->open = 0;
	if (r)
		return r;
	memset(&c, 0, sizeof(c));
	c.acked_seq = sv->saved.lo[0] - 1;
	c.last_seq = sv->saved.hi[sv->saved.n - 1];
	/* Never hand out a seq the source may have used. */
	if (have_src && src->last_seq > c.last_seq)
		c.last_seq = src->last_seq;
	if (have_src && src->acked_seq > c.last_seq)
		c.last_seq = src->acked_seq;
	for (i = 0; i < sv->lost.n; i++)
		cur_gap_add(&c, sv->lost.lo[i] - 1, sv->lost.hi[i]);
	if (sv->lost.n) {
		snprintf(qdir, sizeof(qdir), "%s/%s", sv->out, SEG_QUARANTINE_DIR);
		snprintf(path, sizeof(path), "%s/%s", qdir, SEG_LOST_FILE);
		seg_buf_puts(&b, "# seq ranges no stored record holds (LO HI inclusive), written "
				 "by edgelog dump --recover\n");
		for (i = 0; i < sv->lost.n; i++)
			seg_buf_printf(&b, "%llu %llu not recovered\n",
				       (unsigned long long)sv->lost.lo[i],
				       (unsigned long long)sv->lost.hi[i]);
		if (b.oom)
			r = seg_fail(e, EDGELOG_ENOMEM, "out of memory");
		else if ((r = seg_mkdir_durable(v, qdir, 0700, e)) > 0)
			r = 0;
		if (!r)
			r = seg_write_atomic(v, path, b.p, b.len, 0600, qdir, e);
		seg_buf_free(&b);
		if (r)
			return r;
	}
	snprintf(path, sizeof(path), "%s/%s", sv->out, CUR_FILE);
	fd = cur_open(v, path, e);
	if (fd < 0)
		return fd;
	r = cur_store(v, fd, &c, e);
	v->close(v, fd);
	if (r)
		return r;
	/* The cursor's name must be durable (segments/ and quarantine/ are). */
	if ((r = v->fsync_dir(v, sv->out)) < 0)
		return seg_fail_errno(e, r, "fsync directory %s", sv->out);
	return 0;
}

/* ---- the walk ------------------------------------------------------------- */

static int walk(const seg_vfs *v, const char *path, const char *outdir, edgelog_scan *s)
{
	edgelog_reader *r;
	edgelog_record rec;
	cur_state cur;
	char cpath[4200];
	seg_ranges known = {0};
	salvage *sv = NULL;
	seg_err e;
	int how = CUR_MISSING, rc, i;
	uint64_t n = 0, last = 0;

	if (!path || !s || s->version != EDGELOG_SCAN_VERSION || (outdir && !*outdir))
		return eng_tls_error(EDGELOG_EINVAL, "%s: %s",
				     outdir ? "edgelog_salvage" : "edgelog_verify",
				     !path || !s ? "path or s is NULL" :
				     s->version != EDGELOG_SCAN_VERSION ?
						   "s->version unset (call edgelog_scan_init)" :
						   "empty directory name");
	clear_output(s);
	memset(&cur, 0, sizeof(cur));
	if ((rc = eng_reader_open_vfs(v, &r, path, s->from_seq)))
		return rc;
	if (outdir) {
		if (!(sv = calloc(1, sizeof(*sv)))) {
			edgelog_reader_close(r);
			return eng_tls_error(EDGELOG_ENOMEM, "edgelog_salvage: out of memory");
		}
		sv->v = v;
		if ((rc = salvage_prepare(sv, outdir, path, &e))) {
			edgelog_reader_close(r);
			free(sv);
			return eng_tls_error(rc, "%s", e.msg);
		}
	}
	edgelog_reader_on_corrupt(r, damage, s);

	/* The cursor tells acked from pending (edgelog directories only). */
	if (!seg_path(cpath, sizeof(cpath), path, CUR_FILE)) {
		rc = cur_load(v, cpath, &cur, &how, &e);
		if (rc == 0 && how != CUR_MISSING) {
			s->have_cursor = how != CUR_GARBAGE;
			if ((s->flags & EDGELOG_SCAN_CURSOR) && how != CUR_LOADED) {
				s->damaged++;
				if (s->on_file_damage)
					s->on_file_damage(s->payload, cpath,
							  how == CUR_FALLBACK ?
								  "newest slot invalid (older slot "
								  "used)" :
								  "no valid slot");
			}
		} else if (rc && (s->flags & EDGELOG_SCAN_CURSOR)) {
			s->damaged++;
			if (s->on_file_damage)
				s->on_file_damage(s->payload, cpath, e.msg);
		}
	}
	if (s->have_cursor) {
		s->cursor_acked_seq = cur.acked_seq;
		s->cursor_last_seq = cur.last_seq;
	}
	/* Gaps that are accounted for: acknowledged, in the cursor's gaps,
	 * or recorded by repair. */
	if (s->have_cursor) {
		if (cur.acked_seq)
			seg_ranges_add(&known, 1, cur.acked_seq);
		for (i = 0; i < CUR_MAX_GAPS; i++)
			if (cur.gap_hi[i])
				seg_ranges_add(&known, cur.gap_lo[i] + 1, cur.gap_hi[i]);
	}
	load_lost(v, path, &known);
	if (s->on_segment)
		list_segments(v, path, s);

	while ((rc = edgelog_reader_next(r, &rec)) == 0) {
		if (rec.seq > s->to_seq)
			break;
		if (n && rec.seq != last + 1) {
			uint64_t ua, ub;
			int open_gap =
				seg_ranges_uncovered(&known, last + 1, rec.seq - 1, &ua, &ub);
			if (open_gap)
				s->gaps++;
			else
				s->gaps_accounted++;
			if (s->on_gap)
				s->on_gap(s->payload, last + 1, rec.seq - 1, !open_gap, &rec);
		}
		if (!n)
			s->first_seq = rec.seq;
		last = s->last_seq = rec.seq;
		n++;
		if (sv && (rc = salvage_put(sv, &rec, &e))) {
			rc = eng_tls_error(rc, "%s", e.msg);
			break;
		}
		s->records++;
		s->data_bytes += rec.len;
		if (s->on_record &&
		    (rc = s->on_record(s->payload, &rec,
				       !s->have_cursor ? -1 : rec.seq <= cur.acked_seq)))
			break;
	}
	seg_ranges_free(&known);
	edgelog_reader_close(r);
	if (rc == EDGELOG_EOF)
		rc = 0;
	if (!rc && (s->flags & EDGELOG_SCAN_TAIL) && s->to_seq == UINT64_MAX)
		check_newest(v, path, s);
	if (sv) {
		size_t k;
		if (!rc && ((rc = salvage_finish(sv, &cur, s->have_cursor, &e)) ||
			    (rc = salvage_commit(sv, &e))))
			rc = eng_tls_error(rc, "%s", e.msg);
		if (sv->open)
			seg_writer_close(&sv->w, NULL);
		/* A salvage that failed leaves no partial copy (OUTDIR is as it
		 * was); what a failing disk keeps of the staging directory, the
		 * next salvage into OUTDIR removes. */
		if (rc && sv->staged && !remove_tree(v, sv->out, 3))
			v->fsync_dir(v, sv->parent);
		s->lost_ranges = sv->lost.n;
		for (k = 0; !rc && s->on_range && k < sv->saved.n; k++)
			s->on_range(s->payload, 0, sv->saved.lo[k], sv->saved.hi[k]);
		for (k = 0; !rc && s->on_range && k < sv->lost.n; k++)
			s->on_range(s->payload, 1, sv->lost.lo[k], sv->lost.hi[k]);
		seg_ranges_free(&sv->saved);
		seg_ranges_free(&sv->lost);
		free(sv);
	}
	return rc;
}

int edgelog_verify(const char *path, edgelog_scan *s)
{
	return walk(seg_vfs_posix(), path, NULL, s);
}

int edgelog_salvage(const char *path, const char *outdir, edgelog_scan *s)
{
	return eng_salvage_vfs(seg_vfs_posix(), path, outdir, s);
}

int eng_verify_vfs(const seg_vfs *v, const char *path, edgelog_scan *s)
{
	return walk(v, path, NULL, s);
}

int eng_salvage_vfs(const seg_vfs *v, const char *path, const char *outdir, edgelog_scan *s)
{
	if (!outdir)
		return eng_tls_error(EDGELOG_EINVAL, "edgelog_salvage: outdir is NULL");
	return walk(v, path, outdir, s);
}

int edgelog_list_segments(const char *path,
			  int (*fn)(void *payload, const char *segment, uint64_t base_seq,
				    uint64_t file_bytes),
			  void *payload)
{
	const seg_vfs *v = seg_vfs_posix();
	char dir[4200], p[4300];
	seg_list l = {0};
	seg_err e;
	size_t i;
	int rc, k;

	if (!path)
		return eng_tls_error(EDGELOG_EINVAL, "edgelog_list_segments: path is NULL");
	k = seg_dir_of(v, path, dir, sizeof(dir));
	if (k < 0)
		return eng_tls_error(EDGELOG_ENOTFOUND, "%s: %s", path, strerror(-k));
	if (k == 1)
		return eng_tls_error(EDGELOG_EINVAL, "%s: not a directory", path);
	if ((rc = seg_list_read(v, dir, &l, &e)))
		return eng_tls_error(rc, "%s", e.msg);
	for (i = 0; i < l.n; i++) {
		char name[SEG_NAME_LEN + 1];
		uint64_t size = 0;
		seg_name(name, l.base[i]);
		if (!seg_path(p, sizeof(p), dir, name) && v->stat(v, p, &size, NULL) != 0)
			size = 0;
		if (fn && fn(payload, name, l.base[i], size)) {
			i++;
			break;
		}
	}
	seg_list_free(&l);
	return (int)(i < (size_t)INT32_MAX ? i : INT32_MAX);
}

int edgelog_dir_acked_seq(const char *dir, uint64_t *acked_seq)
{
	char path[4200];
	cur_state cur;
	seg_err e;
	int how = CUR_MISSING, rc;

	if (!dir || !acked_seq)
		return eng_tls_error(EDGELOG_EINVAL, "edgelog_dir_acked_seq: NULL argument");
	*acked_seq = 0;
	if (seg_path(path, sizeof(path), dir, CUR_FILE))
		return eng_tls_error(EDGELOG_EINVAL, "path too long: %s", dir);
	if ((rc = cur_load(seg_vfs_posix(), path, &cur, &how, &e)))
		return eng_tls_error(rc, "%s", e.msg);
	if (how == CUR_MISSING)
		return eng_tls_error(EDGELOG_ENOTFOUND, "%s: no cursor", path);
	*acked_seq = cur.acked_seq;
	return 0;
}

int edgelog_record_json(const edgelog_record *rec, const char *device_id, char *out, size_t cap,
			size_t *len)
{
	seg_buf b = {0};

	if (!rec || (!rec->data && rec->len))
		return eng_tls_error(EDGELOG_EINVAL, "edgelog_record_json: rec is NULL");
	if (device_id) {
		seg_buf_puts(&b, "{\"device_id\":");
		seg_json_string(&b, device_id, strlen(device_id));
		seg_buf_printf(&b,
			       ",\"seq\":%llu,\"ts\":%lld,\"data\":", (unsigned long long)rec->seq,
			       (long long)rec->ts_ms);
	}
	if (seg_mp_to_json(rec->data, rec->len, &b)) {
		seg_buf_free(&b);
		return eng_tls_error(EDGELOG_EINVAL,
				     "seq %llu: the record is not one well-formed msgpack object",
				     (unsigned long long)rec->seq);
	}
	if (device_id)
		seg_buf_puts(&b, "}");
	return eng_give_text(&b, out, cap, len);
}
