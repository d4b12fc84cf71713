"""Team mode's wiring on procrastinate's in-memory connector: periodic deferral, locks, retries, dropped jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from procrastinate import testing
from procrastinate.periodic import PeriodicDeferrer

from connector.jobs import Job
from connector.store import LeaseHeld
from connector.team.queue import (
    QUEUE,
    RECOVER_TASK,
    RECOVERY_PRIORITY,
    RUN_TASK,
    build_app,
    defer_run,
    requeue_stalled,
)

JOBS = {
    "acme": Job(name="acme", connections=["acme"], schedule="*/5 * * * *"),
    "globex": Job(name="globex", connections=["globex"], schedule="* * * * *"),
}


class Calls:
    """A runner that records what it ran; raises ``error`` first ``failures`` times."""

    def __init__(self, error: BaseException | None = None, failures: int = 0) -> None:
        self.ran: list[tuple[str, bool]] = []
        self.error = error
        self.failures = failures

    def __call__(self, job: Job, *, full: bool = False, dry_run: bool | None = None) -> Any:
        if self.error is not None and self.failures > 0:
            self.failures -= 1
            raise self.error
        self.ran.append((job.name, full))
        return None


@pytest.fixture
def connector() -> testing.InMemoryConnector:
    return testing.InMemoryConnector()


def jobs_of(connector: testing.InMemoryConnector, task: str = RUN_TASK) -> list[dict[str, Any]]:
    return [job for job in connector.jobs.values() if job["task_name"] == task]


def drain(app: Any) -> None:
    app.run_worker(queues=[QUEUE], wait=False, install_signal_handlers=False, listen_notify=False)


@pytest.fixture
def opened(connector: testing.InMemoryConnector) -> Iterator[tuple[Any, Calls]]:
    calls = Calls()
    app = build_app(connector, JOBS, calls)
    with app.open():
        yield app, calls


@pytest.fixture
def queued(connector: testing.InMemoryConnector) -> Iterator[tuple[Any, Calls]]:
    """An app without periodic deferral: the worker runs only what a test queues (no tick of the wall clock)."""
    calls = Calls()
    app = build_app(connector, JOBS, calls, schedule=False)
    with app.open():
        yield app, calls


def test_each_job_is_deferred_on_its_own_cron_and_stalled_runs_every_fifteen_seconds(opened: tuple[Any, Calls]) -> None:
    app, _ = opened
    crons = {periodic_id: task.cron for (_, periodic_id), task in app.periodic_registry.periodic_tasks.items()}
    assert crons == {"acme": "*/5 * * * *", "globex": "* * * * *", "recover": "* * * * * */15"}
    kwargs = {
        periodic_id: task.configure_kwargs
        for (name, periodic_id), task in app.periodic_registry.periodic_tasks.items()
        if name == RUN_TASK
    }
    assert {k: (v["lock"], v["queueing_lock"]) for k, v in kwargs.items()} == {
        "acme": ("acme", "acme"),
        "globex": ("globex", "globex"),
    }


def test_two_workers_defer_one_run_per_tick(opened: tuple[Any, Calls], connector: testing.InMemoryConnector) -> None:
    # given two workers' periodic deferrers at the same tick (12:05, when both jobs are due)
    app, _ = opened
    tick = datetime(2026, 12, 2, 12, 5, 10, tzinfo=UTC).timestamp()

    async def both() -> None:
        for _worker in range(2):
            deferrer = PeriodicDeferrer(app.periodic_registry)
            await deferrer.defer_jobs(deferrer.get_previous_tasks(at=tick))

    asyncio.run(both())
    # then each job was queued once, with its tick
    queued = sorted((job["args"]["job"], job["args"]["timestamp"]) for job in jobs_of(connector))
    minute = int(datetime(2026, 12, 2, 12, 5, tzinfo=UTC).timestamp())
    assert queued == [("acme", minute), ("globex", minute)]


def test_a_waiting_run_absorbs_the_next_tick_and_a_manual_run(
    opened: tuple[Any, Calls], queued: tuple[Any, Calls], connector: testing.InMemoryConnector
) -> None:
    scheduling, _ = opened
    app, calls = queued
    first = defer_run(app, "acme")
    assert first.queue_id is not None
    # a second request while the first waits adds nothing (the tick is missed, the queued run covers it)
    assert defer_run(app, "acme").queue_id is None
    tick = int(datetime(2026, 12, 2, 12, 10, tzinfo=UTC).timestamp())
    periodic = scheduling.periodic_registry.periodic_tasks[(RUN_TASK, "acme")]
    asyncio.run(PeriodicDeferrer(scheduling.periodic_registry).defer_jobs([(periodic, tick)]))
    assert len([j for j in jobs_of(connector) if j["args"]["job"] == "acme"]) == 1
    # once it ran, a new one can be queued
    drain(app)
    assert calls.ran == [("acme", False)]
    assert defer_run(app, "acme", full=True).queue_id is not None
    drain(app)
    assert calls.ran == [("acme", False), ("acme", True)]


def test_runs_of_one_job_never_overlap(queued: tuple[Any, Calls]) -> None:
    # given a run of acme in progress (taken by a worker) and another one queued behind it
    app, _ = queued
    manager = app.job_manager

    def defer(job: str) -> Any:
        return app.tasks[RUN_TASK].configure(lock=job, queueing_lock=job, task_kwargs={"job": job}).defer_async()

    async def scenario() -> tuple[Any, Any, Any]:
        worker = await manager.register_worker()
        await defer("acme")
        running = await manager.fetch_job(queues=[QUEUE], worker_id=worker)
        await defer("acme")
        # then no worker takes the second while the first holds the job's lock; another job's run is taken
        blocked = await manager.fetch_job(queues=[QUEUE], worker_id=worker)
        await defer("globex")
        other = await manager.fetch_job(queues=[QUEUE], worker_id=worker)
        return running, blocked, other

    running, blocked, other = asyncio.run(scenario())
    assert running is not None and running.lock == "acme"
    assert blocked is None
    assert other is not None and other.lock == "globex"


def test_a_run_that_finds_the_lease_held_is_queued_again_later(connector: testing.InMemoryConnector) -> None:
    # given a job whose lease a dead worker on another host still holds
    calls = Calls(LeaseHeld("acme", "other-host:1:x", datetime(2026, 12, 2, tzinfo=UTC)), failures=1)
    app = build_app(connector, JOBS, calls, schedule=False)
    with app.open():
        defer_run(app, "acme")
        drain(app)
        # then the run ends and a new one waits, due after the retry delay
        first, again = sorted(jobs_of(connector), key=lambda job: job["id"])
        assert first["status"] == "succeeded" and calls.ran == []
        assert again["status"] == "todo" and again["lock"] == again["queueing_lock"] == "acme"
        assert again["scheduled_at"] > datetime.now(UTC) + timedelta(seconds=5)


def test_a_run_of_a_job_that_no_longer_exists_is_dropped(
    queued: tuple[Any, Calls], connector: testing.InMemoryConnector
) -> None:
    app, calls = queued
    defer_run(app, "gone")
    drain(app)
    (job,) = jobs_of(connector)
    assert job["status"] == "succeeded" and calls.ran == []


def test_runs_of_a_silent_worker_go_back_to_the_queue(
    queued: tuple[Any, Calls], connector: testing.InMemoryConnector
) -> None:
    # given a run taken by a worker that then stopped sending heartbeats
    app, calls = queued
    defer_run(app, "acme")

    async def take_and_fall_silent() -> list[Any]:
        worker = await app.job_manager.register_worker()
        await app.job_manager.fetch_job(queues=[QUEUE], worker_id=worker)
        connector.workers[worker] = datetime.now(UTC) - timedelta(minutes=5)
        return await requeue_stalled(app)

    requeued = asyncio.run(take_and_fall_silent())
    # then the recovery closes it and queues the job again, and the next worker runs it
    assert len(requeued) == 1 and requeued[0].queue_id is not None
    drain(app)
    assert calls.ran == [("acme", False)]
    assert {job["task_name"] for job in connector.jobs.values()} <= {RUN_TASK, RECOVER_TASK}


def test_a_dead_workers_job_goes_before_the_waiting_ticks(
    queued: tuple[Any, Calls], connector: testing.InMemoryConnector
) -> None:
    # given a run of acme taken by a worker that fell silent, then a backlog: globex's tick, then acme's
    app, calls = queued
    defer_run(app, "acme")

    async def scenario() -> list[Any]:
        worker = await app.job_manager.register_worker()
        await app.job_manager.fetch_job(queues=[QUEUE], worker_id=worker)
        for job in ("globex", "acme"):  # acme's waits behind the dead run's lock and behind globex's
            await app.tasks[RUN_TASK].configure(lock=job, queueing_lock=job, task_kwargs={"job": job}).defer_async()
        connector.workers[worker] = datetime.now(UTC) - timedelta(minutes=5)
        return await requeue_stalled(app)

    (deferred,) = asyncio.run(scenario())
    # then acme's waiting run gave way to one of the recovery's priority, which the next worker takes first
    assert deferred.queue_id is not None
    statuses = sorted((job["args"]["job"], job["status"], job["priority"]) for job in jobs_of(connector))
    assert statuses == [
        ("acme", "cancelled", 0),
        ("acme", "failed", 0),
        ("acme", "todo", RECOVERY_PRIORITY),
        ("globex", "todo", 0),
    ]
    drain(app)
    assert calls.ran == [("acme", False), ("globex", False)]
