"""The old Python client's names over edgelog, so a service switches by
changing its imports::

    from edgelog import (EnhancedAsyncLoggingClient, BufferMonitor,
                         export_buffer_statistics, reset_failed_predictions,
                         repair_buffer_database)

The SQLite buffer is gone: ``buffer_db_path`` (like the ``BUFFER_DB_PATH``
variable) names the edgelog directory, or a file whose stem becomes one
(``/data/prediction_buffer.db`` -> ``/data/prediction_buffer/``). Records
already in an old SQLite file are not imported.

Differences from the old client are said in each docstring. The general
ones: calls that fail raise :class:`edgelog.EdgelogError` (with the
``EDGELOG_E*`` code and message) instead of logging and returning False;
``log_prediction`` stores the record before it returns (microseconds, no
queue, no thread pool) and returns its sequence number; upload, batching,
retry and retention run in the engine's own C thread, not in asyncio tasks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from typing import IO, Any, Dict, Optional, Union

from . import _core
from ._core import EdgelogError, Log, _fast_append, buffer_dir

logger = logging.getLogger("edgelog")

PathLike = Union[str, "os.PathLike[str]"]


def _resolve(path: Optional[PathLike]) -> Optional[str]:
    return buffer_dir(path) if path is not None else None


class BufferManager:
    """The old ``client.buffer_manager``: the buffer's statistics and
    cleanup. Works before :meth:`EnhancedAsyncLoggingClient.start` and
    after :meth:`~EnhancedAsyncLoggingClient.shutdown` too, on the
    directory alone (offline, as ``edgelog status`` does)."""

    def __init__(self, client: "EnhancedAsyncLoggingClient") -> None:
        self._client = client

    @property
    def path(self) -> str:
        """The buffer directory."""
        return self._client.buffer_dir

    def get_stats(self) -> Dict[str, Any]:
        """Status as a dict: the fields of ``edgelog status --json``
        (pending, sent, failed, dropped, expired, size_bytes, ...), plus
        ``size_mb`` and ``max_size_mb``. Differs: the old client counted
        rows of its SQLite table; these are edgelog's counters, and
        ``failed`` means records the cloud refused for good (dead letters),
        not uploads that are being retried (those stay ``pending``)."""
        log = self._client._log
        st = log.status() if log is not None else _core.status(self.path)
        st["size_mb"] = st["size_bytes"] / (1024.0 * 1024.0)
        st["max_size_mb"] = st["max_size_bytes"] / (1024.0 * 1024.0)
        return st

    def cleanup(self, force: bool = False) -> None:
        """Run retention now (``edgelog_cleanup``): acknowledged segments,
        records past ``cleanup_after_days``, the size cap; ``force`` also
        removes dead letters older than the retention. Differs: acknowledged
        data is removed by whole segment files, and unacknowledged records
        are removed only by the retention and size policy, always counted
        (expired, dropped)."""
        log = self._client._log
        if log is not None:
            log.cleanup(force)
            return
        with self._client._open(start=False) as tmp:
            tmp.cleanup(force)


class EnhancedAsyncLoggingClient:
    """The old asyncio client, backed by an edgelog engine.

    Arguments left at None take the environment (``BUFFER_DB_PATH``,
    ``CLOUD_LOGGING_ENDPOINT``, ``EDGE_DEVICE_ID``, ``BUFFER_MAX_SIZE_MB``,
    ``BUFFER_CLEANUP_DAYS`` and the ``EDGELOG_*`` names), then edgelog's
    defaults. ``**config`` passes any other :class:`edgelog.Log` keyword
    (``sync="always"``, ``format="json"``, ...).

    Differs: ``batch_timeout_seconds`` may be a float (kept to the
    millisecond); ``buffer_db_path`` naming a file is taken as a directory
    beside it (see the module docstring); nothing runs until :meth:`start`.
    """

    def __init__(
        self,
        api_endpoint: Optional[str] = None,
        buffer_db_path: Optional[PathLike] = None,
        edge_device_id: Optional[str] = None,
        max_buffer_size_mb: Optional[int] = None,
        cleanup_after_days: Optional[int] = None,
        batch_size: Optional[int] = None,
        batch_timeout_seconds: Optional[float] = None,
        **config: Any,
    ) -> None:
        self.api_endpoint = api_endpoint
        self.edge_device_id = edge_device_id
        self._dir = _resolve(buffer_db_path)
        self._config: Dict[str, Any] = dict(config)
        if max_buffer_size_mb is not None:
            self._config["max_size_mb"] = int(max_buffer_size_mb)
        if cleanup_after_days is not None:
            self._config["retention_days"] = int(cleanup_after_days)
        if batch_size is not None:
            self._config["batch_size"] = int(batch_size)
        if batch_timeout_seconds is not None:
            self._config["batch_timeout_ms"] = max(1, int(round(batch_timeout_seconds * 1000)))
        # The directory the engine will use, as it resolves it (argument,
        # then environment, then default); raises ConfigError now for a bad
        # environment value rather than at start().
        cfg = _core.make_config(self._dir, api_endpoint, edge_device_id)
        self.buffer_dir: str = os.fsdecode(cfg.dir) if cfg.dir else "./edgelog-data"
        self._log: Optional[Log] = None
        self.buffer_manager = BufferManager(self)

    def _open(self, start: bool) -> Log:
        return Log(self._dir, self.api_endpoint, self.edge_device_id, start=start, **self._config)

    @property
    def is_running(self) -> bool:
        return self._log is not None

    async def start(self) -> None:
        """Open the buffer directory and start the engine (its upload,
        sync and retention thread). Opening scans only the newest segment,
        so this runs on the event loop directly. Raises
        :class:`edgelog.LockedError` if another process holds the
        directory."""
        if self._log is None:
            self._log = self._open(start=True)

    async def log_prediction(self, prediction: Any) -> int:
        """Store one prediction (a dict, or bytes already msgpack-encoded)
        and return its sequence number. The C append is called directly on
        the event loop: it is a copy into a memory-mapped file (a few
        microseconds), no thread pool and no queue. The record survives a
        crash of the process as soon as this returns.

        Differs: the old client queued the record and returned True; this
        stores it before returning and raises :class:`edgelog.EdgelogError`
        (:class:`edgelog.SerializationError`, a TypeError, for an object
        msgpack cannot encode, e.g. a datetime: convert it first) instead
        of returning False. Before :meth:`start` it raises EDGELOG_ESTATE."""
        log = self._log
        if log is None:
            raise EdgelogError(_core.ESTATE, "log_prediction() before start()")
        h = log._h
        if _fast_append is not None and h is not None:
            r = _fast_append(h, prediction)  # Log.append's first step, inlined
            if r is not None:
                if r > 0:
                    return r
                log._raise(r, h)
        return log.append(prediction)

    async def get_buffer_status(self) -> Dict[str, Any]:
        """``pending``, ``sent``, ``failed``, ``is_connected`` and the rest
        of ``edgelog status --json``'s fields (dropped, expired, size_bytes,
        last_error, alerts, ...), plus ``size_mb``. Offline figures before
        :meth:`start` and after :meth:`shutdown`."""
        return self.buffer_manager.get_stats()

    async def shutdown(self) -> None:
        """Stop the engine: it keeps delivering for ``close_grace_ms``
        (5 s by default), syncs, and releases the directory; what is not
        delivered stays buffered for the next start.

        This one call runs in a thread of its own, awaited, because it may
        wait the whole grace period for the cloud and other coroutines
        should keep running meanwhile; no other method leaves the loop."""
        log, self._log = self._log, None
        if log is None:
            return
        loop = asyncio.get_running_loop()
        done: "asyncio.Future[None]" = loop.create_future()

        def run() -> None:
            try:
                log.close()
            except BaseException as e:  # handed to the awaiting coroutine
                err = e
                loop.call_soon_threadsafe(lambda: done.done() or done.set_exception(err))
            else:
                loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

        threading.Thread(target=run, name="edgelog-shutdown", daemon=False).start()
        await done

    async def __aenter__(self) -> "EnhancedAsyncLoggingClient":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.shutdown()


class BufferMonitor:
    """The old monitor: periodic status with alerts, and the status
    printout.

    Differs: alerts are the engine's (pending > 1000, size > 90 % of the
    cap, failed > 100 by default; set ``alert_pending``, ``alert_size_pct``,
    ``alert_failed`` on the client), logged through the ``edgelog`` logger.
    """

    def __init__(self, buffer_manager: BufferManager, client: EnhancedAsyncLoggingClient) -> None:
        self.buffer_manager = buffer_manager
        self.client = client
        self._task: Optional["asyncio.Task[None]"] = None
        self.last_status: Optional[Dict[str, Any]] = None

    async def start(self, interval_seconds: float = 30) -> None:
        """Start checking every ``interval_seconds`` in a background task
        and return at once: each check stores :attr:`last_status`, logs one
        INFO line (pending, sent, failed, connection) and one WARNING per
        active alert. :meth:`stop` (or the loop ending) ends it."""
        if self._task is not None and not self._task.done():
            return
        self._task = asyncio.get_running_loop().create_task(self._run(interval_seconds))

    async def _run(self, interval: float) -> None:
        while True:
            try:
                st = await self.get_full_status()
                self.last_status = st
                logger.info(
                    "edgelog %s: pending %d, sent %d, failed %d, %s",
                    st["directory"],
                    st["pending"],
                    st["sent"],
                    st["failed"],
                    "connected" if st["is_connected"] else "not connected",
                )
                for a in st["alerts"]:
                    logger.warning("edgelog alert %s: %s", a["alert"], a["message"])
            except Exception as e:  # a monitor must not die of one bad check
                logger.error("edgelog monitor: %s", e)
            await asyncio.sleep(interval)

    async def stop(self) -> None:
        """Stop the periodic checks."""
        t, self._task = self._task, None
        if t is not None:
            t.cancel()
            try:
                await t
            except asyncio.CancelledError:
                pass

    async def get_full_status(self) -> Dict[str, Any]:
        """The status dict of :meth:`EnhancedAsyncLoggingClient.get_buffer_status`
        plus ``directory``, ``running`` (an engine is open in this client)
        and ``timestamp`` (unix seconds)."""
        st = self.buffer_manager.get_stats()
        st["directory"] = self.client.buffer_dir
        st["running"] = self.client.is_running
        st["timestamp"] = time.time()
        return st

    async def print_status(self, file: Optional[IO[str]] = None) -> None:
        """Print the status in the layout of ``edgelog status``."""
        st = self.buffer_manager.get_stats()
        (file or sys.stdout).write(_core.format_status(self.client.buffer_dir, st))


def export_buffer_statistics(path: PathLike, out_json: PathLike) -> None:
    """Write the buffer's status plus per-segment detail as JSON to
    ``out_json`` (``edgelog export-stats``). ``path`` is the buffer
    directory or the old database file path. Differs: the JSON has
    edgelog's fields (see ``edgelog export-stats --help``), not the old
    SQLite statistics."""
    _core.export_stats(buffer_dir(path), out_json)


def reset_failed_predictions(path: PathLike) -> int:
    """Give the records the cloud refused another try
    (``edgelog requeue-failed``); returns how many. They go back as new
    records (new seq) with their original data. Needs the directory free:
    :class:`edgelog.LockedError` while an engine runs on it (stop the
    client first), as the old function needed the database unlocked."""
    return _core.requeue_failed(buffer_dir(path))


def repair_buffer_database(path: PathLike) -> Dict[str, Any]:
    """Repair the buffer in place (``edgelog repair``): torn tails
    truncated, damaged ranges quarantined (never deleted), cursor rebuilt.
    Returns the report (segments, records, torn_tails, damaged_ranges, ...,
    ``actions``: one line per change). Differs: there is no SQLite
    integrity check or VACUUM; this is the segment-file equivalent."""
    return _core.repair(buffer_dir(path))
