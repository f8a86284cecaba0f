"""The @dns probe and the findings, end to end: the real autotrace, a real DNS
server (examples/dns_server.py), real dig/getent/curl, real tcpdump."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

from conftest import REPO, RecordingFiles, run_autotrace, trace
from test_examples import random_loopback

SERVER = REPO / "examples" / "dns_server.py"
WITHOUT_CAPTURE = ["setpriv", "--bounding-set=-net_raw,-net_admin",
                   "--inh-caps=-net_raw,-net_admin"]


def findings_of(directory: Path) -> list[dict]:
    result = run_autotrace(["findings", "--json", directory])
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def start_server(address: str, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, str(SERVER), "--address", address, "--port",
                             str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    ready = proc.stdout.readline()
    assert ready.startswith("ready "), proc.stderr.read()
    return proc


def test_dns_probe_decodes_each_message_and_the_findings_follow(tmp_path) -> None:
    address = random_loopback()
    server = start_server(address, 10053)
    # A server that never answers: dig keeps its socket open for its whole
    # second of waiting, so its pid is there to be found however busy we are.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind((address, 10055))
    try:
        dig = f"dig @{address} -p 10053 +tries=1 +time=2"
        main = (f"{dig} big.test; {dig} +ignore big.test; {dig} nope.test; "
                f"{dig} -p 10054 small.test; {dig} -p 10055 +time=1 quiet.test; true")
        result, rec = trace(tmp_path, main, "@dns:10053,10054,10055", timeout=90)
    finally:
        server.kill()
        server.wait()
        silent.close()
    assert result.returncode == 0, result.stderr
    text = rec.output(1)
    # One line per query and per answer, every field the issue names.
    query = re.search(rf"^\d\d:\d\d:\d\d\.\d{{6}} udp 127\.0\.0\.1:\d+ > {address}:10053 "
                      r"query id \d+ big\.test\. A flags RD pid (?:\d+ \(dig\)|-)", text, re.M)
    assert query, text
    assert re.search(rf"udp {address}:10053 > 127\.0\.0\.1:\d+ answer id \d+ big\.test\. A "
                     r"NOERROR flags QR,AA,TC,RD answers 0 latency [\d.]+ms pid (?:\d+ \(dig\)|-)",
                     text, re.M), text
    # The pid is best effort (a dig that already closed its socket shows `-`);
    # the one left waiting is caught with its socket open.
    assert re.search(rf"udp 127\.0\.0\.1:\d+ > {address}:10055 query id \d+ quiet\.test\. A "
                     r"flags RD pid \d+ \(dig\)\r?$", text, re.M), text
    assert re.search(rf"tcp {address}:10053 > 127\.0\.0\.1:\d+ answer id \d+ big\.test\. A "
                     r"NOERROR flags QR,AA,RD answers 100 latency", text), text
    assert re.search(r"answer id \d+ nope\.test\. A NXDOMAIN", text), text
    assert re.search(rf"icmp \S+ > \S+ port-unreachable udp 127\.0\.0\.1:\d+ > {address}:10054",
                     text), text
    found = findings_of(rec.directory)
    rules = [f["rule"] for f in found]
    for rule in ("dns.truncated-retried", "dns.truncated-no-retry", "dns.nxdomain",
                 "dns.icmp-unreachable", "dns.server"):
        assert rule in rules, rules
    no_retry = next(f for f in found if f["rule"] == "dns.truncated-no-retry")
    assert no_retry["severity"] == "error"
    assert no_retry["evidence"][0]["pane"] == 1 and "TC" in no_retry["evidence"][0]["line"]
    # Written into the recording while it ran, and said everywhere it is read.
    manifest = json.loads((rec.directory / "manifest.json").read_text())
    assert manifest["findings"] == {"file": "findings.jsonl", "version": 1, "count": len(found)}
    timeline = run_autotrace(["cat", "--findings", rec.directory]).stdout
    assert re.search(r"\[F\] ERROR: truncated answer \(TC\) for big\.test\. A and no TCP retry",
                     timeline)
    plain = run_autotrace(["findings", rec.directory]).stdout
    assert "NXDOMAIN for nope.test. A" in plain and "pane 1 (@dns:10053,10054,10055)" in plain
    bundle = tmp_path / "b.tar.gz"
    packed = run_autotrace(["pack", rec.directory, "-o", bundle, "--redact", "nope"])
    assert packed.returncode == 0, packed.stderr
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        summary = tar.extractfile(next(n for n in names if n.endswith("SUMMARY.txt"))).read()
        inside = tar.extractfile(next(n for n in names if n.endswith("findings.jsonl"))).read()
    assert b"findings (" in summary and b"NXDOMAIN for \xc2\xabredacted\xc2\xbb.test" in summary
    assert b"nope" not in inside and b"nope" not in summary
    assert len(findings_of(bundle)) == len(found)


def test_without_capture_permission_the_pane_says_why_and_how(tmp_path) -> None:
    result, rec = trace(tmp_path, "sh -c 'sleep 0.3; echo main kept going'", "@dns",
                        prefix=WITHOUT_CAPTURE)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    note = rec.panes[1]["note"]
    assert note.startswith("packet capture not permitted") and "setcap" in note
    assert "not run: packet capture not permitted" in rec.output(1)
    assert "main kept going" in rec.output(0)


def test_a_bad_port_is_a_usage_error(tmp_path) -> None:
    result = run_autotrace(["--headless", "-l", tmp_path / "r", "true", "@dns:http"])
    assert result.returncode == 2
    assert "@dns: 'http' is not a port" in result.stderr and "Traceback" not in result.stderr


PRECISION_SCRIPT = r"""
set -e
ip link set lo up
mount --bind "$RESOLV" /etc/resolv.conf
"$PYTHON" "$SERVER" --address 127.0.0.153 --port 53 > "$READY" 2>&1 &
trap "kill $!" EXIT
for i in $(seq 100); do grep -q ready "$READY" && break; sleep 0.1; done
"$PYTHON" -m autotrace --headless -q -l "$REC" --preset dns "$MAIN"
"""
# 10 rounds of getent (1 name), dig (18 names) and curl (1; 192.0.2.1 has no
# route in this namespace, so curl fails to connect, which is no DNS matter):
# 200 A queries, all answered, from 30 processes (each process under strace -f
# costs more than its lookups).
PRECISION_MAIN = ("for i in $(seq 10); do getent ahostsv4 small.test >/dev/null; "
                  f"dig +short +tries=1 {' '.join(['small.test'] * 18)} >/dev/null; "
                  "curl -s -o /dev/null --connect-timeout 1 http://small.test:9/ || true; done")


def test_a_busy_session_of_good_lookups_finds_no_error(tmp_path) -> None:
    """Precision: 200 ordinary lookups that succeed, under the dns preset's rules
    (strace, tcpdump, @dns, @resolv), in a network namespace of their own."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.153\noptions timeout:2 attempts:1\n")
    directory = tmp_path / "rec"
    env = {"RESOLV": str(resolv), "PYTHON": sys.executable, "SERVER": str(SERVER),
           "READY": str(tmp_path / "ready"), "REC": str(directory), "MAIN": PRECISION_MAIN,
           "PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    result = subprocess.run(["unshare", "-m", "-n", "sh", "-c", PRECISION_SCRIPT], env=env,
                            capture_output=True, text=True, timeout=240,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((directory / "manifest.json").read_text())
    dns_pane = next(p for p in manifest["panes"] if p["command"] == "@dns")
    lines = (directory / dns_pane["file"]).read_text()
    assert len(re.findall(r" query id ", lines)) >= 200
    assert len(re.findall(r" answer id \d+ small\.test\. A+ NOERROR", lines)) >= 200
    found = findings_of(directory)
    assert found, "the loopback server is worth a warning: the rules ran"
    assert [f["title"] for f in found if f["severity"] == "error"] == []


def test_a_resolver_file_rewritten_mid_session_is_a_finding_with_its_diff(tmp_path) -> None:
    """The target's own /etc/resolv.conf (a private mount namespace, as in a
    container) is rewritten while it runs: @resolv sees it, the rule diffs it."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1\n")
    main = f"sleep 0.8; echo 'nameserver 10.0.0.53' > {resolv}; sleep 1"
    directory = tmp_path / "rec"
    result = run_autotrace(["--headless", "-q", "-l", directory, "--interval", "0.2", main,
                            "@resolv"],
                           prefix=["unshare", "-m", "sh", "-c",
                                   'mount --bind "$0" /etc/resolv.conf && exec "$@"',
                                   str(resolv)])
    assert result.returncode == 0, result.stderr
    [changed] = [f for f in findings_of(directory) if f["rule"] == "resolver.changed"]
    assert changed["severity"] == "warning" and "/etc/resolv.conf" in changed["title"]
    assert "-nameserver 127.0.0.1" in changed["detail"]
    assert "+nameserver 10.0.0.53" in changed["detail"]
    assert changed["t"] >= 0.8 and changed["evidence"][0]["pane"] == 1


def test_a_damaged_or_planted_findings_file_is_one_line(tmp_path) -> None:
    from conftest import assert_one_line_error

    result, rec = trace(tmp_path, "true")
    assert result.returncode == 0, result.stderr
    findings = rec.directory / "findings.jsonl"
    findings.write_text('{"t": 1.0, "rule": "x"\n')
    line = assert_one_line_error(run_autotrace(["findings", rec.directory]))
    assert line.endswith("findings.jsonl:1: corrupt finding: Expecting ',' delimiter")
    findings.unlink()
    findings.symlink_to("/etc/shadow")
    for command in (["findings"], ["cat", "--findings"]):
        line = assert_one_line_error(run_autotrace([*command, rec.directory]))
        assert "findings.jsonl: refused: it is a symbolic link" in line
    findings.unlink()
    findings.write_text('{"t": 1.0, "rule": "from.a.newer.autotrace"}\n{"t": 2.0, "rule": "x", '
                        '"severity": "error", "title": "kept", "future": 1}\n{"torn')
    assert [f["title"] for f in findings_of(rec.directory)] == ["kept"]


def dns_probe_in_own_netns(tmp_path: Path, main: str, *args: str) -> RecordingFiles:
    """A headless session of the Python program MAIN and @dns, in a network
    namespace of its own (lo up): nothing else's packets, nothing leaves it."""
    script = tmp_path / "main.py"
    script.write_text(main)
    in_own_netns = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    result, rec = trace(tmp_path, " ".join([sys.executable, str(script), *args]), "@dns",
                        prefix=in_own_netns, timeout=90)
    assert result.returncode == 0, result.stderr
    return rec


BURST_MAIN = r"""
import os, signal, socket, sys, time
import dns.message
# Our own @dns probe's tcpdump: the one in this network namespace.
mine = os.readlink("/proc/self/ns/net")
def ours(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        return argv[0].endswith(b"tcpdump") and os.readlink(f"/proc/{pid}/ns/net") == mine
    except OSError:
        return False
capture = next(int(p) for p in os.listdir("/proc") if p.isdigit() and ours(p))
sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sink.bind(("127.0.0.153", 53))
sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
os.kill(capture, signal.SIGSTOP)
try:
    for i in range(int(sys.argv[1])):
        client.sendto(dns.message.make_query(f"q{i}.test", "A").to_wire(), ("127.0.0.153", 53))
    time.sleep(0.2)
finally:
    os.kill(capture, signal.SIGCONT)
time.sleep(1.5)
"""


def test_a_burst_the_capture_could_not_read_at_once_is_not_lost(tmp_path) -> None:
    """tcpdump held off the CPU (a loaded machine) while 200 queries go out:
    the kernel's ring keeps them all for it; each shows in the pane."""
    rec = dns_probe_in_own_netns(tmp_path, BURST_MAIN, "200")
    text = rec.output(1)
    # tcpdump's own count at its end: nothing dropped, and on lo only one copy of each
    assert re.search(r"^200 packets received by filter\r?$", text, re.M), text[-300:]
    assert re.search(r"^0 packets dropped by kernel\r?$", text, re.M), text[-300:]
    assert len(re.findall(r" query id \d+ q\d+\.test\. A ", text)) == 200, text[-300:]


def test_the_sent_copy_on_lo_is_left_to_the_kernel_only_where_libpcap_can() -> None:
    """`ifindex` came with libpcap 1.10; an older one would refuse the whole filter."""
    from autotrace.live import dns_capture

    assert dns_capture.libpcap_version() >= (1, 10)  # this machine's real tcpdump
    assert dns_capture.libpcap_version("/nonexistent/tcpdump") == (0, 0)
    here = dns_capture.tcpdump_command(os.getpid(), [53], (1, 10))[-1]
    older = dns_capture.tcpdump_command(os.getpid(), [53], (1, 9))[-1]
    assert "ifindex 1" in here and "ifindex" not in older
    assert older.startswith("(((udp or tcp) and (port 53))")


BIG_TCP_MAIN = r"""
import socket, struct, threading, time
import dns.message, dns.rrset
server = socket.create_server(("127.0.0.153", 53))
def serve():
    conn, _ = server.accept()
    data = b""
    while data.count(b"big") < 16:  # sixteen queries, pipelined on one connection
        data += conn.recv(65536)
    answers = b""
    while data:
        size = struct.unpack("!H", data[:2])[0]
        query = dns.message.from_wire(data[2:2 + size])
        data = data[2 + size:]
        answer = dns.message.make_response(query)
        answer.answer.append(dns.rrset.from_text_list(
            query.question[0].name, 60, "IN", "A",
            [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(3700)]))
        wire = answer.to_wire()
        answers += struct.pack("!H", len(wire)) + wire
    conn.sendall(answers)  # ~950 KB at once: segments as large as lo allows
    conn.close()
threading.Thread(target=serve, daemon=True).start()
client = socket.create_connection(("127.0.0.153", 53))
for i in range(16):
    wire = dns.message.make_query(f"big{i}.test", "A").to_wire()
    client.sendall(struct.pack("!H", len(wire)) + wire)
got = b""
while chunk := client.recv(65536):
    got += chunk
print("client read", len(got), "bytes", flush=True)
time.sleep(4)  # dnspython takes ~0.1 s a message: the probe decodes them before its grace ends
"""


def test_large_tcp_segments_on_lo_are_captured_whole(tmp_path) -> None:
    """lo's MTU is 64 KiB: answers sent at once go out in IP packets of up to
    65,535 bytes, which the capture must keep whole to decode the stream."""
    rec = dns_probe_in_own_netns(tmp_path, BIG_TCP_MAIN)
    assert "client read" in rec.output(0)
    text = rec.output(1)
    answers = re.findall(r" answer id \d+ big(\d+)\.test\. A NOERROR flags QR,RD answers 3700 ",
                         text)
    assert sorted(map(int, answers)) == list(range(16)), text[-600:]
    assert "not a DNS message" not in text and "cut by the capture" not in text
