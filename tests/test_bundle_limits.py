"""Bundles cost what they hold: a gzip bomb, a huge line, a deep path, a run
killed while unpacking, and `info` that needs only the manifest.

The bundles are built here with tarfile, streaming (a 200 MB pane file is
never held in memory), and read through the real CLI. Memory is the child's
own peak RSS from wait4; disk use is bounded by running the CLI with its
temporary folder on a small tmpfs in a private mount namespace.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import tarfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from autotrace.format.bundle import BundleLimits, open_bundle
from autotrace.format.errors import RecordingError
from autotrace.format.limits import MAX_LINE_BYTES
from autotrace.format.recording import PaneRecord, RecordingWriter, SessionRecord, prepare_directory
from tests.conftest import AUTOTRACE, REPO, assert_one_line_error, autotrace_env, wait_for

MiB = 1024 * 1024
SCRATCH_TMPFS = "48m"  # what a bomb may write before it is refused, and then some
RSS_BOUND = 150 * MiB  # a Python with pyte and psutil loaded is about 40 MB
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs (needs root)")


class Repeated(io.RawIOBase):
    """SIZE bytes of PATTERN over and over, made as they are read (a bomb's payload)."""

    CHUNK = 64 * 1024

    def __init__(self, size: int, pattern: bytes = b"a"):
        self._left = size
        self._period = len(pattern)
        self._patterns = pattern * (self.CHUNK // len(pattern) + 2)  # any chunk, any phase
        self._at = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = min(self.CHUNK, self._left if n < 0 else min(n, self._left))
        start = self._at % self._period
        self._left -= n
        self._at += n
        return self._patterns[start:start + n]


EVENT_LINE = b'[0.5, "o", "yes\\r\\n"]\n'


def recording_files(directory: Path, lines: int = 50) -> dict[str, bytes]:
    """A small valid recording written by the real writer, as {name: bytes}."""
    session = SessionRecord(cols=80, rows=24, started_unix=0.0)
    writer = RecordingWriter(prepare_directory(directory), session)
    pane = writer.add_pane(PaneRecord(0, "main", "echo hi", "echo hi", 80, 24))
    for i in range(lines):
        pane.output(i / 10, f"line {i}\r\n")
    writer.close(5.0)
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def write_bundle(bundle: Path, members: Sequence[tuple[str, int, io.RawIOBase | None]],
                 fmt: int = tarfile.PAX_FORMAT) -> Path:
    """A .tar.gz of (name, size, data) members, data None for a folder."""
    with tarfile.open(bundle, "w:gz", compresslevel=6, format=fmt) as tar:
        for name, size, data in members:
            info = tarfile.TarInfo(name)
            info.pax_headers = {"path": name}  # the name whole, even with a NUL in it
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            else:
                info.size = size
            tar.addfile(info, data)
    return bundle


def bundle_of(bundle: Path, files: dict[str, bytes], *extra: tuple[str, int, io.RawIOBase],
              pane: tuple[int, io.RawIOBase] | None = None) -> Path:
    """rec/ with manifest first (as `pack` writes it), the pane file (or a
    stand-in of the given size and data), then extra members."""
    members: list[tuple[str, int, io.RawIOBase | None]] = [("rec", 0, None)]
    members.append(("rec/manifest.json", len(files["manifest.json"]),
                    io.BytesIO(files["manifest.json"])))
    size, data = pane or (len(files["pane-0.cast"]), io.BytesIO(files["pane-0.cast"]))
    members.append(("rec/pane-0.cast", size, data))
    members.extend(extra)
    return write_bundle(bundle, members)


def tmpfs_prefix(mountpoint: Path, size: str = SCRATCH_TMPFS) -> list[str]:
    """Run the command with a SIZE tmpfs on MOUNTPOINT, in a private mount
    namespace (it goes when the command ends)."""
    return ["unshare", "-m", "sh", "-c",
            f'mount -t tmpfs -o size={size},mode=1777 tmpfs "$0" && exec "$@"', str(mountpoint)]


def run_measured(args: Sequence[str | os.PathLike[str]], tmpdir: Path,
                 prefix: Sequence[str] = (),
                 timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], int, float]:
    """The real autotrace with TMPDIR=tmpdir: (result, peak RSS in bytes, seconds).

    The child is reaped with wait4, whose rusage is that child's alone
    (RUSAGE_CHILDREN would mix in every earlier child of the test run).
    """
    out_dir = tmpdir.parent
    with open(out_dir / "stdout", "w+") as out, open(out_dir / "stderr", "w+") as err:
        start = time.monotonic()
        proc = subprocess.Popen([*prefix, *AUTOTRACE, *map(str, args)], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, cwd=REPO,
                                env=autotrace_env(TMPDIR=str(tmpdir)))
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        elapsed = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())
    return result, usage.ru_maxrss * 1024, elapsed


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return recording_files(tmp_path_factory.mktemp("src") / "rec")


