"""`autotrace replay`: a recording or bundle in the multi-pane view."""

from __future__ import annotations

import argparse
import sys

from autotrace.commands.common import say
from autotrace.commands.recordings import newest
from autotrace.format.sources import open_recording


def run_replay(options: argparse.Namespace) -> int:
    from autotrace.export.findings import recording_findings
    from autotrace.replay.player import Player
    from autotrace.term.replay_loop import run_player
    from autotrace.term.terminal import Terminal
    from autotrace.view.multipane import MultiPaneView

    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        say("replay needs a terminal; for text use: autotrace cat PATH")
        return 2
    path = options.path or newest()
    with open_recording(path) as recording:
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
        try:
            return run_player(player, terminal)
        finally:
            player.close()
