"""A recording's findings: read from findings.jsonl, or found now by running the
rules over its events (a recording made before findings existed), and shown as text."""

from __future__ import annotations

import heapq
import json
from typing import Any

from autotrace.events import FINDING, Event
from autotrace.findings.engine import PaneInfo, findings_of
from autotrace.findings.model import Finding
from autotrace.format.reader import Recording
from autotrace.sanitise import printable


def pane_infos(manifest: dict[str, Any]) -> dict[int, PaneInfo]:
    panes = [p for p in manifest.get("panes", []) if isinstance(p, dict)]
    main_pid = next((p.get("pid") for p in panes if p.get("role") == "main"), None)
    return {i: PaneInfo(i, str(p.get("command") or ""), str(p.get("role") or "tracer"),
                        main_pid if isinstance(main_pid, int) else None)
            for i, p in enumerate(panes)}


def recording_findings(recording: Recording) -> list[Finding]:
    """What findings.jsonl holds; without one, what the rules find in the panes now."""
    data = recording.findings_data()
    if data is not None:
        found = (Finding.from_json(item) for item in data)
        return sorted((f for f in found if f is not None), key=lambda f: f.t)
    infos = pane_infos(recording.manifest)
    streams = [recording.events(i) for i in range(len(recording.panes))]
    merged: Any = heapq.merge(*streams, key=lambda e: e.t)
    return findings_of(merged, infos.get)


def finding_event(finding: Finding) -> Event:
    """A finding as the one stream carries it (events.FINDING)."""
    data = json.dumps(finding.to_json(), ensure_ascii=False)
    return Event(finding.t, finding.pane, FINDING, data)


def finding_lines(finding: Finding, panes: dict[int, PaneInfo] | None = None,
                  evidence: bool = True) -> list[str]:
    """A finding for a terminal: its title line, the diff, the evidence lines."""
    lines = [printable(f"{finding.t:10.3f} {finding.severity.upper():<7} {finding.title}")]
    if finding.detail:
        lines += [printable("           " + line) for line in finding.detail.split("\n")]
    if evidence:
        for item in finding.evidence:
            where = f"pane {item.pane}"
            if panes and item.pane in panes:
                where += f" ({panes[item.pane].command[:30]})"
            lines.append(printable(f"           {item.t:.3f} {where}: {item.line}"))
    return lines
