"""Attach mode as a person uses it: start a job in an interactive shell, press
Ctrl-Z (or start it with `&`), type `autotrace`, answer its question.

Everything runs for real in tmux: the shell, its job control, the job (a
ticker that appends a line to a file every 0.1 s, alone or as the child of a
parent that waits for it), strace and autotrace.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from pathlib import Path

import psutil
import pytest
from tmuxdriver import Tmux, across_lines

from tests.conftest import REPO, RecordingFiles, autotrace_under, run_autotrace, wait_for

pytestmark = pytest.mark.tmux

VENV_BIN = str(Path(sys.executable).parent)

# The job: writes its pid next to its ticks file, then a tick every 0.1 s.
TICKER = """\
import os, sys, time
ticks = sys.argv[1]
with open(ticks + ".pid", "w") as f:
    f.write(str(os.getpid()))
while True:
    with open(ticks, "a") as f:
        f.write("t\\n")
    time.sleep(0.1)
"""


class Job:
    """The ticker, as typed into the shell; its pid and progress read from its files."""

    def __init__(self, tmp_path: Path, marker: str):
        # A space in the script's name: re-running the job must quote it.
        self.script = tmp_path / "tick er.py"
        self.script.write_text(TICKER)
        self.ticks = tmp_path / f"ticks{marker}"
        self.pid_file = Path(f"{self.ticks}.pid")
        self.argv = [sys.executable, str(self.script), str(self.ticks)]

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    def pid(self) -> int:
        return int(wait_for(lambda: self.pid_file.exists() and self.pid_file.read_text(),
                            what="the job's pid file"))

    def count(self) -> int:
        return len(self.ticks.read_text()) if self.ticks.exists() else 0

    def wait_ticking(self) -> None:
        start = self.count()
        wait_for(lambda: self.count() >= start + 4, what="the job to tick")

    def status(self) -> str:
        return psutil.Process(self.pid()).status()


def tracer_pid(pid: int) -> int:
    """The kernel's TracerPid of PID: 0 once every tracer has detached."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^TracerPid:\s*(\d+)", status, re.M).group(1))


@pytest.fixture
def job(tmp_path, marker):
    return Job(tmp_path, marker)


@pytest.fixture(scope="module")
def autotrace_bin(tmp_path_factory) -> str:
    """A folder with an `autotrace` command that runs this checkout's autotrace.

    The venv's own `autotrace` (pip install -e) is used where there is one.
    """
    if (Path(VENV_BIN) / "autotrace").exists():
        return VENV_BIN
    folder = tmp_path_factory.mktemp("bin")
    shim = folder / "autotrace"
    shim.write_text(f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(REPO))} "
                    f"exec {shlex.quote(sys.executable)} -m autotrace \"$@\"\n")
    shim.chmod(0o755)
    return f"{folder}:{VENV_BIN}"


@pytest.fixture
def tmux(autotrace_bin):
    driver = Tmux(cols=160, rows=50)
    driver.autotrace_bin = autotrace_bin
    yield driver
    driver.kill()


def open_shell(tmux: Tmux, shell: str = "bash") -> None:
    """An interactive shell with job control, autotrace on its PATH, no history file."""
    argv = {"bash": ["bash", "--norc", "--noprofile", "-i"], "sh": ["sh", "-i"]}[shell]
    tmux.start(argv, env={"PATH": f"{tmux.autotrace_bin}:/usr/sbin:/usr/bin:/sbin:/bin",
                          "PS1": "$ ", "HISTFILE": "/dev/null", "ENV": "/dev/null"})


def start_job(tmux: Tmux, job: Job, background: bool = False) -> int:
    """Type the job's command; Ctrl-Z it unless it was started with `&`."""
    tmux.type(job.command + (" &\n" if background else "\n"))
    job.wait_ticking()
    if not background:
        tmux.send("C-z")
        wait_for(lambda: job.status() == psutil.STATUS_STOPPED, what="the job to stop")
    return job.pid()


