"""What the shared budgets cost per API call: N processes drawing on one connection's budget in PostgreSQL.

Each process makes ``--calls`` admissions through a pacer sharing one
connection's store budget (a burst window far above the rate reached, so
nothing waits for the window: what is measured is the store's round trips),
first with the burst window alone, then with a ``daily_call_budget`` too. It
prints the admissions per second of all processes together and the
milliseconds each admission took, and checks the store counted every call.

    flock /tmp/crmsync-bench.lock .venv/bin/python benchmarks/team_budget.py [--processes 4 --calls 500]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
import uuid

from sqlalchemy import create_engine, func, select, text

from connector.http.pacing import Pacer, Window, sharing
from connector.store import open_store
from connector.team.budget import StoreBudget, daily_calls

WINDOWS = [Window(1_000_000, 10.0)]


def draw(url: str, connection: str, calls: int, daily: int | None) -> float:
    store = open_store(url)
    try:
        with sharing(StoreBudget(store.engine, connection, daily_calls=daily)):
            pacer = Pacer(WINDOWS)
        pacer.acquire()  # the rows exist and the pool is warm before the clock starts
        started = time.perf_counter()
        for _ in range(calls - 1):
            pacer.acquire()
        return time.perf_counter() - started
    finally:
        store.close()


def measure(url: str, processes: int, calls: int, daily: int | None) -> dict[str, object]:
    connection = f"bench-{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        spans = pool.starmap(draw, [(url, connection, calls, daily)] * processes)
    wall = time.perf_counter() - started
    made = processes * (calls - 1)
    result: dict[str, object] = {
        "daily_call_budget": daily,
        "processes": processes,
        "admissions": made,
        "per_second_together": round(made / max(spans), 1),
        "ms_per_admission": round(1000 * sum(spans) / made, 2),
        "wall_s_with_start": round(wall, 1),
    }
    if daily is not None:
        store = open_store(url)
        with store.begin() as db:
            query = select(func.sum(daily_calls.c.calls)).where(daily_calls.c.connection == connection)
            result["counted"] = int(db.execute(query).scalar_one())
        store.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--store-url", default=os.environ.get("CRMSYNC_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    if not args.store_url:
        raise SystemExit("--store-url (or CRMSYNC_TEST_POSTGRES_URL): a PostgreSQL database to make a schema in")
    admin = create_engine(args.store_url)
    schema = f"bench_budget_{uuid.uuid4().hex[:8]}"
    with admin.begin() as db:
        db.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{args.store_url}{'&' if '?' in args.store_url else '?'}options=-csearch_path%3D{schema}"
    try:
        open_store(url).close()  # migrate once, not in every process
        for daily in (None, 10_000_000):
            print(json.dumps(measure(url, args.processes, args.calls, daily)))
    finally:
        with admin.begin() as db:
            db.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
