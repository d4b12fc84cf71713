"""Running the sync jobs: ``run`` (one job now) and ``scheduler`` (every job on its cron schedule).

Exit codes are those of ``connector.cli.exits``: 0 the run completed
(rejected records are reported, not a failure) or was asked to stop and
committed what it had done; 1 retries spent; 2 a file or setting to fix;
3 credentials refused; 4 API quota used up; 5 another process runs the
job; 6 the state store failed.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from connector.cli.exits import CommandFailed, ExitCode, report_failure
from connector.cli.services import Services, services
from connector.cli.terminal import err, line, out, safe, write_json

if TYPE_CHECKING:
    from datetime import datetime

    from connector.config import Config
    from connector.jobs import Job
    from connector.store import Store
    from connector.sync import RunResult


JOB_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
"""What a job may be called (the pattern of ``Job.name``): never a path."""


def find_job(config: Config, name: str) -> Job:
    """The job file ``name`` of ``config``, whose connections the config defines."""
    from connector.jobs import find_job as find

    if not JOB_NAME.fullmatch(name):
        # a job is a file jobs/NAME.toml: a path ("../mappings/lifecycle") must not read files outside jobs/
        raise CommandFailed(
            f"{name!r} is not a job name (lower-case letters, digits, - and _; the file jobs/NAME.toml)"
        )
    job = find(config.jobs_dir, name)
    missing = [c for c in job.connections if c not in config.connections]
    if missing:
        raise CommandFailed(f"job {name!r} names connection(s) {missing} that the config does not define")
    return job


def execute(
    context: Services, job: Job, config: Config, store: Store, *, full: bool, dry_run: bool | None, progress: bool,
    stop: threading.Event,
) -> RunResult:  # fmt: skip
    """Run ``job`` now; raises what ``run_job`` raises when the run could not complete."""
    from connector.sync import run_job

    if progress:
        from connector.cli.progress import RichProgress

        with RichProgress(err) as display:
            return run_job(
                job,
                config,
                store=store,
                clients=context.clients,
                clock=context.clock,
                full=full,
                dry_run=dry_run,
                progress=display,
                stop=stop,
            )
    return run_job(
        job, config, store=store, clients=context.clients, clock=context.clock, full=full, dry_run=dry_run, stop=stop
    )


def print_summary(result: RunResult) -> None:
    totals = result.totals()
    out.print(
        line(
            safe(result.job),
            f": {result.status} in {result.duration_seconds:.1f}s" + (" (dry run)" if result.dry_run else ""),
        )
    )
    for name, counts in result.counts.items():
        calls = result.usage[name].total_calls if name in result.usage else 0
        out.print(
            line(
                "  ",
                safe(name),
                f": read {counts.contacts_read} contacts and {counts.activities_read} activities, "
                f"decided {counts.decided}, changed {counts.changed}, written {counts.written}, "
                f"failed {counts.failed}, deferred {counts.deferred}, skipped {counts.skipped}; {calls} API calls",
            )
        )
    if totals["failed"]:
        out.print(f"  {totals['failed']} record(s) rejected: see `crmsync dead-letters`", markup=False)


def print_planned(result: RunResult) -> None:
    if not result.planned:
        out.print("no write planned", markup=False)
        return
    out.print("transitions it would make:", markup=False)
    for before, after, count in planned_transitions(result):
        out.print(line("  ", safe(before), " -> ", safe(after), f": {count}"))
    table = Table(title=f"planned writes ({len(result.planned) + result.planned_dropped})")
    for column in ("connection", "record", "e-mail", "field", "before", "after"):
        table.add_column(column)
    for planned in result.planned:
        table.add_row(
            safe(planned.connection),
            safe(planned.crm_id),
            safe(planned.email or ""),
            safe(planned.field),
            safe(planned.before or "–"),
            safe(planned.after),
        )
    out.print(table)
    if result.planned_dropped:
        out.print(f"... and {result.planned_dropped} more", markup=False)


@contextmanager
def stop_on_sigterm() -> Iterator[threading.Event]:
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


def planned_transitions(result: RunResult) -> list[tuple[str, str, int]]:
    """(from, to, how many) of a dry run's planned writes, most frequent first ("lead -> mql: 18")."""
    from collections import Counter

    counted = Counter((p.before or "(empty)", p.after) for p in result.planned)
    return [(before, after, n) for (before, after), n in sorted(counted.items(), key=lambda item: (-item[1], item[0]))]


def rejected_over(result: RunResult, limit: float) -> tuple[bool, float]:
    """Whether the share of rejected writes is above ``limit`` (a share 0-1), and the share."""
    totals = result.totals()
    tried = totals["failed"] + totals["written"]
    share = totals["failed"] / tried if tried else 0.0
    return share > limit, share


ALERT_WAIT_SECONDS = 60.0
"""How long ``crmsync run`` waits for its alerts before exiting (each send has its own timeout too)."""


