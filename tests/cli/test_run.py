"""edgelog run: the agent. JSON lines and msgpack in, bad input reported and
skipped, signals, --drain to the real sink."""
import json
import os
import signal
import subprocess
import time

import clitest
from clitest import BIN, DEV_BIN, run


def run_b(args, data, check_rc):
    """run() with bytes on stdin; stderr as text."""
    p = run(args, stdin=data, check_rc=check_rc)
    p.stderr = p.stderr.decode()
    return p


def dump(d):
    p = run(["dump", "--json", d], check_rc=0)
    return [json.loads(l) for l in p.stdout.splitlines()]


def test_help(d):
    p = run(["run", "--help"], check_rc=0)
    assert p.stdout.startswith("usage: edgelog run"), p.stdout
    assert "--drain" in p.stdout and "--input-format" in p.stdout


def test_bad_line_in_the_middle(d):
    data = '{"i":1}\n{"i":2}\n\n{"i":3,\n[4]\n"five"\n'
    p = run(["run", "--dir", "buf"], stdin=data, check_rc=1)
    assert "stdin line 4:" in p.stderr, p.stderr
    assert "invalid JSON at byte" in p.stderr, p.stderr
    assert "6 line(s) read: 4 stored, 1 bad, 1 empty" in p.stderr, p.stderr
    recs = dump("buf")
    assert [r["data"] for r in recs] == [{"i": 1}, {"i": 2}, [4], "five"], recs
    assert [r["seq"] for r in recs] == [1, 2, 3, 4]


def test_all_good_exits_0_and_last_line_needs_no_newline(d):
    p = run(["run", "--dir", "buf"], stdin='1\r\n{"a":[true,null]}\n  \n"x"', check_rc=0)
    assert "4 line(s) read: 3 stored, 0 bad, 1 empty" in p.stderr, p.stderr
    assert [r["data"] for r in dump("buf")] == [1, {"a": [True, None]}, "x"]


def test_empty_input(d):
    p = run(["run", "--dir", "buf"], stdin="", check_rc=0)
    assert "0 line(s) read: 0 stored, 0 bad" in p.stderr, p.stderr
    assert dump("buf") == []


def test_overlong_line_is_skipped(d):
    big = '"' + "x" * (1 << 20) + '"'  # JSON text longer than EDGELOG_MAX_RECORD
    data = '1\n' + big + '\n2\n' + big  # also one at the end, unterminated
    p = run(["run", "--dir", "buf"], stdin=data, check_rc=1)
    assert "stdin line 2: longer than EDGELOG_MAX_RECORD" in p.stderr, p.stderr
    assert "stdin line 4: longer than EDGELOG_MAX_RECORD" in p.stderr, p.stderr
    assert "4 line(s) read: 2 stored, 2 bad" in p.stderr, p.stderr
    assert [r["data"] for r in dump("buf")] == [1, 2]


def test_input_file(d):
    with open("in.jsonl", "w") as f:
        f.write('{"k":"v"}\n[1,2,3]\n')
    p = run(["run", "--dir", "buf", "--input", "in.jsonl"], check_rc=0)
    assert "2 line(s) read: 2 stored, 0 bad" in p.stderr, p.stderr
    assert [r["data"] for r in dump("buf")] == [{"k": "v"}, [1, 2, 3]]


def test_bad_line_in_file_names_the_file(d):
    with open("in.jsonl", "w") as f:
        f.write('1\nnope\n')
    p = run(["run", "--dir", "buf", "--input", "in.jsonl"], check_rc=1)
    assert "in.jsonl line 2:" in p.stderr, p.stderr


def test_missing_input_file(d):
    p = run(["run", "--dir", "buf", "--input", "no-such-file.jsonl"], check_rc=2)
    assert "no-such-file.jsonl" in p.stderr, p.stderr
    assert not os.path.exists("buf")
    os.mkdir("adir")
    p = run(["run", "--dir", "buf", "--input", "adir"], check_rc=2)
    assert "adir" in p.stderr, p.stderr


def test_invalid_env_var(d):
    p = run(["run", "--dir", "buf"], stdin="1\n", env={"EDGELOG_SYNC": "sometimes"},
            check_rc=2)
    assert "EDGELOG_SYNC" in p.stderr, p.stderr
    p = run(["run", "--dir", "buf"], stdin="1\n", env={"EDGELOG_BATCH_SIZE": "lots"},
            check_rc=2)
    assert "EDGELOG_BATCH_SIZE" in p.stderr, p.stderr


