"""Job files (``jobs/<name>.toml``): what to sync, when, and whether to write back."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from croniter import CroniterError, croniter
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator

from connector.errors import ConfigError, Problem
from connector.loading import load_model
from connector.runs import RunMode, WriteMode

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
"""A job's name: also its file name in the jobs folder, so nothing that could leave the folder."""


class Job(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME.pattern, max_length=64)
    description: str | None = None
    connections: list[str] = Field(min_length=1)
    """Connection names from ``config.toml``."""
    schedule: str = "*/15 * * * *"
    """Cron expression (five fields, UTC) for ``crmsync scheduler``."""
    mode: RunMode = RunMode.INCREMENTAL
    """``incremental`` pulls what changed since the checkpoint; ``full`` re-reads everything every run."""
    write_back: StrictBool = True
    """Write stage fields to the CRM; off = decide and record only (see :attr:`write_mode`)."""
    dry_run: StrictBool = False
    """Plan writes and report them without making them (wins over ``write_back``)."""
    rules: str | None = None
    """Optional rules file for this job, relative to the config's folder (default: ``paths.rules``)."""
    decide_processes: int = Field(default=0, ge=0, le=16)
    """Processes that decide a queue of 5,000 contacts or more: the run's own and helpers beside it (every
    CRM call stays in the run's process); 0 = one per CPU core, at most 4; 1 = the run's process alone."""
    unify: StrictBool = False
    """Match the records of the job's connections into people (one person, one stage across the CRMs);
    needs at least two connections (docs/people.md)."""

    @property
    def run_mode(self) -> RunMode:
        return self.mode

    @property
    def write_mode(self) -> WriteMode:
        """The job's two keys as one mode: ``dry_run`` wins, else ``write_back`` says write or record only."""
        return WriteMode.from_flags(write_back=self.write_back, dry_run=self.dry_run)

    @field_validator("unify")
    @classmethod
    def _unify_needs_two(cls, value: bool, info: ValidationInfo) -> bool:
        connections = info.data.get("connections")
        if value and connections is not None and len(set(connections)) < 2:
            raise ValueError("unify = true needs at least two connections (one person's records in several CRMs)")
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not croniter.is_valid(value) or len(value.split()) != 5:
            raise ValueError(f"not a five-field cron expression: {value!r}")
        try:
            # croniter searches a few years ahead: a date that never exists (31 February) is not found
            croniter(value, datetime(2026, 1, 1, tzinfo=UTC)).get_next(datetime)
        except (CroniterError, ValueError):
            raise ValueError(f"the schedule {value!r} never fires (no such date)") from None
        return value


def load_job(path: Path) -> Job:
    """One job file; any problem (not TOML, not UTF-8, unreadable, invalid) is a ``ConfigError`` naming it."""
    try:
        job = load_model(Job, path)
    except UnicodeDecodeError as error:
        problem = Problem(str(path), "", f"not UTF-8 text (byte {error.start})")
        raise ConfigError(str(problem), [problem]) from None
    except OSError as error:
        problem = Problem(str(path), "", f"cannot read: {error.strerror or type(error).__name__}")
        raise ConfigError(str(problem), [problem]) from None
    if job.name != path.stem:
        problem = Problem(str(path), "name", f"must match the file name ({path.stem!r})")
        raise ConfigError(str(problem), [problem])
    return job


def load_jobs(folder: Path) -> tuple[dict[str, Job], list[Problem]]:
    """Every job in ``folder``, plus the problems of those that did not load (one bad file spoils only itself)."""
    jobs: dict[str, Job] = {}
    problems: list[Problem] = []
    if not folder.is_dir():
        return jobs, [Problem(str(folder), "", "jobs folder not found")]
    for path in sorted(folder.glob("*.toml")):
        try:
            job = load_job(path)
        except ConfigError as error:
            problems.extend(error.problems or [Problem(str(path), "", str(error))])
            continue
        jobs[job.name] = job
    return jobs, problems


def find_job(folder: Path, name: str) -> Job:
    """The job called ``name``: a job name, never a path (``../mappings/lifecycle`` is refused)."""
    if not NAME.fullmatch(name):
        raise ConfigError(
            f"{name!r} is not a job name (lower-case letters, digits, '-' and '_'; the file jobs/<name>.toml)"
        )
    path = folder / f"{name}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []
        raise ConfigError(f"no job {name!r} in {folder} (known: {', '.join(known) or 'none'})")
    return load_job(path)
