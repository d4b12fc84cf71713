"""HubSpot sync benchmark: a full sync of a big sandbox portal, then an incremental re-run with nothing changed.

The sandbox runs in its own process (unpaced); this process pulls every
contact and activity through ``HubSpotClient``, decides stages with the
shared rules, plans the writes with the pure planner, writes them back in
batches of 100, and then re-runs incrementally from the cursors, which must
write nothing. Prints wall time, contacts/s, the client's peak RSS and the
API calls per endpoint against the vendor minimum.

    flock /tmp/crmsync-bench.lock .venv/bin/python benchmarks/hubspot_sync.py [--contacts 100000 --activities 1000000]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import socket
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from connector.config import HubSpotConnection
from connector.crm import ContactRecord, StageUpdate
from connector.hubspot.client import ENGAGEMENT_OBJECTS, HubSpotClient
from connector.lifecycle.rules import decide, load_rules
from connector.mapping import load_mapping
from connector.model import Activity
from connector.planner import plan_write

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "benchmark-token"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def start_sandbox(contacts: int, activities: int) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connector.sandbox.hubspot",
            "--contacts",
            str(contacts),
            "--activities",
            str(activities),
            "--unlimited",
            "--token",
            TOKEN,
        ],
        stdin=subprocess.PIPE,  # the sandbox stops when its stdin closes
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("{"):
        process.kill()
        raise SystemExit("the sandbox did not start")
    url = str(json.loads(line)["url"])
    wait_until_listening(url)
    return process, url


def wait_until_listening(url: str, seconds: float = 10.0) -> None:
    """The sandbox prints its URL before its server listens; the client fails fast on a refused first call."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("the sandbox does not accept connections") from None
            time.sleep(0.02)


def sync(
    client: HubSpotClient,
    contact_cursor: str | None,
    activity_cursor: str | None,
    state: dict,
    now: datetime,
    rules,
    mapping,
) -> tuple[str | None, str | None, dict[str, int]]:  # type: ignore[no-untyped-def,type-arg]
    """One run: pull, decide, plan, write. ``state`` is what a state store would hold between runs."""
    # what a state store would hold, kept compact like one: records as JSON, activities as (kind, instant)
    records: dict[str, bytes] = state["records"]
    activities: dict[str, list[tuple[str, datetime]]] = state["activities"]
    dirty: set[str] = set()
    counts: dict[str, int] = defaultdict(int)
    for page in client.pull_contacts(contact_cursor):
        for record in page.records:
            records[record.crm_id] = record.model_dump_json().encode()
            dirty.add(record.crm_id)
        counts["contacts read"] += len(page.records)
        counts["skipped"] += len(page.skipped)
        contact_cursor = page.cursor
    seen: set[str] = state["activity_ids"]
    for activity_page in client.pull_activities(activity_cursor):
        for item in activity_page.records:
            counts["activities read"] += 1
            if item.crm_id in seen:
                continue
            seen.add(item.crm_id)
            for contact_id in item.contact_ids:
                activities[contact_id].append((item.activity.kind, item.activity.occurred_at))
                dirty.add(contact_id)
        counts["unmapped"] += activity_page.unmapped
        counts["skipped"] += len(activity_page.skipped)
        activity_cursor = activity_page.cursor
    updates: list[StageUpdate] = []
    for crm_id in sorted(dirty, key=int):
        raw = records.get(crm_id)
        if raw is None:
            continue
        record = ContactRecord.model_validate_json(raw)
        acts = [Activity(kind=kind, occurred_at=at) for kind, at in activities.get(crm_id, ())]
        decision = decide(record.contact, acts, rules, now=now, explain=True)
        plan = plan_write(record, decision, mapping, regression=rules.regression, now=now)
        if plan.update is not None:
            updates.append(plan.update)
    counts["decided"] = len(dirty)
    counts["planned"] = len(updates)
    for start in range(0, len(updates), client.write_batch_size):
        for result in client.write_stages(updates[start : start + client.write_batch_size]):
            counts[f"write {result.outcome.value}"] += 1
    return contact_cursor, activity_cursor, dict(counts)


