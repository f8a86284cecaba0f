#!/usr/bin/env bash
# The shipped default recording (recordings/dns-lookup): how does
# `getent hosts big.test` find its answer?
#
#   strace  getent reads /etc/nsswitch.conf (hosts: files dns), looks in
#           /etc/hosts, reads /etc/resolv.conf, then asks the name server
#           over UDP; the answer, 100 addresses, does not fit in a UDP reply,
#           so it asks again over TCP: socket(..., SOCK_STREAM, ...) and
#           connect(... htons(53) ...).
#   tcpdump the UDP query, the reply with the TC (truncated) bit, which
#           tcpdump prints as `|` after the id and flags (`4242*-| q: A? ...`),
#           then the same query over TCP and the full answer.
#
# It also shows glibc asking for the A records twice: 100 addresses overflow
# the first buffer getent offers, so the lookup is repeated with a bigger one.
#
# The name server is examples/dns_server.py on 127.0.0.153 (DNS_ADDRESS),
# and getent sees a private /etc/resolv.conf naming only it (see lib.sh).
#
# Usage: sudo examples/dns-lookup.sh [RECORDING_DIR]   (default: recordings/dns-lookup)
set -euo pipefail
# shellcheck source=examples/lib.sh
source "$(dirname "$0")/lib.sh"

need_root
need strace tcpdump getent:libc-bin unshare:util-linux

dir=$(recording_dir "${1:-}" "$REPO/recordings/dns-lookup")
start_dns_server
# A plain PATH, so the recording shows getent found at once rather than the
# search through the recorder's own PATH (~/.local/bin, ...).
autotrace=$(command -v "$AUTOTRACE")
with_private_resolver env PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
  "$autotrace" --headless --quiet --size 100x30 -l "$dir" \
  'getent hosts big.test' \
  'strace -f -e trace=%file,%network -p PID' \
  "$(tcpdump_dns)"

show "files getent opened" "$dir" 'openat\(.*"/etc/(nsswitch.conf|hosts|resolv.conf)"'
show "the retry over TCP" "$dir" 'socket\(AF_INET6?, SOCK_STREAM|connect\(.*htons\(53\)'
show "truncated UDP answers (TC: the | after the flags)" "$dir" '\| q: '
done_message "$dir"
