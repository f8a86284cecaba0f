"""Capture golden screens: real program output through a real pty, and what a
real terminal (tmux) shows for those bytes.

    .venv/bin/python tests/golden/capture.py            # all cases
    .venv/bin/python tests/golden/capture.py less-quit  # one case

Writes NAME.COLSxROWS.raw (the bytes the program wrote) and
NAME.COLSxROWS.txt (tmux's screen after those bytes: the independent oracle
that tests/test_screen.py compares PaneScreen against). Rerun it and review
the diff when a case changes; the files are committed.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shlex
import struct
import subprocess
import sys
import tempfile
import termios
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (cols, rows, shell command, keys typed once the output settles)
CASES: dict[str, tuple[int, int, str, bytes]] = {
    "ls-color": (80, 24, "ls --color=always -F /", b""),
    "printf-attrs": (
        60,
        12,
        r"printf '\033[1mbold\033[0m \033[4munder\033[0m \033[7mrev\033[0m"
        r" \033[3mital\033[0m\n\033[31mred \033[42mon green\033[0m"
        r" \033[38;5;208m256\033[0m \033[38;2;10;20;30mrgb\033[0m\n"
        r"tab\there\tthere\n中文 wide 😀 emoji\ncafé e\314\201\n'",
        b"",
    ),
    "seq-scroll": (40, 10, "seq 1 500", b""),
    "less-quit": (
        70,
        15,
        "echo before less; seq 1 200 > \"$TMPDIR/numbers\"; "
        "less \"$TMPDIR/numbers\"; echo after less",
        b"q",
    ),
    "smcup": (
        50,
        10,
        "echo main one; tput smcup; echo in the alternate screen; tput cup 5 5; "
        "echo moved; tput rmcup; echo main two",
        b"",
    ),
    "progress": (
        40,
        6,
        r"for i in 10 20 30 40 50 60 70 80 90 100; do printf '\r[%3d%%] working' $i; done;"
        r" printf '\ndone\n'",
        b"",
    ),
    "clear-and-draw": (
        40,
        8,
        r"seq 1 30; clear; printf 'top\033[5;10Hmiddle\033[2;1H\033[2Ksecond\033[8;30Hend'",
        b"",
    ),
    "hostile": (
        60,
        8,
        r"printf 'a\033]52;c;aGVsbG8=\007b\033]0;evil title\007c\033P1;2|secret\033\\d"
        r"\033_apc payload\033\\e\033^pm\033\\f\302\233\302\235g\342\200\256h\n'",
        b"",
    ),
}


def capture_raw(cols: int, rows: int, command: str, keys: bytes) -> bytes:
    """Run `command` in a pty of the given size; everything it wrote."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm-256color"
        os.environ["LESS"] = ""
        os.environ["LC_ALL"] = "C.UTF-8"
        os.execvp("sh", ["sh", "-c", command])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    output = bytearray()
    typed = not keys
    while True:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            if not typed:
                os.write(fd, keys)  # the program has settled: type what a person would
                typed = True
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        output += data
    os.waitpid(pid, 0)
    return bytes(output)


def terminal_screen(cols: int, rows: int, raw: bytes) -> str:
    """What tmux shows after those bytes, via capture-pane."""
    socket = f"golden-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        bytes_file, config = Path(tmp, "screen.raw"), Path(tmp, "tmux.conf")
        bytes_file.write_bytes(raw)
        config.write_text("set -g status off\n")  # the whole window is the pane
        # stty raw: the bytes reach tmux's terminal exactly as the program wrote them.
        show = f"stty raw -echo; cat {shlex.quote(str(bytes_file))}; exec sleep 60"
        tmux = ["tmux", "-L", socket, "-f", str(config)]
        subprocess.run(
            [*tmux, "new-session", "-d", "-x", str(cols), "-y", str(rows), show], check=True
        )
        try:
            time.sleep(1.0)
            screen = subprocess.run(
                [*tmux, "capture-pane", "-p"], check=True, capture_output=True, text=True
            ).stdout
        finally:
            subprocess.run([*tmux, "kill-server"], check=False)
    return screen


def main(names: list[str]) -> None:
    for name in names or list(CASES):
        cols, rows, command, keys = CASES[name]
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["TMPDIR"] = tmp
            raw = capture_raw(cols, rows, command, keys)
        stem = f"{name}.{cols}x{rows}"
        (HERE / f"{stem}.raw").write_bytes(raw)
        (HERE / f"{stem}.txt").write_text(terminal_screen(cols, rows, raw))
        print(f"{stem}: {len(raw)} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
