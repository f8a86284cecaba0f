"""Each findings rule over crafted inputs: DNS packets built with dnspython and
decoded as the @dns probe decodes them, strace lines, tcpdump lines, resolver frames."""

from __future__ import annotations

import ipaddress
import struct

import dns.flags
import dns.message
import dns.rcode
import dns.rrset

from autotrace.events import MARKER, OUTPUT, Event
from autotrace.findings.dnsrecord import DnsRecord, format_line, parse_line
from autotrace.findings.engine import PaneInfo, findings_of
from autotrace.findings.model import ERROR, INFO, WARNING, Finding
from autotrace.live.dns_capture import Decoder, parse_ports
from autotrace.live.pcap import Packet

MAIN_PID = 1000
PANES = {0: PaneInfo(0, "getent hosts big.test", "main", MAIN_PID),
         1: PaneInfo(1, "@dns", "tracer", MAIN_PID),
         2: PaneInfo(2, "strace -f -tt -p PID", "tracer", MAIN_PID),
         3: PaneInfo(3, "tcpdump -l -n -i any", "tracer", MAIN_PID),
         4: PaneInfo(4, "@resolv", "probe", MAIN_PID)}
CLIENT, SERVER = "127.0.0.1", "127.0.0.153"


def ipv4_udp(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return (struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0)
            + ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed + udp)


def ipv4_tcp(src: str, sport: int, dst: str, dport: int, payload: bytes, flags: int = 0x18
             ) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 0, 0, 5 << 4, flags, 65535, 0, 0) + payload
    return (struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0)
            + ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed + tcp)


class Wire:
    """DNS exchanges turned into @dns lines at session times, as the probe prints them."""

    def __init__(self) -> None:
        self.decoder = Decoder(MAIN_PID, [53, 10053], find_pid=False)
        self.events: list[Event] = []

    def send(self, t: float, ip: bytes) -> list[str]:
        lines = self.decoder.lines(Packet(1_700_000_000 + t, ip, False))
        self.events += [Event(t, 1, OUTPUT, line + "\r\n") for line in lines]
        return lines

    def exchange(self, t: float, name: str, *, tc: bool = False, rcode: int = 0,
                 answers: int = 1, server: str = SERVER, port: int = 53, ident: int = 7,
                 answer: bool = True, transport: str = "udp") -> None:
        query = dns.message.make_query(name, "A", id=ident)
        reply = dns.message.make_response(query)
        reply.set_rcode(rcode)
        if tc:
            reply.flags |= dns.flags.TC
        for n in range(answers if not tc else 0):
            reply.answer.append(dns.rrset.from_text(name + ".", 60, "IN", "A", f"192.0.2.{n + 1}"))
        if transport == "udp":
            self.send(t, ipv4_udp(CLIENT, 40000 + ident, server, port, query.to_wire()))
            if answer:
                self.send(t + 0.001, ipv4_udp(server, port, CLIENT, 40000 + ident,
                                              reply.to_wire()))
        else:
            wire = query.to_wire()
            self.send(t, ipv4_tcp(CLIENT, 41000 + ident, server, port, b"", flags=0x02))
            self.send(t, ipv4_tcp(CLIENT, 41000 + ident, server, port,
                                  struct.pack("!H", len(wire)) + wire))
            wire = reply.to_wire()
            self.send(t + 0.002, ipv4_tcp(server, port, CLIENT, 41000 + ident,
                                          struct.pack("!H", len(wire)) + wire))

    def findings(self, end: float | None = None, extra: list[Event] = ()) -> list[Finding]:
        events = sorted([*self.events, *extra], key=lambda e: e.t)
        if end is not None:
            events.append(Event(end, 0, MARKER, "end"))
        return findings_of(events, PANES.get)


def rules(findings: list[Finding]) -> list[str]:
    return [f.rule for f in findings]


# --- the @dns line: one definition both ways ---------------------------------------


def test_a_dns_line_reads_back_as_the_record_it_was_made_from():
    record = DnsRecord(3723.000042, "tcp", "[::1]:5353", "[::1]:40000", "answer", 4660,
                       "big.test.", "AAAA", "SERVFAIL", ("QR", "TC", "RA"), 3, 12.5, 4242,
                       "getent", True)
    assert parse_line(format_line(record)) == record
    query = DnsRecord(1.5, "udp", "10.0.0.1:1234", "10.0.0.2:53", "query", 1, "a.", "A")
    assert parse_line(format_line(query)) == query


def test_ports_of_the_probe():
    assert parse_ports("@dns") == [53]
    assert parse_ports("@dns:10053,5353") == [53, 10053, 5353]


