"""Crash safety: a run killed between any two steps, then re-run, ends exactly like one clean run.

The kill is ``SimulatedCrash`` (a ``BaseException``): raised from the fake
CRM (a page fetched but not handed over; a batch applied but not answered)
or from the progress callback, which the pipeline calls right after each
commit (a page stored, a chunk decided, a batch's results recorded). No
clean-up of the killed run happens: its lease stays until it expires and
its run row stays "running".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update

from connector.progress import ProgressEvent
from connector.store import Store, open_store
from connector.store.tables import leases
from connector.sync import PageGroup
from tests.fakes import FakeCrm, SimulatedCrash
from tests.stores import StoreUrls
from tests.sync.conftest import NOW, Runner, history, make_config, new_crm, open_dead_letters, populate

SIZES = {"page_size": 8, "activity_page_size": 11, "write_batch_size": 7}
PAGES = PageGroup(max_pages=3, max_seconds=math.inf)
"""Three pages per transaction: a crash while a group is read loses the group, never more."""
FAKE_POINTS = ("contacts_page", "activities_page", "write_before", "write_after")


def first_run(crm: FakeCrm) -> None:
    populate(crm, 30)
    crm.reject["c0009"] = ("INVALID_OPTION", "not a valid option")


def second_run(crm: FakeCrm) -> None:
    """Changes between two runs: new activities, a new contact, an edit by a person."""
    crm.add_activity("n-1", "demo_request", NOW - timedelta(days=1), ["c0003"])
    crm.add_activity("n-2", "meeting_held", NOW - timedelta(hours=5), ["c0008", "c0014"])
    crm.add_contact("c9000", "new@example.fr", company=populate_icp())
    crm.set_value("c0001", "crmsync_lifecycle_stage", "prospect")


def populate_icp() -> Any:
    from tests.sync.conftest import ICP

    return ICP


@dataclass
class World:
    crm: FakeCrm
    store: Store
    runner: Runner


def make_world(tmp_path: Path, url: str) -> World:
    crm = new_crm(**SIZES)
    store = open_store(url)
    return World(crm, store, Runner(make_config(tmp_path, url), store, {"hubspot": crm}))


def crash_after_event(k: int) -> Callable[[ProgressEvent], None]:
    seen = {"n": 0}

    def progress(_event: ProgressEvent) -> None:
        seen["n"] += 1
        if seen["n"] == k:
            raise SimulatedCrash(f"after event {k}")

    return progress


def expire_lease(store: Store) -> None:
    """Time passes for the dead holder's lease (the decisions' clock stays pinned)."""
    with store.begin() as db:
        db.execute(update(leases).values(expires_at=NOW - timedelta(hours=1)))


def outcome(world: World) -> tuple[Any, ...]:
    return world.crm.snapshot(), history(world.store), open_dead_letters(world.store)


def crash_cases(
    tmp_path: Path, urls: StoreUrls, scenario: str
) -> tuple[tuple[Any, ...], list[tuple[str, Any]], Counter[str]]:
    """The clean outcome, and every crash case: ("event", k) or (fake point, occurrence)."""
    clean = make_world(tmp_path, urls.new("clean"))
    first_run(clean.crm)
    events: list[ProgressEvent] = []
    if scenario == "incremental":
        clean.runner()
        second_run(clean.crm)
    before = Counter(clean.crm._points)
    clean.runner(chunk_size=9, progress=events.append, pages=PAGES)
    points = clean.crm._points - before
    result = outcome(clean)
    clean.store.close()
    cases: list[tuple[str, Any]] = [("event", k) for k in range(1, len(events) + 1)]
    cases += [(point, n) for point in FAKE_POINTS for n in range(1, points[point] + 1)]
    return result, cases, points


@pytest.mark.long
@pytest.mark.parametrize("scenario", ["first", "incremental"])
def test_a_crash_between_any_two_steps_then_a_rerun_equals_one_clean_run(
    tmp_path: Path, store_urls: StoreUrls, scenario: str
) -> None:
    expected, cases, points = crash_cases(tmp_path, store_urls, scenario)
    assert len(cases) > (30 if scenario == "first" else 12)
    assert all(points[p] for p in FAKE_POINTS)
    failures = []
    for index, (point, k) in enumerate(cases):
        world = make_world(tmp_path, store_urls.new(f"crash{index}"))
        first_run(world.crm)
        if scenario == "incremental":
            world.runner()
            second_run(world.crm)
        base = Counter(world.crm._points)
        if point == "event":
            progress = crash_after_event(k)
        else:
            world.crm.crash_at = {point: base[point] + k}
            progress = None
        with pytest.raises(SimulatedCrash):
            world.runner(chunk_size=9, progress=progress, pages=PAGES)
        world.crm.crash_at = {}
        expire_lease(world.store)
        rerun = world.runner(chunk_size=9)
        assert rerun.status == "completed"
        if outcome(world) != expected:
            failures.append(f"{point} #{k}")
        with world.store.begin() as db:
            statuses = sorted(r[0] for r in db.execute(text("SELECT status FROM runs")).all())
            pending = db.execute(text("SELECT count(*) FROM pending_writes")).scalar_one()
        assert "abandoned" in statuses, (point, k)
        assert pending == 0, (point, k)
        world.store.close()
    assert failures == []


def test_a_crash_after_the_crm_applied_a_batch_records_each_change_once(tmp_path: Path, store_url: str) -> None:
    world = make_world(tmp_path, store_url)
    first_run(world.crm)
    world.crm.crash_at = {"write_after": 1}
    with pytest.raises(SimulatedCrash):
        world.runner()
    applied = sum(1 for update in world.crm.writes[0] if update.crm_id not in world.crm.reject)
    assert history(world.store) == []  # the CRM has the values, the store does not know yet
    world.crm.crash_at = {}
    expire_lease(world.store)

    result = world.runner()

    assert result.counts["hubspot"].recovered == applied
    changed = [row[1] for row in history(world.store)]
    assert len(changed) == len(set(changed))
