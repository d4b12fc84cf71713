"""The normalised records of each connection (``contacts``, ``activities``), shared by every job reading it.

A content hash tells a re-read record from a changed one, so an inclusive
cursor or a re-run after a crash never queues anything twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, delete, select

from connector.crm import ActivityRecord, ContactRecord, RemovedRecord
from connector.model import Contact
from connector.store import staging
from connector.store.bulk import db_json, has_rows, insert_rows, marks, select_rows, time_binder, update_rows
from connector.store.first_load import FirstLoad
from connector.store.queue import Queue
from connector.store.removals import remove_contacts
from connector.store.sql import in_chunks
from connector.store.tables import EMAIL, activities, contacts, storable
from connector.store.values import PageCounts, Written

_CONTACT_COLUMNS = (
    "connection",
    "crm_id",
    "object_type",
    "email",
    "stage",
    "stage_values",
    "contact",
    "content_hash",
    "modified_at",
    "stored_at",
)
_CONTACT_KEYS = ("connection", "crm_id")
_ACTIVITY_COLUMNS = staging.COLUMNS
_BY_KEY = itemgetter(1, 2)
"""An activity row's key within its connection (``contact_crm_id``, ``crm_id``)."""
_BY_EMAIL = ("connection", "email", "crm_id", "stored_at")
_BY_STORED = itemgetter(3, 2)
"""A contact row read by e-mail, in the order it was stored (``stored_at``, ``crm_id``)."""


def contact_json(contact: Contact) -> str:
    """The stored form of a contact: its facts, without the stage (kept in ``stage_values``) or activities.
    ``other_emails`` only when there are some, so a record's hash is what it was before they existed."""
    if contact.other_emails:
        return contact.model_dump_json(exclude={"stage", "activities"})
    return contact.model_dump_json(exclude={"stage", "activities", "other_emails"})


def _framed(parts: Iterable[str | None]) -> str:
    """``parts`` joined so that no two different lists give the same text: each one length-prefixed
    (``-`` for none). Cheaper than ``json.dumps`` of a list, which re-escapes the contact's JSON."""
    return "".join("-" if part is None else f"{len(part)}:{part}" for part in parts)


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def contact_hash(object_type: str, facts_json: str, stage_values: dict[str, str | None]) -> str:
    """What tells a changed contact from a re-read one: its type, its facts and its stage field values."""
    values = sorted(stage_values.items())
    return _digest(_framed([object_type, facts_json, *(item for pair in values for item in pair)]))


def activity_hash(record: ActivityRecord) -> str:
    activity = record.activity
    detail = activity.detail
    ids = record.contact_ids
    contact_part = f"{len(ids[0])}:{ids[0]}" if len(ids) == 1 else _framed(sorted(ids))
    return _digest(
        f"{len(activity.kind)}:{activity.kind}{activity.occurred_at.isoformat()}|"
        f"{'-' if detail is None else f'{len(detail)}:{detail}'}{contact_part}"
    )


def stored_email(email: str | None) -> str | None:
    """The normalised address kept to find a person across CRMs; none when it cannot be one (too long)."""
    if not email or len(email) > EMAIL:
        return None
    return email.lower()


