"""`autotrace replay`, driven in tmux as a person would: send-keys to type,
capture-pane to read the screen. The recordings are real: made headless
(`--headless -l DIR`) or by a live session in tmux.

Fidelity (issue 4): the pane areas a replay shows at a marker and at the end
are the ones the live session showed at those moments, colours included.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
import time
from pathlib import Path

import pytest
from conftest import AUTOTRACE, REPO, assert_one_line_error, autotrace_env, run_autotrace
from tmuxdriver import Tmux

pytestmark = pytest.mark.tmux

COLS, ROWS = 120, 40
HEADER = re.compile(r"(PLAY|PAUSED|END)\s+(\d\d):(\d\d)\.\d / (\d\d):(\d\d)\.\d\s+x([\d.]+)")


TMUX_SIZE = (COLS, ROWS)  # the tmux fixture's terminal (conftest)


def replay(tmux: Tmux, *args: str, env: dict[str, str] | None = None) -> None:
    tmux.start([*AUTOTRACE, "replay", *args], env=env, cwd=REPO)


def settled(tmux: Tmux, pattern: str, timeout: float = 15) -> str:
    """The screen once it matches `pattern` and has stopped changing: a frame
    is written row by row, so the header can show before the panes do."""
    screen = tmux.wait_for(pattern, timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        again = tmux.capture()
        if again == screen and re.search(pattern, screen):
            return screen
        screen = again
    raise AssertionError(f"the screen did not settle on /{pattern}/:\n{screen}")


def header(screen: str) -> tuple[str, int, float]:
    """(badge, position in whole seconds, speed) from the replay's header row."""
    match = HEADER.search(screen.split("\n")[0])
    assert match, screen
    return match.group(1), int(match.group(2)) * 60 + int(match.group(3)), \
        float(match.group(6))


def wait_header(tmux: Tmux, badge: str, timeout: float = 15) -> tuple[str, int, float]:
    return header(tmux.wait_for(rf"^.*{badge}\s+\d\d:\d\d\.\d /", timeout))


def pane_rows(tmux: Tmux) -> list[str]:
    """The rows between the header and the footer, with colours (capture -e)."""
    screen = tmux.tmux("capture-pane", "-p", "-e", "-t", tmux.session)
    return screen.split("\n")[1:ROWS - 1]


def content_only(rows: list[str]) -> list[str]:
    """Pane rows without the title rows (they carry the pane's state)."""
    return [row for row in rows if not re.match(r"^(\x1b\[[0-9;]*m)* \d ", row)]


def in_shell(tmux: Tmux, tmp_path: Path, argv: list[str], after: str,
             env: dict[str, str] | None = None) -> None:
    """Type a command line into an interactive shell, as a person would."""
    script = tmp_path / "run.sh"
    script.write_text(" ".join(shlex.quote(w) for w in argv) + f"\n{after}\n")
    tmux.start(["sh"], env=env, cwd=REPO)
    tmux.type(f". {script}\n")


def headless(directory: Path, *commands: str, env: dict[str, str] | None = None,
             logdir: bool = True) -> Path:
    result = run_autotrace(["--headless", "--size", "118x17",
                            *(["-l", directory] if logdir else []), *commands],
                           env=env)
    assert result.returncode == 0, result.stderr
    return directory


def events(directory: Path, index: int = 0) -> list[list]:
    lines = (directory / f"pane-{index}.cast").read_text().splitlines()[1:]
    return [json.loads(line) for line in lines if line.strip()]


def last_tick_until(directory: Path, t: float) -> int | None:
    """The last `tick N` the main pane printed at or before `t`."""
    ticks = [int(n) for time_, code, data in events(directory) if code == "o" and time_ <= t
             for n in re.findall(r"tick (\d+)", data)]
    return ticks[-1] if ticks else None


def visible_ticks(screen: str) -> list[int]:
    return [int(n) for n in re.findall(r"tick (\d+)$", screen, re.M)]


# ---------------------------------------------------------------- recordings

