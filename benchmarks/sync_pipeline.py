"""Benchmark: a 100,000-contact job through the state store, full run then incremental run.

A synthetic CRM streams contacts and ~10 activities per contact (1,000,000 at
the default size) generated on the fly from their index, so the CRM side
holds almost nothing in memory and the peak RSS measured is the pipeline's.
It behaves like the vendors where it matters: paged pulls oldest first with
an inclusive cursor, our own writes bump the record's modification (the
echo the next incremental run reads back), writes in batches of 100.

Run (under the shared benchmark lock):

    flock /tmp/crmsync-bench.lock .venv/bin/python benchmarks/sync_pipeline.py
    flock /tmp/crmsync-bench.lock .venv/bin/python benchmarks/sync_pipeline.py --contacts 10000 \\
        --store-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Prints a table and one JSON object with wall time, peak RSS and time per
pipeline stage for each run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cpu import client_cpu, server_cpu
from sqlalchemy import create_engine, text

from connector.config import Config, HubSpotConnection, PathSettings, StoreSettings
from connector.connections import connection_mapping
from connector.crm import (
    ActivityPage,
    ActivityRecord,
    ApiUsage,
    ContactPage,
    ContactRecord,
    StageUpdate,
    WriteOutcome,
    WriteResult,
)
from connector.errors import Problem
from connector.jobs import Job
from connector.mapping import CrmMapping
from connector.model import Activity, Company, Contact
from connector.store import open_store
from connector.sync import RunResult, run_job

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PER_CONTACT = 10

ICP = Company(name="Transports Martin", domain="example.fr", employees=120, industry="logistics", country="FR")
OFF = Company(name="Boulangerie", domain="example.com", employees=3, industry="food", country="FR")

# activity kinds per profile (i % 6): none; engagement only; one download; three interests; + demo; + meeting
_PROFILES: list[list[str]] = [
    ["page_view"] * PER_CONTACT,
    ["page_view", "email_open"] * (PER_CONTACT // 2),
    ["content_download"] + ["page_view"] * (PER_CONTACT - 1),
    ["content_download", "webinar_attended", "info_request"] + ["email_open"] * (PER_CONTACT - 3),
    ["content_download", "webinar_attended", "info_request", "demo_request"] + ["email_click"] * (PER_CONTACT - 4),
    ["content_download", "meeting_booked"] + ["page_view"] * (PER_CONTACT - 2),
]


class SyntheticCrm:
    """An in-memory CRM whose records are generated from their index (the CrmClient protocol)."""

    def __init__(self, mapping: CrmMapping, contacts: int, *, page_size: int, activity_page_size: int) -> None:
        self.connection = "hubspot"
        self.write_batch_size = 100
        self.mapping = mapping
        self.n = contacts
        self.page_size = page_size
        self.activity_page_size = activity_page_size
        self.stage = bytearray(contacts)  # 0: empty, else ladder rank + 1 of the primary field
        self.seq = array("q", range(1, contacts + 1))  # modification sequence per contact
        self.next_seq = contacts + contacts * PER_CONTACT + 1
        self.extra: list[tuple[int, int, str]] = []  # (seq, contact index, kind) added after the start
        self.calls: Counter[str] = Counter()
        self.values = list(mapping.stage.values.values())
        self.stage_fields = tuple(mapping.stage_fields())  # once, not per record (4.4% of the profile)

    def _record(self, i: int) -> ContactRecord:
        rank = self.stage[i]
        value = self.values[rank - 1] if rank else None
        stage_values: dict[str, str | None] = dict.fromkeys(self.stage_fields)
        stage_values[self.mapping.stage.field] = value
        rung = self.mapping.stage_for_value(value)
        for also in self.mapping.stage.also:  # e.g. HubSpot's lifecyclestage, written along
            stage_values[also.field] = also.values.get(rung) if rung else None
        contact = Contact(
            email=f"person{i}@example.fr",
            first_name="Anne",
            last_name=f"Martin{i}",
            job_title="Directrice logistique",
            company=OFF if i % 6 == 0 else ICP,
            stage=self.mapping.stage_for_value(value),
        )
        return ContactRecord(
            crm_id=f"c{i:07d}",
            object_type="contact",
            contact=contact,
            stage_values=stage_values,
            modified_at=NOW - timedelta(seconds=self.n - i),
        )

    def pull_contacts(self, cursor: str | None) -> Iterator[ContactPage]:
        since = int(cursor) if cursor else 0
        if since == 0:
            order: Sequence[int] = range(self.n)
        else:
            order = [i for _s, i in sorted((s, i) for i, s in enumerate(self.seq) if s >= since)]
        for start in range(0, len(order), self.page_size):
            page = order[start : start + self.page_size]
            self.calls["contacts.read"] += 1
            records = tuple(self._record(i) for i in page)
            yield ContactPage(records=records, cursor=str(max(self.seq[i] for i in page)))

    def _activity(self, i: int, j: int, kind: str, seq: int, days_ago: float | None = None) -> ActivityRecord:
        ago = 30 - j if days_ago is None else days_ago
        return ActivityRecord(
            crm_id=f"a{i:07d}-{j}",
            activity=Activity(kind=kind, occurred_at=NOW - timedelta(days=ago), detail="Guide", id=None),
            contact_ids=(f"c{i:07d}",),
            modified_at=NOW - timedelta(seconds=self.next_seq - seq),
        )

    def _activities_since(self, since: int) -> Iterator[tuple[int, ActivityRecord]]:
        base = self.n + 1
        first = max(0, since - base)
        for k in range(first, self.n * PER_CONTACT):
            i, j = divmod(k, PER_CONTACT)
            yield base + k, self._activity(i, j, _PROFILES[i % 6][j], base + k)
        for seq, i, kind in self.extra:
            if seq >= since:
                yield seq, self._activity(i, 100 + seq % 1000, kind, seq, days_ago=1)

    def pull_activities(self, cursor: str | None) -> Iterator[ActivityPage]:
        since = int(cursor) if cursor else 0
        page: list[ActivityRecord] = []
        last = 0
        for seq, record in self._activities_since(since):
            page.append(record)
            last = seq
            if len(page) == self.activity_page_size:
                self.calls["activities.read"] += 1
                yield ActivityPage(records=tuple(page), cursor=str(last))
                page = []
        if page:
            self.calls["activities.read"] += 1
            yield ActivityPage(records=tuple(page), cursor=str(last))

    def write_stages(self, updates: Sequence[StageUpdate]) -> list[WriteResult]:
        assert len(updates) <= self.write_batch_size
        self.calls["contacts.write"] += 1
        results = []
        for update in updates:
            i = int(update.crm_id[1:])
            rank = update.stage.rank + 1
            if self.stage[i] == rank:
                results.append(WriteResult(crm_id=update.crm_id, outcome=WriteOutcome.UNCHANGED))
                continue
            self.stage[i] = rank
            self.seq[i] = self.next_seq
            self.next_seq += 1
            results.append(WriteResult(crm_id=update.crm_id, outcome=WriteOutcome.WRITTEN))
        return results

    def change(self, fraction: float) -> int:
        """New activity for ``fraction`` of the contacts (a demo request: the stage moves for many)."""
        step = max(1, round(1 / fraction))
        changed = 0
        for n, i in enumerate(range(0, self.n, step)):
            self.extra.append((self.next_seq, i, "demo_request" if n % 2 else "content_download"))
            self.next_seq += 1
            changed += 1
        return changed

    def check_schema(self) -> list[Problem]:
        return []

    def usage(self) -> ApiUsage:
        return ApiUsage(calls=dict(self.calls))

    def close(self) -> None:
        pass


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(
    name: str, run: RunResult, wall: float, calls_before: Counter[str], crm: SyntheticCrm, cpu: dict[str, float]
) -> dict[str, object]:
    counts = run.counts["hubspot"]
    calls = crm.calls - calls_before
    return {
        "run": name,
        "status": run.status,
        "wall_seconds": round(wall, 2),
        **{key: round(value, 1) for key, value in cpu.items()},
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "contacts_read": counts.contacts_read,
        "activities_read": counts.activities_read,
        "decided": counts.decided,
        "written": counts.written,
        "api_calls": dict(calls),
        "seconds_per_stage": {k: round(v, 2) for k, v in sorted(counts.seconds.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.01, help="share of contacts changed before run 2")
    parser.add_argument("--store-url", default=None, help="default: a SQLite file in a temporary folder")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--activity-page-size", type=int, default=200)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="crmsync-bench-"))
    url = args.store_url or f"sqlite:///{folder / 'state.db'}"
    schema = None
    if url.startswith("postgresql"):
        # a schema of its own, dropped at the end: never touch anyone's tables
        schema = f"bench_{os.getpid()}"
        with create_engine(url).begin() as db:
            db.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    config = Config(
        store=StoreSettings(url=url),
        paths=PathSettings(mappings=REPO / "mappings", jobs=folder, rules=REPO / "mappings" / "lifecycle.toml"),
        connections={"hubspot": HubSpotConnection(type="hubspot")},
        base_dir=folder,
    )
    crm = SyntheticCrm(
        connection_mapping(config, "hubspot"),
        args.contacts,
        page_size=args.page_size,
        activity_page_size=args.activity_page_size,
    )
    store = open_store(url)
    job = Job(name="bench", connections=["hubspot"])
    results = []
    for name in ("full", "incremental", "unchanged"):
        if name == "incremental":
            crm.change(args.changed)
        before = Counter(crm.calls)
        cpu_before, server_before = client_cpu(), server_cpu() if schema else None
        started = time.perf_counter()
        run = run_job(job, config, store=store, clients=lambda _c, _n: crm, clock=lambda: NOW, heartbeat=False)
        wall = time.perf_counter() - started
        cpu = {"client_cpu_s": client_cpu() - cpu_before}
        server_after = server_cpu() if schema else None
        if server_before is not None and server_after is not None:
            cpu["server_cpu_s"] = server_after - server_before
        results.append(measure(name, run, wall, before, crm, cpu))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    store.close()
    if schema and args.store_url:
        with create_engine(args.store_url).begin() as db:
            db.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    print(
        json.dumps(
            {
                "contacts": args.contacts,
                "activities": args.contacts * PER_CONTACT,
                "store": url.split(":")[0],
                "runs": results,
            }
        )
    )


if __name__ == "__main__":
    main()
