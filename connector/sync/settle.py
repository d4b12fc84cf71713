"""What happens to each record after a write batch: done, retry later, or dead letter. Pure.

Given the writes of a batch and the CRM's answer for each, say what to
store: history rows for writes that landed, the written values to keep in
step, dead letters, backoffs, dead letters to resolve and contacts that
leave the queue.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from connector.crm import WriteOutcome, WriteResult
from connector.runs import Resolution
from connector.store.values import Change, DeadLetter, Deferral, Settled, Written
from connector.sync.decide import StageWrite

MAX_RETRY_ATTEMPTS = 8
"""A record that fails transiently this many runs in a row becomes a dead letter."""


def retry_delay(attempts: int, *, base_seconds: float = 60.0, cap_seconds: float = 6 * 3600) -> timedelta:
    """Backoff before a record that failed transiently ``attempts`` times is tried again: 1 min, 2, 4, ... 6 h."""
    return timedelta(seconds=min(cap_seconds, base_seconds * 2 ** max(0, attempts - 1)))


@dataclass
class Settlement:
    """What one batch's results come to."""

    changes: list[Change] = field(default_factory=list)
    written: list[Written] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    deferrals: list[Deferral] = field(default_factory=list)
    resolved: list[Settled] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    """Contacts that leave the queue."""
    unchanged: int = 0

    @property
    def failed(self) -> int:
        return len(self.dead_letters)

    @property
    def deferred(self) -> int:
        return len(self.deferrals)


def settle_batch(
    batch: Sequence[StageWrite],
    results: Sequence[WriteResult],
    *,
    run_id: str,
    now: datetime,
    stage_fields: Collection[str],
    max_attempts: int = MAX_RETRY_ATTEMPTS,
) -> Settlement:
    """Settle ``batch`` by ``results`` (one per write, in order); ``run_id`` is the run that sent the batch."""
    if len(results) != len(batch):
        raise ValueError(f"{len(results)} results for {len(batch)} writes")
    settled = Settlement()
    written_ids: list[str] = []
    unchanged_ids: list[str] = []
    for write, result in zip(batch, results, strict=True):
        queued, intent = write.contact, write.intent
        crm_id = queued.crm_id
        landed = result.outcome is WriteOutcome.WRITTEN or (
            # the same write repeated after a crash: the CRM already held it because we wrote it
            result.outcome is WriteOutcome.UNCHANGED and intent.run_id != run_id
        )
        attempts = queued.attempts + 1
        if landed:
            settled.changes.append(Change(crm_id, queued.email, intent))
            fields = {name: value for name, value in write.update.fields.items() if name in stage_fields}
            settled.written.append(Written(queued, write.update.stage, fields))
            written_ids.append(crm_id)
            settled.done.append(crm_id)
        elif result.outcome is WriteOutcome.UNCHANGED:
            settled.unchanged += 1
            unchanged_ids.append(crm_id)
            settled.done.append(crm_id)
        elif result.outcome is WriteOutcome.REJECTED or attempts >= max_attempts:
            # refused for good, or transient too many runs in a row: a person must look
            if result.outcome is WriteOutcome.REJECTED:
                code, reason = result.code, result.reason
            else:
                code = result.code or "retries_exhausted"
                reason = f"still failing after {attempts} runs: {result.reason or 'transient error'}"
            settled.dead_letters.append(DeadLetter(crm_id, queued.email, write.update.stage, code, reason))
            settled.done.append(crm_id)
        else:
            settled.deferrals.append(Deferral(crm_id, attempts, now + retry_delay(attempts)))
    settled.resolved = [
        Settled(Resolution.WRITTEN, tuple(written_ids)),
        Settled(Resolution.UNCHANGED, tuple(unchanged_ids)),
    ]
    return settled
