"""The one kind of event every part of autotrace speaks (DESIGN.md, One stream)."""

from __future__ import annotations

from typing import Any, NamedTuple

OUTPUT = "o"  # data: text the pane printed
RESIZE = "r"  # data: "COLSxROWS"
MARKER = "m"  # data: label (pause, resume, user:NAME, end)
INPUT = "i"  # data: what the user typed into the pane (recorded only with --record-input)
STATE = "s"  # data: the pane's new state, e.g. "running", "exited 0" (not recorded)
FINDING = "f"  # data: a finding as one line of JSON (findings/model.py); recorded in findings.jsonl


class Event(NamedTuple):
    t: float  # seconds since session start, monotonic clock
    pane: int
    kind: str
    data: str


# A pane larger than this is not a terminal anyone had: a hostile recording
# must not make a reader allocate a 50000x50000 screen.
MAX_SIDE = 1000


def pane_side(value: Any, default: int) -> int:
    """A pane's width or height as given by a recording: a whole number from 1
    to MAX_SIDE, or `default` when it is not one."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return min(value, MAX_SIDE)
    return default


def parse_size(data: str) -> tuple[int, int] | None:
    """A RESIZE event's "COLSxROWS", each side within 1..MAX_SIDE; None if it is not one."""
    parts = data.lower().split("x")
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        return None
    cols, rows = (int(part) for part in parts)
    return pane_side(cols, 1), pane_side(rows, 1)
