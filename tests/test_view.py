"""The multi-pane view's state and keys, without a terminal: keys in, what a
person would see (frame text) and what the controller must do out."""

from __future__ import annotations

import pytest

from autotrace.export.search import PaneTextSearch
from autotrace.format.asciicast import CastEvent
from autotrace.view.multipane import MultiPaneView
from autotrace.view.screen import PaneScreen


def view_with(panes: int, cols: int = 120, rows: int = 40, **kw) -> MultiPaneView:
    view = MultiPaneView(cols, rows, **kw)
    for i in range(panes):
        view.add_pane(i, f"command-{i}", 80, 24)
        view.set_state(i, "running")
    view.relayout()
    return view


def screen_text(view: MultiPaneView) -> str:
    return "\n".join(str(line.s if hasattr(line, "s") else line) for line in view.frame())


def fill(view: MultiPaneView, index: int, count: int, tag: str = "line") -> None:
    view.feed(index, "".join(f"{tag} {n}\r\n" for n in range(count)), 0.0)
    view.panes[index].screen.catch_up()


def test_every_pane_is_drawn_with_its_title_and_output() -> None:
    view = view_with(3)
    for i in range(3):
        fill(view, i, 3, f"out{i}")
    text = screen_text(view)
    for i in range(3):
        assert f" {i}  running  command-{i}" in text
        assert f"out{i} 2" in text


def test_digit_zooms_and_again_unzooms() -> None:
    view = view_with(3)
    assert view.handle_key("2").name == "resize"
    assert list(view.arrangement()) == [2]
    assert view.focus == 2
    view.handle_key("2")
    assert list(view.arrangement()) == [0, 1, 2]
    view.handle_key("1")
    view.handle_key("z")
    assert list(view.arrangement()) == [0, 1, 2]


def test_zooming_a_pane_that_does_not_exist_says_so() -> None:
    view = view_with(2)
    view.handle_key("7")
    assert view.zoom is None and "no pane 7" in view.message


def test_m_cycles_hidden_panes_keeping_the_main_pane() -> None:
    view = view_with(6)
    before = list(view.arrangement())
    assert len(before) == 4 and before[0] == 0
    view.handle_key("m")
    after = list(view.arrangement())
    assert 0 in after and set(after) != set(before)
    assert "m more panes" in view.footer_keys()


def test_tab_moves_focus_between_shown_panes() -> None:
    view = view_with(3)
    view.handle_key("\t")
    assert view.focus == 1
    view.handle_key("KEY_BTAB")
    assert view.focus == 0


def test_pause_continue_and_quit_are_actions_for_the_controller() -> None:
    view = view_with(2)
    assert view.handle_key("p").name == "pause"
    assert view.handle_key("c").name == "resume"
    for key in ("q", "KEY_ESCAPE", "\x04"):
        assert view.handle_key(key).name == "quit"


def test_scrolling_only_while_paused_and_time_sync_follows() -> None:
    view = view_with(2)
    fill(view, 0, 200)
    fill(view, 1, 200, "other")
    view.handle_key("k")
    assert view.panes[0].scroll == 0, "live: k does not scroll"
    view.paused = True
    view.handle_key("k")
    assert view.panes[0].scroll == 1
    view.handle_key("g")
    assert view.panes[0].scroll == view.panes[0].screen.max_scroll
    view.handle_key("G")
    assert view.panes[0].scroll == 0
    view.handle_key("t")
    assert not view.sync and "time-sync off" in view.message


def test_search_prompt_returns_the_pattern_and_highlights_a_match() -> None:
    view = view_with(1)
    fill(view, 0, 100)
    view.paused = True
    view.handle_key("/")
    for key in "line 4[2]":
        view.handle_key(key)
    action = view.handle_key("KEY_ENTER")
    assert action.name == "search" and action.arg == "line 4[2]"
    view.run_search(action.arg)
    hit = view.panes[0].highlight
    assert hit is not None
    assert "line 42" in view.panes[0].screen.text(hit.scroll)[hit.row]


def test_bad_regex_is_a_message_not_an_error() -> None:
    view = view_with(1)
    view.run_search("(")
    assert view.message.startswith("bad regex")


def test_marker_prompt_names_the_marker() -> None:
    view = view_with(1)
    view.handle_key("M")
    for key in "boot":
        view.handle_key(key)
    action = view.handle_key("\r")
    assert (action.name, action.arg) == ("mark", "boot")


