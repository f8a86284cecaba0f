"""The live view (issue 3), driven in tmux as a person would use it.

Each viewer runs in a detached tmux session of a fixed size (its own tmux
server, `tmux -L bench-<pid>-...`), keys go in with send-keys, the screen is
read with capture-pane. Viewers, side by side in the same run:

  autotrace (ours)   `autotrace -l DIR MAIN TRACER...` with no --headless.
                     Until it draws a view (the screen shows "Running"),
                     its rows say "n/a: view not available".
  autotrace 0.0.26   the original, from PyPI (peers.py)
  tmux               a second tmux server with one pane per command, tiled,
                     shown by a tmux client attached inside the bench
                     session; its cost is that server plus that client.

Only the viewer's own processes count (for ours, the autotrace process), not
the commands it shows, and not the bench's tmux server that stands in for
the user's terminal. Scenarios and issue 3's targets:

  quiet     4 panes of `sleep`: CPU % of one core           <= 0.5 %
  printers  4 panes x 20 lines/s: CPU % of one core         <= 4 % (aim: 2x tmux)
  flood     `yes` (and a quiet tracer): RSS after 60 s      <= 150 MB
            then `p`: time until the screen shows Paused    <= 200 ms
            (tmux: prefix-[ until copy mode shows [0/N])
  seq       `seq 1 3000000` shown live, until seq has ended  <= 2x script
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

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
    ratio,
    require_tool,
    rss_mb,
    run_measured,
    stop_processes,
    tick_share,
    tree,
    wait_until_gone,
)
from peers import original_autotrace, script_argv

NAME = "view"
COLS, ROWS = 200, 50
QUIET_TARGET = 0.5  # % of one core
PRINTERS_TARGET = 4.0  # % of one core (issue 9; issue 3 had 5)
PAUSE_TARGET = 200.0  # ms
RSS_TARGET = 150.0  # MB
SEQ_TARGET = 2.0  # x script's wall
PAUSE_WAIT = 15.0  # seconds to wait for Paused before giving up
OURS, ORIGINAL, TMUX = "autotrace (ours)", "autotrace 0.0.26", "tmux"
SCRIPT = "script (no view)"


class TmuxServer:
    """A private tmux server (own socket, no user config) with one session."""

    def __init__(self, tag: str):
        self.socket = f"bench-{os.getpid()}-{tag}-{uuid.uuid4().hex[:6]}"
        self.session = "bench"
        self.socket_path: Path | None = None

    def tmux(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                                text=True, timeout=30, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise BenchError(f"tmux {' '.join(args[:2])}: {result.stderr.strip()}")
        return result.stdout

    def start(self, argv: list[str], cols: int = COLS, rows: int = ROWS) -> None:
        """A detached session running argv itself (no shell), so the pane's pid is argv's."""
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", self.session,
                  "-x", str(cols), "-y", str(rows), "--", *argv)
        # A viewer that ends leaves its screen to read, and the server alive.
        self.tmux("set-option", "-g", "remain-on-exit", "on")
        self.socket_path = Path(self.value("#{socket_path}"))

    def capture(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.session, check=False)

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)

    def value(self, fmt: str, target: str | None = None) -> str:
        return self.tmux("display-message", "-p", "-t", target or self.session, fmt).strip()

    def pane_process(self, target: str | None = None) -> psutil.Process:
        return psutil.Process(int(self.value("#{pane_pid}", target)))

    def server_process(self) -> psutil.Process:
        return psutil.Process(int(self.value("#{pid}")))

    def kill(self) -> None:
        """End the server and everything that ran in it (found by pid beforehand)."""
        try:
            victims = tree(self.server_process())
        except (BenchError, ValueError, psutil.Error):
            victims = []
        self.tmux("kill-server", check=False)
        stop_processes(victims, grace=2.0)
        if self.socket_path is not None:  # tmux leaves its socket file behind
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()

    def wait_for(self, pattern: str, timeout: float, poll: float = 0.01) -> float | None:
        """Seconds until the screen matches PATTERN, None on timeout."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if re.search(pattern, self.capture()):
                return time.monotonic() - start
            time.sleep(poll)
        return None


# ---------------------------------------------------------------- viewers


