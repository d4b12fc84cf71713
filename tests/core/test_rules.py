"""The shared lifecycle rules: every rung, the ladder's six examples (docs/rules.md), policies, windows, decay, bad files."""

from __future__ import annotations

import ast
import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from connector.errors import ConfigError
from connector.lifecycle import rules as rules_module
from connector.lifecycle.rules import Rules, compile_rules, decide, load_rules
from connector.model import Contact, Stage
from tests.core.builders import NOW, activity, contact

ROOT = Path(__file__).resolve().parents[2]
RULES_FILE = ROOT / "mappings" / "lifecycle.toml"


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(RULES_FILE)


@pytest.fixture(scope="module")
def raw_rules() -> dict[str, Any]:
    with RULES_FILE.open("rb") as handle:
        return tomllib.load(handle)


def stage_of(rules: Rules, person: Contact) -> Stage | None:
    return decide(person, None, rules, now=NOW).stage


# The six examples of docs/rules.md, plus the contact on no rung.
DOMAIN_EXAMPLES = [
    pytest.param(
        contact(industry="manufacturing", employees=500), Stage.SUSPECT, id="suspect: ICP fit, no interaction"
    ),
    pytest.param(
        contact(activity("content_download", 18, "Guide: cutting transport costs"), industry="software", employees=4),
        Stage.LEAD,
        id="lead: one guide downloaded",
    ),
    pytest.param(
        contact(activity("email_reply", 3, "Re: demo proposal"), employees=45, job_title="Logistics director"),
        Stage.PROSPECT,
        id="prospect: ICP fit and answered yes to a demo proposal",
    ),
    pytest.param(
        contact(activity("content_download", 49), activity("webinar_attended", 31), activity("info_request", 10)),
        Stage.MQL,
        id="mql: guide, webinar, case-study request",
    ),
    pytest.param(
        contact(
            activity("content_download", 60),
            activity("content_download", 40),
            activity("webinar_attended", 20),
            activity("demo_request", 2),
        ),
        Stage.SQL,
        id="sql: several contents then a demo form",
    ),
    pytest.param(
        contact(activity("meeting_booked", 1, "Discovery call")), Stage.MEETING, id="meeting: accepted a meeting"
    ),
    pytest.param(contact(industry="software", employees=3), None, id="none: no fit, no signal"),
]


@pytest.mark.parametrize(("person", "expected"), DOMAIN_EXAMPLES)
def test_domain_examples_land_on_their_rung(rules: Rules, person: Contact, expected: Stage | None) -> None:
    assert stage_of(rules, person) == expected


@pytest.mark.parametrize(
    ("person", "expected"),
    [
        pytest.param(contact(activity("content_download", 5)), Stage.LEAD, id="one download alone is not an MQL"),
        pytest.param(contact(activity("email_open", 1), industry="software"), None, id="engagement alone: no lead"),
        pytest.param(
            contact(*[activity("page_view", d) for d in range(1, 30)], industry="software"),
            None,
            id="many page views, no interest signal: still no rung",
        ),
        pytest.param(contact(activity("email_open", 1)), Stage.SUSPECT, id="ICP fit plus opens: suspect"),
        pytest.param(
            contact(activity("call_connected", 2), industry="software"), Stage.LEAD, id="exchange without ICP: lead"
        ),
        pytest.param(contact(activity("demo_request", 1)), Stage.LEAD, id="demo request alone: lead, not SQL"),
        pytest.param(
            contact(activity("meeting_held", 1), industry=None, employees=None), Stage.MEETING, id="meeting held"
        ),
        pytest.param(contact(employees=9), None, id="ICP needs 10 employees"),
        pytest.param(
            contact(industry="LOGISTICS_AND_SUPPLY_CHAIN", employees=10), Stage.SUSPECT, id="HubSpot industry spelling"
        ),
        pytest.param(
            contact(industry="Transportation", employees=10), Stage.SUSPECT, id="Salesforce industry spelling"
        ),
        pytest.param(contact(industry="Wholesale/Distribution"), Stage.SUSPECT, id="wholesale/distribution, any case"),
    ],
)
def test_rungs(rules: Rules, person: Contact, expected: Stage | None) -> None:
    assert stage_of(rules, person) == expected


def test_mql_by_score_alone(raw_rules: dict[str, Any]) -> None:
    data = copy.deepcopy(raw_rules)
    data["rungs"]["mql"]["signals"] = [{"score_at_least": 30}]
    rules = compile_rules(data)
    clicks = contact(activity("newsletter_signup", 2), *[activity("email_click", 1) for _ in range(10)])
    decision = decide(clicks, None, rules, now=NOW)
    assert decision.stage == Stage.MQL
    assert any("score" in reason for reason in decision.reasons)
    assert any(fact.source == "score" and fact.name == "email_click" for fact in decision.facts)


