"""The shared rate budget: the window's limit holds for several processes together, measured on PostgreSQL."""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence

import pytest

from connector.http.pacing import Pacer, Window, sharing
from connector.store import Store, open_store
from connector.team.budget import Cell, StoreBudget

pytestmark = pytest.mark.postgres


def most_in_any_span(instants: Sequence[float], seconds: float) -> int:
    """The largest number of ``instants`` inside one span shorter than ``seconds``."""
    ordered = sorted(instants)
    most, start = 0, 0
    for end, instant in enumerate(ordered):
        while instant - ordered[start] >= seconds - 1e-6:  # float sums of intervals: equal within a microsecond
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.mark.parametrize(
    ("calls", "seconds"), [(1, 0.05), (2, 1.0), (20, 1.0), (40, 1.0), (190, 10.0)], ids=lambda v: str(v)
)
def test_a_cell_admits_at_most_the_windows_calls_in_any_span(calls: int, seconds: float) -> None:
    # given a caller that calls as soon as the cell allows, on a simulated clock
    cell = Cell.of(Window(calls, seconds))
    tat, now, admitted = 0.0, 100.0, []
    for _ in range(calls * 5):
        wait = max(tat, now) - now - cell.tolerance
        now += max(wait, 0.0)
        tat = max(tat, now) + cell.interval
        admitted.append(now)
    # then no span shorter than the window holds more than its calls, and the rate is near the limit
    assert most_in_any_span(admitted, seconds) <= calls
    assert (len(admitted) - 1) / (admitted[-1] - admitted[0]) >= 0.9 * (calls - 1) / seconds


def draw(url: str, connection: str, count: int) -> list[float]:
    """In a child process: ``count`` calls through a pacer sharing ``connection``'s budget; their admission times."""
    store = open_store(url)
    try:
        budget = StoreBudget(store.engine, connection)
        with sharing(budget):
            pacer = Pacer([Window(40, 1.0)])
        admitted = []
        for _ in range(count):
            pacer.acquire()
            admitted.append(budget.admitted_at)
        return admitted
    finally:
        store.close()


def test_four_processes_together_stay_under_one_connections_limit(pg_url: str, pg_store: Store) -> None:
    # given four worker processes, each alone allowed 40 calls a second on one connection
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(draw, [(pg_url, "acme", 40)] * 4)
    admitted = [instant for result in results for instant in result]
    # then together they made every call and never more than 40 in any second, by the database's clock
    assert len(admitted) == 160
    assert most_in_any_span(admitted, 1.0) <= 40
    # and each one had to wait for the others (alone, its own pacer would have let 40 through at once)
    assert most_in_any_span(results[0], 1.0) < 40


def test_connections_have_budgets_of_their_own(pg_store: Store) -> None:
    # given two connections with one call per minute each
    window = [Window(1, 60.0)]
    waits = [StoreBudget(pg_store.engine, name, sleep=pytest.fail).acquire(window, None) for name in ("a", "b")]
    # then the first call of each goes through at once (sleep would fail the test)
    assert waits == [0.0, 0.0]


def test_a_kind_window_counts_only_its_kind(pg_store: Store) -> None:
    budget = StoreBudget(pg_store.engine, "acme", sleep=pytest.fail)
    windows = [Window(100, 10.0), Window(1, 60.0, frozenset({"search"}))]
    assert budget.acquire(windows, "search") == 0.0
    # a plain call does not count against the search window, so it goes through without waiting
    assert budget.acquire(windows, None) == 0.0


def test_a_sqlite_store_has_no_shared_budget(tmp_path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        with pytest.raises(ValueError, match="PostgreSQL"):
            StoreBudget(store.engine, "acme")
    finally:
        store.close()
