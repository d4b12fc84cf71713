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
- **Workers that die.** Workers send a heartbeat every 10 s. Every minute a
  recovery task puts back in the queue the runs of workers silent for
  :data:`STALLED_AFTER_SECONDS`; the run resumes from the store as after any
  crash (the outbox and the checkpoints make its effects exactly once). A
  lease the dead worker held is taken over at once on the same host, after
  :data:`LEASE_TTL` elsewhere; until then the retried run waits and tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import procrastinate
from procrastinate import RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued

from connector.jobs import Job
from connector.store import LeaseHeld

if TYPE_CHECKING:
    from procrastinate.job_context import JobContext

log = logging.getLogger(__name__)

QUEUE = "crmsync"
RUN_TASK = "crmsync.run_job"
RECOVER_TASK = "crmsync.recover_stalled"
RECOVER_CRON = "* * * * *"
STALLED_AFTER_SECONDS = 30.0
"""A worker silent this long (three missed heartbeats) is taken for dead and its runs are queued again."""
LEASE_TTL = timedelta(seconds=60)
"""The job lease of a team run: another machine takes a dead worker's job over after this."""
LEASE_RETRY_SECONDS = 20
"""A run that finds the job's lease held (a dead worker's, not yet expired) tries again after this."""
LEASE_RETRY_ATTEMPTS = 10

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

    @app.task(
        name=RUN_TASK,
        queue=QUEUE,
        retry=RetryStrategy(max_attempts=LEASE_RETRY_ATTEMPTS, wait=LEASE_RETRY_SECONDS, retry_exceptions={LeaseHeld}),
    )
    def run_job_task(job: str, timestamp: int | None = None, full: bool = False, dry_run: bool | None = None) -> None:
        found = jobs.get(job)
        if found is None:
            # the job file went away after the run was queued: nothing to run, nothing to retry
            log.warning("queued run of an unknown job dropped", extra={"job": job})
            return
        result = runner(found, full=full, dry_run=dry_run)
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

    @app.task(name=RECOVER_TASK, queue=QUEUE, queueing_lock=RECOVER_TASK, pass_context=True)
    async def recover_stalled(context: JobContext, timestamp: int | None = None) -> None:
        await requeue_stalled(context.app)

    if schedule:
        recover: Any = recover_stalled
        app.periodic(cron=RECOVER_CRON, periodic_id="recover")(recover)
    return app


async def requeue_stalled(
    app: procrastinate.App, *, seconds_since_heartbeat: float = STALLED_AFTER_SECONDS
) -> list[int]:
    """Put the runs of workers silent for ``seconds_since_heartbeat`` back in the queue; their queue ids."""
    manager = app.job_manager
    stalled = await manager.get_stalled_jobs(task_name=RUN_TASK, seconds_since_heartbeat=seconds_since_heartbeat)
    requeued: list[int] = []
    for job in stalled:
        await manager.retry_job(job)
        log.warning("stalled run queued again", extra={"queue_id": job.id, "lock": job.lock})
        assert job.id is not None
        requeued.append(job.id)
    return requeued


def defer_run(app: procrastinate.App, job: str, *, full: bool = False) -> Deferred:
    """Queue one run of ``job`` now (``crmsync run`` in team mode), under the job's locks (the app must be open)."""
    task = app.tasks[RUN_TASK]
    kwargs: dict[str, Any] = {"job": job}
    if full:
        kwargs["full"] = True
    try:
        queue_id = task.configure(lock=job, queueing_lock=job, task_kwargs=kwargs).defer()
    except AlreadyEnqueued:
        return Deferred(job, None)
    return Deferred(job, queue_id)
