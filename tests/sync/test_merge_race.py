"""A HubSpot merge that lands between the contact scan and the archived read is a merge, not a delete.

The scan reads the survivor before the merge (so its ``hs_merged_object_ids``
does not list the merged-away id yet); the archived list, read after the scan,
then shows that id archived. HubSpot reads a merged-away id as the record it
was merged into, so the client reads such ids back and tells a merge from a
delete: the merged-away contact's history and activities follow the survivor
in the same run. The merge is made in the sandbox portal right before the
client's archived read goes out (a hook on the client's transport; every call
still goes to the sandbox over HTTP). Every store backend.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from connector.config import Config
from connector.connections import connection_mapping
from connector.crm import CrmClient
from connector.hubspot.client import HubSpotClient
from connector.hubspot.transport import Operation, Response, Transport
from connector.jobs import Job
from connector.sandbox.hubspot import HubSpotSandbox
from connector.sandbox.salesforce import SalesforceSandbox
from connector.store import open_store
from connector.store.tables import activities, contacts, job_contacts, stage_changes
from connector.sync import run_job
from tests.stores import StoreUrls
from tests.sync.test_deletes_merges import count, hubspot, salesforce  # noqa: F401  (the seeded sandboxes)
from tests.sync.test_real_portal_stages import EXAMPLES, NOW, TOKEN, TOKEN_ENV, make_config


class BeforeArchivedRead(Transport):
    """The client's transport, running ``action`` (a change in the portal) just before the archived list is read."""

    def __init__(self, *args: object, action: Callable[[], None] | None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.action = action

    def send(self, operation: Operation) -> Response:
        if operation.endpoint == "contacts.list_archived" and self.action is not None:
            action, self.action = self.action, None
            action()
        return super().send(operation)


def clients(action: Callable[[], None] | None) -> Callable[[Config, str], CrmClient]:
    def build(config: Config, name: str) -> CrmClient:
        settings = config.connections[name]
        transport = BeforeArchivedRead(settings, TOKEN, action=action, pacing=False)
        mapping = connection_mapping(config, name)
        return HubSpotClient(name, settings, mapping, SecretStr(TOKEN), transport=transport)  # type: ignore[arg-type]

    return build


def test_given_a_merge_between_the_scan_and_the_archived_read_when_the_job_runs_then_it_is_a_merge(
    tmp_path: Path,
    store_urls: StoreUrls,
    hubspot: HubSpotSandbox,  # noqa: F811
    salesforce: SalesforceSandbox,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    url = store_urls.new()
    config = make_config(tmp_path, url, hubspot, salesforce)
    job = Job(name="hubspot-lifecycle", connections=["hubspot"])
    portal = hubspot.store
    index = {person.email.split("@")[0]: n for n, ((person, _), _) in enumerate(EXAMPLES)}
    victim, survivor, gone = (str(portal.contact_id(index[name])) for name in ("mql", "suspect", "prospect"))

    def merge_and_delete() -> None:
        with portal.lock:
            portal.merge(index["suspect"], index["mql"])
            portal.archive(index["prospect"])  # a real delete in the same window stays a delete

    store = open_store(url)
    try:
        first = run_job(job, config, store=store, clients=clients(None), clock=lambda: NOW, heartbeat=False)
        assert first.status == "completed"
        with store.begin() as db:
            victim_history = count(db, stage_changes, stage_changes.c.crm_id == victim)
            victim_activities = count(db, activities, activities.c.contact_crm_id == victim)
            survivor_activities = count(db, activities, activities.c.contact_crm_id == survivor)
        assert victim_history == 1 and victim_activities > 0
        reads = hubspot.log.calls("contacts.batch_read")

        again = run_job(job, config, store=store, clients=clients(merge_and_delete), clock=lambda: NOW, heartbeat=False)

        assert again.status == "completed"
        with store.begin() as db:
            for crm_id in (victim, gone):
                assert count(db, contacts, contacts.c.crm_id == crm_id) == 0
                assert count(db, job_contacts, job_contacts.c.crm_id == crm_id) == 0
            # the merged-away contact's history and activities are the survivor's, in this run
            assert count(db, stage_changes, stage_changes.c.crm_id == victim) == 0
            assert count(db, activities, activities.c.contact_crm_id == victim) == 0
            assert count(db, activities, activities.c.contact_crm_id == survivor) >= (
                survivor_activities + victim_activities
            )
            decided = db.execute(
                select(job_contacts.c.decided_stage).where(job_contacts.c.crm_id == survivor)
            ).scalar_one()
            survivor_history = count(db, stage_changes, stage_changes.c.crm_id == survivor)
    finally:
        store.close()
    assert decided == "mql"  # decided again with the activities it took over
    assert survivor_history == 1 + victim_history + 1
    assert portal.get(index["suspect"], "crmsync_lifecycle_stage") == "mql"
    # one batch read of the two ids archived since the scan began told the merge from the delete
    assert hubspot.log.calls("contacts.batch_read") - reads == 1


def test_given_nothing_archived_since_the_scan_began_then_no_id_is_read_back(
    tmp_path: Path,
    store_urls: StoreUrls,
    hubspot: HubSpotSandbox,  # noqa: F811
    salesforce: SalesforceSandbox,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    url = store_urls.new()
    config = make_config(tmp_path, url, hubspot, salesforce)
    job = Job(name="hubspot-lifecycle", connections=["hubspot"])
    store = open_store(url)
    try:
        for _ in range(2):
            result = run_job(job, config, store=store, clients=clients(None), clock=lambda: NOW, heartbeat=False)
            assert result.status == "completed"
            assert "contacts.batch_read" not in result.usage["hubspot"].calls
    finally:
        store.close()
