"""A flooding pane in the live view, driven in tmux: reading, recording and
keys never wait for the emulation of what it printed (issue 8, item 6).

Pane 0 floods; pane 1 prints its wall-clock time every 0.1 s, so its
recording shows how late each read was while pane 0 was being emulated.
"""

from __future__ import annotations

import json
import re
import signal
import statistics
import sys
import time
from pathlib import Path

import psutil
import pytest
from tmuxdriver import Tmux

pytestmark = [pytest.mark.tmux, pytest.mark.alone]  # measures delays: run alone

# The two floods of the issue, each repeated for FLOOD_FOR seconds so that it
# is still going on while the test presses keys: 6 MB of line feeds without
# carriage returns, and 5 MB on one line with autowrap off.
FLOOD_FOR = 5
_REPEAT = f"end=$(($(date +%s) + {FLOOD_FOR})); while [ $(date +%s) -lt $end ]; do "
FLOODS = {
    "lf-only": f"stty -onlcr; {_REPEAT} yes ab | head -c 6000000; done",
    "wrap-off": f"{_REPEAT} printf '\\033[?7l'; head -c 5000000 /dev/zero | tr '\\0' x; done",
}
# Before the flood: a few clock lines recorded at an idle time, the baseline.
FLOOD_AFTER = 2.0
# Pane 0 has begun flooding once its recording holds this much.
FLOODING = 1_000_000

# Pane 1: "T <unix time>" every 0.1 s, for longer than any flood lasts.
CLOCK = (f"{sys.executable} -c \"import time\nfor i in range(150):\n"
         f" print('T', repr(time.time()), flush=True); time.sleep(0.1)\n"
         f"time.sleep(60)\"")

# A key must be answered within 200 ms. The box running the tests is shared
# (2 cores, several test runs at once), so one poll of capture-pane plus a
# scheduling delay can add a few hundred ms by themselves; 1 s still fails
# by a wide margin what this guards against (15 s and more before the fix).
KEY_ANSWERED_WITHIN = 1.0
# Every read is recorded within 50 ms of its arrival. On the shared test
# box autotrace waits for a CPU now and then, tens of ms by itself: nine
# lines in ten must make 50 ms, and every line 150 ms. Before the fix every
# line during the flood was late, by up to 15 s (wrap off) and 39 s (LF only).
RECORDED_WITHIN = 0.05
RECORDED_WITHIN_ON_A_BUSY_BOX = 0.15


def start(tmux: Tmux, tmp_path: Path, flood: str) -> Path:
    recording = tmp_path / "rec"
    tmux.start([sys.executable, "-m", "autotrace", "-l", str(recording),
                f"sleep {FLOOD_AFTER}; {FLOODS[flood]}; sleep 60", CLOCK])
    tmux.wait_for(r"T \d+\.\d+")
    return recording


def wait_until_flooding(recording: Path, timeout: float = 30.0) -> None:
    pane = recording / "pane-0.cast"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pane.exists() and pane.stat().st_size > FLOODING:
            return
        time.sleep(0.02)
    raise AssertionError("pane 0 never started flooding")


def wait_until_flood_is_over(recording: Path) -> None:
    """Until pane 1 has printed past the end of the flood (or a minute)."""
    manifest = json.loads((recording / "manifest.json").read_text())
    over = manifest["started_unix"] + manifest["panes"][0]["start"] + FLOOD_AFTER + FLOOD_FOR + 1
    deadline = time.monotonic() + 60
    while time.time() < over and time.monotonic() < deadline:
        time.sleep(0.1)


def seconds_until(tmux: Tmux, key: str, shown: bool, text: str = "autotrace keys",
                  timeout: float = 60.0) -> float:
    """Press `key`, return how long until `text` is on screen (or gone)."""
    start = time.monotonic()
    tmux.send(key)
    while time.monotonic() - start < timeout:
        if (text in tmux.capture()) == shown:
            return time.monotonic() - start
        time.sleep(0.01)
    return timeout


def autotrace_process(tmux: Tmux) -> psutil.Process:
    return next(p for p in psutil.Process(tmux.pane_pid()).children(recursive=True)
                if "autotrace" in " ".join(p.cmdline()))


def clock_lateness(recording: Path) -> tuple[list[float], list[float]]:
    """For each clock line of pane 1: recorded wall time minus printed wall
    time, split into lines printed before pane 0 flooded and after."""
    manifest = json.loads((recording / "manifest.json").read_text())
    started = manifest["started_unix"]
    flood_starts = started + manifest["panes"][0]["start"] + FLOOD_AFTER
    before, during = [], []
    lines = (recording / "pane-1.cast").read_text().splitlines()[1:]
    for t, code, data in map(json.loads, lines):
        if code != "o":
            continue
        for line in data.splitlines(keepends=True):
            # A whole line only: its time was read whole, with its end.
            if re.fullmatch(r"T \d+\.\d+\r?\n", line):
                printed = float(line[2:])
                (before if printed < flood_starts else during).append(started + t - printed)
    return before, during


@pytest.mark.parametrize("flood", sorted(FLOODS))
def test_keys_and_other_panes_are_not_held_up_by_a_flood(tmux, tmp_path, flood):
    recording = start(tmux, tmp_path, flood)
    wait_until_flooding(recording)
    answers = []
    for _ in range(3):
        answers.append(seconds_until(tmux, "h", shown=True))
        answers.append(seconds_until(tmux, "x", shown=False))
    wait_until_flood_is_over(recording)
    tmux.send("q")
    assert tmux.exit_status(timeout=60) == 143
    assert max(answers) < KEY_ANSWERED_WITHIN, f"keys answered after {answers} s"
    before, during = clock_lateness(recording)
    assert len(before) >= 5 and len(during) >= 10 * FLOOD_FOR, (before, during)
    # Recorded times may be off by a constant (the session's clock starts a
    # little after started_unix): lateness is measured against the idle baseline.
    baseline = statistics.median(before)
    late = sorted(round(x - baseline, 3) for x in during)
    assert late[len(late) * 9 // 10] <= RECORDED_WITHIN, f"pane 1 recorded late: {late}"
    assert late[-1] <= RECORDED_WITHIN_ON_A_BUSY_BOX, f"pane 1 recorded late: {late}"


@pytest.mark.parametrize("flood", sorted(FLOODS))
def test_a_hangup_during_a_flood_ends_the_session_at_once(tmux, tmp_path, flood):
    recording = start(tmux, tmp_path, flood)
    wait_until_flooding(recording)
    process = autotrace_process(tmux)
    sent = time.monotonic()
    process.send_signal(signal.SIGHUP)
    process.wait(timeout=60)
    took = time.monotonic() - sent
    # Teardown sends TERM and waits for the panes to end; `yes` and `sleep` end on TERM.
    assert took < 3.0, f"autotrace took {took:.1f} s to end after SIGHUP"
    assert tmux.exit_status() == 129
