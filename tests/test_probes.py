"""Probe frames over psutil data of a real child: files, sockets, children."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pyte
import pytest

from autotrace.live.probes import CLEAR, NEW, PROBE_NAMES, RESET, is_probe, make_probe

TIMEOUT = 30
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# Listens on TCP, so @net has a socket of a child to show.
KID = ("import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
       "print(s.getsockname()[1], flush=True); time.sleep(1000)")

# Holds a log file and a UDP socket, starts KID, then opens and closes files on
# request; at the end of its stdin it reaps KID (init here may not) and exits.
PARENT = f"""
import socket, subprocess, sys
log = open(sys.argv[1], "w")
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", 0))
kid = subprocess.Popen([sys.executable, "-c", {KID!r}], stdout=subprocess.PIPE, text=True)
print(udp.getsockname()[1], kid.pid, kid.stdout.readline().strip(), flush=True)
held = {{}}
for line in sys.stdin:
    verb, path = line.split()
    if verb == "open":
        held[path] = open(path, "w")
    else:
        held.pop(path).close()
    print("done", flush=True)
kid.kill()
kid.wait()
"""


@dataclass
class Traced:
    popen: subprocess.Popen
    proc: psutil.Process
    log: Path
    udp_port: int
    kid_pid: int
    kid_port: int

    def finish(self) -> None:
        """Let it reap its kid and exit; it stays a zombie until we wait for it."""
        self.popen.stdin.close()
        wait_for(lambda: status(self.proc.pid) == psutil.STATUS_ZOMBIE)

    def ask(self, verb: str, path: Path) -> None:
        self.popen.stdin.write(f"{verb} {path}\n")
        self.popen.stdin.flush()
        assert self.popen.stdout.readline() == "done\n"


def end(popen: subprocess.Popen) -> None:
    """End the parent, which reaps its kid first, and reap the parent."""
    with contextlib.suppress(OSError):
        popen.stdin.close()
    try:
        popen.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()


@pytest.fixture
def traced(tmp_path):
    log = tmp_path / "traced.log"
    popen = subprocess.Popen([sys.executable, "-c", PARENT, str(log)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        udp_port, kid_pid, kid_port = map(int, popen.stdout.readline().split())
        yield Traced(popen, psutil.Process(popen.pid), log, udp_port, kid_pid, kid_port)
    finally:
        end(popen)


def wait_for(condition) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def status(pid: int) -> str | None:
    try:
        return psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return None


def plain(frame: str) -> list[str]:
    return ANSI.sub("", frame).split("\r\n")


def test_frame_clears_the_pane_then_draws(traced):
    frame = make_probe("@proc").frame(traced.proc, 100)
    assert frame.startswith(CLEAR)
    assert f"pid {traced.proc.pid}" in frame.splitlines()[0]


def test_proc_shows_state_threads_fds_and_io(traced):
    wait_for(lambda: traced.proc.status() == psutil.STATUS_SLEEPING)  # blocked on its stdin
    lines = plain(make_probe("@proc").render(traced.proc, 100))
    values = {line[:13].strip(): line[13:] for line in lines[1:]}
    assert values["state"] == "sleeping"
    assert values["threads"] == "1"
    # stdin, stdout, stderr, the log, the socket, the pipe from the kid at least
    assert int(values["fds"]) >= 6
    assert values["cpu"].endswith(" %")
    assert values["rss"].endswith("MiB")
    assert "voluntary" in values["ctx switches"]
    assert "calls" in values["io read"] and "calls" in values["io write"]


def test_files_shows_open_files_and_highlights_new_ones(traced, tmp_path):
    probe = make_probe("@files")
    first = probe.render(traced.proc, 200)
    assert str(traced.log) in first
    assert NEW not in first  # nothing is "new" on the first frame

    extra = tmp_path / "opened-later.txt"
    traced.ask("open", extra)
    second = probe.render(traced.proc, 200)
    new_line = next(line for line in second.split("\r\n") if str(extra) in line)
    assert new_line.startswith(NEW + "+") and new_line.endswith(RESET)
    log_line = next(line for line in second.split("\r\n") if str(traced.log) in line)
    assert NEW not in log_line

    third = probe.render(traced.proc, 200)
    assert NEW not in third  # no longer new
    traced.ask("close", extra)
    fourth = plain(probe.render(traced.proc, 200))
    assert any(str(extra) in line and "(closed)" in line for line in fourth)
    assert not any(str(extra) in line for line in plain(probe.render(traced.proc, 200)))


def test_net_shows_udp_socket_and_the_childs_listener(traced):
    lines = plain(make_probe("@net").render(traced.proc, 200))
    udp = [line.split() for line in lines if f"127.0.0.1:{traced.udp_port}" in line]
    assert udp == [[str(traced.proc.pid), "udp", f"127.0.0.1:{traced.udp_port}", "-", "-"]]
    tcp = [line.split() for line in lines if f"127.0.0.1:{traced.kid_port}" in line]
    assert tcp == [[str(traced.kid_pid), "tcp", f"127.0.0.1:{traced.kid_port}", "-", "LISTEN"]]


def test_tree_shows_the_child_with_pid_and_command(traced):
    lines = plain(make_probe("@tree").render(traced.proc, 300))
    assert lines[1].startswith(f"{traced.proc.pid} {sys.executable} -c")
    assert lines[2].startswith(f"└─ {traced.kid_pid} {sys.executable} -c import socket")


def test_tree_marks_a_stopped_child(traced):
    kid = psutil.Process(traced.kid_pid)
    kid.suspend()
    try:
        wait_for(lambda: kid.status() == psutil.STATUS_STOPPED)
        lines = plain(make_probe("@tree").render(traced.proc, 300))
        assert lines[2].endswith("[stopped]")
    finally:
        kid.resume()


def test_a_process_that_ended_says_so(traced):
    probe = make_probe("@files")
    probe.render(traced.proc, 100)
    end(traced.popen)
    title, ended = plain(probe.render(traced.proc, 10000))
    assert title == "@files"
    assert ended.startswith(f"process pid {traced.proc.pid} ({sys.executable} -c  import socket")
    assert ended.endswith(f"{traced.log}) has ended")


def test_a_zombie_is_shown_as_ended(traced):
    traced.finish()
    frame = make_probe("@proc").render(traced.proc, 200)
    assert f"process pid {traced.proc.pid} has ended (a zombie" in frame


def test_only_the_latest_frame_is_on_screen(traced, tmp_path):
    """Frames fed one after another into a terminal leave just the last one visible."""
    screen = pyte.Screen(120, 20)
    stream = pyte.Stream(screen)
    probe = make_probe("@files")
    extra = [tmp_path / f"extra-{i}.txt" for i in range(3)]
    for path in extra:
        traced.ask("open", path)
    stream.feed(probe.frame(traced.proc, 120, 20))
    assert any(str(extra[2]) in line for line in screen.display)
    for path in extra:
        traced.ask("close", path)
    stream.feed(probe.frame(traced.proc, 120, 20))  # shows them as closed
    stream.feed(probe.frame(traced.proc, 120, 20))
    shown = "\n".join(screen.display)
    assert str(traced.log) in shown
    assert "extra-" not in shown


def test_frames_fit_the_pane(traced):
    frame = plain(make_probe("@tree").render(traced.proc, 30, 2))
    assert len(frame) == 2 and frame[-1] == "... 2 more lines"
    assert all(len(line) <= 30 for line in plain(make_probe("@net").render(traced.proc, 30)))


def test_command_lines_cannot_drive_the_pane(tmp_path):
    evil = "evil\x1b]2;pwned\x07\nsecond line"
    popen = subprocess.Popen([evil, "1000"], executable="sleep")
    try:
        # Right after exec the kernel has not yet set up the new command line.
        wait_for(lambda: psutil.Process(popen.pid).cmdline())
        frame = make_probe("@tree").render(psutil.Process(popen.pid), 200)
        assert "\x1b" not in frame and "\n" not in frame.replace("\r\n", "")
        assert "evil?]2;pwned? second line 1000" in frame
    finally:
        popen.kill()
        popen.wait()


NOT_ALLOWED = """
import os, sys, psutil
from autotrace.live.probes import make_probe
if os.geteuid() == 0:
    # Become nobody only now: the interpreter may live where nobody cannot read.
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
target = psutil.Process(int(sys.argv[1]))
for name in ("@proc", "@files", "@net", "@tree"):
    print(make_probe(name).render(target, 200))
