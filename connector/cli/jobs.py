"""Running the sync jobs: ``run`` (one job now) and ``scheduler`` (every job on its cron schedule).

Exit codes are those of ``connector.cli.exits``: 0 the run completed
(rejected records are reported, not a failure) or was asked to stop and
committed what it had done; 1 retries spent; 2 a file or setting to fix;
3 credentials refused; 4 API quota used up; 5 another process runs the
job; 6 the state store failed.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from connector.cli.exits import CommandFailed, report_failure
from connector.cli.services import Services, services
from connector.cli.terminal import err, line, out, safe, visible, write_json

if TYPE_CHECKING:
    from connector.config import Config
    from connector.jobs import Job
    from connector.store import Store
    from connector.sync import RunResult


JOB_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
"""What a job may be called (the pattern of ``Job.name``): never a path."""


class EventFormatter(logging.Formatter):
    """``time level logger message key=value ...``: the structured fields of a log event on one line."""

    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def formatMessage(self, record: logging.LogRecord) -> str:
        # a message built from CRM text (an e-mail, a vendor reason) brings no control character to the terminal
        record.message = visible(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = {k: v for k, v in vars(record).items() if k not in self._STANDARD}
        if extra:
            # JSON values: a CRM text in a field cannot bring a control character to the terminal
            text += " " + " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in extra.items())
        return text


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EventFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("connector")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


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


def run(
    ctx: typer.Context,
    job_name: Annotated[str, typer.Argument(metavar="JOB", help="Job name (a file jobs/JOB.toml).")],
    full: Annotated[bool, typer.Option("--full", help="Re-read everything and decide every contact again.")] = False,
    dry_run: Annotated[
        bool | None, typer.Option("--dry-run/--no-dry-run", help="Plan the writes and print them; write nothing.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary object on stdout.")] = False,
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
    configure_logging(logging.WARNING if as_json else logging.INFO)
    try:
        with context.store(config) as store, stop_on_sigterm() as stop:
            if config.team.enabled:  # a manual run shares each connection's budget with the workers
                context = worker.shared_budgets(context, store)
            result = execute(
                context, job, config, store, full=full, dry_run=dry_run,
                progress=err.is_terminal and not as_json, stop=stop,
            )  # fmt: skip
    except Exception as error:
        if not as_json:
            raise
        failure = report_failure(error, debug=context.debug, as_json=True, extra={"job": job.name})
        raise typer.Exit(int(failure.code)) from None
    if as_json:
        summary: dict[str, Any] = result.summary()
        if result.dry_run:
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
        write_json(summary)
        return
    print_summary(result)
    if result.dry_run:
        print_planned(result)


def scheduler(ctx: typer.Context) -> None:
    """Run every job on its cron schedule until stopped (SIGTERM finishes the current batch, commits, exits)."""
    from connector.scheduler import Scheduler

    context = services(ctx)
    config = context.config()
    configure_logging()
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
