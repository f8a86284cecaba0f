#!/usr/bin/env bash
# A DNS answer too big for UDP: truncated (TC bit), then retried over TCP.
#
# examples/dns_server.py serves big.test with 100 A records (1.6 KB); dig
# offers 1232 bytes over UDP, so the server answers with the TC bit set and
# no records, and dig asks again over TCP ("Truncated, retrying in TCP mode").
#
#   pane 0  dig's output, with the retry message and all 100 answers
#   pane 1  strace: the UDP socket (SOCK_DGRAM), then socket(..., SOCK_STREAM
#           ...) and connect(... htons(53) ...) for the retry
#   pane 2  tcpdump: the truncated reply, `|` after the id and flags
#           (`4242*-| q: A? big.test. 0/0/1`), then the TCP exchange
#
# Usage: sudo examples/dns-truncation.sh [RECORDING_DIR]
set -euo pipefail
# shellcheck source=examples/lib.sh
source "$(dirname "$0")/lib.sh"

need_root
need strace tcpdump dig:dnsutils unshare:util-linux

dir=$(recording_dir "${1:-}")
start_dns_server
with_private_resolver "$AUTOTRACE" --headless --quiet --size 100x30 -l "$dir" \
  "dig @$DNS_ADDRESS big.test" \
  'strace -f -e trace=%network -p PID' \
  "$(tcpdump_dns)"

show "dig" "$dir" 'Truncated|ANSWER:|SERVER:'
show "strace: UDP first, then TCP" "$dir" 'socket\(AF_INET6?, SOCK_(DGRAM|STREAM)|connect\(.*htons\(53\)'
show "tcpdump: the truncated reply (| after the flags)" "$dir" '\| q: '
done_message "$dir"
