"""Other hosts for the tests: a real OpenSSH server, on loopback and in
network namespaces that stand in for other machines.

- `local`: sshd on 127.0.0.1:PORT, a key made for the test run;
- `alpha`, `beta`, `gamma`, `delta`: each a network namespace of its own
  (only lo) and a UTS namespace with its own host name (`at-alpha`...), an
  sshd daemon started inside them listening on that namespace's 127.0.0.1:22,
  reached through a ProxyCommand that relays to it from inside the network
  namespace (no addresses to plan). The daemon is the fixture's, not a
  descendant of autotrace, so what runs "there" is not ours to reap locally:
  teardown must end it over ssh;
- `sloth`: another such host whose login shell is slow to start (its
  ~/.bashrc sleeps a minute), the way a host with a heavy rc file is;
- `refused` (a key the server does not accept), `strangehost` (a host key
  nobody has seen), `nowhere` (a port where nothing listens).

Every server runs in a mount namespace of its own where the test user's rc
files (~/.bashrc, ~/.profile...) are empty: sshd's `bash -c` reads ~/.bashrc,
and this machine's runs `pyenv rehash`, which waits a minute on a lock that
a killed shell left behind. The lab's hosts are other machines, not this
one's login set-up.

The processes of every "host" share this machine's pid namespace and clock:
a remote pid is also a pid here, and the clock offset measured is near 0.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
# stdin/stdout <-> 127.0.0.1:22 in the namespace it is started in.
RELAY = """\
import os, select, socket
conn = socket.create_connection(("127.0.0.1", 22))
sources = {0: conn.fileno(), conn.fileno(): 1}
while sources:
    for fd in select.select(list(sources), [], [])[0]:
        data = os.read(fd, 65536)
        if not data:
            raise SystemExit
        os.write(sources[fd], data)
