"""Lenses seen as a person sees them: autotrace in tmux, read with
`capture-pane -e` (which keeps the attributes), `l` turning them off."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest
from tmuxdriver import Tmux

from tests.conftest import RecordingFiles

pytestmark = pytest.mark.tmux

FAILED = "= -1 ENOENT (No such file or directory)"
SGR = re.compile(r"\x1b\[([\d;]*)m")


TMUX_SIZE = (200, 50)  # the tmux fixture's terminal (conftest)


def capture_attributes(tmux: Tmux) -> str:
    return tmux.tmux("capture-pane", "-p", "-e", "-t", tmux.session)


def attributes_before(screen: str, text: str) -> set[str]:
    """The SGR parameters in force where `text` starts on the screen."""
    at = screen.index(text)
    line_start = screen.rfind("\n", 0, at) + 1
    params: set[str] = set()
    for match in SGR.finditer(screen, line_start, at):
        for param in (match.group(1) or "0").split(";"):
            params = set() if param == "0" else params | {param}
    return params


def row_with(screen: str, needle: str) -> str | None:
    """The screen row (with its escapes) whose text holds `needle`."""
    return next((line for line in screen.split("\n") if needle in SGR.sub("", line)), None)


def wait_row(tmux: Tmux, needle: str, lensed: bool, timeout: float = 20.0) -> str:
    """Wait until the row holding `needle` shows its failure bold red (lensed) or plain."""
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = capture_attributes(tmux)
        row = row_with(screen, needle)
        if row is not None and ({"1", "31"} <= attributes_before(row, "= -1 ")) == lensed:
            return row
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} not {'bold red' if lensed else 'plain'}:\n{screen}")


def test_strace_failures_stand_out_live_and_l_turns_the_lens_off(tmux, tmp_path: Path) -> None:
    call = f'openat(AT_FDCWD, "no-such-file", O_RDONLY) {FAILED}'
    # LC_ALL=C: no locale files opened to push the call off the pane.
    main = "env LC_ALL=C sh -c 'sleep 0.5; /bin/cat no-such-file; exec /bin/sleep 60'"
    record = tmp_path / "rec"
    tmux.start([sys.executable, "-m", "autotrace", "-l", str(record), main,
                "strace -f -e trace=openat,execve -p PID"], cwd=tmp_path)
    row = wait_row(tmux, call, lensed=True)
    # The failed call's name is bold red too; a call that worked has its name bold only.
    assert {"1", "31"} <= attributes_before(row, "openat")
    execve = row_with(capture_attributes(tmux), 'execve("/bin/cat"') or ""
    assert "1" in attributes_before(execve, "execve")
    assert "31" not in attributes_before(execve, "execve")
    tmux.send("l")
    row = wait_row(tmux, call, lensed=False)
    assert attributes_before(row, "openat") == set()  # colours and lenses off: as printed
    tmux.send("l")
    wait_row(tmux, call, lensed=True)
    tmux.send("q")
    tmux.exit_status(timeout=30)
    # Display only: the pane's file holds strace's bytes, no lens in them.
    strace_file = RecordingFiles(record).output(1)
    assert call in strace_file and " TRUNCATED" not in strace_file
    assert "\x1b[" not in strace_file


def test_replay_spells_out_tc_in_tcpdump_panes_and_l_shows_the_raw_flag(tmux) -> None:
    # The shipped story: two truncated answers, `59949*-| 0/0/1` in tcpdump's pane.
    recording = Path(__file__).resolve().parent.parent / "recordings" / "story-truncation"
    tmux.start([sys.executable, "-m", "autotrace", "replay", str(recording)])
    tmux.wait_for(r"PLAY|END")
    tmux.send("2")  # zoom the tcpdump pane: whole rows
    deadline = time.monotonic() + 30
    screen = ""
    while time.monotonic() < deadline:
        screen = capture_attributes(tmux)
        plain = SGR.sub("", screen)
        # The second truncated answer, the one dig +ignore did not retry.
        if re.search(r"\d+\*- TRUNCATED 0/0/1 \(37\)\s*\n(.*\n)*.*packets captured", plain):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"no TRUNCATED answers on the replay's screen:\n{screen}")
    row = row_with(screen, "TRUNCATED 0/0/1") or ""
    assert {"1", "30", "43"} <= attributes_before(row, "TRUNCATED")  # bold black on yellow
    tmux.send("l")
    plain = SGR.sub("", tmux.wait_for(r"\d+\*-\| 0/0/1 \(37\)", timeout=20))
    assert "TRUNCATED" not in plain
    tmux.send("q")
    assert tmux.exit_status(timeout=30) == 0

