"""The examples: the DNS server they rely on, each script run headless as a
user would run it, and the shipped recording in recordings/.

The scripts need root (strace -p, tcpdump, a private mount namespace), as they
have here and in CI. Every DNS server runs on its own random loopback address,
so parallel runs never answer each other's queries, and nothing is ever sent
to the machine's real name server.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO, RecordingFiles, kill_all, processes_with

EXAMPLES = REPO / "examples"
SHIPPED = REPO / "recordings" / "dns-lookup"
SERVER = EXAMPLES / "dns_server.py"
# The autotrace of the environment running the tests (the venv's, in CI).
AUTOTRACE_BIN = Path(sys.executable).parent / "autotrace"
SCRIPT_TIMEOUT = 180


def random_loopback() -> str:
    """A loopback address no parallel test is likely to pick (all of 127/8 is lo)."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(2, 254)}"


# ---------------------------------------------------------------- the DNS server


class DNSServer:
    def __init__(self, address: str, port: int, proc: subprocess.Popen[str]):
        self.address, self.port, self.proc = address, port, proc

    def dig(self, *args: str) -> str:
        result = subprocess.run(
            ["dig", f"@{self.address}", "-p", str(self.port), "+tries=1", "+time=5", *args],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        return result.stdout

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=10)


def start_server(address: str, port: int = 0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SERVER), "--address", address, "--port", str(port)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True)


@pytest.fixture
def server() -> Iterator[DNSServer]:
    address = random_loopback()
    proc = start_server(address)
    try:
        ready = proc.stdout.readline()  # blocks until both sockets are bound
        match = re.fullmatch(r"ready (\S+) (\d+) pid (\d+)\n", ready)
        assert match, f"no ready line: {ready!r} {proc.stderr.read() if not ready else ''}"
        assert match[1] == address and int(match[3]) == proc.pid
        yield DNSServer(address, int(match[2]), proc)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def answers(dig_output: str, name: str) -> list[str]:
    return re.findall(rf"^{re.escape(name)}\.\s+\d+\s+IN\s+A\s+(\S+)$", dig_output, re.M)


def test_big_answer_is_truncated_over_udp_and_whole_over_tcp(server) -> None:
    output = server.dig("big.test")
    assert ";; Truncated, retrying in TCP mode." in output
    assert "(TCP)" in output  # ;; SERVER: 127.x.y.z#PORT(127.x.y.z) (TCP)
    addresses = answers(output, "big.test")
    assert addresses == [f"198.51.100.{n}" for n in range(1, 101)]


def test_truncated_reply_sets_tc_and_carries_no_answers(server) -> None:
    # +ignore: show the UDP reply instead of retrying. dig advertises 1232 bytes.
    output = server.dig("+ignore", "big.test")
    assert re.search(r"^;; flags: qr aa tc rd;.*ANSWER: 0,", output, re.M), output
    assert "udp: 1232" in output  # our own OPT record answers dig's


def test_udp_limit_follows_edns_payload_size(server) -> None:
    # Without EDNS0 the classic 512 bytes apply; with a 4096-byte offer it all fits.
    without_edns = server.dig("+noedns", "+ignore", "big.test")
    assert re.search(r"^;; flags: qr aa tc rd;.*ANSWER: 0,", without_edns, re.M)
    large_buffer = server.dig("+bufsize=4096", "+ignore", "big.test")
    assert re.search(r"^;; flags: qr aa rd;.*ANSWER: 100,", large_buffer, re.M)
    assert "Truncated" not in large_buffer


def test_tcp_query_gets_the_whole_answer_at_once(server) -> None:
    output = server.dig("+tcp", "big.test")
    assert "Truncated" not in output
    assert len(answers(output, "big.test")) == 100


def test_zone_answers(server) -> None:
    assert server.dig("+short", "small.test").split() == ["192.0.2.1"]
    assert server.dig("+short", "SMALL.Test.").split() == ["192.0.2.1"]
    aaaa = server.dig("small.test", "AAAA")
    assert "status: NOERROR" in aaaa and "ANSWER: 0," in aaaa
    for name in ("nope.test", "example.com"):
        assert "status: NXDOMAIN" in server.dig(name)


