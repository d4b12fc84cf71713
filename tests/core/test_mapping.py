"""Mapping files: the shipped defaults load; bad files are rejected with file and key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from connector.errors import ConfigError
from connector.mapping import Transform, apply_transform, load_mapping
from connector.model import Stage

ROOT = Path(__file__).resolve().parents[2]
GOOD = """
crm = "hubspot"
[people.contacts.fields]
email = { field = "email", transform = "email" }
"company.employees" = { field = "numemployees", transform = "int_range" }
[[activities]]
object = "meetings"
kind = "meeting_booked"
at = "hs_meeting_start_time"
when = { hs_meeting_outcome = ["SCHEDULED", "RESCHEDULED"] }
[stage]
field = "crmsync_lifecycle_stage"
[stage.values]
suspect = "s"
lead = "l"
prospect = "p"
mql = "m"
sql = "q"
meeting = "x"
"""


@pytest.mark.parametrize("name", ["hubspot.toml", "salesforce.toml"])
def test_shipped_mappings_load(name: str) -> None:
    mapping = load_mapping(ROOT / "mappings" / name)
    assert mapping.activity_objects()
    assert all(mapping.stage_for_value(mapping.value_for_stage(stage)) == stage for stage in Stage)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.toml"
    path.write_text(text)
    return path


def test_good_mapping_normalises_and_maps_kinds(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, GOOD))
    assert mapping.normalise_person("contacts", {"email": " A.Martin@Example.FR ", "numemployees": "25-50"}) == {
        "email": "a.martin@example.fr",
        "company": {"employees": 25},
    }
    rule = mapping.kind_for("meetings", {"hs_meeting_outcome": "rescheduled"})
    assert rule is not None and rule.kind == "meeting_booked"
    assert mapping.kind_for("meetings", {"hs_meeting_outcome": "CANCELED"}) is None
    assert mapping.activity_fields("meetings") == ["hs_meeting_start_time", "hs_meeting_outcome"]


@pytest.mark.parametrize(
    ("old", "new", "key", "message"),
    [
        pytest.param('kind = "meeting_booked"', 'kind = "meeting_maybe"', "activities.0.kind", "", id="unknown kind"),
        pytest.param('meeting = "x"', 'champion = "x"', "stage.values", "", id="unknown stage"),
        pytest.param('mql = "m"', 'mql = "l"', "stage", "both map to", id="duplicate stage value"),
        pytest.param('crm = "hubspot"', 'crm = "hubspot"\ncolour = 1', "colour", "unknown key", id="unknown key"),
        pytest.param(
            '"company.employees"',
            '"company.revenue"',
            "people.contacts.fields",
            "unknown common field",
            id="unknown target",
        ),
        pytest.param(
            'transform = "int_range"',
            'transform = "jinja"',
            "people.contacts.fields.company.employees",
            "",
            id="unknown transform",
        ),
        pytest.param(
            'field = "crmsync_lifecycle_stage"',
            'field = "x"\nreason_field = "x"',
            "stage",
            "written twice",
            id="duplicate target field",
        ),
    ],
)
def test_bad_mappings_are_errors(tmp_path: Path, old: str, new: str, key: str, message: str) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        load_mapping(path)
    problems = caught.value.problems
    assert any(p.file == str(path) and p.key.startswith(key) and message in p.message for p in problems), [
        str(p) for p in problems
    ]


@pytest.mark.parametrize(
    ("guard", "message"),
    [
        pytest.param('field = "hs_lead_status"\nobjects = ["Lead"]\non_ladder = ["OPEN"]', "not person objects",
                     id="guard on an object the mapping has no people of"),
        pytest.param('field = "crmsync_lifecycle_stage"\non_ladder = ["OPEN"]', "a guard is only read",
                     id="guard on a field crmsync writes"),
        pytest.param('field = "hs_lead_status"\non_ladder = []', "", id="guard with no value on the ladder"),
    ],
)  # fmt: skip
def test_bad_stage_guards_are_errors(tmp_path: Path, guard: str, message: str) -> None:
    path = write(tmp_path, GOOD + "\n[[stage.guards]]\n" + guard + "\n")
    with pytest.raises(ConfigError) as caught:
        load_mapping(path)
    assert any(message in p.message for p in caught.value.problems), [str(p) for p in caught.value.problems]


def test_a_stage_guard_is_read_never_written_and_puts_other_values_beyond_the_ladder(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + '\n[[stage.guards]]\nfield = "hs_lead_status"\non_ladder = ["NEW", "OPEN"]\n')
    mapping = load_mapping(path)
    assert mapping.stage_fields("contacts")[-1] == "hs_lead_status"
    assert "hs_lead_status" not in mapping.written_fields()
    assert mapping.beyond_ladder({"hs_lead_status": "OPEN"}) is None
    assert mapping.beyond_ladder({"hs_lead_status": None}) is None
    assert "'UNQUALIFIED', beyond the ladder" in (mapping.beyond_ladder({"hs_lead_status": "UNQUALIFIED"}) or "")


def test_duplicate_activity_rule_is_an_error(tmp_path: Path) -> None:
    rule = GOOD[GOOD.index("[[activities]]") : GOOD.index("[stage]")]
    path = write(tmp_path, GOOD.replace(rule, rule + rule))
    with pytest.raises(ConfigError, match="repeats an earlier rule"):
        load_mapping(path)


@pytest.mark.parametrize(
    ("transform", "value", "expected"),
    [
        (Transform.INT, "1,200", 1200),
        (Transform.INT, "120.0", 120),
        (Transform.INT_RANGE, "1000+", 1000),
        (Transform.LOWER, "  Retail ", "retail"),
        (Transform.TEXT, "   ", None),
        (Transform.DATETIME, "1762075800000", datetime(2025, 11, 2, 9, 30, tzinfo=UTC)),
        (Transform.DATETIME, "2026-11-02T10:30:00+01:00", datetime(2026, 11, 2, 9, 30, tzinfo=UTC)),
        (Transform.DATETIME, "2026-11-02", datetime(2026, 11, 2, tzinfo=UTC)),
    ],
)
def test_transforms(transform: Transform, value: str, expected: object) -> None:
    assert apply_transform(transform, value, "f") == expected


@pytest.mark.parametrize(
    ("transform", "value"),
    [(Transform.EMAIL, "not-an-address"), (Transform.INT, "many"), (Transform.DATETIME, "yesterday")],
)
def test_bad_values_name_the_field(transform: Transform, value: str) -> None:
    with pytest.raises(ValueError, match=r"^f:"):
        apply_transform(transform, value, "f")


# -- the one activity builder and the one compiled matcher, shared by every vendor -------------------------

ACTIVITY = {
    "matched": (
        {"hs_meeting_outcome": " Scheduled ", "hs_meeting_start_time": "2026-11-02T09:30:00Z"},
        datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
        None,
    ),
    "epoch milliseconds": (
        {"hs_meeting_outcome": "RESCHEDULED", "hs_meeting_start_time": "1762075800000"},
        datetime(2025, 11, 2, 9, 30, tzinfo=UTC),
        None,
    ),
    "unmapped": ({"hs_meeting_outcome": "CANCELED", "hs_meeting_start_time": "2026-11-02T09:30:00Z"}, None, None),
    "no outcome at all": ({"hs_meeting_start_time": "2026-11-02T09:30:00Z"}, None, None),
    "no instant": ({"hs_meeting_outcome": "SCHEDULED"}, None, "hs_meeting_start_time: no value"),
    "bad instant": ({"hs_meeting_outcome": "SCHEDULED", "hs_meeting_start_time": "soon"}, None, "hs_meeting_start_time: "),
}


@pytest.mark.parametrize(("values", "at", "error"), ACTIVITY.values(), ids=ACTIVITY.keys())
def test_activity_is_built_in_one_place(
    tmp_path: Path, values: dict[str, str], at: datetime | None, error: str | None
) -> None:
    mapping = load_mapping(write(tmp_path, GOOD))
    if error:
        with pytest.raises(ValueError, match=error):
            mapping.activity("meetings", values, "meetings/1")
        return
    activity = mapping.activity("meetings", values, "meetings/1")
    if at is None:
        assert activity is None
    else:
        assert activity is not None
        assert (activity.kind, activity.occurred_at, activity.id) == ("meeting_booked", at, "meetings/1")


def test_a_blank_detail_is_no_detail(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, GOOD.replace('at = "hs_meeting_start_time"', 'at = "t"\ndetail = "title"')))
    values = {"hs_meeting_outcome": "SCHEDULED", "t": "2026-11-02", "title": "   "}
    activity = mapping.activity("meetings", values, "m/1")
    assert activity is not None and activity.detail is None


def test_the_crms_are_the_vendor_folders() -> None:
    from connector.mapping import vendor_names

    assert vendor_names() == ("hubspot", "salesforce")


def test_a_mapping_for_an_unknown_crm_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_mapping(write(tmp_path, GOOD.replace('crm = "hubspot"', 'crm = "pipedrive"')))
    [problem] = caught.value.problems
    assert problem.key == "crm" and "pipedrive" in problem.message and "hubspot" in problem.message
