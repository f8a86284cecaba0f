"""The held start is invisible: tracers, probe titles and `info` see the user's
program from its own execve, with its own pid."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import run_autotrace, trace

EXECVE = re.compile(r'execve\("([^"]*)"')


def test_strace_sees_the_program_from_its_own_execve(tmp_path) -> None:
    result, rec = trace(tmp_path, "sleep 0.2", "strace -f -p PID")
    assert result.returncode == 0, result.stderr
    text = rec.output(1)
    execs = EXECVE.findall(text)
    # The first exec is the program itself: no shell, no PATH search before it
    # (a failed execve of /usr/local/bin/sleep would be one).
    assert execs == ["/usr/bin/sleep"], text[:2000]
    before_exec = text[: text.index("execve(")]
    assert "kill(" not in before_exec and "/bin/sh" not in text, text[:2000]


def test_shell_syntax_still_runs_through_the_shell(tmp_path) -> None:
    result, rec = trace(tmp_path, "echo one; echo two", "strace -f -p PID")
    assert result.returncode == 0, result.stderr
    assert "one\r\ntwo" in rec.output(0)
    assert EXECVE.findall(rec.output(1))[0] == "/bin/sh"


def test_probe_titles_and_lsof_show_the_program_and_its_pid(tmp_path) -> None:
    result, rec = trace(tmp_path, "sleep 1.5", "lsof -a -p PID -d txt", "@net", "@files",
                        options=["--interval", "0.2"])
    assert result.returncode == 0, result.stderr
    pid = rec.panes[0]["pid"]
    assert isinstance(pid, int)
    lsof = rec.output(1)
    first_row = lsof.split("\r\n")[1]
    assert first_row.split()[:2] == ["sleep", str(pid)], lsof
    for index in (2, 3):
        first_title = re.search(r"@\w+  pid (\d+): ([^\r\n]*)", rec.output(index))
        assert first_title, rec.output(index)
        assert first_title.groups() == (str(pid), "sleep 1.5")
        assert rec.panes[index]["pid"] == pid  # the process it shows
    info = run_autotrace(["info", rec.directory])
    assert info.returncode == 0, info.stderr
    assert "None" not in info.stdout
    assert info.stdout.count(f"pid:      {pid}\n") == 3, info.stdout  # main and two probes


def test_a_held_program_ignores_no_signal_and_holds_none_of_our_files(tmp_path) -> None:
    # An ignored SIGPIPE would survive exec (`yes | head` would never end).
    # The program gets what autotrace was given, not what autotrace changed:
    # what a plain child of ours has (make, for one, starts us with glibc's
    # reserved signals 32 and 33 ignored, which no Python code can reset).
    status = "grep -E '^Sig(Ign|Blk)' /proc/self/status"
    given = subprocess.run(["sh", "-c", status], capture_output=True, text=True,
                           check=True).stdout.split()
    assert given[:2] == ["SigBlk:", "0" * 16]
    result, rec = trace(tmp_path, status, "strace -p PID")
    assert result.returncode == 0, result.stderr
    assert rec.output(0).split() == given
    result, rec = trace(tmp_path, "ls /proc/self/fd", "strace -p PID")
    assert result.returncode == 0, result.stderr
    assert rec.output(0).split() == ["0", "1", "2", "3"]  # 3: ls's own, reading the folder


def test_an_executable_with_no_interpreter_line_runs_as_the_shell_would(tmp_path) -> None:
    script = tmp_path / "no-hash-bang"
    script.write_text("echo from the script\n")
    script.chmod(0o755)
    result, rec = trace(tmp_path, str(script), "strace -p PID")
    assert result.returncode == 0, result.stderr
    assert "from the script" in rec.output(0)
