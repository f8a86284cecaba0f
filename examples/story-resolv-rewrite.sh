#!/usr/bin/env bash
# Story: the resolver configuration changes under a running lookup loop.
#
# Like dnsmasq started before resolvconf has written its upstream file:
# /etc/resolv.conf first names 127.0.0.2, where nothing listens, so every
# lookup fails at once (ICMP port unreachable, getent exits 2). After about
# two seconds a stand-in for resolvconf rewrites the file in place to name
# 127.0.0.1, where examples/dns_server.py answers, and the lookups work.
# All of it in a network namespace of its own; the file is a private copy
# bind-mounted over /etc/resolv.conf (the machine's own is never touched).
#
#   pane 0  the loop: `lookup N: failed (exit 2)` a few times, then
#           `lookup N: 192.0.2.1 small.test`
#   pane 1  strace: each getent opens /etc/resolv.conf, then connects to
#           127.0.0.2:53 (refused), later to 127.0.0.1:53
#   pane 2  tcpdump: queries to 127.0.0.2.53 answered by ICMP `port 53
#           unreachable`, then queries to 127.0.0.1.53 and their answers
#   pane 3  @resolv: the resolver files as the loop sees them (/proc/PID/root);
#           the findings give the change with its diff
#   pane 4  the stand-in for resolvconf, saying when it rewrites the file
#   pane 5  @dns: the queries, decoded; none is answered before the change
#
# Usage: sudo examples/story-resolv-rewrite.sh [RECORDING_DIR]  (default: recordings/story-resolv-rewrite)
set -euo pipefail
# shellcheck source=examples/lib.sh
source "$(dirname "$0")/lib.sh"

need_root
need strace tcpdump getent:libc-bin ip:iproute2 unshare:util-linux

dir=$(recording_dir "${1:-}" "$REPO/recordings/story-resolv-rewrite")
make_netns
DNS_ADDRESS=127.0.0.1
start_dns_server ip netns exec "$NS"
# timeout:1 attempts:1: a server that never answers costs a second, not five
# times five (here it is quicker still: ICMP port unreachable).
printf 'nameserver 127.0.0.2\noptions timeout:1 attempts:1\n' >"$WORK/resolv.conf"
rewrite="sleep 2; echo \"\$(date +%T) resolvconf: /etc/resolv.conf now names 127.0.0.1\"; \
printf \"nameserver 127.0.0.1\\\\noptions timeout:1 attempts:1\\\\n\" >$WORK/resolv.conf"
# autotrace and every pane run in the namespace: tcpdump and @dns see its lo.
with_private_resolver ip netns exec "$NS" env PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
  "$AUTOTRACE" --headless --quiet --size 100x30 -l "$dir" \
  "env LC_ALL=C sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do \
if out=\$(getent hosts small.test); then echo \"lookup \$i: \$out\"; \
else echo \"lookup \$i: failed (exit \$?)\"; fi; sleep 0.4; done'" \
  'strace -f -qq -e signal=none -e trace=openat,connect -p PID' \
  'tcpdump -l --immediate-mode -n -K -i lo port 53 or icmp' \
  '@resolv' \
  "sh -c '$rewrite'" \
  '@dns'

show "the loop" "$dir" '\[0\] lookup'
show "the file changed" "$dir" 'resolvconf:'
show "strace: lookups before the change went to 127.0.0.2 (first two)" "$dir" \
  'connect\(.*htons\(53\).*"127\.0\.0\.2"' 2
show "strace: after it, to 127.0.0.1 (first two)" "$dir" 'connect\(.*htons\(53\).*"127\.0\.0\.1"' 2
key_findings "$dir" 'ICMP port unreachable' 'resolv.conf changed'
done_message "$dir"
