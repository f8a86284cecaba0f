"""asciicast v2 and v3, the format of pane files: the one place that knows
its lines (https://docs.asciinema.org/manual/asciicast/v2/ and .../v3/).

v2: a header `{"version": 2, "width": W, "height": H, ...}`, then events
`[time, code, data]`, the time in seconds since the recording's start.
v3: a header `{"version": 3, "term": {"cols": W, "rows": H, ...}, ...}`,
then events `[interval, code, data]`, the interval in seconds since the
previous event; lines that start with `#` are comments.

Inside autotrace a header is a dict in v2's form and every event carries
its time since the start: v3 is converted on the way in and, when asked
for, on the way out. v3 intervals are summed in whole microseconds, so the
times stay exact however many intervals there are (a float sum drifts).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate, islice
from typing import IO, Any, NamedTuple

from autotrace.format.errors import MAX_SECONDS, RecordingError, decode_json, time_problem
from autotrace.format.limits import MAX_LINE_BYTES

VERSIONS = (2, 3)
KNOWN_CODES = ("o", "r", "m")  # output, resize, marker; others are skipped
# Input ("i", recorded only with --record-input) keeps its text too, for
# those who ask for it (pack --redact); readers of the screens never see it.
TEXT_CODES = KNOWN_CODES + ("i",)
# No writer puts more than a read's worth of output on one line (asciinema
# and autotrace: 64 KiB, under 400 KiB escaped); a longer line is damage,
# and reading it whole could take all the memory there is.
MAX_LINE = MAX_LINE_BYTES  # one limit for folders and bundles (format/limits.py)
MICROS = 1_000_000


class CastEvent(NamedTuple):
    """One recorded event of one pane: its time (seconds since the session's
    start, clamped never to go back), code ("o" output, "r" resize, "m"
    marker) and data. With the pane's index it is an events.Event."""

    t: float
    code: str
    data: str


@dataclass(frozen=True)
class Header:
    """A pane file's first line: its version and its fields in v2's form."""

    version: int
    fields: dict[str, Any]

    @property
    def relative(self) -> bool:
        """Event times are intervals since the previous event (v3)."""
        return self.version == 3

    @property
    def width(self) -> Any:
        return self.fields.get("width")

    @property
    def height(self) -> Any:
        return self.fields.get("height")


# ---------------------------------------------------------------- reading


def parse_header(line: str | bytes, where: str) -> Header:
    """The header line of a v2 or v3 file; `where` names the file in errors."""
    item = decode_json(line, f"{where}:1", "asciicast header")
    if not isinstance(item, dict):
        raise RecordingError(f"{where}:1: corrupt asciicast header")
    version = item.get("version")
    if version == 2 and not isinstance(version, bool):
        return Header(2, dict(item))
    if version == 3 and not isinstance(version, bool):
        term = item.get("term")
        if not isinstance(term, dict):
            raise RecordingError(f"{where}:1: corrupt asciicast header: no 'term' object")
        return Header(3, _v2_fields(item, term))
    raise RecordingError(f"{where}:1: not an asciicast v2 or v3 file")


def _v2_fields(item: dict[str, Any], term: dict[str, Any]) -> dict[str, Any]:
    fields = {key: value for key, value in item.items() if key not in ("version", "term")}
    fields = {"version": 2, "width": term.get("cols"), "height": term.get("rows"), **fields}
    if isinstance(term.get("type"), str):
        env = fields.get("env")
        env = dict(env) if isinstance(env, dict) else {}
        fields["env"] = {"TERM": term["type"], **env}
    return fields


def is_comment(line: str | bytes, header: Header) -> bool:
    """A line that holds no event: blank, or a v3 comment."""
    stripped = line.strip()
    return not stripped or (header.relative and stripped[:1] in ("#", b"#"))


def check_event(item: Any, where: str) -> tuple[float, str, str]:
    """A decoded line as (time or interval, code, data). A code this reader
    does not know may carry any data: it comes back with data "" (readers
    skip it, but its v3 interval still counts)."""
    if not (isinstance(item, list) and len(item) >= 3 and isinstance(item[1], str)):
        raise RecordingError(f"{where}: corrupt event: expected [time, code, data]")
    problem = time_problem(item[0])
    if problem:
        raise RecordingError(f"{where}: corrupt event: {problem}")
    if item[1] not in TEXT_CODES:
        return float(item[0]), item[1], ""
    if not isinstance(item[2], str):
        raise RecordingError(f"{where}: corrupt event: data of {item[1]!r} is not text")
    return float(item[0]), item[1], item[2]


def decode_event(line: str | bytes, where: str) -> tuple[float, str, str]:
    """One event line, checked (see check_event)."""
    return check_event(decode_json(line, where, "event"), where)


def quick_time(line: bytes) -> float | None:
    """The time that opens an event line, `[12.5, ...`, without parsing the
    rest; None when the line does not start so or the time is not sane."""
    comma = line.find(b",", 1, 40)
    if not line.startswith(b"[") or comma < 0:
        return None
    try:
        value = float(line[1:comma])
    except ValueError:
        return None
    return None if time_problem(value) else value


