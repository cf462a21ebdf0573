"""edgelog tail / segtail: the last N records, --json, following appends and
segment rolls, clean ends (SIGINT, SIGTERM, a closed pipe), errors.

Fixed data comes from segwriter.py (segments written per FORMAT.md, fixed
salts and timestamps), live data from the real engine (`edgelog run`) and
from segwriter appending through a shared mapping, as the engine does."""
import json
import os
import queue
import signal
import stat
import subprocess
import threading
import time

import clitest
import segwriter
from clitest import BIN, run, tool

DEV = ["--device-id", "cam-7"]


def env():
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("EDGELOG_") and k not in ("EDGELOG_BIN", "EDGELOG_BIN_DIR"):
            del e[k]
    e["TZ"] = "UTC"
    return e


def make_log(d, n=300, seg_bytes=4096, gap_after=None, gap=0):
    """d/log with records 1..n (+gap after seq gap_after) in small segments."""
    w = segwriter.Writer(os.path.join(d, "log"), seg_bytes)
    for _ in range(n):
        w.append()
        if gap_after is not None and w.next_seq == gap_after + 1:
            w.skip(gap)
    w.close()
    return os.path.join(d, "log"), w


def seqs_of(json_lines):
    return [json.loads(l)["seq"] for l in json_lines.splitlines()]


def dump_json(log):
    return run(["dump", "--json"] + DEV + [log], check_rc=0).stdout.splitlines(True)


def dump_rows(log):
    return run(["dump", log], check_rc=0).stdout.splitlines(True)


class Follower:
    """`tail -f` (or segtail) in the background, its lines in a queue."""

    def __init__(self, args, exe=None):
        self.p = subprocess.Popen([exe or BIN] + (["tail"] if not exe else []) + args,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env())
        self.q = queue.Queue()
        self.t = threading.Thread(target=self._pump, daemon=True)
        self.t.start()

    def _pump(self):
        for line in self.p.stdout:
            self.q.put(line)
        self.q.put(None)

    def lines(self, n, timeout=10):
        """The next n lines; fails if they do not come in time."""
        out, end = [], time.monotonic() + timeout
        while len(out) < n:
            try:
                line = self.q.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError("tail -f: %d of %d lines after %ss: %r" %
                                     (len(out), n, timeout, out[-3:]))
            if line is None:
                raise AssertionError("tail -f ended (exit %s) after %d of %d lines: %s" %
                                     (self.p.wait(), len(out), n, self.p.stderr.read()))
            out.append(line)
        return out

    def stop(self, sig=signal.SIGINT, timeout=5):
        """Send sig; returns (exit status, stderr)."""
        self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError("tail -f still running %ss after signal %d" % (timeout, sig))
        self.t.join(5)
        return rc, self.p.stderr.read()

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


# --- the last N records -------------------------------------------------------

def test_last_3_are_dumps_last_3(d):
    log, w = make_log(d, seg_bytes=2048)
    assert len(w.segments) >= 3, w.segments
    p = run(["tail", "-n", "3", log], check_rc=0)
    rows = dump_rows(log)
    assert p.stdout.splitlines(True) == rows[:1] + rows[-3:], p.stdout
    p = run(["tail", "-n", "3", "--json"] + DEV + [log], check_rc=0)
    assert p.stdout.splitlines(True) == dump_json(log)[-3:], p.stdout
    assert seqs_of(p.stdout) == [298, 299, 300]


def test_default_is_10_and_golden(d):
    log, _ = make_log(d, n=40)
    p = run(["tail", log], check_rc=0)
    clitest.golden("tail_default.txt", p.stdout.replace(d, "D"))
    assert p.stdout.splitlines(True)[1:] == dump_rows(log)[-10:]
    p = run(["tail", "--json"] + DEV + [log], check_rc=0)
    clitest.golden("tail_default.json", p.stdout)
    assert seqs_of(p.stdout) == list(range(31, 41))


def test_every_n_across_segments_and_a_gap(d):
    # Segments of a few hundred bytes, so -n N steps back over several, and
    # a 50-seq gap in the middle of them.
    log, w = make_log(d, n=120, seg_bytes=400, gap_after=100, gap=50)
    assert len(w.segments) >= 7, w.segments
    lines = dump_json(log)
    assert seqs_of("".join(lines[-21:-19])) == [100, 151]
    for n in [1, 2, 5, 19, 20, 21, 25, 50, 119, 120]:
        p = run(["tail", "--json", "-n", str(n)] + DEV + [log], check_rc=0)
        assert p.stdout.splitlines(True) == lines[-n:], "-n %d:\n%s" % (n, p.stdout)


