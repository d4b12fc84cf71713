"""Team mode on the real PostgreSQL: `run` queues, a worker runs, a silent worker's run is taken over."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from connector.cli import app as cli_app
from connector.cli.services import Services
from connector.config import Config, load_config
from connector.mapping import load_mapping
from connector.store import Store, acquire
from connector.store.queries import recent_runs
from connector.team.queue import QUEUE, RECOVERY_PRIORITY, RUN_TASK, defer_run, prune_finished, requeue_stalled
from connector.team.tenants import team_jobs
from connector.team.worker import ensure_queue_schema, run_worker, team_app
from tests.fakes import FakeCrm
from tests.sync.conftest import NOW, REPO, populate

pytestmark = pytest.mark.postgres

TENANTS = """
[connection]
type = "hubspot"
token_env = "CRMSYNC_TEST_TOKEN_{TENANT}"
[job]
schedule = "*/5 * * * *"
[tenants.acme]
[tenants.globex]
"""


@dataclass
class Team:
    path: Path
    crms: dict[str, FakeCrm]
    services: Services

    def cli(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli_app, ["--config", str(self.path), *args], obj=self.services)
        return result.exit_code, result.output

    def config(self) -> tuple[Config, dict[str, Any]]:
        return team_jobs(load_config(self.path))


@pytest.fixture
def team(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Team:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "tenants.toml").write_text(TENANTS, encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[store]
url = "{pg_url}"
[paths]
mappings = "{REPO / "mappings"}"
jobs = "jobs"
rules = "{REPO / "mappings" / "lifecycle.toml"}"
[team]
enabled = true
""",
        encoding="utf-8",
    )
    mapping = load_mapping(REPO / "mappings" / "hubspot.toml")
    crms = {name: FakeCrm(mapping=mapping, connection=name) for name in ("acme", "globex")}
    for crm in crms.values():
        populate(crm, 12)
    for name in crms:
        monkeypatch.setenv(f"CRMSYNC_TEST_TOKEN_{name.upper()}", "pat-secret")
    return Team(path, crms, Services(clients=lambda _config, name: crms[name].client(), clock=lambda: NOW))


@pytest.fixture
def worker_app(team: Team, pg_store: Store) -> Iterator[Any]:
    config, jobs = team.config()
    app, _ = team_app(config, pg_store, jobs, team.services.clients, team.services.clock, schedule=False)
    ensure_queue_schema(app, pg_store)
    yield app


def drain(app: Any) -> None:
    run_worker(app, name="test-worker", wait=False, install_signal_handlers=False, listen_notify=False)


def test_run_queues_once_and_a_worker_runs_it(team: Team, worker_app: Any, pg_store: Store) -> None:
    code, output = team.cli("run", "acme", "--json")
    assert code == 0 and json.loads(output)["status"] == "queued"
    code, output = team.cli("run", "acme", "--json")
    assert code == 0 and json.loads(output) == {"status": "already_queued", "job": "acme", "queue_id": None}
    code, output = team.cli("run", "acme", "--full")
    assert code == 5 and "already waits in the queue" in output
    assert recent_runs(pg_store, "acme") == []
    drain(worker_app)
    (run,) = recent_runs(pg_store, "acme")
    assert run.status == "completed"
    assert team.crms["acme"].writes and not team.crms["globex"].writes
    # a tenant's changes and funnel, by its job's name
    code, output = team.cli("history", "--job", "acme", "--json")
    assert code == 0 and output.strip() and all(json.loads(row)["job"] == "acme" for row in output.splitlines())
    code, output = team.cli("history", "--job", "globex", "--json")
    assert code == 0 and not output.strip()
    code, _ = team.cli("report", "--job", "acme")
    assert code == 0
    code, output = team.cli("status", "--json")  # the tenants' jobs are listed beside the job files'
    assert code == 0 and {"acme", "globex"} <= {job["job"] for job in json.loads(output)}


def test_run_inline_runs_here_in_team_mode(team: Team, pg_store: Store) -> None:
    code, output = team.cli("run", "globex", "--inline", "--json")
    assert code == 0, output
    assert json.loads(output)["status"] == "completed"
    assert recent_runs(pg_store, "globex")[0].status == "completed"


