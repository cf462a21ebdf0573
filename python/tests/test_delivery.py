"""Delivery through the reference sink and survival of a killed writer,
driven from Python."""

import collections
import os
import signal
import subprocess
import sys
import textwrap

import edgelog
from conftest import HERE, prediction, wait_for

FAST = dict(retry_base_ms=50, retry_max_ms=300, batch_timeout_ms=50, batch_size=64,
            http_timeout_ms=5000, close_grace_ms=5000)


def seqs_at_sink(sink, device):
    return [r["seq"] for r in sink.records() if r["device_id"] == device]


def test_outage_buffered_then_delivered_exactly_once(tmp_path, sink):
    d = str(tmp_path / "buf")
    n1, n2 = 300, 700
    with edgelog.Log(d, endpoint=sink.url, device_id="py-outage", **FAST) as log:
        for i in range(n1):
            log.append(prediction(i))
        wait_for(lambda: log.status()["sent"] == n1, what="the first records delivered")
        assert log.status()["is_connected"] is True

        sink.stop()  # the outage
        for i in range(n1, n1 + n2):
            log.append(prediction(i))
        st = wait_for(
            lambda: (lambda s: s if s["last_error"] and not s["is_connected"] else None)(
                log.status()),
            what="the engine to notice the outage")
        assert st["pending"] == n2 and st["sent"] == n1
        assert len(seqs_at_sink(sink, "py-outage")) == n1  # nothing arrived meanwhile

        sink.start()  # same port: the cloud is back
        wait_for(lambda: log.status()["pending"] == 0, what="the backlog delivered")
        st = log.status()
        assert st["sent"] == n1 + n2 and st["failed"] == 0 and st["dropped"] == 0
        assert st["recovered"] >= 1
    recs = [r for r in sink.records() if r["device_id"] == "py-outage"]
    count = collections.Counter(r["seq"] for r in recs)
    assert sorted(count) == list(range(1, n1 + n2 + 1))
    assert set(count.values()) == {1}  # the sink keeps each seq once
    by_seq = {r["seq"]: r["data"] for r in recs}
    assert all(by_seq[i + 1] == prediction(i) for i in range(n1 + n2))


WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, %r)
    import edgelog
    log = edgelog.Log(sys.argv[1], sync="none")
    i = 0
    while True:
        seq = log.append({"i": i, "pad": "x" * (i %% 300)})
        # Acknowledged: append returned. The parent counts it only now.
        sys.stdout.write("%%d %%d\\n" %% (seq, i))
        sys.stdout.flush()
        i += 1
""") % os.path.dirname(HERE)


def test_kill9_python_writer_loses_nothing_acknowledged(tmp_path):
    d = str(tmp_path / "buf")
    for round_ in range(3):
        p = subprocess.Popen([sys.executable, "-c", WRITER, d], stdout=subprocess.PIPE,
                             text=True)
        acked = []
        try:
            for line in p.stdout:
                seq, i = map(int, line.split())
                acked.append((seq, i))
                if len(acked) == 3000 + 1000 * round_:
                    break
        finally:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(30)
            p.stdout.close()
        assert p.returncode == -signal.SIGKILL and acked
        stored = {r.seq: r.data for r in edgelog.read(d)}
        for seq, i in acked:
            assert stored.get(seq) == {"i": i, "pad": "x" * (i % 300)}, seq
    # A new engine opens the killed writer's directory and carries on.
    with edgelog.Log(d) as log:
        last = max(stored)
        assert log.append({"after": True}) == last + 1
        assert log.status()["pending"] == last + 1
