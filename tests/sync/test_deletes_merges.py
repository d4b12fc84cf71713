"""Contacts deleted or merged in the CRM, through ``run_job`` against the sandboxes on every store backend.

Given a synced org, when a person deletes a contact and merges another into
a third, then the deleted one leaves the store and the queue (no write, no
dead letter), the merged one's activities and history follow the survivor,
which is decided again with them, and the funnel no longer counts the deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connector.connections import open_client
from connector.jobs import Job
from connector.report import build_funnel
from connector.sandbox.hubspot import HubSpotSandbox, Limits
from connector.sandbox.salesforce import SalesforceSandbox, SandboxLimits
from connector.sandbox.salesforce.seed import SeedShape, seed_org
from connector.store import open_store
from connector.store.tables import activities, contacts, dead_letters, job_contacts, pending_writes, stage_changes
from connector.sync import run_job
from tests.stores import StoreUrls
from tests.sync.test_real_portal_stages import EXAMPLES, NOW, TOKEN, TOKEN_ENV, make_config


@pytest.fixture
def salesforce() -> Iterator[SalesforceSandbox]:
    sandbox = SalesforceSandbox(now=NOW, limits=SandboxLimits(page_size=50))
    shape = SeedShape(lead_share=0.0, converted_share=0.0, staged_share=0.0, import_share=0.0)
    seed_org(sandbox.org, [people for people, _ in EXAMPLES], seed=3, now=NOW, shape=shape)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def hubspot() -> Iterator[HubSpotSandbox]:
    sandbox = HubSpotSandbox(token=TOKEN, now=NOW, limits=Limits.unlimited())
    sandbox.store.seed([people for people, _ in EXAMPLES])
    sandbox.start()
    yield sandbox
    sandbox.stop()


def contact_ids(sandbox: SalesforceSandbox) -> dict[str, str]:
    """E-mail local part -> Contact id."""
    return {str(row["Email"]).split("@")[0]: str(row["Id"]) for row in sandbox.org.records("Contact")}


def count(db: object, table: object, *where: object) -> int:
    return int(db.execute(select(func.count()).select_from(table).where(*where)).scalar_one())  # type: ignore[attr-defined]


def test_given_a_salesforce_contact_deleted_and_one_merged_when_the_job_runs_then_they_follow_the_vendor(
    tmp_path: Path,
    store_urls: StoreUrls,
    hubspot: HubSpotSandbox,
    salesforce: SalesforceSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in salesforce.secrets_env().items():
        monkeypatch.setenv(name, value)
    url = store_urls.new()
    config = make_config(tmp_path, url, hubspot, salesforce)
    job = Job(name="salesforce-lifecycle", connections=["salesforce"])
    ids = contact_ids(salesforce)
    gone, victim, survivor = ids["prospect"], ids["mql"], ids["suspect"]
    store = open_store(url)
    try:
        first = run_job(job, config, store=store, clients=open_client, clock=lambda: NOW, heartbeat=False)
        assert first.status == "completed"
        assert build_funnel(store, job=job.name, now=NOW).total == len(EXAMPLES)
        with store.begin() as db:
            victim_history = count(db, stage_changes, stage_changes.c.crm_id == victim)
            victim_activities = count(db, activities, activities.c.contact_crm_id == victim)
        assert victim_history == 1 and victim_activities == 3
        # a change that would be written, then the record is deleted before the next run
        with salesforce.org.lock:
            salesforce.org.touch("Contact", gone, {"Lifecycle_Stage__c": None})
            salesforce.org.delete("Contact", gone)
            salesforce.org.merge("Contact", survivor, [victim])

        again = run_job(job, config, store=store, clients=open_client, clock=lambda: NOW, heartbeat=False)

        assert again.status == "completed"
        with store.begin() as db:
            for crm_id in (gone, victim):
                for table, column in (
                    (contacts, contacts.c.crm_id),
                    (job_contacts, job_contacts.c.crm_id),
                    (pending_writes, pending_writes.c.crm_id),
                    (activities, activities.c.contact_crm_id),
                ):
                    assert count(db, table, column == crm_id) == 0, (table.name, crm_id)
            assert count(db, dead_letters) == 0
            # the merged contact's history and activities are the survivor's now
            assert count(db, stage_changes, stage_changes.c.crm_id == victim) == 0
            assert count(db, activities, activities.c.contact_crm_id == survivor) == victim_activities
            assert count(db, stage_changes, stage_changes.c.crm_id == survivor) == 1 + victim_history + 1
            decided = db.execute(
                select(job_contacts.c.decided_stage).where(job_contacts.c.crm_id == survivor)
            ).scalar_one()
        funnel = build_funnel(store, job=job.name, now=NOW)
    finally:
        store.close()
    assert decided == "mql"  # re-decided with the activities it took over
    assert salesforce.org.get("Contact", survivor)["Lifecycle_Stage__c"] == "MQL"  # type: ignore[index]
    assert again.counts["salesforce"].written == 1  # the survivor only: nothing for the deleted
    assert funnel.total == len(EXAMPLES) - 2


def test_given_a_hubspot_contact_archived_and_one_merged_when_the_job_runs_then_they_follow_the_vendor(
    tmp_path: Path,
    store_urls: StoreUrls,
    hubspot: HubSpotSandbox,
    salesforce: SalesforceSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    url = store_urls.new()
    config = make_config(tmp_path, url, hubspot, salesforce)
    job = Job(name="hubspot-lifecycle", connections=["hubspot"])
    portal = hubspot.store
    # e-mail local part -> contact index (the examples are seeded in order)
    index = {person.email.split("@")[0]: n for n, ((person, _), _) in enumerate(EXAMPLES)}
    gone, victim, survivor = (str(portal.contact_id(index[name])) for name in ("prospect", "mql", "suspect"))
    store = open_store(url)
    try:
        first = run_job(job, config, store=store, clients=open_client, clock=lambda: NOW, heartbeat=False)
        assert first.status == "completed"
        assert first.counts["hubspot"].written == len(EXAMPLES)
        with store.begin() as db:
            victim_history = count(db, stage_changes, stage_changes.c.crm_id == victim)
            victim_activities = count(db, activities, activities.c.contact_crm_id == victim)
            survivor_activities = count(db, activities, activities.c.contact_crm_id == survivor)
        assert victim_history == 1 and victim_activities > 0
        with portal.lock:
            portal.set(index["prospect"], "crmsync_lifecycle_stage", "")  # a change that would be written...
            portal.touch(index["prospect"])
            portal.archive(index["prospect"])  # ...then the contact is deleted
            portal.merge(index["suspect"], index["mql"])
        before = hubspot.log.calls("contacts.list_archived")

        again = run_job(job, config, store=store, clients=open_client, clock=lambda: NOW, heartbeat=False)

        assert again.status == "completed"
        with store.begin() as db:
            for crm_id in (gone, victim):
                for table, column in (
                    (contacts, contacts.c.crm_id),
                    (job_contacts, job_contacts.c.crm_id),
                    (pending_writes, pending_writes.c.crm_id),
                    (activities, activities.c.contact_crm_id),
                ):
                    assert count(db, table, column == crm_id) == 0, (table.name, crm_id)
            assert count(db, dead_letters) == 0
            assert count(db, stage_changes, stage_changes.c.crm_id == victim) == 0
            assert count(db, activities, activities.c.contact_crm_id == survivor) >= (
                survivor_activities + victim_activities
            )
            assert count(db, stage_changes, stage_changes.c.crm_id == survivor) == 1 + victim_history + 1
            decided = db.execute(
                select(job_contacts.c.decided_stage).where(job_contacts.c.crm_id == survivor)
            ).scalar_one()
        funnel = build_funnel(store, job=job.name, now=NOW)
    finally:
        store.close()
    assert decided == "mql"
    assert portal.get(index["suspect"], "crmsync_lifecycle_stage") == "mql"
    assert portal.get(index["suspect"], "hs_merged_object_ids") == victim
    assert again.counts["hubspot"].written == 1
    assert funnel.total == len(EXAMPLES) - 2
    # the archived contacts: one list read (one page), the vendor's only way to learn of a deletion
    assert hubspot.log.calls("contacts.list_archived") - before == 1
