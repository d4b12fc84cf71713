"""The normalised records of each connection (``contacts``, ``activities``), shared by every job reading it.

A content hash tells a re-read record from a changed one, so an inclusive
cursor or a re-run after a crash never queues anything twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from connector.crm import ActivityRecord, ContactRecord
from connector.model import Contact
from connector.store.queue import Queue
from connector.store.sql import in_chunks, upsert
from connector.store.tables import EMAIL, activities, contacts
from connector.store.values import PageCounts, Written

_CONTACT_COLUMNS = [
    "object_type",
    "email",
    "stage",
    "stage_values",
    "contact",
    "content_hash",
    "modified_at",
    "stored_at",
]


def contact_json(contact: Contact) -> str:
    """The stored form of a contact: its facts, without the stage (kept in ``stage_values``) or activities."""
    return contact.model_dump_json(exclude={"stage", "activities"})


def contact_hash(object_type: str, facts_json: str, stage_values: dict[str, str | None]) -> str:
    payload = json.dumps([object_type, facts_json, sorted(stage_values.items())], separators=(",", ":"))
    return hashlib.sha1(payload.encode(), usedforsecurity=False).hexdigest()


def activity_hash(record: ActivityRecord) -> str:
    activity = record.activity
    payload = json.dumps(
        [activity.kind, activity.occurred_at.isoformat(), activity.detail, sorted(record.contact_ids)],
        separators=(",", ":"),
    )
    return hashlib.sha1(payload.encode(), usedforsecurity=False).hexdigest()


def stored_email(email: str | None) -> str | None:
    """The normalised address kept to find a person across CRMs; none when it cannot be one (too long)."""
    if not email or len(email) > EMAIL:
        return None
    return email.lower()


class Records:
    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    def store_contacts(
        self,
        db: Connection,
        job: str,
        connection: str,
        records: Sequence[ContactRecord],
        *,
        force_dirty: bool,
        now: datetime,
    ) -> PageCounts:
        """Upsert a page of contacts; queue those whose facts changed (for every job that knows them)."""
        if not records:
            return PageCounts(0, 0, 0, 0)
        latest: dict[str, ContactRecord] = {record.crm_id: record for record in records}
        ids = list(latest)
        known: dict[str, str] = {}
        for part in in_chunks(ids):
            known.update(
                db.execute(
                    select(contacts.c.crm_id, contacts.c.content_hash).where(
                        contacts.c.connection == connection, contacts.c.crm_id.in_(part)
                    )
                ).all()
            )
        rows: list[dict[str, Any]] = []
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
                    "email": stored_email(record.contact.email),
                    "stage": record.contact.stage.value if record.contact.stage else None,
                    "stage_values": dict(record.stage_values),
                    "contact": facts,
                    "content_hash": digest,
                    "modified_at": record.modified_at,
                    "stored_at": now,
                }
            )
        upsert(db, contacts, rows, keys=["connection", "crm_id"], update=_CONTACT_COLUMNS)
        changed = [str(row["crm_id"]) for row in rows]
        dirtied = self._queue.mark_dirty(
            db, job, connection, changed=changed, forced=ids if force_dirty else [], seen=ids
        )
        new = sum(1 for crm_id in changed if crm_id not in known)
        return PageCounts(len(latest), new, len(changed) - new, len(dirtied))

    def store_activities(
        self,
        db: Connection,
        job: str,
        connection: str,
        records: Sequence[ActivityRecord],
        *,
        force_dirty: bool,
        now: datetime,
    ) -> PageCounts:
        """Upsert a page of activities, linked by the contacts' CRM ids; queue those contacts.

        An activity may name a contact not read yet: it is kept, and attached
        when that contact arrives (a new contact is always decided).
        """
        if not records:
            return PageCounts(0, 0, 0, 0)
        latest: dict[str, ActivityRecord] = {record.crm_id: record for record in records}
        ids = list(latest)
        known: dict[str, str] = {}
        old_links: dict[str, set[str]] = {}
        for part in in_chunks(ids):
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
            digest = activity_hash(record)
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
        for part in in_chunks(stale):
            db.execute(delete(activities).where(activities.c.connection == connection, activities.c.crm_id.in_(part)))
        if rows:
            db.execute(insert(activities), rows)
        affected = sorted(touched)
        dirtied = self._queue.mark_dirty(
            db, job, connection, changed=affected, forced=affected if force_dirty else [], seen=affected
        )
        new = sum(1 for crm_id in changed if crm_id not in known)
        return PageCounts(len(latest), new, len(changed) - new, len(dirtied))

    def mark_written(self, db: Connection, connection: str, written: Sequence[Written]) -> None:
        """The CRM now holds what was written: keep our copy in step so the echo of our own write is not a change."""
        if not written:
            return
        rows = []
        for item in written:
            queued = item.contact
            values = {**queued.stage_values, **item.fields}
            rows.append(
                {
                    "b_crm_id": queued.crm_id,
                    "b_stage": item.stage.value,
                    "b_values": values,
                    "b_hash": contact_hash(queued.object_type, queued.contact_json, values),
                }
            )
        db.execute(
            update(contacts)
            .where(contacts.c.connection == connection, contacts.c.crm_id == bindparam("b_crm_id"))
            .values(stage=bindparam("b_stage"), stage_values=bindparam("b_values"), content_hash=bindparam("b_hash")),
            rows,
        )
