"""`autotrace export --cast` and `--svg --at TIME` (issue 12, point 4): one
file for other tools. The composite cast is played by the real asciinema (in
tmux: Debian's asciinema 2.2 opens /dev/tty) and shows every pane."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from conftest import autotrace_env, run_autotrace
from test_export_html import write_recording
from tmuxdriver import Tmux


def test_the_composite_cast_plays_in_asciinema_with_every_pane(tmp_path: Path) -> None:
    asciinema = shutil.which("asciinema")
    assert asciinema, "asciinema is installed by .ci/install-tools"
    recording = write_recording(tmp_path / "session")
    out = tmp_path / "view.cast"
    result = run_autotrace(["export", recording, "--cast", "-o", out])
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2
    events = [json.loads(line) for line in lines[1:]]
    assert [e[2] for e in events if e[1] == "m"] == ["checkpoint", "end"]
    tmux = Tmux(cols=header["width"], rows=header["height"] + 1)
    try:
        tmux.start([asciinema, "play", "-i", "0.5", str(out)])
        screen = tmux.wait_for(r"\[exit 0\]", timeout=60)
    finally:
        tmux.kill()
    assert "alpha 1" in screen and "alpha 3" in screen and "open(beta)" in screen
    assert re.search(r"0\s+exited 0\s+\./server", screen)
    assert re.search(r"1\s+exited 0\s+strace -p 42", screen)
    assert "REPLAY session" in screen


def test_the_composite_cast_in_v3(tmp_path: Path) -> None:
    recording = write_recording(tmp_path / "session")
    out = tmp_path / "view.cast"
    result = run_autotrace(["export", recording, "--cast", "--format", "v3", "-o", out])
    assert result.returncode == 0, result.stderr
    header = json.loads(out.read_text().splitlines()[0])
    assert header["version"] == 3 and header["term"]["cols"] > 0
    text = run_autotrace(["cat", out])  # autotrace's own reader takes it back
    assert text.returncode == 0 and "alpha 3" in text.stdout, text.stderr


def test_svg_shows_the_view_at_the_moment_asked(tmp_path: Path) -> None:
    recording = write_recording(tmp_path / "session")
    out = tmp_path / "view.svg"
    result = run_autotrace(["export", recording, "--svg", "--at", "0:02.5", "-o", out])
    assert result.returncode == 0, result.stderr
    root = ElementTree.parse(out).getroot()  # well-formed XML
    rows: dict[str, str] = {}
    for element in root.iter("{http://www.w3.org/2000/svg}text"):  # runs, row by row
        rows[element.get("y", "")] = rows.get(element.get("y", ""), "") + (element.text or "")
    text = "\n".join(rows.values())
    assert "alpha 2" in text and "open(beta)" in text
    assert "alpha 3" not in text and "close" not in text
    assert "00:02.5" in text
    # colours kept: beta was printed in red
    red = [t for t in root.iter("{http://www.w3.org/2000/svg}text") if t.text == "beta"]
    assert red and red[0].get("fill") == "#cd3131"


def test_svg_needs_a_time(tmp_path: Path) -> None:
    recording = write_recording(tmp_path / "session")
    for args in (["--svg"], ["--svg", "--at", "soon"]):
        result = run_autotrace(["export", recording, *args])
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr


def test_under_sudo_the_file_is_the_invoking_users(tmp_path: Path) -> None:
    recording = write_recording(tmp_path / "session")
    out = tmp_path / "view.svg"
    result = run_autotrace(["export", recording, "--svg", "--at", "1", "-o", out],
                           env=autotrace_env(SUDO_UID="65534", SUDO_GID="65534"))
    assert result.returncode == 0, result.stderr
    assert (out.stat().st_uid, out.stat().st_gid) == (65534, 65534)
    again = run_autotrace(["export", recording, "--svg", "--at", "1", "-o", out])
    assert "exists already; use --force" in again.stderr and again.returncode == 1
