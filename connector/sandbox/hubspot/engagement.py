"""The sandbox portal's engagement signals outside CRM objects, seeded by the shared generator.

- ``page_view`` activities become the contact counters a portal keeps:
  ``hs_analytics_num_page_views``, ``hs_analytics_num_visits`` (distinct days with
  views) and ``hs_analytics_last_visit_timestamp``;
- ``email_open`` / ``email_click`` become marketing e-mail events (``OPEN`` /
  ``CLICK``, per recipient, dated), served by ``GET /email/public/v1/events``
  (``eventType``, ``startTimestamp``, ``endTimestamp``, ``limit`` ≤ 1000, an
  ``offset`` token while ``hasMore``), and the ``hs_email_open`` / ``hs_email_click``
  counters with their last dates;
- ``webinar_attended`` becomes an ATTENDED participation in one of the portal's
  webinars (``GET /marketing/v3/marketing-events`` and each event's participation
  breakdown, 100 a page); every fifth attendance also has a REGISTERED one (the
  sign-up) and every fourth a NO_SHOW at another webinar (which no rule maps); the
  registration forms stay as they were.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

EVENT_TYPES: tuple[str, ...] = ("OPEN", "CLICK")
PORTAL_ID = 62515
"""The sandbox portal's id, where a body carries one (``portalId``)."""
EVENTS_PAGE_MAX = 1000
PARTICIPATIONS_PAGE_MAX = 100
ACCOUNT = "sandbox-webinars"
WEBINARS: tuple[tuple[str, str], ...] = (
    ("webinar-2026-01", "Cutting transport costs in 2026"),
    ("webinar-2026-02", "Warehouse automation for SMEs"),
    ("webinar-2026-03", "Fleet telematics, a buyer's guide"),
)
ATTENDANCE: tuple[str, ...] = ("REGISTERED", "ATTENDED", "CANCELLED", "NO_SHOW")

