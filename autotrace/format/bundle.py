"""Reading bundles: a bundle from someone else is untrusted input. It is read
as a stream, inflated under a ratio cap; every member is checked before a
byte of it is written, and written line-checked into a private temporary
folder that is removed afterwards. `info` stops at the manifest."""


import contextlib
import dataclasses
import gzip
import os
import shutil
import tarfile
import unicodedata
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from autotrace.format.errors import RecordingError
from autotrace.format.limits import MAX_LINE_BYTES
from autotrace.format.manifest import MANIFEST
from autotrace.format.scratch import make_scratch
from autotrace.sanitise import shorten, spelled_out

LOG = "autotrace.log"

# ---------------------------------------------------------------- limits


@dataclasses.dataclass(frozen=True)
class BundleLimits:
    """What an untrusted bundle may hold."""

    member_bytes: int = 1024**3
    total_bytes: int = 2 * 1024**3
    members: int = 1000
    header_bytes: int = 1024 * 1024  # pax / GNU long-name headers
    manifest_bytes: int = 16 * 1024**2  # read whole into memory
    line_bytes: int = MAX_LINE_BYTES  # one line of any member
    depth: int = 8  # parts of a member's path, the bundle's folder included
    name_bytes: int = 1024  # a member's whole path
    part_bytes: int = 255  # one part of it (NAME_MAX)
    # A gzip stream may inflate about 1000:1; recordings of ordinary sessions
    # pack about 5:1, floods of one repeated line up to 600:1. Past the first
    # `ratio_after` bytes, unpacked bytes may be `ratio` times the packed ones.
    ratio: int = 200
    ratio_after: int = 32 * 1024**2


class _Refused(tarfile.TarError):
    pass


# tarfile.FilterError comes with the data filter (Python 3.11.4, 3.12).
_REFUSALS = (_Refused, getattr(tarfile, "FilterError", _Refused))

def _shown(name: str) -> str:
    """A member's name for a message: quoted, escaped, shortened in the middle."""
    return f"'{shorten(spelled_out(name))}'"


# ---------------------------------------------------------------- the stream


class _Counted:
    """A file's reads, counted: how many packed bytes were taken so far."""

    def __init__(self, file: IO[bytes]):
        self._file = file
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.count += len(data)
        return data


class _Inflated:
    """The bundle's tar stream, inflated as tarfile reads it and refused as
    soon as it outgrows the packed bytes read: a gzip bomb stops after
    `ratio_after` bytes, long before it fills the disk."""

    _MOST = 1024 * 1024  # per read: GzipFile.read(-1) would inflate it all at once

    def __init__(self, packed: IO[bytes], limits: BundleLimits):
        self._packed = _Counted(packed)
        # (typeshed asks for seek too: GzipFile uses it only to rewind, never here)
        self._gzip = gzip.GzipFile(fileobj=self._packed, mode="rb")  # type: ignore[call-overload]
        self._limits = limits
        self._count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._gzip.read(self._MOST if size < 0 else min(size, self._MOST))
        self._count += len(data)
        limits = self._limits
        if self._count > limits.ratio_after and self._count > limits.ratio * self._packed.count:
            raise _Refused(f"it unpacks to over {limits.ratio} times its packed size (a gzip "
                           "bomb?); if you trust it, unpack it with tar and give autotrace "
                           "the folder")
        return data


def _checked_tarinfo(limits: BundleLimits) -> type[tarfile.TarInfo]:
    class CheckedTarInfo(tarfile.TarInfo):
        # tarfile reads pax and GNU long-name headers whole into memory
        # before we see the member they describe; refuse huge ones first.
        # (_proc_member is tarfile's per-header hook, stable since Python 2.)
        def _proc_member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:  # type: ignore[override]
            if self.type in _META_TYPES and self.size > limits.header_bytes:
                raise _Refused(f"extended header of {self.size} bytes is over the limit "
                               f"of {limits.header_bytes}")
            return super()._proc_member(tar)  # type: ignore[misc]

    return CheckedTarInfo


_META_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
               tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)

# ---------------------------------------------------------------- member checks


