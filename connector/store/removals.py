"""Contacts the CRM deleted or merged away: they leave the store and every job's queue.

A deleted contact's stored record, activities, queue rows and planned
writes go; its open dead letters are closed (nothing is left to write). Its
history stays: it happened. A contact merged into another hands its
activities and history to the survivor first, and the survivor is queued
again for every job that knows it, so it is decided with everything it now has.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, and_, delete, select, update

from connector.crm import RemovedRecord
from connector.runs import Resolution
from connector.store.tables import (
    activities,
    contacts,
    dead_letters,
    job_contacts,
    ladder_notes,
    pending_writes,
    stage_changes,
    storable,
)


def remove_contacts(db: Connection, connection: str, removed: Sequence[RemovedRecord], now: datetime) -> int:
    """Drop the ``removed`` contacts of ``connection`` (after moving a merged one's activities and history
    to its survivor). Returns how many were stored (and are now gone)."""
    gone = 0
    survivors: set[str] = set()
    once: dict[str, RemovedRecord] = {}
    for item in removed:
        # read twice (a survivor's merged ids, then the archived list): the merge is what counts
        if item.merged_into is not None or item.crm_id not in once:
            once[item.crm_id] = item
    for record in once.values():
        crm_id = storable(record.crm_id)
        survivor = None if record.merged_into is None else storable(record.merged_into)
        if survivor is not None and survivor != crm_id:
            _hand_over(db, connection, crm_id, survivor)
            survivors.add(survivor)
        gone += db.execute(
            delete(contacts).where(contacts.c.connection == connection, contacts.c.crm_id == crm_id)
        ).rowcount
        db.execute(
            delete(activities).where(activities.c.connection == connection, activities.c.contact_crm_id == crm_id)
        )
        db.execute(delete(job_contacts).where(job_contacts.c.connection == connection, job_contacts.c.crm_id == crm_id))
        db.execute(
            delete(pending_writes).where(pending_writes.c.connection == connection, pending_writes.c.crm_id == crm_id)
        )
        db.execute(
            update(dead_letters)
            .where(
                dead_letters.c.connection == connection,
                dead_letters.c.crm_id == crm_id,
                dead_letters.c.resolved_at.is_(None),
            )
            .values(resolved_at=now, resolution=Resolution.NOT_NEEDED.value)
        )
    survivors -= {storable(item.crm_id) for item in removed}
    if survivors:
        db.execute(
            update(job_contacts)
            .where(job_contacts.c.connection == connection, job_contacts.c.crm_id.in_(sorted(survivors)))
            .values(dirty=True, attempts=0, not_before=None)
        )
    return gone


def _hand_over(db: Connection, connection: str, crm_id: str, survivor: str) -> None:
    """``crm_id``'s activities (those the survivor lacks) and history become ``survivor``'s."""
    held = select(activities.c.crm_id).where(
        activities.c.connection == connection, activities.c.contact_crm_id == survivor
    )
    db.execute(
        update(activities)
        .where(
            and_(
                activities.c.connection == connection,
                activities.c.contact_crm_id == crm_id,
                activities.c.crm_id.not_in(held.scalar_subquery()),
            )
        )
        .values(contact_crm_id=survivor)
    )
    db.execute(
        update(stage_changes)
        .where(stage_changes.c.connection == connection, stage_changes.c.crm_id == crm_id)
        .values(crm_id=survivor)
    )
    db.execute(
        update(ladder_notes)
        .where(ladder_notes.c.connection == connection, ladder_notes.c.crm_id == crm_id)
        .values(crm_id=survivor)
    )
