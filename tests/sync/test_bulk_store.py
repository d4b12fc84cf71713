"""The bulk path of the record tables: what goes in as tuples reads back as the typed values, on both stores."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import Column, Connection, Integer, MetaData, Table, Text, select

from connector.crm import ActivityRecord, ContactRecord
from connector.model import Activity, ActivityKind, Contact, Stage
from connector.store import Decision, Deferral, Store, Written, open_store
from connector.store.bulk import insert_rows, select_rows, update_rows
from connector.store.records import activity_hash, contact_hash, contact_json
from connector.store.tables import activities, contacts, job_contacts
from connector.store.values import Change, PendingWrite

NOW = datetime(2026, 11, 20, 9, 0, 0, 123456, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1))


def person(crm_id: str, title: str = "Directrice logistique") -> ContactRecord:
    contact = Contact(email=f"{crm_id}@Example.fr", job_title=title)
    return ContactRecord(
        crm_id=crm_id,
        object_type="contact",
        contact=contact,
        stage_values={"lifecyclestage": "lead", "crmsync_stage": None},
        modified_at=datetime(2026, 11, 19, 10, 0, 0, 5, tzinfo=PARIS),
    )


def act(crm_id: str, *contact_ids: str, detail: str | None = "Guide") -> ActivityRecord:
    activity = Activity(kind=ActivityKind.CONTENT_DOWNLOAD, occurred_at=datetime(2026, 11, 2, 9, 30, tzinfo=PARIS),
                        detail=detail)  # fmt: skip
    return ActivityRecord(crm_id=crm_id, activity=activity, contact_ids=contact_ids, modified_at=NOW)


def test_records_stored_in_bulk_read_back_as_stored_typed_values(store: Store) -> None:
    with store.begin() as db:
        first = store.records.store_contacts(db, "job", "hs", [person("c1"), person("c2\x00")], force_dirty=False,
                                             now=NOW)  # fmt: skip
        acts = store.records.store_activities(db, "job", "hs", [act("a1", "c1", "c2\x00"), act("a2", "c9", detail=None)],
                                              force_dirty=False, now=NOW)  # fmt: skip
    assert (first.new, first.changed) == (2, 0)
    assert (acts.new, acts.changed) == (2, 0)
    with store.begin() as db:
        rows = {row.crm_id: row for row in db.execute(select(contacts)).all()}
        stored_acts = sorted(db.execute(select(activities.c.crm_id, activities.c.contact_crm_id,
                                               activities.c.occurred_at, activities.c.detail)).all())  # fmt: skip
        queued = sorted(db.execute(select(job_contacts.c.crm_id, job_contacts.c.dirty, job_contacts.c.attempts)).all())
    assert set(rows) == {"c1", "c2\ufffd"}  # NUL made storable, as by the column type
    c1 = rows["c1"]
    assert c1.email == "c1@example.fr"
    assert c1.stage_values == {"lifecyclestage": "lead", "crmsync_stage": None}
    assert c1.modified_at == datetime(2026, 11, 19, 9, 0, 0, 5, tzinfo=UTC)
    assert c1.stored_at == NOW
    assert c1.content_hash == contact_hash("contact", contact_json(person("c1").contact), c1.stage_values)
    assert stored_acts == [
        ("a1", "c1", datetime(2026, 11, 2, 8, 30, tzinfo=UTC), "Guide"),
        ("a1", "c2\ufffd", datetime(2026, 11, 2, 8, 30, tzinfo=UTC), "Guide"),
        ("a2", "c9", datetime(2026, 11, 2, 8, 30, tzinfo=UTC), None),
    ]
    assert queued == [("c1", True, 0), ("c2\ufffd", True, 0), ("c9", True, 0)]


def test_a_re_read_record_is_recognised_and_a_changed_one_updated(store: Store) -> None:
    with store.begin() as db:
        store.records.store_contacts(db, "job", "hs", [person("c1")], force_dirty=False, now=NOW)
        store.records.store_activities(db, "job", "hs", [act("a1", "c1")], force_dirty=False, now=NOW)
    with store.begin() as db:
        again = store.records.store_contacts(db, "job", "hs", [person("c1"), person("c2", "CFO")],
                                             force_dirty=False, now=NOW)  # fmt: skip
        edited = store.records.store_contacts(db, "job", "hs", [person("c1", "CEO")], force_dirty=False, now=NOW)
        moved = store.records.store_activities(db, "job", "hs", [act("a1", "c2")], force_dirty=False, now=NOW)
    assert (again.new, again.changed) == (1, 0)
    assert (edited.new, edited.changed) == (0, 1)
    assert (moved.new, moved.changed) == (0, 1)
    with store.begin() as db:
        title = db.execute(select(contacts.c.contact).where(contacts.c.crm_id == "c1")).scalar_one()
        links = db.execute(select(activities.c.contact_crm_id)).scalars().all()
    assert '"CEO"' in title
    assert links == ["c2"]


def test_activities_read_back_for_the_decision_as_aware_utc_times_in_order(store: Store) -> None:
    late = Activity(kind=ActivityKind.EMAIL_OPEN, occurred_at=datetime(2026, 11, 3, 23, 59, 59, 999999, tzinfo=PARIS))
    with store.begin() as db:
        store.records.store_contacts(db, "job", "hs", [person("c1")], force_dirty=False, now=NOW)
        store.records.store_activities(db, "job", "hs", [
            ActivityRecord(crm_id="a2", activity=late, contact_ids=("c1",), modified_at=NOW),
            act("a1", "c1"),
        ], force_dirty=False, now=NOW)  # fmt: skip
        (queued,) = store.queue.due(db, "job", "hs", after="", limit=10, now=NOW)
    assert [(a.id, a.occurred_at) for a in queued.activities] == [
        ("a1", datetime(2026, 11, 2, 8, 30, tzinfo=UTC)),
        ("a2", datetime(2026, 11, 3, 22, 59, 59, 999999, tzinfo=UTC)),
    ]
    assert all(a.occurred_at.tzinfo is UTC for a in queued.activities)


HOSTILE = ['Guide "quoted" \\ back', "\u202eevil\u0007\x1b[31m", "emoji \U0001f600 <b>", "line\nbreak\ttab", None, ""]


def test_many_activities_with_hostile_text_read_back_whole_for_the_decision(store: Store) -> None:
    records = [
        act(f"{n:05d}\"'{HOSTILE[n % 3]}", "c\u202e1", detail=HOSTILE[n % len(HOSTILE)] or None) for n in range(1_200)
    ]
    with store.begin() as db:
        store.records.store_contacts(db, "job", "hs", [person("c\u202e1")], force_dirty=False, now=NOW)
        store.records.store_activities(db, "job", "hs", records, force_dirty=False, now=NOW)
        (queued,) = store.queue.due(db, "job", "hs", after="", limit=10, now=NOW)
    assert sorted((a.id, a.detail) for a in queued.activities) == sorted((r.crm_id, r.activity.detail) for r in records)
    assert {a.occurred_at for a in queued.activities} == {datetime(2026, 11, 2, 8, 30, tzinfo=UTC)}


def test_a_decided_contact_is_queued_again_by_a_new_activity_and_a_queued_one_stays_queued(store: Store) -> None:
    with store.begin() as db:
        store.records.store_contacts(db, "job", "hs", [person("c1"), person("c2")], force_dirty=False, now=NOW)
        store.queue.done(db, "job", "hs", ["c1"])  # decided: out of the queue; c2 still queued
        store.records.store_activities(db, "job", "hs", [act("a1", "c1"), act("a2", "c2")], force_dirty=False,
                                       now=NOW)  # fmt: skip
        # a second page naming them again: both already dirty, left as they are
        store.records.store_activities(db, "job", "hs", [act("a3", "c1"), act("a4", "c2")], force_dirty=False,
                                       now=NOW)  # fmt: skip
        queued = sorted(db.execute(select(job_contacts.c.crm_id, job_contacts.c.dirty)).all())
    assert queued == [("c1", True), ("c2", True)]


def test_hashes_tell_apart_what_json_told_apart() -> None:
    assert activity_hash(act("a", "c1", detail="x")) != activity_hash(act("a", "c1", detail="x1"))
    assert activity_hash(act("a", "c1", "c2")) == activity_hash(act("a", "c2", "c1"))
    assert activity_hash(act("a", "c1", detail=None)) != activity_hash(act("a", "c1", detail="-"))
    assert contact_hash("contact", "{}", {"a": "b", "c": None}) != contact_hash("contact", "{}", {"a": "bc", "": None})
    assert contact_hash("contact", "{}", {"a": None}) != contact_hash("contact", "{}", {"a": "-"})


def test_decisions_backoffs_and_writes_are_set_in_bulk_and_read_back_typed(store: Store) -> None:
    ids = ["10000000001", "10000000002", "c3\x00é"]
    with store.begin() as db:
        store.records.store_contacts(db, "job", "hs", [person(i) for i in ids], force_dirty=False, now=NOW)
        queued = store.queue.due(db, "job", "hs", after="", limit=10, now=NOW)
    later = NOW + timedelta(days=3)
    with store.begin() as db:
        store.queue.record_decisions(db, "job", "hs", [
            Decision("10000000001", Stage.MQL, "mql-form", ("Formulaire « démo »", 'quote " \\'), NOW, done=False,
                     decide_again_at=later),
            Decision("10000000002", None, None, (), NOW, done=True),
            Decision("10000000001", Stage.SQL, "sql-meeting", ("last one wins",), NOW, done=False),
            Decision("c3\x00é", Stage.LEAD, "lead", (), NOW, done=False),
        ])  # fmt: skip
        store.queue.defer(db, "job", "hs", [Deferral("c3\x00é", 2, later)])
        first = next(q for q in queued if q.crm_id == "10000000001")
        written = Written(first, Stage.SQL, {"crmsync_stage": "sql"})
        store.queue.mark_written(db, "job", "hs", [written], NOW)
        store.records.mark_written(db, "hs", [written])
    with store.begin() as db:
        rows = {row.crm_id: row for row in db.execute(select(job_contacts)).all()}
        stored = db.execute(select(contacts).where(contacts.c.crm_id == "10000000001")).one()
    one, two, three = rows["10000000001"], rows["10000000002"], rows["c3\ufffdé"]
    assert (one.decided_stage, one.rule, one.reasons) == ("sql", "sql-meeting", ["last one wins"])
    assert (one.decided_at, one.decide_again_at, one.dirty) == (NOW, None, True)
    assert (one.written_stage, one.written_at) == ("sql", NOW)
    assert (two.decided_stage, two.rule, two.reasons, two.dirty) == (None, None, [], False)
    assert (three.decided_stage, three.dirty, three.attempts, three.not_before) == ("lead", True, 2, later)
    assert (stored.stage, stored.stage_values["crmsync_stage"]) == ("sql", "sql")
    assert stored.content_hash == contact_hash("contact", first.contact_json, stored.stage_values)


def test_decisions_for_more_contacts_than_one_statement_sets_are_each_kept(store: Store) -> None:
    # 450 rows: PostgreSQL sets them in three statements of arrays, SQLite in several of VALUES
    ids = [f"{n:011d}" for n in range(450)]
    later = NOW + timedelta(hours=5)
    with store.begin() as db:
        store.records.store_contacts(db, "job", "hs", [person(i) for i in ids], force_dirty=False, now=NOW)
    decisions = [
        Decision(crm_id, Stage.MQL if n % 2 else None, f"rule-{n}" if n % 3 else None,
                 (f"« {n} »'); DROP TABLE job_contacts; --", '\\"'), NOW + timedelta(seconds=n),
                 done=False, decide_again_at=later if n % 4 == 0 else None)
        for n, crm_id in enumerate(ids)
    ]  # fmt: skip
    with store.begin() as db:
        store.queue.record_decisions(db, "job", "hs", decisions)
        rows = {row.crm_id: row for row in db.execute(select(job_contacts)).all()}
    assert len(rows) == 450
    for n, crm_id in enumerate(ids):
        row = rows[crm_id]
        assert (row.decided_stage, row.rule) == ("mql" if n % 2 else None, f"rule-{n}" if n % 3 else None)
        assert row.reasons == [f"« {n} »'); DROP TABLE job_contacts; --", '\\"']
        assert (row.decided_at, row.decide_again_at) == (NOW + timedelta(seconds=n), later if n % 4 == 0 else None)


def test_history_records_each_intent_once_across_look_ups_and_counts_the_rows_added(store: Store) -> None:
    def change(n: int, to: Stage = Stage.MQL) -> Change:
        intent = PendingWrite(f"{n:08d}-0000-4000-8000-000000000000", "run-1", "lead", Stage.LEAD, to, to.value,
                              "mql-form", (f"« {n} »'); --",), NOW)  # fmt: skip
        return Change(f"{n:011d}", f"p{n}@example.fr", intent)

    with store.begin() as db:
        assert store.history.record(db, "job", "hs", [change(n) for n in range(300)]) == 300
    with store.begin() as db:
        # 150 recorded already, 150 new, one new intent given twice (the first kept): two look-ups on PostgreSQL
        again = [change(n, Stage.SQL) for n in range(150, 450)] + [change(449, Stage.MEETING)]
        assert store.history.record(db, "job", "hs", again) == 150
        rows = db.exec_driver_sql("SELECT intent_id, to_stage FROM stage_changes").all()
    by_intent = dict(rows)
    assert len(rows) == len(by_intent) == 450
    assert by_intent[change(0).intent.intent_id] == by_intent[change(299).intent.intent_id] == "mql"
    assert by_intent[change(300).intent.intent_id] == by_intent[change(449).intent.intent_id] == "sql"


def test_e_mails_resolve_to_the_connections_own_contacts(store: Store) -> None:
    with store.begin() as db:
        store.records.store_contacts(db, "job", "hs", [person("10000000001")], force_dirty=False, now=NOW)
        store.records.store_contacts(db, "job", "hs2", [person("10000000001"), person("10000000002")],
                                     force_dirty=False, now=NOW)  # fmt: skip
        hs = store.records.contact_ids_by_email(db, "hs", ["10000000001@example.fr", "10000000002@example.fr"])
        other = store.records.contact_ids_by_email(db, "hs2", ["10000000002@example.fr", "nobody@example.fr"])
    assert hs == {"10000000001@example.fr": "10000000001"}
    assert other == {"10000000002@example.fr": "10000000002"}


def test_e_mails_resolve_past_one_in_list_with_hostile_text_and_the_latest_stored_contact(store: Store) -> None:
    odd = ['o\'brien+"x"@exämple.fr', "a\\b@example.fr", "<script>@example.fr"]
    people = [
        ContactRecord(
            crm_id=str(10**10 + n),
            object_type="contact",
            contact=Contact(email=address),
            stage_values={},
            modified_at=NOW,
        )
        for n, address in enumerate([f"p{n}@example.fr" for n in range(1_000)] + odd)
    ]
    later = people[0].model_copy(update={"crm_id": "20000000000"})  # the same address, stored after
    with store.begin() as db:
        store.records.store_contacts(db, "job", "hs", people, force_dirty=False, now=NOW)
        store.records.store_contacts(db, "job", "hs", [later], force_dirty=False, now=NOW + timedelta(seconds=1))
    with store.read() as db:
        found = store.records.contact_ids_by_email(db, "hs", [f"p{n}@example.fr" for n in range(1_000)] + odd)
    assert len(found) == 1_003
    assert found["p0@example.fr"] == "20000000000"
    assert found["p999@example.fr"] == str(10**10 + 999)
    assert found[odd[0]] == str(10**10 + 1_000)
    assert found["<script>@example.fr"] == str(10**10 + 1_002)


def _table(db: Connection) -> None:
    db.exec_driver_sql("CREATE TEMPORARY TABLE bulk_probe (k TEXT PRIMARY KEY, v TEXT, n INTEGER)")


PROBE = Table("bulk_probe", MetaData(), Column("k", Text, primary_key=True), Column("v", Text), Column("n", Integer))


def test_many_rows_go_in_whole_and_in_order_with_a_key_given_twice(store: Store) -> None:
    rows = [(f"k{n:04d}", f"v{n}'\"", n) for n in range(301)]  # not a multiple of any statement's size
    with store.begin() as db:
        _table(db)
        insert_rows(db, "bulk_probe", ("k", "v", "n"), rows)
        insert_rows(db, "bulk_probe", ("k", "v", "n"), [("k0001", "first", 1), ("k0001", "second", 2), ("new", "x", 0)],
                    conflict=("k",), update=("v", "n"))  # fmt: skip
        insert_rows(db, "bulk_probe", ("k", "v", "n"), [("k0002", "kept?", 9), ("k0002", "no", 8)], conflict=("k",))
        stored = db.exec_driver_sql("SELECT k, v, n FROM bulk_probe ORDER BY k").all()
    expected = dict((k, (v, n)) for k, v, n in rows) | {"k0001": ("second", 2), "new": ("x", 0)}
    assert {k: (v, n) for k, v, n in stored} == expected


def test_many_rows_are_updated_by_their_keys_with_a_key_given_twice(store: Store) -> None:
    rows = [(f"k{n:04d}", "old", n) for n in range(301)]
    # every row but the last, hostile text, one key twice (the last tuple wins), one key not stored (no row made)
    changes = [(f"k{n:04d}", f"v{n}'\"); DROP TABLE bulk_probe; --\u202e", n * 2) for n in range(300)]
    changes += [("k0007", None, -1), ("absent", "x", 0)]
    with store.begin() as db:
        _table(db)
        insert_rows(db, "bulk_probe", ("k", "v", "n"), rows)
        update_rows(db, PROBE, ("k",), ("v", "n"), changes)
        stored = db.exec_driver_sql("SELECT k, v, n FROM bulk_probe ORDER BY k").all()
    expected = {k: ("old", n) for k, _, n in rows} | {k: (v, n) for k, v, n in changes if k != "absent"}
    assert {k: (v, n) for k, v, n in stored} == expected
    assert expected["k0007"] == (None, -1) and expected["k0300"] == ("old", 300)


def test_sqlite_allowing_few_parameters_gets_smaller_statements(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'few.db'}")
    try:
        with store.begin() as db:
            driver = db.connection.driver_connection
            assert isinstance(driver, sqlite3.Connection)
            driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 10)  # 3 columns: 3 rows a statement at most
            _table(db)
            insert_rows(db, "bulk_probe", ("k", "v", "n"), [(f"k{n}", "v", n) for n in range(25)])
            assert db.exec_driver_sql("SELECT count(*), sum(n) FROM bulk_probe").one() == (25, sum(range(25)))
            found = select_rows(db, ("k", "n"), "FROM bulk_probe WHERE n < ? ORDER BY n", [3])
            update_rows(db, PROBE, ("k",), ("n",), [(f"k{n}", n + 1) for n in range(25)])  # 2 values: 5 rows
            assert db.exec_driver_sql("SELECT sum(n) FROM bulk_probe").scalar() == sum(range(1, 26))
        assert found == [("k0", 0), ("k1", 1), ("k2", 2)]
    finally:
        store.close()
