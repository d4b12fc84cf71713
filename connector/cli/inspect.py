"""Watching the jobs: ``status``, ``history``, ``explain``, ``dead-letters`` and ``report``.

Everything these commands print that came from a CRM or the store (e-mails,
ids, vendor reasons, rule text) goes through ``safe``: never markup, controls
made visible.
"""

from __future__ import annotations

import errno
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from connector.cli.check import parse_instant
from connector.cli.exits import CommandFailed, ExitCode, report_failure
from connector.cli.services import services
from connector.cli.terminal import err, line, out, safe, visible, write_json, write_line

if TYPE_CHECKING:
    from connector.jobs import Job
    from connector.lifecycle.rules import Rules
    from connector.model import Stage
    from connector.store import Store
    from connector.store.queries import ChangeView, ContactView


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


def ago(then: datetime, now: datetime) -> str:
    """``3 min ago``, ``2.5 h ago``, ``4 d ago`` (``in 5 min`` for a time to come)."""
    seconds = (now - then).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        text = f"{seconds:.0f} s"
    elif seconds < 3600:
        text = f"{seconds / 60:.0f} min"
    elif seconds < 2 * 86_400:
        text = f"{seconds / 3600:.1f} h"
    else:
        text = f"{seconds / 86_400:.0f} d"
    return f"in {text}" if future else f"{text} ago"


def _clock_time(value: datetime, now: datetime) -> str:
    """``06:45 UTC`` today, else ``2026-12-03 06:45 UTC``."""
    return value.strftime("%H:%M UTC" if value.date() == now.date() else "%Y-%m-%d %H:%M UTC")


