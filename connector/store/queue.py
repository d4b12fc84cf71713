"""The queue of contacts each job must decide (``job_contacts``): dirty marks, backoff, last decision, last write."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Select, and_, func, select, update

from connector.model import Activity, Contact, Stage
from connector.store.bulk import (
    activity_rows,
    db_json,
    db_time,
    insert_rows,
    json_reader,
    marks,
    set_where_in,
    time_binder,
    time_reader,
    update_rows,
)
from connector.store.outbox import Outbox
from connector.store.sql import in_chunks
from connector.store.tables import contacts, job_contacts, storable
from connector.store.values import Decision, Deferral, QueuedContact, Written

_KEYS = ("job", "connection", "crm_id")


class _Due(NamedTuple):
    """A queued contact's row as :meth:`Queue.due` reads it (the columns :meth:`Queue._queued` uses)."""

    crm_id: str
    object_type: str
    email: str | None
    stage: str | None
    stage_values: dict[str, Any]
    contact: str
    modified_at: datetime | None
    attempts: int
    written_stage: str | None


def _stage(value: str | None) -> Stage | None:
    return Stage(value) if value else None


class Queue:
    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    def mark_dirty(
        self,
        db: Connection,
        job: str,
        connection: str,
        *,
        changed: Sequence[str],
        forced: Sequence[str],
        seen: Sequence[str],
    ) -> set[str]:
        """Changed contacts become dirty for every job; ``forced`` ones for this job; seen ones this job
        never decided become dirty for it. Returns the contacts queued because they changed or were forced."""
        # a row already dirty is left as it is (an activity page names each contact about once per ten activities)
        for part in in_chunks([storable(crm_id) for crm_id in changed]):
            set_where_in(
                db, "job_contacts", "dirty = TRUE", [("connection", connection)], "crm_id", part, unless="dirty"
            )
        for part in in_chunks([storable(crm_id) for crm_id in forced]):
            set_where_in(
                db, "job_contacts", "dirty = TRUE", [("job", job), ("connection", connection)], "crm_id", part,
                unless="dirty",
            )  # fmt: skip
        insert_rows(
            db,
            "job_contacts",
            ("job", "connection", "crm_id", "dirty", "attempts"),
            [(job, connection, storable(crm_id), True, 0) for crm_id in seen],
            conflict=("job", "connection", "crm_id"),
        )
        return set(changed) | set(forced)

    def count(self, db: Connection, job: str, connection: str) -> int:
        """Contacts queued for ``job`` on ``connection`` (due now or deferred)."""
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

    def due(
        self, db: Connection, job: str, connection: str, *, after: str, limit: int, now: datetime,
        until: str | None = None,
    ) -> list[QueuedContact]:  # fmt: skip
        """The next ``limit`` dirty contacts (by CRM id, after ``after`` and up to ``until`` when given) that are
        due, with their activities and their open outbox intent."""
        one = marks(db, 1)
        upto, bound = (f" AND j.crm_id <= {one}", (storable(until),)) if until is not None else ("", ())
        # handed to the driver as it is, values made what the column types would make them (a 100,000-contact run
        # reads 200 such chunks; SQLAlchemy's compiling and result processing were a third of loading them)
        sql = (
            "SELECT c.crm_id, c.object_type, c.email, c.stage, c.stage_values, c.contact, c.modified_at,"
            " j.attempts, j.written_stage FROM job_contacts j JOIN contacts c"
            " ON c.connection = j.connection AND c.crm_id = j.crm_id"
            f" WHERE j.job = {one} AND j.connection = {one} AND j.dirty = TRUE AND j.crm_id > {one}{upto}"
            f" AND (j.not_before IS NULL OR j.not_before <= {one}) ORDER BY j.crm_id LIMIT {one}"
        )
        read_json, read_time = json_reader(db), time_reader(db)
        rows = [
            _Due(crm_id, object_type, email, stage, read_json(values), contact, read_time(modified), attempts, written)
            for crm_id, object_type, email, stage, values, contact, modified, attempts, written in db.exec_driver_sql(
                sql, (job, connection, storable(after), *bound, time_binder(db)(now), limit)
            )
        ]
        return self._queued(db, job, connection, rows)

    def chunk_bounds(self, db: Connection, job: str, connection: str, *, size: int, now: datetime) -> list[str]:
        """The CRM id that ends each run of ``size`` due contacts, in CRM id order (the last run's end is not
        given: it runs to the end of the queue). Chunk ``k`` of the queue is then the due contacts after bound
        ``k - 1`` (after "" for the first) up to bound ``k``, whoever decides it and in whatever order."""
        one = marks(db, 1)
        modulo = "%%" if db.dialect.name == "postgresql" else "%"  # psycopg's placeholders start with %
        sql = (
            "SELECT crm_id FROM (SELECT j.crm_id AS crm_id, ROW_NUMBER() OVER (ORDER BY j.crm_id) AS n"
            f" FROM job_contacts j WHERE j.job = {one} AND j.connection = {one} AND j.dirty = TRUE"
            f" AND (j.not_before IS NULL OR j.not_before <= {one})) AS due WHERE n {modulo} {one} = 0"
            " ORDER BY crm_id"
        )
        rows = db.exec_driver_sql(sql, (job, connection, time_binder(db)(now), size)).all()
        return [crm_id for (crm_id,) in rows]

    def records(
        self, db: Connection, job: str, connection: str, crm_ids: Sequence[str], *, now: datetime
    ) -> tuple[list[QueuedContact], set[str]]:
        """These contacts of ``job``, queued or not (a unifying job decides all of a person's records together),
        as :meth:`due` gives them; and which of them wait out a retry backoff (``not_before`` after ``now``)."""
        rows: list[Any] = []
        for part in in_chunks(sorted(set(crm_ids))):
            rows.extend(
                db.execute(
                    self._select().where(
                        job_contacts.c.job == job,
                        job_contacts.c.connection == connection,
                        job_contacts.c.crm_id.in_(part),
                    )
                ).all()
            )
        rows.sort(key=lambda row: row.crm_id)
        waiting = {row.crm_id for row in rows if row.dirty and row.not_before is not None and row.not_before > now}
        return self._queued(db, job, connection, rows), waiting

    @staticmethod
    def _select() -> Select[Any]:
        return select(
            contacts.c.crm_id,
            contacts.c.object_type,
            contacts.c.email,
            contacts.c.stage,
            contacts.c.stage_values,
            contacts.c.contact,
            contacts.c.modified_at,
            job_contacts.c.attempts,
            job_contacts.c.written_stage,
            job_contacts.c.dirty,
            job_contacts.c.not_before,
        ).join(
            contacts,
            and_(contacts.c.connection == job_contacts.c.connection, contacts.c.crm_id == job_contacts.c.crm_id),
        )

    def _queued(self, db: Connection, job: str, connection: str, rows: Sequence[Any]) -> list[QueuedContact]:
        if not rows:
            return []
        ids = [row.crm_id for row in rows]
        acts: dict[str, list[Activity]] = {}
        for part in in_chunks(ids):
            for crm_id, contact_id, kind, occurred_at, detail in activity_rows(db, connection, part):
                # validated: pydantic's validation (~1.3 us) costs less than its model_construct (~2.2 us)
                acts.setdefault(contact_id, []).append(
                    Activity(kind=kind, occurred_at=occurred_at, detail=detail, id=crm_id)
                )
        pending = self._outbox.pending(db, job, connection, ids)
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

    def record_decisions(self, db: Connection, job: str, connection: str, decisions: Sequence[Decision]) -> None:
        """Keep each contact's last decision; those marked ``done`` leave the queue."""
        if not decisions:
            return
        update_rows(
            db,
            job_contacts,
            _KEYS,
            ("decided_stage", "rule", "reasons", "decided_at", "decide_again_at"),
            [
                (
                    job,
                    connection,
                    storable(decision.crm_id),
                    decision.stage.value if decision.stage else None,
                    decision.rule,
                    db_json(list(decision.reasons)),
                    db_time(db, decision.at),
                    db_time(db, decision.decide_again_at),
                )
                for decision in decisions
            ],
        )
        self.done(db, job, connection, [decision.crm_id for decision in decisions if decision.done])

    def wake(self, db: Connection, job: str, connection: str, now: datetime) -> int:
        """Queue the contacts whose decision time alone may have changed by ``now`` (their
        ``decide_again_at`` has come); nothing is re-pulled. Returns how many were queued."""
        result = db.execute(
            update(job_contacts)
            .where(
                job_contacts.c.job == job,
                job_contacts.c.connection == connection,
                job_contacts.c.decide_again_at <= now,
            )
            .values(dirty=True, decide_again_at=None)
        )
        return int(result.rowcount or 0)

    def done(self, db: Connection, job: str, connection: str, crm_ids: Sequence[str]) -> None:
        """These contacts leave the queue (and their backoff is forgotten)."""
        self._reset(db, job, connection, crm_ids, queued=False)

    def requeue(self, db: Connection, job: str, connection: str, crm_ids: Sequence[str]) -> None:
        """Queue these contacts again now, with a fresh retry count (a person fixed what failed)."""
        self._reset(db, job, connection, crm_ids, queued=True)

    @staticmethod
    def _reset(db: Connection, job: str, connection: str, crm_ids: Sequence[str], *, queued: bool) -> None:
        assignment = f"dirty = {'TRUE' if queued else 'FALSE'}, attempts = 0, not_before = NULL"
        for part in in_chunks([storable(crm_id) for crm_id in crm_ids]):
            set_where_in(db, "job_contacts", assignment, [("job", job), ("connection", connection)], "crm_id", part)

    def defer(self, db: Connection, job: str, connection: str, deferrals: Sequence[Deferral]) -> None:
        """Keep contacts queued, each not before its ``not_before`` (transient failure backoff)."""
        update_rows(
            db,
            job_contacts,
            _KEYS,
            ("dirty", "attempts", "not_before"),
            [
                (job, connection, storable(item.crm_id), True, item.attempts, db_time(db, item.not_before))
                for item in deferrals
            ],
        )

    def mark_written(
        self, db: Connection, job: str, connection: str, written: Sequence[Written], now: datetime
    ) -> None:
        """Remember the rung last written for each contact (the current rung when the CRM shows none)."""
        at = db_time(db, now)
        update_rows(
            db,
            job_contacts,
            _KEYS,
            ("written_stage", "written_at"),
            [(job, connection, storable(item.contact.crm_id), item.stage.value, at) for item in written],
        )
