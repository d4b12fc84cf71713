"""The two statements every repository needs: a portable upsert and ``IN`` lists cut to size."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

IN_LIST_SIZE = 900
"""Ids per ``IN (...)``: under SQLite's default limit of 999 bound parameters."""


def upsert(
    db: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str],
    update: Sequence[str] = (),
) -> None:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE`` (the ``update`` columns) or ``DO NOTHING``, on SQLite and PostgreSQL."""
    if not rows:
        return
    statement: postgresql.Insert | sqlite.Insert = (
        postgresql.insert(table) if db.dialect.name == "postgresql" else sqlite.insert(table)
    )
    if update:
        statement = statement.on_conflict_do_update(
            index_elements=list(keys), set_={name: statement.excluded[name] for name in update}
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    db.execute(statement, [dict(row) for row in rows])


def in_chunks(items: Sequence[str], size: int = IN_LIST_SIZE) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
