"""The terminal: keys in (blessed), frames out (curtsies).

`Terminal` owns every change of terminal state and undoes it on every exit
path.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import io
import locale
import os
import select
import signal
import sys
import termios
from collections.abc import Iterator
from typing import TextIO

import blessed
from curtsies.formatstring import FmtStr
from curtsies.formatstringarray import FSArray
from curtsies.window import FullscreenWindow


class TerminalGone(Exception):
    """stdin closed under us: the window was closed or the connection dropped."""


@contextlib.contextmanager
def no_flow_control(fd: int) -> Iterator[None]:
    """Ctrl-S must not freeze our output: a blocked terminal write would stop
    the loop that drains the panes, and so the traced programs."""
    saved = termios.tcgetattr(fd)
    changed = list(saved)
    changed[0] &= ~(termios.IXON | termios.IXOFF)
    termios.tcsetattr(fd, termios.TCSANOW, changed)
    try:
        yield
    finally:
        with contextlib.suppress(termios.error):
            termios.tcsetattr(fd, termios.TCSANOW, saved)


@contextlib.contextmanager
def restored_if_possible(mode: contextlib.AbstractContextManager[object]) -> Iterator[None]:
    """Enter a terminal mode; leaving it must not fail when the terminal is gone."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(mode)
        try:
            yield
        finally:
            with contextlib.suppress(termios.error, OSError):
                stack.close()


@contextlib.contextmanager
def ignoring(signum: int) -> Iterator[None]:
    """Ctrl-Z would stop autotrace, and with it the reading of every pane."""
    previous = signal.signal(signum, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signum, previous)


class FrameBuffer(io.TextIOBase):
    """Collects the many small writes curtsies makes for a frame: one write per frame.

    curtsies flushes after every write, so flush() does nothing here; send()
    is what puts a frame on the terminal."""

    def __init__(self, real: TextIO):
        self.real = real
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def send(self) -> None:
        text, self.parts = "".join(self.parts), []
        # The terminal may be gone (window closed, ssh dropped): nobody is
        # left to see a frame, and the session must still end cleanly.
        with contextlib.suppress(OSError):
            self.real.write(text)
            self.real.flush()

    def fileno(self) -> int:
        return self.real.fileno()

    def isatty(self) -> bool:
        return self.real.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.real.encoding


# Locales whose character widths are UTF-8's, in the order tried.
UTF8_LOCALES = ("C.UTF-8", "C.utf8", "en_US.UTF-8")


def utf8_character_widths() -> None:
    """curtsies measures text with the C library's wcswidth, which in the C or
    POSIX locale (LC_ALL=C) knows no character past ASCII: the first frame
    with a `│` would fail. Python writes UTF-8 there anyway (PEP 540), so the
    C library is given a UTF-8 LC_CTYPE too (messages and numbers keep theirs)."""
    if locale.nl_langinfo(locale.CODESET).replace("-", "").upper() == "UTF8":
        return
    for name in UTF8_LOCALES:
        try:
            locale.setlocale(locale.LC_CTYPE, name)
            return
        except locale.Error:
            continue


class Terminal:
    """Full screen, no echo, hidden cursor; restored however we leave."""

    def __init__(self) -> None:
        utf8_character_widths()
        self.term = blessed.Terminal()
        self._size = (80, 24)
        self.out = FrameBuffer(sys.__stdout__)  # type: ignore[arg-type]
        self.window = FullscreenWindow(out_stream=self.out,  # type: ignore[arg-type]
                                       hide_cursor=True)
        # curtsies asks blessed for a cursor move per changed row, and blessed
        # formats the capability anew each time: remember them.
        self.window.t.move = functools.lru_cache(maxsize=4096)(self.window.t.move)  # type: ignore[attr-defined]
        self._before_typing: list | None = None  # terminal modes while not typing into a pane

    @contextlib.contextmanager
    def active(self) -> Iterator[Terminal]:
        with contextlib.ExitStack() as stack:
            stack.callback(self.out.send)  # last: the restoring sequences go out too
            stack.enter_context(restored_if_possible(self.term.cbreak()))
            stack.enter_context(no_flow_control(self.fileno()))
            stack.enter_context(ignoring(signal.SIGTSTP))
            stack.enter_context(self.window)
            stack.callback(self.typing, False)  # first undone: its sequence goes out too
            self.out.send()
            yield self

    def fileno(self) -> int:
        return sys.__stdin__.fileno()  # type: ignore[union-attr]

    def size(self) -> tuple[int, int]:
        """The terminal's size; the last one known once the terminal is gone."""
        with contextlib.suppress(OSError, ValueError):
            size = os.get_terminal_size(sys.__stdout__.fileno())  # type: ignore[union-attr]
            self._size = size.columns, size.lines
        return self._size

    def pending_keys(self) -> list[str]:
        """Every key waiting on stdin, as blessed names (KEY_UP) or characters.

        Raises TerminalGone when stdin has closed (the terminal went away)."""
        return [name for name, _ in self.pending_keystrokes()]

    def pending_keystrokes(self) -> list[tuple[str, str]]:
        """Every key waiting on stdin: (its name as pending_keys gives it, the
        text the terminal sent for it), so a key can be passed on as typed."""
        if self._hung_up():  # before inkey(): some blessed versions spin at EOF
            raise TerminalGone
        keys: list[tuple[str, str]] = []
        while True:
            try:
                key = self.term.inkey(timeout=0)
            except (EOFError, OSError):
                raise TerminalGone from None
            if not key:
                return keys
            keys.append((key.name if key.is_sequence and key.name else str(key), str(key)))

    def typing(self, on: bool) -> None:
        """Input mode on or off. On, every key reaches us as typed, for a
        pane's program: no signals from Ctrl-C, Ctrl-Z or Ctrl-\\ (ISIG off:
        the pane's own pty makes them), no Ctrl-V quoting, Enter as CR, and
        pastes in brackets (?2004), so pasted text is told from typed text."""
        fd = self.fileno()
        with contextlib.suppress(termios.error, OSError):
            if on and self._before_typing is None:
                self._before_typing = termios.tcgetattr(fd)
                raw = termios.tcgetattr(fd)
                raw[0] &= ~(termios.ICRNL | termios.INLCR | termios.IGNCR | termios.IXON)
                raw[3] &= ~(termios.ISIG | termios.IEXTEN)
                termios.tcsetattr(fd, termios.TCSANOW, raw)
                self.out.write("\x1b[?2004h")
                self.out.send()
            elif not on and self._before_typing is not None:
                saved, self._before_typing = self._before_typing, None
                self.out.write("\x1b[?2004l")
                self.out.send()
                termios.tcsetattr(fd, termios.TCSANOW, saved)

    def _hung_up(self) -> bool:
        """stdin says it is readable yet holds nothing: the terminal is gone."""
        fd = self.fileno()
        try:
            if not select.select([fd], [], [], 0)[0]:
                return False
            waiting = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
        except OSError:
            return True
        return int.from_bytes(waiting, sys.byteorder) == 0

    def draw(self, frame: FSArray | list[FmtStr]) -> None:
        self.window.render_to_terminal(frame)
        self.out.send()

    def forget_screen(self) -> None:
        """Make the next draw repaint every row (after `r`, or a resize)."""
        self.window._last_lines_by_row = {}  # curtsies has no public way to invalidate
        self.window.write(self.term.clear)
        self.out.send()
