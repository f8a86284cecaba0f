"""The multi-pane view's state and keys, shared by live sessions and replay.

No terminal I/O here: `handle_key` changes the state and returns what the
controller (a live session or a replay) must do; `frame` draws it all into a
curtsies FSArray. Tests drive it with plain key names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from curtsies.formatstring import FmtStr
from curtsies.formatstringarray import FSArray

from autotrace.view import layout, render
from autotrace.view.layout import Rect
from autotrace.view.screen import PaneScreen, SearchHit

# The smallest terminal the view draws into; below it a message asks for more.
MIN_COLS, MIN_ROWS = 40, 8

QUIT_KEYS = {"q", "KEY_ESCAPE", "\x04"}
# A pane resized by the layout (zoom, a terminal resize) catches up at its
# old size for at most this long: a flooding pane's backlog must not freeze
# the view; what is left is emulated at the new size.
RESIZE_CATCH_UP = 0.02
LINE_DOWN = {"j", "KEY_DOWN"}
LINE_UP = {"k", "KEY_UP"}
PAGE_DOWN = {"f", " ", "KEY_PGDOWN", "KEY_NPAGE"}
PAGE_UP = {"b", "KEY_PGUP", "KEY_PPAGE"}
FOCUS_NEXT = {"\t", "KEY_TAB", "KEY_RIGHT"}
FOCUS_PREV = {"KEY_BTAB", "KEY_LEFT"}

HELP_LIVE = [
    ("q  Esc  Ctrl-D", "quit: tracers stop, the main command ends"),
    ("0-9", "zoom pane N (again: back to all panes)"),
    ("z", "unzoom"),
    ("m", "cycle hidden panes into view (pane 0 stays)"),
    ("Tab  arrows", "move focus between panes"),
    ("p", "pause: stop (SIGSTOP) the main command and the tracers; the view freezes"),
    ("c", "continue: SIGCONT, back to the live tail"),
    ("j k  Up Down", "when paused: scroll one line"),
    ("f b  Space PgDn PgUp", "when paused: scroll one page"),
    ("g G", "when paused: top / bottom of the focused pane"),
    ("t", "time-sync on/off: scrolling one pane scrolls all to the same moment"),
    ("/  n N", "search scrollback with a regex; next / previous match"),
    ("M", "insert a named marker into the recording"),
    ("r", "redraw the screen"),
    ("l", "colours on/off"),
    ("h  ?", "this help (any key closes it)"),
]
HELP_NOTE = ("While paused, the kernel may drop packets a stopped tcpdump "
             "cannot read in time.")


@dataclass
class PaneState:
    index: int
    command: str
    screen: PaneScreen
    state: str = "starting"
    scroll: int = 0  # lines back into history; 0 is the live tail
    highlight: SearchHit | None = None  # the current search match
    dirty: bool = True
    rendered: list[FmtStr] = field(default_factory=list)
    # Rebuilt from the recording while scrolled past what memory holds: a
    # deeper copy of the screen (same bottom line), or the session's start.
    archives: list[PaneScreen] = field(default_factory=list)
    at_start: bool = False  # archives[0] shows the session's start
    # Drawn rows by their cells: output that scrolls moves rows, it rarely
    # changes them, so most rows of a new frame are already drawn.
    line_cache: dict[tuple[Any, ...], tuple[list[Any], FmtStr]] = field(default_factory=dict)

    @property
    def shown(self) -> PaneScreen:
        return self.archives[-1] if self.archives else self.screen

    def truncated(self) -> bool:
        """Lines fell off the top of what is shown: the recording has more."""
        return self.shown.lost


@dataclass
class Action:
    """What the controller must do after a key."""

    name: str  # quit, pause, resume, mark, redraw, resize
    arg: str = ""


@dataclass
class MultiPaneView:
    cols: int
    rows: int
    visible: int = 4
    vertical: bool = False
    colours: bool = True
    sync: bool = True
    history: int = 5000
    reply: Callable[[int, str], None] | None = None  # device-query answers, per pane
    # (pane, depth) -> the pane's screen rebuilt from the recording with `depth`
    # lines of history (None: the session's start instead of its end); None if
    # the recording cannot give it.
    archive: Callable[[int, int | None], PaneScreen | None] | None = None
    panes: list[PaneState] = field(default_factory=list)
    zoom: int | None = None
    offset: int = 0
    focus: int = 0
    paused: bool = False
    help_open: bool = False
    prompt: tuple[str, str] | None = None  # (kind, text typed so far): search or mark
    search: re.Pattern[str] | None = None
    message: str = ""
    status_left: str = ""  # e.g. "REC /path"
    status_right: str = ""  # e.g. "main: running pid 42"
    clock_text: str = "00:00"
    badge: str = ""  # replaces Running/PAUSED in the header (replay: PLAY, END)
    replay: bool = False  # the footer lists replay's keys
    fixed_screens: bool = False  # replay: screens keep the recorded pty size
    help_rows: list[tuple[str, str]] = field(default_factory=lambda: list(HELP_LIVE))
    chrome_dirty: bool = True  # header/footer/titles need a redraw

    # ------------------------------------------------------------ panes

    def add_pane(self, index: int, command: str, cols: int, rows: int) -> PaneState:
        def answer(text: str, index: int = index) -> None:
            if self.reply:
                self.reply(index, text)

        pane = PaneState(index, command, PaneScreen(cols, rows, self.history, reply=answer))
        while len(self.panes) <= index:
            self.panes.append(pane)
        self.panes[index] = pane
        self.chrome_dirty = True
        return pane

    def feed(self, index: int, text: str, t: float) -> None:
        pane = self.panes[index]
        pane.screen.feed(text, t)
        pane.dirty = True

    def set_state(self, index: int, state: str) -> None:
        if index < len(self.panes):
            self.panes[index].state = state
            self.panes[index].dirty = True  # its title
            self.chrome_dirty = True

    # ------------------------------------------------------------ geometry

    def too_small(self) -> bool:
        return self.cols < MIN_COLS or self.rows < MIN_ROWS or not layout.fits(
            list(self.arrangement().values()))

    def arrangement(self) -> dict[int, Rect]:
        """Pane rects inside the area between the header and footer rows."""
        rects = layout.arrange(len(self.panes), self.cols, max(1, self.rows - 2),
                               visible=self.visible, offset=self.offset, zoom=self.zoom,
                               vertical=self.vertical)
        return {i: Rect(r.x, r.y + 1, r.width, r.height) for i, r in rects.items()}

    @staticmethod
    def content_size(rect: Rect) -> tuple[int, int]:
        """The pty size for a pane drawn in `rect`: minus the title row and separator."""
        border = 1 if rect.x > 0 else 0
        return max(1, rect.width - border), max(1, rect.height - 1)

    def pane_sizes(self) -> dict[int, tuple[int, int]]:
        return {i: self.content_size(r) for i, r in self.arrangement().items()}

    def resize(self, cols: int, rows: int) -> None:
        self.cols, self.rows = cols, rows
        self.relayout()

    def relayout(self) -> None:
        for i, (c, r) in self.pane_sizes().items():
            if not self.fixed_screens and (self.panes[i].screen.cols,
                                           self.panes[i].screen.rows) != (c, r):
                self.panes[i].screen.resize(c, r, seconds=RESIZE_CATCH_UP)
            self.panes[i].dirty = True
        self.chrome_dirty = True

    # ------------------------------------------------------------ keys

    def handle_key(self, key: str) -> Action | None:
        self.message = ""
        self.chrome_dirty = True
        if self.prompt is not None:
            return self._prompt_key(key)
        if self.help_open:
            self.help_open = False
            self._all_dirty()
            return None
        if key in QUIT_KEYS:
            return Action("quit")
        if key in ("h", "?"):
            self.help_open = True
            return None
        if key.isdigit() and len(key) == 1:
            return self._zoom(int(key))
        if key == "z":
            return self._zoom(None)
        if key == "m":
            self.offset += 1
            self.relayout()
            return Action("resize")
        if key in FOCUS_NEXT - {"KEY_RIGHT"} or (not self.paused and key in FOCUS_NEXT):
            self._move_focus(1)
            return None
        if key in FOCUS_PREV or (not self.paused and key == "KEY_UP"):
            self._move_focus(-1)
            return None
        if not self.paused and key == "KEY_DOWN":
            self._move_focus(1)
            return None
        if key == "p":
            return Action("pause")
        if key == "c":
            return Action("resume")
        if key == "t":
            self.sync = not self.sync
            self.message = f"time-sync {'on' if self.sync else 'off'}"
            return None
        if key == "/":
            self.prompt = ("search", "")
            return Action("pause") if not self.paused else None
        if key in ("n", "N") and self.search is not None:
            self._search_next(backwards=(key == "n"))
            return None
        if key == "M":
            self.prompt = ("mark", "")
            return None
        if key == "r":
            self._all_dirty()
            return Action("redraw")
        if key == "l":
            self.colours = not self.colours
            self._all_dirty()
            return None
        if self.paused:
            return self._scroll_key(key)
        return None

    def _prompt_key(self, key: str) -> Action | None:
        kind, text = self.prompt  # type: ignore[misc]
        if key in ("KEY_ESCAPE", "\x1b"):
            self.prompt = None
        elif key in ("KEY_ENTER", "\n", "\r"):
            self.prompt = None
            if kind == "search":
                return Action("search", text)
            return Action("mark", text.strip() or "mark")
        elif key in ("KEY_BACKSPACE", "KEY_DELETE", "\x7f", "\x08"):
            self.prompt = (kind, text[:-1])
        elif len(key) == 1 and key.isprintable():
            self.prompt = (kind, text + key)
        return None

    def _zoom(self, index: int | None) -> Action:
        if index is not None and index >= len(self.panes):
            self.message = f"no pane {index}"
            return Action("none")
        self.zoom = None if index is None or self.zoom == index else index
        if self.zoom is not None:
            self.focus = self.zoom
        self.relayout()
        return Action("resize")

    def _move_focus(self, step: int) -> None:
        shown = list(self.arrangement())
        if not shown:
            return
        position = shown.index(self.focus) if self.focus in shown else 0
        self.focus = shown[(position + step) % len(shown)]
        self._all_dirty()

    def _scroll_key(self, key: str) -> Action | None:
        pane = self.panes[self.focus]
        page = max(1, pane.shown.rows - 1)
        moves = {**{k: 1 for k in LINE_UP}, **{k: -1 for k in LINE_DOWN},
                 **{k: page for k in PAGE_UP}, **{k: -page for k in PAGE_DOWN}}
        if key in moves:
            self.scroll_to(self.focus, pane.scroll + moves[key])
        elif key == "g":
            self._to_session_start(pane)
        elif key == "G":
            pane.archives.clear()
            pane.at_start = False
            self.scroll_to(self.focus, 0)
        return None

    def scroll_to(self, index: int, scroll: int) -> None:
        """Scroll a pane; with time-sync, every other pane follows to the same moment."""
        pane = self.panes[index]
        if scroll > pane.shown.max_scroll:
            self._load_deeper(pane)
        elif scroll < 0 and pane.at_start:
            pane.archives.clear()  # down past the start's stretch: back to the kept tail
            pane.at_start = False
            scroll = pane.shown.max_scroll
        pane.scroll = max(0, min(scroll, pane.shown.max_scroll))
        pane.dirty = True
        if pane.archives:
            self.message = "from the recording: older than the scrollback kept in memory"
        if not self.sync:
            return
        moment = pane.shown.line_time(pane.scroll) if pane.scroll or pane.archives else None
        for other in self.panes:
            if other is pane:
                continue
            other.archives.clear()  # time-sync follows within what memory holds
            other.at_start = False
            other.scroll = 0 if moment is None else other.screen.scroll_for_time(moment)
            other.dirty = True

    def _load_deeper(self, pane: PaneState) -> None:
        """Scrolled past the top of memory: rebuild with more history from the recording."""
        if self.archive is None or pane.at_start or not pane.truncated():
            return
        deeper = self.archive(pane.index, pane.shown.max_scroll + self.history)
        if deeper is not None and deeper.max_scroll > pane.shown.max_scroll:
            pane.archives = [deeper]

    def _to_session_start(self, pane: PaneState) -> None:
        if pane.truncated() and self.archive is not None:
            first = self.archive(pane.index, None)
            if first is not None:
                pane.archives, pane.at_start = [first], True
        self.scroll_to(pane.index, pane.shown.max_scroll)

    def back_to_live(self) -> None:
        for pane in self.panes:
            pane.scroll, pane.highlight = 0, None
            pane.archives.clear()
            pane.at_start = False
            pane.dirty = True

    # ------------------------------------------------------------ search

    def run_search(self, text: str) -> None:
        """Search the focused pane's scrollback, newest match first."""
        try:
            self.search = re.compile(text)
        except re.error as err:
            self.message = f"bad regex: {err}"
            return
        self._search_next(backwards=True, first=True)

    def highlight_on_screen(self, index: int) -> None:
        """Highlight the newest match of the current search on the pane's live screen."""
        pane = self.panes[index]
        found = pane.screen.search(self.search, 0, True) if self.search else None
        pane.highlight = found if found is not None and found[0] == 0 else None
        pane.dirty = True

    def _search_next(self, backwards: bool, first: bool = False) -> None:
        pane = self.panes[self.focus]
        hit = pane.highlight
        if hit is not None and not first:
            found = pane.shown.search(self.search, hit.line, backwards,  # type: ignore[arg-type]
                                       col=hit.col_start, view=pane.scroll)
        else:
            found = pane.shown.search(self.search, pane.scroll, backwards,  # type: ignore[arg-type]
                                       view=pane.scroll)
        if found is None:
            which = "earlier" if backwards else "later"
            self.message = f"no {which} match for /{self.search.pattern}"  # type: ignore[union-attr]
            return
        pane.highlight = found
        self.scroll_to(self.focus, found[0])
        self.message = f"match at {found.line} lines back"

    # ------------------------------------------------------------ drawing

    def _all_dirty(self) -> None:
        for pane in self.panes:
            pane.dirty = True
        self.chrome_dirty = True

    def frame(self) -> FSArray | list[FmtStr]:
        if self.too_small():
            return render.message_frame(self.cols, self.rows, [
                "terminal too small",
                f"need at least {MIN_COLS}x{MIN_ROWS} and room for every pane",
                f"now {self.cols}x{self.rows}: enlarge it, zoom (0-9) or press q"])
        rects = self.arrangement()
        if self.help_open:
            blocks = [(Rect(0, 1, self.cols, self.rows - 2), self._help_rows(self.cols))]
        else:
            blocks = [(rect, self._pane_rows(i, rect)) for i, rect in rects.items()]
        return render.compose(self.cols, self.rows, blocks, self._header(), self._footer())

    def _cached_line(self, pane: PaneState, cells: list[Any], cols: int,
                     mark: tuple[int, int] | None, border: FmtStr | None) -> FmtStr:
        # Keyed by the cells' identities, which is cheap to hash: the screen model
        # hands out one shared Cell per look. The entry keeps its cells alive, so
        # an identity in a key cannot be reused by another object.
        key = (cols, self.colours, mark, border is None, *map(id, cells))
        hit = pane.line_cache.get(key)
        if hit is None:
            if len(pane.line_cache) > 4 * max(cols, 100):
                pane.line_cache.clear()  # bounded: a screenful or two is all that repeats
            line = render.cells_to_line(cells, cols, self.colours, mark)
            hit = pane.line_cache[key] = (cells, line if border is None else border + line)
        return hit[1]

    def _pane_rows(self, index: int, rect: Rect) -> list[FmtStr]:
        pane = self.panes[index]
        if pane.dirty or len(pane.rendered) != rect.height:
            pane.rendered = self._draw_pane(pane, rect)
            pane.dirty = False
        return pane.rendered

    def _draw_pane(self, pane: PaneState, rect: Rect) -> list[FmtStr]:
        cols, rows = self.content_size(rect)
        extra = f"{pane.scroll} lines back" if pane.scroll else ""
        if pane.archives:
            extra += f"  (from the recording, {pane.shown.line_time(pane.scroll):.1f} s)"
        title = render.pane_title(pane.index, pane.command, pane.state, rect.width,
                                  focused=(pane.index == self.focus), extra=extra)
        lines = [title]
        screen_rows = pane.shown.rows_at(pane.scroll)
        border = (render.styled("│", 1, fg=render.accent(pane.index))
                  if rect.x > 0 else None)
        for y in range(rows):
            cells = screen_rows[y] if y < len(screen_rows) else []
            mark = None
            if pane.highlight and pane.highlight[0] == pane.scroll and pane.highlight[1] == y:
                mark = (pane.highlight[2], pane.highlight[3])
            lines.append(self._cached_line(pane, cells, cols, mark, border))
        return lines

    def _header(self) -> FmtStr:
        if self.badge:
            state = render.styled(f" {self.badge} ", len(self.badge) + 2, fg="black",
                                  bg="yellow", bold=True)
        elif self.paused:
            state = render.styled(" PAUSED ", 8, fg="gray", bg="red", bold=True)
        else:
            state = render.styled(" Running ", 9, fg="black", bg="green")
        left = render.plain(f" {self.status_left} ", max(0, self.cols // 2), bold=True)
        right_text = f" {self.clock_text}  {self.status_right} "
        right = render.plain(right_text, max(0, self.cols - left.width - state.width))
        return render.join([left, state, right])

    def _footer(self) -> FmtStr:
        if self.prompt is not None:
            kind, text = self.prompt
            label = "search /" if kind == "search" else "marker name: "
            return render.styled(f"{label}{text}█   Enter: ok   Esc: cancel", self.cols,
                                 fg="black", bg="yellow")
        if self.message:
            return render.styled(f" {self.message}", self.cols, fg="black", bg="cyan")
        return render.plain(self.footer_keys(), self.cols, invert=True)

    def footer_keys(self) -> str:
        if self.help_open:
            return " any key: close help"
        if self.replay:
            keys = ["q quit", "Space play/pause", "+/- speed", "←/→ 5 s", "[/] marker",
                    "g/G start/end", "/ search", "0-9 zoom", "h help"]
        elif self.paused:
            keys = ["c continue", "j/k line", "f/b page", "g/G top/bottom", "/ search"]
            if self.search is not None:
                keys.append("n/N next/prev")
            keys += [f"t sync:{'on' if self.sync else 'off'}", "q quit"]
        else:
            keys = ["q quit", "p pause", "0-9 zoom"]
            if len(self.panes) > self.visible and self.zoom is None:
                keys.append("m more panes")
            keys += ["Tab focus", "/ search", "M mark", "h help"]
        if self.zoom is not None:
            keys.insert(1, "z unzoom")
        return " " + "  ".join(keys)

    def _help_rows(self, width: int) -> list[FmtStr]:
        rows = [render.plain(" autotrace keys", width, bold=True), render.plain("", width)]
        for keys, meaning in self.help_rows:
            rows.append(render.plain(f"  {keys:<22} {meaning}", width))
        rows += [render.plain("", width), render.plain(f"  {HELP_NOTE}", width)]
        return rows
