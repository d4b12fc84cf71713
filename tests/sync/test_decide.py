"""The pure decide step: queued contacts + rules + what the CRM shows -> decisions, outbox intents, writes."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest

from connector.lifecycle.rules import Rules, load_rules
from connector.mapping import CrmMapping, load_mapping
from connector.model import Activity, Stage
from connector.planner import BEYOND_LADDER
from connector.runs import WriteMode
from connector.store import QueuedContact
from connector.sync.decide import decide_chunk, new_intent_id
from tests.sync.builders import NOW, OFF_ICP, STAGE_FIELD, downloads, intent, queued

REPO = Path(__file__).resolve().parents[2]
WRITE, RECORD_ONLY, DRY_RUN = WriteMode.WRITE, WriteMode.RECORD_ONLY, WriteMode.DRY_RUN


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(REPO / "mappings" / "lifecycle.toml")


@pytest.fixture(scope="module")
def mapping() -> CrmMapping:
    return load_mapping(REPO / "mappings" / "hubspot.toml")


@dataclass(frozen=True)
class Expect:
    stage: Stage | None
    """The rung decided."""
    write: Stage | None = None
    """The write to make (None: no write)."""
    intent: str | None = None
    """``new``: a new outbox intent; ``kept``: the pending intent is reused; None: no intent."""
    done: bool = True
    """The contact leaves the queue with its decision."""
    changed: int = 0
    not_needed: bool = False
    stale: bool = False
    landed: bool = False
    planned: bool = False


LEAD = downloads(1)  # ICP + one download: lead (mappings/lifecycle.toml)
MQL = downloads(3)

CASES = [
    pytest.param(
        queued(activities=LEAD),
        WRITE,
        Expect(Stage.LEAD, write=Stage.LEAD, intent="new", done=False, changed=1),
        id="new-rung-write-mode-plans-a-write-and-an-intent-and-stays-queued",
    ),
    pytest.param(
        queued(activities=LEAD),
        RECORD_ONLY,
        Expect(Stage.LEAD, changed=1, not_needed=True),
        id="new-rung-record-only-keeps-the-decision-and-writes-nothing",
    ),
    pytest.param(
        queued(activities=LEAD),
        DRY_RUN,
        Expect(Stage.LEAD, changed=1, done=False, planned=True),
        id="new-rung-dry-run-plans-for-printing-and-leaves-the-queue-alone",
    ),
    pytest.param(
        queued(activities=LEAD, shows="lead", stage=Stage.LEAD),
        WRITE,
        Expect(Stage.LEAD, not_needed=True),
        id="crm-already-shows-the-rung-nothing-to-write",
    ),
    pytest.param(
        queued(activities=MQL, shows="partner"),
        WRITE,
        Expect(None, not_needed=True),
        id="value-outside-the-ladder-wins",
    ),
    pytest.param(
        queued(company=OFF_ICP),
        WRITE,
        Expect(None, not_needed=True),
        id="no-rung-fits-nothing-to-write",
    ),
    pytest.param(
        queued(activities=LEAD, pending=intent(Stage.LEAD)),
        WRITE,
        Expect(Stage.LEAD, write=Stage.LEAD, intent="kept", done=False, changed=1),
        id="same-write-pending-keeps-its-intent-so-history-records-it-once",
    ),
    pytest.param(
        queued(activities=LEAD, pending=intent(Stage.MQL)),
        WRITE,
        Expect(Stage.LEAD, write=Stage.LEAD, intent="new", done=False, changed=1),
        id="different-write-pending-gets-a-new-intent",
    ),
    pytest.param(
        queued(activities=LEAD, shows="lead", stage=Stage.LEAD, pending=intent(Stage.LEAD)),
        WRITE,
        Expect(Stage.LEAD, landed=True, not_needed=True),
        id="pending-write-the-crm-shows-landed-and-is-recorded-now",
    ),
    pytest.param(
        queued(activities=LEAD, shows="partner", pending=intent(Stage.MQL)),
        WRITE,
        Expect(None, stale=True, not_needed=True),
        id="pending-write-no-longer-wanted-is-dropped-from-the-outbox",
    ),
]


@pytest.mark.parametrize(("contact", "mode", "expect"), CASES)
def test_decide_chunk(
    contact: QueuedContact, mode: WriteMode, expect: Expect, rules: Rules, mapping: CrmMapping
) -> None:
    plan = decide_chunk(
        [contact], rules=rules, mapping=mapping, write_mode=mode, run_id="this-run", now=NOW, new_id=lambda: "new-id"
    )

    [decision] = plan.decisions
    assert decision.stage == expect.stage
    assert decision.done is expect.done
    assert decision.at == NOW
    assert plan.changed == expect.changed
    assert [w.update.stage for w in plan.writes] == ([expect.write] if expect.write else [])
    if expect.intent == "new":
        assert [(i.crm_id, i.write.intent_id, i.write.run_id) for i in plan.intents] == [("101", "new-id", "this-run")]
        assert plan.writes[0].intent.intent_id == "new-id"
    elif expect.intent == "kept":
        assert plan.intents == []
        assert contact.pending is not None
        assert plan.writes[0].intent == contact.pending
    else:
        assert plan.intents == []
    assert plan.not_needed == (["101"] if expect.not_needed else [])
    assert plan.stale == (["101"] if expect.stale else [])
    assert [q.crm_id for q in plan.landed] == (["101"] if expect.landed else [])
    assert [(p.crm_id, p.before, p.after) for p in plan.planned] == (
        [("101", None, expect.stage.value)] if expect.planned and expect.stage else []
    )


def test_a_new_intent_carries_the_decision_and_the_crm_value_it_replaces(rules: Rules, mapping: CrmMapping) -> None:
    plan = decide_chunk(
        [queued(activities=MQL, shows="lead", stage=Stage.LEAD)],
        rules=rules,
        mapping=mapping,
        write_mode=WRITE,
        run_id="this-run",
        now=NOW,
        new_id=lambda: "new-id",
    )

    [new] = plan.intents
    assert (new.write.from_value, new.write.from_stage, new.write.to_stage, new.write.to_value) == (
        "lead",
        Stage.LEAD,
        Stage.MQL,
        "mql",
    )
    assert new.write.rule == plan.decisions[0].rule and new.write.reasons == plan.decisions[0].reasons
    assert new.write.created_at == NOW


def test_the_last_rung_written_counts_when_the_crm_shows_none(rules: Rules, mapping: CrmMapping) -> None:
    """Forward only against what crmsync wrote last, when the CRM's field is empty (HubSpot clears, say)."""
    from dataclasses import replace

    contact = replace(queued(activities=LEAD), written_stage=Stage.MQL)

    plan = decide_chunk([contact], rules=rules, mapping=mapping, write_mode=WRITE, run_id="r", now=NOW)

    assert plan.decisions[0].stage == Stage.MQL


