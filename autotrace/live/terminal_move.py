"""Moving a picked-up job's stdio to a pty of ours and back (the dup2 technique).

After Ctrl-Z and plain `autotrace`, the job still writes to the shell's
terminal, which the view is drawn on. So its descriptors 0-2 that point at
that terminal are pointed at a pane's pty instead, and at the end back at
the terminal they came from: the process is made to call
`open(path, O_RDWR|O_NOCTTY)`, `dup2` onto each descriptor and `close`, for
a moment under ptrace (a stopped job stays stopped). On x86-64 the calls are
injected by `fd_inject.py` (it says why not gdb's `call`); elsewhere gdb
makes them.

Why dup2 and not reptyr: reptyr makes the process the leader of a new
session on reptyr's own pty, and reptyr stays as a proxy between the two;
the job then belongs to no job of the shell (`fg` fails), and giving it back
leaves a reptyr proxy reading the shell's terminal. dup2 keeps the job in
its shell's session and process group, so after the give-back it is the
same job, `fg` and `bg` work. What dup2 cannot move is the controlling
terminal, so the keys that make signals (Ctrl-C, Ctrl-Z, Ctrl-\\) reach the
pane's pty and its foreground process: the pane's holder (HOLDER below),
which hands those signals on to the job's process group, as a terminal does,
and gives the job back itself if autotrace dies without doing it (SIGKILL).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys

from ptyprocess import PtyProcess

from autotrace.live import fd_inject, procs

MOVE_TIMEOUT = 20.0  # a mover (gdb at worst) attaching to a large process on a loaded machine
INJECTOR = fd_inject.__file__
STDIO = (0, 1, 2)
_O_RDWR_NOCTTY = os.O_RDWR | os.O_NOCTTY

# The process that holds the pane's pty while the job writes to it: it does
# nothing but hand on the signals the pty's line discipline and size changes
# make (the pty's foreground process group is the holder's) to the job's
# group, and ends when the job has. If autotrace dies without giving the job
# back (SIGKILL), the pty hangs up and the holder gets SIGHUP: it gives the
# job back itself (the commands it was given, once no tracer holds the
# job). Standard library only, no site: it must start fast and never import
# the user's modules.
HOLDER = """\
import json, os, signal, subprocess, sys, time
pid, group, give_back = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
def hand_on(signum, frame):
    try:
        os.killpg(group, signum)
    except OSError:
        pass
def traced():
    try:
        with open("/proc/%d/status" % pid) as f:
            return any(l.split()[1:] != ["0"] for l in f if l.startswith("TracerPid:"))
    except OSError:
        return False
def hung_up(signum, frame):
    deadline = time.monotonic() + 10
    while traced() and time.monotonic() < deadline:
        time.sleep(0.05)  # strace lost its pty too: it detaches as it goes
    for argv in give_back:
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
    os._exit(0)
for signum in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGWINCH):
    signal.signal(signum, hand_on)
signal.signal(signal.SIGHUP, hung_up)
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
def alive():
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False
while alive():
    time.sleep(0.2)
"""


NOT_ON_A_TERMINAL = "none of its stdin, stdout, stderr is on a terminal"
NO_PTRACE = "ptrace not permitted"


def terminal_fds(pid: int, terminal: str | None = None) -> dict[int, str] | None:
    """Which of PID's fds 0-2 are on a terminal (`terminal`, or any tty), by
    path; None when we may not look (the same permission as ptrace)."""
    found: dict[int, str] = {}
    for fd in STDIO:
        try:
            path = os.readlink(f"/proc/{pid}/fd/{fd}")
        except PermissionError:
            return None
        except OSError:
            continue
        if path == terminal or (terminal is None and _is_tty_path(path)):
            found[fd] = path
    return found


def _is_tty_path(path: str) -> bool:
    return path.startswith(("/dev/pts/", "/dev/tty")) and path != "/dev/tty"


def pty_path(holder_pid: int) -> str | None:
    """The path of a pane's pty, from its holder's stdin."""
    try:
        return os.readlink(f"/proc/{holder_pid}/fd/0")
    except OSError:
        return None


def move(pid: int, fds: list[int], path: str) -> str | None:
    """Point PID's `fds` at the terminal `path`. None when done, else why not
    (one line: gdb missing, ptrace refused, the process gone...)."""
    if not fds:
        return NOT_ON_A_TERMINAL
    argv = mover_argv(pid, fds, path)
    if argv is None:
        return "gdb is not installed (apt-get install gdb)"
    try:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=MOVE_TIMEOUT, errors="replace")
    except subprocess.TimeoutExpired:
        return f"{os.path.basename(argv[0])} did not finish in time"
    except OSError as err:
        return f"{os.path.basename(argv[0])} cannot run: {err.strerror}"
    if all((terminal_fds(pid, path) or {}).get(fd) == path for fd in fds):
        return None
    return _why(result.stdout + result.stderr)


def mover_argv(pid: int, fds: list[int], path: str) -> list[str] | None:
    """The command that points PID's `fds` at `path`: the injector on x86-64,
    gdb elsewhere (None: no gdb)."""
    if os.uname().machine == "x86_64":
        return [sys.executable, "-I", "-S", INJECTOR, str(pid), path, *map(str, fds)]
    return gdb_argv(pid, fds, path)


def gdb_argv(pid: int, fds: list[int], path: str) -> list[str] | None:
    """The gdb command that points PID's `fds` at `path` (None: no gdb)."""
    gdb = shutil.which("gdb")
    if gdb is None:
        return None
    quoted = path.replace("\\", "\\\\").replace('"', '\\"')
    script = [f'call (int)open("{quoted}", {_O_RDWR_NOCTTY})']
    script += [f"call (int)dup2($1, {fd})" for fd in fds]
    script += ["call (int)close($1)", "detach", "quit"]
    # Only libc's symbols are needed (open, dup2, close): reading every
    # library's (a python's) took 1.6-2.9 s on a loaded machine, this 0.6 s.
    argv = [gdb, "-nx", "-batch", "-q", "-iex", "set auto-solib-add off", "-iex",
            "set auto-load off", "-iex", "set debuginfod enabled off", "-p", str(pid),
            "-ex", "sharedlibrary libc\\."]
    for line in script:
        argv += ["-ex", line]
    return argv


