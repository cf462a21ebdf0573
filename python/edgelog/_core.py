"""The binding proper: errors, :class:`Log`, :func:`read` and the offline
helpers, over libedgelog through ctypes (see ``_lib.py``).

Every call goes straight to the C function; ctypes releases the GIL for the
duration of each call, so other Python threads run while one appends, and
any number of threads may append to one :class:`Log` at once (the C append
is thread-safe).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import weakref
from ctypes import byref, c_int, c_uint64, c_void_p, string_at
from typing import IO, Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Union

import msgpack

from . import _lib

_LIB, LIBRARY_PATH = _lib.load()
_append = _LIB.edgelog_append
#: The fast append (libedgelog_py.so, see _lib.load_fast) and its encoder,
#: or None; FAST_PATH: its path, or "off (why)".
_fast_append, _fast_encode, FAST_PATH = _lib.load_fast(_LIB, LIBRARY_PATH)

# Error codes: stable numbers (edgelog.h).
OK = 0
EOF = -1
EINVAL = -2
ECONFIG = -3
EIO = -4
ENOSPC = -5
EFULL = -6
ELOCKED = -7
ECORRUPT = -8
EVERSION = -9
ENOMEM = -10
ETOOBIG = -11
ENOTFOUND = -12
EPERM = -13
ESTATE = -14
ENET = -15
ETIMEDOUT = -16
ERANGE = -17
ENOTSUP = -18

ALERT_PENDING = 1 << 0
ALERT_SIZE = 1 << 1
ALERT_FAILED = 1 << 2
_ALERT_NAMES = ((ALERT_PENDING, "pending"), (ALERT_SIZE, "size"), (ALERT_FAILED, "failed"))

LOG_ERROR = 0
LOG_WARN = 1
LOG_INFO = 2

MAX_RECORD = 1 << 20


def version() -> str:
    """The C library's version, "MAJOR.MINOR.PATCH"."""
    return _LIB.edgelog_version().decode()


def strerror(code: int) -> str:
    """``edgelog_strerror``: "EDGELOG_EIO: input/output error"."""
    return _LIB.edgelog_strerror(code).decode("utf-8", "replace")


class EdgelogError(Exception):
    """A failed edgelog call.

    Attributes: ``code`` (the negative ``EDGELOG_E*`` number), ``name``
    (``"EDGELOG_EIO"``), ``message`` (``edgelog_errmsg``'s detail: path,
    syscall, variable, byte offset). ``str()`` gives all three.
    """

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.name = strerror(code).split(":", 1)[0]
        self.message = message
        super().__init__("%s: %s" % (strerror(code), message) if message else strerror(code))


class ConfigError(EdgelogError, ValueError):
    """EDGELOG_ECONFIG: an invalid configuration value (keyword or
    environment variable, named in the message)."""


class SerializationError(EdgelogError, TypeError):
    """EDGELOG_EINVAL raised before the C call: the object given to
    :meth:`Log.append` cannot be encoded as msgpack. Nothing was written."""


class LockedError(EdgelogError):
    """EDGELOG_ELOCKED: another engine holds the directory (its pid is in
    the message)."""


def _error(code: int, message: str) -> EdgelogError:
    if code == ECONFIG:
        return ConfigError(code, message)
    if code == ELOCKED:
        return LockedError(code, message)
    return EdgelogError(code, message)


def _errmsg(handle: Optional[int]) -> str:
    return _LIB.edgelog_errmsg(handle).decode("utf-8", "replace")


def _check(rc: int, handle: Optional[int] = None) -> int:
    if rc < 0:
        raise _error(rc, _errmsg(handle))
    return rc


def _fs(path: Union[str, "os.PathLike[str]"]) -> bytes:
    return os.fsencode(os.fspath(path))


# ---------------------------------------------------------------------------
# msgpack encoding

_packb = msgpack.packb  # thread-safe; the slow path and pack()
_tls = threading.local()