def test_flags_win_over_env(d):
    run(["run", "--dir", "buf", "--device-id", "flag"], stdin="1\n",
        env={"EDGELOG_DIR": "envdir", "EDGELOG_DEVICE_ID": "env"}, check_rc=0)
    assert not os.path.exists("envdir")
    assert dump("buf")[0]["data"] == 1
    # An env-only setting is used.
    run(["run"], stdin="2\n", env={"EDGELOG_DIR": "envdir"}, check_rc=0)
    assert dump("envdir")[0]["data"] == 2


def test_bad_flags(d):
    for args, name in ([["--frobnicate"], "--frobnicate"],
                       [["--input-format", "xml"], "--input-format"],
                       [["--sync", "sometimes"], "--sync"],
                       [["--batch-size", "0"], "--batch-size"],
                       [["--batch-size", "ten"], "--batch-size"],
                       [["--drain-timeout", "-1"], "--drain-timeout"],
                       [["--dir"], "--dir"],
                       [["stray"], "stray"]):
        p = run(["run", "--dir", "buf"] + args, stdin="1\n", check_rc=2)
        assert name in p.stderr, (args, p.stderr)


def test_flag_messages_word_for_word(d):
    """Every kind of option (number, choice, string, run's own) says the
    same thing for the same mistake; an empty --endpoint means buffer only."""
    cases = [
        (["--batch-size"], "--batch-size needs a value"),
        (["--segment-bytes", "5"], "--segment-bytes: 5 is outside 65536..1073741824"),
        (["--sync"], "--sync needs a value"),
        (["--format", "xml"], "--format: 'xml' is not one of ndjson, json, msgpack"),
        (["--compression", "zstd"], "--compression: 'zstd' is not one of gzip, none"),
        (["--data-encoding", "x"], "--data-encoding: 'x' is not one of object, string"),
        (["--full-policy", "x"], "--full-policy: 'x' is not one of drop_oldest, reject"),
        (["--endpoint"], "--endpoint needs a value"),
        (["--ca-file"], "--ca-file needs a value"),
        (["--dir", ""], "--dir: empty"),
        (["--input"], "--input needs a value"),
        (["--input-format", "xml"], "--input-format: 'xml' is not one of json, msgpack"),
        (["--drain-timeout"], "--drain-timeout needs a value"),
        (["--nope", "1"], "unknown option '--nope' (see --help)"),
    ]
    for args, msg in cases:
        p = run(["run", "--dir", "buf"] + args, stdin="1\n", check_rc=2)
        assert p.stderr == "edgelog run: %s\n" % msg, (args, p.stderr)
    run(["run", "--dir", "buf", "--endpoint", "", "--sync", "none", "--format", "json",
         "--full-policy", "reject", "--device-id", "cam"], stdin="1\n", check_rc=0)
    assert [r["data"] for r in dump("buf")] == [1]


def test_drain_needs_an_endpoint(d):
    p = run(["run", "--dir", "buf", "--drain"], stdin="1\n", check_rc=2)
    assert "--drain" in p.stderr and "endpoint" in p.stderr, p.stderr


def mp_str(s):
    b = s.encode()
    if len(b) < 32:
        return bytes([0xa0 | len(b)]) + b
    if len(b) < 65536:
        return b"\xda" + len(b).to_bytes(2, "big") + b
    return b"\xdb" + len(b).to_bytes(4, "big") + b


def mp_map(items):
    out = bytes([0x80 | len(items)])
    for k, v in items:
        out += mp_str(k) + v
    return out


def test_msgpack_input(d):
    objs = [mp_map([("i", b"\x01"), ("label", mp_str("cat"))]),
            b"\x93\x01\xcd\x01\x00\xa3abc",              # [1, 256, "abc"]
            b"\xc0",                                      # nil
            mp_map([("big", b"\xcb" + b"\x40\x09\x21\xfb\x54\x44\x2d\x18")])]  # 3.14159...
    with open("in.mp", "wb") as f:
        f.write(b"".join(objs))
    p = run(["run", "--dir", "buf", "--input", "in.mp", "--input-format", "msgpack"],
            check_rc=0)
    assert "4 object(s) read: 4 stored, 0 bad" in p.stderr, p.stderr
    got = [r["data"] for r in dump("buf")]
    assert got[:3] == [{"i": 1, "label": "cat"}, [1, 256, "abc"], None], got
    assert abs(got[3]["big"] - 3.141592653589793) < 1e-12, got


