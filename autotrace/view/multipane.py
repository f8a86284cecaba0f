"""The multi-pane view's state and keys, shared by live sessions and replay.

No terminal I/O here: `handle_key` changes the state and returns what the
controller (a live session or a replay) must do; `frame` draws it all into a
curtsies FSArray. Tests drive it with plain key names.
"""

from __future__ import annotations

import datetime
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any, Callable

from curtsies.formatstring import FmtStr
from curtsies.formatstringarray import FSArray

from autotrace.events import FINDING, MARKER, OUTPUT, RESIZE, Event, parse_size
from autotrace.findings.model import Finding
from autotrace.view import keymap, layout, render
from autotrace.view.findings_list import FindingsList
from autotrace.view.layout import MIN_PANE, Rect
from autotrace.view.lenses import Lens, lens_for, row_text
from autotrace.view.screen import PaneScreen, SearchHit
from autotrace.view.search import (
    SEARCH_SLICE,
    RecordedHit,
    RecordedScan,
    RecordedSource,
    ScreenSearch,
    SearchJob,
    held_in,
    match_spans,
    pane_order,
)
from autotrace.view.typing import TypingTranslator

# The smallest terminal the view draws into is one pane of the smallest size
# (min_pane) with its title, the header and the footer; below it a message
# asks for more.
# A pane with wrap off gets a pty this wide (or its place's width, if wider):
# its program prints whole lines, the place shows a window onto them.
UNWRAPPED_COLS = 320

# A pane resized by the layout (zoom, a terminal resize) catches up at its
# old size for at most this long: a flooding pane's backlog must not freeze
# the view; what is left is emulated at the new size.
RESIZE_CATCH_UP = 0.02
EVIDENCE_MATCH = 40  # characters of an evidence line looked for on screen: enough to be its own
HELP_NOTE = ("While paused, the kernel may drop packets a stopped tcpdump "
             "cannot read in time.")


