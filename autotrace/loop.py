"""The one select loop that every session runs in: live or replay, with or without a view.

Parties (a live session, a replay, the view on a terminal) watch file
descriptors with a callback each, say when they next need a turn
(`next_deadline`), and get `advance(now)` after every wake-up. Signals come in
through a wakeup pipe and are handed to every listener in turn. When nothing
is due the loop sleeps in the kernel.
"""

from __future__ import annotations

import contextlib
import selectors
import time
from collections.abc import Iterator
from typing import Callable, Protocol

from autotrace.signals import read_signals, signal_pipe


class Party(Protocol):
    """Something the loop gives a turn to."""

    def next_deadline(self) -> float | None: ...
    def advance(self, now: float) -> None: ...


class Loop:
    """Use as `with Loop() as loop: ...; loop.run()`: signals are caught from
    the moment it is entered, so a child that ends at once is not missed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.exit_code: int | None = None
        self._selector = selectors.DefaultSelector()
        self._parties: list[Party] = []
        self._signal_listeners: list[Callable[[int], None]] = []
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Loop:
        wake_fd = self._stack.enter_context(signal_pipe())
        self.watch(wake_fd, lambda: self._deliver(read_signals(wake_fd)))
        return self

    def __exit__(self, *exc: object) -> None:
        self._selector.close()
        self._stack.close()

    # -- what parties use

    def watch(self, fd: int, on_ready: Callable[[], None]) -> None:
        self._selector.register(fd, selectors.EVENT_READ, on_ready)

    def unwatch(self, fd: int) -> None:
        with contextlib.suppress(KeyError, ValueError):  # already unwatched or closed
            self._selector.unregister(fd)

    def join(self, party: Party) -> None:
        self._parties.append(party)

    def leave(self, party: Party) -> None:
        with contextlib.suppress(ValueError):
            self._parties.remove(party)

    def on_signal(self, listener: Callable[[int], None]) -> None:
        self._signal_listeners.append(listener)

    def stop(self, code: int) -> None:
        """End run() after this turn, with this exit status (the first one given wins)."""
        if self.exit_code is None:
            self.exit_code = code

    # -- running

    def run(self) -> int:
        while self.exit_code is None:
            self.turn()
        return self.exit_code

    def turn(self) -> None:
        deadlines = [d for d in (p.next_deadline() for p in self._parties) if d is not None]
        timeout = None if not deadlines else max(0.0, min(deadlines) - self.clock())
        for key, _ in self._selector.select(timeout):
            key.data()
        now = self.clock()
        for party in list(self._parties):
            party.advance(now)

    def _deliver(self, signums: list[int]) -> None:
        for signum in signums:
            for listener in list(self._signal_listeners):
                listener(signum)


@contextlib.contextmanager
def running(loop: Loop | None, clock: Callable[[], float] = time.monotonic) -> Iterator[Loop]:
    """The loop given, or a new one entered for the duration."""
    if loop is not None:
        yield loop
        return
    with Loop(clock) as new:
        yield new
