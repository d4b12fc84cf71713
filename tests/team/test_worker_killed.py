"""A ``crmsync worker`` SIGKILLed while it writes: another worker runs the job again, and it ends as a clean run.

Two real ``crmsync worker`` processes on one PostgreSQL store share a job
whose HubSpot sandbox is served from this process. ``crmsync run`` queues one
run; the sandbox SIGKILLs the worker that took it while answering its second
batch of stage writes (the batch applied, its answer never received). Nothing
is cleaned up by hand: the surviving worker's recovery task finds the silent
worker's run, closes it and queues the job again, and the survivor runs it,
taking over the dead process's lease. Then the CRM's stage fields and the
stage history equal those of a clean run on a twin sandbox (same seed, same
instant), with every change recorded once and nothing left in the outbox.

The bound the run must be taken over within follows from the queue's
settings: a worker is taken for dead :data:`STALLED_AFTER_SECONDS` after its
last heartbeat (sent every 10 s), the recovery runs every 15 s, and a lease
on the same host is taken over at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from connector.mapping import load_mapping
from connector.sandbox.hubspot import HubSpotSandbox, Limits
from connector.sandbox.hubspot import LoggedRequest as HubSpotLogged
from connector.team.queue import STALLED_AFTER_SECONDS
from tests.chaos.conftest import stage_history
from tests.stores import PG_URL, StoreUrls

pytestmark = [pytest.mark.postgres, pytest.mark.long]

REPO = Path(__file__).resolve().parents[2]
CRMSYNC = str(Path(sys.executable).parent / "crmsync")
JOB = "acme-ladder"
SIZE = 300
"""People in the portal: 3 write batches of 100, so the kill lands between the first and the last."""
SEED = 41
SANDBOX_NOW = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)
TOKEN = "pat-na1-3e9f0c2a-77d1-4b0e-9a41-team15kill"
TOKEN_ENV = "CRMSYNC_TEST_TEAM_KILL_TOKEN"
HEARTBEAT_SECONDS = 10.0
RECOVER_EVERY_SECONDS = 15.0
TAKEOVER_BOUND = STALLED_AFTER_SECONDS + HEARTBEAT_SECONDS + RECOVER_EVERY_SECONDS + 30.0
"""Seconds from the kill until another worker completed the job: dead, found, queued, plus the run itself."""


@dataclass
class Portal:
    """A sandbox portal, a config folder pointing at it and the PostgreSQL store behind that config."""

    sandbox: HubSpotSandbox
    config: Path
    store_url: str
    engine: Engine

    def crm_state(self) -> list[tuple[Any, ...]]:
        fields = load_mapping(REPO / "mappings" / "hubspot.toml").written_fields()
        store = self.sandbox.store
        with store.lock:
            return [(store.contact_id(i), *(store.get(i, name) for name in fields)) for i in range(store.contact_count)]

    def runs(self) -> list[Any]:
        with self.engine.connect() as db:
            return list(db.execute(text("SELECT owner, status FROM runs WHERE job = :job ORDER BY started_at"), {"job": JOB}))  # fmt: skip


def make_portal(folder: Path, store_url: str) -> Portal:
    sandbox = HubSpotSandbox(
        contacts=SIZE, activities=10 * SIZE, seed=SEED, token=TOKEN, now=SANDBOX_NOW, limits=Limits.unlimited()
    )
    sandbox.start()
    (folder / "jobs").mkdir(parents=True)
    config = folder / "config.toml"
    config.write_text(
        f"""
[store]
url = "{store_url}"
[paths]
mappings = "{REPO / "mappings"}"
jobs = "jobs"
rules = "{REPO / "mappings" / "lifecycle.toml"}"
[team]
enabled = true
[connections.acme]
type = "hubspot"
base_url = "{sandbox.url}"
token_env = "{TOKEN_ENV}"
burst_limit = 100000
search_per_second = 100000
""",
        encoding="utf-8",
    )
    # a yearly cron: no tick during the test, the one run is the one `crmsync run` queues
    (folder / "jobs" / f"{JOB}.toml").write_text(
        f'name = "{JOB}"\nconnections = ["acme"]\nschedule = "0 0 1 1 *"\n', encoding="utf-8"
    )
    return Portal(sandbox, config, store_url, create_engine(store_url))


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[StoreUrls]:
    if not PG_URL:
        pytest.skip("team mode needs PostgreSQL: set CRMSYNC_TEST_POSTGRES_URL")
    urls = StoreUrls("postgresql", tmp_path, prefix="teamkill")
    yield urls
    urls.drop()


@pytest.fixture
def env() -> dict[str, str]:
    return {**os.environ, TOKEN_ENV: TOKEN}


class KillOnWrite:
    """SIGKILLs the worker running the job while the sandbox answers its ``at``-th batch of stage writes."""

    def __init__(self, portal: Portal, at: int) -> None:
        self.portal = portal
        self.at = at
        self.writes = 0
        self.killed: tuple[int, float] | None = None
        """The killed worker's pid and the monotonic instant of the kill."""
        self._lock = threading.Lock()
        add = portal.sandbox.log.add

        def on_request(entry: HubSpotLogged) -> None:
            add(entry)  # logged after the batch was applied, before its answer goes out
            if entry.endpoint == "contacts.batch_update":
                with self._lock:
                    self.writes += 1
                    if self.writes == self.at and self.killed is None:
                        self._kill()

        portal.sandbox.log.add = on_request  # type: ignore[method-assign]

    def _kill(self) -> None:
        (owner,) = [run.owner for run in self.portal.runs() if run.status == "running"]
        pid = int(owner.split(":")[1])  # host:pid:token
        os.kill(pid, signal.SIGKILL)
        self.killed = (pid, time.monotonic())