def test_help_lists_every_key_and_any_key_closes_it() -> None:
    view = view_with(1)
    view.handle_key("h")
    text = screen_text(view)
    for keys in ("q  Esc  Ctrl-D", "0-9", "p", "/  n N", "M", "tcpdump"):
        assert keys in text
    view.handle_key("x")
    assert not view.help_open


@pytest.mark.parametrize(("cols", "rows"), [(30, 20), (120, 5)])
def test_a_small_terminal_gets_a_message_instead_of_panes(cols: int, rows: int) -> None:
    view = view_with(2, cols=cols, rows=rows)
    assert view.too_small()
    assert "terminal too small" in screen_text(view)


def test_colours_toggle_and_cells_keep_their_colour() -> None:
    view = view_with(1)
    view.feed(0, "\x1b[31mred\x1b[0m\r\n", 0.0)
    view.panes[0].screen.catch_up()
    coloured = "".join(str(line) for line in view.frame())
    assert "\x1b[31m" in coloured
    view.handle_key("l")
    plain = "".join(str(line) for line in view.frame())
    assert "red" in plain and "\x1b[31mred" not in plain


# ---------------------------------------------------------------- cropping


def content_rows(view: MultiPaneView, index: int) -> tuple[str, list[str]]:
    """(title, content rows) of a pane as drawn."""
    rect = view.arrangement()[index]
    rows = view._pane_rows(index, rect)
    border = 1 if rect.x > 0 else 0
    return rows[0].s, [row.s[border:].rstrip() for row in rows[1:]]


def test_a_screen_larger_than_its_place_shows_its_newest_rows_marked_cropped() -> None:
    # A replay keeps the recorded size: 30 rows recorded, room for fewer.
    view = MultiPaneView(100, 20, fixed_screens=True)
    view.add_pane(0, "tall", 100, 30)
    view.add_pane(1, "other", 100, 30)
    view.relayout()
    fill(view, 0, 25)
    title, rows = content_rows(view, 0)
    room = len(rows)
    assert room < 25
    assert rows == [f"line {n}" for n in range(25 - room, 25)], "ends at the last line written"
    assert f"cropped 30→{room} rows" in title
    view.handle_key("0")  # zoomed: the room grows, so does what is shown
    title, rows = content_rows(view, 0)
    assert rows[-1] == "line 24" and len([r for r in rows if r]) == min(25, len(rows))


def test_a_pty_larger_than_its_place_before_the_resize_reaches_it_is_cropped_alike() -> None:
    view = MultiPaneView(60, 14)
    view.add_pane(0, "wide", 90, 40)  # the size it had before the terminal shrank
    fill(view, 0, 33)
    title, rows = content_rows(view, 0)
    assert rows[-1] == "line 32" and rows[0] == f"line {33 - len(rows)}"
    assert f"40→{len(rows)} rows, 90→60 cols" in title


def test_scrolling_a_cropped_pane_reaches_its_first_line() -> None:
    view = MultiPaneView(100, 20, fixed_screens=True)
    view.add_pane(0, "tall", 100, 30)
    view.relayout()
    fill(view, 0, 25)
    view.paused = True
    view.handle_key("g")
    _, rows = content_rows(view, 0)
    assert rows[0] == "line 0"
    view.handle_key("G")
    _, rows = content_rows(view, 0)
    assert rows[-1] == "line 24"


# ---------------------------------------------------------------- time-sync


def feed_times(view: MultiPaneView, index: int, name: str, every: float, until: float) -> None:
    t = every
    while t < until:
        view.feed(index, f"{name} {t:.2f}\r\n", t)
        t = round(t + every, 6)
    view.panes[index].screen.catch_up(skip=False)


def bottom_text(view: MultiPaneView, index: int) -> str:
    return [row for row in content_rows(view, index)[1] if row][-1]


def test_time_sync_aligns_the_bottom_lines_at_the_moment_being_read() -> None:
    view = view_with(2, cols=120, rows=30)
    feed_times(view, 0, "slow", 1.0, 60)
    feed_times(view, 1, "fast", 0.1, 60)
    view.paused = True
    view.started_unix = 1_800_000_000.0
    for _ in range(3):
        view.handle_key("k")
        moment = float(bottom_text(view, 0).split()[1])
        shown = float(bottom_text(view, 1).split()[1])
        assert shown <= moment < shown + 0.1 + 1e-9, (moment, shown)
    assert view.moment_text().endswith(f"+{moment:.3f} s")
    header = view._header().s
    assert view.moment_text() in header and ".000 +" in header
    view.handle_key("G")  # the focused pane's tail: every pane at its tail
    assert bottom_text(view, 1) == "fast 59.90"


