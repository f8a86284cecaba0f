"""The base of every error that is the user's to fix, not ours.

A command that raises one of these ends with its message on one line and
exit 1 (commands/common.py); anything else is an internal error. Each room
has its own kind (a recording, a preset, a job to attach to), all of this one.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the message explains to the user; the exit status is 1."""
