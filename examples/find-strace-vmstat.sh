#!/usr/bin/env bash
# The original autotrace's first example: a busy `find`, its system calls,
# and what the whole machine does meanwhile.
#
#   pane 0  find listing files
#   pane 1  strace: the getdents64/newfstatat/openat calls behind each line
#   pane 2  vmstat 1: CPU, memory, I/O once a second
#
# Bounded: the session ends after DURATION seconds (default 10) even when
# find has more to do.
#
# Usage: [DURATION=10] sudo examples/find-strace-vmstat.sh [RECORDING_DIR]
set -euo pipefail
# shellcheck source=examples/lib.sh
source "$(dirname "$0")/lib.sh"

need strace vmstat:procps

dir=$(recording_dir "${1:-}")
status=0
"$AUTOTRACE" --headless --quiet --duration "${DURATION:-10}" -l "$dir" \
  'find /usr/lib -name "*.so*"' \
  'strace -p PID' \
  'vmstat 1' || status=$?

show "strace: find reading directories (first lines)" "$dir" '\[1\] (getdents64|openat\(.*O_DIRECTORY)' 6
show "vmstat" "$dir" '\[2\] ' 6
finish "$dir" "$status" "${DURATION:-10}"