class _ThreadState:
    """What one thread reuses from one append to the next: a msgpack
    Packer (``packb`` builds a Packer with a 1 MiB buffer per call, which
    cost 0.3-0.5 us of the 1.7 us it takes to encode the sample
    prediction) and the c_uint64 the seq is returned in, with a pointer to
    it (allocating both per call costs more than the C append).

    ``pack`` is None while this thread is inside it: encoding a dict
    subclass runs its ``items()``, which could append again from the same
    thread; that inner append then uses ``packb`` instead of the Packer
    whose buffer is half written."""

    __slots__ = ("pack", "seq", "ref")

    def __init__(self) -> None:
        self.pack: Optional[Callable[[Any], bytes]] = msgpack.Packer(autoreset=True).pack
        self.seq = c_uint64()
        self.ref = byref(self.seq)


def _thread_state() -> _ThreadState:
    st = _tls.st = _ThreadState()
    return st


def _encode(record: Any, st: _ThreadState) -> bytes:
    """record as msgpack with this thread's Packer (bytes pass through).
    SerializationError naming the place when it cannot be encoded."""
    if type(record) is bytes:
        return record
    p = st.pack
    if p is None:  # re-entered while this thread's Packer is in use
        return pack(record)
    st.pack = None
    try:
        return p(record)
    except Exception:
        return pack(record)  # raises SerializationError naming the place
    finally:
        st.pack = p


def _describe_unpackable(obj: Any, path: str = "record") -> str:
    """Where in obj the first value msgpack refuses sits, and what it is."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            kp = "%s[%r]" % (path, k)
            try:
                msgpack.packb(k)
            except Exception:
                return "the key %r of %s is of type %s" % (k, path, _typename(k))
            found = _describe_unpackable(v, kp)
            if found:
                return found
        return ""
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            found = _describe_unpackable(v, "%s[%d]" % (path, i))
            if found:
                return found
        return ""
    try:
        msgpack.packb(obj, use_bin_type=True)
    except Exception as e:
        return "%s is of type %s (%s)" % (path, _typename(obj), e)
    return ""


def _typename(obj: Any) -> str:
    t = type(obj)
    return t.__name__ if t.__module__ == "builtins" else "%s.%s" % (t.__module__, t.__qualname__)


def pack(obj: Any) -> bytes:
    """Encode obj as one msgpack object, as :meth:`Log.append` does (bytes
    pass through unchanged: taken as already encoded). Raises
    :class:`SerializationError` naming the offending value's place."""
    if type(obj) is bytes:
        return obj
    try:
        return _packb(obj)
    except Exception as e:
        where = _describe_unpackable(obj) or "%s (%s)" % (_typename(obj), e)
        raise SerializationError(
            EINVAL, "record is not serialisable to msgpack: %s; nothing was written" % where
        ) from None


