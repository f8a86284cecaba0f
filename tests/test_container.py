"""--container NAME: the container's main pid from its runtime, then as
`--pid PID --netns`, with the container's files seen through /proc/PID.

No container runtime runs here. The lookup is one small function
(live/container.py); the rest is tested with a process started in
namespaces of its own (unshare: network, mount, UTS), which is what a
container's main process is to the host, and a stand-in `docker` on PATH
that answers `inspect` with that pid, as the real one does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autotrace.live.container import ContainerError, find_container
from tests.conftest import (
    RecordingFiles,
    assert_one_line_error,
    autotrace_env,
    run_autotrace,
)
from tests.sshlab import free_port

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need root")

# A stand-in for `docker inspect --format '{{.State.Pid}}' NAME`.
FAKE_DOCKER = """#!/bin/sh
[ "$1" = inspect ] || exit 2
eval "name=\\${$#}"
if [ "$name" = web ]; then cat "$(dirname "$0")/pid"; exit 0; fi
echo "Error: No such object: $name" >&2
exit 1
"""

INSIDE = """\
import os, socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
held = open("/mnt/inside.txt")
print(os.getpid(), flush=True)
time.sleep(60)
"""


def test_no_runtime_is_one_clear_line():
    with pytest.raises(ContainerError, match="none of docker, podman, nerdctl is installed"):
        find_container("web", which=lambda name: None)


def fake_runtime(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    return bin_dir


def test_an_unknown_container_is_the_runtimes_words(tmp_path: Path):
    bin_dir = fake_runtime(tmp_path)
    env = autotrace_env(PATH=f"{bin_dir}:{os.environ['PATH']}")
    result = run_autotrace(["--headless", "-l", tmp_path / "rec", "--container", "db",
                            "true"], env=env)
    line = assert_one_line_error(result)
    assert "docker: Error: No such object: db" in line


def test_container_and_pid_together_is_a_usage_error():
    result = run_autotrace(["--container", "web", "--pid", "1", "true"])
    assert result.returncode == 2 and "give one" in result.stderr


@ROOT_ONLY
def test_a_container_is_traced_in_its_own_network_and_files(tmp_path: Path):
    port = free_port()
    setup = ("ip link set lo up && mount -t tmpfs none /mnt && "
             "echo 'nameserver 10.53.53.53' > /mnt/resolv.conf && "
             "mount --bind /mnt/resolv.conf /etc/resolv.conf && echo x > /mnt/inside.txt && "
             f"exec {sys.executable} -c \"$1\" {port}")
    inside = subprocess.Popen(["unshare", "--net", "--mount", "--uts", "--fork", "sh", "-c",
                               setup, "inside", INSIDE], stdout=subprocess.PIPE, text=True)
    try:
        assert inside.stdout is not None
        pid = int(inside.stdout.readline())
        bin_dir = fake_runtime(tmp_path)
        (bin_dir / "pid").write_text(f"{pid}\n")
        env = autotrace_env(PATH=f"{bin_dir}:{os.environ['PATH']}")
        directory = tmp_path / "rec"
        result = run_autotrace(["--headless", "-l", directory, "--duration", "2",
                                "--container", "web", "--preset", "dns", "ss -Hlnt", "@files"],
                               env=env)
        assert result.returncode == 0, result.stderr
        rec = RecordingFiles(directory)
        assert rec.panes[0]["pid"] == pid and "container web" in rec.panes[0]["command"]
        outputs = {pane["command"]: rec.output(pane["index"]) for pane in rec.panes}
        assert f"127.0.0.1:{port}" in outputs["ss -Hlnt"]  # its network, not ours
        assert "nameserver 10.53.53.53" in outputs["@resolv"]  # its /etc/resolv.conf, not ours
        assert "/mnt/inside.txt" in outputs["@files"]  # a file of its mount namespace
        assert inside.poll() is None  # attached: never killed
    finally:
        inside.kill()
        inside.wait()
