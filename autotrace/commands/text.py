"""`autotrace cat` and `autotrace info`: a recording as text."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from autotrace.export.text import write_info, write_timeline
from autotrace.format.errors import RecordingError
from autotrace.format.sources import open_recording


def run_cat(options: argparse.Namespace) -> int:
    with open_recording(options.path) as recording:
        if options.pane is not None and not 0 <= options.pane < len(recording.panes):
            raise RecordingError(f"{options.path} has no pane {options.pane} "
                                 f"(panes 0 to {len(recording.panes) - 1})")
        write_timeline(recording, sys.stdout, options.pane)
        sys.stdout.flush()
    return 0


def run_info(options: argparse.Namespace) -> int:
    # info shows only the manifest: of a bundle, nothing after it is read.
    with open_recording(options.path, manifest_only=True) as recording:
        # Show the path the user gave, not a bundle's temporary folder.
        write_info(dataclasses.replace(recording, directory=options.path), sys.stdout)
    return 0
