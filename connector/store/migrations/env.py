"""Alembic environment: migrations run programmatically from ``connector.store.open_store``.

The caller hands over a live connection in ``config.attributes["connection"]``;
there is no ``alembic.ini`` and no URL here, so no credential ever passes
through this file.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from connector.store.tables import metadata

config = context.config


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only programmatic use is supported
    raise RuntimeError("crmsync migrations run from connector.store.open_store, not the alembic command")
run_migrations(connection)