@dataclass
class PaneState:
    index: int
    command: str
    screen: PaneScreen
    state: str = "starting"
    scroll: int = 0  # lines back into history; 0 is the live tail
    hscroll: int = 0  # columns scrolled sideways: the first column shown
    wrap: bool = True  # off: the pty is wider than the place (UNWRAPPED_COLS)
    # The pty size the program had, where the screens are fixed: a replay's
    # at the moment shown, a live pane's once the session is over.
    recorded_size: tuple[int, int] | None = None
    highlight: SearchHit | None = None  # the current search match (its line counts)
    dirty: bool = True
    rendered: list[FmtStr] = field(default_factory=list)
    # Rebuilt from the recording while scrolled past what memory holds: a
    # deeper copy of the screen (same bottom line), or the session's start.
    archives: list[PaneScreen] = field(default_factory=list)
    at_start: bool = False  # archives[0] shows the session's start
    # archives[0] was rebuilt around a search's match in the recording: its
    # recorded line, where n and N go on from.
    recorded_line: int | None = None
    # Drawn rows by the screen line they show (PaneScreen.lines_back): output
    # that scrolls moves lines, it rarely changes them, so most rows of a new
    # frame are drawn already. Each entry keeps its line, so the id in its key
    # is not reused, and a copy of a screen line's cells, to see a change.
    row_cache: dict[int, tuple[Any, tuple[Any, ...], dict[int, Any] | None, FmtStr]] = field(
        default_factory=dict)
    # What the pane's output means, drawn over it while colours are on (strace, tcpdump).
    lens: Lens | None = None

    @property
    def shown(self) -> PaneScreen:
        return self.archives[-1] if self.archives else self.screen

    def drop_archives(self) -> None:
        """Back to the screen memory holds."""
        self.archives.clear()
        self.at_start = False
        self.recorded_line = None

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
    min_pane: tuple[int, int] = MIN_PANE  # no pane's content (or pty) is smaller
    colours: bool = True
    sync: bool = True
    history: int = 5000
    reply: Callable[[int, str], None] | None = None  # device-query answers, per pane
    # (pane, depth) -> the pane's screen rebuilt from the recording with `depth`
    # lines of history (None: the session's start instead of its end); None if
    # the recording cannot give it.
    archive: Callable[[int, int | None], PaneScreen | None] | None = None
    # A pane's recorded text for the search past what memory holds (view/search.py).
    recorded: RecordedSource | None = None
    # (pane, cols, rows) -> the pane's screen rebuilt from its recording at
    # that size, so text printed so far is wrapped to the new size (a screen
    # model does not reflow); None if the recording cannot give it.
    rebuild: Callable[[int, int, int], PaneScreen | None] | None = None
    panes: list[PaneState] = field(default_factory=list)
    zoom: int | None = None
    offset: int = 0
    focus: int = 0
    paused: bool = False
    ended: bool = False  # the session is over: the final screen, to read at leisure
    help_open: bool = False
    help_page: int = 0
    prompt: tuple[str, str] | None = None  # (kind, text typed so far): search, mark, time
    search: re.Pattern[str] | None = None  # matches of it are drawn inverted in every pane
    search_job: SearchJob | None = None  # a search under way: the loop calls search_step
    started_unix: float | None = None  # wall-clock time of the session's t = 0
    message: str = ""
    status_left: str = ""  # e.g. "REC /path"
    status_right: str = ""  # e.g. "main: running pid 42"
    clock_text: str = "00:00"
    badge: str = ""  # replaces Running/PAUSED in the header (replay: PLAY, END)
    replay: bool = False  # the footer lists replay's keys
    # Replay, or a live session over: screens keep the recorded pty size,
    # but for a zoomed pane (or one with wrap off), re-wrapped for reading.
    fixed_screens: bool = False
    chrome_dirty: bool = True  # header/footer/titles need a redraw
    findings: FindingsList = field(default_factory=FindingsList)  # F: what the rules found
    typing: int | None = None  # input mode: the pane whose program gets the keys
    _typed: TypingTranslator = field(
        default_factory=lambda: TypingTranslator(keymap.LEAVE_INPUT))

    @property
    def reading(self) -> bool:
        """Paused or over: the arrows and j/k scroll instead of moving focus."""
        return self.paused or self.ended

    # ------------------------------------------------------------ panes

    def add_pane(self, index: int, command: str, cols: int, rows: int) -> PaneState:
        def answer(text: str, index: int = index) -> None:
            if self.reply:
                self.reply(index, text)

        pane = PaneState(index, command, PaneScreen(cols, rows, self.history, reply=answer),
                         lens=lens_for(command))
        while len(self.panes) <= index:
            self.panes.append(pane)
        self.panes[index] = pane
        self.chrome_dirty = True
        return pane

    def apply(self, event: Event) -> None:
        """One pane's event onto the view, live or replayed: the one way output,
        resizes and markers reach the screens (DESIGN.md, One stream)."""
        if event.kind == OUTPUT:
            self.feed(event.pane, event.data, event.t)
        elif event.kind == RESIZE and self.fixed_screens:
            # Live, screens follow the layout (the pty was resized to it); a
            # replay's keep the recorded size. Bad data is ignored (format spec).
            size = parse_size(event.data)
            if size is not None:
                pane = self.panes[event.pane]
                pane.recorded_size = size
                if self.screen_size(event.pane) == size:
                    pane.screen.resize(*size)
                pane.dirty = True
        elif event.kind == FINDING:
            self.findings.add_json(event.data)
            self.chrome_dirty = True
        elif event.kind == MARKER and event.data.startswith("user:"):
            # Live, the user just added it; in a replay, playing reached it.
            self.message = f"marker{'' if self.replay else ' added'}: {event.data[5:]}"
            self.chrome_dirty = True

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
        return self.cols < self.min_pane[0] or self.rows < self.min_pane[1] + 3 \
            or not layout.fits(self.arrangement().values(), self.min_pane)

    def hidden_count(self) -> int:
        """Panes not shown because they do not fit (or --visible); not while zoomed."""
        return 0 if self.zoom is not None else len(self.panes) - len(self.arrangement())

    def arrangement(self) -> dict[int, Rect]:
        """Pane rects inside the area between the header and footer rows."""
        rects = layout.arrange(len(self.panes), self.cols, max(1, self.rows - 2),
                               visible=self.visible, offset=self.offset, zoom=self.zoom,
                               vertical=self.vertical, minimum=self.min_pane)
        return {i: Rect(r.x, r.y + 1, r.width, r.height) for i, r in rects.items()}

    @staticmethod
    def content_size(rect: Rect) -> tuple[int, int]:
        """The place for a pane's content in `rect`: minus the title row and separator."""
        return max(1, rect.content_cols), max(1, rect.content_rows)

    def pty_size(self, pane: PaneState, place: tuple[int, int]) -> tuple[int, int]:
        """The pty size for a pane shown in `place`: the place, never smaller
        than the layout's minimum (a terminal too small is cropped, the
        programs keep a size they can print in), wider with wrap off."""
        cols, rows = max(self.min_pane[0], place[0]), max(self.min_pane[1], place[1])
        return (cols if pane.wrap else max(cols, UNWRAPPED_COLS)), rows

    def pane_sizes(self) -> dict[int, tuple[int, int]]:
        """The pty size of every pane shown."""
        return {i: self.pty_size(self.panes[i], self.content_size(r))
                for i, r in self.arrangement().items()}

    # A screen can be larger than its place: a replay keeps the recorded
    # size, and a live pty is resized after the terminal shrank. The place
    # then shows the rows that end where the newest output does, never the
    # top rows (which would hide the newest), and the title says it is cropped.

    def _place(self, pane: PaneState) -> tuple[int, int]:
        rect = self.arrangement().get(pane.index)
        return self.content_size(rect) if rect else (pane.shown.cols, pane.shown.rows)

    def _window(self, pane: PaneState, place: tuple[int, int] | None = None) -> tuple[int, int]:
        """(rows shown, anchor): the bottom line shown is `scroll + anchor` lines
        back from the bottom line of the pane's screen."""
        screen = pane.shown
        count = min((place or self._place(pane))[1], screen.rows)
        if count >= screen.rows:
            return count, 0
        return count, screen.rows - 1 - max(screen.tail_row(), count - 1)

    def bottom_line(self, pane: PaneState) -> int:
        """The pane's bottom visible line, counted back from its screen's bottom line."""
        return pane.scroll + self._window(pane)[1]

    def max_scroll(self, pane: PaneState) -> int:
        count, anchor = self._window(pane)
        return max(0, pane.shown.total_lines - count - anchor)

    def resize(self, cols: int, rows: int) -> None:
        self.cols, self.rows = cols, rows
        self.relayout()

    def screen_size(self, index: int) -> tuple[int, int]:
        """The size pane `index`'s screen should have now. Live: its pty's
        (the layout's). Where screens are fixed (a replay, a session over):
        the recorded size, but a zoomed pane's is the zoomed place's and one
        with wrap off is UNWRAPPED_COLS wide: its text is re-wrapped there
        for reading, since its program cannot redraw it (a replay's never
        could; an ended one is gone)."""
        pane = self.panes[index]
        rect = self.arrangement().get(index)
        place = self.content_size(rect) if rect else None
        if not self.fixed_screens:
            return self.pty_size(pane, place) if place else (pane.screen.cols, pane.screen.rows)
        if index == self.zoom and place:
            return self.pty_size(pane, place)
        cols, rows = pane.recorded_size or (pane.screen.cols, pane.screen.rows)
        return (cols if pane.wrap else max(cols, UNWRAPPED_COLS)), rows

    def relayout(self) -> None:
        for i in self.arrangement():
            pane = self.panes[i]
            c, r = self.screen_size(i)
            if (pane.screen.cols, pane.screen.rows) != (c, r):
                self._fit_screen(pane, c, r)
            pane.hscroll = min(pane.hscroll, self._max_hscroll(pane))
            pane.dirty = True
        self.chrome_dirty = True

    def _fit_screen(self, pane: PaneState, cols: int, rows: int) -> None:
        """The pane's screen at its new size, its text re-wrapped: rebuilt from
        the recording when it can be, else (no whole recording) resized as a
        terminal without reflow would be, or, where screens are fixed, kept
        as it is and said so."""
        rebuilt = self.rebuild(pane.index, cols, rows) if self.rebuild else None
        if rebuilt is None:
            if not self.fixed_screens:
                pane.screen.resize(cols, rows, seconds=RESIZE_CATCH_UP)
            else:
                self.message = (f"pane {pane.index}: its lines keep the width they were "
                                "printed at (no recording to re-wrap them from)")
            return
        moment = self.moment_of(pane) if pane.scroll else None
        rebuilt.answer_with(pane.screen.reply)
        pane.screen, pane.highlight = rebuilt, None
        pane.drop_archives()
        pane.row_cache.clear()
        back = None if moment is None else rebuilt.last_printed_by(moment)
        pane.scroll = 0 if back is None else max(
            0, min(back - self._window(pane)[1], self.max_scroll(pane)))

    # ------------------------------------------------------------ keys

    def modes(self) -> frozenset[str]:
        """The keymap modes the view is in (view/keymap.py)."""
        if self.typing is not None:
            return frozenset({keymap.INPUT})
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
        if self.search_job is not None and key in ("KEY_ESCAPE", "\x1b"):
            self.search_job = None
            self.message = "search cancelled"
            return None
        if self.help_open:
            self._help_key(key)
            self._all_dirty()
            return None
        if self.findings.open:
            return self._findings_key(key)
        binding = keymap.lookup(key, self.modes())
        if binding is None:
            return None
        own = getattr(self, f"_do_{binding.command}", None)
        return own(key) if own is not None else Action(binding.command)

    def handle_typed(self, raw: str) -> list[Action]:
        """Input mode: keys as the terminal sent them, for the program of the
        pane being typed into (an Action "send" the controller carries out),
        until the key that leaves the mode; keys after it are the view's."""
        if self.typing is None:
            return []
        typed = self._typed.translate(raw, self.panes[self.typing].screen.bracketed_paste)
        actions = [Action("send", typed.text)] if typed.text else []
        if typed.leave:
            binding = keymap.lookup(keymap.LEAVE_INPUT, self.modes())
            if binding is not None:
                actions.append(getattr(self, f"_do_{binding.command}")(keymap.LEAVE_INPUT))
            for key in typed.rest:
                action = self.handle_key(key)
                if action is not None:
                    actions.append(action)
        return actions

    def leave_typing(self) -> Action:
        """Input mode ends without the key (the program being typed into ended)."""
        return self._do_leave_input(keymap.LEAVE_INPUT)

    def start_typing(self, index: int) -> None:
        self.typing = index
        self._typed.in_paste = False
        self.message = ""  # the footer says how to leave
        self._all_dirty()

    # The view's own commands (keymap.TABLE names them).

    def _do_type_in(self, key: str) -> Action:
        return Action("type_in", str(self.focus))

    def _do_input_refused(self, key: str) -> None:
        self.message = ("a replay cannot be typed into: input goes to a live session's panes"
                        if self.replay else "the session is over: nothing to type into"
                        if self.ended else "paused: c continues, then i types into the pane")

    def _do_leave_input(self, key: str) -> Action:
        self.typing = None
        self.message = "left input mode: keys are view commands again"
        self._all_dirty()
        return Action("leave_input")

    def _do_help(self, key: str) -> None:
        self.help_open, self.help_page = True, 0

    def _help_key(self, key: str) -> None:
        """Space (or f, PgDn) turns to the next page, b (PgUp) back; any other
        key, or Space on the last page, closes the help."""
        pages = len(self._help_pages(self.cols, self._help_height()))
        if key in (" ", "f", "KEY_NPAGE", "KEY_PGDOWN") and self.help_page + 1 < pages:
            self.help_page += 1
        elif key in ("b", "KEY_PPAGE", "KEY_PGUP") and self.help_page > 0:
            self.help_page -= 1
        else:
            self.help_open = False

    def _do_scroll_left(self, key: str) -> None:
        self._scroll_sideways(-1)

    def _do_scroll_right(self, key: str) -> None:
        self._scroll_sideways(1)

    def _scroll_sideways(self, direction: int) -> None:
        """Half a place at a time, no further than the widest line in view."""
        pane = self.panes[self.focus]
        step = max(1, self._place(pane)[0] // 2)
        wanted = max(0, min(pane.hscroll + direction * step, self._max_hscroll(pane)))
        if wanted == pane.hscroll:
            edge = "nothing further right" if direction > 0 else "at its first column"
            self.message = f"pane {pane.index}: {edge}"
        pane.hscroll = wanted
        pane.dirty = True

    def _max_hscroll(self, pane: PaneState) -> int:
        """The first column shown when the widest line in view ends at the right edge."""
        place_cols = self._place(pane)[0]
        if pane.shown.cols <= place_cols:
            return 0
        count, anchor = self._window(pane)
        rows = pane.shown.rows_back(pane.scroll + anchor, count)
        widest = max((len(row_text(row).rstrip()) for row in rows), default=0)
        return max(0, min(widest, pane.shown.cols) - place_cols)

    def _do_wrap(self, key: str) -> Action:
        """Wrap off: the pty gets UNWRAPPED_COLS columns (the program's lines come
        whole, `<` and `>` move along them); on: the place's width again. Either
        way the text printed so far is re-wrapped from the recording. Where
        screens are fixed (a replay, a session over) only the text is."""
        pane = self.panes[self.focus]
        pane.wrap = not pane.wrap
        pane.hscroll = 0
        self.relayout()
        wrapped = "on" if pane.wrap else f"off ({pane.screen.cols} columns: < > scroll)"
        self.message = self.message or f"pane {pane.index}: wrap {wrapped}"
        return Action("resize")

    def _do_findings(self, key: str) -> None:
        self.findings.open = True
        self._all_dirty()

    def _findings_key(self, key: str) -> Action | None:
        chosen = self.findings.key(key)
        self._all_dirty()
        return self.go_to_finding(chosen) if isinstance(chosen, Finding) else None

    def go_to_finding(self, finding: Finding) -> Action:
        """Every pane to the finding's moment, its evidence highlighted (as a
        search's matches are). Live, the pane scrolls back to the evidence line
        and time-sync brings the others; a replay seeks there (Action "moment")."""
        evidence = [e for e in finding.evidence if 0 <= e.pane < len(self.panes)]
        first = evidence[0] if evidence else None
        pieces = {re.escape(e.line.strip()[:EVIDENCE_MATCH]) for e in evidence if e.line.strip()}
        self.search = re.compile("|".join(sorted(pieces))) if pieces else None
        self.message = f"finding at {finding.t:.3f} s: {finding.title}"
        if first is None:
            return Action("moment", repr(finding.t)) if self.replay else Action("none")
        self.show_pane(first.pane)
        if self.replay:  # to the last of its evidence: every line of it is on screen
            return Action("moment", repr(max(e.t for e in evidence)))
        pane = self.panes[first.pane]
        pane.drop_archives()
        hit = pane.screen.search(self.search, 0) if self.search else None
        if hit is not None:
            pane.highlight = hit
            self._show_hit(pane, hit)
        else:  # gone from memory: the line printed by then, at the bottom
            back = pane.screen.last_printed_by(first.t)
            self.scroll_to(pane.index, 0 if back is None else back - self._window(pane)[1])
        if not self.sync:
            self._follow(pane)  # the finding's moment, in every pane, sync or not
        return Action("resize")

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

    def _do_search_again(self, key: str) -> Action | None:
        return self._search_on(key, backwards=True)

    def _do_search_reverse(self, key: str) -> Action | None:
        return self._search_on(key, backwards=False)

    def _search_on(self, key: str, backwards: bool) -> Action | None:
        """n / N: live, the view searches its screens (back in time first, as `/`
        does); a replay searches its recording (forward in time), so it gets the key."""
        if self.replay:
            return Action("search_again" if backwards else "search_reverse")
        if self.search is None:
            return None
        self.search_next(backwards=backwards)
        return Action("resize")  # a match in a hidden pane brings it on screen

    def _do_go_to(self, key: str) -> None:
        self.prompt = ("time", "")

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
        pane.drop_archives()
        self.scroll_to(self.focus, 0)

    def _page(self) -> int:
        return max(1, self._window(self.panes[self.focus])[0] - 1)

    def _scroll_by(self, lines: int) -> None:
        self.scroll_to(self.focus, self.panes[self.focus].scroll + lines)

    def _prompt_key(self, key: str) -> Action | None:
        kind, text = self.prompt  # type: ignore[misc]
        if key in ("KEY_ESCAPE", "\x1b"):
            self.prompt = None
        elif key in ("KEY_ENTER", "\n", "\r"):
            self.prompt = None
            if kind in ("search", "time"):
                return Action(kind, text)
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
        if scroll > self.max_scroll(pane):
            self._load_deeper(pane)
        elif scroll < 0 and (pane.at_start or pane.recorded_line is not None):
            pane.drop_archives()  # down past a stretch of the recording: back to the kept tail
            scroll = self.max_scroll(pane)
        pane.scroll = max(0, min(scroll, self.max_scroll(pane)))
        pane.dirty = True
        if pane.archives:
            self.message = "from the recording: older than the scrollback kept in memory"
        if self.sync:
            self._follow(pane)

    def _follow(self, pane: PaneState) -> None:
        """Every other pane shows, as its bottom line, the last line it printed at
        or before the moment of `pane`'s bottom line (at its live tail: the tail)."""
        moment = self.moment_of(pane) if pane.scroll or pane.archives else None
        for other in self.panes:
            if other is pane:
                continue
            other.drop_archives()  # time-sync follows within what memory holds
            other.dirty = True
            back = None if moment is None else other.screen.last_printed_by(moment)
            if moment is None:
                other.scroll = 0
            elif back is None:  # nothing printed yet at that moment: its first lines
                other.scroll = self.max_scroll(other)
            else:
                other.scroll = max(0, min(back - self._window(other)[1], self.max_scroll(other)))

    def moment_of(self, pane: PaneState) -> float:
        """When the pane's bottom visible line was printed, seconds since the start."""
        return pane.shown.time_back(self.bottom_line(pane))

    def moment_text(self) -> str:
        """The moment being read, for the status line: wall clock with ms, and offset."""
        if not 0 <= self.focus < len(self.panes):
            return ""
        t = self.moment_of(self.panes[self.focus])
        wall = ""
        if self.started_unix is not None:
            wall = datetime.datetime.fromtimestamp(self.started_unix + t).strftime(
                "%H:%M:%S.%f")[:-3] + " "
        return f"{wall}+{t:.3f} s"

    def _load_deeper(self, pane: PaneState) -> None:
        """Scrolled past the top of memory: rebuild with more history from the recording."""
        if self.archive is None or pane.at_start or pane.recorded_line is not None \
                or not pane.truncated():
            return  # (a stretch around a match ends where the match is: nothing deeper)
        deeper = self.archive(pane.index, pane.shown.max_scroll + self.history)
        if deeper is not None and deeper.max_scroll > pane.shown.max_scroll:
            pane.archives = [deeper]

    def _to_session_start(self, pane: PaneState) -> None:
        if pane.truncated() and self.archive is not None:
            first = self.archive(pane.index, None)
            if first is not None:
                pane.archives, pane.at_start = [first], True
        self.scroll_to(pane.index, self.max_scroll(pane))

    def back_to_live(self) -> None:
        for pane in self.panes:
            pane.scroll, pane.highlight = 0, None
            pane.drop_archives()
            pane.dirty = True

    # ------------------------------------------------------------ search

    def run_search(self, text: str) -> None:
        """Search every pane for the regex `text`: the focused pane first, from
        its bottom visible line back to the session's start, then the others."""
        try:
            pattern = re.compile(text)
        except re.error as err:
            self.message = f"bad regex: {err}"
            return
        self.search = pattern
        for pane in self.panes:
            pane.highlight = None
        self._all_dirty()
        if self.panes:
            focused = self.panes[self.focus]
            # Showing a stretch of the recording: from its matching line, included.
            recorded = None if focused.recorded_line is None else focused.recorded_line + 1
            self._start_search(True, self.bottom_line(focused), None, recorded)

    def search_next(self, backwards: bool) -> None:
        pane = self.panes[self.focus]
        hit = pane.highlight
        if pane.recorded_line is not None:
            self._start_search(backwards, 0, None, pane.recorded_line)
        elif hit is None:
            self._start_search(backwards, self.bottom_line(pane), None)
        else:
            self._start_search(backwards, hit.line, hit.col_start)

    def _start_search(self, backwards: bool, line: int, col: int | None,
                      recorded: int | None = None) -> None:
        assert self.search is not None
        self.search_job = ScreenSearch(
            self.search, pane_order(len(self.panes), self.focus, backwards), line, col,
            backwards, self._memory_of, self._recorded_scan, from_recorded=recorded)
        self.search_step()

    def _memory_of(self, index: int) -> PaneScreen:
        """What a search reads as the pane's memory: what it shows, unless that
        is a stretch of the recording around a match (the recording's part)."""
        pane = self.panes[index]
        return pane.screen if pane.recorded_line is not None else pane.shown

    def _recorded_scan(self, index: int, backwards: bool,
                       bound: int | None) -> RecordedScan | None:
        """The pane's recorded text, when memory does not hold it all."""
        pane = self.panes[index]
        memory = self._memory_of(index)
        if self.recorded is None or self.search is None or pane.at_start \
                or (bound is None and not memory.lost):
            return None
        return self.recorded(index, self.search, backwards, bound, held_in(memory))

    def search_step(self, budget: int = SEARCH_SLICE) -> None:
        """One slice of the search under way; the loop calls this once a turn."""
        job = self.search_job
        if job is None:
            return
        self.chrome_dirty = True
        if not job.step(budget):
            return
        self.search_job = None
        if isinstance(job, ScreenSearch):
            self._show_match(job)

    def _show_match(self, job: ScreenSearch) -> None:
        which = "earlier" if job.backwards else "later"
        if job.found is None:
            self.message = f"/{job.pattern.pattern}: no {which} match in any pane"
            return
        index, found = job.found
        pane = self.panes[index]
        if index != self.focus:
            self.show_pane(index)
        for other in self.panes:
            other.highlight = None
        if isinstance(found, RecordedHit):
            self._show_recorded(pane, job.pattern, found)
            return
        if pane.recorded_line is not None:
            pane.drop_archives()  # the match is in memory: the search read pane.screen
        self._show_hit(pane, found)
        where = " (from the recording)" if pane.archives else ""
        self.message = (f"/{job.pattern.pattern}: pane {index} at "
                        f"{pane.shown.time_back(found.line):.1f} s{where}")

    def _show_hit(self, pane: PaneState, hit: SearchHit) -> None:
        pane.highlight = hit
        count, anchor = self._window(pane)
        bottom = self.bottom_line(pane)
        if not bottom <= hit.line < bottom + count:
            bottom = max(0, hit.line - count // 2)  # centred
        self.scroll_to(pane.index, max(0, bottom - anchor))
        place_cols = self._place(pane)[0]
        if not pane.hscroll <= hit.col_start < hit.col_end <= pane.hscroll + place_cols:
            # A match outside the window sideways (wrap off, a wide replay): bring it in.
            pane.hscroll = max(0, min(hit.col_start - place_cols // 4, self._max_hscroll(pane)))
            pane.dirty = True

    def _show_recorded(self, pane: PaneState, pattern: re.Pattern[str], found: RecordedHit) -> None:
        """A match in the recording: the pane shows the screen rebuilt around
        it, the match highlighted on it (the bottom-most one: the line itself)."""
        pane.drop_archives()
        pane.archives, pane.recorded_line = [found.screen], found.number
        hit = found.screen.search(pattern, 0)
        if hit is not None:
            self._show_hit(pane, hit)
        else:  # the match spans rows (a wrapped line): the line is shown, unmarked
            self.scroll_to(pane.index, 0)
        self.message = (f"/{pattern.pattern}: pane {pane.index} at {found.t:.1f} s"
                        " (from the recording)")

    def show_pane(self, index: int) -> None:
        """Focus a pane, bringing it on screen if it is not: a zoom follows it,
        hidden panes cycle (as `m` does) until it shows. The controller then
        applies the pane sizes, which may have changed."""
        if self.zoom is not None:
            self.zoom = index
        for _ in range(len(self.panes)):
            if index in self.arrangement():
                break
            self.offset += 1
        self.focus = index
        self.relayout()
        self._all_dirty()

    # ------------------------------------------------------------ drawing

    def _all_dirty(self) -> None:
        for pane in self.panes:
            pane.dirty = True
        self.chrome_dirty = True

    def frame(self) -> FSArray | list[FmtStr]:
        if self.too_small():
            return render.message_frame(self.cols, self.rows, [
                "terminal too small",
                f"need at least {self.min_pane[0]}x{self.min_pane[1] + 3}",
                f"now {self.cols}x{self.rows}: enlarge it, zoom (0-9) or press q"])
        rects = self.arrangement()
        if self.help_open:
            blocks = [(Rect(0, 1, self.cols, self.rows - 2), self._help_rows(self.cols))]
        elif self.findings.open:
            blocks = [(Rect(0, 1, self.cols, self.rows - 2),
                       self.findings.rows(self.cols, self.rows - 2))]
        else:
            blocks = [(rect, self._pane_rows(i, rect)) for i, rect in rects.items()]
        return render.compose(self.cols, self.rows, blocks, self._header(), self._footer())

    def _row(self, pane: PaneState, line: Any, how: tuple[Any, ...],
             drawn: dict[int, tuple[Any, tuple[Any, ...], dict[int, Any] | None, FmtStr]],
             border: FmtStr | None) -> FmtStr:
        """One row of the pane: drawn again only if its line or how it is
        drawn (HOW: sizes, sideways scroll, colours, search) has changed."""
        key = id(line)
        hit = pane.row_cache.get(key)
        if (hit is not None and hit[1] == how
                and (hit[2] is None or hit[2] == line)):  # a dict compare, in C
            drawn[key] = hit
            return hit[3]
        cols, left = how[0], how[1]
        # Most rows are plain text (one style, ASCII): drawn from their few
        # written chars, not from a cell per column.
        text = None if self.search else pane.shown.plain_text_of(line, left, cols)
        cells = pane.shown.cells_of(line)[left:left + cols] if text is None else []
        if pane.lens and self.colours:
            spans = pane.lens(text if text is not None else row_text(cells[:cols]))
        else:
            spans = ()
        if text is not None and not spans:
            row = render.plain_row(text)
        else:
            cells = cells or pane.shown.cells_of(line)[left:left + cols]
            marks = match_spans(self.search, cells[:cols]) if self.search else ()
            row = render.cells_to_line(cells, cols, self.colours, marks, spans)
        if border is not None:
            row = border + row
        # A history line (a tuple) never changes; a screen line is copied.
        copy = None if line is None or isinstance(line, tuple) else dict(line)
        drawn[key] = (line, how, copy, row)
        return row

    def _pane_rows(self, index: int, rect: Rect) -> list[FmtStr]:
        pane = self.panes[index]
        if pane.dirty or len(pane.rendered) != rect.height:
            pane.rendered = self._draw_pane(pane, rect)
            pane.dirty = False
        return pane.rendered

    def _draw_pane(self, pane: PaneState, rect: Rect) -> list[FmtStr]:
        cols, rows = self.content_size(rect)
        shown = pane.shown
        count, anchor = self._window(pane, (cols, rows))
        notes = [f"{pane.scroll} lines back"] if pane.scroll else []
        if pane.archives:
            notes.append(f"(from the recording, {self.moment_of(pane):.1f} s)")
        cut = [f"{shown.rows}→{count} rows"] if count < shown.rows else []
        left = pane.hscroll
        if shown.cols > cols:
            cut.append(f"{shown.cols}→{cols} cols" + (f" from {left + 1}" if left else ""))
        if not pane.wrap:
            notes.append("nowrap")
        if self.fixed_screens and pane.recorded_size not in (None, (shown.cols, shown.rows)):
            # Not the size its program printed at: say so (a zoom, wrap off).
            notes.append(f"re-wrapped from {pane.recorded_size[0]} cols")  # type: ignore[index]
        if cut:
            notes.append("cropped " + ", ".join(cut))
        if pane.index == self.typing:
            notes.insert(0, "TYPING (Ctrl-] leaves)")
        title = render.pane_title(pane.index, pane.command, pane.state, rect.width,
                                  focused=(pane.index == self.focus), extra="  ".join(notes))
        lines = [title]
        screen_lines = shown.lines_back(pane.scroll + anchor, count)
        border = (render.styled("│", 1, fg=render.accent(pane.index))
                  if rect.x > 0 else None)
        how = (cols, left, shown.cols, self.colours, self.search, border is None)
        drawn: dict[int, tuple[Any, tuple[Any, ...], dict[int, Any] | None, FmtStr]] = {}
        for y in range(rows):
            line = screen_lines[y] if y < len(screen_lines) else None  # None: a blank row
            lines.append(self._row(pane, line, how, drawn, border))
        pane.row_cache = drawn  # what this frame showed: all a next frame can reuse
        return lines

    def _header(self) -> FmtStr:
        if self.typing is not None:
            badge = f" TYPING INTO {self.typing} "
            state = render.styled(badge, len(badge), fg="black", bg="magenta", bold=True)
        elif self.badge:
            state = render.styled(f" {self.badge} ", len(self.badge) + 2, fg="black",
                                  bg="yellow", bold=True)
        elif self.paused:
            state = render.styled(" PAUSED ", 8, fg="gray", bg="red", bold=True)
        elif self.ended:
            state = render.styled(" ENDED ", 7, fg="black", bg="yellow", bold=True)
        else:
            state = render.styled(" Running ", 9, fg="black", bg="green")
        hidden = self.hidden_count()
        parts = [f"+{hidden} hidden (m)"] if hidden else []
        parts.append(self.clock_text)
        if self.shows_moment():
            parts.append(self.moment_text())
        if self.findings.items:
            parts.append(self.findings.count_text())
        right_text = " " + "  ".join(parts)
        # The hidden count, the clock, the moment and the findings matter more
        # than the status, which matters more than the label on the left.
        status_room = self.cols - state.width - len(right_text) - 3
        if self.status_right and status_room > 0:
            right_text += "  " + _shortened(self.status_right, status_room)
        right_text += " "
        room = max(0, self.cols - state.width - len(right_text.rstrip()))
        left = render.plain(f" {_shortened(self.status_left, room - 2)} ",
                            min(self.cols // 2, room), bold=True)
        right = render.plain(right_text, max(0, self.cols - left.width - state.width))
        return render.join([left, state, right])

    def shows_moment(self) -> bool:
        """The status line names the moment being read while the view stands still."""
        return self.paused and bool(self.panes)

    def _footer(self) -> FmtStr:
        if self.prompt is not None:
            kind, text = self.prompt
            label = {"search": "search /", "time": "go to time (83.5 or 1:23.5): "}.get(
                kind, "marker name: ")
            return render.styled(f"{label}{text}█   Enter: ok   Esc: cancel", self.cols,
                                 fg="black", bg="yellow")
        if self.search_job is not None:
            progress = f"{int(self.search_job.progress() * 100)}%"
            return render.styled(f" searching /{self.search_job.pattern.pattern}… {progress}"
                                 "   Esc: cancel", self.cols, fg="black", bg="yellow")
        if self.message:
            return render.styled(f" {self.message}", self.cols, fg="black", bg="cyan")
        return render.plain(self.footer_keys(), self.cols, invert=True)

    def footer_keys(self) -> str:
        if self.help_open:
            pages = len(self._help_pages(self.cols, self._help_height()))
            if pages == 1:
                return " any key: close help"
            turns = ["Space next"] if self.help_page + 1 < pages else []
            turns += ["b back"] if self.help_page else []
            return (f" help page {self.help_page + 1}/{pages}: {'  '.join(turns)}  "
                    "any other key closes")
        if self.typing is not None:
            entries = keymap.footer(keymap.INPUT, self.modes(), set(), self.sync)
            # How to leave first: it must fit even at 80 columns.
            return (" " + "  ".join(entries) + f"   keys, Ctrl-C/Z/D, paste: to pane "
                    f"{self.typing}'s program")
        primary = keymap.REPLAY if self.replay else keymap.ENDED if self.ended \
            else keymap.PAUSED if self.paused else keymap.LIVE
        states = set()
        if self.zoom is not None:
            states.add(keymap.WHEN_ZOOMED)
        elif self.hidden_count():
            states.add(keymap.WHEN_MORE_PANES)
        if self.panes and 0 <= self.focus < len(self.panes) and \
                self.panes[self.focus].shown.cols > self._place(self.panes[self.focus])[0]:
            states.add(keymap.WHEN_WIDE)
        if self.search is not None:
            states.add(keymap.WHEN_SEARCHED)
        if self.findings.items:
            states.add(keymap.WHEN_FINDINGS)
        return " " + "  ".join(keymap.footer(primary, self.modes(), states, self.sync))

    def help_rows(self) -> list[tuple[str, str]]:
        return keymap.help_rows(self.modes())

    def _help_height(self) -> int:
        return max(1, self.rows - 2)

    def _help_pages(self, width: int, height: int) -> list[list[str]]:
        """The help's lines, meanings wrapped to the width, cut into pages of
        `height` rows (each with the title): all of it fits any terminal the
        view draws in. An entry is never split across two pages."""
        keys_width = 22
        wrap_at = max(10, width - keys_width - 4)  # a row never touches the edge
        entries = [[f"  {keys:<{keys_width}} {line}" if n == 0 else " " * (keys_width + 3) + line
                    for n, line in enumerate(textwrap.wrap(meaning, wrap_at))]
                   for keys, meaning in self.help_rows()]
        entries.append([""] + ["  " + line for line in textwrap.wrap(HELP_NOTE, width - 3)])
        room = max(1, height - 2)  # the title and a blank line start each page
        pages: list[list[str]] = [[]]
        for entry in entries:
            if pages[-1] and len(pages[-1]) + len(entry) > room:
                pages.append([])
            pages[-1].extend(entry)
        return pages

    def _help_rows(self, width: int) -> list[FmtStr]:
        pages = self._help_pages(width, self._help_height())
        page = min(self.help_page, len(pages) - 1)
        title = " autotrace keys" + (f" (page {page + 1}/{len(pages)})" if len(pages) > 1 else "")
        rows = [render.plain(title, width, bold=True), render.plain("", width)]
        rows += [render.plain(line, width) for line in pages[page]]
        return rows


def _shortened(text: str, room: int) -> str:
    """`text` in at most `room` columns, an ellipsis saying it was cut."""
    if len(text) <= room:
        return text
    return text[:max(0, room - 1)] + "…" if room > 0 else ""
