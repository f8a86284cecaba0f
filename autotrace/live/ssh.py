"""OpenSSH connections to other hosts: one master per host, shared by its panes.

Every host named in a `HOST: COMMAND` pane gets one ControlMaster, its
socket in a private 0700 folder; each pane, clock question and remote signal
is one more session over it, and `ssh -O exit` closes it at the end. The
user's ssh command line (`--ssh`) is used as given, plus BatchMode: nothing
may prompt inside the view.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from autotrace.live.clocks import ClockSample, measure
from autotrace.sanitise import one_line

# `HOST: COMMAND`: a plain destination word (an ssh config alias, user@host,
# [v6]) right before ": ". Probes (`@net`), `VAR=x: ...` and colons elsewhere
# (`nc host:80`, `python3 -c 'a: b'`) are not destinations.
REMOTE_PANE = re.compile(
    r"(?P<host>(?:[A-Za-z0-9_][A-Za-z0-9_.+-]*@)?"
    r"(?:[A-Za-z0-9_][A-Za-z0-9_.-]*|\[[0-9A-Fa-f:.]+\])): (?P<command>.*\S.*)", re.S)
# How long a master may take to connect and log in.
CONNECT_TIMEOUT = 10
# A remote shell answering the time, once per line it reads.
TIME_LOOP = "while read -r _; do date +%s.%N; done"
# How long the clock's first answer may take (the remote shell starting, its
# rc files run), and each one after it. A host slower than that has no
# measured clock: its times are as they arrive, never a session held up.
FIRST_ANSWER_TIMEOUT = CONNECT_TIMEOUT
ANSWER_TIMEOUT = 2.0


def split_remote(command: str) -> tuple[str | None, str]:
    """(HOST, COMMAND) for `HOST: COMMAND`; (None, command) for a local one."""
    found = REMOTE_PANE.fullmatch(command)
    if found is None:
        return None, command
    return found["host"], found["command"].strip()


def _die_with_parent() -> None:
    """In the master, before exec: SIGTERM when autotrace goes, however it goes."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass
class HostLink:
    host: str
    socket: Path
    error: str | None = None  # ssh's own words when the master could not connect
    start: ClockSample | None = None
    end: ClockSample | None = None
    master: subprocess.Popen[bytes] | None = None
    said: IO[bytes] | None = None  # the master's stderr
    sending: subprocess.Popen[bytes] | None = None  # the last signal sent there

    def words(self) -> str:
        """What ssh said (its last lines), one line."""
        if self.said is None:
            return ""
        self.said.seek(0)
        text = self.said.read(16384).decode(errors="replace")
        lines = [one_line(line).strip() for line in text.splitlines() if line.strip()]
        return "; ".join(lines[-3:])


