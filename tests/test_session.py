"""Headless sessions end to end: real ptys, real tracers, real signals."""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import textwrap

import psutil
import pytest

from tests.conftest import (
    REPO,
    RecordingFiles,
    kill_all,
    run_autotrace,
    start_autotrace,
    trace,
    wait_for,
)


def python(code: str, *args: str) -> str:
    """A `python3 -c` command line for a pane (the code must not contain ')."""
    return " ".join(["python3", "-c", f"'{textwrap.dedent(code).strip()}'", *args])


# ---------------------------------------------------------------- nothing missed


def test_tracer_sees_the_main_command_from_its_first_instruction_20_times(
        tmp_path, loopback_resolver) -> None:
    for run in range(20):
        result, rec = trace(tmp_path, "getent hosts localhost", "strace -f -p PID",
                            prefix=loopback_resolver)
        assert result.returncode == 0, f"run {run}: {result.stderr}"
        strace = rec.output(1)
        for path in ("/etc/nsswitch.conf", "/etc/hosts"):
            assert re.search(rf'openat\([^\n]*"{path}"', strace), f"run {run}: no {path}"
        assert "localhost" in rec.output(0)


# ---------------------------------------------------------------- crash safety


COUNTER = python("""
import sys, time
for i in range(100000):
    print("count", i, flush=True)
    time.sleep(0.02)
""")


def test_sigkill_of_autotrace_leaves_a_recording_readable_up_to_that_moment(
        tmp_path, marker) -> None:
    directory = tmp_path / "rec"
    proc = start_autotrace(["--headless", "-l", directory, f"{COUNTER} {marker}",
                            f"sh -c 'while sleep 0.05; do echo tick; done' tick{marker}"])
    pane_file = directory / "pane-0.cast"
    children: list[psutil.Process] = []
    try:
        wait_for(lambda: pane_file.exists() and "count 25" in pane_file.read_text(),
                 what="the counter to reach 25")
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)
    finally:
        proc.kill()
        # Nothing can make the panes of a SIGKILLed autotrace go away: clean up here.
        kill_all(children)
    on_disk = RecordingFiles(directory).output(0)
    last = max(int(n) for n in re.findall(r"count (\d+)\r\n", on_disk))
    assert last >= 25

    shown = run_autotrace(["cat", directory])
    assert shown.returncode == 0, shown.stderr
    counts = [int(n) for n in re.findall(r"\[0\] count (\d+)$", shown.stdout, re.M)]
    assert counts == list(range(last + 1))
    assert "[1] tick" in shown.stdout

    info = run_autotrace(["info", directory])
    assert info.returncode == 0, info.stderr
    assert "did not end cleanly" in info.stdout


# ---------------------------------------------------------------- pty size


def test_size_sets_every_panes_pty_and_the_headers(tmp_path) -> None:
    result, rec = trace(tmp_path, "sh -c 'sleep 0.2; stty size'", "stty size",
                        options=["--size", "132x43"])
    assert result.returncode == 0, result.stderr
    for index in (0, 1):
        assert rec.output(index).strip() == "43 132"
        header = rec.pane_file(index).header
        assert (header["width"], header["height"]) == (132, 43)
    assert rec.manifest["terminal"] == {"cols": 132, "rows": 43}


def test_default_size_without_a_terminal_is_80x24(tmp_path) -> None:
    result, rec = trace(tmp_path, "stty size")
    assert result.returncode == 0
    assert rec.output(0).strip() == "24 80"


RESIZE_SESSION = """
import sys, time
from pathlib import Path
from autotrace.format.recording import RecordingWriter, SessionRecord
from autotrace.live.session import PaneSpec, Session, SessionOptions

directory = Path(sys.argv[1])
directory.mkdir()
writer = RecordingWriter(directory, SessionRecord(cols=80, rows=24, started_unix=time.time()))
command = "sh -c 'stty size; sleep 1; stty size'"
session = Session([PaneSpec(command, role="main")], writer, SessionOptions(cols=80, rows=24))

def resize_after_first_line(event):
    if event.kind == "o" and "24 80" in event.data:
        session.resize_pane(0, 100, 30)

session.subscribe(resize_after_first_line)
sys.exit(session.run())
"""


