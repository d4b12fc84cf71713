"""Keeping calls under HubSpot's limits instead of bouncing off 429s.

Two limits apply at once: the burst limit over a rolling window (every
call) and the per-second search limit (``.../search`` only). The pacer
aims at ``pace_share`` of each, leaving room for other apps on the portal.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class Pacer:
    def __init__(
        self,
        *,
        burst_limit: int,
        burst_window_seconds: float,
        search_per_second: float,
        share: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.burst_allowed = max(1, math.floor(burst_limit * share))
        self.window = burst_window_seconds
        self.search_interval = 1.0 / (search_per_second * share)
        self._calls: deque[float] = deque()
        self._last_search: float | None = None
        self._clock = clock
        self._sleep = sleep
        self.waited = 0.0

    def acquire(self, *, search: bool) -> float:
        """Wait until one more call fits; return how long we waited."""
        waited = 0.0
        while True:
            now = self._clock()
            while self._calls and self._calls[0] <= now - self.window:
                self._calls.popleft()
            wait = 0.0
            if len(self._calls) >= self.burst_allowed:
                wait = self._calls[0] + self.window - now
            if search and self._last_search is not None:
                wait = max(wait, self._last_search + self.search_interval - now)
            if wait <= 0:
                break
            self._sleep(wait)
            waited += wait
        self._calls.append(now)
        if search:
            self._last_search = now
        self.waited += waited
        return waited
