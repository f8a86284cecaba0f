"""Shared helpers: run the real autotrace, read what it recorded, clean up after it.

The recording is read here with plain `json`, not with autotrace's own reader,
so the format tests check the files themselves and not the reader's opinion
of them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import psutil
import pytest

AUTOTRACE = (sys.executable, "-m", "autotrace")
REPO = Path(__file__).resolve().parent.parent

# Every autotrace a test starts, whatever its working directory, is this
# checkout's: not another copy that happens to be installed.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])

# The box is shared with other test runs: generous, but bounded.
DEFAULT_TIMEOUT = 60


def autotrace_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    env.update(extra)
    return env


def run_autotrace(args: Sequence[str | os.PathLike[str]], timeout: float = DEFAULT_TIMEOUT,
                  env: dict[str, str] | None = None,
                  prefix: Sequence[str] = (), **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run the real autotrace to its end, as a script would: no terminal, no stdin."""
    return subprocess.run(
        [*prefix, *AUTOTRACE, *map(str, args)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or autotrace_env(),
        cwd=REPO,
        **kw,
    )


def start_autotrace(args: Sequence[str | os.PathLike[str]], **kw: Any) -> subprocess.Popen[str]:
    """Start autotrace in its own session, so signals the test sends reach only it."""
    return subprocess.Popen(
        [*AUTOTRACE, *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=autotrace_env(),
        cwd=REPO,
        **kw,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """A user error: the given exit status, one line on stderr, never a traceback."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# ---------------------------------------------------------------- recordings


@dataclass
class PaneFile:
    header: dict[str, Any]
    events: list[list[Any]]  # [time, code, data], exactly as written

    def output(self) -> str:
        return "".join(data for _, code, data in self.events if code == "o")

    def times(self, code: str = "o") -> list[float]:
        return [t for t, c, _ in self.events if c == code]


class RecordingFiles:
    """A recording directory read with nothing but json."""

    def __init__(self, directory: Path):
        self.directory = directory

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.directory / "manifest.json").read_text(encoding="utf-8"))

    @property
    def panes(self) -> list[dict[str, Any]]:
        return self.manifest["panes"]

    def pane_file(self, index: int) -> PaneFile:
        path = self.directory / self.panes[index]["file"]
        lines = path.read_text(encoding="utf-8").splitlines()
        return PaneFile(json.loads(lines[0]), [json.loads(line) for line in lines[1:] if line])

    def output(self, index: int) -> str:
        return self.pane_file(index).output()


def trace(tmp_path: Path, *commands: str, options: Sequence[str] = (),
          timeout: float = DEFAULT_TIMEOUT,
          prefix: Sequence[str] = ()) -> tuple[subprocess.CompletedProcess[str], RecordingFiles]:
    """Run a headless session recording into a fresh folder under tmp_path."""
    directory = tmp_path / f"rec-{secrets.token_hex(3)}"
    result = run_autotrace(["--headless", "-l", directory, *options, *commands],
                           timeout=timeout, prefix=prefix)
    return result, RecordingFiles(directory)


# ---------------------------------------------------------------- processes


def processes_with(marker: str) -> list[psutil.Process]:
    """Live (not zombie) processes whose command line contains MARKER."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if marker in " ".join(proc.info["cmdline"] or ()):
            found.append(proc)
    return found


def autotrace_under(pid: int) -> psutil.Process | None:
    """The autotrace process among PID's descendants (a tmux window's shell, say)."""
    for proc in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            argv = proc.cmdline()
            if argv[1:3] == ["-m", "autotrace"] or os.path.basename(argv[1]) == "autotrace":
                return proc
    return None


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll CONDITION until it is truthy; for test set-up, never for timing asserts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def kill_all(procs: list[psutil.Process]) -> None:
    ours = os.getpgid(0)
    for proc in procs:
        try:
            group = os.getpgid(proc.pid)
            if group != ours:  # never the test run's own group
                os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(procs, timeout=5)


@pytest.fixture
def tmux(request: pytest.FixtureRequest) -> Any:
    """A detached tmux session to drive autotrace in as a person would, of the
    test module's TMUX_SIZE (cols, rows; 120x40 if it names none); killed after."""
    from tmuxdriver import Tmux

    cols, rows = getattr(request.module, "TMUX_SIZE", (120, 40))
    driver = Tmux(cols=cols, rows=rows)
    yield driver
    driver.kill()


@pytest.fixture
def marker() -> str:
    """A unique fractional part for `sleep` arguments, e.g. `sleep 100.0482137311`.

    Each test finds (and at the end kills) only its own processes by it.
    """
    token = f".{secrets.randbelow(10**9):09d}1"
    yield token
    kill_all(processes_with(token))


# ---------------------------------------------------------------- DNS stays local


@pytest.fixture
def loopback_resolver(tmp_path: Path) -> list[str]:
    """A prefix that runs autotrace in a private mount namespace whose
    /etc/resolv.conf names only 127.0.0.1 (where nothing answers).

    `getent hosts localhost` asks DNS for the AAAA record when /etc/hosts has no
    `::1 localhost` line: without this, tests would send queries to whatever
    nameserver the machine has, which must never happen from a test.
    """
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    return ["unshare", "-m", "sh", "-c",
            'mount --bind "$0" /etc/resolv.conf && exec "$@"', str(resolv)]
