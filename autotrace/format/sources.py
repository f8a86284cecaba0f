"""What a PATH on the command line can be: a recording folder, a bundle
(.tar.gz) or a lone asciicast file made by any recorder."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from autotrace.format.bundle import resolve_recording
from autotrace.format.opening import open_for_reading
from autotrace.format.reader import Recording


def is_lone_cast(path: Path) -> bool:
    """A file whose first byte opens a JSON object: an asciicast header."""
    if not path.is_file():
        return False
    with open_for_reading(path.resolve()) as f:
        start = f.read(64).lstrip()
    return start[:1] == b"{"


@contextlib.contextmanager
def open_recording(path: Path, manifest_only: bool = False) -> Iterator[Recording]:
    """The recording at `path`, readable until the block ends (a bundle's
    temporary folder is removed then). `manifest_only`: of a bundle, nothing
    after its manifest is read or unpacked (info)."""
    if is_lone_cast(path):
        yield Recording.open_cast(path)
        return
    with resolve_recording(path, manifest_only=manifest_only) as directory:
        yield Recording.open(directory)
