#!/usr/bin/env bash
# Story: a "container" whose DNS server is 127.0.0.11, reached through an
# iptables DNAT to a high port where a helper from outside answers: Docker's
# embedded DNS, made small.
#
# A network namespace stands for the container: its /etc/resolv.conf names
# 127.0.0.11, and an iptables rule in its nat OUTPUT chain sends
# 127.0.0.11:53 (UDP and TCP) to 127.0.0.11:40053. The helper,
# examples/dns_server.py started outside the namespace, enters it with
# setns(2) before it opens its sockets, as dockerd does, so it listens inside
# the container while it runs (and would forward) from the host.
#
#   pane 0  the lookups in the container (getent, then dig): dig still says
#           `SERVER: 127.0.0.11#53` while the answer came from port 40053
#   pane 1  strace of the lookups: connect(... htons(53) ... "127.0.0.11")
#   pane 2  strace of the helper: setns(3</run/netns/...>, CLONE_NEWNET),
#           then bind(... htons(40053) ...) and the queries it reads
#   pane 3  tcpdump in the container (-T domain decodes port 40053 too):
#           each query goes to 127.0.0.11.40053 after the DNAT, each answer
#           comes back from 127.0.0.11.53 (conntrack undoes the DNAT)
#   pane 4  @dns (ports 53 and 40053): the queries decoded, with their pids
#   pane 5  the nat rules and their packet counts once the lookups are over
#
# Usage: sudo examples/story-embedded-dns.sh [RECORDING_DIR]  (default: recordings/story-embedded-dns)
set -euo pipefail
# shellcheck source=examples/lib.sh
source "$(dirname "$0")/lib.sh"

need_root
need strace tcpdump getent:libc-bin dig:bind9-dnsutils ip:iproute2 iptables unshare:util-linux

PORT=40053
dir=$(recording_dir "${1:-}" "$REPO/recordings/story-embedded-dns")
make_netns
for proto in udp tcp; do
  ip netns exec "$NS" iptables -t nat -A OUTPUT -d 127.0.0.11/32 -p "$proto" --dport 53 \
    -j DNAT --to-destination "127.0.0.11:$PORT" ||
    die "iptables cannot add a nat rule here (no nat table in this kernel?)"
done
printf 'nameserver 127.0.0.11\noptions timeout:1 attempts:2\n' >"$WORK/resolv.conf"
python=$(real_python)
# The lookups wait until the helper listens (its UDP port in /proc/net/udp,
# in hex), so they never race its start.
lookups="readlink /proc/self/ns/net; \
while ! grep -q \":$(printf '%04X' "$PORT") \" /proc/net/udp; do sleep 0.1; done; \
getent hosts small.test; \
dig +tries=2 +time=2 small.test | grep -E \"^small.test|^;; SERVER\""
# autotrace and every pane run in the container's namespace, except the
# helper: nsenter puts it back in this script's (the host's) namespace, from
# where it enters the container's itself.
host_netns=/proc/$$/ns/net
with_private_resolver ip netns exec "$NS" env PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
  LC_ALL=C "$AUTOTRACE" --headless --quiet --size 100x30 -l "$dir" \
  "sh -c '$lookups'" \
  'strace -f -qq -e signal=none -e trace=connect -p PID' \
  "nsenter --net=$host_netns -- strace -f -qq -e signal=none -y -e trace=setns,bind,recvfrom,sendto \
$python $EXAMPLES/dns_server.py --netns /run/netns/$NS --address 127.0.0.11 --port $PORT" \
  "tcpdump -l --immediate-mode -n -K -T domain -i lo port 53 or port $PORT" \
  "@dns:$PORT" \
  "sh -c 'while kill -0 PID 2>/dev/null; do sleep 0.2; done; iptables -t nat -nvL OUTPUT'"

show "the lookups" "$dir" '\[0\] '
show "the helper entered the container's namespace, then listened" "$dir" 'setns\(|bind\(|entered'
show "tcpdump: after the DNAT" "$dir" "127\\.0\\.0\\.11\\.$PORT" 4
show "the rules that did it" "$dir" 'DNAT'
key_findings "$dir" 'setns' "Docker's embedded DNS"
done_message "$dir"
