"""What a viewer would see of a redacted pane: its events replayed through the
screen model, every state checked for a regex match still showing.

Masking works on the text as written, line by line. A screen is assembled:
`hun\\e[1mter2` shows `hunter2`, so does `ter2` printed after a cursor move
and `hun` printed before it. So after redacting, the pane is replayed at its
recorded size, following its resizes, and after each event the lines that
changed (rows drawn on, lines scrolled into history) and the title are
searched. Lines already found clean are not searched again, so a scrolling
pane costs one search per new line.
"""

from __future__ import annotations

from autotrace.format.recording import CastEvent, RecordingError
from autotrace.format.redact import Redactor
from autotrace.format.tracks import MAX_SIDE
from autotrace.view.screen import PaneScreen

# Lines scrolled into history between two checks must all still be there:
# events are fed in pieces of at most this many characters (so of at most
# this many lines), and the screen keeps as much history.
_PIECE = 4096
_CLEAN_KEPT = 4096  # clean line texts remembered, so an unchanged line costs no search


def _side(value: object, default: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        return default
    return min(value, MAX_SIDE)


class StillVisible(RecordingError):
    """A pattern shows on a replayed screen after redaction."""


class VisibleCheck:
    """Replays one redacted pane; `event` raises StillVisible at the first
    event after which a match shows on its screen, in its history or title."""

    def __init__(self, redactor: Redactor, label: str, width: object, height: object):
        self._redactor = redactor
        self._label = label
        self._screen = PaneScreen(_side(width, 80), _side(height, 24), history=_PIECE)
        self._clean: set[str] = set()
        self._title = ""

    def event(self, event: CastEvent) -> None:
        if event.code == "r":
            cols, rows = (int(side) for side in event.data.split("x"))
            self._screen.resize(_side(cols, 80), _side(rows, 24))
            self._check(event.t)
        elif event.code == "o":
            for start in range(0, len(event.data), _PIECE):
                self._screen.feed(event.data[start:start + _PIECE], event.t)
                self._screen.catch_up(skip=False)
                self._check(event.t)

    def _check(self, t: float) -> None:
        lines = [line for line in self._screen.changed_lines()
                 if line and line not in self._clean]
        title = self._screen.title
        if title != self._title:
            self._title = title
            lines.append(title)
        if not lines:
            return
        if self._redactor.visible("\n".join(lines)):
            raise StillVisible(
                f"{self._label} at {t:.3f}s: a --redact pattern is still visible on the "
                "replayed screen (text assembled by escape sequences or cursor moves); "
                "no bundle written")
        if len(self._clean) > _CLEAN_KEPT:
            self._clean.clear()
        self._clean.update(lines)
