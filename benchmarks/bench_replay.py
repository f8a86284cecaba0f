"""Replay (issue 4): seeking in a long recording, and opening a big one.

Recordings are generated here, written directly in the documented format
(docs/recording-format.md), with output at realistic rates:

  hour   1 hour, 4 panes: a main command logging a few lines a second, an
         strace in bursts, a tcpdump -XX, a probe redrawing once a second;
         markers every 10 minutes. A few MB per pane.
  big    200 MB: a quiet main pane and a tcpdump -XX flood pane.

Measured, with no terminal (Player + MultiPaneView + an injected clock):

  seek   random targets, forward and backward, each `seek` + the frame drawn
         (screens caught up): once as a session goes (snapshots kept), once
         with no snapshot at all (screens rebuilt from the bytes before the
         target). Target: every seek <= 100 ms. For scale: the same moment
         reached by playing from the start.
  open   a fresh process that imports autotrace, opens the 200 MB recording
         and draws its first frame: time to first frame (inside the process:
         Player + first advance + frame) <= 2 s; peak RSS, which must not
         grow with the recording (ratio to a 2 MB recording of the same
         shape <= 1.5x). Peers on the same pane file, in a pty: asciinema
         play (until its first output) and asciinema cat (whole file).
  export `autotrace export hour --html` (issue 12): wall and CPU, and the
         page's size. Targets: <= 30 s, <= 20 MB. What it costs: every pane
         emulated once, start to end, and a frame taken every 0.5 s (0.1 s
         for recordings up to 10 minutes) of each pane that changed.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import signal
import statistics
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

from common import (
    BenchError,
    Settings,
    Table,
    Target,
    alternate,
    autotrace_executable,
    fmt,
    median,
    ratio,
    require_tool,
    run_measured,
)

from autotrace.format.reader import Recording
from autotrace.replay.player import Player
from autotrace.view.multipane import MultiPaneView

NAME = "replay"
COLS, ROWS = 200, 50
SEEK_TARGET = 100.0  # ms, every seek (issue 9 point 11; was 200 ms in issue 4)
FIRST_FRAME_TARGET = 2.0  # s
RSS_GROWTH_TARGET = 1.5  # x: peak RSS, 200 MB recording / 2 MB recording
BIG_MB = 200
SMALL_MB = 2


# ---------------------------------------------------------------- recordings


class CastWriter:
    """One pane file in the documented format: a header line, then events."""

    def __init__(self, path: Path, cols: int, rows: int, command: str):
        self.file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self.file.write(json.dumps({"version": 2, "width": cols, "height": rows,
                                    "timestamp": int(time.time()), "command": command}) + "\n")
        self.bytes = 0

    def event(self, t: float, code: str, data: str) -> None:
        line = json.dumps([round(t, 6), code, data], ensure_ascii=False) + "\n"
        self.bytes += len(line)
        self.file.write(line)

    def close(self) -> None:
        self.file.close()


def write_manifest(directory: Path, commands: list[str], duration: float,
                   sizes: list[tuple[int, int]]) -> None:
    panes = [{"index": i, "role": "main" if i == 0 else "tracer", "command": command,
              "command_run": command, "pid": 4242 + i, "start": 0.0, "end": duration,
              "exit_status": 0, "exit_signal": None, "exit_signal_name": None, "note": None,
              "file": f"pane-{i}.cast", "bytes": 0, "cols": cols, "rows": rows}
             for i, (command, (cols, rows)) in enumerate(zip(commands, sizes))]
    manifest = {"format": "autotrace-recording", "format_version": 1,
                "autotrace_version": "bench", "host": "bench", "kernel": "Linux",
                "user": "bench", "started_at": "2026-01-01T00:00:00.000+00:00",
                "started_unix": 1767225600.0, "duration": duration,
                "terminal": {"cols": COLS, "rows": ROWS}, "attached": False,
                "redactions": [], "panes": panes}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def log_line(rng: random.Random, t: float, n: int) -> str:
    level = rng.choice(["\x1b[32mINFO\x1b[0m"] * 8 +
                       ["\x1b[33mWARN\x1b[0m", "\x1b[31mERROR\x1b[0m"])
    return (f"{t:10.3f} {level} request {n} from 127.0.0.1:{40000 + n % 20000} "
            f"took {rng.randrange(1, 900)} ms\r\n")


def strace_line(rng: random.Random, n: int) -> str:
    call = rng.choice([
        f"read(3, \"GET /index.html HTTP/1.1\\r\\nHost: localhost\\r\\n\"..., 4096) = {n % 4096}",
        f"openat(AT_FDCWD, \"/var/lib/app/cache/{n % 977:04d}\", O_RDONLY|O_CLOEXEC) = 5",
        "epoll_wait(4, [{events=EPOLLIN, data={u32=3, u64=3}}], 64, 1000) = 1",
        f"write(1, \"request {n} done\\n\", 18) = 18",
        "futex(0x7f3a2c0008c8, FUTEX_WAKE_PRIVATE, 1) = 0",
    ])
    return f"[pid {4242 + n % 3}] {call}\r\n"


def packet(rng: random.Random, t: float, n: int) -> str:
    head = (f"{int(t) // 3600 % 24:02d}:{int(t) // 60 % 60:02d}:{t % 60:09.6f} IP "
            f"127.0.0.1.{40000 + n % 20000} > 127.0.0.1.53: {n % 65536}+ A? example.org. (29)\r\n")
    rows = []
    for offset in range(0, rng.choice([48, 64, 96]), 16):
        words = " ".join(f"{rng.randrange(65536):04x}" for _ in range(8))
        rows.append(f"\t0x{offset:04x}:  {words}  ................\r\n")
    return head + "".join(rows)


def probe_frame(rng: random.Random, t: float) -> str:
    lines = [f"@proc pid 4242   t={t:8.1f}s", "state     S (sleeping)",
             f"cpu       {rng.uniform(0, 40):5.1f} %", f"rss       {rng.randrange(20, 90)} MB",
             f"threads   {rng.randrange(1, 9)}", f"fds       {rng.randrange(5, 60)}"]
    lines += [f"  fd {i:<3} socket:[{rng.randrange(10**5, 10**6)}]" for i in range(8)]
    return "\x1b[H\x1b[2J" + "\r\n".join(lines)


def write_hour(directory: Path, seconds: float) -> tuple[float, int]:
    """The 1-hour, 4-pane recording; returns (duration, total bytes)."""
    directory.mkdir()
    rng = random.Random(42)
    commands = ["./server --verbose", "strace -f -p 4242", "tcpdump -XXs 20000 -i lo",
                "@proc"]
    size = (COLS // 2 - 1, ROWS // 2 - 2)
    writers = [CastWriter(directory / f"pane-{i}.cast", *size, c) for i, c in enumerate(commands)]
    n = 0
    for second in range(int(seconds)):
        events: list[tuple[float, int, str, str]] = []
        for _ in range(rng.randrange(2, 7)):
            n += 1
            t = second + rng.random()
            events.append((t, 0, "o", log_line(rng, t, n)))
        if rng.random() < 0.4:  # strace in bursts
            start = second + rng.random()
            for k in range(rng.randrange(10, 120)):
                events.append((start + k * 0.0005, 1, "o", strace_line(rng, n + k)))
        for _ in range(rng.randrange(2, 9)):
            t = second + rng.random()
            events.append((t, 2, "o", packet(rng, t, n)))
        events.append((second + 0.5, 3, "o", probe_frame(rng, second + 0.5)))
        if second % 600 == 300:
            events.append((second + 0.25, 0, "m", f"user:mark {second // 600}"))
        for t, pane, code, data in sorted(events):
            writers[pane].event(t, code, data)
    writers[0].event(seconds, "m", "end")
    for writer in writers:
        writer.close()
    write_manifest(directory, commands, seconds, [size] * 4)
    return seconds, sum(w.bytes for w in writers)


def write_big(directory: Path, megabytes: float) -> Path:
    """A quiet main pane and a tcpdump -XX flood pane of about `megabytes`."""
    directory.mkdir()
    rng = random.Random(7)
    size = (COLS, ROWS // 2 - 2)
    main = CastWriter(directory / "pane-0.cast", *size, "dig @127.0.0.1 example.org")
    flood = CastWriter(directory / "pane-1.cast", *size, "tcpdump -XXs 20000 -i lo")
    # A few distinct packets, repeated with fresh times: generating 200 MB
    # of random hex would take longer than measuring it.
    samples = [json.dumps(packet(rng, 0.0, n)) for n in range(64)]
    t, n, wanted = 0.0, 0, megabytes * 2**20
    while flood.bytes < wanted:
        lines = []
        for _ in range(1000):
            t += 0.0007
            lines.append(f'[{t:.6f}, "o", {samples[n % 64]}]\n')
            n += 1
        block = "".join(lines)
        flood.bytes += len(block)
        flood.file.write(block)
    flood.close()
    for second in range(int(t)):
        main.event(second + 0.3, "o", log_line(rng, second + 0.3, second))
    main.event(t, "m", "end")
    main.close()
    write_manifest(directory, ["dig @127.0.0.1 example.org", "tcpdump -XXs 20000 -i lo"], t,
                   [size, size])
    return directory


# ---------------------------------------------------------------- seeking


class StoppedClock:
    """The real clock the replay follows, standing still: only seeks move it."""

    def __call__(self) -> float:
        return 0.0


def open_player(directory: Path, **options: Any) -> Player:
    player = Player(Recording.open(directory), MultiPaneView(COLS, ROWS),
                    real_clock=StoppedClock(), **options)
    player.clock.pause()
    return player


def timed_seeks(directory: Path, targets: list[float], keep_snapshots: bool) -> list[float]:
    """Milliseconds for each seek, its frame included."""
    player = open_player(directory)
    times = []
    try:
        for target in targets:
            if not keep_snapshots:
                player.snapshots.clear()
            start = time.perf_counter()
            player.seek(target)
            player.frame()
            times.append((time.perf_counter() - start) * 1000)
    finally:
        player.close()
    return times


def from_the_start(directory: Path, target: float) -> float:
    """Milliseconds to show `target` rebuilt from each pane's start (no
    lookback limit): at least what a player without an index pays."""
    player = open_player(directory, lookback_bytes=1 << 40)
    try:
        start = time.perf_counter()
        player.seek(target)
        player.frame()
        return (time.perf_counter() - start) * 1000
    finally:
        player.close()


def seek_targets(duration: float, count: int) -> list[float]:
    rng = random.Random(1)
    return [duration, 0.0, duration / 2] + [rng.uniform(0, duration) for _ in range(count)]


# ---------------------------------------------------------------- opening


FIRST_FRAME = r"""
import json, sys, time
from pathlib import Path
start = time.perf_counter()
from autotrace.replay.player import Player
from autotrace.format.reader import Recording
from autotrace.view.multipane import MultiPaneView
imported = time.perf_counter()
player = Player(Recording.open(Path(sys.argv[1])), MultiPaneView(COLS, ROWS))
player.advance()
frame = player.frame()
done = time.perf_counter()
sys.stdout.write(json.dumps({"first_frame": done - imported, "imports": imported - start}))
sys.stdout.flush()
# Then the end, the middle and the start: memory must stay bounded there too.
for where in (player.clock.duration, player.clock.duration / 2, 0.0):
    player.seek(where)
    player.frame()
