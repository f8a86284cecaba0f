"""PaneTrack: random access into one pane's asciicast file.

The events it hands out are checked against the file read with plain json,
on a real recording and on files written here in the documented format
(docs/recording-format.md) where a test needs an exact shape: many blocks,
markers, resizes, torn and corrupt lines.
"""

from __future__ import annotations

import bisect
import json
import random
import sys
from pathlib import Path

import pytest
from conftest import trace

from autotrace.format.errors import RecordingError
from autotrace.format.tracks import SAMPLE_BYTES, PaneTrack

HEADER = {"version": 2, "width": 50, "height": 10}


def write_cast(path: Path, events: list[list], header: dict | None = None,
               tail: str = "") -> Path:
    """A pane file: the header line, one JSON line per event, then `tail` as is."""
    lines = [json.dumps(header or HEADER)] + [json.dumps(e) for e in events]
    path.write_text("\n".join(lines) + "\n" + tail, encoding="utf-8")
    return path


def plain_events(path: Path) -> list[tuple[float, str, str]]:
    """Every event of a well-formed file, read with nothing but json."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [tuple(json.loads(line)) for line in lines if line.strip()]


def as_tuples(events) -> list[tuple[float, str, str]]:
    return [(e.t, e.code, e.data) for e in events]


def many_events(count: int = 6000, seed: int = 1) -> list[list]:
    """Enough output to fill several index blocks, times rising irregularly."""
    rng = random.Random(seed)
    t, events = 0.0, []
    for i in range(count):
        t = round(t + rng.choice([0.0, 0.001, 0.05, 0.3]), 6)
        events.append([t, "o", f"\x1b[3{i % 7 + 1}mline {i} " + "x" * rng.randrange(60) +
                       "\x1b[0m\r\n"])
    return events


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A real headless recording: numbered coloured lines on the main pane."""
    program = ("import time\n"
               "for i in range(120):\n"
               "    print(f'\\x1b[3{i % 7 + 1}mline {i}\\x1b[0m', flush=True)\n"
               "    time.sleep(0.005)\n")
    result, files = trace(tmp_path_factory.mktemp("rec"),
                          f"{sys.executable} -c \"{program}\"", "sleep 0.3",
                          options=["--size", "50x10"])
    assert result.returncode == 0, result.stderr
    return files.directory / "pane-0.cast"


def test_reads_every_event_of_a_real_recording(recorded: Path) -> None:
    track = PaneTrack(recorded)
    expected = plain_events(recorded)
    assert track.event_count == len(expected)
    assert as_tuples(track.read_until(float("inf"))) == expected
    assert "".join(e[2] for e in expected if e[1] == "o").count("line ") == 120
    assert track.duration == expected[-1][0]
    assert [label for _, label in track.markers] == ["end"]


def test_reading_in_steps_gives_the_same_events(recorded: Path) -> None:
    track = PaneTrack(recorded)
    expected = plain_events(recorded)
    got, t = [], 0.0
    while t <= track.duration + 0.1:
        got += as_tuples(track.read_until(t))
        assert track.position == sum(1 for e in expected if e[0] <= t)
        t += 0.013
    assert got == expected


def test_count_until_seek_event_and_time_of_across_blocks(tmp_path: Path) -> None:
    events = many_events()
    path = write_cast(tmp_path / "pane-0.cast", events)
    assert path.stat().st_size > 5 * SAMPLE_BYTES  # several index blocks
    track = PaneTrack(path)
    times = [e[0] for e in events]
    assert track.event_count == len(events)
    assert list(track.iter_times()) == times
    rng = random.Random(2)
    for t in [0.0, -1.0, times[0], times[-1], times[-1] + 5] + \
            [rng.uniform(0, times[-1]) for _ in range(50)] + rng.sample(times, 30):
        assert track.count_until(t) == bisect.bisect_right(times, t), t
    for number in [0, 1, len(events) - 1] + rng.sample(range(len(events)), 40):
        assert track.time_of(number) == times[number]
        track.seek_event(number)
        assert track.position == number
        assert track.next_time == times[number]
        window = as_tuples(track.read_until(times[number]))
        assert window == [tuple(e) for e in events[number:] if e[0] <= times[number]]
    track.seek_event(len(events))
    assert track.next_time is None and track.read_until(times[-1] + 1) == []


