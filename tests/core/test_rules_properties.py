"""Properties of the rules engine that must hold for any contact (hypothesis)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.lifecycle.rules import Rules, decide, load_rules
from connector.model import Activity, ActivityKind, Company, Contact, Stage
from tests.core.builders import NOW

ROOT = Path(__file__).resolve().parents[2]
RULES: Rules = load_rules(ROOT / "mappings" / "lifecycle.toml")

kinds = st.sampled_from([k.value for k in ActivityKind] + ["linkedin_like", "chat_started"])
activities = st.builds(
    lambda kind, days: Activity(kind=kind, occurred_at=NOW - timedelta(days=days)),
    kinds,
    st.floats(min_value=-30, max_value=800, allow_nan=False),
)
companies = st.builds(
    Company,
    industry=st.sampled_from(["logistics", "Retail", "software", "MACHINERY", None]),
    employees=st.one_of(st.none(), st.integers(min_value=0, max_value=5000)),
)
contacts = st.builds(
    lambda company, acts, stage: Contact(email="p@example.com", company=company, activities=tuple(acts), stage=stage),
    companies,
    st.lists(activities, max_size=15),
    st.one_of(st.none(), st.sampled_from(list(Stage))),
)


def rank(stage: Stage | None) -> int:
    return -1 if stage is None else stage.rank


@settings(max_examples=300, deadline=None)
@given(contacts)
def test_forward_only_never_moves_down(person: Contact) -> None:
    assert rank(decide(person, None, RULES, now=NOW).stage) >= rank(person.stage)


@settings(max_examples=300, deadline=None)
@given(contacts, activities)
def test_one_more_activity_never_lowers_the_rung(person: Contact, extra: Activity) -> None:
    before = decide(person, None, RULES, now=NOW).stage
    after = decide(person.model_copy(update={"activities": (*person.activities, extra)}), None, RULES, now=NOW).stage
    assert rank(after) >= rank(before)


@settings(max_examples=200, deadline=None)
@given(contacts)
def test_decision_is_deterministic_and_order_free(person: Contact) -> None:
    shuffled = person.model_copy(update={"activities": tuple(reversed(person.activities))})
    first = decide(person, None, RULES, now=NOW)
    assert decide(person, None, RULES, now=NOW) == first
    assert decide(shuffled, None, RULES, now=NOW).stage == first.stage


@settings(max_examples=200, deadline=None)
@given(contacts)
def test_every_rung_is_explained_by_its_facts(person: Contact) -> None:
    decision = decide(person, None, RULES, now=NOW)
    if decision.stage is not None:
        assert decision.rule is not None and decision.reasons
    for fact in decision.facts:
        if fact.at is not None:
            assert fact.at <= NOW, "a fact from the future was used"
