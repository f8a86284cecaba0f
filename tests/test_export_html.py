"""`autotrace export --html` (issue 12, point 1): one self-contained page that
plays a recording in a real browser (chromium, headless), and `pack`'s
index.html (point 2)."""

from __future__ import annotations

import base64
import gzip
import json
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest
from browser import pane_text, run_steps
from conftest import assert_one_line_error, run_autotrace, trace


def write_recording(directory: Path) -> Path:
    """A two-pane recording in the documented format, with known times."""
    directory.mkdir()
    panes = [("./server", [(0.5, "o", "alpha 1\r\n"), (2.0, "o", "alpha 2\r\n"),
                           (3.0, "m", "user:checkpoint"), (3.2, "o", "alpha 3\r\n"),
                           (5.0, "m", "end")]),
             ("strace -p 42", [(1.0, "o", "open(\x1b[31mbeta\x1b[0m)\r\n"),
                               (4.0, "o", "close(beta)\r\n")])]
    manifest_panes = []
    for i, (command, events) in enumerate(panes):
        lines = [json.dumps({"version": 2, "width": 60, "height": 8, "command": command})]
        lines += [json.dumps([t, code, data]) for t, code, data in events]
        (directory / f"pane-{i}.cast").write_text("\n".join(lines) + "\n")
        manifest_panes.append({"index": i, "role": "main" if i == 0 else "tracer",
                               "command": command, "command_run": command, "pid": 42 + i,
                               "start": 0.0, "end": 5.0, "exit_status": 0,
                               "exit_signal": None, "exit_signal_name": None, "note": None,
                               "file": f"pane-{i}.cast", "bytes": 0, "cols": 60, "rows": 8})
    manifest = {"format": "autotrace-recording", "format_version": 1,
                "autotrace_version": "test", "host": "test", "kernel": "Linux",
                "user": "test", "started_at": "2026-01-01T00:00:00.000+00:00",
                "started_unix": 1767225600.0, "duration": 5.0,
                "terminal": {"cols": 120, "rows": 30}, "attached": False,
                "redactions": [], "panes": manifest_panes}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def page_data(page: Path) -> dict[str, Any]:
    """The data a page carries, read back as the page does (base64, gzip, JSON)."""
    packed = re.search(r'id="autotrace-data">\s*([A-Za-z0-9+/=\n]+?)\s*<', page.read_text())
    assert packed
    return json.loads(gzip.decompress(base64.b64decode(packed.group(1).replace("\n", ""))))


