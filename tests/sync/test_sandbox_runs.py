"""Both sandbox CRMs through the real clients and ``run_job``, on every store backend.

The integration tier's end-to-end check: SQLite always, PostgreSQL when
``CRMSYNC_TEST_POSTGRES_URL`` is set, with the ids the vendors really use
(HubSpot's numeric contact ids and 69-90 character form-submission ids,
Salesforce's 18-character ids).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connector.config import Config
from connector.connections import open_client
from connector.jobs import Job
from connector.sandbox.hubspot import HubSpotSandbox
from connector.sandbox.salesforce import SalesforceSandbox
from connector.store import Store, open_store
from connector.store.tables import activities, contacts, stage_changes
from connector.sync import run_job
from tests.stores import StoreUrls
from tests.sync.conftest import sandbox_config, started_sandboxes

PEOPLE = 30
SANDBOX_NOW = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)
RUN_NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TOKEN = "pat-na1-sync-tier-1a2b"
TOKEN_ENV = "CRMSYNC_SYNC_TIER_HUBSPOT_TOKEN"


@pytest.fixture
def sandboxes() -> Iterator[tuple[HubSpotSandbox, SalesforceSandbox]]:
    hubspot, salesforce = started_sandboxes(PEOPLE, seed=7, token=TOKEN, now=SANDBOX_NOW)
    yield hubspot, salesforce
    hubspot.stop()
    salesforce.stop()


@pytest.fixture
def world(
    tmp_path: Path,
    store_urls: StoreUrls,
    sandboxes: tuple[HubSpotSandbox, SalesforceSandbox],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Config, Store]]:
    hubspot, salesforce = sandboxes
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    for name, value in salesforce.secrets_env().items():
        monkeypatch.setenv(name, value)
    url = store_urls.new()
    config = sandbox_config(tmp_path, url, hubspot, salesforce, token_env=TOKEN_ENV, lookback_seconds=300)
    store = open_store(url)
    yield config, store
    store.close()


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_given_a_seeded_sandbox_when_the_job_runs_twice_then_it_syncs_once_and_stores_every_id_whole(
    world: tuple[Config, Store], crm: str
) -> None:
    config, store = world
    job = Job(name=f"{crm}-lifecycle", connections=[crm])

    first = run_job(job, config, store=store, clients=open_client, clock=lambda: RUN_NOW, heartbeat=False)
    again = run_job(job, config, store=store, clients=open_client, clock=lambda: RUN_NOW, heartbeat=False)

    assert first.status == again.status == "completed"
    assert first.counts[crm].written > 0
    assert again.counts[crm].written == 0
    with store.begin() as db:
        changes = db.execute(select(func.count()).select_from(stage_changes)).scalar_one()
        contact_ids = set(db.execute(select(contacts.c.crm_id)).scalars())
        longest_activity = db.execute(select(func.max(func.length(activities.c.crm_id)))).scalar_one()
    assert changes == first.counts[crm].written
    if crm == "hubspot":
        assert all(crm_id.isdigit() for crm_id in contact_ids)
        assert longest_activity > 64  # form submissions: form GUID + submission id
    else:
        assert {len(crm_id) for crm_id in contact_ids} == {18}
