"""Deterministic, streaming, vendor-neutral fake data for the sandbox CRMs.

``generate(contacts, activities, seed=..., now=...)`` yields one person at a
time with that person's activities, so a sandbox can translate and store
100,000 people and 1,000,000 activities without the generator holding any
of them. The same seed and ``now`` always give the same data.

Faker is slow per call (tens of microseconds), so it is only used once to
fill small pools of names, titles and companies; every record is then
picked from the pools with one ``random.Random``.

People are drawn with a *profile*, the rung the default rules
(``mappings/lifecycle.toml``) should put them on, so every rung is
populated and some people land on none: a profile decides the company
(inside or outside the ICP) and the few signal activities; the rest of a
person's activities are engagement noise (page views, e-mail opens and
clicks) spread over the last ~400 days.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from random import Random

from faker import Faker

__all__ = [
    "ICP_INDUSTRIES",
    "INDUSTRIES",
    "PROFILES",
    "FakeActivity",
    "FakeCompany",
    "FakePerson",
    "Removal",
    "generate",
    "removals",
]

ICP_INDUSTRIES: tuple[str, ...] = ("logistics", "manufacturing", "retail", "wholesale", "transportation")
"""Neutral industry keys the default ICP accepts."""
OTHER_INDUSTRIES: tuple[str, ...] = ("software", "finance", "healthcare", "education")
INDUSTRIES: tuple[str, ...] = ICP_INDUSTRIES + OTHER_INDUSTRIES

COUNTRIES: tuple[str, ...] = ("FR", "FR", "FR", "DE", "GB", "BE", "ES", "IT", "NL", "US", "CH")

SPAN_DAYS = 400
"""Activities spread over this many days before ``now``."""
RECENT_DAYS = 170
"""Signal activities that must count for a rung fall inside this window (rules use 180 days)."""

PROFILES: tuple[tuple[str, float], ...] = (
    ("none", 0.14),
    ("suspect", 0.14),
    ("lead", 0.18),
    ("prospect", 0.13),
    ("mql", 0.15),
    ("sql", 0.12),
    ("meeting", 0.14),
)
"""Profile (expected rung, ``none`` for no rung) and its share of people."""

_TITLES = (
    "Logistics Manager",
    "Head of Supply Chain",
    "Directrice logistique",
    "Transport Planner",
    "Operations Director",
    "Warehouse Manager",
    "Procurement Lead",
    "Chief Operating Officer",
    "Responsable des achats",
    "Fleet Manager",
    "Supply Chain Analyst",
    "Plant Manager",
    "CFO",
    "IT Manager",
    "Office Manager",
)
_CONTENT = (
    "Guide: cutting transport costs",
    "White paper: warehouse automation",
    "Case study: 30% fewer empty miles",
    "E-book: supply chain visibility",
    "Checklist: carrier tenders",
)
_WEBINARS = ("Webinar: route optimisation", "Webinar: peak season planning", "Webinar: TMS in 45 minutes")
_PAGES = ("/pricing", "/blog/transport-costs", "/product/tms", "/customers", "/blog/warehouse-kpis", "/about")
_EMAILS = ("Newsletter November", "Product update", "Invitation: logistics summit", "Your guide is ready")
_MEETINGS = ("Discovery call", "Product demo", "Needs assessment")

_ENGAGEMENT = ("page_view", "page_view", "email_open", "email_open", "email_click")
_INTEREST_ONE = ("content_download", "newsletter_signup", "webinar_registered", "info_request")
_INTEREST = ("content_download", "webinar_registered", "webinar_attended", "info_request", "content_download")
_EXCHANGE = ("email_reply", "call_connected")
_MEETING = ("meeting_booked", "meeting_held")


@dataclass(slots=True, frozen=True)
class FakeCompany:
    name: str
    domain: str
    employees: int
    industry: str
    """A neutral key (``logistics``, ``software``...); each sandbox spells it its own way."""
    country: str
    """ISO 3166-1 alpha-2."""


@dataclass(slots=True, frozen=True)
class FakePerson:
    index: int
    email: str
    first_name: str
    last_name: str
    job_title: str
    company: FakeCompany
    created_at: datetime
    modified_at: datetime


@dataclass(slots=True, frozen=True)
class FakeActivity:
    index: int
    """Unique over the whole generation, in generation order."""
    person_index: int
    kind: str
    """A canonical ``ActivityKind`` value."""
    occurred_at: datetime
    """When the activity counts: for a booked meeting, the day it was booked."""
    detail: str
    starts_at: datetime | None = None
    """A booked meeting's start (often after ``now``: booked ahead); ``None`` for everything else."""


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