def _kind_refused(member: tarfile.TarInfo) -> str | None:
    if member.issym():
        return f"it is a symbolic link (to {_shown(member.linkname)})"
    if member.islnk():
        return f"it is a hard link (to {_shown(member.linkname)})"
    if member.ischr() or member.isblk():
        return "it is a device node"
    if member.isfifo():
        return "it is a fifo"
    if member.issparse():
        return "it is a sparse file"
    if not (member.isreg() or member.isdir()):
        return "it is not a regular file or folder"
    return None


def _name_refused(name: str, parts: tuple[str, ...], limits: BundleLimits) -> str | None:
    if len(parts) > limits.depth:
        return f"its path is {len(parts)} levels deep (the limit is {limits.depth})"
    size = len(name.encode("utf-8", "surrogateescape"))
    if size > limits.name_bytes:
        return f"its name is {size} bytes long (the limit is {limits.name_bytes})"
    longest = max((len(part.encode("utf-8", "surrogateescape")) for part in parts), default=0)
    if longest > limits.part_bytes:
        return f"its name has a part of {longest} bytes (the limit is {limits.part_bytes})"
    return None


def _has_control(name: str) -> bool:
    # Categories C*: control, format (bidi overrides), surrogates, unassigned.
    return any(unicodedata.category(char)[0] == "C" for char in name)


class _MemberChecks:
    """The rules every member of an untrusted bundle must pass, in order."""

    def __init__(self, limits: BundleLimits):
        self.limits = limits
        self.top: str | None = None
        self.total = 0
        self.count = 0
        self.seen: set[str] = set()

    def why_refused(self, member: tarfile.TarInfo) -> str | None:
        name = member.name
        self.count += 1
        if self.count > self.limits.members:
            return f"it is one member too many (the limit is {self.limits.members})"
        if any("\udc80" <= char <= "\udcff" for char in name):
            return "its name is not UTF-8"  # tarfile keeps such bytes as lone surrogates
        if _has_control(name):
            return "its name holds a control character"
        if name.startswith("/") or PurePosixPath(name).is_absolute():
            return "it has an absolute path"
        parts = PurePosixPath(name).parts
        if ".." in parts:
            return "it climbs out of the bundle with '..'"
        refused = _kind_refused(member) or _name_refused(name, parts, self.limits)
        if refused:
            return refused
        if not parts:
            return None if member.isdir() else "it has no name"
        if len(parts) == 1 and not member.isdir():
            return "it is not inside the bundle's folder"
        if self.top is None:
            self.top = parts[0]
        elif parts[0] != self.top:
            return f"it is a second top-level folder (besides {_shown(self.top)})"
        normal = "/".join(parts)
        if normal in self.seen:
            return "it appears twice"
        self.seen.add(normal)
        return self._size_refused(member)

    def _size_refused(self, member: tarfile.TarInfo) -> str | None:
        most = self.limits.member_bytes
        if _is_manifest(member):
            most = min(most, self.limits.manifest_bytes)
        if member.size > most:
            return f"it is {member.size} bytes, over the limit of {most}"
        self.total += member.size
        if self.total > self.limits.total_bytes:
            return f"it brings the bundle over its size limit of {self.limits.total_bytes} bytes"
        return None


# ---------------------------------------------------------------- writing members


def _copy_lines(source: IO[bytes], out: IO[bytes], limit: int) -> str | None:
    """Copy SOURCE to OUT; the reason, as soon as a line is over LIMIT bytes.

    A chunk is never longer than the limit, so only a line that runs over a
    chunk's ends can be too long: a find, a count and an rfind per chunk."""
    line, run = 1, 0  # line number, and bytes of it so far
    while chunk := source.read(min(1024 * 1024, limit)):
        first = chunk.find(b"\n")
        if first >= 0:
            if run + first > limit:
                break
            line += chunk.count(b"\n")
            run = len(chunk) - chunk.rfind(b"\n") - 1
        else:
            run += len(chunk)
        if run > limit:
            break
        out.write(chunk)
    else:
        return None
    return f"its line {line} is over {limit} bytes (the limit for one line)"


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, into: Path,
                  limits: BundleLimits) -> str | None:
    """Write a checked member under INTO (ours, private); the reason its data
    is refused, if it is."""
    # Our own checks passed; tarfile's data filter, where this Python has
    # it, is a second opinion. Owners, modes and times from the archive are
    # not applied: the files stay ours and private.
    if hasattr(tarfile, "data_filter"):
        tarfile.data_filter(member, str(into))
    target = into.joinpath(*PurePosixPath(member.name).parts)
    if member.isdir():
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        return None
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    source = tar.extractfile(member)
    assert source is not None  # a regular file: the checks refused all else
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with source, open(os.open(target, flags, 0o600), "wb") as out:
        return _copy_lines(source, out, limits.line_bytes)


