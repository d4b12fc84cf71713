"""Keeping calls under a vendor's rate limits instead of bouncing off 429s.

A pacer holds one or more rolling windows: "at most ``calls`` calls in any
``seconds``", each applying to every call or only to calls of some kinds
(HubSpot's search endpoints have their own per-second limit). ``acquire``
waits until one more call fits every window that applies. The clock and
the sleep are injected, so a test drives it on a fake clock. Thread-safe:
Salesforce reads the next page in a second thread.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Window:
    calls: int
    seconds: float
    kinds: frozenset[str] | None = None
    """The call kinds this window counts; ``None``: every call."""

    def applies(self, kind: str | None) -> bool:
        return self.kinds is None or (kind is not None and kind in self.kinds)


class Pacer:
    def __init__(
        self,
        windows: Sequence[Window],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.windows = tuple(windows)
        self._calls: tuple[deque[float], ...] = tuple(deque() for _ in self.windows)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self.waited = 0.0
        """Seconds spent waiting so far."""

    @classmethod
    def per_second(
        cls,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Pacer:
        """Calls spaced at least ``1 / rate`` seconds apart."""
        return cls([Window(1, 1.0 / rate)], clock=clock, sleep=sleep)

    def acquire(self, kind: str | None = None) -> float:
        """Wait until one more call of ``kind`` fits every window; return how long this call waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                wait = 0.0
                for window, calls in zip(self.windows, self._calls, strict=True):
                    if not window.applies(kind):
                        continue
                    while calls and calls[0] <= now - window.seconds:
                        calls.popleft()
                    if len(calls) >= window.calls:
                        wait = max(wait, calls[len(calls) - window.calls] + window.seconds - now)
                if wait <= 0:
                    for window, calls in zip(self.windows, self._calls, strict=True):
                        if window.applies(kind):
                            calls.append(now)
                    self.waited += waited
                    return waited
            self._sleep(wait)
            waited += wait