def unpack(data: bytes) -> Any:
    """Decode one msgpack object as edgelog stored it (str for text, bytes
    for binary, maps with any key type)."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


# ---------------------------------------------------------------------------
# Status


def _status_dict(st: _lib.Status, source: Optional[str]) -> Dict[str, Any]:
    """The fields of ``edgelog status --json``, same names, same order, same
    null for "none" (empty string, last_success_at 0)."""
    d: Dict[str, Any] = {}
    if source:
        d["source"] = source
    for name, _ in _lib.Status._fields_:
        if name in ("version", "alerts"):
            continue
        v = getattr(st, name)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace") or None
        elif name in ("is_connected", "upload_enabled", "running"):
            v = bool(v)
        elif name in ("last_success_at", "last_error_at"):
            v = v or None
        d[name] = v
    d["alerts"] = [
        {"alert": name, "message": _alert_message(st, bit)}
        for bit, name in _ALERT_NAMES
        if st.alerts & bit
    ]
    return d


def _alert_message(st: Any, bit: int) -> str:
    g = (lambda k: st[k]) if isinstance(st, dict) else (lambda k: getattr(st, k))
    if bit == ALERT_PENDING:
        return "pending %d > %d" % (g("pending"), g("alert_pending"))
    if bit == ALERT_SIZE:
        return "size %d bytes > %d%% of the cap (%d bytes)" % (
            g("size_bytes"),
            g("alert_size_pct"),
            g("max_size_bytes"),
        )
    return "failed %d > %d" % (g("failed"), g("alert_failed"))


def _commas(v: int) -> str:
    return "{:,}".format(v)


def _mb(b: int) -> str:
    if b % (1024 * 1024) == 0:
        return "%d MB" % (b >> 20)
    return "%.1f MB" % (b / (1024.0 * 1024.0))


def _ago(unix_s: int) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(unix_s))
    d = max(0, int(time.time()) - unix_s)
    if d < 120:
        return "%s (%d s ago)" % (when, d)
    if d < 7200:
        return "%s (%d min ago)" % (when, d // 60)
    return "%s (%d h ago)" % (when, d // 3600)


def format_status(dir: str, st: Dict[str, Any]) -> str:
    """The text ``edgelog status DIR`` prints, from a status dict (its
    ``source`` says live, offline or stale)."""
    src = st.get("source", "live")
    live = {"live": 1, "offline": 0, "stale": -1}.get(src, 1)
    out: List[str] = []
    if live > 0:
        out.append("edgelog status of %s (live, from the running engine)" % dir)
    elif live < 0:
        out.append(
            "edgelog status of %s (an engine holds it but wrote no fresh snapshot: "
            "computed from segments and cursor)" % dir
        )
    else:
        out.append(
            "edgelog status of %s (offline: no engine running, computed from segments "
            "and cursor)" % dir
        )
    out.append("Device: %s" % (st["device_id"] or ""))
    pct = st["pending"] * 100 // st["alert_pending"] if st["alert_pending"] else 0
    out.append(
        "Pending: %s / %s (%d%%)" % (_commas(st["pending"]), _commas(st["alert_pending"]), pct)
    )
    out.append("Sent: %s" % _commas(st["sent"]))
    out.append("Failed: %s" % _commas(st["failed"]))
    out.append(
        "Dropped: %s   Expired: %s   Corrupt: %s"
        % (_commas(st["dropped"]), _commas(st["expired"]), _commas(st["corrupt"]))
    )
    cap = st["max_size_bytes"]
    out.append(
        "Size: %s / %s (%.1f%%)"
        % (_mb(st["size_bytes"]), _mb(cap), 100.0 * st["size_bytes"] / cap if cap else 0.0)
    )
    line = "Segments: %d" % st["segments"]
    if st["pending"]:
        line += "   Oldest pending: %d s" % st["oldest_pending_age_s"]
    out.append(line)
    if live < 0:
        out.append("Cloud Connection: - unknown (the engine's snapshot is missing or stale)")
    elif not live:
        out.append("Cloud Connection: - unknown (no engine running)")
    elif not st["upload_enabled"]:
        out.append("Cloud Connection: - none (no endpoint configured: buffer only)")
    elif st["is_connected"]:
        out.append("Cloud Connection: \u2713 Connected")
    elif st["retry_in_s"]:
        out.append("Cloud Connection: \u2717 Disconnected (retry in %d s)" % st["retry_in_s"])
    else:
        out.append("Cloud Connection: \u2717 Disconnected")
    if st["last_success_at"]:
        out.append("Last success: %s" % _ago(st["last_success_at"]))
    if st["last_error"]:
        out.append("Last error: %s" % st["last_error"])
    n = _commas(st["pending"])
    if not st["pending"]:
        line = "Recovery status: up to date"
    elif live <= 0:
        line = "Recovery status: %s record(s) wait for the next engine to send them" % n
    elif not st["upload_enabled"]:
        line = "Recovery status: buffer only, %s record(s) kept" % n
    elif st["is_connected"]:
        line = "Recovery status: recovering, %s record(s) left to send" % n
    else:
        line = "Recovery status: buffering, %s record(s) kept until the cloud is back" % n
    if st["recovered"]:
        line += " (%s delivered after outages so far)" % _commas(st["recovered"])
    out.append(line)
    if not st["alerts"]:
        out.append("Alerts: none")
    else:
        out.append("Alerts:")
        for a in st["alerts"]:
            out.append("  ! %s: %s" % (a["alert"], a["message"]))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# Configuration

_U32 = (
    "max_size_mb",
    "retention_days",
    "batch_size",
    "batch_timeout_ms",
    "sync_interval_ms",
    "retry_base_ms",
    "retry_max_ms",
    "http_timeout_ms",
    "segment_bytes",
    "segment_max_age_s",
    "alert_size_pct",
    "close_grace_ms",
    "upload_max_records",
    "upload_max_kb",
    "status_interval_ms",
    "poison_tries",
)
_U64 = ("alert_pending", "alert_failed")
_STR = ("auth_token", "auth_token_file", "ca_file", "client_cert", "client_key", "metrics_file")
_ENUMS = {
    "sync": {"always": 1, "interval": 2, "none": 3},
    "full_policy": {"drop_oldest": 1, "reject": 2},
    "format": {"ndjson": 1, "json": 2, "msgpack": 3},
    "compression": {"gzip": 1, "none": 2},
    "data_encoding": {"object": 1, "string": 2},
    "segment_reuse": {"on": 1, "off": 2},
}
#: Every keyword :class:`Log` takes besides dir, endpoint and device_id:
#: the fields of ``edgelog_config``.
CONFIG_FIELDS = _U32 + _U64 + _STR + tuple(_ENUMS) + ("log_fn", "alert_fn")


def _config_error(msg: str) -> ConfigError:
    return ConfigError(ECONFIG, msg)


def _set_field(cfg: _lib.Config, name: str, value: Any) -> None:
    if name in _U32 or name in _U64:
        top = (1 << 32) - 1 if name in _U32 else (1 << 64) - 1
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            raise _config_error("%s=%r: expected an integer 0..%d" % (name, value, top))
        setattr(cfg, name, value)
    elif name in _STR:
        if not isinstance(value, (str, bytes, os.PathLike)):
            raise _config_error("%s=%r: expected a string" % (name, value))
        setattr(cfg, name, value.encode() if isinstance(value, str) else _fs(value))
    elif name in _ENUMS:
        names = _ENUMS[name]
        if isinstance(value, str) and value in names:
            setattr(cfg, name, names[value])
        elif isinstance(value, int) and not isinstance(value, bool) and value in names.values():
            setattr(cfg, name, value)
        else:
            raise _config_error(
                "%s=%r: expected one of %s" % (name, value, ", ".join(sorted(names)))
            )
    else:
        raise TypeError(
            "edgelog.Log() got an unexpected keyword argument %r (config fields: %s)"
            % (name, ", ".join(CONFIG_FIELDS))
        )


def make_config(
    dir: Optional[Union[str, "os.PathLike[str]"]] = None,
    endpoint: Optional[str] = None,
    device_id: Optional[str] = None,
    env: bool = True,
    **config: Any,
) -> _lib.Config:
    """An ``edgelog_config``: defaults, then the environment (as
    ``edgelog_config_from_env`` reads it, when env is true), then the
    arguments, which win. Callbacks are not handled here."""
    cfg = _lib.alloc(_lib.Config)
    _LIB.edgelog_config_init(byref(cfg))
    if env:
        _check(_LIB.edgelog_config_from_env(byref(cfg)))
    if dir is not None:
        cfg.dir = _fs(dir)
    if endpoint is not None:
        cfg.endpoint = endpoint.encode() if endpoint else None
    if device_id is not None:
        cfg.device_id = device_id.encode()
    for k, v in config.items():
        if v is not None:
            _set_field(cfg, k, v)
    return cfg


# ---------------------------------------------------------------------------
# The engine

_open_logs: "weakref.WeakSet[Log]" = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    # The engine's threads may call Python callbacks; they must be gone
    # before the interpreter is.
    for log in list(_open_logs):
        try:
            log.close()
        except Exception:
            pass


class Record(NamedTuple):
    """One stored record: ``for seq, ts, data in edgelog.read(dir)``."""

    seq: int
    ts: int  #: wall clock at append, milliseconds since the epoch
    data: Any  #: the record, decoded from msgpack


class Log:
    """An open edgelog directory with its engine running.

    ``Log(dir, endpoint=None, device_id=None, **config)`` fills an
    ``edgelog_config`` with the defaults, then the environment variables
    (``EDGELOG_*`` and the old client's ``BUFFER_DB_PATH``,
    ``CLOUD_LOGGING_ENDPOINT``, ``EDGE_DEVICE_ID``, ``BUFFER_MAX_SIZE_MB``,
    ``BUFFER_CLEANUP_DAYS``: exactly as in C), then the arguments, which
    win; opens the directory (creating it) and starts the engine's worker
    (``start=False`` leaves it stopped: call :meth:`step` yourself). Every
    field of ``edgelog_config`` is a keyword (:data:`CONFIG_FIELDS`): the
    numbers as ints, ``sync`` as ``"always"``/``"interval"``/``"none"``,
    ``full_policy`` as ``"drop_oldest"``/``"reject"``, ``format`` as
    ``"ndjson"``/``"json"``/``"msgpack"``, ``compression`` as
    ``"gzip"``/``"none"``; ``log_fn(level, message)`` and
    ``alert_fn(alert_bit, active, message)`` are Python callables, called
    from the engine's threads. ``env=False`` ignores the environment.

    A context manager: ``with edgelog.Log("/data/edgelog") as log: ...``
    closes it. A Log still open when the interpreter exits is closed then.
    Failures raise :class:`EdgelogError` (:class:`ConfigError`,
    :class:`LockedError`) with the C code and message.
    """

    def __init__(
        self,
        dir: Optional[Union[str, "os.PathLike[str]"]] = None,
        endpoint: Optional[str] = None,
        device_id: Optional[str] = None,
        *,
        start: bool = True,
        env: bool = True,
        **config: Any,
    ) -> None:
        self._h: Optional[int] = None
        self._lock = threading.Lock()
        log_fn = config.pop("log_fn", None)
        alert_fn = config.pop("alert_fn", None)
        cfg = make_config(dir, endpoint, device_id, env, **config)
        # Keep the C callbacks alive as long as the engine.
        self._callbacks: List[Any] = []
        if log_fn is not None:
            cfg.log_fn = self._wrap_log_fn(log_fn)
        if alert_fn is not None:
            cfg.alert_fn = self._wrap_alert_fn(alert_fn)
        self.dir: str = os.fsdecode(cfg.dir) if cfg.dir else "./edgelog-data"
        h = c_void_p()
        _check(_LIB.edgelog_open(byref(h), byref(cfg)))
        self._h = h.value
        _open_logs.add(self)
        if start:
            try:
                self.start()
            except BaseException:
                self.close()
                raise

    def _wrap_log_fn(self, fn: Callable[[int, str], None]) -> Any:
        def cb(_payload: Any, level: int, msg: bytes) -> None:
            try:
                fn(level, msg.decode("utf-8", "replace"))
            except Exception as e:  # never unwind into C
                print("edgelog: log_fn raised %r" % e, file=sys.stderr)

        c = _lib.LOG_FN(cb)
        self._callbacks.append(c)
        return c

    def _wrap_alert_fn(self, fn: Callable[[int, bool, str], None]) -> Any:
        def cb(_payload: Any, alert: int, active: int, msg: bytes) -> None:
            try:
                fn(alert, bool(active), msg.decode("utf-8", "replace"))
            except Exception as e:
                print("edgelog: alert_fn raised %r" % e, file=sys.stderr)

        c = _lib.ALERT_FN(cb)
        self._callbacks.append(c)
        return c

    # -- helpers
    def _handle(self) -> int:
        h = self._h
        if h is None:
            raise EdgelogError(ESTATE, "%s: the log is closed" % self.dir)
        return h

    def _raise(self, rc: int, h: int) -> None:
        raise _error(rc, _errmsg(h))

    # -- the API
    def append(self, record: Any) -> int:
        """Store one record; returns its sequence number (1, 2, ...).

        ``record`` is any msgpack-serialisable object (a dict, normally),
        encoded with msgpack; ``bytes`` are taken as one already-encoded
        msgpack object and stored as they are (the library checks that they
        are exactly one well-formed object). Once this returns, the record
        survives the process being killed; see ``sync`` for power loss.
        Raises :class:`SerializationError` (a TypeError) naming the
        offending value when the object cannot be encoded: nothing is
        written then. Thread-safe; no lock is taken on the Python side.
        """
        h = self._h
        if h is None:
            h = self._handle()
        if _fast_append is not None:
            # Encodes Python's own types and appends in one C call; None
            # for anything else, which the msgpack path below handles.
            r = _fast_append(h, record)
            if r is not None:
                if r > 0:
                    return r
                self._raise(r, h)
        try:
            st = _tls.st
        except AttributeError:
            st = _thread_state()
        data = _encode(record, st)
        rc = _append(h, data, len(data), st.ref)
        if rc:
            self._raise(rc, h)
        return st.seq.value

    def append_json(self, text: Union[str, bytes]) -> int:
        """Store one record given as JSON text (converted to msgpack by the
        library; invalid JSON raises EDGELOG_EINVAL with the byte offset)."""
        h = self._handle()
        data = text.encode() if isinstance(text, str) else text
        seq = c_uint64()
        rc = _LIB.edgelog_append_json(h, data, len(data), byref(seq))
        if rc:
            self._raise(rc, h)
        return seq.value

    def sync(self) -> None:
        """Make every record appended so far durable (fdatasync)."""
        h = self._handle()
        rc = _LIB.edgelog_sync(h)
        if rc:
            self._raise(rc, h)

    def start(self) -> None:
        """Start the worker threads (done by the constructor unless
        ``start=False``). EDGELOG_ESTATE if already started."""
        h = self._handle()
        rc = _LIB.edgelog_start(h)
        if rc:
            self._raise(rc, h)

    def step(self, timeout_ms: int = 0) -> None:
        """Do the engine's periodic work once (for ``start=False``)."""
        h = self._handle()
        rc = _LIB.edgelog_step(h, timeout_ms)
        if rc:
            self._raise(rc, h)

    def ack(self, seq: int) -> None:
        """Mark every record up to seq as acknowledged (for a consumer that
        ships records itself)."""
        h = self._handle()
        rc = _LIB.edgelog_ack(h, seq)
        if rc:
            self._raise(rc, h)

    def status(self) -> Dict[str, Any]:
        """The engine's status as a dict with the field names and values of
        ``edgelog status --json`` (``source`` is ``"live"``)."""
        h = self._handle()
        st = _lib.new_status()
        rc = _LIB.edgelog_get_status(h, byref(st))
        if rc:
            self._raise(rc, h)
        return _status_dict(st, "live")

    def print_status(self, file: Optional[IO[str]] = None) -> None:
        """Print the status in the layout of ``edgelog status`` (to
        sys.stdout by default)."""
        (file or sys.stdout).write(format_status(self.dir, self.status()))

    def cleanup(self, force: bool = False) -> None:
        """Run retention now; ``force`` also removes dead letters older than
        retention_days (counted as expired). See ``edgelog_cleanup``."""
        h = self._handle()
        rc = _LIB.edgelog_cleanup(h, 1 if force else 0)
        if rc:
            self._raise(rc, h)

    def close(self) -> None:
        """Stop the worker, deliver what it can within close_grace_ms, sync,
        release the directory. Idempotent. Raises the first error met (the
        log is closed either way)."""
        with self._lock:
            h, self._h = self._h, None
        if h is None:
            return
        _open_logs.discard(self)
        rc = _LIB.edgelog_close(h)
        if rc:
            raise _error(rc, _errmsg(None))

    @property
    def closed(self) -> bool:
        return self._h is None

    def __enter__(self) -> "Log":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return "<edgelog.Log %s%s>" % (self.dir, " closed" if self._h is None else "")


