"""A live session: owns the panes, runs the one select loop, ends cleanly.

Reading never waits on anything else: every readable pty is drained in large
reads and written to the recording at once; consumers (the view) get events
and catch up at their own pace.
"""

from __future__ import annotations

import contextlib
import enum
import selectors
import shlex
import signal
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import psutil
from ptyprocess import PtyProcess

from autotrace.events import MARKER, OUTPUT, RESIZE, STATE, Event
from autotrace.format.recording import PaneRecord, PaneWriter, RecordingWriter
from autotrace.live import procs
from autotrace.live.attach import signal_job
from autotrace.live.hints import refusal_hint
from autotrace.live.probes import Probe, make_probe
from autotrace.live.procs import ExitStatus
from autotrace.signals import read_signals, signal_pipe

# How long to keep reading a pane after its process was reaped, for output
# still in the pty, when something else (a background child) holds it open.
DRAIN_AFTER_EXIT = 0.3
# How much of a tracer's first output is searched for a permission refusal.
HINT_SCAN_BYTES = 4096


@dataclass
class SessionOptions:
    cols: int = 80
    rows: int = 24
    duration: float | None = None  # end the session after this many seconds
    grace: float = 1.0  # tracers' time to flush after the main command ended
    kill_timeout: float = 2.0  # between TERM and KILL at teardown
    attach_timeout: float = 5.0  # longest wait for tracers before the main runs
    settle: float = 0.5  # a silent non-ptrace tracer counts as ready after this
    interval: float = 1.0  # probe panes (@proc, ...) refresh this often
    attach_pid: int | None = None  # main is this running process, not a command we start
    attach_held: bool = False  # it is stopped (Ctrl-Z): continue it once tracers are ready
    netns: bool = False  # run tracers inside the main process's network namespace


@dataclass
class PaneSpec:
    command: str  # as the user gave it; PID is substituted for tracers
    role: str = "tracer"  # main, tracer or probe
    skipped: str | None = None  # why this tracer is not run (shown in its pane)


class Phase(enum.Enum):
    ATTACHING = "attaching"  # main held, waiting for tracers to be ready
    RUNNING = "running"
    GRACE = "grace"  # main ended, tracers flushing
    STOPPING = "stopping"  # TERM sent, waiting; then KILL
    DONE = "done"


class View(Protocol):
    """What the session needs from an interactive view (None when headless)."""

    def fileno(self) -> int | None: ...
    def on_input(self) -> None: ...
    def on_event(self, event: Event) -> None: ...
    def next_deadline(self) -> float | None: ...
    def tick(self, now: float) -> None: ...
    def on_resize(self) -> None: ...
    def pane_size(self, index: int, count: int) -> tuple[int, int]: ...


@dataclass
class Pane:
    record: PaneRecord
    writer: PaneWriter
    proc: PtyProcess | None = None
    status: ExitStatus | None = None
    eof: bool = False
    spawned_at: float = 0.0  # monotonic
    reaped_at: float | None = None
    output_seen: bool = False
    hint_scanned: int = 0
    hint_buffer: str = ""
    stopped: bool = False  # paused by us
    attached: bool = False  # a process we did not start: never killed, never reaped
    probe: Probe | None = None  # a built-in psutil pane instead of a process
    finished: bool = False  # for panes without a pty: nothing more will come

    @property
    def index(self) -> int:
        return self.record.index

    @property
    def pid(self) -> int | None:
        """The pane's own process (None for probes and skipped tracers)."""
        if self.proc is not None:
            return self.proc.pid
        return self.record.pid if self.attached else None

    @property
    def ended(self) -> bool:
        """Process reaped and its pty drained (or given up on); or nothing more to come."""
        if self.proc is None:
            return self.finished
        return self.status is not None and self.eof

    def state(self) -> str:
        if self.record.note and self.proc is None and not self.attached and not self.probe:
            return "skipped"
        if self.status is not None:
            return self.status.describe()
        if self.finished:
            return "ended"
        return "stopped" if self.stopped else "running"


