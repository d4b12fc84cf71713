"""The store reads the dashboard needs beyond ``connector.store.queries``: runs across jobs, one run by id.

SQLAlchemy Core over ``connector.store.tables``, read-only. Small on purpose:
the store is being split into repositories and these may move there.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select

from connector.store import Store
from connector.store.queries import RunView
from connector.store.tables import dead_letters, runs, stage_changes

RUN_STATUSES = ("running", "completed", "stopped", "failed", "interrupted", "abandoned")


def _view(row: Any) -> RunView:
    return RunView(
        id=row.id,
        job=row.job,
        status=row.status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        dry_run=row.dry_run,
        full=row.full,
        counts=row.counts or {},
        usage=row.usage or {},
        error=row.error,
    )


def run_list(
    store: Store,
    *,
    job: str | None = None,
    jobs: Collection[str] | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[RunView]:
    """Runs, newest first, optionally of one job, of some ``jobs`` (a connection's) or with one status."""
    query = select(runs)
    if job:
        query = query.where(runs.c.job == job)
    if jobs is not None:
        query = query.where(runs.c.job.in_(sorted(jobs)))
    if status:
        query = query.where(runs.c.status == status)
    with store.begin() as db:
        rows = db.execute(query.order_by(runs.c.started_at.desc(), runs.c.id).limit(limit)).all()
    return [_view(row) for row in rows]


def run_by_id(store: Store, run_id: str) -> RunView | None:
    with store.begin() as db:
        row = db.execute(select(runs).where(runs.c.id == run_id)).first()
    return _view(row) if row else None


def last_completed(store: Store, job: str) -> RunView | None:
    """The job's newest run that completed (not a dry run)."""
    query = (
        select(runs)
        .where(runs.c.job == job, runs.c.status == "completed", runs.c.dry_run.is_(False))
        .order_by(runs.c.started_at.desc())
        .limit(1)
    )
    with store.begin() as db:
        row = db.execute(query).first()
    return _view(row) if row else None


def jobs_in_store(store: Store) -> list[str]:
    """Names of the jobs that have runs or dead letters in the store (when no job file is at hand)."""
    with store.begin() as db:
        names = set(db.execute(select(runs.c.job).distinct()).scalars())
        names.update(db.execute(select(dead_letters.c.job).distinct()).scalars())
    return sorted(names)


def connections_in_store(store: Store) -> list[str]:
    """Names of the connections the store holds stage changes or dead letters of."""
    with store.begin() as db:
        names = set(db.execute(select(stage_changes.c.connection).distinct()).scalars())
        names.update(db.execute(select(dead_letters.c.connection).distinct()).scalars())
    return sorted(names)
