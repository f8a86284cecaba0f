#!/usr/bin/env bash
# Story: the resolver configuration changes under a running lookup loop.
#
# Like dnsmasq started before resolvconf has written its upstream file:
# /etc/resolv.conf first names 127.0.0.2, where nothing listens, so every
# lookup fails at once (ICMP port unreachable, getent exits 2). After about
# three seconds a stand-in for resolvconf rewrites the file in place to name
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
#   pane 3  the resolver file as the loop sees it (/proc/PID/root), printed
#           with the time whenever it changes
#   pane 4  the stand-in for resolvconf, saying when it rewrites the file
#
# Usage: sudo examples/story-resolv-rewrite.sh [RECORDING_DIR]  (default: recordings/story-resolv-rewrite)
set -euo pipefail
# shellcheck source=examples/lib.sh
source "$(dirname "$0")/lib.sh"

need_root
need strace strace
need tcpdump tcpdump
need getent libc-bin
need ip iproute2
need unshare util-linux

dir=$(recording_dir "${1:-}" "$REPO/recordings/story-resolv-rewrite")
make_netns
DNS_ADDRESS=127.0.0.1
start_dns_server ip netns exec "$NS"
# timeout:1 attempts:1: a server that never answers costs a second, not five
# times five (here it is quicker still: ICMP port unreachable).
printf 'nameserver 127.0.0.2\noptions timeout:1 attempts:1\n' >"$WORK/resolv.conf"
rewrite="sleep 3; echo \"\$(date +%T) resolvconf: /etc/resolv.conf now names 127.0.0.1\"; \
printf \"nameserver 127.0.0.1\\\\noptions timeout:1 attempts:1\\\\n\" >$WORK/resolv.conf"
# Prints the file the traced loop sees each time it changes, until the loop ends.
watch_file="old=; while kill -0 PID 2>/dev/null; do \
new=\$(cat /proc/PID/root/etc/resolv.conf 2>/dev/null); \
if [ \"\$new\" != \"\$old\" ]; then date +%T; echo \"\$new\"; old=\$new; fi; sleep 0.2; done"
with_private_resolver env PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
  "$AUTOTRACE" --headless --quiet --size 100x30 -l "$dir" \
  "env LC_ALL=C ip netns exec $NS sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do \
if out=\$(getent hosts small.test); then echo \"lookup \$i: \$out\"; \
else echo \"lookup \$i: failed (exit \$?)\"; fi; sleep 0.5; done'" \
  'strace -f -qq -e signal=none -e trace=openat,connect -p PID' \
  "ip netns exec $NS tcpdump -l --immediate-mode -n -K -i lo port 53 or icmp" \
  "sh -c '$watch_file'" \
  "sh -c '$rewrite'"

show "the loop" "$dir" '\[0\] lookup'
show "the file changed" "$dir" 'resolvconf:|nameserver'
show "strace: lookups before the change went to 127.0.0.2 (first two)" "$dir" \
  'connect\(.*htons\(53\).*"127\.0\.0\.2"' 2
show "strace: after it, to 127.0.0.1 (first two)" "$dir" 'connect\(.*htons\(53\).*"127\.0\.0\.1"' 2
done_message "$dir"
