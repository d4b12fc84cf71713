"""Read-only views of the store for the admin commands (status, history, explain, dead letters)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, func, select

from connector.model import Activity, Contact
from connector.runs import Resolution, RunStatus
from connector.store.sql import in_chunks
from connector.store.state import Store
from connector.store.tables import (
    activities,
    checkpoints,
    contacts,
    dead_letters,
    job_contacts,
    ladder_notes,
    leases,
    person_links,
    runs,
    stage_changes,
)


@dataclass(frozen=True, slots=True)
class RunView:
    id: str
    job: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    dry_run: bool
    full: bool
    counts: dict[str, Any]
    usage: dict[str, Any]
    error: str | None


@dataclass(frozen=True, slots=True)
class CheckpointView:
    connection: str
    stream: str
    cursor: str | None
    position: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ChangeView:
    job: str
    run_id: str
    connection: str
    crm_id: str
    email: str | None
    from_stage: str | None
    from_value: str | None
    to_stage: str
    changed_at: datetime
    rule: str | None
    reasons: list[str]
    person_id: str | None = None
    """The person the record is (a unifying job matched it), else ``None``."""


@dataclass(frozen=True, slots=True)
class DeadLetterView:
    id: int
    job: str
    connection: str
    crm_id: str
    email: str | None
    stage: str | None
    code: str | None
    reason: str | None
    first_seen: datetime
    last_seen: datetime
    attempts: int
    resolved_at: datetime | None
    resolution: Resolution | None


@dataclass(frozen=True, slots=True)
class JobState:
    job: str
    dirty: bool
    decided_stage: str | None
    rule: str | None
    reasons: list[str]
    decided_at: datetime | None
    written_stage: str | None
    written_at: datetime | None


@dataclass(frozen=True, slots=True)
class ContactView:
    connection: str
    crm_id: str
    object_type: str
    email: str | None
    stage: str | None
    stage_values: dict[str, str | None]
    contact: Contact
    activities: tuple[Activity, ...]
    jobs: list[JobState]


def _run(row: Any) -> RunView:
    return RunView(
        id=row.id,
        job=row.job,
        status=RunStatus(row.status),
        started_at=row.started_at,
        finished_at=row.finished_at,
        dry_run=row.dry_run,
        full=row.full,
        counts=row.counts or {},
        usage=row.usage or {},
        error=row.error,
    )


def recent_runs(store: Store, job: str, limit: int = 1) -> list[RunView]:
    with store.begin() as db:
        rows = db.execute(select(runs).where(runs.c.job == job).order_by(runs.c.started_at.desc()).limit(limit)).all()
    return [_run(row) for row in rows]


def job_checkpoints(store: Store, job: str) -> list[CheckpointView]:
    with store.begin() as db:
        rows = db.execute(
            select(checkpoints).where(checkpoints.c.job == job).order_by(checkpoints.c.connection, checkpoints.c.stream)
        ).all()
    return [CheckpointView(r.connection, r.stream, r.cursor, r.position, r.updated_at) for r in rows]


def queue_sizes(store: Store, job: str) -> dict[str, int]:
    """Open dead letters and contacts still queued (dirty) for ``job``."""
    with store.begin() as db:
        dead = db.execute(
            select(func.count())
            .select_from(dead_letters)
            .where(dead_letters.c.job == job, dead_letters.c.resolved_at.is_(None))
        ).scalar_one()
        queued = db.execute(
            select(func.count())
            .select_from(job_contacts)
            .join(
                contacts,
                and_(contacts.c.connection == job_contacts.c.connection, contacts.c.crm_id == job_contacts.c.crm_id),
            )
            .where(job_contacts.c.job == job, job_contacts.c.dirty.is_(True))
        ).scalar_one()
    return {"dead_letters": int(dead), "queued": int(queued)}


def lease_of(store: Store, job: str) -> tuple[str, datetime] | None:
    """Who holds ``job``'s lease and until when, or ``None`` when no run holds it."""
    with store.begin() as db:
        row = db.execute(select(leases.c.owner, leases.c.expires_at).where(leases.c.job == job)).first()
    return (row.owner, row.expires_at) if row else None


