"""A live session: owns the panes, runs the one select loop, ends cleanly.

Reading never waits on anything else: every readable pty is drained in large
reads and written to the recording at once; consumers (the view) get events
and catch up at their own pace.
"""

from __future__ import annotations

import contextlib
import enum
import shlex
import signal
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import psutil
from ptyprocess import PtyProcess

from autotrace.events import INPUT, MARKER, OUTPUT, RESIZE, STATE, Event
from autotrace.format.recording import PaneRecord, PaneWriter, RecordingWriter
from autotrace.live import held, procs, terminal_move
from autotrace.live.attach import job_group, signal_job
from autotrace.live.hints import refusal_hint
from autotrace.live.panes import AttachedPane, MovedPane, Pane, ProbePane, PtyPane, SkippedPane
from autotrace.live.pause import Pause, Target
from autotrace.live.pause_guard import GuardError
from autotrace.live.probes import make_probe
from autotrace.live.procs import ExitStatus
from autotrace.live.remote import (
    SSH_FAILED,
    SSH_HINT,
    RemotePane,
    UnreachablePane,
    lost_connection_line,
    remote_command,
    signal_remote,
)
from autotrace.live.ssh import CONNECT_TIMEOUT, SshHosts, split_remote
from autotrace.loop import Loop, running

# How long to keep reading a pane after its process was reaped, for output
# still in the pty, when something else (a background child) holds it open.
DRAIN_AFTER_EXIT = 0.3
# A paste the pane's pty could not take at once is written on this often.
TYPED_RETRY = 0.02
# Exit statuses that mean the command never ran (POSIX shells use these).
NOT_STARTED = {126: "found but not executable", 127: "command not found"}
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
    attach_job: bool = False  # it is a shell's job (Ctrl-Z pickup): pause its whole group
    netns: bool = False  # run tracers inside the main process's network namespace
    record_input: bool = False  # what the user types into panes goes into the recording


@dataclass
class PaneSpec:
    command: str  # as the user gave it; PID is substituted for tracers
    role: str = "tracer"  # main, tracer or probe
    skipped: str | None = None  # why this tracer is not run (shown in its pane)
    host: str | None = None  # `HOST: COMMAND`: run on HOST over ssh

    @property
    def runs(self) -> str:
        """The command itself, without its `HOST: `."""
        return split_remote(self.command)[1] if self.host else self.command


class Phase(enum.Enum):
    ATTACHING = "attaching"  # main held, waiting for tracers to be ready
    RUNNING = "running"
    GRACE = "grace"  # main ended, tracers flushing
    STOPPING = "stopping"  # TERM sent, waiting; then KILL
    DONE = "done"


class View(Protocol):
    """What the session needs from an interactive view (None when headless):
    its events, and the pty size a new pane gets. Keys, frames and resizes
    reach the view through the loop, not through the session."""

    def on_event(self, event: Event) -> None: ...
    def pane_size(self, index: int, count: int) -> tuple[int, int]: ...


