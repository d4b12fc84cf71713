"""The common model every CRM is normalised into.

Vendor payloads become these frozen models inside the vendor's client
module; nothing past the client boundary handles raw dicts. Datetimes are
always aware and in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class Stage(StrEnum):
    """The qualification ladder, lowest rung first (docs/rules.md)."""

    SUSPECT = "suspect"
    LEAD = "lead"
    PROSPECT = "prospect"
    MQL = "mql"
    SQL = "sql"
    MEETING = "meeting"

    @property
    def rank(self) -> int:
        return _RANK[self]


LADDER: tuple[Stage, ...] = tuple(Stage)
_RANK = {stage: index for index, stage in enumerate(LADDER)}


class ActivityClass(StrEnum):
    ENGAGEMENT = "engagement"
    INTEREST = "interest"
    HAND_RAISE = "hand_raise"
    EXCHANGE = "exchange"
    MEETING = "meeting"


class ActivityKind(StrEnum):
    """Canonical activity kinds; each CRM mapping translates into these."""

    PAGE_VIEW = "page_view"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    NEWSLETTER_SIGNUP = "newsletter_signup"
    CONTENT_DOWNLOAD = "content_download"
    WEBINAR_REGISTERED = "webinar_registered"
    WEBINAR_ATTENDED = "webinar_attended"
    INFO_REQUEST = "info_request"
    DEMO_REQUEST = "demo_request"
    EMAIL_REPLY = "email_reply"
    CALL_CONNECTED = "call_connected"
    MEETING_BOOKED = "meeting_booked"
    MEETING_HELD = "meeting_held"

    @property
    def activity_class(self) -> ActivityClass:
        return KIND_CLASS[self]


KIND_CLASS: dict[ActivityKind, ActivityClass] = {
    ActivityKind.PAGE_VIEW: ActivityClass.ENGAGEMENT,
    ActivityKind.EMAIL_OPEN: ActivityClass.ENGAGEMENT,
    ActivityKind.EMAIL_CLICK: ActivityClass.ENGAGEMENT,
    ActivityKind.NEWSLETTER_SIGNUP: ActivityClass.INTEREST,
    ActivityKind.CONTENT_DOWNLOAD: ActivityClass.INTEREST,
    ActivityKind.WEBINAR_REGISTERED: ActivityClass.INTEREST,
    ActivityKind.WEBINAR_ATTENDED: ActivityClass.INTEREST,
    ActivityKind.INFO_REQUEST: ActivityClass.INTEREST,
    ActivityKind.DEMO_REQUEST: ActivityClass.HAND_RAISE,
    ActivityKind.EMAIL_REPLY: ActivityClass.EXCHANGE,
    ActivityKind.CALL_CONNECTED: ActivityClass.EXCHANGE,
    ActivityKind.MEETING_BOOKED: ActivityClass.MEETING,
    ActivityKind.MEETING_HELD: ActivityClass.MEETING,
}

KIND_LABEL: dict[str, str] = {
    "page_view": "page view",
    "email_open": "e-mail open",
    "email_click": "e-mail click",
    "newsletter_signup": "newsletter",
    "content_download": "download",
    "webinar_registered": "webinar sign-up",
    "webinar_attended": "webinar",
    "info_request": "info request",
    "demo_request": "demo request",
    "email_reply": "reply",
    "call_connected": "call",
    "meeting_booked": "meeting booked",
    "meeting_held": "meeting held",
}

KNOWN_KINDS: frozenset[str] = frozenset(kind.value for kind in ActivityKind)


class CounterKind(StrEnum):
    """Running totals a CRM keeps on the person instead of a list of dated activities.

    A counter is not activities: ``12 page views, the last on 2 November`` does
    not say when the other eleven happened. The rules test counters on their own
    (a threshold, with the last date in a window) and score them with their own
    capped points; ``at_least`` on activities never counts them.
    """

    PAGE_VIEWS = "page_views"
    VISITS = "visits"
    EMAIL_OPENS = "email_opens"
    EMAIL_CLICKS = "email_clicks"


_FROZEN = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)


class Company(BaseModel):
    model_config = _FROZEN

    name: str | None = None
    domain: str | None = None
    employees: int | None = Field(default=None, ge=0)
    industry: str | None = None
    country: str | None = None


class Activity(BaseModel):
    """Something a contact did, at one instant.

    ``kind`` stays a plain string so that a kind this version does not know
    is kept (and counted, and ignored by the rules) instead of rejected.
    """

    model_config = _FROZEN

    kind: str
    occurred_at: UtcDatetime
    detail: str | None = None
    id: str | None = None


class Counter(BaseModel):
    """A dated running total: ``total`` so far, the latest one at ``last_at`` (when the CRM keeps it)."""

    model_config = _FROZEN

    kind: str
    total: int = Field(ge=0)
    last_at: UtcDatetime | None = None


class Contact(BaseModel):
    """A person, with the activities known for them.

    ``stage`` is the rung the contact is on now (``None`` when not on the
    ladder); the rules use it to keep stages forward-only.
    """

    model_config = _FROZEN

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    job_title: str | None = None
    company: Company | None = None
    stage: Stage | None = None
    activities: tuple[Activity, ...] = ()
    counters: tuple[Counter, ...] = ()
    """Running totals the CRM keeps (page views, visits, e-mail opens and clicks); see :class:`CounterKind`."""
    other_emails: tuple[str, ...] = ()
    """More addresses of the same person the mapping allows matching on (HubSpot ``hs_additional_emails``):
    normalised like ``email``; used only to match one person's records across CRMs (docs/people.md)."""


