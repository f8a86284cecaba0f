"""Named tracer sets (`--preset dns`), built in or from the user's presets.toml.

A preset is a list of tracer commands (PID stands for the traced process) and
probes (`@net`). Which of them can run depends on the privileges at hand:
`resolve` keeps what can run and says, for the rest, why not and how to fix
it, so the session can show that in a pane instead of failing.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from autotrace.errors import UserError
from autotrace.live.hints import (
    CAP_NET_RAW,
    CAP_SYS_PTRACE,
    CAPTURE_HINT,
    PTRACE_HINT,
    file_grants,
    has_capability,
    ptrace_scope,
)
from autotrace.live.probes import PROBE_NAMES, is_probe
from autotrace.live.procs import PTRACE_TOOLS, SHELL_WORDS

PTRACE = "ptrace"
CAPTURE = "capture"
CAPTURE_TOOLS = frozenset({"tcpdump", "tshark", "dumpcap"})

# Linux capability bits (linux/capability.h).

PRESETS_FILE = "presets.toml"
PRESET_KEYS = ("description", "tracers")


class PresetError(UserError):
    """A preset that does not exist or a presets file that cannot be used; one line."""


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    tracers: tuple[str, ...]
    source: str = "built-in"  # or the path of the file it came from

    @property
    def needs(self) -> tuple[str | None, ...]:
        """What each tracer needs (PTRACE, CAPTURE or None), in tracer order."""
        return tuple(need_of(tracer) for tracer in self.tracers)


# The resolver configuration the process sees. Read through /proc/PID/root,
# the files are the process's own, e.g. inside its container or mount
# namespace, not the host's.
RESOLVER_VIEW = (
    "echo '# /etc/resolv.conf'; cat /proc/PID/root/etc/resolv.conf; echo; "
    "echo '# hosts: line of /etc/nsswitch.conf'; grep '^hosts:' /proc/PID/root/etc/nsswitch.conf; "
    "echo; echo '# /etc/hosts'; cat /proc/PID/root/etc/hosts"
)


# Refreshes like a probe: clear the pane, list, wait; until the process is gone.
LSOF_LOOP = ("while kill -0 PID 2>/dev/null; "
             "do printf '\\033[H\\033[2J'; lsof -w -p PID; sleep 2; done")

BUILTIN_PRESETS = {
    preset.name: preset
    for preset in (
        Preset("default", "every system call, process stats and open files",
               ("strace -f -tt -p PID", "@proc", "@files")),
        Preset("dns", "name resolution: file and network calls, DNS packets, "
                      "sockets and the resolver configuration the process sees",
               ("strace -f -tt -e trace=%file,%network -p PID",
                "tcpdump -l -n -i any port 53", "@dns", "@net", "@resolv")),
        Preset("net", "network calls, all packets and the sockets of the process",
               ("strace -f -tt -e trace=%network -p PID", "tcpdump -l -n -i any", "@net")),
        Preset("files", "file calls, open files and lsof of the process",
               ("strace -f -tt -e trace=%file -p PID", "@files", LSOF_LOOP)),
    )
}


def need_of(command: str) -> str | None:
    """The privilege a tracer command needs, judged by the program it runs."""
    if command.strip().startswith("@dns"):
        return CAPTURE  # its process runs tcpdump (live/dns_capture.py)
    program = program_of(command)
    if program in PTRACE_TOOLS:
        return PTRACE
    if program in CAPTURE_TOOLS:
        return CAPTURE
    return None


def program_of(command: str) -> str | None:
    """The program a simple command runs; None for probes and shell constructs."""
    words = command.split()
    if not words or is_probe(command) or "=" in words[0] or words[0] in SHELL_WORDS:
        return None
    return os.path.basename(words[0])


# --- privileges ---------------------------------------------------------------


@dataclass(frozen=True)
class Privileges:
    """Why ptrace or packet capture is refused here; None means permitted."""

    ptrace_refused: str | None = None
    capture_refused: str | None = None

    @classmethod
    def detect(cls, target_pid: int | None = None) -> Privileges:
        """The privileges this process has towards TARGET_PID (default: its own children)."""
        return cls(ptrace_refusal(target_pid), capture_refusal())

    def refusal(self, need: str | None) -> str | None:
        return {PTRACE: self.ptrace_refused, CAPTURE: self.capture_refused}.get(need or "")


def ptrace_refusal(target_pid: int | None = None) -> str | None:
    scope = ptrace_scope()
    if scope >= 3:
        return "ptrace is disabled on this machine (kernel.yama.ptrace_scope=3)"
    if has_capability(CAP_SYS_PTRACE):
        return None
    if scope == 2:
        return ("ptrace needs admin rights here (kernel.yama.ptrace_scope=2): "
                "run autotrace with sudo")
    if target_pid is not None:
        try:
            owner = psutil.Process(target_pid).uids().real
        except psutil.Error:
            owner = None
        if owner != os.geteuid():
            return (f"ptrace not permitted: process {target_pid} belongs to another user: "
                    "run autotrace with sudo")
    if scope == 1:
        return "ptrace not permitted (kernel.yama.ptrace_scope=1): " + hint_fix(PTRACE_HINT)
    return None


def capture_refusal(tool: str = "tcpdump") -> str | None:
    if has_capability(CAP_NET_RAW):
        return None
    path = shutil.which(tool)
    if path and file_grants(os.path.realpath(path), CAP_NET_RAW):
        return None
    return "packet capture not permitted: " + hint_fix(CAPTURE_HINT)


def hint_fix(hint: str) -> str:
    """The remedy in a hints message: what follows "... was refused: "."""
    return hint.split(": ", 1)[-1]


# --- user presets -------------------------------------------------------------


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """$XDG_CONFIG_HOME/autotrace/presets.toml, else ~/.config/autotrace/presets.toml.

    Under sudo, ~ is the invoking user's home: their presets are the ones
    they mean, as the recording is theirs too.
    """
    env = os.environ if env is None else env
    if env.get("XDG_CONFIG_HOME"):
        return Path(env["XDG_CONFIG_HOME"]) / "autotrace" / PRESETS_FILE
    home = None
    if env.get("SUDO_USER"):
        with contextlib.suppress(KeyError):  # a user that no longer exists
            home = pwd.getpwnam(env["SUDO_USER"]).pw_dir
    home = home or env.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".config" / "autotrace" / PRESETS_FILE


def load_user_presets(path: Path | None = None) -> dict[str, Preset]:
    """The presets defined in PATH (default: config_path()); none if it does not exist.

    The file has one table per preset:

        [mydns]
        description = "what it is for"
        tracers = ["strace -e trace=%network -p PID", "@net"]
    """
    # Imported here: most runs have no presets file, and start-up time counts.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on older Pythons only
        import tomli as tomllib
    path = config_path() if path is None else path
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except PermissionError as err:
        if not _can_see(path):
            # A home closed to us (`sudo -u nobody`, setpriv): no presets of
            # ours there, and no reason to refuse the whole run.
            return {}
        raise PresetError(f"{path}: cannot read it: {err.strerror}") from None
    except OSError as err:
        raise PresetError(f"{path}: cannot read it: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise PresetError(f"{path}: not valid TOML: {err}") from None
    return {name: parse_preset(path, name, table) for name, table in data.items()}


def _can_see(path: Path) -> bool:
    """Whether PATH can be looked up at all (every directory on the way searchable)."""
    try:
        path.stat()
    except PermissionError:
        return False
    except OSError:
        pass
    return True


def parse_preset(path: Path, name: str, table: object) -> Preset:
    def fail(message: str) -> PresetError:
        return PresetError(f"{path}: preset {name!r}: {message}")

    if not isinstance(table, dict):
        raise fail(f"expected a table ([{name}]) with {' and '.join(PRESET_KEYS)}")
    unknown = sorted(set(table) - set(PRESET_KEYS))
    if unknown:
        raise fail(f"unknown key {unknown[0]!r} (known keys: {', '.join(PRESET_KEYS)})")
    tracers = table.get("tracers")
    if (not isinstance(tracers, list) or not tracers
            or not all(isinstance(t, str) and t.strip() for t in tracers)):
        raise fail("'tracers' must be a non-empty list of commands")
    description = table.get("description", "")
    if not isinstance(description, str):
        raise fail("'description' must be a string")
    for tracer in tracers:
        if is_probe(tracer) and tracer.strip() not in PROBE_NAMES \
                and not tracer.strip().startswith("@dns"):
            raise fail(f"unknown probe {tracer.strip()!r} (the probes are "
                       f"{', '.join(PROBE_NAMES)})")
    return Preset(name, description, tuple(t.strip() for t in tracers), str(path))


def all_presets(path: Path | None = None) -> dict[str, Preset]:
    """Built-in presets, overridden or extended by the user's."""
    return {**BUILTIN_PRESETS, **load_user_presets(path)}


