"""Faults on the wire change nothing: a sync through 429s, 5xx, resets and slow answers ends like a clean one.

Given two identical worlds, one clean and one whose sandboxes inject faults at
the issue's rates (10 % 429s, half of them without ``Retry-After``; 5 % 5xx;
2 % connection resets; slow answers, some past the client's timeout), when
both run a full sync, people edit some records, and both run again, then the
CRM's stage fields and the stage history are exactly the same.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from connector.sandbox.hubspot import Fault as HubSpotFault
from connector.sandbox.hubspot import Faults as HubSpotFaults
from connector.sandbox.salesforce import Fault as SalesforceFault
from tests.chaos.conftest import SEED, SIZE, RandomFaults, World, Worlds


def hubspot_faults() -> HubSpotFaults:
    """Probabilistic faults on every endpoint; two of one kind share the rate (the first drawn wins)."""
    faults = HubSpotFaults(seed=SEED + 1)
    faults.add(
        HubSpotFault("slow", times=None, probability=0.04, delay=0.05),
        HubSpotFault("slow", times=None, probability=0.01 / 0.96, delay=1.3),  # past the 1 s client timeout
        HubSpotFault("reset", times=None, probability=0.02),
        HubSpotFault("rate_limit", times=None, probability=0.05, retry_after=1),
        HubSpotFault("rate_limit", times=None, probability=0.05 / 0.95),  # no Retry-After: backoff with jitter
        HubSpotFault("server_error", times=None, probability=0.025, status=500),
        HubSpotFault("server_error", times=None, probability=0.025 / 0.975, status=503),
    )
    return faults


def salesforce_faults() -> RandomFaults:
    rates = [
        (0.05, SalesforceFault("429", retry_after=1)),
        (0.05, SalesforceFault("429")),
        (0.025, SalesforceFault("500")),
        (0.025, SalesforceFault("503")),
        (0.02, SalesforceFault("reset")),
        (0.04, SalesforceFault("slow", delay=0.05)),
        (0.01, SalesforceFault("slow", delay=1.3)),
    ]
    return RandomFaults(SEED, rates, endpoints=("query", "query_more", "composite/sobjects"))


def people_edit(world: World, crm: str) -> None:
    """Between the runs, people edit records: a stage field cleared, a company grown into the ICP."""
    stage = world.mappings[crm].stage.field
    if crm == "hubspot":
        store = world.hubspot.store
        with store.lock:
            for index in range(0, store.contact_count, 7):
                store.set(index, stage, "")
                store.touch(index)
            for index in range(3, store.contact_count, 5):
                store.set(index, "numemployees", "1000+")
                store.set(index, "industry", "LOGISTICS_AND_SUPPLY_CHAIN")
                store.touch(index)
        return
    org = world.salesforce.org
    with org.lock:
        contacts = [record["Id"] for record in org.records("Contact")]
        leads = [record["Id"] for record in org.records("Lead") if not record.get("IsConverted")]
        for record_id in contacts[::7] + leads[::7]:
            org.touch("Contact" if record_id in contacts else "Lead", record_id, {stage: None})
        for record_id in leads[3::5]:
            org.touch("Lead", record_id, {"NumberOfEmployees": 1200, "Industry": "Transportation"})


def sync_twice(world: World, crm: str) -> list[Any]:
    results = [world.run(crm)]
    people_edit(world, crm)
    results.append(world.run(crm))
    return results


def options(crm: str, *, faults: bool) -> dict[str, Any]:
    """HubSpot pages hold 100 records (50 submissions), Salesforce's here 50: more HubSpot people, as many calls."""
    if crm == "hubspot":
        return {"size": 4 * SIZE, **({"hubspot_faults": hubspot_faults()} if faults else {})}
    return {"salesforce_faults": salesforce_faults()} if faults else {}


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_a_sync_through_injected_faults_ends_exactly_like_a_fault_free_one(worlds: Worlds, crm: str) -> None:
    clean = worlds.new("clean", **options(crm, faults=False))
    clean_runs = sync_twice(clean, crm)
    faulty = worlds.new("faulty", **options(crm, faults=True))

    runs = sync_twice(faulty, crm)

    assert [r.status for r in runs] == ["completed", "completed"]
    assert faulty.crm_state(crm) == clean.crm_state(crm)
    assert faulty.history() == clean.history()
    for run, clean_run in zip(runs, clean_runs, strict=True):
        counts = run.counts[crm]
        assert (counts.deferred, counts.failed) == (0, 0)
        assert (counts.written, counts.decided) == (clean_run.counts[crm].written, clean_run.counts[crm].decided)
    # the faults really happened, and the client rode them out
    usage = [run.usage[crm] for run in runs]
    assert sum(u.rate_limited for u in usage) > 0
    assert sum(u.retries for u in usage) > sum(u.rate_limited for u in usage)
    if crm == "hubspot":
        injected = Counter(entry.fault for entry in faulty.hubspot.log.entries if entry.fault)
        summary = f"{len(faulty.hubspot.log.entries)} requests, faults {dict(injected)}"
        assert {"rate_limit", "server_error", "reset"} <= set(injected), (injected, len(faulty.hubspot.log.entries))
    else:
        drawn = faulty.salesforce.faults.drawn  # type: ignore[attr-defined]
        summary = f"{sum(faulty.salesforce.log.counts.values())} requests, faults {drawn}"
        assert {"429", "429+retry-after", "reset"} <= set(drawn), drawn
        assert drawn.get("500", 0) + drawn.get("503", 0) > 0
    print(
        f"\n{crm}: {summary}; 429s seen {sum(u.rate_limited for u in usage)}, retries {sum(u.retries for u in usage)}"
    )
