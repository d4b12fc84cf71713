"""The pure write planner: decision vs CRM value vs policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.crm import ContactRecord
from connector.mapping import CrmMapping, load_mapping
from connector.model import Contact, Fact, FactSource, Stage, StageDecision
from connector.planner import plan_write
from tests.core.builders import NOW, activity

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hubspot() -> CrmMapping:
    return load_mapping(ROOT / "mappings" / "hubspot.toml")


def record(mapping: CrmMapping, stage_value: str | None, lifecycle: str | None = None) -> ContactRecord:
    return ContactRecord(
        crm_id="101",
        object_type="contact",
        contact=Contact(email="a@example.fr", stage=mapping.stage_for_value(stage_value)),
        stage_values={"crmsync_lifecycle_stage": stage_value, "lifecyclestage": lifecycle},
    )


def decision(stage: Stage | None) -> StageDecision:
    acts = (activity("content_download", 3),)
    facts = tuple(Fact(source=FactSource.ACTIVITY, name=a.kind, value=a.kind, at=a.occurred_at) for a in acts)
    return StageDecision(stage=stage, rule=stage.value if stage else None, facts=facts)


def test_new_stage_writes_every_field(hubspot: CrmMapping) -> None:
    plan = plan_write(record(hubspot, None), decision(Stage.MQL), hubspot, regression=False, now=NOW)
    assert plan.update is not None
    assert plan.update.fields == {
        "crmsync_lifecycle_stage": "mql",
        "lifecyclestage": "marketingqualifiedlead",
        "crmsync_stage_reached_at": "2026-11-17",
        "crmsync_stage_reason": "MQL: download 2026-11-17",
    }


@pytest.mark.parametrize(
    ("current", "target", "skip"),
    [
        pytest.param("mql", Stage.MQL, "unchanged", id="same value: nothing written"),
        pytest.param("sql", Stage.LEAD, "forward only", id="lower rung: forward only"),
        pytest.param("champion", Stage.LEAD, "outside the ladder", id="outside-ladder value wins"),
        pytest.param(None, None, "no rung", id="no rung: nothing written"),
    ],
)
def test_skips(hubspot: CrmMapping, current: str | None, target: Stage | None, skip: str) -> None:
    plan = plan_write(record(hubspot, current), decision(target), hubspot, regression=False, now=NOW)
    assert plan.update is None
    assert plan.skip is not None and skip in plan.skip


def test_regression_when_allowed(hubspot: CrmMapping) -> None:
    plan = plan_write(
        record(hubspot, "sql", "salesqualifiedlead"), decision(Stage.LEAD), hubspot, regression=True, now=NOW
    )
    assert plan.update is not None and plan.update.allow_regression
    assert plan.update.fields["lifecyclestage"] == "lead"


def test_protected_rung_is_never_changed(tmp_path: Path) -> None:
    text = (ROOT / "mappings" / "hubspot.toml").read_text().replace("protected = []", 'protected = ["meeting"]')
    path = tmp_path / "hubspot.toml"
    path.write_text(text)
    mapping = load_mapping(path)
    plan = plan_write(record(mapping, "meeting"), decision(Stage.MEETING), mapping, regression=True, now=NOW)
    assert plan.update is None and plan.skip == "meeting is protected"


@pytest.mark.parametrize(
    ("lifecycle", "expected"),
    [
        pytest.param("salesqualifiedlead", None, id="secondary field higher: forward only"),
        pytest.param("marketingqualifiedlead", None, id="secondary already right"),
        pytest.param("subscriber", "marketingqualifiedlead", id="secondary moves up"),
    ],
)
def test_secondary_field_follows_the_policies(hubspot: CrmMapping, lifecycle: str, expected: str | None) -> None:
    plan = plan_write(record(hubspot, "lead", lifecycle), decision(Stage.MQL), hubspot, regression=False, now=NOW)
    assert plan.update is not None
    assert plan.update.fields.get("lifecyclestage") == expected


@pytest.mark.parametrize(
    ("primary", "lifecycle", "field"),
    [
        pytest.param(None, "customer", "lifecyclestage", id="HubSpot customer"),
        pytest.param("lead", "opportunity", "lifecyclestage", id="HubSpot opportunity, our field on lead"),
        pytest.param(None, "evangelist", "lifecyclestage", id="HubSpot evangelist"),
        pytest.param(None, "other", "lifecyclestage", id="HubSpot other"),
        pytest.param("partner", None, "crmsync_lifecycle_stage", id="a custom value in our own field"),
    ],
)
def test_a_stage_beyond_the_ladder_in_any_stage_field_wins_and_nothing_is_written(
    hubspot: CrmMapping, primary: str | None, lifecycle: str, field: str
) -> None:
    plan = plan_write(record(hubspot, primary, lifecycle), decision(Stage.SQL), hubspot, regression=True, now=NOW)

    assert plan.update is None
    assert plan.beyond_ladder
    assert plan.skip is not None and field in plan.skip and "outside the ladder" in plan.skip


def test_empty_stage_fields_are_not_beyond_the_ladder(hubspot: CrmMapping) -> None:
    plan = plan_write(record(hubspot, "", ""), decision(Stage.LEAD), hubspot, regression=False, now=NOW)

    assert plan.update is not None and not plan.beyond_ladder


@pytest.fixture(scope="module")
def salesforce() -> CrmMapping:
    return load_mapping(ROOT / "mappings" / "salesforce.toml")


def person(mapping: CrmMapping, sobject: str, status: str | None, stage_value: str | None = None) -> ContactRecord:
    """A Salesforce person as the client reads it: a Lead carries its ``Status`` (a guard), a Contact has none."""
    values = dict.fromkeys(mapping.stage_fields(sobject))
    values["Lifecycle_Stage__c"] = stage_value
    if "Status" in values:
        values["Status"] = status
    return ContactRecord(
        crm_id="00Q5g00000AbCdEFG1" if sobject == "Lead" else "0035g00000AbCdEFG1",
        object_type=sobject,
        contact=Contact(email="lea@example.fr", stage=mapping.stage_for_value(stage_value)),
        stage_values=values,
    )


@pytest.mark.parametrize(
    "status",
    [
        pytest.param("Recycled - Nurture", id="a custom Lead Status"),
        pytest.param("Closed - Converted", id="Closed - Converted"),
        pytest.param("Converted", id="a Converted status of the org's own"),
        pytest.param("Closed - Not Converted", id="disqualified"),
        pytest.param("Nurture ‮gnirts‬ <b>", id="hostile text"),
    ],
)
def test_a_salesforce_lead_whose_status_is_off_the_ladder_gets_nothing_written_to_any_field(
    salesforce: CrmMapping, status: str
) -> None:
    for stage_value in (None, "Lead"):
        plan = plan_write(
            person(salesforce, "Lead", status, stage_value), decision(Stage.SQL), salesforce, regression=True, now=NOW
        )

        assert plan.update is None and plan.beyond_ladder
        assert plan.skip == f"CRM Status is {status!r}, beyond the ladder: the CRM's stage wins, nothing written"


@pytest.mark.parametrize("status", ["Open - Not Contacted", "Working - Contacted", None, ""])
def test_a_salesforce_lead_on_an_open_status_is_written_and_the_status_never_is(
    salesforce: CrmMapping, status: str | None
) -> None:
    plan = plan_write(person(salesforce, "Lead", status), decision(Stage.MQL), salesforce, regression=False, now=NOW)

    assert plan.update is not None and not plan.beyond_ladder
    assert "Status" not in plan.update.fields and plan.update.fields["Lifecycle_Stage__c"] == "MQL"


def test_the_lead_status_guard_is_read_for_leads_only(salesforce: CrmMapping) -> None:
    assert "Status" in salesforce.stage_fields("Lead")
    assert "Status" not in salesforce.stage_fields("Contact")
    assert "Status" not in salesforce.written_fields()
    plan = plan_write(person(salesforce, "Contact", None), decision(Stage.MQL), salesforce, regression=False, now=NOW)
    assert plan.update is not None