# ---------------------------------------------------------------------------
# Reading back and the offline helpers


def read(
    dir: Union[str, "os.PathLike[str]"],
    from_seq: int = 0,
    *,
    raw: bool = False,
    on_corrupt: Optional[Callable[[str, int, int, str], None]] = None,
) -> Iterator[Record]:
    """Records of ``dir`` (or of one segment file) in sequence order from
    ``from_seq`` (0: the oldest stored) to the current end, as
    ``Record(seq, ts, data)`` with data decoded from msgpack (``raw=True``:
    the msgpack bytes). Works while an engine writes the directory.
    Damaged frames are skipped; ``on_corrupt(segment, offset, length,
    reason)`` hears of each."""
    r = c_void_p()
    _check(_LIB.edgelog_reader_open(byref(r), _fs(dir), from_seq))
    cb = None
    try:
        if on_corrupt is not None:

            def corrupt(_p: Any, seg: bytes, off: int, length: int, why: bytes) -> None:
                on_corrupt(os.fsdecode(seg), off, length, why.decode("utf-8", "replace"))

            cb = _lib.CORRUPT_FN(corrupt)
            _LIB.edgelog_reader_on_corrupt(r, cb, None)
        rec = _lib.Record()
        while True:
            rc = _LIB.edgelog_reader_next(r, byref(rec))
            if rc == EOF:
                return
            _check(rc)
            data = string_at(rec.data, rec.len)
            yield Record(rec.seq, rec.ts_ms, data if raw else unpack(data))
    finally:
        _LIB.edgelog_reader_close(r)