def parse_contact_key(key: str) -> tuple[str | None, str | None, str | None]:
    """``connection:id`` or an e-mail address -> (connection, crm_id, email)."""
    if "@" in key:
        return None, None, key.strip().lower()
    connection, _, crm_id = key.partition(":")
    if not crm_id:
        raise ValueError(f"{key!r} is neither an e-mail address nor connection:id")
    return connection, crm_id, None


def changes(
    store: Store,
    *,
    contact: str | None = None,
    job: str | None = None,
    stage: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
    connection: str | None = None,
) -> list[ChangeView]:
    """Stage changes, newest first, filtered."""
    c = stage_changes.c
    query = select(stage_changes, person_links.c.person_id).outerjoin(
        person_links, and_(person_links.c.connection == c.connection, person_links.c.crm_id == c.crm_id)
    )
    query = _history_filter(query, c, c.changed_at, contact=contact, job=job, connection=connection, since=since,
                            until=until)  # fmt: skip
    if stage:
        query = query.where(c.to_stage == stage)
    query = query.order_by(c.changed_at.desc(), c.id.desc()).limit(limit)
    with store.begin() as db:
        rows = db.execute(query).all()
    return [
        ChangeView(
            job=r.job,
            run_id=r.run_id,
            connection=r.connection,
            crm_id=r.crm_id,
            email=r.email,
            from_stage=r.from_stage,
            from_value=r.from_value,
            to_stage=r.to_stage,
            changed_at=r.changed_at,
            rule=r.rule,
            reasons=list(r.reasons or []),
            person_id=r.person_id,
        )
        for r in rows
    ]


