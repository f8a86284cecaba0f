"""Packing: a recording's folder plus SUMMARY.txt into one NAME.tar.gz to share."""


import contextlib
import io
import json
import os
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Callable

from autotrace.export.findings import pane_infos, recording_findings, write_findings_summary
from autotrace.export.text import write_info
from autotrace.export.visible import VisibleCheck
from autotrace.findings.model import Finding
from autotrace.format.bundle import LOG, resolve_recording
from autotrace.format.errors import RecordingError, decode_json
from autotrace.format.manifest import FINDINGS, MANIFEST
from autotrace.format.opening import open_for_reading
from autotrace.format.reader import Recording, read_cast_header
from autotrace.format.redact import (
    Redactor,
    redact_finding,
    redact_manifest,
    write_redacted_cast,
)

SUMMARY = "SUMMARY.txt"

Progress = Callable[[int, int], None]  # (bytes done, bytes in all)

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


def summary_text(manifest: dict[str, Any], name: str, bundle_file: str,
                 findings: Sequence[Finding] = ()) -> str:
    out = io.StringIO()
    out.write(f"autotrace recording {name}\n")
    out.write(f"  replay:  autotrace replay {bundle_file}\n")
    out.write(f"  as text: autotrace cat {bundle_file}\n\n")
    write_info(Recording(Path(name), manifest), out)
    write_findings_summary(findings, out, pane_infos(manifest))
    return out.getvalue()


def _output_path(out: Path | None, name: str) -> Path:
    if out is None:
        return Path.cwd() / f"{name}.tar.gz"
    out = out.expanduser()
    return out / f"{name}.tar.gz" if out.is_dir() else out


def _free_target(out: Path | None, name: str, force: bool) -> Path:
    target = _output_path(out, name)
    if os.path.lexists(target) and not force:
        raise RecordingError(f"{target} exists already; use --force to replace it")
    return target


def bundle_target(recording_dir: Path, out: Path | None = None, redact: Sequence[str] = (),
                  force: bool = False) -> Path:
    """Where `pack` would write, refused at once if a file is there and not
    FORCE: a caller with costly work before packing (the player page) asks first."""
    with resolve_recording(recording_dir, manifest_only=True) as directory:
        return _free_target(out, Redactor(redact).name(directory.resolve().name), force)


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
    for extra in (FINDINGS, LOG):  # after the panes: members keep the panes' positions
        path = recording.directory / extra
        files += [path] if os.path.lexists(path) else []
    for path in files:
        open_for_reading(path).close()  # a link, fifo or device is refused here
    return files


def pack(recording_dir: Path, out: Path | None = None, redact: Sequence[str] = (),
         progress: Progress | None = None, force: bool = False,
         extra: dict[str, bytes] | None = None) -> Path:
    """Pack a recording (a folder, or a bundle to redact again) into one
    .tar.gz with a single top-level folder named after the recording.

    Default output: ./NAME.tar.gz; `out` may be a file or a folder. A file
    there already is replaced only with FORCE: it may be a redacted bundle.
    `extra` files (the player's index.html) go in after SUMMARY.txt, as given.
    Returns the bundle's path.
    """
    redactor = Redactor(redact)
    with resolve_recording(recording_dir) as directory:
        recording = Recording.open(directory)
        # The folder's name is in every member path: it may hold the secret too.
        name = redactor.name(directory.resolve().name)
        target = _free_target(out, name, force)
        files = _pack_files(recording)
        manifest = redact_manifest(recording.manifest, redactor) if redactor \
            else recording.manifest
        members = [pane["file"] for pane in manifest["panes"]]
        members += [path.name for path in files[len(members):]]  # findings.jsonl, the log
        total = sum(path.lstat().st_size for path in files)
        done = 0

        def counted(n: int) -> None:
            nonlocal done
            done = min(total, done + n)
            if progress:
                progress(done, total)

        manifest_json = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        summary = redactor.text(summary_text(manifest, name, target.name,
                                             recording_findings(recording)))
        try:
            with _written_atomically(target) as partial, \
                    tarfile.open(partial, "w:gz", compresslevel=6) as tar:
                # Manifest first: a reader streaming the bundle learns at once what it holds.
                tar.addfile(_member(name, 0, time.time(), directory=True))
                _add_bytes(tar, f"{name}/{MANIFEST}", manifest_json.encode("utf-8"))
                _add_bytes(tar, f"{name}/{SUMMARY}", summary.encode("utf-8"))
                for extra_name, data in (extra or {}).items():
                    _add_bytes(tar, f"{name}/{extra_name}", data)
                for position, (path, member) in enumerate(zip(files, members)):
                    _add_file(tar, f"{name}/{member}", path, redactor, counted,
                              f"pane {position} ({member})")  # never the name it had
        except OSError as err:
            raise RecordingError(f"cannot write {target}: {err.strerror or err}") from None
        if progress:
            progress(total, total)
    return target


def _add_file(tar: tarfile.TarFile, name: str, path: Path, redactor: Redactor,
              counted: Callable[[int], None], label: str) -> None:
    mtime = path.lstat().st_mtime
    if not redactor:
        with open_for_reading(path) as f:
            size = os.fstat(f.fileno()).st_size  # a live recording may still grow
            tar.addfile(_member(name, size, mtime), _CountingReader(f, counted))
        return
    # The redacted copy is staged in an anonymous file: the tar header
    # needs its size before its data.
    with tempfile.TemporaryFile() as staged:
        if path.name == FINDINGS:
            with open_for_reading(path) as findings:
                for number, raw in enumerate(findings, start=1):
                    counted(len(raw))
                    if not raw.endswith(b"\n"):
                        break  # torn: not a finding
                    kept = redact_finding(decode_json(raw, f"{path}:{number}", "finding"),
                                          redactor)
                    if kept is not None:
                        staged.write(json.dumps(kept, ensure_ascii=False).encode() + b"\n")
        elif path.name == LOG:
            with io.TextIOWrapper(open_for_reading(path), encoding="utf-8",
                                  errors="replace") as log:
                for line in log:
                    staged.write(redactor.text(line).encode("utf-8"))
                    counted(len(line))
        else:
            # Checked as it is written: what a viewer would see of it, replayed.
            header = read_cast_header(path)
            check = VisibleCheck(redactor, label, header.get("width"), header.get("height"))
            write_redacted_cast(path, staged, redactor, counted, check.event)
            check.close()
        size = staged.tell()
        staged.seek(0)
        tar.addfile(_member(name, size, mtime), staged)

