#!/usr/bin/env python3
"""A tiny authoritative DNS server for the examples, standard library only.

It serves the zone `test.` over UDP and TCP on one address and port:

    small.test   A     192.0.2.1                      (one record)
    big.test     A     198.51.100.1 ... 198.51.100.100 (100 records, 1.6 KB)
    *.test       AAAA  no answers (NOERROR, "no data")
    anything else      NXDOMAIN

The answer for big.test does not fit in a UDP reply (512 bytes, or the size
a client advertises in an EDNS0 OPT record, 1232 for dig), so over UDP it is
sent truncated, with the TC bit set and no answers, and the client retries
over TCP, where it gets all 100 records. That retry is what the examples
show in strace and tcpdump.

Usage: dns_server.py [--address 127.0.0.153] [--port 53] [--netns /run/netns/NAME]

With --netns it first enters that network namespace (setns(2), as Docker's
daemon does to serve a container's embedded DNS on 127.0.0.11) and listens
there, while the rest of the process stays where it was started.

When both sockets are bound it prints one line, `ready ADDRESS PORT pid PID`,
so scripts can wait for it. SIGTERM or SIGINT stops it. Serve only on the
loopback: it answers anyone who asks.
"""

from __future__ import annotations

import argparse
import ctypes
import ipaddress
import os
import signal
import socketserver
import struct
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass

# Documentation addresses (RFC 5737): they never lead anywhere real.
RECORDS: dict[str, list[str]] = {
    "small.test": ["192.0.2.1"],
    "big.test": [f"198.51.100.{n}" for n in range(1, 101)],
}
TTL = 60

TYPE_A, TYPE_OPT, CLASS_IN = 1, 41, 1
RCODE_NOERROR, RCODE_FORMERR, RCODE_NXDOMAIN, RCODE_NOTIMP = 0, 1, 3, 4
FLAG_QR, FLAG_AA, FLAG_TC, FLAG_RD = 0x8000, 0x0400, 0x0200, 0x0100
OPCODE_MASK, OPCODE_QUERY = 0x7800, 0

# RFC 1035: a UDP reply without EDNS0 is at most 512 bytes.
CLASSIC_UDP_LIMIT = 512
# What we advertise in our own OPT record: the DNS flag day 2020 value.
OUR_UDP_PAYLOAD = 1232
# A pointer to the question's name, which always sits at offset 12.
NAME_POINTER = b"\xc0\x0c"


class FormatError(ValueError):
    """The message is not a DNS query we can parse."""


@dataclass
class Query:
    ident: int
    flags: int
    name: str              # lower case, no trailing dot
    qtype: int
    qclass: int
    question: bytes        # the question section exactly as received
    udp_payload: int | None  # from an EDNS0 OPT record, if the client sent one


# ---------------------------------------------------------------- parsing


def _read_name(message: bytes, offset: int) -> tuple[str, int]:
    """Read an uncompressed name (queries never need compression)."""
    labels = []
    while True:
        if offset >= len(message):
            raise FormatError("name runs past the end of the message")
        length = message[offset]
        offset += 1
        if length == 0:
            return ".".join(labels), offset
        if length > 63:
            raise FormatError("compressed or oversized label in a question")
        labels.append(message[offset:offset + length].decode("ascii", "replace"))
        offset += length


def _find_udp_payload(message: bytes, offset: int, additional: int) -> int | None:
    """The UDP payload size from an OPT record in the additional section."""
    for _ in range(additional):
        _, offset = _read_name(message, offset)
        if offset + 10 > len(message):
            raise FormatError("additional record runs past the end")
        rtype, rclass, _ttl, rdlength = struct.unpack_from("!HHIH", message, offset)
        offset += 10 + rdlength
        if rtype == TYPE_OPT:
            return rclass  # an OPT record's CLASS field is the payload size
    return None


def parse_query(message: bytes) -> Query:
    if len(message) < 12:
        raise FormatError("shorter than a DNS header")
    ident, flags, qdcount, ancount, nscount, arcount = struct.unpack_from("!6H", message)
    if flags & FLAG_QR or qdcount != 1 or ancount or nscount:
        raise FormatError("not a query with exactly one question")
    name, offset = _read_name(message, 12)
    if offset + 4 > len(message):
        raise FormatError("question runs past the end")
    qtype, qclass = struct.unpack_from("!HH", message, offset)
    question = message[12:offset + 4]
    payload = _find_udp_payload(message, offset + 4, arcount)
    return Query(ident, flags, name.lower().rstrip("."), qtype, qclass, question, payload)


# ---------------------------------------------------------------- answering


def _a_record(address: str) -> bytes:
    return NAME_POINTER + struct.pack("!HHIH", TYPE_A, CLASS_IN, TTL, 4) + \
        ipaddress.IPv4Address(address).packed


def _opt_record() -> bytes:
    # Root name, type OPT, our payload size, extended rcode/version/flags 0, no options.
    return b"\x00" + struct.pack("!HHIH", TYPE_OPT, OUR_UDP_PAYLOAD, 0, 0)


def _lookup(query: Query) -> tuple[int, list[bytes]]:
    """(rcode, answer records) for a query, by the zone above."""
    if (query.flags & OPCODE_MASK) != OPCODE_QUERY:
        return RCODE_NOTIMP, []
    addresses = RECORDS.get(query.name)
    if addresses is None:
        return RCODE_NXDOMAIN, []
    if query.qtype == TYPE_A and query.qclass == CLASS_IN:
        return RCODE_NOERROR, [_a_record(a) for a in addresses]
    return RCODE_NOERROR, []  # the name exists, but has no data of that type


