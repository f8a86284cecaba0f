"""Plain `autotrace` after Ctrl-Z: find the job, ask what to do, act on it.

The job is not ours: whatever the choice, it is never killed except when the
user asks for a re-run (`r`).
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from typing import Callable

import psutil

from autotrace.format.errors import RecordingError
from autotrace.live import target
from autotrace.live.target import Action


@dataclass
class AttachPlan:
    """What the session does with the process it found."""

    pid: int | None = None  # trace this running process
    held: bool = False  # it is stopped: continue it once the tracers are ready
    job: bool = False  # a shell's job (Ctrl-Z): paused whole, as its shell would
    label: str = ""  # how the main pane calls it
    rerun: str | None = None  # run this command line instead (the `r` choice)
    cwd: str | None = None  # ... from this directory
    replaced: psutil.Process | None = None  # the job to kill first, once all else is checked
    exit_code: int | None = None  # nothing to trace: exit with this


def job_group(pid: int) -> int | None:
    """The process group of a job we picked up, None when it is our own group.

    Ctrl-Z stops the whole job (a pipeline, a script and its children), so it
    is continued, stopped and ended as a group, like the shell does.
    """
    try:
        pgid = os.getpgid(pid)
    except OSError:
        return None
    return None if pgid == os.getpgrp() else pgid


def signal_job(pid: int, sig: int) -> None:
    group = job_group(pid)
    with contextlib.suppress(OSError):
        if group is not None:
            os.killpg(group, sig)
        else:
            os.kill(pid, sig)


def plan_for_pid(pid: int) -> AttachPlan:
    try:
        proc = psutil.Process(pid)
        return AttachPlan(pid=pid, held=target.is_stopped(proc), label=target.command_line(proc))
    except psutil.NoSuchProcess:
        raise RecordingError(f"no process with pid {pid}") from None
    except psutil.AccessDenied:
        raise RecordingError(f"process {pid} is not yours to trace (try sudo)") from None


def plan_for_latest_job(ask: bool, say: Callable[[str], None]) -> AttachPlan:
    """Find the calling shell's latest background job and ask the user about it."""
    shell = target.calling_shell()
    job = target.latest_background_job(shell)
    if job is None:
        raise RecordingError(
            f"no background job in the calling shell (pid {shell.pid}): start a command, "
            "press Ctrl-Z, then run autotrace; or give a command, or --pid N")
    choice = target.prompt_choice(job) if ask else Action.TRACE
    was_stopped = target.is_stopped(job)
    if choice is Action.TRACE:
        say(f"tracing {target.describe(job)}")
        return AttachPlan(pid=job.pid, held=was_stopped, job=True,
                          label=target.command_line(job))
    if choice is Action.CONTINUE_AND_QUIT:
        _continue(job)
        say(f"{target.name_of(job)} (pid {job.pid}) goes on in the background of this "
            "shell: fg brings it back")
        return AttachPlan(exit_code=0)
    if choice is Action.LEAVE_AND_QUIT:
        return AttachPlan(exit_code=0)
    return _kill_for_rerun(job)


def _continue(job: psutil.Process) -> None:
    signal_job(job.pid, signal.SIGCONT)


def _kill_for_rerun(job: psutil.Process) -> AttachPlan:
    command, cwd = target.command_line(job), None
    with contextlib.suppress(psutil.Error):
        cwd = job.cwd()
    return AttachPlan(rerun=command, cwd=cwd, replaced=job)


def end_replaced_job(plan: AttachPlan) -> None:
    """Kill the job a re-run replaces: the whole job, TERM then KILL."""
    job = plan.replaced
    if job is None:
        return
    members = [job]  # every process of the job, gathered before any of them goes
    with contextlib.suppress(psutil.Error):
        members += job.children(recursive=True)
    signal_job(job.pid, signal.SIGTERM)
    signal_job(job.pid, signal.SIGCONT)  # a stopped job only sees the TERM once continued
    _, alive = psutil.wait_procs(members, timeout=3)
    for proc in alive:  # one that ignores TERM
        with contextlib.suppress(psutil.Error):
            proc.kill()
