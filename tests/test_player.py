"""The replay player, with no terminal: a recording fed into the multi-pane
view by a virtual clock that follows an injected (fake) real clock.

Fidelity is checked against an oracle that shares nothing with the player's
seeking: the pane's events read with the recording's own reader, fed from
the start into a fresh screen, emulated in full (no backlog skipping).
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import pytest
from conftest import trace

from autotrace.format.errors import RecordingError
from autotrace.format.reader import Recording
from autotrace.format.recording import PaneRecord, RecordingWriter, SessionRecord
from autotrace.replay.player import LOOKBACK_MAX, SNAPSHOT_EVERY, IdleMap, Player
from autotrace.view.multipane import MultiPaneView
from autotrace.view.screen import PaneScreen

COLS, ROWS = 50, 10


class FakeClock:
    """Real seconds, moved by the test."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_player(directory: Path, **options) -> tuple[Player, FakeClock]:
    clock = FakeClock()
    player = Player(Recording.open(directory), MultiPaneView(160, 50), real_clock=clock,
                    **options)
    return player, clock


def shown(player: Player) -> list[tuple]:
    """Each pane's screen as the view would draw it: cells and cursor."""
    screens = []
    for pane in player.view.panes:
        pane.screen.catch_up()
        screens.append((pane.screen.rows_at(0), pane.screen.cursor))
    return screens


def oracle_at(directory: Path, times: list[float]) -> dict[float, list[tuple]]:
    """Every pane fed from its start, emulated in full; its screen at each of `times`."""
    recording = Recording.open(directory)
    screens: dict[float, list[tuple]] = {t: [] for t in times}
    for index in range(len(recording.panes)):
        header = json.loads(recording.pane_path(index).read_text().split("\n", 1)[0])
        screen = PaneScreen(header["width"], header["height"])
        events = recording.events(index)
        event = next(events, None)
        for t in sorted(times):
            while event is not None and event.t <= t:
                if event.kind == "o":
                    screen.feed(event.data, event.t)
                elif event.kind == "r":
                    screen.resize(*(int(n) for n in event.data.split("x")))
                event = next(events, None)
            screen.catch_up(skip=False)
            screens[t].append((screen.rows_at(0), screen.cursor))
    return screens


def oracle(directory: Path, t: float) -> list[tuple]:
    return oracle_at(directory, [t])[t]


def text_of(player: Player, index: int) -> str:
    player.view.panes[index].screen.catch_up()
    return "\n".join(player.view.panes[index].screen.text())


# ---------------------------------------------------------------- recordings


PANE_KINDS = ("lines", "redraw", "progress")


def pane_output(kind: str, i: int, t: float) -> str:
    """What each kind of pane prints at its i-th step: coloured numbered lines
    (a tracer), a screen redrawn from the top (a probe), a progress bar."""
    if kind == "lines":
        return f"\x1b[3{i % 7 + 1}m{i:05d} read(3, ...) = {i * 7 % 4096}\x1b[0m\r\n"
    if kind == "redraw":
        body = "\r\n".join(f"\x1b[1mrow {r}\x1b[0m value {i * r}" for r in range(ROWS - 2))
        return f"\x1b[H\x1b[2J t={t:.1f}\r\n{body}"
    return f"\r\x1b[32m[{'#' * (i % 30):<30}]\x1b[0m {i % 100:3d}%" + ("\r\n" if i % 50 == 49
                                                                        else "")


def write_recording(directory: Path, seconds: float, step: float = 0.05,
                    markers: dict[float, str] | None = None,
                    quiet: tuple[float, float] | None = None) -> Path:
    """A recording with the project's own writer: one pane per kind, output
    every `step` seconds (none inside `quiet`), markers in pane 0."""
    directory.mkdir()
    writer = RecordingWriter(directory, SessionRecord(COLS, ROWS, time.time()))
    panes = []
    for index, kind in enumerate(PANE_KINDS):
        record = PaneRecord(index, "main" if index == 0 else "tracer", kind, kind, COLS,
                            ROWS, pid=1000 + index, start=0.0)
        panes.append((record, writer.add_pane(record)))
    pending = sorted((markers or {}).items())
    t, i = step, 0
    while t < seconds:
        while pending and pending[0][0] <= t:
            writer.marker(*pending.pop(0))
        if not (quiet and quiet[0] < t < quiet[1]):
            for (record, pane), kind in zip(panes, PANE_KINDS):
                if kind != "redraw" or i % 10 == 0:  # a probe's refresh is slower
                    pane.output(t + 0.001 * record.index, pane_output(kind, i, t))
            i += 1
        t = round(t + step, 6)
    for record, _ in panes:
        record.end, record.exit_status = seconds, 0
    writer.close(seconds)
    return directory


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory) -> Path:
    """5 minutes, 3 panes: each pane file spans several index blocks."""
    return write_recording(tmp_path_factory.mktemp("long") / "rec", 300.0, step=0.1,
                           markers={60.0: "user:first", 200.0: "pause", 230.0: "resume"})