def test_n_larger_than_the_log(d):
    log, _ = make_log(d, n=50)
    p = run(["tail", "-n", "1000000", "--json"] + DEV + [log], check_rc=0)
    assert p.stdout.splitlines(True) == dump_json(log)
    p = run(["tail", "-n", "51", log], check_rc=0)
    assert p.stdout.splitlines(True) == dump_rows(log)


def test_n_0_prints_no_record(d):
    log, _ = make_log(d, n=50)
    p = run(["tail", "-n", "0", "--json", log], check_rc=0)
    assert p.stdout == "", p.stdout
    p = run(["tail", "-n0", log], check_rc=0)
    assert p.stdout == dump_rows(log)[0], p.stdout  # the table's header only


def test_from_seq(d):
    log, _ = make_log(d, n=60)
    p = run(["tail", "--from", "55", "--json"] + DEV + [log], check_rc=0)
    assert seqs_of(p.stdout) == [55, 56, 57, 58, 59, 60]
    assert p.stdout.splitlines(True) == dump_json(log)[-6:]


def test_empty_log(d):
    os.makedirs(os.path.join(d, "log", "segments"))
    p = run(["tail", "-n", "5", os.path.join(d, "log")], check_rc=0)
    assert p.stdout.count("\n") == 1 and p.stdout.startswith("SEQ"), p.stdout


def test_does_not_open_old_segments(d):
    # The oldest segment becomes a FIFO: opening it would block forever, so
    # tail -n 5 finishing proves it never reads the start of the backlog.
    log, w = make_log(d, n=300)
    want = dump_json(log)[-5:]
    old = w.path(w.segments[0])
    os.unlink(old)
    os.mkfifo(old)
    p = run(["tail", "-n", "5", "--json"] + DEV + [log], timeout=10, check_rc=0)
    assert p.stdout.splitlines(True) == want


def test_engine_directory(d):
    # A directory the real engine wrote: the STATE column and the
    # device_id come out as dump prints them.
    log = os.path.join(d, "eng")
    lines = "".join('{"n": %d, "label": "cat"}\n' % i for i in range(25))
    run(["run", "--dir", log, "--device-id", "cam-7", "--quiet"], stdin=lines, check_rc=0)
    p = run(["tail", "-n", "4", log], check_rc=0)
    rows = dump_rows(log)
    assert p.stdout.splitlines(True) == rows[:1] + rows[-4:], p.stdout
    last = p.stdout.splitlines()[-1].split(None, 5)
    assert last[4] == "pending" and json.loads(last[5]) == {"n": 24, "label": "cat"}, p.stdout
    e = {"EDGELOG_DEVICE_ID": "from-env"}
    p = run(["tail", "-n", "2", "--json", log], env=e, check_rc=0)
    want = run(["dump", "--json", log], env=e, check_rc=0).stdout.splitlines(True)[-2:]
    assert p.stdout.splitlines(True) == want
    assert [json.loads(l)["data"]["n"] for l in want] == [23, 24]
    assert '"device_id":"from-env"' in want[0]


def test_segtail_link(d):
    log, _ = make_log(d, n=30)
    a = run(["-n", "4", "--json"] + DEV + [log], exe=tool("segtail"), check_rc=0)
    b = run(["tail", "-n", "4", "--json"] + DEV + [log], check_rc=0)
    assert a.stdout == b.stdout and seqs_of(a.stdout) == [27, 28, 29, 30]
    p = run(["--help"], exe=tool("segtail"), check_rc=0)
    assert "segtail" in p.stdout and "-f" in p.stdout


# --- damage -------------------------------------------------------------------

