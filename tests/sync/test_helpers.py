"""A long queue decided by helper processes beside the run's own (connector/sync/helper.py).

Against both sandbox CRMs through the real clients, on every store backend:
the run with helpers ends where a run alone ends (the same history, the same
calls), a helper that dies fails the run without losing or doubling a
write, and a stopped run leaves the rest to the next one.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connector.config import Config
from connector.connections import open_client
from connector.errors import TransientError
from connector.jobs import Job
from connector.progress import ProgressEvent
from connector.sandbox.hubspot import HubSpotSandbox
from connector.sandbox.salesforce import SalesforceSandbox
from connector.store import Store, open_store
from connector.store.tables import job_contacts, pending_writes
from connector.sync import RunResult, run_job
from connector.sync.helper import chunk_range, claim, portable
from tests.stores import StoreUrls
from tests.sync.conftest import history, sandbox_config, started_sandboxes

PEOPLE = 120
CHUNK = 4
SANDBOX_NOW = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)
TOKEN = "pat-na1-helper-tier-9f8e"
TOKEN_ENV = "CRMSYNC_HELPER_TIER_HUBSPOT_TOKEN"


@dataclass(frozen=True)
class FixedClock:
    """The run's clock, one instant; a module-level class, so it can be sent to a helper process."""

    at: datetime = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


@dataclass
class World:
    config: Config
    store: Store
    clean: Store
    """A second store, for the same job run in one process against sandboxes seeded alike."""
    clean_config: Config


def _sandboxes() -> tuple[HubSpotSandbox, SalesforceSandbox]:
    return started_sandboxes(PEOPLE, seed=11, token=TOKEN, now=SANDBOX_NOW)


