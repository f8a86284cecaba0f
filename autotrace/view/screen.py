"""Pane screen model: what one pane shows, as cells, with timed scrollback.

pyte does the terminal emulation; this module adds what a debug recorder
needs on top (DESIGN.md, Speed and Security):

- a queue (backlog.py): `feed` only appends, so reading a pty never waits
  on emulation; `catch_up` processes the backlog when the view wants to
  draw, within a time limit if asked, and may skip old line-oriented
  backlog that would scroll out of sight anyway;
- scrollback capped at `history` lines, each stamped with the time it was
  first printed, for time-synced scrolling across panes;
- the alternate screen (modes 47/1047/1049), so `top` or `less` leave the
  main screen and its history intact;
- answers to device queries (DA, DSR/CPR), so programs that ask don't hang;
- cells that never hold control characters, surrogates or bidi controls,
  and DCS/APC/PM/SOS strings that are swallowed instead of drawn: pane
  output can never reach the user's terminal except as plain characters;
- snapshots for replay seeking.
"""

from __future__ import annotations

import bisect
import copy
import itertools
import operator
import re
import sys
import time
import unicodedata
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Callable, NamedTuple, Union

import pyte
from pyte import charsets, modes
from pyte import control as ctrl
from pyte.screens import Char, Margins, StaticDefaultDict, wcwidth

from autotrace.sanitise import printable
from autotrace.view.backlog import Backlog, Chunk, Cursor

ALT_SCREEN_MODES = frozenset({47, 1047, 1049})
_DECCOLM = 3  # 80/132 column switch: would resize the pane behind the pty's back

_DEVICE_QUERY = re.compile(r"\x1b\[[0-9;?>]*[cn]")
_CONTROL_STRING_END = re.compile(r"\x1b\\|[\x9c\x18\x1a]")  # ST, or CAN/SUB abort

# pyte executes these at once even in the middle of an escape sequence.
_ACTED_INSIDE_SEQUENCE = dict.fromkeys(map(ord, "\a\b\t\n\v\f\r"))

_UNFINISHED_KEPT = 4096  # chars of an unfinished escape sequence a snapshot keeps

_DEFAULT_MAX_PENDING = 8 * 1024 * 1024  # chars; a backlog beyond this is dropped

# With a time limit, text is emulated in pieces this long, the clock read
# after each: the slowest input measured here (wide characters, tabs, line
# feeds alone without skipping) takes 1-4 ms per piece on a busy machine.
_TIMED_PIECE = 256
_TIMED_LINES = 16  # or this many lines, if fewer chars
_FINISH_LINE_MAX = 4096  # chars looked at for the end of a line split by a read
_PLAIN_PIECE = 16384  # printable ASCII draws in whole runs: even wrapping, a few ms
_PLAIN_LINES_PIECE = 4096  # lines that scroll through in one step: ~500 of seq's, ~1 ms


class Cell(NamedTuple):
    """One screen cell. `char` is "" for the right half of a wide character,
    so joining a row's chars gives a string exactly `cols` columns wide."""

    char: str
    fg: str = "default"  # pyte colour name ("red", "brightred"), hex "rrggbb" or "default"
    bg: str = "default"
    bold: bool = False
    italics: bool = False
    underscore: bool = False
    reverse: bool = False


BLANK = Cell(" ")

Kept = tuple[Char, ...]  # a line in history (see _compact)
Line = Union["_Line", Kept]  # a screen line or a kept one


class SearchHit(NamedTuple):
    """Where a search matched: show the pane at `scroll`; the match is on
    view row `row`, columns col_start..col_end (end exclusive)."""

    scroll: int
    row: int
    col_start: int
    col_end: int
    line: int  # lines back from the bottom line of the live screen; pass as `start` to go on


# ------------------------------------------------------------ sanitising

# What may reach a terminal is defined once, in autotrace.sanitise; `printable`
# is its fast form (a C-speed translate table), used on every drawn run.


def _cell_for(char: Char) -> Cell:
    data = char.data
    if data and not (data.isascii() and data.isprintable()):
        # Last line of defence: pyte combines characters into cells, even
        # onto an empty one, and the result must still be one printable glyph.
        base = printable(data[0])
        if not base or wcwidth(base) < 1:
            base = " "
        data = base + "".join(c for c in data[1:] if unicodedata.combining(c))
    return Cell(data, char.fg, char.bg, char.bold, char.italics, char.underscore, char.reverse)


class _CellTable(dict):
    """pyte Char -> Cell, filled lazily; a dict so rows convert at C speed."""

    def __missing__(self, char: Char) -> Cell:
        if len(self) > 65536:
            self.clear()
        cell = self[char] = _cell_for(char)
        return cell


_CELLS = _CellTable()
_first = itemgetter(0)
_NOT_KNOWN = (None, None)  # what changed_lines compares a line it never returned with
_char_of = attrgetter("char")
_data_of = attrgetter("data")


_BLANK_CHAR = Char(" ")


def _chars(line: Line, columns: int) -> list[Char]:
    """Exactly `columns` chars of a screen line or a kept history line."""
    if isinstance(line, tuple):
        chars = list(line[:columns])
        chars.extend([_BLANK_CHAR] * (columns - len(chars)))
        return chars
    # Only the written cells are in the dict; start from blanks and fill those in
    # (asking the dict for every column would call __missing__ for each blank).
    chars = [line.default] * columns
    for x, char in line.items():
        if x < columns:
            chars[x] = char
    return chars


def _compact(line: _Line) -> Kept:
    """A screen line as history keeps it: its chars up to the last non-blank.

    A tuple costs a sixth of pyte's dict per line, and cannot change."""
    if not line:
        return ()
    # From the written cells only: asking pyte's line for each column would
    # call its __missing__ for every blank (most of a flood's cost).
    chars = [line.default] * (max(line) + 1)
    for x, char in line.items():
        chars[x] = char
    return _without_trailing_blanks(chars)


def _without_trailing_blanks(chars: list[Char]) -> Kept:
    while chars and chars[-1] == _BLANK_CHAR:
        chars.pop()
    return tuple(chars)


