"""What each command does, once its arguments are parsed."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

from autotrace.bundle import PercentProgress, pack, resolve_recording
from autotrace.recording import (
    Recording,
    RecordingError,
    RecordingWriter,
    SessionRecord,
    default_directory,
    prepare_directory,
)
from autotrace.session import PaneSpec, Session, SessionOptions
from autotrace.timeline import write_info, write_timeline

# Where an internal error's traceback goes: the recording being written, if any.
_log_directory: Path | None = None


def say(line: str) -> None:
    """One line for the user, on stderr, so stdout stays the program's own."""
    print(f"autotrace: {line}", file=sys.stderr, flush=True)


def guarded(command: Callable[[argparse.Namespace], int], options: argparse.Namespace) -> int:
    """Run a command; turn any failure into one clear line and a non-zero exit."""
    try:
        return command(options)
    except RecordingError as err:
        say(str(err))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`autotrace cat ... | head`): not an error.
        sys.stderr.close()
        return 0
    except Exception:
        log = _write_traceback()
        say(f"internal error: {sys.exc_info()[1]!r} (details in {log})")
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
    notify = (lambda line: None) if options.quiet else say
    interactive = not options.headless and sys.stdout.isatty() and sys.stdin.isatty()
    if not options.headless and not interactive:
        notify("stdout is not a terminal: running headless")
    cols, rows = options.size or terminal_size() or (80, 24)

    main_command = options.commands[0]
    directory = prepare_directory(options.logdir or default_directory(main_command))
    _log_directory = directory
    specs = [PaneSpec(main_command, role="main")]
    specs += [PaneSpec(command) for command in options.commands[1:]]
    writer = RecordingWriter(directory, SessionRecord(cols=cols, rows=rows,
                                                      started_unix=time.time()))
    session = Session(
        specs,
        writer,
        SessionOptions(cols=cols, rows=rows, duration=options.duration, grace=options.grace,
                       kill_timeout=options.kill_timeout, attach_timeout=options.attach_timeout),
        notify=notify,
    )
    code = run_with_view(session, options, directory) if interactive else session.run()
    if not options.quiet:
        report_recording(directory)
    return code


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
    print(f"  read it:   autotrace cat {directory}", file=sys.stderr)
    print(f"  summary:   autotrace info {directory}", file=sys.stderr)


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
