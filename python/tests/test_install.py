"""`pip install` of python/ offline from a built tree: the installed package
carries the library it was built with (and the fast append built beside it)
and needs neither the source tree nor
EDGELOG_LIBRARY; EDGELOG_LIBRARY still overrides it."""

import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(HERE)

PROBE = (
    "import edgelog, sys; print(edgelog.LIBRARY_PATH); print(edgelog.FAST_PATH.split()[0]); "
    "log = edgelog.Log(sys.argv[1]); print(log.append({'ok': 1})); log.close()"
)


def test_pip_install_offline_finds_its_library(tmp_path):
    build = os.environ.get("EDGELOG_BUILD_DIR")
    if not build:
        pytest.skip("EDGELOG_BUILD_DIR not set (the CTest entry sets it)")
    try:
        import pip  # noqa: F401
    except ImportError:
        pytest.skip("pip is not installed (Debian: python3-pip)")
    # A copy of python/, so the build leaves nothing in the source tree.
    src = tmp_path / "src"
    shutil.copytree(PKG, src, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info",
                                                             "__pycache__"))
    target = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if k != "EDGELOG_LIBRARY"}
    env["EDGELOG_BUILD_DIR"] = build
    env["PIP_NO_INDEX"] = "1"
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation",
                        "--no-index", "--no-deps", "--target", str(target), str(src)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    run_env = {k: v for k, v in env.items() if k != "EDGELOG_BUILD_DIR"}
    run_env["PYTHONPATH"] = str(target)
    p = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "buf")], env=run_env,
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    libpath, fast, seq = p.stdout.split()
    assert libpath.startswith(str(target / "edgelog") + "/libedgelog.so") and seq == "1"
    if os.environ.get("EDGELOG_EXPECT_PY_FAST") == "1":  # built: bundled and used
        assert fast == str(target / "edgelog" / "libedgelog_py.so"), p.stdout
    # EDGELOG_LIBRARY overrides, and a bad one is named in the error.
    run_env["EDGELOG_LIBRARY"] = str(tmp_path / "nope.so")
    p = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "buf2")], env=run_env,
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "EDGELOG_LIBRARY=" + str(tmp_path / "nope.so") in p.stderr
