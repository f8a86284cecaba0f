"""`autotrace pack`: a recording as one bundle to share."""

from __future__ import annotations

import argparse

from autotrace.commands.common import to_stdout
from autotrace.export.bundle import PercentProgress, pack


def run_pack(options: argparse.Namespace) -> int:
    bundle = pack(options.path, options.output, options.redact, PercentProgress(),
                  force=options.force)
    to_stdout(f"{bundle}\n")
    return 0
