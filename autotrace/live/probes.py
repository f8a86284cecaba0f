"""Built-in probe panes (`@proc`, `@files`, `@net`, `@tree`, `@resolv`), from psutil
(and /proc/PID/root for @resolv).

A probe turns a process into a text frame. The session calls `frame()` at
each refresh and feeds the result into the pane like a tracer's output: a
frame starts by clearing the pane, so the screen shows the latest one and the
recording holds them all. Probes ask psutil, so they work wherever psutil
does (macOS too); what a platform or a permission withholds shows as "n/a".
The one exception is @net for a process in another network namespace (a
container): psutil only sees our own namespace's sockets, so that namespace's
tables are read through /proc/PID/net (Linux only, as namespaces are).
"""

from __future__ import annotations

import os
import socket
import stat
import struct
import time
from collections.abc import Callable, Iterator
from functools import cache, partial
from typing import NamedTuple, TypeVar

import psutil

from autotrace.sanitise import one_line
from autotrace.units import human_bytes

CLEAR = "\x1b[H\x1b[2J"  # home, then erase the screen: the next frame starts clean
NEW = "\x1b[1;33m"  # bold yellow: a file opened since the last frame
GONE = "\x1b[2m"  # dim: a file closed since the last frame
RESET = "\x1b[0m"
NA = "n/a"
EOL = "\r\n"  # frames go to a terminal emulator, not through a tty that adds \r

T = TypeVar("T")
FileKey = tuple[int, int, str]  # pid, fd, path


def attempt(fetch: Callable[[], T]) -> T | None:
    """FETCH's value, or None when the platform or a permission withholds it.

    NoSuchProcess (and ZombieProcess) is not caught: a vanished process is
    the caller's business. AttributeError is a method this platform lacks
    (io_counters on macOS).
    """
    try:
        return fetch()
    except (psutil.AccessDenied, AttributeError, NotImplementedError, OSError):
        return None


def command_of(proc: psutil.Process) -> str:
    cmdline = attempt(proc.cmdline)
    if cmdline:
        return " ".join(cmdline)
    return attempt(proc.name) or "?"


def with_descendants(proc: psutil.Process) -> list[psutil.Process]:
    """PROC and everything below it; whoever vanishes meanwhile is left out."""
    return [proc, *(attempt(lambda: proc.children(recursive=True)) or [])]


class Probe:
    """A named view of a process, rendered as a whole frame of text."""

    name = "@probe"

    def __init__(self) -> None:
        self.last_command: dict[int, str] = {}

    def frame(self, proc: psutil.Process, width: int, height: int | None = None) -> str:
        """The text to feed the pane: clear the screen, then draw the frame."""
        return CLEAR + self.render(proc, width, height)

    def render(self, proc: psutil.Process, width: int, height: int | None = None) -> str:
        """The frame's text, lines cut to WIDTH (and to HEIGHT lines when given)."""
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                lines = self.ended(proc, " (a zombie: its parent has not reaped it yet)")
            else:
                # Remembered for the frame that says it ended; exec may change it.
                self.last_command[proc.pid] = command_of(proc)
                lines = [self.title(proc), *self.body(proc)]
        except psutil.NoSuchProcess:
            lines = self.ended(proc)
        return EOL.join(fit(lines, width, height))

    def title(self, proc: psutil.Process) -> str:
        return f"{self.name}  pid {proc.pid}: {self.last_command[proc.pid]}"

    def ended(self, proc: psutil.Process, detail: str = "") -> list[str]:
        command = self.last_command.get(proc.pid)
        what = f"pid {proc.pid} ({command})" if command else f"pid {proc.pid}"
        return [self.name, f"process {what} has ended{detail}"]

    def body(self, proc: psutil.Process) -> list[str]:
        """The lines below the title; `Highlighted` ones are styled by `fit`."""
        raise NotImplementedError


class Highlighted(str):
    """A line wrapped in an ANSI style; `fit` cuts the text, not the escapes."""

    style: str

    def __new__(cls, text: str, style: str) -> Highlighted:
        line = super().__new__(cls, text)
        line.style = style
        return line


def fit(lines: list[str], width: int, height: int | None) -> list[str]:
    """Lines made safe to show, cut to WIDTH, at most HEIGHT of them; styles applied."""
    if height is not None and len(lines) > height:
        hidden = len(lines) - height + 1
        lines = [*lines[: height - 1], f"... {hidden} more lines"]
    fitted = []
    for line in lines:
        # Text from the process (command lines, file names) may hold newlines or
        # escape sequences: in a frame they would break the layout or drive the pane.
        text = one_line(str(line))
        cut = text[:width] if width > 0 else text
        fitted.append(f"{line.style}{cut}{RESET}" if isinstance(line, Highlighted) else cut)
    return fitted


