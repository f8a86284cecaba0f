"""Measuring helpers shared by the benchmarks.

Time and CPU of a command (its whole process tree, through the kernel's own
accounting), CPU share and memory of running processes (psutil), alternating
rounds so every contender sees the same machine, and the table every
benchmark prints: ratios against peers run side by side, then each target
with PASS or FAIL. Absolute figures are printed for context; verdicts are
ratios or shares of a core, never a bare time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

import psutil

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """What run.py hands every benchmark."""

    quick: bool
    workdir: Path  # scratch space, removed at the end of the run
    with_original: bool = True  # the original autotrace 0.0.26 as a peer


class BenchError(Exception):
    """A contender could not be measured (a tool missing, a run failing)."""


# ---------------------------------------------------------------- commands


def autotrace_executable() -> list[str]:
    """The autotrace of the Python running the benchmarks (the checkout's venv)."""
    script = Path(sys.executable).with_name("autotrace")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "autotrace"]


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BenchError(f"{name} is not installed")
    return path


@dataclass(frozen=True)
class Usage:
    """What one finished command cost."""

    wall: float  # seconds from spawn to reaped
    cpu: float  # user + system seconds of the command and every descendant it reaped
    status: int  # exit code, or -N for signal N


def run_measured(argv: Sequence[str], timeout: float, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> Usage:
    """Run argv to its end with no terminal and no stdin; measure wall and tree CPU.

    os.wait4 returns the child's rusage, which on Linux includes every
    descendant the child (or its descendants) reaped: the recorder plus the
    recorded command, exactly the cost of the whole run, with no sampling.
    """
    with tempfile.TemporaryFile() as errors:
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=errors, env=env, cwd=cwd, start_new_session=True)
        # wait4 blocks with no timeout of its own: a timer kills a run that hangs.
        killer = threading.Timer(timeout, _kill_group, (proc.pid,))
        killer.start()
        try:
            _, status, rusage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait
        if proc.returncode != 0:
            errors.seek(0)
            tail = errors.read().decode(errors="replace").strip().splitlines()[-3:]
            raise BenchError(f"{argv[0]} exited {proc.returncode}: {' / '.join(tail)}")
    return Usage(wall=wall, cpu=rusage.ru_utime + rusage.ru_stime, status=proc.returncode)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, 9)


# ---------------------------------------------------------------- processes


def own_cpu(proc: psutil.Process) -> float:
    """User + system seconds of this process alone (not its children)."""
    times = proc.cpu_times()
    return times.user + times.system


def tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return [proc]


def cpu_share(procs: Callable[[], Iterable[psutil.Process]], seconds: float) -> float:
    """Percent of one core that PROCS used (own time only) over the next SECONDS.

    PROCS is called at the start of the window; a process that ends inside
    the window is counted up to its last sample, so windows should sit inside
    the measured processes' lives.
    """
    chosen = list(procs())
    before = {p.pid: _own_cpu_or_none(p) for p in chosen}
    start = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - start
    used = 0.0
    for p in chosen:
        after = _own_cpu_or_none(p)
        if before[p.pid] is not None and after is not None:
            used += after - before[p.pid]  # type: ignore[operator]
    return 100.0 * used / elapsed


def _own_cpu_or_none(proc: psutil.Process) -> float | None:
    try:
        return own_cpu(proc)
    except psutil.Error:
        return None


def tick_share(seconds: float) -> float:
    """The smallest CPU share a window can show: one clock tick, in % of a core.

    The kernel counts a process's CPU time in clock ticks (10 ms here), so a
    share below this reads as 0.00%.
    """
    return 100.0 / os.sysconf("SC_CLK_TCK") / seconds


def rss_mb(procs: Iterable[psutil.Process]) -> float:
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total / 2**20


def wait_until_gone(proc: psutil.Process, timeout: float, poll: float = 0.01) -> float | None:
    """Seconds until PROC has ended (a zombie counts as ended), None on timeout.

    psutil's wait() would see a zombie that its parent has not yet reaped as
    still running, which would charge the parent's reaping delay to the run.
    """
    start = time.monotonic()
    while True:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return time.monotonic() - start
        except psutil.NoSuchProcess:
            return time.monotonic() - start
        if time.monotonic() - start >= timeout:
            return None
        time.sleep(poll)


def stop_processes(procs: Iterable[psutil.Process], grace: float = 2.0) -> None:
    """TERM the given processes (by pid), KILL what is left after GRACE.

    Orphans are reaped by pid 1, which here can take a second or two: a
    zombie counts as gone (wait_until_gone), or every teardown would wait.
    """
    procs = list(procs)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    deadline = time.monotonic() + grace
    alive = [p for p in procs
             if wait_until_gone(p, max(0.0, deadline - time.monotonic())) is None]
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    for p in alive:
        wait_until_gone(p, grace)


# ---------------------------------------------------------------- rounds


def alternate(rounds: int, contenders: dict[str, Callable[[], T]]) -> dict[str, list[T]]:
    """Run each contender once per round, in turn, rotating who goes first.

    Alternating spreads slow moments of a shared machine (other builds, page
    cache, frequency changes) over every contender instead of one of them.
    """
    names = list(contenders)
    results: dict[str, list[T]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(contenders[name]())
    return results


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


# ---------------------------------------------------------------- reporting


@dataclass
class Target:
    """One speed or size target: MEASURED compared with LIMIT (lower is better)."""

    label: str
    measured: float | None  # None: could not be measured
    limit: float
    unit: str = "x"  # "x" for ratios, "%" for a share of one core, "ms", "MB"
    # Shown instead of the figure: why it is missing ("n/a: ..."), or that it
    # is a lower bound ("> 15 s"), in which case MEASURED is that bound.
    shown: str | None = None

    @property
    def verdict(self) -> str:
        if self.measured is None:
            return "n/a"
        return "PASS" if self.measured <= self.limit else "FAIL"

    def line(self) -> str:
        shown = self.shown or fmt(self.measured, self.unit)
        return f"  target  {self.label:<52} {shown:>10}  (<= {fmt(self.limit, self.unit)})" \
               f"  {self.verdict}"


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "%":
        return f"{value:.2f}%"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:.3g}"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


@dataclass
class Table:
    """A titled table: one row per contender, then targets and notes."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, *cells: str) -> None:
        self.rows.append([name, *cells])

    def render(self) -> str:
        header = ["", *self.columns]
        widths = [max(len(row[i]) for row in [header, *self.rows]) for i in range(len(header))]
        lines = [f"== {self.title} =="]
        for row in [header, *self.rows]:
            cells = [row[0].ljust(widths[0])]
            cells += [cell.rjust(w) for cell, w in zip(row[1:], widths[1:])]
            lines.append("  " + "  ".join(cells).rstrip())
        lines += [t.line() for t in self.targets]
        lines += [f"  note    {note}" for note in self.notes]
        return "\n".join(lines)

    def print(self) -> None:
        print(self.render(), flush=True)
        print(flush=True)
