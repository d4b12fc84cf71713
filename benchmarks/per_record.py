"""CPU per record of the client's normalising path, steadier than a whole run.

    .venv/bin/python benchmarks/per_record.py [--activities N] [--repeats R]

A whole sync at 20,000 contacts varies by up to 15 % from one run to the next on a
shared 2-core machine (the same code, back to back), which hides a change of a few
per cent. This script reads N activity records (Tasks, Events, CampaignMembers) from
a seeded Salesforce sandbox once, then times the client's normalising of those same
records (``activity_record`` with the shipped mapping: rule matching, the instant, the
models) R times and keeps the fastest pass (process CPU time, so waiting is not
counted). Run it against two checkouts (``PYTHONPATH=<checkout>``) to compare them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def raw_records(activities: int) -> list[tuple[str, dict[str, Any]]]:
    """The sandbox's activity records, as its API answers them (``records`` of ``query_all``)."""
    import os

    from connector.mapping import load_mapping
    from connector.salesforce.client import SalesforceClient
    from connector.salesforce.normalise import activity_fields
    from connector.salesforce.settings import SalesforceConnection
    from connector.sandbox.salesforce import SalesforceSandbox

    mapping = load_mapping(ROOT / "mappings" / "salesforce.toml")
    found: list[tuple[str, dict[str, Any]]] = []
    with SalesforceSandbox(people=max(1, activities // 10), activities=activities, seed=7) as org:
        os.environ.update(org.secrets_env("client_credentials"))
        settings = SalesforceConnection(**org.connection_settings(auth="client_credentials"))
        client = SalesforceClient.from_settings("salesforce", settings, mapping)
        try:
            for sobject in mapping.activity_objects():
                soql = f"SELECT {', '.join(activity_fields(mapping, sobject))} FROM {sobject}"
                answer = client.api.call("census", lambda sf, soql=soql: sf.query_all(soql))
                found.extend((sobject, dict(record)) for record in answer["records"])
        finally:
            client.close()
    return found


def normalise_seconds(records: list[tuple[str, dict[str, Any]]], repeats: int) -> tuple[float, int]:
    """The fastest of ``repeats`` passes of ``activity_record`` over ``records`` (CPU seconds), and how many
    records a rule mapped."""
    from connector.mapping import load_mapping
    from connector.salesforce.normalise import Instants, activity_record

    best = float("inf")
    mapped = 0
    for _ in range(repeats):
        mapping = load_mapping(ROOT / "mappings" / "salesforce.toml")  # a fresh one: nothing remembered yet
        instant = Instants()
        started = time.process_time()
        mapped = 0
        for sobject, values in records:
            with contextlib.suppress(ValueError):
                mapped += activity_record(sobject, values, mapping, str, instant) is not None
        best = min(best, time.process_time() - started)
    return best, mapped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--activities", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    records = raw_records(args.activities)
    seconds, mapped = normalise_seconds(records, args.repeats)
    print(json.dumps({
        "records": len(records), "mapped": mapped, "normalise_cpu_s": round(seconds, 3),
        "microseconds_per_record": round(seconds / max(1, len(records)) * 1e6, 2), "python": sys.version.split()[0],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