class Viewer:
    """How one viewer is started in the bench's tmux, and what of it to measure."""

    name = ""
    pause_keys: tuple[str, ...] = ("p",)
    paused_pattern = r"(?i)\bpaused\b"
    drawn_pattern = r"(?i)\brunning\b"

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.screen = TmuxServer("view")
        self.available = True
        self.why_not = ""
        self.started_at = 0.0

    def launch(self, commands: list[str]) -> None:
        """Start the viewer on COMMANDS; set started_at when the commands are set going."""
        raise NotImplementedError

    def processes(self) -> list[psutil.Process]:
        """The viewer's own processes: their CPU and memory are what is measured."""
        return [self.screen.pane_process()]

    def root(self) -> psutil.Process:
        """The process under which the shown commands run."""
        return self.screen.pane_process()

    def wait_drawn(self, timeout: float) -> bool:
        return self.screen.wait_for(self.drawn_pattern, timeout, poll=0.05) is not None

    def close(self) -> None:
        self.screen.kill()


class Ours(Viewer):
    name = OURS

    def launch(self, commands: list[str]) -> None:
        logdir = self.workdir / f"view-ours-{uuid.uuid4().hex[:6]}"
        self.started_at = time.monotonic()
        self.screen.start([*autotrace_executable(), "-l", str(logdir), *commands])


class Original(Viewer):
    name = ORIGINAL

    def __init__(self, workdir: Path, executable: Path):
        super().__init__(workdir)
        self.executable = executable

    def launch(self, commands: list[str]) -> None:
        logdir = self.workdir / f"view-original-{uuid.uuid4().hex[:6]}"
        # With a main command alone it adds `strace -f -p PID` of its own: a
        # quiet tracer keeps the work the same as the other viewers'.
        if len(commands) == 1:
            commands = [*commands, "sleep 3600"]
        self.started_at = time.monotonic()
        self.screen.start([str(self.executable), "-l", str(logdir), *commands])


class Tmux(Viewer):
    """tmux as the multi-pane viewer: a server of its own, shown by a client."""

    name = TMUX
    pause_keys = ("C-b", "[")  # copy mode: the pane stops scrolling
    paused_pattern = r"\[\d+/\d+\]"  # copy mode's position indicator
    drawn_pattern = r"\[bench\]"  # the client's status line

    def __init__(self, workdir: Path):
        super().__init__(workdir)
        self.inner = TmuxServer("peer")

    def launch(self, commands: list[str]) -> None:
        # Panes hold `cat` until the client is attached, so every byte of the
        # real commands is drawn by a client, as in the other viewers.
        self.inner.start(["cat"], COLS, ROWS - 1)
        for _ in commands[1:]:
            self.inner.tmux("split-window", "-t", self.inner.session, "--", "cat")
            self.inner.tmux("select-layout", "-t", self.inner.session, "tiled")
        self.screen.start(["env", "-u", "TMUX", "tmux", "-L", self.inner.socket, "attach",
                           "-t", self.inner.session])
        if self.screen.wait_for(self.drawn_pattern, 10, poll=0.05) is None:
            raise BenchError("the tmux client did not attach")
        panes = self.inner.tmux("list-panes", "-t", self.inner.session,
                                "-F", "#{pane_id}").split()
        self.started_at = time.monotonic()
        for pane, command in zip(panes, commands):
            self.inner.tmux("respawn-pane", "-k", "-t", pane, command)

    def processes(self) -> list[psutil.Process]:
        return [self.inner.server_process(), self.screen.pane_process()]

    def root(self) -> psutil.Process:
        return self.inner.server_process()

    def close(self) -> None:
        self.screen.kill()
        self.inner.kill()


# ---------------------------------------------------------------- scenarios


@dataclass
class Durations:
    window: float  # CPU sampling window
    flood: float  # seconds of `yes` before RSS is read
    seq_lines: int
    original_seq_cap: float  # the original shows ~150 lines/s: give up after this
    draw_timeout: float  # how long a viewer may take to show its first screen
    settle: float  # seconds between "the view is up" and a measuring window


