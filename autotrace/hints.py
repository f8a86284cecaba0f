"""Recognise a tracer that was refused permission and say how to fix it."""

from __future__ import annotations

import re

PTRACE_REFUSED = re.compile(r"ptrace\(PTRACE_\w+.*(Operation not permitted|Permission denied)")
CAPTURE_REFUSED = re.compile(
    r"You don't have permission to|socket: Operation not permitted|"
    r"\(socket: Operation not permitted\)|Attempt to create packet socket failed"
)
GENERIC_REFUSED = re.compile(r"Operation not permitted|Permission denied")

PTRACE_HINT = (
    "ptrace was refused: run autotrace with sudo, or allow tracing of your own "
    "processes with `sudo sysctl kernel.yama.ptrace_scope=0`"
)
CAPTURE_HINT = (
    "packet capture was refused: run autotrace with sudo, or give the capture tool "
    "the capability: `sudo setcap cap_net_raw,cap_net_admin+eip $(command -v tcpdump)`"
)
GENERIC_HINT = "the tracer was refused permission: try running autotrace with sudo"


def refusal_hint(text: str) -> str | None:
    """A one-line fix for a refusal found in a tracer's output, or None."""
    if PTRACE_REFUSED.search(text):
        return PTRACE_HINT
    if CAPTURE_REFUSED.search(text):
        return CAPTURE_HINT
    if GENERIC_REFUSED.search(text):
        return GENERIC_HINT
    return None