class _Pools:
    """Names, titles and companies, built once with Faker."""

    def __init__(self, rng: Random, seed: int, companies: int) -> None:
        fake = Faker(["en_GB", "fr_FR", "de_DE", "en_US"])
        fake.seed_instance(seed)
        self.first_names = sorted({fake.first_name() for _ in range(400)})
        self.last_names = sorted({fake.last_name() for _ in range(800)})
        base_names = sorted({fake.company() for _ in range(600)})
        self.icp: list[FakeCompany] = []
        self.other: list[FakeCompany] = []
        for index in range(companies):
            base = rng.choice(base_names)
            # the index keeps names and domains unique without holding a set of them
            name = f"{base} {index}" if index >= len(base_names) else base
            slug = _ascii(base)[:24] or "company"
            industry = rng.choice(INDUSTRIES)
            employees = max(1, int(10 ** rng.uniform(0.3, 3.9)))
            company = FakeCompany(
                name=name,
                domain=f"{slug}{index}.example.com",
                employees=employees,
                industry=industry,
                country=rng.choice(COUNTRIES),
            )
            fits = industry in ICP_INDUSTRIES and employees >= 10
            (self.icp if fits else self.other).append(company)
        if not self.icp:
            self.icp.append(FakeCompany("Transports Martin", "transports-martin.example.com", 120, "logistics", "FR"))
        if not self.other:
            self.other.append(FakeCompany("Tiny Software", "tiny-software.example.com", 4, "software", "GB"))


def _signals(profile: str, rng: Random) -> list[str]:
    """The activity kinds that put a person of ``profile`` on its rung (all recent)."""
    match profile:
        case "lead":
            return [rng.choice(_INTEREST_ONE)]
        case "prospect":
            return [rng.choice(_INTEREST_ONE), rng.choice(_EXCHANGE)]
        case "mql":
            return [rng.choice(_INTEREST) for _ in range(3)]
        case "sql":
            return [*(rng.choice(_INTEREST) for _ in range(3)), "demo_request"]
        case "meeting":
            signals = [rng.choice(_INTEREST_ONE), "meeting_booked"]
            if rng.random() < 0.5:
                signals.append("meeting_held")
            return signals
        case _:
            return []


def _detail(kind: str, rng: Random) -> str:
    match kind:
        case "page_view":
            return rng.choice(_PAGES)
        case "email_open" | "email_click" | "email_reply":
            return rng.choice(_EMAILS)
        case "content_download":
            return rng.choice(_CONTENT)
        case "webinar_registered" | "webinar_attended":
            return rng.choice(_WEBINARS)
        case "meeting_booked" | "meeting_held":
            return rng.choice(_MEETINGS)
        case "call_connected":
            return "Follow-up call"
        case "demo_request":
            return "Demo request form"
        case "newsletter_signup":
            return "Newsletter sign-up"
        case _:
            return "Information request"


@dataclass(slots=True, frozen=True)
class Removal:
    """A person a CRM user deletes (``into`` is ``None``) or merges into the person ``into`` (both indexes)."""

    index: int
    into: int | None = None


DELETES_PER_THOUSAND = 2
MERGES_PER_THOUSAND = 2


