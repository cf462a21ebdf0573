"""edgelog dump: the table and --stats against golden files (deterministic
segments from segwriter.py: fixed salts and timestamps), --verify with gaps
that are and are not accounted for, and --recover from damaged directories
and single segment files."""
import json
import os

import clitest
import segwriter
from clitest import run, golden


def make(d, n=40, seg_bytes=512, skip_after=None, skip=0):
    """n small records in several segments; returns the Writer (closed)."""
    w = segwriter.Writer(d, seg_bytes=seg_bytes)
    for i in range(1, n + 1):
        w.append({"i": i, "label": "cat" if i % 3 else "dog", "score": 50 + i % 50})
        if skip_after == i:
            w.skip(skip)
    w.close()
    return w


def json_records(path):
    p = run(["dump", "--json", "--device-id", "cam-1", path], check_rc=None)
    return [json.loads(line) for line in p.stdout.splitlines()]


def test_table_golden(d):
    make("buf", skip_after=20, skip=2)
    p = run(["dump", "buf"], check_rc=0)
    golden("dump_table.txt", p.stdout)


def test_stats_golden(d):
    make("buf")
    p = run(["dump", "--stats", "buf"], check_rc=0)
    golden("dump_stats.txt", p.stdout)


def test_stats_counts_damage_per_segment(d):
    w = make("buf")
    second = w.path(w.segments[1])
    off, size = segwriter.frames(second)[2]
    segwriter.flip(second, off + 18)
    p = run(["dump", "--stats", "buf"], check_rc=1)
    golden("dump_stats_damaged.txt", p.stdout)


def test_stats_of_one_segment_file(d):
    w = make("buf")
    p = run(["dump", "--stats", w.path(w.segments[0])], check_rc=0)
    rows = [l for l in p.stdout.splitlines() if l.startswith(segwriter.seg_name(1))]
    assert len(rows) == 1, p.stdout
    assert "total " in p.stdout


def test_verify_gap_is_damage_unless_accounted_for(d):
    make("buf", skip_after=20, skip=2)
    p = run(["dump", "--verify", "buf"], check_rc=1)
    assert "gap: seq 21..22 missing" in p.stdout, p.stdout
    assert p.stdout.endswith(": DAMAGED\n"), p.stdout
    # Recorded as lost (what repair writes): listed, no longer damage.
    os.mkdir("buf/quarantine")
    with open("buf/quarantine/lost-seqs", "w") as f:
        f.write("# comment\n21 22 damaged or missing\n")
    p = run(["dump", "--verify", "buf"], check_rc=0)
    assert "gap: seq 21..22 missing" in p.stdout and "accounted for" in p.stdout, p.stdout
    assert "40 records, seq 1..42, 0 damaged range(s), 0 gap(s) (and 1 accounted for): OK" \
        in p.stdout, p.stdout
    # A range that covers only part of the gap does not explain it.
    with open("buf/quarantine/lost-seqs", "w") as f:
        f.write("21 21 x\n")
    run(["dump", "--verify", "buf"], check_rc=1)


def test_verify_reports_torn_tail_of_newest_segment(d):
    w = make("buf", n=15)
    last = w.path(w.segments[-1])
    off, size = segwriter.frames(last)[-1]
    with open(last, "r+b") as f:
        f.seek(off + size)
        f.write(b"\x11" * 9)
    p = run(["dump", "--verify", "buf"], check_rc=1)
    assert "torn tail" in p.stdout and ("bytes %d..%d (9 bytes)" % (off + size, off + size + 9)) \
        in p.stdout, p.stdout


