"""One run of a sync job: pull, store, decide, plan, write, record.

:func:`run_job` is a plain function of the job and the config; everything it
remembers between runs is in the state store, so a task engine can call it
anywhere. Per connection of the job:

1. pull contact pages since the checkpoint; each page, the dirty marks it
   causes and its read position commit in one transaction;
2. the same for activity pages (linked to contacts by CRM id; an activity may
   arrive before its contact and is attached when the contact does);
3. decide every dirty contact in chunks (pure rules), plan its write (pure
   planner); skips and decisions commit per chunk, and planned writes commit
   to the outbox *before* the CRM is called;
4. write in the client's batch size; each batch's results, history rows,
   dead letters and retry backoffs commit in one transaction, fenced by the
   job's lease;
5. when everything read is decided and written, the checkpoint moves to the
   read position.

A crash between any two steps leaves either work still queued (dirty
contacts, outbox rows) or work done and recorded; a re-run finishes the
first kind and recognises the second, so the CRM and the history end as
after one clean run.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast

from connector.config import Config
from connector.connections import connection_mapping, open_client
from connector.crm import (
    ActivityPage,
    ApiUsage,
    ContactPage,
    CrmClient,
    SkippedRecord,
    StageUpdate,
    WriteOutcome,
    WriteResult,
)
from connector.errors import TransientError
from connector.jobs import Job
from connector.lifecycle.rules import Rules, decide, load_rules
from connector.mapping import CrmMapping
from connector.model import Stage
from connector.planner import plan_write
from connector.progress import ProgressCallback, ProgressEvent
from connector.store import (
    ACTIVITIES,
    CONTACTS,
    PageCounts,
    PendingWrite,
    QueuedContact,
    Store,
    acquire,
    new_owner,
    retry_delay,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ClientFactory = Callable[[Config, str], CrmClient]

MAX_RETRY_ATTEMPTS = 8
"""A record that fails transiently this many runs in a row becomes a dead letter."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ConnectionCounts:
    """What one run did on one connection."""

    contacts_read: int = 0
    activities_read: int = 0
    skipped: int = 0
    """Records the client could not normalise (reported, not synced)."""
    unmapped: int = 0
    contacts_changed: int = 0
    """Contacts whose facts changed (new, edited, or with new activities): queued to decide."""
    decided: int = 0
    changed: int = 0
    """Planned stage changes (written, or only planned in a dry run / without write-back)."""
    written: int = 0
    unchanged: int = 0
    failed: int = 0
    """Records the CRM rejected: dead letters."""
    deferred: int = 0
    """Transient failures, queued for a later run with backoff."""
    recovered: int = 0
    """Writes of an interrupted run found to have landed, recorded now."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Time per pipeline stage."""

    @property
    def read(self) -> int:
        return self.contacts_read + self.activities_read

    def add_time(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "contacts_read": self.contacts_read,
            "activities_read": self.activities_read,
            "skipped": self.skipped,
            "unmapped": self.unmapped,
            "contacts_changed": self.contacts_changed,
            "decided": self.decided,
            "changed": self.changed,
            "written": self.written,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "deferred": self.deferred,
            "recovered": self.recovered,
            "seconds": {phase: round(value, 3) for phase, value in self.seconds.items()},
        }


TOTALS = ("read", "skipped", "decided", "changed", "written", "unchanged", "failed", "deferred")


@dataclass(frozen=True, slots=True)
class PlannedWrite:
    """A write as planned (what a dry run prints)."""

    connection: str
    crm_id: str
    email: str | None
    field: str
    before: str | None
    after: str
    fields: dict[str, str]


