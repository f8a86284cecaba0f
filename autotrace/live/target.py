"""Finding what to attach to: the calling shell's latest background job.

Journey 2 of the design: the user ran something, pressed Ctrl-Z (or started
it with `&`), then typed plain `autotrace`. We find that job with psutil, say
what it is, and ask what to do with it, as the original autotrace did.
"""

from __future__ import annotations

import enum
import os
import shlex
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

import psutil

from autotrace.errors import UserError
from autotrace.sanitise import message

if TYPE_CHECKING:
    from blessed import Terminal

# Programs that run autotrace with other privileges: the shell is above them.
# sudo may show twice (its monitor and, with use_pty, its child).
ELEVATORS = frozenset({"sudo", "doas"})


class TargetError(UserError):
    """Nothing suitable to attach to, or no way to ask; the message is one line."""


def calling_shell(start: psutil.Process | None = None) -> psutil.Process:
    """The shell that ran START (default: this process), looking through sudo."""
    proc = start or psutil.Process()
    parent = proc.parent()
    while parent is not None and _name(parent) in ELEVATORS:
        parent = parent.parent()
    if parent is None:
        raise TargetError(f"process {proc.pid} has no calling shell")
    return parent


def latest_background_job(shell: psutil.Process,
                          me: psutil.Process | None = None) -> psutil.Process | None:
    """The newest job of SHELL that is stopped (Ctrl-Z) or running with `&`.

    ME (default: this process) and its ancestors are never candidates, nor is
    the foreground job: that is the one running autotrace (or sudo). A
    pipeline job is represented by its process group leader.
    """
    me = me or psutil.Process()
    chain = [me, *_parents(me)]
    chain_pids = {p.pid for p in chain}
    shell_pgid = _pgid(shell.pid)
    # Children in the shell's own group come from a shell without job control
    # (a script): each is its own job, and the group says nothing about them.
    foreign_groups = {_pgid(p.pid) for p in chain} | {foreground_pgid(shell)}
    foreign_groups -= {shell_pgid, None}

    jobs: dict[object, list[psutil.Process]] = {}
    for child in _children(shell):
        pgid = _pgid(child.pid)
        if child.pid in chain_pids or pgid is None or pgid in foreign_groups:
            continue
        if _status(child) in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            continue
        key = ("pid", child.pid) if pgid == shell_pgid else pgid
        jobs.setdefault(key, []).append(child)

    leaders = [_leader(members) for members in jobs.values()]
    return max(leaders, key=_start_order, default=None)


def foreground_pgid(shell: psutil.Process) -> int | None:
    """The foreground process group of SHELL's terminal, when it can be asked.

    The kernel answers only for our own controlling terminal, which is the
    shell's when autotrace runs in it; otherwise None.
    """
    try:
        tty = shell.terminal()
    except psutil.Error:
        return None
    if not tty:
        return None
    try:
        fd = os.open(tty, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        return os.tcgetpgrp(fd)
    except OSError:
        return None
    finally:
        os.close(fd)


def is_stopped(proc: psutil.Process) -> bool:
    return _status(proc) in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)


def describe(proc: psutil.Process) -> str:
    """One line: pid, whether it is stopped or running, and its command line.

    Control characters are spelled out and a long command line shortened:
    the line goes to the user's terminal.
    """
    state = "stopped" if is_stopped(proc) else "running"
    return message(f"pid {proc.pid}, {state}: {command_line(proc)}")


def name_of(proc: psutil.Process) -> str:
    """The process's name, safe to print."""
    return message(_name(proc))


def command_line(proc: psutil.Process) -> str:
    """PROC's command line, quoted so that a shell runs it again as it was.

    Bare spaces would not do: `python3 -c 'a b'` would come back as
    `python3 -c a b` when the job is re-run (`r`).
    """
    try:
        return shlex.join(proc.cmdline()) or _name(proc)
    except psutil.Error:
        return _name(proc)


class Action(enum.Enum):
    """What the user chose to do with the job found."""

    TRACE = "trace it and let it continue"
    CONTINUE_AND_QUIT = "continue it and quit"
    LEAVE_AND_QUIT = "leave it as it is and quit"
    RERUN = "kill it and re-run it under autotrace"


# The key shown to the user for each action, in the order they are offered.
ACTION_KEYS = (
    ("Enter", Action.TRACE),
    ("q", Action.CONTINUE_AND_QUIT),
    ("z", Action.LEAVE_AND_QUIT),
    ("r", Action.RERUN),
)
ENTER_KEYS = frozenset({"\r", "\n", "KEY_ENTER"})


def action_for_key(key: str) -> Action | None:
    """The action a key stands for, None for any other key.

    KEY is the text of the keystroke; Enter arrives as "\\r" or "\\n"
    (or a blessed key name, KEY_ENTER).
    """
    if key in ENTER_KEYS:
        return Action.TRACE
    for label, action in ACTION_KEYS[1:]:
        if key.lower() == label:
            return action
    return None


def question(proc: psutil.Process) -> str:
    """The text of the prompt, lines ending in CRLF so it reads right in cbreak mode."""
    lines = [
        "autotrace found the latest background job of this shell:",
        "",
        f"    {describe(proc)}",
        "",
        *(f"  {label:<6} {action.value}" for label, action in ACTION_KEYS),
        "",
        "=> ",
    ]
    return "\r\n".join(lines)


def read_key(term: Terminal) -> str:
    """One keystroke from the terminal, without waiting for Enter."""
    with term.cbreak():
        key = term.inkey()
    return key.name if key.name == "KEY_ENTER" else str(key)


def prompt_choice(proc: psutil.Process, term: Terminal | None = None) -> Action:
    """Ask what to do with PROC until a known key is pressed; return the choice."""
    if term is None:
        from blessed import Terminal

        term = Terminal()
    if not sys.stdin.isatty():
        raise TargetError("cannot ask what to do with the job: stdin is not a terminal "
                          "(use --pid N to attach without asking)")
    stream = term.stream
    stream.write(question(proc))
    stream.flush()
    while True:
        action = action_for_key(read_key(term))
        if action is None:
            continue
        stream.write(f"{action.value}\r\n")
        if action is Action.RERUN:
            # Killing is not undone: it is asked again, and only y kills.
            stream.write(f"kill {describe(proc)}? y kills it, any other key does not: ")
            stream.flush()
            if read_key(term).lower() != "y":
                stream.write("not killed\r\n\r\n" + question(proc))
                stream.flush()
                continue
            stream.write("y\r\n")
        stream.flush()
        return action


def _leader(members: Iterable[psutil.Process]) -> psutil.Process:
    """The process group leader of a job, or its first-started member."""
    members = list(members)
    for proc in members:
        if _pgid(proc.pid) == proc.pid:
            return proc
    return min(members, key=_start_order)


def _start_order(proc: psutil.Process) -> tuple[float, int]:
    # create_time has clock-tick resolution: the pid breaks ties.
    try:
        return proc.create_time(), proc.pid
    except psutil.Error:
        return 0.0, proc.pid


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _status(proc: psutil.Process) -> str:
    try:
        return proc.status()
    except psutil.NoSuchProcess:
        return psutil.STATUS_DEAD
    except psutil.Error:
        return ""


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name()
    except psutil.Error:
        return "?"


def _parents(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.parents()
    except psutil.Error:
        return []


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children()
    except psutil.Error:
        return []
