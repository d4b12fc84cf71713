"""Checkpoints: per job, connection and stream, the committed cursor and an open run's read position."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from connector.store.sql import upsert
from connector.store.tables import checkpoints
from connector.store.values import Checkpoint


class Checkpoints:
    def get(self, db: Connection, job: str, connection: str, stream: str) -> Checkpoint:
        row = db.execute(
            select(checkpoints.c.cursor, checkpoints.c.position).where(
                checkpoints.c.job == job, checkpoints.c.connection == connection, checkpoints.c.stream == stream
            )
        ).first()
        return Checkpoint(row.cursor, row.position) if row else Checkpoint(None, None)

    def save_position(
        self, db: Connection, job: str, connection: str, stream: str, position: str | None, now: datetime
    ) -> None:
        """Remember how far an open run has read (with the page it covers, in the same transaction)."""
        if position is None:
            return
        row = {
            "job": job,
            "connection": connection,
            "stream": stream,
            "cursor": None,
            "position": position,
            "updated_at": now,
            "version": 1,
        }
        upsert(db, checkpoints, [row], keys=["job", "connection", "stream"], update=["position", "updated_at"])

    def clear_positions(self, db: Connection, job: str, connection: str, now: datetime) -> None:
        """Forget a half-read position (``--full`` starts from the beginning)."""
        db.execute(
            update(checkpoints)
            .where(checkpoints.c.job == job, checkpoints.c.connection == connection)
            .values(position=None, updated_at=now)
        )

    def commit(self, db: Connection, job: str, connection: str, now: datetime) -> None:
        """Move the committed cursor to the read position: call once everything read is decided and written."""
        db.execute(
            update(checkpoints)
            .where(
                checkpoints.c.job == job,
                checkpoints.c.connection == connection,
                checkpoints.c.position.is_not(None),
            )
            .values(cursor=checkpoints.c.position, position=None, updated_at=now)
        )
