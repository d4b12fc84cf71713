"""``crmsync worker`` (team mode): run jobs from the queue in the PostgreSQL store; and ``run`` queueing a run.

Any number of workers on any number of machines: each defers its jobs'
cron ticks (one queue job per tick whatever the number of workers) and
takes queued runs, one run of a job at a time. SIGTERM or Ctrl-C stops
taking runs; the running one finishes and commits first. Needs the
``team`` extra (procrastinate).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from connector.cli.exits import CommandFailed, ExitCode, StoreFailure
from connector.cli.services import Services, services, store_location
from connector.cli.terminal import err, line, out, safe, write_json

if TYPE_CHECKING:
    from connector.config import Config
    from connector.jobs import Job
    from connector.store import Store

TEAM_EXTRA = "team mode needs the `team` extra (procrastinate): pip install 'crmsync[team]'"


def _require_extra() -> None:
    try:
        import procrastinate  # noqa: F401
    except ImportError:
        raise CommandFailed(TEAM_EXTRA) from None


def team_job(config: Config, name: str) -> tuple[Config, Job]:
    """Job ``name`` of a team config (a job file or a tenant), with the config that holds its connections."""
    from connector.team.tenants import team_jobs

    expanded, jobs = team_jobs(config)
    if name not in jobs:
        raise CommandFailed(f"no job {name!r} (job files and tenants: {', '.join(sorted(jobs)) or 'none'})")
    job = jobs[name]
    missing = [c for c in job.connections if c not in expanded.connections]
    if missing:
        raise CommandFailed(f"job {name!r} names connection(s) {missing} that the config does not define")
    return expanded, job


def shared_budgets(context: Services, store: Store) -> Services:
    """``context`` whose clients draw on each connection's budget shared with the workers (team mode)."""
    from connector.team.budget import shared_clients

    return dataclasses.replace(context, clients=shared_clients(context.clients, store.engine))


@contextmanager
def _queue_errors(config: Config) -> Iterator[None]:
    """The queue's driver errors, named like the store's (exit 6, the URL without its password)."""
    import psycopg

    try:
        yield
    except psycopg.Error as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        from sqlalchemy.engine import make_url

        password = make_url(config.store_url).password
        if password:
            first = first.replace(str(password), "***")
        raise StoreFailure(store_location(config.store_url), first) from None


def queue_run(context: Services, config: Config, job: Job, *, full: bool, as_json: bool) -> None:
    """Queue one run of ``job`` for the workers (``crmsync run`` in team mode)."""
    _require_extra()
    from connector.team.queue import build_app, defer_run
    from connector.team.worker import ensure_queue_schema, queue_connector, require_postgres

    require_postgres(config)
    app = build_app(queue_connector(config.store_url), {job.name: job}, lambda *_a, **_k: None, schedule=False)
    with context.store(config) as store, _queue_errors(config):
        ensure_queue_schema(app, store)
        with app.open():
            deferred = defer_run(app, job.name, full=full)
    if deferred.queue_id is None and full:
        raise CommandFailed(
            f"a run of job {job.name!r} already waits in the queue; run with --full again once a worker took it",
            ExitCode.LEASE_HELD,
        )
    if as_json:
        status = "queued" if deferred.queue_id is not None else "already_queued"
        write_json({"status": status, "job": job.name, "queue_id": deferred.queue_id})
        return
    if deferred.queue_id is None:
        out.print(line("a run of ", safe(job.name), " already waits in the queue: it covers this request"))
    else:
        out.print(line("queued a run of ", safe(job.name), f" (queue job {deferred.queue_id}); a worker runs it"))


def worker(
    ctx: typer.Context,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=32, help="Runs of different jobs at once in this process.")
    ] = 1,
    schedule: Annotated[
        bool, typer.Option("--schedule/--no-schedule", help="Also queue the jobs' cron ticks (every worker may).")
    ] = True,
) -> None:
    """Team mode: run jobs from the queue in the PostgreSQL store until stopped (SIGTERM lets the running job finish)."""
    _require_extra()
    from connector.team.tenants import team_jobs
    from connector.team.worker import ensure_queue_schema, require_postgres, run_worker, team_app

    context = services(ctx)
    config = context.config()
    require_postgres(config)
    config, jobs = team_jobs(config)
    context.logging()
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    with context.store(config) as store, _queue_errors(config):
        app, runner = team_app(config, store, jobs, context.clients, context.clock, schedule=schedule)
        ensure_queue_schema(app, store)
        names = ", ".join(sorted(jobs)) or "none"
        err.print(line("worker ", safe(runner.owner), ": jobs ", safe(names), "; SIGTERM or Ctrl-C stops after the running run"))  # fmt: skip
        run_worker(app, name=runner.owner, concurrency=concurrency)