@dataclass
class SshHosts:
    """The masters of one session, and every ssh command line built on them."""

    ssh: list[str] = field(default_factory=lambda: ["ssh"])
    # Under sudo, (uid, gid) of the user who ran it: ssh runs as them, with
    # their config, keys and known hosts, as the same `ssh HOST` would.
    user: tuple[int, int] | None = None
    links: dict[str, HostLink] = field(default_factory=dict)
    _folder: Path | None = field(default=None, init=False)

    def _as_user(self) -> dict[str, Any]:
        """subprocess's arguments that run a command as the invoking user."""
        if self.user is None:
            return {}
        uid, gid = self.user
        try:
            groups = os.getgrouplist(pwd.getpwuid(uid).pw_name, gid)
        except KeyError:  # a uid with no name: its own group only
            groups = [gid]
        return {"user": uid, "group": gid, "extra_groups": groups}

    def _user_prefix(self) -> list[str]:
        """The same for a command line (a pane's ssh, started in a pty)."""
        if self.user is None:
            return []
        uid, gid = self.user
        try:
            pwd.getpwuid(uid)
            groups = "--init-groups"
        except KeyError:
            groups = "--clear-groups"
        return ["setpriv", f"--reuid={uid}", f"--regid={gid}", groups, "--"]

    def _base(self, host: str) -> list[str]:
        link = self.links[host]
        return [*self.ssh, "-o", "BatchMode=yes", "-o", f"ControlPath={link.socket}",
                "-o", f"ConnectTimeout={CONNECT_TIMEOUT}"]

    def connect(self, hosts: Iterable[str]) -> None:
        """A master for every host, all at once; a host that fails keeps ssh's message.

        Each master is our child, not a ControlPersist daemon: it dies with
        autotrace (PR_SET_PDEATHSIG), even a SIGKILLed one, and its remote
        sessions with it. It is up once its socket is there."""
        self._folder = Path(tempfile.mkdtemp(prefix="autotrace-ssh-"))  # mode 0700
        if self.user is not None:
            os.chown(self._folder, *self.user)  # their ssh makes the sockets
        for number, host in enumerate(dict.fromkeys(hosts)):
            link = self.links[host] = HostLink(host, socket=self._folder / f"h{number}")
            link.said = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
            # Keep-alives: a wire that dies silently is noticed (and recorded) in 15 s.
            argv = [*self._base(host), "-o", "ControlMaster=yes", "-o", "ServerAliveInterval=5",
                    "-o", "ServerAliveCountMax=3", "-N", host]
            try:
                link.master = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=link.said, start_new_session=True, preexec_fn=_die_with_parent,
                    **self._as_user())
            except OSError as err:
                link.error = f"cannot run {self.ssh[0]}: {err.strerror}"
        deadline = time.monotonic() + CONNECT_TIMEOUT + 5
        waiting = [link for link in self.links.values() if link.master is not None]
        while waiting and time.monotonic() < deadline:
            for link in list(waiting):
                if link.socket.exists():
                    waiting.remove(link)
                elif link.master.poll() is not None:  # type: ignore[union-attr]
                    link.error = link.words() or f"ssh exited {link.master.returncode}"  # type: ignore[union-attr]
                    waiting.remove(link)
            time.sleep(0.01)
        for link in waiting:
            link.master.kill()  # type: ignore[union-attr]
            link.error = link.words() or "ssh did not connect in time"

    def usable(self, host: str) -> bool:
        link = self.links.get(host)
        return link is not None and link.error is None

    def lost(self, host: str, wait: float = 0.3) -> bool:
        """Has the host's connection gone? Its master ends when the wire does
        (its sessions learn it from the master), so a master still up after
        WAIT means the wire is fine."""
        link = self.links.get(host)
        if link is None or link.master is None:
            return True
        try:
            link.master.wait(wait)  # reaped by the session already: poll() says so at once
        except subprocess.TimeoutExpired:
            return False
        return True

    def pane_argv(self, host: str, remote_command: str) -> list[str]:
        """ssh running REMOTE_COMMAND in a remote pty, over the host's master."""
        # LogLevel ERROR: not "Shared connection to HOST closed." at every end.
        return [*self._user_prefix(), *self._base(host), "-o", "ControlMaster=no",
                "-o", "LogLevel=ERROR", "-tt",
                host, remote_command]

    def run(self, host: str, remote_command: str, timeout: float = 5.0) -> str | None:
        """Run a short remote command over the master; its output, None if it failed."""
        try:
            done = subprocess.run([*self._base(host), "-o", "ControlMaster=no", "-T", host,
                                   remote_command], stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=timeout, start_new_session=True,
                                  **self._as_user())
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.decode(errors="replace") if done.returncode == 0 else None

    def start(self, host: str, remote_command: str) -> None:
        """Run a remote command over the master without waiting for it (a signal).

        One at a time per host, in order: a CONT must not overtake the STOP
        sent before it."""
        link = self.links[host]
        if link.sending is not None:
            with contextlib.suppress(subprocess.TimeoutExpired, ChildProcessError):
                link.sending.wait(5)
        try:
            link.sending = subprocess.Popen(
                [*self._base(host), "-o", "ControlMaster=no", "-T", host, remote_command],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True, **self._as_user())
        except OSError:
            link.sending = None

    def measure_clocks(self, when: str) -> None:
        """Each connected host's clock offset now ('start' or 'end'), all
        hosts at once: a slow one costs its own timeout, not the sum."""
        from concurrent.futures import ThreadPoolExecutor  # only sessions with hosts pay for it

        connected = [link for link in self.links.values() if link.error is None]
        if not connected:
            return
        with ThreadPoolExecutor(len(connected)) as pool:
            for link, sample in zip(connected, pool.map(self._measure, connected)):
                setattr(link, when, sample)

    def _measure(self, link: HostLink) -> ClockSample | None:
        """Timed questions over one session, so ssh's own start is not in the round trip."""
        try:
            proc = subprocess.Popen([*self._base(link.host), "-o", "ControlMaster=no", "-T",
                                     link.host, TIME_LOOP], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    start_new_session=True, bufsize=0, **self._as_user())
        except OSError:
            return None
        assert proc.stdin is not None and proc.stdout is not None
        stdin, stdout = proc.stdin, proc.stdout

        def ask(timeout: float = ANSWER_TIMEOUT) -> float:
            stdin.write(b"\n")
            answer = b""
            deadline = time.monotonic() + timeout
            while not answer.endswith(b"\n"):
                if not select.select([stdout], [], [], max(0.0, deadline - time.monotonic()))[0]:
                    raise TimeoutError(f"{link.host}: no answer in {timeout:g} s")
                byte = stdout.read(1)  # unbuffered: select sees all that is unread
                if not byte:
                    raise OSError("connection closed")
                answer += byte
            return float(answer)

        try:
            # The first answer waits for the remote shell to start: not a sample.
            ask(FIRST_ANSWER_TIMEOUT)
            return measure(ask, time.time)
        except (OSError, ValueError):  # TimeoutError is an OSError
            proc.kill()  # a shell that has not answered would not see its stdin close
            return None
        finally:
            with contextlib.suppress(OSError):
                stdin.close()
            try:
                proc.wait(2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        """Close every master (`ssh -O exit`) and remove the sockets' folder."""
        for link in self.links.values():
            if link.error is None:
                with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                    subprocess.run([*self._base(link.host), "-O", "exit", link.host],
                                   stdin=subprocess.DEVNULL, capture_output=True, timeout=5,
                                   **self._as_user())
            if link.master is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    link.master.wait(2)  # the session may have reaped it already
                if link.master.poll() is None:
                    link.master.kill()
            if link.said is not None:
                link.said.close()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
