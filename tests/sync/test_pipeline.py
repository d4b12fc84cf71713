"""The sync pipeline against a fake CRM: given a CRM's content, when a job runs, then..."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from connector.config import Config
from connector.crm import StageUpdate, WriteResult
from connector.errors import QuotaExhausted
from connector.jobs import Job
from connector.progress import ProgressEvent
from connector.store import Store
from tests.fakes import FakeCrm
from tests.sync.conftest import (
    ICP,
    JOB,
    NOW,
    REPO,
    Runner,
    history,
    make_config,
    new_crm,
    open_dead_letters,
    populate,
)

EXPECTED = {0: None, 1: "suspect", 2: "lead", 3: "mql", 4: "sql", 5: "meeting"}


def test_given_a_fresh_store_when_the_job_runs_then_every_contact_gets_its_rung_and_one_history_row(
    runner: Runner, crm: FakeCrm, store: Store
) -> None:
    result = runner()

    assert result.status == "completed"
    for i in range(40):
        assert crm.stage_of(f"c{i:04d}") == EXPECTED[i % 6]
    assert crm.people["c0004"].values["lifecyclestage"] == "salesqualifiedlead"
    assert crm.people["c0003"].values["crmsync_stage_reason"].startswith("MQL: ")
    counts = result.counts["hubspot"]
    assert counts.contacts_read == 40
    assert counts.decided == 40
    assert counts.written == counts.changed == 40 - 7  # 7 contacts fit nothing
    assert len(history(store)) == counts.written
    # the vendor minimum: 40 contacts in pages of 100, 33 writes in one batch of 100
    assert crm.calls["contacts.write"] == 1


def test_given_a_synced_crm_when_nothing_changed_then_a_second_run_writes_nothing(
    runner: Runner, crm: FakeCrm, store: Store
) -> None:
    runner()
    before = history(store)
    writes = crm.calls["contacts.write"]

    again = runner()

    counts = again.counts["hubspot"]
    assert crm.calls["contacts.write"] == writes
    assert counts.written == counts.changed == 0
    # the echo of our own writes is recognised as ours: nothing to decide
    assert counts.decided == 0
    assert history(store) == before


def test_given_one_new_activity_when_the_job_runs_then_only_that_contact_is_decided_and_written(
    runner: Runner, crm: FakeCrm, store: Store
) -> None:
    runner()
    crm.add_activity("late-1", "demo_request", NOW - timedelta(days=1), ["c0003"], "Pricing form")

    result = runner()

    counts = result.counts["hubspot"]
    assert counts.decided == 1
    assert counts.written == 1
    assert crm.stage_of("c0003") == "sql"
    assert history(store)[-1][1] == "c0003" or any(row[1] == "c0003" and row[5] == "sql" for row in history(store))


def test_given_a_stage_a_person_set_higher_when_rules_give_less_then_it_is_kept(
    runner: Runner, crm: FakeCrm, store: Store
) -> None:
    crm.set_value("c0002", "crmsync_lifecycle_stage", "meeting")  # rules say lead

    runner()
    crm.add_activity("more-1", "content_download", NOW - timedelta(days=2), ["c0002"])
    runner()

    assert crm.stage_of("c0002") == "meeting"
    assert not [row for row in history(store) if row[1] == "c0002"]


def test_given_a_value_outside_the_ladder_when_the_job_runs_then_it_is_never_overwritten(
    runner: Runner, crm: FakeCrm, store: Store
) -> None:
    crm.set_value("c0003", "crmsync_lifecycle_stage", "partner")
    crm.set_value("c0004", "lifecyclestage", "customer")

    runner()

    assert crm.stage_of("c0003") == "partner"
    # HubSpot's own "customer" is beyond the ladder: it wins on every stage field, nothing is written
    assert crm.stage_of("c0004") is None
    assert crm.people["c0004"].values["lifecyclestage"] == "customer"


def test_given_a_protected_rung_when_the_job_runs_then_records_on_it_are_left_alone(
    tmp_path: Path, store: Store, store_url: str
) -> None:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    source = (REPO / "mappings" / "hubspot.toml").read_text()
    (mappings / "hubspot.toml").write_text(source.replace("protected = []", 'protected = ["lead"]', 1))
    crm = new_crm()
    crm.add_contact("p1", "p1@example.fr", company=ICP, stage_value="lead")
    for n in range(4):
        crm.add_activity(f"p1-{n}", "content_download", NOW - timedelta(days=n + 1), ["p1"])
    runner = Runner(make_config(tmp_path, store_url, mappings), store, {"hubspot": crm})

    result = runner()

    assert result.counts["hubspot"].decided == 1
    assert crm.stage_of("p1") == "lead"
    assert crm.writes == []


def test_given_activities_before_their_contact_when_the_contact_arrives_then_they_count(
    runner: Runner, crm: FakeCrm, store: Store
) -> None:
    for n in range(3):
        crm.add_activity(f"early-{n}", "content_download", NOW - timedelta(days=n + 1), ["late"])
    runner()
    crm.add_contact("late", "late@example.fr", company=ICP)

    runner()

    assert crm.stage_of("late") == "mql"


def test_given_a_rejected_record_when_fixed_and_retried_then_the_dead_letter_is_resolved(
    runner: Runner, crm: FakeCrm, store: Store
) -> None:
    crm.reject["c0003"] = ("VALIDATION_ERROR", "Property values were not valid")

    first = runner()

    assert first.status == "completed"
    assert first.counts["hubspot"].failed == 1
    assert open_dead_letters(store) == [("c0003", "VALIDATION_ERROR")]
    assert runner().counts["hubspot"].written == 0  # waits for a person, not retried blindly
    del crm.reject["c0003"]
    assert store.requeue_dead_letters() == {"hubspot-lifecycle": 1}

    retried = runner()

    assert retried.counts["hubspot"].written == 1
    assert crm.stage_of("c0003") == "mql"
    assert open_dead_letters(store) == []


def test_given_a_transient_failure_when_runs_follow_then_it_is_retried_after_backoff(
    runner: Runner, crm: FakeCrm, store: Store
) -> None:
    crm.transient["c0002"] = 1

    first = runner()
    assert first.counts["hubspot"].deferred == 1
    assert crm.stage_of("c0002") is None

    too_soon = runner()
    assert too_soon.counts["hubspot"].decided == 0

    runner.now = NOW + timedelta(minutes=2)
    later = runner()
    assert later.counts["hubspot"].written == 1
    assert crm.stage_of("c0002") == "lead"
    assert open_dead_letters(store) == []


def test_given_a_quota_stop_when_rerun_then_the_end_state_is_one_clean_run(
    runner: Runner, crm: FakeCrm, store: Store, config: object, tmp_path: Path
) -> None:
    crm.write_batch_size = 10
    crm.raise_on_write = None
    crm.crash_at = {}
    original_write = crm.write_stages
    calls = {"n": 0}

    def write_then_quota(updates: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:
            raise QuotaExhausted("hubspot: daily limit reached")
        return original_write(updates)  # type: ignore[arg-type]

    crm.write_stages = write_then_quota  # type: ignore[method-assign]
    with pytest.raises(QuotaExhausted):
        runner()
    assert calls["n"] == 2  # no batch is sent after the one that failed
    with store.begin() as db:
        assert db.execute(text("SELECT status FROM runs")).scalar_one() == "failed"

    runner()

    clean = new_crm(write_batch_size=10)
    populate(clean)
    clean_store_url = f"sqlite:///{tmp_path / 'clean.db'}"
    from connector.store import open_store

    clean_store = open_store(clean_store_url)
    Runner(make_config(tmp_path, clean_store_url), clean_store, {"hubspot": clean})()
    assert crm.snapshot() == clean.snapshot()
    assert history(store) == history(clean_store)


def test_given_write_back_off_when_the_job_runs_then_decisions_are_kept_and_nothing_written(
    runner: Runner, crm: FakeCrm, store: Store
) -> None:
    job = Job(name="hubspot-lifecycle", connections=["hubspot"], write_back=False)

    result = runner(job)

    assert crm.writes == []
    assert result.counts["hubspot"].changed == 33
    with store.begin() as db:
        decided = dict(db.execute(text("SELECT crm_id, decided_stage FROM job_contacts")).all())
    assert decided["c0005"] == "meeting"


def test_given_a_dry_run_when_a_real_run_follows_then_the_dry_run_consumed_nothing(
    runner: Runner, crm: FakeCrm, store: Store
) -> None:
    dry = runner(dry_run=True)

    assert crm.writes == []
    assert len(dry.planned) == 33
    planned = {p.crm_id: (p.before, p.after) for p in dry.planned}
    assert planned["c0004"] == (None, "sql")
    assert history(store) == []

    real = runner()
    assert real.counts["hubspot"].written == 33


def test_given_a_record_the_client_cannot_read_when_the_job_runs_then_it_is_counted_as_skipped(
    runner: Runner, crm: FakeCrm
) -> None:
    crm.break_contact("c0001", "email: not an e-mail address")

    result = runner()

    assert result.counts["hubspot"].skipped == 1
    assert result.summary()["skipped"] == 1


def test_given_full_mode_when_rerun_then_every_contact_is_decided_again_but_nothing_rewritten(
    runner: Runner, crm: FakeCrm
) -> None:
    runner()
    writes = crm.calls["contacts.write"]

    result = runner(full=True)

    assert result.counts["hubspot"].decided == 40
    assert result.counts["hubspot"].written == 0
    assert crm.calls["contacts.write"] == writes


def test_given_a_secret_in_the_environment_when_the_job_fails_then_it_is_nowhere_in_the_store_or_json(
    runner: Runner, crm: FakeCrm, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "pat-na1-11111111-2222-3333-4444-555555555555"
    monkeypatch.setenv("CRMSYNC_TEST_HUBSPOT_TOKEN", secret)
    crm.raise_on_write = QuotaExhausted(f"hubspot: daily limit reached for token {secret}")

    with pytest.raises(QuotaExhausted):
        runner()
    result = runner()

    dumped = json.dumps(result.summary())
    assert secret not in dumped
    with store.begin() as db:
        for table in ("runs", "contacts", "activities", "stage_changes", "dead_letters", "checkpoints", "job_contacts"):
            for row in db.execute(text(f"SELECT * FROM {table}")):
                assert secret not in " ".join(str(value) for value in row), table
        error = db.execute(text("SELECT error FROM runs WHERE status = 'failed'")).scalar_one()
    assert "***" in error


def test_given_two_jobs_on_one_connection_when_both_run_then_each_decides_every_contact(
    runner: Runner, crm: FakeCrm
) -> None:
    other = Job(name="hubspot-report", connections=["hubspot"], write_back=False)
    runner()

    result = runner(other)

    assert result.counts["hubspot"].decided == 40
    assert result.counts["hubspot"].written == 0


def test_job_contract_summary_has_the_documented_keys(runner: Runner) -> None:
    summary = runner().summary()

    for key in ("read", "decided", "changed", "written", "failed", "skipped", "duration_seconds", "connections"):
        assert key in summary
    assert summary["connections"]["hubspot"]["api_calls"] >= 2
    json.dumps(summary)


_ = JOB


def test_while_the_crm_answers_a_write_the_run_decides_on_and_writes_go_one_call_at_a_time_in_order(
    config: Config, store: Store
) -> None:
    crm = new_crm(write_batch_size=10)
    populate(crm, 60)
    runner = Runner(config, store, {"hubspot": crm})
    decided = threading.Event()
    waited: list[bool] = []
    in_flight: list[int] = [0]
    most: list[int] = [0]
    sent: list[list[str]] = []
    lock = threading.Lock()
    original_write = crm.write_stages

    def watched_write(updates: Sequence[StageUpdate]) -> list[WriteResult]:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            if not waited:
                # the first call answers only once the run's thread decided another chunk meanwhile: a run that
                # made its calls on its own thread would wait here for the timeout, and the test fails
                decided.clear()
                waited.append(decided.wait(timeout=30))
            return original_write(updates)
        finally:
            with lock:
                in_flight[0] -= 1
                sent.append([update.crm_id for update in updates])

    def progress(event: ProgressEvent) -> None:
        if event.phase == "decide" and event.step == "decided":
            decided.set()

    crm.write_stages = watched_write  # type: ignore[method-assign]
    result = runner(chunk_size=10, progress=progress)

    assert result.status == "completed"
    assert waited == [True]
    assert most == [1]  # never two calls at once: one pacing and retry point
    planned = [change[1] for change in history(store)]
    assert [crm_id for batch in sent for crm_id in batch] == sorted(planned)  # in the order planned (by CRM id)
    assert result.counts["hubspot"].written == len(planned) == 50  # 10 of the 60 fit nothing
