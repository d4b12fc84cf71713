"""Both sandboxes seeded as one world (``generate(crm=..., overlap=...)``), one job over both connections, on both
store backends: what the real clients and the pipeline make of the overlapping people.

No unification here: each record is decided on its own. This pins what a unifier can rely on: shared people meet
on the stored (normalised) e-mail except the ones matched only through HubSpot's ``hs_additional_emails``; each
copy HubSpot's integration made in Salesforce is stored with the same kind, instant and detail as its HubSpot
original; the split-signals person is ``mql`` in HubSpot and ``meeting`` in Salesforce; HubSpot's customers and
other standings beyond the ladder get nothing written.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from connector.config import Config
from connector.connections import open_client
from connector.jobs import Job
from connector.planner import BEYOND_LADDER
from connector.sandbox.generator import SPLIT_SIGNALS_EMAIL, generate
from connector.sandbox.hubspot import HubSpotSandbox, Limits
from connector.sandbox.salesforce import SalesforceSandbox
from connector.store import open_store
from connector.store.tables import activities, contacts, job_contacts
from connector.sync import run_job
from tests.stores import StoreUrls
from tests.sync.conftest import sandbox_config

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PEOPLE, ACTIVITIES, OVERLAP, SEED = 400, 4_000, 0.3, 11
TOKEN = "pat-eu1-9f3c2a71-world"
TOKEN_ENV = "CRMSYNC_WORLD_HUBSPOT_TOKEN"
COPIED = ("email_reply", "meeting_booked", "meeting_held")


@pytest.fixture
def sandboxes() -> Iterator[tuple[HubSpotSandbox, SalesforceSandbox]]:
    common = {"contacts": PEOPLE, "activities": ACTIVITIES, "seed": SEED, "now": NOW, "overlap": OVERLAP}
    hubspot = HubSpotSandbox(token=TOKEN, limits=Limits.unlimited(), **common)  # type: ignore[arg-type]
    salesforce = SalesforceSandbox(**common)  # type: ignore[arg-type]
    with hubspot, salesforce:
        yield hubspot, salesforce


def make_config(tmp_path: Path, url: str, hubspot: HubSpotSandbox, salesforce: SalesforceSandbox) -> Config:
    return sandbox_config(tmp_path, url, hubspot, salesforce, token_env=TOKEN_ENV, timeout_seconds=5.0)


def test_given_one_world_in_both_sandboxes_when_a_job_over_both_runs_then_the_overlap_is_what_a_unifier_needs(
    tmp_path: Path,
    store_urls: StoreUrls,
    sandboxes: tuple[HubSpotSandbox, SalesforceSandbox],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hubspot, salesforce = sandboxes
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    for name, value in salesforce.secrets_env().items():
        monkeypatch.setenv(name, value)
    url = store_urls.new()
    store = open_store(url)
    try:
        result = run_job(
            Job(name="both-crms", connections=["hubspot", "salesforce"]), make_config(tmp_path, url, hubspot, salesforce),
            store=store, clients=open_client, clock=lambda: NOW, heartbeat=False,
        )  # fmt: skip
        with store.begin() as db:
            stored = {
                (row.connection, row.crm_id): (row.email, row.decided_stage, row.rule)
                for row in db.execute(
                    select(
                        contacts.c.connection,
                        contacts.c.crm_id,
                        contacts.c.email,
                        job_contacts.c.decided_stage,
                        job_contacts.c.rule,
                    ).join(
                        job_contacts,
                        (job_contacts.c.connection == contacts.c.connection)
                        & (job_contacts.c.crm_id == contacts.c.crm_id),
                    )
                )
            }
            facts: dict[tuple[str, str], list[tuple[str, datetime, str | None]]] = {}
            for row in db.execute(
                select(
                    activities.c.connection,
                    activities.c.contact_crm_id,
                    activities.c.kind,
                    activities.c.occurred_at,
                    activities.c.detail,
                )
            ):
                facts.setdefault((row.connection, row.contact_crm_id), []).append(
                    (row.kind, row.occurred_at, row.detail)
                )
    finally:
        store.close()
    assert result.status == "completed"

    hubspot_people = list(generate(PEOPLE, ACTIVITIES, seed=SEED, now=NOW, crm="hubspot", overlap=OVERLAP))
    salesforce_people = list(generate(PEOPLE, ACTIVITIES, seed=SEED, now=NOW, crm="salesforce", overlap=OVERLAP))
    hubspot_id = {p.index: str(hubspot.store.contact_id(p.index)) for p, _ in hubspot_people}
    salesforce_id = {p.index: salesforce.org.person_ids[p.index] for p, _ in salesforce_people}

    # e-mails: the stored addresses of the two CRMs meet exactly on the shared people HubSpot does not keep as an alias
    by_email = {
        stored[("hubspot", crm_id)][0]: index for index, crm_id in hubspot_id.items() if ("hubspot", crm_id) in stored
    }
    met = {
        by_email[email]: index
        for index, crm_id in salesforce_id.items()
        if (email := stored[("salesforce", crm_id)][0]) in by_email
    }
    aliased = {p.index for p, _ in hubspot_people if p.additional_emails}
    shared = {p.index for p, _ in hubspot_people if p.shared is not None}
    assert met == {index: index for index in shared - aliased}
    assert aliased and aliased <= shared

    # copies: each HubSpot e-mail and meeting of a shared person that was copied is stored on the Salesforce side
    # with the same kind, the same instant and the same detail
    copies = 0
    for (person, _), (_, theirs) in zip(hubspot_people, salesforce_people, strict=True):
        if person.shared is None:
            continue
        mine = [f for f in facts.get(("hubspot", hubspot_id[person.index]), []) if f[0] in COPIED]
        other = facts.get(("salesforce", salesforce_id[person.index]), [])
        for fact in mine:
            assert fact in other, (person.email, fact)
        copies += sum(1 for a in theirs if a.copy)
        assert len(mine) == sum(1 for a in theirs if a.copy)  # every copy read, none missed on HubSpot's side
    assert copies > 0

    # the split-signals person, decided record by record (no unification): mql in HubSpot, meeting in Salesforce
    assert stored[("hubspot", hubspot_id[0])][:2] == (SPLIT_SIGNALS_EMAIL, "mql")
    assert stored[("salesforce", salesforce_id[0])][:2] == (SPLIT_SIGNALS_EMAIL, "meeting")

    # HubSpot's standings beyond the ladder: nothing written, the reason kept
    beyond = {index for index, crm_id in hubspot_id.items() if stored[("hubspot", crm_id)][2] == BEYOND_LADDER}
    assert beyond == {p.index for p, _ in hubspot_people if p.standing is not None}
    assert beyond
    for index in beyond:
        assert hubspot.store.get(index, "crmsync_lifecycle_stage") is None
