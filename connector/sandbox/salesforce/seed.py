"""Seeding the sandbox org from the shared, vendor-neutral generator.

People become Leads (open), Contacts (with their Accounts) or converted
Leads (a Lead with ``IsConverted`` pointing at the Contact that now holds
the person). Canonical activity kinds become the records a Salesforce org
holds for them, consistent with ``mappings/salesforce.toml``: Tasks (calls,
e-mail replies, e-mail opens and clicks, web visits), Events (meetings) and
CampaignMembers of Campaigns by Type and member Status.

A share of records carries one bulk-import ``SystemModstamp``: real orgs
have many records with one stamp, which is what breaks naive paging.

Beyond the ladder: a customer company's Account has ``Type = "Customer -
Direct"`` (others ``Prospect``), and an open Lead whose person has a standing
gets a Status outside the ladder (``LEAD_STATUS``). An activity the generator
marks as a copy (``FakeActivity.copy``: HubSpot's Salesforce integration
copied it from HubSpot) is written the way that integration writes it: an
e-mail as a completed Task, a meeting as an Event, the subject carried over
(see ``connector.sandbox.generator``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from random import Random

from connector.sandbox.generator import SPLIT_SIGNALS_EMAIL, FakeActivity, FakeCompany, FakePerson, Removal
from connector.sandbox.hostile import HostileCase
from connector.sandbox.salesforce.org import Org, format_datetime, object_of
from connector.sandbox.salesforce.schema import STAGE_VALUES

INDUSTRY: dict[str, str] = {
    "logistics": "Shipping",
    "manufacturing": "Manufacturing",
    "retail": "Retail",
    "wholesale": "Wholesale",
    "transportation": "Transportation",
    "software": "Technology",
    "finance": "Finance",
    "healthcare": "Healthcare",
    "education": "Education",
}
"""Neutral industry keys to the org's Industry picklist (the ICP of lifecycle.toml knows the first five)."""

_TASKS: dict[str, tuple[str, str, str | None]] = {
    # kind: (TaskSubtype, Type, CallDisposition)
    "call_connected": ("Call", "Call", "Connected"),
    "email_reply": ("Email", "Email Reply", None),
    "email_open": ("Email", "Email Open", None),
    "email_click": ("Email", "Email Click", None),
    "page_view": ("Task", "Web Visit", None),
}
_EVENTS: dict[str, str] = {"meeting_booked": "Meeting", "meeting_held": "Meeting Held"}
LEAD_STATUS: dict[str, str] = {
    "customer": "Existing Customer",
    "evangelist": "Existing Customer",
    "other": "Partner",
    "opportunity": "Working - Contacted",
}
"""An open Lead's Status by the person's standing (custom values outside the ladder for the first three)."""
_MEMBERS: dict[str, tuple[str, str, bool]] = {
    # kind: (Campaign.Type, member Status, HasResponded)
    "webinar_registered": ("Webinar", "Registered", False),
    "webinar_attended": ("Webinar", "Attended", True),
    "content_download": ("Content", "Responded", True),
    "newsletter_signup": ("Email", "Subscribed", False),
    "demo_request": ("Demo Request", "Responded", True),
    "info_request": ("Web Form", "Responded", True),
}


@dataclass(frozen=True, slots=True)
class SeedShape:
    """How people split and how stamps look; shares are of all people."""

    lead_share: float = 0.40
    converted_share: float = 0.10
    staged_share: float = 0.05
    """People whose stage field already holds a value (set by hand)."""
    import_share: float = 0.30
    """Records whose SystemModstamp is one bulk-import instant."""


@dataclass(slots=True)
class SeedSummary:
    leads: int = 0
    contacts: int = 0
    converted: int = 0
    accounts: int = 0
    tasks: int = 0
    events: int = 0
    members: int = 0
    campaigns: int = 0


