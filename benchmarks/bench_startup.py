"""Time to the first frame: from starting a viewer in tmux until its first
screen is there to read, side by side with a shell's first line (the floor:
tmux itself), asciinema play and the original autotrace 0.0.26."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Callable

from bench_view import TmuxServer
from common import (
    Settings,
    Table,
    Target,
    alternate,
    autotrace_executable,
    fmt,
    median,
    ratio,
    require_tool,
)
from peers import original_autotrace

NAME = "startup"
TARGET_MS = 300.0
FLOOR = "sh (tmux's floor)"
RECORDING = Path(__file__).resolve().parent.parent / "recordings" / "dns-lookup"


def first_frame(argv: list[str], drawn: str, timeout: float = 20.0) -> float | None:
    """Milliseconds from asking tmux for a new session until PATTERN shows."""
    server = TmuxServer("startup")
    try:
        started = time.monotonic()
        server.start(argv)
        seconds = server.wait_for(drawn, timeout, poll=0.005)
        return None if seconds is None else (time.monotonic() - started) * 1000
    finally:
        server.kill()


def contenders(settings: Settings) -> dict[str, Callable[[], float | None]]:
    workdir = settings.workdir
    ours = autotrace_executable()
    found: dict[str, Callable[[], float | None]] = {
        FLOOR: lambda: first_frame(["sh", "-c", "echo READY; sleep 30"], r"READY"),
        "autotrace (ours), live": lambda: first_frame(
            [*ours, "-l", str(workdir / f"startup-{uuid.uuid4().hex[:6]}"), "sleep 30"],
            r"Running"),
        "autotrace (ours), replay": lambda: first_frame(
            [*ours, "replay", "--paused", str(RECORDING)], r"PAUSED"),
    }
    if require_tool("asciinema"):
        cast = RECORDING / "pane-0.cast"
        found["asciinema play"] = lambda: first_frame(
            ["asciinema", "play", "-i", "0.01", str(cast)], r"big\.test")
    if settings.with_original:
        original = original_autotrace()
        found["autotrace 0.0.26"] = lambda: first_frame(
            [str(original), "-l", str(workdir / f"startup-orig-{uuid.uuid4().hex[:6]}"),
             "sleep 30", "sleep 31"], r"(?i)running|sleep 30")
    return found


def run(settings: Settings) -> list[Target]:
    require_tool("tmux")
    rounds = 2 if settings.quick else 7
    results = alternate(rounds, contenders(settings))
    medians = {name: median([v for v in values if v is not None]) if any(
        v is not None for v in values) else None for name, values in results.items()}
    table = Table(f"startup: ms from tmux new-session to the first frame, median of {rounds}",
                  ["first frame", "vs sh"])
    for name, value in medians.items():
        table.add(name, fmt(value, "ms"), fmt(ratio(value, medians[FLOOR]), "x"))
    for name in ("autotrace (ours), live", "autotrace (ours), replay"):
        table.targets.append(Target(f"{name}, first frame", medians.get(name), TARGET_MS,
                                    "ms"))
    table.notes.append("the floor is tmux starting a shell that prints one line; polled "
                       "every 5 ms through capture-pane")
    table.print()
    return table.targets
