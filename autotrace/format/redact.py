"""Redaction: mask regex matches in a pane's output while it streams past,
and in the manifest's commands and notes."""


import bisect
import itertools
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Callable

from autotrace.format.asciicast import KNOWN_CODES, CastEvent
from autotrace.format.errors import RecordingError
from autotrace.format.manifest import FINDINGS
from autotrace.format.reader import read_cast, read_cast_header
from autotrace.sanitise import printable

MASK = "«redacted»"
NAME_MASK = "redacted"  # in file and folder names: plain ASCII, no quotes to trip a shell

# ---------------------------------------------------------------- redaction


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise RecordingError(f"invalid --redact regex {pattern!r}: {err}") from None
    if regex.search(""):
        # It would "match" between every two characters and mask nothing useful.
        raise RecordingError(f"--redact regex {pattern!r} matches the empty string")
    return regex


def _line_at(text: str, pos: int) -> tuple[int, int]:
    """(start, end) of the content of the line holding `pos`, without its
    "\\n" or "\\r\\n"."""
    start = text.rfind("\n", 0, pos) + 1
    newline = text.find("\n", pos)
    end = len(text) if newline < 0 else newline
    if end > start and text[end - 1] == "\r":
        end -= 1
    return start, end


def _all_lines(text: str) -> Iterator[tuple[int, int]]:
    start = 0
    while start < len(text):
        line = _line_at(text, start)
        yield line
        start = text.find("\n", line[1]) + 1 or len(text)


def _line_matches(regex: re.Pattern[str], text: str, start: int, end: int,
                  pos: int = 0) -> list[tuple[int, int]]:
    """Non-empty matches in the line text[start:end] (from `pos` in it)."""
    return [(start + m.start(), start + m.end())
            for m in regex.finditer(text[start:end], pos) if m.end() > m.start()]


