"""Input mode: what the user types, as the pane's program must get it.

The terminal gives the keys as it sends them (raw: Enter is CR, Ctrl-C is
0x03, a paste comes between ESC[200~ and ESC[201~ because the view asked
for bracketed paste while typing). Pasted text keeps its brackets only when
the pane's program asked for them itself (mode ?2004, which its screen
model saw); otherwise it arrives as if typed. The key that leaves input
mode ends the typed text, unless it is inside a paste: pasted text is data.
"""

from __future__ import annotations

from dataclasses import dataclass

PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"


@dataclass
class Typed:
    """What a piece of typed text comes to."""

    text: str  # for the program, in order
    leave: bool = False  # the leave key came after `text`
    rest: str = ""  # what came after the leave key: keys for the view again


class TypingTranslator:
    """Typed text for one pane's program; remembers an unfinished paste."""

    def __init__(self, leave_key: str):
        self.leave_key = leave_key
        self.in_paste = False

    def translate(self, raw: str, bracketed: bool) -> Typed:
        out: list[str] = []
        i = 0
        while i < len(raw):
            if raw.startswith(PASTE_START, i):
                self.in_paste = True
                out.append(PASTE_START if bracketed else "")
                i += len(PASTE_START)
            elif raw.startswith(PASTE_END, i):
                self.in_paste = False
                out.append(PASTE_END if bracketed else "")
                i += len(PASTE_END)
            elif raw[i] == self.leave_key and not self.in_paste:
                return Typed("".join(out), leave=True, rest=raw[i + 1:])
            else:
                # Plain text up to the next bracket or leave key, in one piece.
                end = len(raw)
                for mark in (PASTE_START, PASTE_END, self.leave_key):
                    found = raw.find(mark, i + 1)
                    if found != -1:
                        end = min(end, found)
                out.append(raw[i:end])
                i = end
        return Typed("".join(out))