@dataclass
class RunResult:
    run_id: str
    job: str
    status: str
    """``completed``, ``stopped`` (asked to stop; resumes next run) or ``failed``."""
    started_at: datetime
    duration_seconds: float = 0.0
    dry_run: bool = False
    full: bool = False
    counts: dict[str, ConnectionCounts] = field(default_factory=dict)
    usage: dict[str, ApiUsage] = field(default_factory=dict)
    planned: list[PlannedWrite] = field(default_factory=list)
    planned_dropped: int = 0
    """Planned writes past ``dry_run_limit`` (counted, not kept)."""
    error: str | None = None

    def totals(self) -> dict[str, int]:
        sums = dict.fromkeys(TOTALS, 0)
        for counts in self.counts.values():
            values = counts.as_dict()
            for name in TOTALS:
                sums[name] += values[name]
        return sums

    def summary(self) -> dict[str, Any]:
        """The one JSON object of ``crmsync run --json``: counts, API calls per connection, duration."""
        return {
            "run_id": self.run_id,
            "job": self.job,
            "status": self.status,
            "dry_run": self.dry_run,
            "full": self.full,
            "started_at": self.started_at.isoformat(),
            "duration_seconds": round(self.duration_seconds, 3),
            **self.totals(),
            "connections": {
                name: {
                    **counts.as_dict(),
                    "api_calls": self.usage[name].total_calls if name in self.usage else 0,
                    "api_calls_by_endpoint": dict(self.usage[name].calls) if name in self.usage else {},
                    "rate_limited": self.usage[name].rate_limited if name in self.usage else 0,
                    "retries": self.usage[name].retries if name in self.usage else 0,
                }
                for name, counts in self.counts.items()
            },
            "planned_writes": len(self.planned) + self.planned_dropped if self.dry_run else None,
            "error": self.error,
        }


@dataclass
class _Write:
    queued: QueuedContact
    update: StageUpdate
    intent: PendingWrite


def secret_values(config: Config) -> list[str]:
    """Values of the environment variables that hold this config's secrets (to scrub from error text)."""
    found = []
    for settings in config.connections.values():
        for name, value in settings:
            if name.endswith("_env") and isinstance(value, str):
                secret = os.environ.get(value)
                if secret and len(secret) >= 4:
                    found.append(secret)
    return found


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def job_rules(job: Job, config: Config) -> Rules:
    return load_rules(config.resolve(Path(job.rules)) if job.rules else config.rules_path)


def run_job(
    job: Job,
    config: Config,
    *,
    store: Store,
    clients: ClientFactory = open_client,
    clock: Clock = utc_now,
    full: bool = False,
    dry_run: bool | None = None,
    progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    owner: str | None = None,
    lease_ttl: timedelta = timedelta(minutes=5),
    heartbeat: bool = True,
    chunk_size: int = 500,
    dry_run_limit: int = 10_000,
) -> RunResult:
    """Run ``job`` once. Returns the run's result; raises when the run could not complete.

    Raises ``LeaseHeld`` (another process runs the job), ``ConfigError`` /
    ``AuthError`` (a person must fix something), ``QuotaExhausted`` (the
    vendor's allocation is used up) or ``TransientError`` (retries
    exhausted); the run is recorded as failed and the next run resumes.
    ``stop`` set (SIGTERM) finishes the current batch, commits and returns
    with status ``stopped``.
    """
    rules = job_rules(job, config)
    mappings = {name: connection_mapping(config, name) for name in job.connections}
    full = full or job.mode == "full"
    dry = job.dry_run if dry_run is None else dry_run
    stop = stop or threading.Event()
    emit: ProgressCallback = progress or (lambda _event: None)
    owner = owner or new_owner()
    lease = acquire(store, job.name, owner, ttl=lease_ttl, clock=clock)
    if heartbeat:
        lease.start_heartbeat()
    started = clock()
    began = time.monotonic()
    result = RunResult(run_id=str(uuid.uuid4()), job=job.name, status="running", started_at=started)
    result.dry_run, result.full = dry, full
    try:
        store.start_run(result.run_id, job.name, owner, full=full, dry_run=dry, now=started)
        run = _Run(job, store, lease, result, rules, clock, emit, stop, dry, full, chunk_size, dry_run_limit)
        for name in job.connections:
            client = clients(config, name)
            try:
                run.sync_connection(client, mappings[name])
            finally:
                result.usage[name] = client.usage()
                client.close()
            if stop.is_set():
                break
        result.status = "stopped" if stop.is_set() else "completed"
    except Exception as error:
        result.status = "failed"
        result.error = scrub(f"{type(error).__name__}: {error}", secret_values(config))[:2000]
        _finish(store, result, began, clock)
        lease.release()
        raise
    except KeyboardInterrupt:
        result.status = "interrupted"
        _finish(store, result, began, clock)
        lease.release()
        raise
    finally:
        # a kill stops the heartbeat too; the lease then expires on its own
        lease.stop_heartbeat()
    _finish(store, result, began, clock)
    lease.release()
    return result


