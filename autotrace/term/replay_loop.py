"""The replay loop: keys, the replay clock and frames, until the user quits."""

from __future__ import annotations

import selectors
import signal

from autotrace.replay.player import FRAME_INTERVAL, Player
from autotrace.signals import read_signals, signal_pipe
from autotrace.term.terminal import Terminal, TerminalGone


def run_player(player: Player, terminal: Terminal) -> int:
    """The replay loop: keys, clock, frames; returns when the user quits."""
    view = player.view
    selector = selectors.DefaultSelector()
    with signal_pipe() as wake_fd, terminal.active():
        selector.register(wake_fd, selectors.EVENT_READ, "signals")
        selector.register(terminal.fileno(), selectors.EVENT_READ, "keys")
        view.resize(*terminal.size())
        shown_status, dirty = None, True
        while True:
            at_end = player.clock.at_end  # before advance(), which then feeds it all
            if player.advance():
                dirty = True
            if view.search_job is not None:
                view.search_step()  # one slice a turn: keys are still answered
                dirty = True
            # The header's clock shows tenths of a second; END must show even
            # when the end falls inside the tenth last drawn.
            status = (int(player.clock.position * 10), at_end)
            if status != shown_status:
                shown_status, dirty = status, True
            if dirty:
                terminal.draw(player.frame())
                view.chrome_dirty = False
                dirty = False
            if player.exit_at_end and at_end:
                return 0
            # The end came during this turn: one more feeds the rest and
            # shows END before sleeping until a key.
            wait = 0.0 if player.clock.at_end != at_end else _wait(player)
            for key, _ in selector.select(wait):
                dirty = True
                if key.data == "signals":
                    for signum in read_signals(wake_fd):
                        if signum in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
                            return 128 + signum
                        if signum == signal.SIGWINCH:
                            view.resize(*terminal.size())
                            terminal.forget_screen()
                    continue
                try:
                    pressed = terminal.pending_keys()
                except TerminalGone:
                    return 128 + signal.SIGHUP
                for name in pressed:
                    action = player.handle_key(name)
                    if action is not None and action.name == "quit":
                        return 0
                    if action is not None and action.name == "redraw":
                        terminal.forget_screen()


def _wait(player: Player) -> float | None:
    """How long the loop may sleep: until the next event is due or the
    clock shown in the header ticks; for ever (until a key) when paused or
    at the end."""
    clock = player.clock
    if player.view.search_job is not None:
        return 0.0
    if not clock.playing or clock.at_end:
        return None
    pending = [t for t in (track.next_time for track in player.tracks) if t is not None]
    next_event = clock.time_until(player.idle.to_replay(min(pending))) if pending else None
    tick = 0.1 / clock.speed
    return max(FRAME_INTERVAL, min(tick, next_event if next_event is not None else tick))
