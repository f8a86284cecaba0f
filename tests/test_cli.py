"""The command line as a user types it: options, usage errors, help, subcommands."""

from __future__ import annotations

import subprocess
import sys

import pytest

from autotrace import __version__, cli
from tests.conftest import run_autotrace, trace

# Every option issue 2 promises, and the original tool's -l.
DOCUMENTED_OPTIONS = ["-l", "--logdir", "--headless", "--size", "--duration", "--grace",
                      "--kill-timeout", "--attach-timeout", "--quiet", "--version"]


def parse(*args: str):
    return cli.trace_parser().parse_args(list(args))


def usage_error(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(args))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: autotrace")
    return err


def test_help_mentions_every_option_and_shows_examples() -> None:
    result = run_autotrace(["--help"])
    assert result.returncode == 0
    help_text = result.stdout
    for option in DOCUMENTED_OPTIONS:
        assert option in help_text, option
    assert "examples:" in help_text
    assert "autotrace 'getent hosts localhost' 'strace -f -p PID'" in help_text
    assert "PID" in help_text.split("examples:")[0]  # the PID rule is explained
    for subcommand in ("autotrace cat PATH", "autotrace info PATH", "autotrace -- CMD"):
        assert subcommand in help_text


def test_subcommand_help_explains_its_options() -> None:
    cat_help = run_autotrace(["cat", "--help"])
    assert cat_help.returncode == 0
    assert "--pane N" in cat_help.stdout and "time-ordered" in cat_help.stdout
    info_help = run_autotrace(["info", "--help"])
    assert info_help.returncode == 0
    assert "pids" in info_help.stdout and "bytes" in info_help.stdout


def test_unknown_option_is_a_usage_error_with_exit_2() -> None:
    result = run_autotrace(["--no-such-option", "true"])
    assert result.returncode == 2
    assert result.stderr.startswith("usage: autotrace")
    assert "--no-such-option" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_option_of_a_subcommand_is_a_usage_error(capsys) -> None:
    assert "--bogus" in usage_error(capsys, "cat", "--bogus", "/tmp")


def test_version() -> None:
    result = run_autotrace(["--version"])
    assert result.returncode == 0
    assert result.stdout.strip() == f"autotrace {__version__}"


def test_no_command_without_a_terminal_asks_for_a_pid(tmp_path) -> None:
    # No command means: attach to the calling shell's latest background job.
    # Without a terminal to ask on, autotrace says what to do instead, in one line.
    result = subprocess.run([sys.executable, "-m", "autotrace", "--headless", "-l",
                             str(tmp_path / "rec")], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "--pid" in lines[0] or "no background job" in lines[0]
    assert not (tmp_path / "rec").exists()


@pytest.mark.parametrize(("text", "size"), [("120x40", (120, 40)), ("80X24", (80, 24)),
                                            ("10x2", (10, 2)), ("1000x1000", (1000, 1000))])
def test_size_is_cols_by_rows(text: str, size: tuple[int, int]) -> None:
    assert parse("--size", text, "true").size == size


@pytest.mark.parametrize("text", ["120", "120x", "x40", "abc", "120x40x2", "0x0", "9x24",
                                  "80x1", "1001x24", "-80x24", "80.5x24"])
def test_bad_size_is_a_usage_error_naming_the_problem(capsys, text: str) -> None:
    err = usage_error(capsys, "--size", text, "true")
    assert "size" in err.splitlines()[-1]


@pytest.mark.parametrize("option", ["--duration", "--grace", "--kill-timeout",
                                    "--attach-timeout"])
@pytest.mark.parametrize("text", ["soon", "-1"])
def test_bad_seconds_are_a_usage_error(capsys, option: str, text: str) -> None:
    err = usage_error(capsys, option, text, "true")
    assert option in err.splitlines()[-1]


def test_defaults_and_the_original_tools_logdir_flag(tmp_path) -> None:
    options = parse("-l", str(tmp_path), "sleep 1", "strace -p PID", "lsof -p PID")
    assert options.commands == ["sleep 1", "strace -p PID", "lsof -p PID"]
    assert options.logdir == tmp_path
    assert options.grace == 1.0 and options.duration is None and options.size is None
    assert parse("--logdir", "x", "--grace", "2.5", "--duration", "3", "true").grace == 2.5


def test_options_may_follow_the_commands() -> None:
    options = parse("sleep 1", "strace -p PID", "--headless", "--duration", "3")
    assert options.commands == ["sleep 1", "strace -p PID"]
    assert options.headless and options.duration == 3.0


def test_double_dash_traces_a_program_named_like_a_subcommand(tmp_path) -> None:
    # Without `--`, `cat` would be the subcommand; with it, cat is the main program.
    directory = tmp_path / "rec"
    result = run_autotrace(["--headless", "-l", directory, "--", "cat /proc/self/comm"])
    assert result.returncode == 0, result.stderr
    assert "cat" in (directory / "pane-0.cast").read_text()
    shown = run_autotrace(["cat", directory])
    assert shown.returncode == 0
    assert shown.stdout.split("[0] ", 1)[1].strip() == "cat"


def test_double_dash_alone_before_a_bare_subcommand_name(tmp_path) -> None:
    # `autotrace -- cat`: cat reads its (empty, idle) pty until --duration ends it.
    result, rec = trace(tmp_path, "--", "cat", options=["--duration", "0.5"])
    assert rec.panes[0]["command"] == "cat"
    assert rec.panes[0]["exit_signal_name"] == "SIGTERM"
    assert result.returncode == 128 + 15


def test_old_replay_flag_keeps_the_view_options(monkeypatch) -> None:
    # Users of autotrace 0.0.x combine --replay with the view's flags.
    from autotrace.commands import common, replay

    seen = {}
    monkeypatch.setattr(common, "guarded", lambda command, options: seen.update(
        command=command, options=options) or 0)
    assert cli.main(["--replay", "/tmp/rec", "--replayspeed", "4", "-v", "--visible", "2",
                     "--syncoff", "--colorsoff", "--min-pane", "30x4"]) == 0
    options = seen["options"]
    assert seen["command"] is replay.run_replay
    assert (str(options.path), options.speed, options.vertical, options.visible,
            options.syncoff, options.colorsoff) == ("/tmp/rec", 4.0, True, 2, True, True)
    assert options.min_pane == (30, 4)
