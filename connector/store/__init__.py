"""The state store: what the sync jobs remember between runs (SQLite or PostgreSQL)."""

from connector.store.leases import Lease, LeaseHeld, LeaseLost, acquire, new_owner
from connector.store.state import (
    ACTIVITIES,
    CONTACTS,
    Checkpoint,
    PageCounts,
    PendingWrite,
    QueuedContact,
    Store,
    open_store,
    retry_delay,
)

__all__ = [
    "ACTIVITIES",
    "CONTACTS",
    "Checkpoint",
    "Lease",
    "LeaseHeld",
    "LeaseLost",
    "PageCounts",
    "PendingWrite",
    "QueuedContact",
    "Store",
    "acquire",
    "new_owner",
    "open_store",
    "retry_delay",
]
