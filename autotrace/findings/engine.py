"""The findings engine: a consumer of the one event stream, like the recording writer.

It cuts each pane's output into lines and hands them to the rules that fit
the pane (`@dns` records, strace, tcpdump, `@resolv` frames); rules report
findings through the engine, which passes each on once (`on_finding`). The
engine does no I/O: live, the session's events feed it; after the fact,
a recording's events do (`findings_of`), so the same rules find the same
things either way. Deadlines (a retry that must come within a second, an
answer within the resolver's timeout) are judged on event times: every
event moves the engine's clock on, and `end` closes what is still open.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from autotrace.events import MARKER, OUTPUT, Event
from autotrace.findings.kinds import kind_of
from autotrace.findings.model import Finding

ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|.)")
CLEAR = "\x1b[2J"  # a probe frame starts with it (live/probes.py)
MAX_LINE = 8192  # a longer line is cut: no rule needs more, and a flood must not grow it


@dataclass(frozen=True)
class PaneInfo:
    """What the rules need to know about a pane: what it runs, for whom."""

    index: int
    command: str
    role: str = "tracer"
    main_pid: int | None = None  # the traced process


@dataclass
class Resolver:
    """What the target's /etc/resolv.conf says, as far as the rules have seen it."""

    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    timeout: float = 5.0  # glibc and musl default (resolv.conf(5): RES_TIMEOUT)
    seen: bool = False


class Rules:
    """A family of rules over one kind of pane.

    TRIGGER finds, in a whole chunk of output at C speed, what a line must
    hold for any rule of the family to care; only lines with a match reach
    `line`. A flood of lines no rule reads so costs a regex scan, not a
    Python call per line (issue 11 point 6: the rules may add at most 5%)."""

    trigger: re.Pattern[str] = re.compile(".")
    # Plain strings one of which every trigger match holds: a chunk holding
    # none is passed over by `in` (a C string search, about twice as fast on
    # a flood as even a regex scan that finds nothing). Empty: always scan.
    literals: tuple[str, ...] = ()

    def __init__(self, engine: FindingsEngine) -> None:
        self.engine = engine

    def line(self, pane: PaneInfo, t: float, text: str) -> None:
        """One whole line of the pane's output (escapes removed)."""

    def frame(self, pane: PaneInfo, t: float, text: str) -> None:
        """A probe frame, whole (probe panes only)."""

    def tick(self, t: float) -> None:
        """Time has moved on to T: deadlines up to it are judged."""

    def end(self, t: float) -> None:
        """Nothing more will come."""
        self.tick(float("inf"))


@dataclass
class _PaneState:
    info: PaneInfo
    kind: str
    carry: str = ""


class FindingsEngine:
    def __init__(self, pane_info: Callable[[int], PaneInfo | None],
                 on_finding: Callable[[Finding], None] = lambda finding: None) -> None:
        from autotrace.findings import dns, resolver, strace, tcpdump  # the rule families

        self.pane_info = pane_info
        self.on_finding = on_finding
        self.findings: list[Finding] = []
        self.resolver = Resolver()
        self.now = 0.0
        self.ended = False
        self._panes: dict[int, _PaneState | None] = {}
        self._keys: set[tuple[str, str]] = set()
        self.families: dict[str, Rules] = {
            "dns": dns.DnsRules(self), "strace": strace.StraceRules(self),
            "tcpdump": tcpdump.TcpdumpRules(self), "resolver": resolver.ResolverRules(self),
        }

    # ------------------------------------------------------------ the stream

    def consume(self, event: Event) -> None:
        if event.t > self.now:
            self.now = event.t
            for rules in self.families.values():
                rules.tick(event.t)
        if event.kind != OUTPUT:
            if event.kind == MARKER and event.data == "end":  # before the recording closes
                self.end(event.t)
            return
        state = self._state(event.pane)
        if state is None:
            return
        rules = self.families[state.kind]
        if state.kind == "resolver":
            # Probe frames: the session writes each one whole, in one event,
            # starting with a clear screen; text after no clear (a notice) is no frame.
            for part in event.data.split(CLEAR)[1:]:
                if part.strip():
                    rules.frame(state.info, event.t, ESCAPES.sub("", part).replace("\r", ""))
            return
        text = state.carry + event.data
        cut = text.rfind("\n")
        if cut < 0:
            state.carry = text[-MAX_LINE:]
            return
        state.carry = text[cut + 1:][-MAX_LINE:]
        if rules.literals and not any(literal in text for literal in rules.literals):
            return
        done = -1  # where the last line handed on ends: a line holding two matches goes once
        for match in rules.trigger.finditer(text, 0, cut):
            if match.start() <= done:
                continue
            start = text.rfind("\n", 0, match.start()) + 1
            done = text.find("\n", match.end(), cut + 1)
            line = text[start:done]
            if "\x1b" in line:
                line = ESCAPES.sub("", line)
            rules.line(state.info, event.t, line.rstrip("\r")[:MAX_LINE])

    def end(self, t: float | None = None) -> None:
        """The stream is over: last lines and open deadlines are judged (once)."""
        if self.ended:
            return
        self.ended = True
        t = self.now if t is None else t
        for state in self._panes.values():
            if state is not None and state.carry and state.kind != "resolver":
                self.families[state.kind].line(state.info, t, state.carry)
                state.carry = ""
        for rules in self.families.values():
            rules.end(t)

    def _state(self, pane: int) -> _PaneState | None:
        if pane not in self._panes:
            info = self.pane_info(pane)
            kind = kind_of(info.command) if info is not None else None
            self._panes[pane] = _PaneState(info, kind) if info is not None and kind else None
        return self._panes[pane]

    # ------------------------------------------------------------ findings

    def report(self, finding: Finding, once: str | None = None) -> None:
        """A rule's finding; with ONCE, only the first finding of that key per rule."""
        if once is not None:
            key = (finding.rule, once)
            if key in self._keys:
                return
            self._keys.add(key)
        self.findings.append(finding)
        self.on_finding(finding)


def findings_of(events: Iterable[Event], pane_info: Callable[[int], PaneInfo | None]
                ) -> list[Finding]:
    """The findings of a stream of events, in time order (a recording read back)."""
    engine = FindingsEngine(pane_info)
    for event in events:
        engine.consume(event)
    engine.end()
    return sorted(engine.findings, key=lambda f: f.t)
