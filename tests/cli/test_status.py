"""status, export-stats, metrics, requeue-failed and cleanup through the real
binary: golden layout, exact JSON field names, live state from a running
engine's snapshot, Prometheus format, dead letters made by a sink that
refuses records and moved back, refusal while an engine holds the
directory, every usage error."""
import json
import os
import re
import signal
import subprocess
import time

import clitest
from clitest import BIN, DEV_BIN, run

DESIGN_FIELDS = ["device_id", "pending", "sent", "failed", "dropped", "expired", "corrupt",
                 "size_bytes", "max_size_bytes", "segments", "oldest_pending_age_s",
                 "is_connected", "last_error", "last_success_at", "retry_in_s", "recovered",
                 "alerts"]

SMALL = {"EDGELOG_SEGMENT_BYTES": "65536", "EDGELOG_MAX_SIZE_MB": "10",
         "EDGELOG_DEVICE_ID": "golden-cam"}


def fill(d, n, env=None, start=0):
    lines = "".join('{"i": %d, "label": "cat"}\n' % (start + i) for i in range(n))
    e = dict(SMALL)
    e.update(env or {})
    run(["run", "--dir", d, "--quiet"], stdin=lines, env=e, check_rc=0)


def status_json(d, env=None):
    p = run(["status", "--json", "--dir", d], env=env or SMALL, check_rc=0)
    return json.loads(p.stdout)


def status_json_or_none(d, env):
    """None while the directory does not exist yet (an agent starting)."""
    p = run(["status", "--json", "--dir", d], env=env)
    return json.loads(p.stdout) if p.returncode == 0 else None


def mask(text):
    text = re.sub(r"Oldest pending: \d+ s", "Oldest pending: N s", text)
    return text


def test_status_golden_offline(tmp):
    d = os.path.join(tmp, "buf")
    fill(d, 45)
    p = run(["status", d], env=SMALL, check_rc=0)
    clitest.golden("status_offline.txt", mask(p.stdout.replace(d, "DIR")))


def test_status_json_fields_and_values(tmp):
    d = os.path.join(tmp, "buf")
    fill(d, 7)
    st = status_json(d)
    for f in DESIGN_FIELDS:
        assert f in st, f
    assert st["source"] == "offline"
    assert st["device_id"] == "golden-cam"
    assert st["pending"] == 7 and st["sent"] == 0 and st["appended"] == 7
    assert st["max_size_bytes"] == 10 << 20
    assert st["is_connected"] is False and st["last_error"] is None
    assert st["alerts"] == []
    # Thresholds come from the environment: an alert shows up, named.
    st = status_json(d, env=dict(SMALL, EDGELOG_ALERT_PENDING="5"))
    assert st["alerts"] == [{"alert": "pending", "message": "pending 7 > 5"}], st["alerts"]
    p = run(["status", d], env=dict(SMALL, EDGELOG_ALERT_PENDING="5"), check_rc=0)
    assert "Alerts:\n  ! pending: pending 7 > 5\n" in p.stdout, p.stdout


def test_status_errors(tmp):
    p = run(["status", os.path.join(tmp, "nope")], check_rc=2)
    assert os.path.join(tmp, "nope") in p.stderr and "no such directory" in p.stderr
    p = run(["status", "--frobnicate"], check_rc=2)
    assert "--frobnicate" in p.stderr
    p = run(["status", "--dir"], check_rc=2)
    assert "--dir" in p.stderr
    p = run(["status", tmp], env={"EDGELOG_MAX_SIZE_MB": "lots"}, check_rc=2)
    assert "EDGELOG_MAX_SIZE_MB" in p.stderr
    p = run(["status", "a", "b"], check_rc=2)
    assert "'b'" in p.stderr
    for cmd in ["status", "export-stats", "metrics", "requeue-failed", "cleanup"]:
        p = run([cmd, "--help"], check_rc=0)
        assert p.stdout.startswith("usage: edgelog " + cmd), cmd
    p = run(["export-stats", "--dir", tmp], check_rc=2)
    assert "OUT.json" in p.stderr


class Agent:
    """`edgelog run` kept alive on an open stdin pipe."""

    def __init__(self, d, env):
        e = {k: v for k, v in os.environ.items() if not k.startswith("EDGELOG_")}
        e.update(env)
        self.p = subprocess.Popen([BIN, "run", "--dir", d, "--quiet"], stdin=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=e, text=True)

    def send(self, n, start=0):
        for i in range(n):
            self.p.stdin.write('{"i": %d}\n' % (start + i))
        self.p.stdin.flush()

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            _, err = self.p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise
        return self.p.returncode, err


