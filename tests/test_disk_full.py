"""A full or failing disk stops the recording, never the program being
debugged (issue 8, item 7): a small tmpfs for ENOSPC, a loop-mounted ext4 shut
down for EIO, `ulimit -f` for EFBIG (in test_view_tmux.py)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tmuxdriver import Tmux

from tests.conftest import assert_one_line_error, run_autotrace, start_autotrace, wait_for
from tests.test_recording_format import run_in_pty

# A line (`be""fore`: the word is in the pane file only once printed), then
# 600 kB of output into a 256 kB disk (read in one go, it may be one event).
FILL = ("echo be\"\"fore the disk filled; sleep 0.2; "
        "head -c 600000 /dev/zero | tr '\\0' x; echo; echo after the disk filled")

# Counts on a fast reaction to a failing disk: run alone, not beside other tests.
pytestmark = pytest.mark.alone


@pytest.fixture(autouse=True)
def as_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("these tests run as root, like CI (they mount file systems)")


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", mount],
                   check=True)
    yield mount
    subprocess.run(["umount", "-l", mount], check=False)


def assert_recording_is_whole(directory: Path) -> dict:
    """What is left on the disk is a recording every reader takes."""
    names = sorted(p.name for p in directory.iterdir())
    assert names == ["manifest.json", "pane-0.cast", "pane-1.cast"], names  # no tmp, no log
    manifest = json.loads((directory / "manifest.json").read_text())
    asciinema = shutil.which("asciinema")
    assert asciinema, "asciinema is installed by .ci/install-tools"
    for name in names[1:]:
        lines = (directory / name).read_bytes().split(b"\n")
        assert lines[-1] == b"", f"{name} ends in a torn line"
        code, played = run_in_pty([asciinema, "cat", str(directory / name)])
        assert code == 0, played
    read = run_autotrace(["cat", directory])
    assert read.returncode == 0 and "before the disk filled" in read.stdout, read.stderr
    return manifest


@pytest.mark.parametrize(("last_word", "status"), [("true", 74), ("exit 3", 3)])
def test_headless_a_full_disk_lets_the_session_run_to_its_end(small_disk, tmp_path, marker,
                                                              last_word, status) -> None:
    directory = small_disk / "rec"
    done = tmp_path / "main-ran-to-its-end"
    result = run_autotrace(["--headless", "-q", "-l", directory,
                            f"{FILL}; touch {done}; {last_word}", f"sleep 30{marker}"])
    assert done.exists(), result.stderr
    # A success that was not recorded whole is 74; a failure keeps its own status.
    assert result.returncode == status, result.stderr
    assert result.stderr.splitlines() == [
        "autotrace: recording stopped: disk full; the session goes on, unrecorded"]
    manifest = assert_recording_is_whole(directory)
    assert [p["file"] for p in manifest["panes"]] == ["pane-0.cast", "pane-1.cast"]


def shut_down(mount: Path) -> None:
    """What a dying disk does: every later write is EIO (EXT4_IOC_SHUTDOWN).
    What was written so far is on the disk first, so the test can tell."""
    subprocess.run(["sync", "--file-system", mount], check=True)  # syncfs: this disk only
    fd = os.open(mount, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, 0x8004587D, struct.pack("I", 0))  # _IOR('X', 125, __u32)
    finally:
        os.close(fd)


@pytest.fixture
def ext4_disk(tmp_path) -> Iterator[tuple[Path, Path]]:
    image, mount = tmp_path / "disk.img", tmp_path / "ext4"
    mount.mkdir()
    with open(image, "wb") as f:
        f.truncate(16 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", image], check=True)
    subprocess.run(["mount", "-o", "loop", image, mount], check=True)
    yield image, mount
    subprocess.run(["umount", mount], check=False)


def test_an_io_error_stops_the_recording_at_its_last_whole_event(ext4_disk, tmp_path,
                                                                  marker) -> None:
    image, mount = ext4_disk
    directory = mount / "rec"
    go, done = tmp_path / "go", tmp_path / "main-ran-to-its-end"
    # `be""fore`: the word shows in the pane file only once it was printed.
    main = (f'echo be""fore; while [ ! -e {go} ]; do sleep 0.02; done; '
            f"{FILL}; touch {done}")
    proc = start_autotrace(["--headless", "-q", "-l", directory, main, f"sleep 30{marker}"])
    try:
        pane = directory / "pane-0.cast"
        wait_for(lambda: pane.exists() and b"before" in pane.read_bytes(),
                 what="the main command's first line recorded")
        shut_down(mount)
        go.touch()
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert done.exists(), stderr
    assert proc.returncode == 74, stderr
    assert stderr.splitlines() == [
        "autotrace: recording stopped: input/output error; the session goes on, unrecorded"]
    # What reached the disk before it failed is a whole recording.
    subprocess.run(["umount", mount], check=True)
    subprocess.run(["mount", "-o", "loop", image, mount], check=True)
    names = sorted(p.name for p in directory.iterdir())
    assert names == ["manifest.json", "pane-0.cast", "pane-1.cast"], names
    json.loads((directory / "manifest.json").read_text())
    for name in names[1:]:
        text = (directory / name).read_text()
        assert text.endswith("\n") and all(json.loads(line) for line in text.splitlines())
        code, played = run_in_pty([shutil.which("asciinema") or "asciinema", "cat",
                                   str(directory / name)])
        assert code == 0, played
    assert "before" in (directory / "pane-0.cast").read_text()


@pytest.mark.tmux
def test_live_view_says_the_recording_stopped_and_goes_on_showing_the_panes(
        small_disk, tmp_path, marker) -> None:
    directory = small_disk / "rec"
    ticks = "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo tick $i; sleep 0.05; done"
    tmux = Tmux(cols=120, rows=40)
    try:
        tmux.start([sys.executable, "-m", "autotrace", "-l", str(directory),
                    f"{FILL}; {ticks}", f"sleep 30{marker}"])
        screen = tmux.wait_for("recording stopped: disk full", timeout=30)
        assert "NOT RECORDING (disk full)" in screen
        # The panes go on: lines printed after the disk filled keep coming.
        first = int(tmux.wait_for(r"tick \d+").rsplit("tick ", 1)[1].split()[0])
        tmux.wait_for(rf"tick {first + 20}\b", timeout=30)
        time.sleep(0.5)  # the user takes their time: nothing ends by itself
        assert "[exit" not in tmux.capture()
        tmux.send("q")
        assert tmux.exit_status() == 143  # ended by q: the main command's own status
        screen = tmux.capture()
        assert "autotrace: recording stopped: disk full" in screen
    finally:
        tmux.kill()
    assert_recording_is_whole(directory)


def test_a_disk_full_before_the_start_is_one_line_and_leaves_nothing(small_disk,
                                                                   tmp_path) -> None:
    (small_disk / "filler").write_bytes(b"x" * (256 << 10))  # what fits, and no more
    directory, ran = small_disk / "rec", tmp_path / "ran"
    result = run_autotrace(["--headless", "-l", directory, f"touch {ran}"])
    line = assert_one_line_error(result)
    assert line == f"autotrace: cannot write the recording in {directory}: disk full"
    assert not directory.exists() and not ran.exists()
