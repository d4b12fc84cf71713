"""The six examples of docs/rules.md written as real-portal data, through ``run_job`` on both sandboxes and store backends.

Real portals book a meeting for next week (the booking is dated by HubSpot's
``hs_createdate`` / the Event's ``CreatedDate``, the start is ahead), take a
demo request through a form, and keep firmographics on the HubSpot company
(most contacts have none of their own) and on the Salesforce Contact's Account. Each example must land on its rung on the first run; a
HubSpot customer gets nothing written and the store says why.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from connector.config import Config
from connector.connections import open_client
from connector.jobs import Job
from connector.planner import BEYOND_LADDER
from connector.sandbox.generator import FakeActivity, FakeCompany, FakePerson
from connector.sandbox.hubspot import HubSpotSandbox, Limits
from connector.sandbox.salesforce import SalesforceSandbox, SandboxLimits
from connector.sandbox.salesforce.seed import SeedShape, seed_org
from connector.store import Store, open_store
from connector.store.tables import contacts, job_contacts
from connector.sync import run_job
from tests.stores import StoreUrls
from tests.sync.conftest import sandbox_config

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TOKEN = "pat-na1-real-portal-1a2b"
TOKEN_ENV = "CRMSYNC_REAL_PORTAL_HUBSPOT_TOKEN"

INDUSTRIAL = FakeCompany("Acier Lorrain", "acier-lorrain.example.fr", 500, "manufacturing", "FR")
SME = FakeCompany("Transports Martin", "transports-martin.example.fr", 45, "logistics", "FR")
STUDIO = FakeCompany("Studio Pixel", "studio-pixel.example.com", 4, "software", "GB")


def days(n: float) -> datetime:
    return NOW - timedelta(days=n)


def example(
    index: int, name: str, company: FakeCompany, *signals: tuple[str, float]
) -> tuple[FakePerson, list[FakeActivity]]:
    person = FakePerson(
        index=index, email=f"{name}@{company.domain}", first_name=name.capitalize(), last_name="Example",
        job_title="Logistics Manager", company=company, created_at=days(90), modified_at=days(60),
    )  # fmt: skip
    activities = [
        FakeActivity(
            index=index * 10 + n,
            person_index=index,
            kind=kind,
            occurred_at=days(age),
            detail=f"{kind} {n}",
            # the meeting in the example is booked yesterday for next week
            starts_at=NOW + timedelta(days=6) if kind == "meeting_booked" else None,
        )
        for n, (kind, age) in enumerate(signals)
    ]
    return person, activities


# email local part -> rung the first run must give
EXAMPLES = [
    (example(0, "suspect", INDUSTRIAL), "suspect"),
    (example(1, "lead", STUDIO, ("content_download", 18)), "lead"),
    (example(2, "prospect", SME, ("email_reply", 3)), "prospect"),
    (example(3, "mql", STUDIO, ("content_download", 49), ("webinar_registered", 31), ("info_request", 10)), "mql"),
    (
        example(
            4,
            "sql",
            STUDIO,
            ("content_download", 60),
            ("webinar_registered", 40),
            ("info_request", 20),
            ("demo_request", 2),
        ),
        "sql",
    ),
    (example(5, "meeting", SME, ("content_download", 30), ("meeting_booked", 1)), "meeting"),
]
ATELIER = FakeCompany("Atelier Dupont", "atelier-dupont.example.fr", 4, "software", "FR")
LATER = example(7, "later", ATELIER)
"""Fits nothing until a person corrects the company's industry and size in HubSpot."""
CUSTOMER = example(6, "customer", SME, ("content_download", 60), ("webinar_registered", 40), ("info_request", 20),
                   ("demo_request", 2))  # fmt: skip


@pytest.fixture
def hubspot() -> Iterator[HubSpotSandbox]:
    sandbox = HubSpotSandbox(token=TOKEN, now=NOW, limits=Limits.unlimited())
    sandbox.store.seed([*(people for people, _ in EXAMPLES), LATER, CUSTOMER])
    customer = sandbox.store.contact_count - 1
    with sandbox.store.lock:
        sandbox.store.set(customer, "lifecyclestage", "customer")
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def salesforce() -> Iterator[SalesforceSandbox]:
    sandbox = SalesforceSandbox(now=NOW, limits=SandboxLimits(page_size=50))
    # every person a Contact: firmographics on the Account only, as in real orgs
    shape = SeedShape(lead_share=0.0, converted_share=0.0, staged_share=0.0, import_share=0.0)
    seed_org(sandbox.org, [people for people, _ in EXAMPLES], seed=3, now=NOW, shape=shape)
    for table in sandbox.org.tables.values():
        table.stamp_order()
    sandbox.start()
    yield sandbox
    sandbox.stop()


