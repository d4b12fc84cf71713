"""The chaos tier: sandbox CRMs served from the test process, the real clients and ``run_job``.

Size: ``CRMSYNC_CHAOS_SIZE`` people per CRM (10 activities each); CI keeps the
default small so the whole tier stays under three minutes. Seeds are fixed:
the same size gives the same data and the same injected faults.

A "world" is one pair of seeded sandboxes, a state store and a config that
points the real clients at them. Outcomes are compared between worlds: the
CRM's stage fields of every person, and the stage history.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

import pytest
from sqlalchemy import select

from connector.config import Config, HubSpotConnection, PathSettings, RetrySettings, StoreSettings
from connector.connections import open_client
from connector.jobs import Job
from connector.mapping import CrmMapping, load_mapping
from connector.sandbox.hubspot import HubSpotSandbox, Limits
from connector.sandbox.salesforce import Fault, Faults, SalesforceSandbox, SandboxLimits
from connector.store import Store, open_store
from connector.store.tables import stage_changes
from connector.sync import RunResult, run_job
from tests.stores import BACKENDS, StoreUrls

ROOT = Path(__file__).resolve().parents[2]
SIZE = int(os.environ.get("CRMSYNC_CHAOS_SIZE", "120"))
SEED = 23
SANDBOX_NOW = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)
"""The instant the sandboxes' data is generated around."""
RUN_NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
"""The pipeline's pinned clock (decisions and history), the same in every world."""
HUBSPOT_TOKEN = "pat-na1-chaos-7f3e-0c1d"
HUBSPOT_TOKEN_ENV = "CRMSYNC_CHAOS_HUBSPOT_TOKEN"
CRMS = ("hubspot", "salesforce")
FAST_RETRY = RetrySettings(max_attempts=10, initial_wait_seconds=0.002, max_wait_seconds=0.02, total_wait_seconds=10)


class RandomFaults(Faults):
    """Salesforce faults drawn at rates, like the HubSpot sandbox's probabilistic ones.

    Each request's fate depends only on (seed, endpoint, how many requests that
    endpoint had before), so it does not change with thread interleaving (the
    client reads one page ahead in a second thread).
    """

    def __init__(self, seed: int, rates: list[tuple[float, Fault]], endpoints: tuple[str, ...]) -> None:
        super().__init__()
        self.seed = seed
        self.rates = rates
        self.endpoints = endpoints
        self.seen: dict[str, int] = {}
        self.drawn: dict[str, int] = {}
        self._draw_lock = threading.Lock()

    def take(self, endpoint: str) -> Fault | None:
        queued = super().take(endpoint)
        if queued is not None or endpoint not in self.endpoints:
            return queued
        with self._draw_lock:
            number = self.seen[endpoint] = self.seen.get(endpoint, 0) + 1
        roll = Random(f"{self.seed}:{endpoint}:{number}").random()
        for rate, fault in self.rates:
            if roll < rate:
                with self._draw_lock:
                    name = fault.kind if fault.retry_after is None else f"{fault.kind}+retry-after"
                    self.drawn[name] = self.drawn.get(name, 0) + 1
                return fault
            roll -= rate
        return None


@dataclass
class World:
    """Seeded sandboxes, a store and a config pointing the real clients at them."""

    folder: Path
    hubspot: HubSpotSandbox
    salesforce: SalesforceSandbox
    store: Store
    config: Config
    mappings: dict[str, CrmMapping] = field(default_factory=dict)

    def run(self, crm: str, **options: Any) -> RunResult:
        options.setdefault("heartbeat", False)
        job = Job(name=f"chaos-{crm}", connections=[crm])
        return run_job(job, self.config, store=self.store, clock=lambda: RUN_NOW, **{"clients": open_client, **options})

    def crm_state(self, crm: str) -> list[tuple[Any, ...]]:
        """Every person's written fields (stage, secondary stages, reached-at, reason), in id order."""
        fields = self.mappings[crm].written_fields()
        if crm == "hubspot":
            store = self.hubspot.store
            with store.lock:
                return [
                    (store.contact_id(i), *(store.get(i, name) for name in fields)) for i in range(store.contact_count)
                ]
        org = self.salesforce.org
        rows: list[tuple[Any, ...]] = []
        with org.lock:
            for sobject in ("Lead", "Contact"):
                for record in org.records(sobject):
                    rows.append((record["Id"], *(record.get(name) for name in fields)))
        return sorted(rows, key=lambda row: str(row[0]))

    def history(self, *, with_times: bool = True) -> list[tuple[Any, ...]]:
        return stage_history(self.store, with_times=with_times)


