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
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
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