def test_msgpack_oversized_object_skipped_then_bad_byte_stops(d):
    big = mp_str("y" * (1 << 20 + 1))  # 2 MiB string: over EDGELOG_MAX_RECORD
    data = b"\x01" + big + b"\x02" + b"\xc1" + b"\x03"
    p = run_b(["run", "--dir", "buf", "--input-format", "msgpack"], data, 1)
    assert "stdin object 2: at byte 1: larger than EDGELOG_MAX_RECORD" in p.stderr, p.stderr
    off = 1 + len(big) + 1
    assert ("stdin object 4: at byte %d: not msgpack (byte 0xc1 at offset %d)" % (off, off)
            in p.stderr), p.stderr
    assert "4 object(s) read: 2 stored, 2 bad" in p.stderr, p.stderr
    assert [r["data"] for r in dump("buf")] == [1, 2]


def test_msgpack_truncated_at_end(d):
    p = run_b(["run", "--dir", "buf", "--input-format", "msgpack"], b"\x07\x92\x01", 1)
    assert "stdin object 2: at byte 1: cut short by the end of input" in p.stderr, p.stderr
    assert [r["data"] for r in dump("buf")] == [7]


def test_msgpack_too_deep_stops(d):
    p = run_b(["run", "--dir", "buf", "--input-format", "msgpack"],
              b"\x05" + b"\x91" * 300 + b"\x01", 1)
    assert "stdin object 2" in p.stderr and "nested too deep" in p.stderr, p.stderr
    assert [r["data"] for r in dump("buf")] == [5]


def env_clean():
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("EDGELOG_"):
            del e[k]
    return e


def wait_records(d, n, timeout=20):
    until = time.time() + timeout
    while time.time() < until:
        if os.path.exists(d) and len(dump(d)) >= n:
            return
        time.sleep(0.05)
    raise AssertionError("%d records never showed up in %s" % (n, d))


def agent(args):
    return subprocess.Popen([BIN, "run"] + args, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_clean())


def finish(p):
    """Wait for the agent with its stdin still open (not communicate(),
    which would close it and race the signal with end of input)."""
    p.wait(timeout=20)
    err = p.stderr.read().decode()
    p.stdin.close()
    p.stdout.close()
    p.stderr.close()
    return err


def test_sigterm_while_the_pipe_stays_open(d):
    for sig in (signal.SIGTERM, signal.SIGINT):
        buf = "buf%d" % sig
        p = agent(["--dir", buf])
        p.stdin.write(b'{"n":1}\n{"n":2}\n')
        p.stdin.flush()
        wait_records(buf, 2)
        p.send_signal(sig)
        err = finish(p)
        assert p.returncode == 0, (p.returncode, err)
        assert "closing" in err and "2 line(s) read: 2 stored, 0 bad" in err, err
        assert [r["data"] for r in dump(buf)] == [{"n": 1}, {"n": 2}]
        # Closed cleanly: the directory opens again at once (lock released).
        run(["run", "--dir", buf], stdin="3\n", check_rc=0)


def test_sigterm_cuts_a_line_short(d):
    p = agent(["--dir", "buf"])
    p.stdin.write(b'{"n":1}\n{"n":')
    p.stdin.flush()
    wait_records("buf", 1)
    time.sleep(0.2)  # let it read the half line too
    p.send_signal(signal.SIGTERM)
    err = finish(p)
    assert p.returncode == 1, (p.returncode, err)
    assert "stdin line 2: unfinished when the signal came" in err, err
    assert [r["data"] for r in dump("buf")] == [{"n": 1}]


class Sink:
    """`edgelog sink` on a free loopback port (it binds port 0 and says which)."""

    def __init__(self, out, extra=()):
        self.out = out
        self.p = subprocess.Popen([DEV_BIN, "sink", "--listen", "127.0.0.1:0", "--out", out,
                                   "--quiet"] + list(extra), stdout=subprocess.PIPE,
                                  env=env_clean())
        line = self.p.stdout.readline().decode()
        assert line.startswith("listening on 127.0.0.1:"), line
        self.port = int(line.strip().rsplit(":", 1)[1])
        self.url = "http://127.0.0.1:%d/ingest" % self.port

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        assert self.p.wait(timeout=20) == 0
        self.p.stdout.close()

    def records(self):
        with open(os.path.join(self.out, "records.ndjson")) as f:
            return [json.loads(l) for l in f]


