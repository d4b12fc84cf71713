"""Rolling-window request limits, the way the vendors count them.

HubSpot counts requests in a rolling 10-second window (and searches per
second); Salesforce counts REST calls in a rolling 24-hour allocation. Both
are a :class:`RollingLimit`; the 24-hour one counts per minute so that a
million calls take a few thousand slots, not a million timestamps.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class RollingLimit:
    """At most ``limit`` events in any ``window`` seconds (``limit=None``: counted, never refused).

    Events are grouped in slots of ``slot`` seconds (0: one slot per event,
    exact). Not thread-safe: the emulator checks several limits under one lock.
    """

    def __init__(
        self, limit: int | None, window: float, *, slot: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.slot = slot
        self.clock = clock
        self._slots: deque[list[float]] = deque()  # [slot start, events]
        self._used = 0

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        while self._slots and self._slots[0][0] + self.slot <= horizon:
            self._used -= int(self._slots.popleft()[1])

    @property
    def used(self) -> int:
        self._expire(self.clock())
        return self._used

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)

    def wait(self) -> float | None:
        """Seconds until one more event fits, ``None`` when it fits now."""
        if self.limit is None:
            return None
        now = self.clock()
        self._expire(now)
        if self._used < self.limit:
            return None
        if not self._slots:  # set_used pushed it past the limit with nothing to expire
            return self.window
        return max(self._slots[0][0] + self.slot + self.window - now, 0.001)

    def add(self, events: int = 1) -> None:
        if self.limit is None:  # unlimited: nothing to refuse, nothing to remember
            return
        now = self.clock()
        start = now - (now % self.slot) if self.slot else now
        if self._slots and self.slot and self._slots[-1][0] == start:
            self._slots[-1][1] += events
        else:
            self._slots.append([start, events])
        self._used += events

    def take(self) -> float | None:
        """Count one event if it fits; else the seconds until it would (nothing counted)."""
        wait = self.wait()
        if wait is None:
            self.add()
        return wait

    def set_used(self, used: int) -> None:
        """Pretend ``used`` events happened just now (tests of a quota stop)."""
        self._slots.clear()
        self._used = 0
        if used:
            self.add(used)
