"""A connection's first load of activities: appended as pulled, moved into ``activities`` in key order at the end.

Activity pages arrive in the CRM's modification order, not by contact, so
inserting each page group into ``activities`` put every row at a random place
in its key (``connection, contact_crm_id, crm_id``) and in its ``crm_id``
index: on SQLite, at a million rows, each group's commit rewrote thousands of
index pages, and storing the load cost 35 s where appending the same rows to an
unindexed table and moving them in key order at the end costs 11 s (the same
rows, measured on one machine).

The move still fills ``activities``' ``(connection, crm_id)`` index, whose
order is not the key's: on SQLite, a first load larger than what is stored
drops that index and builds it again after the move, in the same transaction
(at a million rows, 9.3 s became 3.3 s). PostgreSQL keeps its index and moves
the rows with a plain ``INSERT`` (:func:`_move`).

So a pull that starts while ``activities`` holds nothing of its connection
appends its rows to ``activity_staging`` (with the page group they came in:
``batch``), and its checkpoints commit with them as before. When the pull has
read everything, :func:`settle` moves the staged rows in one statement,
sorted by key, keeping of each activity only the copy of the latest group that
read it (an activity edited while the pull ran is read twice, perhaps with other
contacts). Nothing reads ``staging`` but :func:`settle`: an activity is
stored, for ``explain``, the funnel and deciding, once it is moved.

A pull that stops before :func:`settle` (a crash, a stop) leaves its rows
staged: the next pull of the connection, of either stream, settles them before
it reads anything, so a contact removed in the CRM meanwhile loses its staged
activities as it does its stored ones. Two jobs loading one connection at once
each stage their copies; the second to settle finds rows there and first
removes the stored copies of what it moves, queueing the contacts those copies
named for every job.

The contacts the staged rows name are queued when they settle, in two
statements instead of three per page group; until then the rows are not
stored for anyone, so no job could decide them earlier. A job settling rows
another job staged (after a crash) queues them for every job that knows
those contacts, and for itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from connector.store.bulk import has_rows, insert_rows, marks
from connector.store.tables import activities

TABLE = "activity_staging"
COLUMNS = tuple(column.name for column in activities.columns)
"""An ``activities`` row's columns, in the order :func:`stage` takes its tuples (the staging table adds ``batch``)."""
_KEYS = tuple(column.name for column in activities.primary_key.columns)


_last_batch = 0
_batch_lock = threading.Lock()


def _next_batch() -> int:
    """Nanoseconds since the epoch, never the same or smaller twice in this process (a clock set back)."""
    global _last_batch
    with _batch_lock:
        _last_batch = max(time.time_ns(), _last_batch + 1)
        return _last_batch


def stage(db: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Append activity rows (tuples in :data:`COLUMNS` order, values as the store binds them) as one page group."""
    batch = _next_batch()
    insert_rows(db, TABLE, ("batch", *COLUMNS), [(batch, *row) for row in rows])


def staged(db: Connection, connection: str) -> bool:
    """Whether ``connection`` has activities staged (one index probe)."""
    return has_rows(db, TABLE, connection)


def settle(db: Connection, job: str, connection: str) -> tuple[int, list[str]]:
    """Move ``connection``'s staged activities into ``activities`` (the latest group's copy of each), in key order,
    and queue the contacts they name as storing them at once would have: for every job that knows them, and for
    ``job`` (the one settling) those it does not know yet. Returns the rows moved and the contacts of stored copies
    it replaced (to be queued again for every job by the caller), in ``db``'s transaction."""
    if not staged(db, connection):
        return 0, []
    one = marks(db, 1)
    named = f"SELECT contact_crm_id FROM {TABLE} WHERE connection = {one}"
    # one statement each, not one per page group: the same rows end dirty as with :meth:`Queue.mark_dirty`
    db.exec_driver_sql(
        f"UPDATE job_contacts SET dirty = TRUE WHERE connection = {one} AND NOT dirty AND crm_id IN ({named})",
        (connection, connection),
    )
    db.exec_driver_sql(
        f"INSERT INTO job_contacts (job, connection, crm_id, dirty, attempts)"
        f" SELECT DISTINCT {one}, connection, contact_crm_id, TRUE, 0 FROM {TABLE} WHERE connection = {one}"
        " ON CONFLICT (job, connection, crm_id) DO NOTHING",
        (job, connection),
    )
    replaced: list[str] = []
    if has_rows(db, "activities", connection):
        # stored meanwhile (another job's load of the same connection): the staged copies replace them whole
        in_staging = f"crm_id IN (SELECT crm_id FROM {TABLE} WHERE connection = {one})"
        replaced = [
            row[0]
            for row in db.exec_driver_sql(
                f"SELECT DISTINCT contact_crm_id FROM activities WHERE connection = {one} AND {in_staging}",
                (connection, connection),
            )
        ]
        db.exec_driver_sql(
            f"DELETE FROM activities WHERE connection = {one} AND {in_staging}", (connection, connection)
        )
    names = ", ".join(COLUMNS)
    updates = ", ".join(f"{name} = excluded.{name}" for name in COLUMNS[3:])
    source = f"SELECT {names} FROM {TABLE} WHERE connection = {one}"
    read_twice = db.exec_driver_sql(
        f"SELECT 1 FROM {TABLE} WHERE connection = {one} GROUP BY crm_id HAVING min(batch) <> max(batch) LIMIT 1",
        (connection,),
    ).first()
    if read_twice is not None:
        # only the latest group's copy of an activity read twice (a narrow sort first: most loads read none twice,
        # and this one sorts every staged row by crm_id, ~3.5 s a million)
        source = (
            f"SELECT {names} FROM (SELECT {names}, batch, max(batch) OVER (PARTITION BY crm_id) AS last_batch"
            f" FROM {TABLE} WHERE connection = {one}) AS staged WHERE batch = last_batch"
        )
    insert = f"INSERT INTO activities ({names}) {source} ORDER BY contact_crm_id, crm_id"
    upsert = f"{insert} ON CONFLICT ({', '.join(_KEYS)}) DO UPDATE SET {updates}"
    with _indexes_rebuilt(db) if _rebuild_pays(db, connection) else nullcontext():
        moved = _move(db, insert, upsert, connection)
    if _only(db, connection):
        # SQLite empties a table deleted from without a condition at once (~1 s less at a million rows)
        db.exec_driver_sql(f"DELETE FROM {TABLE}")
    else:
        db.exec_driver_sql(f"DELETE FROM {TABLE} WHERE connection = {one}", (connection,))
    return moved, replaced


