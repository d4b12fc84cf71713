"""The issue's Show, Salesforce side: the same engaged person reaches ``mql`` through campaign members and tasks.

Salesforce keeps webinars as CampaignMember statuses (``Registered`` vs
``Attended`` on a ``Webinar`` campaign), marketing e-mail clicks and web visits
as Tasks: the shipped mapping reads each as a dated activity.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from connector.config import Config, PathSettings, StoreSettings
from connector.connections import open_client
from connector.jobs import Job
from connector.mapping import CrmMapping
from connector.sandbox.generator import FakeActivity, FakeCompany, FakePerson
from connector.sandbox.salesforce import SalesforceSandbox
from connector.sandbox.salesforce.seed import seed_org
from connector.store import open_store
from connector.sync import run_job
from tests.hubspot.test_engagement import SHOW_NOW
from tests.stores import StoreUrls
from tests.sync.conftest import REPO


def engaged(sandbox: SalesforceSandbox, *, registered_only: bool = False) -> None:
    company = FakeCompany("Transports Martin", "transports-martin.example", 120, "logistics", "FR")
    person = FakePerson(0, "anne.martin@transports-martin.example", "Anne", "Martin", "Directrice logistique",
                        company, SHOW_NOW - timedelta(days=40), SHOW_NOW - timedelta(days=40))  # fmt: skip
    acts = [FakeActivity(n, 0, "email_click", SHOW_NOW - timedelta(days=1 + n / 4), "Newsletter") for n in range(12)]
    acts += [FakeActivity(20 + n, 0, "page_view", SHOW_NOW - timedelta(days=1 + n // 2), "/guide") for n in range(20)]
    kind = "webinar_registered" if registered_only else "webinar_attended"
    acts.append(FakeActivity(50, 0, kind, SHOW_NOW - timedelta(days=2), "Cutting transport costs"))
    seed_org(sandbox.org, [(person, acts)], seed=3, now=SHOW_NOW)
    for table in sandbox.org.tables.values():
        table.stamp_order()


def test_the_mapping_tells_registered_from_attended(mapping: CrmMapping) -> None:
    base = {"Campaign.Type": "Webinar", "FirstRespondedDate": "2026-11-18T10:00:00.000+0000",
            "CreatedDate": "2026-11-10T10:00:00.000+0000", "Campaign.Name": "W"}  # fmt: skip
    attended = mapping.activity("CampaignMember", base | {"Status": "Attended"}, "m1")
    registered = mapping.activity("CampaignMember", base | {"Status": "Registered"}, "m2")
    assert attended is not None and attended.kind == "webinar_attended"
    assert registered is not None and registered.kind == "webinar_registered"
    assert mapping.activity("CampaignMember", base | {"Status": "No Show"}, "m3") is None


def test_show_the_same_person_in_salesforce_reaches_mql_through_campaign_members(
    tmp_path: Path,
    store_urls: StoreUrls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with SalesforceSandbox(now=SHOW_NOW) as sandbox:
        engaged(sandbox)
        for name, value in sandbox.secrets_env().items():
            monkeypatch.setenv(name, value)
        url = store_urls.new()
        config = Config(
            store=StoreSettings(url=url),
            paths=PathSettings(mappings=REPO / "mappings", jobs=tmp_path, rules=REPO / "mappings" / "lifecycle.toml"),
            connections={"salesforce": sandbox.connection_settings(lookback_seconds=300)},
            base_dir=tmp_path,
        )
        store = open_store(url)
        try:
            result = run_job(Job(name="show", connections=["salesforce"]), config, store=store, clients=open_client,
                             clock=lambda: SHOW_NOW, heartbeat=False)  # fmt: skip
        finally:
            store.close()
        assert result.status == "completed"
        stages = [r.get("Lifecycle_Stage__c") for o in ("Lead", "Contact") for r in sandbox.org.records(o)]
        assert "MQL" in stages  # the picklist value salesforce.toml maps the mql rung to
