"""Replay: a recording played into the same multi-pane view as a live session.

The source is the pane files (tracks.PaneTrack), the time is a ReplayClock.
Seeking restores the nearest screen snapshot before the target (snapshots
are kept as playback goes) or, when there is none near, rebuilds the screens
from a bounded stretch of output before it, then reads forward to the
target. Any read of more than LOOKBACK_MAX bytes (a flood, a long jump) is
such a rebuild too, so memory stays bounded whatever the recording's size.
"""

from __future__ import annotations

import bisect
import gc
import heapq
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from curtsies.formatstring import FmtStr
from curtsies.formatstringarray import FSArray

from autotrace.events import Event
from autotrace.export.text import TimelineLine, describe_end, pane_lines
from autotrace.format.asciicast import CastEvent
from autotrace.format.errors import RecordingError
from autotrace.format.reader import Recording
from autotrace.format.tracks import PaneTrack
from autotrace.replay.clock import Clock, Marker, ReplayClock
from autotrace.view.multipane import Action, MultiPaneView
from autotrace.view.screen import PaneScreen
from autotrace.view.search import pane_order

SEEK_STEP = 5.0  # seconds, left/right arrows
SNAPSHOT_EVERY = 10.0  # recorded seconds between snapshots during playback
MAX_SNAPSHOTS = 64
# Output re-read per pane when a seek has no snapshot near: at least this
# much, at most LOOKBACK_MAX (see Player._rebuild_pane).
LOOKBACK_BYTES = 16 * 1024
LOOKBACK_MAX = 1 << 20
# Home and clear the whole screen: nothing printed before shows any more.
_FULL_CLEAR = re.compile(r"\x1b\[(?:1;1)?H\x1b\[[02]?J|\x1b\[2J\x1b\[(?:1;1)?H")
FRAME_INTERVAL = 1 / 20

class IdleMap:
    """Recorded time <-> replay time when quiet gaps are capped (--idle-limit).

    A gap longer than the limit keeps its first `limit` seconds; the rest is
    cut, and everything after it moves earlier by the time cut so far.
    """

    def __init__(self, times: Iterable[float], limit: float | None):
        self._gap_ends: list[float] = []  # recorded time where a cut gap ends
        self._removed: list[float] = []  # seconds cut by that gap and every one before
        self._replay_ends: list[float] = []  # where each cut gap ends, in replay time
        if limit is None:
            return
        previous, removed = 0.0, 0.0
        for t in times:
            if t - previous > limit:
                removed += t - previous - limit
                self._gap_ends.append(t)
                self._removed.append(removed)
                self._replay_ends.append(t - removed)
            previous = t

    def to_replay(self, recorded: float) -> float:
        i = bisect.bisect_right(self._gap_ends, recorded)
        removed = self._removed[i - 1] if i else 0.0
        if i < len(self._gap_ends):
            # Inside the cut part of the next gap, replay time stands still.
            cut_starts = self._gap_ends[i] - (self._removed[i] - removed)
            recorded = min(recorded, cut_starts)
        return recorded - removed

    def to_recorded(self, replay: float) -> float:
        i = bisect.bisect_right(self._replay_ends, replay)
        return replay + (self._removed[i - 1] if i else 0.0)


@dataclass
class Snapshot:
    t: float  # recorded time
    screens: list[Any]
    positions: list[int]


