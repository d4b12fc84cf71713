"""The state store's tables (SQLAlchemy 2 Core).

What is kept, and why:

- ``contacts`` / ``activities``: the normalised records of each connection,
  shared by every job that reads it. ``content_hash`` tells a re-read record
  from a changed one, so an inclusive cursor or a re-run after a crash never
  marks anything dirty twice. ``email`` is the normalised address, kept so a
  later issue can merge one person across CRMs.
- ``job_contacts``: per job, the queue of contacts to decide (``dirty``), the
  retry backoff, the last decision and the last rung written, and when to
  decide again because time alone may change the decision (``decide_again_at``).
- ``pending_writes``: the outbox. A planned write is committed here *before*
  the CRM is called; its ``intent_id`` keys the history row, so a write that
  landed just before a crash is recognised on the re-run and recorded once.
- ``stage_changes``: the history (from, to, when, run, rule, reasons).
- ``ladder_notes``: the history's other kind of entry, which is not a stage
  change: a contact found beyond the ladder (why nothing is written), once
  each time it gets there; ``back_at`` when it came back inside the ladder.
- ``activity_staging``: a connection's first load of activities on its way
  into ``activities`` (appended as pulled, moved in key order at the pull's end).
- ``dead_letters``, ``checkpoints``, ``runs``, ``leases``.

No secret is ever written to any of them. CRM ids are ``TEXT``: vendors'
ids vary in length (HubSpot form-submission ids are 69-90 characters). Every
text and JSON column that can hold what a CRM sent is a ``Safe*`` type:
NUL bytes (which PostgreSQL refuses in text) and lone UTF-16 surrogates
(which no UTF-8 database can store) become U+FFFD on the way in, the same on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (no time zones) and PostgreSQL alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` with what a database cannot store (NUL, lone surrogates) replaced by U+FFFD."""
    if text.isascii():
        return text.replace("\x00", REPLACEMENT) if "\x00" in text else text
    return _UNSTORABLE.sub(REPLACEMENT, text)


def storable_json(value: Any) -> Any:
    """``value`` (decoded JSON) with every string in it made :func:`storable`, keys too."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(key)): storable_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(item) for item in value]
    return value


class SafeText(TypeDecorator[str]):
    """Text a CRM may have sent: stored as :func:`storable` text on every backend."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else storable(value)


class SafeString(TypeDecorator[str]):
    """A bounded string a CRM may have sent (``SafeString(254)``): stored :func:`storable`."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else storable(value)


class SafeJSON(TypeDecorator[Any]):
    """JSON that may hold CRM text: every string :func:`storable` before it is serialised."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else storable_json(value)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

CONNECTION = 64
JOB = 64
EMAIL = 254
"""The longest valid address (RFC 5321); a longer "e-mail" from a CRM is stored as none."""
ID36 = 36

contacts = Table(
    "contacts",
    metadata,
    Column("connection", String(CONNECTION), primary_key=True),
    Column("crm_id", SafeText, primary_key=True),
    Column("object_type", String(32), nullable=False),
    Column("email", SafeString(EMAIL), nullable=True),
    Column("stage", String(16), nullable=True),
    Column("stage_values", SafeJSON, nullable=False),
    Column("contact", SafeText, nullable=False),
    Column("content_hash", String(40), nullable=False),
    Column("modified_at", UtcDateTime, nullable=True),
    Column("stored_at", UtcDateTime, nullable=False),
    Index(None, "email"),
)

