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

from autotrace.view import keymap, layout, render
from autotrace.view.layout import Rect
from autotrace.view.screen import PaneScreen, SearchHit

# The smallest terminal the view draws into; below it a message asks for more.
MIN_COLS, MIN_ROWS = 40, 8

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
    ended: bool = False  # the session is over: the final screen, to read at leisure
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
    chrome_dirty: bool = True  # header/footer/titles need a redraw

    @property
    def reading(self) -> bool:
        """Paused or over: the arrows and j/k scroll instead of moving focus."""
        return self.paused or self.ended

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
                self.panes[i].screen.resize(c, r)
            self.panes[i].dirty = True
        self.chrome_dirty = True

    # ------------------------------------------------------------ keys

    def modes(self) -> frozenset[str]:
        """The keymap modes the view is in (view/keymap.py)."""
        if self.replay:
            return frozenset({keymap.REPLAY, keymap.REPLAY_PAUSED} if self.paused
                             else {keymap.REPLAY})
        if self.ended:
            return frozenset({keymap.ENDED})
        return frozenset({keymap.PAUSED if self.paused else keymap.LIVE})

    def handle_key(self, key: str) -> Action | None:
        """Do what the keymap says; what is not the view's own is an Action
        for the controller (the live session or the replay)."""
        self.message = ""
        self.chrome_dirty = True
        if self.prompt is not None:
            return self._prompt_key(key)
        if self.help_open:
            self.help_open = False
            self._all_dirty()
            return None
        binding = keymap.lookup(key, self.modes())
        if binding is None:
            return None
        own = getattr(self, f"_do_{binding.command}", None)
        return own(key) if own is not None else Action(binding.command)

    # The view's own commands (keymap.TABLE names them).

    def _do_help(self, key: str) -> None:
        self.help_open = True

    def _do_zoom(self, key: str) -> Action:
        return self._zoom(int(key))

    def _do_unzoom(self, key: str) -> Action:
        return self._zoom(None)

    def _do_cycle(self, key: str) -> Action:
        self.offset += 1
        self.relayout()
        return Action("resize")

    def _do_focus_next(self, key: str) -> None:
        self._move_focus(1)

    def _do_focus_previous(self, key: str) -> None:
        self._move_focus(-1)

    def _do_sync(self, key: str) -> None:
        self.sync = not self.sync
        self.message = f"time-sync {'on' if self.sync else 'off'}"

    def _do_search(self, key: str) -> Action | None:
        self.prompt = ("search", "")
        return Action("pause") if not self.reading and not self.replay else None

    def _do_mark(self, key: str) -> None:
        self.prompt = ("mark", "")

    def _do_redraw(self, key: str) -> Action:
        self._all_dirty()
        return Action("redraw")

    def _do_colours(self, key: str) -> None:
        self.colours = not self.colours
        self._all_dirty()

    def _do_line_up(self, key: str) -> None:
        self._scroll_by(1)

    def _do_line_down(self, key: str) -> None:
        self._scroll_by(-1)

    def _do_page_up(self, key: str) -> None:
        self._scroll_by(self._page())

    def _do_page_down(self, key: str) -> None:
        self._scroll_by(-self._page())

    def _do_top(self, key: str) -> None:
        self._to_session_start(self.panes[self.focus])

    def _do_bottom(self, key: str) -> None:
        pane = self.panes[self.focus]
        pane.archives.clear()
        pane.at_start = False
        self.scroll_to(self.focus, 0)

    def _page(self) -> int:
        return max(1, self.panes[self.focus].shown.rows - 1)

    def _scroll_by(self, lines: int) -> None:
        self.scroll_to(self.focus, self.panes[self.focus].scroll + lines)

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
        self.search_next(backwards=True, first=True)

    def highlight_on_screen(self, index: int) -> None:
        """Highlight the newest match of the current search on the pane's live screen."""
        pane = self.panes[index]
        found = pane.screen.search(self.search, 0, True) if self.search else None
        pane.highlight = found if found is not None and found[0] == 0 else None
        pane.dirty = True

    def search_next(self, backwards: bool, first: bool = False) -> None:
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
        elif self.ended:
            state = render.styled(" ENDED ", 7, fg="black", bg="yellow", bold=True)
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
        primary = keymap.REPLAY if self.replay else keymap.ENDED if self.ended \
            else keymap.PAUSED if self.paused else keymap.LIVE
        states = set()
        if self.zoom is not None:
            states.add(keymap.WHEN_ZOOMED)
        elif len(self.panes) > self.visible:
            states.add(keymap.WHEN_MORE_PANES)
        if self.search is not None:
            states.add(keymap.WHEN_SEARCHED)
        return " " + "  ".join(keymap.footer(primary, self.modes(), states, self.sync))

    def help_rows(self) -> list[tuple[str, str]]:
        return keymap.help_rows(self.modes())

    def _help_rows(self, width: int) -> list[FmtStr]:
        rows = [render.plain(" autotrace keys", width, bold=True), render.plain("", width)]
        for keys, meaning in self.help_rows():
            rows.append(render.plain(f"  {keys:<22} {meaning}", width))
        rows += [render.plain("", width), render.plain(f"  {HELP_NOTE}", width)]
        return rows
