"""PostgreSQL sessions: prepared statements on with custom plans; asynchronous commit for pulled pages only."""

from __future__ import annotations

import pytest

from connector.store import Store


@pytest.fixture
def postgres(store: Store) -> Store:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL settings")
    return store


def test_statements_are_prepared_and_planned_with_their_values(postgres: Store) -> None:
    with postgres.begin() as db:
        assert db.exec_driver_sql("SHOW plan_cache_mode").scalar() == "force_custom_plan"
        assert db.connection.driver_connection.prepare_threshold is not None


def test_only_page_transactions_commit_without_waiting_for_the_disk(postgres: Store) -> None:
    with postgres.begin(flush=False) as db:
        assert db.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
    with postgres.begin() as db:
        assert db.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    with postgres.begin(flush=False) as db:
        pass
    with postgres.begin() as db:  # SET LOCAL: gone with its transaction, on the pooled connection too
        assert db.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
