"""The procrastinate app of team mode: the run task, each job's periodic deferral, stalled-run recovery.

What procrastinate guarantees, and how crmsync uses it:

- **One run of a job at a time, whichever worker takes it.** Every run of
  job ``J`` is deferred with ``lock="J"``: procrastinate starts no job while
  another job with the same lock is ``doing``. The store's lease of the job
  (taken by ``run_job``) stays the last word: a run started inline
  (``crmsync run --inline``) or by the single-machine scheduler still never
  overlaps a worker's.
- **One pending run per job.** Runs are deferred with ``queueing_lock="J"``
  too: while a run of ``J`` waits in the queue, a tick or a manual run adds
  nothing (the tick is counted as missed; the queued run covers it).
- **Periodic deferral from each job's cron.** Every worker defers the ticks;
  procrastinate's unique ``(task, periodic_id, timestamp)`` keeps one job per
  tick whatever the number of workers.
- **Workers that die.** Workers send a heartbeat every 10 s. Every 15 s a
  recovery task closes the runs of workers silent for
  :data:`STALLED_AFTER_SECONDS` as failed (which frees the job's lock) and
  queues a new run of the job unless one already waits; it resumes from the
  store as after any crash (the outbox and the checkpoints make its effects
  exactly once). A lease the dead worker held is taken over at once on the
  same host, after :data:`LEASE_TTL` elsewhere; until then the run finds the
  lease held and queues itself again :data:`LEASE_RETRY_SECONDS` later.

A dead worker's job goes before the ticks waiting in the queue: the
recovery task and the run it queues have :data:`RECOVERY_PRIORITY`, and a
tick run of the job already waiting (it covers the dead run) is replaced by
one with that priority. With every worker busy, the job is then the next one
taken, not the last of a backlog.

Nothing is ever put back in the queue with procrastinate's own retry: a
retried job keeps its queueing lock, and PostgreSQL refuses a second waiting
job with the same one (a tick may have queued a run meanwhile). A new run is
deferred instead, and ``AlreadyEnqueued`` means a waiting run covers it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import Status

from connector.jobs import Job
from connector.store import LeaseHeld

if TYPE_CHECKING:
    from procrastinate.job_context import JobContext

log = logging.getLogger(__name__)

QUEUE = "crmsync"
RUN_TASK = "crmsync.run_job"
RECOVER_TASK = "crmsync.recover_stalled"
RECOVER_CRON = "* * * * * */15"
"""Every 15 s (croniter's sixth field is seconds): a dead worker's job is queued again at most 15 s after
it is taken for dead, so its job runs again within about 45 s of the kill on the same host."""
STALLED_AFTER_SECONDS = 30.0
"""A worker silent this long (three missed heartbeats) is taken for dead and its runs are queued again."""
LEASE_TTL = timedelta(seconds=60)
"""The job lease of a team run: another machine takes a dead worker's job over after this."""
LEASE_RETRY_SECONDS = 20
"""A run that finds the job's lease held (a dead worker's, not yet expired) is queued again this much later."""

KEEP_FINISHED_HOURS = 48
"""Finished queue jobs are deleted after this (the recovery alone adds 5,760 a day); ``runs`` is the history."""
RECOVERY_PRIORITY = 10
"""Recovery and a dead worker's job are taken before the ticks waiting in the queue (procrastinate's default: 0)."""

Runner = Callable[..., Any]
"""``runner(job, full=..., dry_run=...)``: runs one job now (``run_job`` over the worker's store and clients)."""


@dataclass(frozen=True, slots=True)
class Deferred:
    """What :func:`defer_run` did: ``queue_id`` of the new queue job, or ``None`` when one was already waiting."""

    job: str
    queue_id: int | None


def build_app(connector: Any, jobs: Mapping[str, Job], runner: Runner, *, schedule: bool = True) -> procrastinate.App:
    """A procrastinate app over ``connector`` that runs ``jobs`` with ``runner`` on their cron schedules.

    ``schedule=False``: no periodic deferral (an app that only defers manual
    runs, or a worker that only takes queued runs).
    """
    app = procrastinate.App(connector=connector)

    @app.task(name=RUN_TASK, queue=QUEUE)
    def run_job_task(job: str, timestamp: int | None = None, full: bool = False, dry_run: bool | None = None) -> None:
        found = jobs.get(job)
        if found is None:
            # the job file went away after the run was queued: nothing to run, nothing to retry
            log.warning("queued run of an unknown job dropped", extra={"job": job})
            return
        try:
            result = runner(found, full=full, dry_run=dry_run)
        except LeaseHeld as held:
            # a dead worker's lease not expired yet (another host), or an inline run: come back later
            queued = defer_run(app, job, full=full, delay_seconds=LEASE_RETRY_SECONDS).queue_id
            log.info("job lease held: run queued again", extra={"job": job, "holder": held.owner, "queue_id": queued})
            return
        status = getattr(result, "status", None)
        log.info("team run done", extra={"job": job, "tick": timestamp, "status": str(status)})

    periodic: Any = run_job_task  # typed for tasks taking the tick first; ours takes it by keyword
    for job in jobs.values() if schedule else ():
        app.periodic(
            cron=job.schedule,
            periodic_id=job.name,
            lock=job.name,
            queueing_lock=job.name,
            task_kwargs={"job": job.name},
        )(periodic)

    @app.task(name=RECOVER_TASK, queue=QUEUE, queueing_lock=RECOVER_TASK, pass_context=True, priority=RECOVERY_PRIORITY)
    async def recover_stalled(context: JobContext, timestamp: int | None = None) -> None:
        await requeue_stalled(context.app)
        if timestamp is not None and timestamp % 3600 == 0:  # once an hour, at the hour's first tick
            await prune_finished(context.app)

    if schedule:
        recover: Any = recover_stalled
        app.periodic(cron=RECOVER_CRON, periodic_id="recover")(recover)
    return app


async def requeue_stalled(
    app: procrastinate.App, *, seconds_since_heartbeat: float = STALLED_AFTER_SECONDS
) -> list[Deferred]:
    """Close the runs of workers silent for ``seconds_since_heartbeat`` and queue their jobs again."""
    manager = app.job_manager
    stalled = await manager.get_stalled_jobs(task_name=RUN_TASK, seconds_since_heartbeat=seconds_since_heartbeat)
    requeued: list[Deferred] = []
    for job in stalled:
        assert job.id is not None
        await manager.finish_job_by_id_async(job.id, status=Status.FAILED, delete_job=False)
        name = str(job.task_kwargs.get("job", job.lock))
        full = bool(job.task_kwargs.get("full", False))
        deferred = await _defer(app, name, full=full, delay_seconds=0, priority=RECOVERY_PRIORITY)
        if deferred.queue_id is None:
            deferred = await _hurry(app, name, full=full)
        log.warning(
            "stalled run closed, job queued again",
            extra={"stalled_id": job.id, "job": name, "queue_id": deferred.queue_id},
        )
        requeued.append(deferred)
    return requeued


async def prune_finished(app: procrastinate.App, *, hours: int = KEEP_FINISHED_HOURS) -> None:
    """Delete the queue jobs finished more than ``hours`` ago (the store's ``runs`` table keeps the history)."""
    await app.job_manager.delete_old_jobs(nb_hours=hours, queue=QUEUE, include_failed=True, include_cancelled=True)


def _configure(app: procrastinate.App, job: str, *, full: bool, delay_seconds: int, priority: int = 0) -> Any:
    kwargs: dict[str, Any] = {"job": job}
    if full:
        kwargs["full"] = True
    later: dict[str, Any] = {"schedule_in": {"seconds": delay_seconds}} if delay_seconds else {}
    return app.tasks[RUN_TASK].configure(lock=job, queueing_lock=job, task_kwargs=kwargs, priority=priority, **later)


async def _defer(app: procrastinate.App, job: str, *, full: bool, delay_seconds: int, priority: int = 0) -> Deferred:
    try:
        configured = _configure(app, job, full=full, delay_seconds=delay_seconds, priority=priority)
        return Deferred(job, await configured.defer_async())
    except AlreadyEnqueued:
        return Deferred(job, None)


async def _hurry(app: procrastinate.App, job: str, *, full: bool) -> Deferred:
    """The run of ``job`` waiting in the queue replaced by one of :data:`RECOVERY_PRIORITY` (``None``: it was
    taken meanwhile, or already had that priority)."""
    manager = app.job_manager
    for waiting in await manager.list_jobs_async(queueing_lock=job, status=Status.TODO.value):
        assert waiting.id is not None
        if waiting.priority >= RECOVERY_PRIORITY or not await manager.cancel_job_by_id_async(waiting.id):
            continue  # a worker took it between the two queries: it runs now, which is what we want
        full = full or bool(waiting.task_kwargs.get("full", False))
        return await _defer(app, job, full=full, delay_seconds=0, priority=RECOVERY_PRIORITY)
    return Deferred(job, None)


def defer_run(app: procrastinate.App, job: str, *, full: bool = False, delay_seconds: int = 0) -> Deferred:
    """Queue one run of ``job`` (now, or ``delay_seconds`` later) under the job's locks; the app must be open.

    ``queue_id`` is ``None`` when a run of the job already waits: it covers this one.
    """
    try:
        return Deferred(job, _configure(app, job, full=full, delay_seconds=delay_seconds).defer())
    except AlreadyEnqueued:
        return Deferred(job, None)
