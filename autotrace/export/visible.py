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

from autotrace.events import pane_side
from autotrace.export.text import TextLines, plain_lines
from autotrace.format.asciicast import CastEvent
from autotrace.format.errors import RecordingError
from autotrace.format.redact import Redactor
from autotrace.sanitise import printable
from autotrace.view.screen import PaneScreen

# Lines scrolled into history between two checks must all still be there:
# events are fed in pieces of at most this many characters (so of at most
# this many lines), and the screen keeps as much history.
_PIECE = 4096
_CLEAN_KEPT = 4096  # clean line texts remembered, so an unchanged line costs no search
_ON_SCREEN = "on the replayed screen"
_IN_TEXT = "in its text as `autotrace cat` prints it"


def _before_last_lines(text: str, count: int) -> int:
    """Where the last `count` whole lines of `text` (and what follows them)
    start; 0 when it has no more than that."""
    position = len(text)
    for _ in range(count + 1):
        position = text.rfind("\r\n", 0, position)
        if position < 0:
            return 0
    return position + 2


class StillVisible(RecordingError):
    """A pattern shows on a replayed screen after redaction."""


class VisibleCheck:
    """Replays one redacted pane; `event` raises StillVisible at the first
    event after which a match shows on its screen, in its history or title."""

    def __init__(self, redactor: Redactor, label: str, width: object, height: object):
        self._redactor = redactor
        self._label = label
        self._screen = PaneScreen(pane_side(width, 80), pane_side(height, 24), history=_PIECE)
        self._text = TextLines()  # what `autotrace cat` shows of it
        self._clean: set[str] = set()
        self._title = ""
        self._last_t = 0.0

    def event(self, event: CastEvent) -> None:
        self._last_t = event.t
        if event.code == "r":
            cols, rows = (int(side) for side in event.data.split("x"))
            self._screen.resize(pane_side(cols, 80), pane_side(rows, 24))
            self._check(event.t)
        elif event.code == "o":
            self._output(event.data, event.t)
            # `cat` joins what was drawn between line breaks, ignoring cursor
            # moves: `hun\e[5Cter2` is `hunter2` there.
            self._found_in(printable_lines(self._text.feed(event.data)), event.t, _IN_TEXT)

    def close(self) -> None:
        """The end of the pane: `cat` shows its unfinished last line too."""
        self._found_in(printable_lines([self._text.unfinished]), self._last_t, _IN_TEXT)

    def _output(self, text: str, t: float) -> None:
        # Plain lines that scroll through a fresh bottom line are seen as
        # they are: searched as rows without emulating them (emulation is
        # what costs). Only the last screenful is emulated, for what follows.
        if text.count("\n") <= 2 * self._screen.rows or not plain_lines(text):
            self._emulate(text, t)
            return
        first = text.find("\r\n") + 2
        self._emulate(text[:first], t)  # it may finish what the cursor's line holds
        rest = text[first:]
        cut = _before_last_lines(rest, self._screen.rows)
        if cut > 0 and self._screen.lines_scroll_through():
            self._check_rows(rest[:cut], t)
            rest = rest[cut:]
        self._emulate(rest, t)

    def _emulate(self, text: str, t: float) -> None:
        for start in range(0, len(text), _PIECE):
            self._screen.feed(text[start:start + _PIECE], t)
            self._screen.catch_up(skip=False)
            self._check(t)

    def _check_rows(self, lines: str, t: float) -> None:
        """Search plain lines as the rows they fill, wrapped at the width,
        without the trailing blanks a row's text never has."""
        split = lines.split("\r\n")
        cols = self._screen.cols
        if max(map(len, split)) <= cols and " \r\n" not in lines:
            self._found_in(split, t)  # each line is its row already (the common case)
            return
        self._found_in([line[start:start + cols].rstrip()
                        for line in split for start in range(0, len(line), cols)], t)

    def _check(self, t: float) -> None:
        lines = [line for line in self._screen.changed_lines()
                 if line and line not in self._clean]
        title = self._screen.title
        if title != self._title:
            self._title = title
            lines.append(title)
        if lines:
            self._found_in(lines, t)
            if len(self._clean) > _CLEAN_KEPT:
                self._clean.clear()
            self._clean.update(lines)

    def _found_in(self, lines: list[str], t: float, where: str = _ON_SCREEN) -> None:
        if lines and self._redactor.visible("\n".join(lines)):
            raise StillVisible(
                f"{self._label} at {t:.3f}s: a --redact pattern is still visible {where} "
                "(put together by escape sequences or cursor moves): no bundle written; "
                "widen the regex to match the text as recorded")


def printable_lines(lines: list[str]) -> list[str]:
    """Lines as `cat` prints them: control characters gone, tabs kept."""
    text = "".join(lines)
    if text.isascii() and text.replace("\t", "").isprintable():
        return lines  # the common case, at C speed
    return ["\t".join(map(printable, line.split("\t"))) for line in lines]