COUNTER_PROPERTIES = {
    "page_views": "hs_analytics_num_page_views",
    "visits": "hs_analytics_num_visits",
    "last_visit": "hs_analytics_last_visit_timestamp",
    "opens": "hs_email_open",
    "last_open": "hs_email_last_open_date",
    "clicks": "hs_email_click",
    "last_click": "hs_email_last_click_date",
}
"""HubSpot's contact properties the counters are served as."""


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Signals:
    """E-mail events, webinar participations and per-contact counters, held in columns."""

    event_at: array[int] = field(default_factory=lambda: array("q"))
    event_type: array[int] = field(default_factory=lambda: array("b"))
    event_contact: array[int] = field(default_factory=lambda: array("l"))
    event_campaign: array[int] = field(default_factory=lambda: array("l"))
    part_at: array[int] = field(default_factory=lambda: array("q"))
    part_state: array[int] = field(default_factory=lambda: array("b"))
    part_contact: array[int] = field(default_factory=lambda: array("l"))
    part_event: array[int] = field(default_factory=lambda: array("b"))
    views: dict[int, list[int]] = field(default_factory=dict)
    """Contact -> [page views, last view ms, visit days...]: folded into properties by ``counters()``."""
    email_counts: dict[int, list[int]] = field(default_factory=dict)
    """Contact -> [opens, last open ms, clicks, last click ms]."""
    _sorted: bool = True

    def add(self, kind: str, contact: int, at_ms: int, seq: int) -> bool:
        """Take one generated activity if it is one of these signals; ``False`` leaves it to the CRM objects."""
        if kind == "page_view":
            entry = self.views.setdefault(contact, [0, 0])
            entry[0] += 1
            entry[1] = max(entry[1], at_ms)
            day = at_ms // 86_400_000
            if day not in entry[2:]:
                entry.append(day)
            return True
        if kind in ("email_open", "email_click"):
            code = 0 if kind == "email_open" else 1
            self.event_at.append(at_ms)
            self.event_type.append(code)
            self.event_contact.append(contact)
            self.event_campaign.append(1000 + seq % 12)
            counts = self.email_counts.setdefault(contact, [0, 0, 0, 0])
            counts[2 * code] += 1
            counts[2 * code + 1] = max(counts[2 * code + 1], at_ms)
            self._sorted = False
            return True
        if kind == "webinar_attended":
            event = seq % len(WEBINARS)
            if seq % 5 == 0:
                self._participate(contact, at_ms - 7 * 86_400_000, 0, event)
            if seq % 4 == 0:  # signed up for another one and did not come: no rule maps it
                self._participate(contact, at_ms - 30 * 86_400_000, 3, (event + 1) % len(WEBINARS))
            self._participate(contact, at_ms, 1, event)
            return True
        return False

    def _participate(self, contact: int, at_ms: int, state: int, event: int) -> None:
        self.part_at.append(at_ms)
        self.part_state.append(state)
        self.part_contact.append(contact)
        self.part_event.append(event)

    def counters(self) -> dict[str, dict[int, str]]:
        """The counter properties' values per contact index, as HubSpot renders them."""
        values: dict[str, dict[int, str]] = {name: {} for name in COUNTER_PROPERTIES.values()}
        for contact, (views, last, *days) in self.views.items():
            values[COUNTER_PROPERTIES["page_views"]][contact] = str(views)
            values[COUNTER_PROPERTIES["visits"]][contact] = str(len(days))
            values[COUNTER_PROPERTIES["last_visit"]][contact] = _iso(last)
        for contact, (opens, last_open, clicks, last_click) in self.email_counts.items():
            if opens:
                values[COUNTER_PROPERTIES["opens"]][contact] = str(opens)
                values[COUNTER_PROPERTIES["last_open"]][contact] = _iso(last_open)
            if clicks:
                values[COUNTER_PROPERTIES["clicks"]][contact] = str(clicks)
                values[COUNTER_PROPERTIES["last_click"]][contact] = _iso(last_click)
        return values

    def _order(self) -> None:
        if self._sorted:
            return
        order = sorted(range(len(self.event_at)), key=self.event_at.__getitem__)
        for name in ("event_at", "event_type", "event_contact", "event_campaign"):
            column = getattr(self, name)
            setattr(self, name, array(column.typecode, (column[i] for i in order)))
        self._sorted = True

    @property
    def event_count(self) -> int:
        return len(self.event_at)

    # -- the HTTP side ---------------------------------------------------------------------------------

    def email_events(self, query: dict[str, list[str]], email_of: Callable[[int], str | None]) -> dict[str, Any]:
        """``GET /email/public/v1/events``: oldest first within the range; the offset token is a position."""
        self._order()
        kind = (query.get("eventType", [""])[0] or "").upper()
        start = _ms(query, "startTimestamp", 0)
        end = _ms(query, "endTimestamp", 2**62)
        limit = max(1, min(_ms(query, "limit", 100), EVENTS_PAGE_MAX))
        position = _ms(query, "offset", 0)
        low = max(bisect_left(self.event_at, start), position)
        high = bisect_right(self.event_at, end)
        code = EVENT_TYPES.index(kind) if kind in EVENT_TYPES else None
        events: list[dict[str, Any]] = []
        index = low
        while index < high and len(events) < limit:
            if code is None or self.event_type[index] == code:
                events.append(
                    {
                        "id": f"evt-{index:09d}",
                        "created": self.event_at[index],
                        "type": EVENT_TYPES[self.event_type[index]],
                        "recipient": email_of(self.event_contact[index]),
                        "portalId": PORTAL_ID,
                        "appId": 113,
                        "appName": "BatchEmail",
                        "emailCampaignId": self.event_campaign[index],
                        "filteredEvent": False,
                    }
                )
            index += 1
        more = any(code is None or self.event_type[i] == code for i in range(index, high))
        page: dict[str, Any] = {"events": events, "hasMore": more}
        if more:
            page["offset"] = str(index)
        return page

    def marketing_events(self) -> dict[str, Any]:
        return {
            "results": [
                {
                    "eventName": name,
                    "eventType": "WEBINAR",
                    "externalAccountId": ACCOUNT,
                    "externalEventId": external,
                    "eventOrganizer": "Sandbox Logistics",
                    "objectId": str(9000 + n),
                    "createdAt": "2026-01-05T09:00:00.000Z",
                    "updatedAt": "2026-01-05T09:00:00.000Z",
                }
                for n, (external, name) in enumerate(WEBINARS)
            ]
        }

    def participations(self, account: str, external: str, query: dict[str, list[str]],
                       email_of: Callable[[int], str | None], contact_id: Callable[[int], int]) -> dict[str, Any] | None:  # fmt: skip
        """One webinar's participation breakdown; ``None`` for an unknown event."""
        names = [e for e, _ in WEBINARS]
        if account != ACCOUNT or external not in names:
            return None
        event = names.index(external)
        limit = max(1, min(_ms(query, "limit", 10), PARTICIPATIONS_PAGE_MAX))
        after = _ms(query, "after", 0)
        matches = [i for i in range(after, len(self.part_at)) if self.part_event[i] == event]
        chunk = matches[:limit]
        results = [
            {
                "id": f"part-{i:09d}",
                "createdAt": _iso(self.part_at[i]),
                "associations": {
                    "contact": {"contactId": str(contact_id(self.part_contact[i])), "email": email_of(self.part_contact[i])},
                    "marketingEvent": {"marketingEventId": str(9000 + event), "name": WEBINARS[event][1],
                                       "externalAccountId": ACCOUNT, "externalEventId": external},
                },
                "properties": {"attendanceState": ATTENDANCE[self.part_state[i]], "occurredAt": self.part_at[i]},
            }
            for i in chunk
        ]  # fmt: skip
        page: dict[str, Any] = {"results": results, "total": len(matches)}
        if len(matches) > limit:
            nxt = str(chunk[-1] + 1)
            page["paging"] = {"next": {"after": nxt, "link": f"?after={nxt}"}}
        return page


def _ms(query: dict[str, list[str]], name: str, default: int) -> int:
    raw = query.get(name, [""])[0]
    try:
        return int(raw) if raw else default
    except ValueError:
        return default