@pytest.mark.parametrize(
    ("age_days", "expected"),
    [
        pytest.param(170, Stage.MQL, id="inside the 180-day window"),
        pytest.param(200, Stage.LEAD, id="outside the window: interest still makes a lead"),
    ],
)
def test_time_window(rules: Rules, age_days: float, expected: Stage) -> None:
    person = contact(
        activity("content_download", age_days),
        activity("content_download", age_days),
        activity("webinar_attended", age_days),
        industry="software",
    )
    assert stage_of(rules, person) == expected


def test_activities_after_now_are_ignored(rules: Rules) -> None:
    person = contact(activity("meeting_booked", -3), industry="software")
    assert stage_of(rules, person) is None


def test_score_decays_by_half_life(raw_rules: dict[str, Any]) -> None:
    rules = compile_rules(raw_rules)
    fresh = decide(contact(activity("webinar_attended", 0)), None, rules, now=NOW).score
    halved = decide(contact(activity("webinar_attended", 60)), None, rules, now=NOW).score
    assert fresh == pytest.approx(15.0)
    assert halved == pytest.approx(7.5)
    beyond = decide(contact(activity("webinar_attended", 400)), None, rules, now=NOW).score
    assert beyond == 0.0


def test_no_decay_without_half_life(raw_rules: dict[str, Any]) -> None:
    data = copy.deepcopy(raw_rules)
    del data["score"]["half_life_days"]
    rules = compile_rules(data)
    assert decide(contact(activity("webinar_attended", 300)), None, rules, now=NOW).score == pytest.approx(15.0)


class TestForwardOnly:
    def test_old_activity_ageing_out_keeps_the_rung(self, rules: Rules) -> None:
        aged = contact(activity("content_download", 300), industry="software", stage=Stage.MQL)
        decision = decide(aged, None, rules, now=NOW)
        assert decision.stage == Stage.MQL
        assert decision.rule == "forward-only"
        assert "lead" in decision.reasons[0]

    def test_higher_rung_set_by_a_person_is_kept(self, rules: Rules) -> None:
        assert stage_of(rules, contact(stage=Stage.SQL)) == Stage.SQL

    def test_a_contact_with_no_rung_now_keeps_its_rung(self, rules: Rules) -> None:
        assert stage_of(rules, contact(industry="software", stage=Stage.LEAD)) == Stage.LEAD

    def test_moving_up_is_allowed(self, rules: Rules) -> None:
        assert stage_of(rules, contact(activity("meeting_booked"), stage=Stage.LEAD)) == Stage.MEETING

    def test_regression_opt_in_moves_down(self, raw_rules: dict[str, Any]) -> None:
        data = copy.deepcopy(raw_rules)
        data["regression"] = True
        rules = compile_rules(data)
        assert stage_of(rules, contact(stage=Stage.SQL)) == Stage.SUSPECT


def test_unknown_kinds_are_counted_and_ignored(rules: Rules) -> None:
    person = contact(
        activity("linkedin_like", 1), activity("linkedin_like", 2), activity("chat_started", 1), industry="software"
    )
    decision = decide(person, None, rules, now=NOW)
    assert decision.stage is None
    assert decision.unknown_kinds == (("chat_started", 1), ("linkedin_like", 2))


def test_decision_explains_rule_and_facts(rules: Rules) -> None:
    person = contact(
        activity("content_download", 49, "Guide: cutting transport costs"),
        activity("webinar_attended", 31, "Webinar: route planning"),
        activity("info_request", 10, "Case study request"),
    )
    decision = decide(person, None, rules, now=NOW)
    assert decision.rule == "mql"
    assert [f.value for f in decision.facts if f.source == "activity"] == [
        "Guide: cutting transport costs",
        "Webinar: route planning",
        "Case study request",
    ]
    assert decision.summary() == "MQL: download 2026-10-02, webinar 2026-10-20, info request 2026-11-10"


def test_explain_false_gives_the_same_rung(rules: Rules) -> None:
    for param in DOMAIN_EXAMPLES:
        person = param.values[0]
        assert isinstance(person, Contact)
        full = decide(person, None, rules, now=NOW)
        quick = decide(person, None, rules, now=NOW, explain=False)
        assert quick.stage == full.stage


