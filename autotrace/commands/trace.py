"""`autotrace [options] MAIN [TRACER ...]`: run, attach, trace and record."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable

from autotrace.commands.common import (
    UsageError,
    log_internal_errors_to,
    say,
    terminal_size,
    to_stderr,
    to_stdout,
)
from autotrace.findings.kinds import kind_of
from autotrace.format.errors import RecordingError
from autotrace.format.files import RecordingFolder, invoking_user_ids
from autotrace.format.recording import (
    RecordingWriter,
    SessionRecord,
    default_directory,
    prepare_directory,
)
from autotrace.live.attach import AttachPlan, end_replaced_job, plan_for_latest_job, plan_for_pid
from autotrace.live.presets import Privileges, list_presets_text, why_not
from autotrace.live.presets import resolve as resolve_preset
from autotrace.live.probes import make_probe
from autotrace.live.session import PaneSpec, Session, SessionOptions
from autotrace.live.ssh import SshHosts, split_remote

# The main command succeeded but the recording stopped early (full disk, I/O
# error, file size limit): sysexits' EX_IOERR.
INCOMPLETE_RECORDING = 74


def run_trace(options: argparse.Namespace) -> int:
    if options.list_presets:
        to_stdout(list_presets_text())
        return 0
    notify = (lambda line: None) if options.quiet else say
    interactive = not options.headless and sys.stdout.isatty() and sys.stdin.isatty()
    cols, rows = options.size or terminal_size() or (80, 24)

    plan = attach_plan(options, notify)
    if plan.exit_code is not None:
        return plan.exit_code
    if plan.rerun is not None:
        options.commands = [plan.rerun]
        if plan.cwd:
            os.chdir(plan.cwd)
    specs = pane_specs(options, plan)
    share = LiveShare(options.share) if options.share else None
    folder = new_recording_directory(options.logdir, specs[0].command)
    directory = folder.path
    log_internal_errors_to(folder)
    end_replaced_job(plan)  # `r`: only now that the re-run is sure to start
    # After the directory check, so a refused directory is the only line printed.
    if not options.headless and not interactive:
        stream = "stdout" if not sys.stdout.isatty() else "stdin"
        notify(f"{stream} is not a terminal: running headless")
    try:
        writer = RecordingWriter(folder, SessionRecord(cols=cols, rows=rows,
                                                       started_unix=time.time()))
    except RecordingError:
        folder.discard()  # not even a manifest fitted: leave no empty folder behind
        raise
    # A recording that cannot go on is said even with -q: the user believes
    # the session is being recorded.
    writer.on_stop = say
    session = Session(
        specs,
        writer,
        SessionOptions(cols=cols, rows=rows, duration=options.duration, grace=options.grace,
                       kill_timeout=options.kill_timeout, attach_timeout=options.attach_timeout,
                       interval=options.interval, attach_pid=plan.pid,
                       attach_held=plan.held, attach_job=plan.job, netns=options.netns,
                       record_input=options.record_input),
        notify=notify,
        ssh=SshHosts(options.ssh, user=invoking_user_ids()),
    )
    watch_for_findings(session, [spec.command for spec in specs])
    url = share.start(session, directory.name) if share else ""
    try:
        code = run_with_view(session, options, directory, url) if interactive \
            else session.run()
    finally:
        if share is not None:
            share.stop()
    # Said even with -q and after the view: otherwise a typo in a tracer's
    # name ends as an empty pane and exit 0.
    for line in session.not_started():
        say(line)
    if writer.stopped and interactive:
        say(f"recording stopped: {writer.stopped}")  # the view's message is gone with it
    for line in session.afterwords:  # where a picked-up job is now: after the view is gone
        say(line)
    if not options.quiet:
        report_recording(directory)
    return incomplete_status(code) if writer.stopped else code


class LiveShare:
    """`--share`: bound before the recording's folder is made (a port in use
    leaves nothing behind), fed by the session once there is one. The
    session's events go to a share of its own, in a thread: the session
    never waits for it."""

    def __init__(self, address: str):
        from autotrace.share.live import LiveFrames
        from autotrace.share.server import Share, parse_address

        try:
            host_port = parse_address(address)
        except ValueError as err:
            raise UsageError(str(err)) from None
        self.session: Session | None = None
        self.frames = LiveFrames(self._describe, "", started_unix=time.time())
        self.share = Share(host_port, "autotrace", self.frames.page_data, self.frames.log,
                           self.frames.changed)

    def _describe(self, index: int) -> tuple[str, int, int]:
        assert self.session is not None
        record = self.session.panes[index].record
        return record.command_run or record.command, record.cols, record.rows

    def start(self, session: Session, label: str) -> str:
        from autotrace.share.server import announce

        self.session = session
        self.frames.view.status_left = f"● LIVE {label}"
        self.share.title = f"autotrace: {label}"
        session.subscribe(self.frames.on_event)
        self.frames.start()
        announce(self.share, say)
        return self.share.url

    def stop(self) -> None:
        self.frames.close()
        self.share.close()


def watch_for_findings(session: Session, commands: list[str]) -> None:
    """The findings engine as one more consumer of the session's events; each
    finding goes back into the stream, so the recording and the view get it."""
    if not any(kind_of(command) for command in commands):
        return  # no pane the rules read: they are not even imported (first frame)
    from autotrace.export.findings import finding_event
    from autotrace.findings.engine import FindingsEngine, PaneInfo

    def pane_info(index: int) -> PaneInfo | None:
        if not 0 <= index < len(session.panes):
            return None
        record = session.panes[index].record
        return PaneInfo(index, record.command, record.role, session.main.pid)

    engine = FindingsEngine(pane_info, lambda finding: session.publish(finding_event(finding)))
    session.subscribe(engine.consume)


def incomplete_status(code: int) -> int:
    """A session that ran to its end unrecorded in part: a failure of the main
    command (or an interruption) is told as is, a success is not a success."""
    return INCOMPLETE_RECORDING if code == 0 else code


def new_recording_directory(logdir: Path | None, main_command: str) -> RecordingFolder:
    if logdir is not None:
        return prepare_directory(logdir)
    for _ in range(5):  # two sessions of the same command in the same second
        try:
            return prepare_directory(default_directory(main_command))
        except RecordingError:
            time.sleep(0.01)
    return prepare_directory(default_directory(main_command))


def attach_plan(options: argparse.Namespace, notify: Callable[[str], None]) -> AttachPlan:
    """Run a command (the usual), or attach: --pid N, or no command at all."""
    if options.container is not None:
        from autotrace.live.container import find_container  # only for --container

        container = find_container(options.container)
        options.netns = True  # its tracers see the container's network
        notify(f"container {container.name}: pid {container.pid} ({container.runtime})")
        plan = plan_for_pid(container.pid)
        plan.label = f"container {container.name}: {plan.label}"
        return plan
    if options.pid is not None:
        return plan_for_pid(options.pid)
    if options.commands:
        return AttachPlan()
    return plan_for_latest_job(ask=not options.yes, say=notify)


def pane_specs(options: argparse.Namespace, plan: AttachPlan) -> list[PaneSpec]:
    """Main pane first, then the tracers given, the preset's, and the skipped ones."""
    for position, command in enumerate(options.commands):
        if not command.strip():
            what = "the main command" if position == 0 and not plan.pid else "a tracer command"
            raise UsageError(f"{what} is empty: give a command, quoted, e.g. 'sleep 1'")
    attaching = plan.pid is not None
    main = PaneSpec(plan.label or f"pid {plan.pid}", role="main") if attaching \
        else PaneSpec(options.commands[0], role="main",
                      host=split_remote(options.commands[0])[0])
    tracers = list(options.commands if attaching else options.commands[1:])
    # A job picked up after Ctrl-Z gets the default tracers, attached or re-run (`r`).
    picked_up = attaching or plan.rerun is not None
    preset = options.preset or ("default" if picked_up and not tracers else None)
    skipped: list[tuple[str, str]] = []
    if preset:
        extra, skipped = resolve_preset(preset, Privileges.detect(plan.pid))
        tracers += extra
    if attaching:
        tracers = [t for t in tracers if t.split()[:1] != ["@proc"]]  # the main pane is @proc
    specs = [main]
    for command in tracers:
        if command.startswith("@dns"):  # a probe with a process: tcpdump, decoded
            from autotrace.live.dns_capture import parse_ports

            try:
                parse_ports(command.split()[0])
            except ValueError as err:
                raise UsageError(str(err)) from None
            reason = why_not(command, Privileges.detect(plan.pid))
            specs.append(PaneSpec(command.split()[0], skipped=reason))
        elif command.startswith("@"):
            try:
                make_probe(command.split()[0])
            except ValueError as err:
                raise UsageError(str(err)) from None
            specs.append(PaneSpec(command.split()[0], role="probe"))
        else:
            host, body = split_remote(command)
            if host is not None and body.startswith("@"):
                raise UsageError(f"{command!r}: probes run on this host only; "
                                 f"write {body.split()[0]} without a host")
            specs.append(PaneSpec(command, host=host))
    specs += [PaneSpec(command, skipped=reason) for command, reason in skipped]
    return specs


