"""People across CRMs (``people``, ``person_links``, ``person_emails``, ``person_unlinks``, ``person_conflicts``).

A job that unifies (``unify = true``) matches its records into people: the
link table says which person each record is, and keeps saying it when the
record's e-mail changes; manual links win over the matcher, and a record a
person unlinked by hand is never matched back into that person. Matching
itself is pure (:mod:`connector.sync.people`); this repository only keeps
what it decided. Conflicts are stored once each (by key), with what was done.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Connection, and_, delete, func, or_, select, tuple_, update

from connector.store.sql import in_chunks, upsert
from connector.store.tables import (
    contacts,
    job_contacts,
    people,
    person_conflicts,
    person_emails,
    person_links,
    person_unlinks,
)
from connector.store.values import EmailOwner, PersonConflict, PersonLink, RecordEmails, RecordKey

EMAIL = "email"
MANUAL = "manual"
HOWS = (EMAIL, MANUAL)


def _pairs(records: Sequence[RecordKey]) -> dict[str, list[str]]:
    by_connection: dict[str, list[str]] = {}
    for record in records:
        by_connection.setdefault(record.connection, []).append(record.crm_id)
    return by_connection


class People:
    # -- reading ----------------------------------------------------------------
    def links(self, db: Connection, records: Sequence[RecordKey]) -> dict[RecordKey, PersonLink]:
        """The link of each of ``records`` that has one."""
        found: dict[RecordKey, PersonLink] = {}
        c = person_links.c
        for connection, ids in _pairs(records).items():
            for part in in_chunks(ids):
                for row in db.execute(
                    select(c.crm_id, c.person_id, c.how, c.linked_at).where(
                        c.connection == connection, c.crm_id.in_(part)
                    )
                ):
                    key = RecordKey(connection, row.crm_id)
                    found[key] = PersonLink(key, row.person_id, row.how, row.linked_at)
        return found

    def owners(self, db: Connection, emails: Iterable[str]) -> dict[str, list[EmailOwner]]:
        """Every linked record holding one of ``emails`` (as its own address or as an alias), by address."""
        found: dict[str, list[EmailOwner]] = {}
        e, link = person_emails.c, person_links.c
        for part in in_chunks(sorted(set(emails))):
            rows = db.execute(
                select(e.email, e.connection, e.crm_id, e.is_primary, link.person_id)
                .join(person_links, and_(link.connection == e.connection, link.crm_id == e.crm_id))
                .where(e.email.in_(part))
                .order_by(e.email, e.connection, e.crm_id)
            )
            for row in rows:
                found.setdefault(row.email, []).append(
                    EmailOwner(RecordKey(row.connection, row.crm_id), row.person_id, bool(row.is_primary))
                )
        return found

    def unlinked(self, db: Connection, records: Sequence[RecordKey]) -> set[tuple[RecordKey, str]]:
        """(record, person) pairs a person took apart by hand, for ``records``."""
        found: set[tuple[RecordKey, str]] = set()
        c = person_unlinks.c
        for connection, ids in _pairs(records).items():
            for part in in_chunks(ids):
                for row in db.execute(
                    select(c.crm_id, c.person_id).where(c.connection == connection, c.crm_id.in_(part))
                ):
                    found.add((RecordKey(connection, row.crm_id), row.person_id))
        return found

    def members(
        self, db: Connection, person_ids: Sequence[str], connections: Sequence[str] | None = None
    ) -> dict[str, list[RecordKey]]:
        """The stored records of each person (records deleted from the store left out), in connection
        and id order; only those of ``connections`` when given."""
        c = person_links.c
        found: dict[str, list[RecordKey]] = {}
        for part in in_chunks(list(person_ids)):
            query = (
                select(c.person_id, c.connection, c.crm_id)
                .join(contacts, and_(contacts.c.connection == c.connection, contacts.c.crm_id == c.crm_id))
                .where(c.person_id.in_(part))
                .order_by(c.person_id, c.connection, c.crm_id)
            )
            if connections is not None:
                query = query.where(c.connection.in_(list(connections)))
            for row in db.execute(query):
                found.setdefault(row.person_id, []).append(RecordKey(row.connection, row.crm_id))
        return found

    def due(
        self, db: Connection, job: str, connections: Sequence[str], *, after: str, limit: int, now: datetime
    ) -> list[str]:
        """The next ``limit`` people (by id, after ``after``) with a record queued and due for ``job``."""
        jc, link = job_contacts.c, person_links.c
        rows = db.execute(
            select(link.person_id)
            .join(job_contacts, and_(jc.connection == link.connection, jc.crm_id == link.crm_id))
            .where(
                jc.job == job,
                jc.connection.in_(list(connections)),
                jc.dirty.is_(True),
                or_(jc.not_before.is_(None), jc.not_before <= now),
                link.person_id > after,
            )
            .group_by(link.person_id)
            .order_by(link.person_id)
            .limit(limit)
        )
        return [row.person_id for row in rows]

    def unlinked_queued(self, db: Connection, job: str, connection: str, *, after: str, limit: int) -> list[RecordKey]:
        """The next ``limit`` records of ``job`` on ``connection`` (by id, after ``after``) to match: queued
        ones (their e-mail may have changed) and those never linked (the job was not unifying before)."""
        jc, link = job_contacts.c, person_links.c
        rows = db.execute(
            select(jc.crm_id)
            .outerjoin(person_links, and_(link.connection == jc.connection, link.crm_id == jc.crm_id))
            .where(
                jc.job == job,
                jc.connection == connection,
                jc.crm_id > after,
                or_(jc.dirty.is_(True), link.person_id.is_(None)),
            )
            .order_by(jc.crm_id)
            .limit(limit)
        )
        return [RecordKey(connection, row.crm_id) for row in rows]

    def addresses(
        self, db: Connection, connection: str, crm_ids: Sequence[str]
    ) -> list[tuple[str, str | None, tuple[str, ...]]]:
        """Each stored record's own address and its aliases (``other_emails``), in the order of ``crm_ids``."""
        found: dict[str, tuple[str, str | None, tuple[str, ...]]] = {}
        for part in in_chunks(list(crm_ids)):
            for crm_id, email, facts in db.execute(
                select(contacts.c.crm_id, contacts.c.email, contacts.c.contact).where(
                    contacts.c.connection == connection, contacts.c.crm_id.in_(part)
                )
            ):
                # most records have no aliases: their JSON is only parsed when it holds some
                others = tuple(json.loads(facts).get("other_emails") or ()) if '"other_emails"' in facts else ()
                found[crm_id] = (crm_id, email, others)
        return [found[crm_id] for crm_id in crm_ids if crm_id in found]

    def person_of(self, db: Connection, record: RecordKey) -> str | None:
        c = person_links.c
        return db.execute(
            select(c.person_id).where(c.connection == record.connection, c.crm_id == record.crm_id)
        ).scalar_one_or_none()

    def people_by_email(self, db: Connection, email: str) -> list[str]:
        """The people one of whose records holds ``email`` (its own address or an alias)."""
        return sorted({owner.person_id for owner in self.owners(db, [email]).get(email, [])})

    def listing(self, db: Connection, *, limit: int, after: str = "") -> list[tuple[str, str | None, int]]:
        """People by id: (id, first address, records linked)."""
        link = person_links.c
        rows = db.execute(
            select(people.c.id, people.c.email, func.count(link.crm_id))
            .outerjoin(person_links, link.person_id == people.c.id)
            .where(people.c.id > after)
            .group_by(people.c.id, people.c.email)
            .order_by(people.c.id)
            .limit(limit)
        )
        return [(row[0], row[1], int(row[2])) for row in rows]

    def person_email(self, db: Connection, person_id: str) -> str | None:
        return db.execute(select(people.c.email).where(people.c.id == person_id)).scalar_one_or_none()

    def all_links(self, db: Connection, person_id: str) -> list[PersonLink]:
        c = person_links.c
        return [
            PersonLink(RecordKey(row.connection, row.crm_id), person_id, row.how, row.linked_at)
            for row in db.execute(
                select(c.connection, c.crm_id, c.how, c.linked_at)
                .where(c.person_id == person_id)
                .order_by(c.connection, c.crm_id)
            )
        ]

    def conflicts(self, db: Connection, *, person_id: str | None = None) -> list[PersonConflict]:
        c = person_conflicts.c
        query = select(person_conflicts).order_by(c.first_seen, c.id)
        if person_id is not None:
            query = query.where(c.person_id == person_id)
        return [
            PersonConflict(
                key=row.key,
                kind=row.kind,
                person_id=row.person_id,
                records=tuple(row.records or ()),
                action=row.action,
                first_seen=row.first_seen,
            )
            for row in db.execute(query)
        ]

    # -- writing ----------------------------------------------------------------
    def add_people(self, db: Connection, created: Sequence[tuple[str, str | None]], now: datetime) -> None:
        """New people: (id, the address they were found by)."""
        upsert(
            db,
            people,
            [{"id": person_id, "email": email, "created_at": now} for person_id, email in created],
            keys=("id",),
        )

    def link(self, db: Connection, links: Sequence[PersonLink], now: datetime) -> None:
        """Set each record's person (and how), replacing any earlier link."""
        upsert(
            db,
            person_links,
            [
                {
                    "connection": link.record.connection,
                    "crm_id": link.record.crm_id,
                    "person_id": link.person_id,
                    "how": link.how,
                    "linked_at": now,
                }
                for link in links
            ],
            keys=("connection", "crm_id"),
            update=("person_id", "how", "linked_at"),
        )

    def set_emails(self, db: Connection, records: Sequence[RecordEmails]) -> None:
        """Each record's addresses now (the old ones of those records forgotten)."""
        if not records:
            return
        e = person_emails.c
        for connection, ids in _pairs([item.record for item in records]).items():
            for part in in_chunks(ids):
                db.execute(delete(person_emails).where(e.connection == connection, e.crm_id.in_(part)))
        rows: dict[tuple[str, str, str], dict[str, object]] = {}
        for item in records:
            keys = ([(item.primary, True)] if item.primary else []) + [(other, False) for other in item.others]
            for email, primary in keys:
                key = (item.record.connection, item.record.crm_id, email)
                if key not in rows:
                    rows[key] = {
                        "connection": item.record.connection,
                        "crm_id": item.record.crm_id,
                        "email": email,
                        "is_primary": primary,
                    }
        upsert(db, person_emails, list(rows.values()), keys=("connection", "crm_id", "email"))

    def forget_unlink(self, db: Connection, record: RecordKey, person_id: str) -> None:
        c = person_unlinks.c
        db.execute(
            delete(person_unlinks).where(
                c.connection == record.connection, c.crm_id == record.crm_id, c.person_id == person_id
            )
        )

    def remember_unlink(self, db: Connection, record: RecordKey, person_id: str, now: datetime) -> None:
        upsert(
            db,
            person_unlinks,
            [{"connection": record.connection, "crm_id": record.crm_id, "person_id": person_id, "unlinked_at": now}],
            keys=("connection", "crm_id", "person_id"),
            update=("unlinked_at",),
        )

    def report(self, db: Connection, conflicts: Sequence[PersonConflict], now: datetime) -> list[PersonConflict]:
        """Store conflicts not seen before; returns those (each conflict is reported once)."""
        if not conflicts:
            return []
        unique = {conflict.key: conflict for conflict in conflicts}
        seen: set[str] = set()
        for part in in_chunks(list(unique)):
            seen.update(db.execute(select(person_conflicts.c.key).where(person_conflicts.c.key.in_(part))).scalars())
        new = [conflict for key, conflict in unique.items() if key not in seen]
        upsert(
            db,
            person_conflicts,
            [
                {
                    "key": conflict.key,
                    "kind": conflict.kind,
                    "person_id": conflict.person_id,
                    "records": list(conflict.records),
                    "action": conflict.action,
                    "first_seen": now,
                }
                for conflict in new
            ],
            keys=("key",),
        )
        return new

    def requeue(self, db: Connection, records: Sequence[RecordKey]) -> None:
        """Queue ``records`` again for every job that knows them (a person changed who they are)."""
        jc = job_contacts.c
        for connection, ids in _pairs(records).items():
            for part in in_chunks(ids):
                db.execute(
                    update(job_contacts)
                    .where(jc.connection == connection, jc.crm_id.in_(part))
                    .values(dirty=True, attempts=0, not_before=None)
                )

    def exists(self, db: Connection, records: Sequence[RecordKey]) -> set[RecordKey]:
        """Which of ``records`` the store holds."""
        c = contacts.c
        if not records:
            return set()
        rows = db.execute(
            select(c.connection, c.crm_id).where(
                tuple_(c.connection, c.crm_id).in_([(r.connection, r.crm_id) for r in records])
            )
        )
        return {RecordKey(row.connection, row.crm_id) for row in rows}

    # -- by hand (``crmsync people link`` / ``unlink``) -------------------------------------
    def link_by_hand(self, db: Connection, record: RecordKey, to: RecordKey, now: datetime) -> str:
        """``record`` becomes the person ``to`` is (a new person when ``to`` has none yet), by a manual link that
        the matcher never changes; an earlier unlink of that pair is forgotten. Everyone concerned is queued
        for every job. Returns the person's id."""
        target = self.person_of(db, to)
        if target is None:
            target = str(uuid.uuid4())
            self.add_people(db, [(target, _stored_email(db, to))], now)
            self.link(db, [PersonLink(to, target, MANUAL)], now)
        before = self.person_of(db, record)
        self.forget_unlink(db, record, target)
        self.link(db, [PersonLink(record, target, MANUAL)], now)
        touched = [record, to, *self._all_members(db, [target, *([before] if before else [])])]
        self.requeue(db, touched)
        return target

    def unlink_by_hand(self, db: Connection, record: RecordKey, now: datetime) -> tuple[str, str] | None:
        """Take ``record`` out of its person into a person of its own (a manual link), and remember the pair so
        the matcher never puts it back. Returns (old person, new person), or ``None`` when it had no person."""
        before = self.person_of(db, record)
        if before is None:
            return None
        self.remember_unlink(db, record, before, now)
        alone = str(uuid.uuid4())
        self.add_people(db, [(alone, _stored_email(db, record))], now)
        self.link(db, [PersonLink(record, alone, MANUAL)], now)
        self.requeue(db, [record, *self._all_members(db, [before])])
        return before, alone

    def _all_members(self, db: Connection, person_ids: Sequence[str]) -> list[RecordKey]:
        return [key for keys in self.members(db, person_ids).values() for key in keys]


def _stored_email(db: Connection, record: RecordKey) -> str | None:
    return db.execute(
        select(contacts.c.email).where(contacts.c.connection == record.connection, contacts.c.crm_id == record.crm_id)
    ).scalar_one_or_none()
