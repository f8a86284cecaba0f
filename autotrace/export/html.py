"""The player page: one self-contained HTML file (export/page/player.js and
.css inlined, the frames' data gzipped and inlined as base64), opened from
disk with no network request. A live share serves the same page."""

from __future__ import annotations

import base64
import gzip
import html
import json
from importlib import resources
from typing import Any

PAGE_LIMIT = 20 * 2**20  # bytes: the page an export may write

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width">
<title>{title}</title>
<style>
{css}
</style>
</head>
<body>
<div id="bar">
<button id="previous" title="previous marker ([)">|◀</button>
<button id="back" title="5 s back (Left)">◀◀</button>
<button id="play" title="play / pause (Space)">▶</button>
<button id="forward" title="5 s forward (Right)">▶▶</button>
<button id="next" title="next marker (])">▶|</button>
<button id="slower" title="slower (-)">−</button><button id="faster" title="faster (+)">+</button>
<span id="clock"></span>
<div id="seek"><div id="ticks"></div>
<input id="seekbar" type="range" min="0" step="0.1" value="0"></div>
<input id="time" type="text" size="8" placeholder="go to (:)" title="a time: 83.5 or 1:23.5">
<input id="search" type="text" size="14" placeholder="search (/)" title="a regex; n / N">
<select id="zoom" title="zoom (0-9, z)"></select>
</div>
<div id="term" tabindex="0"></div>
<pre id="report"></pre>
<script type="application/octet-stream" id="autotrace-data">
{data}
</script>
<script>
{js}
</script>
</body>
</html>
"""

# Nothing may be fetched: scripts and styles are inline, the rest refused.
# A live share's page may read its own server's stream.
_CSP_FILE = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"
_CSP_SHARE = _CSP_FILE + "; connect-src 'self'"


def _asset(name: str) -> str:
    return resources.files("autotrace.export").joinpath("page", name).read_text("utf-8")


def pack_data(data: dict[str, Any]) -> str:
    """The page's data as the page reads it: JSON, gzipped, base64 in lines of
    120 (a bundle's reader refuses lines of over 4 MiB; atob skips the breaks)."""
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    packed = base64.b64encode(gzip.compress(raw, 6, mtime=0)).decode("ascii")
    return "\n".join(packed[i:i + 120] for i in range(0, len(packed), 120))


def page(data: dict[str, Any], title: str, live: bool = False) -> str:
    """The whole page for `data` (export/frames.py's page_data)."""
    return _TEMPLATE.format(
        csp=_CSP_SHARE if live else _CSP_FILE, title=html.escape(title),
        css=_asset("player.css"), js=_asset("player.js"), data=pack_data(data))
