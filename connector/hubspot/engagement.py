"""Engagement signals HubSpot keeps outside CRM objects: marketing e-mail events and marketing-event participations.

- **E-mail events** (``GET /email/public/v1/events``): one event per recipient
  and interaction, dated (``created``, epoch ms), typed (``OPEN``, ``CLICK``...),
  filtered by ``eventType`` and ``startTimestamp``/``endTimestamp``, paged by an
  ``offset`` token while ``hasMore``; up to 1,000 a page. Each mapped event type
  is read from the watermark (less the lookback) to the run's start; events
  HubSpot flags ``filteredEvent`` (opens by mail scanners and bots) are skipped.
  The recipient is an e-mail address: it is resolved to a contact id like a
  form's submitter.
- **Marketing events** (``GET /marketing/v3/marketing-events``) and each one's
  participation breakdown
  (``…/participations/{externalAccountId}/{externalEventId}/breakdown``), whose
  items carry ``attendanceState`` (REGISTERED, ATTENDED, CANCELLED, NO_SHOW), the
  dated ``occurredAt`` and the contact id. The breakdown has no time filter: every
  run reads it and hands out only participations after the watermark (less the
  lookback).

Both are mapped by ``[[activities]]`` rules like CRM objects (``object =
"email_events"`` with ``when = { type = "CLICK" }``, ``object =
"marketing_events"`` with ``when = { attendanceState = "ATTENDED" }``). The cursor
transitions are pure functions, tested by tables.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from connector.crm import ActivityPage, ActivityRecord, SkippedRecord, SkipReason
from connector.hubspot.transport import Operation, path
from connector.mapping import CrmMapping

EMAIL_EVENTS = "email_events"
MARKETING_EVENTS = "marketing_events"
OBJECTS: tuple[str, ...] = (EMAIL_EVENTS, MARKETING_EVENTS)
"""Activity objects of the mapping that this module reads (the client's CRM-object scan skips them)."""

EVENT_PAGE = 1000
"""E-mail events per page (HubSpot's maximum)."""
PARTICIPATION_PAGE = 100
MARKETING_EVENT_PAGE = 100

_BODY = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
_CURSOR = ConfigDict(frozen=True, extra="forbid")


# -- payloads ------------------------------------------------------------------------------------


class EmailEvent(BaseModel):
    model_config = _BODY
    id: str
    created: int
    type: str
    recipient: str | None = None
    email_campaign_id: int | None = Field(default=None, alias="emailCampaignId")
    filtered_event: bool = Field(default=False, alias="filteredEvent")


class MarketingEvent(BaseModel):
    model_config = _BODY
    event_name: str | None = Field(default=None, alias="eventName")
    external_account_id: str = Field(alias="externalAccountId")
    external_event_id: str = Field(alias="externalEventId")


class ParticipationContact(BaseModel):
    model_config = _BODY
    contact_id: str | None = Field(default=None, alias="contactId")


class ParticipationLinks(BaseModel):
    model_config = _BODY
    contact: ParticipationContact | None = None


class ParticipationProperties(BaseModel):
    model_config = _BODY
    attendance_state: str | None = Field(default=None, alias="attendanceState")
    occurred_at: int | None = Field(default=None, alias="occurredAt")


class Participation(BaseModel):
    model_config = _BODY
    id: str
    associations: ParticipationLinks = ParticipationLinks()
    properties: ParticipationProperties = ParticipationProperties()


@functools.cache
def _whole_page(key: str, model: type[BaseModel]) -> type[BaseModel]:
    """A page whose ``key`` is a list of ``model`` and whose other keys are kept as they are."""
    fields: dict[str, Any] = {key: (list[model], [])}  # type: ignore[valid-type]
    return create_model(f"{model.__name__}Page", __config__=ConfigDict(extra="allow"), **fields)


def parse_items(data: bytes, key: str, model: type[BaseModel]) -> tuple[dict[str, Any], list[Any], list[SkippedRecord]]:
    """The page's other keys, its readable items of ``model`` under ``key``, and the unreadable ones as skips.

    The fast path has pydantic read the whole body at once (an e-mail events page holds 1,000 events); when that
    fails (a lone UTF-16 surrogate, a value of the wrong type), Python's JSON parser reads it and each item is
    checked on its own, so one bad item is skipped and the others are kept."""
    try:
        page = _whole_page(key, model).model_validate_json(data)
    except ValidationError:
        pass
    else:
        return dict(page.model_extra or {}), list(getattr(page, key)), []
    raw = json.loads(data)
    if not isinstance(raw, dict):
        raise ValueError("the response body is not a JSON object")
    items = raw.get(key)
    good: list[Any] = []
    bad: list[SkippedRecord] = []
    for item in items if isinstance(items, list) else []:
        try:
            good.append(model.model_validate(item))
        except ValidationError as error:
            first = error.errors(include_url=False, include_input=False)[0]
            ref = str(item.get("id", "?"))[:80] if isinstance(item, dict) else "?"
            reason = ".".join(str(p) for p in first["loc"]) + f": {first['msg']}"
            bad.append(SkippedRecord(crm_id=f"{key}/{ref}", reason=reason, code=SkipReason.UNREADABLE))
    return {k: v for k, v in raw.items() if k != key}, good, bad


# -- cursors and their transitions (pure) --------------------------------------------------------


class EventTypeCursor(BaseModel):
    """Where one e-mail event type's read stands: the watermark, and inside a range, its end and page token."""

    model_config = _CURSOR
    since: int | None = None
    """Events from here (ms) are still to be read; ``None``: from the beginning."""
    until: int | None = None
    """While a range is read: its end (the run's start when it began)."""
    offset: str | None = None
    """While a range is read: HubSpot's token for the next page."""


class ParticipationCursor(BaseModel):
    model_config = _CURSOR
    watermark: int | None = None
    """Participations up to here (ms) were handed out."""


class EngagementCursor(BaseModel):
    """The part of the HubSpot activity cursor for these sources."""

    model_config = _CURSOR
    email_events: dict[str, EventTypeCursor] = Field(default_factory=dict)
    participations: ParticipationCursor = ParticipationCursor()


def event_range(state: EventTypeCursor, now_ms: int, lookback_ms: int) -> tuple[int | None, int]:
    """The ``startTimestamp`` and ``endTimestamp`` of the next read: resume a range, or from the watermark less
    the lookback up to now."""
    if state.until is not None:
        return state.since, state.until
    return (state.since - lookback_ms if state.since is not None else None), now_ms


def next_event_cursor(state: EventTypeCursor, since: int | None, until: int, has_more: bool,
                      offset: str | None) -> EventTypeCursor:  # fmt: skip
    """After one page of a range: the next page of the same range, or (range done) the watermark at its end."""
    if has_more and offset:
        # the range's own start is kept: HubSpot's offset token belongs to that exact query
        return EventTypeCursor(since=since, until=until, offset=offset)
    return EventTypeCursor(since=until)


def next_participation_cursor(state: ParticipationCursor, occurred: Sequence[int]) -> ParticipationCursor:
    """After a whole read of the breakdowns: the watermark moves to the latest participation seen."""
    latest = max(occurred, default=None)
    if latest is None or (state.watermark is not None and latest <= state.watermark):
        return state
    return ParticipationCursor(watermark=latest)


# -- the mapping's side --------------------------------------------------------------------------


def event_types(mapping: CrmMapping) -> list[str]:
    """The e-mail event types the mapping turns into activities (``when.type``), in mapping order."""
    wanted: dict[str, None] = {}
    for rule in mapping.activity_rules(EMAIL_EVENTS):
        value = rule.when.get("type", [])
        for name in [value] if isinstance(value, str) else value:
            wanted[name.strip().upper()] = None
    return list(wanted)


def event_id(event: EmailEvent) -> str:
    return f"{EMAIL_EVENTS}/{event.created}/{event.id}"


def participation_id(participation: Participation) -> str:
    return f"{MARKETING_EVENTS}/{participation.id}"


# -- reading -------------------------------------------------------------------------------------

Send = Callable[[Operation], bytes]


class EngagementReader:
    """Reads the two sources through the client's ``send``; ``contact_ids`` resolves recipients' e-mails."""

    def __init__(self, send: Send, mapping: CrmMapping, contact_ids: Callable[[list[str]], dict[str, str]],
                 lookback_ms: int) -> None:  # fmt: skip
        self._send = send
        self.mapping = mapping
        self._contact_ids = contact_ids
        self.lookback_ms = lookback_ms

    def email_events(self, state: EngagementCursor, now_ms: int) -> Iterator[tuple[ActivityPage, EngagementCursor]]:
        for kind in event_types(self.mapping):
            current = state.email_events.get(kind) or EventTypeCursor()
            while True:
                since, until = event_range(current, now_ms, self.lookback_ms)
                query: tuple[tuple[str, Any], ...] = (("eventType", kind), ("limit", EVENT_PAGE),
                                                      ("endTimestamp", until))  # fmt: skip
                if since is not None:
                    query += (("startTimestamp", since),)
                if current.offset:
                    query += (("offset", current.offset),)
                data = self._send(Operation("email.events", "GET", "/email/public/v1/events", query=query))
                rest, events, skips = parse_items(data, "events", EmailEvent)
                page = self._event_page(events, skips)
                current = next_event_cursor(current, since, until, bool(rest.get("hasMore")), rest.get("offset"))
                state = state.model_copy(update={"email_events": {**state.email_events, kind: current}})
                yield page, state
                if current.until is None:
                    break

    def _event_page(self, events: list[EmailEvent], skips: list[SkippedRecord]) -> ActivityPage:
        kept = [e for e in events if not e.filtered_event]
        emails = sorted({(e.recipient or "").strip().lower() for e in kept} - {""})
        ids = self._contact_ids(emails)
        records: list[ActivityRecord] = []
        unmapped = len(events) - len(kept)
        for event in kept:
            crm_id = event_id(event)
            values = {"type": event.type, "created": str(event.created), "emailCampaignId": event.email_campaign_id,
                      "recipient": event.recipient}  # fmt: skip
            try:
                activity = self.mapping.activity(EMAIL_EVENTS, values, crm_id)
            except ValueError as error:
                skips.append(SkippedRecord.from_error(crm_id, error))
                continue
            if activity is None:
                unmapped += 1
                continue
            contact = ids.get((event.recipient or "").strip().lower())
            if contact is None:
                skips.append(SkippedRecord(crm_id=crm_id, reason="no contact with the recipient's e-mail",
                                           code=SkipReason.NO_CONTACT))  # fmt: skip
                continue
            records.append(ActivityRecord(crm_id=crm_id, activity=activity, contact_ids=(contact,),
                                          modified_at=activity.occurred_at))  # fmt: skip
        return ActivityPage(records=tuple(records), cursor=None, skipped=tuple(skips), unmapped=unmapped)

    def participations(self, state: EngagementCursor) -> Iterator[tuple[ActivityPage, EngagementCursor]]:
        if not self.mapping.activity_rules(MARKETING_EVENTS):
            return
        since = state.participations.watermark
        floor = since - self.lookback_ms if since is not None else None
        seen: list[int] = []
        for event in self._marketing_events():
            after: str | None = None
            while True:
                query: tuple[tuple[str, Any], ...] = (("limit", PARTICIPATION_PAGE),)
                if after:
                    query += (("after", after),)
                url = path("/marketing/v3/marketing-events/participations/{account}/{event}/breakdown",
                           account=event.external_account_id, event=event.external_event_id)  # fmt: skip
                data = self._send(Operation("marketing_events.participations", "GET", url, query=query))
                rest, items, skips = parse_items(data, "results", Participation)
                page = self._participation_page(event, items, skips, floor)
                seen += [p.properties.occurred_at for p in items if p.properties.occurred_at is not None]
                after = _next_after(rest)
                yield page, state  # the watermark moves only once every breakdown was read (below)
                if after is None:
                    break
        state = state.model_copy(update={"participations": next_participation_cursor(state.participations, seen)})
        yield ActivityPage(records=(), cursor=None), state

    def _marketing_events(self) -> list[MarketingEvent]:
        events: list[MarketingEvent] = []
        after: str | None = None
        while True:
            query: tuple[tuple[str, Any], ...] = (("limit", MARKETING_EVENT_PAGE),)
            if after:
                query += (("after", after),)
            data = self._send(Operation("marketing_events.list", "GET", "/marketing/v3/marketing-events", query=query))
            rest, found, _ = parse_items(data, "results", MarketingEvent)
            events += found
            after = _next_after(rest)
            if after is None:
                return events

    def _participation_page(self, event: MarketingEvent, items: list[Participation], skips: list[SkippedRecord],
                            floor: int | None) -> ActivityPage:  # fmt: skip
        records: list[ActivityRecord] = []
        unmapped = 0
        for item in items:
            occurred = item.properties.occurred_at
            if floor is not None and occurred is not None and occurred < floor:
                continue  # handed out by an earlier run
            crm_id = participation_id(item)
            values = {"attendanceState": item.properties.attendance_state, "eventName": event.event_name,
                      "occurredAt": str(occurred) if occurred is not None else None}  # fmt: skip
            try:
                activity = self.mapping.activity(MARKETING_EVENTS, values, crm_id)
            except ValueError as error:
                skips.append(SkippedRecord.from_error(crm_id, error))
                continue
            if activity is None:
                unmapped += 1
                continue
            contact = item.associations.contact.contact_id if item.associations.contact else None
            if not contact:
                skips.append(SkippedRecord(crm_id=crm_id, reason="no associated contact", code=SkipReason.NO_CONTACT))
                continue
            records.append(ActivityRecord(crm_id=crm_id, activity=activity, contact_ids=(contact,),
                                          modified_at=activity.occurred_at))  # fmt: skip
        return ActivityPage(records=tuple(records), cursor=None, skipped=tuple(skips), unmapped=unmapped)


def _next_after(rest: dict[str, Any]) -> str | None:
    paging = rest.get("paging")
    nxt = paging.get("next") if isinstance(paging, dict) else None
    after = nxt.get("after") if isinstance(nxt, dict) else None
    return str(after) if after else None
