#!/usr/bin/env bash
# Story: a truncated DNS answer, with a TCP retry and without one.
#
# In a network namespace of its own, examples/dns_server.py answers on
# 127.0.0.1:53 and /etc/resolv.conf names it. big.test has 100 A records
# (1.6 KB), more than dig's 1232-byte UDP offer, so the UDP answer comes back
# with the TC (truncated) bit and no records. Then:
#
#   1. `dig big.test` retries over TCP (";; Truncated, retrying in TCP mode.")
#      and gets all 100 addresses;
#   2. `dig +ignore big.test` does not retry: it prints the truncated answer,
#      `flags: qr aa tc rd`, ANSWER: 0. That is what a resolver without TCP
#      fallback (musl libc before 1.2.4) does: the lookup finds nothing.
#
#   pane 0  both digs, each introduced by an `== ...` line
#   pane 1  strace: the UDP socket of each dig; only the first opens a
#           SOCK_STREAM socket and connects to port 53 again
#   pane 2  tcpdump: both truncated answers (`|` after the flags, shown as
#           TRUNCATED in the view), then one TCP exchange, not two
#   pane 3  @dns: every query and answer decoded (TC, rcode, latency); the
#           findings name the truncated answer retried over TCP and the one
#           that was not (`autotrace findings DIR`)
#
# Usage: sudo examples/story-truncation.sh [RECORDING_DIR]  (default: recordings/story-truncation)
set -euo pipefail
# shellcheck source=examples/lib.sh
source "$(dirname "$0")/lib.sh"

need_root
need strace tcpdump dig:bind9-dnsutils ip:iproute2 unshare:util-linux

dir=$(recording_dir "${1:-}" "$REPO/recordings/story-truncation")
make_netns
DNS_ADDRESS=127.0.0.1
start_dns_server ip netns exec "$NS"
# autotrace and every pane run in the namespace: tcpdump and @dns see its lo.
with_private_resolver ip netns exec "$NS" "$AUTOTRACE" --headless --quiet --size 100x30 -l "$dir" \
  "sh -c 'echo \"== dig big.test: truncated over UDP, retried over TCP\"; \
dig +tries=1 +time=5 big.test | grep -E \"^;; (Truncated|flags|SERVER)|^big.test.* A 198.51.100.(1|100)\$\"; \
sleep 1.5; echo \"== dig +ignore big.test: truncated, no retry\"; \
dig +tries=1 +time=5 +ignore big.test | grep -E \"^;; (flags|SERVER)\"'" \
  'strace -f -e trace=socket,connect -p PID' \
  'tcpdump -l --immediate-mode -n -K -i lo port 53' \
  '@dns'

show "dig" "$dir" '== |Truncated|flags:|SERVER:'
show "strace: UDP twice, TCP once" "$dir" 'socket\(AF_INET, SOCK_(DGRAM|STREAM)'
show "tcpdump: truncated answers (| after the flags)" "$dir" '[0-9]\*-\| '
key_findings "$dir" 'retried over TCP' 'no TCP retry'
done_message "$dir"
