"""Bundles: a recording packed into one .tar.gz to share, and read back safely.

Three jobs, in this order below:

- redaction: mask regex matches in a pane's output while it streams past,
- packing: the recording's folder plus SUMMARY.txt into NAME.tar.gz,
- unpacking: a bundle from someone else is untrusted input. Every member is
  checked before a byte of it is written, into a private temporary folder
  that is removed afterwards.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import io
import itertools
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Any, Callable

from autotrace.recording import (
    MANIFEST,
    CastEvent,
    Recording,
    RecordingError,
    read_cast,
    read_cast_header,
)
from autotrace.timeline import write_info

MASK = "«redacted»"
SUMMARY = "SUMMARY.txt"
LOG = "autotrace.log"

Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


# ---------------------------------------------------------------- redaction


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise RecordingError(f"invalid --redact regex {pattern!r}: {err}") from None
    if regex.search(""):
        # It would "match" between every two characters and mask nothing useful.
        raise RecordingError(f"--redact regex {pattern!r} matches the empty string")
    return regex


def _line_at(text: str, pos: int) -> tuple[int, int]:
    """(start, end) of the content of the line holding `pos`, without its
    "\\n" or "\\r\\n"."""
    start = text.rfind("\n", 0, pos) + 1
    newline = text.find("\n", pos)
    end = len(text) if newline < 0 else newline
    if end > start and text[end - 1] == "\r":
        end -= 1
    return start, end


def _all_lines(text: str) -> Iterator[tuple[int, int]]:
    start = 0
    while start < len(text):
        line = _line_at(text, start)
        yield line
        start = text.find("\n", line[1]) + 1 or len(text)


def _line_matches(regex: re.Pattern[str], text: str, start: int, end: int,
                  pos: int = 0) -> list[tuple[int, int]]:
    """Non-empty matches in the line text[start:end] (from `pos` in it)."""
    return [(start + m.start(), start + m.end())
            for m in regex.finditer(text[start:end], pos) if m.end() > m.start()]


def _matches_per_line(regex: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for start, end in _all_lines(text):
        spans += _line_matches(regex, text, start, end)
    return spans


def _matches_by_search(regex: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    """What _matches_per_line finds, for a context-free regex, with one
    search of the whole text per match instead of one search per line.

    Why it is the same: such a regex matches inside a line exactly as it
    matches the same characters in the whole text, so the whole text's
    leftmost match from `pos` is the line's own next match, unless it is
    empty or runs past its line's end; then that line is searched alone.
    """
    spans: list[tuple[int, int]] = []
    pos = 0
    while pos < len(text):
        found = regex.search(text, pos)
        if found is None:
            break
        newline = text.find("\n", found.start())
        line_end = len(text) if newline < 0 else newline - (text[newline - 1] == "\r")
        if found.start() < found.end() <= line_end:
            spans.append(found.span())
            pos = found.end()
        else:
            start, end = _line_at(text, found.start())
            spans += _line_matches(regex, text, start, end, found.start() - start)
            pos = text.find("\n", end) + 1 or len(text)
    return spans


# Anchors and lookarounds: whether such a regex matches depends on the text
# around the match, so it cannot be searched for in many lines at once.
# Escapes and character classes ([^ ]) are tokens of their own, not anchors.
_REGEX_TOKEN = re.compile(r"\\.|\[\^?\]?(?:\\.|[^\]\\])*\]|\(\?<?[=!]|[$^]")
_ANCHORS = ("^", "$", "\\A", "\\Z")


def _is_contextual(pattern: str) -> bool:
    return any(token in _ANCHORS or token.startswith("(?")
               for token in _REGEX_TOKEN.findall(pattern))


class Redactor:
    """Masks every match of a set of regexes, each searched line by line.

    Searching per line keeps the meaning of `^`, `$` and `.` what a user
    expects of text output, and bounds the work to one line at a time.
    """

    def __init__(self, patterns: Sequence[str] = ()):
        self.patterns = list(patterns)
        self._regexes = [(_compile(p), _is_contextual(p)) for p in self.patterns]

    def __bool__(self) -> bool:
        return bool(self._regexes)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Sorted, merged (start, end) ranges of text to mask."""
        found: list[tuple[int, int]] = []
        for regex, contextual in self._regexes:
            found += (_matches_per_line if contextual else _matches_by_search)(regex, text)
        found.sort()
        merged: list[tuple[int, int]] = []
        for start, end in found:
            if merged and start < merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    def text(self, text: str) -> str:
        return _masked(text, 0, len(text), self.spans(text))


def _masked(text: str, a: int, b: int, spans: Sequence[tuple[int, int]]) -> str:
    """text[a:b] with the spans masked. A span that starts in here is shown
    as one MASK; the part of a span that started before `a` just vanishes
    (its MASK went out with the text where it began)."""
    out, pos = [], a
    # Spans are sorted and disjoint: only the one before `a` can reach into it.
    first = max(0, bisect.bisect_left(spans, (a, -1)) - 1)
    for start, end in itertools.islice(spans, first, None):
        if end <= a:
            continue
        if start >= b:
            break
        if start >= pos:
            out.append(text[pos:start])
        if start >= a:
            out.append(MASK)
        pos = max(pos, min(end, b))
    out.append(text[pos:b])
    return "".join(out)


