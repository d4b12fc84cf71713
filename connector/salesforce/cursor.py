"""The Salesforce pull cursor: progress on ``(SystemModstamp, Id)`` per object.

One opaque string covers several objects (Lead and Contact for people;
Task, Event and CampaignMember for activities). A position says "every
record of this object up to and including ``(stamp, id)`` in
``ORDER BY SystemModstamp, Id`` order was handed out"; it only moves
forward, so a page's cursor never claims a record after that page.

Each object also remembers when the scan that produced its position began,
on the org's clock (the ``Date`` header of the scan's first ``query``
answer). Only a record that was still uncommitted when that scan began can
sit before the position unread, and it is stamped at most the lookback
before the scan began (while transactions are shorter than the lookback).
So the next scan resumes at the *earlier* of the position (exact, with the
``Id`` tie-breaker) and the scan start less the lookback: everything after
the last record read, plus what could still commit late, and nothing else.
Without a scan start (a cursor from an older version, or an org that sent
no ``Date``) it falls back to the position less the lookback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from connector.errors import ConfigError
from connector.mapping import parse_instant

VERSION = 2
_READABLE = (1, 2)
"""Cursor versions this code decodes: 1 had no scan starts."""


@dataclass(frozen=True, order=True, slots=True)
class Position:
    stamp: datetime
    id: str


@dataclass(frozen=True, slots=True)
class Cursor:
    positions: dict[str, Position] = field(default_factory=dict)
    scans: dict[str, datetime] = field(default_factory=dict)
    """Per object: the org's clock when the scan behind its position began."""

    def get(self, sobject: str) -> Position | None:
        return self.positions.get(sobject)

    def advanced(self, sobject: str, position: Position, scan_start: datetime | None = None) -> Cursor:
        """This cursor with ``sobject`` moved to ``position`` (never backwards): the transition after a page,
        ``position`` being the page's last record and ``scan_start`` the org's clock when the scan that
        read it began (``None``: not known).

        The scan start is taken only with a position that moves: a page of a scan that re-reads
        records before the stored position (the lookback) proves nothing about what that scan has
        read yet, so the old pair stays, and resuming from it stays as safe as before."""
        current = self.positions.get(sobject)
        if current is not None and current >= position:
            return self
        scans = {name: at for name, at in self.scans.items() if name != sobject}
        if scan_start is not None:
            scans[sobject] = scan_start
        return Cursor({**self.positions, sobject: position}, scans)

    def encode(self) -> str:
        objects: dict[str, list[str | None]] = {}
        for name, p in sorted(self.positions.items()):
            scan = self.scans.get(name)
            objects[name] = [p.stamp.isoformat(), p.id, scan.isoformat() if scan else None]
        return json.dumps({"v": VERSION, **objects}, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("v") not in _READABLE:
                raise ValueError("unknown cursor version")
            objects = {name: value for name, value in data.items() if name != "v"}
            return cls(
                {name: Position(parse_instant(value[0]), str(value[1])) for name, value in objects.items()},
                {name: parse_instant(value[2]) for name, value in objects.items() if len(value) > 2 and value[2]},
            )
        except (ValueError, TypeError, IndexError, KeyError):
            raise ConfigError("the stored Salesforce cursor is not one this version wrote; run with --full") from None


def resume_from(cursor: Cursor, sobject: str, lookback: timedelta) -> Position | None:
    """Where the next read of ``sobject`` starts; ``None`` reads everything.

    The earlier of the stored position (exact) and the scan start less the
    lookback (from the start of that instant): a record can only commit late
    with a stamp at most the lookback before the scan that missed it.
    Without a scan start: the position less the lookback. No lookback: the
    position (the org has no late commits to wait for)."""
    position = cursor.get(sobject)
    if position is None:
        return None
    if not lookback:
        return position
    scan = cursor.scans.get(sobject)
    if scan is None:
        return Position(position.stamp - lookback, "")
    return min(position, Position(scan - lookback, ""))
