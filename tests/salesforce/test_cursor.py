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


RESUME = {
    "nothing stored": (Cursor(), timedelta(0), None),
    "exact position without lookback": (Cursor({"Contact": P2}), timedelta(0), P2),
    "lookback: from the start of an earlier instant": (
        Cursor({"Contact": P2}),
        timedelta(minutes=5),
        Position(T - timedelta(minutes=5), ""),
    ),
}


@pytest.mark.parametrize(("cursor", "lookback", "expected"), RESUME.values(), ids=RESUME.keys())
def test_resume_from(cursor: Cursor, lookback: timedelta, expected: Position | None) -> None:
    assert resume_from(cursor, "Contact", lookback) == expected


@pytest.mark.parametrize("text", ['{"v": 2}', "[1]", "not json", '{"v": 1, "Contact": ["nope", "003A"]}'])
def test_a_cursor_this_version_did_not_write_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="--full"):
        Cursor.decode(text)
