"""--netns: tracers run inside the target's network namespace, as for a
containerised process debugged from the host.

The target is a process the test starts in a namespace of its own (made with
`unshare -n`, or `ip netns add`), listening on 127.0.0.1 there and talking to
itself over UDP; the host's loopback never sees any of it.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import psutil
import pytest

from tests.conftest import kill_all, trace

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

# Listens on UDP and TCP PORT (and TCP on ::1), then sends itself a datagram every 0.1 s.
TARGET = """\
import socket, sys, time
port = int(sys.argv[1])
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", port))
tcp = socket.socket()
tcp.bind(("127.0.0.1", port))
tcp.listen()
tcp6 = socket.socket(socket.AF_INET6)
tcp6.bind(("::1", port))
tcp6.listen()
print("ready", flush=True)
while True:
    udp.sendto(b"inside the namespace", ("127.0.0.1", port))
    udp.recv(100)
    time.sleep(0.1)
"""


@dataclass
class Target:
    pid: int
    port: int


def start_target(prefix: list[str], port: int) -> subprocess.Popen[str]:
    """TARGET in a new namespace; `exec` keeps one pid from the prefix to python."""
    script = f"ip link set lo up && exec {sys.executable} -c \"$1\" {port}"
    proc = subprocess.Popen([*prefix, "sh", "-c", script, "target", TARGET],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    kill_all([psutil.Process(proc.pid)] if psutil.pid_exists(proc.pid) else [])
    proc.wait(timeout=10)


@pytest.fixture
def port() -> int:
    return 20000 + secrets.randbelow(40000)


@pytest.fixture
def unshared(port) -> Iterator[Target]:
    proc = start_target(["unshare", "-n"], port)
    yield Target(proc.pid, port)
    stop(proc)


@pytest.fixture
def named_netns(port) -> Iterator[Target]:
    name = f"at-test-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        proc = start_target(["ip", "netns", "exec", name], port)
        yield Target(proc.pid, port)
        stop(proc)
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)
    assert name not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                      text=True).stdout


def host_interfaces() -> set[str]:
    return set(psutil.net_if_addrs()) - {"lo"}


def interfaces_in(text: str) -> set[str]:
    """Interface names in `ip -brief addr` output."""
    return set(re.findall(r"^(\S+?)(?:@\S+)?\s+(?:UP|DOWN|UNKNOWN)\b", text, re.M))


def test_tracers_see_the_targets_sockets_and_interfaces(tmp_path, unshared):
    result, rec = trace(tmp_path, "ss -lntu", "ip -brief addr", "@net",
                        options=["--pid", str(unshared.pid), "--netns", "--duration", "1.5"])
    assert result.returncode == 0, result.stderr
    pid = unshared.pid
    assert rec.panes[1]["command_run"] == f"nsenter -t {pid} -n -- /bin/sh -c 'ss -lntu'"
    sockets = rec.output(1)
    assert re.search(rf"^udp\s+UNCONN.*127\.0\.0\.1:{unshared.port}\s", sockets, re.M)
    assert re.search(rf"^tcp\s+LISTEN.*127\.0\.0\.1:{unshared.port}\s", sockets, re.M)
    assert interfaces_in(rec.output(2)) == {"lo"}
    # The @net probe reads the process's own view, namespace and all.
    probe = rec.output(3)
    assert re.search(rf"{pid} udp\s+127\.0\.0\.1:{unshared.port}\s+-\s+-", probe)
    assert re.search(rf"{pid} tcp\s+127\.0\.0\.1:{unshared.port}\s+-\s+LISTEN", probe)
    assert re.search(rf"{pid} tcp6\s+\[::1\]:{unshared.port}\s+-\s+LISTEN", probe)
    assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # left running


def test_without_netns_tracers_see_the_hosts_network(tmp_path, unshared):
    result, rec = trace(tmp_path, "ss -lntu", "ip -brief addr",
                        options=["--pid", str(unshared.pid), "--duration", "1"])
    assert result.returncode == 0, result.stderr
    assert rec.panes[1]["command_run"] == "ss -lntu"
    assert f"127.0.0.1:{unshared.port} " not in rec.output(1)
    seen, others = interfaces_in(rec.output(2)), host_interfaces()
    assert "lo" in seen
    assert seen & others or not others  # the host's own interfaces, eth0 and the like


def test_tcpdump_captures_the_namespaces_loopback(tmp_path, named_netns):
    capture = f"tcpdump -l -n -i lo udp port {named_netns.port}"
    result, rec = trace(tmp_path, capture, options=["--pid", str(named_netns.pid), "--netns",
                                                    "--duration", "2"])
    assert result.returncode == 0, result.stderr
    port = named_netns.port
    assert re.search(rf"127\.0\.0\.1\.{port} > 127\.0\.0\.1\.{port}: UDP, length 20",
                     rec.output(1))
    # The same capture on the host's loopback sees none of it.
    result, rec = trace(tmp_path, capture, options=["--pid", str(named_netns.pid),
                                                    "--duration", "1.5"])
    assert result.returncode == 0, result.stderr
    assert "listening on lo" in rec.output(1)
    assert f"127.0.0.1.{port} >" not in rec.output(1)