BOMB_REFUSALS = {
    # One repeated byte, as in the issue: one endless line, over the line limit first.
    b"a": f"refused member 'rec/pane-0.cast': its line 1 is over {MAX_LINE_BYTES} bytes",
    # One repeated event: short lines, so only the ratio cap can stop it.
    EVENT_LINE: "refused: it unpacks to over 200 times its packed size (a gzip bomb?); "
                "if you trust it, unpack it with tar",
}


@pytest.fixture(scope="module", params=list(BOMB_REFUSALS), ids=["one-byte", "event-lines"])
def bomb(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         files: dict[str, bytes]) -> tuple[Path, str]:
    """A valid manifest, then a pane file of 200 MB packed into about 200 KB,
    and how its refusal begins."""
    path = bundle_of(tmp_path_factory.mktemp("bomb") / "bomb.tar.gz", files,
                     pane=(200 * MiB, Repeated(200 * MiB, request.param)))
    assert path.stat().st_size < 1 * MiB
    return path, BOMB_REFUSALS[request.param]


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    path = tmp_path / "scratch"
    path.mkdir()
    return path


# ---------------------------------------------------------------- item 5: gzip bomb


@needs_root
def test_gzip_bomb_is_refused_before_it_fills_the_disk(bomb: tuple[Path, str],
                                                       scratch: Path) -> None:
    # The temporary folder is a 48 MB tmpfs: unpacking the bomb whole would
    # end in "No space left on device" instead of the refusal.
    bundle, refusal = bomb
    result, rss, _ = run_measured(["cat", bundle], scratch, prefix=tmpfs_prefix(scratch))
    line = assert_one_line_error(result)
    assert line.startswith(f"autotrace: {bundle}: {refusal}"), line
    assert rss < RSS_BOUND, f"peak RSS {rss / MiB:.0f} MB"


def test_ratio_cap_lets_ordinary_bundles_through(tmp_path: Path) -> None:
    # A real session's text compresses about 5:1: far from the cap, even when
    # it is big enough for the cap to be checked.
    directory = tmp_path / "rec"
    session = SessionRecord(cols=80, rows=24, started_unix=0.0)
    writer = RecordingWriter(prepare_directory(directory), session)
    pane = writer.add_pane(PaneRecord(0, "main", "seq", "seq", 80, 24))
    for i in range(0, 400_000, 1000):
        pane.output(i / 1e5, "".join(f"{n}\r\n" for n in range(i, i + 1000)))
    writer.close(5.0)
    files = {p.name: p.read_bytes() for p in directory.iterdir()}
    bundle = bundle_of(tmp_path / "b.tar.gz", files)
    limits = BundleLimits(ratio_after=256 * 1024)
    assert len(files["pane-0.cast"]) > 8 * limits.ratio_after
    with open_bundle(bundle, limits) as unpacked:
        assert (unpacked / "pane-0.cast").read_bytes() == files["pane-0.cast"]


def test_ratio_is_checked_after_the_first_megabytes(tmp_path: Path,
                                                   files: dict[str, bytes]) -> None:
    # A small, very repetitive recording is fine (a flood of `yes` packs 600:1);
    # past `ratio_after` bytes unpacked, the same ratio is refused.
    bundle = bundle_of(tmp_path / "b.tar.gz", files,
                       pane=(16 * MiB, Repeated(16 * MiB, EVENT_LINE)))
    with open_bundle(bundle) as unpacked:
        assert (unpacked / "pane-0.cast").stat().st_size == 16 * MiB
    with pytest.raises(RecordingError, match=r"unpacks to over 200 times its packed size"), \
            open_bundle(bundle, BundleLimits(ratio_after=1 * MiB)) as unpacked:
        pytest.fail(f"opened {unpacked}")


