"""The history of stage changes crmsync wrote (``stage_changes``), one row per outbox intent."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from connector.store.bulk import db_json, db_time, insert_rows
from connector.store.sql import in_chunks
from connector.store.tables import stage_changes, storable
from connector.store.values import Change

_COLUMNS = (
    "intent_id",
    "job",
    "run_id",
    "connection",
    "crm_id",
    "email",
    "from_stage",
    "from_value",
    "to_stage",
    "changed_at",
    "rule",
    "reasons",
)


class History:
    def record(self, db: Connection, job: str, connection: str, changes: Sequence[Change]) -> int:
        """A history row per change that landed; an intent already recorded is skipped. Returns rows added."""
        if not changes:
            return 0
        seen: set[str] = set()
        keys = [change.intent.intent_id for change in changes]
        for part in in_chunks(keys):
            seen.update(
                db.execute(select(stage_changes.c.intent_id).where(stage_changes.c.intent_id.in_(part))).scalars()
            )
        rows = []
        for change in changes:
            intent = change.intent
            if intent.intent_id in seen:
                continue
            seen.add(intent.intent_id)
            rows.append(
                (
                    intent.intent_id,
                    job,
                    intent.run_id,
                    connection,
                    storable(change.crm_id),
                    None if change.email is None else storable(change.email),
                    intent.from_stage.value if intent.from_stage else None,
                    None if intent.from_value is None else storable(intent.from_value),
                    intent.to_stage.value,
                    db_time(db, intent.created_at),
                    intent.rule,
                    db_json(list(intent.reasons)),
                )
            )
        insert_rows(db, "stage_changes", _COLUMNS, rows)
        return len(rows)