sys.stdout.write(" seeks done\n")
sys.stdout.flush()
sys.stdin.readline()  # held until the peak RSS is read
""".replace("COLS", str(COLS)).replace("ROWS", str(ROWS))


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak RSS (VmHWM) since its exec: unlike getrusage's
    ru_maxrss, it does not count the parent's memory it was forked from."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class PtyRun:
    """A command with a pty as its controlling terminal (asciinema opens
    /dev/tty), measured from spawn: first output, exit, peak RSS."""

    def __init__(self, argv: list[str]):
        self.master, slave = os.openpty()
        termios_size = (ROWS, COLS)
        with contextlib.suppress(OSError):
            import fcntl
            import struct
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *termios_size, 0, 0))
        self.start = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True, preexec_fn=_take_terminal)
        os.close(slave)
        self.output = b""
        self.rss = 0.0  # peak RSS in MB, last seen

    def _poll(self, wait: float) -> None:
        """Drain the pty (so the command never blocks on it), note its peak RSS."""
        ready, _, _ = select.select([self.master], [], [], wait)
        if ready:
            with contextlib.suppress(OSError):
                self.output = (self.output + os.read(self.master, 65536))[-8192:]
        self.rss = peak_rss_mb(self.proc.pid) or self.rss

    def first_output(self, timeout: float, until: bytes = b"") -> float:
        """Seconds from spawn until output (containing `until`) arrives."""
        deadline = self.start + timeout
        while time.monotonic() < deadline:
            self._poll(0.02)
            if self.output and until in self.output:
                return time.monotonic() - self.start
        raise BenchError(f"{self.proc.args[0]}: no output in {timeout:.0f} s")

    def finish(self, timeout: float, kill: bool = False) -> float:
        """Seconds from spawn to exit."""
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        deadline = self.start + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                os.killpg(self.proc.pid, signal.SIGKILL)
                raise BenchError(f"{self.proc.args[0]}: still running after {timeout:.0f} s")
            self._poll(0.02)
        os.close(self.master)
        return time.monotonic() - self.start


def _take_terminal() -> None:
    import fcntl
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def ours_first_frame(directory: Path) -> dict[str, float]:
    run = PtyRun([sys.executable, "-c", FIRST_FRAME, str(directory)])
    spawn_to_frame = run.first_output(120, until=b"}")
    run.first_output(120, until=b"seeks done")
    run._poll(0.0)
    rss = run.rss
    os.write(run.master, b"\n")
    run.finish(60)
    if run.proc.returncode != 0:
        raise BenchError(f"first frame: {run.output.decode(errors='replace')[-300:]}")
    text = run.output.decode(errors="replace")
    data = json.loads(text[text.index("{"):text.index("}") + 1])
    return {"spawn_to_frame": spawn_to_frame, "first_frame": data["first_frame"], "rss": rss}


def asciinema_play(cast: Path) -> dict[str, float]:
    run = PtyRun([require_tool("asciinema"), "play", "-i", "0.01", str(cast)])
    first = run.first_output(60)
    run._poll(0.0)
    rss = run.rss
    run.finish(30, kill=True)
    return {"spawn_to_frame": first, "rss": rss}


def asciinema_cat(cast: Path) -> dict[str, float]:
    # exec: the measured process is asciinema itself, not a shell around it.
    run = PtyRun(["sh", "-c", f'exec {require_tool("asciinema")} cat "$1" >/dev/null', "sh",
                  str(cast)])
    wall = run.finish(300)
    if run.proc.returncode != 0:
        raise BenchError(f"asciinema cat exited {run.proc.returncode}")
    return {"whole_file": wall, "rss": run.rss}


# ---------------------------------------------------------------- run


def run(settings: Settings) -> list[Target]:
    hour = 360.0 if settings.quick else 3600.0
    seeks = 10 if settings.quick else 40
    big_mb = 10 if settings.quick else BIG_MB
    rounds = 1 if settings.quick else 3

    work = settings.workdir / "replay"
    work.mkdir()
    duration, total = write_hour(work / "hour", hour)
    targets = seek_targets(duration, seeks)
    kept = timed_seeks(work / "hour", targets, keep_snapshots=True)
    cold = timed_seeks(work / "hour", targets, keep_snapshots=False)
    start_cost = from_the_start(work / "hour", duration * 0.9)
    seek_results = report_seeks(duration, total, kept, cold, start_cost)
    seek_results += export_page(work, duration, total)

    big = write_big(work / "big", big_mb)
    small = write_big(work / "small", SMALL_MB)
    cast = big / "pane-1.cast"
    results = alternate(rounds, {
        "autotrace replay (ours)": lambda: ours_first_frame(big),
        "asciinema play": lambda: asciinema_play(cast),
        "asciinema cat": lambda: asciinema_cat(cast),
    })
    small_rss = median([ours_first_frame(small)["rss"] for _ in range(rounds)])
    size_mb = sum(p.stat().st_size for p in big.iterdir()) / 2**20
    return seek_results + report_open(results, small_rss, size_mb, cast.stat().st_size / 2**20)


EXPORT_SECONDS, EXPORT_MB = 30.0, 20.0


def export_page(work: Path, duration: float, total: int) -> list[Target]:
    """The hour recording as one HTML page: how long, how big."""
    page = work / "hour.html"
    usage = run_measured([*autotrace_executable(), "export", str(work / "hour"), "--html",
                          "-o", str(page)], timeout=600)
    # For scale: reading every pane's text once (cat emulates lines, not screens).
    cat = run_measured([*autotrace_executable(), "cat", str(work / "hour")], timeout=600)
    size = page.stat().st_size / 2**20
    table = Table(f"export --html: {duration / 3600:.2g} h, 4 panes, "
                  f"{total / 2**20:.0f} MB recording", ["wall", "cpu", "vs cat", "out"])
    table.add("autotrace export --html", fmt(usage.wall, "s"), fmt(usage.cpu, "s"),
              fmt(ratio(usage.wall, cat.wall), "x"), f"{size:.1f} MB")
    table.add("autotrace cat", fmt(cat.wall, "s"), fmt(cat.cpu, "s"), "1.00x", "(text)")
    table.targets = [Target("export --html wall (s)", usage.wall, EXPORT_SECONDS, "s"),
                     Target("export --html page (MB)", size, EXPORT_MB, "MB")]
    table.notes = ["no peer makes a multi-pane page; the page holds frames of every "
                   "pane's screen (gzipped JSON, base64) and the player script"]
    table.print()
    return table.targets


def report_seeks(duration: float, total: int, kept: list[float], cold: list[float],
                 start_cost: float) -> list[Target]:
    table = Table(
        f"replay seek: {duration / 3600:.2g} h, 4 panes, {total / 2**20:.0f} MB; "
        f"{len(kept)} seeks, each with its frame",
        ["median", "max", "vs from the start"],
    )
    table.add("seek (snapshots kept)", fmt(median(kept), "ms"), fmt(max(kept), "ms"),
              fmt(ratio(median(kept), start_cost), "x"))
    table.add("seek (no snapshot)", fmt(median(cold), "ms"), fmt(max(cold), "ms"),
              fmt(ratio(median(cold), start_cost), "x"))
    table.add("rebuilt from the start, at 90 %", fmt(start_cost, "ms"), "", "1.00x")
    table.targets = [
        Target("slowest seek, snapshots kept (ms)", max(kept), SEEK_TARGET, "ms"),
        Target("slowest seek, no snapshot (ms)", max(cold), SEEK_TARGET, "ms"),
    ]
    table.notes = [f"seek times: stdev {statistics.pstdev(kept):.0f} ms kept, "
                   f"{statistics.pstdev(cold):.0f} ms cold; no peer seeks (asciinema play "
                   "only goes forward), so the scale is rebuilding from the start"]
    table.print()
    return table.targets


def report_open(results: dict[str, list[dict[str, float]]], small_rss: float, size_mb: float,
                cast_mb: float) -> list[Target]:
    def med(name: str, key: str) -> float | None:
        values = [r[key] for r in results[name] if key in r]
        return median(values) if values else None

    ours, play, cat = "autotrace replay (ours)", "asciinema play", "asciinema cat"
    table = Table(
        f"replay open: {size_mb:.0f} MB recording (pane file {cast_mb:.0f} MB), "
        f"{len(results[ours])} round(s) alternating, medians",
        ["spawn to 1st frame", "vs asciinema play", "whole file", "peak RSS", "RSS vs play"],
    )
    ours_frame, play_frame = med(ours, "spawn_to_frame"), med(play, "spawn_to_frame")
    table.add(ours, fmt(ours_frame, "s"), fmt(ratio(ours_frame, play_frame), "x"), "",
              fmt(med(ours, "rss"), "MB"), fmt(ratio(med(ours, "rss"), med(play, "rss")), "x"))
    table.add(play, fmt(play_frame, "s"), "1.00x", "", fmt(med(play, "rss"), "MB"), "1.00x")
    table.add(cat, "", "", fmt(med(cat, "whole_file"), "s"), fmt(med(cat, "rss"), "MB"),
              fmt(ratio(med(cat, "rss"), med(play, "rss")), "x"))
    first_frame = med(ours, "first_frame")
    table.targets = [
        Target("first frame: Player + advance + frame (s)", first_frame, FIRST_FRAME_TARGET,
               "s"),
        Target(f"peak RSS, {size_mb:.0f} MB / {SMALL_MB} MB recording",
               ratio(med(ours, "rss"), small_rss), RSS_GROWTH_TARGET, "x"),
    ]
    table.notes = [f"our peak RSS: first frame, then seeks to the end, the middle and the "
                   f"start; with a {SMALL_MB} MB recording: {small_rss:.1f} MB",
                   "asciinema play streams the file (first event only); asciinema cat "
                   "reads all of it",
                   "spawn to 1st frame includes starting Python and imports for everyone"]
    table.print()
    return table.targets

