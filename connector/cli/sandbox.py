"""``crmsync sandbox`` and ``crmsync demo``: the sandbox CRMs as a user feature (the ``sandbox`` extra).

``sandbox`` serves a seeded HubSpot portal and Salesforce org on loopback and
writes a config folder that points at them, so RevOps can try mapping and
rule changes with ``crmsync run`` before touching production. ``demo`` does
the same in a temporary folder, runs every demo job end to end (then once
more, to show that a run with nothing new writes nothing) and prints the
funnel. Without the extra installed both print a one-line hint and exit 2.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from tempfile import mkdtemp
from types import ModuleType
from typing import TYPE_CHECKING, Annotated

import typer

from connector.cli.exits import CommandFailed, ExitCode
from connector.cli.services import services
from connector.cli.terminal import err, line, out, safe

if TYPE_CHECKING:
    from connector.sync import RunResult

NOT_INSTALLED = 'the sandbox CRMs are not installed: pip install "crmsync[sandbox]" (or ".[sandbox]" from a clone)'


def sandbox_kit() -> ModuleType:
    """``connector.cli.demo``, or a ``CommandFailed`` with the install hint when the extra's modules are missing."""
    try:
        from connector.cli import demo
    except ImportError as error:
        missing = error.name or ""
        if missing.startswith("connector.") and not missing.startswith("connector.sandbox"):
            raise  # our own bug, not a missing extra
        raise CommandFailed(NOT_INSTALLED, ExitCode.CONFIG) from error
    return demo


def sandbox(
    ctx: typer.Context,
    contacts: Annotated[int, typer.Option(help="People to seed in each CRM.", min=0)] = 2_000,
    activities: Annotated[int, typer.Option(help="Activities to seed in each CRM.", min=0)] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the data generator (same seed, same data).")] = 7,
    overlap: Annotated[
        float,
        typer.Option(
            help="Share of the people who are in both CRMs (same e-mail, or an alias HubSpot keeps), their signals "
            "split between them.",
            min=0.0,
            max=1.0,
        ),
    ] = 0.1,
    hubspot_port: Annotated[int, typer.Option(help="HubSpot port (0: any free port).")] = 0,
    salesforce_port: Annotated[int, typer.Option(help="Salesforce port (0: any free port).")] = 0,
    folder: Annotated[
        Path | None,
        typer.Option("--dir", help="Write a config pointing at the sandboxes here (default: a new temp folder)."),
    ] = None,
    mappings: Annotated[Path | None, typer.Option(help="Mappings folder to copy (default: the shipped one).")] = None,
) -> None:
    """Serve a local HubSpot portal and Salesforce org, seeded with realistic data, until Ctrl-C.

    They behave like the real services (paging, batch caps, error shapes, rate
    limits). A config folder pointing at them is written so that `crmsync run`
    can be tried against them from another shell. Restarted on the same
    --dir, the previous sandbox's store is removed (its checkpoints point at
    data that no longer exists).
    """
    kit = sandbox_kit()
    mappings_dir, jobs_dir = kit.find_defaults(mappings)
    target = folder or Path(mkdtemp(prefix="crmsync-sandbox-"))
    if kit.prepare_folder(target):
        err.print(line("removed the previous sandbox's store in ", safe(target), " (the CRMs are seeded afresh)"))
    err.print(f"seeding {contacts:,} people and {activities:,} activities per CRM...", markup=False)
    with kit.running_sandboxes(
        contacts=contacts, activities=activities, seed=seed, hubspot_port=hubspot_port,
        salesforce_port=salesforce_port, overlap=overlap,
    ) as sandboxes:  # fmt: skip
        config = kit.write_config_folder(target, sandboxes, mappings_dir, jobs_dir)
        out.print(
            f"HubSpot sandbox:    {sandboxes.hubspot.url}\n"
            f"Salesforce sandbox: {sandboxes.salesforce.url} (TLS, CA {target / kit.CA_FILE})\n"
            f"config:             {config}\n\n"
            "In another shell (these are the sandboxes' own throwaway credentials):\n"
            f"{kit.exports(sandboxes.secrets_env())}\n"
            f"  crmsync --config {config} run hubspot-lifecycle\n\n"
            "Ctrl-C stops the sandboxes.",
            markup=False,
        )
        stop = threading.Event()
        try:
            while not stop.wait(3600):
                pass
        except KeyboardInterrupt:
            err.print("stopping the sandboxes", markup=False)


