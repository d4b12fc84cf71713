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
"""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from connector.errors import ConfigError

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


class ActivityCursor(BaseModel):
    model_config = _CURSOR

    v: Literal[1] = 1
    objects: dict[str, ObjectCursor] = Field(default_factory=dict)
    forms: dict[str, FormCursor] = Field(default_factory=dict)


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