TICKS = "for i in $(seq 0 23); do echo \"tick $i \"; sleep 0.25; done"
LAST_TICK = r"(?m)^tick 23$"  # capture-pane drops the trailing space
BEATS = "for i in $(seq 0 11); do echo \"beat $i\"; sleep 0.5; done"


@pytest.fixture(scope="module")
def ticks(tmp_path_factory) -> Path:
    """About 6 s: `tick N` every 0.25 s on the main pane, `beat N` on a tracer."""
    return headless(tmp_path_factory.mktemp("ticks") / "rec", TICKS, BEATS)


GO = "go"  # the file the live session's commands wait for before their second half


def live_commands(directory: Path) -> tuple[str, str]:
    go = directory / GO
    main = ("import os, time\n"
            "for i in range(50):\n"
            "    print(f'\\x1b[3{i % 7 + 1}mmain line {i}\\x1b[0m', flush=True)\n"
            f"while not os.path.exists('{go}'): time.sleep(0.05)\n"
            "for i in range(50, 80):\n"
            "    print(f'\\x1b[1;3{i % 7 + 1}mmain line {i}\\x1b[0m', flush=True)\n"
            "time.sleep(600)\n")
    tracer = (f"for i in $(seq 30); do echo tracer $i; done; "
              f"while [ ! -e {go} ]; do sleep 0.05; done; "
              f"for i in $(seq 31 45); do printf '\\033[7mtracer %s\\033[0m\\n' $i; done; "
              f"sleep 600")
    return f"{sys.executable} -c \"{main}\"", tracer


def add_marker(tmux: Tmux, name: str) -> None:
    tmux.send("M")
    tmux.wait_for("marker name:")
    tmux.type(name)
    tmux.send("Enter")
    tmux.wait_for(f"marker added: {name}")


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> dict:
    """A live session in tmux: the first half printed, marker `half`; the
    second half printed, marker `final`; q. The pane rows seen at each marker."""
    base = tmp_path_factory.mktemp("live")
    directory = base / "rec"
    main, tracer = live_commands(base)
    driver = Tmux(cols=COLS, rows=ROWS)
    try:
        driver.start([*AUTOTRACE, "-l", str(directory), main, tracer], cwd=REPO)
        driver.wait_for("main line 49")
        driver.wait_for("tracer 30")
        time.sleep(0.3)  # a frame or two more: nothing may change any more
        at_half = pane_rows(driver)
        add_marker(driver, "half")
        (base / GO).touch()
        driver.wait_for("main line 79")
        driver.wait_for("tracer 45")
        time.sleep(0.3)
        at_final = pane_rows(driver)
        add_marker(driver, "final")
        driver.send("q")
        assert driver.exit_status() == 143  # the main command was stopped by SIGTERM
    finally:
        driver.kill()
    labels = [data for _, code, data in events(directory) if code == "m"]
    assert labels == ["user:half", "user:final", "end"]
    return {"dir": directory, "half": at_half, "final": at_final}


# ---------------------------------------------------------------- fidelity


def test_replay_at_the_markers_shows_what_the_live_session_showed(tmux, live):
    replay(tmux, "--paused", str(live["dir"]))
    wait_header(tmux, "PAUSED")
    tmux.send("]")
    settled(tmux, "marker: user:half")
    assert pane_rows(tmux) == live["half"]
    assert "main line 49" in tmux.capture() and "main line 50" not in tmux.capture()
    tmux.send("]")
    settled(tmux, "marker: user:final")
    assert pane_rows(tmux) == live["final"]
    tmux.send("[")
    settled(tmux, "marker: user:half")
    assert pane_rows(tmux) == live["half"]
    tmux.send("q")
    assert tmux.exit_status() == 0


