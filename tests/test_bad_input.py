"""Bad input gets a clear answer: a pane that says what went wrong, or one line
on stderr and a non-zero exit. Never a traceback."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess

import pytest

from autotrace import cli
from autotrace.live.hints import already_traced_hint, refusal_hint
from tests.conftest import (
    RecordingFiles,
    assert_one_line_error,
    processes_with,
    run_autotrace,
    trace,
    wait_for,
)

# Root whose capabilities were dropped, as in a container: what the hints say here.
CAPTURE_HINT = ("packet capture was refused: autotrace runs as root but without CAP_NET_RAW "
                "(a container? start it with --cap-add=NET_RAW)")
PTRACE_HINT = ("ptrace was refused: autotrace runs as root but without CAP_SYS_PTRACE "
               "(a container? start it with --cap-add=SYS_PTRACE)")
# Root without the capabilities tracers need: how a normal user runs autotrace.
WITHOUT_TRACING_CAPS = ["setpriv", "--bounding-set=-net_raw,-net_admin,-sys_ptrace",
                        "--inh-caps=-net_raw,-net_admin,-sys_ptrace"]
# Root that cannot write just anywhere.
WITHOUT_DAC_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                        "--inh-caps=-dac_override,-dac_read_search"]
MAIN_GOES_ON = "sh -c 'sleep 1; echo main kept going'"


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("this test drops root's capabilities, so it runs as root (like CI)")


def info_of(rec: RecordingFiles) -> str:
    result = run_autotrace(["info", rec.directory])
    assert result.returncode == 0, result.stderr
    return result.stdout


def pane_section(info: str, index: int) -> str:
    return info.split(f"\npane {index} ")[1].split("\npane ")[0]


# ---------------------------------------------------------------- commands that do not exist


@pytest.mark.parametrize("tracers", [[], ["sleep 0.2"]], ids=["alone", "with-tracer"])
def test_missing_main_command_records_the_shells_error_and_exits_127(tmp_path,
                                                                     tracers) -> None:
    result, rec = trace(tmp_path, "no-such-program-4711 --flag", *tracers)
    assert result.returncode == 127
    assert "Traceback" not in result.stderr
    assert re.search(r"no-such-program-4711: (command )?not found", rec.output(0))
    assert rec.panes[0]["exit_status"] == 127
    assert "status:   exited 127" in pane_section(info_of(rec), 0)


def test_missing_tracer_gets_127_and_the_main_goes_on(tmp_path) -> None:
    result, rec = trace(tmp_path, MAIN_GOES_ON, "no-such-tracer-4711 -p PID", "echo fine")
    assert result.returncode == 0, result.stderr
    assert "main kept going" in rec.output(0)
    assert "no-such-tracer-4711: not found" in rec.output(1)
    assert rec.panes[1]["exit_status"] == 127
    assert "fine" in rec.output(2)
    info = info_of(rec)
    assert "status:   exited 127" in pane_section(info, 1)
    assert "status:   exited 0" in pane_section(info, 0)


def test_tracer_with_a_shell_syntax_error_gets_the_shells_message(tmp_path) -> None:
    result, rec = trace(tmp_path, "echo main", "echo 'unbalanced")
    assert result.returncode == 0
    assert "Syntax error" in rec.output(1) or "unterminated" in rec.output(1)
    assert rec.panes[1]["exit_status"] == 2


# ---------------------------------------------------------------- the recording directory


def test_non_empty_recording_directory_is_refused_before_anything_starts(tmp_path) -> None:
    directory = tmp_path / "rec"
    directory.mkdir()
    (directory / "old-notes.txt").write_text("keep me")
    started = tmp_path / "started"
    line = assert_one_line_error(run_autotrace(["-l", directory, f"touch {started}"]))
    assert str(directory) in line and "not empty" in line
    assert not started.exists()
    assert sorted(os.listdir(directory)) == ["old-notes.txt"]


def test_recording_directory_that_is_a_file_is_refused(tmp_path) -> None:
    (tmp_path / "file").write_text("")
    line = assert_one_line_error(run_autotrace(["-l", tmp_path / "file", "true"]))
    assert "not a directory" in line


@pytest.mark.parametrize("below", [False, True], ids=["existing", "to-create"])
def test_unwritable_recording_directory_is_refused(tmp_path, below) -> None:
    require_root()
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    target = locked / "rec" if below else locked
    started = tmp_path / "started"
    line = assert_one_line_error(run_autotrace(["-l", target, f"touch {started}"],
                                               prefix=WITHOUT_DAC_OVERRIDE))
    assert str(target) in line
    assert "not writable" in line or "Permission denied" in line
    assert not started.exists()


# ---------------------------------------------------------------- refused tracers


def test_refused_packet_capture_says_how_to_fix_it(tmp_path) -> None:
    require_root()
    result, rec = trace(tmp_path, MAIN_GOES_ON, "tcpdump -i lo", "echo other tracer",
                        prefix=WITHOUT_TRACING_CAPS)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert CAPTURE_HINT in rec.output(1)
    assert rec.panes[1]["note"] == CAPTURE_HINT
    assert f"note:     {CAPTURE_HINT}" in pane_section(info_of(rec), 1)
    assert CAPTURE_HINT in result.stderr  # headless: the notice reaches the user too
    assert "main kept going" in rec.output(0)
    assert "other tracer" in rec.output(2)


@pytest.fixture
def other_users_process(marker):
    """A process of user nobody, which root without CAP_SYS_PTRACE may not trace."""
    proc = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             "sleep", f"30{marker}"])
    wait_for(lambda: processes_with(marker), what="nobody's sleep")
    yield proc.pid
    proc.kill()
    proc.wait()


def test_refused_ptrace_says_how_to_fix_it(tmp_path, other_users_process) -> None:
    require_root()
    result, rec = trace(tmp_path, MAIN_GOES_ON, f"strace -p {other_users_process}",
                        prefix=WITHOUT_TRACING_CAPS)
    assert result.returncode == 0, result.stderr
    assert "Operation not permitted" in rec.output(1)
    assert PTRACE_HINT in rec.output(1)
    assert f"note:     {PTRACE_HINT}" in pane_section(info_of(rec), 1)
    assert "main kept going" in rec.output(0)


def test_second_ptrace_tracer_on_one_process_is_told_why(tmp_path) -> None:
    result, rec = trace(tmp_path, MAIN_GOES_ON, "strace -p PID", "strace -p PID")
    assert result.returncode == 0, result.stderr
    first, second = rec.panes[1], rec.panes[2]
    assert "attached" in rec.output(1)
    assert "Operation not permitted" in rec.output(2)
    hint = already_traced_hint(rec.panes[0]["pid"], first["pid"])
    assert second["note"] == hint
    assert hint in rec.output(2)
    assert "main kept going" in rec.output(0)


def test_refusal_hints_name_the_right_fix() -> None:
    nobody_traces = lambda pid: 0  # noqa: E731
    traced_by_7 = lambda pid: 7 if pid == 42 else 0  # noqa: E731
    refused = "strace: attach: ptrace(PTRACE_SEIZE, 42): Operation not permitted"
    assert refusal_hint(refused, nobody_traces).startswith("ptrace was refused")
    assert refusal_hint(refused, traced_by_7) == already_traced_hint(42, 7)
    capture = "tcpdump: lo: You don't have permission to perform this capture on that device"
    assert refusal_hint(capture, nobody_traces).startswith("packet capture was refused")
    assert refusal_hint("listening on lo, link-type EN10MB", nobody_traces) is None


# ---------------------------------------------------------------- unreadable recordings


def test_cat_and_info_of_a_missing_path(tmp_path) -> None:
    for command in ("cat", "info"):
        line = assert_one_line_error(run_autotrace([command, tmp_path / "nowhere"]))
        assert str(tmp_path / "nowhere") in line


def test_cat_and_info_of_a_folder_that_is_not_a_recording(tmp_path) -> None:
    for command in ("cat", "info"):
        line = assert_one_line_error(run_autotrace([command, tmp_path]))
        assert "not an autotrace recording" in line


@pytest.fixture
def recording(tmp_path) -> RecordingFiles:
    result, rec = trace(tmp_path, "echo hello", "echo tracer")
    assert result.returncode == 0
    return rec


@pytest.mark.parametrize("damage", ["", "{", '{"format": "autotrace-recording", "panes": [',
                                    "\x00\xff garbage", "[]", '"a string"'])
def test_cat_and_info_of_a_corrupt_manifest(recording, damage) -> None:
    (recording.directory / "manifest.json").write_bytes(damage.encode("latin-1"))
    for command in ("cat", "info"):
        line = assert_one_line_error(run_autotrace([command, recording.directory]))
        assert "manifest" in line


def test_cat_of_a_missing_or_corrupt_pane_file(recording) -> None:
    (recording.directory / "pane-1.cast").unlink()
    assert "pane-1.cast" in assert_one_line_error(run_autotrace(["cat", recording.directory]))
    (recording.directory / "pane-1.cast").write_text("not a header\n")
    assert "pane-1.cast:1" in assert_one_line_error(
        run_autotrace(["cat", recording.directory]))


WRONG_TYPES = [None, 0, -1, 1.5, "x", [], {}, True]


def test_manifest_values_of_the_wrong_type_never_crash(recording, capsys) -> None:
    """Every value in the manifest replaced by each wrong type: exit 0 or a one-line 1."""
    original = recording.manifest
    paths = [(key,) for key in original if key != "panes"]
    paths += [("panes", 0, key) for key in original["panes"][0]]
    for path in paths:
        for value in WRONG_TYPES:
            manifest = copy.deepcopy(original)
            target = manifest
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
            (recording.directory / "manifest.json").write_text(json.dumps(manifest))
            for command in ("cat", "info"):
                code = cli.main([command, str(recording.directory)])
                err = capsys.readouterr().err
                assert "internal error" not in err, (path, value, command, err)
                assert code == 0 or (code == 1 and len(err.splitlines()) == 1), (
                    path, value, command, err)
