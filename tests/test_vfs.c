/*
 * test_vfs.c - fault-injecting and in-memory seg_vfs tables; see
 * test_vfs.h for what each promises.
 *
 * The in-memory file system keeps an inode tree: directories hold two
 * entry lists (live and durable), files hold a live buffer and a durable
 * copy. Buffers that a mapping points at are never reallocated; at power
 * loss a mapped buffer is detached (kept for the dead writer's stores and
 * its munmap) and the file gets a fresh one. Descriptor numbers only grow,
 * so a stale descriptor can never reach a new file.
 *
 * Code under test may store into a mapped buffer while another thread
 * fsyncs or preads it, as a kernel would allow. Every access to a live
 * buffer therefore goes through racy_copy()/racy_zero(), which
 * ThreadSanitizer does not instrument: the race is the simulated hardware's,
 * not the code under test's.
 */
#include "test_vfs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__GNUC__) || defined(__clang__)
#define TVFS_RACY __attribute__((no_sanitize("thread"), noinline))
typedef uint64_t __attribute__((may_alias)) tvfs_word;
#else
#define TVFS_RACY
typedef uint64_t tvfs_word;
#endif

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);
	if (!p)
		abort();
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		abort();
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(xmalloc(n), s, n);
}

/* Copies that may race with stores through a mapping (see the top). No
 * memcpy/memset inside: ThreadSanitizer intercepts those. */
static TVFS_RACY void racy_copy(void *dst, const void *src, size_t n)
{
	volatile uint8_t *d = dst;
	const volatile uint8_t *s = src;
	size_t i = 0;

	if ((((uintptr_t)dst | (uintptr_t)src) & 7u) == 0) {
		for (; i + 8 <= n; i += 8)
			*(volatile tvfs_word *)(d + i) = *(const volatile tvfs_word *)(s + i);
	}
	for (; i < n; i++)
		d[i] = s[i];
}