def test_replay_at_the_end_shows_the_last_live_screens(tmux, live):
    replay(tmux, "--paused", str(live["dir"]))
    wait_header(tmux, "PAUSED")
    tmux.send("G")
    screen = settled(tmux, r"killed by SIGTERM")
    assert header(screen)[0] == "END"
    # At the end the panes' titles say they were stopped (the live view,
    # just before q, said running): the rest of the pane areas is the same.
    assert content_only(pane_rows(tmux)) == content_only(live["final"])
    tmux.send("q")
    assert tmux.exit_status() == 0


# ---------------------------------------------------------------- playing


def test_plays_to_the_end_and_stays_until_q(tmux, ticks):
    replay(tmux, "--speed", "4", str(ticks))
    screen = settled(tmux, LAST_TICK)
    assert "beat 11" in screen
    badge, position, speed = wait_header(tmux, "END")
    assert speed == 4
    time.sleep(1.0)
    screen = tmux.capture()
    assert "[exit" not in screen and re.search(LAST_TICK, screen) and header(screen)[0] == "END"
    tmux.send("q")
    assert tmux.exit_status() == 0


def test_exit_at_end_exits_zero(tmux, ticks):
    replay(tmux, "--speed", "8", "--exit-at-end", str(ticks))
    assert tmux.exit_status() == 0


def test_space_pauses_and_c_continues(tmux, ticks):
    replay(tmux, str(ticks))
    tmux.wait_for(r"(?m)tick 3$")
    tmux.send("Space")
    _, position, _ = wait_header(tmux, "PAUSED")
    frozen = pane_rows(tmux)
    time.sleep(1.0)
    assert pane_rows(tmux) == frozen
    assert header(tmux.capture())[1] == position
    assert not re.search(LAST_TICK, tmux.capture())
    tmux.send("c")
    wait_header(tmux, "PLAY")
    tmux.wait_for(LAST_TICK)
    wait_header(tmux, "END")
    tmux.send("q")
    assert tmux.exit_status() == 0


def test_plus_and_minus_change_the_speed(tmux, ticks):
    replay(tmux, "--paused", str(ticks))
    assert wait_header(tmux, "PAUSED")[2] == 1
    for key, speed in [("+", 2), ("+", 4), ("-", 2), ("-", 1), ("-", 0.5)]:
        tmux.send(key)
        screen = settled(tmux, rf"speed x{speed:g}")
        assert header(screen)[2] == speed
        assert f"speed x{speed:g}" in screen.split("\n")[-2]
    tmux.send("q")
    assert tmux.exit_status() == 0


def test_left_and_right_seek_five_seconds(tmux, ticks):
    replay(tmux, "--paused", str(ticks))
    wait_header(tmux, "PAUSED")
    tmux.send("Right")
    screen = settled(tmux, r"00:05\.0 /")
    assert visible_ticks(screen)[-1] == last_tick_until(ticks, 5.0)
    tmux.send("Left")
    screen = settled(tmux, r"00:00\.0 /")
    assert visible_ticks(screen) == []
    tmux.send("Right")
    tmux.send("Right")  # past the end: stops there
    screen = settled(tmux, "END")
    assert visible_ticks(screen)[-1] == 23
    tmux.send("Left")
    screen = settled(tmux, "PAUSED")
    _, position, _ = header(screen)
    duration = max(e[0] for e in events(ticks))
    assert position == int(duration - 5)
    assert visible_ticks(screen)[-1] == last_tick_until(ticks, duration - 5)
    tmux.send("q")
    assert tmux.exit_status() == 0


def test_g_and_G_go_to_the_start_and_the_end(tmux, ticks):
    replay(tmux, "--paused", str(ticks))
    wait_header(tmux, "PAUSED")
    tmux.send("G")
    screen = settled(tmux, LAST_TICK)
    assert header(screen)[0] == "END" and "beat 11" in screen
    assert "exited 0" in screen
    tmux.send("g")
    screen = settled(tmux, r"00:00\.0 /")
    assert visible_ticks(screen) == [] and not re.search(r"(?m)^beat \d", screen)
    tmux.send("q")
    assert tmux.exit_status() == 0


