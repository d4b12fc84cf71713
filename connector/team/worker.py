"""What ``crmsync worker`` runs: the procrastinate app over the PostgreSQL store, its schema, one worker loop."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import procrastinate
from sqlalchemy import text
from sqlalchemy.engine import make_url

from connector.config import Config
from connector.errors import ConfigError
from connector.jobs import Job
from connector.store import Store, new_owner
from connector.sync import ClientFactory, Clock, RunResult, run_job, utc_now
from connector.team.budget import shared_clients
from connector.team.queue import LEASE_TTL, QUEUE, build_app

log = logging.getLogger(__name__)

_SCHEMA_LOCK = 72616366
"""Advisory lock key: one worker applies procrastinate's schema when several start together."""


def require_postgres(config: Config) -> None:
    if make_url(config.store_url).get_backend_name() != "postgresql":
        raise ConfigError(
            "team mode needs a PostgreSQL store (store.url = postgresql+psycopg://...); "
            "with SQLite, run `crmsync scheduler` on one machine"
        )


def queue_connector(store_url: str) -> procrastinate.PsycopgConnector:
    """procrastinate's connector to the store's database (the same server, database and search path)."""
    conninfo = make_url(store_url).set(drivername="postgresql").render_as_string(hide_password=False)
    return procrastinate.PsycopgConnector(conninfo=conninfo, min_size=1, max_size=4)


def ensure_queue_schema(app: procrastinate.App, store: Store) -> bool:
    """Apply procrastinate's schema in the store's database unless it is there; whether it was applied now."""
    with store.engine.connect() as db:
        db.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _SCHEMA_LOCK})
        try:
            if db.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
                return False
            with app.open():
                app.schema_manager.apply_schema()
            log.info("procrastinate schema applied")
            return True
        finally:
            db.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _SCHEMA_LOCK})
            db.commit()


@dataclass
class JobRunner:
    """Runs a job now, in a worker: ``run_job`` with the shared budgets and a short lease."""

    config: Config
    store: Store
    clients: ClientFactory
    clock: Clock = utc_now
    owner: str = field(default_factory=new_owner)

    def __call__(self, job: Job, *, full: bool = False, dry_run: bool | None = None) -> RunResult:
        return run_job(
            job,
            self.config,
            store=self.store,
            clients=self.clients,
            clock=self.clock,
            full=full,
            dry_run=dry_run,
            owner=self.owner,
            lease_ttl=LEASE_TTL,
            processes=1,  # a team runs one worker per core already: no helper processes beside each run
        )


def team_app(
    config: Config,
    store: Store,
    jobs: Mapping[str, Job],
    clients: ClientFactory,
    clock: Clock = utc_now,
    *,
    schedule: bool = True,
) -> tuple[procrastinate.App, JobRunner]:
    """The app a worker runs: ``jobs`` on their crons, each connection's calls drawn from its shared budget."""
    require_postgres(config)
    runner = JobRunner(config, store, shared_clients(clients, store.engine), clock)
    return build_app(queue_connector(config.store_url), jobs, runner, schedule=schedule), runner


def run_worker(app: procrastinate.App, *, name: str, concurrency: int = 1, **options: Any) -> None:
    """Run jobs from the queue until SIGTERM / SIGINT (the running jobs finish first)."""
    app.run_worker(queues=[QUEUE], name=name, concurrency=concurrency, **options)
