"""What a sandbox was asked: one entry per request, counted per endpoint and status."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    endpoint: str
    """The emulator's name for the call: ``contacts.search``, ``query_more``, ``composite/sobjects``..."""
    method: str
    status: int
    """HTTP status answered; 0 when the connection was dropped (a ``reset`` fault or a client gone)."""
    path: str = ""
    fault: str | None = None
    """The injected fault or limit policy that shaped the response, if any."""
    seconds: float = 0.0


@dataclass
class RequestLog:
    """Thread-safe; entries are written before the response leaves, so a test reading after its call sees them."""

    keep_entries: bool = True
    """Benchmarks keep only the counters."""
    max_entries: int | None = None
    """Keep only the last this many entries (``None``: all)."""
    entries: deque[LoggedRequest] = field(init=False)
    _counts: Counter[tuple[str, int]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.entries = deque(maxlen=self.max_entries)

    def add(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._counts[(entry.endpoint, entry.status)] += 1
            if self.keep_entries:
                self.entries.append(entry)

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()
            self._counts.clear()

    def calls(self, endpoint: str | None = None, status: int | None = None) -> int:
        """Requests to ``endpoint`` (any if ``None``) answered with ``status`` (any if ``None``)."""
        with self._lock:
            return sum(
                n
                for (name, code), n in self._counts.items()
                if (endpoint is None or name == endpoint) and (status is None or code == status)
            )

    @property
    def counts(self) -> Counter[str]:
        """Requests per endpoint (a copy)."""
        totals: Counter[str] = Counter()
        with self._lock:
            for (name, _), n in self._counts.items():
                totals[name] += n
        return totals

    @property
    def statuses(self) -> Counter[int]:
        """Requests per status (a copy)."""
        totals: Counter[int] = Counter()
        with self._lock:
            for (_, code), n in self._counts.items():
                totals[code] += n
        return totals

    def by_endpoint(self) -> dict[str, int]:
        return dict(self.counts)

    def by_endpoint_and_status(self) -> dict[tuple[str, int], int]:
        with self._lock:
            return dict(self._counts)

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready counters (the ``/_sandbox/stats`` answer)."""
        return {"counts": dict(self.counts), "statuses": {str(k): v for k, v in self.statuses.items()}}