def test_a_silent_workers_run_is_taken_over(team: Team, worker_app: Any, pg_store: Store) -> None:
    # given a run of acme taken by a worker on this host that was then SIGKILLed: its heartbeat stops,
    # and the job's lease in the store names a process that no longer exists
    with worker_app.open():
        defer_run(worker_app, "acme")
    acquire(pg_store, "acme", f"{socket.gethostname()}:999999999:dead", ttl=timedelta(minutes=5), clock=lambda: NOW)

    async def taken_then_silent() -> list[Any]:
        async with worker_app.open_async():
            manager = worker_app.job_manager
            worker = await manager.register_worker()
            assert await manager.fetch_job(queues=[QUEUE], worker_id=worker) is not None
            # the next tick queues a run behind it, which waits: the job's lock is held by the taken run
            await worker_app.tasks[RUN_TASK].configure(lock="acme", queueing_lock="acme", task_kwargs={"job": "acme"}).defer_async()  # fmt: skip
            assert await manager.fetch_job(queues=[QUEUE], worker_id=worker) is None
            assert await requeue_stalled(worker_app) == []
            with pg_store.begin() as db:
                db.execute(text("UPDATE procrastinate_workers SET last_heartbeat = now() - interval '5 minutes'"))
            return await requeue_stalled(worker_app)

    # when the recovery runs, then the dead run is closed and the waiting tick run gives way to one that goes
    # before every other waiting run
    (deferred,) = asyncio.run(taken_then_silent())
    assert deferred.queue_id is not None
    with pg_store.begin() as db:
        waiting = db.execute(text("SELECT priority FROM procrastinate_jobs WHERE status = 'todo'")).scalars().all()
    assert waiting == [RECOVERY_PRIORITY]
    # and the next worker completes the job, taking over the dead process's lease at once
    drain(worker_app)
    (run,) = recent_runs(pg_store, "acme")
    assert run.status == "completed"
    assert team.crms["acme"].writes
    with pg_store.begin() as db:
        statuses = db.execute(text("SELECT status, count(*) FROM procrastinate_jobs GROUP BY status")).all()
    assert dict(statuses) == {"failed": 1, "cancelled": 1, "succeeded": 1}


def test_a_lease_held_elsewhere_sends_the_run_back_to_the_queue(team: Team, worker_app: Any, pg_store: Store) -> None:
    # given a job whose lease a live process on another host holds (its lease has not expired)
    acquire(pg_store, "acme", "other-host:1:alive", ttl=timedelta(hours=1), clock=lambda: NOW)
    with worker_app.open():
        defer_run(worker_app, "acme")
    drain(worker_app)
    # then nothing ran, and one run of the job waits, due later
    assert recent_runs(pg_store, "acme") == []
    with pg_store.begin() as db:
        rows = db.execute(
            text("SELECT status, coalesce(scheduled_at > now(), false) FROM procrastinate_jobs ORDER BY id")
        ).all()
    assert [tuple(row) for row in rows] == [("succeeded", False), ("todo", True)]


def test_finished_queue_jobs_are_pruned_after_two_days(team: Team, worker_app: Any, pg_store: Store) -> None:
    # given two runs done, one of them finished three days ago (by its queue events), and one waiting
    for job in ("acme", "globex"):
        with worker_app.open():
            defer_run(worker_app, job)
        drain(worker_app)
    with worker_app.open():
        defer_run(worker_app, "acme")
    with pg_store.begin() as db:
        db.execute(text(
            "UPDATE procrastinate_events SET at = at - interval '3 days' WHERE job_id = "
            "(SELECT id FROM procrastinate_jobs WHERE args->>'job' = 'acme' AND status = 'succeeded')"
        ))  # fmt: skip

    async def prune() -> None:
        async with worker_app.open_async():
            await prune_finished(worker_app)

    asyncio.run(prune())
    # then only the old finished one is gone
    with pg_store.begin() as db:
        left = db.execute(text("SELECT args->>'job', status FROM procrastinate_jobs ORDER BY id")).all()
    assert [tuple(row) for row in left] == [("globex", "succeeded"), ("acme", "todo")]
    assert [run.status for run in recent_runs(pg_store, "acme")] == ["completed"]  # the store's history stays