@pytest.fixture(scope="module")
def real_recording(tmp_path_factory) -> Path:
    """A real headless session: coloured lines on the main pane, a tracer's
    own lines, a pane that redraws with clear-screen."""
    main = ("import time\n"
            "for i in range(60):\n"
            "    print(f'\\x1b[3{i % 7 + 1}mmain line {i}\\x1b[0m', flush=True)\n"
            "    time.sleep(0.02)\n")
    tracer = "for i in $(seq 40); do echo tracer $i; sleep 0.03; done"
    redraw = "for i in $(seq 12); do printf '\\033[H\\033[2Jframe %s\\n' $i; date; sleep 0.1; done"
    result, files = trace(tmp_path_factory.mktemp("real"), f"{sys.executable} -c \"{main}\"",
                          tracer, redraw, options=["--size", f"{COLS}x{ROWS}"])
    assert result.returncode == 0, result.stderr
    return files.directory


# ---------------------------------------------------------------- idle map


def test_idle_map_caps_gaps_and_round_trips() -> None:
    times = [0.5, 1.0, 11.0, 11.5, 40.0, 40.2]
    idle = IdleMap(times, 2.0)
    # Gaps of 10 s and 28.5 s become 2 s each.
    assert [round(idle.to_replay(t), 6) for t in times] == [0.5, 1.0, 3.0, 3.5, 5.5, 5.7]
    for t in times + [0.0, 0.7, 2.5, 11.2, 13.0, 40.1, 50.0]:
        replay = idle.to_replay(t)
        back = idle.to_recorded(replay)
        if any(a + 2.0 < t < b for a, b in zip(times, times[1:]) if b - a > 2.0):
            # In the cut part of a gap: replay time stands still at the gap's end.
            assert replay == pytest.approx(idle.to_replay(min(u for u in times if u > t)))
            assert back == pytest.approx(min(u for u in times if u > t))
        else:
            assert back == pytest.approx(t), t
    replays = [idle.to_replay(t / 10) for t in range(500)]
    assert replays == sorted(replays)


def test_idle_map_without_limit_is_the_identity() -> None:
    idle = IdleMap([1.0, 100.0], None)
    assert idle.to_replay(50.0) == 50.0 and idle.to_recorded(50.0) == 50.0


def test_idle_limit_shortens_the_replay_and_moves_markers(tmp_path: Path) -> None:
    directory = write_recording(tmp_path / "rec", 40.0, quiet=(10.0, 30.0),
                                markers={35.0: "user:after"})
    player, _ = make_player(directory, idle_limit=1.0)
    assert player.clock.duration == pytest.approx(40.0 - 19.0, abs=0.1)
    assert player.clock.markers[0].label == "user:after"
    assert player.clock.markers[0].t == pytest.approx(35.0 - 19.0, abs=0.1)
    player.seek(player.clock.markers[0].t)
    assert player.recorded_now == pytest.approx(35.0, abs=0.1)


# ---------------------------------------------------------------- playing


def test_advance_feeds_exactly_the_events_due(real_recording: Path) -> None:
    player, clock = make_player(real_recording)
    recording = Recording.open(real_recording)
    end = player.clock.duration
    t = 0.0
    while t < end + 0.2:
        clock.now = 100.0 + t
        player.advance()
        for index, track in enumerate(player.tracks):
            due = sum(1 for e in recording.events(index, ("o", "r", "m", "x")) if e.t <= t)
            assert track.position == due, (index, t)
        t += 0.037
    assert shown(player) == oracle(real_recording, end)
    assert "main line 59" in text_of(player, 0)
    assert "tracer 40" in text_of(player, 1)
    assert "frame 12" in text_of(player, 2)


