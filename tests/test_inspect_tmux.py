"""Reading a session in the view, driven in tmux as a person would: panes
bigger than their place (cropping), time-sync to the moment being read, the
status line's moment, replay's typed-time jump, and search over every pane.

The expected screens come from the recording itself, emulated in full at
its recorded size; the layout's rects say where each pane is on the screen.
"""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path

import pytest
from conftest import AUTOTRACE, REPO
from tmuxdriver import Tmux

from autotrace.format.recording import PaneRecord, RecordingWriter, SessionRecord
from autotrace.view.multipane import MultiPaneView
from autotrace.view.screen import PaneScreen

pytestmark = pytest.mark.tmux

DEMO = REPO / "recordings" / "dns-lookup"


def start_replay(tmux: Tmux, *args: str) -> None:
    tmux.start([*AUTOTRACE, "replay", *args], cwd=REPO)


def pane_events(directory: Path, index: int) -> tuple[dict, list[list]]:
    lines = (directory / f"pane-{index}.cast").read_text().splitlines()
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:] if line.strip()]


def final_screen(directory: Path, index: int,
                 size: tuple[int, int] | None = None) -> list[str]:
    """The pane's last screen at its recorded size, every event emulated; or
    all of its output at `size`, as a zoom re-wraps it."""
    header, events = pane_events(directory, index)
    screen = PaneScreen(*(size or (header["width"], header["height"])))
    for _, code, data in events:
        if code == "o":
            screen.feed(data)
        elif code == "r" and size is None:
            screen.resize(*(int(n) for n in data.split("x")))
    screen.catch_up(skip=False)
    return [row.rstrip() for row in screen.text()]


def rects(cols: int, rows: int, panes: int) -> dict:
    view = MultiPaneView(cols, rows)
    for i in range(panes):
        view.add_pane(i, "", 10, 5)
    return view.arrangement()


def pane_area(screen: str, rect) -> tuple[str, list[str]]:
    """(title row, content rows) of the pane drawn in `rect`, without its border."""
    lines = screen.split("\n")
    border = 1 if rect.x > 0 else 0
    area = [line.ljust(rect.x + rect.width)[rect.x + border:rect.x + rect.width]
            for line in lines[rect.y:rect.y + rect.height]]
    return area[0], [row.rstrip() for row in area[1:]]


# ---------------------------------------------------------------- item 7: cropping


def test_demo_in_a_smaller_terminal_shows_the_newest_rows_marked_cropped():
    """`make demo` in 200x50: each bottom pane has 30 recorded rows and room
    for 23; at the end it must show the last 23 of what was written."""
    tmux = Tmux(cols=200, rows=50)
    try:
        start_replay(tmux, "--paused", str(DEMO))
        tmux.wait_for("PAUSED")
        tmux.send("G")
        screen = tmux.wait_for(r"END")
        places = rects(200, 50, 3)
        for index, rect in places.items():
            title, shown = pane_area(screen, rect)
            final = final_screen(DEMO, index)
            last = max(y for y, row in enumerate(final) if row)
            room, width = len(shown), rect.width - (1 if rect.x else 0)
            expected = [row[:width].rstrip() for row in final[:last + 1][-room:]]
            assert shown == expected, f"pane {index}:\n" + "\n".join(shown)
            if room < len(final):
                assert f"cropped 30→{room} rows" in title, title
        # Zoom gives a pane the room, no crop in its title, and its text
        # re-wrapped to the zoomed size (issue 10: zoom re-wraps). Lenses off
        # (`l`): the text as printed, to compare with the emulated file.
        tmux.send("l")
        tmux.send("2")
        screen = tmux.wait_for(r" 2  exited 0  (?!.*cropped)")
        zoomed = rects(200, 50, 1)[0]
        title, shown = pane_area(screen, zoomed)
        final = final_screen(DEMO, 2, (zoomed.width, zoomed.height - 1))
        assert "cropped" not in title
        assert shown == final
        tmux.send("q")
        assert tmux.exit_status() == 0
    finally:
        tmux.kill()


# ---------------------------------------------------------------- item 8: time-sync

SLOW_EVERY, FAST_EVERY, SECONDS = 0.5, 0.1, 30.0


