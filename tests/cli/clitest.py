"""clitest.py - small harness for the command-line tests.

Each tests/cli/test_*.py is one CTest entry. It imports this module, defines
functions named test_*, and calls main(). EDGELOG_BIN names the binary under
test (the device program); EDGELOG_DEV_BIN the developer program,
edgelog-dev, which has sink and demo; EDGELOG_BIN_DIR holds the
segdump/segtail links. Every test gets a
fresh temporary directory; nothing touches the network beyond loopback.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

BIN = os.environ.get("EDGELOG_BIN", "edgelog")
BIN_DIR = os.environ.get("EDGELOG_BIN_DIR", os.path.dirname(BIN))
DEV_BIN = os.environ.get("EDGELOG_DEV_BIN", os.path.join(os.path.dirname(BIN), "edgelog-dev"))
GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")


def tool(name):
    """Path of a multi-call link (segdump, segtail) next to the binary."""
    return os.path.join(BIN_DIR, name)


# Waits grow by this factor where programs run slower (under qemu).
TIME_FACTOR = float(os.environ.get("EDGELOG_TEST_TIME_FACTOR", "1") or "1")


def run(args, stdin=None, env=None, timeout=60, check_rc=None, exe=None):
    """Run `edgelog ARGS`; returns CompletedProcess with text output.
    check_rc: the exit code expected (assert)."""
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("EDGELOG_") and k not in ("EDGELOG_BIN", "EDGELOG_BIN_DIR", "EDGELOG_DEV_BIN",
                                                 "EDGELOG_TEST_TIME_FACTOR"):
            del e[k]
    e.setdefault("TZ", "UTC")
    if env:
        e.update(env)
    p = subprocess.run([exe or BIN] + list(args), input=stdin, env=e, timeout=timeout * TIME_FACTOR,
                       capture_output=True, text=isinstance(stdin, (str, type(None))))
    if check_rc is not None and p.returncode != check_rc:
        raise AssertionError("edgelog %s: exit %d, expected %d\nstdout:\n%s\nstderr:\n%s" %
                             (" ".join(args), p.returncode, check_rc, p.stdout, p.stderr))
    return p


def golden(name, text):
    """Compare text with tests/cli/golden/NAME; EDGELOG_UPDATE_GOLDEN=1
    rewrites the file instead."""
    path = os.path.join(GOLDEN, name)
    if os.environ.get("EDGELOG_UPDATE_GOLDEN") == "1":
        with open(path, "w") as f:
            f.write(text)
        return
    with open(path) as f:
        want = f.read()
    if want != text:
        import difflib
        diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True),
                                            "golden/" + name, "actual"))
        raise AssertionError("output differs from golden/%s:\n%s" % (name, diff))


def main():
    """Run every test_* function of the calling module (or those named on
    the command line); exit 1 if any failed."""
    mod = sys.modules["__main__"]
    names = sys.argv[1:] or sorted(n for n in dir(mod) if n.startswith("test_"))
    failed = 0
    for n in names:
        d = tempfile.mkdtemp(prefix="edgelog-cli-")
        cwd = os.getcwd()
        try:
            os.chdir(d)
            getattr(mod, n)(d)
            print("ok   %s" % n, flush=True)
        except Exception:
            failed += 1
            print("FAIL %s" % n, flush=True)
            traceback.print_exc()
        finally:
            os.chdir(cwd)
            shutil.rmtree(d, ignore_errors=True)
    print("%d/%d passed" % (len(names) - failed, len(names)))
    sys.exit(1 if failed else 0)
