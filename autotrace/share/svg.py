"""The view at one moment as an SVG picture (`export --svg --at TIME`), for a
bug report or a wiki: the replay's frame at that time (seek, then draw),
each run of cells as text in its colours. The palette is the page's
(export/page/player.css)."""

from __future__ import annotations

from html import escape

from curtsies.formatstring import FmtStr

from autotrace.format.reader import Recording
from autotrace.share.recorded import RecordedFrames

CELL_W, CELL_H = 8.4, 17  # px: a 14 px monospace font
PALETTE = {30: "#000000", 31: "#cd3131", 32: "#0dbc79", 33: "#e5e510", 34: "#2472c8",
           35: "#bc3fbc", 36: "#11a8cd", 37: "#e5e5e5"}
FOREGROUND, BACKGROUND = "#d0d0d0", "#000000"


def _colours(atts: dict[str, int | bool]) -> tuple[str, str | None]:
    fg = PALETTE.get(int(atts["fg"])) if "fg" in atts else None
    bg = PALETTE.get(int(atts["bg"]) - 10) if "bg" in atts else None
    if atts.get("invert"):
        return bg or BACKGROUND, fg or FOREGROUND
    return fg or FOREGROUND, bg


def _row(y: int, line: FmtStr) -> list[str]:
    parts, x = [], 0
    base = (y + 1) * CELL_H - 4
    for chunk in line.chunks:
        text, atts = chunk.s, dict(chunk.atts)
        fg, bg = _colours(atts)
        if bg:
            parts.append(f'<rect x="{x * CELL_W:.1f}" y="{y * CELL_H}" '
                         f'width="{len(text) * CELL_W:.1f}" height="{CELL_H}" fill="{bg}"/>')
        if text.strip():
            style = ' font-weight="bold"' if atts.get("bold") else ""
            style += ' text-decoration="underline"' if atts.get("underline") else ""
            parts.append(f'<text x="{x * CELL_W:.1f}" y="{base}" fill="{fg}"{style} '
                         f'textLength="{len(text) * CELL_W:.1f}">{escape(text)}</text>')
        x += len(text)
    return parts


def picture(recording: Recording, label: str, t: float) -> str:
    with RecordedFrames(recording, label) as frames:
        player = frames.player
        player.seek(t)  # the replay's own seek: snapshot or rebuild, then forward
        player.clock.pause()
        rows = player.frame()
        cols, count = frames.view.cols, frames.view.rows
    body = [part for y, row in enumerate(rows) for part in _row(y, row)]
    width, height = cols * CELL_W, count * CELL_H
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height}" '
        f'viewBox="0 0 {width:.0f} {height}" font-family="DejaVu Sans Mono, monospace" '
        f'font-size="14" xml:space="preserve">',
        f"<title>{escape(f'autotrace: {label} at {t:.1f} s')}</title>",
        f'<rect width="100%" height="100%" fill="{BACKGROUND}"/>',
        *body, "</svg>", ""])
