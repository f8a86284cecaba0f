"""Text from outside made safe for a terminal: one definition of what must
never reach it, and the forms such text is shown in.

Text from a recording, a bundle, a pane, a command line or a file name may
hold escape sequences (OSC 52 sets the clipboard, OSC 2 the title, CSI ?1000h
the mouse mode), bidi controls that reorder the line, or lone surrogates
(undecodable bytes of a file name) that cannot even be encoded for output.
Everything that shows such text goes through here:

- `printable`: unsafe characters removed, as a terminal would show them
  (nothing): the screen model's cells, `cat`, `info`;
- `cell_text`: unsafe characters each replaced by "?", keeping the width
  of a row of cells;
- `one_line`: line breaks and tabs become spaces, the rest as `cell_text`:
  text laid out in a pane (probes);
- `spelled_out`: unsafe characters written as escapes (`\\x1b`), so the user
  sees that a name holds them;
- `message`: `spelled_out` on one line, long words shortened: a line for
  the user on stderr or in a prompt.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable

# The width the screen model (pyte) gives a character: pyte's is wcwidth's.
from wcwidth import wcwidth

PLACEHOLDER = "\ufffd"  # shown for characters that cannot be shown at all

NAME_LIMIT = 120  # characters of one word (a path, a name) in a message
LINE_LIMIT = 500  # characters of a whole message
ELLIPSIS = "…"


def shown_as(ch: str) -> str | None:
    """The one definition: what a character becomes on a terminal: itself,
    PLACEHOLDER, or None for a character that must not reach it."""
    category = unicodedata.category(ch)
    if category == "Cc":
        return None  # C0, DEL and C1 controls: escape sequences start with them
    if category in ("Cs", "Cn"):
        return PLACEHOLDER  # lone surrogates cannot even be encoded for output
    if category in ("Cf", "Zl", "Zp"):
        return None  # bidi and format controls could reorder the user's terminal
    width = wcwidth(ch)
    if width > 0 or (width == 0 and unicodedata.combining(ch)):
        return ch
    return None  # zero-width but not combining: a terminal emulator stops drawing at it


class _Table(dict):  # type: ignore[type-arg]
    """A str.translate table derived from `shown_as`, filled lazily (a table
    of all of Unicode would be large); bounded so hostile input can't grow it."""

    def __init__(self, form: Callable[[str], str | None]):
        super().__init__()
        self._form = form

    def __missing__(self, code: int) -> str | None:
        if len(self) > 8192:
            self.clear()
        value = self[code] = self._form(chr(code))
        return value


def _or_question_mark(ch: str) -> str:
    return ch if shown_as(ch) == ch else "?"


def _escape(ch: str) -> str:
    shown = shown_as(ch)
    if shown == ch:
        return ch
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # a byte a file name's decoding could not take
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_PRINTABLE = _Table(shown_as)
_CELL = _Table(_or_question_mark)
_ONE_LINE = _Table(lambda ch: " " if ch in "\n\r\t" else _or_question_mark(ch))
_ESCAPED = _Table(_escape)


def printable(text: str) -> str:
    """`text` with everything that must not reach a terminal removed or replaced."""
    if text.isascii() and text.isprintable():
        return text  # the common case, at C speed
    return text.translate(_PRINTABLE)


def cell_text(text: str) -> str:
    """`text` with every unsafe character replaced by one "?"."""
    if text.isprintable():
        return text
    return text.translate(_CELL)


def one_line(text: str) -> str:
    """`text` on one line: breaks and tabs become spaces, the rest as `cell_text`."""
    if text.isascii() and text.isprintable():
        return text
    return text.translate(_ONE_LINE)


def spelled_out(text: str) -> str:
    """`text` with every unsafe character written as an escape (`\\x1b`,
    `\\u202e`; an undecodable byte of a file name as `\\xe9`)."""
    if text.isascii() and text.isprintable():
        return text
    return text.translate(_ESCAPED)


def shorten(text: str, limit: int = NAME_LIMIT) -> str:
    """`text` cut to `limit` characters by eliding its middle: both ends of a
    path or a command say the most."""
    if len(text) <= limit:
        return text
    head = (limit - len(ELLIPSIS) + 1) // 2
    tail = limit - len(ELLIPSIS) - head
    return f"{text[:head]}{ELLIPSIS}{text[len(text) - tail:] if tail else ''}"


_LONG_WORD = re.compile(rf"\S{{{NAME_LIMIT + 1},}}")


def _shorten_names(word: str) -> str:
    # Name by name, so a long path still shows which file it is.
    return "/".join(shorten(name) for name in word.split("/"))


def message(text: str) -> str:
    """One line for the user: unsafe characters spelled out as escapes
    (a line break too), each name (a word, or a part of a path) over
    NAME_LIMIT characters and the whole over LINE_LIMIT shortened."""
    text = spelled_out(text)
    text = _LONG_WORD.sub(lambda word: _shorten_names(word.group()), text)
    return shorten(text, LINE_LIMIT)
