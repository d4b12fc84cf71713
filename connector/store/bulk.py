"""The bulk path for pulled records: rows handed to the driver as tuples, values converted once.

SQLAlchemy's ``insert()`` compiles the statement and runs every parameter of
every row through its type processors; for a page of 2,000 activity rows that
costs about 3.7 times a plain ``executemany`` of tuples on SQLite. The record
tables are written here with ``exec_driver_sql`` instead, after each value is
made what the column type would have made it: text :func:`storable`, JSON
serialised from :func:`storable_json`, datetimes naive UTC (on SQLite in
SQLAlchemy's own text form, so they read back the same).

On SQLite the rows go in as ``INSERT``s of many rows each, and a look-up made
while the client's threads read (:func:`select_rows`) gets its rows back in one
step: the driver lets go of the interpreter lock on every step of a statement,
and taking it back while another thread parses waits for that thread to yield.

On PostgreSQL (psycopg) the rows go in with ``COPY``, about six times
cheaper for the server than ``executemany`` of ``INSERT``s: straight into the
table for a plain insert, else into a temporary staging table (emptied at
commit) and from there with one ``INSERT ... SELECT ... ON CONFLICT``. Rows are
updated by key with one ``UPDATE ... FROM unnest(arrays)`` per 200 rows, planned
once, not once a row. Other PostgreSQL drivers get the ``executemany``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from sqlalchemy import Connection, Table

from connector.store.tables import storable_json


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return value.astimezone(UTC)


def _sqlite_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = _utc(value)
    # SQLAlchemy's text form of the naive time: the aware one's, without its "+00:00"
    return value.isoformat(" ", "microseconds")[:-6]


def _naive_time(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = _utc(value)
    return value.replace(tzinfo=None)


def time_binder(db: Connection) -> Callable[[datetime | None], Any]:
    """:func:`db_time` for this connection's database, chosen once (a page converts thousands of times)."""
    return _sqlite_time if db.dialect.name == "sqlite" else _naive_time


def db_time(db: Connection, value: datetime | None) -> Any:
    """``value`` as the store's ``UtcDateTime`` columns bind it on this connection's database."""
    return time_binder(db)(value)


def db_json(value: Any) -> str:
    """``value`` as a ``SafeJSON`` column binds it (the same text on both databases)."""
    return json.dumps(storable_json(value))


def marks(db: Connection, count: int) -> str:
    """``count`` parameter marks of the connection's driver, comma-separated."""
    mark = "?" if db.dialect.paramstyle == "qmark" else "%s"
    return ", ".join([mark] * count)


def insert_rows(
    db: Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    conflict: Sequence[str] = (),
    update: Sequence[str] = (),
) -> None:
    """``INSERT`` ``rows`` (tuples in ``columns`` order): ``COPY`` on PostgreSQL with psycopg, statements of many
    rows on SQLite (:func:`_insert_values`), one ``executemany`` elsewhere.

    With ``conflict`` (the key columns): ``ON CONFLICT DO UPDATE`` the ``update`` columns, or ``DO NOTHING``.
    Table and column names come from this package, never from a CRM."""
    if not rows:
        return
    names = ", ".join(columns)
    if db.dialect.name == "postgresql" and db.dialect.driver == "psycopg":
        if conflict:
            rows = _last_per_key(columns, rows, conflict, keep_last=bool(update))
        _copy_rows(db, table, names, rows, conflict=conflict, update=update)
        return
    if db.dialect.name == "sqlite":
        _insert_values(db, table, names, len(columns), rows, _on_conflict(conflict, update))
        return
    sql = f"INSERT INTO {table} ({names}) VALUES ({marks(db, len(columns))}){_on_conflict(conflict, update)}"
    db.exec_driver_sql(sql, list(rows))


SQLITE_ROWS_PER_STATEMENT = 128
"""Most rows in one SQLite ``INSERT``. ``executemany`` steps its statement once a row, and each step lets go of
the interpreter lock and takes it back: while the client's reading threads parse, taking it back waits for
one of them to yield (up to the switch interval), so a page group of thousands of rows took seconds. A
statement of many rows is stepped once."""


