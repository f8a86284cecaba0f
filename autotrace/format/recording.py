"""The recording on disk: the writer (format: docs/recording-format.md).
Reading is in reader.py, manifest.py and asciicast.py.

The writer never buffers: each event is one write of one whole line, so a
recording is readable up to the moment autotrace dies, whatever kills it, and
a write that fails (a full disk) is cut back to the last whole line.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import getpass
import json
import os
import platform
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from autotrace import __version__
from autotrace.events import FINDING, INPUT, MARKER, OUTPUT, RESIZE, STATE, Event
from autotrace.format.asciicast import event_line
from autotrace.format.errors import RecordingError
from autotrace.format.files import (
    LineFile,
    RecordingFolder,
    UnsafeFolder,
    invoking_user_ids,
)
from autotrace.format.limits import MAX_EVENT_TEXT
from autotrace.format.manifest import (
    FINDINGS,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST,
)
from autotrace.format.names import program_name

# ---------------------------------------------------------------- writing


def invoking_user_name() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


def prepare_directory(path: Path) -> RecordingFolder:
    """Create (mode 0700) or accept an empty private directory for a new recording.

    Raises RecordingError with a one-line reason when it cannot be used safely.
    """
    path = path.expanduser()
    try:
        if os.path.lexists(path):
            folder = RecordingFolder.open(path)
            if not folder.is_empty():
                folder.close()
                raise RecordingError(f"recording directory {path} is not empty")
        else:
            folder = RecordingFolder.make(path)
    except UnsafeFolder as err:
        raise RecordingError(str(err)) from None
    if not os.access(path, os.W_OK | os.X_OK):
        folder.close()
        raise RecordingError(f"recording directory {path} is not writable")
    return folder


def default_root() -> Path:
    """Per-user folder that holds recordings: $XDG_STATE_HOME/autotrace/recordings."""
    home = Path.home()
    ids = invoking_user_ids()
    if ids:
        import pwd

        home = Path(pwd.getpwuid(ids[0]).pw_dir)
    state = os.environ.get("XDG_STATE_HOME") if not ids else None
    base = Path(state) if state else home / ".local" / "state"
    return base / "autotrace" / "recordings"


def default_directory(main_command: str, now: datetime.datetime | None = None) -> Path:
    """A new, unused directory name under default_root()."""
    now = now or datetime.datetime.now()
    # Only the program's name: the folder name ends up in bundles, and the
    # words around it may be secrets (`PASSWORD=hunter2 make`).
    stem = f"{now:%Y%m%d-%H%M%S}-{program_name(main_command)}"
    root = default_root()
    candidate, n = root / stem, 1
    while candidate.exists():
        n += 1
        candidate = root / f"{stem}-{n}"
    return candidate


@dataclass
class PaneRecord:
    """One pane's entry in the manifest."""

    index: int
    role: str
    command: str
    command_run: str
    cols: int
    rows: int
    pid: int | None = None
    start: float | None = None
    end: float | None = None
    exit_status: int | None = None
    exit_signal: int | None = None
    exit_signal_name: str | None = None
    note: str | None = None
    bytes: int = 0
    host: str | None = None  # the host it ran on over ssh; None: this one
    remote_pid: int | None = None  # its pid there (pid is the local ssh client's)

    @property
    def file(self) -> str:
        return f"pane-{self.index}.cast"

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["file"] = self.file
        for key in ("host", "remote_pid"):  # a local pane's manifest stays as it was
            if data[key] is None:
                del data[key]
        return data


