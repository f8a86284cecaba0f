"""Command-line parsing only: every command is handed to one function that
returns the exit status."""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, NoReturn

from autotrace import __version__

DESCRIPTION = """\
Run a command and tracers pointed at it (strace, tcpdump, lsof, ...), each in
its own pty pane, and record everything with timestamps.

A command written `HOST: COMMAND` runs COMMAND on HOST over ssh (in a remote
pty, one connection per host, BatchMode); PID there is the main's pid on HOST.

In tracer commands the whole word PID becomes the main command's pid. The main
command is held (stopped before it runs) until its tracers are attached, so
nothing is missed.

other commands:
  autotrace cat PATH [--pane N]   the recording as one time-ordered text timeline
  autotrace info PATH             commands, pids, times, exit status, bytes per pane
  autotrace findings PATH         what went wrong (DNS, resolver files), with evidence
  autotrace replay [PATH]         play a recording or bundle in the same multi-pane view
  autotrace pack PATH [-o FILE]   one .tar.gz to share (--redact REGEX masks secrets)
                                  PATH may be a recording folder or a bundle
  autotrace export PATH --html    one HTML page that plays it in a browser
                                  (--cast: one asciicast, --svg --at TIME: a picture)
  autotrace ls                    the recordings in the default location, newest first
  autotrace prune --older-than DAYS   remove old ones (after listing them)
  autotrace -- CMD ...            trace a program whose name is one of the above
"""

EPILOG = """\
examples:
  autotrace 'getent hosts localhost' 'strace -f -p PID'
  autotrace 'nmap localhost' 'strace -p PID' 'tcpdump -XXs 20000 -i lo'
  autotrace --headless -l /tmp/rec 'dig example.com @127.0.0.1' 'tcpdump -ni lo port 53'
  autotrace cat /tmp/rec | grep openat
  autotrace info /tmp/rec

Tracers usually need privileges (ptrace, raw sockets): run autotrace with sudo;
the recording then still belongs to you.
"""


class Parser(argparse.ArgumentParser):
    """argparse, with its error line made safe: it quotes the command line
    (`unrecognized arguments: ...`), which may hold escape sequences."""

    def error(self, message: str) -> NoReturn:
        from autotrace.sanitise import message as safe_message

        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {safe_message(message)}\n")


def _size(text: str) -> tuple[int, int]:
    try:
        cols, rows = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 120x40, not {text!r}") from None
    if not (10 <= cols <= 1000 and 2 <= rows <= 1000):
        raise argparse.ArgumentTypeError(f"size {text} is out of range (10x2 to 1000x1000)")
    return cols, rows