# --- DNS rules, over packets ------------------------------------------------------------


def test_truncated_answer_with_a_tcp_retry_is_told_as_information():
    wire = Wire()
    wire.exchange(1.0, "big.test", tc=True, ident=1)
    wire.exchange(1.02, "big.test", ident=2, answers=100, transport="tcp")
    found = wire.findings(end=5.0)
    retried = [f for f in found if f.rule == "dns.truncated-retried"]
    assert len(retried) == 1 and retried[0].severity == INFO
    assert "TC" in retried[0].evidence[0].line and " tcp " in retried[0].evidence[1].line
    assert "dns.truncated-no-retry" not in rules(found)


def test_truncated_answer_without_a_retry_is_named_as_such():
    wire = Wire()
    wire.exchange(1.0, "big.test", tc=True)
    found = wire.findings(extra=[Event(2.5, 0, OUTPUT, "later\r\n")])
    [no_retry] = [f for f in found if f.rule == "dns.truncated-no-retry"]
    assert no_retry.severity == ERROR and "no TCP retry" in no_retry.title
    assert no_retry.t == 1.001 and no_retry.evidence[0].pane == 1


def test_a_tcp_retry_later_than_a_second_does_not_count():
    wire = Wire()
    wire.exchange(1.0, "big.test", tc=True, ident=1)
    wire.exchange(2.5, "big.test", ident=2, transport="tcp")
    assert "dns.truncated-no-retry" in rules(wire.findings(end=3.0))


def test_error_rcodes_are_errors_with_query_and_answer_as_evidence():
    wire = Wire()
    wire.exchange(1.0, "nope.test", rcode=dns.rcode.NXDOMAIN, answers=0, ident=1)
    wire.exchange(1.1, "broken.test", rcode=dns.rcode.SERVFAIL, answers=0, ident=2)
    wire.exchange(1.2, "closed.test", rcode=dns.rcode.REFUSED, answers=0, ident=3)
    found = [f for f in wire.findings(end=2.0) if f.severity == ERROR]
    assert rules(found) == ["dns.nxdomain", "dns.servfail", "dns.refused"]
    assert all(len(f.evidence) == 2 for f in found)
    assert "nope.test" in found[0].title


def test_nxdomain_for_a_search_list_try_is_no_error():
    wire = Wire()
    frame = "\x1b[H\x1b[2J@resolv  pid 1000: x\r\n# /etc/resolv.conf\r\nsearch corp.example\r\n"
    wire.exchange(1.0, "www.example.corp.example", rcode=dns.rcode.NXDOMAIN, answers=0)
    found = wire.findings(end=2.0, extra=[Event(0.5, 4, OUTPUT, frame)])
    assert rules(found).count("dns.search-nxdomain") == 1
    assert not [f for f in found if f.severity == ERROR]


def test_a_query_with_no_answer_within_the_resolvers_timeout():
    wire = Wire()
    frame = ("\x1b[H\x1b[2J@resolv  pid 1000: x\r\n# /etc/resolv.conf\r\n"
             f"nameserver {SERVER}\r\noptions timeout:2 attempts:1\r\n")
    wire.exchange(1.0, "slow.test", answer=False)
    quiet = [Event(0.5, 4, OUTPUT, frame), Event(2.9, 0, OUTPUT, "x\r\n")]
    assert "dns.no-answer" not in rules(wire.findings(extra=quiet))  # 1.9 s: not yet
    later = [*quiet, Event(3.1, 0, OUTPUT, "x\r\n")]
    [late] = [f for f in wire.findings(extra=later) if f.rule == "dns.no-answer"]
    assert late.severity == ERROR and "within 2 s" in late.title and late.t == 1.0


def test_icmp_port_unreachable_for_a_dns_query():
    wire = Wire()
    query = dns.message.make_query("x.test", "A").to_wire()
    refused = ipv4_udp(CLIENT, 40001, CLIENT, 10053, query)
    icmp = struct.pack("!BBHI", 3, 3, 0, 0) + refused[:28]
    ip = (struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(icmp), 0, 0, 64, 1, 0)
          + ipaddress.ip_address(CLIENT).packed * 2 + icmp)
    wire.send(1.0, refused)
    [line] = wire.send(1.0, ip)
    assert "port-unreachable" in line
    found = wire.findings(extra=[Event(9.0, 0, OUTPUT, "later\r\n")], end=10.0)
    assert "dns.icmp-unreachable" in rules(found)
    assert "dns.no-answer" not in rules(found)  # refused is its answer
    assert "127.0.0.1:10053" in next(f.title for f in found if f.rule == "dns.icmp-unreachable")