@dataclass
class SessionRecord:
    """The manifest: everything about the session except the pane output."""

    cols: int
    rows: int
    started_unix: float
    panes: list[PaneRecord] = field(default_factory=list)
    attached: bool = False
    duration: float | None = None
    redactions: list[str] = field(default_factory=list)
    recording_stopped: dict[str, Any] | None = None  # {"t", "reason"}: a write failed
    hosts: dict[str, Any] | None = None  # remote hosts: clock offsets (recording-format.md)
    findings: int | None = None  # how many lines findings.jsonl holds; None: no such file

    def to_json(self) -> dict[str, Any]:
        started = datetime.datetime.fromtimestamp(self.started_unix).astimezone()
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "autotrace_version": __version__,
            "host": socket.gethostname(),
            "kernel": f"{platform.system()} {platform.release()}",
            "user": invoking_user_name(),
            "started_at": started.isoformat(timespec="milliseconds"),
            "started_unix": self.started_unix,
            "duration": self.duration,
            "terminal": {"cols": self.cols, "rows": self.rows},
            "attached": self.attached,
            "redactions": self.redactions,
            "recording_stopped": self.recording_stopped,
            **({"hosts": self.hosts} if self.hosts is not None else {}),
            "panes": [p.to_json() for p in self.panes],
            **({} if self.findings is None else
               {"findings": {"file": FINDINGS, "version": 1, "count": self.findings}}),
        }


def manifest_bytes(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8", "replace")


def _event_line(t: float, code: str, data: str) -> bytes:
    # The codec's v2 line; "replace": text that cannot be UTF-8 (a lone
    # surrogate) must not stop the recording.
    return event_line(t, code, data).encode("utf-8", "replace")


# Why a write failed, as the user would say it.
_FAILURES = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file size limit reached",
    errno.EIO: "input/output error",
}


def failure_reason(err: OSError) -> str:
    return _FAILURES.get(err.errno or 0) or err.strerror or str(err)


