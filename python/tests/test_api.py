"""edgelog.Log, edgelog.read and the offline helpers against the real
library: round trips, status and its printout against `edgelog status`,
configuration keywords and environment, errors, callbacks, threads."""

import datetime
import json
import os
import threading

import pytest

import edgelog
from conftest import prediction, run_cli


def test_append_read_roundtrip(tmp_path):
    d = str(tmp_path / "buf")
    with edgelog.Log(d, device_id="dev-1") as log:
        seqs = [log.append(prediction(i)) for i in range(100)]
        raw = edgelog.pack({"pre": "encoded"})
        seqs.append(log.append(raw))
        seqs.append(log.append_json('{"from": "json", "n": [1, 2]}'))
    assert seqs == list(range(1, 103))
    recs = list(edgelog.read(d))
    assert [r.seq for r in recs] == seqs
    assert [r.data for r in recs[:100]] == [prediction(i) for i in range(100)]
    assert recs[100].data == {"pre": "encoded"}
    assert recs[101].data == {"from": "json", "n": [1, 2]}
    for seq, ts, data in recs:  # unpacks as (seq, ts, record)
        assert abs(ts / 1000.0 - __import__("time").time()) < 600
    assert [r.seq for r in edgelog.read(d, from_seq=50)] == seqs[49:]
    assert next(edgelog.read(d, 7, raw=True)).data == edgelog.pack(prediction(6))


def test_reopen_continues_sequence(tmp_path):
    d = tmp_path / "buf"  # a PathLike works too
    with edgelog.Log(d) as log:
        log.append({"a": 1})
    with edgelog.Log(d) as log:
        assert log.append({"a": 2}) == 2


def test_status_is_edgelog_status_json(tmp_path):
    d = str(tmp_path / "buf")
    with edgelog.Log(d, device_id="dev-s", alert_pending=3) as log:
        for i in range(5):
            log.append({"i": i})
        st = log.status()
        assert st["source"] == "live"
        assert st["pending"] == 5 and st["sent"] == 0 and st["is_connected"] is False
        assert st["device_id"] == "dev-s"
        assert st["alerts"] == [{"alert": "pending", "message": "pending 5 > 3"}]
        log.sync()
    # Offline, the CLI and the binding read the same files: equal dicts.
    cli = json.loads(run_cli(["status", "--json", d]).stdout)
    ours = edgelog.status(d)
    # Ages are computed at each call: a second may tick between the two.
    age = "oldest_pending_age_s"
    assert abs(ours[age] - cli[age]) <= 1
    assert {**ours, age: 0} == {**cli, age: 0}
    with edgelog.Log(d) as log:
        assert list(log.status()) == list(cli)  # same names, same order


def test_print_status_is_edgelog_status(tmp_path, capsys):
    d = str(tmp_path / "buf")
    with edgelog.Log(d, device_id="dev-p", alert_pending=2) as log:
        for i in range(3):
            log.append({"i": i})
        log.print_status()
        out = capsys.readouterr().out
        assert out.startswith("edgelog status of %s (live, from the running engine)\n" % d)
        assert "Cloud Connection: - none (no endpoint configured: buffer only)\n" in out
        assert "  ! pending: pending 3 > 2\n" in out
    # The same text, unless a second ticked between the two (ages): retry.
    for _ in range(3):
        edgelog.print_status(d)
        ours, cli = capsys.readouterr().out, run_cli(["status", d]).stdout
        if ours == cli:
            break
    assert ours == cli


def test_every_config_field_is_a_keyword(tmp_path):
    tok = tmp_path / "token"
    tok.write_text("secret\n")
    kw = dict(
        max_size_mb=64,
        retention_days=3,
        batch_size=10,
        batch_timeout_ms=500,
        sync="always",
        sync_interval_ms=50,
        full_policy="reject",
        format="msgpack",
        compression="none",
        auth_token_file=str(tok),
        retry_base_ms=10,
        retry_max_ms=100,
        http_timeout_ms=1000,
        segment_bytes=1 << 16,
        segment_max_age_s=60,
        alert_pending=10,
        alert_size_pct=50,
        alert_failed=5,
        close_grace_ms=100,
        upload_max_records=100,
        upload_max_kb=64,
        status_interval_ms=500,
        metrics_file=str(tmp_path / "metrics.prom"),
        data_encoding="string",
        poison_tries=3,
        segment_reuse="off",
        log_fn=lambda level, msg: None,
        alert_fn=lambda bit, active, msg: None,
    )
    # auth_token excludes auth_token_file (the library says so); the TLS
    # files need real certificates.
    missing = set(edgelog.CONFIG_FIELDS) - set(kw)
    assert missing == {"auth_token", "ca_file", "client_cert", "client_key"}
    with pytest.raises(edgelog.ConfigError, match="auth_token and auth_token_file"):
        edgelog.Log(str(tmp_path / "b0"), auth_token="t", auth_token_file=str(tok))
    with edgelog.Log(str(tmp_path / "buf"), **kw) as log:
        log.append({"x": 1})
        st = log.status()
        assert st["max_size_bytes"] == 64 << 20
        assert (st["alert_pending"], st["alert_size_pct"], st["alert_failed"]) == (10, 50, 5)
        assert st["durable_seq"] == 1  # sync=always


