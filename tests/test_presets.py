"""Presets: built-ins, what is skipped and why, the user's presets.toml."""

from __future__ import annotations

import os
import pwd
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from autotrace.live.hints import PTRACE_SCOPE
from autotrace.live.presets import (
    BUILTIN_PRESETS,
    CAP_NET_RAW,
    CAPTURE,
    LSOF_LOOP,
    PTRACE,
    RESOLVER_VIEW,
    Preset,
    PresetError,
    Privileges,
    all_presets,
    config_path,
    file_grants,
    list_presets_text,
    load_user_presets,
    resolve,
)
from autotrace.live.procs import substitute_pid

TIMEOUT = 30
EVERYTHING = Privileges()
NO_PTRACE = Privileges(ptrace_refused="ptrace not permitted: run autotrace with sudo")
NO_CAPTURE = Privileges(capture_refused="packet capture not permitted: run autotrace with sudo")


@pytest.fixture(autouse=True)
def own_config(tmp_path, monkeypatch):
    """Every test sees its own empty config directory, never the developer's."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config" / "autotrace" / "presets.toml"


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_builtin_presets_run_what_the_issue_asks():
    assert BUILTIN_PRESETS["default"].tracers == ("strace -f -tt -p PID", "@proc", "@files")
    dns = BUILTIN_PRESETS["dns"].tracers
    assert dns == ("strace -f -tt -e trace=%file,%network -p PID",
                   "tcpdump -l -n -i any port 53", "@dns", "@net", "@resolv")
    assert BUILTIN_PRESETS["net"].tracers == (
        "strace -f -tt -e trace=%network -p PID", "tcpdump -l -n -i any", "@net")
    assert BUILTIN_PRESETS["files"].tracers[:2] == ("strace -f -tt -e trace=%file -p PID",
                                                    "@files")
    assert "lsof -w -p PID" in BUILTIN_PRESETS["files"].tracers[2]


def test_needs_follow_the_program_each_tracer_runs():
    assert BUILTIN_PRESETS["default"].needs == (PTRACE, None, None)
    assert BUILTIN_PRESETS["dns"].needs == (PTRACE, CAPTURE, CAPTURE, None, None)


def test_with_every_privilege_nothing_is_skipped():
    assert resolve("default", EVERYTHING) == (list(BUILTIN_PRESETS["default"].tracers), [])


def test_without_ptrace_strace_is_skipped_with_the_reason():
    tracers, skipped = resolve("default", NO_PTRACE)
    assert tracers == ["@proc", "@files"]
    assert skipped == [("strace -f -tt -p PID", "ptrace not permitted: run autotrace with sudo")]


def test_without_capture_tcpdump_is_skipped_and_the_rest_kept():
    tracers, skipped = resolve("dns", NO_CAPTURE)
    assert tracers == ["strace -f -tt -e trace=%file,%network -p PID", "@net", "@resolv"]
    assert skipped == [(capture, "packet capture not permitted: run autotrace with sudo")
                       for capture in ("tcpdump -l -n -i any port 53", "@dns")]


def test_a_tool_that_is_not_installed_is_skipped(own_config):
    write_config(own_config, '[odd]\ntracers = ["autotrace-no-such-tool -p PID", "@tree"]\n')
    tracers, skipped = resolve("odd", EVERYTHING)
    assert tracers == ["@tree"]
    assert skipped == [("autotrace-no-such-tool -p PID",
                        "autotrace-no-such-tool is not installed")]


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(PresetError) as err:
        resolve("dnss", EVERYTHING)
    assert str(err.value) == ("unknown preset 'dnss': the presets are default, dns, net, files "
                              "(see --list-presets)")


def test_user_presets_add_and_override(own_config):
    write_config(own_config, """
[dns]
description = "just the packets"
tracers = ["tcpdump -l -n -i lo port 53"]

