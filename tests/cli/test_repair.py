"""edgelog repair on each kind of damage (torn tail, a flipped byte in a
middle frame, a bad segment header in the middle and at the end, a missing
and an unreadable cursor, a truncated file), each followed by `dump
--verify` (exit 0) and a count of the surviving records; the lock while an
engine runs; the default directory; usage errors."""
import fcntl
import json
import os
import subprocess
import time

import clitest
import segwriter
from clitest import run

# The default directory comes from the environment: keep this one's out.
os.environ.pop("BUFFER_DB_PATH", None)

SEG = segwriter.seg_name


def make(d="buf", n=40):
    """n records in 512-byte segments (bases 1, 13, 25, 37), then a cursor
    written by the engine itself (`edgelog run` on empty input)."""
    w = segwriter.Writer(d, seg_bytes=512)
    for i in range(1, n + 1):
        w.append({"i": i, "label": "cat" if i % 3 else "dog", "score": 50 + i % 50})
    w.close()
    run(["run", "--dir", d, "--quiet"], stdin="", check_rc=0)
    assert os.path.exists(os.path.join(d, "cursor"))
    return w


def seqs(d):
    p = run(["dump", "--json", "--device-id", "x", d], check_rc=None)
    return [json.loads(line)["seq"] for line in p.stdout.splitlines()]


def verify_ok(d, records):
    p = run(["dump", "--verify", d], check_rc=0)
    last = p.stdout.splitlines()[-1]
    assert last.startswith("%d records" % records) and last.endswith(": OK"), p.stdout
    return p


def repair(d="buf", rc=0):
    return run(["repair", d], check_rc=rc)


def lines(p):
    return p.stdout.splitlines()


def test_torn_tail(d):
    w = make()
    last = w.path(37)
    off, size = segwriter.frames(last)[-1]
    end = off + size
    with open(last, "r+b") as f:
        f.seek(end)
        f.write(b"\x11" * 9)
    run(["dump", "--verify", "buf"], check_rc=1)
    p = repair()
    assert lines(p) == [
        "repairing buf",
        "  torn tail: segments/%s offset %d, 9 bytes saved to quarantine/%s.%d.bad and zeroed"
        % (SEG(37), end, SEG(37), end),
        "  cursor: counters and gaps updated (acked_seq 0 kept)",
        "repaired: 4 segment(s) examined, 40 record(s) kept, 1 torn tail(s) (9 bytes), "
        "0 damaged range(s) (0 bytes), 0 bad segment(s), 0 lost seq range(s); seq 1..40",
        "quarantined bytes are in buf/quarantine (nothing was deleted)",
    ], p.stdout
    assert open("buf/quarantine/%s.%d.bad" % (SEG(37), end), "rb").read() == b"\x11" * 9
    assert open(last, "rb").read()[end:] == bytes(512 - end)
    verify_ok("buf", 40)
    assert seqs("buf") == list(range(1, 41))
    p = repair()
    assert lines(p)[-1] == "nothing to repair: 4 segment(s), 40 record(s); seq 1..40", p.stdout


def test_flipped_byte_in_middle_frame(d):
    w = make()
    seg = w.path(13)
    off, size = segwriter.frames(seg)[3]  # seq 16
    segwriter.flip(seg, off + 20)
    damaged = open(seg, "rb").read()[off:off + size]
    run(["dump", "--verify", "buf"], check_rc=1)
    p = repair()
    assert lines(p)[1:5] == [
        "  damaged: segments/%s offset %d, %d bytes moved to quarantine/%s.%d.bad"
        % (SEG(13), off, size, SEG(13), off),
        "  rewrote segments/%s with only the frames that verify" % SEG(13),
        "  lost: seq 16..16 (1 record) no longer stored; recorded in quarantine/lost-seqs",
        "  cursor: counters and gaps updated (acked_seq 0 kept)",
    ], p.stdout
    assert "39 record(s) kept" in p.stdout and "1 lost seq range(s)" in p.stdout
    assert open("buf/quarantine/%s.%d.bad" % (SEG(13), off), "rb").read() == damaged
    p = verify_ok("buf", 39)
    assert "gap: seq 16..16 missing" in p.stdout and "accounted for" in p.stdout
    assert seqs("buf") == [s for s in range(1, 41) if s != 16]


def test_bad_header_in_middle_segment(d):
    w = make()
    segwriter.flip(w.path(25), 30)
    orig = open(w.path(25), "rb").read()
    p = repair()
    assert lines(p)[1:3] == [
        "  bad segment: segments/%s (512 bytes, header damaged) moved to quarantine/%s.bad"
        % (SEG(25), SEG(25)),
        "  lost: seq 25..36 (12 records) no longer stored; recorded in quarantine/lost-seqs",
    ], p.stdout
    assert open("buf/quarantine/%s.bad" % SEG(25), "rb").read() == orig
    assert not os.path.exists(w.path(25))
    verify_ok("buf", 28)
    assert seqs("buf") == list(range(1, 25)) + list(range(37, 41))


