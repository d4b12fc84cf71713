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

Beyond the ladder (``FakePerson.standing``, ``FakeCompany.customer``): a few
companies are customers (``CUSTOMER_COMPANY_SHARE``) and most of their people
carry the standing ``customer``; a few other people are ``opportunity``,
``evangelist`` or ``other`` (``STANDINGS``). These are drawn from a random
stream of their own, so every other value is what it was before they existed.
The HubSpot sandbox writes the standing to ``lifecyclestage``; the Salesforce
sandbox gives a customer company's Account ``Type = "Customer - Direct"`` and a
Lead with a standing a Status outside the ladder (``Existing Customer``,
``Partner``).

**One world, two CRMs** (``overlap``). ``generate(..., crm="hubspot",
overlap=0.3)`` and ``generate(..., crm="salesforce", overlap=0.3)`` with the
same ``contacts``, ``seed`` and ``now`` are the two CRMs of one company: each
yields ``contacts`` people, and ``round(overlap * contacts)`` of them (at least
one) are the *same* people in both, at the same positions (every
``contacts/shared``-th). A shared person is drawn from a random stream of her
own (``seed`` and her number), so each CRM can be seeded alone, in its own
process, and still agree with the other. The rest of each CRM's people are its
own (HubSpot's from ``seed``, Salesforce's from ``seed + 1``); e-mails are
unique across the world (``first.last.N@domain``, N the person's world number).

How a shared person looks in each CRM:

- **E-mail.** HubSpot holds her canonical address. Salesforce holds the same
  address (``EMAIL_SAME``), or it with another case (``Anne.Martin.12@...``,
  ``EMAIL_CASE``), or it with surrounding spaces as an import left it
  (``EMAIL_SPACES``), or an older address (``amartin.12@domain``,
  ``EMAIL_ALIAS``) that HubSpot keeps only in the contact's
  ``hs_additional_emails`` (``FakePerson.additional_emails``; HubSpot's
  property is ``;``-separated: a second, unrelated address is sometimes there
  too). Matching on the normalised e-mail (trimmed, lower case) plus HubSpot's
  additional e-mails finds every shared person; nothing else matches.
- **Signals, split as in a company that markets in HubSpot and sells in
  Salesforce.** Marketing kinds (downloads, webinars, newsletter, information
  requests, opens, clicks, page views) are in HubSpot; ``NOISE_IN_SALESFORCE``
  of the engagement noise is in Salesforce instead (a marketing tool's Tasks).
  Sales kinds (``email_reply``, ``call_connected``, ``meeting_booked``,
  ``meeting_held``) are in Salesforce, except ``SALES_LOGGED_IN_HUBSPOT`` of
  them that a rep logged in HubSpot. A ``demo_request`` is a HubSpot form or a
  Salesforce web-to-lead campaign response, half and half.
- **Copied activities** (``FakeActivity.copy``). HubSpot's Salesforce
  integration copies the HubSpot-logged e-mails and meetings into Salesforce.
  Every HubSpot-logged ``email_reply``, ``meeting_booked`` and ``meeting_held``
  of a shared person also appears in Salesforce as a copy: the *same kind*, the
  *same instant* (``occurred_at``, whole seconds, and for a booking the same
  ``starts_at``) and the *same subject* (``detail``, carried over verbatim). The
  Salesforce sandbox writes an e-mail copy as a completed ``Task``
  (``TaskSubtype = Email``, ``Type = Email Reply``, ``Subject`` = the HubSpot
  e-mail's subject, ``CompletedDateTime`` = its ``hs_timestamp``) and a meeting
  copy as an ``Event`` (``Subject`` = the meeting title, ``CreatedDate`` = its
  ``hs_createdate``, ``StartDateTime`` = its start; ``Type = Meeting Held`` for
  a held one), on the person's Lead or Contact. So a unifier counts one
  activity per (person, kind, ``occurred_at`` to the second, detail) across the
  two CRMs; two such activities inside one CRM are two activities.
- **The split-signals person** (``SPLIT_SIGNALS_EMAIL``) is always shared
  person 0, at position 0 of both CRMs: an ICP contact with two webinar
  signals and two downloads in HubSpot (``mql`` there alone) and a demo request
  and a meeting booked four days ahead in Salesforce (``meeting`` there alone,
  as the default rules' meeting rung needs only ``lead``); unified she is on
  ``meeting`` in both.

Without ``overlap`` (the default) a call yields one CRM's people from
``seed`` exactly as before, and ``crm`` is ignored.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from random import Random

from faker import Faker

__all__ = [
    "CRMS",
    "ICP_INDUSTRIES",
    "INDUSTRIES",
    "PROFILES",
    "SPLIT_SIGNALS_EMAIL",
    "STANDINGS",
    "FakeActivity",
    "FakeCompany",
    "FakePerson",
    "Removal",
    "generate",
    "removals",
    "shared_positions",
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

CRMS: tuple[str, ...] = ("hubspot", "salesforce")
"""The CRMs of one world (``generate(crm=...)``)."""

CUSTOMER_COMPANY_SHARE = 0.03
"""Companies that already bought: most of their people stand beyond the ladder as ``customer``."""
CUSTOMER_PEOPLE_SHARE = 0.9
"""People of a customer company who carry the standing (the others are new there, not yet flagged)."""
STANDINGS: tuple[tuple[str, float], ...] = (("opportunity", 0.01), ("evangelist", 0.002), ("other", 0.003))
"""Standings beyond or outside the ladder of people at other companies, and their share of people."""

SPLIT_SIGNALS_EMAIL = "lena.hoffmann@hoffmann-logistik.example.com"
"""The split-signals person, shared person 0 of every world (see the module docstring)."""

EMAIL_SAME, EMAIL_CASE, EMAIL_SPACES, EMAIL_ALIAS = 0.72, 0.12, 0.04, 0.12
"""How a shared person's Salesforce e-mail relates to her HubSpot one (shares; they add up to 1)."""
SALES_LOGGED_IN_HUBSPOT = 0.3
"""A shared person's sales activities a rep logged in HubSpot (e-mails and meetings then copied to Salesforce)."""
NOISE_IN_SALESFORCE = 0.2
"""A shared person's engagement noise (opens, clicks, page views) held in Salesforce instead of HubSpot."""

_SALES_KINDS = frozenset({"email_reply", "call_connected", "meeting_booked", "meeting_held"})
_COPIED_KINDS = frozenset({"email_reply", "meeting_booked", "meeting_held"})

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
    customer: bool = False
    """The company already bought (each sandbox says so its own way)."""


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
    standing: str | None = None
    """Beyond or outside the ladder (``customer``, ``opportunity``, ``evangelist``, ``other``), or ``None``."""
    additional_emails: tuple[str, ...] = ()
    """Other addresses the CRM keeps for this person (HubSpot: ``hs_additional_emails``)."""
    shared: int | None = None
    """The shared person's number when this person is in both CRMs of a world, else ``None``."""


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
    copy: bool = False
    """An integration's copy of an activity logged in the other CRM of the world (see the module docstring)."""


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


class _Pools:
    """Names, titles and companies, built once with Faker."""

    def __init__(self, rng: Random, seed: int, companies: int) -> None:
        bought = Random(seed * 6_700_417 + 3)  # its own stream: every other value stays as it was
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
                customer=bought.random() < CUSTOMER_COMPANY_SHARE,
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


def _standing(company: FakeCompany, extra: Random) -> str | None:
    """The person's standing beyond the ladder, from one draw of the ``extra`` stream."""
    draw = extra.random()
    if company.customer:
        return "customer" if draw < CUSTOMER_PEOPLE_SHARE else None
    for name, share in STANDINGS:
        if draw < share:
            return name
        draw -= share
    return None


@dataclass(slots=True)
class _Drawn:
    """One person drawn from a stream: the person, her profile, and her activities as (offset seconds, kind)."""

    person: FakePerson
    profile: str
    offsets: list[tuple[int, str]]
    details: list[str]


def _draw(
    rng: Random, pools: _Pools, now: datetime, *, number: int, index: int, count_of: Callable[[Random], int]
) -> _Drawn:
    """Draw one person from ``rng`` in the generator's historical order of draws (so ``seed`` still gives the
    data it always gave); ``count_of`` draws how many activities she has; ``number`` goes into her e-mail."""
    profile = rng.choices(_PROFILE_NAMES, _PROFILE_WEIGHTS)[0]
    if profile == "none":
        company = rng.choice(pools.other)
    elif profile in ("suspect", "prospect"):
        company = rng.choice(pools.icp)
    else:
        company = rng.choice(pools.icp if rng.random() < 0.7 else pools.other)
    first = rng.choice(pools.first_names)
    last = rng.choice(pools.last_names)
    email = f"{_ascii(first)[:20] or 'x'}.{_ascii(last)[:20] or 'y'}.{number}@{company.domain}"
    count = count_of(rng)
    signals = _signals(profile, rng)[:count]
    kinds = signals + [rng.choice(_ENGAGEMENT) for _ in range(count - len(signals))]
    span = SPAN_DAYS * 86_400
    recent = RECENT_DAYS * 86_400
    offsets = sorted(
        (rng.randrange(recent) if position < len(signals) else rng.randrange(span), kind)
        for position, kind in enumerate(kinds)
    )
    # activities oldest first; the person exists before their first activity
    oldest = offsets[-1][0] if offsets else rng.randrange(span)
    created_at = now - timedelta(seconds=oldest + rng.randrange(86_400, 30 * 86_400))
    modified_at = now - timedelta(seconds=rng.randrange(min(oldest, 86_400 * 30) + 1))
    details = [_detail(kind, rng) for _, kind in reversed(offsets)]
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
    return _Drawn(person, profile, offsets, details)


def _activities(drawn: _Drawn, now: datetime, first_index: int) -> list[FakeActivity]:
    """The drawn person's activities, oldest first, indexed from ``first_index``."""
    items = []
    for n, ((offset, kind), detail) in enumerate(zip(reversed(drawn.offsets), drawn.details, strict=True)):
        occurred_at = now - timedelta(seconds=offset)
        index = first_index + n
        items.append(
            FakeActivity(
                index=index,
                person_index=drawn.person.index,
                kind=kind,
                occurred_at=occurred_at,
                detail=detail,
                starts_at=_meeting_start(index, occurred_at) if kind == "meeting_booked" else None,
            )
        )
    return items


@dataclass(slots=True)
class _Deficit:
    """Activity counts that add up to exactly ``total`` over ``people``: each person's running deficit to the
    even share plus some spread (one draw); person ``last`` takes what is left."""

    total: int
    people: int
    last: int
    emitted: int = 0

    def count(self, draw: Random, *, index: int) -> int:
        due = (index + 1) * self.total // self.people - self.emitted
        count = max(0, min(self.total - self.emitted, due + int(draw.uniform(-0.6, 0.6) * (self.total / self.people))))
        return max(0, self.total - self.emitted) if index == self.last else count


_PROFILE_NAMES = [name for name, _ in PROFILES]
_PROFILE_WEIGHTS = [share for _, share in PROFILES]


def generate(
    contacts: int,
    activities: int,
    *,
    seed: int = 7,
    now: datetime,
    crm: str | None = None,
    overlap: float | None = None,
) -> Iterator[tuple[FakePerson, list[FakeActivity]]]:
    """``contacts`` people and ``activities`` activities in all, one person at a time.

    Each person's activities come sorted by ``occurred_at``. E-mails are
    unique. The output depends only on the arguments. Without ``overlap`` the
    total is exact; with it (one CRM of a world, ``crm`` one of :data:`CRMS`)
    each CRM's own people make up the shared people's share of the total, so it
    is exact unless the shared people alone hold more than their share.
    """
    if contacts < 0 or activities < 0:
        raise ValueError("contacts and activities must not be negative")
    if overlap is not None and not 0.0 <= overlap <= 1.0:
        raise ValueError("overlap must be between 0 and 1")
    if overlap is not None and crm not in CRMS:
        raise ValueError(f"an overlap needs crm, one of {', '.join(CRMS)}")
    if contacts == 0:
        return
    if overlap is None:
        yield from _one_crm(contacts, activities, seed=seed, now=now)
    else:
        assert crm is not None
        yield from _world_side(contacts, activities, seed=seed, now=now, crm=crm, overlap=overlap)


def _one_crm(
    contacts: int, activities: int, *, seed: int, now: datetime
) -> Iterator[tuple[FakePerson, list[FakeActivity]]]:
    rng = Random(seed)
    extra = Random(seed * 7_368_787 + 11)  # standings: a stream of their own, every other value stays as it was
    pools = _Pools(rng, seed, companies=max(1, min(contacts // 4 + 1, 40_000)))
    deficit = _Deficit(activities, contacts, last=contacts - 1)
    next_index = 0
    for index in range(contacts):
        drawn = _draw(rng, pools, now, number=index, index=index, count_of=partial(deficit.count, index=index))
        items = _activities(drawn, now, next_index)
        deficit.emitted += len(items)
        next_index += len(items)
        person = dataclasses.replace(drawn.person, standing=_standing(drawn.person.company, extra))
        yield person, items


def shared_positions(contacts: int, overlap: float) -> int:
    """How many people of ``contacts`` are in both CRMs of a world with ``overlap`` (at least the split-signals
    person); shared person ``k`` sits at position ``k * contacts // shared`` of both CRMs."""
    return max(1, min(contacts, round(overlap * contacts)))


def _world_side(
    contacts: int, activities: int, *, seed: int, now: datetime, crm: str, overlap: float
) -> Iterator[tuple[FakePerson, list[FakeActivity]]]:
    shared = shared_positions(contacts, overlap)
    # the pools are the world's (both CRMs know the same companies); each CRM's own people its own stream
    pools = _Pools(Random(seed), seed, companies=max(1, min(contacts // 4 + 1, 40_000)))
    own = Random(seed if crm == "hubspot" else seed + 1)
    extra = Random((seed if crm == "hubspot" else seed + 1) * 7_368_787 + 11)
    mean = activities / contacts
    positions = {k * contacts // shared: k for k in range(shared)}
    deficit = _Deficit(activities, contacts, last=max((i for i in range(contacts) if i not in positions), default=-1))
    next_index = 0
    for index in range(contacts):
        k = positions.get(index)
        if k is not None:
            person, items = _shared_person(k, index, crm, pools, seed=seed, now=now, mean=mean, first=next_index)
        else:
            number = shared + (0 if crm == "hubspot" else contacts) + index
            drawn = _draw(own, pools, now, number=number, index=index, count_of=partial(deficit.count, index=index))
            items = _activities(drawn, now, next_index)
            person = dataclasses.replace(drawn.person, standing=_standing(drawn.person.company, extra))
        deficit.emitted += len(items)
        next_index += len(items)
        yield person, items


def _in_hubspot(kind: str, split: Random) -> bool:
    """Where one activity of a shared person is held: marketing in HubSpot, sales in Salesforce, with exceptions."""
    if kind in _SALES_KINDS:
        return split.random() < SALES_LOGGED_IN_HUBSPOT
    if kind == "demo_request":
        return split.random() < 0.5
    if kind in _ENGAGEMENT:
        return split.random() >= NOISE_IN_SALESFORCE
    return True


def _shared_person(
    k: int, index: int, crm: str, pools: _Pools, *, seed: int, now: datetime, mean: float, first: int
) -> tuple[FakePerson, list[FakeActivity]]:
    """Shared person ``k`` as ``crm`` holds her (the same draws on both sides: a stream of her own)."""
    if k == 0:
        return _split_signals_person(index, crm, now=now, first=first)
    rng = Random(seed * 1_000_003 + k * 7_919 + 1)
    drawn = _draw(rng, pools, now, number=k, index=index,
                  count_of=lambda draw: max(0, round(mean + draw.uniform(-0.6, 0.6) * mean)))  # fmt: skip
    standing = _standing(drawn.person.company, rng)
    person = dataclasses.replace(drawn.person, standing=standing, shared=k)
    # where each activity is, and what the integration copies, decided once for both sides
    hubspot: list[FakeActivity] = []
    salesforce: list[FakeActivity] = []
    for n, ((offset, kind), detail) in enumerate(zip(reversed(drawn.offsets), drawn.details, strict=True)):
        occurred_at = now - timedelta(seconds=offset)
        starts_at = _meeting_start(k * 31 + n, occurred_at) if kind == "meeting_booked" else None
        activity = FakeActivity(0, index, kind, occurred_at, detail, starts_at)
        if _in_hubspot(kind, rng):
            hubspot.append(activity)
            if kind in _COPIED_KINDS:
                salesforce.append(dataclasses.replace(activity, copy=True))
        else:
            salesforce.append(activity)
    email = person.email
    local, _, domain = email.partition("@")
    draw = rng.random()
    if crm == "salesforce":
        if EMAIL_SAME <= draw < EMAIL_SAME + EMAIL_CASE:
            email = f"{local.title()}@{domain.capitalize()}"
        elif EMAIL_SAME + EMAIL_CASE <= draw < EMAIL_SAME + EMAIL_CASE + EMAIL_SPACES:
            email = f"  {email} "
        elif draw >= EMAIL_SAME + EMAIL_CASE + EMAIL_SPACES:
            email = _alias(person)
    elif draw >= EMAIL_SAME + EMAIL_CASE + EMAIL_SPACES:
        older = (_alias(person),) if rng.random() < 0.5 else (_alias(person), f"{local}@mail.example.net")
        person = dataclasses.replace(person, additional_emails=older)
    mine = hubspot if crm == "hubspot" else salesforce
    items = [dataclasses.replace(a, index=first + n) for n, a in enumerate(mine)]
    return dataclasses.replace(person, email=email), items


def _alias(person: FakePerson) -> str:
    """An older address of a shared person: ``amartin.12@domain`` (first initial, last name, her number)."""
    first = _ascii(person.first_name)[:1] or "x"
    return f"{first}{_ascii(person.last_name)[:20] or 'y'}.{person.shared}@{person.company.domain}"


SPLIT_SIGNALS_COMPANY = FakeCompany("Hoffmann Logistik GmbH", "hoffmann-logistik.example.com", 240, "logistics", "DE")


def _split_signals_person(index: int, crm: str, *, now: datetime, first: int) -> tuple[FakePerson, list[FakeActivity]]:
    """Lena Hoffmann: webinar + downloads in HubSpot, demo request + a meeting booked ahead in Salesforce."""
    day = timedelta(days=1)
    person = FakePerson(
        index=index,
        email=SPLIT_SIGNALS_EMAIL,
        first_name="Lena",
        last_name="Hoffmann",
        job_title="Head of Supply Chain",
        company=SPLIT_SIGNALS_COMPANY,
        created_at=now - 60 * day,
        modified_at=now - 2 * day,
        shared=0,
    )
    if crm == "hubspot":
        plan: list[tuple[str, int, str, int | None]] = [
            ("webinar_registered", 30, "Webinar: route optimisation", None),
            ("webinar_attended", 28, "Webinar: route optimisation", None),
            ("content_download", 20, "Guide: cutting transport costs", None),
            ("content_download", 12, "Case study: 30% fewer empty miles", None),
            ("page_view", 11, "/pricing", None),
        ]
    else:
        plan = [
            ("demo_request", 6, "Demo request form", None),
            ("meeting_booked", 3, "Product demo", 4),
        ]
    items = [
        FakeActivity(
            index=first + n,
            person_index=index,
            kind=kind,
            occurred_at=now - days_ago * day,
            detail=detail,
            starts_at=None if ahead is None else now + ahead * day,
        )
        for n, (kind, days_ago, detail, ahead) in enumerate(plan)
    ]
    return person, items
