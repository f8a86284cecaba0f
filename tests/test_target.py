"""Finding the calling shell's latest background job, on real shells and jobs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import psutil
import pytest

from autotrace.live.target import (
    Action,
    action_for_key,
    calling_shell,
    describe,
    latest_background_job,
)

PROMPT = "at-test-ready> "
TIMEOUT = 30


def kill_tree(root: psutil.Process) -> None:
    """KILL ROOT's descendants (stopped ones too: KILL works on them)."""
    try:
        victims = root.children(recursive=True)
    except psutil.NoSuchProcess:
        return
    for proc in victims:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(victims, timeout=10)


def cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.NoSuchProcess:
        return ""


class Shell:
    """An interactive bash in a pty, with job control, driven like a person would."""

    def __init__(self, tmp_path: Path):
        env = {**os.environ, "PS1": PROMPT, "TERM": "dumb", "HOME": str(tmp_path)}
        self.child = pexpect.spawn("bash", ["--norc", "--noprofile", "-i"], env=env,
                                   encoding="utf-8", timeout=TIMEOUT, dimensions=(24, 200))
        self.child.expect_exact(PROMPT)
        self.proc = psutil.Process(self.child.pid)

    def run(self, line: str) -> str:
        self.child.sendline(line)
        self.child.expect_exact(PROMPT)
        return self.child.before

    def background(self, line: str) -> None:
        """Run LINE with `&`; return once it has exec'd (a fresh fork is still bash)."""
        self.run(f"{line} &")
        words = line.split("|")[-1].split()
        wait_for(lambda: any(cmdline(p) == " ".join(words) for p in self.proc.children()))

    def suspend(self, line: str) -> None:
        """Run LINE in the foreground, then press Ctrl-Z."""
        self.child.sendline(line)
        wait_for(lambda: any(cmdline(p) == line for p in self.proc.children()))
        self.child.sendcontrol("z")
        self.child.expect("Stopped")
        self.child.expect_exact(PROMPT)

    def close(self) -> None:
        kill_tree(self.proc)
        self.child.close(force=True)


