"""The typed values the store's repositories take and hand out (no row dicts cross into the sync)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from connector.crm import ContactRecord
from connector.model import Activity, Contact, Stage
from connector.runs import Resolution

CONTACTS: Final = "contacts"
ACTIVITIES: Final = "activities"
STREAMS = (CONTACTS, ACTIVITIES)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    cursor: str | None
    """Committed: everything before it is decided and written."""
    position: str | None
    """Read so far by a run that has not finished; a re-run resumes here."""

    @property
    def resume_from(self) -> str | None:
        return self.position if self.position is not None else self.cursor


@dataclass(frozen=True, slots=True)
class PageCounts:
    records: int
    new: int
    changed: int
    dirtied: int
    """Contacts this page queued (a contact on several pages counts on each)."""


@dataclass(frozen=True, slots=True)
class PendingWrite:
    """A write committed to the outbox before the CRM was called."""

    intent_id: str
    run_id: str
    from_value: str | None
    from_stage: Stage | None
    to_stage: Stage
    to_value: str
    rule: str | None
    reasons: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class QueuedContact:
    """A dirty contact with everything needed to decide and plan it."""

    connection: str
    crm_id: str
    object_type: str
    email: str | None
    contact: Contact
    """Without activities; ``stage`` is the rung the CRM shows."""
    contact_json: str
    stage_values: dict[str, str | None]
    modified_at: datetime | None
    activities: tuple[Activity, ...]
    attempts: int
    written_stage: Stage | None
    pending: PendingWrite | None

    def record(self) -> ContactRecord:
        return ContactRecord(
            crm_id=self.crm_id,
            object_type=self.object_type,
            contact=self.contact,
            stage_values=self.stage_values,
            modified_at=self.modified_at,
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """The rules' last decision for one queued contact of a job."""

    crm_id: str
    stage: Stage | None
    rule: str | None
    reasons: tuple[str, ...]
    at: datetime
    done: bool
    """Leave the queue now; ``False`` keeps the contact queued (its write's result is not committed yet,
    or a dry run must leave the queue as it found it)."""
    decide_again_at: datetime | None = None
    """When time alone may change the decision: the contact is queued again then (see ``Queue.wake``)."""


@dataclass(frozen=True, slots=True)
class Intent:
    """A planned write for one record, as committed to the outbox."""

    crm_id: str
    write: PendingWrite


@dataclass(frozen=True, slots=True)
class Written:
    """The CRM now holds ``stage`` (and the stage fields in ``fields``) for ``contact``."""

    contact: QueuedContact
    stage: Stage
    fields: dict[str, str]
    """Stage fields written (merged into the stored copy so the echo of our own write is not a change)."""


@dataclass(frozen=True, slots=True)
class Change:
    """A stage change that landed, for the history (keyed by its outbox intent: recorded once)."""

    crm_id: str
    email: str | None
    intent: PendingWrite


@dataclass(frozen=True, slots=True)
class Deferral:
    """A record whose write failed transiently: queued again, not before ``not_before``."""

    crm_id: str
    attempts: int
    not_before: datetime


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record the CRM refused for good (or failed transiently too many runs in a row)."""

    crm_id: str
    email: str | None
    stage: Stage | None
    code: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class Settled:
    """Records whose open dead letter (if any) is closed with ``resolution``."""

    resolution: Resolution
    crm_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, order=True)
class RecordKey:
    """One CRM record: its connection and its id (``connection:crm_id`` on the command line)."""

    connection: str
    crm_id: str

    def __str__(self) -> str:
        return f"{self.connection}:{self.crm_id}"


@dataclass(frozen=True, slots=True)
class PersonLink:
    """Which person a record is, and how it came to be: ``email`` (the matcher) or ``manual`` (a person)."""

    record: RecordKey
    person_id: str
    how: str
    linked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EmailOwner:
    """A linked record that holds an address: as its own (``primary``) or as an alias."""

    record: RecordKey
    person_id: str
    primary: bool


@dataclass(frozen=True, slots=True)
class RecordEmails:
    """A record's normalised addresses: its own (if any) and the aliases its mapping allows."""

    record: RecordKey
    primary: str | None
    others: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PersonConflict:
    """A conflict found while matching or deciding people; ``key`` makes it reported once."""

    key: str
    kind: str
    person_id: str | None
    records: tuple[str, ...]
    action: str
    first_seen: datetime | None = None


@dataclass(frozen=True, slots=True)
class LadderNote:
    """A contact decided beyond the ladder: why nothing is written (recorded once each time it gets there)."""

    crm_id: str
    email: str | None
    reason: str
    run_id: str
    at: datetime