def label(name: str, value: str) -> str:
    return f"{name:<13}{value}"


class ProcProbe(Probe):
    """State, CPU, memory, threads, fds, context switches and I/O of one process."""

    name = "@proc"

    def __init__(self) -> None:
        super().__init__()
        # pid -> (monotonic time, cpu seconds) at the previous frame.
        self.last_cpu: dict[int, tuple[float, float]] = {}

    def body(self, proc: psutil.Process) -> list[str]:
        with proc.oneshot():
            return [
                label("state", attempt(proc.status) or NA),
                label("cpu", self.cpu_percent(proc)),
                label("rss", self.rss(proc)),
                label("threads", show(attempt(proc.num_threads))),
                label("fds", show(attempt(proc.num_fds))),
                label("ctx switches", self.ctx_switches(proc)),
                *self.io(proc),
            ]

    def cpu_percent(self, proc: psutil.Process) -> str:
        """CPU % since the previous frame (since the process started, at first).

        Computed here rather than with Process.cpu_percent, whose memory lives
        in the Process object the caller may not keep between frames.
        """
        times = attempt(proc.cpu_times)
        if times is None:
            return NA
        now, used = time.monotonic(), times.user + times.system
        previous = self.last_cpu.get(proc.pid)
        self.last_cpu[proc.pid] = (now, used)
        if previous is None:
            started = attempt(proc.create_time)
            if started is None:
                return NA
            elapsed, spent = time.time() - started, used
        else:
            elapsed, spent = now - previous[0], used - previous[1]
        return f"{100 * spent / elapsed:.1f} %" if elapsed > 0 else NA

    @staticmethod
    def rss(proc: psutil.Process) -> str:
        memory = attempt(proc.memory_info)
        return human_bytes(memory.rss) if memory else NA

    @staticmethod
    def ctx_switches(proc: psutil.Process) -> str:
        switches = attempt(proc.num_ctx_switches)
        if switches is None:
            return NA
        return f"{switches.voluntary} voluntary, {switches.involuntary} involuntary"

    @staticmethod
    def io(proc: psutil.Process) -> list[str]:
        counters = attempt(proc.io_counters)
        if counters is None:
            return [label("io", NA)]
        lines = []
        for way in ("read", "write"):
            calls = getattr(counters, f"{way}_count")
            # Linux counts every byte read/written (chars) apart from disk bytes.
            chars = getattr(counters, f"{way}_chars", None)
            disk = human_bytes(getattr(counters, f"{way}_bytes"))
            if chars is None:
                lines.append(label(f"io {way}", f"{disk} in {calls} calls"))
            else:
                lines.append(label(f"io {way}",
                                   f"{human_bytes(chars)} in {calls} calls, {disk} disk"))
        return lines


def show(value: object) -> str:
    return NA if value is None else str(value)


class FilesProbe(Probe):
    """Regular files open in the process and its children; new ones highlighted."""

    name = "@files"

    def __init__(self) -> None:
        super().__init__()
        self.previous: dict[FileKey, str] | None = None

    def body(self, proc: psutil.Process) -> list[str]:
        current, refused = self.open_files(proc)
        first_frame = self.previous is None
        previous = self.previous or {}
        lines = [f"{'PID':>7} {'FD':>4} {'RW':<2} PATH"]
        for key in sorted(current):
            # The first frame has nothing to compare with: nothing is "new" yet.
            if first_frame or key in previous:
                lines.append(" " + current[key])
            else:
                lines.append(Highlighted("+" + current[key], NEW))
        if not current and not refused:
            lines.append(" no regular files open")
        for key in sorted(set(previous) - set(current)):
            lines.append(Highlighted("-" + previous[key] + "  (closed)", GONE))
        if refused:
            lines.append(f" open files of pid {', '.join(map(str, refused))}: {NA} (access denied)")
        self.previous = current
        return lines

    @staticmethod
    def open_files(proc: psutil.Process) -> tuple[dict[FileKey, str], list[int]]:
        """{(pid, fd, path): line} for PROC and its children, and the pids that refused."""
        current: dict[FileKey, str] = {}
        refused = []
        for member in with_descendants(proc):
            try:
                files = attempt(partial(regular_files, member.pid))
            except psutil.NoSuchProcess:
                continue
            if files is None:
                refused.append(member.pid)
                continue
            for f in files:
                mode = getattr(f, "mode", "")  # Linux only
                line = f"{member.pid:>7} {f.fd:>4} {mode:<2} {f.path}"
                current[(member.pid, f.fd, f.path)] = line
        return current, refused


class OpenFile(NamedTuple):
    fd: int
    path: str
    mode: str


