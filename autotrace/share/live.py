"""A live session's frames for its share (`--share`): the session's events
go to a view of the share's own, and the one frame encoder
(export/frames.ViewFrames) takes what its screens show, a few times a
second, into a log that every viewer reads from.

The session's loop only appends each event to an inbox (`on_event`, a
deque append): emulating and encoding happen in the share's own thread, so
the session never waits for the share, and viewers never reach it."""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from autotrace.events import MARKER, OUTPUT, RESIZE, STATE, Event
from autotrace.export.frames import ViewFrames, view_for
from autotrace.view.multipane import MultiPaneView

TICK = 0.25  # seconds between frames: a viewer is at most this (plus the network) behind
HISTORY = 0  # lines: the frames hold the past; the screens need none
LIVE_BADGE = ""  # the view's own " Running " (then " ENDED ")

# A pane's command and pty size, by its index, from the session.
Describe = Callable[[int], tuple[str, int, int]]


class LiveFrames:
    """The frames of a running session, as items in `log` (JSON text): each
    is ["frame" | "title", pane, data] or ["page", -1, fields the page updates]."""

    def __init__(self, describe: Describe, label: str, started_unix: float | None = None):
        self.describe = describe
        self.view = MultiPaneView(80, 24, visible=1, history=HISTORY)
        self.view.fixed_screens = True  # the recorded pty sizes, as a replay shows them
        self.view.replay = True  # a viewer's keys are the replay's: seek, markers, search
        self.view.status_left = f"● LIVE {label}"
        self.view.started_unix = started_unix
        self.frames = ViewFrames(self.view)
        self.markers: list[tuple[float, str]] = []
        self.log: list[str] = []  # items as JSON text
        self.now = 0.0
        self.ended = False
        self.changed = threading.Condition()  # guards log; notified when it grows
        self._inbox: collections.deque[Event] = collections.deque()
        self._styles = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="autotrace-share", daemon=True)

    # -- the session's side: never waits

    def on_event(self, event: Event) -> None:
        self._inbox.append(event)

    def start(self) -> None:
        self._thread.start()

    def close(self, ended: bool = True) -> None:
        """Take the last frames (the session's end) and stop."""
        self.ended = ended
        self._stop.set()
        self._thread.join(timeout=5)

    # -- the share's thread

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(TICK):
            self._tick(time.monotonic() - started)
        self._tick(time.monotonic() - started, final=True)

    def _tick(self, now: float, final: bool = False) -> None:
        with self.changed:  # a viewer's page is made from a view that stands still
            self._take(now, final)
            self.changed.notify_all()

    def _take(self, now: float, final: bool) -> None:
        grew = False
        while self._inbox:
            event = self._inbox.popleft()
            grew |= self._apply(event)
            now = max(now, event.t)
        self.now = max(self.now, now)
        if final and self.ended:
            self.view.ended = True
        items: list[list[Any]] = []
        if grew:
            items.append(["page", -1, self._geometry()])
        items += [[kind, index, data] for kind, index, data in self.frames.at(self.now)]
        fields: dict[str, Any] = {"duration": round(self.now, 3)}
        if len(self.frames.styles.classes) != self._styles:
            self._styles = len(self.frames.styles.classes)
            fields["styles"] = self.frames.styles.classes
        if final:
            fields.update(self.frames.chrome([LIVE_BADGE]))
            fields["markers"] = self.markers
        items.append(["page", -1, fields])
        # Encoded once here, not once per viewer: viewers only send it.
        self.log.extend(json.dumps(item, separators=(",", ":"), ensure_ascii=False)
                        for item in items)

    def _apply(self, event: Event) -> bool:
        """One event onto the share's view; True when a pane was added."""
        added = False
        while len(self.view.panes) <= event.pane:
            command, cols, rows = self.describe(len(self.view.panes))
            self.view.add_pane(len(self.view.panes), command, cols, rows)
            added = True
        if event.kind == STATE:
            self.view.set_state(event.pane, event.data)
        elif event.kind in (OUTPUT, RESIZE):
            self.view.apply(event)
        elif event.kind == MARKER and event.pane == 0:
            self.markers.append((round(event.t, 3), event.data))
            self.view.apply(event)
        return added

    def _geometry(self) -> dict[str, Any]:
        """The view's size and layouts for the panes there are now."""
        sizes = [(p.screen.cols, p.screen.rows) for p in self.view.panes]
        self.view.visible = max(1, len(sizes))
        self.view.resize(*view_for(sizes))
        data = self.frames.page_data(duration=self.now, markers=self.markers,
                                     started_unix=self.view.started_unix,
                                     badges=[LIVE_BADGE], live=True)
        commands = [pane.command for pane in self.view.panes]
        return {key: data[key] for key in ("cols", "rows", "layouts", "headers", "clock_at",
                                           "clock_width", "footer", "border_style",
                                           "message_style")} | {"commands": commands}

    def page_data(self) -> tuple[dict[str, Any], int]:
        """The page's data with every frame so far, and how many log items
        that is (a viewer's stream starts there)."""
        with self.changed:
            count = len(self.log)
            data = self.frames.page_data(duration=self.now, markers=self.markers,
                                         started_unix=self.view.started_unix,
                                         badges=[LIVE_BADGE], live=True)
        data["received"] = count
        return data, count