def _insert_values(
    db: Connection, table: str, names: str, width: int, rows: Sequence[tuple[Any, ...]], tail: str
) -> None:
    """``rows`` in order, in ``INSERT``s of many rows (:func:`_sqlite_parts`); a key given twice is upserted
    twice, as with one row a statement."""
    _each_sqlite_part(db, width, rows, lambda values: f"INSERT INTO {table} ({names}) VALUES {values}{tail}")


def _each_sqlite_part(
    db: Connection, width: int, rows: Sequence[tuple[Any, ...]], statement: Callable[[str], str]
) -> None:
    """Run ``statement(values)`` for each part of ``rows`` (:func:`_sqlite_parts`), ``values`` being the part's
    ``(?, ...), (?, ...)`` list, with the part's values in order."""
    row = f"({', '.join(['?'] * width)})"
    for start, size in _sqlite_parts(db, width, len(rows)):
        db.exec_driver_sql(statement(", ".join([row] * size)), tuple(chain.from_iterable(rows[start : start + size])))


def _sqlite_parts(db: Connection, width: int, count: int) -> Iterator[tuple[int, int]]:
    """Where each statement of many rows starts and how many rows it takes, for ``count`` rows of ``width``
    values: :data:`SQLITE_ROWS_PER_STATEMENT` rows, then halving sizes for the rest (so a table has a handful of
    statement texts for the driver to keep compiled, not one per length); fewer when the library allows fewer
    parameters."""
    driver = db.connection.driver_connection
    assert driver is not None
    size = SQLITE_ROWS_PER_STATEMENT
    while size > 1 and size * width > driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER):
        size //= 2
    start = 0
    while start < count:
        while size > count - start:
            size //= 2
        yield start, size
        start += size


def _last_per_key(
    columns: Sequence[str], rows: Sequence[tuple[Any, ...]], keys: Sequence[str], *, keep_last: bool
) -> list[tuple[Any, ...]]:
    """One row per key, as one ``INSERT`` per row would leave it (the last one updating, or the first one
    kept): one ``INSERT ... ON CONFLICT DO UPDATE`` cannot touch a row twice."""
    at = [columns.index(name) for name in keys]
    chosen: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for row in rows:
        key = tuple(row[i] for i in at)
        if keep_last or key not in chosen:
            chosen[key] = row
    return list(chosen.values())


def _on_conflict(conflict: Sequence[str], update: Sequence[str]) -> str:
    if not conflict:
        return ""
    keys = ", ".join(conflict)
    if not update:
        return f" ON CONFLICT ({keys}) DO NOTHING"
    return f" ON CONFLICT ({keys}) DO UPDATE SET " + ", ".join(f"{name} = excluded.{name}" for name in update)


def _copy_rows(
    db: Connection,
    table: str,
    names: str,
    rows: Sequence[tuple[Any, ...]],
    *,
    conflict: Sequence[str],
    update: Sequence[str],
) -> None:
    """``COPY`` ``rows`` into ``table`` (through a staging table when they may conflict), in ``db``'s
    transaction."""
    target = table
    if conflict:
        target = f"{table}_staged"
        # one per session, emptied after each use; LIKE copies the column types, not the keys
        db.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {target} (LIKE {table} INCLUDING DEFAULTS)")
    driver = db.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    if conflict:
        db.exec_driver_sql(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {target}{_on_conflict(conflict, update)}"
        )
        db.exec_driver_sql(f"DELETE FROM {target}")