class PaneWriter:
    """Append-only asciicast v2 writer for one pane.

    Each event is one write of one whole line. When a write fails (full disk,
    I/O error) the file is cut back to its last whole line and `on_failure` is
    told; from then on events are dropped, the pane's process goes on.
    """

    def __init__(self, file: LineFile | None, header: dict[str, Any],
                 on_failure: Callable[[OSError, float], None]):
        self._file = file
        self._on_failure = on_failure
        self._last_t = 0.0
        self._write(json.dumps(header, ensure_ascii=False).encode("utf-8", "replace") + b"\n")

    def _write(self, line: bytes) -> None:
        if self._file is None:
            return  # the recording stopped
        try:
            self._file.write(line)
        except OSError as err:
            self.stop()
            self._on_failure(err, self._last_t)

    def _event(self, t: float, code: str, data: str) -> None:
        t = max(t, self._last_t)
        self._last_t = t
        self._write(_event_line(t, code, data))

    @property
    def last_t(self) -> float:
        """Time of the latest event given to this pane (recorded or not)."""
        return self._last_t

    def output(self, t: float, text: str) -> None:
        # A long output (a drain of a flooding pty) goes in pieces at the same
        # time: players join them, and no line is over what readers accept.
        for start in range(0, len(text), MAX_EVENT_TEXT):
            self._event(t, "o", text[start:start + MAX_EVENT_TEXT])

    def resize(self, t: float, size: str) -> None:
        self._event(t, "r", size)  # COLSxROWS

    def input(self, t: float, text: str) -> None:
        """What the user typed into the pane (only with --record-input)."""
        for start in range(0, len(text), MAX_EVENT_TEXT):
            self._event(t, "i", text[start:start + MAX_EVENT_TEXT])

    def marker(self, t: float, label: str) -> None:
        self._event(t, "m", label)

    def stop(self) -> None:
        """Write nothing more (the file keeps what it has, whole)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self, t: float) -> None:
        self.stop()


class RecordingWriter:
    """Writes a whole session: the manifest and one asciicast file per pane.

    A failing disk never raises out of here: the first failed write stops the
    recording of every pane at its last whole event (`stopped` says why,
    `on_stop` is told once), and the manifest is still rewritten when it can
    be, so the session, and the program being debugged, go on to their end.
    """

    def __init__(self, directory: Path | RecordingFolder, session: SessionRecord,
                 term: str = "xterm-256color"):
        if isinstance(directory, RecordingFolder):
            self.folder, self._own_folder = directory, False
        else:
            try:
                self.folder, self._own_folder = RecordingFolder.open(directory), True
            except UnsafeFolder as err:
                raise RecordingError(str(err)) from None
        self.directory = self.folder.path
        self.session = session
        self._term = term
        self._panes: dict[int, PaneWriter] = {}
        self._findings: LineFile | None = None
        self.stopped: str | None = None  # why the recording stopped early
        self.on_stop: Callable[[str], None] = lambda line: None
        self.save_manifest()
        if self.stopped:
            raise RecordingError(f"cannot write the recording in {self.directory}: "
                                 f"{self.stopped}")

    def save_manifest(self) -> None:
        try:
            self.folder.replace(MANIFEST, manifest_bytes(self.session.to_json()))
        except OSError as err:
            self._failed(err, max((w.last_t for w in self._panes.values()), default=0.0))

    def _failed(self, err: OSError, t: float) -> None:
        if self.stopped is not None:
            return
        self.stopped = failure_reason(err)
        self.session.recording_stopped = {"t": round(t, 6), "reason": self.stopped}
        for writer in self._panes.values():
            writer.stop()
        self.on_stop(f"recording stopped: {self.stopped}; the session goes on, unrecorded")

    def add_pane(self, pane: PaneRecord) -> PaneWriter:
        if pane not in self.session.panes:
            self.session.panes.append(pane)
        header = {
            "version": 2,
            "width": pane.cols,
            "height": pane.rows,
            "timestamp": int(self.session.started_unix),
            "command": pane.command_run,
            "title": f"autotrace pane {pane.index}: {pane.command}",
            "env": {"TERM": self._term, "SHELL": "/bin/sh"},
        }
        file = None
        if self.stopped is None:
            try:
                file = LineFile(self.folder.create(pane.file))
            except OSError as err:
                self._failed(err, 0.0)
        writer = PaneWriter(file, header, self._failed)
        if file is not None and file.size == 0:
            # Not even its header fitted: no file beats one no player can read.
            with contextlib.suppress(OSError):
                self.folder.remove(pane.file)
        self._panes[pane.index] = writer
        self.save_manifest()
        return writer

    def pane(self, index: int) -> PaneWriter:
        return self._panes[index]

    def consume(self, event: Event) -> None:
        """The recording as one consumer of the session's events (DESIGN.md, One
        stream): output, resizes, markers (and input, when the session records
        it) are written as they come; a pane's
        new state (started, ended, a note) is when the manifest is saved."""
        if event.kind == OUTPUT:
            self._panes[event.pane].output(event.t, event.data)
        elif event.kind == RESIZE:
            self._panes[event.pane].resize(event.t, event.data)
        elif event.kind == INPUT:
            self._panes[event.pane].input(event.t, event.data)
        elif event.kind == MARKER:
            self.marker(event.t, event.data)
        elif event.kind == STATE:
            self.save_manifest()
        elif event.kind == FINDING:
            self.finding(event.data)

    def finding(self, line: str) -> None:
        """One finding (a line of JSON) appended to findings.jsonl, made on the first."""
        if self.stopped is not None:
            return
        try:
            if self._findings is None:
                self._findings = LineFile(self.folder.create(FINDINGS))
                self.session.findings = 0
            self._findings.write(line.replace("\n", " ").encode("utf-8", "replace") + b"\n")
        except OSError as err:
            self._failed(err, max((w.last_t for w in self._panes.values()), default=0.0))
            return
        self.session.findings = (self.session.findings or 0) + 1

    def marker(self, t: float, label: str) -> None:
        """Session markers live in the main pane's file (format spec)."""
        if 0 in self._panes:
            self._panes[0].marker(t, label)

    def close(self, t: float) -> None:
        self.session.duration = round(t, 6)
        for writer in self._panes.values():
            writer.close(t)
        if self._findings is not None:
            with contextlib.suppress(OSError):
                self._findings.close()
        self.save_manifest()
        if self._own_folder:
            self.folder.close()
