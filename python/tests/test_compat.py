"""The old client's names: a quick-start style script, the event loop never
handed to a thread pool, dead letters reset, the buffer path rule."""

import asyncio
import concurrent.futures
import json
import logging
import os
import subprocess
import sys

import pytest

import edgelog
from conftest import HERE, prediction, wait_for


def test_quickstart_script_delivers_everything_once(tmp_path, sink):
    db = tmp_path / "data" / "prediction_buffer.db"
    env = dict(os.environ)
    env.update(
        CLOUD_LOGGING_ENDPOINT=sink.url,
        BUFFER_DB_PATH=str(db),
        EDGE_DEVICE_ID="quickstart-cam",
        BUFFER_MAX_SIZE_MB="50",
        BUFFER_CLEANUP_DAYS="3",
        PYTHONPATH=os.path.dirname(HERE),
    )
    out_json = tmp_path / "stats.json"
    p = subprocess.run(
        [sys.executable, os.path.join(HERE, "quickstart_old_style.py"), "300", str(out_json)],
        env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("Pending: ") and "Connected: " in lines[0]
    # BufferMonitor.print_status: the layout of `edgelog status`.
    d = str(tmp_path / "data" / "prediction_buffer")
    assert "edgelog status of %s (live, from the running engine)" % d in lines
    assert "Device: quickstart-cam" in lines
    assert "Cloud Connection: \u2713 Connected" in lines
    assert any(l.startswith("Size: ") and l.endswith(" / 50 MB (%s)" % l.split("(")[-1][:-1])
               for l in lines)
    full = json.loads(next(l for l in lines if l.startswith("FULL "))[5:])
    assert full == {"pending": 0, "sent": 300, "failed": 0, "running": True}
    assert json.loads(next(l for l in lines if l.startswith("STATS "))[6:])["sent"] == 300
    assert "RESET 0" in lines
    # The buffer directory is the database path's stem, as in C.
    assert os.path.isdir(d) and not db.exists()
    stats = json.loads(out_json.read_text())
    assert stats["sent"] == 300 and stats["device_id"] == "quickstart-cam"
    recs = [r for r in sink.records() if r["device_id"] == "quickstart-cam"]
    assert sorted(r["seq"] for r in recs) == list(range(1, 301))
    assert sorted(r["data"]["n"] for r in recs) == list(range(300))


class NoPool(concurrent.futures.ThreadPoolExecutor):
    """An executor that fails the test if anything is handed to it."""

    def submit(self, *a, **k):
        raise AssertionError("an async method used the loop's thread pool: %r" % (a,))


def test_async_methods_stay_on_the_loop(tmp_path):
    async def main():
        loop = asyncio.get_running_loop()
        loop.set_default_executor(NoPool())
        c = edgelog.EnhancedAsyncLoggingClient(buffer_db_path=str(tmp_path / "b.db"),
                                               edge_device_id="loop")
        await c.start()
        seqs = [await c.log_prediction(prediction(i)) for i in range(1000)]
        st = await c.get_buffer_status()
        m = edgelog.BufferMonitor(c.buffer_manager, c)
        await m.start(interval_seconds=0.01)
        await asyncio.sleep(0.05)
        full = await m.get_full_status()
        await m.stop()
        await c.shutdown()
        return seqs, st, full, m.last_status

    seqs, st, full, last = asyncio.run(main())
    assert seqs == list(range(1, 1001))
    for k in ("pending", "sent", "failed", "is_connected", "dropped", "size_bytes", "alerts"):
        assert k in st
    assert st["pending"] == 1000 and st["is_connected"] is False
    assert full["pending"] == 1000 and last is not None
    assert [r.data for r in edgelog.read(str(tmp_path / "b"))] == [prediction(i) for i in range(1000)]


def test_log_prediction_errors(tmp_path):
    async def main():
        c = edgelog.EnhancedAsyncLoggingClient(buffer_db_path=str(tmp_path / "b"))
        with pytest.raises(edgelog.EdgelogError) as e:
            await c.log_prediction({"x": 1})
        assert e.value.code == edgelog.ESTATE
        await c.start()
        with pytest.raises(edgelog.SerializationError):
            await c.log_prediction({"when": object()})
        assert (await c.get_buffer_status())["appended"] == 0
        await c.shutdown()

    asyncio.run(main())


def test_monitor_logs_alerts(tmp_path, caplog):
    async def main():
        c = edgelog.EnhancedAsyncLoggingClient(buffer_db_path=str(tmp_path / "b"),
                                               alert_pending=5)
        await c.start()
        for i in range(8):
            await c.log_prediction({"i": i})
        m = edgelog.BufferMonitor(c.buffer_manager, c)
        await m.start(interval_seconds=0.01)
        await asyncio.sleep(0.1)
        await m.stop()
        await c.shutdown()

    with caplog.at_level(logging.INFO, logger="edgelog"):
        asyncio.run(main())
    assert any("edgelog alert pending: pending 8 > 5" in r.getMessage() for r in caplog.records)


def test_dead_letters_reset_and_delivered(tmp_path, make_sink):
    refusing = make_sink(["--reject-if", "label=poison"], name="refusing").start()
    db = str(tmp_path / "prediction_buffer.db")

    async def run(endpoint, n, poison):
        c = edgelog.EnhancedAsyncLoggingClient(
            api_endpoint=endpoint, buffer_db_path=db, edge_device_id="dl",
            batch_size=8, batch_timeout_seconds=0.05, retry_base_ms=50, retry_max_ms=200)
        await c.start()
        for i in range(n):
            await c.log_prediction({"i": i, "label": "poison" if i in poison else "ok"})
        st = await c.get_buffer_status()
        while st["pending"]:
            await asyncio.sleep(0.05)
            st = await c.get_buffer_status()
        await c.shutdown()
        return st

    st = asyncio.run(asyncio.wait_for(run(refusing.url, 20, {3, 11}), 60))
    assert st["failed"] == 2 and st["sent"] == 18
    refusing.stop()
    with pytest.raises(edgelog.LockedError):
        with edgelog.Log(edgelog.buffer_dir(db)):
            edgelog.reset_failed_predictions(db)
    assert edgelog.reset_failed_predictions(db) == 2
    assert edgelog.status(edgelog.buffer_dir(db))["failed"] == 0
    accepting = make_sink(name="accepting").start()
    st = asyncio.run(asyncio.wait_for(run(accepting.url, 0, set()), 60))
    assert st["failed"] == 0 and st["sent"] == 20
    assert sorted(r["data"]["i"] for r in accepting.records()) == [3, 11]
    rep = edgelog.repair_buffer_database(db)
    assert rep["actions"] == []


def test_buffer_manager_offline(tmp_path):
    c = edgelog.EnhancedAsyncLoggingClient(buffer_db_path=str(tmp_path / "x.sqlite"),
                                           max_buffer_size_mb=10, cleanup_after_days=2)
    with edgelog.Log(c.buffer_dir) as log:
        log.append({"a": 1})
    st = c.buffer_manager.get_stats()
    # Offline figures come from the files (the cap is the default then).
    assert st["source"] == "offline" and st["pending"] == 1
    c.buffer_manager.cleanup(force=True)
    assert c.buffer_dir == str(tmp_path / "x")
