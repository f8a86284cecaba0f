"""The recording on disk (docs/recording-format.md): writer, reader, and the files
themselves as other tools (plain json, the real `asciinema cat`) see them."""

from __future__ import annotations

import json
import os
import select
import shutil
import stat
import threading
import time
from pathlib import Path

import pytest
from ptyprocess import PtyProcess

from autotrace.format.errors import RecordingError
from autotrace.format.manifest import FORMAT_VERSION
from autotrace.format.reader import Recording
from autotrace.format.recording import (
    PaneRecord,
    RecordingWriter,
    SessionRecord,
    default_directory,
    prepare_directory,
)
from tests.conftest import RecordingFiles, assert_one_line_error, autotrace_env, run_autotrace

STARTED = 1_795_323_180.25


def new_writer(directory: Path, panes: int = 2) -> tuple[RecordingWriter, list]:
    writer = RecordingWriter(directory, SessionRecord(cols=100, rows=30, started_unix=STARTED))
    pane_writers = []
    for index in range(panes):
        command = "getent hosts localhost" if index == 0 else "strace -f -p PID"
        record = PaneRecord(index=index, role="main" if index == 0 else "tracer",
                            command=command, command_run=command.replace("PID", "4242"),
                            cols=100, rows=30, pid=4242 + index, start=0.001 * index)
        pane_writers.append(writer.add_pane(record))
    return writer, pane_writers


def append_lines(path: Path, *lines: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(lines))


def events(directory: Path, index: int) -> list[tuple[float, str, str]]:
    return [(e.t, e.kind, e.data) for e in Recording.open(directory).events(index)]


# ---------------------------------------------------------------- writer and reader


def test_round_trip_through_writer_and_reader(tmp_path) -> None:
    writer, (main, tracer) = new_writer(tmp_path)
    main.output(0.5, "hello\r\n")
    tracer.output(0.25, "openat(...) = 3\r\n")
    main.resize(0.75, "120x40")
    writer.marker(1.0, "user:here")
    main.output(1.5, "caf\u00e9\r\n")
    writer.close(2.0)

    assert events(tmp_path, 0) == [(0.5, "o", "hello\r\n"), (0.75, "r", "120x40"),
                                   (1.0, "m", "user:here"), (1.5, "o", "caf\u00e9\r\n")]
    assert events(tmp_path, 1) == [(0.25, "o", "openat(...) = 3\r\n")]
    manifest = Recording.open(tmp_path).manifest
    assert manifest["duration"] == 2.0
    assert manifest["format_version"] == FORMAT_VERSION


def test_files_are_plain_asciicast_v2_and_json(tmp_path) -> None:
    writer, (main, _) = new_writer(tmp_path)
    main.output(0.5, "hi")
    writer.close(1.0)
    rec = RecordingFiles(tmp_path)
    manifest = rec.manifest
    assert manifest["format"] == "autotrace-recording"
    assert manifest["terminal"] == {"cols": 100, "rows": 30}
    assert manifest["started_unix"] == STARTED
    for key in ("autotrace_version", "host", "kernel", "user", "started_at", "attached",
                "redactions"):
        assert key in manifest
    pane = manifest["panes"][1]
    assert {k: pane[k] for k in ("index", "role", "command", "command_run", "pid", "file")} == {
        "index": 1, "role": "tracer", "command": "strace -f -p PID",
        "command_run": "strace -f -p 4242", "pid": 4243, "file": "pane-1.cast"}
    header = rec.pane_file(1).header
    assert (header["version"], header["width"], header["height"]) == (2, 100, 30)
    assert header["timestamp"] == int(STARTED)  # one time origin for every pane
    assert header["command"] == "strace -f -p 4242"
    assert rec.pane_file(0).events == [[0.5, "o", "hi"]]


def test_each_event_is_on_disk_as_soon_as_it_is_written(tmp_path) -> None:
    writer, (main, _) = new_writer(tmp_path)
    main.output(0.1, "first")
    # Nothing closed or flushed by the test: a crash here must not lose it.
    assert RecordingFiles(tmp_path).output(0) == "first"
    writer.close(0.2)


def test_torn_last_line_is_ignored(tmp_path) -> None:
    writer, (main, _) = new_writer(tmp_path)
    main.output(0.1, "kept")
    append_lines(tmp_path / "pane-0.cast", '[0.2, "o", "torn by a cra')
    assert events(tmp_path, 0) == [(0.1, "o", "kept")]


def test_last_line_without_newline_but_whole_is_kept(tmp_path) -> None:
    new_writer(tmp_path)
    append_lines(tmp_path / "pane-0.cast", '[0.1, "o", "a"]\n', '[0.2, "o", "b"]')
    assert events(tmp_path, 0) == [(0.1, "o", "a"), (0.2, "o", "b")]


