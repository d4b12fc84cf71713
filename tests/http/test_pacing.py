"""The pacer on a fake clock: it keeps calls under a vendor's rolling limits where an unpaced client would not."""

from __future__ import annotations

import threading
from collections import deque

import pytest

from connector.http.pacing import Pacer, Window


class FakeClock:
    """Time moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


class Portal:
    """A vendor's rolling limit, as HubSpot and the sandbox enforce it: at most ``limit`` calls in any ``window``."""

    def __init__(self, clock: FakeClock, limit: int, window: float) -> None:
        self.clock, self.limit, self.window = clock, limit, window
        self.calls: deque[float] = deque()
        self.refused = 0

    def call(self) -> None:
        now = self.clock()
        while self.calls and self.calls[0] <= now - self.window:
            self.calls.popleft()
        if len(self.calls) >= self.limit:
            self.refused += 1  # a 429
            return
        self.calls.append(now)


def test_pacer_keeps_under_the_burst_limit_where_an_unpaced_client_gets_429s() -> None:
    clock = FakeClock()
    portal = Portal(clock, limit=12, window=1.0)
    for _ in range(60):  # unpaced: every call at once
        portal.call()
    assert portal.refused == 48

    clock = FakeClock()
    portal = Portal(clock, limit=12, window=1.0)
    pacer = Pacer([Window(10, 1.0)], clock=clock, sleep=clock.sleep)  # 90 % of the limit, as pace_share does
    for _ in range(60):
        pacer.acquire()
        portal.call()
    assert portal.refused == 0
    assert clock.slept == 5.0  # it waited instead of bouncing: 60 calls at 10 per second
    assert pacer.waited == clock.slept


def test_searches_keep_their_own_interval_and_other_calls_do_not_wait_for_them() -> None:
    clock = FakeClock()
    pacer = Pacer([Window(100, 10.0), Window(1, 0.25, frozenset({"search"}))], clock=clock, sleep=clock.sleep)
    started = clock()
    for _ in range(5):
        pacer.acquire("search")
    assert clock() - started == 1.0  # 4 intervals of 0.25 s between 5 searches
    before = clock()
    for _ in range(20):
        pacer.acquire()
    assert clock() == before


def test_the_burst_window_counts_searches_too() -> None:
    clock = FakeClock()
    pacer = Pacer([Window(3, 10.0), Window(1, 0.001, frozenset({"search"}))], clock=clock, sleep=clock.sleep)
    pacer.acquire("search")
    pacer.acquire()
    pacer.acquire("search")
    assert pacer.acquire() == pytest.approx(10.0 - 0.001)


def test_per_second_spaces_calls_evenly() -> None:
    clock = FakeClock()
    pacer = Pacer.per_second(20, clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(5):
        pacer.acquire()
        stamps.append(round(clock() - 1000.0, 6))
    assert stamps == [0.0, 0.05, 0.1, 0.15, 0.2]


def test_two_threads_share_one_pacer_without_exceeding_it() -> None:
    lock = threading.Lock()
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        with lock:
            clock.sleep(seconds)

    portal = Portal(clock, limit=5, window=1.0)
    pacer = Pacer([Window(5, 1.0)], clock=clock, sleep=sleep)

    def work() -> None:
        for _ in range(20):
            pacer.acquire()
            with lock:
                portal.call()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert portal.refused == 0