def _by_terminal(came_from: dict[int, str]) -> dict[str, list[int]]:
    by_terminal: dict[str, list[int]] = {}
    for fd, path in came_from.items():
        by_terminal.setdefault(path, []).append(fd)
    return by_terminal


def _why(output: str) -> str:
    for line in output.splitlines():
        if "Operation not permitted" in line:
            return NO_PTRACE
        if "ptrace" in line or "No such process" in line:
            return f"could not attach: {line.strip()}"
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return f"could not move it: {lines[-1] if lines else 'no reason given'}"


def let_open(path: str, pid: int) -> None:
    """Under sudo the pty is root's: the job (the user's) must be able to open it."""
    with contextlib.suppress(OSError):
        uid = os.stat(f"/proc/{pid}").st_uid
        if os.geteuid() == 0 and uid != 0:
            os.chown(path, uid, -1)


def job_members(pid: int, group: int) -> list[int]:
    """The job's processes: PID first, then the others of its process group
    (a pipeline's, a make's children), each of which may hold the terminal."""
    members = [pid]
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != pid:
                with contextlib.suppress(OSError):
                    if os.getpgid(int(entry)) == group:
                        members.append(int(entry))
    return members


Moves = list[tuple[int, list[int], str]]  # (pid, its fds, the terminal they go to)


def _move_all(moves: Moves) -> list[str | None]:
    """Each move's outcome (see move), in order. The processes are moved at
    once, but one process's moves (fds going back to two terminals) one after
    another: a process has one tracer at a time."""
    if not moves:
        return []
    from concurrent.futures import ThreadPoolExecutor  # a Ctrl-Z pick-up only: not at start

    by_pid: dict[int, list[int]] = {}
    for position, (pid, _, _) in enumerate(moves):
        by_pid.setdefault(pid, []).append(position)
    outcomes: list[str | None] = [None] * len(moves)

    def one_process(positions: list[int]) -> None:
        for position in positions:
            outcomes[position] = move(*moves[position])

    with ThreadPoolExecutor(max_workers=min(8, len(by_pid))) as pool:
        list(pool.map(one_process, by_pid.values()))
    return outcomes


def move_in(pid: int, group: int, cols: int, rows: int
            ) -> tuple[PtyProcess, str, dict[int, dict[int, str]]] | str:
    """A pty for the job (its holder started in it) with the terminal fds of
    every process of the job moved onto it: (holder, the pty's path, where
    each process's fds came from), or why not."""
    came_from: dict[int, dict[int, str]] = {}
    for member in job_members(pid, group):
        fds = terminal_fds(member)
        if fds is None and member == pid:
            return NO_PTRACE  # its descriptors are not ours to see, nor to move
        if fds:
            came_from[member] = fds
    if not came_from:
        return NOT_ON_A_TERMINAL  # nothing of it goes to the view's terminal
    back = [(member, fds, path) for member, where in came_from.items()
            for path, fds in _by_terminal(where).items()]
    holder = procs.spawn(shlex.join([sys.executable, "-I", "-S", "-c", HOLDER, str(pid),
                                     str(group), json.dumps([mover_argv(*m) for m in back])]),
                         cols, rows)
    path = pty_path(holder.pid)
    if path is None:
        end_holder(holder)
        return "its pty has no name"
    for member in came_from:
        let_open(path, member)
    outcomes = dict(zip(came_from, _move_all([(m, list(fds), path)
                                              for m, fds in came_from.items()])))
    moved = {m: came_from[m] for m, why in outcomes.items() if why is None}
    if not moved:  # one that could not be moved stays on the terminal, as before
        end_holder(holder)
        return next(why for why in outcomes.values() if why is not None)
    return holder, path, moved


def give_back(pid: int, group: int, pty: str, came_from: dict[int, dict[int, str]]
              ) -> str | None:
    """Every process of the job with fds on our pty (those moved, and children
    born since, who inherited it) back to the terminal it came from; None
    when done, else why not."""
    home = next(iter(next(iter(came_from.values())).values()))  # the shell's terminal
    moves: Moves = []
    for member in job_members(pid, group):
        on_pty = terminal_fds(member, pty) or {}
        targets = {fd: came_from.get(member, {}).get(fd, home) for fd in on_pty}
        moves += [(member, fds, path) for path, fds in _by_terminal(targets).items()]
    return next((why for why in _move_all(moves) if why is not None), None)


def end_holder(holder: PtyProcess) -> None:
    """The holder is ours: killed and reaped (the job it held for is not touched)."""
    with contextlib.suppress(OSError):
        os.kill(holder.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.waitpid(holder.pid, 0)
    holder.terminated = True
