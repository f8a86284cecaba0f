"""Small terminals (issue 10 point 3), driven in tmux at 80x24 as a person
would: no pane smaller than 40x5, hidden panes cycled in with `m`, sideways
scrolling, wrap per pane, zoom re-wrapping, help and header that fit."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from tmuxdriver import Tmux
from tmuxdriver import autotrace_argv as autotrace
from tmuxdriver import pane_titles as titles

from autotrace.view import keymap
from autotrace.view.layout import MIN_PANE_COLS, MIN_PANE_ROWS

pytestmark = pytest.mark.tmux

# Prints the pty's size at start and on every SIGWINCH: "ROWS COLS".
SIZE_REPORTER = "sh -c 'trap \"stty size\" WINCH; stty size; while :; do sleep 0.1; done'"


TMUX_SIZE = (80, 24)  # the tmux fixture's terminal (conftest)


def recorded_sizes(directory: Path) -> list[tuple[int, str]]:
    """Every pty size a pane had, as (pane, COLSxROWS): its file's header and resizes."""
    sizes = []
    for pane in json.loads((directory / "manifest.json").read_text())["panes"]:
        lines = (directory / pane["file"]).read_text().splitlines()
        header = json.loads(lines[0])
        sizes.append((pane["index"], f"{header['width']}x{header['height']}"))
        sizes.append((pane["index"], f"{pane['cols']}x{pane['rows']}"))
        sizes += [(pane["index"], event[2]) for event in map(json.loads, lines[1:])
                  if event[1] == "r"]
    return sizes


def test_80x24_with_four_tracers_shows_what_fits_and_cycles_the_rest(tmux, tmp_path):
    commands = ["sleep 60.1 & echo main-out; wait"] + [
        f"echo tracer-{i}-out; sleep 60.{i}" for i in range(1, 5)]
    tmux.start(autotrace(tmp_path, *commands))
    screen = tmux.wait_for(r"\+3 hidden \(m\)")
    assert titles(screen) == [0, 1], screen  # 80 columns hold one 40-column pane across
    assert re.search(r"Running\s+\+3 hidden \(m\)\s+00:00:\d\d", screen.split("\n")[0])
    assert "m more panes" in screen
    for shown in (2, 3, 4, 1):
        tmux.send("m")
        screen = tmux.wait_for(f"tracer-{shown}-out")
        assert titles(screen) == [0, shown], screen
    tmux.send("q")
    tmux.exit_status()
    sizes = recorded_sizes(tmp_path / "rec")
    assert {index for index, _ in sizes} == {0, 1, 2, 3, 4}
    for index, size in sizes:
        cols, rows = map(int, size.split("x"))
        assert cols >= MIN_PANE_COLS and rows >= MIN_PANE_ROWS, (index, size, sizes)


def test_a_long_line_scrolls_sideways_and_wrap_toggles(tmux, tmp_path):
    # (split by empty strings: the title, which shows the command, must not match)
    long_line = "printf 'STA%sRT%0145dFINI%sSH\\n' '' 0 ''; " + SIZE_REPORTER
    tmux.start(autotrace(tmp_path, long_line, "sleep 60.25"))
    screen = tmux.wait_for("FINISH")
    assert "START" in screen  # wrapped: all of it shows
    tmux.send("w")
    screen = tmux.wait_for(r"wrap off \(320 columns")
    tmux.wait_for(r"(?m)^10 320\s*$")  # the program has the wide pty
    screen = tmux.wait_gone("FINISH")  # re-wrapped to 320 columns: one row, cut at 80
    start_row = next(line for line in screen.split("\n") if "START" in line)
    assert len(start_row.rstrip()) == 80 and "nowrap" in screen
    tmux.send(">")  # half a place: 40 columns
    screen = tmux.wait_for("from 41")
    assert "START" not in screen
    tmux.send(">")  # up to the end of the widest line, no further
    screen = tmux.wait_for("FINISH")
    assert "from 77" in screen
    tmux.send(">")
    tmux.wait_for("nothing further right")
    tmux.send("<")
    tmux.send("<")
    tmux.wait_for("START")
    tmux.send("w")
    tmux.wait_for(r"(?m)^10 320\s*\n10 80\s*$")
    screen = tmux.wait_for("wrap on")
    assert "START" in screen and "FINISH" in screen and "nowrap" not in screen
    tmux.send("q")
    tmux.exit_status()