def wait_until(fn, secs=15):
    end = time.time() + secs
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_live_status_from_running_engine(tmp):
    d = os.path.join(tmp, "buf")
    env = dict(SMALL, EDGELOG_STATUS_INTERVAL_MS="100")
    a = Agent(d, env)
    try:
        a.send(12)
        st = wait_until(lambda: (lambda s: s if s and s["source"] == "live" and
                                 s["pending"] == 12 else None)(status_json_or_none(d, env)))
        assert st["is_connected"] is False and st["upload_enabled"] is False
        p = run(["status", d], env=env, check_rc=0)
        assert "(live, from the running engine)" in p.stdout
        assert "Cloud Connection: - none (no endpoint configured: buffer only)" in p.stdout
        # Mutating commands refuse and name the engine's pid.
        for cmd in (["cleanup", d], ["requeue-failed", d]):
            p = run(cmd, env=env, check_rc=1)
            assert "process %d" % a.p.pid in p.stderr, p.stderr
        m = run(["metrics", d], env=env, check_rc=0).stdout
        assert "edgelog_engine_running 1\n" in m
    finally:
        rc, err = a.stop()
    assert rc == 0, err
    st = status_json(d, env)
    assert st["source"] == "offline" and st["pending"] == 12


def test_live_status_disconnected_names_the_error(tmp):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    d = os.path.join(tmp, "buf")
    env = dict(SMALL, EDGELOG_STATUS_INTERVAL_MS="100", EDGELOG_BATCH_SIZE="1",
               EDGELOG_ENDPOINT="http://127.0.0.1:%d/log" % port,
               EDGELOG_RETRY_BASE_MS="5000", EDGELOG_RETRY_MAX_MS="5000",
               EDGELOG_CLOSE_GRACE_MS="100")
    a = Agent(d, env)
    try:
        a.send(3)
        st = wait_until(lambda: (lambda s: s if s and s["source"] == "live" and
                                 s["last_error"] else None)(status_json_or_none(d, env)))
        assert st["is_connected"] is False and st["pending"] == 3
        p = run(["status", d], env=env, check_rc=0)
        assert "Cloud Connection: \u2717 Disconnected" in p.stdout, p.stdout
        assert "Last error: " in p.stdout
        assert "Recovery status: buffering, 3 record(s) kept" in p.stdout
    finally:
        a.stop()


def test_status_when_a_holder_left_no_snapshot(tmp):
    """An engine that holds the directory but wrote no fresh snapshot (hung,
    or an older version): the figures come from the files, and it says so."""
    import fcntl
    d = os.path.join(tmp, "buf")
    fill(d, 4)
    with open(os.path.join(d, "LOCK"), "r+") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lk.truncate(0)
        lk.write("%d\n" % os.getpid())
        lk.flush()
        st = status_json(d)
        assert st["source"] == "stale" and st["pending"] == 4, st
        p = run(["status", d], env=SMALL, check_rc=0)
        assert "wrote no fresh snapshot" in p.stdout, p.stdout
        assert "edgelog_engine_running 1" in run(["metrics", d], env=SMALL).stdout
        p = run(["cleanup", d], env=SMALL, check_rc=1)
        assert "process %d" % os.getpid() in p.stderr, p.stderr


def test_metrics_exposition_format(tmp):
    d = os.path.join(tmp, "buf")
    fill(d, 3)
    out = run(["metrics", d], env=SMALL, check_rc=0).stdout
    names = {}
    for line in out.splitlines():
        if line.startswith("# HELP "):
            names.setdefault(line.split()[2], set()).add("help")
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in ("counter", "gauge"), line
            if kind == "counter":
                assert name.endswith("_total"), name
            names.setdefault(name, set()).add("type")
        else:
            m = re.match(r'^(edgelog_[a-z_]+)(\{[^}]*\})? (-?\d+)$', line)
            assert m, "not a sample line: %r" % line
            assert "help" in names.get(m.group(1), ()), m.group(1)
    assert 'edgelog_pending_records{device_id="golden-cam"} 3' in out
    assert 'edgelog_alert{device_id="golden-cam",alert="pending"} 0' in out
    assert "edgelog_engine_running 0" in out
    assert all(v == {"help", "type"} for v in names.values())