def minimum(store_counts: dict[str, int], planned: int, incremental_changed: int | None) -> dict[str, int]:
    """The vendor minimum per endpoint: list pages of 100, submissions pages of 50, batches of 100."""
    if incremental_changed is None:
        wanted = {
            "contacts.list": math.ceil(store_counts["contacts"] / 100),
            **{f"{o}.list": max(1, math.ceil(store_counts[o] / 100)) for o in ("meetings", "emails", "calls")},
            "forms.submissions": sum(max(1, math.ceil(n / 50)) for n in store_counts["forms"].values()),  # type: ignore[attr-defined]
            **signals_minimum(store_counts, full=True),
        }
        # the contacts' primary companies, each read once in batches of 100 (the list carries the associations)
        if store_counts.get("companies"):
            wanted["companies.batch_read"] = math.ceil(store_counts["companies"] / 100)
    else:
        wanted = {
            "contacts.search": max(1, math.ceil(incremental_changed / 200)),
            **{f"{o}.search": 1 for o in ("meetings", "emails", "calls")},
            "forms.submissions": len(store_counts["forms"]),  # type: ignore[arg-type]
            **signals_minimum(store_counts, full=False),
        }
    # every pull reads the archived contacts whole (HubSpot's list has no date filter), 100 a page
    wanted["contacts.list_archived"] = max(1, math.ceil(int(store_counts.get("archived") or 0) / 100))  # type: ignore[call-overload]
    if planned:
        wanted["contacts.batch_update"] = math.ceil(planned / 100)
    return wanted


def signals_minimum(store_counts: dict[str, Any], *, full: bool) -> dict[str, int]:
    """E-mail events (pages of 1,000 per mapped type; one empty page each when nothing is new), the webinar
    list, and every participation breakdown (pages of 100; the API has no time filter, so every run reads them)."""
    events: dict[str, int] = store_counts.get("email_events", {})
    breakdowns: dict[str, int] = store_counts.get("participations", {})
    wanted: dict[str, int] = {}
    if events:
        wanted["email.events"] = sum(max(1, math.ceil(n / 1000)) if full else 1 for n in events.values())
    if breakdowns:
        wanted["marketing_events.list"] = 1
        wanted["marketing_events.participations"] = sum(max(1, math.ceil(n / 100)) for n in breakdowns.values())
    return wanted


