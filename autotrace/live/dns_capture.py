"""The @dns probe's process: DNS messages in the target's network namespace, one line each.

Run by the session in the @dns pane's pty as
`python -m autotrace.live.dns_capture --pid PID --port 53 --port 10053`. It
runs `tcpdump -w - -U` (entering the target's network namespace with
`nsenter -n`, as --netns does, when it is not ours), reads the pcap stream
(live/pcap.py), decodes each UDP datagram and TCP message with dnspython
and prints it through findings/dnsrecord.py, the form the rules read back.
tcpdump's own messages (a refused capture) reach the pane as they are, so
the session's hint for a refused tracer applies. The client's pid is found,
best effort, from the socket's local port: /proc/PID/net tables of the
namespace, then the /proc/*/fd link to that socket's inode.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import IO

from autotrace.findings.dnsrecord import (
    ANSWER,
    QUERY,
    DnsRecord,
    IcmpUnreachable,
    format_icmp,
    format_line,
)
from autotrace.live.pcap import Packet, PcapError, packets

PROTO_ICMP, PROTO_TCP, PROTO_UDP, PROTO_ICMPV6 = 1, 6, 17, 58
FLAG_NAMES = ("QR", "AA", "TC", "RD", "RA")
FLAG_BITS = {"QR": 0x8000, "AA": 0x0400, "TC": 0x0200, "RD": 0x0100, "RA": 0x0080}
MAX_TCP_BUFFER = 1 << 17  # a DNS message is at most 64 KiB plus its length
FULL_SCAN_EVERY = 0.5  # seconds: a scan of every process's descriptors, at most this often


# The kernel's ring, not our reading, decides what a loaded machine loses: in
# immediate mode libpcap gives it fixed frames of the snapshot length, so
# tcpdump's default (256 KiB) left 31 frames in 8 MiB, and a burst of 16
# queries while tcpdump was off the CPU lost the rest. The snapshot is what
# the largest packet needs, no more: lo's MTU is 64 KiB, and TCP on it sends
# IP packets of up to 65,536 bytes, plus -i any's 20-byte header (cut, a
# stream of large answers could not be decoded). Its frames take 128 KiB
# blocks; 16 MiB of them hold 256 packets, in 32 MiB of kernel memory.
SNAPSHOT_BYTES = 65600
RING_KIB = 16384
# On lo, -i any sees each packet twice, as sent and as received; with libpcap
# 1.10 (`ifindex`) the sent copy is left out in the kernel, so it takes no frame.
SKIP_SENT_ON_LO = " and not (outbound and ifindex 1)"  # lo is ifindex 1 in every namespace


def tcpdump_command(pid: int, ports: list[int], libpcap: tuple[int, int] = (1, 10)
                    ) -> list[str]:
    ports_filter = " or ".join(f"port {port}" for port in ports)
    wanted = f"(((udp or tcp) and ({ports_filter})) or icmp or icmp6)"
    if libpcap >= (1, 10):
        wanted += SKIP_SENT_ON_LO
    command = ["tcpdump", "-w", "-", "-U", "--immediate-mode", "-n",
               "-s", str(SNAPSHOT_BYTES), "-B", str(RING_KIB), "-i", "any", wanted]
    if _netns(pid) != _netns(os.getpid()):
        command = ["nsenter", "-t", str(pid), "-n", "--", *command]
    return command


def _undecoded_line(when: float, transport: str, src: str, dst: str, why: str) -> str:
    """A line for a packet that is no DNS message we could read (the rules skip it)."""
    return f"{time.strftime('%H:%M:%S', time.localtime(when))} {transport} {src} > {dst} {why}"


def _cut_line(when: float, transport: str, src: str, dst: str, stream: bool = False) -> str:
    rest = "; the rest of this connection is not decoded" if stream else ""
    return _undecoded_line(when, transport, src, dst, f"a packet cut by the capture "
                           f"(snapshot {SNAPSHOT_BYTES} bytes): not decoded{rest}")


def libpcap_version(tcpdump: str = "tcpdump") -> tuple[int, int]:
    """The libpcap tcpdump runs on, from `tcpdump --version`; (0, 0) if not known."""
    try:
        said = subprocess.run([tcpdump, "--version"], capture_output=True, text=True,
                              timeout=5, stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError):
        return (0, 0)
    found = re.search(r"libpcap version (\d+)\.(\d+)", said)
    return (int(found[1]), int(found[2])) if found else (0, 0)


def _netns(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return "?"


def _address(ip: bytes, port: int | None = None) -> str:
    host = str(ipaddress.ip_address(ip))
    if port is None:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def clock_of(epoch: float) -> float:
    """Seconds since local midnight, as strace -tt and tcpdump print the time."""
    local = time.localtime(epoch)
    return local.tm_hour * 3600 + local.tm_min * 60 + local.tm_sec + epoch % 1


class Decoder:
    """Packets in, @dns lines out; remembers queries (latency, pid) and TCP streams."""

    def __init__(self, target: int, ports: list[int], find_pid: bool = True) -> None:
        self.target = target
        self.ports = set(ports)
        self.find_pid = find_pid
        self.queries: dict[tuple[str, str, int], tuple[float, int | None, str, bool]] = {}
        self.streams: dict[tuple[str, str], bytes] = {}
        self.lost: set[tuple[str, str]] = set()  # connections a cut segment broke
        self.last_scan = 0.0

    def lines(self, packet: Packet) -> list[str]:
        if packet.outgoing:
            return []  # -i any shows a packet on lo twice: as sent and as received
        ip = packet.ip
        version = ip[0] >> 4 if ip else 0
        if version == 4 and len(ip) >= 20:
            header = (ip[0] & 0x0F) * 4
            proto, src, dst, payload = ip[9], ip[12:16], ip[16:20], ip[header:]
        elif version == 6 and len(ip) >= 40:
            proto, src, dst, payload = ip[6], ip[8:24], ip[24:40], ip[40:]
        else:
            return []
        if proto in (PROTO_ICMP, PROTO_ICMPV6):
            return self.icmp(packet.time, proto, src, dst, payload)
        if proto == PROTO_UDP and len(payload) >= 8:
            sport, dport = int.from_bytes(payload[0:2], "big"), int.from_bytes(payload[2:4], "big")
            if packet.cut:
                return [_cut_line(packet.time, "udp", _address(src, sport), _address(dst, dport))]
            return self.message(packet.time, "udp", _address(src, sport), _address(dst, dport),
                                payload[8:])
        if proto == PROTO_TCP and len(payload) >= 20:
            return self.tcp(packet.time, src, dst, payload, packet.cut)
        return []

    def tcp(self, when: float, src: bytes, dst: bytes, segment: bytes, cut: bool = False
            ) -> list[str]:
        sport, dport = int.from_bytes(segment[0:2], "big"), int.from_bytes(segment[2:4], "big")
        flags, offset = segment[13], (segment[12] >> 4) * 4
        key = (_address(src, sport), _address(dst, dport))
        if flags & 0x02:  # SYN: a new connection
            self.streams[key] = b""
            self.lost.discard(key)
        if key in self.lost or cut:
            # A stream with a gap cannot be framed again: said once, then
            # nothing more of it until it ends.
            said = [] if key in self.lost else [_cut_line(when, "tcp", *key, stream=True)]
            self.streams.pop(key, None)
            if flags & 0x05:
                self.lost.discard(key)
            elif len(self.lost) < 10000:
                self.lost.add(key)
            return said
        data = self.streams.get(key, b"") + segment[offset:]
        lines = []
        while len(data) >= 2 and len(data) >= 2 + int.from_bytes(data[:2], "big"):
            size = int.from_bytes(data[:2], "big")
            lines += self.message(when, "tcp", key[0], key[1], data[2:2 + size])
            data = data[2 + size:]
        if flags & 0x05:  # FIN or RST: nothing more of it
            self.streams.pop(key, None)
        else:
            self.streams[key] = data[-MAX_TCP_BUFFER:]
        return lines

    def message(self, when: float, transport: str, src: str, dst: str, wire: bytes) -> list[str]:
        import dns.exception
        import dns.message
        import dns.rcode
        import dns.rdatatype

        if not wire:
            return []
        try:
            message = dns.message.from_wire(wire, ignore_trailing=True)
        except (dns.exception.DNSException, ValueError, IndexError) as err:
            return [_undecoded_line(when, transport, src, dst,
                                    f"not a DNS message: {type(err).__name__}")]
        question = message.question[0] if message.question else None
        name = question.name.to_text() if question is not None else "."
        qtype = dns.rdatatype.to_text(question.rdtype) if question is not None else "?"
        flags = tuple(flag for flag in FLAG_NAMES if message.flags & FLAG_BITS[flag])
        is_answer = "QR" in flags
        client = dst if is_answer else src
        key = (transport, client, message.id)
        if not is_answer:
            pid, command, outside = self.client_of(transport, src)
            self.queries[key] = (when, pid, command, outside)
            if len(self.queries) > 10000:  # unanswered ones do not pile up for ever
                self.queries.pop(next(iter(self.queries)))
            record = DnsRecord(clock_of(when), transport, src, dst, QUERY, message.id, name,
                               qtype, flags=flags, pid=pid, command=command, outside=outside)
        else:
            asked = self.queries.pop(key, None)
            latency = (when - asked[0]) * 1000 if asked else None
            pid, command, outside = asked[1:] if asked else (None, "", False)
            record = DnsRecord(clock_of(when), transport, src, dst, ANSWER, message.id, name,
                               qtype, dns.rcode.to_text(message.rcode()), flags,
                               sum(len(rrset) for rrset in message.answer), latency,
                               pid, command, outside)
        return [format_line(record)]

    def icmp(self, when: float, proto: int, src: bytes, dst: bytes, payload: bytes) -> list[str]:
        # Port unreachable: ICMP type 3 code 3, ICMPv6 type 1 code 4; the packet
        # refused follows the 8-byte ICMP header.
        if len(payload) < 8 or (payload[0], payload[1]) not in ((3, 3), (1, 4)):
            return []
        inner = payload[8:]
        if proto == PROTO_ICMP and len(inner) >= 20:
            header = (inner[0] & 0x0F) * 4
            inner_proto, osrc, odst, ports = inner[9], inner[12:16], inner[16:20], inner[header:]
        elif proto == PROTO_ICMPV6 and len(inner) >= 40:
            inner_proto, osrc, odst, ports = inner[6], inner[8:24], inner[24:40], inner[40:]
        else:
            return []
        if inner_proto not in (PROTO_UDP, PROTO_TCP) or len(ports) < 4:
            return []
        sport, dport = int.from_bytes(ports[0:2], "big"), int.from_bytes(ports[2:4], "big")
        if dport not in self.ports:
            return []
        transport = "udp" if inner_proto == PROTO_UDP else "tcp"
        return [format_icmp(IcmpUnreachable(clock_of(when), _address(src), _address(dst),
                                            transport, _address(osrc, sport),
                                            _address(odst, dport)))]

    # ------------------------------------------------------------ whose socket

    def client_of(self, transport: str, address: str) -> tuple[int | None, str, bool]:
        """The process whose socket has local ADDRESS (pid, name, outside the target)."""
        if not self.find_pid:
            return None, "", False
        port = int(address.rpartition(":")[2])
        inode = socket_inode(self.target, transport, port)
        if not inode:
            return None, "", False
        # The target's own tree first (a few processes); the whole of /proc
        # (~30 ms for 125 processes) only when the socket is not theirs.
        pid = owner_of(inode, tree_of(self.target))
        if pid is None:
            now = time.monotonic()
            if now - self.last_scan < FULL_SCAN_EVERY:
                return None, "", False
            self.last_scan = now
            pid = owner_of(inode)
            if pid is None:
                return None, "", False
        return pid, command_name(pid), not descends_from(pid, self.target)


def socket_inode(target: int, transport: str, port: int) -> str | None:
    """The inode of the socket bound to local PORT in TARGET's network namespace."""
    hex_port = f":{port:04X}"
    for table in (transport, transport + "6"):
        try:
            with open(f"/proc/{target}/net/{table}", encoding="ascii") as f:
                next(f, None)
                for row in f:
                    fields = row.split()
                    if len(fields) > 9 and fields[1].endswith(hex_port) and fields[9] != "0":
                        return fields[9]
        except OSError:
            continue
    return None


