"""edgelog for Python: a thin binding over libedgelog (ctypes, no compiler
needed), plus the old SQLite client's names as a compatibility layer.

::

    import edgelog

    with edgelog.Log("/data/edgelog", endpoint="https://logs.example.com/log") as log:
        seq = log.append({"label": "person", "confidence": 0.63})
        print(log.status()["pending"])

    for seq, ts, rec in edgelog.read("/data/edgelog"):
        ...

The library is found through ``EDGELOG_LIBRARY``, else the copy installed
with the package, else the build trees of a source checkout, else the
system's (see ``edgelog._lib``); ``edgelog.LIBRARY_PATH`` says which, and
``edgelog.FAST_PATH`` which fast append (libedgelog_py.so) is used, if any.
"""

from ._core import (
    ALERT_FAILED,
    ALERT_PENDING,
    ALERT_SIZE,
    CONFIG_FIELDS,
    ECONFIG,
    ECORRUPT,
    EFULL,
    EINVAL,
    EIO,
    ELOCKED,
    ENET,
    ENOMEM,
    ENOSPC,
    ENOTFOUND,
    EOF,
    EPERM,
    ESTATE,
    ETIMEDOUT,
    ERANGE,
    ENOTSUP,
    ETOOBIG,
    EVERSION,
    LIBRARY_PATH,
    FAST_PATH,
    LOG_ERROR,
    LOG_INFO,
    LOG_WARN,
    MAX_RECORD,
    ConfigError,
    EdgelogError,
    LockedError,
    Log,
    Record,
    SerializationError,
    buffer_dir,
    export_stats,
    format_status,
    pack,
    print_status,
    read,
    repair,
    requeue_failed,
    status,
    strerror,
    unpack,
    version,
)
from .compat import (
    BufferManager,
    BufferMonitor,
    EnhancedAsyncLoggingClient,
    export_buffer_statistics,
    repair_buffer_database,
    reset_failed_predictions,
)

__version__ = "0.1.0"

__all__ = [
    "ALERT_FAILED",
    "ALERT_PENDING",
    "ALERT_SIZE",
    "CONFIG_FIELDS",
    "ECONFIG",
    "ECORRUPT",
    "EFULL",
    "EINVAL",
    "EIO",
    "ELOCKED",
    "ENET",
    "ENOMEM",
    "ENOSPC",
    "ENOTFOUND",
    "EOF",
    "EPERM",
    "ESTATE",
    "ETIMEDOUT",
    "ERANGE",
    "ENOTSUP",
    "ETOOBIG",
    "EVERSION",
    "LIBRARY_PATH",
    "FAST_PATH",
    "LOG_ERROR",
    "LOG_INFO",
    "LOG_WARN",
    "MAX_RECORD",
    "BufferManager",
    "BufferMonitor",
    "ConfigError",
    "EdgelogError",
    "EnhancedAsyncLoggingClient",
    "LockedError",
    "Log",
    "Record",
    "SerializationError",
    "buffer_dir",
    "export_buffer_statistics",
    "export_stats",
    "format_status",
    "pack",
    "print_status",
    "read",
    "repair",
    "repair_buffer_database",
    "requeue_failed",
    "reset_failed_predictions",
    "status",
    "strerror",
    "unpack",
    "version",
]
