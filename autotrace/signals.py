"""Signals delivered into the select loop through a wakeup pipe."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator, Sequence

SESSION_SIGNALS = (
    signal.SIGCHLD,
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGWINCH,
)


def _ignore(signum: int, frame: object) -> None:
    # The real work happens in the loop, which reads the signal number from the pipe.
    pass


@contextlib.contextmanager
def signal_pipe(signals: Sequence[int] = SESSION_SIGNALS) -> Iterator[int]:
    """Yield a read fd that receives one byte (the signal number) per signal.

    Handlers and the wakeup fd are restored on every exit path.
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    old_handlers = {sig: signal.signal(sig, _ignore) for sig in signals}
    old_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    try:
        yield read_fd
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        os.close(read_fd)
        os.close(write_fd)


def read_signals(fd: int) -> list[int]:
    try:
        return list(os.read(fd, 512))
    except BlockingIOError:
        return []
