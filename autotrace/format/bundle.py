"""Reading bundles: a bundle from someone else is untrusted input. Every member
is checked before a byte of it is written, into a private temporary folder
that is removed afterwards."""


import contextlib
import dataclasses
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from autotrace.format.recording import (
    RecordingError,
)

LOG = "autotrace.log"

# ---------------------------------------------------------------- unpacking


@dataclasses.dataclass(frozen=True)
class BundleLimits:
    """What an untrusted bundle may hold."""

    member_bytes: int = 1024**3
    total_bytes: int = 2 * 1024**3
    members: int = 1000
    header_bytes: int = 1024 * 1024  # pax / GNU long-name headers


class _Refused(tarfile.TarError):
    pass


# tarfile.FilterError comes with the data filter (Python 3.11.4, 3.12).
_REFUSALS = (_Refused, getattr(tarfile, "FilterError", _Refused))


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


def _kind_refused(member: tarfile.TarInfo) -> str | None:
    if member.issym():
        return f"is a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"is a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "is a device node"
    if member.isfifo():
        return "is a fifo"
    if member.issparse():
        return "is a sparse file"
    if not (member.isreg() or member.isdir()):
        return "is not a regular file or folder"
    return None


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
            return f"is one member too many (the limit is {self.limits.members})"
        if name.startswith("/") or PurePosixPath(name).is_absolute():
            return "has an absolute path"
        parts = PurePosixPath(name).parts
        if ".." in parts:
            return "climbs out of the bundle with '..'"
        kind = _kind_refused(member)
        if kind:
            return kind
        if not parts:
            return None if member.isdir() else "has no name"
        if len(parts) == 1 and not member.isdir():
            return "is not inside the bundle's folder"
        if self.top is None:
            self.top = parts[0]
        elif parts[0] != self.top:
            return f"is a second top-level folder (besides {self.top!r})"
        normal = "/".join(parts)
        if normal in self.seen:
            return "appears twice"
        self.seen.add(normal)
        if member.size > self.limits.member_bytes:
            return f"is {member.size} bytes, over the limit of {self.limits.member_bytes}"
        self.total += member.size
        if self.total > self.limits.total_bytes:
            return f"brings the bundle over its size limit of {self.limits.total_bytes} bytes"
        return None


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, into: Path) -> None:
    # Our own checks already passed; tarfile's data filter, where this
    # Python has it, is a second opinion. Attributes from the archive
    # (owner, mode, times) are not applied: the files stay ours and private.
    if hasattr(tarfile, "data_filter"):
        tar.extract(member, into, set_attrs=False, filter="data")
    else:
        tar.extract(member, into, set_attrs=False)


def _unpack(bundle: Path, into: Path, limits: BundleLimits) -> Path:
    checks = _MemberChecks(limits)
    try:
        with tarfile.open(bundle, "r|gz", tarinfo=_checked_tarinfo(limits)) as tar:
            for member in tar:
                reason = checks.why_refused(member)
                if reason:
                    raise RecordingError(f"{bundle}: refused member {member.name!r}: it {reason}")
                _extract(tar, member, into)
    except _REFUSALS as err:
        raise RecordingError(f"{bundle}: refused: {err}") from None
    except (tarfile.TarError, EOFError, zlib.error) as err:
        raise RecordingError(f"{bundle}: not a readable .tar.gz bundle: {err}") from None
    except OSError as err:
        raise RecordingError(f"{bundle}: cannot unpack: {err.strerror or err}") from None
    if checks.top is None:
        raise RecordingError(f"{bundle}: the bundle is empty")
    return into / checks.top


@contextlib.contextmanager
def open_bundle(bundle: Path, limits: BundleLimits | None = None) -> Iterator[Path]:
    """Unpack an untrusted bundle into a private (0700) temporary folder,
    yield the recording folder inside it, and remove it all afterwards.

    Errors about files inside name them as BUNDLE/FOLDER/FILE rather than
    by a temporary path that is gone once the error is shown.
    """
    scratch = Path(tempfile.mkdtemp(prefix="autotrace-bundle-"))
    try:
        yield _unpack(bundle, scratch, limits or BundleLimits())
    except RecordingError as err:
        raise RecordingError(str(err).replace(f"{scratch}/", f"{bundle}/")) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def resolve_recording(path: Path, limits: BundleLimits | None = None) -> Iterator[Path]:
    """A recording folder for a folder or a bundle (.tar.gz) path."""
    if path.is_dir():
        yield path
    elif path.is_file():
        with open_bundle(path, limits) as directory:
            yield directory
    else:
        raise RecordingError(f"{path}: no such recording folder or bundle")
