"""The store API the sync pipeline writes through.

Every method that changes state takes an open transaction (``store.begin()``)
so the pipeline decides where the commit points are: a page, its dirty marks
and its read position commit together; planned writes commit before the CRM
is called; write results, history, dead letters and the lease heartbeat
commit together after it answers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, Engine, Table, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from connector.crm import ActivityRecord, ContactRecord
from connector.model import Activity, Contact, Stage
from connector.store.database import create_store_engine, migrate
from connector.store.tables import (
    activities,
    checkpoints,
    contacts,
    dead_letters,
    job_contacts,
    pending_writes,
    runs,
    stage_changes,
)

CONTACTS: Final = "contacts"
ACTIVITIES: Final = "activities"
STREAMS = (CONTACTS, ACTIVITIES)


# ---------------------------------------------------------------------------
# Values the store hands out
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    cursor: str | None
    """Committed: everything before it is decided and written."""
    position: str | None
    """Read so far by a run that has not finished; a re-run resumes here."""

    @property
    def resume_from(self) -> str | None:
        return self.position if self.position is not None else self.cursor


@dataclass(frozen=True, slots=True)
class PageCounts:
    records: int
    new: int
    changed: int
    dirtied: int


@dataclass(frozen=True, slots=True)
class PendingWrite:
    """A write committed to the outbox before the CRM was called."""

    intent_id: str
    run_id: str
    from_value: str | None
    from_stage: Stage | None
    to_stage: Stage
    to_value: str
    rule: str | None
    reasons: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class QueuedContact:
    """A dirty contact with everything needed to decide and plan it."""

    connection: str
    crm_id: str
    object_type: str
    email: str | None
    contact: Contact
    """Without activities; ``stage`` is the rung the CRM shows."""
    contact_json: str
    stage_values: dict[str, str | None]
    modified_at: datetime | None
    activities: tuple[Activity, ...]
    attempts: int
    written_stage: Stage | None
    pending: PendingWrite | None

    def record(self) -> ContactRecord:
        return ContactRecord(
            crm_id=self.crm_id,
            object_type=self.object_type,
            contact=self.contact,
            stage_values=self.stage_values,
            modified_at=self.modified_at,
        )


def contact_json(contact: Contact) -> str:
    """The stored form of a contact: its facts, without the stage (kept in ``stage_values``) or activities."""
    return contact.model_dump_json(exclude={"stage", "activities"})


def contact_hash(object_type: str, facts_json: str, stage_values: dict[str, str | None]) -> str:
    payload = json.dumps([object_type, facts_json, sorted(stage_values.items())], separators=(",", ":"))
    return hashlib.sha1(payload.encode(), usedforsecurity=False).hexdigest()


def _activity_hash(record: ActivityRecord) -> str:
    activity = record.activity
    payload = json.dumps(
        [activity.kind, activity.occurred_at.isoformat(), activity.detail, sorted(record.contact_ids)],
        separators=(",", ":"),
    )
    return hashlib.sha1(payload.encode(), usedforsecurity=False).hexdigest()


def _stage(value: str | None) -> Stage | None:
    return Stage(value) if value else None


def _upsert(
    connection: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str], update_cols: list[str]
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE/NOTHING, for SQLite and PostgreSQL."""
    if not rows:
        return
    statement: postgresql.Insert | sqlite.Insert = (
        postgresql.insert(table) if connection.dialect.name == "postgresql" else sqlite.insert(table)
    )
    if update_cols:
        statement = statement.on_conflict_do_update(
            index_elements=keys, set_={name: statement.excluded[name] for name in update_cols}
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    connection.execute(statement, rows)


def _chunks(items: Sequence[str], size: int = 900) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Store:
    """The state store: SQLite (one file) or PostgreSQL, migrated on open."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back on any exception."""
        with self.engine.begin() as connection:
            yield connection

    def close(self) -> None:
        self.engine.dispose()

    # -- checkpoints ------------------------------------------------------------
    def checkpoint(self, job: str, connection: str, stream: str) -> Checkpoint:
        with self.begin() as db:
            row = db.execute(
                select(checkpoints.c.cursor, checkpoints.c.position).where(
                    checkpoints.c.job == job, checkpoints.c.connection == connection, checkpoints.c.stream == stream
                )
            ).first()
        return Checkpoint(row.cursor, row.position) if row else Checkpoint(None, None)

    def save_position(
        self, db: Connection, job: str, connection: str, stream: str, position: str | None, now: datetime
    ) -> None:
        if position is None:
            return
        _upsert(
            db,
            checkpoints,
            [
                {
                    "job": job,
                    "connection": connection,
                    "stream": stream,
                    "cursor": None,
                    "position": position,
                    "updated_at": now,
                    "version": 1,
                }
            ],
            ["job", "connection", "stream"],
            ["position", "updated_at"],
        )

    def clear_positions(self, job: str, connection: str, now: datetime) -> None:
        """Forget a half-read position (``--full`` starts from the beginning)."""
        with self.begin() as db:
            db.execute(
                update(checkpoints)
                .where(checkpoints.c.job == job, checkpoints.c.connection == connection)
                .values(position=None, updated_at=now)
            )

    def commit_checkpoints(self, db: Connection, job: str, connection: str, now: datetime) -> None:
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

    # -- pages ------------------------------------------------------------------
    def store_contact_page(
        self,
        db: Connection,
        job: str,
        connection: str,
        records: Sequence[ContactRecord],
        *,
        force_dirty: bool,
        now: datetime,
    ) -> PageCounts:
        """Upsert a page of contacts; mark dirty those whose facts changed (for every job that knows them)."""
        if not records:
            return PageCounts(0, 0, 0, 0)
        latest: dict[str, ContactRecord] = {record.crm_id: record for record in records}
        ids = list(latest)
        known: dict[str, str] = {}
        for part in _chunks(ids):
            known.update(
                db.execute(
                    select(contacts.c.crm_id, contacts.c.content_hash).where(
                        contacts.c.connection == connection, contacts.c.crm_id.in_(part)
                    )
                ).all()
            )
        rows = []
        for crm_id, record in latest.items():
            facts = contact_json(record.contact)
            digest = contact_hash(record.object_type, facts, record.stage_values)
            if known.get(crm_id) == digest:
                continue
            rows.append(
                {
                    "connection": connection,
                    "crm_id": crm_id,
                    "object_type": record.object_type,
                    "email": record.contact.email.lower() if record.contact.email else None,
                    "stage": record.contact.stage.value if record.contact.stage else None,
                    "stage_values": dict(record.stage_values),
                    "contact": facts,
                    "content_hash": digest,
                    "modified_at": record.modified_at,
                    "stored_at": now,
                }
            )
        _upsert(
            db,
            contacts,
            rows,
            ["connection", "crm_id"],
            ["object_type", "email", "stage", "stage_values", "contact", "content_hash", "modified_at", "stored_at"],
        )
        changed = [str(row["crm_id"]) for row in rows]
        dirtied = self._mark_dirty(db, job, connection, changed, ids if force_dirty else [], ids)
        new = sum(1 for crm_id in changed if crm_id not in known)
        return PageCounts(len(latest), new, len(changed) - new, dirtied)

    def store_activity_page(
        self,
        db: Connection,
        job: str,
        connection: str,
        records: Sequence[ActivityRecord],
        *,
        force_dirty: bool,
        now: datetime,
    ) -> PageCounts:
        """Upsert a page of activities, linked by the contacts' CRM ids; mark those contacts dirty.

        An activity may name a contact not read yet: it is kept, and attached
        when that contact arrives (a new contact is always decided).
        """
        if not records:
            return PageCounts(0, 0, 0, 0)
        latest: dict[str, ActivityRecord] = {record.crm_id: record for record in records}
        ids = list(latest)
        known: dict[str, str] = {}
        old_links: dict[str, set[str]] = {}
        for part in _chunks(ids):
            for crm_id, digest, contact_id in db.execute(
                select(activities.c.crm_id, activities.c.content_hash, activities.c.contact_crm_id).where(
                    activities.c.connection == connection, activities.c.crm_id.in_(part)
                )
            ).all():
                known[crm_id] = digest
                old_links.setdefault(crm_id, set()).add(contact_id)
        changed: list[str] = []
        rows: list[dict[str, Any]] = []
        touched: set[str] = set()
        for crm_id, record in latest.items():
            digest = _activity_hash(record)
            if force_dirty:
                touched.update(record.contact_ids)
            if known.get(crm_id) == digest:
                continue
            changed.append(crm_id)
            touched.update(record.contact_ids)
            touched.update(old_links.get(crm_id, ()))
            activity = record.activity
            for contact_id in dict.fromkeys(record.contact_ids):
                rows.append(
                    {
                        "connection": connection,
                        "contact_crm_id": contact_id,
                        "crm_id": crm_id,
                        "kind": activity.kind,
                        "occurred_at": activity.occurred_at,
                        "detail": activity.detail,
                        "content_hash": digest,
                        "modified_at": record.modified_at,
                    }
                )
        stale = [crm_id for crm_id in changed if crm_id in known]
        for part in _chunks(stale):
            db.execute(delete(activities).where(activities.c.connection == connection, activities.c.crm_id.in_(part)))
        if rows:
            db.execute(insert(activities), rows)
        affected = sorted(touched)
        dirtied = self._mark_dirty(db, job, connection, affected, affected if force_dirty else [], affected)
        new = sum(1 for crm_id in changed if crm_id not in known)
        return PageCounts(len(latest), new, len(changed) - new, dirtied)

    def _mark_dirty(
        self,
        db: Connection,
        job: str,
        connection: str,
        changed: Sequence[str],
        forced: Sequence[str],
        seen: Sequence[str],
    ) -> int:
        """Changed contacts become dirty for every job; seen ones this job never decided become dirty for it."""
        for part in _chunks(changed):
            db.execute(
                update(job_contacts)
                .where(job_contacts.c.connection == connection, job_contacts.c.crm_id.in_(part))
                .values(dirty=True)
            )
        if forced:
            for part in _chunks(forced):
                db.execute(
                    update(job_contacts)
                    .where(
                        job_contacts.c.job == job,
                        job_contacts.c.connection == connection,
                        job_contacts.c.crm_id.in_(part),
                    )
                    .values(dirty=True)
                )
        _upsert(
            db,
            job_contacts,
            [{"job": job, "connection": connection, "crm_id": crm_id, "dirty": True, "attempts": 0} for crm_id in seen],
            ["job", "connection", "crm_id"],
            [],
        )
        return len(set(changed) | set(forced))

    # -- the queue of contacts to decide -------------------------------------------
    def count_dirty(self, job: str, connection: str) -> int:
        with self.begin() as db:
            return int(
                db.execute(
                    select(func.count())
                    .select_from(job_contacts)
                    .where(
                        job_contacts.c.job == job,
                        job_contacts.c.connection == connection,
                        job_contacts.c.dirty.is_(True),
                    )
                ).scalar_one()
            )

    def dirty_chunk(self, job: str, connection: str, *, after: str, limit: int, now: datetime) -> list[QueuedContact]:
        """The next ``limit`` dirty contacts (by CRM id, after ``after``) that are due, with their activities."""
        with self.begin() as db:
            rows = db.execute(
                select(
                    contacts.c.crm_id,
                    contacts.c.object_type,
                    contacts.c.email,
                    contacts.c.stage,
                    contacts.c.stage_values,
                    contacts.c.contact,
                    contacts.c.modified_at,
                    job_contacts.c.attempts,
                    job_contacts.c.written_stage,
                )
                .join(
                    contacts,
                    and_(
                        contacts.c.connection == job_contacts.c.connection, contacts.c.crm_id == job_contacts.c.crm_id
                    ),
                )
                .where(
                    job_contacts.c.job == job,
                    job_contacts.c.connection == connection,
                    job_contacts.c.dirty.is_(True),
                    job_contacts.c.crm_id > after,
                    or_(job_contacts.c.not_before.is_(None), job_contacts.c.not_before <= now),
                )
                .order_by(job_contacts.c.crm_id)
                .limit(limit)
            ).all()
            if not rows:
                return []
            ids = [row.crm_id for row in rows]
            acts: dict[str, list[Activity]] = {}
            for crm_id, contact_id, kind, occurred_at, detail in db.execute(
                select(
                    activities.c.crm_id,
                    activities.c.contact_crm_id,
                    activities.c.kind,
                    activities.c.occurred_at,
                    activities.c.detail,
                ).where(activities.c.connection == connection, activities.c.contact_crm_id.in_(ids))
            ).all():
                acts.setdefault(contact_id, []).append(
                    Activity.model_construct(kind=kind, occurred_at=occurred_at, detail=detail, id=crm_id)
                )
            pending: dict[str, PendingWrite] = {}
            for row in db.execute(
                select(pending_writes).where(
                    pending_writes.c.job == job,
                    pending_writes.c.connection == connection,
                    pending_writes.c.crm_id.in_(ids),
                )
            ):
                pending[row.crm_id] = PendingWrite(
                    intent_id=row.intent_id,
                    run_id=row.run_id,
                    from_value=row.from_value,
                    from_stage=_stage(row.from_stage),
                    to_stage=Stage(row.to_stage),
                    to_value=row.to_value,
                    rule=row.rule,
                    reasons=tuple(row.reasons),
                    created_at=row.created_at,
                )
        queued = []
        for row in rows:
            contact = Contact.model_validate_json(row.contact).model_copy(update={"stage": _stage(row.stage)})
            found = acts.get(row.crm_id, [])
            found.sort(key=lambda activity: (activity.occurred_at, activity.id or ""))
            queued.append(
                QueuedContact(
                    connection=connection,
                    crm_id=row.crm_id,
                    object_type=row.object_type,
                    email=row.email,
                    contact=contact,
                    contact_json=row.contact,
                    stage_values=dict(row.stage_values),
                    modified_at=row.modified_at,
                    activities=tuple(found),
                    attempts=row.attempts,
                    written_stage=_stage(row.written_stage),
                    pending=pending.get(row.crm_id),
                )
            )
        return queued

    # -- decisions and results -------------------------------------------------------
    def record_decisions(self, db: Connection, job: str, connection: str, rows: Sequence[dict[str, Any]]) -> None:
        """Store decisions (``crm_id``, ``stage``, ``rule``, ``reasons``, ``at``, ``clear``); ``clear`` drops the dirty flag."""
        if not rows:
            return
        statement = (
            update(job_contacts)
            .where(
                job_contacts.c.job == job,
                job_contacts.c.connection == connection,
                job_contacts.c.crm_id == bindparam("b_crm_id"),
            )
            .values(
                decided_stage=bindparam("b_stage"),
                rule=bindparam("b_rule"),
                reasons=bindparam("b_reasons"),
                decided_at=bindparam("b_at"),
            )
        )
        db.execute(
            statement,
            [
                {
                    "b_crm_id": row["crm_id"],
                    "b_stage": row["stage"],
                    "b_rule": row["rule"],
                    "b_reasons": row["reasons"],
                    "b_at": row["at"],
                }
                for row in rows
            ],
        )
        cleared = [row["crm_id"] for row in rows if row["clear"]]
        self.clear_dirty(db, job, connection, cleared)

    def clear_dirty(self, db: Connection, job: str, connection: str, crm_ids: Sequence[str]) -> None:
        for part in _chunks(list(crm_ids)):
            db.execute(
                update(job_contacts)
                .where(
                    job_contacts.c.job == job,
                    job_contacts.c.connection == connection,
                    job_contacts.c.crm_id.in_(part),
                )
                .values(dirty=False, attempts=0, not_before=None)
            )

    def defer(
        self, db: Connection, job: str, connection: str, crm_id: str, attempts: int, not_before: datetime
    ) -> None:
        """Keep a contact queued, not before ``not_before`` (transient failure backoff)."""
        db.execute(
            update(job_contacts)
            .where(job_contacts.c.job == job, job_contacts.c.connection == connection, job_contacts.c.crm_id == crm_id)
            .values(dirty=True, attempts=attempts, not_before=not_before)
        )

    def add_intents(self, db: Connection, job: str, connection: str, rows: Sequence[dict[str, Any]]) -> None:
        """Commit planned writes to the outbox (replacing an older intent for the same record)."""
        _upsert(
            db,
            pending_writes,
            [{"job": job, "connection": connection, **row} for row in rows],
            ["job", "connection", "crm_id"],
            [
                "intent_id",
                "run_id",
                "from_value",
                "from_stage",
                "to_stage",
                "to_value",
                "rule",
                "reasons",
                "created_at",
            ],
        )

    def drop_intents(self, db: Connection, job: str, connection: str, crm_ids: Iterable[str]) -> None:
        for part in _chunks(list(crm_ids)):
            db.execute(
                delete(pending_writes).where(
                    pending_writes.c.job == job,
                    pending_writes.c.connection == connection,
                    pending_writes.c.crm_id.in_(part),
                )
            )

    def record_change(
        self,
        db: Connection,
        *,
        job: str,
        run_id: str,
        connection: str,
        crm_id: str,
        email: str | None,
        intent: PendingWrite,
    ) -> bool:
        """Add one history row for a write that landed; ``False`` if this intent was already recorded."""
        exists = db.execute(select(stage_changes.c.id).where(stage_changes.c.intent_id == intent.intent_id)).first()
        if exists:
            return False
        db.execute(
            insert(stage_changes).values(
                intent_id=intent.intent_id,
                job=job,
                run_id=run_id,
                connection=connection,
                crm_id=crm_id,
                email=email,
                from_stage=intent.from_stage.value if intent.from_stage else None,
                from_value=intent.from_value,
                to_stage=intent.to_stage.value,
                changed_at=intent.created_at,
                rule=intent.rule,
                reasons=list(intent.reasons),
            )
        )
        return True

    def record_changes(
        self, db: Connection, *, job: str, connection: str, items: Sequence[tuple[str, str | None, PendingWrite]]
    ) -> int:
        """History rows for writes that landed (``crm_id``, ``email``, intent); intents already recorded are skipped."""
        if not items:
            return 0
        seen: set[str] = set()
        keys = [intent.intent_id for _crm_id, _email, intent in items]
        for part in _chunks(keys):
            seen.update(
                db.execute(select(stage_changes.c.intent_id).where(stage_changes.c.intent_id.in_(part))).scalars()
            )
        rows = [
            {
                "intent_id": intent.intent_id,
                "job": job,
                "run_id": intent.run_id,
                "connection": connection,
                "crm_id": crm_id,
                "email": email,
                "from_stage": intent.from_stage.value if intent.from_stage else None,
                "from_value": intent.from_value,
                "to_stage": intent.to_stage.value,
                "changed_at": intent.created_at,
                "rule": intent.rule,
                "reasons": list(intent.reasons),
            }
            for crm_id, email, intent in items
            if intent.intent_id not in seen
        ]
        if rows:
            db.execute(insert(stage_changes), rows)
        return len(rows)

    def mark_written_many(
        self,
        db: Connection,
        *,
        job: str,
        connection: str,
        items: Sequence[tuple[QueuedContact, Stage, dict[str, str]]],
        now: datetime,
    ) -> None:
        """:meth:`mark_written` for a batch, in two statements."""
        if not items:
            return
        contact_rows = []
        job_rows = []
        for queued, stage, fields in items:
            values = {**queued.stage_values, **fields}
            contact_rows.append(
                {
                    "b_crm_id": queued.crm_id,
                    "b_stage": stage.value,
                    "b_values": values,
                    "b_hash": contact_hash(queued.object_type, queued.contact_json, values),
                }
            )
            job_rows.append({"b_crm_id": queued.crm_id, "b_stage": stage.value})
        db.execute(
            update(contacts)
            .where(contacts.c.connection == connection, contacts.c.crm_id == bindparam("b_crm_id"))
            .values(stage=bindparam("b_stage"), stage_values=bindparam("b_values"), content_hash=bindparam("b_hash")),
            contact_rows,
        )
        db.execute(
            update(job_contacts)
            .where(
                job_contacts.c.job == job,
                job_contacts.c.connection == connection,
                job_contacts.c.crm_id == bindparam("b_crm_id"),
            )
            .values(written_stage=bindparam("b_stage"), written_at=now),
            job_rows,
        )

    def mark_written(
        self,
        db: Connection,
        *,
        job: str,
        connection: str,
        crm_id: str,
        stage: Stage,
        fields: dict[str, str],
        object_type: str,
        facts_json: str,
        stage_values: dict[str, str | None],
        now: datetime,
    ) -> None:
        """The CRM now holds ``fields``: keep our copy in step so the echo of our own write is not a change."""
        values = {**stage_values, **{name: value for name, value in fields.items() if name in stage_values}}
        db.execute(
            update(contacts)
            .where(contacts.c.connection == connection, contacts.c.crm_id == crm_id)
            .values(
                stage=stage.value,
                stage_values=values,
                content_hash=contact_hash(object_type, facts_json, values),
            )
        )
        db.execute(
            update(job_contacts)
            .where(job_contacts.c.job == job, job_contacts.c.connection == connection, job_contacts.c.crm_id == crm_id)
            .values(written_stage=stage.value, written_at=now)
        )

    # -- dead letters ---------------------------------------------------------------
    def add_dead_letter(
        self,
        db: Connection,
        *,
        job: str,
        run_id: str,
        connection: str,
        crm_id: str,
        email: str | None,
        stage: Stage | None,
        code: str | None,
        reason: str | None,
        now: datetime,
    ) -> None:
        found = db.execute(
            select(dead_letters.c.id, dead_letters.c.attempts).where(
                dead_letters.c.job == job, dead_letters.c.connection == connection, dead_letters.c.crm_id == crm_id
            )
        ).first()
        values = {
            "email": email,
            "stage": stage.value if stage else None,
            "code": (code or "")[:80] or None,
            "reason": reason,
            "run_id": run_id,
            "last_seen": now,
            "resolved_at": None,
            "resolution": None,
        }
        if found:
            db.execute(
                update(dead_letters).where(dead_letters.c.id == found.id).values(attempts=found.attempts + 1, **values)
            )
        else:
            db.execute(
                insert(dead_letters).values(
                    job=job, connection=connection, crm_id=crm_id, first_seen=now, attempts=1, **values
                )
            )

    def resolve_dead_letters(
        self, db: Connection, job: str, connection: str, crm_ids: Sequence[str], resolution: str, now: datetime
    ) -> int:
        resolved = 0
        for part in _chunks(list(crm_ids)):
            result = db.execute(
                update(dead_letters)
                .where(
                    dead_letters.c.job == job,
                    dead_letters.c.connection == connection,
                    dead_letters.c.crm_id.in_(part),
                    dead_letters.c.resolved_at.is_(None),
                )
                .values(resolved_at=now, resolution=resolution)
            )
            resolved += result.rowcount or 0
        return resolved

    def requeue_dead_letters(self, job: str | None = None) -> dict[str, int]:
        """Queue every open dead letter's contact again (after a person fixed the cause); count per job."""
        queued: dict[str, int] = {}
        with self.begin() as db:
            query = select(dead_letters.c.job, dead_letters.c.connection, dead_letters.c.crm_id).where(
                dead_letters.c.resolved_at.is_(None)
            )
            if job:
                query = query.where(dead_letters.c.job == job)
            for row in db.execute(query).all():
                db.execute(
                    update(job_contacts)
                    .where(
                        job_contacts.c.job == row.job,
                        job_contacts.c.connection == row.connection,
                        job_contacts.c.crm_id == row.crm_id,
                    )
                    .values(dirty=True, attempts=0, not_before=None)
                )
                queued[row.job] = queued.get(row.job, 0) + 1
        return queued

    # -- runs -----------------------------------------------------------------------
    def start_run(self, run_id: str, job: str, owner: str, *, full: bool, dry_run: bool, now: datetime) -> None:
        with self.begin() as db:
            # a run still "running" while we hold the lease belonged to a dead holder
            db.execute(
                update(runs)
                .where(runs.c.job == job, runs.c.status == "running")
                .values(status="abandoned", finished_at=now, error="the process running it stopped (lease expired)")
            )
            db.execute(
                insert(runs).values(
                    id=run_id, job=job, owner=owner, status="running", full=full, dry_run=dry_run, started_at=now
                )
            )

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        counts: dict[str, Any],
        usage: dict[str, Any],
        error: str | None,
        now: datetime,
    ) -> None:
        with self.begin() as db:
            db.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(status=status, finished_at=now, counts=counts, usage=usage, error=error)
            )


def open_store(url: str, *, connect_args: dict[str, Any] | None = None) -> Store:
    """Open (and migrate to the newest schema) the store at ``url``."""
    engine = create_store_engine(url, connect_args=connect_args)
    migrate(engine)
    return Store(engine)


def retry_delay(attempts: int, *, base_seconds: float = 60.0, cap_seconds: float = 6 * 3600) -> timedelta:
    """Backoff before a record that failed transiently ``attempts`` times is tried again."""
    return timedelta(seconds=min(cap_seconds, base_seconds * 2 ** max(0, attempts - 1)))