def explain_numbers(result: RunResult, *, rerun: bool) -> list[str]:
    """What the summary's numbers mean, in words, for the demo (pure)."""
    totals = result.totals()
    read = sum(counts.contacts_read for counts in result.counts.values())
    lines: list[str] = []
    if rerun:
        lines.append(
            f"read {read} contacts: the contacts the first run wrote to were modified by that write, so the CRM "
            "lists them again as changed since the checkpoint (echoes of our own writes); their content is what "
            "we stored, so they are not decided again"
            + (" (decided 0)." if not totals["decided"] else f"; {totals['decided']} had something new.")
        )
    else:
        lines.append(f"read {read} contacts: a first run reads every contact and activity of the CRM.")
        lines.append(
            f"decided {totals['decided']}: contacts new or changed since the last run, put through the rules; "
            f"changed {totals['changed']}: those whose stage in the CRM differs from the rules' rung; "
            f"the other {totals['decided'] - totals['changed']} were already right, kept (a rung set higher by "
            "hand, a value outside the ladder) or fit no rung."
        )
    if totals["skipped"]:
        lines.append(
            f"skipped {totals['skipped']}: records the CRM sent that could not be read into the common model "
            "(no e-mail, a malformed value, an unknown record type); each is logged with its id, none is synced."
        )
    if totals["failed"]:
        lines.append(f"failed {totals['failed']}: the CRM rejected the write; `crmsync dead-letters` says why.")
    if totals["deferred"]:
        lines.append(f"deferred {totals['deferred']}: a transient error; tried again on the next run.")
    return lines


def demo(
    ctx: typer.Context,
    contacts: Annotated[int, typer.Option(help="People to seed in each CRM.", min=1)] = 2_000,
    activities: Annotated[int, typer.Option(help="Activities to seed in each CRM.", min=0)] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the data generator.")] = 7,
    overlap: Annotated[
        float,
        typer.Option(
            help="Share of the people who are in both CRMs (same e-mail, or an alias HubSpot keeps), their signals "
            "split between them.",
            min=0.0,
            max=1.0,
        ),
    ] = 0.1,
    folder: Annotated[
        Path | None, typer.Option("--dir", help="Folder for the demo config and store (default: a new temp folder).")
    ] = None,
    mappings: Annotated[Path | None, typer.Option(help="Mappings folder to copy (default: the shipped one).")] = None,
) -> None:
    """Sandbox CRMs + a demo config + one run of every demo job, end to end; then the funnel.

    Each job runs twice: the first run pulls everything, decides every stage
    and writes the changes back; the second, with nothing new, writes nothing.
    The folder keeps the config and the SQLite store, so `status`, `history`,
    `explain` and `report` work on it afterwards.
    """
    from connector.cli.jobs import execute, print_summary
    from connector.jobs import load_jobs
    from connector.report import build_funnel, funnel_table
    from connector.store import queries

    kit = sandbox_kit()
    mappings_dir, jobs_dir = kit.find_defaults(mappings)
    target = folder or Path(mkdtemp(prefix="crmsync-demo-"))
    kit.prepare_folder(target)
    started = time.monotonic()
    err.print(f"seeding the sandbox CRMs: {contacts:,} people and {activities:,} activities each...", markup=False)
    with kit.running_sandboxes(contacts=contacts, activities=activities, seed=seed, overlap=overlap) as sandboxes:
        config_path = kit.write_config_folder(target, sandboxes, mappings_dir, jobs_dir)
        # the demo's own services: its config, and clients given the sandboxes' secrets (never os.environ)
        context = dataclasses.replace(
            services(ctx), config_path=config_path, clients=kit.sandbox_clients(sandboxes.secrets_env())
        )
        config = context.config()
        jobs, problems = load_jobs(config.jobs_dir)
        if problems:
            raise CommandFailed("; ".join(str(p) for p in problems))
        with context.store(config) as store:
            for name in sorted(jobs):
                for attempt in ("first run", "re-run, nothing new"):
                    out.rule(f"{name}: {attempt}")
                    result = execute(
                        context, jobs[name], config, store, full=False, dry_run=None,
                        progress=err.is_terminal, stop=threading.Event(),
                    )  # fmt: skip
                    print_summary(result)
                    for explanation in explain_numbers(result, rerun=attempt != "first run"):
                        out.print(line("  ", (explanation, "dim")))
            funnel = build_funnel(store, config=config, now=context.clock())
            rows = queries.changes(store, contact=None, job=None, stage="sql", since=None, until=None, limit=1)
    example = rows[0].email if rows and rows[0].email else None
    out.rule("the funnel")
    out.print(funnel_table(funnel))
    out.print(
        line(
            f"\nDone in {time.monotonic() - started:.1f}s. The demo folder keeps the config and the store:\n"
            f"  {target}\n"
            "Where to look next:\n"
            f"  crmsync --config {config_path} status\n"
            f"  crmsync --config {config_path} history --stage sql\n",
            line(f"  crmsync --config {config_path} explain ", safe(example), "\n") if example else "",
            f"  crmsync --config {config_path} report --html funnel.html\n"
            "  crmsync sandbox          # keep sandbox CRMs running and try `crmsync run` on them",
        )
    )