def table(title: str, calls: dict[str, int], wanted: dict[str, int]) -> None:
    print(f"\n{title}")
    print(f"  {'endpoint':<24}{'calls':>8}{'minimum':>9}{'ratio':>8}")
    for name in sorted(set(calls) | set(wanted)):
        made, least = calls.get(name, 0), wanted.get(name, 0)
        ratio = f"{made / least:.2f}" if least else ("-" if not made else "extra")
        print(f"  {name:<24}{made:>8}{least:>9}{ratio:>8}")
    total, least = sum(calls.values()), sum(wanted.values())
    print(f"  {'total':<24}{total:>8}{least:>9}{total / least if least else 0:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--activities", type=int, default=1_000_000)
    args = parser.parse_args()

    seeding = time.perf_counter()
    process, url = start_sandbox(args.contacts, args.activities)
    print(f"sandbox {url} ready in {time.perf_counter() - seeding:.1f} s")
    try:
        mapping = load_mapping(ROOT / "mappings" / "hubspot.toml")
        rules = load_rules(ROOT / "mappings" / "lifecycle.toml")
        settings = HubSpotConnection(type="hubspot", base_url=url, burst_limit=1_000_000, search_per_second=1_000_000)
        client = HubSpotClient("hubspot", settings, mapping, SecretStr(TOKEN), pacing=False)
        now = datetime.now(UTC)
        state: dict = {"records": {}, "activities": defaultdict(list), "activity_ids": set()}  # type: ignore[type-arg]

        started = time.perf_counter()
        contact_cursor, activity_cursor, counts = sync(client, None, None, state, now, rules, mapping)
        full_seconds = time.perf_counter() - started
        full_calls = client.usage().calls
        store_counts = store_sizes(client)
        print(
            f"\nfull sync: {full_seconds:.1f} s, {args.contacts / full_seconds:,.0f} contacts/s, peak RSS {rss_mb():.0f} MB"
        )
        print("  " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        table("full sync: API calls", full_calls, minimum(store_counts, counts["planned"], None))

        before = dict(client.usage().calls)
        written = counts.get("write written", 0)
        started = time.perf_counter()
        _, _, again = sync(client, contact_cursor, activity_cursor, state, now, rules, mapping)
        incremental_seconds = time.perf_counter() - started
        calls = {k: v - before.get(k, 0) for k, v in client.usage().calls.items() if v - before.get(k, 0)}
        print(f"\nincremental re-run (nothing changed since): {incremental_seconds:.1f} s, peak RSS {rss_mb():.0f} MB")
        print("  " + ", ".join(f"{k} {v:,}" for k, v in again.items()))
        # our own write-back bumped lastmodifieddate on the written contacts: the re-run re-reads exactly those
        table("incremental re-run: API calls", calls, minimum(store_counts, again["planned"], written))
        print(f"\nwrite calls in the re-run: {calls.get('contacts.batch_update', 0)}")
    finally:
        process.terminate()
        process.wait(timeout=10)


def store_sizes(client: HubSpotClient) -> dict[str, object]:
    """Record counts per object, asked of the portal with one search each (not counted in the sync)."""
    from connector.hubspot.payloads import ObjectPage, SubmissionPage
    from connector.hubspot.transport import Operation, path

    transport = client._transport
    sizes: dict[str, object] = {}
    saved = dict(transport.usage.calls)
    body = {"limit": 1, "filterGroups": []}
    for name in ("contacts", "companies", *ENGAGEMENT_OBJECTS):
        operation = Operation("x", "POST", f"/crm/v3/objects/{name}/search", body=body, search=True)
        sizes[name] = ObjectPage.model_validate_json(transport.send(operation).data).total or 0
    forms: dict[str, int] = {}
    for guid in client._form_ids():
        count, after = 0, None
        while True:
            query: tuple[tuple[str, object], ...] = (("limit", 50),) + ((("after", after),) if after else ())
            operation = Operation("x", "GET", path("/form-integrations/v1/submissions/forms/{guid}", guid=guid), query)
            sub = SubmissionPage.model_validate_json(transport.send(operation).data)
            count += len(sub.results)
            after = sub.next_after
            if after is None:
                break
        forms[guid] = count
    sizes["forms"] = forms
    sizes["archived"] = len(client._archived(0))
    sizes |= signal_sizes(client)
    transport.usage.calls.clear()
    transport.usage.calls.update(saved)
    return sizes


def signal_sizes(client: HubSpotClient) -> dict[str, object]:
    """E-mail events per mapped type and participations per webinar (census calls, not counted in the sync)."""
    from connector.hubspot.engagement import event_types
    from connector.hubspot.transport import Operation, path

    transport = client._transport
    events: dict[str, int] = {}
    for kind in event_types(client.mapping):
        count, offset = 0, None
        while True:
            query: tuple[tuple[str, object], ...] = (("eventType", kind), ("limit", 1000))
            page = json.loads(transport.send(Operation("x", "GET", "/email/public/v1/events",
                                                       query + ((("offset", offset),) if offset else ()))).data)  # fmt: skip
            count += len(page["events"])
            offset = page.get("offset") if page.get("hasMore") else None
            if offset is None:
                break
        events[kind] = count
    participations: dict[str, int] = {}
    if client.mapping.activity_rules("marketing_events"):
        listed = json.loads(transport.send(Operation("x", "GET", "/marketing/v3/marketing-events")).data)
        for event in listed["results"]:
            url = path("/marketing/v3/marketing-events/participations/{a}/{e}/breakdown",
                       a=event["externalAccountId"], e=event["externalEventId"])  # fmt: skip
            page = json.loads(transport.send(Operation("x", "GET", url, (("limit", 1),))).data)
            participations[event["externalEventId"]] = int(page.get("total") or 0)
    return {"email_events": events, "participations": participations}


if __name__ == "__main__":
    main()
