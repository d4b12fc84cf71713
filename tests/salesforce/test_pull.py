"""Pulling people and activities with the real simple-salesforce against the sandbox org."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connector.crm import ActivityPage, ContactPage, SkipReason
from connector.model import ActivityKind, Stage
from connector.sandbox.salesforce import SalesforceSandbox, SandboxLimits
from connector.sandbox.salesforce.seed import INDUSTRY
from connector.sandbox.salesforce.seed import format_datetime as format_stamp
from tests.salesforce.conftest import T0, ClientFactory, add_contact, add_lead, add_task, stamp


def contact_ids(pages: list[ContactPage]) -> list[str]:
    return [record.crm_id for page in pages for record in page.records]


def test_pages_follow_next_records_url_in_stamp_then_id_order(
    sandbox: SalesforceSandbox, make_client: ClientFactory
) -> None:
    created = [add_contact(sandbox, n) for n in range(12)]
    client = make_client(sandbox)
    pages = list(client.pull_contacts(None))
    assert [len(page.records) for page in pages] == [5, 5, 2]
    assert contact_ids(pages) == created
    calls = client.usage().calls
    assert calls["query"] == 2  # Lead (empty) and Contact
    assert calls["query_more"] == 2
    assert sandbox.log.counts["queryAll_more"] == 2  # people are read with queryAll (deleted rows too)


def test_stamp_ties_across_a_page_boundary_nothing_missed_or_duplicated(
    sandbox: SalesforceSandbox, make_client: ClientFactory
) -> None:
    # a bulk load: 13 records share one SystemModstamp and straddle pages of 5
    tied = stamp(100)
    early = [add_contact(sandbox, n) for n in range(3)]
    same = [add_contact(sandbox, 10 + n, modstamp=tied) for n in range(13)]
    client = make_client(sandbox)
    pages = list(client.pull_contacts(None))
    assert contact_ids(pages) == early + same

    # crash after the second page: resume from its cursor with a new client
    resumed = make_client(sandbox)
    rest = list(resumed.pull_contacts(pages[1].cursor))
    assert contact_ids(pages[:2]) + contact_ids(rest) == early + same
    assert not set(contact_ids(pages[:2])) & set(contact_ids(rest))


def test_a_page_cursor_never_claims_a_later_record(sandbox: SalesforceSandbox, make_client: ClientFactory) -> None:
    tied = stamp(50)
    for n in range(9):
        add_contact(sandbox, n, modstamp=tied)
    client = make_client(sandbox)
    first = next(iter(client.pull_contacts(None)))
    # a record changed later (and one that commits late with the same stamp) is read after resuming
    late_same_stamp = add_contact(sandbox, 99, modstamp=tied)
    changed = add_contact(sandbox, 100, modstamp=stamp(60))
    resumed = list(make_client(sandbox).pull_contacts(first.cursor))
    got = contact_ids(resumed)
    assert changed in got
    assert late_same_stamp in got  # its Id sorts after the page's last Id
    assert not set(got) & {r.crm_id for r in first.records}


def test_lookback_rereads_records_that_committed_late(
    sandbox: SalesforceSandbox, make_client: ClientFactory, org_clock: list[datetime]
) -> None:
    for n in range(3):
        add_contact(sandbox, n, modstamp=stamp(100 + n))
    org_clock[0] = T0 + timedelta(seconds=110)  # the scan begins just after those writes
    client = make_client(sandbox)
    cursor = [page.cursor for page in client.pull_contacts(None)][-1]
    # committed late: stamped before the cursor position, visible only now
    late = add_contact(sandbox, 50, modstamp=stamp(90))
    without = contact_ids(list(make_client(sandbox).pull_contacts(cursor)))
    with_lookback = contact_ids(list(make_client(sandbox, lookback_seconds=60).pull_contacts(cursor)))
    assert late not in without
    assert late in with_lookback


def test_a_quiet_org_is_not_re_read_once_the_scan_start_is_past_the_lookback(
    sandbox: SalesforceSandbox, make_client: ClientFactory, org_clock: list[datetime]
) -> None:
    # our own write-back, then a scan an hour later that reads it: the next scans read nothing again
    written = [add_contact(sandbox, n, modstamp=stamp(100 + n)) for n in range(7)]
    org_clock[0] = T0 + timedelta(hours=1)
    cursor = [page.cursor for page in make_client(sandbox, lookback_seconds=300).pull_contacts(None)][-1]
    org_clock[0] = T0 + timedelta(hours=2)
    again = make_client(sandbox, lookback_seconds=300)
    assert contact_ids(list(again.pull_contacts(cursor))) == []
    calls = again.usage().calls
    # Lead, Contact and the Contacts of changed Accounts, one empty page each
    assert calls["query"] == 3 and "query_more" not in calls
    # ...while a record changed after that scan is read, and one that may still commit late
    changed = add_contact(sandbox, 50, modstamp=format_stamp(T0 + timedelta(hours=1, minutes=30)))
    late = add_contact(sandbox, 51, modstamp=format_stamp(T0 + timedelta(minutes=58)))
    got = contact_ids(list(make_client(sandbox, lookback_seconds=300).pull_contacts(cursor)))
    # (their Accounts are new too: the Account scan hands them out once more, which the store finds unchanged)
    assert list(dict.fromkeys(got)) == [late, changed]
    assert not set(got) & set(written)


def test_without_a_date_header_the_lookback_falls_back_to_the_last_record(
    sandbox: SalesforceSandbox, make_client: ClientFactory, org_clock: list[datetime]
) -> None:
    written = [add_contact(sandbox, n, modstamp=stamp(100 + n)) for n in range(3)]
    org_clock[0] = T0 + timedelta(hours=1)
    client = make_client(sandbox, lookback_seconds=300)

    def no_date(response: Any, *args: Any, **kwargs: Any) -> None:
        response.headers.pop("Date", None)

    client.api.session.hooks["response"].insert(0, no_date)
    cursor = [page.cursor for page in client.pull_contacts(None)][-1]
    got = contact_ids(list(make_client(sandbox, lookback_seconds=300).pull_contacts(cursor)))
    # the Account scan falls back to the same rule (their Accounts share the stamps): each is read once more
    assert list(dict.fromkeys(got)) == written


def test_query_locator_expiry_requeries_from_the_last_record(
    make_client: ClientFactory, org_clock: list[datetime]
) -> None:
    # max_cursors=0: every locator is gone before it is used, so each page needs a fresh query
    with SalesforceSandbox(limits=SandboxLimits(page_size=4, max_cursors=0), clock=lambda: org_clock[0]) as org:
        created = [add_contact(org, n, modstamp=stamp(n // 3)) for n in range(11)]
        client = make_client(org)
        assert contact_ids(list(client.pull_contacts(None))) == created
        assert org.log.statuses[400] >= 2  # INVALID_QUERY_LOCATOR answers


def test_people_normalised_with_the_mapping(sandbox: SalesforceSandbox, make_client: ClientFactory) -> None:
    contact = add_contact(sandbox, 1, stage="MQL")
    lead = add_lead(sandbox, 2, stage="Bogus value")
    client = make_client(sandbox)
    records = {r.crm_id: r for page in client.pull_contacts(None) for r in page.records}
    person = records[contact]
    assert person.object_type == "Contact"
    assert person.contact.email == "ann.1@acct1.example.com"
    assert person.contact.company is not None and person.contact.company.industry == "shipping"
    assert person.contact.company.employees == 120
    assert person.contact.stage is Stage.MQL
    assert person.stage_values["Lifecycle_Stage__c"] == "MQL"
    assert records[lead].object_type == "Lead"
    assert records[lead].contact.stage is None  # outside the ladder: kept raw for the planner
    assert records[lead].stage_values["Lifecycle_Stage__c"] == "Bogus value"


def test_unnormalisable_people_are_skipped_with_a_reason(
    sandbox: SalesforceSandbox, make_client: ClientFactory
) -> None:
    bad = add_lead(sandbox, 1, email="not an address")
    good = add_lead(sandbox, 2)
    pages = list(make_client(sandbox).pull_contacts(None))
    assert contact_ids(pages) == [good]
    skipped = [s for page in pages for s in page.skipped]
    assert [s.crm_id for s in skipped] == [bad]
    assert "Email" in skipped[0].reason


def test_converted_leads_are_not_people_and_their_activities_follow_the_contact(
    sandbox: SalesforceSandbox, make_client: ClientFactory
) -> None:
    contact = add_contact(sandbox, 1)
    converted = add_lead(sandbox, 2, converted_to=contact)
    open_lead = add_lead(sandbox, 3)
    campaign = sandbox.org.insert("Campaign", {"Name": "Guide", "Type": "Content"})
    # a membership from before the conversion: LeadId only (ContactId not filled in)
    member = sandbox.org.insert(
        "CampaignMember",
        {"CampaignId": campaign, "LeadId": converted, "Status": "Responded", "HasResponded": True,
         "FirstRespondedDate": "2026-10-02", "SystemModstamp": stamp(5)},
    )  # fmt: skip
    task = add_task(sandbox, converted, 6)
    client = make_client(sandbox)
    pages = list(client.pull_contacts(None))
    assert set(contact_ids(pages)) == {contact, open_lead}
    skipped = {s.crm_id: s.reason for page in pages for s in page.skipped}
    assert contact in skipped[converted]
    assert {s.code for page in pages for s in page.skipped} == {SkipReason.CONVERTED_LEAD}
    activities = {r.crm_id: r for page in client.pull_activities(None) for r in page.records}
    assert activities[member].contact_ids == (contact,)
    assert activities[member].activity.kind == ActivityKind.CONTENT_DOWNLOAD
    assert activities[task].contact_ids == (contact,)


def test_activities_kinds_unmapped_and_skipped(sandbox: SalesforceSandbox, make_client: ClientFactory) -> None:
    who = add_contact(sandbox, 1)
    call = add_task(sandbox, who, 2, kind="call")
    reply = add_task(sandbox, who, 3, kind="reply")
    add_task(sandbox, who, 4, kind="other")  # no rule: unmapped, never guessed
    orphan = add_task(sandbox, None, 5, kind="call")  # about nobody
    meeting = sandbox.org.insert(
        "Event",
        {"WhoId": who, "Subject": "Demo", "EventSubtype": "Event", "Type": "Meeting Held",
         "StartDateTime": stamp(7), "SystemModstamp": stamp(7)},
    )  # fmt: skip
    pages: list[ActivityPage] = list(make_client(sandbox).pull_activities(None))
    kinds = {r.crm_id: r.activity.kind for page in pages for r in page.records}
    assert kinds == {call: "call_connected", reply: "email_reply", meeting: "meeting_held"}
    assert sum(page.unmapped for page in pages) == 1
    assert [s.crm_id for page in pages for s in page.skipped] == [orphan]
    occurred = next(r.activity.occurred_at for page in pages for r in page.records if r.crm_id == call)
    assert occurred == datetime(2026, 11, 1, 9, 0, 2, tzinfo=UTC)


def test_one_cursor_covers_every_activity_object(sandbox: SalesforceSandbox, make_client: ClientFactory) -> None:
    who = add_contact(sandbox, 1)
    tasks = [add_task(sandbox, who, n) for n in range(7)]
    client = make_client(sandbox)
    pages = list(client.pull_activities(None))
    assert [r.crm_id for page in pages for r in page.records] == tasks
    more = add_task(sandbox, who, 20)
    again = [r.crm_id for page in make_client(sandbox).pull_activities(pages[-1].cursor) for r in page.records]
    assert again == [more]


def test_seeded_org_round_trip(seeded: SalesforceSandbox, make_client: ClientFactory) -> None:
    client = make_client(seeded)
    people = [r for page in client.pull_contacts(None) for r in page.records]
    summary = seeded.summary
    assert len(people) == summary.leads + summary.contacts
    activities = [r for page in client.pull_activities(None) for r in page.records]
    assert len(activities) == 900  # every generated activity maps to a rule of salesforce.toml
    assert {r.object_type for r in people} == {"Lead", "Contact"}
    industries = {p.contact.company.industry for p in people if p.contact.company and p.contact.company.industry}
    assert industries <= {value.lower() for value in INDUSTRY.values()}


def test_a_lone_surrogate_skips_that_record_and_the_rest_of_the_page_syncs(
    sandbox: SalesforceSandbox, make_client: ClientFactory
) -> None:
    good = add_contact(sandbox, 1)
    bad = sandbox.org.insert(
        "Contact",
        {"FirstName": "Bad\ud800", "LastName": "Surrogate", "Email": "bad@x.example",
         "CreatedDate": stamp(2), "LastModifiedDate": stamp(2), "SystemModstamp": stamp(2)},
    )  # fmt: skip
    other = add_contact(sandbox, 3)
    client = make_client(sandbox)
    pages = list(client.pull_contacts(None))
    assert contact_ids(pages) == [good, other]
    [skipped] = [s for page in pages for s in page.skipped]
    assert skipped.crm_id == bad and skipped.code is SkipReason.UNREADABLE
    assert "first_name" in skipped.reason and "\ud800" not in skipped.reason
