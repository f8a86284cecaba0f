"""How reading a recording fails: one exception whose message is one line
for the user, and the JSON decoding and time checks that raise it.

Everything a recording holds is untrusted input: JSON nested 100000 deep, a
time of 5000 digits or a NaN must end as a RecordingError naming the file
and the problem, never as an exception nobody expected.
"""

from __future__ import annotations

import json
import math
from typing import Any

from autotrace.errors import UserError

# No recording lasts longer, and no clock reads later (the year 2286): a time
# beyond this is damage, and would overflow whatever is computed from it.
MAX_SECONDS = 1e10


class RecordingError(UserError):
    """A recording that cannot be read or written; the message is for the user."""


def decode_json(data: str | bytes, where: str, what: str, multiline: bool = False) -> Any:
    """`data` as JSON; any failure is a RecordingError "WHERE: corrupt WHAT: why"
    (WHERE:LINE for a `multiline` file such as the manifest).

    Bytes that are not UTF-8 become U+FFFD, as a terminal would show them.
    """
    if isinstance(data, bytes):
        data = data.decode("utf-8", errors="replace")
    try:
        return json.loads(data)
    except json.JSONDecodeError as err:
        reason = err.msg
        where = f"{where}:{err.lineno}" if multiline else where
    except RecursionError:
        reason = "nested too deeply"
    except ValueError:  # Python's limit on an integer's digits (3.11)
        reason = "a number with too many digits"
    raise RecordingError(f"{where}: corrupt {what}: {reason}")


def is_number(value: Any) -> bool:
    """An int or a float, which JSON's true and false are not."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def time_problem(value: Any) -> str | None:
    """Why `value` cannot be a time in seconds, or None when it can."""
    if not is_number(value):
        return f"time is {describe(value)}, not a number"
    # Compared before any conversion: float() of a 400-digit int overflows.
    if isinstance(value, float) and not math.isfinite(value):
        return f"time {value} is not a finite number"
    if not 0 <= value <= MAX_SECONDS:
        return f"time {describe(value)} is out of range (0 to {MAX_SECONDS:.0e} seconds)"
    return None


def describe(value: Any, limit: int = 24) -> str:
    """A JSON value, shortened: messages carry no 5000-digit numbers."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (ValueError, TypeError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= limit else f"{text[:limit - 3]}..."