@dataclass
class Player:
    """Feeds a recording into a MultiPaneView at the clock's pace.

    `real_clock` is what the ReplayClock follows (injected by tests and
    benchmarks); `lookback_bytes` is how much of each pane file a seek with
    no snapshot near re-reads to rebuild the screens.
    """

    recording: Recording
    view: MultiPaneView
    idle_limit: float | None = None
    speed: float = 1.0
    exit_at_end: bool = False
    real_clock: Clock = time.monotonic
    lookback_bytes: int = LOOKBACK_BYTES
    clock: ReplayClock = field(init=False)
    tracks: list[PaneTrack] = field(default_factory=list, init=False)
    snapshots: list[Snapshot] = field(default_factory=list, init=False)
    recorded_now: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.tracks = []
        try:
            for i in range(len(self.recording.panes)):
                self.tracks.append(PaneTrack(self.recording.pane_path(i)))
        except RecordingError:
            self.close()
            raise
        times = heapq.merge(*(t.iter_times() for t in self.tracks)) \
            if self.idle_limit is not None else ()
        self.idle = IdleMap(times, self.idle_limit)
        recorded_end = max([t.duration for t in self.tracks], default=0.0)
        if self.idle_limit is None:
            # The last pane may have gone quiet well before the session ended.
            duration = self.recording.manifest.get("duration")
            if isinstance(duration, (int, float)):
                recorded_end = max(recorded_end, float(duration))
        self.recorded_end = recorded_end
        markers = [Marker(self.idle.to_replay(t), label)
                   for t, label in (self.tracks[0].markers if self.tracks else [])]
        self.clock = ReplayClock(self.idle.to_replay(recorded_end), markers,
                                 clock=self.real_clock, speed=self.speed)
        for i, pane in enumerate(self.recording.panes):
            cols, rows = self.tracks[i].size_at(0.0)
            self.view.add_pane(i, str(pane.get("command_run") or pane.get("command")), cols, rows)
            self.view.panes[i].recorded_size = (cols, rows)
        self.view.fixed_screens = True
        self.view.rebuild = self._rebuilt_now
        self.view.replay = True  # replay's keys, help and footer (view/keymap.py)
        started = self.recording.manifest.get("started_unix")
        if isinstance(started, (int, float)):
            self.view.started_unix = float(started)
        self._update_states()

    # -- time

    def advance(self) -> bool:
        """Feed everything due by the clock; True if anything changed."""
        target = self.recorded_end if self.clock.at_end else \
            self.idle.to_recorded(self.clock.position)
        return self._read_to(target)

    def play_to(self, recorded_t: float) -> bool:
        """Read forward to a recorded time, as playing would (an export steps
        through a recording this way); True if anything changed."""
        return self._read_to(max(recorded_t, self.recorded_now))

    def _read_to(self, target: float) -> bool:
        changed = False
        for index, track in enumerate(self.tracks):
            stop = track.count_until(target)
            pane = self.view.panes[index]
            pane.recorded_size = track.size_at(target)
            if track.bytes_between(track.position, stop) > LOOKBACK_MAX \
                    or self.view.screen_size(index) != (pane.screen.cols, pane.screen.rows):
                # A flood (or a long jump): what is on screen at `target` only
                # needs the output just before it, and memory stays bounded.
                # A resize: the live view re-wrapped the pane's text to its
                # new size from the recording (MultiPaneView.rebuild), so
                # the replay does too.
                self._rebuild_pane(index, target)
                changed = True
                continue
            for event in track.read_until(target):
                changed = True
                self._apply(index, event.code, event.data, event.t)
        moved = target != self.recorded_now
        self.recorded_now = target
        if moved:
            self._update_states()
        if changed and self._snapshot_due(target):
            self._take_snapshot()
        return changed

    def _apply(self, index: int, code: str, data: str, t: float) -> None:
        # A recorded event with its pane is the live session's event type.
        self.view.apply(Event(t, index, code, data))

    def _update_states(self) -> None:
        for index, pane in enumerate(self.recording.panes):
            start, end = pane.get("start"), pane.get("end")
            if isinstance(end, (int, float)) and self.recorded_now >= end:
                state = describe_end(pane)
            elif isinstance(start, (int, float)) and self.recorded_now < start:
                state = "not started"
            else:
                state = "running"
            self.view.set_state(index, state)

    # -- seeking

    def seek(self, replay_t: float) -> None:
        """Show the moment `replay_t`, before or after where we are."""
        # A seek allocates a bounded burst (fresh screens, a stretch of events):
        # the cyclic collector would walk every object of the process in the
        # middle of it (a full collection measured as half a slow seek), for
        # nothing it could free. It runs after, when the frame is out.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._seek(replay_t)
        finally:
            if collecting:
                gc.enable()

    def _seek(self, replay_t: float) -> None:
        self.clock.seek(replay_t)
        target = self.idle.to_recorded(self.clock.position)
        if not self.recorded_now <= target <= self.recorded_now + SNAPSHOT_EVERY:
            if self._snapshot_due(self.recorded_now):
                self._take_snapshot()  # so coming back here is quick
            snap = self._snapshot_before(target)
            if snap is not None and snap.t >= target - SNAPSHOT_EVERY * 3:
                self._restore(snap)
                self._rebuild_busy_panes(target)
            else:
                self._rebuild_before(target)
        self._read_to(target)
        self._update_states()
        self.view.back_to_live()

    def _snapshot_before(self, t: float) -> Snapshot | None:
        # (bisect's key= needs Python 3.10; there are at most MAX_SNAPSHOTS.)
        i = bisect.bisect_right([s.t for s in self.snapshots], t) - 1
        return self.snapshots[i] if i >= 0 else None

    def _snapshot_due(self, t: float) -> bool:
        """No snapshot in the SNAPSHOT_EVERY seconds up to `t` (and not at 0: the
        start is rebuilt from nothing anyway)."""
        if t < SNAPSHOT_EVERY:
            return False
        before = self._snapshot_before(t)
        return before is None or t - before.t >= SNAPSHOT_EVERY

    def _take_snapshot(self) -> None:
        t = self.recorded_now
        snap = Snapshot(t, [p.screen.snapshot() for p in self.view.panes],
                        [track.position for track in self.tracks])
        self.snapshots.insert(bisect.bisect_right([s.t for s in self.snapshots], t), snap)
        if len(self.snapshots) > MAX_SNAPSHOTS:
            self._forget_one_snapshot()

    def _forget_one_snapshot(self) -> None:
        """Drop the snapshot whose neighbours are closest: coverage stays even."""
        times = [s.t for s in self.snapshots]
        spans = [times[i + 1] - times[i - 1] for i in range(1, len(times) - 1)]
        del self.snapshots[1 + spans.index(min(spans))]

    def _restore(self, snap: Snapshot) -> None:
        for pane, screen in zip(self.view.panes, snap.screens):
            pane.screen.restore(screen)
            pane.dirty = True
        for track, position in zip(self.tracks, snap.positions):
            track.seek_event(position)
        self.recorded_now = snap.t

    def _rebuild_busy_panes(self, target: float) -> None:
        """After a restore: a pane that printed more from its snapshot to
        `target` than a rebuild reads is rebuilt instead (the same screen,
        less to emulate)."""
        for index, track in enumerate(self.tracks):
            stop = track.count_until(target)
            if track.offset_of(stop) - track.offset_of(track.position) > self.lookback_bytes:
                self._rebuild_pane(index, target)

    def _rebuild_before(self, target: float) -> None:
        """Fresh screens for every pane, fed from a stretch of output before `target`."""
        for index in range(len(self.tracks)):
            self._rebuild_pane(index, target)
        self.recorded_now = target

    def _rebuild_pane(self, index: int, target: float) -> None:
        """A fresh screen for pane `index` at `target`, at the size the view
        wants it (the recorded one, unless zoomed: MultiPaneView.screen_size)."""
        pane = self.view.panes[index]
        pane.recorded_size = self.tracks[index].size_at(target)
        pane.screen = self._rebuilt(index, target, self.view.screen_size(index))
        pane.dirty = True

    def _rebuilt_now(self, index: int, cols: int, rows: int) -> PaneScreen:
        """The pane's screen at the moment shown, re-wrapped to cols x rows (the
        view's rebuild: a zoom, wrap off); where the tracks are stays put."""
        track = self.tracks[index]
        position = track.position
        screen = self._rebuilt(index, self.recorded_now, (cols, rows))
        if track.position != position:
            track.seek_event(position)
        return screen

    def _rebuilt(self, index: int, target: float, size: tuple[int, int]) -> PaneScreen:
        """A fresh screen fed from a bounded stretch of output before `target`.

        The stretch starts `lookback_bytes` back and grows until it holds
        enough to be exact (two screenfuls of lines, or a full clear and
        redraw, what tracers and probes print), or reaches the pane's start,
        or LOOKBACK_MAX. Only what follows the last full clear is emulated.
        A mode set before the stretch (an alternate screen) is not seen.
        """
        track = self.tracks[index]
        stop = track.count_until(target)
        lookback = self.lookback_bytes
        while True:
            first = track.rewind_bytes(stop, lookback)
            track.seek_event(first)
            events = track.read_until(target)
            if first == 0 or lookback >= LOOKBACK_MAX or _enough_to_rebuild(events, size[1]):
                break
            lookback *= 4
        events, _ = _from_last_clear(events)
        # All of it at one size, as the live view re-wrapped it on each
        # resize (its resizes are not replayed); markers passed are no news.
        screen = PaneScreen(*size, self.view.history)
        for event in events:
            if event.code == "o":
                screen.feed(event.data, event.t)
        return screen

    # -- searching

    def start_search(self, pattern: re.Pattern[str], backwards: bool, wrap: bool) -> None:
        """Look for the next (or previous) line matching `pattern`, the focused pane
        first: a job the loop steps (MultiPaneView.search_step)."""
        order = pane_order(len(self.tracks), self.view.focus, not backwards)
        self.view.search_job = RecordingSearch(self, pattern, order, backwards,
                                               self.recorded_now, wrap)
        self.view.search_step()

    def found(self, job: RecordingSearch) -> None:
        """A search is over: show the moment of its match."""
        text, view = job.pattern.pattern, self.view
        if job.found is None:
            view.message = f"/{text}: no {'earlier' if job.backwards else 'later'} match"
            return
        index, t = job.found
        view.show_pane(index)
        self.seek(self.idle.to_replay(t))
        where = " (from the start)" if job.wrapped else ""
        view.message = f"/{text}: pane {index} at {self.clock.position:.1f} s{where}"

    # -- keys

    def handle_key(self, key: str) -> Action | None:
        """A key, through the view's keymap; replay's own commands are done
        here, the rest (quit, redraw, resize) go on to the loop."""
        action = self.view.handle_key(key)
        if action is None:
            return None
        if action.name == "search":
            self._search(action.arg, backwards=False, fresh=True)
            return None
        if action.name == "time":
            self._go_to(action.arg)
            return None
        if action.name == "moment":  # a finding chosen: its recorded time, held there
            self.clock.pause()
            self.seek(self.idle.to_replay(float(action.arg)))
            self.view.paused = True
            return None
        command = getattr(self, f"_do_{action.name}", None)
        if command is None:
            return action
        command()
        self.view.paused = not self.clock.playing
        self.view.chrome_dirty = True
        return None

    # Replay's commands (view/keymap.py names them).

    def _do_play_pause(self) -> None:
        self.clock.toggle()

    def _do_play(self) -> None:
        self.clock.play()

    def _do_faster(self) -> None:
        self.view.message = f"speed x{self.clock.faster():g}"

    def _do_slower(self) -> None:
        self.view.message = f"speed x{self.clock.slower():g}"

    def _do_seek_back(self) -> None:
        self.seek(self.clock.position - SEEK_STEP)

    def _do_seek_forward(self) -> None:
        self.seek(self.clock.position + SEEK_STEP)

    def _do_marker_previous(self) -> None:
        self._to_marker(self.clock.previous_marker(), "no earlier marker")

    def _do_marker_next(self) -> None:
        self._to_marker(self.clock.next_marker(), "no later marker")

    def _to_marker(self, marker: Marker | None, none_text: str) -> None:
        if marker is None:
            self.view.message = none_text
            return
        self.seek(marker.t)
        self.view.message = f"marker: {marker.label}"

    def _do_start(self) -> None:
        self.seek(0.0)

    def _do_end(self) -> None:
        self.seek(self.clock.duration)

    def _do_search_again(self) -> None:
        if self.view.search is not None:
            self._search(self.view.search.pattern, backwards=False, fresh=False)

    def _do_search_reverse(self) -> None:
        if self.view.search is not None:
            self._search(self.view.search.pattern, backwards=True, fresh=False)

    def _do_mark_refused(self) -> None:
        self.view.message = "markers are added while recording (M in a live session)"

    def _search(self, text: str, backwards: bool, fresh: bool) -> None:
        try:
            pattern = re.compile(text)
        except re.error as err:
            self.view.message = f"bad regex: {err}"
            return
        self.view.search = pattern
        self.view.chrome_dirty = True
        for pane in self.view.panes:
            pane.dirty = True  # matches are drawn inverted
        if fresh:
            self.clock.pause()
            self.view.paused = True
        self.start_search(pattern, backwards, wrap=fresh)

    def _go_to(self, text: str) -> None:
        t = parse_time(text)
        if t is None:
            self.view.message = f"not a time: {text} (e.g. 83.5 or 1:23.5)"
            return
        self.seek(t)
        self.view.message = f"at {self.clock.position:.1f} s"

    # -- status

    def status(self) -> None:
        clock, view = self.clock, self.view
        state = "END" if clock.at_end else ("PLAY" if clock.playing else "PAUSED")
        view.badge = state
        view.paused = not clock.playing  # so j/k/f/b scroll while paused
        view.clock_text = f"{_mmss(clock.position)} / {_mmss(clock.duration)}  x{clock.speed:g}"
        moment = len(view.moment_text()) + 2 if view.shows_moment() else 0
        view.status_right = timeline_bar(clock.position, clock.duration,
                                         [m.t for m in clock.markers],
                                         max(10, view.cols // 2 - 32 - moment))
        view.chrome_dirty = True

    def frame(self) -> FSArray | list[FmtStr]:
        """The view drawn as it is now: status, then the shown panes caught up."""
        self.status()
        for index in self.view.arrangement():
            self.view.panes[index].screen.catch_up()
        return self.view.frame()

    def close(self) -> None:
        for track in self.tracks:
            track.close()


def _enough_to_rebuild(events: list[CastEvent], rows: int) -> bool:
    """Two screenfuls of lines, or a full clear: the screen no longer
    depends on what came before."""
    text = "".join(event.data for event in events if event.code == "o")
    return text.count("\n") >= 2 * rows or _FULL_CLEAR.search(text) is not None


def _from_last_clear(events: list[CastEvent]) -> tuple[list[CastEvent], float | None]:
    """The events from the last full clear on (that one cut to start at the
    clear), and its time; all of them and None when there is no clear."""
    for i in range(len(events) - 1, -1, -1):
        event = events[i]
        if event.code != "o" or "\x1b[" not in event.data:
            continue  # (a substring test is far cheaper than the regex, per event)
        clears = list(_FULL_CLEAR.finditer(event.data))
        if clears:
            cut = CastEvent(event.t, "o", event.data[clears[-1].start():])
            return [cut, *events[i + 1:]], event.t
    return events, None


def _mmss(seconds: float) -> str:
    """MM:SS.t, tenths cut (not rounded): the clock never shows a time not yet reached."""
    tenths = int(seconds * 10 + 1e-6)
    return f"{tenths // 600:02d}:{tenths // 10 % 60:02d}.{tenths % 10}"


_TIME = re.compile(r"(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d*)?|\.\d+)")


def parse_time(text: str) -> float | None:
    """Seconds from `83.5`, `1:23.5` or `1:01:23.5`; None if it is none of those."""
    match = _TIME.fullmatch(text.strip())
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds)


class RecordingSearch:
    """A replay's search through the pane files' text lines, the panes in
    `order`, a slice of lines per step; on a match, the player seeks there.

    Searching later (`backwards` False) takes a pane's first match after
    `after`; earlier, its last before. With `wrap`, a search that finds
    nothing later starts over from the recording's start."""

    def __init__(self, player: Player, pattern: re.Pattern[str], order: list[int],
                 backwards: bool, after: float, wrap: bool):
        self.player, self.pattern, self.backwards = player, pattern, backwards
        self.order, self._all = list(order), list(order)
        self.after, self.wrap, self.wrapped = after, wrap, False
        self.found: tuple[int, float] | None = None
        self._lines: Iterator[TimelineLine] | None = None
        self._best: float | None = None
        self._t = 0.0

    def step(self, budget: int) -> bool:
        while budget > 0:
            if not self.order:
                if not (self.wrap and not self.backwards):
                    break
                self.order, self.after = list(self._all), -1.0
                self.wrap, self.wrapped = False, True
            index = self.order[0]
            if self._lines is None:
                self._lines = pane_lines(self.player.recording, index)
            for line in self._lines:
                budget -= 1
                self._t = line.t
                if self.backwards and line.t >= self.after - 1e-6:
                    break  # times never decrease: nothing earlier follows
                if self.pattern.search(line.text):
                    if self.backwards:
                        self._best = line.t
                    elif line.t > self.after + 1e-6:
                        self._best = line.t
                        break
                if budget <= 0:
                    return False
            if self._best is not None:
                self.found = (index, self._best)
                break
            self.order.pop(0)
            self._lines, self._t = None, 0.0
        if budget <= 0 and not self.found and (self.order or self.wrap):
            return False
        self.player.found(self)
        return True

    def progress(self) -> float:
        end = max(self.player.recorded_end, 1e-9)
        done = len(self._all) - len(self.order) + min(1.0, self._t / end)
        return min(1.0, done / max(1, len(self._all)))


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