def update_rows(
    db: Connection, table: Table, keys: Sequence[str], columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Set ``columns`` of the rows of ``table`` found by ``keys``, one tuple per row: its key values, then its
    new values (made what the column types would make them: :func:`db_time`, :func:`db_json`, storable text).
    A key given twice: the last tuple wins, as with one ``UPDATE`` per tuple.

    On SQLite, ``UPDATE ... FROM (VALUES ...)`` statements of many rows (:func:`_update_values`); on PostgreSQL
    with psycopg, ``UPDATE ... FROM unnest(arrays)`` statements (:func:`_update_arrays`); elsewhere one
    ``executemany`` of tuples. The arrays were tried once before and dropped, when a pull left the tables
    without statistics: the planner then joined by a sequential scan of the whole ``contacts`` table for every
    batch. A pull that fills the tables now analyzes them
    (:meth:`connector.store.records.Records.refresh_statistics`), and at :data:`POSTGRES_ROWS_PER_UPDATE` rows a
    statement the plan finds each row by its key (checked with ``EXPLAIN`` at 100,000 rows; at 2,000 rows a
    statement the queue's update scanned the whole index)."""
    if not rows:
        return
    rows = _last_per_key((*keys, *columns), rows, keys, keep_last=True)
    if db.dialect.name == "sqlite" and sqlite3.sqlite_version_info >= SQLITE_UPDATE_FROM:
        _update_values(db, table.name, keys, columns, rows)
        return
    if db.dialect.name == "postgresql" and db.dialect.driver == "psycopg":
        _update_arrays(db, table, keys, columns, rows)
        return
    sets = ", ".join(f"{column} = {marks(db, 1)}" for column in columns)
    where = " AND ".join(f"{key} = {marks(db, 1)}" for key in keys)
    count = len(keys)
    db.exec_driver_sql(f"UPDATE {table.name} SET {sets} WHERE {where}", [row[count:] + row[:count] for row in rows])


SQLITE_UPDATE_FROM = (3, 33, 0)
"""The first SQLite with ``UPDATE ... FROM``; an older library gets the ``executemany``."""


def _update_values(
    db: Connection, table: str, keys: Sequence[str], columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """``rows`` (one per key) set in ``UPDATE ... FROM (VALUES ...)`` statements of many rows each, each row found
    by its key. ``executemany`` steps its statement once a row and lets go of the interpreter lock each time: with
    another thread computing (a client's reader, the calling thread, a helper's pickling thread) taking it back
    waited up to the switch interval, ~1 ms a row where one statement of 128 rows took ~40 µs a row."""
    sets = ", ".join(f"{column} = v.column{len(keys) + n + 1}" for n, column in enumerate(columns))
    where = " AND ".join(f"{table}.{key} = v.column{n + 1}" for n, key in enumerate(keys))
    _each_sqlite_part(db, len(keys) + len(columns), rows,
                      lambda values: f"UPDATE {table} SET {sets} FROM (VALUES {values}) AS v WHERE {where}")  # fmt: skip


POSTGRES_ROWS_PER_UPDATE = 200
"""Most rows in one PostgreSQL ``UPDATE ... FROM unnest(...)``: few enough that the planner finds each row by its
key (a nested loop over the primary key) rather than reading the whole table to join it."""


def _update_arrays(
    db: Connection, table: Table, keys: Sequence[str], columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """``rows`` (one per key) set in ``UPDATE ... FROM unnest(arrays)`` statements of up to
    :data:`POSTGRES_ROWS_PER_UPDATE` rows, one array per column, typed as the column is. An ``executemany`` of
    one ``UPDATE`` a row made the server parse and plan every row (plans are made for each execution's values,
    :func:`connector.store.database.create_store_engine`); this plans once per statement."""
    names = [*keys, *columns]
    arrays = ", ".join(f"%s::{table.c[name].type.compile(dialect=db.dialect)}[]" for name in names)
    sets = ", ".join(f"{name} = v.{name}" for name in columns)
    where = " AND ".join(f"t.{key} = v.{key}" for key in keys)
    sql = f"UPDATE {table.name} AS t SET {sets} FROM unnest({arrays}) AS v({', '.join(names)}) WHERE {where}"
    for start in range(0, len(rows), POSTGRES_ROWS_PER_UPDATE):
        part = rows[start : start + POSTGRES_ROWS_PER_UPDATE]
        db.exec_driver_sql(sql, tuple([row[n] for row in part] for n in range(len(names))))


def set_where_in(
    db: Connection,
    table: str,
    assignment: str,
    fixed: Sequence[tuple[str, Any]],
    column: str,
    values: Sequence[Any],
    *,
    unless: str = "",
) -> None:
    """``UPDATE table SET assignment WHERE`` each ``fixed`` column equals its value ``AND column IN (values)``
    (at most 900, text made :func:`storable` by the caller), leaving out the rows where ``unless`` holds (rows
    the assignment would not change: not rewritten, nor their index entries): one statement given to the driver
    as it is, not compiled by SQLAlchemy (whose expanding ``IN`` costs more than the update on every page of a
    pull). ``assignment``, ``unless`` and the names come from this package, never from a CRM."""
    if not values:
        return
    where = " AND ".join(f"{name} = {marks(db, 1)}" for name, _ in fixed)
    sql = f"UPDATE {table} SET {assignment} WHERE {where} AND {column} IN ({marks(db, len(values))})"
    if unless:
        sql += f" AND NOT ({unless})"
    db.exec_driver_sql(sql, (*(value for _, value in fixed), *values))


def delete_where_in(
    db: Connection, table: str, fixed: Sequence[tuple[str, Any]], column: str, values: Sequence[Any]
) -> None:
    """``DELETE FROM table WHERE`` each ``fixed`` column equals its value ``AND column IN (values)`` (at most 900,
    text made :func:`storable` by the caller), given to the driver as it is, like :func:`set_where_in`."""
    if not values:
        return
    where = " AND ".join(f"{name} = {marks(db, 1)}" for name, _ in fixed)
    sql = f"DELETE FROM {table} WHERE {where} AND {column} IN ({marks(db, len(values))})"
    db.exec_driver_sql(sql, (*(value for _, value in fixed), *values))


def _sqlite_read_time(value: str | None) -> datetime | None:
    # the stored text is naive UTC: read with its offset, in one step (a fifth of parsing, then replacing)
    return None if value is None else datetime.fromisoformat(value + "+00:00")


def _read_time(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def time_reader(db: Connection) -> Callable[[Any], datetime | None]:
    """What ``UtcDateTime`` makes of a stored time read by the driver itself: an aware UTC datetime, or none."""
    return _sqlite_read_time if db.dialect.name == "sqlite" else _read_time


def json_reader(db: Connection) -> Callable[[Any], Any]:
    """What ``SafeJSON`` makes of a stored JSON value read by the driver itself (psycopg decodes it already)."""
    return json.loads if db.dialect.name == "sqlite" else _as_is


def _as_is(value: Any) -> Any:
    return value


def activity_rows(
    db: Connection, connection: str, contact_ids: Sequence[str]
) -> Iterator[tuple[str, str, str, datetime, str | None]]:
    """``(crm_id, contact_crm_id, kind, occurred_at, detail)`` of the activities of ``contact_ids`` (at most
    900), read without SQLAlchemy's per-value result processing: ``occurred_at`` is made an aware UTC
    datetime here, as ``UtcDateTime`` would (a million rows in a 100,000-contact run)."""
    if not contact_ids:
        return
    rest = f"FROM activities WHERE connection = {marks(db, 1)} AND contact_crm_id IN ({marks(db, len(contact_ids))})"
    params = (connection, *contact_ids)
    rows: Sequence[Sequence[Any]]
    if db.dialect.name == "sqlite":
        # a chunk's thousands of rows in one step of the driver (see the module's docs), not one step each
        rows = select_rows(db, ("crm_id", "contact_crm_id", "kind", "occurred_at", "detail"), rest, params)
    else:
        # on the driver's own cursor, in the connection's transaction: SQLAlchemy's rows cost ~1.5 s a million
        driver = db.connection.driver_connection
        assert driver is not None
        cursor = driver.cursor()
        cursor.execute(f"SELECT crm_id, contact_crm_id, kind, occurred_at, detail {rest}", params)
        rows = cursor.fetchall()
        cursor.close()
    read_time = time_reader(db)
    for crm_id, contact_id, kind, occurred_at, detail in rows:
        aware = read_time(occurred_at)
        assert aware is not None  # NOT NULL
        yield crm_id, contact_id, kind, aware, detail


def select_rows(db: Connection, columns: Sequence[str], rest: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """``SELECT columns rest`` (``rest``: ``FROM ... WHERE ...``, from this package), every row at once.

    On SQLite the rows come as one JSON array made by SQLite (``json_group_array``), so the driver steps the
    statement once, not once a row (see the module's docs). Values come back as JSON gives them: text,
    numbers, or none."""
    names = ", ".join(columns)
    if db.dialect.name != "sqlite":
        return [tuple(row) for row in db.exec_driver_sql(f"SELECT {names} {rest}", tuple(params))]
    found = db.exec_driver_sql(f"SELECT json_group_array(json_array({names})) {rest}", tuple(params)).scalar_one()
    return [tuple(row) for row in json.loads(found)]


def has_rows(db: Connection, table: str, connection: str) -> bool:
    """Whether ``table`` holds anything of ``connection`` (one index probe)."""
    sql = f"SELECT 1 FROM {table} WHERE connection = {marks(db, 1)} LIMIT 1"
    return db.exec_driver_sql(sql, (connection,)).first() is not None