def test_unknown_event_codes_are_ignored(tmp_path) -> None:
    new_writer(tmp_path)
    append_lines(tmp_path / "pane-0.cast", '[0.1, "o", "a"]\n', '[0.2, "i", "typed"]\n',
                 '[0.3, "x-future", "whatever"]\n', '[0.4, "o", "b", "extra field"]\n')
    assert events(tmp_path, 0) == [(0.1, "o", "a"), (0.4, "o", "b")]


def test_corrupt_line_in_the_middle_names_file_and_line(tmp_path) -> None:
    new_writer(tmp_path)
    append_lines(tmp_path / "pane-0.cast", '[0.1, "o", "a"]\n', "not json at all\n",
                 '[0.3, "o", "b"]\n')
    with pytest.raises(RecordingError, match=r"pane-0\.cast:3: "):
        events(tmp_path, 0)
    line = assert_one_line_error(run_autotrace(["cat", tmp_path]))
    assert f"{tmp_path / 'pane-0.cast'}:3" in line


@pytest.mark.parametrize("bad", ['{"t": 1}', '[0.1, "o"]', '["0.1", "o", "a"]',
                                 '[0.1, 5, "a"]', '[true, "o", "a"]'])
def test_a_line_of_the_wrong_shape_in_the_middle_is_an_error(tmp_path, bad: str) -> None:
    new_writer(tmp_path)
    append_lines(tmp_path / "pane-1.cast", bad + "\n", '[0.3, "o", "b"]\n')
    with pytest.raises(RecordingError, match=r"pane-1\.cast:2: "):
        events(tmp_path, 1)


def test_times_going_backwards_are_clamped(tmp_path) -> None:
    new_writer(tmp_path)
    append_lines(tmp_path / "pane-0.cast", '[0.5, "o", "a"]\n', '[0.2, "o", "b"]\n',
                 '[0.7, "o", "c"]\n')
    assert [t for t, _, _ in events(tmp_path, 0)] == [0.5, 0.5, 0.7]


def test_writer_never_writes_decreasing_times(tmp_path) -> None:
    writer, (main, _) = new_writer(tmp_path)
    main.output(0.5, "a")
    main.output(0.4, "b")
    writer.close(1.0)
    assert RecordingFiles(tmp_path).pane_file(0).times() == [0.5, 0.5]


def test_newer_format_version_is_refused_with_a_clear_line(tmp_path) -> None:
    writer, _ = new_writer(tmp_path)
    writer.close(1.0)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    line = assert_one_line_error(run_autotrace(["info", tmp_path]))
    assert "upgrade autotrace" in line


def test_unknown_manifest_keys_are_ignored(tmp_path) -> None:
    writer, (main, _) = new_writer(tmp_path)
    main.output(0.5, "hello\r\n")
    writer.close(1.0)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["from_the_future"] = {"x": 1}
    manifest["panes"][0]["also_new"] = [1, 2]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    result = run_autotrace(["cat", tmp_path])
    assert result.returncode == 0
    assert "[0] hello" in result.stdout


@pytest.mark.parametrize("name", ["../escape.cast", "/etc/passwd", ".hidden", "a/b.cast"])
def test_pane_file_names_cannot_point_outside_the_recording(tmp_path, name: str) -> None:
    writer, _ = new_writer(tmp_path)
    writer.close(1.0)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["panes"][0]["file"] = name
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert "not allowed" in assert_one_line_error(run_autotrace(["cat", tmp_path]))


def test_manifest_is_replaced_atomically(tmp_path) -> None:
    writer, _ = new_writer(tmp_path, panes=1)
    manifest = tmp_path / "manifest.json"
    before = open(manifest, encoding="utf-8")  # noqa: SIM115 - held open across the saves
    writer.session.panes.extend(
        PaneRecord(index=i, role="tracer", command="x" * 2000, command_run="x" * 2000,
                   cols=80, rows=24) for i in range(1, 40))
    torn: list[str] = []
    done = threading.Event()

    def read_all_the_time() -> None:
        while not done.is_set():
            try:
                json.loads(manifest.read_text(encoding="utf-8"))
            except json.JSONDecodeError as err:
                torn.append(str(err))

    reader = threading.Thread(target=read_all_the_time)
    reader.start()
    try:
        for _ in range(150):
            writer.save_manifest()
    finally:
        done.set()
        reader.join()
    assert torn == []
    # A new file was renamed over the old one, which a reader that had it open
    # still sees whole, unchanged; a rewrite in place would have changed it.
    with before:
        assert os.fstat(before.fileno()).st_nlink == 0
        assert json.loads(before.read())["panes"][0]["index"] == 0
        assert len(json.loads(manifest.read_text())["panes"]) == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "pane-0.cast"]


# ---------------------------------------------------------------- where recordings go


