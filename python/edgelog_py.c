/*
 * edgelog_py.c - the Python package's fast append: libedgelog_py.so.
 *
 * The package is a ctypes binding (python/edgelog/_lib.py). For the one
 * call that runs per record, ctypes and the msgpack package cost about
 * 24,000 of the 30,000 instructions of a log_prediction of the sample
 * prediction (callgrind): msgpack's Packer about 19,000, the ctypes call
 * about 4,500 around the C append. This library does the same work in
 * one call: it encodes a record made of Python's own types (dict, list,
 * tuple, str, bytes, int, float, bool, None; exact types only, so no
 * Python code runs while it encodes) into msgpack, byte for byte as
 * msgpack.packb does, and calls edgelog_append with the GIL released, as
 * ctypes did.
 *
 * It is loaded with ctypes.PyDLL into the interpreter that runs the
 * package, built with CMake beside libedgelog (python3-dev headers), for
 * CPython's stable ABI (3.10 and later), and links neither libpython nor
 * libedgelog: edgelog_py_init receives the address of the edgelog_append
 * the package loaded, so both always use the same library.
 *
 * Anything else (a subclass, a set, a datetime, an int beyond 64 bits, a
 * str with a lone surrogate, nesting deeper than msgpack's 511 levels, a
 * record over EDGELOG_MAX_RECORD) is not an error here: the call returns
 * None and the package takes its msgpack path, which encodes what msgpack
 * can and raises the package's errors for the rest. So behaviour is the
 * msgpack path's in every case; only the cost differs.
 */
#define Py_LIMITED_API 0x030A0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define PYX_EXPORT __attribute__((visibility("default")))
#else
#define PYX_EXPORT
#endif

/* edgelog.h: EDGELOG_MAX_RECORD; msgpack-python: DEFAULT_RECURSE_LIMIT. */
enum {
	MAX_RECORD = 1 << 20,
	MAX_DEPTH = 511,
	STACK_BUF = 2048
};

PYX_EXPORT PyObject *edgelog_py_init(void *append_addr);

typedef int (*append_fn)(void *log, const void *data, size_t len, uint64_t *seq);
static append_fn g_append;

struct obuf {
	unsigned char *p;
	size_t len, cap;
	unsigned char *heap; /* p when it was allocated here */
};

/* Room for n more bytes; 0 when the record would pass MAX_RECORD (the
 * package's path then reports ETOOBIG as the library does) or on ENOMEM. */
static __attribute__((noinline)) int ob_grow(struct obuf *b, size_t n)
{
	size_t cap;
	unsigned char *np;

	if (b->len + n > MAX_RECORD + 9)
		return 0;
	for (cap = b->cap * 2; cap < b->len + n; cap *= 2)
		;
	np = PyMem_Malloc(cap);
	if (!np)
		return 0;
	memcpy(np, b->p, b->len);
	PyMem_Free(b->heap);
	b->p = b->heap = np;
	b->cap = cap;
	return 1;
}

static inline int ob_room(struct obuf *b, size_t n)
{
	return b->cap - b->len >= n || ob_grow(b, n);
}

static inline int ob_put(struct obuf *b, const void *src, size_t n)
{
	if (!ob_room(b, n))
		return 0;
	memcpy(b->p + b->len, src, n);
	b->len += n;
	return 1;
}

/* A type byte and a big-endian number of w bytes (0, 1, 2, 4 or 8). */
static inline int ob_head(struct obuf *b, unsigned char type, uint64_t v, int w)
{
	unsigned char *q;

	if (!ob_room(b, 9))
		return 0;
	q = b->p + b->len;
	q[0] = type;
	switch (w) {
	case 8:
		v = __builtin_bswap64(v);
		memcpy(q + 1, &v, 8);
		break;
	case 4: {
		uint32_t x = __builtin_bswap32((uint32_t)v);
		memcpy(q + 1, &x, 4);
		break;
	}
	case 2: {
		uint16_t x = __builtin_bswap16((uint16_t)v);
		memcpy(q + 1, &x, 2);
		break;
	}
	case 1:
		q[1] = (unsigned char)v;
		break;
	default:
		break;
	}
	b->len += 1 + (size_t)w;
	return 1;
}

/* A length-prefixed item as msgpack.packb writes it: fix form when small
 * enough (fix != 0), else the 8 (str, bin), 16 or 32-bit form. */