class FactSource(StrEnum):
    """Where a piece of evidence comes from."""

    ACTIVITY = "activity"
    FIELD = "field"
    SCORE = "score"
    POLICY = "policy"
    COUNTER = "counter"


@dataclass(frozen=True, slots=True)
class Fact:
    """One piece of evidence behind a decision: an activity, a field value or a score part.

    A plain frozen dataclass, like :class:`StageDecision`: the rules engine
    makes several per contact, and pydantic's construction cost shows there.
    """

    source: FactSource
    name: str
    value: str
    at: datetime | None = None

    def as_json(self) -> dict[str, str]:
        data = {"source": str(self.source), "name": self.name, "value": self.value}
        if self.at is not None:
            data["at"] = self.at.isoformat().replace("+00:00", "Z")
        return data


@dataclass(frozen=True, slots=True)
class StageDecision:
    """The rung a contact belongs on, the rule that put it there and why."""

    stage: Stage | None
    rule: str | None
    """Name of the rung rule that matched, or ``forward-only`` when the current rung was kept."""
    reasons: tuple[str, ...] = ()
    facts: tuple[Fact, ...] = ()
    score: float = 0.0
    unknown_kinds: tuple[tuple[str, int], ...] = ()
    """Activity kinds the rules do not know, with how many were seen (ignored, never guessed)."""
    decide_again_at: datetime | None = None
    """The next moment at which time alone could change this decision (an activity dated in the future
    comes due; with regression, a window closes); ``None`` when only new facts can change it."""

    def as_json(self) -> dict[str, object]:
        return {
            "stage": self.stage.value if self.stage else None,
            "rule": self.rule,
            "reasons": list(self.reasons),
            "facts": [fact.as_json() for fact in self.facts],
            "score": self.score,
            "unknown_kinds": dict(self.unknown_kinds),
            "decide_again_at": self.decide_again_at.isoformat().replace("+00:00", "Z")
            if self.decide_again_at
            else None,
        }

    def summary(self) -> str:
        """A short line for sales people, e.g. ``MQL: guide 2026-10-02, webinar 2026-10-20``."""
        if self.stage is None:
            return ""
        parts = [
            f"{KIND_LABEL.get(fact.name, fact.name)} {fact.at.date().isoformat()}"
            for fact in self.facts
            if fact.source == FactSource.ACTIVITY and fact.at is not None
        ]
        head = self.stage.value.upper() if self.stage in (Stage.MQL, Stage.SQL) else self.stage.value.capitalize()
        return f"{head}: {', '.join(parts)}" if parts else head
