"""A Salesforce Account edit re-decides its Contacts on the next incremental run (every store backend)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from connector.connections import open_client
from connector.jobs import Job
from connector.sandbox.hubspot import HubSpotSandbox, Limits
from connector.sandbox.salesforce import SalesforceSandbox, SandboxLimits
from connector.store import open_store
from connector.sync import run_job
from tests.stores import StoreUrls
from tests.sync.test_real_portal_stages import NOW, TOKEN, decided, make_config


@pytest.fixture
def hubspot() -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox(token=TOKEN, now=NOW, limits=Limits.unlimited()) as sandbox:
        yield sandbox


@pytest.fixture
def clock() -> list:
    return [NOW]


@pytest.fixture
def salesforce(clock: list) -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(limits=SandboxLimits(page_size=50), clock=lambda: clock[0]) as sandbox:
        yield sandbox


def test_given_a_contact_of_a_small_software_account_when_the_account_becomes_an_icp_shipper_then_it_is_a_suspect(
    tmp_path: Path,
    store_urls: StoreUrls,
    hubspot: HubSpotSandbox,
    salesforce: SalesforceSandbox,
    clock: list,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in salesforce.secrets_env().items():
        monkeypatch.setenv(name, value)
    at = "2026-10-01T08:00:00.000+0000"
    with salesforce.org.lock:
        account = salesforce.org.insert(
            "Account", {"Name": "Studio Pixel <script>", "Website": "studio-pixel.example.com", "Industry": "Technology",
                        "NumberOfEmployees": 4, "CreatedDate": at, "LastModifiedDate": at, "SystemModstamp": at},
        )  # fmt: skip
        contact = salesforce.org.insert(
            "Contact", {"AccountId": account, "FirstName": "Siân", "LastName": "O'Neil", "Title": "Head of Fleet",
                        "Email": "sian@studio-pixel.example.com", "CreatedDate": at, "LastModifiedDate": at,
                        "SystemModstamp": at},
        )  # fmt: skip
    url = store_urls.new()
    config = make_config(tmp_path, url, hubspot, salesforce)
    job = Job(name="salesforce-lifecycle", connections=["salesforce"])
    store = open_store(url)
    try:
        first = run_job(job, config, store=store, clients=open_client, clock=lambda: clock[0], heartbeat=False)
        assert first.status == "completed"
        assert decided(store, "salesforce")["sian"] == (None, None)  # no ICP fit, no signal: no rung

        clock[0] += timedelta(hours=1)
        with salesforce.org.lock:
            salesforce.org.touch("Account", account, {"Industry": "Shipping", "NumberOfEmployees": 500})
        clock[0] += timedelta(hours=1)
        again = run_job(job, config, store=store, clients=open_client, clock=lambda: clock[0], heartbeat=False)

        assert again.status == "completed"
        assert decided(store, "salesforce")["sian"][0] == "suspect"
        assert again.counts["salesforce"].written == 1
        # the Account scan: one query on top of the Lead and Contact scans (and the activity objects')
        assert again.usage["salesforce"].calls["query"] == first.usage["salesforce"].calls["query"] + 1
    finally:
        store.close()
    assert salesforce.org.get("Contact", contact)["Lifecycle_Stage__c"] == "Suspect"  # type: ignore[index]
