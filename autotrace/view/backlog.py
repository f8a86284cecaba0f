"""What a pane printed that its screen model has not emulated yet, and how
much of it the flood guard may skip without changing what the screen ends
up showing.

Each queued piece of text is looked at once, when it is queued, in a few
C-speed passes (a 64 KiB read costs a fraction of a millisecond), so finding
what to skip costs per piece, not per character: a flooding pane can queue
megabytes between two frames, and every frame asks.

Skipping is exact for the screen when the skipped part holds at least a
screenful of line feeds, nothing in it moves the cursor but drawing, CR and
LF, and nothing in the screenful of lines after it moves the cursor
(colours and erase-line are allowed everywhere): either way the cursor then
sits on a fresh bottom line, in a column worked out from the text, and the
following lines scroll everything older out of sight.
"""

from __future__ import annotations

import bisect
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pyte.screens import wcwidth

# An escape sequence other than colours (SGR) and erase-line: it may move the
# cursor or change modes.
_MOVES = re.compile(r"\x1b(?!\[[0-9;]*[mK])")
# In the skipped part the cursor's column is worked out from the text: BS and
# TAB would move it, SO and SI change the character set, VT and FF are line
# feeds that the count would miss. (Looked for with `in`, one character at a
# time: a regex character class scans a backlog a hundred times slower.)
_MOVES_IN_SKIPPED = "\b\t\v\f\x0e\x0f"
# Of those, what still matters when the skipped part ends with CR LF: the
# column is 0 then whatever BS and TAB did before (tcpdump -XX indents its
# hex rows with a TAB), but VT and FF still feed lines and SO/SI still
# switch character sets.
_MATTERS_AFTER_CRLF = "\v\f\x0e\x0f"
_SGR = re.compile(r"\x1b\[[0-9;]*m")
_SGR_RESET = re.compile(r"\x1b\[0*[;m]")  # an SGR whose first parameter resets everything
_SGR_OR_EL = re.compile(r"\x1b\[[0-9;]*[mK]")
# What a colour or erase-line sequence looks like before its last character.
_OPEN_ESCAPE = re.compile(r"\x1b(?:\[[0-9;]*)?\Z")
_OPEN_ESCAPE_MAX = 64  # longer ones are not colours: they count as moving the cursor
_ASCII_CONTROLS = bytes([*range(0x20), 0x7F])  # drawn as nothing

# Past this many non-ASCII characters since the last CR, the column after
# them is not worked out (that is per character, in Python): that backlog is
# emulated instead.
_COLUMN_WORK_MAX = 4096
# Colours set in skipped text are replayed; past this many different ones
# (after dropping repeats), the backlog is emulated instead.
_COLOURS_MAX = 256

# Work units: one plain character. Measured here: a line costs about as much
# as 100 characters, an escape sequence 200; 50_000 units take ~5 ms.
_COST_PER_LINE = 100
_COST_PER_ESCAPE = 200
_WORK_PER_CATCH_UP = 50_000


class Chunk:
    """One queued piece of output, printed at `t`, and what the flood guard
    needs to know about it (computed on first use, then kept).

    A read can end inside an escape sequence: that unfinished tail counts
    as the start of the next chunk (`carried` there), so that neither looks
    like it might move the cursor."""

    __slots__ = ("t", "text", "carried", "_facts")

    def __init__(self, t: float, text: str, carried: str = "") -> None:
        self.t, self.text, self.carried = t, text, carried
        self._facts: _Facts | None = None

    @property
    def facts(self) -> _Facts:
        if self._facts is None:
            self._facts = _Facts.of(self.text, self.carried)
        return self._facts

    @property
    def looked_at(self) -> bool:
        """Its facts are known already."""
        return self._facts is not None

    @property
    def newlines(self) -> int:
        # A count is one C pass; all the facts of a small chunk cost ~50 times more.
        return self._facts.newlines if self._facts is not None else self.text.count("\n")

    @property
    def escapes(self) -> int:
        return self._facts.escapes if self._facts is not None else self.text.count("\x1b")