def test_recover_saves_every_valid_record_with_seq_and_time(d):
    w = make("src", n=40)
    before = json_records("src")
    # Damage: a frame in the second segment, a whole third segment's
    # header, and a torn tail at the very end.
    second = w.path(w.segments[1])
    off, size = segwriter.frames(second)[1]
    segwriter.flip(second, off + 20)
    segwriter.flip(w.path(w.segments[2]), 30)
    last = w.path(w.segments[-1])
    off2, size2 = segwriter.frames(last)[-1]
    with open(last, "r+b") as f:
        f.seek(off2 + size2)
        f.write(b"\x22" * 5)
    p = run(["dump", "--recover", "out", "src"], check_rc=1)
    golden("dump_recover.txt", p.stdout)

    run(["dump", "--verify", "out"], check_rc=0)
    after = json_records("out")
    lost = {r["seq"] for r in before} - {r["seq"] for r in after}
    want = [r for r in before if r["seq"] not in lost]
    assert after == want, (after, want)
    # The second segment's second record and the third segment's records.
    third = set(range(w.segments[2], w.segments[3]))
    assert lost == {w.segments[1] + 1} | third, sorted(lost)
    # The recovered directory is a working buffer: the engine appends.
    run(["run", "--dir", "out", "--quiet"], stdin='{"after": 1}\n', check_rc=0)
    recs = json_records("out")
    assert recs[-1]["data"] == {"after": 1} and recs[-1]["seq"] > before[-1]["seq"], recs[-1]
    run(["dump", "--verify", "out"], check_rc=0)


def test_recover_clean_directory_exits_0(d):
    make("src", n=25)
    p = run(["dump", "--recover", "out", "src"], check_rc=0)
    assert "recovered into out: 25 record(s)" in p.stdout, p.stdout
    assert "saved: seq 1..25\n" in p.stdout, p.stdout
    assert "lost:" not in p.stdout
    assert json_records("out") == json_records("src")
    run(["dump", "--verify", "out"], check_rc=0)


def test_recover_from_one_segment_file_and_range(d):
    w = make("src", n=40)
    seg = w.path(w.segments[1])
    p = run(["dump", "--recover", "out", seg], check_rc=0)
    n = len(segwriter.frames(seg))
    assert "%d record(s)" % n in p.stdout, p.stdout
    assert [r["seq"] for r in json_records("out")] == list(range(w.segments[1], w.segments[1] + n))
    os.mkdir("out2")  # an empty directory is fine too
    run(["dump", "--recover", "out2", "--from", "5", "--to", "9", "src"], check_rc=0)
    assert [r["seq"] for r in json_records("out2")] == [5, 6, 7, 8, 9]


def test_recover_replaces_an_abandoned_staging_directory(d):
    # A salvage stopped by a power cut or a kill leaves its staging
    # directory beside OUTDIR, never a partial OUTDIR; the next one removes
    # it and renames its own complete copy into place.
    make("src", n=10)
    os.makedirs(".out.salvage/segments")
    os.makedirs(".out.salvage/quarantine")
    with open(".out.salvage/segments/00000000000000000001.seg", "wb") as f:
        f.write(b"\x01" * 100)
    p = run(["dump", "--recover", "out", "src"], check_rc=0)
    assert "recovered into out: 10 record(s)" in p.stdout, p.stdout
    assert not any(n.endswith(".salvage") for n in os.listdir(".")), os.listdir(".")
    assert json_records("out") == json_records("src")


def test_recover_refuses_existing_outdir(d):
    make("src", n=5)
    os.mkdir("full")
    open("full/x", "w").close()
    p = run(["dump", "--recover", "full", "src"], check_rc=2)
    assert "full" in p.stderr and "not empty" in p.stderr, p.stderr
    open("afile", "w").close()
    p = run(["dump", "--recover", "afile", "src"], check_rc=2)
    assert "afile" in p.stderr, p.stderr
    p = run(["dump", "--recover", "nodir/out", "src"], check_rc=2)
    assert "nodir/out" in p.stderr, p.stderr
    assert os.listdir("full") == ["x"]


def test_usage_errors(d):
    make("src", n=5)
    p = run(["dump", "--stats", "--json", "src"], check_rc=2)
    assert "choose one" in p.stderr, p.stderr
    p = run(["dump", "--recover"], check_rc=2)
    assert "--recover" in p.stderr, p.stderr
    p = run(["dump", "--stats", "missing-dir"], check_rc=2)
    assert "missing-dir" in p.stderr, p.stderr
    p = run(["dump", "--help"], check_rc=0)
    assert "--stats" in p.stdout and "--recover OUTDIR" in p.stdout



