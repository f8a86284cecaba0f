"""fd_inject: a process's descriptors pointed at another file by system calls
it is made to make; the process goes on as if nothing happened.

On a CPU with AMX, gdb 13's `call dup2(...)` could not restore the extended
register state and left the process broken: a `sleep` died with "cannot read
realtime clock: Unknown error 516", and a picked-up job was not moved. These
run the real injector on real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from autotrace.live import fd_inject, procs

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64",
                                reason="the injector is x86-64's; other machines use gdb")


def inject(pid: int, path: Path, *fds: int, as_nobody_from: Path | None = None
           ) -> subprocess.CompletedProcess[str]:
    """The injector run on PID; AS_NOBODY_FROM: a copy of it in that folder, run
    by user nobody (root's python and the package may not be nobody's to read)."""
    python, script, prefix = sys.executable, fd_inject.__file__, []
    if as_nobody_from is not None:
        python, script = "/usr/bin/python3", str(as_nobody_from / "fd_inject.py")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    return subprocess.run([*prefix, python, "-I", "-S", script, str(pid), str(path),
                           *map(str, fds)], capture_output=True, text=True, timeout=30)


def points_at(pid: int, fd: int) -> str:
    return os.readlink(f"/proc/{pid}/fd/{fd}")


def wait_state(pid: int, wanted: str, timeout: float = 5.0) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = procs.state_of(pid)
        if state == wanted:
            return state
        time.sleep(0.01)
    return procs.state_of(pid)


def test_a_sleep_interrupted_in_its_system_call_sleeps_on_and_exits_0(tmp_path):
    target = tmp_path / "new"
    target.touch()
    started = time.monotonic()
    sleeper = subprocess.Popen(["sh", "-c", "sleep 1.5; echo woke"], stdout=subprocess.PIPE,
                               text=True)
    time.sleep(0.3)
    (sleep_pid,) = [int(p) for p in Path(f"/proc/{sleeper.pid}/task/{sleeper.pid}/children")
                    .read_text().split()]
    done = inject(sleep_pid, target, 1, 2)
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr
    assert points_at(sleep_pid, 1) == str(target) and points_at(sleep_pid, 2) == str(target)
    out, _ = sleeper.communicate(timeout=10)
    assert sleeper.returncode == 0 and out == "woke\n"
    assert time.monotonic() - started >= 1.45  # the interrupted sleep was restarted, whole
    assert target.read_text() == ""  # sleep printed nothing: no error 516


def test_a_printing_process_goes_on_printing_into_the_new_file(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    new.touch()
    code = ("import threading, time\n"
            "def spin():\n    while True: time.sleep(0.01)\n"
            "for _ in range(4): threading.Thread(target=spin, daemon=True).start()\n"
            "for i in range(60):\n    print(i, flush=True); time.sleep(0.05)\n")
    with old.open("w") as out:
        printer = subprocess.Popen([sys.executable, "-c", code], stdout=out)
    time.sleep(0.5)
    done = inject(printer.pid, new, 1)
    assert done.returncode == 0, done.stdout
    assert printer.wait(timeout=20) == 0
    before, after = old.read_text().split(), new.read_text().split()
    assert before and after  # some lines went to each, in order, none lost or twice
    assert [int(n) for n in before + after] == list(range(60))


def test_a_stopped_job_stays_stopped_and_prints_into_the_new_file_once_continued(tmp_path):
    new = tmp_path / "new"
    new.touch()
    # A job of its own, as a shell makes one: the kernel ignores SIGTSTP for a
    # process group that is orphaned (ours is, when CI starts us with setsid).
    printer = subprocess.Popen(["sh", "-c", "while :; do echo tick; sleep 0.1; done"],
                               stdout=subprocess.DEVNULL, process_group=0)
    try:
        time.sleep(0.3)
        os.kill(printer.pid, signal.SIGTSTP)
        assert wait_state(printer.pid, "T") == "T"
        done = inject(printer.pid, new, 1)
        assert done.returncode == 0, done.stdout
        time.sleep(0.5)
        assert procs.state_of(printer.pid) == "T" and new.read_text() == ""
        os.kill(printer.pid, signal.SIGCONT)
        time.sleep(0.6)
        assert "tick" in new.read_text()
    finally:
        printer.kill()
        printer.wait()


def test_without_the_permission_to_trace_it_says_so_and_the_process_is_untouched():
    sleeper = subprocess.Popen(["sleep", "30"], stdout=subprocess.DEVNULL)
    try:
        # pytest's tmp_path is under a folder only root may enter
        with tempfile.TemporaryDirectory(dir="/tmp") as folder:
            readable = Path(folder)
            readable.chmod(0o755)
            (readable / "fd_inject.py").write_text(Path(fd_inject.__file__).read_text())
            before = points_at(sleeper.pid, 1)
            done = inject(sleeper.pid, readable / "new", 1, as_nobody_from=readable)
        assert done.returncode == 1
        assert done.stdout.strip() == "ptrace: Operation not permitted"
        assert points_at(sleeper.pid, 1) == before and procs.state_of(sleeper.pid) == "S"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_process_that_is_gone_or_a_path_it_cannot_open_is_one_line(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    done = inject(gone.pid, tmp_path / "new", 1)
    assert (done.returncode, done.stdout) == (1, "ptrace: No such process\n")
    sleeper = subprocess.Popen(["sleep", "30"], stdout=subprocess.DEVNULL)
    try:
        before = points_at(sleeper.pid, 1)
        done = inject(sleeper.pid, tmp_path / "no" / "such", 1)
        assert done.returncode == 1
        assert done.stdout.strip() == (f"it could not open {tmp_path / 'no' / 'such'}: "
                                       "No such file or directory")
        assert points_at(sleeper.pid, 1) == before
        assert procs.state_of(sleeper.pid) == "S" and sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_process_under_a_seccomp_filter_is_not_touched(tmp_path):
    # Strict seccomp allows read, write, exit, sigreturn: the injected mmap
    # would kill it, so nothing is injected.
    code = ("import ctypes, os\nr, w = os.pipe()\nctypes.CDLL(None).prctl(22, 1, 0, 0, 0)\n"
            "os.read(r, 1)\n")
    strict = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while fd_inject.seccomp_mode(strict.pid) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        before = points_at(strict.pid, 1)
        done = inject(strict.pid, tmp_path / "new", 1)
        assert (done.returncode, done.stdout) == (1, "a seccomp filter guards its system calls\n")
        time.sleep(0.2)
        assert strict.poll() is None and points_at(strict.pid, 1) == before
    finally:
        strict.kill()
        strict.wait()
