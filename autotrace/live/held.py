"""The main command held between fork and exec, so tracers see it from its own execve.

The child of the fork sets up its pty, stops itself (SIGSTOP) and, once
continued, execs the user's program directly: a simple command is resolved
on PATH here, in the parent, beforehand (no shell, no PATH search under the
tracer's eyes); only shell syntax goes through `/bin/sh -c`. Its pid is the
program's from the start, and `strace -p PID` attached at the stop sees
`execve` of the program as its first system call.

ptyprocess cannot do this: it waits in spawn() for the exec, which a
stopped child never reaches. Its PtyProcess is still what the pane holds
(built from our pid and pty), so the rest of the session cannot tell.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import shutil
import signal
import struct
import termios

from ptyprocess import PtyProcess

# Signals autotrace handles or ignores that the program must get with their
# default action (an ignored disposition survives exec; subprocess resets
# these too, as restore_signals does).
RESET_SIGNALS = (signal.SIGPIPE, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM,
                 signal.SIGHUP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU,
                 signal.SIGCHLD, signal.SIGXFSZ, signal.SIGWINCH)
# What the child exits with when exec fails: the shell's "not found" status.
EXEC_FAILED = 127


class HeldChild:
    """A held main process: its PtyProcess, and the pipe that says when it exec'd.

    `exec_report` is a pipe that the exec closes (close-on-exec): end of file
    with nothing read means the program runs; an exec error arrives as text.
    """

    def __init__(self, proc: PtyProcess, exec_report: int):
        self.proc = proc
        self.exec_report = exec_report


def spawn_held(path: str, argv: list[str], env: dict[str, str], cols: int,
               rows: int) -> HeldChild:
    """Fork into a new pty of the given size, stopped before it execs PATH
    with ARGV (resolve PATH first, see `resolve`). SIGCONT lets it exec."""
    report_r, report_w = os.pipe()  # both close-on-exec (PEP 446)
    pid, fd = pty.fork()  # the child: a new session, the pty its controlling terminal
    if pid == 0:
        _child(path, argv, env, report_w)
    os.close(report_w)
    # The size is the pty's, set from this side before the child can exec.
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    return HeldChild(PtyProcess(pid, fd), report_r)


def _child(path: str, argv: list[str], env: dict[str, str], report_w: int) -> None:
    """In the forked child: never returns, never raises into the parent's code."""
    try:
        for sig in RESET_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        # Nothing of autotrace's (other ptys, the recording, the loop's pipes)
        # may reach the program; done before the stop, out of the tracer's sight.
        os.closerange(3, report_w)
        os.closerange(report_w + 1, os.sysconf("SC_OPEN_MAX"))
        os.kill(os.getpid(), signal.SIGSTOP)
        try:
            os.execve(path, argv, env)
        except OSError as err:
            if err.errno != errno.ENOEXEC:
                raise
            # An executable text with no #! line: the shell runs it as a script.
            os.execve("/bin/sh", ["/bin/sh", path, *argv[1:]], env)
    except BaseException as err:  # noqa: BLE001 - the child must end here, whatever it was
        detail = err.strerror if isinstance(err, OSError) and err.strerror else repr(err)
        try:
            os.write(report_w, f"{path}: {detail}".encode(errors="replace"))
        finally:
            os._exit(EXEC_FAILED)


def resolve(program: str, env: dict[str, str]) -> str | None:
    """The executable a shell would run for PROGRAM, or None (let the shell say why)."""
    if "/" in program:
        return program if os.access(program, os.X_OK) and not os.path.isdir(program) else None
    return shutil.which(program, path=env.get("PATH", os.defpath))


def read_report(fd: int) -> tuple[bool, str]:
    """Read the exec report: (finished, error). Finished with no error: it exec'd."""
    try:
        data = os.read(fd, 4096)
    except BlockingIOError:
        return False, ""
    except OSError as err:
        return True, err.strerror or "exec report unreadable"
    return True, data.decode(errors="replace")
