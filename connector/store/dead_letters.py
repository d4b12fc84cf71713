"""Dead letters: records the CRM refused for good, open until a person fixes the cause or a write succeeds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from connector.runs import Resolution
from connector.store.queue import Queue
from connector.store.sql import in_chunks
from connector.store.tables import dead_letters
from connector.store.values import DeadLetter

CODE_LENGTH = 80


class DeadLetters:
    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    def add(
        self, db: Connection, job: str, connection: str, letters: Sequence[DeadLetter], *, run_id: str, now: datetime
    ) -> None:
        """Open (or re-open, counting the attempt) a dead letter per record."""
        for letter in letters:
            found = db.execute(
                select(dead_letters.c.id, dead_letters.c.attempts).where(
                    dead_letters.c.job == job,
                    dead_letters.c.connection == connection,
                    dead_letters.c.crm_id == letter.crm_id,
                )
            ).first()
            values = {
                "email": letter.email,
                "stage": letter.stage.value if letter.stage else None,
                "code": (letter.code or "")[:CODE_LENGTH] or None,
                "reason": letter.reason,
                "run_id": run_id,
                "last_seen": now,
                "resolved_at": None,
                "resolution": None,
            }
            if found:
                db.execute(
                    update(dead_letters)
                    .where(dead_letters.c.id == found.id)
                    .values(attempts=found.attempts + 1, **values)
                )
            else:
                db.execute(
                    insert(dead_letters).values(
                        job=job, connection=connection, crm_id=letter.crm_id, first_seen=now, attempts=1, **values
                    )
                )

    def resolve(
        self,
        db: Connection,
        job: str,
        connection: str,
        crm_ids: Sequence[str],
        resolution: Resolution,
        now: datetime,
    ) -> int:
        """Close the open dead letters of these records; returns how many were open."""
        resolved = 0
        for part in in_chunks(list(crm_ids)):
            result = db.execute(
                update(dead_letters)
                .where(
                    dead_letters.c.job == job,
                    dead_letters.c.connection == connection,
                    dead_letters.c.crm_id.in_(part),
                    dead_letters.c.resolved_at.is_(None),
                )
                .values(resolved_at=now, resolution=resolution.value)
            )
            resolved += result.rowcount or 0
        return resolved

    def requeue(self, db: Connection, job: str | None = None) -> dict[str, int]:
        """Queue every open dead letter's contact again (after a person fixed the cause); count per job."""
        query = select(dead_letters.c.job, dead_letters.c.connection, dead_letters.c.crm_id).where(
            dead_letters.c.resolved_at.is_(None)
        )
        if job:
            query = query.where(dead_letters.c.job == job)
        groups: dict[tuple[str, str], list[str]] = {}
        for row in db.execute(query).all():
            groups.setdefault((row.job, row.connection), []).append(row.crm_id)
        queued: dict[str, int] = {}
        for (name, connection), crm_ids in groups.items():
            self._queue.requeue(db, name, connection, crm_ids)
            queued[name] = queued.get(name, 0) + len(crm_ids)
        return queued
