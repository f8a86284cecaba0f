"""A container named by the user, as the pid of its main process.

The one job here is the lookup: ask whichever of docker, podman or nerdctl
is installed. What follows is the same as `--pid PID --netns`: tracers run
in the container's network namespace, and what reads files through
/proc/PID (the resolver files of the dns preset, @files' paths) already sees
the container's mount namespace.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from autotrace.errors import UserError
from autotrace.sanitise import one_line

RUNTIMES = ("docker", "podman", "nerdctl")


class ContainerError(UserError):
    """No runtime, no such container, or one that is not running: one line."""


@dataclass(frozen=True)
class Container:
    name: str
    runtime: str
    pid: int


def find_container(name: str, which: Callable[[str], str | None] = shutil.which,
                   timeout: float = 20.0) -> Container:
    """The main pid of container NAME, from the first runtime installed."""
    runtime = next((r for r in RUNTIMES if which(r)), None)
    if runtime is None:
        raise ContainerError(f"--container {name}: none of {', '.join(RUNTIMES)} is "
                             "installed; give the process with --pid PID --netns")
    try:
        done = subprocess.run([runtime, "inspect", "--format", "{{.State.Pid}}", name],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ContainerError(f"--container {name}: {runtime} inspect failed: {err}") from None
    said = one_line(done.stderr.strip().splitlines()[-1]) if done.stderr.strip() else ""
    if done.returncode != 0:
        raise ContainerError(f"--container {name}: {runtime}: {said or 'no such container'}")
    try:
        pid = int(done.stdout.split()[0])
    except (ValueError, IndexError):
        raise ContainerError(f"--container {name}: {runtime} gave no pid") from None
    if pid <= 0:
        raise ContainerError(f"--container {name} is not running ({runtime} says pid {pid})")
    return Container(name, runtime, pid)
