"""Throughput (issue 2, point 11): `seq 1 N` through a pty, recorded.

Side by side, alternating, in one run:
  autotrace --headless   records the pane to an asciicast file
  script -q ... /dev/null   a pty and a copy loop, nothing else: the floor
  asciinema rec          a Python recorder of one pty

Wall time and CPU (user + system of the whole process tree) of each; the
ratios autotrace/script and autotrace/asciinema. Target: autotrace's wall
at most 1.3x script's. Every autotrace recording is read back and must hold
all N lines: a throughput that drops data is not a throughput.
Then the share (issue 12): the same seq under `autotrace --share`, with 10
browsers' worth of viewers reading its stream, and with none. Ingest is the
recorded span of seq's output (first to last event). Target: 10 viewers'
ingest at most 1.1x none's.
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from common import (
    Settings,
    Table,
    Target,
    Usage,
    alternate,
    autotrace_executable,
    fmt,
    median,
    ratio,
    run_measured,
)
from peers import asciinema_argv, script_argv

from autotrace.format.reader import Recording, read_cast

NAME = "throughput"
WALL_TARGET = 1.15  # autotrace wall / script wall (issue 9 point 11; was 1.3 in issue 2)


@dataclass
class Run:
    usage: Usage
    complete: bool | None = None  # the recorded bytes are exactly seq's output
    recorded: int = 0  # bytes recorded


def expected_output(lines: int) -> tuple[int, str]:
    """Size and digest of `seq 1 LINES` as a pty delivers it (\\n becomes \\r\\n)."""
    digest = hashlib.sha256()
    size = 0
    batch = 100_000
    for start in range(1, lines + 1, batch):
        chunk = "".join(f"{i}\r\n" for i in range(start, min(start + batch, lines + 1)))
        digest.update(chunk.encode())
        size += len(chunk)
    return size, digest.hexdigest()


def recorded_output(events: object) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    for event in events:  # type: ignore[attr-defined]
        data = event.data.encode()
        digest.update(data)
        size += len(data)
    return size, digest.hexdigest()


def run(settings: Settings) -> list[Target]:
    lines = 200_000 if settings.quick else 3_000_000
    rounds = 1 if settings.quick else 5
    command = f"seq 1 {lines}"
    expected = expected_output(lines)
    timeout = 120.0
    serial = itertools.count()
    autotrace = autotrace_executable()

    rules_cost: dict[str, float] = {}

    def run_autotrace() -> Run:
        logdir = settings.workdir / f"throughput-autotrace-{next(serial)}"
        usage = run_measured([*autotrace, "--headless", "-q", "-l", str(logdir), command],
                             timeout)
        got = recorded_output(Recording.open(logdir).events(0, codes=("o",)))
        if not rules_cost:
            rules_cost.update(findings_rules_cost(Recording.open(logdir)))
        shutil.rmtree(logdir)
        return Run(usage, got == expected, got[0])

    def run_script() -> Run:
        return Run(run_measured(script_argv(command), timeout))

    def run_asciinema() -> Run:
        cast = settings.workdir / f"throughput-asciinema-{next(serial)}.cast"
        usage = run_measured(asciinema_argv(command, cast), timeout)
        got = recorded_output(read_cast(cast, codes=("o",)))
        cast.unlink()
        return Run(usage, got == expected, got[0])

    results = alternate(rounds, {
        "autotrace --headless": run_autotrace,
        "script": run_script,
        "asciinema rec": run_asciinema,
    })
    targets = report(results, lines, expected[0], rounds)
    targets += report_rules(rules_cost, median(
        [r.usage.wall for r in results["autotrace --headless"]]), lines)
    shared = alternate(rounds, {
        f"--share, {count} viewers": lambda count=count: shared_ingest(
            settings.workdir / f"share-{next(serial)}", command, count)
        for count in (0, VIEWERS)})
    return targets + report_share(shared, lines)


VIEWERS = 10
SHARE_TARGET = 1.1  # ingest with 10 viewers / with none


def _viewer(url: str, stop: threading.Event) -> None:
    """A browser's worth of reading: the page once, then its stream to the end."""
    urllib.request.urlopen(url, timeout=60).read()
    with urllib.request.urlopen(url.replace("/?", "/stream?") + "&from=0", timeout=60) as s:
        while not stop.is_set() and s.read(65536):
            pass


