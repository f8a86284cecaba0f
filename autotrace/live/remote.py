"""A pane whose process runs on another host: `HOST: COMMAND` over ssh -tt.

Locally the pane is an ssh client in a pty of ours (read, resized, reaped as
any PtyPane); on HOST its command runs in the pty sshd made for it, under a
small shell that first prints its pid (the remote session leader and process
group) on a line of its own, which the pane keeps and does not show. The
held main command also stops itself there, as a local one does, until its
tracers are ready; `kill -CONT` over the master lets it go.
"""

from __future__ import annotations

import re
import select
import shlex
import time

from ptyprocess import PtyProcess

from autotrace.format.recording import PaneRecord, PaneWriter
from autotrace.live import procs
from autotrace.live.panes import PtyPane, SkippedPane
from autotrace.live.procs import ExitStatus

# Any number of CRs: until ssh has put our pty in raw mode, the pty's own
# newline translation adds one to the remote pty's "\r\n" (seen as "\r\r\n").
PID_LINE = re.compile(rb"autotrace-pid (\d+)\r*\n")
# The first line is the pid, or ssh is saying why there is none.
MAX_HEAD = 4096
# The remote shell: pid first, then (held) stop, then the command as a local pane runs it.
ANNOUNCE = 'echo "autotrace-pid $$"; '
HELD = ANNOUNCE + 'kill -STOP $$; exec /bin/sh -c "$1"'
FREE = ANNOUNCE + 'exec /bin/sh -c "$1"'
# ssh's status when it could not connect, or the connection broke.
SSH_FAILED = 255
# What a refused or failed ssh usually needs.
SSH_HINT = ("ssh could not reach it: try the same `ssh HOST` in a terminal; autotrace "
            "runs ssh with BatchMode, so keys must load without a prompt (ssh-agent) "
            "and the host key must already be known")


def remote_command(command: str, hold: bool = False) -> str:
    """What ssh sends to the remote login shell for COMMAND."""
    script = HELD if hold else FREE
    program = shlex.quote(procs.exec_form(command))
    return f"exec /bin/sh -c {shlex.quote(script)} autotrace {program}"


class RemotePane(PtyPane):
    """ssh running one command on HOST; `remote_pid` is its pid there."""

    def __init__(self, record: PaneRecord, writer: PaneWriter, proc: PtyProcess,
                 spawned_at: float, host: str):
        super().__init__(record, writer, proc, spawned_at)
        self.host = host
        self.remote_pid: int | None = None
        self.ended_by_us = False  # TERM/KILL sent to the remote group
        self._head: bytes | None = b""  # output before the pid line; None once it is past
        self._held_back = b""  # read while waiting for the pid, still to be shown
        self._pid_told = False
        self._running_since: float | None = None  # when ready() first saw the remote pid

    def read(self, limit: int = 1 << 20, whole: bool = True) -> tuple[bytes, bool]:
        data, eof = super().read(limit, whole)
        data, self._held_back = self._held_back + data, b""
        if self._head is None:
            return data, eof
        head = self._head + data
        found = PID_LINE.search(head)
        if found:
            self.remote_pid = self.record.remote_pid = int(found[1])
            self._head = None
            return head[:found.start()] + head[found.end():], eof
        if eof or len(head) > MAX_HEAD:
            self._head = None  # no pid is coming: ssh's message is the pane's output
            return head, eof
        self._head = head
        return b"", False

    def pid_news(self) -> bool:
        """True once, when the remote pid has just become known (the manifest's news)."""
        if self.remote_pid is None or self._pid_told:
            return False
        self._pid_told = True
        return True

    def wait_for_pid(self, timeout: float) -> int | None:
        """Block until the remote pid is known (start-up only: the held main)."""
        deadline = time.monotonic() + timeout
        shown = b""
        while self.remote_pid is None and self._head is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            select.select([self.proc.fd], [], [], left)
            data, eof = self.read()
            shown += data
            if eof:
                self.mark_eof()
                break
        self._held_back = shown
        return self.remote_pid

    def ready(self, main_pid: int, now: float, settle: float) -> bool:
        # TracerPid is another host's to read; a tracer there is ready once it
        # prints (strace's "Process N attached"), ends, or has run `settle`
        # seconds there: counted from its pid line, since opening a session
        # on a busy host can take longer than `settle` itself.
        if self.output_seen or self.status is not None:
            return True
        if self.remote_pid is None:
            return False
        if self._running_since is None:
            self._running_since = now
        return now - self._running_since >= settle


def signal_remote(pids: list[int], sig: str) -> str:
    """A remote shell command sending SIG to those process groups; after TERM
    or KILL a CONT too, or a stopped process would sit on the TERM."""
    groups = " ".join(f"-{pid}" for pid in pids)
    then = f"kill -CONT -- {groups} 2>/dev/null; " if sig in ("TERM", "KILL") else ""
    return f"kill -{sig} -- {groups} 2>/dev/null; {then}true"


class UnreachablePane(SkippedPane):
    """A pane for a host whose master did not connect: ssh's words and a hint.
    As a main command it ended as ssh ends when it cannot connect (255)."""

    def __init__(self, record: PaneRecord, writer: PaneWriter, host: str, said: str):
        super().__init__(record, writer, f"{host}: {said}")
        record.note = f"{host}: {said} ({SSH_HINT})"
        record.exit_status = SSH_FAILED
        self.status = ExitStatus(code=SSH_FAILED)

    def state(self) -> str:
        return "unreachable"


def lost_connection_line(host: str, unix_time: float, code: int) -> str:
    """What a pane says when its connection ended without us ending it."""
    millis = int(unix_time % 1 * 1000)
    stamp = time.strftime("%H:%M:%S", time.localtime(unix_time)) + f".{millis:03d}"
    return (f"\r\n\x1b[1;33mautotrace: connection to {host} lost at {stamp} "
            f"(ssh exited {code})\x1b[0m\r\n")