[slow]
description = "who is waiting on what"
tracers = ["strace -f -T -p PID", "@proc"]
""")
    presets = all_presets()
    assert list(presets) == ["default", "dns", "net", "files", "slow"]
    assert presets["dns"] == Preset("dns", "just the packets", ("tcpdump -l -n -i lo port 53",),
                                    str(own_config))
    assert resolve("slow", NO_PTRACE) == (["@proc"], [
        ("strace -f -T -p PID", "ptrace not permitted: run autotrace with sudo")])

    text = list_presets_text()
    assert f"dns: just the packets  [from {own_config} (replaces the built-in)]" in text
    assert f"slow: who is waiting on what  [from {own_config}]\n    strace -f -T -p PID\n" \
        "    @proc\n" in text
    assert "tcpdump -l -n -i any port 53" not in text  # the built-in dns is replaced


def test_no_config_file_means_only_builtins(own_config):
    assert not own_config.exists()
    assert load_user_presets() == {}
    assert all_presets() == BUILTIN_PRESETS


@pytest.mark.parametrize("text, message", [
    ("[dns\ntracers = []\n", "not valid TOML: "),
    ("dns = 3\n", "preset 'dns': expected a table ([dns]) with description and tracers"),
    ("[x]\ndescription = 'no tracers'\n",
     "preset 'x': 'tracers' must be a non-empty list of commands"),
    ("[x]\ntracers = []\n", "preset 'x': 'tracers' must be a non-empty list of commands"),
    ("[x]\ntracers = 'strace -p PID'\n",
     "preset 'x': 'tracers' must be a non-empty list of commands"),
    ("[x]\ntracers = ['strace -p PID', 3]\n",
     "preset 'x': 'tracers' must be a non-empty list of commands"),
    ("[x]\ntracer = ['strace -p PID']\n",
     "preset 'x': unknown key 'tracer' (known keys: description, tracers)"),
    ("[x]\ndescription = 1\ntracers = ['@net']\n", "preset 'x': 'description' must be a string"),
    ("[x]\ntracers = ['@disk']\n",
     "preset 'x': unknown probe '@disk' (the probes are @proc, @files, @net, @tree, @resolv)"),
])
def test_a_malformed_config_is_one_clear_line(own_config, text, message):
    write_config(own_config, text)
    with pytest.raises(PresetError) as err:
        all_presets()
    assert str(err.value).startswith(f"{own_config}: {message}")
    assert "\n" not in str(err.value)


def test_a_toml_error_says_where(own_config):
    write_config(own_config, "[ok]\ntracers = ['@net']\n\n[bad]\ntracers == ['@net']\n")
    with pytest.raises(PresetError) as err:
        load_user_presets()
    assert "line 5" in str(err.value)


def test_an_unreadable_config_is_one_clear_line(own_config):
    own_config.mkdir(parents=True)  # a directory where the file should be
    with pytest.raises(PresetError) as err:
        load_user_presets()
    assert str(err.value).startswith(f"{own_config}: cannot read it: ")


def test_config_path_follows_xdg_home_and_sudo(tmp_path):
    assert config_path({"XDG_CONFIG_HOME": "/x", "HOME": "/h"}) == \
        Path("/x/autotrace/presets.toml")
    assert config_path({"HOME": "/h"}) == Path("/h/.config/autotrace/presets.toml")
    nobody_home = pwd.getpwnam("nobody").pw_dir
    assert config_path({"HOME": "/root", "SUDO_USER": "nobody"}) == \
        Path(nobody_home) / ".config/autotrace/presets.toml"
    assert config_path({"HOME": "/h", "SUDO_USER": "no-such-user-here"}) == \
        Path("/h/.config/autotrace/presets.toml")


def test_list_presets_shows_every_command_and_where_to_add_more(own_config):
    text = list_presets_text()
    for preset in BUILTIN_PRESETS.values():
        assert f"{preset.name}: {preset.description}\n" in text
        for tracer in preset.tracers:
            assert f"\n    {tracer}\n" in text
    assert f"Your own presets go in {own_config}" in text


# --- the resolver view and the lsof loop, run for real --------------------------


def run_pane(command: str, pid: int) -> str:
    out = subprocess.run(["/bin/sh", "-c", substitute_pid(command, pid)], capture_output=True,
                         text=True, timeout=TIMEOUT)
    return out.stdout + out.stderr


def test_resolver_view_shows_the_configuration_the_process_sees():
    out = run_pane(RESOLVER_VIEW, os.getpid())
    hosts_line = next(line for line in Path("/etc/nsswitch.conf").read_text().splitlines()
                      if line.startswith("hosts:"))
    assert f"# hosts: line of /etc/nsswitch.conf\n{hosts_line}\n" in out
    assert f"# /etc/hosts\n{Path('/etc/hosts').read_text()}" in out
    resolv = Path("/etc/resolv.conf")
    if resolv.exists():
        assert f"# /etc/resolv.conf\n{resolv.read_text()}" in out
    else:
        assert "resolv.conf: No such file or directory" in out


def test_resolver_view_sees_inside_another_mount_namespace(tmp_path):
    """A process with its own /etc/hosts (as in a container): the pane shows that one."""
    private = tmp_path / "hosts"
    private.write_text("10.9.9.9 only-inside-the-namespace\n")
    unshare = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]
    script = f"mount --bind {private} /etc/hosts && echo ready && exec sleep 1000"
    inside = subprocess.Popen([*unshare, "sh", "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert inside.stdout.readline() == "ready\n"
        out = run_pane(RESOLVER_VIEW, inside.pid)
        assert "# /etc/hosts\n10.9.9.9 only-inside-the-namespace\n" in out
        assert "only-inside-the-namespace" not in run_pane(RESOLVER_VIEW, os.getpid())
    finally:
        inside.kill()
        inside.wait()


def test_lsof_loop_redraws_until_the_process_ends():
    target = subprocess.Popen(["sleep", "1000"])
    pane = subprocess.Popen(["/bin/sh", "-c", substitute_pid(LSOF_LOOP, target.pid)],
                            stdout=subprocess.PIPE, text=True)
    try:
        first = pane.stdout.readline()
        assert first.startswith("\x1b[H\x1b[2JCOMMAND")
        assert pane.stdout.readline().split()[:2] == ["sleep", str(target.pid)]
        target.kill()
        target.wait()
        pane.wait(TIMEOUT)  # the loop ends by itself once the process is gone
    finally:
        for proc in (target, pane):
            proc.kill()
            proc.wait()


# --- privileges ---------------------------------------------------------------


AS_NOBODY = """
import encodings.ascii  # now: the interpreter may live where nobody cannot read
import os, sys
from autotrace.live.presets import capture_refusal, ptrace_refusal
import psutil
psutil.Process  # now too: autotrace imports psutil at its first use (autotrace.lazy)
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
print(ptrace_refusal(int(sys.argv[1])))
print(ptrace_refusal(os.getpid()))
print(capture_refusal())
"""


def yama_scope() -> int:
    return int(PTRACE_SCOPE.read_text()) if PTRACE_SCOPE.exists() else 0


@pytest.mark.skipif(os.geteuid() != 0, reason="turning into another user needs root")
def test_an_unprivileged_user_is_told_why_and_how():
    out = subprocess.run([sys.executable, "-c", AS_NOBODY, str(os.getpid())],
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 0, out.stderr
    others, own, capture = out.stdout.splitlines()
    if yama_scope() == 0:
        assert others == (f"ptrace not permitted: process {os.getpid()} belongs to another "
                          "user: run autotrace with sudo")
        assert own == "None"
    else:
        assert "kernel.yama.ptrace_scope" in others and "kernel.yama.ptrace_scope" in own
    assert capture.startswith("packet capture not permitted: run autotrace with sudo, or ")
    assert "setcap cap_net_raw" in capture


@pytest.mark.skipif(os.geteuid() != 0, reason="checks what root may do")
def test_root_may_trace_and_capture():
    privileges = Privileges.detect(os.getpid())
    if yama_scope() < 3:
        assert privileges.ptrace_refused is None
    assert privileges.capture_refused is None


def vfs_cap(permitted: int, effective: bool) -> bytes:
    """struct vfs_cap_data, revision 2, as setcap writes it."""
    magic = 0x02000000 | (1 if effective else 0)
    return struct.pack("<IIIII", magic, permitted, 0, 0, 0)


@pytest.mark.skipif(os.geteuid() != 0, reason="writing security.capability needs root")
def test_file_capabilities_are_read_like_setcap_writes_them(tmp_path):
    tool = tmp_path / "capture-tool"
    tool.write_bytes(b"")
    assert not file_grants(str(tool), CAP_NET_RAW)
    os.setxattr(tool, "security.capability", vfs_cap(1 << CAP_NET_RAW, effective=True))
    assert file_grants(str(tool), CAP_NET_RAW)
    os.setxattr(tool, "security.capability", vfs_cap(1 << CAP_NET_RAW, effective=False))
    assert not file_grants(str(tool), CAP_NET_RAW)
    os.setxattr(tool, "security.capability", vfs_cap(1 << 12, effective=True))
    assert not file_grants(str(tool), CAP_NET_RAW)
