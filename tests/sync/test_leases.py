"""Leases and the scheduler: one run of a job at a time, dead holders expire, SIGTERM stops cleanly."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from connector.crm import StageUpdate, WriteResult
from connector.jobs import Job
from connector.progress import ProgressEvent
from connector.scheduler import Scheduler, next_run
from connector.store import LeaseHeld, LeaseLost, Store, acquire, open_store
from connector.store.tables import leases, runs
from connector.sync import utc_now
from tests.fakes import FakeCrm
from tests.sync.conftest import JOB, NOW, Runner, history, make_config, new_crm, populate


def test_a_held_lease_refuses_a_second_holder_until_it_expires(store: Store) -> None:
    clock = {"now": NOW}
    ttl = timedelta(seconds=30)
    first = acquire(store, "job", "a", ttl=ttl, clock=lambda: clock["now"])

    with pytest.raises(LeaseHeld) as held:
        acquire(store, "job", "b", ttl=ttl, clock=lambda: clock["now"])
    assert held.value.owner == "a"

    clock["now"] = NOW + timedelta(seconds=20)
    first.heartbeat()  # the holder is alive: renewed
    clock["now"] = NOW + timedelta(seconds=45)
    with pytest.raises(LeaseHeld):
        acquire(store, "job", "b", ttl=ttl, clock=lambda: clock["now"])

    clock["now"] = NOW + timedelta(seconds=51)  # the holder died after its last heartbeat
    second = acquire(store, "job", "b", ttl=ttl, clock=lambda: clock["now"])
    with pytest.raises(LeaseLost):
        first.heartbeat()
    second.release()
    acquire(store, "job", "c", ttl=ttl, clock=lambda: clock["now"]).release()


def test_a_run_that_lost_its_lease_commits_nothing_more(runner: Runner, store: Store) -> None:
    def steal(event: ProgressEvent) -> None:
        if event.phase == "contacts":
            with store.begin() as db:
                db.execute(update(leases).values(owner="someone-else"))

    with pytest.raises(LeaseLost):
        runner(progress=steal)

    assert history(store) == []
    with store.begin() as db:
        assert db.execute(select(runs.c.status)).scalar_one() == "failed"


def test_two_schedulers_on_one_job_never_overlap(tmp_path: Path, store_url: str) -> None:
    crm = new_crm(write_batch_size=5, write_delay=0.02)
    populate(crm, 30)
    config = make_config(tmp_path, store_url)
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(2, timeout=60)

    def worker(name: str) -> None:
        store = open_store(store_url)  # its own engine, like another process
        scheduler = Scheduler(
            config,
            store,
            jobs={JOB.name: JOB},
            clients=lambda _config, _name: crm.client(),
            clock=utc_now,
            owner=name,
            on_run=lambda _job, _result, outcome: _record(outcome),
        )
        for _ in range(3):
            barrier.wait()
            scheduler.run_now(JOB)
        store.close()

    def _record(outcome: str) -> None:
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=worker, args=(f"scheduler-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert crm.max_sessions_open == 1
    assert "skipped" in outcomes
    assert outcomes.count("completed") + outcomes.count("skipped") == 6
    store = open_store(store_url)
    with store.begin() as db:
        spans = sorted(db.execute(select(runs.c.started_at, runs.c.finished_at)).all())
    store.close()
    for (_start, end), (next_start, _end) in itertools.pairwise(spans):
        assert end <= next_start
    assert {crm.stage_of(f"c{i:04d}") for i in range(30)} >= {"suspect", "lead", "mql", "sql", "meeting"}


def test_the_scheduler_runs_each_job_at_its_cron_ticks(tmp_path: Path, store_url: str, store: Store) -> None:
    crm = new_crm()
    populate(crm, 6)
    clock = {"now": datetime(2026, 11, 20, 9, 7, tzinfo=UTC)}
    stop = threading.Event()
    started: list[datetime] = []

    def wait(seconds: float) -> bool:
        clock["now"] += timedelta(seconds=seconds)
        return stop.is_set()

    def on_run(_job: Job, _result: object, outcome: str) -> None:
        started.append(clock["now"])
        if len(started) == 3:
            stop.set()

    scheduler = Scheduler(
        make_config(tmp_path, store_url),
        store,
        jobs={JOB.name: JOB},
        clients=lambda _config, _name: crm.client(),
        clock=lambda: clock["now"],
        stop=stop,
        wait=wait,
        on_run=on_run,
    )
    scheduler.run_forever()

    assert [t.strftime("%H:%M") for t in started] == ["09:15", "09:30", "09:45"]
    assert next_run(JOB, datetime(2026, 11, 20, 9, 59, tzinfo=UTC)).minute == 0


def test_sigterm_finishes_the_current_batch_commits_and_the_next_run_completes(
    tmp_path: Path, store_url: str, store: Store
) -> None:
    crm = new_crm(write_batch_size=5)
    populate(crm, 30)
    runner = Runner(make_config(tmp_path, store_url), store, {"hubspot": crm})
    stop = threading.Event()
    original_write = crm.write_stages

    def term_during_first_write(updates: Sequence[StageUpdate]) -> list[WriteResult]:
        stop.set()  # SIGTERM arrives while the CRM answers the first batch
        return original_write(updates)

    crm.write_stages = term_during_first_write  # type: ignore[method-assign]
    stopped = runner(stop=stop)
    crm.write_stages = original_write  # type: ignore[method-assign]

    assert stopped.status == "stopped"
    assert stopped.counts["hubspot"].written == 5  # the batch in flight finished and was recorded, no other sent
    assert len(history(store)) == 5
    finished = runner()
    assert finished.status == "completed"
    clean = new_crm(write_batch_size=5)
    populate(clean, 30)
    clean_store = open_store(f"sqlite:///{tmp_path / 'clean.db'}")
    Runner(make_config(tmp_path, "sqlite://"), clean_store, {"hubspot": clean})()
    assert crm.snapshot() == clean.snapshot()
    assert history(store) == history(clean_store)


def test_jobs_folder_problems_stop_the_scheduler_with_every_problem(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path, "sqlite://")
    (config.jobs_dir / "a.toml").write_text('name = "a"\nconnections = ["hubspot"]\nschedule = "every minute"\n')
    (config.jobs_dir / "b.toml").write_text('name = "c"\nconnections = ["hubspot"]\n')

    from connector.errors import ConfigError

    with pytest.raises(ConfigError) as error:
        Scheduler(config, store, clients=lambda _config, _name: None)  # type: ignore[arg-type,return-value]
    text = str(error.value)
    assert "a.toml: schedule" in text and "b.toml: name" in text


_ = FakeCrm


def test_a_killed_holder_not_yet_reaped_counts_as_gone(store: Store) -> None:
    """A SIGKILLed holder whose parent has not reaped it (a zombie) still answers signal 0; its lease is taken
    over at once all the same, not after the TTL."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    from connector.store.leases import process_alive

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert process_alive(child.pid)
        acquire(store, "job", f"{socket.gethostname()}:{child.pid}:dead0000", ttl=timedelta(minutes=5), clock=utc_now)
        os.kill(child.pid, signal.SIGKILL)
        # not reaped: wait for the kernel to make it a zombie, without waitpid
        for _ in range(200):
            if not process_alive(child.pid):
                break
            threading.Event().wait(0.01)
        assert os.path.exists(f"/proc/{child.pid}"), "still unreaped"
        assert not process_alive(child.pid)
        taken = acquire(store, "job", "b", ttl=timedelta(minutes=5), clock=utc_now)
        taken.release()
    finally:
        child.kill()
        child.wait()
