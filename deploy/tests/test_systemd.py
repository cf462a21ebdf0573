"""deploy/systemd/edgelog-agent.service: systemd accepts it as written
(`systemd-analyze verify`, no warning), it carries the hardening, and its
ExecStart (the agent reading the FIFO opened read-write) keeps reading
across producers that come and go and stops cleanly on SIGTERM.

Run by the CTest entry deploy_systemd (label deploy) with EDGELOG_BIN set.
"""

import os
import shutil
import signal
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNIT = os.path.join(ROOT, "deploy", "systemd", "edgelog-agent.service")
BIN = os.environ.get("EDGELOG_BIN", "edgelog")


def unit_lines():
    with open(UNIT) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def test_unit_verifies(tmp_path):
    exe = shutil.which("systemd-analyze")
    if not exe:
        pytest.skip("systemd-analyze not installed (Debian package systemd): unit not verified")
    # verify checks that the programs named exist: point the agent at the
    # binary under test instead of /usr/local/bin/edgelog.
    text = open(UNIT).read().replace("/usr/local/bin/edgelog", os.path.abspath(BIN))
    unit = tmp_path / "edgelog-agent.service"
    unit.write_text(text)
    p = subprocess.run([exe, "verify", str(unit)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    # An unknown or misspelt key is only a warning: none may appear.
    assert p.stdout.strip() == "" and p.stderr.strip() == "", p.stdout + p.stderr


def test_unit_is_hardened():
    lines = unit_lines()
    for want in ("ProtectSystem=strict", "ReadWritePaths=/var/lib/edgelog",
                 "Restart=on-failure", "NoNewPrivileges=yes", "CapabilityBoundingSet=",
                 "User=edgelog", "Environment=EDGELOG_DIR=/var/lib/edgelog/buffer"):
        assert want in lines, want


def exec_start():
    line = next(l for l in unit_lines() if l.startswith("ExecStart="))
    assert line.startswith("ExecStart=/bin/sh -c '") and line.endswith("'")
    return line[len("ExecStart=/bin/sh -c '"):-1]


def test_agent_reads_the_fifo_across_producers(tmp_path):
    fifo = tmp_path / "predictions"
    os.mkfifo(fifo, 0o620)
    cmd = exec_start().replace("/usr/local/bin/edgelog", os.path.abspath(BIN)).replace(
        "/run/edgelog/predictions", str(fifo))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGELOG_")}
    env["EDGELOG_DIR"] = str(tmp_path / "buffer")
    agent = subprocess.Popen(["/bin/sh", "-c", cmd], env=env, stderr=subprocess.PIPE, text=True)
    try:
        for producer in range(3):  # each opens, writes, closes: no EOF for the agent
            with open(fifo, "w") as f:
                for i in range(100):
                    f.write('{"producer": %d, "i": %d}\n' % (producer, i))
            time.sleep(0.2)
            assert agent.poll() is None, "the agent stopped when a producer closed the FIFO"
        deadline = time.monotonic() + 30
        while True:
            st = subprocess.run([BIN, "status", "--json", str(tmp_path / "buffer")],
                                capture_output=True, text=True, env=env)
            if '"pending":300' in st.stdout:
                break
            assert time.monotonic() < deadline, st.stdout + st.stderr
            time.sleep(0.1)
    finally:
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=30)
    assert agent.returncode == 0, err
    out = subprocess.run([BIN, "dump", str(tmp_path / "buffer")], capture_output=True,
                         text=True, env=env)
    assert out.returncode == 0
