"""Builders for the pure sync steps: queued contacts and outbox intents."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from connector.model import Activity, Company, Contact, Stage
from connector.store import PendingWrite, QueuedContact
from connector.store.records import contact_json

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ICP = Company(name="Transports Martin", domain="example.fr", employees=120, industry="logistics", country="FR")
OFF_ICP = Company(name="Boulangerie", domain="example.com", employees=3, industry="food", country="FR")
STAGE_FIELD = "crmsync_lifecycle_stage"


def downloads(count: int) -> tuple[Activity, ...]:
    return tuple(
        Activity(kind="content_download", occurred_at=NOW - timedelta(days=n + 1), detail="Guide", id=f"a{n}")
        for n in range(count)
    )


def queued(
    crm_id: str = "101",
    *,
    activities: tuple[Activity, ...] = (),
    company: Company = ICP,
    shows: str | None = None,
    stage: Stage | None = None,
    attempts: int = 0,
    pending: PendingWrite | None = None,
) -> QueuedContact:
    """A queued HubSpot contact whose stage field shows ``shows`` (``stage``: its ladder rung)."""
    contact = Contact(email=f"{crm_id}@example.fr", company=company, first_name="Test", last_name=crm_id)
    return QueuedContact(
        connection="hubspot",
        crm_id=crm_id,
        object_type="contact",
        email=contact.email,
        contact=contact.model_copy(update={"stage": stage}),
        contact_json=contact_json(contact),
        stage_values={STAGE_FIELD: shows, "lifecyclestage": None},
        modified_at=NOW - timedelta(days=1),
        activities=activities,
        attempts=attempts,
        written_stage=None,
        pending=pending,
    )


def intent(to: Stage, *, run_id: str = "earlier-run", intent_id: str = "intent-1") -> PendingWrite:
    return PendingWrite(
        intent_id=intent_id,
        run_id=run_id,
        from_value=None,
        from_stage=None,
        to_stage=to,
        to_value=to.value,
        rule=to.value,
        reasons=("because",),
        created_at=NOW - timedelta(hours=1),
    )


def with_pending(contact: QueuedContact, pending: PendingWrite) -> QueuedContact:
    return replace(contact, pending=pending)
