#!/usr/bin/env bash
# The original autotrace's "monster": one command and six tracers, seven
# panes. The main command looks a name up once a second (against
# examples/dns_server.py, through a private /etc/resolv.conf; see lib.sh).
#
#   pane 0  the lookups: getent hosts small.test, six times
#   pane 1  strace -f: files, sockets and processes of the loop and its getents
#   pane 2  ltrace -f (library calls) when installed, else /proc/PID/status
#           once a second
#   pane 3  lsof +r 2: the open files, every 2 s, until there are none
#   pane 4  pstree -p: the loop and the getent it is running, every second
#   pane 5  tcpdump: each query and answer on the loopback
#   pane 6  vmstat 1: the whole machine
#
# The view shows up to four panes at a time (as many as fit at 40x5); `m`
# cycles the others in (or use --visible 7 on a big terminal). Bounded by
# DURATION seconds (default 20).
#
# Usage: [DURATION=20] sudo examples/seven-panes.sh [RECORDING_DIR]
set -euo pipefail
# shellcheck source=examples/lib.sh
source "$(dirname "$0")/lib.sh"

need_root
need strace tcpdump lsof pstree:psmisc vmstat:procps getent:libc-bin unshare:util-linux

if command -v ltrace >/dev/null 2>&1; then
  library_tracer='ltrace -f -p PID'
else
  echo "ltrace is not installed (apt-get install ltrace); pane 2 shows /proc/PID/status instead"
  library_tracer='while cat /proc/PID/status; do sleep 1; done'
fi

dir=$(recording_dir "${1:-}")
start_dns_server
status=0
with_private_resolver "$AUTOTRACE" --headless --quiet --duration "${DURATION:-20}" \
  --size 100x30 -l "$dir" \
  'sh -c "for i in 1 2 3 4 5 6; do getent hosts small.test; sleep 1; done"' \
  'strace -f -e trace=%file,%network,%process -p PID' \
  "$library_tracer" \
  'lsof +r 2 -p PID' \
  'while [ -d /proc/PID ]; do pstree -p PID; echo; sleep 1; done' \
  "$(tcpdump_dns)" \
  'vmstat 1' || status=$?

"$AUTOTRACE" info "$dir" | grep -E '^pane|command:'
finish "$dir" "$status" "${DURATION:-20}"
