"""The HubSpot cursor's transitions, pure, by tables: list -> search, search re-anchoring, form watermarks."""

from __future__ import annotations

import pytest

from connector.hubspot.cursor import (
    FormCursor,
    ObjectCursor,
    SearchQuery,
    Submitted,
    next_form_cursor,
    next_list_cursor,
    next_search,
    scan_start,
)

STARTED = 1_700_000_000_000


def test_a_scan_starts_from_its_own_start_or_now_less_the_lookback() -> None:
    assert scan_start(ObjectCursor(), now_ms=10_000, lookback_ms=3_000) == 7_000
    assert scan_start(ObjectCursor(started=5), now_ms=10_000, lookback_ms=3_000) == 5


@pytest.mark.parametrize(
    ("next_after", "expected"),
    [
        ("101", ObjectCursor(phase="list", after="101", started=STARTED)),
        (None, ObjectCursor(phase="search", since=STARTED)),
    ],
    ids=["more pages", "list done: search from the list's start"],
)
def test_list_transitions(next_after: str | None, expected: ObjectCursor) -> None:
    assert next_list_cursor(next_after, STARTED) == expected


SEARCH = {
    "next page": (
        SearchQuery(since=50, anchor=0, offset=0), "200", "200",
        ObjectCursor(phase="search", since=50, anchor=200, started=STARTED), SearchQuery(50, 0, 200),
    ),
    "re-anchor before the cap": (
        SearchQuery(since=50, anchor=0, offset=9_800), "9999", "10000",
        ObjectCursor(phase="search", since=50, anchor=9999, started=STARTED), SearchQuery(50, 9999, 0),
    ),
    "last page: next scan since the start": (
        SearchQuery(since=50, anchor=7, offset=400), "620", None,
        ObjectCursor(phase="search", since=STARTED), None,
    ),
    "empty page": (
        SearchQuery(since=50, anchor=7, offset=0), None, None,
        ObjectCursor(phase="search", since=STARTED), None,
    ),
}  # fmt: skip


@pytest.mark.parametrize(("query", "last_id", "next_after", "cursor", "following"), SEARCH.values(), ids=SEARCH.keys())
def test_search_transitions(
    query: SearchQuery, last_id: str | None, next_after: str | None, cursor: ObjectCursor, following: SearchQuery | None
) -> None:
    assert next_search(query, STARTED, last_id, next_after, page_size=200, cap=10_000) == (cursor, following)


def _page(*items: tuple[int, str]) -> list[Submitted]:
    return [Submitted(at, key) for at, key in items]


FORMS = {
    "first read, one page": (
        FormCursor(), _page((30, "c"), (20, "b"), (10, "a")), None,
        (0, 1, 2), FormCursor(watermark=30, seen=["c"]), True,
    ),
    "first read, more pages: the watermark waits": (
        FormCursor(), _page((30, "c"), (20, "b")), "p2",
        (0, 1), FormCursor(after="p2", top=30, top_seen=["c"]), False,
    ),
    "second page of a range: watermark moves to the range's top": (
        FormCursor(after="p2", top=30, top_seen=["c"]), _page((10, "a")), None,
        (0,), FormCursor(watermark=30, seen=["c"]), True,
    ),
    "nothing new": (
        FormCursor(watermark=30, seen=["c"]), _page((30, "c"), (20, "b")), "p2",
        (), FormCursor(watermark=30, seen=["c"]), True,
    ),
    "new in the same millisecond as the watermark": (
        FormCursor(watermark=30, seen=["c"]), _page((30, "d"), (30, "c"), (20, "b")), "p2",
        (0,), FormCursor(watermark=30, seen=["c", "d"]), True,
    ),
    "newer ones, down to the watermark": (
        FormCursor(watermark=30, seen=["c"]), _page((50, "f"), (40, "e"), (30, "c"), (20, "b")), "p2",
        (0, 1), FormCursor(watermark=50, seen=["f"]), True,
    ),
}  # fmt: skip


@pytest.mark.parametrize(("state", "page", "next_after", "fresh", "cursor", "done"), FORMS.values(), ids=FORMS.keys())
def test_form_transitions(
    state: FormCursor,
    page: list[Submitted],
    next_after: str | None,
    fresh: tuple[int, ...],
    cursor: FormCursor,
    done: bool,
) -> None:
    step = next_form_cursor(state, page, next_after)
    assert (step.fresh, step.cursor, step.done) == (fresh, cursor, done)