def test_a_digit_zooms_a_pane(tmux, ticks):
    replay(tmux, "--paused", str(ticks))
    wait_header(tmux, "PAUSED")
    tmux.send("G")
    tmux.wait_for("beat 11")
    tmux.send("1")
    tmux.wait_gone(LAST_TICK)
    screen = settled(tmux, "beat 11")
    assert not re.search(LAST_TICK, screen) and not re.search(r"^ 0 ", screen, re.M)
    tmux.send("1")
    screen = settled(tmux, LAST_TICK)
    assert "beat 11" in screen
    tmux.send("q")
    assert tmux.exit_status() == 0


def test_search_jumps_to_the_moment_of_the_match(tmux, ticks):
    replay(tmux, "--paused", str(ticks))
    wait_header(tmux, "PAUSED")
    tmux.send("/")
    tmux.type("tick 13 ")
    tmux.send("Enter")
    screen = settled(tmux, r"/tick 13 : pane 0 at")
    when = next(t for t, code, data in events(ticks) if code == "o" and "tick 13 " in data)
    assert header(screen)[1] == int(when)
    assert visible_ticks(screen)[-1] == 13
    assert f"at {when:.1f} s" in screen
    tmux.send("q")
    assert tmux.exit_status() == 0


# ---------------------------------------------------------------- finding recordings


def test_no_path_plays_the_most_recent_recording(tmux, tmp_path):
    env = autotrace_env(XDG_STATE_HOME=str(tmp_path / "state"))
    headless(tmp_path, "echo older recording", env=env, logdir=False)
    time.sleep(0.05)  # a later manifest time
    headless(tmp_path, "echo newest recording", env=env, logdir=False)
    root = tmp_path / "state" / "autotrace" / "recordings"
    assert len(list(root.iterdir())) == 2
    replay(tmux, "--paused", env={"XDG_STATE_HOME": str(tmp_path / "state")})
    wait_header(tmux, "PAUSED")
    tmux.send("G")
    screen = tmux.wait_for("newest recording")
    assert "older recording" not in screen.split("\n", 2)[2]
    tmux.send("q")
    assert tmux.exit_status() == 0


def test_original_replay_options_still_work(tmux, ticks):
    tmux.start([*AUTOTRACE, "--replay", str(ticks), "--replayspeed", "4"], cwd=REPO)
    screen = tmux.wait_for(r"x4\s")
    assert header(screen)[2] == 4
    tmux.wait_for(LAST_TICK)
    wait_header(tmux, "END")
    tmux.send("q")
    assert tmux.exit_status() == 0


def test_replay_of_a_bundle(tmux, ticks, tmp_path):
    bundle = tmp_path / "ticks.tar.gz"
    result = run_autotrace(["pack", ticks, "-o", bundle])
    assert result.returncode == 0, result.stderr
    replay(tmux, "--paused", str(bundle))
    wait_header(tmux, "PAUSED")
    tmux.send("G")
    screen = settled(tmux, LAST_TICK)
    assert "beat 11" in screen
    tmux.send("q")
    assert tmux.exit_status() == 0


def test_replay_without_a_terminal_is_one_line(ticks):
    result = run_autotrace(["replay", ticks])
    line = assert_one_line_error(result, code=2)
    assert "terminal" in line and "autotrace cat" in line


# ---------------------------------------------------------------- untrusted recordings

HOSTILE = ("printf 'before\\n"
           "\\033]52;c;SEFDS0VE\\007"  # OSC 52: set the clipboard to HACKED
           "\\033]0;HACKED0\\007\\033]2;HACKED2\\033\\\\"  # window and pane titles
           "\\033[c\\033[>c\\033[6n\\033[?6n\\033[5n"  # device queries
           "\\033P+q544e\\033\\\\\\033Pq#0;2;0;0;0DCSTEXT\\033\\\\"  # DCS: XTGETTCAP, sixel
           "\\033_Ga=T;APCTEXT\\033\\\\"  # APC: kitty graphics
           "\\033]8;;http://example.invalid\\033\\\\link\\033]8;;\\033\\\\\\n"
           "hostile done\\n'")


