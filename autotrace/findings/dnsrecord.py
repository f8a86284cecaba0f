"""One DNS message as the @dns pane prints it, and that line read back.

The capture helper (live/dns_capture.py) decodes packets with dnspython and
prints each message as one line through `format_line`; the rules read the
pane's lines back through `parse_line`, so findings come from the same
stream live, in a replay, or from a recording made before the rules existed.
The two are one definition: a test round-trips every field.

    12:00:01.123456 udp 127.0.0.1:45678 > 127.0.0.153:53 query id 4660 big.test. A
        flags RD pid 567 (getent)
    12:00:01.124001 udp 127.0.0.153:53 > 127.0.0.1:45678 answer id 4660 big.test. A
        NOERROR flags QR,AA,TC,RD answers 0 latency 0.9ms pid 567 (getent)
    12:00:02.000000 icmp 127.0.0.153 > 127.0.0.1 port-unreachable
        udp 127.0.0.1:45678 > 127.0.0.153:53

(each record is one line; cut here to fit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

QUERY, ANSWER = "query", "answer"


@dataclass(frozen=True)
class DnsRecord:
    clock: float  # seconds since midnight (wall clock, the packet's capture time)
    transport: str  # udp or tcp
    src: str  # addr:port ([v6]:port)
    dst: str
    kind: str  # QUERY or ANSWER
    ident: int
    name: str  # as dnspython writes it, with the final dot
    qtype: str  # A, AAAA, ...
    rcode: str | None = None  # answers only: NOERROR, NXDOMAIN, ...
    flags: tuple[str, ...] = ()  # of QR AA TC RD RA
    answers: int | None = None  # answers only
    latency_ms: float | None = None  # answers only, from its query when seen
    pid: int | None = None  # the client process, when it could be known
    command: str = ""  # its name
    outside: bool = False  # the client is not the target or one of its descendants

    @property
    def client(self) -> str:
        return self.src if self.kind == QUERY else self.dst

    @property
    def server(self) -> str:
        return self.dst if self.kind == QUERY else self.src

    @property
    def truncated(self) -> bool:
        return "TC" in self.flags


@dataclass(frozen=True)
class IcmpUnreachable:
    clock: float
    src: str  # who said unreachable
    dst: str
    transport: str  # of the packet it refers to
    original_src: str  # addr:port of the packet that was refused
    original_dst: str


def clock_text(clock: float) -> str:
    micros = round(clock * 1e6)
    seconds, micros = divmod(micros, 1_000_000)
    hours, rest = divmod(seconds, 3600)
    return f"{hours % 24:02d}:{rest // 60:02d}:{rest % 60:02d}.{micros:06d}"


def format_line(record: DnsRecord) -> str:
    parts = [clock_text(record.clock), record.transport, record.src, ">", record.dst,
             record.kind, "id", str(record.ident), record.name or ".", record.qtype or "?"]
    if record.kind == ANSWER:
        parts.append(record.rcode or "?")
    parts += ["flags", ",".join(record.flags) or "-"]
    if record.kind == ANSWER:
        parts += ["answers", str(record.answers or 0)]
        parts += ["latency", f"{record.latency_ms:.1f}ms"] if record.latency_ms is not None \
            else ["no-query-seen"]
    parts += ["pid", str(record.pid) if record.pid is not None else "-"]
    if record.command:
        parts.append(f"({record.command})")
    if record.outside:
        parts.append("outside")
    return " ".join(parts)


def format_icmp(record: IcmpUnreachable) -> str:
    return (f"{clock_text(record.clock)} icmp {record.src} > {record.dst} port-unreachable "
            f"{record.transport} {record.original_src} > {record.original_dst}")


_CLOCK = r"(?P<clock>\d\d):(?P<min>\d\d):(?P<sec>\d\d\.\d{6})"
_LINE = re.compile(
    _CLOCK + r" (?P<transport>udp|tcp) (?P<src>\S+) > (?P<dst>\S+) (?P<kind>query|answer) "
    r"id (?P<ident>\d+) (?P<name>\S+) (?P<qtype>\S+)(?: (?P<rcode>[A-Z0-9]+))? "
    r"flags (?P<flags>[A-Z,]+|-)(?: answers (?P<answers>\d+))?"
    r"(?: latency (?P<latency>\d+(?:\.\d+)?)ms| no-query-seen)? "
    r"pid (?P<pid>\d+|-)(?: \((?P<command>[^)]*)\))?(?P<outside> outside)?$")
_ICMP = re.compile(
    _CLOCK + r" icmp (?P<src>\S+) > (?P<dst>\S+) port-unreachable (?P<transport>udp|tcp) "
    r"(?P<osrc>\S+) > (?P<odst>\S+)$")


def _clock(match: re.Match[str]) -> float:
    return int(match["clock"]) * 3600 + int(match["min"]) * 60 + float(match["sec"])


def parse_line(line: str) -> DnsRecord | IcmpUnreachable | None:
    """The record a @dns line stands for; None for any other line (a notice, a title)."""
    line = line.rstrip()
    match = _LINE.match(line)
    if match:
        flags = () if match["flags"] == "-" else tuple(match["flags"].split(","))
        return DnsRecord(
            clock=_clock(match), transport=match["transport"], src=match["src"],
            dst=match["dst"], kind=match["kind"], ident=int(match["ident"]),
            name=match["name"], qtype=match["qtype"], rcode=match["rcode"], flags=flags,
            answers=int(match["answers"]) if match["answers"] is not None else None,
            latency_ms=float(match["latency"]) if match["latency"] is not None else None,
            pid=int(match["pid"]) if match["pid"] != "-" else None,
            command=match["command"] or "", outside=bool(match["outside"]))
    match = _ICMP.match(line)
    if match:
        return IcmpUnreachable(_clock(match), match["src"], match["dst"], match["transport"],
                               match["osrc"], match["odst"])
    return None


def split_address(address: str) -> tuple[str, int | None]:
    """"127.0.0.1:53" -> ("127.0.0.1", 53); "[::1]:53" -> ("::1", 53)."""
    host, _, port = address.rpartition(":")
    if not host:
        return address, None
    return host.strip("[]"), int(port) if port.isdigit() else None
