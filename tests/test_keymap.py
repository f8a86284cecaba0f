"""One keymap table drives dispatch, help and footer, live and in replay: every
key it lists does something, and help and footer come from it."""

from __future__ import annotations

import pytest

from autotrace.replay.player import Player
from autotrace.term.live_view import LiveView
from autotrace.term.replay_loop import ReplayOnTerminal
from autotrace.view import keymap
from autotrace.view.multipane import MultiPaneView

LIVE_MODES = {keymap.LIVE, keymap.PAUSED, keymap.ENDED}


def handled_by(command: str, modes: frozenset[str]) -> list[str]:
    """Who carries a command out in these modes: the view, or the controller there."""
    who = []
    if hasattr(MultiPaneView, f"_do_{command}"):
        who.append("view")
    if modes & LIVE_MODES and hasattr(LiveView, f"_do_{command}"):
        who.append("live")
    if keymap.REPLAY in modes and (hasattr(Player, f"_do_{command}")
                                   or hasattr(ReplayOnTerminal, f"_do_{command}")):
        who.append("replay")
    return who


@pytest.mark.parametrize("binding", keymap.TABLE, ids=lambda b: f"{b.command}-{b.label}")
def test_every_binding_is_carried_out_in_every_mode_it_lists(binding) -> None:
    for mode in binding.modes:
        if mode == keymap.REPLAY_PAUSED:
            mode_set = frozenset({keymap.REPLAY, mode})
        else:
            mode_set = frozenset({mode})
        assert handled_by(binding.command, mode_set), (binding.command, mode)


def view_in(mode: str) -> MultiPaneView:
    view = MultiPaneView(120, 40)
    for index in range(6):
        view.add_pane(index, f"pane {index}", 60, 10)
    view.replay = mode in (keymap.REPLAY, keymap.REPLAY_PAUSED)
    view.paused = mode in (keymap.PAUSED, keymap.REPLAY_PAUSED)
    view.ended = mode == keymap.ENDED
    return view


@pytest.mark.parametrize("mode", [keymap.LIVE, keymap.PAUSED, keymap.ENDED, keymap.REPLAY])
def test_help_and_footer_come_from_the_table(mode) -> None:
    view = view_in(mode)
    rows = view.help_rows()
    expected = [(b.label, b.help) for b in keymap.TABLE
                if b.help is not None and b.modes & view.modes()]
    assert rows == list(dict.fromkeys(expected))
    footer = view.footer_keys()
    for entry in footer.split("  "):
        entry = entry.strip()
        if entry.startswith("t sync"):
            continue
        assert any(b.footer == entry and b.modes & view.modes() for b in keymap.TABLE), entry


def test_the_same_key_means_what_its_mode_says() -> None:
    # Space pages down when a live session is paused, and plays in replay.
    assert keymap.lookup(" ", {keymap.PAUSED}).command == "page_down"
    assert keymap.lookup(" ", {keymap.REPLAY, keymap.REPLAY_PAUSED}).command == "play_pause"
    # Arrows move the focus while live output runs, scroll while reading.
    assert keymap.lookup("KEY_UP", {keymap.LIVE}).command == "focus_previous"
    assert keymap.lookup("KEY_UP", {keymap.PAUSED}).command == "line_up"
    assert keymap.lookup("KEY_LEFT", {keymap.REPLAY}).command == "seek_back"
    # p pauses a live session, does nothing once it is over.
    assert keymap.lookup("p", {keymap.LIVE}).command == "pause"
    assert keymap.lookup("p", {keymap.ENDED}) is None


def test_the_final_screen_scrolls_without_a_pause() -> None:
    view = view_in(keymap.ENDED)
    for _ in range(30):
        view.feed(0, "a line\r\n", 1.0)
    view.panes[0].screen.catch_up()
    assert view.handle_key("k") is None
    assert view.panes[0].scroll == 1
    assert "q quit" in view.footer_keys() and "c continue" not in view.footer_keys()
