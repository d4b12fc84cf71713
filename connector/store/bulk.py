"""The bulk path for pulled records: rows handed to the driver as tuples, values converted once.

SQLAlchemy's ``insert()`` compiles the statement and runs every parameter of
every row through its type processors; for a page of 2,000 activity rows that
costs about 3.7 times a plain ``executemany`` of tuples on SQLite. The record
tables are written here with ``exec_driver_sql`` instead, after each value is
made what the column type would have made it: text :func:`storable`, JSON
serialised from :func:`storable_json`, datetimes naive UTC (on SQLite in
SQLAlchemy's own text form, so they read back the same).

PostgreSQL gets the same statements through psycopg's ``executemany``, which
pipelines the rows and, with prepared statements on (see
:mod:`connector.store.database`), parses and plans each statement once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from connector.store.tables import storable_json


def db_time(db: Connection, value: datetime | None) -> Any:
    """``value`` as the store's ``UtcDateTime`` columns bind it on this connection's database."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
    naive = value.replace(tzinfo=None)
    if db.dialect.name == "sqlite":
        return naive.isoformat(" ", "microseconds")
    return naive


def db_json(value: Any) -> str:
    """``value`` as a ``SafeJSON`` column binds it (the same text on both databases)."""
    return json.dumps(storable_json(value))


def _marks(db: Connection, count: int) -> str:
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
    """``INSERT`` ``rows`` (tuples in ``columns`` order) in one ``executemany``.

    With ``conflict`` (the key columns): ``ON CONFLICT DO UPDATE`` the ``update`` columns, or ``DO NOTHING``.
    Table and column names come from this package, never from a CRM."""
    if not rows:
        return
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_marks(db, len(columns))})"
    if conflict:
        keys = ", ".join(conflict)
        if update:
            sets = ", ".join(f"{name} = excluded.{name}" for name in update)
            sql += f" ON CONFLICT ({keys}) DO UPDATE SET {sets}"
        else:
            sql += f" ON CONFLICT ({keys}) DO NOTHING"
    db.exec_driver_sql(sql, list(rows))


def has_rows(db: Connection, table: str, connection: str) -> bool:
    """Whether ``table`` holds anything of ``connection`` (one index probe)."""
    sql = f"SELECT 1 FROM {table} WHERE connection = {_marks(db, 1)} LIMIT 1"
    return db.exec_driver_sql(sql, (connection,)).first() is not None
