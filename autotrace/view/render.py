"""Turn pane screens into styled lines (curtsies FmtStr); no terminal I/O here.

Only cells of the emulated screens are drawn: bytes a pane printed never
reach the user's terminal raw (DESIGN.md, Security).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Sequence
from operator import attrgetter, itemgetter
from typing import Any

from curtsies.formatstring import Chunk, FmtStr
from curtsies.formatstringarray import FSArray
from curtsies.termformatconstants import BG_COLORS, FG_COLORS

from autotrace.sanitise import cell_text
from autotrace.view import lenses
from autotrace.view.layout import Rect

ACCENTS = ("cyan", "yellow", "green", "magenta", "blue", "red", "gray")

# pyte's colour names -> the eight colours curtsies draws; bright ones add bold.
_PYTE_NAMES = {"brown": "yellow", "white": "gray", "lightgray": "gray"}


def accent(index: int) -> str:
    return ACCENTS[index % len(ACCENTS)]


def _nearest_basic(hex_colour: str) -> str | None:
    """256-colour and true-colour cells (pyte gives hex) -> nearest of the eight."""
    try:
        r, g, b = (int(hex_colour[i:i + 2], 16) for i in (0, 2, 4))
    except ValueError:
        return None
    bits = (r > 127, g > 127, b > 127)
    return {
        (False, False, False): "black", (True, False, False): "red",
        (False, True, False): "green", (True, True, False): "yellow",
        (False, False, True): "blue", (True, False, True): "magenta",
        (False, True, True): "cyan", (True, True, True): "gray",
    }[bits]


def colour_code(name: str, table: dict[str, int]) -> tuple[int | None, bool]:
    """(SGR code or None for default, is_bright) for a pyte colour name."""
    if not name or name == "default":
        return None, False
    bright = name.startswith("bright")
    base = name[6:] if bright else name
    base = _PYTE_NAMES.get(base, base)
    if base not in table and len(base) == 6:
        base = _nearest_basic(base) or ""
    return table.get(base), bright


_STYLE = attrgetter("fg", "bg", "bold", "italics", "underscore", "reverse")
_CHAR = attrgetter("char")
_DATA = attrgetter("data")
_first, _second = itemgetter(0), itemgetter(1)
Style = tuple  # (fg, bg, bold, italics, underscore, reverse), as the screen model has them


@functools.lru_cache(maxsize=1024)
def style_atts(style: Style, colours: bool, marked: bool = False) -> dict[str, int | bool]:
    """curtsies attributes for a cell style; a screen uses only a few styles."""
    fg_name, bg_name, bold, italics, underscore, reverse = style
    atts: dict[str, int | bool] = {}
    fg, bright = colour_code(fg_name, dict(FG_COLORS))
    if colours:
        bg, _ = colour_code(bg_name, dict(BG_COLORS))
        if fg is not None:
            atts["fg"] = fg
        if bg is not None:
            atts["bg"] = bg
    if bold or (colours and bright) or marked:
        atts["bold"] = True
    if italics:
        atts["italic"] = True
    if underscore:
        atts["underline"] = True
    if reverse != marked:  # a search match is drawn inverted
        atts["invert"] = True
    return atts


def cell_atts(cell: Any, colours: bool) -> dict[str, int | bool]:
    return style_atts(_STYLE(cell), colours)


# How a lens's spans (view/lenses.py) are drawn over the cell's own attributes.
LENS_ATTS: dict[str, dict[str, int | bool]] = {
    lenses.CALL: {"bold": True},
    lenses.FAILED_CALL: {"bold": True, "fg": FG_COLORS["red"]},
    lenses.FAILED: {"bold": True, "fg": FG_COLORS["red"]},
    lenses.TRUNCATED: {"bold": True, "fg": FG_COLORS["black"], "bg": BG_COLORS["yellow"]},
    lenses.RCODE: {"bold": True, "fg": FG_COLORS["red"]},
}


def cells_to_line(cells: Sequence[Any], width: int, colours: bool = True,
                  marks: Sequence[tuple[int, int]] = (),
                  spans: Sequence[lenses.Span] = ()) -> FmtStr:
    """One screen row as a FmtStr exactly `width` columns wide.

    Each of `marks`, (col_start, col_end) with the end exclusive, is drawn
    inverted: search matches. Each of a lens's `spans` is drawn in its style,
    its text (if any) instead of the cells' (what follows moves right).
    """
    chunks: list[Chunk] = []
    marked_cols = {x for start, end in marks for x in range(start, end)}
    cells = cells[:width]
    # The screen model's Cell has `char`; a plain pyte Char has `data`.
    text_of = _CHAR if cells and hasattr(cells[0], "char") else _DATA
    if not spans and not marked_cols:  # most rows: one pass over the cells, in C
        styles = list(map(_STYLE, cells))
        texts = list(map(text_of, cells))
        if styles and styles.count(styles[0]) == len(styles):  # plain text: one run
            runs: Iterable[tuple[Style, Iterable[tuple[Style, str]]]] = [
                (styles[0], zip(styles, texts))]
        else:
            runs = itertools.groupby(zip(styles, texts), key=_first)
        for style, run in runs:
            text = "".join(map(_second, run))
            if text:
                chunks.append(Chunk(cell_text(text), style_atts(style, colours)))
        return _fit(FmtStr(*chunks), width)
    if not spans:  # a search's matches on the row
        for (style, marked), group in itertools.groupby(
                enumerate(cells), key=lambda item: (_STYLE(item[1]), item[0] in marked_cols)):
            text = "".join(text_of(cell) for _, cell in group)
            if text:
                chunks.append(Chunk(cell_text(text), style_atts(style, colours, marked)))
        return _fit(FmtStr(*chunks), width)
    span_at = {x: span for span in spans for x in range(span.start, span.end)}
    replaced: set[lenses.Span] = set()
    for (style, marked, span), group in itertools.groupby(
            enumerate(cells), key=lambda item: (_STYLE(item[1]), item[0] in marked_cols,
                                                span_at.get(item[0]))):
        text = "".join(text_of(cell) for _, cell in group)
        atts = style_atts(style, colours, marked)
        if span is not None:
            atts = {**atts, **LENS_ATTS[span.style]}
            if span.text is not None:
                text = "" if span in replaced else span.text
                replaced.add(span)
        if text:
            chunks.append(Chunk(cell_text(text), atts))
    return _fit(FmtStr(*chunks), width)


def _fit(line: FmtStr, width: int) -> FmtStr:
    have = line.width  # a sum over the chunks each time it is asked: asked once
    if have > width:
        line = line.width_aware_slice(slice(0, width))
        have = line.width
    if have < width:
        line = line + FmtStr(Chunk(" " * (width - have)))
    return line


def plain_row(text: str) -> FmtStr:
    """A row of printable ASCII in the default style, already as wide as its
    place (screen.plain_text_of): what cells_to_line makes of its cells."""
    return FmtStr(Chunk(text, {}))


def plain(text: str, width: int, **atts: int | bool) -> FmtStr:
    """Text padded or cut to `width`, with one set of attributes."""
    text = cell_text(text)
    return _fit(FmtStr(Chunk(text, atts)) if text else FmtStr(), width)


def styled(text: str, width: int, fg: str | None = None, bg: str | None = None,
           **flags: bool) -> FmtStr:
    atts: dict[str, int | bool] = dict(flags)
    if fg:
        atts["fg"] = FG_COLORS[fg]
    if bg:
        atts["bg"] = BG_COLORS[bg]
    return plain(text, width, **atts)


def join(parts: Iterable[FmtStr]) -> FmtStr:
    out = FmtStr()
    for part in parts:
        out = out + part
    return out


@functools.lru_cache(maxsize=256)  # a title changes with its pane's state, not every frame
def pane_title(index: int, command: str, state: str, width: int, focused: bool,
               extra: str = "") -> FmtStr:
    """` N  state  command`: the state comes first so a long command never hides it.

    The FmtStr returned is shared (cached): never changed, only added to."""
    colour = accent(index)
    label = f" {index} "
    command = " ".join(command.split())  # a multi-line command fits one title line
    rest = f" {state}{'  ' + extra if extra else ''}  {command}"
    head = styled(label, len(label), fg="black", bg=colour, bold=True)
    body = styled(rest, max(0, width - len(label)), fg=colour, bold=focused,
                  underline=focused)
    return _fit(head + body, width) if width > len(label) else plain(label, width)


def compose(width: int, height: int, blocks: Iterable[tuple[Rect, list[FmtStr]]],
            header: FmtStr, footer: FmtStr) -> list[FmtStr]:
    """The whole frame as terminal rows: header, pane blocks side by side, footer."""
    segments: list[list[tuple[int, FmtStr]]] = [[] for _ in range(height)]
    for rect, rows in blocks:
        for dy, row in enumerate(rows[:rect.height]):
            if 0 <= rect.y + dy < height:
                fitted = row if row.width == rect.width else _fit(row, rect.width)
                segments[rect.y + dy].append((rect.x, fitted))
    lines = [_fit(header, width)]
    for y in range(1, height - 1):
        parts = sorted(segments[y], key=lambda part: part[0])
        line, x, used = FmtStr(), 0, 0  # used: the line's width so far
        for left, part in parts:
            if left > x:
                line, used = line + FmtStr(Chunk(" " * (left - x))), used + left - x
            part_width = part.width
            line, x, used = line + part, left + part_width, used + part_width
        lines.append(line if used == width else _fit(line, width))
    lines.append(_fit(footer, width))
    return lines


def message_frame(width: int, height: int, lines: list[str]) -> FSArray:
    """A centred message, e.g. for a terminal that is too small."""
    frame = FSArray(height, width)
    top = max(0, (height - len(lines)) // 2)
    for i, text in enumerate(lines[:height]):
        text = text[:width]
        left = max(0, (width - len(text)) // 2)
        row = plain(" " * left + text, width, bold=True)
        frame[top + i:top + i + 1, 0:width] = [row]
    return frame
