"""ClickHouse as a destination: Debian's clickhouse-server, started here on
loopback with its own temporary data directory, config and ports, receives
50,000 records from `edgelog run` (NDJSON, gzip, data as a JSON-encoded
string) straight into a ReplacingMergeTree ORDER BY (device_id, seq) table
through its HTTP interface (INSERT ... FORMAT JSONEachRow). The server is
killed (SIGKILL) and restarted mid-stream; afterwards, OPTIMIZE ... FINAL,
count() and uniqExact(device_id, seq) must both be 50,000: nothing lost,
and the resends the outage caused collapsed to one row each.

Exit 77 (CTest: skipped) with a message when clickhouse-server is not
installed; scripts/deps.sh installs it, so CI runs it. Bounded: every wait
has a deadline and the whole test stops by itself (about 30 s here).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

BIN = os.environ.get("EDGELOG_BIN", "edgelog")
N = 50000
DEVICE = "cam-ch-1"
TABLE = "edgelog_records"
DEADLINE_S = 200  # the whole test; CI budget is 4 minutes


def find_server():
    for name in ("clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"):
        p = shutil.which(name)
        if p:
            return p
    return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


CONFIG = """<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>{d}/server.log</log>
        <errorlog>{d}/server.err.log</errorlog>
        <console>0</console>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http}</http_port>
    <tcp_port>{tcp}</tcp_port>
    <path>{d}/data/</path>
    <tmp_path>{d}/data/tmp/</tmp_path>
    <user_files_path>{d}/data/user_files/</user_files_path>
    <format_schema_path>{d}/data/format_schemas/</format_schema_path>
    <users_config>{d}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <max_concurrent_queries>16</max_concurrent_queries>
