"""The admin commands of the sync jobs: run, status, history, explain, dead-letters, report, scheduler.

Registered on the ``crmsync`` app by the import at the bottom of
``connector/cli.py``. Exit codes of ``run`` (and ``dead-letters --retry``):

====  =====================================================================
0     the run completed (rejected records are reported, not a failure), or
      was asked to stop and committed what it had done
1     the run failed on something transient (retries spent): run it again
2     a person must fix a file or setting (ConfigError)
3     the CRM refused the credentials (AuthError)
4     the vendor's API quota is used up (QuotaExhausted): wait for it to reset
5     another process is running this job (its lease is held)
====  =====================================================================
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from connector.cli import Context, app, err, fail, out
from connector.config import Config
from connector.connections import connection_mapping, open_client
from connector.errors import AuthError, ConfigError, CrmsyncError, QuotaExhausted, TransientError
from connector.jobs import Job, find_job, load_jobs
from connector.lifecycle.rules import decide
from connector.progress import RichProgress
from connector.report import build_funnel, funnel_html, funnel_table
from connector.scheduler import Scheduler, next_run
from connector.store import LeaseHeld, LeaseLost, Store, open_store, queries
from connector.sync import ClientFactory, Clock, RunResult, job_rules, run_job, utc_now

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_AUTH = 3
EXIT_QUOTA = 4
EXIT_LEASE = 5

# Seams for tests and the demo: how clients are built and what time it is.
CLIENTS: ClientFactory = open_client
CLOCK: Clock = utc_now


class EventFormatter(logging.Formatter):
    """``time level logger message key=value ...``: the structured fields of a log event on one line."""

    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = {k: v for k, v in vars(record).items() if k not in self._STANDARD}
        if extra:
            line += " " + " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in extra.items())
        return line


def _configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EventFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("connector")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _config(ctx: typer.Context) -> Config:
    context: Context = ctx.obj
    try:
        return context.config()
    except ConfigError as error:
        raise fail(str(error), EXIT_CONFIG) from None


@contextmanager
def config_store(config: Config) -> Iterator[Store]:
    try:
        store = open_store(config.store_url)
    except ConfigError as error:
        raise fail(str(error), EXIT_CONFIG) from None
    try:
        yield store
    finally:
        store.close()


def _job(config: Config, name: str) -> Job:
    try:
        job = find_job(config.jobs_dir, name)
    except ConfigError as error:
        raise fail(str(error), EXIT_CONFIG) from None
    missing = [c for c in job.connections if c not in config.connections]
    if missing:
        raise fail(f"job {name!r} names connection(s) {missing} that the config does not define", EXIT_CONFIG)
    return job


def _instant(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"{option} {value!r} is not an ISO-8601 date or instant") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "–"


# ---------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------


def execute(
    job: Job, config: Config, store: Store, *, full: bool, dry_run: bool | None, progress: bool, stop: threading.Event
) -> tuple[RunResult | None, int, str | None]:
    """Run ``job``; (result, exit code, error message)."""
    try:
        if progress:
            with RichProgress(err) as display:
                result = run_job(
                    job,
                    config,
                    store=store,
                    clients=CLIENTS,
                    clock=CLOCK,
                    full=full,
                    dry_run=dry_run,
                    progress=display,
                    stop=stop,
                )
        else:
            result = run_job(
                job, config, store=store, clients=CLIENTS, clock=CLOCK, full=full, dry_run=dry_run, stop=stop
            )
    except LeaseHeld as error:
        return None, EXIT_LEASE, str(error)
    except AuthError as error:
        return None, EXIT_AUTH, f"the CRM refused the credentials: {error}"
    except ConfigError as error:
        return None, EXIT_CONFIG, str(error)
    except QuotaExhausted as error:
        return None, EXIT_QUOTA, f"API quota used up, run stopped (it resumes next run): {error}"
    except (TransientError, LeaseLost, CrmsyncError) as error:
        return None, EXIT_FAILED, f"run failed (it resumes next run): {type(error).__name__}: {error}"
    return result, 0, None


def print_summary(result: RunResult) -> None:
    totals = result.totals()
    out.print(
        f"{result.job}: {result.status} in {result.duration_seconds:.1f}s" + (" (dry run)" if result.dry_run else ""),
        highlight=False,
        soft_wrap=True,
    )
    for name, counts in result.counts.items():
        calls = result.usage[name].total_calls if name in result.usage else 0
        out.print(
            f"  {name}: read {counts.contacts_read} contacts and {counts.activities_read} activities, "
            f"decided {counts.decided}, changed {counts.changed}, written {counts.written}, "
            f"failed {counts.failed}, deferred {counts.deferred}, skipped {counts.skipped}; {calls} API calls",
            highlight=False,
            soft_wrap=True,
        )
    if totals["failed"]:
        out.print(
            f"  {totals['failed']} record(s) rejected: see `crmsync dead-letters`", highlight=False, soft_wrap=True
        )


def _print_planned(result: RunResult) -> None:
    if not result.planned:
        out.print("no write planned", highlight=False, soft_wrap=True)
        return
    table = Table(title=f"planned writes ({len(result.planned) + result.planned_dropped})")
    for column in ("connection", "record", "e-mail", "field", "before", "after"):
        table.add_column(column)
    for planned in result.planned:
        table.add_row(
            planned.connection, planned.crm_id, planned.email or "", planned.field, planned.before or "–", planned.after
        )
    out.print(table)
    if result.planned_dropped:
        out.print(f"... and {result.planned_dropped} more", highlight=False, soft_wrap=True)


@contextmanager
def _stop_on_sigterm() -> Iterator[threading.Event]:
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


@app.command("run")
def run_command(
    ctx: typer.Context,
    job_name: Annotated[str, typer.Argument(metavar="JOB", help="Job name (a file jobs/JOB.toml).")],
    full: Annotated[bool, typer.Option("--full", help="Re-read everything and decide every contact again.")] = False,
    dry_run: Annotated[
        bool | None, typer.Option("--dry-run/--no-dry-run", help="Plan the writes and print them; write nothing.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary object on stdout.")] = False,
) -> None:
    """Run one job now: pull, decide, write back, record. Exit 0 when the run completed."""
    config = _config(ctx)
    job = _job(config, job_name)
    _configure_logging(logging.WARNING if as_json else logging.INFO)
    with config_store(config) as store, _stop_on_sigterm() as stop:
        result, code, message = execute(
            job, config, store, full=full, dry_run=dry_run, progress=err.is_terminal and not as_json, stop=stop
        )
    if as_json:
        summary: dict[str, Any] = result.summary() if result else {"job": job.name, "status": "failed"}
        if result and result.dry_run:
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
        if message:
            summary["error"] = message
        sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
        if code:
            raise typer.Exit(code)
        return
    if result is None:
        raise fail(message or "run failed", code)
    print_summary(result)
    if result.dry_run:
        _print_planned(result)


# ---------------------------------------------------------------------------
# status
# ---------------------------------------------------------------------------


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per job, as a list.")] = False,
) -> None:
    """Each job: last run, outcome, counts, next run, checkpoints, queued contacts, open dead letters."""
    config = _config(ctx)
    jobs, problems = load_jobs(config.jobs_dir)
    for problem in problems:
        err.print(f"[yellow]warning:[/yellow] {problem}", highlight=False, soft_wrap=True)
    now = CLOCK()
    report: list[dict[str, Any]] = []
    with config_store(config) as store:
        for name, job in sorted(jobs.items()):
            last = queries.recent_runs(store, name, 1)
            sizes = queries.queue_sizes(store, name)
            lease = queries.lease_of(store, name)
            run = last[0] if last else None
            report.append(
                {
                    "job": name,
                    "schedule": job.schedule,
                    "next_run": next_run(job, now).isoformat(),
                    "running": {"owner": lease[0], "until": lease[1].isoformat()} if lease else None,
                    "last_run": None
                    if run is None
                    else {
                        "id": run.id,
                        "status": run.status,
                        "started_at": run.started_at.isoformat(),
                        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                        "dry_run": run.dry_run,
                        "counts": {k: v for k, v in run.counts.items() if k != "connections"},
                        "error": run.error,
                    },
                    "checkpoints": [
                        {
                            "connection": cp.connection,
                            "stream": cp.stream,
                            "cursor": cp.cursor,
                            "resume_position": cp.position,
                            "updated_at": cp.updated_at.isoformat(),
                        }
                        for cp in queries.job_checkpoints(store, name)
                    ],
                    **sizes,
                }
            )
    if as_json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False) + "\n")
        return
    if not report:
        out.print(f"no job in {config.jobs_dir}", highlight=False, soft_wrap=True)
    for item in report:
        last_run = item["last_run"]
        out.print(
            f"[bold]{item['job']}[/bold]  ({item['schedule']}, next {item['next_run']})",
            highlight=False,
            soft_wrap=True,
        )
        if item["running"]:
            out.print(f"  running now: {item['running']['owner']}", highlight=False, soft_wrap=True)
        if last_run is None:
            out.print("  never run", highlight=False, soft_wrap=True)
        else:
            counts = last_run["counts"]
            out.print(
                f"  last run {last_run['started_at']}: {last_run['status']}"
                + (" (dry run)" if last_run["dry_run"] else "")
                + (
                    f", read {counts.get('read', 0)}, decided {counts.get('decided', 0)}, "
                    f"written {counts.get('written', 0)}, failed {counts.get('failed', 0)}"
                    if counts
                    else ""
                ),
                highlight=False,
                soft_wrap=True,
            )
            if last_run["error"]:
                out.print(f"  error: {last_run['error']}", highlight=False, soft_wrap=True)
        for cp in item["checkpoints"]:
            resume = f" (resumes from {cp['resume_position']})" if cp["resume_position"] else ""
            out.print(
                f"  checkpoint {cp['connection']}/{cp['stream']}: {cp['cursor'] or '–'}{resume}",
                highlight=False,
                soft_wrap=True,
            )
        out.print(
            f"  queued contacts: {item['queued']}, open dead letters: {item['dead_letters']}",
            highlight=False,
            soft_wrap=True,
        )


# ---------------------------------------------------------------------------
# history
# ---------------------------------------------------------------------------


@app.command()
def history(
    ctx: typer.Context,
    contact: Annotated[str | None, typer.Option("--contact", help="E-mail or connection:id.")] = None,
    job: Annotated[str | None, typer.Option("--job", help="Only this job's changes.")] = None,
    stage: Annotated[str | None, typer.Option("--stage", help="Only changes to this rung.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="From this ISO-8601 date or instant.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Before this ISO-8601 date or instant.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, newest first.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, one change per line.")] = False,
) -> None:
    """Stage changes written by the jobs, newest first."""
    config = _config(ctx)
    try:
        with config_store(config) as store:
            rows = queries.changes(
                store,
                contact=contact,
                job=job,
                stage=stage,
                since=_instant(since, "--since"),
                until=_instant(until, "--until"),
                limit=limit,
            )
    except ValueError as error:
        raise fail(str(error)) from None
    if as_json:
        for row in rows:
            sys.stdout.write(
                json.dumps(
                    {
                        "changed_at": row.changed_at.isoformat(),
                        "job": row.job,
                        "run_id": row.run_id,
                        "contact": f"{row.connection}:{row.crm_id}",
                        "email": row.email,
                        "from": row.from_stage or row.from_value,
                        "to": row.to_stage,
                        "rule": row.rule,
                        "reasons": row.reasons,
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
        return
    table = Table(title=f"stage changes ({len(rows)})")
    for column in ("when", "job", "contact", "e-mail", "from", "to", "why"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            _when(row.changed_at),
            row.job,
            f"{row.connection}:{row.crm_id}",
            row.email or "",
            row.from_stage or row.from_value or "–",
            row.to_stage,
            "; ".join(row.reasons)[:120],
        )
    out.print(table)


# ---------------------------------------------------------------------------
# explain
# ---------------------------------------------------------------------------


@app.command()
def explain(
    ctx: typer.Context,
    contact: Annotated[str, typer.Argument(metavar="CONTACT", help="E-mail or connection:id.")],
) -> None:
    """A contact's stage, the rule that matched, the facts behind it, and its history."""
    config = _config(ctx)
    now = CLOCK()
    try:
        with config_store(config) as store:
            found = queries.find_contacts(store, contact)
            changes = queries.changes(store, contact=contact, limit=1000)
    except ValueError as error:
        raise fail(str(error)) from None
    if not found:
        raise fail(f"no stored contact {contact!r} (has a job read it yet?)", 1)
    jobs, _problems = load_jobs(config.jobs_dir)
    for view in found:
        out.print(
            f"[bold]{view.connection}:{view.crm_id}[/bold] {view.email or ''} ({view.object_type})", highlight=False
        )
        values = ", ".join(f"{k}={v!r}" for k, v in view.stage_values.items())
        out.print(f"  in the CRM: {view.stage or 'no rung'} ({values})", highlight=False, soft_wrap=True)
        job_names = [state.job for state in view.jobs] or [
            name for name, job in jobs.items() if view.connection in job.connections
        ]
        for name in job_names:
            state = next((s for s in view.jobs if s.job == name), None)
            job = jobs.get(name)
            try:
                rules = job_rules(job, config) if job else None
                mapping = connection_mapping(config, view.connection) if view.connection in config.connections else None
            except ConfigError as error:
                raise fail(str(error), EXIT_CONFIG) from None
            if state:
                written = (
                    f", last written {state.written_stage} at {_when(state.written_at)}" if state.written_stage else ""
                )
                queued = " (queued for the next run)" if state.dirty else ""
                out.print(
                    f"  job {name}: decided {state.decided_stage or 'no rung'} by rule "
                    f"{state.rule or '–'} at {_when(state.decided_at)}{written}{queued}",
                    highlight=False,
                    soft_wrap=True,
                )
            if rules is None:
                continue
            current = mapping.stage_for_value(view.stage_values.get(mapping.stage.field)) if mapping else None
            live = decide(view.contact.model_copy(update={"stage": current}), view.activities, rules, now=now)
            out.print(
                f"  rules now ({now.date().isoformat()}): {live.stage.value if live.stage else 'no rung'}"
                f" (rule {live.rule or '–'}, score {live.score:g})",
                highlight=False,
                soft_wrap=True,
            )
            for reason in live.reasons:
                out.print(f"    why: {reason}", highlight=False, soft_wrap=True)
            for fact in live.facts:
                at = f" {fact.at.date().isoformat()}" if fact.at else ""
                out.print(f"    fact: {fact.source} {fact.name} = {fact.value}{at}", highlight=False, soft_wrap=True)
        out.print(f"  activities stored: {len(view.activities)}", highlight=False, soft_wrap=True)
    out.print(f"[bold]history[/bold] ({len(changes)} change(s))", highlight=False, soft_wrap=True)
    for change in reversed(changes):
        out.print(
            f"  {_when(change.changed_at)} {change.connection}:{change.crm_id} "
            f"{change.from_stage or change.from_value or '–'} → {change.to_stage} ({change.job}): "
            + "; ".join(change.reasons),
            highlight=False,
            soft_wrap=True,
        )