def _matches_per_line(regex: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for start, end in _all_lines(text):
        spans += _line_matches(regex, text, start, end)
    return spans


def _matches_by_search(regex: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    """What _matches_per_line finds, for a context-free regex, with one
    search of the whole text per match instead of one search per line.

    Why it is the same: such a regex matches inside a line exactly as it
    matches the same characters in the whole text, so the whole text's
    leftmost match from `pos` is the line's own next match, unless it is
    empty or runs past its line's end; then that line is searched alone.
    """
    spans: list[tuple[int, int]] = []
    pos = 0
    while pos < len(text):
        found = regex.search(text, pos)
        if found is None:
            break
        newline = text.find("\n", found.start())
        line_end = len(text) if newline < 0 else newline - (text[newline - 1] == "\r")
        if found.start() < found.end() <= line_end:
            spans.append(found.span())
            pos = found.end()
        else:
            start, end = _line_at(text, found.start())
            spans += _line_matches(regex, text, start, end, found.start() - start)
            pos = text.find("\n", end) + 1 or len(text)
    return spans


# Anchors and lookarounds: whether such a regex matches depends on the text
# around the match, so it cannot be searched for in many lines at once.
# Escapes and character classes ([^ ]) are tokens of their own, not anchors.
_REGEX_TOKEN = re.compile(r"\\.|\[\^?\]?(?:\\.|[^\]\\])*\]|\(\?<?[=!]|[$^]")
_ANCHORS = ("^", "$", "\\A", "\\Z")


def _is_contextual(pattern: str) -> bool:
    return any(token in _ANCHORS or token.startswith("(?")
               for token in _REGEX_TOKEN.findall(pattern))


class Redactor:
    """Masks every match of a set of regexes, each searched line by line.

    Searching per line keeps the meaning of `^`, `$` and `.` what a user
    expects of text output, and bounds the work to one line at a time.
    """

    def __init__(self, patterns: Sequence[str] = ()):
        self.patterns = list(patterns)
        self._regexes = [(_compile(p), _is_contextual(p)) for p in self.patterns]

    def __bool__(self) -> bool:
        return bool(self._regexes)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Sorted, merged (start, end) ranges of text to mask."""
        found: list[tuple[int, int]] = []
        for regex, contextual in self._regexes:
            found += (_matches_per_line if contextual else _matches_by_search)(regex, text)
        found.sort()
        merged: list[tuple[int, int]] = []
        for start, end in found:
            if merged and start < merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    def text(self, text: str, mask: str = MASK) -> str:
        return _masked(text, 0, len(text), self.spans(text), mask)

    def name(self, name: str) -> str:
        """A file or folder name with every match masked by NAME_MASK."""
        return self.text(name, NAME_MASK)

    def visible(self, text: str) -> bool:
        """Whether a match shows in `text` outside the masks already in it
        (a regex may match part of a mask: that hides nothing)."""
        return any(self.spans(piece)
                   for part in text.split(MASK) for piece in part.split(NAME_MASK))


def _masked(text: str, a: int, b: int, spans: Sequence[tuple[int, int]],
            mask: str = MASK) -> str:
    """text[a:b] with the spans masked. A span that starts in here is shown
    as one MASK; the part of a span that started before `a` just vanishes
    (its MASK went out with the text where it began)."""
    out, pos = [], a
    # Spans are sorted and disjoint: only the one before `a` can reach into it.
    first = max(0, bisect.bisect_left(spans, (a, -1)) - 1)
    for start, end in itertools.islice(spans, first, None):
        if end <= a:
            continue
        if start >= b:
            break
        if start >= pos:
            out.append(text[pos:start])
        if start >= a:
            out.append(mask)
        pos = max(pos, min(end, b))
    out.append(text[pos:b])
    return "".join(out)


class StreamRedactor:
    """Redacts one pane's events as they stream past, in bounded memory.

    A secret may arrive split over several "o" events (one pty read ends
    in the middle of it). So output is held back until a line is complete:
    in practice until an event ends with a newline, or the held text
    exceeds `window` characters, when everything up to the last newline
    goes out. The masked text is handed back to the events it came from,
    with their times, so a replay keeps its rhythm. Limits: a match never
    spans a line break, and in a line longer than `window` a match longer
    than `overlap` may be missed at a cut.
    """

    def __init__(self, redactor: Redactor, write: Callable[[CastEvent], None],
                 window: int = 64 * 1024, overlap: int = 4 * 1024):
        self._redactor = redactor
        self._write = write
        self._window = window
        self._overlap = overlap
        self._held: list[tuple[CastEvent, int]] = []  # event, offset of its text
        self._parts: list[str] = []
        self._length = 0

    def feed(self, event: CastEvent) -> None:
        if event.code == "m":
            event = CastEvent(event.t, "m", self._redactor.text(event.data))
        if event.code != "o":
            if self._length == 0:
                self._write(event)
            else:
                self._held.append((event, self._length))
            return
        self._held.append((event, self._length))
        self._parts.append(event.data)
        self._length += len(event.data)
        if event.data.endswith("\n"):
            text = self._text()
            self._release(text, len(text), self._redactor.spans(text))
        elif self._length > self._window:
            self._release_some()

    def close(self) -> None:
        text = self._text()
        self._release(text, len(text), self._redactor.spans(text))

    def _text(self) -> str:
        text = "".join(self._parts)
        self._parts = [text]
        return text

    def _release_some(self) -> None:
        text = self._text()
        newline = text.rfind("\n")
        if newline >= 0:
            cut = newline + 1
            self._release(text, cut, self._redactor.spans(text[:cut]))
            return
        # One very long line: cut it, but never through a match.
        spans = self._redactor.spans(text)
        cut = len(text) - self._overlap
        for start, end in spans:
            if start < cut < end:
                cut = start if start > 0 else end
        self._release(text, cut, [s for s in spans if s[1] <= cut])

    def _release(self, text: str, cut: int, spans: list[tuple[int, int]]) -> None:
        """Write out everything before `cut`; keep the rest, offsets rebased."""
        kept: list[tuple[CastEvent, int]] = []
        for event, start in self._held:
            if event.code != "o":
                if start <= cut:
                    self._write(event)
                else:
                    kept.append((event, start - cut))
                continue
            end = start + len(event.data)
            if start < cut:
                piece = _masked(text, start, min(end, cut), spans)
                if piece:
                    self._write(CastEvent(event.t, "o", piece))
            if end > cut:
                rest = event.data[max(cut - start, 0):]
                kept.append((CastEvent(event.t, "o", rest), max(start - cut, 0)))
        self._held = kept
        self._parts = [text[cut:]]
        self._length = len(text) - cut


# What a redacted bundle keeps: the keys docs/recording-format.md defines, of
# the types it gives them. Anything else could carry what the regexes were
# meant to hide, and no reader needs it. Every string is redacted, but the
# format's name.
_INT = (int,)
_NUMBER = (int, float)
_TEXT = (str,)
_NULL = (type(None),)
MANIFEST_KEYS: dict[str, tuple[type, ...]] = {
    "format": _TEXT, "format_version": _INT, "autotrace_version": _TEXT, "host": _TEXT,
    "kernel": _TEXT, "user": _TEXT, "started_at": _TEXT, "started_unix": _NUMBER,
    "duration": _NUMBER + _NULL, "terminal": (dict,), "attached": (bool,),
    "redactions": (list,), "panes": (list,), "hosts": (dict,), "findings": (dict,),
}
# The manifest's `findings` object, and each line of findings.jsonl.
FINDINGS_KEYS: dict[str, tuple[type, ...]] = {"file": _TEXT, "version": _INT, "count": _INT}
FINDING_KEYS: dict[str, tuple[type, ...]] = {
    "t": _NUMBER, "rule": _TEXT, "severity": _TEXT, "title": _TEXT, "detail": _TEXT,
    "evidence": (list,),
}
EVIDENCE_KEYS: dict[str, tuple[type, ...]] = {"pane": _INT, "t": _NUMBER, "line": _TEXT}
TERMINAL_KEYS: dict[str, tuple[type, ...]] = {"cols": _INT, "rows": _INT}
PANE_KEYS: dict[str, tuple[type, ...]] = {
    "index": _INT, "role": _TEXT, "command": _TEXT, "command_run": _TEXT, "cols": _INT,
    "rows": _INT, "pid": _INT + _NULL, "start": _NUMBER + _NULL, "end": _NUMBER + _NULL,
    "exit_status": _INT + _NULL, "exit_signal": _INT + _NULL,
    "exit_signal_name": _TEXT + _NULL, "note": _TEXT + _NULL, "file": _TEXT, "bytes": _INT,
    "host": _TEXT, "remote_pid": _INT + _NULL,
}
# manifest "hosts": {HOST: {"error", "start": CLOCK, "end": CLOCK}}
HOST_KEYS: dict[str, tuple[type, ...]] = {"error": _TEXT + _NULL, "start": (dict, *_NULL),
                                          "end": (dict, *_NULL)}
CLOCK_KEYS: dict[str, tuple[type, ...]] = {"t": _NUMBER, "offset": _NUMBER,
                                           "round_trip": _NUMBER, "uncertainty": _NUMBER}
# The asciicast v2 header keys autotrace writes; `env` keeps only these variables.
HEADER_KEYS: dict[str, tuple[type, ...]] = {
    "version": _INT, "width": _INT, "height": _INT, "timestamp": _NUMBER, "command": _TEXT,
    "title": _TEXT, "env": (dict,),
}
ENV_KEYS: dict[str, tuple[type, ...]] = {"TERM": _TEXT, "SHELL": _TEXT}
_KEPT_AS_IS = frozenset({"format"})  # "autotrace-recording": what the file is
_RESIZE = re.compile(r"[1-9][0-9]{0,4}x[1-9][0-9]{0,4}")


def _kept(data: dict[str, Any], keys: dict[str, tuple[type, ...]],
          redactor: Redactor) -> dict[str, Any]:
    """The keys of `data` that `keys` names, of the types it allows (never a
    bool for a number), strings redacted."""
    result = {}
    for key, allowed in keys.items():
        value = data.get(key)
        if key not in data or not isinstance(value, allowed) or \
                (isinstance(value, bool) and bool not in allowed):
            continue
        if isinstance(value, str) and key not in _KEPT_AS_IS:
            value = redactor.text(value)
        result[key] = value
    return result


def pane_file_name(position: int) -> str:
    """A redacted bundle's name for the pane file at `position` in the
    manifest: names given by the recording could carry the secret."""
    return f"pane-{position}.cast"


def redact_manifest(manifest: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """A copy with only the keys the format defines, every string masked,
    pane files renamed by position (see pane_file_name), and the regexes
    listed.

    The list of regexes is masked too: `--redact hunter2` is a regex that
    matches its own text, and listing it would hand out the very secret.
    So no member of a bundle holds a match, the list included."""
    result = _kept(manifest, MANIFEST_KEYS, redactor)
    if "terminal" in result:
        result["terminal"] = _kept(result["terminal"], TERMINAL_KEYS, redactor)
    if "hosts" in result:  # names and ssh's words masked, figures kept
        result["hosts"] = _redacted_hosts(manifest["hosts"], redactor)
    result["panes"] = []
    for position, pane in enumerate(manifest["panes"]):
        kept = _kept(pane, PANE_KEYS, redactor)
        kept["file"] = pane_file_name(position)
        result["panes"].append(kept)
    if "findings" in result:
        result["findings"] = _kept(result["findings"], FINDINGS_KEYS, redactor)
        result["findings"]["file"] = FINDINGS
    earlier = [p for p in manifest.get("redactions") or [] if isinstance(p, str)]
    result["redactions"] = [redactor.text(pattern) for pattern in earlier + redactor.patterns]
    return result


def _redacted_hosts(hosts: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """Each host's clock figures, its name and ssh's words masked."""
    result = {}
    for name, host in hosts.items():
        kept = _kept(host, HOST_KEYS, redactor) if isinstance(host, dict) else {}
        for when in ("start", "end"):
            if isinstance(kept.get(when), dict):
                kept[when] = _kept(kept[when], CLOCK_KEYS, redactor)
        result[redactor.text(name)] = kept
    return result


def redact_header(header: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """An asciicast header with only the keys autotrace writes, strings masked."""
    result = _kept(header, HEADER_KEYS, redactor)
    if "env" in result:
        result["env"] = _kept(result["env"], ENV_KEYS, redactor)
    return result


def _cast_line(item: Any) -> bytes:
    return (json.dumps(item, ensure_ascii=False) + "\n").encode("utf-8")


INPUT = "i"  # what the user typed (--record-input): one key or a paste an event


def masked_input(source: Path, redactor: Redactor, window: int = 64 * 1024) -> Iterator[str]:
    """Each input event's text, in order, masked as part of the line it was
    typed in: a password is typed one key (one event) at a time, so no single
    event holds a match. A line ends at Enter (CR or LF) or after `window`
    characters (a match longer than that, across the cut, may be missed)."""
    line: list[str] = []
    length = 0
    for event in read_cast(source, codes=(INPUT,)):
        line.append(event.data)
        length += len(event.data)
        if event.data.endswith(("\r", "\n")) or length > window:
            yield from _masked_pieces(line, redactor)
            line, length = [], 0
    yield from _masked_pieces(line, redactor)


def _masked_pieces(pieces: list[str], redactor: Redactor) -> Iterator[str]:
    text = "".join(pieces)
    spans = redactor.spans(text)
    start = 0
    for piece in pieces:
        yield _masked(text, start, start + len(piece), spans)
        start += len(piece)


def write_redacted_cast(source: Path, out: IO[bytes], redactor: Redactor,
                        counted: Callable[[int], None] = lambda n: None,
                        written: Callable[[CastEvent], None] = lambda event: None,
                        ) -> dict[str, Any]:
    """Copy an asciicast file to `out` with the header cut to the keys we
    write (see redact_header) and every event redacted; `written` sees each
    event as it goes out. Returns the header written.

    Input ("i", recorded with --record-input) is masked line by line (see
    masked_input). Event codes we do not know are dropped: we cannot tell
    whether they carry a secret. So are resizes whose data is not COLSxROWS."""
    header = redact_header(read_cast_header(source), redactor)
    out.write(_cast_line(header))

    def write(event: CastEvent) -> None:
        out.write(_cast_line([event.t, event.code, event.data]))
        written(event)

    stream = StreamRedactor(redactor, write)
    typed = masked_input(source, redactor)
    for event in read_cast(source, codes=KNOWN_CODES + (INPUT,)):
        counted(len(event.data) + 24)  # about the line's size, for progress only
        if event.code == "r" and not _RESIZE.fullmatch(event.data):
            continue
        if event.code == INPUT:
            event = CastEvent(event.t, INPUT, next(typed, ""))
        stream.feed(event)
    stream.close()
    return header



def redact_finding(data: Any, redactor: Redactor) -> dict[str, Any] | None:
    """A findings.jsonl line's object with only the keys the format defines, every
    string masked in the form a terminal shows it (`printable`: a NUL inside a
    secret must not hide it from the regex); None for a line of another shape."""
    if not isinstance(data, dict):
        return None
    shown = _printable_strings(data)
    result = _kept(shown, FINDING_KEYS, redactor)
    result["evidence"] = [_kept(item, EVIDENCE_KEYS, redactor)
                          for item in result.get("evidence", []) if isinstance(item, dict)]
    return result


def _printable_strings(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {key: _printable_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_printable_strings(item) for item in value]
    return value