def test_unexpected_servers_are_named_once_each():
    wire = Wire()
    wire.exchange(1.0, "a.test", server="127.0.0.11", ident=1)
    wire.exchange(1.1, "b.test", server="127.0.0.11", ident=2)
    wire.exchange(1.2, "c.test", server="127.0.0.53", ident=3)
    wire.exchange(1.3, "d.test", server="127.0.1.1", ident=4)
    wire.exchange(1.4, "e.test", server="10.0.0.1", port=10053, ident=5)
    titles = [f.title for f in wire.findings(end=2.0) if f.rule == "dns.server"]
    assert len(titles) == 4
    assert "Docker's embedded DNS" in titles[0]
    assert "systemd-resolved" in titles[1]
    assert "dnsmasq" in titles[2]
    assert "non-standard port (10053)" in titles[3]
    assert all(f.severity == WARNING for f in wire.findings(end=2.0) if f.rule == "dns.server")


def test_a_query_from_outside_the_target_is_named():
    line = format_line(DnsRecord(10.0, "udp", "10.0.0.5:4000", "10.0.0.1:53", "query", 9,
                                 "a.test.", "A", pid=77, command="dockerd", outside=True))
    found = findings_of([Event(1.0, 1, OUTPUT, line + "\r\n")], PANES.get)
    assert [f.title for f in found if f.rule == "dns.other-client"] == \
        ["DNS query from pid 77 (dockerd), not the traced process or its children"]


def test_successful_lookups_make_no_error():
    wire = Wire()
    for n in range(200):
        wire.exchange(1.0 + n * 0.01, f"host{n}.test", ident=n + 1)
    assert not [f for f in wire.findings(end=10.0) if f.severity == ERROR]


# --- strace --------------------------------------------------------------------------


def strace_findings(*lines: str) -> list[Finding]:
    return findings_of([Event(1.0 + i / 10, 2, OUTPUT, line + "\n")
                        for i, line in enumerate(lines)], PANES.get)


def test_failed_calls_on_resolver_files():
    found = strace_findings(
        '12:00:00.000001 openat(AT_FDCWD, "/etc/resolv.conf", O_RDONLY|O_CLOEXEC) = -1 '
        'ENOENT (No such file or directory)',
        '[pid  1001] 12:00:00.000002 openat(AT_FDCWD, "/etc/hosts", O_RDONLY) = -1 EACCES '
        '(Permission denied)',
        '12:00:00.000003 openat(AT_FDCWD, "/etc/gai.conf", O_RDONLY) = -1 ENOENT (No such file)',
        '12:00:00.000004 openat(AT_FDCWD, "/etc/nsswitch.conf", O_RDONLY) = 3')
    assert [f.title for f in found] == [
        "openat of /etc/resolv.conf failed with ENOENT (the traced process)",
        "openat of /etc/hosts failed with EACCES (pid 1001)"]
    assert all(f.severity == ERROR and f.pane == 2 for f in found)


def test_refused_connect_even_when_split_by_another_process():
    found = strace_findings(
        '[pid  1002] 12:00:00.1 connect(3, {sa_family=AF_INET, sin_port=htons(10053), '
        'sin_addr=inet_addr("127.0.0.1")}, 16 <unfinished ...>',
        '[pid  1003] 12:00:00.2 read(4, "", 10) = 0',
        '[pid  1002] 12:00:00.3 <... connect resumed>) = -1 ECONNREFUSED (Connection refused)')
    [refused] = found
    assert refused.rule == "strace.refused"
    assert "127.0.0.1:10053" in refused.title and len(refused.evidence) == 2


def test_setns_names_the_namespace_it_enters():
    found = strace_findings(
        '12:00:00.1 openat(AT_FDCWD, "/proc/4242/ns/net", O_RDONLY) = 5',
        '12:00:00.2 setns(5, CLONE_NEWNET) = 0',
        '12:00:00.3 setns(6</proc/77/ns/mnt>, CLONE_NEWNS) = 0')
    assert [f.title for f in found] == [
        "the traced process entered network namespace /proc/4242/ns/net (setns)",
        "the traced process entered mount namespace /proc/77/ns/mnt (setns)"]


