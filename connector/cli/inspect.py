"""Watching the jobs: ``status``, ``history``, ``explain``, ``dead-letters`` and ``report``.

Everything these commands print that came from a CRM or the store (e-mails,
ids, vendor reasons, rule text) goes through ``safe``: never markup, controls
made visible.
"""

from __future__ import annotations

import errno
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from connector.cli.check import parse_instant
from connector.cli.exits import CommandFailed, ExitCode, report_failure
from connector.cli.services import services
from connector.cli.terminal import err, line, out, safe, write_json


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "–"


def _instant(value: str | None, option: str) -> datetime | None:
    return parse_instant(value, option) if value is not None else None


# ---------------------------------------------------------------------------
# status
# ---------------------------------------------------------------------------


def _next_run(job: Any, now: datetime) -> str | None:
    from connector.scheduler import next_run

    try:
        return next_run(job, now).isoformat()
    except Exception:  # a schedule no date matches (0 0 31 2 *): croniter gives up
        return None


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per job, as a list.")] = False,
) -> None:
    """Each job: last run, outcome, counts, next run, checkpoints, queued contacts, open dead letters."""
    from connector.jobs import load_jobs
    from connector.store import queries

    context = services(ctx)
    config = context.config()
    jobs, problems = load_jobs(config.jobs_dir)
    for problem in problems:
        err.print(line(("warning:", "yellow"), " ", safe(problem)))
    now = context.clock()
    report: list[dict[str, Any]] = []
    with context.store(config) as store:
        for name, job in sorted(jobs.items()):
            last = queries.recent_runs(store, name, 1)
            sizes = queries.queue_sizes(store, name)
            lease = queries.lease_of(store, name)
            run = last[0] if last else None
            report.append(
                {
                    "job": name,
                    "schedule": job.schedule,
                    "next_run": _next_run(job, now),
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
        write_json(report)
        return
    if not report:
        out.print(line("no job in ", safe(config.jobs_dir)))
    for item in report:
        last_run = item["last_run"]
        out.print(
            line(
                safe(item["job"], "bold"),
                "  (",
                safe(item["schedule"]),
                f", next {item['next_run'] or 'never: no date matches the schedule'})",
            )
        )
        if item["running"]:
            out.print(line("  running now: ", safe(item["running"]["owner"])))
        if last_run is None:
            out.print("  never run", markup=False)
        else:
            counts = last_run["counts"]
            out.print(
                line(
                    f"  last run {last_run['started_at']}: ",
                    safe(last_run["status"]),
                    " (dry run)" if last_run["dry_run"] else "",
                    f", read {counts.get('read', 0)}, decided {counts.get('decided', 0)}, "
                    f"written {counts.get('written', 0)}, failed {counts.get('failed', 0)}"
                    if counts
                    else "",
                )
            )
            if last_run["error"]:
                out.print(line("  error: ", safe(last_run["error"])))
        for cp in item["checkpoints"]:
            resume = line(" (resumes from ", safe(cp["resume_position"]), ")") if cp["resume_position"] else ""
            out.print(
                line(
                    "  checkpoint ",
                    safe(cp["connection"]),
                    "/",
                    safe(cp["stream"]),
                    ": ",
                    safe(cp["cursor"] or "–"),
                    resume,
                )
            )
        out.print(
            f"  queued contacts: {item['queued']}, open dead letters: {item['dead_letters']}",
            markup=False,
        )


# ---------------------------------------------------------------------------
# history
# ---------------------------------------------------------------------------


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
    from connector.store import queries

    context = services(ctx)
    config = context.config()
    since_at, until_at = _instant(since, "--since"), _instant(until, "--until")
    with context.store(config) as store:
        try:
            rows = queries.changes(
                store, contact=contact, job=job, stage=stage, since=since_at, until=until_at, limit=limit
            )
        except ValueError as error:
            raise CommandFailed(str(error)) from None
    if as_json:
        for row in rows:
            write_json(
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
                }
            )
        return
    table = Table(title=f"stage changes ({len(rows)})")
    for column in ("when", "job", "contact", "e-mail", "from", "to", "why"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            _when(row.changed_at),
            safe(row.job),
            safe(f"{row.connection}:{row.crm_id}"),
            safe(row.email or ""),
            safe(row.from_stage or row.from_value or "–"),
            safe(row.to_stage),
            safe("; ".join(row.reasons)[:120]),
        )
    out.print(table)


# ---------------------------------------------------------------------------
# explain
# ---------------------------------------------------------------------------


def explain(
    ctx: typer.Context,
    contact: Annotated[str, typer.Argument(metavar="CONTACT", help="E-mail or connection:id.")],
) -> None:
    """A contact's stage, the rule that matched, the facts behind it, and its history."""
    from connector.connections import connection_mapping
    from connector.jobs import load_jobs
    from connector.lifecycle.rules import decide
    from connector.store import queries
    from connector.sync import job_rules

    context = services(ctx)
    config = context.config()
    now = context.clock()
    with context.store(config) as store:
        try:
            found = queries.find_contacts(store, contact)
            changes = queries.changes(store, contact=contact, limit=1000)
        except ValueError as error:
            raise CommandFailed(str(error)) from None
    if not found:
        raise CommandFailed(f"no stored contact {contact!r} (has a job read it yet?)", ExitCode.FAILED)
    jobs, _problems = load_jobs(config.jobs_dir)
    for view in found:
        out.print(
            line(
                safe(f"{view.connection}:{view.crm_id}", "bold"),
                " ",
                safe(view.email or ""),
                " (",
                safe(view.object_type),
                ")",
            )
        )
        values = ", ".join(f"{k}={v!r}" for k, v in view.stage_values.items())
        out.print(line("  in the CRM: ", safe(view.stage or "no rung"), " (", safe(values), ")"))
        job_names = [state.job for state in view.jobs] or [
            name for name, job in jobs.items() if view.connection in job.connections
        ]
        for name in job_names:
            state = next((s for s in view.jobs if s.job == name), None)
            job = jobs.get(name)
            rules = job_rules(job, config) if job else None
            mapping = connection_mapping(config, view.connection) if view.connection in config.connections else None
            if state:
                written = (
                    line(", last written ", safe(state.written_stage), f" at {_when(state.written_at)}")
                    if state.written_stage
                    else ""
                )
                out.print(
                    line(
                        "  job ",
                        safe(name),
                        ": decided ",
                        safe(state.decided_stage or "no rung"),
                        " by rule ",
                        safe(state.rule or "–"),
                        f" at {_when(state.decided_at)}",
                        written,
                        " (queued for the next run)" if state.dirty else "",
                    )
                )
            if rules is None:
                continue
            current = mapping.stage_for_value(view.stage_values.get(mapping.stage.field)) if mapping else None
            live = decide(view.contact.model_copy(update={"stage": current}), view.activities, rules, now=now)
            out.print(
                line(
                    f"  rules now ({now.date().isoformat()}): ",
                    safe(live.stage.value if live.stage else "no rung"),
                    " (rule ",
                    safe(live.rule or "–"),
                    f", score {live.score:g})",
                )
            )
            for reason in live.reasons:
                out.print(line("    why: ", safe(reason)))
            for fact in live.facts:
                at = f" {fact.at.date().isoformat()}" if fact.at else ""
                out.print(line("    fact: ", safe(f"{fact.source} {fact.name} = {fact.value}"), at))
        out.print(f"  activities stored: {len(view.activities)}", markup=False)
    out.print(line(("history", "bold"), f" ({len(changes)} change(s))"))
    for change in reversed(changes):
        out.print(
            line(
                f"  {_when(change.changed_at)} ",
                safe(f"{change.connection}:{change.crm_id}"),
                " ",
                safe(change.from_stage or change.from_value or "–"),
                " → ",
                safe(change.to_stage),
                " (",
                safe(change.job),
                "): ",
                safe("; ".join(change.reasons)),
            )
        )


# ---------------------------------------------------------------------------
# dead letters
# ---------------------------------------------------------------------------


def dead_letters(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Option("--job", help="Only this job's records.")] = None,
    retry: Annotated[
        bool, typer.Option("--retry", help="Queue every open dead letter again and run the jobs concerned now.")
    ] = False,
    include_resolved: Annotated[bool, typer.Option("--all", help="Also list resolved ones.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, one record per line.")] = False,
) -> None:
    """Records the CRM rejected, with the vendor's reason; --retry tries them again after a fix."""
    from connector.cli.jobs import execute, find_job, print_summary, stop_on_sigterm
    from connector.store import queries

    context = services(ctx)
    config = context.config()
    code = ExitCode.OK
    with context.store(config) as store:
        if retry:
            queued = store.requeue_dead_letters(job)
            if not queued:
                out.print("no open dead letter to retry", markup=False)
            for name, count in sorted(queued.items()):
                out.print(line(safe(name), f": {count} record(s) queued again; running the job"))
                try:
                    with stop_on_sigterm() as stop:
                        result = execute(
                            context,
                            find_job(config, name),
                            config,
                            store,
                            full=False,
                            dry_run=False,
                            progress=False,
                            stop=stop,
                        )
                except Exception as error:
                    failure = report_failure(error, debug=context.debug, as_json=False)
                    code = code or failure.code
                    continue
                print_summary(result)
        letters = queries.dead_letter_list(store, job=job, include_resolved=include_resolved)
    if as_json:
        for letter in letters:
            write_json(
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
                }
            )
    else:
        table = Table(title=f"dead letters ({len(letters)}{'' if include_resolved else ' open'})")
        for column in ("job", "contact", "e-mail", "stage", "code", "reason", "tries", "last seen", "resolved"):
            table.add_column(column)
        for letter in letters:
            table.add_row(
                safe(letter.job),
                safe(f"{letter.connection}:{letter.crm_id}"),
                safe(letter.email or ""),
                safe(letter.stage or ""),
                safe(letter.code or ""),
                safe((letter.reason or "")[:100]),
                str(letter.attempts),
                _when(letter.last_seen),
                safe(letter.resolution or ""),
            )
        out.print(table)
    if code:
        raise typer.Exit(int(code))


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------


def report(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Option("--job", help="Only the contacts this job handles.")] = None,
    html_file: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report with a chart.")
    ] = None,
) -> None:
    """The funnel: contacts per rung, conversion between rungs, median time in each rung."""
    from connector.report import build_funnel, funnel_html, funnel_table

    context = services(ctx)
    config = context.config()
    with context.store(config) as store:
        funnel = build_funnel(store, job=job)
    out.print(funnel_table(funnel))
    if html_file is not None:
        try:
            html_file.write_text(funnel_html(funnel, generated_at=context.clock()), encoding="utf-8")
        except OSError as error:
            if error.errno == errno.ENOSPC:  # the table's "disk full" line and code, naming the file
                raise OSError(error.errno, error.strerror, str(html_file)) from None
            raise CommandFailed(f"cannot write {html_file}: {error.strerror}") from None
        out.print(line("report written to ", safe(html_file)))
