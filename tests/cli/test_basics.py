"""Things every subcommand shares: --help, --version, usage errors."""
import clitest
from clitest import run

COMMANDS = ["run", "status", "export-stats", "metrics", "dump", "tail", "repair",
            "requeue-failed", "cleanup", "sink", "demo"]


def test_version(d):
    p = run(["--version"], check_rc=0)
    assert p.stdout.startswith("edgelog "), p.stdout


def test_help_lists_every_command(d):
    p = run(["--help"], check_rc=0)
    for c in COMMANDS:
        assert ("  " + c + " ") in p.stdout, c


def test_unknown_command_is_usage_error(d):
    p = run(["frobnicate"], check_rc=2)
    assert "frobnicate" in p.stderr


def test_no_command_is_usage_error(d):
    run([], check_rc=2)


if __name__ == "__main__":
    clitest.main()
