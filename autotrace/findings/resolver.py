"""Rules over the @resolv probe's frames: the resolver files the target sees
(through /proc/PID/root), their options, and every change, with its diff."""

from __future__ import annotations

import contextlib
import difflib

from autotrace.findings.engine import PaneInfo, Resolver, Rules
from autotrace.findings.model import WARNING, Evidence, Finding

SECTION = "# "  # a frame's section starts with "# /etc/resolv.conf" (live/probes.py)
MAX_DIFF_LINES = 40


def sections(frame: str) -> dict[str, list[str]]:
    """{path: its lines} of a @resolv frame."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in frame.split("\n"):
        if line.startswith(SECTION + "/"):
            current = found.setdefault(line[len(SECTION):].split()[0], [])
        elif current is not None and not line.startswith("@resolv"):
            current.append(line.rstrip())
    for lines in found.values():
        while lines and not lines[-1]:
            lines.pop()
    return found


def parse_resolv_conf(lines: list[str]) -> Resolver:
    nameservers, search, timeout = [], [], 5.0
    for line in lines:
        words = line.split("#")[0].split(";")[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            nameservers.append(words[1])
        elif words[0] in ("search", "domain"):
            search = words[1:]
        elif words[0] == "options":
            for option in words[1:]:
                if option.startswith("timeout:"):
                    with contextlib.suppress(ValueError):
                        timeout = max(1.0, min(30.0, float(option.split(":", 1)[1])))
    return Resolver(tuple(nameservers), tuple(search), timeout, seen=True)


class ResolverRules(Rules):
    def __init__(self, engine) -> None:
        super().__init__(engine)
        self.previous: dict[int, tuple[float, dict[str, list[str]]]] = {}

    def frame(self, pane: PaneInfo, t: float, text: str) -> None:
        files = sections(text)
        if not files:
            return
        if "/etc/resolv.conf" in files:
            self.engine.resolver = parse_resolv_conf(files["/etc/resolv.conf"])
        before = self.previous.get(pane.index)
        self.previous[pane.index] = (t, files)
        if before is None or before[1] == files:
            return
        for path in sorted(set(before[1]) | set(files)):
            old, new = before[1].get(path, []), files.get(path, [])
            if old == new:
                continue
            diff = list(difflib.unified_diff(old, new, f"{path} (before)", f"{path} (now)",
                                             lineterm="", n=1))
            shown = diff[:MAX_DIFF_LINES] + (["..."] if len(diff) > MAX_DIFF_LINES else [])
            changed = [line for line in diff[2:] if line[:1] in "+-"]
            self.engine.report(Finding(
                t, "resolver.changed", WARNING,
                f"{path} changed during the session (as the traced process sees it)",
                "\n".join(shown),
                (Evidence(pane.index, before[0], f"{path} before"),
                 *(Evidence(pane.index, t, line) for line in changed[:5]))))