def _finish(store: Store, result: RunResult, began: float, clock: Clock) -> None:
    result.duration_seconds = time.monotonic() - began
    summary = result.summary()
    store.finish_run(
        result.run_id,
        status=result.status,
        counts={**result.totals(), "connections": {n: c.as_dict() for n, c in result.counts.items()}},
        usage={name: usage.model_dump() for name, usage in result.usage.items()},
        error=result.error,
        now=clock(),
    )
    log.info(
        "run %s %s",
        result.job,
        result.status,
        extra={
            "event": "run_finished",
            "job": result.job,
            "run_id": result.run_id,
            "status": result.status,
            "dry_run": result.dry_run,
            "duration_seconds": summary["duration_seconds"],
            **result.totals(),
            "api_calls": {name: usage.total_calls for name, usage in result.usage.items()},
        },
    )


def _report_skipped(connection: str, skipped: Sequence[SkippedRecord]) -> None:
    """One event per record the client could not normalise: which record and why (the client's short reason).

    DEBUG, not INFO: a first Salesforce sync skips every converted lead (followed to its
    Contact), thousands of lines; the run summary counts them all at INFO.
    """
    for record in skipped:
        log.debug(
            "record skipped",
            extra={
                "event": "record_skipped",
                "connection": connection,
                "crm_id": record.crm_id,
                "reason": record.reason,
            },
        )