def regular_files(pid: int) -> list[OpenFile]:
    """PID's open regular files, judged through /proc/PID/fd itself.

    psutil's open_files checks each path in *our* mount namespace, so a
    process in a container (a mount namespace of its own) seemed to have none
    open; a stat of the fd's own link reaches the file wherever it is."""
    base = f"/proc/{pid}/fd"
    try:
        names = os.listdir(base)
    except FileNotFoundError:
        raise psutil.NoSuchProcess(pid) from None
    found = []
    for name in names:
        link = f"{base}/{name}"
        try:
            path = os.readlink(link)
            if not path.startswith("/") or not stat.S_ISREG(os.stat(link).st_mode):
                continue
            with open(f"/proc/{pid}/fdinfo/{name}", encoding="ascii") as info:
                flags = next((int(line.split()[1], 8) for line in info
                              if line.startswith("flags:")), 0)
        except (OSError, ValueError, IndexError):
            continue  # closed meanwhile, or not ours to read
        found.append(OpenFile(int(name), path, _mode(flags)))
    return sorted(found)


def _mode(flags: int) -> str:
    """open(2) flags as psutil writes them: r, w, a, r+, a+."""
    mode = {os.O_RDONLY: "r", os.O_WRONLY: "w", os.O_RDWR: "r+"}.get(flags & os.O_ACCMODE, "?")
    if flags & os.O_APPEND:
        mode = "a" if mode == "w" else "a+" if mode == "r+" else mode
    return mode


def proto_of(conn) -> str:  # psutil's pconn/sconn namedtuple
    kind = {socket.SOCK_STREAM: "tcp", socket.SOCK_DGRAM: "udp"}.get(conn.type, "raw")
    return kind + ("6" if conn.family == socket.AF_INET6 else "")


def address(addr) -> str:  # psutil's addr(ip, port) or () when unbound/unconnected
    if not addr:
        return "-"
    ip, port = addr
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def connections_of(proc: psutil.Process):
    """Internet sockets of PROC: Process.net_connections on psutil>=6, connections() before."""
    if in_other_netns(proc.pid):
        return namespace_connections(proc.pid)
    method = getattr(proc, "net_connections", None) or proc.connections
    return method(kind="inet")


def in_other_netns(pid: int) -> bool:
    """Whether PID's network namespace is not ours; False where Linux does not say."""
    try:
        return os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    except OSError:
        return False


class NsConn(NamedTuple):
    """The fields of psutil's pconn that NetProbe shows."""

    family: int
    type: int
    laddr: tuple
    raddr: tuple
    status: str


@cache
def tcp_states() -> dict[str, str]:
    """/proc/net/tcp's `st` column (include/net/tcp_states.h), in psutil's names.
    Built at first use: psutil is imported when first needed (autotrace.lazy)."""
    return dict(zip(
        ("01", "02", "03", "04", "05", "06", "07", "08", "09", "0A", "0B"),
        (psutil.CONN_ESTABLISHED, psutil.CONN_SYN_SENT, psutil.CONN_SYN_RECV,
         psutil.CONN_FIN_WAIT1, psutil.CONN_FIN_WAIT2, psutil.CONN_TIME_WAIT, psutil.CONN_CLOSE,
         psutil.CONN_CLOSE_WAIT, psutil.CONN_LAST_ACK, psutil.CONN_LISTEN, psutil.CONN_CLOSING)))
NET_TABLES = (("tcp", socket.AF_INET, socket.SOCK_STREAM),
              ("tcp6", socket.AF_INET6, socket.SOCK_STREAM),
              ("udp", socket.AF_INET, socket.SOCK_DGRAM),
              ("udp6", socket.AF_INET6, socket.SOCK_DGRAM))


def namespace_connections(pid: int) -> list[NsConn]:
    """PID's internet sockets, from the tables of its own network namespace."""
    inodes = socket_inodes(pid)
    found = []
    for table, family, kind in NET_TABLES:
        try:
            with open(f"/proc/{pid}/net/{table}", encoding="ascii") as f:
                rows = [line.split() for line in f.readlines()[1:]]
        except FileNotFoundError:  # no IPv6 in that namespace
            continue
        for row in rows:
            if len(row) > 9 and row[9] in inodes:
                status = tcp_states().get(row[3], psutil.CONN_NONE) \
                    if kind == socket.SOCK_STREAM else psutil.CONN_NONE
                found.append(NsConn(family, kind, decode_address(row[1], family),
                                    decode_address(row[2], family), status))
    return found


