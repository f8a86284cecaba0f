"""Random access into a pane's asciicast file, for replay and seeking.

A recording can be hundreds of megabytes: it is never loaded whole, and its
index stays small. At open, one pass cuts the file into blocks of about
SAMPLE_BYTES (at line ends) and notes for each where it starts, its first
event's number and time, and the markers and resizes in it. That pass only
uses C-speed searches (bytes.count, bytes.find); lines are looked at one by
one only in a block that is not plain, well-formed events, which is also
where a corrupt line is named. The time of every event in a block is read
when a seek or a read needs that block (a few blocks are cached).
"""

from __future__ import annotations

import bisect
import json
import os
import re
from array import array
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from autotrace.events import pane_side
from autotrace.format.asciicast import (
    CastEvent,
    Clock,
    check_event,
    decode_event,
    is_comment,
    parse_header,
    quick_time,
    read_line,
)
from autotrace.format.errors import MAX_SECONDS, RecordingError, decode_json
from autotrace.format.opening import open_for_reading

SAMPLE_BYTES = 64 * 1024  # one index entry per this much of the file
CACHED_BLOCKS = 16  # blocks whose event times are kept parsed

# The time that opens an event line, `[12.5, ...`. Every match starts at the
# newline before its line (a JSON string never holds a raw newline), so the
# regex engine hunts for a literal prefix, which is fast.
_LINE_TIME = re.compile(rb"\n\[[ \t]*(-?[0-9][0-9.eE+-]*)[ \t]*,")
# Events the index notes: markers and resizes. Found with bytes.find; a hit
# inside an output string is told apart by parsing its line.
_SESSION_CODES = {b'"m"': "m", b'"r"': "r"}



_event_time = quick_time  # the codec's: `[12.5, ...` without parsing the rest


def _looks_like_event(line: bytes) -> bool:
    """`[time, ... ]`: what the index pass checks of every line."""
    return _event_time(line) is not None and line.rstrip().endswith(b"]")