def send_run_alerts(context: Services, config: Config, store: Store, job: str, started: datetime) -> None:
    """The alerts of the run just recorded (failed or not), sent before the command exits; never raises."""
    if not config.alerts.enabled:
        return
    from connector.alerts.dispatch import Alerter
    from connector.store import queries

    alerter = Alerter(config.alerts, store)
    try:
        recorded = queries.latest_run_since(store, job, started)
        if recorded is not None:
            alerter.after_run(recorded.id, now=context.clock())
        # the run is recorded: its alerts get a bounded wait before the command exits
        alerter.close(timeout=ALERT_WAIT_SECONDS)
    except Exception as error:  # an alert must never change a run's outcome
        logging.getLogger(__name__).warning("alerts not sent: %s", type(error).__name__, extra={"job": job})


def run(
    ctx: typer.Context,
    job_name: Annotated[str, typer.Argument(metavar="JOB", help="Job name (a file jobs/JOB.toml).")],
    full: Annotated[bool, typer.Option("--full", help="Re-read everything and decide every contact again.")] = False,
    dry_run: Annotated[
        bool | None, typer.Option("--dry-run/--no-dry-run", help="Plan the writes and print them; write nothing.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary object on stdout.")] = False,
    fail_on_rejected: Annotated[
        float | None,
        typer.Option(
            "--fail-on-rejected",
            metavar="SHARE",
            min=0.0,
            max=1.0,
            help="Exit 7 when the CRM rejected more than this share (0-1) of the run's writes.",
        ),
    ] = None,
    schema_check: Annotated[
        bool,
        typer.Option(
            "--schema-check/--no-schema-check",
            help="Check the mapped fields against each CRM's schema first (cached an hour after a pass).",
        ),
    ] = True,
    inline: Annotated[
        bool, typer.Option("--inline", help="Team mode: run here now instead of queueing the run for the workers.")
    ] = False,
) -> None:
    """Run one job now: pull, decide, write back, record. Exit 0 when the run completed.

    In team mode (``[team] enabled``) the run is queued for the workers, unless ``--inline`` or ``--dry-run``."""
    context = services(ctx)
    config = context.config()
    if config.team.enabled:
        from connector.cli import worker

        config, job = worker.team_job(config, job_name)
        if not inline and not dry_run:
            worker.queue_run(context, config, job, full=full, as_json=as_json)
            return
    else:
        job = find_job(config, job_name)
    context.logging(logging.WARNING if as_json else logging.INFO)
    started = context.clock()
    try:
        with context.store(config) as store, stop_on_sigterm() as stop:
            if config.team.enabled:  # a manual run (its schema check too) shares each connection's budget
                context = worker.shared_budgets(context, store)
            if schema_check:
                from connector.cli.schema_check import check_job_schema

                check_job_schema(context, config, job)
            try:
                result = execute(
                    context, job, config, store, full=full, dry_run=dry_run,
                    progress=err.is_terminal and not as_json, stop=stop,
                )  # fmt: skip
            finally:
                send_run_alerts(context, config, store, job.name, started)
    except Exception as error:
        if not as_json:
            raise
        failure = report_failure(error, debug=context.debug, as_json=True, extra={"job": job.name})
        raise typer.Exit(int(failure.code)) from None
    over, share = rejected_over(result, fail_on_rejected) if fail_on_rejected is not None else (False, 0.0)
    if as_json:
        summary: dict[str, Any] = result.summary()
        if result.dry_run:
            summary["transitions"] = [
                {"from": before, "to": after, "count": n} for before, after, n in planned_transitions(result)
            ]
            summary["planned"] = [
                {
                    "connection": p.connection,
                    "crm_id": p.crm_id,
                    "email": p.email,
                    "field": p.field,
                    "before": p.before,
                    "after": p.after,
                }
                for p in result.planned
            ]
        if fail_on_rejected is not None:
            summary["rejected_share"] = round(share, 4)
        write_json(summary)
    else:
        print_summary(result)
        if result.dry_run:
            print_planned(result)
    if over:
        err.print(
            f"{share:.1%} of the writes were rejected (more than --fail-on-rejected {fail_on_rejected:g}): exit 7",
            markup=False,
        )
        raise typer.Exit(int(ExitCode.REJECTED))


def scheduler(ctx: typer.Context) -> None:
    """Run every job on its cron schedule until stopped (SIGTERM finishes the current batch, commits, exits)."""
    from connector.scheduler import Scheduler

    context = services(ctx)
    config = context.config()
    context.logging()
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        logging.getLogger(__name__).info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with context.store(config) as store:
        runner = Scheduler(config, store, clients=context.clients, clock=context.clock, stop=stop)
        err.print(line("scheduling ", safe(", ".join(sorted(runner.jobs))), "; SIGTERM or Ctrl-C stops"))
        runner.run_forever()
