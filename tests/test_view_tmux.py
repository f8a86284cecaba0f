"""The live view, driven in tmux as a person would: send-keys to type,
capture-pane to read what is on the screen."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from tmuxdriver import Tmux
from tmuxdriver import autotrace_argv as autotrace
from tmuxdriver import pane_titles as titles

pytestmark = pytest.mark.tmux

# A pane that prints numbered lines, then waits: "<tag> line N".
def printer(tag: str, count: int = 200, delay: float = 0.0, then_sleep: float = 60) -> str:
    return (f"{sys.executable} -c \"import time\nfor i in range({count}):\n"
            f" print('{tag} line', i, flush=True); time.sleep({delay})\n"
            f"time.sleep({then_sleep})\"")


def in_shell(tmux: Tmux, tmp_path: Path, argv: list[str], after: str) -> None:
    """Type a command line into an interactive shell, as a person would."""
    script = tmp_path / "run.sh"
    script.write_text(" ".join(shlex.quote(w) for w in argv) + f"\n{after}\n")
    tmux.start(["sh"])
    tmux.type(f". {script}\n")


def main_pid(tmp_path: Path) -> int:
    manifest = json.loads((tmp_path / "rec" / "manifest.json").read_text())
    return manifest["panes"][0]["pid"]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 7])
def test_layout_shows_up_to_four_panes(tmux, tmp_path, count):
    commands = [printer(f"p{i}", count=3) for i in range(count)]
    tmux.start(autotrace(tmp_path, *commands))
    for i in range(min(count, 4)):
        screen = tmux.wait_for(rf"p{i} line 2")
    assert titles(screen) == list(range(min(count, 4)))
    if count > 4:
        tmux.send("m")
        screen = tmux.wait_for(r"p4 line 2")
        shown = titles(screen)
        assert 0 in shown and 4 in shown and len(shown) == 4
    tmux.send("q")
    assert tmux.exit_status() == 143  # the main command was stopped by SIGTERM


def test_zoom_and_unzoom(tmux, tmp_path):
    tmux.start(autotrace(tmp_path, printer("main", 5), printer("one", 5), printer("two", 5)))
    tmux.wait_for("two line 4")
    tmux.send("2")
    screen = tmux.wait_gone("main line", 5)
    assert titles(screen) == [2]
    assert "main line" not in screen
    tmux.send("2")
    screen = tmux.wait_for("main line 4")
    assert titles(screen) == [0, 1, 2]
    tmux.send("1")
    assert titles(tmux.wait_gone("two line")) == [1]
    tmux.send("z")
    assert titles(tmux.wait_for("main line 4")) == [0, 1, 2]
    tmux.send("q")
    tmux.exit_status()


def test_pause_stops_processes_and_continue_resumes(tmux, tmp_path):
    tmux.start(autotrace(tmp_path, printer("main", 100000, delay=0.05), "sleep 60"))
    tmux.wait_for("main line 3")
    pid = main_pid(tmp_path)
    tmux.send("p")
    screen = tmux.wait_for("PAUSED")
    assert "c continue" in screen
    deadline = time.monotonic() + 5
    while psutil.Process(pid).status() != psutil.STATUS_STOPPED and time.monotonic() < deadline:
        time.sleep(0.05)
    assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
    frozen = tmux.capture()
    time.sleep(0.5)
    assert tmux.capture().split("\n")[2:] == frozen.split("\n")[2:], "view must freeze"
    tmux.send("c")
    tmux.wait_for("Running")
    time.sleep(0.2)
    assert psutil.Process(pid).status() != psutil.STATUS_STOPPED
    tmux.send("q")
    tmux.exit_status()
    markers = [json.loads(line) for line in
               (tmp_path / "rec" / "pane-0.cast").read_text().splitlines()[1:]]
    assert [e[2] for e in markers if e[1] == "m"][:2] == ["pause", "resume"]


def test_scroll_search_and_help(tmux, tmp_path):
    tmux.start(autotrace(tmp_path, printer("main", 300), "sleep 60"))
    tmux.wait_for("main line 299")
    tmux.send("p")
    tmux.wait_for("PAUSED")
    tmux.send("g")  # top of the focused pane's history
    screen = tmux.wait_for("main line 0$|main line 0\\s")
    assert "main line 299" not in screen
    tmux.send("G")
    tmux.wait_for("main line 299")
    for _ in range(5):
        tmux.send("k")
    screen = tmux.wait_for("5 lines back")
    assert "main line 299" not in screen
    tmux.send("/")
    tmux.type("line 1[2]3")
    tmux.send("Enter")
    screen = tmux.wait_for(r"/line 1\[2\]3: pane 0 at")
    assert "main line 123" in screen
    tmux.send("h")
    tmux.wait_for("autotrace keys")
    tmux.send("x")
    tmux.wait_gone("autotrace keys")
    tmux.send("c")
    tmux.wait_for("main line 299")
    tmux.send("q")
    tmux.exit_status()


@pytest.mark.alone
def test_time_sync_scrolls_every_pane_to_the_same_moment(tmux, tmp_path):
    # Both panes print their line number every 20 ms, so "line N" is the same moment.
    tmux.start(autotrace(tmp_path, printer("aa", 150, 0.02), printer("bb", 150, 0.02)))
    tmux.wait_for("bb line 149")
    tmux.wait_for("aa line 149")
    tmux.send("p")
    tmux.wait_for("PAUSED")
    tmux.send("g")
    screen = tmux.wait_for("aa line 0")
    top_b = [int(n) for n in re.findall(r"bb line (\d+)", screen)]
    timeline = subprocess.run([sys.executable, "-m", "autotrace", "cat", str(tmp_path / "rec")],
                              capture_output=True, text=True).stdout
    assert top_b and min(top_b) <= 10, screen + "\n" + "\n".join(
        line for line in timeline.splitlines() if re.search(r"line (0|1|149)$", line))
    tmux.send("t")  # sync off: scrolling pane 0 leaves pane 1 where it is
    tmux.send("G")
    screen = tmux.wait_for("aa line 149")
    assert "bb line 149" not in screen
    tmux.send("q")
    tmux.exit_status()


def test_resize_relayouts_and_records_resize(tmux, tmp_path):
    size_loop = "while true; do stty size; sleep 0.2; done"
    tmux.start(autotrace(tmp_path, size_loop, "sleep 60"))
    tmux.wait_for(r"\d+ 120")
    tmux.resize(100, 30)
    tmux.wait_for(r"\d+ 100\s")
    tmux.resize(30, 6)
    tmux.wait_for("terminal too small")
    tmux.resize(120, 40)
    tmux.wait_for(r"\d+ 120")
    tmux.send("q")
    tmux.exit_status()
    events = [json.loads(line) for line in
              (tmp_path / "rec" / "pane-0.cast").read_text().splitlines()[1:]]
    assert any(e[1] == "r" and e[2].startswith("100x") for e in events)


def test_quit_restores_the_terminal(tmux, tmp_path):
    # Run inside a shell so we can look at the terminal's modes after autotrace exits.
    in_shell(tmux, tmp_path, autotrace(tmp_path, printer("main", 5), "sleep 60"),
             "stty -a | tr ' ' '\\n' | grep -x -e echo -e icanon; echo DONE")
    tmux.wait_for("main line 4")
    tmux.send("q")
    screen = tmux.wait_for("DONE")
    assert "recorded to" in screen
    assert re.search(r"^echo$", screen, re.M) and re.search(r"^icanon$", screen, re.M)
    assert tmux.tmux("display-message", "-p", "-t", tmux.session,
                     "#{alternate_on}").strip() == "0"


@pytest.mark.parametrize("signal_name", ["TERM", "HUP", "INT"])
def test_signals_restore_the_terminal(tmux, tmp_path, signal_name):
    in_shell(tmux, tmp_path, autotrace(tmp_path, printer("main", 5), "sleep 60"),
             "echo STATUS=$?; stty -a | tr ' ' '\\n' | grep -x echo; echo DONE")
    tmux.wait_for("main line 4")
    at = [p for p in psutil.Process(tmux.pane_pid()).children(recursive=True)
          if "autotrace" in " ".join(p.cmdline())][0]
    at.send_signal(getattr(__import__("signal"), f"SIG{signal_name}"))
    screen = tmux.wait_for(r"STATUS=\d+(.|\n)*DONE")
    code = {"TERM": 143, "HUP": 129, "INT": 130}[signal_name]
    assert f"STATUS={code}" in screen
    assert re.search(r"^echo$", screen, re.M)
    assert tmux.tmux("display-message", "-p", "-t", tmux.session,
                     "#{alternate_on}").strip() == "0"


def test_hostile_pane_output_does_not_break_the_others(tmux, tmp_path):
    hostile = ("head -c 30000 /bin/ls; printf '\\377\\376 bad utf8 \\033]0;PWNED\\007"
               "\\033]52;c;cHduZWQ=\\007'; python3 -c \"print('x'*1000000)\"; sleep 60")
    tmux.start(autotrace(tmp_path, printer("main", 5), hostile, "top -d 0.5"))
    screen = tmux.wait_for("main line 4")
    time.sleep(1.5)
    screen = tmux.capture()
    assert titles(screen) == [0, 1, 2]
    assert "main line 4" in screen
    assert "PWNED" not in tmux.tmux("display-message", "-p", "-t", tmux.session,
                                    "#{pane_title}")
    assert tmux.tmux("list-buffers", check=False).strip() == ""
    tmux.send("q")
    tmux.exit_status()


def test_scrollback_beyond_memory_is_rebuilt_from_the_recording(tmux, tmp_path):
    # Only 50 lines of scrollback in memory; `g` still reaches the session's first line.
    tmux.start(autotrace(tmp_path, "seq 1 500; sleep 60", "sleep 60",
                         options=("--history", "50")))
    tmux.wait_for(r"(?m)^500$")
    tmux.send("p")
    tmux.wait_for("PAUSED")
    for _ in range(70):
        tmux.send("k")
    # 70 lines back: past the 50 held in memory, so rebuilt from the recording.
    screen = tmux.wait_for("70 lines back  .from the recording")
    top = int(re.search(r"^(\d+)$", screen.split("lines back")[1], re.M).group(1))
    tmux.send("G")
    bottom_screen = tmux.wait_for(r"(?m)^500$")
    first_row = int(re.search(r"^(\d+)$", bottom_screen.split("seq 1 500")[1], re.M).group(1))
    assert top == first_row - 70
    tmux.send("g")
    screen = tmux.wait_for("from the recording")
    assert re.search(r"^1\n2\n3$", screen, re.M), screen
    tmux.send("G")
    tmux.wait_for(r"(?m)^500$")
    tmux.send("q")
    tmux.exit_status()


def test_too_small_at_start_waits_for_a_resize(tmux, tmp_path):
    small = Tmux(cols=30, rows=6)
    try:
        small.start(autotrace(tmp_path, printer("main", 3), "sleep 60"))
        small.wait_for("too small")
        small.resize(100, 30)
        small.wait_for("main line 2")
        small.send("q")
        assert small.exit_status() == 143
    finally:
        small.kill()


def test_title_shows_the_command_with_pid_substituted(tmux, tmp_path):
    tmux.start(autotrace(tmp_path, "sleep 60", "echo tracing PID; sleep 60"))
    screen = tmux.wait_for("tracing")
    pid = main_pid(tmp_path)
    assert f"echo tracing {pid}; sleep 60" in screen
    assert f"tracing {pid}" in screen
    tmux.send("q")
    tmux.exit_status()


def test_file_size_limit_stops_the_recording_not_the_session(tmux, tmp_path):
    # A real failing write inside the session: the recording hits the file size
    # limit (ulimit -f, in 512-byte blocks), so writing it fails with EFBIG
    # mid-session. Like a full disk, it stops the recording, not the session.
    argv = autotrace(tmp_path, "python3 -c \"print('x' * 400000)\"; echo main ran to its end",
                     "sleep 61.5")
    in_shell(tmux, tmp_path, ["sh", "-c", 'ulimit -f 128; exec "$@"', "sh", *argv],
             "echo STATUS=$?; stty -a | tr ' ' '\\n' | grep -x echo; echo DONE")
    # The view stays on the final screen, saying the recording is incomplete.
    screen = tmux.wait_for(r"ENDED", timeout=30)
    assert "NOT RECORDING (file size limit reached)" in screen
    assert "main ran to its end" in screen
    tmux.send("q")
    screen = tmux.wait_for(r"STATUS=\d+(.|\n)*DONE", timeout=30)
    assert "STATUS=74" in screen  # the main command succeeded, its recording is cut short
    assert screen.count("autotrace: recording stopped: file size limit reached") == 1
    assert "internal error" not in screen and "Traceback" not in screen
    assert re.search(r"^echo$", screen, re.M)
    assert tmux.tmux("display-message", "-p", "-t", tmux.session,
                     "#{alternate_on}").strip() == "0"
    directory = tmp_path / "rec"
    assert sorted(p.name for p in directory.iterdir()) == [
        "manifest.json", "pane-0.cast", "pane-1.cast"]  # no log, no temporary
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["recording_stopped"]["reason"] == "file size limit reached"
    assert manifest["panes"][0]["exit_status"] == 0
    lines = (directory / "pane-0.cast").read_text().split("\n")
    assert lines[-1] == "" and all(json.loads(line) for line in lines[:-1])
    leftovers = [p for p in psutil.process_iter(["cmdline"])
                 if "61.5" in " ".join(p.info["cmdline"] or [])]
    assert leftovers == []


@pytest.mark.alone
def test_ctrl_s_and_ctrl_z_do_not_stall_the_panes(tmux, tmp_path):
    # Flow control (Ctrl-S) or a stop (Ctrl-Z) of autotrace would stop the
    # reading of every pane, and so the traced program: neither may happen.
    ticker = (f"{sys.executable} -c \"import time\nfor i in range(100000):\n"
              " print('tick', i, flush=True); time.sleep(0.05)\"")
    tmux.start(autotrace(tmp_path, ticker, "sleep 60"))
    tmux.wait_for(r"tick 5\b")
    tmux.send("C-s")
    time.sleep(1.0)
    tmux.send("C-z")
    time.sleep(1.0)
    tmux.send("C-q")
    tmux.send("p")
    tmux.wait_for("PAUSED")  # still answering keys
    tmux.send("q")
    assert tmux.exit_status() == 143
    times = [json.loads(line)[0] for line in
             (tmp_path / "rec" / "pane-0.cast").read_text().splitlines()[1:]
             if '"o"' in line]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(times) > 30 and max(gaps[:-1]) < 0.5, f"output stalled: longest gap {max(gaps)}"


def test_closing_the_terminal_ends_the_session_as_a_hangup(tmp_path):
    # The terminal goes away under a live view (window closed, ssh dropped):
    # autotrace must end like on SIGHUP (129), with no internal error.
    from ptyprocess import PtyProcess

    argv = autotrace(tmp_path, "sleep 61.25", "sleep 62.25")
    proc = PtyProcess.spawn(argv, dimensions=(30, 100), env={**os.environ, "TERM": "xterm"})
    deadline = time.monotonic() + 15
    output = b""
    while b"sleep 61.25" not in output and time.monotonic() < deadline:
        with contextlib.suppress(EOFError):
            output += proc.read(4096)
    assert b"sleep 61.25" in output, output[-2000:]
    os.close(proc.fd)  # the terminal is gone: the kernel hangs up on autotrace
    proc.fileobj = open(os.devnull, "rb")  # noqa: SIM115 - ptyprocess closes it later
    deadline = time.monotonic() + 15
    while proc.isalive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not proc.isalive()
    assert proc.exitstatus == 129 or proc.signalstatus == signal.SIGHUP
    assert not (tmp_path / "rec" / "autotrace.log").exists()
    manifest = json.loads((tmp_path / "rec" / "manifest.json").read_text())
    assert all(p["end"] is not None for p in manifest["panes"])
    leftovers = [p for p in psutil.process_iter(["cmdline"])
                 if "61.25" in " ".join(p.info["cmdline"] or [])
                 or "62.25" in " ".join(p.info["cmdline"] or [])]
    assert leftovers == []
