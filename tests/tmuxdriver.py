"""Drive a real program in tmux as a person would: type with send-keys, read
with capture-pane. Each driver has its own tmux server (socket), so tests can
run side by side."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil


def autotrace_argv(tmp_path: Path, *commands: str, options: tuple[str, ...] = ()) -> list[str]:
    """The command line of a session of COMMANDS recorded under TMP_PATH/rec."""
    return [sys.executable, "-m", "autotrace", "-l", str(tmp_path / "rec"), *options,
            *commands]


def pane_titles(screen: str) -> list[int]:
    """Pane numbers whose title line is on screen (title: ' N  state  command')."""
    found = re.finditer(r"(\d)  (?:running|stopped|exited|killed)", screen)
    return sorted({int(m.group(1)) for m in found})


def across_lines(text: str) -> str:
    """A regex for TEXT that tmux may have wrapped at any column (a long
    command line before it moves where the break falls); a space that fell at
    the break is not in capture-pane's text, so whitespace may be absent."""
    return r"\s*".join(re.escape(char) for char in text if not char.isspace())


class Tmux:
    def __init__(self, cols: int = 120, rows: int = 40):
        self.socket = f"at-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.cols, self.rows = cols, rows
        self.session = "t"

    def tmux(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                                text=True, timeout=20)
        if check and result.returncode != 0:
            raise RuntimeError(f"tmux {args}: {result.stderr.strip()}")
        return result.stdout

    def start(self, argv: list[str], env: dict[str, str] | None = None,
              cwd: Path | None = None) -> None:
        """Run argv in a new window; when it exits, its status is printed as
        `[exit N]` and the window stays, so the screen can still be read."""
        env_words = [f"{k}={v}" for k, v in (env or {}).items()]
        wrapper = ["sh", "-c", '"$@"; echo "[exit $?]"; exec sleep 3600', "sh"]
        command = " ".join(shlex.quote(w) for w in ["env", *env_words, *wrapper, *argv])
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", self.session,
                  "-x", str(self.cols), "-y", str(self.rows),
                  *(["-c", str(cwd)] if cwd else []), command)

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.session, "-l", text)

    def capture(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.session)

    def capture_lines(self) -> list[str]:
        return self.capture().split("\n")

    def wait_for(self, pattern: str, timeout: float = 15.0) -> str:
        """Wait until the screen matches the regex and has settled (a frame can
        reach the terminal in several writes); the screen text is returned."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if re.search(pattern, screen):
                settled = self._settled(screen)
                if re.search(pattern, settled):
                    return settled
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for /{pattern}/; screen was:\n{screen}")

    def _settled(self, screen: str, quiet: float = 0.15, limit: float = 2.0) -> str:
        """The screen once it has stopped changing for `quiet` seconds."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            time.sleep(quiet)
            again = self.capture()
            if again == screen:
                return screen
            screen = again
        return screen

    def wait_gone(self, pattern: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if not re.search(pattern, screen):
                return screen
            time.sleep(0.05)
        raise AssertionError(f"/{pattern}/ did not go away; screen was:\n{screen}")

    def pane_pid(self) -> int:
        return int(self.tmux("display-message", "-p", "-t", self.session, "#{pane_pid}"))

    def exit_status(self, timeout: float = 20.0) -> int:
        """The status the program exited with (see start)."""
        screen = self.wait_for(r"\[exit \d+\]", timeout)
        return int(re.findall(r"\[exit (\d+)\]", screen)[-1])

    def resize(self, cols: int, rows: int) -> None:
        self.tmux("resize-window", "-t", self.session, "-x", str(cols), "-y", str(rows))

    def kill(self) -> None:
        try:
            pid = self.pane_pid()
            procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        except (RuntimeError, ValueError, psutil.Error):
            procs = []
        self.tmux("kill-server", check=False)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()
