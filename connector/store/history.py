"""The history of stage changes crmsync wrote (``stage_changes``), one row per outbox intent."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, insert, select

from connector.store.sql import in_chunks
from connector.store.tables import stage_changes
from connector.store.values import Change


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
                {
                    "intent_id": intent.intent_id,
                    "job": job,
                    "run_id": intent.run_id,
                    "connection": connection,
                    "crm_id": change.crm_id,
                    "email": change.email,
                    "from_stage": intent.from_stage.value if intent.from_stage else None,
                    "from_value": intent.from_value,
                    "to_stage": intent.to_stage.value,
                    "changed_at": intent.created_at,
                    "rule": intent.rule,
                    "reasons": list(intent.reasons),
                }
            )
        if rows:
            db.execute(insert(stage_changes), rows)
        return len(rows)