class PaneTrack:
    """One pane's events, readable from any moment.

    Events are numbered from 0 in file order; `times` are seconds since the
    start (v3's intervals summed), clamped to be non-decreasing (recording
    format, reading rules).
    """

    def __init__(self, path: Path):
        self.path = path
        self._file: BinaryIO = open_for_reading(path)
        try:
            header = read_line(self._file, str(path), 1)
            self.cast = parse_header(header, str(path))
        except BaseException:
            self._file.close()
            raise
        self.header = self.cast.fields  # in v2's form
        self.width = pane_side(self.cast.width, 80)
        self.height = pane_side(self.cast.height, 24)
        self.markers: list[tuple[float, str]] = []  # "m" events
        self.resizes: list[tuple[float, int, int]] = []  # "r" events
        # Per block: where it starts and ends, the line number it starts on,
        # the number of its first event, the latest time before it (clamping
        # carries on from there) and the clamped time of its first event.
        self._offset = array("q")
        self._end = array("q")
        self._line = array("q")
        self._first = array("q")
        self._base = array("d")
        self._start = array("d")
        self._times_cache: OrderedDict[int, list[float]] = OrderedDict()
        self.event_count = 0
        self.duration = 0.0  # time of the last event
        self._header_end = len(header)
        self._index(len(header))
        self._next = 0  # number of the next event to read
        self._lineno = 2  # line number of the next line in the file
        self.seek_event(0)

    # -- the index pass

    def _index(self, offset: int) -> None:
        self._file.seek(offset)
        lineno = 2
        while True:
            block = self._file.read(SAMPLE_BYTES)
            if not block:
                return
            if not block.endswith(b"\n"):  # blocks end at line ends
                block += read_line(self._file, str(self.path),
                                   lineno + block.count(b"\n"))
            whole = block[: block.rfind(b"\n") + 1]
            tail = block[len(whole):]
            # Only the file's end lacks a newline: a torn last line
            # (autotrace killed mid-write) counts when it parses.
            tail_counts = bool(tail) and self._is_whole_event(tail)
            used = len(block) if tail_counts else len(whole)
            if self.cast.relative:
                count, first_t, last_t = self._survey_intervals(block[:used], lineno)
            else:
                count, first_t, last_t = self._survey(whole, lineno)
                if tail_counts:
                    last_t = _event_time(tail)
                    first_t = last_t if first_t is None else first_t
                    count += 1
            if count:
                self._add_block(offset, offset + used, lineno, count, first_t, last_t)
                self._note_session_events(len(self._offset) - 1, block[:used])
            offset += len(block)
            lineno += whole.count(b"\n")

    def _survey(self, block: bytes, lineno: int) -> tuple[int, float | None, float | None]:
        """Events in a block of whole lines, and its first and last line's times."""
        if not block:
            return 0, None, None
        lines = block.count(b"\n")
        first = _event_time(block[: block.find(b"\n")])
        last = _event_time(block[block.rfind(b"\n", 0, len(block) - 1) + 1:])
        if lines == block.count(b"]\n") and first is not None and last is not None:
            return lines, first, last  # every line is `[time, ...]`: the usual case
        times = self._line_times(block, lineno)
        return len(times), (times[0] if times else None), (times[-1] if times else None)

    def _survey_intervals(self, block: bytes, lineno: int) -> tuple[int, float | None,
                                                                     float | None]:
        """The same for v3: every interval is read, to know when the block ends."""
        times = Clock(self.cast, self.duration).times(self._block_values(block, lineno))
        return len(times), (times[0] if times else None), (times[-1] if times else None)

    def _line_times(self, block: bytes, lineno: int) -> list[float]:
        """Line by line: blank lines (and v3 comments) are skipped, anything
        else must be an event; a line that is not is named by the codec."""
        times = []
        for n, line in enumerate(block.split(b"\n")):
            if is_comment(line, self.cast):
                continue
            t = _event_time(line)
            if t is None or not line.rstrip().endswith(b"]"):
                t = decode_event(line, f"{self.path}:{lineno + n}")[0]
            times.append(t)
        return times

    @staticmethod
    def _is_whole_event(line: bytes) -> bool:
        if not _looks_like_event(line):
            return False
        try:
            decode_json(line, "", "event")
        except RecordingError:
            return False
        return True

    def _add_block(self, offset: int, end: int, lineno: int, count: int,
                   first_t: float | None, last_t: float | None) -> None:
        base = self.duration
        self._offset.append(offset)
        self._end.append(end)
        self._line.append(lineno)
        self._first.append(self.event_count)
        self._base.append(base)
        self._start.append(max(base, first_t or 0.0))
        self.event_count += count
        # Exact for files whose times never decrease (what autotrace writes);
        # for others, a time out of order inside a block is clamped from here.
        self.duration = max(base, first_t or 0.0, last_t or 0.0)

    def _note_session_events(self, block_number: int, block: bytes) -> None:
        lineno = self._line[block_number]
        for needle, code in _SESSION_CODES.items():
            hit = block.find(needle)
            counted_to, lines_before = 0, 0
            while hit >= 0:
                start = block.rfind(b"\n", 0, hit) + 1
                end = block.find(b"\n", hit)
                end = len(block) if end < 0 else end
                lines_before += block.count(b"\n", counted_to, start)
                counted_to = start
                self._note_session_event(block[start:end], code, block_number,
                                         lineno + lines_before)
                hit = block.find(needle, end)

    def _note_session_event(self, line: bytes, code: str, block_number: int,
                            lineno: int) -> None:
        if is_comment(line, self.cast):
            return
        where = f"{self.path}:{lineno}"
        item = decode_json(line, where, "event")
        if not isinstance(item, list) or len(item) < 3 or item[1] != code:
            return  # the needle was inside the data, not the event's code
        _, _, data = check_event(item, where)
        number = self._event_number(block_number, lineno)
        t = self._block_times(block_number)[number - self._first[block_number]]
        if code == "m":
            self.markers.append((t, data))
            return
        try:
            cols, rows = (int(n) for n in data.lower().split("x"))
        except ValueError:  # int() of 5000 digits is one too
            raise RecordingError(f"{where}: bad resize {data[:24]!r}") from None
        self.resizes.append((t, pane_side(cols, 80), pane_side(rows, 24)))

    def _event_number(self, block_number: int, lineno: int) -> int:
        """The number of the event on line `lineno` of a block (blank lines don't count)."""
        data = self._read_block(block_number)
        skipped = lineno - self._line[block_number]
        blank = sum(1 for line in data.split(b"\n")[:skipped] if is_comment(line, self.cast))
        return self._first[block_number] + skipped - blank

    # -- times, read per block when needed

    def _read_block(self, block_number: int) -> bytes:
        start = self._offset[block_number]
        # pread leaves the file position (and its buffer) to the sequential reader.
        return os.pread(self._file.fileno(), self._end[block_number] - start, start)

    def _block_events(self, block_number: int) -> int:
        following = (self._first[block_number + 1] if block_number + 1 < len(self._first)
                     else self.event_count)
        return following - self._first[block_number]

    def _block_times(self, block_number: int) -> list[float]:
        times = self._times_cache.get(block_number)
        if times is not None:
            self._times_cache.move_to_end(block_number)
            return times
        times = self._parse_block_times(block_number)
        self._times_cache[block_number] = times
        if len(self._times_cache) > CACHED_BLOCKS:
            self._times_cache.popitem(last=False)
        return times

    def _parse_block_times(self, block_number: int) -> list[float]:
        values = self._block_values(self._read_block(block_number), self._line[block_number],
                                    self._block_events(block_number))
        return Clock(self.cast, self._base[block_number]).times(values)

    def _block_values(self, data: bytes, lineno: int, expected: int | None = None
                      ) -> list[float]:
        """The times (v3: intervals) of a block's events as written: one C-speed
        regex pass when it finds every event and sane times, else line by line."""
        found = _LINE_TIME.findall(b"\n" + data)
        if expected is None or len(found) == expected:
            try:
                values = list(map(float, found))
            except ValueError:
                values = []
            # No NaN can match the regex; 1e400 (inf) fails the max.
            if values and min(values) >= 0 and max(values) <= MAX_SECONDS and (
                    expected is not None or data.count(b"\n") == len(values)):
                return values
        return self._line_times(data, lineno)

    def iter_times(self) -> Iterator[float]:
        """Every event's time, in order (reads the whole file)."""
        for block_number in range(len(self._offset)):
            cached = self._times_cache.get(block_number)
            yield from cached if cached is not None else self._parse_block_times(block_number)

    def _block_of(self, number: int) -> int:
        return bisect.bisect_right(self._first, number) - 1

    def time_of(self, number: int) -> float:
        """The (clamped) time of event `number`."""
        if not 0 <= number < self.event_count:
            raise IndexError(f"no event {number} in {self.path}")
        block_number = self._block_of(number)
        return self._block_times(block_number)[number - self._first[block_number]]

    def count_until(self, t: float) -> int:
        """How many events happen at or before `t`."""
        block_number = bisect.bisect_right(self._start, t) - 1
        if block_number < 0:
            return 0
        times = self._block_times(block_number)
        return self._first[block_number] + bisect.bisect_right(times, t)

    def size_at(self, t: float) -> tuple[int, int]:
        """The pane's pty size in effect at time `t`."""
        size = (self.width, self.height)
        for when, cols, rows in self.resizes:
            if when > t:
                break
            size = (cols, rows)
        return size

    def rewind_bytes(self, number: int, lookback: int) -> int:
        """The number of an event at least `lookback` bytes of the file before
        event `number` (at most a line more), or 0."""
        block_number = self._block_of(number)
        if block_number < 0:
            return 0
        wanted = self._offset_of(block_number, number) - lookback
        if wanted <= self._offset[0]:
            return 0
        earlier = bisect.bisect_right(self._offset, wanted) - 1
        if self._end[earlier] <= wanted:  # between blocks (a skipped stretch)
            return self._first[earlier + 1] if earlier + 1 < len(self._first) else number
        # The event whose line holds `wanted` starts at most a line before it.
        data = self._read_block(earlier)
        lines = data.count(b"\n", 0, wanted - self._offset[earlier])
        return min(number, self._event_number(earlier, self._line[earlier] + lines))

    def offset_of(self, number: int) -> int:
        """Where in the file event `number` starts (the end, past the last)."""
        if number >= self.event_count:
            return self._end[-1] if self._end else self._header_end
        block_number = self._block_of(number)
        return self._offset_of(block_number, number) if block_number >= 0 else self._header_end

    def _offset_of(self, block_number: int, number: int) -> int:
        """Where in the file event `number` (in block `block_number`) starts."""
        skip = number - self._first[block_number]
        if skip <= 0:
            return self._offset[block_number]
        data = self._read_block(block_number)
        position = 0
        while skip > 0:
            end = data.find(b"\n", position)
            if end < 0:
                return self._end[block_number]
            if not is_comment(data[position:end], self.cast):
                skip -= 1
            position = end + 1
        return self._offset[block_number] + position

    def bytes_between(self, start: int, stop: int) -> int:
        """About how many bytes of the file events start..stop-1 take (to a block)."""
        if stop <= start or not self._offset:
            return 0
        last = self._block_of(stop - 1)
        return self._end[last] - self._offset[max(0, self._block_of(start))]

    # -- reading in order

    @property
    def position(self) -> int:
        """The number of the next event `read_until` returns."""
        return self._next

    @property
    def next_time(self) -> float | None:
        """When the next event to read happens; None when all have been read."""
        return self.time_of(self._next) if self._next < self.event_count else None

    def seek_event(self, number: int) -> None:
        """Make `number` the next event read."""
        number = max(0, min(number, self.event_count))
        block_number = self._block_of(number)
        if block_number < 0:
            offset, current, lineno = self._header_end, 0, 2
        else:
            offset = self._offset[block_number]
            current, lineno = self._first[block_number], self._line[block_number]
        self._file.seek(offset)
        readline = self._file.readline
        while current < number:
            line = readline()
            if not line:
                break
            lineno += 1
            if not is_comment(line, self.cast):
                current += 1
        self._next, self._lineno = number, lineno

    def read_until(self, t: float) -> list[CastEvent]:
        """The events after the last one read, up to and including time `t`."""
        stop = self.count_until(t)
        if self._next >= stop:
            return []
        lines: list[bytes] = []
        linenos: list[int] = []
        readline = self._file.readline
        lineno = self._lineno
        while len(lines) < stop - self._next:
            line = readline()
            if not line:
                break
            lineno += 1
            if is_comment(line, self.cast):
                continue
            lines.append(line)
            linenos.append(lineno - 1)
        self._lineno = lineno
        items = self._parse(lines, linenos)
        times = self._times(self._next, self._next + len(items))
        self._next += len(items)
        return [CastEvent(t, code, data) for t, (_, code, data) in zip(times, items)]

    def _parse(self, lines: list[bytes], linenos: list[int]) -> list[tuple[Any, str, str]]:
        """Event lines to (time, code, data), all in one JSON parse (C speed);
        line by line only to name a corrupt one."""
        try:
            items = json.loads(b"[" + b",".join(lines) + b"]")
        except (ValueError, RecursionError):  # the codec names the line, below
            items = None
        if not isinstance(items, list) or len(items) != len(lines):  # `1, 2` is two items
            items = [self._parse_line(line, lineno) for line, lineno in zip(lines, linenos)]
        for i, item in enumerate(items):
            if not (isinstance(item, list) and len(item) >= 3 and isinstance(item[1], str)
                    and isinstance(item[2], str)):
                items[i] = self._checked(item, linenos[i])
        return items

    def _parse_line(self, line: bytes, lineno: int) -> Any:
        return decode_json(line, f"{self.path}:{lineno}", "event")

    def _checked(self, item: Any, lineno: int) -> tuple[Any, str, str]:
        """An event that is not [time, code, text]: an unknown code may carry
        any data (the player ignores it); anything else is corrupt."""
        return check_event(item, f"{self.path}:{lineno}")

    def _times(self, start: int, stop: int) -> list[float]:
        """The times of events start..stop-1."""
        out: list[float] = []
        block_number = self._block_of(start)
        while start < stop:
            times, first = self._block_times(block_number), self._first[block_number]
            end = min(stop, first + len(times))
            out += times[start - first:end - first]
            start, block_number = end, block_number + 1
        return out

    def close(self) -> None:
        self._file.close()

