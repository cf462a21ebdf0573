"""The fast append (libedgelog_py.so, python/edgelog_py.c): it must store
exactly what the msgpack path stores, byte for byte, and hand everything
it does not encode itself to that path, so records, errors and behaviour
are the same with it and without it (EDGELOG_PY_FAST=0; the CTest entry
python_nofast runs the API tests that way)."""

import math
import os
import random
import subprocess
import sys

import msgpack
import pytest

import edgelog
from edgelog import _core
from conftest import prediction

fast = _core._fast_encode
needs_fast = pytest.mark.skipif(fast is None, reason="fast append not loaded: %s" % edgelog.FAST_PATH)


def test_fast_path_is_used_when_built():
    expect = os.environ.get("EDGELOG_EXPECT_PY_FAST")
    if expect is None:
        pytest.skip("EDGELOG_EXPECT_PY_FAST not set (the CTest entries set it)")
    if os.environ.get("EDGELOG_PY_FAST") == "0":
        assert fast is None and edgelog.FAST_PATH == "off (EDGELOG_PY_FAST=0)"
    elif expect == "1":
        assert fast is not None, edgelog.FAST_PATH
        assert edgelog.FAST_PATH.endswith("/libedgelog_py.so")
    else:
        assert fast is None and edgelog.FAST_PATH.startswith("off")


def edge_values():
    ints = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**63,
            2**64 - 1, -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63]
    out = [None, True, False, 0.0, -0.0, 1.5, 1e300, float("inf"), -float("inf")]
    out += ints
    for n in (0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536):
        out += ["a" * n, "é€😀"[n % 3] * n, b"x" * n, [1] * n, tuple([None] * n),
                {i: i for i in range(n)}]
    return out


@needs_fast
def test_encodes_as_msgpack_packb():
    for v in edge_values():
        assert fast([v]) == msgpack.packb([v]), repr(v)[:80]
    nan = fast([float("nan")])
    assert nan == msgpack.packb([float("nan")]) and math.isnan(msgpack.unpackb(nan)[0])
    rnd = random.Random(7)

    def rand(depth):
        k = rnd.randrange(9 if depth < 6 else 6)
        if k == 0:
            return rnd.randrange(-2**63, 2**64) >> rnd.randrange(64)
        if k == 1:
            return rnd.random() * 10 ** rnd.randrange(-5, 20)
        if k == 2:
            return "".join(chr(rnd.choice((rnd.randrange(32, 127), rnd.randrange(0x80, 0xd7ff))))
                           for _ in range(rnd.randrange(40)))
        if k == 3:
            return bytes(rnd.randrange(256) for _ in range(rnd.randrange(40)))
        if k == 4:
            return rnd.choice((None, True, False))
        if k == 5:
            return rnd.randrange(-40, 300)
        if k == 6:
            return [rand(depth + 1) for _ in range(rnd.randrange(20))]
        if k == 7:
            return tuple(rand(depth + 1) for _ in range(rnd.randrange(5)))
        return {rand(6): rand(depth + 1) for _ in range(rnd.randrange(20))}

    for _ in range(500):
        v = {"r": rand(0)}
        assert fast(v) == msgpack.packb(v)
    assert fast(prediction(3)) == msgpack.packb(prediction(3))
    assert fast(b"\x91\x01") == b"\x91\x01"  # bytes: taken as already encoded


@needs_fast
@pytest.mark.parametrize(
    "v",
    [
        {"when": __import__("datetime").datetime(2024, 1, 1)},  # not msgpack's
        {"s": {1, 2}},
        {"big": 2**64},
        {"neg": -2**63 - 1},
        {"surrogate": "\ud800"},
        {"sub": type("D", (dict,), {})(a=1)},  # subclasses: msgpack's rules
        {"ba": bytearray(b"x")},
        {"blob": b"x" * (1 << 20)},  # over EDGELOG_MAX_RECORD: the library says ETOOBIG
    ],
)
def test_left_to_the_msgpack_path(v):
    assert fast(v) is None


@needs_fast
def test_nesting_limit_is_msgpacks():
    for depth in (509, 510, 511, 512):
        v = x = []
        for _ in range(depth):
            y = []
            x.append(y)
            x = y
        try:
            want = msgpack.packb(v)
        except ValueError:
            want = None
        assert fast(v) == want, depth


def test_same_records_and_errors_with_and_without(tmp_path):
    """A child process without the fast append stores the same records."""
    recs = [prediction(i) for i in range(50)] + [{"k": [1, 2.5, None, True, "é"]}, b"\x90"]
    d1, d2 = str(tmp_path / "a"), str(tmp_path / "b")
    with edgelog.Log(d1) as log:
        for r in recs:
            log.append(r)
    code = ("import sys, pickle, edgelog; recs = pickle.load(sys.stdin.buffer); "
            "log = edgelog.Log(sys.argv[1]); [log.append(r) for r in recs]; log.close(); "
            "print(edgelog.FAST_PATH)")
    env = dict(os.environ, EDGELOG_PY_FAST="0",
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import pickle
    p = subprocess.run([sys.executable, "-c", code, d2], input=pickle.dumps(recs), env=env,
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().strip() == "off (EDGELOG_PY_FAST=0)"

    def raw(d):
        return [(r.seq, r.data) for r in edgelog.read(d)]

    assert raw(d1) == raw(d2) and len(raw(d1)) == len(recs)
