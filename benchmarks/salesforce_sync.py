"""Salesforce sync benchmark: a sandbox org in another process, the real client here.

    flock /tmp/crmsync-bench.lock .venv/bin/python benchmarks/salesforce_sync.py [--people 100000 --activities 1000000]

Run 1 pulls every activity and person (pages of 2,000), decides each
person's rung (connector.lifecycle.rules.decide), plans the write
(connector.planner.plan_write) and writes every change back (collections of
200). Run 2 resumes from run 1's cursors with nothing new: it must make no
write call. Prints wall time, contacts/s, the client's peak RSS and API
calls per endpoint against the minimum; ``--json`` prints them as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from connector.config import RetrySettings, SalesforceConnection
from connector.crm import ContactRecord, StageUpdate, WriteOutcome
from connector.lifecycle.rules import Rules, decide, load_rules
from connector.mapping import CrmMapping, load_mapping
from connector.model import Activity
from connector.planner import plan_write
from connector.salesforce.client import SalesforceClient
from connector.sandbox.salesforce import SECRET_ENV, SalesforceSandbox
from connector.sandbox.salesforce.process import SandboxProcess

ROOT = Path(__file__).resolve().parent.parent
PAGE = 2_000
BATCH = 200

ActivityRow = tuple[str, str, float, str | None]
"""(activity id, kind, occurred_at epoch seconds, detail): the benchmark's compact activity store."""


class ActivityStore:
    """What a state store would hold: activities per person, de-duplicated by id."""

    def __init__(self) -> None:
        self.by_person: dict[str, list[ActivityRow]] = {}
        self.kinds: dict[str, str] = {}
        self.details: dict[str, str] = {}

    def add(self, person: str, row: ActivityRow, *, dedup: bool) -> None:
        """``dedup``: an incremental pull re-reads its lookback window; a full pull never repeats a record."""
        rows = self.by_person.setdefault(person, [])
        if dedup and any(existing[0] == row[0] for existing in rows):
            return
        kind = self.kinds.setdefault(row[1], row[1])
        detail = self.details.setdefault(row[3], row[3]) if row[3] is not None else None
        rows.append((row[0], kind, row[2], detail))

    def activities(self, person: str) -> Iterator[Activity]:
        for activity_id, kind, at, detail in self.by_person.get(person, ()):
            yield Activity(kind=kind, occurred_at=datetime.fromtimestamp(at, UTC), detail=detail, id=activity_id)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(
    client: SalesforceClient,
    mapping: CrmMapping,
    rules: Rules,
    store: ActivityStore,
    cursors: dict[str, str | None],
    now: datetime,
) -> dict[str, int]:
    dedup = cursors.get("activities") is not None
    counts = {"activities": 0, "people": 0, "skipped": 0, "unmapped": 0, "changes": 0, "written": 0, "failed": 0}
    started = time.perf_counter()
    for page in client.pull_activities(cursors.get("activities")):
        for record in page.records:
            activity = record.activity
            row = (record.crm_id, activity.kind, activity.occurred_at.timestamp(), activity.detail)
            for person in record.contact_ids:
                store.add(person, row, dedup=dedup)
        counts["activities"] += len(page.records)
        counts["unmapped"] += page.unmapped
        counts["skipped"] += len(page.skipped)
        cursors["activities"] = page.cursor
    counts["activities_ms"] = round((time.perf_counter() - started) * 1000)
    pending: list[StageUpdate] = []

    def flush() -> None:
        results = client.write_stages(pending)
        counts["written"] += sum(1 for r in results if r.outcome is WriteOutcome.WRITTEN)
        counts["failed"] += sum(1 for r in results if r.outcome is not WriteOutcome.WRITTEN)
        pending.clear()

    for contact_page in client.pull_contacts(cursors.get("contacts")):
        counts["people"] += len(contact_page.records)
        counts["skipped"] += len(contact_page.skipped)
        record: ContactRecord
        for record in contact_page.records:
            decision = decide(record.contact, list(store.activities(record.crm_id)), rules, now=now, explain=True)
            plan = plan_write(record, decision, mapping, regression=rules.regression, now=now)
            if plan.update is not None:
                pending.append(plan.update)
                counts["changes"] += 1
                if len(pending) == client.write_batch_size:
                    flush()
        cursors["contacts"] = contact_page.cursor
    if pending:
        flush()
    counts["people_decide_write_ms"] = round((time.perf_counter() - started) * 1000) - counts["activities_ms"]
    return counts


