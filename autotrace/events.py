"""The one kind of event every part of autotrace speaks (DESIGN.md, One stream)."""

from __future__ import annotations

from typing import NamedTuple

OUTPUT = "o"  # data: text the pane printed
RESIZE = "r"  # data: "COLSxROWS"
MARKER = "m"  # data: label (pause, resume, user:NAME, end)
STATE = "s"  # data: the pane's new state, e.g. "running", "exited 0" (not recorded)


class Event(NamedTuple):
    t: float  # seconds since session start, monotonic clock
    pane: int
    kind: str
    data: str
