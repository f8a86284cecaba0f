"""A job picked up after Ctrl-Z gets its own pane (issue 10, point 2), driven
in tmux as a person would: `ping` in an interactive bash, Ctrl-Z, plain
`autotrace`, Enter; its lines must show in pane 0 and nowhere else, and at
the end go back to the shell's terminal, the job running on."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time

import psutil
import pytest
from test_attach_tmux import autotrace_bin, open_shell  # noqa: F401 - the fixture too
from tmuxdriver import Tmux

from tests.conftest import autotrace_under, wait_for

pytestmark = pytest.mark.tmux

PING = "ping -i 0.2 127.0.0.1"
PING_LINE = re.compile(r"icmp_seq=(\d+) ttl=")  # strace cuts its strings shorter than this
AS_NOBODY = "setpriv --reuid=65534 --regid=65534 --clear-groups"
WITHOUT_PTRACE = ["setpriv", "--bounding-set=-sys_ptrace", "--inh-caps=-sys_ptrace"]


@pytest.fixture
def tmux(autotrace_bin):  # noqa: F811 - the fixture imported above
    driver = Tmux(cols=120, rows=40)
    driver.autotrace_bin = autotrace_bin
    driver.pings: list[int] = []
    yield driver
    driver.kill()
    for pid in driver.pings:  # not autotrace's to end: the test's
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def start_ping(tmux: Tmux, prefix: str = "", suffix: str = "") -> int:
    """Type ping into the shell, see it print, Ctrl-Z it; its pid."""
    tmux.type(f"{prefix} {PING}{suffix}\n".lstrip())
    tmux.wait_for(r"icmp_seq=3 ")
    pane = psutil.Process(tmux.pane_pid())  # tmux's wrapper, above the shell
    pid = wait_for(lambda: next((p.pid for p in pane.children(recursive=True)
                                 if p.name() == "ping"), None), what="ping under the shell")
    tmux.pings.append(pid)
    tmux.send("C-z")
    wait_for(lambda: psutil.Process(pid).status() == psutil.STATUS_STOPPED, what="ping to stop")
    return pid


def pick_up(tmux: Tmux, tmp_path) -> None:
    tmux.type(f"autotrace -l {tmp_path / 'rec'}; echo \"[status $?]\"\n")
    tmux.wait_for(r"(?m)^=>", timeout=30)
    tmux.send("Enter")
    tmux.wait_for(r" 0  running  ping")


def pane_zero_rows(rows: list[str]) -> range:
    """Rows of pane 0: after its title, up to the next title row (or the footer)."""
    top = next(i for i, row in enumerate(rows) if row.startswith(" 0  "))
    below = next((i for i, row in enumerate(rows) if i > top and re.match(r" 1  ", row)),
                 len(rows) - 1)
    return range(top + 1, below)


def state_of(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def assert_only_in_pane_zero(tmux: Tmux, seconds: float) -> int:
    """For `seconds`, no ping line outside pane 0; the last icmp_seq seen."""
    seen = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows = tmux.capture_lines()
        inside = pane_zero_rows(rows)
        for number, row in enumerate(rows):
            for match in PING_LINE.finditer(row):
                assert number in inside, f"a ping line on row {number}:\n" + "\n".join(rows)
                seen = max(seen, int(match.group(1)))
        time.sleep(0.2)
    return seen


def test_the_job_prints_in_pane_0_only_and_goes_back_to_its_terminal(tmux, tmp_path):
    open_shell(tmux)
    pid = start_ping(tmux)
    pick_up(tmux, tmp_path)
    tmux.wait_for(r"strace -f -tt -p")
    seen = assert_only_in_pane_zero(tmux, 5)
    assert seen > 10  # it went on printing, into pane 0
    tmux.send("q")
    screen = tmux.wait_for(r"\[status \d+\]", timeout=30)
    assert "[status 0]" in screen
    assert f"ping (pid {pid}) goes on in the background of this shell: fg brings it back" \
        in screen
    assert state_of(pid) in "SR"  # alive, not stopped
    # Writing to its own terminal again: new lines below the status line.
    after = tmux.wait_for(r"\[status 0\][\s\S]*icmp_seq=\d+ ttl")
    tail = after.split("[status 0]")[-1]
    assert max(int(n) for n in PING_LINE.findall(tail)) > seen
    assert all(os.readlink(f"/proc/{pid}/fd/{fd}") == os.readlink(
        f"/proc/{tmux.pane_pid()}/fd/0") for fd in (0, 1, 2))


def test_every_process_of_a_pipeline_job_is_moved_and_given_back(tmux, tmp_path):
    # ping's stdout is a pipe: the lines reach the terminal through cat.
    open_shell(tmux)
    pid = start_ping(tmux, suffix=" | cat")
    cat = next(p.pid for p in psutil.Process(tmux.pane_pid()).children(recursive=True)
               if p.name() == "cat")
    tmux.pings.append(cat)
    pick_up(tmux, tmp_path)
    assert assert_only_in_pane_zero(tmux, 2) > 0
    tmux.send("q")
    screen = tmux.wait_for(r"\[status 0\][\s\S]*icmp_seq=\d+ ttl", timeout=30)
    assert f"(pid {pid}) goes on in the background" in screen
    terminal = os.readlink(f"/proc/{tmux.pane_pid()}/fd/0")
    assert [os.readlink(f"/proc/{cat}/fd/{fd}") for fd in (1, 2)] == [terminal, terminal]
    assert os.readlink(f"/proc/{pid}/fd/2") == terminal


def test_ctrl_c_typed_into_its_pane_reaches_the_job(tmux, tmp_path):
    open_shell(tmux)
    pid = start_ping(tmux)
    pick_up(tmux, tmp_path)
    tmux.wait_for(r"strace -f -tt -p")
    tmux.send("i")
    tmux.wait_for(r"TYPING INTO 0")
    tmux.send("C-c")  # through the pane's pty: its holder hands SIGINT on to the job
    screen = tmux.wait_for(r"packets transmitted")
    rows = screen.split("\n")
    assert any("packets transmitted" in rows[i] for i in pane_zero_rows(rows))
    wait_for(lambda: not psutil.pid_exists(pid) or state_of(pid) == "Z", what="ping to end")
    tmux.wait_for(r"ENDED")
    tmux.send("q")
    assert "[status 0]" in tmux.wait_for(r"\[status \d+\]", timeout=30)


def intact(rows: list[str]) -> bool:
    """The view's own rows where they belong: the status line on top, pane 0's
    title under it, pane 1's title further down (rows the job's lines scroll)."""
    return (rows[0].startswith(" ● REC") and rows[1].startswith(" 0  running  ping")
            and any(row.startswith(" 1  running  @files") for row in rows[2:])
            and not PING_LINE.search("\n".join(rows[:2])))


def test_without_ptrace_the_view_keeps_its_rows_and_says_why(tmux, tmp_path):
    # autotrace (root without CAP_SYS_PTRACE) may not move a job of another user.
    tmux.start([*WITHOUT_PTRACE, "bash", "--norc", "--noprofile", "-i"],
               env={"PATH": f"{tmux.autotrace_bin}:/usr/sbin:/usr/bin:/sbin:/bin",
                    "PS1": "$ ", "HISTFILE": "/dev/null"})
    start_ping(tmux, prefix=AS_NOBODY)
    tmux.type(f"autotrace -l {tmp_path / 'rec'}; echo \"[status $?]\"\n")
    tmux.wait_for(r"(?m)^=>", timeout=30)
    tmux.send("Enter")
    tmux.wait_for(r"main: running \(pid \d+\), not moved: ptrace not permitted")
    # The job writes over the view; the view repaints itself: its footer comes
    # back to the bottom row, and its header to the top, again and again.
    for _ in range(3):
        wait_for(lambda: PING_LINE.search(tmux.capture()), what="ping writing over the view")
        wait_for(lambda: intact(tmux.capture_lines()), timeout=10,
                 what="the view to repaint its rows:\n" + tmux.capture())
        time.sleep(0.5)
    tmux.send("q")
    tmux.wait_for(r"\[status \d+\]", timeout=30)


def test_a_sigkilled_autotrace_still_gives_the_job_back(tmux, tmp_path):
    open_shell(tmux)
    pid = start_ping(tmux)
    pick_up(tmux, tmp_path)
    tmux.wait_for(r"strace -f -tt -p")
    autotrace_under(tmux.pane_pid()).kill()  # SIGKILL: no teardown of ours runs
    tmux.wait_for(r"\[status 137\]", timeout=30)
    # The pane's pty hung up; its holder moved the job back to this terminal.
    terminal = os.readlink(f"/proc/{tmux.pane_pid()}/fd/0")
    wait_for(lambda: all(os.readlink(f"/proc/{pid}/fd/{fd}") == terminal for fd in (0, 1, 2)),
             timeout=30, what="the job back on its terminal")
    wait_for(lambda: state_of(pid) in "SR", what="the job running, not stopped or traced")
    tmux.wait_for(r"\[status 137\][\s\S]*icmp_seq=\d+ ttl")