class StreamRedactor:
    """Redacts one pane's events as they stream past, in bounded memory.

    A secret may arrive split over several "o" events (one pty read ends
    in the middle of it). So output is held back until a line is complete:
    in practice until an event ends with a newline, or the held text
    exceeds `window` characters, when everything up to the last newline
    goes out. The masked text is handed back to the events it came from,
    with their times, so a replay keeps its rhythm. Limits: a match never
    spans a line break, and in a line longer than `window` a match longer
    than `overlap` may be missed at a cut.
    """

    def __init__(self, redactor: Redactor, write: Callable[[CastEvent], None],
                 window: int = 64 * 1024, overlap: int = 4 * 1024):
        self._redactor = redactor
        self._write = write
        self._window = window
        self._overlap = overlap
        self._held: list[tuple[CastEvent, int]] = []  # event, offset of its text
        self._parts: list[str] = []
        self._length = 0

    def feed(self, event: CastEvent) -> None:
        if event.code == "m":
            event = CastEvent(event.t, "m", self._redactor.text(event.data))
        if event.code != "o":
            if self._length == 0:
                self._write(event)
            else:
                self._held.append((event, self._length))
            return
        self._held.append((event, self._length))
        self._parts.append(event.data)
        self._length += len(event.data)
        if event.data.endswith("\n"):
            text = self._text()
            self._release(text, len(text), self._redactor.spans(text))
        elif self._length > self._window:
            self._release_some()

    def close(self) -> None:
        text = self._text()
        self._release(text, len(text), self._redactor.spans(text))

    def _text(self) -> str:
        text = "".join(self._parts)
        self._parts = [text]
        return text

    def _release_some(self) -> None:
        text = self._text()
        newline = text.rfind("\n")
        if newline >= 0:
            cut = newline + 1
            self._release(text, cut, self._redactor.spans(text[:cut]))
            return
        # One very long line: cut it, but never through a match.
        spans = self._redactor.spans(text)
        cut = len(text) - self._overlap
        for start, end in spans:
            if start < cut < end:
                cut = start if start > 0 else end
        self._release(text, cut, [s for s in spans if s[1] <= cut])

    def _release(self, text: str, cut: int, spans: list[tuple[int, int]]) -> None:
        """Write out everything before `cut`; keep the rest, offsets rebased."""
        kept: list[tuple[CastEvent, int]] = []
        for event, start in self._held:
            if event.code != "o":
                if start <= cut:
                    self._write(event)
                else:
                    kept.append((event, start - cut))
                continue
            end = start + len(event.data)
            if start < cut:
                piece = _masked(text, start, min(end, cut), spans)
                if piece:
                    self._write(CastEvent(event.t, "o", piece))
            if end > cut:
                rest = event.data[max(cut - start, 0):]
                kept.append((CastEvent(event.t, "o", rest), max(start - cut, 0)))
        self._held = kept
        self._parts = [text[cut:]]
        self._length = len(text) - cut


