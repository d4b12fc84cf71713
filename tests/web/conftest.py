"""Fixtures of the dashboard tier: a store filled by REAL runs of two jobs against fake CRMs.

On SQLite always, and on PostgreSQL when ``CRMSYNC_TEST_POSTGRES_URL`` is set
(in a schema of its own, dropped after). The store is built once per module
and backend; every test only reads it.

What the runs leave (the page as of ``NOW``):

- ``hubspot-lifecycle``: run 1 completed (three records rejected, two causes),
  run 2 completed (``c0003`` moved mql -> sql), run 3 failed (quota used up);
  its health is "failing".
- ``salesforce-lifecycle``: one completed run ten minutes ago; healthy.
- Hostile strings from the CRM (``HOSTILE``) in names, a record id, an
  activity detail and a rejection reason.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connector.config import Config, HubSpotConnection, PathSettings, SalesforceConnection, StoreSettings
from connector.errors import QuotaExhausted
from connector.jobs import Job
from connector.mapping import load_mapping
from connector.model import Company
from connector.store import Store, open_store
from connector.sync import RunResult, run_job
from connector.web.reads import run_list
from tests.fakes import FakeCrm
from tests.stores import BACKENDS, StoreUrls

REPO = Path(__file__).resolve().parents[2]

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ICP = Company(name="Transports Martin", domain="example.fr", employees=120, industry="logistics", country="FR")
OFF_ICP = Company(name="Boulangerie", domain="example.com", employees=3, industry="food", country="FR")

HOSTILE = "<script>alert('pwned')</script> [/bold] \x1b[31mred\x1b[0m \u202eevil"
"""What a CRM may send back: HTML, rich markup, ANSI escapes, a bidi override."""
HOSTILE_NUL = HOSTILE + " nul\x00here"
"""With a NUL byte: only where the store keeps it inside JSON (PostgreSQL text refuses NUL)."""
HOSTILE_ID = "evil<script>x</script>"
HOSTILE_EMAIL = "hostile@example.fr"
SHARED_EMAIL = "anne.martin@example.fr"
"""The same person in both CRMs: the contact page shows two records."""

HUBSPOT_JOB = Job(name="hubspot-lifecycle", connections=["hubspot"], schedule="*/15 * * * *")
SALESFORCE_JOB = Job(name="salesforce-lifecycle", connections=["salesforce"], schedule="7-59/15 * * * *")

PICKLIST = "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


def make_config(folder: Path, store_url: str) -> Config:
    jobs = folder / "jobs"
    jobs.mkdir(exist_ok=True)
    for job in (HUBSPOT_JOB, SALESFORCE_JOB):
        (jobs / f"{job.name}.toml").write_text(
            f'name = "{job.name}"\nconnections = {job.connections!r}\nschedule = "{job.schedule}"\n'.replace("'", '"'),
            encoding="utf-8",
        )
    return Config(
        store=StoreSettings(url=store_url),
        paths=PathSettings(mappings=REPO / "mappings", jobs=jobs, rules=REPO / "mappings" / "lifecycle.toml"),
        connections={
            "hubspot": HubSpotConnection(type="hubspot", token_env="CRMSYNC_TEST_HUBSPOT_TOKEN"),
            "salesforce": SalesforceConnection(type="salesforce", instance_url="https://example.my.salesforce.com"),
        },
        base_dir=folder,
    )


def _activities(crm: FakeCrm, crm_id: str, profile: int, base: datetime) -> None:
    """Profile 0 fits nothing, 1 suspect, 2 lead, 3 mql, 4 sql, 5 meeting (mappings/lifecycle.toml)."""
    if profile >= 2:
        crm.add_activity(f"{crm_id}-1", "content_download", base + DAY, [crm_id], "Guide: cutting transport costs")
    if profile >= 3:
        crm.add_activity(f"{crm_id}-2", "content_download", base + 2 * DAY, [crm_id], "Case study")
        crm.add_activity(f"{crm_id}-3", "webinar_attended", base + 3 * DAY, [crm_id], "Webinar")
    if profile == 4:
        crm.add_activity(f"{crm_id}-4", "demo_request", base + 4 * DAY, [crm_id], "Demo form")
    if profile == 5:
        crm.add_activity(f"{crm_id}-5", "meeting_booked", base + 5 * DAY, [crm_id], "Intro call")


def hubspot_crm() -> FakeCrm:
    crm = FakeCrm(mapping=load_mapping(REPO / "mappings" / "hubspot.toml"), connection="hubspot")
    base = NOW - timedelta(days=40)
    for i in range(24):
        crm_id = f"c{i:04d}"
        email = SHARED_EMAIL if i == 3 else f"person{i}@example.fr"
        crm.add_contact(crm_id, email, company=OFF_ICP if i % 6 == 0 else ICP)
        _activities(crm, crm_id, i % 6, base)
    hostile_company = Company(name=HOSTILE_NUL, domain="example.fr", employees=120, industry="logistics", country="FR")
    crm.add_contact(HOSTILE_ID, HOSTILE_EMAIL, company=hostile_company, job_title=HOSTILE_NUL)
    crm.edit_contact(HOSTILE_ID, first_name=HOSTILE_NUL)
    crm.add_activity("evil-1", "content_download", base + DAY, [HOSTILE_ID], HOSTILE)
    crm.reject[HOSTILE_ID] = (PICKLIST, HOSTILE)
    crm.reject["c0005"] = (PICKLIST, "bad value for restricted picklist field: meeting")
    crm.reject["c0004"] = ("VALIDATION_ERROR", "Property values were not valid")
    return crm


def salesforce_crm() -> FakeCrm:
    crm = FakeCrm(mapping=load_mapping(REPO / "mappings" / "salesforce.toml"), connection="salesforce")
    base = NOW - timedelta(days=30)
    for i in range(12):
        crm_id = f"00Q{i:015d}"
        email = SHARED_EMAIL if i == 3 else f"lead{i}@example.com"
        crm.add_contact(crm_id, email, company=OFF_ICP if i % 6 == 0 else ICP, object_type="Lead")
        _activities(crm, crm_id, i % 6, base)
    return crm


@dataclass
class Filled:
    """A store after the scenario's runs, with what the runs returned."""

    store: Store
    config: Config
    crms: dict[str, FakeCrm]
    results: list[RunResult] = field(default_factory=list)
    failed_run_id: str | None = None

    def run(self, job: Job, at: datetime) -> RunResult:
        """Run ``job`` starting at ``at``; the clock moves on a second each time the run reads it."""
        ticks = itertools.count()
        result = run_job(
            job,
            self.config,
            store=self.store,
            clients=lambda _config, name: self.crms[name].client(),
            clock=lambda: at + timedelta(seconds=next(ticks)),
            heartbeat=False,
        )
        self.results.append(result)
        return result