def _cells(line: Line, columns: int) -> list[Cell]:
    row = list(map(_CELLS.__getitem__, _chars(line, columns)))
    text = "".join(map(_char_of, row))
    if len(text) != columns or not text.isascii():
        _fix_wide_halves(row)
    return row


_PLAIN_STYLE = _BLANK_CHAR[1:]  # pyte's default attributes: no colour, no flag


def _plain_text(line: Line, left: int, columns: int) -> str | None:
    """Columns LEFT.. of a line that is nothing but printable ASCII in the
    default style (most output: a log, a tracer), as a string exactly COLUMNS
    long; None for any other line. Only the written chars are looked at,
    not a cell per column: a short line costs its few chars."""
    if isinstance(line, tuple):
        items: Iterable[tuple[int, Char]] = enumerate(line)
    elif line.default is _BLANK_CHAR or line.default == _BLANK_CHAR:
        items = line.items()
    else:
        return None  # erased with a colour: every blank has it
    chars = [" "] * columns
    for x, char in items:
        data = char.data
        if char[1:] != _PLAIN_STYLE or len(data) != 1 or not (data.isascii()
                                                             and data.isprintable()):
            return None
        if left <= x < left + columns:
            chars[x - left] = data
    return "".join(chars)


def _fix_wide_halves(row: list[Cell]) -> None:
    """Blank any half of a wide character whose other half was overwritten,
    so the row's display width stays exactly its length."""
    columns = len(row)
    wide_before = False
    for x, cell in enumerate(row):
        if cell.char == "":
            if not wide_before:
                row[x] = cell._replace(char=" ")
            wide_before = False
        elif wcwidth(cell.char[0]) == 2:
            if x + 1 >= columns or row[x + 1].char != "":
                row[x] = cell._replace(char=" ")
                wide_before = False
            else:
                wide_before = True
        else:
            wide_before = False


def row_text(row: list[Cell]) -> str:
    """A row of cells as a string exactly as wide as the row."""
    return "".join(cell.char for cell in row)


# ------------------------------------------------------------ emulation


class _Line(StaticDefaultDict):
    """A screen line that remembers when it was first printed on."""

    t: float | None = None



# Printable ASCII drawn with given attributes: attrs -> {char: Char}.
_GLYPHS: dict[Char, dict[str, Char]] = {}


