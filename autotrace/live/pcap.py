"""A small reader of the classic pcap format, as `tcpdump -w - -U` writes it.

Only what the @dns probe needs: the record stream, and for each packet its
time and its IP payload (v4 or v6) whatever the link layer of the capture
(`-i any` gives LINUX_SLL or LINUX_SLL2, an interface gives Ethernet, a
tunnel raw IP). Written here rather than taken from dpkt or scapy: about a
hundred lines against a large dependency, and the format has not changed
since 1998 (https://www.tcpdump.org/manpages/pcap-savefile.5.html).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import BinaryIO, NamedTuple

MAGIC_MICRO, MAGIC_NANO = 0xA1B2C3D4, 0xA1B23C4D
LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_RAW_OLD = 0, 1, 101, 12
LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_IPV4, LINKTYPE_IPV6 = 113, 276, 228, 229
ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN = 0x0800, 0x86DD, 0x8100
PACKET_OUTGOING = 4  # sll_pkttype: a packet we sent
ARPHRD_LOOPBACK = 772  # on lo, -i any shows each packet twice: sent, then received
MAX_RECORD = 1 << 18  # a record over 256 KiB is not a packet: the stream is broken


class PcapError(ValueError):
    """Not a pcap stream we can read."""


class Packet(NamedTuple):
    time: float  # seconds since the epoch
    ip: bytes  # from the IP header on
    outgoing: bool  # the sent copy of a packet on lo, which shows again as received
    cut: bool = False  # the capture kept less than the packet (its snapshot length)


def read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    """SIZE bytes, or None at the end of the stream (a torn tail is the end too)."""
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def packets(stream: BinaryIO, on_header: Callable[[], None] = lambda: None
            ) -> Iterator[Packet]:
    """Every IP packet of a pcap stream, as it comes; ON_HEADER once the stream has begun."""
    header = read_exactly(stream, 24)
    if header is None:
        return
    for order in ("<", ">"):
        magic = struct.unpack(order + "I", header[:4])[0]
        if magic in (MAGIC_MICRO, MAGIC_NANO):
            break
    else:
        raise PcapError(f"not a pcap stream (magic {header[:4].hex()})")
    fraction = 1e-9 if magic == MAGIC_NANO else 1e-6
    linktype = struct.unpack(order + "I", header[20:24])[0] & 0x0FFFFFFF
    record = struct.Struct(order + "IIII")
    on_header()
    while True:
        head = read_exactly(stream, 16)
        if head is None:
            return
        seconds, part, captured, original = record.unpack(head)
        if captured > MAX_RECORD:
            raise PcapError(f"a record of {captured} bytes: the stream is broken")
        data = read_exactly(stream, captured)
        if data is None:
            return
        found = ip_of(linktype, data)
        if found is not None:
            yield Packet(seconds + part * fraction, *found, captured < original)


def ip_of(linktype: int, data: bytes) -> tuple[bytes, bool] | None:
    """The IP packet in a link-layer frame, and whether it is an outgoing copy."""
    if linktype == LINKTYPE_LINUX_SLL2 and len(data) >= 20:
        ethertype, rest = int.from_bytes(data[0:2], "big"), data[20:]
        outgoing = data[10] == PACKET_OUTGOING and \
            int.from_bytes(data[8:10], "big") == ARPHRD_LOOPBACK
    elif linktype == LINKTYPE_LINUX_SLL and len(data) >= 16:
        ethertype, rest = int.from_bytes(data[14:16], "big"), data[16:]
        outgoing = int.from_bytes(data[0:2], "big") == PACKET_OUTGOING and \
            int.from_bytes(data[2:4], "big") == ARPHRD_LOOPBACK
    elif linktype == LINKTYPE_ETHERNET and len(data) >= 14:
        ethertype, outgoing, rest = int.from_bytes(data[12:14], "big"), False, data[14:]
        if ethertype == ETHERTYPE_VLAN and len(rest) >= 4:
            ethertype, rest = int.from_bytes(rest[2:4], "big"), rest[4:]
    elif linktype == LINKTYPE_NULL and len(data) >= 4:
        return data[4:], False
    elif linktype in (LINKTYPE_RAW, LINKTYPE_RAW_OLD, LINKTYPE_IPV4, LINKTYPE_IPV6):
        return data, False
    else:
        return None
    if ethertype not in (ETHERTYPE_IPV4, ETHERTYPE_IPV6):
        return None
    return rest, outgoing