def stage_history(store: Store, *, with_times: bool = True) -> list[tuple[Any, ...]]:
    """The stage changes recorded, without run ids (a re-run after a crash has its own)."""
    c = stage_changes.c
    columns = [c.connection, c.crm_id, c.email, c.from_stage, c.from_value, c.to_stage, c.rule, c.reasons]
    if with_times:
        columns.append(c.changed_at)
    with store.begin() as db:
        rows = db.execute(select(*columns).order_by(c.connection, c.crm_id, c.to_stage)).all()
    return [tuple(row) for row in rows]


def build_config(folder: Path, hubspot: HubSpotSandbox, salesforce: SalesforceSandbox, store_url: str) -> Config:
    jobs = folder / "jobs"
    jobs.mkdir(exist_ok=True)
    os.environ[HUBSPOT_TOKEN_ENV] = HUBSPOT_TOKEN
    os.environ.update(salesforce.secrets_env())
    return Config(
        store=StoreSettings(url=store_url),
        paths=PathSettings(mappings=ROOT / "mappings", jobs=jobs, rules=ROOT / "mappings" / "lifecycle.toml"),
        connections={
            "hubspot": HubSpotConnection(
                type="hubspot", base_url=hubspot.url, token_env=HUBSPOT_TOKEN_ENV, retry=FAST_RETRY,
                timeout_seconds=1.0, burst_limit=1_000_000, search_per_second=1_000_000,
            ),
            "salesforce": salesforce.connection_settings(retry=FAST_RETRY, timeout_seconds=1.0, lookback_seconds=300),
        },
        base_dir=folder,
    )  # fmt: skip


class Worlds:
    """Makes worlds in a test's folder and stops them at the end."""

    def __init__(self, folder: Path, stores: StoreUrls) -> None:
        self.folder = folder
        self.stores = stores
        self.made: list[World] = []

    def new(
        self,
        name: str,
        *,
        size: int = SIZE,
        hubspot_faults: Any = None,
        salesforce_faults: Faults | None = None,
        page_size: int = 50,
    ) -> World:
        folder = self.folder / name
        folder.mkdir()
        hubspot = HubSpotSandbox(
            contacts=size, activities=10 * size, seed=SEED, token=HUBSPOT_TOKEN, now=SANDBOX_NOW,
            limits=Limits.unlimited(), faults=hubspot_faults,
        )  # fmt: skip
        salesforce = SalesforceSandbox(
            people=size, activities=10 * size, seed=SEED + 1, now=SANDBOX_NOW,
            limits=SandboxLimits(page_size=page_size, daily_api_requests=10_000_000), faults=salesforce_faults,
        )  # fmt: skip
        hubspot.start()
        salesforce.start()
        url = self.stores.new(name)
        world = World(folder, hubspot, salesforce, open_store(url), build_config(folder, hubspot, salesforce, url))
        world.mappings = {crm: load_mapping(ROOT / "mappings" / f"{crm}.toml") for crm in CRMS}
        self.made.append(world)
        return world

    def close(self) -> None:
        for world in self.made:
            world.store.close()
            world.hubspot.stop()
            world.salesforce.stop()


@pytest.fixture(params=BACKENDS)
def worlds(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Worlds]:
    """Worlds whose stores are SQLite files, or PostgreSQL schemas when ``CRMSYNC_TEST_POSTGRES_URL`` is set."""
    stores = StoreUrls(request.param, tmp_path, prefix="chaos")
    made = Worlds(tmp_path, stores)
    yield made
    made.close()
    stores.drop()


@pytest.fixture
def sqlite_worlds(tmp_path: Path) -> Iterator[Worlds]:
    """Worlds on SQLite only (the SIGKILL test compares them with the killed CLI's own SQLite store)."""
    stores = StoreUrls("sqlite", tmp_path)
    made = Worlds(tmp_path, stores)
    yield made
    made.close()
