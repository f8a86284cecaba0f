"""Which rules read a pane, told from its command alone: cheap to import, so
a session with no such pane never loads the rules (its first frame is sooner)."""

from __future__ import annotations

import os


def kind_of(command: str) -> str | None:
    """Which rules read a pane: "dns", "resolver", "strace", "tcpdump" or None."""
    words = command.split()
    if not words:
        return None
    if words[0].startswith("@dns"):
        return "dns"
    if words[0] == "@resolv":
        return "resolver"
    for word in words:  # past `nsenter ... --`, `sudo`, `VAR=value`
        name = os.path.basename(word)
        if name in ("strace", "tcpdump"):
            return name
    return None
