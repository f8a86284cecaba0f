"""`autotrace cat` and `autotrace info`: a recording as text."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from autotrace.export.findings import pane_infos, recording_findings, write_findings
from autotrace.export.text import write_info, write_timeline
from autotrace.format.errors import RecordingError
from autotrace.format.sources import open_recording


def run_cat(options: argparse.Namespace) -> int:
    with open_recording(options.path) as recording:
        if options.pane is not None and not 0 <= options.pane < len(recording.panes):
            raise RecordingError(f"{options.path} has no pane {options.pane} "
                                 f"(panes 0 to {len(recording.panes) - 1})")
        findings = recording_findings(recording) if options.findings else []
        if options.pane is not None:  # a finding about another pane is not this pane's
            findings = [f for f in findings if f.pane == options.pane]
        write_timeline(recording, sys.stdout, options.pane, findings)
        sys.stdout.flush()
    return 0


def run_info(options: argparse.Namespace) -> int:
    # info shows only the manifest: of a bundle, nothing after it is read.
    with open_recording(options.path, manifest_only=True) as recording:
        # Show the path the user gave, not a bundle's temporary folder.
        write_info(dataclasses.replace(recording, directory=options.path), sys.stdout)
    return 0


def run_findings(options: argparse.Namespace) -> int:
    """`autotrace findings PATH`: what the rules found, as text or JSON lines."""
    with open_recording(options.path) as recording:
        findings = recording_findings(recording)
        if options.json:
            for finding in findings:
                sys.stdout.write(json.dumps(finding.to_json(), ensure_ascii=True) + "\n")
        else:
            write_findings(findings, sys.stdout, pane_infos(recording.manifest))
        sys.stdout.flush()
    return 0
