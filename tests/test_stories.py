"""The DNS stories (examples/story-*.sh), each run end to end as a user runs
it, and the recordings they made that ship in recordings/: the tools' output
in the panes and the findings (`autotrace findings --json`) that name what
happened.

Each story runs in a network namespace of its own, with its own DNS server on
that namespace's loopback: nothing reaches this machine's resolver, and
parallel runs cannot answer each other. They need root (ip netns, strace -p,
tcpdump), iptables and nft, as here and in CI.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_examples import (
    AUTOTRACE_BIN,
    assert_in_order,
    assert_session_ended_cleanly,
    run_example,
)

RECORDINGS = REPO / "recordings"


def panes_text(directory: Path) -> list[str]:
    """Each pane's lines as `autotrace cat` shows a user, without the time and
    pane columns (one `cat` for all panes: each run is a Python start)."""
    result = subprocess.run([str(AUTOTRACE_BIN), "cat", str(directory)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    panes: dict[int, list[str]] = {}
    for match in re.finditer(r"^ *\d+\.\d+ \[(\d+)\] ?(.*)$", result.stdout, re.M):
        panes.setdefault(int(match[1]), []).append(match[2])
    return ["\n".join(panes.get(index, [])) + "\n" for index in range(max(panes) + 1)]


def findings(directory: Path) -> list[dict]:
    result = subprocess.run([str(AUTOTRACE_BIN), "findings", "--json", str(directory)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def rules(found: list[dict]) -> dict[str, list[dict]]:
    by_rule: dict[str, list[dict]] = {}
    for finding in found:
        by_rule.setdefault(finding["rule"], []).append(finding)
    return by_rule


def evidence_lines(finding: dict) -> str:
    return "\n".join(item["line"] for item in finding["evidence"])


# ---------------------------------------------------------------- the evidence, per story


def truncation_evidence(directory: Path) -> None:
    dig, strace, tcpdump, *_ = panes_text(directory)
    assert_in_order(dig, r"^== dig big\.test", r"^;; Truncated, retrying in TCP mode\.",
                    r"ANSWER: 100,", r"^;; SERVER: 127\.0\.0\.1#53\(127\.0\.0\.1\) \(TCP\)",
                    r"^== dig \+ignore", r"^;; flags: qr aa tc rd;.*ANSWER: 0,",
                    r"\(UDP\)")
    # Both digs connect a UDP socket to port 53; only the first connects again,
    # non-blocking over TCP, for its retry.
    to_53 = r'connect\(\d+, \{sa_family=AF_INET, sin_port=htons\(53\), .*\) = '
    assert len(re.findall(to_53 + "0$", strace, re.M)) == 2, strace
    assert len(re.findall(to_53 + "-1 EINPROGRESS", strace)) == 1, strace
    assert len(re.findall(r"\d+\*-\| 0/0/1 ", tcpdump)) == 2, tcpdump  # both truncated
    assert len(re.findall(r"Flags \[S\]", tcpdump)) == 1, tcpdump  # one TCP retry
    by_rule = rules(findings(directory))
    retried, = by_rule["dns.truncated-retried"]
    not_retried, = by_rule["dns.truncated-no-retry"]
    assert retried["t"] < not_retried["t"]
    assert "big.test" in retried["title"] and "retried over TCP" in retried["title"]
    assert not_retried["severity"] == "error"
    assert "no TCP retry" in not_retried["title"]
    assert "TC" in evidence_lines(not_retried)


def resolv_rewrite_evidence(directory: Path) -> None:
    loop, strace, tcpdump, _, resolvconf, *_ = panes_text(directory)
    results = re.findall(r"^lookup (\d+): (failed|192\.0\.2\.1 +small\.test)", loop, re.M)
    outcomes = [outcome != "failed" for _, outcome in results]
    assert len(outcomes) == 10, loop
    # Failing, then working, once: the file changed once under the loop.
    assert outcomes[0] is False and outcomes[-1] is True, loop
    assert outcomes == sorted(outcomes), loop
    assert_in_order(strace, r'openat\(AT_FDCWD, "/etc/resolv\.conf"',
                    r'connect\(\d+, .*htons\(53\).*"127\.0\.0\.2"',
                    r'connect\(\d+, .*htons\(53\).*"127\.0\.0\.1"')
    assert_in_order(tcpdump, r"> 127\.0\.0\.2\.53: \d+\+ A+\? small\.test\.",
                    r"ICMP 127\.0\.0\.2 udp port 53 unreachable",
                    r"127\.0\.0\.1\.53 > 127\.0\.0\.1\.\d+: \d+\*- 1/0/0 A 192\.0\.2\.1")
    assert "resolvconf: /etc/resolv.conf now names 127.0.0.1" in resolvconf
    by_rule = rules(findings(directory))
    changed, = by_rule["resolver.changed"]
    assert "/etc/resolv.conf" in changed["title"]
    assert "127.0.0.2" in changed["detail"] and "127.0.0.1" in changed["detail"], changed
    unreachable = by_rule["dns.icmp-unreachable"] + by_rule.get("tcpdump.icmp-unreachable", [])
    assert unreachable and all(f["t"] < changed["t"] for f in unreachable)
    assert all("127.0.0.2:53" in f["title"] for f in unreachable)


def embedded_dns_evidence(directory: Path) -> None:
    lookups, strace, helper, tcpdump, _, rules_pane = panes_text(directory)
    netns = re.search(r"^net:\[\d+\]$", lookups, re.M)
    assert netns, lookups
    assert_in_order(lookups, r"^192\.0\.2\.1 +small\.test", r"^small\.test\.\s+60\s+IN\s+A",
                    r"^;; SERVER: 127\.0\.0\.11#53\(127\.0\.0\.11\) \(UDP\)")
    assert re.search(r'connect\(\d+, .*htons\(53\).*"127\.0\.0\.11"', strace)
    # The helper entered the container's namespace (the same inode the lookups
    # printed), then listened on the high port there, then read the queries.
    assert_in_order(helper, r"setns\(\d+</run/netns/[^>]+>, CLONE_NEWNET\) = 0",
                    rf"entered network namespace {re.escape(netns.group(0))}",
                    r"bind\(\d+<socket:\[\d+\]>, .*htons\(40053\).*\"127\.0\.0\.11\"",
                    r"recvfrom\(")
    assert_in_order(tcpdump, r"> 127\.0\.0\.11\.40053: \d+\+ A\? small\.test\.",
                    r"127\.0\.0\.11\.53 > 127\.0\.0\.1\.\d+: \d+\*- 1/0/0 A 192\.0\.2\.1")
    assert re.search(r"DNAT .* udp dpt:53 to:127\.0\.0\.11:40053", rules_pane)
    by_rule = rules(findings(directory))
    setns, = by_rule["strace.setns"]
    assert "/run/netns/" in setns["title"] and setns["evidence"][0]["pane"] == 2
    assert any("127.0.0.11:40053" in f["title"] and "Docker" in f["title"]
               for f in by_rule["dns.server"]), by_rule["dns.server"]


def dnat_10053_evidence(directory: Path) -> None:
    lookups, strace, tcpdump, _, rules_pane = panes_text(directory)
    assert_in_order(lookups, r"^192\.0\.2\.1 +small\.test", r"^198\.51\.100\.1 +big\.test",
                    r"^;; SERVER: 127\.0\.0\.1#53\(127\.0\.0\.1\) \(UDP\)")
    # Every client connects to port 53, over UDP and (the retry) over TCP.
    assert re.search(r'connect\(\d+, .*htons\(53\).*"127\.0\.0\.1"', strace)
    assert re.search(r"socket\(AF_INET, SOCK_STREAM", strace)
    assert not re.search(r"htons\(10053\)", strace)
    assert_in_order(tcpdump, r"> 127\.0\.0\.1\.10053: \d+\+ A\? small\.test\.",
                    r"127\.0\.0\.1\.53 > 127\.0\.0\.1\.\d+: \d+\*- 1/0/0 A 192\.0\.2\.1")
    assert re.search(r"udp dport 53 counter packets [1-9]\d* .*dnat to 127\.0\.0\.1:10053",
                     rules_pane), rules_pane
    assert re.search(r"127\.0\.0\.1:10053 .*users:\(\(\"python", rules_pane), rules_pane
    by_rule = rules(findings(directory))
    assert any("127.0.0.1:10053" in f["title"] and "non-standard port" in f["title"]
               for f in by_rule["dns.server"]), by_rule["dns.server"]
    assert by_rule["dns.truncated-retried"]
    assert "dns.truncated-no-retry" not in by_rule


STORIES: dict[str, tuple[int, Callable[[Path], None]]] = {
    "story-truncation": (4, truncation_evidence),
    "story-resolv-rewrite": (6, resolv_rewrite_evidence),
    "story-embedded-dns": (6, embedded_dns_evidence),
    "story-dnat-10053": (5, dnat_10053_evidence),
}


def network_namespaces() -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                            timeout=30).stdout
    return [line.split()[0] for line in listed.splitlines() if line.strip()]


@pytest.mark.parametrize("story", sorted(STORIES))
def test_story_runs_end_to_end_and_shows_its_evidence(story: str, tmp_path: Path) -> None:
    panes, evidence = STORIES[story]
    directory = tmp_path / story
    result = run_example(f"{story}.sh", directory)
    assert result.returncode == 0, result.stdout + result.stderr
    namespace = re.search(r"^network namespace: (\S+) ", result.stdout, re.M)
    assert namespace, result.stdout
    # Gone, and with it every process that was in it (the servers, the helper's sockets).
    assert namespace[1] not in network_namespaces()
    assert f"recording: {directory}" in result.stdout
    assert "== findings" in result.stdout
    rec = assert_session_ended_cleanly(directory, panes)
    assert rec.panes[0]["exit_status"] == 0
    assert all(pane["note"] is None for pane in rec.panes)  # no tracer was refused
    evidence(directory)


@pytest.mark.parametrize("story", sorted(STORIES))
def test_shipped_story_recording_shows_the_same(story: str) -> None:
    panes, evidence = STORIES[story]
    directory = RECORDINGS / story
    assert_session_ended_cleanly(directory, panes)
    evidence(directory)
    size = sum(path.stat().st_size for path in directory.iterdir())
    assert size < 200_000, f"{story}: {size} bytes"
