"""The state store: one facade holding a repository per concern, over SQLite (one file) or PostgreSQL.

Every repository method takes an open transaction (``store.begin()``) so the
sync decides where the commit points are: a page, its queue marks and its
read position commit together; planned writes commit before the CRM is
called; write results, history, dead letters and the lease heartbeat commit
together after it answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine

from connector.store.checkpoints import Checkpoints
from connector.store.database import READ_ONLY, create_store_engine, migrate
from connector.store.dead_letters import DeadLetters
from connector.store.history import History
from connector.store.outbox import Outbox
from connector.store.people import People
from connector.store.queue import Queue
from connector.store.records import Records
from connector.store.runs import Runs


class Store:
    """The state store, migrated on open. Repositories: ``records``, ``queue``, ``outbox``, ``history``,
    ``dead_letters``, ``checkpoints``, ``runs``, ``people`` (leases: :mod:`connector.store.leases`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.outbox = Outbox()
        self.queue = Queue(self.outbox)
        self.records = Records(self.queue)
        self.history = History()
        self.dead_letters = DeadLetters(self.queue)
        self.checkpoints = Checkpoints()
        self.runs = Runs()
        self.people = People()

    @contextmanager
    def begin(self, *, flush: bool = True) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back on any exception.

        ``flush=False`` (pulled pages only) lets PostgreSQL answer the commit before its WAL reaches the
        disk (``SET LOCAL synchronous_commit = off``): a server crash may then lose the last such
        transactions, each whole (a page group and its read position together: the next run reads them
        again), never half of one, and never one committed before a later flushed commit (the WAL is
        written in order). The outbox, write results and history always commit with ``flush=True``.
        SQLite: no difference (WAL with ``synchronous=NORMAL``)."""
        with self.engine.begin() as connection:
            if not flush and connection.dialect.name == "postgresql":
                connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
            yield connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A transaction that only reads. On SQLite it takes no write lock (``BEGIN``, not ``BEGIN IMMEDIATE``):
        it reads a snapshot while another process writes, so two processes deciding one queue load their
        chunks side by side. Writing in it may fail with "database is locked": use :meth:`begin` to write."""
        with self.engine.connect() as connection:
            connection.execution_options(**{READ_ONLY: True})
            with connection.begin():
                yield connection

    def close(self) -> None:
        self.engine.dispose()

    def requeue_dead_letters(self, job: str | None = None) -> dict[str, int]:
        """Queue every open dead letter's contact again, in one transaction; count per job."""
        with self.begin() as db:
            return self.dead_letters.requeue(db, job)


def open_store(url: str, *, connect_args: dict[str, Any] | None = None) -> Store:
    """Open (and migrate to the newest schema) the store at ``url``."""
    engine = create_store_engine(url, connect_args=connect_args)
    migrate(engine)
    return Store(engine)
