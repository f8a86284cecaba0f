"""Replay as a source of events: a recording's panes merged into one stream,
and a virtual clock that says how far into it the viewer is.

DESIGN.md, One stream: live and replay feed the same view; only the source
and the clock differ. The stream is a chain of small generator transforms,
as in asciinema's player (merge -> idle limit -> speed), each testable
alone. The clock knows nothing of events; the feed knows nothing of time
passing. Drawing and screen snapshots for fast seeking live elsewhere.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Callable, NamedTuple

from autotrace.events import MARKER, Event
from autotrace.format.reader import Recording

Clock = Callable[[], float]  # real seconds, monotonic


def merge_events(recording: Recording, codes: tuple[str, ...] = ("o", "r", "m")
                 ) -> Iterator[Event]:
    """Every pane's events as one time-ordered stream. Events at the same
    time keep pane order, then file order."""
    return heapq.merge(*(recording.events(i, codes) for i in range(len(recording.panes))),
                       key=lambda event: event.t)


def limit_idle(events: Iterable[Event], limit: float | None) -> Iterator[Event]:
    """Cap every quiet gap (including the one before the first event) at
    `limit` seconds; everything after a capped gap moves earlier."""
    if limit is None:
        yield from events
        return
    previous, removed = 0.0, 0.0
    for event in events:
        gap = event.t - previous
        previous = event.t
        removed += max(0.0, gap - limit)
        yield event._replace(t=event.t - removed)


def at_speed(events: Iterable[Event], speed: float) -> Iterator[Event]:
    """Times divided by `speed` (2 plays twice as fast)."""
    if speed <= 0:
        raise ValueError(f"speed must be positive, not {speed}")
    for event in events:
        yield event._replace(t=event.t / speed)


def recorded_events(recording: Recording, idle_limit: float | None = None) -> Iterator[Event]:
    """The stream a replay plays, on the replay's own (virtual) time line."""
    return limit_idle(merge_events(recording), idle_limit)


class Marker(NamedTuple):
    t: float
    label: str  # pause, resume, user:NAME, end


def _is_session_marker(event: Event) -> bool:
    # Only the main pane's file holds session markers (recording format).
    return event.kind == MARKER and event.pane == 0


def find_markers(events: Iterable[Event]) -> list[Marker]:
    return [Marker(e.t, e.data) for e in events if _is_session_marker(e)]


class Timeline(NamedTuple):
    duration: float
    markers: list[Marker]


def scan(recording: Recording, idle_limit: float | None = None) -> Timeline:
    """Duration and markers on the replay's time line: one pass over it.

    Without an idle limit the session's recorded duration counts too (the
    last pane may have gone quiet well before the end).
    """
    duration, markers = 0.0, []
    for event in recorded_events(recording, idle_limit):
        duration = event.t
        if _is_session_marker(event):
            markers.append(Marker(event.t, event.data))
    recorded = recording.manifest.get("duration")
    if idle_limit is None and isinstance(recorded, (int, float)):
        duration = max(duration, float(recorded))
    return Timeline(duration, markers)


class EventFeed:
    """Hands out a stream's events once the virtual clock has reached them."""

    def __init__(self, events: Iterable[Event]):
        self._events = iter(events)
        self._next: Event | None = next(self._events, None)

    @property
    def next_time(self) -> float | None:
        """When the next event is due; None when the stream is over."""
        return None if self._next is None else self._next.t

    def due(self, position: float) -> list[Event]:
        """All events up to and including `position`, in order."""
        out = []
        while self._next is not None and self._next.t <= position:
            out.append(self._next)
            self._next = next(self._events, None)
        return out


class ReplayClock:
    """Virtual time over [0, duration], driven by an injected real clock.

    Position is kept as an anchor (virtual time at a real moment) plus the
    speed, so nothing needs ticking: every change of play state, speed or
    position just moves the anchor.
    """

    MIN_SPEED = 1 / 16
    MAX_SPEED = 64.0
    # `[` pressed again within this much real time of landing on a marker
    # goes to the one before, as in video players.
    MARKER_GRACE = 1.0

    def __init__(self, duration: float, markers: Sequence[Marker] = (), *,
                 clock: Clock = time.monotonic, speed: float = 1.0, playing: bool = True):
        self.duration = max(0.0, duration)
        self.markers = sorted(markers)
        self._clock = clock
        self._speed = self._bounded(speed)
        self._playing = playing
        self._anchor_real = clock()
        self._anchor_virtual = 0.0

    # -- reading

    @property
    def position(self) -> float:
        t = self._anchor_virtual
        if self._playing:
            t += (self._clock() - self._anchor_real) * self._speed
        return min(max(t, 0.0), self.duration)

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def at_end(self) -> bool:
        return self.position >= self.duration

    def time_until(self, t: float | None) -> float | None:
        """Real seconds until virtual time `t`; None if it will never come
        on its own (paused, or nothing left to wait for)."""
        if t is None or not self._playing:
            return None
        return max(0.0, min(t, self.duration) - self.position) / self._speed

    # -- changing

    def _reanchor(self, virtual: float) -> None:
        self._anchor_virtual = min(max(virtual, 0.0), self.duration)
        self._anchor_real = self._clock()

    def play(self) -> None:
        if not self._playing:
            self._reanchor(self.position)
            self._playing = True

    def pause(self) -> None:
        if self._playing:
            self._reanchor(self.position)
            self._playing = False

    def toggle(self) -> None:
        if self._playing:
            self.pause()
        else:
            self.play()

    def _bounded(self, speed: float) -> float:
        if speed <= 0:
            raise ValueError(f"speed must be positive, not {speed}")
        return min(max(speed, self.MIN_SPEED), self.MAX_SPEED)

    def set_speed(self, speed: float) -> float:
        self._reanchor(self.position)
        self._speed = self._bounded(speed)
        return self._speed

    def faster(self) -> float:
        return self.set_speed(self._speed * 2)

    def slower(self) -> float:
        return self.set_speed(self._speed / 2)

    def seek(self, t: float) -> float:
        """Jump to virtual time `t` (clamped to the recording), either way."""
        self._reanchor(t)
        return self._anchor_virtual

    def seek_by(self, seconds: float) -> float:
        return self.seek(self.position + seconds)

    # -- markers

    def previous_marker(self) -> Marker | None:
        """The marker before the position; one just passed (within
        MARKER_GRACE of real time) does not count, so pressing again steps
        further back."""
        grace = self.MARKER_GRACE * self._speed if self._playing else 0.0
        before = self.position - grace - 1e-9
        earlier = [m for m in self.markers if m.t < before]
        return earlier[-1] if earlier else None

    def next_marker(self) -> Marker | None:
        after = self.position + 1e-9
        return next((m for m in self.markers if m.t > after), None)
