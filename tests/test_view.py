"""The multi-pane view's state and keys, without a terminal: keys in, what a
person would see (frame text) and what the controller must do out."""

from __future__ import annotations

import pytest

from autotrace.view.multipane import MultiPaneView


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