def test_rewind_bytes_goes_back_that_much_of_the_file_to_a_line(tmp_path: Path) -> None:
    events = many_events()
    path = write_cast(tmp_path / "pane-0.cast", events)
    track = PaneTrack(path)
    sizes = [len(json.dumps(e)) + 1 for e in events]
    number = len(events) - 10
    assert track.rewind_bytes(number, 0) == number
    # Lookbacks inside a block, across blocks, and from events in the
    # middle of blocks: a seek re-reads what it asked for, not whole blocks.
    for number in (len(events) - 10, len(events) // 2 + 7, 3001):
        for lookback in (100, 4096, SAMPLE_BYTES, 3 * SAMPLE_BYTES + 555):
            first = track.rewind_bytes(number, lookback)
            rewound = sum(sizes[first:number])
            assert lookback <= rewound < lookback + sizes[first], (number, lookback, rewound)
    assert track.rewind_bytes(number, 10**9) == 0
    assert track.rewind_bytes(5, SAMPLE_BYTES) == 0


def test_offset_of_is_where_the_events_line_starts(tmp_path: Path) -> None:
    events = many_events()
    path = write_cast(tmp_path / "pane-0.cast", events)
    data = path.read_bytes()
    starts = [data.index(b"\n") + 1]
    for event in events:
        starts.append(starts[-1] + len(json.dumps(event)) + 1)
    track = PaneTrack(path)
    for number in [0, 1, len(events) - 1, len(events)] + random.Random(5).sample(
            range(len(events)), 30):
        assert track.offset_of(number) == starts[number], number


def test_markers_and_resizes_and_sizes(tmp_path: Path) -> None:
    events = many_events(3000)
    events[100:100] = [[events[99][0], "m", "pause"]]
    events[1500:1500] = [[events[1499][0], "r", "80x20"], [events[1499][0], "m", "user:half"]]
    # Output that looks like the codes must stay output.
    events[2000:2000] = [[events[1999][0], "o", "m"], [events[1999][0], "o", "r"],
                         [events[1999][0], "o", '"m" and "r"']]
    events.append([events[-1][0] + 1, "r", "40x5"])
    path = write_cast(tmp_path / "pane-0.cast", events)
    track = PaneTrack(path)
    marker_t = [e[0] for e in events if e[1] == "m"]
    assert track.markers == list(zip(marker_t, ["pause", "user:half"]))
    resizes = [e for e in events if e[1] == "r"]
    assert track.resizes == [(resizes[0][0], 80, 20), (resizes[1][0], 40, 5)]
    assert track.size_at(0.0) == (50, 10)
    assert track.size_at(resizes[0][0]) == (80, 20)
    assert track.size_at(resizes[1][0] + 1) == (40, 5)


def test_torn_last_line_is_ignored_and_a_whole_one_kept(tmp_path: Path) -> None:
    events = [[0.5, "o", "one\r\n"], [1.0, "o", "two\r\n"]]
    torn = write_cast(tmp_path / "torn.cast", events, tail='[1.5, "o", "thr')
    track = PaneTrack(torn)
    assert as_tuples(track.read_until(10)) == [tuple(e) for e in events]
    assert track.duration == 1.0
    whole = write_cast(tmp_path / "whole.cast", events, tail='[1.5, "o", "three"]')
    assert as_tuples(PaneTrack(whole).read_until(10))[-1] == (1.5, "o", "three")


def test_blank_lines_and_decreasing_times_are_tolerated(tmp_path: Path) -> None:
    events = many_events(3000)
    path = tmp_path / "pane-0.cast"
    lines = [json.dumps(HEADER)] + [json.dumps(e) for e in events]
    lines[1500:1500] = ["", "   "]
    lines[2500] = json.dumps([0.0, "o", "late\r\n"])  # a time going back is clamped
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    track = PaneTrack(path)
    expected = _clamped(plain_events(path))
    assert track.event_count == len(expected)
    track.seek_event(2000)
    assert as_tuples(track.read_until(float("inf"))) == expected[2000:]
    assert list(track.iter_times()) == [e[0] for e in expected]


def _clamped(events: list[tuple[float, str, str]]) -> list[tuple[float, str, str]]:
    out, last = [], 0.0
    for t, code, data in events:
        last = max(last, t)
        out.append((last, code, data))
    return out


@pytest.mark.parametrize("bad, where, why", [
    ("this is not json", "open", "Expecting value"),
    ('[12.5, "o", "cut short', "open", "Unterminated string.*"),
    ('{"a": 1}', "open", r"expected \[time, code, data\]"),
    ('[12.5, "o", "broken \\x escape"]', "read", "Invalid \\\\escape"),
    ('[12.5, "o", 42]', "read", "data of 'o' is not text"),
    ("[1e400, \"o\", \"x\"]", "read", "time inf is not a finite number"),
    (f"[{'9' * 5000}, \"o\", \"x\"]", "read",
     "(a number with too many digits|time .* is out of range.*)"),  # Python 3.11 | 3.9
    ("[" * 100000, "open", "nested too deeply"),
])
def test_corrupt_line_in_the_middle_names_file_and_line(tmp_path: Path, bad: str,
                                                        where: str, why: str) -> None:
    events = many_events(3000)
    path = tmp_path / "pane-3.cast"
    lines = [json.dumps(HEADER)] + [json.dumps(e) for e in events]
    lines.insert(2000, bad)  # line 2001 of the file
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if where == "open":
        with pytest.raises(RecordingError, match=rf"^{path}:2001: corrupt event: {why}$"):
            PaneTrack(path)
        return
    track = PaneTrack(path)
    with pytest.raises(RecordingError, match=rf"^{path}:2001: corrupt event: {why}$"):
        track.read_until(float("inf"))


@pytest.mark.parametrize("header, message", [
    ("not json", "1: corrupt asciicast header: Expecting value"),
    ('{"version": 1}', "1: not an asciicast v2 or v3 file"),
    ('{"version": 3, "term": 5}', "1: corrupt asciicast header: no 'term' object"),
])
def test_bad_header_is_named(tmp_path: Path, header: str, message: str) -> None:
    path = tmp_path / "pane-0.cast"
    path.write_text(header + "\n", encoding="utf-8")
    with pytest.raises(RecordingError, match=f"^{path}:{message}$"):
        PaneTrack(path)


def test_unknown_codes_are_handed_out_for_the_reader_to_skip(tmp_path: Path) -> None:
    path = write_cast(tmp_path / "pane-0.cast",
                      [[0.1, "o", "a"], [0.2, "x", {"future": True}], [0.3, "i", "typed"]])
    assert [e.code for e in PaneTrack(path).read_until(1)] == ["o", "x", "i"]


def test_empty_pane_file(tmp_path: Path) -> None:
    track = PaneTrack(write_cast(tmp_path / "pane-0.cast", []))
    assert (track.event_count, track.duration, track.next_time) == (0, 0.0, None)
    assert track.count_until(5) == 0 and track.read_until(5) == []
    assert track.rewind_bytes(0, SAMPLE_BYTES) == 0
