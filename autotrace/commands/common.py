"""What every command shares: one-line messages, exit statuses, internal errors."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Callable

from autotrace.errors import UserError
from autotrace.format.files import RecordingFolder
from autotrace.sanitise import message, spelled_out

# Where an internal error's traceback goes: the recording being written, if any.
_log_folder: RecordingFolder | None = None


def log_internal_errors_to(folder: RecordingFolder) -> None:
    global _log_folder
    _log_folder = folder


def say(line: str) -> None:
    """One line for the user, on stderr, so stdout stays the program's own.

    Messages carry names and text from recordings, bundles and command
    lines: the one sanitiser spells out what a terminal would act on and
    shortens what would flood it."""
    to_stderr(f"autotrace: {message(line)}")


def to_stderr(text: str) -> None:
    """A line as it is, control characters spelled out but never shortened
    (a path to copy)."""
    text = "\n".join(map(spelled_out, text.split("\n")))
    try:
        print(text, file=sys.stderr, flush=True)
    except OSError:
        # The terminal is gone (ssh dropped, window closed): nobody is left to
        # read notices, and failing here would lose the exit status. Later
        # notices, and Python's final flush, go nowhere instead.
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


def to_stdout(text: str) -> None:
    """Output for a script to read (a bundle's path, the presets): whole,
    but with control characters spelled out, as on stderr."""
    print("\n".join(map(spelled_out, text.split("\n"))), end="")


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
    except UserError as err:
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
    # Imported here: only an internal error needs them, and every start paid for them.
    import tempfile
    import traceback

    text = traceback.format_exc()
    if _log_folder is not None:
        # Made like every file of a recording (never through a planted link);
        # one that is there already is not ours to append to.
        try:
            _log_folder.write_new("autotrace.log", text.encode("utf-8", "replace"))
            return _log_folder.path / "autotrace.log"
        except FileExistsError:
            pass
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
