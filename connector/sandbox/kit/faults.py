"""One fault model for every sandbox CRM: seeded, per endpoint, counted.

A :class:`Fault` is armed on a sandbox's :class:`Faults`; each request
meets at most one fault. A fault with ``times`` hits the next ``times``
matching requests (first armed, first served); with ``times=None`` it hits
each matching request with ``probability``. Probabilistic draws are seeded
per endpoint: whether the n-th request to an endpoint is hit depends only on
(seed, endpoint, n), never on how threads interleave requests to other
endpoints.

Kinds (each emulator renders them in its vendor's shapes):

- ``rate_limit``: HTTP 429, with ``Retry-After`` in seconds, as an HTTP
  date (``retry_after_date``), or without it; ``policy="DAILY"`` means the
  day's quota is gone (HubSpot's ``DAILY`` 429, Salesforce's 403
  ``REQUEST_LIMIT_EXCEEDED``);
- ``server_error``: HTTP ``status`` (500, 502 or 503);
- ``reset``: the connection drops before a whole response is sent;
- ``slow``: the response waits ``delay`` seconds (past a client timeout,
  the client sees a read timeout);
- ``partial``: a batch write rejects chosen ids (``reject_ids``) or a
  seeded share of them (``reject_share``), the rest succeed.

Status-code shorthands are accepted for the kind: ``"429"`` is
``rate_limit``, ``"500"``/``"502"``/``"503"`` are ``server_error`` with that
status. Record faults (:meth:`Faults.reject`) make the next writes to given
records fail, whatever request carries them (Salesforce's
``UNABLE_TO_LOCK_ROW``).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from random import Random
from typing import Any, Literal

FaultKind = Literal["rate_limit", "server_error", "reset", "slow", "partial"]
KINDS: frozenset[str] = frozenset({"rate_limit", "server_error", "reset", "slow", "partial"})
SHORTHANDS: dict[str, tuple[str, int]] = {"429": ("rate_limit", 429), "500": ("server_error", 500),
                                          "502": ("server_error", 502), "503": ("server_error", 503)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    """One of :data:`KINDS`, or a status-code shorthand (``"429"``, ``"500"``, ``"502"``, ``"503"``)."""
    endpoint: str | None = "*"
    """Endpoint name as in the request log (``contacts.batch_update``, ``query``), a prefix ending in ``*``,
    or ``*`` / ``None`` for any."""
    times: int | None = 1
    """How many matching requests it hits; ``None``: every one, with ``probability``."""
    probability: float = 1.0
    status: int = 503
    """``server_error``: 500, 502 or 503 (set by the shorthands)."""
    retry_after: float | None = None
    """``rate_limit``: seconds announced in ``Retry-After``; ``None`` sends no header."""
    retry_after_date: bool = False
    """``rate_limit``: send ``Retry-After`` as an HTTP date (``now + retry_after``, whole seconds, rounded up)."""
    policy: str = "TEN_SECONDLY_ROLLING"
    """``rate_limit``: the limit that refused the call; ``DAILY`` means the day's quota is gone."""
    delay: float = 0.0
    """``slow``: seconds before the response."""
    reject_ids: tuple[str, ...] = ()
    """``partial``: ids to reject."""
    reject_share: float = 0.0
    """``partial``: share of the other inputs to reject (seeded)."""
    category: str = "OBJECT_NOT_FOUND"
    """``partial``: why: ``OBJECT_NOT_FOUND``, ``VALIDATION_ERROR`` or ``UNABLE_TO_LOCK_ROW``."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS and self.kind not in SHORTHANDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.kind in SHORTHANDS and self.kind != "429":
            object.__setattr__(self, "status", SHORTHANDS[self.kind][1])
        if self.times is not None and self.times < 0:
            raise ValueError("times must not be negative")

    @property
    def effect(self) -> str:
        """The kind, shorthands resolved: ``rate_limit``, ``server_error``, ``reset``, ``slow`` or ``partial``."""
        return SHORTHANDS[self.kind][0] if self.kind in SHORTHANDS else self.kind

    def matches(self, endpoint: str) -> bool:
        if self.endpoint in (None, "*") or self.endpoint == endpoint:
            return True
        return self.endpoint.endswith("*") and endpoint.startswith(self.endpoint[:-1])

    def retry_after_header(self, now: datetime | None = None) -> dict[str, str]:
        """The ``Retry-After`` header this fault sends, if any."""
        return retry_after_header(self.retry_after, as_date=self.retry_after_date, now=now)


def retry_after_header(seconds: float | None, *, as_date: bool = False, now: datetime | None = None) -> dict[str, str]:
    """``Retry-After`` as delta-seconds or as an HTTP date (RFC 9110 section 10.2.3); ``{}`` for ``None``."""
    if seconds is None:
        return {}
    if not as_date:
        return {"Retry-After": f"{seconds:g}"}
    moment = (now or datetime.now(UTC)).replace(microsecond=0) + timedelta(seconds=math.ceil(seconds))
    return {"Retry-After": format_datetime(moment.astimezone(UTC), usegmt=True)}


@dataclass
class _Armed:
    fault: Fault
    left: int | None
    hits: int = 0


@dataclass
class Faults:
    """The faults armed on one sandbox; thread-safe; ``seed`` makes probabilistic ones repeatable."""

    seed: int = 7
    _armed: list[_Armed] = field(default_factory=list)
    _records: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    _seen: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *faults: Fault | str, endpoint: str | None = None, times: int | None = 1, **options: Any) -> None:
        """Arm faults: ``add(Fault(...), ...)``, or a shorthand ``add("503", endpoint="query", times=2)``."""
        made = [
            fault if isinstance(fault, Fault) else Fault(fault, endpoint=endpoint, times=times, **options)
            for fault in faults
        ]
        with self._lock:
            for fault in made:
                self._armed.append(_Armed(fault, fault.times))

    def reject(self, record_ids: list[str], *, times: int = 1, category: str = "UNABLE_TO_LOCK_ROW") -> None:
        """The next ``times`` writes to each of ``record_ids`` fail with ``category``, the rest of the batch succeeds."""
        with self._lock:
            for record_id in record_ids:
                self._records.setdefault(record_id, []).append((category, times))

    def lock_rows(self, record_ids: list[str], *, times: int = 1) -> None:
        """Salesforce's wording of :meth:`reject`: the records are locked by another transaction."""
        self.reject(record_ids, times=times, category="UNABLE_TO_LOCK_ROW")

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()
            self._records.clear()

    @property
    def pending(self) -> int:
        """Hits left on faults armed with ``times`` (probabilistic ones do not count)."""
        with self._lock:
            return sum(a.left for a in self._armed if a.left)

    def hits(self) -> int:
        """Requests hit so far (record faults not included)."""
        with self._lock:
            return sum(a.hits for a in self._armed)

    def take(self, endpoint: str) -> Fault | None:
        """The fault this request to ``endpoint`` meets, if any, counted as a hit.

        Faults armed with ``times`` come first, in the order they were added.
        Then one seeded roll per request picks among the probabilistic ones:
        they share [0, 1) in the order they were added, each its
        ``probability`` wide, so their rates add up rather than shadow each other.
        """
        with self._lock:
            number = self._seen[endpoint] = self._seen.get(endpoint, 0) + 1
            matching = [armed for armed in self._armed if armed.fault.matches(endpoint)]
            for armed in matching:
                if armed.left is not None and armed.left > 0:
                    armed.left -= 1
                    armed.hits += 1
                    return armed.fault
            roll: float | None = None
            for armed in matching:
                if armed.left is not None:
                    continue
                if roll is None:
                    roll = Random(f"{self.seed}:{endpoint}:{number}").random()
                if roll < armed.fault.probability:
                    armed.hits += 1
                    return armed.fault
                roll -= armed.fault.probability
        return None

    def rejected(self, fault: Fault, ids: list[str]) -> set[str]:
        """The ids a ``partial`` fault rejects among ``ids`` (the share is seeded by id)."""
        picked = {i for i in ids if i in fault.reject_ids}
        if fault.reject_share:
            picked |= {i for i in ids if Random(f"{self.seed}:reject:{i}").random() < fault.reject_share}
        return picked

    def record_fault(self, record_id: str) -> str | None:
        """The category the next write to ``record_id`` fails with, if a record fault is armed on it (consumed)."""
        with self._lock:
            armed = self._records.get(record_id)
            while armed:
                category, left = armed[0]
                if left > 0:
                    armed[0] = (category, left - 1)
                    return category
                armed.pop(0)
        return None
