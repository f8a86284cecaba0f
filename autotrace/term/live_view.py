"""LiveView: the multi-pane view driven by a running live Session."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from typing import Callable

from autotrace.events import OUTPUT, STATE, Event
from autotrace.export.search import PaneTextSearch
from autotrace.format.asciicast import CastEvent
from autotrace.format.errors import RecordingError
from autotrace.format.reader import read_cast, read_cast_tail
from autotrace.format.tracks import PaneTrack
from autotrace.live.procs import state_of
from autotrace.live.session import Session
from autotrace.loop import Loop
from autotrace.term.terminal import Terminal, TerminalGone
from autotrace.view.multipane import Action, MultiPaneView
from autotrace.view.screen import PaneScreen

# Output is drawn at most 10 times a second, and 4 while it keeps coming:
# enough to follow a log, and a frame of four busy panes costs a few ms of
# Python (the 5% budget for four panes at 20 lines/s). Keys are drawn at once.
FRAME_INTERVAL = 1 / 10
BUSY_FRAME_INTERVAL = 1 / 4
HIDDEN_CATCH_UP = 1.0  # hidden panes' screen models catch up this often
# A picked-up job that could not be moved to a pane writes over the view:
# the whole screen is repainted this often (we cannot see its writes).
FOREIGN_REPAINT = 0.5
# Emulation gets at most this much time per turn of the session's loop
# (between two ticks), for all panes together: reading every pty, and so
# the recorded times, must never wait longer (issue 8: a flooding pane held
# the others' reads up to 70 s). What is left queued is emulated in the
# next turns; the view lags, the recording does not.
EMULATION_PER_TURN = 0.005
# While a shown pane has a backlog, it is emulated on every turn, not only
# for frames, with at least this long for reading (and sleeping) in between:
# at most half the time goes to emulation.
BACKLOG_PAUSE = 0.01
# Only a backlog this large is worked on between frames: a few lines a
# second wait for the next frame (a tenth of a second), as they did before
# there were floods to keep up with; waking up for each cost CPU for nothing.
BACKLOG_BIG = 16 * 1024
# A pane re-wrapped to a new size (zoom, wrap, a resize) is rebuilt from about
# this much of the end of its recording, keeping at most REWRAP_LINES lines of
# history: a key must be answered in a blink (about 80 ms a pane here), and
# the reads of the other panes wait meanwhile. Scrolling further back reads
# the recording (_archive).
REWRAP_BYTES = 128 * 1024
REWRAP_LINES = 300


def _events_in_steps(track: PaneTrack, step: int = 2000) -> Iterator[CastEvent]:
    """Every event of a pane, read a few thousand at a time: a pane can be huge."""
    while track.position < track.event_count:
        last = min(track.position + step, track.event_count) - 1
        yield from track.read_until(track.time_of(last))


def _stopped_by_someone_else(pid: int | None) -> bool:
    return pid is not None and state_of(pid) == "T"


def _caught_up(screen: PaneScreen) -> PaneScreen:
    screen.catch_up()
    return screen


class LiveView:
    """A MultiPaneView on a terminal, driven by a live Session (session.View).

    It is a party of the session's loop: the terminal's keys, SIGWINCH and
    frames. When the session is over the view stays on the final screen
    until the user quits, unless `exit_at_end` (or the user already asked
    to quit, or a signal did)."""

    def __init__(self, terminal: Terminal, view: MultiPaneView, session: Session,
                 recording_label: str, exit_at_end: bool = False):
        self.terminal = terminal
        self.view = view
        self.session = session
        self.exit_at_end = exit_at_end
        self.loop: Loop | None = None
        self._quitting = False  # q or a signal: leave as soon as the session is over
        self._frozen: set[int] = set()  # panes caught up to the pause marker
        self.view.status_left = f"● REC {recording_label}"
        self._recording_label = recording_label
        self.view.reply = self._reply
        self.view.archive = self._archive
        self.view.recorded = self._recorded
        self.view.rebuild = self._rebuild
        self._last_frame = -1.0
        self._frame_interval = FRAME_INTERVAL
        self._last_hidden_catch_up = 0.0
        self._clock_second = -1
        self._dirty = True
        self._emulation_left = EMULATION_PER_TURN
        self._emulated = False  # screens caught up since the last frame, not drawn yet
        self._backlog = False  # a shown pane has output queued
        self._typing_into: int | None = None  # input mode: the pane whose program gets keys
        self._last_repaint = 0.0  # a whole-screen repaint (foreign output on the terminal)
        for index, spec in enumerate(session.specs):
            view.add_pane(index, spec.command, 80, 24)
        view.relayout()

    # -- the loop

    def join(self, loop: Loop) -> None:
        self.loop = loop
        loop.watch(self.terminal.fileno(), self.on_input)
        loop.on_signal(self._on_signal)
        loop.join(self)
        self.session.on_done = self.session_over

    def advance(self, now: float) -> None:
        # The session reads its time origin when it starts, after this view was made.
        self.view.started_unix = self.session.recording.session.started_unix
        self.tick(now)

    def session_over(self, code: int) -> None:
        """Every pane ended: quit, or stay on the final screen until `q`."""
        # A job given back to its terminal writes there again: the view must go.
        if self.exit_at_end or self._quitting or self.session.handed_back:
            self._stop(code)
            return
        self.view.ended = True
        self.view.fixed_screens = True  # the final screens keep the size they ended at
        for pane, live in zip(self.view.panes, self.session.panes):
            pane.recorded_size = (live.record.cols, live.record.rows)
        self._update_status()
        self._dirty = True

    def _stop(self, code: int) -> None:
        if self.loop is not None:
            self.loop.stop(code)

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGWINCH:
            self.on_resize()
        elif signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._quitting = True  # the session ends itself on these (request_end)
            if self.session.over:
                self._stop(128 + signum)

    # -- session.View

    def pane_size(self, index: int, count: int) -> tuple[int, int]:
        """The pty size a new pane gets, from where the layout puts it."""
        screen = self.view.panes[index].screen
        return self.view.pane_sizes().get(index, (screen.cols, screen.rows))

    def on_event(self, event: Event) -> None:
        self.view.apply(event)
        if event.kind == OUTPUT:
            screen = self.view.panes[event.pane].screen
            self._backlog = self._backlog or screen.pending > BACKLOG_BIG
            if screen.wants_reply:
                self._catch_up(screen)  # a program waiting for its answer must not wait a frame
        elif event.kind == STATE:
            pane = self.session.panes[event.pane]
            self.view.set_state(event.pane, event.data)
            self.view.panes[event.pane].command = pane.record.command_run
            if event.pane == self._typing_into and self.session.can_type_into(event.pane):
                self._carry_out(self.view.leave_typing())  # its program ended
            self._update_status()
        self._dirty = True

    def on_recording_stopped(self, line: str) -> None:
        """A write failed (full disk): say so at once, and for as long as it lasts."""
        self.view.message = line
        self._update_status()
        self._dirty = True

    def on_input(self) -> None:
        try:
            keys = self.terminal.pending_keystrokes()
        except TerminalGone:
            if self.loop is not None:
                self.loop.unwatch(self.terminal.fileno())
            self._on_signal(signal.SIGHUP)  # as if the terminal hung up
            self.session.request_end(signal.SIGHUP)
            return
        typed: list[str] = []  # input mode: keys as the terminal sent them, in one piece
        for name, raw in keys:
            if self.view.typing is not None:
                typed.append(raw)
                continue
            self._carry_out(self.view.handle_key(name))
        if typed:
            screen = self.view.panes[self.view.typing].screen  # type: ignore[index]
            self._catch_up(screen)  # has its program asked for bracketed paste?
            for action in self.view.handle_typed("".join(typed)):
                self._carry_out(action)
        # Keys must show at once, not at the next frame slot: `p` is felt instantly.
        self._draw()

    def _carry_out(self, action: Action | None) -> None:
        self._dirty = True
        if action is None:
            return
        command = getattr(self, f"_do_{action.name}", None)
        if command is not None:
            command(action.arg)
        self._update_status()

    def on_resize(self) -> None:
        cols, rows = self.terminal.size()
        self.view.resize(cols, rows)
        self._apply_pane_sizes()
        self.terminal.forget_screen()
        self._draw()

    def next_deadline(self) -> float | None:
        if self.view.search_job is not None:
            return self.session.clock()  # a search under way: its next slice at once
        if self._dirty:
            frame = self._last_frame + self._frame_interval
            return min(frame, self.session.clock() + BACKLOG_PAUSE) if self._backlog else frame
        if self.session.foreign_output and not self.session.over:
            return self._last_repaint + FOREIGN_REPAINT
        if self.session.over:
            return None  # the final screen: nothing changes until a key
        # The status line's clock ticks once a second; nothing else is scheduled.
        return self._t0() + self._clock_second + 1

    def tick(self, now: float) -> None:
        if self.view.search_job is not None:
            self.view.search_step()
            if self.view.search_job is None:
                self._apply_pane_sizes()  # a match in a hidden pane brings it on screen
            self._dirty = True
        if self.session.foreign_output and now >= self._last_repaint + FOREIGN_REPAINT:
            # The job writes to this terminal too: repaint every row, so the
            # view's own rows come back over what it wrote.
            self._last_repaint = now
            self.terminal.forget_screen()
            self.view.chrome_dirty = True
            self._render()
        second = int(now - self._t0())
        if second != self._clock_second:
            self._clock_second = second
            self._update_status()
            self._dirty = True
        if now - self._last_hidden_catch_up >= HIDDEN_CATCH_UP:
            self._last_hidden_catch_up = now
            shown = set(self.view.arrangement())
            for pane in self.view.panes:
                if pane.index not in shown:
                    self._catch_up(pane.screen)
        frame_due = self._dirty and now >= self._last_frame + self._frame_interval
        if frame_due and self._emulated:
            # Output right after the last frame means it keeps coming: slow down.
            sustained = now - self._last_frame < 2 * BUSY_FRAME_INTERVAL
            self._frame_interval = BUSY_FRAME_INTERVAL if sustained else FRAME_INTERVAL
            self._render()
        elif frame_due or self._backlog:
            # This turn emulates, a later one draws: the ptys are read in
            # between, so a turn costs one of the two, never both.
            self._emulate_shown()
        self._emulation_left = EMULATION_PER_TURN  # the loop goes round: read first

    # -- the session's commands (view/keymap.py names them)

    def _do_quit(self, arg: str) -> None:
        self._quitting = True
        if self.session.over:
            self._stop(self.session.exit_code())
        self.session.request_end()

    def _do_pause(self, arg: str) -> None:
        self.session.pause()
        self.view.paused = self.session.paused
        if self.session.paused:
            self._freeze()

    def _do_resume(self, arg: str) -> None:
        self.session.resume()
        self.view.paused = False
        self.view.back_to_live()

    def _do_mark(self, arg: str) -> None:
        self.session.mark(f"user:{arg}")

    def _do_type_in(self, arg: str) -> None:
        index = int(arg)
        why_not = self.session.can_type_into(index)
        if why_not is not None:
            self.view.message = f"pane {index}: cannot type into it: {why_not}"
            return
        self._typing_into = index
        self.view.start_typing(index)
        self.terminal.typing(True)

    def _do_send(self, arg: str) -> None:
        if self._typing_into is not None:
            self.session.send_input(self._typing_into, arg)

    def _do_leave_input(self, arg: str) -> None:
        self._typing_into = None
        self.terminal.typing(False)

    def _do_search(self, arg: str) -> None:
        self.view.run_search(arg)
        self._apply_pane_sizes()  # a match in a hidden pane brings it on screen


    def _do_resize(self, arg: str) -> None:
        self._apply_pane_sizes()

    def _do_redraw(self, arg: str) -> None:
        self.terminal.forget_screen()

    # -- internals

    def _freeze(self) -> None:
        """Paused: the panes on screen show everything recorded up to the pause
        marker (the session drained the ptys before writing it); hidden ones
        catch up when they are shown."""
        self._frozen = set()
        for index in self.view.arrangement():
            self._catch_up_frozen(index)

    def _catch_up_frozen(self, index: int) -> None:
        pane = self.view.panes[index]
        if pane.screen.catch_up():
            pane.dirty = True
        self._frozen.add(index)

    def _t0(self) -> float:
        return self.session.clock() - self.session.now()

    def _archive(self, index: int, depth: int | None) -> PaneScreen | None:
        """The pane's screen rebuilt from its recording: with `depth` lines of
        history, or (None) the session's start, as much as the scrollback holds."""
        shown = self.view.panes[index].shown
        screen = PaneScreen(shown.cols, shown.rows, depth or self.view.history)
        try:
            track = PaneTrack(self.session.recording.directory / f"pane-{index}.cast")
        except RecordingError:
            return None
        room = self.view.history - 2 * shown.rows
        try:
            for event in _events_in_steps(track):
                if event.code != "o":
                    continue
                if depth is not None:
                    screen.feed(event.data, event.t)  # what won't fit is skipped below
                    continue
                # From the start: stop before the first line would fall off the top.
                for line in event.data.splitlines(keepends=True):
                    if screen.history_used >= room:
                        return _caught_up(screen)
                    screen.feed(line, event.t)
                    screen.catch_up(skip=False)
        except RecordingError:
            return None
        finally:
            track.close()
        if depth is not None:
            screen.catch_up_keeping(depth + screen.rows)
        return _caught_up(screen)

    def _rebuild(self, index: int, cols: int, rows: int) -> PaneScreen | None:
        """The pane's screen at cols x rows, fed the end of its recording: its
        text wraps to the new size as if it had been printed there (a program
        that laid its output out for the old size, as top does, keeps that
        layout until it redraws). The recording holds every event the view was
        given (it is written first), so nothing is lost or shown twice. None
        when there is no whole recording to read (a full disk stopped it)."""
        if self.session.recording.stopped:
            return None
        path = self.session.recording.directory / f"pane-{index}.cast"
        try:
            events, before = read_cast_tail(path, REWRAP_BYTES, codes=(OUTPUT,))
        except RecordingError:
            return None
        screen = PaneScreen(cols, rows, self.view.history)
        # Output before the stretch read is not on this screen: scrolling up
        # to it rebuilds from the recording, as past a flood's gap.
        screen.skipped += before
        for event in events:
            screen.feed(event.data, event.t)
        screen.catch_up_keeping(min(REWRAP_LINES, self.view.history) + rows)
        return screen

    def _recorded(self, index: int, pattern: re.Pattern[str], backwards: bool,
                  bound: int | None, held: Callable[[float, str], bool]) -> PaneTextSearch:
        """The pane's recorded text, searched a slice at a time past what the
        view holds; its file is read as it is written (a torn last line is
        ignored), so a search sees what the session recorded up to then."""
        path = self.session.recording.directory / f"pane-{index}.cast"
        shown = self.view.panes[index].screen
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        return PaneTextSearch(read_cast(path, codes=(OUTPUT,)), pattern, backwards, bound, held,
                              (shown.cols, shown.rows), self.view.history, size)

    def _reply(self, index: int, text: str) -> None:
        self.session.reply(index, text)

    def _apply_pane_sizes(self) -> None:
        for index, (cols, rows) in self.view.pane_sizes().items():
            if index < len(self.session.panes):
                self.session.resize_pane(index, cols, rows)

    def _update_status(self) -> None:
        over = self.session.over
        elapsed = int(self.session.recording.session.duration or 0) if over \
            else int(self.session.now())
        self.view.clock_text = f"{elapsed // 3600:02d}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}"
        if self.session.panes:
            main = self.session.main
            state = main.state()
            if state == "running" and _stopped_by_someone_else(main.pid):
                state = "stopped (by a signal, not by autotrace)"
            self.view.status_right = (f"session over, main: {state}; q quits" if over
                                      else f"main: {state} (pid {main.pid})")
            if self.session.foreign_output and not over:
                # Its output is on this terminal, not in pane 0 (short: 80 columns).
                self.view.status_right += f", not moved: {self.session.foreign_output}"
        if self.session.recording.stopped:  # a full disk: the panes go on, unrecorded
            self.view.status_left = (f"■ NOT RECORDING ({self.session.recording.stopped}) "
                                     f"{self._recording_label}")
        self.view.paused = self.session.paused
        self.view.chrome_dirty = True

    def _catch_up(self, screen: PaneScreen, share: float | None = None) -> bool:
        """Emulate what `screen` has queued, within `share` seconds and what is
        left of this turn's emulation time; True if its live screen changed."""
        seconds = self._emulation_left if share is None else min(share, self._emulation_left)
        if seconds <= 0:
            return False
        started = self.session.clock()
        changed = screen.catch_up(seconds=seconds)
        self._emulation_left -= self.session.clock() - started
        return changed

    def _draw(self) -> None:
        self._emulate_shown()
        self._render()

    def _emulate_shown(self) -> None:
        # While paused the view is frozen: what arrives is recorded, shown on `c`.
        if self.session.paused:
            # Paused: the screens on view show everything up to the pause marker
            # (caught up once, at the pause); one cycled in catches up when shown.
            for index in self.view.arrangement():
                if index not in self._frozen:
                    self._catch_up_frozen(index)
        shown = [] if self.session.paused else self.view.arrangement()
        # Each pane gets its share of the turn's emulation time, so a flood
        # never starves the others; the smallest backlogs go first, and what
        # they leave over goes to the bigger ones.
        waiting = sorted((self.view.panes[i] for i in shown if self.view.panes[i].screen.pending),
                         key=lambda pane: pane.screen.pending)
        for count, pane in enumerate(waiting):
            if self._catch_up(pane.screen, self._emulation_left / (len(waiting) - count)):
                pane.dirty = True
        self._emulated = True
        self._backlog = any(self.view.panes[index].screen.pending > BACKLOG_BIG
                            for index in shown)

    def _render(self) -> None:
        self.terminal.draw(self.view.frame())
        self.view.chrome_dirty = False
        self._last_frame = self.session.clock()
        self._emulated = False
        # A backlog left queued is drawn in the next frames (while paused, on `c`).
        shown = [] if self.session.paused else self.view.arrangement()
        self._dirty = any(self.view.panes[index].screen.pending for index in shown)
