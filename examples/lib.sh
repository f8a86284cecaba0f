# shellcheck shell=bash
# Helpers shared by the example scripts; sourced, not run.
#
# The DNS examples never send a query to this machine's real name server:
# they start examples/dns_server.py on a loopback address and run autotrace
# (and so every pane) in a private mount namespace in which /etc/resolv.conf
# names only that server and /etc/nsswitch.conf says `hosts: files dns`.
# The real files are not touched; the namespace ends with the session.

EXAMPLES=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034  # used by the scripts that source this
REPO=$(dirname "$EXAMPLES")
AUTOTRACE=${AUTOTRACE:-autotrace}
PYTHON=${PYTHON:-python3}
# Any 127.x.y.z works: Linux answers the whole 127.0.0.0/8 on lo.
DNS_ADDRESS=${DNS_ADDRESS:-127.0.0.153}

WORK=$(mktemp -d -t autotrace-example-XXXXXX)
DNS_PID=
NETNS=  # network namespaces made by make_netns, removed at the end

cleanup() {
  if [ -n "$DNS_PID" ]; then
    kill "$DNS_PID" 2>/dev/null || true
    wait "$DNS_PID" 2>/dev/null || true
  fi
  local ns
  for ns in $NETNS; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns delete "$ns" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}

# need TOOL PACKAGE: stop with the install command when TOOL is missing.
# need COMMAND[:PACKAGE]...: each command must be installed (PACKAGE, the
# Debian package it comes in, when its name is not the command's); all that
# are missing are named in one line.
need() {
  local word missing=() packages=()
  for word in "$@"; do
    command -v "${word%%:*}" >/dev/null 2>&1 && continue
    missing+=("${word%%:*}")
    packages+=("${word#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return
  local which="which is"
  [ ${#missing[@]} -eq 1 ] || which="which are"
  die "needs ${missing[*]}, $which not installed: apt-get install ${packages[*]} (Debian/Ubuntu)"
}

need_root() {
  [ "$(id -u)" -eq 0 ] ||
    die "needs root (strace -p, tcpdump, a private mount namespace): sudo $0"
}

command -v "$AUTOTRACE" >/dev/null 2>&1 ||
  die "autotrace not found: pip install autotrace, or set AUTOTRACE=/path/to/autotrace"

# recording_dir [DIR] [DEFAULT]: where a session records, printed by the caller.
# autotrace wants a new or empty folder; an old recording there is replaced,
# anything else is left alone.
recording_dir() {
  local dir=${1:-${2:-}}
  if [ -z "$dir" ]; then
    mktemp -d -u -t "autotrace-$(basename "$0" .sh)-XXXXXX"
    return
  fi
  if [ -f "$dir/manifest.json" ]; then
    rm -f "$dir"/manifest.json "$dir"/pane-*.cast "$dir"/autotrace.log
    rmdir "$dir" 2>/dev/null || die "$dir holds more than an autotrace recording; not replacing it"
  elif [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
    die "$dir exists and is not empty; give a new folder"
  fi
  printf '%s\n' "$dir"
}

# start_dns_server [PREFIX...]: run dns_server.py on $DNS_ADDRESS port
# ${DNS_PORT:-53} until the script exits; PREFIX runs it elsewhere, e.g.
# `ip netns exec NAME`.
start_dns_server() {
  "$@" "$PYTHON" "$EXAMPLES/dns_server.py" --address "$DNS_ADDRESS" --port "${DNS_PORT:-53}" \
    >"$WORK/dns.log" 2>&1 &
  DNS_PID=$!
  for _ in $(seq 100); do
    grep -q '^ready' "$WORK/dns.log" && return 0
    kill -0 "$DNS_PID" 2>/dev/null || { DNS_PID=; die "$(cat "$WORK/dns.log")"; }
    sleep 0.1
  done
  die "dns_server.py did not get ready in 10 s"
}

# with_private_resolver CMD...: run CMD where /etc/resolv.conf names only our
# server (or holds what the caller wrote to $WORK/resolv.conf before).
with_private_resolver() {
  [ -f "$WORK/resolv.conf" ] || printf 'nameserver %s\n' "$DNS_ADDRESS" >"$WORK/resolv.conf"
  printf 'hosts: files dns\n' >"$WORK/nsswitch.conf"
  # shellcheck disable=SC2016  # $1, $2, $@ are the inner shell's
  unshare --mount --propagation private sh -c '
    mount --bind "$1" /etc/resolv.conf &&
    mount --bind "$2" /etc/nsswitch.conf &&
    shift 2 && exec "$@"' sh "$WORK/resolv.conf" "$WORK/nsswitch.conf" "$@"
}

# make_netns: a new network namespace with only lo (up), named in $NS and
# removed at the end. Nothing in it can reach this machine's network, so a
# story's queries cannot leave it. (Not in $(...): that would lose $NETNS.)
make_netns() {
  NS="autotrace-$(basename "$0" .sh | cut -c1-20)-$$"
  ip netns add "$NS" || die "cannot make a network namespace (ip netns add $NS)"
  NETNS="$NETNS $NS"
  ip netns exec "$NS" ip link set lo up
  echo "network namespace: $NS (removed at the end)"
}

# real_python: the interpreter's own path (not a pyenv or venv shim that forks
# first), so strace of a helper shows the helper.
real_python() {
  "$PYTHON" -c 'import sys; print(sys.executable)'
}

# tcpdump_dns: the tcpdump tracer for our server's traffic. --immediate-mode
# prints each packet as it comes (not a buffer later), so its lines sit at the
# right moment in the timeline; -K skips the checksum check, which lo's
# offloading makes fail for every packet.
tcpdump_dns() {
  printf 'tcpdump -l --immediate-mode -n -vv -K -i lo host %s and port 53\n' "$DNS_ADDRESS"
}

# show LABEL DIR PATTERN [MAX]: the first MAX (default all) timeline lines
# of a recording that match PATTERN.
show() {
  echo "== $1"
  "$AUTOTRACE" cat "$2" >"$WORK/timeline"
  grep -E -m "${4:-1000000}" -- "$3" "$WORK/timeline" | cut -c1-160 || echo "   (none)"
}

# key_findings DIR PATTERN...: for each PATTERN, the first finding of the
# recording (its title line) that matches it.
key_findings() {
  local dir=$1 pattern
  shift
  echo "== findings"
  "$AUTOTRACE" findings "$dir" >"$WORK/findings" || true
  for pattern in "$@"; do
    grep -E -m 1 -- "^ +[0-9.]+ (ERROR|WARNING|INFO) +.*($pattern)" "$WORK/findings" ||
      echo "   (none for /$pattern/)"
  done
}

# finish DIR STATUS SECONDS: print where the recording went and exit. A
# session that --duration ended is no failure of the example, though
# autotrace reports the main command's SIGTERM (143).
finish() {
  local status=$2
  if [ "$status" -eq 143 ]; then
    echo "(the session was ended after $3 s by --duration)"
    status=0
  fi
  done_message "$1"
  exit "$status"
}

done_message() {
  echo
  echo "recording: $1"
  echo "  replay:  autotrace replay $1"
  echo "  read:    autotrace cat $1"
  echo "  summary: autotrace info $1"
}
