"""The benchmark harness itself works: a --quick run measures every contender
side by side and prints ratio tables with targets.

Nothing here asserts speed (the benchmarks carry the targets); only that the
harness runs to its end and reports. The original autotrace is left out, so
the test needs no download.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RATIO = r"\d+\.\d\dx"


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600, cwd=REPO,
    )


def table(output: str, title: str) -> str:
    """The lines of the table whose title starts with TITLE."""
    match = re.search(rf"^== {re.escape(title)}.*?(?=^\s*$)", output, re.M | re.S)
    assert match, f"no table {title!r} in:\n{output}"
    return match.group(0)


@pytest.mark.alone
def test_quick_run_prints_ratio_tables_for_every_benchmark() -> None:
    result = run_bench("--quick", "--without-original")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Traceback" not in result.stderr, result.stderr

    throughput = table(out, "throughput: seq 1")
    for contender in ("autotrace --headless", "script", "asciinema rec"):
        assert re.search(rf"^  {re.escape(contender)}\s.*{RATIO}", throughput, re.M), throughput
    assert re.search(rf"target  autotrace wall / script wall\s+{RATIO}\s+\(<= 1\.15x\)\s+"
                     r"(PASS|FAIL)", throughput), throughput

    idle = table(out, "idle: 4 panes x 20 lines/s")
    for contender in ("autotrace --headless (4 panes)", "4 x script", "4 x asciinema rec"):
        assert re.search(rf"^  {re.escape(contender)}\s+\d+\.\d\d%", idle, re.M), idle
    assert re.search(r"target  autotrace's own CPU.*\(<= 3\.00%\)\s+(PASS|FAIL)", idle), idle

    for title in ("view quiet", "view printers", "view flood", "view seq"):
        view = table(out, title)
        assert re.search(r"^  tmux\s+\S", view, re.M), view
        assert re.search(r"^  autotrace \(ours\)\s+\S", view, re.M), view
        assert re.search(r"target  ours.*(PASS|FAIL|n/a)$", view, re.M), view
    remote = table(out, "remote: panes over ssh")
    if os.geteuid() == 0:  # its hosts are network namespaces
        for count in (1, 8):  # --quick: 1 and 8 panes (the full run adds 32)
            row = re.search(rf"^  autotrace, {count} pane\(s\)\s+\d\s+\d+\.\d\d%\s+"
                            r"\d+\.\d\d%\s+\d+\.\d MB\s+\d+\.\d MB.*\s(\d+)/(\d+)$",
                            remote, re.M)
            assert row and row[1] == row[2], remote  # every line printed was recorded
        assert re.search(r"target  autotrace CPU per pane.*(PASS|FAIL)", remote), remote
    assert "autotrace 0.0.26" not in out  # left out as asked
    assert re.search(r"^summary: \d+ PASS, \d+ FAIL, \d+ n/a, 0 benchmark\(s\) could not run",
                     out, re.M), out


def test_unknown_benchmark_is_a_usage_error() -> None:
    result = run_bench("--quick", "nosuch")
    assert result.returncode == 2
    assert "unknown benchmark 'nosuch'" in result.stderr
    assert "Traceback" not in result.stderr