def test_verify_seqs_repeated_across_segments_are_damage(d):
    """Issue 9 defect 2: a log two writers wrote (a second segment starting
    at a seq the first already holds) must never verify clean."""
    w = segwriter.Writer("buf", seg_bytes=512)
    for _ in range(5):
        w.append()
    w.close()
    w.map = None
    w.next_seq = 3  # the second writer resumes below the first one's end
    for _ in range(4):
        w.append()
    w.close()
    assert w.segments == [1, 3], w.segments
    p = run(["dump", "--verify", "buf"], check_rc=1)
    assert "seq 3 repeats" in p.stdout, p.stdout
    assert p.stdout.endswith(": DAMAGED\n"), p.stdout


def test_recover_into_the_directory_being_read_is_refused(d):
    """Issue 9 item 11: dump --recover into a subdirectory of the directory
    being read (however it is spelled) is a usage error."""
    make("buf")
    os.symlink("buf", "link")
    for out in ["buf/saved", "buf/segments/x", "link/saved", "./buf/a/../saved", "buf"]:
        p = run(["dump", "--recover", out, "buf"], check_rc=2)
        assert "inside" in p.stderr, (out, p.stderr)
    assert sorted(os.listdir("buf")) == ["segments"], os.listdir("buf")
    run(["dump", "--recover", "saved", "buf"], check_rc=0)
    run(["dump", "--recover", "saved2", "link"], check_rc=0)

def test_record_column_cut_to_the_terminal(d):
    # Issue 11, defect 8: the table showed no record content. Now a RECORD
    # column holds it as compact JSON: whole when stdout is not a terminal
    # (the golden table), cut to the terminal's width on one, whole again
    # with --full.
    import fcntl
    import pty
    import struct
    import subprocess
    import termios
    w = segwriter.Writer(os.path.join(d, "segments"), seg_bytes=65536)
    w.append({"i": 1, "text": "x" * 200})
    w.append({"i": 2, "t": "\u00e9" * 100})
    w.close()
    rows = run(["dump", os.path.join(d, "segments")], check_rc=0).stdout.splitlines()
    assert rows[0].split()[-1] == "RECORD", rows[0]
    assert json.loads(rows[1].split(None, 5)[5]) == {"i": 1, "text": "x" * 200}, rows[1]
    for extra, cut in (([], True), (["--full"], False)):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        p = subprocess.Popen([clitest.BIN, "dump"] + extra + [os.path.join(d, "segments")],
                             stdout=slave, stderr=subprocess.PIPE)
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        os.close(master)
        assert p.wait(timeout=20) == 0
        lines = out.decode("utf-8").replace("\r", "").splitlines()
        assert len(lines) == 3, lines
        for line in lines[1:]:
            if cut:
                assert len(line) <= 100 and line.endswith("..."), line
            else:
                assert len(line) > 100 and line.endswith("}"), line


def test_times_before_1970_print_their_own_second(d):
    # A time before 1970 that is not a whole second printed the second
    # after it: -1 ms as 1970-01-01T00:00:00.999Z (the division rounded
    # toward zero, the milliseconds were taken modulo).
    segdir = os.path.join(d, "buf", "segments")
    os.makedirs(segdir)
    salt = 99
    data = segwriter.header(1, -1001, salt)
    for i, ts_delta in enumerate((0, 1000, 1001, -999000)):
        data += segwriter.frame(salt, i, ts_delta, segwriter.mp({"i": i}))
    with open(os.path.join(segdir, segwriter.seg_name(1)), "wb") as f:
        f.write(data + bytes(4096 - len(data)))
    rows = run(["dump", "buf"], check_rc=0).stdout.splitlines()[1:]
    assert [r.split()[1] for r in rows] == [
        "1969-12-31T23:59:58.999Z",
        "1969-12-31T23:59:59.999Z",
        "1970-01-01T00:00:00.000Z",
        "1969-12-31T23:43:19.999Z",
    ], rows


if __name__ == "__main__":
    clitest.main()