def status(dir: Union[str, "os.PathLike[str]"]) -> Dict[str, Any]:
    """Status of a directory without opening an engine, as ``edgelog status
    --json DIR`` gives it (``source``: live, offline or stale)."""
    st = _lib.new_status()
    live = c_int()
    _check(_LIB.edgelog_status_dir(_fs(dir), byref(st), byref(live)))
    return _status_dict(st, {1: "live", 0: "offline", -1: "stale"}.get(live.value, "offline"))


def print_status(dir: Union[str, "os.PathLike[str]"], file: Optional[IO[str]] = None) -> None:
    """Print ``edgelog status DIR``'s text."""
    (file or sys.stdout).write(format_status(os.fspath(dir), status(dir)))


def export_stats(dir: Union[str, "os.PathLike[str]"], out_path: Union[str, "os.PathLike[str]"]) -> None:
    """Write status plus per-segment detail as JSON to out_path (atomic)."""
    _check(_LIB.edgelog_export_stats(_fs(dir), _fs(out_path)))


def requeue_failed(dir: Union[str, "os.PathLike[str]"]) -> int:
    """Move the dead letters of dir back into the log; returns how many."""
    before = status(dir)["requeued"]
    _check(_LIB.edgelog_requeue_failed(_fs(dir)))
    return status(dir)["requeued"] - before


