"""Making the files of a recording safely: inside a folder opened once, never
through a link, never over a file that is there already.

Under sudo autotrace is root writing into a folder the user named. A link
planted in that folder (`.manifest.json.tmp -> /etc/shadow`) or a folder that
someone else can write to must never make root write, truncate or chown
anything else. So every file is created relative to the folder's descriptor
with O_CREAT|O_EXCL|O_NOFOLLOW, given its mode and owner through its own
descriptor, and the only replacing is the manifest's rename inside that
folder. Modes are set explicitly, so a strict umask (277) cannot leave a
recording its owner cannot use.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600
_OPEN_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeFolder(Exception):
    """A folder a recording cannot be written to; the message is for the user."""


def invoking_user_ids() -> tuple[int, int] | None:
    """(uid, gid) of the user who ran sudo, when we are root under sudo."""
    if os.geteuid() != 0:
        return None
    try:
        return int(os.environ["SUDO_UID"]), int(os.environ["SUDO_GID"])
    except (KeyError, ValueError):
        return None


def _give_to_invoking_user(fd: int) -> None:
    # Under sudo the recording belongs to the person who asked for it, not root.
    ids = invoking_user_ids()
    if ids:
        os.fchown(fd, *ids)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def write_all(fd: int, data: bytes) -> None:
    """Write every byte (a write to a filling disk can be short), or raise."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class RecordingFolder:
    """An open folder of a recording: every file in it is made through here."""

    def __init__(self, path: Path, fd: int, made: bool = False):
        self.path = path
        self.fd = fd
        self.made = made  # created by us, not given to us

    @classmethod
    def open(cls, path: Path) -> RecordingFolder:
        """Open an existing folder; refused unless it is ours and only ours."""
        try:
            fd = os.open(path, _OPEN_FOLDER)
        except NotADirectoryError:
            raise UnsafeFolder(f"recording directory {path} exists and is not a directory") \
                from None
        except OSError as err:
            raise UnsafeFolder(f"cannot open recording directory {path}: {err.strerror}") \
                from None
        folder = cls(path, fd)
        try:
            folder._check_private()
        except UnsafeFolder:
            folder.close()
            raise
        return folder

    @classmethod
    def make(cls, path: Path) -> RecordingFolder:
        """Create the folder (and missing parents), private whatever the umask."""
        missing = [p for p in path.parents if not os.path.lexists(p)]
        for created in reversed(missing):
            # Every folder we create is private, not only the last: the names of
            # recordings (commands, times) are nobody else's business.
            try:
                cls._make_one(created).close()
            except FileExistsError:
                continue  # a parent made meanwhile by someone else: not ours to chown
        try:
            return cls._make_one(path)
        except FileExistsError:
            # Another session took this name a moment ago: never share one.
            raise UnsafeFolder(f"recording directory {path} was just created "
                               "by someone else; try again") from None

    @classmethod
    def _make_one(cls, path: Path) -> RecordingFolder:
        try:
            parent = os.open(path.parent, _OPEN_FOLDER)
        except OSError as err:
            raise UnsafeFolder(f"cannot create recording directory {path}: "
                               f"{err.strerror}") from None
        try:
            os.mkdir(path.name, FOLDER_MODE, dir_fd=parent)
            # O_NOFOLLOW: what we open is the folder mkdir made, not a link put
            # in its place since.
            fd = os.open(path.name, _OPEN_FOLDER | os.O_NOFOLLOW, dir_fd=parent)
        except FileExistsError:
            raise
        except OSError as err:
            raise UnsafeFolder(f"cannot create recording directory {path}: "
                               f"{err.strerror}") from None
        finally:
            os.close(parent)
        os.fchmod(fd, FOLDER_MODE)  # mkdir's mode went through the umask
        _give_to_invoking_user(fd)
        return cls(path, fd, made=True)

    def _check_private(self) -> None:
        info = os.fstat(self.fd)
        ours = {os.geteuid(), *(ids[0] for ids in [invoking_user_ids()] if ids)}
        if info.st_uid not in ours:
            raise UnsafeFolder(
                f"recording directory {self.path} belongs to {_user_name(info.st_uid)}, "
                "not to you: they could replace its files; give -l a new folder of your own")
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise UnsafeFolder(
                f"recording directory {self.path} is writable by others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}): they could plant links in it; "
                f"run chmod go-w on it, or give -l a new folder")

    def is_empty(self) -> bool:
        return not os.listdir(self.fd)

    def create(self, name: str) -> int:
        """A new file NAME (mode 0600, ours): never a link, never one that exists."""
        fd = os.open(name, _CREATE, FILE_MODE, dir_fd=self.fd)
        try:
            os.fchmod(fd, FILE_MODE)
            _give_to_invoking_user(fd)
        except OSError:
            os.close(fd)
            self.remove(name)
            raise
        return fd

    def write_new(self, name: str, data: bytes) -> None:
        """Create NAME holding DATA; on any failure no file is left."""
        fd = self.create(name)
        try:
            write_all(fd, data)
        except OSError:
            self.remove(name)
            raise
        finally:
            os.close(fd)

    def replace(self, name: str, data: bytes) -> None:
        """Replace NAME with DATA atomically: a reader sees the old or the new, whole."""
        temporary = f".{name}.tmp"
        # unlink never follows a link: whatever sits under our temporary name
        # (a stale one, or a link someone planted) goes, and nothing it points to.
        self.remove(temporary)
        self.write_new(temporary, data)
        try:
            os.replace(temporary, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except OSError:
            self.remove(temporary)
            raise

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.fd)

    def discard(self) -> None:
        """Close; a folder we made and left empty goes again (rmdir takes only an empty one)."""
        self.close()
        if self.made:
            with contextlib.suppress(OSError):
                os.rmdir(self.path)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class LineFile:
    """A file written one whole line at a time: a write that fails is undone, so
    the file always ends at its last whole line (a full disk leaves no torn line)."""

    def __init__(self, fd: int):
        self.fd = fd
        self.size = 0

    def write(self, line: bytes) -> None:
        try:
            write_all(self.fd, line)
        except OSError:
            with contextlib.suppress(OSError):  # EIO may refuse this too
                os.ftruncate(self.fd, self.size)
            raise
        self.size += len(line)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