def test_speed_and_pause_follow_the_real_clock(long_recording: Path) -> None:
    player, clock = make_player(long_recording, speed=4.0)
    clock.now += 5.0
    player.advance()
    assert player.recorded_now == pytest.approx(20.0)
    player.handle_key(" ")
    clock.now += 5.0
    player.advance()
    assert player.recorded_now == pytest.approx(20.0)
    player.status()
    assert player.view.badge == "PAUSED" and player.view.paused
    player.handle_key("c")
    player.handle_key("-")
    clock.now += 5.0
    player.advance()
    assert player.recorded_now == pytest.approx(30.0)
    assert shown(player) == oracle(long_recording, 30.0)


def test_end_stays_on_the_final_screen(real_recording: Path) -> None:
    player, clock = make_player(real_recording)
    clock.now += 3600
    player.advance()
    player.status()
    assert player.view.badge == "END"
    assert player.view.panes[0].state == "exited 0"
    assert shown(player) == oracle(real_recording, player.recorded_end)


def test_unknown_event_codes_are_ignored(tmp_path: Path) -> None:
    directory = write_recording(tmp_path / "rec", 1.0, step=0.5)
    cast = directory / "pane-0.cast"
    lines = cast.read_text().splitlines()
    lines[2:2] = [json.dumps([0.2, "x", "future data"]), json.dumps([0.3, "i", "typed\r\n"]),
                  json.dumps([0.4, "m", "user:seen"])]
    cast.write_text("\n".join(lines) + "\n")
    player, clock = make_player(directory)
    clock.now += 5
    player.advance()
    assert "typed" not in text_of(player, 0) and "future" not in text_of(player, 0)
    assert shown(player) == oracle(directory, 5.0)


def test_corrupt_line_is_named_when_the_player_opens(tmp_path: Path) -> None:
    directory = write_recording(tmp_path / "rec", 5.0)
    cast = directory / "pane-1.cast"
    lines = cast.read_text().splitlines()
    lines[10] = '[0.55, "o", "torn in the midd'
    cast.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordingError, match=rf"^{cast}:11: corrupt event: Unterminated string"):
        make_player(directory)


# ---------------------------------------------------------------- seeking