activities = Table(
    "activities",
    metadata,
    Column("connection", String(CONNECTION), primary_key=True),
    Column("contact_crm_id", SafeText, primary_key=True),
    Column("crm_id", SafeText, primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("detail", SafeText, nullable=True),
    Column("content_hash", String(40), nullable=False),
    Column("modified_at", UtcDateTime, nullable=True),
    Index(None, "connection", "crm_id"),
)

activity_staging = Table(
    "activity_staging",
    metadata,
    Column("connection", String(CONNECTION), nullable=False),
    # which page group staged the row (nanoseconds): the latest group's copy of an activity is the one kept
    Column("batch", BigInteger, nullable=False),
    Column("contact_crm_id", SafeText, nullable=False),
    Column("crm_id", SafeText, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("detail", SafeText, nullable=True),
    Column("content_hash", String(40), nullable=False),
    Column("modified_at", UtcDateTime, nullable=True),
    Index(None, "connection", "batch"),
)
"""A connection's first load of activities, appended as pulled and moved into ``activities`` in key order when
the pull ends (see :mod:`connector.store.staging`): no key, no index but the append-only one."""

job_contacts = Table(
    "job_contacts",
    metadata,
    Column("job", String(JOB), primary_key=True),
    Column("connection", String(CONNECTION), primary_key=True),
    Column("crm_id", SafeText, primary_key=True),
    Column("dirty", Boolean, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("not_before", UtcDateTime, nullable=True),
    Column("decided_stage", String(16), nullable=True),
    Column("rule", String(64), nullable=True),
    Column("reasons", SafeJSON, nullable=True),
    Column("decided_at", UtcDateTime, nullable=True),
    Column("written_stage", String(16), nullable=True),
    Column("written_at", UtcDateTime, nullable=True),
    # when time alone may change the last decision (a future activity comes due): queued again then
    Column("decide_again_at", UtcDateTime, nullable=True),
    Index(None, "job", "connection", "dirty", "crm_id"),
    Index(None, "job", "connection", "decide_again_at"),
    Index(None, "connection", "crm_id"),
)

pending_writes = Table(
    "pending_writes",
    metadata,
    Column("job", String(JOB), primary_key=True),
    Column("connection", String(CONNECTION), primary_key=True),
    Column("crm_id", SafeText, primary_key=True),
    Column("intent_id", String(ID36), nullable=False, unique=True),
    Column("run_id", String(ID36), nullable=False),
    Column("from_value", SafeString(255), nullable=True),
    Column("from_stage", String(16), nullable=True),
    Column("to_stage", String(16), nullable=False),
    Column("to_value", String(255), nullable=False),
    Column("rule", String(64), nullable=True),
    Column("reasons", SafeJSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

stage_changes = Table(
    "stage_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("intent_id", String(ID36), nullable=False, unique=True),
    Column("job", String(JOB), nullable=False),
    Column("run_id", String(ID36), nullable=False),
    Column("connection", String(CONNECTION), nullable=False),
    Column("crm_id", SafeText, nullable=False),
    Column("email", SafeString(EMAIL), nullable=True),
    Column("from_stage", String(16), nullable=True),
    Column("from_value", SafeString(255), nullable=True),
    Column("to_stage", String(16), nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("rule", String(64), nullable=True),
    Column("reasons", SafeJSON, nullable=False),
    Index(None, "connection", "crm_id", "changed_at"),
    Index(None, "job", "changed_at"),
    Index(None, "email"),
)

ladder_notes = Table(
    "ladder_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(JOB), nullable=False),
    Column("run_id", String(ID36), nullable=False),
    Column("connection", String(CONNECTION), nullable=False),
    Column("crm_id", SafeText, nullable=False),
    Column("email", SafeString(EMAIL), nullable=True),
    Column("reason", SafeText, nullable=False),
    Column("noted_at", UtcDateTime, nullable=False),
    Column("back_at", UtcDateTime, nullable=True),
    Index(None, "job", "connection", "crm_id"),
    Index(None, "job", "noted_at"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(JOB), nullable=False),
    Column("connection", String(CONNECTION), nullable=False),
    Column("crm_id", SafeText, nullable=False),
    Column("email", SafeString(EMAIL), nullable=True),
    Column("stage", String(16), nullable=True),
    Column("code", SafeString(80), nullable=True),
    Column("reason", SafeText, nullable=True),
    Column("run_id", String(ID36), nullable=False),
    Column("first_seen", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("resolved_at", UtcDateTime, nullable=True),
    Column("resolution", String(40), nullable=True),
    UniqueConstraint("job", "connection", "crm_id"),
    Index(None, "job", "resolved_at"),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("job", String(JOB), primary_key=True),
    Column("connection", String(CONNECTION), primary_key=True),
    Column("stream", String(32), primary_key=True),
    # committed: everything read up to here is decided and written (moved at the end of a run)
    Column("cursor", SafeText, nullable=True),
    # read so far by an open (or interrupted) run; saved with each page so a re-run resumes there
    Column("position", SafeText, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("version", Integer, nullable=False, default=1),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(ID36), primary_key=True),
    Column("job", String(JOB), nullable=False),
    Column("owner", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("full", Boolean, nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("counts", SafeJSON, nullable=True),
    Column("usage", SafeJSON, nullable=True),
    Column("error", SafeText, nullable=True),
    Index(None, "job", "started_at"),
)

leases = Table(
    "leases",
    metadata,
    Column("job", String(JOB), primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("acquired_at", UtcDateTime, nullable=False),
    Column("heartbeat_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

alert_sends = Table(
    "alert_sends",
    metadata,
    # one row per alert key (job + trigger + target): when it was last sent, for the cool-down
    Column("key", String(200), primary_key=True),
    Column("last_sent_at", UtcDateTime, nullable=False),
    Column("suppressed", Integer, nullable=False, default=0),
)

# -- people: one person's records across the CRMs of a unifying job (docs/people.md) ----------------------
people = Table(
    "people",
    metadata,
    Column("id", String(ID36), primary_key=True),
    # the address the person was first found by (shown; matching reads person_emails)
    Column("email", SafeString(EMAIL), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)

person_links = Table(
    "person_links",
    metadata,
    # which person a record is; survives the record's e-mail changing (the link, not the address, decides)
    Column("connection", String(CONNECTION), primary_key=True),
    Column("crm_id", SafeText, primary_key=True),
    Column("person_id", String(ID36), nullable=False),
    Column("how", String(8), nullable=False),
    Column("linked_at", UtcDateTime, nullable=False),
    Index(None, "person_id"),
)

person_emails = Table(
    "person_emails",
    metadata,
    # each linked record's normalised addresses (its own and the aliases its mapping allows)
    Column("connection", String(CONNECTION), primary_key=True),
    Column("crm_id", SafeText, primary_key=True),
    Column("email", SafeString(EMAIL), primary_key=True),
    Column("is_primary", Boolean, nullable=False),
    Index(None, "email"),
)

person_unlinks = Table(
    "person_unlinks",
    metadata,
    # a record a person took out of a person by hand: the matcher never puts it back there
    Column("connection", String(CONNECTION), primary_key=True),
    Column("crm_id", SafeText, primary_key=True),
    Column("person_id", String(ID36), primary_key=True),
    Column("unlinked_at", UtcDateTime, nullable=False),
)

person_conflicts = Table(
    "person_conflicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", SafeText, nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("person_id", String(ID36), nullable=True),
    Column("records", SafeJSON, nullable=False),
    Column("action", SafeText, nullable=False),
    Column("first_seen", UtcDateTime, nullable=False),
    Index(None, "person_id"),
)