def all_text(data: dict[str, Any], pane: int) -> str:
    text = []
    for frame in data["panes"][pane]["frames"]:
        rows = frame[2] if frame[1] < 0 else [row for _, row in frame[2]]
        text += ["".join(row[::2]) for row in rows]
    return "\n".join(text)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("export")
    recording = write_recording(base / "session")
    result = run_autotrace(["export", recording, "--html", "-o", base / "session.html"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(base / "session.html")
    return base / "session.html"


def test_the_page_shows_each_pane_at_seeks_marker_jumps_and_search(exported: Path) -> None:
    reports = run_steps(exported.as_uri(), [
        "seek:1.5", "dump:early", "seek:3.5", "dump:later", "seek:0", "key:]",
        "dump:marker", "search:close", "dump:search", "zoom:1", "dump:zoomed"])
    early, later, marker, search, zoomed = reports
    assert "alpha 1" in pane_text(early, 0) and "alpha 2" not in pane_text(early, 0)
    assert "open(beta)" in pane_text(early, 1)
    assert "alpha 3" in pane_text(later, 0) and "close" not in pane_text(later, 1)
    # the view's own titles, with each pane's state, and its header
    assert re.search(r"0\s+running\s+\./server", pane_text(early, 0))
    assert "REPLAY" in early["header"] and "00:01.5 / 00:05.0" in early["header"]
    assert marker["t"] == 3.0 and marker["message"] == "marker: checkpoint"
    assert "alpha 2" in pane_text(marker, 0) and "alpha 3" not in pane_text(marker, 0)
    assert search["t"] == 4.0 and search["message"] == "/close: pane 1 at 4.0 s"
    assert "close(beta)" in pane_text(search, 1) and search["marks"] == 1
    assert list(zoomed["panes"]) == ["1"]
    # nothing fetched, from the browser's side: no resource entry at all
    assert all(report["requests"] == [] for report in reports)


def test_a_page_holds_everything_it_needs(exported: Path) -> None:
    data = page_data(exported)
    red = [row[i + 1] for frame in data["panes"][1]["frames"]
           for row in (frame[2] if frame[1] < 0 else [r for _, r in frame[2]])
           for i in range(0, len(row), 2) if row[i] == "beta"]
    assert red and data["styles"][red[0]] == "f31"  # the colour the pane printed
    text = exported.read_text()
    assert not re.search(r"""(src|href)\s*=|url\(|@import|https?://""", text)
    assert "default-src 'none'" in text  # and the page says so to the browser


def test_export_reads_a_bundle_and_a_lone_cast(tmp_path: Path) -> None:
    result, recording = trace(tmp_path, "echo from-a-real-session", options=["-q"])
    assert result.returncode == 0, result.stderr
    bundle = tmp_path / "b.tar.gz"
    assert run_autotrace(["pack", recording.directory, "-o", bundle]).returncode == 0
    for source in (bundle, recording.directory / "pane-0.cast"):
        out = tmp_path / f"{source.name}.html"
        result = run_autotrace(["export", source, "--html", "-o", out])
        assert result.returncode == 0, result.stderr
        assert "from-a-real-session" in all_text(page_data(out), 0)


def test_redact_masks_the_page_as_pack_does(tmp_path: Path) -> None:
    recording = write_recording(tmp_path / "session")
    out = tmp_path / "r.html"
    result = run_autotrace(["export", recording, "--html", "--redact", "beta", "-o", out])
    assert result.returncode == 0, result.stderr
    data = page_data(out)
    assert "beta" not in all_text(data, 1) and "close(«redacted»)" in all_text(data, 1)


def test_pack_adds_the_player_as_index_html(tmp_path: Path) -> None:
    recording = write_recording(tmp_path / "session")
    bundle = tmp_path / "s.tar.gz"
    assert run_autotrace(["pack", recording, "-o", bundle]).returncode == 0
    with tarfile.open(bundle) as tar:
        member = tar.extractfile("session/index.html")
        assert member is not None
        (tmp_path / "index.html").write_bytes(member.read())
    assert "alpha 3" in all_text(page_data(tmp_path / "index.html"), 0)
    # and the bundle still replays, its index.html being no pane
    info = run_autotrace(["info", bundle])
    assert info.returncode == 0, info.stderr


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    assert "no such recording" in assert_one_line_error(
        run_autotrace(["export", tmp_path / "missing", "--html"]))
    assert run_autotrace(["export", tmp_path, "--svg"]).returncode == 2  # no --at
    cast = write_recording(tmp_path / "session") / "pane-0.cast"
    assert "--redact needs a recording folder or bundle" in assert_one_line_error(
        run_autotrace(["export", cast, "--html", "--redact", "x", "-o", tmp_path / "p.html"]))
    assert "invalid --redact regex" in assert_one_line_error(run_autotrace(
        ["export", cast.parent, "--html", "--redact", "(", "-o", tmp_path / "p.html"]))


def test_a_recording_too_large_for_a_page_says_so(tmp_path: Path) -> None:
    from autotrace.errors import UserError
    from autotrace.format.sources import open_recording
    from autotrace.share.recorded import RecordedFrames

    with open_recording(write_recording(tmp_path / "session")) as recording, \
            RecordedFrames(recording, "session", max_text=10) as frames, \
            pytest.raises(UserError, match="too large for one page"):
        frames.run()


def test_frames_taken_in_worker_processes_are_the_same(tmp_path: Path) -> None:
    from autotrace.format.sources import open_recording
    from autotrace.share import recorded

    def styled(data: dict[str, Any]) -> list[Any]:
        """Every frame and title with its styles' CSS classes, not their indices."""
        css = data["styles"]

        def rows(items: list[Any]) -> list[Any]:
            return [[x if i % 2 == 0 else css[x] for i, x in enumerate(r)] for r in items]

        return [([(t, s, rows(f) if s < 0 else rows([r for _, r in f]))
                  for t, s, f in pane["frames"]],
                 [(t, rows(variants)) for t, *variants in pane["titles"]])
                for pane in data["panes"]]

    with open_recording(write_recording(tmp_path / "session")) as recording:
        one = recorded.page_data(recording, "s", workers=1)
        two = recorded.page_data(recording, "s", workers=2)
    assert styled(one) == styled(two) and len(one["panes"][1]["frames"]) > 1


def test_findings_are_on_the_seek_bar(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parent.parent / "recordings" / "story-truncation"
    out = tmp_path / "story.html"
    result = run_autotrace(["export", shipped, "--html", "-o", out])
    assert result.returncode == 0, result.stderr
    expected = [json.loads(line) for line in (shipped / "findings.jsonl").read_text().splitlines()
                if line.strip()]
    found = page_data(out)["findings"]
    assert expected and [f[2] for f in found] == [f["title"] for f in expected]
    report = run_steps(out.as_uri(), ["dump:start"])[0]
    assert report["requests"] == [] and len(report["findings"]) == len(expected)
    assert expected[0]["title"] in report["findings"][0]  # the tick's tooltip


def test_the_page_draws_the_lenses_the_view_draws(tmp_path: Path) -> None:
    """The tcpdump pane's TC flag is the word TRUNCATED on the page, as in the
    terminal (view/lenses.py); the recording itself keeps tcpdump's `|`."""
    shipped = Path(__file__).resolve().parent.parent / "recordings" / "story-truncation"
    out = tmp_path / "story.html"
    result = run_autotrace(["export", shipped, "--html", "-o", out])
    assert result.returncode == 0, result.stderr
    data = page_data(out)
    tcpdump = next(i for i, pane in enumerate(data["panes"]) if "tcpdump" in pane["command"])
    runs = [run for frame in data["panes"][tcpdump]["frames"]
            for row in (frame[2] if frame[1] < 0 else [r for _, r in frame[2]])
            for run in zip(row[::2], row[1::2])]
    truncated = [style for text, style in runs if "TRUNCATED" in text]
    assert truncated, "no TRUNCATED on the page"
    assert all(style != 0 for style in truncated)  # drawn in the lens's style, not plain
    assert "TRUNCATED" not in (shipped / f"pane-{tcpdump}.cast").read_text()
