"""Rules over the @dns pane's records: truncation and its retry, error rcodes,
queries left unanswered, ICMP refusals, unexpected servers and clients."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from autotrace.findings.dnsrecord import (
    ANSWER,
    QUERY,
    DnsRecord,
    IcmpUnreachable,
    parse_line,
    split_address,
)
from autotrace.findings.engine import PaneInfo, Rules
from autotrace.findings.model import ERROR, INFO, WARNING, Evidence, Finding

RETRY_WITHIN = 1.0  # seconds: a resolver that retries over TCP does so at once
ERROR_RCODES = {
    "NXDOMAIN": "the name does not exist",
    "SERVFAIL": "the server failed to answer",
    "REFUSED": "the server refused to answer",
}
# Loopback resolvers a machine ships with: what each one is.
WELL_KNOWN = {
    "127.0.0.11": "Docker's embedded DNS server",
    "127.0.0.53": "the systemd-resolved stub resolver",
    "127.0.0.54": "systemd-resolved's proxy stub",
    "127.0.1.1": "a dnsmasq (NetworkManager, Debian/Ubuntu's hostname line)",
}
DNS_PORT = 53


@dataclass
class _Pending:
    """A query waiting for its answer, or a truncated answer for its TCP retry."""

    record: DnsRecord
    evidence: Evidence
    deadline: float


class DnsRules(Rules):
    trigger = re.compile(r" (?:query|answer) id | port-unreachable ")
    literals = (" id ", " port-unreachable ")

    def __init__(self, engine) -> None:  # FindingsEngine; untyped to keep the import one-way
        super().__init__(engine)
        self.queries: dict[tuple[str, str, int], _Pending] = {}  # (transport, client, id)
        self.truncated: list[_Pending] = []

    def line(self, pane: PaneInfo, t: float, text: str) -> None:
        if not text[:1].isdigit():
            return  # a title or a notice, not a record
        record = parse_line(text)
        evidence = Evidence(pane.index, t, text)
        if isinstance(record, IcmpUnreachable):
            self.icmp(record, evidence)
        elif isinstance(record, DnsRecord):
            if record.kind == QUERY:
                self.query(record, evidence, t)
            elif record.kind == ANSWER:
                self.answer(record, evidence, t)

    # ------------------------------------------------------------ queries

    def query(self, record: DnsRecord, evidence: Evidence, t: float) -> None:
        timeout = self.engine.resolver.timeout
        key = (record.transport, record.client, record.ident)
        self.queries.pop(key, None)  # asked again: its deadline starts again, in order
        self.queries[key] = _Pending(record, evidence, t + timeout)
        if record.transport == "tcp":
            for waiting in list(self.truncated):
                if (waiting.record.name, waiting.record.qtype) == (record.name, record.qtype):
                    self.truncated.remove(waiting)
                    self.retried(waiting, record, evidence)
        self.server(record, evidence)
        if record.outside and record.pid is not None:
            who = f"pid {record.pid}" + (f" ({record.command})" if record.command else "")
            self.engine.report(Finding(
                t, "dns.other-client", WARNING,
                f"DNS query from {who}, not the traced process or its children",
                f"it asked {record.server} for {record.name} {record.qtype}", (evidence,)),
                once=str(record.pid))

    def server(self, record: DnsRecord, evidence: Evidence) -> None:
        host, port = split_address(record.server)
        what = []
        if host in WELL_KNOWN:
            what.append(WELL_KNOWN[host])
        elif _is_loopback(host):
            what.append("a DNS server on the loopback")
        if port is not None and port != DNS_PORT:
            what.append(f"a non-standard port ({port})")
        resolver = self.engine.resolver
        if resolver.seen and resolver.nameservers and host not in resolver.nameservers:
            what.append(f"not a nameserver of resolv.conf ({', '.join(resolver.nameservers)})")
        if what:
            self.engine.report(Finding(
                evidence.t, "dns.server", WARNING,
                f"DNS queries go to {record.server}: {'; '.join(what)}",
                f"first: {record.name} {record.qtype} from {record.client}", (evidence,)),
                once=record.server)

    # ------------------------------------------------------------ answers

    def answer(self, record: DnsRecord, evidence: Evidence, t: float) -> None:
        query = self.queries.pop((record.transport, record.client, record.ident), None)
        proof = (query.evidence, evidence) if query else (evidence,)
        if record.truncated:
            self.truncated.append(_Pending(record, evidence, t + RETRY_WITHIN))
        rcode = record.rcode or ""
        if rcode in ERROR_RCODES:
            search = self.search_expansion(record.name)
            if rcode == "NXDOMAIN" and search:
                self.engine.report(Finding(
                    t, "dns.search-nxdomain", INFO,
                    f"NXDOMAIN for {record.name} {record.qtype}: a search-list try "
                    f"(search {search})", "", proof))
                return
            self.engine.report(Finding(
                t, f"dns.{rcode.lower()}", ERROR,
                f"{rcode} for {record.name} {record.qtype} from {record.server}: "
                f"{ERROR_RCODES[rcode]}", "", proof))

    def search_expansion(self, name: str) -> str | None:
        """The search domain NAME ends with, when resolv.conf lists one."""
        bare = name.rstrip(".").lower()
        for domain in self.engine.resolver.search:
            if bare.endswith("." + domain.rstrip(".").lower()):
                return domain
        return None

    def retried(self, waiting: _Pending, query: DnsRecord, evidence: Evidence) -> None:
        after = (evidence.t - waiting.evidence.t) * 1000
        self.engine.report(Finding(
            waiting.evidence.t, "dns.truncated-retried", INFO,
            f"truncated answer (TC) for {waiting.record.name} {waiting.record.qtype}; "
            f"retried over TCP {after:.0f} ms later", "", (waiting.evidence, evidence)))

    def icmp(self, record: IcmpUnreachable, evidence: Evidence) -> None:
        # The refused query has its answer: this. It is not "unanswered" too.
        for key in [k for k in self.queries if k[1] == record.original_src]:
            del self.queries[key]
        self.engine.report(Finding(
            evidence.t, "dns.icmp-unreachable", ERROR,
            f"ICMP port unreachable for a DNS query to {record.original_dst}: "
            "nothing listens there", f"{record.src} refused {record.transport} from "
            f"{record.original_src}", (evidence,)))

    # ------------------------------------------------------------ deadlines

    def tick(self, t: float) -> None:
        while self.truncated and self.truncated[0].deadline <= t:
            waiting = self.truncated.pop(0)
            self.engine.report(Finding(
                waiting.evidence.t, "dns.truncated-no-retry", ERROR,
                f"truncated answer (TC) for {waiting.record.name} {waiting.record.qtype} "
                f"and no TCP retry within {RETRY_WITHIN:.0f} s: the client got no answer",
                "a resolver that ignores TC (musl before 1.2.4, dig +ignore) returns nothing",
                (waiting.evidence,)))
        # Queries are kept in the order they were asked, so their deadlines come
        # in order too: only the oldest are looked at, however many wait.
        while self.queries:
            key, pending = next(iter(self.queries.items()))
            if pending.deadline > t:
                break
            del self.queries[key]
            timeout = pending.deadline - pending.evidence.t
            self.engine.report(Finding(
                pending.evidence.t, "dns.no-answer", ERROR,
                f"no answer for {pending.record.name} {pending.record.qtype} from "
                f"{pending.record.server} within {timeout:g} s (the resolver's timeout)",
                "", (pending.evidence,)))

    def end(self, t: float) -> None:
        # A query asked just before the end is not unanswered: the session stopped.
        self.queries = {key: pending for key, pending in self.queries.items()
                        if pending.deadline <= t}
        self.tick(t)
        self.truncated = [w for w in self.truncated if w.deadline > t]
        for waiting in self.truncated:  # the end came within the second: judged as is
            waiting.deadline = t
        self.tick(t)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
