"""The recording on disk: the writer (format: docs/recording-format.md).
Reading is in reader.py, manifest.py and asciicast.py; its names are
re-exported here for the modules that import them from here.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from autotrace import __version__
from autotrace.format.asciicast import KNOWN_CODES, CastEvent, event_line
from autotrace.format.errors import RecordingError
from autotrace.format.manifest import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST,
    MANIFEST_TYPES,
    PANE_TYPES,
    read_manifest,
)
from autotrace.format.reader import Recording, read_cast, read_cast_header

__all__ = [  # the reading side's names, re-exported (see the docstring)
    "KNOWN_CODES", "CastEvent", "RecordingError", "FORMAT_NAME", "FORMAT_VERSION",
    "MANIFEST", "MANIFEST_TYPES", "PANE_TYPES", "read_manifest", "Recording",
    "read_cast", "read_cast_header",
]


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


_event_line = event_line  # the codec's v2 line


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