def minimum_calls(seeded: dict[str, int], changes: int) -> dict[str, int]:
    objects = {
        "Lead": seeded["leads"] + seeded["converted"],
        "Contact": seeded["contacts"],
        "Task": seeded["tasks"],
        "Event": seeded["events"],
        "CampaignMember": seeded["members"],
    }
    reads = sum(max(1, math.ceil(count / PAGE)) for count in objects.values())
    return {"reads": reads, "writes": math.ceil(changes / BATCH)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    mapping = load_mapping(ROOT / "mappings" / "salesforce.toml")
    rules = load_rules(ROOT / "mappings" / "lifecycle.toml")
    started = time.perf_counter()
    with SandboxProcess(people=args.people, activities=args.activities) as org:
        seeded_in = time.perf_counter() - started
        defaults = SalesforceSandbox.__init__.__kwdefaults__ or {}
        os.environ[SECRET_ENV["client_id"]] = defaults["client_id"]
        os.environ[SECRET_ENV["client_secret"]] = defaults["client_secret"]
        settings = SalesforceConnection(
            type="salesforce",
            instance_url=org.url,
            login_url=org.url,
            ca_bundle=org.ca_file,
            client_id_env=SECRET_ENV["client_id"],
            client_secret_env=SECRET_ENV["client_secret"],
            requests_per_second=100_000.0,  # the sandbox is unpaced
            retry=RetrySettings(initial_wait_seconds=0.05),
        )
        client = SalesforceClient.from_settings("salesforce", settings, mapping)
        store = ActivityStore()
        cursors: dict[str, str | None] = {}
        now = datetime.now(UTC)

        t0 = time.perf_counter()
        first = sync(client, mapping, rules, store, cursors, now)
        first_seconds = time.perf_counter() - t0
        first_calls = dict(client.usage().calls)

        t1 = time.perf_counter()
        second = sync(client, mapping, rules, store, cursors, datetime.now(UTC))
        second_seconds = time.perf_counter() - t1
        all_calls = client.usage().calls
        second_calls = {k: v - first_calls.get(k, 0) for k, v in all_calls.items() if v - first_calls.get(k, 0)}
        server = org.stats()
        client.close()

    minimum = minimum_calls(org.info["seeded"], first["changes"])
    made_reads = first_calls.get("query", 0) + first_calls.get("query_more", 0)
    made_writes = first_calls.get("composite/sobjects", 0)
    report = {
        "people": args.people,
        "activities": args.activities,
        "seed_seconds": round(seeded_in, 1),
        "run1": {
            "seconds": round(first_seconds, 2),
            "contacts_per_second": round(first["people"] / first_seconds),
            "counts": first,
            "calls": first_calls,
            "minimum": minimum,
            "ratio_reads": round(made_reads / minimum["reads"], 3),
            "ratio_writes": round(made_writes / minimum["writes"], 3) if minimum["writes"] else None,
            "ratio": round((made_reads + made_writes) / (minimum["reads"] + minimum["writes"]), 3),
        },
        "run2": {
            "seconds": round(second_seconds, 2),
            "counts": second,
            "calls": second_calls,
            "write_calls": second_calls.get("composite/sobjects", 0),
        },
        "client_peak_rss_mb": round(peak_rss_mb(), 1),
        "sandbox_requests": server["requests"]["counts"],
        "sandbox_peak_rss_mb": server.get("peak_rss_mb"),
        "quota": server["api_usage"],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    r1, r2 = report["run1"], report["run2"]
    print(f"seeded {args.people:,} people / {args.activities:,} activities in {report['seed_seconds']} s (not timed)")
    print(f"run 1 (full): {r1['seconds']} s, {r1['contacts_per_second']:,} contacts/s, counts {r1['counts']}")
    print(f"  calls {r1['calls']}")
    print(
        f"  minimum {r1['minimum']}; calls/minimum reads {r1['ratio_reads']}, writes {r1['ratio_writes']}, all {r1['ratio']}"
    )
    print(
        f"run 2 (no change): {r2['seconds']} s, write calls {r2['write_calls']}, calls {r2['calls']}, counts {r2['counts']}"
    )
    print(f"client peak RSS {report['client_peak_rss_mb']} MB (sandbox process {report['sandbox_peak_rss_mb']} MB)")
    ok = r1["seconds"] <= 60 and r1["ratio"] == 1.0 and r2["write_calls"] == 0 and report["client_peak_rss_mb"] < 500
    print("aims met" if ok else "AIMS NOT MET")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