# ---------------------------------------------------------------- search


def run(view: MultiPaneView, text: str) -> int:
    """Search as the loop does: start, then a step a turn until done; the steps taken."""
    view.run_search(text)
    steps = 1
    while view.search_job is not None:
        view.search_step()
        steps += 1
    return steps


def test_search_looks_in_every_pane_focused_first_and_n_goes_across() -> None:
    view = view_with(3)
    fill(view, 0, 50, "main")
    fill(view, 1, 50, "one")
    view.feed(1, "needle in one\r\n", 1.0)
    fill(view, 2, 10, "two")
    view.feed(2, "needle in two\r\n", 2.0)
    view.panes[1].screen.catch_up()
    view.panes[2].screen.catch_up()
    view.paused = True
    run(view, "needle")
    assert view.focus == 1 and view.message == "/needle: pane 1 at 1.0 s"
    view.handle_key("n")
    while view.search_job is not None:
        view.search_step()
    assert view.focus == 2 and view.message.startswith("/needle: pane 2 at 2.0 s")
    view.handle_key("n")  # round all the panes: back to the first match
    while view.search_job is not None:
        view.search_step()
    assert view.focus == 1 and view.message == "/needle: pane 1 at 1.0 s"
    view.handle_key("N")
    while view.search_job is not None:
        view.search_step()
    assert view.focus == 2, "N walks back the way n came"
    run(view, "nowhere")
    assert view.message == "/nowhere: no earlier match in any pane"


def test_matches_are_highlighted_in_every_pane_shown() -> None:
    view = view_with(2)
    view.feed(0, "a needle here\r\n", 0.0)
    view.feed(1, "another needle\r\n", 0.0)
    for pane in view.panes:
        pane.screen.catch_up()
    run(view, "needle")
    drawn = [str(line) for line in view.frame()]
    inverted = [line for line in drawn if "\x1b[7m" in line and "needle" in line]
    assert len(inverted) == 2, drawn  # one row of each pane
    assert all("\x1b[7m\x1b[1mneedle\x1b[0m" in line for line in inverted)


def test_a_long_search_runs_in_slices_with_progress_and_esc_cancels() -> None:
    view = view_with(2, history=50_000)
    for index in range(2):
        view.feed(index, "".join(f"line {n}\r\n" for n in range(20_000)), 0.0)
        view.panes[index].screen.catch_up(skip=False)
    view.paused = True
    view.run_search("nowhere")
    assert view.search_job is not None
    assert "searching /nowhere… " in view._footer().s and "Esc: cancel" in view._footer().s
    view.search_step()
    assert 0 < view.search_job.progress() < 1
    assert view.handle_key("KEY_ESCAPE") is None, "Esc cancels the search, it does not quit"
    assert view.search_job is None and view.message == "search cancelled"
    assert run(view, "nowhere") > 10


def recorded_view(lines: list[str], per_event: int = 1000, history: int = 20,
                  panes: int = 1) -> tuple[MultiPaneView, list[CastEvent]]:
    """A paused view whose pane 0 printed `lines`, `per_event` to a recorded
    event at 1 s, 2 s, ...; memory keeps `history` lines. Its recorded text
    is searched by the real scanner over those events (the live view hands
    it the pane file's)."""
    events = [CastEvent(1.0 + k, "o", "".join(f"{line}\r\n" for line in lines[i:i + per_event]))
              for k, i in enumerate(range(0, len(lines), per_event))]
    opened: list[int] = []

    def recorded(index: int, pattern, backwards: bool, bound, held) -> PaneTextSearch:
        opened.append(index)
        screen = view.panes[index].screen
        return PaneTextSearch(iter(events if index == 0 else []), pattern, backwards, bound,
                              held, (screen.cols, screen.rows), view.history)

    view = MultiPaneView(120, 44, history=history, recorded=recorded)
    for index in range(panes):
        view.add_pane(index, f"pane {index}", 80, 20)
    view.relayout()
    for event in events:
        view.feed(0, event.data, event.t)
    for pane in view.panes:
        pane.screen.catch_up()
    view.paused = True
    return view, events


def go(view: MultiPaneView, key: str) -> None:
    view.handle_key(key)
    while view.search_job is not None:
        view.search_step()