def tree_of(pid: int) -> list[int]:
    """PID and its descendants, from /proc/PID/task/TID/children (no scan of /proc)."""
    found: list[int] = []
    queue = [pid]
    while queue and len(found) < 256:
        current = queue.pop(0)
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as f:
                    queue += [int(child) for child in f.read().split()]
        except (OSError, ValueError):
            continue
    return found


def owner_of(inode: str, pids: list[int] | None = None) -> int | None:
    """The process (of PIDS, default every one) with a descriptor on socket INODE."""
    link = f"socket:[{inode}]"
    if pids is None:
        pids = [int(entry.name) for entry in os.scandir("/proc") if entry.name.isdigit()]
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == link:
                    return pid
            except OSError:
                continue
    return None


def command_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return "".join(c for c in f.read().strip() if c.isprintable() and c not in "()")
    except OSError:
        return ""


def descends_from(pid: int, ancestor: int) -> bool:
    for _ in range(64):
        if pid == ancestor:
            return True
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                pid = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid <= 1:
            return False
    return False


def parse_ports(spec: str) -> list[int]:
    """"@dns" -> [53]; "@dns:10053,5353" -> [53, 10053, 5353]."""
    ports = [53]
    _, _, given = spec.strip().partition(":")
    for part in filter(None, given.split(",")):
        if not part.isdigit() or not 0 < int(part) < 65536:
            raise ValueError(f"@dns: {part!r} is not a port (say @dns:10053,5353)")
        if int(part) not in ports:
            ports.append(int(part))
    return ports


