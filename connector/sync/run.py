"""One run of a sync job: pull, store, decide, plan, write, record.

:func:`run_job` is a plain function of the job and the config; everything it
remembers between runs is in the state store, so a task engine can call it
anywhere. Per connection of the job:

1. pull contact pages since the checkpoint; each page, the queue marks it
   causes and its read position commit in one transaction;
2. the same for activity pages (linked to contacts by CRM id; an activity may
   arrive before its contact and is attached when the contact does);
3. decide the queued contacts in chunks (:mod:`connector.sync.decide`, pure);
   decisions commit per chunk, and planned writes commit to the outbox
   *before* the CRM is called;
4. write in the client's batch size; settle each batch's results
   (:mod:`connector.sync.settle`, pure) and commit them, the history rows,
   dead letters and retry backoffs in one transaction, fenced by the job's
   lease;
5. when everything read is decided and written, the checkpoint moves to the
   read position.

A job that unifies people (``unify = true``, docs/people.md) pulls every
connection first (steps 1-2), then matches the queued records into people
(:mod:`connector.sync.people`, pure), decides each person with a record queued
once on her merged evidence (:mod:`connector.sync.unify`, pure) and writes each
of her records with its own connection's client (steps 3-4, per record as
above); every connection's checkpoint moves at the end.

A crash between any two steps leaves either work still queued (dirty
contacts, outbox rows) or work done and recorded; a re-run finishes the
first kind and recognises the second, so the CRM and the history end as
after one clean run. This module talks to CRMs only through the
:class:`~connector.crm.CrmClient` protocol and the client factory it is given.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from connector.config import Config
from connector.crm import (
    ActivityPage,
    ContactDirectory,
    ContactPage,
    CrmClient,
    SkippedRecord,
    UsesDirectory,
    WriteOutcome,
    WriteResult,
)
from connector.errors import TransientError
from connector.jobs import Job
from connector.lifecycle.rules import Rules, load_rules
from connector.mapping import CrmMapping
from connector.model import Contact, StageDecision
from connector.progress import ProgressCallback, ProgressEvent
from connector.runs import Resolution, RunMode, RunStatus, WriteMode
from connector.store import (
    ACTIVITIES,
    CONTACTS,
    Change,
    FirstLoad,
    Lease,
    QueuedContact,
    Store,
    Written,
    acquire,
    new_owner,
)
from connector.store.database import create_store_engine
from connector.store.values import PersonConflict, RecordEmails, RecordKey
from connector.sync.decide import ChunkPlan, StageWrite, decide_chunk
from connector.sync.helper import (
    Failed,
    Finished,
    Helpers,
    HelperTask,
    Planned,
    chunk_range,
    claim,
    planned,
    portable,
    room_to_plan,
    without_activities,
)
from connector.sync.people import plan_links, record_emails
from connector.sync.redact import safe_error, safe_message, secret_values
from connector.sync.result import ConnectionCounts, RunResult
from connector.sync.settle import MAX_RETRY_ATTEMPTS, Settlement, settle_batch
from connector.sync.tuning import tuned
from connector.sync.unify import Decider, hand_set_conflicts, person_decider, person_evidence

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ClientFactory = Callable[[Config, str], CrmClient]


def utc_now() -> datetime:
    return datetime.now(UTC)


def job_rules(job: Job, config: Config) -> Rules:
    return load_rules(config.resolve(Path(job.rules)) if job.rules else config.rules_path)


@dataclass(frozen=True, slots=True)
class PageGroup:
    """When a group of pulled pages is stored: one transaction (records, queue marks, the last page's read
    position) per group instead of per page. Each commit costs a journal flush, the lease fence and the
    checkpoint upsert; HubSpot's pages of 100 and its many nearly empty activity pages paid that per page.

    A group is full at ``max_pages`` pages, ``max_records`` records or ``max_seconds`` after its first
    page came in, whichever comes first. Its records wait in memory meanwhile, so memory stays bounded
    by ``max_records`` (plus one page) whatever the number of contacts, and a crash re-reads at most one
    group."""

    max_pages: int = 20
    max_records: int = 4_000
    max_seconds: float = 1.0

    def full(self, group: Sequence[ContactPage | ActivityPage], seconds: float) -> bool:
        records = sum(len(page.records) for page in group)
        return len(group) >= self.max_pages or records >= self.max_records or seconds >= self.max_seconds


SHARE_FROM = 5_000
"""Queued contacts of one connection from which a run decides them with helper processes."""
AUTO_PROCESSES = 4
"""``decide_processes = 0`` (the default) means one per core, at most this many."""


def decide_processes(wanted: int) -> int:
    """The processes a run decides with: ``wanted``, or for 0 one per core of this machine (at most
    :data:`AUTO_PROCESSES`)."""
    return wanted if wanted > 0 else max(1, min(os.cpu_count() or 1, AUTO_PROCESSES))


@dataclass(frozen=True, slots=True)
class RunSettings:
    """How one run goes: which job, read what, write or not, in what sizes."""

    job: Job
    run_id: str
    run_mode: RunMode
    write_mode: WriteMode
    chunk_size: int = 500
    """Queued contacts decided per transaction."""
    dry_run_limit: int = 10_000
    """Planned writes a dry run keeps to print (the rest are counted)."""
    max_attempts: int = MAX_RETRY_ATTEMPTS
    pages: PageGroup = field(default_factory=lambda: PageGroup())
    """When pulled pages commit (several per transaction)."""
    decide_processes: int = 1
    """Processes that decide a long queue: this one and ``decide_processes - 1`` helpers
    (:mod:`connector.sync.helper`)."""
    share_from: int = SHARE_FROM
    """Queued contacts from which helpers are started (a shorter queue is decided before they would start)."""


@tuned()  # see connector.sync.tuning: 17 % of a run's CPU went to collecting cycles; threads waited to compute
def run_job(
    job: Job,
    config: Config,
    *,
    store: Store,
    clients: ClientFactory,
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
    pages: PageGroup | None = None,
    processes: int | None = None,
    share_from: int = SHARE_FROM,
) -> RunResult:
    """Run ``job`` once. Returns the run's result; raises when the run could not complete.

    Raises ``LeaseHeld`` (another process runs the job), ``ConfigError`` /
    ``AuthError`` (a person must fix something), ``QuotaExhausted`` (the
    vendor's allocation is used up) or ``TransientError`` (retries
    exhausted); the run is recorded as failed and the next run resumes.
    ``stop`` set (SIGTERM) finishes the current batch, commits and returns
    with status ``stopped``. ``dry_run`` (when given) overrides the job's
    write mode with a dry run (``True``) or its ``write_back`` setting (``False``).
    ``processes`` (when given) overrides the job's ``decide_processes``: a queue of
    ``share_from`` contacts or more is decided by that many processes
    (:mod:`connector.sync.helper`).
    """
    run_mode = RunMode.FULL if full else job.run_mode
    write_mode = job.write_mode if dry_run is None else WriteMode.from_flags(write_back=job.write_back, dry_run=dry_run)
    settings = RunSettings(
        job=job,
        run_id=str(uuid.uuid4()),
        run_mode=run_mode,
        write_mode=write_mode,
        chunk_size=chunk_size,
        dry_run_limit=dry_run_limit,
        pages=pages or PageGroup(),
        decide_processes=decide_processes(job.decide_processes if processes is None else processes),
        share_from=share_from,
    )
    stop = stop or threading.Event()
    owner = owner or new_owner()
    lease = acquire(store, job.name, owner, ttl=lease_ttl, clock=clock)
    if heartbeat:
        lease.start_heartbeat()
    started = clock()
    began = time.monotonic()
    result = RunResult(run_id=settings.run_id, job=job.name, status=RunStatus.RUNNING, started_at=started)
    result.dry_run = write_mode is WriteMode.DRY_RUN
    result.full = run_mode is RunMode.FULL
    try:
        with store.begin() as db:
            store.runs.start(db, result.run_id, job.name, owner, full=result.full, dry_run=result.dry_run, now=started)
        # loaded once the run is recorded, so a broken rules or mapping file shows as a failed run
        rules = job_rules(job, config)
        mappings = {name: config.connection_mapping(name) for name in job.connections}
        run = _Run(
            settings,
            config=config,
            store=store,
            lease=lease,
            result=result,
            rules=rules,
            clock=clock,
            emit=progress,
            stop=stop,
        )
        if job.unify:
            # every connection is pulled before anyone is decided: one person's records come from all of them
            opened: dict[str, CrmClient] = {}
            try:
                for name in job.connections:
                    opened[name] = clients(config, name)
                run.sync_people(opened, mappings)
            finally:
                for name, client in opened.items():
                    result.usage[name] = client.usage()
                    client.close()
        else:
            for name in job.connections:
                client = clients(config, name)
                try:
                    run.sync_connection(client, mappings[name])
                finally:
                    result.usage[name] = client.usage()
                    client.close()
                if stop.is_set():
                    break
        result.status = RunStatus.STOPPED if stop.is_set() else RunStatus.COMPLETED
    except Exception as error:
        result.status = RunStatus.FAILED
        result.error = safe_error(error, secret_values(config))
        _finish_and_release(store, result, lease, began, clock, failing=True)
        raise
    except KeyboardInterrupt:
        result.status = RunStatus.INTERRUPTED
        _finish_and_release(store, result, lease, began, clock, failing=True)
        raise
    finally:
        # a kill stops the heartbeat too; the lease then expires on its own
        lease.stop_heartbeat()
    _finish_and_release(store, result, lease, began, clock, failing=False)
    return result


def _finish_and_release(
    store: Store, result: RunResult, lease: Lease, began: float, clock: Clock, *, failing: bool
) -> None:
    """Record the run's end, then release the job's lease, even when recording fails.

    While the run is already failing, a failure to record it is logged and
    the run's own error goes on up; on success it is raised.
    """
    try:
        _finish(store, result, began, clock)
    except Exception as error:
        if not failing:
            raise
        log.error(
            "could not record the run's end",
            extra={
                "event": "run_not_recorded",
                "job": result.job,
                "run_id": result.run_id,
                "error": safe_message(error),
            },
        )
    finally:
        try:
            lease.release()
        except Exception as error:  # the lease expires on its own after its TTL
            log.warning("could not release the lease", extra={"job": result.job, "error": safe_message(error)})


def _finish(store: Store, result: RunResult, began: float, clock: Clock) -> None:
    result.duration_seconds = time.monotonic() - began
    summary = result.summary()
    with store.begin() as db:
        store.runs.finish(
            db,
            result.run_id,
            status=result.status,
            counts={**result.totals(), "connections": {n: c.as_dict() for n, c in result.counts.items()}},
            usage={name: usage.model_dump() for name, usage in result.usage.items()},
            error=result.error,
            now=clock(),
        )
    # a failed run is an ERROR line: what log-based alerting watches for
    log.log(
        logging.ERROR if result.status is RunStatus.FAILED else logging.INFO,
        "run %s %s",
        result.job,
        result.status.value,
        extra={
            "event": "run_finished",
            "job": result.job,
            "run_id": result.run_id,
            "status": result.status.value,
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


class _Writes:
    """Planned writes waiting for the CRM, made in the client's batch size; the answers of several batches
    (:data:`SETTLE_EVERY` writes) are recorded in one transaction.

    The calls are made by a thread of their own, batch after batch as they are handed over, while the run's
    thread decides and records on: the run's process would otherwise sit idle for as long as the CRM takes to
    answer, and the CRM for as long as the run decides. One call at a time, in the order the writes were
    planned, so the client's pacing and retries stay one choke point. At most :data:`BATCHES_AHEAD` batches wait
    for their call (the run's thread waits beyond: memory stays bounded). Once the run stops, or a call fails,
    no further batch is sent: the call in flight finishes and its answer is recorded, and the batches not sent
    stay in the outbox (their contacts queued) for the next run.

    Recording later is safe the way a crash between a call and its record is: the writes stay in the
    outbox and their contacts queued, and the next run finds them landed in the CRM (recorded once).
    """

    def __init__(self, run: _Run, client: CrmClient, mapping: CrmMapping, counts: ConnectionCounts) -> None:
        self.run = run
        self.client = client
        self.mapping = mapping
        self.counts = counts
        self.size = max(1, client.write_batch_size)
        self.waiting: list[StageWrite] = []
        self.made: Callable[[int], None] = lambda _count: None
        """Told the size of each batch made (the helpers' backlog, :mod:`connector.sync.helper`)."""
        self.answered: list[StageWrite] = []
        self.results: list[WriteResult] = []
        self._caller: ThreadPoolExecutor | None = None
        self._sent: deque[tuple[list[StageWrite], Future[_Answer]]] = deque()
        """Batches handed to the calling thread whose answer the run's thread has not taken yet, in order."""
        self._halted = threading.Event()
        """A call failed: the calling thread sends nothing more."""
        self._failure: BaseException | None = None

    def add(self, writes: Sequence[StageWrite]) -> None:
        self.waiting.extend(writes)

    def full_batches(self) -> None:
        """The answers in so far taken; every full batch handed to the calling thread (waiting for answers while
        :data:`BATCHES_AHEAD` batches wait for their call)."""
        self._take(wait=False)
        while len(self.waiting) >= self.size and not self.run.stop.is_set():
            batch, self.waiting = self.waiting[: self.size], self.waiting[self.size :]
            self._send(batch)

    def flush(self) -> None:
        """Every waiting write made (unless the run stops) and every answer recorded."""
        self.full_batches()
        if self.waiting and not self.run.stop.is_set():
            batch, self.waiting = self.waiting, []
            self._send(batch)
        while self._sent:
            self._take(wait=True)
        self.settle()

    def settle(self) -> None:
        if self.answered:
            answered, results, self.answered, self.results = self.answered, self.results, [], []
            self.run._settle(self.client.connection, self.mapping, answered, results, self.counts)

    def end_calls(self, *, wait: bool = True) -> None:
        """No more calls. With ``wait``, the call in flight finishes and the answers that came are kept for
        recording (without, an interrupt, nothing is waited for); what was not sent or answered stays in the
        outbox for the next run, like the writes of a call a crash cut short."""
        self._halted.set()
        if self._caller is None:
            return
        self._caller.shutdown(wait=wait)
        self._caller = None
        if wait:  # every batch handed over is answered or given back by now
            try:
                self._take(wait=False, raising=False)
            except Exception as error:  # only a recording failure: the next run finds these writes landed
                log.warning(
                    "write answers not recorded",
                    extra={"connection": self.client.connection, "error": safe_message(error)},
                )

    def _send(self, batch: list[StageWrite]) -> None:
        while len(self._sent) >= BATCHES_AHEAD:
            self._take(wait=True)
        if self.run.stop.is_set():  # noticed with an answer: this batch is not sent (it stays in the outbox)
            self.waiting[:0] = batch
            return
        if self._caller is None:
            self._caller = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.client.connection}-write")
        self._sent.append((batch, self._caller.submit(self._call, batch)))

    def _call(self, batch: list[StageWrite]) -> _Answer:
        """On the calling thread: the batch's call, unless the run stopped or a call failed (``None``: not sent)."""
        if self.run.stop.is_set() or self._halted.is_set():
            return None
        started = time.monotonic()
        try:
            results = self.run._call(self.client, batch)
        except BaseException:  # raised to the run's thread when it takes this answer
            self._halted.set()
            raise
        return results, time.monotonic() - started

    def _take(self, *, wait: bool, raising: bool = True) -> None:
        """The answers that came in, in order (with ``wait``, at least one, if a batch was sent), recorded per
        :data:`SETTLE_EVERY`; raises the first call's failure once the answers before it are taken."""
        while self._sent and (wait or self._sent[0][1].done()):
            wait = False
            batch, call = self._sent.popleft()
            self.made(len(batch))
            try:
                answer = call.result()
            except BaseException as error:
                self._failure = self._failure or error
                continue
            if answer is None:
                continue
            results, seconds = answer
            self.counts.add_time("write", seconds)
            self.answered += batch
            self.results += results
            if len(self.answered) >= SETTLE_EVERY:
                self.settle()
            else:  # the display moves per call (and a stop is noticed per call), whenever the answers are recorded
                done = self.counts.written + self.counts.unchanged + self.counts.failed + len(self.answered)
                self.run.emit(ProgressEvent(self.client.connection, "write", "written", done))
        if raising and self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure


@contextmanager
def _answers_kept(writes: Sequence[_Writes]) -> Iterator[None]:
    """Around deciding and writing: every calling thread ends on the way out, and when the run fails the CRM's
    answers already in are recorded first (an interrupt does not wait for a call in flight: its writes stay in the
    outbox for the next run)."""
    try:
        yield
    except BaseException as failure:
        for each in writes:
            each.end_calls(wait=isinstance(failure, Exception))
            try:
                each.settle()
            except Exception as error:  # the next run finds those writes landed and records them then
                log.warning(
                    "write answers not recorded",
                    extra={"connection": each.client.connection, "error": safe_message(error)},
                )
        raise
    finally:
        for each in writes:
            each.end_calls(wait=False)  # nothing is in flight unless an interrupt left it


_Answer = tuple[list[WriteResult], float] | None
"""A batch's call as the calling thread made it: the CRM's results and the call's seconds, or ``None`` (not sent)."""
BATCHES_AHEAD = 4
"""Batches handed to the calling thread and not answered yet, beyond which the run's thread waits."""
SETTLE_EVERY = 500
"""Answered writes recorded per transaction (5 HubSpot batches, 2-3 Salesforce ones)."""
_WHOLE_RANGE = 2**31 - 1
"""The ``LIMIT`` of a claimed chunk's load: every due contact of its range."""


class _Run:
    """One run going through the connections of its job: the transactions, the lease fence, the counts."""

    def __init__(
        self,
        settings: RunSettings,
        *,
        config: Config,
        store: Store,
        lease: Lease,
        result: RunResult,
        rules: Rules,
        clock: Clock,
        emit: ProgressCallback | None,
        stop: threading.Event,
    ) -> None:
        self.settings = settings
        self.config = config
        self.job = settings.job.name
        self.store = store
        self.lease = lease
        self.result = result
        self.rules = rules
        self.clock = clock
        self.emit: ProgressCallback = emit or (lambda _event: None)
        self.stop = stop
        self._scratch: Connection | None = None
        """A dry run's one transaction, rolled back at the end (see :meth:`_dry_run_scratch`)."""

    @contextmanager
    def _transaction(self, *, flush: bool = True) -> Iterator[Connection]:
        """One commit point of the run, fenced by the lease: nothing commits once the lease is lost.
        ``flush=False`` for pulled pages only (see :meth:`Store.begin`)."""
        if self._scratch is not None:
            yield self._scratch
            return
        with self.store.begin(flush=flush) as db:
            yield db
            self.lease.renew(db)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        if self._scratch is not None:
            yield self._scratch
            return
        with self.store.begin() as db:
            yield db

    @contextmanager
    def _dry_run_scratch(self) -> Iterator[None]:
        """A dry run works in one transaction that is rolled back: it stores no pulled record, decision or
        read position, so the next run (and ``status``) find the store as the dry run found it.

        On SQLite that transaction holds the store's write lock while the dry run lasts.
        """
        if self.settings.write_mode is not WriteMode.DRY_RUN:
            yield
            return
        with self.store.engine.connect() as connection:
            transaction = connection.begin()
            self._scratch = connection
            try:
                yield
            finally:
                self._scratch = None
                transaction.rollback()

    def _hand_directory(self, client: CrmClient) -> None:
        """A client that resolves e-mails to contacts gets the store's answers, so it keeps only a bounded
        cache (a dry run's contacts are in its own open transaction: not there)."""
        if isinstance(client, UsesDirectory) and self._scratch is None:
            client.use_directory(self._directory(client.connection))

    def _directory(self, name: str) -> ContactDirectory:
        # asked by the client's reading threads while the run's thread stores pages: a read-only transaction,
        # which on SQLite takes no write lock (each look-up used to wait for a page group's commit, and the
        # group for the look-up); the contacts it finds were committed before the activities were read
        def contact_ids(emails: Sequence[str]) -> dict[str, str]:
            with self.store.read() as db:
                return self.store.records.contact_ids_by_email(db, name, emails)

        return contact_ids

    def _queued(self, name: str) -> int:
        with self._read() as db:
            return self.store.queue.count(db, self.job, name)

    # -- one connection ---------------------------------------------------------
    def sync_connection(self, client: CrmClient, mapping: CrmMapping) -> None:
        with self._dry_run_scratch():
            self._sync_connection(client, mapping)

    def _sync_connection(self, client: CrmClient, mapping: CrmMapping) -> None:
        name = client.connection
        self._hand_directory(client)
        counts = self.result.counts.setdefault(name, ConnectionCounts())
        if self.settings.run_mode is RunMode.FULL:
            with self._read() as db:
                self.store.checkpoints.clear_positions(db, self.job, name, self.clock())
        queued_before = self._queued(name)
        pulled = self._pull(client, counts, CONTACTS) and self._pull(client, counts, ACTIVITIES)
        counts.contacts_changed += max(0, self._queued(name) - queued_before)
        if not pulled:
            return
        if not self._decide_and_write(client, mapping, counts):
            return
        if self.settings.write_mode.records:
            with self._transaction() as db:
                self.store.checkpoints.commit(db, self.job, name, self.clock())

    def _pull(self, client: CrmClient, counts: ConnectionCounts, stream: str) -> bool:
        """Pull one stream page by page, storing several pages and the read position of the last one in
        one transaction (:class:`PageGroup` says when); a crash loses at most one group, which the
        next run reads again from the position saved with the group before it."""
        name = client.connection
        full = self.settings.run_mode is RunMode.FULL
        if full:
            cursor = None
        else:
            with self._read() as db:
                cursor = self.store.checkpoints.get(db, self.job, name, stream).resume_from
        with self._read() as db:
            leftover = self.store.records.staged(db, name)
        if leftover:
            # a first load that stopped before it settled: its rows join the store before anything is read
            with self._transaction() as db:
                self.store.records.settle_staged(db, self.job, name)
        with self._read() as db:
            # nothing of the connection stored yet: this pull looks up only what it may have stored itself
            first = self.store.records.first_load(db, name, stream)
        pulled: Iterator[ContactPage | ActivityPage] = (
            client.pull_contacts(cursor) if stream == CONTACTS else client.pull_activities(cursor)
        )
        # Both clients fetch their next page in a thread of their own while this one stores the last group. A
        # second read-ahead here (normalising in a thread too) was measured and dropped: the threads take
        # turns on the interpreter lock, and a Salesforce full sync used ~10 % more CPU with it, HubSpot as much.
        try:
            return self._pull_pages(name, stream, pulled, first, counts)
        finally:
            close = getattr(pulled, "close", None)
            if close is not None:
                close()  # a pull stopped early: the client's generator ends here (its read-ahead waits its page)

    def _pull_pages(
        self,
        name: str,
        stream: str,
        pages: Iterator[ContactPage | ActivityPage],
        first: FirstLoad | None,
        counts: ConnectionCounts,
    ) -> bool:
        full = self.settings.run_mode is RunMode.FULL
        group: list[ContactPage | ActivityPage] = []
        read = 0
        opened = clock = time.monotonic()
        for page in pages:
            counts.add_time("pull", time.monotonic() - clock)
            if not group:
                opened = time.monotonic()
            group.append(page)
            if self.stop.is_set() or self.settings.pages.full(group, time.monotonic() - opened):
                read += self._store_group(name, stream, group, full, counts, read, first)
                group = []
            if self.stop.is_set():
                return False
            clock = time.monotonic()
        counts.add_time("pull", time.monotonic() - clock)
        if group:
            read += self._store_group(name, stream, group, full, counts, read, first)
        if first is not None and stream == ACTIVITIES:
            started = time.monotonic()
            with self._transaction() as db:
                self.store.records.settle_staged(db, self.job, name)
            counts.add_time("store", time.monotonic() - started)
        if self._scratch is None and read >= self.store.records.ANALYZE_AFTER:
            with self._read() as db:
                self.store.records.refresh_statistics(db, stream, read)
        self.emit(ProgressEvent(name, CONTACTS if stream == CONTACTS else ACTIVITIES, "done", read))
        return True

    def _store_group(
        self,
        name: str,
        stream: str,
        group: list[ContactPage | ActivityPage],
        full: bool,
        counts: ConnectionCounts,
        read: int,
        first: FirstLoad | None,
    ) -> int:
        """Store ``group``'s records and its last page's read position in one transaction; count them.
        Returns the records stored."""
        started = time.monotonic()
        with self._transaction(flush=False) as db:
            stored = self._store_pages(db, name, group, full, first)
            self.store.checkpoints.save_position(db, self.job, name, stream, group[-1].cursor, self.clock())
        counts.add_time("store", time.monotonic() - started)
        for page in group:
            if isinstance(page, ActivityPage):
                counts.unmapped += page.unmapped
            counts.skipped += len(page.skipped)
            _report_skipped(name, page.skipped)
        if stream == CONTACTS:
            counts.contacts_read += stored
        else:
            counts.activities_read += stored
        self.emit(ProgressEvent(name, CONTACTS if stream == CONTACTS else ACTIVITIES, "stored", read + stored))
        return stored

    def _store_pages(
        self,
        db: Connection,
        name: str,
        group: Sequence[ContactPage | ActivityPage],
        full: bool,
        first: FirstLoad | None,
    ) -> int:
        """One store call for the records of every page in ``group`` (a record read twice: the later copy
        wins, as page by page). Returns the records stored."""
        now = self.clock()
        people = [record for page in group if isinstance(page, ContactPage) for record in page.records]
        acts = [record for page in group if isinstance(page, ActivityPage) for record in page.records]
        stored = 0
        if people:
            stored += self.store.records.store_contacts(
                db, self.job, name, people, force_dirty=full, now=now, first_load=first
            ).records
        if acts:
            stored += self.store.records.store_activities(
                db, self.job, name, acts, force_dirty=full, now=now, first_load=first
            ).records
        removed = [record for page in group if isinstance(page, ContactPage) for record in page.removed]
        if removed:
            # deleted or merged away in the CRM: out of the store and every queue, no write, no dead letter
            self.store.records.remove_contacts(db, name, removed, now=now)
        return stored

    # -- decide, plan, write -------------------------------------------------------
    def _decide_and_write(self, client: CrmClient, mapping: CrmMapping, counts: ConnectionCounts) -> bool:
        name = client.connection
        with self._transaction() as db:
            # decisions that time alone may have changed (an activity dated ahead came due) are decided again
            self.store.queue.wake(db, self.job, name, self.clock())
        with self._read() as db:
            total = self.store.queue.count(db, self.job, name)
        writes = _Writes(self, client, mapping, counts)
        helpers = self._helpers(name, total)
        with _answers_kept([writes]):
            if helpers is None:
                self._decide_alone(name, mapping, counts, total, writes)
            else:
                with helpers:
                    self._decide_shared(name, mapping, counts, total, writes, helpers)
            writes.flush()
        if helpers is not None and helpers.failure is not None:
            raise helpers.failure
        self.emit(ProgressEvent(name, "decide", "done", counts.decided, total))
        if self.settings.write_mode.writes:
            self.emit(ProgressEvent(name, "write", "done", counts.written + counts.unchanged + counts.failed))
        return not self.stop.is_set()

    def _decide_alone(
        self, name: str, mapping: CrmMapping, counts: ConnectionCounts, total: int, writes: _Writes
    ) -> None:
        after = ""
        while True:
            chunk = self._load(name, counts, after=after)
            if not chunk:
                break
            after = chunk[-1].crm_id
            writes.add(self._decide_chunk(name, chunk, mapping, counts))
            self.emit(ProgressEvent(name, "decide", "decided", counts.decided, total))
            writes.full_batches()
            if self.stop.is_set():
                # planned writes left in the buffer stay in the outbox and queued: the next run makes them
                break

    def _decide_shared(
        self, name: str, mapping: CrmMapping, counts: ConnectionCounts, total: int, writes: _Writes, helpers: Helpers
    ) -> None:
        """Claim chunks beside the helpers, write what everyone planned, then wait for the helpers' last chunks."""
        writes.made = helpers.written
        while not self.stop.is_set():
            chunk_number = helpers.claim()
            if chunk_number is None:
                break
            mine = self._decide_claimed(name, helpers.bounds, chunk_number, mapping, counts)
            helpers.planned(len(mine))
            writes.add(mine)
            self._gather(helpers, counts, writes, wait=0.0)
            self.emit(ProgressEvent(name, "decide", "decided", counts.decided, total))
            writes.full_batches()
        while helpers.busy and not self.stop.is_set():
            self._gather(helpers, counts, writes, wait=0.05)
            self.emit(ProgressEvent(name, "decide", "decided", counts.decided, total))
            writes.full_batches()
        helpers.stop()

    def _decide_claimed(
        self, name: str, bounds: list[str], chunk_number: int, mapping: CrmMapping, counts: ConnectionCounts
    ) -> list[StageWrite]:
        """Decide and record chunk ``chunk_number`` of the queue (claimed by this process or a helper)."""
        after, until = chunk_range(bounds, chunk_number)
        chunk = self._load(name, counts, after=after, until=until, whole=True)
        return self._decide_chunk(name, chunk, mapping, counts)

    def _gather(self, helpers: Helpers, counts: ConnectionCounts, writes: _Writes, *, wait: float) -> None:
        for report in helpers.collect(wait):
            counts.decided += report.decided
            counts.changed += report.changed
            counts.recovered += report.recovered
            counts.add_time("helpers", report.seconds)
            writes.add(report.writes)

    def _helpers(self, name: str, total: int) -> Helpers | None:
        """Helper processes for a long queue, or ``None`` when this process decides it alone: one process
        wanted, a short queue, a dry run (its store is one open transaction of this process), a store in this
        process's memory, or a clock that cannot be sent to another process."""
        wanted = self.settings.decide_processes - 1
        url = self.store.engine.url
        if wanted < 1 or total < self.settings.share_from or self._scratch is not None:
            return None
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            return None
        try:
            pickle.dumps(self.clock)
        except Exception:
            log.debug("deciding in one process: the run's clock cannot be sent to a helper")
            return None
        with self._read() as db:
            bounds = self.store.queue.chunk_bounds(db, self.job, name, size=self.settings.chunk_size, now=self.clock())
        if not bounds:
            return None
        task = HelperTask(
            config=self.config,
            store_url=url.render_as_string(hide_password=False),
            settings=self.settings,
            connection=name,
            owner=self.lease.owner,
            ttl=self.lease.ttl,
            clock=self.clock,
            parent=os.getpid(),
        )
        return Helpers(decide_beside, task, min(wanted, len(bounds)), bounds)

    def _load(
        self, name: str, counts: ConnectionCounts, *, after: str, until: str | None = None, whole: bool = False
    ) -> list[QueuedContact]:
        """The next chunk of due contacts after ``after``, or with ``whole`` every due contact up to ``until``
        (a claimed chunk, :mod:`connector.sync.helper`); read without taking the store's write lock."""
        clock = time.monotonic()
        reading = self._read() if self._scratch is not None else self.store.read()
        with reading as db:
            chunk = self.store.queue.due(
                db,
                self.job,
                name,
                after=after,
                until=until,
                limit=_WHOLE_RANGE if whole else self.settings.chunk_size,
                now=self.clock(),
            )
        counts.add_time("load", time.monotonic() - clock)
        return chunk

    def _decide_chunk(
        self,
        name: str,
        chunk: list[QueuedContact],
        mapping: CrmMapping,
        counts: ConnectionCounts,
        decider: Decider | None = None,
    ) -> list[StageWrite]:
        started = time.monotonic()
        now = self.clock()
        plan = decide_chunk(
            chunk,
            rules=self.rules,
            mapping=mapping,
            write_mode=self.settings.write_mode,
            run_id=self.settings.run_id,
            now=now,
            decider=decider,
        )
        counts.decided += len(chunk)
        counts.changed += plan.changed
        self._keep_planned(plan)
        with self._transaction() as db:
            counts.recovered += self._record_landed(db, name, plan, now)
            self.store.queue.record_decisions(db, self.job, name, plan.decisions)
            self.store.history.note_beyond(db, self.job, name, plan.beyond)
            self.store.history.back_on_ladder(db, self.job, name, plan.on_ladder, now)
            self.store.outbox.drop(db, self.job, name, plan.stale)
            self.store.outbox.add(db, self.job, name, plan.intents)
            self.store.dead_letters.resolve(db, self.job, name, plan.not_needed, Resolution.NOT_NEEDED, now)
        counts.add_time("decide", time.monotonic() - started)
        return plan.writes

    def _record_landed(self, db: Connection, name: str, plan: ChunkPlan, now: datetime) -> int:
        """Record the writes of an interrupted run that the CRM shows: history once, queue and outbox settled."""
        if not plan.landed:
            return 0
        changes, written = [], []
        for queued in plan.landed:
            assert queued.pending is not None
            changes.append(Change(queued.crm_id, queued.email, queued.pending))
            written.append(Written(queued, queued.pending.to_stage, {}))
        recorded = self.store.history.record(db, self.job, name, changes)
        self._commit_written(db, name, written, now)
        ids = [queued.crm_id for queued in plan.landed]
        self.store.outbox.drop(db, self.job, name, ids)
        self.store.dead_letters.resolve(db, self.job, name, ids, Resolution.WRITTEN, now)
        return recorded

    def _commit_written(self, db: Connection, name: str, written: list[Written], now: datetime) -> None:
        self.store.records.mark_written(db, name, written)
        self.store.queue.mark_written(db, self.job, name, written, now)

    def _keep_planned(self, plan: ChunkPlan) -> None:
        room = max(0, self.settings.dry_run_limit - len(self.result.planned))
        self.result.planned.extend(plan.planned[:room])
        self.result.planned_dropped += max(0, len(plan.planned) - room)

    def _call(self, client: CrmClient, batch: list[StageWrite]) -> list[WriteResult]:
        """The CRM's answer for each write of ``batch`` (all to retry later when the client's retries are spent)."""
        name = client.connection
        try:
            results = client.write_stages([write.update for write in batch])
        except TransientError as error:
            # the client's retries are spent; the whole batch waits for a later run
            log.warning("write batch deferred", extra={"connection": name, "error": type(error).__name__})
            results = [WriteResult(crm_id=w.update.crm_id, outcome=WriteOutcome.RETRY, code="transient") for w in batch]
        if len(results) != len(batch):
            raise TransientError(f"{name}: the client answered {len(results)} results for {len(batch)} updates")
        return list(results)

    def _settle(
        self,
        name: str,
        mapping: CrmMapping,
        writes: list[StageWrite],
        results: list[WriteResult],
        counts: ConnectionCounts,
    ) -> None:
        """Record what the CRM answered for ``writes`` (one or several batches) in one transaction."""
        started = time.monotonic()
        now = self.clock()
        settled = settle_batch(
            writes,
            results,
            run_id=self.settings.run_id,
            now=now,
            stage_fields=set(mapping.stage_fields()),
            max_attempts=self.settings.max_attempts,
        )
        with self._transaction() as db:
            self._commit_settlement(db, name, writes, settled, now)
        counts.written += len(settled.written)
        counts.unchanged += settled.unchanged
        counts.failed += settled.failed
        counts.deferred += settled.deferred
        counts.add_time("record", time.monotonic() - started)
        self.emit(ProgressEvent(name, "write", "written", counts.written + counts.unchanged + counts.failed))

    def _commit_settlement(
        self, db: Connection, name: str, batch: list[StageWrite], settled: Settlement, now: datetime
    ) -> None:
        self.store.dead_letters.add(db, self.job, name, settled.dead_letters, run_id=self.settings.run_id, now=now)
        self.store.queue.defer(db, self.job, name, settled.deferrals)
        self.store.history.record(db, self.job, name, settled.changes)
        self._commit_written(db, name, settled.written, now)
        for group in settled.resolved:
            self.store.dead_letters.resolve(db, self.job, name, group.crm_ids, group.resolution, now)
        self.store.queue.done(db, self.job, name, settled.done)
        self.store.outbox.drop(db, self.job, name, [write.contact.crm_id for write in batch])

    # -- a unifying job: people across the connections ------------------------------------
    def sync_people(self, clients: dict[str, CrmClient], mappings: dict[str, CrmMapping]) -> None:
        """Pull every connection, match the records into people, decide each person once and write her
        stage to each of her records with that record's client; then commit every connection's checkpoint."""
        with self._dry_run_scratch():
            self._sync_people(clients, mappings)

    def _sync_people(self, clients: dict[str, CrmClient], mappings: dict[str, CrmMapping]) -> None:
        names = list(clients)
        for name in names:
            self._hand_directory(clients[name])
            counts = self.result.counts.setdefault(name, ConnectionCounts())
            if self.settings.run_mode is RunMode.FULL:
                with self._read() as db:
                    self.store.checkpoints.clear_positions(db, self.job, name, self.clock())
            queued_before = self._queued(name)
            pulled = self._pull(clients[name], counts, CONTACTS) and self._pull(clients[name], counts, ACTIVITIES)
            counts.contacts_changed += max(0, self._queued(name) - queued_before)
            if not pulled:
                return
        for name in names:
            self._link_people(name)
            if self.stop.is_set():
                return
        if not self._decide_people_and_write(clients, mappings):
            return
        if self.settings.write_mode.records:
            with self._transaction() as db:
                for name in names:
                    self.store.checkpoints.commit(db, self.job, name, self.clock())

    def _link_people(self, name: str) -> None:
        """Match ``name``'s queued and never-linked records into people (:mod:`connector.sync.people`), a chunk
        per transaction; a record that joins a person is queued so that she is decided again with it."""
        after = ""
        people = self.store.people
        while not self.stop.is_set():
            now = self.clock()
            with self._transaction() as db:
                keys = people.unlinked_queued(db, self.job, name, after=after, limit=self.settings.chunk_size)
                if not keys:
                    return
                after = keys[-1].crm_id
                emails = _record_emails(db, self.store, name, [key.crm_id for key in keys])
                owners = people.owners(db, {e for item in emails for e in (item.primary, *item.others) if e})
                holders = {owner.record for found in owners.values() for owner in found}
                plan = plan_links(
                    emails,
                    known=people.links(db, keys),
                    owners=owners,
                    unlinked=people.unlinked(db, sorted(set(keys) | holders)),
                )
                people.add_people(db, plan.people, now)
                people.link(db, plan.links, now)
                people.set_emails(db, plan.emails)
                self.store.queue.requeue(db, self.job, name, [key.crm_id for key in plan.joined])
                new = people.report(db, plan.conflicts, now)
            _report_conflicts(self.job, new)

    def _decide_people_and_write(self, clients: dict[str, CrmClient], mappings: dict[str, CrmMapping]) -> bool:
        names = list(clients)
        with self._transaction() as db:
            for name in names:
                self.store.queue.wake(db, self.job, name, self.clock())
        totals = {name: self._queued(name) for name in names}
        writes = {name: _Writes(self, clients[name], mappings[name], self.result.counts[name]) for name in names}
        with _answers_kept(list(writes.values())):
            self._decide_people(names, mappings, totals, writes)
            for each in writes.values():
                each.flush()
        for name in names:
            counts = self.result.counts[name]
            self.emit(ProgressEvent(name, "decide", "done", counts.decided, totals[name]))
            if self.settings.write_mode.writes:
                self.emit(ProgressEvent(name, "write", "done", counts.written + counts.unchanged + counts.failed))
        return not self.stop.is_set()

    def _decide_people(
        self, names: list[str], mappings: dict[str, CrmMapping], totals: dict[str, int], writes: dict[str, _Writes]
    ) -> None:
        """Decide the queued people chunk by chunk, each of her records with its connection's mapping; their
        writes handed to each connection's calls as they are planned."""
        after = ""
        while not self.stop.is_set():
            clock = time.monotonic()
            now = self.clock()
            loaded: dict[str, list[QueuedContact]] = {}
            waiting: set[RecordKey] = set()
            with self._read() as db:
                person_ids = self.store.people.due(
                    db, self.job, names, after=after, limit=self.settings.chunk_size, now=now
                )
                if not person_ids:
                    break
                members = self.store.people.members(db, person_ids, names)
                for name in names:
                    ids = [key.crm_id for pid in person_ids for key in members.get(pid, ()) if key.connection == name]
                    if ids:
                        loaded[name], held = self.store.queue.records(db, self.job, name, ids, now=now)
                        waiting.update(RecordKey(name, crm_id) for crm_id in held)
            after = person_ids[-1]
            share = (time.monotonic() - clock) / max(1, len(loaded))
            by_key = {RecordKey(q.connection, q.crm_id): q for found in loaded.values() for q in found}
            deciders: dict[RecordKey, Decider] = {}
            conflicts = []
            for person_id in person_ids:
                records = [by_key[key] for key in members.get(person_id, ()) if key in by_key]
                if not records:
                    continue
                evidence = person_evidence(person_id, records, names)
                decide_record = person_decider(evidence, self.rules, now)
                for queued in records:
                    deciders[RecordKey(queued.connection, queued.crm_id)] = decide_record
                conflicts.extend(hand_set_conflicts(evidence, records, self.rules, now))
            decider = _by_record(deciders)
            for name, found in loaded.items():
                counts = self.result.counts[name]
                counts.add_time("load", share)
                chunk = [q for q in found if RecordKey(name, q.crm_id) not in waiting]
                if chunk:
                    writes[name].add(self._decide_chunk(name, chunk, mappings[name], counts, decider))
                self.emit(ProgressEvent(name, "decide", "decided", counts.decided, totals[name]))
            if conflicts:
                with self._transaction() as db:
                    new = self.store.people.report(db, conflicts, now)
                _report_conflicts(self.job, new)
            for each in writes.values():
                each.full_batches()


@tuned()  # as in the run's process: a helper makes as many short-lived objects
def decide_beside(
    number: int, task: HelperTask, bounds: list[str], claims: Any, ahead: Any, out: Any, stop: Any
) -> None:
    """A helper process's life (:mod:`connector.sync.helper`): claim chunks of the queue, decide and record
    each as the run's process does, hand over the planned writes; until no chunk is left, the run stops, the
    run's process is gone or something fails (then reported to the run's process)."""
    ending: list[int] = []
    # Ctrl-C reaches the whole process group: the run's process decides when to stop; a SIGTERM ends this
    # helper after its chunk
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, _frame: ending.append(signum))
    store: Store | None = None
    try:
        settings: RunSettings = task.settings
        store = Store(create_store_engine(task.store_url))
        lease = Lease(store, settings.job.name, task.owner, task.ttl, task.clock)
        result = RunResult(
            run_id=settings.run_id, job=settings.job.name, status=RunStatus.RUNNING, started_at=task.clock()
        )
        rules = job_rules(settings.job, task.config)
        run = _Run(
            settings,
            config=task.config,
            store=store,
            lease=lease,
            result=result,
            rules=rules,
            clock=task.clock,
            emit=None,
            stop=threading.Event(),
        )
        mapping = task.config.connection_mapping(task.connection)
        chunks = len(bounds) + 1
        while not ending and room_to_plan(ahead, stop, task.parent):
            chunk_number = claim(claims, chunks)
            if chunk_number is None:
                break
            started = time.monotonic()
            counts = ConnectionCounts()
            writes = run._decide_claimed(task.connection, bounds, chunk_number, mapping, counts)
            report = Planned(
                [without_activities(write) for write in writes],
                decided=counts.decided,
                changed=counts.changed,
                recovered=counts.recovered,
                seconds=time.monotonic() - started,
            )
            planned(ahead, len(report.writes))
            out.put((number, report))
        out.put((number, Finished()))
    except BaseException as error:  # reported: the run's process fails the run with it
        out.put((number, Failed(portable(error))))
    finally:
        if store is not None:
            store.close()
        out.close()
        out.join_thread()


def _by_record(deciders: dict[RecordKey, Decider]) -> Decider:
    """One decider for a chunk: each record decided by its person's."""

    def decide_record(queued: QueuedContact, contact: Contact) -> StageDecision:
        return deciders[RecordKey(queued.connection, queued.crm_id)](queued, contact)

    return decide_record


def _record_emails(db: Connection, store: Store, connection: str, crm_ids: Sequence[str]) -> list[RecordEmails]:
    """Each stored record's addresses, in matching form: its own and the aliases its mapping read."""
    return [
        record_emails(RecordKey(connection, crm_id), email, others)
        for crm_id, email, others in store.people.addresses(db, connection, crm_ids)
    ]


def _report_conflicts(job: str, conflicts: Sequence[PersonConflict]) -> None:
    """One event per conflict, the first time it is seen (the store keeps it for ``crmsync people conflicts``)."""
    for conflict in conflicts:
        log.warning(
            "person conflict: %s",
            conflict.kind,
            extra={
                "event": "person_conflict",
                "job": job,
                "kind": conflict.kind,
                "person_id": conflict.person_id,
                "records": list(conflict.records),
                "action": conflict.action,
            },
        )
