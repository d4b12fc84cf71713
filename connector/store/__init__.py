"""The state store: what the sync jobs remember between runs (SQLite or PostgreSQL)."""

from connector.store.first_load import FirstLoad
from connector.store.leases import Lease, LeaseHeld, LeaseLost, acquire, new_owner
from connector.store.state import Store, open_store
from connector.store.values import (
    ACTIVITIES,
    CONTACTS,
    STREAMS,
    Change,
    Checkpoint,
    DeadLetter,
    Decision,
    Deferral,
    Intent,
    PageCounts,
    PendingWrite,
    QueuedContact,
    Settled,
    Written,
)

__all__ = [
    "ACTIVITIES",
    "CONTACTS",
    "STREAMS",
    "Change",
    "Checkpoint",
    "DeadLetter",
    "Decision",
    "Deferral",
    "FirstLoad",
    "Intent",
    "Lease",
    "LeaseHeld",
    "LeaseLost",
    "PageCounts",
    "PendingWrite",
    "QueuedContact",
    "Settled",
    "Store",
    "Written",
    "acquire",
    "new_owner",
    "open_store",
]
