"""Keeping calls under a vendor's rate limits instead of bouncing off 429s.

A pacer holds one or more rolling windows: "at most ``calls`` calls in any
``seconds``", each applying to every call or only to calls of some kinds
(HubSpot's search endpoints have their own per-second limit). ``acquire``
waits until one more call fits every window that applies. The clock and
the sleep are injected, so a test drives it on a fake clock. Thread-safe:
Salesforce reads the next page in a second thread.

Team mode (several worker processes, several machines) shares one budget per
connection: a :class:`SharedBudget` that every process's pacer also draws on
after its own windows admit a call. The vendors never see where the budget
lives (the team layer keeps it in the state store): the client factory opens
the client inside :func:`sharing`, and every pacer built there takes that
budget.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Window:
    calls: int
    seconds: float
    kinds: frozenset[str] | None = None
    """The call kinds this window counts; ``None``: every call."""

    def applies(self, kind: str | None) -> bool:
        return self.kinds is None or (kind is not None and kind in self.kinds)


class SharedBudget(Protocol):
    """A rate budget shared with other processes: one connection's calls, whoever makes them."""

    def acquire(self, windows: Sequence[Window], kind: str | None) -> float:
        """Wait until one more call of ``kind`` fits ``windows`` for every process; return the seconds waited."""
        ...


_SHARED: ContextVar[SharedBudget | None] = ContextVar("crmsync_shared_budget", default=None)


@contextmanager
def sharing(budget: SharedBudget | None) -> Iterator[None]:
    """Pacers built inside this block draw on ``budget`` too (the team layer opens clients here)."""
    token = _SHARED.set(budget)
    try:
        yield
    finally:
        _SHARED.reset(token)


class Pacer:
    def __init__(
        self,
        windows: Sequence[Window],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        shared: SharedBudget | None = None,
    ) -> None:
        self.windows = tuple(windows)
        self.shared = shared if shared is not None else _SHARED.get()
        """The budget other processes draw on too (team mode); ``None``: this process alone."""
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
                    break
            self._sleep(wait)
            waited += wait
        if self.shared is not None:
            waited += self.shared.acquire(self.windows, kind)
        with self._lock:
            self.waited += waited
        return waited
