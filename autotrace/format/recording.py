"""The recording on disk: writer and reader (format: docs/recording-format.md).

The writer never buffers: each event is one write followed by a flush, so a
recording is readable up to the moment autotrace dies, whatever kills it.
"""

from __future__ import annotations

import codecs
import datetime
import getpass
import json
import os
import platform
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from autotrace import __version__
from autotrace.format.names import program_name

FORMAT_NAME = "autotrace-recording"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
KNOWN_CODES = ("o", "r", "m")  # asciicast output, resize, marker


class RecordingError(Exception):
    """A recording that cannot be read or written; the message is for the user."""


# ---------------------------------------------------------------- writing


def invoking_user_ids() -> tuple[int, int] | None:
    """(uid, gid) of the user who ran sudo, when we are root under sudo."""
    if os.geteuid() != 0:
        return None
    try:
        return int(os.environ["SUDO_UID"]), int(os.environ["SUDO_GID"])
    except (KeyError, ValueError):
        return None


def invoking_user_name() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


def _give_to_invoking_user(path: Path) -> None:
    # Under sudo the recording belongs to the person who asked for it, not root.
    ids = invoking_user_ids()
    if ids:
        os.chown(path, *ids)


def prepare_directory(path: Path) -> Path:
    """Create (mode 0700) or accept an empty directory for a new recording.

    Raises RecordingError with a one-line reason when it cannot be used.
    """
    path = path.expanduser()
    if path.exists():
        if not path.is_dir():
            raise RecordingError(f"recording directory {path} exists and is not a directory")
        if any(path.iterdir()):
            raise RecordingError(f"recording directory {path} is not empty")
    else:
        missing = [p for p in [path, *path.parents] if not p.exists()]
        # Every folder we create is private, not only the last: the names of
        # recordings (commands, times) are nobody else's business.
        for created in reversed(missing):
            try:
                created.mkdir(mode=0o700)
            except FileExistsError:
                if created == path:
                    # Another session took this name a moment ago: never share one.
                    raise RecordingError(f"recording directory {path} was just created "
                                         "by someone else; try again") from None
                continue  # a parent made meanwhile by someone else: not ours to chown
            except OSError as err:
                raise RecordingError(
                    f"cannot create recording directory {path}: {err.strerror}"
                ) from None
            _give_to_invoking_user(created)
    if not os.access(path, os.W_OK | os.X_OK):
        raise RecordingError(f"recording directory {path} is not writable")
    return path


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
            "panes": [p.to_json() for p in self.panes],
        }


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.write("\n")
    _give_to_invoking_user(tmp)
    os.replace(tmp, path)


def _event_line(t: float, code: str, data: str) -> str:
    return json.dumps([round(t, 6), code, data], ensure_ascii=False) + "\n"


class PaneWriter:
    """Append-only asciicast v2 writer for one pane, with its own UTF-8 decoder."""

    def __init__(self, path: Path, header: dict[str, Any]):
        # Open for the whole session, closed in close(): no context manager fits.
        self._file: IO[str] = open(path, "a", encoding="utf-8", newline="\n")  # noqa: SIM115
        _give_to_invoking_user(path)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._last_t = 0.0
        self._write(json.dumps(header, ensure_ascii=False) + "\n")

    def _write(self, line: str) -> None:
        self._file.write(line)
        self._file.flush()

    def _event(self, t: float, code: str, data: str) -> None:
        t = max(t, self._last_t)
        self._last_t = t
        self._write(_event_line(t, code, data))

    def decode(self, data: bytes, final: bool = False) -> str:
        """Bytes from the pty to text; a character split across reads comes out whole."""
        return self._decoder.decode(data, final)

    def output(self, t: float, text: str) -> None:
        if text:
            self._event(t, "o", text)

    def resize(self, t: float, cols: int, rows: int) -> None:
        self._event(t, "r", f"{cols}x{rows}")

    def marker(self, t: float, label: str) -> None:
        self._event(t, "m", label)

    def close(self, t: float) -> None:
        if self._file.closed:
            return
        self.output(t, self.decode(b"", final=True))
        self._file.close()


class RecordingWriter:
    """Writes a whole session: the manifest and one asciicast file per pane."""

    def __init__(self, directory: Path, session: SessionRecord, term: str = "xterm-256color"):
        self.directory = directory
        self.session = session
        self._term = term
        self._panes: dict[int, PaneWriter] = {}
        self.save_manifest()

    def save_manifest(self) -> None:
        write_json_atomically(self.directory / MANIFEST, self.session.to_json())

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
        writer = PaneWriter(self.directory / pane.file, header)
        self._panes[pane.index] = writer
        self.save_manifest()
        return writer

    def pane(self, index: int) -> PaneWriter:
        return self._panes[index]

    def marker(self, t: float, label: str) -> None:
        """Session markers live in the main pane's file (format spec)."""
        if 0 in self._panes:
            self._panes[0].marker(t, label)

    def close(self, t: float) -> None:
        self.session.duration = round(t, 6)
        for writer in self._panes.values():
            writer.close(t)
        self.save_manifest()


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
