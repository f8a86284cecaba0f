"""Lenses: what a tracer's output means, made visible on a drawn row.

A lens is a pure function from a row's text to the spans of it to draw
differently: in strace panes the syscall name is emphasised and a failed call
(`= -1 ENOENT (...)`) stands out; in tcpdump panes a DNS message's TC flag
(`|` after the id) is spelled `TRUNCATED` and an error rcode (NXDomain,
ServFail, Refused...) is coloured. Display only: the recording keeps the raw
bytes, and the view draws lenses only while colours are on (`l`,
`--colorsoff`).

The @dns probe's decoded lines get the same marks for TC and rcodes. The
pane's kind comes from its command (`lens_for`). Rows are drawn once and
cached by their cells (view/multipane.py), so a lens runs once per new row; a
row with nothing to show costs one regex search.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

# How a span is drawn; view/render.py turns these names into attributes.
CALL, FAILED, FAILED_CALL, TRUNCATED, RCODE = "call", "failed", "failed_call", "truncated", "rcode"


class Span(NamedTuple):
    start: int  # first column
    end: int  # column after the last
    style: str  # one of the names above
    text: str | None = None  # drawn instead of the row's text in the span (a longer word)


Lens = Callable[[str], tuple[Span, ...]]

# ------------------------------------------------------------------ strace

# A syscall line: an optional `[pid  N] ` and `-t`/`-tt`/`-ttt`/`-r` stamps,
# then the name and its open parenthesis; or `<... name resumed>`.
_STRACE_CALL = re.compile(
    r"^(?:\[pid\s+\d+\] |\d+ +)?(?:[\d:.]+ +)*(?:(?P<name>[a-z_][a-z0-9_]*)\(|"
    r"<\.\.\. (?P<resumed>[a-z_][a-z0-9_]*) resumed>)")
# A failed call's result: `= -1 ENOENT (No such file or directory)`, also `= ? ERESTART...`.
_STRACE_FAILED = re.compile(r"= -1 (?P<errno>E[A-Z0-9]+)(?: \([^)]*\))?")
# A non-blocking call that would block has not failed: a connect under way,
# a read with nothing yet. Drawn red they would drown the real failures.
_NOT_FAILURES = frozenset({"EINPROGRESS", "EAGAIN", "EWOULDBLOCK"})


def strace_lens(text: str) -> tuple[Span, ...]:
    spans: list[Span] = []
    failed = _STRACE_FAILED.search(text)
    if failed and failed.group("errno") in _NOT_FAILURES:
        failed = None
    call = _STRACE_CALL.match(text)
    if call:
        group = "name" if call.group("name") else "resumed"
        spans.append(Span(call.start(group), call.end(group), FAILED_CALL if failed else CALL))
    if failed:
        spans.append(Span(failed.start(), failed.end(), FAILED))
    return tuple(spans)


# ------------------------------------------------------------------ tcpdump

# tcpdump's DNS form (print-domain.c): `ADDR.PORT > ADDR.PORT: ID[ rcode][flags] ...`,
# the rcode a word when it is not NoError (`61583 NXDomain*- 0/0/1`), the
# flags of an answer `*` (AA), `-` (no RA), `|` (TC), `$` (AD), of a query
# `+` (RD) and `%` (CD).
# TCP adds `Flags [P.], ... length N ` before the id.
_RCODES = ("FormErr|ServFail|NXDomain|NotImp|Refused|YXDomain|YXRRSet|NXRRSet|NotAuth|"
           "NotZone|BadVers|Resp\\d+")
_TCPDUMP_DNS = re.compile(
    rf"(?:: |length \d+ )(?P<id>\d{{1,5}})(?P<rcode> (?:{_RCODES}))?(?P<flags>[*+\-%$|]*)(?= )")


def tcpdump_lens(text: str) -> tuple[Span, ...]:
    if "." not in text:
        return ()
    spans: list[Span] = []
    for match in _TCPDUMP_DNS.finditer(text):
        flags = match.group("flags")
        bar = flags.find("|")
        if bar >= 0:
            column = match.start("flags") + bar
            spans.append(Span(column, column + 1, TRUNCATED, " TRUNCATED"))
        if match.group("rcode"):
            spans.append(Span(match.start("rcode") + 1, match.end("rcode"), RCODE))
    return tuple(spans)


# ------------------------------------------------------------------ @dns

# The @dns probe's lines (findings/dnsrecord.py): `... answer id 7 big.test. A
# NOERROR flags QR,AA,TC,RD answers 0 ...`: TC and an error rcode as in tcpdump.
_DNS_RECORD = re.compile(
    r" answer id \d+ \S+ \S+ (?P<rcode>[A-Z0-9]+) flags (?P<flags>[A-Z,]+)"
    r"|(?P<icmp> port-unreachable )")


def dns_record_lens(text: str) -> tuple[Span, ...]:
    match = _DNS_RECORD.search(text)
    if match is None:
        return ()
    if match.group("icmp"):
        return (Span(match.start("icmp") + 1, match.end("icmp") - 1, RCODE),)
    spans: list[Span] = []
    if match.group("rcode") != "NOERROR":
        spans.append(Span(match.start("rcode"), match.end("rcode"), RCODE))
    flags = match.group("flags")
    tc = f",{flags},".find(",TC,")
    if tc >= 0:
        start = match.start("flags") + tc
        spans.append(Span(start, start + 2, TRUNCATED))
    return tuple(spans)


# ------------------------------------------------------------------ which lens

LENSES: dict[str, Lens] = {"strace": strace_lens, "tcpdump": tcpdump_lens}
# Commands that run another: the tool may come after them and their options.
_WRAPPERS = frozenset({"sudo", "doas", "env", "nice", "ionice", "nohup", "stdbuf", "timeout",
                       "nsenter", "unshare", "setpriv", "ip", "chroot", "exec", "command"})


def lens_for(command: str) -> Lens | None:
    """The lens for a pane running `command`: by the program it runs."""
    if command.startswith("@dns"):
        return dns_record_lens
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    for index, word in enumerate(words):
        name = os.path.basename(word)
        if name in LENSES:
            return LENSES[name]
        if index == 0 and name not in _WRAPPERS:
            return None
    return None


def row_text(cells: Sequence[Any]) -> str:
    """A drawn row's text with one character per column, so spans are columns
    (the right half of a wide character, "", counts as a space)."""
    text = "".join([cell.char for cell in cells])
    if len(text) == len(cells):
        return text
    return "".join([cell.char[:1] or " " for cell in cells])
