"""Every key of the view, in one table: it drives key dispatch, the help screen
and the footer, so none of them can disagree with the others.

A binding applies in some *modes*; the view is in one or two at a time:

    live      a live session, running
    paused    a live session, paused by the user
    ended     a live session that is over: its final screen
    replay    a replay, playing or paused
    replay_paused  a replay, paused (scrolling keys apply)
    input     typing into a pane's program (`i`): every key goes to it, but
              the keys this table gives the mode

The first binding (in table order) whose keys and modes match wins, so
replay's Space (play/pause) comes before the pager's Space (page down).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

LIVE, PAUSED, ENDED = "live", "paused", "ended"
REPLAY, REPLAY_PAUSED = "replay", "replay_paused"
INPUT = "input"
LEAVE_INPUT = "\x1d"  # Ctrl-]: telnet's escape, which no program needs
EVERY_LIVE = frozenset({LIVE, PAUSED, ENDED})
READING = frozenset({PAUSED, ENDED, REPLAY_PAUSED})  # scrolling applies
EVERYWHERE = EVERY_LIVE | {REPLAY}

# Footer entries shown only when the view is in such a state.
WHEN_ZOOMED, WHEN_MORE_PANES, WHEN_SEARCHED = "zoomed", "more panes", "searched"
WHEN_WIDE = "wide"  # the focused pane's screen is wider than its place
WHEN_FINDINGS = "findings"


@dataclass(frozen=True)
class Binding:
    command: str  # what the key does: the view's own, or an Action for the controller
    keys: tuple[str, ...]  # as Terminal.pending_keys names them (blessed names or characters)
    label: str  # how help writes the keys
    help: str | None  # the help screen's line (None: told by the binding before it)
    modes: frozenset[str]
    footer: str | None = None  # short form for the footer
    when: str | None = None  # the footer shows it only in this state


def _b(command: str, keys: Iterable[str], label: str, help: str | None,
       modes: Iterable[str], footer: str | None = None, when: str | None = None) -> Binding:
    return Binding(command, tuple(keys), label, help, frozenset(modes), footer, when)


QUIT_KEYS = ("q", "KEY_ESCAPE", "\x04")
DIGITS = tuple("0123456789")

TABLE: tuple[Binding, ...] = (
    _b("quit", QUIT_KEYS, "q  Esc  Ctrl-D", "quit: tracers stop, the main command ends",
       {LIVE, PAUSED}, "q quit"),
    _b("quit", QUIT_KEYS, "q  Esc  Ctrl-D", "quit (the session is over)", {ENDED}, "q quit"),
    _b("quit", QUIT_KEYS, "q  Esc", "quit", {REPLAY}, "q quit"),
    # replay's own keys first: they shadow the pager's Space, g, G and the arrows
    _b("play_pause", (" ", "p"), "Space  p", "pause or play", {REPLAY}, "Space play/pause"),
    _b("play", ("c",), "c", "continue", {REPLAY}),
    _b("faster", ("+", "="), "+  -", "faster / slower", {REPLAY}, "+/- speed"),
    _b("slower", ("-",), "-", None, {REPLAY}),
    _b("seek_back", ("KEY_LEFT",), "Left  Right", "seek 5 s back / forward", {REPLAY},
       "←/→ 5 s"),
    _b("seek_forward", ("KEY_RIGHT",), "Right", None, {REPLAY}),
    _b("marker_previous", ("[",), "[  ]", "previous / next marker", {REPLAY}, "[/] marker"),
    _b("marker_next", ("]",), "]", None, {REPLAY}),
    _b("start", ("g",), "g  G", "start / end", {REPLAY}, "g/G start/end"),
    _b("end", ("G",), "G", None, {REPLAY}),
    _b("go_to", (":",), ":", "go to a time typed as 83.5 or 1:23.5", {REPLAY}, ": go to"),
    _b("mark_refused", ("M",), "M", None, {REPLAY}),
    # the session's
    _b("pause", ("p",), "p", "pause: stop (SIGSTOP) the main command and the tracers; "
       "the view freezes", {LIVE}, "p pause"),
    _b("resume", ("c",), "c", "continue: SIGCONT, back to the live tail", {LIVE, PAUSED},
       "c continue"),
    # reading: scrolling the focused pane
    _b("line_up", ("k", "KEY_UP"), "j k  Up Down", "scroll one line (paused, or at the end)",
       READING, "j/k line"),
    _b("line_down", ("j", "KEY_DOWN"), "j", None, READING),
    _b("page_up", ("b", "KEY_PGUP", "KEY_PPAGE"), "f b  Space PgDn PgUp",
       "scroll one page", READING, "f/b page"),
    _b("page_down", ("f", " ", "KEY_PGDOWN", "KEY_NPAGE"), "f", None, READING),
    _b("top", ("g",), "g G", "top / bottom of the focused pane", {PAUSED, ENDED},
       "g/G top/bottom"),
    _b("bottom", ("G",), "G", None, {PAUSED, ENDED}),
    # panes
    _b("zoom", DIGITS, "0-9", "zoom pane N (again: back to all panes)", EVERYWHERE,
       "0-9 zoom"),
    _b("unzoom", ("z",), "z", "unzoom", EVERYWHERE, "z unzoom", WHEN_ZOOMED),
    _b("cycle", ("m",), "m", "cycle hidden panes into view (pane 0 stays if two fit)", EVERYWHERE,
       "m more panes", WHEN_MORE_PANES),
    _b("scroll_left", ("<",), "<  >", "scroll the focused pane sideways (lines wider than "
       "its place)", EVERYWHERE, "</> sideways", WHEN_WIDE),
    _b("scroll_right", (">",), ">", None, EVERYWHERE),
    _b("wrap", ("w",), "w", "wrap on/off in the focused pane (off: its pty is wider than its "
       "place)", EVERYWHERE),
    _b("focus_next", ("\t", "KEY_TAB"), "Tab  arrows", "move focus between panes",
       EVERYWHERE, "Tab focus"),
    _b("focus_previous", ("KEY_BTAB",), "Shift-Tab", None, EVERYWHERE),
    _b("focus_next", ("KEY_RIGHT", "KEY_DOWN"), "Right Down", None, {LIVE}),
    _b("focus_previous", ("KEY_LEFT", "KEY_UP"), "Left Up", None, {LIVE}),
    _b("focus_next", ("KEY_RIGHT",), "Right", None, {PAUSED, ENDED}),
    _b("focus_previous", ("KEY_LEFT",), "Left", None, {PAUSED, ENDED}),
    # everywhere
    _b("sync", ("t",), "t", "time-sync on/off: scrolling one pane scrolls every other to "
       "the same moment", EVERYWHERE, "t sync"),
    _b("search", ("/",), "/  n N", "search every pane with a regex (the focused one first, "
       "back to the start); next / previous match", EVERYWHERE, "/ search"),
    _b("search_again", ("n",), "n", None, EVERYWHERE, "n/N next/prev", WHEN_SEARCHED),
    _b("search_reverse", ("N",), "N", None, EVERYWHERE),
    _b("findings", ("F",), "F", "findings: what went wrong; Enter moves every pane to it "
       "and highlights the evidence", EVERYWHERE, "F findings", WHEN_FINDINGS),
    _b("mark", ("M",), "M", "insert a named marker into the recording", {LIVE, PAUSED},
       "M mark"),
    _b("type_in", ("i",), "i", "type into the focused pane's program (Ctrl-C, Ctrl-Z, "
       "Ctrl-D and paste go to it) until Ctrl-]", {LIVE}, "i type"),
    _b("input_refused", ("i",), "i", None, {PAUSED, ENDED, REPLAY}),
    _b("leave_input", (LEAVE_INPUT,), "Ctrl-]", "leave input mode: keys are the view's again",
       {INPUT}, "Ctrl-] leave input mode"),
    _b("redraw", ("r",), "r", "redraw the screen", EVERYWHERE),
    _b("colours", ("l",), "l", "colours and lenses on/off", EVERYWHERE),
    _b("help", ("h", "?"), "h  ?", "this help (Space: its next page; any other key closes it)",
       EVERYWHERE, "h help"),
)

# Footer order per mode (a command listed is shown when its binding applies).
FOOTER_ORDER: dict[str, tuple[str, ...]] = {
    LIVE: ("quit", "unzoom", "pause", "type_in", "zoom", "cycle", "scroll_left", "focus_next",
           "search", "findings", "mark", "help"),
    PAUSED: ("resume", "unzoom", "line_up", "page_up", "top", "cycle", "scroll_left", "search",
             "search_again", "sync", "quit"),
    ENDED: ("quit", "unzoom", "line_up", "page_up", "top", "cycle", "scroll_left", "search",
            "search_again", "findings", "sync", "zoom", "help"),
    REPLAY: ("quit", "unzoom", "play_pause", "faster", "seek_back", "marker_previous",
             "cycle", "scroll_left", "start", "go_to", "search", "search_again", "findings",
             "zoom", "help"),
    INPUT: ("leave_input",),
}


def lookup(key: str, modes: frozenset[str] | set[str]) -> Binding | None:
    for binding in TABLE:
        if key in binding.keys and binding.modes & modes:
            return binding
    return None


def help_rows(modes: frozenset[str] | set[str]) -> list[tuple[str, str]]:
    """(keys, meaning) for every binding that applies, in table order."""
    rows: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for binding in TABLE:
        if binding.help is None or not binding.modes & modes:
            continue
        row = (binding.label, binding.help)
        if row not in seen:
            seen.add(row)
            rows.append(row)
    return rows


def footer(primary: str, modes: frozenset[str] | set[str], states: set[str],
           sync: bool) -> list[str]:
    """The footer's entries for the view's primary mode and its current states."""
    entries: list[str] = []
    for command in FOOTER_ORDER[primary]:
        binding = next((b for b in TABLE if b.command == command and b.modes & modes
                        and b.footer), None)
        if binding is None or (binding.when is not None and binding.when not in states):
            continue
        entries.append(f"t sync:{'on' if sync else 'off'}" if command == "sync"
                       else binding.footer)  # type: ignore[arg-type]
    return entries
