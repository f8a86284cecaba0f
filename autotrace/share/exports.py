"""`autotrace export`: a recording (folder, bundle or lone cast) as one file
for someone without autotrace: the player page (--html), one composite
asciicast of the whole view (--cast), a picture of the view at a moment
(--svg). Redaction (--redact) goes through pack's: the bundle it writes is
checked for matches still showing, then exported."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from autotrace.errors import UserError
from autotrace.export.bundle import Progress, bundle_target, pack
from autotrace.export.html import PAGE_LIMIT, page
from autotrace.format.errors import RecordingError
from autotrace.format.files import invoking_user_ids
from autotrace.format.reader import Recording
from autotrace.format.sources import is_lone_cast, open_recording
from autotrace.share import recorded

# Screen text the frames may hold before gzip; a page is about a fifth of it
# (the benchmark's hour: 11 M characters, a 3.7 MB page).
MAX_TEXT = 100 * 2**20


@contextlib.contextmanager
def opened(path: Path, redact: Sequence[str] = ()) -> Iterator[Recording]:
    """The recording at `path`, redacted first when asked (as pack does)."""
    if not redact:
        with open_recording(path) as recording:
            yield recording
        return
    if is_lone_cast(path):
        raise UserError(f"{path}: --redact needs a recording folder or bundle")
    with tempfile.TemporaryDirectory(prefix="autotrace-export-") as scratch:
        bundle = pack(path, Path(scratch) / "redacted.tar.gz", redact)
        with open_recording(bundle) as recording:
            yield recording


def default_output(path: Path, suffix: str) -> Path:
    name = path.resolve().name
    for ending in (".tar.gz", ".tgz", ".cast"):
        if name.endswith(ending):
            name = name[: -len(ending)]
    return Path.cwd() / f"{name or 'recording'}{suffix}"


@contextlib.contextmanager
def _written(target: Path, force: bool = False) -> Iterator[IO[str]]:
    """A file written whole or not at all: a half page is worse than none.
    A file there already is replaced only with FORCE, as pack does."""
    if os.path.lexists(target) and not force:
        raise RecordingError(f"{target} exists already; use --force to replace it")
    partial = target.with_name(f".{target.name}.partial")
    try:
        with open(partial, "x", encoding="utf-8") as f:
            ids = invoking_user_ids()
            if ids:  # under sudo, the page is the invoking user's, as recordings are
                os.fchown(f.fileno(), *ids)
            yield f
        os.replace(partial, target)
    except OSError as err:
        raise RecordingError(f"cannot write {target}: {err.strerror or err}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


def write_text(target: Path, text: str, force: bool = False) -> None:
    with _written(target, force) as f:
        f.write(text)


def html_data(recording: Recording, label: str) -> dict[str, Any]:
    """The page's data: every frame of the recording."""
    return recorded.page_data(recording, label, max_text=MAX_TEXT)


def html_page(recording: Recording, label: str) -> str:
    text = page(html_data(recording, label), f"autotrace: {label}")
    if len(text) > PAGE_LIMIT:
        raise recorded.TooLarge(f"{label}: too large for one page ({len(text) / 2**20:.1f} MB, "
                        f"at most {PAGE_LIMIT // 2**20} MB)")
    return text


def export_html(path: Path, out: Path | None, redact: Sequence[str] = (),
                force: bool = False) -> Path:
    target = _target(path, out, ".html")
    with opened(path, redact) as recording:
        # (a redacted recording's folder name is redacted too; the path given is not)
        label = recording.directory.name if redact else path.name
        write_text(target, html_page(recording, label), force)
    return target


PLAYER = "index.html"


def pack_with_player(path: Path, out: Path | None, redact: Sequence[str] = (),
                     progress: Progress | None = None, force: bool = False,
                     notice: Callable[[str], None] = lambda line: None) -> Path:
    """`pack`, with the player page as index.html in the bundle, made from
    what the bundle holds (redacted, when asked): packed once to a private
    folder, the page made from that bundle, then packed again with it. A
    recording too large for a page is packed without one (and `notice` says so)."""
    def player_for(recording: Recording, label: str) -> dict[str, bytes]:
        try:
            return {PLAYER: html_page(recording, label).encode("utf-8")}
        except recorded.TooLarge as err:
            notice(f"no {PLAYER} in the bundle: {err}")
            return {}

    bundle_target(path, out, redact, force)  # before the page's seconds of work
    if not redact:
        with open_recording(path) as recording:
            name = path.resolve().name if recording.directory == path else path.name
            extra = player_for(recording, name)
        return pack(path, out, (), progress, force=force, extra=extra)
    with tempfile.TemporaryDirectory(prefix="autotrace-pack-") as scratch:
        staged = pack(path, Path(scratch) / "staged.tar.gz", redact, progress)
        with open_recording(staged) as recording:
            extra = player_for(recording, recording.directory.name)
        return pack(staged, out, (), None, force=force, extra=extra)


def export_cast(path: Path, out: Path | None, redact: Sequence[str] = (),
                version: int = 2, force: bool = False) -> Path:
    from autotrace.share.cast import write_composite

    target = _target(path, out, ".cast")
    with opened(path, redact) as recording:
        label = recording.directory.name if redact else path.name
        with _written(target, force) as f:
            write_composite(recording, label, f, version)
    return target


def export_svg(path: Path, out: Path | None, at: float, redact: Sequence[str] = (),
               force: bool = False) -> Path:
    from autotrace.share.svg import picture

    target = _target(path, out, ".svg")
    with opened(path, redact) as recording:
        label = recording.directory.name if redact else path.name
        write_text(target, picture(recording, label, at), force)
    return target


def _target(path: Path, out: Path | None, suffix: str) -> Path:
    target = out or default_output(path, suffix)
    return target / default_output(path, suffix).name if target.is_dir() else target
