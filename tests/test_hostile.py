"""Hostile bundles and recordings, through the real CLI.

Every case must end in one clear line naming what was refused, a non-zero
exit, no traceback, and nothing written anywhere but a private temporary
folder that is gone afterwards. The bundles are built here with tarfile.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from autotrace.format.bundle import open_bundle
from autotrace.format.errors import RecordingError
from autotrace.format.recording import PaneRecord, RecordingWriter, SessionRecord, prepare_directory

Entry = tuple[tarfile.TarInfo, bytes]


def good_recording(directory: Path) -> dict[str, bytes]:
    """The files of a small valid recording, written by the real writer."""
    session = SessionRecord(cols=80, rows=24, started_unix=0.0)
    writer = RecordingWriter(prepare_directory(directory), session)
    pane = writer.add_pane(PaneRecord(0, "main", "echo hi", "echo hi", 80, 24))
    for i in range(50):
        pane.output(i / 10, f"line {i}\r\n")
    writer.close(5.0)
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def regular(name: str, data: bytes) -> Entry:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> Entry:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    if kind == tarfile.CHRTYPE:
        info.devmajor, info.devminor = 1, 3  # /dev/null's numbers
    return info, b""


def tar_bytes(entries: list[Entry]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return raw.getvalue()


class Case:
    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.files = good_recording(tmp_path / "source")
        self.bundle = tmp_path / "bundle.tar.gz"

    def entries(self, **replace: bytes) -> list[Entry]:
        files = {**self.files, **replace}
        return [regular(f"rec/{name}", data) for name, data in files.items()]

    def write(self, entries: list[Entry]) -> None:
        self.bundle.write_bytes(gzip.compress(tar_bytes(entries)))


# Each case: (name, how to build the bundle, commands to try, what the error says)
Build = Callable[[Case], None]


def absolute(case: Case) -> None:
    case.write(case.entries() + [regular(str(case.tmp / "abs-escape"), b"pwned")])


def dotdot(case: Case) -> None:
    case.write([regular("rec/../../../dotdot-escape", b"pwned"), *case.entries()])


def symlink_out(case: Case) -> None:
    (case.tmp / "outside").mkdir()
    case.write([special("rec/link", tarfile.SYMTYPE, str(case.tmp / "outside")),
                regular("rec/link/evil", b"pwned"), *case.entries()])


def symlink_read(case: Case) -> None:
    entries = [e for e in case.entries() if e[0].name != "rec/pane-0.cast"]
    case.write([*entries, special("rec/pane-0.cast", tarfile.SYMTYPE, "/etc/passwd")])


def hardlink(case: Case) -> None:
    entries = [e for e in case.entries() if e[0].name != "rec/pane-0.cast"]
    case.write([*entries, special("rec/pane-0.cast", tarfile.LNKTYPE, "/etc/passwd")])


def device(case: Case) -> None:
    case.write([*case.entries(), special("rec/null", tarfile.CHRTYPE)])


def fifo(case: Case) -> None:
    case.write([*case.entries(), special("rec/pipe", tarfile.FIFOTYPE)])


def oversize(case: Case) -> None:
    # Only the header: it claims 2 GiB, which must be refused before any
    # byte of it is read (there are none).
    huge = tarfile.TarInfo("rec/pane-0.cast")
    huge.size = 2 * 1024**3
    raw = b"".join(info.tobuf(tarfile.GNU_FORMAT) + data + b"\0" * (-len(data) % 512)
                   for info, data in case.entries() if info.name != "rec/pane-0.cast")
    case.bundle.write_bytes(gzip.compress(raw + huge.tobuf(tarfile.GNU_FORMAT)))


def huge_pax_header(case: Case) -> None:
    pax = tarfile.TarInfo("rec/pane-0.cast")
    pax.type = tarfile.XHDTYPE
    pax.size = 2 * 1024**3
    case.bundle.write_bytes(gzip.compress(pax.tobuf(tarfile.GNU_FORMAT)))


def two_folders(case: Case) -> None:
    case.write([*case.entries(), regular("other/manifest.json", b"{}")])


def loose_file(case: Case) -> None:
    case.write([regular("manifest.json", case.files["manifest.json"])])


def not_gzip(case: Case) -> None:
    case.bundle.write_bytes(b"this is not a bundle\n" * 20)


def truncated(case: Case) -> None:
    case.write(case.entries())
    data = case.bundle.read_bytes()
    case.bundle.write_bytes(data[: len(data) // 2])


def garbled(case: Case) -> None:
    case.write(case.entries())
    data = bytearray(case.bundle.read_bytes())
    data[20:60] = b"\xff" * 40
    case.bundle.write_bytes(bytes(data))


def empty(case: Case) -> None:
    case.write([])


def bad_manifest(case: Case) -> None:
    case.write(case.entries(**{"manifest.json": b'{"format": "autotrace-recording",\n  oops'}))


def pane_file_escape(case: Case) -> None:
    manifest = json.loads(case.files["manifest.json"])
    manifest["panes"][0]["file"] = "../../etc/passwd"
    case.write(case.entries(**{"manifest.json": json.dumps(manifest).encode()}))


def bad_cast_line(case: Case) -> None:
    lines = case.files["pane-0.cast"].splitlines(keepends=True)
    lines[2] = b'[0.1, "o", "unterminated\n'
    case.write(case.entries(**{"pane-0.cast": b"".join(lines)}))


BOTH = ("info", "cat")
# info reads a bundle only up to its manifest: members after it never reach it.
CAT = ("cat",)
CASES: list[tuple[Build, tuple[str, ...], str]] = [
    (absolute, CAT, "refused member '{tmp}/abs-escape': it has an absolute path"),
    (dotdot, BOTH, "refused member 'rec/../../../dotdot-escape': it climbs out of the bundle"),
    (symlink_out, BOTH, "refused member 'rec/link': it is a symbolic link (to '{tmp}/outside')"),
    (symlink_read, CAT, "refused member 'rec/pane-0.cast': it is a symbolic link"),
    (hardlink, CAT, "refused member 'rec/pane-0.cast': it is a hard link (to '/etc/passwd')"),
    (device, CAT, "refused member 'rec/null': it is a device node"),
    (fifo, CAT, "refused member 'rec/pipe': it is a fifo"),
    (oversize, CAT, "refused member 'rec/pane-0.cast': it is 2147483648 bytes, over the "
                    "limit of 1073741824"),
    (huge_pax_header, BOTH, "refused: extended header of 2147483648 bytes is over the limit"),
    (two_folders, CAT, "refused member 'other/manifest.json': it is a second top-level folder"),
    (loose_file, BOTH, "refused member 'manifest.json': it is not inside the bundle's folder"),
    (not_gzip, BOTH, "not a readable .tar.gz bundle: not a gzip file"),
    (truncated, BOTH, "not a readable .tar.gz bundle"),
    (garbled, BOTH, "not a readable .tar.gz bundle"),
    (empty, BOTH, "the bundle is empty"),
    (bad_manifest, BOTH, "{bundle}/rec/manifest.json:2: corrupt manifest"),
    (pane_file_escape, BOTH, "{bundle}/rec/manifest.json: pane file name '../../etc/passwd' "
                             "is not allowed"),
    (bad_cast_line, ("cat",), "{bundle}/rec/pane-0.cast:3: corrupt event"),
]


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("build, commands, message", CASES, ids=[c[0].__name__ for c in CASES])
def test_hostile_bundle_is_refused_in_one_line(tmp_path: Path, build: Build,
                                               commands: tuple[str, ...], message: str) -> None:
    case = Case(tmp_path)
    build(case)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    before = tree(tmp_path)
    for command in commands:
        result = subprocess.run(
            [sys.executable, "-m", "autotrace", command, str(case.bundle)],
            cwd=tmp_path, env={**os.environ, "TMPDIR": str(scratch)},
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"autotrace: {case.bundle}")
        expected = message.format(tmp=tmp_path, bundle=case.bundle)
        assert expected in result.stderr, result.stderr
        assert tree(tmp_path) == before, "a file was written outside the private folder"
        assert not (Path("/") / "dotdot-escape").exists()


def test_corrupt_cast_line_in_a_folder_names_file_and_line(tmp_path: Path) -> None:
    # The same rule holds without a bundle: cat names the file and the line.
    case = Case(tmp_path)
    source = tmp_path / "source"
    lines = case.files["pane-0.cast"].splitlines(keepends=True)
    lines[5] = b"not json at all\n"
    (source / "pane-0.cast").write_bytes(b"".join(lines))
    result = subprocess.run([sys.executable, "-m", "autotrace", "cat", str(source)],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert result.stderr == (f"autotrace: {source}/pane-0.cast:6: corrupt event: "
                             "Expecting value\n")


def test_refusal_stops_before_anything_is_written(tmp_path: Path) -> None:
    case = Case(tmp_path)
    symlink_out(case)
    with pytest.raises(RecordingError, match="symbolic link"), \
            open_bundle(case.bundle) as directory:
        pytest.fail(f"opened {directory}")
    assert list((tmp_path / "outside").iterdir()) == []


# ---------------------------------------------------------------- text that reaches the terminal

HOSTILE_TEXT = "\x1b]52;c;cHduZWQ=\x07\x1b]0;PWNED\x07\x1bP+q\x1b\\\x9b31m\x90evil\x9c\u202e"


def test_info_and_cat_print_no_control_characters_from_a_recording(tmp_path: Path) -> None:
    # `info` shows strings from the manifest and `cat` text from the panes: a
    # recording from someone else must not reach the user's terminal raw.
    directory = tmp_path / "rec"
    session = SessionRecord(cols=80, rows=24, started_unix=0.0)
    writer = RecordingWriter(prepare_directory(directory), session)
    pane = writer.add_pane(PaneRecord(0, "main", f"echo {HOSTILE_TEXT}",
                                      f"echo {HOSTILE_TEXT}", 80, 24))
    pane.output(0.5, f"visible {HOSTILE_TEXT} text\r\n")
    writer.close(1.0)
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["host"] = HOSTILE_TEXT
    (directory / "manifest.json").write_text(json.dumps(manifest))
    for command in ("info", "cat"):
        result = subprocess.run([sys.executable, "-m", "autotrace", command, str(directory)],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert "visible" in result.stdout or command == "info"
        shown = result.stdout.replace("\n", "")
        assert shown.isprintable(), f"{command}: {shown!r}"
        assert "\u202e" not in shown


def test_absurd_pane_sizes_are_clamped_not_allocated(tmp_path: Path) -> None:
    from autotrace.events import MAX_SIDE
    from autotrace.format.tracks import PaneTrack

    directory = tmp_path / "rec"
    good_recording(directory)
    cast = directory / "pane-0.cast"
    lines = cast.read_text().splitlines()
    header = json.loads(lines[0])
    header["width"], header["height"] = 30000, 30000
    lines[0] = json.dumps(header)
    lines.insert(3, json.dumps([0.15, "r", "50000x50000"]))
    cast.write_text("\n".join(lines) + "\n")
    track = PaneTrack(cast)
    assert (track.width, track.height) == (MAX_SIDE, MAX_SIDE)
    assert track.size_at(10.0) == (MAX_SIDE, MAX_SIDE)
    track.close()
    result = subprocess.run([sys.executable, "-m", "autotrace", "cat", str(directory)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "line 49" in result.stdout
