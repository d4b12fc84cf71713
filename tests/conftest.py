"""Fixtures shared by every test tier."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connector.store import Store, open_store
from tests.stores import BACKENDS, StoreUrls

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


# a store on every backend: SQLite always, PostgreSQL when CRMSYNC_TEST_POSTGRES_URL is set (each test in its
# own schema, dropped after)
@pytest.fixture(params=BACKENDS)
def store_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreUrls]:
    urls = StoreUrls(request.param, tmp_path)
    yield urls
    urls.drop()


@pytest.fixture
def store_url(store_urls: StoreUrls) -> str:
    return store_urls.new()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()
