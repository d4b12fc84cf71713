"""Through ``run_job`` with the real clients, on both sandbox CRMs: one person, one stage.

Each sandbox is seeded directly with the people of the story (nothing else):
her HubSpot contact and her Salesforce record share her address (in another
case and with spaces around it in Salesforce), and each CRM holds half of
her signals. SQLite always, PostgreSQL when ``CRMSYNC_TEST_POSTGRES_URL`` is set.
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
from connector.sandbox.generator import FakeActivity, FakeCompany, FakePerson
from connector.sandbox.hubspot import HubSpotSandbox, Limits
from connector.sandbox.salesforce import SalesforceSandbox, SandboxLimits
from connector.sandbox.salesforce.seed import SeedShape, seed_org
from connector.store import Store, open_store
from connector.store.tables import person_links, stage_changes
from connector.sync import RunResult, run_job
from tests.stores import StoreUrls
from tests.sync.conftest import sandbox_config

SANDBOX_NOW = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)
RUN_NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TOKEN = "pat-na1-people-tier-9f8e"
TOKEN_ENV = "CRMSYNC_PEOPLE_TIER_HUBSPOT_TOKEN"
DAY = timedelta(days=1)
ACME = FakeCompany(name="Transports Martin", domain="transports-martin.fr", employees=120, industry="logistics",
                   country="FR")  # fmt: skip

UNIFIED = Job(name="people", connections=["hubspot", "salesforce"], unify=True)
SEPARATE = Job(name="records", connections=["hubspot", "salesforce"])


def person(index: int, email: str, first: str, last: str) -> FakePerson:
    return FakePerson(index, email, first, last, "Directrice logistique", ACME, SANDBOX_NOW - 90 * DAY,
                      SANDBOX_NOW - 30 * DAY)  # fmt: skip


def act(index: int, who: int, kind: str, days_ago: float, detail: str) -> FakeActivity:
    return FakeActivity(index, who, kind, SANDBOX_NOW - timedelta(days=days_ago), detail)


# Anne: webinar + downloads in HubSpot (mql there alone); demo request + booked meeting in Salesforce.
# Bruno: the same HubSpot side; only a demo request in Salesforce (lead there alone): sql together.
# Chloé: a download and a webinar in HubSpot, and two e-mail replies HubSpot logged, which its
# Salesforce integration copied as Tasks (same subject, same instant): prospect (45 points); each
# reply counted twice would make 65 points, over the mql score of 60.
ANNE, BRUNO, CHLOE = 0, 1, 2
HUBSPOT_PEOPLE = [
    (person(ANNE, "anne.martin@transports-martin.fr", "Anne", "Martin"), [
        act(1, ANNE, "webinar_attended", 20, "Cutting transport costs"),
        act(2, ANNE, "content_download", 18, "Guide: fleet costs"),
        act(3, ANNE, "content_download", 15, "Case study: Lyon depot"),
    ]),
    (person(BRUNO, "bruno.petit@transports-martin.fr", "Bruno", "Petit"), [
        act(6, BRUNO, "webinar_attended", 20, "Cutting transport costs"),
        act(7, BRUNO, "content_download", 18, "Guide: fleet costs"),
        act(9, BRUNO, "content_download", 15, "Case study: Lyon depot"),
    ]),
    (person(CHLOE, "chloe.roux@transports-martin.fr", "Chloé", "Roux"), [
        act(11, CHLOE, "content_download", 3, "Guide: fleet costs"),
        act(13, CHLOE, "webinar_attended", 3, "Cutting transport costs"),
        act(14, CHLOE, "email_reply", 1, "Re: pricing for 40 trucks"),
        act(17, CHLOE, "email_reply", 1.5, "Re: rollout plan"),
    ]),
]  # fmt: skip
SALESFORCE_PEOPLE = [
    (person(ANNE, "  Anne.Martin@Transports-Martin.fr ", "Anne", "Martin"), [
        act(21, ANNE, "demo_request", 6, "Demo request"),
        act(22, ANNE, "meeting_booked", 2, "Intro with sales"),
    ]),
    (person(BRUNO, "Bruno.Petit@transports-martin.fr", "Bruno", "Petit"), [act(26, BRUNO, "demo_request", 6, "Demo")]),
    (person(CHLOE, "chloe.roux@transports-martin.fr", "Chloé", "Roux"), [
        act(31, CHLOE, "email_reply", 1, "Re: pricing for 40 trucks"),
        act(33, CHLOE, "email_reply", 1.5, "Re: rollout plan"),
    ]),
]  # fmt: skip


@pytest.fixture
def sandboxes() -> Iterator[tuple[HubSpotSandbox, SalesforceSandbox]]:
    hubspot = HubSpotSandbox(token=TOKEN, now=SANDBOX_NOW, limits=Limits.unlimited())
    hubspot.store.seed(HUBSPOT_PEOPLE)
    salesforce = SalesforceSandbox(now=SANDBOX_NOW, limits=SandboxLimits(page_size=50))
    # open Leads for Anne and Chloé, a Contact for Bruno; no stage set by hand
    for (who, acts), as_lead in zip(SALESFORCE_PEOPLE, (True, False, True), strict=True):
        shape = SeedShape(lead_share=1.0 if as_lead else 0.0, converted_share=0.0, staged_share=0.0, import_share=0.0)
        seed_org(salesforce.org, [(who, acts)], seed=who.index, now=SANDBOX_NOW, shape=shape)
    for table in salesforce.org.tables.values():
        table.stamp_order()
    hubspot.start()
    salesforce.start()
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


def run(world: tuple[Config, Store], job: Job) -> RunResult:
    config, store = world
    return run_job(job, config, store=store, clients=open_client, clock=lambda: RUN_NOW, heartbeat=False)


def hubspot_stages(sandbox: HubSpotSandbox) -> dict[str, str | None]:
    store = sandbox.store
    return {store.get(i, "email") or "": store.get(i, "crmsync_lifecycle_stage") for i in store.iter_contacts()}


def salesforce_stages(sandbox: SalesforceSandbox) -> dict[str, str | None]:
    stages: dict[str, str | None] = {}
    for sobject in ("Lead", "Contact"):
        for record in sandbox.org.records(sobject):
            stages[str(record["Email"]).strip().lower()] = record.get("Lifecycle_Stage__c")
    return stages


def test_given_split_signals_when_the_job_unifies_then_both_crms_show_one_stage_and_a_copy_counts_once(
    world: tuple[Config, Store], sandboxes: tuple[HubSpotSandbox, SalesforceSandbox]
) -> None:
    hubspot, salesforce = sandboxes

    first = run(world, UNIFIED)
    again = run(world, UNIFIED)

    assert first.status == again.status == "completed"
    assert hubspot_stages(hubspot) == {
        "anne.martin@transports-martin.fr": "meeting",
        "bruno.petit@transports-martin.fr": "sql",
        "chloe.roux@transports-martin.fr": "prospect",
    }
    assert salesforce_stages(salesforce) == {
        "anne.martin@transports-martin.fr": "Meeting",
        "bruno.petit@transports-martin.fr": "SQL",
        "chloe.roux@transports-martin.fr": "Prospect",
    }
    assert first.counts["hubspot"].written == first.counts["salesforce"].written == 3
    assert again.counts["hubspot"].written == again.counts["salesforce"].written == 0
    _, store = world
    with store.begin() as db:
        people = db.execute(select(person_links.c.person_id)).scalars().all()
        changes = db.execute(select(stage_changes.c.connection, stage_changes.c.to_stage)).all()
    assert len(people) == 6 and len(set(people)) == 3  # six records, three people
    assert sorted(changes) == sorted(
        [(crm, stage) for crm in ("hubspot", "salesforce") for stage in ("meeting", "sql", "prospect")]
    )


def test_a_hubspot_secondary_address_finds_her_salesforce_record(
    world: tuple[Config, Store], sandboxes: tuple[HubSpotSandbox, SalesforceSandbox]
) -> None:
    hubspot, salesforce = sandboxes
    dana = person(3, "dana@perso.example", "Dana", "Leroy")
    index = hubspot.store.add_person(dana)
    with hubspot.store.lock:
        # HubSpot keeps secondary addresses in hs_additional_emails, several separated by ";"
        hubspot.store.extra["hs_additional_emails"][index] = "not an address; Dana.Leroy@Transports-Martin.fr"
        hubspot.store.touch(index)
    for activity in [act(41, 3, "webinar_attended", 20, "Webinar"), act(42, 3, "content_download", 18, "Guide"),
                     act(43, 3, "content_download", 15, "Case study")]:  # fmt: skip
        hubspot.store.add_activity(activity, index)
    shape = SeedShape(lead_share=0.0, converted_share=0.0, staged_share=0.0, import_share=0.0)
    seed_org(salesforce.org, [(person(3, "dana.leroy@transports-martin.fr", "Dana", "Leroy"),
                               [act(44, 3, "meeting_booked", 2, "Intro")])], seed=3, now=SANDBOX_NOW, shape=shape)  # fmt: skip
    for table in salesforce.org.tables.values():
        table.stamp_order()

    run(world, UNIFIED)

    assert hubspot_stages(hubspot)["dana@perso.example"] == "meeting"
    assert salesforce_stages(salesforce)["dana.leroy@transports-martin.fr"] == "Meeting"
    _, store = world
    with store.begin() as db:
        hers = store.people.people_by_email(db, "dana.leroy@transports-martin.fr")
        assert len(hers) == 1 and len(store.people.all_links(db, hers[0])) == 2


def test_given_split_signals_when_the_job_does_not_unify_then_each_crm_decides_its_own_half(
    world: tuple[Config, Store], sandboxes: tuple[HubSpotSandbox, SalesforceSandbox]
) -> None:
    hubspot, salesforce = sandboxes

    result = run(world, SEPARATE)

    assert result.status == "completed"
    assert hubspot_stages(hubspot) == {
        "anne.martin@transports-martin.fr": "mql",
        "bruno.petit@transports-martin.fr": "mql",
        "chloe.roux@transports-martin.fr": "prospect",
    }
    # Salesforce alone: a booked meeting needs only a lead (the default rules), a demo request alone is a lead
    assert salesforce_stages(salesforce) == {
        "anne.martin@transports-martin.fr": "Meeting",
        "bruno.petit@transports-martin.fr": "Lead",
        "chloe.roux@transports-martin.fr": "Prospect",
    }


def test_a_unifying_run_resolves_form_submitters_from_the_store_not_with_extra_reads(
    world: tuple[Config, Store], sandboxes: tuple[HubSpotSandbox, SalesforceSandbox]
) -> None:
    """The HubSpot client keeps a bounded cache of e-mails; past it, the store answers. A unifying run hands
    the client the store as a one-connection run does (it did not: 6,400 extra ``contacts.batch_read`` calls
    at 100,000 people)."""
    from connector.hubspot.client import HubSpotClient, RecentEmails

    hubspot, _ = sandboxes
    config, store = world
    handed: list[str] = []

    def clients(config: Config, name: str):  # type: ignore[no-untyped-def]
        client = open_client(config, name)
        if isinstance(client, HubSpotClient):
            client._email_ids = RecentEmails(1)  # a cache of one: every other submitter must come from the store
            handed.append(name)
        return client

    hubspot.log.clear()
    result = run_job(UNIFIED, config, store=store, clients=clients, clock=lambda: RUN_NOW, heartbeat=False)

    assert result.status == "completed" and handed == ["hubspot"]
    assert hubspot.log.calls("contacts.batch_read") == 0
    assert hubspot_stages(hubspot)["anne.martin@transports-martin.fr"] == "meeting"
