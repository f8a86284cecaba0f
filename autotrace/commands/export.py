"""`autotrace export`: a recording as one file for people without autotrace."""

from __future__ import annotations

import argparse

from autotrace.commands.common import to_stdout


def run_export(options: argparse.Namespace) -> int:
    from autotrace.share import exports

    if options.html:
        written = exports.export_html(options.path, options.output, options.redact)
    else:
        return 2
    to_stdout(f"{written}\n")
    return 0
