"""The CLI cases of issue 10 point 6: every failure is said, in one line."""

from __future__ import annotations

from tests.conftest import AUTOTRACE, REPO, assert_one_line_error, run_autotrace, trace
from tests.tmuxdriver import Tmux


def test_a_tracer_that_does_not_exist_is_named_at_the_end(tmp_path) -> None:
    result, rec = trace(tmp_path, "echo hi", "no-such-tracer-x -p PID")
    assert result.returncode == 0  # the main command's status
    assert ("autotrace: tracer pane 1 did not start (command not found, exit 127): "
            "no-such-tracer-x -p PID") in result.stderr.splitlines()


def test_a_missing_main_command_is_one_line_and_127(tmp_path) -> None:
    result, _ = trace(tmp_path, "no-such-main-x", options=["-q"])
    assert assert_one_line_error(result, 127) == (
        "autotrace: the main command did not start (command not found, exit 127): "
        "no-such-main-x")


def test_an_empty_command_is_a_usage_error(tmp_path) -> None:
    for commands in ([""], ["  "], ["sleep 0", ""]):
        result = run_autotrace(["--headless", "-l", tmp_path / "rec", *commands])
        assert "is empty" in assert_one_line_error(result, 2)
        assert not (tmp_path / "rec").exists()


def test_an_interval_below_a_tenth_of_a_second_is_refused() -> None:
    result = run_autotrace(["--headless", "--interval", "0.05", "sleep 0", "@proc"])
    assert result.returncode == 2
    assert "--interval: expected a number of seconds of at least 0.1" in result.stderr


def test_pack_does_not_replace_a_bundle_without_force(tmp_path) -> None:
    _, rec = trace(tmp_path, "echo secret", options=["-q"])
    bundle = tmp_path / "out.tar.gz"
    bundle.write_bytes(b"a redacted bundle")
    line = assert_one_line_error(run_autotrace(["pack", rec.directory, "-o", bundle]))
    assert "exists already; use --force" in line
    assert bundle.read_bytes() == b"a redacted bundle"
    forced = run_autotrace(["pack", rec.directory, "-o", bundle, "--force"])
    assert forced.returncode == 0, forced.stderr
    assert bundle.read_bytes()[:2] == b"\x1f\x8b"  # gzip


def test_interactive_a_tracer_that_did_not_start_is_named_after_the_view(tmp_path) -> None:
    tmux = Tmux(cols=100, rows=30)
    try:
        tmux.start([*AUTOTRACE, "-l", str(tmp_path / "rec"), "--exit-at-end",
                    "sleep 1", "no-such-tracer-y"], cwd=REPO)
        tmux.wait_for(r"no-such-tracer-y")  # the view shows the pane
        screen = tmux.wait_for(r"\[exit \d+\]", timeout=30)  # the view has closed
        assert ("autotrace: tracer pane 1 did not start (command not found, exit 127): "
                "no-such-tracer-y") in screen, screen
        assert tmux.exit_status() == 0
    finally:
        tmux.kill()
