"""The kinds of pane a live session drives, behind one interface.

- PtyPane: a process we started, in its own pty (the main command, a tracer);
- MovedPane: a job picked up after Ctrl-Z whose terminal output was moved
  to a pty of ours (live/terminal_move.py): read like a PtyPane, never
  killed, given back to its terminal at the end;
- AttachedPane: a process we did not start (--pid, a Ctrl-Z job that could
  not be moved): shown through its @proc probe, never killed;
- ProbePane: a built-in psutil view (@proc, @files, @net, @tree);
- SkippedPane: a tracer the privileges at hand do not allow: its pane says why.

The session asks a pane what it needs to know (is there output to read,
whose process is it, is it ours to end, does it want a probe frame) and never
which kind it is, so a new kind (a process on another host) is one more
class here.
"""

from __future__ import annotations

import codecs
import contextlib
import os

import psutil
from ptyprocess import PtyProcess

from autotrace.format.recording import PaneRecord, PaneWriter
from autotrace.live import procs
from autotrace.live.probes import Probe
from autotrace.live.procs import ExitStatus


class Pane:
    """What every pane is: its manifest record, its recording, its state."""

    def __init__(self, record: PaneRecord, writer: PaneWriter):
        self.record = record
        self.writer = writer
        self.status: ExitStatus | None = None  # how its process ended, once reaped
        self.reaped_at: float | None = None
        self.stopped = False  # paused by us
        self.output_seen = False
        self.hint_scanned = 0
        self.hint_buffer = ""

    @property
    def index(self) -> int:
        return self.record.index

    @property
    def pid(self) -> int | None:
        """The process the pane is about (None: no process)."""
        return None

    @property
    def fd(self) -> int | None:
        """Output to read (None: the session writes the pane's output itself)."""
        return None

    @property
    def ours(self) -> bool:
        """A process we started: ended at the end of the session, reaped by us."""
        return False

    @property
    def attached(self) -> bool:
        """A process we did not start: never killed; the session goes on without it."""
        return False

    @property
    def probe(self) -> Probe | None:
        """The probe whose frames the session writes into this pane."""
        return None

    @property
    def eof(self) -> bool:
        return True

    @property
    def ended(self) -> bool:
        """Nothing more will come."""
        return True

    def finish(self) -> None:
        """The session is ending: nothing more is to come (probes stop refreshing)."""

    def gone(self) -> bool:
        """A process we did not start has ended (we cannot reap it to know)."""
        return False

    def ready(self, main_pid: int, now: float, settle: float) -> bool:
        """Ready for the held main command to start (tracers only wait on this)."""
        return True

    def state(self) -> str:
        if self.status is not None:
            return self.status.describe()
        return "stopped" if self.stopped else "running"