class Clock:
    """Turns the times of a file's events, in order, into times since the
    start: v2's clamped to never go back, v3's intervals summed exactly."""

    def __init__(self, header: Header, start: float = 0.0):
        self.relative = header.relative
        self.now = start
        self._micros = round(start * MICROS)

    def __call__(self, value: float) -> float:
        if self.relative:
            self._micros += round(value * MICROS)
            self.now = self._micros / MICROS
        else:
            self.now = max(self.now, value)
        return self.now

    def times(self, values: Iterable[float]) -> list[float]:
        if self.relative:
            return [self(value) for value in values]
        times = list(islice(accumulate(values, max, initial=self.now), 1, None))  # C speed
        self.now = times[-1] if times else self.now
        return times


def read_line(file: IO[bytes], where: str, lineno: int) -> bytes:
    """The next line of a file, refused when over MAX_LINE bytes."""
    line = file.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise RecordingError(f"{where}:{lineno}: refused: line longer than {MAX_LINE} bytes")
    return line


def read_header(file: IO[bytes], where: str) -> Header:
    return parse_header(read_line(file, where, 1), where)


def read_events(file: IO[bytes], where: str,
                codes: tuple[str, ...] = KNOWN_CODES) -> Iterator[CastEvent]:
    """The events of an open pane file, times since the start, in order.

    A torn last line (a writer killed mid-write) is ignored; any other line
    that is not an event is an error naming the file and line.
    """
    header = read_header(file, where)
    clock = Clock(header)
    pending: tuple[int, bytes] | None = None
    lineno = 1
    while True:
        lineno += 1
        line = read_line(file, where, lineno)
        if pending is not None:
            event = _usual_event(pending[1])
            if event is None:
                torn = not line and not pending[1].endswith(b"\n")
                event = _pending_event(*pending, where, torn)
            if event is not None:
                t = clock(event[0])  # unknown codes take their time too (v3)
                if event[1] in codes:
                    yield CastEvent(t, event[1], event[2])
        if not line:
            return
        pending = (lineno, line) if line[:1] == b"[" or not is_comment(line, header) else None


def _usual_event(line: bytes) -> tuple[float, str, str] | None:
    """A well-formed event of a known code, checked at C speed where possible;
    None for anything else, which decode_event then looks at closely."""
    try:
        item = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if type(item) is list and len(item) >= 3:  # noqa: E721 - exact types, bool is not a time
        t, code, data = item[0], item[1], item[2]
        if (type(t) is float or type(t) is int) and 0 <= t <= MAX_SECONDS \
                and type(code) is str and type(data) is str and code in TEXT_CODES:
            return float(t), code, data
    return None


def _pending_event(lineno: int, line: bytes, where: str,
                   torn: bool) -> tuple[float, str, str] | None:
    try:
        return decode_event(line, f"{where}:{lineno}")
    except RecordingError:
        if torn:
            return None  # the last line, cut short by a crash: not an error
        raise


# ---------------------------------------------------------------- writing


def header_line(fields: dict[str, Any], version: int = 2) -> str:
    """A header (v2's form) as the first line of a file of `version`."""
    if version == 2:
        return json.dumps({**fields, "version": 2}, ensure_ascii=False) + "\n"
    term: dict[str, Any] = {"cols": fields.get("width"), "rows": fields.get("height")}
    env = fields.get("env")
    if isinstance(env, dict) and isinstance(env.get("TERM"), str):
        term["type"] = env["TERM"]
    rest = {k: v for k, v in fields.items() if k not in ("version", "width", "height")}
    return json.dumps({"version": 3, "term": term, **rest}, ensure_ascii=False) + "\n"


# One encoder for every event line: json.dumps with options makes a new one per call.
_encode = json.JSONEncoder(ensure_ascii=False).encode
# The string encoder that one uses (C), for the event line written most: output.
_json_string = json.encoder.encode_basestring


def event_line(t: float, code: str, data: str) -> str:
    """One v2 event line; times to the microsecond, as asciinema writes them.

    Built by hand, byte for byte what json.dumps writes (a float's repr,
    ", " between items): this is every pane's every read."""
    return f"[{round(t, 6)!r}, {_json_string(code)}, {_json_string(data)}]\n"


class V3Lines:
    """v3 event lines from times since the start: each line's interval is
    counted from the previous event's time as written, in microseconds, so
    a reader summing them gets every time back exactly."""

    def __init__(self) -> None:
        self._micros = 0

    def __call__(self, t: float, code: str, data: str) -> str:
        micros = max(self._micros, round(t * MICROS))
        interval, self._micros = micros - self._micros, micros
        return _encode([interval / MICROS, code, data]) + "\n"


def write_cast(out: IO[str], fields: dict[str, Any], events: Iterable[CastEvent],
               version: int = 2) -> None:
    """A whole pane file: the header (v2's form) and events (times since the start)."""
    out.write(header_line(fields, version))
    encode = event_line if version == 2 else V3Lines()
    for event in events:
        out.write(encode(event.t, event.code, event.data))
