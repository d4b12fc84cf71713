"""Malformed CRM records are reported and skipped one by one; every good record syncs as if they were not there.

Hypothesis (derandomized: the same examples every run) draws batches of bad
records: invalid or huge e-mails, employee counts that are not numbers
(unknown picklist options, wrong types), activity dates that are not dates,
activity picklist values no rule knows, and huge free-text values. They are
put into both sandboxes next to the seeded people, and one sync runs.

- a record that cannot be normalised is reported by the client
  (``SkippedRecord`` with its id) and counted in the run's ``skipped``; it is
  neither stored nor written to;
- an activity whose picklist value no rule knows is counted as ``unmapped``
  (never guessed into a kind);
- a huge value in a free-text field is not an error: that person syncs;
- every good record ends exactly as in a world without the bad ones (stage
  fields and history).

A contact *without* an e-mail is not malformed: both CRMs allow it and the
CRM id identifies the person, so it syncs (the common model's e-mail is
optional); a form submission whose e-mail matches no contact is
skipped, which the seeded data already exercises.
"""

from __future__ import annotations

import itertools
import logging
import os
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.config import Config
from connector.connections import open_client
from connector.crm import ActivityPage, ApiUsage, ContactPage, CrmClient, StageUpdate, WriteResult
from connector.errors import Problem
from connector.sandbox.hubspot.store import to_ms
from connector.sync import RunResult
from tests.chaos.conftest import CRMS, SANDBOX_NOW, World, Worlds

EXAMPLES = int(os.environ.get("CRMSYNC_CHAOS_EXAMPLES", "6"))
PEOPLE = 30
SKIP = {"email", "employees", "date"}


@dataclass(frozen=True)
class Bad:
    kind: str
    """``email``, ``employees``, ``date`` (skipped), ``picklist`` (unmapped) or ``huge_text`` (synced)."""
    value: str


local_part = st.text(alphabet=string.ascii_lowercase + string.digits + "._-", min_size=1, max_size=20)
bad_emails = st.one_of(
    local_part,  # no "@"
    local_part.map(lambda name: f"{name}@localhost"),  # no dot in the domain
    local_part.map(lambda name: f"{name} {name}@example.com"),  # a space
    st.integers(255, 20_000).map(lambda n: "a" * n + "@example.com"),  # longer than an address can be
)
bad_numbers = st.one_of(
    st.from_regex(r"[a-z]{2,12}", fullmatch=True),  # an option no range list has
    st.sampled_from(["12.5.3", "1e999", "ten-twenty", "--", "0x1F", "[]", "true"]),  # wrong types
)
bad_dates = st.one_of(
    st.from_regex(r"[a-z][a-z ]{0,15}", fullmatch=True),
    st.sampled_from(["2026-02-31", "2026-13-01T10:00:00Z", "31/12/2026", "2026-11-20T25:61:00Z", "yesterday"]),
)
unknown_options = st.from_regex(r"[A-Z][A-Z_]{3,15}", fullmatch=True).map(lambda text: f"X_{text}")
huge_texts = st.integers(10_000, 200_000).flatmap(lambda n: st.sampled_from(["x", "é", "€ "]).map(lambda c: c * n))
bad_records = st.lists(
    st.one_of(
        bad_emails.map(lambda v: Bad("email", v)),
        bad_numbers.map(lambda v: Bad("employees", v)),
        bad_dates.map(lambda v: Bad("date", v)),
        unknown_options.map(lambda v: Bad("picklist", v)),
        huge_texts.map(lambda v: Bad("huge_text", v)),
    ),
    min_size=1,
    max_size=10,
)


# ---------------------------------------------------------------------------
# what the client reported
# ---------------------------------------------------------------------------


@dataclass
class Reports:
    skipped: dict[str, str] = field(default_factory=dict)
    unmapped: int = 0
    logged: set[str] = field(default_factory=set)
    """Ids of the ``record_skipped`` events the pipeline logged."""


class SkipEvents(logging.Handler):
    def __init__(self, reports: Reports) -> None:
        super().__init__(logging.DEBUG)
        self.reports = reports

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "event", None) == "record_skipped":
            self.reports.logged.add(str(getattr(record, "crm_id", "")))


class Reporting:
    """A real client whose pages' reports (skipped ids, unmapped counts) are kept for the test."""

    def __init__(self, client: CrmClient, reports: Reports) -> None:
        self.client = client
        self.reports = reports
        self.connection = client.connection
        self.write_batch_size = client.write_batch_size

    def pull_contacts(self, cursor: str | None) -> Iterator[ContactPage]:
        for page in self.client.pull_contacts(cursor):
            self.reports.skipped.update((s.crm_id, s.reason) for s in page.skipped)
            yield page

    def pull_activities(self, cursor: str | None) -> Iterator[ActivityPage]:
        for page in self.client.pull_activities(cursor):
            self.reports.skipped.update((s.crm_id, s.reason) for s in page.skipped)
            self.reports.unmapped += page.unmapped
            yield page

    def write_stages(self, updates: Any) -> list[WriteResult]:
        batch: list[StageUpdate] = list(updates)
        return self.client.write_stages(batch)

    def check_schema(self) -> list[Problem]:
        return self.client.check_schema()

    def usage(self) -> ApiUsage:
        return self.client.usage()

    def close(self) -> None:
        self.client.close()