def run_autotrace_in_shell(tmux: Tmux, options: str, key: str | None) -> int:
    """Type `autotrace OPTIONS`, answer its question with KEY; its exit status."""
    tmux.type(f"autotrace {options}; echo \"[status $?]\"\n")
    if key is not None:
        tmux.wait_for(r"(?m)^=>", timeout=30)
        tmux.send(key)
    if key == "r":  # killing is asked again
        tmux.wait_for(across_lines("y kills it, any other key does not"))
        tmux.send("y")
    screen = tmux.wait_for(r"\[status \d+\]", timeout=40)
    return int(re.findall(r"\[status (\d+)\]", screen)[-1])


def assert_left_running(job: Job, pid: int) -> None:
    """Same process, running, not traced, and still doing its work."""
    proc = psutil.Process(pid)
    assert proc.status() not in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP, "zombie")
    assert tracer_pid(pid) == 0
    job.wait_ticking()
    assert job.pid() == pid


def assert_traced(rec: RecordingFiles, job: Job, pid: int, moved: bool = True) -> None:
    """The recording shows the job's own system calls and its @proc frames."""
    main, strace = rec.panes[0], rec.panes[1]
    assert main["pid"] == pid and main["role"] == "main"
    assert str(job.script) in main["command"]
    assert rec.manifest["attached"] is True
    assert "the process goes on" in main["note"]
    if moved:
        # A Ctrl-Z job's pane 0 is its own terminal output, moved to autotrace's
        # pty (the ticker writes to a file, so nothing): not a probe's view of it.
        assert "@proc" not in rec.output(0)
    else:  # --pid: the process is not moved, pane 0 is its @proc view
        assert f"@proc  pid {pid}" in rec.output(0)
        assert re.search(r"^state\s+\w+", rec.output(0), re.M)
    assert strace["command"] == "strace -f -tt -p PID"
    assert strace["command_run"] == f"strace -f -tt -p {pid}"
    strace_text = rec.output(1)
    assert f"Process {pid} attached" in strace_text
    assert re.search(r'write\(\d+, "t\\n", 2\)\s+= 2', strace_text), strace_text[-2000:]


def test_ctrl_z_then_autotrace_traces_the_job_and_lets_it_go_on(tmux, tmp_path, job):
    open_shell(tmux)
    pid = start_job(tmux, job)
    rec_dir = tmp_path / "rec"
    status = run_autotrace_in_shell(tmux, f"--headless -l {rec_dir} --duration 3", "Enter")
    screen = tmux.capture()
    assert status == 0, screen
    assert f"pid {pid}, stopped:" in screen  # it said what it found
    assert "trace it and let it continue" in screen
    rec = RecordingFiles(rec_dir)
    assert_traced(rec, job, pid)
    assert "--- SIGCONT" in rec.output(1)  # it was continued once strace had attached
    assert_left_running(job, pid)


def test_ctrl_z_then_the_live_view_shows_the_job_until_q(tmux, tmp_path, job):
    open_shell(tmux)
    pid = start_job(tmux, job)
    rec_dir = tmp_path / "rec"
    tmux.type(f"autotrace -l {rec_dir}; echo \"[status $?]\"\n")
    tmux.wait_for(r"(?m)^=>")
    tmux.send("Enter")
    screen = tmux.wait_for(r" 0  running  .*tick er")
    screen = tmux.wait_for(r'write\(\d+, "t\\n", 2\)')
    assert f"strace -f -tt -p {pid}" in screen
    tmux.send("q")
    screen = tmux.wait_for(r"\[status \d+\]", timeout=30)
    assert "[status 0]" in screen
    assert_traced(RecordingFiles(rec_dir), job, pid)
    assert_left_running(job, pid)


def test_q_continues_the_job_and_records_nothing(tmux, tmp_path, job):
    open_shell(tmux)
    pid = start_job(tmux, job)
    rec_dir = tmp_path / "rec"
    assert run_autotrace_in_shell(tmux, f"--headless -l {rec_dir}", "q") == 0
    assert "continue it and quit" in tmux.capture()
    assert re.search(rf"python3?\S* \(pid {pid}\) goes on in the background of this shell: "
                     "fg brings it back", tmux.capture())
    assert not rec_dir.exists()
    assert_left_running(job, pid)


