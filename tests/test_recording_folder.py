"""Where a recording is written (issue 8, item 1): every file is made inside a
folder that is ours alone, never through a link, never over what is there.

Run as root, like CI: another user is played by `nobody` through `setpriv`,
sudo by its SUDO_* variables (what sudo sets for the program it runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from autotrace.commands import common
from autotrace.format.errors import RecordingError
from autotrace.format.recording import PaneRecord, RecordingWriter, SessionRecord, prepare_directory
from tests.conftest import assert_one_line_error, autotrace_env, run_autotrace, wait_for

NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
# The user who typed `sudo autotrace ...`: a uid of its own, not the attacker's.
UNDER_SUDO = {"SUDO_UID": "4242", "SUDO_GID": "4242", "SUDO_USER": "alice"}


@pytest.fixture(autouse=True)
def as_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("these tests run as root, like CI (they play other users)")


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A sticky folder every user can write to, like /tmp (pytest's is private)."""
    path = Path(tempfile.mkdtemp(prefix="autotrace-shared-"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def victim_file(folder: Path) -> Path:
    victim = folder / "victim"
    victim.write_text("secret\n")
    victim.chmod(0o600)
    return victim


def assert_untouched(victim: Path) -> None:
    info = victim.lstat()
    assert victim.read_text() == "secret\n"
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, 0, 0o600)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_sudo_into_a_folder_planted_by_another_user_writes_nothing_else(shared_tmp) -> None:
    victim = victim_file(shared_tmp)
    folder = shared_tmp / "rec"
    # Another user makes the README's `-l` folder, empty and 0777, and as soon
    # as a manifest appears plants its temporary name as a link to the victim:
    # the next manifest rewrite by root would follow it.
    plant = ('mkdir -m 0777 "$1" && for i in $(seq 1500); do '
             '[ -e "$1/manifest.json" ] && ln -s "$2" "$1/.manifest.json.tmp" 2>/dev/null; '
             'sleep 0.01; done')
    attacker = subprocess.Popen([*AS_NOBODY, "sh", "-c", plant, "sh", folder, victim])
    try:
        wait_for(folder.is_dir, what="the other user's folder")
        result = run_autotrace(["--headless", "-l", folder, "sleep 1"],
                               env=autotrace_env(**UNDER_SUDO))
    finally:
        attacker.kill()
        attacker.wait()
    line = assert_one_line_error(result)
    assert f"recording directory {folder} belongs to nobody" in line
    assert "new folder of your own" in line
    assert_untouched(victim)
    assert list(folder.iterdir()) == []  # nothing of ours went in


@pytest.mark.parametrize("folder_mode", [0o777, 0o770, 0o702], ids=lambda m: f"{m:04o}")
def test_a_folder_others_can_write_to_is_refused(tmp_path, folder_mode) -> None:
    folder = tmp_path / "rec"
    folder.mkdir()
    folder.chmod(folder_mode)
    line = assert_one_line_error(run_autotrace(["--headless", "-l", folder, "true"]))
    assert f"recording directory {folder} is writable by others (mode {folder_mode:04o})" in line
    assert "chmod go-w" in line
    assert list(folder.iterdir()) == []


def test_under_sudo_an_empty_folder_of_the_invoking_user_is_accepted(tmp_path) -> None:
    folder = tmp_path / "rec"
    folder.mkdir(mode=0o700)
    os.chown(folder, 4242, 4242)
    result = run_autotrace(["--headless", "-l", folder, "echo mine"],
                           env=autotrace_env(**UNDER_SUDO))
    assert result.returncode == 0, result.stderr
    for path in folder.iterdir():
        assert (path.stat().st_uid, mode(path)) == (4242, 0o600), path


def test_links_planted_in_our_own_folder_are_never_followed(tmp_path) -> None:
    victim = victim_file(tmp_path)
    folder = tmp_path / "rec"
    writer = RecordingWriter(prepare_directory(folder), SessionRecord(80, 24, 0.0))
    (folder / ".manifest.json.tmp").symlink_to(victim)
    (folder / "pane-1.cast").symlink_to(victim)
    main = writer.add_pane(PaneRecord(0, "main", "echo hi", "echo hi", 80, 24))
    tracer = writer.add_pane(PaneRecord(1, "tracer", "strace", "strace", 80, 24))
    main.output(0.1, "hi\r\n")
    tracer.output(0.2, "write(1, ...)\r\n")
    writer.close(0.5)
    assert_untouched(victim)
    manifest = folder / "manifest.json"
    assert not manifest.is_symlink() and not (folder / ".manifest.json.tmp").exists()
    assert len(json.loads(manifest.read_text())["panes"]) == 2
    # The pane whose name was taken is not written through the link: its
    # creation fails, and a recording that cannot be whole stops.
    assert (folder / "pane-1.cast").is_symlink()
    assert writer.stopped


def test_the_internal_error_log_does_not_follow_a_planted_link(tmp_path, monkeypatch,
                                                               capsys) -> None:
    victim = victim_file(tmp_path)
    folder = tmp_path / "rec"
    monkeypatch.setattr(common, "_log_folder", None)
    common.log_internal_errors_to(prepare_directory(folder))
    (folder / "autotrace.log").symlink_to(victim)

    def fails(options: argparse.Namespace) -> int:
        raise ZeroDivisionError("planted")

    assert common.guarded(fails, argparse.Namespace()) == 70
    assert_untouched(victim)
    line = capsys.readouterr().err.strip()
    log = Path(line.rsplit("details in ", 1)[1].rstrip(")"))
    try:
        assert log.parent != folder and "ZeroDivisionError: planted" in log.read_text()
    finally:
        log.unlink()


def test_a_strict_umask_leaves_a_recording_its_owner_can_use(shared_tmp) -> None:
    # sudo passes the user's umask on; 277 takes every write bit. The folders
    # and files must still be the user's to read and to remove.
    directory = shared_tmp / "made" / "rec"
    env = autotrace_env(SUDO_UID=str(NOBODY), SUDO_GID=str(NOBODY), SUDO_USER="nobody")
    result = run_autotrace(["--headless", "-l", directory, "echo strict"], env=env,
                           prefix=["sh", "-c", 'umask 277; exec "$@"', "sh"])
    assert result.returncode == 0, result.stderr
    for path in (directory.parent, directory):
        assert (mode(path), path.stat().st_uid) == (0o700, NOBODY), path
    assert sorted(p.name for p in directory.iterdir()) == ["manifest.json", "pane-0.cast"]
    for path in directory.iterdir():
        assert (mode(path), path.stat().st_uid) == (0o600, NOBODY), path
    as_owner = subprocess.run([*AS_NOBODY, "sh", "-c", 'cat "$1"/rec/* && rm -r "$1"',
                               "sh", directory.parent], capture_output=True, text=True)
    assert as_owner.returncode == 0, as_owner.stderr
    assert "strict" in as_owner.stdout and not directory.parent.exists()


def test_prepare_directory_refuses_what_it_cannot_use_safely(tmp_path) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    with pytest.raises(RecordingError, match="cannot open"):
        prepare_directory(tmp_path / "link")
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    os.chown(other, NOBODY, NOBODY)
    with pytest.raises(RecordingError, match="belongs to nobody"):
        prepare_directory(other)
