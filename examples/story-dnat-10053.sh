#!/usr/bin/env bash
# Story: /etc/resolv.conf says 127.0.0.1, but the answers come from a server
# on port 10053, behind a DNAT rule (nftables).
#
# In a network namespace of its own, examples/dns_server.py listens on
# 127.0.0.1 port 10053, not 53, and an nft nat rule on the output hook sends
# 127.0.0.1:53 (UDP and TCP) there. Every tool in the lookup believes it
# talked to port 53; the rule's counters and the listening sockets say who
# answered. big.test is truncated over UDP, so the TCP retry goes through
# the same rule.
#
#   pane 0  getent hosts small.test, big.test (first lines), and dig, whose
#           `SERVER: 127.0.0.1#53` names the port it thinks it used
#   pane 1  strace: connect(... htons(53) ... "127.0.0.1"), UDP then TCP
#   pane 2  tcpdump (-T domain decodes port 10053): queries to
#           127.0.0.1.10053, answers from 127.0.0.1.53
#   pane 3  @dns (ports 53 and 10053): the queries decoded, with their pids
#   pane 4  once the lookups are over: the nft rules with their packet
#           counts, and `ss`: who listens on 10053
#
# Usage: sudo examples/story-dnat-10053.sh [RECORDING_DIR]  (default: recordings/story-dnat-10053)
set -euo pipefail
# shellcheck source=examples/lib.sh
source "$(dirname "$0")/lib.sh"

need_root
need strace tcpdump getent:libc-bin dig:bind9-dnsutils ip:iproute2 nft:nftables ss:iproute2 unshare:util-linux

dir=$(recording_dir "${1:-}" "$REPO/recordings/story-dnat-10053")
make_netns
ip netns exec "$NS" nft -f - <<'RULES' || die "nft cannot add a nat rule here (no nf_tables nat in this kernel?)"
table ip autotrace_story {
  chain output {
    type nat hook output priority -100; policy accept;
    ip daddr 127.0.0.1 udp dport 53 counter dnat to 127.0.0.1:10053
    ip daddr 127.0.0.1 tcp dport 53 counter dnat to 127.0.0.1:10053
  }
}
RULES
DNS_ADDRESS=127.0.0.1 DNS_PORT=10053 start_dns_server ip netns exec "$NS"
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:2\n' >"$WORK/resolv.conf"
lookups="getent hosts small.test; getent hosts big.test | head -n 2; \
dig +tries=2 +time=2 small.test | grep -E \"^small.test|^;; SERVER\""
# autotrace and every pane run in the namespace: tcpdump and @dns see its lo.
with_private_resolver ip netns exec "$NS" env PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
  LC_ALL=C "$AUTOTRACE" --headless --quiet --size 100x30 -l "$dir" \
  "sh -c '$lookups'" \
  'strace -f -qq -e signal=none -e trace=socket,connect -p PID' \
  'tcpdump -l --immediate-mode -n -K -T domain -i lo port 53 or port 10053' \
  '@dns:10053' \
  "sh -c 'while kill -0 PID 2>/dev/null; do sleep 0.2; done; \
nft list ruleset; ss -Hlntup sport = :10053'"

show "the lookups" "$dir" '\[0\] '
show "tcpdump: sent to 10053 (first four)" "$dir" '127\.0\.0\.1\.10053' 4
show "the rule that did it, and who listens" "$dir" 'dnat to|10053.*users'
key_findings "$dir" '127.0.0.1:10053' 'retried over TCP'
done_message "$dir"
