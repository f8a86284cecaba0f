"""LiveView: the multi-pane view driven by a running live Session."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

import psutil

from autotrace.events import MARKER, OUTPUT, STATE, Event
from autotrace.format.recording import RecordingError
from autotrace.format.tracks import PaneTrack, TrackEvent
from autotrace.live.session import Session
from autotrace.term.terminal import Terminal, TerminalGone
from autotrace.view.multipane import MultiPaneView
from autotrace.view.screen import PaneScreen

# Output is drawn at most 10 times a second, and 4 while it keeps coming:
# enough to follow a log, and a frame of four busy panes costs a few ms of
# Python (the 5% budget for four panes at 20 lines/s). Keys are drawn at once.
FRAME_INTERVAL = 1 / 10
BUSY_FRAME_INTERVAL = 1 / 4
HIDDEN_CATCH_UP = 1.0  # hidden panes' screen models catch up this often
# Emulation gets at most this much time per turn of the session's loop
# (between two ticks), for all panes together: reading every pty, and so
# the recorded times, must never wait longer (issue 8: a flooding pane held
# the others' reads up to 70 s). What is left queued is emulated in the
# next turns; the view lags, the recording does not.
EMULATION_PER_TURN = 0.01
# While a shown pane has a backlog, it is emulated on every turn, not only
# for frames, with at least this long for reading (and sleeping) in between:
# at most half the time goes to emulation.
BACKLOG_PAUSE = 0.01


def _events_in_steps(track: PaneTrack, step: int = 2000) -> Iterator[TrackEvent]:
    """Every event of a pane, read a few thousand at a time: a pane can be huge."""
    while track.position < track.event_count:
        last = min(track.position + step, track.event_count) - 1
        yield from track.read_until(track.time_of(last))


def _stopped_by_someone_else(pid: int | None) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_STOPPED
    except (psutil.Error, TypeError, ValueError):
        return False


def _caught_up(screen: PaneScreen) -> PaneScreen:
    screen.catch_up()
    return screen


class LiveView:
    """A MultiPaneView on a terminal, driven by a live Session (session.View)."""

    def __init__(self, terminal: Terminal, view: MultiPaneView, session: Session,
                 recording_label: str):
        self.terminal = terminal
        self.view = view
        self.session = session
        self.view.status_left = f"● REC {recording_label}"
        self.view.reply = self._reply
        self.view.archive = self._archive
        self._last_frame = -1.0
        self._frame_interval = FRAME_INTERVAL
        self._last_hidden_catch_up = 0.0
        self._clock_second = -1
        self._dirty = True
        self._emulation_left = EMULATION_PER_TURN
        self._emulated = False  # screens caught up since the last frame, not drawn yet
        self._backlog = False  # a shown pane has output queued
        for index, spec in enumerate(session.specs):
            view.add_pane(index, spec.command, 80, 24)
        view.relayout()

    # -- session.View

    def fileno(self) -> int:
        return self.terminal.fileno()

    def pane_size(self, index: int, count: int) -> tuple[int, int]:
        """The pty size a new pane gets, from where the layout puts it."""
        screen = self.view.panes[index].screen
        return self.view.pane_sizes().get(index, (screen.cols, screen.rows))

    def on_event(self, event: Event) -> None:
        if event.kind == OUTPUT:
            self.view.feed(event.pane, event.data, event.t)
            self._backlog = True
            screen = self.view.panes[event.pane].screen
            if screen.wants_reply:
                self._catch_up(screen)  # a program waiting for its answer must not wait a frame
        elif event.kind == STATE:
            pane = self.session.panes[event.pane]
            self.view.set_state(event.pane, event.data)
            self.view.panes[event.pane].command = pane.record.command_run
            self._update_status()
        elif event.kind == MARKER and event.data.startswith("user:"):
            self.view.message = f"marker added: {event.data[5:]}"
            self.view.chrome_dirty = True
        self._dirty = True

    def on_input(self) -> None:
        try:
            keys = self.terminal.pending_keys()
        except TerminalGone:
            self.session.request_end(signal.SIGHUP)  # as if the terminal hung up
            self.session.unwatch_view()
            return
        for key in keys:
            action = self.view.handle_key(key)
            self._dirty = True
            if action is None:
                continue
            if action.name == "quit":
                self.session.request_end()
            elif action.name == "pause":
                self.session.pause()
                self.view.paused = True
            elif action.name == "resume":
                self.session.resume()
                self.view.paused = False
                self.view.back_to_live()
            elif action.name == "mark":
                self.session.mark(f"user:{action.arg}")
            elif action.name == "search":
                self.view.run_search(action.arg)
            elif action.name == "resize":
                self._apply_pane_sizes()
            elif action.name == "redraw":
                self.terminal.forget_screen()
            self._update_status()
        # Keys must show at once, not at the next frame slot: `p` is felt instantly.
        self._draw()

    def on_resize(self) -> None:
        cols, rows = self.terminal.size()
        self.view.resize(cols, rows)
        self._apply_pane_sizes()
        self.terminal.forget_screen()
        self._draw()

    def next_deadline(self) -> float | None:
        if self._dirty:
            frame = self._last_frame + self._frame_interval
            return min(frame, self.session.clock() + BACKLOG_PAUSE) if self._backlog else frame
        # The status line's clock ticks once a second; nothing else is scheduled.
        return self._t0() + self._clock_second + 1

    def tick(self, now: float) -> None:
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

    # -- internals

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
                    screen.feed(event.data, event.t)  # the flood guard skips what won't fit
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
        return _caught_up(screen)

    def _reply(self, index: int, text: str) -> None:
        pane = self.session.panes[index] if index < len(self.session.panes) else None
        if pane is not None and pane.proc is not None and pane.status is None:
            with contextlib.suppress(OSError):
                os.write(pane.proc.fd, text.encode())

    def _apply_pane_sizes(self) -> None:
        for index, (cols, rows) in self.view.pane_sizes().items():
            if index < len(self.session.panes):
                self.session.resize_pane(index, cols, rows)

    def _update_status(self) -> None:
        elapsed = int(self.session.now())
        self.view.clock_text = f"{elapsed // 3600:02d}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}"
        if self.session.panes:
            main = self.session.main
            state = main.state()
            if state == "running" and _stopped_by_someone_else(main.pid):
                state = "stopped (by a signal, not by autotrace)"
            self.view.status_right = f"main: {state} (pid {main.pid})"
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
        self._backlog = any(self.view.panes[index].screen.pending for index in shown)

    def _render(self) -> None:
        self.terminal.draw(self.view.frame())
        self.view.chrome_dirty = False
        self._last_frame = self.session.clock()
        self._emulated = False
        # A backlog left queued is drawn in the next frames (while paused, on `c`).
        shown = [] if self.session.paused else self.view.arrangement()
        self._dirty = any(self.view.panes[index].screen.pending for index in shown)