static TVFS_RACY void racy_zero(void *dst, size_t n)
{
	volatile uint8_t *d = dst;
	size_t i = 0;

	if (((uintptr_t)dst & 7u) == 0) {
		for (; i + 8 <= n; i += 8)
			*(volatile tvfs_word *)(d + i) = 0;
	}
	for (; i < n; i++)
		d[i] = 0;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int64_t real_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The fake clock both tables use: wall and monotonic time in ms that the
 * test sets and moves. While it is off, a table reads real time (the fault
 * table from the table it wraps, the in-memory one from clock_gettime).
 * The owner's mutex guards it.
 */
typedef struct tvfs_clock {
	int fake;
	int64_t now, mono;
} tvfs_clock;

static int64_t clock_value(const tvfs_clock *c, int mono)
{
	return mono ? c->mono : c->now;
}

static void clock_set(tvfs_clock *c, int64_t now_ms, int64_t mono_ms)
{
	c->fake = 1;
	c->now = now_ms;
	c->mono = mono_ms;
}

/* Both clocks forward by ms (mono), or the wall clock alone (may be
 * negative: NTP stepping back). */
static void clock_move(tvfs_clock *c, int64_t ms, int mono)
{
	c->now += ms;
	if (mono)
		c->mono += ms;
}

static const char *const op_names[] = {
	"open",  "pwrite",    "fsync",  "ftruncate", "fallocate", "rename", "unlink",
	"mkdir", "fsync_dir", "mmap",   "pread",     "punch",     "fstat",  "stat",
	"list",  "lock",      "random", "fchmod",    "file_id",
};
#define TVFS_NOPS (sizeof op_names / sizeof op_names[0])

static unsigned op_index(unsigned op)
{
	unsigned i = 0;
	while (i < TVFS_NOPS && op != (1u << i))
		i++;
	return i;
}

const char *tvfs_op_name(unsigned op)
{
	unsigned i = op_index(op);
	return i < TVFS_NOPS ? op_names[i] : "?";
}

/* ========================================================================
 * Fault injection
 * ====================================================================== */
struct tvfs_fault {
	seg_vfs vfs; /* first: vfs.ctx points back here */
	const seg_vfs *base;
	pthread_mutex_t mu;

	uint64_t count[TVFS_NOPS];
	uint64_t total;

	unsigned fail_mask; /* 0: disarmed */
	uint64_t fail_at;   /* fire when count(fail_mask) reaches this */
	int fail_err;
	int fail_sticky;
	uint64_t short_at; /* fire when count[pwrite] reaches this; 0: off */
	uint64_t injected;

	tvfs_hook_fn hook;
	void *hook_ud;
	FILE *trace;

	tvfs_clock clock;
};

static uint64_t count_locked(const tvfs_fault *f, unsigned mask)
{
	uint64_t c = 0;
	for (unsigned i = 0; i < TVFS_NOPS; i++)
		if (mask & (1u << i))
			c += f->count[i];
	return c;
}

/* Count one operation and decide its fate: 0 to pass it through, or the
 * -errno to fail it with. *n gets its number; *shorten (pwrite only) is set
 * when it must be a short write. */
static int fault_enter(tvfs_fault *f, unsigned op, const char *path, uint64_t *n, int *shorten)
{
	tvfs_hook_fn hook;
	void *ud;
	int r = 0;

	pthread_mutex_lock(&f->mu);
	f->count[op_index(op)]++;
	*n = ++f->total;
	hook = f->hook;
	ud = f->hook_ud;
	pthread_mutex_unlock(&f->mu);

	if (hook)
		r = hook(ud, op, *n, path);

	pthread_mutex_lock(&f->mu);
	if (r < 0) {
		f->injected++;
	} else if (f->fail_mask & op) {
		uint64_t c = count_locked(f, f->fail_mask);
		if (c == f->fail_at || (f->fail_sticky && c > f->fail_at)) {
			r = f->fail_err;
			f->injected++;
		}
	}
	if (r >= 0 && shorten && f->short_at && f->count[op_index(TVFS_OP_PWRITE)] == f->short_at)
		*shorten = 1;
	pthread_mutex_unlock(&f->mu);
	return r < 0 ? r : 0;
}

static void fault_trace(tvfs_fault *f, unsigned op, uint64_t n, const char *path, int fd,
			long long r)
{
	FILE *out;

	pthread_mutex_lock(&f->mu);
	out = f->trace;
	pthread_mutex_unlock(&f->mu);
	if (!out)
		return;
	if (path)
		fprintf(out, "tvfs #%llu %s %s -> %lld\n", (unsigned long long)n, tvfs_op_name(op),
			path, r);
	else
		fprintf(out, "tvfs #%llu %s fd %d -> %lld\n", (unsigned long long)n,
			tvfs_op_name(op), fd, r);
}

#define FAULT(v) ((tvfs_fault *)(v)->ctx)

static int ft_open(const seg_vfs *v, const char *path, int flags, int mode)
{
	tvfs_fault *f = FAULT(v);
	uint64_t n;
	int r = fault_enter(f, TVFS_OP_OPEN, path, &n, NULL);
	if (r == 0)
		r = f->base->open(f->base, path, flags, mode);
	fault_trace(f, TVFS_OP_OPEN, n, path, -1, r);
	return r;
}

static int ft_close(const seg_vfs *v, int fd)
{
	tvfs_fault *f = FAULT(v);
	return f->base->close(f->base, fd);
}

static ssize_t ft_pread(const seg_vfs *v, int fd, void *buf, size_t len, uint64_t off)
{
	tvfs_fault *f = FAULT(v);
	uint64_t n;
	ssize_t r = fault_enter(f, TVFS_OP_PREAD, NULL, &n, NULL);
	if (r == 0)
		r = f->base->pread(f->base, fd, buf, len, off);
	fault_trace(f, TVFS_OP_PREAD, n, NULL, fd, r);
	return r;
}

static ssize_t ft_pwrite(const seg_vfs *v, int fd, const void *buf, size_t len, uint64_t off)
{
	tvfs_fault *f = FAULT(v);
	uint64_t n;
	int shorten = 0;
	ssize_t r = fault_enter(f, TVFS_OP_PWRITE, NULL, &n, &shorten);
	if (r == 0) {
		if (shorten && len >= 2) {
			len /= 2;
			pthread_mutex_lock(&f->mu);
			f->injected++;
			pthread_mutex_unlock(&f->mu);
		}
		r = f->base->pwrite(f->base, fd, buf, len, off);
	}
	fault_trace(f, TVFS_OP_PWRITE, n, NULL, fd, r);
	return r;
}

#define FT_FD_OP(name, OP, call)                            \
	static int ft_##name                                \
	{                                                   \
		tvfs_fault *f = FAULT(v);                   \
		uint64_t n;                                 \
		int r = fault_enter(f, OP, NULL, &n, NULL); \
		if (r == 0)                                 \
			r = call;                           \
		fault_trace(f, OP, n, NULL, fd, r);         \
		return r;                                   \
	}

#define FT_PATH_OP(name, OP, call)                          \
	static int ft_##name                                \
	{                                                   \
		tvfs_fault *f = FAULT(v);                   \
		uint64_t n;                                 \
		int r = fault_enter(f, OP, path, &n, NULL); \
		if (r == 0)                                 \
			r = call;                           \
		fault_trace(f, OP, n, path, -1, r);         \
		return r;                                   \
	}

/* clang-format off */
FT_FD_OP(fsync(const seg_vfs *v, int fd), TVFS_OP_FSYNC, f->base->fsync(f->base, fd))
FT_FD_OP(ftruncate(const seg_vfs *v, int fd, uint64_t len), TVFS_OP_FTRUNCATE,
	 f->base->ftruncate(f->base, fd, len))
FT_FD_OP(fallocate(const seg_vfs *v, int fd, uint64_t len), TVFS_OP_FALLOCATE,
	 f->base->fallocate(f->base, fd, len))
FT_FD_OP(punch(const seg_vfs *v, int fd, uint64_t off, uint64_t len), TVFS_OP_PUNCH,
	 f->base->punch(f->base, fd, off, len))
FT_FD_OP(fstat(const seg_vfs *v, int fd, uint64_t *size, uint64_t *alloc), TVFS_OP_FSTAT,
	 f->base->fstat(f->base, fd, size, alloc))
FT_FD_OP(lock(const seg_vfs *v, int fd), TVFS_OP_LOCK, f->base->lock(f->base, fd))
FT_FD_OP(fchmod(const seg_vfs *v, int fd, int mode), TVFS_OP_FCHMOD,
	 f->base->fchmod(f->base, fd, mode))
FT_PATH_OP(unlink(const seg_vfs *v, const char *path), TVFS_OP_UNLINK,
	   f->base->unlink(f->base, path))
FT_PATH_OP(mkdir(const seg_vfs *v, const char *path, int mode), TVFS_OP_MKDIR,
	   f->base->mkdir(f->base, path, mode))
/* A removal, like unlink: counted and failed as one. */
FT_PATH_OP(rmdir(const seg_vfs *v, const char *path), TVFS_OP_UNLINK,
	   f->base->rmdir(f->base, path))
FT_PATH_OP(fsync_dir(const seg_vfs *v, const char *path), TVFS_OP_FSYNC_DIR,
	   f->base->fsync_dir(f->base, path))
FT_PATH_OP(list(const seg_vfs *v, const char *path, seg_list_fn fn, void *ud), TVFS_OP_LIST,
	   f->base->list(f->base, path, fn, ud))
FT_PATH_OP(stat(const seg_vfs *v, const char *path, uint64_t *size, uint64_t *alloc),
	   TVFS_OP_STAT, f->base->stat(f->base, path, size, alloc))
/* clang-format on */

static void *ft_mmap(const seg_vfs *v, int fd, size_t len, int writable, int populate, int *err)
{
	tvfs_fault *f = FAULT(v);
	uint64_t n;
	void *p = NULL;
	int r = fault_enter(f, TVFS_OP_MMAP, NULL, &n, NULL);

	if (r == 0) {
		int e = 0;
		p = f->base->mmap(f->base, fd, len, writable, populate, &e);
		r = p ? 0 : e < 0 ? e : -EIO;
	}
	if (!p)
		*err = r;
	fault_trace(f, TVFS_OP_MMAP, n, NULL, fd, r);
	return p;
}

static int ft_munmap(const seg_vfs *v, void *p, size_t len)
{
	tvfs_fault *f = FAULT(v);
	return f->base->munmap(f->base, p, len);
}

static int ft_rename(const seg_vfs *v, const char *from, const char *to)
{
	tvfs_fault *f = FAULT(v);
	uint64_t n;
	int r = fault_enter(f, TVFS_OP_RENAME, from, &n, NULL);
	if (r == 0)
		r = f->base->rename(f->base, from, to);
	fault_trace(f, TVFS_OP_RENAME, n, to, -1, r);
	return r;
}

static int ft_file_id(const seg_vfs *v, int fd, const char *path, uint64_t id[2])
{
	tvfs_fault *f = FAULT(v);
	uint64_t n;
	int r = fault_enter(f, TVFS_OP_FILE_ID, path, &n, NULL);
	if (r == 0)
		r = f->base->file_id(f->base, fd, path, id);
	fault_trace(f, TVFS_OP_FILE_ID, n, path, fd, r);
	return r;
}

static int64_t ft_clock(const seg_vfs *v, int mono)
{
	tvfs_fault *f = FAULT(v);
	int64_t t;
	int fake;

	pthread_mutex_lock(&f->mu);
	fake = f->clock.fake;
	t = clock_value(&f->clock, mono);
	pthread_mutex_unlock(&f->mu);
	if (fake)
		return t;
	return mono ? f->base->mono_ms(f->base) : f->base->now_ms(f->base);
}

static int64_t ft_now_ms(const seg_vfs *v)
{
	return ft_clock(v, 0);
}

static int64_t ft_mono_ms(const seg_vfs *v)
{
	return ft_clock(v, 1);
}

static int ft_random(const seg_vfs *v, void *buf, size_t len)
{
	tvfs_fault *f = FAULT(v);
	uint64_t n;
	int r = fault_enter(f, TVFS_OP_RANDOM, NULL, &n, NULL);
	if (r == 0)
		r = f->base->random(f->base, buf, len);
	fault_trace(f, TVFS_OP_RANDOM, n, NULL, -1, r);
	return r;
}

tvfs_fault *tvfs_fault_new(const seg_vfs *base)
{
	tvfs_fault *f = xcalloc(1, sizeof *f);

	f->base = base ? base : seg_vfs_posix();
	pthread_mutex_init(&f->mu, NULL);
	f->vfs = (seg_vfs){
		.ctx = f,
		.open = ft_open,
		.close = ft_close,
		.pread = ft_pread,
		.pwrite = ft_pwrite,
		.fsync = ft_fsync,
		.ftruncate = ft_ftruncate,
		.fallocate = ft_fallocate,
		.punch = ft_punch,
		.fstat = ft_fstat,
		.mmap = ft_mmap,
		.munmap = ft_munmap,
		.rename = ft_rename,
		.unlink = ft_unlink,
		.mkdir = ft_mkdir,
		.rmdir = ft_rmdir,
		.fsync_dir = ft_fsync_dir,
		.list = ft_list,
		.stat = ft_stat,
		.lock = ft_lock,
		.fchmod = ft_fchmod,
		.file_id = ft_file_id,
		.now_ms = ft_now_ms,
		.mono_ms = ft_mono_ms,
		.random = ft_random,
	};
	return f;
}

void tvfs_fault_free(tvfs_fault *f)
{
	if (!f)
		return;
	pthread_mutex_destroy(&f->mu);
	free(f);
}

const seg_vfs *tvfs_fault_vfs(tvfs_fault *f)
{
	return &f->vfs;
}

void tvfs_fault_reset(tvfs_fault *f)
{
	pthread_mutex_lock(&f->mu);
	memset(f->count, 0, sizeof f->count);
	f->total = 0;
	f->fail_mask = 0;
	f->fail_at = 0;
	f->short_at = 0;
	f->injected = 0;
	f->hook = NULL;
	f->hook_ud = NULL;
	pthread_mutex_unlock(&f->mu);
}

uint64_t tvfs_fault_count(tvfs_fault *f, unsigned mask)
{
	uint64_t c;
	pthread_mutex_lock(&f->mu);
	c = count_locked(f, mask);
	pthread_mutex_unlock(&f->mu);
	return c;
}

void tvfs_fault_fail(tvfs_fault *f, unsigned mask, uint64_t n, int neg_errno, int sticky)
{
	pthread_mutex_lock(&f->mu);
	if (n == 0 || (mask & TVFS_OP_ALL) == 0) {
		f->fail_mask = 0;
	} else {
		f->fail_mask = mask & TVFS_OP_ALL;
		f->fail_at = count_locked(f, f->fail_mask) + n;
		f->fail_err = neg_errno < 0 ? neg_errno : -EIO;
		f->fail_sticky = sticky;
	}
	pthread_mutex_unlock(&f->mu);
}

void tvfs_fault_fail_nth(tvfs_fault *f, uint64_t n, int neg_errno)
{
	tvfs_fault_fail(f, TVFS_OP_COUNTED, n, neg_errno, 0);
}

void tvfs_fault_short_write(tvfs_fault *f, uint64_t n)
{
	pthread_mutex_lock(&f->mu);
	f->short_at = n ? f->count[op_index(TVFS_OP_PWRITE)] + n : 0;
	pthread_mutex_unlock(&f->mu);
}

uint64_t tvfs_fault_injected(tvfs_fault *f)
{
	uint64_t c;
	pthread_mutex_lock(&f->mu);
	c = f->injected;
	pthread_mutex_unlock(&f->mu);
	return c;
}

void tvfs_fault_set_hook(tvfs_fault *f, tvfs_hook_fn fn, void *ud)
{
	pthread_mutex_lock(&f->mu);
	f->hook = fn;
	f->hook_ud = ud;
	pthread_mutex_unlock(&f->mu);
}

void tvfs_fault_trace(tvfs_fault *f, FILE *out)
{
	pthread_mutex_lock(&f->mu);
	f->trace = out;
	pthread_mutex_unlock(&f->mu);
}

void tvfs_fault_clock_fake(tvfs_fault *f, int on)
{
	pthread_mutex_lock(&f->mu);
	if (on && !f->clock.fake) /* start the fake clock where the real one is */
		clock_set(&f->clock, f->base->now_ms(f->base), f->base->mono_ms(f->base));
	f->clock.fake = on;
	pthread_mutex_unlock(&f->mu);
}

void tvfs_fault_clock_set(tvfs_fault *f, int64_t now_ms, int64_t mono_ms)
{
	pthread_mutex_lock(&f->mu);
	clock_set(&f->clock, now_ms, mono_ms);
	pthread_mutex_unlock(&f->mu);
}

void tvfs_fault_clock_advance(tvfs_fault *f, int64_t ms)
{
	pthread_mutex_lock(&f->mu);
	clock_move(&f->clock, ms, 1);
	pthread_mutex_unlock(&f->mu);
}

void tvfs_fault_clock_jump(tvfs_fault *f, int64_t ms)
{
	pthread_mutex_lock(&f->mu);
	clock_move(&f->clock, ms, 0);
	pthread_mutex_unlock(&f->mu);
}

/* ========================================================================
 * In-memory file system
 * ====================================================================== */
typedef struct mbuf {
	uint8_t *p;
	size_t cap;
	unsigned maps;     /* live mappings of this buffer */
	struct mbuf *next; /* in tvfs_mem.detached, once detached */
} mbuf;

struct mnode;

typedef struct ment {
	char *name;
	struct mnode *node;
} ment;

typedef struct mlist {
	ment *v;
	size_t n, cap;
} mlist;

typedef struct mnode {
	int is_dir;
	/* file */
	mbuf *buf;
	size_t size;  /* live size; buf->p[size, cap) is zero */
	uint8_t *dur; /* durable content */
	size_t dsize;
	uint64_t lock_fd; /* descriptor holding the lock; 0: none */
	/* directory */
	mlist live, durable;

	int mark;
	uint64_t ino;       /* never reused: what file_id reports */
	int mode;           /* permission bits, as created or fchmod'ed */
	struct mnode *next; /* every node */
} mnode;

typedef struct mfd {
	uint64_t id;
	mnode *node;
	int rd, wr;
} mfd;

typedef struct mmapping {
	void *p;
	size_t len;
	mbuf *buf;
} mmapping;

struct tvfs_mem {
	seg_vfs vfs; /* first: vfs.ctx points back here */
	pthread_mutex_t mu;

	mnode *root_abs, *root_rel;
	mnode *nodes;
	mbuf *detached;
	uint64_t next_ino;

	mfd *fds;
	size_t nfds, capfds;
	uint64_t next_fd;

	mmapping *maps;
	size_t nmaps, capmaps;

	uint64_t rng;
	tvfs_clock clock;
	unsigned keep_pct, torn_pct, page_pct;
};

#define MEM(v) ((tvfs_mem *)(v)->ctx)
#define TVFS_MAX_DEPTH 64
#define TVFS_PAGE 4096u

/* --- entry lists --- */
static ment *list_find(const mlist *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return &l->v[i];
	return NULL;
}

static void list_set(mlist *l, const char *name, mnode *node)
{
	ment *e = list_find(l, name);
	if (e) {
		e->node = node;
		return;
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n].name = xstrdup(name);
	l->v[l->n].node = node;
	l->n++;
}

static void list_del(mlist *l, const char *name)
{
	ment *e = list_find(l, name);
	if (!e)
		return;
	free(e->name);
	*e = l->v[--l->n];
}

static void list_clear(mlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	l->n = 0;
}

static void list_copy(mlist *dst, const mlist *src)
{
	list_clear(dst);
	for (size_t i = 0; i < src->n; i++)
		list_set(dst, src->v[i].name, src->v[i].node);
}

static void list_free(mlist *l)
{
	list_clear(l);
	free(l->v);
	l->v = NULL;
	l->cap = 0;
}

/* --- nodes and buffers --- */
static mbuf *buf_new(size_t cap)
{
	mbuf *b = xcalloc(1, sizeof *b);
	b->cap = cap;
	b->p = xcalloc(cap ? cap : 1, 1);
	return b;
}

static mnode *node_new(tvfs_mem *m, int is_dir)
{
	mnode *n = xcalloc(1, sizeof *n);
	n->is_dir = is_dir;
	if (!is_dir)
		n->buf = buf_new(0);
	n->ino = ++m->next_ino;
	n->mode = is_dir ? 0700 : 0600;
	n->next = m->nodes;
	m->nodes = n;
	return n;
}

/* The file's buffer moves to the detached list (a mapping still points
 * at it); the file gets a fresh one holding the same live content. */
static void buf_detach(tvfs_mem *m, mnode *n, int give_new)
{
	mbuf *old = n->buf;
	old->next = m->detached;
	m->detached = old;
	n->buf = NULL;
	if (give_new) {
		n->buf = buf_new(old->cap);
		racy_copy(n->buf->p, old->p, n->size);
	}
}

static void node_free(tvfs_mem *m, mnode *n)
{
	if (n->is_dir) {
		list_free(&n->live);
		list_free(&n->durable);
	} else {
		if (n->buf && n->buf->maps) {
			buf_detach(m, n, 0);
		} else if (n->buf) {
			free(n->buf->p);
			free(n->buf);
		}
		free(n->dur);
	}
	free(n);
}

/* Make room for need bytes. exact: capacity exactly need (fallocate),
 * else grow geometrically (pwrite). -EIO if the buffer is mapped: a
 * mapping's pointer must stay valid. */
static int buf_reserve(mnode *n, size_t need, int exact)
{
	mbuf *b = n->buf;
	size_t cap;

	if (need <= b->cap)
		return 0;
	if (b->maps)
		return -EIO;
	cap = need;
	if (!exact && cap < b->cap * 2)
		cap = b->cap * 2;
	b->p = xrealloc(b->p, cap);
	memset(b->p + b->cap, 0, cap - b->cap);
	b->cap = cap;
	return 0;
}

static int file_resize(mnode *n, size_t size, int exact)
{
	int r;
	if (size > n->size) {
		if ((r = buf_reserve(n, size, exact)) < 0)
			return r;
		racy_zero(n->buf->p + n->size, size - n->size);
	} else if (size < n->size) {
		racy_zero(n->buf->p + size, n->size - size);
	}
	n->size = size;
	return 0;
}

/* --- paths --- */
typedef struct mpath {
	char *buf;
	const char *comp[TVFS_MAX_DEPTH];
	int n;
	int abs;
} mpath;

static int path_split(const char *path, mpath *p)
{
	char *save = NULL, *tok;

	memset(p, 0, sizeof *p);
	if (!path || !*path)
		return -ENOENT;
	p->abs = path[0] == '/';
	p->buf = xstrdup(path);
	for (tok = strtok_r(p->buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (strcmp(tok, ".") == 0)
			continue;
		if (strcmp(tok, "..") == 0 || p->n == TVFS_MAX_DEPTH) {
			int r = strcmp(tok, "..") == 0 ? -EINVAL : -ENAMETOOLONG;
			free(p->buf);
			p->buf = NULL;
			return r;
		}
		p->comp[p->n++] = tok;
	}
	return 0;
}

/* Walk the first `upto` components through live entries. Every node
 * passed through must be a directory; the last may be anything. Passing
 * through `avoid` gives -EINVAL (moving a directory into itself). */
static int path_walk(tvfs_mem *m, const mpath *p, int upto, const mnode *avoid, mnode **out)
{
	mnode *cur = p->abs ? m->root_abs : m->root_rel;

	for (int i = 0; i < upto; i++) {
		ment *e;
		if (cur == avoid)
			return -EINVAL;
		if (!cur->is_dir)
			return -ENOTDIR;
		e = list_find(&cur->live, p->comp[i]);
		if (!e)
			return -ENOENT;
		cur = e->node;
	}
	if (cur == avoid)
		return -EINVAL;
	*out = cur;
	return 0;
}

/* The directory that holds the last component of p. */
static int path_parent(tvfs_mem *m, const mpath *p, const mnode *avoid, mnode **dir)
{
	int r;
	if (p->n == 0)
		return -EBUSY; /* a root has no parent */
	if ((r = path_walk(m, p, p->n - 1, avoid, dir)) < 0)
		return r;
	return (*dir)->is_dir ? 0 : -ENOTDIR;
}

static const char *path_leaf(const mpath *p)
{
	return p->comp[p->n - 1];
}

static int path_lookup(tvfs_mem *m, const char *path, mnode **out)
{
	mpath p;
	int r = path_split(path, &p);
	if (r == 0)
		r = path_walk(m, &p, p.n, NULL, out);
	free(p.buf);
	return r;
}

/* --- descriptors --- */
static mfd *fd_get(tvfs_mem *m, int fd)
{
	for (size_t i = 0; i < m->nfds; i++)
		if (m->fds[i].id == (uint64_t)fd)
			return &m->fds[i];
	return NULL;
}

static int fd_add(tvfs_mem *m, mnode *n, int rd, int wr)
{
	if (m->nfds == m->capfds) {
		m->capfds = m->capfds ? m->capfds * 2 : 16;
		m->fds = xrealloc(m->fds, m->capfds * sizeof *m->fds);
	}
	if (m->next_fd >= 0x7fffffff)
		return -EMFILE;
	m->fds[m->nfds] = (mfd){.id = m->next_fd++, .node = n, .rd = rd, .wr = wr};
	return (int)m->fds[m->nfds++].id;
}

/* --- the table --- */
static int mem_open(const seg_vfs *v, const char *path, int flags, int mode)
{
	tvfs_mem *m = MEM(v);
	int acc = flags & O_ACCMODE;
	int rd = acc != O_WRONLY, wr = acc != O_RDONLY;
	mnode *dir = NULL, *n = NULL;
	mpath p;
	int r;

	pthread_mutex_lock(&m->mu);
	if ((r = path_split(path, &p)) < 0)
		goto out;
	if (p.n == 0) {
		n = p.abs ? m->root_abs : m->root_rel;
	} else {
		ment *e;
		if ((r = path_parent(m, &p, NULL, &dir)) < 0)
			goto out;
		e = list_find(&dir->live, path_leaf(&p));
		n = e ? e->node : NULL;
	}
	if (n) {
		if ((flags & O_CREAT) && (flags & O_EXCL)) {
			r = -EEXIST;
			goto out;
		}
		if (n->is_dir && (wr || (flags & O_TRUNC))) {
			r = -EISDIR;
			goto out;
		}
		if ((flags & O_TRUNC) && wr && (r = file_resize(n, 0, 0)) < 0)
			goto out;
	} else {
		if (!(flags & O_CREAT)) {
			r = -ENOENT;
			goto out;
		}
		n = node_new(m, 0);
		n->mode = mode & 07777;
		list_set(&dir->live, path_leaf(&p), n);
	}
	r = fd_add(m, n, rd, wr);
out:
	free(p.buf);
	pthread_mutex_unlock(&m->mu);
	return r;
}

static int mem_close(const seg_vfs *v, int fd)
{
	tvfs_mem *m = MEM(v);
	mfd *d;
	int r = 0;

	pthread_mutex_lock(&m->mu);
	d = fd_get(m, fd);
	if (!d) {
		r = -EBADF;
	} else {
		if (d->node->lock_fd == d->id)
			d->node->lock_fd = 0;
		*d = m->fds[--m->nfds];
	}
	pthread_mutex_unlock(&m->mu);
	return r;
}

/* The descriptor's file for an operation; r gets -EBADF / -EISDIR. */
static mnode *fd_file(tvfs_mem *m, int fd, int need_rd, int need_wr, int *r)
{
	mfd *d = fd_get(m, fd);
	if (!d || (need_rd && !d->rd) || (need_wr && !d->wr)) {
		*r = -EBADF;
		return NULL;
	}
	if (d->node->is_dir) {
		*r = -EISDIR;
		return NULL;
	}
	*r = 0;
	return d->node;
}

static ssize_t mem_pread(const seg_vfs *v, int fd, void *buf, size_t len, uint64_t off)
{
	tvfs_mem *m = MEM(v);
	ssize_t got = 0;
	mnode *n;
	int r;

	pthread_mutex_lock(&m->mu);
	n = fd_file(m, fd, 1, 0, &r);
	if (n && off < n->size) {
		size_t k = n->size - (size_t)off;
		if (k > len)
			k = len;
		racy_copy(buf, n->buf->p + off, k);
		got = (ssize_t)k;
	}
	pthread_mutex_unlock(&m->mu);
	return n ? got : r;
}

static ssize_t mem_pwrite(const seg_vfs *v, int fd, const void *buf, size_t len, uint64_t off)
{
	tvfs_mem *m = MEM(v);
	mnode *n;
	int r;

	pthread_mutex_lock(&m->mu);
	n = fd_file(m, fd, 0, 1, &r);
	if (n && len) {
		if (off > SIZE_MAX - len) {
			r = -EFBIG;
		} else if (off + len > n->size) {
			/* Zero-fill any gap, then the write lands on top. */
			r = file_resize(n, (size_t)off + len, 0);
		}
		if (r == 0)
			racy_copy(n->buf->p + off, buf, len);
	}
	pthread_mutex_unlock(&m->mu);
	return r < 0 ? r : (ssize_t)len;
}

static int mem_fsync(const seg_vfs *v, int fd)
{
	tvfs_mem *m = MEM(v);
	mfd *d;
	int r = 0;

	pthread_mutex_lock(&m->mu);
	d = fd_get(m, fd);
	if (!d) {
		r = -EBADF;
	} else if (d->node->is_dir) {
		list_copy(&d->node->durable, &d->node->live);
	} else {
		mnode *n = d->node;
		n->dur = xrealloc(n->dur, n->size);
		racy_copy(n->dur, n->buf->p, n->size);
		n->dsize = n->size;
	}
	pthread_mutex_unlock(&m->mu);
	return r;
}

static int mem_ftruncate(const seg_vfs *v, int fd, uint64_t len)
{
	tvfs_mem *m = MEM(v);
	mnode *n;
	int r;

	pthread_mutex_lock(&m->mu);
	n = fd_file(m, fd, 0, 1, &r);
	if (r == -EBADF && fd_get(m, fd))
		r = -EINVAL; /* not open for writing */
	if (n)
		r = len > SIZE_MAX ? -EFBIG : file_resize(n, (size_t)len, 0);
	pthread_mutex_unlock(&m->mu);
	return r;
}

static int mem_fallocate(const seg_vfs *v, int fd, uint64_t len)
{
	tvfs_mem *m = MEM(v);
	mnode *n;
	int r;

	pthread_mutex_lock(&m->mu);
	n = fd_file(m, fd, 0, 1, &r);
	if (n) {
		if (len > SIZE_MAX)
			r = -EFBIG;
		else if ((r = buf_reserve(n, (size_t)len, 1)) == 0 && len > n->size)
			r = file_resize(n, (size_t)len, 1);
	}
	pthread_mutex_unlock(&m->mu);
	return r;
}

static int mem_punch(const seg_vfs *v, int fd, uint64_t off, uint64_t len)
{
	tvfs_mem *m = MEM(v);
	mnode *n;
	int r;

	pthread_mutex_lock(&m->mu);
	n = fd_file(m, fd, 0, 1, &r);
	if (n && off < n->size) {
		size_t k = n->size - (size_t)off;
		if (len < k)
			k = (size_t)len;
		racy_zero(n->buf->p + off, k);
	}
	pthread_mutex_unlock(&m->mu);
	return r;
}

static int mem_fstat(const seg_vfs *v, int fd, uint64_t *size, uint64_t *alloc)
{
	tvfs_mem *m = MEM(v);
	mfd *d;
	int r = 0;

	pthread_mutex_lock(&m->mu);
	d = fd_get(m, fd);
	if (!d) {
		r = -EBADF;
	} else {
		uint64_t s = d->node->is_dir ? 0 : d->node->size;
		if (size)
			*size = s;
		if (alloc)
			*alloc = s;
	}
	pthread_mutex_unlock(&m->mu);
	return r;
}

static void *mem_mmap(const seg_vfs *v, int fd, size_t len, int writable, int populate, int *err)
{
	tvfs_mem *m = MEM(v);
	mfd *d;
	void *p = NULL;
	int r = 0;

	(void)populate;
	pthread_mutex_lock(&m->mu);
	d = fd_get(m, fd);
	if (!d)
		r = -EBADF;
	else if (d->node->is_dir)
		r = -ENODEV;
	else if (len == 0)
		r = -EINVAL;
	else if (!d->rd || (writable && !d->wr))
		r = -EACCES;
	else
		r = buf_reserve(d->node, len, 1);
	if (r == 0) {
		mbuf *b = d->node->buf;
		if (m->nmaps == m->capmaps) {
			m->capmaps = m->capmaps ? m->capmaps * 2 : 16;
			m->maps = xrealloc(m->maps, m->capmaps * sizeof *m->maps);
		}
		m->maps[m->nmaps++] = (mmapping){.p = b->p, .len = len, .buf = b};
		b->maps++;
		p = b->p;
	}
	pthread_mutex_unlock(&m->mu);
	if (!p)
		*err = r;
	return p;
}

static int mem_munmap(const seg_vfs *v, void *p, size_t len)
{
	tvfs_mem *m = MEM(v);
	size_t i, found = SIZE_MAX;
	int r = 0;

	pthread_mutex_lock(&m->mu);
	for (i = 0; i < m->nmaps; i++) {
		if (m->maps[i].p != p)
			continue;
		found = i;
		if (m->maps[i].len == len)
			break;
	}
	if (found == SIZE_MAX) {
		r = -EINVAL;
	} else {
		mbuf *b = m->maps[found].buf;
		m->maps[found] = m->maps[--m->nmaps];
		if (--b->maps == 0) {
			/* Free it if detached (no file owns it any more). */
			for (mbuf **pp = &m->detached; *pp; pp = &(*pp)->next) {
				if (*pp == b) {
					*pp = b->next;
					free(b->p);
					free(b);
					break;
				}
			}
		}
	}
	pthread_mutex_unlock(&m->mu);
	return r;
}

static int mem_rename(const seg_vfs *v, const char *from, const char *to)
{
	tvfs_mem *m = MEM(v);
	mnode *fdir, *tdir, *fn, *tn;
	mpath fp, tp;
	ment *e;
	int r;

	memset(&tp, 0, sizeof tp);
	pthread_mutex_lock(&m->mu);
	if ((r = path_split(from, &fp)) < 0 || (r = path_split(to, &tp)) < 0)
		goto out;
	if ((r = path_parent(m, &fp, NULL, &fdir)) < 0)
		goto out;
	if (!(e = list_find(&fdir->live, path_leaf(&fp)))) {
		r = -ENOENT;
		goto out;
	}
	fn = e->node;
	if ((r = path_parent(m, &tp, fn->is_dir ? fn : NULL, &tdir)) < 0)
		goto out;
	e = list_find(&tdir->live, path_leaf(&tp));
	tn = e ? e->node : NULL;
	if (tn == fn)
		goto out; /* same file: nothing to do */
	if (tn && tn->is_dir && !fn->is_dir) {
		r = -EISDIR;
		goto out;
	}
	if (tn && !tn->is_dir && fn->is_dir) {
		r = -ENOTDIR;
		goto out;
	}
	if (tn && tn->is_dir && tn->live.n) {
		r = -ENOTEMPTY;
		goto out;
	}
	list_del(&fdir->live, path_leaf(&fp));
	list_set(&tdir->live, path_leaf(&tp), fn);
out:
	free(fp.buf);
	free(tp.buf);
	pthread_mutex_unlock(&m->mu);
	return r;
}

static int mem_unlink(const seg_vfs *v, const char *path)
{
	tvfs_mem *m = MEM(v);
	mnode *dir;
	mpath p;
	ment *e;
	int r;

	pthread_mutex_lock(&m->mu);
	if ((r = path_split(path, &p)) < 0 || (r = path_parent(m, &p, NULL, &dir)) < 0)
		goto out;
	e = list_find(&dir->live, path_leaf(&p));
	if (!e)
		r = -ENOENT;
	else if (e->node->is_dir)
		r = -EISDIR;
	else
		list_del(&dir->live, path_leaf(&p));
out:
	free(p.buf);
	pthread_mutex_unlock(&m->mu);
	return r == -EBUSY ? -EISDIR : r;
}

static int mem_rmdir(const seg_vfs *v, const char *path)
{
	tvfs_mem *m = MEM(v);
	mnode *dir;
	mpath p;
	ment *e;
	int r;

	pthread_mutex_lock(&m->mu);
	if ((r = path_split(path, &p)) < 0)
		goto out;
	if (p.n == 0) {
		r = -EBUSY; /* a root */
		goto out;
	}
	if ((r = path_parent(m, &p, NULL, &dir)) < 0)
		goto out;
	e = list_find(&dir->live, path_leaf(&p));
	if (!e)
		r = -ENOENT;
	else if (!e->node->is_dir)
		r = -ENOTDIR;
	else if (e->node->live.n)
		r = -ENOTEMPTY;
	else
		list_del(&dir->live, path_leaf(&p));
out:
	free(p.buf);
	pthread_mutex_unlock(&m->mu);
	return r;
}

static int mem_mkdir(const seg_vfs *v, const char *path, int mode)
{
	tvfs_mem *m = MEM(v);
	mnode *dir;
	mpath p;
	int r;

	pthread_mutex_lock(&m->mu);
	if ((r = path_split(path, &p)) < 0)
		goto out;
	if (p.n == 0) {
		r = -EEXIST;
		goto out;
	}
	if ((r = path_parent(m, &p, NULL, &dir)) < 0)
		goto out;
	if (list_find(&dir->live, path_leaf(&p))) {
		r = -EEXIST;
	} else {
		mnode *n = node_new(m, 1);
		n->mode = mode & 07777;
		list_set(&dir->live, path_leaf(&p), n);
	}
out:
	free(p.buf);
	pthread_mutex_unlock(&m->mu);
	return r;
}

static int mem_fsync_dir(const seg_vfs *v, const char *path)
{
	tvfs_mem *m = MEM(v);
	mnode *n;
	int r;

	pthread_mutex_lock(&m->mu);
	r = path_lookup(m, path, &n);
	if (r == 0 && !n->is_dir)
		r = -ENOTDIR;
	if (r == 0)
		list_copy(&n->durable, &n->live);
	pthread_mutex_unlock(&m->mu);
	return r;
}

static int mem_list(const seg_vfs *v, const char *path, seg_list_fn fn, void *ud)
{
	tvfs_mem *m = MEM(v);
	char **names = NULL;
	size_t count = 0;
	mnode *n;
	int r;

	pthread_mutex_lock(&m->mu);
	r = path_lookup(m, path, &n);
	if (r == 0 && !n->is_dir)
		r = -ENOTDIR;
	if (r == 0) {
		/* Copy the names: fn may call back into the table. */
		count = n->live.n;
		names = xcalloc(count, sizeof *names);
		for (size_t i = 0; i < count; i++)
			names[i] = xstrdup(n->live.v[i].name);
	}
	pthread_mutex_unlock(&m->mu);

	for (size_t i = 0, stop = 0; i < count; i++) {
		if (!stop && fn(ud, names[i]))
			stop = 1;
		free(names[i]);
	}
	free(names);
	return r;
}

static int mem_stat(const seg_vfs *v, const char *path, uint64_t *size, uint64_t *alloc)
{
	tvfs_mem *m = MEM(v);
	mnode *n;
	int r;

	pthread_mutex_lock(&m->mu);
	r = path_lookup(m, path, &n);
	if (r == 0) {
		uint64_t s = n->is_dir ? 0 : n->size;
		if (size)
			*size = s;
		if (alloc)
			*alloc = s;
	}
	pthread_mutex_unlock(&m->mu);
	return r;
}

static int mem_lock(const seg_vfs *v, int fd)
{
	tvfs_mem *m = MEM(v);
	mfd *d;
	int r = 0;

	pthread_mutex_lock(&m->mu);
	d = fd_get(m, fd);
	if (!d)
		r = -EBADF;
	else if (d->node->lock_fd && d->node->lock_fd != d->id)
		r = -EWOULDBLOCK;
	else
		d->node->lock_fd = d->id;
	pthread_mutex_unlock(&m->mu);
	return r;
}

static int mem_fchmod(const seg_vfs *v, int fd, int mode)
{
	tvfs_mem *m = MEM(v);
	mfd *d;
	int r = 0;

	pthread_mutex_lock(&m->mu);
	d = fd_get(m, fd);
	if (!d)
		r = -EBADF;
	else
		d->node->mode = mode & 07777;
	pthread_mutex_unlock(&m->mu);
	return r;
}

static int mem_file_id(const seg_vfs *v, int fd, const char *path, uint64_t id[2])
{
	tvfs_mem *m = MEM(v);
	mnode *n = NULL;
	mfd *d;
	int r = 0;

	pthread_mutex_lock(&m->mu);
	if (fd >= 0) {
		d = fd_get(m, fd);
		if (d)
			n = d->node;
		else
			r = -EBADF;
	} else {
		r = path_lookup(m, path, &n);
	}
	if (r == 0) {
		id[0] = 1;
		id[1] = n->ino;
	}
	pthread_mutex_unlock(&m->mu);
	return r;
}

static int64_t mem_clock(const seg_vfs *v, int mono)
{
	tvfs_mem *m = MEM(v);
	int64_t t;
	pthread_mutex_lock(&m->mu);
	if (m->clock.fake)
		t = clock_value(&m->clock, mono);
	else
		t = real_ms(mono ? CLOCK_MONOTONIC : CLOCK_REALTIME);
	pthread_mutex_unlock(&m->mu);
	return t;
}

static int64_t mem_now_ms(const seg_vfs *v)
{
	return mem_clock(v, 0);
}

static int64_t mem_mono_ms(const seg_vfs *v)
{
	return mem_clock(v, 1);
}

static int mem_random(const seg_vfs *v, void *buf, size_t len)
{
	tvfs_mem *m = MEM(v);
	uint8_t *p = buf;

	pthread_mutex_lock(&m->mu);
	while (len) {
		uint64_t x = splitmix64(&m->rng);
		size_t k = len < 8 ? len : 8;
		memcpy(p, &x, k);
		p += k;
		len -= k;
	}
	pthread_mutex_unlock(&m->mu);
	return 0;
}

tvfs_mem *tvfs_mem_new(uint64_t seed)
{
	tvfs_mem *m = xcalloc(1, sizeof *m);

	pthread_mutex_init(&m->mu, NULL);
	m->root_abs = node_new(m, 1);
	m->root_rel = node_new(m, 1);
	m->next_fd = 100; /* unlike any real descriptor a test might confuse it with */
	m->rng = seed;
	clock_set(&m->clock, 1700000000000, 1000000);
	m->keep_pct = 50;
	m->torn_pct = 25;
	m->page_pct = 0;
	m->vfs = (seg_vfs){
		.ctx = m,
		.open = mem_open,
		.close = mem_close,
		.pread = mem_pread,
		.pwrite = mem_pwrite,
		.fsync = mem_fsync,
		.ftruncate = mem_ftruncate,
		.fallocate = mem_fallocate,
		.punch = mem_punch,
		.fstat = mem_fstat,
		.mmap = mem_mmap,
		.munmap = mem_munmap,
		.rename = mem_rename,
		.unlink = mem_unlink,
		.mkdir = mem_mkdir,
		.rmdir = mem_rmdir,
		.fsync_dir = mem_fsync_dir,
		.list = mem_list,
		.stat = mem_stat,
		.lock = mem_lock,
		.fchmod = mem_fchmod,
		.file_id = mem_file_id,
		.now_ms = mem_now_ms,
		.mono_ms = mem_mono_ms,
		.random = mem_random,
	};
	return m;
}

void tvfs_mem_free(tvfs_mem *m)
{
	if (!m)
		return;
	while (m->nodes) {
		mnode *n = m->nodes;
		m->nodes = n->next;
		if (!n->is_dir && n->buf)
			n->buf->maps = 0; /* free it here, mapped or not */
		node_free(m, n);
	}
	while (m->detached) {
		mbuf *b = m->detached;
		m->detached = b->next;
		free(b->p);
		free(b);
	}
	free(m->fds);
	free(m->maps);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

const seg_vfs *tvfs_mem_vfs(tvfs_mem *m)
{
	return &m->vfs;
}

int tvfs_mem_mkdirs(tvfs_mem *m, const char *path)
{
	mnode *cur;
	mpath p;
	int r;

	pthread_mutex_lock(&m->mu);
	if ((r = path_split(path, &p)) < 0)
		goto out;
	cur = p.abs ? m->root_abs : m->root_rel;
	for (int i = 0; i < p.n; i++) {
		ment *e = list_find(&cur->live, p.comp[i]);
		mnode *next = e ? e->node : NULL;
		if (next && !next->is_dir) {
			r = -ENOTDIR;
			goto out;
		}
		if (!next) {
			next = node_new(m, 1);
			list_set(&cur->live, p.comp[i], next);
		}
		list_set(&cur->durable, p.comp[i], next);
		cur = next;
	}
out:
	free(p.buf);
	pthread_mutex_unlock(&m->mu);
	return r;
}

/* --- power loss --- */
static void mark_reachable(mnode *n)
{
	if (n->mark)
		return;
	n->mark = 1;
	if (n->is_dir)
		for (size_t i = 0; i < n->live.n; i++)
			mark_reachable(n->live.v[i].node);
}

static uint64_t below(uint64_t *rng, uint64_t n)
{
	return n ? splitmix64(rng) % n : 0;
}

/* What survives of one file: its durable content, plus part of what was
 * not synced (see tvfs_mem_power_loss in the header). The result becomes
 * both the live and the durable content. */
static void file_power_loss(tvfs_mem *m, mnode *n, uint64_t *rng)
{
	size_t size = n->size, dsize = n->dsize;
	size_t L = size > dsize ? size : dsize, m0 = size < dsize ? size : dsize;
	size_t lo = L, hi = 0, newsize, i;
	uint8_t *cur = xmalloc(size), *out;
	const uint8_t *dur = n->dur;

	racy_copy(cur, n->buf->p, size);
#define CUR(i) ((i) < size ? cur[i] : 0)
#define DUR(i) ((i) < dsize ? dur[i] : 0)
#define DIFFERS(i) ((i) >= m0 || cur[i] != dur[i])
	for (i = 0; i < m0; i++) {
		if (cur[i] != dur[i]) {
			if (lo == L)
				lo = i;
			hi = i + 1;
		}
	}
	if (size != dsize) {
		if (lo > m0)
			lo = m0;
		hi = L;
	}

	if (lo >= hi) {
		/* Nothing unsynced. */
		newsize = size;
		out = cur;
		cur = NULL;
	} else if (m->page_pct && below(rng, 100) < m->page_pct) {
		/* Writeback out of order: each page of the change survives or
		 * not on its own; the size is the old or the new one. */
		size_t first = lo / TVFS_PAGE, last = (hi - 1) / TVFS_PAGE;
		uint8_t *kept = xcalloc(last - first + 1, 1);
		for (size_t pg = 0; pg <= last - first; pg++)
			kept[pg] = (uint8_t)below(rng, 2);
		newsize = below(rng, 2) ? size : dsize;
		out = xmalloc(newsize);
		for (i = 0; i < newsize; i++) {
			size_t pg = i / TVFS_PAGE;
			int take = i >= lo && i < hi && kept[pg - first];
			out[i] = take ? CUR(i) : DUR(i);
		}
		free(kept);
	} else {
		/* A prefix of the change survives, cut at k; with a torn write,
		 * garbage over the changed bytes of [k, t). */
		size_t k = lo, t;
		if (below(rng, 100) < m->keep_pct)
			k = lo + (size_t)below(rng, hi - lo + 1);
		t = k;
		if (k < hi && below(rng, 100) < m->torn_pct) {
			t = k + 1 + (size_t)below(rng, 32);
			if (t > hi)
				t = hi;
		}
		if (size >= dsize)
			newsize = t > dsize ? t : dsize;
		else
			newsize = k == hi ? size : dsize;
		out = xmalloc(newsize);
		for (i = 0; i < newsize; i++) {
			if (i < k)
				out[i] = CUR(i);
			else if (i < t && DIFFERS(i))
				out[i] = (uint8_t)splitmix64(rng);
			else if (i < t)
				out[i] = CUR(i);
			else
				out[i] = DUR(i);
		}
	}
#undef CUR
#undef DUR
#undef DIFFERS
	free(cur);

	/* Install: a mapped buffer belongs to the dead writer now. */
	if (n->buf->maps) {
		size_t cap = n->buf->cap > newsize ? n->buf->cap : newsize;
		buf_detach(m, n, 0);
		n->buf = buf_new(cap);
	} else if (n->buf->cap < newsize) {
		n->buf->p = xrealloc(n->buf->p, newsize);
		n->buf->cap = newsize;
	}
	memcpy(n->buf->p, out, newsize);
	memset(n->buf->p + newsize, 0, n->buf->cap - newsize);
	n->size = newsize;
	free(n->dur);
	n->dur = out;
	n->dsize = newsize;
}

void tvfs_mem_power_loss(tvfs_mem *m, uint64_t seed)
{
	uint64_t rng = seed ^ 0x5eed0f7e57f5ull;
	mnode **pp;

	pthread_mutex_lock(&m->mu);
	m->nfds = 0; /* every descriptor closed; their numbers are never reused */
	for (mnode *n = m->nodes; n; n = n->next) {
		n->mark = 0;
		n->lock_fd = 0; /* directories can be locked too */
		if (n->is_dir)
			list_copy(&n->live, &n->durable);
	}
	mark_reachable(m->root_abs);
	mark_reachable(m->root_rel);
	for (pp = &m->nodes; *pp;) {
		mnode *n = *pp;
		if (!n->mark) {
			*pp = n->next;
			node_free(m, n);
			continue;
		}
		if (!n->is_dir)
			file_power_loss(m, n, &rng);
		pp = &n->next;
	}
	pthread_mutex_unlock(&m->mu);
}

void tvfs_mem_set_loss(tvfs_mem *m, unsigned keep_pct, unsigned torn_pct, unsigned page_pct)
{
	pthread_mutex_lock(&m->mu);
	m->keep_pct = keep_pct;
	m->torn_pct = torn_pct;
	m->page_pct = page_pct;
	pthread_mutex_unlock(&m->mu);
}

void tvfs_mem_clock_set(tvfs_mem *m, int64_t now_ms, int64_t mono_ms)
{
	pthread_mutex_lock(&m->mu);
	clock_set(&m->clock, now_ms, mono_ms);
	pthread_mutex_unlock(&m->mu);
}

void tvfs_mem_clock_advance(tvfs_mem *m, int64_t ms)
{
	pthread_mutex_lock(&m->mu);
	clock_move(&m->clock, ms, 1);
	pthread_mutex_unlock(&m->mu);
}

void tvfs_mem_clock_jump(tvfs_mem *m, int64_t ms)
{
	pthread_mutex_lock(&m->mu);
	clock_move(&m->clock, ms, 0);
	pthread_mutex_unlock(&m->mu);
}

void tvfs_mem_clock_real(tvfs_mem *m, int on)
{
	pthread_mutex_lock(&m->mu);
	m->clock.fake = !on;
	pthread_mutex_unlock(&m->mu);
}

int tvfs_mem_read_file(tvfs_mem *m, const char *path, uint8_t **data, size_t *size)
{
	mnode *n;
	int r;

	*data = NULL;
	*size = 0;
	pthread_mutex_lock(&m->mu);
	r = path_lookup(m, path, &n);
	if (r == 0 && n->is_dir)
		r = -EISDIR;
	if (r == 0 && n->size) {
		*data = xmalloc(n->size);
		racy_copy(*data, n->buf->p, n->size);
		*size = n->size;
	}
	pthread_mutex_unlock(&m->mu);
	return r;
}

int tvfs_mem_write_file(tvfs_mem *m, const char *path, const void *data, size_t size, int durable)
{
	mnode *dir, *n;
	mpath p;
	ment *e;
	int r;

	pthread_mutex_lock(&m->mu);
	if ((r = path_split(path, &p)) < 0 || (r = path_parent(m, &p, NULL, &dir)) < 0)
		goto out;
	e = list_find(&dir->live, path_leaf(&p));
	if (e && e->node->is_dir) {
		r = -EISDIR;
		goto out;
	}
	n = e ? e->node : node_new(m, 0);
	if (size > n->buf->cap && n->buf->maps) {
		r = -EIO;
		goto out;
	}
	if (!e)
		list_set(&dir->live, path_leaf(&p), n);
	if ((r = file_resize(n, size, 1)) < 0)
		goto out;
	racy_copy(n->buf->p, data, size);
	if (durable) {
		n->dur = xrealloc(n->dur, size);
		memcpy(n->dur, data, size);
		n->dsize = size;
		list_set(&dir->durable, path_leaf(&p), n);
	}
out:
	free(p.buf);
	pthread_mutex_unlock(&m->mu);
	return r;
}

int tvfs_mem_exists(tvfs_mem *m, const char *path)
{
	mnode *n;
	int r;
	pthread_mutex_lock(&m->mu);
	r = path_lookup(m, path, &n);
	pthread_mutex_unlock(&m->mu);
	return r == 0;
}

int tvfs_mem_mode(tvfs_mem *m, const char *path)
{
	mnode *n;
	int r;

	pthread_mutex_lock(&m->mu);
	r = path_lookup(m, path, &n);
	if (r == 0)
		r = n->mode;
	pthread_mutex_unlock(&m->mu);
	return r;
}

uint64_t tvfs_mem_open_fds(tvfs_mem *m)
{
	uint64_t c;
	pthread_mutex_lock(&m->mu);
	c = m->nfds;
	pthread_mutex_unlock(&m->mu);
	return c;
}

uint64_t tvfs_mem_mappings(tvfs_mem *m)
{
	uint64_t c;
	pthread_mutex_lock(&m->mu);
	c = m->nmaps;
	pthread_mutex_unlock(&m->mu);
	return c;
}
