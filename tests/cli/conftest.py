"""The store fixtures of the sync tier (one store per test, on SQLite and PostgreSQL), for command tests."""

from tests.sync.conftest import store_url, store_urls

__all__ = ["store_url", "store_urls"]
