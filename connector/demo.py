"""``crmsync sandbox`` and ``crmsync demo``: the sandbox CRMs as a user feature.

``sandbox`` serves a seeded HubSpot portal and Salesforce org on loopback and
writes a config folder that points at them, so RevOps can try mapping and
rule changes with ``crmsync run`` before touching production. ``demo`` does
the same in a temporary folder, runs every demo job end to end (then once
more, to show that a run with nothing new writes nothing) and prints the
funnel.

Registered on the main app from the bottom of ``connector/cli.py``.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import mkdtemp
from typing import Annotated

import typer

import connector.admin as admin
from connector.cli import app, err, fail, out
from connector.config import load_config
from connector.errors import ConfigError
from connector.jobs import load_jobs
from connector.report import build_funnel, funnel_table
from connector.sandbox.hubspot import HubSpotSandbox
from connector.sandbox.salesforce import SalesforceSandbox
from connector.store import queries

PROJECT = Path(__file__).resolve().parent.parent
HUBSPOT_TOKEN_ENV = "CRMSYNC_SANDBOX_HUBSPOT_TOKEN"


@dataclass
class Sandboxes:
    hubspot: HubSpotSandbox
    salesforce: SalesforceSandbox

    def secrets_env(self) -> dict[str, str]:
        """Environment variables holding the sandboxes' own (throwaway) credentials."""
        return {HUBSPOT_TOKEN_ENV: self.hubspot.token, **self.salesforce.secrets_env()}


@contextmanager
def running_sandboxes(*, contacts: int, activities: int, seed: int, hubspot_port: int = 0,
                      salesforce_port: int = 0) -> Iterator[Sandboxes]:  # fmt: skip
    """Both sandbox CRMs, seeded with ``contacts`` people and ``activities`` activities each, serving."""
    with ExitStack() as stack:
        hubspot = stack.enter_context(
            HubSpotSandbox(contacts=contacts, activities=activities, seed=seed, port=hubspot_port)
        )
        salesforce = stack.enter_context(
            SalesforceSandbox(people=contacts, activities=activities, seed=seed + 1, port=salesforce_port)
        )
        yield Sandboxes(hubspot, salesforce)


def find_defaults(mappings: Path | None) -> tuple[Path, Path]:
    """The shipped ``mappings/`` and ``jobs/`` folders (next to the package in a checkout)."""
    mappings = mappings or PROJECT / "mappings"
    jobs = mappings.parent / "jobs"
    if not (mappings / "lifecycle.toml").exists() or not jobs.is_dir():
        raise ConfigError(
            f"cannot find the shipped mappings and jobs next to {mappings}: run from a checkout installed with "
            "`pip install -e .`, or pass --mappings DIR (a folder with hubspot.toml, salesforce.toml, "
            "lifecycle.toml, and a jobs/ folder beside it)"
        )
    return mappings, jobs


def write_config_folder(folder: Path, sandboxes: Sandboxes, mappings: Path, jobs: Path) -> Path:
    """A config, mappings and jobs in ``folder`` pointing at the running sandboxes; returns the config path."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(mappings, folder / "mappings", dirs_exist_ok=True)
    shutil.copytree(jobs, folder / "jobs", dirs_exist_ok=True)
    salesforce = sandboxes.salesforce.connection_settings()
    config = folder / "config.toml"
    config.write_text(
        f"""# Written by crmsync for the local sandbox CRMs. Secrets come from the environment.
[store]
url = "sqlite:///crmsync.db"

[paths]
mappings = "mappings"
jobs = "jobs"
rules = "mappings/lifecycle.toml"

[connections.hubspot]
type = "hubspot"
base_url = "{sandboxes.hubspot.url}"
token_env = "{HUBSPOT_TOKEN_ENV}"
mapping = "hubspot.toml"

