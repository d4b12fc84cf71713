"""What a run reports: counts per connection, the writes a dry run planned, the ``--json`` summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connector.crm import ApiUsage
from connector.runs import RunStatus


@dataclass
class ConnectionCounts:
    """What one run did on one connection."""

    contacts_read: int = 0
    activities_read: int = 0
    skipped: int = 0
    """Records the client could not normalise (reported, not synced)."""
    unmapped: int = 0
    contacts_changed: int = 0
    """Contacts this run queued to decide because they are new, were edited or have new activities
    (each contact once, however many pages it appears on; one already queued is not counted again)."""
    decided: int = 0
    changed: int = 0
    """Planned stage changes (written, or only planned in a dry run / without write-back)."""
    written: int = 0
    unchanged: int = 0
    failed: int = 0
    """Records the CRM rejected: dead letters."""
    deferred: int = 0
    """Transient failures, queued for a later run with backoff."""
    recovered: int = 0
    """Writes of an interrupted run found to have landed, recorded now."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Time per pipeline stage."""

    @property
    def read(self) -> int:
        return self.contacts_read + self.activities_read

    def add_time(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "contacts_read": self.contacts_read,
            "activities_read": self.activities_read,
            "skipped": self.skipped,
            "unmapped": self.unmapped,
            "contacts_changed": self.contacts_changed,
            "decided": self.decided,
            "changed": self.changed,
            "written": self.written,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "deferred": self.deferred,
            "recovered": self.recovered,
            "seconds": {phase: round(value, 3) for phase, value in self.seconds.items()},
        }


TOTALS = ("read", "skipped", "decided", "changed", "written", "unchanged", "failed", "deferred")


@dataclass(frozen=True, slots=True)
class PlannedWrite:
    """A write as planned (what a dry run prints)."""

    connection: str
    crm_id: str
    email: str | None
    field: str
    before: str | None
    after: str
    fields: dict[str, str]


@dataclass
class RunResult:
    run_id: str
    job: str
    status: RunStatus
    """``completed``, ``stopped`` (asked to stop; resumes next run) or ``failed``."""
    started_at: datetime
    duration_seconds: float = 0.0
    dry_run: bool = False
    full: bool = False
    counts: dict[str, ConnectionCounts] = field(default_factory=dict)
    usage: dict[str, ApiUsage] = field(default_factory=dict)
    planned: list[PlannedWrite] = field(default_factory=list)
    planned_dropped: int = 0
    """Planned writes past ``dry_run_limit`` (counted, not kept)."""
    error: str | None = None

    def totals(self) -> dict[str, int]:
        sums = dict.fromkeys(TOTALS, 0)
        for counts in self.counts.values():
            values = counts.as_dict()
            for name in TOTALS:
                sums[name] += values[name]
        return sums

    def summary(self) -> dict[str, Any]:
        """The one JSON object of ``crmsync run --json``: counts, API calls per connection, duration."""
        return {
            "run_id": self.run_id,
            "job": self.job,
            "status": self.status.value,
            "dry_run": self.dry_run,
            "full": self.full,
            "started_at": self.started_at.isoformat(),
            "duration_seconds": round(self.duration_seconds, 3),
            **self.totals(),
            "connections": {
                name: {
                    **counts.as_dict(),
                    "api_calls": self.usage[name].total_calls if name in self.usage else 0,
                    "api_calls_by_endpoint": dict(self.usage[name].calls) if name in self.usage else {},
                    "rate_limited": self.usage[name].rate_limited if name in self.usage else 0,
                    "retries": self.usage[name].retries if name in self.usage else 0,
                }
                for name, counts in self.counts.items()
            },
            "planned_writes": len(self.planned) + self.planned_dropped if self.dry_run else None,
            "error": self.error,
        }