def test_bad_header_in_newest_segment(d):
    w = make()
    segwriter.flip(w.path(37), 30)
    # A reader takes a bad header on the newest segment for one being
    # created; verify looks again and calls it damage.
    run(["dump", "--verify", "buf"], check_rc=1)
    p = repair()
    assert "bad segment: segments/%s (512 bytes, header damaged)" % SEG(37) in p.stdout
    assert "lost:" not in p.stdout  # nothing stored follows it
    verify_ok("buf", 36)
    # Its records may have been uploaded: their seqs are never reused.
    run(["run", "--dir", "buf", "--quiet"], stdin='{"after": 1}\n', check_rc=0)
    s = seqs("buf")
    assert s[-1] > 37 + (512 - 64) // 17, s[-1]
    verify_ok("buf", 37)


def test_missing_cursor(d):
    make()
    os.unlink("buf/cursor")
    p = repair()
    assert lines(p)[1] == ("  cursor: missing; rebuilt with acked_seq 0 (every stored record "
                           "will be sent again), last_seq 40"), p.stdout
    assert lines(p)[2].endswith("0 lost seq range(s), cursor rebuilt; seq 1..40"), p.stdout
    verify_ok("buf", 40)


def test_garbage_cursor(d):
    make()
    junk = b"\xab" * 1024
    with open("buf/cursor", "wb") as f:
        f.write(junk)
    p = run(["dump", "--verify", "buf"], check_rc=1)
    assert "cursor: no valid slot" in p.stdout, p.stdout
    p = repair()
    assert "cursor: unreadable; rebuilt with acked_seq 0" in p.stdout, p.stdout
    assert "the old file saved to quarantine/" in p.stdout
    assert open("buf/quarantine/cursor.bad", "rb").read() == junk
    verify_ok("buf", 40)


def test_truncated_file(d):
    w = make()
    seg = w.path(13)
    off, size = segwriter.frames(seg)[5]  # seq 18: cut 10 bytes into it
    os.truncate(seg, off + 10)
    # The tail reaches its last non-zero byte (zeros need no saving).
    cut = len(open(seg, "rb").read()[off:].rstrip(b"\0"))
    p = repair()
    assert lines(p)[1:3] == [
        "  damaged tail: segments/%s offset %d, %d bytes moved to quarantine/%s.%d.bad"
        % (SEG(13), off, cut, SEG(13), off),
        "  lost: seq 18..24 (7 records) no longer stored; recorded in quarantine/lost-seqs",
    ], p.stdout
    verify_ok("buf", 33)
    # A segment cut to less than its header.
    os.truncate(w.path(25), 20)
    p = repair()
    assert "bad segment: segments/%s (20 bytes, shorter than a segment header)" % SEG(25) \
        in p.stdout, p.stdout
    verify_ok("buf", 21)


def test_engine_directory_repaired_then_appended_to(d):
    lines_in = "".join('{"i": %d, "pad": "%s"}\n' % (i, "x" * 300) for i in range(1, 301))
    env = {"EDGELOG_SEGMENT_BYTES": "65536"}
    run(["run", "--dir", "eng", "--quiet"], stdin=lines_in, env=env, check_rc=0)
    segs = sorted(n for n in os.listdir("eng/segments") if n.endswith(".seg"))
    assert len(segs) >= 2, segs
    first = os.path.join("eng/segments", segs[0])
    off, size = segwriter.frames(first)[10]
    segwriter.flip(first, off + 40)
    run(["dump", "--verify", "eng"], check_rc=1)
    p = repair("eng")
    assert "299 record(s) kept" in p.stdout, p.stdout
    verify_ok("eng", 299)
    run(["run", "--dir", "eng", "--quiet"], stdin='{"after": 1}\n', env=env, check_rc=0)
    s = seqs("eng")
    assert len(s) == 300 and s[-1] == 301 and 11 not in s, s[-3:]
    verify_ok("eng", 300)


def test_refuses_while_an_engine_holds_the_directory(d):
    make()
    e = dict(os.environ)
    e.pop("EDGELOG_DIR", None)
    agent = subprocess.Popen([clitest.BIN, "run", "--dir", "buf", "--quiet"],
                             stdin=subprocess.PIPE, env=e)
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if open("buf/LOCK").read().strip() == str(agent.pid):
                    break
            except OSError:
                pass
            time.sleep(0.02)
        else:
            raise AssertionError("the agent did not take the lock")
        p = repair(rc=1)
        assert ("in use by process %d" % agent.pid) in p.stderr, p.stderr
        # Issue 9 item 11: nothing claims a repair the lock refused.
        assert "repairing" not in p.stdout, p.stdout
        assert not os.path.exists("buf/quarantine")
    finally:
        agent.stdin.close()
        assert agent.wait(timeout=60) == 0
    p = repair()
    assert lines(p)[-1] == "nothing to repair: 4 segment(s), 40 record(s); seq 1..40", p.stdout


