"""`autotrace pack`: a recording as one bundle to share."""

from __future__ import annotations

import argparse

from autotrace.commands.common import say, to_stdout
from autotrace.export.bundle import PercentProgress
from autotrace.share.exports import pack_with_player


def run_pack(options: argparse.Namespace) -> int:
    bundle = pack_with_player(options.path, options.output, options.redact,
                              PercentProgress(), force=options.force, notice=say)
    to_stdout(f"{bundle}\n")
    return 0