def sync(world: World, crm: str) -> tuple[RunResult, Reports]:
    reports = Reports()

    def clients(config: Config, name: str) -> CrmClient:
        return Reporting(open_client(config, name), reports)

    logger = logging.getLogger("connector.sync")
    handler, level = SkipEvents(reports), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        return world.run(crm, clients=clients), reports
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# ---------------------------------------------------------------------------
# putting bad records into the sandboxes
# ---------------------------------------------------------------------------


def inject_hubspot(world: World, bad: list[Bad]) -> dict[str, Bad]:
    """Bad records in the HubSpot portal; returns the id each is reported under."""
    store = world.hubspot.store
    at = to_ms(SANDBOX_NOW)
    ids: dict[str, Bad] = {}
    with store.lock:
        for n, item in enumerate(bad):
            person = {"firstname": "Bad", "lastname": f"Record{n}", "email": f"bad{n}@malformed.example.com",
                      "numemployees": "100-249", "industry": "LOGISTICS_AND_SUPPLY_CHAIN", "country": "FR"}  # fmt: skip
            if item.kind in ("email", "employees", "huge_text"):
                key = {"email": "email", "employees": "numemployees", "huge_text": "jobtitle"}[item.kind]
                index = store.add_contact({**person, key: item.value}, created_ms=at, modified_ms=at)
                ids[str(store.contact_id(index))] = item
                continue
            meetings = store.engagements["meetings"]
            completed = meetings.code_values.index("COMPLETED")
            index = meetings.add(n % PEOPLE, at, at, completed, store.details.code("Bad meeting"))
            prop = "hs_meeting_start_time" if item.kind == "date" else "hs_meeting_outcome"
            meetings.raw[(index, prop)] = item.value
            ids[f"meetings/{meetings.object_id(index)}"] = item
        store.version += 1
    return ids


def inject_salesforce(world: World, bad: list[Bad]) -> dict[str, Bad]:
    org = world.salesforce.org
    ids: dict[str, Bad] = {}
    with org.lock:
        people = [record["Id"] for record in org.records("Contact")]
        for n, item in enumerate(bad):
            if item.kind in ("email", "huge_text"):
                values = {"LastName": f"Record{n}", "Email": f"bad{n}@malformed.example.com", "MailingCountry": "FR"}
                values["Email" if item.kind == "email" else "Title"] = item.value
                ids[org.insert("Contact", values)] = item
            elif item.kind == "employees":
                lead = {"LastName": f"Record{n}", "Company": "Bad Co", "Email": f"bad{n}@malformed.example.com",
                        "NumberOfEmployees": item.value, "IsConverted": False}  # fmt: skip
                ids[org.insert("Lead", lead)] = item
            else:
                event = {"WhoId": people[n % len(people)], "Subject": "Bad meeting", "EventSubtype": "Event",
                         "Type": "Meeting Held", "StartDateTime": "2026-11-10T10:00:00.000+0000"}  # fmt: skip
                event["StartDateTime" if item.kind == "date" else "EventSubtype"] = item.value
                ids[org.insert("Event", event)] = item
    return ids


INJECT = {"hubspot": inject_hubspot, "salesforce": inject_salesforce}


def good_state(world: World, crm: str, bad_ids: set[str]) -> list[tuple[Any, ...]]:
    return [row for row in world.crm_state(crm) if str(row[0]) not in bad_ids]


def good_history(world: World, bad_ids: set[str]) -> list[tuple[Any, ...]]:
    return [row for row in world.history() if row[1] not in bad_ids]


# ---------------------------------------------------------------------------
# the test
# ---------------------------------------------------------------------------


def test_malformed_records_are_reported_and_skipped_while_every_good_record_syncs(worlds: Worlds) -> None:
    clean = worlds.new("clean", size=PEOPLE)
    expected = {crm: sync(clean, crm) for crm in CRMS}
    assert all(result.status == "completed" for result, _ in expected.values())
    numbers = itertools.count()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
    @given(bad=bad_records)
    def check(bad: list[Bad]) -> None:
        world = worlds.new(f"malformed{next(numbers)}", size=PEOPLE)
        bad_ids: set[str] = set()
        try:
            for crm in CRMS:
                injected = INJECT[crm](world, bad)
                bad_ids |= set(injected)
                result, reports = sync(world, crm)
                clean_result, clean_reports = expected[crm]
                assert result.status == "completed"
                counts = result.counts[crm]
                must_skip = {crm_id for crm_id, item in injected.items() if item.kind in SKIP}
                # each bad record reported under its own id, nothing else newly skipped
                assert set(reports.skipped) == set(clean_reports.skipped) | must_skip, crm
                assert counts.skipped == clean_result.counts[crm].skipped + len(must_skip)
                assert reports.logged == set(reports.skipped)  # the run reports each one, by id
                picklists = sum(1 for item in injected.values() if item.kind == "picklist")
                assert reports.unmapped == clean_reports.unmapped + picklists
                huge = {crm_id for crm_id, item in injected.items() if item.kind == "huge_text"}
                people_added = sum(1 for item in bad if item.kind in ("email", "employees", "huge_text"))
                assert counts.contacts_read == clean_result.counts[crm].contacts_read + len(huge)
                assert people_added >= len(huge)
                # the bad ones are never written to; the good ones end exactly as without them
                stage = 1  # the primary stage field follows the id in crm_state rows
                assert all(row[stage] is None for row in world.crm_state(crm) if str(row[0]) in must_skip)
                assert good_state(world, crm, set(injected)) == good_state(clean, crm, set())
            assert good_history(world, bad_ids) == good_history(clean, set())
        finally:
            world.store.close()
            world.hubspot.stop()
            world.salesforce.stop()
            worlds.made.remove(world)

    check()
