"""Opening the store: engine, SQLite pragmas, and migrations applied on open."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from connector.errors import ConfigError, StoreError

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCKED_ATTEMPTS = 20


READ_ONLY = "crmsync_read_only"
"""Execution option of a connection that only reads (:meth:`connector.store.Store.read`)."""


def create_store_engine(url: str, *, connect_args: dict[str, Any] | None = None) -> Engine:
    """An engine for ``url`` (SQLite or PostgreSQL) set up for several writers.

    SQLite: WAL (readers do not block the writer), a busy timeout, and every
    transaction opened with ``BEGIN IMMEDIATE`` so two writers queue instead
    of failing on a lock upgrade half-way through a transaction.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError("store.url is not a SQLAlchemy URL (e.g. sqlite:///crmsync.db)") from None
    args = dict(connect_args or {})
    if parsed.get_backend_name() == "sqlite":
        args.setdefault("timeout", 60)
        args.setdefault("check_same_thread", False)
        engine = create_engine(parsed, connect_args=args)
        _sqlite_events(engine)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(f"store.url: unsupported database {parsed.get_backend_name()!r} (SQLite or PostgreSQL)")
    # Prepared statements stay on (psycopg prepares a statement after its 5th run: parsed once, not
    # ~356,000 times in a 100,000-contact sync). PostgreSQL would then switch a prepared statement to a
    # generic plan after five custom ones, and a generic plan made while the tables were still empty (a
    # sequential scan) stayed for the whole run; plan_cache_mode=force_custom_plan keeps planning each
    # execution with its values, so the plans follow the tables as they fill.
    custom_plans = "-c plan_cache_mode=force_custom_plan"
    options = str(args.get("options") or parsed.query.get("options") or "")
    if "plan_cache_mode" not in options:
        args["options"] = f"{options} {custom_plans}".strip()
    return create_engine(parsed, connect_args=args, pool_pre_ping=True)


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # take transaction control away from pysqlite so BEGIN IMMEDIATE is ours to send
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=60000")  # first: switching to WAL needs the lock too
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # a read (Store.read) takes a snapshot and no lock: in WAL it neither waits for a writer nor blocks one
        reading = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent; safe for several processes on PostgreSQL)."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        for attempt in range(1, _LOCKED_ATTEMPTS + 1):
            try:
                with engine.begin() as connection:
                    if connection.dialect.name == "postgresql":
                        # one migrator at a time when several workers start together
                        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(72616365)")
                    config.attributes["connection"] = connection
                    command.upgrade(config, "head")
                return
            except OperationalError as error:
                # SQLite answers "database is locked" at once, without its busy timeout, when two
                # processes open a new file together (switching it to WAL); the other one is done soon
                if "database is locked" not in str(error.orig) or attempt == _LOCKED_ATTEMPTS:
                    raise
                time.sleep(0.05 * attempt)
    except DBAPIError as error:
        # the driver's first line says what is wrong (host down, no such database, not a database file);
        # a SQLite store is named by its file, a server never by its password
        detail = str(error.orig).strip().splitlines()[0] if str(error.orig).strip() else type(error.orig).__name__
        password = engine.url.password
        if password:
            detail = detail.replace(str(password), "***")
        where = f" {engine.url.database}" if engine.url.get_backend_name() == "sqlite" and engine.url.database else ""
        raise StoreError(f"cannot open the state store{where}: {detail}") from None
