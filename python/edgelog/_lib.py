"""Loading libedgelog and declaring its C API for ctypes.

The structs below mirror ``engine/include/edgelog.h`` field by field; the
test ``test_layout.py`` compiles a C program that prints every offset and
size and compares them with these, so a change to the header that is not
made here fails the test suite instead of corrupting memory. Buffers that C
writes into (the config and the status) are allocated with spare room at
the end, so a library newer than this file, whose structs grew at the end,
still cannot write past them.

Where the library comes from, first match wins:

1. ``EDGELOG_LIBRARY``: a path to ``libedgelog.so`` (an error if it does
   not load: the variable is named in the message);
2. the copy ``pip install`` placed inside the package (``_libpath.py``
   records which build tree it came from);
3. run from a source checkout (``PYTHONPATH=python``): the newest
   ``build*/**/engine/libedgelog.so`` of that checkout, sanitizer trees
   excluded;
4. the system's (``ctypes.util.find_library("edgelog")``: ``cmake
   --install`` put it in the linker's path).

The fast append, ``libedgelog_py.so`` (``python/edgelog_py.c``), is taken
from the directory of the library loaded, when it is there (the build
writes it beside ``libedgelog.so``; ``pip install`` and ``cmake --install``
copy both). ``EDGELOG_PY_FAST=0`` leaves it unused. Without it, appends go
through ctypes and the msgpack package: the same records, errors and
behaviour, at about twice the CPU time per append.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import sys
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char,
    c_char_p,
    c_int,
    c_int64,
    c_size_t,
    c_uint,
    c_uint32,
    c_uint64,
    c_void_p,
    py_object,
)
from typing import Any, List, Optional, Tuple

CONFIG_VERSION = 3
STATUS_VERSION = 1

LOG_FN = CFUNCTYPE(None, c_void_p, c_int, c_char_p)
ALERT_FN = CFUNCTYPE(None, c_void_p, c_uint, c_int, c_char_p)
CORRUPT_FN = CFUNCTYPE(None, c_void_p, c_char_p, c_uint64, c_uint64, c_char_p)
ACTION_FN = CFUNCTYPE(None, c_void_p, c_char_p)


class Config(Structure):
    """``edgelog_config``."""

    _fields_ = [
        ("version", c_uint),
        ("dir", c_char_p),
        ("endpoint", c_char_p),
        ("device_id", c_char_p),
        ("max_size_mb", c_uint32),
        ("retention_days", c_uint32),
        ("batch_size", c_uint32),
        ("batch_timeout_ms", c_uint32),
        ("sync", c_int),
        ("sync_interval_ms", c_uint32),
        ("full_policy", c_int),
        ("format", c_int),
        ("compression", c_int),
        ("auth_token", c_char_p),
        ("auth_token_file", c_char_p),
        ("ca_file", c_char_p),
        ("client_cert", c_char_p),
        ("client_key", c_char_p),
        ("retry_base_ms", c_uint32),
        ("retry_max_ms", c_uint32),
        ("http_timeout_ms", c_uint32),
        ("segment_bytes", c_uint32),
        ("segment_max_age_s", c_uint32),
        ("alert_pending", c_uint64),
        ("alert_size_pct", c_uint32),
        ("alert_failed", c_uint64),
        ("close_grace_ms", c_uint32),
        ("upload_max_records", c_uint32),
        ("upload_max_kb", c_uint32),
        ("log_fn", LOG_FN),
        ("log_payload", c_void_p),
        ("alert_fn", ALERT_FN),
        ("alert_payload", c_void_p),
        ("status_interval_ms", c_uint32),
        ("metrics_file", c_char_p),
        ("data_encoding", c_int),
        ("poison_tries", c_uint32),
        ("segment_reuse", c_int),
    ]


class Status(Structure):
    """``edgelog_status`` (its ``version`` is set by :func:`new_status`)."""

    _fields_ = [
        ("version", c_uint),
        ("device_id", c_char * 128),
        ("pending", c_uint64),
        ("sent", c_uint64),
        ("failed", c_uint64),
        ("dropped", c_uint64),
        ("expired", c_uint64),
        ("corrupt", c_uint64),
        ("size_bytes", c_uint64),
        ("max_size_bytes", c_uint64),
        ("segments", c_uint64),
        ("oldest_pending_age_s", c_uint64),
        ("is_connected", c_int),
        ("last_error", c_char * 256),
        ("last_success_at", c_int64),
        ("retry_in_s", c_uint64),
        ("recovered", c_uint64),
        ("alerts", c_uint),
        ("appended", c_uint64),
        ("first_seq", c_uint64),
        ("last_seq", c_uint64),
        ("acked_seq", c_uint64),
        ("durable_seq", c_uint64),
        ("torn_tails", c_uint64),
        ("torn_bytes", c_uint64),
        ("cursor_resets", c_uint64),
        ("sync_failures", c_uint64),
        ("requeued", c_uint64),
        ("failed_bytes", c_uint64),
        ("alert_pending", c_uint64),
        ("alert_size_pct", c_uint64),
        ("alert_failed", c_uint64),
        ("upload_enabled", c_int),
        ("poisoned", c_uint64),
        ("last_error_at", c_int64),
        ("running", c_int),
    ]


class Record(Structure):
    """``edgelog_record``."""

    _fields_ = [
        ("seq", c_uint64),
        ("ts_ms", c_int64),
        ("data", c_void_p),
        ("len", c_size_t),
        ("segment", c_char_p),
        ("offset", c_uint64),
    ]


class RepairReport(Structure):
    """``edgelog_repair_report``."""

    _fields_ = [
        ("segments", c_uint64),
        ("records", c_uint64),
        ("torn_tails", c_uint64),
        ("torn_bytes", c_uint64),
        ("damaged_ranges", c_uint64),
        ("damaged_bytes", c_uint64),
        ("bad_segments", c_uint64),
        ("lost_seq_ranges", c_uint64),
        ("cursor_rebuilt", c_int),
        ("quarantine_dir", c_char * 256),
        ("first_seq", c_uint64),
        ("last_seq", c_uint64),
        ("on_action", ACTION_FN),
        ("on_action_payload", c_void_p),
    ]


# Spare bytes after every struct the library writes into (see the module
# docstring).
SLACK = 4096


def alloc(cls: type) -> Structure:
    """A zeroed ``cls`` with SLACK spare bytes after it."""
    raw = (c_char * (ctypes.sizeof(cls) + SLACK))()
    obj = cls.from_buffer(raw)
    obj._edgelog_raw = raw  # keep the storage alive with the struct
    return obj


def new_status() -> Structure:
    """A Status ready for the library: zeroed, with spare room, its version
    set (what ``edgelog_status_init`` does)."""
    st = alloc(Status)
    st.version = STATUS_VERSION
    return st


def _source_tree_candidates() -> List[str]:
    """libedgelog.so files in the build trees of the checkout this package
    sits in (python/edgelog/ -> the repository root), newest first."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if not os.path.isfile(os.path.join(root, "engine", "include", "edgelog.h")):
        return []
    found = []
    for pattern in ("build*/engine/libedgelog.so", "build*/*/engine/libedgelog.so"):
        for path in glob.glob(os.path.join(root, pattern)):
            tree = os.path.relpath(path, root)
            if "asan" in tree or "tsan" in tree:
                continue  # needs the sanitizer runtime preloaded
            found.append(path)
    found.sort(key=lambda p: os.stat(p).st_mtime, reverse=True)
    return found