def _number(text: str, kind: type, minimum: float, what: str) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, not {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {what} of at least {minimum}, not {text}")
    return value


def _seconds(text: str) -> float:
    return _number(text, float, 0, "a number of seconds")


# Probe refreshes faster than this cost a core and show nothing more.
MIN_INTERVAL = 0.1


def _interval(text: str) -> float:
    return _number(text, float, MIN_INTERVAL, "a number of seconds")


def _count(text: str) -> int:
    return int(_number(text, int, 1, "a whole number"))


def _ssh_command(text: str) -> list[str]:
    """--ssh's value as an argv, split as a shell would."""
    try:
        argv = shlex.split(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--ssh: {err}") from None
    if not argv:
        raise argparse.ArgumentTypeError("expected an ssh command, e.g. 'ssh -F FILE'")
    return argv


def trace_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="autotrace",
        usage="autotrace [options] MAIN [TRACER ...]\n"
              "       autotrace {replay,cat,info,findings,pack} PATH\n"
              "       autotrace {ls,prune}",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("commands", nargs="*", metavar="MAIN [TRACER ...]",
                   help="the main command, then tracer commands; quote each one")
    p.add_argument("-l", "--logdir", type=Path, metavar="DIR",
                   help="write the recording to DIR (new or empty); default: a new folder "
                        "under ~/.local/state/autotrace/recordings")
    p.add_argument("--headless", action="store_true",
                   help="no interactive view, just record (chosen automatically when "
                        "stdout is not a terminal)")
    p.add_argument("--size", type=_size, metavar="COLSxROWS",
                   help="pty size of every pane when headless (default: the terminal's, "
                        "else 80x24)")
    p.add_argument("--duration", type=_seconds, metavar="SECONDS",
                   help="end the session after SECONDS, stopping every pane")
    p.add_argument("--grace", type=_seconds, default=1.0, metavar="SECONDS",
                   help="after the main command ends, how long tracers may keep running "
                        "to flush their output (default: 1)")
    p.add_argument("--kill-timeout", type=_seconds, default=2.0, metavar="SECONDS",
                   help="at the end, time between SIGTERM and SIGKILL (default: 2)")
    p.add_argument("--attach-timeout", type=_seconds, default=5.0, metavar="SECONDS",
                   help="longest wait for tracers to be ready before the main command "
                        "runs (default: 5)")
    more = p.add_argument_group("attaching, presets and probes")
    more.add_argument("--pid", type=_count, metavar="N",
                      help="attach to the running process N instead of starting MAIN; all "
                           "commands given are tracers. It is never killed: at the end the "
                           "tracers detach and it goes on")
    more.add_argument("--container", metavar="NAME",
                      help="attach to container NAME's main process (its pid from docker, "
                           "podman or nerdctl): as --pid PID --netns")
    more.add_argument("-y", "--yes", action="store_true",
                      help="with no command: trace the latest background job without asking")
    more.add_argument("--preset", metavar="NAME",
                      help="add a named set of tracers (dns, net, files, default, or your own "
                           "from ~/.config/autotrace/presets.toml)")
    more.add_argument("--list-presets", action="store_true",
                      help="list the presets and the commands each runs, then exit")
    more.add_argument("--interval", type=_interval, default=1.0, metavar="SECONDS",
                      help="refresh of probe panes @proc @files @net @tree (default: 1, "
                           f"at least {MIN_INTERVAL})")
    more.add_argument("--ssh", type=_ssh_command, default=["ssh"], metavar="COMMAND",
                      help="the ssh command line for `HOST: COMMAND` panes, e.g. "
                           "'ssh -F ~/.ssh/lab_config -o User=root' (default: ssh)")
    more.add_argument("--netns", action="store_true",
                      help="run the tracers inside the main process's network namespace "
                           "(nsenter -t PID -n), e.g. to capture inside a container")
    old = p.add_argument_group("compatibility with autotrace 0.0.x")
    old.add_argument("--replay", type=Path, metavar="DIR",
                     help="same as `autotrace replay DIR`")
    old.add_argument("--replayspeed", type=_speed, default=1.0, metavar="X",
                     help="with --replay: playback speed")
    view = p.add_argument_group("interactive view")
    view.add_argument("--visible", type=_count, default=4, metavar="N",
                      help="panes shown at once (default: 4); `m` cycles the others in")
    view.add_argument("-v", "--vertical", action="store_true",
                      help="split two panes side by side instead of one above the other")
    view.add_argument("--min-pane", type=_size, default=(40, 5), metavar="COLSxROWS",
                      help="no pane (or its pty) smaller than this (default: 40x5); a "
                           "smaller terminal shows fewer panes at once")
    view.add_argument("--syncoff", action="store_true",
                      help="start with time-sync off (scrolling one pane leaves the others)")
    view.add_argument("--colorsoff", action="store_true", help="start with colours off")
    view.add_argument("--exit-at-end", action="store_true",
                      help="quit the view when the session ends (default: stay on the "
                           "final screen until q)")
    view.add_argument("--record-input", action="store_true",
                      help="record what is typed into panes (i) as asciicast \"i\" events; "
                      "off by default: typing may hold passwords")
    view.add_argument("--history", type=_count, default=5000, metavar="LINES",
                      help="scrollback kept in memory per pane (default: 5000); older "
                           "lines stay in the recording")
    p.add_argument("--share", metavar="[HOST:]PORT",
                   help="serve a read-only page of the session for browsers while it "
                        "runs (127.0.0.1 unless HOST is given; PORT 0 picks one); the URL, "
                        "with its token, is printed at the start")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="do not print notices and the recording's location")
    p.add_argument("--version", action="version", version=f"autotrace {__version__}")
    return p


def _recording_argument(p: argparse.ArgumentParser) -> None:
    """The PATH every reading command takes: any form a recording comes in."""
    p.add_argument("path", type=Path,
                   help="recording folder, bundle (.tar.gz) or asciicast file (.cast)")


def cat_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="autotrace cat",
        description="Print a recording as one merged, time-ordered text timeline: "
                    "each line starts with its time offset in seconds and [pane]; "
                    "escape sequences are stripped.",
    )
    _recording_argument(p)
    p.add_argument("--pane", type=int, metavar="N", help="only pane N (0 is the main command)")
    p.add_argument("--findings", action="store_true",
                   help="interleave the findings (marked [F]) with the timeline")
    return p


