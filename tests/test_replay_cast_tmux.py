"""`autotrace replay FILE.cast` in tmux: a lone asciicast file, made by the
real asciinema (v2) or written by hand in v3, plays as a one-pane recording."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import AUTOTRACE, REPO

pytestmark = pytest.mark.tmux
TMUX_SIZE = (100, 30)  # the tmux fixture's terminal (conftest)


def test_replay_of_a_cast_made_by_the_real_asciinema(tmux, tmp_path: Path) -> None:
    if not shutil.which("asciinema"):
        pytest.fail("asciinema is not installed (.ci/install-tools installs it)")
    cast = tmp_path / "made-by-asciinema.cast"
    subprocess.run(["asciinema", "rec", "-q", "-c",
                    "printf 'first line\\n\\033[31msecond in red\\033[0m\\n'", str(cast)],
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=True)
    tmux.start([*AUTOTRACE, "replay", str(cast)], cwd=REPO)
    screen = tmux.wait_for(r"END .*\n(.*\n)*.*second in red", timeout=30)
    assert "first line" in screen
    assert "made-by-asciinema.cast" in screen  # the header names what is played
    tmux.type("q")
    assert tmux.exit_status() == 0


def test_replay_of_a_hand_written_v3_file(tmux, tmp_path: Path) -> None:
    cast = tmp_path / "v3.cast"
    cast.write_text(
        '{"version": 3, "term": {"cols": 60, "rows": 10}, "command": "demo-v3"}\n'
        "# comments are allowed in v3\n"
        '[0.2, "o", "one\\r\\n"]\n'
        '[0.3, "m", "user:half way"]\n'
        '[0.2, "o", "two\\r\\n"]\n'
        '[1.3, "o", "three at two seconds\\r\\n"]\n')
    tmux.start([*AUTOTRACE, "replay", "--paused", str(cast)], cwd=REPO)
    tmux.wait_for(r"PAUSED\s+00:00.0 / 00:02.0", timeout=30)  # 0.2 + 0.3 + 0.2 + 1.3 s
    tmux.type("G")
    screen = tmux.wait_for(r"three at two seconds", timeout=20)
    assert "one" in screen and "two" in screen and "demo-v3" in screen
    tmux.type("q")
    assert tmux.exit_status() == 0
