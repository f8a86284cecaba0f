"""`autotrace pack`: a recording as one bundle to share."""

from __future__ import annotations

import argparse

from autotrace.export.bundle import PercentProgress, pack


def run_pack(options: argparse.Namespace) -> int:
    bundle = pack(options.path, options.output, options.redact, PercentProgress())
    print(bundle)
    return 0
