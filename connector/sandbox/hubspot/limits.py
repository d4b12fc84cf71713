"""HubSpot's rate limits, as the sandbox enforces them.

- the ten-secondly rolling limit (default 190 requests / 10 s, private apps
  on Professional and Enterprise), shared by every call;
- the search limit (about 5 requests / second) on ``.../search`` only;
- the daily limit; past it every call gets a ``DAILY`` 429 until the
  counter is reset (HubSpot resets it at midnight in the portal's time zone).

HubSpot does not always send ``Retry-After`` on a 429: ``send_retry_after``
chooses. ``Limits.unlimited()`` turns every limit off (benchmarks).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from connector.sandbox.kit.limits import RollingLimit


@dataclass(frozen=True, slots=True)
class Limits:
    burst: int | None = 190
    burst_window_seconds: float = 10.0
    search_per_second: int | None = 5
    daily: int | None = 1_000_000
    search_result_cap: int = 10_000
    """A search query returns at most this many results; paging past it is HTTP 400."""
    send_retry_after: bool = False
    """Whether 429s of the rolling limits carry ``Retry-After``."""

    @classmethod
    def unlimited(cls, *, search_result_cap: int = 10_000) -> Limits:
        return cls(burst=None, search_per_second=None, daily=None, search_result_cap=search_result_cap)


@dataclass(frozen=True, slots=True)
class Verdict:
    """``policy`` is ``None`` when the call may go ahead."""

    policy: str | None
    retry_after: float | None
    burst_remaining: int | None
    daily_used: int


class RateLimiter:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._burst = RollingLimit(limits.burst, limits.burst_window_seconds)
        self._search = RollingLimit(limits.search_per_second, 1.0)
        self.daily_used = 0
        self._lock = threading.Lock()

    def reset_daily(self) -> None:
        with self._lock:
            self.daily_used = 0

    def admit(self, *, search: bool) -> Verdict:
        """Count one request; say which policy refuses it, if any."""
        limits = self.limits
        with self._lock:
            if limits.daily is not None and self.daily_used >= limits.daily:
                return Verdict("DAILY", None, None, self.daily_used)
            wait = self._burst.wait()
            if wait is not None:
                return Verdict("TEN_SECONDLY_ROLLING", wait, 0, self.daily_used)
            if search:
                wait = self._search.take()
                if wait is not None:
                    return Verdict("SECONDLY", wait, None, self.daily_used)
            self._burst.add()
            self.daily_used += 1
            return Verdict(None, None, self._burst.remaining, self.daily_used)