def _bundled() -> Tuple[Optional[str], Optional[str]]:
    """(the copy installed with the package, the build tree it came from)."""
    try:
        from . import _libpath  # generated by setup.py at install time
    except ImportError:
        return None, None
    here = os.path.dirname(os.path.abspath(__file__))
    name = getattr(_libpath, "LIBRARY_FILE", None)
    path = os.path.join(here, name) if name else None
    return path, getattr(_libpath, "BUILT_FROM", None)


def find_library() -> Tuple[str, List[str]]:
    """Path of the library to load and the places looked at, in order."""
    tried: List[str] = []
    env = os.environ.get("EDGELOG_LIBRARY")
    if env:
        return env, ["EDGELOG_LIBRARY=" + env]
    bundled, built_from = _bundled()
    if bundled:
        tried.append(bundled + (" (from %s)" % built_from if built_from else ""))
        if os.path.exists(bundled):
            return bundled, tried
    for path in _source_tree_candidates():
        return path, tried + [path]
    tried.append("the build trees of this checkout (none has engine/libedgelog.so)")
    system = ctypes.util.find_library("edgelog")
    tried.append("the system library path (%s)" % (system or "not found"))
    if system:
        return system, tried
    return "", tried


def load() -> Tuple[ctypes.CDLL, str]:
    """Load libedgelog and declare the prototypes. ImportError naming every
    place looked at when it cannot be found or loaded."""
    path, tried = find_library()
    if not path:
        raise ImportError(
            "edgelog: libedgelog.so not found; looked at: %s. Build it "
            "(cmake --preset release && cmake --build --preset release) and "
            "reinstall the package, or set EDGELOG_LIBRARY to its path" % "; ".join(tried)
        )
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        where = "EDGELOG_LIBRARY=" if os.environ.get("EDGELOG_LIBRARY") else ""
        raise ImportError("edgelog: cannot load %s%s: %s" % (where, path, e)) from e
    _declare(lib)
    return lib, path


