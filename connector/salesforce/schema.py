"""``crmsync validate --remote`` for Salesforce: the mapping against ``describe``.

Every mapped field must exist (parent paths such as ``Account.Name``
through their relationship), the stage field must be a writable picklist on
Lead and Contact whose active values include every stage value, and the
companion fields must be writable; a guard (read only, e.g. Lead ``Status``)
must exist and list only values its picklist holds. docs/salesforce.md tells an admin how to
create the fields when they are missing.
"""

from __future__ import annotations

from collections.abc import Callable

from connector.errors import Problem
from connector.mapping import CrmMapping
from connector.salesforce.normalise import PERSON_OBJECTS, WHO_FIELDS
from connector.salesforce.payloads import SObjectDescribe

Describe = Callable[[str], SObjectDescribe | None]
"""Describe one sObject; ``None`` when the org has no such object."""

_HOWTO = "see docs/salesforce.md, 'Creating the stage field in Salesforce'"


def schema_problems(mapping: CrmMapping, describe: Describe) -> list[Problem]:
    problems: list[Problem] = []
    source = mapping.source
    cache: dict[str, SObjectDescribe | None] = {}

    def described(name: str) -> SObjectDescribe | None:
        if name not in cache:
            cache[name] = describe(name)
        return cache[name]

    def check_path(sobject: str, path: str, key: str) -> None:
        obj = described(sobject)
        if obj is None:
            problems.append(Problem(source, key, f"the org has no {sobject} object (or this user cannot see it)"))
            return
        head, _, tail = path.partition(".")
        if not tail:
            if obj.field(head) is None:
                problems.append(Problem(source, key, f"{sobject} has no field {head}"))
            return
        ref = obj.relationship(head)
        if ref is None or not ref.reference_to:
            problems.append(Problem(source, key, f"{sobject} has no relationship {head}"))
            return
        if len(ref.reference_to) == 1:
            check_path(ref.reference_to[0], tail, key)

    for sobject in mapping.people:
        for target, spec in mapping.people[sobject].items():
            check_path(sobject, spec.field, f"people.{sobject}.fields.{target}")

    stage = mapping.stage
    for sobject in PERSON_OBJECTS:
        obj = described(sobject)
        if obj is None:
            continue
        field = obj.field(stage.field)
        if field is None:
            problems.append(Problem(source, "stage.field", f"{sobject} has no field {stage.field} ({_HOWTO})"))
        else:
            if field.type != "picklist":
                problems.append(
                    Problem(source, "stage.field", f"{sobject}.{field.name} is a {field.type}, not a picklist")
                )
            if not field.updateable:
                problems.append(Problem(source, "stage.field", f"{sobject}.{field.name} is not writable by this user"))
            active = {value.value for value in field.picklist_values if value.active}
            for rung, value in stage.values.items():
                if value not in active:
                    problems.append(
                        Problem(
                            source,
                            f"stage.values.{rung.value}",
                            f"{value!r} is not an active value of {sobject}.{field.name} ({_HOWTO})",
                        )
                    )
        for key, name, types in (
            ("stage.reached_at_field", stage.reached_at_field, ("date", "datetime")),
            ("stage.reason_field", stage.reason_field, ("string", "textarea")),
        ):
            if not name:
                continue
            companion = obj.field(name)
            if companion is None:
                problems.append(Problem(source, key, f"{sobject} has no field {name} ({_HOWTO})"))
            elif not companion.updateable:
                problems.append(Problem(source, key, f"{sobject}.{companion.name} is not writable by this user"))
            elif companion.type not in types:
                problems.append(
                    Problem(
                        source, key, f"{sobject}.{companion.name} is a {companion.type}, expected {' or '.join(types)}"
                    )
                )

    for index, guard in enumerate(stage.guards):
        # read, never written: the field must exist; each value said to be on the ladder must be one it can hold
        for sobject in guard.objects or list(mapping.people):
            obj = described(sobject)
            found = obj.field(guard.field) if obj is not None else None
            if obj is None:
                continue
            if found is None:
                problems.append(
                    Problem(source, f"stage.guards[{index}].field", f"{sobject} has no field {guard.field}")
                )
                continue
            if found.type != "picklist":
                continue
            active = {value.value for value in found.picklist_values if value.active}
            for value in guard.on_ladder:
                if value not in active:
                    problems.append(
                        Problem(
                            source,
                            f"stage.guards[{index}].on_ladder",
                            f"{value!r} is not an active value of {sobject}.{found.name}",
                        )
                    )

    for index, rule in enumerate(mapping.spec.activities):
        names = [rule.at, *([rule.detail] if rule.detail else []), *rule.when]
        for name in names:
            check_path(rule.object, name, f"activities[{index}]")
        for who in WHO_FIELDS.get(rule.object, ("WhoId",)):
            check_path(rule.object, who, f"activities[{index}].object")
    return list(dict.fromkeys(problems))
