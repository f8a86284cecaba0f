"""`autotrace cat` and `autotrace info`: a recording as text.

Escape sequences are removed by pyte's own parser (it knows CSI, OSC, DCS and
friends), so what is left is exactly the text a pane printed.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple, TextIO

import pyte

from autotrace.findings.model import Finding
from autotrace.format.reader import Recording
from autotrace.sanitise import printable


def _ignore(*args: Any, **kwargs: Any) -> None:
    pass


class _LineCollector:
    """A pyte listener that keeps printed text and line breaks, nothing else."""

    def __init__(self) -> None:
        self.current: list[str] = []
        self.done: list[str] = []

    def draw(self, text: str) -> None:
        self.current.append(text)

    def tab(self) -> None:
        self.current.append("\t")

    def linefeed(self) -> None:
        self.done.append("".join(self.current))
        self.current = []

    def erase_in_display(self, *args: Any, **kwargs: Any) -> None:
        # A cleared screen (a probe's new frame, `clear`) starts a new line.
        if self.current:
            self.linefeed()

    def __getattr__(self, name: str) -> Any:
        return _ignore


def plain_lines(text: str) -> bool:
    """Printable ASCII in CR LF ended lines: no escape, no other control."""
    return text.isascii() and text.replace("\r\n", "").isprintable()


class TextLines:
    """Output fed piece by piece, turned into the lines `cat` prints."""

    def __init__(self) -> None:
        self._collector = _LineCollector()
        self._stream = pyte.Stream(self._collector)  # type: ignore[arg-type]

    def feed(self, text: str) -> list[str]:
        """The lines `text` finished."""
        if self._stream._taking_plain_text and plain_lines(text):
            # Between sequences, plain lines are their own text: no parsing needed.
            *done, rest = text.split("\r\n")
            kept = [rest] if rest else []  # as draw() leaves it: nothing drawn, nothing kept
            if not done:
                self._collector.current += kept
                return []
            done[0] = self.unfinished + done[0]
            self._collector.current = kept
            return done
        self._stream.feed(text)
        done, self._collector.done = self._collector.done, []
        return [line.rstrip("\r") for line in done]

    @property
    def unfinished(self) -> str:
        return "".join(self._collector.current)


# Where a screen fed the output must stop to show a line: after a line
# feed, or before an escape sequence (a clear may be what ended the line).
_CUT = re.compile(r"\n|\x1b")


class PositionedLines:
    """Output fed an event at a time, turned into `cat`'s lines, each with
    the offset in its event's data where a screen fed that output shows it
    last: after the line feed that ended it, or before the sequence (a
    clear) that did. A rebuilt screen is cut there (export/search.py)."""

    def __init__(self) -> None:
        self._collector = _LineCollector()
        self._stream = pyte.Stream(self._collector)  # type: ignore[arg-type]

    def feed(self, data: str) -> list[tuple[str, int]]:
        """(line, cut) for every line `data` finished."""
        if self._stream._taking_plain_text and plain_lines(data):
            return self._plain(data)
        done: list[tuple[str, int]] = []
        start = 0
        for match in _CUT.finditer(data):
            end = match.end() if match.group() == "\n" else match.start()
            if end > start:
                self._piece(data[start:end], end, done)
                start = end
        if start < len(data):
            self._piece(data[start:], len(data), done)
        return done

    def _piece(self, piece: str, end: int, done: list[tuple[str, int]]) -> None:
        self._stream.feed(piece)
        finished = self._collector.done
        if finished:
            # Only the piece's own line feed ends a line after the piece; one
            # ended before it (by a clear at the piece's start) shows before it.
            by_feed = 1 if piece.endswith("\n") else 0
            start = end - len(piece)
            done.extend((line.rstrip("\r"), start) for line in finished[:len(finished) - by_feed])
            if by_feed:
                done.append((finished[-1].rstrip("\r"), end))
            self._collector.done = []

    def _plain(self, data: str) -> list[tuple[str, int]]:
        # Between sequences, plain lines are their own text: no parsing needed.
        *lines, rest = data.split("\r\n")
        done, end = [], 0
        for line in lines:
            end += len(line) + 2
            done.append((line, end))
        if done:
            done[0] = (self.unfinished + done[0][0], done[0][1])
            self._collector.current = []
        if rest:
            self._collector.current.append(rest)
        return done

    @property
    def unfinished(self) -> str:
        """The text of the line begun and not ended yet."""
        return "".join(self._collector.current)


class TimelineLine(NamedTuple):
    t: float
    pane: int
    text: str


def pane_lines(recording: Recording, index: int) -> Iterator[TimelineLine]:
    """One pane's output as text lines, each stamped with the time it began."""
    collector = _LineCollector()
    stream = pyte.Stream(collector)  # type: ignore[arg-type]
    line_start: float | None = None
    for event in recording.events(index, codes=("o",)):
        if line_start is None:
            line_start = event.t
        stream.feed(event.data)
        for text in collector.done:
            yield TimelineLine(line_start, index, text.rstrip("\r"))
            line_start = event.t
        if collector.done:
            collector.done = []
            line_start = event.t if collector.current else None
    if collector.current:
        yield TimelineLine(line_start or 0.0, index, "".join(collector.current))


def merged_lines(recording: Recording, panes: Iterable[int]) -> Iterator[TimelineLine]:
    return heapq.merge(*(pane_lines(recording, i) for i in panes), key=lambda line: line.t)