def test_port_53_from_a_process_other_than_the_target():
    connect = ('connect(7, {sa_family=AF_INET, sin_port=htons(53), '
               'sin_addr=inet_addr("10.0.0.1")}, 16) = 0')
    lines = [f"[pid  {MAIN_PID}] 12:00:00.1 {connect}", f"[pid  2000] 12:00:00.2 {connect}",
             f"[pid  2000] 12:00:00.3 {connect}"]
    assert strace_findings(*lines) == []  # the target and its children: its own lookups
    helper = {**PANES, 2: PaneInfo(2, "strace -f -tt -p 2000", "tracer", MAIN_PID)}
    found = findings_of([Event(1.0, 2, OUTPUT, "\n".join(lines[1:]) + "\n")], helper.get)
    [other] = found
    assert other.rule == "strace.other-process-dns" and "pid 2000" in other.title
    assert "10.0.0.1:53" in other.title and "not the target" in other.title


# --- tcpdump ---------------------------------------------------------------------------


def test_tcpdump_icmp_port_unreachable_for_dns():
    lines = ["12:00:00.1 lo    In  IP 127.0.0.1 > 127.0.0.1: ICMP 127.0.0.1 udp port 53 "
             "unreachable, length 64",
             "12:00:00.2 IP 127.0.0.1 > 127.0.0.1: ICMP 127.0.0.1 udp port 8080 unreachable, "
             "length 64"]
    found = findings_of([Event(1.0, 3, OUTPUT, "\n".join(lines) + "\n")], PANES.get)
    assert rules(found) == ["tcpdump.icmp-unreachable"]
    assert "127.0.0.1:53" in found[0].title


# --- resolver files --------------------------------------------------------------------


def frame(resolv: str, hosts: str = "127.0.0.1 localhost") -> str:
    body = f"@resolv  pid 1000: x\n# /etc/resolv.conf\n{resolv}\n\n# /etc/hosts\n{hosts}\n"
    return "\x1b[H\x1b[2J" + body.replace("\n", "\r\n")


def test_a_resolver_change_comes_with_its_diff():
    events = [Event(1.0, 4, OUTPUT, frame("nameserver 127.0.0.1")),
              Event(2.0, 4, OUTPUT, frame("nameserver 127.0.0.1")),
              Event(3.0, 4, OUTPUT, frame("nameserver 10.0.0.53"))]
    [changed] = findings_of(events, PANES.get)
    assert changed.rule == "resolver.changed" and changed.severity == WARNING
    assert changed.t == 3.0 and "/etc/resolv.conf" in changed.title
    assert "-nameserver 127.0.0.1" in changed.detail and "+nameserver 10.0.0.53" in changed.detail
    assert changed.evidence[0].t == 2.0


def test_findings_read_back_from_json():
    wire = Wire()
    wire.exchange(1.0, "big.test", tc=True)
    found = wire.findings(end=5.0)
    assert [Finding.from_json(f.to_json()) for f in found] == found
    assert Finding.from_json({"t": "x"}) is None and Finding.from_json([1]) is None


def test_a_packet_the_capture_cut_is_said_and_its_connection_not_decoded_as_garbage():
    """Beyond the snapshot length (a BIG TCP segment, say): framing a stream
    with a gap in it would decode the rest as nonsense."""
    decoder = Decoder(MAIN_PID, [53], find_pid=False)
    query = dns.message.make_query("big.test", "A", id=9).to_wire()
    framed = struct.pack("!H", len(query)) + query
    at = 1_700_000_000.0
    assert decoder.lines(Packet(at, ipv4_tcp(CLIENT, 41009, SERVER, 53, b"", 0x02), False)) == []
    said = decoder.lines(Packet(at, ipv4_tcp(CLIENT, 41009, SERVER, 53, framed[:20]), False,
                                cut=True))
    assert len(said) == 1 and "a packet cut by the capture" in said[0], said
    assert "the rest of this connection is not decoded" in said[0]
    assert f"tcp {CLIENT}:41009 > {SERVER}:53" in said[0]
    # The rest of that connection: nothing, not "not a DNS message".
    assert decoder.lines(Packet(at, ipv4_tcp(CLIENT, 41009, SERVER, 53, framed), False)) == []
    assert decoder.lines(Packet(at, ipv4_tcp(CLIENT, 41009, SERVER, 53, b"", 0x11), False)) == []
    # A new connection on the same ports is decoded again.
    decoder.lines(Packet(at, ipv4_tcp(CLIENT, 41009, SERVER, 53, b"", 0x02), False))
    again = decoder.lines(Packet(at, ipv4_tcp(CLIENT, 41009, SERVER, 53, framed), False))
    assert len(again) == 1 and " query id 9 big.test. A " in again[0], again
    # A cut datagram is said too, not decoded.
    udp = decoder.lines(Packet(at, ipv4_udp(CLIENT, 40009, SERVER, 53, query[:10]), False,
                               cut=True))
    assert len(udp) == 1 and "a packet cut by the capture" in udp[0]
    assert "rest of this connection" not in udp[0]
