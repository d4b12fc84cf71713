"""The store's side of deleted and merged contacts, on every backend: what goes, what moves, what is closed."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from connector.crm import ActivityRecord, ContactRecord, RemovedRecord
from connector.model import Activity, ActivityKind, Contact
from connector.store import DeadLetter, Store
from connector.store.tables import activities, contacts, dead_letters, job_contacts
from tests.sync.conftest import NOW

JOB, CONNECTION = "hubspot-lifecycle", "hubspot"


def person(crm_id: str) -> ContactRecord:
    return ContactRecord(crm_id=crm_id, object_type="contact", contact=Contact(email=f"{crm_id}@example.fr"))


def activity(crm_id: str, *owners: str) -> ActivityRecord:
    happened = Activity(kind=ActivityKind.CONTENT_DOWNLOAD, occurred_at=NOW - timedelta(days=3), id=crm_id)
    return ActivityRecord(crm_id=crm_id, activity=happened, contact_ids=owners)


def test_a_merge_read_twice_counts_as_the_merge_and_a_shared_activity_is_kept_once(store: Store) -> None:
    with store.begin() as db:
        store.records.store_contacts(db, JOB, CONNECTION, [person("a"), person("b")], force_dirty=False, now=NOW)
        # "shared" is the activity of both (a meeting with the two of them); "own" only b's
        acts = [activity("shared", "a", "b"), activity("own", "b")]
        store.records.store_activities(db, JOB, CONNECTION, acts, force_dirty=False, now=NOW)
        db.execute(job_contacts.update().values(dirty=False))
        store.dead_letters.add(
            db, JOB, CONNECTION, [DeadLetter("b", None, None, "OBJECT_NOT_FOUND", "gone")], run_id="r", now=NOW
        )
        removed = [RemovedRecord(crm_id="b", merged_into="a"), RemovedRecord(crm_id="b")]
        assert store.records.remove_contacts(db, CONNECTION, removed, now=NOW) == 1

    with store.begin() as db:
        assert db.execute(select(contacts.c.crm_id)).scalars().all() == ["a"]
        owned = db.execute(select(activities.c.contact_crm_id, activities.c.crm_id)).all()
        assert sorted(map(tuple, owned)) == [("a", "own"), ("a", "shared")]
        assert db.execute(select(job_contacts.c.crm_id, job_contacts.c.dirty)).all() == [("a", True)]
        letter = db.execute(select(dead_letters.c.resolved_at, dead_letters.c.resolution)).one()
        assert letter.resolved_at is not None and letter.resolution == "not needed any more"


def test_removing_what_the_store_never_held_changes_nothing(store: Store) -> None:
    with store.begin() as db:
        store.records.store_contacts(db, JOB, CONNECTION, [person("a")], force_dirty=False, now=NOW)
        assert store.records.remove_contacts(db, CONNECTION, [RemovedRecord(crm_id="zz")], now=NOW) == 0
        assert db.execute(select(contacts.c.crm_id)).scalars().all() == ["a"]
