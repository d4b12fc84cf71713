"""The shared data generator: deterministic, exact totals, every rung populated."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from connector.lifecycle.rules import decide, load_rules
from connector.model import KNOWN_KINDS, Activity, Company, Contact
from connector.sandbox.generator import generate


def test_same_seed_same_data_other_seed_other_data(now: datetime) -> None:
    first = list(generate(50, 400, seed=3, now=now))
    again = list(generate(50, 400, seed=3, now=now))
    other = list(generate(50, 400, seed=4, now=now))
    assert first == again
    assert first != other


def test_exact_totals_unique_emails_known_kinds_within_span(now: datetime) -> None:
    people = 0
    emails = set()
    kinds = Counter()
    indexes = []
    for person, activities in generate(500, 4_321, now=now):
        people += 1
        emails.add(person.email)
        assert person.created_at <= person.modified_at <= now
        assert [a.occurred_at for a in activities] == sorted(a.occurred_at for a in activities)
        for activity in activities:
            assert activity.person_index == person.index
            assert now - timedelta(days=401) <= activity.occurred_at <= now
            assert activity.occurred_at >= person.created_at
            kinds[activity.kind] += 1
            indexes.append(activity.index)
    assert people == 500
    assert len(emails) == 500
    assert sum(kinds.values()) == 4_321
    assert indexes == list(range(4_321))
    assert set(kinds) <= KNOWN_KINDS
    assert set(kinds) == KNOWN_KINDS  # every canonical kind shows up


def test_fewer_activities_than_people_and_none_at_all(now: datetime) -> None:
    assert sum(len(a) for _, a in generate(100, 7, now=now)) == 7
    assert sum(len(a) for _, a in generate(30, 0, now=now)) == 0
    assert list(generate(0, 0, now=now)) == []


def test_default_rules_put_people_on_every_rung_and_some_on_none(root, now: datetime) -> None:
    rules = load_rules(root / "mappings" / "lifecycle.toml")
    stages = Counter()
    for person, activities in generate(700, 7_000, now=now):
        company = person.company
        contact = Contact(
            email=person.email,
            job_title=person.job_title,
            company=Company(
                name=company.name,
                domain=company.domain,
                employees=company.employees,
                industry=company.industry,
                country=company.country,
            ),
            activities=tuple(Activity(kind=a.kind, occurred_at=a.occurred_at) for a in activities),
        )
        stages[decide(contact, None, rules, now=now).stage] += 1
    assert None in stages
    assert len(stages) == 7, stages  # six rungs + no rung
    assert min(stages.values()) >= 30, stages