def start_worker(portal: Portal, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            [CRMSYNC, "--config", str(portal.config), "worker"],
            env=env, cwd=portal.config.parent, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip


def wait_for(condition: Any, seconds: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in logs)
            pytest.fail(f"not within {seconds:.0f} s: {what}\n{tails}")
        time.sleep(0.2)


def test_a_worker_killed_while_writing_is_replaced_and_the_outcome_equals_a_clean_run(
    tmp_path: Path, stores: StoreUrls, env: dict[str, str]
) -> None:
    day = datetime.now(UTC).date()
    # given a clean run of the job on a twin portal
    clean = make_portal(tmp_path / "clean", stores.new())
    done = subprocess.run(
        [CRMSYNC, "--config", str(clean.config), "run", JOB, "--inline", "--json"],
        env=env, cwd=clean.config.parent, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    clean_changes = stage_history_of(clean)
    assert clean_changes and len(clean_changes) == len({(row[0], row[1], row[5]) for row in clean_changes})

    # and two workers on the portal of the kill, which kills whoever writes the second batch
    portal = make_portal(tmp_path / "team", stores.new())
    switch = KillOnWrite(portal, at=2)
    logs = [tmp_path / "worker0.log", tmp_path / "worker1.log"]
    workers = [start_worker(portal, env, logs[0])]
    try:
        # the first one creates the queue's tables; the second starts once it has
        wait_for(lambda: registered(portal) >= 1, 60, "the first worker registered", logs)
        workers.append(start_worker(portal, env, logs[1]))
        wait_for(lambda: registered(portal) >= 2, 60, "the second worker registered", logs)

        # when a run is queued and its worker dies with a write applied but not acknowledged
        queued = subprocess.run(
            [CRMSYNC, "--config", str(portal.config), "run", JOB, "--json"],
            env=env, cwd=portal.config.parent, capture_output=True, timeout=60,
        )  # fmt: skip
        assert queued.returncode == 0, queued.stderr.decode(errors="replace")
        wait_for(lambda: switch.killed is not None, 60, "the worker writing was killed", logs)
        assert switch.killed is not None
        pid, killed_at = switch.killed
        (dead,) = [worker for worker in workers if worker.pid == pid]
        (survivor,) = [worker for worker in workers if worker.pid != pid]
        assert dead.wait(timeout=10) == -signal.SIGKILL

        # then the other worker completes the job within the bound, without anyone's help
        wait_for(lambda: any(run.status == "completed" for run in portal.runs()), TAKEOVER_BOUND,
                 "another worker completed the job", logs)  # fmt: skip
        took = time.monotonic() - killed_at
        runs = portal.runs()
        statuses = [run.status for run in runs]
        assert statuses == ["abandoned", "completed"], statuses
        assert int(runs[1].owner.split(":")[1]) == survivor.pid
        print(f"killed at write batch {switch.at} of {switch.writes}; job completed by pid {survivor.pid} {took:.1f} s after the kill")  # fmt: skip

        # and stops cleanly on SIGTERM
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(timeout=60) == 0
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()

    # and the CRM and the history end exactly as after the clean run: no change lost, none twice
    assert switch.writes > switch.at  # the re-run wrote what the killed one had not
    if datetime.now(UTC).date() == day:  # a rung no activity dates is reached "today"
        assert portal.crm_state() == clean.crm_state()
    assert stage_history_of(portal) == clean_changes
    with portal.engine.connect() as db:
        assert db.execute(text("SELECT count(*) FROM pending_writes")).scalar_one() == 0
        stalled = db.execute(text("SELECT status, count(*) FROM procrastinate_jobs GROUP BY status")).all()
    assert dict(stalled).get("failed") == 1  # the dead worker's run, closed by the recovery
    for made in (clean, portal):
        made.engine.dispose()
        made.sandbox.stop()


def registered(portal: Portal) -> int:
    with portal.engine.connect() as db:
        if db.execute(text("SELECT to_regclass('procrastinate_workers')")).scalar() is None:
            return 0
        return int(db.execute(text("SELECT count(*) FROM procrastinate_workers")).scalar_one())


def stage_history_of(portal: Portal) -> list[tuple[Any, ...]]:
    from connector.store import open_store

    store = open_store(portal.store_url)
    try:
        return stage_history(store, with_times=False)
    finally:
        store.close()
