"""The pure settle step: a write batch's results -> history, written values, dead letters, backoffs, queue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from connector.crm import StageUpdate, WriteOutcome, WriteResult
from connector.model import Stage
from connector.runs import Resolution
from connector.sync.decide import StageWrite
from connector.sync.settle import MAX_RETRY_ATTEMPTS, retry_delay, settle_batch
from tests.sync.builders import NOW, STAGE_FIELD, intent, queued

THIS_RUN = "this-run"
STAGE_FIELDS = {STAGE_FIELD, "lifecyclestage"}


def write(*, attempts: int = 0, run_id: str = THIS_RUN) -> StageWrite:
    update = StageUpdate(
        crm_id="101",
        object_type="contact",
        stage=Stage.MQL,
        fields={STAGE_FIELD: "mql", "lifecyclestage": "marketingqualifiedlead", "crmsync_stage_reason": "MQL: ..."},
    )
    return StageWrite(queued(attempts=attempts), update, intent(Stage.MQL, run_id=run_id))


@dataclass(frozen=True)
class Expect:
    history: bool = False
    """A history row (and the written values kept in step)."""
    resolution: Resolution | None = None
    """How an open dead letter of the record is closed."""
    dead_letter: tuple[str | None, str | None] | None = None
    """(code, reason) of the dead letter opened."""
    deferred: tuple[int, timedelta] | None = None
    """(attempts, delay) of the backoff."""
    unchanged: int = 0

    @property
    def done(self) -> bool:
        return self.deferred is None


def result(outcome: WriteOutcome, code: str | None = None, reason: str | None = None) -> WriteResult:
    return WriteResult(crm_id="101", outcome=outcome, code=code, reason=reason)


WRITTEN = result(WriteOutcome.WRITTEN)
UNCHANGED = result(WriteOutcome.UNCHANGED)
REJECTED = result(WriteOutcome.REJECTED, "INVALID_OPTION", "not a valid option")
RETRY = result(WriteOutcome.RETRY, "UNABLE_TO_LOCK_ROW", "locked")
RETRY_BARE = result(WriteOutcome.RETRY)
LAST = MAX_RETRY_ATTEMPTS - 1

CASES = [
    pytest.param(write(), WRITTEN, Expect(history=True, resolution=Resolution.WRITTEN), id="written-is-history"),
    pytest.param(
        write(),
        UNCHANGED,
        Expect(resolution=Resolution.UNCHANGED, unchanged=1),
        id="unchanged-by-this-run-is-no-change",
    ),
    pytest.param(
        write(run_id="crashed-run"),
        UNCHANGED,
        Expect(history=True, resolution=Resolution.WRITTEN),
        id="unchanged-for-an-earlier-runs-intent-means-that-write-landed",
    ),
    pytest.param(
        write(), REJECTED, Expect(dead_letter=("INVALID_OPTION", "not a valid option")), id="rejected-is-a-dead-letter"
    ),
    pytest.param(write(), RETRY, Expect(deferred=(1, timedelta(minutes=1))), id="first-transient-failure-waits-1-min"),
    pytest.param(
        write(attempts=2), RETRY, Expect(deferred=(3, timedelta(minutes=4))), id="third-transient-failure-waits-4-min"
    ),
    pytest.param(
        write(attempts=LAST),
        RETRY,
        Expect(dead_letter=("UNABLE_TO_LOCK_ROW", f"still failing after {MAX_RETRY_ATTEMPTS} runs: locked")),
        id="transient-too-many-runs-in-a-row-is-a-dead-letter",
    ),
    pytest.param(
        write(attempts=LAST),
        RETRY_BARE,
        Expect(dead_letter=("retries_exhausted", f"still failing after {MAX_RETRY_ATTEMPTS} runs: transient error")),
        id="transient-without-a-code-is-retries-exhausted",
    ),
]


@pytest.mark.parametrize(("sent", "answer", "expect"), CASES)
def test_settle_batch(sent: StageWrite, answer: WriteResult, expect: Expect) -> None:
    settled = settle_batch([sent], [answer], run_id=THIS_RUN, now=NOW, stage_fields=STAGE_FIELDS)

    assert [c.intent for c in settled.changes] == ([sent.intent] if expect.history else [])
    if expect.history:
        [written] = settled.written
        assert written.stage == Stage.MQL
        # the reason field is not a stage field: the stored copy keeps only what the echo will show
        assert written.fields == {STAGE_FIELD: "mql", "lifecyclestage": "marketingqualifiedlead"}
    else:
        assert settled.written == []
    resolved = {group.resolution: group.crm_ids for group in settled.resolved if group.crm_ids}
    assert resolved == ({expect.resolution: ("101",)} if expect.resolution else {})
    assert [(d.code, d.reason, d.stage) for d in settled.dead_letters] == (
        [(*expect.dead_letter, Stage.MQL)] if expect.dead_letter else []
    )
    assert [(d.attempts, d.not_before - NOW) for d in settled.deferrals] == (
        [expect.deferred] if expect.deferred else []
    )
    assert settled.done == (["101"] if expect.done else [])
    assert settled.unchanged == expect.unchanged


def test_a_result_count_that_does_not_match_the_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="2 results for 1 writes"):
        settle_batch([write()], [WRITTEN, WRITTEN], run_id=THIS_RUN, now=NOW, stage_fields=STAGE_FIELDS)


@pytest.mark.parametrize(
    ("attempts", "delay"),
    [(1, timedelta(minutes=1)), (2, timedelta(minutes=2)), (5, timedelta(minutes=16)), (12, timedelta(hours=6))],
    ids=["first", "second", "fifth", "capped-at-6h"],
)
def test_retry_delay_doubles_up_to_six_hours(attempts: int, delay: timedelta) -> None:
    assert retry_delay(attempts) == delay