# ---------------------------------------------------------------------------
# dead letters
# ---------------------------------------------------------------------------


@app.command("dead-letters")
def dead_letters_command(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Option("--job", help="Only this job's records.")] = None,
    retry: Annotated[
        bool, typer.Option("--retry", help="Queue every open dead letter again and run the jobs concerned now.")
    ] = False,
    include_resolved: Annotated[bool, typer.Option("--all", help="Also list resolved ones.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, one record per line.")] = False,
) -> None:
    """Records the CRM rejected, with the vendor's reason; --retry tries them again after a fix."""
    config = _config(ctx)
    code = 0
    with config_store(config) as store:
        if retry:
            queued = store.requeue_dead_letters(job)
            if not queued:
                out.print("no open dead letter to retry", highlight=False, soft_wrap=True)
            for name, count in sorted(queued.items()):
                out.print(f"{name}: {count} record(s) queued again; running the job", highlight=False, soft_wrap=True)
                with _stop_on_sigterm() as stop:
                    result, run_code, message = execute(
                        _job(config, name), config, store, full=False, dry_run=False, progress=False, stop=stop
                    )
                if result is None:
                    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
                    code = code or run_code
                else:
                    print_summary(result)
        letters = queries.dead_letter_list(store, job=job, include_resolved=include_resolved)
    if as_json:
        for letter in letters:
            sys.stdout.write(
                json.dumps(
                    {
                        "job": letter.job,
                        "contact": f"{letter.connection}:{letter.crm_id}",
                        "email": letter.email,
                        "stage": letter.stage,
                        "code": letter.code,
                        "reason": letter.reason,
                        "attempts": letter.attempts,
                        "first_seen": letter.first_seen.isoformat(),
                        "last_seen": letter.last_seen.isoformat(),
                        "resolved_at": letter.resolved_at.isoformat() if letter.resolved_at else None,
                        "resolution": letter.resolution,
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
    else:
        table = Table(title=f"dead letters ({len(letters)}{'' if include_resolved else ' open'})")
        for column in ("job", "contact", "e-mail", "stage", "code", "reason", "tries", "last seen", "resolved"):
            table.add_column(column)
        for letter in letters:
            table.add_row(
                letter.job,
                f"{letter.connection}:{letter.crm_id}",
                letter.email or "",
                letter.stage or "",
                letter.code or "",
                (letter.reason or "")[:100],
                str(letter.attempts),
                _when(letter.last_seen),
                letter.resolution or "",
            )
        out.print(table)
    if code:
        raise typer.Exit(code)


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------


@app.command()
def report(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Option("--job", help="Only the contacts this job handles.")] = None,
    html_file: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report with a chart.")
    ] = None,
) -> None:
    """The funnel: contacts per rung, conversion between rungs, median time in each rung."""
    config = _config(ctx)
    with config_store(config) as store:
        funnel = build_funnel(store, job=job)
    out.print(funnel_table(funnel))
    if html_file is not None:
        try:
            html_file.write_text(funnel_html(funnel, generated_at=CLOCK()), encoding="utf-8")
        except OSError as error:
            raise fail(f"cannot write {html_file}: {error.strerror}") from None
        out.print(f"report written to {html_file}", highlight=False, soft_wrap=True)


# ---------------------------------------------------------------------------
# scheduler
# ---------------------------------------------------------------------------


@app.command()
def scheduler(ctx: typer.Context) -> None:
    """Run every job on its cron schedule until stopped (SIGTERM finishes the current batch, commits, exits)."""
    config = _config(ctx)
    _configure_logging()
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        logging.getLogger(__name__).info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with config_store(config) as store:
        try:
            runner = Scheduler(config, store, clients=CLIENTS, clock=CLOCK, stop=stop)
        except ConfigError as error:
            raise fail(str(error), EXIT_CONFIG) from None
        err.print(
            f"scheduling {', '.join(sorted(runner.jobs))}; SIGTERM or Ctrl-C stops", highlight=False, soft_wrap=True
        )
        runner.run_forever()
