#!/usr/bin/env bash
# Which files does a name lookup read? `getent hosts localhost` (the C
# library's resolver, as most programs use it) against `dig` (its own
# resolver, asking a server directly), each traced with strace.
#
# getent follows /etc/nsswitch.conf and finds localhost in /etc/hosts; dig
# never reads either: it reads /etc/resolv.conf (for the search list) and
# asks the server it is given, here examples/dns_server.py. Two sessions are
# recorded, RECORDING_DIR/getent and RECORDING_DIR/dig, then compared.
#
# Usage: sudo examples/dns-files.sh [RECORDING_DIR]
set -euo pipefail
# shellcheck source=examples/lib.sh
source "$(dirname "$0")/lib.sh"

need_root
need strace dig:dnsutils getent:libc-bin unshare:util-linux

base=$(recording_dir "${1:-}")
mkdir -p "$base"
start_dns_server

record() {  # record NAME MAIN: one session with strace on the file system calls
  with_private_resolver "$AUTOTRACE" --headless --quiet --size 200x30 -l "$base/$1" \
    "$2" 'strace -f -e trace=%file -p PID'
}

# opened DIR: the files a session opened successfully, after its last exec
# (before that it is still autotrace's `sh -c 'exec ...'` starting up).
opened() {
  "$AUTOTRACE" cat "$1" --pane 1 |
    awk '/execve\(/ && / = 0/ { delete seen; next }
         /open(at)?\(/ && !/ = -1 / {
           if (match($0, /"[^"]*"/)) seen[substr($0, RSTART + 1, RLENGTH - 2)] = 1 }
         END { for (path in seen) print path }' |
    sort
}

record getent 'getent hosts localhost'
record dig "dig @$DNS_ADDRESS small.test"
opened "$base/getent" >"$WORK/getent.files"
opened "$base/dig" >"$WORK/dig.files"

# summarize: list files one per line, but count shared libraries and locale data.
summarize() {
  awk '/\.so[.0-9]*$/ { libraries++; next }
       /^\/usr\/lib\/locale\// { locale++; next }
       { print "   " $0 }
       END { if (libraries) print "   + " libraries " shared libraries"
             if (locale) print "   + " locale " locale files" }'
}

echo "== only getent opened"
comm -23 "$WORK/getent.files" "$WORK/dig.files" | summarize
echo "== only dig opened"
comm -13 "$WORK/getent.files" "$WORK/dig.files" | summarize
echo "== both opened"
comm -12 "$WORK/getent.files" "$WORK/dig.files" | summarize

done_message "$base/getent"
done_message "$base/dig"