def probe_command(spec: str, pid: int) -> str:
    """The command line the session runs in a @dns pane."""
    import shlex

    ports = " ".join(f"--port {port}" for port in parse_ports(spec))
    return f"{shlex.quote(sys.executable)} -m autotrace.live.dns_capture --pid {pid} {ports}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="autotrace @dns")
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--port", type=int, action="append", default=[])
    args = parser.parse_args(argv)
    ports = args.port or [53]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    command = tcpdump_command(args.pid, ports, libpcap_version())
    # Said once tcpdump writes its stream: the pane's first output tells the
    # session it is ready, and the held main command must not start before.
    import dns.message  # noqa: F401  (0.3 s: before the first packet, not on it)

    # tcpdump's own lines wait until then too (the session takes a pane's first
    # output for "ready"), unless it ends first: a refusal then reaches the pane.
    said = threading.Event()
    held: list[str] = []

    def ready() -> None:
        print(f"@dns: ports {', '.join(map(str, ports))} in the network namespace of pid "
              f"{args.pid} ({_netns(args.pid)})", flush=True)
        said.set()
        for line in held:
            print(line, end="", flush=True)

    def forward(stream: IO[str]) -> None:
        for line in stream:
            if said.is_set():
                print(line, end="", flush=True)
            else:
                held.append(line)

    try:
        capture = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=False)
    except OSError as err:
        print(f"@dns: cannot run {command[0]}: {err.strerror}", flush=True)
        return 1
    import io

    errors = threading.Thread(target=forward, daemon=True, args=(
        io.TextIOWrapper(capture.stderr, errors="replace"),))  # type: ignore[arg-type]
    errors.start()
    decoder = Decoder(args.pid, ports)
    try:
        for packet in packets(capture.stdout, ready):  # type: ignore[arg-type]
            for line in decoder.lines(packet):
                print(line, flush=True)
    except PcapError as err:
        print(f"@dns: {err}", flush=True)
    except (KeyboardInterrupt, SystemExit, BrokenPipeError):
        pass
    finally:
        if capture.poll() is None:
            capture.terminate()
        code = capture.wait()
        errors.join(timeout=1)
        if not said.is_set():
            for line in held:
                print(line, end="", flush=True)
    return code if code > 0 else 0


if __name__ == "__main__":
    sys.exit(main())
