"""The outbox: writes planned and committed *before* the CRM is called.

A write's ``intent_id`` keys its history row, so a write that landed just
before a crash is recognised on the re-run and recorded once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, select

from connector.model import Stage
from connector.store.bulk import db_json, db_time, delete_where_in, insert_rows
from connector.store.sql import in_chunks
from connector.store.tables import pending_writes, storable
from connector.store.values import Intent, PendingWrite

_COLUMNS = ("intent_id", "run_id", "from_value", "from_stage", "to_stage", "to_value", "rule", "reasons", "created_at")
_KEYS = ("job", "connection", "crm_id")


class Outbox:
    def add(self, db: Connection, job: str, connection: str, intents: Sequence[Intent]) -> None:
        """Commit planned writes (replacing an older intent for the same record)."""
        rows = []
        for intent in intents:
            write = intent.write
            rows.append(
                (
                    job,
                    connection,
                    storable(intent.crm_id),
                    write.intent_id,
                    write.run_id,
                    None if write.from_value is None else storable(write.from_value),
                    write.from_stage.value if write.from_stage else None,
                    write.to_stage.value,
                    write.to_value,
                    write.rule,
                    db_json(list(write.reasons)),
                    db_time(db, write.created_at),
                )
            )
        insert_rows(db, "pending_writes", ("job", "connection", "crm_id", *_COLUMNS), rows, conflict=_KEYS,
                    update=_COLUMNS)  # fmt: skip

    def drop(self, db: Connection, job: str, connection: str, crm_ids: Iterable[str]) -> None:
        for part in in_chunks([storable(crm_id) for crm_id in crm_ids]):
            delete_where_in(db, "pending_writes", [("job", job), ("connection", connection)], "crm_id", part)

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
