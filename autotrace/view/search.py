"""Search over every pane, a slice at a time; where matches are on a drawn row.

A search is a job the loop that drives the view steps once per turn
(`MultiPaneView.search_step`), so a long one never keeps keys waiting: each
step scans a bounded number of lines, the footer shows how far it got, and
Esc cancels it. Live, a job walks each pane's screen and history and, past
what memory holds, the pane's recorded text (export/search.py, handed in
as `RecordedScans`: the view reads no files); a replay has its own job over
the recording (replay/player.py). Both follow `SearchJob`.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from typing import Callable, NamedTuple, Protocol

from autotrace.view.screen import Cell, PaneScreen, SearchHit

# Lines scanned per step: about 10 ms of Python, so keys are answered at once.
SEARCH_SLICE = 2000


class SearchJob(Protocol):
    """A search the view's loop steps until it is done."""

    pattern: re.Pattern[str]

    def step(self, budget: int) -> bool:
        """Scan about `budget` lines; True when the search is over."""
        ...

    def progress(self) -> float:
        """How far it got, 0..1."""
        ...


def pane_order(count: int, first: int, backwards: bool) -> list[int]:
    """The panes a search visits, each once: the one it starts in, then the
    others going on from there (the other way round towards newer output, so
    `N` retraces what `n` walked)."""
    step = 1 if backwards else -1
    return [(first + step * k) % count for k in range(count)]


class RecordedHit(NamedTuple):
    """A match found in a pane's recording, past what memory holds."""

    number: int  # the pane's recorded line, 0 its first
    t: float  # when that line was printed
    screen: PaneScreen  # rebuilt from the recording: the line is on its bottom row


class RecordedScan(Protocol):
    """One pane's recorded text searched a slice at a time (export/search.py)."""

    found: RecordedHit | None

    def step(self, budget: int) -> bool:
        ...

    def progress(self) -> float:
        ...


# (pane, backwards, bound) -> a scan of the pane's recorded lines before
# (backwards) or after line `bound` (None: all of them), or None when the
# pane has nothing more there (memory holds it all, or no recording).
RecordedScans = Callable[[int, bool, "int | None"], "RecordedScan | None"]


# (pane, pattern, backwards, bound, held) -> a scan of the pane's recording
# (what the live view hands the view; held(t, text) says memory holds a line).
RecordedSource = Callable[[int, re.Pattern[str], bool, "int | None",
                           Callable[[float, str], bool]], "RecordedScan | None"]

# Recorded times are rounded to microseconds: the same line in memory is
# stamped within this of its recorded time.
SAME_TIME = 1e-3


def held_in(screen: PaneScreen) -> Callable[[float, str], bool]:
    """Whether `screen` holds a line printed at `t` (within SAME_TIME) that
    shows `text` (as far as its width goes): memory has it, so a search of
    the recording skips it. Times never decrease, so only the lines printed
    about then are looked at."""
    times = screen.print_times()

    def held(t: float, text: str) -> bool:
        key = text[:screen.cols].rstrip()
        i = bisect.bisect_left(times, t - SAME_TIME)
        while i < len(times) and times[i] <= t + SAME_TIME:
            if screen.text_of(i) == key:
                return True
            i += 1
        return False

    return held


class ScreenSearch:
    """A search through the panes, each in two parts: what memory holds (its
    screen and history) and, past that, its recording's text (`recorded`).
    Going back in time a pane's memory comes first, then its recording;
    going forward, the other way round. `from_recorded` starts the first
    pane in its recording, from that recorded line (a match shown from it)."""

    def __init__(self, pattern: re.Pattern[str], order: list[int], line: int,
                 col: int | None, backwards: bool, screens: Callable[[int], PaneScreen],
                 recorded: RecordedScans, from_recorded: int | None = None):
        self.pattern = pattern
        self.order, self._count = list(order), max(1, len(order))
        self.line, self.col = line, col  # where the scan goes on in order[0]'s memory
        self.backwards = backwards
        self._screens, self._recorded = screens, recorded
        self.found: tuple[int, SearchHit | RecordedHit] | None = None
        self._done = 0  # lines scanned in the current pane's memory
        self._scan: RecordedScan | None = None
        self._in_memory = True  # which part of order[0] is being searched
        if order and from_recorded is not None:
            self._begin_recorded(from_recorded)

    def step(self, budget: int) -> bool:
        while budget > 0 and self.order:
            part = self._step_memory if self._in_memory else self._step_recorded
            budget = part(budget)
            if self.found is not None:
                return True
        return not self.order

    def _step_memory(self, budget: int) -> int:
        index = self.order[0]
        hit, scanned, going_on = self._screens(index).search_slice(
            self.pattern, self.line, self.backwards, col=self.col, limit=budget)
        self._done += scanned
        self.col = None
        if hit is not None:
            self.found = (index, hit)
        elif going_on is not None:
            self.line = going_on
        elif self.backwards:
            self._begin_recorded(None)
        else:
            self._next_pane()
        return budget - scanned

    def _step_recorded(self, budget: int) -> int:
        scan = self._scan
        over = scan is None or scan.step(budget)
        if over and scan is not None and scan.found is not None:
            self.found = (self.order[0], scan.found)
        elif over and self.backwards:
            self._next_pane()
        elif over:
            self._begin_memory()
        # A slice of the recording costs the turn's budget; nothing read, nothing spent.
        return budget if scan is None else 0

    def _begin_recorded(self, bound: int | None) -> None:
        self._in_memory = False
        self._scan = self._recorded(self.order[0], self.backwards, bound)

    def _begin_memory(self) -> None:
        """Forward, past the recording: the pane's memory from its oldest line."""
        self._in_memory, self._scan, self._done = True, None, 0
        self.line = self._screens(self.order[0]).total_lines - 1

    def _next_pane(self) -> None:
        self.order.pop(0)
        self._scan, self._done, self.col = None, 0, None
        if not self.order:
            return
        if self.backwards:
            self._in_memory, self.line = True, 0
        else:
            self._begin_recorded(None)

    def progress(self) -> float:
        """Panes done, and how far into the current one: its memory counts
        for a tenth when its recording is read too."""
        within = 0.0
        if self.order:
            lines = max(1, self._screens(self.order[0]).total_lines)
            memory = min(1.0, self._done / lines)
            scanned = self._scan.progress() if self._scan is not None else 0.0
            recorded_after = self.backwards  # which part comes first in this direction
            if self._in_memory:
                within = 0.1 * memory if recorded_after else 0.9 + 0.1 * memory
            else:
                within = 0.1 + 0.9 * scanned if recorded_after else 0.9 * scanned
        finished = self._count - len(self.order)
        return min(1.0, (finished + within) / self._count)


def match_spans(pattern: re.Pattern[str], cells: Sequence[Cell]) -> tuple[tuple[int, int], ...]:
    """Column spans (start, end exclusive) of the pattern's matches on a drawn row."""
    text_parts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for x, cell in enumerate(cells):
        if not cell.char:
            continue  # the right half of a wide character
        width = 2 if x + 1 < len(cells) and cells[x + 1].char == "" else 1
        text_parts.append(cell.char)
        starts.extend([x] * len(cell.char))
        ends.extend([x + width] * len(cell.char))
    text = "".join(text_parts).rstrip()
    return tuple((starts[m.start()], ends[m.end() - 1])
                 for m in pattern.finditer(text) if m.end() > m.start())
