"""Pause: stop exactly the processes a pane stands for, continue exactly those.

A pane stands for its process and that process's descendants; for a process
group of its own (each of our panes, a Ctrl-Z job picked up by plain
`autotrace`) for every member of the group too, stopped with one killpg as
the shell stops a job. An attached `--pid N` is only N and its descendants:
the script that started N may share its group, and must go on.

What is stopped is remembered as (pid, start time) and told to the pause
guard before it is stopped, so a SIGKILLed autotrace leaves nothing stopped.
A process that was already stopped (by someone else) is neither remembered
nor continued.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass, field

from autotrace.live.pause_guard import GuardError, PauseGuard, Stat, read_stat, start_time

# Descendants forked while we stop their parents are looked for again this
# many times; a stopped process forks no more, so this ends at once.
ROUNDS = 4


@dataclass(frozen=True)
class Target:
    """What one pane stands for: a process, and the process group it leads (if any)."""

    pid: int
    group: int | None = None  # stop every member of this group, with killpg


@dataclass
class Pause:
    guard: PauseGuard = field(default_factory=PauseGuard)
    stopped: dict[int, int] = field(default_factory=dict)  # pid -> start time

    def stop(self, targets: Iterable[Target]) -> None:
        """Stop every process the targets stand for; GuardError if that cannot be
        done safely (then whatever was stopped already is continued)."""
        try:
            self._stop(list(targets))
        except GuardError:
            self.resume()
            raise

    def _stop(self, targets: list[Target]) -> None:
        seen: set[int] = set()
        for round_ in range(ROUNDS):
            table = process_table()
            spare = {os.getpid(), self.guard.pid}  # `--pid $$` has us as its descendant
            skip = seen | spare
            fresh = [pid for pid in members(targets, table) if pid not in skip]
            if not fresh and round_:
                break
            seen.update(fresh)
            for pid in fresh:
                self._remember(pid, table[pid])
            if round_ == 0:
                for target in targets:
                    if target.group is not None:
                        with contextlib.suppress(OSError):
                            os.killpg(target.group, signal.SIGSTOP)
            for pid in fresh:
                if pid in self.stopped:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Continue what stop() stopped (if it is still the same process), then forget it."""
        for pid, started in self.stopped.items():
            if start_time(pid) == started:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGCONT)
        # Only now: if we die before this line, the guard continues them (again).
        self.stopped.clear()
        with contextlib.suppress(GuardError):
            self.guard.clear()

    def close(self) -> None:
        """The session is over: end the guard (after resume(), it has nothing to do)."""
        self.guard.close()

    def _remember(self, pid: int, stat: Stat) -> None:
        if stat.state in ("T", "Z", "X"):
            return  # stopped by someone else (not ours to continue), or dead
        self.guard.stopping(pid, stat.start)
        self.stopped[pid] = stat.start


def process_table() -> dict[int, Stat]:
    """Every process's stat, read once: cheaper than psutil's children() per root."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (stat := read_stat(int(name))) is not None:
            table[int(name)] = stat
    return table


def members(targets: Iterable[Target], table: dict[int, Stat]) -> list[int]:
    """Every process the targets stand for, parents before their children."""
    children: dict[int, list[int]] = {}
    for pid, stat in table.items():
        children.setdefault(stat.ppid, []).append(pid)
    found: dict[int, None] = {}  # ordered, without repeats
    for target in targets:
        roots = [target.pid]
        if target.group is not None:
            roots += [pid for pid, stat in table.items() if stat.pgrp == target.group]
        queue = [pid for pid in roots if pid in table]
        while queue:
            pid = queue.pop(0)
            if pid not in found:
                found[pid] = None
                queue += children.get(pid, [])
    return list(found)