def write_two_rates(directory: Path) -> Path:
    """Pane 0 prints `slow T` every 0.5 s, pane 1 `fast T` every 0.1 s; T is
    the line's own time, so the screen says when each line was printed."""
    directory.mkdir()
    writer = RecordingWriter(directory, SessionRecord(50, 12, 1795324418.25))
    outs = []
    for index, name in enumerate(("slow", "fast")):
        record = PaneRecord(index, "main" if index == 0 else "tracer", name, name, 50, 12,
                            pid=100 + index, start=0.0)
        outs.append((record, writer.add_pane(record)))
    lines = sorted([(round(i * SLOW_EVERY, 3), 0) for i in range(1, int(SECONDS / SLOW_EVERY))]
                   + [(round(i * FAST_EVERY + 0.013, 3), 1)
                      for i in range(1, int(SECONDS / FAST_EVERY))])
    for t, index in lines:
        outs[index][1].output(t, f"{('slow', 'fast')[index]} {t:.3f}\r\n")
    for record, _ in outs:
        record.end, record.exit_status = SECONDS, 0
    writer.close(SECONDS)
    return directory


def bottom_time(rows: list[str], name: str) -> float:
    times = [float(m.group(1)) for row in rows for m in [re.match(rf"{name} (\d+\.\d+)$", row)]
             if m]
    assert times, rows
    return times[-1]


def test_time_sync_lines_up_the_bottom_lines_after_one_k(tmp_path):
    recording = write_two_rates(tmp_path / "rec")
    fast_times = [t for t, code, data in pane_events(recording, 1)[1] if code == "o"]
    tmux = Tmux(cols=120, rows=40)
    try:
        start_replay(tmux, "--paused", str(recording))
        tmux.wait_for("PAUSED")
        tmux.send("G")
        tmux.wait_for("END")
        places = rects(120, 40, 2)
        pressed = 0
        for presses in (1, 2, 7):
            while pressed < presses:
                tmux.send("k")
                pressed += 1
            screen = tmux.wait_for(rf" 0  exited 0  {presses} lines back")
            slow_rows = pane_area(screen, places[0])[1]
            fast_rows = pane_area(screen, places[1])[1]
            moment = bottom_time(slow_rows, "slow")
            expected = max(t for t in fast_times if t <= moment)
            assert bottom_time(fast_rows, "fast") == pytest.approx(expected), screen
            # The status line names the moment: wall clock with ms, and offset.
            wall = datetime.datetime.fromtimestamp(1795324418.25 + moment).strftime(
                "%H:%M:%S.%f")[:-3]
            assert f"{wall} +{moment:.3f} s" in screen.split("\n")[0], screen
        tmux.send("q")
        assert tmux.exit_status() == 0
    finally:
        tmux.kill()


def test_replay_clock_shows_tenths_and_a_typed_time_is_jumped_to(tmp_path):
    recording = write_two_rates(tmp_path / "rec")
    tmux = Tmux(cols=120, rows=40)
    try:
        start_replay(tmux, "--paused", str(recording))
        tmux.wait_for(r"PAUSED\s+00:00\.0 / 00:30\.0")
        tmux.send(":")
        tmux.wait_for("go to time")
        tmux.type("0:12.5")
        tmux.send("Enter")
        screen = tmux.wait_for(r"PAUSED\s+00:12\.5 / 00:30\.0")
        assert bottom_time(pane_area(screen, rects(120, 40, 2)[0])[1], "slow") == 12.5
        tmux.send(":")
        tmux.type("83.5")
        tmux.send("Enter")
        tmux.wait_for(r"END\s+00:30\.0 / 00:30\.0")
        tmux.send(":")
        tmux.type("soon")
        tmux.send("Enter")
        screen = tmux.wait_for("not a time: soon")
        assert re.search(r"END\s+00:30\.0", screen)
        tmux.send("q")
        assert tmux.exit_status() == 0
    finally:
        tmux.kill()


# ---------------------------------------------------------------- item 9: search


def test_live_search_finds_other_panes_and_the_start_through_the_recording(tmp_path):
    # Pane 1 alone holds `needle`; pane 0's match is older than its 50 lines
    # of history: only the recording still has it.
    tmux = Tmux(cols=120, rows=40)
    try:
        tmux.start([*AUTOTRACE, "-l", str(tmp_path / "rec"), "--history", "50",
                    "echo needle-zero; seq 1 400; sleep 60",
                    "for i in $(seq 0 29); do if [ $i = 7 ]; then echo other line $i needle-one;"
                    " else echo other line $i; fi; done; sleep 60"],
                   cwd=REPO)
        tmux.wait_for(r"(?m)^400$")
        tmux.wait_for("other line 29")
        tmux.send("/")
        tmux.type("needle-one")
        tmux.send("Enter")
        screen = tmux.wait_for(r"/needle-one: pane 1 at \d+\.\d s")
        assert "other line 7 needle-one" in screen
        # The match is highlighted (drawn inverted) where it is shown.
        coloured = tmux.tmux("capture-pane", "-p", "-e", "-t", tmux.session)
        assert re.search(r"\x1b\[[0-9;]*7[0-9;]*mneedle-one", coloured), coloured
        tmux.send("/")
        tmux.type("needle-zero")
        tmux.send("Enter")
        screen = tmux.wait_for(r"/needle-zero: pane 0 at \d+\.\d s", timeout=30)
        assert re.search(r"(?m)^needle-zero\s*$", screen), screen
        assert "from the recording" in screen
        tmux.send("q")
        tmux.exit_status()
    finally:
        tmux.kill()