@dataclass(frozen=True)
class _Facts:
    newlines: int
    escapes: int
    moves: bool  # an escape sequence that may move the cursor or change modes
    plain: bool  # nothing moves the cursor but drawing, CR and LF (may be skipped)
    plain_before_crlf: bool  # may be skipped if the skip ends with CR LF (BS, TAB allowed)
    last_cr: int  # offset of the last CR in carried + text, -1 for none
    drawn: int | None  # one-column characters drawn after the last CR; None: not all ASCII
    after_cr: str  # the text after the last CR, when `drawn` is None
    colours: tuple[str, ...]  # SGR sequences since the last reset (all, without one)
    resets: bool
    open_tail: str  # an unfinished escape sequence it ends with

    @classmethod
    def of(cls, text: str, carried: str = "") -> _Facts:
        body = carried + text if carried else text
        tail = _OPEN_ESCAPE.search(body, max(0, len(body) - _OPEN_ESCAPE_MAX))
        open_tail = tail.group() if tail else ""
        if open_tail:
            body = body[:-len(open_tail)]
        escapes = body.count("\x1b")
        moves = bool(escapes) and _MOVES.search(body) is not None
        plain_before_crlf = not moves and not any(c in body for c in _MATTERS_AFTER_CRLF)
        plain = plain_before_crlf and "\b" not in body and "\t" not in body
        last_cr = body.rfind("\r")
        drawn = _ascii_columns(body[last_cr + 1:]) if plain else None
        colours = _SGR.findall(body) if escapes else []
        resets = [i for i, sgr in enumerate(colours) if _SGR_RESET.match(sgr)]
        return cls(
            newlines=body.count("\n"),
            escapes=escapes,
            moves=moves,
            plain=plain,
            plain_before_crlf=plain_before_crlf,
            last_cr=last_cr,
            drawn=drawn,
            after_cr=body[last_cr + 1:] if plain and drawn is None else "",
            colours=_last_occurrences(colours[resets[-1]:] if resets else colours),
            resets=bool(resets),
            open_tail=open_tail,
        )


def _last_occurrences(sequences: list[str]) -> tuple[str, ...]:
    """SGR sequences with the same effect as `sequences`: each one only where
    it last occurs. Every SGR sets some attributes to fixed values (a reset
    sets them all), so an earlier copy of one that comes again changes
    nothing the later copy does not set again."""
    return tuple(reversed(dict.fromkeys(reversed(sequences))))


def _ascii_columns(text: str) -> int | None:
    """Columns drawn by plain ASCII text (controls and LF draw nothing); None if not ASCII."""
    if not text.isascii():
        return None
    if "\x1b" in text:
        text = _SGR_OR_EL.sub("", text)  # colours and erasing do not move the cursor
    return len(text.encode("ascii").translate(None, _ASCII_CONTROLS))


@dataclass(frozen=True)
class Cursor:
    """The state of the screen that skipped text would have started from."""

    column: int  # columns means just past the right margin (wrap pending)
    columns: int
    rows: int
    wrap: bool  # autowrap (DECAWM)
    newline_mode: bool  # LNM: LF also returns the carriage
    plain_charset: bool  # characters are drawn as they come (no DEC graphics)


@dataclass(frozen=True)
class Skip:
    count: int  # chars from the start of the backlog
    lines: int  # line feeds among them
    column: int  # the cursor's column after them
    colours: str  # their SGR sequences still in effect after them


# Reads at least this long get their facts when queued (see Backlog.append).
_LOOK_NOW = 4096


def open_tail_of(chunk: Chunk) -> str:
    """The unfinished escape sequence a chunk ends with: a regex on its end
    only, without working out all its facts."""
    if chunk._facts is not None:
        return chunk._facts.open_tail
    body = chunk.carried + chunk.text if chunk.carried else chunk.text
    tail = _OPEN_ESCAPE.search(body, max(0, len(body) - _OPEN_ESCAPE_MAX))
    return tail.group() if tail else ""


