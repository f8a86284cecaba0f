"""Replay: a recording played into the same multi-pane view as a live session.

The source is the pane files (tracks.PaneTrack), the time is a ReplayClock.
Seeking restores the nearest screen snapshot before the target (snapshots
are kept as playback goes) or, when there is none, rebuilds the screens from
a bounded stretch of output before it, then reads forward to the target.
"""

from __future__ import annotations

import bisect
import heapq
import re
import selectors
from dataclasses import dataclass, field
from typing import Any

from autotrace.recording import Recording
from autotrace.replay import Marker, ReplayClock
from autotrace.screen import PaneScreen
from autotrace.timeline import pane_lines
from autotrace.tracks import PaneTrack
from autotrace.view import Action, MultiPaneView

SEEK_STEP = 5.0  # seconds, left/right arrows
SNAPSHOT_EVERY = 10.0  # recorded seconds between snapshots during playback
MAX_SNAPSHOTS = 64
LOOKBACK_BYTES = 1 << 20  # output re-read per pane when a seek has no snapshot
FRAME_INTERVAL = 1 / 20

HELP_REPLAY = [
    ("Space  p / c", "pause or play / continue"),
    ("+  -", "faster / slower"),
    ("Left  Right", f"seek {SEEK_STEP:g} s back / forward"),
    ("[  ]", "previous / next marker"),
    ("g  G", "start / end"),
    ("0-9  z  m  Tab", "zoom, unzoom, cycle hidden panes, focus"),
    ("/  n  N", "search the focused pane: jumps to the moment of the match"),
    ("j k f b", "when paused: scroll the focused pane"),
    ("t", "time-sync on/off"),
    ("l  r", "colours on/off, redraw"),
    ("q  Esc", "quit"),
]


class IdleMap:
    """Recorded time <-> replay time when quiet gaps are capped (--idle-limit)."""

    def __init__(self, tracks: list[PaneTrack], limit: float | None):
        self._recorded: list[float] = []  # where a capped gap ends, recorded time
        self._removed: list[float] = []  # total seconds removed up to there
        if limit is None:
            return
        previous, removed = 0.0, 0.0
        for t in heapq.merge(*(track.times for track in tracks)):
            if t - previous > limit:
                removed += t - previous - limit
                self._recorded.append(t)
                self._removed.append(removed)
            previous = t

    def _removed_at(self, recorded: float) -> float:
        i = bisect.bisect_right(self._recorded, recorded) - 1
        return self._removed[i] if i >= 0 else 0.0

    def to_replay(self, recorded: float) -> float:
        i = bisect.bisect_right(self._recorded, recorded) - 1
        if i < 0 and not self._recorded:
            return recorded
        # Inside a capped gap, time stands still at the gap's capped end.
        next_end = self._recorded[i + 1] if i + 1 < len(self._recorded) else None
        removed_before = self._removed[i] if i >= 0 else 0.0
        if next_end is not None:
            gap_removed = self._removed[i + 1] - removed_before
            gap_start = next_end - gap_removed
            if recorded > gap_start:
                return min(recorded, gap_start) - removed_before
        return recorded - removed_before

    def to_recorded(self, replay: float) -> float:
        shifted = [r - d for r, d in zip(self._recorded, self._removed)]
        i = bisect.bisect_right(shifted, replay) - 1
        return replay + (self._removed[i] if i >= 0 else 0.0)


@dataclass
class Snapshot:
    t: float  # recorded time
    screens: list[Any]
    positions: list[int]