class _Seeder:
    def __init__(self, org: Org, rng: Random, shape: SeedShape, now: datetime) -> None:
        self.org = org
        self.rng = rng
        self.shape = shape
        self.import_stamp = format_datetime(now - timedelta(hours=1))
        self.accounts: dict[str, str] = {}
        self.campaigns: dict[tuple[str, str], str] = {}
        self.summary = SeedSummary()

    def stamps(self, created: datetime, modified: datetime) -> dict[str, str]:
        created_text = format_datetime(created)
        modified_text = format_datetime(max(created, modified))
        stamp = self.import_stamp if self.rng.random() < self.shape.import_share else modified_text
        return {"CreatedDate": created_text, "LastModifiedDate": modified_text, "SystemModstamp": stamp}

    def account(self, company: FakeCompany, created: datetime) -> str:
        found = self.accounts.get(company.domain)
        if found is None:
            found = self.org.insert(
                "Account",
                {
                    "Name": company.name,
                    "Website": company.domain,
                    "NumberOfEmployees": company.employees,
                    "Industry": INDUSTRY.get(company.industry, "Other"),
                    "Type": "Customer - Direct" if company.customer else "Prospect",
                    "BillingCountry": company.country,
                    **self.stamps(created, created),
                },
            )
            self.accounts[company.domain] = found
            self.summary.accounts += 1
        return found

    def campaign(self, kind: str, name: str, variant: int) -> str:
        campaign_type = _MEMBERS[kind][0]
        title = name if variant == 0 else f"{name} ({variant + 1})"
        key = (campaign_type, title)
        found = self.campaigns.get(key)
        if found is None:
            found = self.org.insert("Campaign", {"Name": title, "Type": campaign_type, "IsActive": True})
            self.campaigns[key] = found
            self.summary.campaigns += 1
        return found

    def person(self, person: FakePerson, activities: list[FakeActivity], *, as_object: str | None = None) -> str:
        """Insert one person (and activities); the id of the record that stands for them (Contact if any).

        ``as_object`` (``Lead`` or ``Contact``) forces an open Lead or a Contact without a stage.
        """
        draw = self.rng.random()
        stage = self.rng.choice(STAGE_VALUES) if self.rng.random() < self.shape.staged_share else None
        if person.email == SPLIT_SIGNALS_EMAIL:
            as_object = "Lead"  # the demo's split-signals person: an open Lead with no stage set by hand
        if as_object is not None:
            draw, stage = (0.0 if as_object == "Lead" else 1.0), None
        stamps = self.stamps(person.created_at, person.modified_at)
        lead_id: str | None = None
        contact_id: str | None = None
        converted = False
        if draw < self.shape.lead_share + self.shape.converted_share:
            converted = draw >= self.shape.lead_share
            company = person.company
            lead_id = self.org.insert(
                "Lead",
                {
                    "FirstName": person.first_name,
                    "LastName": person.last_name,
                    "Email": person.email,
                    "Title": person.job_title,
                    "Company": company.name,
                    "Website": company.domain,
                    "NumberOfEmployees": company.employees,
                    "Industry": INDUSTRY.get(company.industry, "Other"),
                    "Country": company.country,
                    "Status": "Closed - Converted"
                    if converted
                    else LEAD_STATUS.get(person.standing or "", "Open - Not Contacted"),
                    "IsConverted": converted,
                    "Lifecycle_Stage__c": None if converted else stage,
                    **stamps,
                },
            )
            if not converted:
                self.summary.leads += 1
        if lead_id is None or converted:
            contact_id = self.org.insert(
                "Contact",
                {
                    "AccountId": self.account(person.company, person.created_at),
                    "FirstName": person.first_name,
                    "LastName": person.last_name,
                    "Email": person.email,
                    "Title": person.job_title,
                    "MailingCountry": person.company.country,
                    "Lifecycle_Stage__c": stage,
                    **stamps,
                },
            )
            self.summary.contacts += 1
            if lead_id is not None:
                self.org.touch(
                    "Lead",
                    lead_id,
                    {"ConvertedContactId": contact_id, "ConvertedDate": stamps["LastModifiedDate"][:10]},
                    stamp=stamps["SystemModstamp"],
                )
                self.summary.converted += 1
        # on conversion Salesforce moves Tasks and Events to the Contact; campaign
        # memberships keep the LeadId and gain the ContactId
        who = contact_id or lead_id
        assert who is not None
        used: set[str] = set()
        for activity in activities:
            self.activity(activity, who, lead_id, contact_id, used)
        return who

    def activity(
        self, activity: FakeActivity, who: str, lead_id: str | None, contact_id: str | None, used: set[str]
    ) -> None:
        at = activity.occurred_at
        kind = activity.kind
        if activity.copy:
            self.copied(activity, who)
        elif kind in _TASKS:
            subtype, task_type, disposition = _TASKS[kind]
            subject = f"Visited {activity.detail}" if kind == "page_view" else activity.detail
            self.org.insert(
                "Task",
                {
                    "WhoId": who,
                    "Subject": subject,
                    "TaskSubtype": subtype,
                    "Type": task_type,
                    "Status": "Completed",
                    "CallDisposition": disposition,
                    "ActivityDate": at.date().isoformat(),
                    "CompletedDateTime": format_datetime(at),
                    **self.stamps(at, at),
                },
            )
            self.summary.tasks += 1
        elif kind in _EVENTS:
            booked = at - timedelta(days=self.rng.randrange(1, 14))
            modified = at
            if activity.starts_at is not None:
                # booked at ``at`` (CreatedDate) for a start that may still be ahead; last edited when booked
                booked, modified, at = at, at, activity.starts_at
            self.org.insert(
                "Event",
                {
                    "WhoId": who,
                    "Subject": activity.detail,
                    "EventSubtype": "Event",
                    "Type": _EVENTS[kind],
                    "StartDateTime": format_datetime(at),
                    "EndDateTime": format_datetime(at + timedelta(minutes=30)),
                    **self.stamps(booked, modified),
                },
            )
            self.summary.events += 1
        else:
            _, status, responded = _MEMBERS.get(kind, ("Webinar", "Sent", False))
            if kind not in _MEMBERS:
                kind, status, responded = "webinar_registered", "Sent", False  # an unknown kind: a plain send
            variant = 0
            while (campaign_id := self.campaign(kind, activity.detail, variant)) in used:
                variant += 1
            used.add(campaign_id)
            created = at if not responded else at - timedelta(days=self.rng.randrange(0, 10))
            self.org.insert(
                "CampaignMember",
                {
                    "CampaignId": campaign_id,
                    "LeadId": lead_id,
                    "ContactId": contact_id,
                    "Status": status,
                    "HasResponded": responded,
                    "FirstRespondedDate": at.date().isoformat() if responded else None,
                    **self.stamps(created, at),
                },
            )
            self.summary.members += 1

    def copied(self, activity: FakeActivity, who: str) -> None:
        """HubSpot's Salesforce integration's copy of a HubSpot e-mail (a completed Task) or meeting (an Event):
        same instant, subject carried over verbatim, on the person's Lead or Contact."""
        at = activity.occurred_at
        if activity.kind in _EVENTS:
            start = activity.starts_at or at
            self.org.insert(
                "Event",
                {
                    "WhoId": who,
                    "Subject": activity.detail,
                    "EventSubtype": "Event",
                    "Type": _EVENTS[activity.kind],
                    "StartDateTime": format_datetime(start),
                    "EndDateTime": format_datetime(start + timedelta(minutes=30)),
                    **self.stamps(at, at),
                },
            )
            self.summary.events += 1
            return
        self.org.insert(
            "Task",
            {
                "WhoId": who,
                "Subject": activity.detail,
                "TaskSubtype": "Email",
                "Type": "Email Reply",
                "Status": "Completed",
                "CallDisposition": None,
                "ActivityDate": at.date().isoformat(),
                "CompletedDateTime": format_datetime(at),
                **self.stamps(at, at),
            },
        )
        self.summary.tasks += 1


