"""Recognise a tracer that was refused permission and say why, on this machine.

A refused ptrace has several causes and each has its own fix: Yama (present
or not, and its value), file capabilities or setuid on the target's
executable, another user's process, root in a container without
CAP_SYS_PTRACE. A refused capture is a missing CAP_NET_RAW. The hint names
the one that holds here, found from /proc and the files' attributes.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import struct
from pathlib import Path
from typing import Callable

from autotrace.live.procs import tracer_pid_of

CAP_NET_RAW = 13
CAP_SYS_PTRACE = 19
PTRACE_SCOPE = Path("/proc/sys/kernel/yama/ptrace_scope")
# capability(7) numbers -> names, as getcap prints them (the ones a hint names).
CAP_NAMES = {0: "cap_chown", 1: "cap_dac_override", 2: "cap_dac_read_search",
             5: "cap_kill", 6: "cap_setgid", 7: "cap_setuid", 10: "cap_net_bind_service",
             12: "cap_net_admin", 13: "cap_net_raw", 19: "cap_sys_ptrace",
             21: "cap_sys_admin", 24: "cap_sys_resource"}

PTRACE_REFUSED = re.compile(
    r"ptrace\(PTRACE_\w+, (\d+)\).*(Operation not permitted|Permission denied)"
)
CAPTURE_REFUSED = re.compile(
    r"You don't have permission to|socket: Operation not permitted|"
    r"\(socket: Operation not permitted\)|Attempt to create packet socket failed"
)
GENERIC_REFUSED = re.compile(r"Operation not permitted|Permission denied")

# The remedies, also used by presets.py for tracers it skips.
PTRACE_HINT = "ptrace was refused: run autotrace with sudo"
CAPTURE_HINT = (
    "packet capture was refused: run autotrace with sudo, or give the capture tool "
    "the capability: `sudo setcap cap_net_raw,cap_net_admin+eip $(command -v tcpdump)`"
)
GENERIC_HINT = "the tracer was refused permission: try running autotrace with sudo"


def already_traced_hint(pid: int, tracer: int) -> str:
    return (
        f"process {pid} is already traced by process {tracer}, and a process can have "
        f"only one ptrace tracer: use one strace/ltrace/gdb pane per process"
    )


# ---------------------------------------------------------------- machine facts


def effective_capabilities(pid: int | str = "self") -> int | None:
    """A process's effective capability set, None where Linux does not tell."""
    for line in _status_lines(pid):
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return None


def _status_lines(pid: int | str) -> list[str]:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            return status.readlines()
    except OSError:
        return []


def has_capability(bit: int) -> bool:
    """Root has every capability unless the kernel says otherwise (containers)."""
    caps = effective_capabilities()
    if caps is None:
        return os.geteuid() == 0
    return bool(caps & (1 << bit))


def yama_scope() -> int | None:
    """kernel.yama.ptrace_scope, None when this kernel has no Yama."""
    try:
        return int(PTRACE_SCOPE.read_text().strip())
    except (OSError, ValueError):
        return None


def ptrace_scope() -> int:
    """Yama's kernel.yama.ptrace_scope; 0 (classic ptrace rules) when Yama is absent."""
    return yama_scope() or 0


def file_capabilities(path: str) -> tuple[int, bool]:
    """The permitted set PATH's file capabilities (setcap) grant, and their
    effective flag; (0, False) for none."""
    try:
        data = os.getxattr(path, "security.capability")
    except (OSError, AttributeError):  # no xattr, or not Linux
        return 0, False
    if len(data) < 12:
        return 0, False
    # struct vfs_cap_data: magic_etc, then (permitted, inheritable) per 32 bits.
    magic_etc, permitted_low = struct.unpack_from("<II", data)
    permitted_high = struct.unpack_from("<I", data, 12)[0] if len(data) >= 20 else 0
    return permitted_low | permitted_high << 32, bool(magic_etc & 0x1)


def file_grants(path: str, bit: int) -> bool:
    """Whether the file capabilities of PATH (setcap) raise capability BIT on exec."""
    permitted, effective = file_capabilities(path)
    return effective and bool(permitted & (1 << bit))


def capability_names(caps: int) -> str:
    return ",".join(CAP_NAMES.get(bit, f"cap_{bit}") for bit in range(64) if caps >> bit & 1)


