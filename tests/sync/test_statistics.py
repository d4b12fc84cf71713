"""A pull that stored many records refreshes PostgreSQL's statistics of the tables it filled, so the queue's
updates by CRM id use the primary key instead of filtering every row of the job (autovacuum may be off, or
not have passed yet on a first load)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from connector.store import Store
from tests.sync.conftest import JOB, Runner, new_crm, populate


def _explain_queue_update(store: Store) -> str:
    with store.engine.connect() as db:
        plan = db.execute(
            text(
                "EXPLAIN UPDATE job_contacts SET rule = 'x' "
                "WHERE job = :job AND connection = 'hubspot' AND crm_id = 'c0500'"
            ),
            {"job": JOB.name},
        ).scalars()
        return "\n".join(plan)


def _analyzed(store: Store) -> set[str]:
    with store.engine.connect() as db:
        rows = db.execute(
            text(
                "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() "
                "AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)"
            )
        ).scalars()
        return set(rows)


def test_a_large_pull_analyzes_the_tables_it_filled(runner: Runner, store: Store) -> None:
    crm = new_crm()
    populate(crm, 1_200)
    runner.crms["hubspot"] = crm

    result = runner()

    assert result.counts["hubspot"].contacts_read == 1_200
    if store.engine.dialect.name != "postgresql":
        return  # SQLite plans from its indexes alone: nothing to refresh
    assert {"contacts", "activities", "job_contacts"} <= _analyzed(store)
    plan = _explain_queue_update(store)
    assert "decide_again_at" not in plan, plan
    assert "pk_job_contacts" in plan or "crm_id" in plan.split("Index Cond", 1)[-1], plan


def test_a_small_pull_leaves_the_statistics_to_autovacuum(runner: Runner, store: Store) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL statistics")
    runner()  # the fixture's 40 contacts
    assert "job_contacts" not in _analyzed(store)