def redact_manifest(manifest: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """A copy with commands and notes masked and the regexes listed.

    The list of regexes is masked too: `--redact hunter2` is a regex that
    matches its own text, and listing it would hand out the very secret.
    So no member of a bundle holds a match, the list included."""
    result = dict(manifest)
    result["panes"] = [
        {key: redactor.text(value) if key in ("command", "command_run", "note")
         and isinstance(value, str) else value for key, value in pane.items()}
        for pane in manifest["panes"]
    ]
    result["redactions"] = list(manifest.get("redactions") or []) + [
        redactor.text(pattern) for pattern in redactor.patterns]
    return result


def _cast_line(item: Any) -> bytes:
    return (json.dumps(item, ensure_ascii=False) + "\n").encode("utf-8")


def write_redacted_cast(source: Path, out: IO[bytes], redactor: Redactor,
                        counted: Callable[[int], None] = lambda n: None) -> None:
    """Copy an asciicast file to `out` with the header's command and title
    and every event redacted. Event codes we do not know are dropped: we
    cannot tell whether they carry a secret."""
    header = read_cast_header(source)
    for key in ("command", "title"):
        if isinstance(header.get(key), str):
            header[key] = redactor.text(header[key])
    out.write(_cast_line(header))

    def write(event: CastEvent) -> None:
        out.write(_cast_line([event.t, event.code, event.data]))

    stream = StreamRedactor(redactor, write)
    for event in read_cast(source):
        stream.feed(event)
        counted(len(event.data) + 24)  # about the line's size, for progress only
    stream.close()


# ---------------------------------------------------------------- packing


class PercentProgress:
    """"packing 42%" on stderr: redrawn in place on a terminal; elsewhere
    (a log) one line per 10 %, and only for recordings worth waiting for."""

    def __init__(self, label: str = "packing", stream: IO[str] | None = None,
                 large: int = 20 * 1024 * 1024):
        self._label = label
        self._stream = stream or sys.stderr
        self._large = large
        self._shown = -1

    def __call__(self, done: int, total: int) -> None:
        tty = self._stream.isatty()
        if not tty and total < self._large:
            return
        percent = min(100, done * 100 // total) if total else 100
        step = percent if tty else percent // 10 * 10
        if step == self._shown:
            return
        self._shown = step
        if tty:
            end = "\n" if step == 100 else ""
            self._stream.write(f"\rautotrace: {self._label} {step:3d}%{end}")
        else:
            self._stream.write(f"autotrace: {self._label} {step}%\n")
        self._stream.flush()


class _CountingReader:
    """A file's reads, reported to a progress callback as they happen."""

    def __init__(self, file: IO[bytes], counted: Callable[[int], None]):
        self._file = file
        self._counted = counted

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self._counted(len(data))
        return data


def _member(name: str, size: int, mtime: float, directory: bool = False) -> tarfile.TarInfo:
    # Owner names and ids of the packing machine are nobody else's business.
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.mtime = int(mtime)
    info.mode = 0o755 if directory else 0o644
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    tar.addfile(_member(name, len(data), time.time()), io.BytesIO(data))


def summary_text(manifest: dict[str, Any], name: str, bundle_file: str) -> str:
    out = io.StringIO()
    out.write(f"autotrace recording {name}\n")
    out.write(f"  replay:  autotrace replay {bundle_file}\n")
    out.write(f"  as text: autotrace cat {bundle_file}\n\n")
    write_info(Recording(Path(name), manifest), out)
    return out.getvalue()


def _output_path(out: Path | None, name: str) -> Path:
    if out is None:
        return Path.cwd() / f"{name}.tar.gz"
    out = out.expanduser()
    return out / f"{name}.tar.gz" if out.is_dir() else out


@contextlib.contextmanager
def _written_atomically(target: Path) -> Iterator[Path]:
    """A path to write to that becomes `target` only when writing succeeded."""
    partial = target.with_name(f".{target.name}.partial")
    try:
        yield partial
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


def _pack_files(recording: Recording) -> list[Path]:
    files = [recording.directory / pane["file"] for pane in recording.panes]
    for path in files:
        if not path.is_file():
            raise RecordingError(f"{path}: pane file is missing")
    log = recording.directory / LOG
    return files + ([log] if log.is_file() else [])


def pack(recording_dir: Path, out: Path | None = None, redact: Sequence[str] = (),
         progress: Progress | None = None) -> Path:
    """Pack a recording (a folder, or a bundle to redact again) into one
    .tar.gz with a single top-level folder named after the recording.

    Default output: ./NAME.tar.gz; `out` may be a file or a folder.
    Returns the bundle's path.
    """
    redactor = Redactor(redact)
    with resolve_recording(recording_dir) as directory:
        recording = Recording.open(directory)
        name = directory.resolve().name
        target = _output_path(out, name)
        files = _pack_files(recording)
        manifest = redact_manifest(recording.manifest, redactor) if redactor \
            else recording.manifest
        total = sum(path.stat().st_size for path in files)
        done = 0

        def counted(n: int) -> None:
            nonlocal done
            done = min(total, done + n)
            if progress:
                progress(done, total)

        manifest_json = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        summary = summary_text(manifest, name, target.name)
        try:
            with _written_atomically(target) as partial, \
                    tarfile.open(partial, "w:gz", compresslevel=6) as tar:
                # Manifest first: a reader streaming the bundle learns at once what it holds.
                tar.addfile(_member(name, 0, time.time(), directory=True))
                _add_bytes(tar, f"{name}/{MANIFEST}", manifest_json.encode("utf-8"))
                _add_bytes(tar, f"{name}/{SUMMARY}", summary.encode("utf-8"))
                for path in files:
                    _add_file(tar, f"{name}/{path.name}", path, redactor, counted)
        except OSError as err:
            raise RecordingError(f"cannot write {target}: {err.strerror or err}") from None
        if progress:
            progress(total, total)
    return target


def _add_file(tar: tarfile.TarFile, name: str, path: Path, redactor: Redactor,
              counted: Callable[[int], None]) -> None:
    mtime = path.stat().st_mtime
    if not redactor:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size  # a live recording may still grow
            tar.addfile(_member(name, size, mtime), _CountingReader(f, counted))
        return
    # The redacted copy is staged in an anonymous file: the tar header
    # needs its size before its data.
    with tempfile.TemporaryFile() as staged:
        if path.name == LOG:
            with open(path, encoding="utf-8", errors="replace") as log:
                for line in log:
                    staged.write(redactor.text(line).encode("utf-8"))
                    counted(len(line))
        else:
            write_redacted_cast(path, staged, redactor, counted)
        size = staged.tell()
        staged.seek(0)
        tar.addfile(_member(name, size, mtime), staged)


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
