"""Fixtures for the Python package's tests (pytest, run by the CTest entry
`python`, label `python`). Everything talks to loopback only and is bounded
in time.

Environment the CTest entry sets: EDGELOG_LIBRARY (the shared library of
the build under test), EDGELOG_BIN (the `edgelog` program), EDGELOG_SINK
(the command that starts the reference receiver, words separated by
spaces; default "$EDGELOG_BIN sink"), EDGELOG_BUILD_DIR (for test_install).
"""

import os
import shlex
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # python/ first: the package under test

BIN = os.environ.get("EDGELOG_BIN", "edgelog")


def sink_command() -> List[str]:
    cmd = os.environ.get("EDGELOG_SINK")
    return shlex.split(cmd) if cmd else [BIN, "sink"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No EDGELOG_* or old-client variable from the caller's environment
    leaks into a test (the library reads them)."""
    keep = ("EDGELOG_LIBRARY", "EDGELOG_BIN", "EDGELOG_SINK", "EDGELOG_BUILD_DIR",
            "EDGELOG_PY_FAST", "EDGELOG_EXPECT_PY_FAST")
    for k in list(os.environ):
        if (k.startswith("EDGELOG_") and k not in keep) or k in (
            "BUFFER_DB_PATH",
            "CLOUD_LOGGING_ENDPOINT",
            "EDGE_DEVICE_ID",
            "BUFFER_MAX_SIZE_MB",
            "BUFFER_CLEANUP_DAYS",
        ):
            monkeypatch.delenv(k)
    monkeypatch.setenv("TZ", "UTC")


class Sink:
    """The reference receiver on 127.0.0.1; keeps its port across stop()
    and start() so an engine's endpoint stays valid."""

    def __init__(self, out: str, extra: Optional[List[str]] = None) -> None:
        self.out = out
        self.extra = list(extra or [])
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d/log" % self.port

    def start(self) -> "Sink":
        deadline = time.monotonic() + 20
        while True:
            self.proc = subprocess.Popen(
                sink_command()
                + ["--listen", "127.0.0.1:%d" % self.port, "--out", self.out, "--quiet"]
                + self.extra,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            line = self.proc.stdout.readline()
            if line.startswith("listening on "):
                self.port = int(line.rsplit(":", 1)[1])
                return self
            err = self.proc.stderr.read()
            self.proc.wait(10)
            # The port of a sink just stopped may still be held briefly.
            if self.port and "cannot listen" in err and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            raise AssertionError("sink did not start: %r %s" % (line, err))

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc:
            self.proc.stdout.close()
            self.proc.stderr.close()
        self.proc = None

    def records(self) -> List[Dict]:
        import json

        path = os.path.join(self.out, "records.ndjson")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]


@pytest.fixture
def sink(tmp_path):
    s = Sink(str(tmp_path / "sink")).start()
    yield s
    s.stop()


@pytest.fixture
def make_sink(tmp_path):
    made: List[Sink] = []

    def make(extra: Optional[List[str]] = None, name: str = "sink") -> Sink:
        s = Sink(str(tmp_path / name), extra)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def wait_for(cond, timeout: float = 30.0, what: str = "condition"):
    """Poll cond() until it returns a true value (returned) or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.05)


def run_cli(args: List[str], env: Optional[Dict[str, str]] = None, check: Optional[int] = 0):
    e = {k: v for k, v in os.environ.items()}
    if env:
        e.update(env)
    p = subprocess.run([BIN] + args, env=e, capture_output=True, text=True, timeout=60)
    if check is not None and p.returncode != check:
        raise AssertionError(
            "edgelog %s: exit %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr)
        )
    return p


def prediction(i: int) -> Dict:
    """A record shaped like shared/data/prediction.json, varying with i."""
    return {
        "device_id": "cam-0042",
        "model": {"name": "yolov8n", "version": "2.3.1"},
        "ts": "2024-05-14T09:21:33.000Z",
        "ts_ns": 1715678493000000989 + i,
        "request_id": "64f0eeb9-026e-4076-bb07-%012d" % i,
        "label": "person",
        "confidence": 0.6272,
        "top5": [
            {"label": "person", "score": 0.627},
            {"label": "suitcase", "score": 0.225},
            {"label": "dog", "score": 0.109},
            {"label": "bottle", "score": 0.013},
            {"label": "chair", "score": 0.011},
        ],
        "latency_ms": 7.655,
        "bbox": [0.579, 0.617, 0.660, 0.763],
        "meta": {"fw": "1.8.2", "site": "s17", "frame": 100000 + i},
    }