class _Emulator(pyte.Screen):
    """pyte.Screen plus timed history, alternate screen, replies and hygiene."""

    buffer: dict[int, _Line]  # type: ignore[assignment]  # every line made by _new_line

    def __init__(self, columns: int, lines: int, history: int, reply: Callable[[str], None] | None):
        self.history_lines: deque[Kept] = deque(maxlen=max(0, history))
        self.history_times: deque[float] = deque(maxlen=max(0, history))
        self.history_dropped = 0  # lines that fell off the top of history, ever
        self.reply = reply
        self.now = 0.0
        self.in_alt = False
        self.main_buffer: dict[int, _Line] | None = None
        self.alt_saved_cursor: pyte.screens.Cursor | None = None
        self.in_control_string = False
        self.control_string_esc = False  # an ESC ended the last chunk inside a string
        super().__init__(columns, lines)
        self.buffer = defaultdict(self._new_line)

    def _new_line(self) -> _Line:
        return _Line(self.default_char)

    # --- history

    def _keep(self, line: _Line) -> None:
        self._keep_row(_compact(line), line.t)

    def _keep_row(self, kept: Kept, t: float | None) -> None:
        """A row into history, at time T (None: never printed on, the last
        time kept); a screen line's, or one that never was (lines_through)."""
        if not self.history_lines.maxlen:
            return
        last = self.history_times[-1] if self.history_times else 0.0
        if len(self.history_lines) == self.history_lines.maxlen:
            self.history_dropped += 1
        self.history_lines.append(kept)
        self.history_times.append(last if t is None else max(t, last))

    def scrolls_through(self) -> bool:
        """Whether plain ASCII lines ended by CR LF, printed now, would each be
        drawn from the left of a fresh bottom line and scroll the whole screen
        up: the cursor at the start of an untouched bottom line, no scrolling
        region, autowrap on, no insert mode, no other character set."""
        cursor = self.cursor
        if cursor.x or cursor.y != self.lines - 1 or self.in_control_string:
            return False
        if self.margins is not None and self.margins != (0, self.lines - 1):
            return False
        if modes.DECAWM not in self.mode or not self._plain_drawing():
            return False
        line = self.buffer.get(cursor.y)
        # An empty line left over may have another default (blanks of a
        # reverse screen): pyte would draw on it, so it is not fresh.
        return line is None or (not line and line.t is None
                                and line.default == self.default_char)

    def lines_through(self, texts: list[str]) -> None:
        """Print TEXTS (printable ASCII, each then CR LF) when scrolls_through():
        exactly what drawing each and scrolling would leave (screen, history
        and its times, the cursor), but rows that leave the top at once are
        made history directly, and the screen is shifted once, not per line."""
        columns, lines, now = self.columns, self.lines, self.now
        rows: list[str] = []
        for text in texts:
            if len(text) <= columns:
                rows.append(text)
            else:  # autowrap: a row per `columns` chars
                rows.extend(text[x:x + columns] for x in range(0, len(text), columns))
        glyph = self._glyphs_for(self.cursor.attrs).__getitem__
        buffer = self.buffer
        above: list[_Line | None] = [buffer.get(y) for y in range(lines - 1)]
        leaving = len(above) + len(rows) - (lines - 1)  # rows that scroll off the top
        if leaving > 0 and not self.in_alt:
            for line in above[:leaving]:
                self._keep(line if line is not None else self._new_line())
            for text in rows[:max(0, leaving - len(above))]:
                self._keep_row(_without_trailing_blanks(list(map(glyph, text))),
                               now if text else None)
        staying = [*above, *rows][max(0, leaving):]
        shifted: dict[int, _Line] = {}
        for y, row in enumerate(staying):
            if isinstance(row, str):
                if not row:
                    continue  # an empty line is never drawn on: no line there
                line = self._new_line()
                line.update(zip(range(len(row)), map(glyph, row)))
                line.t = now
                shifted[y] = line
            elif row is not None:
                shifted[y] = row
        buffer.clear()
        buffer.update(shifted)
        self.dirty.update(range(lines))

    def index(self) -> None:
        top, bottom = self.margins or Margins(0, self.lines - 1)
        if self.cursor.y != bottom:
            self.cursor_down()
            return
        # Like xterm: only lines leaving the top of the whole screen are kept.
        if top == 0 and not self.in_alt:
            self._keep(self.buffer[0])
        if top == 0 and bottom == self.lines - 1:
            # The common case, scrolling the whole screen, in one pass (the
            # loop in pyte's index() is a fifth of the cost of plain output).
            buffer = self.buffer
            shifted = {y - 1: line for y, line in buffer.items() if y > 0}
            buffer.clear()
            buffer.update(shifted)
            self.dirty.update(range(self.lines))
        else:
            super().index()

    def reset(self) -> None:
        # A program's reset (RIS) starts a fresh screen; the history stays.
        if self.in_alt:
            self._leave_alt(1047)
        super().reset()

    def erase_in_display(self, how: int = 0, *args: object, **kwargs: object) -> None:
        # ED 3 would clear scrollback in xterm; a debug recorder keeps it.
        super().erase_in_display(2 if how == 3 else how, *args, **kwargs)
        if how in (2, 3):
            for line in self.buffer.values():
                line.t = None  # what is printed next is new

    # --- drawing

    def draw(self, data: str) -> None:
        data = printable(data)
        if not data:
            return
        if data.isascii() and self._plain_drawing():
            self._draw_ascii(data)
            return
        for ch in data:
            if (
                self.cursor.x == self.columns - 1
                and modes.DECAWM in self.mode
                and wcwidth(ch) == 2
            ):
                self.cursor.x = self.columns  # a wide char never splits: wrap first, as xterm
            super().draw(ch)
            self._stamp()

    def _plain_drawing(self) -> bool:
        return modes.IRM not in self.mode and self.plain_charset()

    def plain_charset(self) -> bool:
        """Characters are drawn as they come (no DEC graphics or other set)."""
        return self.charset == 0 and self.g0_charset is charsets.LAT1_MAP

    def _draw_ascii(self, data: str) -> None:
        # pyte's draw costs a wcwidth and a namedtuple per character; printable
        # ASCII is always one column wide, so fill whole runs at once.
        cursor = self.cursor
        glyph = self._glyphs_for(cursor.attrs).__getitem__
        columns = self.columns
        wrap = modes.DECAWM in self.mode
        pos, end = 0, len(data)
        while pos < end:
            if cursor.x >= columns:
                if not wrap:
                    # Without autowrap each further character overwrites the
                    # last column (pyte steps back one and draws): only the
                    # run's last one stays. A 5 MB line costs one cell.
                    line = self.buffer[cursor.y]
                    if line.t is None:
                        line.t = self.now
                    line[columns - 1] = glyph(data[end - 1])
                    cursor.x = columns
                    break
                self.carriage_return()
                self.linefeed()
            line = self.buffer[cursor.y]
            if line.t is None:
                line.t = self.now
            x = cursor.x
            n = min(columns - x, end - pos)
            line.update(zip(range(x, x + n), map(glyph, data[pos : pos + n])))
            cursor.x = x + n
            pos += n
        self.dirty.add(cursor.y)

    @staticmethod
    def _glyphs_for(attrs: Char) -> dict[str, Char]:
        # Shared by every screen (a Char cannot change): a seek's fresh screens
        # would each pay ~95 namedtuples per colour again.
        glyphs = _GLYPHS.get(attrs)
        if glyphs is None:
            if len(_GLYPHS) > 256:
                _GLYPHS.clear()
            glyphs = {chr(c): attrs._replace(data=chr(c)) for c in range(0x20, 0x7F)}
            _GLYPHS[attrs] = glyphs
        return glyphs

    def _stamp(self) -> None:
        line = self.buffer[self.cursor.y]
        if line.t is None:
            line.t = self.now

    # --- modes: alternate screen, no column switching

    def set_mode(self, *mode_list: int, **kwargs: object) -> None:
        if kwargs.get("private"):
            for mode in mode_list:
                if mode in ALT_SCREEN_MODES:
                    self._enter_alt(mode)
            mode_list = tuple(m for m in mode_list if m not in ALT_SCREEN_MODES and m != _DECCOLM)
        super().set_mode(*mode_list, **kwargs)

    def reset_mode(self, *mode_list: int, **kwargs: object) -> None:
        if kwargs.get("private"):
            for mode in mode_list:
                if mode in ALT_SCREEN_MODES:
                    self._leave_alt(mode)
            mode_list = tuple(m for m in mode_list if m not in ALT_SCREEN_MODES and m != _DECCOLM)
        super().reset_mode(*mode_list, **kwargs)

    def _enter_alt(self, mode: int) -> None:
        if self.in_alt:
            return
        if mode == 1049:
            self.alt_saved_cursor = copy.copy(self.cursor)
        self.main_buffer = self.buffer
        self.buffer = defaultdict(self._new_line)
        self.in_alt = True
        self.dirty.update(range(self.lines))

    def _leave_alt(self, mode: int) -> None:
        if not self.in_alt or self.main_buffer is None:
            return
        self.buffer = self.main_buffer
        self.main_buffer = None
        self.in_alt = False
        if mode == 1049 and self.alt_saved_cursor is not None:
            self.cursor = self.alt_saved_cursor
            self.alt_saved_cursor = None
            self.ensure_hbounds()
            self.ensure_vbounds()
        self.dirty.update(range(self.lines))

    # --- control strings: DCS, APC, PM, SOS are consumed, never drawn

    def start_control_string(self) -> None:
        self.in_control_string = True
        self.control_string_esc = False

    # --- device queries

    def report_device_status(self, mode: int, **kwargs: object) -> None:
        # pyte's version rejects the private form (CSI ? 6 n); answer both alike.
        super().report_device_status(mode)

    def write_process_input(self, data: str) -> None:
        if self.reply is not None:
            self.reply(data)

    def set_title(self, param: str) -> None:
        self.title = printable(param)[:256]

    def set_icon_name(self, param: str) -> None:
        self.icon_name = printable(param)[:256]

    # --- resize: keep the cursor's line, scroll the rest into history

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        lines = max(1, lines or self.lines)
        columns = max(1, columns or self.columns)
        if lines == self.lines and columns == self.columns:
            return
        if self.in_alt and self.main_buffer is not None:
            saved = self.alt_saved_cursor
            y = self._fit_lines(self.main_buffer, saved.y if saved else 0, lines, keep=True)
            if saved is not None:
                saved.y = y
            self._fit_lines(self.buffer, self.cursor.y, lines, keep=False)
        else:
            self.cursor.y = self._fit_lines(self.buffer, self.cursor.y, lines, keep=True)
        if columns < self.columns:
            for buffer in (self.buffer, self.main_buffer or {}):
                for line in buffer.values():
                    for x in [x for x in line if x >= columns]:
                        del line[x]
        self.lines, self.columns = lines, columns
        self.margins = None
        self.tabstops |= set(range(8, columns, 8))
        self.tabstops = {stop for stop in self.tabstops if stop < columns}
        self.ensure_hbounds()
        self.ensure_vbounds()
        self.dirty.update(range(lines))

    def _fit_lines(self, buffer: dict[int, _Line], cursor_y: int, lines: int, keep: bool) -> int:
        """Make `buffer` `lines` high; returns where the cursor's line went.

        Shrinking pushes lines above the cursor into history (as xterm does)
        and drops what is below; growing pulls history back down."""
        shift = 0
        if lines < self.lines:
            shift = -max(0, cursor_y - (lines - 1))
            for y in range(-shift):
                if keep:
                    self._keep(buffer.get(y) or self._new_line())
        elif lines > self.lines and keep and self.history_lines:
            shift = min(lines - self.lines, len(self.history_lines))
        moved = {y + shift: line for y, line in buffer.items() if 0 <= y + shift < lines}
        for y in range(shift):
            line = self._new_line()
            line.update(enumerate(self.history_lines.pop()))
            line.t = self.history_times.pop()
            moved[shift - 1 - y] = line
        buffer.clear()
        buffer.update(moved)
        return max(0, min(lines - 1, cursor_y + shift))