def test_resizing_a_pane_resizes_its_pty_and_records_an_r_event(tmp_path) -> None:
    # The live view resizes panes; here a session is driven directly, in its own process.
    directory = tmp_path / "rec"
    result = subprocess.run([sys.executable, "-c", RESIZE_SESSION, str(directory)],
                            capture_output=True, text=True, timeout=60, cwd=REPO,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    events = RecordingFiles(directory).pane_file(0).events
    codes = [(code, data.strip()) for _, code, data in events]
    assert codes == [("o", "24 80"), ("r", "100x30"), ("o", "30 100"), ("m", "end")]


# ---------------------------------------------------------------- exit status


@pytest.mark.parametrize("tracers", [[], ["sleep 0.1"]], ids=["alone", "held"])
@pytest.mark.parametrize(
    ("main", "code", "shown"),
    [("exit 3", 3, "exited 3"), ("kill -KILL $$", 137, "killed by SIGKILL"),
     ("kill -TERM $$", 143, "killed by SIGTERM"), ("true", 0, "exited 0")],
)
def test_autotrace_exits_with_the_main_commands_status(tmp_path, tracers, main, code,
                                                       shown) -> None:
    result, rec = trace(tmp_path, main, *tracers)
    assert result.returncode == code, result.stderr
    info = run_autotrace(["info", rec.directory])
    main_part = info.stdout.split("pane 1")[0]
    assert re.search(rf"status:\s+{shown}$", main_part, re.M), info.stdout


# ---------------------------------------------------------------- ending


def test_duration_bounds_a_session(tmp_path, marker) -> None:
    result, rec = trace(tmp_path, f"sleep 100{marker}", f"sleep 200{marker}",
                        options=["--duration", "1"])
    # The main command was stopped, so autotrace reports how it ended.
    assert result.returncode == 143, result.stderr
    assert 1.0 <= rec.manifest["duration"] < 30
    for pane in rec.panes:
        assert pane["exit_signal_name"] == "SIGTERM"


LATE_TRACER = "sh -c 'sleep 1.5; echo late flush; exec sleep 100{marker}'"


@pytest.mark.parametrize(("grace", "flushed"), [("3", True), ("0.2", False)])
def test_grace_lets_tracers_flush_then_stops_them(tmp_path, marker, grace, flushed) -> None:
    result, rec = trace(tmp_path, "true", LATE_TRACER.format(marker=marker),
                        options=["--grace", grace])
    assert result.returncode == 0, result.stderr
    main, tracer = rec.panes
    assert ("late flush" in rec.output(1)) == flushed
    assert tracer["exit_signal_name"] == "SIGTERM"
    stopped_after = tracer["end"] - main["end"]
    assert stopped_after >= float(grace)
    assert stopped_after < float(grace) + 10


IGNORES_TERM = python("""
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(100)
""")


@pytest.mark.alone
def test_tracer_ignoring_sigterm_is_killed_after_kill_timeout(tmp_path, marker) -> None:
    result, rec = trace(tmp_path, "sleep 0.2", f"{IGNORES_TERM} {marker}",
                        options=["--grace", "0.1", "--kill-timeout", "1.5"])
    assert result.returncode == 0, result.stderr
    main, tracer = rec.panes
    assert tracer["exit_signal_name"] == "SIGKILL"
    # TERM after the grace, KILL one --kill-timeout later (not two).
    term_to_kill = tracer["end"] - main["end"] - 0.1
    assert 1.5 <= term_to_kill < 2.9


def test_tracers_that_end_by_themselves_do_not_hold_the_session(tmp_path) -> None:
    result, rec = trace(tmp_path, "sleep 0.5", "echo quick tracer",
                        options=["--grace", "30"])
    assert result.returncode == 0
    assert rec.manifest["duration"] < 20  # ended when everyone had, not after the grace
    assert rec.panes[1]["exit_status"] == 0


# ---------------------------------------------------------------- output


# One write per line, on a fixed schedule, so the child's own timing is exact.
TICKER = python("""
import os, time
start = time.monotonic()
for i in range(16):
    time.sleep(max(0.0, start + i * 0.1 - time.monotonic()))
    os.write(1, b"tick %d\\n" % i)
""")


@pytest.mark.alone
def test_timestamps_follow_the_program_not_the_reader(tmp_path) -> None:
    result, rec = trace(tmp_path, TICKER)
    assert result.returncode == 0
    events = [(t, data) for t, code, data in rec.pane_file(0).events if code == "o"]
    assert "".join(data for _, data in events).count("tick") == 16
    assert len(events) == 16, "each line was printed on its own and recorded on its own"
    gaps = [b[0] - a[0] for a, b in zip(events, events[1:])]
    # The box is shared: most gaps, not every one, must be 0.1 s within 10 ms.
    assert abs(statistics.median(gaps) - 0.1) < 0.01, gaps
    close = [g for g in gaps if abs(g - 0.1) < 0.01]
    assert len(close) >= 0.7 * len(gaps), gaps
    assert abs((events[-1][0] - events[0][0]) - 1.5) < 0.1


def test_every_byte_of_a_fast_burst_is_recorded(tmp_path) -> None:
    result, rec = trace(tmp_path, "seq 1 100000", "sleep 0.1")
    assert result.returncode == 0
    output = rec.output(0)
    assert output.split("\r\n")[:-1] == [str(n) for n in range(1, 100001)]
    assert rec.panes[0]["bytes"] == len(output.encode())


def test_output_after_the_main_exits_from_a_child_holding_the_pty(tmp_path, marker) -> None:
    # The shell exits at once; its background child (deaf to the hangup that
    # follows) keeps the pty open and prints a little later.
    child = f"(sleep 0.1; echo from the child; sleep 100{marker}) &"
    result, rec = trace(tmp_path, f"sh -c 'trap \"\" HUP; {child}'")
    assert result.returncode == 0
    assert "from the child" in rec.output(0)
    assert rec.manifest["duration"] < 30


# ---------------------------------------------------------------- notices


def test_headless_is_chosen_with_one_notice_when_stdout_is_not_a_terminal(tmp_path) -> None:
    directory = tmp_path / "rec"
    result = run_autotrace(["-l", directory, "echo hi"])
    assert result.returncode == 0
    assert result.stdout == ""  # stdout stays free for the user
    notices = [line for line in result.stderr.splitlines() if "not a terminal" in line]
    assert notices == ["autotrace: stdout is not a terminal: running headless"]
    assert "hi" in RecordingFiles(directory).output(0)


def test_explicit_headless_and_quiet_say_nothing(tmp_path) -> None:
    explicit = run_autotrace(["--headless", "-l", tmp_path / "a", "true"])
    assert "not a terminal" not in explicit.stderr
    assert "recorded to" in explicit.stderr
    quiet = run_autotrace(["-q", "-l", tmp_path / "b", "true"])
    assert (quiet.returncode, quiet.stderr, quiet.stdout) == (0, "", "")


def test_panes_get_a_terminal_type(tmp_path) -> None:
    result, rec = trace(tmp_path, "sh -c 'echo TERM=$TERM; test -t 0 && test -t 1 && echo tty'")
    assert result.returncode == 0
    assert rec.output(0).split() == ["TERM=xterm-256color", "tty"]


def test_no_zombies_or_children_are_left_while_the_test_runs(tmp_path) -> None:
    result, _ = trace(tmp_path, "sleep 0.2", "sleep 0.1", "sh -c 'sleep 0.3 &'")
    assert result.returncode == 0
    # autotrace ran as our child: everything it started was its to reap, not ours.
    assert [p for p in psutil.Process().children(recursive=True)
            if p.status() != psutil.STATUS_ZOMBIE and p.pid != os.getpid()] == []


def test_a_character_split_across_reads_is_recorded_whole(tmp_path) -> None:
    # The pty hands over a snowman's first byte in one read and the rest in the
    # next: the recording holds the whole character, and bad bytes as U+FFFD.
    printer = python('import os, time\n'
                     'os.write(1, b"a\\xe2"); time.sleep(0.3)\n'
                     'os.write(1, b"\\x98\\x83b"); time.sleep(0.3)\n'
                     'os.write(1, b"\\xff!")')
    result, rec = trace(tmp_path, printer)
    assert result.returncode == 0, result.stderr
    events = [data for _, code, data in rec.pane_file(0).events if code == "o"]
    assert "".join(events) == "a\u2603b\ufffd!"
    assert events[0] == "a"  # the first byte of the snowman waited for the rest