def repair(dir: Union[str, "os.PathLike[str]"]) -> Dict[str, Any]:
    """Repair dir in place (``edgelog_repair``); returns the report as a
    dict, with ``actions``: one line per change made."""
    rep = _lib.alloc(_lib.RepairReport)
    actions: List[str] = []

    def on_action(_p: Any, line: bytes) -> None:
        actions.append(line.decode("utf-8", "replace"))

    cb = _lib.ACTION_FN(on_action)
    rep.on_action = cb
    _check(_LIB.edgelog_repair(_fs(dir), byref(rep)))
    out: Dict[str, Any] = {}
    for name, _ in _lib.RepairReport._fields_:
        if name.startswith("on_action"):
            continue
        v = getattr(rep, name)
        out[name] = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
    out["cursor_rebuilt"] = bool(out["cursor_rebuilt"])
    out["actions"] = actions
    return out


def buffer_dir(path: Union[str, "os.PathLike[str]"]) -> str:
    """The directory edgelog uses for a path given as the old client's
    ``BUFFER_DB_PATH``: a path that names a file (an existing regular file,
    or one ending in .db, .sqlite, .sqlite3 or .db3) becomes the directory
    beside it named after its stem (``/data/prediction_buffer.db`` ->
    ``/data/prediction_buffer``; a file with no extension gets
    ``.edgelog``); anything else is the directory itself. The same rule as
    ``edgelog_config_from_env``."""
    v = os.fspath(path)
    slash = v.rfind("/")
    base_at = slash + 1
    base = v[base_at:]
    dot = base.rfind(".")
    has_ext = dot > 0
    is_file = os.path.isfile(v) or (
        has_ext and base[dot:] in (".db", ".sqlite", ".sqlite3", ".db3")
    )
    if not is_file:
        return v
    if has_ext:
        return v[: base_at + dot]
    return v + ".edgelog"
