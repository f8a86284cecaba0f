"""Run the benchmarks: python benchmarks/run.py [--quick] [names...]

Each benchmark measures autotrace side by side with its peers, alternating,
in this one run, and prints a table of ratios and its targets (PASS, FAIL or
n/a). The exit status is 0 when every benchmark ran, whatever the verdicts,
and 1 when one could not run; --strict also makes a FAIL exit 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the benchmarks import each other as plain modules

import bench_idle  # noqa: E402
import bench_remote  # noqa: E402
import bench_replay  # noqa: E402
import bench_startup  # noqa: E402
import bench_throughput  # noqa: E402
import bench_view  # noqa: E402
from common import BenchError, Settings, Target, autotrace_executable  # noqa: E402

BENCHMARKS = {b.NAME: b for b in (bench_throughput, bench_idle, bench_view, bench_replay,
                                   bench_startup, bench_remote)}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description="autotrace's speed targets, measured against peers in the same run.",
        epilog="full run: about 7 minutes; --quick: under a minute, tiny sizes "
               "(checks the harness, not the targets)",
    )
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    p.add_argument("--quick", action="store_true", help="tiny sizes and short windows")
    p.add_argument("--without-original", action="store_true",
                   help="leave out the original autotrace 0.0.26 (no install from PyPI)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target FAILs")
    options = p.parse_args(argv)
    unknown = [n for n in options.names if n not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark {unknown[0]!r}: choose from {', '.join(BENCHMARKS)}")
    return options


def describe_machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, load average {load}, Python {sys.version.split()[0]}"


def prepare_python(workdir: Path) -> None:
    """Let Python cache bytecode, and fill the caches, before anything is timed.

    An installed autotrace starts from compiled bytecode (pip compiles it at
    install time). With PYTHONDONTWRITEBYTECODE set, as on this team's
    machines, every start would compile each module again and charge that to
    every run; asciinema and the original autotrace do have their caches.
    """
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
        print("(PYTHONDONTWRITEBYTECODE unset for this run: bytecode is cached, "
              "as in an installed autotrace)\n", flush=True)
    subprocess.run([*autotrace_executable(), "--headless", "-q", "-l", str(workdir / "warm-up"),
                    "true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=60, check=False)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(sys.argv[1:] if argv is None else argv)
    names = options.names or list(BENCHMARKS)
    workdir = Path(tempfile.mkdtemp(prefix="autotrace-bench-"))
    settings = Settings(quick=options.quick, workdir=workdir,
                        with_original=not options.without_original)
    print(f"autotrace benchmarks{' (quick)' if options.quick else ''}: {describe_machine()}\n",
          flush=True)
    prepare_python(workdir)
    targets: list[Target] = []
    broken: list[str] = []
    started = time.monotonic()
    try:
        for name in names:
            try:
                targets += BENCHMARKS[name].run(settings)
            except BenchError as err:
                print(f"{name}: could not run: {err}\n", flush=True)
                broken.append(name)
            except Exception:
                traceback.print_exc()
                broken.append(name)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    verdicts = [t.verdict for t in targets]
    print(f"summary: {verdicts.count('PASS')} PASS, {verdicts.count('FAIL')} FAIL, "
          f"{verdicts.count('n/a')} n/a, {len(broken)} benchmark(s) could not run"
          f" ({time.monotonic() - started:.0f} s)", flush=True)
    if broken:
        return 1
    return 1 if options.strict and "FAIL" in verdicts else 0


if __name__ == "__main__":
    sys.exit(main())
