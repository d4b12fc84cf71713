"""When to alert (pure): a recorded run, or a job's last completed run, in; :class:`Alert` values out.

Nothing here sends, reads the clock or touches the store: the caller passes
the run as recorded and ``now``. An alert's text holds counts, the job and
connection names and the run's stored error (already redacted by the sync);
never a record's data, a URL or a credential.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from connector.alerts.settings import AlertSettings


class Trigger(StrEnum):
    RUN_FAILED = "run_failed"
    REJECTED = "rejected"
    DEAD_LETTERS = "dead_letters"
    API_USAGE = "api_usage"
    STALE = "stale"
    TEST = "test"


@dataclass(frozen=True, slots=True)
class Alert:
    trigger: Trigger
    job: str
    title: str
    text: str
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)
    scope: str = ""
    """What the cool-down tells apart within a job and trigger (a connection for API usage)."""

    @property
    def key(self) -> str:
        return ":".join(part for part in (self.job, self.trigger.value, self.scope) if part)

    def as_json(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger.value,
            "job": self.job,
            "title": self.title,
            "text": self.text,
            "at": self.at.isoformat(),
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class RecordedRun:
    """What the triggers read of a run as the store recorded it."""

    id: str
    job: str
    status: str
    finished_at: datetime
    dry_run: bool
    counts: dict[str, Any]
    usage: dict[str, Any]
    error: str | None
    new_dead_letters: int = 0


def rejected_share(counts: dict[str, Any]) -> tuple[int, int, float]:
    """(rejected, tried, share): records the CRM rejected among those the run tried to write."""
    failed = int(counts.get("failed", 0) or 0)
    tried = failed + int(counts.get("written", 0) or 0)
    return failed, tried, (failed / tried if tried else 0.0)


def run_alerts(run: RecordedRun, settings: AlertSettings) -> list[Alert]:
    """The alerts a recorded run calls for, in the order a person should read them."""
    alerts: list[Alert] = []
    at = run.finished_at
    if run.status == "failed":
        alerts.append(
            Alert(
                Trigger.RUN_FAILED,
                run.job,
                f"crmsync: job {run.job} failed",
                f"Run {run.id} of job {run.job} failed: {run.error or 'no detail recorded'}. "
                "It is tried again at its next tick; `crmsync status` shows it.",
                at,
                {"run_id": run.id, "error": run.error},
            )
        )
    failed, tried, share = rejected_share(run.counts)
    over_share = settings.rejected_share is not None and tried and share > settings.rejected_share
    over_count = settings.rejected_count is not None and failed > settings.rejected_count
    if failed and (over_share or over_count):
        alerts.append(
            Alert(
                Trigger.REJECTED,
                run.job,
                f"crmsync: job {run.job}: {failed} record(s) rejected",
                f"The CRM rejected {failed} of the {tried} stage writes of run {run.id} ({share:.1%}). "
                "`crmsync dead-letters` lists them, grouped by cause.",
                at,
                {"run_id": run.id, "rejected": failed, "tried": tried, "share": round(share, 4)},
            )
        )
    if settings.dead_letters and run.new_dead_letters:
        alerts.append(
            Alert(
                Trigger.DEAD_LETTERS,
                run.job,
                f"crmsync: job {run.job}: {run.new_dead_letters} new dead letter(s)",
                f"Run {run.id} added {run.new_dead_letters} dead letter(s). "
                "`crmsync dead-letters` shows the causes; `crmsync dead-letters --retry` tries them after a fix.",
                at,
                {"run_id": run.id, "new_dead_letters": run.new_dead_letters},
            )
        )
    if settings.api_usage_share is not None:
        for connection, usage in sorted(run.usage.items()):
            used, total = usage.get("quota_used"), usage.get("quota_total")
            if not isinstance(used, int) or not isinstance(total, int) or total <= 0:
                continue
            if used / total > settings.api_usage_share:
                alerts.append(
                    Alert(
                        Trigger.API_USAGE,
                        run.job,
                        f"crmsync: {connection} has used {used / total:.0%} of its daily API calls",
                        f"Connection {connection} has used {used} of its {total} daily API calls "
                        f"(alert above {settings.api_usage_share:.0%}). Runs stop when it is used up.",
                        at,
                        {"connection": connection, "used": used, "total": total},
                        scope=connection,
                    )
                )
    return alerts


def stale_alert(
    job: str, *, interval: timedelta, last_completed: datetime | None, since: datetime, now: datetime,
    settings: AlertSettings,
) -> Alert | None:  # fmt: skip
    """An alert when ``job`` has not completed a run for ``settings.stale_intervals`` of its intervals.

    ``last_completed`` is the end of its last completed run (``None``: never);
    ``since`` is when watching started (a scheduler's start), so a job that
    never ran is not reported before it had its chances.
    """
    if settings.stale_intervals is None or interval <= timedelta(0):
        return None
    reference = last_completed or since
    limit = interval * settings.stale_intervals
    if now - reference < limit:
        return None
    hours = (now - reference).total_seconds() / 3600
    last = last_completed.isoformat(timespec="minutes") if last_completed else "never"
    return Alert(
        Trigger.STALE,
        job,
        f"crmsync: job {job} has not completed for {hours:.1f} h",
        f"Job {job} has not completed a run for {settings.stale_intervals} of its intervals "
        f"({hours:.1f} h; last completed: {last}). `crmsync runs {job}` shows what happened.",
        now,
        {
            "last_completed": last_completed.isoformat() if last_completed else None,
            "intervals": settings.stale_intervals,
        },
    )
