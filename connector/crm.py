"""The common client protocol every CRM client implements.

The sync pipeline only talks to CRMs through :class:`CrmClient`. A client
pulls pages of records changed since a cursor and writes stage updates,
returning one result per record. Cursors are opaque strings owned by the
client (each vendor has its own notion of "changed since"); the pipeline
stores the cursor of a page only after everything derived from that page
is committed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from enum import StrEnum
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connector.errors import Problem
from connector.model import Activity, Contact, Stage, UtcDatetime

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ContactRecord(BaseModel):
    """A contact as read from one CRM: the common model plus where it lives."""

    model_config = _FROZEN

    crm_id: str
    object_type: str
    """``contact`` for HubSpot; ``Lead`` or ``Contact`` for Salesforce."""
    contact: Contact
    stage_values: dict[str, str | None] = Field(default_factory=dict)
    """Current raw CRM value of every stage field of the mapping (primary and secondary),
    keyed by CRM field name; values may be outside the ladder. ``contact.stage`` is the
    ladder rung of the primary field's value, or ``None``."""
    modified_at: UtcDatetime | None = None


class ActivityRecord(BaseModel):
    """An activity as read from one CRM, with the CRM ids of the contacts it belongs to."""

    model_config = _FROZEN

    crm_id: str
    activity: Activity
    contact_ids: tuple[str, ...]
    modified_at: UtcDatetime | None = None


class SkipReason(StrEnum):
    """Why a CRM record was not synced (reported as ``record_skipped`` with its id)."""

    INVALID_VALUE = "invalid_value"
    """A mapped value cannot be read (bad e-mail, date, number)."""
    UNREADABLE = "unreadable"
    """The record itself cannot be parsed or stored (not valid Unicode, a value of the wrong type)."""
    NO_CONTACT = "no_contact"
    """An activity about no contact the CRM links it to (or no contact with the submitted e-mail)."""
    CONVERTED_LEAD = "converted_lead"
    """A Salesforce Lead converted to a Contact: followed to the Contact, never written."""


class SkippedRecord(BaseModel):
    """A CRM record that could not be normalised (bad e-mail, bad date...): reported, not synced."""

    model_config = _FROZEN

    crm_id: str
    reason: str
    """Short text naming the field and what is wrong; never the value of a secret."""
    code: SkipReason = SkipReason.INVALID_VALUE

    @classmethod
    def from_error(cls, crm_id: str, error: Exception) -> SkippedRecord:
        """The record ``crm_id`` skipped because normalising it raised ``error`` (a ``ValueError``).

        The reason names the field and what is wrong, in one short line: for
        a pydantic error its location and message, never the input value.
        """
        code = SkipReason.INVALID_VALUE
        if isinstance(error, ValidationError):
            first = error.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            reason = f"{where}: {first['msg']}" if where else str(first["msg"])
            if first["type"] == "string_unicode":
                code = SkipReason.UNREADABLE
        else:
            reason = str(error)
        return cls(crm_id=crm_id, reason=reason[:300], code=code)


class RemovedRecord(BaseModel):
    """A contact the CRM deleted (``merged_into`` is ``None``) or merged into another (the survivor's id)."""

    model_config = _FROZEN

    crm_id: str
    merged_into: str | None = None


class ContactPage(BaseModel):
    model_config = _FROZEN

    records: tuple[ContactRecord, ...]
    cursor: str | None
    """Resume point after this page; store it only after the page is committed."""
    skipped: tuple[SkippedRecord, ...] = ()
    removed: tuple[RemovedRecord, ...] = ()
    """Contacts deleted or merged away in the CRM: they leave the store and every job's queue."""


class ActivityPage(BaseModel):
    model_config = _FROZEN

    records: tuple[ActivityRecord, ...]
    cursor: str | None
    skipped: tuple[SkippedRecord, ...] = ()
    unmapped: int = 0
    """CRM records that map to no activity kind (counted, never guessed)."""


