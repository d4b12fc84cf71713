"""Many client portals in one config folder: a connection template and a job template, one short entry per tenant.

``tenants.toml`` (or the file ``team.tenants`` names), next to ``config.toml``::

    [connection]                      # the keys of a [connections.NAME] table
    type = "hubspot"
    token_env = "HUBSPOT_TOKEN_{TENANT}"

    [job]                             # the keys of a job file, but name and connections
    schedule = "*/5 * * * *"

    [tenants.acme]                    # a tenant with the templates as they are
    [tenants.globex.connection]       # a tenant's own values win over the template's
    burst_limit = 100

Each tenant gives one connection and one job, both named after it (so
``history --job acme`` and ``report --job acme`` show one tenant). In a
string value ``{tenant}`` is the tenant's name and ``{TENANT}`` the same in
upper case with ``-`` as ``_`` (an environment variable's name): each
tenant's token stays in its own variable, never in a file. Nothing else is
substituted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from connector.config import VENDOR_TYPES, Config, Connection
from connector.errors import ConfigError, Problem
from connector.jobs import NAME, Job, load_jobs
from connector.loading import problems_from, raise_problems, read_toml

DEFAULT_FILE = Path("tenants.toml")


class Overrides(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    connection: dict[str, Any] = Field(default_factory=dict)
    job: dict[str, Any] = Field(default_factory=dict)


class TenantsFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    connection: dict[str, Any]
    job: dict[str, Any] = Field(default_factory=dict)
    tenants: dict[str, Overrides] = Field(default_factory=dict)


def fill(value: Any, tenant: str) -> Any:
    """``value`` with ``{tenant}`` / ``{TENANT}`` replaced in its strings (lists and tables included)."""
    if isinstance(value, str):
        return value.replace("{tenant}", tenant).replace("{TENANT}", tenant.upper().replace("-", "_"))
    if isinstance(value, list):
        return [fill(item, tenant) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, tenant) for key, item in value.items()}
    return value


def tenants_path(config: Config) -> Path | None:
    """The tenants file of ``config``: ``team.tenants``, else ``tenants.toml`` beside the config if there is one."""
    named = config.team.tenants
    if named is not None:
        return config.resolve(named)
    default = config.resolve(DEFAULT_FILE)
    return default if default.is_file() else None


def expand(config: Config, path: Path, taken_jobs: frozenset[str] = frozenset()) -> tuple[Config, dict[str, Job]]:
    """``config`` with one connection per tenant of ``path``, and the tenants' jobs; every problem at once."""
    file = str(path)
    try:
        spec = TenantsFile.model_validate(read_toml(path))
    except ValidationError as error:
        raise_problems(file, problems_from(error, file))
        raise  # pragma: no cover
    problems: list[Problem] = []
    connections = dict(config.connections)
    jobs: dict[str, Job] = {}
    adapter: TypeAdapter[Connection] = TypeAdapter(Connection)
    for tenant, own in spec.tenants.items():
        key = f"tenants.{tenant}"
        if not NAME.fullmatch(tenant) or len(tenant) > 64:
            problems.append(Problem(file, key, "a tenant's name is a job name: lower-case letters, digits, - and _"))
            continue
        if tenant in config.connections or tenant in taken_jobs:
            problems.append(Problem(file, key, "a connection or job of that name is already defined"))
            continue
        try:
            connections[tenant] = adapter.validate_python(fill({**spec.connection, **own.connection}, tenant))
        except ValidationError as error:
            for problem in problems_from(error, file, f"{key}.connection"):
                # the vendor's tag pydantic puts first in the location is not a key of the file
                for tag in VENDOR_TYPES:
                    problem.key = problem.key.replace(f".connection.{tag}", ".connection")
                problems.append(problem)
        fields = {**fill({**spec.job, **own.job}, tenant), "name": tenant, "connections": [tenant]}
        try:
            jobs[tenant] = Job.model_validate(fields)
        except ValidationError as error:
            problems.extend(problems_from(error, file, f"{key}.job"))
    if problems:
        raise ConfigError("\n".join(str(problem) for problem in problems), problems)
    return config.model_copy(update={"connections": connections}), jobs


def team_jobs(config: Config) -> tuple[Config, dict[str, Job]]:
    """The job files plus the tenants' jobs, and the config with the tenants' connections; every problem at once."""
    jobs, problems = load_jobs(config.jobs_dir)
    if problems:
        raise ConfigError("\n".join(str(problem) for problem in problems), problems)
    path = tenants_path(config)
    if path is None:
        return config, jobs
    expanded, tenant_jobs = expand(config, path, frozenset(jobs))
    return expanded, {**jobs, **tenant_jobs}