# ---------------------------------------------------------------- item 5: info needs the manifest


@needs_root
def test_info_reads_only_the_manifest(bomb: tuple[Path, str], scratch: Path) -> None:
    # The bomb's pane file comes after the manifest: info never unpacks it.
    bundle, _ = bomb
    result, rss, _ = run_measured(["info", bundle], scratch, prefix=tmpfs_prefix(scratch))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"recording:  {bundle}\n")
    assert "command:  echo hi" in result.stdout
    assert rss < RSS_BOUND


def test_info_stops_at_the_manifest_of_a_cut_bundle(tmp_path: Path,
                                                     files: dict[str, bytes]) -> None:
    # What follows the manifest is not even decompressed: a bundle cut short
    # (a download stopped half way) still has its summary.
    noise = os.urandom(2 * MiB)  # does not compress: the cut lands inside it
    bundle = bundle_of(tmp_path / "b.tar.gz", files, pane=(len(noise), io.BytesIO(noise)))
    data = bundle.read_bytes()
    bundle.write_bytes(data[: len(data) // 2])
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result, _, _ = run_measured(["info", bundle], scratch)
    assert result.returncode == 0, result.stderr
    assert "command:  echo hi" in result.stdout
    cat, _, _ = run_measured(["cat", bundle], scratch)
    assert "not a readable .tar.gz bundle" in assert_one_line_error(cat)
    assert list(scratch.iterdir()) == []


def test_info_finds_a_manifest_that_is_not_first(tmp_path: Path, files: dict[str, bytes]) -> None:
    # Bundles made by hand (tar czf) may hold the manifest anywhere.
    members: list[tuple[str, int, io.RawIOBase | None]] = [
        ("rec", 0, None),
        ("rec/pane-0.cast", len(files["pane-0.cast"]), io.BytesIO(files["pane-0.cast"])),
        ("rec/manifest.json", len(files["manifest.json"]), io.BytesIO(files["manifest.json"])),
    ]
    bundle = write_bundle(tmp_path / "b.tar.gz", members)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result, _, _ = run_measured(["info", bundle], scratch)
    assert result.returncode == 0, result.stderr
    assert "command:  echo hi" in result.stdout
    with open_bundle(bundle, manifest_only=True) as unpacked:
        assert sorted(p.name for p in unpacked.iterdir()) == ["manifest.json"]


def test_info_never_reaches_hostile_members_after_the_manifest(tmp_path: Path,
                                                              files: dict[str, bytes]) -> None:
    # A link to /etc/shadow and a fifo after the manifest: info shows the
    # manifest and creates neither; cat, which needs them, refuses the first.
    link = tarfile.TarInfo("rec/pane-1.cast")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
    fifo = tarfile.TarInfo("rec/pipe")
    fifo.type = tarfile.FIFOTYPE
    bundle = tmp_path / "b.tar.gz"
    with tarfile.open(bundle, "w:gz") as tar:
        for name in ("manifest.json", "pane-0.cast"):
            info = tarfile.TarInfo(f"rec/{name}")
            info.size = len(files[name])
            tar.addfile(info, io.BytesIO(files[name]))
        tar.addfile(link)
        tar.addfile(fifo)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    info, _, _ = run_measured(["info", bundle], scratch)
    assert info.returncode == 0, info.stderr
    assert "command:  echo hi" in info.stdout and "shadow" not in info.stdout
    cat, _, _ = run_measured(["cat", bundle], scratch)
    assert assert_one_line_error(cat) == (f"autotrace: {bundle}: refused member "
                                          "'rec/pane-1.cast': it is a symbolic link "
                                          "(to '/etc/shadow')")
    assert list(scratch.iterdir()) == []


# ---------------------------------------------------------------- item 5: one line, one event


def test_a_line_over_the_limit_is_refused_with_bounded_memory(tmp_path: Path,
                                                              files: dict[str, bytes]) -> None:
    # One event line of twice the limit (random hex: it packs 2:1, far below
    # the ratio cap).
    header = files["pane-0.cast"].split(b"\n", 1)[0] + b"\n"
    text = os.urandom(MAX_LINE_BYTES).hex()
    pane = header + json.dumps([0.5, "o", text]).encode() + b"\n"
    assert len(pane) > 2 * MAX_LINE_BYTES
    bundle = bundle_of(tmp_path / "b.tar.gz", files, pane=(len(pane), io.BytesIO(pane)))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result, rss, _ = run_measured(["cat", bundle], scratch)
    line = assert_one_line_error(result)
    assert line == (f"autotrace: {bundle}: refused member 'rec/pane-0.cast': its line 2 "
                    f"is over {MAX_LINE_BYTES} bytes (the limit for one line)")
    assert rss < RSS_BOUND, f"peak RSS {rss / MiB:.0f} MB"
    assert list(scratch.iterdir()) == []


def test_lines_up_to_the_limit_are_read(tmp_path: Path, files: dict[str, bytes]) -> None:
    header = files["pane-0.cast"].split(b"\n", 1)[0] + b"\n"
    event = json.dumps([0.5, "o", "x" * 1000 + "\r\n"]).encode() + b"\n"
    pane = header + event * 3000
    bundle = bundle_of(tmp_path / "b.tar.gz", files, pane=(len(pane), io.BytesIO(pane)))
    with open_bundle(bundle, BundleLimits(line_bytes=len(event))) as unpacked:
        assert (unpacked / "pane-0.cast").read_bytes() == pane
    with pytest.raises(RecordingError, match="its line 2 is over 1000 bytes"), \
            open_bundle(bundle, BundleLimits(line_bytes=1000)):
        pass


def test_a_huge_manifest_is_refused(tmp_path: Path, files: dict[str, bytes]) -> None:
    manifest = json.loads(files["manifest.json"])
    manifest["padding"] = ["x" * 100] * 200_000  # 20 MB of short lines
    data = json.dumps(manifest, indent=1).encode()
    bundle = bundle_of(tmp_path / "b.tar.gz", {**files, "manifest.json": data})
    with pytest.raises(RecordingError, match=r"refused member 'rec/manifest.json': it is "
                                             rf"{len(data)} bytes, over the limit of 16777216"), \
            open_bundle(bundle, manifest_only=True):
        pass


# ---------------------------------------------------------------- item 4: deep and long names


def deep_name(levels: int) -> str:
    return "rec/" + "a/" * levels + "f"


@pytest.mark.parametrize("name, message", [
    (deep_name(3000), "its path is 3002 levels deep (the limit is 8)"),
    (deep_name(7), "its path is 9 levels deep (the limit is 8)"),
    ("rec/" + "n" * 3000, "its name is 3004 bytes long (the limit is 1024)"),
    ("rec/a\x00b", "its name holds a control character"),
    ("rec/\x1b]52;c;SGk=\x07", "its name holds a control character"),
])
def test_deep_or_long_names_are_one_line(tmp_path: Path, files: dict[str, bytes], name: str,
                                         message: str) -> None:
    bundle = tmp_path / "b.tar.gz"
    bundle_of(bundle, files, (name, 2, io.BytesIO(b"hi")))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result, _, _ = run_measured(["cat", bundle], scratch)
    line = assert_one_line_error(result)
    assert line.startswith(f"autotrace: {bundle}: refused member '"), line
    assert line.endswith(f"': {message}"), line
    assert len(line) < len(str(bundle)) + 200, "a long name is shortened"
    assert line.isprintable()
    assert list(scratch.iterdir()) == []


def test_a_shallow_subfolder_is_still_read(tmp_path: Path, files: dict[str, bytes]) -> None:
    bundle = bundle_of(tmp_path / "b.tar.gz", files, (deep_name(6), 2, io.BytesIO(b"hi")))
    with open_bundle(bundle) as unpacked:
        assert (unpacked.joinpath(*["a"] * 6) / "f").read_bytes() == b"hi"


# ---------------------------------------------------------------- item 5: a killed run's scratch


def scratch_folders(scratch: Path) -> list[Path]:
    return sorted(scratch.glob("autotrace-bundle-*"))


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def slow_bundle(tmp_path: Path, files: dict[str, bytes]) -> Path:
    """A bundle whose `cat` takes seconds (6 MB of lines through pyte)."""
    header = files["pane-0.cast"].split(b"\n", 1)[0] + b"\n"
    events = b"".join(json.dumps([i / 1000, "o", f"line {i} " + "y" * 50 + "\r\n"]).encode()
                      + b"\n" for i in range(80_000))
    pane = header + events
    return bundle_of(tmp_path / "slow.tar.gz", files, pane=(len(pane), io.BytesIO(pane)))


def test_scratch_left_by_a_killed_run_is_removed_next_time(tmp_path: Path, slow_bundle: Path,
                                                           scratch: Path) -> None:
    proc = subprocess.Popen([*AUTOTRACE, "cat", str(slow_bundle)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
                            env=autotrace_env(TMPDIR=str(scratch)))
    try:
        left = wait_for(lambda: [p for p in scratch_folders(scratch)
                                 if (p / "rec" / "pane-0.cast").exists()],
                        timeout=60, what="the pane file being unpacked")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert [p.name.split("-")[2] for p in left] == [str(proc.pid)]
    assert scratch_folders(scratch) == left, "SIGKILL leaves the folder (no test without it)"

    result = subprocess.run([*AUTOTRACE, "info", str(slow_bundle)], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60, cwd=REPO,
                            env=autotrace_env(TMPDIR=str(scratch)))
    assert result.returncode == 0, result.stderr
    assert scratch_folders(scratch) == []


def test_only_our_own_stale_scratch_folders_are_removed(tmp_path: Path, files: dict[str, bytes],
                                                        scratch: Path) -> None:
    bundle = bundle_of(tmp_path / "b.tar.gz", files)
    dead = dead_pid()
    live = os.getpid()

    def folder(name: str, mode: int = 0o700, uid: int | None = None) -> Path:
        path = scratch / name
        path.mkdir()
        (path / "content").write_text("x")
        path.chmod(mode)
        if uid is not None:
            os.chown(path, uid, uid)
        return path

    stale = folder(f"autotrace-bundle-{dead}-stale")
    in_use = folder(f"autotrace-bundle-{live}-inuse")
    reused = folder(f"autotrace-bundle-{live}-reused")
    day_ago = time.time() - 86400  # older than the process now holding that pid
    os.utime(reused, (day_ago, day_ago))
    shared = folder(f"autotrace-bundle-{dead}-shared", mode=0o755)
    # Another user's folder (made by root for nobody: only root can do that).
    foreign = folder(f"autotrace-bundle-{dead}-foreign", uid=65534 if os.geteuid() == 0 else None)
    not_ours = folder(f"autotrace-other-{dead}-x")
    no_pid = folder("autotrace-bundle-x-y")
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("keep")
    target.chmod(0o700)
    link = scratch / f"autotrace-bundle-{dead}-link"
    link.symlink_to(target)

    result = subprocess.run([*AUTOTRACE, "info", str(bundle)], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60, cwd=REPO,
                            env=autotrace_env(TMPDIR=str(scratch)))
    assert result.returncode == 0, result.stderr
    assert not stale.exists()
    assert not reused.exists()
    for kept in (in_use, shared, not_ours, no_pid):
        assert (kept / "content").exists(), kept.name
    assert (foreign / "content").exists() == (os.geteuid() == 0)
    assert link.is_symlink() and (target / "keep").read_text() == "keep"


def test_scratch_folder_is_named_after_its_owner(tmp_path: Path, files: dict[str, bytes]) -> None:
    bundle = bundle_of(tmp_path / "b.tar.gz", files)
    with open_bundle(bundle) as unpacked:
        folder = unpacked.parent
        assert folder.name.startswith(f"autotrace-bundle-{os.getpid()}-")
        assert folder.stat().st_mode & 0o777 == 0o700
        assert (unpacked / "pane-0.cast").stat().st_mode & 0o777 == 0o600
    assert not folder.exists()
