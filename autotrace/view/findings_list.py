"""The findings list (`F`): what the rules found, one row each, to choose from.

Pure state and rows; the view (multipane.py) opens it, passes it keys while
it is open, and on Enter moves every pane to the chosen finding's moment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from curtsies import FmtStr

from autotrace.findings.model import ERROR, WARNING, Finding, counts
from autotrace.view import render

SEVERITY_COLOURS = {ERROR: "red", WARNING: "yellow"}
UP_KEYS = ("k", "KEY_UP")
DOWN_KEYS = ("j", "KEY_DOWN")
CHOOSE_KEYS = ("KEY_ENTER", "\n", "\r")
CLOSE_KEYS = ("KEY_ESCAPE", "\x1b", "q", "F")


@dataclass
class FindingsList:
    items: list[Finding] = field(default_factory=list)
    open: bool = False
    cursor: int = 0

    def add_json(self, data: str) -> None:
        """A finding as the event stream carries it (events.FINDING); bad data is ignored."""
        try:
            finding = Finding.from_json(json.loads(data))
        except ValueError:
            return
        if finding is not None:
            self.add(finding)

    def add(self, finding: Finding) -> None:
        self.items.append(finding)
        self.items.sort(key=lambda f: f.t)  # a late judgement (no retry came) is older

    def count_text(self) -> str:
        """For the status line: "F 3 findings (2 errors)"; empty when there are none."""
        if not self.items:
            return ""
        errors = counts(self.items)[ERROR]
        what = f" ({errors} error{'s' if errors != 1 else ''})" if errors else ""
        return f"F {len(self.items)} finding{'s' if len(self.items) != 1 else ''}{what}"

    def key(self, key: str) -> Finding | None | bool:
        """A key while the list is open: the finding chosen, True if handled, False to close."""
        if key in CLOSE_KEYS:
            self.open = False
            return False
        if key in UP_KEYS:
            self.cursor = max(0, self.cursor - 1)
        elif key in DOWN_KEYS:
            self.cursor = min(len(self.items) - 1, self.cursor + 1)
        elif key in CHOOSE_KEYS and self.items:
            self.open = False
            return self.items[self.cursor]
        return True

    def rows(self, width: int, height: int) -> list[FmtStr]:
        title = f" findings: {len(self.items)}   j/k choose   Enter go there   Esc close"
        rows = [render.plain(title, width, bold=True)]
        if not self.items:
            rows.append(render.plain("  nothing found yet", width))
        room = max(1, height - 1)
        first = max(0, min(self.cursor - room // 2, len(self.items) - room))
        for i, finding in enumerate(self.items[first:first + room], start=first):
            text = f" {finding.t:9.3f}  {finding.severity:<7}  pane {finding.pane}  {finding.title}"
            if i == self.cursor:
                rows.append(render.plain(text, width, invert=True))
            else:
                colour = SEVERITY_COLOURS.get(finding.severity)
                rows.append(render.styled(text, width, fg=colour) if colour
                            else render.plain(text, width))
        return rows