@dataclass
class Outcome:
    """One figure per viewer; a note, when present, is shown instead of it."""

    values: dict[str, float | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def missing(self, name: str, why: str) -> None:
        self.values[name], self.notes[name] = None, why

    def at_least(self, name: str, bound: float, shown: str) -> None:
        """Gave up waiting: BOUND is a lower bound (it still FAILs a target below it)."""
        self.values[name], self.notes[name] = bound, shown

    def cell(self, name: str, unit: str) -> str:
        return self.notes.get(name) or fmt(self.values.get(name), unit)

    def ratio_cell(self, name: str, other: str) -> str:
        """NAME's figure over OTHER's: blank unless both are plain measurements."""
        if name in self.notes or other in self.notes:
            return ""
        return fmt(ratio(self.values.get(name), self.values.get(other)), "x")

    def target(self, label: str, limit: float, unit: str) -> Target:
        return Target(label, self.values.get(OURS), limit, unit, shown=self.notes.get(OURS))


class ViewBench:
    def __init__(self, viewers: list[Viewer], durations: Durations):
        self.viewers = viewers
        self.d = durations

    def each_viewer(self, commands: list[str],
                    measure: Callable[[Viewer], float | None]) -> Outcome:
        """Launch every available viewer in turn on COMMANDS; measure it once it draws."""
        outcome = Outcome()
        for viewer in self.viewers:
            if not viewer.available:
                outcome.missing(viewer.name, viewer.why_not)
                continue
            try:
                viewer.launch(commands)
                if viewer.wait_drawn(self.d.draw_timeout):
                    outcome.values[viewer.name] = measure(viewer)
                else:
                    # Remembered: the later scenarios skip it instead of waiting again.
                    viewer.available, viewer.why_not = False, "n/a: view not available"
                    outcome.missing(viewer.name, viewer.why_not)
            finally:
                viewer.close()
        return outcome

    def cpu(self, viewer: Viewer) -> float:
        time.sleep(self.d.settle)
        return cpu_share(viewer.processes, self.d.window)

    def quiet(self) -> Outcome:
        return self.each_viewer(["sleep 3600"] * 4, self.cpu)

    def printers(self) -> Outcome:
        seconds = self.d.draw_timeout + self.d.settle + self.d.window + 5
        return self.each_viewer([printer(seconds)] * 4, self.cpu)

    def flood(self) -> tuple[Outcome, Outcome]:
        """RSS after the flood, then how long `p` takes to show."""
        pause = Outcome()

        def measure(viewer: Viewer) -> float:
            time.sleep(self.d.flood)
            rss = rss_mb(viewer.processes())
            start = time.monotonic()
            viewer.screen.send(*viewer.pause_keys)
            if viewer.screen.wait_for(viewer.paused_pattern, PAUSE_WAIT) is None:
                pause.at_least(viewer.name, PAUSE_WAIT * 1000, f"> {PAUSE_WAIT:.0f} s")
            else:
                pause.values[viewer.name] = (time.monotonic() - start) * 1000
            return rss

        rss = self.each_viewer(["yes", "sleep 3600"], measure)
        for name, why in rss.notes.items():
            pause.missing(name, why)
        return rss, pause

    def seq(self) -> Outcome:
        """Wall time of seq shown live: from the moment it is set going until it ends.

        No wait for the first screen here (seq may be over by then): whether a
        viewer draws is known from the scenarios before.
        """
        command = f"seq 1 {self.d.seq_lines}"
        argv = command.split()
        outcome = Outcome()
        for viewer in self.viewers:
            if not viewer.available:
                outcome.missing(viewer.name, viewer.why_not)
                continue
            cap = self.d.original_seq_cap if viewer.name == ORIGINAL else 120.0
            try:
                viewer.launch([command])
                proc = _find_process(viewer.root(), argv, timeout=5.0)
                if proc is None:
                    outcome.missing(viewer.name, "n/a: seq not seen")
                elif wait_until_gone(proc, cap) is None:
                    outcome.at_least(viewer.name, cap, f"> {cap:.0f} s")
                else:
                    outcome.values[viewer.name] = time.monotonic() - viewer.started_at
            finally:
                viewer.close()
        outcome.values[SCRIPT] = run_measured(script_argv(command), 120).wall
        return outcome


def _find_process(root: psutil.Process, argv: list[str], timeout: float) -> psutil.Process | None:
    """The descendant of ROOT running argv (None if it came and went unseen).

    The program may have been found on PATH by the viewer (pexpect runs
    /usr/bin/seq): its name is compared, not its path.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in tree(root):
            with contextlib.suppress(psutil.Error):
                cmdline = proc.cmdline()
                if cmdline[:1] and os.path.basename(cmdline[0]) == argv[0] \
                        and cmdline[1:] == argv[1:]:
                    return proc
        time.sleep(0.005)
    return None


# ---------------------------------------------------------------- report


def cpu_table(title: str, outcome: Outcome, limit: float, window: float) -> Table:
    table = Table(title, ["cpu % of a core", "vs tmux", "vs 0.0.26"])
    for name in outcome.values:
        table.add(name, outcome.cell(name, "%"), outcome.ratio_cell(name, TMUX),
                  outcome.ratio_cell(name, ORIGINAL))
    table.targets.append(outcome.target("ours, % of one core", limit, "%"))
    table.notes.append(f"CPU time comes in clock ticks: 0.00% means under "
                       f"{tick_share(window):.2f}% over this window (no ratio then)")
    return table


def flood_table(seconds: float, rss: Outcome, pause: Outcome) -> Table:
    table = Table(f"view flood: `yes` for {seconds:.0f} s, then p",
                  ["RSS", "vs tmux", "vs 0.0.26", "p to Paused", "vs tmux", "vs 0.0.26"])
    for name in rss.values:
        table.add(name, rss.cell(name, "MB"), rss.ratio_cell(name, TMUX),
                  rss.ratio_cell(name, ORIGINAL), pause.cell(name, "ms"),
                  pause.ratio_cell(name, TMUX), pause.ratio_cell(name, ORIGINAL))
    table.targets.append(rss.target(f"ours, RSS after {seconds:.0f} s of flood", RSS_TARGET,
                                    "MB"))
    table.targets.append(pause.target("ours, p until Paused is on screen", PAUSE_TARGET, "ms"))
    table.notes.append("tmux has no pause: its row is prefix-[ until copy mode shows; "
                       "it is also the floor of key-in, screen-read-back here")
    return table


def seq_table(lines: int, outcome: Outcome) -> Table:
    base = outcome.values[SCRIPT]
    table = Table(f"view seq: seq 1 {lines} shown live, until seq has ended",
                  ["wall", "vs script"])
    for name, value in outcome.values.items():
        vs_script = outcome.ratio_cell(name, SCRIPT)
        if value is not None and name in outcome.notes:  # gave up: a lower bound
            vs_script = f"> {ratio(value, base):.0f}x"
        table.add(name, outcome.cell(name, "s"), vs_script)
    ours = Outcome()
    if outcome.values.get(OURS) is not None:
        ours.values[OURS] = ratio(outcome.values[OURS], base)
    else:
        ours.missing(OURS, outcome.notes.get(OURS, "n/a"))
    if OURS in outcome.notes and outcome.values.get(OURS) is not None:
        ours.notes[OURS] = f"> {ours.values[OURS]:.1f}x"
    table.targets.append(ours.target("ours wall / script wall", SEQ_TARGET, "x"))
    table.notes.append("script runs with no view (output to /dev/null): the pty's floor")
    return table


def run(settings: Settings) -> list[Target]:
    require_tool("tmux")
    if settings.quick:
        durations = Durations(window=1.0, flood=2.0, seq_lines=200_000, original_seq_cap=3.0,
                              draw_timeout=4.0, settle=0.5)
    else:
        durations = Durations(window=10.0, flood=60.0, seq_lines=3_000_000,
                              original_seq_cap=20.0, draw_timeout=6.0, settle=1.0)
    viewers: list[Viewer] = [Ours(settings.workdir)]
    if settings.with_original:
        viewers.append(Original(settings.workdir, original_autotrace()))
    viewers.append(Tmux(settings.workdir))
    bench = ViewBench(viewers, durations)
    window = f"{durations.window:g} s window"
    tables = [
        cpu_table(f"view quiet: 4 panes of sleep, {window}", bench.quiet(), QUIET_TARGET,
                  durations.window),
        cpu_table(f"view printers: 4 panes x 20 lines/s, {window}", bench.printers(),
                  PRINTERS_TARGET, durations.window),
        flood_table(durations.flood, *bench.flood()),
        seq_table(durations.seq_lines, bench.seq()),
    ]
    targets = []
    for table in tables:
        table.print()
        targets += table.targets
    return targets
