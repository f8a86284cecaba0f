"""`autotrace pack`, redaction, and reading bundles with cat/info.

Packing is driven through the real CLI on a real recording; the streaming
redactor, which must cope with a secret split over several pty reads, is
also tested on its own.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from autotrace.export.bundle import PercentProgress, pack
from autotrace.format.asciicast import CastEvent
from autotrace.format.bundle import BundleLimits, open_bundle
from autotrace.format.errors import RecordingError
from autotrace.format.reader import Recording
from autotrace.format.redact import MASK, Redactor, StreamRedactor, write_redacted_cast

SECRET = "hunter2"


def autotrace(*args: str, cwd: Path, scratch: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if scratch is not None:
        env["TMPDIR"] = str(scratch)
    return subprocess.run([sys.executable, "-m", "autotrace", *args], cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real recording: the secret is printed by the main pane and is in
    its command; a tracer pane prints something harmless."""
    directory = tmp_path_factory.mktemp("rec") / "secret-session"
    result = autotrace("--headless", "-q", "-l", str(directory),
                       f'printf "password={SECRET}\\n"', "echo tracer-ran",
                       cwd=directory.parent)
    assert result.returncode == 0, result.stderr
    assert SECRET in (directory / "pane-0.cast").read_text()
    return directory


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """TMPDIR for the CLI, to see that bundles leave nothing behind."""
    path = tmp_path / "scratch"
    path.mkdir()
    return path


def members(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle, "r:gz") as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else b"")  # type: ignore[union-attr]
                for m in tar.getmembers()}


# ---------------------------------------------------------------- pack via CLI


