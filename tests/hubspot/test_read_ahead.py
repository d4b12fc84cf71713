"""The HubSpot client's one-page read-ahead: same pages, same order, errors where they happened."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from connector.errors import TransientError
from connector.hubspot.client import _read_ahead


def test_pages_come_in_order_made_by_one_other_thread() -> None:
    threads: set[str] = set()

    def pages() -> Iterator[int]:
        for n in range(5):
            threads.add(threading.current_thread().name)
            yield n

    assert list(_read_ahead(pages())) == [0, 1, 2, 3, 4]
    assert len(threads) == 1
    assert threading.current_thread().name not in threads


def test_an_error_is_raised_to_the_caller_after_the_pages_before_it() -> None:
    def pages() -> Iterator[int]:
        yield 1
        raise TransientError("contacts.list: HTTP 503")

    got = []
    with pytest.raises(TransientError, match="503"):
        for page in _read_ahead(pages()):
            got.append(page)
    assert got == [1]


def test_a_caller_that_stops_early_leaves_at_most_one_page_made_ahead() -> None:
    made: list[int] = []

    def pages() -> Iterator[int]:
        for n in range(10):
            made.append(n)
            yield n

    reader = _read_ahead(pages())
    assert next(reader) == 0
    reader.close()
    assert made == [0, 1]