class _Run:
    """The state of one run while it goes through the connections of its job."""

    def __init__(
        self,
        job: Job,
        store: Store,
        lease: Any,
        result: RunResult,
        rules: Rules,
        clock: Clock,
        emit: ProgressCallback,
        stop: threading.Event,
        dry: bool,
        full: bool,
        chunk_size: int,
        dry_run_limit: int,
    ) -> None:
        self.job = job
        self.store = store
        self.lease = lease
        self.result = result
        self.rules = rules
        self.clock = clock
        self.emit = emit
        self.stop = stop
        self.dry = dry
        self.full = full
        self.write_back = job.write_back and not dry
        self.chunk_size = chunk_size
        self.dry_run_limit = dry_run_limit

    # -- one connection ---------------------------------------------------------
    def sync_connection(self, client: CrmClient, mapping: CrmMapping) -> None:
        name = client.connection
        counts = self.result.counts.setdefault(name, ConnectionCounts())
        if self.full:
            self.store.clear_positions(self.job.name, name, self.clock())
        if not self._pull_contacts(client, counts) or not self._pull_activities(client, counts):
            return
        if not self._decide_and_write(client, mapping, counts):
            return
        if not self.dry:
            with self.store.begin() as db:
                self.store.commit_checkpoints(db, self.job.name, name, self.clock())
                self.lease.renew(db)

    def _pull_contacts(self, client: CrmClient, counts: ConnectionCounts) -> bool:
        return self._pull(client, counts, CONTACTS, client.pull_contacts, self.store.store_contact_page)

    def _pull_activities(self, client: CrmClient, counts: ConnectionCounts) -> bool:
        return self._pull(client, counts, ACTIVITIES, client.pull_activities, self.store.store_activity_page)

    def _pull(
        self,
        client: CrmClient,
        counts: ConnectionCounts,
        stream: Literal["contacts", "activities"],
        pages: Callable[[str | None], Iterator[ContactPage | ActivityPage]],
        store_page: Callable[..., PageCounts],
    ) -> bool:
        """Pull one stream page by page; each page and its cursor are stored in one transaction."""
        name = client.connection
        cursor = None if self.full else self.store.checkpoint(self.job.name, name, stream).resume_from
        read = 0
        clock = time.monotonic()
        for page in pages(cursor):
            counts.add_time("pull", time.monotonic() - clock)
            clock = time.monotonic()
            with self.store.begin() as db:
                stored = store_page(db, self.job.name, name, page.records, force_dirty=self.full, now=self.clock())
                self.store.save_position(db, self.job.name, name, stream, page.cursor, self.clock())
                self.lease.renew(db)
            counts.add_time("store", time.monotonic() - clock)
            read += stored.records
            if stream == CONTACTS:
                counts.contacts_read += stored.records
            else:
                counts.activities_read += stored.records
                counts.unmapped += cast(ActivityPage, page).unmapped
            counts.contacts_changed += stored.dirtied
            counts.skipped += len(page.skipped)
            _report_skipped(name, page.skipped)
            self.emit(ProgressEvent(name, stream, "stored", read))
            if self.stop.is_set():
                return False
            clock = time.monotonic()
        counts.add_time("pull", time.monotonic() - clock)
        self.emit(ProgressEvent(name, stream, "done", read))
        return True

    # -- decide, plan, write -------------------------------------------------------
    def _decide_and_write(self, client: CrmClient, mapping: CrmMapping, counts: ConnectionCounts) -> bool:
        name = client.connection
        total = self.store.count_dirty(self.job.name, name)
        buffer: list[_Write] = []
        after = ""
        batch_size = max(1, client.write_batch_size)
        while True:
            clock = time.monotonic()
            chunk = self.store.dirty_chunk(self.job.name, name, after=after, limit=self.chunk_size, now=self.clock())
            counts.add_time("load", time.monotonic() - clock)
            if not chunk:
                break
            after = chunk[-1].crm_id
            buffer.extend(self._decide_chunk(name, chunk, mapping, counts))
            self.emit(ProgressEvent(name, "decide", "decided", counts.decided, total))
            while len(buffer) >= batch_size and not self.stop.is_set():
                self._write_batch(client, mapping, buffer[:batch_size], counts)
                buffer = buffer[batch_size:]
            if self.stop.is_set():
                # planned writes left in the buffer stay in the outbox and queued: the next run makes them
                break
        if buffer and not self.stop.is_set():
            self._write_batch(client, mapping, buffer, counts)
        self.emit(ProgressEvent(name, "decide", "done", counts.decided, total))
        if self.write_back:
            self.emit(ProgressEvent(name, "write", "done", counts.written + counts.unchanged + counts.failed))
        return not self.stop.is_set()

    def _decide_chunk(
        self, name: str, chunk: list[QueuedContact], mapping: CrmMapping, counts: ConnectionCounts
    ) -> list[_Write]:
        started = time.monotonic()
        now = self.clock()
        decisions: list[dict[str, Any]] = []
        intents: list[dict[str, Any]] = []
        landed: list[QueuedContact] = []
        stale: list[str] = []
        settled: list[str] = []
        writes: list[_Write] = []
        for queued in chunk:
            pending = queued.pending
            if pending is not None and queued.stage_values.get(mapping.stage.field) == pending.to_value:
                # an interrupted run's write landed (the CRM shows it): record it now, once
                landed.append(queued)
                queued = _with_stage(queued, mapping, pending)
                pending = None
            current = queued.contact.stage or queued.written_stage
            contact = (
                queued.contact
                if current == queued.contact.stage
                else queued.contact.model_copy(update={"stage": current})
            )
            decision = decide(contact, queued.activities, self.rules, now=now)
            plan = plan_write(queued.record(), decision, mapping, regression=self.rules.regression, now=now)
            counts.decided += 1
            row = {
                "crm_id": queued.crm_id,
                "stage": decision.stage.value if decision.stage else None,
                "rule": decision.rule,
                "reasons": list(decision.reasons),
                "at": now,
                "clear": not self.dry,
            }
            update = plan.update
            if update is not None:
                counts.changed += 1
            if update is None or not self.write_back:
                decisions.append(row)
                if update is not None and self.dry:
                    self._keep_planned(name, queued, update, mapping)
                if pending is not None:
                    stale.append(queued.crm_id)
                if not self.dry:
                    settled.append(queued.crm_id)
                continue
            row["clear"] = False  # stays queued until the write's result is committed
            decisions.append(row)
            if pending is not None and pending.to_stage == update.stage:
                intent = pending  # the same write again: keep its key, so it is recorded once
            else:
                intent = PendingWrite(
                    intent_id=str(uuid.uuid4()),
                    run_id=self.result.run_id,
                    from_value=update.previous_value,
                    from_stage=plan.current,
                    to_stage=update.stage,
                    to_value=update.fields[mapping.stage.field],
                    rule=decision.rule,
                    reasons=decision.reasons,
                    created_at=now,
                )
                intents.append(
                    {
                        "crm_id": queued.crm_id,
                        "intent_id": intent.intent_id,
                        "run_id": intent.run_id,
                        "from_value": intent.from_value,
                        "from_stage": intent.from_stage.value if intent.from_stage else None,
                        "to_stage": intent.to_stage.value,
                        "to_value": intent.to_value,
                        "rule": intent.rule,
                        "reasons": list(intent.reasons),
                        "created_at": intent.created_at,
                    }
                )
            writes.append(_Write(queued, update, intent))
        with self.store.begin() as db:
            for queued in landed:
                assert queued.pending is not None
                self._record_landed(db, queued, queued.pending, mapping, counts, now)
            self.store.record_decisions(db, self.job.name, name, decisions)
            self.store.drop_intents(db, self.job.name, name, stale)
            self.store.add_intents(db, self.job.name, name, intents)
            if settled:
                self.store.resolve_dead_letters(db, self.job.name, name, settled, "not needed any more", now)
            self.lease.renew(db)
        counts.add_time("decide", time.monotonic() - started)
        return writes

    def _record_landed(
        self,
        db: Any,
        queued: QueuedContact,
        intent: PendingWrite,
        mapping: CrmMapping,
        counts: ConnectionCounts,
        now: datetime,
    ) -> None:
        recorded = self.store.record_change(
            db,
            job=self.job.name,
            run_id=intent.run_id,
            connection=queued.connection,
            crm_id=queued.crm_id,
            email=queued.email,
            intent=intent,
        )
        if recorded:
            counts.recovered += 1
        self.store.mark_written(
            db,
            job=self.job.name,
            connection=queued.connection,
            crm_id=queued.crm_id,
            stage=intent.to_stage,
            fields={},
            object_type=queued.object_type,
            facts_json=queued.contact_json,
            stage_values=queued.stage_values,
            now=now,
        )
        self.store.drop_intents(db, self.job.name, queued.connection, [queued.crm_id])
        self.store.resolve_dead_letters(db, self.job.name, queued.connection, [queued.crm_id], "written", now)

    def _keep_planned(self, name: str, queued: QueuedContact, update: StageUpdate, mapping: CrmMapping) -> None:
        if len(self.result.planned) >= self.dry_run_limit:
            self.result.planned_dropped += 1
            return
        self.result.planned.append(
            PlannedWrite(
                connection=name,
                crm_id=queued.crm_id,
                email=queued.email,
                field=mapping.stage.field,
                before=update.previous_value,
                after=update.fields[mapping.stage.field],
                fields=dict(update.fields),
            )
        )

    def _write_batch(
        self, client: CrmClient, mapping: CrmMapping, batch: list[_Write], counts: ConnectionCounts
    ) -> None:
        name = client.connection
        started = time.monotonic()
        try:
            results = client.write_stages([write.update for write in batch])
        except TransientError as error:
            # the client's retries are spent; the whole batch waits for a later run
            log.warning("write batch deferred", extra={"connection": name, "error": type(error).__name__})
            results = [WriteResult(crm_id=w.update.crm_id, outcome=WriteOutcome.RETRY, code="transient") for w in batch]
        counts.add_time("write", time.monotonic() - started)
        if len(results) != len(batch):
            raise TransientError(f"{name}: the client answered {len(results)} results for {len(batch)} updates")
        started = time.monotonic()
        now = self.clock()
        stage_fields = set(mapping.stage_fields())
        job = self.job.name
        done: list[str] = []
        settled: dict[str, list[str]] = {"written": [], "unchanged": []}
        changes: list[tuple[str, str | None, PendingWrite]] = []
        written: list[tuple[QueuedContact, Stage, dict[str, str]]] = []
        with self.store.begin() as db:
            for write, outcome in zip(batch, results, strict=True):
                queued, intent = write.queued, write.intent
                crm_id = queued.crm_id
                landed = outcome.outcome is WriteOutcome.WRITTEN or (
                    # the same write repeated after a crash: the CRM already held it because we wrote it
                    outcome.outcome is WriteOutcome.UNCHANGED and intent.run_id != self.result.run_id
                )
                if landed:
                    changes.append((crm_id, queued.email, intent))
                    fields = {k: v for k, v in write.update.fields.items() if k in stage_fields}
                    written.append((queued, write.update.stage, fields))
                    counts.written += 1
                    settled["written"].append(crm_id)
                    done.append(crm_id)
                elif outcome.outcome is WriteOutcome.UNCHANGED:
                    counts.unchanged += 1
                    settled["unchanged"].append(crm_id)
                    done.append(crm_id)
                elif outcome.outcome is WriteOutcome.REJECTED or queued.attempts + 1 >= MAX_RETRY_ATTEMPTS:
                    # refused for good, or transient too many runs in a row: a person must look
                    counts.failed += 1
                    if outcome.outcome is WriteOutcome.REJECTED:
                        code, reason = outcome.code, outcome.reason
                    else:
                        code = outcome.code or "retries_exhausted"
                        reason = (
                            f"still failing after {queued.attempts + 1} runs: {outcome.reason or 'transient error'}"
                        )
                    self.store.add_dead_letter(
                        db,
                        job=job,
                        run_id=self.result.run_id,
                        connection=name,
                        crm_id=crm_id,
                        email=queued.email,
                        stage=write.update.stage,
                        code=code,
                        reason=reason,
                        now=now,
                    )
                    done.append(crm_id)
                else:
                    attempts = queued.attempts + 1
                    counts.deferred += 1
                    self.store.defer(db, job, name, crm_id, attempts, now + retry_delay(attempts))
            self.store.record_changes(db, job=job, connection=name, items=changes)
            self.store.mark_written_many(db, job=job, connection=name, items=written, now=now)
            for resolution, ids in settled.items():
                self.store.resolve_dead_letters(db, job, name, ids, resolution, now)
            self.store.clear_dirty(db, job, name, done)
            self.store.drop_intents(db, job, name, [write.queued.crm_id for write in batch])
            self.lease.renew(db)
        counts.add_time("record", time.monotonic() - started)
        self.emit(ProgressEvent(name, "write", "written", counts.written + counts.unchanged + counts.failed))


def _with_stage(queued: QueuedContact, mapping: CrmMapping, intent: PendingWrite) -> QueuedContact:
    """``queued`` as it is once ``intent`` is recorded (its rung is the one written)."""

    return replace(queued, written_stage=intent.to_stage)
