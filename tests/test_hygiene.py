"""Nothing the session started survives it: a normal end, Ctrl-C, SIGTERM, SIGHUP.

Every test marks its processes with a unique `sleep` argument and asks psutil,
after autotrace has exited, whether any process with that mark is still alive.
"""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys

import pytest

from tests.conftest import (
    AUTOTRACE,
    REPO,
    RecordingFiles,
    autotrace_env,
    processes_with,
    start_autotrace,
    trace,
    wait_for,
)


def session_commands(marker: str) -> list[str]:
    return [
        f"sleep 100{marker}",
        # A tracer with a background child in its own process group.
        f"sh -c 'sleep 200{marker} & sleep 300{marker}'",
        # One that escapes into a new session, and one that ignores SIGTERM.
        f"sh -c 'setsid sleep 400{marker} & exec sleep 500{marker}'",
        f"sh -c 'trap \"\" TERM; sleep 600{marker}; sleep 601{marker}'",
    ]


def wait_until_running(marker: str, count: int) -> None:
    wait_for(lambda: len(processes_with(marker)) >= count, timeout=30,
             what=f"{count} processes marked {marker}")


def assert_nothing_survives(marker: str) -> None:
    survivors = processes_with(marker)
    assert survivors == [], [p.info["cmdline"] for p in survivors]


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_signal_to_autotrace_ends_everything(tmp_path, marker, signum, code) -> None:
    directory = tmp_path / "rec"
    proc = start_autotrace(["--headless", "-l", directory, "--kill-timeout", "1",
                            *session_commands(marker)])
    try:
        wait_until_running(marker, 6)
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert_nothing_survives(marker)
    # The recording was closed properly: every pane has an end.
    manifest = RecordingFiles(directory).manifest
    assert manifest["duration"] is not None
    assert all(pane["end"] is not None for pane in manifest["panes"])


def test_normal_end_leaves_nothing_behind(tmp_path, marker) -> None:
    main = f"sleep 1{marker}"
    result, rec = trace(tmp_path, main, *session_commands(marker)[1:],
                        options=["--grace", "0.2", "--kill-timeout", "1"])
    assert result.returncode == 0, result.stderr
    assert_nothing_survives(marker)
    assert rec.panes[0]["exit_status"] == 0


def test_children_left_by_the_main_command_are_stopped(tmp_path, marker) -> None:
    # The main command exits at once, leaving a daemon that holds nothing open.
    main = f"sh -c 'setsid sleep 700{marker} </dev/null >/dev/null 2>&1 &'"
    result, _ = trace(tmp_path, main, options=["--kill-timeout", "1"])
    assert result.returncode == 0, result.stderr
    assert_nothing_survives(marker)


def test_sighup_from_a_closed_terminal_still_ends_cleanly(tmp_path, marker) -> None:
    # The terminal goes away first (ssh dropped), then the hangup arrives: the
    # notices at the end have nowhere to go, and that must not change anything.
    directory = tmp_path / "rec"
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [*AUTOTRACE, "--headless", "-l", str(directory), *session_commands(marker)[:2]],
        stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True,
        env=autotrace_env(), cwd=REPO)
    os.close(terminal)
    try:
        wait_until_running(marker, 3)
        os.close(controller)
        proc.send_signal(signal.SIGHUP)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 129
    assert_nothing_survives(marker)
    assert not (directory / "autotrace.log").exists()
    assert RecordingFiles(directory).manifest["duration"] is not None


def test_signal_while_tracers_attach_ends_everything(tmp_path, marker) -> None:
    # The main is still held (a silent ptrace tool that never attaches to it is
    # never ready): Ctrl-C now must not leave the stopped main behind.
    directory = tmp_path / "rec"
    proc = start_autotrace(["--headless", "-l", directory, "--attach-timeout", "30",
                            f"sleep 100{marker}", f"strace -o /dev/null sleep 300{marker}"])
    try:
        wait_until_running(marker, 3)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert_nothing_survives(marker)
    assert RecordingFiles(directory).panes[0]["exit_signal_name"] in ("SIGTERM", "SIGKILL")


def test_autotrace_run_by_python_leaves_its_parent_with_no_children(tmp_path) -> None:
    code = ("import subprocess, sys; subprocess.run(sys.argv[1:]);"
            "import psutil; print(len(psutil.Process().children(recursive=True)))")
    result = subprocess.run(
        [sys.executable, "-c", code, *AUTOTRACE, "--headless", "-l", str(tmp_path / "r"),
         "sleep 0.2", "sh -c 'sleep 5 & sleep 6'"],
        capture_output=True, text=True, timeout=60, cwd=REPO, stdin=subprocess.DEVNULL)
    assert result.stdout.strip() == "0", result.stderr