def _message(query: Query, rcode: int, answers: list[bytes], truncated: bool = False) -> bytes:
    flags = FLAG_QR | FLAG_AA | (query.flags & (OPCODE_MASK | FLAG_RD)) | rcode
    if truncated:
        flags |= FLAG_TC
    # RFC 6891: answer an EDNS0 query with an OPT record of our own.
    extra = [_opt_record()] if query.udp_payload is not None else []
    header = struct.pack("!6H", query.ident, flags, 1, len(answers), 0, len(extra))
    return header + query.question + b"".join(answers) + b"".join(extra)


def udp_limit(query: Query) -> int:
    """Largest reply the client accepts over UDP."""
    if query.udp_payload is None:
        return CLASSIC_UDP_LIMIT
    return max(CLASSIC_UDP_LIMIT, query.udp_payload)


def answer(message: bytes, over_udp: bool) -> bytes | None:
    """The reply to one DNS message; None when it is too broken to answer."""
    try:
        query = parse_query(message)
    except FormatError:
        if len(message) < 12:
            return None
        ident, flags = struct.unpack_from("!HH", message)
        return struct.pack("!6H", ident, FLAG_QR | (flags & OPCODE_MASK) | RCODE_FORMERR,
                           0, 0, 0, 0)
    rcode, answers = _lookup(query)
    reply = _message(query, rcode, answers)
    if over_udp and len(reply) > udp_limit(query):
        # Like BIND: no partial answer set, just the TC bit, so the client retries over TCP.
        reply = _message(query, rcode, [], truncated=True)
    return reply


# ---------------------------------------------------------------- serving


class UDPHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        reply = answer(data, over_udp=True)
        if reply is not None:
            sock.sendto(reply, self.client_address)


class TCPHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        # RFC 7766: each message is prefixed with its length; a client may send several.
        while True:
            prefix = self.rfile.read(2)
            if len(prefix) < 2:
                return
            (length,) = struct.unpack("!H", prefix)
            message = self.rfile.read(length)
            if len(message) < length:
                return
            reply = answer(message, over_udp=False)
            if reply is None:
                return
            self.wfile.write(struct.pack("!H", len(reply)) + reply)


class UDPServer(socketserver.ThreadingUDPServer):
    # No SO_REUSEADDR here: for UDP it would let a second server share the port.
    daemon_threads = True


class TCPServer(socketserver.ThreadingTCPServer):
    # Tests restart the server on the same address while old connections sit in TIME_WAIT.
    allow_reuse_address = True
    daemon_threads = True


def bind(address: str, port: int) -> tuple[UDPServer, TCPServer]:
    """Bind UDP first; with port 0 the TCP socket takes the port the kernel gave UDP."""
    udp = UDPServer((address, port), UDPHandler)
    try:
        tcp = TCPServer((address, udp.server_address[1]), TCPHandler)
    except OSError:
        udp.server_close()
        raise
    return udp, tcp


CLONE_NEWNET = 0x40000000  # linux/sched.h; os.setns only came with Python 3.12


def enter_network_namespace(path: str) -> None:
    """setns(2) into the network namespace at `path` (e.g. /run/netns/NAME):
    sockets made after it live there."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), path)
    finally:
        os.close(fd)


def serve(address: str, port: int, netns: str | None = None) -> int:
    # Block the stop signals before any thread starts, so that only sigwait sees them.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    if netns is not None:
        try:
            enter_network_namespace(netns)
        except OSError as error:
            print(f"dns_server.py: cannot enter the network namespace {netns}: "
                  f"{error.strerror}", file=sys.stderr)
            return 1
        print(f"entered network namespace {os.readlink('/proc/thread-self/ns/net')} ({netns})",
              flush=True)
    try:
        udp, tcp = bind(address, port)
    except OSError as error:
        print(f"dns_server.py: cannot listen on {address} port {port}: {error.strerror}",
              file=sys.stderr)
        return 1
    # A short poll interval only so that shutdown() below returns quickly.
    threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True)
               for s in (udp, tcp)]
    for thread in threads:
        thread.start()
    real_port = udp.server_address[1]
    print(f"ready {address} {real_port} pid {os.getpid()}", flush=True)
    signal.sigwait(stop_signals)
    for server in (udp, tcp):
        server.shutdown()
        server.server_close()
    return 0


def _loopback(text: str) -> str:
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IPv4 address: {text!r}") from None
    if not address.is_loopback:
        raise argparse.ArgumentTypeError(
            f"{text} is not a loopback address (127.0.0.0/8): this server answers anyone")
    return text


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is out of range (0 to 65535)")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Tiny authoritative DNS server for the zone test. (UDP and TCP). "
                    "big.test has 100 A records, so over UDP its answer is truncated.")
    parser.add_argument("--address", type=_loopback, default="127.0.0.153",
                        help="loopback address to listen on (default: 127.0.0.153)")
    parser.add_argument("--port", type=_port, default=53,
                        help="UDP and TCP port (default: 53; 0 picks a free one)")
    parser.add_argument("--netns", metavar="PATH",
                        help="enter this network namespace (setns) before listening, "
                             "e.g. /run/netns/NAME")
    options = parser.parse_args(argv)
    return serve(options.address, options.port, options.netns)


if __name__ == "__main__":
    sys.exit(main())