def write_timeline(recording: Recording, out: TextIO, pane: int | None = None,
                   findings: Sequence[Finding] = ()) -> None:
    """The timeline; FINDINGS (`cat --findings`) come in at their times, marked [F]."""
    indexes = range(len(recording.panes)) if pane is None else [pane]
    pending = iter(findings)
    finding = next(pending, None)
    for line in merged_lines(recording, indexes):
        while finding is not None and finding.t <= line.t:
            out.write(finding_line(finding))
            finding = next(pending, None)
        text = "\t".join(printable(part) for part in line.text.split("\t"))  # tabs are text
        out.write(f"{line.t:10.3f} [{line.pane}] {text}\n")
    while finding is not None:
        out.write(finding_line(finding))
        finding = next(pending, None)


def finding_line(finding: Finding) -> str:
    first = f" (pane {finding.pane})" if finding.evidence else ""
    return printable(f"{finding.t:10.3f} [F] {finding.severity.upper()}: "
                     f"{finding.title}{first}") + "\n"


def describe_end(pane: dict[str, Any], attached: bool = False) -> str:
    """How a pane of a manifest ended, in the words the live view uses."""
    if attached and pane.get("role") == "main" and pane.get("exit_status") is None \
            and not pane.get("exit_signal_name"):
        return "attached, not ours: left running" if pane.get("end") is not None \
            else "attached, not ours"
    if pane.get("exit_signal_name"):
        return f"killed by {pane['exit_signal_name']}"
    if pane.get("exit_status") is not None:
        return f"exited {pane['exit_status']}"
    if pane.get("end") is not None:
        return "ended"
    return "no end recorded"


def _signed(value: Any) -> str:
    return f"{value:+.6f}s" if isinstance(value, (int, float)) else "?"


def host_clock_lines(hosts: Any) -> list[str]:
    """Each remote host's clock against the recording's, at start and at end.

    Pane times are all this host's (remote output is timed when it arrives);
    a time printed on HOST minus its offset is a time on this host's clock,
    good to within the uncertainty (half the round trip)."""
    if not isinstance(hosts, dict) or not hosts:
        return []
    lines = ["hosts:      clock offset (theirs minus ours) ± uncertainty"]
    for name, host in hosts.items():
        host = host if isinstance(host, dict) else {}
        if host.get("error"):
            lines.append(f"  {name}: not connected: {host['error']}")
            continue
        parts = []
        for when in ("start", "end"):
            sample = host.get(when)
            if isinstance(sample, dict):
                parts.append(f"{when} {_signed(sample.get('offset'))} ± "
                             f"{_seconds(sample.get('uncertainty'), 6)}")
            else:
                parts.append(f"{when} not measured")
        lines.append(f"  {name}: {', '.join(parts)}")
    return lines


def _seconds(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}s" if isinstance(value, (int, float)) else "-"


class _PrintableLines:
    """A text stream that lets no control character through but line breaks:
    a manifest from someone else may hold escape sequences in any string."""

    def __init__(self, out: TextIO):
        self._out = out

    def write(self, text: str) -> None:
        self._out.write("\n".join(printable(part) for part in text.split("\n")))


def write_info(recording: Recording, out: TextIO) -> None:
    out = _PrintableLines(out)  # type: ignore[assignment]
    m = recording.manifest
    term = m.get("terminal") or {}
    out.write(f"recording:  {recording.directory}\n")
    if m.get("asciicast_version"):
        # A lone pane file (asciinema's or anyone's): no session to describe.
        out.write(f"format:     asciicast v{m['asciicast_version']}, one pane, "
                  "no autotrace manifest\n")
        out.write(f"started:    {m.get('started_at', '?')}\n")
    else:
        out.write(f"started:    {m.get('started_at', '?')}  by {m.get('user', '?')} "
                  f"on {m.get('host', '?')} ({m.get('kernel', '?')})\n")
        out.write(f"duration:   {_seconds(m.get('duration'))}"
                  f"{'' if m.get('duration') is not None else ' (session did not end cleanly)'}"
                  "\n")
    out.write(f"terminal:   {term.get('cols', '?')}x{term.get('rows', '?')}\n")
    if not m.get("asciicast_version"):
        out.write(f"autotrace:  {m.get('autotrace_version', '?')}, "
                  f"format {m.get('format_version', '?')}\n")
    if m.get("redactions"):
        out.write(f"redacted:   {', '.join(m['redactions'])}\n")
    for line in host_clock_lines(m.get("hosts")):
        out.write(line + "\n")
    findings = m.get("findings")
    if isinstance(findings, dict) and isinstance(findings.get("count"), int):
        out.write(f"findings:   {findings['count']} (autotrace findings PATH lists them)\n")
    for pane in recording.panes:
        out.write(f"\npane {pane.get('index')} ({pane.get('role')})\n")
        out.write(f"  command:  {pane.get('command')}\n")
        if pane.get("command_run") != pane.get("command"):
            out.write(f"  ran as:   {pane.get('command_run')}\n")
        if isinstance(pane.get("host"), str):
            out.write(f"  host:     {pane['host']}   pid there: {pane.get('remote_pid')}"
                      f"   (pid: ssh's here)\n")
        pid = pane.get("pid")
        out.write(f"  pid:      {pid if pid is not None else 'none (not run)'}\n")
        out.write(f"  start:    {_seconds(pane.get('start'))}   end: {_seconds(pane.get('end'))}\n")
        out.write(f"  status:   {describe_end(pane, bool(m.get('attached')))}\n")
        out.write(f"  bytes:    {pane.get('bytes', 0)}   file: {pane.get('file')}\n")
        if pane.get("note"):
            out.write(f"  note:     {pane['note']}\n")