static inline int ob_len(struct obuf *b, size_t n, unsigned char fix, size_t fixmax,
			 unsigned char t8, unsigned char t16, unsigned char t32)
{
	if (fix && n <= fixmax)
		return ob_head(b, (unsigned char)(fix | n), 0, 0);
	if (t8 && n < 256)
		return ob_head(b, t8, n, 1);
	if (n < 65536)
		return ob_head(b, t16, n, 2);
	if (n > 0xffffffffu)
		return 0;
	return ob_head(b, t32, n, 4);
}

static int enc_int(struct obuf *b, PyObject *o)
{
	int overflow = 0;
	long long v = PyLong_AsLongLongAndOverflow(o, &overflow);

	if (overflow > 0) {
		unsigned long long u = PyLong_AsUnsignedLongLong(o);
		if (u == (unsigned long long)-1 && PyErr_Occurred()) {
			PyErr_Clear(); /* beyond 64 bits: msgpack refuses it */
			return 0;
		}
		return ob_head(b, 0xcf, u, 8);
	}
	if (overflow < 0)
		return 0;
	if (v == -1 && PyErr_Occurred()) {
		PyErr_Clear();
		return 0;
	}
	if (v >= 0) {
		if (v < 128)
			return ob_head(b, (unsigned char)v, 0, 0);
		if (v < 256)
			return ob_head(b, 0xcc, (uint64_t)v, 1);
		if (v < 65536)
			return ob_head(b, 0xcd, (uint64_t)v, 2);
		if (v <= 0xffffffffLL)
			return ob_head(b, 0xce, (uint64_t)v, 4);
		return ob_head(b, 0xcf, (uint64_t)v, 8);
	}
	if (v >= -32)
		return ob_head(b, (unsigned char)(int8_t)v, 0, 0);
	if (v >= -128)
		return ob_head(b, 0xd0, (uint64_t)v & 0xff, 1);
	if (v >= -32768)
		return ob_head(b, 0xd1, (uint64_t)v & 0xffff, 2);
	if (v >= -2147483648LL)
		return ob_head(b, 0xd2, (uint64_t)v & 0xffffffffu, 4);
	return ob_head(b, 0xd3, (uint64_t)v, 8);
}

/* The bytes of a bytes object o (borrowed: valid while o lives). 1 done,
 * 0 not here (the error is cleared: the package's path reports it). */
static int bytes_of(PyObject *o, char **s, size_t *len)
{
	Py_ssize_t n;
	if (PyBytes_AsStringAndSize(o, s, &n) < 0) {
		PyErr_Clear();
		return 0;
	}
	*len = (size_t)n;
	return 1;
}

static int enc(struct obuf *b, PyObject *o, int depth)
{
	if (depth > MAX_DEPTH)
		return 0;
	if (o == Py_None)
		return ob_head(b, 0xc0, 0, 0);
	if (o == Py_True)
		return ob_head(b, 0xc3, 0, 0);
	if (o == Py_False)
		return ob_head(b, 0xc2, 0, 0);
	if (PyUnicode_CheckExact(o)) {
		Py_ssize_t n;
		const char *s = PyUnicode_AsUTF8AndSize(o, &n);
		if (!s) {
			PyErr_Clear(); /* a lone surrogate: msgpack refuses it */
			return 0;
		}
		return ob_len(b, (size_t)n, 0xa0, 31, 0xd9, 0xda, 0xdb) && ob_put(b, s, (size_t)n);
	}
	if (PyLong_CheckExact(o))
		return enc_int(b, o);
	if (PyFloat_CheckExact(o)) {
		double d = PyFloat_AsDouble(o);
		uint64_t u;
		memcpy(&u, &d, sizeof(u));
		return ob_head(b, 0xcb, u, 8);
	}
	if (PyDict_CheckExact(o)) {
		Py_ssize_t pos = 0;
		PyObject *k, *v;
		if (!ob_len(b, (size_t)PyDict_Size(o), 0x80, 15, 0, 0xde, 0xdf))
			return 0;
		while (PyDict_Next(o, &pos, &k, &v))
			if (!enc(b, k, depth + 1) || !enc(b, v, depth + 1))
				return 0;
		return 1;
	}
	if (PyList_CheckExact(o) || PyTuple_CheckExact(o)) {
		int list = PyList_CheckExact(o);
		Py_ssize_t i, n = list ? PyList_Size(o) : PyTuple_Size(o);
		if (!ob_len(b, (size_t)n, 0x90, 15, 0, 0xdc, 0xdd))
			return 0;
		for (i = 0; i < n; i++) {
			/* Borrowed; the list cannot change: no Python code runs here. */
			PyObject *it = list ? PyList_GetItem(o, i) : PyTuple_GetItem(o, i);
			if (!it || !enc(b, it, depth + 1))
				return 0;
		}
		return 1;
	}
	if (PyBytes_CheckExact(o)) {
		char *s;
		size_t n;
		return bytes_of(o, &s, &n) && ob_len(b, n, 0, 0, 0xc4, 0xc5, 0xc6) &&
		       ob_put(b, s, n);
	}
	return 0; /* any other type: the package's msgpack path */
}

