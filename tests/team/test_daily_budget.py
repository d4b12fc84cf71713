"""The daily quota shared by all workers: together they stop at a connection's ``daily_call_budget``, on PostgreSQL.

The budget counts every admitted call in the connection's row of the hour
(``daily_calls``) and refuses the call that would bring the last 24 hours
over it (``QuotaExhausted``: the run stops, the next one resumes). Measured
here with several processes at once, and end to end: two ``crmsync run``
processes on one connection against a sandbox whose own daily allocation is a
little larger stop before it, and the sandbox served exactly the calls the
store counted.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text

from connector.errors import QuotaExhausted
from connector.http.pacing import Pacer, Window, sharing
from connector.sandbox.hubspot import HubSpotSandbox, Limits
from connector.sandbox.salesforce import SalesforceSandbox, SandboxLimits
from connector.store import Store, open_store
from connector.team.budget import DAY_HOURS, StoreBudget, daily_calls

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]
CRMSYNC = str(Path(sys.executable).parent / "crmsync")
WINDOWS = [Window(1000, 1.0)]
"""A burst window far from the test's calls: only the daily budget refuses."""


def counted(store: Store, connection: str) -> int:
    with store.begin() as db:
        query = select(func.coalesce(func.sum(daily_calls.c.calls), 0)).where(daily_calls.c.connection == connection)
        return int(db.execute(query).scalar_one())


def db_hour(store: Store) -> int:
    with store.begin() as db:
        return int(db.execute(text("SELECT floor(extract(epoch FROM clock_timestamp()) / 3600)")).scalar_one())


def test_the_call_past_the_budget_is_refused_and_not_counted(pg_store: Store) -> None:
    budget = StoreBudget(pg_store.engine, "acme-portal", daily_calls=5, sleep=pytest.fail)
    for _ in range(5):
        budget.acquire(WINDOWS, None)
    assert budget.day_used == 5
    with pytest.raises(QuotaExhausted, match="daily_call_budget"):
        budget.acquire(WINDOWS, None)
    # the refused call took nothing from the burst window or the day: the count stays at the budget
    assert counted(pg_store, "acme-portal") == 5
    # another connection has a day of its own
    StoreBudget(pg_store.engine, "globex-org", daily_calls=1).acquire(WINDOWS, None)
    assert counted(pg_store, "globex-org") == 1


def test_the_day_is_the_last_twenty_four_hours_whatever_the_minute(pg_store: Store) -> None:
    # given calls made 24 h and 25 h ago (by the database's clock)
    hour = db_hour(pg_store)
    with pg_store.begin() as db:
        db.execute(
            insert(daily_calls),
            [
                {"connection": "acme-portal", "hour": hour - DAY_HOURS, "calls": 3},  # inside some 24 h span ending now
                {"connection": "acme-portal", "hour": hour - DAY_HOURS - 1, "calls": 50},  # older than any
            ],
        )
    budget = StoreBudget(pg_store.engine, "acme-portal", daily_calls=5)
    # then the three still count, the fifty do not (and are pruned)
    budget.acquire(WINDOWS, None)
    budget.acquire(WINDOWS, None)
    assert budget.day_used == 5
    with pytest.raises(QuotaExhausted):
        budget.acquire(WINDOWS, None)
    with pg_store.begin() as db:
        hours = sorted(db.execute(select(daily_calls.c.hour)).scalars())
    assert hours == [hour - DAY_HOURS, hour]


def test_calls_without_a_window_still_count(pg_store: Store) -> None:
    # a kind no window applies to (a Salesforce pacer has one window for every call; HubSpot's search one)
    budget = StoreBudget(pg_store.engine, "acme-portal", daily_calls=1, sleep=pytest.fail)
    budget.acquire([Window(1, 1.0, frozenset({"search"}))], None)
    with pytest.raises(QuotaExhausted):
        budget.acquire([], None)


def draw(url: str, connection: str, budget: int, attempts: int) -> tuple[int, int]:
    """In a child process: up to ``attempts`` calls through a pacer sharing the connection's day; (made, refused)."""
    store = open_store(url)
    try:
        with sharing(StoreBudget(store.engine, connection, daily_calls=budget)):
            pacer = Pacer(WINDOWS)
        made = refused = 0
        for _ in range(attempts):
            try:
                pacer.acquire()
            except QuotaExhausted:
                refused += 1
            else:
                made += 1
        return made, refused
    finally:
        store.close()


