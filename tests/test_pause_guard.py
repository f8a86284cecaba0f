"""Pausing real processes without a terminal: exactly what was stopped is
continued, by autotrace or, when autotrace was SIGKILLed, by its pause guard;
never a process it did not stop, never a reused pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from autotrace.live.pause import Pause, Target
from autotrace.live.pause_guard import GuardError, PauseGuard, start_time
from tests.conftest import REPO, wait_for

STOPPED = (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)


def status(pid: int) -> str:
    try:
        return psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return "gone"


@pytest.fixture
def sleeper(marker):
    """A process with a child: `sh -c 'sleep ...; :'` and its sleep."""
    proc = subprocess.Popen(["sh", "-c", f"sleep 100{marker}; :"], start_new_session=True)
    child = wait_for(lambda: psutil.Process(proc.pid).children(), what="the sleep")[0]
    yield proc.pid, child.pid
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# Stands in for autotrace: pauses the process given, says so, and waits to be killed.
PAUSER = """\
import sys, time
from autotrace.live.pause import Pause, Target
pause = Pause()
pause.stop([Target(int(sys.argv[1]))])
print(pause.guard.pid, flush=True)
time.sleep(600)
"""


def idle(pid: int) -> bool:
    """Asleep, and spent no CPU time over a third of a second (once it has started)."""
    proc = psutil.Process(pid)
    before = sum(proc.cpu_times()[:2])
    time.sleep(0.3)
    return proc.status() == psutil.STATUS_SLEEPING and sum(proc.cpu_times()[:2]) == before


def start_pauser(pid: int) -> tuple[subprocess.Popen[str], int]:
    pauser = subprocess.Popen([sys.executable, "-c", PAUSER, str(pid)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    guard = int(pauser.stdout.readline())  # type: ignore[union-attr]
    return pauser, guard


def test_stop_and_resume_act_on_the_process_and_its_descendants_only(sleeper) -> None:
    shell, sleep = sleeper
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    pause = Pause()
    try:
        pause.stop([Target(shell)])
        wait_for(lambda: status(shell) in STOPPED and status(sleep) in STOPPED,
                 what="both stopped")
        assert status(bystander.pid) not in STOPPED
        assert set(pause.stopped) == {shell, sleep}
        pause.resume()
        wait_for(lambda: status(shell) not in STOPPED and status(sleep) not in STOPPED,
                 what="both continued")
        assert pause.stopped == {}
    finally:
        pause.close()
        bystander.kill()
        bystander.wait()


def test_a_process_already_stopped_by_someone_else_is_left_stopped(sleeper) -> None:
    shell, sleep = sleeper
    os.kill(sleep, signal.SIGSTOP)
    wait_for(lambda: status(sleep) == psutil.STATUS_STOPPED, what="the sleep to stop")
    pause = Pause()
    try:
        pause.stop([Target(shell)])
        assert set(pause.stopped) == {shell}
        pause.resume()
        wait_for(lambda: status(shell) not in STOPPED, what="the shell to continue")
        time.sleep(0.2)  # a SIGCONT sent in error would have arrived by now
        assert status(sleep) == psutil.STATUS_STOPPED
    finally:
        pause.close()


def test_sigkill_of_the_pauser_and_its_group_continues_what_it_stopped(sleeper) -> None:
    shell, sleep = sleeper
    pauser, guard = start_pauser(shell)
    try:
        wait_for(lambda: status(shell) in STOPPED and status(sleep) in STOPPED,
                 what="both stopped")
        # The guard waits in a read: its own session, asleep, spending nothing.
        assert os.getsid(guard) == guard != os.getsid(pauser.pid)
        wait_for(lambda: idle(guard), what="the guard to wait, spending no CPU")
        os.killpg(pauser.pid, signal.SIGKILL)
        pauser.wait()
        wait_for(lambda: status(shell) not in STOPPED and status(sleep) not in STOPPED,
                 timeout=10, what="the guard to continue both")
        wait_for(lambda: status(guard) in ("gone", psutil.STATUS_ZOMBIE),
                 what="the guard to exit")
    finally:
        pauser.kill()
        pauser.wait()


def test_the_guard_never_continues_a_reused_pid(sleeper) -> None:
    shell, _ = sleeper
    guard = PauseGuard()
    os.kill(shell, signal.SIGSTOP)
    wait_for(lambda: status(shell) == psutil.STATUS_STOPPED, what="the shell to stop")
    # What the guard was told is another process that once had this pid.
    guard.stopping(shell, start_time(shell) - 1)  # type: ignore[operator]
    guard.close()  # end of file: as if autotrace had died
    time.sleep(0.2)
    assert status(shell) == psutil.STATUS_STOPPED


def test_the_guard_forgets_what_was_continued(sleeper) -> None:
    shell, _ = sleeper
    guard = PauseGuard()
    guard.stopping(shell, start_time(shell))  # type: ignore[arg-type]
    guard.clear()  # autotrace continued it ...
    os.kill(shell, signal.SIGSTOP)  # ... and someone else stopped it since
    wait_for(lambda: status(shell) == psutil.STATUS_STOPPED, what="the shell to stop")
    guard.close()
    time.sleep(0.2)
    assert status(shell) == psutil.STATUS_STOPPED


def test_a_guard_killed_by_someone_is_replaced_at_the_next_pause(sleeper) -> None:
    shell, sleep = sleeper
    pause = Pause()
    try:
        pause.stop([Target(shell)])
        first = psutil.Process(pause.guard.pid)  # type: ignore[arg-type]
        first.kill()
        first.wait(5)
        pause.resume()
        pause.stop([Target(shell)])  # a new guard, told what is stopped
        assert pause.guard.pid != first.pid
        # End of file, as autotrace's death would give it: it continues what it was told.
        pause.guard.close()
        wait_for(lambda: status(shell) not in STOPPED and status(sleep) not in STOPPED,
                 what="the second guard to continue both")
    finally:
        pause.close()


def test_no_guard_no_pause_and_nothing_left_stopped(sleeper) -> None:
    shell, sleep = sleeper
    pause = Pause(guard=PauseGuard(python="/nonexistent/python3"))
    with pytest.raises(GuardError, match="cannot start the pause guard: No such file"):
        pause.stop([Target(shell, group=shell)])
    assert pause.stopped == {}
    time.sleep(0.2)
    assert status(shell) not in STOPPED and status(sleep) not in STOPPED