def seek_targets(duration: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    targets = [duration, 0.0, duration / 2, duration - 0.01, 0.05]
    targets += [rng.uniform(0, duration) for _ in range(14)]
    return targets


@pytest.mark.parametrize("snapshots", [True, False], ids=["with-snapshots", "no-snapshots"])
def test_seek_anywhere_shows_what_playing_from_the_start_shows(long_recording: Path,
                                                               snapshots: bool) -> None:
    # A small lookback: a seek with no snapshot rebuilds from a part of each
    # pane file, not from its start.
    player, clock = make_player(long_recording, lookback_bytes=16 * 1024)
    player.clock.pause()
    targets = seek_targets(player.clock.duration, seed=3 if snapshots else 4)
    expected = oracle_at(long_recording, targets)
    for target in targets:
        if not snapshots:
            player.snapshots.clear()
        player.seek(target)
        assert player.recorded_now == pytest.approx(target)
        assert shown(player) == expected[target], target
    if snapshots:
        assert len(player.snapshots) > 3


def test_arrow_keys_seek_five_seconds_both_ways(long_recording: Path) -> None:
    expected = oracle_at(long_recording, [95.0, 300.0, 0.0])
    player, clock = make_player(long_recording)
    player.handle_key("p")
    player.seek(100.0)
    player.handle_key("KEY_RIGHT")
    assert player.clock.position == pytest.approx(105.0)
    player.handle_key("KEY_LEFT")
    player.handle_key("KEY_LEFT")
    assert player.clock.position == pytest.approx(95.0)
    assert shown(player) == expected[95.0]
    player.handle_key("G")
    assert player.clock.at_end
    assert shown(player) == expected[300.0]
    player.handle_key("g")
    assert player.clock.position == 0.0
    assert shown(player) == expected[0.0]


def test_playing_on_after_a_seek_keeps_snapshots_every_few_seconds(long_recording: Path) -> None:
    player, clock = make_player(long_recording, speed=8.0)
    for _ in range(40):  # 40 s of play at x8: 320 recorded seconds, to the end
        clock.now += 1.0
        player.advance()
    assert player.clock.at_end
    times = [s.t for s in player.snapshots]
    assert times and all(b - a >= SNAPSHOT_EVERY for a, b in zip(times, times[1:]))
    assert shown(player) == oracle(long_recording, 300.0)


def test_markers_jump_both_ways(long_recording: Path) -> None:
    expected = oracle_at(long_recording, [230.0, 200.0])
    player, _ = make_player(long_recording)
    player.handle_key("p")
    labels = []
    for _ in range(4):
        player.handle_key("]")
        labels.append((round(player.clock.position, 3), player.view.message))
    assert labels == [(60.0, "marker: user:first"), (200.0, "marker: pause"),
                      (230.0, "marker: resume"), (230.0, "no later marker")]
    assert shown(player) == expected[230.0]
    player.handle_key("[")
    assert player.clock.position == pytest.approx(200.0)
    assert shown(player) == expected[200.0]
    player.handle_key("[")
    assert player.clock.position == pytest.approx(60.0)


def finish_search(player: Player) -> int:
    """Step the search under way to its end, as the replay loop does; the steps it took."""
    steps = 0
    while player.view.search_job is not None:
        player.view.search_step()
        steps += 1
    return steps


def test_search_jumps_to_the_moment_of_the_match(long_recording: Path) -> None:
    player, _ = make_player(long_recording)
    player.handle_key("p")
    for key in "/01234 read":
        player.handle_key(key)
    player.handle_key("\n")
    finish_search(player)
    # Line 1234 of the "lines" pane was printed at step 1234: 123.5 s.
    assert player.clock.position == pytest.approx(123.5)
    assert player.view.message.startswith("/01234 read: pane 0 at 123.5 s")
    lines = [line.strip() for line in text_of(player, 0).split("\n") if line.strip()]
    assert lines[-1].startswith("01234 read")
    assert shown(player) == oracle(long_recording, 123.5)
    player.handle_key("n")  # the next match of the same pattern: none later
    finish_search(player)
    assert "no later match" in player.view.message
    player.handle_key("G")
    for key in "/00007\n":
        player.handle_key(key)
    finish_search(player)
    assert player.clock.position == pytest.approx(0.8)  # wrapped round from the start
    assert "(from the start)" in player.view.message


def test_search_visits_every_pane_in_slices_and_esc_cancels(long_recording: Path) -> None:
    player, _ = make_player(long_recording)
    player.handle_key("p")
    # Only the progress pane (2) prints bars; the focused pane 0 is searched first.
    for key in "/#{29}\n":
        player.handle_key(key)
    job = player.view.search_job
    assert job is not None, "3000 lines of pane 0 take more than one slice"
    footer = str(player.view._footer())
    assert "searching" in footer and "Esc: cancel" in footer
    assert finish_search(player) > 1
    assert player.view.message.startswith("/#{29}: pane 2 at ")
    assert player.view.focus == 2
    first = player.clock.position
    player.handle_key("n")
    finish_search(player)
    assert player.view.focus == 2 and player.clock.position > first
    # A search can be cancelled before it ends; Esc does not quit then.
    player.handle_key("g")
    for key in "/no such line\n":
        player.handle_key(key)
    assert player.view.search_job is not None
    assert player.handle_key("KEY_ESCAPE") is None
    assert player.view.search_job is None and player.view.message == "search cancelled"


def test_colon_jumps_to_a_typed_time(long_recording: Path) -> None:
    player, _ = make_player(long_recording)
    for typed, expected in [("83.5", 83.5), ("1:23.5", 83.5), ("0:02:03.4", 123.4)]:
        for key in f":{typed}\n":
            player.handle_key(key)
        assert player.clock.position == pytest.approx(expected)
        assert shown(player) == oracle(long_recording, expected)
    for key in ":1:2x\n":
        player.handle_key(key)
    assert player.view.message == "not a time: 1:2x (e.g. 83.5 or 1:23.5)"
    assert player.clock.position == pytest.approx(123.4)


def test_digits_zoom_and_frame_draws(real_recording: Path) -> None:
    player, clock = make_player(real_recording)
    clock.now += 10
    player.advance()
    player.handle_key("1")
    assert player.view.zoom == 1 and list(player.view.arrangement()) == [1]
    frame = player.frame()
    frame = "\n".join(row.s for row in getattr(frame, "rows", frame))
    assert "tracer 40" in frame and "main line" not in frame
    assert "END" in frame


def test_a_flood_is_read_in_bounded_memory_and_shown_exactly(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    directory.mkdir()
    writer = RecordingWriter(directory, SessionRecord(COLS, ROWS, time.time()))
    record = PaneRecord(0, "main", "yes-like", "yes-like", COLS, ROWS, start=0.0)
    pane = writer.add_pane(record)
    for i in range(30000):  # about 3 MB in 3 s
        pane.output(i * 0.0001, f"flood {i:06d} " + "y" * (20 + i % 60) + "\r\n")
    record.end, record.exit_status = 3.0, 0
    writer.close(3.0)
    assert (directory / "pane-0.cast").stat().st_size > 2 * LOOKBACK_MAX
    expected = oracle_at(directory, [1.5, 3.0])
    player, clock = make_player(directory)
    clock.now += 1.5  # one frame of playing covers more than LOOKBACK_MAX of output
    player.advance()
    assert player.view.panes[0].screen.pending < LOOKBACK_MAX / 4
    assert shown(player) == expected[1.5]
    player.seek(3.0)  # a short jump forward through the rest
    assert player.view.panes[0].screen.pending < LOOKBACK_MAX / 4
    assert shown(player) == expected[3.0]


# ---------------------------------------------------------------- re-wrapping


def resized_recording(directory: Path) -> Path:
    """One pane, 40 columns wide, printing a 100-character line; at 2 s its pty
    became 100 wide (the live view re-wrapped it then), then a last line."""
    directory.mkdir()
    writer = RecordingWriter(directory, SessionRecord(100, 30, time.time()))
    record = PaneRecord(0, "main", "wide", "wide", 40, 10, pid=1000, start=0.0)
    pane = writer.add_pane(record)
    pane.output(1.0, "HEAD" + "x" * 92 + "TAIL\r\n")
    pane.resize(2.0, "100x10")
    pane.output(3.0, "last\r\n")
    record.end, record.exit_status = 4.0, 0
    writer.close(4.0)
    return directory


def rows_with(player: Player, text: str) -> list[str]:
    screen = player.view.panes[0].screen
    screen.catch_up()
    return [row for row in screen.text() if text in row]


def test_a_recorded_resize_re_wraps_the_text_before_it_as_live_did(tmp_path) -> None:
    player, clock = make_player(resized_recording(tmp_path / "rec"))
    player.seek(1.5)
    assert player.view.panes[0].screen.cols == 40
    assert not rows_with(player, "TAIL")[0].startswith("HEAD")  # wrapped at 40
    player.seek(2.5)
    assert player.view.panes[0].screen.cols == 100
    assert rows_with(player, "TAIL")[0].startswith("HEAD")  # one row again
    player.seek(0.5)
    player.clock.play()
    clock.now += 3.5  # played through the resize
    player.advance()
    assert rows_with(player, "TAIL")[0].startswith("HEAD") and rows_with(player, "last")


def test_zoom_and_wrap_off_re_wrap_a_replayed_pane_and_unzoom_gives_its_size_back(
        tmp_path) -> None:
    player, _ = make_player(resized_recording(tmp_path / "rec"))
    player.seek(1.5)  # 40 columns recorded: the line wraps over three rows
    assert len(rows_with(player, "x" * 10)) == 3
    player.handle_key("0")  # zoomed in a 160-column terminal
    assert player.view.panes[0].screen.cols == 160
    assert rows_with(player, "TAIL")[0].startswith("HEAD")
    player.handle_key("0")
    assert player.view.panes[0].screen.cols == 40
    player.handle_key("w")
    assert player.view.panes[0].screen.cols == 320
    assert rows_with(player, "TAIL")[0].startswith("HEAD")
    player.handle_key("w")
    assert player.view.panes[0].screen.cols == 40
