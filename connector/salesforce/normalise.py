"""Flattened Salesforce records to the common model, with the mapping.

Leads and Contacts become :class:`ContactRecord`; Tasks, Events and
CampaignMembers become :class:`ActivityRecord` attached to the people they
are about. A record that cannot be normalised raises ``ValueError`` naming
the field (the client reports it as skipped); an activity no rule matches
gives ``None`` (counted as unmapped, never guessed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from connector.crm import ActivityRecord, ContactRecord, RemovedRecord
from connector.mapping import CrmMapping, parse_instant, text_value
from connector.model import Contact

PERSON_OBJECTS: tuple[str, ...] = ("Lead", "Contact")
ACTIVITY_OBJECTS: tuple[str, ...] = ("Task", "Event", "CampaignMember")

WHO_FIELDS: dict[str, tuple[str, ...]] = {
    "Task": ("WhoId",),
    "Event": ("WhoId",),
    # after a conversion the membership keeps LeadId and gains ContactId
    "CampaignMember": ("ContactId", "Lead.ConvertedContactId", "LeadId"),
}
"""Fields that say which person an activity record is about."""

CONVERSION_FIELDS: tuple[str, ...] = ("IsConverted", "ConvertedContactId")
REMOVAL_FIELDS: tuple[str, ...] = ("IsDeleted", "MasterRecordId")
"""Read with ``queryAll``: a deleted person comes back with ``IsDeleted = true``; one merged away also names
its survivor in ``MasterRecordId``."""


def person_fields(mapping: CrmMapping, sobject: str) -> list[str]:
    """Every field to select for a person object: mapped, stage fields, and conversion for Leads."""
    names = ["Id", "SystemModstamp", *mapping.person_fields(sobject), *mapping.stage_fields(sobject)]
    if sobject == "Lead":
        names.extend(CONVERSION_FIELDS)
    names.extend(REMOVAL_FIELDS)
    return list(dict.fromkeys(names))


def activity_fields(mapping: CrmMapping, sobject: str) -> list[str]:
    names = ["Id", "SystemModstamp", *mapping.activity_fields(sobject), *WHO_FIELDS.get(sobject, ("WhoId",))]
    return list(dict.fromkeys(names))


class Instants:
    """``SystemModstamp`` text to aware datetimes, remembering recent ones (bulk loads share stamps)."""

    def __init__(self, size: int = 4096) -> None:
        self._cache: dict[str, datetime] = {}
        self._size = size

    def __call__(self, value: Any) -> datetime:
        if not isinstance(value, str):
            return parse_instant(value)
        found = self._cache.get(value)
        if found is None:
            if len(self._cache) >= self._size:
                self._cache.clear()
            found = self._cache[value] = parse_instant(value)
        return found


def converted_to(values: Mapping[str, Any]) -> str | None:
    """The Contact a converted Lead now lives on; ``None`` for an open Lead."""
    if values.get("IsConverted") is True:
        return str(values.get("ConvertedContactId") or "")
    return None


def removed_record(values: Mapping[str, Any]) -> RemovedRecord | None:
    """A person ``queryAll`` returned deleted (merged away: with its survivor), or ``None`` if it is not."""
    if values.get("IsDeleted") is not True:
        return None
    master = values.get("MasterRecordId")
    return RemovedRecord(crm_id=str(values["Id"]), merged_into=str(master) if master else None)


def person_record(
    sobject: str, values: Mapping[str, Any], mapping: CrmMapping, instant: Callable[[Any], datetime] = parse_instant
) -> ContactRecord:
    person = mapping.normalise_person(sobject, values)
    stage_values = {name: text_value(values.get(name)) for name in mapping.stage_fields(sobject)}
    stage = mapping.stage_for_value(stage_values.get(mapping.stage.field))
    return ContactRecord(
        crm_id=str(values["Id"]),
        object_type=sobject,
        contact=Contact(**person, stage=stage),
        stage_values=stage_values,
        modified_at=instant(values["SystemModstamp"]),
    )


def activity_record(
    sobject: str,
    values: Mapping[str, Any],
    mapping: CrmMapping,
    follow: Callable[[str], str],
    instant: Callable[[Any], datetime] = parse_instant,
) -> ActivityRecord | None:
    """The activity, or ``None`` when no rule of the mapping matches; ``follow`` maps converted Lead ids.

    The activity itself is built by the mapping (:meth:`CrmMapping.activity`), as for every vendor.
    """
    activity = mapping.activity(sobject, values, str(values["Id"]))
    if activity is None:
        return None
    who = _person_of(sobject, values)
    if who is None:
        raise ValueError(f"{'/'.join(WHO_FIELDS.get(sobject, ('WhoId',)))}: about no Lead or Contact")
    return ActivityRecord(
        crm_id=str(values["Id"]),
        activity=activity,
        contact_ids=(follow(who),),
        modified_at=instant(values["SystemModstamp"]),
    )


def _person_of(sobject: str, values: Mapping[str, Any]) -> str | None:
    for name in WHO_FIELDS.get(sobject, ("WhoId",)):
        value = values.get(name)
        if value:
            text = str(value)
            # WhoId can also point at other things in some orgs; only people count
            if sobject in ("Task", "Event") and not text.startswith(("003", "00Q")):
                return None
            return text
    return None
