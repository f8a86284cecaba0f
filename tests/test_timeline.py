"""`autotrace cat` and `autotrace info`: a recording as text a person can grep."""

from __future__ import annotations

import re

import pytest

from tests.conftest import (
    RecordingFiles,
    assert_one_line_error,
    run_autotrace,
    start_autotrace,
    trace,
)

LINE = re.compile(r"^ *(\d+\.\d{3}) \[(\d+)\] (.*)$")


def cat(*args) -> list[tuple[float, int, str]]:
    result = run_autotrace(["cat", *args])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = []
    for line in result.stdout.splitlines():
        match = LINE.match(line)
        assert match, f"not a timeline line: {line!r}"
        lines.append((float(match[1]), int(match[2]), match[3]))
    return lines


@pytest.fixture(scope="module")
def interleaved(tmp_path_factory) -> RecordingFiles:
    """Two panes taking turns every 0.3 s: a1 b1 a2 b2 a3 b3 by the clock."""
    main = "sh -c 'sleep 0.3; echo a1; sleep 0.6; echo a2; sleep 0.6; echo a3'"
    tracer = "sh -c 'echo b0; sleep 0.6; echo b1; sleep 0.6; echo b2; sleep 0.6; echo b3'"
    result, rec = trace(tmp_path_factory.mktemp("timeline"), main, tracer)
    assert result.returncode == 0, result.stderr
    return rec


def test_cat_merges_panes_in_time_order(interleaved) -> None:
    lines = cat(interleaved.directory)
    times = [t for t, _, _ in lines]
    assert times == sorted(times)
    # The same order the raw event times give, read independently of autotrace.
    raw = sorted((t, index, data.strip())
                 for index in (0, 1)
                 for t, code, data in interleaved.pane_file(index).events if code == "o")
    assert [(pane, text) for _, pane, text in lines] == [(pane, text) for _, pane, text in raw]
    texts = [text for _, _, text in lines]
    assert texts == ["b0", "a1", "b1", "a2", "b2", "a3", "b3"]
    assert [pane for _, pane, _ in lines] == [1, 0, 1, 0, 1, 0, 1]


def test_cat_times_are_the_recorded_offsets(interleaved) -> None:
    lines = cat(interleaved.directory)
    raw = {data.strip(): t for index in (0, 1)
           for t, code, data in interleaved.pane_file(index).events if code == "o"}
    for t, _, text in lines:
        assert abs(t - raw[text]) < 0.0005


@pytest.mark.parametrize("pane", [0, 1])
def test_cat_pane_shows_only_that_pane(interleaved, pane: int) -> None:
    lines = cat(interleaved.directory, "--pane", str(pane))
    assert {p for _, p, _ in lines} == {pane}
    expected = ["a1", "a2", "a3"] if pane == 0 else ["b0", "b1", "b2", "b3"]
    assert [text for _, _, text in lines] == expected


@pytest.mark.parametrize("bad", ["2", "-1", "99"])
def test_cat_of_a_pane_that_does_not_exist(interleaved, bad: str) -> None:
    line = assert_one_line_error(run_autotrace(["cat", interleaved.directory, "--pane", bad]))
    assert f"no pane {bad}" in line and "0 to 1" in line


def test_cat_pane_that_is_not_a_number_is_a_usage_error(interleaved) -> None:
    result = run_autotrace(["cat", interleaved.directory, "--pane", "main"])
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_cat_strips_escape_sequences(tmp_path) -> None:
    colours = r"printf '\033[1;31mred\033[0m plain \033]0;a-title\007after\033[2K\n'"
    osc52 = r"printf 'copy\033]52;c;aGVsbG8=\007 done\033[?1049h\n'"
    result, rec = trace(tmp_path, f"sh -c \"{colours}; {osc52}\"")
    assert result.returncode == 0, result.stderr
    assert "\x1b[1;31m" in rec.output(0)  # recorded as printed
    shown = run_autotrace(["cat", rec.directory])
    assert shown.returncode == 0
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    texts = [LINE.match(line)[3] for line in shown.stdout.splitlines()]
    assert texts == ["red plain after", "copy done"]


def test_cat_keeps_text_that_is_not_a_whole_line(tmp_path) -> None:
    result, rec = trace(tmp_path, "printf 'no newline at the end'")
    assert result.returncode == 0
    assert [text for _, _, text in cat(rec.directory)] == ["no newline at the end"]


def test_cat_output_can_be_cut_short_by_the_reader(tmp_path) -> None:
    # `autotrace cat REC | head -1`: the pipe closes long before the end; not an error.
    result, rec = trace(tmp_path, "seq 1 50000")
    assert result.returncode == 0
    writer = start_autotrace(["cat", rec.directory])
    first = writer.stdout.readline()
    writer.stdout.close()
    _, stderr = writer.communicate(timeout=60)
    assert LINE.match(first.rstrip("\n"))
    assert writer.returncode == 0
    assert "Traceback" not in stderr and "internal error" not in stderr


def test_info_shows_what_happened_in_each_pane(tmp_path) -> None:
    # The main lives long enough for cat, which (a sampler) starts once it runs.
    result, rec = trace(tmp_path, "sh -c 'echo hello; sleep 0.3; exit 3'", "cat /proc/PID/status",
                        "sh -c 'kill -KILL $$'")
    assert result.returncode == 3
    info = run_autotrace(["info", rec.directory])
    assert info.returncode == 0, info.stderr
    text = info.stdout
    manifest = rec.manifest
    assert f"recording:  {rec.directory}" in text
    assert manifest["started_at"] in text
    assert f"duration:   {manifest['duration']:.3f}s" in text
    assert "terminal:   80x24" in text
    sections = text.split("\npane ")[1:]
    assert len(sections) == 3
    for pane, section in zip(manifest["panes"], sections):
        assert section.startswith(f"{pane['index']} ({pane['role']})")
        assert f"command:  {pane['command']}" in section
        assert f"pid:      {pane['pid']}" in section
        assert f"start:    {pane['start']:.3f}s" in section
        assert f"end: {pane['end']:.3f}s" in section
        assert f"bytes:    {pane['bytes']}" in section
        assert pane["bytes"] == len(rec.output(pane["index"]).encode())
    main_pid = manifest["panes"][0]["pid"]
    assert f"ran as:   cat /proc/{main_pid}/status" in sections[1]  # as given, and as run
    assert "ran as" not in sections[0]
    assert "status:   exited 3" in sections[0]
    assert "status:   exited 0" in sections[1]
    assert "status:   killed by SIGKILL" in sections[2]


def test_cat_keeps_tabs(tmp_path) -> None:
    # /proc files and many tools align with tabs; `cat` must keep them greppable.
    result, rec = trace(tmp_path, "printf 'Pid:\\t42\\n'")
    assert result.returncode == 0
    timeline = run_autotrace(["cat", rec.directory]).stdout
    assert "Pid:\t42" in timeline


def test_positioned_lines_say_where_a_screen_shows_each_line_last() -> None:
    from autotrace.export.text import PositionedLines

    lines = PositionedLines()
    assert lines.feed("a\r\nb\r\nc") == [("a", 3), ("b", 6)]
    data = "d\r\n\x1b[31mred\x1b[0m\r\nx\x1b[2Jy\n"
    # `x` is ended by the clear: a screen cut after it would no longer show it.
    assert lines.feed(data) == [("cd", 3), ("red", 17), ("x", 18), ("y", len(data))]
    assert data[18:].startswith("\x1b[2J")
