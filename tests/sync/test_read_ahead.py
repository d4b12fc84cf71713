"""The pipeline pulls one page ahead in a second thread: same pages, same order, errors at their page."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import closing

import pytest

from connector.sync.read_ahead import read_ahead
from tests.fakes import SimulatedCrash


def test_pages_come_in_order_made_one_ahead_in_another_thread() -> None:
    made: list[tuple[int, str]] = []

    def pages() -> Iterator[int]:
        for n in range(5):
            made.append((n, threading.current_thread().name))
            yield n

    seen = []
    for page in read_ahead(pages()):
        seen.append(page)
        assert len(made) <= page + 2  # never more than one page ahead
    assert seen == [0, 1, 2, 3, 4]
    assert all(name.startswith("pull-read-ahead") for _, name in made)


def test_a_crash_in_the_client_reaches_the_caller_at_its_page_and_not_before() -> None:
    def pages() -> Iterator[str]:
        yield "first"
        raise SimulatedCrash("second page")

    got = []
    with pytest.raises(SimulatedCrash):
        for page in read_ahead(pages()):
            got.append(page)
    assert got == ["first"]


def test_stopping_early_waits_for_the_page_in_flight_and_ends_the_client_generator() -> None:
    ended = threading.Event()

    def pages() -> Iterator[int]:
        try:
            yield from range(100)
        finally:
            ended.set()

    with closing(read_ahead(pages())) as ahead:
        assert next(ahead) == 0
    assert ended.is_set()
