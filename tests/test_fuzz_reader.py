"""A bounded fuzz test of the recording reader (issue 8).

A real small recording (two panes, colours, markers, resizes, UTF-8) is
mutated a few hundred times with seeded random damage: flipped bytes,
truncation, lines duplicated, deleted or swapped, huge or infinite numbers,
deep nesting, NULs, values of odd types. Each mutant goes through `cat` and
`info` (in-process, for speed; a sample through the real CLI in a
subprocess with a memory limit), as a folder and, for pane files, as a lone
.cast file. Whatever the damage: exit 0 or one line and exit 1, never an
internal error (70) or a traceback, never a hang, bounded memory, and no
control characters but line feeds and tabs on stdout or stderr.
"""

from __future__ import annotations

import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REPO, autotrace_env, trace

from autotrace import cli

pytestmark = pytest.mark.slow

SEED = 8
MUTANTS = 300
EVERY_NTH_THROUGH_THE_CLI = 25
HANG_SECONDS = 20  # per command; a healthy one takes milliseconds
CHILD_MEMORY = 1024**3  # RLIMIT_AS of a CLI run: far above what a small recording needs
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

Mutation = Callable[[random.Random, bytes], bytes]

ODD_VALUES = [b"null", b"true", b"[]", b"{}", b'"text"', b"-1", b"1e400", b"NaN",
              b"9" * 400, b"9" * 5000, b"[" * 3000, b"[" * 100000, b'"\\u0000"',
              b'"\\u001b]52;c;SGk=\\u0007"', b"-0.0", b"1.5", b'"\\ud800"']


def flip_bytes(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))]


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def duplicate_line(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    i = rng.randrange(len(lines))
    lines[i:i] = [lines[i]] * rng.choice([1, 2, 50])
    return b"\n".join(lines)


def delete_line(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def swap_lines(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def replace_a_number(rng: random.Random, data: bytes) -> bytes:
    numbers = list(re.finditer(rb"-?\d+(\.\d+)?([eE][-+]?\d+)?", data))
    if not numbers:
        return flip_bytes(rng, data)
    hit = rng.choice(numbers)
    return data[: hit.start()] + rng.choice(ODD_VALUES) + data[hit.end():]


def replace_a_string(rng: random.Random, data: bytes) -> bytes:
    strings = list(re.finditer(rb'"(?:[^"\\\n]|\\.)*"', data))
    if not strings:
        return flip_bytes(rng, data)
    hit = rng.choice(strings)
    return data[: hit.start()] + rng.choice(ODD_VALUES) + data[hit.end():]


def insert_nesting(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + rng.choice([b"[" * 100000, b"{\"a\":" * 5000, b"[" * 999]) + data[at:]


def insert_nul(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + rng.choice([b"\x00", b"\\u0000", b"\x1b]2;PWNED\x07", b"\xff\xfe"]) + \
        data[at:]


MUTATIONS: list[Mutation] = [flip_bytes, truncate, duplicate_line, delete_line, swap_lines,
                             replace_a_number, replace_a_string, insert_nesting, insert_nul]


class Hang(BaseException):
    """Not an Exception: the command's own catch-all must not swallow it."""


def _alarm(signum: int, frame: object) -> None:
    raise Hang()


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    """A real recording: a headless session with colours, UTF-8 and a tracer."""
    program = ("printf '\\033[31mred\\033[0m é ✓\\tTab\\r\\n'; "
               "for i in 1 2 3 4 5; do echo line $i; done")
    result, files = trace(tmp_path_factory.mktemp("fuzz"), program, "echo tracer; sleep 0.1")
    assert result.returncode == 0, result.stderr
    return files.directory


def mutant(original: Path, into: Path, rng: random.Random) -> tuple[Path, str]:
    """A copy of the recording with one file damaged; returns it and what was done."""
    shutil.copytree(original, into)
    name = rng.choice(["manifest.json", "pane-0.cast", "pane-1.cast", "pane-0.cast"])
    damage = [rng.choice(MUTATIONS) for _ in range(rng.choice([1, 1, 2, 3]))]
    data = (into / name).read_bytes()
    for mutation in damage:
        data = mutation(rng, data) if data else data
    (into / name).write_bytes(data)
    return into / name, f"{name}: {' + '.join(m.__name__ for m in damage)}"


def check_outcome(code: int, out: str, err: str, what: str) -> None:
    assert code in (0, 1), (what, code, err)
    assert "Traceback" not in err and "internal error" not in err, (what, err)
    if code == 1:
        assert err.count("\n") == 1 and err.startswith("autotrace: "), (what, err)
    for stream, text in (("stdout", out), ("stderr", err)):
        bad = CONTROL.search(text.replace("\n", "").replace("\t", ""))
        assert bad is None, (what, stream, bad and bad.group(), text[:300])


def run_in_process(args: list[str], capsys, what: str) -> int:
    signal.alarm(HANG_SECONDS)
    try:
        code = cli.main(args)
    except Hang:
        pytest.fail(f"{what}: {' '.join(args)} hung for {HANG_SECONDS} s")
    finally:
        signal.alarm(0)
    captured = capsys.readouterr()
    check_outcome(code, captured.out, captured.err, f"{what}: {args[0]}")
    return code


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))


def run_in_a_child(args: list[str], what: str) -> int:
    """The real CLI with a memory limit; returns its peak RSS in KiB."""
    proc = subprocess.Popen([sys.executable, "-m", "autotrace", *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=autotrace_env(PYTHONPATH=str(REPO)),
                            cwd=REPO, preexec_fn=_limit_memory)
    try:
        out, err = proc.communicate(timeout=HANG_SECONDS * 3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"{what}: {' '.join(args)} hung")
    # communicate() reaped it; wait4 would be too late, so ask the kernel
    # for the largest child so far instead (children are run one at a time).
    check_outcome(proc.returncode, out.decode("utf-8", "replace"),
                  err.decode("utf-8", "replace"), f"{what}: {args[0]} (CLI)")
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def test_mutated_recordings_never_crash_hang_leak_or_print_control_bytes(
        original: Path, tmp_path: Path, capsys) -> None:
    rng = random.Random(SEED)
    previous = signal.signal(signal.SIGALRM, _alarm)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    peak_child = 0
    refused = accepted = 0
    try:
        for n in range(MUTANTS):
            damaged, what = mutant(original, tmp_path / f"m{n}", rng)
            what = f"mutant {n} (seed {SEED}) {what}"
            targets = [str(damaged.parent)]
            if damaged.suffix == ".cast":
                targets.append(str(damaged))  # the same file as a lone asciicast
            for target in targets:
                for command in ("cat", "info"):
                    if run_in_process([command, target], capsys, what):
                        refused += 1
                    else:
                        accepted += 1
                    if n % EVERY_NTH_THROUGH_THE_CLI == 0:
                        peak_child = max(peak_child, run_in_a_child([command, target], what))
            shutil.rmtree(damaged.parent)
    finally:
        signal.signal(signal.SIGALRM, previous)
    elapsed = time.monotonic() - started
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    print(f"\n{MUTANTS} mutants in {elapsed:.1f} s: {accepted} runs read them, {refused} "
          f"refused in one line; test process grew {grown / 1024:.0f} MiB; "
          f"largest CLI child {peak_child / 1024:.0f} MiB")
    assert grown < 300 * 1024, f"memory grew by {grown} KiB"
    assert peak_child < CHILD_MEMORY // 1024
    assert accepted and refused, "the mutations should both pass and fail the reader"