def test_malformed_query_gets_formerr(server) -> None:
    # A header that claims no question: the server must say FORMERR, not crash.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)
        sock.sendto(struct.pack("!6H", 0x1234, 0x0100, 0, 0, 0, 0),
                    (server.address, server.port))
        reply, _ = sock.recvfrom(512)
    ident, flags = struct.unpack_from("!HH", reply)
    assert ident == 0x1234 and flags & 0x8000 and flags & 0x000F == 1
    assert "192.0.2.1" in server.dig("+short", "small.test")  # still serving


def test_sigterm_stops_it_and_frees_the_port(server) -> None:
    assert server.stop() == 0
    again = start_server(server.address, server.port)
    try:
        assert again.stdout.readline().startswith(f"ready {server.address} {server.port} ")
    finally:
        again.terminate()
        assert again.wait(timeout=10) == 0


def test_busy_port_is_a_one_line_error(server) -> None:
    second = start_server(server.address, server.port)
    out, err = second.communicate(timeout=30)
    assert second.returncode == 1
    assert out == ""
    assert err.strip().splitlines() == [
        f"dns_server.py: cannot listen on {server.address} port {server.port}: "
        "Address already in use"]


def test_refuses_a_non_loopback_address() -> None:
    result = subprocess.run([sys.executable, str(SERVER), "--address", "192.0.2.7"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "not a loopback address" in result.stderr


# ---------------------------------------------------------------- the scripts


def processes_using(address: str) -> list[psutil.Process]:
    """Live processes with ADDRESS in their command line (127.1.2.3, not 127.1.2.34)."""
    exact = re.compile(rf"(?<![\d.]){re.escape(address)}(?!\d)")
    return [proc for proc in processes_with(address)
            if exact.search(" ".join(proc.info["cmdline"] or ()))]


def run_example(script: str, *args: str | Path,
                **env: str) -> subprocess.CompletedProcess[str]:
    """Run an example as a user would (bash, no terminal) and check it cleaned up."""
    address = env.setdefault("DNS_ADDRESS", random_loopback())
    proc = subprocess.Popen(
        ["bash", str(EXAMPLES / script), *map(str, args)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True, cwd=REPO,
        env={**os.environ, "AUTOTRACE": str(AUTOTRACE_BIN), **env})
    try:
        stdout, stderr = proc.communicate(timeout=SCRIPT_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)  # lets the script's trap clean up
        try:
            stdout, stderr = proc.communicate(timeout=10)
        finally:
            kill_all(processes_using(address))
            proc.kill()
        pytest.fail(f"{script} did not finish in {SCRIPT_TIMEOUT} s:\n{stdout}\n{stderr}")
    leftovers = processes_using(address)
    kill_all(leftovers)
    assert leftovers == [], f"{script} left processes behind"
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def pane_text(directory: Path, index: int) -> str:
    """What `autotrace cat --pane N` shows a user, without the time and pane columns."""
    result = subprocess.run([str(AUTOTRACE_BIN), "cat", str(directory), "--pane", str(index)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return re.sub(r"^ *\d+\.\d+ \[\d+\] ?", "", result.stdout, flags=re.M)


def assert_in_order(text: str, *patterns: str) -> None:
    """Each pattern matches a line that comes after the previous pattern's line."""
    position = 0
    for pattern in patterns:
        match = re.compile(pattern, re.M).search(text, position)
        assert match, f"no {pattern!r} after offset {position} in:\n{text[position:][:3000]}"
        position = match.end()


def udp_then_tcp_to(address: str) -> tuple[str, ...]:
    """strace lines: a UDP socket talking to ADDRESS:53, then a TCP one."""
    connect = rf'connect\(\d+, \{{sa_family=AF_INET, sin_port=htons\(53\), ' \
              rf'sin_addr=inet_addr\("{re.escape(address)}"\)'
    return (r"socket\(AF_INET, SOCK_DGRAM", connect,
            r"socket\(AF_INET, SOCK_STREAM", connect)


def assert_dns_lookup_evidence(directory: Path, address: str) -> None:
    """What the dns-lookup recording is for: files, UDP, TC, the TCP retry."""
    main, strace, tcpdump = (pane_text(directory, index) for index in range(3))
    assert re.search(r"^198\.51\.100\.100\s+big\.test", main, re.M), main
    for path in ("/etc/nsswitch.conf", "/etc/hosts", "/etc/resolv.conf"):
        assert re.search(rf'openat\(AT_FDCWD, "{path}", O_RDONLY\|O_CLOEXEC\) = \d',
                         strace), path
    assert_in_order(strace, *udp_then_tcp_to(address))
    assert_in_order(
        tcpdump,
        rf"> {re.escape(address)}\.53: \d+\+ A\? big\.test\. ",  # the UDP query
        rf"{re.escape(address)}\.53 > [\d.]+: \d+\*-\| q: A\? big\.test\. 0/0/0",  # TC
        rf"> {re.escape(address)}\.53: Flags \[S\]",  # the TCP retry
        r"q: A\? big\.test\. 100/0/0 big\.test\. A 198\.51\.100\.1,",  # the whole answer
    )


def assert_session_ended_cleanly(directory: Path, panes: int) -> RecordingFiles:
    rec = RecordingFiles(directory)
    assert rec.manifest["duration"] is not None
    assert len(rec.panes) == panes
    assert all(pane["end"] is not None for pane in rec.panes)
    return rec


def test_dns_truncation_shows_tc_bit_and_tcp_retry(tmp_path) -> None:
    directory = tmp_path / "truncation"
    address = random_loopback()
    result = run_example("dns-truncation.sh", directory, DNS_ADDRESS=address)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"recording: {directory}" in result.stdout
    rec = assert_session_ended_cleanly(directory, 3)
    assert rec.panes[0]["exit_status"] == 0
    dig, strace, tcpdump = (pane_text(directory, index) for index in range(3))
    assert_in_order(dig, r"^;; Truncated, retrying in TCP mode\.", r"ANSWER: 100,",
                    rf"^;; SERVER: {re.escape(address)}#53\(.*\) \(TCP\)")
    assert_in_order(strace, *udp_then_tcp_to(address))
    # tcpdump marks TC with `|` after the id and flags: `4242*-| q: A? big.test. 0/0/1`
    assert_in_order(
        tcpdump,
        rf"{re.escape(address)}\.53 > [\d.]+: \d+\*-\| q: A\? big\.test\. 0/0/1 ",
        rf"> {re.escape(address)}\.53: Flags \[S\]",
        r"q: A\? big\.test\. 100/0/1 ")
    # The script points the user at the evidence too.
    assert re.search(r"\| q: A\? big\.test\.", result.stdout)


def test_dns_files_compares_getent_with_dig(tmp_path) -> None:
    base = tmp_path / "files"
    result = run_example("dns-files.sh", base)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("getent", "dig"):
        assert_session_ended_cleanly(base / name, 2)
        assert f"recording: {base / name}" in result.stdout
    opened = r'openat\(AT_FDCWD, "{}", [^)]*\) = \d'
    getent = pane_text(base / "getent", 1)
    dig = pane_text(base / "dig", 1)
    for path in ("/etc/nsswitch.conf", "/etc/hosts", "/etc/resolv.conf"):
        assert re.search(opened.format(re.escape(path)), getent), path
    assert re.search(opened.format("/etc/resolv.conf"), dig)
    assert not re.search(opened.format("/etc/(hosts|nsswitch.conf)"), dig)
    assert "127.0.0.1" in pane_text(base / "getent", 0)
    assert "192.0.2.1" in pane_text(base / "dig", 0)
    # The comparison it prints: three sections, each file in the right one.
    sections = dict(re.findall(r"^== (.+)\n((?:   .*\n)*)", result.stdout, re.M))
    assert "/etc/hosts" in sections["only getent opened"]
    assert "/etc/nsswitch.conf" in sections["only getent opened"]
    assert "/etc/resolv.conf" in sections["both opened"]
    assert "shared libraries" in sections["only dig opened"]


def test_dns_lookup_script_makes_the_shipped_kind_of_recording(tmp_path) -> None:
    directory = tmp_path / "lookup"
    address = random_loopback()
    result = run_example("dns-lookup.sh", directory, DNS_ADDRESS=address)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_session_ended_cleanly(directory, 3)
    assert_dns_lookup_evidence(directory, address)
    # Run again into the same folder: the old recording is replaced, not refused.
    again = run_example("dns-lookup.sh", directory, DNS_ADDRESS=address)
    assert again.returncode == 0, again.stderr
    assert_dns_lookup_evidence(directory, address)


def test_scripts_refuse_a_folder_that_is_not_a_recording(tmp_path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = run_example("dns-lookup.sh", tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"dns-lookup.sh: {tmp_path} exists and is not empty; give a new folder"]
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_find_strace_vmstat(tmp_path) -> None:
    directory = tmp_path / "find"
    result = run_example("find-strace-vmstat.sh", directory, DURATION="6")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_session_ended_cleanly(directory, 3)
    assert re.search(r"^/usr/lib/\S+\.so", pane_text(directory, 0), re.M)
    assert re.search(r"getdents64\(\d+, ", pane_text(directory, 1))
    assert_in_order(pane_text(directory, 2), r"^procs ", r"^ r  b ", r"^ *\d+ +\d+ ")


def test_seven_panes(tmp_path) -> None:
    directory = tmp_path / "seven"
    address = random_loopback()
    result = run_example("seven-panes.sh", directory, DNS_ADDRESS=address, DURATION="30")
    assert result.returncode == 0, result.stdout + result.stderr
    rec = assert_session_ended_cleanly(directory, 7)
    assert rec.panes[0]["exit_status"] == 0
    pid = rec.panes[0]["pid"]
    assert pane_text(directory, 0).count("192.0.2.1       small.test") == 6
    assert re.search(r'execve\("/usr/bin/getent"', pane_text(directory, 1))
    library_pane = pane_text(directory, 2)
    if shutil.which("ltrace"):
        assert "getaddrinfo" in library_pane or "gethostbyname" in library_pane
    else:
        assert re.search(rf"^Pid:\s+{pid}$", library_pane, re.M)
    assert re.search(rf"^sh\s+{pid} ", pane_text(directory, 3), re.M)  # lsof
    assert re.search(rf"^sh\({pid}\)\S+(getent|sleep)\(\d+\)", pane_text(directory, 4), re.M)
    assert re.search(rf"> {re.escape(address)}\.53: \d+\+ A\? small\.test\.",
                     pane_text(directory, 5))
    assert re.search(r"^procs ", pane_text(directory, 6), re.M)


def test_nmap_localhost(tmp_path) -> None:
    directory = tmp_path / "nmap"
    result = run_example("nmap-localhost.sh", directory, DURATION="60")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_session_ended_cleanly(directory, 3)
    assert "Nmap done" in pane_text(directory, 0)
    # tcpdump listens where the scan goes (-i lo): nmap's SYN probes are there.
    assert re.search(r"IP 127\.0\.0\.1\.\d+ > 127\.0\.0\.1\.\d+: Flags \[S\]",
                     pane_text(directory, 2)), pane_text(directory, 2)[:2000]


# ---------------------------------------------------------------- the shipped recording


def test_shipped_recording_reads_cleanly() -> None:
    info = subprocess.run([str(AUTOTRACE_BIN), "info", str(SHIPPED)],
                          capture_output=True, text=True, timeout=60)
    assert info.returncode == 0, info.stderr
    assert info.stderr == ""
    assert "command:  getent hosts big.test" in info.stdout
    assert "strace -f -e trace=%file,%network -p PID" in info.stdout
    assert "tcpdump -l --immediate-mode -n -vv -K -i lo host 127.0.0.153 and port 53" \
        in info.stdout
    timeline = subprocess.run([str(AUTOTRACE_BIN), "cat", str(SHIPPED)],
                              capture_output=True, text=True, timeout=60)
    assert timeline.returncode == 0, timeline.stderr
    assert timeline.stderr == ""
    rec = assert_session_ended_cleanly(SHIPPED, 3)
    assert rec.manifest["format_version"] == 1
    assert rec.panes[0]["exit_status"] == 0
    assert all(pane["note"] is None for pane in rec.panes)  # no tracer was refused


def test_shipped_recording_shows_the_dns_story() -> None:
    assert_dns_lookup_evidence(SHIPPED, "127.0.0.153")


def test_shipped_recording_is_small() -> None:
    size = sum(path.stat().st_size for path in SHIPPED.iterdir())
    assert size < 200_000, f"{size} bytes"


def test_nmap_script_says_how_to_get_nmap_when_missing(tmp_path) -> None:
    # The usual PATH, less nmap.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        for tool in Path(folder).glob("*") if Path(folder).is_dir() else ():
            link = bin_dir / tool.name
            if tool.name != "nmap" and not link.exists() and not link.is_symlink():
                link.symlink_to(tool)
    result = run_example("nmap-localhost.sh", tmp_path / "nmap", PATH=str(bin_dir))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "nmap-localhost.sh: needs nmap, which is not installed: "
        "apt-get install nmap (Debian/Ubuntu)"]
    assert not (tmp_path / "nmap").exists()
