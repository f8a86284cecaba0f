"""Point some of a running process's descriptors at a file, by making the
process itself call open, dup2 and close (ptrace, x86-64 Linux).

    python -I -S fd_inject.py PID PATH FD [FD...]

prints nothing and exits 0 when done; else one line saying why, exit 1, and
the process is as it was.

Why not gdb's `call dup2(...)`, as the other architectures do: around a call
gdb saves and restores every register, the extended (AVX, AMX) state
included, and gdb 13 (Debian 12's) cannot write that state back on CPUs with
AMX ("Couldn't write extended state status: Bad address"). It then leaves the
process with a half-restored state: a `sleep` interrupted that way died with
"cannot read realtime clock: Unknown error 516". A system call needs none of
that state: the general registers are saved, set for one call at a time, the
process single-steps a `syscall` instruction already in its memory (libc's
or the vDSO's, never a patched one that its other threads could run into),
and the general registers are put back exactly, so an interrupted system
call restarts as the kernel meant it to. reptyr injects system calls the same
way, but then moves the process to a new session on its own pty.

Standard library only, no site: the pane's holder runs it to give a job back
when autotrace has died, with nothing of autotrace importable.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

PTRACE_GETREGS, PTRACE_SETREGS = 12, 13
PTRACE_SINGLESTEP, PTRACE_DETACH = 9, 17
PTRACE_SEIZE, PTRACE_INTERRUPT = 0x4206, 0x4207
WALL = 0x40000000
SYSCALL = b"\x0f\x05"
NR_CLOSE, NR_MMAP, NR_MUNMAP, NR_DUP2, NR_OPENAT = 3, 9, 11, 33, 257
AT_FDCWD = -100
PAGE = 4096
# -EINTR and the kernel's restart codes: a call interrupted by a signal, to be made again.
RESTART = frozenset({-4, -512, -513, -514, -516})
PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS = 0x1 | 0x2, 0x02 | 0x20
USER_CS = 0x33  # a 64-bit process (a 32-bit one runs with 0x23)

# struct user_regs_struct (sys/user.h), x86-64.
REGS = ("r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags "
        "rsp ss fs_base gs_base ds es fs gs").split()


class InjectError(Exception):
    """Why the descriptors were not moved (one line)."""


class Regs(ctypes.Structure):
    _fields_ = [(name, ctypes.c_ulonglong) for name in REGS]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.restype = ctypes.c_long
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]


def _ptrace(request: int, pid: int, addr: int = 0, data: object = 0) -> int:
    ctypes.set_errno(0)
    result = _libc.ptrace(request, pid, addr, data)
    if result == -1 and ctypes.get_errno():
        error = ctypes.get_errno()
        raise InjectError(f"ptrace: {os.strerror(error)}")
    return int(result)


def _regs(pid: int) -> Regs:
    regs = Regs()
    _ptrace(PTRACE_GETREGS, pid, 0, ctypes.addressof(regs))
    return regs


def _set_regs(pid: int, regs: Regs) -> None:
    _ptrace(PTRACE_SETREGS, pid, 0, ctypes.addressof(regs))


def _wait_stop(pid: int) -> int:
    """How PID stopped (it must stop, not exit): the signal, with a ptrace
    event (PTRACE_EVENT_STOP: an interrupt or a job stop) in the bits above."""
    _, status = os.waitpid(pid, WALL)
    if not os.WIFSTOPPED(status):
        raise InjectError("the process ended")
    return os.WSTOPSIG(status) | ((status >> 16) << 8)  # event stops keep their event


def syscall_address(pid: int) -> int:
    """Where in PID's memory a `syscall` instruction is: in libc's code or the
    vDSO's, never in memory that can change (writable, a JIT's): nothing is
    written into its code, and what runs there is known to stay."""
    with open(f"/proc/{pid}/maps") as maps:
        mappings = [line.split() for line in maps]
    found = [(fields[0], fields[1]) for fields in mappings if len(fields) >= 6
             and fields[1].startswith("r-x") and _is_libc_or_vdso(fields[5])]
    with open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for span, _ in found:
            start, end = (int(part, 16) for part in span.split("-"))
            try:
                mem.seek(start)
                code = mem.read(min(end - start, 1 << 22))
            except (OSError, OverflowError, ValueError):
                continue
            at = code.find(SYSCALL)
            if at >= 0:
                return start + at
    raise InjectError("no syscall instruction in its libc or vDSO")


def _is_libc_or_vdso(path: str) -> bool:
    name = os.path.basename(path)
    return path == "[vdso]" or name.startswith("libc.so") or name.startswith("libc-")


def seccomp_mode(pid: int) -> int:
    """0 when no seccomp filter can refuse (or kill on) the calls we make."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Seccomp:"):
                return int(line.split()[1])
    return 0