@pytest.mark.parametrize(
    "kw, text",
    [
        ({"sync": "sometimes"}, "sync='sometimes': expected one of always, interval, none"),
        ({"batch_size": -1}, "batch_size=-1"),
        ({"batch_size": "10"}, "batch_size='10'"),
        ({"segment_bytes": 100}, "segment_bytes"),  # range checked by the library
    ],
)
def test_bad_config_value(tmp_path, kw, text):
    with pytest.raises(edgelog.ConfigError) as e:
        edgelog.Log(str(tmp_path / "buf"), **kw)
    assert e.value.code == edgelog.ECONFIG and e.value.name == "EDGELOG_ECONFIG"
    assert text in str(e.value)
    assert isinstance(e.value, ValueError)


def test_unknown_keyword(tmp_path):
    with pytest.raises(TypeError, match="unexpected keyword argument 'batchsize'"):
        edgelog.Log(str(tmp_path / "buf"), batchsize=3)


def test_environment_applies_as_in_c(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_DEVICE_ID", "from-env")
    monkeypatch.setenv("BUFFER_MAX_SIZE_MB", "77")
    monkeypatch.setenv("BUFFER_DB_PATH", str(tmp_path / "prediction_buffer.db"))
    with edgelog.Log() as log:
        assert log.dir == str(tmp_path / "prediction_buffer")
        st = log.status()
        assert st["device_id"] == "from-env" and st["max_size_bytes"] == 77 << 20
    with edgelog.Log(str(tmp_path / "b2"), device_id="arg-wins") as log:
        assert log.status()["device_id"] == "arg-wins"
    with edgelog.Log(str(tmp_path / "b3"), env=False) as log:
        assert log.status()["max_size_bytes"] == 500 << 20
    monkeypatch.setenv("EDGELOG_BATCH_SIZE", "lots")
    with pytest.raises(edgelog.ConfigError, match="EDGELOG_BATCH_SIZE"):
        edgelog.Log(str(tmp_path / "b4"))


def test_buffer_dir_rule_is_the_librarys(tmp_path):
    (tmp_path / "plainfile").write_text("x")
    cases = ["pred.db", "pred.sqlite3", "adir", "plainfile", ".hidden.db", "x.y/z"]
    for name in cases:
        path = str(tmp_path / name)
        want = edgelog.buffer_dir(path)
        os.makedirs(want, exist_ok=True)
        out = run_cli(["status"], env={"BUFFER_DB_PATH": path}).stdout
        assert out.startswith("edgelog status of %s " % want), (name, out)
    assert edgelog.buffer_dir("/data/prediction_buffer.db") == "/data/prediction_buffer"


def test_errors_carry_code_and_message(tmp_path):
    d = str(tmp_path / "buf")
    with edgelog.Log(d) as log:
        with pytest.raises(edgelog.LockedError) as e:
            edgelog.Log(d)
        assert e.value.code == edgelog.ELOCKED == -7
        assert str(os.getpid()) in e.value.message
        with pytest.raises(edgelog.EdgelogError) as e:
            log.append(b"\xc1")
        assert e.value.code == edgelog.EINVAL
        assert "byte 0" in e.value.message
        with pytest.raises(edgelog.EdgelogError) as e:
            log.append_json("{bad")
        assert e.value.code == edgelog.EINVAL and "invalid JSON at byte " in e.value.message
        with pytest.raises(edgelog.EdgelogError) as e:
            log.append(b"\xc4\x05ab")  # bin8 of 5 bytes cut short
        assert e.value.code == edgelog.EINVAL
    with pytest.raises(edgelog.EdgelogError) as e:
        log.append({"late": 1})
    assert e.value.code == edgelog.ESTATE and "closed" in str(e.value)
    with pytest.raises(edgelog.EdgelogError) as e:
        list(edgelog.read(str(tmp_path / "nope")))
    assert e.value.code == edgelog.ENOTFOUND and "nope" in e.value.message


@pytest.mark.parametrize(
    "bad, where",
    [
        ({"when": datetime.datetime(2024, 1, 1)}, "record['when'] is of type datetime.datetime"),
        ({"meta": {"tags": [1, {2, 3}]}}, "record['meta']['tags'][1] is of type set"),
        ({"big": 1 << 70}, "record['big'] is of type int"),
        (object(), "object"),
    ],
)
def test_non_serialisable_writes_nothing(tmp_path, bad, where):
    d = str(tmp_path / "buf")
    with edgelog.Log(d) as log:
        assert log.append({"before": 1}) == 1
        before = log.status()
        with pytest.raises(edgelog.SerializationError) as e:
            log.append(bad)
        assert isinstance(e.value, TypeError) and e.value.code == edgelog.EINVAL
        assert where in str(e.value) and "nothing was written" in str(e.value)
        after = log.status()
        assert after["appended"] == before["appended"] == 1
        assert after["last_seq"] == 1
        assert log.append({"after": 2}) == 2  # no seq was used up
    assert [r.data for r in edgelog.read(d)] == [{"before": 1}, {"after": 2}]


def test_append_inside_encoding_and_after_a_failed_one(tmp_path):
    """The encoder each thread reuses: a dict subclass whose items() appends
    from the same thread while its record is being encoded, and a record
    that fails half-way, leave both records and the next ones intact."""
    d = str(tmp_path / "buf")
    with edgelog.Log(d) as log:

        class Sneaky(dict):
            def items(self):
                try:
                    inner.append(log.append({"inner": len(inner)}))
                except edgelog.EdgelogError as e:  # kept, so the outer append goes on
                    inner.append(e)
                return super().items()

        inner = []
        outer = log.append({"a": "x" * 40, "m": Sneaky(k=[1, 2.5, "v"]), "z": 7})
        with pytest.raises(edgelog.SerializationError):
            log.append({"ok": "y" * 100, "bad": {1, 2}})
        last = log.append({"after": True})
    got = {r.seq: r.data for r in edgelog.read(d)}
    assert inner == [1] and outer == 2 and last == 3
    assert got == {
        1: {"inner": 0},
        2: {"a": "x" * 40, "m": {"k": [1, 2.5, "v"]}, "z": 7},
        3: {"after": True},
    }


def test_too_big(tmp_path):
    with edgelog.Log(str(tmp_path / "buf")) as log:
        with pytest.raises(edgelog.EdgelogError) as e:
            log.append({"blob": b"x" * edgelog.MAX_RECORD})
        assert e.value.code == edgelog.ETOOBIG
        assert log.status()["appended"] == 0


def test_threads_append_concurrently(tmp_path):
    d = str(tmp_path / "buf")
    got = {}
    with edgelog.Log(d) as log:

        def work(t):
            got[t] = [log.append({"t": t, "i": i}) for i in range(2000)]

        ts = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    allseq = sorted(s for v in got.values() for s in v)
    assert allseq == list(range(1, 8001))
    by_seq = {r.seq: r.data for r in edgelog.read(d)}
    for t, seqs in got.items():
        assert [by_seq[s] for s in seqs] == [{"t": t, "i": i} for i in range(2000)]


def test_alert_and_log_callbacks(tmp_path):
    calls = []
    d = str(tmp_path / "buf")
    with edgelog.Log(d, alert_pending=2, alert_fn=lambda *a: calls.append(a)) as log:
        for i in range(3):
            log.append({"i": i})
        log.status()
    assert (edgelog.ALERT_PENDING, True, "pending 3 > 2") in calls


def test_cleanup_close_idempotent(tmp_path):
    log = edgelog.Log(str(tmp_path / "buf"))
    log.append({"x": 1})
    log.cleanup()
    log.cleanup(force=True)
    log.sync()
    log.close()
    log.close()
    assert log.closed


def test_offline_helpers(tmp_path):
    d = str(tmp_path / "buf")
    with edgelog.Log(d) as log:
        for i in range(10):
            log.append({"i": i})
    out = tmp_path / "stats.json"
    edgelog.export_stats(d, str(out))
    assert json.loads(out.read_text())["pending"] == 10
    assert edgelog.requeue_failed(d) == 0
    rep = edgelog.repair(d)
    assert rep["records"] == 10 and rep["actions"] == [] and rep["cursor_rebuilt"] in (True, False)
    os.unlink(os.path.join(d, "cursor"))
    rep = edgelog.repair(d)
    assert rep["cursor_rebuilt"] is True and rep["actions"]