def _run_json(run: Any) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "id": run.id,
        "status": run.status,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "dry_run": run.dry_run,
        "counts": {k: v for k, v in run.counts.items() if k != "connections"},
        "error": run.error,
    }


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per job, as a list.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also the read positions (cursors) of each connection.")
    ] = False,
) -> None:
    """Each job in plain words: last success, what it wrote, next run, dead letters; --verbose adds the cursors."""
    from connector.jobs import load_jobs
    from connector.runs import RunStatus
    from connector.store import queries

    context = services(ctx)
    config = context.config()
    if config.team.enabled:  # the tenants' jobs too
        from connector.team.tenants import team_jobs

        config, jobs = team_jobs(config)
        problems: list[Any] = []
    else:
        jobs, problems = load_jobs(config.jobs_dir)
    for problem in problems:
        err.print(line(("warning:", "yellow"), " ", safe(problem)))
    now = context.clock()
    report: list[dict[str, Any]] = []
    with context.store(config) as store:
        for name, job in sorted(jobs.items()):
            last = queries.recent_runs(store, name, 1)
            success = queries.run_list(store, job=name, status=RunStatus.COMPLETED.value, limit=1)
            sizes = queries.queue_sizes(store, name)
            lease = queries.lease_of(store, name)
            report.append(
                {
                    "job": name,
                    "schedule": job.schedule,
                    "next_run": _next_run(job, now),
                    "running": {"owner": lease[0], "until": lease[1].isoformat()} if lease else None,
                    "last_run": _run_json(last[0] if last else None),
                    "last_success": _run_json(success[0] if success else None),
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
        _print_status(item, now, verbose=verbose)


def _print_status(item: dict[str, Any], now: datetime, *, verbose: bool) -> None:
    last_run, success = item["last_run"], item["last_success"]
    next_at = datetime.fromisoformat(item["next_run"]) if item["next_run"] else None
    out.print(line(safe(item["job"], "bold"), "  (", safe(item["schedule"]), ")"))
    parts: list[str | Text] = ["  "]
    if success is None:
        parts.append("never completed a run")
    else:
        finished = datetime.fromisoformat(success["finished_at"] or success["started_at"])
        counts = success["counts"]
        parts.append(
            f"last success {ago(finished, now)}, {counts.get('written', 0)} written"
            + (" (dry run)" if success["dry_run"] else "")
        )
    parts.append(f"; next {_clock_time(next_at, now)}" if next_at else "; never runs (no date matches the schedule)")
    dead = item["dead_letters"]
    parts.append(f"; {dead} open dead letter{'s' if dead != 1 else ''}")
    if item["queued"]:
        parts.append(f"; {item['queued']} contact(s) queued")
    out.print(line(*parts))
    if item["running"]:
        out.print(line("  running now (", safe(item["running"]["owner"]), ")"))
    if last_run is not None and (success is None or last_run["id"] != success["id"]):
        started = datetime.fromisoformat(last_run["started_at"])
        out.print(
            line(
                f"  last run {ago(started, now)}: ",
                safe(last_run["status"], "red" if last_run["status"] == "failed" else ""),
                line(": ", safe(last_run["error"])) if last_run["error"] else "",
            )
        )
    if verbose:
        for cp in item["checkpoints"]:
            resume = line(" (resumes from ", safe(cp["resume_position"]), ")") if cp["resume_position"] else ""
            out.print(
                line(
                    "  cursor ",
                    safe(cp["connection"]),
                    "/",
                    safe(cp["stream"]),
                    ": ",
                    safe(cp["cursor"] or "–"),
                    resume,
                )
            )


# ---------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------


def runs(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Argument(metavar="[JOB]", help="Only this job's runs.")] = None,
    run_status: Annotated[
        str | None, typer.Option("--status", help="Only runs in this state: completed, failed, stopped, ...")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, one run per line.")] = False,
) -> None:
    """The runs of every job (or one), newest first: status, duration, counts, error."""
    from connector.runs import RunStatus
    from connector.store import queries

    context = services(ctx)
    config = context.config()
    if run_status is not None and run_status not in {s.value for s in RunStatus}:
        raise CommandFailed(f"--status {run_status!r}: one of {', '.join(s.value for s in RunStatus)}")
    with context.store(config) as store:
        if job is not None:
            check_job(config, store, job)
        found = queries.run_list(store, job=job, status=run_status, limit=limit)
    rows: list[dict[str, Any]] = []
    for run in found:
        duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
        counts = run.counts
        rows.append(
            {
                "run_id": run.id,
                "job": run.job,
                "status": run.status.value,
                "dry_run": run.dry_run,
                "full": run.full,
                "started_at": run.started_at.isoformat(),
                "duration_seconds": round(duration, 3) if duration is not None else None,
                **{key: counts.get(key, 0) for key in ("read", "decided", "changed", "written", "failed", "deferred")},
                "api_calls": sum(sum((u.get("calls") or {}).values()) for u in run.usage.values()),
                "error": run.error,
            }
        )
    if as_json:
        for row in rows:
            write_json(row)
        return
    columns = [
        "started",
        "job",
        "run",
        "status",
        "duration",
        "read",
        "decided",
        "written",
        "failed",
        "api calls",
        "error",
    ]
    print_rows(
        f"runs ({len(rows)})",
        columns,
        [
            [
                _when(datetime.fromisoformat(row["started_at"])),
                row["job"],
                row["run_id"],
                row["status"] + (" (dry run)" if row["dry_run"] else "") + (" (full)" if row["full"] else ""),
                "–" if row["duration_seconds"] is None else f"{row['duration_seconds']:.1f}s",
                str(row["read"]),
                str(row["decided"]),
                str(row["written"]),
                str(row["failed"]),
                str(row["api_calls"]),
                row["error"] or "",
            ]
            for row in rows
        ],
        numeric={"read", "decided", "written", "failed", "api calls"},
    )


# ---------------------------------------------------------------------------
# tables and checked filters
# ---------------------------------------------------------------------------


def print_rows(title: str, columns: list[str], rows: list[list[str]], *, numeric: Collection[str] = ()) -> None:
    """Rows as a table on a wide terminal, as blocks on a narrow one, tab-separated when piped; never cut.

    On a terminal, a column empty in every row is left out. When the table
    fits the width, it is a table; otherwise each row is a block (the first
    column, then one ``name: value`` line per other column), so an 80-column
    terminal shows whole ids that can be copied into ``explain``. Piped
    output has one header line and one line per row, each cell made visible
    (no tab or newline inside a cell), so ``cut`` and ``awk`` work; the
    title goes to standard error.
    """
    if not out.is_terminal:
        err.print(title, markup=False)  # on standard error: standard output stays pure rows
        write_line("\t".join(columns))
        for row in rows:
            write_line("\t".join(visible(cell) for cell in row))  # visible() turns a tab into the two characters \t
        return
    keep = [i for i, column in enumerate(columns) if not rows or any(row[i] for row in rows)]
    widths = [max(len(columns[i]), *(len(visible(row[i])) for row in rows)) for i in keep]
    if sum(widths) + 3 * len(keep) + 1 <= out.width:
        table = Table(title=title)
        for i in keep:
            table.add_column(columns[i], overflow="fold", justify="right" if columns[i] in numeric else "left")
        for row in rows:
            table.add_row(*(safe(row[i]) for i in keep))
        out.print(table)
        return
    out.print(line((title, "italic")))
    label = max((len(columns[i]) for i in keep[1:]), default=0)
    for row in rows:
        out.print(line(safe(row[keep[0]], "bold")))
        for i in keep[1:]:
            if row[i]:
                out.print(line("  ", (f"{columns[i]}:".ljust(label + 2), "dim"), safe(row[i])))


def check_stage(stage: str) -> str:
    from connector.model import LADDER

    names = [s.value for s in LADDER]
    if stage not in names:
        raise CommandFailed(f"--stage {stage!r} is not a rung: one of {', '.join(names)}")
    return stage


def configured_jobs(config: Any) -> dict[str, Any]:
    """The job files, plus the tenants' jobs in team mode; problems are reported by ``validate``, not here."""
    if config.team.enabled:
        from connector.team.tenants import team_jobs

        return team_jobs(config)[1]
    from connector.jobs import load_jobs

    return load_jobs(config.jobs_dir)[0]


def check_job(config: Any, store: Any, job: str) -> str:
    """``job`` when a job file or a recorded run has that name; else a ``CommandFailed`` listing the known ones."""
    from connector.store import queries

    known = set(configured_jobs(config)) | queries.known_jobs(store)
    if job not in known:
        raise CommandFailed(f"no job {job!r}: known jobs are {', '.join(sorted(known)) or 'none'}")
    return job


def check_connection(config: Any, connection: str) -> str:
    if connection not in config.connections:
        names = ", ".join(sorted(config.connections)) or "none"
        raise CommandFailed(f"no connection {connection!r} in the config: one of {names}")
    return connection


# ---------------------------------------------------------------------------
# history
# ---------------------------------------------------------------------------


def history(
    ctx: typer.Context,
    contact: Annotated[str | None, typer.Option("--contact", help="E-mail or connection:id.")] = None,
    job: Annotated[str | None, typer.Option("--job", help="Only this job's changes.")] = None,
    stage: Annotated[str | None, typer.Option("--stage", help="Only changes to this rung.")] = None,
    connection: Annotated[str | None, typer.Option("--connection", help="Only this connection's contacts.")] = None,
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
    if stage is not None:
        check_stage(stage)
    if connection is not None:
        check_connection(config, connection)
    with context.store(config) as store:
        if job is not None:
            check_job(config, store, job)
        try:
            rows = queries.changes(
                store,
                contact=contact,
                job=job,
                stage=stage,
                since=since_at,
                until=until_at,
                limit=limit,
                connection=connection,
            )
            # contacts found beyond the ladder: history entries, not stage changes (none has a rung to filter on)
            notes = (
                []
                if stage is not None
                else queries.ladder_notes_of(
                    store, contact=contact, job=job, since=since_at, until=until_at, limit=limit, connection=connection
                )
            )
        except ValueError as error:
            raise CommandFailed(str(error)) from None
    if as_json:
        for note in notes:
            write_json(
                {
                    "kind": "beyond_ladder",
                    "noted_at": note.noted_at.isoformat(),
                    "job": note.job,
                    "run_id": note.run_id,
                    "contact": f"{note.connection}:{note.crm_id}",
                    "email": note.email,
                    "reason": note.reason,
                    "back_on_ladder_at": note.back_at.isoformat() if note.back_at else None,
                }
            )
        for row in rows:
            write_json(
                {
                    "kind": "stage_change",
                    "changed_at": row.changed_at.isoformat(),
                    "job": row.job,
                    "run_id": row.run_id,
                    "contact": f"{row.connection}:{row.crm_id}",
                    "email": row.email,
                    "from": row.from_stage or row.from_value,
                    "to": row.to_stage,
                    "rule": row.rule,
                    "reasons": row.reasons,
                    **({"person_id": row.person_id} if row.person_id else {}),
                }
            )
        return
    # a unifying job's records are people: each person counts once, however many CRMs she is in
    people = {row.person_id or f"{row.connection}:{row.crm_id}" for row in rows}
    matched = any(row.person_id for row in rows)
    print_rows(
        f"stage changes ({len(rows)}, {len(people)} people)" if matched else f"stage changes ({len(rows)})",
        ["when", "job", "contact", "e-mail", "from", "to", "why"],
        [
            [
                _when(row.changed_at),
                row.job,
                f"{row.connection}:{row.crm_id}",
                row.email or "",
                row.from_stage or row.from_value or "–",
                row.to_stage,
                "; ".join(row.reasons),
            ]
            for row in rows
        ],
    )
    if notes:
        print_rows(
            f"beyond the ladder, nothing written ({len(notes)}; not stage changes)",
            ["when", "job", "contact", "e-mail", "why", "back on the ladder"],
            [
                [
                    _when(note.noted_at),
                    note.job,
                    f"{note.connection}:{note.crm_id}",
                    note.email or "",
                    note.reason,
                    _when(note.back_at) if note.back_at else "–",
                ]
                for note in notes
            ],
        )


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
            notes = queries.ladder_notes_of(store, contact=contact, limit=1000)
        except ValueError as error:
            raise CommandFailed(str(error)) from None
    if not found:
        raise CommandFailed(f"no stored contact {contact!r} (has a job read it yet?)", ExitCode.FAILED)
    jobs, _problems = load_jobs(config.jobs_dir)
    persons_shown: set[tuple[str, str]] = set()
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
            if job is not None and job.unify:
                with context.store(config) as store:
                    shown, person_changes = _explain_person(store, job, view, current, rules, now, persons_shown)
                changes.extend(c for c in person_changes if c not in changes)
                if shown:
                    continue
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
    changes.sort(key=lambda change: change.changed_at, reverse=True)
    beyond = f", {len(notes)} time(s) beyond the ladder" if notes else ""
    out.print(line(("history", "bold"), f" ({len(changes)} change(s){beyond})"))
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
    for note in reversed(notes):
        back = f" (back on the ladder {_when(note.back_at)})" if note.back_at else ""
        out.print(
            line(
                f"  {_when(note.noted_at)} ",
                safe(f"{note.connection}:{note.crm_id}"),
                " beyond the ladder (",
                safe(note.job),
                "): ",
                safe(note.reason),
                back,
            )
        )


def _explain_person(
    store: Store,
    job: Job,
    view: ContactView,
    current: Stage | None,
    rules: Rules,
    now: datetime,
    shown: set[tuple[str, str]],
) -> tuple[bool, list[ChangeView]]:
    """A unifying job's view of ``view``: her person, her records per CRM, the decision on her evidence and
    which record each fact came from (printed once per person and job). Returns whether it printed the
    decision, and the history of her other records."""
    from connector.store import queries
    from connector.store.values import QueuedContact, RecordKey
    from connector.sync.unify import person_decider, person_evidence

    record = RecordKey(view.connection, view.crm_id)
    with store.begin() as db:
        person_id = store.people.person_of(db, record)
        if person_id is None:
            out.print(line("    person: not matched yet (the job's next run matches it)"))
            return False, []
        if (job.name, person_id) in shown:
            out.print(line("    person ", safe(person_id), " (shown above)"))
            return True, []
        shown.add((job.name, person_id))
        members = store.people.members(db, [person_id], job.connections).get(person_id, [])
        records: list[QueuedContact] = []
        for name in job.connections:
            ids = [key.crm_id for key in members if key.connection == name]
            if ids:
                records.extend(store.queue.records(db, job.name, name, ids, now=now)[0])
        conflicts = store.people.conflicts(db, person_id=person_id)
    others = [f"{key.connection}:{key.crm_id}" for key in members if key != record]
    history = [change for ref in others for change in queries.changes(store, contact=ref, limit=1000)]
    out.print(line("    person ", safe(person_id, "bold"), f" ({len(members)} record(s) in this job's CRMs)"))
    for queued in records:
        out.print(
            line(
                "      ",
                safe(f"{queued.connection}:{queued.crm_id}"),
                " ",
                safe(queued.email or ""),
                " (",
                safe(queued.object_type),
                "), CRM shows ",
                safe(queued.contact.stage.value if queued.contact.stage else "no rung"),
                f", {len(queued.activities)} activities",
            )
        )
    if not records:
        return False, history
    evidence = person_evidence(person_id, records, job.connections)
    if evidence.company_from is not None:
        out.print(line("      company from ", safe(str(evidence.company_from)), " (the most complete)"))
    for name, source in evidence.fields_from:
        out.print(line(f"      {name} from ", safe(str(source))))
    live = person_decider(evidence, rules, now)(records[0], evidence.contact.model_copy(update={"stage": current}))
    out.print(
        line(
            f"  rules now on her evidence ({now.date().isoformat()}): ",
            safe(live.stage.value if live.stage else "no rung"),
            " (rule ",
            safe(live.rule or "–"),
            f", score {live.score:g})",
        )
    )
    for reason in live.reasons:
        out.print(line("    why: ", safe(reason)))
    source_of = {(s.activity.kind, s.activity.occurred_at, s.activity.detail or s.activity.kind): s.record
                 for s in evidence.sources}  # fmt: skip
    for fact in live.facts:
        at = f" {fact.at.date().isoformat()}" if fact.at else ""
        origin = source_of.get((fact.name, fact.at, fact.value)) if fact.at else None
        where = line(" from ", safe(str(origin))) if origin else ""
        out.print(line("    fact: ", safe(f"{fact.source} {fact.name} = {fact.value}"), at, where))
    for copy in evidence.copies:
        out.print(
            line(
                "    left out, a copy: ",
                safe(f"{copy.copy.activity.kind} {copy.copy.activity.detail or ''}".strip()),
                f" {copy.copy.activity.occurred_at.isoformat(timespec='minutes')} in ",
                safe(str(copy.copy.record)),
                " (the same as in ",
                safe(str(copy.kept.record)),
                ")",
            )
        )
    for conflict in conflicts:
        out.print(line("    conflict ", safe(conflict.kind), ": ", safe(conflict.action)))
    return True, history


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
        if job is not None:
            check_job(config, store, job)
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
        from connector.causes import group_by_cause

        causes = group_by_cause(letters)
        print_rows(
            f"causes ({len(causes)})",
            ["records", "code", "jobs", "example reason", "what to do"],
            [
                [str(len(c.letters)), c.code or "(no code)", ", ".join(c.jobs), c.letters[0].reason or "", c.hint]
                for c in causes
            ],
            numeric={"records"},
        )
        print_rows(
            f"dead letters ({len(letters)}{'' if include_resolved else ' open'})",
            ["job", "contact", "e-mail", "stage", "code", "reason", "tries", "last seen", "resolved"],
            [
                [
                    letter.job,
                    f"{letter.connection}:{letter.crm_id}",
                    letter.email or "",
                    letter.stage or "",
                    letter.code or "",
                    letter.reason or "",
                    str(letter.attempts),
                    _when(letter.last_seen),
                    letter.resolution or "",
                ]
                for letter in letters
            ],
            numeric={"tries"},
        )
    if code:
        raise typer.Exit(int(code))


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------


def report(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Option("--job", help="Only the contacts this job handles.")] = None,
    connection: Annotated[
        list[str] | None, typer.Option("--connection", help="Only this connection's contacts (repeatable).")
    ] = None,
    crm: Annotated[
        str | None, typer.Option("--crm", help="Only the connections of this CRM (hubspot, salesforce).")
    ] = None,
    by_connection: Annotated[bool, typer.Option("--by-connection", help="One funnel per connection.")] = False,
    since: Annotated[str | None, typer.Option("--since", help="Cohorts that entered a rung from this date.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="... and before this date (default: now).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per funnel, with the definitions.")] = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="CSV rows (one header line; a funnel column when split).")
    ] = False,
    html_file: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report with a chart.")
    ] = None,
) -> None:
    """The funnel: contacts per rung, when each rung was reached, cohort conversion and time in rung."""
    from connector.report import build_funnel, funnel_csv, funnel_html, funnel_table

    context = services(ctx)
    config = context.config()
    now = context.clock()
    since_at, until_at = _instant(since, "--since"), _instant(until, "--until")
    if as_json and as_csv:
        raise CommandFailed("--json and --csv: choose one")
    chosen = [check_connection(config, name) for name in connection or []]
    if crm is not None:
        of_crm = [name for name, settings in config.connections.items() if settings.type == crm]
        if not of_crm:
            types = sorted({settings.type for settings in config.connections.values()})
            raise CommandFailed(
                f"--crm {crm!r}: no connection of that CRM (the config has {', '.join(types) or 'none'})"
            )
        chosen = sorted(set(chosen) & set(of_crm)) if chosen else of_crm
    scopes: list[list[str] | None] = (
        [[name] for name in (chosen or sorted(config.connections))] if by_connection else [chosen or None]
    )
    with context.store(config) as store:
        if job is not None:
            check_job(config, store, job)
        funnels = [
            build_funnel(store, job=job, config=config, connections=scope, since=since_at, until=until_at, now=now)
            for scope in scopes
        ]
    if as_json:
        for funnel in funnels:
            write_json(funnel.as_json())
        return
    if as_csv:
        for index, funnel in enumerate(funnels):
            text = funnel_csv(funnel)
            if by_connection:
                lines = text.splitlines()
                label = ",".join(funnel.connections)
                text = "\n".join(
                    ([f"connection,{lines[0]}"] if index == 0 else []) + [f"{label},{x}" for x in lines[1:]]
                )
                text += "\n"
            elif index:
                text = text.split("\n", 1)[1]
            typer.get_binary_stream("stdout").write(text.encode("utf-8", "backslashreplace"))
        return
    for funnel in funnels:
        out.print(funnel_table(funnel))
    if html_file is not None:
        try:
            html_file.write_text(funnel_html(funnels[0], generated_at=now), encoding="utf-8")
        except OSError as error:
            if error.errno == errno.ENOSPC:  # the table's "disk full" line and code, naming the file
                raise OSError(error.errno, error.strerror, str(html_file)) from None
            raise CommandFailed(f"cannot write {html_file}: {error.strerror}") from None
        out.print(line("report written to ", safe(html_file)))
