"""A job's health at a glance, from its runs and its schedule (pure: no store, no clock)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from connector.jobs import Job
from connector.scheduler import next_run
from connector.store.queries import RunView

FAILED_STATUSES = frozenset({"failed", "interrupted", "abandoned"})


class Level(StrEnum):
    """Worst first; each has a word on the page, never a colour alone."""

    FAILING = "failing"
    LATE = "late"
    ATTENTION = "attention"
    RUNNING = "running"
    OK = "ok"
    NEVER = "never run"


@dataclass(frozen=True, slots=True)
class JobHealth:
    name: str
    level: Level
    summary: str
    """One sentence: what is wrong, or that nothing is."""
    job: Job | None
    """``None`` when the store knows the job but no job file defines it (any more)."""
    last_run: RunView | None
    last_success: RunView | None
    next_run: datetime | None
    dead_letters: int
    queued: int


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0][:200] if (text or "").strip() else "no error recorded"


def job_health(
    name: str,
    job: Job | None,
    *,
    last_run: RunView | None,
    last_success: RunView | None,
    dead_letters: int,
    queued: int,
    now: datetime,
) -> JobHealth:
    """How ``name`` is doing as of ``now``.

    Failing: its newest run failed (or died). Late: no run completed for two
    ticks of its schedule after the last one that did. Attention: the newest
    run rejected records, or dead letters are open. Running: a run is open now.
    """
    upcoming = next_run(job, now) if job else None

    def health(level: Level, summary: str) -> JobHealth:
        return JobHealth(name, level, summary, job, last_run, last_success, upcoming, dead_letters, queued)

    if last_run is None:
        return health(Level.NEVER, "no run recorded yet")
    if last_run.status == "running":
        return health(Level.RUNNING, "a run is in progress")
    if last_run.status in FAILED_STATUSES:
        return health(Level.FAILING, f"last run {last_run.status}: {_first_line(last_run.error)}")
    if job is not None and last_success is not None:
        due = next_run(job, last_success.started_at)
        if now > next_run(job, due):
            return health(Level.LATE, "no run completed for two ticks of the schedule")
    rejected = int(last_run.counts.get("failed", 0) or 0)
    if rejected or dead_letters:
        parts = []
        if rejected:
            parts.append(f"last run: {rejected} record(s) rejected")
        if dead_letters:
            parts.append(f"{dead_letters} open dead letter(s)")
        return health(Level.ATTENTION, "; ".join(parts))
    if last_run.status == "stopped":
        return health(Level.OK, "last run was stopped and resumes on the next one")
    return health(Level.OK, "last run completed")
