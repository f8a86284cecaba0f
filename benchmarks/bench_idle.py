"""Light load (issue 2): 4 panes each printing 20 lines/s, recorded headless.

What is compared, side by side, alternating:
  autotrace --headless  one main and 3 tracers, each a printer: the CPU of
                        the autotrace process alone (not the printers)
  4 x script            4 `script` processes at once, each running one
                        printer: the sum of the 4 script processes' own CPU
  4 x asciinema rec     the same with asciinema: its processes' own CPU
The printers' own CPU is left out everywhere: it is the workload, not the
recorder. `script` is the floor of "a pty per printer, copied out"; autotrace
does the same for 4 ptys in one process, plus timestamps and JSON.

CPU is sampled with psutil over a window that starts once every printer is
running and ends before any stops (see WINDOW and SETTLE). Target: autotrace
at most 3% of one core.
"""

from __future__ import annotations

import itertools
import shlex
import subprocess
import time
from typing import Callable

import psutil
from common import (
    BenchError,
    Settings,
    Table,
    Target,
    alternate,
    autotrace_executable,
    cpu_share,
    fmt,
    median,
    ratio,
    stop_processes,
    tick_share,
)
from peers import asciinema_argv, script_argv

NAME = "idle"
CPU_TARGET = 3.0  # % of one core
PANES = 4
RATE = 20  # lines per second per pane
SETTLE = 1.5  # seconds from launch until the window opens: imports, spawns
PRINTER_MARK = "autotrace-bench-printer"


def printer(seconds: float, rate: int = RATE) -> str:
    """A shell command printing RATE numbered lines a second for SECONDS.

    It sleeps to a fixed schedule, so the rate holds even on a busy machine.
    The marker comment lets the benchmark tell printers from recorders.
    """
    code = (
        f"import time  # {PRINTER_MARK}\n"
        f"start = time.monotonic()\n"
        f"for i in range({round(seconds * rate)}):\n"
        f"    print(i, flush=True)\n"
        f"    time.sleep(max(0.0, start + (i + 1) / {rate} - time.monotonic()))\n"
    )
    return f"python3 -c {shlex.quote(code)}"


def is_printer(proc: psutil.Process) -> bool:
    """A printer or its shell: `python3 -c CODE` or `sh -c CODE`, CODE marked.

    A recorder's own command line carries the printer too (`asciinema rec -c
    ...`), but never right after its program name.
    """
    try:
        argv = proc.cmdline()
    except psutil.Error:
        return False
    return len(argv) >= 3 and argv[1] == "-c" and PRINTER_MARK in argv[2]


def recorder_processes(roots: list[psutil.Process]) -> list[psutil.Process]:
    """The roots and their descendants, less the printers (and their shells)."""
    found = []
    for root in roots:
        try:
            members = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        found += [p for p in members if not is_printer(p)]
    return found


def measure(argvs: list[list[str]], window: float,
            pick: Callable[[list[psutil.Process]], list[psutil.Process]]) -> float:
    """Start every argv, sample the CPU of pick(roots) over the window, wait for the end."""
    popens = [subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=True)
              for argv in argvs]
    roots = [psutil.Process(p.pid) for p in popens]
    try:
        time.sleep(SETTLE)
        share = cpu_share(lambda: pick(roots), window)
        for p in popens:
            _, err = p.communicate(timeout=SETTLE + window + 30)
            if p.returncode != 0:
                raise BenchError(f"{argvs[0][0]} exited {p.returncode}: {err.decode()[-200:]}")
    finally:
        stop_processes([r for r in roots if r.is_running()])
    return share


def run(settings: Settings) -> list[Target]:
    window = 2.0 if settings.quick else 10.0
    rounds = 1 if settings.quick else 2
    # Printers outlive the window by a second, so no process ends inside it.
    command = printer(SETTLE + window + 1.0)
    serial = itertools.count()
    autotrace = autotrace_executable()

    def run_autotrace() -> float:
        logdir = settings.workdir / f"idle-autotrace-{next(serial)}"
        argv = [*autotrace, "--headless", "-q", "-l", str(logdir),
                *[command] * PANES]
        return measure([argv], window, lambda roots: roots)  # autotrace alone

    def run_script() -> float:
        return measure([script_argv(command)] * PANES, window, lambda roots: roots)

    def run_asciinema() -> float:
        casts = [settings.workdir / f"idle-asciinema-{next(serial)}.cast" for _ in range(PANES)]
        # asciinema may run helpers of its own (a writer): all of them count.
        return measure([asciinema_argv(command, cast) for cast in casts], window,
                       recorder_processes)

    results = alternate(rounds, {
        "autotrace --headless (4 panes)": run_autotrace,
        "4 x script": run_script,
        "4 x asciinema rec": run_asciinema,
    })
    return report(results, window, rounds)


def report(results: dict[str, list[float]], window: float, rounds: int) -> list[Target]:
    share = {name: median(values) for name, values in results.items()}
    ours = share["autotrace --headless (4 panes)"]
    table = Table(
        f"idle: {PANES} panes x {RATE} lines/s, {window:.0f} s window, "
        f"{rounds} round(s) alternating, medians",
        ["cpu % of a core", "vs 4 x script", "vs 4 x asciinema"],
    )
    for name, value in share.items():
        table.add(name, fmt(value, "%"), fmt(ratio(value, share["4 x script"]), "x"),
                  fmt(ratio(value, share["4 x asciinema rec"]), "x"))
    table.targets.append(Target("autotrace's own CPU, % of one core", ours, CPU_TARGET, "%"))
    table.notes.append("own CPU of the recorder processes only; the printers are left out")
    table.notes.append(f"CPU time comes in clock ticks: 0.00% means under "
                       f"{tick_share(window):.2f}% over this window (no ratio then)")
    table.print()
    return table.targets
