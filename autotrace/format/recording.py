"""The recording on disk: writer and reader (format: docs/recording-format.md).

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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from autotrace import __version__
from autotrace.events import MARKER, OUTPUT, RESIZE, STATE, Event
from autotrace.format.files import (
    LineFile,
    RecordingFolder,
    UnsafeFolder,
    invoking_user_ids,
)

FORMAT_NAME = "autotrace-recording"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
KNOWN_CODES = ("o", "r", "m")  # asciicast output, resize, marker


class RecordingError(Exception):
    """A recording that cannot be read or written; the message is for the user."""


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
    word = (main_command.split() or ["attach"])[0]
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in os.path.basename(word))
    stem = f"{now:%Y%m%d-%H%M%S}-{slug[:32] or 'session'}"
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

    @property
    def file(self) -> str:
        return f"pane-{self.index}.cast"

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["file"] = self.file
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
            "panes": [p.to_json() for p in self.panes],
        }


def manifest_bytes(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8", "replace")


def _event_line(t: float, code: str, data: str) -> bytes:
    # "replace": text that cannot be UTF-8 (a lone surrogate) must not stop the recording.
    return (json.dumps([round(t, 6), code, data], ensure_ascii=False) + "\n").encode(
        "utf-8", "replace")


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
        if text:
            self._event(t, "o", text)

    def resize(self, t: float, size: str) -> None:
        self._event(t, "r", size)  # COLSxROWS

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
        stream): output, resizes and markers are written as they come; a pane's
        new state (started, ended, a note) is when the manifest is saved."""
        if event.kind == OUTPUT:
            self._panes[event.pane].output(event.t, event.data)
        elif event.kind == RESIZE:
            self._panes[event.pane].resize(event.t, event.data)
        elif event.kind == MARKER:
            self.marker(event.t, event.data)
        elif event.kind == STATE:
            self.save_manifest()

    def marker(self, t: float, label: str) -> None:
        """Session markers live in the main pane's file (format spec)."""
        if 0 in self._panes:
            self._panes[0].marker(t, label)

    def close(self, t: float) -> None:
        self.session.duration = round(t, 6)
        for writer in self._panes.values():
            writer.close(t)
        self.save_manifest()
        if self._own_folder:
            self.folder.close()


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class CastEvent:
    t: float
    code: str
    data: str


_NUMBER = (int, float)
_NULL = (type(None),)
# The types readers rely on for the keys the format defines; keys a reader
# does not know are not checked (docs/recording-format.md).
MANIFEST_TYPES: dict[str, tuple[type, ...]] = {
    "started_unix": _NUMBER, "duration": _NUMBER + _NULL, "terminal": (dict,),
    "attached": (bool,), "redactions": (list,),
}
PANE_TYPES: dict[str, tuple[type, ...]] = {
    "index": (int,), "role": (str,), "command": (str,), "command_run": (str,),
    "pid": (int, *_NULL), "start": _NUMBER + _NULL, "end": _NUMBER + _NULL,
    "exit_status": (int, *_NULL), "exit_signal": (int, *_NULL),
    "exit_signal_name": (str, *_NULL), "note": (str, *_NULL), "bytes": (int,),
}


