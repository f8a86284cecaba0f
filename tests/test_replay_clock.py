"""Replay's event stream and virtual clock, with a fake real-time clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotrace.events import Event
from autotrace.format.reader import Recording
from autotrace.format.recording import PaneRecord, RecordingWriter, SessionRecord
from autotrace.replay.clock import (
    EventFeed,
    Marker,
    ReplayClock,
    at_speed,
    find_markers,
    limit_idle,
    merge_events,
    recorded_events,
    scan,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def recording(tmp_path: Path) -> Recording:
    """Two panes written by the real writer; a long quiet gap from 3 s to 20 s."""
    writer = RecordingWriter(tmp_path, SessionRecord(cols=80, rows=24, started_unix=0.0))
    main = writer.add_pane(PaneRecord(0, "main", "main", "main", 80, 24))
    tracer = writer.add_pane(PaneRecord(1, "tracer", "strace", "strace", 80, 24))
    main.output(1.0, "hello\r\n")
    tracer.output(1.0, "open()\r\n")
    writer.marker(2.0, "user:before-gap")
    tracer.output(3.0, "read()\r\n")
    main.resize(20.0, "100x30")
    main.output(21.0, "bye\r\n")
    writer.marker(22.0, "end")
    writer.close(22.0)
    return Recording.open(tmp_path)


def events(*times: float) -> list[Event]:
    return [Event(t, 0, "o", str(i)) for i, t in enumerate(times)]


# ---------------------------------------------------------------- the stream


def test_merge_orders_all_panes_by_time(recording: Recording) -> None:
    assert list(merge_events(recording)) == [
        Event(1.0, 0, "o", "hello\r\n"),
        Event(1.0, 1, "o", "open()\r\n"),
        Event(2.0, 0, "m", "user:before-gap"),
        Event(3.0, 1, "o", "read()\r\n"),
        Event(20.0, 0, "r", "100x30"),
        Event(21.0, 0, "o", "bye\r\n"),
        Event(22.0, 0, "m", "end"),
    ]


def test_idle_limit_caps_gaps_and_shifts_what_follows() -> None:
    capped = limit_idle(events(5.0, 5.5, 30.0, 31.0), 2.0)
    assert [e.t for e in capped] == [2.0, 2.5, 4.5, 5.5]
    assert [e.t for e in limit_idle(events(5.0, 30.0), None)] == [5.0, 30.0]


def test_speed_divides_times() -> None:
    assert [e.t for e in at_speed(events(1.0, 4.0), 2.0)] == [0.5, 2.0]
    assert [e.data for e in at_speed(events(1.0, 4.0), 0.5)] == ["0", "1"]
    with pytest.raises(ValueError):
        list(at_speed(events(1.0), 0))


def test_scan_finds_duration_and_markers(recording: Recording) -> None:
    assert scan(recording) == (22.0, [Marker(2.0, "user:before-gap"), Marker(22.0, "end")])
    # Capped at 1 s: the 17 s gap before the resize becomes 1 s.
    limited = scan(recording, idle_limit=1.0)
    assert limited == (6.0, [Marker(2.0, "user:before-gap"), Marker(6.0, "end")])
    assert find_markers(recorded_events(recording, 1.0)) == limited.markers


def test_feed_hands_out_events_as_they_fall_due(recording: Recording) -> None:
    feed = EventFeed(recorded_events(recording))
    assert feed.next_time == 1.0
    assert feed.due(0.5) == []
    assert [e.pane for e in feed.due(1.0)] == [0, 1]
    assert [e.kind for e in feed.due(20.5)] == ["m", "o", "r"]
    assert feed.next_time == 21.0
    assert [e.data for e in feed.due(100.0)] == ["bye\r\n", "end"]
    assert feed.next_time is None


# ---------------------------------------------------------------- the clock


def test_clock_follows_real_time_while_playing() -> None:
    real = FakeClock()
    clock = ReplayClock(60.0, clock=real)
    assert clock.position == 0.0 and clock.playing
    real.advance(2.5)
    assert clock.position == 2.5
    real.advance(100.0)
    assert clock.position == 60.0 and clock.at_end


def test_pause_freezes_and_play_resumes() -> None:
    real = FakeClock()
    clock = ReplayClock(60.0, clock=real)
    real.advance(3.0)
    clock.pause()
    real.advance(10.0)
    assert clock.position == 3.0 and not clock.playing
    clock.play()
    real.advance(1.0)
    assert clock.position == 4.0
    clock.toggle()
    real.advance(5.0)
    assert clock.position == 4.0
    clock.toggle()
    assert clock.playing


def test_starting_paused() -> None:
    real = FakeClock()
    clock = ReplayClock(10.0, clock=real, playing=False)
    real.advance(5.0)
    assert clock.position == 0.0


def test_speed_doubles_and_halves_within_bounds() -> None:
    real = FakeClock()
    clock = ReplayClock(1000.0, clock=real)
    real.advance(1.0)
    assert clock.faster() == 2.0
    real.advance(1.0)
    assert clock.position == 3.0  # the second before the change still counted once
    assert clock.slower() == 1.0
    assert clock.slower() == 0.5
    real.advance(2.0)
    assert clock.position == 4.0
    for _ in range(20):
        clock.faster()
    assert clock.speed == ReplayClock.MAX_SPEED
    for _ in range(40):
        clock.slower()
    assert clock.speed == ReplayClock.MIN_SPEED
    assert ReplayClock(10.0, clock=real, speed=1000).speed == ReplayClock.MAX_SPEED
    with pytest.raises(ValueError):
        ReplayClock(10.0, clock=real, speed=0)


def test_seek_both_ways_and_clamped() -> None:
    real = FakeClock()
    clock = ReplayClock(60.0, clock=real, speed=2.0)
    assert clock.seek(40.0) == 40.0
    real.advance(1.0)
    assert clock.position == 42.0
    assert clock.seek(10.0) == 10.0
    assert clock.seek_by(-5.0) == 5.0
    assert clock.seek_by(-50.0) == 0.0
    assert clock.seek(99.0) == 60.0 and clock.at_end
    clock.pause()
    clock.seek(30.0)
    real.advance(10.0)
    assert clock.position == 30.0


def test_time_until_tells_the_loop_how_long_to_sleep() -> None:
    real = FakeClock()
    clock = ReplayClock(60.0, clock=real, speed=4.0)
    assert clock.time_until(8.0) == 2.0
    real.advance(1.0)
    assert clock.time_until(2.0) == 0.0
    assert clock.time_until(None) is None
    assert clock.time_until(100.0) == 14.0  # only up to the end
    clock.pause()
    assert clock.time_until(8.0) is None


MARKERS = [Marker(10.0, "pause"), Marker(20.0, "resume"), Marker(30.0, "user:bug")]


def test_next_and_previous_marker() -> None:
    real = FakeClock()
    clock = ReplayClock(60.0, MARKERS, clock=real, playing=False)
    assert clock.previous_marker() is None
    assert clock.next_marker() == Marker(10.0, "pause")
    clock.seek(20.0)
    assert clock.next_marker() == Marker(30.0, "user:bug")
    assert clock.previous_marker() == Marker(10.0, "pause")
    clock.seek(25.0)
    assert clock.previous_marker() == Marker(20.0, "resume")
    clock.seek(45.0)
    assert clock.next_marker() is None


def test_previous_marker_while_playing_steps_back_past_one_just_reached() -> None:
    real = FakeClock()
    clock = ReplayClock(60.0, MARKERS, clock=real)
    clock.seek(20.0)
    real.advance(0.3)  # pressed `[` again at once: go further back
    assert clock.previous_marker() == Marker(10.0, "pause")
    real.advance(2.0)  # a while later: back to the start of this part
    assert clock.previous_marker() == Marker(20.0, "resume")
