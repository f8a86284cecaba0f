"""A recording's findings: read from findings.jsonl, or found now by running the
rules over its events (a recording made before findings existed), and shown as text."""

from __future__ import annotations

import heapq
import json
from collections.abc import Sequence
from typing import Any, TextIO

from autotrace.events import FINDING, Event
from autotrace.findings.engine import PaneInfo, findings_of
from autotrace.findings.model import Finding, counts
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


def count_text(findings: Sequence[Finding]) -> str:
    """"3 findings: 2 errors, 1 warning" (severities with none left out)."""
    if not findings:
        return "no findings"
    parts = [f"{n} {severity}{'s' if n > 1 and severity != 'info' else ''}"
             for severity, n in counts(list(findings)).items() if n]
    return f"{len(findings)} finding{'s' if len(findings) > 1 else ''}: {', '.join(parts)}"


def write_findings(findings: Sequence[Finding], out: TextIO,
                   panes: dict[int, PaneInfo] | None = None) -> None:
    """What `autotrace findings` prints: each finding, its detail and evidence."""
    for finding in findings:
        for line in finding_lines(finding, panes):
            out.write(line + "\n")
    out.write(count_text(findings) + "\n")


def write_findings_summary(findings: Sequence[Finding], out: TextIO,
                           panes: dict[int, PaneInfo] | None = None) -> None:
    """SUMMARY.txt's part: a line per finding, its first evidence's pane and time."""
    out.write(f"\nfindings ({count_text(findings)})\n")
    for finding in findings:
        out.write(finding_lines(finding, panes, evidence=False)[0] + "\n")
        if finding.evidence:
            first = finding.evidence[0]
            out.write(printable(f"           evidence: pane {first.pane} at {first.t:.3f}: "
                                f"{first.line[:120]}") + "\n")
