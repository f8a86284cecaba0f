"""A recording's frames for a page: the replay player feeds the view as a
replay would, a step (export/frames.FRAME_STEP) at a time, and the one
frame encoder (export/frames.ViewFrames) takes what its screens show."""

from __future__ import annotations

import heapq
import math
import multiprocessing
import os
from collections.abc import Iterator
from typing import Any

from autotrace.errors import UserError
from autotrace.export.frames import FRAME_STEP, ViewFrames, view_for
from autotrace.format.reader import Recording
from autotrace.replay.player import Player
from autotrace.view.multipane import MultiPaneView

# Long recordings get a coarser grid: an hour at 0.1 s costs twice the time
# of 0.5 s (benchmarks/bench_replay.py, export), for moments seldom told apart.
LONG = 600.0  # seconds
LONG_STEP = 0.5
MIN_CORES = 4  # for worker processes (page_data)
HISTORY = 0  # lines: the frames hold the past; the screens need none
REPLAY_BADGES = ("PLAY", "PAUSED", "END")


def _pane_size(pane: dict[str, Any]) -> tuple[int, int]:
    cols, rows = pane.get("cols"), pane.get("rows")
    if isinstance(cols, int) and isinstance(rows, int) and cols > 0 and rows > 0:
        return min(cols, 500), min(rows, 200)
    return 80, 24


class TooLarge(UserError):
    """A recording too large for one page (pack then packs it without one)."""


class RecordedFrames:
    """Every frame of a recording, taken in time order by `run`. The view
    is sized so that every pane shows uncropped (export/frames.view_for)."""

    def __init__(self, recording: Recording, label: str, max_text: int | None = None,
                 only: set[int] | None = None):
        self.recording, self.max_text = recording, max_text
        cols, rows = view_for([_pane_size(pane) for pane in recording.panes])
        self.view = MultiPaneView(cols, rows, visible=max(1, len(recording.panes)),
                                  history=HISTORY)
        self.view.status_left = f"▶ REPLAY {label}"
        self.player = Player(recording, self.view)
        self.frames = ViewFrames(self.view, only)
        self.step = FRAME_STEP if self.player.recorded_end <= LONG else LONG_STEP

    def close(self) -> None:
        self.player.close()

    def __enter__(self) -> RecordedFrames:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def steps(self) -> Iterator[float]:
        """Every moment on the grid (`step`) by which some pane printed, then
        the end."""
        last = -1.0
        for t in heapq.merge(*(track.iter_times() for track in self.player.tracks)):
            step = round(math.ceil(t / self.step - 1e-6) * self.step, 3)
            if step > last:
                last = step
                yield step
        if self.player.recorded_end > last:
            yield round(self.player.recorded_end, 3)

    def run(self) -> None:
        """Take every frame; a recording whose screens hold more text than
        `max_text` characters is refused (one line) as soon as that shows."""
        for t in (0.0, *self.steps()):
            self.player.play_to(t)
            for _ in self.frames.at(t):
                pass
            if self.max_text is not None and self.frames.text_size() > self.max_text:
                raise TooLarge(
                    f"{self.recording.directory}: too large for one page (its screens "
                    f"hold over {self.max_text / 2**20:.0f} M characters by {t:.0f} s of "
                    f"{self.player.recorded_end:.0f} s)")

    def page_data(self) -> dict[str, Any]:
        from autotrace.export.findings import recording_findings

        self.player.play_to(self.player.recorded_end)
        data = self.frames.page_data(
            duration=self.player.recorded_end,
            markers=[(m.t, m.label) for m in self.player.clock.markers],
            started_unix=self.view.started_unix, badges=REPLAY_BADGES, step=self.step)
        # On the seek bar beside the markers: what the findings engine found.
        data["findings"] = [[round(f.t, 3), f.severity, f.title, f.pane]
                            for f in recording_findings(self.recording)]
        return data


def _frames_of(recording: Recording, label: str, max_text: int | None,
               panes: set[int]) -> tuple[dict[int, tuple[Any, Any]], list[str]]:
    """A worker's share: the frames and titles of `panes`, and its styles."""
    with RecordedFrames(recording, label, max_text, only=panes) as frames:
        frames.run()
        taken = {i: (frames.frames.panes[i].frames, frames.frames.titles[i]) for i in panes}
        return taken, frames.frames.styles.classes


def _restyled(rows: list[Any], styles: list[int]) -> list[Any]:
    return [[part if i % 2 == 0 else styles[part] for i, part in enumerate(row)]
            for row in rows]


def page_data(recording: Recording, label: str, max_text: int | None = None,
              workers: int | None = None) -> dict[str, Any]:
    """Every frame of a recording as the page's data. Panes are independent
    screens: with more than one core, each worker process takes the frames
    of some panes (every worker reads every pane file: the player keeps the
    panes in step; emulating and encoding, most of the cost, is split)."""
    count = len(recording.panes)
    if workers is None:
        # Each worker reads every pane file (a quarter more CPU in all for the
        # benchmark's hour): worth it only with a core for each of several panes.
        cores = len(os.sched_getaffinity(0))
        workers = cores if cores >= MIN_CORES else 1
    workers = min(count, workers)
    with RecordedFrames(recording, label, max_text, only=set() if workers > 1 else None) \
            as frames:
        if workers <= 1:
            frames.run()
            return frames.page_data()
        shares = [set(range(w, count, workers)) for w in range(workers)]
        context = multiprocessing.get_context("fork")  # the recording's folder is shared
        with context.Pool(workers) as pool:
            results = pool.starmap(_frames_of, [(recording, label, max_text, share)
                                                for share in shares])
        frames.player.play_to(frames.player.recorded_end)
        for _ in frames.frames.at(frames.player.recorded_end):
            pass  # the titles and structure, with no frame (only is empty)
        ours = frames.frames
        for taken, classes in results:
            restyle = [ours.styles.of_css(name) for name in classes]
            for index, (pane_frames, titles) in taken.items():
                ours.panes[index].frames = [
                    [t, shift, _restyled(rows, restyle) if shift < 0 else
                     [[y, _restyled([row], restyle)[0]] for y, row in rows]]
                    for t, shift, rows in pane_frames]
                ours.titles[index] = [[t, *_restyled(variants, restyle)]
                                      for t, *variants in titles]
        return frames.page_data()
