"""manifest.json: its names, the types readers rely on, and reading it
checked (docs/recording-format.md). A lone asciicast file gets a manifest
made up from its header, so it reads as a recording of one pane."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

from autotrace.format.asciicast import Header
from autotrace.format.errors import RecordingError, decode_json, describe, time_problem
from autotrace.format.opening import read_bounded
from autotrace.sanitise import shorten, spelled_out

FORMAT_NAME = "autotrace-recording"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FINDINGS = "findings.jsonl"  # one finding a line (docs/recording-format.md, Findings)
# A manifest is a few KiB; a bigger one is not ours to hold in memory.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_NAME_BYTES = 255  # a file name on Linux

_NUMBER = (int, float)
_NULL = (type(None),)
# The types readers rely on for the keys the format defines; keys a reader
# does not know are not checked (docs/recording-format.md).
MANIFEST_TYPES: dict[str, tuple[type, ...]] = {
    "started_unix": _NUMBER, "duration": _NUMBER + _NULL, "terminal": (dict,),
    "attached": (bool,), "redactions": (list,), "hosts": (dict, *_NULL),
}
PANE_TYPES: dict[str, tuple[type, ...]] = {
    "index": (int,), "role": (str,), "command": (str,), "command_run": (str,),
    "pid": (int, *_NULL), "start": _NUMBER + _NULL, "end": _NUMBER + _NULL,
    "exit_status": (int, *_NULL), "exit_signal": (int, *_NULL),
    "exit_signal_name": (str, *_NULL), "note": (str, *_NULL), "bytes": (int,),
    "host": (str, *_NULL), "remote_pid": (int, *_NULL),
}
# Keys holding seconds: a time of 1e400 or -5 is damage, not a moment.
TIME_KEYS = ("started_unix", "duration", "start", "end")


def _check_types(path: Path, data: dict[str, Any], types: dict[str, tuple[type, ...]],
                 where: str) -> None:
    for key, allowed in types.items():
        value = data.get(key)
        if key not in data or (isinstance(value, allowed) and
                               (bool in allowed or not isinstance(value, bool))):
            if key in TIME_KEYS and value is not None and time_problem(value):
                raise RecordingError(f"{path}: corrupt manifest: {where}{key}: "
                                     f"{time_problem(value)}")
            continue
        raise RecordingError(
            f"{path}: corrupt manifest: {where}{key} is {describe(value)}, "
            f"expected {' or '.join(t.__name__ for t in allowed).replace('NoneType', 'null')}"
        )


def shown_name(name: str) -> str:
    """A file name from a recording, safe to print: quoted, escaped and
    shortened the one way every message is (autotrace/sanitise.py)."""
    return f"'{shorten(spelled_out(name))}'"


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a pane file's name: it must be a plain name
    inside the recording's folder (no path, no hidden file, no control
    characters, no NUL, at most a file name's length)."""
    if name in ("", ".", "..") or name.startswith("."):
        return "is not allowed (a hidden or empty name)"
    if "/" in name:
        return "is not allowed (a path, not a name in the folder)"
    if not name.isprintable():
        return "is not allowed (control characters)"
    if len(name.encode("utf-8", errors="surrogatepass")) > MAX_NAME_BYTES:
        return f"is not allowed (longer than {MAX_NAME_BYTES} bytes)"
    return None


def _check_pane_files(path: Path, panes: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for pane in panes:
        name = pane["file"]
        problem = name_problem(name)
        if problem:
            raise RecordingError(f"{path}: pane file name {shown_name(name)} {problem}")
        if name in seen:
            # One file read once per pane that names it: 2000 names of a big
            # file would cost 2000 times its size.
            raise RecordingError(f"{path}: pane file {shown_name(name)} is named twice")
        seen.add(name)


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not os.path.lexists(path):
        raise RecordingError(f"{directory} is not an autotrace recording (no {MANIFEST})")
    data = decode_json(read_bounded(path, MAX_MANIFEST_BYTES), str(path), "manifest",
                       multiline=True)
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise RecordingError(f"{path}: not an autotrace manifest")
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise RecordingError(f"{path}: corrupt manifest: format_version is {describe(version)}")
    if version > FORMAT_VERSION:
        raise RecordingError(
            f"{path}: recording format version {describe(version)} is newer than this "
            f"autotrace understands ({FORMAT_VERSION}); upgrade autotrace"
        )
    panes = data.get("panes")
    if not isinstance(panes, list) or not all(
        isinstance(p, dict) and isinstance(p.get("file"), str) for p in panes
    ):
        raise RecordingError(f"{path}: corrupt manifest: bad 'panes' list")
    _check_pane_files(path, panes)
    _check_types(path, data, MANIFEST_TYPES, "")
    for index, pane in enumerate(panes):
        _check_types(path, pane, PANE_TYPES, f"panes[{index}].")
    if not all(isinstance(item, str) for item in data.get("redactions") or ()):
        raise RecordingError(f"{path}: corrupt manifest: 'redactions' must be strings")
    return data


def manifest_for_cast(name: str, header: Header, size: int = 0) -> dict[str, Any]:
    """The manifest of a recording whose one pane is the asciicast file `name`
    (made by asciinema or any other recorder), from what its header says."""
    fields = header.fields
    stamp = fields.get("timestamp")
    started = float(stamp) if isinstance(stamp, (int, float)) and not time_problem(stamp) \
        else 0.0
    command = next((fields[key] for key in ("command", "title")
                    if isinstance(fields.get(key), str) and fields[key]), name)
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "asciicast_version": header.version,
        "started_at": datetime.datetime.fromtimestamp(started, datetime.timezone.utc)
        .astimezone().isoformat(timespec="seconds") if started else "?",
        "started_unix": started,
        "duration": None,
        "terminal": {"cols": header.width, "rows": header.height},
        "attached": False,
        "redactions": [],
        "panes": [{"index": 0, "role": "main", "command": command, "command_run": command,
                   "pid": None, "start": 0.0, "end": None, "exit_status": None,
                   "exit_signal": None, "exit_signal_name": None, "note": None,
                   "file": name, "bytes": size}],
    }
