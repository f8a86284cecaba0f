"""A replay on a terminal: the player as a party of the one loop (autotrace.loop).

The loop is the live session's: keys, signals and resizes come the same way;
only the source (a recording) and its clock differ.
"""

from __future__ import annotations

import signal

from autotrace.loop import Loop
from autotrace.replay.player import FRAME_INTERVAL, Player
from autotrace.term.terminal import Terminal, TerminalGone


class ReplayOnTerminal:
    """Feeds the player at its clock's pace, draws when something changed,
    and hands keys to it; ends the loop on q, a signal or a closed terminal."""

    def __init__(self, player: Player, terminal: Terminal, loop: Loop):
        self.player = player
        self.terminal = terminal
        self.loop = loop
        self._shown_status: tuple[int, bool] | None = None
        self._dirty = True
        self._end_drawn = False

    def join(self) -> None:
        self.loop.watch(self.terminal.fileno(), self.on_input)
        self.loop.on_signal(self.on_signal)
        self.loop.join(self)
        self.player.view.resize(*self.terminal.size())

    def next_deadline(self) -> float | None:
        """Until the next event is due or the header's clock ticks; for ever
        (until a key) when paused or at the end."""
        if self._dirty or self.player.view.search_job is not None:
            return self.loop.clock()
        player, clock = self.player, self.player.clock
        if not clock.playing or (clock.at_end and self._end_drawn):
            return None
        pending = [t for t in (track.next_time for track in player.tracks) if t is not None]
        next_event = clock.time_until(player.idle.to_replay(min(pending))) if pending else None
        tick = 0.1 / clock.speed  # the header's clock shows tenths
        wait = max(FRAME_INTERVAL, min(tick, next_event if next_event is not None else tick))
        return self.loop.clock() + wait

    def advance(self, now: float) -> None:
        player = self.player
        at_end = player.clock.at_end  # before advance(), which then feeds it all
        if player.advance():
            self._dirty = True
        if player.view.search_job is not None:
            player.view.search_step()  # one slice a turn: keys are still answered
            self._dirty = True
        # The header's clock shows tenths of a second; END must show even
        # when the end falls inside the tenth last drawn.
        status = (int(player.clock.position * 10), at_end)
        if status != self._shown_status:
            self._shown_status, self._dirty = status, True
        if self._dirty:
            self.terminal.draw(player.frame())
            player.view.chrome_dirty = False
            self._dirty = False
            self._end_drawn = at_end
        if player.exit_at_end and at_end:
            self.loop.stop(0)

    def on_signal(self, signum: int) -> None:
        self._dirty = True
        if signum in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
            self.loop.stop(128 + signum)
        elif signum == signal.SIGWINCH:
            self.player.view.resize(*self.terminal.size())
            self.terminal.forget_screen()

    def on_input(self) -> None:
        self._dirty = True
        try:
            pressed = self.terminal.pending_keys()
        except TerminalGone:
            self.loop.stop(128 + signal.SIGHUP)
            return
        for name in pressed:
            action = self.player.handle_key(name)
            command = getattr(self, f"_do_{action.name}", None) if action else None
            if command is not None:
                command()

    # The loop's commands (view/keymap.py names them); the player does the rest.

    def _do_quit(self) -> None:
        self.loop.stop(0)

    def _do_redraw(self) -> None:
        self.terminal.forget_screen()


def run_player(player: Player, terminal: Terminal) -> int:
    """The replay until the user quits; returns the exit status."""
    with Loop() as loop, terminal.active():
        ReplayOnTerminal(player, terminal, loop).join()
        return loop.run()