@pytest.mark.parametrize(
    ("patch", "key", "message"),
    [
        pytest.param(
            {"rungs": {"mql": {"requires": "sql", "icp": True}}},
            "rungs.mql.requires",
            "lower rung",
            id="requires higher",
        ),
        pytest.param(
            {"rungs": {"lead": {"signals": [{"kinds": ["telepathy"]}]}}},
            "rungs.lead.signals.0.kinds.0",
            "",
            id="unknown kind",
        ),
        pytest.param({"rungs": {"champion": {"icp": True}}}, "rungs.champion", "", id="unknown rung"),
        pytest.param(
            {"rungs": {"lead": {"signals": [{"classes": ["interest"], "at_leest": 2}]}}},
            "rungs.lead.signals.0.at_leest",
            "unknown key",
            id="typo",
        ),
        pytest.param(
            {"rungs": {"lead": {"signals": [{"classes": ["interest"], "at_least": 0}]}}},
            "rungs.lead.signals.0.at_least",
            "",
            id="at_least 0",
        ),
        pytest.param(
            {"rungs": {"lead": {"signals": [{"at_least": 2}]}}},
            "rungs.lead.signals.0",
            "needs kinds",
            id="empty signal",
        ),
        pytest.param({"rungs": {"lead": {}}}, "rungs.lead", "no condition", id="rung without condition"),
        pytest.param(
            {"icp": {"conditions": [{"field": "company.revenue", "gte": 1}]}},
            "icp.conditions.0",
            "unknown field",
            id="unknown field",
        ),
        pytest.param(
            {"icp": {"conditions": [{"field": "company.employees"}]}},
            "icp.conditions.0",
            "needs a test",
            id="condition without test",
        ),
        pytest.param(
            {"rungs": {"mql": {"requires": "lead", "signals": [{"score_at_least": 5}]}}, "score": None},
            "rungs.mql.signals.0.score_at_least",
            "[score]",
            id="score without section",
        ),
    ],
)
def test_rule_files_with_errors_name_file_rung_and_key(
    tmp_path: Path, patch: dict[str, Any], key: str, message: str
) -> None:
    data: dict[str, Any] = {
        "icp": {"conditions": [{"field": "company.employees", "gte": 10}]},
        "score": {"points": {"email_click": 1}},
        "rungs": {"suspect": {"icp": True}, "lead": {"signals": [{"classes": ["interest"]}]}},
    }
    for section, value in patch.items():
        if value is None:
            data.pop(section)
        elif isinstance(value, dict) and section == "rungs":
            data["rungs"] = {**data["rungs"], **value}
        else:
            data[section] = value
    path = tmp_path / "rules.toml"
    path.write_text(_to_toml(data))
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    problems = caught.value.problems
    assert problems, "a bad file must list its problems"
    assert all(p.file == str(path) for p in problems)
    assert any(p.key == key and message in p.message for p in problems), [str(p) for p in problems]


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        'regresion = true\n[rungs.lead]\n[[rungs.lead.signals]]\nkinds = ["x"]\n[rungs.mql]\nrequires = "zz"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    keys = {p.key for p in caught.value.problems}
    assert {"regresion", "rungs.mql.requires"} <= keys
    assert any(k.startswith("rungs.lead.signals.0.kinds") for k in keys)


def test_rules_engine_is_pure() -> None:
    """No IO, clock or SDK import in the rules engine: it takes data and returns a decision."""
    source = Path(rules_module.__file__).read_text()
    tree = ast.parse(source)
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    forbidden = {"os", "time", "requests", "urllib3", "hubspot", "simple_salesforce", "sqlalchemy", "socket", "random"}
    assert not {name.split(".")[0] for name in imported} & forbidden
    calls = {
        node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert not calls & {"now", "utcnow", "today", "time"}, "the clock must be passed in"
    decide_fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "decide")
    assert any(arg.arg == "now" for arg in decide_fn.args.kwonlyargs)


def _to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """A tiny TOML writer for test fixtures (tables and arrays of tables)."""
    lines: list[str] = []
    tables: list[tuple[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict) or (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_value(value)}")
    out = "\n".join(lines) + "\n"
    for key, value in tables:
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out += f"[{name}]\n" + _to_toml(value, f"{name}.")
        else:
            for item in value:
                out += f"[[{name}]]\n" + _to_toml(item, f"{name}.")
    return out


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return str(value)


def test_a_future_activity_sets_the_moment_to_decide_again(rules: Rules) -> None:
    person = contact(activity("meeting_held", -3), activity("meeting_held", -1), industry="software")

    decision = decide(person, None, rules, now=NOW)

    assert decision.stage is None
    assert decision.decide_again_at == activity("meeting_held", -1).occurred_at
    later = decide(person, None, rules, now=decision.decide_again_at)
    assert later.stage == Stage.MEETING
    assert later.decide_again_at == activity("meeting_held", -3).occurred_at


def test_nothing_dated_ahead_means_no_moment_to_decide_again(rules: Rules) -> None:
    person = contact(activity("content_download", 400), activity("demo_request", 2))

    assert decide(person, None, rules, now=NOW).decide_again_at is None
    assert decide(person, None, rules, now=NOW, explain=False).decide_again_at is None


def test_with_regression_a_closing_window_is_a_moment_to_decide_again(raw_rules: dict[str, Any]) -> None:
    data = copy.deepcopy(raw_rules)
    data["regression"] = True
    rules = compile_rules(data)
    person = contact(activity("email_reply", 300))

    decision = decide(person, None, rules, now=NOW)

    assert decision.stage == Stage.PROSPECT
    assert decision.decide_again_at is not None
    after = decide(person, None, rules, now=decision.decide_again_at)
    assert after.stage == Stage.LEAD  # the 365-day exchange window closed; the reply still makes a lead