def test_four_processes_together_make_exactly_the_budget(pg_url: str, pg_store: Store) -> None:
    # given four worker processes, each wanting 60 calls of a connection allowed 150 a day
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(draw, [(pg_url, "acme-portal", 150, 60)] * 4)
    # then together they made exactly 150 and were refused the other 90, as the store counted
    assert sum(made for made, _ in results) == 150
    assert sum(refused for _, refused in results) == 90
    assert counted(pg_store, "acme-portal") == 150


# ---------------------------------------------------------------------------
# end to end: two runs on one connection against a sandbox's own daily allocation
# ---------------------------------------------------------------------------

BUDGET = 8
"""Calls crmsync may make on the connection in 24 h: fewer than one run needs, so both runs meet it."""
ALLOCATION = BUDGET + 4
"""The sandbox's own daily allocation: the vendor would refuse past it."""
HUBSPOT_TOKEN = "pat-na1-51c0e7d2-daily-budget"


def connection_table(crm: str, sandbox: HubSpotSandbox | SalesforceSandbox) -> str:
    if isinstance(sandbox, HubSpotSandbox):
        return (
            f'type = "hubspot"\nbase_url = "{sandbox.url}"\ntoken_env = "CRMSYNC_TEST_DAILY_TOKEN"\n'
            "burst_limit = 100000\nsearch_per_second = 100000\n"
        )
    settings = sandbox.connection_settings()
    keys = ("instance_url", "login_url", "auth", "client_id_env", "client_secret_env", "ca_bundle")
    lines = "".join(f'{key} = "{settings[key]}"\n' for key in keys if settings.get(key))
    return f'type = "salesforce"\n{lines}requests_per_second = 1000.0\n'


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_two_runs_on_one_connection_stop_together_before_the_vendors_allocation(
    crm: str, tmp_path: Path, pg_url: str, pg_store: Store
) -> None:
    # given a portal (org) whose daily allocation is ALLOCATION calls, and a connection budgeted BUDGET of them
    sandbox: HubSpotSandbox | SalesforceSandbox
    if crm == "hubspot":
        limits = Limits(burst=None, search_per_second=None, daily=ALLOCATION)
        sandbox = HubSpotSandbox(contacts=60, activities=600, seed=5, token=HUBSPOT_TOKEN, limits=limits)
        env = {**os.environ, "CRMSYNC_TEST_DAILY_TOKEN": HUBSPOT_TOKEN}
    else:
        sandbox = SalesforceSandbox(
            people=60, activities=600, seed=6, limits=SandboxLimits(page_size=20, daily_api_requests=ALLOCATION)
        )
        env = {**os.environ}
    sandbox.start()
    try:
        if isinstance(sandbox, SalesforceSandbox):
            env.update(sandbox.secrets_env())
        (tmp_path / "jobs").mkdir()
        config = tmp_path / "config.toml"
        config.write_text(
            f'[store]\nurl = "{pg_url}"\n[paths]\nmappings = "{REPO / "mappings"}"\njobs = "jobs"\n'
            f'rules = "{REPO / "mappings" / "lifecycle.toml"}"\n[team]\nenabled = true\n'
            f"[connections.portal]\n{connection_table(crm, sandbox)}daily_call_budget = {BUDGET}\n",
            encoding="utf-8",
        )
        for job in ("ladder-a", "ladder-b"):  # two jobs on the one connection, run at the same time
            (tmp_path / "jobs" / f"{job}.toml").write_text(
                f'name = "{job}"\nconnections = ["portal"]\n', encoding="utf-8"
            )

        # when both run at once (a manual run in team mode shares the workers' budgets)
        runs = [
            subprocess.Popen(
                [CRMSYNC, "--config", str(config), "run", job, "--inline", "--json"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for job in ("ladder-a", "ladder-b")
        ]
        outputs = [run.communicate(timeout=120) for run in runs]
        codes = [run.returncode for run in runs]

        # then both stop on the budget (exit 4), saying so
        assert codes == [4, 4], outputs
        assert all(b"daily_call_budget" in out + err for out, err in outputs), outputs
        # and the store counted the budget, never more; the vendor served at most that (a call admitted by one
        # thread may never be sent when another stops the run), never reaching its own allocation
        usage = sandbox.stats()["api_usage"]
        assert counted(pg_store, "portal") == BUDGET
        assert usage["used"] <= BUDGET < usage["total"] == ALLOCATION
    finally:
        sandbox.stop()
