"""A safe, short name for a recording folder, made from the main command.

The folder name travels: into the bundle's name, every member path of it and
SUMMARY.txt. So it holds only the program's name, never the words around it:
`PASSWORD=hunter2 make` is a `make` session, and so is
`env -u HOME sudo -E nice -n 5 /usr/bin/make -j4`.
"""

from __future__ import annotations

import os
import re
import shlex

NAME_LIMIT = 24  # characters of the program's name in a folder name
FALLBACK = "session"

_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

# Programs that run the next word as the command; for each, its options that
# take a value (the value is skipped with the option). Options written
# `-uNAME` or `--user=NAME` carry their value and need no entry.
_WRAPPERS: dict[str, frozenset[str]] = {
    "env": frozenset({"-u", "--unset", "-C", "--chdir", "-S", "--split-string"}),
    "sudo": frozenset({"-u", "--user", "-g", "--group", "-C", "--close-from", "-D",
                       "--chdir", "-h", "--host", "-p", "--prompt", "-r", "--role",
                       "-t", "--type", "-U", "--other-user", "-T", "--command-timeout"}),
    "doas": frozenset({"-u", "-C"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "ionice": frozenset({"-c", "--class", "-n", "--classdata", "-p", "--pid"}),
    "timeout": frozenset({"-s", "--signal", "-k", "--kill-after"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "taskset": frozenset(),
    "chrt": frozenset(),
    "nohup": frozenset(),
    "setsid": frozenset(),
    "time": frozenset({"-f", "--format", "-o", "--output"}),
    "exec": frozenset({"-a"}),
    "command": frozenset(),
    "builtin": frozenset(),
    "unbuffer": frozenset(),
}
# Wrappers whose first plain word is an argument of theirs, not the command.
_FIRST_WORD_IS_AN_ARGUMENT = frozenset({"timeout", "taskset", "chrt"})


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:  # an unclosed quote: the shell will say so; a name is still needed
        return command.split()


def program_word(command: str) -> str | None:
    """The word of COMMAND naming the program it runs, past assignments and wrappers."""
    words = iter(_words(command))
    wrapper: str | None = None
    argument_due = False
    for word in words:
        if _ASSIGNMENT.match(word):
            continue
        if wrapper is not None and word.startswith("-") and word != "-":
            if word in _WRAPPERS[wrapper]:
                next(words, None)
            continue
        if wrapper is not None and argument_due:
            argument_due = False
            continue
        name = os.path.basename(word)
        if name in _WRAPPERS:
            wrapper = name
            argument_due = name in _FIRST_WORD_IS_AN_ARGUMENT
            continue
        return word
    return None


def program_name(command: str) -> str:
    """A short name for a folder: the program's base name in letters, digits
    and `-_.`, at most NAME_LIMIT of them; "session" when nothing is left."""
    word = program_word(command) or ""
    name = _UNSAFE.sub("_", os.path.basename(word)).lstrip(".")[:NAME_LIMIT]
    return name.strip("_") or FALLBACK