"""


def test_what_is_not_permitted_shows_as_na(traced):
    """Probing another user's process: fields it may not read say n/a; nothing crashes."""
    # As root, the probe turns itself into nobody; otherwise pid 1 is not ours.
    target = traced.proc if os.geteuid() == 0 else psutil.Process(1)
    out = subprocess.run([sys.executable, "-c", NOT_ALLOWED, str(target.pid)],
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "fds          n/a" in lines
    assert "io           n/a" in lines
    for what in ("open files", "sockets"):
        refused = [line for line in lines if line.startswith(f" {what} of pid {target.pid}")]
        assert len(refused) == 1 and refused[0].endswith(": n/a (access denied)")
    assert "no regular files open" not in out.stdout  # not known, so not claimed
    assert any(line.startswith("state ") and "n/a" not in line for line in lines)


def test_make_probe_knows_the_five_probes():
    assert PROBE_NAMES == ("@proc", "@files", "@net", "@tree", "@resolv")
    assert [make_probe(name).name for name in PROBE_NAMES] == list(PROBE_NAMES)
    assert make_probe("@net") is not make_probe("@net")  # each pane keeps its own memory
    assert is_probe(" @net") and not is_probe("strace -p PID")


def test_unknown_probe_names_the_known_ones():
    with pytest.raises(ValueError) as err:
        make_probe("@disk")
    assert str(err.value) == ("unknown probe '@disk': the probes are @proc, @files, @net, "
                              "@tree, @resolv, @dns")