class Backlog:
    """A queue of Chunks, with the count of chars it holds."""

    def __init__(self, chunks: Iterable[Chunk] = ()) -> None:
        self._chunks: deque[Chunk] = deque(chunks)
        self.pending = sum(len(chunk.text) for chunk in self._chunks)

    def __bool__(self) -> bool:
        return bool(self._chunks)

    def __len__(self) -> int:
        return len(self._chunks)

    def __iter__(self) -> Iterator[Chunk]:
        return iter(self._chunks)

    def append(self, t: float, text: str) -> None:
        carried = open_tail_of(self._chunks[-1]) if self._chunks else ""
        chunk = Chunk(t, text, carried)
        if len(text) >= _LOOK_NOW:
            # A big read is looked at now, while reading, a read's worth at a
            # time; small ones (a replay's events) when a skip is weighed.
            chunk.facts  # noqa: B018
        self._chunks.append(chunk)
        self.pending += len(text)

    def popleft(self) -> Chunk:
        chunk = self._chunks.popleft()
        self.pending -= len(chunk.text)
        return chunk

    def push_front(self, t: float, text: str) -> None:
        """Put back the part of a chunk not emulated yet."""
        self._chunks.appendleft(Chunk(t, text))
        self.pending += len(text)

    def drop(self, count: int) -> None:
        """Drop the first `count` chars."""
        while count > 0 and self._chunks:
            chunk = self.popleft()
            if len(chunk.text) > count:
                self.push_front(chunk.t, chunk.text[count:])
                return
            count -= len(chunk.text)

    def affordable(self) -> int:
        """How many of the last chars emulate within the work budget.

        Emulation costs per character, more per line and far more per escape
        sequence; this prices the whole backlog at its average mix."""
        chunks = self._chunks
        cost = (
            self.pending
            + _COST_PER_LINE * sum(chunk.newlines for chunk in chunks)
            + _COST_PER_ESCAPE * sum(chunk.escapes for chunk in chunks)
        )
        return int(_WORK_PER_CATCH_UP * self.pending / max(1, cost))

    def skip_point(self, keep: int, cursor: Cursor) -> Skip | None:
        """The longest start of the backlog, keeping at least its last `keep`
        chars, that may be skipped (see the module's doc); None for none."""
        chunks = list(self._chunks)
        starts = [0]
        for chunk in chunks:
            starts.append(starts[-1] + len(chunk.text))
        wanted = min(self.pending - keep, self._start_of_last_lines(chunks, starts, cursor.rows))
        if wanted <= 0:
            return None
        cut = self._newline_before(chunks, starts, wanted)
        if cut <= 0:
            return None
        index = bisect.bisect_right(starts, cut - 1) - 1  # the chunk the cut is in
        offset = cut - starts[index]
        head = chunks[index]
        pieces = _pieces(chunks[:index])
        pieces.append(_Facts.of(head.text[:offset], head.carried)
                      if offset < len(head.text) else head.facts)
        ends_crlf = head.text[max(0, offset - 2):offset] == "\r\n" if offset >= 2 else False
        if not all(piece.plain or (ends_crlf and piece.plain_before_crlf) for piece in pieces):
            return None
        lines = sum(piece.newlines for piece in pieces)
        if lines < cursor.rows:
            return None
        if not self._lines_after_stay_put(chunks, index, offset, cursor.rows):
            return None
        column = 0 if ends_crlf else self._column_after(pieces, cursor)
        if column is None:
            return None
        colours: tuple[str, ...] = ()
        for piece in pieces:
            colours = (piece.colours if piece.resets
                       else _last_occurrences([*colours, *piece.colours]))
        if len(colours) > _COLOURS_MAX:
            return None  # replaying them would cost more than it saves
        return Skip(cut, lines, column, "".join(colours))

    @staticmethod
    def _start_of_last_lines(chunks: list[Chunk], starts: list[int], count: int) -> int:
        """Offset of the line feed before the last `count` lines; -1 if there are fewer."""
        for index in range(len(chunks) - 1, -1, -1):
            newlines = chunks[index].newlines
            if newlines < count:
                count -= newlines
                continue
            text, position = chunks[index].text, len(chunks[index].text)
            for _ in range(count):
                position = text.rfind("\n", 0, position)
            return starts[index] + position
        return -1

    @staticmethod
    def _newline_before(chunks: list[Chunk], starts: list[int], wanted: int) -> int:
        """Offset just after the last line feed before `wanted`; 0 for none."""
        index = bisect.bisect_right(starts, wanted - 1) - 1
        end = wanted - starts[index]
        while index >= 0:
            if chunks[index].newlines:
                position = chunks[index].text.rfind("\n", 0, end)
                if position >= 0:
                    return starts[index] + position + 1
            index -= 1
            end = len(chunks[index].text) if index >= 0 else 0
        return 0

    @staticmethod
    def _lines_after_stay_put(chunks: list[Chunk], index: int, offset: int, count: int) -> bool:
        """The `count` lines after the cut hold nothing that moves the cursor."""
        for number in range(index, len(chunks)):
            chunk = chunks[number]
            start = offset if number == index else 0
            end = start
            while count and end >= 0:
                end = chunk.text.find("\n", end)
                if end >= 0:
                    end += 1
                    count -= 1
            if start == 0 and end < 0:
                moves = chunk.facts.moves  # the whole chunk, with what it carries and leaves open
            elif start == 0:
                moves = _MOVES.search(chunk.carried + chunk.text[:end]) is not None
            else:
                stop = end if end >= 0 else len(chunk.text) - len(chunk.facts.open_tail)
                moves = _MOVES.search(chunk.text, start, stop) is not None
            if moves:
                return False
            if not count:
                return True
        return False

    @staticmethod
    def _column_after(pieces: list[_Facts], cursor: Cursor) -> int | None:
        """The cursor's column after the skipped pieces.

        Only CR resets the column (and LF in newline mode); LF keeps it, so
        after LF-only lines it counts everything drawn since the last CR,
        wrapped at the right margin as drawing does."""
        if cursor.newline_mode:
            return 0  # the skipped part ends in a line feed
        column = cursor.column
        for piece in pieces:
            if piece.last_cr >= 0:
                column = 0
            if piece.drawn == 0:
                continue
            if not cursor.plain_charset:
                return None  # what the text draws is not what it says
            if piece.drawn is not None:
                column = _advance(column, piece.drawn, cursor.columns, cursor.wrap)
                continue
            advanced = _advance_chars(column, piece.after_cr, cursor)
            if advanced is None:
                return None
            column = advanced
        return column


