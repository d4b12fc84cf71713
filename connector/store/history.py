"""The history: stage changes crmsync wrote (``stage_changes``, one row per outbox intent), and the contacts
found beyond the ladder (``ladder_notes``: why nothing is written, once each time one gets there; not a
stage change, so no count of changes sees it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from connector.store.bulk import db_json, db_time, insert_rows, marks
from connector.store.sql import IN_LIST_SIZE, in_chunks
from connector.store.tables import ladder_notes, storable
from connector.store.values import Change, LadderNote

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


_INTENTS_PER_LOOK_UP = 200
"""Intent ids per look-up of the history on PostgreSQL. With 500 (a group of recorded answers) the planner read
the whole table instead of probing its unique index: 13 ms a look-up at 80,000 rows, against 0.9 ms for 200."""


class History:
    def record(self, db: Connection, job: str, connection: str, changes: Sequence[Change]) -> int:
        """A history row per change that landed; an intent already recorded is skipped. Returns rows added."""
        if not changes:
            return 0
        seen: set[str] = set()
        keys = [change.intent.intent_id for change in changes]
        size = _INTENTS_PER_LOOK_UP if db.dialect.name == "postgresql" else IN_LIST_SIZE
        for part in in_chunks(keys, size):
            sql = f"SELECT intent_id FROM stage_changes WHERE intent_id IN ({marks(db, len(part))})"
            seen.update(row[0] for row in db.exec_driver_sql(sql, tuple(part)))
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

    def note_beyond(self, db: Connection, job: str, connection: str, notes: Sequence[LadderNote]) -> int:
        """A ``ladder_notes`` row per contact found beyond the ladder that has no open one (it was not beyond
        when last decided, or never decided). Returns rows added."""
        if not notes:
            return 0
        n = ladder_notes.c
        latest = {storable(note.crm_id): note for note in notes}
        open_ids: set[str] = set()
        for part in in_chunks(list(latest)):
            open_ids.update(
                db.execute(
                    select(n.crm_id).where(
                        n.job == job, n.connection == connection, n.crm_id.in_(part), n.back_at.is_(None)
                    )
                ).scalars()
            )
        rows = [
            {
                "job": job,
                "run_id": note.run_id,
                "connection": connection,
                "crm_id": crm_id,
                "email": note.email,
                "reason": note.reason,
                "noted_at": note.at,
            }
            for crm_id, note in latest.items()
            if crm_id not in open_ids
        ]
        if rows:
            db.execute(insert(ladder_notes), rows)
        return len(rows)

    def back_on_ladder(self, db: Connection, job: str, connection: str, crm_ids: Sequence[str], at: datetime) -> None:
        """Close the open ``ladder_notes`` of ``crm_ids`` (decided inside the ladder again): a later return
        beyond it is noted once more."""
        if not crm_ids:
            return
        n = ladder_notes.c
        if (
            db.execute(
                select(n.id).where(n.job == job, n.connection == connection, n.back_at.is_(None)).limit(1)
            ).first()
            is None
        ):
            return  # the usual case: nothing open for this job, no look-up per chunk
        for part in in_chunks([storable(crm_id) for crm_id in crm_ids]):
            db.execute(
                update(ladder_notes)
                .where(n.job == job, n.connection == connection, n.crm_id.in_(part), n.back_at.is_(None))
                .values(back_at=at)
            )
