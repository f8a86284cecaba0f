"""Spawning pane processes in ptys, holding, stopping and tearing them down.

Every pane runs `/bin/sh -c COMMAND` in its own pty, session and process
group (ptyprocess calls setsid). The main command can be *held* (`held.py`):
it stops itself between fork and exec, keeping its pid, so tracers attach
before it runs a single instruction of its own (DESIGN.md, Process control).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shlex
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil
from ptyprocess import PtyProcess

from autotrace.format.names import program_word
from autotrace.live import held
from autotrace.live.pause_guard import read_stat

PANE_TERM = "xterm-256color"

PID_WORD = re.compile(r"\bPID\b")

# Tracers that attach with ptrace: readiness is the kernel's TracerPid, or
# their first output ("Process N attached").
PTRACE_TOOLS = frozenset({"strace", "ltrace", "gdb"})


# Tracers that only look at the process's state (its files, its memory,
# its /proc entries): run before the exec they would show autotrace's held
# child, not the program, and they miss nothing by starting just after it.
SAMPLING_TOOLS = frozenset({"lsof", "pidstat", "ps", "top", "htop", "pstree", "pmap",
                            "prtstat", "watch", "cat", "ls"})


def is_sampler(command: str) -> bool:
    word = program_word(command)
    return word is not None and os.path.basename(word) in SAMPLING_TOOLS


def substitute_pid(command: str, pid: int) -> str:
    """Replace the whole word PID (not MYPID, not PID_FILE) with the pid."""
    return PID_WORD.sub(str(pid), command)


# Shell operators (outside quotes) after which `exec` would change what the
# command means: lists, pipelines, background jobs, subshells, redirections,
# line breaks. `$` and backquotes are fine: exec expands them just the same.
OPERATOR_CHARS = "();<>|&\n"
SHELL_WORDS = frozenset((
    "if then else elif fi do done case esac while until for in { } ! [[ "
    "cd export set unset exit return . source alias eval exec trap read wait ulimit "
    "umask shift times break continue readonly local type command hash getopts jobs "
    "fg bg"
).split())


def exec_form(command: str) -> str:
    """`exec COMMAND` when that means the same, so the pane's pid is the program's.

    dash forks even for `sh -c 'one command'`; without exec, PID would be the
    shell, and `lsof -p PID` or `kill PID` would miss the program.
    """
    words = _shell_words(command)
    if (
        not words
        or any(set(word) <= set(OPERATOR_CHARS) for word in words)
        or "=" in words[0]
        or words[0] in SHELL_WORDS
    ):
        return command
    return f"exec {command}"


def _shell_words(command: str) -> list[str]:
    """Words and operators as the shell would split them; [] when it cannot be split.

    Quoted text stays one word, so `python3 -c 'a; b'` is one simple command.
    """
    lexer = shlex.shlex(command, posix=True, punctuation_chars=OPERATOR_CHARS)
    lexer.whitespace = " \t\r"  # a line break separates commands: an operator here
    lexer.commenters = ""
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes: let the shell say so, unchanged
        return []


# Characters that make the shell expand or re-read a word (variables,
# globs, tildes, escapes, comments): such a command is left to the shell.
EXPANDING_CHARS = frozenset("$`\\*?[]~{}#")


def shell_argv(command: str) -> list[str]:
    return ["/bin/sh", "-c", exec_form(command)]


def direct_exec(command: str, env: dict[str, str]) -> tuple[str, list[str]] | None:
    """COMMAND as (the program's path, argv) to exec with no shell, resolved
    on PATH as the shell would; None when only a shell can run it as written
    (shell syntax, a word the shell would expand, a program not found: the
    shell says so). argv[0] is the word as typed, as a shell passes it."""
    if exec_form(command) == command or EXPANDING_CHARS & set(command):
        return None
    words = _shell_words(command)
    path = held.resolve(words[0], env)
    return (path, words) if path else None


def is_ptrace_tool(command: str) -> bool:
    words = command.split()
    return bool(words) and os.path.basename(words[0]) in PTRACE_TOOLS


@dataclass(frozen=True)
class ExitStatus:
    """How a process ended: an exit code or a signal."""

    code: int | None = None
    signal: int | None = None

    @classmethod
    def from_wait(cls, status: int) -> ExitStatus:
        if os.WIFSIGNALED(status):
            return cls(signal=os.WTERMSIG(status))
        return cls(code=os.WEXITSTATUS(status))

    @property
    def signal_name(self) -> str | None:
        if self.signal is None:
            return None
        try:
            return signal.Signals(self.signal).name
        except ValueError:
            return f"SIG{self.signal}"

    @property
    def shell_code(self) -> int:
        """The status a shell would report: the code, or 128+N for signal N."""
        return 128 + self.signal if self.signal is not None else (self.code or 0)

    def describe(self) -> str:
        if self.signal is None and self.code is None:
            return "ended"  # a process we did not start: its status is not ours to know
        if self.signal is not None:
            return f"killed by {self.signal_name}"
        return f"exited {self.code}"


def pane_env(cols: int, rows: int, env: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if env is None else env)
    # The pane's terminal is autotrace's emulator, whatever the user's own
    # terminal is (or is not, in CI); the recording's header says the same.
    env["TERM"] = PANE_TERM
    env["COLUMNS"], env["LINES"] = str(cols), str(rows)
    return env


def spawn(command: str, cols: int, rows: int, env: dict[str, str] | None = None) -> PtyProcess:
    """Start COMMAND through /bin/sh in a new pty of the given size."""
    env = pane_env(cols, rows, env)
    proc = PtyProcess.spawn(shell_argv(command), env=env, dimensions=(rows, cols))
    return _non_blocking(proc)


def spawn_held(command: str, cols: int, rows: int,
               env: dict[str, str] | None = None) -> held.HeldChild:
    """Start COMMAND in a new pty, stopped before its exec until SIGCONT:
    the program itself when it is a simple command, else /bin/sh -c."""
    env = pane_env(cols, rows, env)
    argv = shell_argv(command)
    path, argv = direct_exec(command, env) or (argv[0], argv)
    child = held.spawn_held(path, argv, env, cols, rows)
    os.set_blocking(child.exec_report, False)
    _non_blocking(child.proc)
    return child


def _non_blocking(proc: PtyProcess) -> PtyProcess:
    # ptyprocess sleeps this long in close() for a child to go; we close only
    # after reaping it ourselves, so the sleep would just delay the end.
    proc.delayafterclose = 0.0
    os.set_blocking(proc.fd, False)
    return proc


def state_of(pid: int) -> str | None:
    """PID's state letter (R, S, T stopped, t traced, Z...); None when it is gone.
    From /proc/PID/stat directly: startup does not wait for psutil's import."""
    stat = read_stat(pid)
    return stat.state if stat is not None else None


def wait_until_stopped(pid: int, timeout: float = 5.0) -> bool:
    """Wait for a held child to stop itself; startup only, not the hot path."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = state_of(pid)
        if state == "T":
            return True
        if state is None:
            return False
        time.sleep(0.002)
    return False


def is_alive(pid: int) -> bool:
    """PID runs (or is stopped): not gone, not a zombie waiting for its parent."""
    return state_of(pid) not in (None, "Z", "X")


def tracer_pid_of(pid: int) -> int:
    """The pid ptrace-attached to PID, 0 if none (psutil does not expose it)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def become_subreaper() -> bool:
    """Orphans of our panes are re-parented to us, so teardown can find them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_CHILD_SUBREAPER = 36
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def signal_process(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def has_children() -> bool:
    """Any child process, running or ended and not reaped yet (none is reaped here)."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WSTOPPED | os.WCONTINUED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def our_descendants() -> list[psutil.Process]:
    # Every descendant has a child of ours among its ancestors: with no child,
    # there is none, and the walk through all of /proc (tens of ms on a busy
    # machine, twice a teardown) is not needed.
    if not has_children():
        return []
    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def reap_any() -> list[tuple[int, int]]:
    """Reap every child that has ended: [(pid, wait status)]."""
    reaped = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        reaped.append((pid, status))
    return reaped


def terminate(pgids: Iterable[int], grace: float,
              on_reaped: Callable[[int, int], None] | None = None) -> None:
    """TERM every group and every descendant, KILL what is left after GRACE, reap all.

    Stopped processes get SIGCONT too, or they would sit on the TERM forever.
    A process we attached to is neither in our panes' groups nor our descendant,
    so it is never signalled here.
    """
    pgids = list(pgids)

    def report(reaped: list[tuple[int, int]]) -> None:
        if on_reaped:
            for pid, status in reaped:
                on_reaped(pid, status)

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pgid in pgids:
            signal_group(pgid, sig)
            signal_group(pgid, signal.SIGCONT)
        for proc in our_descendants():
            signal_process(proc.pid, sig)
            signal_process(proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline:
            report(reap_any())
            if not our_descendants():
                return
            time.sleep(0.01)
    report(reap_any())


# What the session's loop reads from one pane per turn: a pane that floods is
# read again on the next turn, after the other panes (recording 1 MiB at
# once, on a busy machine, held their reads up by 100 ms; 256 KiB, up to
# 180 ms with the view drawing). The price: `seq 1 3000000` with the view on
# runs at a third of its speed (benchmarks/bench_view.py, seq).
READ_PER_TURN = 1 << 16
# A read shorter than this is taken to have emptied the pty (read_available).
SMALL_READ = 1024


def read_available(fd: int, limit: int = 1 << 20, whole: bool = True) -> tuple[bytes, bool]:
    """Drain a non-blocking pty master, at most `limit` bytes: (data, eof).
    EIO means the slave side closed. Not `whole` (a loop's turn), a short
    read ends it: the rest, if any, wakes the loop again."""
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return b"".join(chunks), False
        except OSError as err:
            if err.errno == errno.EIO:
                return b"".join(chunks), True
            raise
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
        total += len(chunk)
        if not whole and len(chunk) < SMALL_READ and chunk.endswith(b"\n"):
            # A line or two: what was there is read (a pty hands out up to
            # about 4 KiB a read, so a flood never stops here). Asking again
            # would cost a failing read and its exception, most turns; what
            # comes next wakes the loop again. A read that ends inside a line
            # asks again: the line discipline hands one write on in pieces
            # (`tick\n` as `tick`, then the `\r\n` ONLCR made of its `\n`),
            # and a line is recorded whole when the program wrote it whole.
            break
    return b"".join(chunks), False