def findings_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="autotrace findings",
        description="Print what autotrace found in a recording (DNS errors, truncation "
                    "without retry, failed resolver files, ...), each with its evidence: "
                    "pane, time and line. A recording made before findings existed is "
                    "read through the rules now.",
    )
    _recording_argument(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    return p


def info_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="autotrace info",
        description="Show a recording's commands (as given and as run), pids, start and "
                    "end, exit status or signal, and bytes per pane.",
    )
    _recording_argument(p)
    return p


def _speed(text: str) -> float:
    value = _seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"speed must be above 0, not {text}")
    return value


def replay_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="autotrace replay",
        description="Play a recording (folder, .tar.gz bundle or .cast file) in the "
                    "multi-pane view. "
                    "Keys: Space/p pause, c continue, +/- speed, Left/Right seek 5 s, "
                    "[/] markers, g/G start/end, 0-9 zoom, m cycle, / search, t time-sync, "
                    "h help, q quit.",
    )
    p.add_argument("path", type=Path, nargs="?",
                   help="recording folder, bundle or asciicast file "
                        "(default: the most recent recording)")
    p.add_argument("--speed", type=_speed, default=1.0, metavar="X",
                   help="playback speed factor (default: 1)")
    p.add_argument("--idle-limit", type=_seconds, metavar="S",
                   help="cap quiet gaps at S seconds")
    p.add_argument("--exit-at-end", action="store_true",
                   help="quit when the end is reached instead of waiting for q")
    p.add_argument("--paused", action="store_true", help="start paused at the beginning")
    p.add_argument("--visible", type=_count, default=4, metavar="N", help="panes shown at once")
    p.add_argument("-v", "--vertical", action="store_true", help="two panes side by side")
    p.add_argument("--min-pane", type=_size, default=(40, 5), metavar="COLSxROWS",
                   help="no pane smaller than this (default: 40x5); fewer shown at once")
    p.add_argument("--colorsoff", action="store_true", help="start with colours off")
    p.add_argument("--syncoff", action="store_true", help="start with time-sync off")
    p.add_argument("--share", metavar="[HOST:]PORT",
                   help="also serve the recording's player page to browsers, read-only, "
                        "while the replay runs (without a terminal: until interrupted)")
    return p


def pack_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="autotrace pack",
        description="Pack a recording into one .tar.gz bundle, with a SUMMARY.txt inside, "
                    "that autotrace cat, info and replay read directly.",
    )
    p.add_argument("path", type=Path,
                   help="recording directory (or a bundle, to redact it once more)")
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="where to write the bundle (default: ./NAME.tar.gz; given a "
                        "directory: NAME.tar.gz in it)")
    p.add_argument("--redact", action="append", default=[], metavar="REGEX",
                   help="replace every match of REGEX (Python syntax, matched within "
                        "lines) in the panes' output, the commands, every text field and "
                        "the names with «redacted»; repeatable; the manifest lists the "
                        "regexes. Fields the format does not define are dropped, and the "
                        "bundle is refused when a match still shows on a replayed screen")
    p.add_argument("--force", action="store_true",
                   help="replace the bundle file if it exists (default: refuse)")
    return p