FAST_NAME = "libedgelog_py.so"


def load_fast(lib: ctypes.CDLL, path: str) -> Tuple[Optional[Any], Optional[Any], str]:
    """(append, encode, what was done) from libedgelog_py.so beside the
    library at path, or (None, None, why not). An error in loading it is
    not fatal: the package appends through ctypes then, and ``FAST_PATH``
    says why."""
    if os.environ.get("EDGELOG_PY_FAST", "1") == "0":
        return None, None, "off (EDGELOG_PY_FAST=0)"
    if sys.implementation.name != "cpython" or sys.version_info < (3, 10):
        return None, None, "off (needs CPython 3.10 or later)"
    dirs: List[str] = []
    if os.sep in path:
        for p in (path, os.path.realpath(path)):
            d = os.path.dirname(p)
            if d not in dirs:
                dirs.append(d)
    # A bare name (the system's library): the dynamic loader's search path.
    places = [os.path.join(d, FAST_NAME) for d in dirs] if dirs else [FAST_NAME]
    for fast in places:
        if dirs and not os.path.exists(fast):
            continue
        try:
            init = ctypes.PyDLL(fast).edgelog_py_init
            init.restype = py_object
            init.argtypes = [c_void_p]
            append, encode = init(ctypes.cast(lib.edgelog_append, c_void_p).value)
        except OSError as e:
            if not dirs:
                break  # not installed on the system
            return None, None, "off (%s: %s)" % (fast, e)
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            return None, None, "off (%s: %s)" % (fast, e)
        return append, encode, fast
    return None, None, "off (no %s beside %s)" % (FAST_NAME, path or "the library")


def _declare(lib: ctypes.CDLL) -> None:
    def proto(name: str, restype, *argtypes) -> None:
        f = getattr(lib, name)
        f.restype = restype
        f.argtypes = list(argtypes)

    pp = POINTER(c_void_p)
    proto("edgelog_version", c_char_p)
    proto("edgelog_strerror", c_char_p, c_int)
    proto("edgelog_errmsg", c_char_p, c_void_p)
    proto("edgelog_config_init", None, c_void_p)
    proto("edgelog_config_from_env", c_int, c_void_p)
    proto("edgelog_open", c_int, pp, c_void_p)
    proto("edgelog_append", c_int, c_void_p, c_char_p, c_size_t, POINTER(c_uint64))
    proto("edgelog_append_json", c_int, c_void_p, c_char_p, c_size_t, POINTER(c_uint64))
    proto("edgelog_sync", c_int, c_void_p)
    proto("edgelog_step", c_int, c_void_p, c_int)
    proto("edgelog_start", c_int, c_void_p)
    proto("edgelog_close", c_int, c_void_p)
    proto("edgelog_get_status", c_int, c_void_p, c_void_p)
    proto("edgelog_cleanup", c_int, c_void_p, c_int)
    proto("edgelog_ack", c_int, c_void_p, c_uint64)
    proto("edgelog_status_dir", c_int, c_char_p, c_void_p, POINTER(c_int))
    proto("edgelog_export_stats", c_int, c_char_p, c_char_p)
    proto("edgelog_requeue_failed", c_int, c_char_p)
    proto("edgelog_repair", c_int, c_char_p, c_void_p)
    proto("edgelog_reader_open", c_int, pp, c_char_p, c_uint64)
    proto("edgelog_reader_on_corrupt", None, c_void_p, CORRUPT_FN, c_void_p)
    proto("edgelog_reader_next", c_int, c_void_p, POINTER(Record))
    proto("edgelog_reader_corrupt", c_uint64, c_void_p)
    proto("edgelog_reader_close", None, c_void_p)
