"""Fault injection for the HubSpot sandbox: seeded, per endpoint, counted.

A :class:`Fault` applies to the next ``times`` matching requests (or to
every matching request with ``probability`` when ``times`` is ``None``).
Kinds: ``rate_limit`` (429 with or without ``Retry-After``),
``server_error`` (500/502/503), ``reset`` (the connection drops mid-
response), ``slow`` (the response waits ``delay`` seconds), ``partial``
(a batch update rejects chosen ids, or a seeded share of them, with
``OBJECT_NOT_FOUND`` or ``VALIDATION_ERROR``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from random import Random
from typing import Literal

FaultKind = Literal["rate_limit", "server_error", "reset", "slow", "partial"]


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    endpoint: str = "*"
    """Endpoint name as in the request log (``contacts.batch_update``), a prefix ending in ``*``, or ``*``."""
    times: int | None = 1
    """How many matching requests it hits; ``None``: every one, with ``probability``."""
    probability: float = 1.0
    status: int = 503
    """``server_error``: 500, 502 or 503."""
    retry_after: float | None = None
    """``rate_limit``: seconds sent in ``Retry-After``; ``None`` sends no header."""
    policy: str = "TEN_SECONDLY_ROLLING"
    """``rate_limit``: HubSpot's policy name (``DAILY`` means the day's quota is gone)."""
    delay: float = 0.0
    """``slow``: seconds before the response."""
    reject_ids: tuple[str, ...] = ()
    """``partial``: ids to reject."""
    reject_share: float = 0.0
    """``partial``: share of the other inputs to reject (seeded)."""
    category: Literal["OBJECT_NOT_FOUND", "VALIDATION_ERROR"] = "OBJECT_NOT_FOUND"

    def matches(self, endpoint: str) -> bool:
        if self.endpoint == "*" or self.endpoint == endpoint:
            return True
        return self.endpoint.endswith("*") and endpoint.startswith(self.endpoint[:-1])


@dataclass
class _Active:
    fault: Fault
    left: int | None
    hits: int = 0


@dataclass
class Faults:
    """The faults armed on a sandbox; thread-safe; ``seed`` makes probabilistic ones repeatable."""

    seed: int = 7
    _active: list[_Active] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.rng = Random(self.seed)

    def add(self, *faults: Fault) -> None:
        with self._lock:
            self._active.extend(_Active(f, f.times) for f in faults)

    def clear(self) -> None:
        with self._lock:
            self._active.clear()

    def pending(self) -> int:
        """Faults with hits left (``times``-limited ones only)."""
        with self._lock:
            return sum(1 for a in self._active if a.left)

    def hits(self) -> int:
        with self._lock:
            return sum(a.hits for a in self._active)

    def draw(self, endpoint: str) -> list[Fault]:
        """The faults that hit this request (at most one of each kind), consuming their counts."""
        chosen: dict[str, Fault] = {}
        with self._lock:
            for active in self._active:
                fault = active.fault
                if fault.kind in chosen or not fault.matches(endpoint):
                    continue
                if active.left is not None:
                    if active.left <= 0:
                        continue
                    active.left -= 1
                elif self.rng.random() >= fault.probability:
                    continue
                active.hits += 1
                chosen[fault.kind] = fault
        return list(chosen.values())

    def rejected(self, fault: Fault, ids: list[str]) -> set[str]:
        """The ids a ``partial`` fault rejects among ``ids``."""
        with self._lock:
            picked = {i for i in ids if i in fault.reject_ids}
            if fault.reject_share:
                picked |= {i for i in ids if self.rng.random() < fault.reject_share}
            return picked
