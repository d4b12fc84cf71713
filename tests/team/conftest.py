"""Fixtures of the team tier: a PostgreSQL store in its own schema (dropped after), or a skip without one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.store import Store, open_store
from tests.stores import PG_URL, StoreUrls

try:
    import procrastinate  # noqa: F401
except ImportError:  # the `team` extra is not installed: the queue's tests cannot even be imported
    collect_ignore_glob = ["test_queue.py", "test_team_postgres.py"]


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    if not PG_URL:
        pytest.skip("team mode needs PostgreSQL: set CRMSYNC_TEST_POSTGRES_URL")
    urls = StoreUrls("postgresql", tmp_path, prefix="team")
    yield urls.new()
    urls.drop()


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    store = open_store(pg_url)
    yield store
    store.close()
