"""What the sandbox was asked: one entry per request, counted per endpoint and status."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    endpoint: str
    """e.g. ``contacts.search``, ``meetings.list``, ``contacts.batch_update``, ``associations.batch_read``."""
    method: str
    path: str
    status: int
    fault: str | None = None
    """The injected fault or limit policy that shaped the response, if any."""


@dataclass
class RequestLog:
    keep_entries: bool = True
    """Benchmarks keep only the counters."""
    entries: list[LoggedRequest] = field(default_factory=list)
    _counts: Counter[tuple[str, int]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._counts[(entry.endpoint, entry.status)] += 1
            if self.keep_entries:
                self.entries.append(entry)

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()
            self._counts.clear()

    def counts(self) -> dict[tuple[str, int], int]:
        """Requests per (endpoint, status)."""
        with self._lock:
            return dict(self._counts)

    def calls(self, endpoint: str | None = None, status: int | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (name, code), n in self._counts.items()
                if (endpoint is None or name == endpoint) and (status is None or code == status)
            )

    def by_endpoint(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        with self._lock:
            for (name, _), n in self._counts.items():
                totals[name] += n
        return dict(totals)
