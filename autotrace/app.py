"""What each command does, once its arguments are parsed."""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

from autotrace.attach import AttachPlan, end_replaced_job, plan_for_latest_job, plan_for_pid
from autotrace.bundle import PercentProgress, pack, resolve_recording
from autotrace.presets import PresetError, Privileges, list_presets_text
from autotrace.presets import resolve as resolve_preset
from autotrace.probes import make_probe
from autotrace.recording import (
    Recording,
    RecordingError,
    RecordingWriter,
    SessionRecord,
    default_directory,
    default_root,
    prepare_directory,
)
from autotrace.session import PaneSpec, Session, SessionOptions
from autotrace.target import TargetError
from autotrace.timeline import write_info, write_timeline

# Where an internal error's traceback goes: the recording being written, if any.
_log_directory: Path | None = None


def say(line: str) -> None:
    """One line for the user, on stderr, so stdout stays the program's own."""
    _to_stderr(f"autotrace: {line}")


def _to_stderr(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except OSError:
        # The terminal is gone (ssh dropped, window closed): nobody is left to
        # read notices, and failing here would lose the exit status. Later
        # notices, and Python's final flush, go nowhere instead.
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


class UsageError(Exception):
    """A command line that cannot work (exit 2, like argparse's own errors)."""


def _exit_on_signal(signum: int, frame: object) -> None:
    # Outside a session (cat, info, pack, start-up) a TERM or HUP still unwinds
    # normally, so temporary folders are removed; a session has its own handlers.
    raise SystemExit(128 + signum)


def guarded(command: Callable[[argparse.Namespace], int], options: argparse.Namespace) -> int:
    """Run a command; turn any failure into one clear line and a non-zero exit."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    try:
        return command(options)
    except (RecordingError, PresetError, TargetError) as err:
        say(str(err))
        return 1
    except UsageError as err:
        say(str(err))
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`autotrace cat ... | head`): not an error.
        sys.stderr.close()
        return 0
    except Exception:
        error = sys.exc_info()[1]
        try:
            log = f"details in {_write_traceback()}"
        except OSError as err:  # e.g. the disk is full: that may be the error itself
            log = f"no log written: {err.strerror}"
        say(f"internal error: {error!r} ({log})")
        return 70


def _write_traceback() -> Path:
    text = traceback.format_exc()
    if _log_directory is not None and _log_directory.is_dir():
        path = _log_directory / "autotrace.log"
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)
        return path
    fd, name = tempfile.mkstemp(prefix="autotrace-", suffix=".log")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return Path(name)


def terminal_size(stream: object = sys.stdout) -> tuple[int, int] | None:
    try:
        size = os.get_terminal_size(stream.fileno())  # type: ignore[attr-defined]
    except (OSError, AttributeError, ValueError):
        return None
    return size.columns, size.lines


def run_trace(options: argparse.Namespace) -> int:
    global _log_directory
    if options.list_presets:
        print(list_presets_text(), end="")
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
    directory = new_recording_directory(options.logdir, specs[0].command)
    _log_directory = directory
    end_replaced_job(plan)  # `r`: only now that the re-run is sure to start
    # After the directory check, so a refused directory is the only line printed.
    if not options.headless and not interactive:
        stream = "stdout" if not sys.stdout.isatty() else "stdin"
        notify(f"{stream} is not a terminal: running headless")
    writer = RecordingWriter(directory, SessionRecord(cols=cols, rows=rows,
                                                      started_unix=time.time()))
    session = Session(
        specs,
        writer,
        SessionOptions(cols=cols, rows=rows, duration=options.duration, grace=options.grace,
                       kill_timeout=options.kill_timeout, attach_timeout=options.attach_timeout,
                       interval=options.interval, attach_pid=plan.pid,
                       attach_held=plan.held, netns=options.netns),
        notify=notify,
    )
    code = run_with_view(session, options, directory) if interactive else session.run()
    if not options.quiet:
        report_recording(directory)
    return code


def new_recording_directory(logdir: Path | None, main_command: str) -> Path:
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
    if options.pid is not None:
        return plan_for_pid(options.pid)
    if options.commands:
        return AttachPlan()
    return plan_for_latest_job(ask=not options.yes, say=notify)


def pane_specs(options: argparse.Namespace, plan: AttachPlan) -> list[PaneSpec]:
    """Main pane first, then the tracers given, the preset's, and the skipped ones."""
    attaching = plan.pid is not None
    main = PaneSpec(plan.label or f"pid {plan.pid}", role="main") if attaching \
        else PaneSpec(options.commands[0], role="main")
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
        if command.startswith("@"):
            try:
                make_probe(command.split()[0])
            except ValueError as err:
                raise UsageError(str(err)) from None
            specs.append(PaneSpec(command.split()[0], role="probe"))
        else:
            specs.append(PaneSpec(command))
    specs += [PaneSpec(command, skipped=reason) for command, reason in skipped]
    return specs


def run_with_view(session: Session, options: argparse.Namespace, directory: Path) -> int:
    """The interactive view; the terminal is restored whatever happens inside."""
    from autotrace.ui import LiveView, Terminal
    from autotrace.view import MultiPaneView

    terminal = Terminal()
    cols, rows = terminal.size()
    view = MultiPaneView(cols, rows, visible=options.visible, vertical=options.vertical,
                         colours=not options.colorsoff, sync=not options.syncoff,
                         history=options.history)
    live = LiveView(terminal, view, session, str(directory))
    session.view = live

    def notice(line: str) -> None:
        view.message = line
        view.chrome_dirty = True

    session.notify = notice
    with terminal.active():
        return session.run()


def report_recording(directory: Path) -> None:
    say(f"recorded to {directory}")
    _to_stderr(f"  read it:   autotrace cat {directory}")
    _to_stderr(f"  summary:   autotrace info {directory}")


def run_cat(options: argparse.Namespace) -> int:
    with resolve_recording(options.path) as directory:
        recording = Recording.open(directory)
        if options.pane is not None and not 0 <= options.pane < len(recording.panes):
            raise RecordingError(f"{options.path} has no pane {options.pane} "
                                 f"(panes 0 to {len(recording.panes) - 1})")
        write_timeline(recording, sys.stdout, options.pane)
        sys.stdout.flush()
    return 0


def run_info(options: argparse.Namespace) -> int:
    with resolve_recording(options.path) as directory:
        recording = Recording.open(directory)
        # Show the path the user gave, not a bundle's temporary folder.
        write_info(dataclasses.replace(recording, directory=options.path), sys.stdout)
    return 0


def run_pack(options: argparse.Namespace) -> int:
    bundle = pack(options.path, options.output, options.redact, PercentProgress())
    print(bundle)
    return 0


def latest_recording() -> Path:
    root = default_root()
    candidates = [p for p in root.glob("*") if (p / "manifest.json").is_file()] \
        if root.is_dir() else []
    if not candidates:
        raise RecordingError(f"no recordings in {root}; give a PATH")
    return max(candidates, key=lambda p: (p / "manifest.json").stat().st_mtime)


def run_replay(options: argparse.Namespace) -> int:
    from autotrace.player import HELP_REPLAY, Player, run_player
    from autotrace.ui import Terminal
    from autotrace.view import MultiPaneView

    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        say("replay needs a terminal; for text use: autotrace cat PATH")
        return 2
    path = options.path or latest_recording()
    with resolve_recording(path) as directory:
        recording = Recording.open(directory)
        terminal = Terminal()
        view = MultiPaneView(*terminal.size(), visible=options.visible,
                             vertical=options.vertical, colours=not options.colorsoff,
                             sync=not options.syncoff)
        view.help_rows, view.replay = list(HELP_REPLAY), True
        view.status_left = f"▶ REPLAY {path}"
        player = Player(recording, view, idle_limit=options.idle_limit, speed=options.speed,
                        exit_at_end=options.exit_at_end)
        if options.paused:
            player.clock.pause()
        try:
            return run_player(player, terminal)
        finally:
            player.close()