@dataclass
class Session:
    specs: list[PaneSpec]
    recording: RecordingWriter
    options: SessionOptions = field(default_factory=SessionOptions)
    clock: Callable[[], float] = time.monotonic
    view: View | None = None
    notify: Callable[[str], None] = lambda line: None  # one-line notices for the user
    # Called once the session is over (every pane ended, the recording closed)
    # with autotrace's exit status; headless, it ends the loop.
    on_done: Callable[[int], None] | None = None
    ssh: SshHosts | None = None  # the connections to other hosts, when a pane runs on one

    panes: list[Pane] = field(default_factory=list, init=False)
    phase: Phase = field(default=Phase.ATTACHING, init=False)
    paused: bool = field(default=False, init=False)
    end_signal: int | None = field(default=None, init=False)
    _t0: float = field(default=0.0, init=False)
    _loop: Loop | None = field(default=None, init=False)
    _paused_at: float | None = field(default=None, init=False)
    _finished: bool = field(default=False, init=False)
    _phase_deadline: float | None = field(default=None, init=False)
    _stopping_since: float | None = field(default=None, init=False)  # when TERM went out
    _next_probe: float = field(default=0.0, init=False)
    _listeners: list[Callable[[Event], None]] = field(default_factory=list, init=False)
    _pause: Pause = field(default_factory=Pause, init=False)  # what p stopped, and its guard
    # Why a picked-up job's output still goes to the terminal (not moved to pane 0).
    foreign_output: str | None = field(default=None, init=False)
    handed_back: bool = field(default=False, init=False)  # a moved job went back to its terminal
    # A Ctrl-Z job moved onto a pty of ours: (holder, the pty, where its fds were), or why not.
    _moved_in: tuple[PtyProcess, str, dict[int, dict[int, str]]] | str | None = field(
        default=None, init=False)
    afterwords: list[str] = field(default_factory=list, init=False)  # lines for after the view
    _after_exec: list[Pane] = field(default_factory=list, init=False)  # samplers held for the main

    # ------------------------------------------------------------ public API

    def now(self) -> float:
        """Seconds since session start."""
        return self.clock() - self._t0

    @property
    def over(self) -> bool:
        """Every pane has ended and the recording is closed."""
        return self._finished

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    def publish(self, event: Event) -> None:
        """An event a consumer made (a finding): to every consumer, as the session's own."""
        self._emit(event)

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
        """Stop (SIGSTOP) the main process, the tracers and their descendants
        (live/pause.py says exactly which); the recording notes it.

        While paused no timer ends the session (--duration, --grace): the
        user is reading. They run on from where they were on resume."""
        if not self.paused and self.phase is not Phase.DONE:
            self._paused_at = self.clock()
            try:
                self._set_paused(True)
            except GuardError as err:  # nothing is left stopped: say why, go on running
                self.paused = False
                self._paused_at = None
                self.notify(f"not paused: {err}")

    def resume(self) -> None:
        if self.paused:
            if self._paused_at is not None and self._phase_deadline is not None \
                    and self.phase in (Phase.RUNNING, Phase.GRACE):
                self._phase_deadline += self.clock() - self._paused_at
            self._paused_at = None
            self._set_paused(False)

    def _set_paused(self, paused: bool) -> None:
        self.paused = paused
        panes = self._pausable_panes()
        # A remote pane is stopped on its host: stopping its ssh client here
        # would only leave its output waiting on the wire.
        here = [pane for pane in panes if not isinstance(pane, RemotePane)]
        if paused:
            self._pause.stop(self._pause_target(pane) for pane in here)
            self._signal_remote("STOP", wait=False)  # the view must not wait on the wire
        else:
            self._pause.resume()
            self._signal_remote("CONT", wait=False)
        for pane in panes:
            pane.stopped = paused
            self._emit(Event(self.now(), pane.index, STATE, pane.state()))
        if paused:
            self._drain_stopped()
        self.mark("pause" if paused else "resume")

    def _drain_stopped(self) -> None:
        """What the stopped processes printed before they stopped is recorded
        before the pause marker: what the paused view shows is what they did."""
        main = self.main
        if main.ours and main.status is None and not isinstance(main, RemotePane):
            procs.wait_until_stopped(main.pid, timeout=0.1)  # type: ignore[arg-type]
        for pane in self.panes:
            if isinstance(pane, PtyPane) and not pane.eof:
                self._read_pane(pane, drain=True)  # all of it, not one turn's share

    def _pause_target(self, pane: Pane) -> Target:
        """Our panes are process groups; an attached process is itself and its
        descendants, unless it is a Ctrl-Z job: then its job's group, as its shell does."""
        if not pane.attached:
            return Target(pane.pid, group=pane.pid)  # type: ignore[arg-type]
        group = job_group(pane.pid) if self.options.attach_job else None  # type: ignore[arg-type]
        return Target(pane.pid, group=group)  # type: ignore[arg-type]

    @staticmethod
    def _signal(pane: Pane, sig: int) -> None:
        # Our panes are whole process groups; an attached job is its own group
        # (continued whole once the tracers are ready), unless it is in ours.
        if pane.attached:
            signal_job(pane.pid, sig)  # type: ignore[arg-type]
        else:
            procs.signal_group(pane.pid, sig)  # type: ignore[arg-type]

    def _pausable_panes(self) -> list[Pane]:
        return [p for p in self.panes if p.pid is not None and p.status is None]

    def reply(self, index: int, text: str) -> None:
        """An answer to a device query the pane's program asked (its screen model
        knows the answer): to the pane's own pty, while it runs."""
        pane = self.panes[index] if 0 <= index < len(self.panes) else None
        if isinstance(pane, PtyPane):
            pane.write(text.encode())

    def send_input(self, index: int, text: str) -> None:
        """What the user typed into a pane (input mode, `i`): to its program's
        pty, as bytes, so the pty's line discipline makes Ctrl-C a SIGINT.
        Recorded only when asked (--record-input): it may hold passwords."""
        pane = self.panes[index] if 0 <= index < len(self.panes) else None
        if not isinstance(pane, PtyPane) or not text:
            return
        pane.type_in(text.encode("utf-8", "surrogateescape"))
        if self.options.record_input and not self.over:
            self._emit(Event(self.now(), index, INPUT, text))

    def can_type_into(self, index: int) -> str | None:
        """Why the user cannot type into this pane (None: they can)."""
        pane = self.panes[index] if 0 <= index < len(self.panes) else None
        if not isinstance(pane, PtyPane):
            return "this pane has no program to type into (a probe's view)"
        if pane.status is not None or pane.eof:
            return "its program has ended"
        return None

    def mark(self, label: str) -> None:
        self._emit(Event(self.now(), 0, MARKER, label))

    def resize_pane(self, index: int, cols: int, rows: int) -> None:
        pane = self.panes[index]
        if self.over or (pane.record.cols, pane.record.rows) == (cols, rows):
            return  # over: the recording is closed, the final screens keep their size
        pane.record.cols, pane.record.rows = cols, rows
        if isinstance(pane, PtyPane):
            pane.resize(cols, rows)
        self._emit(Event(self.now(), index, RESIZE, f"{cols}x{rows}"))

    # ------------------------------------------------------------ lifecycle

    def run(self, loop: Loop | None = None) -> int:
        """Run the session to its end; return autotrace's exit status.

        Headless it runs in a loop of its own; a view passes the loop it
        drives and decides itself when that loop ends (on_done)."""
        with running(loop, self.clock) as active:
            if loop is None:
                self.on_done = active.stop
            try:
                self.start(active)
                return active.run()
            finally:
                self.finish()

    def start(self, loop: Loop) -> None:
        """Join the loop and start every pane (the main one held until its
        tracers are ready)."""
        procs.become_subreaper()
        self._loop = loop
        loop.on_signal(self._on_signal)
        self._move_in_job()  # a gdb attach, up to seconds: before the clock starts
        # The time origin and the wall clock it stands for are read together:
        # event times plus started_unix must agree with other logs.
        self._t0 = self.clock()
        self.recording.session.started_unix = time.time()
        self._listeners.insert(0, self.recording.consume)  # recorded before it is shown
        loop.join(self)
        self._connect_hosts()
        self._start_panes()

    def finish(self) -> None:
        """End whatever still runs and close the recording (once)."""
        if self._finished:
            return
        self._finished = True
        self.phase = Phase.DONE
        if self._loop is not None:
            self._loop.leave(self)
        self._teardown()

    def exit_code(self) -> int:
        if self.end_signal is not None:
            return 128 + self.end_signal
        status = self.main.status if self.panes else None
        if self.panes and self.main.attached:
            return 0  # not our process: its status is not ours to report
        return status.shell_code if status else 1

    def not_started(self) -> list[str]:
        """A line for each pane of ours that could not run its command: exit
        126 or 127, the shell's (and held.py's) "cannot run" and "not found"."""
        lines = []
        for pane in self.panes:
            code = pane.status.code if pane.ours and pane.status else None
            if code in NOT_STARTED:
                what = "the main command" if pane is self.main else f"tracer pane {pane.index}"
                lines.append(f"{what} did not start ({NOT_STARTED[code]}, exit {code}): "
                             f"{pane.record.command}")
        return lines

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
            main = self._spawn(0, main_spec, main_spec.runs, hold=hold)
            if hold and not self._wait_held(main):
                self.notify("the main command did not stop before exec; "
                            "tracers may miss its start")
        for i, spec in enumerate(tracer_specs, start=1):
            pid = self._main_pid_on(spec.host)
            # No pid where it runs: the command stays as given (it is refused
            # below if it names PID).
            command_run = spec.runs if pid is None else self._tracer_command(spec.runs, pid)
            why_not = spec.skipped or self._cannot_run(spec, pid)
            if spec.role == "probe" and not why_not:
                self._add_probe(i, spec, command_run)
            elif why_not:
                self._add_skipped(i, PaneSpec(spec.command, spec.role, why_not, spec.host),
                                  command_run)
            elif hold and spec.host is None and self.main.record.host is None \
                    and procs.is_sampler(command_run):
                # Held too, continued once the main has exec'd: its first
                # sample is of the program (lsof -p PID), not of our child.
                self._after_exec.append(self._spawn(i, spec, command_run, hold=True))
            else:
                self._spawn(i, spec, command_run)
        self._next_probe = self.clock()
        if hold:
            self._phase_deadline = self.clock() + self.options.attach_timeout
            self._check_attached()
        else:
            self._enter_running()

    def _wait_held(self, main: Pane) -> bool:
        """The held main command has stopped itself (here or on its host)."""
        if isinstance(main, RemotePane):
            main.record.remote_pid = main.wait_for_pid(CONNECT_TIMEOUT)
            if main.pid_news():
                self._emit(Event(self.now(), main.index, STATE, main.state()))
            return main.record.remote_pid is not None or main.eof
        if main.pid is None:
            return True  # it never started (an unreachable host): nothing to hold
        return procs.wait_until_stopped(main.pid)

    def _main_pid_on(self, host: str | None) -> int | None:
        """The main process's pid as HOST sees it (None: it is not on HOST)."""
        main = self.main
        if main.record.host != host:
            return None
        return main.remote_pid if isinstance(main, RemotePane) else main.pid

    def _cannot_run(self, spec: PaneSpec, pid: int | None) -> str | None:
        """Why a tracer cannot run where it was asked to, if it cannot."""
        main_host = self.main.record.host
        where = main_host or "this host"
        if spec.role == "probe" and main_host is not None:
            return f"probes read this host's /proc; the main command runs on {main_host}"
        if pid is None and procs.PID_WORD.search(spec.runs):
            if (main_host == spec.host) or self.main.pid is None:
                return "the main command did not start, so there is no PID"
            return (f"PID is the main command's pid on {where}, "
                    f"not on {spec.host or 'this host'}")
        return None

    def _connect_hosts(self) -> None:
        """One ssh master per host named, and its clock against ours."""
        hosts = [spec.host for spec in self.specs if spec.host]
        if not hosts:
            return
        if self.ssh is None:
            self.ssh = SshHosts()
        self.ssh.connect(hosts)
        for link in self.ssh.links.values():
            if link.error:
                self.notify(f"{link.host}: {link.error}")
        self.ssh.measure_clocks("start")
        for link in self.ssh.links.values():
            if link.error is None and link.start is None:
                self.notify(f"{link.host}: its clock did not answer; "
                            "its panes' times are when their output arrived")
        self._record_hosts()

    def _record_hosts(self) -> None:
        assert self.ssh is not None
        started = self.recording.session.started_unix
        self.recording.session.hosts = {
            link.host: {"error": link.error,
                        "start": link.start.to_json(started) if link.start else None,
                        "end": link.end.to_json(started) if link.end else None}
            for link in self.ssh.links.values()}

    def _tracer_command(self, command: str, pid: int) -> str:
        if command.startswith("@dns"):  # a process of ours; it enters the namespace itself
            from autotrace.live.dns_capture import probe_command  # its decoder: only when asked

            return probe_command(command, pid)
        if command.startswith("@"):
            return command
        command = procs.substitute_pid(command, pid)
        if self.options.netns:
            # The tracer sees the target's network: its interfaces, its sockets.
            return f"nsenter -t {pid} -n -- /bin/sh -c {shlex.quote(command)}"
        return command

    def _new_record(self, index: int, spec: PaneSpec, command_run: str) -> PaneRecord:
        cols, rows = self.options.cols, self.options.rows
        if self.view is not None:
            cols, rows = self.view.pane_size(index, len(self.specs))
        return PaneRecord(index=index, role=spec.role, command=spec.command,
                          command_run=command_run, cols=cols, rows=rows, host=spec.host)

    def _add(self, pane: Pane) -> Pane:
        """A new pane of any kind: listed, watched, in the manifest, announced."""
        self.panes.append(pane)
        if pane.fd is not None:
            self._watch(pane)
        self._emit(Event(self.now(), pane.index, STATE, pane.state()))
        return pane

    def _spawn(self, index: int, spec: PaneSpec, command_run: str, hold: bool = False) -> Pane:
        record = self._new_record(index, spec, command_run)
        writer = self.recording.add_pane(record)
        if spec.host is not None:
            return self._spawn_remote(record, writer, spec.host, hold)
        if hold:
            child = procs.spawn_held(command_run, record.cols, record.rows)
            pane = PtyPane(record, writer, child.proc, spawned_at=self.clock(),
                           exec_report=child.exec_report)
            self._loop.watch(child.exec_report, lambda: self._on_exec_report(pane))  # type: ignore[union-attr]
        else:
            pane = PtyPane(record, writer, procs.spawn(command_run, record.cols, record.rows),
                           spawned_at=self.clock())
        record.pid, record.start = pane.pid, round(pane.spawned_at - self._t0, 6)
        return self._add(pane)

    def _on_exec_report(self, pane: PtyPane) -> None:
        """The held main has exec'd its program (or failed to): probes may start."""
        if pane.exec_report is None:
            return
        finished, error = held.read_report(pane.exec_report)
        if not finished:
            return
        self._loop.unwatch(pane.exec_report)  # type: ignore[union-attr]
        pane.close_exec_report()
        if error:
            self._write(pane, f"\x1b[1;31mautotrace: cannot run it: {error}\x1b[0m\r\n")
            self.notify(f"pane {pane.index} ({pane.record.command}) could not start: {error}")
        if pane is self.main:
            for sampler in self._after_exec:
                procs.signal_group(sampler.pid, signal.SIGCONT)  # type: ignore[arg-type]
            self._after_exec.clear()

    def _spawn_remote(self, record: PaneRecord, writer: PaneWriter, host: str,
                      hold: bool) -> Pane:
        """ssh -tt over the host's master; a host that did not connect shows why."""
        record.host = host
        if self.ssh is None or not self.ssh.usable(host):
            link = self.ssh.links.get(host) if self.ssh else None
            said = (link.error if link else None) or "not connected"
            pane = self._add(UnreachablePane(record, writer, host, said))
            self._write(pane, f"\x1b[1;31m{host}: {said}\x1b[0m\r\n"
                              f"\x1b[1;33mautotrace: {SSH_HINT}\x1b[0m\r\n")
            return pane
        argv = self.ssh.pane_argv(host, remote_command(record.command_run, hold))
        proc = procs.spawn(shlex.join(argv), record.cols, record.rows)
        pane = RemotePane(record, writer, proc, spawned_at=self.clock(), host=host)
        record.pid, record.start = proc.pid, round(pane.spawned_at - self._t0, 6)
        return self._add(pane)

    def _add_attached(self, spec: PaneSpec, pid: int) -> Pane:
        """The main pane of a process we attach to: its @proc view, since its
        output goes to the terminal it was started from, not to us."""
        record = self._new_record(0, spec, spec.command)
        record.pid, record.start = pid, 0.0
        self.recording.session.attached = True
        moved = self._moved_in
        if moved is not None:  # a Ctrl-Z job: its output to pane 0, off the view
            if not isinstance(moved, str):
                holder, pty, came_from = moved
                return self._add(MovedPane(record, self.recording.add_pane(record), holder,
                                           self.clock(), pid, pty, came_from))
            if self.view is not None and moved != terminal_move.NOT_ON_A_TERMINAL:
                self.foreign_output = moved
                self.notify(f"its output stays on this terminal: {moved}")
        pane = AttachedPane(record, self.recording.add_pane(record), make_probe("@proc"), pid)
        return self._add(pane)

    def _move_in_job(self) -> None:
        """A Ctrl-Z job's terminal output onto a pty of ours (terminal_move.py)."""
        pid = self.options.attach_pid
        if not self.options.attach_job or pid is None:
            return
        cols, rows = self.options.cols, self.options.rows
        if self.view is not None:
            cols, rows = self.view.pane_size(0, len(self.specs))
        self._moved_in = terminal_move.move_in(pid, job_group(pid) or pid, cols, rows)

    def _give_back(self, pane: MovedPane) -> None:
        """A moved job back to the terminal it came from, once no tracer holds
        it (gdb must attach), as it is now, running or stopped; one line says where."""
        if pane.gone():
            return
        why = terminal_move.give_back(pane.pid, job_group(pane.pid) or pane.pid, pane.pty,
                                      pane.came_from)
        try:
            proc = psutil.Process(pane.pid)
            name, stopped = proc.name(), proc.status() == psutil.STATUS_STOPPED
        except psutil.Error:
            return
        self.handed_back = True
        if why is not None:
            self.afterwords.append(f"{name} (pid {pane.pid}) could not be given back to "
                                   f"its terminal: {why}")
        elif stopped:
            self.afterwords.append(f"{name} (pid {pane.pid}) is stopped in the background of "
                                   "this shell: fg or bg continues it")
        else:
            self.afterwords.append(f"{name} (pid {pane.pid}) goes on in the background of "
                                   "this shell: fg brings it back")

    def _add_probe(self, index: int, spec: PaneSpec, command_run: str) -> Pane:
        record = self._new_record(index, spec, command_run)
        record.start = round(self.now(), 6)
        record.pid = self.main.pid  # the process it shows: a probe has none of its own
        return self._add(ProbePane(record, self.recording.add_pane(record),
                                   make_probe(spec.command)))

    def _add_skipped(self, index: int, spec: PaneSpec, command_run: str) -> Pane:
        record = self._new_record(index, spec, command_run)
        pane = self._add(SkippedPane(record, self.recording.add_pane(record),
                                     spec.skipped or "not allowed"))
        self._write(pane, f"\x1b[1;33mautotrace: not run: {spec.skipped}\x1b[0m\r\n")
        self.notify(f"pane {index} ({spec.command}): not run: {spec.skipped}")
        return pane

    def _write(self, pane: Pane, text: str) -> None:
        """Output autotrace itself puts into a pane: recorded like the pane's own."""
        if text:
            self._emit(Event(self.now(), pane.index, OUTPUT, text))

    def _refresh_probes(self, now: float) -> None:
        """One frame per probe pane; notice an attached main process that ended."""
        # Until the held main has exec'd it is autotrace's own child: a frame
        # of that would show our internals, not the user's program.
        if now < self._next_probe or self.phase is Phase.ATTACHING or not self._main_execed():
            return
        self._next_probe = now + self.options.interval
        main = self.main
        self._check_main_gone(now)
        try:
            target = psutil.Process(main.pid)
        except (psutil.Error, TypeError):
            target = None
        for pane in self.panes:
            probe = pane.probe
            if probe is None:
                continue
            if target is not None:
                frame = probe.frame(target, pane.record.cols, pane.record.rows)
                self._write(pane, frame)
                pane.record.bytes += len(frame.encode())
            if main.ended or target is None:
                pane.finish()
                if pane is not main:
                    pane.record.end = round(self.now(), 6)

    def _check_main_gone(self, now: float) -> None:
        """An attached main (not our child: never reaped by us) that has ended."""
        main = self.main if self.panes else None
        if main is not None and main.attached and main.status is None and main.gone():
            main.status, main.reaped_at = ExitStatus(), now
            self._finish_pane_record(main)
            self._emit(Event(self.now(), 0, STATE, main.state()))

    def _main_execed(self) -> bool:
        main = self.main
        return not isinstance(main, PtyPane) or main.execed

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
        main = self.main
        if isinstance(main, RemotePane):
            if main.remote_pid is not None and self.ssh is not None:
                self.ssh.run(main.host, f"kill -CONT {main.remote_pid}")
        elif main.pid is not None:
            self._signal(main, signal.SIGCONT)
        self._enter_running()

    def _tracer_ready(self, pane: Pane, now: float) -> bool:
        if pane in self._after_exec:
            return True  # it waits for the main, not the main for it
        return pane.ready(self.main.pid, now, self.options.settle)  # type: ignore[arg-type]

    def _begin_grace(self) -> None:
        self.phase = Phase.GRACE
        self._phase_deadline = self.clock() + self.options.grace

    def _begin_stopping(self) -> None:
        self.phase = Phase.STOPPING
        self._stopping_since = self.clock()
        if self.paused:
            self.resume()
        for pane in self._live_panes():
            if isinstance(pane, RemotePane) and pane.remote_pid is not None:
                continue  # ended on its host (below): its last output still comes over ssh
            procs.signal_group(pane.pid, signal.SIGTERM)  # type: ignore[arg-type]
            procs.signal_group(pane.pid, signal.SIGCONT)  # type: ignore[arg-type]
        self._signal_remote("TERM", wait=False)
        # Probe panes (an attached main is one) have no process to wait for:
        # without this, every attached session waited out the whole kill timeout.
        for pane in self.panes:
            pane.finish()
        self._phase_deadline = self.clock() + self.options.kill_timeout

    def _teardown(self) -> None:
        """Whatever happened, nothing we started survives and the recording is closed."""
        if self.paused:  # an error while paused: an attached job must not stay stopped
            with contextlib.suppress(Exception):
                self._set_paused(False)
        self._pause.close()  # before terminate(): the guard is not a pane's process
        self._end_remote()
        groups = [p.pid for p in self._live_panes() if p.pid is not None]
        # When stopping began, TERM went out already: KILL after what is left of
        # --kill-timeout, not after a second one.
        waited = self.clock() - self._stopping_since if self._stopping_since is not None else 0.0
        procs.terminate(groups, max(0.0, self.options.kill_timeout - waited),
                        on_reaped=self._on_reaped)
        for pane in self.panes:
            if isinstance(pane, MovedPane):  # the tracers are gone: gdb may attach
                with contextlib.suppress(Exception):
                    self._give_back(pane)
                self._read_pane(pane, drain=True)  # what it wrote here before it went back
                terminal_move.end_holder(pane.proc)
        t = self.now()
        for pane in self.panes:
            if isinstance(pane, PtyPane):
                self._unwatch(pane)  # the loop may go on (a view that stays) without it
                if pane.exec_report is not None and self._loop is not None:
                    self._loop.unwatch(pane.exec_report)
                data, _ = pane.read()
                # A full disk (or a write that already failed) must not stop the teardown.
                with contextlib.suppress(OSError):
                    self._on_output(pane, data)
                    self._write(pane, pane.decode(b"", final=True))  # a torn last character
                pane.close()
            self._finish_pane_record(pane)
        with contextlib.suppress(OSError):
            self._emit(Event(t, 0, MARKER, "end"))
            self.recording.close(t)

    # ------------------------------------------------------------ the loop

    def next_deadline(self) -> float | None:
        timed = self._phase_deadline is not None and not (
            self.paused and self.phase in (Phase.RUNNING, Phase.GRACE))  # paused: timers wait
        deadlines = [self._phase_deadline] if timed else []
        if self.phase is Phase.ATTACHING:
            deadlines.append(self.clock() + 0.01)  # TracerPid is not an event we can wait on
        if self.phase is not Phase.ATTACHING and self._main_execed() \
                and any(p.probe is not None for p in self.panes):
            deadlines.append(self._next_probe)
        for pane in self.panes:
            if pane.reaped_at is not None and not pane.eof:
                deadlines.append(pane.reaped_at + DRAIN_AFTER_EXIT)
            if isinstance(pane, PtyPane) and pane.typing_pending:
                deadlines.append(self.clock() + TYPED_RETRY)  # a paste the pty had no room for
        return min(deadlines) if deadlines else None  # type: ignore[type-var]

    def advance(self, now: float) -> None:
        """The loop's turn: probes, phases; at the end, teardown and on_done."""
        self._advance(now)
        if self.phase is Phase.DONE and not self._finished:
            self.finish()
            if self.on_done is not None:
                self.on_done(self.exit_code())

    def _advance(self, now: float) -> None:
        self._refresh_probes(now)
        for pane in self.panes:
            if isinstance(pane, PtyPane) and pane.typing_pending:
                pane.flush_typed()
            drained = pane.reaped_at is not None and now >= pane.reaped_at + DRAIN_AFTER_EXIT
            if drained and not pane.eof:
                self._close_pane_fd(pane)
        if self.phase is Phase.ATTACHING:
            self._check_attached()
        timers = not self.paused  # a paused user is reading: no timer ends the session
        if self.phase is Phase.RUNNING:
            if self.main.ended:
                self._begin_grace()
            elif timers and self._phase_deadline is not None and now >= self._phase_deadline:
                self._begin_stopping()  # --duration reached
        if self.phase is Phase.GRACE and (
            all(p.ended for p in self.panes)
            or (timers and now >= self._phase_deadline)  # type: ignore[operator]
        ):
            self._begin_stopping()
        if self.phase is Phase.STOPPING:
            if all(p.ended for p in self.panes):
                self.phase = Phase.DONE
            elif now >= self._phase_deadline:  # type: ignore[operator]
                self.phase = Phase.DONE  # _teardown escalates to KILL

    def _signal_remote(self, sig: str, wait: bool) -> None:
        """SIG to the remote process groups of the remote panes still running."""
        if self.ssh is None:
            return
        by_host: dict[str, list[int]] = {}
        for pane in self._live_panes():
            if isinstance(pane, RemotePane) and pane.remote_pid is not None:
                pane.ended_by_us = pane.ended_by_us or sig in ("TERM", "KILL")
                by_host.setdefault(pane.host, []).append(pane.remote_pid)
        for host, pids in by_host.items():
            if wait:
                self.ssh.run(host, signal_remote(pids, sig))
            else:
                self.ssh.start(host, signal_remote(pids, sig))

    def _end_remote(self) -> None:
        """Before the local teardown: nothing of ours goes on running on another
        host; each host's clock is measured again; the masters are closed."""
        if self.ssh is None or not self.ssh.links:  # no pane on another host
            return
        with contextlib.suppress(Exception):  # a host gone must not stop the teardown
            self._signal_remote("KILL", wait=True)
            self.ssh.measure_clocks("end")
            self._record_hosts()
        self.ssh.close()

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGCHLD:
            for pid, status in procs.reap_any():
                self._on_reaped(pid, status)
            self._check_main_gone(self.clock())  # a moved job's holder ends with the job
        elif signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self.request_end(signum)

    def _on_reaped(self, pid: int, status: int) -> None:
        for pane in self.panes:
            if pane.pid == pid and pane.status is None:
                pane.status = ExitStatus.from_wait(status)
                pane.reaped_at = self.clock()
                pane.stopped = False
                if isinstance(pane, RemotePane) and pane.status.code == SSH_FAILED \
                        and not pane.ended_by_us:
                    self._ended_255(pane)
                self._finish_pane_record(pane)
                self._emit(Event(self.now(), pane.index, STATE, pane.state()))

    def _ended_255(self, pane: RemotePane) -> None:
        """ssh's 255: the connection went, or (its master still up) the remote
        process was killed by a signal, whose number ssh does not pass on."""
        if self.ssh is None or self.ssh.lost(pane.host):
            self._lost(pane)
        elif pane.record.note is None:
            pane.record.note = (f"ended on {pane.host} without an exit status (killed by a "
                                f"signal there?): ssh says {SSH_FAILED}")

    def _lost(self, pane: RemotePane) -> None:
        """ssh ended with its own failure, not ours: the pane says when."""
        with contextlib.suppress(OSError):
            self._read_pane(pane, drain=True)  # ssh's own words first
        when = self.recording.session.started_unix + self.now()
        self._write(pane, lost_connection_line(pane.host, when, SSH_FAILED))
        pane.record.note = f"connection to {pane.host} lost at {round(self.now(), 3)} s"

    def _finish_pane_record(self, pane: Pane) -> None:
        record = pane.record
        if pane.attached and pane.status is None and self.phase is Phase.DONE:
            record.end = round(self.now(), 6)
            record.note = "attached, not ours: tracers detached, the process goes on"
            return
        if not pane.ours and not pane.attached and record.end is None:
            record.end = round(self.now(), 6)  # a probe or skipped pane ends with the session
            return
        if pane.status is not None and record.end is None:
            end = pane.reaped_at if pane.reaped_at is not None else self.clock()
            record.end = round(end - self._t0, 6)
            record.exit_status = pane.status.code
            record.exit_signal = pane.status.signal
            record.exit_signal_name = pane.status.signal_name

    def _read_pane(self, pane: PtyPane, drain: bool = False) -> None:
        """One turn's read of the pane (a fair share: READ_PER_TURN), or with
        DRAIN all that it holds."""
        data, eof = pane.read(1 << 20, whole=True) if drain else \
            pane.read(procs.READ_PER_TURN, whole=False)
        if isinstance(pane, RemotePane) and pane.pid_news():
            self._emit(Event(self.now(), pane.index, STATE, pane.state()))  # its pid there
        self._on_output(pane, data)
        if eof:
            self._close_pane_fd(pane)

    def _close_pane_fd(self, pane: Pane) -> None:
        self._unwatch(pane)
        if isinstance(pane, PtyPane):
            pane.mark_eof()

    def _watch(self, pane: Pane) -> None:
        if isinstance(pane, PtyPane):
            self._loop.watch(pane.proc.fd, lambda: self._read_pane(pane))  # type: ignore[union-attr]

    def _unwatch(self, pane: Pane) -> None:
        if self._loop is not None and isinstance(pane, PtyPane):
            self._loop.unwatch(pane.proc.fd)

    def _on_output(self, pane: PtyPane, data: bytes) -> None:
        if not data:
            return
        t = self.now()
        pane.record.bytes += len(data)
        pane.output_seen = True
        text = pane.decode(data)
        if text:
            self._emit(Event(t, pane.index, OUTPUT, text))
        if pane.record.role == "tracer" and pane.hint_scanned < HINT_SCAN_BYTES:
            self._look_for_refusal(pane, text)

    def _look_for_refusal(self, pane: Pane, text: str) -> None:
        pane.hint_scanned += len(text)
        # A refusal is one line: the new text is scanned with the line it
        # finishes, not everything seen so far again (a pane printing a line
        # a read rescanned up to 4 KiB each time).
        scanned = pane.hint_buffer + text
        pane.hint_buffer = scanned[scanned.rfind("\n") + 1:][-HINT_SCAN_BYTES:]
        # A @dns pane's capture tool is the tcpdump its helper runs.
        tool = "tcpdump" if pane.record.command.startswith("@dns") else pane.record.command_run
        hint = refusal_hint(scanned, command=tool)
        if hint and pane.record.note is None:
            pane.record.note = hint
            pane.hint_scanned = HINT_SCAN_BYTES  # one hint per pane is enough
            self._write(pane, f"\r\n\x1b[1;33mautotrace: {hint}\x1b[0m\r\n")
            self._emit(Event(self.now(), pane.index, STATE, pane.state()))  # its note
            self.notify(f"pane {pane.index} ({pane.record.command}): {hint}")

    def _emit(self, event: Event) -> None:
        """To every consumer: the recording first, then the view."""
        for listener in self._listeners:
            listener(event)
        if self.view is not None:
            self.view.on_event(event)

    def _live_panes(self) -> list[Pane]:
        """Panes whose process we started and that still runs."""
        return [p for p in self.panes if p.ours and p.status is None]
