"""Presets, probes and default tracers through the real program: --list-presets,
--preset (built-in and the user's own), bad names and files, @probe panes of a
run, and the default set chosen by the privileges at hand."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from autotrace.live.presets import BUILTIN_PRESETS
from tests.conftest import (
    RecordingFiles,
    assert_one_line_error,
    autotrace_env,
    processes_with,
    run_autotrace,
    wait_for,
)

AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
# Root, but without the capability to trace other users' processes.
WITHOUT_PTRACE = ["setpriv", "--bounding-set=-sys_ptrace", "--inh-caps=-sys_ptrace"]
# A tracer of the user's preset; it reads the name once the main command runs.
COMM_LATER = "sh -c 'sleep 0.7; echo comm=$(cat /proc/PID/comm)'"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing user needs root")
NOT_PERMITTED = ("ptrace not permitted: process {pid} belongs to another user: "
                 "run autotrace with sudo")


@pytest.fixture
def config(tmp_path):
    """This test's own XDG_CONFIG_HOME and the presets.toml in it (not written yet)."""
    return tmp_path / "config" / "autotrace" / "presets.toml"


def autotrace(config: Path, *args: object,
              prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = autotrace_env(XDG_CONFIG_HOME=str(config.parent.parent))
    return run_autotrace([str(a) for a in args], env=env, prefix=prefix)


def plain(text: str) -> str:
    """TEXT without its escape sequences (colours, clearing the pane)."""
    return re.sub(r"\x1b\[[\d;]*[A-Za-z]", "", text)


def listed(output: str) -> dict[str, list[str]]:
    """--list-presets as {name: [commands]}: a `name: ...` line, then indented commands."""
    presets: dict[str, list[str]] = {}
    current = None
    for line in output.split("Your own presets go in")[0].splitlines():
        if re.match(r"^[\w-]+: ", line):
            current = line.split(":")[0]
            presets[current] = []
        elif line.startswith("    ") and current is not None:
            presets[current].append(line.strip())
        else:
            current = None
    return presets


def test_list_presets_lists_every_builtin_with_its_commands(config):
    result = autotrace(config, "--list-presets")
    assert result.returncode == 0, result.stderr
    presets = listed(result.stdout)
    assert list(presets) == ["default", "dns", "net", "files"]
    for name, preset in BUILTIN_PRESETS.items():
        assert presets[name] == list(preset.tracers)
    assert "tcpdump -l -n -i any port 53" in presets["dns"]
    assert "strace -f -tt -p PID" in presets["default"]
    assert f"Your own presets go in {config}" in result.stdout
    assert "@proc, @files, @net, @tree" in result.stdout


def test_a_user_preset_is_listed_and_runs(config, tmp_path):
    config.parent.mkdir(parents=True)
    config.write_text('[mine]\ndescription = "comm and tree"\n'
                      f'tracers = ["{COMM_LATER}", "@tree"]\n')
    listing = autotrace(config, "--list-presets")
    assert listed(listing.stdout)["mine"] == [COMM_LATER, "@tree"]
    assert f"mine: comm and tree  [from {config}]" in listing.stdout

    rec_dir = tmp_path / "rec"
    main = f"{sys.executable} -c 'import time; time.sleep(1.5)'"
    result = autotrace(config, "--headless", "-l", rec_dir, "--interval", "0.3",
                       "--preset", "mine", main)
    assert result.returncode == 0, result.stderr
    rec = RecordingFiles(rec_dir)
    pid = rec.panes[0]["pid"]
    assert [p["command"] for p in rec.panes] == [main, COMM_LATER, "@tree"]
    assert rec.panes[1]["command_run"] == COMM_LATER.replace("PID", str(pid))
    assert rec.output(1).split() == ["comm=python"]
    assert rec.panes[2]["role"] == "probe"
    assert re.search(rf"^{pid} \S*python", rec.output(2), re.M)


@pytest.mark.parametrize("args", [["--preset", "mine", "sleep 1"], ["--list-presets"]])
def test_a_malformed_config_is_one_line_naming_the_file(config, tmp_path, args):
    config.parent.mkdir(parents=True)
    config.write_text("[mine\ntracers = 3\n")
    rec_dir = tmp_path / "rec"
    result = autotrace(config, "--headless", "-l", rec_dir, *args)
    line = assert_one_line_error(result)
    assert line.startswith(f"autotrace: {config}: not valid TOML")
    assert not rec_dir.exists()


def test_a_preset_with_the_wrong_shape_names_the_file_and_preset(config):
    config.parent.mkdir(parents=True)
    config.write_text('[mine]\ntracers = "strace -p PID"\n')
    line = assert_one_line_error(autotrace(config, "--headless", "--preset", "mine", "true"))
    assert line == (f"autotrace: {config}: preset 'mine': 'tracers' must be a non-empty "
                    "list of commands")


def test_an_unknown_preset_is_one_line(config, tmp_path):
    rec_dir = tmp_path / "rec"
    line = assert_one_line_error(autotrace(config, "--headless", "-l", rec_dir,
                                           "--preset", "nope", "true"))
    assert line == ("autotrace: unknown preset 'nope': the presets are default, dns, net, "
                    "files (see --list-presets)")
    assert not rec_dir.exists()


def test_an_unknown_probe_is_one_line_and_exit_2(config, tmp_path):
    rec_dir = tmp_path / "rec"
    result = autotrace(config, "--headless", "-l", rec_dir, "true", "@nope")
    line = assert_one_line_error(result, code=2)
    assert line == ("autotrace: unknown probe '@nope': the probes are @proc, @files, @net, @tree, "
                    "@resolv, @dns")
    assert not rec_dir.exists()


def test_dns_preset_end_to_end(config, tmp_path):
    # localhost is answered from /etc/hosts: no packet leaves this machine.
    main = "sh -c 'getent ahostsv4 localhost; sleep 1'"
    rec_dir = tmp_path / "rec"
    result = autotrace(config, "--headless", "-l", rec_dir, "--interval", "0.3",
                       "--preset", "dns", main)
    assert result.returncode == 0, result.stderr
    rec = RecordingFiles(rec_dir)
    commands = [p["command"] for p in rec.panes]
    assert commands == [main, *BUILTIN_PRESETS["dns"].tracers]
    assert re.search(r"^127\.0\.0\.1\s+STREAM localhost", rec.output(0), re.M)

    strace = rec.output(1)
    assert re.search(r'openat\(AT_FDCWD, "/etc/nsswitch.conf"', strace)
    assert re.search(r'openat\(AT_FDCWD, "/etc/hosts"', strace)
    assert "htons(53)" not in strace  # answered from files: no DNS query at all
    assert "listening on any" in rec.output(2)
    assert re.search(r"@dns: ports 53 in the network namespace of pid \d+", rec.output(3))

    assert rec.panes[4]["role"] == "probe"
    assert re.search(r"@net  pid \d+", rec.output(4))

    assert rec.panes[5]["role"] == "probe"
    resolver = rec.output(5)
    hosts_line = next(line for line in Path("/etc/nsswitch.conf").read_text().splitlines()
                      if line.startswith("hosts:"))
    assert "# /etc/resolv.conf" in resolver
    assert hosts_line in resolver
    assert "127.0.0.1" in resolver.split("# /etc/hosts", 1)[1]


def test_probes_show_the_childs_udp_socket_open_file_and_tree(config, tmp_path):
    opened = tmp_path / "opened-by-child.txt"
    child = tmp_path / "child.py"
    child.write_text("import os, socket, sys, time\n"
                     "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                     "s.bind(('127.0.0.1', 0))\n"
                     "f = open(sys.argv[1], 'w')\n"
                     "print('child', os.getpid(), 'port', s.getsockname()[1], flush=True)\n"
                     "time.sleep(2)\n")
    main = (f"{sys.executable} -c 'import subprocess, sys; subprocess.run(sys.argv[1:])' "
            f"{sys.executable} {child} {opened}")
    rec_dir = tmp_path / "rec"
    # Wide panes: a frame cuts its lines to the pane's width.
    result = autotrace(config, "--headless", "-l", rec_dir, "--interval", "0.3",
                       "--size", "250x30", main, "@net", "@files", "@tree", "@proc")
    assert result.returncode == 0, result.stderr
    rec = RecordingFiles(rec_dir)
    assert [(p["command"], p["role"]) for p in rec.panes[1:]] == [
        ("@net", "probe"), ("@files", "probe"), ("@tree", "probe"), ("@proc", "probe")]
    main_pid = rec.panes[0]["pid"]
    child_pid, port = re.search(r"child (\d+) port (\d+)", rec.output(0)).groups()

    assert re.search(rf"^\s*{child_pid} udp\s+127\.0\.0\.1:{port}\s", plain(rec.output(1)), re.M)
    # A file opened since the frame before is marked "+" (and highlighted).
    # (In any frame: each starts by clearing the pane, and the last one may come
    # after the child closed it.)
    frames = rec.output(2).replace("\x1b[H\x1b[2J", "\n")
    assert re.search(rf"^[ +]\s*{child_pid}\s+\d+ w\s+{re.escape(str(opened))}\r?$",
                     plain(frames), re.M)
    tree = plain(rec.output(3))
    assert re.search(rf"^{main_pid} \S*python", tree, re.M)
    assert re.search(rf"└─ {child_pid} \S*python", tree)
    assert f"@proc  pid {main_pid}" in rec.output(4)
    assert re.search(r"^threads\s+\d+", plain(rec.output(4)), re.M)


@pytest.fixture
def ticker(marker):
    """A process of ours (root's) that runs until killed."""
    proc = psutil.Popen(["sleep", f"60{marker}"], start_new_session=True)
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture
def nobodys_process(marker):
    proc = subprocess.Popen([*AS_NOBODY, "sleep", f"61{marker}"])
    wait_for(lambda: processes_with(marker), what="nobody's sleep")
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture
def nobodys_dir():
    """A folder user nobody may write (pytest's tmp_path is closed to other users)."""
    path = Path(tempfile.mkdtemp(prefix="autotrace-nobody-"))
    os.chown(path, 65534, 65534)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_attaching_with_no_tracers_uses_the_default_preset(config, tmp_path, ticker):
    rec_dir = tmp_path / "rec"
    result = autotrace(config, "--headless", "-l", rec_dir, "--duration", "1.5",
                       "--pid", ticker)
    assert result.returncode == 0, result.stderr
    rec = RecordingFiles(rec_dir)
    # The main pane is the process's @proc, so the preset's @proc is not repeated.
    assert [p["command"] for p in rec.panes[1:]] == ["strace -f -tt -p PID", "@files"]
    assert f"@proc  pid {ticker}" in rec.output(0)
    assert f"Process {ticker} attached" in rec.output(1)
    assert rec.panes[1].get("note") is None  # nothing refused
    assert psutil.Process(ticker).status() == psutil.STATUS_SLEEPING


def assert_strace_skipped(result: subprocess.CompletedProcess[str], rec: RecordingFiles,
                          pid: int) -> None:
    reason = NOT_PERMITTED.format(pid=pid)
    assert result.returncode == 0, result.stderr
    strace = rec.panes[2]
    assert (strace["command"], strace["pid"], strace["note"]) == (
        "strace -f -tt -p PID", None, reason)
    assert f"autotrace: not run: {reason}" in rec.output(2)
    info = run_autotrace(["info", rec.directory]).stdout
    assert f"note:     {reason}" in info.split("pane 2 (tracer)")[1]
    assert f"pane 2 (strace -f -tt -p PID): not run: {reason}" in result.stderr
    assert [p["command"] for p in rec.panes[1:]] == ["@files", "strace -f -tt -p PID"]
    assert f"@proc  pid {pid}" in rec.output(0)
    assert psutil.Process(pid).status() == psutil.STATUS_SLEEPING


@needs_root
def test_without_ptrace_rights_a_pane_says_why_strace_was_skipped(config, ticker, nobodys_dir):
    rec_dir = nobodys_dir / "rec"
    # The config folder is root's, closed to nobody (like `sudo -u nobody` with
    # root's presets): there are no presets of nobody's there, and that is no error.
    result = autotrace(config, "--headless", "-l", rec_dir, "--duration", "1", "--pid", ticker,
                       prefix=AS_NOBODY)
    rec = RecordingFiles(rec_dir)
    assert_strace_skipped(result, rec, ticker)
    assert "(access denied)" in rec.output(1)  # nobody may not list root's open files


@needs_root
def test_root_without_cap_sys_ptrace_is_told_why_too(config, tmp_path, nobodys_process):
    rec_dir = tmp_path / "rec"
    result = autotrace(config, "--headless", "-l", rec_dir, "--duration", "1",
                       "--pid", nobodys_process, prefix=WITHOUT_PTRACE)
    assert_strace_skipped(result, RecordingFiles(rec_dir), nobodys_process)
