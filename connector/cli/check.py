"""RevOps' offline commands: ``validate`` (config, mappings, rules, jobs) and ``classify`` (contacts on stdin)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer

from connector.cli.exits import CommandFailed, ExitCode
from connector.cli.services import services
from connector.cli.terminal import err, line, out, safe, visible

if TYPE_CHECKING:
    from connector.cli.services import ClientFactory
    from connector.errors import Problem
    from connector.lifecycle.rules import Rules

MAX_LINE_BYTES = 1_000_000
"""Longest line ``classify`` reads (1 MB); a longer one is reported as a bad line, read past without holding it."""

# ---------------------------------------------------------------------------
# validate
# ---------------------------------------------------------------------------


def collect_problems(
    config_path: Path, *, remote: bool, clients: ClientFactory | None = None
) -> tuple[list[Problem], list[str]]:
    """Every problem of the config, mappings, rules and jobs; ``remote`` also asks the CRMs."""
    from connector.config import config_problems
    from connector.connections import connection_mapping
    from connector.errors import ConfigError, CrmsyncError, Problem
    from connector.lifecycle.rules import check_rules

    notes: list[str] = []
    config, problems = config_problems(config_path)
    if config is None:
        # Keep going with the paths the file names (or the defaults) so that
        # every problem of every file is listed at once.
        if config_path.is_file():
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
        from connector.cli.services import open_client

        factory = clients or open_client
        for name in config.connections:
            try:
                client = factory(config, name)
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
    from connector.errors import Problem
    from connector.jobs import load_jobs
    from connector.lifecycle.rules import check_rules

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
    from connector.errors import ConfigError
    from connector.lifecycle.rules import check_rules
    from connector.loading import read_toml
    from connector.mapping import check_mapping

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


def validate(
    ctx: typer.Context,
    remote: Annotated[
        bool, typer.Option("--remote", help="Also check mapped fields and stage values against the live CRMs.")
    ] = False,
) -> None:
    """Check the config, mappings, rules and jobs; list every problem with its file and key.

    Exit 0 when everything is valid, 2 otherwise.
    """
    context = services(ctx)
    problems, notes = collect_problems(context.config_path, remote=remote, clients=context.clients)
    for note in notes:
        err.print(safe(note))
    if problems:
        for problem in problems:
            out.print(line(("✗", "red"), " ", safe(problem)))
        err.print(f"{len(problems)} problem(s) found", markup=False)
        raise typer.Exit(ExitCode.CONFIG)
    out.print(line(("✓", "green"), " config, mappings, rules and jobs are valid"))


# ---------------------------------------------------------------------------
# classify
# ---------------------------------------------------------------------------


def parse_instant(value: str, option: str) -> datetime:
    """An ISO-8601 date or instant (naive means UTC); a bad one is a ``CommandFailed`` naming the option."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CommandFailed(f"{option} {value!r} is not an ISO-8601 date or instant") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _classify_rules(ctx: typer.Context, rules_file: Path | None) -> Rules:
    from connector.lifecycle.rules import load_rules

    if rules_file is not None:
        return load_rules(rules_file)
    context = services(ctx)
    if context.config_path.exists():
        return load_rules(context.config().rules_path)
    return load_rules(Path("mappings/lifecycle.toml"))


def classify_line(line: str | bytes, rules: Rules, now: datetime, explain: bool) -> str:
    from connector.lifecycle.rules import decide
    from connector.model import Contact

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


def input_lines(stream: BinaryIO, limit: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line) for each line of ``stream``; ``None`` for a line longer than ``limit`` bytes.

    A line is never held beyond ``limit`` + 1 bytes: the rest of a long one
    is read in small pieces and dropped.
    """
    number = 0
    while True:
        chunk = stream.readline(limit + 1)
        if not chunk:
            return
        number += 1
        if len(chunk) > limit and not chunk.endswith(b"\n"):
            while True:
                rest = stream.readline(65_536)
                if not rest or rest.endswith(b"\n"):
                    break
            yield number, None
            continue
        yield number, chunk


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
    {"email": ..., "stage": ..., "reasons": [...]}. A bad line (not JSON,
    not a contact, not UTF-8, longer than 1 MB) is reported on stderr with
    its number; the others are still classified and the exit code is 1.
    """
    from pydantic import ValidationError

    rules = _classify_rules(ctx, rules_file)
    now = parse_instant(as_of, "--as-of") if as_of is not None else services(ctx).clock()
    failed = 0
    stdout = typer.get_binary_stream("stdout")
    stderr = typer.get_text_stream("stderr")
    for number, raw in input_lines(typer.get_binary_stream("stdin")):
        if raw is None:
            failed += 1
            stderr.write(f"line {number}: longer than {MAX_LINE_BYTES:,} bytes, not read\n")
            continue
        if not raw.strip():
            continue
        try:
            result = classify_line(raw, rules, now, explain)
        except ValidationError as error:
            failed += 1
            first = error.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            reason = f"{where}: {first['msg']}" if where else first["msg"]
            stderr.write(f"line {number}: {visible(reason)}\n")
            continue
        # a lone surrogate (valid as a JSON escape) goes out as the same escape, not as an encoding error
        stdout.write(result.encode("utf-8", "backslashreplace") + b"\n")
    stdout.flush()
    if failed:
        stderr.write(f"{failed} line(s) could not be classified\n")
        raise typer.Exit(ExitCode.FAILED)
