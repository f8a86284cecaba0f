"""A view's pane screens as frames for the browser player (export/html.py):
the one frame encoder, for an exported recording (share/recorded.py) and a
live share (share/live.py) alike.

The screens are autotrace's own (view/screen.py, fed by the replay player
or by a session's events), the geometry the view's (view/layout.py through
MultiPaneView), the titles, header and footer drawn by view/render.py; the
page's script only places the rows it is given. Per pane, a frame is the screen at a moment:

    [t, -1, [row, row, ...]]                  a keyframe: every row
    [t, s, [[y, row], [y, row], ...]]         after scrolling s rows up, rows changed

A row is a flat list of runs: text, style index, text, style index...
(trailing blanks left out). Styles are CSS class names made from the
renderer's attributes (render.style_atts), so colours mean the same here
as on a terminal; they grow as frames are taken, so a page's data lists
them after the frames.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from operator import attrgetter
from typing import Any

from curtsies.formatstring import FmtStr

from autotrace.sanitise import cell_text
from autotrace.view import keymap, render
from autotrace.view.lenses import Lens, row_text
from autotrace.view.multipane import MultiPaneView
from autotrace.view.screen import Cell, PaneScreen

DATA_VERSION = 1
FRAME_STEP = 0.1  # seconds: what the replay's clock shows (tenths)
KEYFRAME_EVERY = 64  # frames: a seek applies at most this many changes per pane

_STYLE = attrgetter("fg", "bg", "bold", "italics", "underscore", "reverse")
_CHAR = attrgetter("char")


def css_classes(atts: dict[str, Any]) -> str:
    """curtsies attributes (render's) as the page's CSS classes: fNN and gNN
    are SGR colour codes, B I U bold italic underline. Inverted cells swap
    their colours here (`fbg`, `gfg`: the page's default colours swapped)."""
    fg, bg = atts.get("fg"), atts.get("bg")
    if atts.get("invert"):
        fg_class = f"f{bg - 10}" if bg is not None else "fbg"
        bg_class = f"g{fg + 10}" if fg is not None else "gfg"
    else:
        fg_class = f"f{fg}" if fg is not None else ""
        bg_class = f"g{bg}" if bg is not None else ""
    flags = [flag for flag, name in (("B", "bold"), ("I", "italic"), ("U", "underline"))
             if atts.get(name)]
    return " ".join(c for c in (fg_class, bg_class, *flags) if c)


class _CellStyles(dict):  # type: ignore[type-arg]
    """Cell -> its style's index, filled as cells are met (bounded)."""

    def __init__(self, styles: Styles):
        super().__init__()
        self.styles = styles

    def __missing__(self, cell: Cell) -> int:
        if len(self) > 65536:
            self.clear()
        index = self[cell] = self.styles.of_cell_style(_STYLE(cell))
        return index


class Styles:
    """Style index <-> CSS classes, shared by every row of a page."""

    def __init__(self) -> None:
        self.classes: list[str] = [""]
        self._index: dict[str, int] = {"": 0}
        self._of_cell_style: dict[tuple[Any, ...], int] = {}
        self._style_of_cell = _CellStyles(self)

    def of_atts(self, atts: dict[str, Any]) -> int:
        return self.of_css(css_classes(atts))

    def of_css(self, name: str) -> int:
        """The index of CSS classes another table gave (a worker's)."""
        index = self._index.get(name)
        if index is None:
            index = self._index[name] = len(self.classes)
            self.classes.append(name)
        return index

    def of_cell_style(self, style: tuple[Any, ...]) -> int:
        index = self._of_cell_style.get(style)
        if index is None:
            index = self._of_cell_style[style] = self.of_atts(render.style_atts(style, True))
        return index

    def row(self, cells: Sequence[Cell]) -> list[Any]:
        """A screen row as runs, trailing default blanks left out."""
        if not cells:
            return []
        text = cell_text("".join(map(_CHAR, cells)))
        # The screen model hands out one Cell per look: its style index is
        # looked up by the cell itself, at C speed, once it is known.
        styles = list(map(self._style_of_cell.__getitem__, cells))
        if len(text) != len(cells):  # (cell_text dropped something: one run)
            cuts = [0, len(text)]
            styles = styles[:1]
        elif styles.count(styles[0]) == len(styles):  # most rows: one style, found in C
            cuts = [0, len(text)]
        else:
            cuts = [0, *[x for x in range(1, len(styles)) if styles[x] != styles[x - 1]],
                    len(text)]
        runs: list[Any] = []
        for start, end in zip(cuts, cuts[1:]):
            runs += [text[start:end], styles[start]]
        while runs and runs[-1] == 0 and not runs[-2].strip():
            del runs[-2:]
        if runs and runs[-1] == 0:
            runs[-2] = runs[-2].rstrip()
        return runs

    def line(self, line: FmtStr) -> list[Any]:
        """A line the renderer drew (a title, the header) as runs."""
        runs: list[Any] = []
        for chunk in line.chunks:
            runs += [chunk.s, self.of_atts(dict(chunk.atts))]
        return runs

    def lensed_row(self, cells: Sequence[Cell], lens: Lens | None) -> list[Any]:
        """A screen row as runs, with the pane's lens drawn as the view draws
        it (render.cells_to_line): the page shows what the terminal showed."""
        spans = lens(row_text(cells)) if lens is not None and cells else ()
        if not spans:
            return self.row(cells)
        runs = self.line(render.cells_to_line(cells, len(cells), True, (), spans))
        if runs and runs[-1] == 0:
            runs[-2] = runs[-2].rstrip()
        return runs


class PaneFrames:
    """One pane's frames, each the changes since the one before."""

    def __init__(self, styles: Styles, lens: Lens | None = None):
        self.styles = styles
        self.lens = lens  # the pane's lens (view/lenses.py), drawn into its rows
        self.frames: list[list[Any]] = []
        self._rows: list[dict[int, Any]] = []  # PaneScreen.live_rows of the last frame
        self._cols = 0
        self._since_key = 0
        self.size = 0  # characters of row text encoded, for the size bound

    def add(self, t: float, screen: PaneScreen) -> list[Any] | None:
        """The frame for what `screen` shows at `t`, or None when nothing changed."""
        rows = screen.live_rows()
        if rows == self._rows and screen.cols == self._cols:
            return None
        frame: list[Any]
        if self._since_key >= KEYFRAME_EVERY or len(rows) != len(self._rows) \
                or screen.cols != self._cols:
            encoded = [self.styles.lensed_row(screen.live_cells(y), self.lens)
                       for y in range(len(rows))]
            frame = [round(t, 3), -1, encoded]
            self._since_key = 0
        else:
            shift = _best_shift(self._rows, rows)
            before = self._rows[shift:] + [None] * shift
            changed = [[y, self.styles.lensed_row(screen.live_cells(y), self.lens)]
                       for y, (row, old) in enumerate(zip(rows, before)) if row != old]
            frame = [round(t, 3), shift, changed]
            self._since_key += 1
        self.size += sum(len(part) for part in _texts(frame))
        self._rows, self._cols = rows, screen.cols
        self.frames.append(frame)
        return frame


def _texts(frame: list[Any]) -> Iterator[Any]:
    rows = frame[2] if frame[1] < 0 else [row for _, row in frame[2]]
    for row in rows:
        yield from row[::2]


def _best_shift(before: list[Any], after: list[Any]) -> int:
    """How many rows the screen most likely scrolled up: the shift that leaves
    the fewest rows to send (0 when none helps)."""
    count = len(after)

    def changed(shift: int) -> int:
        return sum(1 for y in range(count - shift) if before[y + shift] != after[y]) + shift

    best, best_cost = 0, changed(0)
    if best_cost == 0 or not after:
        return 0
    for shift in {y for y in range(1, count) if before[y] == after[0]}:
        cost = changed(shift)
        if cost < best_cost:
            best, best_cost = shift, cost
    return best


def runs_text(runs: Sequence[Any]) -> str:
    return "".join(runs[::2])


def view_for(panes: list[tuple[int, int]]) -> tuple[int, int]:
    """A view size (cols, rows) whose layout shows every pane with at least
    its recorded size, as a terminal would need to show them all uncropped."""
    cols, rows = 80, 24
    while cols < 1000 or rows < 1000:
        view = MultiPaneView(cols, rows, visible=max(1, len(panes)))
        for i, (c, r) in enumerate(panes):
            view.add_pane(i, "", c, r)
        rects = view.arrangement()
        if len(rects) < len(panes) or view.too_small():  # some do not fit yet
            short_cols = short_rows = True
        else:
            places = {i: view.content_size(rect) for i, rect in rects.items()}
            short_cols = any(places[i][0] < c for i, (c, _) in enumerate(panes))
            short_rows = any(places[i][1] < r for i, (_, r) in enumerate(panes))
            if not (short_cols or short_rows):
                return cols, rows
        cols = min(1000, cols + 8) if short_cols else cols
        rows = min(1000, rows + 2) if short_rows else rows
        if cols == 1000 and rows == 1000:
            break
    return cols, rows


def layouts(view: MultiPaneView) -> dict[str, dict[str, list[int]]]:
    """Pane rects for every pane shown and for each pane zoomed: the view's own
    arrangement, so the page places panes as the terminal does."""
    def rects() -> dict[str, list[int]]:
        return {str(i): [r.x, r.y, r.width, r.height]
                for i, r in view.arrangement().items()}

    out = {"all": rects()}
    for index in range(len(view.panes)):
        view.zoom = index
        out[str(index)] = rects()
    view.zoom = None
    return out


# keys as the terminal names them -> as a browser's KeyboardEvent.key does
_BROWSER_KEYS = {"KEY_LEFT": "ArrowLeft", "KEY_RIGHT": "ArrowRight", "KEY_UP": "ArrowUp",
                 "KEY_DOWN": "ArrowDown", "KEY_ESCAPE": "Escape", "KEY_TAB": "Tab",
                 "\t": "Tab", "KEY_PGUP": "PageUp", "KEY_PGDOWN": "PageDown",
                 "KEY_PPAGE": "PageUp", "KEY_NPAGE": "PageDown"}
# the replay's commands the page carries out (quit and redraw mean nothing there)
PAGE_COMMANDS = frozenset({
    "play_pause", "play", "faster", "slower", "seek_back", "seek_forward",
    "marker_previous", "marker_next", "start", "end", "go_to", "zoom", "unzoom",
    "focus_next", "focus_previous", "search", "search_again", "search_reverse",
    "colours", "help"})


def page_keys() -> dict[str, str]:
    """Browser key -> command, from the replay's bindings in view/keymap.py."""
    keys: dict[str, str] = {}
    modes = {keymap.REPLAY}
    for binding in keymap.TABLE:
        if binding.command not in PAGE_COMMANDS or not binding.modes & modes:
            continue
        for key in binding.keys:
            name = _BROWSER_KEYS.get(key, key)
            if len(name) == 1 and not name.isprintable():
                continue
            keys.setdefault(name, binding.command)
    return keys


def help_lines() -> list[list[str]]:
    return [[keys, meaning] for keys, meaning in keymap.help_rows({keymap.REPLAY})]


CLOCK_WIDTH = 26  # "MM:SS.t / MM:SS.t  x1" and room for the speed


class ViewFrames:
    """Per-pane frames of what a MultiPaneView's screens show, taken when
    asked (`at`): a replay player feeds the view for an export, a live
    session's events for a share. Titles are taken when a pane's state
    changes."""

    def __init__(self, view: MultiPaneView, only: set[int] | None = None):
        self.view = view
        self.only = only  # the panes to take frames of (None: all); a share of the work
        self.styles = Styles()
        self.panes: list[PaneFrames] = []
        self.titles: list[list[list[Any]]] = []
        self._states: list[str | None] = []
        self._seen: dict[int, tuple[int, int, int]] = {}  # pane -> its screen, as last taken

    def at(self, t: float) -> Iterator[tuple[str, int, list[Any]]]:
        """("frame" or "title", pane, its data) for each pane that changed
        since the last call, stamped `t`."""
        for index, pane in enumerate(self.view.panes):
            if index >= len(self.panes):
                self.panes.append(PaneFrames(self.styles, pane.lens if self.view.colours
                                             else None))
                self.titles.append([])
                self._states.append(None)
            if pane.state != self._states[index]:
                self._states[index] = pane.state
                title = [round(t, 3), *self._title(index)]
                self.titles[index].append(title)
                yield "title", index, title
            if self.only is not None and index not in self.only:
                continue
            # What a frame shows changes only with output queued, a new size, or
            # a new screen (a player's rebuild): a pane's `dirty` says more (its
            # title, a replay's every step), so it is not what is looked at.
            seen = (id(pane.screen), pane.screen.cols, pane.screen.rows)
            if self.panes[index].frames and not pane.screen.pending \
                    and seen == self._seen.get(index):
                continue
            self._seen[index] = seen
            pane.screen.catch_up()
            frame = self.panes[index].add(t, pane.screen)
            if frame is not None:
                yield "frame", index, frame

    def text_size(self) -> int:
        return sum(pane.size for pane in self.panes)

    def _title(self, index: int) -> list[list[Any]]:
        pane = self.view.panes[index]
        return [self.styles.line(render.pane_title(index, pane.command, pane.state,
                                                   self.view.cols, focused))
                for focused in (False, True)]

    def chrome(self, badges: Sequence[str]) -> dict[str, Any]:
        """The header (one per badge; "" is the live session's Running) and
        footer as the view draws them, and where in each header the clock
        goes (the page writes it there: found by drawing two clocks)."""
        view = self.view
        saved = view.badge, view.paused, view.clock_text, view.status_right
        dirty = [pane.dirty for pane in view.panes]  # drawing clears them; `at` reads them
        view.status_right, view.paused = "", False  # (paused: the moment would show)
        headers: dict[str, list[Any]] = {}
        clock_at: dict[str, int] = {}
        for badge in badges:
            view.badge = badge
            drawn = []
            for fill in "AB":
                view.clock_text = fill * CLOCK_WIDTH
                drawn.append(view.frame()[0])
            a, b = (runs_text(self.styles.line(line)) for line in drawn)
            clock_at[badge] = next((x for x, (p, q) in enumerate(zip(a, b)) if p != q), 0)
            view.clock_text = " " * CLOCK_WIDTH
            headers[badge] = self.styles.line(view.frame()[0])
        view.badge = badges[0]
        footer = self.styles.line(view.frame()[-1])
        view.badge, view.paused, view.clock_text, view.status_right = saved
        for pane, was in zip(view.panes, dirty):
            pane.dirty = was
        # the border left of a pane's rows, and the footer showing a message
        borders = [self.styles.line(render.styled("│", 1, fg=render.accent(i)))[1]
                   for i in range(len(view.panes))]
        message = self.styles.line(render.styled(" ", 1, fg="black", bg="cyan"))[1]
        return {"headers": headers, "clock_at": clock_at, "clock_width": CLOCK_WIDTH,
                "footer": footer, "border_style": borders, "message_style": message}

    def page_data(self, *, duration: float, markers: list[tuple[float, str]],
                  started_unix: float | None, badges: Sequence[str],
                  live: bool = False, step: float = FRAME_STEP) -> dict[str, Any]:
        """Everything the page needs, with every frame taken so far."""
        return {
            "version": DATA_VERSION,
            "live": live,
            "step": step,
            "duration": round(duration, 3),
            "started_unix": started_unix,
            "markers": [[round(t, 3), label] for t, label in markers],
            "cols": self.view.cols,
            "rows": self.view.rows,
            "layouts": layouts(self.view),
            "keys": page_keys(),
            "help": help_lines(),
            **self.chrome(badges),
            "styles": self.styles.classes,
            "panes": [{"index": i, "command": pane.command,
                       "titles": self.titles[i] if i < len(self.titles) else [],
                       "frames": self.panes[i].frames if i < len(self.panes) else []}
                      for i, pane in enumerate(self.view.panes)],
        }