</yandex>
"""

USERS = """<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>1000000000</max_memory_usage></default></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default></default></quotas>
</yandex>
"""


class ClickHouse:
    def __init__(self, exe, d):
        self.exe, self.d = exe, d
        self.http, self.tcp = free_port(), free_port()
        with open(os.path.join(d, "config.xml"), "w") as f:
            f.write(CONFIG.format(d=d, http=self.http, tcp=self.tcp))
        with open(os.path.join(d, "users.xml"), "w") as f:
            f.write(USERS)
        self.p = None
        self.url = "http://127.0.0.1:%d/" % self.http

    def start(self):
        # As whatever user runs the test (root in CI): this server version
        # runs as the invoking user when started directly, with a data
        # directory that user owns.
        self.out = open(os.path.join(self.d, "stdout.txt"), "ab")
        self.p = subprocess.Popen([self.exe, "--config-file=" + os.path.join(self.d, "config.xml")],
                                  stdout=self.out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        until = time.monotonic() + 60
        while time.monotonic() < until:
            if self.p.poll() is not None:
                raise AssertionError("clickhouse-server exited with %d:\n%s" %
                                     (self.p.returncode, self.log_tail()))
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    if r.read().strip() == b"Ok.":
                        return
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                pass
            time.sleep(0.1)
        raise AssertionError("clickhouse-server did not answer within 60 s:\n" + self.log_tail())

    def kill(self):
        if self.p and self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait(timeout=30)
        if self.p:
            self.out.close()
        self.p = None

    def stop(self):
        if self.p and self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.p:
            self.out.close()
        self.p = None

    def query(self, q):
        req = urllib.request.Request(self.url, data=q.encode())
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:
            raise AssertionError("%s: HTTP %d: %s" % (q, e.code, e.read()[:500].decode()))

    def count(self):
        try:
            return int(self.query("SELECT count() FROM %s" % TABLE).strip())
        except (AssertionError, urllib.error.URLError, ConnectionError, socket.timeout):
            return -1

    def log_tail(self):
        for name in ("server.err.log", "stdout.txt"):
            p = os.path.join(self.d, name)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    return f.read()[-3000:]
        return ""


def record(i):
    return ('{"i":%d,"model":"yolo-v8n","label":"%s","confidence":%.4f,'
            '"bbox":[%d,%d,%d,%d],"meta":{"site":"plant-3","frame":%d}}\n' %
            (i, ("person", "forklift", "pallet")[i % 3], (i % 1000) / 1000.0,
             i % 640, i % 480, 32 + i % 64, 32 + i % 48, i))


def main():
    exe = find_server()
    if not exe:
        print("SKIP: clickhouse-server is not installed (Debian 12: apt-get install "
              "clickhouse-server; scripts/deps.sh lists it, so ./test.sh on a fresh "
              "machine and CI install it)")
        return 77
    t_start = time.monotonic()
    d = tempfile.mkdtemp(prefix="edgelog-ch-")
    os.makedirs(os.path.join(d, "ch"))
    ch = ClickHouse(exe, os.path.join(d, "ch"))
    feeder_err = []
    agent = None
    try:
        ch.start()
        ch.query("CREATE TABLE %s (device_id String, seq UInt64, ts Int64, data String) "
                 "ENGINE = ReplacingMergeTree ORDER BY (device_id, seq)" % TABLE)
        endpoint = ch.url + "?query=" + urllib.parse.quote(
            "INSERT INTO %s FORMAT JSONEachRow" % TABLE)
        errf = open(os.path.join(d, "agent.stderr"), "w+b")
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGELOG_")}
        agent = subprocess.Popen(
            [BIN, "run", "--dir", os.path.join(d, "buf"), "--device-id", DEVICE,
             "--endpoint", endpoint, "--data-encoding", "string", "--compression", "gzip",
             "--format", "ndjson", "--batch-size", "500", "--batch-timeout-ms", "100",
             "--retry-base-ms", "50", "--retry-max-ms", "1000", "--http-timeout-ms", "10000",
             "--drain", "--drain-timeout", "150", "--close-grace-ms", "1000"],
            stdin=subprocess.PIPE, stderr=errf, env=env)

        # Feed the records at a pace (about 4 s for all) that keeps the
        # upload going while the server is killed and restarted.
        def feed():
            try:
                for i in range(1, N + 1, 250):
                    agent.stdin.write("".join(record(j) for j in range(i, min(N + 1, i + 250)))
                                      .encode())
                    agent.stdin.flush()
                    time.sleep(0.02)
            except Exception as e:  # reported by the main thread
                feeder_err.append(repr(e))

        t = threading.Thread(target=feed)
        t.start()
        until = time.monotonic() + 60
        while ch.count() < 10000:
            assert time.monotonic() < until, "ClickHouse got under 10000 rows in 60 s"
            time.sleep(0.02)
        ch.kill()
        time.sleep(1.0)  # the agent meets a dead server: refused connections, backoff
        ch.start()
        after_restart = ch.count()
        t.join(timeout=60)
        assert not t.is_alive() and not feeder_err, feeder_err
        assert after_restart < N, "the restart came after everything was delivered"
        agent.stdin.close()
        agent.wait(timeout=max(10, DEADLINE_S - (time.monotonic() - t_start)))
        errf.seek(0)
        err = errf.read().decode(errors="replace")
        errf.close()
        assert agent.returncode == 0, "edgelog run exit %d:\n%s" % (agent.returncode, err)
        assert "%d line(s) read: %d stored, 0 bad" % (N, N) in err, err
        assert "0 dead-lettered, 0 pending" in err, err
        assert "records stay buffered" in err, "the agent never saw the outage:\n" + err

        rows_before = int(ch.query("SELECT count() FROM %s" % TABLE))
        ch.query("OPTIMIZE TABLE %s FINAL" % TABLE)
        got = ch.query("SELECT count(), uniqExact(device_id, seq), min(seq), max(seq), "
                       "uniqExact(device_id) FROM %s" % TABLE).split()
        count, uniq, lo, hi, devices = (int(x) for x in got)
        assert (count, uniq, lo, hi, devices) == (N, N, 1, N, 1), got
        # data arrived as the JSON text of each record, intact.
        sample = ch.query("SELECT data FROM %s WHERE seq = 4242 FORMAT TabSeparatedRaw" %
                          TABLE).strip()
        assert json.loads(sample) == json.loads(record(4242)), sample
        print("ok   %d records into ClickHouse, server killed and restarted with %d rows "
              "stored; %d rows before OPTIMIZE FINAL (resent duplicates), %d after; %.1f s" %
              (N, after_restart, rows_before, count, time.monotonic() - t_start))
        return 0
    finally:
        if agent and agent.poll() is None:
            agent.kill()
            agent.wait()
        ch.stop()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