def seed_org(
    org: Org,
    people: Iterable[tuple[FakePerson, list[FakeActivity]]],
    *,
    seed: int,
    now: datetime,
    shape: SeedShape | None = None,
) -> SeedSummary:
    """Translate generated people and activities into the org's records."""
    seeder = _Seeder(org, Random(seed + 1), shape or SeedShape(), now)
    for person, activities in people:
        org.person_ids[person.index] = seeder.person(person, activities)
    return seeder.summary


def apply_removals(org: Org, removals: Iterable[Removal]) -> tuple[int, int]:
    """Delete and merge seeded people as a user would (``generator.removals``); returns (deleted, merged).

    Salesforce merges records of one object only: a merge of a Lead with a Contact cannot happen and is
    left out (the Lead would be converted instead)."""
    deleted = merged = 0
    with org.lock:
        for removal in removals:
            victim = org.person_ids.get(removal.index)
            if victim is None or org.is_deleted(object_of(victim) or "", victim):
                continue
            sobject = object_of(victim) or ""
            if removal.into is None:
                org.delete(sobject, victim)
                deleted += 1
                continue
            survivor = org.person_ids.get(removal.into)
            if survivor is None or object_of(survivor) != sobject or org.is_deleted(sobject, survivor):
                continue
            org.merge(sobject, survivor, [victim])
            merged += 1
    return deleted, merged


def seed_people(org: Org, cases: Iterable[HostileCase], sobject: str, *, now: datetime) -> list[str]:
    """Insert each case's person as a ``sobject`` (``Lead`` or ``Contact``), with its activities; their ids."""
    seeder = _Seeder(org, Random(0), SeedShape(import_share=0.0), now)
    return [seeder.person(case.person, case.activities, as_object=sobject) for case in cases]