class PtyPane(Pane):
    """A process we started, in its own pty, session and process group."""

    def __init__(self, record: PaneRecord, writer: PaneWriter, proc: PtyProcess,
                 spawned_at: float, exec_report: int | None = None):
        super().__init__(record, writer)
        self.proc = proc
        self.spawned_at = spawned_at
        # A held main's pipe that its exec closes (held.py); None once it has.
        self.exec_report = exec_report
        self._eof = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._typed = bytearray()  # typed input the pty would not take yet

    def decode(self, data: bytes, final: bool = False) -> str:
        """Bytes from the pty as text; a character split across reads comes out whole."""
        return self._decoder.decode(data, final)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def fd(self) -> int | None:
        return None if self._eof else self.proc.fd

    @property
    def ours(self) -> bool:
        return True

    @property
    def eof(self) -> bool:
        return self._eof

    @property
    def ended(self) -> bool:
        """Reaped and its pty drained (or given up on)."""
        return self.status is not None and self._eof

    def read(self, limit: int = 1 << 20, whole: bool = True) -> tuple[bytes, bool]:
        """What the pty holds now (up to `limit` bytes), and whether it has
        closed; not `whole`, what one turn's read finds (read_available)."""
        if self._eof:
            return b"", True
        return procs.read_available(self.proc.fd, limit, whole)

    def write(self, data: bytes) -> None:
        """Input for the program (a reply to its device query), while it runs."""
        if self.status is None and not self._eof:
            with contextlib.suppress(OSError):
                os.write(self.proc.fd, data)

    def type_in(self, data: bytes) -> None:
        """What the user typed (input mode), in order, without ever blocking the
        loop: the pty is non-blocking, and a paste larger than its input buffer
        waits here for the program to read (flush_typed, every turn)."""
        self._typed += data
        self.flush_typed()

    @property
    def typing_pending(self) -> bool:
        return bool(self._typed)

    def flush_typed(self) -> None:
        if self.status is not None or self._eof:
            self._typed.clear()
            return
        while self._typed:
            try:
                written = os.write(self.proc.fd, self._typed)
            except BlockingIOError:
                return
            except OSError:
                self._typed.clear()
                return
            del self._typed[:written]

    @property
    def execed(self) -> bool:
        """Its own program runs (or ran): not our held child any more."""
        return self.exec_report is None or self.status is not None

    def close_exec_report(self) -> None:
        if self.exec_report is not None:
            with contextlib.suppress(OSError):
                os.close(self.exec_report)
            self.exec_report = None

    def mark_eof(self) -> None:
        self._eof = True

    def resize(self, cols: int, rows: int) -> None:
        if self.status is None:
            with contextlib.suppress(OSError):  # it may have exited just now
                self.proc.setwinsize(rows, cols)

    def ready(self, main_pid: int, now: float, settle: float) -> bool:
        if self.output_seen or self.status is not None:
            return True
        if procs.is_ptrace_tool(self.record.command_run):
            return procs.tracer_pid_of(main_pid) != 0
        if self.record.command.startswith("@dns"):
            return False  # it says when its capture has begun (live/dns_capture.py)
        return now - self.spawned_at >= settle

    def close(self) -> None:
        """After teardown: we reaped it, so ptyprocess must not wait for it again."""
        self._eof = True
        self.close_exec_report()
        self.proc.terminated = True
        with contextlib.suppress(OSError):
            self.proc.close(force=True)


class MovedPane(PtyPane):
    """A job picked up after Ctrl-Z, its stdio moved to this pane's pty: its
    output is read like our own panes', and it can be typed into. The pty's
    process is the holder (terminal_move.HOLDER), not the job; the job is
    never killed, and is given back to the terminals in `came_from` at the end
    (with any child born since, which inherited the pty)."""

    def __init__(self, record: PaneRecord, writer: PaneWriter, holder: PtyProcess,
                 spawned_at: float, pid: int, pty: str, came_from: dict[int, dict[int, str]]):
        super().__init__(record, writer, holder, spawned_at)
        self._pid = pid
        self.pty = pty  # the path of the pane's pty, the job's terminal now
        self.came_from = came_from  # each process of the job moved: fd -> the terminal it was on
        self._finished = False

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def holder_pid(self) -> int:
        return self.proc.pid

    @property
    def ours(self) -> bool:
        return False

    @property
    def attached(self) -> bool:
        return True

    @property
    def ended(self) -> bool:
        return self._finished or (self.status is not None and self.eof)

    def finish(self) -> None:
        self._finished = True

    def gone(self) -> bool:
        return not procs.is_alive(self._pid)


class ProbePane(Pane):
    """A built-in view refreshed by the session every --interval seconds."""

    def __init__(self, record: PaneRecord, writer: PaneWriter, probe: Probe):
        super().__init__(record, writer)
        self._probe = probe
        self._finished = False
        self.output_seen = True  # nothing to wait for before the main command runs

    @property
    def probe(self) -> Probe | None:
        return None if self._finished else self._probe

    @property
    def ended(self) -> bool:
        return self._finished

    def finish(self) -> None:
        self._finished = True

    def state(self) -> str:
        return "ended" if self._finished and self.status is None else super().state()


class AttachedPane(ProbePane):
    """A process we did not start: its output goes to the terminal it came from,
    so its pane is its @proc view. It is never killed; pause stops it."""

    def __init__(self, record: PaneRecord, writer: PaneWriter, probe: Probe, pid: int):
        super().__init__(record, writer, probe)
        self._pid = pid
        self.output_seen = False

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def attached(self) -> bool:
        return True

    def gone(self) -> bool:
        return not psutil.pid_exists(self._pid)


class SkippedPane(Pane):
    """A tracer that is not run; its one line of output says why."""

    def __init__(self, record: PaneRecord, writer: PaneWriter, reason: str):
        super().__init__(record, writer)
        record.note = reason
        self.output_seen = True

    def state(self) -> str:
        return "skipped"