def _check_types(path: Path, data: dict[str, Any], types: dict[str, tuple[type, ...]],
                 where: str) -> None:
    for key, allowed in types.items():
        value = data.get(key)
        if key not in data or (isinstance(value, allowed) and
                               (bool in allowed or not isinstance(value, bool))):
            continue
        raise RecordingError(
            f"{path}: corrupt manifest: {where}{key} is {json.dumps(value)}, "
            f"expected {' or '.join(t.__name__ for t in allowed).replace('NoneType', 'null')}"
        )


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecordingError(f"{directory} is not an autotrace recording (no {MANIFEST})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RecordingError(f"{path}: cannot read: {err}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise RecordingError(f"{path}:{err.lineno}: corrupt manifest: {err.msg}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise RecordingError(f"{path}: not an autotrace manifest")
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise RecordingError(f"{path}: corrupt manifest: format_version is {version!r}")
    if version > FORMAT_VERSION:
        raise RecordingError(
            f"{path}: recording format version {version!r} is newer than this autotrace "
            f"understands ({FORMAT_VERSION}); upgrade autotrace"
        )
    panes = data.get("panes")
    if not isinstance(panes, list) or not all(
        isinstance(p, dict) and isinstance(p.get("file"), str) for p in panes
    ):
        raise RecordingError(f"{path}: corrupt manifest: bad 'panes' list")
    for pane in panes:
        name = pane["file"]
        if "/" in name or name in ("", ".", "..") or name.startswith("."):
            raise RecordingError(f"{path}: pane file name {name!r} is not allowed")
    _check_types(path, data, MANIFEST_TYPES, "")
    for index, pane in enumerate(panes):
        _check_types(path, pane, PANE_TYPES, f"panes[{index}].")
    if not all(isinstance(item, str) for item in data.get("redactions") or ()):
        raise RecordingError(f"{path}: corrupt manifest: 'redactions' must be strings")
    return data



def _parse_event(path: Path, lineno: int, line: str) -> CastEvent | None:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as err:
        raise RecordingError(f"{path}:{lineno}: corrupt event: {err.msg}") from None
    if (
        not isinstance(item, list)
        or len(item) < 3
        or not isinstance(item[0], (int, float))
        or isinstance(item[0], bool)
        or not isinstance(item[1], str)
    ):
        raise RecordingError(f"{path}:{lineno}: corrupt event: expected [time, code, data]")
    if item[1] not in KNOWN_CODES:
        return None  # a code from a newer writer: readers ignore it, whatever its data
    if not isinstance(item[2], str):
        raise RecordingError(f"{path}:{lineno}: corrupt event: data of {item[1]!r} is not text")
    return CastEvent(float(item[0]), item[1], item[2])


def read_cast(path: Path, codes: tuple[str, ...] = ("o", "r", "m")) -> Iterator[CastEvent]:
    """Events of one asciicast v2 file, tolerant of a torn last line.

    Unknown event codes are skipped; times are clamped to be non-decreasing.
    """
    try:
        f = open(path, encoding="utf-8", errors="replace", newline="\n")  # noqa: SIM115 - `with f` below
    except OSError as err:
        raise RecordingError(f"{path}: cannot read: {err.strerror}") from None
    with f:
        header_line = f.readline()
        try:
            header = json.loads(header_line)
        except json.JSONDecodeError:
            raise RecordingError(f"{path}:1: corrupt asciicast header") from None
        if not isinstance(header, dict) or header.get("version") != 2:
            raise RecordingError(f"{path}:1: not an asciicast v2 file")
        last_t = 0.0
        pending: tuple[int, str] | None = None
        for lineno, line in enumerate(f, start=2):
            if pending is not None:
                event = _parse_event(path, *pending)
                if event and event.code in codes:
                    last_t = max(last_t, event.t)
                    yield CastEvent(last_t, event.code, event.data)
            pending = (lineno, line) if line.strip() else None
        if pending is not None:
            # The last line may be torn by a crash: use it only when it parses.
            try:
                event = _parse_event(path, *pending)
            except RecordingError:
                event = None
            if event and event.code in codes:
                yield CastEvent(max(last_t, event.t), event.code, event.data)


def read_cast_header(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            header = json.loads(f.readline())
    except OSError as err:
        raise RecordingError(f"{path}: cannot read: {err.strerror}") from None
    except json.JSONDecodeError:
        raise RecordingError(f"{path}:1: corrupt asciicast header") from None
    if not isinstance(header, dict):
        raise RecordingError(f"{path}:1: corrupt asciicast header")
    return header


@dataclass
class Recording:
    """A recording opened for reading."""

    directory: Path
    manifest: dict[str, Any]

    @classmethod
    def open(cls, directory: Path) -> Recording:
        if not directory.is_dir():
            raise RecordingError(f"{directory}: no such recording")
        return cls(directory, read_manifest(directory))

    @property
    def panes(self) -> list[dict[str, Any]]:
        return list(self.manifest["panes"])

    def pane_path(self, index: int) -> Path:
        return self.directory / self.panes[index]["file"]

    def events(self, index: int, codes: tuple[str, ...] = ("o", "r", "m")) -> Iterator[CastEvent]:
        return read_cast(self.pane_path(index), codes)
