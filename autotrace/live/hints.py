"""Recognise a tracer that was refused permission and say how to fix it."""

from __future__ import annotations

import re
from typing import Callable

from autotrace.live.procs import tracer_pid_of

PTRACE_REFUSED = re.compile(
    r"ptrace\(PTRACE_\w+, (\d+)\).*(Operation not permitted|Permission denied)"
)
CAPTURE_REFUSED = re.compile(
    r"You don't have permission to|socket: Operation not permitted|"
    r"\(socket: Operation not permitted\)|Attempt to create packet socket failed"
)
GENERIC_REFUSED = re.compile(r"Operation not permitted|Permission denied")

PTRACE_HINT = (
    "ptrace was refused: run autotrace with sudo, or allow tracing of your own "
    "processes with `sudo sysctl kernel.yama.ptrace_scope=0`"
)
CAPTURE_HINT = (
    "packet capture was refused: run autotrace with sudo, or give the capture tool "
    "the capability: `sudo setcap cap_net_raw,cap_net_admin+eip $(command -v tcpdump)`"
)
GENERIC_HINT = "the tracer was refused permission: try running autotrace with sudo"


def already_traced_hint(pid: int, tracer: int) -> str:
    return (
        f"process {pid} is already traced by process {tracer}, and a process can have "
        f"only one ptrace tracer: use one strace/ltrace/gdb pane per process"
    )


def refusal_hint(text: str, tracer_of: Callable[[int], int] = tracer_pid_of) -> str | None:
    """A one-line fix for a refusal found in a tracer's output, or None.

    TRACER_OF(pid) is the pid ptrace-attached to pid (0 if none): the same
    EPERM means "already traced" when there is one, and sudo would not help.
    """
    ptrace = PTRACE_REFUSED.search(text)
    if ptrace:
        pid = int(ptrace.group(1))
        tracer = tracer_of(pid)
        return already_traced_hint(pid, tracer) if tracer else PTRACE_HINT
    if CAPTURE_REFUSED.search(text):
        return CAPTURE_HINT
    if GENERIC_REFUSED.search(text):
        return GENERIC_HINT
    return None
