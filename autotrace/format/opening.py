"""The one way a file of a recording is opened for reading.

A recording may come from someone else, and its folder may hold anything: a
pane file that is a symbolic link to /etc/shadow, a fifo that would block an
open() forever, /dev/zero that never ends. A file is opened without
following a link, relative to its folder's descriptor, without blocking;
what is opened must then be a regular file, or it is refused in one line.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from autotrace.format.errors import RecordingError

_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISFIFO, "a fifo"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISSOCK, "a socket"),
)
# O_NONBLOCK: should a fifo take the file's place after the check, opening
# it returns at once instead of waiting for a writer. O_NOCTTY: a terminal
# device never becomes our controlling terminal.
_OPEN_FLAGS = (os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)


def kind_of(mode: int) -> str:
    """What a file of this mode is, in words: 'a fifo', 'a directory', ..."""
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return "not a regular file"


def _refused(path: Path, mode: int) -> RecordingError:
    return RecordingError(f"{path}: refused: it is {kind_of(mode)}, not a regular file")


def _cannot(path: Path, err: OSError) -> RecordingError:
    return RecordingError(f"{path}: cannot read: {err.strerror or err}")


def open_for_reading(path: Path) -> BinaryIO:
    """`path` opened for binary reading, if it is a regular file and not a link.

    The folder is opened first, and the file by its plain name inside it:
    whatever the folder's path does later, the file read is the one checked.
    Raises RecordingError with one line naming the file and what it is.
    """
    try:
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise _cannot(path, err) from None
    try:
        # Looked at before it is opened: opening a device can have effects.
        before = os.stat(path.name, dir_fd=folder, follow_symlinks=False)
        if not stat.S_ISREG(before.st_mode):
            raise _refused(path, before.st_mode)
        fd = os.open(path.name, _OPEN_FLAGS, dir_fd=folder)
    except OSError as err:
        if err.errno == errno.ELOOP:  # replaced by a link after the check
            raise _refused(path, stat.S_IFLNK) from None
        raise _cannot(path, err) from None
    finally:
        os.close(folder)
    opened = os.fstat(fd)
    if not stat.S_ISREG(opened.st_mode):
        os.close(fd)
        raise _refused(path, opened.st_mode)
    return os.fdopen(fd, "rb")


def read_bounded(path: Path, limit: int) -> bytes:
    """The whole of a small file (a manifest), refused when over `limit` bytes."""
    with open_for_reading(path) as f:
        try:
            data = f.read(limit + 1)
        except OSError as err:
            raise _cannot(path, err) from None
    if len(data) > limit:
        raise RecordingError(f"{path}: refused: over the limit of {limit} bytes")
    return data