/* Encodes o into b (bytes at the top are taken as already encoded, as
 * Log.append does). 1 done, 0 not here (b is then to be dropped). */
static int encode_record(struct obuf *b, PyObject *o)
{
	if (PyBytes_CheckExact(o)) {
		char *s;
		if (!bytes_of(o, &s, &b->len))
			return 0;
		b->p = (unsigned char *)s; /* not copied: read-only from here on */
		b->cap = b->len;
		return 1;
	}
	return enc(b, o, 0);
}

/* append(handle, record) -> seq (> 0), a negative EDGELOG_E* code, or
 * None when the record is to go through the package's msgpack path. */
static PyObject *py_append(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	unsigned char stack[STACK_BUF];
	struct obuf b = {stack, 0, sizeof(stack), NULL};
	PyThreadState *ts;
	uint64_t seq = 0;
	void *h;
	int rc;

	(void)self;
	if (nargs != 2) {
		PyErr_SetString(PyExc_TypeError, "append(handle, record)");
		return NULL;
	}
	h = PyLong_AsVoidPtr(args[0]);
	if (!h) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_ValueError, "append: null handle");
		return NULL;
	}
	if (!encode_record(&b, args[1])) {
		PyMem_Free(b.heap);
		Py_RETURN_NONE;
	}
	/* The record's bytes are ours (stack or heap) or an immutable bytes
	 * object the caller holds a reference to; as with ctypes, other Python
	 * threads run while the library appends (sync=always waits here). */
	ts = PyEval_SaveThread();
	rc = g_append(h, b.p, b.len, &seq);
	PyEval_RestoreThread(ts);
	PyMem_Free(b.heap);
	if (rc < 0)
		return PyLong_FromLong(rc);
	return PyLong_FromUnsignedLongLong(seq);
}

/* encode(record) -> bytes, or None: what append would store (tests). */
static PyObject *py_encode(PyObject *self, PyObject *arg)
{
	unsigned char stack[STACK_BUF];
	struct obuf b = {stack, 0, sizeof(stack), NULL};
	PyObject *r;

	(void)self;
	if (!encode_record(&b, arg)) {
		PyMem_Free(b.heap);
		Py_RETURN_NONE;
	}
	r = PyBytes_FromStringAndSize((const char *)b.p, (Py_ssize_t)b.len);
	PyMem_Free(b.heap);
	return r;
}

static PyMethodDef g_methods[] = {
	{"append", (PyCFunction)(void (*)(void))py_append, METH_FASTCALL,
	 "append(handle, record) -> seq, negative EDGELOG_E* code, or None"},
	{"encode", py_encode, METH_O, "encode(record) -> msgpack bytes, or None"},
};

/* (append, encode) as builtin functions, calling append_addr (the
 * package's edgelog_append). Called once, through ctypes.PyDLL. */
PYX_EXPORT PyObject *edgelog_py_init(void *append_addr)
{
	PyObject *a, *e, *t;

	if (!append_addr) {
		PyErr_SetString(PyExc_ValueError, "edgelog_py_init: no edgelog_append");
		return NULL;
	}
	g_append = (append_fn)append_addr;
	a = PyCFunction_NewEx(&g_methods[0], NULL, NULL);
	e = PyCFunction_NewEx(&g_methods[1], NULL, NULL);
	t = (a && e) ? PyTuple_Pack(2, a, e) : NULL;
	Py_XDECREF(a);
	Py_XDECREF(e);
	return t;
}
