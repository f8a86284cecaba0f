"""The asciicast codec (format/asciicast.py): v2 and v3 read and written,
times exact across v3's relative intervals, and lone asciicast files (from
the real asciinema, or written by hand in v3) read by `cat` and `info`."""

from __future__ import annotations

import io
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, assert_one_line_error, autotrace_env

from autotrace.format.asciicast import CastEvent, read_events, write_cast
from autotrace.format.errors import RecordingError
from autotrace.format.reader import Recording, read_cast, read_cast_header, read_cast_tail
from autotrace.format.tracks import SAMPLE_BYTES, PaneTrack

FIELDS = {"version": 2, "width": 90, "height": 30, "timestamp": 1700000000,
          "command": "make", "env": {"TERM": "xterm-256color", "SHELL": "/bin/sh"}}


def run(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autotrace", *map(str, args)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                          env=autotrace_env(PYTHONPATH=str(REPO)), cwd=REPO)


def events_with_steps(count: int, seed: int = 3) -> list[CastEvent]:
    """Times that a float sum of their intervals gets wrong: 0.1 s steps and
    odd microseconds, with markers and resizes among the output."""
    rng = random.Random(seed)
    micros, out = 0, []
    for i in range(count):
        micros += rng.choice([100_000, 1, 0, 333_333, 7])
        code = "m" if i % 97 == 0 else "r" if i % 89 == 0 else "o"
        data = {"m": f"user:mark {i}", "r": f"{80 + i % 7}x{20 + i % 5}",
                "o": f"line {i} \x1b[31mred\x1b[0m é\r\n"}[code]
        out.append(CastEvent(micros / 1_000_000, code, data))
    return out


def encoded(events: list[CastEvent], version: int) -> bytes:
    text = io.StringIO()
    write_cast(text, FIELDS, events, version)
    return text.getvalue().encode("utf-8")


@pytest.mark.parametrize("version", [2, 3])
def test_round_trip_keeps_every_event_and_time_exactly(version: int) -> None:
    events = events_with_steps(5000)
    data = encoded(events, version)
    first = json.loads(data.splitlines()[0])
    assert first["version"] == version
    assert (first.get("term") or {}).get("cols", first.get("width")) == 90
    assert list(read_events(io.BytesIO(data), "x.cast")) == events


def test_v3_intervals_are_relative_and_summed_exactly() -> None:
    events = [CastEvent(0.1 * (i + 1) if i < 3 else round(0.1 * (i + 1), 6), "o", "x")
              for i in range(1000)]
    lines = encoded(events, 3).splitlines()[1:]
    assert [json.loads(line)[0] for line in lines[:3]] == [0.1, 0.1, 0.1]
    read = [e.t for e in read_events(io.BytesIO(encoded(events, 3)), "x.cast")]
    float_sum, drifted = 0.0, []
    for line in lines:
        float_sum += json.loads(line)[0]
        drifted.append(float_sum)
    assert read == [round(0.1 * (i + 1), 6) for i in range(1000)]
    assert drifted != read  # what a plain float sum would have given


def test_v3_comments_and_unknown_codes_keep_their_time() -> None:
    data = (b'{"version": 3, "term": {"cols": 70, "rows": 20, "type": "xterm"}}\n'
            b"# a comment\n"
            b'[0.5, "o", "a"]\n'
            b'[0.25, "i", "typed"]\n'
            b"\n"
            b'[0.25, "o", "b"]\n'
            b'[1.0, "x", "0"]\n')
    assert list(read_events(io.BytesIO(data), "x.cast")) == [
        CastEvent(0.5, "o", "a"), CastEvent(1.0, "o", "b")]


def write_v3(path: Path, events: list[CastEvent]) -> Path:
    path.write_bytes(encoded(events, 3))
    return path


def test_pane_track_reads_v3_across_blocks_like_the_codec(tmp_path: Path) -> None:
    events = events_with_steps(8000)
    path = write_v3(tmp_path / "many.cast", events)
    assert path.stat().st_size > 4 * SAMPLE_BYTES
    track = PaneTrack(path)
    assert track.event_count == len(events)
    assert list(track.iter_times()) == [e.t for e in events]
    assert track.duration == events[-1].t
    middle = events[5000].t
    track.seek_event(track.count_until(middle))
    rest = track.read_until(float("inf"))
    assert [(e.t, e.code, e.data) for e in rest] == \
        [(e.t, e.code, e.data) for e in events if e.t > middle]
    assert track.markers == [(e.t, e.data) for e in events if e.code == "m"]
    assert [r[0] for r in track.resizes] == [e.t for e in events if e.code == "r"]
    assert (track.width, track.height) == (90, 30)
    track.close()


def test_header_of_a_v3_file_reads_in_v2_form(tmp_path: Path) -> None:
    path = write_v3(tmp_path / "a.cast", events_with_steps(10))
    header = read_cast_header(path)
    assert (header["version"], header["width"], header["height"]) == (2, 90, 30)
    assert header["env"]["TERM"] == "xterm-256color" and header["command"] == "make"
    assert [e.t for e in read_cast(path)] == [e.t for e in events_with_steps(10)]


def test_bad_v3_header_is_named(tmp_path: Path) -> None:
    path = tmp_path / "a.cast"
    path.write_text('{"version": 3, "width": 80}\n')
    with pytest.raises(RecordingError, match=f"^{path}:1: corrupt asciicast header: no 'term'"):
        list(read_cast(path))


# ---------------------------------------------------------------- lone casts on the CLI


def test_cat_and_info_of_a_cast_made_by_the_real_asciinema(tmp_path: Path) -> None:
    if not shutil.which("asciinema"):
        pytest.fail("asciinema is not installed (.ci/install-tools installs it)")
    cast = tmp_path / "f.cast"
    subprocess.run(["asciinema", "rec", "-q", "-c", "printf 'hello\\nworld\\n'", str(cast)],
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=True)
    result = run("cat", cast)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == ["hello", "world"]
    assert all(line.split()[1] == "[0]" for line in lines)
    info = run("info", cast)
    assert info.returncode == 0, info.stderr
    assert "format:     asciicast v2, one pane, no autotrace manifest" in info.stdout
    assert "pane 0 (main)" in info.stdout and "file: f.cast" in info.stdout


def test_cat_of_a_hand_written_v3_file_sums_the_intervals(tmp_path: Path) -> None:
    cast = tmp_path / "demo.cast"
    cast.write_text(
        '{"version": 3, "term": {"cols": 80, "rows": 24}, "title": "Demo"}\n'
        "# event stream follows the header\n"
        '[0.248, "o", "\\u001b[1;31mHello \\u001b[32mWorld!\\u001b[0m\\r\\n"]\n'
        '[1.001, "o", "That was ok\\rThis is better.\\r\\n"]\n'
        '[3.500, "m", ""]\n'
        '[0.143, "o", "Now... "]\n'
        '[2.050, "r", "90x30"]\n'
        '[1.541, "o", "Bye!\\r\\n"]\n'
        '[0.887, "x", "0"]\n')
    result = run("cat", cast)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "     0.248 [0] Hello World!",
        "     1.249 [0] That was okThis is better.",  # cat keeps what a CR overwrote
        "     4.892 [0] Now... Bye!",
    ]
    recording = Recording.open_cast(cast)
    assert recording.panes[0]["command"] == "Demo"
    assert [e.t for e in recording.events(0)][-1] == pytest.approx(8.483, abs=1e-9)


