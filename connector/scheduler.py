"""``crmsync scheduler``: run every job on its cron schedule, one run of a job at a time.

Several schedulers (on several machines, with PostgreSQL) may run at once:
each run takes the job's lease in the store first, so a job never runs
twice at the same moment; a scheduler that finds the lease held skips that
tick. Setting ``stop`` (SIGTERM) lets the current run finish its batch,
commit and return, then the loop exits.

Nothing a job throws stops the scheduler: ``run_job`` records the failure
as a failed run (so ``status`` shows it), the scheduler logs it on one line
at ERROR and the other jobs go on; the job is tried again at its next tick.

Alerts (the config's ``[alerts]``) go out after each run is recorded, on a
background thread, so a slow webhook never delays the next job; at every
wake-up the scheduler also checks that each job has completed a run within
``stale_intervals`` of its schedule's intervals.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from croniter import CroniterError, croniter

from connector.alerts.dispatch import Alerter
from connector.alerts.triggers import stale_alert
from connector.config import Config
from connector.errors import ConfigError
from connector.jobs import Job, load_jobs
from connector.store import LeaseHeld, Store, new_owner, queries
from connector.sync import ClientFactory, Clock, RunResult, run_job, utc_now
from connector.sync.redact import safe_error, secret_values

log = logging.getLogger(__name__)


def next_run(job: Job, after: datetime) -> datetime:
    """The first tick of the job's cron schedule (UTC) strictly after ``after``.

    Raises ``ConfigError`` for a schedule that never fires (job files refuse those when loaded).
    """
    try:
        return croniter(job.schedule, after).get_next(datetime)
    except (CroniterError, ValueError):
        raise ConfigError(f"job {job.name!r}: schedule {job.schedule!r} never fires") from None


class Scheduler:
    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        jobs: dict[str, Job] | None = None,
        clients: ClientFactory,
        clock: Clock = utc_now,
        stop: threading.Event | None = None,
        wait: Callable[[float], bool] | None = None,
        owner: str | None = None,
        on_run: Callable[[Job, RunResult | None, str], None] | None = None,
        alerter: Alerter | None = None,
    ) -> None:
        if jobs is None:
            jobs, problems = load_jobs(config.jobs_dir)
            if problems:
                raise ConfigError("\n".join(str(problem) for problem in problems), problems)
        if not jobs:
            raise ConfigError(f"no job to schedule in {config.jobs_dir}")
        self.config = config
        self.store = store
        self.jobs = jobs
        self.clients = clients
        self.clock = clock
        self.stop = stop or threading.Event()
        self.wait = wait or self.stop.wait
        self.owner = owner or new_owner()
        self.on_run = on_run or (lambda _job, _result, _outcome: None)
        self.alerter = alerter if alerter is not None else Alerter(config.alerts, store)
        self.started_at = self.clock()

    def run_now(self, job: Job) -> RunResult | None:
        """Run ``job`` once if no one else is; ``None`` when skipped or failed (logged); then its alerts."""
        started = self.clock()
        try:
            result = run_job(
                job,
                self.config,
                store=self.store,
                clients=self.clients,
                clock=self.clock,
                stop=self.stop,
                owner=self.owner,
            )
        except LeaseHeld as held:
            log.info("job skipped: lease held", extra={"job": job.name, "holder": held.owner})
            self.on_run(job, None, "skipped")
            return None
        except Exception as error:
            # recorded in the store by run_job when the store could be reached; the next tick tries again
            message = safe_error(error, secret_values(self.config))
            log.error("job %s failed: %s", job.name, message, extra={"job": job.name, "error": message})
            self.on_run(job, None, f"failed: {message}")
            self._alert_latest(job, started)
            return None
        self.on_run(job, result, result.status)
        self.alerter.after_run(result.run_id, now=self.clock())
        return result

    def _alert_latest(self, job: Job, started: datetime) -> None:
        """The alerts of the run ``job`` just recorded as failed (none when it could not be recorded)."""
        try:
            run = queries.latest_run_since(self.store, job.name, started)
        except Exception:  # the store is what failed: nothing recorded to alert on
            return
        if run is not None:
            self.alerter.after_run(run.id, now=self.clock())

    def check_stale(self) -> None:
        """Alert for each job that has not completed a run for ``stale_intervals`` of its intervals."""
        settings = self.config.alerts
        if not settings.enabled or settings.stale_intervals is None:
            return
        now = self.clock()
        for job in self.jobs.values():
            try:
                first = next_run(job, now)
                interval = next_run(job, first) - first
                last = queries.last_completed_at(self.store, job.name)
            except Exception:  # a schedule that never fires, or the store unreachable: logged elsewhere
                continue
            alert = stale_alert(
                job.name, interval=interval, last_completed=last, since=self.started_at, now=now, settings=settings
            )
            if alert is not None:
                self.alerter.submit([alert], now=now)

    def run_forever(self) -> None:
        """Run each job at its cron ticks until ``stop`` is set."""
        now = self.clock()
        due: dict[str, datetime] = {}
        for job in self.jobs.values():
            self._plan(due, job, now)
        log.info("scheduler started", extra={"jobs": sorted(self.jobs), "owner": self.owner})
        checked = now - timedelta(days=1)
        while due and not self.stop.is_set():
            if self.clock() - checked >= timedelta(minutes=1):
                self.check_stale()
                checked = self.clock()
            name = min(due, key=lambda key: due[key])
            delay = (due[name] - self.clock()).total_seconds()
            if delay > 0:
                # wake at least every minute so a clock jump or a stop is noticed
                if self.wait(min(delay, 60.0)):
                    break
                continue
            self.run_now(self.jobs[name])
            # ticks missed while the job ran are skipped, not queued
            self._plan(due, self.jobs[name], self.clock())
        self.alerter.close()
        log.info("scheduler stopped", extra={"owner": self.owner})

    def _plan(self, due: dict[str, datetime], job: Job, after: datetime) -> None:
        """Put ``job``'s next tick in ``due``; a schedule that never fires takes the job out (logged)."""
        try:
            due[job.name] = next_run(job, after)
        except ConfigError as error:
            log.error("job %s not scheduled: %s", job.name, error, extra={"job": job.name, "error": str(error)})
            due.pop(job.name, None)
