"""`autotrace replay`: a recording or bundle in the multi-pane view."""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from autotrace.commands.common import UsageError, say
from autotrace.commands.recordings import newest
from autotrace.format.reader import Recording
from autotrace.format.sources import open_recording

if TYPE_CHECKING:
    from autotrace.share.server import Presenter


def run_replay(options: argparse.Namespace) -> int:
    terminal_here = sys.stdout.isatty() and sys.stdin.isatty()
    if not terminal_here and not options.share:
        say("replay needs a terminal; for text use: autotrace cat PATH")
        return 2
    path = options.path or newest()
    with open_recording(path) as recording, \
            shared(options.share, recording, path.name, terminal_here) as presenter:
        if not terminal_here:
            threading.Event().wait()  # serving until a signal ends it
        return replay_on_terminal(recording, path, options, presenter)


@contextlib.contextmanager
def shared(address: str | None, recording: Recording, label: str,
           presenting: bool) -> Iterator[Presenter | None]:
    """`replay --share`: the recording's player page served while the block
    runs; with a replay on the terminal, viewers follow it."""
    if address is None:
        yield None
        return
    from autotrace.share.exports import html_data
    from autotrace.share.server import Presenter, Share, announce, parse_address

    try:
        host_port = parse_address(address)
    except ValueError as err:
        raise UsageError(str(err)) from None
    data = html_data(recording, label)
    presenter = Presenter() if presenting else None
    data["follow"] = presenter is not None
    share = Share(host_port, f"autotrace: {label}", lambda: (data, 0),
                  presenter.log if presenter else None,
                  presenter.changed if presenter else None)
    announce(share, say)
    if presenter:
        presenter.url = share.url
    try:
        yield presenter
    finally:
        if presenter:
            presenter.close()
        share.close()


def replay_on_terminal(recording: Recording, path: Path, options: argparse.Namespace,
                       presenter: Presenter | None = None) -> int:
    from autotrace.export.findings import recording_findings
    from autotrace.replay.player import Player
    from autotrace.term.replay_loop import run_player
    from autotrace.term.terminal import Terminal
    from autotrace.view.multipane import MultiPaneView

    terminal = Terminal()
    view = MultiPaneView(*terminal.size(), visible=options.visible,
                         min_pane=options.min_pane,
                         vertical=options.vertical, colours=not options.colorsoff,
                         sync=not options.syncoff)
    view.status_left = f"▶ REPLAY {path}"
    view.findings.items = recording_findings(recording)
    player = Player(recording, view, idle_limit=options.idle_limit, speed=options.speed,
                    exit_at_end=options.exit_at_end)
    if options.paused:
        player.clock.pause()
    if presenter is not None:
        presenter.follow(lambda: player.recorded_now, lambda: player.clock.playing)
        view.message = f"sharing read-only at {presenter.url}"  # the line before is hidden
    try:
        return run_player(player, terminal)
    finally:
        player.close()
