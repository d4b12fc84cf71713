"""A Salesforce Lead whose Status is off the ladder (converted, disqualified, a custom value) gets nothing written.

Through ``run_job`` against the Salesforce sandbox on every store backend:
the Lead's ``Status`` is read (a guard of the mapping), never written; the
funnel counts the Lead beyond the ladder; ``validate --remote`` checks the
guard's values against the org's picklist.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.connections import open_client
from connector.jobs import Job
from connector.planner import BEYOND_LADDER
from connector.report import build_funnel
from connector.sandbox.hubspot import HubSpotSandbox, Limits
from connector.sandbox.salesforce import SalesforceSandbox, SandboxLimits
from connector.store import open_store
from connector.sync import run_job
from tests.stores import StoreUrls
from tests.sync.test_real_portal_stages import NOW, TOKEN, decided, make_config

AT = "2026-10-01T08:00:00.000+0000"


@pytest.fixture
def hubspot() -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox(token=TOKEN, now=NOW, limits=Limits.unlimited()) as sandbox:
        yield sandbox


@pytest.fixture
def salesforce() -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(now=NOW, limits=SandboxLimits(page_size=50)) as sandbox:
        yield sandbox


def add_lead(org: SalesforceSandbox, name: str, status: str) -> str:
    with org.org.lock:
        return org.org.insert(
            "Lead",
            {"FirstName": "Léa", "LastName": f"D'Arc {name}", "Email": f"{name}@fret-rapide.example.fr",
             "Title": "Responsable transport", "Company": "Fret Rapide", "Website": "fret-rapide.example.fr",
             "NumberOfEmployees": 80, "Industry": "Transportation", "Country": "FR", "Status": status,
             "IsConverted": False, "CreatedDate": AT, "LastModifiedDate": AT, "SystemModstamp": AT},
        )  # fmt: skip


def test_given_leads_on_custom_and_open_statuses_when_the_job_runs_then_only_the_open_one_is_written(
    tmp_path: Path,
    store_urls: StoreUrls,
    hubspot: HubSpotSandbox,
    salesforce: SalesforceSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in salesforce.secrets_env().items():
        monkeypatch.setenv(name, value)
    leads = {
        "open": add_lead(salesforce, "open", "Open - Not Contacted"),
        "recycled": add_lead(salesforce, "recycled", "Recycled - Nurture"),
        "converted": add_lead(salesforce, "converted", "Converted"),
    }
    url = store_urls.new()
    config = make_config(tmp_path, url, hubspot, salesforce)
    job = Job(name="salesforce-lifecycle", connections=["salesforce"])
    store = open_store(url)
    try:
        first = run_job(job, config, store=store, clients=open_client, clock=lambda: NOW, heartbeat=False)
        again = run_job(job, config, store=store, clients=open_client, clock=lambda: NOW, heartbeat=False)
        rungs = decided(store, "salesforce")
        funnel = build_funnel(store, job=job.name, config=config, now=NOW)
    finally:
        store.close()

    assert first.status == again.status == "completed"
    assert rungs["open"] == ("suspect", "suspect")
    assert rungs["recycled"] == (None, BEYOND_LADDER) and rungs["converted"] == (None, BEYOND_LADDER)
    assert first.counts["salesforce"].written == 1 and again.counts["salesforce"].written == 0
    lead = {name: salesforce.org.get("Lead", crm_id) for name, crm_id in leads.items()}
    assert lead["open"]["Lifecycle_Stage__c"] == "Suspect"  # type: ignore[index]
    for name, status in (("recycled", "Recycled - Nurture"), ("converted", "Converted")):
        assert lead[name]["Lifecycle_Stage__c"] is None  # type: ignore[index]
        assert lead[name]["Status"] == status  # type: ignore[index]
    assert lead["open"]["Status"] == "Open - Not Contacted"  # type: ignore[index]
    assert funnel.beyond_ladder == 2 and funnel.total == 3


def test_validate_remote_reports_a_guard_value_the_org_picklist_lacks(
    tmp_path: Path, salesforce: SalesforceSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connector.config import SalesforceConnection
    from connector.mapping import load_mapping
    from connector.salesforce.client import SalesforceClient
    from tests.sync.conftest import REPO

    for name, value in salesforce.secrets_env().items():
        monkeypatch.setenv(name, value)
    text = (REPO / "mappings" / "salesforce.toml").read_text()
    path = tmp_path / "salesforce.toml"
    path.write_text(text.replace('"Working - Contacted"]', '"Working - Contacted", "Nurturing"]'))
    settings = SalesforceConnection(**salesforce.connection_settings())
    client = SalesforceClient.from_settings("salesforce", settings, load_mapping(path))
    try:
        problems = [str(problem) for problem in client.check_schema()]
        shipped = SalesforceClient.from_settings(
            "salesforce", settings, load_mapping(REPO / "mappings" / "salesforce.toml")
        )
        try:
            assert shipped.check_schema() == []
        finally:
            shipped.close()
    finally:
        client.close()
    assert problems == [f"{path}: stage.guards[0].on_ladder: 'Nurturing' is not an active value of Lead.Status"]
