"""Pause (`p`) and continue (`c`) in the live view, driven in tmux: what is
stopped, what is continued, and what happens when autotrace dies while paused.

Every process is real: a shell script and the background child it started,
strace, autotrace. Its pause guard is checked by killing autotrace with
SIGKILL (no handler, no teardown) while the panes are stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from tmuxdriver import Tmux

from tests.conftest import autotrace_under, wait_for

pytestmark = pytest.mark.tmux

STOPPED = (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)


TMUX_SIZE = (160, 50)  # the tmux fixture's terminal (conftest)


def autotrace(tmp_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "autotrace", "-l", str(tmp_path / "rec"), *args]


def status(pid: int) -> str:
    try:
        return psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return "gone"


def is_stopped(pid: int) -> bool:
    return status(pid) in STOPPED


def autotrace_pid(tmux: Tmux) -> int:
    """The autotrace process under the tmux window's wrapper shell."""
    return wait_for(lambda: autotrace_under(tmux.pane_pid()), what="autotrace to start").pid


def pane_processes(autotrace: int, marker: str) -> list[psutil.Process]:
    """Autotrace's descendants running a command with MARKER: the panes' processes."""
    found = []
    for proc in psutil.Process(autotrace).children(recursive=True):
        try:
            if marker in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


class Script:
    """A shell script that starts a child in the background, in its own process
    group (not a job: a non-interactive shell has no job control), then ticks.

    The child is a subshell running sleep: the child has a descendant of its own.
    """

    def __init__(self, tmp_path: Path, marker: str):
        self.pid_file = tmp_path / "child.pid"
        self.ticks = tmp_path / "ticks"
        script = (f"(sleep 1000{marker}; :) & echo $! > {self.pid_file}; "
                  f"while true; do sleep 0.1; echo tick >> {self.ticks}; done")
        self.proc = subprocess.Popen(["sh", "-c", script], start_new_session=True)
        self.child = int(wait_for(lambda: self.pid_file.exists() and self.pid_file.read_text(),
                                  what="the child's pid file"))
        self.grandchild = wait_for(lambda: psutil.Process(self.child).children(),
                                   what="the child's sleep")[0].pid
        assert os.getpgid(self.child) == os.getpgid(self.proc.pid) == self.proc.pid

    def count(self) -> int:
        return len(self.ticks.read_text()) if self.ticks.exists() else 0

    def assert_ticking(self) -> None:
        """The script runs on: not stopped, and its ticks keep coming."""
        assert not is_stopped(self.proc.pid), status(self.proc.pid)
        start = self.count()
        wait_for(lambda: self.count() >= start + 3 * len("tick\n"), what="the script to tick")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def script(tmp_path, marker):
    started = Script(tmp_path, marker)
    yield started
    started.close()


def guards(autotrace: int) -> list[psutil.Process]:
    return [p for p in psutil.Process(autotrace).children()
            if "pause_guard" in " ".join(p.cmdline())]


def test_pid_pause_stops_the_process_and_its_descendants_not_its_group(tmux, tmp_path, script):
    tmux.start(autotrace(tmp_path, "--pid", str(script.child)))
    tmux.wait_for(rf"strace: Process {script.child} attached")
    pid = autotrace_pid(tmux)
    assert guards(pid) == []  # started at the first pause, not before
    script.assert_ticking()
    tmux.send("p")
    tmux.wait_for("PAUSED")
    wait_for(lambda: is_stopped(script.child) and is_stopped(script.grandchild),
             what="p to stop the child and its sleep")
    [guard] = guards(pid)
    # The script that started the child is in the same process group: it goes on.
    script.assert_ticking()
    tmux.send("c")
    tmux.wait_gone("PAUSED")
    wait_for(lambda: not is_stopped(script.child) and not is_stopped(script.grandchild),
             what="c to continue the child and its sleep")
    script.assert_ticking()
    assert guard.is_running()  # kept for the session, asleep in its read
    tmux.send("q")
    assert tmux.exit_status() == 0
    assert status(script.child) not in STOPPED and status(script.grandchild) not in STOPPED
    assert not guard.is_running()  # ended and reaped with the session


def test_sigkill_of_autotrace_while_paused_continues_the_attached_process(
        tmux, tmp_path, script):
    tmux.start(autotrace(tmp_path, "--pid", str(script.child)))
    tmux.wait_for(rf"strace: Process {script.child} attached")
    pid = autotrace_pid(tmux)
    tmux.send("p")
    tmux.wait_for("PAUSED")
    wait_for(lambda: is_stopped(script.child) and is_stopped(script.grandchild),
             what="p to stop the child and its sleep")
    # Its whole process group (and the tmux window's shell with it): no handler,
    # no teardown runs.
    os.killpg(os.getpgid(pid), signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(pid) or status(pid) == psutil.STATUS_ZOMBIE,
             what="autotrace to die")
    wait_for(lambda: not is_stopped(script.child) and not is_stopped(script.grandchild),
             timeout=10, what="the child and its sleep to be continued")
    # ... and they stay running: not stopped again by a tracer that goes away later.
    time.sleep(1.0)
    assert status(script.child) not in (*STOPPED, "gone")
    assert status(script.grandchild) not in (*STOPPED, "gone")
    script.assert_ticking()


def test_sigkill_of_autotrace_while_paused_leaves_none_of_its_panes_stopped(
        tmux, tmp_path, marker):
    # Shells with a child each: the child is in the pane's group but is not the
    # session leader, which the kernel alone continues when the pty hangs up.
    # Both ignore SIGHUP, as a server that reloads on HUP does: a stopped process
    # that does not is killed by the hangup's SIGHUP, and shows nothing.
    main = f"sh -c 'trap \"\" HUP; sleep 1000{marker}; :'"
    tracer = f"sh -c 'trap \"\" HUP; sleep 1001{marker}; :'"
    tmux.start(autotrace(tmp_path, main, tracer))
    tmux.wait_for(r"1  running")
    pid = autotrace_pid(tmux)
    ours = wait_for(lambda: len(found := pane_processes(pid, marker)) == 4 and found,
                    what="both panes' shells and sleeps")
    tmux.send("p")
    tmux.wait_for("PAUSED")
    wait_for(lambda: all(is_stopped(p.pid) for p in ours), what="p to stop every pane process")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not any(is_stopped(p.pid) for p in ours), timeout=10,
             what="no pane process left stopped")
