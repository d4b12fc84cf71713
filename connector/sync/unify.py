"""One decision per person across her records in several CRMs. Pure.

Given the records of one person (each as queued for the job, with its own
activities and the stage its CRM shows), build what the rules see:

- **activities**: the union of her records' activities. One activity linked to
  two of her records in one CRM counts once (same CRM id). An activity copied
  from one CRM into another (HubSpot's Salesforce integration logs HubSpot
  e-mails, calls and meetings as Salesforce Tasks and Events) counts once:
  two activities of *different* connections are one event when they have the
  same kind, happened within :data:`COPY_WINDOW` of each other and have the
  same normalised detail (subject, title: case-folded, spaces collapsed, a
  leading ``Email:``/``Call:``/``Meeting:``/``Task:`` dropped; no detail on
  both sides is the same detail). The earlier one is kept (at the same
  instant, the one of the connection listed first in the job); the copy is
  named in ``explain``;
- **facts**: the company of the record whose company is the most complete
  (most known fields: name, domain, employees, industry, country); a tie goes
  to the most recently modified record, then the job's connection order.
  Every other field (name, job title, e-mail) is the first known value in
  that same order. Counters (HubSpot page views...) per kind from the record
  with the highest total (the CRMs may count the same visits);
- **the decision**: the rules decide once on that evidence; each record then
  keeps its own rung when it is higher (forward only per record, unless the
  rules allow regression) and gets its own values through its own mapping
  (the planner: outside-ladder values and protected rungs win per record).

A record whose CRM shows a rung above the evidence that crmsync did not write
(set by hand) keeps it, and that rung is **not** copied to her other records:
crmsync writes only what its facts explain. It is a ``hand_set_higher``
conflict, reported once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from connector.lifecycle.rules import Rules, decide
from connector.model import Activity, Company, Contact, Counter, Stage, StageDecision
from connector.store.values import PersonConflict, QueuedContact, RecordKey
from connector.sync.people import HAND_SET_HIGHER

COPY_WINDOW = timedelta(seconds=60)
"""Two activities of different CRMs this close (same kind, same detail) are one event copied between them."""

_PREFIX = re.compile(r"^(?:e-?mail|call|meeting|task|event)\s*:\s*")
_SPACES = re.compile(r"\s+")
_COMPANY_FIELDS = ("name", "domain", "employees", "industry", "country")
_PERSON_FIELDS = ("email", "first_name", "last_name", "job_title")


def normalised_detail(detail: str | None) -> str:
    """The detail two copies of one activity share: case-folded, spaces collapsed, a kind prefix dropped."""
    if not detail:
        return ""
    text = _SPACES.sub(" ", detail.casefold()).strip()
    return _PREFIX.sub("", text)


class PersonRecord(Protocol):
    """What merging reads of one of her records (a queued contact; the funnel's stored contact)."""

    @property
    def connection(self) -> str: ...
    @property
    def crm_id(self) -> str: ...
    @property
    def contact(self) -> Contact: ...
    @property
    def activities(self) -> tuple[Activity, ...]: ...
    @property
    def modified_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class SourcedActivity:
    """An activity and the record it was read with."""

    record: RecordKey
    activity: Activity


@dataclass(frozen=True, slots=True)
class CopiedActivity:
    """An activity left out as a copy of ``kept`` (another CRM's record of the same event)."""

    copy: SourcedActivity
    kept: SourcedActivity


@dataclass(frozen=True, slots=True)
class PersonEvidence:
    """What the rules see for one person, and where each part came from."""

    person_id: str
    contact: Contact
    """The merged facts, without a stage (each record's own rung is applied per record)."""
    activities: tuple[Activity, ...]
    sources: tuple[SourcedActivity, ...]
    """The kept activities with their records (same order as ``activities``)."""
    copies: tuple[CopiedActivity, ...]
    company_from: RecordKey | None
    fields_from: tuple[tuple[str, RecordKey], ...]
    """Each person field (``email``, ``job_title``...) and the record it was taken from."""


def merge_activities(
    records: Sequence[PersonRecord], order: Sequence[str]
) -> tuple[list[SourcedActivity], list[CopiedActivity]]:
    """Her records' activities once each (see the module's rule); kept ones in time order."""
    rank = {name: n for n, name in enumerate(order)}
    seen: set[tuple[str, str]] = set()
    all_acts: list[SourcedActivity] = []
    for queued in sorted(records, key=lambda q: (rank.get(q.connection, len(rank)), q.connection, q.crm_id)):
        key = RecordKey(queued.connection, queued.crm_id)
        for activity in queued.activities:
            ident = (queued.connection, activity.id or f"{key}|{activity.kind}|{activity.occurred_at.isoformat()}")
            if ident in seen:
                continue
            seen.add(ident)
            all_acts.append(SourcedActivity(key, activity))
    # the connection first in the job's order comes first: its activity is the one kept
    all_acts.sort(key=lambda s: (s.activity.occurred_at, rank.get(s.record.connection, len(rank))))
    kept: list[SourcedActivity] = []
    copies: list[CopiedActivity] = []
    open_by_kind: dict[tuple[str, str], list[SourcedActivity]] = {}
    for item in all_acts:
        group = (item.activity.kind, normalised_detail(item.activity.detail))
        earlier = open_by_kind.setdefault(group, [])
        # drop what is too old to be this one's original
        earlier[:] = [e for e in earlier if item.activity.occurred_at - e.activity.occurred_at <= COPY_WINDOW]
        original = next((e for e in earlier if e.record.connection != item.record.connection), None)
        if original is not None:
            copies.append(CopiedActivity(copy=item, kept=original))
            continue
        kept.append(item)
        earlier.append(item)
    return kept, copies


def _known_fields(company: Company | None) -> int:
    if company is None:
        return 0
    return sum(1 for name in _COMPANY_FIELDS if getattr(company, name) is not None)


def person_evidence(person_id: str, records: Sequence[PersonRecord], order: Sequence[str]) -> PersonEvidence:
    """Merge one person's records (see the module's rules)."""
    if len(records) == 1:
        # most people are in one CRM only: her record is her evidence (its activities have distinct ids)
        (only,) = records
        key = RecordKey(only.connection, only.crm_id)
        fields = tuple((name, key) for name in _PERSON_FIELDS if getattr(only.contact, name))
        return PersonEvidence(
            person_id=person_id,
            contact=only.contact if only.contact.stage is None else only.contact.model_copy(update={"stage": None}),
            activities=tuple(only.activities),
            sources=tuple(SourcedActivity(key, activity) for activity in only.activities),
            copies=(),
            company_from=key if only.contact.company is not None else None,
            fields_from=fields,
        )
    rank = {name: n for n, name in enumerate(order)}
    by_recency = sorted(
        records,
        key=lambda q: (
            -(q.modified_at.timestamp() if q.modified_at else 0.0),
            rank.get(q.connection, len(rank)),
            q.connection,
            q.crm_id,
        ),
    )
    best = max(by_recency, key=lambda q: _known_fields(q.contact.company), default=None)
    # max() keeps the first of equals: the most recent record among the most complete
    company_from = (
        RecordKey(best.connection, best.crm_id) if best is not None and best.contact.company is not None else None
    )
    values: dict[str, str] = {}
    fields_from: list[tuple[str, RecordKey]] = []
    for name in _PERSON_FIELDS:
        for queued in by_recency:
            value = getattr(queued.contact, name)
            if value:
                values[name] = value
                fields_from.append((name, RecordKey(queued.connection, queued.crm_id)))
                break
    counters: dict[str, Counter] = {}
    for queued in by_recency:
        for counter in queued.contact.counters:
            found = counters.get(counter.kind)
            if found is None or counter.total > found.total:
                counters[counter.kind] = counter
    kept, copies = merge_activities(records, order)
    contact = Contact.model_construct(
        email=values.get("email"),
        first_name=values.get("first_name"),
        last_name=values.get("last_name"),
        job_title=values.get("job_title"),
        company=best.contact.company if best is not None else None,
        stage=None,
        activities=(),
        counters=tuple(counters.values()),
        other_emails=(),
    )
    return PersonEvidence(
        person_id=person_id,
        contact=contact,
        activities=tuple(item.activity for item in kept),
        sources=tuple(kept),
        copies=tuple(copies),
        company_from=company_from,
        fields_from=tuple(fields_from),
    )


Decider = Callable[[QueuedContact, Contact], StageDecision]


def person_decider(evidence: PersonEvidence, rules: Rules, now: datetime) -> Decider:
    """Decide each of her records on her evidence, with the record's own rung (forward only per record)."""
    memo: dict[Stage | None, StageDecision] = {}

    def decide_record(_queued: QueuedContact, contact: Contact) -> StageDecision:
        stage = contact.stage
        found = memo.get(stage)
        if found is None:
            found = memo[stage] = decide(
                evidence.contact.model_copy(update={"stage": stage}), evidence.activities, rules, now=now
            )
        return found

    return decide_record


def hand_set_conflicts(
    evidence: PersonEvidence, records: Sequence[QueuedContact], rules: Rules, now: datetime
) -> list[PersonConflict]:
    """Records whose CRM shows a rung above what her evidence gives, that crmsync did not write."""
    if rules.regression:
        return []
    # most records show no rung, or the one crmsync wrote: no need to decide for them
    by_hand = [q for q in records if q.contact.stage is not None and q.contact.stage != q.written_stage]
    if not by_hand:
        return []
    decided = decide(evidence.contact, evidence.activities, rules, now=now, explain=False).stage
    conflicts = []
    for queued in by_hand:
        shown = queued.contact.stage
        assert shown is not None
        if decided is not None and shown.rank <= decided.rank:
            continue
        record = RecordKey(queued.connection, queued.crm_id)
        others = sorted(str(RecordKey(q.connection, q.crm_id)) for q in records if q is not queued)
        conflicts.append(
            PersonConflict(
                key=f"{HAND_SET_HIGHER}|{evidence.person_id}|{record}|{shown.value}",
                kind=HAND_SET_HIGHER,
                person_id=evidence.person_id,
                records=(str(record), *others),
                action=(
                    f"{record} shows {shown.value}, above what her facts give "
                    f"({decided.value if decided else 'no rung'}): kept there, not copied to her other records"
                ),
            )
        )
    return conflicts