def test_a_contact_beyond_the_ladder_is_decided_apart_with_why(rules: Rules, mapping: CrmMapping) -> None:
    customer = replace(queued(activities=MQL), stage_values={STAGE_FIELD: None, "lifecyclestage": "customer"})

    plan = decide_chunk([customer], rules=rules, mapping=mapping, write_mode=WRITE, run_id="r", now=NOW)

    [decision] = plan.decisions
    assert plan.writes == [] and plan.changed == 0
    assert (decision.stage, decision.rule) == (None, BEYOND_LADDER)
    assert decision.reasons == (
        "CRM lifecyclestage is 'customer', outside the ladder: the CRM's stage wins, nothing written",
    )


def test_a_meeting_ahead_gives_the_decision_its_moment_to_decide_again(rules: Rules, mapping: CrmMapping) -> None:
    ahead = Activity(kind="meeting_held", occurred_at=NOW + timedelta(days=5), id="m1")

    plan = decide_chunk(
        [queued(activities=(*LEAD, ahead))], rules=rules, mapping=mapping, write_mode=WRITE, run_id="r", now=NOW
    )

    [decision] = plan.decisions
    assert decision.stage == Stage.LEAD
    assert decision.decide_again_at == ahead.occurred_at


def test_intent_ids_are_unique_version_7_uuids_that_sort_by_the_time_they_were_made() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_intent_id() for _ in range(10_000)]
    time.sleep(0.002)
    later = new_intent_id()
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for made in (ids[0], ids[-1], later):
        parsed = uuid.UUID(made)
        assert (str(parsed), parsed.version, parsed.variant) == (made, 7, uuid.RFC_4122)
        assert before <= parsed.int >> 80 <= after
    assert max(ids) < later  # a later millisecond sorts after every id made before it
