"""The mapping against a portal's properties (``validate --remote``) and the properties ``crmsync setup`` creates.

Pure functions: the client fetches the portal's property list and forms,
these say what is wrong or what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.errors import Problem
from connector.hubspot.payloads import PropertyDefinition
from connector.mapping import CrmMapping, Transform
from connector.model import LADDER

COMPATIBLE_TYPES: dict[Transform, frozenset[str]] = {
    Transform.TEXT: frozenset({"string", "enumeration", "number", "phone_number", "bool"}),
    Transform.LOWER: frozenset({"string", "enumeration"}),
    Transform.UPPER: frozenset({"string", "enumeration"}),
    Transform.EMAIL: frozenset({"string"}),
    Transform.INT: frozenset({"number", "string", "enumeration"}),
    Transform.INT_RANGE: frozenset({"enumeration", "number", "string"}),
    Transform.DATETIME: frozenset({"datetime", "date", "number", "string"}),
}
STAGE_GROUP = "contactinformation"


def schema_problems(
    mapping: CrmMapping,
    properties: Mapping[str, PropertyDefinition],
    forms: set[str] | None,
    company_properties: Mapping[str, PropertyDefinition] | None = None,
) -> list[Problem]:
    """Every way the mapping disagrees with the portal: missing properties, wrong types, missing options.

    ``company_properties`` (the portal's company properties) are checked against the mapping's
    ``people.contacts.company`` fields when it has them."""
    file = mapping.source
    problems: list[Problem] = []
    company = mapping.companies.get("contacts")
    if company is not None and company_properties is not None:
        for target, spec in company[1].items():
            key = f"people.contacts.company.fields.{target}"
            found = company_properties.get(spec.field)
            if found is None:
                problems.append(Problem(file, key, f"HubSpot has no company property {spec.field!r}"))
            elif found.type not in COMPATIBLE_TYPES[spec.transform]:
                problems.append(
                    Problem(
                        file,
                        key,
                        f"company property {spec.field!r} is {found.type}, which {spec.transform.value} cannot read",
                    )
                )
    for target, spec in mapping.people.get("contacts", {}).items():
        key = f"people.contacts.fields.{target}"
        found = properties.get(spec.field)
        if found is None:
            problems.append(Problem(file, key, f"HubSpot has no contact property {spec.field!r}"))
        elif found.type not in COMPATIBLE_TYPES[spec.transform]:
            problems.append(
                Problem(file, key, f"property {spec.field!r} is {found.type}, which {spec.transform.value} cannot read")
            )
    stage = mapping.stage
    primary = properties.get(stage.field)
    if primary is None:
        problems.append(
            Problem(file, "stage.field", f"HubSpot has no contact property {stage.field!r} (run `crmsync setup`)")
        )
    else:
        problems.extend(_options(file, "stage.values", primary, {s.value: v for s, v in stage.values.items()}))
    for index, also in enumerate(stage.also):
        found = properties.get(also.field)
        key = f"stage.also.{index}"
        if found is None:
            problems.append(Problem(file, f"{key}.field", f"HubSpot has no contact property {also.field!r}"))
        else:
            problems.extend(_options(file, f"{key}.values", found, {s.value: v for s, v in also.values.items()}))
    for index, guard in enumerate(stage.guards):
        found = properties.get(guard.field)
        key = f"stage.guards.{index}"
        if found is None:
            problems.append(Problem(file, f"{key}.field", f"HubSpot has no contact property {guard.field!r}"))
        elif found.type == "enumeration":
            problems.extend(
                _options(file, f"{key}.on_ladder", found, {str(n): v for n, v in enumerate(guard.on_ladder)})
            )
    for key, name, kinds in (
        ("stage.reached_at_field", stage.reached_at_field, {"date", "datetime", "string"}),
        ("stage.reason_field", stage.reason_field, {"string"}),
    ):
        if not name:
            continue
        found = properties.get(name)
        if found is None:
            problems.append(Problem(file, key, f"HubSpot has no contact property {name!r} (run `crmsync setup`)"))
        elif found.type not in kinds:
            problems.append(Problem(file, key, f"property {name!r} is {found.type}, expected one of {sorted(kinds)}"))
    if forms is not None:
        for index, rule in enumerate(mapping.spec.activities):
            if rule.object != "form_submissions":
                continue
            wanted = rule.when.get("form_id", [])
            for guid in [wanted] if isinstance(wanted, str) else wanted:
                if guid not in forms:
                    problems.append(Problem(file, f"activities.{index}.when.form_id", f"HubSpot has no form {guid!r}"))
    return problems


def _options(file: str, key: str, found: PropertyDefinition, wanted: dict[str, str]) -> list[Problem]:
    if found.type != "enumeration":
        return [Problem(file, key, f"property {found.name!r} is {found.type}, not an enumeration")]
    options = {option.value for option in found.options}
    return [
        Problem(file, f"{key}.{rung}", f"{value!r} is not an option of HubSpot property {found.name!r}")
        for rung, value in wanted.items()
        if value not in options
    ]


def setup_definitions(mapping: CrmMapping) -> list[dict[str, Any]]:
    """The properties crmsync writes and creates when missing: the stage (one option per rung) and companions."""
    stage = mapping.stage
    definitions: list[dict[str, Any]] = [
        {
            "name": stage.field,
            "label": "Lifecycle stage (crmsync)",
            "type": "enumeration",
            "fieldType": "select",
            "groupName": STAGE_GROUP,
            "description": "The rung of the qualification ladder crmsync computed for this contact.",
            "options": [
                {
                    "label": rung.value.upper() if rung.value in ("mql", "sql") else rung.value.capitalize(),
                    "value": stage.values[rung],
                    "displayOrder": order,
                    "hidden": False,
                }
                for order, rung in enumerate(LADDER)
            ],
        }
    ]
    if stage.reached_at_field:
        definitions.append(
            {
                "name": stage.reached_at_field,
                "label": "Stage reached on (crmsync)",
                "type": "date",
                "fieldType": "date",
                "groupName": STAGE_GROUP,
                "description": "The day the contact reached its current crmsync stage.",
            }
        )
    if stage.reason_field:
        definitions.append(
            {
                "name": stage.reason_field,
                "label": "Stage reason (crmsync)",
                "type": "string",
                "fieldType": "text",
                "groupName": STAGE_GROUP,
                "description": "Why crmsync put the contact on its stage, e.g. 'MQL: download 2026-10-02, webinar 2026-10-20'.",
            }
        )
    return definitions
