"""FakeCrm: an in-memory CRM behind the ``CrmClient`` protocol, for pipeline tests.

It behaves like the vendors where the pipeline can tell: every change
(including our own writes) bumps a modification sequence, pulls are paged
oldest first with an *inclusive* cursor (the last record of a run is read
again next run, like a SystemModstamp lookback), writes answer one result per
record in request order, and a record can be made to fail permanently
(REJECTED) or transiently (RETRY). Crash points raise ``SimulatedCrash``, a
``BaseException`` that no ``except Exception`` catches and that skips the
pipeline's own clean-up, like a SIGKILL at that point.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from connector.crm import (
    ActivityPage,
    ActivityRecord,
    ApiUsage,
    ContactPage,
    ContactRecord,
    SkippedRecord,
    StageUpdate,
    WriteOutcome,
    WriteResult,
)
from connector.errors import Problem
from connector.mapping import CrmMapping
from connector.model import Activity, Company, Contact


class SimulatedCrash(BaseException):
    """The process dies here: nothing after this point runs, no ``finally`` clean-up is meaningful."""


@dataclass
class FakePerson:
    crm_id: str
    object_type: str
    contact: Contact
    values: dict[str, str | None]
    seq: int
    modified_at: datetime
    broken: str | None = None
    """When set, the record cannot be normalised (reported as skipped with this reason)."""


@dataclass
class FakeActivity:
    crm_id: str
    activity: Activity
    contact_ids: tuple[str, ...]
    seq: int
    modified_at: datetime


@dataclass
class FakeCrm:
    """An in-memory CRM. Build records with ``add_contact`` / ``add_activity``; hand it to ``run_job``."""

    mapping: CrmMapping
    connection: str = "hubspot"
    page_size: int = 100
    activity_page_size: int = 100
    write_batch_size: int = 100
    inclusive_cursor: bool = True
    refuse_backwards: bool = False
    """HubSpot-like: a backwards move of the stage is answered UNCHANGED and not applied."""
    write_delay: float = 0.0
    people: dict[str, FakePerson] = field(default_factory=dict)
    activity_records: dict[str, FakeActivity] = field(default_factory=dict)
    reject: dict[str, tuple[str, str]] = field(default_factory=dict)
    """crm_id -> (code, reason): every write of it is REJECTED."""
    transient: dict[str, int] = field(default_factory=dict)
    """crm_id -> how many more writes of it answer RETRY."""
    raise_on_write: BaseException | None = None
    """Raised by the next write call (e.g. ``QuotaExhausted``), before anything is applied."""
    crash_at: dict[str, int] = field(default_factory=dict)
    """Crash point name -> the occurrence (1-based) at which to raise ``SimulatedCrash``.
    Points: ``contacts_page`` / ``activities_page`` (before a page is handed over),
    ``write_before`` (before a batch is applied), ``write_after`` (applied, not yet answered)."""
    calls: Counter[str] = field(default_factory=Counter)
    writes: list[list[StageUpdate]] = field(default_factory=list)
    sessions_open: int = 0
    max_sessions_open: int = 0
    _seq: int = 0
    _points: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _start: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))

    # -- building the CRM's content -------------------------------------------------
    def _next(self) -> tuple[int, datetime]:
        self._seq += 1
        return self._seq, self._start.replace(microsecond=0) + (self._seq * _SECOND)

    def add_contact(
        self,
        crm_id: str,
        email: str | None,
        *,
        company: Company | None = None,
        job_title: str | None = None,
        stage_value: str | None = None,
        object_type: str = "contact",
        values: dict[str, str | None] | None = None,
    ) -> None:
        seq, at = self._next()
        stage_values: dict[str, str | None] = dict.fromkeys(self.mapping.stage_fields())
        stage_values[self.mapping.stage.field] = stage_value
        stage_values.update(values or {})
        contact = Contact(email=email, job_title=job_title, company=company, first_name="Test", last_name=crm_id)
        self.people[crm_id] = FakePerson(crm_id, object_type, contact, stage_values, seq, at)

    def edit_contact(self, crm_id: str, **changes: object) -> None:
        person = self.people[crm_id]
        person.contact = person.contact.model_copy(update=changes)
        person.seq, person.modified_at = self._next()

    def set_value(self, crm_id: str, field_name: str, value: str | None) -> None:
        """A person edits a field in the CRM."""
        person = self.people[crm_id]
        person.values[field_name] = value
        person.seq, person.modified_at = self._next()

    def break_contact(self, crm_id: str, reason: str) -> None:
        person = self.people[crm_id]
        person.broken = reason
        person.seq, person.modified_at = self._next()

    def add_activity(
        self, crm_id: str, kind: str, occurred_at: datetime, contact_ids: Sequence[str], detail: str | None = None
    ) -> None:
        seq, at = self._next()
        activity = Activity(kind=kind, occurred_at=occurred_at, detail=detail, id=crm_id)
        self.activity_records[crm_id] = FakeActivity(crm_id, activity, tuple(contact_ids), seq, at)

    def stage_of(self, crm_id: str) -> str | None:
        return self.people[crm_id].values.get(self.mapping.stage.field)

    def snapshot(self) -> dict[str, dict[str, str | None]]:
        """Every record's written values: what a test compares between a clean and a crashed run."""
        return {crm_id: dict(person.values) for crm_id, person in sorted(self.people.items())}

    # -- sessions (one per connection per run) ----------------------------------------
    def client(self) -> FakeCrm:
        with self._lock:
            self.sessions_open += 1
            self.max_sessions_open = max(self.max_sessions_open, self.sessions_open)
        return self

    def close(self) -> None:
        with self._lock:
            self.sessions_open -= 1

    def _point(self, name: str) -> None:
        self._points[name] += 1
        if self.crash_at.get(name) == self._points[name]:
            raise SimulatedCrash(f"{name} #{self._points[name]}")

    # -- the CrmClient protocol -------------------------------------------------------
    def pull_contacts(self, cursor: str | None) -> Iterator[ContactPage]:
        since = int(cursor) if cursor else 0
        ordered = sorted(
            (p for p in self.people.values() if (p.seq >= since if self.inclusive_cursor else p.seq > since)),
            key=lambda p: p.seq,
        )
        for start in range(0, len(ordered), self.page_size):
            page = ordered[start : start + self.page_size]
            self.calls["contacts.read"] += 1
            self._point("contacts_page")
            records = []
            skipped = []
            for person in page:
                if person.broken:
                    skipped.append(SkippedRecord(crm_id=person.crm_id, reason=person.broken))
                    continue
                primary = person.values.get(self.mapping.stage.field)
                records.append(
                    ContactRecord(
                        crm_id=person.crm_id,
                        object_type=person.object_type,
                        contact=person.contact.model_copy(update={"stage": self.mapping.stage_for_value(primary)}),
                        stage_values={name: person.values.get(name) for name in self.mapping.stage_fields()},
                        modified_at=person.modified_at,
                    )
                )
            yield ContactPage(records=tuple(records), cursor=str(page[-1].seq), skipped=tuple(skipped))

    def pull_activities(self, cursor: str | None) -> Iterator[ActivityPage]:
        since = int(cursor) if cursor else 0
        ordered = sorted(
            (a for a in self.activity_records.values() if (a.seq >= since if self.inclusive_cursor else a.seq > since)),
            key=lambda a: a.seq,
        )
        for start in range(0, len(ordered), self.activity_page_size):
            page = ordered[start : start + self.activity_page_size]
            self.calls["activities.read"] += 1
            self._point("activities_page")
            records = tuple(
                ActivityRecord(
                    crm_id=a.crm_id, activity=a.activity, contact_ids=a.contact_ids, modified_at=a.modified_at
                )
                for a in page
            )
            yield ActivityPage(records=records, cursor=str(page[-1].seq))

    def write_stages(self, updates: Sequence[StageUpdate]) -> list[WriteResult]:
        if len(updates) > self.write_batch_size:
            raise AssertionError(f"batch of {len(updates)} over the cap {self.write_batch_size}")
        self.calls["contacts.write"] += 1
        if self.raise_on_write is not None:
            error, self.raise_on_write = self.raise_on_write, None
            raise error
        self._point("write_before")
        if self.write_delay:
            time.sleep(self.write_delay)
        self.writes.append(list(updates))
        results = [self._apply(update) for update in updates]
        self._point("write_after")
        return results

    def _apply(self, update: StageUpdate) -> WriteResult:
        crm_id = update.crm_id
        if crm_id in self.reject:
            code, reason = self.reject[crm_id]
            return WriteResult(crm_id=crm_id, outcome=WriteOutcome.REJECTED, code=code, reason=reason)
        if self.transient.get(crm_id, 0) > 0:
            self.transient[crm_id] -= 1
            return WriteResult(crm_id=crm_id, outcome=WriteOutcome.RETRY, code="UNABLE_TO_LOCK_ROW", reason="locked")
        person = self.people.get(crm_id)
        if person is None:
            return WriteResult(crm_id=crm_id, outcome=WriteOutcome.REJECTED, code="OBJECT_NOT_FOUND", reason="gone")
        primary = self.mapping.stage.field
        current = self.mapping.stage_for_value(person.values.get(primary))
        if self.refuse_backwards and current is not None and current.rank > update.stage.rank:
            return WriteResult(crm_id=crm_id, outcome=WriteOutcome.UNCHANGED)
        if all(person.values.get(name) == value for name, value in update.fields.items()):
            return WriteResult(crm_id=crm_id, outcome=WriteOutcome.UNCHANGED)
        person.values.update(update.fields)
        person.seq, person.modified_at = self._next()
        return WriteResult(crm_id=crm_id, outcome=WriteOutcome.WRITTEN)

    def check_schema(self) -> list[Problem]:
        return []

    def usage(self) -> ApiUsage:
        return ApiUsage(calls=dict(self.calls))


_SECOND = datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC) - datetime(2026, 1, 1, tzinfo=UTC)