def ls_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="autotrace ls",
        description="List the recordings in the default location ($XDG_STATE_HOME/"
                    "autotrace/recordings, else ~/.local/state/autotrace/recordings), "
                    "newest first: start time, duration, size, how the main command "
                    "ended, the main command, the folder.",
    )
    return p


def prune_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="autotrace prune",
        description="Remove recordings in the default location started more than DAYS "
                    "days ago, after listing them (asked on a terminal; --yes in a "
                    "script). Only folders that are autotrace recordings are removed.",
    )
    p.add_argument("--older-than", type=_seconds, required=True, metavar="DAYS",
                   help="remove recordings started more than DAYS days ago")
    p.add_argument("-y", "--yes", action="store_true", help="remove without asking")
    return p


def export_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="autotrace export",
        description="Write a recording as one file for someone without autotrace: "
                    "a self-contained HTML player (--html), one asciicast of the whole "
                    "view (--cast) or a picture of the view at a moment (--svg --at TIME).",
    )
    _recording_argument(p)
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--html", action="store_true",
                      help="a page that plays the session in a browser, opened from disk "
                           "with no network request")
    kind.add_argument("--cast", action="store_true",
                      help="the multi-pane view as one asciicast, for asciinema")
    kind.add_argument("--svg", action="store_true", help="the view at --at TIME as a picture")
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="where to write it (default: ./NAME.html, .cast or .svg)")
    p.add_argument("--format", choices=("v2", "v3"), default="v2",
                   help="with --cast: asciicast version (default: v2)")
    p.add_argument("--at", metavar="TIME", help="with --svg: the moment, 83.5 or 1:23.5")
    p.add_argument("--redact", action="append", default=[], metavar="REGEX",
                   help="mask matches of REGEX first, as `autotrace pack --redact` does")
    p.add_argument("--force", action="store_true", help="replace the output file if it exists")
    return p


# subcommand -> (its parser, module in autotrace.commands, function there)
SUBCOMMAND_TABLE: dict[str, tuple[Callable[[], argparse.ArgumentParser], str, str]] = {
    "cat": (cat_parser, "text", "run_cat"),
    "export": (export_parser, "export", "run_export"),
    "findings": (findings_parser, "text", "run_findings"),
    "info": (info_parser, "text", "run_info"),
    "pack": (pack_parser, "pack", "run_pack"),
    "replay": (replay_parser, "replay", "run_replay"),
    "ls": (ls_parser, "recordings", "run_ls"),
    "prune": (prune_parser, "recordings", "run_prune"),
}


def _command(module: str, function: str) -> Callable[[argparse.Namespace], int]:
    # Imported late so `--help` and usage errors stay instant, and each command
    # loads only what it needs.
    return getattr(importlib.import_module(f"autotrace.commands.{module}"), function)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    from autotrace.commands.common import guarded

    if args and args[0] in SUBCOMMAND_TABLE:
        make_parser, module, function = SUBCOMMAND_TABLE[args[0]]
        return guarded(_command(module, function), make_parser().parse_args(args[1:]))
    parser = trace_parser()
    options = parser.parse_args(args)
    if options.container is not None and options.pid is not None:
        parser.error("--container and --pid both name the process: give one")
    if options.replay is not None:
        replay_args = [str(options.replay), "--speed", str(options.replayspeed),
                       "--visible", str(options.visible),
                       "--min-pane", "{}x{}".format(*options.min_pane)]
        replay_args += [flag for flag, on in (("--vertical", options.vertical),
                                              ("--syncoff", options.syncoff),
                                              ("--colorsoff", options.colorsoff)) if on]
        return guarded(_command("replay", "run_replay"), replay_parser().parse_args(replay_args))
    return guarded(_command("trace", "run_trace"), options)


if __name__ == "__main__":
    sys.exit(main())
