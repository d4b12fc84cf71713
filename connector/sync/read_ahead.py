"""Pulling the next page while the pipeline stores the last one."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

_Page = TypeVar("_Page")
_END = object()


def read_ahead(pages: Iterator[_Page]) -> Generator[_Page, None, None]:
    """``pages``, the next one fetched (HTTP, parsing, normalising) in a second thread while the caller stores
    the current one: one page ahead, the same calls in the same order. The client's generator runs in one
    thread at a time, so its state needs no lock; an exception it raises (a crash too) reaches the caller when
    it asks for that page. A caller that stops early (``close()``) waits for the page in flight, which is
    dropped."""
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pull-read-ahead") as reader:
            ahead = reader.submit(next, pages, _END)
            while True:
                page = ahead.result()
                if page is _END:
                    return
                ahead = reader.submit(next, pages, _END)
                yield page  # type: ignore[misc]
    finally:
        # the reader is done (the executor waited for it): the client's generator ends in this thread
        close = getattr(pages, "close", None)
        if close is not None:
            close()