"""
NAMESPACE_HOSTS = ("alpha", "beta", "gamma", "delta", "sloth")
# What `sloth`'s ~/.bashrc does; the other hosts' is empty.
SLOW_RC = "sleep 60\n"
RC_FILES = (".bashrc", ".bash_profile", ".bash_login", ".profile")


def _own_rc_files(folder: Path, name: str) -> str:
    """Shell words, run in a new mount namespace, that put the lab's rc files
    over the test user's for the server started after them."""
    rc = folder / f"rc-{name}"
    rc.write_text(SLOW_RC if name == "sloth" else "")
    home = Path.home()
    return "".join(f"mount --bind {rc} {home / file}; " for file in RC_FILES
                   if (home / file).exists())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Lab:
    folder: Path
    config: Path  # the ssh client's config: every host above
    port: int  # the loopback sshd's (`local`)

    @property
    def ssh_option(self) -> list[str]:
        """autotrace's options for it."""
        return ["--ssh", f"ssh -F {self.config}"]

    def ssh(self, host: str, command: str, timeout: float = 20) -> str:
        """COMMAND's output on HOST, through a connection of its own."""
        # The checks share one connection per host (not autotrace's): a new
        # one for every look would cost a second each.
        done = subprocess.run(["ssh", "-F", str(self.config), "-o", "ControlMaster=auto",
                               "-o", f"ControlPath={self.folder}/check-%h",
                               "-o", "ControlPersist=300", host, command],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def remote_processes(self, host: str, marker: str) -> list[str]:
        """Command lines on HOST that hold MARKER: not the ps looking, and not
        autotrace or its ssh clients (the "hosts" share this pid namespace)."""
        lines = self.ssh(host, "ps -eo pid=,stat=,args=").splitlines()
        return [line for line in lines if marker in line
                and not any(word in line for word in ("ps -eo", "-m autotrace", "ssh -F"))]


def _write_config(folder: Path, port: int, closed_port: int) -> Path:
    sshd_config = folder / "sshd_config"
    sshd_config.write_text(f"""\
ListenAddress 127.0.0.1:{port}
HostKey {folder}/host_key
AuthorizedKeysFile {folder}/authorized_keys
StrictModes no
UsePAM no
PidFile none
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
LogLevel ERROR
MaxSessions 100
MaxStartups 100
""")
    host_key = (folder / "host_key.pub").read_text().split()
    known = [f"{name} {host_key[0]} {host_key[1]}" for name in ("local", "refused",
                                                                  *NAMESPACE_HOSTS)]
    (folder / "known_hosts").write_text("\n".join(known) + "\n")
    (folder / "nobody_known").write_text("")
    config = folder / "ssh_config"
    lines = []
    for name in NAMESPACE_HOSTS:
        lines += [f"Host {name}", f"  HostKeyAlias {name}",
                  f"  ProxyCommand ip netns exec {folder.name}-{name} "
                  f"{sys.executable} -S {folder}/relay.py"]
    lines += [
        "Host local", "  HostName 127.0.0.1", f"  Port {port}", "  HostKeyAlias local",
        "Host refused", "  HostName 127.0.0.1", f"  Port {port}", "  HostKeyAlias refused",
        f"  IdentityFile {folder}/stranger",
        "Host strangehost", "  HostName 127.0.0.1", f"  Port {port}",
        f"  UserKnownHostsFile {folder}/nobody_known",
        "Host nowhere", "  HostName 127.0.0.1", f"  Port {closed_port}",
        "Host !refused *", f"  IdentityFile {folder}/id",
        "Host *", "  User root", "  IdentitiesOnly yes",
        f"  UserKnownHostsFile {folder}/known_hosts", "  StrictHostKeyChecking yes",
        "  BatchMode yes", "  LogLevel ERROR",
    ]
    config.write_text("\n".join(lines) + "\n")
    return config


def _listening(port: int, namespace: str | None = None) -> bool:
    if namespace is None:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    found = subprocess.run(["ip", "netns", "exec", namespace, "ss", "-Htln", "sport", "= :22"],
                           capture_output=True, text=True)
    return bool(found.stdout.strip())


@contextlib.contextmanager
def ssh_lab(folder: Path) -> Iterator[Lab]:
    """The lab, torn down afterwards (server stopped, namespaces removed)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve()
    # A short name: it names the namespaces too.
    folder = Path(shutil.move(str(folder), str(folder.parent / f"lab{secrets.token_hex(2)}")))
    for key in ("host_key", "id", "stranger"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(folder / key)], check=True)
    shutil.copy(folder / "id.pub", folder / "authorized_keys")
    port, closed_port = free_port(), free_port()
    config = _write_config(folder, port, closed_port)
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
    (folder / "relay.py").write_text(RELAY)
    namespaces: list[str] = []
    # The servers daemonize (no -D): they are not the test run's children,
    # which tests of autotrace's reaping check for. Each writes its pid file.
    pid_files = [folder / "sshd-local.pid"]
    try:
        subprocess.run(["unshare", "--mount", "sh", "-c",
                        f"{_own_rc_files(folder, 'local')}exec {SSHD} -f {folder}/sshd_config "
                        f"-o PidFile={pid_files[0]}"], check=True, stdin=subprocess.DEVNULL)
        for name in NAMESPACE_HOSTS:
            namespace = f"{folder.name}-{name}"
            subprocess.run(["ip", "netns", "add", namespace], check=True)
            namespaces.append(namespace)
            subprocess.run(["ip", "-n", namespace, "link", "set", "lo", "up"], check=True)
            pid_files.append(folder / f"sshd-{name}.pid")
            subprocess.run(
                ["ip", "netns", "exec", namespace, "unshare", "--uts", "--mount", "sh", "-c",
                 f"hostname at-{name}; {_own_rc_files(folder, name)}"
                 f"exec {SSHD} -f {folder}/sshd_config "
                 f"-o ListenAddress=127.0.0.1:22 -o PidFile={pid_files[-1]}"],
                check=True, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not _listening(port) or not all(_listening(22, ns) for ns in namespaces):
            assert time.monotonic() < deadline, "sshd did not start"
            time.sleep(0.05)
        yield Lab(folder, config, port)
    finally:
        for check in folder.glob("check-*"):
            subprocess.run(["ssh", "-F", str(config), "-o", f"ControlPath={check}", "-O", "exit",
                            check.name[len("check-"):]], capture_output=True, check=False)
        for pid_file in pid_files:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
        for namespace in namespaces:
            subprocess.run(["ip", "netns", "del", namespace], check=False)
