"""The ``crmsync`` command line.

Commands for RevOps (``validate``, ``classify``) live here; the admin
commands of the sync jobs and the sandbox CRMs are registered from their
own modules at the bottom.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from connector.config import Config, config_problems, load_config
from connector.connections import connection_mapping, open_client
from connector.errors import ConfigError, CrmsyncError, Problem
from connector.jobs import load_jobs
from connector.lifecycle.rules import Rules, check_rules, decide, load_rules
from connector.loading import read_toml
from connector.mapping import check_mapping
from connector.model import Contact

app = typer.Typer(
    name="crmsync",
    help="Keep every contact's lifecycle stage right inside HubSpot and Salesforce.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

err = Console(stderr=True)
out = Console()


@dataclass
class Context:
    config_path: Path

    def config(self) -> Config:
        return load_config(self.config_path)


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path,
        typer.Option("--config", envvar="CRMSYNC_CONFIG", help="Configuration file.", show_default=True),
    ] = Path("config.toml"),
) -> None:
    """crmsync: one shared rules file, every CRM's lifecycle stage."""
    ctx.obj = Context(config_path=config)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` on stderr; return the ``Exit`` to raise."""
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


# ---------------------------------------------------------------------------
# validate
# ---------------------------------------------------------------------------


def collect_problems(config_path: Path, *, remote: bool) -> tuple[list[Problem], list[str]]:
    """Every problem of the config, mappings, rules and jobs; ``remote`` also asks the CRMs."""
    notes: list[str] = []
    config, problems = config_problems(config_path)
    if config is None:
        # Keep going with the paths the file names (or the defaults) so that
        # every problem of every file is listed at once.
        if config_path.exists():
            problems.extend(_problems_without_config(config_path))
        return problems, notes
    problems.extend(check_rules(config.rules_path))
    for name in config.connections:
        try:
            connection_mapping(config, name)
        except ConfigError as error:
            problems.extend(error.problems or [Problem(str(config_path), f"connections.{name}.mapping", str(error))])
    problems.extend(_job_problems(config.jobs_dir, set(config.connections), config_path, config.resolve))
    if remote and not problems:
        for name in config.connections:
            try:
                client = open_client(config, name)
            except CrmsyncError as error:
                problems.append(Problem(str(config_path), f"connections.{name}", str(error)))
                continue
            try:
                problems.extend(client.check_schema())
                notes.append(f"{name}: checked against the live schema")
            except CrmsyncError as error:
                problems.append(Problem(str(config_path), f"connections.{name}", str(error)))
            finally:
                client.close()
    return problems, notes


def _job_problems(
    jobs_dir: Path, connections: set[str] | None, config_path: Path, resolve: Callable[[Path], Path]
) -> list[Problem]:
    jobs, problems = load_jobs(jobs_dir)
    for job in jobs.values():
        job_file = str(jobs_dir / f"{job.name}.toml")
        for index, connection in enumerate(job.connections):
            if connections is not None and connection not in connections:
                problems.append(
                    Problem(job_file, f"connections.{index}", f"no connection {connection!r} in {config_path}")
                )
        if job.rules:
            problems.extend(check_rules(resolve(Path(job.rules))))
    return problems


def _problems_without_config(config_path: Path) -> list[Problem]:
    """Check the rules, mappings and jobs a broken config file points at (or the defaults)."""
    try:
        data = read_toml(config_path)
    except ConfigError:
        data = {}
    base = config_path.parent
    paths_value = data.get("paths")
    paths: dict[str, Any] = paths_value if isinstance(paths_value, dict) else {}

    def resolve(path: Path) -> Path:
        return path if path.is_absolute() else base / path

    def configured(key: str, default: str) -> Path:
        value = paths.get(key, default)
        return resolve(Path(value if isinstance(value, str) else default))

    problems = check_rules(configured("rules", "mappings/lifecycle.toml"))
    mappings_dir = configured("mappings", "mappings")
    connections_value = data.get("connections")
    connections: dict[str, Any] = connections_value if isinstance(connections_value, dict) else {}
    for settings in connections.values():
        kind = settings.get("type") if isinstance(settings, dict) else None
        mapping = settings.get("mapping", f"{kind}.toml") if isinstance(settings, dict) else None
        if isinstance(mapping, str) and kind in ("hubspot", "salesforce"):
            problems.extend(check_mapping(mappings_dir / mapping))
    problems.extend(_job_problems(configured("jobs", "jobs"), None, config_path, resolve))
    return problems


@app.command()
def validate(
    ctx: typer.Context,
    remote: Annotated[
        bool, typer.Option("--remote", help="Also check mapped fields and stage values against the live CRMs.")
    ] = False,
) -> None:
    """Check the config, mappings, rules and jobs; list every problem with its file and key.

    Exit 0 when everything is valid, 2 otherwise.
    """
    context: Context = ctx.obj
    problems, notes = collect_problems(context.config_path, remote=remote)
    for note in notes:
        err.print(note, highlight=False)
    if problems:
        for problem in problems:
            out.print(f"[red]✗[/red] {problem}", highlight=False, soft_wrap=True)
        err.print(f"{len(problems)} problem(s) found", highlight=False)
        raise typer.Exit(2)
    out.print("[green]✓[/green] config, mappings, rules and jobs are valid", highlight=False)


# ---------------------------------------------------------------------------
# classify
# ---------------------------------------------------------------------------


def _parse_as_of(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"--as-of {value!r} is not an ISO-8601 instant") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _classify_rules(ctx: typer.Context, rules_file: Path | None) -> Rules:
    try:
        if rules_file is not None:
            return load_rules(rules_file)
        context: Context = ctx.obj
        if context.config_path.exists():
            return load_rules(context.config().rules_path)
        return load_rules(Path("mappings/lifecycle.toml"))
    except ConfigError as error:
        raise fail(str(error)) from None


def classify_line(line: str, rules: Rules, now: datetime, explain: bool) -> str:
    contact = Contact.model_validate_json(line)
    decision = decide(contact, None, rules, now=now)
    result: dict[str, Any] = {
        "email": contact.email,
        "stage": decision.stage.value if decision.stage else None,
        "reasons": list(decision.reasons),
    }
    if explain:
        result["rule"] = decision.rule
        result["score"] = decision.score
        result["facts"] = [fact.as_json() for fact in decision.facts]
        result["unknown_kinds"] = dict(decision.unknown_kinds)
    return json.dumps(result, ensure_ascii=False)


@app.command()
def classify(
    ctx: typer.Context,
    rules_file: Annotated[
        Path | None, typer.Option("--rules", help="Rules file (default: paths.rules of the config).")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Decide as of this ISO-8601 instant (default: now).")
    ] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Add the matched rule, score and facts.")] = False,
) -> None:
    """Classify common-model contacts (JSON lines on stdin) without any CRM.

    Writes one JSON line per input line, in order:
    {"email": ..., "stage": ..., "reasons": [...]}. A bad line is reported on
    stderr with its number; the others are still classified and the exit
    code is 1.
    """
    rules = _classify_rules(ctx, rules_file)
    now = _parse_as_of(as_of)
    failed = 0
    write = sys.stdout.write
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            write(classify_line(line, rules, now, explain) + "\n")
        except ValidationError as error:
            failed += 1
            first = error.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            reason = f"{where}: {first['msg']}" if where else first["msg"]
            sys.stderr.write(f"line {number}: {reason}\n")
    sys.stdout.flush()
    if failed:
        sys.stderr.write(f"{failed} line(s) could not be classified\n")
        raise typer.Exit(1)


def run() -> None:  # console-script entry point
    app()


import connector.admin  # noqa: E402
import connector.demo  # noqa: E402
import connector.hubspot.cli  # noqa: E402,F401
