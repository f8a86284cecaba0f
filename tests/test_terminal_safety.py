"""No text from a recording, a bundle, a command line or a file name reaches
the terminal raw, error messages included (issue 8, item 3).

The end-to-end cases run the real autotrace in tmux with set-clipboard on and
ask tmux itself what the text did: the pane title (OSC 2), the paste buffers
(OSC 52) and the mouse mode (CSI ?1000h). A control case prints the same
bytes raw first, so the test is known to see each of those effects.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
from conftest import AUTOTRACE, REPO, assert_one_line_error, run_autotrace
from tmuxdriver import Tmux

from autotrace.sanitise import (
    ELLIPSIS,
    NAME_LIMIT,
    cell_text,
    message,
    one_line,
    printable,
    shorten,
    spelled_out,
)

# Sets the clipboard to "Hi", the title to PWNED, and turns mouse reporting on.
ESCAPES = "\x1b]52;c;SGk=\x07\x1b]2;PWNED\x07\x1b[?1000h"
# Long, but a legal file name (under 255 bytes), so the error is about the name.
HOSTILE_NAME = ESCAPES + "A" * 200 + ".cast"


# ---------------------------------------------------------------- the sanitiser


def test_message_spells_out_what_a_terminal_would_act_on() -> None:
    line = message(f"/tmp/{HOSTILE_NAME}: cannot read")
    assert line.isprintable()
    assert line.startswith("/tmp/\\x1b]52;c;SGk=\\x07\\x1b]2;PWNED\\x07\\x1b[?1000h")
    assert line.endswith("AAA.cast: cannot read")
    assert ELLIPSIS in line and len(line.split()[0]) == len("/tmp/") + NAME_LIMIT
    deep = message("/".join(["d" * 100] * 3000))
    assert len(deep) == 500 and deep.endswith("d" * 100)


def test_message_is_one_line_and_bounded() -> None:
    assert message("a\nb\r\tc\u202ed") == "a\\x0ab\\x0d\\x09c\\u202ed"
    assert len(message("word " * 1000)) == 500
    assert message("x\udce9y") == "x\\xe9y"  # a file name's undecodable byte


def test_shorten_keeps_both_ends() -> None:
    assert shorten("abcdefghij", 5) == "ab…ij"
    assert shorten("abcdefghij", 4) == "ab…j"
    assert shorten("short", 5) == "short"


def test_every_form_agrees_on_what_is_unsafe() -> None:
    unsafe = "\x1b\x07\x9b\u202e\u200b"
    assert printable(f"a{unsafe}b") == "ab"
    assert cell_text(f"a{unsafe}b") == "a?????b"
    assert one_line(f"a\n{unsafe}\tb") == "a ????? b"
    assert spelled_out(f"a{unsafe}b") == "a\\x1b\\x07\\x9b\\u202e\\u200bb"
    kept = "中文 e\u0301 \ufffd"
    assert printable(kept) == cell_text(kept) == one_line(kept) == spelled_out(kept) == kept


# ---------------------------------------------------------------- in a real terminal


@pytest.fixture
def shell() -> Tmux:
    driver = Tmux(cols=200, rows=40)
    driver.start(["sh"], cwd=REPO)
    driver.tmux("set-option", "-g", "set-clipboard", "on")
    driver.wait_for(r"(?m)^[$#]")
    yield driver
    driver.kill()


def effects(tmux: Tmux) -> dict[str, str]:
    """What escape sequences could have changed in tmux: title, buffers, mouse."""
    shown = tmux.tmux("display-message", "-p", "-t", tmux.session,
                      "#{pane_title}|#{mouse_any_flag}").strip()
    title, mouse = shown.rsplit("|", 1)
    return {"title": title, "mouse": mouse, "buffers": tmux.tmux("list-buffers").strip()}


def run_in(tmux: Tmux, argv: list[str]) -> str:
    """Run a command at the shell prompt; the screen once it has ended."""
    tmux.tmux("clear-history", "-t", tmux.session)
    tmux.send("clear", "Enter")
    tmux.type(f"{shlex.join(argv)}; echo \"[done $?]\"\n")
    return tmux.wait_for(r"\[done \d+\]", timeout=60)


def test_the_terminal_effects_are_seen_when_the_bytes_are_raw(shell: Tmux) -> None:
    # The control: without autotrace in between, tmux does act on them.
    before = effects(shell)
    run_in(shell, ["printf", ESCAPES.replace("\x1b", "\\033").replace("\x07", "\\007")])
    after = effects(shell)
    assert after["title"] == "PWNED" != before["title"]
    assert after["mouse"] == "1" and "Hi" in shell.tmux("show-buffer")


def hostile_recording(tmp_path: Path) -> Path:
    directory = tmp_path / "rec"
    shutil.copytree(REPO / "recordings" / "dns-lookup", directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["panes"][1]["file"] = HOSTILE_NAME
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def hostile_cases(tmp_path: Path) -> dict[str, list[str]]:
    bundle = tmp_path / f"{ESCAPES}.tar.gz"
    bundle.write_bytes(b"not a bundle")
    tracer = f"sh -c 'echo Operation not permitted; sleep 1' # {ESCAPES}"
    return {
        "a pane file name in a manifest": ["cat", str(hostile_recording(tmp_path))],
        "a bundle's path": ["cat", str(bundle)],
        "a missing bundle's path": ["info", str(tmp_path / f"gone{ESCAPES}.tar.gz")],
        "a tracer command in a notice": ["--headless", "-l", str(tmp_path / "live"),
                                         "sleep 0.5", tracer],
        "a command-line argument": ["cat", str(tmp_path), f"--{ESCAPES}"],
        "a bundle's path printed by pack": ["pack", str(REPO / "recordings" / "dns-lookup"),
                                            "-o", str(tmp_path / f"out{ESCAPES}.tar.gz")],
    }


@pytest.mark.tmux
def test_no_escape_from_any_message_reaches_the_terminal(shell: Tmux, tmp_path: Path) -> None:
    clean = effects(shell)
    assert clean["buffers"] == "" and clean["mouse"] == "0"
    for case, args in hostile_cases(tmp_path).items():
        screen = run_in(shell, [*AUTOTRACE, *args])
        assert effects(shell) == clean, f"{case}: the terminal was changed"
        assert "PWNED\\x07" in screen, f"{case}: the name is not shown spelled out:\n{screen}"


def test_a_hostile_pane_file_name_is_one_short_line(tmp_path: Path) -> None:
    result = run_autotrace(["cat", hostile_recording(tmp_path)])
    line = assert_one_line_error(result)
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "\\x1b]2;PWNED\\x07" in line and ELLIPSIS in line
    assert all(len(name) <= NAME_LIMIT for name in line.replace("/", " ").split()), line


def test_usage_errors_are_sanitised_too(tmp_path: Path) -> None:
    result = run_autotrace(["cat", tmp_path, f"--{ESCAPES}"])
    assert result.returncode == 2
    assert "\x1b" not in result.stderr and "\\x1b]2;PWNED" in result.stderr