def _history_filter(
    query: Select[Any],
    columns: Any,
    at: Any,
    *,
    contact: str | None,
    job: str | None,
    connection: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Select[Any]:
    """The filters ``history`` shares between stage changes and ladder notes (``at``: the row's moment)."""
    if contact:
        connection, crm_id, email = parse_contact_key(contact)
        query = (
            query.where(columns.email == email)
            if email
            else query.where(columns.connection == connection, columns.crm_id == crm_id)
        )
    if job:
        query = query.where(columns.job == job)
    if connection:
        query = query.where(columns.connection == connection)
    if since:
        query = query.where(at >= since)
    if until:
        query = query.where(at < until)
    return query


@dataclass(frozen=True, slots=True)
class LadderNoteView:
    """A history entry that is not a stage change: the contact was found beyond the ladder, nothing written."""

    job: str
    run_id: str
    connection: str
    crm_id: str
    email: str | None
    reason: str
    noted_at: datetime
    back_at: datetime | None


def ladder_notes_of(
    store: Store,
    *,
    contact: str | None = None,
    job: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
    connection: str | None = None,
) -> list[LadderNoteView]:
    """The contacts found beyond the ladder (why nothing was written), newest first, filtered as :func:`changes`."""
    n = ladder_notes.c
    query = select(ladder_notes)
    query = _history_filter(query, n, n.noted_at, contact=contact, job=job, connection=connection, since=since,
                            until=until)  # fmt: skip
    query = query.order_by(n.noted_at.desc(), n.id.desc()).limit(limit)
    with store.begin() as db:
        rows = db.execute(query).all()
    return [
        LadderNoteView(
            job=r.job,
            run_id=r.run_id,
            connection=r.connection,
            crm_id=r.crm_id,
            email=r.email,
            reason=r.reason,
            noted_at=r.noted_at,
            back_at=r.back_at,
        )
        for r in rows
    ]


def dead_letter_list(store: Store, *, job: str | None = None, include_resolved: bool = False) -> list[DeadLetterView]:
    d = dead_letters.c
    query = select(dead_letters)
    if job:
        query = query.where(d.job == job)
    if not include_resolved:
        query = query.where(d.resolved_at.is_(None))
    with store.begin() as db:
        rows = db.execute(query.order_by(d.last_seen.desc(), d.id)).all()
    return [
        DeadLetterView(
            id=r.id,
            job=r.job,
            connection=r.connection,
            crm_id=r.crm_id,
            email=r.email,
            stage=r.stage,
            code=r.code,
            reason=r.reason,
            first_seen=r.first_seen,
            last_seen=r.last_seen,
            attempts=r.attempts,
            resolved_at=r.resolved_at,
            resolution=Resolution(r.resolution) if r.resolution else None,
        )
        for r in rows
    ]


def find_contacts(store: Store, key: str) -> list[ContactView]:
    """Every stored record for an e-mail address (one per CRM) or one ``connection:id``."""
    connection, crm_id, email = parse_contact_key(key)
    query = select(contacts)
    query = (
        query.where(contacts.c.email == email)
        if email
        else query.where(contacts.c.connection == connection, contacts.c.crm_id == crm_id)
    )
    found = []
    with store.begin() as db:
        for row in db.execute(query.order_by(contacts.c.connection, contacts.c.crm_id)).all():
            acts = tuple(
                Activity(kind=a.kind, occurred_at=a.occurred_at, detail=a.detail, id=a.crm_id)
                for a in db.execute(
                    select(activities)
                    .where(activities.c.connection == row.connection, activities.c.contact_crm_id == row.crm_id)
                    .order_by(activities.c.occurred_at)
                ).all()
            )
            states = [
                JobState(
                    job=j.job,
                    dirty=j.dirty,
                    decided_stage=j.decided_stage,
                    rule=j.rule,
                    reasons=list(j.reasons or []),
                    decided_at=j.decided_at,
                    written_stage=j.written_stage,
                    written_at=j.written_at,
                )
                for j in db.execute(
                    select(job_contacts).where(
                        job_contacts.c.connection == row.connection, job_contacts.c.crm_id == row.crm_id
                    )
                ).all()
            ]
            found.append(
                ContactView(
                    connection=row.connection,
                    crm_id=row.crm_id,
                    object_type=row.object_type,
                    email=row.email,
                    stage=row.stage,
                    stage_values=dict(row.stage_values),
                    contact=Contact.model_validate_json(row.contact),
                    activities=acts,
                    jobs=states,
                )
            )
    return found


def last_completed_at(store: Store, job: str) -> datetime | None:
    """When ``job``'s last completed run (not a dry run) finished, or ``None`` if it never completed one."""
    with store.begin() as db:
        value = db.execute(
            select(func.max(runs.c.finished_at)).where(
                runs.c.job == job, runs.c.status == RunStatus.COMPLETED.value, runs.c.dry_run.is_(False)
            )
        ).scalar_one()
    return value


def latest_run_since(store: Store, job: str, since: datetime) -> RunView | None:
    """``job``'s newest run started at or after ``since`` (the run a command just made, failed or not)."""
    with store.begin() as db:
        row = db.execute(
            select(runs)
            .where(runs.c.job == job, runs.c.started_at >= since)
            .order_by(runs.c.started_at.desc())
            .limit(1)
        ).first()
    return _run(row) if row else None


def run_list(store: Store, *, job: str | None = None, status: str | None = None, limit: int = 50) -> list[RunView]:
    """Runs, newest first, optionally of one job and one status."""
    query = select(runs)
    if job:
        query = query.where(runs.c.job == job)
    if status:
        query = query.where(runs.c.status == status)
    with store.begin() as db:
        rows = db.execute(query.order_by(runs.c.started_at.desc(), runs.c.id).limit(limit)).all()
    return [_run(row) for row in rows]


def known_jobs(store: Store) -> set[str]:
    """Every job name the store has a run of."""
    with store.begin() as db:
        return {row[0] for row in db.execute(select(runs.c.job).distinct()).all()}


@dataclass(frozen=True, slots=True)
class FunnelContact:
    """What the funnel reads of one stored contact: its facts, its CRM stage values, its dated activities."""

    connection: str
    crm_id: str
    stage: str | None
    stage_values: dict[str, str | None]
    contact: Contact
    stored_at: datetime
    activities: tuple[Activity, ...]
    modified_at: datetime | None = None


def funnel_contacts(
    store: Store, *, job: str | None = None, connections: list[str] | None = None, chunk: int = 500
) -> Iterator[FunnelContact]:
    """Every stored contact in scope (a job's, some connections'), with its activities, in chunks."""
    query = select(contacts).order_by(contacts.c.connection, contacts.c.crm_id)
    if job:
        query = query.join(
            job_contacts,
            and_(
                job_contacts.c.connection == contacts.c.connection,
                job_contacts.c.crm_id == contacts.c.crm_id,
                job_contacts.c.job == job,
            ),
        )
    if connections is not None:
        query = query.where(contacts.c.connection.in_(connections))
    last: tuple[str, str] | None = None
    while True:
        page = query
        if last is not None:
            page = page.where(
                (contacts.c.connection > last[0]) | and_(contacts.c.connection == last[0], contacts.c.crm_id > last[1])
            )
        with store.begin() as db:
            rows = db.execute(page.limit(chunk)).all()
            if not rows:
                return
            found = _funnel_rows(db, rows)
        yield from found
        last = (rows[-1].connection, rows[-1].crm_id)


def _funnel_rows(db: Connection, rows: Sequence[Any]) -> list[FunnelContact]:
    """Stored contact rows with their activities, as the funnel reads them."""
    by_contact: dict[tuple[str, str], list[Activity]] = {}
    for connection in {row.connection for row in rows}:
        ids = [row.crm_id for row in rows if row.connection == connection]
        for part in in_chunks(ids):
            for a in db.execute(
                select(
                    activities.c.contact_crm_id,
                    activities.c.kind,
                    activities.c.occurred_at,
                    activities.c.crm_id,
                    activities.c.detail,
                )
                .where(activities.c.connection == connection, activities.c.contact_crm_id.in_(part))
                .order_by(activities.c.occurred_at)
            ).all():
                by_contact.setdefault((connection, a.contact_crm_id), []).append(
                    Activity(kind=a.kind, occurred_at=a.occurred_at, id=a.crm_id, detail=a.detail)
                )
    return [
        FunnelContact(
            connection=row.connection,
            crm_id=row.crm_id,
            stage=row.stage,
            stage_values=dict(row.stage_values),
            contact=Contact.model_validate_json(row.contact),
            stored_at=row.stored_at,
            activities=tuple(by_contact.get((row.connection, row.crm_id), ())),
            modified_at=row.modified_at,
        )
        for row in rows
    ]


def funnel_people(store: Store, *, job: str, connections: list[str], chunk: int = 500) -> Iterator[list[FunnelContact]]:
    """A unifying job's people, each as the list of her stored records in ``connections``, in chunks of people;
    then each record no run has matched yet, alone."""
    link, jc = person_links.c, job_contacts.c
    after = ""
    while True:
        with store.begin() as db:
            person_ids = list(
                db.execute(
                    select(link.person_id)
                    .join(job_contacts, and_(jc.connection == link.connection, jc.crm_id == link.crm_id))
                    .where(jc.job == job, jc.connection.in_(connections), link.person_id > after)
                    .group_by(link.person_id)
                    .order_by(link.person_id)
                    .limit(chunk)
                ).scalars()
            )
            if not person_ids:
                break
            members = store.people.members(db, person_ids, connections)
            keys = [key for person_id in person_ids for key in members.get(person_id, [])]
            rows: list[Any] = []
            for connection in connections:
                ids = [key.crm_id for key in keys if key.connection == connection]
                for part in in_chunks(ids):
                    rows.extend(
                        db.execute(
                            select(contacts).where(contacts.c.connection == connection, contacts.c.crm_id.in_(part))
                        ).all()
                    )
            records = {(r.connection, r.crm_id): r for r in _funnel_rows(db, rows)}
        after = person_ids[-1]
        for person_id in person_ids:
            group = [
                records[(k.connection, k.crm_id)]
                for k in members.get(person_id, [])
                if (k.connection, k.crm_id) in records
            ]
            if group:
                yield group
    last: tuple[str, str] | None = None
    alone = (
        select(contacts)
        .join(job_contacts, and_(jc.connection == contacts.c.connection, jc.crm_id == contacts.c.crm_id, jc.job == job))
        .outerjoin(person_links, and_(link.connection == contacts.c.connection, link.crm_id == contacts.c.crm_id))
        .where(link.person_id.is_(None), contacts.c.connection.in_(connections))
        .order_by(contacts.c.connection, contacts.c.crm_id)
    )
    while True:
        page = alone
        if last is not None:
            page = page.where(
                (contacts.c.connection > last[0]) | and_(contacts.c.connection == last[0], contacts.c.crm_id > last[1])
            )
        with store.begin() as db:
            alone_rows = db.execute(page.limit(chunk)).all()
            if not alone_rows:
                return
            found = _funnel_rows(db, alone_rows)
        for record in found:
            yield [record]
        last = (alone_rows[-1].connection, alone_rows[-1].crm_id)