def test_pack_writes_one_folder_with_summary(recording: Path, tmp_path: Path) -> None:
    result = autotrace("pack", str(recording), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    bundle = tmp_path / "secret-session.tar.gz"
    assert result.stdout.strip() == str(bundle)
    content = members(bundle)
    assert sorted(content) == [
        "secret-session", "secret-session/SUMMARY.txt", "secret-session/index.html",
        "secret-session/manifest.json", "secret-session/pane-0.cast",
        "secret-session/pane-1.cast",
    ]
    for name in ("pane-0.cast", "pane-1.cast"):
        assert content[f"secret-session/{name}"] == (recording / name).read_bytes()
    manifest = json.loads(content["secret-session/manifest.json"])
    summary = content["secret-session/SUMMARY.txt"].decode()
    assert manifest["host"] in summary
    assert manifest["started_at"] in summary
    assert f"duration:   {manifest['duration']:.3f}s" in summary
    assert "command:  echo tracer-ran" in summary
    assert summary.count("status:   exited 0") == 2
    assert f"bytes:    {manifest['panes'][0]['bytes']}" in summary
    assert "autotrace replay secret-session.tar.gz" in summary


def test_pack_redacts_every_member(recording: Path, tmp_path: Path) -> None:
    out = tmp_path / "shared.tar.gz"
    result = autotrace("pack", str(recording), "-o", str(out), "--redact", r"hunt\w+2",
                       "--redact", "tracer-r[a-z]+", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    content = members(out)
    for name, data in content.items():
        assert SECRET.encode() not in data, name
        assert b"tracer-ran" not in data, name
    manifest = json.loads(content["secret-session/manifest.json"])
    assert manifest["redactions"] == [r"hunt\w+2", "tracer-r[a-z]+"]
    assert manifest["panes"][0]["command"] == f'printf "password={MASK}\\n"'
    assert MASK in content["secret-session/pane-0.cast"].decode()
    header = json.loads(content["secret-session/pane-0.cast"].decode().splitlines()[0])
    assert MASK in header["command"] and MASK in header["title"]
    assert "redacted:   hunt\\w+2, tracer-r[a-z]+" in content["secret-session/SUMMARY.txt"].decode()

    cat = autotrace("cat", str(out), cwd=tmp_path)
    assert cat.returncode == 0, cat.stderr
    assert f"[0] password={MASK}" in cat.stdout
    assert f"[1] {MASK}" in cat.stdout


def test_cat_and_info_read_a_bundle_and_leave_nothing(recording: Path, tmp_path: Path,
                                                       scratch: Path) -> None:
    bundle = tmp_path / "b.tar.gz"
    assert autotrace("pack", str(recording), "-o", str(bundle), cwd=tmp_path).returncode == 0

    from_dir = autotrace("cat", str(recording), cwd=tmp_path)
    from_bundle = autotrace("cat", str(bundle), cwd=tmp_path, scratch=scratch)
    assert from_bundle.returncode == 0, from_bundle.stderr
    assert f"[0] password={SECRET}" in from_bundle.stdout
    assert from_bundle.stdout == from_dir.stdout
    assert autotrace("cat", str(bundle), "--pane", "1", cwd=tmp_path).stdout.endswith(
        "[1] tracer-ran\n")

    info = autotrace("info", str(bundle), cwd=tmp_path, scratch=scratch)
    assert info.returncode == 0, info.stderr
    assert info.stdout.startswith(f"recording:  {bundle}\n")
    assert "command:  echo tracer-ran" in info.stdout
    assert list(scratch.iterdir()) == []


def test_pack_output_into_a_directory(recording: Path, tmp_path: Path) -> None:
    result = autotrace("pack", str(recording), "-o", str(tmp_path), cwd="/")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "secret-session.tar.gz").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["secret-session.tar.gz"]


def test_pack_a_bundle_again_with_redaction(recording: Path, tmp_path: Path) -> None:
    first = tmp_path / "first.tar.gz"
    assert autotrace("pack", str(recording), "-o", str(first), cwd=tmp_path).returncode == 0
    second = tmp_path / "second.tar.gz"
    result = autotrace("pack", str(first), "-o", str(second), "--redact", SECRET, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    content = members(second)
    assert all(SECRET.encode() not in data for data in content.values())
    assert f"password={MASK}" in content["secret-session/pane-0.cast"].decode()
    # The literal secret was the regex: it is listed masked, not handed out.
    assert json.loads(content["secret-session/manifest.json"])["redactions"] == [MASK]


@pytest.mark.parametrize("regex, message", [
    ("pass(word", "invalid --redact regex 'pass(word': missing ), unterminated subpattern"),
    ("x*", "--redact regex 'x*' matches the empty string"),
])
def test_bad_regex_is_one_line(recording: Path, tmp_path: Path, regex: str,
                               message: str) -> None:
    result = autotrace("pack", str(recording), "--redact", regex, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(f"autotrace: {message}")
    assert result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_pack_of_nothing_is_one_line(tmp_path: Path) -> None:
    result = autotrace("pack", str(tmp_path / "nope"), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == f"autotrace: {tmp_path / 'nope'}: no such recording folder or bundle\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    result = autotrace("pack", str(empty), cwd=tmp_path)
    assert result.returncode == 1
    assert "is not an autotrace recording (no manifest.json)" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


# ---------------------------------------------------------------- pack as a library


def test_progress_reaches_the_total(recording: Path, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    pack(recording, tmp_path, progress=lambda done, total: calls.append((done, total)))
    total = sum((recording / f"pane-{i}.cast").stat().st_size for i in (0, 1))
    assert calls[-1] == (total, total)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_percent_progress_in_a_log_prints_tens() -> None:
    log = io.StringIO()
    show = PercentProgress(stream=log, large=1000)
    for done in range(0, 2001, 100):
        show(done, 2000)
    assert log.getvalue().splitlines() == [f"autotrace: packing {p}%" for p in range(0, 101, 10)]
    quiet = io.StringIO()
    small = PercentProgress(stream=quiet, large=1000)
    small(10, 10)
    assert quiet.getvalue() == ""


def test_open_bundle_is_private_and_removed(recording: Path, tmp_path: Path) -> None:
    bundle = pack(recording, tmp_path)
    with open_bundle(bundle) as directory:
        scratch = directory.parent
        assert scratch.stat().st_mode & 0o777 == 0o700
        assert Recording.open(directory).panes[1]["command"] == "echo tracer-ran"
    assert not scratch.exists()
    with pytest.raises(RecordingError), open_bundle(bundle) as directory:
        scratch = directory.parent
        raise RecordingError("reader failed")
    assert not scratch.exists()


def test_bundle_limits_refuse_big_bundles(recording: Path, tmp_path: Path) -> None:
    bundle = pack(recording, tmp_path)
    pane = (recording / "pane-0.cast").stat().st_size
    with pytest.raises(RecordingError, match=r"'secret-session/manifest.json': it is \d+ "
                                             r"bytes, over the limit of 100"), \
            open_bundle(bundle, BundleLimits(member_bytes=100)):
        pass
    with pytest.raises(RecordingError, match="over its size limit"), \
            open_bundle(bundle, BundleLimits(total_bytes=pane)):
        pass
    with pytest.raises(RecordingError, match="one member too many"), \
            open_bundle(bundle, BundleLimits(members=3)):
        pass


# ---------------------------------------------------------------- redaction


def redact_events(chunks: list[str], patterns: list[str], **sizes: int) -> list[CastEvent]:
    out: list[CastEvent] = []
    stream = StreamRedactor(Redactor(patterns), out.append, **sizes)
    for i, chunk in enumerate(chunks):
        stream.feed(CastEvent(float(i), "o", chunk))
    stream.close()
    return out


def test_secret_split_over_events_is_masked_where_it_began() -> None:
    out = redact_events(["login ok\r\npassword=hun", "te", "r2 and more\r\n"], [SECRET])
    assert out == [
        CastEvent(0.0, "o", f"login ok\r\npassword={MASK}"),
        CastEvent(2.0, "o", " and more\r\n"),
    ]


def test_random_splits_equal_line_by_line_substitution() -> None:
    rng = random.Random(4)
    lines = [f"user{i} token=tok-{rng.randrange(10**6)} pw={SECRET}\r\n" for i in range(200)]
    text = "".join(lines) + "prompt$ tok-9 tail"
    patterns = [r"tok-\d+", SECRET]
    cuts = sorted(rng.sample(range(1, len(text)), 400))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
    out = redact_events(chunks, patterns)
    combined = re.compile("|".join(patterns))
    expected = "".join(combined.sub(MASK, line) for line in text.splitlines(keepends=True))
    assert "".join(e.data for e in out) == expected
    assert [e.t for e in out] == sorted(e.t for e in out)


def test_long_line_is_streamed_and_cut_beside_matches() -> None:
    written: list[CastEvent] = []
    stream = StreamRedactor(Redactor([SECRET]), written.append, window=100, overlap=20)
    text = ("x" * 37 + SECRET) * 300  # one endless line, no newline
    for i in range(0, len(text), 10):
        stream.feed(CastEvent(i / 10, "o", text[i:i + 10]))
    expected = text.replace(SECRET, MASK)
    so_far = "".join(e.data for e in written)
    assert expected.startswith(so_far)
    assert len(so_far) > len(expected) - 200, "a long line must not be held whole"
    stream.close()
    assert "".join(e.data for e in written) == expected


def test_markers_and_resizes_keep_their_place() -> None:
    out: list[CastEvent] = []
    stream = StreamRedactor(Redactor([SECRET, "secret-label"]), out.append)
    for event in [CastEvent(0.0, "o", "pw=hun"), CastEvent(1.0, "r", "100x30"),
                  CastEvent(2.0, "o", "ter2"), CastEvent(3.0, "m", "user:secret-label"),
                  CastEvent(4.0, "o", "\r\n")]:
        stream.feed(event)
    stream.close()
    assert out == [CastEvent(0.0, "o", f"pw={MASK}"), CastEvent(1.0, "r", "100x30"),
                   CastEvent(3.0, "m", f"user:{MASK}"), CastEvent(4.0, "o", "\r\n")]


@pytest.mark.parametrize("pattern", [
    SECRET, r"tok-\d+", r"[^ =]+=[^ ]+", r"\s+\S", r"^\w+", r"\d+$", r"(?<=pw=)\w+",
    r"o.e", r"(?s)o.e", r"\bpw\b", r"\d*\b",
])
def test_matches_are_exactly_those_of_each_line(pattern: str) -> None:
    rng = random.Random(pattern)
    words = ["pw=hunter2", "tok-12", "one", "o\ne", "\r\n", "\n", " ", "  ", "x9", "pw"]
    text = "".join(rng.choice(words) for _ in range(3000))
    regex = re.compile(pattern)

    def masked(line: str) -> str:  # empty matches mask nothing
        return regex.sub(lambda m: MASK if m.group() else "", line)

    expected = "\n".join(masked(line[:-1]) + "\r" if line.endswith("\r") else masked(line)
                          for line in text.split("\n"))
    assert Redactor([pattern]).text(text) == expected


def test_anchors_work_per_line() -> None:
    assert Redactor([r"^\w+$"]).text("alpha\r\nbeta gamma\nomega") == \
        f"{MASK}\r\nbeta gamma\n{MASK}"


def test_redacted_cast_drops_unknown_codes(tmp_path: Path) -> None:
    source = tmp_path / "pane.cast"
    source.write_text(json.dumps({"version": 2, "width": 80, "height": 24,
                                  "command": f"login {SECRET}", "title": f"t {SECRET}"}) + "\n"
                      + json.dumps([0.5, "o", f"{SECRET}\r\n"]) + "\n"
                      + json.dumps([0.6, "x", SECRET]) + "\n")
    out = io.BytesIO()
    write_redacted_cast(source, out, Redactor([SECRET]))
    lines = out.getvalue().decode().splitlines()
    assert json.loads(lines[0])["command"] == f"login {MASK}"
    assert [json.loads(line) for line in lines[1:]] == [[0.5, "o", f"{MASK}\r\n"]]


def test_recorded_input_is_redacted_though_typed_one_key_at_a_time(tmp_path: Path) -> None:
    # --record-input writes one "i" event a key: no single event holds the secret.
    source = tmp_path / "pane.cast"
    keys = [[0.1 * n, "i", key] for n, key in enumerate(f"login {SECRET}\r", start=1)]
    source.write_text("\n".join(json.dumps(item) for item in [
        {"version": 2, "width": 80, "height": 24}, *keys, [2.0, "o", "ok\r\n"]]) + "\n")
    out = io.BytesIO()
    write_redacted_cast(source, out, Redactor([SECRET]))
    events = [json.loads(line) for line in out.getvalue().decode().splitlines()[1:]]
    typed = "".join(data for _, code, data in events if code == "i")
    assert typed == f"login {MASK}\r"
    assert [e[0] for e in events if e[1] == "i"][:6] == [k[0] for k in keys][:6]  # times kept
    assert events[-1] == [2.0, "o", "ok\r\n"]