def test_prepare_directory_refuses_non_empty_and_files(tmp_path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    (tmp_path / "file").write_text("")
    with pytest.raises(RecordingError, match="is not empty"):
        prepare_directory(tmp_path / "full")
    with pytest.raises(RecordingError, match="not a directory"):
        prepare_directory(tmp_path / "file")
    with pytest.raises(RecordingError, match="cannot create"):
        prepare_directory(tmp_path / "file" / "below")
    assert prepare_directory(tmp_path / "new" / "deeper").path.is_dir()


def test_default_directories_are_unique_per_session(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    first = prepare_directory(default_directory("sleep 1")).path
    second = prepare_directory(default_directory("sleep 1")).path
    assert first != second
    assert first.parent == tmp_path / "autotrace" / "recordings"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_default_location_is_per_user_and_private(tmp_path) -> None:
    home, state = tmp_path / "home", tmp_path / "state"
    home.mkdir()
    env = autotrace_env(HOME=str(home), XDG_STATE_HOME=str(state))
    result = run_autotrace(["--headless", "echo private"], env=env)
    assert result.returncode == 0, result.stderr
    root = state / "autotrace" / "recordings"
    (directory,) = root.iterdir()
    assert directory.name.endswith("-echo")
    assert mode(directory) == 0o700
    # Folders autotrace created on the way are private too: names of recordings
    # (commands, times) are nobody else's business.
    assert mode(root) == 0o700 and mode(state / "autotrace") == 0o700
    assert "private" in RecordingFiles(directory).output(0)
    # The path and the command that reads it are printed at the end.
    assert f"recorded to {directory}" in result.stderr
    assert f"autotrace cat {directory}" in result.stderr

    no_xdg = autotrace_env(HOME=str(home))
    no_xdg.pop("XDG_STATE_HOME", None)
    assert run_autotrace(["--headless", "true"], env=no_xdg).returncode == 0
    (directory,) = (home / ".local" / "state" / "autotrace" / "recordings").iterdir()
    assert mode(directory) == 0o700


def test_under_sudo_the_recording_belongs_to_the_invoking_user(tmp_path) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test runs as root, like CI")
    directory = tmp_path / "by-sudo" / "rec"
    env = autotrace_env(SUDO_UID="65534", SUDO_GID="65534", SUDO_USER="nobody")
    result = run_autotrace(["--headless", "-l", directory, "echo mine"], env=env)
    assert result.returncode == 0, result.stderr
    for path in [directory.parent, directory, *directory.iterdir()]:
        assert (path.stat().st_uid, path.stat().st_gid) == (65534, 65534), path
    assert RecordingFiles(directory).manifest["user"] == "nobody"


# ---------------------------------------------------------------- other players


def test_real_asciinema_cat_reads_every_pane(tmp_path) -> None:
    asciinema = shutil.which("asciinema")
    assert asciinema, "asciinema is installed by .ci/run"
    directory = tmp_path / "rec"
    result = run_autotrace([
        "--headless", "-l", directory, "--size", "100x30",
        "sh -c 'sleep 0.3; echo main says \u00e9t\u00e9'",
        "sh -c 'echo tracer one for PID'",
        "strace -e trace=write -p PID",
    ])
    assert result.returncode == 0, result.stderr
    pid = RecordingFiles(directory).panes[0]["pid"]
    expected = ["main says \u00e9t\u00e9", f"tracer one for {pid}", 'write(1, "main says']
    for index, text in enumerate(expected):
        code, played = run_in_pty([asciinema, "cat", str(directory / f"pane-{index}.cast")])
        assert code == 0, played
        assert text in played


def run_in_pty(argv: list[str], timeout: float = 30) -> tuple[int, str]:
    """Run a program that insists on a terminal (`asciinema cat` opens /dev/tty)."""
    proc = PtyProcess.spawn(argv, dimensions=(30, 100))
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while select.select([proc.fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            try:
                chunk = os.read(proc.fd, 65536)
            except OSError:  # EIO: the program ended and closed the pty
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait()
    finally:
        proc.close(force=True)
    return proc.exitstatus, b"".join(chunks).decode("utf-8", "replace")


def test_a_long_output_is_written_in_lines_every_reader_accepts(tmp_path) -> None:
    # A drain of a flooding pty can be a megabyte of control characters (six
    # bytes of JSON each): the writer cuts it, at the same time, so our own
    # recordings never hold a line over the readers' limit.
    from autotrace.format.limits import MAX_LINE_BYTES

    writer, (main, _) = new_writer(tmp_path)
    flood = "\x01" * (1 << 20)
    main.output(0.5, flood)
    writer.close(1.0)
    lines = (tmp_path / "pane-0.cast").read_bytes().split(b"\n")
    assert max(len(line) for line in lines) <= MAX_LINE_BYTES
    written = events(tmp_path, 0)
    assert "".join(data for _, _, data in written) == flood
    assert {t for t, _, _ in written} == {0.5} and len(written) > 1
