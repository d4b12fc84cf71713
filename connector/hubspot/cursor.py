"""The HubSpot client's cursors: opaque JSON strings to the pipeline, versioned models here.

A cursor says where to resume after a page that has been committed; it
never claims a record that comes after that page.

- An object's scan (``ObjectCursor``) is either a full list (``phase =
  "list"``, ``after`` = HubSpot's list cursor) or an incremental search:
  records whose last-modified instant is at or after ``since``, sorted by
  ``hs_object_id``, past ``anchor`` (the last id committed). When a scan
  ends, ``since`` becomes the instant the scan started, minus a lookback
  (search lags behind writes).
- A form's submissions (``FormCursor``) come newest first with no "since"
  filter: ``watermark`` is the newest instant fully read; while a new range
  is being read, ``after`` and ``top`` hold the position and the newest
  instant of that range, and the watermark only moves to ``top`` once the
  whole range is read; ``seen`` keeps the submissions at the watermark instant
  that were handed out, so that re-reading the boundary hands out only new ones.

Every move of a cursor is a pure function of the cursor and the page just
read (``next_list_cursor``, ``next_search``, ``next_form_cursor``); the
client only fetches pages and applies them, and tests cover the moves with
tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from connector.errors import ConfigError
from connector.hubspot.engagement import EngagementCursor

_CURSOR = ConfigDict(extra="forbid")
C = TypeVar("C", bound=BaseModel)


class ObjectCursor(BaseModel):
    model_config = _CURSOR

    phase: Literal["list", "search"] = "list"
    after: str | None = None
    """List phase: HubSpot's paging cursor of the next page."""
    since: int = 0
    """Search phase: epoch ms; records modified at or after it."""
    anchor: int = 0
    """Search phase: the scan resumes after this ``hs_object_id``."""
    started: int | None = None
    """Epoch ms the scan in progress started at, minus the lookback: the next scan's ``since``."""


class FormCursor(BaseModel):
    model_config = _CURSOR

    watermark: int | None = None
    after: str | None = None
    top: int | None = None
    seen: list[str] = Field(default_factory=list)
    """Keys of the submissions at exactly ``watermark`` already handed out. The boundary instant is
    read again (a submission in the same millisecond may have come later), but these are not handed
    out again, so a run with nothing new looks no e-mail up."""
    top_seen: list[str] = Field(default_factory=list)
    """While a range is read: keys handed out at ``top``."""


class ContactCursor(BaseModel):
    model_config = _CURSOR

    v: Literal[1] = 1
    contacts: ObjectCursor = Field(default_factory=ObjectCursor)
    companies: ObjectCursor | None = None
    """When the mapping reads companies: the search for companies changed since the last pull, whose
    contacts are read again (``None`` until the first contact pull has started; then it searches from there)."""
    archived_since: int | None = None
    """Epoch ms: contacts archived (deleted, or merged into another) at or after it are kept from the archived
    list on the next pull and leave the store (``None``: a first or full pull keeps every archived contact)."""


class ActivityCursor(BaseModel):
    model_config = _CURSOR

    v: Literal[1] = 1
    objects: dict[str, ObjectCursor] = Field(default_factory=dict)
    forms: dict[str, FormCursor] = Field(default_factory=dict)
    engagement: EngagementCursor = Field(default_factory=EngagementCursor)
    """E-mail events and marketing-event participations (``engagement.py``)."""


def load_cursor(model: type[C], cursor: str | None) -> C | None:
    if cursor is None:
        return None
    try:
        return model.model_validate_json(cursor)
    except ValueError:
        raise ConfigError(
            f"not a HubSpot {model.__name__.removesuffix('Cursor').lower()} cursor: {cursor[:60]!r}"
        ) from None


def dump_cursor(cursor: BaseModel) -> str:
    return cursor.model_dump_json(exclude_defaults=False)


# -- the transitions ---------------------------------------------------------------------------


def scan_start(cursor: ObjectCursor, now_ms: int, lookback_ms: int) -> int:
    """The instant the next scan's ``since`` will be: the scan's own start, less the lookback."""
    return cursor.started if cursor.started is not None else now_ms - lookback_ms


def next_list_cursor(next_after: str | None, started: int) -> ObjectCursor:
    """After a list page: the next page, or (list done) a search for what changed since the list started."""
    if next_after is None:
        return ObjectCursor(phase="search", since=started)
    return ObjectCursor(phase="list", after=next_after, started=started)


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """One search request: records modified at or after ``since`` with ``hs_object_id > anchor``, from ``offset``."""

    since: int
    anchor: int
    offset: int = 0


def next_search(
    query: SearchQuery,
    started: int,
    last_id: str | None,
    next_after: str | None,
    *,
    page_size: int,
    cap: int,
) -> tuple[ObjectCursor, SearchQuery | None]:
    """After a search page: the cursor to store, and the next query (``None`` when the scan is done).

    A finished scan's next ``since`` is the instant it started. Before the
    next page would pass HubSpot's result cap (HTTP 400 past it), a new query
    starts after the last id read.
    """
    if next_after is None or last_id is None:
        return ObjectCursor(phase="search", since=started), None
    last = int(last_id)
    cursor = ObjectCursor(phase="search", since=query.since, anchor=last, started=started)
    offset = int(next_after)
    if offset + page_size > cap:
        return cursor, SearchQuery(query.since, last, 0)
    return cursor, SearchQuery(query.since, query.anchor, offset)


@dataclass(frozen=True, slots=True)
class Submitted:
    """What the form cursor needs of one submission: its instant (epoch ms) and identity key."""

    at: int
    key: str


@dataclass(frozen=True, slots=True)
class FormStep:
    fresh: tuple[int, ...]
    """Positions in the page of the submissions to hand out (not read before)."""
    cursor: FormCursor
    """The cursor to store after this page."""
    done: bool
    """Whether the range is read (down to the watermark, or the last page)."""


def next_form_cursor(state: FormCursor, page: Sequence[Submitted], next_after: str | None) -> FormStep:
    """After one page of a form's submissions (newest first): what is new, and where to resume.

    While a range is read, ``after``/``top``/``top_seen`` hold the position;
    the watermark only moves to ``top`` once the whole range is read, so a
    crash mid-range never skips the older part of it.
    """
    watermark, seen = state.watermark, set(state.seen)
    top, top_seen = state.top, set(state.top_seen)
    fresh = tuple(
        index
        for index, item in enumerate(page)
        if watermark is None or item.at > watermark or (item.at == watermark and item.key not in seen)
    )
    if fresh:
        newest = max(page[i].at for i in fresh)
        if top is None or newest > top:
            top, top_seen = newest, set()
        top_seen |= {page[i].key for i in fresh if page[i].at == top}
    reached = watermark is not None and any(item.at < watermark for item in page)
    done = reached or next_after is None
    if not done:
        cursor = FormCursor(
            watermark=watermark, seen=sorted(seen), after=next_after, top=top, top_seen=sorted(top_seen)
        )
    elif top is None or (watermark is not None and top <= watermark):
        cursor = FormCursor(watermark=watermark, seen=sorted(seen | top_seen))
    else:
        cursor = FormCursor(watermark=top, seen=sorted(top_seen))
    return FormStep(fresh=fresh, cursor=cursor, done=done)