def socket_inodes(pid: int) -> set[str]:
    """Inodes of PID's sockets, from its fd links (`socket:[12345]`)."""
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except FileNotFoundError:
        raise psutil.NoSuchProcess(pid) from None
    except PermissionError:
        raise psutil.AccessDenied(pid) from None
    inodes = set()
    for fd in fds:
        try:
            link = os.readlink(f"{fd_dir}/{fd}")
        except OSError:  # closed meanwhile
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes


def decode_address(text: str, family: int) -> tuple:
    """/proc/net's "0100007F:0035" as ("127.0.0.1", 53); () for no address (port 0).

    The address is printed as 32-bit words in the host's byte order.
    """
    hex_ip, hex_port = text.split(":")
    port = int(hex_port, 16)
    if not port:
        return ()
    words = [int(hex_ip[i:i + 8], 16) for i in range(0, len(hex_ip), 8)]
    return socket.inet_ntop(family, struct.pack(f"={len(words)}I", *words)), port


class NetProbe(Probe):
    """Internet sockets (TCP and UDP, v4 and v6) of the process and its children."""

    name = "@net"

    def body(self, proc: psutil.Process) -> list[str]:
        lines = [f"{'PID':>7} {'PROTO':<5} {'LOCAL':<28} {'REMOTE':<28} STATE"]
        refused: list[int] = []
        count = 0
        for member in with_descendants(proc):
            try:
                conns = attempt(partial(connections_of, member))
            except psutil.NoSuchProcess:
                continue
            if conns is None:
                refused.append(member.pid)
                continue
            for conn in sorted(conns, key=lambda c: (c.type, c.laddr or ())):
                state = "-" if conn.status == psutil.CONN_NONE else conn.status
                lines.append(f"{member.pid:>7} {proto_of(conn):<5} {address(conn.laddr):<28} "
                             f"{address(conn.raddr):<28} {state}")
                count += 1
        if not count and not refused:
            lines.append(" no internet sockets")
        if refused:
            lines.append(f" sockets of pid {', '.join(map(str, refused))}: {NA} (access denied)")
        return lines


class TreeProbe(Probe):
    """The process tree below the process, with pids and commands."""

    name = "@tree"

    def body(self, proc: psutil.Process) -> list[str]:
        return [entry(proc), *self.branches(proc, "")]

    def branches(self, proc: psutil.Process, indent: str) -> Iterator[str]:
        try:
            children = sorted(proc.children(), key=lambda p: p.pid)
        except psutil.Error:
            return
        for i, child in enumerate(children):
            last = i == len(children) - 1
            try:
                line = entry(child)
            except psutil.NoSuchProcess:
                continue
            yield f"{indent}{'└─' if last else '├─'} {line}"
            yield from self.branches(child, indent + ("   " if last else "│  "))


def entry(proc: psutil.Process) -> str:
    status = attempt(proc.status)
    marks = {psutil.STATUS_STOPPED: " [stopped]", psutil.STATUS_ZOMBIE: " [zombie]",
             psutil.STATUS_TRACING_STOP: " [traced, stopped]"}
    return f"{proc.pid} {command_of(proc)}{marks.get(status or '', '')}"


class ResolverProbe(Probe):
    """The resolver files the process sees, through /proc/PID/root (its own
    mount namespace: a container's, not the host's). Drawn whole, never cut,
    so the findings rules (findings/resolver.py) can diff one frame with the next."""

    name = "@resolv"
    FILES = ("/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf")

    def render(self, proc: psutil.Process, width: int, height: int | None = None) -> str:
        return super().render(proc, 0, None)

    def body(self, proc: psutil.Process) -> list[str]:
        lines: list[str] = []
        for path in self.FILES:
            lines.append(f"# {path}")
            try:
                with open(f"/proc/{proc.pid}/root{path}", encoding="utf-8",
                          errors="replace") as f:
                    text = f.read(65536)
            except OSError as err:
                lines.append(f"({NA}: {err.strerror})")
                continue
            if path == "/etc/nsswitch.conf":  # only the line that steers lookups
                text = "\n".join(line for line in text.splitlines()
                                 if line.startswith("hosts:"))
            lines += text.splitlines()
            lines.append("")
        return lines


PROBES: dict[str, type[Probe]] = {
    probe.name: probe
    for probe in (ProcProbe, FilesProbe, NetProbe, TreeProbe, ResolverProbe)
}
PROBE_NAMES = tuple(PROBES)


def is_probe(command: str) -> bool:
    """Whether a pane command names a built-in probe rather than a program."""
    return command.strip().startswith("@")


def make_probe(name: str) -> Probe:
    """A fresh probe for NAME (e.g. "@net"); each keeps its own memory between frames."""
    try:
        return PROBES[name.strip()]()
    except KeyError:
        raise ValueError(f"unknown probe {name.strip()!r}: the probes are "
                         f"{', '.join(PROBE_NAMES)}, @dns") from None
