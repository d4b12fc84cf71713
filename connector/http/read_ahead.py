"""Pages fetched by a thread of their own, a few ahead of the caller.

A pull is a chain of calls (each page names the next), so only one call is
ever in flight; what can overlap is the caller's work on the pages it has
(normalising, storing) with the vendor's work on the next ones. With a single
page of read-ahead the fetching thread sat idle while the caller stored a
group of pages; :func:`read_ahead` lets it run up to ``depth`` pages ahead.
The calls and their order are the same: only their timing changes.

The pages are made by one thread, in order, so a generator's state needs no
lock. An error raised while making a page is raised to the caller in its
place, after the pages before it. A caller that stops early (closes the
iterator) stops the thread: at most ``depth`` pages (and the one in flight)
were fetched for nothing.

A pull made of several independent chains (one per object or source, each
with its own position in the cursor) can also run them side by side:
:func:`read_lanes` gives each chain a thread of its own and hands out the pages
in the order they are made. While one chain waits for the vendor, another
parses: the vendor's time and ours overlap instead of adding up. Each chain's
pages keep their order; the calls are the same, only their timing changes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

_WAIT = 0.05
"""Seconds between the fetching thread's checks for a caller that stopped, while the buffer is full."""


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


class _Fetcher(Generic[T]):
    def __init__(self, pages: Iterator[T], depth: int, name: str) -> None:
        self._pages = pages
        self._buffer: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _put(self, item: object) -> bool:
        while not self._stopped.is_set():
            try:
                self._buffer.put(item, timeout=_WAIT)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for page in self._pages:
                if not self._put(page):
                    return
            self._put(_END)
        except BaseException as error:  # handed to the caller, who raises it
            self._put(_Failed(error))
        finally:
            close = getattr(self._pages, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[T]:
        self._thread.start()
        try:
            while True:
                item = self._buffer.get()
                if item is _END:
                    return
                if isinstance(item, _Failed):
                    raise item.error
                yield item  # type: ignore[misc]
        finally:
            self._stopped.set()
            self._thread.join()


def read_ahead(pages: Iterator[T], *, depth: int, name: str) -> Iterator[T]:
    """``pages``, made by a thread called ``name`` up to ``depth`` pages ahead of the caller."""
    if depth < 1:
        raise ValueError("depth must be at least 1")
    return iter(_Fetcher(pages, depth, name))


class _Lanes(Generic[T]):
    """Several chains of pages, each made by a thread of its own up to ``depth`` pages ahead of the caller."""

    def __init__(self, lanes: Sequence[Iterator[T]], depth: int, name: str) -> None:
        self._lanes = lanes
        self._made: queue.Queue[tuple[int, object]] = queue.Queue()
        self._room = [threading.BoundedSemaphore(depth) for _ in lanes]
        self._stopped = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(number,), name=f"{name}-{number}", daemon=True)
            for number in range(len(lanes))
        ]

    def _wait_for_room(self, number: int) -> bool:
        while not self._stopped.is_set():
            if self._room[number].acquire(timeout=_WAIT):
                return True
        return False

    def _run(self, number: int) -> None:
        pages = self._lanes[number]
        try:
            for page in pages:
                if not self._wait_for_room(number):
                    return
                self._made.put((number, page))
            self._made.put((number, _END))
        except BaseException as error:  # handed to the caller, who raises it
            self._made.put((number, _Failed(error)))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[T]:
        for thread in self._threads:
            thread.start()
        running = len(self._threads)
        try:
            while running:
                number, item = self._made.get()
                if item is _END:
                    running -= 1
                    continue
                if isinstance(item, _Failed):
                    raise item.error
                self._room[number].release()
                yield item  # type: ignore[misc]
        finally:
            self._stopped.set()
            for thread in self._threads:
                thread.join()


def read_lanes(lanes: Sequence[Iterator[T]], *, depth: int, name: str) -> Iterator[T]:
    """The pages of every chain in ``lanes``, each chain made by a thread of its own (``name-0``, ``name-1``, ...)
    up to ``depth`` pages ahead of the caller, handed out as they are made: one chain's pages in their order,
    the chains interleaved. An error in one chain is raised after the pages made before it, and stops them all."""
    if depth < 1:
        raise ValueError("depth must be at least 1")
    if len(lanes) == 1:
        return read_ahead(lanes[0], depth=depth, name=name)
    return iter(_Lanes(lanes, depth, name))