class Records:
    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    ANALYZE_AFTER = 1_000
    """Records stored by one pull after which PostgreSQL's statistics of the tables it filled are refreshed."""

    @staticmethod
    def refresh_statistics(db: Connection, stream: str, stored: int) -> bool:
        """PostgreSQL plans each statement from its tables' statistics, and a table just filled has none
        until autovacuum's next pass (never, where autovacuum is off). Without them the planner took the
        ``(job, connection, decide_again_at)`` index for the queue's updates by CRM id and filtered every
        row of the job: 3 ms an update at 20,000 contacts instead of 0.1, so deciding and recording grew
        with the square of the contacts. After a pull that stored ``ANALYZE_AFTER`` records or more, the
        tables it filled are analyzed (a sample: well under a second). SQLite: nothing to do. Returns
        whether it ran."""
        if stored < Records.ANALYZE_AFTER or db.dialect.name != "postgresql":
            return False
        filled = "contacts, job_contacts" if stream == "contacts" else "activities, job_contacts"
        db.exec_driver_sql(f"ANALYZE {filled}")
        return True

    @staticmethod
    def first_load(db: Connection, connection: str, stream: str) -> FirstLoad | None:
        """A :class:`FirstLoad` for a pull of ``stream`` (``contacts`` or ``activities``) when the
        connection has nothing stored in that stream's table yet; none otherwise."""
        table = "contacts" if stream == "contacts" else "activities"
        return None if has_rows(db, table, connection) else FirstLoad()

    @staticmethod
    def _to_look_up(db: Connection, table: str, connection: str, ids: list[str], first: FirstLoad | None) -> list[str]:
        """The ids whose stored hash must be read: those a first load may have stored already, else all of them
        unless the connection has nothing stored (one index probe)."""
        if first is not None:
            found = first.may_have(ids)
            first.add(ids)
            return found
        return ids if has_rows(db, table, connection) else []

    def store_contacts(
        self,
        db: Connection,
        job: str,
        connection: str,
        records: Sequence[ContactRecord],
        *,
        force_dirty: bool,
        now: datetime,
        first_load: FirstLoad | None = None,
    ) -> PageCounts:
        """Upsert a page of contacts; queue those whose facts changed (for every job that knows them).
        ``first_load``: the pull's :meth:`first_load`, when it has one."""
        if not records:
            return PageCounts(0, 0, 0, 0)
        latest: dict[str, ContactRecord] = {record.crm_id: record for record in records}
        ids = list(latest)
        known: dict[str, str] = {}
        if look_up := self._to_look_up(db, "contacts", connection, ids, first_load):
            for part in in_chunks(look_up):
                known.update(
                    db.execute(
                        select(contacts.c.crm_id, contacts.c.content_hash).where(
                            contacts.c.connection == connection, contacts.c.crm_id.in_(part)
                        )
                    ).all()
                )
        to_db = time_binder(db)
        stored_at = to_db(now)
        rows: list[tuple[Any, ...]] = []
        changed: list[str] = []
        for crm_id, record in latest.items():
            facts = contact_json(record.contact)
            digest = contact_hash(record.object_type, facts, record.stage_values)
            if known.get(crm_id) == digest:
                continue
            changed.append(crm_id)
            contact = record.contact
            email = stored_email(contact.email)
            rows.append(
                (
                    connection,
                    storable(crm_id),
                    record.object_type,
                    None if email is None else storable(email),
                    contact.stage.value if contact.stage else None,
                    db_json(dict(record.stage_values)),
                    storable(facts),
                    digest,
                    to_db(record.modified_at),
                    stored_at,
                )
            )
        insert_rows(db, "contacts", _CONTACT_COLUMNS, rows, conflict=_CONTACT_KEYS, update=_CONTACT_COLUMNS[2:])
        dirtied = self._queue.mark_dirty(
            db, job, connection, changed=changed, forced=ids if force_dirty else [], seen=ids
        )
        new = sum(1 for crm_id in changed if crm_id not in known)
        return PageCounts(len(latest), new, len(changed) - new, len(dirtied))

    def contact_ids_by_email(self, db: Connection, connection: str, emails: Sequence[str]) -> dict[str, str]:
        """The stored contact of each of ``emails`` (lower-cased), one ``IN`` list per 900; an address two
        stored contacts share goes to the one stored last.

        The connection is compared here, not in SQL: given ``connection = ?`` SQLite searches the primary key
        (every contact of the connection, on each call) instead of the e-mail index."""
        found: dict[str, str] = {}
        wanted = [email for email in dict.fromkeys(emails) if stored_email(email) == email]
        for part in in_chunks(wanted):
            # handed to the driver as it is (a HubSpot run asks this for ~600,000 e-mails of form submissions and
            # e-mail events: SQLAlchemy's expanding IN and result processing cost 3x the query); ``stored_at``
            # is only compared, so it is read as the driver gives it (text on SQLite, in the same order)
            rows = select_rows(db, _BY_EMAIL, f"FROM contacts WHERE email IN ({marks(db, len(part))})", part)
            mine = sorted((row for row in rows if row[0] == connection), key=_BY_STORED)
            found.update({email: crm_id for _, email, crm_id, _ in mine})
        return found

    def remove_contacts(
        self, db: Connection, connection: str, removed: Sequence[RemovedRecord], *, now: datetime
    ) -> int:
        """Contacts deleted or merged away in the CRM leave the store and every queue (see
        :mod:`connector.store.removals`). Returns how many were stored."""
        return remove_contacts(db, connection, removed, now) if removed else 0

    def store_activities(
        self,
        db: Connection,
        job: str,
        connection: str,
        records: Sequence[ActivityRecord],
        *,
        force_dirty: bool,
        now: datetime,
        first_load: FirstLoad | None = None,
    ) -> PageCounts:
        """Upsert a page of activities, linked by the contacts' CRM ids; queue those contacts.

        An activity may name a contact not read yet: it is kept, and attached
        when that contact arrives (a new contact is always decided).
        ``first_load``: the pull's :meth:`first_load`, when it has one.
        """
        if not records:
            return PageCounts(0, 0, 0, 0)
        latest: dict[str, ActivityRecord] = {record.crm_id: record for record in records}
        to_db = time_binder(db)
        if first_load is not None:
            # a first load is staged, not looked up: everything is new, what it read twice is sorted out when it
            # settles, and its contacts are queued then
            staging.stage(
                db, _activity_rows(connection, ((record, activity_hash(record)) for record in latest.values()), to_db)
            )
            return PageCounts(len(latest), len(latest), 0, 0)
        known: dict[str, str] = {}
        old_links: dict[str, set[str]] = {}
        if look_up := self._to_look_up(db, "activities", connection, list(latest), None):
            for part in in_chunks(look_up):
                for crm_id, digest, contact_id in db.execute(
                    select(activities.c.crm_id, activities.c.content_hash, activities.c.contact_crm_id).where(
                        activities.c.connection == connection, activities.c.crm_id.in_(part)
                    )
                ).all():
                    known[crm_id] = digest
                    old_links.setdefault(crm_id, set()).add(contact_id)
        changed: list[str] = []
        fresh: list[tuple[ActivityRecord, str]] = []
        touched: set[str] = set()
        for crm_id, record in latest.items():
            digest = activity_hash(record)
            if force_dirty:
                touched.update(record.contact_ids)
            if known.get(crm_id) == digest:
                continue
            changed.append(crm_id)
            fresh.append((record, digest))
            touched.update(record.contact_ids)
            touched.update(old_links.get(crm_id, ()))
        rows = _activity_rows(connection, fresh, to_db)
        # in key order: SQLite's inserts then walk its index pages in turn (~10 % less work than at random)
        rows.sort(key=_BY_KEY)
        stale = [crm_id for crm_id in changed if crm_id in known]
        for part in in_chunks(stale):
            db.execute(delete(activities).where(activities.c.connection == connection, activities.c.crm_id.in_(part)))
        insert_rows(db, "activities", _ACTIVITY_COLUMNS, rows)
        affected = sorted(touched)
        dirtied = self._queue.mark_dirty(
            db, job, connection, changed=affected, forced=affected if force_dirty else [], seen=affected
        )
        new = sum(1 for crm_id in changed if crm_id not in known)
        return PageCounts(len(latest), new, len(changed) - new, len(dirtied))

    @staticmethod
    def staged(db: Connection, connection: str) -> bool:
        """Whether a first load of ``connection``'s activities stopped before it settled (rows still staged)."""
        return staging.staged(db, connection)

    def settle_staged(self, db: Connection, job: str, connection: str) -> int:
        """Move ``connection``'s staged first load into ``activities`` (:mod:`connector.store.staging`), queueing
        the contacts it names as :meth:`store_activities` would have (for ``job``, which settles it); the contacts
        whose stored activities it replaced are queued again for every job. Returns the rows moved."""
        moved, replaced = staging.settle(db, job, connection)
        self._queue.mark_dirty(db, "", connection, changed=replaced, forced=[], seen=[])
        return moved

    def mark_written(self, db: Connection, connection: str, written: Sequence[Written]) -> None:
        """The CRM now holds what was written: keep our copy in step so the echo of our own write is not a change."""
        rows = []
        for item in written:
            queued = item.contact
            values = {**queued.stage_values, **item.fields}
            digest = contact_hash(queued.object_type, queued.contact_json, values)
            rows.append((connection, storable(queued.crm_id), item.stage.value, db_json(values), digest))
        update_rows(db, contacts, _CONTACT_KEYS, ("stage", "stage_values", "content_hash"), rows)


def _activity_rows(connection: str, records: Iterable[tuple[ActivityRecord, str]], to_db: Any) -> list[tuple[Any, ...]]:
    """The stored rows (in ``_ACTIVITY_COLUMNS`` order) of activity records with their content hashes: one per
    contact the activity names."""
    rows: list[tuple[Any, ...]] = []
    for record, digest in records:
        activity = record.activity
        stored_id = storable(record.crm_id)
        occurred_at = to_db(activity.occurred_at)
        detail = None if activity.detail is None else storable(activity.detail)
        # an e-mail event or a submission is modified when it happens: one conversion for both
        modified_at = occurred_at if record.modified_at is activity.occurred_at else to_db(record.modified_at)
        for contact_id in dict.fromkeys(record.contact_ids):
            rows.append(
                (connection, storable(contact_id), stored_id, activity.kind, occurred_at, detail, digest, modified_at)
            )
    return rows
