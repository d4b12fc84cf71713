"""The Salesforce pull cursor: progress on ``(SystemModstamp, Id)`` per object.

One opaque string covers several objects (Lead and Contact for people;
Task, Event and CampaignMember for activities). A position says "every
record of this object up to and including ``(stamp, id)`` in
``ORDER BY SystemModstamp, Id`` order was handed out"; it only moves
forward, so a page's cursor never claims a record after that page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from connector.errors import ConfigError
from connector.mapping import parse_instant

VERSION = 1


@dataclass(frozen=True, order=True, slots=True)
class Position:
    stamp: datetime
    id: str


@dataclass(frozen=True, slots=True)
class Cursor:
    positions: dict[str, Position] = field(default_factory=dict)

    def get(self, sobject: str) -> Position | None:
        return self.positions.get(sobject)

    def advanced(self, sobject: str, position: Position) -> Cursor:
        """This cursor with ``sobject`` moved to ``position`` (never backwards): the transition after a page,
        ``position`` being the page's last record."""
        current = self.positions.get(sobject)
        if current is not None and current >= position:
            return self
        return Cursor({**self.positions, sobject: position})

    def encode(self) -> str:
        return json.dumps(
            {"v": VERSION, **{name: [p.stamp.isoformat(), p.id] for name, p in sorted(self.positions.items())}},
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("v") != VERSION:
                raise ValueError("unknown cursor version")
            return cls(
                {name: Position(parse_instant(value[0]), str(value[1])) for name, value in data.items() if name != "v"}
            )
        except (ValueError, TypeError, IndexError, KeyError):
            raise ConfigError("the stored Salesforce cursor is not one this version wrote; run with --full") from None


def resume_from(cursor: Cursor, sobject: str, lookback: timedelta) -> Position | None:
    """Where the next read of ``sobject`` starts: the stored position less the lookback (``SystemModstamp``
    can commit late), from the start of that instant; ``None`` reads everything."""
    position = cursor.get(sobject)
    if position is None:
        return None
    if lookback:
        return Position(position.stamp - lookback, "")
    return position
