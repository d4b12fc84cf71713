"""The Salesforce cursor's transitions, pure, by tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connector.errors import ConfigError
from connector.salesforce.cursor import Cursor, Position, resume_from

T = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
P1 = Position(T, "003A")
P2 = Position(T, "003B")
P3 = Position(T + timedelta(seconds=1), "003A")

ADVANCE = {
    "first page": (Cursor(), "Contact", P1, {"Contact": P1}),
    "same instant, later id": (Cursor({"Contact": P1}), "Contact", P2, {"Contact": P2}),
    "later instant, smaller id": (Cursor({"Contact": P2}), "Contact", P3, {"Contact": P3}),
    "never backwards": (Cursor({"Contact": P3}), "Contact", P1, {"Contact": P3}),
    "objects move apart": (Cursor({"Lead": P3}), "Contact", P1, {"Lead": P3, "Contact": P1}),
}


@pytest.mark.parametrize(("cursor", "sobject", "last", "expected"), ADVANCE.values(), ids=ADVANCE.keys())
def test_advanced(cursor: Cursor, sobject: str, last: Position, expected: dict[str, Position]) -> None:
    moved = cursor.advanced(sobject, last)
    assert moved.positions == expected
    assert Cursor.decode(moved.encode()) == moved


LOOKBACK = timedelta(minutes=5)
OLD = Position(T - timedelta(hours=1), "003A")
"""A position read long before the scan that ended at it began (a quiet org after a write-back)."""

RESUME = {
    "nothing stored": (Cursor(), timedelta(0), None),
    "exact position without lookback": (Cursor({"Contact": P2}), timedelta(0), P2),
    "exact position without lookback, even with a scan start": (
        Cursor({"Contact": P2}, {"Contact": T + timedelta(minutes=1)}),
        timedelta(0),
        P2,
    ),
    "no scan start (version 1 cursor): position less the lookback": (
        Cursor({"Contact": P2}),
        LOOKBACK,
        Position(T - LOOKBACK, ""),
    ),
    "position long before the scan began: exactly after it, nothing re-read": (
        Cursor({"Contact": OLD}, {"Contact": T}),
        LOOKBACK,
        OLD,
    ),
    "position inside the scan's lookback window: from scan start less the lookback": (
        Cursor({"Contact": P2}, {"Contact": T + timedelta(minutes=1)}),
        LOOKBACK,
        Position(T + timedelta(minutes=1) - LOOKBACK, ""),
    ),
    "position exactly at scan start less the lookback: that instant from its start": (
        Cursor({"Contact": Position(T - LOOKBACK, "003Z")}, {"Contact": T}),
        LOOKBACK,
        Position(T - LOOKBACK, ""),
    ),
    "another object's scan start does not count": (
        Cursor({"Contact": OLD}, {"Lead": T}),
        LOOKBACK,
        Position(OLD.stamp - LOOKBACK, ""),
    ),
}


@pytest.mark.parametrize(("cursor", "lookback", "expected"), RESUME.values(), ids=RESUME.keys())
def test_resume_from(cursor: Cursor, lookback: timedelta, expected: Position | None) -> None:
    assert resume_from(cursor, "Contact", lookback) == expected


S1 = T + timedelta(minutes=1)
S2 = T + timedelta(minutes=2)

SCANNED = {
    "first page of a first scan": (Cursor(), P1, S1, {"Contact": P1}, {"Contact": S1}),
    "a later scan that moves the position replaces the anchor": (
        Cursor({"Contact": P1}, {"Contact": S1}),
        P3,
        S2,
        {"Contact": P3},
        {"Contact": S2},
    ),
    "a page re-read in the lookback (position does not move) keeps the old anchor": (
        Cursor({"Contact": P3}, {"Contact": S1}),
        P1,
        S2,
        {"Contact": P3},
        {"Contact": S1},
    ),
    "no Date seen: the anchor is forgotten (position less the lookback)": (
        Cursor({"Contact": P1}, {"Contact": S1}),
        P3,
        None,
        {"Contact": P3},
        {},
    ),
    "objects keep their own anchors": (
        Cursor({"Lead": P3}, {"Lead": S1}),
        P1,
        S2,
        {"Lead": P3, "Contact": P1},
        {"Lead": S1, "Contact": S2},
    ),
}


@pytest.mark.parametrize(("cursor", "last", "started", "positions", "scans"), SCANNED.values(), ids=SCANNED.keys())
def test_advanced_with_the_scan_start(
    cursor: Cursor,
    last: Position,
    started: datetime | None,
    positions: dict[str, Position],
    scans: dict[str, datetime],
) -> None:
    moved = cursor.advanced("Contact", last, started)
    assert (moved.positions, moved.scans) == (positions, scans)
    assert Cursor.decode(moved.encode()) == moved


def test_a_version_1_cursor_still_resumes_without_scan_starts() -> None:
    cursor = Cursor.decode('{"v":1,"Contact":["2026-11-20T12:00:00+00:00","003B"]}')
    assert cursor == Cursor({"Contact": P2})


@pytest.mark.parametrize("text", ['{"v": 3}', "[1]", "not json", '{"v": 1, "Contact": ["nope", "003A"]}'])
def test_a_cursor_this_version_did_not_write_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="--full"):
        Cursor.decode(text)