# Two or more lines of printable ASCII, each ended by CR LF, as a pty gives them.
_PLAIN_LINES = re.compile(r"(?:[ -~]*\r\n){2,}")


class _Stream(pyte.Stream):
    """pyte.Stream that also consumes DCS/APC/PM/SOS strings and remembers an
    unfinished escape sequence, so a snapshot can resume mid-sequence."""

    escape = {
        **pyte.Stream.escape,
        "P": "start_control_string",  # DCS
        "_": "start_control_string",  # APC
        "^": "start_control_string",  # PM
        "X": "start_control_string",  # SOS
    }

    # Like xterm and tmux in UTF-8, U+009B and U+009D are not CSI and OSC
    # (pyte would obey them): they are plain text, which draw() drops.
    _text_pattern = re.compile(
        "[^" + re.escape("".join({ctrl.ESC, ctrl.NUL, ctrl.DEL, *pyte.Stream.basic})) + "]+"
    )

    def __init__(self, screen: _Emulator) -> None:
        self.unfinished = ""  # text of an escape sequence still being parsed
        self.emulator = screen
        super().__init__(screen)

    def feed(self, data: str) -> None:
        # pyte's own feed loop, plus the control-string check and `unfinished`.
        emulator = self.emulator
        send = self._send_to_parser
        draw = emulator.draw
        carriage_return, linefeed = emulator.carriage_return, emulator.linefeed
        match_text = self._text_pattern.match
        match_lines = _PLAIN_LINES.match
        taking_plain_text = self._taking_plain_text
        unfinished = self.unfinished
        sequence_start = 0 if unfinished else None
        length = len(data)
        offset = 0
        while offset < length:
            if emulator.in_control_string:
                offset = self._skip_control_string(data, offset)
                taking_plain_text = True
                unfinished, sequence_start = "", None
            elif taking_plain_text:
                # (The state first: where lines cannot scroll through, a
                # match per line would scan the rest of the text each time.)
                if emulator.scrolls_through() and (lines := match_lines(data, offset)):
                    # Lines that only scroll through (a log, seq): in one step.
                    offset = lines.end()
                    emulator.lines_through(lines[0].split("\r\n")[:-1])
                    continue
                match = match_text(data, offset)
                if match:
                    start, offset = match.span()
                    draw(data[start:offset])
                elif data.startswith("\r\n", offset):
                    # What the parser would do for CR LF, without two trips
                    # through it: most of the cost of short lines.
                    carriage_return()
                    linefeed()
                    offset += 2
                elif data[offset] == "\n":  # LF alone (stty -onlcr, raw output)
                    linefeed()
                    offset += 1
                elif data[offset] == "\r":  # CR alone (progress bars)
                    carriage_return()
                    offset += 1
                else:
                    taking_plain_text = False
            else:
                if sequence_start is None:
                    sequence_start = offset
                try:
                    taking_plain_text = send(data[offset])
                except Exception:
                    # pyte raises on some odd sequences (TypeError for
                    # CSI ? 6 n) and has already reset its parser; a pane
                    # must survive whatever a program prints.
                    taking_plain_text = True
                offset += 1
                if taking_plain_text:  # the sequence is complete
                    unfinished, sequence_start = "", None
        self._taking_plain_text = taking_plain_text
        if sequence_start is None:
            self.unfinished = ""
        else:
            # Only strings (OSC) grow long; their start is all a resume needs.
            self.unfinished = (unfinished + data[sequence_start:])[:_UNFINISHED_KEPT]

    def _skip_control_string(self, data: str, offset: int) -> int:
        emulator = self.emulator
        if emulator.control_string_esc:
            emulator.control_string_esc = False
            if data[offset] == "\\":
                emulator.in_control_string = False
                return offset + 1
        end = _CONTROL_STRING_END.search(data, offset)
        if end is None:
            emulator.control_string_esc = data.endswith("\x1b")
            return len(data)
        emulator.in_control_string = False
        return end.end()

    @property
    def at_ground(self) -> bool:
        """Between escape sequences, where skipping plain text is safe."""
        return bool(self._taking_plain_text) and not self.unfinished