def _is_manifest(member: tarfile.TarInfo) -> bool:
    return PurePosixPath(member.name).parts[1:] == (MANIFEST,)


def _wanted(member: tarfile.TarInfo, manifest_only: bool) -> bool:
    top_folder = member.isdir() and len(PurePosixPath(member.name).parts) <= 1
    return not manifest_only or top_folder or _is_manifest(member)


def _unpack_members(bundle: Path, tar: tarfile.TarFile, into: Path, limits: BundleLimits,
                    manifest_only: bool) -> str | None:
    """Check and write the members; the bundle's folder name, if it has one."""
    checks = _MemberChecks(limits)
    for member in tar:
        reason = checks.why_refused(member)
        if not reason and _wanted(member, manifest_only):
            reason = _write_member(tar, member, into, limits)
        if reason:
            raise RecordingError(f"{bundle}: refused member {_shown(member.name)}: {reason}")
        if manifest_only and _is_manifest(member):
            break  # all that `info` needs: the rest is not even inflated
    return checks.top


def _unpack(bundle: Path, into: Path, limits: BundleLimits, manifest_only: bool) -> Path:
    try:
        with open(bundle, "rb") as packed:
            # Said plainly here: GzipFile would say "Not a gzipped file (b'...')".
            if packed.read(2) != b"\x1f\x8b":
                raise RecordingError(f"{bundle}: not a readable .tar.gz bundle: not a gzip file")
            packed.seek(0)
            stream = _Inflated(packed, limits)
            with tarfile.open(fileobj=stream, mode="r|",  # type: ignore[call-overload]
                              bufsize=256 * 1024, tarinfo=_checked_tarinfo(limits)) as tar:
                top = _unpack_members(bundle, tar, into, limits, manifest_only)
    except _REFUSALS as err:
        raise RecordingError(f"{bundle}: refused: {err}") from None
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise RecordingError(f"{bundle}: not a readable .tar.gz bundle: {err}") from None
    except OSError as err:
        raise RecordingError(f"{bundle}: cannot unpack: {err.strerror or err}") from None
    if top is None:
        raise RecordingError(f"{bundle}: the bundle is empty")
    return into / top


@contextlib.contextmanager
def open_bundle(bundle: Path, limits: BundleLimits | None = None,
                manifest_only: bool = False) -> Iterator[Path]:
    """Unpack an untrusted bundle into a private (0700) temporary folder,
    yield the recording folder inside it, and remove it all afterwards.

    With `manifest_only`, only the manifest is unpacked, and the bundle is
    read no further than it. Errors about files inside name them as
    BUNDLE/FOLDER/FILE rather than by a temporary path that is gone once the
    error is shown.
    """
    scratch = make_scratch()
    try:
        yield _unpack(bundle, scratch, limits or BundleLimits(), manifest_only)
    except RecordingError as err:
        raise RecordingError(str(err).replace(f"{scratch}/", f"{bundle}/")) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def resolve_recording(path: Path, limits: BundleLimits | None = None,
                      manifest_only: bool = False) -> Iterator[Path]:
    """A recording folder for a folder or a bundle (.tar.gz) path."""
    if path.is_dir():
        yield path
    elif path.is_file():
        with open_bundle(path, limits, manifest_only) as directory:
            yield directory
    else:
        raise RecordingError(f"{path}: no such recording folder or bundle")