def search_for(tmux: Tmux, text: str) -> None:
    tmux.send("/")
    tmux.type(text)
    tmux.send("Enter")


def test_live_search_reaches_the_middle_of_a_long_session_through_the_recording(tmp_path):
    # 3000 numbered lines, 50 kept in memory: line 1500 is older than the
    # 16 x 50 lines the view used to rebuild and not in the first screens.
    tmux = Tmux(cols=120, rows=40)
    try:
        tmux.start([*AUTOTRACE, "-l", str(tmp_path / "rec"), "--history", "50",
                    "seq -f 'number %g' 1 3000", "sleep 0.2; echo tracer line; sleep 60"],
                   cwd=REPO)
        tmux.wait_for("number 3000")
        tmux.wait_for("tracer line")
        search_for(tmux, "^number 1500$")  # `/` pauses: the session goes on unseen
        screen = tmux.wait_for(r"/\^number 1500\$: pane 0 at \d+\.\d s \(from the recording\)",
                               timeout=30)
        assert re.search(r"(?m)^number 1500\s*(│|$)", screen), screen
        coloured = tmux.tmux("capture-pane", "-p", "-e", "-t", tmux.session)
        assert re.search(r"\x1b\[[0-9;]*7[0-9;]*mnumber 1500", coloured), coloured
        search_for(tmux, "^number 1[05]00$")
        tmux.wait_for(r"/\^number 1\[05\]00\$: pane 0 at \d+\.\d s \(from the recording\)")
        tmux.send("n")  # older: 1000, also only in the recording
        screen = tmux.wait_for(r"(?m)^number 1000\s*(│|$)")
        assert "(from the recording)" in screen and "number 1500" not in screen
        tmux.send("N")  # newer again: back to 1500
        tmux.wait_for(r"(?m)^number 1500\s*(│|$)")
        tmux.send("q")
        tmux.exit_status()
    finally:
        tmux.kill()


def test_live_search_after_the_session_ended_finds_old_lines_at_once(tmp_path):
    tmux = Tmux(cols=120, rows=40)
    try:
        tmux.start([*AUTOTRACE, "-l", str(tmp_path / "rec"), "--history", "50",
                    "seq -f 'number %g' 1 3000"], cwd=REPO)
        tmux.wait_for("ENDED", timeout=30)
        search_for(tmux, "^number 1234$")
        screen = tmux.wait_for(r"/\^number 1234\$: pane 0 at \d+\.\d s \(from the recording\)",
                               timeout=30)
        assert re.search(r"(?m)^number 1234\s*$", screen), screen
        assert "ENDED" in screen
        coloured = tmux.tmux("capture-pane", "-p", "-e", "-t", tmux.session)
        assert re.search(r"\x1b\[[0-9;]*7[0-9;]*mnumber 1234", coloured), coloured
        # A line memory holds is found there, and only there: the recording's
        # copy of it is not shown again.
        tmux.send("G")
        search_for(tmux, "^number 2999$")
        screen = tmux.wait_for(r"/\^number 2999\$: pane 0 at \d+\.\d s\s")
        assert "(from the recording)" not in screen
        tmux.send("n")
        tmux.wait_for(r"/\^number 2999\$: no earlier match in any pane", timeout=30)
        tmux.send("q")
        assert tmux.exit_status() == 0
    finally:
        tmux.kill()


def test_replay_search_visits_every_pane_and_highlights(tmp_path):
    recording = write_two_rates(tmp_path / "rec")
    tmux = Tmux(cols=120, rows=40)
    try:
        start_replay(tmux, "--paused", str(recording))
        tmux.wait_for("PAUSED")
        tmux.send("/")
        tmux.type("fast 7\\.213")
        tmux.send("Enter")
        screen = tmux.wait_for(r"/fast 7\\\.213: pane 1 at 7\.2 s")
        assert re.search(r"PAUSED\s+00:07\.2", screen)
        coloured = tmux.tmux("capture-pane", "-p", "-e", "-t", tmux.session)
        assert re.search(r"\x1b\[[0-9;]*7[0-9;]*mfast 7\.213", coloured), coloured
        tmux.send("q")
        assert tmux.exit_status() == 0
    finally:
        tmux.kill()