def tmux_state(tmux: Tmux) -> tuple[str, str]:
    title = tmux.tmux("display-message", "-p", "-t", tmux.session, "#{pane_title}").strip()
    return title, tmux.tmux("list-buffers", check=False).strip()


def test_hostile_escapes_in_a_recording_change_nothing_in_the_terminal(tmux, tmp_path):
    recording = headless(tmp_path / "rec", HOSTILE)
    assert "\\u001b]52;" in (recording / "pane-0.cast").read_text()
    # The check can see an attack: the same bytes printed raw do set tmux's
    # clipboard (buffers) and title.
    control = Tmux(cols=COLS, rows=ROWS)
    try:
        control.start(["sh", "-c", f"sleep 0.5; {HOSTILE}"])
        control.tmux("set", "-g", "set-clipboard", "on")
        default_title, _ = tmux_state(control)
        control.wait_for("hostile done")
        time.sleep(0.3)
        title, buffers = tmux_state(control)
        assert title != default_title and "HACKED" in buffers
    finally:
        control.kill()

    tmux.start(["sh"], cwd=REPO)
    tmux.tmux("set", "-g", "set-clipboard", "on")
    title_before, _ = tmux_state(tmux)
    script = tmp_path / "run.sh"
    script.write_text(shlex.join([*AUTOTRACE, "replay", str(recording)]) +
                      "\necho STATUS=$?; sleep 0.3; echo AFTER\n")
    tmux.type(f". {script}\n")
    screen = tmux.wait_for("hostile done")
    wait_header(tmux, "END")
    time.sleep(0.5)  # time for tmux to answer anything that leaked
    shown = "\n".join(tmux.capture_lines()[2:ROWS - 1])  # below the pane's title
    assert "before" in shown and "link" in shown
    for leaked in ("DCSTEXT", "APCTEXT", "HACKED", "1;2c", ";1R", "0n", "544e", "\\"):
        assert leaked not in shown
    assert tmux_state(tmux) == (title_before, "")
    tmux.send("q")
    screen = tmux.wait_for("AFTER")
    assert "STATUS=0" in screen
    # Nothing answered a query on our behalf: no reply was typed at the shell.
    assert not re.search(r"\^\[|1;2c|\dR", screen), screen
    assert tmux_state(tmux) == (title_before, "")


@pytest.mark.parametrize("corrupt, when, why", [
    ("this line is not an event", "found when the replay opens", "Expecting value"),
    ('[0.9, "o", {"not": "text"}]', "found when the replay reaches it",
     "data of 'o' is not text"),
])
def test_corrupt_line_is_one_clear_line_and_the_terminal_is_restored(tmux, tmp_path, ticks,
                                                                      corrupt, when, why):
    broken = tmp_path / "broken"
    shutil.copytree(ticks, broken)
    cast = broken / "pane-0.cast"
    lines = cast.read_text().splitlines()
    lines.insert(5, corrupt)  # line 6 of the file
    cast.write_text("\n".join(lines) + "\n")
    in_shell(tmux, tmp_path, [*AUTOTRACE, "replay", str(broken)],
             "echo STATUS=$?; stty -a | tr ' ' '\\n' | grep -x -e echo -e icanon; echo DONE")
    tmux.wait_for("DONE", timeout=20)
    screen = tmux.tmux("capture-pane", "-p", "-J", "-t", tmux.session)  # long lines joined
    assert "STATUS=1" in screen
    errors = re.findall(r"autotrace: .*", screen)  # after the shell's prompt
    assert errors == [f"autotrace: {cast}:6: corrupt event: {why}"], screen
    assert "Traceback" not in screen
    assert re.search(r"^echo$", screen, re.M) and re.search(r"^icanon$", screen, re.M)
    assert tmux.tmux("display-message", "-p", "-t", tmux.session,
                     "#{alternate_on}").strip() == "0"

