"""`--share` (issue 12, point 3): a live session's read-only page in a real
browser (chromium through chromedriver), its token, and what it ignores."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import Browser
from conftest import AUTOTRACE, RecordingFiles, start_autotrace, wait_for
from test_export_html import write_recording
from tmuxdriver import Tmux


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    started = Browser()
    yield started
    started.close()


def share_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    for _ in range(20):
        line = proc.stderr.readline()
        if "sharing read-only at " in line:
            return line.split("sharing read-only at ", 1)[1].strip()
    raise AssertionError("no share URL printed")


def status(url: str, method: str = "GET") -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=20):
            return 200
    except urllib.error.HTTPError as err:
        return err.code


def test_a_live_share_shows_output_printed_after_the_page_opened(
        tmp_path: Path, browser: Browser) -> None:
    flag = tmp_path / "go"
    directory = tmp_path / "rec"
    proc = start_autotrace(["--headless", "-q", "-l", directory, "--share", "0",
                            f"echo before-open; while [ ! -e {flag} ]; do sleep 0.1; done; "
                            "echo after-open; sleep 0.5"])
    try:
        url = share_url(proc)
        assert url.startswith("http://127.0.0.1:") and "token=" in url
        base = url.split("?")[0]
        assert status(base) == 403 and status(base + "?token=wrong") == 403
        assert status(url.replace("/?", "/stream?") + "x") == 403  # the stream too
        browser.open(url)
        wait_for(lambda: "before-open" in browser.shown(), timeout=30, what="the page")
        assert "after-open" not in browser.shown()
        # What a browser sends goes nowhere: keys, and requests other than GET.
        browser.call("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'p'}))")
        assert status(url, "POST") == 501 and status(url, "PUT") == 501
        flag.touch()
        wait_for(lambda: "after-open" in browser.shown(), timeout=30, what="live output")
        report = browser.call("return report('live')")
        # nothing fetched but its own stream (which resource timing may not list)
        assert all("/stream?" in name for name in report["requests"])
        assert "LIVE rec" in report["header"]
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()
    # the session went on untouched: nothing typed, nothing paused
    assert RecordingFiles(directory).output(0).split() == ["before-open", "after-open"]


def test_replay_share_serves_the_recording_page(tmp_path: Path, browser: Browser) -> None:
    recording = write_recording(tmp_path / "session")
    proc = start_autotrace(["replay", recording, "--share", "127.0.0.1:0"])
    try:
        url = share_url(proc)
        browser.open(url)
        wait_for(lambda: browser.call("return D !== null"), timeout=30, what="the page")
        browser.call("seek(3.5)")
        assert "alpha 3" in browser.shown()
        assert status(url.split("?")[0]) == 403
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_viewer_that_stops_reading_is_dropped() -> None:
    from autotrace.share.server import Share

    log: list[str] = []
    changed = threading.Condition()
    share = Share(("127.0.0.1", 0), "t", lambda: ({}, 0), log, changed)
    try:
        stalled = socket.create_connection(("127.0.0.1", share.port))
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(f"GET /stream?token={share.token}&from=0 HTTP/1.0\r\n\r\n".encode())
        wait_for(lambda: share.viewers == 1, what="the viewer")
        big = json.dumps(["frame", 0, ["x" * 10000]])
        for _ in range(200):  # 2 MB it never reads
            with changed:
                log.extend([big] * 10)
                changed.notify_all()
            if share.dropped:
                break
            time.sleep(0.05)
        wait_for(lambda: share.dropped == 1 and share.viewers == 0, timeout=30,
                 what="the stalled viewer dropped")
        stalled.close()
    finally:
        share.close()


def test_replay_share_viewers_follow_the_replay_on_the_terminal(
        tmp_path: Path, browser: Browser) -> None:
    recording = write_recording(tmp_path / "session")
    tmux = Tmux(cols=160, rows=30)
    try:
        tmux.start([*AUTOTRACE, "replay", str(recording), "--paused", "--share", "0"],
                   env={"PYTHONPATH": os.environ["PYTHONPATH"]})
        screen = tmux.wait_for(r"token=[\w-]+")
        url = re.search(r"http://\S+token=[\w-]+", screen).group(0)  # type: ignore[union-attr]
        browser.open(url)
        wait_for(lambda: browser.call("return D !== null && S.following"), timeout=30,
                 what="the page following")
        tmux.send("Right")  # the presenter seeks 5 s: viewers go there too
        tmux.wait_for(r"00:05\.0 / 00:05\.0")
        wait_for(lambda: browser.call("return S.t") == 5.0, timeout=30, what="following")
        assert "alpha 3" in browser.shown() and "close(beta)" in browser.shown()
        browser.call("seek(1.5)")  # a viewer who seeks is on their own
        browser.call("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'g'}))")
        assert browser.call("return S.following") is False
    finally:
        tmux.kill()


def test_a_share_that_cannot_start_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    from conftest import assert_one_line_error, run_autotrace

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        result = run_autotrace(["--headless", "-l", tmp_path / "a", "--share", str(port),
                                "echo never"])
        assert "Address already in use" in assert_one_line_error(result)
    finally:
        taken.close()
    assert not (tmp_path / "a").exists()
    result = run_autotrace(["--headless", "-l", tmp_path / "b", "--share", "nope", "echo x"])
    assert "not a port" in assert_one_line_error(result, code=2)
    assert not (tmp_path / "b").exists()