def test_a_lone_cast_that_is_damaged_is_one_line(tmp_path: Path) -> None:
    cast = tmp_path / "bad.cast"
    cast.write_text('{"version": 3, "term": {"cols": 80, "rows": 24}}\n[0.5, "o"]\n[1, "o", "x"]\n')
    line = assert_one_line_error(run("cat", cast))
    assert line == f"autotrace: {cast}:2: corrupt event: expected [time, code, data]"


@pytest.mark.parametrize("version", [2, 3])
def test_the_tail_of_a_file_is_its_last_whole_events(tmp_path: Path, version: int) -> None:
    # The live view re-wraps a pane from the end of its recording (read_cast_tail).
    events = events_with_steps(3000)
    path = tmp_path / "pane-0.cast"
    path.write_bytes(encoded(events, version) + b'[99, "o", "torn')
    tail, before = read_cast_tail(path, 4096, codes=("o",))
    outputs = [e for e in events if e.code == "o"]
    if version == 3:  # intervals: read whole, times exact
        assert (tail, before) == (outputs, 0)
        return
    assert 0 < len(tail) < len(outputs) and tail == outputs[-len(tail):]
    assert sum(len(json.dumps(list(e), ensure_ascii=False)) + 1 for e in tail) <= 4096
    assert before > 0
    whole, nothing = read_cast_tail(path, 10**9)
    assert whole == events and nothing == 0
