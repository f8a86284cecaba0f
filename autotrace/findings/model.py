"""A finding and its evidence, and their JSON form (one findings.jsonl line each).

Pure data: the engine makes them, the recording stores them, the view, `cat`
and `findings` show them. Reading is tolerant: a line of an unknown shape
(written by a newer autotrace) is skipped, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ERROR = "error"  # something failed: a lookup, a syscall, a retry that never came
WARNING = "warning"  # worth a look: an unexpected server, a configuration that changed
INFO = "info"  # what happened, for the story: a TCP retry, a setns
SEVERITIES = (ERROR, WARNING, INFO)


@dataclass(frozen=True)
class Evidence:
    """A line a finding rests on: the pane that printed it and when."""

    pane: int
    t: float
    line: str

    def to_json(self) -> dict[str, Any]:
        return {"pane": self.pane, "t": round(self.t, 6), "line": self.line}


@dataclass(frozen=True)
class Finding:
    t: float  # seconds since the session's start: the moment to show
    rule: str  # e.g. "dns.truncated-no-retry"
    severity: str
    title: str  # one line
    detail: str = ""  # more lines (a diff), may be empty
    evidence: tuple[Evidence, ...] = field(default=())

    @property
    def pane(self) -> int:
        """The pane to focus on: where the first evidence is (0 without any)."""
        return self.evidence[0].pane if self.evidence else 0

    def to_json(self) -> dict[str, Any]:
        return {"t": round(self.t, 6), "rule": self.rule, "severity": self.severity,
                "title": self.title, "detail": self.detail,
                "evidence": [e.to_json() for e in self.evidence]}

    @classmethod
    def from_json(cls, data: Any) -> Finding | None:
        """A finding from a findings.jsonl object; None when it is not one we can read."""
        if not isinstance(data, dict):
            return None
        t, rule, severity = data.get("t"), data.get("rule"), data.get("severity")
        title, detail = data.get("title"), data.get("detail", "")
        if not (_is_time(t) and isinstance(rule, str) and isinstance(title, str)
                and isinstance(detail, str) and severity in SEVERITIES):
            return None
        evidence = []
        for item in data.get("evidence") or []:
            if (isinstance(item, dict) and _is_time(item.get("t"))
                    and isinstance(item.get("pane"), int) and not isinstance(item["pane"], bool)
                    and isinstance(item.get("line"), str)):
                evidence.append(Evidence(item["pane"], float(item["t"]), item["line"]))
        return cls(float(t), rule, severity, title, detail, tuple(evidence))  # type: ignore[arg-type]


def _is_time(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1e10


def counts(findings: list[Finding]) -> dict[str, int]:
    """{severity: how many}, every severity present."""
    result = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        result[finding.severity] += 1
    return result
