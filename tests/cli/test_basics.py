"""Things every subcommand shares: --help, --version, usage errors; the device
program and the developer program (edgelog-dev)."""
import os
import shutil
import subprocess

import clitest
from clitest import BIN, DEV_BIN, run, tool

COMMANDS = ["run", "status", "export-stats", "metrics", "dump", "tail", "repair",
            "requeue-failed", "cleanup", "sink", "demo"]


def test_version(d):
    p = run(["--version"], check_rc=0)
    assert p.stdout.startswith("edgelog "), p.stdout


def test_help_lists_every_command(d):
    p = run(["--help"], check_rc=0)
    for c in COMMANDS:
        assert ("  " + c + " ") in p.stdout, c


def test_every_command_has_help(d):
    for c in COMMANDS:
        for flag in ("--help", "-h"):
            p = run([c, flag], check_rc=0, timeout=10)
            assert p.stdout.startswith("usage: edgelog " + c), (c, flag, p.stdout[:80])
            assert p.stderr == "", (c, p.stderr)
    for link, cmd in (("segdump", "dump"), ("segtail", "tail")):
        p = run(["--help"], exe=tool(link), check_rc=0)
        assert "usage: edgelog " + cmd in p.stdout, p.stdout[:80]


def test_every_command_names_an_unknown_option(d):
    for c in COMMANDS:
        p = run([c, "--no-such-option", d], timeout=10)
        assert p.returncode == 2, (c, p.returncode, p.stderr)
        named = [l for l in p.stderr.splitlines()
                 if l.startswith("edgelog " + c + ": ") and "--no-such-option" in l]
        assert named, (c, p.stderr)


def test_unknown_command_is_usage_error(d):
    p = run(["frobnicate"], check_rc=2)
    assert "frobnicate" in p.stderr


def test_no_command_is_usage_error(d):
    run([], check_rc=2)


def test_commands_on_a_missing_directory_name_it(d):
    missing = os.path.join(d, "nope")
    for args in (["status", missing], ["metrics", missing], ["dump", missing],
                 ["tail", missing], ["repair", missing], ["requeue-failed", missing],
                 ["cleanup", missing], ["export-stats", "--dir", missing, "-"]):
        p = run(args, timeout=10)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert missing in p.stderr, (args, p.stderr)
        assert not os.path.exists(missing), args  # nothing created



def needed_libraries(path):
    """The DT_NEEDED entries of an ELF file, through readelf."""
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True,
                         check=True).stdout
    return [l.split("[", 1)[1].split("]", 1)[0] for l in out.splitlines() if "(NEEDED)" in l]


def test_device_program_has_no_developer_dependencies(d):
    if not shutil.which("readelf"):
        return
    libs = needed_libraries(BIN)
    for bad in ("libmicrohttpd", "libgnutls", "libz."):
        assert not [l for l in libs if l.startswith(bad)], (bad, libs)
    assert [l for l in needed_libraries(DEV_BIN) if l.startswith("libmicrohttpd")]


def test_device_program_hands_sink_and_demo_to_edgelog_dev(d):
    # Next to edgelog-dev (the build directory): the commands work.
    p = run(["sink", "--help"], check_rc=0)
    assert p.stdout.startswith("usage: edgelog sink"), p.stdout[:80]
    # Alone (a firmware image): a usage error that names edgelog-dev.
    alone = os.path.join(d, "edgelog")
    shutil.copy(BIN, alone)
    for c in ("sink", "demo"):
        p = run([c, "--help"], exe=alone, check_rc=2)
        assert p.stderr.startswith("edgelog " + c + ": ") and "edgelog-dev" in p.stderr, p.stderr


if __name__ == "__main__":
    clitest.main()
