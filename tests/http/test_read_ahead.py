"""The read-ahead threads: pages in order, errors in their place, an early stop ends the threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from connector.http.read_ahead import read_ahead, read_lanes


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


# -- several chains side by side -------------------------------------------------------


def test_lanes_hand_out_every_page_each_lane_in_its_order_from_threads_of_their_own() -> None:
    lanes = [Pages(30), Pages(5), Pages(0), Pages(12)]
    got = list(read_lanes([iter(lane) for lane in lanes], depth=2, name="test-lane"))
    assert sorted(got) == sorted([*range(30), *range(5), *range(12)])
    for lane in lanes:
        assert lane.closed.is_set()
    assert set().union(*(lane.threads for lane in lanes)) <= {f"test-lane-{n}" for n in range(4)}
    assert lanes[0].threads == {"test-lane-0"}


def test_lanes_keep_each_lane_in_order() -> None:
    def lane(tag: str, count: int) -> Iterator[tuple[str, int]]:
        for number in range(count):
            yield tag, number

    got = list(read_lanes([lane("a", 40), lane("b", 40)], depth=3, name="test-lane"))
    for tag in ("a", "b"):
        assert [n for t, n in got if t == tag] == list(range(40))


def test_an_error_in_one_lane_is_raised_after_its_pages_and_stops_every_lane() -> None:
    failing, long = Pages(10, fail_at=4), Pages(100_000)
    got: list[int] = []
    with pytest.raises(RuntimeError, match="page 4 failed"):
        for page in read_lanes([iter(failing), iter(long)], depth=2, name="test-lane"):
            got.append(page)
    assert {0, 1, 2, 3} <= set(got)
    assert failing.closed.is_set() and long.closed.is_set()
    assert long.made < 100_000
    assert not any(thread.name.startswith("test-lane") for thread in threading.enumerate())


def test_a_lane_runs_at_most_depth_pages_ahead_and_an_early_stop_ends_every_thread() -> None:
    lanes = [Pages(1_000), Pages(1_000)]
    ahead = read_lanes([iter(lane) for lane in lanes], depth=3, name="test-lane")
    next(ahead)
    pause = threading.Event()
    for _ in range(100):
        if all(lane.made >= 4 for lane in lanes):
            break
        pause.wait(0.01)
    # per lane: at most one handed out, three waiting, one made and waiting for room
    assert all(lane.made <= 5 for lane in lanes)
    ahead.close()  # type: ignore[attr-defined]
    assert all(lane.closed.is_set() for lane in lanes)
    assert not any(thread.name.startswith("test-lane") for thread in threading.enumerate())


def test_one_lane_is_a_plain_read_ahead_and_depth_must_be_positive() -> None:
    pages = Pages(7)
    assert list(read_lanes([iter(pages)], depth=2, name="test-lane")) == list(range(7))
    assert pages.threads == {"test-lane"}
    with pytest.raises(ValueError, match="depth"):
        read_lanes([iter([]), iter([])], depth=0, name="test-lane")