def _pieces(chunks: list[Chunk]) -> list[_Facts]:
    """The facts of `chunks`, in order, as skip_point folds them: a chunk
    looked at already gives its own; a run of chunks not looked at (a
    replay's thousands of small events) is looked at as one text, a few C
    passes instead of a few per event. The fold gives the same answer
    either way: counts add up, the column after a CR is what is drawn after
    the last CR, colours keep their last occurrences, and the run's text is
    what its chunks' texts and carried tails make together."""
    pieces: list[_Facts] = []
    run: list[Chunk] = []

    def close_run() -> None:
        if run:
            pieces.append(run[0].facts if len(run) == 1 else
                          _Facts.of("".join(chunk.text for chunk in run), run[0].carried))
            run.clear()

    for chunk in chunks:
        if chunk.looked_at:
            close_run()
            pieces.append(chunk.facts)
        else:
            run.append(chunk)
    close_run()
    return pieces


def _advance(column: int, count: int, columns: int, wrap: bool) -> int:
    """The cursor's column after drawing `count` one-column characters from `column`."""
    if count <= 0:
        return column
    if not wrap:
        return min(column + count, columns)  # the last column is overwritten
    if column + count <= columns:
        return column + count
    return (column + count - 1) % columns + 1


def _advance_chars(column: int, text: str, cursor: Cursor) -> int | None:
    """As _advance, character by character, for text that is not all ASCII;
    None when there is too much of it to be worth it."""
    from autotrace.view.screen import printable  # the one definition of what is drawn

    if "\x1b" in text:
        text = _SGR_OR_EL.sub("", text)
    drawn = printable(text.replace("\n", ""))
    if len(drawn) > _COLUMN_WORK_MAX:
        return None
    columns = cursor.columns
    for ch in drawn:
        # As _Emulator.draw and pyte's draw move the cursor.
        width = wcwidth(ch)
        if cursor.wrap:
            if width == 2 and column == columns - 1:
                column = columns  # a wide character never splits
            if column >= columns:
                column = 0
        elif column >= columns and width > 0:
            column -= width
        if width > 0:
            column = min(column + width, columns)
    return column
