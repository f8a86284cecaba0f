#!/usr/bin/env bash
# The original autotrace's network example: a port scan of this machine,
# its system calls and its packets side by side.
#
#   pane 0  nmap's report: which ports are open
#   pane 1  strace: the sockets nmap opens and the connects it tries
#   pane 2  tcpdump: the probes on the loopback and the answers (SYN-ACK
#           for an open port, RST for a closed one)
#
# nmap runs with -n (no reverse DNS lookups) against 127.0.0.1, so nothing
# leaves the loopback. Bounded by DURATION seconds (default 30).
#
# Usage: [DURATION=30] sudo examples/nmap-localhost.sh [RECORDING_DIR]
set -euo pipefail
# shellcheck source=examples/lib.sh
source "$(dirname "$0")/lib.sh"

need nmap
need_root
need strace tcpdump

dir=$(recording_dir "${1:-}")
status=0
"$AUTOTRACE" --headless --quiet --duration "${DURATION:-30}" --size 120x30 -l "$dir" \
  'nmap -n --top-ports 100 127.0.0.1' \
  'strace -f -e trace=%network -p PID' \
  'tcpdump -l --immediate-mode -n -K -i lo' || status=$?

show "nmap" "$dir" '\[0\] .*(open|closed|Nmap done)' 10
show "tcpdump (first packets)" "$dir" '\[2\] .* IP ' 6
finish "$dir" "$status" "${DURATION:-30}"
