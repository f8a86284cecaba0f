"""The whole multi-pane view as one asciicast (`export --cast`), for someone
with only asciinema or asciinema-player: every pane, its title and the
header, as the replay draws them, at each moment some pane printed.

The view (layout, render) draws each frame; the file holds what changed
between frames as a terminal would be told: each changed row redrawn in
place (cursor to its start, the row's text with its colours)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from autotrace.format.asciicast import CastEvent, write_cast
from autotrace.format.reader import Recording
from autotrace.share.recorded import RecordedFrames

_START = "\x1b[?25l\x1b[2J"  # hide the cursor, clear: the view owns the screen
_RESET = "\x1b[0m"


def view_rows(frames: RecordedFrames, t: float) -> list[str]:
    """The view at recorded time `t` as terminal rows (curtsies' escapes)."""
    player = frames.player
    player.play_to(t)
    player.clock.seek(t)
    return [str(row) for row in player.frame()]


def composite_events(frames: RecordedFrames) -> Iterator[CastEvent]:
    shown: list[str] = []
    last = 0.0
    markers = iter(frames.player.clock.markers)
    marker = next(markers, None)
    for t in (0.0, *frames.steps()):
        while marker is not None and marker.t <= t:
            yield CastEvent(marker.t, "m", marker.label.removeprefix("user:"))
            marker = next(markers, None)
        rows = view_rows(frames, t)
        changed = [f"\x1b[{y + 1};1H{row}{_RESET}" for y, row in enumerate(rows)
                   if y >= len(shown) or shown[y] != row]
        if changed:
            yield CastEvent(t, "o", (_START if not shown else "") + "".join(changed))
        shown, last = rows, t
    if shown:  # the cursor back, on the footer: what the shell prints next goes there
        yield CastEvent(last, "o", f"\x1b[{len(shown)};1H\x1b[2K\x1b[?25h")


def write_composite(recording: Recording, label: str, out: IO[str], version: int) -> None:
    with RecordedFrames(recording, label) as frames:
        view = frames.view
        fields: dict[str, Any] = {"width": view.cols, "height": view.rows,
                                  "title": f"autotrace: {label}",
                                  "env": {"TERM": "xterm-256color"}}
        started = recording.manifest.get("started_unix")
        if isinstance(started, (int, float)):
            fields["timestamp"] = int(started)
        write_cast(out, fields, composite_events(frames), version)
