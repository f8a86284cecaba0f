"""The share's web server (`--share [HOST:]PORT`): the player page and its
stream of new frames, read-only, behind a random token.

The standard library's ThreadingHTTPServer, a thread per viewer, in a
thread of its own: no dependency, and nothing a viewer does (a slow link,
a stalled tab) can reach the session's loop, which only appends events to
the share's inbox (share/live.py). Each viewer's stream is sent from the
one shared log, so a viewer costs no copy; one that falls too far behind
or stops reading (a send blocked for SEND_TIMEOUT) is dropped.

Only GET is answered: the page (`/?token=T`) and its server-sent events
(`/stream?token=T&from=N`); without the token, 403; anything else 404
(other methods: 501). Nothing a browser sends reaches a pane."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import secrets
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from autotrace.errors import UserError
from autotrace.export.html import page

SEND_TIMEOUT = 5.0  # seconds a send may block before the viewer is dropped
MAX_BEHIND = 20000  # log items a viewer may be behind before it is dropped
BATCH = 500  # log items per event sent
KEEPALIVE = 15.0  # seconds: a comment line keeps proxies from closing a quiet stream
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

PageData = Callable[[], tuple[dict[str, Any], int]]


class ShareError(UserError):
    """The share cannot start (a bad address, a port in use)."""


def parse_address(text: str) -> tuple[str, int]:
    """`[HOST:]PORT` -> (host, port); 127.0.0.1 when no host is given.
    ValueError (a usage error) for anything else."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"--share: not a port: {text!r} (e.g. 8080 or 0.0.0.0:8080)") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"--share: port {number} is out of range (0-65535)")
    return host, number


def is_local(host: str) -> bool:
    if host == "localhost":
        return True
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return False


class Share:
    """The server, started at once in a thread of its own; `url` has the token."""

    def __init__(self, address: tuple[str, int], title: str, data: PageData,
                 log: list[str] | None = None,
                 changed: threading.Condition | None = None):
        self.token = secrets.token_urlsafe(18)
        self.title, self.data = title, data
        self.log = log  # None: a static page (a replay's), nothing streamed
        self.changed = changed or threading.Condition()
        self.closed = False
        self.viewers = 0
        self.dropped = 0
        host, port = address
        handler = type("Handler", (_Handler,), {"share": self})
        server_class = _Server6 if ":" in host else _Server
        try:
            self.server = server_class((host, port), handler)
        except OSError as err:
            raise ShareError(f"--share {host}:{port}: {err.strerror or err}") from None
        self.host, self.port = host, self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        name="autotrace-share-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/?token={self.token}"

    def close(self) -> None:
        with self.changed:
            self.closed = True
            self.changed.notify_all()
        self.server.shutdown()
        self.server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    share: Share
    server_version = "autotrace-share"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the session's terminal is the view's, not a log's

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        token = (query.get("token") or [""])[0]
        if not secrets.compare_digest(token.encode(), self.share.token.encode()):
            self.send_error(HTTPStatus.FORBIDDEN, "this share needs its token")
            return
        if url.path == "/":
            self._page()
        elif url.path == "/stream" and self.share.log is not None:
            start = (query.get("from") or ["0"])[0]
            self._stream(int(start) if start.isdigit() else 0)
        else:
            self.send_error(HTTPStatus.NOT_FOUND)

    def _headers(self, content_type: str, length: int | None = None) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")  # the token is in the URL
        self.send_header("X-Content-Type-Options", "nosniff")
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _page(self) -> None:
        data, _ = self.share.data()
        body = page(data, self.share.title, live=self.share.log is not None).encode("utf-8")
        self._headers("text/html; charset=utf-8", len(body))
        self.wfile.write(body)

    def _stream(self, sent: int) -> None:
        share, log = self.share, self.share.log
        assert log is not None
        self.connection.settimeout(SEND_TIMEOUT)
        self.close_connection = True
        self._headers("text/event-stream")
        with share.changed:
            share.viewers += 1
        try:
            while True:
                with share.changed:
                    if len(log) <= sent and not share.closed:
                        share.changed.wait(timeout=KEEPALIVE)
                    if len(log) - sent > MAX_BEHIND:
                        share.dropped += 1
                        return  # too far behind: it must load the page again
                    batch = log[sent:sent + BATCH]
                    closed = share.closed and len(log) <= sent + len(batch)
                if batch:
                    self.wfile.write(f"data: [{','.join(batch)}]\n\n".encode())
                    sent += len(batch)
                else:
                    self.wfile.write(b": still here\n\n")
                self.wfile.flush()
                if closed:
                    return
        except OSError:  # it stopped reading (the timeout) or went away
            with share.changed:
                share.dropped += 1
        finally:
            with share.changed:
                share.viewers -= 1


def announce(share: Share, say: Callable[[str], None]) -> None:
    """The URL to give viewers, and a warning when others can reach it."""
    say(f"sharing read-only at {share.url}")
    if not is_local(share.host):
        say(f"warning: --share {share.host}: anyone who can reach this address and has "
            "the URL can watch; keep it to 127.0.0.1 unless that is meant")


class Presenter:
    """`replay --share`: the page is the recording's, and viewers follow where
    the replay on the terminal is (its recorded time, a few times a second)
    until they seek themselves."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.changed = threading.Condition()
        self.url = ""
        self._stop = threading.Event()

    def follow(self, position: Callable[[], float], playing: Callable[[], bool]) -> None:
        def run() -> None:
            shown = None
            while not self._stop.wait(0.25):
                now = (round(position(), 2), playing())
                if now != shown:
                    shown = now
                    with self.changed:
                        self.log.append(json.dumps(
                            ["page", -1, {"position": now[0], "playing": now[1]}]))
                        self.changed.notify_all()

        threading.Thread(target=run, name="autotrace-presenter", daemon=True).start()

    def close(self) -> None:
        self._stop.set()