def highlighted_rows(view: MultiPaneView) -> list[str]:
    return [str(line) for line in view.frame() if "\x1b[7m" in str(line)]


def test_search_goes_on_into_the_recording_past_what_memory_holds() -> None:
    # 3000 lines, memory holds the last 40: line 1500 is neither there nor
    # in the session's first screens; only the recording has it.
    view, _ = recorded_view([f"line {n}" for n in range(3000)])
    assert view.panes[0].truncated()
    steps = run(view, "^line 1500$")
    assert steps > 1, "the recording is read in slices, a step a turn"
    assert view.message == "/^line 1500$: pane 0 at 2.0 s (from the recording)"
    title, rows = content_rows(view, 0)
    assert "line 1500" in rows and "from the recording" in title
    assert any("line 1500" in row for row in highlighted_rows(view))
    view.handle_key("G")  # back to what memory holds
    assert "line 2999" in content_rows(view, 0)[1]


def test_n_and_N_cross_between_memory_and_the_recording_each_match_once() -> None:
    needles = {100, 1500, 2900, 2990}  # 2990 is in memory; 2900 was printed with it
    lines = [f"line {n}{' needle' if n in needles else ''}" for n in range(3000)]
    view, _ = recorded_view(lines)
    seen = []
    run(view, "needle")
    seen.append(view.message)
    for _ in range(4):
        go(view, "n")
        seen.append(view.message)
    assert seen == ["/needle: pane 0 at 3.0 s",
                    "/needle: pane 0 at 3.0 s (from the recording)",
                    "/needle: pane 0 at 2.0 s (from the recording)",
                    "/needle: pane 0 at 1.0 s (from the recording)",
                    "/needle: no earlier match in any pane"]
    assert "line 100 needle" in content_rows(view, 0)[1]
    later = []
    for _ in range(3):
        go(view, "N")
        later.append(next(row for row in highlighted_rows(view) if "needle" in row))
    # Forward again: 1500, then 2900 from the recording, then 2990 in memory.
    assert ["1500" in later[0], "2900" in later[1], "2990" in later[2]] == [True] * 3, later
    assert view.panes[0].archives == [] and view.message == "/needle: pane 0 at 3.0 s"


def test_a_pane_whose_memory_holds_everything_is_not_read_from_the_recording() -> None:
    view, _ = recorded_view([f"line {n}" for n in range(3000)], panes=2)
    view.feed(1, "short\r\n", 1.0)
    view.panes[1].screen.catch_up()
    view.focus = 1
    run(view, "^line 7$")  # pane 1 (all in memory) first, then pane 0's recording
    assert view.message == "/^line 7$: pane 0 at 1.0 s (from the recording)"
    assert view.focus == 0


def test_a_match_in_a_hidden_pane_brings_it_on_screen() -> None:
    view = view_with(6)
    view.feed(5, "needle\r\n", 3.0)
    view.panes[5].screen.catch_up()
    assert 5 not in view.arrangement()
    run(view, "needle")
    assert view.focus == 5 and 5 in view.arrangement() and 0 in view.arrangement()
    view.handle_key("2")  # zoomed on another pane: the zoom follows the match
    run(view, "needle")
    assert list(view.arrangement()) == [5]


# ---------------------------------------------------------------- small terminals


def header(view: MultiPaneView) -> str:
    return screen_text(view).split("\n")[0]


def test_at_80x24_the_header_counts_the_hidden_panes_and_fits() -> None:
    view = view_with(5, cols=80, rows=24)
    view.status_left = "● REC /home/someone/.local/state/autotrace/recordings/20261201-a-long-name"
    view.status_right = "main: stopped (by a signal, not by autotrace) (pid 123456)"
    assert list(view.arrangement()) == [0, 1]
    text = header(view)
    assert len(text) <= 80
    assert "Running  +3 hidden (m)  00:00" in text
    assert "main: stopped" in text and "…" in text  # shortened, not cut off mid-air
    view.handle_key("1")  # zoomed: nothing is hidden by the layout
    assert "hidden" not in header(view)


def test_every_pty_is_at_least_40x5_even_in_a_tiny_terminal() -> None:
    for cols, rows in ((80, 24), (30, 6), (41, 8)):
        view = view_with(5, cols=cols, rows=rows)
        for size in view.pane_sizes().values():
            assert size[0] >= 40 and size[1] >= 5, (cols, rows, size)