# ------------------------------------------------------------ the pane model


def _timed_piece(text: str, lines_cheap: bool = False) -> int:
    """How much of `text` to emulate before looking at the clock again
    (LINES_CHEAP: plain lines would scroll through, in one step: ~1 us each)."""
    if lines_cheap and (run := _PLAIN_LINES.match(text, 0, _PLAIN_LINES_PIECE)):
        return run.end()
    head = text[:_PLAIN_PIECE]
    if head.isascii() and head.isprintable():
        return len(head)
    # A line feed at the bottom scrolls the screen into history: lines are
    # what costs most (~50 us each on a busy machine), so they are counted too.
    end = 0
    for _ in range(_TIMED_LINES):
        end = text.find("\n", end, _TIMED_PIECE) + 1
        if end == 0:
            return _TIMED_PIECE
    return end


@dataclass(frozen=True)
class _Snapshot:
    columns: int
    lines: int
    buffer: dict[int, _Line]
    main_buffer: dict[int, _Line] | None
    state: dict[str, object]
    history_lines: tuple[Kept, ...]
    history_times: tuple[float, ...]
    queue: tuple[Chunk, ...]
    unfinished: str


def _start_of_last_lines(text: str, count: int) -> int:
    """Offset of the newline before the last `count` lines; -1 if there are fewer."""
    position = len(text)
    for _ in range(count):
        position = text.rfind("\n", 0, position)
        if position < 0:
            return -1
    return position


def _copy_buffer(buffer: dict[int, _Line]) -> dict[int, _Line]:
    copied = {}
    for y, line in buffer.items():
        clone = _Line(line.default)
        clone.update(line)
        clone.t = line.t
        copied[y] = clone
    return copied


# Emulator attributes a snapshot must restore (besides buffers and history).
_STATE = (
    "mode", "margins", "charset", "g0_charset", "g1_charset", "tabstops", "title",
    "icon_name", "saved_columns", "in_alt", "in_control_string", "control_string_esc",
    "history_dropped", "now",
)


# pyte keeps private modes shifted left by 5 (DEC ?2004 is 2004 << 5).
BRACKETED_PASTE = 2004 << 5


