"""`autotrace export`: a recording as one file for people without autotrace."""

from __future__ import annotations

import argparse

from autotrace.commands.common import UsageError, to_stdout


def run_export(options: argparse.Namespace) -> int:
    from autotrace.replay.player import parse_time
    from autotrace.share import exports

    if options.svg:
        if options.at is None:
            raise UsageError("--svg needs --at TIME (e.g. 83.5 or 1:23.5)")
        at = parse_time(options.at)
        if at is None:
            raise UsageError(f"--at: not a time: {options.at} (e.g. 83.5 or 1:23.5)")
        written = exports.export_svg(options.path, options.output, at, options.redact,
                                     force=options.force)
    elif options.cast:
        written = exports.export_cast(options.path, options.output, options.redact,
                                      version=int(options.format[1]), force=options.force)
    else:
        written = exports.export_html(options.path, options.output, options.redact,
                                      force=options.force)
    to_stdout(f"{written}\n")
    return 0
