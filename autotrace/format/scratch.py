"""Private temporary folders to unpack bundles into, named after the process
that owns them, so the next run can remove those a killed run left behind
(SIGKILL gives no chance to clean up)."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import psutil

PREFIX = "autotrace-bundle-"

# psutil derives a start time from the boot time in whole seconds: a process
# may look up to a second younger than it is. A pid reused within this many
# seconds of a folder's last change is a risk we take.
_START_TIME_SLACK = 5.0


def make_scratch() -> Path:
    """A new private (0700) folder in the temporary directory, named
    PREFIX<pid>-<random>, after removing the stale ones of earlier runs."""
    remove_stale()
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))


def remove_stale(root: Path | None = None) -> None:
    """Remove the scratch folders whose owner is gone.

    Only folders that are surely ours: our prefix and a pid in the name, a real
    folder (not a link), our uid, mode 0700 (what mkdtemp makes). The owner is
    gone when no process has that pid, or the one that has it started after
    the folder last changed (the pid was reused)."""
    try:
        with os.scandir(root or tempfile.gettempdir()) as entries:
            stale = [entry.path for entry in entries if _is_stale(entry)]
    except OSError:
        return  # nothing we can see: nothing to clean
    for path in stale:
        # rmtree does not follow links inside (fd-based on Linux) and refuses
        # a link at the top; nobody else can swap our entry in a sticky /tmp.
        shutil.rmtree(path, ignore_errors=True)


def _owner_pid(name: str) -> int | None:
    if not name.startswith(PREFIX):
        return None
    pid, separator, _ = name[len(PREFIX):].partition("-")
    if not separator or not (pid.isascii() and pid.isdigit()):
        return None
    return int(pid)


def _is_stale(entry: os.DirEntry[str]) -> bool:
    pid = _owner_pid(entry.name)
    if pid is None or pid == os.getpid():
        return False
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() \
            or stat.S_IMODE(info.st_mode) != 0o700:
        return False
    return not _may_own(pid, info.st_mtime)


def _may_own(pid: int, changed: float) -> bool:
    """Whether process PID may be the one that made a folder last changed at
    CHANGED: it exists, and it started before that."""
    try:
        started = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # cannot tell: leave the folder alone
    return started <= changed + _START_TIME_SLACK
