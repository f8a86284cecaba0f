"""Refusal hints name the cause that holds on this machine (run as user nobody)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from autotrace.live.hints import yama_scope
from tests.conftest import RecordingFiles, processes_with, run_autotrace, wait_for

AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def nobodys_dir():
    """A folder nobody may use (pytest's tmp_path is closed to other users)."""
    path = Path(tempfile.mkdtemp(prefix="autotrace-hints-"))
    path.chmod(0o755)
    os.chown(path, 65534, 65534)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def capped_sleep(nobodys_dir, marker):
    """Nobody's process running a copy of sleep given cap_net_raw (like ping)."""
    if os.geteuid() != 0:
        pytest.fail("setcap and changing user need root (as in CI)")
    binary = nobodys_dir / "sleep"
    shutil.copy("/usr/bin/sleep", binary)
    subprocess.run(["setcap", "cap_net_raw+ep", str(binary)], check=True)
    proc = subprocess.Popen([*AS_NOBODY, str(binary), f"30{marker}"])
    wait_for(lambda: processes_with(marker), what="the capped sleep")
    yield proc.pid, binary
    proc.kill()
    proc.wait()


def nobody_traces(directory: Path, *commands: str) -> tuple[str, RecordingFiles]:
    result = run_autotrace(["--headless", "-l", directory / "rec", "sleep 1", *commands],
                           prefix=AS_NOBODY)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    rec = RecordingFiles(directory / "rec")
    return rec.panes[1]["note"] or "", rec


def test_ptrace_of_a_binary_with_file_capabilities_names_them(nobodys_dir, capped_sleep):
    pid, binary = capped_sleep
    note, rec = nobody_traces(nobodys_dir, f"strace -p {pid}")
    assert "Operation not permitted" in rec.output(1)
    assert note == (f"ptrace was refused: {binary} has file capabilities (cap_net_raw), and "
                    "the kernel lets only a tracer holding them trace it: run autotrace "
                    "with sudo"), note
    assert note in rec.output(1)
    if yama_scope() is None:  # this machine: no Yama, so no word of its sysctl
        assert "yama" not in note.lower()


def test_ptrace_of_another_users_process_says_so(nobodys_dir, marker):
    root_sleep = subprocess.Popen(["sleep", f"30{marker}"])
    try:
        note, _ = nobody_traces(nobodys_dir, f"strace -p {root_sleep.pid}")
    finally:
        root_sleep.kill()
        root_sleep.wait()
    assert note == (f"ptrace was refused: process {root_sleep.pid} belongs to another user "
                    "(uid 0): run autotrace with sudo")


def test_refused_capture_names_cap_net_raw_and_the_setcap_that_fixes_it(nobodys_dir):
    note, rec = nobody_traces(nobodys_dir, "tcpdump -i lo")
    tcpdump = os.path.realpath(shutil.which("tcpdump"))
    assert note == (f"packet capture needs CAP_NET_RAW, which neither you (uid 65534) nor "
                    f"{tcpdump} has: run autotrace with sudo, or "
                    f"`sudo setcap cap_net_raw,cap_net_admin+eip {tcpdump}`"), note
    assert note in rec.output(1)


def test_ptrace_of_a_setuid_program_says_so(nobodys_dir, marker):
    binary = nobodys_dir / "sleep-setuid"
    shutil.copy("/usr/bin/sleep", binary)
    binary.chmod(0o4755)  # root's, set-user-ID: nobody runs it as root
    proc = subprocess.Popen([*AS_NOBODY, str(binary), f"30{marker}"])
    try:
        wait_for(lambda: processes_with(marker), what="the setuid sleep")
        note, _ = nobody_traces(nobodys_dir, f"strace -p {proc.pid}")
    finally:
        proc.kill()
        proc.wait()
    assert note == (f"ptrace was refused: {binary} is set-user/group-ID, so its process is "
                    "not yours to trace: run autotrace with sudo"), note
