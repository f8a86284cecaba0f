"""Input mode (`i`), driven in tmux as a person would: a python REPL used
through autotrace as if it were on its own terminal (issue 10, point 1)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from tmuxdriver import Tmux
from tmuxdriver import autotrace_argv as autotrace

pytestmark = pytest.mark.tmux

REPL = f"{sys.executable} -q"


def cast_events(tmp_path: Path, index: int = 0) -> list[list]:
    lines = (tmp_path / "rec" / f"pane-{index}.cast").read_text().splitlines()[1:]
    return [json.loads(line) for line in lines]


def pane_zero_lines(screen: str) -> list[str]:
    """The left half of the screen (pane 0 of two panes side by side is above;
    of two panes stacked, pane 0 is the top half): pane 0's rows only."""
    rows = screen.split("\n")
    titles = [i for i, row in enumerate(rows) if re.match(r"\s*1  (running|exited)", row)]
    return rows[:titles[0]] if titles else rows


def start_typing(tmux: Tmux) -> None:
    tmux.send("i")
    tmux.wait_for(r"TYPING INTO 0")


def test_a_repl_is_used_through_input_mode(tmux, tmp_path):
    tmux.start(autotrace(tmp_path, REPL, "strace -f -p PID", options=("--record-input",)))
    tmux.wait_for(r"(?m)^>>>")
    start_typing(tmux)
    screen = tmux.capture()
    assert "Ctrl-] leave input mode" in screen  # the footer says how to leave
    assert "TYPING (Ctrl-] leaves)" in screen  # and so does the pane's title
    tmux.type("print(6*7)")
    tmux.send("Enter")
    screen = tmux.wait_for(r"(?m)^42\s*$")
    assert any(line.strip() == "42" for line in pane_zero_lines(screen))
    # Ctrl-C goes to the program, through its pty: python's KeyboardInterrupt.
    tmux.type("import time; time.sleep(60)")
    tmux.send("Enter")
    tmux.wait_for(r"wait4|select|clock_nanosleep|nanosleep")  # strace sees it sleep
    tmux.send("C-c")
    tmux.wait_for(r"KeyboardInterrupt")
    # A paste: python 3.11 did not ask for bracketed paste, so it gets the text as typed.
    tmux.tmux("set-buffer", "print(1000+234)\n")
    tmux.tmux("paste-buffer", "-p", "-t", tmux.session)
    screen = tmux.wait_for(r"(?m)^1234\s*$")
    assert "200~" not in screen and "201~" not in screen
    # Ctrl-] leaves: keys are the view's commands again (p pauses).
    tmux.send("C-]")
    tmux.wait_gone(r"TYPING")
    tmux.send("p")
    tmux.wait_for(r"PAUSED")
    tmux.send("c")
    tmux.wait_gone(r"PAUSED")
    tmux.send("q")
    tmux.exit_status()
    typed = "".join(data for _, code, data in cast_events(tmp_path) if code == "i")
    assert "print(6*7)\r" in typed and "\x03" in typed and "print(1000+234)\r" in typed
    assert "\x1d" not in typed  # the key that leaves is the view's, not the program's


def test_input_is_not_recorded_unless_asked(tmux, tmp_path):
    tmux.start(autotrace(tmp_path, REPL))
    tmux.wait_for(r"(?m)^>>>")
    start_typing(tmux)
    tmux.type("print(6*7)")
    tmux.send("Enter")
    tmux.wait_for(r"(?m)^42\s*$")
    tmux.send("C-d")  # Ctrl-D to the program: the REPL ends, and with it input mode
    tmux.wait_gone(r"TYPING")
    tmux.wait_for(r"ENDED")
    tmux.send("q")
    assert tmux.exit_status() == 0
    events = cast_events(tmp_path)
    assert not [e for e in events if e[1] == "i"]
    assert "42" in "".join(e[2] for e in events if e[1] == "o")


BRACKETS_SEEN = (
    "import os, sys, tty\n"
    "sys.stdout.write('\\x1b[?2004hready\\r\\n'); sys.stdout.flush()\n"
    "tty.setraw(0); data = b''\n"
    "while b'END' not in data: data += os.read(0, 100)\n"
    "sys.stdout.write('got ' + repr(data).replace(chr(92), '/') + '\\r\\n')\n"
    "import time; time.sleep(30)\n"
)


def test_bracketed_paste_reaches_a_program_that_asked_for_it(tmux, tmp_path):
    script = tmp_path / "brackets.py"
    script.write_text(BRACKETS_SEEN)
    tmux.start(autotrace(tmp_path, f"{sys.executable} {script}"))
    tmux.wait_for(r"ready")
    start_typing(tmux)
    tmux.tmux("set-buffer", "pasted END")
    tmux.tmux("paste-buffer", "-p", "-t", tmux.session)
    tmux.wait_for(r"got b'/x1b\[200~pasted END/x1b\[201~'")
    tmux.send("C-]")
    tmux.wait_gone(r"TYPING")
    tmux.send("q")
    tmux.exit_status()


def test_replay_says_i_is_not_available(tmux, tmp_path):
    tmux.start(autotrace(tmp_path, "echo hello", options=("--exit-at-end",)))
    assert tmux.exit_status() == 0
    tmux.kill()
    replay = Tmux(cols=120, rows=40)
    try:
        replay.start([sys.executable, "-m", "autotrace", "replay", str(tmp_path / "rec")])
        replay.wait_for(r"hello")
        replay.send("i")
        replay.wait_for(r"a replay cannot be typed into")
    finally:
        replay.kill()
