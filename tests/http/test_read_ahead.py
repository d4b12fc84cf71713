"""The read-ahead thread: pages in order, errors in their place, an early stop ends the thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from connector.http.read_ahead import read_ahead


class Pages:
    """Numbered pages made on demand, noting which thread made them and how many were made."""

    def __init__(self, count: int, *, fail_at: int | None = None) -> None:
        self.count = count
        self.fail_at = fail_at
        self.made = 0
        self.threads: set[str] = set()
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[int]:
        try:
            for number in range(self.count):
                if number == self.fail_at:
                    raise RuntimeError(f"page {number} failed")
                self.made += 1
                self.threads.add(threading.current_thread().name)
                yield number
        finally:
            self.closed.set()


def test_pages_come_in_order_from_one_thread_of_their_own() -> None:
    pages = Pages(50)
    assert list(read_ahead(iter(pages), depth=3, name="test-read-ahead")) == list(range(50))
    assert pages.threads == {"test-read-ahead"}
    assert pages.closed.is_set()


def test_an_error_is_raised_in_its_place_after_the_pages_before_it() -> None:
    got: list[int] = []
    with pytest.raises(RuntimeError, match="page 4 failed"):
        for page in read_ahead(iter(Pages(10, fail_at=4)), depth=2, name="test-read-ahead"):
            got.append(page)
    assert got == [0, 1, 2, 3]


def test_the_thread_runs_at_most_depth_pages_ahead() -> None:
    pages = Pages(100)
    ahead = read_ahead(iter(pages), depth=3, name="test-read-ahead")
    assert next(ahead) == 0
    pause = threading.Event()
    for _ in range(100):  # let the thread fill its buffer: never more than depth pages beyond the one handed out
        if pages.made >= 5:
            break
        pause.wait(0.01)
    # one handed out, three buffered, one made and waiting for room
    assert pages.made <= 5
    ahead.close()  # type: ignore[attr-defined]
    assert pages.closed.is_set()
    assert not any(thread.name == "test-read-ahead" for thread in threading.enumerate())


def test_a_caller_that_stops_early_stops_the_thread() -> None:
    pages = Pages(1_000)
    for page in read_ahead(iter(pages), depth=4, name="test-read-ahead"):
        if page == 10:
            break
    assert pages.closed.is_set()
    assert pages.made <= 10 + 1 + 4 + 1
    assert not any(thread.name == "test-read-ahead" for thread in threading.enumerate())


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth"):
        read_ahead(iter([]), depth=0, name="test-read-ahead")
