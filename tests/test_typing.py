"""Input mode's translation of typed keys (view/typing.py) and its place in
the view's modes: what the program gets, and when the view has its keys back."""

from __future__ import annotations

import pytest

from autotrace.view import keymap
from autotrace.view.multipane import MultiPaneView
from autotrace.view.typing import PASTE_END, PASTE_START, TypingTranslator

LEAVE = keymap.LEAVE_INPUT


def test_keys_go_as_typed_and_the_leave_key_ends_them() -> None:
    typed = TypingTranslator(LEAVE).translate(f"print(1)\r\x03\x1a\x04{LEAVE}pq", False)
    assert typed.text == "print(1)\r\x03\x1a\x04"
    assert typed.leave and typed.rest == "pq"


def test_a_paste_keeps_its_brackets_only_when_the_program_asked() -> None:
    paste = f"{PASTE_START}a {LEAVE} b\n{PASTE_END}"
    assert TypingTranslator(LEAVE).translate(paste, True).text == paste
    plain = TypingTranslator(LEAVE).translate(paste, False)
    assert plain.text == f"a {LEAVE} b\n" and not plain.leave  # pasted text is data


def test_a_paste_split_over_two_reads_is_still_a_paste() -> None:
    translator = TypingTranslator(LEAVE)
    assert translator.translate(f"{PASTE_START}x{LEAVE}", False).text == f"x{LEAVE}"
    end = translator.translate(f"y{PASTE_END}{LEAVE}", False)
    assert end.text == "y" and end.leave


def test_the_view_in_input_mode() -> None:
    view = MultiPaneView(120, 40)
    view.add_pane(0, "python3 -q", 120, 20)
    view.add_pane(1, "strace -p 1", 120, 18)
    action = view.handle_key("i")
    assert action is not None and action.name == "type_in" and action.arg == "0"
    view.start_typing(0)
    assert view.modes() == {keymap.INPUT}
    assert "Ctrl-] leave input mode" in view.footer_keys()
    actions = view.handle_typed(f"q\x03{LEAVE}p")
    assert [(a.name, a.arg) for a in actions] == [("send", "q\x03"), ("leave_input", ""),
                                                  ("pause", "")]
    assert view.typing is None and view.modes() == {keymap.LIVE}


def test_i_in_a_replay_says_it_is_not_available() -> None:
    view = MultiPaneView(120, 40)
    view.add_pane(0, "echo", 120, 20)
    view.replay = True
    assert view.handle_key("i") is None
    assert "a replay cannot be typed into" in view.message


@pytest.mark.alone
def test_a_paste_larger_than_the_pty_takes_never_blocks_the_loop() -> None:
    # The program reads nothing for a second: the pty's input buffer fills up.
    import time

    from autotrace.live import procs
    from autotrace.live.panes import PtyPane

    proc = procs.spawn("sleep 1; stty raw -echo; exec cat >/dev/null", 80, 24)
    pane = PtyPane(None, None, proc, 0.0)  # type: ignore[arg-type]
    try:
        started = time.monotonic()
        pane.type_in(b"x" * 200_000)
        assert time.monotonic() - started < 0.5  # queued, not waited for
        assert pane.typing_pending
        deadline = time.monotonic() + 30
        while pane.typing_pending and time.monotonic() < deadline:
            pane.flush_typed()  # what the session does every turn
            procs.read_available(proc.fd)
            time.sleep(0.01)
        assert not pane.typing_pending  # all of it written once the program reads
    finally:
        proc.terminate(force=True)