def _move(db: Connection, insert: str, upsert: str, connection: str) -> int:
    """The staged rows into ``activities``; returns how many. Every stored copy of what they hold was deleted just
    before, and each staged key is there once, so on PostgreSQL the plain ``insert`` goes first, in a savepoint:
    checking each row for a conflict (``upsert``) made the move of 670,000 rows 10.4-11.2 s instead of 6.1-7.2 s.
    A copy another job stored meanwhile makes it fail, and ``upsert`` moves the rows instead. SQLite keeps the
    upsert (not measured against the plain insert there)."""
    if db.dialect.name != "postgresql":
        return int(db.exec_driver_sql(upsert, (connection,)).rowcount)
    try:
        with db.begin_nested():
            return int(db.exec_driver_sql(insert, (connection,)).rowcount)
    except IntegrityError:
        return int(db.exec_driver_sql(upsert, (connection,)).rowcount)


def _only(db: Connection, connection: str) -> bool:
    """Whether ``connection`` is the only one with rows staged (two probes of the index)."""
    ends = [db.exec_driver_sql(f"SELECT {end}(connection) FROM {TABLE}").scalar() for end in ("min", "max")]
    return ends == [connection, connection]


def _rebuild_pays(db: Connection, connection: str) -> bool:
    """Whether to build ``activities``' secondary indexes again after the move rather than keep them up to date
    row by row: on SQLite, when the staged rows outnumber the stored ones (a first install's first load).

    The rows go in by key, but the ``(connection, crm_id)`` index takes them in ``crm_id`` order, a random place
    each, and SQLite's small page cache rewrote its pages over and over: at 1,000,000 staged rows with HubSpot-like
    ids the move took 11.6-12.8 s, and 4.5-5.8 s with the index dropped before and created after (sorting once).
    PostgreSQL keeps it: dropping an index locks the whole table against readers until the commit."""
    if db.dialect.name != "sqlite":
        return False
    staged_rows = db.exec_driver_sql(f"SELECT count(*) FROM {TABLE} WHERE connection = ?", (connection,)).scalar_one()
    return staged_rows >= db.exec_driver_sql("SELECT count(*) FROM activities").scalar_one()


@contextmanager
def _indexes_rebuilt(db: Connection) -> Iterator[None]:
    """``activities``' secondary indexes dropped for the block and created again after it, in ``db``'s transaction
    (SQLite: a crash or an error leaves them as they were), from their own stored definitions."""
    indexes = db.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'activities' AND sql IS NOT NULL"
    ).all()
    for name, _ in indexes:
        db.exec_driver_sql(f'DROP INDEX "{name}"')
    yield
    for _, sql in indexes:
        db.exec_driver_sql(sql)
