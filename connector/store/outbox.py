"""The outbox: writes planned and committed *before* the CRM is called.

A write's ``intent_id`` keys its history row, so a write that landed just
before a crash is recognised on the re-run and recorded once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, delete, select

from connector.model import Stage
from connector.store.sql import in_chunks, upsert
from connector.store.tables import pending_writes
from connector.store.values import Intent, PendingWrite

_COLUMNS = ["intent_id", "run_id", "from_value", "from_stage", "to_stage", "to_value", "rule", "reasons", "created_at"]


class Outbox:
    def add(self, db: Connection, job: str, connection: str, intents: Sequence[Intent]) -> None:
        """Commit planned writes (replacing an older intent for the same record)."""
        rows = [
            {
                "job": job,
                "connection": connection,
                "crm_id": intent.crm_id,
                "intent_id": intent.write.intent_id,
                "run_id": intent.write.run_id,
                "from_value": intent.write.from_value,
                "from_stage": intent.write.from_stage.value if intent.write.from_stage else None,
                "to_stage": intent.write.to_stage.value,
                "to_value": intent.write.to_value,
                "rule": intent.write.rule,
                "reasons": list(intent.write.reasons),
                "created_at": intent.write.created_at,
            }
            for intent in intents
        ]
        upsert(db, pending_writes, rows, keys=["job", "connection", "crm_id"], update=_COLUMNS)

    def drop(self, db: Connection, job: str, connection: str, crm_ids: Iterable[str]) -> None:
        for part in in_chunks(list(crm_ids)):
            db.execute(
                delete(pending_writes).where(
                    pending_writes.c.job == job,
                    pending_writes.c.connection == connection,
                    pending_writes.c.crm_id.in_(part),
                )
            )

    def pending(self, db: Connection, job: str, connection: str, crm_ids: Sequence[str]) -> dict[str, PendingWrite]:
        """The open intents of these records, by CRM id."""
        found: dict[str, PendingWrite] = {}
        for part in in_chunks(crm_ids):
            for row in db.execute(
                select(pending_writes).where(
                    pending_writes.c.job == job,
                    pending_writes.c.connection == connection,
                    pending_writes.c.crm_id.in_(part),
                )
            ):
                found[row.crm_id] = PendingWrite(
                    intent_id=row.intent_id,
                    run_id=row.run_id,
                    from_value=row.from_value,
                    from_stage=Stage(row.from_stage) if row.from_stage else None,
                    to_stage=Stage(row.to_stage),
                    to_value=row.to_value,
                    rule=row.rule,
                    reasons=tuple(row.reasons),
                    created_at=row.created_at,
                )
        return found