def removals(
    contacts: int,
    *,
    seed: int = 7,
    deletes_per_thousand: int = DELETES_PER_THOUSAND,
    merges_per_thousand: int = MERGES_PER_THOUSAND,
) -> list[Removal]:
    """The deletes and merges of ``contacts`` generated people: a few per thousand, deterministic in ``seed``.

    Kept apart from :func:`generate` (its own random stream, nothing else moves): a sandbox seeds the people,
    a first sync runs, then the sandbox applies these the way its vendor does. No person is removed twice,
    and no survivor is itself removed.
    """
    rng = Random(seed * 7919 + 104_729)
    deletes = contacts * deletes_per_thousand // 1000
    merges = contacts * merges_per_thousand // 1000
    if contacts < 2 or deletes + 2 * merges == 0:
        return []
    picked = rng.sample(range(contacts), min(contacts, deletes + 2 * merges))
    found = [Removal(index) for index in picked[:deletes]]
    pairs = picked[deletes:]
    found += [Removal(pairs[n], pairs[n + 1]) for n in range(0, len(pairs) - 1, 2)]
    return found


def _meeting_start(index: int, booked_at: datetime) -> datetime:
    """A booked meeting takes place 1-13 days after the booking (no draw from the generator's random stream,
    so every other value stays as it was): a booking in the last days is a meeting still ahead."""
    return booked_at + timedelta(days=1 + index % 13, hours=index % 5)


def generate(
    contacts: int, activities: int, *, seed: int = 7, now: datetime
) -> Iterator[tuple[FakePerson, list[FakeActivity]]]:
    """``contacts`` people and exactly ``activities`` activities in all, one person at a time.

    Each person's activities come sorted by ``occurred_at``. E-mails are
    unique. The output depends only on the arguments.
    """
    if contacts < 0 or activities < 0:
        raise ValueError("contacts and activities must not be negative")
    if contacts == 0:
        return
    rng = Random(seed)
    pools = _Pools(rng, seed, companies=max(1, min(contacts // 4 + 1, 40_000)))
    profiles = [name for name, _ in PROFILES]
    weights = [share for _, share in PROFILES]
    mean = activities / contacts
    span = SPAN_DAYS * 86_400
    recent = RECENT_DAYS * 86_400
    emitted = 0
    next_index = 0
    for index in range(contacts):
        profile = rng.choices(profiles, weights)[0]
        if profile == "none":
            company = rng.choice(pools.other)
        elif profile in ("suspect", "prospect"):
            company = rng.choice(pools.icp)
        else:
            company = rng.choice(pools.icp if rng.random() < 0.7 else pools.other)
        first = rng.choice(pools.first_names)
        last = rng.choice(pools.last_names)
        email = f"{_ascii(first)[:20] or 'x'}.{_ascii(last)[:20] or 'y'}.{index}@{company.domain}"
        # exact total: the running deficit to the even share, plus some spread per person
        due = (index + 1) * activities // contacts - emitted
        count = max(0, min(activities - emitted, due + int(rng.uniform(-0.6, 0.6) * mean)))
        if index == contacts - 1:
            count = activities - emitted
        emitted += count
        signals = _signals(profile, rng)[:count]
        kinds = signals + [rng.choice(_ENGAGEMENT) for _ in range(count - len(signals))]
        offsets = sorted(
            (rng.randrange(recent) if position < len(signals) else rng.randrange(span), kind)
            for position, kind in enumerate(kinds)
        )
        # activities oldest first; the person exists before their first activity
        oldest = offsets[-1][0] if offsets else rng.randrange(span)
        created_at = now - timedelta(seconds=oldest + rng.randrange(86_400, 30 * 86_400))
        modified_at = now - timedelta(seconds=rng.randrange(min(oldest, 86_400 * 30) + 1))
        items = []
        for offset, kind in reversed(offsets):
            occurred_at = now - timedelta(seconds=offset)
            items.append(
                FakeActivity(
                    index=next_index,
                    person_index=index,
                    kind=kind,
                    occurred_at=occurred_at,
                    detail=_detail(kind, rng),
                    starts_at=_meeting_start(next_index, occurred_at) if kind == "meeting_booked" else None,
                )
            )
            next_index += 1
        person = FakePerson(
            index=index,
            email=email,
            first_name=first,
            last_name=last,
            job_title=rng.choice(_TITLES),
            company=company,
            created_at=created_at,
            modified_at=max(modified_at, created_at),
        )
        yield person, items