class StageUpdate(BaseModel):
    """One planned write: set the stage field (and companions) of one record."""

    model_config = _FROZEN

    crm_id: str
    object_type: str
    stage: Stage
    fields: dict[str, str]
    """CRM field name to value: the stage field, any secondary stage fields and companion fields."""
    previous_value: str | None = None
    allow_regression: bool = False
    """When true the client may clear-then-set fields the CRM refuses to move backwards."""


class WriteOutcome(StrEnum):
    WRITTEN = "written"
    UNCHANGED = "unchanged"
    """The CRM already held the value, or kept its own (e.g. a backwards move it refused)."""
    REJECTED = "rejected"
    """The CRM refused the record for good; a person must look (dead letter)."""
    RETRY = "retry"
    """A transient failure for this record; try again on a later run."""


class WriteCode(StrEnum):
    """The codes crmsync itself gives a write result (a vendor's own codes pass through as text)."""

    TRANSIENT = "TRANSIENT"
    """The call failed transiently after its retries: the record is tried again on a later run."""
    MISSING = "MISSING"
    """The vendor's answer had no result for this record."""
    BACKWARDS_REFUSED = "BACKWARDS_REFUSED"
    """HubSpot kept a higher ``lifecyclestage`` (a backwards move without regression)."""
    CLEARED_THEN_SET = "CLEARED_THEN_SET"
    """Moved backwards by clearing the field first (regression allowed)."""
    UNKNOWN = "UNKNOWN"
    """The vendor refused the record without saying why."""


class WriteResult(BaseModel):
    model_config = _FROZEN

    crm_id: str
    outcome: WriteOutcome
    code: str | None = None
    """A :class:`WriteCode`, or the vendor's code (HubSpot category, Salesforce ``statusCode``)."""
    reason: str | None = None


class ApiUsage(BaseModel):
    """API calls made by one client, per endpoint, plus what the vendor says is left."""

    model_config = ConfigDict(extra="forbid")

    calls: dict[str, int] = Field(default_factory=dict)
    retries: int = 0
    rate_limited: int = 0
    quota_used: int | None = None
    quota_total: int | None = None

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


@runtime_checkable
class CrmClient(Protocol):
    """What the sync pipeline needs from a CRM."""

    connection: str
    write_batch_size: int

    def pull_contacts(self, cursor: str | None) -> Iterator[ContactPage]:
        """Contacts changed since ``cursor`` (all of them when ``None``), page by page, oldest first."""
        ...

    def pull_activities(self, cursor: str | None) -> Iterator[ActivityPage]:
        """Activities changed since ``cursor`` (all when ``None``), page by page, oldest first."""
        ...

    def write_stages(self, updates: Sequence[StageUpdate]) -> list[WriteResult]:
        """Write up to ``write_batch_size`` updates in as few calls as the vendor allows.

        Returns one result per update, in the same order. Raises
        ``QuotaExhausted`` or ``AuthError`` when the whole run must stop.
        """
        ...

    def check_schema(self) -> list[Problem]:
        """Problems of the mapping against the live CRM schema (``validate --remote``)."""
        ...

    def usage(self) -> ApiUsage:
        """API calls made so far by this client."""
        ...

    def close(self) -> None: ...


class ContactDirectory(Protocol):
    """Contact ids of a connection by e-mail, from what the sync has stored (no API call)."""

    def __call__(self, emails: Sequence[str]) -> Mapping[str, str]:
        """The stored contact id of each of ``emails`` (lower-cased) that the store knows."""
        ...


@runtime_checkable
class UsesDirectory(Protocol):
    """A client that resolves e-mails to contacts (HubSpot form submissions, e-mail events): the sync hands it
    the store's :class:`ContactDirectory`, so the client keeps only a bounded cache of its own."""

    def use_directory(self, directory: ContactDirectory) -> None: ...
