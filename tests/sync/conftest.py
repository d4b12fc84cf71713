"""Fixtures of the sync tier: a store on SQLite always, and on PostgreSQL when
``CRMSYNC_TEST_POSTGRES_URL`` is set (each test in its own schema, dropped after)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select, text

from connector.config import (
    Config,
    HubSpotConnection,
    PathSettings,
    RetrySettings,
    SalesforceConnection,
    StoreSettings,
)
from connector.jobs import Job
from connector.mapping import load_mapping
from connector.model import Company
from connector.store import Store
from connector.store.tables import stage_changes
from connector.sync import PageGroup, RunResult, run_job
from tests.fakes import FakeCrm

if TYPE_CHECKING:
    from connector.sandbox.hubspot import HubSpotSandbox
    from connector.sandbox.salesforce import SalesforceSandbox

REPO = Path(__file__).resolve().parents[2]

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ICP = Company(name="Transports Martin", domain="example.fr", employees=120, industry="logistics", country="FR")
OFF_ICP = Company(name="Boulangerie", domain="example.com", employees=3, industry="food", country="FR")


def make_config(tmp_path: Path, store_url: str, mappings: Path | None = None) -> Config:
    jobs = tmp_path / "jobs"
    jobs.mkdir(exist_ok=True)
    return Config(
        store=StoreSettings(url=store_url),
        paths=PathSettings(
            mappings=mappings or REPO / "mappings", jobs=jobs, rules=REPO / "mappings" / "lifecycle.toml"
        ),
        connections={
            "hubspot": HubSpotConnection(type="hubspot", token_env="CRMSYNC_TEST_HUBSPOT_TOKEN"),
            "salesforce": SalesforceConnection(type="salesforce", instance_url="https://example.my.salesforce.com"),
        },
        base_dir=tmp_path,
    )


FAST_RETRY = RetrySettings(max_attempts=5, initial_wait_seconds=0.002, max_wait_seconds=0.02, total_wait_seconds=5)
"""Retries of the tiers that run against the sandbox CRMs: a fault is retried at once."""


def started_sandboxes(people: int, *, seed: int, token: str, now: datetime) -> tuple[HubSpotSandbox, SalesforceSandbox]:
    """Both sandbox CRMs, started: ``people`` each with 10 activities a person (HubSpot seeded with ``seed``,
    Salesforce with ``seed + 1``); Salesforce answers queries 50 records a page, so a pull follows
    ``nextRecordsUrl``."""
    from connector.sandbox.hubspot import HubSpotSandbox, Limits
    from connector.sandbox.salesforce import SalesforceSandbox, SandboxLimits

    hubspot = HubSpotSandbox(
        contacts=people, activities=10 * people, seed=seed, token=token, now=now, limits=Limits.unlimited()
    )
    salesforce = SalesforceSandbox(
        people=people, activities=10 * people, seed=seed + 1, now=now, limits=SandboxLimits(page_size=50)
    )
    hubspot.start()
    salesforce.start()
    return hubspot, salesforce


def sandbox_config(
    tmp_path: Path,
    url: str,
    hubspot: HubSpotSandbox,
    salesforce: SalesforceSandbox,
    *,
    token_env: str,
    timeout_seconds: float = 2.0,
    **salesforce_options: Any,
) -> Config:
    """A config whose two connections are the running sandboxes (HubSpot unpaced, its token in ``token_env``)."""
    jobs = tmp_path / "jobs"
    jobs.mkdir(exist_ok=True)
    return Config(
        store=StoreSettings(url=url),
        paths=PathSettings(mappings=REPO / "mappings", jobs=jobs, rules=REPO / "mappings" / "lifecycle.toml"),
        connections={
            "hubspot": HubSpotConnection(
                type="hubspot", base_url=hubspot.url, token_env=token_env, retry=FAST_RETRY,
                timeout_seconds=timeout_seconds, burst_limit=1_000_000, search_per_second=1_000_000,
            ),
            "salesforce": salesforce.connection_settings(
                retry=FAST_RETRY, timeout_seconds=timeout_seconds, **salesforce_options
            ),
        },
        base_dir=tmp_path,
    )  # fmt: skip


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> Config:
    return make_config(tmp_path, store_url)


JOB = Job(name="hubspot-lifecycle", connections=["hubspot"])


def new_crm(**options: Any) -> FakeCrm:
    return FakeCrm(mapping=load_mapping(REPO / "mappings" / "hubspot.toml"), connection="hubspot", **options)


def populate(crm: FakeCrm, count: int = 40) -> None:
    """A mix of contacts on every rung, from the default rules (mappings/lifecycle.toml).

    Profile by ``i % 6``: 0 fits nothing, 1 suspect (ICP only), 2 lead (one
    download), 3 mql (three downloads), 4 sql (mql + demo request), 5 meeting.
    """
    day = timedelta(days=1)
    for i in range(count):
        crm_id = f"c{i:04d}"
        profile = i % 6
        crm.add_contact(crm_id, f"person{i}@example.fr", company=OFF_ICP if profile == 0 else ICP)
        base = NOW - timedelta(days=40)
        if profile >= 2:
            crm.add_activity(f"a{i:04d}-1", "content_download", base + day, [crm_id], "Guide")
        if profile >= 3:
            crm.add_activity(f"a{i:04d}-2", "content_download", base + 2 * day, [crm_id], "Case study")
            crm.add_activity(f"a{i:04d}-3", "webinar_attended", base + 3 * day, [crm_id], "Webinar")
        if profile == 4:
            crm.add_activity(f"a{i:04d}-4", "demo_request", base + 4 * day, [crm_id], "Demo form")
        if profile == 5:
            crm.add_activity(f"a{i:04d}-5", "meeting_booked", base + 5 * day, [crm_id], "Intro call")


@dataclass
class Runner:
    """Runs a job against fake CRMs with a pinned clock."""

    config: Config
    store: Store
    crms: dict[str, FakeCrm]
    now: datetime = NOW

    def clients(self, _config: Config, name: str) -> FakeCrm:
        return self.crms[name].client()

    def __call__(self, job: Job = JOB, **options: Any) -> RunResult:
        options.setdefault("heartbeat", False)
        # page groups cut by count only: a test's transactions never depend on the machine's speed
        options.setdefault("pages", PageGroup(max_seconds=math.inf))
        return run_job(job, self.config, store=self.store, clients=self.clients, clock=lambda: self.now, **options)


@pytest.fixture
def crm() -> FakeCrm:
    made = new_crm()
    populate(made)
    return made


@pytest.fixture
def runner(config: Config, store: Store, crm: FakeCrm) -> Runner:
    return Runner(config, store, {"hubspot": crm})


def history(store: Store) -> list[tuple[Any, ...]]:
    """The stage history without run ids (a re-run after a crash has its own run id)."""
    c = stage_changes.c
    with store.begin() as db:
        rows = db.execute(
            select(
                c.connection, c.crm_id, c.email, c.from_stage, c.from_value, c.to_stage, c.changed_at, c.rule, c.reasons
            ).order_by(c.connection, c.crm_id, c.changed_at, c.to_stage)
        ).all()
    return [tuple(row) for row in rows]


def open_dead_letters(store: Store) -> list[tuple[str, str | None]]:
    with store.begin() as db:
        return [
            (row.crm_id, row.code)
            for row in db.execute(
                text("SELECT crm_id, code FROM dead_letters WHERE resolved_at IS NULL ORDER BY crm_id")
            )
        ]


ClientFactory = Callable[[Config, str], FakeCrm]
