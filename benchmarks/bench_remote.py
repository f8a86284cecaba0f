"""Scale over ssh (issue 13.4): 1, 8 and 32 panes spread over up to 4 hosts.

Every pane is `HOST: printer` (RATE numbered lines a second), recorded
headless. Over a window that starts once every pane's remote process runs,
it samples the CPU of the autotrace process alone and of its local ssh
clients (one per pane, plus one master per host), and their memory; after
the end it checks that every pane's recording holds every line printed. The
cost per pane is printed for each count, so its growth is visible.

The hosts are the tests' (tests/sshlab.py): sshd in network namespaces with
host names of their own, on this machine: root only. The remote printers
run "there" and are not counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
from bench_idle import printer
from common import (
    BenchError,
    Settings,
    Table,
    Target,
    autotrace_executable,
    cpu_share,
    fmt,
    require_tool,
    rss_mb,
    stop_processes,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the lab of the tests

NAME = "remote"
COUNTS = (1, 8, 32)
HOSTS = 4
RATE = 10  # lines per second per pane
PER_PANE_CPU_TARGET = 1.0  # % of one core per pane at 32 panes
STARTUP = 60.0  # longest wait for every pane's remote process


def _manifest(logdir: Path) -> dict:
    try:
        return json.loads((logdir / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}


def _all_running(logdir: Path, count: int) -> bool:
    panes = _manifest(logdir).get("panes", [])
    return len(panes) == count and all(p.get("remote_pid") for p in panes)


def _lines_recorded(logdir: Path, index: int) -> int:
    text = []
    with open(logdir / f"pane-{index}.cast", encoding="utf-8") as f:
        next(f)
        for line in f:
            t, code, data = json.loads(line)
            if code == "o":
                text.append(data)
    return sum(1 for word in "".join(text).split() if word.isdigit())


def measure(lab, hosts: tuple[str, ...], count: int, window: float,
            logdir: Path) -> dict[str, float]:
    # The main command (released last, once the others run) prints for two
    # seconds more, so the session's end cuts no other pane short.
    lines = round((window + 3.0) * RATE)
    main_lines = lines + 2 * RATE
    commands = [f"{hosts[0]}: {printer(main_lines / RATE, RATE)}"]
    commands += [f"{hosts[i % len(hosts)]}: {printer(lines / RATE, RATE)}"
                 for i in range(1, count)]
    argv = [*autotrace_executable(), "--headless", "-q", "-l", str(logdir),
            *lab.ssh_option, *commands]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    root = psutil.Process(proc.pid)
    try:
        deadline = time.monotonic() + STARTUP
        while not _all_running(logdir, count):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"{count} remote panes did not all start")
            time.sleep(0.05)

        def ssh_clients() -> list[psutil.Process]:
            return [p for p in root.children(recursive=True) if p.name() == "ssh"]

        clients = ssh_clients()
        ours = cpu_share(lambda: [root], window)
        theirs_rss = rss_mb(clients)
        ours_rss = rss_mb([root])
        # The clients' CPU, over a second window of its own (cheap enough).
        ssh_cpu = cpu_share(lambda: clients, 1.0)
        _, err = proc.communicate(timeout=window + 60)
        if proc.returncode != 0:
            raise BenchError(f"autotrace exited {proc.returncode}: {err.decode()[-300:]}")
    finally:
        stop_processes([root] if root.is_running() else [])
    recorded = sum(_lines_recorded(logdir, i) for i in range(count))
    return {"cpu": ours, "rss": ours_rss, "ssh_cpu": ssh_cpu, "ssh_rss": theirs_rss,
            "recorded": recorded, "expected": main_lines + lines * (count - 1)}


def run(settings: Settings) -> list[Target]:
    if os.geteuid() != 0:
        # Not a broken harness: a figure this user cannot measure.
        table = Table("remote: panes over ssh", ["hosts"])
        table.targets.append(Target("autotrace CPU per pane, % of one core", None,
                                    PER_PANE_CPU_TARGET, "%", shown="n/a: root only"))
        table.notes.append("its hosts are network namespaces (tests/sshlab.py): run as root")
        table.print()
        return table.targets
    require_tool("ssh")
    from tests.sshlab import NAMESPACE_HOSTS, ssh_lab

    window = 1.5 if settings.quick else 6.0
    counts = (1, 8) if settings.quick else COUNTS
    table = Table(f"remote: panes over ssh x {RATE} lines/s, {window:.1f} s window",
                  ["hosts", "cpu %", "cpu %/pane", "RSS MB", "MB/pane", "ssh cpu %",
                   "ssh MB", "lines recorded"])
    per_pane: dict[int, float] = {}
    with ssh_lab(settings.workdir / "remote-lab") as lab:
        for count in counts:
            hosts = NAMESPACE_HOSTS[:min(count, HOSTS)]
            got = measure(lab, hosts, count, window, settings.workdir / f"remote-{count}")
            per_pane[count] = got["cpu"] / count
            table.add(f"autotrace, {count} pane(s)", str(len(hosts)), fmt(got["cpu"], "%"),
                      fmt(per_pane[count], "%"), fmt(got["rss"], "MB"),
                      fmt(got["rss"] / count, "MB"), fmt(got["ssh_cpu"], "%"),
                      fmt(got["ssh_rss"], "MB"),
                      f"{int(got['recorded'])}/{int(got['expected'])}")
    biggest = max(counts)
    table.targets.append(Target(f"autotrace CPU per pane at {biggest} panes, % of one core",
                                per_pane[biggest], PER_PANE_CPU_TARGET, "%"))
    table.notes.append("cpu and RSS: the autotrace process alone; ssh: its local ssh "
                       "clients (a pane each, a master per host)")
    table.notes.append("lines recorded: every printed line is in the recording when the "
                       "two figures match")
    table.print()
    return table.targets
