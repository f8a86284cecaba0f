"""Where each pane goes: a pure function of pane count, area size and zoom.

The main pane (0) always keeps its place; tracers share the rest. Rects tile
the area exactly, so the view never has to paint gaps or clip overlaps.
No pane is drawn smaller than MIN_PANE (40x5, or --min-pane) of content: a
small area shows fewer panes at once, the others wait hidden (`m` cycles).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass

# The smallest content (and pty) a pane gets: strace, vmstat and iostat lines
# are unreadable in less. A pane's box is one row more (its title) and, right
# of another pane, one column more (the separator).
MIN_PANE_COLS = 40
MIN_PANE_ROWS = 5
MIN_PANE = (MIN_PANE_COLS, MIN_PANE_ROWS)  # the default; --min-pane changes it

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

    @property
    def content_cols(self) -> int:
        """Columns left for content: a pane right of another draws a separator."""
        return max(0, self.width - (1 if self.x > 0 else 0))


def visible_panes(
    count: int, visible: int = 4, offset: int = 0, zoom: int | None = None
) -> list[int]:
    """Which panes are shown, in slot order.

    Pane 0 (main) always stays; tracers 1..count-1 fill the other visible-1
    slots, rotated by `offset` (the `m` key cycles hidden panes in) and kept
    in pane order so a pane's neighbours stay predictable. With a valid
    zoom, just [zoom]. When only one pane is shown, every pane takes its
    turn, the main one too.
    """
    if count <= 0:
        return []
    if zoom is not None and 0 <= zoom < count:
        return [zoom]
    visible = max(1, visible)
    if count <= visible:
        return list(range(count))
    if visible == 1:
        return [offset % count]
    tracers = list(range(1, count))
    start = offset % len(tracers)
    shown = (tracers[start:] + tracers[:start])[: visible - 1]
    return [0, *sorted(shown)]


def tile(count: int, cols: int, rows: int, vertical: bool = False,
         minimum: tuple[int, int] = MIN_PANE) -> list[Rect]:
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
    return [main, *_grid(count - 1, rest, minimum)]


def arrange(
    count: int,
    cols: int,
    rows: int,
    *,
    visible: int = 4,
    offset: int = 0,
    zoom: int | None = None,
    vertical: bool = False,
    minimum: tuple[int, int] = MIN_PANE,
) -> dict[int, Rect]:
    """Pane index -> rect for every pane shown; hidden panes are absent.

    At most `visible` panes are shown, and no more than fit the area at the
    minimum pane size (`shown_count`). `vertical` (side by side) gives way
    to stacking when stacked more panes fit."""
    return dict(_arranged(count, cols, rows, visible, offset, zoom, vertical, minimum))


# The view asks for its arrangement several times a frame, and trying the
# shapes that fit costs a few hundred microseconds: the answers are kept.
@functools.lru_cache(maxsize=256)
def _arranged(count: int, cols: int, rows: int, visible: int, offset: int, zoom: int | None,
              vertical: bool, minimum: tuple[int, int]) -> tuple[tuple[int, Rect], ...]:
    if vertical and shown_count(count, cols, rows, visible, True, minimum) < shown_count(
            count, cols, rows, visible, False, minimum):
        vertical = False  # side by side where it fits; stacked shows more panes here
    shown = visible if zoom is not None else shown_count(count, cols, rows, visible, vertical,
                                                         minimum)
    panes = visible_panes(count, shown, offset, zoom)
    return tuple(zip(panes, tile(len(panes), cols, rows, vertical, minimum)))


def shown_count(count: int, cols: int, rows: int, visible: int = 4,
                vertical: bool = False, minimum: tuple[int, int] = MIN_PANE) -> int:
    """How many of `count` panes are shown at once: at most `visible`, and
    the most whose tiles all fit (at least one: too small an area is the
    view's to say)."""
    most = max(1, min(count, visible))
    for shown in range(most, 1, -1):
        if fits(tile(shown, cols, rows, vertical, minimum), minimum):
            return shown
    return 1


def fits(rects: Iterable[Rect], minimum: tuple[int, int] = MIN_PANE) -> bool:
    """Every rect has room for its title and `minimum` (cols, rows) of content."""
    return all(r.content_cols >= minimum[0] and r.content_rows >= minimum[1] for r in rects)


def _halves(size: int) -> tuple[int, int]:
    # The main pane gets the odd row/column: it is the one people watch.
    first = (size + 1) // 2
    return first, size - first


def _split(size: int, parts: int) -> list[int]:
    """`parts` sizes summing to `size`, differing by at most one."""
    base, extra = divmod(size, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _grid(count: int, area: Rect, minimum: tuple[int, int]) -> list[Rect]:
    """`count` rects filling `area` as the grid whose cells look most square-ish.

    Prefers shapes whose panes meet the minimum size (separators counted),
    then scores each by its panes' smaller side in square units, so wide
    areas get side-by-side panes and tall areas get stacked ones.
    """
    best: list[Rect] = []
    best_score: tuple[bool, float] = (False, -1.0)
    for grid_rows in range(1, count + 1):
        grid_cols = math.ceil(count / grid_rows)
        if grid_cols * (grid_rows - 1) >= count:
            continue  # a whole row would be empty
        rects = _grid_rects(count, area, grid_cols, grid_rows)
        smallest = min(min(r.content_cols / _CELL_ASPECT, r.content_rows) for r in rects)
        score = (fits(rects, minimum), smallest)
        if score > best_score:
            best, best_score = rects, score
    return best


def _grid_rects(count: int, area: Rect, grid_cols: int, grid_rows: int) -> list[Rect]:
    """`count` rects filling `area` row by row; a short last row is spread wide."""
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