def test_r_asks_before_it_kills_and_any_other_key_keeps_the_job(tmux, tmp_path, job):
    open_shell(tmux)
    pid = start_job(tmux, job)
    rec_dir = tmp_path / "rec"
    tmux.type(f"autotrace --headless -l {rec_dir}; echo \"[status $?]\"\n")
    tmux.wait_for(r"(?m)^=>", timeout=30)
    tmux.send("r")
    tmux.wait_for(rf"kill pid {pid}, stopped:[\s\S]*"
                  + across_lines("y kills it, any other key does not"))
    tmux.send("n")
    tmux.wait_for(r"not killed")
    tmux.wait_for(r"(?m)^=> *$")  # asked again
    tmux.send("z")
    assert "[status 0]" in tmux.wait_for(r"\[status \d+\]", timeout=30)
    assert psutil.Process(pid).status() == psutil.STATUS_STOPPED  # the same job, untouched
    assert not rec_dir.exists()


def test_z_leaves_the_job_stopped(tmux, tmp_path, job):
    open_shell(tmux)
    pid = start_job(tmux, job)
    rec_dir = tmp_path / "rec"
    assert run_autotrace_in_shell(tmux, f"--headless -l {rec_dir}", "z") == 0
    assert not rec_dir.exists()
    assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
    before = job.count()
    time.sleep(0.5)  # five ticks' worth: a job left stopped writes none
    assert job.count() == before
    assert psutil.Process(pid).status() == psutil.STATUS_STOPPED


def test_r_kills_the_job_and_reruns_it_under_autotrace(tmux, tmp_path, job):
    open_shell(tmux)
    old_pid = start_job(tmux, job)
    job.pid_file.unlink()
    rec_dir = tmp_path / "rec"
    status = run_autotrace_in_shell(tmux, f"--headless -l {rec_dir} --duration 3", "r")
    assert status == 143, tmux.capture()  # the re-run is ours: it ends with the session
    wait_for(lambda: not psutil.pid_exists(old_pid), what="the old job to be gone")
    rec = RecordingFiles(rec_dir)
    main = rec.panes[0]
    new_pid = job.pid()  # written by the re-run
    assert main["pid"] == new_pid != old_pid
    assert main["command"] == job.command  # quoted as it must be: the script has a space
    assert main["exit_signal_name"] == "SIGTERM"
    # With no tracers given, the re-run gets the default ones, like an attached job.
    assert rec.panes[1]["command"] == "strace -f -tt -p PID"
    assert re.search(r'write\(\d+, "t\\n", 2\)', rec.output(1))
    assert not psutil.pid_exists(new_pid)


def test_background_job_started_with_ampersand_in_sh(tmux, tmp_path, job):
    open_shell(tmux, "sh")
    pid = start_job(tmux, job, background=True)
    rec_dir = tmp_path / "rec"
    status = run_autotrace_in_shell(tmux, f"--headless -l {rec_dir} --duration 2", "Enter")
    assert status == 0, tmux.capture()
    assert f"pid {pid}, running:" in tmux.capture()
    rec = RecordingFiles(rec_dir)
    assert_traced(rec, job, pid)
    assert_left_running(job, pid)


def test_no_background_job_is_one_line_and_exit_1(tmux, tmp_path):
    open_shell(tmux)
    errors = tmp_path / "stderr.txt"
    assert run_autotrace_in_shell(tmux, f"-l {tmp_path / 'rec'} 2>{errors}", None) == 1
    lines = errors.read_text().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("autotrace: no background job in the calling shell")
    assert not (tmp_path / "rec").exists()


def test_pid_attaches_to_any_process_and_leaves_it_running(tmp_path, job):
    proc = psutil.Popen(job.argv, start_new_session=True)
    try:
        job.wait_ticking()
        rec_dir = tmp_path / "rec"
        result = run_autotrace(["--headless", "-l", rec_dir, "--duration", "2",
                                "--pid", proc.pid, "strace -f -tt -p PID"])
        assert result.returncode == 0, result.stderr
        rec = RecordingFiles(rec_dir)
        assert_traced(rec, job, proc.pid, moved=False)
        assert [p["command"] for p in rec.panes] == [job.command, "strace -f -tt -p PID"]
        assert_left_running(job, proc.pid)
    finally:
        proc.kill()
        proc.wait()


def test_pid_of_no_process_is_one_line(tmp_path):
    result = run_autotrace(["--headless", "-l", tmp_path / "rec", "--pid", "999999999"])
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["autotrace: no process with pid 999999999"]


