"""A recording opened for reading: its manifest and its pane files, every
file opened through files.open_for_reading and parsed by the asciicast
codec. A lone asciicast file opens as a recording of one pane."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autotrace.events import Event
from autotrace.format.asciicast import (
    KNOWN_CODES,
    CastEvent,
    parse_header,
    read_events,
    read_header,
    read_line,
)
from autotrace.format.errors import RecordingError, decode_json
from autotrace.format.limits import MAX_LINE_BYTES
from autotrace.format.manifest import FINDINGS, manifest_for_cast, read_manifest
from autotrace.format.opening import open_for_reading


def read_cast(path: Path, codes: tuple[str, ...] = KNOWN_CODES) -> Iterator[CastEvent]:
    """Events of one asciicast v2 or v3 file, times since the start, never
    decreasing; tolerant of a torn last line; unknown codes skipped."""
    with open_for_reading(path) as f:
        try:
            yield from read_events(f, str(path), codes)
        except OSError as err:  # e.g. EIO from a failing disk
            raise RecordingError(f"{path}: cannot read: {err.strerror or err}") from None


def read_cast_tail(path: Path, size: int,
                   codes: tuple[str, ...] = KNOWN_CODES) -> tuple[list[CastEvent], int]:
    """The events in (about) the last `size` bytes of a v2 file, whole lines
    only, and how many bytes of events come before them; the rest of the
    file is never read, so this costs the same for a pane of any length. A
    v3 file's times are intervals from the start: it is read whole."""
    with open_for_reading(path) as f:
        try:
            header_line = read_line(f, str(path), 1)
            header = parse_header(header_line, str(path))
            if header.relative:
                f.seek(0)
                return list(read_events(f, str(path), codes)), 0
            end = os.fstat(f.fileno()).st_size
            start = max(len(header_line), end - size)
            f.seek(start)
            if start > len(header_line):
                start += len(f.readline())  # the line the cut fell in
            tail = f.read(end - start)
        except OSError as err:
            raise RecordingError(f"{path}: cannot read: {err.strerror or err}") from None
    # The codec reads the stretch as a file of its own (line numbers in an
    # error count from the stretch).
    events = list(read_events(io.BytesIO(header_line + tail), f"{path} (its end)", codes))
    return events, start - len(header_line)


def read_cast_header(path: Path) -> dict[str, Any]:
    """The header of a v2 or v3 file, in v2's form (the form of read_cast's
    times: a copy written with them is a valid v2 file)."""
    with open_for_reading(path) as f:
        return dict(read_header(f, str(path)).fields)


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

    @classmethod
    def open_cast(cls, path: Path) -> Recording:
        """A lone asciicast file as a one-pane recording: its folder is the
        recording's, its name the pane file's."""
        path = Path(os.path.realpath(path))  # the user named it: a link to it is fine
        with open_for_reading(path) as f:
            header = read_header(f, str(path))
            size = os.fstat(f.fileno()).st_size
        return cls(path.parent, manifest_for_cast(path.name, header, size))

    @property
    def panes(self) -> list[dict[str, Any]]:
        return list(self.manifest["panes"])

    def pane_path(self, index: int) -> Path:
        return self.directory / self.panes[index]["file"]

    def events(self, index: int, codes: tuple[str, ...] = KNOWN_CODES) -> Iterator[Event]:
        """One pane's recorded events as the session's own event type, so a
        recording is a source like a live pane (DESIGN.md, One stream)."""
        for event in read_cast(self.pane_path(index), codes):
            yield Event(event.t, index, event.code, event.data)

    def findings_data(self) -> list[Any] | None:
        """The lines of findings.jsonl as JSON values (findings/model.py reads
        them); None when the recording has none (made before findings, or a lone
        cast). A torn last line is ignored, as in a pane file."""
        path = self.directory / FINDINGS
        if "asciicast_version" in self.manifest or not os.path.lexists(path):
            return None  # a lone cast's folder is not its recording
        found = []
        with open_for_reading(path) as f:
            for number, line in enumerate(f, start=1):
                if len(line) > MAX_LINE_BYTES:
                    raise RecordingError(f"{path}:{number}: a line over "
                                         f"{MAX_LINE_BYTES // (1024 * 1024)} MiB")
                if not line.endswith(b"\n"):
                    break  # torn: autotrace was killed mid-write
                if line.strip():
                    found.append(decode_json(line, f"{path}:{number}", "finding"))
        return found
