"""A contact explained, as ``crmsync explain`` does: the CRM's values, each job's last decision,
what the rules decide now (reasons and facts), the stored activities and the history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from connector.config import Config
from connector.connections import connection_mapping
from connector.errors import ConfigError
from connector.jobs import load_jobs
from connector.lifecycle.rules import decide
from connector.model import StageDecision
from connector.store import Store, queries
from connector.store.queries import ChangeView, ContactView, JobState, LadderNoteView
from connector.sync import job_rules


@dataclass(frozen=True, slots=True)
class JobVerdict:
    job: str
    state: JobState | None
    """The job's last decision as stored (``None``: the job has not decided this contact yet)."""
    live: StageDecision | None
    """What the job's rules decide now (``None`` when they cannot be loaded, see ``problem``)."""
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class RecordExplanation:
    record: ContactView
    verdicts: tuple[JobVerdict, ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    key: str
    records: tuple[RecordExplanation, ...]
    history: tuple[ChangeView, ...]
    """Oldest first."""
    as_of: datetime
    beyond: tuple[LadderNoteView, ...] = ()
    """The times the contact was found beyond the ladder (why nothing was written), oldest first."""


def explain_contact(store: Store, key: str, *, config: Config | None, now: datetime) -> Explanation:
    """Everything known about ``key`` (an e-mail or ``connection:id``); raises ``ValueError`` for a bad key."""
    found = queries.find_contacts(store, key)
    history = queries.changes(store, contact=key, limit=1000)
    beyond = queries.ladder_notes_of(store, contact=key, limit=1000)
    jobs = load_jobs(config.jobs_dir)[0] if config is not None else {}
    records = []
    for view in found:
        names = [state.job for state in view.jobs] or [
            name for name, job in jobs.items() if view.connection in job.connections
        ]
        verdicts = []
        for name in names:
            state = next((s for s in view.jobs if s.job == name), None)
            job = jobs.get(name)
            if config is None or job is None:
                reason = "no config given to the dashboard" if config is None else "no job file defines this job"
                verdicts.append(JobVerdict(name, state, None, f"rules not evaluated: {reason}"))
                continue
            try:
                rules = job_rules(job, config)
                mapping = connection_mapping(config, view.connection) if view.connection in config.connections else None
            except ConfigError as error:
                verdicts.append(JobVerdict(name, state, None, f"rules not evaluated: {error}"))
                continue
            current = mapping.stage_for_value(view.stage_values.get(mapping.stage.field)) if mapping else None
            live = decide(view.contact.model_copy(update={"stage": current}), view.activities, rules, now=now)
            verdicts.append(JobVerdict(name, state, live))
        records.append(RecordExplanation(view, tuple(verdicts)))
    return Explanation(
        key=key, records=tuple(records), history=tuple(reversed(history)), as_of=now, beyond=tuple(reversed(beyond))
    )
