"""Failures: recorded as failed runs with one safe line, never the end of the scheduler or of the job's lock."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from connector.config import Config
from connector.errors import ConfigError, QuotaExhausted
from connector.jobs import Job, find_job, load_jobs
from connector.scheduler import Scheduler
from connector.store import LeaseHeld, Store, acquire
from connector.store.tables import leases, runs
from connector.sync.redact import safe_message
from tests.fakes import FakeCrm
from tests.sync.conftest import JOB, NOW, Runner, make_config, new_crm, populate

PERSON = "anne.martin@example.fr"


def run_rows(store: Store) -> list[tuple[str, str, str | None]]:
    with store.begin() as db:
        rows = db.execute(select(runs.c.job, runs.c.status, runs.c.error).order_by(runs.c.started_at)).all()
    return [tuple(row) for row in rows]


def lease_rows(store: Store) -> list[Any]:
    with store.begin() as db:
        return list(db.execute(select(leases.c.job, leases.c.owner)).all())


# -- what a failed run stores --------------------------------------------------------------------------------


class _Model(BaseModel):
    email: int


def _validation_error() -> Exception:
    try:
        _Model(email=PERSON)  # type: ignore[arg-type]
    except Exception as error:
        return error
    raise AssertionError("no error")


SQL_PARAMS = IntegrityError(
    "INSERT INTO contacts (crm_id, email) VALUES (?, ?)",
    ("101", PERSON),
    sqlite3.IntegrityError(f"UNIQUE constraint failed: contacts.email\nDETAIL: Key (email)=({PERSON}) exists"),
)


@pytest.mark.parametrize(
    ("error", "stored"),
    [
        pytest.param(SQL_PARAMS, "IntegrityError: IntegrityError: UNIQUE constraint failed: contacts.email", id="sql"),
        pytest.param(
            OperationalError("SELECT 1", {}, sqlite3.OperationalError('invalid input syntax: "' + PERSON + '"')),
            'OperationalError: OperationalError: invalid input syntax: "…"',
            id="quoted-literal-in-a-driver-message",
        ),
        pytest.param(ValueError(f"bad value {PERSON}"), "ValueError at ", id="unknown-error-says-where-only"),
        pytest.param(_validation_error(), "ValidationError: 1 validation error(s) at email", id="validation"),
        pytest.param(
            QuotaExhausted("HubSpot /crm/v3/objects/contacts/batch/update: HTTP 429\nsecond line"),
            "QuotaExhausted: HubSpot /crm/v3/objects/contacts/batch/update: HTTP 429; second line",
            id="ours-on-one-line",
        ),
        pytest.param(
            FileNotFoundError(2, "No such file or directory", "/etc/crmsync/ca.pem"),
            "FileNotFoundError: No such file or directory: /etc/crmsync/ca.pem",
            id="os-error",
        ),
    ],
)
def test_a_stored_error_is_one_line_without_record_content(error: Exception, stored: str) -> None:
    message = safe_message(error)

    assert message.startswith(stored)
    assert PERSON not in message and "\n" not in message and "INSERT" not in message


def test_given_a_database_error_carrying_record_content_when_the_run_fails_then_the_store_and_summary_hold_none_of_it(
    runner: Runner, crm: FakeCrm, store: Store
) -> None:
    crm.raise_on_write = SQL_PARAMS

    with pytest.raises(IntegrityError):
        runner()

    [(_job, status, error)] = run_rows(store)
    assert status == "failed"
    assert error is not None and error.startswith("IntegrityError")
    assert PERSON not in error and "INSERT" not in error and "101" not in error


def test_given_a_secret_shorter_than_four_characters_when_it_appears_in_an_error_then_it_is_scrubbed(
    runner: Runner, crm: FakeCrm, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRMSYNC_TEST_HUBSPOT_TOKEN", "zq7")
    crm.raise_on_write = QuotaExhausted("daily limit reached for token zq7")

    with pytest.raises(QuotaExhausted):
        runner()

    [(_job, _status, error)] = run_rows(store)
    assert error == "QuotaExhausted: daily limit reached for token ***"


def test_given_a_broken_rules_file_when_the_job_runs_then_a_failed_run_names_the_file_and_key(
    config: Config, store: Store, crm: FakeCrm
) -> None:
    broken = config.base_dir / "broken-rules.toml"
    broken.write_text('version = 1\nregression = "sometimes"\n')
    job = Job(name="hubspot-lifecycle", connections=["hubspot"], rules=broken.name)

    with pytest.raises(ConfigError):
        Runner(config, store, {"hubspot": crm})(job)

    [(_job, status, error)] = run_rows(store)
    assert status == "failed"
    assert error is not None and "broken-rules.toml" in error and "\n" not in error
    assert lease_rows(store) == []


def test_given_recording_the_failed_run_fails_when_the_run_fails_then_the_lock_is_released_anyway(
    runner: Runner, crm: FakeCrm, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm.raise_on_write = QuotaExhausted("daily limit reached")

    def store_down(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("UPDATE runs", {}, sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr(store.runs, "finish", store_down)

    with pytest.raises(QuotaExhausted):  # the run's own error, not the recording's
        runner()

    assert lease_rows(store) == []


# -- the scheduler -----------------------------------------------------------------------------------------


def _ticking(stop: threading.Event, clock: dict[str, datetime], ticks: int, outcomes: list[tuple[str, str]]) -> Any:
    def on_run(job: Job, _result: object, outcome: str) -> None:
        outcomes.append((job.name, outcome))
        if len(outcomes) >= ticks:
            stop.set()

    def wait(seconds: float) -> bool:
        clock["now"] += timedelta(seconds=seconds)
        return stop.is_set()

    return on_run, wait


def test_given_jobs_that_throw_anything_when_the_scheduler_ticks_then_each_failure_is_a_failed_run_and_the_rest_go_on(
    tmp_path: Path, store_url: str, store: Store
) -> None:
    config = make_config(tmp_path, store_url)
    (tmp_path / "broken-rules.toml").write_text('version = 1\nregression = "sometimes"\n')
    crm = new_crm()
    populate(crm, 6)
    good = Job(name="good", connections=["hubspot"], schedule="*/15 * * * *")
    rules = Job(name="rules", connections=["hubspot"], schedule="*/15 * * * *", rules="broken-rules.toml")
    boom = Job(name="boom", connections=["salesforce"], schedule="*/15 * * * *")

    def clients(_config: Config, name: str) -> FakeCrm:
        if name == "salesforce":
            raise OperationalError("SELECT", {}, sqlite3.OperationalError("database is locked"))
        return crm.client()

    stop = threading.Event()
    clock = {"now": datetime(2026, 11, 20, 9, 7, tzinfo=UTC)}
    outcomes: list[tuple[str, str]] = []
    on_run, wait = _ticking(stop, clock, 6, outcomes)
    scheduler = Scheduler(
        config,
        store,
        jobs={job.name: job for job in (good, rules, boom)},
        clients=clients,
        clock=lambda: clock["now"],
        stop=stop,
        wait=wait,
        on_run=on_run,
    )

    scheduler.run_forever()

    assert sorted(job for job, _ in outcomes) == ["boom", "boom", "good", "good", "rules", "rules"]
    assert [o for j, o in outcomes if j == "good"] == ["completed", "completed"]
    assert all(o.startswith("failed: ConfigError") and "broken-rules.toml" in o for j, o in outcomes if j == "rules")
    assert all(o.startswith("failed: OperationalError") for j, o in outcomes if j == "boom")
    recorded = run_rows(store)
    assert [status for job, status, _ in recorded if job == "rules"] == ["failed", "failed"]
    assert [status for job, status, _ in recorded if job == "boom"] == ["failed", "failed"]
    assert all(error and "broken-rules.toml" in error for job, _, error in recorded if job == "rules")
    assert lease_rows(store) == []


def test_a_schedule_that_never_fires_leaves_the_scheduler_running_the_other_jobs(
    tmp_path: Path, store_url: str, store: Store
) -> None:
    crm = new_crm()
    populate(crm, 6)
    never = Job.model_construct(**{**JOB.model_dump(), "name": "never", "schedule": "0 0 31 2 *"})
    stop = threading.Event()
    clock = {"now": datetime(2026, 11, 20, 9, 7, tzinfo=UTC)}
    outcomes: list[tuple[str, str]] = []
    on_run, wait = _ticking(stop, clock, 1, outcomes)
    scheduler = Scheduler(
        make_config(tmp_path, store_url),
        store,
        jobs={"never": never, JOB.name: JOB},
        clients=lambda _config, _name: crm.client(),
        clock=lambda: clock["now"],
        stop=stop,
        wait=wait,
        on_run=on_run,
    )

    scheduler.run_forever()

    assert outcomes == [(JOB.name, "completed")]


# -- job files -------------------------------------------------------------------------------------------------


def _job_file(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.toml").write_text(f'name = "{name}"\nconnections = ["hubspot"]\n{body}')


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param(
            'schedule = "0 0 31 2 *"\n',
            "schedule: Value error, the schedule '0 0 31 2 *' never fires",
            id="cron-never-fires",
        ),
        pytest.param('write_back = "yes"\n', "write_back: Input should be a valid boolean", id="write-back-yes"),
        pytest.param("dry_run = 1\n", "dry_run: Input should be a valid boolean", id="dry-run-one"),
    ],
)
def test_a_job_file_with_a_bad_value_is_one_problem_with_file_and_key(tmp_path: Path, body: str, problem: str) -> None:
    _job_file(tmp_path, "bad", body)
    _job_file(tmp_path, "good", "")

    jobs, problems = load_jobs(tmp_path)

    assert list(jobs) == ["good"]
    [found] = problems
    assert str(found).startswith(f"{tmp_path / 'bad.toml'}: {problem}")


def test_a_job_file_that_is_not_utf8_breaks_only_itself(tmp_path: Path) -> None:
    (tmp_path / "latin.toml").write_bytes(
        'name = "latin"\nconnections = ["hubspot"]\ndescription = "é"\n'.encode("latin-1")
    )
    _job_file(tmp_path, "good", "")

    jobs, problems = load_jobs(tmp_path)

    assert list(jobs) == ["good"]
    assert len(problems) == 1 and "latin.toml" in str(problems[0]) and "UTF-8" in str(problems[0])
    with pytest.raises(ConfigError, match="not UTF-8"):
        find_job(tmp_path, "latin")


@pytest.mark.parametrize("name", ["../mappings/lifecycle", "/etc/passwd", "Good", "a/b", "..", ""])
def test_a_job_is_found_by_name_never_by_path(tmp_path: Path, name: str) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (tmp_path / "mappings").mkdir()
    _job_file(tmp_path / "mappings", "lifecycle", "")

    with pytest.raises(ConfigError, match="not a job name"):
        find_job(jobs, name)


def test_job_file_keys_map_to_one_write_mode() -> None:
    def mode(**flags: bool) -> str:
        return Job(name="j", connections=["c"], **flags).write_mode.value

    assert mode() == "write"
    assert mode(write_back=False) == "record_only"
    assert mode(dry_run=True) == mode(write_back=False, dry_run=True) == "dry_run"


# -- leases of dead processes ----------------------------------------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _held_by(store: Store, owner: str) -> None:
    with store.begin() as db:
        db.execute(
            leases.insert().values(
                job="job", owner=owner, acquired_at=NOW, heartbeat_at=NOW, expires_at=NOW + timedelta(minutes=5)
            )
        )


def test_a_lease_held_by_a_dead_process_on_this_host_is_taken_over_at_once(store: Store) -> None:
    _held_by(store, f"{socket.gethostname()}:{_dead_pid()}:deadbeef")

    acquire(store, "job", "me", ttl=timedelta(minutes=5), clock=lambda: NOW + timedelta(seconds=1))

    assert lease_rows(store) == [("job", "me")]


@pytest.mark.parametrize(
    "owner",
    [
        pytest.param("another-host.example:12345:cafe", id="another-host-waits-for-expiry"),
        pytest.param(f"{socket.gethostname()}:{os.getpid()}:cafe", id="a-live-process-on-this-host"),
        pytest.param("scheduler-1", id="an-owner-that-names-no-process"),
    ],
)
def test_a_lease_held_by_a_live_or_unknowable_holder_waits_for_its_expiry(store: Store, owner: str) -> None:
    _held_by(store, owner)

    with pytest.raises(LeaseHeld):
        acquire(store, "job", "me", ttl=timedelta(minutes=5), clock=lambda: NOW + timedelta(seconds=1))
    acquire(store, "job", "me", ttl=timedelta(minutes=5), clock=lambda: NOW + timedelta(minutes=6))


# -- the run summary and dry runs -----------------------------------------------------------------------------


def test_contacts_changed_counts_each_contact_once_however_many_pages_it_is_on(
    tmp_path: Path, store_url: str, store: Store
) -> None:
    crm = new_crm(page_size=7, activity_page_size=2)
    populate(crm, 30)
    runner = Runner(make_config(tmp_path, store_url), store, {"hubspot": crm})

    first = runner()
    crm.add_activity("x-1", "demo_request", NOW - timedelta(days=1), ["c0003"])
    crm.add_activity("x-2", "demo_request", NOW - timedelta(days=1), ["c0003"])
    crm.add_activity("x-3", "meeting_booked", NOW - timedelta(days=1), ["c0003", "c0009"])
    second = runner()

    assert first.counts["hubspot"].contacts_changed == 30
    assert second.counts["hubspot"].contacts_changed == 2
    assert json.loads(json.dumps(second.summary()))["connections"]["hubspot"]["contacts_changed"] == 2


def test_a_dry_run_leaves_the_store_as_it_found_it(runner: Runner, store: Store) -> None:
    def tables() -> dict[str, int]:
        with store.begin() as db:
            return {
                table: db.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in (
                    "contacts",
                    "activities",
                    "job_contacts",
                    "pending_writes",
                    "checkpoints",
                    "stage_changes",
                )
            }

    before = tables()
    dry = runner(dry_run=True)

    assert dry.status == "completed" and len(dry.planned) == 33
    assert tables() == before == dict.fromkeys(before, 0)
    [(_job, status, _error)] = run_rows(store)
    assert status == "completed"
    with store.begin() as db:
        assert db.execute(select(runs.c.dry_run)).scalar_one() is True
    assert lease_rows(store) == []
    # and a real run after it does everything
    assert runner().counts["hubspot"].written == 33