@dataclass
class Player:
    """Feeds a recording into a MultiPaneView at the clock's pace."""

    recording: Recording
    view: MultiPaneView
    clock: ReplayClock = field(init=False)
    idle_limit: float | None = None
    speed: float = 1.0
    exit_at_end: bool = False
    tracks: list[PaneTrack] = field(default_factory=list, init=False)
    snapshots: list[Snapshot] = field(default_factory=list, init=False)
    recorded_now: float = field(default=0.0, init=False)
    last_snapshot: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.tracks = [PaneTrack(self.recording.pane_path(i))
                       for i in range(len(self.recording.panes))]
        self.idle = IdleMap(self.tracks, self.idle_limit)
        recorded_end = max([t.duration for t in self.tracks] +
                           [float(self.recording.manifest.get("duration") or 0.0)])
        if self.idle_limit is not None:
            recorded_end = max(t.duration for t in self.tracks) if self.tracks else 0.0
        markers = [Marker(self.idle.to_replay(t), label)
                   for t, label in (self.tracks[0].markers if self.tracks else [])]
        self.clock = ReplayClock(self.idle.to_replay(recorded_end), markers, speed=self.speed)
        self.recorded_end = recorded_end
        for i, pane in enumerate(self.recording.panes):
            cols, rows = self.tracks[i].size_at(0.0)
            self.view.add_pane(i, str(pane.get("command_run") or pane.get("command")), cols, rows)
        self.view.fixed_screens = True
        self._update_states()

    # -- time

    def advance(self) -> bool:
        """Feed everything due by the clock; True if anything changed."""
        target = self.idle.to_recorded(self.clock.position)
        if self.clock.at_end:
            target = self.recorded_end
        return self._read_to(target)

    def _read_to(self, target: float) -> bool:
        changed = False
        for index, track in enumerate(self.tracks):
            for event in track.read_until(target):
                changed = True
                self._apply(index, event.code, event.data, event.t)
        self.recorded_now = target
        if changed:
            self._update_states()
            if target - self.last_snapshot >= SNAPSHOT_EVERY:
                self._take_snapshot()
        return changed

    def _apply(self, index: int, code: str, data: str, t: float) -> None:
        if code == "o":
            self.view.feed(index, data, t)
        elif code == "r":
            try:
                cols, rows = (int(n) for n in data.lower().split("x"))
            except ValueError:
                return
            self.view.panes[index].screen.resize(cols, rows)
            self.view.panes[index].dirty = True
        elif code == "m" and data.startswith("user:"):
            self.view.message = f"marker: {data[5:]}"
        # Unknown event codes are ignored (recording format, reading rules).

    def _update_states(self) -> None:
        for index, pane in enumerate(self.recording.panes):
            start, end = pane.get("start"), pane.get("end")
            if isinstance(end, (int, float)) and self.recorded_now >= end:
                if pane.get("exit_signal_name"):
                    state = f"killed by {pane['exit_signal_name']}"
                else:
                    state = f"exited {pane.get('exit_status')}"
            elif isinstance(start, (int, float)) and self.recorded_now < start:
                state = "not started"
            else:
                state = "running"
            self.view.set_state(index, state)

    # -- seeking

    def seek(self, replay_t: float) -> None:
        self.clock.seek(replay_t)
        target = self.idle.to_recorded(self.clock.position)
        if target >= self.recorded_now and target - self.recorded_now <= SNAPSHOT_EVERY:
            self._read_to(target)
            return
        self._take_snapshot()
        i = bisect.bisect_right([s.t for s in self.snapshots], target) - 1
        if i >= 0 and self.snapshots[i].t >= target - SNAPSHOT_EVERY * 3:
            self._restore(self.snapshots[i])
        else:
            self._rebuild_before(target)
        self._read_to(target)
        self.view.back_to_live()

    def _take_snapshot(self) -> None:
        t = self.recorded_now
        self.last_snapshot = t
        if any(abs(s.t - t) < 1e-9 for s in self.snapshots):
            return
        snap = Snapshot(t, [p.screen.snapshot() for p in self.view.panes],
                        [track.position for track in self.tracks])
        bisect.insort(self.snapshots, snap, key=lambda s: s.t)
        if len(self.snapshots) > MAX_SNAPSHOTS:
            del self.snapshots[len(self.snapshots) // 2]  # keep the ends, thin the middle

    def _restore(self, snap: Snapshot) -> None:
        for pane, screen in zip(self.view.panes, snap.screens):
            pane.screen.restore(screen)
            pane.dirty = True
        for track, position in zip(self.tracks, snap.positions):
            track.seek_event(position)
        self.recorded_now = snap.t

    def _rebuild_before(self, target: float) -> None:
        """Fresh screens fed from a bounded stretch of output before `target`."""
        for index, track in enumerate(self.tracks):
            first = track.rewind_bytes(track.count_until(target), LOOKBACK_BYTES)
            start_t = track.times[first - 1] if first > 0 else 0.0
            cols, rows = track.size_at(start_t)
            pane = self.view.panes[index]
            pane.screen = PaneScreen(cols, rows, self.view.history)
            pane.dirty = True
            track.seek_event(first)
        self.recorded_now = 0.0

    # -- searching

    def search(self, pattern: re.Pattern[str], index: int, backwards: bool) -> bool:
        """Jump to the moment the focused pane printed the next (or previous) match."""
        now = self.recorded_now
        found: float | None = None
        for line in pane_lines(self.recording, index):
            if not pattern.search(line.text):
                continue
            if backwards and line.t < now - 1e-6:
                found = line.t
            elif not backwards and line.t > now + 1e-6:
                found = line.t
                break
        if found is None:
            return False
        self.seek(self.idle.to_replay(found))
        return True

    # -- keys

    def handle_key(self, key: str) -> Action | None:
        view = self.view
        if view.prompt is not None or view.help_open:
            action = view.handle_key(key)
            if action is not None and action.name == "search":
                self._search(action.arg, backwards=False, fresh=True)
                return None
            return action
        if key in (" ", "p"):
            self.clock.toggle()
        elif key == "c":
            self.clock.play()
        elif key in ("+", "="):
            view.message = f"speed x{self.clock.faster():g}"
        elif key == "-":
            view.message = f"speed x{self.clock.slower():g}"
        elif key == "KEY_LEFT":
            self.seek(self.clock.position - SEEK_STEP)
        elif key == "KEY_RIGHT":
            self.seek(self.clock.position + SEEK_STEP)
        elif key in ("[", "]"):
            marker = self.clock.previous_marker() if key == "[" else self.clock.next_marker()
            if marker is None:
                view.message = "no earlier marker" if key == "[" else "no later marker"
            else:
                self.seek(marker.t)
                view.message = f"marker: {marker.label}"
        elif key == "g":
            self.seek(0.0)
        elif key == "G":
            self.seek(self.clock.duration)
        elif key in ("n", "N") and view.search is not None:
            self._search(view.search.pattern, backwards=(key == "N"), fresh=False)
        elif key in ("h", "?"):
            view.help_open = True
            view.help_rows = HELP_REPLAY
        else:
            return view.handle_key(key)
        view.paused = not self.clock.playing
        view.chrome_dirty = True
        return None

    def _search(self, text: str, backwards: bool, fresh: bool) -> None:
        try:
            pattern = re.compile(text)
        except re.error as err:
            self.view.message = f"bad regex: {err}"
            return
        self.view.search = pattern
        if fresh:
            self.clock.pause()
            self.view.paused = True
        if self.search(pattern, self.view.focus, backwards):
            self.view.message = f"/{text}: at {self.clock.position:.1f} s"
            self.view.highlight_on_screen(self.view.focus)
        else:
            self.view.message = f"/{text}: no {'earlier' if backwards else 'later'} match"

    # -- status

    def status(self) -> None:
        clock, view = self.clock, self.view
        state = "END" if clock.at_end else ("PLAY" if clock.playing else "PAUSED")
        view.badge = state
        view.clock_text = f"{_mmss(clock.position)} / {_mmss(clock.duration)}  x{clock.speed:g}"
        view.status_right = timeline_bar(clock.position, clock.duration,
                                         [m.t for m in clock.markers],
                                         max(10, view.cols // 2 - 30))
        view.chrome_dirty = True

    def close(self) -> None:
        for track in self.tracks:
            track.close()


def _mmss(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def timeline_bar(position: float, duration: float, markers: list[float], width: int) -> str:
    """`[----|---*------]`: * is where we are, | are markers."""
    if width < 3:
        return ""
    inner = width - 2
    cells = ["-"] * inner

    def column(t: float) -> int:
        return min(inner - 1, int(t / duration * inner)) if duration > 0 else 0

    for t in markers:
        cells[column(t)] = "|"
    cells[column(position)] = "*"
    return "[" + "".join(cells) + "]"


def run_player(player: Player, terminal: Any) -> int:
    """The replay loop: keys, clock, frames; returns when the user quits."""
    from autotrace.signals import read_signals, signal_pipe

    view = player.view
    selector = selectors.DefaultSelector()
    with signal_pipe() as wake_fd, terminal.active():
        selector.register(wake_fd, selectors.EVENT_READ, "signals")
        selector.register(terminal.fileno(), selectors.EVENT_READ, "keys")
        view.resize(*terminal.size())
        last_second, dirty = -1, True
        while True:
            if player.advance():
                dirty = True
            second = int(player.clock.position * 4)
            if second != last_second:
                last_second, dirty = second, True
            if dirty:
                player.status()
                for index in view.arrangement():
                    view.panes[index].screen.catch_up()
                terminal.draw(view.frame())
                view.chrome_dirty = False
                dirty = False
            if player.exit_at_end and player.clock.at_end:
                return 0
            pending = [t.times[t.position] for t in player.tracks if t.position < len(t.times)]
            wait = player.clock.time_until(min(pending) if pending else None)
            wait = FRAME_INTERVAL if wait is None and player.clock.playing else wait
            if wait is not None:
                wait = max(FRAME_INTERVAL, min(wait, 0.25))
            for key, _ in selector.select(wait):
                dirty = True
                if key.data == "signals":
                    for signum in read_signals(wake_fd):
                        if signum in (1, 2, 15):  # SIGHUP, SIGINT, SIGTERM
                            return 128 + signum
                        if signum == 28:  # SIGWINCH
                            view.resize(*terminal.size())
                            terminal.forget_screen()
                    continue
                for name in terminal.pending_keys():
                    action = player.handle_key(name)
                    if action is not None and action.name == "quit":
                        return 0
                    if action is not None and action.name == "redraw":
                        terminal.forget_screen()
