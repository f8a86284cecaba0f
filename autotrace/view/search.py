"""Search over every pane, a slice at a time; where matches are on a drawn row.

A search is a job the loop that drives the view steps once per turn
(`MultiPaneView.search_step`), so a long one never keeps keys waiting: each
step scans a bounded number of lines, the footer shows how far it got, and
Esc cancels it. Live, a job walks the panes' screens (and, past what memory
holds, the screens rebuilt from the recording); a replay has its own job
over the recording (replay/player.py). Both follow `SearchJob`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Callable, Protocol

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


class ScreenSearch:
    """A search through the panes' screens, history included; a pane whose
    memory is exhausted is asked for more (`deeper`: rebuilt from the
    recording) before the search moves on to the next pane: `deeper(pane,
    lines held)` swaps in a screen holding more and says which line to go on
    from, or gives None."""

    def __init__(self, pattern: re.Pattern[str], order: list[int], line: int,
                 col: int | None, backwards: bool, screens: Callable[[int], PaneScreen],
                 deeper: Callable[[int, int], int | None]):
        self.pattern = pattern
        self.order = list(order)
        self.line, self.col = line, col  # where the scan goes on in order[0]
        self.backwards = backwards
        self._screens, self._deeper = screens, deeper
        self.found: tuple[int, SearchHit] | None = None
        self._done = 0
        self._total = sum(screens(i).total_lines for i in order)

    def step(self, budget: int) -> bool:
        while budget > 0 and self.order:
            index = self.order[0]
            screen = self._screens(index)
            hit, scanned, going_on = screen.search_slice(
                self.pattern, self.line, self.backwards, col=self.col, limit=budget)
            budget -= scanned
            self._done += scanned
            self.col = None
            if hit is not None:
                self.found = (index, hit)
                return True
            if going_on is not None:
                self.line = going_on
                continue
            going_on = self._deeper(index, screen.total_lines) if self.backwards else None
            if going_on is not None:
                self._total += self._screens(index).total_lines - going_on
                self.line = going_on
                continue
            self.order.pop(0)
            if self.order:
                self.line = 0 if self.backwards else self._screens(self.order[0]).total_lines - 1
        return not self.order

    def progress(self) -> float:
        return min(1.0, self._done / max(1, self._total))


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