def fill(store: Store, config: Config) -> Filled:
    filled = Filled(store, config, {"hubspot": hubspot_crm(), "salesforce": salesforce_crm()})
    hubspot = filled.crms["hubspot"]
    filled.run(HUBSPOT_JOB, NOW - timedelta(hours=3))
    # c0003 (mql) asks for a demo: the next run moves it to sql
    hubspot.add_activity("c0003-4", "demo_request", NOW - timedelta(hours=2, minutes=30), ["c0003"], "Demo form")
    filled.run(HUBSPOT_JOB, NOW - timedelta(hours=2))
    # c0002 (lead) downloads twice more and attends a webinar, but the portal's daily quota is gone
    for n, kind in enumerate(("content_download", "webinar_attended")):
        hubspot.add_activity(f"c0002-q{n}", kind, NOW - timedelta(hours=1, minutes=30 - n), ["c0002"], "Late guide")
    hubspot.raise_on_write = QuotaExhausted("contacts.batch_update: daily API allocation used up")
    with pytest.raises(QuotaExhausted):
        filled.run(HUBSPOT_JOB, NOW - timedelta(hours=1))
    filled.failed_run_id = run_list(store, status="failed")[0].id
    filled.run(SALESFORCE_JOB, NOW - timedelta(minutes=10))
    return filled


@pytest.fixture(scope="module", params=BACKENDS)
def filled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    folder = tmp_path_factory.mktemp(f"web-{request.param}")
    urls = StoreUrls(request.param, folder, prefix="web")
    url = urls.new()
    store = open_store(url)
    try:
        yield fill(store, make_config(folder, url))
    finally:
        store.close()
        urls.drop()

