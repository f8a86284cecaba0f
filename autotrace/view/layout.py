"""Where each pane goes: a pure function of pane count, area size and zoom.

The main pane (0) always keeps its place; tracers share the rest. Rects tile
the area exactly, so the view never has to paint gaps or clip overlaps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

MIN_PANE_COLS = 20
MIN_PANE_ROWS = 3  # title line + 2 content rows

# A terminal cell is about twice as tall as it is wide: a pane looks square
# when it is twice as many columns wide as it is rows high.
_CELL_ASPECT = 2.0


@dataclass(frozen=True)
class Rect:
    """A pane's whole box; its first row is the title line, content is height-1 rows."""

    x: int
    y: int
    width: int
    height: int

    @property
    def content_rows(self) -> int:
        return max(0, self.height - 1)


def visible_panes(
    count: int, visible: int = 4, offset: int = 0, zoom: int | None = None
) -> list[int]:
    """Which panes are shown, in slot order.

    Pane 0 (main) always stays; tracers 1..count-1 fill the other visible-1
    slots, rotated by `offset` (the `m` key cycles hidden panes in) and kept
    in pane order so a pane's neighbours stay predictable. With a valid
    zoom, just [zoom].
    """
    if count <= 0:
        return []
    if zoom is not None and 0 <= zoom < count:
        return [zoom]
    visible = max(1, visible)
    if count <= visible:
        return list(range(count))
    tracers = list(range(1, count))
    start = offset % len(tracers)
    shown = (tracers[start:] + tracers[:start])[: visible - 1]
    return [0, *sorted(shown)]


def tile(count: int, cols: int, rows: int, vertical: bool = False) -> list[Rect]:
    """Rects for `count` panes tiling the cols x rows area exactly.

    1 pane: the whole area. 2: top/bottom halves (vertical: left/right, the
    original autotrace's -v). 3+: the main pane takes the top half at full
    width (vertical: the left half at full height) and the others share the
    remaining half as an even grid.
    """
    if count <= 0:
        return []
    cols, rows = max(0, cols), max(0, rows)
    if count == 1:
        return [Rect(0, 0, cols, rows)]
    if vertical:
        main_cols, rest_cols = _halves(cols)
        main = Rect(0, 0, main_cols, rows)
        rest = Rect(main_cols, 0, rest_cols, rows)
    else:
        main_rows, rest_rows = _halves(rows)
        main = Rect(0, 0, cols, main_rows)
        rest = Rect(0, main_rows, cols, rest_rows)
    return [main, *_grid(count - 1, rest)]


def arrange(
    count: int,
    cols: int,
    rows: int,
    *,
    visible: int = 4,
    offset: int = 0,
    zoom: int | None = None,
    vertical: bool = False,
) -> dict[int, Rect]:
    """Pane index -> rect for every pane shown; hidden panes are absent."""
    panes = visible_panes(count, visible, offset, zoom)
    return dict(zip(panes, tile(len(panes), cols, rows, vertical)))


def fits(rects: Iterable[Rect]) -> bool:
    """Every rect is big enough to show a title and some content."""
    return all(r.width >= MIN_PANE_COLS and r.height >= MIN_PANE_ROWS for r in rects)


def _halves(size: int) -> tuple[int, int]:
    # The main pane gets the odd row/column: it is the one people watch.
    first = (size + 1) // 2
    return first, size - first


def _split(size: int, parts: int) -> list[int]:
    """`parts` sizes summing to `size`, differing by at most one."""
    base, extra = divmod(size, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _grid_shape(count: int, width: int, height: int) -> tuple[int, int]:
    """(columns, rows) of the grid whose cells look most square-ish.

    Prefers shapes whose panes meet the minimum size, then scores each by
    its panes' smaller side in square units, so wide areas get side-by-side
    panes and tall areas get stacked ones.
    """
    best = (count, 1)
    best_score: tuple[bool, float] = (False, -1.0)
    for grid_rows in range(1, count + 1):
        grid_cols = math.ceil(count / grid_rows)
        if grid_cols * (grid_rows - 1) >= count:
            continue  # a whole row would be empty
        pane_cols, pane_rows = width // grid_cols, height // grid_rows
        big_enough = pane_cols >= MIN_PANE_COLS and pane_rows >= MIN_PANE_ROWS
        score = (big_enough, min(pane_cols / _CELL_ASPECT, pane_rows))
        if score > best_score:
            best, best_score = (grid_cols, grid_rows), score
    return best


def _grid(count: int, area: Rect) -> list[Rect]:
    """`count` rects filling `area` row by row; a short last row is spread wide."""
    grid_cols, grid_rows = _grid_shape(count, area.width, area.height)
    rects: list[Rect] = []
    y = area.y
    remaining = count
    for height in _split(area.height, grid_rows):
        in_row = min(grid_cols, remaining)
        x = area.x
        for width in _split(area.width, in_row):
            rects.append(Rect(x, y, width, height))
            x += width
        y += height
        remaining -= in_row
    return rects
