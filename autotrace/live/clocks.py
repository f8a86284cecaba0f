"""Another host's clock against ours: offset and round trip from timed questions.

One sample is a question sent at local wall time `sent`, answered with the
remote wall time, received back at `received`. The answer was read at some
moment between the two, so the remote clock's offset is
`remote - (sent + received) / 2`, wrong by at most half the round trip (the
whole round trip spent on one leg). Of several samples the one with the
shortest round trip is kept: its bound is the tightest (NTP's rule).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

# Samples per measurement: the shortest of these is kept.
SAMPLES = 5


@dataclass(frozen=True)
class ClockSample:
    sent: float  # local wall clock when the question left
    remote: float  # the remote wall clock's answer
    received: float  # local wall clock when the answer came back

    @property
    def round_trip(self) -> float:
        return self.received - self.sent

    @property
    def offset(self) -> float:
        """Remote clock minus local clock (a remote time minus this is a local time)."""
        return self.remote - (self.sent + self.received) / 2

    @property
    def uncertainty(self) -> float:
        """The offset is right to within this: half the round trip."""
        return self.round_trip / 2

    def to_json(self, started_unix: float) -> dict[str, Any]:
        return {"t": round(self.sent - started_unix, 6), "offset": round(self.offset, 6),
                "round_trip": round(self.round_trip, 6),
                "uncertainty": round(self.uncertainty, 6)}


def best(samples: Iterable[ClockSample]) -> ClockSample | None:
    """The sample with the shortest round trip (a negative one is a clock step: dropped)."""
    usable = [s for s in samples if s.round_trip >= 0]
    return min(usable, key=lambda s: s.round_trip) if usable else None


def measure(ask: Callable[[], float], clock: Callable[[], float] = time.time,
            count: int = SAMPLES) -> ClockSample | None:
    """Ask the remote time COUNT times (ASK blocks for one answer); the best sample.

    ASK raising OSError or ValueError (a lost connection, an answer that is no
    time) ends the measurement with what was gathered."""
    samples = []
    for _ in range(count):
        sent = clock()
        try:
            remote = ask()
        except (OSError, ValueError):
            break
        samples.append(ClockSample(sent, remote, clock()))
    return best(samples)