def shared_ingest(logdir: Path, command: str, viewers: int) -> float:
    """Seconds the session took to record `command`'s output, shared."""
    flag = logdir.with_suffix(".go")
    proc = subprocess.Popen(
        [*autotrace_executable(), "--headless", "-q", "-l", str(logdir), "--share", "0",
         f"while [ ! -e {flag} ]; do sleep 0.02; done; {command}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    url = proc.stderr.readline().split("sharing read-only at ")[-1].strip()
    stop = threading.Event()
    threads = [threading.Thread(target=_viewer, args=(url, stop), daemon=True)
               for _ in range(viewers)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # connected (their page loaded, their stream open)
    flag.touch()
    proc.wait(timeout=300)
    stop.set()
    times = [e.t for e in Recording.open(logdir).events(0, codes=("o",))]
    shutil.rmtree(logdir)
    flag.unlink()
    return times[-1] - times[0]


def report_share(results: dict[str, list[float]], lines: int) -> list[Target]:
    spans = {name: median(values) for name, values in results.items()}
    none, many = spans["--share, 0 viewers"], spans[f"--share, {VIEWERS} viewers"]
    table = Table(f"share: seq 1 {lines} recorded while shared, medians",
                  ["ingest", "vs no viewer"])
    for name, span in spans.items():
        table.add(name, fmt(span, "s"), fmt(ratio(span, none), "x"))
    table.targets.append(Target(f"ingest with {VIEWERS} viewers / none", ratio(many, none),
                                SHARE_TARGET))
    table.notes.append("ingest = first to last recorded event of seq's output; viewers "
                       "read the page, then the stream of frames (share/server.py)")
    table.print()
    return table.targets




# The dns preset's rules (findings/) run in the session's loop, on every pane
# they read. Their cost is measured here on the same flood, replayed in-process
# through the engine as the kind of pane each family reads (the flood's lines
# start with a digit, as strace -tt and @dns lines do: the slowest path):
# engine CPU over autotrace's ingest wall is what the rules add to a session.
RULES_TARGET = 0.05
RULE_PANES = {"strace": "strace -f -tt -e trace=%file,%network -p PID",
              "tcpdump": "tcpdump -l -n -i any port 53", "@dns": "@dns"}


def findings_rules_cost(recording: Recording) -> dict[str, float]:
    import time

    from autotrace.events import Event
    from autotrace.findings.engine import FindingsEngine, PaneInfo

    events = list(recording.events(0, codes=("o",)))
    cost = {}
    for kind, pane_command in RULE_PANES.items():
        info = PaneInfo(1, pane_command, "tracer", 1)
        engine = FindingsEngine(lambda index, info=info: info if index == 1 else None)
        started = time.process_time()
        for event in events:
            engine.consume(Event(event.t, 1, event.kind, event.data))
        engine.end()
        cost[kind] = time.process_time() - started
    return cost


def report_rules(cost: dict[str, float], wall: float | None, lines: int) -> list[Target]:
    table = Table(f"findings rules over the same flood (seq 1 {lines}), in-process",
                  ["engine cpu", "share of autotrace's ingest wall"])
    targets = []
    for kind, seconds in cost.items():
        share = ratio(seconds, wall) if wall else None
        table.add(f"as a {kind} pane", fmt(seconds, "s"), fmt(share, "x"))
        targets.append(Target(f"dns rules on a {kind} pane / ingest wall", share,
                              RULES_TARGET))
    table.targets += targets
    table.notes.append("issue 11 point 6: the dns preset's rules may add at most 5%")
    table.print()
    return targets


def report(results: dict[str, list[Run]], lines: int, size: int, rounds: int) -> list[Target]:
    wall = {name: median([r.usage.wall for r in runs]) for name, runs in results.items()}
    cpu = {name: median([r.usage.cpu for r in runs]) for name, runs in results.items()}
    table = Table(
        f"throughput: seq 1 {lines} ({size / 1e6:.1f} MB through a pty), "
        f"{rounds} round(s) alternating, medians",
        ["wall", "cpu", "wall/script", "cpu/script", "wall/asciinema", "cpu/asciinema",
         "recording complete"],
    )
    for name, runs in results.items():
        table.add(
            name,
            fmt(wall[name], "s"),
            fmt(cpu[name], "s"),
            fmt(ratio(wall[name], wall["script"]), "x"),
            fmt(ratio(cpu[name], cpu["script"]), "x"),
            fmt(ratio(wall[name], wall["asciinema rec"]), "x"),
            fmt(ratio(cpu[name], cpu["asciinema rec"]), "x"),
            _completeness(runs, size),
        )
    ours = results["autotrace --headless"]
    wall_ratio = ratio(wall["autotrace --headless"], wall["script"])
    all_complete = all(r.complete for r in ours)
    table.targets.append(Target("autotrace wall / script wall", wall_ratio, WALL_TARGET))
    # Completeness as a target too, so a fast run that lost data cannot PASS quietly.
    table.targets.append(Target("autotrace runs whose recording lacks a byte",
                                float(sum(not r.complete for r in ours)), 0, unit="n"))
    table.notes.append("cpu = user+system of the whole process tree (rusage from wait4)")
    if not all_complete:
        table.notes.append("autotrace dropped data: its wall time does not count")
    table.print()
    return table.targets


def _completeness(runs: list[Run], size: int) -> str:
    if runs[0].complete is None:
        return "-"  # script writes to /dev/null: nothing to check
    bad = [r for r in runs if not r.complete]
    if not bad:
        return f"{len(runs)}/{len(runs)}"
    worst = min(r.recorded for r in bad)
    return f"{len(runs) - len(bad)}/{len(runs)} (short by up to {size - worst} B)"
