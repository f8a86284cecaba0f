"""The peers autotrace is measured against, and how to get each of them.

- `script` (util-linux): the cost of a pty and nothing else; the floor.
- `asciinema rec` (Debian's 2.2): a recorder of one pty to an asciicast file,
  in Python, as autotrace is.
- the original autotrace 0.0.26 from PyPI, in its own virtual environment
  under ~/.cache/autotrace-bench (curtsies + pexpect; needs a terminal, so it
  is only run inside tmux by the view benchmarks).
- tmux itself, as a multi-pane viewer (driven in bench_view).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from common import BenchError, require_tool

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "autotrace-bench"
ORIGINAL_VENV = CACHE / "orig-venv"

# The set that installs and runs here (checked with Python 3.11): 0.0.26 only
# asks for curtsies/pexpect without bounds, so the resolved versions are pinned
# to keep the peer the same from one run to the next.
ORIGINAL_PINS = (
    "autotrace==0.0.26",
    "curtsies==0.4.3",
    "blessed==1.52.0",
    "cwcwidth==0.1.12",
    "pexpect==4.9.0",
    "ptyprocess==0.7.0",
)


def script_argv(command: str) -> list[str]:
    """util-linux script: COMMAND in a pty, its output copied to our stdout."""
    return [require_tool("script"), "-q", "-c", command, "/dev/null"]


def asciinema_argv(command: str, cast: Path) -> list[str]:
    """asciinema rec of COMMAND into CAST.

    asciinema 2.2 needs no terminal of its own: with stdout not a tty it
    records at 80x24, does not read stdin (no --stdin) and writes nothing but
    the file when --quiet; so it runs like the others, with no pty around it.
    """
    return [require_tool("asciinema"), "rec", "--quiet", "--overwrite", "-c", command,
            str(cast)]


def original_autotrace() -> Path:
    """The original autotrace's executable, installed on first use (about 20 s)."""
    executable = ORIGINAL_VENV / "bin" / "autotrace"
    stamp = ORIGINAL_VENV / "pins.txt"
    wanted = "\n".join(ORIGINAL_PINS) + "\n"
    if executable.exists() and stamp.exists() and stamp.read_text() == wanted:
        return executable
    print(f"installing the original autotrace 0.0.26 into {ORIGINAL_VENV} ...", flush=True)
    ORIGINAL_VENV.parent.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", "--clear", str(ORIGINAL_VENV)])
    _run([str(ORIGINAL_VENV / "bin" / "pip"), "install", "--quiet", *ORIGINAL_PINS])
    # It must at least start: --help needs no terminal.
    _run([str(executable), "--help"])
    stamp.write_text(wanted)
    return executable


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=600)
    if result.returncode != 0:
        # pip's warnings about this machine's extra indexes are noise; its last
        # lines say what failed.
        tail = " / ".join(result.stderr.strip().splitlines()[-3:])
        raise BenchError(f"cannot set up the original autotrace: {argv[0]}: {tail}")
