"""Rules over tcpdump text: ICMP port unreachable for a DNS query."""

from __future__ import annotations

import re

from autotrace.findings.engine import PaneInfo, Rules
from autotrace.findings.model import ERROR, Evidence, Finding

# `12:00:00.1 IP 127.0.0.1 > 127.0.0.1: ICMP 127.0.0.153 udp port 53 unreachable, length 44`
UNREACHABLE = re.compile(r"ICMP6? (?P<host>\S+) (?P<proto>udp|tcp) port (?P<port>\S+) unreachable")
DNS_PORTS = {"53", "domain", "10053", "5353", "mdns"}


class TcpdumpRules(Rules):
    trigger = re.compile("unreachable")
    literals = ("unreachable",)

    def line(self, pane: PaneInfo, t: float, text: str) -> None:
        if "unreachable" not in text:
            return
        match = UNREACHABLE.search(text)
        if match is None or match["port"] not in DNS_PORTS:
            return
        target = f"{match['host']}:{match['port']}"
        self.engine.report(Finding(
            t, "tcpdump.icmp-unreachable", ERROR,
            f"ICMP port unreachable for a DNS query to {target}: nothing listens there",
            "", (Evidence(pane.index, t, text),)), once=f"{target}@{int(t)}")
