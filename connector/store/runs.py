"""Runs: one row per run of a job (status, counts, API usage, error)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, update

from connector.runs import RunStatus
from connector.store.tables import runs


class Runs:
    def start(
        self, db: Connection, run_id: str, job: str, owner: str, *, full: bool, dry_run: bool, now: datetime
    ) -> None:
        """Record a run that starts now; a run of the job still ``running`` belonged to a dead holder."""
        # called with the job's lease held: no live process runs the job
        db.execute(
            update(runs)
            .where(runs.c.job == job, runs.c.status == RunStatus.RUNNING.value)
            .values(
                status=RunStatus.ABANDONED.value,
                finished_at=now,
                error="the process running it stopped (lease expired)",
            )
        )
        db.execute(
            insert(runs).values(
                id=run_id,
                job=job,
                owner=owner,
                status=RunStatus.RUNNING.value,
                full=full,
                dry_run=dry_run,
                started_at=now,
            )
        )

    def finish(
        self,
        db: Connection,
        run_id: str,
        *,
        status: RunStatus,
        counts: dict[str, Any],
        usage: dict[str, Any],
        error: str | None,
        now: datetime,
    ) -> None:
        db.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(status=status.value, finished_at=now, counts=counts, usage=usage, error=error)
        )
