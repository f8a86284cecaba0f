"""The view in the C locale, driven in tmux."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.tmux
TMUX_SIZE = (120, 30)  # the tmux fixture's terminal (conftest)


def test_the_view_draws_in_the_c_locale(tmux, tmp_path: Path) -> None:
    # Under LC_ALL=C the C library's wcswidth, which curtsies measures with,
    # knows no character past ASCII: the view's own `●` and `│` ended it with
    # an internal error before it drew a frame.
    tmux.start(["env", "LC_ALL=C", sys.executable, "-m", "autotrace", "-l",
                str(tmp_path / "rec"), "sh -c 'echo h\u00e9llo w\u00f6rld; exec sleep 60'",
                "strace -e trace=nanosleep -p PID"])
    screen = tmux.wait_for(r"h\u00e9llo w\u00f6rld", timeout=30)
    assert "Running" in screen and "internal error" not in screen
    tmux.send("q")
    tmux.exit_status(timeout=30)
