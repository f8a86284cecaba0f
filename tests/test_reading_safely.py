"""Reading a recording reads only the recording (issue 8, items 2 and 4),
through the real CLI.

A pane file that is a link, a fifo, a device or a folder is refused in one
line naming it; names in the manifest are plain names, each used once; and
malformed input (JSON nested 100000 deep, times of 400 or 5000 digits, a NUL
in a name) is one line naming the file and the problem, exit 1, never an
internal error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import REPO, assert_one_line_error, autotrace_env

from autotrace.format.recording import PaneRecord, RecordingWriter, SessionRecord

SECRET = "root-only-secret-4711"


def run(*args: object, timeout: float = 60, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = autotrace_env(PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "autotrace", *map(str, args)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)


def make_recording(directory: Path, panes: int = 2) -> Path:
    """A small recording written by the real writer."""
    directory.mkdir()
    writer = RecordingWriter(directory, SessionRecord(cols=80, rows=24, started_unix=0.0))
    for index in range(panes):
        pane = writer.add_pane(PaneRecord(index, "main" if index == 0 else "tracer",
                                          f"echo {index}", f"echo {index}", 80, 24))
        for i in range(5):
            pane.output(i / 10, f"pane {index} line {i}\r\n")
    writer.close(1.0)
    return directory


def edit_manifest(directory: Path, change) -> None:
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


@pytest.fixture
def rec(tmp_path: Path) -> Path:
    return make_recording(tmp_path / "rec")


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "shadow"
    path.write_text(f"{SECRET}\n")
    path.chmod(0o600)
    return path


def refused(result: subprocess.CompletedProcess[str], what: str) -> str:
    line = assert_one_line_error(result)
    assert f"refused: it is {what}, not a regular file" in line, line
    assert SECRET not in result.stdout + result.stderr
    return line


# ---------------------------------------------------------------- item 2: only the recording


def test_a_pane_file_that_is_a_link_is_refused_by_cat_info_and_replay_tools(rec, secret):
    (rec / "pane-1.cast").unlink()
    (rec / "pane-1.cast").symlink_to(secret)
    line = refused(run("cat", rec), "a symbolic link")
    assert line.startswith(f"autotrace: {rec / 'pane-1.cast'}: ")


def test_pack_does_not_put_a_linked_file_into_the_bundle(rec, secret, tmp_path):
    (rec / "pane-1.cast").unlink()
    (rec / "pane-1.cast").symlink_to(secret)
    out = tmp_path / "out.tar.gz"
    refused(run("pack", rec, "-o", out), "a symbolic link")
    assert not out.exists()
    assert list(tmp_path.glob("*.tar.gz")) == [] and list(tmp_path.glob(".*partial")) == []


def test_pack_refuses_a_linked_log_too(rec, secret, tmp_path):
    (rec / "autotrace.log").symlink_to(secret)
    refused(run("pack", rec, "-o", tmp_path / "out.tar.gz"), "a symbolic link")


def test_a_linked_manifest_is_refused(rec, tmp_path):
    elsewhere = tmp_path / "elsewhere.json"
    (rec / "manifest.json").rename(elsewhere)
    (rec / "manifest.json").symlink_to(elsewhere)
    for command in ("cat", "info"):
        refused(run(command, rec), "a symbolic link")


def test_a_fifo_as_pane_file_is_refused_and_does_not_hang(rec):
    (rec / "pane-1.cast").unlink()
    os.mkfifo(rec / "pane-1.cast")
    refused(run("cat", rec, timeout=30), "a fifo")  # before: cat waited forever
    refused(run("pack", rec, "-o", rec.parent / "x.tar.gz", timeout=30), "a fifo")


def test_a_device_as_pane_file_is_refused(rec):
    # /dev/zero's own numbers (1, 5), made in the folder: it would never end.
    (rec / "pane-1.cast").unlink()
    os.mknod(rec / "pane-1.cast", 0o600 | 0o020000, os.makedev(1, 5))
    refused(run("cat", rec, timeout=30), "a device")
    (rec / "pane-1.cast").unlink()
    (rec / "pane-1.cast").symlink_to("/dev/zero")
    refused(run("cat", rec, timeout=30), "a symbolic link")


def test_a_folder_as_pane_file_is_refused(rec):
    (rec / "pane-1.cast").unlink()
    (rec / "pane-1.cast").mkdir()
    refused(run("cat", rec), "a directory")


def test_the_same_pane_file_named_twice_is_refused(rec):
    edit_manifest(rec, lambda m: m["panes"].append({**m["panes"][0], "index": 2}))
    for command in ("cat", "info", "pack"):
        line = assert_one_line_error(run(command, rec))
        assert "pane file 'pane-0.cast' is named twice" in line


def test_a_bundle_naming_one_file_two_thousand_times_is_refused_at_once(rec, tmp_path):
    edit_manifest(rec, lambda m: m["panes"].extend(
        {**m["panes"][0], "index": i} for i in range(2, 2000)))
    bundle = tmp_path / "many.tar.gz"
    with tarfile.open(bundle, "w:gz") as tar:
        tar.add(rec, arcname="rec")
    result = run("cat", bundle, timeout=30)
    assert "is named twice" in assert_one_line_error(result)


@pytest.mark.parametrize("name, why", [
    ("pane\x00.cast", "control characters"),
    ("\x1b]52;c;SGk=\x07\x1b]2;PWNED\x07.cast", "control characters"),
    ("p" * 300 + ".cast", "longer than 255 bytes"),
    ("sub/pane-0.cast", "a path, not a name in the folder"),
])
def test_pane_file_names_must_be_plain_names(rec, name, why):
    edit_manifest(rec, lambda m: m["panes"][0].update(file=name))
    for command in ("cat", "info"):
        result = run(command, rec)
        line = assert_one_line_error(result)
        assert f"is not allowed ({why})" in line
        assert line.isprintable() and len(line) < 300 + len(str(rec))


# ---------------------------------------------------------------- item 4: malformed input


def corrupt_manifest_line(rec: Path, text: str) -> str:
    (rec / "manifest.json").write_text(text)
    result = run("info", rec)
    line = assert_one_line_error(result)
    assert line.startswith(f"autotrace: {rec / 'manifest.json'}")
    return line


def test_manifest_nested_100000_deep(rec):
    assert "corrupt manifest: nested too deeply" in corrupt_manifest_line(rec, "[" * 100000)


@pytest.mark.parametrize("digits, why", [
    (400, "started_unix: time 999999999999999999999... is out of range"),
    (5000, "corrupt manifest: a number with too many digits"),
])
def test_manifest_time_with_hundreds_of_digits(rec, digits, why):
    text = json.dumps(json.loads((rec / "manifest.json").read_text()))
    assert '"started_unix": 0.0' in text
    text = text.replace('"started_unix": 0.0', f'"started_unix": {"9" * digits}')
    assert why in corrupt_manifest_line(rec, text)


def test_manifest_time_that_overflows_to_infinity(rec):
    text = json.dumps(json.loads((rec / "manifest.json").read_text()))
    text = text.replace('"duration": 1.0', '"duration": 1' + "0" * 400 + ".5")
    assert "duration: time inf is not a finite number" in corrupt_manifest_line(rec, text)


def append_to_pane(rec: Path, line: str) -> Path:
    cast = rec / "pane-1.cast"
    with open(cast, "a") as f:
        f.write(line + "\n" + '[0.9, "o", "after"]\n')
    return cast


@pytest.mark.parametrize("line, why", [
    ("[" * 100000, "nested too deeply"),
    ('[' + "9" * 400 + ', "o", "x"]', "out of range"),
    ('[' + "9" * 5000 + ', "o", "x"]', "too many digits"),
    ('[1' + "0" * 400 + '.0, "o", "x"]', "time inf is not a finite number"),
    ('[-1, "o", "x"]', "time -1 is out of range"),
    ('[NaN, "o", "x"]', "time nan is not a finite number"),
])
def test_malformed_cast_lines_name_the_file_line_and_problem(rec, line, why):
    cast = append_to_pane(rec, line)
    # pack copies pane files as they are, unless it redacts: then it reads them.
    for command in (["cat", rec], ["pack", "--redact", "x", "-o", rec.parent / "x.tgz", rec]):
        result = run(*command)
        message = assert_one_line_error(result)
        assert message.startswith(f"autotrace: {cast}:7: corrupt event: "), message
        assert why in message and len(message) < 200 + len(str(cast)), message
