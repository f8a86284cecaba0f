"""The pause guard: continues what autotrace stopped if autotrace dies while paused.

A pause stops (SIGSTOP) processes that would stay stopped forever if autotrace
were killed (even SIGKILL) before continuing them. The guard is a small child
process, in a session of its own so that a signal to autotrace's process group
or terminal does not reach it. It blocks reading a pipe whose only writer is
autotrace, and is told each process before it is stopped:

    stop PID START     PID is about to be stopped; START is its start time
    clear              everything was continued: forget it all

End of file means autotrace is gone: the guard continues every process it
still remembers whose start time is unchanged (a reused pid is someone else's,
never continued), then exits. It never wakes up otherwise: no polling.

This file runs as a script with nothing but the standard library (and no
site-packages), so it starts quickly and does not depend on where autotrace
is installed or which directory it runs in.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from typing import NamedTuple


class Stat(NamedTuple):
    """The fields of /proc/PID/stat that pausing needs."""

    state: str  # T: stopped by a signal; t: at a tracer's stop; Z: zombie ...
    ppid: int
    pgrp: int
    start: int  # clock ticks since boot: with the pid, it names one process


def read_stat(pid: int) -> Stat | None:
    """PID's /proc/PID/stat, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        # The command name (field 2) is in parentheses and may hold anything.
        fields = stat[stat.rindex(b")") + 2:].split()
        return Stat(fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[19]))
    except (OSError, ValueError, IndexError):
        return None


def start_time(pid: int) -> int | None:
    """PID's start time, None if gone: a pid reused later has another."""
    stat = read_stat(pid)
    return stat.start if stat else None


class GuardError(Exception):
    """The guard could not be started: pausing would not be safe."""


class PauseGuard:
    """autotrace's side: starts the guard on first use, tells it what is stopped."""

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self._proc: subprocess.Popen[bytes] | None = None
        self._told: dict[int, int] = {}  # what a new guard must be told again

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def stopping(self, pid: int, started: int) -> None:
        """Say PID (started at STARTED) is about to be stopped: before it is."""
        self._told[pid] = started
        self._send(f"stop {pid} {started}\n")

    def clear(self) -> None:
        """Everything stopped was continued."""
        self._told.clear()
        if self._proc is not None and self._proc.poll() is None:
            self._send("clear\n")  # a guard that is gone has nothing to forget

    def close(self) -> None:
        """End the guard (continuing whatever it still remembers) and reap it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.close()  # type: ignore[union-attr]
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _send(self, line: str) -> None:
        for _ in range(2):  # a guard that died (killed by someone) is replaced once
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._spawn()
                line = "".join(f"stop {pid} {t}\n" for pid, t in self._told.items())
            try:
                self._proc.stdin.write(line.encode())  # type: ignore[union-attr]
                self._proc.stdin.flush()  # type: ignore[union-attr]
                return
            except BrokenPipeError:
                self._proc = None
        raise GuardError("the pause guard exits as soon as it starts")

    def _spawn(self) -> subprocess.Popen[bytes]:
        try:
            # -I -S: no user site, no PYTHON* variables, no site-packages: stdlib only.
            return subprocess.Popen(
                [self.python, "-I", "-S", os.path.abspath(__file__)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                close_fds=True, start_new_session=True, cwd="/")
        except OSError as err:
            raise GuardError(f"cannot start the pause guard: {err.strerror}") from None


def continue_all(stopped: dict[int, int]) -> None:
    """SIGCONT every process in STOPPED that is still the same process."""
    for pid, started in stopped.items():
        if start_time(pid) == started:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGCONT)


def guard(lines: Iterable[bytes]) -> None:
    """The guard's life: remember what it is told until end of file, then continue it."""
    stopped: dict[int, int] = {}
    for line in lines:
        words = line.split()
        if words[:1] == [b"stop"] and len(words) == 3:
            with contextlib.suppress(ValueError):
                stopped[int(words[1])] = int(words[2])
        elif words == [b"clear"]:
            stopped.clear()
    # A tracer that had intercepted the SIGSTOP and re-delivers it later does
    # not stop the process again: the kernel drops a stop dequeued before a SIGCONT.
    continue_all(stopped)


if __name__ == "__main__":
    # Terminal signals cannot reach it (own session, no terminal); a stray
    # SIGHUP or SIGINT must not make it forget what to continue.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    guard(sys.stdin.buffer)