# --- using presets -------------------------------------------------------------


def resolve(name: str, privileges: Privileges,
            presets: Mapping[str, Preset] | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """The tracers of preset NAME that can run here, and (tracer, why not) for the others."""
    presets = all_presets() if presets is None else presets
    if name not in presets:
        raise PresetError(f"unknown preset {name!r}: the presets are {', '.join(presets)} "
                          "(see --list-presets)")
    tracers, skipped = [], []
    for tracer in presets[name].tracers:
        reason = why_not(tracer, privileges)
        if reason:
            skipped.append((tracer, reason))
        else:
            tracers.append(tracer)
    return tracers, skipped


def why_not(tracer: str, privileges: Privileges) -> str | None:
    """Why TRACER cannot run here, or None if it can."""
    program = program_of(tracer) or ("tcpdump" if tracer.strip().startswith("@dns") else None)
    if program and shutil.which(program if tracer.startswith("@") else tracer.split()[0]) is None:
        return f"{program} is not installed"
    return privileges.refusal(need_of(tracer))


def list_presets_text(presets: Mapping[str, Preset] | None = None,
                      path: Path | None = None) -> str:
    """What --list-presets prints: each preset, what it is for, the commands it runs."""
    path = config_path() if path is None else path
    presets = all_presets(path) if presets is None else presets
    out = ["Presets (autotrace --preset NAME); PID stands for the traced process:", ""]
    for preset in presets.values():
        origin = ""
        if preset.source != "built-in":
            replaces = " (replaces the built-in)" if preset.name in BUILTIN_PRESETS else ""
            origin = f"  [from {preset.source}{replaces}]"
        out.append(f"{preset.name}: {preset.description}{origin}")
        out.extend(f"    {tracer}" for tracer in preset.tracers)
        out.append("")
    out += [
        f"Your own presets go in {path}, one table each:",
        "",
        "    [mydns]",
        '    description = "what it is for"',
        '    tracers = ["strace -f -e trace=%network -p PID", "@net"]',
        "",
        f"Probes: {', '.join(PROBE_NAMES)}. Tracers that need privileges this run lacks "
        "are skipped, and a pane says why.",
    ]
    return "\n".join(out)