class Injection:
    """PID stopped under our ptrace, its general registers saved: system calls
    made by it one at a time, then everything put back.

    A stopped job needs nothing of ours to stay stopped: when the tracer
    detaches, the kernel puts a job stop that is still in force back in
    place, and a SIGCONT that came meanwhile has ended it, as it should."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.signals: list[int] = []  # signals that arrived meanwhile: handed on at the end
        self.last_was_delivery = False  # the latest stop: may DETACH hand a signal in?
        _ptrace(PTRACE_SEIZE, pid)
        self.attached = True
        try:
            _ptrace(PTRACE_INTERRUPT, pid)
            self._stopped(_wait_stop(pid))
            self.saved = _regs(pid)
        except BaseException:
            self.leave()
            raise

    def _stopped(self, stop: int) -> None:
        sig, event = stop & 0xFF, stop >> 8
        self.last_was_delivery = not event
        if not event and sig != signal.SIGTRAP:
            self.signals.append(sig)  # on its way in: not ours to swallow

    def call(self, at: int, number: int, *args: int) -> int:
        """One system call made by the process: its result (negative: -errno).
        Interrupted before it ran (a signal), it is made again; anything but
        the step over that one instruction ends the injection."""
        for _ in range(8):
            result = self._call_once(at, number, *args)
            if result not in RESTART:
                return result
        raise InjectError("its calls kept being interrupted")

    def _call_once(self, at: int, number: int, *args: int) -> int:
        regs = Regs.from_buffer_copy(self.saved)
        regs.rip, regs.rax = at, number
        # orig_rax -1: no system call is under way, so the kernel does not try
        # to restart the interrupted one in the middle of ours.
        regs.orig_rax = (1 << 64) - 1
        for name, value in zip(("rdi", "rsi", "rdx", "r10", "r8", "r9"), args):
            setattr(regs, name, value & ((1 << 64) - 1))
        _set_regs(self.pid, regs)
        for _ in range(16):
            _ptrace(PTRACE_SINGLESTEP, self.pid, 0, 0)
            stop = _wait_stop(self.pid)
            done = _regs(self.pid)
            if done.rip == at:  # a signal, an interrupt or a job stop came first:
                self._stopped(stop)  # nothing ran yet, step again
                continue
            self.last_was_delivery = stop >> 8 == 0
            if (done.rip == at + len(SYSCALL) and stop == signal.SIGTRAP
                    and done.orig_rax == number):
                result = int(done.rax)
                return result - (1 << 64) if result >= 1 << 63 else result
            raise InjectError("the process did not make the call as asked")
        raise InjectError("the process did not make the call")

    def leave(self) -> None:
        """Registers as they were, detached, signals that came meanwhile handed on."""
        if not self.attached:
            return
        self.attached = False
        with contextlib.suppress(InjectError, OSError):
            if hasattr(self, "saved"):
                _set_regs(self.pid, self.saved)
        # DETACH hands a signal in only from a signal-delivery stop.
        first = self.signals[0] if self.signals and self.last_was_delivery else 0
        with contextlib.suppress(InjectError, OSError):
            _ptrace(PTRACE_DETACH, self.pid, 0, first)
        for sig in self.signals[1 if first else 0:]:
            with contextlib.suppress(OSError):
                os.kill(self.pid, sig)


def point_fds(pid: int, path: str, fds: list[int]) -> None:
    """PID's FDS, pointed at PATH (opened O_RDWR|O_NOCTTY); raises InjectError."""
    if os.uname().machine != "x86_64":
        raise InjectError(f"system calls are injected on x86-64 only, not {os.uname().machine}")
    try:
        filtered = seccomp_mode(pid)
    except (OSError, ValueError):
        raise InjectError("ptrace: No such process") from None
    if filtered:
        raise InjectError("a seccomp filter guards its system calls")
    process = Injection(pid)  # first: the permission to look is ptrace's
    try:
        at = syscall_address(pid)
        if process.saved.cs != USER_CS:
            raise InjectError("not a 64-bit process")
        page = process.call(at, NR_MMAP, 0, PAGE, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0)
        if page < 0:
            raise InjectError(f"it could not map a page: {os.strerror(-page)}")
        try:
            _write_string(pid, page, os.fsencode(path) + b"\0")
            _open_and_dup(process, at, page, path, fds)
        finally:
            process.call(at, NR_MUNMAP, page, PAGE)
    finally:
        process.leave()


def _open_and_dup(process: Injection, at: int, name: int, path: str, fds: list[int]) -> None:
    # O_CLOEXEC: a fork and exec in another of its threads meanwhile must
    # not take it along (dup2's copies do not inherit the flag).
    fd = process.call(at, NR_OPENAT, AT_FDCWD, name, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    if fd < 0:
        raise InjectError(f"it could not open {path}: {os.strerror(-fd)}")
    try:
        for target in fds:
            result = process.call(at, NR_DUP2, fd, target)
            if result < 0:
                raise InjectError(f"dup2 onto {target}: {os.strerror(-result)}")
    finally:
        process.call(at, NR_CLOSE, fd)


def _write_string(pid: int, address: int, text: bytes) -> None:
    with open(f"/proc/{pid}/mem", "r+b", 0) as mem:
        mem.seek(address)
        mem.write(text)


def main(argv: list[str]) -> int:
    # Between setting a call's registers and putting them back, dying would
    # leave the process running our call's registers: no signal that a
    # terminal, a hangup or a closed pipe sends may end us meanwhile.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP, signal.SIGINT, signal.SIGQUIT,
                                              signal.SIGTERM, signal.SIGPIPE, signal.SIGTSTP})
    try:
        pid, path, fds = int(argv[0]), argv[1], [int(fd) for fd in argv[2:]]
    except (IndexError, ValueError):
        print("usage: fd_inject.py PID PATH FD [FD...]")
        return 2
    try:
        point_fds(pid, path, fds)
    except (InjectError, OSError) as error:
        print(error if isinstance(error, InjectError) else f"{error.strerror}: {error.filename}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
