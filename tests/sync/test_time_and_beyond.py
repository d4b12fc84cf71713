"""Time passing and stages beyond the ladder, through ``run_job`` on every store backend.

Given a contact whose only signal is a meeting held next week, when runs come
before and after that moment, then it moves when the moment comes, on a run
that pulls nothing. Given a HubSpot customer, nothing is written and the store
says why, once.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from connector.planner import BEYOND_LADDER
from connector.store import Store
from connector.store.tables import job_contacts
from tests.fakes import FakeCrm
from tests.sync.conftest import ICP, NOW, Runner, history


def queue_row(store: Store, crm_id: str) -> tuple[object, ...]:
    c = job_contacts.c
    with store.begin() as db:
        row = db.execute(
            select(c.dirty, c.decided_stage, c.rule, c.reasons, c.decide_again_at).where(c.crm_id == crm_id)
        ).one()
    return tuple(row)


def test_given_a_meeting_held_next_week_when_its_moment_comes_then_a_run_with_nothing_pulled_moves_it(
    runner: Runner, crm: FakeCrm, store: Store
) -> None:
    start = NOW + timedelta(days=7)
    crm.add_contact("m0001", "held@example.fr", company=ICP)
    crm.add_activity("m0001-held", "meeting_held", start, ["m0001"], "Intro meeting")

    runner()
    assert crm.stage_of("m0001") == "suspect"  # the meeting has not happened yet
    assert queue_row(store, "m0001")[4] == start

    runner.now = NOW + timedelta(days=3)
    early = runner()
    assert early.counts["hubspot"].decided == 0  # not yet: nothing re-decided

    runner.now = start + timedelta(minutes=5)
    later = runner()

    counts = later.counts["hubspot"]
    assert counts.contacts_changed == 0  # nothing new pulled (the cursor's lookback re-reads, unchanged)
    assert counts.decided == 1 and counts.written == 1
    assert crm.stage_of("m0001") == "meeting"
    assert queue_row(store, "m0001")[4] is None
    assert [row[5] for row in history(store) if row[1] == "m0001"] == ["suspect", "meeting"]


def test_given_a_hubspot_customer_when_the_job_runs_then_nothing_is_written_and_the_store_says_why(
    runner: Runner, crm: FakeCrm, store: Store
) -> None:
    crm.set_value("c0004", "lifecyclestage", "customer")  # the rules alone say sql

    runner()
    again = runner()

    assert crm.stage_of("c0004") is None
    assert crm.people["c0004"].values["lifecyclestage"] == "customer"
    assert not [row for row in history(store) if row[1] == "c0004"]
    dirty, stage, rule, reasons, _ = queue_row(store, "c0004")
    assert (dirty, stage, rule) == (False, None, BEYOND_LADDER)
    assert reasons == ["CRM lifecyclestage is 'customer', outside the ladder: the CRM's stage wins, nothing written"]
    assert again.counts["hubspot"].written == 0
