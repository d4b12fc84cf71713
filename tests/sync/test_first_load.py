"""A connection's first load looks up only the contacts the pull itself may have stored, and stages its
activities, settled in key order at the end (the latest copy of each); a re-run after a crash settles what was
staged and looks everything up. The same records and queue as looking up everything, on both stores."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, insert, inspect, select, update

from connector.progress import ProgressEvent
from connector.store import Store
from connector.store.first_load import FirstLoad
from connector.store.tables import activities, activity_staging, contacts, job_contacts
from tests.fakes import SimulatedCrash
from tests.stores import StoreUrls
from tests.sync.test_bulk_store import NOW, act, person
from tests.sync.test_crash import PAGES, expire_lease, first_run, make_world, outcome

HS = "hubspot-eu"


@contextmanager
def hash_look_ups(store: Store) -> Iterator[list[str]]:
    """The parameters of every known-hash look-up (a ``SELECT`` of ``content_hash``) run meanwhile."""
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "content_hash" in statement:
            seen.append(repr(parameters))

    event.listen(store.engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", listen)


def test_a_first_load_looks_up_only_the_contacts_it_read_twice_and_stages_its_activities(store: Store) -> None:
    with store.begin() as db:
        people, acts = store.records.first_load(db, HS, "contacts"), store.records.first_load(db, HS, "activities")
    assert people is not None and acts is not None
    with hash_look_ups(store) as look_ups, store.begin() as db:
        one = store.records.store_contacts(db, "job", HS, [person("10000000001"), person("10000000002")],
                                           force_dirty=False, now=NOW, first_load=people)  # fmt: skip
        store.records.store_activities(db, "job", HS, [act("90000000001", "10000000001")], force_dirty=False,
                                       now=NOW, first_load=acts)  # fmt: skip
    assert look_ups == []  # nothing stored before: nothing looked up
    assert (one.new, one.changed) == (2, 0)
    # the next group of the same pull: one contact read again unchanged, one activity read again with other
    # contacts (edited while the pull ran), one of each new
    with hash_look_ups(store) as look_ups, store.begin() as db:
        again = store.records.store_contacts(db, "job", HS, [person("10000000001"), person("10000000003")],
                                             force_dirty=False, now=NOW, first_load=people)  # fmt: skip
        store.records.store_activities(db, "job", HS, [act("90000000001", "10000000002", "10000000003"),
                                       act("90000000002", "10000000001")], force_dirty=False, now=NOW,
                                       first_load=acts)  # fmt: skip
    assert (again.new, again.changed) == (1, 0)
    assert len(look_ups) == 1  # the contacts' only: activities are never looked up while staged
    assert "10000000001" in look_ups[0] and "10000000003" not in look_ups[0]
    with store.begin() as db:
        assert db.execute(select(func.count()).select_from(activities)).scalar_one() == 0
        assert db.execute(select(func.count()).select_from(activity_staging)).scalar_one() == 4
        assert store.records.staged(db, HS) and not store.records.staged(db, "other")
    with store.begin() as db:
        assert store.records.settle_staged(db, "job", HS) == 3
    with store.begin() as db:
        links = sorted(db.execute(select(activities.c.crm_id, activities.c.contact_crm_id)).all())
        stored = db.execute(select(contacts.c.crm_id).order_by(contacts.c.crm_id)).scalars().all()
        queued = db.execute(select(job_contacts.c.crm_id).where(job_contacts.c.dirty.is_(True))).scalars().all()
        assert not store.records.staged(db, HS)
        # the connection has records now: a later pull looks everything up
        assert store.records.first_load(db, HS, "contacts") is None
        assert store.records.first_load(db, HS, "activities") is None
        assert store.records.first_load(db, "other", "contacts") is not None
    # the latest copy of each activity, with all of its contacts; the first copy's contact is gone
    assert links == [("90000000001", "10000000002"), ("90000000001", "10000000003"), ("90000000002", "10000000001")]
    assert stored == ["10000000001", "10000000002", "10000000003"]
    assert sorted(queued) == stored


def test_settling_replaces_what_another_job_stored_meanwhile_and_requeues_its_contacts(store: Store) -> None:
    with store.begin() as db:
        mine = store.records.first_load(db, HS, "activities")
    assert mine is not None
    with store.begin() as db:  # another job reading the same connection, after this pull started
        store.records.store_activities(db, "other-job", HS, [act("90000000001", "10000000009", detail="Old"),
                                       act("90000000003", "10000000009", detail="Kept")], force_dirty=False,
                                       now=NOW)  # fmt: skip
        db.execute(update(job_contacts).values(dirty=False))  # decided since
    with store.begin() as db:
        store.records.store_activities(db, "job", HS, [act("90000000001", "10000000001"),
                                       act("90000000002", "10000000001")], force_dirty=False, now=NOW,
                                       first_load=mine)  # fmt: skip
    with store.begin() as db:
        store.records.settle_staged(db, "job", HS)
    with store.begin() as db:
        rows = sorted(db.execute(select(activities.c.crm_id, activities.c.contact_crm_id, activities.c.detail)).all())
        queued = db.execute(select(job_contacts.c.job, job_contacts.c.crm_id).where(job_contacts.c.dirty.is_(True)))
        dirty = sorted(queued.all())
    assert rows == [("90000000001", "10000000001", "Guide"), ("90000000002", "10000000001", "Guide"),
                    ("90000000003", "10000000009", "Kept")]  # fmt: skip
    # the other job's contact lost an activity: decided again; this job's contact was queued when staged
    assert dirty == [("job", "10000000001"), ("other-job", "10000000009")]


@contextmanager
def index_statements(store: Store, fail_move: bool = False) -> Iterator[list[str]]:
    """The ``DROP INDEX`` / ``CREATE INDEX`` statements run meanwhile; ``fail_move``: the move into ``activities``
    fails as a full disk would make it."""
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any, _many: bool) -> None:
        if " INDEX " in statement.upper():
            seen.append(statement.split("(")[0].strip())
        if fail_move and statement.startswith("INSERT INTO activities"):
            raise OSError("disk full")

    event.listen(store.engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", listen)


def activity_indexes(store: Store) -> list[tuple[str | None, list[str | None]]]:
    return sorted((index["name"], index["column_names"]) for index in inspect(store.engine).get_indexes("activities"))


def stage(store: Store, connection: str, count: int) -> None:
    """A first load of ``count`` activities of ``connection`` staged, in reverse key order."""
    with store.begin() as db:
        load = store.records.first_load(db, connection, "activities")
        ids = [f"9{n:010d}" for n in range(count)]
        store.records.store_activities(db, "job", connection, [act(ids[n], f"1{n % 7:010d}") for n in
                                       reversed(range(count))], force_dirty=False, now=NOW, first_load=load)  # fmt: skip


def test_a_first_load_larger_than_the_stored_rows_builds_the_indexes_again_on_sqlite(store: Store) -> None:
    before = activity_indexes(store)
    assert ("ix_activities_connection_crm_id", ["connection", "crm_id"]) in before
    stage(store, HS, 60)
    with index_statements(store) as statements, store.begin() as db:
        assert store.records.settle_staged(db, "job", HS) == 60
    sqlite = store.engine.dialect.name == "sqlite"
    # dropped and created in the move's transaction on SQLite; PostgreSQL keeps its index (a drop locks out readers)
    rebuilt = [
        'DROP INDEX "ix_activities_connection_crm_id"',
        "CREATE INDEX ix_activities_connection_crm_id ON activities",
    ]
    assert statements == (rebuilt if sqlite else [])
    assert activity_indexes(store) == before
    with store.begin() as db:
        found = db.execute(select(activities.c.contact_crm_id).where(activities.c.connection == HS,
                                                                      activities.c.crm_id == "90000000009"))  # fmt: skip
        assert found.scalars().all() == ["10000000002"]
    # the next connection's first load is smaller than what is stored: its rows go in through the index
    stage(store, "other", 10)
    with index_statements(store) as statements, store.begin() as db:
        assert store.records.settle_staged(db, "job", "other") == 10
    assert statements == []
    assert counts(store) == (70, 0)


def test_settling_one_connection_leaves_another_connections_staged_rows(store: Store) -> None:
    stage(store, "other", 20)
    stage(store, HS, 30)
    with store.begin() as db:
        assert store.records.settle_staged(db, "job", HS) == 30
        assert store.records.staged(db, "other") and not store.records.staged(db, HS)
    assert counts(store) == (30, 20)
    with store.begin() as db:
        assert store.records.settle_staged(db, "job", "other") == 20
    assert counts(store) == (50, 0)


def test_a_move_that_fails_leaves_the_indexes_and_the_staged_rows_as_they_were(store: Store) -> None:
    before = activity_indexes(store)
    stage(store, HS, 30)
    with index_statements(store, fail_move=True), pytest.raises(Exception, match="disk full"), store.begin() as db:
        store.records.settle_staged(db, "job", HS)
    assert activity_indexes(store) == before
    assert counts(store) == (0, 30)
    with store.begin() as db:
        assert store.records.settle_staged(db, "job", HS) == 30
    assert activity_indexes(store) == before
    assert counts(store) == (30, 0)


def test_a_copy_stored_while_the_rows_move_is_replaced_by_the_staged_one_on_postgresql(store: Store) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: nothing is stored while a move runs, which upserts there")
    stage(store, HS, 30)
    moves: list[str] = []

    def another_job_stores(_conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool) -> None:
        if not statement.startswith("INSERT INTO activities ("):
            return
        moves.append("upsert" if "ON CONFLICT" in statement else "insert")
        if len(moves) == 1:
            # committed by another connection after the move deleted the stored copies, before it inserts
            with store.engine.begin() as other:
                other.execute(insert(activities).values(
                    connection=HS, contact_crm_id="10000000000", crm_id="90000000000", kind="form",
                    occurred_at=NOW, detail="stored meanwhile", content_hash="0" * 40, modified_at=NOW))  # fmt: skip

    event.listen(store.engine, "before_cursor_execute", another_job_stores)
    try:
        with store.begin() as db:
            assert store.records.settle_staged(db, "job", HS) == 30
    finally:
        event.remove(store.engine, "before_cursor_execute", another_job_stores)
    assert moves == ["insert", "insert", "upsert"]  # the plain insert, the other job's, then the upsert
    assert counts(store) == (30, 0)
    with store.begin() as db:
        detail = db.execute(select(activities.c.detail).where(activities.c.crm_id == "90000000000")).scalar_one()
    assert detail == "Guide"


def counts(store: Store) -> tuple[int, int]:
    """Rows in ``activities`` and in ``activity_staging``."""
    with store.begin() as db:
        stored = db.execute(select(func.count()).select_from(activities)).scalar_one()
        return stored, db.execute(select(func.count()).select_from(activity_staging)).scalar_one()


def test_the_filter_never_forgets_an_id_it_was_given() -> None:
    first = FirstLoad(bits=1 << 10)  # small: many false positives, never a false negative
    ids = [f"{n:011d}" for n in range(5_000)]
    first.add(ids[:2_500])
    assert set(first.may_have(ids[:2_500])) == set(ids[:2_500])
    assert len(first.may_have(ids[2_500:])) < 2_500
    with pytest.raises(ValueError):
        FirstLoad(bits=1000)


def test_a_crash_mid_first_load_then_a_rerun_looks_up_and_equals_one_clean_run(
    tmp_path: Path, store_urls: StoreUrls
) -> None:
    clean = make_world(tmp_path, store_urls.new("clean"))
    first_run(clean.crm)
    clean.runner(chunk_size=9, pages=PAGES)
    expected = outcome(clean)
    clean.store.close()

    world = make_world(tmp_path, store_urls.new("crashed"))
    first_run(world.crm)
    stored: list[str] = []

    def crash_after_second_activity_group(event: ProgressEvent) -> None:
        if event.phase == "activities" and event.step == "stored":
            stored.append(event.phase)
            if len(stored) == 2:
                raise SimulatedCrash("mid first load")

    with hash_look_ups(world.store) as look_ups, pytest.raises(SimulatedCrash):
        world.runner(chunk_size=9, progress=crash_after_second_activity_group, pages=PAGES)
    assert look_ups == []  # the whole first load so far: no look-up
    assert counts(world.store) == (0, 2 * PAGES.max_pages * 10)  # staged: two groups of three pages of ten
    expire_lease(world.store)
    at_first_contacts: list[tuple[int, int]] = []

    def check_first_contacts(event: ProgressEvent) -> None:
        if event.phase == "contacts" and not at_first_contacts:
            at_first_contacts.append(counts(world.store))

    with hash_look_ups(world.store) as look_ups:
        rerun = world.runner(chunk_size=9, progress=check_first_contacts, pages=PAGES)
    assert rerun.status == "completed"
    # the staged rows were moved before the re-run stored anything (a contact it removes takes them along)
    [(stored, staged)] = at_first_contacts
    assert stored > 0 and staged == 0
    assert look_ups  # the re-run found rows: it looked them up
    assert outcome(world) == expected
    world.store.close()