def test_export_stats(tmp):
    d = os.path.join(tmp, "buf")
    fill(d, 3000)
    out = os.path.join(tmp, "stats.json")
    run(["export-stats", "--dir", d, out], env=SMALL, check_rc=0)
    with open(out) as f:
        o = json.load(f)
    assert o["pending"] == 3000
    assert len(o["segment_files"]) > 1
    assert sum(s["records"] for s in o["segment_files"]) == 3000
    assert o["segment_files"][0]["first_seq"] == 1
    p = run(["export-stats", "--dir", d, "-"], env=SMALL, check_rc=0)
    assert json.loads(p.stdout)["pending"] == 3000
    p = run(["export-stats", "--dir", d, os.path.join(tmp, "no", "such", "x.json")],
            env=SMALL, check_rc=1)
    assert os.path.join(tmp, "no", "such") in p.stderr


def sink(tmp, name, *extra):
    out = os.path.join(tmp, name)
    p = subprocess.Popen([DEV_BIN, "sink", "--listen", "127.0.0.1:0", "--out", out, "--quiet"] +
                         list(extra), stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    m = re.search(r"listening on ([0-9.]+):(\d+)", line)
    assert m, line
    return p, "http://%s:%s/log" % (m.group(1), m.group(2)), out


def sink_seqs(out):
    try:
        with open(os.path.join(out, "records.ndjson")) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def test_requeue_failed_end_to_end(tmp):
    d = os.path.join(tmp, "buf")
    # The cloud refuses records whose data.label is "bad": they become
    # dead letters; the others are delivered.
    sp, url, out = sink(tmp, "sink1", "--reject-if", "label=bad")
    try:
        lines = "".join('{"i": %d, "label": "%s"}\n' % (i, "bad" if i % 5 == 0 else "ok")
                        for i in range(1, 21))
        env = dict(SMALL, EDGELOG_ENDPOINT=url, EDGELOG_BATCH_SIZE="4")
        # Exit 1: records of this run went to failed/.
        run(["run", "--dir", d, "--drain", "--drain-timeout", "30", "--quiet"], stdin=lines,
            env=env, check_rc=1)
        st = status_json(d)
        assert st["failed"] == 4 and st["sent"] == 16 and st["pending"] == 0, st
        assert st["appended"] == st["pending"] + st["sent"] + st["failed"]
    finally:
        sp.terminate()
        sp.wait(timeout=10)
    p = run(["requeue-failed", d], env=SMALL, check_rc=0)
    assert "4 dead letter(s) requeued" in p.stdout, p.stdout
    st = status_json(d)
    assert st["failed"] == 0 and st["pending"] == 4 and st["requeued"] == 4, st
    assert st["appended"] == st["pending"] + st["sent"] + st["failed"]
    # Their data is back, as it was.
    recs = [json.loads(l) for l in run(["dump", "--json", d], check_rc=0).stdout.splitlines()]
    back = sorted(r["data"]["i"] for r in recs if r["seq"] > st["acked_seq"])
    assert back == [5, 10, 15, 20], back
    # Now the cloud takes them: delivered once each.
    sp, url, out = sink(tmp, "sink2")
    try:
        run(["run", "--dir", d, "--drain", "--drain-timeout", "30", "--quiet"], stdin="",
            env=dict(SMALL, EDGELOG_ENDPOINT=url), check_rc=0)
    finally:
        sp.terminate()
        sp.wait(timeout=10)
    got = sorted(r["data"]["i"] for r in sink_seqs(out))
    assert got == [5, 10, 15, 20], got


def test_cleanup_removes_acked_and_reports(tmp):
    d = os.path.join(tmp, "buf")
    sp, url, out = sink(tmp, "sink")
    try:
        fill(d, 3000, env={"EDGELOG_ENDPOINT": url})
        run(["run", "--dir", d, "--drain", "--drain-timeout", "30", "--quiet"], stdin="",
            env=dict(SMALL, EDGELOG_ENDPOINT=url), check_rc=0)
    finally:
        sp.terminate()
        sp.wait(timeout=10)
    before = status_json(d)
    assert before["pending"] == 0 and before["sent"] == 3000
    p = run(["cleanup", "--force", d], env=SMALL, check_rc=0)
    assert "expired: +0, dropped: +0" in p.stdout, p.stdout
    after = status_json(d)
    assert after["segments"] == 1 and after["sent"] == 3000
    p = run(["cleanup", os.path.join(tmp, "nope")], check_rc=2)
    assert "no such directory" in p.stderr


def closed_url():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "http://127.0.0.1:%d/log" % port


def metric(text, name):
    m = re.search(r"^edgelog_%s\{([^}]*)\} (\S+)$" % name, text, re.M)
    assert m, "no %s in:\n%s" % (name, text)
    return m.group(1), m.group(2)


def test_metrics_file_and_snapshot_say_stopped_after_close(tmp):
    # Issue 11, defect 1: after the agent exits, the metrics file kept the
    # last interval's figures (connected, records pending) for ever.
    d = os.path.join(tmp, "buf")
    prom = os.path.join(tmp, "edgelog.prom")
    sp, url, out = sink(tmp, "sink")
    try:
        env = dict(SMALL, EDGELOG_ENDPOINT=url, EDGELOG_METRICS_FILE=prom,
                   EDGELOG_STATUS_INTERVAL_MS="100")
        lines = "".join('{"i": %d}\n' % i for i in range(25))
        run(["run", "--dir", d, "--drain", "--drain-timeout", "30", "--quiet"], stdin=lines,
            env=env, check_rc=0)
    finally:
        sp.terminate()
        sp.wait(timeout=10)
    with open(prom) as f:
        text = f.read()
    assert metric(text, "running") == ('device_id="golden-cam"', "0"), text
    assert metric(text, "connected")[1] == "0", text
    assert metric(text, "pending_records")[1] == "0", text
    assert metric(text, "sent_records_total")[1] == "25", text
    with open(os.path.join(d, "status.json")) as f:
        snap = json.load(f)
    assert snap["source"] == "stopped" and snap["running"] is False, snap
    assert snap["is_connected"] is False and snap["pending"] == 0, snap
    # Offline status is computed from the files, never taken from it.
    st = status_json(d)
    assert st["source"] == "offline" and st["running"] is False and st["sent"] == 25, st


def test_offline_status_keeps_device_id_and_last_error(tmp):
    # Issue 11, defects 5 and 6: offline status showed the host name and
    # last_error null right after a run that ended with an upload error.
    d = os.path.join(tmp, "buf")
    env = {"EDGELOG_ENDPOINT": closed_url(), "EDGELOG_RETRY_BASE_MS": "20",
           "EDGELOG_CLOSE_GRACE_MS": "300", "EDGELOG_BATCH_TIMEOUT_MS": "10"}
    t0 = int(time.time())
    run(["run", "--dir", d, "--device-id", "cam-offline-7", "--quiet"],
        stdin='{"i": 1}\n{"i": 2}\n', env=env, check_rc=0)
    clean = {k: v for k, v in SMALL.items() if k != "EDGELOG_DEVICE_ID"}
    st = status_json(d, env=clean)
    assert st["source"] == "offline", st
    assert st["device_id"] == "cam-offline-7", st
    assert st["last_error"] and "127.0.0.1" in st["last_error"], st
    assert t0 - 1 <= st["last_error_at"] <= int(time.time()) + 1, st
    assert st["pending"] == 2, st
    p = run(["metrics", d], env=clean, check_rc=0)
    assert 'device_id="cam-offline-7"' in p.stdout and "golden-cam" not in p.stdout
    for cmd in (["dump", "--json", d], ["tail", "--json", "-n", "2", d],
                ["dump", "--json", os.path.join(d, "segments")]):
        p = run(cmd, env=clean, check_rc=0)
        recs = [json.loads(l) for l in p.stdout.splitlines()]
        assert [r["device_id"] for r in recs] == ["cam-offline-7"] * 2, (cmd, p.stdout)
    # A device id given still wins.
    st = status_json(d, env=dict(clean, EDGELOG_DEVICE_ID="other"))
    assert st["device_id"] == "other", st
    p = run(["dump", "--json", "--device-id", "x9", d], env=clean, check_rc=0)
    assert json.loads(p.stdout.splitlines()[0])["device_id"] == "x9"
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    assert meta["device_id"] == "cam-offline-7" and meta["last_error"], meta


def planted(tmp, name):
    """A victim file and a symlink to it planted at name; returns the victim."""
    victim = os.path.join(tmp, "victim-" + os.path.basename(name))
    with open(victim, "w") as f:
        f.write("precious")
    os.symlink(victim, name)
    return victim


def test_export_stats_never_follows_a_planted_tmp(tmp):
    """Issue 9 defect 4: export-stats OUT wrote through a symlink planted at
    OUT.tmp, with a mode from the umask. Now: never followed, 0644 chosen
    on purpose (check_engine tests the metrics file the same way)."""
    d = os.path.join(tmp, "buf")
    out = os.path.join(tmp, "stats.json")
    victim = planted(tmp, out + ".tmp")
    fill(d, 3)
    old = os.umask(0o077)
    try:
        run(["export-stats", "--dir", d, out], env=SMALL, check_rc=0)
    finally:
        os.umask(old)
    assert open(victim).read() == "precious"
    st = os.lstat(out)
    assert not os.path.islink(out) and (st.st_mode & 0o7777) == 0o644, oct(st.st_mode)
    assert not os.path.lexists(out + ".tmp")
    assert json.load(open(out))["pending"] == 3


def test_status_warns_about_a_writable_data_directory(tmp):
    """Issue 9 defect 4: a data directory others can write to is a warning."""
    d = os.path.join(tmp, "buf")
    fill(d, 1)
    p = run(["status", d], env=SMALL, check_rc=0)
    assert "Warning" not in p.stdout, p.stdout
    os.chmod(d, 0o777)
    p = run(["status", d], env=SMALL, check_rc=0)
    assert "Warning: %s is world-writable (mode 0777)" % d in p.stdout, p.stdout
    os.chmod(d, 0o770)
    p = run(["status", "--json", "--dir", d], env=SMALL, check_rc=0)
    assert "group-writable" in p.stderr and json.loads(p.stdout)["pending"] == 1


def mask_values(text):
    """Figures that depend on the file system or the clock: masked."""
    text = re.sub(r'"(size_bytes|oldest_pending_age_s)":\d+', r'"\1":N', text)
    text = re.sub(r'(edgelog_(size_bytes|oldest_pending_age_seconds)\{[^}]*\}) \d+', r'\1 N',
                  text)
    return text


def test_status_json_and_metrics_golden_offline(tmp):
    """The exact bytes of `status --json` and `metrics` (the library's
    edgelog_status_json and edgelog_status_prometheus since the tools stand
    on the public API): names, order, layout."""
    d = os.path.join(tmp, "buf")
    fill(d, 45)
    env = dict(SMALL, EDGELOG_ALERT_PENDING="5")
    p = run(["status", "--json", d], env=env, check_rc=0)
    clitest.golden("status_offline.json", mask_values(p.stdout))
    p = run(["metrics", d], env=env, check_rc=0)
    clitest.golden("metrics_offline.txt", mask_values(p.stdout))


def test_live_status_json_is_the_snapshot_byte_for_byte(tmp):
    """`status --json` of a running engine reads DIR/status.json back and
    writes it again: the same bytes as the engine wrote (less the writer's
    pid, time and interval), UTF-8 included."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    d = os.path.join(tmp, "buf")
    env = dict(SMALL, EDGELOG_STATUS_INTERVAL_MS="100", EDGELOG_BATCH_SIZE="1",
               EDGELOG_DEVICE_ID="cam-\u00e9-7",
               EDGELOG_ENDPOINT="http://127.0.0.1:%d/log" % port,
               EDGELOG_RETRY_BASE_MS="60000", EDGELOG_RETRY_MAX_MS="60000",
               EDGELOG_CLOSE_GRACE_MS="100", EDGELOG_ALERT_PENDING="2")
    a = Agent(d, env)
    snap = os.path.join(d, "status.json")
    try:
        a.send(3)
        wait_until(lambda: (lambda s: s if s and s["source"] == "live" and
                            s["last_error"] and s["pending"] == 3 else None)(
                                status_json_or_none(d, env)))
        for _ in range(200):
            with open(snap, "rb") as f:
                before = f.read()
            out = run(["status", "--json", d], env=env, check_rc=0).stdout.encode()
            with open(snap, "rb") as f:
                after = f.read()
            if before == after:
                break
        else:
            raise AssertionError("the snapshot never held still")
        want = re.sub(rb',"pid":\d+,"written_at_ms":\d+,"interval_ms":\d+\}\n$', b"}\n",
                      before)
        assert want != before, before
        assert out == want, (out, want)
        assert "cam-\u00e9-7".encode() in out and b'"alert":"pending"' in out, out
    finally:
        a.stop()

if __name__ == "__main__":
    clitest.main()
