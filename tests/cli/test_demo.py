"""edgelog demo: the README's first command runs to completion, shows the
outage and the recovery, and tallies zero loss; --crash still proves that
kill -9 loses nothing accepted."""
import os
import re

import clitest
from clitest import DEV_BIN, run


def test_help(d):
    p = run(exe=DEV_BIN, args=["demo", "--help"], check_rc=0)
    assert p.stdout.startswith("usage: edgelog demo"), p.stdout
    assert "--crash" in p.stdout


def test_usage_errors(d):
    for args, name in (["--seconds", "0"], "--seconds"), (["--rate", "x"], "--rate"), \
                      (["--bogus"], "--bogus"):
        p = run(exe=DEV_BIN, args=["demo", "--dir", "dd"] + args, check_rc=2)
        assert name in p.stderr, (args, p.stderr)


def test_outage_demo_loses_nothing(d):
    p = run(exe=DEV_BIN, args=["demo", "--dir", "dd", "--seconds", "5"], timeout=90)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    out = p.stdout
    m = re.search(r"^TALLY: (\d+) predictions made, (\d+) arrived exactly once, 0 lost, "
                  r"0 duplicates: nothing lost$", out, re.M)
    assert m, out
    assert int(m.group(1)) == int(m.group(2)) > 500, out
    # The story is told: the sink went away and came back, and the status
    # showed it.
    assert "the cloud goes away" in out and "the cloud is back" in out, out
    assert "Disconnected" in out, out
    tail = out[out.index("the cloud is back"):]
    assert "Connected" in tail.replace("Disconnected", ""), out
    assert "pending      0" in out, out
    # The engine's directory holds them all; the sink's temp dir is gone.
    dump = run(["dump", "--json", "dd"], check_rc=0)
    assert len(dump.stdout.splitlines()) == int(m.group(1))
    m = re.search(r"storing what it accepts in (\S+)/records.ndjson", out)
    assert m, out
    assert not os.path.exists(m.group(1)), m.group(1)


def test_crash_demo(d):
    p = run(exe=DEV_BIN, args=["demo", "--dir", "dd", "--crash", "--seconds", "1"], timeout=90,
            check_rc=0)
    assert "kill -9" in p.stdout, p.stdout
    assert "RESULT: nothing lost" in p.stdout, p.stdout
    assert re.search(r"\b0 lost, 0 altered", p.stdout), p.stdout


def test_refuses_a_dir_that_is_not_edgelog(d):
    os.mkdir("precious")
    with open("precious/thesis.tex", "w") as f:
        f.write("x")
    p = run(exe=DEV_BIN, args=["demo", "--dir", "precious", "--seconds", "2"], check_rc=2)
    assert "precious" in p.stderr, p.stderr
    assert os.path.exists("precious/thesis.tex")


if __name__ == "__main__":
    clitest.main()