@pytest.fixture
def world(tmp_path: Path, store_urls: StoreUrls, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    shared, alone = _sandboxes(), _sandboxes()
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    for name, value in shared[1].secrets_env().items():
        monkeypatch.setenv(name, value)  # both Salesforce sandboxes take the same default credentials
    url, clean_url = store_urls.new("state"), store_urls.new("clean")
    config = sandbox_config(tmp_path, url, *shared, token_env=TOKEN_ENV, lookback_seconds=300)
    clean_config = sandbox_config(tmp_path, clean_url, *alone, token_env=TOKEN_ENV, lookback_seconds=300)
    store, clean = open_store(url), open_store(clean_url)
    yield World(config, store, clean, clean_config)
    store.close()
    clean.close()
    for sandbox in (*shared, *alone):
        sandbox.stop()


def _run(config: Config, store: Store, crm: str, processes: int, **options: object) -> RunResult:
    job = Job(name=f"{crm}-lifecycle", connections=[crm])
    return run_job(
        job,
        config,
        store=store,
        clients=open_client,
        clock=FixedClock(),
        heartbeat=False,
        chunk_size=CHUNK,
        processes=processes,
        share_from=0,
        **options,  # type: ignore[arg-type]
    )


def _left(store: Store) -> tuple[int, int]:
    """Contacts still queued and outbox intents still open."""
    with store.begin() as db:
        queued = db.execute(select(func.count()).select_from(job_contacts).where(job_contacts.c.dirty)).scalar_one()
        intents = db.execute(select(func.count()).select_from(pending_writes)).scalar_one()
    return queued, intents


def _decided(store: Store) -> int:
    with store.begin() as db:
        return db.execute(
            select(func.count()).select_from(job_contacts).where(job_contacts.c.decided_at.is_not(None))
        ).scalar_one()


def _waiting_for_a_helper(store: Store) -> Callable[[ProgressEvent], None]:
    """A progress display that holds the run's process after its first chunk until another process has
    decided one (a helper starts in well under a second; the run's process would decide these few chunks
    alone before that)."""
    waited: list[bool] = []

    def display(event: ProgressEvent) -> None:
        if event.phase != "decide" or event.step != "decided" or waited:
            return
        waited.append(True)
        deadline = time.monotonic() + 60
        while _decided(store) <= CHUNK and time.monotonic() < deadline:
            time.sleep(0.005)

    return display


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_helpers_decide_what_one_process_decides_and_every_call_is_the_runs(world: World, crm: str) -> None:
    shared = _run(world.config, world.store, crm, processes=3, progress=_waiting_for_a_helper(world.store))
    alone = _run(world.clean_config, world.clean, crm, processes=1)

    assert shared.status == alone.status == "completed"
    counts, clean_counts = shared.counts[crm], alone.counts[crm]
    assert counts.seconds.get("helpers", 0) > 0  # the helpers did decide chunks
    assert "helpers" not in clean_counts.seconds
    assert (counts.decided, counts.changed, counts.written) == (
        clean_counts.decided,
        clean_counts.changed,
        clean_counts.written,
    )
    assert counts.written > 0
    assert shared.usage[crm].calls == alone.usage[crm].calls  # the same calls, all made by the run's process
    assert history(world.store) == history(world.clean)
    assert _left(world.store) == (0, 0)
    again = _run(world.config, world.store, crm, processes=3)
    assert again.counts[crm].written == 0


def _kill_a_helper(store: Store) -> Callable[[ProgressEvent], None]:
    """Once a helper has decided a chunk (see :func:`_waiting_for_a_helper`), SIGKILL it."""
    wait = _waiting_for_a_helper(store)

    def display(event: ProgressEvent) -> None:
        wait(event)
        if event.phase == "decide" and event.step == "decided":
            for child in multiprocessing.active_children():
                if child.name.startswith("crmsync-decide") and child.pid is not None:
                    os.kill(child.pid, signal.SIGKILL)

    return display


def test_a_helper_killed_mid_queue_fails_the_run_and_the_next_run_ends_as_one_clean_run(world: World) -> None:
    with pytest.raises(TransientError, match="deciding helper ended without finishing"):
        _run(world.config, world.store, "hubspot", processes=2, progress=_kill_a_helper(world.store))

    finished = _run(world.config, world.store, "hubspot", processes=2)
    _run(world.clean_config, world.clean, "hubspot", processes=1)

    assert finished.status == "completed"
    assert history(world.store) == history(world.clean)  # every write made and recorded once
    assert _left(world.store) == (0, 0)


def test_a_stopped_run_stops_its_helpers_and_the_next_run_finishes_the_queue(world: World) -> None:
    stop = threading.Event()

    def stop_at_first_chunk(event: ProgressEvent) -> None:
        if event.phase == "decide" and event.step == "decided":
            stop.set()

    stopped = _run(world.config, world.store, "salesforce", processes=2, progress=stop_at_first_chunk, stop=stop)
    assert stopped.status == "stopped"
    assert not [child for child in multiprocessing.active_children() if child.name.startswith("crmsync-decide")]
    queued, _ = _left(world.store)
    assert queued > 0

    finished = _run(world.config, world.store, "salesforce", processes=2)
    _run(world.clean_config, world.clean, "salesforce", processes=1)
    assert finished.status == "completed"
    assert history(world.store) == history(world.clean)
    assert _left(world.store) == (0, 0)


def test_chunks_are_claimed_once_each_in_order() -> None:
    claims = multiprocessing.get_context("spawn").Value("i", 0)
    bounds = ["0003", "0006"]

    claimed = [claim(claims, len(bounds) + 1) for _ in range(4)]

    assert claimed == [0, 1, 2, None]
    assert [chunk_range(bounds, number) for number in (0, 1, 2)] == [("", "0003"), ("0003", "0006"), ("0006", None)]


class _Unpicklable(Exception):
    def __init__(self, code: int, why: str) -> None:
        super().__init__(f"{code}: {why}")


def test_a_helper_error_that_cannot_cross_processes_arrives_as_a_transient_error_naming_it() -> None:
    kept = portable(TransientError("the store went away"))
    replaced = portable(_Unpicklable(7, "no"))

    assert isinstance(kept, TransientError) and str(kept) == "the store went away"
    assert isinstance(replaced, TransientError)
    assert "_Unpicklable: 7: no" in str(replaced)
    pickle.loads(pickle.dumps(replaced))


_KILLED_RUN = """
import pickle, sys, time
from connector.connections import open_client
from connector.jobs import Job
from connector.store import open_store
from connector.sync import run_job
from tests.sync.test_helpers import CHUNK, FixedClock

def slow(event):  # a run's process slowed down (a busy display): the helper decides most chunks
    if event.phase == "decide":
        time.sleep(0.2)

with open(sys.argv[1], "rb") as handle:
    config = pickle.load(handle)
store = open_store(config.store.url)
run_job(Job(name="hubspot-lifecycle", connections=["hubspot"]), config, store=store, clients=open_client,
        clock=FixedClock(), chunk_size=CHUNK, processes=2, share_from=0, progress=slow)
"""


def _helper_pids(parent: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{parent}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                if b"multiprocessing" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
            except OSError:
                continue
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


@pytest.mark.long
def test_a_run_killed_while_a_helper_decides_leaves_no_helper_behind_and_the_rerun_ends_as_one_clean_run(
    world: World, tmp_path: Path
) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    pickled = tmp_path / "config.pickle"
    pickled.write_bytes(pickle.dumps(world.config))
    script = tmp_path / "killed_run.py"
    script.write_text(_KILLED_RUN)
    env = {**os.environ, "PYTHONPATH": str(repo)}
    process = subprocess.Popen([sys.executable, str(script), str(pickled)], cwd=repo, env=env)
    try:
        helpers: list[int] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            helpers = helpers or _helper_pids(process.pid)
            if helpers and _decided(world.store) > CHUNK:
                break
            time.sleep(0.005)
        assert helpers, "no helper started"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(_gone(pid) for pid in helpers):
        time.sleep(0.05)
    assert all(_gone(pid) for pid in helpers)  # a helper whose run is gone stops at its next chunk

    finished = _run(world.config, world.store, "hubspot", processes=1)  # the dead run's lease is taken over
    _run(world.clean_config, world.clean, "hubspot", processes=1)
    assert finished.status == "completed"
    assert history(world.store) == history(world.clean)
    assert _left(world.store) == (0, 0)
