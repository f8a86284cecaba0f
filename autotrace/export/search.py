"""A pane's recorded text searched a slice at a time, and its screen rebuilt
around a match: the live view's search past what memory holds.

The pane file is read in order, as `cat` reads it (the live session may
still be writing it: a torn last line is ignored), its lines numbered from
0. Searching earlier (`backwards`) keeps the last match before line
`bound`; later, it stops at the first after it. Lines the view still holds
in memory (`held`) are skipped, so a match is never shown twice. Memory
stays bounded: only a tail of output before the line being read is kept,
enough to rebuild a screen with the match on its bottom line.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Iterator
from typing import Callable, NamedTuple

from autotrace.export.text import PositionedLines
from autotrace.format.asciicast import CastEvent
from autotrace.format.errors import RecordingError
from autotrace.sanitise import printable
from autotrace.view.screen import PaneScreen
from autotrace.view.search import RecordedHit

# Output kept before the line being read, to rebuild a screen from: at most
# this many bytes (what a replay's seek re-reads at most), and no more
# events than it takes to hold a screen's history of lines.
TAIL_BYTES = 1 << 20
# A rebuilt screen holds at most this much history: context around the match
# (n and N go on through the recording itself), rebuilt in a few tens of ms.
REBUILT_HISTORY = 1000
# A slice of the search: about what the view's search of memory takes, so
# keys are answered at once; the clock is read every CHECK_EVERY lines.
SLICE_SECONDS = 0.01
CHECK_EVERY = 256


def shown_text(text: str) -> str:
    """A recorded line as the screen shows it: tabs expanded, nothing unsafe."""
    return printable(text.expandtabs(8))


class _Candidate(NamedTuple):
    number: int
    t: float
    events: tuple[CastEvent, ...]  # whole events before the match's own
    event: CastEvent  # the one that ends the matching line
    cut: int  # chars of it to feed


class PaneTextSearch:
    """One pane's recorded lines searched for `pattern` (see the module)."""

    def __init__(self, events: Iterator[CastEvent], pattern: re.Pattern[str], backwards: bool,
                 bound: int | None, held: Callable[[float, str], bool],
                 size: tuple[int, int], history: int, total_bytes: int = 0):
        self._events, self.pattern = events, pattern
        self.backwards, self.bound, self._held = backwards, bound, held
        self._size, self._history = size, min(history, REBUILT_HISTORY)
        self._total = max(1, total_bytes)
        self._read = 0
        self._lines = PositionedLines()
        self._pending: list[tuple[str, int]] = []  # lines of the current event not looked at
        self._event: CastEvent | None = None
        self._line_t: float | None = None  # when the line being read began
        self._tail: deque[tuple[CastEvent, int]] = deque()  # (event, its line feeds)
        self._tail_bytes = self._tail_lines = 0
        self._tail_frozen: tuple[CastEvent, ...] | None = None
        self._number = 0  # the next line's number
        self._best: _Candidate | None = None
        self.found: RecordedHit | None = None
        self.failed = ""  # why the recording could not be read

    def step(self, budget: int) -> bool:
        """Look at about `budget` lines, for at most SLICE_SECONDS (coloured
        output is parsed, which is slower); True when the search is over."""
        deadline = time.perf_counter() + SLICE_SECONDS
        while budget > 0 and time.perf_counter() < deadline:
            if not self._pending:
                if not self._next_event():
                    return self._finish()
                budget -= 1  # an event without a line (a progress bar's CR) costs too
            take = min(budget, CHECK_EVERY)
            lines, self._pending = self._pending[:take], self._pending[take:]
            budget -= len(lines)
            for text, cut in lines:
                if self._look_at(text, cut):
                    return self._finish()
        return False

    def progress(self) -> float:
        return min(1.0, self._read / self._total)

    def _next_event(self) -> bool:
        try:
            event = next(self._events, None)
        except (RecordingError, OSError) as err:  # gone, or not a pane file any more
            self.failed = str(err)
            event = None
        if event is None:
            self._last_line()
            return bool(self._pending)
        if self._event is not None:
            self._keep(self._event)
        self._event = event
        self._read += len(event.data)
        if self._line_t is None:
            self._line_t = event.t
        self._pending = self._lines.feed(event.data)
        return True

    def _last_line(self) -> None:
        """The recording ends inside a line: it counts as one, as in `cat`."""
        if self._event is not None and self._lines.unfinished:
            self._pending = [(self._lines.unfinished, len(self._event.data))]
            self._lines = PositionedLines()

    def _look_at(self, text: str, cut: int) -> bool:
        """One line; True when nothing after it can change the outcome."""
        number, t = self._number, self._line_t or 0.0
        self._number += 1
        assert self._event is not None
        self._line_t = self._event.t if cut < len(self._event.data) else None
        if self.bound is not None:
            if self.backwards and number >= self.bound:
                return True
            if not self.backwards and number <= self.bound:
                return False
        shown = shown_text(text)
        if not self.pattern.search(shown) or self._held(t, shown):
            return False
        self._best = _Candidate(number, t, self._frozen_tail(), self._event, cut)
        return not self.backwards

    def _keep(self, event: CastEvent) -> None:
        """The tail of output before the current event: bounded in bytes, and
        no longer than a screen with its history needs."""
        feeds = event.data.count("\n")
        self._tail.append((event, feeds))
        self._tail_bytes += len(event.data)
        self._tail_lines += feeds
        self._tail_frozen = None
        wanted = self._history + 2 * self._size[1]
        while len(self._tail) > 1 and (self._tail_bytes > TAIL_BYTES
                                       or self._tail_lines - self._tail[0][1] >= wanted):
            old, old_feeds = self._tail.popleft()
            self._tail_bytes -= len(old.data)
            self._tail_lines -= old_feeds

    def _frozen_tail(self) -> tuple[CastEvent, ...]:
        # One copy per event that holds a match, however many matches it holds.
        if self._tail_frozen is None:
            self._tail_frozen = tuple(event for event, _ in self._tail)
        return self._tail_frozen

    def _finish(self) -> bool:
        close = getattr(self._events, "close", None)
        if close is not None:
            close()  # the pane file
        best = self._best
        if best is not None:
            self.found = RecordedHit(best.number, best.t, self._rebuild(best))
        return True

    def _rebuild(self, best: _Candidate) -> PaneScreen:
        """A screen fed the kept tail up to the matching line's end: the match
        is on its bottom line (a mode set before the tail is not seen)."""
        cols, rows = self._size
        screen = PaneScreen(cols, rows, self._history)
        for event in best.events:
            screen.feed(event.data, event.t)
        screen.feed(best.event.data[:best.cut], best.event.t)
        screen.catch_up_keeping(self._history + rows)
        return screen
