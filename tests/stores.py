"""Isolated state stores for tests, on SQLite and (when ``CRMSYNC_TEST_POSTGRES_URL`` is set) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

PG_URL = os.environ.get("CRMSYNC_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]


class StoreUrls:
    """Fresh, isolated store URLs on one backend: SQLite files, or PostgreSQL schemas dropped at the end."""

    def __init__(self, backend: str, folder: Path, prefix: str = "t") -> None:
        self.backend = backend
        self.prefix = prefix
        self.folder = folder
        self.schemas: list[str] = []
        self._admin = create_engine(PG_URL) if backend == "postgresql" and PG_URL else None

    def new(self, name: str = "state") -> str:
        if self._admin is None:
            return f"sqlite:///{self.folder / (name + '.db')}"
        assert PG_URL
        schema = f"{self.prefix}_{uuid.uuid4().hex[:12]}"
        with self._admin.begin() as db:
            db.execute(text(f'CREATE SCHEMA "{schema}"'))
        self.schemas.append(schema)
        separator = "&" if "?" in PG_URL else "?"
        return f"{PG_URL}{separator}options=-csearch_path%3D{schema}"

    def drop(self) -> None:
        if self._admin is None:
            return
        with self._admin.begin() as db:
            for schema in self.schemas:
                db.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        self._admin.dispose()
