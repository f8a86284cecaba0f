"""`autotrace ls` and `autotrace prune`: the recordings in the default location.

Only folders that are autotrace recordings (a manifest that reads as one)
are listed, played or ever removed: the default location may hold anything
else the user put there.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autotrace.commands.common import say, to_stdout
from autotrace.errors import UserError
from autotrace.export.text import describe_end
from autotrace.format.errors import RecordingError
from autotrace.format.reader import Recording
from autotrace.format.recording import default_root
from autotrace.units import human_bytes

DAY = 86400.0


@dataclass(frozen=True)
class Found:
    """A recording in the default location, as `ls` shows it."""

    path: Path
    started: float  # Unix time
    manifest: dict[str, Any]
    size: int

    @property
    def command(self) -> str:
        panes = self.manifest.get("panes") or [{}]
        return str(panes[0].get("command", "?"))

    @property
    def ended(self) -> str:
        panes = self.manifest.get("panes") or [{}]
        return describe_end(panes[0], bool(self.manifest.get("attached")))

    @property
    def duration(self) -> str:
        value = self.manifest.get("duration")
        return f"{value:.1f} s" if isinstance(value, (int, float)) else "unfinished"


def recordings(root: Path | None = None) -> list[Found]:
    """Every recording under ROOT (default: the default location), newest first."""
    root = default_root() if root is None else root
    found = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue  # a link is never followed: prune must not reach outside
        try:
            manifest = Recording.open(Path(entry.path)).manifest
        except (RecordingError, OSError):
            continue
        started = manifest.get("started_unix")
        if not isinstance(started, (int, float)):
            started = entry.stat(follow_symlinks=False).st_mtime
        found.append(Found(Path(entry.path), float(started), manifest, _size(entry.path)))
    return sorted(found, key=lambda r: r.started, reverse=True)


def _size(folder: str) -> int:
    total = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            info = entry.stat(follow_symlinks=False)
            total += info.st_size if stat.S_ISREG(info.st_mode) else 0
    return total


def newest() -> Path:
    """The most recently started recording; `autotrace replay` with no PATH plays it."""
    found = recordings()
    if not found:
        raise RecordingError(f"no recordings in {default_root()}; give a PATH")
    return found[0].path


def _line(found: Found) -> str:
    started = datetime.datetime.fromtimestamp(found.started).strftime("%Y-%m-%d %H:%M:%S")
    return (f"{started}  {found.duration:>10}  {human_bytes(found.size):>9}  "
            f"{found.ended:<20}  {found.command}  {found.path}")


def run_ls(options: argparse.Namespace) -> int:
    found = recordings()
    if not found:
        say(f"no recordings in {default_root()}")
        return 0
    to_stdout("".join(f"{_line(r)}\n" for r in found))
    return 0


def run_prune(options: argparse.Namespace) -> int:
    cutoff = time.time() - options.older_than * DAY
    old = [r for r in recordings() if r.started < cutoff]
    if not old:
        say(f"no recordings older than {options.older_than:g} days in {default_root()}")
        return 0
    to_stdout(f"to remove ({len(old)}):\n" + "".join(f"  {_line(r)}\n" for r in old))
    if not options.yes:
        if not sys.stdin.isatty():
            raise UserError("not removing anything without a terminal to ask on: "
                            "add --yes to remove them")
        sys.stdout.flush()
        answer = input(f"remove these {len(old)} recordings? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            say("nothing removed")
            return 1
    for found in old:
        shutil.rmtree(found.path)
    say(f"removed {len(old)} recordings")
    return 0