def _owner(pid: int) -> int | None:
    """The real uid of process PID."""
    for line in _status_lines(pid):
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


def executable_of(pid: int) -> str | None:
    """PID's executable: /proc/PID/exe, which the kernel hides exactly when
    ptrace is refused, else its argv[0] as found on PATH."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            program = f.read().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return None
    return shutil.which(program) if program and "/" not in program else (program or None)


# ---------------------------------------------------------------- the hints


def ptrace_refusal_hint(pid: int) -> str:
    """Why ptrace of PID is refused here, and the fix that works."""
    yama = yama_scope()
    if yama == 3:
        return ("ptrace is disabled on this machine (kernel.yama.ptrace_scope=3, "
                "until the next boot): no tracer can attach")
    root = os.geteuid() == 0
    if root and not has_capability(CAP_SYS_PTRACE):
        return ("ptrace was refused: autotrace runs as root but without CAP_SYS_PTRACE "
                "(a container? start it with --cap-add=SYS_PTRACE)")
    owner = _owner(pid)
    if owner is not None and owner != os.geteuid():
        return (f"ptrace was refused: process {pid} belongs to another user (uid {owner}): "
                "run autotrace with sudo")
    exe = executable_of(pid)
    if exe:
        mode = _mode(exe)
        caps, _ = file_capabilities(exe)
        if caps:
            return (f"ptrace was refused: {exe} has file capabilities ({capability_names(caps)}), "
                    "and the kernel lets only a tracer holding them trace it: run autotrace "
                    "with sudo")
        if mode & (stat.S_ISUID | stat.S_ISGID):
            return (f"ptrace was refused: {exe} is set-user/group-ID, so its process is not "
                    "yours to trace: run autotrace with sudo")
    if yama == 2:
        return ("ptrace was refused: only root may attach here (kernel.yama.ptrace_scope=2): "
                "run autotrace with sudo")
    if yama == 1:
        return ("ptrace was refused: Yama lets a process trace only its own descendants "
                "(kernel.yama.ptrace_scope=1): run autotrace with sudo, or "
                "`sudo sysctl kernel.yama.ptrace_scope=0`")
    where = "this kernel has no Yama" if yama is None else "kernel.yama.ptrace_scope=0"
    return f"ptrace was refused ({where}; a seccomp or LSM policy?): run autotrace with sudo"


def _mode(path: str) -> int:
    try:
        return os.stat(path).st_mode
    except OSError:
        return 0


def capture_refusal_hint(command: str = "tcpdump") -> str:
    """Why a packet capture was refused here (CAP_NET_RAW), and the fix that works."""
    words = command.split()
    tool = shutil.which(words[0]) if words else None
    tool = os.path.realpath(tool) if tool else "$(command -v tcpdump)"
    if os.geteuid() == 0:
        if not has_capability(CAP_NET_RAW):
            return ("packet capture was refused: autotrace runs as root but without "
                    "CAP_NET_RAW (a container? start it with --cap-add=NET_RAW)")
        return "packet capture was refused although autotrace has CAP_NET_RAW: see the pane"
    if file_grants(tool, CAP_NET_RAW):
        return (f"packet capture was refused although {tool} has cap_net_raw: its filesystem "
                "may be mounted nosuid; run autotrace with sudo")
    return (f"packet capture needs CAP_NET_RAW, which neither you (uid {os.geteuid()}) nor "
            f"{tool} has: run autotrace with sudo, or "
            f"`sudo setcap cap_net_raw,cap_net_admin+eip {tool}`")


def refusal_hint(text: str, tracer_of: Callable[[int], int] = tracer_pid_of,
                 command: str = "tcpdump") -> str | None:
    """A one-line fix for a refusal found in a tracer's output, or None.

    TRACER_OF(pid) is the pid ptrace-attached to pid (0 if none): the same
    EPERM means "already traced" when there is one, and sudo would not help.
    COMMAND is the tracer's, for a capture refusal (the tool to setcap).
    """
    ptrace = PTRACE_REFUSED.search(text)
    if ptrace:
        pid = int(ptrace.group(1))
        tracer = tracer_of(pid)
        return already_traced_hint(pid, tracer) if tracer else ptrace_refusal_hint(pid)
    if CAPTURE_REFUSED.search(text):
        return capture_refusal_hint(command)
    if GENERIC_REFUSED.search(text):
        return GENERIC_HINT
    return None