def make_config(tmp_path: Path, url: str, hubspot: HubSpotSandbox, salesforce: SalesforceSandbox) -> Config:
    return sandbox_config(tmp_path, url, hubspot, salesforce, token_env=TOKEN_ENV, lookback_seconds=300)


def decided(store: Store, connection: str) -> dict[str, tuple[str | None, str | None]]:
    """E-mail local part -> (rung decided, rule) for every contact of ``connection``."""
    with store.begin() as db:
        rows = db.execute(
            select(contacts.c.email, job_contacts.c.decided_stage, job_contacts.c.rule)
            .join(
                job_contacts,
                (job_contacts.c.connection == contacts.c.connection) & (job_contacts.c.crm_id == contacts.c.crm_id),
            )
            .where(contacts.c.connection == connection)
        ).all()
    return {row.email.split("@")[0]: (row.decided_stage, row.rule) for row in rows}


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_given_real_portal_data_when_the_job_runs_once_then_the_six_examples_land_on_their_rungs(
    tmp_path: Path,
    store_urls: StoreUrls,
    hubspot: HubSpotSandbox,
    salesforce: SalesforceSandbox,
    monkeypatch: pytest.MonkeyPatch,
    crm: str,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    for name, value in salesforce.secrets_env().items():
        monkeypatch.setenv(name, value)
    url = store_urls.new()
    config = make_config(tmp_path, url, hubspot, salesforce)
    store = open_store(url)
    try:
        result = run_job(
            Job(name=f"{crm}-lifecycle", connections=[crm]), config, store=store, clients=open_client,
            clock=lambda: NOW, heartbeat=False,
        )  # fmt: skip
        found = decided(store, crm)
    finally:
        store.close()

    assert result.status == "completed"
    expected = {person.email.split("@")[0]: rung for (person, _), rung in EXAMPLES}
    assert {name: found[name][0] for name in expected} == expected
    assert result.counts[crm].written == len(EXAMPLES)
    if crm == "hubspot":
        # the prospect fits the ICP only through its company: the contact carries no firmographics of its own
        assert hubspot.store.get(2, "industry") is None and hubspot.store.get(2, "numemployees") is None
        # the customer: HubSpot's own stage wins, nothing written, the reason kept
        assert found["customer"] == (None, BEYOND_LADDER)
        customer = hubspot.store.contact_count - 1
        assert hubspot.store.get(customer, "crmsync_lifecycle_stage") is None
        assert hubspot.store.get(customer, "lifecyclestage") == "customer"
        meeting = 5
        assert hubspot.store.get(meeting, "crmsync_lifecycle_stage") == "meeting"
        assert hubspot.store.get(meeting, "lifecyclestage") == "salesqualifiedlead"


def test_given_a_company_corrected_in_hubspot_when_the_job_runs_again_then_its_contacts_are_re_decided(
    tmp_path: Path, store_urls: StoreUrls, hubspot: HubSpotSandbox, salesforce: SalesforceSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    url = store_urls.new()
    config = make_config(tmp_path, url, hubspot, salesforce)
    job = Job(name="hubspot-lifecycle", connections=["hubspot"])
    store = open_store(url)
    try:
        run_job(job, config, store=store, clients=open_client, clock=lambda: NOW, heartbeat=False)
        assert decided(store, "hubspot")["later"] == (None, None)
        company = hubspot.store.companies.by_domain[ATELIER.domain]
        hubspot.store.set_company(company, "industry", "LOGISTICS_AND_SUPPLY_CHAIN")
        hubspot.store.set_company(company, "numberofemployees", "80")
        before = {name: hubspot.log.calls(name) for name in ("companies.search", "contacts.batch_read")}

        again = run_job(job, config, store=store, clients=open_client, clock=lambda: NOW, heartbeat=False)

        assert decided(store, "hubspot")["later"] == ("suspect", "suspect")
    finally:
        store.close()
    counts = again.counts["hubspot"]
    assert counts.decided == 1 and counts.written == 1
    assert hubspot.store.get(hubspot.store.by_email[LATER[0].email], "crmsync_lifecycle_stage") == "suspect"
    # found by one search of the companies changed since the last run, its contacts read back in one batch
    assert hubspot.log.calls("companies.search") - before["companies.search"] == 1
    assert hubspot.log.calls("contacts.batch_read") - before["contacts.batch_read"] == 1