def wait_for(condition, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.fixture
def shell(tmp_path):
    sh = Shell(tmp_path)
    yield sh
    sh.close()


def test_no_jobs_finds_nothing(shell):
    assert latest_background_job(shell.proc) is None


def test_finds_a_job_started_with_ampersand(shell):
    shell.background("sleep 1000")
    job = latest_background_job(shell.proc)
    assert job is not None and cmdline(job) == "sleep 1000"
    assert describe(job) == f"pid {job.pid}, running: sleep 1000"


def test_newest_job_wins_whether_stopped_or_running(shell):
    shell.background("sleep 1000")
    time.sleep(0.05)  # create_time has clock-tick resolution
    shell.suspend("sleep 1001")
    job = latest_background_job(shell.proc)
    assert cmdline(job) == "sleep 1001"
    assert describe(job) == f"pid {job.pid}, stopped: sleep 1001"

    time.sleep(0.05)
    shell.background("sleep 1002")
    assert cmdline(latest_background_job(shell.proc)) == "sleep 1002"


def test_a_pipeline_job_is_its_group_leader(shell):
    shell.background("sleep 1003 | sleep 1004")
    wait_for(lambda: sorted(map(cmdline, shell.proc.children())) == ["sleep 1003", "sleep 1004"])
    job = latest_background_job(shell.proc)
    assert cmdline(job) == "sleep 1003"
    assert os.getpgid(job.pid) == job.pid


def test_ended_jobs_are_not_candidates(shell):
    shell.background("sleep 1005")
    time.sleep(0.05)
    shell.run("true &")
    wait_for(lambda: all(cmdline(p) == "sleep 1005" or p.status() == psutil.STATUS_ZOMBIE
                         for p in shell.proc.children()))
    assert cmdline(latest_background_job(shell.proc)) == "sleep 1005"


def probe_script(tmp_path: Path) -> Path:
    """A script that reports, from inside the shell, what autotrace would pick."""
    script = tmp_path / "probe.py"
    script.write_text(
        "from autotrace.live.target import calling_shell, latest_background_job\n"
        "shell = calling_shell()\n"
        "job = latest_background_job(shell)\n"
        "print('SHELL', shell.pid, 'JOB', job.pid if job else None,"
        " ' '.join(job.cmdline()) if job else '', 'END')\n"
    )
    return script


def probe_answer(output: str) -> tuple[int, str]:
    line = next(line for line in output.splitlines() if line.startswith("SHELL "))
    words = line.split()
    return int(words[1]), " ".join(words[2:-1])


def test_from_the_foreground_the_foreground_job_is_not_a_candidate(shell, tmp_path):
    """Run as the user would: in the foreground, in a pipeline with a newer process."""
    script = probe_script(tmp_path)
    shell.background("sleep 1006")
    time.sleep(0.05)
    # `cat` is forked after the script: the newest child of the shell.
    out = shell.run(f"{sys.executable} {script} | cat")
    shell_pid, job = probe_answer(out)
    assert shell_pid == shell.proc.pid
    sleep_1006 = next(p for p in shell.proc.children() if cmdline(p) == "sleep 1006")
    assert job == f"JOB {sleep_1006.pid} sleep 1006"


def fake_sudo(tmp_path: Path) -> Path:
    """A real process named sudo: a shell whose executable is called `sudo`."""
    link = tmp_path / "sudo"
    link.symlink_to("/bin/sh")
    return link


def test_under_sudo_the_shell_above_sudo_is_the_calling_shell(shell, tmp_path):
    script = probe_script(tmp_path)
    sudo = fake_sudo(tmp_path)
    shell.background("sleep 1008")
    # sudo with use_pty forks a child sudo: two of them between shell and us.
    # The trailing `; true` keeps each sh from exec'ing its last command.
    inner = f"{sys.executable} {script}; true"
    out = shell.run(f"{sudo} -c '{sudo} -c \"{inner}\"; true'")
    shell_pid, job = probe_answer(out)
    assert shell_pid == shell.proc.pid
    assert job.endswith("sleep 1008")


def test_calling_shell_of_a_given_process_walks_past_sudo(tmp_path):
    sudo = fake_sudo(tmp_path)
    chain = subprocess.Popen([str(sudo), "-c", "sleep 1009; true"])
    try:
        wait_for(lambda: psutil.Process(chain.pid).children())
        sleeper = psutil.Process(chain.pid).children()[0]
        assert psutil.Process(chain.pid).name() == "sudo"
        assert calling_shell(sleeper).pid == os.getpid()
        assert calling_shell(psutil.Process(chain.pid)).pid == os.getpid()
    finally:
        kill_tree(psutil.Process(chain.pid))
        chain.kill()
        chain.wait()


@pytest.mark.parametrize("key, action", [
    ("\r", Action.TRACE), ("\n", Action.TRACE), ("KEY_ENTER", Action.TRACE),
    ("q", Action.CONTINUE_AND_QUIT), ("Q", Action.CONTINUE_AND_QUIT),
    ("z", Action.LEAVE_AND_QUIT), ("Z", Action.LEAVE_AND_QUIT),
    ("r", Action.RERUN), ("R", Action.RERUN),
])
def test_keys_map_to_the_original_choices(key, action):
    assert action_for_key(key) is action


@pytest.mark.parametrize("key", ["x", " ", "\x1b", "", "qq", "KEY_UP"])
def test_other_keys_choose_nothing(key):
    assert action_for_key(key) is None


def test_prompt_reads_one_key_in_a_real_terminal(tmp_path):
    """The question is shown; a wrong key is ignored; `z` answers without Enter."""
    target = subprocess.Popen(["sleep", "1010"])
    try:
        code = ("import psutil, sys; from autotrace.live.target import prompt_choice; "
                f"print('CHOSE', prompt_choice(psutil.Process({target.pid})).name)")
        child = pexpect.spawn(sys.executable, ["-c", code], encoding="utf-8",
                              timeout=TIMEOUT, env={**os.environ, "TERM": "xterm"})
        child.expect_exact("=> ")
        assert f"pid {target.pid}, running: sleep 1010" in child.before
        assert "r      kill it and re-run it under autotrace" in child.before
        child.send("x")
        child.send("z")
        child.expect(r"CHOSE (\w+)")
        assert child.match.group(1) == "LEAVE_AND_QUIT"
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
    finally:
        target.send_signal(signal.SIGKILL)
        target.wait()


def test_prompt_without_a_terminal_is_a_clear_error(tmp_path):
    target = subprocess.Popen(["sleep", "1011"])
    try:
        code = ("import psutil; from autotrace.live.target import prompt_choice, TargetError\n"
                "try:\n"
                f"    prompt_choice(psutil.Process({target.pid}))\n"
                "except TargetError as err:\n"
                "    print('ERROR', err)\n")
        out = subprocess.run([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=TIMEOUT)
        assert out.stdout.startswith("ERROR cannot ask")
        assert "--pid" in out.stdout
    finally:
        target.kill()
        target.wait()
