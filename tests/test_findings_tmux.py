"""The findings in the view, driven in tmux as a person would: the count on the
status line, F for the list, Enter to move every pane to a finding, live and in a replay."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_dns_probe import SERVER
from tmuxdriver import Tmux

pytestmark = pytest.mark.tmux
TMUX_SIZE = (160, 45)  # the tmux fixture's terminal (conftest)


# Its own network namespace: @dns sees every DNS packet of the namespace it is in,
# and this machine's (other tests, other programs) must not add findings here.
ISOLATED = """
ip link set lo up
"$PYTHON" "$SERVER" --address 127.0.0.153 --port 10053 > "$READY" 2>&1 &
echo $! > "$READY.pid"
for i in $(seq 100); do grep -q ready "$READY" && break; sleep 0.1; done
exec "$@"
"""
ADDRESS = "127.0.0.153"


@pytest.fixture
def isolated(tmp_path: Path):
    """A prefix: run in a fresh network namespace with a DNS server on ADDRESS:10053."""
    ready = tmp_path / "ready"
    yield ["env", f"PYTHON={sys.executable}", f"SERVER={SERVER}", f"READY={ready}",
           "unshare", "-n", "sh", "-c", ISOLATED, "sh"]
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(Path(f"{ready}.pid").read_text()), signal.SIGKILL)


def lookups(address: str) -> str:
    """One NXDOMAIN, then enough good lookups and lines that it is far from every tail."""
    dig = f"dig @{address} -p 10053 +tries=1 +short"
    return (f"{dig} nope.test; echo looked-up-nope; "
            f"for i in $(seq 25); do {dig} small.test; done; seq 1 80; sleep 60")


def inverted_lines(tmux: Tmux) -> list[str]:
    """Screen lines that hold reverse video (search matches are drawn inverted)."""
    screen = tmux.tmux("capture-pane", "-p", "-e", "-t", tmux.session)
    return [line for line in screen.split("\n") if re.search(r"\x1b\[(?:\d+;)*7(?:;\d+)*m", line)]


def test_live_findings_count_list_and_jump(tmux, isolated, tmp_path: Path) -> None:
    tmux.start([*isolated, sys.executable, "-m", "autotrace", "-l", str(tmp_path / "rec"),
                lookups(ADDRESS), "@dns:10053"])
    tmux.wait_for(r"F \d+ findings? \(1 error\)", timeout=40)  # the status line's count
    tmux.wait_for(r"(?m)^80 *$")
    tmux.send("F")
    screen = tmux.wait_for("NXDOMAIN for nope")
    listed = [line for line in screen.split("\n") if "pane 1" in line]
    assert any("error" in line and "NXDOMAIN for nope.test. A" in line for line in listed), screen
    # Down to the NXDOMAIN (the list is in time order), then go there.
    position = next(i for i, line in enumerate(listed) if "NXDOMAIN" in line)
    for _ in range(position):
        tmux.send("j")
    tmux.send("Enter")
    screen = tmux.wait_for("finding at [\\d.]+ s: NXDOMAIN for nope.test")
    # The @dns pane went back to its evidence, and time-sync took the main pane
    # to the same moment: the lines printed after the lookup are out of view.
    assert re.search(r" 1  running  \d+ lines back .*dns_capture", screen), screen
    assert re.search(r" 0  running  \d+ lines back", screen), screen
    assert not re.search(r"^\s*80\s*$", screen, re.M), screen
    assert any("NXDOMAIN" in line for line in inverted_lines(tmux)), screen
    tmux.send("q")
    tmux.wait_for(r"\[exit \d+\]", timeout=30)


def test_replay_findings_seek_to_the_moment(tmux, isolated, tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    main = lookups(ADDRESS).replace("sleep 60", "sleep 0.5")
    subprocess.run([*isolated, sys.executable, "-m", "autotrace", "--headless", "-q", "-l",
                    str(directory), main, "@dns:10053"], check=True, timeout=90,
                   stdin=subprocess.DEVNULL)
    tmux.start([sys.executable, "-m", "autotrace", "replay", str(directory), "--speed", "1"])
    tmux.wait_for(r"F \d+ findings? \(1 error\)")  # all of them known from the start
    tmux.send("F")
    screen = tmux.wait_for("NXDOMAIN for nope")
    listed = [line for line in screen.split("\n") if "pane 1" in line]
    position = next(i for i, line in enumerate(listed) if "NXDOMAIN" in line)
    for _ in range(position):
        tmux.send("j")
    tmux.send("Enter")
    screen = tmux.wait_for("finding at [\\d.]+ s: NXDOMAIN")
    screen = tmux.wait_for("PAUSED")  # held at the moment, to read
    found = subprocess.run([sys.executable, "-m", "autotrace", "findings", "--json",
                            str(directory)], capture_output=True, text=True).stdout
    nxdomain = next(json.loads(line) for line in found.splitlines() if "NXDOMAIN" in line)
    answer = nxdomain["evidence"][-1]["line"]
    # The answer is on screen, the newest line of its pane: nothing after it yet.
    assert answer[:40] in screen and "small.test. A" not in screen.split(answer[:40])[-1]
    marked = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in inverted_lines(tmux)]
    assert any(answer[:40] in line for line in marked), screen
    tmux.send("q")
    tmux.wait_for(r"\[exit 0\]")