# ---------------------------------------------------------------- jobs of several processes

# The parent of a two-process job: runs the ticker as its child and waits for it.
# Both ignore SIGHUP (an ignored signal stays ignored across exec), as a server
# that reloads on HUP would: when a stopped job's leader dies, the kernel HUPs
# the rest of the orphaned group, and only a child that outlives that HUP shows
# whether autotrace ended the whole job itself.
PARENT = """\
import signal, subprocess, sys
signal.signal(signal.SIGHUP, signal.SIG_IGN)
subprocess.run([sys.executable, *sys.argv[1:]])
"""

GONE = (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
NOT_RUNNING = (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP, *GONE)


class FamilyJob(Job):
    """A job of two processes, as Ctrl-Z sees it: a parent and the ticker it runs.

    pid() and the ticks are the child's: its progress is the job's.
    """

    def __init__(self, tmp_path: Path, marker: str):
        super().__init__(tmp_path, marker)
        parent = tmp_path / "parent.py"
        parent.write_text(PARENT)
        # The ticks path (with the marker) is in both command lines: the marker
        # fixture finds and kills both, whatever a test leaves behind.
        self.argv = [sys.executable, str(parent), *self.argv[1:]]

    def leader(self) -> int:
        """The job's first process, the parent: the one autotrace finds and attaches to."""
        return psutil.Process(self.pid()).ppid()

    def processes(self) -> list[psutil.Process]:
        """Every live process in the job's process group: the parent and the ticker."""
        group = os.getpgid(self.pid())
        found = []
        for proc in psutil.process_iter(["status"]):
            try:
                if os.getpgid(proc.pid) == group and proc.info["status"] not in GONE:
                    found.append(proc)
            except OSError:
                continue
        return found


@pytest.fixture
def family(tmp_path, marker):
    return FamilyJob(tmp_path, marker)


def start_family(tmux: Tmux, family: FamilyJob) -> list[psutil.Process]:
    """Type the two-process job, Ctrl-Z it: both its processes, once both are stopped."""
    tmux.type(family.command + "\n")
    family.wait_ticking()
    procs = family.processes()
    assert len(procs) == 2, procs  # the parent and its child: else the test proves nothing
    tmux.send("C-z")
    wait_for(lambda: all(p.status() == psutil.STATUS_STOPPED for p in procs),
             what="the whole job to stop")
    return procs


def assert_all_running(family: FamilyJob, procs: list[psutil.Process]) -> None:
    """Every process of the job goes on: none stopped, none traced, the ticker ticking."""
    for proc in procs:
        assert proc.is_running() and proc.status() not in NOT_RUNNING, (proc, proc.status())
        assert tracer_pid(proc.pid) == 0, proc
    family.wait_ticking()
    assert sorted(p.pid for p in family.processes()) == sorted(p.pid for p in procs)


def is_gone(pid: int) -> bool:
    # A zombie is dead: the re-parented child may wait for an init that never reaps.
    try:
        return psutil.Process(pid).status() in GONE
    except psutil.NoSuchProcess:
        return True


def test_ctrl_z_then_autotrace_continues_every_process_of_the_job(tmux, tmp_path, family):
    open_shell(tmux)
    procs = start_family(tmux, family)
    rec_dir = tmp_path / "rec"
    status = run_autotrace_in_shell(tmux, f"-y --headless -l {rec_dir} --duration 2", None)
    assert status == 0, tmux.capture()
    main = RecordingFiles(rec_dir).panes[0]
    assert main["pid"] == family.leader()
    # Continuing only the leader left the ticker stopped for good.
    assert_all_running(family, procs)


def test_r_with_a_directory_in_use_says_so_and_leaves_the_job_alone(tmux, tmp_path, family):
    open_shell(tmux)
    procs = start_family(tmux, family)
    rec_dir = tmp_path / "rec"
    rec_dir.mkdir()
    (rec_dir / "notes.txt").write_text("mine\n")
    errors = tmp_path / "stderr.txt"
    status = run_autotrace_in_shell(tmux, f"--headless -l {rec_dir} 2>{errors}", "r")
    assert status == 1, tmux.capture()
    lines = errors.read_text().splitlines()
    assert lines == [f"autotrace: recording directory {rec_dir} is not empty"], lines
    assert [p.name for p in rec_dir.iterdir()] == ["notes.txt"]
    # Not killed, not re-run: the same processes, still as Ctrl-Z left them ...
    for proc in procs:
        assert proc.is_running() and proc.status() == psutil.STATUS_STOPPED, proc
    # ... and still the shell's job: `bg` carries on with it.
    tmux.type("bg\n")
    wait_for(lambda: all(p.status() not in NOT_RUNNING for p in procs), what="bg to continue it")
    assert_all_running(family, procs)


def test_r_ends_every_process_of_the_old_job_and_reruns_it(tmux, tmp_path, family):
    open_shell(tmux)
    old = start_family(tmux, family)
    family.pid_file.unlink()
    rec_dir = tmp_path / "rec"
    status = run_autotrace_in_shell(tmux, f"--headless -l {rec_dir} --duration 3", "r")
    assert status == 143, tmux.capture()  # the re-run is ours: it ends with the session
    # The whole old job: ending only the leader left its child running on as an orphan.
    wait_for(lambda: all(is_gone(p.pid) for p in old), what="every process of the old job to end")
    main = RecordingFiles(rec_dir).panes[0]
    assert main["command"] == family.command
    assert main["pid"] not in [p.pid for p in old]
    new_child = family.pid()  # written by the re-run's ticker
    assert new_child not in [p.pid for p in old]
    assert main["exit_signal_name"] == "SIGTERM"
    wait_for(lambda: all(is_gone(pid) for pid in (main["pid"], new_child)),
             what="the re-run to end with the session")


def test_live_view_p_then_q_leaves_every_process_of_the_job_running(tmux, tmp_path, family):
    open_shell(tmux)
    procs = start_family(tmux, family)
    rec_dir = tmp_path / "rec"
    tmux.type(f"autotrace -l {rec_dir}; echo \"[status $?]\"\n")
    tmux.wait_for(r"(?m)^=>")
    tmux.send("Enter")
    # strace -f -p follows only the children born after it attached: the
    # ticker's own calls are not shown, its parent's SIGCONT is.
    tmux.wait_for(rf"strace: Process {family.leader()} attached")
    tmux.wait_for(r"--- SIGCONT")
    assert all(p.status() not in NOT_RUNNING for p in procs)
    family.wait_ticking()
    tmux.send("p")
    tmux.wait_for("PAUSED")
    wait_for(lambda: all(p.status() in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)
                         for p in procs), what="p to stop the whole job")
    tmux.send("q")
    screen = tmux.wait_for(r"\[status \d+\]", timeout=30)
    assert "[status 0]" in screen
    assert_all_running(family, procs)