class PaneScreen:
    """The screen of one pane: fed lazily, read as rows of cells.

    Scroll positions count lines back from the live screen: 0 shows the live
    screen, `max_scroll` the oldest history.
    """

    def __init__(
        self,
        cols: int,
        rows: int,
        history: int = 5000,
        reply: Callable[[str], None] | None = None,
        max_pending: int = _DEFAULT_MAX_PENDING,
    ) -> None:
        self._emulator = _Emulator(max(1, cols), max(1, rows), history, reply)
        self._stream = _Stream(self._emulator)
        self._queue = Backlog()
        self.max_pending = max_pending
        self.skipped = 0  # chars of backlog never emulated (flood guard)
        self.wants_reply = False  # a device query is queued: catch up soon
        self._lost = False  # the queue overflowed: the parser state is unknown
        self._lines_seen = 0  # lines that had scrolled into history at the last changed_lines
        # id(line) -> (a copy of its cells, the line) as changed_lines last returned it
        self._known_lines: dict[int, tuple[dict[int, Char], _Line]] = {}
        self._known_columns = 0

    # --- size and state

    @property
    def lost(self) -> bool:
        """Output no longer in memory: fell off the top of history, or skipped in a flood."""
        return bool(self._emulator.history_dropped or self.skipped)

    @property
    def history_used(self) -> int:
        """Lines of history held now."""
        return len(self._emulator.history_lines)

    @property
    def cols(self) -> int:
        return self._emulator.columns

    @property
    def rows(self) -> int:
        return self._emulator.lines

    @property
    def title(self) -> str:
        """The title the program set (OSC 0/2), made printable; never emitted."""
        return self._emulator.title

    @property
    def in_alt_screen(self) -> bool:
        return self._emulator.in_alt

    @property
    def bracketed_paste(self) -> bool:
        """The program asked for pastes in brackets (mode ?2004, as of what is emulated)."""
        return BRACKETED_PASTE in self._emulator.mode

    @property
    def cursor(self) -> tuple[int, int] | None:
        """(col, row) of the live cursor, or None when the program hid it."""
        cursor = self._emulator.cursor
        if cursor.hidden:
            return None
        return min(cursor.x, self.cols - 1), cursor.y

    @property
    def max_scroll(self) -> int:
        return len(self._emulator.history_lines)

    @property
    def reply(self) -> Callable[[str], None] | None:
        """Where answers to the program's device queries go (None: nowhere)."""
        return self._emulator.reply

    def answer_with(self, reply: Callable[[str], None] | None) -> None:
        """Answer device queries from now on through `reply`: a screen rebuilt
        from a recording is given it only once it has caught up, so what the
        program asked long ago is not answered again."""
        self._emulator.reply = reply

    # --- feeding

    def feed(self, text: str, t: float = 0.0) -> None:
        """Queue `text` printed at time `t`; cheap, never emulates."""
        if not text:
            return
        self._queue.append(t, text)
        if self._emulator.reply is not None and "\x1b[" in text and _DEVICE_QUERY.search(text):
            self.wants_reply = True
        while self._queue.pending > self.max_pending and len(self._queue) > 1:
            self.skipped += len(self._queue.popleft().text)
            self._lost = True

    @property
    def pending(self) -> int:
        """Chars queued, not emulated yet."""
        return self._queue.pending

    def catch_up(
        self,
        budget: int | None = None,
        *,
        skip: bool = True,
        limit: int | None = None,
        seconds: float | None = None,
    ) -> bool:
        """Emulate the queued text; True if what the live screen shows changed.

        With `skip`, backlog older than the last `budget` chars is skipped
        when that cannot change what ends up on the screen: only plain
        lines (CR LF or LF alone), colours and erase-line, followed by at
        least a screenful of lines. Scrollback then has a marked gap (the
        recording has it all). The default budget is what emulates in a few
        milliseconds. `skip=False` emulates everything. `limit` caps the
        chars emulated in this call, `seconds` the time spent emulating
        (the clock is read every 256 chars or 16 lines, so whatever a pane
        printed, a call costs about that much); the rest stays queued for
        the next call.
        """
        emulator = self._emulator
        if not self._queue:
            return False
        deadline = None if seconds is None else time.perf_counter() + seconds
        before = (emulator.cursor.x, emulator.cursor.y, emulator.in_alt, emulator.title)
        emulator.dirty.clear()
        if self._lost:
            self._recover_from_overflow()
        if skip:
            if not self._stream.at_ground and limit is None:
                self._finish_line()
            self._skip_backlog(budget)
        remaining = sys.maxsize if limit is None else max(1, limit)
        while self._queue and remaining > 0:
            chunk = self._queue.popleft()
            t, text = chunk.t, chunk.text
            if deadline is not None:
                cheap = self._stream.at_ground and emulator.scrolls_through()
                take = min(remaining, _timed_piece(text, cheap))
            else:
                take = remaining
            if len(text) > take:
                self._queue.push_front(t, text[take:])
                text = text[:take]
            remaining -= len(text)
            emulator.now = t
            self._stream.feed(text)
            if deadline is not None and time.perf_counter() >= deadline:
                break
        if not self._queue:
            self.wants_reply = False
        after = (emulator.cursor.x, emulator.cursor.y, emulator.in_alt, emulator.title)
        return bool(emulator.dirty) or before != after

    def _finish_line(self) -> None:
        """Emulate up to the end of the first queued line: a read that ended
        inside an escape sequence must not keep the flood guard off."""
        head = next(iter(self._queue))
        end = head.text.find("\n", 0, _FINISH_LINE_MAX) + 1
        if end > 0:
            self._queue.drop(end)
            self._emulator.now = head.t
            self._stream.feed(head.text[:end])

    def _skip_backlog(self, budget: int | None) -> None:
        if self.pending <= self.rows or not self._stream.at_ground:
            return
        emulator = self._emulator
        if emulator.in_control_string or emulator.margins is not None:
            return
        cursor = Cursor(
            column=emulator.cursor.x,
            columns=self.cols,
            rows=self.rows,
            wrap=modes.DECAWM in emulator.mode,
            newline_mode=modes.LNM in emulator.mode,
            plain_charset=emulator.plain_charset(),
        )
        keep = self._queue.affordable() if budget is None else budget
        skip = self._queue.skip_point(keep, cursor)
        if skip is None:
            return
        self._queue.drop(skip.count)
        self.skipped += skip.count
        # Colours set in the skipped part still apply to what follows.
        if skip.colours:
            self._stream.feed(skip.colours)
        self._mark_gap(f"{skip.lines} lines")
        emulator.cursor.x = skip.column

    def _mark_gap(self, what: str) -> None:
        """Stand in for skipped text: a marker line in history, and the
        cursor on a fresh bottom line as if a screenful had scrolled past."""
        emulator = self._emulator
        if emulator.cursor.x > 0:
            emulator.carriage_return()
            emulator.linefeed()
        attrs = emulator.cursor.attrs
        emulator.cursor.attrs = emulator.default_char._replace(reverse=True)
        emulator.draw(f"[{what} skipped here; the recording has everything]"[: self.cols])
        emulator.cursor.attrs = attrs
        emulator.carriage_return()
        emulator.linefeed()
        for y in range(emulator.cursor.y, emulator.lines):
            emulator.buffer.pop(y, None)  # fresh lines, as scrolling would bring
        while emulator.cursor.y < emulator.lines - 1:
            emulator.linefeed()

    def _recover_from_overflow(self) -> None:
        # Text was dropped unseen: restart the parser at a line boundary.
        self._lost = False
        self._stream = _Stream(self._emulator)
        self._emulator.in_control_string = False
        if self._queue:
            newline = next(iter(self._queue)).text.find("\n")
            if newline >= 0:
                self._queue.drop(newline + 1)
                self.skipped += newline + 1
        self._mark_gap("some output")

    def catch_up_keeping(self, lines: int) -> None:
        """Emulate the queue, skipping (as the flood guard does) only backlog
        older than its last `lines` lines: a rebuilt screen holds that much
        history, where `catch_up` keeps what emulates in a few milliseconds."""
        text = "".join(chunk.text for chunk in self._queue)
        start = _start_of_last_lines(text, lines)
        if start < 0:
            self.catch_up(skip=False)
        else:
            self.catch_up(budget=len(text) - start)

    def resize(self, cols: int, rows: int, *, seconds: float | None = None) -> None:
        """Catch up with text printed for the old size, then resize.

        With `seconds`, catch up at most that long: what is still queued
        then is emulated at the new size, as by a terminal lagging behind."""
        self.catch_up(seconds=seconds)
        self._emulator.resize(max(1, rows), max(1, cols))

    def lines_scroll_through(self) -> bool:
        """Whether plain ASCII lines (CR LF ended) printed now would each be
        drawn on a fresh blank line, as they are: nothing queued, the parser
        between sequences, the cursor at the start of a blank bottom line,
        the whole screen scrolling, lines wrapping, no insert mode or other
        character set. Then only the last screenful of them can matter for
        what the screen shows next; the rest just scrolls through."""
        return not self._queue and self._stream.at_ground and self._emulator.scrolls_through()

    # --- reading

    def changed_lines(self) -> list[str]:
        """The text of every line that may show something new since the last
        call: those that scrolled into history meanwhile (as many as it still
        holds), then the live screen's rows the last catch_up drew on. Rows
        that only moved (scrolling) are left out. Call it after each
        catch_up to see every state a viewer could see."""
        emulator = self._emulator
        history = emulator.history_lines
        total = emulator.history_dropped + len(history)
        new = max(0, min(total - self._lines_seen, len(history)))
        self._lines_seen = total
        lines: list[Line] = []
        lines.extend(itertools.islice(reversed(history), new))
        lines.reverse()
        if self._known_columns != self.cols:
            self._known_lines.clear()
            self._known_columns = self.cols
        known = self._known_lines
        # Rows that only moved hold a line whose cells are as they were last
        # returned: compared as dicts, in C, far cheaper than making its text.
        # (An empty line shows nothing and is left out too.)
        rows = list(filter(None, map(emulator.buffer.get, sorted(emulator.dirty))))
        copies = map(_first, map(known.get, map(id, rows), itertools.repeat(_NOT_KNOWN)))
        changed = list(itertools.compress(rows, map(operator.ne, copies, rows)))
        for line in changed:
            known[id(line)] = (dict(line), line)  # the line itself: its id stays its own
        if len(known) > 4 * emulator.lines:
            shown = set(map(id, emulator.buffer.values()))
            self._known_lines = {key: value for key, value in known.items() if key in shown}
        lines.extend(changed)
        return [self._line_text(line) for line in lines]

    def _line_at(self, index: int) -> Line:
        """Line `index` of history followed by the screen (0 = oldest)."""
        emulator = self._emulator
        history = len(emulator.history_lines)
        if index < history:
            return emulator.history_lines[index]
        return emulator.buffer.get(index - history) or emulator._new_line()

    def _window(self, scroll: int) -> list[Line]:
        emulator = self._emulator
        scroll = max(0, min(scroll, self.max_scroll))
        top = len(emulator.history_lines) - scroll
        from_history: list[Line] = list(
            itertools.islice(emulator.history_lines, top, top + self.rows)
        )
        screen_rows = self.rows - len(from_history)
        blank = emulator._new_line()
        return from_history + [emulator.buffer.get(y) or blank for y in range(screen_rows)]

    def rows_at(self, scroll: int = 0) -> list[list[Cell]]:
        """The `rows` lines shown `scroll` lines back (0 = live), each `cols` cells."""
        return [_cells(line, self.cols) for line in self._window(scroll)]

    def live_rows(self) -> list[dict[int, Char]]:
        """The live screen's rows as plain copies, cheap to compare (in C):
        equal copies at the same width draw the same cells (`live_cells`).
        Frame encoders use them to find the rows that changed."""
        buffer = self._emulator.buffer
        return [dict(buffer[y]) if y in buffer else {} for y in range(self.rows)]

    def live_cells(self, y: int) -> list[Cell]:
        """Row `y` of the live screen as cells."""
        emulator = self._emulator
        return _cells(emulator.buffer.get(y) or emulator._new_line(), self.cols)

    def text(self, scroll: int = 0) -> list[str]:
        """The shown lines as plain strings (each exactly `cols` columns wide)."""
        return [row_text(row) for row in self.rows_at(scroll)]

    def _times(self) -> list[float]:
        """Print time of every line, history then screen, never decreasing."""
        emulator = self._emulator
        times = list(emulator.history_times)
        last = times[-1] if times else 0.0
        for y in range(self.rows):
            line = emulator.buffer.get(y)
            if line is not None and line.t is not None and line.t > last:
                last = line.t
            times.append(last)
        return times

    def print_times(self) -> list[float]:
        """When each line held was printed, oldest first (history, then screen)."""
        return self._times()

    def text_of(self, index: int) -> str:
        """The text of line `index` held (0 = the oldest), as a search sees it."""
        return self._line_text(self._line_at(index))

    def line_time(self, scroll: int) -> float:
        """When the top line shown at `scroll` was printed."""
        scroll = max(0, min(scroll, self.max_scroll))
        return self._times()[self.max_scroll - scroll]

    def scroll_for_time(self, t: float) -> int:
        """The scroll position whose top line is the first printed at or after `t`."""
        index = bisect.bisect_left(self._times(), t)
        return max(0, min(self.max_scroll, self.max_scroll - index))

    # --- lines counted back from the live screen's bottom line (0)

    @property
    def total_lines(self) -> int:
        """Lines held: history and screen."""
        return self.max_scroll + self.rows

    def rows_back(self, bottom: int, count: int) -> list[list[Cell]]:
        """`count` lines, oldest first, the last being line `bottom` back."""
        return [self.cells_of(line) for line in self.lines_back(bottom, count)]

    def lines_back(self, bottom: int, count: int) -> list[Line | None]:
        """The lines `rows_back` makes its rows of, None for a blank one (above
        the first line, or a screen row nothing was written on): a history
        line never changes, a screen line's dict is compared to see whether
        it has, so a view keeps what it drew of each (the rows of scrolling
        output move, they rarely change)."""
        total = self.total_lines
        bottom = max(0, min(bottom, total - 1))
        first = total - bottom - count
        emulator = self._emulator
        history = emulator.history_lines
        kept = len(history)
        buffer = emulator.buffer
        return [None if i < 0 else history[i] if i < kept else buffer.get(i - kept)
                for i in range(first, first + count)]

    def cells_of(self, line: Line | None) -> list[Cell]:
        """A line from `lines_back` as exactly `cols` cells."""
        if line is None:
            return [BLANK] * self.cols
        return _cells(line, self.cols)

    def plain_text_of(self, line: Line | None, left: int, columns: int) -> str | None:
        """COLUMNS cells of a line from `lines_back`, from column LEFT, as text
        when the line is plain (printable ASCII, default style), else None:
        the row is then drawn from `cells_of`."""
        if line is None:
            return " " * columns
        shown = min(columns, max(0, self.cols - left))  # what cells_of would give
        text = _plain_text(line, left, shown)
        return None if text is None else text + " " * (columns - shown)

    def tail_row(self) -> int:
        """The screen row the newest output ends on: the cursor's row, or the
        last written row when the cursor is below it (a line just ended)."""
        emulator = self._emulator
        written = [y for y, line in emulator.buffer.items()
                   if y < self.rows and any(ch.data not in (" ", "") for ch in line.values())]
        cursor_y = min(emulator.cursor.y, self.rows - 1)
        return min(cursor_y, max(written)) if written else cursor_y

    def time_back(self, back: int) -> float:
        """When line `back` was printed (a blank line: when the one above it was)."""
        times = self._times()
        return times[max(0, min(len(times) - 1, len(times) - 1 - back))]

    def last_printed_by(self, t: float) -> int | None:
        """The newest line printed at or before `t`, as lines back; None if none was."""
        emulator = self._emulator
        for y in range(self.rows - 1, -1, -1):
            line = emulator.buffer.get(y)
            if line is not None and line.t is not None and line.t <= t:
                return self.rows - 1 - y
        older = bisect.bisect_right(emulator.history_times, t)  # times never decrease
        return None if older == 0 else self.total_lines - older

    def search_slice(
        self, pattern: re.Pattern[str], start: int, backwards: bool, *,
        col: int | None = None, limit: int = 2000,
    ) -> tuple[SearchHit | None, int, int | None]:
        """Like `search`, over at most `limit` lines: (hit, lines scanned,
        where to go on, or None when the end of what is held was reached)."""
        total = self.total_lines
        start = max(0, min(start, total - 1))
        end = min(total, start + limit) if backwards else max(-1, start - limit)
        step = 1 if backwards else -1
        for back in range(start, end, step):
            line = self._line_at(total - 1 - back)
            matches = [m for m in pattern.finditer(self._line_text(line)) if m.end() > m.start()]
            if not matches:
                continue
            starts, ends = self._columns(line)
            if back == start and col is not None:
                matches = [m for m in matches
                           if (starts[m.start()] < col if backwards else starts[m.start()] > col)]
            if matches:
                match = matches[-1] if backwards else matches[0]
                hit = self._hit(back, starts[match.start()], ends[match.end() - 1], None)
                return hit, abs(back - start) + 1, None
        scanned = abs(end - start)
        return None, scanned, (None if end in (total, -1) else end)

    def search(
        self,
        pattern: re.Pattern[str],
        start: int,
        backwards: bool = True,
        *,
        col: int | None = None,
        view: int | None = None,
    ) -> SearchHit | None:
        """The next match of `pattern` in history + screen, or None.

        `start` is a line counted back from the bottom line of the live
        screen (so the bottom row shown at scroll s is line s); the search
        includes that line and goes back in time (`backwards`) or forward.
        With `col`, only matches on the start line before (backwards) or after
        (forwards) that column count: pass a hit's line and col_start to find
        the next one. The hit's scroll keeps `view` when the match is visible
        there, else centres the match.
        """
        total = self.max_scroll + self.rows
        start = max(0, min(start, total - 1))
        step = 1 if backwards else -1
        for back in range(start, total if backwards else -1, step):
            line = self._line_at(total - 1 - back)
            matches = [m for m in pattern.finditer(self._line_text(line)) if m.end() > m.start()]
            if not matches:
                continue
            starts, ends = self._columns(line)
            if back == start and col is not None:
                matches = [
                    m for m in matches
                    if (starts[m.start()] < col if backwards else starts[m.start()] > col)
                ]
            if matches:
                match = matches[-1] if backwards else matches[0]
                return self._hit(back, starts[match.start()], ends[match.end() - 1], view)
        return None

    def _line_text(self, line: Line) -> str:
        return "".join(map(_data_of, _chars(line, self.cols))).rstrip()

    def _columns(self, line: Line) -> tuple[list[int], list[int]]:
        """For each code point of the line's text, its cell's first and end column."""
        starts: list[int] = []
        ends: list[int] = []
        chars = _chars(line, self.cols)
        for x, char in enumerate(chars):
            data = char.data
            if data:
                width = 2 if x + 1 < self.cols and chars[x + 1].data == "" else 1
                starts.extend([x] * len(data))
                ends.extend([x + width] * len(data))
        return starts, ends

    def _hit(self, back: int, col_start: int, col_end: int, view: int | None) -> SearchHit:
        rows = self.rows
        if view is not None and view <= back < view + rows:
            scroll = view
        else:
            scroll = max(0, min(self.max_scroll, back - rows // 2))
        return SearchHit(scroll, rows - 1 - (back - scroll), col_start, col_end, back)

    # --- replay seeking

    def snapshot(self) -> object:
        """A copy of everything needed to come back to this moment."""
        emulator = self._emulator
        state = {name: copy.copy(getattr(emulator, name)) for name in _STATE}
        state["cursor"] = copy.copy(emulator.cursor)
        state["alt_saved_cursor"] = copy.copy(emulator.alt_saved_cursor)
        state["savepoints"] = [
            point._replace(cursor=copy.copy(point.cursor)) for point in emulator.savepoints
        ]
        return _Snapshot(
            columns=emulator.columns,
            lines=emulator.lines,
            buffer=_copy_buffer(emulator.buffer),
            main_buffer=(
                _copy_buffer(emulator.main_buffer) if emulator.main_buffer is not None else None
            ),
            state=state,
            # Kept lines are tuples: sharing them is safe.
            history_lines=tuple(emulator.history_lines),
            history_times=tuple(emulator.history_times),
            queue=tuple(self._queue),
            unfinished=self._stream.unfinished,
        )

    def restore(self, snap: object) -> None:
        """Go back to the moment `snap` was taken."""
        if not isinstance(snap, _Snapshot):
            raise TypeError("not a PaneScreen snapshot")
        emulator = self._emulator
        emulator.columns, emulator.lines = snap.columns, snap.lines
        emulator.buffer = defaultdict(emulator._new_line, _copy_buffer(snap.buffer))
        emulator.main_buffer = (
            defaultdict(emulator._new_line, _copy_buffer(snap.main_buffer))
            if snap.main_buffer is not None
            else None
        )
        for name, value in snap.state.items():
            setattr(emulator, name, copy.copy(value))
        emulator.savepoints = [
            point._replace(cursor=copy.copy(point.cursor)) for point in emulator.savepoints
        ]
        emulator.history_lines.clear()
        emulator.history_lines.extend(snap.history_lines)
        emulator.history_times.clear()
        emulator.history_times.extend(snap.history_times)
        emulator.dirty.update(range(emulator.lines))
        self._queue = Backlog(snap.queue)  # chunks never change: sharing them is safe
        self._lost = False
        self._stream = _Stream(emulator)
        if snap.unfinished:
            # Resume the half-parsed sequence; controls inside it already acted.
            self._stream.feed(snap.unfinished.translate(_ACTED_INSIDE_SEQUENCE))