def test_zoom_gives_the_program_the_zoomed_size_and_unzoom_its_own(tmux, tmp_path):
    tmux.start(autotrace(tmp_path, "sleep 60.5", SIZE_REPORTER))
    tmux.wait_for(r"(?m)^10 80\s*$")
    tmux.send("1")
    tmux.wait_for(r"(?m)^21 80\s*$")
    tmux.send("1")
    screen = tmux.wait_for(r"(?m)^21 80\s*\n10 80\s*$")
    assert titles(screen) == [0, 1]
    tmux.send("q")
    tmux.exit_status()
    resizes = [size for index, size in recorded_sizes(tmp_path / "rec") if index == 1]
    assert "80x21" in resizes and resizes[-1] == "80x10", resizes


def test_zooming_an_exited_pane_re_wraps_its_text(tmp_path):
    # Side by side at 100 columns, the main pane is 50 wide: its 100-character
    # line wraps. Zoomed after the session ended, the line is re-wrapped to
    # the zoomed width from the recording: one row again.
    tmux = Tmux(cols=100, rows=24)
    try:
        tmux.start(autotrace(tmp_path, "printf 'HE%sAD%092dTA%sIL\\n' '' 0 ''", "sleep 0.3",
                             options=("-v", "--grace", "0.2")))
        screen = tmux.wait_for("ENDED")
        assert not any("HEAD" in line and "TAIL" in line for line in screen.split("\n"))
        tmux.send("0")
        screen = tmux.wait_for(r"HEAD0+TAIL")
        tmux.send("0")
        screen = tmux.wait_for(r"1  exited")
        assert not re.search("HEAD0+TAIL", screen), "back to its place: wrapped again"
        tmux.send("q")
        tmux.exit_status()
    finally:
        tmux.kill()


def test_help_fits_80x24_in_pages(tmux, tmp_path):
    tmux.start(autotrace(tmp_path, "sleep 60.75", "sleep 60.8"))
    tmux.wait_for("sleep 60.8")
    tmux.send("h")
    pages = [tmux.wait_for(r"autotrace keys \(page 1/\d\)")]
    count = int(re.search(r"page 1/(\d)", pages[0]).group(1))
    for number in range(2, count + 1):
        tmux.send("Space")
        pages.append(tmux.wait_for(f"autotrace keys \\(page {number}/{count}\\)"))
    text = " ".join(" ".join(pages).split())
    for keys, meaning in keymap.help_rows({keymap.LIVE}):
        assert " ".join(keys.split()) in text
        assert " ".join(meaning.split()) in text, meaning  # wrapped, never cut
    tmux.send("Space")  # the last page: any key closes
    tmux.wait_gone("autotrace keys")
    tmux.send("q")
    tmux.exit_status()


def test_a_replay_at_80x24_hides_what_does_not_fit_and_scrolls_sideways(tmux, tmp_path):
    # The demo's panes were recorded 100 columns wide: 80 show, `>` the rest.
    demo = Path(__file__).resolve().parent.parent / "recordings" / "dns-lookup"
    tmux.start([sys.executable, "-m", "autotrace", "replay", "--paused", str(demo)])
    tmux.wait_for(r"\+1 hidden \(m\)")
    tmux.send("G")
    screen = tmux.wait_for(r"(?m)^ 1  .*cropped (\d+→\d+ rows, )?100→80 cols  strace")
    assert titles(screen) == [0, 1]
    tmux.send("Tab")  # strace's pane, whose lines are longer than 80
    tmux.send(">")  # 40 columns, but its widest line ends at 100: 20
    tmux.wait_for(r"(?m)^ 1  .*cropped (\d+→\d+ rows, )?100→80 cols from 21  strace")
    tmux.send("m")
    screen = tmux.wait_for(r"2  exited")
    assert titles(screen) == [0, 2]
    tmux.send("q")
    assert tmux.exit_status() == 0


def test_min_pane_lets_a_user_choose_smaller_panes(tmux, tmp_path):
    commands = ["sleep 61.1 & echo main-out; wait"] + [
        f"echo tracer-{i}-out; sleep 61.{i + 1}" for i in range(1, 5)]
    tmux.start(autotrace(tmp_path, *commands, options=("--min-pane", "20x3")))
    tmux.wait_for(r"\+1 hidden \(m\)")
    assert titles(tmux.wait_for("tracer-3-out")) == [0, 1, 2, 3]  # the old 26-column panes
    tmux.send("q")
    tmux.exit_status()
    sizes = [tuple(map(int, size.split("x"))) for _, size in recorded_sizes(tmp_path / "rec")]
    assert all(cols >= 20 and rows >= 3 for cols, rows in sizes)
    assert any(cols < 40 for cols, _ in sizes), sizes