def test_drain_delivers_everything_once(d):
    sink = Sink("sink-out")
    try:
        n = 5000
        data = "".join('{"i":%d}\n' % i for i in range(1, n + 1))
        p = run(["run", "--dir", "buf", "--device-id", "cam-7", "--endpoint", sink.url,
                 "--drain", "--drain-timeout", "30", "--close-grace-ms", "1"],
                stdin=data, check_rc=0)
        assert "%d line(s) read: %d stored, 0 bad" % (n, n) in p.stderr, p.stderr
        assert "%d delivered, 0 dead-lettered, 0 pending" % n in p.stderr, p.stderr
        assert "drained" in p.stderr, p.stderr  # quiet one-line summary: not a terminal
        assert "\r" not in p.stderr
        recs = sink.records()
        seqs = sorted(r["seq"] for r in recs)
        assert seqs == list(range(1, n + 1)), (len(seqs), seqs[:5])
        assert all(r["device_id"] == "cam-7" and r["data"] == {"i": r["seq"]} for r in recs)
        # A second run with nothing new: drains at once, still exit 0.
        p = run(["run", "--dir", "buf", "--endpoint", sink.url, "--drain"], stdin="",
                check_rc=0)
    finally:
        sink.stop()
    st = run(["dump", "--json", "buf"], check_rc=0)
    assert len(st.stdout.splitlines()) == n


def test_drain_timeout_with_nobody_listening(d):
    sink = Sink("sink-out")
    url = sink.url
    sink.stop()  # the port is now closed: connections are refused
    p = run(["run", "--dir", "buf", "--endpoint", url, "--drain", "--drain-timeout", "1",
             "--close-grace-ms", "200"], stdin="1\n2\n", check_rc=1)
    assert "drain timed out: 2 record(s) not delivered" in p.stderr, p.stderr
    assert "2 line(s) read: 2 stored, 0 bad" in p.stderr, p.stderr
    # Nothing lost: still buffered for the next run.
    assert [r["data"] for r in dump("buf")] == [1, 2]


def test_drain_counts_dead_letters_and_exits_1(d):
    # Every record refused for good (422): nothing pending, yet nothing
    # delivered either; the summary says so and the exit status is 1.
    sink = Sink("sink-out", ["--reject-if", "i=1", "--reject-if", "i=2"])
    try:
        p = run(["run", "--dir", "buf", "--endpoint", sink.url, "--drain",
                 "--drain-timeout", "30", "--close-grace-ms", "1"],
                stdin='{"i":1}\n{"i":2}\n', check_rc=1)
    finally:
        sink.stop()
    assert "2 line(s) read: 2 stored, 0 bad" in p.stderr, p.stderr
    assert "0 delivered, 2 dead-lettered, 0 pending" in p.stderr, p.stderr
    assert "2 record(s) of this run refused by the endpoint" in p.stderr, p.stderr
    # A later run that dead-letters nothing new exits 0 again.
    sink = Sink("sink-out2")
    try:
        p = run(["run", "--dir", "buf", "--endpoint", sink.url, "--drain",
                 "--drain-timeout", "30"], stdin='{"i":3}\n', check_rc=0)
    finally:
        sink.stop()
    assert "1 delivered, 0 dead-lettered, 0 pending" in p.stderr, p.stderr


def nested_key_record(levels):
    """Issue 9, defect 1: LEVELS maps, each the key of the next (82 bytes
    for 40), and the data its JSON must be: the inner maps' key text,
    escaped once."""
    rec = b"\x81" * (levels - 1) + b"\x81\xa1k\x00" + b"\xc0" * (levels - 1)
    text = "{" * (levels - 2) + '{"k":0}' + ":null}" * (levels - 2)
    return rec, {text: None}


def test_nested_map_keys_record_delivered(d):
    rec, want = nested_key_record(40)
    assert len(rec) == 82
    with open("in.mp", "wb") as f:
        f.write(mp_map([("i", b"\x01")]) + rec + mp_map([("i", b"\x03")]))
    sink = Sink("sink-out")
    try:
        t0 = time.monotonic()
        p = run(["run", "--dir", "buf", "--input", "in.mp", "--input-format", "msgpack",
                 "--endpoint", sink.url, "--drain", "--drain-timeout", "20"],
                check_rc=0, timeout=40)
        assert time.monotonic() - t0 < 20, p.stderr
        assert "3 delivered, 0 dead-lettered, 0 pending" in p.stderr, p.stderr
        recs = sorted(sink.records(), key=lambda r: r["seq"])
        assert [r["data"] for r in recs] == [{"i": 1}, want, {"i": 3}], recs
    finally:
        sink.stop()
    # The tools write the same JSON, in bounded time and size.
    p = run(["dump", "--json", "buf"], check_rc=0, timeout=20)
    assert [json.loads(l)["data"] for l in p.stdout.splitlines()] == [{"i": 1}, want, {"i": 3}]
    assert len(p.stdout) < 4096, len(p.stdout)
    p = run(["tail", "--json", "-n", "2", "buf"], check_rc=0, timeout=20)
    assert [json.loads(l)["data"] for l in p.stdout.splitlines()] == [want, {"i": 3}]


if __name__ == "__main__":
    clitest.main()