def test_damage_is_reported_and_exits_1(d):
    log, w = make_log(d, n=300)
    last = w.path(w.segments[-1])
    rows = [r for r in dump_rows(log)[1:] if os.path.basename(last) in r]
    victim = rows[-3]  # third from the end
    off = int(victim.split()[3].split(":")[1])
    with open(last, "r+b") as f:
        f.seek(off + 16)
        b = f.read(1)
        f.seek(off + 16)
        f.write(bytes([b[0] ^ 0x40]))
    p = run(["tail", "-n", "4", "--json"] + DEV + [log], check_rc=1)
    seqs = seqs_of(p.stdout)
    victim_seq = int(victim.split()[0])
    assert victim_seq not in seqs and len(seqs) == 4 and seqs[-1] == 300, seqs
    assert "damaged: %s bytes %d.." % (os.path.basename(last), off) in p.stderr, p.stderr
    # Table mode: damage on stderr too, stdout stays rows only.
    p = run(["tail", "-n", "2", log], check_rc=1)
    assert "damaged" not in p.stdout and "damaged" in p.stderr


# --- errors and help ----------------------------------------------------------

def test_help(d):
    p = run(["tail", "--help"], check_rc=0)
    assert p.stdout.startswith("usage: edgelog tail"), p.stdout
    for opt in ["-n N", "-f", "--json", "--from SEQ", "Exit"]:
        assert opt in p.stdout, opt
    assert run(["tail", "-h"], check_rc=0).stdout == p.stdout


def test_usage_errors_name_the_argument(d):
    log, _ = make_log(d, n=5)
    cases = [
        (["-n", "abc", log], "-n"),
        (["-n", "-1", log], "-n"),
        (["-nx", log], "-n"),
        (["-n", "99999999999999999999999", log], "-n"),
        ([log, "-n"], "-n"),
        (["--from", "x", log], "--from"),
        (["--frobnicate", log], "--frobnicate"),
        (["-n", "3", "--from", "2", log], "--from"),
        ([log, log], "more than one"),
        ([], "DIR"),
    ]
    for args, name in cases:
        p = run(["tail"] + args, check_rc=2)
        assert name in p.stderr, (args, p.stderr)
        assert p.stdout == "", (args, p.stdout)


def test_missing_or_wrong_directory(d):
    missing = os.path.join(d, "nope")
    p = run(["tail", missing], check_rc=2)
    assert missing in p.stderr and "No such file" in p.stderr, p.stderr
    p = run(["tail", "-f", missing], timeout=10, check_rc=2)
    assert missing in p.stderr
    f = os.path.join(d, "file")
    open(f, "w").close()
    p = run(["tail", f], check_rc=2)
    assert f in p.stderr and "not a directory" in p.stderr, p.stderr
    os.mkdir(os.path.join(d, "empty"))
    p = run(["tail", os.path.join(d, "empty")], check_rc=2)
    assert "not an edgelog directory" in p.stderr, p.stderr


# --- following ----------------------------------------------------------------

def test_follow_sees_mapped_appends_and_rolls(d):
    # segwriter appends through a shared mapping (no inotify event, like the
    # engine) and rolls segments by renaming a prepared .spare into place.
    w = segwriter.Writer(os.path.join(d, "log"), 512)
    for _ in range(5):
        w.append()
    f = Follower(["-f", "-n", "2", "--json"] + DEV + [os.path.join(d, "log")])
    try:
        assert seqs_of("".join(f.lines(2))) == [4, 5]
        n0 = len(w.segments)
        for chunk in range(5):
            want = [w.append() for _ in range(40)]
            assert seqs_of("".join(f.lines(40))) == want, chunk
        assert want[-1] == 205 and len(w.segments) - n0 >= 8, w.segments
        rc, err = f.stop(signal.SIGINT)
        assert rc == 0 and err == "", (rc, err)
    finally:
        f.kill()
        w.close()


