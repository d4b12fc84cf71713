"""Hostile records for the sandbox CRMs: the data an outsider or a careless import puts in a CRM.

``hostile_corpus(now=..., first_person=..., first_activity=...)`` gives
:class:`HostileCase` people, vendor-neutral like the generator's, that each
sandbox seeds after its ordinary people when built with ``hostile=True``.
Each payload goes into every text field a mapping reads: first and last
name, job title, company name, the details of the person's activities
(HubSpot meeting titles, e-mail subjects, call titles and form-submission
page URLs; Salesforce Task and Event subjects and Campaign names), and, for
the ``...-email`` variants, the e-mail address as well:

- ``nul``: a NUL byte (PostgreSQL text columns refuse it);
- ``surrogate``: a lone UTF-16 surrogate (``\\ud800`` escapes in the JSON bodies);
- ``markup``: rich console markup that closes tags it never opened (``[/bold]``);
- ``link``: rich markup that would become a clickable link;
- ``osc52``: an OSC 52 escape (writes the terminal's clipboard);
- ``clear``: ANSI clear-screen and cursor-home;
- ``huge``: 300 KB of text;
- ``twin-upper`` / ``twin-lower``: two people whose e-mails differ only by case;
- ``deleted``: an ordinary-looking person the CRM deletes between the pull and
  the write (the sandbox answers the write as for a deleted record).

Every hostile person is built to reach a rung (an ICP company, recent
interest, an exchange and a meeting booked), so a run that syncs it writes
a stage back, and a test can tell "landed" from "reported".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from connector.sandbox.generator import FakeActivity, FakeCompany, FakePerson

DOMAIN = "hostile.example"
HUGE = 300 * 1024

PAYLOADS: dict[str, str] = {
    "nul": "Nul\x00Byte",
    "surrogate": "Lone\ud800Surrogate",
    "markup": "[/bold]Markup[/i][bold red]",
    "link": "[link=https://evil.example]click me[/link]",
    "osc52": "\x1b]52;c;ZXZpbA==\x07Clipboard",
    "clear": "\x1b[2J\x1b[HCleared",
    "huge": "H" * HUGE,
}
"""Payload per case: the text put into every field a mapping reads."""

EMAIL_LOCAL: dict[str, str] = {
    "nul": "nul\x00byte",
    "surrogate": "lone\ud800surrogate",
    "markup": "x[/i]",
    "link": "[link=https://evil.example]x[/link]",
    "osc52": "\x1b]52;c;ZXZpbA==\x07osc",
    "clear": "\x1b[2Jclear",
    "huge": "h" * HUGE,
}
"""The local part of the e-mail of the ``<case>-email`` variants."""

SIGNALS: tuple[tuple[str, int], ...] = (
    ("content_download", 20),
    ("email_reply", 12),
    ("call_connected", 9),
    ("meeting_booked", 5),
)
"""Kinds and ages in days of every hostile person's activities: recent enough to reach a rung."""


DELETED_TIMES = 1_000_000
"""Writes to the ``deleted`` case that fail as for a deleted record (all of them, in practice)."""


@dataclass(frozen=True, slots=True)
class HostileCase:
    name: str
    """``markup``, ``markup-email``, ``twin-upper``, ``deleted``..."""
    person: FakePerson
    activities: list[FakeActivity]
    payload: str
    """The hostile text (``""`` for the twins and the deleted one)."""
    deleted: bool = False
    """The CRM deletes this record between the pull and the write."""

    @property
    def email(self) -> str:
        return self.person.email


def _case(
    name: str, payload: str, email: str, *, person: int, activity: int, now: datetime, deleted: bool = False
) -> HostileCase:
    text = payload or name.capitalize()
    company = FakeCompany(
        name=f"{text} Logistics", domain=f"{name}.{DOMAIN}", employees=120, industry="logistics", country="FR"
    )
    created = now - timedelta(days=60)
    activities = [
        FakeActivity(
            index=activity + n,
            person_index=person,
            kind=kind,
            occurred_at=now - timedelta(days=days),
            # a leading "/" keeps the text as it is in a HubSpot form submission's page URL
            detail=f"/{text}" if kind == "content_download" else text,
        )
        for n, (kind, days) in enumerate(SIGNALS)
    ]
    fake = FakePerson(
        index=person,
        email=email,
        first_name=text,
        last_name=text,
        job_title=text,
        company=company,
        created_at=created,
        modified_at=now - timedelta(days=1),
    )
    return HostileCase(name, fake, activities, payload, deleted)


def hostile_corpus(
    *, now: datetime, first_person: int, first_activity: int, email_prefix: str = ""
) -> list[HostileCase]:
    """Every hostile case, people numbered from ``first_person``, activities from ``first_activity``.

    ``email_prefix`` starts every e-mail, so that a CRM can hold the corpus twice (Leads and Contacts).
    """
    specs: list[tuple[str, str, str, bool]] = []
    for name, payload in PAYLOADS.items():
        specs.append((name, payload, f"{email_prefix}{name}@{DOMAIN}", False))
        specs.append((f"{name}-email", payload, f"{email_prefix}{EMAIL_LOCAL[name]}@{DOMAIN}", False))
    specs += [
        ("twin-upper", "", f"{email_prefix}Twin.Case@{DOMAIN}", False),
        ("twin-lower", "", f"{email_prefix}twin.case@{DOMAIN}", False),
        ("deleted", "", f"{email_prefix}deleted@{DOMAIN}", True),
    ]
    return [
        _case(
            name,
            payload,
            email,
            person=first_person + n,
            activity=first_activity + n * len(SIGNALS),
            now=now,
            deleted=deleted,
        )
        for n, (name, payload, email, deleted) in enumerate(specs)
    ]


@dataclass(frozen=True, slots=True)
class SeededCase:
    """A hostile case as a sandbox seeded it."""

    case: HostileCase
    crm_id: str
    object_type: str
    """``contacts`` (HubSpot), ``Lead`` or ``Contact`` (Salesforce)."""

    @property
    def name(self) -> str:
        return self.case.name