def test_lock_is_the_flock_not_the_pid_in_the_file(d):
    make()
    # A LOCK left by a dead engine names a pid but nobody holds it.
    with open("buf/LOCK", "w") as f:
        f.write("999999\n")
    repair(rc=0)
    # Held (as the engine holds it): refused, naming the pid in the file.
    fd = os.open("buf/LOCK", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d\n" % os.getpid(), 0)
        p = repair(rc=1)
        assert ("in use by process %d" % os.getpid()) in p.stderr, p.stderr
    finally:
        os.close(fd)


def test_default_directory_from_the_environment(d):
    make()
    os.unlink("buf/cursor")
    p = run(["repair"], env={"EDGELOG_DIR": "buf"}, check_rc=0)
    assert lines(p)[0] == "repairing buf" and "cursor rebuilt" in p.stdout, p.stdout
    p = run(["repair", "--dir", "buf"], check_rc=0)
    assert "nothing to repair" in p.stdout
    # The old client's variable, and the built-in default.
    p = run(["repair"], env={"BUFFER_DB_PATH": os.path.abspath("buf")}, check_rc=0)
    assert "nothing to repair" in p.stdout
    p = run(["repair"], check_rc=2)
    assert "./edgelog-data" in p.stderr, p.stderr
    p = run(["repair"], env={"EDGELOG_DIR": ""}, check_rc=2)
    assert "EDGELOG_DIR" in p.stderr, p.stderr


def test_usage(d):
    p = run(["repair", "--help"], check_rc=0)
    assert p.stdout.startswith("usage: edgelog repair") and "quarantine" in p.stdout
    p = run(["repair", "--frobnicate"], check_rc=2)
    assert "--frobnicate" in p.stderr
    p = run(["repair", "a", "b"], check_rc=2)
    assert "'a'" in p.stderr and "'b'" in p.stderr
    p = run(["repair", "--dir"], check_rc=2)
    assert "--dir" in p.stderr
    p = run(["repair", "missing"], check_rc=2)
    assert "missing" in p.stderr
    os.mkdir("plain")
    p = run(["repair", "plain"], check_rc=2)
    assert "not an edgelog directory" in p.stderr and "plain" in p.stderr
    assert os.listdir("plain") == []


def test_repeated_power_cuts_record_a_gap_once(d):
    """Issue 9 defect 6: each open that found the cursor ahead of the data
    recorded the same gap again and evicted a real one from the cursor's
    four slots; verify then called a healthy log DAMAGED and repair listed
    a seq that never held a durable record as lost."""

    def feed(first, last):
        text = "".join('{"i": %d}\n' % i for i in range(first, last + 1))
        run(["run", "--dir", "buf", "--quiet"], stdin=text, check_rc=0)

    def zero_newest_frame():
        segs = sorted(n for n in os.listdir("buf/segments") if n.endswith(".seg"))
        path = os.path.join("buf/segments", segs[-1])
        off, size = segwriter.frames(path)[-1]
        with open(path, "r+b") as f:
            f.seek(off)
            f.write(bytes(size))

    feed(1, 3)
    zero_newest_frame()  # seq 3 lost in a power cut: a real gap
    feed(4, 6)
    zero_newest_frame()  # seq 6 too
    for _ in range(5):
        run(["run", "--dir", "buf", "--quiet"], stdin="", check_rc=0)
    assert seqs("buf") == [1, 2, 4, 5]
    verify_ok("buf", 4)
    p = repair()
    assert "lost" not in p.stdout, p.stdout
    verify_ok("buf", 4)



def test_zero_byte_segments_after_a_power_cut_at_a_roll_are_stillborn(d):
    """Issue 9 defect 7: files created at a roll whose content a power cut
    took are stillborn everywhere: verify is clean, repair removes them
    without calling them corrupt, status counts nothing."""
    make()
    for base in (41, 42):
        open(os.path.join("buf/segments", SEG(base)), "wb").close()
    with open(os.path.join("buf/segments", SEG(43)), "wb") as f:
        f.write(bytes(4096))  # preallocated, header never written
    verify_ok("buf", 40)
    run(["dump", "--verify", os.path.join("buf/segments", SEG(41))], check_rc=0)
    p = repair()
    assert p.stdout.count("stillborn: segments/") == 3, p.stdout
    assert "bad segment" not in p.stdout and "corrupt" not in p.stdout, p.stdout
    assert not os.path.exists("buf/quarantine"), os.listdir("buf")
    assert sorted(os.listdir("buf/segments")) == [SEG(b) for b in (1, 13, 25, 37)]
    verify_ok("buf", 40)
    st = json.loads(run(["status", "--json", "--dir", "buf"], check_rc=0).stdout)
    assert st["corrupt"] == 0 and st["pending"] == 40, st
    # No seq up to the stillborn files' bases is handed out again.
    run(["run", "--dir", "buf", "--quiet"], stdin='{"i": 1}\n', check_rc=0)
    assert seqs("buf")[-1] > 43, seqs("buf")

if __name__ == "__main__":
    clitest.main()