def run_with_view(session: Session, options: argparse.Namespace, directory: Path,
                  share_url: str = "") -> int:
    """The interactive view; the terminal is restored whatever happens inside."""
    from autotrace.loop import Loop
    from autotrace.term.live_view import LiveView
    from autotrace.term.terminal import Terminal
    from autotrace.view.multipane import MultiPaneView

    terminal = Terminal()
    cols, rows = terminal.size()
    view = MultiPaneView(cols, rows, visible=options.visible, vertical=options.vertical,
                         min_pane=options.min_pane,
                         colours=not options.colorsoff, sync=not options.syncoff,
                         history=options.history)
    live = LiveView(terminal, view, session, str(directory), exit_at_end=options.exit_at_end)
    session.view = live
    if share_url:  # the line printed before the view is hidden by it
        view.message = f"sharing read-only at {share_url}"

    def notice(line: str) -> None:
        view.message = line
        view.chrome_dirty = True

    session.notify = notice
    session.recording.on_stop = live.on_recording_stopped
    with terminal.active(), Loop(session.clock) as loop:
        live.join(loop)
        return session.run(loop)


def report_recording(directory: Path) -> None:
    say(f"recorded to {directory}")
    to_stderr(f"  read it:   autotrace cat {directory}")
    to_stderr(f"  summary:   autotrace info {directory}")