def wide_line_view() -> MultiPaneView:
    view = view_with(2, cols=80, rows=24)
    assert view.handle_key("w").name == "resize"
    assert view.pane_sizes()[0] == (320, 10) and view.panes[0].screen.cols == 320
    view.feed(0, "A" * 100 + "B" * 100 + "\r\n", 0.0)
    view.panes[0].screen.catch_up()
    return view


def test_a_wide_pane_scrolls_sideways_up_to_its_widest_line() -> None:
    view = wide_line_view()
    title, rows = content_rows(view, 0)
    assert "nowrap" in title and "cropped 320→80 cols" in title
    assert rows[0] == "A" * 80
    view.handle_key(">")
    title, rows = content_rows(view, 0)
    assert rows[0] == "A" * 60 + "B" * 20 and "from 41" in title
    view.handle_key(">")
    view.handle_key(">")
    title, rows = content_rows(view, 0)
    assert rows[0] == "B" * 80 and "from 121" in title  # the line's end: no further
    view.handle_key(">")
    assert "nothing further right" in view.message
    for _ in range(4):
        view.handle_key("<")
    assert content_rows(view, 0)[1][0] == "A" * 80
    assert "at its first column" in view.message
    assert "</> sideways" in view.footer_keys()


def test_wrap_on_again_gives_the_place_width_back() -> None:
    view = wide_line_view()
    view.handle_key(">")
    view.handle_key("w")
    assert view.pane_sizes()[0] == (80, 10) and view.panes[0].screen.cols == 80
    assert view.panes[0].hscroll == 0 and "wrap on" in view.message
    assert "</> sideways" not in view.footer_keys()


def test_fixed_screens_with_no_recording_to_read_keep_their_width_and_say_so() -> None:
    view = MultiPaneView(80, 24, fixed_screens=True, replay=True)
    view.add_pane(0, "wide", 200, 10)
    view.relayout()
    view.feed(0, "x" * 199 + "END\r\n", 0.0)
    view.panes[0].screen.catch_up()
    view.handle_key("w")
    assert "keep the width they were printed at" in view.message
    assert view.panes[0].screen.cols == 200
    view.handle_key(">")
    view.handle_key(">")
    view.handle_key(">")
    view.handle_key(">")
    row = content_rows(view, 0)[1][0]
    assert len(row) == 80 and row.endswith("xE")  # its 200th column: E wrapped its ND


def test_a_new_size_rebuilds_the_screen_from_the_recording() -> None:
    asked: list[tuple[int, int, int]] = []
    answers: list[str] = []

    def rebuild(index: int, cols: int, rows: int):
        asked.append((index, cols, rows))
        screen = PaneScreen(cols, rows)
        screen.feed("W" * 70 + "\r\n", 0.0)
        screen.catch_up()
        return screen

    view = view_with(2, cols=80, rows=24, reply=lambda index, text: answers.append(text))
    view.rebuild = rebuild
    view.handle_key("1")
    assert asked == [(1, 80, 21)]
    screen = view.panes[1].screen
    assert (screen.cols, screen.rows) == (80, 21)
    assert content_rows(view, 1)[1][0] == "W" * 70
    screen.feed("\x1b[c", 1.0)  # the rebuilt screen answers the program's queries
    screen.catch_up()
    assert answers
    view.handle_key("1")
    assert asked[-1] == (1, 80, 10)


def test_a_match_right_of_the_window_is_brought_into_view() -> None:
    view = wide_line_view()
    view.feed(0, " " * 250 + "needle\r\n", 0.1)
    view.panes[0].screen.catch_up()
    view.paused = True
    run(view, "needle")
    pane = view.panes[0]
    assert pane.hscroll > 0
    assert any("needle" in row for row in content_rows(view, 0)[1])


@pytest.mark.parametrize("mode", ["live", "paused", "ended", "replay"])
def test_help_fits_80x24_in_pages_in_every_mode(mode: str) -> None:
    view = view_with(2, cols=80, rows=24, replay=mode == "replay")
    view.paused, view.ended = mode == "paused", mode == "ended"
    view.handle_key("h")
    pages = []
    while view.help_open:
        rows = screen_text(view).split("\n")
        assert len(rows) == 24
        pages.append("\n".join(rows[1:-1]))
        assert all(len(row.rstrip()) < 80 for row in rows[1:-1]), "a help row is cut"
        view.handle_key(" ")
    assert len(pages) >= 2
    text = " ".join(" ".join(pages).split())
    for keys, meaning in view.help_rows():
        assert " ".join(keys.split()) in text and " ".join(meaning.split()) in text
