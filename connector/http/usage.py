"""API usage of one client: calls per endpoint, retries, 429s and what the vendor says is left."""

from __future__ import annotations

import threading
from collections import Counter

from connector.crm import ApiUsage


class UsageCounter:
    """Thread-safe counters behind :meth:`CrmClient.usage`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.retries = 0
        self.rate_limited = 0
        self.quota_used: int | None = None
        self.quota_total: int | None = None

    def call(self, endpoint: str) -> None:
        with self._lock:
            self.calls[endpoint] += 1

    def retry(self) -> None:
        with self._lock:
            self.retries += 1

    def limited(self) -> None:
        with self._lock:
            self.rate_limited += 1

    def quota(self, used: int | None, total: int | None) -> None:
        with self._lock:
            if used is not None:
                self.quota_used = used
            if total is not None:
                self.quota_total = total

    def snapshot(self) -> ApiUsage:
        with self._lock:
            return ApiUsage(
                calls=dict(self.calls),
                retries=self.retries,
                rate_limited=self.rate_limited,
                quota_used=self.quota_used,
                quota_total=self.quota_total,
            )