def test_live_view_c_continues_the_whole_job_and_sigkill_while_paused_leaves_it_running(
        tmux, tmp_path, family):
    open_shell(tmux)
    procs = start_family(tmux, family)
    rec_dir = tmp_path / "rec"
    tmux.type(f"autotrace -l {rec_dir}; echo \"[status $?]\"\n")
    tmux.wait_for(r"(?m)^=>")
    tmux.send("Enter")
    tmux.wait_for(r"--- SIGCONT")
    family.wait_ticking()
    stopped = (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)
    tmux.send("p")
    tmux.wait_for("PAUSED")
    wait_for(lambda: all(p.status() in stopped for p in procs), what="p to stop the whole job")
    tmux.send("c")
    tmux.wait_gone("PAUSED")
    wait_for(lambda: all(p.status() not in NOT_RUNNING for p in procs),
             what="c to continue the whole job")
    family.wait_ticking()
    tmux.send("p")
    tmux.wait_for("PAUSED")
    wait_for(lambda: all(p.status() in stopped for p in procs), what="p to stop it again")
    autotrace = autotrace_under(tmux.pane_pid())
    autotrace.kill()  # SIGKILL: no handler, no teardown
    tmux.wait_for(r"\[status 137\]")
    # Nothing left stopped: the job (still the shell's, not ours) ticks on.
    wait_for(lambda: all(p.status() not in NOT_RUNNING for p in procs), timeout=10,
             what="the whole job to be continued")
    assert_all_running(family, procs)
