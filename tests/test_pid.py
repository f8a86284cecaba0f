"""The word PID in tracer commands, and how commands are handed to the shell."""

from __future__ import annotations

import subprocess

import pytest

from autotrace.live.procs import exec_form, shell_argv, substitute_pid
from tests.conftest import trace


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("strace -p PID", "strace -p 4242"),
        ("cat /proc/PID/status", "cat /proc/4242/status"),
        ("lsof -p PID", "lsof -p 4242"),
        ("pstree -p PID", "pstree -p 4242"),
        ("sh -c 'kill -0 PID && echo PID'", "sh -c 'kill -0 4242 && echo 4242'"),
        ("strace -p PID,PID", "strace -p 4242,4242"),
        ("watch 'cat /proc/PID/stat'", "watch 'cat /proc/4242/stat'"),
    ],
)
def test_whole_word_pid_becomes_the_main_pid(given: str, expected: str) -> None:
    assert substitute_pid(given, 4242) == expected


@pytest.mark.parametrize(
    "untouched",
    ["echo MYPID", "cat PIDFILE", "echo PID_X", "echo XPID", "echo pid", "echo Pid",
     "echo PIDS", "echo _PID"],
)
def test_pid_inside_another_word_is_left_alone(untouched: str) -> None:
    assert substitute_pid(untouched, 4242) == untouched


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("sleep 1", "exec sleep 1"),
        ("strace -f -p 4242", "exec strace -f -p 4242"),
        ("tcpdump -i lo 'port 53'", "exec tcpdump -i lo 'port 53'"),
        # Operators inside quotes belong to the program, not to the shell.
        ("python3 -c 'import time; time.sleep(3)'",
         "exec python3 -c 'import time; time.sleep(3)'"),
        ("sh -c 'sleep 1 | cat'", "exec sh -c 'sleep 1 | cat'"),
        ("python3 -c 'import sys\nprint(1)'", "exec python3 -c 'import sys\nprint(1)'"),
        ("echo $HOME `date`", "exec echo $HOME `date`"),
    ],
)
def test_a_simple_command_is_execed_so_the_pane_pid_is_the_program(command: str,
                                                                   expected: str) -> None:
    assert exec_form(command) == expected


@pytest.mark.parametrize(
    "command",
    [
        "seq 3 | head -1",  # a pipeline: exec would drop the rest
        "sleep 1; echo done",
        "sleep 1 && echo done",
        "sleep 1 &",
        "cat < /etc/hostname",
        "(sleep 1)",
        "sleep 1\necho second line",
        "echo 'unbalanced",
        "FOO=1 env",  # assignment first: exec FOO=1 is an error
        "cd /tmp",  # builtins and keywords mean something else after exec
        "exit 3",
        "for i in 1 2; do echo $i; done",
        "while true; do sleep 1; done",
        "exec sleep 1",
        "",
    ],
)
def test_shell_syntax_is_not_execed(command: str) -> None:
    assert exec_form(command) == command


@pytest.mark.parametrize(
    "command",
    ["echo hello world", "seq 3 | tail -1", "FOO=bar; echo $FOO", "exit 7", "cd / && pwd",
     "for i in 1 2; do echo $i; done", "printf '%s\\n' 'a b' c", "echo one\necho two",
     "sh -c 'echo a; echo b'", "echo \"$(echo a; echo b)\""],
)
def test_running_through_shell_argv_means_what_the_shell_would(command: str) -> None:
    expected = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True)
    got = subprocess.run(shell_argv(command), capture_output=True, text=True)
    assert (got.returncode, got.stdout, got.stderr) == (
        expected.returncode, expected.stdout, expected.stderr)


def test_tracers_see_pid_of_the_main_program_not_of_a_shell(tmp_path) -> None:
    # The tracer waits until the held main has been continued and exec'd python3.
    main = "python3 -c 'import time; time.sleep(2)'"
    tracer = "sh -c 'sleep 1.2; echo comm=$(cat /proc/PID/comm) MYPID PID_X'"
    result, rec = trace(tmp_path, main, tracer)
    assert result.returncode == 0, result.stderr
    main_pane, tracer_pane = rec.panes
    pid = main_pane["pid"]
    assert tracer_pane["command"] == tracer
    assert tracer_pane["command_run"] == tracer.replace("/PID/", f"/{pid}/")
    assert "comm=python3 MYPID PID_X" in rec.output(1)


def test_pid_in_the_main_command_is_not_substituted(tmp_path) -> None:
    result, rec = trace(tmp_path, "echo PID")
    assert result.returncode == 0
    assert rec.panes[0]["command_run"] == "echo PID"
    assert rec.output(0).strip() == "PID"
