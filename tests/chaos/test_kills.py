"""``crmsync run`` killed with SIGKILL at 20 random points, then re-run: the CRM and the history end as after one clean run.

The sandboxes are served from this process; ``crmsync run`` is a real child
process with a config file pointing at them. The kill is deterministic: a
seeded draw picks the k-th request the sandboxes serve to the child, and the
sandbox sends SIGKILL while answering it (a read served but not received, a
write applied but not acknowledged). Nothing of the killed run is cleaned up;
only its lease is let expire, as the scheduler would after the TTL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

import pytest
from sqlalchemy import update

from connector.cli.demo import HUBSPOT_TOKEN_ENV, Sandboxes, write_config_folder
from connector.sandbox.hubspot import LoggedRequest as HubSpotLogged
from connector.sandbox.salesforce.server import LoggedRequest as SalesforceLogged
from connector.store import open_store
from connector.store.tables import leases
from tests.chaos.conftest import ROOT, SEED, World, Worlds, stage_history

KILLS = 20
JOB = "chaos-both"
CRMSYNC = [str(Path(sys.executable).parent / "crmsync")]
SIZE = 40
"""People per CRM: small pages (20) keep about 40 requests a run, so 20 kill points cover half of them."""


class KillSwitch:
    """Counts the requests both sandboxes answer; SIGKILLs ``pid`` while answering the ``at``-th."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.served = 0
        self.pid: int | None = None
        self.at: int | None = None
        self.fired = False

    def arm(self, pid: int, at: int) -> None:
        with self.lock:
            self.served, self.pid, self.at, self.fired = 0, pid, at, False

    def disarm(self) -> None:
        with self.lock:
            self.pid = self.at = None

    def count(self) -> None:
        with self.lock:
            self.served += 1
            if self.pid is not None and self.served == self.at:
                os.kill(self.pid, signal.SIGKILL)
                self.fired = True
                self.pid = None


def install(world: World, switch: KillSwitch) -> None:
    """Hook the switch into both sandboxes' request logs (written once per request, before it is answered)."""
    hubspot_add = world.hubspot.log.add
    salesforce_add = world.salesforce.log.add

    def on_hubspot(entry: HubSpotLogged) -> None:
        hubspot_add(entry)
        switch.count()

    def on_salesforce(entry: SalesforceLogged) -> None:
        salesforce_add(entry)
        if entry.endpoint != "_sandbox":
            switch.count()

    world.hubspot.log.add = on_hubspot  # type: ignore[method-assign]
    world.salesforce.log.add = on_salesforce  # type: ignore[method-assign]


def prepare(world: World) -> tuple[Path, dict[str, str]]:
    """A config folder for the child process and its environment (the sandboxes' throwaway secrets)."""
    folder = world.folder / "cli"
    config = write_config_folder(folder, Sandboxes(world.hubspot, world.salesforce), ROOT / "mappings", ROOT / "jobs")
    # the sandbox org has no per-second limit: do not pace at the production default (20/s)
    text = config.read_text(encoding="utf-8").replace(
        'mapping = "salesforce.toml"', 'mapping = "salesforce.toml"\nrequests_per_second = 1000.0'
    )
    config.write_text(text, encoding="utf-8")
    (folder / "jobs" / f"{JOB}.toml").write_text(
        f'name = "{JOB}"\nconnections = ["hubspot", "salesforce"]\n', encoding="utf-8"
    )
    env = {**os.environ, **Sandboxes(world.hubspot, world.salesforce).secrets_env()}
    env[HUBSPOT_TOKEN_ENV] = world.hubspot.token
    return config, env


def crmsync_run(config: Path, env: dict[str, str], switch: KillSwitch | None = None, at: int = 0) -> int:
    child = subprocess.Popen(
        [*CRMSYNC, "--config", str(config), "run", JOB, "--json"],
        env=env, cwd=config.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    if switch is not None:
        switch.arm(child.pid, at)
    child.communicate(timeout=300)
    if switch is not None:
        switch.disarm()
    return child.returncode


def expire_leases(store_url: str) -> None:
    """Time passes for the killed holder's lease (it would expire after its TTL)."""
    store = open_store(store_url)
    try:
        with store.begin() as db:
            db.execute(update(leases).values(expires_at=datetime.now(UTC) - timedelta(hours=1)))
    finally:
        store.close()


def outcome(world: World, *, reached_at: bool) -> tuple[Any, ...]:
    """CRM stage fields of every person, and the history without run ids or instants (the clock is real here)."""
    state = {crm: world.crm_state(crm) for crm in ("hubspot", "salesforce")}
    if not reached_at:  # the date a rung was reached falls back to today for rungs no activity dates
        state = {
            crm: [without(row, 1 + len(world.mappings[crm].stage_fields())) for row in rows]
            for crm, rows in state.items()
        }
    store = open_store(store_url(world))
    try:
        history = stage_history(store, with_times=False)
    finally:
        store.close()
    return state, history


def without(row: tuple[Any, ...], index: int) -> tuple[Any, ...]:
    return row[:index] + row[index + 1 :]


def store_url(world: World) -> str:
    return f"sqlite:///{world.folder / 'cli' / 'crmsync.db'}"


@pytest.mark.long
def test_sigkill_at_twenty_random_points_then_a_rerun_equals_one_clean_run(sqlite_worlds: Worlds) -> None:
    worlds = sqlite_worlds
    day = datetime.now(UTC).date()
    clean = worlds.new("clean", size=SIZE, page_size=20)
    config, env = prepare(clean)
    switch = KillSwitch()
    install(clean, switch)
    assert crmsync_run(config, env) == 0
    requests = switch.served
    expected = outcome(clean, reached_at=True)
    changes = expected[1]
    print(f"clean run: {requests} requests, {len(changes)} stage changes; kills at:", end=" ")
    assert changes and len(changes) == len({(row[0], row[1], row[5]) for row in changes})

    rng = Random(SEED)
    points = sorted(rng.sample(range(1, requests + 1), KILLS))
    print(points)
    mismatches = []
    for n, point in enumerate(points):
        world = worlds.new(f"kill{n}", size=SIZE, page_size=20)
        config, env = prepare(world)
        switch = KillSwitch()
        install(world, switch)

        code = crmsync_run(config, env, switch, point)

        assert switch.fired and code == -signal.SIGKILL, (point, code)
        expire_leases(store_url(world))
        assert crmsync_run(config, env) == 0, point
        same_day = datetime.now(UTC).date() == day
        got = outcome(world, reached_at=same_day)
        want = expected if same_day else outcome(clean, reached_at=False)
        if got != want:
            mismatches.append(point)
        world.hubspot.stop()
        world.salesforce.stop()
    assert mismatches == [], f"kill points whose re-run did not end like the clean run: {mismatches} of {requests}"