[connections.salesforce]
type = "salesforce"
instance_url = "{salesforce["instance_url"]}"
login_url = "{salesforce["login_url"]}"
auth = "{salesforce["auth"]}"
client_id_env = "{salesforce["client_id_env"]}"
client_secret_env = "{salesforce["client_secret_env"]}"
ca_bundle = "{salesforce["ca_bundle"]}"
mapping = "salesforce.toml"
""",
        encoding="utf-8",
    )
    return config


def _exports(env: dict[str, str]) -> str:
    return "\n".join(f"  export {name}={value}" for name, value in sorted(env.items()))


# ---------------------------------------------------------------------------
# crmsync sandbox
# ---------------------------------------------------------------------------


@app.command()
def sandbox(
    contacts: Annotated[int, typer.Option(help="People to seed in each CRM.", min=0)] = 2_000,
    activities: Annotated[int, typer.Option(help="Activities to seed in each CRM.", min=0)] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the data generator (same seed, same data).")] = 7,
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
    can be tried against them from another shell.
    """
    try:
        mappings_dir, jobs_dir = find_defaults(mappings)
    except ConfigError as error:
        raise fail(str(error)) from None
    err.print(f"seeding {contacts:,} people and {activities:,} activities per CRM...", highlight=False)
    with running_sandboxes(
        contacts=contacts, activities=activities, seed=seed, hubspot_port=hubspot_port, salesforce_port=salesforce_port
    ) as sandboxes:
        target = folder or Path(mkdtemp(prefix="crmsync-sandbox-"))
        config = write_config_folder(target, sandboxes, mappings_dir, jobs_dir)
        out.print(
            f"HubSpot sandbox:    {sandboxes.hubspot.url}\n"
            f"Salesforce sandbox: {sandboxes.salesforce.url} (TLS, CA {sandboxes.salesforce.ca_file})\n"
            f"config:             {config}\n\n"
            "In another shell (these are the sandboxes' own throwaway credentials):\n"
            f"{_exports(sandboxes.secrets_env())}\n"
            f"  crmsync --config {config} run hubspot-lifecycle\n\n"
            "Ctrl-C stops the sandboxes.",
            highlight=False,
            soft_wrap=True,
        )
        stop = threading.Event()
        try:
            while not stop.wait(3600):
                pass
        except KeyboardInterrupt:
            err.print("stopping the sandboxes", highlight=False)


# ---------------------------------------------------------------------------
# crmsync demo
# ---------------------------------------------------------------------------


@app.command()
def demo(
    contacts: Annotated[int, typer.Option(help="People to seed in each CRM.", min=1)] = 2_000,
    activities: Annotated[int, typer.Option(help="Activities to seed in each CRM.", min=0)] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the data generator.")] = 7,
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
    try:
        mappings_dir, jobs_dir = find_defaults(mappings)
    except ConfigError as error:
        raise fail(str(error)) from None
    target = folder or Path(mkdtemp(prefix="crmsync-demo-"))
    started = time.monotonic()
    err.print(f"seeding the sandbox CRMs: {contacts:,} people and {activities:,} activities each...", highlight=False)
    with running_sandboxes(contacts=contacts, activities=activities, seed=seed) as sandboxes:
        config_path = write_config_folder(target, sandboxes, mappings_dir, jobs_dir)
        saved = {name: os.environ.get(name) for name in sandboxes.secrets_env()}
        os.environ.update(sandboxes.secrets_env())
        try:
            config = load_config(config_path)
            jobs, problems = load_jobs(config.jobs_dir)
            if problems:
                raise fail("; ".join(str(p) for p in problems))
            with admin.config_store(config) as store:
                for name in sorted(jobs):
                    for attempt in ("first run", "re-run, nothing new"):
                        out.rule(f"{name}: {attempt}")
                        result, code, message = admin.execute(
                            jobs[name], config, store, full=False, dry_run=None,
                            progress=err.is_terminal, stop=threading.Event(),
                        )  # fmt: skip
                        if result is None:
                            raise fail(message or "run failed", code or admin.EXIT_FAILED)
                        admin.print_summary(result)
                funnel = build_funnel(store)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    out.rule("the funnel")
    out.print(funnel_table(funnel))
    example = _example_contact(config_path)
    out.print(
        f"\nDone in {time.monotonic() - started:.1f}s. The demo folder keeps the config and the store:\n"
        f"  {target}\n"
        "Where to look next:\n"
        f"  crmsync --config {config_path} status\n"
        f"  crmsync --config {config_path} history --stage sql\n"
        + (f"  crmsync --config {config_path} explain {example}\n" if example else "")
        + f"  crmsync --config {config_path} report --html funnel.html\n"
        "  crmsync sandbox          # keep sandbox CRMs running and try `crmsync run` on them",
        highlight=False,
        soft_wrap=True,
    )


def _example_contact(config_path: Path) -> str | None:
    """An e-mail of a contact that reached SQL in the demo, for the `explain` hint."""
    with admin.config_store(load_config(config_path)) as store:
        rows = queries.changes(store, contact=None, job=None, stage="sql", since=None, until=None, limit=1)
    return rows[0].email if rows and rows[0].email else None