def test_follow_real_engine_across_rolls(d):
    # The engine as writer: `edgelog run` with 64 KiB segments, fed a line at
    # a time; tail -f (started before the engine's first record) must print
    # every record exactly once, in order, across the rolls.
    if run(["run", "--help"]).returncode != 0:
        print("SKIP test_follow_real_engine_across_rolls: `edgelog run` not available")
        return
    log = os.path.join(d, "eng")
    e = env()
    e["EDGELOG_SEGMENT_BYTES"] = "65536"
    # One record first, so the directory exists when tail starts.
    run(["run", "--dir", log, "--quiet"], stdin='{"n": 0}\n', env={"EDGELOG_SEGMENT_BYTES": "65536"},
        check_rc=0)
    f = Follower(["-f", "-n", "1", "--json"] + DEV + [log])
    agent = subprocess.Popen([BIN, "run", "--dir", log, "--quiet"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)
    try:
        assert seqs_of(f.lines(1)[0]) == [1]
        pad = "x" * 400
        total = 600  # ~430 bytes a record: about 4 segments of 64 KiB
        for i in range(1, total + 1):
            agent.stdin.write('{"n": %d, "pad": "%s"}\n' % (i, pad))
            if i % 50 == 0:
                agent.stdin.flush()
                got = seqs_of("".join(f.lines(50, timeout=20)))
                assert got == list(range(i - 49 + 1, i + 2)), got[:3]
        agent.stdin.close()
        assert agent.wait(timeout=30) == 0, agent.stderr.read()
        segs = [n for n in os.listdir(os.path.join(log, "segments")) if n.endswith(".seg")]
        assert len(segs) >= 3, segs
        rc, err = f.stop(signal.SIGTERM)
        assert rc == 0, (rc, err)
        # Everything tail printed equals what dump reads afterwards.
        assert seqs_of(run(["dump", "--json", log], check_rc=0).stdout) == \
            list(range(1, total + 2))
    finally:
        f.kill()
        if agent.poll() is None:
            agent.kill()
            agent.wait()


def test_follow_pipe_to_head_ends(d):
    # Nothing is appended: tail must notice that head went away on its own.
    log, _ = make_log(d, n=30)
    for exe in ["'%s' tail" % BIN, "'%s'" % tool("segtail")]:
        cmd = "%s -f --json '%s' | head -n 3" % (exe, log)
        t0 = time.monotonic()
        p = subprocess.run(["bash", "-c", "set -o pipefail; " + cmd],
                           capture_output=True, text=True, timeout=10, env=env())
        assert time.monotonic() - t0 < 5, time.monotonic() - t0
        assert len(p.stdout.splitlines()) == 3, p.stdout
        assert p.returncode == 0, (p.returncode, p.stderr)


def test_output_closed_early_is_a_clean_end(d):
    # Without -f: far more output than a pipe holds, head takes one line;
    # the write that fails with EPIPE ends tail with status 0, not SIGPIPE.
    log, _ = make_log(d, n=3000, seg_bytes=65536)
    cmd = "'%s' tail -n 3000 --json '%s' | head -n 1" % (BIN, log)
    p = subprocess.run(["bash", "-c", "set -o pipefail; " + cmd], capture_output=True,
                       text=True, timeout=10, env=env())
    assert p.returncode == 0 and p.stderr == "", (p.returncode, p.stderr)
    assert seqs_of(p.stdout) == [1]


def test_follow_pipe_closed_while_writing(d):
    # A writer keeps appending while the pipe's reader is gone: the next
    # write fails with EPIPE and tail ends with status 0.
    w = segwriter.Writer(os.path.join(d, "log"), 4096)
    w.append()
    p = subprocess.Popen([BIN, "tail", "-f", "--json", os.path.join(d, "log")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    try:
        p.stdout.readline()
        p.stdout.close()
        for _ in range(50):
            w.append()
        assert p.wait(timeout=5) == 0
        assert p.stderr.read() == b""
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        w.close()


def test_follow_ends_on_sigint_and_sigterm(d):
    log, _ = make_log(d, n=30)
    for sig in [signal.SIGINT, signal.SIGTERM]:
        f = Follower(["-f", "-n", "1", log])
        try:
            assert f.lines(2)[0].startswith("SEQ")
            time.sleep(0.3)  # now waiting in the follow loop
            rc, err = f.stop(sig)
            assert rc == 0 and err == "", (sig, rc, err)
        finally:
            f.kill()


def test_follow_with_n_0_prints_only_new(d):
    w = segwriter.Writer(os.path.join(d, "log"), 4096)
    for _ in range(20):
        w.append()
    f = Follower(["-f", "-n", "0", "--json"] + DEV + [os.path.join(d, "log")])
    try:
        time.sleep(0.5)
        w.append()
        w.append()
        assert seqs_of("".join(f.lines(2))) == [21, 22]
        assert f.stop()[0] == 0
    finally:
        f.kill()
        w.close()


if __name__ == "__main__":
    clitest.main()
