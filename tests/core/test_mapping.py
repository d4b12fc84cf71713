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