@dataclass
class Session:
    specs: list[PaneSpec]
    recording: RecordingWriter
    options: SessionOptions = field(default_factory=SessionOptions)
    clock: Callable[[], float] = time.monotonic
    view: View | None = None
    notify: Callable[[str], None] = lambda line: None  # one-line notices for the user

    panes: list[Pane] = field(default_factory=list, init=False)
    phase: Phase = field(default=Phase.ATTACHING, init=False)
    paused: bool = field(default=False, init=False)
    end_signal: int | None = field(default=None, init=False)
    _t0: float = field(default=0.0, init=False)
    _phase_deadline: float | None = field(default=None, init=False)
    _stopping_since: float | None = field(default=None, init=False)  # when TERM went out
    _next_probe: float = field(default=0.0, init=False)
    _listeners: list[Callable[[Event], None]] = field(default_factory=list, init=False)
    _selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector,
                                              init=False)

    # ------------------------------------------------------------ public API

    def now(self) -> float:
        """Seconds since session start."""
        return self.clock() - self._t0

    def unwatch_view(self) -> None:
        """Stop reading the view's input (its terminal is gone)."""
        if self.view is not None and self.view.fileno() is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(self.view.fileno())  # type: ignore[arg-type]

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    @property
    def main(self) -> Pane:
        return self.panes[0]

    def request_end(self, signum: int | None = None) -> None:
        """Quit: end the session as if the main command had ended (q, a signal)."""
        if signum is not None and self.end_signal is None:
            self.end_signal = signum
        if self.phase in (Phase.ATTACHING, Phase.RUNNING, Phase.GRACE):
            self._begin_stopping()

    def pause(self) -> None:
        """Stop (SIGSTOP) the main process and the tracers; the recording notes it."""
        if not self.paused and self.phase is not Phase.DONE:
            self._set_paused(True)

    def resume(self) -> None:
        if self.paused:
            self._set_paused(False)

    def _set_paused(self, paused: bool) -> None:
        self.paused = paused
        for pane in self._pausable_panes():
            self._signal(pane, signal.SIGSTOP if paused else signal.SIGCONT)
            pane.stopped = paused
            self._emit(Event(self.now(), pane.index, STATE, pane.state()))
        self.mark("pause" if paused else "resume")

    @staticmethod
    def _signal(pane: Pane, sig: int) -> None:
        # Our panes are whole process groups; an attached job is its own group
        # (stopped and continued whole, as its shell does), unless it is in ours.
        if pane.attached:
            signal_job(pane.pid, sig)  # type: ignore[arg-type]
        else:
            procs.signal_group(pane.pid, sig)  # type: ignore[arg-type]

    def _pausable_panes(self) -> list[Pane]:
        return [p for p in self.panes if p.pid is not None and p.status is None]

    def mark(self, label: str) -> None:
        t = self.now()
        self.recording.marker(t, label)
        self._emit(Event(t, 0, MARKER, label))

    def resize_pane(self, index: int, cols: int, rows: int) -> None:
        pane = self.panes[index]
        if (pane.record.cols, pane.record.rows) == (cols, rows):
            return
        pane.record.cols, pane.record.rows = cols, rows
        if pane.proc is not None and pane.status is None:
            with contextlib.suppress(OSError):  # it may have exited just now
                pane.proc.setwinsize(rows, cols)
        t = self.now()
        pane.writer.resize(t, cols, rows)
        self._emit(Event(t, index, RESIZE, f"{cols}x{rows}"))

    # ------------------------------------------------------------ lifecycle

    def run(self) -> int:
        """Run the session to its end; return autotrace's exit status."""
        procs.become_subreaper()
        self._t0 = self.clock()
        with signal_pipe() as wake_fd:
            self._selector.register(wake_fd, selectors.EVENT_READ, "signals")
            view_fd = self.view.fileno() if self.view else None
            if view_fd is not None:
                self._selector.register(view_fd, selectors.EVENT_READ, "view")
            try:
                self._start_panes()
                while self.phase is not Phase.DONE:
                    self._step(wake_fd)
            finally:
                self._teardown()
        return self.exit_code()

    def exit_code(self) -> int:
        if self.end_signal is not None:
            return 128 + self.end_signal
        status = self.main.status if self.panes else None
        if self.panes and self.main.attached:
            return 0  # not our process: its status is not ours to report
        return status.shell_code if status else 1

    def _start_panes(self) -> None:
        main_spec, tracer_specs = self.specs[0], self.specs[1:]
        attach_pid = self.options.attach_pid
        tracers = [s for s in tracer_specs if s.role == "tracer" and not s.skipped]
        if attach_pid is not None:
            main = self._add_attached(main_spec, attach_pid)
            # A stopped job is continued even with no tracer to wait for (all
            # skipped, or only probes): the user chose "trace it and let it continue".
            hold = self.options.attach_held
        else:
            hold = bool(tracers)
            main = self._spawn(0, main_spec, main_spec.command, hold=hold)
            if hold and not procs.wait_until_stopped(main.pid):  # type: ignore[arg-type]
                self.notify("the main command did not stop before exec; "
                            "tracers may miss its start")
        for i, spec in enumerate(tracer_specs, start=1):
            command_run = self._tracer_command(spec.command, main.pid)  # type: ignore[arg-type]
            if spec.role == "probe":
                self._add_probe(i, spec, command_run)
            elif spec.skipped:
                self._add_skipped(i, spec, command_run)
            else:
                self._spawn(i, spec, command_run)
        self._next_probe = self.clock()
        if hold:
            self._phase_deadline = self.clock() + self.options.attach_timeout
            self._check_attached()
        else:
            self._enter_running()

    def _tracer_command(self, command: str, pid: int) -> str:
        if command.startswith("@"):
            return command
        command = procs.substitute_pid(command, pid)
        if self.options.netns:
            # The tracer sees the target's network: its interfaces, its sockets.
            return f"nsenter -t {pid} -n -- /bin/sh -c {shlex.quote(command)}"
        return command

    def _new_pane(self, index: int, spec: PaneSpec, command_run: str) -> Pane:
        cols, rows = self.options.cols, self.options.rows
        if self.view is not None:
            cols, rows = self.view.pane_size(index, len(self.specs))
        record = PaneRecord(index=index, role=spec.role, command=spec.command,
                            command_run=command_run, cols=cols, rows=rows)
        pane = Pane(record=record, writer=self.recording.add_pane(record))
        self.panes.append(pane)
        return pane

    def _spawn(self, index: int, spec: PaneSpec, command_run: str, hold: bool = False) -> Pane:
        pane = self._new_pane(index, spec, command_run)
        record = pane.record
        pane.proc = procs.spawn(command_run, record.cols, record.rows, hold=hold)
        pane.spawned_at = self.clock()
        record.pid, record.start = pane.proc.pid, round(pane.spawned_at - self._t0, 6)
        self._selector.register(pane.proc.fd, selectors.EVENT_READ, pane)
        self.recording.save_manifest()
        self._emit(Event(self.now(), index, STATE, pane.state()))
        return pane

    def _add_attached(self, spec: PaneSpec, pid: int) -> Pane:
        """The main pane of a process we attach to: its @proc view, since its
        output goes to the terminal it was started from, not to us."""
        pane = self._new_pane(0, spec, spec.command)
        pane.attached, pane.probe = True, make_probe("@proc")
        pane.record.pid, pane.record.start = pid, 0.0
        pane.spawned_at = self.clock()
        self.recording.session.attached = True
        self.recording.save_manifest()
        self._emit(Event(self.now(), 0, STATE, pane.state()))
        return pane

    def _add_probe(self, index: int, spec: PaneSpec, command_run: str) -> Pane:
        pane = self._new_pane(index, spec, command_run)
        pane.probe = make_probe(spec.command)
        pane.record.start = round(self.now(), 6)
        pane.spawned_at = self.clock()
        pane.output_seen = True  # nothing to wait for before the main command runs
        self.recording.save_manifest()
        self._emit(Event(self.now(), index, STATE, pane.state()))
        return pane

    def _add_skipped(self, index: int, spec: PaneSpec, command_run: str) -> Pane:
        pane = self._new_pane(index, spec, command_run)
        pane.record.note = spec.skipped
        pane.finished = pane.output_seen = True
        self._write(pane, f"\x1b[1;33mautotrace: not run: {spec.skipped}\x1b[0m\r\n")
        self.notify(f"pane {index} ({spec.command}): not run: {spec.skipped}")
        self.recording.save_manifest()
        self._emit(Event(self.now(), index, STATE, pane.state()))
        return pane

    def _write(self, pane: Pane, text: str) -> None:
        """Output autotrace itself puts into a pane: recorded like the pane's own."""
        t = self.now()
        pane.writer.output(t, text)
        self._emit(Event(t, pane.index, OUTPUT, text))

    def _refresh_probes(self, now: float) -> None:
        """One frame per probe pane; notice an attached main process that ended."""
        # While the main command is held it is still autotrace's holding shell:
        # a frame of that would show our internals, not the user's program.
        if now < self._next_probe or self.phase is Phase.ATTACHING:
            return
        self._next_probe = now + self.options.interval
        main = self.main
        if main.attached and main.status is None and not psutil.pid_exists(main.pid):  # type: ignore[arg-type]
            main.status, main.reaped_at = ExitStatus(), now
            self._finish_pane_record(main)
            self.recording.save_manifest()
            self._emit(Event(self.now(), 0, STATE, main.state()))
        try:
            target = psutil.Process(main.pid)
        except (psutil.Error, TypeError):
            target = None
        for pane in self.panes:
            if pane.probe is None or pane.finished:
                continue
            if target is not None:
                frame = pane.probe.frame(target, pane.record.cols, pane.record.rows)
                self._write(pane, frame)
                pane.record.bytes += len(frame.encode())
            if main.ended or target is None:
                pane.finished = True
                if pane is not main:
                    pane.record.end = round(self.now(), 6)

    def _enter_running(self) -> None:
        self.phase, self._phase_deadline = Phase.RUNNING, None
        if self.options.duration is not None:
            self._phase_deadline = self._t0 + self.options.duration

    def _check_attached(self) -> None:
        """Continue the held main command once every tracer is ready (or time is up)."""
        now = self.clock()
        ready = all(self._tracer_ready(p, now) for p in self.panes[1:])
        if not ready and now < (self._phase_deadline or now):
            return
        if not ready:
            self.notify("not every tracer was ready in time; starting the main command anyway")
        self._signal(self.main, signal.SIGCONT)
        self._enter_running()

    def _tracer_ready(self, pane: Pane, now: float) -> bool:
        if pane.output_seen or pane.status is not None:
            return True
        if procs.is_ptrace_tool(pane.record.command_run):
            return procs.tracer_pid_of(self.main.pid) != 0  # type: ignore[arg-type]
        return now - pane.spawned_at >= self.options.settle

    def _begin_grace(self) -> None:
        self.phase = Phase.GRACE
        self._phase_deadline = self.clock() + self.options.grace

    def _begin_stopping(self) -> None:
        self.phase = Phase.STOPPING
        self._stopping_since = self.clock()
        if self.paused:
            self.resume()
        for pane in self._live_panes():
            procs.signal_group(pane.pid, signal.SIGTERM)  # type: ignore[arg-type]
            procs.signal_group(pane.pid, signal.SIGCONT)  # type: ignore[arg-type]
        # Probe panes (an attached main is one) have no process to wait for:
        # without this, every attached session waited out the whole kill timeout.
        for pane in self.panes:
            if pane.probe is not None:
                pane.finished = True
        self._phase_deadline = self.clock() + self.options.kill_timeout

    def _teardown(self) -> None:
        """Whatever happened, nothing we started survives and the recording is closed."""
        if self.paused:  # an error while paused: an attached job must not stay stopped
            with contextlib.suppress(Exception):
                self._set_paused(False)
        groups = [p.proc.pid for p in self.panes if p.proc is not None and p.status is None]
        # When stopping began, TERM went out already: KILL after what is left of
        # --kill-timeout, not after a second one.
        waited = self.clock() - self._stopping_since if self._stopping_since is not None else 0.0
        procs.terminate(groups, max(0.0, self.options.kill_timeout - waited),
                        on_reaped=self._on_reaped)
        t = self.now()
        for pane in self.panes:
            if pane.proc is not None:
                data, _ = procs.read_available(pane.proc.fd) if not pane.eof else (b"", True)
                # A full disk (or a write that already failed) must not stop the teardown.
                with contextlib.suppress(OSError):
                    self._on_output(pane, data)
                pane.eof = True
                pane.proc.terminated = True  # we reaped it; ptyprocess must not wait again
                with contextlib.suppress(OSError):
                    pane.proc.close(force=True)
            self._finish_pane_record(pane)
        self._selector.close()
        with contextlib.suppress(OSError):
            self.recording.marker(t, "end")
            self.recording.close(t)

    # ------------------------------------------------------------ the loop

    def _next_deadline(self) -> float | None:
        deadlines = [self._phase_deadline] if self._phase_deadline is not None else []
        if self.phase is Phase.ATTACHING:
            deadlines.append(self.clock() + 0.01)  # TracerPid is not an event we can wait on
        if self.phase is not Phase.ATTACHING and any(
                p.probe is not None and not p.finished for p in self.panes):
            deadlines.append(self._next_probe)
        for pane in self.panes:
            if pane.reaped_at is not None and not pane.eof:
                deadlines.append(pane.reaped_at + DRAIN_AFTER_EXIT)
        if self.view is not None:
            view_deadline = self.view.next_deadline()
            if view_deadline is not None:
                deadlines.append(view_deadline)
        return min(deadlines) if deadlines else None

    def _step(self, wake_fd: int) -> None:
        deadline = self._next_deadline()
        timeout = None if deadline is None else max(0.0, deadline - self.clock())
        for key, _ in self._selector.select(timeout):
            if key.data == "signals":
                self._on_signals(read_signals(wake_fd))
            elif key.data == "view":
                self.view.on_input()  # type: ignore[union-attr]
            else:
                self._read_pane(key.data)
        self._advance(self.clock())

    def _advance(self, now: float) -> None:
        self._refresh_probes(now)
        for pane in self.panes:
            drained = pane.reaped_at is not None and now >= pane.reaped_at + DRAIN_AFTER_EXIT
            if drained and not pane.eof:
                self._close_pane_fd(pane)
        if self.phase is Phase.ATTACHING:
            self._check_attached()
        if self.phase is Phase.RUNNING:
            if self.main.ended:
                self._begin_grace()
            elif self._phase_deadline is not None and now >= self._phase_deadline:
                self._begin_stopping()  # --duration reached
        if self.phase is Phase.GRACE and (
            all(p.ended for p in self.panes) or now >= self._phase_deadline  # type: ignore[operator]
        ):
            self._begin_stopping()
        if self.phase is Phase.STOPPING:
            if all(p.ended for p in self.panes):
                self.phase = Phase.DONE
            elif now >= self._phase_deadline:  # type: ignore[operator]
                self.phase = Phase.DONE  # _teardown escalates to KILL
        if self.view is not None:
            self.view.tick(now)

    def _on_signals(self, signums: list[int]) -> None:
        for signum in signums:
            if signum == signal.SIGCHLD:
                for pid, status in procs.reap_any():
                    self._on_reaped(pid, status)
            elif signum == signal.SIGWINCH:
                if self.view is not None:
                    self.view.on_resize()
            elif signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                self.request_end(signum)

    def _on_reaped(self, pid: int, status: int) -> None:
        for pane in self.panes:
            if pane.pid == pid and pane.status is None:
                pane.status = ExitStatus.from_wait(status)
                pane.reaped_at = self.clock()
                pane.stopped = False
                self._finish_pane_record(pane)
                self.recording.save_manifest()
                self._emit(Event(self.now(), pane.index, STATE, pane.state()))

    def _finish_pane_record(self, pane: Pane) -> None:
        record = pane.record
        if pane.attached and pane.status is None and self.phase is Phase.DONE:
            record.end = round(self.now(), 6)
            record.note = "attached, not ours: tracers detached, the process goes on"
            return
        if pane.proc is None and not pane.attached and record.end is None:
            record.end = round(self.now(), 6)  # a probe or skipped pane ends with the session
            return
        if pane.status is not None and record.end is None:
            end = pane.reaped_at if pane.reaped_at is not None else self.clock()
            record.end = round(end - self._t0, 6)
            record.exit_status = pane.status.code
            record.exit_signal = pane.status.signal
            record.exit_signal_name = pane.status.signal_name

    def _read_pane(self, pane: Pane) -> None:
        data, eof = procs.read_available(pane.proc.fd, procs.READ_PER_TURN)  # type: ignore[union-attr]
        self._on_output(pane, data)
        if eof:
            self._close_pane_fd(pane)

    def _close_pane_fd(self, pane: Pane) -> None:
        pane.eof = True
        with contextlib.suppress(KeyError, ValueError):  # already unregistered
            self._selector.unregister(pane.proc.fd)  # type: ignore[union-attr]

    def _on_output(self, pane: Pane, data: bytes) -> None:
        if not data:
            return
        t = self.now()
        pane.record.bytes += len(data)
        pane.output_seen = True
        text = pane.writer.decode(data)
        pane.writer.output(t, text)
        self._emit(Event(t, pane.index, OUTPUT, text))
        if pane.record.role == "tracer" and pane.hint_scanned < HINT_SCAN_BYTES:
            self._look_for_refusal(pane, text)

    def _look_for_refusal(self, pane: Pane, text: str) -> None:
        pane.hint_scanned += len(text)
        pane.hint_buffer = (pane.hint_buffer + text)[-HINT_SCAN_BYTES:]
        hint = refusal_hint(pane.hint_buffer)
        if hint and pane.record.note is None:
            pane.record.note = hint
            pane.hint_scanned = HINT_SCAN_BYTES  # one hint per pane is enough
            notice = f"\r\n\x1b[1;33mautotrace: {hint}\x1b[0m\r\n"
            t = self.now()
            pane.writer.output(t, notice)
            self._emit(Event(t, pane.index, OUTPUT, notice))
            self.recording.save_manifest()
            self.notify(f"pane {pane.index} ({pane.record.command}): {hint}")

    def _emit(self, event: Event) -> None:
        if self.view is not None:
            self.view.on_event(event)
        for listener in self._listeners:
            listener(event)

    def _live_panes(self) -> list[Pane]:
        return [p for p in self.panes if p.proc is not None and p.status is None]
