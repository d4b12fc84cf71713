"""Counters (page views, visits, e-mail opens and clicks kept as running totals) in the rules and the mappings.

A counter is a dated total, not a list of activities: ``at_least`` on activities
never counts it; a counter signal tests the total and the last date; the score
takes it with its own capped points, decayed from the last date, and nothing
when the CRM keeps no date.
"""

from __future__ import annotations

from typing import Any

import pytest

from connector.errors import ConfigError
from connector.lifecycle.rules import compile_rules, decide
from connector.mapping import CrmMapping, MappingFile
from connector.model import Counter, Stage
from tests.core.builders import NOW, activity, contact, days_ago


def rules(**score: Any) -> Any:
    return compile_rules(
        {
            "score": {"points": {"page_view": 1, "webinar_attended": 15}, "half_life_days": 60, "window_days": 365,
                      "counters": {"page_views": {"points": 1, "max_points": 20}}} | score,
            "rungs": {
                "lead": {"signals": [{"classes": ["interest"]}, {"counter": "visits", "at_least": 5, "within_days": 90}]},
                "mql": {"requires": "lead", "signals": [{"kinds": ["page_view"], "at_least": 3}, {"score_at_least": 30}]},
            },
        }
    )  # fmt: skip


def counter(kind: str, total: int, days: float | None) -> Counter:
    return Counter(kind=kind, total=total, last_at=days_ago(days) if days is not None else None)


@pytest.mark.parametrize(
    ("visits", "expected"),
    [
        pytest.param(counter("visits", 6, 10), Stage.LEAD, id="enough-recent"),
        pytest.param(counter("visits", 4, 10), None, id="too-few"),
        pytest.param(counter("visits", 60, 200), None, id="last-visit-too-old"),
        pytest.param(counter("visits", 60, None), None, id="undated-in-a-window"),
    ],
)
def test_a_counter_signal_tests_the_total_and_the_last_date(visits: Counter, expected: Stage | None) -> None:
    assert decide(contact(counters=(visits,)), None, rules(), now=NOW).stage == expected


def test_at_least_on_activities_never_counts_a_counter() -> None:
    person = contact(activity("webinar_attended", 1), counters=(counter("page_views", 500, 1),))
    # 500 page views in the counter: still no "3 x page_view"; the score holds the rung instead
    decision = decide(person, None, rules(), now=NOW)
    assert decision.stage is Stage.MQL and "score" in decision.reasons[0]
    three_views = contact(activity("webinar_attended", 400), *(activity("page_view", d) for d in (1, 2, 3)))
    assert "3 x page_view" in decide(three_views, None, rules(), now=NOW).reasons[0]


@pytest.mark.parametrize(
    ("page_views", "expected"),
    [
        pytest.param(counter("page_views", 500, 0), 20.0, id="capped"),
        pytest.param(counter("page_views", 5, 0), 5.0, id="per-unit"),
        pytest.param(counter("page_views", 20, 60), 10.0, id="decayed-from-the-last-date"),
        pytest.param(counter("page_views", 20, 400), 0.0, id="outside-the-window"),
        pytest.param(counter("page_views", 20, None), 0.0, id="undated-scores-nothing"),
        pytest.param(counter("email_opens", 20, 0), 0.0, id="no-points-for-this-counter"),
    ],
)
def test_the_score_takes_counters_capped_and_decayed(page_views: Counter, expected: float) -> None:
    decision = decide(contact(activity("webinar_attended", 0), counters=(page_views,)), None, rules(), now=NOW)
    assert decision.score == pytest.approx(15.0 + expected, abs=0.01)


def test_the_explanation_names_the_counter() -> None:
    decision = decide(contact(counters=(counter("visits", 7, 3),)), None, rules(), now=NOW)
    assert decision.reasons == ("lead: visits >= 5, the last within 90 days (7)",)
    assert decision.facts[0].source == "counter" and decision.facts[0].value == "7"


def test_a_signal_is_one_thing() -> None:
    with pytest.raises(ConfigError, match="one of"):
        compile_rules({"rungs": {"lead": {"signals": [{"counter": "visits", "kinds": ["page_view"]}]}}})
    with pytest.raises(ConfigError):
        compile_rules({"rungs": {"lead": {"signals": [{"counter": "heartbeats"}]}}})


def test_a_mapping_reads_counters_from_the_person_s_fields() -> None:
    mapping = CrmMapping(
        MappingFile.model_validate(
            {
                "crm": "hubspot",
                "people": {"contacts": {"fields": {"email": "email"}, "counters": {
                    "page_views": {"total": "hs_analytics_num_page_views", "last": "hs_analytics_last_visit_timestamp"},
                    "email_clicks": {"total": "hs_email_click"}}}},
                "stage": {"field": "s", "values": {s.value: s.value for s in Stage}},
            }
        )
    )  # fmt: skip
    fields = mapping.person_fields("contacts")
    assert fields == ["email", "hs_analytics_num_page_views", "hs_analytics_last_visit_timestamp", "hs_email_click"]
    person = mapping.normalise_person(
        "contacts",
        {"email": "a@b.example", "hs_analytics_num_page_views": "12", "hs_analytics_last_visit_timestamp":
         "2026-11-02T09:30:00Z", "hs_email_click": "0"},
    )  # fmt: skip
    assert person["counters"] == [{"kind": "page_views", "total": 12, "last_at": days_ago(18.1).replace(
        day=2, hour=9, minute=30, second=0, microsecond=0)}]  # fmt: skip
    with pytest.raises(ValueError, match="hs_analytics_num_page_views"):
        mapping.normalise_person("contacts", {"email": "a@b.example", "hs_analytics_num_page_views": "many"})
