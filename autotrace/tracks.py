"""Random access into a pane's asciicast file, for replay and seeking.

A recording can be hundreds of megabytes: it is never loaded whole. At open,
one pass over each file notes every event's time (a few bytes each, with no
JSON parsing) and the byte offset of a sample of events; a seek then reads
from the nearest sample before the wanted moment.
"""

from __future__ import annotations

import bisect
import json
from array import array
from pathlib import Path
from typing import BinaryIO

from autotrace.recording import CastEvent, RecordingError

SAMPLE_BYTES = 64 * 1024  # one index entry per this much of the file
READ_BLOCK = 1 << 20


def _event_time(line: bytes) -> float | None:
    """The time of an event line without parsing the rest: `[12.5, "o", ...]`."""
    comma = line.find(b",", 1, 40)
    if not line.startswith(b"[") or comma < 0:
        return None
    try:
        return float(line[1:comma])
    except ValueError:
        return None


class PaneTrack:
    """One pane's events, readable from any moment."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self._file: BinaryIO = open(path, "rb")
        except OSError as err:
            raise RecordingError(f"{path}: cannot read: {err.strerror}") from None
        header = self._file.readline()
        try:
            self.header = json.loads(header)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RecordingError(f"{path}:1: corrupt asciicast header") from None
        if not isinstance(self.header, dict) or self.header.get("version") != 2:
            raise RecordingError(f"{path}:1: not an asciicast v2 file")
        self.width = int(self.header.get("width") or 80)
        self.height = int(self.header.get("height") or 24)
        self.times = array("d")  # every event's time, non-decreasing
        self.markers: list[tuple[float, str]] = []  # "m" events
        self.resizes: list[tuple[float, int, int]] = []  # "r" events
        self._sample_index: list[int] = []  # event numbers with a known offset
        self._sample_offset: list[int] = []
        self._index(len(header))
        self._next = 0  # number of the next event to read
        self._file.seek(self._sample_offset[0] if self._sample_offset else len(header))

    def _index(self, start: int) -> None:
        offset, number, last_sample, last_t = start, 0, -SAMPLE_BYTES, 0.0
        self._file.seek(start)
        for lineno, line in enumerate(self._file, start=2):
            t = _event_time(line)
            if not line.endswith(b"\n") and not self._parses(line):
                break  # a torn last line: the session was killed mid-write
            if t is None:
                if not line.strip():
                    offset += len(line)
                    continue
                raise RecordingError(f"{self.path}:{lineno}: corrupt event")
            if offset - last_sample >= SAMPLE_BYTES:
                self._sample_index.append(number)
                self._sample_offset.append(offset)
                last_sample = offset
            last_t = max(last_t, t)
            self.times.append(last_t)
            if b'"m"' in line[:64] or b'"r"' in line[:64]:
                self._note_session_event(line, last_t, lineno)
            offset += len(line)
            number += 1

    @staticmethod
    def _parses(line: bytes) -> bool:
        try:
            json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return False
        return True

    def _note_session_event(self, line: bytes, t: float, lineno: int) -> None:
        try:
            _, code, data = json.loads(line)[:3]
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError, TypeError):
            raise RecordingError(f"{self.path}:{lineno}: corrupt event") from None
        if code == "m":
            self.markers.append((t, str(data)))
        elif code == "r":
            try:
                cols, rows = (int(n) for n in str(data).lower().split("x"))
            except ValueError:
                raise RecordingError(f"{self.path}:{lineno}: bad resize {data!r}") from None
            self.resizes.append((t, cols, rows))

    def size_at(self, t: float) -> tuple[int, int]:
        """The pane's pty size in effect at time `t`."""
        size = (self.width, self.height)
        for when, cols, rows in self.resizes:
            if when > t:
                break
            size = (cols, rows)
        return size

    def rewind_bytes(self, number: int, lookback: int) -> int:
        """An event number about `lookback` bytes of output before event `number`."""
        i = bisect.bisect_right(self._sample_index, number) - 1
        steps = lookback // SAMPLE_BYTES
        return self._sample_index[i - steps] if i - steps >= 0 else 0

    @property
    def duration(self) -> float:
        return self.times[-1] if self.times else 0.0

    def count_until(self, t: float) -> int:
        """How many events happen at or before `t`."""
        return bisect.bisect_right(self.times, t)

    def seek_event(self, number: int) -> None:
        """Make `number` the next event read."""
        i = bisect.bisect_right(self._sample_index, number) - 1
        if i < 0:
            self._file.seek(0)
            self._file.readline()
            current = 0
        else:
            self._file.seek(self._sample_offset[i])
            current = self._sample_index[i]
        while current < number and self._file.readline():
            current += 1
        self._next = number

    def read_until(self, t: float) -> list[CastEvent]:
        """The events after the last one read, up to and including time `t`."""
        stop = self.count_until(t)
        events = []
        while self._next < stop:
            line = self._file.readline()
            if not line:
                break
            if not line.strip():
                continue
            events.append(self._parse(line))
            self._next += 1
        return events

    def _parse(self, line: bytes) -> CastEvent:
        try:
            item = json.loads(line)
            return CastEvent(self.times[self._next], str(item[1]), str(item[2]))
        except (json.JSONDecodeError, UnicodeDecodeError, IndexError, TypeError):
            raise RecordingError(
                f"{self.path}: event {self._next + 1} (line {self._next + 2}) is corrupt"
            ) from None

    @property
    def position(self) -> int:
        return self._next

    def close(self) -> None:
        self._file.close()
