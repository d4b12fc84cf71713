"""The shared generator's two-CRM world: overlapping people, split signals, copied activities, beyond-the-ladder
records; and how each sandbox stores them the way its vendor does."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from datetime import UTC, datetime

import pytest

from connector.lifecycle.rules import decide, load_rules
from connector.model import Activity, Company, Contact
from connector.sandbox.generator import (
    SPLIT_SIGNALS_EMAIL,
    FakeActivity,
    FakePerson,
    generate,
    shared_positions,
)
from connector.sandbox.hubspot import HubSpotSandbox, Limits
from connector.sandbox.hubspot.store import Store
from connector.sandbox.salesforce.org import Org
from connector.sandbox.salesforce.seed import seed_org
from connector.sandbox.salesforce.soql import parse

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
MARKETING = {"content_download", "newsletter_signup", "webinar_registered", "webinar_attended", "info_request"}
SALES = {"email_reply", "call_connected", "meeting_booked", "meeting_held"}
COPIED = {"email_reply", "meeting_booked", "meeting_held"}

World = tuple[list[tuple[FakePerson, list[FakeActivity]]], list[tuple[FakePerson, list[FakeActivity]]]]


def world(contacts: int = 1_000, activities: int = 10_000, *, overlap: float = 0.3, seed: int = 7) -> World:
    return (
        list(generate(contacts, activities, seed=seed, now=NOW, crm="hubspot", overlap=overlap)),
        list(generate(contacts, activities, seed=seed, now=NOW, crm="salesforce", overlap=overlap)),
    )


def normalised(email: str) -> str:
    return email.strip().lower()


def facts(activity: FakeActivity) -> tuple[str, datetime, str, datetime | None]:
    return activity.kind, activity.occurred_at, activity.detail, activity.starts_at


def test_each_crm_of_a_world_is_deterministic_and_has_its_own_people_beside_the_shared_ones() -> None:
    hubspot, salesforce = world()
    assert (hubspot, salesforce) == world()
    assert len(hubspot) == len(salesforce) == 1_000
    # the activity totals stay exact: each CRM's own people make up what the shared ones hold
    assert sum(len(a) for _, a in hubspot) == sum(len(a) for _, a in salesforce) == 10_000
    shared = [n for n, (person, _) in enumerate(hubspot) if person.shared is not None]
    assert shared == [n for n, (person, _) in enumerate(salesforce) if person.shared is not None]
    assert len(shared) == shared_positions(1_000, 0.3) == 300
    for n in shared:
        one, other = hubspot[n][0], salesforce[n][0]
        assert (one.shared, one.first_name, one.last_name, one.job_title, one.company, one.created_at) == (
            other.shared, other.first_name, other.last_name, other.job_title, other.company, other.created_at,
        )  # fmt: skip
    own_hubspot = [p for p, _ in hubspot if p.shared is None]
    own_salesforce = [p for p, _ in salesforce if p.shared is None]
    assert {p.first_name + p.last_name for p in own_hubspot} != {p.first_name + p.last_name for p in own_salesforce}
    # every index and activity index in order, per CRM
    for side in (hubspot, salesforce):
        assert [p.index for p, _ in side] == list(range(1_000))
        assert [a.index for _, acts in side for a in acts] == list(range(10_000))


def test_shared_people_match_on_the_normalised_email_or_a_hubspot_additional_email_and_nobody_else_does() -> None:
    hubspot, salesforce = world(2_000, 8_000)
    keys: dict[str, int] = {}
    for person, _ in hubspot:
        for address in (person.email, *person.additional_emails):
            assert normalised(address) not in keys, "one address, two HubSpot contacts"
            keys[normalised(address)] = person.index
    matched = {keys[normalised(p.email)]: p.index for p, _ in salesforce if normalised(p.email) in keys}
    shared = {p.index for p, _ in hubspot if p.shared is not None}
    assert matched == {index: index for index in shared}  # the shared ones, each with herself, nobody else
    # every way a real pair differs shows up: the same address, another case, spaces around, an older alias
    ways = Counter()
    for (one, _), (other, _) in zip(hubspot, salesforce, strict=True):
        if one.shared is None:
            continue
        if other.email == one.email:
            ways["same"] += 1
        elif other.email != other.email.strip():
            ways["spaces"] += 1
        elif normalised(other.email) == one.email:
            ways["case"] += 1
        else:
            assert normalised(other.email) in {normalised(a) for a in one.additional_emails}
            ways["alias"] += 1
    assert set(ways) == {"same", "case", "spaces", "alias"}, ways
    assert ways["same"] > ways["alias"] > ways["spaces"]


def test_signals_are_split_marketing_in_hubspot_sales_in_salesforce_and_hubspot_logged_ones_are_copied() -> None:
    hubspot, salesforce = world(2_000, 20_000)
    copies = 0
    for (one, in_hubspot), (_, in_salesforce) in zip(hubspot, salesforce, strict=True):
        originals = [a for a in in_salesforce if not a.copy]
        copied = [facts(a) for a in in_salesforce if a.copy]
        if one.shared is None:
            assert not copied
            continue
        assert not {a.kind for a in originals} & MARKETING  # marketing lives in HubSpot
        # every HubSpot-logged e-mail and meeting has its copy: same kind, instant, subject (and start)
        assert sorted(facts(a) for a in in_hubspot if a.kind in COPIED) == sorted(copied)
        assert all(a.occurred_at.microsecond == 0 for a in in_hubspot)
        copies += len(copied)
    hubspot_sales = sum(1 for p, acts in hubspot if p.shared is not None for a in acts if a.kind in SALES)
    salesforce_sales = sum(1 for p, acts in salesforce if p.shared is not None for a in acts if a.kind in SALES)
    assert copies > 20
    assert salesforce_sales > hubspot_sales  # most sales activity is logged where sales works


def person_stage(rules_path, person: FakePerson, *activity_lists: list[FakeActivity]) -> str | None:  # type: ignore[no-untyped-def]
    company = person.company
    contact = Contact(
        email=normalised(person.email),
        job_title=person.job_title,
        company=Company(name=company.name, domain=company.domain, employees=company.employees,
                        industry=company.industry, country=company.country),
        activities=tuple(
            Activity(kind=a.kind, occurred_at=a.occurred_at, detail=a.detail) for acts in activity_lists for a in acts
        ),
    )  # fmt: skip
    return decide(contact, None, load_rules(rules_path), now=NOW).stage


@pytest.mark.parametrize("overlap", [0.0, 0.3, 1.0])
def test_the_split_signals_person_is_mql_in_hubspot_meeting_in_salesforce_and_meeting_unified(
    root, overlap: float
) -> None:  # type: ignore[no-untyped-def]
    hubspot, salesforce = world(50, 400, overlap=overlap)
    (one, in_hubspot), (other, in_salesforce) = hubspot[0], salesforce[0]
    assert one.email == other.email == SPLIT_SIGNALS_EMAIL
    assert {a.kind for a in in_hubspot} >= {"webinar_registered", "webinar_attended", "content_download"}
    assert {a.kind for a in in_salesforce} == {"demo_request", "meeting_booked"}
    booked = next(a for a in in_salesforce if a.kind == "meeting_booked")
    assert booked.occurred_at < NOW < booked.starts_at  # booked this week for next week
    rules = root / "mappings" / "lifecycle.toml"
    assert person_stage(rules, one, in_hubspot) == "mql"
    assert person_stage(rules, other, in_salesforce) == "meeting"  # the meeting rung needs only a lead
    assert person_stage(rules, one, in_hubspot, in_salesforce) == "meeting"


def test_a_few_people_stand_beyond_the_ladder_most_of_them_at_customer_companies() -> None:
    people = [person for person, _ in generate(20_000, 20_000, seed=5, now=NOW)]
    standings = Counter(person.standing for person in people)
    assert set(standings) == {None, "customer", "opportunity", "evangelist", "other"}
    beyond = len(people) - standings[None]
    assert 0.02 * len(people) < beyond < 0.08 * len(people), standings  # a realistic small share
    assert all(person.company.customer for person in people if person.standing == "customer")
    at_customers = [person for person in people if person.company.customer]
    assert 0.8 < standings["customer"] / len(at_customers) <= 1.0


def test_hubspot_keeps_the_standing_in_lifecyclestage_and_the_aliases_in_hs_additional_emails() -> None:
    people, _ = world(600, 3_000)
    sandbox = HubSpotSandbox(now=NOW, limits=Limits.unlimited(), token="pat-na1-world-test")
    sandbox.store.seed(people)
    with_aliases = [p for p, _ in people if p.additional_emails]
    assert with_aliases
    with sandbox:
        for person in [with_aliases[0], *(p for p, _ in people if p.standing)][:5]:
            contact_id = sandbox.store.contact_id(person.index)
            request = urllib.request.Request(
                f"{sandbox.url}/crm/v3/objects/contacts/{contact_id}?properties=hs_additional_emails,lifecyclestage",
                headers={"Authorization": f"Bearer {sandbox.token}"},
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                properties = json.loads(answer.read())["properties"]
            assert properties["lifecyclestage"] == (person.standing or "subscriber")
            assert properties.get("hs_additional_emails") == (";".join(person.additional_emails) or None)
    store = Store()
    store.seed(people)
    stages = Counter(store.get(index, "lifecyclestage") for index in store.iter_contacts())
    assert stages["subscriber"] == sum(1 for p, _ in people if p.standing is None)


def test_salesforce_writes_customer_accounts_custom_lead_statuses_and_the_integrations_copies() -> None:
    _, people = world(1_500, 15_000)
    org = Org(now=lambda: NOW)
    summary = seed_org(org, people, seed=7, now=NOW)
    assert summary.events and summary.tasks

    def column(sobject: str, field: str, where: str = "") -> list[object]:
        rows = org.run(parse(f"SELECT Id, {field} FROM {sobject}{where}"), "62.0").rows
        return [row[org.tables[sobject].column[field]] for row in rows]

    types = Counter(column("Account", "Type"))
    assert types["Customer - Direct"] and types["Prospect"] and set(types) == {"Customer - Direct", "Prospect"}
    statuses = Counter(column("Lead", "Status"))
    assert statuses["Existing Customer"] and statuses["Closed - Converted"] and statuses["Open - Not Contacted"]
    # the demo's person: an open Lead
    assert column("Lead", "Status", f" WHERE Email = '{SPLIT_SIGNALS_EMAIL}'") == ["Open - Not Contacted"]
    # each copy is a record of the person with the HubSpot subject and instant
    copies = [a for _, acts in people for a in acts if a.copy]
    tasks = set(zip(column("Task", "Subject", " WHERE Type = 'Email Reply'"),
                    column("Task", "CompletedDateTime", " WHERE Type = 'Email Reply'"), strict=True))  # fmt: skip
    events = set(zip(column("Event", "Subject"), column("Event", "CreatedDate"), strict=True))
    assert copies
    for activity in copies:
        stamp = activity.occurred_at.strftime("%Y-%m-%dT%H:%M:%S")
        found = tasks if activity.kind == "email_reply" else events
        assert any(subject == activity.detail and str(when).startswith(stamp) for subject, when in found), activity


def test_without_an_overlap_the_stream_is_the_one_crm_stream_and_an_overlap_needs_a_crm() -> None:
    alone = list(generate(300, 900, seed=7, now=NOW))
    assert all(person.shared is None and not person.additional_emails for person, _ in alone)
    assert not any(a.copy for _, acts in alone for a in acts)
    assert list(generate(300, 900, seed=7, now=NOW, crm="hubspot")) == alone
    with pytest.raises(ValueError, match="crm"):
        list(generate(10, 10, now=NOW, overlap=0.2))
    with pytest.raises(ValueError, match="between 0 and 1"):
        list(generate(10, 10, now=NOW, crm="hubspot", overlap=1.5))
