"""The held main command waits for the @dns probe to capture, however slowly
it starts: a story's first query must be in the recording.

Seen in story-truncation.sh on a loaded machine: @dns (a Python process that
imports dnspython, then starts tcpdump) took over the 0.5 s that a silent
tracer is given, the main command was let go, and the first dig's truncated
answer and its TCP retry were never captured.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from tests.conftest import RecordingFiles, autotrace_env, run_autotrace
from tests.test_examples import random_loopback, start_server


def test_main_command_waits_for_a_slow_dns_probe(tmp_path: Path) -> None:
    # A real tcpdump that is slow to start, as on a busy machine.
    slow = tmp_path / "bin"
    slow.mkdir()
    (slow / "tcpdump").write_text(f"#!/bin/sh\nsleep 1.5\nexec {shutil.which('tcpdump')} \"$@\"\n")
    (slow / "tcpdump").chmod(0o755)
    address = random_loopback()
    server = start_server(address)
    try:
        ready = server.stdout.readline()
        port = re.fullmatch(r"ready \S+ (\d+) pid \d+\n", ready)
        assert port, ready
        record = tmp_path / "rec"
        result = run_autotrace(
            ["--headless", "--quiet", "-l", record,
             f"dig @{address} -p {port[1]} +tries=1 +time=5 small.test", f"@dns:{port[1]}"],
            env=autotrace_env(PATH=f"{slow}{os.pathsep}{os.environ['PATH']}"), timeout=60)
    finally:
        server.kill()
        server.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    rec = RecordingFiles(record)
    assert "192.0.2.1" in rec.output(0)
    probe = rec.output(1)
    assert re.search(rf"> {re.escape(address)}:{port[1]} query id \d+ small\.test\. A ", probe), \
        probe
    assert re.search(r" answer id \d+ small\.test\. A NOERROR .* answers 1 ", probe), probe
